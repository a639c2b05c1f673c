use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http::{Request, Response};
use pin_project_lite::pin_project;
use tower_service::Service;

use std::sync::Arc;

use super::{Authenticator, Identity, Mode, refused_who, who};
use crate::body::RejectionBody;
use crate::observe::Observer;
use crate::rejection::{Challenge, Rejection, RejectionKind, RejectionResponder, reject};

pin_project! {
    /// Response future of [`Authenticate`](super::Authenticate).
    pub struct ResponseFuture<S, A, R, ReqBody>
    where
        S: Service<Request<ReqBody>>,
        A: Authenticator,
    {
        #[pin]
        state: State<S, A, R, ReqBody>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<S, A, R, ReqBody>
    where
        S: Service<Request<ReqBody>>,
        A: Authenticator,
    {
        // The inner service was called; its future is the answer.
        Called { #[pin] future: S::Future },
        // Refused in `call`; the rendered rejection waits to be returned.
        Rejected { response: Option<Response<Bytes>> },
        // The authenticator is awaiting; the ready inner service and the request wait for it.
        Authenticating {
            #[pin] future: A::Future,
            // Boxed: the slow path allocates anyway, and inline it would make every
            // response future, fast path included, as large as a request.
            waiting: Option<Box<Waiting<S, R, ReqBody>>>,
        },
    }
}

/// What a pending authentication holds until its future settles.
pub(crate) struct Waiting<S, R, ReqBody> {
    pub(crate) inner: S,
    pub(crate) request: Request<ReqBody>,
    pub(crate) responder: R,
    pub(crate) mode: Mode,
    pub(crate) challenge: Challenge,
    pub(crate) observer: Arc<Observer>,
    pub(crate) layer: &'static str,
}

impl<S, A, R, ReqBody> ResponseFuture<S, A, R, ReqBody>
where
    S: Service<Request<ReqBody>>,
    A: Authenticator,
{
    pub(crate) fn called(future: S::Future) -> Self {
        Self {
            state: State::Called { future },
        }
    }

    pub(crate) fn rejected(response: Response<Bytes>) -> Self {
        Self {
            state: State::Rejected {
                response: Some(response),
            },
        }
    }

    pub(crate) fn authenticating(future: A::Future, waiting: Waiting<S, R, ReqBody>) -> Self {
        Self {
            state: State::Authenticating {
                future,
                waiting: Some(Box::new(waiting)),
            },
        }
    }
}

impl<S, A, R, ReqBody, ResBody> Future for ResponseFuture<S, A, R, ReqBody>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    A: Authenticator,
    R: RejectionResponder,
    ResBody: RejectionBody,
{
    type Output = Result<Response<ResBody>, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut state = self.project().state;
        loop {
            match state.as_mut().project() {
                StateProj::Called { future } => {
                    let response = ready!(future.poll(cx))?;
                    return Poll::Ready(Ok(response));
                }
                StateProj::Rejected { response } => {
                    let response = response
                        .take()
                        .expect("ResponseFuture polled after completion");
                    return Poll::Ready(Ok(response.map(ResBody::from_rejection)));
                }
                StateProj::Authenticating { future, waiting } => {
                    let decision = ready!(future.poll(cx));
                    let Waiting {
                        mut inner,
                        mut request,
                        responder,
                        mode,
                        challenge,
                        observer,
                        layer,
                    } = *waiting
                        .take()
                        .expect("ResponseFuture polled after completion");
                    let refusal = match decision {
                        Ok(Some(identity)) => {
                            observer.allowed(layer, || who(&identity), &request);
                            identity.insert_into(request.extensions_mut());
                            None
                        }
                        Ok(None) if mode == Mode::Optional => {
                            observer.passed(layer);
                            None
                        }
                        Ok(None) => Some(
                            Rejection::new(RejectionKind::MissingCredential)
                                .with_challenge(challenge),
                        ),
                        Err(rejection) => Some(rejection),
                    };
                    match refusal {
                        None => state.set(State::Called {
                            future: inner.call(request),
                        }),
                        Some(rejection) => {
                            observer.refused(
                                layer,
                                rejection.kind(),
                                refused_who(&rejection),
                                &request,
                            );
                            let response = reject(&responder, rejection, &request);
                            state.set(State::Rejected {
                                response: Some(response),
                            });
                        }
                    }
                }
            }
        }
    }
}

impl<S, A, R, ReqBody> std::fmt::Debug for ResponseFuture<S, A, R, ReqBody>
where
    S: Service<Request<ReqBody>>,
    A: Authenticator,
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}
