//! [`AppUser`]: two authenticators run together under a [`Policy`].

use super::Policy;
use super::future::{Half, JointFuture};
use crate::auth::{Authenticator, Identity, Outcome};
use crate::principal::EffectiveScopes;
use crate::rejection::{Challenge, Rejection, RejectionKind};

/// Runs an application authenticator `A` (an API key) and a user authenticator `B` (a bearer
/// token) on every request and applies a [`Policy`]. See the [module docs](super).
#[derive(Debug, Clone)]
pub struct AppUser<A, B> {
    app: A,
    user: B,
    policy: Policy,
    effective: EffectiveScopes,
    bind_delegated: bool,
}

impl<A, B> AppUser<A, B> {
    /// Combines `app` and `user` under `policy`, with intersected scopes and delegated tokens
    /// bound to their application.
    pub fn new(app: A, user: B, policy: Policy) -> Self {
        Self {
            app,
            user,
            policy,
            effective: EffectiveScopes::default(),
            bind_delegated: true,
        }
    }

    /// Whether a delegated user credential (a token whose `act.sub` names an application, as
    /// token exchange mints) sent together with an app credential must name **that** app
    /// (default: yes). When it names another, the request is refused with 401
    /// `invalid_token`: app B cannot present a token minted for app A. A user's own token
    /// (no `act`) is not affected.
    #[must_use]
    pub fn bind_delegated_tokens(mut self, bind: bool) -> Self {
        self.bind_delegated = bind;
        self
    }

    /// How scopes combine when both identities are present (default: intersection). Put
    /// into the request extensions for [`Principal`](crate::principal::Principal) and
    /// [`RequireScopesLayer`](crate::scope::RequireScopesLayer).
    #[must_use]
    pub fn effective_scopes(mut self, effective: EffectiveScopes) -> Self {
        self.effective = effective;
        self
    }

    /// The policy.
    pub fn policy(&self) -> Policy {
        self.policy
    }

    /// The application authenticator.
    pub fn app(&self) -> &A {
        &self.app
    }

    /// The user authenticator.
    pub fn user(&self) -> &B {
        &self.user
    }
}

/// What [`AppUser`] hands downstream: the app's identity, the user's, or both (as the policy
/// allows), each inserted into the extensions as its own authenticator would, plus the
/// [`EffectiveScopes`].
#[derive(Debug, Clone)]
pub struct Joint<IA, IB> {
    app: Option<IA>,
    user: Option<IB>,
    effective: EffectiveScopes,
}

impl<IA, IB> Joint<IA, IB> {
    /// The application's identity, if a valid app credential was sent.
    pub fn app(&self) -> Option<&IA> {
        self.app.as_ref()
    }

    /// The user's identity, if a valid user credential was sent.
    pub fn user(&self) -> Option<&IB> {
        self.user.as_ref()
    }
}

impl<IA: Identity, IB: Identity> Identity for Joint<IA, IB> {
    fn insert_into(self, extensions: &mut http::Extensions) {
        if let Some(app) = self.app {
            app.insert_into(extensions);
        }
        if let Some(user) = self.user {
            user.insert_into(extensions);
        }
        extensions.insert(self.effective);
    }

    fn app_id(&self) -> Option<&str> {
        self.app.as_ref().and_then(Identity::app_id)
    }

    fn key_id(&self) -> Option<&str> {
        self.app.as_ref().and_then(Identity::key_id)
    }

    fn subject(&self) -> Option<&str> {
        self.user.as_ref().and_then(Identity::subject)
    }

    fn issuer(&self) -> Option<&str> {
        self.user.as_ref().and_then(Identity::issuer)
    }
}

/// Applies `policy` to the two settled answers: `Ok(None)` when neither credential was sent.
/// A rejected credential rejects, whatever the policy: a bad key or token is never ignored.
pub(super) fn decide<IA: Identity, IB: Identity>(
    policy: Policy,
    effective: EffectiveScopes,
    bind_delegated: bool,
    app: Result<Option<IA>, Rejection>,
    user: Result<Option<IB>, Rejection>,
    app_challenge: impl FnOnce() -> Challenge,
    user_challenge: impl FnOnce() -> Challenge,
) -> Result<Option<Joint<IA, IB>>, Rejection> {
    let (app, user) = (app?, user?);
    let missing = |challenge: Challenge| {
        Err(Rejection::new(RejectionKind::MissingCredential).with_challenge(challenge))
    };
    match (policy, &app, &user) {
        (_, None, None) => return Ok(None),
        (Policy::AppAndUser, Some(_), Some(_))
        | (Policy::AppOrUser, _, _)
        | (Policy::AppOnly, Some(_), _)
        | (Policy::UserOnly, _, Some(_)) => {}
        (Policy::AppAndUser | Policy::AppOnly, None, _) => return missing(app_challenge()),
        (Policy::AppAndUser | Policy::UserOnly, _, None) => return missing(user_challenge()),
    }
    if let (true, Some(app), Some(actor)) = (
        bind_delegated,
        app.as_ref(),
        user.as_ref().and_then(Identity::actor),
    ) {
        if app.app_id() != Some(actor) {
            return Err(Rejection::new(RejectionKind::InvalidCredential)
                .with_detail("The token was delegated to another application.")
                .with_challenge(user_challenge()));
        }
    }
    Ok(Some(Joint {
        app,
        user,
        effective,
    }))
}

impl<A, B> Authenticator for AppUser<A, B>
where
    A: Authenticator,
    B: Authenticator,
{
    type Identity = Joint<A::Identity, B::Identity>;
    type Future = JointFuture<A, B>;

    fn authenticate<Bd>(
        &self,
        request: &http::Request<Bd>,
    ) -> Outcome<Self::Identity, Self::Future> {
        let app = self.app.authenticate(request);
        let user = self.user.authenticate(request);
        let (app, user) = match (app, user) {
            // One already refused: no need to wait for the other.
            (Outcome::Rejected(rejection), _) | (_, Outcome::Rejected(rejection)) => {
                return Outcome::Rejected(rejection);
            }
            (Outcome::Pending(app), Outcome::Pending(user)) => {
                (Half::waiting(app), Half::waiting(user))
            }
            (Outcome::Pending(app), user) => (Half::waiting(app), Half::settled(user)),
            (app, Outcome::Pending(user)) => (Half::settled(app), Half::waiting(user)),
            (app, user) => {
                // The fast path: both decided synchronously, nothing is boxed or stored.
                return match decide(
                    self.policy,
                    self.effective,
                    self.bind_delegated,
                    settle(app),
                    settle(user),
                    || self.app.challenge(),
                    || self.user.challenge(),
                ) {
                    Ok(Some(joint)) => Outcome::Authenticated(joint),
                    Ok(None) => Outcome::NoCredential,
                    Err(rejection) => Outcome::Rejected(rejection),
                };
            }
        };
        Outcome::Pending(JointFuture::new(
            app,
            user,
            self.policy,
            self.effective,
            self.bind_delegated,
            (self.app.challenge(), self.user.challenge()),
        ))
    }

    fn name(&self) -> &'static str {
        "app_user"
    }

    fn challenge(&self) -> Challenge {
        match self.policy {
            Policy::AppOnly => self.app.challenge(),
            Policy::UserOnly => self.user.challenge(),
            Policy::AppAndUser | Policy::AppOrUser => {
                self.app.challenge().and(self.user.challenge())
            }
        }
    }
}

/// A synchronous outcome as the future's result type (`Pending` never reaches here).
pub(super) fn settle<I, F>(outcome: Outcome<I, F>) -> Result<Option<I>, Rejection> {
    match outcome {
        Outcome::Authenticated(identity) => Ok(Some(identity)),
        Outcome::NoCredential | Outcome::Pending(_) => Ok(None),
        Outcome::Rejected(rejection) => Err(rejection),
    }
}
