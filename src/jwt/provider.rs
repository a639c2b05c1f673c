//! Several token providers in one layer, each chosen by the token's `iss`.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::ConfigError;
use super::key_set::{KeySet, KeySource, Miss, Source};
use super::keys::JwtKey;
use super::mapping::ClaimMapping;
use super::signature::verify_signature;
use super::validation::{Refusal, RequiredClaim, Validation, invalid};

/// One token issuer a [`JwtLayer`](super::JwtLayer) accepts: its issuer URL, audiences, keys
/// (static keys and a JWKS together, e.g. during a migration), leeway, required claims and
/// claim mapping.
///
/// A layer with several providers routes each token by its `iss` before any signature work;
/// the choice is trusted only once that provider's keys verify the token. A token from an
/// issuer no provider accepts is refused (`invalid_token`) without fetching anything. The
/// accepted token's [`UserIdentity::provider`](crate::identity::UserIdentity::provider) names
/// the provider.
///
/// ```
/// use tollgate::jwt::{Algorithm, ClaimMapping, JwtKey, JwtLayer, Provider};
///
/// # fn main() -> Result<(), tollgate::jwt::ConfigError> {
/// # let idp_keys = JwtKey::hmac([1; 32], Algorithm::HS256)?;
/// # let own_key = JwtKey::hmac([2; 32], Algorithm::HS256)?;
/// // In production `idp_keys` is a `JwksSource` or `tollgate::oidc::Discovery`.
/// let keycloak = Provider::new("https://sso.example/realms/acme", idp_keys)
///     .named("keycloak")
///     .audience("orders-api")
///     .claim_mapping(ClaimMapping::keycloak("orders-api"));
/// let internal = Provider::new("https://orders.example", own_key).named("internal");
/// let layer = JwtLayer::with_providers([keycloak, internal]).build()?;
/// # let _ = layer;
/// # Ok(()) }
/// ```
#[derive(Clone)]
#[must_use]
pub struct Provider {
    pub(crate) name: Option<Arc<str>>,
    pub(crate) keys: Vec<Source>,
    pub(crate) validation: Validation,
    pub(crate) mapping: ClaimMapping,
}

impl Provider {
    /// A provider for tokens issued by `issuer` (`iss`, compared exactly), verified with
    /// `keys`. Its name is the issuer until [`named`](Self::named).
    pub fn new(issuer: impl AsRef<str>, keys: impl Into<KeySource>) -> Self {
        let issuer = issuer.as_ref();
        let mut validation = Validation::default();
        validation.issuers.push(issuer.into());
        Self {
            name: Some(Arc::from(issuer)),
            keys: vec![keys.into().0],
            validation,
            mapping: ClaimMapping::standard(),
        }
    }

    /// The provider of a layer built with one key source and no name.
    pub(crate) fn unnamed(keys: Option<KeySource>) -> Self {
        Self {
            name: None,
            keys: keys.into_iter().map(|k| k.0).collect(),
            validation: Validation::default(),
            mapping: ClaimMapping::standard(),
        }
    }

    /// The name the identity records ([`UserIdentity::provider`](crate::identity::UserIdentity::provider))
    /// and route requirements use: a route that accepts this provider only is wrapped in
    /// `RequireLayer::extension(|user: &UserIdentity| user.provider() == Some("internal"))`
    /// ([`RequireLayer`](crate::scope::RequireLayer)), the spirit of Envoy's `requires_any`.
    pub fn named(mut self, name: impl AsRef<str>) -> Self {
        self.name = Some(Arc::from(name.as_ref()));
        self
    }

    /// The provider's name.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// Also verifies with `keys`: a token's key is looked for in each source in turn.
    pub fn keys(mut self, keys: impl Into<KeySource>) -> Self {
        self.keys.push(keys.into().0);
        self
    }

    /// Also accepts `issuer` (e.g. Entra ID's v1 and v2 issuers for one tenant).
    pub fn issuer(mut self, issuer: impl AsRef<str>) -> Self {
        self.validation.issuers.push(issuer.as_ref().into());
        self
    }

    /// Accepts tokens meant for `audience` (any one match suffices); once one is set, a
    /// token without `aud` is refused.
    pub fn audience(mut self, audience: impl AsRef<str>) -> Self {
        self.validation.audiences.push(audience.as_ref().into());
        self
    }

    /// With no audience configured, accepts tokens that name one.
    pub fn ignore_unexpected_audience(mut self) -> Self {
        self.validation.ignore_unexpected_audience = true;
        self
    }

    /// How far `exp`, `nbf` and `iat` may be off (default 60 s).
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.validation.leeway = leeway.as_secs();
        self
    }

    /// Makes `claim` mandatory.
    pub fn require(mut self, claim: RequiredClaim) -> Self {
        self.validation.require(claim, true);
        self
    }

    /// Lets tokens without `claim` through (if present it is still checked).
    pub fn allow_missing(mut self, claim: RequiredClaim) -> Self {
        self.validation.require(claim, false);
        self
    }

    /// Refuses tokens that live longer than `max`.
    pub fn max_lifetime(mut self, max: Duration) -> Self {
        self.validation.set_max_lifetime(Some(max));
        self
    }

    /// Requires the header `typ` to be `at+jwt` (RFC 9068 access tokens).
    pub fn require_access_token_type(mut self) -> Self {
        self.validation.require_at_jwt = true;
        self
    }

    /// Where the identity's scopes come from (default [`ClaimMapping::standard`]).
    pub fn claim_mapping(mut self, mapping: ClaimMapping) -> Self {
        self.mapping = mapping;
        self
    }

    /// Checks what one provider needs, whatever the layer.
    pub(crate) fn check(&self) -> Result<(), ConfigError> {
        if self.keys.is_empty() {
            return Err(ConfigError::NoKeys);
        }
        for keys in &self.keys {
            keys.check()?;
        }
        if self.validation.issuers.iter().any(|i| i.is_empty()) {
            return Err(ConfigError::EmptyValue { what: "issuer" });
        }
        if self.validation.audiences.iter().any(|a| a.is_empty()) {
            return Err(ConfigError::EmptyValue { what: "audience" });
        }
        if self.mapping.has_empty_name() {
            return Err(ConfigError::EmptyValue {
                what: "scope claim",
            });
        }
        Ok(())
    }

    /// Verifies the signature over `message` with the provider's key for `kid` and `alg`;
    /// returns the key that verified it when `keep` asks for it (a cache entry remembers it:
    /// without a cache, no reference is counted on the shared key).
    pub(crate) fn verify(
        &self,
        kid: Option<&str>,
        alg: &str,
        message: &[u8],
        signature_b64: &[u8],
        keep: bool,
    ) -> Result<Option<Arc<JwtKey>>, KeyFailure> {
        let mut miss = Miss::Unknown;
        for source in &self.keys {
            let guard;
            let set: &KeySet = match source {
                Source::Static(keys) => keys,
                Source::Jwks(jwks) => {
                    guard = jwks.load();
                    &guard
                }
            };
            match set.select(kid, alg) {
                Ok(candidates) => {
                    let mut refusal = None;
                    for key in candidates.iter() {
                        match verify_signature(signature_b64, message, key) {
                            Ok(()) => return Ok(keep.then(|| Arc::clone(key))),
                            Err(r) => refusal = Some(r),
                        }
                    }
                    return Err(KeyFailure::Refused(refusal.unwrap_or(BAD_KEY)));
                }
                Err(m) => miss = miss.max(m),
            }
        }
        Err(match miss {
            Miss::Unknown => KeyFailure::Unknown,
            Miss::Algorithm => KeyFailure::Refused(BAD_KEY),
        })
    }

    /// Whether `key` (a cached token's) is still one of the provider's keys.
    #[inline]
    pub(crate) fn holds(&self, key: &Arc<JwtKey>) -> bool {
        self.keys.iter().any(|source| match source {
            Source::Static(keys) => keys.holds(key),
            Source::Jwks(jwks) => jwks.load().holds(key),
        })
    }
}

const BAD_KEY: Refusal = invalid("The token's algorithm does not match its key.");

/// Why a provider could not verify a signature.
pub(crate) enum KeyFailure {
    /// No key for the token's `kid` (and `alg`): a JWKS may re-fetch.
    Unknown,
    Refused(Refusal),
}

impl fmt::Debug for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Provider")
            .field("name", &self.name)
            .field("keys", &self.keys)
            .field("validation", &self.validation)
            .field("mapping", &self.mapping)
            .finish()
    }
}

/// A layer's providers, and how a token finds its own.
#[derive(Debug)]
pub(crate) enum Providers {
    /// One provider: no routing (its issuers are checked with the other claims).
    One(Provider),
    /// Several, routed by `iss`.
    Many {
        all: Vec<Provider>,
        by_issuer: Vec<(Box<str>, usize)>,
    },
}

impl Providers {
    pub(crate) fn new(all: Vec<Provider>) -> Result<Self, ConfigError> {
        for provider in &all {
            provider.check()?;
        }
        if all.len() == 1 {
            return Ok(Self::One(all.into_iter().next().expect("one provider")));
        }
        if all.is_empty() {
            return Err(ConfigError::NoKeys);
        }
        let mut by_issuer: Vec<(Box<str>, usize)> = Vec::new();
        for (index, provider) in all.iter().enumerate() {
            if provider.validation.issuers.is_empty() {
                return Err(ConfigError::ProviderWithoutIssuer);
            }
            for issuer in &provider.validation.issuers {
                if by_issuer.iter().any(|(i, _)| i == issuer) {
                    return Err(ConfigError::DuplicateIssuer {
                        issuer: issuer.to_string(),
                    });
                }
                by_issuer.push((issuer.clone(), index));
            }
        }
        Ok(Self::Many { all, by_issuer })
    }

    /// The provider for a token with issuer `iss`.
    #[inline]
    pub(crate) fn choose(&self, iss: Option<&str>) -> Option<(usize, &Provider)> {
        match self {
            Self::One(provider) => Some((0, provider)),
            Self::Many { all, by_issuer } => {
                let iss = iss?;
                by_issuer
                    .iter()
                    .find(|(issuer, _)| **issuer == *iss)
                    .map(|(_, index)| (*index, &all[*index]))
            }
        }
    }

    #[inline]
    pub(crate) fn get(&self, index: usize) -> &Provider {
        match self {
            Self::One(provider) => provider,
            Self::Many { all, .. } => &all[index],
        }
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &Provider> {
        let (one, many) = match self {
            Self::One(provider) => (Some(provider), &[][..]),
            Self::Many { all, .. } => (None, &all[..]),
        };
        one.into_iter().chain(many)
    }
}
