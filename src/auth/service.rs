use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};
use tower_service::Service;

use super::future::{ResponseFuture, Waiting};
use super::{AuthLayer, Authenticator, Identity, Mode, Outcome, refused_who, who};
use crate::body::RejectionBody;
use crate::observe::{Observer, Who};
use crate::rejection::{DefaultResponder, Rejection, RejectionKind, RejectionResponder, reject};

/// The service made by [`AuthLayer`] (and so by every credential layer). See the
/// [module docs](super).
#[derive(Debug, Clone)]
#[must_use]
pub struct Authenticate<S, A, R = DefaultResponder> {
    pub(crate) inner: S,
    pub(crate) authenticator: A,
    pub(crate) responder: R,
    pub(crate) mode: Mode,
    pub(crate) observer: Arc<Observer>,
}

impl<S, A> Authenticate<S, A> {
    /// Wraps `inner`, requiring a credential that `authenticator` accepts.
    pub fn new(inner: S, authenticator: A) -> Self {
        Self {
            inner,
            authenticator,
            responder: DefaultResponder::new(),
            mode: Mode::Required,
            observer: Arc::new(Observer::new(None)),
        }
    }

    /// A layer that wraps services with `authenticator`.
    pub fn layer(authenticator: A) -> AuthLayer<A> {
        AuthLayer::with_authenticator(authenticator)
    }
}

impl<S, A, R> Authenticate<S, A, R> {
    define_inner_service_accessors!();
}

impl<S, A, R, ReqBody, ResBody> Service<Request<ReqBody>> for Authenticate<S, A, R>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone,
    A: Authenticator,
    R: RejectionResponder + Clone,
    ResBody: RejectionBody,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S, A, R, ReqBody>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        let layer = self.authenticator.name();
        match self.authenticator.authenticate(&request) {
            Outcome::Authenticated(identity) => {
                self.observer.allowed(layer, || who(&identity), &request);
                identity.insert_into(request.extensions_mut());
                ResponseFuture::called(self.inner.call(request))
            }
            Outcome::NoCredential if self.mode == Mode::Optional => {
                self.observer.passed(layer);
                ResponseFuture::called(self.inner.call(request))
            }
            Outcome::NoCredential => {
                let rejection = Rejection::new(RejectionKind::MissingCredential)
                    .with_challenge(self.authenticator.challenge());
                self.observer
                    .refused(layer, rejection.kind(), Who::default(), &request);
                ResponseFuture::rejected(reject(&self.responder, rejection, &request))
            }
            Outcome::Rejected(rejection) => {
                self.observer
                    .refused(layer, rejection.kind(), refused_who(&rejection), &request);
                ResponseFuture::rejected(reject(&self.responder, rejection, &request))
            }
            Outcome::Pending(future) => {
                // Clone-and-swap: `poll_ready` readied `self.inner`, so that is the service
                // the future must call; the fresh clone stays behind for the next request.
                let clone = self.inner.clone();
                let inner = std::mem::replace(&mut self.inner, clone);
                ResponseFuture::authenticating(
                    future,
                    Waiting {
                        inner,
                        request,
                        responder: self.responder.clone(),
                        mode: self.mode,
                        challenge: self.authenticator.challenge(),
                        observer: Arc::clone(&self.observer),
                        layer,
                    },
                )
            }
        }
    }
}
