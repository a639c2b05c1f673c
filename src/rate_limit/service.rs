use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};
use tower_service::Service;

use super::config::{Config, Step};
use super::future::ResponseFuture;
use super::key::{AppKeyId, KeyExtractor};
use super::store::RateLimitStore;
use super::{MemoryStore, RateLimitLayer};
use crate::Quota;
use crate::body::RejectionBody;
use crate::rejection::{DefaultResponder, RejectionResponder, reject};

/// The service made by [`RateLimitLayer`]. See the [module docs](super).
///
/// Named apart from `tower::limit::RateLimit` (a backpressure limiter for a whole service): this
/// one counts per key and answers over-quota requests with 429.
#[must_use]
pub struct KeyedRateLimit<S, K = AppKeyId, St = MemoryStore, R = DefaultResponder> {
    inner: S,
    config: Arc<Config<K, St, R>>,
}

impl<S> KeyedRateLimit<S> {
    /// Wraps `inner` with `quota` per API key in memory (as [`RateLimitLayer::new`]).
    pub fn new(inner: S, quota: Quota) -> Self {
        use tower_layer::Layer as _;
        RateLimitLayer::new(quota).layer(inner)
    }

    /// A layer limiting `quota` per API key in memory.
    pub fn layer(quota: Quota) -> RateLimitLayer {
        RateLimitLayer::new(quota)
    }
}

impl<S, K, St, R> KeyedRateLimit<S, K, St, R> {
    pub(crate) fn from_config(inner: S, config: Arc<Config<K, St, R>>) -> Self {
        Self { inner, config }
    }

    define_inner_service_accessors!();
}

impl<S: Clone, K, St, R> Clone for KeyedRateLimit<S, K, St, R> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            config: self.config.clone(),
        }
    }
}

impl<S: fmt::Debug, K: fmt::Debug, St: fmt::Debug, R: fmt::Debug> fmt::Debug
    for KeyedRateLimit<S, K, St, R>
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyedRateLimit")
            .field("inner", &self.inner)
            .field("config", &self.config)
            .finish()
    }
}

impl<S, K, St, R, ReqBody, ResBody> Service<Request<ReqBody>> for KeyedRateLimit<S, K, St, R>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone,
    K: KeyExtractor,
    St: RateLimitStore,
    R: RejectionResponder,
    ResBody: RejectionBody,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S, K, St, R, ReqBody>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // Never held back per key: the key is not known until `call`.
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        match self.config.decide(&request) {
            Step::Pass(extras) => ResponseFuture::called(self.inner.call(request), extras),
            Step::Refuse(rejection) => {
                super::config::report_refusal(&self.config.observe, &rejection, &request);
                ResponseFuture::rejected(reject(&self.config.responder, *rejection, &request))
            }
            Step::Pending(future, quotas) => {
                // Clone-and-swap: `poll_ready` readied `self.inner`, so that is the service the
                // future calls once the store has answered; the clone stays for the next call.
                let clone = self.inner.clone();
                let inner = std::mem::replace(&mut self.inner, clone);
                ResponseFuture::deciding(future, inner, request, self.config.clone(), quotas)
            }
        }
    }
}
