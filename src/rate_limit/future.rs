use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http::{Request, Response};
use pin_project_lite::pin_project;
use tower_service::Service;

use super::config::{Config, Extras, Quotas, Step};
use super::store::HitFuture;
use crate::body::RejectionBody;
use crate::rejection::{RejectionResponder, reject};

pin_project! {
    /// Response future of [`KeyedRateLimit`](super::KeyedRateLimit).
    pub struct ResponseFuture<S, K, St, R, ReqBody>
    where
        S: Service<Request<ReqBody>>,
    {
        #[pin]
        state: State<S, K, St, R, ReqBody>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<S, K, St, R, ReqBody>
    where
        S: Service<Request<ReqBody>>,
    {
        // Admitted: the inner service's future, and what to add to its response.
        Called { #[pin] future: S::Future, extras: Option<Extras> },
        // Refused (boxed: a refusal allocates anyway, and the admitted path then moves a
        // future that is not sized for a whole response).
        Rejected { response: Option<Box<Response<Bytes>>> },
        // An asynchronous store is deciding; the ready inner service and the request wait.
        Deciding { future: HitFuture, waiting: Option<Box<Waiting<S, K, St, R, ReqBody>>> },
    }
}

struct Waiting<S, K, St, R, ReqBody> {
    inner: S,
    request: Request<ReqBody>,
    config: Arc<Config<K, St, R>>,
    quotas: Box<Quotas>,
}

impl<S, K, St, R, ReqBody> ResponseFuture<S, K, St, R, ReqBody>
where
    S: Service<Request<ReqBody>>,
{
    pub(crate) fn called(future: S::Future, extras: Option<Extras>) -> Self {
        Self {
            state: State::Called { future, extras },
        }
    }

    pub(crate) fn rejected(response: Response<Bytes>) -> Self {
        Self {
            state: State::Rejected {
                response: Some(Box::new(response)),
            },
        }
    }

    pub(crate) fn deciding(
        future: HitFuture,
        inner: S,
        request: Request<ReqBody>,
        config: Arc<Config<K, St, R>>,
        quotas: Box<Quotas>,
    ) -> Self {
        Self {
            state: State::Deciding {
                future,
                waiting: Some(Box::new(Waiting {
                    inner,
                    request,
                    config,
                    quotas,
                })),
            },
        }
    }
}

impl<S, K, St, R, ReqBody, ResBody> Future for ResponseFuture<S, K, St, R, ReqBody>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    R: RejectionResponder,
    ResBody: RejectionBody,
{
    type Output = Result<Response<ResBody>, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut state = self.project().state;
        loop {
            match state.as_mut().project() {
                StateProj::Called { future, extras } => {
                    let mut response = ready!(future.poll(cx))?;
                    if let Some(extras) = extras.take() {
                        let Extras { headers, shadow } = extras;
                        headers.apply(response.headers_mut());
                        if let Some(shadow) = shadow {
                            response.extensions_mut().insert(shadow);
                        }
                    }
                    return Poll::Ready(Ok(response));
                }
                StateProj::Rejected { response } => {
                    let response = response
                        .take()
                        .expect("ResponseFuture polled after completion");
                    return Poll::Ready(Ok((*response).map(ResBody::from_rejection)));
                }
                StateProj::Deciding { future, waiting } => {
                    let result = ready!(future.as_mut().poll(cx));
                    let Waiting {
                        mut inner,
                        request,
                        config,
                        quotas,
                    } = *waiting
                        .take()
                        .expect("ResponseFuture polled after completion");
                    match config.conclude(result, &quotas) {
                        Step::Pass(extras) => state.set(State::Called {
                            future: inner.call(request),
                            extras,
                        }),
                        Step::Refuse(rejection) => {
                            super::config::report_refusal(&config.observe, &rejection, &request);
                            let response = reject(&config.responder, *rejection, &request);
                            state.set(State::Rejected {
                                response: Some(Box::new(response)),
                            });
                        }
                        Step::Pending(..) => unreachable!("a store's answer is final"),
                    }
                }
            }
        }
    }
}

impl<S, K, St, R, ReqBody> std::fmt::Debug for ResponseFuture<S, K, St, R, ReqBody>
where
    S: Service<Request<ReqBody>>,
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}
