//! One layer for "which app, on behalf of which user": an application credential (API key)
//! and a user credential (bearer JWT) checked together under a [`Policy`].
//!
//! Seed 000's `POST /orders` needs both: the key says which application calls, the token
//! says for which user (`[ApiKeyAuthorize][Authorize]`). [`AppUserLayer`] runs both
//! authenticators on every request and inserts what they found, so the handler sees the
//! [`AppIdentity`](crate::identity::AppIdentity) *and* the
//! [`UserIdentity`](crate::identity::UserIdentity) / `Claims<C>`.
//!
//! | [`Policy`] | passes with |
//! |---|---|
//! | [`AppAndUser`](Policy::AppAndUser) | a valid app credential and a valid user credential |
//! | [`AppOrUser`](Policy::AppOrUser) | at least one valid credential |
//! | [`AppOnly`](Policy::AppOnly) | a valid app credential (a user credential may come too) |
//! | [`UserOnly`](Policy::UserOnly) | a valid user credential (an app credential may come too) |
//!
//! **Every credential that is sent is checked, whatever the policy**: a bad key next to a
//! good token (or the reverse) is rejected with the bad credential's 401, never ignored, even
//! under "or". A missing credential that the policy needs answers 401 with a challenge for
//! that credential; a request with neither gets both challenges.
//!
//! It works with any two [`Authenticator`](crate::auth::Authenticator)s, so it needs no
//! feature of its own: with `api-key` and `jwt`, build it from the two configured layers with
//! [`AppUserLayer::from_layers`](crate::auth::AuthLayer::from_layers). When both
//! authenticators decide synchronously (a cached key, a cached or HMAC token), nothing is
//! boxed and the inner service is called from `call`; if either must await, the other's answer
//! is kept and the shared clone-and-swap slow path of [`auth`](crate::auth) takes over.
//!
//! With both identities present, the effective scopes are their intersection; choose
//! otherwise with [`effective_scopes`](crate::auth::AuthLayer::effective_scopes) (see
//! [`principal`](crate::principal)).
//!
//! # Example: seed 000's orders endpoints
//!
//! ```
//! # #[cfg(all(feature = "api-key", feature = "jwt-base"))]
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use std::time::{Duration, UNIX_EPOCH};
//!
//! use axum::{Extension, Router, body::Body, routing::{get, post}};
//! use tollgate::api_key::{ApiKeyLayer, ApiKeys, InMemoryKeyStore, NewKey};
//! use tollgate::app_user::{AppUserLayer, Policy};
//! use tollgate::clock::ManualClock;
//! use tollgate::identity::{AppIdentity, UserIdentity};
//! use tollgate::jwt::{Algorithm, JwtKey, JwtLayer};
//! use tollgate::scope::RequireScopesLayer;
//! use tower::ServiceExt;
//!
//! let keys = ApiKeys::builder(InMemoryKeyStore::new()).build();
//! let key = keys.generate(NewKey::new("app-1", "Shop").scopes(["orders:read"])).await?;
//! let api_key = ApiKeyLayer::new(keys);
//! let jwt = JwtLayer::builder(JwtKey::hmac(b"an example secret of at least 32 bytes!", Algorithm::HS256)?)
//!     .issuer("https://auth.example")
//!     .clock(Arc::new(ManualClock::new(UNIX_EPOCH + Duration::from_secs(1_700_000_000))))
//!     .build()?;
//!
//! async fn create(Extension(app): Extension<AppIdentity>, Extension(user): Extension<UserIdentity>) -> String {
//!     format!("order for {} via {}", user.subject().unwrap_or("?"), app.app_id())
//! }
//!
//! let app = Router::new().route(
//!     "/orders",
//!     // GET: an API key with `orders:read` (in axum, the last route_layer is the outermost).
//!     get(|| async { "orders" })
//!         .route_layer(RequireScopesLayer::all(["orders:read"])?)
//!         .route_layer(api_key.clone())
//!         // POST: an API key (which app) and a JWT (which user).
//!         .merge(post(create).route_layer(AppUserLayer::from_layers(&api_key, &jwt, Policy::AppAndUser))),
//! );
//!
//! // {"sub":"alice","scope":"read write","exp":1700000900,"iss":"https://auth.example"}
//! let token = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhbGljZSIsInNjb3BlIjoicmVhZCB3cml0ZSIsImV4cCI6MTcwMDAwMDkwMCwiaXNzIjoiaHR0cHM6Ly9hdXRoLmV4YW1wbGUifQ._7IVev9VnouaLwZ_CyGrb4MO2vU-4GSrrFZS2q0_fDE";
//! let request = |method: &str, with_key: bool, with_token: bool| {
//!     let mut builder = http::Request::builder().method(method).uri("/orders");
//!     if with_key {
//!         builder = builder.header("x-api-key", key.key().expose());
//!     }
//!     if with_token {
//!         builder = builder.header("authorization", format!("Bearer {token}"));
//!     }
//!     builder.body(Body::empty())
//! };
//!
//! assert_eq!(app.clone().oneshot(request("GET", true, false)?).await?.status(), 200);
//! assert_eq!(app.clone().oneshot(request("POST", true, false)?).await?.status(), 401);
//! assert_eq!(app.clone().oneshot(request("POST", false, true)?).await?.status(), 401);
//! let response = app.oneshot(request("POST", true, true)?).await?;
//! assert_eq!(response.status(), 200);
//! # Ok(())
//! # }
//! # #[cfg(not(all(feature = "api-key", feature = "jwt-base")))]
//! # fn main() {}
//! ```

mod authenticator;
mod future;
mod layer;

pub use self::authenticator::{AppUser, Joint};
pub use self::future::JointFuture;
pub use self::layer::{AppUserLayer, RequireAppUser};

/// Which credentials a request must carry. See the [module docs](self).
///
/// Under every policy, a credential that is sent is checked, and a bad one is rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Policy {
    /// An app credential and a user credential, both valid.
    AppAndUser,
    /// At least one valid credential, app or user.
    AppOrUser,
    /// A valid app credential; a user credential is optional.
    AppOnly,
    /// A valid user credential; an app credential is optional.
    UserOnly,
}

#[cfg(test)]
mod tests;
