//! `AppUserLayer`: the shared [`AuthLayer`] with an [`AppUser`] authenticator.

use super::{AppUser, Policy};
use crate::auth::{AuthLayer, Authenticate};
use crate::principal::EffectiveScopes;
use crate::rejection::DefaultResponder;

/// Authenticates the application and the user of a request together under a [`Policy`].
/// See the [module docs](super).
///
/// It is the shared [`AuthLayer`] with an [`AppUser`] authenticator, so the responder,
/// realm and gRPC flavour work as for every tollgate layer. [`optional`](AuthLayer::optional)
/// lets requests with *neither* credential through; a request with one credential is still
/// held to the policy.
pub type AppUserLayer<A, B, R = DefaultResponder> = AuthLayer<AppUser<A, B>, R>;

/// The service [`AppUserLayer`] makes.
pub type RequireAppUser<S, A, B, R = DefaultResponder> = Authenticate<S, AppUser<A, B>, R>;

impl<A, B> AuthLayer<AppUser<A, B>> {
    /// Combines the application authenticator `app` and the user authenticator `user`
    /// under `policy`.
    pub fn new(app: A, user: B, policy: Policy) -> Self {
        AuthLayer::with_authenticator(AppUser::new(app, user, policy))
    }
}

impl<A, B, R> AuthLayer<AppUser<A, B>, R> {
    /// How scopes combine when both identities are present (default: intersection).
    pub fn effective_scopes(mut self, effective: EffectiveScopes) -> Self {
        self.authenticator = self.authenticator.effective_scopes(effective);
        self
    }

    /// Whether a delegated token sent with an app credential must have been minted for that
    /// app (default: yes); see [`AppUser::bind_delegated_tokens`].
    pub fn bind_delegated_tokens(mut self, bind: bool) -> Self {
        self.authenticator = self.authenticator.bind_delegated_tokens(bind);
        self
    }
}

#[cfg(all(feature = "api-key", feature = "jwt-base"))]
impl<K, C>
    AuthLayer<AppUser<crate::api_key::ApiKeyAuthenticator<K>, crate::jwt::JwtAuthenticator<C>>>
{
    /// Combines a configured [`ApiKeyLayer`](crate::api_key::ApiKeyLayer) and
    /// [`JwtLayer`](crate::jwt::JwtLayer) under `policy`: their authenticators (keys, header,
    /// token sources, validation) are shared, their modes and responders are not used.
    pub fn from_layers<R1, R2>(
        api_key: &crate::api_key::ApiKeyLayer<K, R1>,
        jwt: &crate::jwt::JwtLayer<C, R2>,
        policy: Policy,
    ) -> Self {
        AuthLayer::with_authenticator(AppUser::new(
            api_key.authenticator().clone(),
            jwt.authenticator().clone(),
            policy,
        ))
    }
}
