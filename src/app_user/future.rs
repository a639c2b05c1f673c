//! [`JointFuture`]: the slow path of [`AppUser`](super::AppUser), both answers awaited.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;

use super::Policy;
use super::authenticator::{Joint, decide, settle};
use crate::auth::{Authenticator, Outcome};
use crate::principal::EffectiveScopes;
use crate::rejection::{Challenge, Rejection};

pin_project! {
    /// The slow path of [`AppUser`]: at least one authenticator is awaiting (a key-store
    /// lookup, a JWKS fetch). Not boxed; it holds the authenticators' own futures.
    #[must_use = "futures do nothing unless polled"]
    pub struct JointFuture<A, B>
    where
        A: Authenticator,
        B: Authenticator,
    {
        #[pin]
        app: Half<A::Identity, A::Future>,
        #[pin]
        user: Half<B::Identity, B::Future>,
        policy: Policy,
        effective: EffectiveScopes,
        bind_delegated: bool,
        challenges: Option<(Challenge, Challenge)>,
    }
}

pin_project! {
    #[project = HalfProj]
    pub(super) enum Half<I, F> {
        Waiting { #[pin] future: F },
        Done { result: Option<Result<Option<I>, Rejection>> },
    }
}

impl<A, B> JointFuture<A, B>
where
    A: Authenticator,
    B: Authenticator,
{
    pub(super) fn new(
        app: Half<A::Identity, A::Future>,
        user: Half<B::Identity, B::Future>,
        policy: Policy,
        effective: EffectiveScopes,
        bind_delegated: bool,
        challenges: (Challenge, Challenge),
    ) -> Self {
        Self {
            app,
            user,
            policy,
            effective,
            bind_delegated,
            challenges: Some(challenges),
        }
    }
}

impl<I, F> Half<I, F> {
    pub(super) fn waiting(future: F) -> Self {
        Self::Waiting { future }
    }

    pub(super) fn settled<G>(outcome: Outcome<I, G>) -> Self {
        Self::Done {
            result: Some(settle(outcome)),
        }
    }
}

impl<I, F> Half<I, F>
where
    F: Future<Output = Result<Option<I>, Rejection>>,
{
    /// Drives the half; `true` once it has an answer.
    fn poll_done(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> bool {
        if let HalfProj::Waiting { future } = self.as_mut().project() {
            match future.poll(cx) {
                Poll::Ready(result) => self.set(Self::Done {
                    result: Some(result),
                }),
                Poll::Pending => return false,
            }
        }
        true
    }

    fn is_rejected(&self) -> bool {
        matches!(
            self,
            Self::Done {
                result: Some(Err(_))
            }
        )
    }

    fn take(self: Pin<&mut Self>) -> Result<Option<I>, Rejection> {
        match self.project() {
            HalfProj::Done { result } => {
                result.take().expect("JointFuture polled after completion")
            }
            HalfProj::Waiting { .. } => unreachable!("taken before it was done"),
        }
    }
}

impl<A, B> Future for JointFuture<A, B>
where
    A: Authenticator,
    B: Authenticator,
{
    type Output = Result<Option<Joint<A::Identity, B::Identity>>, Rejection>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let app_done = this.app.as_mut().poll_done(cx);
        let user_done = this.user.as_mut().poll_done(cx);
        // A refusal decides at once; otherwise both answers are needed.
        if this.app.is_rejected() {
            return Poll::Ready(this.app.take().map(|_| None));
        }
        if this.user.is_rejected() {
            return Poll::Ready(this.user.take().map(|_| None));
        }
        if !(app_done && user_done) {
            return Poll::Pending;
        }
        let (app_challenge, user_challenge) = this
            .challenges
            .take()
            .expect("JointFuture polled after completion");
        Poll::Ready(decide(
            *this.policy,
            *this.effective,
            *this.bind_delegated,
            this.app.take(),
            this.user.take(),
            || app_challenge,
            || user_challenge,
        ))
    }
}

impl<A, B> fmt::Debug for JointFuture<A, B>
where
    A: Authenticator,
    B: Authenticator,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JointFuture")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}
