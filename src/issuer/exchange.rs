//! Token exchange (RFC 8693 semantics): an application authenticated by its API key obtains
//! a short-lived access token for one user.

use std::fmt;
use std::future::{Future, ready};
use std::time::Duration;

use super::grant::Grant;
use super::response::{ErrorCode, OAuthError, TokenResponse};
use super::token_issuer::TokenIssuer;
use crate::identity::AppIdentity;

/// Decides whether an application may act for a user. Async, so it can ask a database
/// (e.g. "has this user connected this app?"). Closures `Fn(&AppIdentity, &str) -> bool`
/// implement it.
pub trait ExchangePolicy: Send + Sync + 'static {
    /// Whether `app` may obtain a token for `subject`.
    fn allows(&self, app: &AppIdentity, subject: &str) -> impl Future<Output = bool> + Send;
}

impl<F> ExchangePolicy for F
where
    F: Fn(&AppIdentity, &str) -> bool + Send + Sync + 'static,
{
    fn allows(&self, app: &AppIdentity, subject: &str) -> impl Future<Output = bool> + Send {
        ready(self(app, subject))
    }
}

/// The default [`ExchangePolicy`]: every application holding the exchange scope may act for
/// every user. Replace it when users must consent per application.
#[derive(Debug, Clone, Copy, Default)]
pub struct AnyUser;

impl ExchangePolicy for AnyUser {
    fn allows(&self, _: &AppIdentity, _: &str) -> impl Future<Output = bool> + Send {
        ready(true)
    }
}

/// Token exchange: [`exchange`](Self::exchange) mints a token with `sub` = the user,
/// `act: {"sub": <app id>}`, `azp` and `client_id` = the app id, scopes limited to what the
/// app's key grants, 180 s by default. No refresh token: the app exchanges again.
///
/// Two gates, both required: the app's key must grant the exchange scope (`token:exchange`
/// by default; it is never copied into the minted token), and the [`ExchangePolicy`] must
/// allow this app to act for this user.
///
/// The user's own grants are not consulted here: the scopes an app may exercise for a user
/// are what its key grants. Where users hold narrower rights, check them in the policy, or
/// rely on the combined layer's intersection of app and user scopes.
#[derive(Clone)]
pub struct TokenExchange<P = AnyUser> {
    issuer: TokenIssuer,
    lifetime: Duration,
    scope: Option<String>,
    policy: P,
}

impl TokenExchange {
    /// Exchange minting with `issuer`: 180 s tokens, the `token:exchange` scope required,
    /// any user allowed ([`AnyUser`]).
    pub fn new(issuer: TokenIssuer) -> Self {
        Self {
            issuer,
            lifetime: Duration::from_secs(180),
            scope: Some("token:exchange".to_owned()),
            policy: AnyUser,
        }
    }
}

impl<P: ExchangePolicy> TokenExchange<P> {
    /// Decides per app and user with `policy`.
    pub fn policy<P2: ExchangePolicy>(self, policy: P2) -> TokenExchange<P2> {
        TokenExchange {
            issuer: self.issuer,
            lifetime: self.lifetime,
            scope: self.scope,
            policy,
        }
    }

    /// The minted tokens' lifetime (default 180 s; capped at the issuer's).
    #[must_use]
    pub fn lifetime(mut self, lifetime: Duration) -> Self {
        self.lifetime = lifetime;
        self
    }

    /// The scope an app's key must grant to exchange (default `token:exchange`); `None`
    /// leaves the decision to the policy alone.
    #[must_use]
    pub fn required_scope(mut self, scope: Option<&str>) -> Self {
        self.scope = scope.map(str::to_owned);
        self
    }

    /// Mints a token for `subject` on behalf of `app`. `scope` is the request's
    /// space-delimited `scope` parameter: the token gets its intersection with the app's
    /// scopes; without it, all of the app's scopes (the exchange scope excepted).
    ///
    /// # Errors
    ///
    /// - `invalid_request`: an empty subject;
    /// - `unauthorized_client`: the app lacks the exchange scope or the policy refuses;
    /// - `invalid_scope`: no requested scope is granted to the app (or it has none);
    /// - `temporarily_unavailable`: signing failed.
    pub async fn exchange(
        &self,
        app: &AppIdentity,
        subject: &str,
        scope: Option<&str>,
    ) -> Result<TokenResponse, OAuthError> {
        if subject.is_empty() {
            return Err(OAuthError::new(
                ErrorCode::InvalidRequest,
                "The subject is missing.",
            ));
        }
        if let Some(required) = &self.scope {
            if !app.has_scope(required) {
                return Err(OAuthError::new(
                    ErrorCode::UnauthorizedClient,
                    "The client may not exchange tokens.",
                ));
            }
        }
        if !self.policy.allows(app, subject).await {
            return Err(OAuthError::new(
                ErrorCode::UnauthorizedClient,
                "The client may not act for this user.",
            ));
        }
        let exchange_scope = self.scope.as_deref();
        let grantable = |s: &str| Some(s) != exchange_scope && app.has_scope(s);
        let scopes: Vec<&str> = match scope {
            Some(requested) => requested
                .split(' ')
                .filter(|s| !s.is_empty() && grantable(s))
                .collect(),
            None => app
                .scopes()
                .iter()
                .map(String::as_str)
                .filter(|s| grantable(s))
                .collect(),
        };
        if scopes.is_empty() {
            return Err(OAuthError::new(
                ErrorCode::InvalidScope,
                "None of the requested scopes is granted to the client.",
            ));
        }
        let grant = Grant::new(subject)
            .scopes(scopes)
            .actor(app.app_id())
            .lifetime(self.lifetime);
        let access = self.issuer.mint(&grant).map_err(|_| {
            OAuthError::new(
                ErrorCode::TemporarilyUnavailable,
                "The access token could not be signed.",
            )
        })?;
        Ok(TokenResponse {
            access_token: access.as_str().to_owned(),
            token_type: "Bearer".to_owned(),
            expires_in: access.expires_in(self.issuer.clock().now()),
            refresh_token: None,
            scope: Some(access.scopes().join(" ")),
            issued_token_type: Some("urn:ietf:params:oauth:token-type:access_token".to_owned()),
        })
    }
}

impl<P> fmt::Debug for TokenExchange<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenExchange")
            .field("issuer", &self.issuer)
            .field("lifetime", &self.lifetime)
            .field("required_scope", &self.scope)
            .finish_non_exhaustive()
    }
}
