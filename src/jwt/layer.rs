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
use super::key_set::KeySource;
use super::mapping::ClaimMapping;
use super::provider::{Provider, Providers};
use super::revocation::Revocation;
use super::validation::RequiredClaim;
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
            own: Some(Provider::unnamed(Some(keys.into()))),
            ..JwtBuilder::empty()
        }
    }

    /// Starts configuring a layer that accepts tokens from each of `providers`, routed by
    /// their `iss` (see [`Provider`]). Issuer, audience and claim settings live on each
    /// provider; the builder's own ([`issuer`](JwtBuilder::issuer), …) configure a provider
    /// of the builder's keys, which this constructor has none of.
    pub fn with_providers(providers: impl IntoIterator<Item = Provider>) -> JwtBuilder {
        JwtBuilder {
            others: providers.into_iter().collect(),
            ..JwtBuilder::empty()
        }
    }
}

/// Configures a [`JwtLayer`]; see [`JwtLayer::builder`](AuthLayer::builder).
#[must_use]
pub struct JwtBuilder<C = StandardClaims> {
    /// The provider of the keys given to [`JwtLayer::builder`](AuthLayer::builder).
    own: Option<Provider>,
    others: Vec<Provider>,
    sources: Sources,
    max_len: usize,
    clock: SharedClock,
    revocation: Option<Arc<dyn Revocation>>,
    cache_capacity: Option<u64>,
    _claims: PhantomData<fn() -> C>,
}

impl JwtBuilder {
    fn empty() -> Self {
        Self {
            own: None,
            others: Vec::new(),
            sources: Sources::default(),
            max_len: 8 * 1024,
            clock: crate::clock::system(),
            revocation: None,
            cache_capacity: Some(10_000),
            _claims: PhantomData,
        }
    }
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
            own: self.own,
            others: self.others,
            sources: self.sources,
            max_len: self.max_len,
            clock: self.clock,
            revocation: self.revocation,
            cache_capacity: self.cache_capacity,
            _claims: PhantomData,
        }
    }

    /// The provider of the builder's own keys (none after [`JwtLayer::with_providers`]:
    /// building then fails with [`ConfigError::NoKeys`]).
    fn own(&mut self) -> &mut Provider {
        self.own.get_or_insert_with(|| Provider::unnamed(None))
    }

    /// Also accepts tokens from `provider`. With several providers, each token is routed by
    /// its `iss`, and every provider (this builder's own keys included) needs an issuer.
    pub fn provider(mut self, provider: Provider) -> Self {
        self.others.push(provider);
        self
    }

    /// Names the provider of the builder's own keys, as
    /// [`UserIdentity::provider`](crate::identity::UserIdentity::provider) reports it.
    pub fn provider_name(mut self, name: impl AsRef<str>) -> Self {
        let own = self.own().clone().named(name);
        self.own = Some(own);
        self
    }

    /// Where the identity's scopes come from (default [`ClaimMapping::standard`]).
    pub fn claim_mapping(mut self, mapping: ClaimMapping) -> Self {
        self.own().mapping = mapping;
        self
    }

    /// Accepts tokens issued by `issuer` (`iss`). Call again to accept several. Once one is
    /// set, a token without `iss`, or with one not listed, is refused.
    pub fn issuer(mut self, issuer: impl AsRef<str>) -> Self {
        self.own().validation.issuers.push(issuer.as_ref().into());
        self
    }

    /// Accepts tokens meant for `audience` (`aud`, a string or an array: any one match
    /// suffices). Call again to accept several. Once one is set, a token without `aud` is
    /// refused.
    pub fn audience(mut self, audience: impl AsRef<str>) -> Self {
        self.own()
            .validation
            .audiences
            .push(audience.as_ref().into());
        self
    }

    /// With no audience configured, accept tokens that name one (refused by default, as
    /// RFC 7519 §4.1.3 asks).
    pub fn ignore_unexpected_audience(mut self) -> Self {
        self.own().validation.ignore_unexpected_audience = true;
        self
    }

    /// How far `exp`, `nbf` and `iat` may be off to allow for clock skew (default 60 s).
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.own().validation.leeway = leeway.as_secs();
        self
    }

    /// Makes `claim` mandatory.
    pub fn require(mut self, claim: RequiredClaim) -> Self {
        self.own().validation.require(claim, true);
        self
    }

    /// Lets tokens without `claim` through (if present it is still checked). Allowing a
    /// missing `exp` makes tokens live forever: think twice.
    pub fn allow_missing(mut self, claim: RequiredClaim) -> Self {
        self.own().validation.require(claim, false);
        self
    }

    /// Refuses tokens that live longer than `max` (`exp - iat`, and `exp` further than `max`
    /// from now).
    pub fn max_lifetime(mut self, max: Duration) -> Self {
        self.own().validation.set_max_lifetime(Some(max));
        self
    }

    /// Requires the header `typ` to be `at+jwt` (RFC 9068 access tokens), so an ID token or
    /// another JWT from the same issuer is not accepted as an access token.
    pub fn require_access_token_type(mut self) -> Self {
        self.own().validation.require_at_jwt = true;
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
    /// `permissions` and `roles` as arrays). Shorthand for
    /// `claim_mapping(ClaimMapping::only(name))`; see [`ClaimMapping`] for nested claims and
    /// the presets of common providers.
    pub fn scope_claim(mut self, name: impl AsRef<str>) -> Self {
        self.own().mapping = ClaimMapping::only(name.as_ref());
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
    /// [`ConfigError::NoKeys`] for an empty static key set (or a provider without keys),
    /// [`ConfigError::DuplicateKey`] for a key set holding two keys no token can tell apart,
    /// [`ConfigError::EmptyValue`] for an empty issuer, audience or claim name,
    /// [`ConfigError::Zero`] for a zero token size or cache capacity; with several providers,
    /// [`ConfigError::ProviderWithoutIssuer`] and [`ConfigError::DuplicateIssuer`].
    pub fn build(self) -> Result<JwtLayer<C>, ConfigError> {
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
        let providers = Providers::new(self.own.into_iter().chain(self.others).collect())?;
        if let Some(revocation) = &self.revocation {
            // A token is accepted until `exp + leeway`: its denylist entry must last as long.
            let leeway = providers
                .iter()
                .map(|p| p.validation.leeway)
                .max()
                .unwrap_or(0);
            revocation.keep_after_expiry(Duration::from_secs(leeway));
        }
        let authenticator = JwtAuthenticator::from_inner(Inner {
            providers,
            sources: self.sources,
            max_len: self.max_len,
            clock: self.clock,
            revocation: self.revocation,
            cache: self.cache_capacity.map(TokenCache::new),
            _claims: PhantomData,
        });
        Ok(AuthLayer::with_authenticator(authenticator))
    }
}

impl<C> fmt::Debug for JwtBuilder<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtBuilder")
            .field("own", &self.own)
            .field("others", &self.others)
            .field("max_len", &self.max_len)
            .field("cache_capacity", &self.cache_capacity)
            .finish_non_exhaustive()
    }
}
