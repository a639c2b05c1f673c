use std::task::{Context, Poll};

use http::{Request, Response};
use tower_service::Service;

use super::future::ResponseFuture;
use super::{Authorize, RequireLayer};
use crate::body::RejectionBody;
use crate::rejection::{Challenge, DefaultResponder, RejectionResponder, RequestHead, reject};

/// The service made by [`RequireLayer`] (and so by
/// [`RequireScopesLayer`](super::RequireScopesLayer)). See the [module docs](super).
#[derive(Debug, Clone)]
#[must_use]
pub struct Require<S, A, R = DefaultResponder> {
    pub(crate) inner: S,
    pub(crate) authorize: A,
    pub(crate) responder: R,
    /// Set by [`RequireLayer::challenge`]: replaces the one the check chose.
    pub(crate) challenge: Option<Challenge>,
}

impl<S, A> Require<S, A> {
    /// Wraps `inner`, letting through only requests `authorize` accepts.
    pub fn new(inner: S, authorize: A) -> Self {
        Self {
            inner,
            authorize,
            responder: DefaultResponder::new(),
            challenge: None,
        }
    }

    /// A layer that wraps services with `authorize`.
    pub fn layer(authorize: A) -> RequireLayer<A> {
        RequireLayer::new(authorize)
    }
}

impl<S, A, R> Require<S, A, R> {
    define_inner_service_accessors!();
}

impl<S, A, R, ReqBody, ResBody> Service<Request<ReqBody>> for Require<S, A, R>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    A: Authorize,
    R: RejectionResponder,
    ResBody: RejectionBody,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        match self.authorize.authorize(&RequestHead::of(&request)) {
            Ok(()) => ResponseFuture::called(self.inner.call(request)),
            Err(rejection) => {
                // A configured challenge wins; else the one the check chose (the credential that
                // lacks the scope); else `Bearer`.
                let rejection = match &self.challenge {
                    Some(challenge) => rejection.with_challenge(challenge.clone()),
                    None if *rejection.challenge() == Challenge::none() => {
                        rejection.with_challenge(Challenge::bearer())
                    }
                    None => rejection,
                };
                ResponseFuture::rejected(reject(&self.responder, rejection, &request))
            }
        }
    }
}
