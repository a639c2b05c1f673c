//! Authorization after authentication: required scopes, and predicates on the caller.
//!
//! These layers decide, synchronously, whether a request that an authentication layer
//! (`ApiKeyLayer`, `JwtLayer`, the combined [`app_user`](crate::app_user) layer) let in may
//! reach this route. They read the identities from the request extensions through the
//! [`Principal`](crate::principal::Principal) view, so they compose with any of those layers
//! in any stack.
//!
//! | layer | passes when | refuses with |
//! |---|---|---|
//! | [`RequireScopesLayer`] | the effective scopes satisfy a [`RequiredScopes`] | 403 `insufficient_scope` |
//! | [`RequireLayer::principal`] | your predicate on the [`Principal`](crate::principal::Principal) holds | 403 `forbidden` |
//! | [`RequireLayer::claims`] | your predicate on the validated `Claims<C>` holds (`jwt-base`) | 403 `forbidden` |
//! | [`RequireLayer::new`] | your [`Authorize`] says so | what it returns |
//!
//! A request with no identity at all gets a 401 (`missing_credential`): the layer sits behind
//! optional authentication, or in front of none.
//!
//! # Scopes
//!
//! [`RequiredScopes`] holds alternatives of all-of sets: [`all`](RequiredScopes::all),
//! [`any`](RequiredScopes::any), and [`or`](RequiredScopes::or) for `(a and b) or c`.
//! Matching is exact and case-sensitive (no prefixes, no wildcards). An app's scopes come from
//! its key record; a user's from the token's `scope` (space-delimited, RFC 8693/9068) or `scp`
//! (array) claim, or the claim named with `JwtBuilder::scope_claim` (such as `permissions`).
//! With both an app and a user, the effective scopes are their intersection unless configured
//! otherwise ([`EffectiveScopes`](crate::principal::EffectiveScopes)).
//!
//! An insufficient scope is answered as RFC 6750 §3.1 asks: `403` with a `WWW-Authenticate`
//! challenge for the credential that lacks the scope (`ApiKey header="x-api-key",
//! error="insufficient_scope", scope="…"` for an API key, `Bearer error="insufficient_scope",
//! …` for a token, both when both lack it; `scope` names the first alternative) and a
//! problem+json body; gRPC requests get `PERMISSION_DENIED` (7).
//!
//! ```
//! use axum::{Router, body::Body, routing::get};
//! use tollgate::identity::AppIdentity;
//! use tollgate::scope::RequireScopesLayer;
//! use tower::ServiceExt;
//! use tower::util::MapRequestLayer;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // Stands in for `ApiKeyLayer`: an app whose key grants `orders:read` only.
//! let authenticate = MapRequestLayer::new(|mut request: http::Request<Body>| {
//!     let app = AppIdentity::builder("key-1", "app-1").scopes(["orders:read"]).build();
//!     request.extensions_mut().insert(app);
//!     request
//! });
//!
//! let app = Router::new()
//!     .route("/orders", get(|| async { "orders" }))
//!     .route_layer(RequireScopesLayer::all(["orders:read"])?)
//!     .route("/refunds", get(|| async { "refunds" }).route_layer(RequireScopesLayer::all(["refunds:write"])?))
//!     .layer(authenticate);
//!
//! let get = |path: &str| http::Request::get(path).body(Body::empty());
//! assert_eq!(app.clone().oneshot(get("/orders")?).await?.status(), 200);
//! let refused = app.clone().oneshot(get("/refunds")?).await?;
//! assert_eq!(refused.status(), 403);
//! assert_eq!(
//!     refused.headers()["www-authenticate"],
//!     r#"ApiKey header="x-api-key", error="insufficient_scope", scope="refunds:write""#
//! );
//! assert_eq!(app.oneshot(get("/nowhere")?).await?.status(), 404);
//! # Ok(())
//! # }
//! ```
//!
//! # Where the layers go
//!
//! - **`route_layer`, not `layer`, for authentication and authorization in axum**:
//!   `Router::route_layer` wraps only the routes defined before it, so a request for an
//!   unknown path still gets 404 instead of a 401/403 that would reveal nothing useful and
//!   confuse clients. `Router::layer` wraps the fallback too.
//! - **Per method**: put the layer on one method router to guard one method of a path:
//!   `get(list).post(create.layer(RequireScopesLayer::all(["orders:write"])?))`, or
//!   `get(list).merge(post(create).route_layer(…))`. Seed 000's `GET /orders` with a key
//!   scope and `POST /orders` with key *and* user is exactly this shape (see
//!   [`app_user`](crate::app_user)).
//! - **Order**: authentication outside, authorization inside. In axum, a later `.layer` /
//!   `.route_layer` call wraps the earlier ones, so add `RequireScopesLayer` *first* and the
//!   authentication layer *after* it; with `tower::ServiceBuilder` the first `.layer` is the
//!   outermost, so the authentication layer comes first.
//! - **CORS outside auth**: a browser's preflight `OPTIONS` request never carries
//!   credentials. Put `tower_http::cors::CorsLayer` outside (before) every tollgate layer so it
//!   answers preflights itself; behind auth, preflights get a 401 and the browser blocks the
//!   real request. In axum, call `.layer(cors)` last:
//!
//!   ```text
//!   Router::new()
//!       .route("/orders", get(list))
//!       .route_layer(RequireScopesLayer::all(["orders:read"])?)
//!       .route_layer(api_key_layer)
//!       .layer(cors)          // outermost: answers OPTIONS preflights
//!   ```
//!
//! # Claim checks without writing a layer
//!
//! ```
//! use tollgate::identity::UserIdentity;
//! use tollgate::scope::RequireLayer;
//! use tower::{ServiceBuilder, ServiceExt, service_fn};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let service = ServiceBuilder::new()
//!     .layer(RequireLayer::principal(|p| p.user().and_then(|u| u.subject()) == Some("alice")))
//!     .service(service_fn(|_: http::Request<String>| async {
//!         Ok::<_, std::convert::Infallible>(http::Response::new(String::from("hi")))
//!     }));
//!
//! let mut request = http::Request::new(String::new());
//! request.extensions_mut().insert(UserIdentity::new(Some("bob".into()), ["read"]));
//! assert_eq!(service.clone().oneshot(request).await?.status(), 403);
//! assert_eq!(service.oneshot(http::Request::new(String::new())).await?.status(), 401);
//! # Ok(())
//! # }
//! ```
//!
//! # tonic
//!
//! The layers work in `tonic::transport::Server::builder().layer(…)` as they are; refusals
//! reach tonic clients as `Status` with `PERMISSION_DENIED` or `UNAUTHENTICATED`. Handlers read
//! identities with `request.extensions().get::<AppIdentity>()`, `get::<UserIdentity>()` or
//! `Principal::from_extensions(request.extensions())`.

mod authorize;
mod future;
mod layer;
mod required;
mod service;

pub use self::authorize::{Authorize, ExtensionPredicate, PrincipalPredicate};
pub use self::future::ResponseFuture;
pub use self::layer::{RequireLayer, RequireScopes, RequireScopesLayer};
pub use self::required::{RequiredScopes, ScopeError};
pub use self::service::Require;

#[cfg(test)]
mod tests;
