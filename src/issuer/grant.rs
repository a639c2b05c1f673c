//! What one access token says ([`Grant`]), what minting returns ([`AccessToken`]) and why
//! minting can fail ([`IssueError`]).

use std::fmt;
use std::time::{Duration, SystemTime};

use serde::Serialize;
use serde_json::{Map, Value};

/// The claims names the issuer writes itself, and `scp` (the layer reads scopes from it when
/// `scope` is absent); custom claims may not use them.
pub(crate) const RESERVED: [&str; 12] = [
    "iss",
    "sub",
    "aud",
    "iat",
    "nbf",
    "exp",
    "jti",
    "scope",
    "scp",
    "act",
    "azp",
    "client_id",
];

/// Whether a custom claim has the type the JWT layer's `StandardClaims` reads it as (a token
/// with, say, `roles: 0` would be refused as malformed by the issuer's own layer).
fn fits_standard_claims(name: &str, value: &Value) -> bool {
    match name {
        "email" | "name" => value.is_string() || value.is_null(),
        "roles" | "permissions" => {
            value.is_null()
                || value
                    .as_array()
                    .is_some_and(|a| a.iter().all(Value::is_string))
        }
        _ => true,
    }
}

/// What an access token grants: the subject, scopes, optional actor and custom claims.
/// Passed to [`TokenIssuer::mint`](super::TokenIssuer::mint).
///
/// ```
/// # use tollgate::issuer::Grant;
/// #[derive(serde::Serialize)]
/// struct Tenant { tenant: &'static str }
///
/// let grant = Grant::new("alice")
///     .scopes(["orders:read", "orders:write"])
///     .claims(&Tenant { tenant: "acme" })?;
/// # Ok::<_, tollgate::issuer::IssueError>(())
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct Grant {
    pub(crate) subject: String,
    pub(crate) scopes: Vec<String>,
    pub(crate) lifetime: Option<Duration>,
    pub(crate) actor: Option<String>,
    pub(crate) extra: Map<String, Value>,
    /// Set by the refresh flow, which records the token's id before minting it.
    pub(crate) jti: Option<String>,
    pub(crate) issued_at: Option<SystemTime>,
    pub(crate) expires_at: Option<SystemTime>,
}

impl Grant {
    /// A token for `subject` (`sub`) with no scopes.
    pub fn new(subject: impl Into<String>) -> Self {
        Self {
            subject: subject.into(),
            scopes: Vec::new(),
            lifetime: None,
            actor: None,
            extra: Map::new(),
            jti: None,
            issued_at: None,
            expires_at: None,
        }
    }

    /// The scopes, written space-delimited into `scope` (sorted, without duplicates).
    pub fn scopes<I, T>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = T>,
        T: Into<String>,
    {
        self.scopes = scopes.into_iter().map(Into::into).collect();
        crate::identity::normalize_scopes(&mut self.scopes);
        self
    }

    /// A lifetime shorter than the issuer's (longer ones are cut to the issuer's, so the
    /// issuer knows how long a retired key must stay published).
    pub fn lifetime(mut self, lifetime: Duration) -> Self {
        self.lifetime = Some(lifetime);
        self
    }

    /// Records that application `client_id` acts for the subject (RFC 8693): writes
    /// `act: {"sub": client_id}`, `azp` and `client_id`.
    pub fn actor(mut self, client_id: impl Into<String>) -> Self {
        self.actor = Some(client_id.into());
        self
    }

    /// Adds custom claims: `claims` must serialize to a JSON object, whose members are
    /// written next to the standard claims.
    ///
    /// # Errors
    ///
    /// [`IssueError::NotAnObject`] if `claims` is not an object, [`IssueError::ReservedClaim`]
    /// if it names a claim the issuer writes itself (`iss`, `sub`, `aud`, `iat`, `nbf`, `exp`,
    /// `jti`, `scope`, `act`, `azp`, `client_id`) or `scp`, [`IssueError::ClaimType`] for an
    /// `email` or `name` that is not a string, or `roles` or `permissions` that are not an
    /// array of strings (the types [`StandardClaims`](crate::jwt::StandardClaims) reads).
    pub fn claims<T: Serialize + ?Sized>(mut self, claims: &T) -> Result<Self, IssueError> {
        let Value::Object(map) =
            serde_json::to_value(claims).map_err(|_| IssueError::NotAnObject)?
        else {
            return Err(IssueError::NotAnObject);
        };
        for (name, value) in map {
            if RESERVED.contains(&name.as_str()) {
                return Err(IssueError::ReservedClaim { name });
            }
            if !fits_standard_claims(&name, &value) {
                return Err(IssueError::ClaimType { name });
            }
            self.extra.insert(name, value);
        }
        Ok(self)
    }
}

/// A minted access token: the compact JWT and what it says. `Debug` redacts the token.
#[derive(Clone)]
pub struct AccessToken {
    pub(crate) token: String,
    pub(crate) jti: String,
    pub(crate) issued_at: SystemTime,
    pub(crate) expires_at: SystemTime,
    pub(crate) scopes: Vec<String>,
}

impl AccessToken {
    /// The compact JWT, for `Authorization: Bearer`.
    pub fn as_str(&self) -> &str {
        &self.token
    }

    /// The token's id (`jti`), what a [`RevocationList`](crate::jwt::RevocationList) refuses.
    pub fn jti(&self) -> &str {
        &self.jti
    }

    /// When it was issued (`iat`, `nbf`).
    pub fn issued_at(&self) -> SystemTime {
        self.issued_at
    }

    /// When it expires (`exp`).
    pub fn expires_at(&self) -> SystemTime {
        self.expires_at
    }

    /// The scopes it carries, sorted.
    pub fn scopes(&self) -> &[String] {
        &self.scopes
    }

    /// Whole seconds from `now` until it expires (RFC 6749 `expires_in`), 0 once expired.
    pub fn expires_in(&self, now: SystemTime) -> u64 {
        self.expires_at
            .duration_since(now)
            .map_or(0, |d| d.as_secs())
    }

    /// The compact JWT, consuming the value.
    pub fn into_string(self) -> String {
        self.token
    }
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessToken")
            .field("token", &"<redacted>")
            .field("jti", &self.jti)
            .field("expires_at", &self.expires_at)
            .field("scopes", &self.scopes)
            .finish()
    }
}

/// Why an access token could not be minted.
#[derive(Debug)]
#[non_exhaustive]
pub enum IssueError {
    /// Custom claims that do not serialize to a JSON object.
    NotAnObject,
    /// A custom claim with a name the issuer writes itself.
    ReservedClaim {
        /// The claim's name.
        name: String,
    },
    /// A custom claim the JWT layer's `StandardClaims` reads, of another type.
    ClaimType {
        /// The claim's name.
        name: String,
    },
    /// The crypto backend failed to sign.
    Signing(jsonwebtoken::errors::Error),
}

impl fmt::Display for IssueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotAnObject => f.write_str("custom claims must serialize to a JSON object"),
            Self::ReservedClaim { name } => {
                write!(f, "the claim `{name}` is written by the issuer itself")
            }
            Self::ClaimType { name } => write!(
                f,
                "the claim `{name}` must be a string (email, name) or an array of strings (roles, permissions)"
            ),
            Self::Signing(e) => write!(f, "signing the token failed: {e}"),
        }
    }
}

impl std::error::Error for IssueError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Signing(e) => Some(e),
            _ => None,
        }
    }
}
