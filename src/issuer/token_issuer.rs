//! `TokenIssuer`: mints access tokens, rotates its signing key, and hands the JWT layer and
//! the JWKS document the matching verification keys.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value, json};

use super::grant::{AccessToken, Grant, IssueError};
use super::jwks::Jwks;
use super::signing::SigningKey;
use crate::clock::SharedClock;
use crate::jwt::{ConfigError, JwtBuilder, JwtLayer, KeySet};

/// Mints access tokens (RFC 9068 shaped JWTs). See the [module docs](super).
///
/// Cloning is cheap; clones share the keys, so a [`rotate_key`](Self::rotate_key) on one is
/// seen by all.
#[derive(Clone)]
pub struct TokenIssuer {
    inner: Arc<Inner>,
}

struct Inner {
    issuer: String,
    audiences: Vec<String>,
    lifetime: Duration,
    retention: Duration,
    at_jwt: bool,
    clock: SharedClock,
    keys: ArcSwap<Keys>,
}

/// The current key and the retired ones still published, each with the time it may go.
struct Keys {
    current: SigningKey,
    retired: Vec<(SigningKey, SystemTime)>,
}

impl TokenIssuer {
    /// Starts configuring an issuer named `issuer` (`iss`) that signs with `key`.
    pub fn builder(issuer: impl Into<String>, key: SigningKey) -> TokenIssuerBuilder {
        TokenIssuerBuilder {
            issuer: issuer.into(),
            key,
            audiences: Vec::new(),
            lifetime: Duration::from_secs(15 * 60),
            retention: Duration::from_secs(60),
            at_jwt: true,
            clock: crate::clock::system(),
        }
    }

    /// Mints an access token for `grant`: `iss`, `sub`, `aud` (when configured), `iat` and
    /// `nbf` (now), `exp` (now + the lifetime), a random `jti` (128 bits), `scope`
    /// (space-delimited, omitted when empty), the actor claims and the custom claims.
    ///
    /// # Errors
    ///
    /// [`IssueError::Signing`] if the crypto backend fails.
    pub fn mint(&self, grant: &Grant) -> Result<AccessToken, IssueError> {
        let now = self.inner.clock.now();
        let issued_at = grant.issued_at.unwrap_or(now);
        let lifetime = grant
            .lifetime
            .map_or(self.inner.lifetime, |l| l.min(self.inner.lifetime));
        let expires_at = grant
            .expires_at
            .unwrap_or_else(|| super::refresh::later(issued_at, lifetime));
        let jti = grant.jti.clone().unwrap_or_else(random_id);

        let mut claims = Map::new();
        claims.insert("iss".into(), self.inner.issuer.clone().into());
        claims.insert("sub".into(), grant.subject.clone().into());
        match self.inner.audiences.as_slice() {
            [] => {}
            [one] => {
                claims.insert("aud".into(), one.clone().into());
            }
            many => {
                claims.insert("aud".into(), many.into());
            }
        }
        claims.insert("iat".into(), secs(issued_at).into());
        claims.insert("nbf".into(), secs(issued_at).into());
        claims.insert("exp".into(), secs(expires_at).into());
        claims.insert("jti".into(), jti.clone().into());
        if !grant.scopes.is_empty() {
            claims.insert("scope".into(), grant.scopes.join(" ").into());
        }
        if let Some(actor) = &grant.actor {
            claims.insert("act".into(), json!({ "sub": actor }));
            claims.insert("azp".into(), actor.clone().into());
            claims.insert("client_id".into(), actor.clone().into());
        }
        for (name, value) in &grant.extra {
            claims.insert(name.clone(), value.clone());
        }

        let key = self.inner.keys.load().current.clone();
        let header = json!({
            "alg": key.algorithm(),
            "typ": if self.inner.at_jwt { "at+jwt" } else { "JWT" },
            "kid": key.kid(),
        });
        let message = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(Value::Object(claims).to_string())
        );
        let signature = key.sign(message.as_bytes()).map_err(IssueError::Signing)?;
        Ok(AccessToken {
            token: format!("{message}.{signature}"),
            jti,
            issued_at,
            expires_at,
            scopes: grant.scopes.clone(),
        })
    }

    /// Makes `key` the signing key. The previous key stays in [`verification_keys`] and
    /// [`jwks`] for the longest token lifetime plus the retention margin, so tokens it signed
    /// keep validating until they expire; keys retired earlier whose time is up are dropped.
    ///
    /// [`verification_keys`]: Self::verification_keys
    /// [`jwks`]: Self::jwks
    // The issuer keeps the key: by value says so, though `rcu` may clone it per attempt.
    #[allow(clippy::needless_pass_by_value)]
    pub fn rotate_key(&self, key: SigningKey) {
        let now = self.inner.clock.now();
        let until = super::refresh::later(
            now,
            self.inner.lifetime.saturating_add(self.inner.retention),
        );
        self.inner.keys.rcu(|keys| {
            let mut retired: Vec<_> = keys
                .retired
                .iter()
                .filter(|(old, at)| *at > now && old.kid() != key.kid())
                .cloned()
                .collect();
            if keys.current.kid() != key.kid() {
                retired.push((keys.current.clone(), until));
            }
            Arc::new(Keys {
                current: key.clone(),
                retired,
            })
        });
    }

    /// The key tokens are signed with now.
    pub fn current_key(&self) -> SigningKey {
        self.inner.keys.load().current.clone()
    }

    /// Every key a token minted by this issuer may still carry: the current one and the
    /// retired ones still within their retention, HMAC secrets included.
    pub fn verification_keys(&self) -> KeySet {
        self.collect_live_keys(|k| Some(k.verification_key().clone()))
    }

    /// The JWKS document (RFC 7517 §5) for `/.well-known/jwks.json`: the public halves of
    /// [`verification_keys`](Self::verification_keys). HMAC secrets are never included.
    pub fn jwks(&self) -> Jwks {
        self.collect_live_keys(|k| k.public_jwk().cloned())
    }

    /// `pick` over the current key and the retired keys still within their retention.
    fn collect_live_keys<T, C: FromIterator<T>>(
        &self,
        pick: impl FnMut(&SigningKey) -> Option<T>,
    ) -> C {
        let now = self.inner.clock.now();
        let keys = self.inner.keys.load();
        let retired = keys.retired.iter().filter(|(_, at)| *at > now);
        std::iter::once(&keys.current)
            .chain(retired.map(|(k, _)| k))
            .filter_map(pick)
            .collect()
    }

    /// A [`JwtLayer`] builder that accepts exactly what this issuer mints: today's
    /// [`verification_keys`](Self::verification_keys), this issuer and audiences, the same
    /// clock, and `typ: at+jwt` when the issuer writes it. Further settings (revocation,
    /// leeway) can be chained.
    ///
    /// The keys are a snapshot: after [`rotate_key`](Self::rotate_key) build a new layer, or
    /// give the layer a [`JwksSource`](crate::jwt::JwksSource) reading [`jwks`](Self::jwks).
    pub fn jwt_layer(&self) -> JwtBuilder {
        let mut builder = JwtLayer::builder(self.verification_keys())
            .issuer(&self.inner.issuer)
            .clock(Arc::clone(&self.inner.clock));
        for audience in &self.inner.audiences {
            builder = builder.audience(audience);
        }
        if self.inner.at_jwt {
            builder = builder.require_access_token_type();
        }
        builder
    }

    /// The issuer name (`iss`).
    pub fn issuer(&self) -> &str {
        &self.inner.issuer
    }

    /// The audiences written into `aud`.
    pub fn audiences(&self) -> &[String] {
        &self.inner.audiences
    }

    /// The default (and longest) access-token lifetime.
    pub fn lifetime(&self) -> Duration {
        self.inner.lifetime
    }

    /// The issuer's clock.
    pub(crate) fn clock(&self) -> &SharedClock {
        &self.inner.clock
    }
}

impl fmt::Debug for TokenIssuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let keys = self.inner.keys.load();
        f.debug_struct("TokenIssuer")
            .field("issuer", &self.inner.issuer)
            .field("audiences", &self.inner.audiences)
            .field("lifetime", &self.inner.lifetime)
            .field("key", &keys.current)
            .field("retired_keys", &keys.retired.len())
            .finish_non_exhaustive()
    }
}

/// Configures a [`TokenIssuer`]; see [`TokenIssuer::builder`].
#[must_use]
pub struct TokenIssuerBuilder {
    issuer: String,
    key: SigningKey,
    audiences: Vec<String>,
    lifetime: Duration,
    retention: Duration,
    at_jwt: bool,
    clock: SharedClock,
}

impl TokenIssuerBuilder {
    /// Writes `audience` into `aud` (call again for several; one is written as a string).
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audiences.push(audience.into());
        self
    }

    /// The access-token lifetime (default 15 minutes), also the longest a [`Grant`] may ask.
    pub fn lifetime(mut self, lifetime: Duration) -> Self {
        self.lifetime = lifetime;
        self
    }

    /// How long a retired key stays published beyond the token lifetime (default 60 s, the
    /// JWT layer's default leeway, so a token accepted with leeway still finds its key).
    pub fn key_retention(mut self, margin: Duration) -> Self {
        self.retention = margin;
        self
    }

    /// Writes `typ: JWT` instead of `typ: at+jwt` (RFC 9068), for verifiers that expect it.
    pub fn plain_jwt_type(mut self) -> Self {
        self.at_jwt = false;
        self
    }

    /// The clock for `iat`/`exp` and key retention (default: the system clock).
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// Builds the issuer.
    ///
    /// # Errors
    ///
    /// [`ConfigError::EmptyValue`] for an empty issuer or audience, [`ConfigError::Zero`] for
    /// a zero lifetime.
    pub fn build(self) -> Result<TokenIssuer, ConfigError> {
        if self.issuer.is_empty() {
            return Err(ConfigError::EmptyValue { what: "issuer" });
        }
        if self.audiences.iter().any(String::is_empty) {
            return Err(ConfigError::EmptyValue { what: "audience" });
        }
        if self.lifetime < Duration::from_secs(1) {
            return Err(ConfigError::Zero {
                what: "the token lifetime",
            });
        }
        Ok(TokenIssuer {
            inner: Arc::new(Inner {
                issuer: self.issuer,
                audiences: self.audiences,
                lifetime: self.lifetime,
                retention: self.retention,
                at_jwt: self.at_jwt,
                clock: self.clock,
                keys: ArcSwap::from_pointee(Keys {
                    current: self.key,
                    retired: Vec::new(),
                }),
            }),
        })
    }
}

impl fmt::Debug for TokenIssuerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenIssuerBuilder")
            .field("issuer", &self.issuer)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

/// Seconds since the epoch (0 for earlier times, which no clock here produces).
pub(crate) fn secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// 128 random bits from the OS CSPRNG, base64url: a `jti` or a family id.
pub(crate) fn random_id() -> String {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).expect("the OS random number generator failed");
    URL_SAFE_NO_PAD.encode(bytes)
}
