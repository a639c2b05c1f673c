//! The floor of the load test's full stack: the same work (an API key, an HS256 bearer token, a
//! scope both must grant, a per-key fixed-window counter, the IETF RateLimit fields) done as
//! cheaply as one hand-written middleware can, so the stack's cost can be read against what
//! the work itself costs in the same run.
//!
//! Cheaper than any real layer on purpose: one service and one future instead of four; the
//! API key looked up by its bytes in a `HashMap` built at start (no hashing at rest, no cache,
//! no expiry, no rotation); a token verified once and then found by its bytes (no expiry
//! check after that, no revocation, no cache bound); one window counter of one quota; the two
//! fields inserted as pre-rendered values (the `RateLimit` value does not count down); no
//! problem+json, no challenge, no metrics. It is a floor to measure against, not a guard.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::task::{Context, Poll, ready};
use std::time::{SystemTime, UNIX_EPOCH};

use http::{HeaderName, Request, Response, StatusCode};
use pin_project_lite::pin_project;
use tollgate::identity::{AppIdentity, UserIdentity};
use tower::{Layer, Service};

use crate::static_fields::with_static_fields;

const X_API_KEY: HeaderName = HeaderName::from_static("x-api-key");
const SCOPE: &str = "orders:read";
/// Requests per one-second window for each key: as the full stack's quota, never reached.
const LIMIT: u64 = 1_000_000_000;

struct State {
    /// The presented key's bytes → the app and its window counter (window << 32 | count).
    keys: HashMap<Box<[u8]>, (AppIdentity, AtomicU64)>,
    /// Tokens verified once, found by their bytes afterwards.
    tokens: RwLock<HashMap<Box<[u8]>, (UserIdentity, Arc<serde_json::Value>)>>,
    key: jsonwebtoken::DecodingKey,
    validation: jsonwebtoken::Validation,
    fields: bool,
}

/// The floor as a layer (see the module documentation).
#[derive(Clone)]
pub(crate) struct FloorLayer(Arc<State>);

impl FloorLayer {
    /// Accepts `api_key` (as the app `app-load` with `orders:read`) and HS256 tokens signed
    /// with `secret`; adds the RateLimit fields when `fields`.
    pub(crate) fn new(api_key: &str, secret: &[u8], fields: bool) -> Self {
        let app = AppIdentity::builder("key-load", "app-load")
            .scopes([SCOPE])
            .build();
        let keys = HashMap::from([(Box::from(api_key.as_bytes()), (app, AtomicU64::new(0)))]);
        Self(Arc::new(State {
            keys,
            tokens: RwLock::new(HashMap::new()),
            key: jsonwebtoken::DecodingKey::from_secret(secret),
            validation: jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256),
            fields,
        }))
    }
}

impl<S> Layer<S> for FloorLayer {
    type Service = Floor<S>;

    fn layer(&self, inner: S) -> Floor<S> {
        Floor {
            inner,
            state: self.0.clone(),
        }
    }
}

/// The floor's service.
#[derive(Clone)]
pub(crate) struct Floor<S> {
    inner: S,
    state: Arc<State>,
}

impl State {
    fn user(&self, token: &[u8]) -> Option<(UserIdentity, Arc<serde_json::Value>)> {
        if let Some(found) = self.tokens.read().unwrap().get(token) {
            return Some(found.clone());
        }
        let text = std::str::from_utf8(token).ok()?;
        let claims = jsonwebtoken::decode::<serde_json::Value>(text, &self.key, &self.validation)
            .ok()?
            .claims;
        let subject = claims["sub"].as_str().map(str::to_owned);
        let scopes: Vec<String> = claims["scope"]
            .as_str()
            .unwrap_or_default()
            .split(' ')
            .map(str::to_owned)
            .collect();
        let found = (UserIdentity::new(subject, scopes), Arc::new(claims));
        self.tokens
            .write()
            .unwrap()
            .insert(Box::from(token), found.clone());
        Some(found)
    }

    /// One hit on a fixed one-second window: false once the window's count is at the limit.
    fn admit(counter: &AtomicU64) -> bool {
        let window = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs()
            & 0xffff_ffff;
        let mut current = counter.load(Ordering::Relaxed);
        loop {
            let next = if current >> 32 == window {
                if current & 0xffff_ffff >= LIMIT {
                    return false;
                }
                current + 1
            } else {
                window << 32 | 1
            };
            match counter.compare_exchange_weak(current, next, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => return true,
                Err(actual) => current = actual,
            }
        }
    }

    fn check<B>(&self, request: &mut Request<B>) -> Result<(), StatusCode> {
        let headers = request.headers();
        let (app, counter) = headers
            .get(X_API_KEY)
            .and_then(|key| self.keys.get(key.as_bytes()))
            .ok_or(StatusCode::UNAUTHORIZED)?;
        let (user, claims) = headers
            .get(http::header::AUTHORIZATION)
            .and_then(|value| value.as_bytes().strip_prefix(b"Bearer "))
            .and_then(|token| self.user(token))
            .ok_or(StatusCode::UNAUTHORIZED)?;
        if !(app.has_scope(SCOPE) && user.has_scope(SCOPE)) {
            return Err(StatusCode::FORBIDDEN);
        }
        if !Self::admit(counter) {
            return Err(StatusCode::TOO_MANY_REQUESTS);
        }
        let extensions = request.extensions_mut();
        extensions.insert(app.clone());
        extensions.insert(user);
        extensions.insert(claims);
        Ok(())
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for Floor<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>, Error = Infallible>,
    ResBody: Default,
{
    type Response = Response<ResBody>;
    type Error = Infallible;
    type Future = FloorFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        match self.state.check(&mut request) {
            Ok(()) => FloorFuture::Called {
                future: self.inner.call(request),
                fields: self.state.fields,
            },
            Err(status) => FloorFuture::Refused {
                status: Some(status),
            },
        }
    }
}

pin_project! {
    /// The floor's response future.
    #[project = FloorProj]
    pub(crate) enum FloorFuture<F> {
        Called { #[pin] future: F, fields: bool },
        Refused { status: Option<StatusCode> },
    }
}

impl<F, B> Future for FloorFuture<F>
where
    F: Future<Output = Result<Response<B>, Infallible>>,
    B: Default,
{
    type Output = Result<Response<B>, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            FloorProj::Called { future, fields } => {
                let response = ready!(future.poll(cx))?;
                Poll::Ready(Ok(if *fields {
                    with_static_fields(response)
                } else {
                    response
                }))
            }
            FloorProj::Refused { status } => {
                let mut response = Response::new(B::default());
                *response.status_mut() = status.take().expect("polled after completion");
                Poll::Ready(Ok(response))
            }
        }
    }
}
