use tower_layer::Layer;

use super::{ExtensionPredicate, PrincipalPredicate, Require, RequiredScopes, ScopeError};
use crate::principal::{EffectiveScopes, Principal};
use crate::rejection::{Challenge, DefaultResponder, Flavor};

/// Lets through only the authenticated requests an [`Authorize`](super::Authorize) check
/// accepts. See the [module docs](super).
#[derive(Debug, Clone)]
#[must_use]
pub struct RequireLayer<A, R = DefaultResponder> {
    authorize: A,
    responder: R,
    challenge: Option<Challenge>,
}

/// Requires scopes of the [`Principal`]. See the [module docs](super).
pub type RequireScopesLayer<R = DefaultResponder> = RequireLayer<RequiredScopes, R>;

/// The service [`RequireScopesLayer`] makes.
pub type RequireScopes<S, R = DefaultResponder> = Require<S, RequiredScopes, R>;

impl<A> RequireLayer<A> {
    /// A layer checking requests with `authorize`, answering with the [`DefaultResponder`]
    /// and a `Bearer` challenge.
    pub fn new(authorize: A) -> Self {
        Self {
            authorize,
            responder: DefaultResponder::new(),
            challenge: None,
        }
    }

    /// Sets the `realm` of the default responder's `WWW-Authenticate` challenges.
    pub fn realm(mut self, realm: impl AsRef<str>) -> Self {
        self.responder = self.responder.realm(realm);
        self
    }

    /// Always answer rejections in the gRPC form (default: detect from `content-type`).
    pub fn for_grpc(mut self) -> Self {
        self.responder = self.responder.flavor(Flavor::Grpc);
        self
    }

    /// Always answer rejections in the HTTP form (default: detect from `content-type`).
    pub fn for_http(mut self) -> Self {
        self.responder = self.responder.flavor(Flavor::Http);
        self
    }
}

impl<F> RequireLayer<PrincipalPredicate<F>>
where
    F: Fn(&Principal) -> bool,
{
    /// Requires `predicate` to hold for the [`Principal`]: no principal → 401, `false` → 403
    /// `forbidden`.
    ///
    /// ```
    /// use tollgate::scope::RequireLayer;
    ///
    /// // Only the "billing" application, whoever the user.
    /// let layer = RequireLayer::principal(|p| p.app().is_some_and(|app| app.app_id() == "billing"));
    /// # let _ = layer;
    /// ```
    pub fn principal(predicate: F) -> Self {
        Self::new(PrincipalPredicate::new(predicate))
    }
}

impl<T, F> RequireLayer<ExtensionPredicate<T, F>>
where
    T: Send + Sync + 'static,
    F: Fn(&T) -> bool,
{
    /// Requires `predicate` to hold for the request extension `T` (an identity or claims an
    /// earlier layer inserted): no `T` → 401, `false` → 403 `forbidden`.
    pub fn extension(predicate: F) -> Self {
        Self::new(ExtensionPredicate::new(predicate))
    }
}

#[cfg(feature = "jwt-base")]
impl<C, F> RequireLayer<ExtensionPredicate<crate::jwt::Claims<C>, F>>
where
    C: Send + Sync + 'static,
    F: Fn(&crate::jwt::Claims<C>) -> bool,
{
    /// Requires `predicate` to hold for the validated [`Claims<C>`](crate::jwt::Claims) the
    /// JWT layer inserted: no claims → 401, `false` → 403 `forbidden`.
    ///
    /// ```
    /// use tollgate::jwt::{Claims, StandardClaims};
    /// use tollgate::scope::RequireLayer;
    ///
    /// let admins = RequireLayer::claims(|c: &Claims<StandardClaims>| {
    ///     c.roles.as_ref().is_some_and(|roles| roles.iter().any(|r| r == "admin"))
    /// });
    /// # let _ = admins;
    /// ```
    pub fn claims(predicate: F) -> Self {
        Self::new(ExtensionPredicate::new(predicate))
    }
}

impl RequireLayer<RequiredScopes> {
    /// Requires every one of `scopes`.
    ///
    /// # Errors
    ///
    /// As for [`RequiredScopes::all`].
    pub fn all<I, T>(scopes: I) -> Result<Self, ScopeError>
    where
        I: IntoIterator<Item = T>,
        T: AsRef<str>,
    {
        RequiredScopes::all(scopes).map(Self::new)
    }

    /// Requires any one of `scopes`.
    ///
    /// # Errors
    ///
    /// As for [`RequiredScopes::any`].
    pub fn any<I, T>(scopes: I) -> Result<Self, ScopeError>
    where
        I: IntoIterator<Item = T>,
        T: AsRef<str>,
    {
        RequiredScopes::any(scopes).map(Self::new)
    }
}

impl<R> RequireLayer<RequiredScopes, R> {
    /// Checks against `effective` instead of the [`EffectiveScopes`] in the request
    /// extensions (which the combined layer sets; intersection by default).
    pub fn effective_scopes(mut self, effective: EffectiveScopes) -> Self {
        self.authorize = self.authorize.effective_scopes(effective);
        self
    }
}

impl<A, R> RequireLayer<A, R> {
    /// Renders rejections with `responder` instead of the [`DefaultResponder`]. Whatever was
    /// set on the default one (realm, flavour) goes with it: a custom responder renders
    /// challenges and picks the gRPC form itself.
    pub fn with_responder<R2>(self, responder: R2) -> RequireLayer<A, R2> {
        RequireLayer {
            authorize: self.authorize,
            responder,
            challenge: self.challenge,
        }
    }

    /// The `WWW-Authenticate` challenge of 401 and `insufficient_scope` 403 answers, in place
    /// of the default: for a scope requirement, the credential that lacks the scope (an API
    /// key in `x-api-key`: `ApiKey`; a token: `Bearer`; both: both), and `Bearer` otherwise.
    /// Set it for an API key read from another header.
    pub fn challenge(mut self, challenge: Challenge) -> Self {
        self.challenge = Some(challenge);
        self
    }

    /// The check.
    pub fn authorize(&self) -> &A {
        &self.authorize
    }
}

impl<S, A, R> Layer<S> for RequireLayer<A, R>
where
    A: Clone,
    R: Clone,
{
    type Service = Require<S, A, R>;

    fn layer(&self, inner: S) -> Self::Service {
        Require {
            inner,
            authorize: self.authorize.clone(),
            responder: self.responder.clone(),
            challenge: self.challenge.clone(),
        }
    }
}
