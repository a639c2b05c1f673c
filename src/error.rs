//! [`Error`]: every error tollgate's set-up can return, for `?` in one function.

use std::fmt;

/// Any error of tollgate's configuration and set-up: building layers and keys, connecting to
/// stores, discovering providers. Each module keeps its own precise error type (match on those
/// where the cause matters); this one converts from all of them, so a set-up function can
/// return `Result<_, tollgate::Error>` and use `?` throughout. The module's error is the
/// [`source`](std::error::Error::source).
///
/// ```
/// # #[cfg(all(feature = "api-key", feature = "jwt", feature = "rate-limit"))]
/// # fn main() -> Result<(), tollgate::Error> {
/// use tollgate::Quota;
/// use tollgate::api_key::{ApiKeys, InMemoryKeyStore, KeyFormat};
/// use tollgate::jwt::{Algorithm, JwtKey, JwtLayer};
/// use tollgate::rate_limit::{Limit, RateLimitLayer};
///
/// let keys = ApiKeys::builder(InMemoryKeyStore::new())
///     .key_format(KeyFormat::new("sk_live")?)
///     .build();
/// let jwt = JwtLayer::new(JwtKey::hmac([7; 32], Algorithm::HS256)?)?;
/// let per_ip = RateLimitLayer::with_limit(Limit::new("per-ip", Quota::per_minute(600))?);
/// # let _ = (keys, jwt, per_ip);
/// # Ok(()) }
/// # #[cfg(not(all(feature = "api-key", feature = "jwt", feature = "rate-limit")))]
/// # fn main() {}
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// An API-key setting ([`api_key::ConfigError`](crate::api_key::ConfigError)).
    #[cfg(feature = "api-key")]
    ApiKeyConfig(crate::api_key::ConfigError),
    /// The API-key store failed ([`api_key::StoreError`](crate::api_key::StoreError)).
    #[cfg(feature = "api-key")]
    ApiKeyStore(crate::api_key::StoreError),
    /// A JWT key or layer setting ([`jwt::ConfigError`](crate::jwt::ConfigError)).
    #[cfg(feature = "jwt-base")]
    JwtConfig(crate::jwt::ConfigError),
    /// Fetching a JWKS failed ([`jwt::FetchError`](crate::jwt::FetchError)).
    #[cfg(feature = "jwt-base")]
    JwksFetch(crate::jwt::FetchError),
    /// OpenID Connect discovery failed ([`oidc::DiscoveryError`](crate::oidc::DiscoveryError)).
    #[cfg(feature = "oidc")]
    Discovery(crate::oidc::DiscoveryError),
    /// The HTTPS client could not be built ([`oidc::ClientError`](crate::oidc::ClientError)).
    #[cfg(feature = "oidc")]
    HttpClient(crate::oidc::ClientError),
    /// Issuing a token failed ([`issuer::IssueError`](crate::issuer::IssueError)).
    #[cfg(feature = "issuer")]
    Issue(crate::issuer::IssueError),
    /// The refresh-token store failed ([`issuer::StoreError`](crate::issuer::StoreError)).
    #[cfg(feature = "issuer")]
    RefreshStore(crate::issuer::StoreError),
    /// A rate-limit setting ([`rate_limit::ConfigError`](crate::rate_limit::ConfigError)).
    #[cfg(feature = "rate-limit")]
    RateLimitConfig(crate::rate_limit::ConfigError),
    /// The rate-limit store failed ([`rate_limit::StoreError`](crate::rate_limit::StoreError)).
    #[cfg(feature = "rate-limit")]
    RateLimitStore(crate::rate_limit::StoreError),
    /// A Redis backend failed ([`redis::RedisError`](crate::redis::RedisError)).
    #[cfg(feature = "redis")]
    Redis(crate::redis::RedisError),
    /// A scope requirement cannot work ([`scope::ScopeError`](crate::scope::ScopeError)).
    Scope(crate::scope::ScopeError),
}

macro_rules! variants {
    ($( $(#[$cfg:meta])* $variant:ident($ty:ty) ),* $(,)?) => {
        impl Error {
            fn inner(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
                match self {
                    $( $(#[$cfg])* Self::$variant(error) => error, )*
                }
            }
        }

        $(
            $(#[$cfg])*
            impl From<$ty> for Error {
                fn from(error: $ty) -> Self {
                    Self::$variant(error)
                }
            }
        )*
    };
}

variants! {
    #[cfg(feature = "api-key")] ApiKeyConfig(crate::api_key::ConfigError),
    #[cfg(feature = "api-key")] ApiKeyStore(crate::api_key::StoreError),
    #[cfg(feature = "jwt-base")] JwtConfig(crate::jwt::ConfigError),
    #[cfg(feature = "jwt-base")] JwksFetch(crate::jwt::FetchError),
    #[cfg(feature = "oidc")] Discovery(crate::oidc::DiscoveryError),
    #[cfg(feature = "oidc")] HttpClient(crate::oidc::ClientError),
    #[cfg(feature = "issuer")] Issue(crate::issuer::IssueError),
    #[cfg(feature = "issuer")] RefreshStore(crate::issuer::StoreError),
    #[cfg(feature = "rate-limit")] RateLimitConfig(crate::rate_limit::ConfigError),
    #[cfg(feature = "rate-limit")] RateLimitStore(crate::rate_limit::StoreError),
    #[cfg(feature = "redis")] Redis(crate::redis::RedisError),
    Scope(crate::scope::ScopeError),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self.inner(), f)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(self.inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn it_is_send_sync_and_shows_the_module_error() {
        fn send_sync<T: Send + Sync + 'static>() {}
        send_sync::<Error>();
        let error = Error::from(crate::scope::ScopeError::Empty);
        assert_eq!(
            error.to_string(),
            crate::scope::ScopeError::Empty.to_string()
        );
        assert!(std::error::Error::source(&error).is_some());
    }
}
