//! API-key authentication: `X-API-Key`, hashed at rest, cached, rotatable.
//!
//! API keys identify an *application*: a server-to-server caller, a background job, a webhook
//! sender (seed 000, seed 001). They are long-lived and opaque, so three things matter: that a
//! leaked database does not leak them, that checking one costs next to nothing, and that they
//! can be replaced without downtime.
//!
//! - **Format** ([`KeyFormat`]): `<prefix>_<256 random bits in base62><checksum>`, the
//!   checksum being the first 32 bits of the SHA-256 of what precedes it. It lets the layer
//!   refuse a mistyped key before any cache or store work. Keys of other systems are accepted
//!   next to these ([`ForeignKeyFormat`]); environments live in the prefix
//!   ([`KeyFormat::with_environment`]).
//! - **At rest** ([`ApiKeyRecord`]): only the SHA-256 [`KeyDigest`] of the whole key; the
//!   plaintext is shown once, by [`ApiKeys::generate`].
//! - **Applications** ([`Application`]): a plan quota the keys inherit, and an enabled flag:
//!   [`ApiKeys::disable_app`] refuses every key of the app with `403 app_disabled`.
//! - **Usage** ([`ApiKeysBuilder::track_usage`]): per-key counts and last use, counted in
//!   memory and flushed to the store in batches ([`crate::usage`]).
//! - **Lookup** ([`KeyStore`]): pluggable; [`InMemoryKeyStore`] is built in. A moka cache sits in
//!   front of it: found keys are served for a positive TTL, unknown keys remembered for a short
//!   negative TTL, concurrent misses for one key cause a single store lookup, and revoking or
//!   rotating through [`ApiKeys`] evicts at once. A store that fails or exceeds the lookup timeout
//!   gets the request a 503 (fail closed), never a hang.
//! - **Rotation** ([`ApiKeys::rotate`]): each application has a primary and a secondary slot;
//!   a new key in a slot retires the old one after a grace period (24 h by default) during which
//!   both work. A zero grace retires it at once.
//! - **The layer** ([`ApiKeyLayer`]): reads `X-API-Key` (another header, or a query parameter,
//!   when configured), answers 401 for missing, malformed, unknown, expired, inactive and
//!   revoked keys (403 for a disabled application's)
//!   with a `WWW-Authenticate: ApiKey header="x-api-key", error="…"` challenge, and hands the
//!   handler an [`AppIdentity`](crate::identity::AppIdentity), never the key.
//!
//! # Example
//!
//! ```
//! use axum::{Extension, Router, routing::get};
//! use tollgate::api_key::{ApiKeyLayer, ApiKeys, InMemoryKeyStore, NewKey};
//! use tollgate::identity::AppIdentity;
//! use tower::ServiceExt;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let keys = ApiKeys::builder(InMemoryKeyStore::new()).build();
//! let key = keys.generate(NewKey::new("app-1", "Orders sync").scopes(["orders:read"])).await?;
//!
//! let app = Router::new()
//!     .route("/orders", get(|Extension(app): Extension<AppIdentity>| async move {
//!         format!("hello {}", app.app_name())
//!     }))
//!     // `route_layer`, so unknown paths stay 404 instead of 401.
//!     .route_layer(ApiKeyLayer::new(keys.clone()));
//!
//! let request = http::Request::get("/orders")
//!     .header("x-api-key", key.key().expose())
//!     .body(axum::body::Body::empty())?;
//! assert_eq!(app.clone().oneshot(request).await?.status(), 200);
//!
//! let request = http::Request::get("/orders").body(axum::body::Body::empty())?;
//! let response = app.oneshot(request).await?;
//! assert_eq!(response.status(), 401);
//! assert_eq!(response.headers()["www-authenticate"], r#"ApiKey header="x-api-key""#);
//! # Ok(())
//! # }
//! ```
//!
//! # Deployment notes
//!
//! - Keys travel in a header: serve over TLS only, and mark the header sensitive in your
//!   tracing (`tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer` with
//!   `x-api-key`) so request logs never print it. tollgate itself never logs a key.
//! - The cache is per process. With several instances, a key revoked on one stays usable on the
//!   others until their positive TTL ends, unless invalidations are broadcast
//!   ([`ApiKeysBuilder::on_invalidate`] and [`ApiKeys::invalidate`] are the hooks; the
//!   `redis` feature's `redis::RedisInvalidation` wires them over Redis pub/sub).
//! - With the `postgres` feature, `postgres::PostgresKeyStore` keeps records in PostgreSQL.

mod app;
mod authenticator;
mod cache;
mod dyn_store;
mod format;
mod keys;
mod layer;
mod memory;
mod record;
mod store;

#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub mod postgres;
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub mod redis;

use std::fmt;

pub use self::app::Application;
pub use self::authenticator::{ApiKeyAuthenticator, DEFAULT_HEADER};
pub use self::dyn_store::{BoxKeyStore, DynKeyStore};
pub use self::format::{ApiKey, ForeignKeyFormat, KeyDigest, KeyFormat};
pub use self::keys::{ApiKeys, ApiKeysBuilder, GeneratedKey, InvalidateHook, Rotation, UsageFlush};
pub use self::layer::{ApiKeyLayer, RequireApiKey};
pub use self::memory::InMemoryKeyStore;
pub use self::record::{ApiKeyRecord, NewKey};
pub use self::store::{KeyStore, StoreError, StoreErrorKind};

/// A configuration that cannot work, caught when it is built.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// A key prefix must be 1 to 16 characters of `a-z`, `0-9` and `_`, starting with a letter.
    InvalidPrefix {
        /// The prefix that was given.
        prefix: String,
    },
    /// A checksum secret must be at least 32 bytes (256 bits).
    WeakChecksumSecret {
        /// The length that was given.
        length: usize,
    },
    /// A previous checksum secret, or accepting unkeyed checksums, needs a current secret.
    NoChecksumSecret,
    /// A foreign key format needs a printable prefix and alphabet and a length of at least 16.
    InvalidForeignFormat {
        /// The prefix that was given.
        prefix: String,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidPrefix { prefix } => write!(
                f,
                "invalid API-key prefix {prefix:?}: use 1 to 16 characters of a-z, 0-9 and _, starting with a letter"
            ),
            Self::WeakChecksumSecret { length } => write!(
                f,
                "an API-key checksum secret of {length} bytes is too short: use at least 32"
            ),
            Self::NoChecksumSecret => f.write_str("set the current API-key checksum secret first"),
            Self::InvalidForeignFormat { prefix } => write!(
                f,
                "invalid foreign key format {prefix:?}: use a printable prefix and alphabet, and at least 16 characters"
            ),
        }
    }
}

impl std::error::Error for ConfigError {}
