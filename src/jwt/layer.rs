//! `JwtLayer`: the shared [`AuthLayer`] with a [`JwtAuthenticator`], and its builder.

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;

use super::ConfigError;
use super::authenticator::{Inner, JwtAuthenticator};
use super::cache::TokenCache;
use super::claims::StandardClaims;
use super::extract::Sources;
use super::key_set::{KeySource, Source};
use super::revocation::Revocation;
use super::validation::{RequiredClaim, Validation};
use crate::auth::{AuthLayer, Authenticate};
use crate::clock::SharedClock;
use crate::rejection::DefaultResponder;

/// Validates `Authorization: Bearer` JWTs. See the [module docs](super).
///
/// It is the shared [`AuthLayer`] with a [`JwtAuthenticator`], so modes
/// ([`optional`](AuthLayer::optional)), [`realm`](AuthLayer::realm), the gRPC flavour and
/// custom responders work as for every tollgate layer.
pub type JwtLayer<C = StandardClaims, R = DefaultResponder> = AuthLayer<JwtAuthenticator<C>, R>;

/// The service [`JwtLayer`] makes.
pub type RequireJwt<S, C = StandardClaims, R = DefaultResponder> =
    Authenticate<S, JwtAuthenticator<C>, R>;

impl AuthLayer<JwtAuthenticator> {
    /// A layer with the secure defaults: `exp` required, 60 s leeway, tokens up to 8 KiB in
    /// the `Authorization` header only, a 10 000-token verified cache, no issuer or
    /// audience expected (a token that names an audience is refused).
    ///
    /// # Errors
    ///
    /// [`ConfigError::NoKeys`] for an empty static key set.
    pub fn new(keys: impl Into<KeySource>) -> Result<Self, ConfigError> {
        Self::builder(keys).build()
    }

    /// Starts configuring a layer that verifies tokens with `keys`, handing
    /// [`StandardClaims`] downstream (switch with [`JwtBuilder::claims`]).
    pub fn builder(keys: impl Into<KeySource>) -> JwtBuilder {
        JwtBuilder {
            keys: keys.into(),
            validation: Validation::default(),
            sources: Sources::default(),
            max_len: 8 * 1024,
            clock: crate::clock::system(),
            revocation: None,
            cache_capacity: Some(10_000),
            scope_claim: None,
            _claims: PhantomData,
        }
    }
}

/// Configures a [`JwtLayer`]; see [`JwtLayer::builder`](AuthLayer::builder).
#[must_use]
pub struct JwtBuilder<C = StandardClaims> {
    keys: KeySource,
    validation: Validation,
    sources: Sources,
    max_len: usize,
    clock: SharedClock,
    revocation: Option<Arc<dyn Revocation>>,
    cache_capacity: Option<u64>,
    scope_claim: Option<Box<str>>,
    _claims: PhantomData<fn() -> C>,
}

impl<C> JwtBuilder<C>
where
    C: DeserializeOwned + Send + Sync + 'static,
{
    /// Hands your own claims type downstream as [`Claims<C2>`](super::Claims) instead of
    /// [`StandardClaims`]. A token whose claims do not deserialize into `C2` is refused.
    ///
    /// ```
    /// # use tollgate::jwt::{Algorithm, JwtKey, JwtLayer};
    /// #[derive(serde::Deserialize)]
    /// struct MyClaims {
    ///     sub: String,
    ///     tenant: String,
    /// }
    ///
    /// let key = JwtKey::hmac([7; 32], Algorithm::HS256)?;
    /// let layer = JwtLayer::builder(key).claims::<MyClaims>().build()?;
    /// # Ok::<_, tollgate::jwt::ConfigError>(())
    /// ```
    pub fn claims<C2>(self) -> JwtBuilder<C2> {
        JwtBuilder {
            keys: self.keys,
            validation: self.validation,
            sources: self.sources,
            max_len: self.max_len,
            clock: self.clock,
            revocation: self.revocation,
            cache_capacity: self.cache_capacity,
            scope_claim: self.scope_claim,
            _claims: PhantomData,
        }
    }

    /// Accepts tokens issued by `issuer` (`iss`). Call again to accept several. Once one is
    /// set, a token without `iss`, or with one not listed, is refused.
    pub fn issuer(mut self, issuer: impl AsRef<str>) -> Self {
        self.validation.issuers.push(issuer.as_ref().into());
        self
    }

    /// Accepts tokens meant for `audience` (`aud`, a string or an array: any one match
    /// suffices). Call again to accept several. Once one is set, a token without `aud` is
    /// refused.
    pub fn audience(mut self, audience: impl AsRef<str>) -> Self {
        self.validation.audiences.push(audience.as_ref().into());
        self
    }

    /// With no audience configured, accept tokens that name one (refused by default, as
    /// RFC 7519 §4.1.3 asks).
    pub fn ignore_unexpected_audience(mut self) -> Self {
        self.validation.ignore_unexpected_audience = true;
        self
    }

    /// How far `exp`, `nbf` and `iat` may be off to allow for clock skew (default 60 s).
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.validation.leeway = leeway.as_secs();
        self
    }

    /// Makes `claim` mandatory.
    pub fn require(mut self, claim: RequiredClaim) -> Self {
        self.validation.require(claim, true);
        self
    }

    /// Lets tokens without `claim` through (if present it is still checked). Allowing a
    /// missing `exp` makes tokens live forever: think twice.
    pub fn allow_missing(mut self, claim: RequiredClaim) -> Self {
        self.validation.require(claim, false);
        self
    }

    /// Refuses tokens that live longer than `max` (`exp - iat`, and `exp` further than `max`
    /// from now).
    pub fn max_lifetime(mut self, max: Duration) -> Self {
        self.validation.set_max_lifetime(Some(max));
        self
    }

    /// Requires the header `typ` to be `at+jwt` (RFC 9068 access tokens), so an ID token or
    /// another JWT from the same issuer is not accepted as an access token.
    pub fn require_access_token_type(mut self) -> Self {
        self.validation.require_at_jwt = true;
        self
    }

    /// The longest token accepted, checked before anything is decoded (default 8 KiB).
    pub fn max_token_len(mut self, bytes: usize) -> Self {
        self.max_len = bytes;
        self
    }

    /// Also reads the token from the `access_token` query parameter (RFC 6750 §2.3). URLs
    /// end up in logs: prefer the header.
    pub fn token_from_query(mut self) -> Self {
        self.sources.query = true;
        self
    }

    /// Also reads the token from the cookie `name`. Cookies are sent by browsers
    /// automatically: protect state-changing routes against CSRF.
    pub fn token_from_cookie(mut self, name: impl AsRef<str>) -> Self {
        self.sources.cookie = Some(name.as_ref().into());
        self
    }

    /// The clock for `exp`/`nbf`/`iat` (default: the system clock).
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// Refuses tokens whose `jti` `revocation` lists, on every request (cache hits too).
    /// [`build`](Self::build) tells it the leeway ([`Revocation::keep_after_expiry`]), so an
    /// entry revoked until the token's `exp` holds until the layer refuses the token as expired.
    pub fn revocation(mut self, revocation: impl Revocation) -> Self {
        self.revocation = Some(Arc::new(revocation));
        self
    }

    /// Bounds the verified-token cache to `capacity` tokens (default 10 000).
    pub fn cache_capacity(mut self, capacity: u64) -> Self {
        self.cache_capacity = Some(capacity);
        self
    }

    /// Reads the user's scopes from the claim `name` instead of `scope` (space-delimited,
    /// RFC 8693 §4.2 / RFC 9068) or `scp` (an array). The claim may be a space-delimited
    /// string or an array of strings; e.g. `scope_claim("permissions")` for Auth0's RBAC
    /// permissions. A token without it has no scopes; one where it has another type is refused
    /// (as is one whose claims do not fit the claims type: [`StandardClaims`] reads
    /// `permissions` and `roles` as arrays).
    pub fn scope_claim(mut self, name: impl AsRef<str>) -> Self {
        self.scope_claim = Some(name.as_ref().into());
        self
    }

    /// Verifies every token in full, without a cache.
    pub fn no_cache(mut self) -> Self {
        self.cache_capacity = None;
        self
    }

    /// Builds the layer.
    ///
    /// # Errors
    ///
    /// [`ConfigError::NoKeys`] for an empty static key set, [`ConfigError::EmptyValue`] for an
    /// empty issuer or audience, [`ConfigError::Zero`] for a zero token size or cache capacity.
    pub fn build(self) -> Result<JwtLayer<C>, ConfigError> {
        if let Source::Static(keys) = &self.keys.0 {
            if keys.is_empty() {
                return Err(ConfigError::NoKeys);
            }
        }
        if self.validation.issuers.iter().any(|i| i.is_empty()) {
            return Err(ConfigError::EmptyValue { what: "issuer" });
        }
        if self.validation.audiences.iter().any(|a| a.is_empty()) {
            return Err(ConfigError::EmptyValue { what: "audience" });
        }
        if self.scope_claim.as_deref() == Some("") {
            return Err(ConfigError::EmptyValue {
                what: "scope claim",
            });
        }
        if self.max_len == 0 {
            return Err(ConfigError::Zero {
                what: "the maximum token length",
            });
        }
        if self.cache_capacity == Some(0) {
            return Err(ConfigError::Zero {
                what: "the cache capacity",
            });
        }
        if let Some(revocation) = &self.revocation {
            // A token is accepted until `exp + leeway`: its denylist entry must last as long.
            revocation.keep_after_expiry(Duration::from_secs(self.validation.leeway));
        }
        let authenticator = JwtAuthenticator::from_inner(Inner {
            keys: self.keys.0,
            validation: self.validation,
            sources: self.sources,
            max_len: self.max_len,
            clock: self.clock,
            revocation: self.revocation,
            cache: self.cache_capacity.map(TokenCache::new),
            scope_claim: self.scope_claim,
            _claims: PhantomData,
        });
        Ok(AuthLayer::with_authenticator(authenticator))
    }
}

impl<C> fmt::Debug for JwtBuilder<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtBuilder")
            .field("keys", &self.keys)
            .field("validation", &self.validation)
            .field("max_len", &self.max_len)
            .field("cache_capacity", &self.cache_capacity)
            .field("scope_claim", &self.scope_claim)
            .finish_non_exhaustive()
    }
}
