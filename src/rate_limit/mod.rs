//! Per-key fixed-window rate limiting: [`RateLimitLayer`].
//!
//! Each request is counted under a **key** (by default the API key's id, from the
//! [`AppIdentity`](crate::identity::AppIdentity) that `ApiKeyLayer` inserts) in **fixed windows
//! aligned to the clock**: window index `floor(unix_time / window)`, so every node and store
//! agrees on where a window starts and the reset time is exact. Units say what they mean:
//! [`Quota::per_hour(1000)`](crate::Quota::per_hour) admits 1000 requests per hour and key.
//!
//! A key over its quota gets **429 Too Many Requests** with `Retry-After` in whole seconds,
//! rounded up and never 0, and an RFC 9457 problem+json body; a gRPC request (`content-type:
//! application/grpc…`) gets `RESOURCE_EXHAUSTED` (a plain 429 would reach a gRPC client as
//! `UNAVAILABLE`). Not to be confused with `tower::limit::RateLimitLayer`, which throttles a
//! whole service through backpressure; this layer never holds back readiness.
//!
//! # What you choose
//!
//! | what | default | options |
//! |---|---|---|
//! | key | [`AppKeyId`] | [`AppId`], [`UserSubject`], [`AppAndUser`], [`ClientIp`] (peer, or trusted proxies' `X-Forwarded-For`), [`Route`], a pair `(A, B)`, any closure ([`KeyExtractor`]) |
//! | no key in the request | [`OnMissingKey::Reject`] (401) | `Pass`, `FallbackToIp` — never a 500 |
//! | quota | one per layer | overridden per key by [`AppIdentity::quota`](crate::identity::AppIdentity::quota) (plan tiers); up to [`MAX_LIMITS`] named limits decided all or nothing ([`RateLimitLayer::with_limits`]) |
//! | cost | 1 per request | [`RateLimitLayer::cost`] |
//! | store | [`MemoryStore`] (dashmap, exact, self-sweeping, capped) | `GcraStore` on `governor` (feature `governor`), `redis::RedisStore` shared by every instance (feature `redis`), or your own [`RateLimitStore`] |
//! | store failure | [`OnStoreError::FailClosed`] (503), 200 ms timeout | `FailOpen`, [`RateLimitLayer::store_timeout`] |
//! | headers | `Retry-After` on 429, IETF `RateLimit-Policy` / `RateLimit` on every response | IETF off ([`ietf_headers(false)`](RateLimitLayer::ietf_headers)), `X-RateLimit-*` ([`legacy_headers`](RateLimitLayer::legacy_headers)) |
//! | shadow mode | off | [`dry_run`](RateLimitLayer::dry_run): count and report, refuse nothing |
//!
//! # Example: seed 000, 1000 requests per hour per API key
//!
//! ```
//! use std::convert::Infallible;
//! use std::time::{Duration, UNIX_EPOCH};
//! use std::sync::Arc;
//! use bytes::Bytes;
//! use http::{Request, Response, StatusCode};
//! use http_body_util::Full;
//! use tollgate::clock::ManualClock;
//! use tollgate::identity::AppIdentity;
//! use tollgate::rate_limit::RateLimitLayer;
//! use tollgate::Quota;
//! use tower::{ServiceBuilder, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let clock = ManualClock::new(UNIX_EPOCH + Duration::from_secs(1_700_000_000));
//! let limit = RateLimitLayer::new(Quota::per_hour(1000))
//!     .clock(Arc::new(clock.clone()));
//! let service = ServiceBuilder::new()
//!     .layer(limit)
//!     .service_fn(|_: Request<Full<Bytes>>| async {
//!         Ok::<_, Infallible>(Response::new(Full::new(Bytes::from("ok"))))
//!     });
//!
//! // ApiKeyLayer would insert this; the limiter keys on its key id.
//! let request = || {
//!     let mut request = Request::new(Full::default());
//!     request.extensions_mut().insert(AppIdentity::builder("key_1", "app_1").build());
//!     request
//! };
//! for _ in 0..1000 {
//!     let response = service.clone().oneshot(request()).await?;
//!     assert_eq!(response.status(), StatusCode::OK);
//! }
//! let response = service.clone().oneshot(request()).await?;
//! assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
//! // 1_700_000_000 s is 800 s into its hour: 2800 s to go.
//! assert_eq!(response.headers()["retry-after"], "2800");
//! assert_eq!(response.headers()["ratelimit-policy"], "\"default\";q=1000;w=3600");
//! assert_eq!(response.headers()["ratelimit"], "\"default\";r=0;t=2800");
//!
//! clock.advance(Duration::from_secs(2800)); // the next window
//! assert_eq!(service.oneshot(request()).await?.status(), StatusCode::OK);
//! # Ok(())
//! # }
//! ```
//!
//! # Example: two limits, by client IP, behind your proxies
//!
//! ```
//! use tollgate::rate_limit::{ClientIp, Limit, OnMissingKey, RateLimitLayer};
//! use tollgate::Quota;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let layer = RateLimitLayer::with_limits([
//!     Limit::new("burst", Quota::per_second(10))?,
//!     Limit::new("hourly", Quota::per_hour(1000))?,
//! ])?
//! .key(ClientIp::peer().trust_proxies(["10.0.0.0/8"])?)
//! .on_missing_key(OnMissingKey::Reject);
//! # let _ = layer;
//! # Ok(())
//! # }
//! ```
//!
//! With axum, the peer address is in `axum::extract::ConnectInfo<SocketAddr>`: see
//! [`ClientIp`] for the one-line extractor.
//!
//! # Keys of the JWT layer
//!
//! [`UserSubject`] counts per user (the `sub` of the token `JwtLayer` validated) and
//! [`AppAndUser`] per app and user (the API key, or the application, together with the subject),
//! for stacks that run `ApiKeyLayer` and `JwtLayer` outside the limiter:
//!
//! ```
//! use tollgate::rate_limit::{AppAndUser, RateLimitLayer, UserSubject};
//! use tollgate::Quota;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let per_user = RateLimitLayer::new(Quota::per_minute(600)).key(UserSubject);
//! let per_app_and_user = RateLimitLayer::new(Quota::per_minute(60))
//!     .key(AppAndUser::by_app_id());
//! # let _ = (per_user, per_app_and_user);
//! # Ok(())
//! # }
//! ```
//!
//! # Stores
//!
//! A [`RateLimitStore`] has one operation, an atomic [`hit`](RateLimitStore::hit) that charges a
//! cost against all of a request's quotas or none, so a Redis store (one script, one round trip)
//! has the same semantics as the in-memory one. In-memory stores also answer
//! [`try_hit`](RateLimitStore::try_hit) synchronously, and then a request costs no future, box or
//! clone of the inner service. An asynchronous store's hit is bounded by
//! [`store_timeout`](RateLimitLayer::store_timeout); on error or timeout the
//! [`OnStoreError`] policy decides.
//!
//! # Headers
//!
//! By default every response (admitted or 429) carries the draft-ietf-httpapi-ratelimit-headers
//! fields, one item per limit: `RateLimit-Policy: "default";q=1000;w=3600` and
//! `RateLimit: "default";r=999;t=1200` (`r` remaining after this request, `t` seconds to the
//! reset, rounded up). [`ietf_headers(false)`](RateLimitLayer::ietf_headers) turns them off;
//! [`legacy_headers(true)`](RateLimitLayer::legacy_headers) adds `X-RateLimit-Limit`,
//! `X-RateLimit-Remaining` and `X-RateLimit-Reset` for clients that only know those.
//!
//! Limiters stack: with a per-IP layer outside a per-key one, each adds its items to the IETF
//! fields (joined into one line), so a client sees both limits, and a 429 from the inner one
//! keeps that limit's state. Name the limits apart
//! ([`with_limit`](RateLimitLayer::with_limit)`(`[`Limit::new`]`("per-ip", quota)?)`) so the
//! items can be told apart. The legacy fields describe one limit: the one with the fewest
//! requests remaining.
//!
//! # Contents
//!
//! - [`RateLimitLayer`], [`KeyedRateLimit`], [`ResponseFuture`]: the middleware.
//! - [`Limit`], [`ConfigError`]: configuration.
//! - [`KeyExtractor`], [`Key`], [`RequestHead`], [`AppKeyId`], [`AppId`], [`ClientIp`],
//!   [`UserSubject`], [`AppAndUser`], [`Route`], [`OnMissingKey`]: keys.
//! - [`RateLimitStore`], [`Hit`], [`Window`], [`Decision`], [`LimitStatus`], [`StoreError`],
//!   [`OnStoreError`]: the store interface; [`MemoryStore`], `GcraStore` and
//!   `redis::RedisStore` implement it.
//! - [`ShadowRejection`]: what dry-run mode records.

mod config;
mod future;
#[cfg(feature = "governor")]
mod gcra;
#[cfg(feature = "governor")]
mod gcra_state;
mod headers;
mod key;
mod layer;
mod limit;
mod memory;
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub mod redis;
mod service;
mod siphash;
mod store;

use std::time::Duration;

pub use self::future::ResponseFuture;
#[cfg(feature = "governor")]
pub use self::gcra::GcraStore;
#[allow(deprecated)]
pub use self::key::AppUser;
pub use self::key::{
    AppAndUser, AppId, AppKeyId, ClientIp, Key, KeyExtractor, OnMissingKey, Route, UserSubject,
};
pub use self::layer::RateLimitLayer;
pub use self::limit::{ConfigError, Limit};
pub use self::memory::{MemoryStore, MemoryStoreBuilder};
pub use self::service::KeyedRateLimit;
pub use self::store::{
    Decision, Hit, HitFuture, LimitStatus, MAX_LIMITS, OnStoreError, RateLimitStore, StoreError,
    StoreErrorKind, Window,
};
/// The request view key extractors and cost functions receive (the crate's one request-head view).
#[doc(no_inline)]
pub use crate::rejection::RequestHead;

/// In [dry-run](RateLimitLayer::dry_run) mode, put into the extensions of a response whose
/// request would have been refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShadowRejection {
    retry_after: Duration,
}

impl ShadowRejection {
    /// The `Retry-After` the refusal would have carried.
    pub fn retry_after(&self) -> Duration {
        self.retry_after
    }
}
