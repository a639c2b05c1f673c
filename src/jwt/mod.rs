//! JWT bearer tokens: [`JwtLayer`] validates `Authorization: Bearer <jwt>` (RFC 6750) and
//! hands a [`UserIdentity`](crate::identity::UserIdentity) and the validated [`Claims<C>`]
//! downstream through the request extensions.
//!
//! # Contents
//!
//! | item | what it is |
//! |---|---|
//! | [`JwtLayer`], [`JwtBuilder`], [`RequireJwt`] | the layer (the shared [`AuthLayer`](crate::auth::AuthLayer) with a [`JwtAuthenticator`]), its builder, its service |
//! | [`JwtKey`], [`KeySet`], [`Algorithm`] | verification keys (HMAC, RSA, EC, Ed25519 from PEM, DER or JWK), each pinned to one algorithm |
//! | [`JwksSource`], [`JwksFetcher`], [`jwks`] | keys from a JWKS endpoint, refreshed in the background |
//! | [`VerifiedToken`], [`Claims`], [`StandardClaims`] | what a valid token hands downstream (with a [`UserIdentity`](crate::identity::UserIdentity)) |
//! | [`Revocation`], [`RevocationList`] | refusing tokens by `jti` (shared by every instance over Redis: `redis::RedisRevocation`, feature `redis`) |
//! | [`ConfigError`], [`RequiredClaim`] | configuration |
//!
//! # What is checked, and in what order
//!
//! 1. **Extraction** ([RFC 6750 §2](https://www.rfc-editor.org/rfc/rfc6750#section-2)): the
//!    scheme `Bearer` in any case, exactly one credential; a malformed header or two
//!    credentials answer `400 invalid_request`. The token's length is capped (8 KiB by default)
//!    before anything is decoded. The `access_token` query parameter and a cookie are read only
//!    when enabled ([`JwtBuilder::token_from_query`], [`JwtBuilder::token_from_cookie`]).
//! 2. **Verified-token cache**: a token verified before (same bytes) skips base64, JSON and the
//!    signature. Its `exp`/`nbf` and revocation are still checked on every request, and an
//!    entry dies with the token's `exp` or with its key's removal from the key set.
//! 3. **Header**: decoded, checked to be UTF-8 and parsed once. `crit` is refused (this layer understands no
//!    extension, RFC 7515 §4.1.11); `jku`, `x5u`, `x5c` and `jwk` are ignored, never followed.
//! 4. **Key**: chosen by `kid` from a [`KeySet`] or a [`JwksSource`]. Each [`JwtKey`] is pinned
//!    to one algorithm; the token's `alg` must equal it exactly, so `none` (in any spelling)
//!    and algorithm confusion (HMAC keyed with an RSA public key) are impossible.
//! 5. **Signature**: verified by `jsonwebtoken`'s crypto backend, chosen by feature:
//!
//!    | feature | backend |
//!    |---|---|
//!    | `jwt` | `jwt-base` + `aws-lc-rs` (RS256 about 9x, ES256 about 4x faster than pure Rust) |
//!    | `rust-crypto` | `jwt-base` + the pure-Rust RustCrypto backend |
//!    | `jwt-base` alone | the provider your application installs with `jsonwebtoken::crypto::CryptoProvider::install_default` |
//!
//!    With both backend features on, aws-lc-rs verifies.
//! 6. **Claims**: decoded once and checked to be UTF-8 (unknown members included); duplicate
//!    members, wrong types and out-of-range numbers are rejections. `exp` is required and checked with a leeway (60 s by default), `nbf` and
//!    `iat` likewise; issuers and audiences are checked when configured (a configured one that
//!    is missing from the token is a rejection); optional required claims, maximum lifetime
//!    and `typ: at+jwt` (RFC 9068).
//! 7. **Revocation** by `jti` ([`Revocation`], [`RevocationList`]): the layer tells its
//!    denylist its leeway, so an entry revoked until the token's `exp` lasts until the layer
//!    refuses the token as expired. [`Revoker`] is what a token service revokes through.
//!
//! Every failure is a [`Rejection`](crate::rejection::Rejection) with a fixed, token-free
//! detail: `401` with `WWW-Authenticate: Bearer realm=…, error="invalid_token",
//! error_description=…` over HTTP, `UNAUTHENTICATED` over gRPC.
//!
//! # Example
//!
//! ```
//! use std::convert::Infallible;
//! use std::sync::Arc;
//! use std::time::{Duration, UNIX_EPOCH};
//!
//! use tollgate::clock::ManualClock;
//! use tollgate::identity::UserIdentity;
//! use tollgate::jwt::{Algorithm, JwtKey, JwtLayer};
//! use tower::{ServiceBuilder, ServiceExt, service_fn};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let key = JwtKey::hmac(b"an example secret of at least 32 bytes!", Algorithm::HS256)?;
//! let clock = ManualClock::new(UNIX_EPOCH + Duration::from_secs(1_700_000_000));
//! let layer = JwtLayer::builder(key)
//!     .issuer("https://auth.example")
//!     .clock(Arc::new(clock.clone()))
//!     .build()?;
//!
//! let service = ServiceBuilder::new()
//!     .layer(layer)
//!     .service(service_fn(|request: http::Request<String>| async move {
//!         let user = request.extensions().get::<UserIdentity>().unwrap();
//!         assert!(user.has_scope("write"));
//!         Ok::<_, Infallible>(http::Response::new(user.subject().unwrap_or("").to_owned()))
//!     }));
//!
//! // {"sub":"alice","scope":"read write","exp":1700000900,"iss":"https://auth.example"}
//! let token = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhbGljZSIsInNjb3BlIjoicmVhZCB3cml0ZSIsImV4cCI6MTcwMDAwMDkwMCwiaXNzIjoiaHR0cHM6Ly9hdXRoLmV4YW1wbGUifQ._7IVev9VnouaLwZ_CyGrb4MO2vU-4GSrrFZS2q0_fDE";
//! let request = || {
//!     http::Request::builder()
//!         .header("authorization", format!("Bearer {token}"))
//!         .body(String::new())
//! };
//!
//! let response = service.clone().oneshot(request()?).await?;
//! assert_eq!(response.status(), 200);
//!
//! clock.advance(Duration::from_secs(20 * 60)); // past exp (+15 min) and the 60 s leeway
//! let response = service.clone().oneshot(request()?).await?;
//! assert_eq!(response.status(), 401);
//!
//! let response = service.oneshot(http::Request::new(String::new())).await?;
//! assert_eq!(response.status(), 401); // no credential (use `.optional()` to let it through)
//! # Ok(())
//! # }
//! ```
//!
//! # Keys from a JWKS endpoint
//!
//! Implement [`JwksFetcher`] with your HTTP client, build a [`JwksSource`], load it once and
//! spawn its background refresh; see the [`jwks`] module docs for the refresh rules.
//!
//! ```no_run
//! # use tollgate::jwt::{JwksFetcher, JwksSource, JwtLayer};
//! # async fn run(fetcher: impl JwksFetcher) -> Result<(), Box<dyn std::error::Error>> {
//! let source = JwksSource::builder(fetcher).build();
//! let next = source.refresh().await?; // the keys in hand before the first request
//! source.spawn_refresh_after(next);      // then kept fresh, from `max-age` on
//! let layer = JwtLayer::builder(source)
//!     .issuer("https://auth.example")
//!     .audience("https://api.example")
//!     .build()?;
//! # Ok(()) }
//! ```
//!
//! # Deployment caveats
//!
//! - **Clock skew**: the leeway absorbs small differences between the issuer's clock and
//!   yours; keep servers on NTP rather than raising it.
//! - **JWKS availability**: when the provider is down the last good keys keep working, but a
//!   key published during the outage is unknown until a fetch succeeds.
//! - **Logs**: pair the layer with tower-http's `SetSensitiveRequestHeadersLayer` for
//!   `authorization` so tokens never reach request logs.

mod authenticator;
mod base64url;
mod cache;
mod claims;
mod error;
mod extract;
mod hmac;
pub mod jwks;
mod key_set;
mod keys;
mod layer;
mod mapping;
mod provider;
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub mod redis;
mod revocation;
mod signature;
mod validation;
mod verified;

/// The signature algorithms: `jsonwebtoken`'s enum, re-exported on purpose. It is part of
/// tollgate's contract (a `jsonwebtoken` major version change is a tollgate major version
/// change), so keys, issuers and your own `jsonwebtoken` code share one type.
pub use jsonwebtoken::Algorithm;

pub use self::authenticator::{JwtAuthenticator, KeyFetch};
pub use self::claims::{Audience, Claims, ScopeClaim, StandardClaims};
pub use self::error::ConfigError;
pub use self::jwks::{FetchError, JwksDocument, JwksFetcher, JwksSource, JwksSourceBuilder};
pub use self::key_set::{KeySet, KeySource, MAX_KIDLESS_CANDIDATES};
pub use self::keys::JwtKey;
pub use self::layer::{JwtBuilder, JwtLayer, RequireJwt};
pub use self::mapping::{ClaimMapping, ClaimPath};
pub use self::provider::Provider;
pub use self::revocation::{Revocation, RevocationList, RevokeError, RevokeFuture, Revoker};
pub use self::validation::RequiredClaim;
pub use self::verified::VerifiedToken;
