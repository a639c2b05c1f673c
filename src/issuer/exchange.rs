//! Token exchange (RFC 8693 semantics): an application authenticated by its API key obtains
//! a short-lived access token for one user of a directory, within what both hold.

use std::fmt;
use std::future::{Future, ready};
use std::time::Duration;

use super::directory::{TrustTheApp, UserDirectory};
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

/// The default [`ExchangePolicy`]: no per-app consent check beyond the key's exchange scope
/// and the [`UserDirectory`] (which already bounds what a token can carry). Replace it when
/// users must connect each application first.
#[derive(Debug, Clone, Copy, Default)]
pub struct AnyUser;

impl ExchangePolicy for AnyUser {
    fn allows(&self, _: &AppIdentity, _: &str) -> impl Future<Output = bool> + Send {
        ready(true)
    }
}

/// Token exchange: [`exchange`](Self::exchange) mints a token with `sub` = the user,
/// `act: {"sub": <app id>}`, `azp` and `client_id` = the app id, 180 s by default. No refresh
/// token: the app exchanges again.
///
/// An app acts for a user only within what **both** hold: the minted scopes are the app key's
/// scopes ∩ the user's own grants ∩ the requested `scope` (if sent). The user comes from a
/// [`UserDirectory`] the application provides (its user store): an unknown or inactive user
/// gets no token. Three gates, all required: the app's key grants the exchange scope
/// (`token:exchange` by default; never copied into the minted token), the [`ExchangePolicy`]
/// allows this app to act for this user, and the directory knows the user as active.
///
/// There is no permissive default: without a directory, only the explicitly named
/// [`trusting_the_app`](TokenExchange::trusting_the_app) builds one.
///
/// ```
/// use std::collections::HashMap;
/// use tollgate::issuer::{DirectoryUser, TokenExchange, TokenIssuer};
///
/// # fn f(issuer: TokenIssuer) {
/// let mut users = HashMap::new();
/// users.insert("alice".to_owned(), DirectoryUser::active(["orders:read", "profile"]));
/// let exchange = TokenExchange::new(issuer, users);
/// // exchange.exchange(&app, "alice", None).await: at most orders:read and profile, and only
/// // those the app's key grants too.
/// # }
/// ```
///
/// A token minted here names the acting app in `act.sub`: [`UserIdentity::actor`] shows it,
/// and [`AppUserLayer`] refuses it next to another app's key.
///
/// [`UserIdentity::actor`]: crate::identity::UserIdentity::actor
/// [`AppUserLayer`]: crate::app_user::AppUserLayer
#[derive(Clone)]
pub struct TokenExchange<D, P = AnyUser> {
    issuer: TokenIssuer,
    directory: D,
    lifetime: Duration,
    scope: Option<String>,
    policy: P,
}

impl<D: UserDirectory> TokenExchange<D> {
    /// Exchange minting with `issuer` for the users of `directory`: 180 s tokens, the
    /// `token:exchange` scope required.
    pub fn new(issuer: TokenIssuer, directory: D) -> Self {
        Self {
            issuer,
            directory,
            lifetime: Duration::from_secs(180),
            scope: Some("token:exchange".to_owned()),
            policy: AnyUser,
        }
    }
}

impl TokenExchange<TrustTheApp> {
    /// Exchange minting **without a user directory**: an app holding the exchange scope may
    /// act as any subject, even one that does not exist, with all of its own scopes (the
    /// requested ones, if sent). The app is trusted as much as the issuer itself: use it only
    /// for a first-party backend, never for partners' keys. Prefer [`new`](TokenExchange::new).
    pub fn trusting_the_app(issuer: TokenIssuer) -> Self {
        Self::new(issuer, TrustTheApp::new())
    }
}

impl<D: UserDirectory, P: ExchangePolicy> TokenExchange<D, P> {
    /// Decides per app and user with `policy`, on top of the directory.
    pub fn policy<P2: ExchangePolicy>(self, policy: P2) -> TokenExchange<D, P2> {
        TokenExchange {
            issuer: self.issuer,
            directory: self.directory,
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
    /// leaves the decision to the policy and the directory.
    #[must_use]
    pub fn required_scope(mut self, scope: Option<&str>) -> Self {
        self.scope = scope.map(str::to_owned);
        self
    }

    /// The directory users are looked up in.
    pub fn directory(&self) -> &D {
        &self.directory
    }

    /// Mints a token for `subject` on behalf of `app`. `scope` is the request's
    /// space-delimited `scope` parameter. The token gets the scopes the app's key grants, the
    /// user holds and (when `scope` is sent) the request names; the exchange scope is never
    /// among them.
    ///
    /// # Errors
    ///
    /// - `invalid_request`: an empty subject, or one the directory does not know or holds
    ///   inactive (the same answer for both);
    /// - `unauthorized_client`: the app lacks the exchange scope or the policy refuses;
    /// - `invalid_scope`: no scope is held by the app, the user and the request alike;
    /// - `temporarily_unavailable`: the directory failed, or signing did.
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
        let user = match self.directory.find_user(subject).await {
            Ok(Some(user)) if user.is_active() => user,
            Ok(_) => {
                return Err(OAuthError::new(
                    ErrorCode::InvalidRequest,
                    "The subject is not a user the client may act for.",
                ));
            }
            Err(_error) => {
                #[cfg(feature = "tracing")]
                tracing::warn!(
                    target: "tollgate::issuer",
                    error = %_error,
                    "the user directory failed during a token exchange"
                );
                return Err(OAuthError::new(
                    ErrorCode::TemporarilyUnavailable,
                    "The user directory is unavailable; retry later.",
                ));
            }
        };
        let exchange_scope = self.scope.as_deref();
        let grantable = |s: &str| Some(s) != exchange_scope && app.has_scope(s) && user.holds(s);
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
                "No requested scope is held by both the client and the user.",
            ));
        }
        let mut grant = Grant::new(subject)
            .scopes(scopes)
            .actor(app.app_id())
            .lifetime(self.lifetime);
        if let Some(tenant) = user.tenant_id() {
            grant = grant
                .claims(&serde_json::json!({ "tenant": tenant }))
                .map_err(|_| {
                    OAuthError::new(
                        ErrorCode::TemporarilyUnavailable,
                        "The access token could not be built.",
                    )
                })?;
        }
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

impl<D, P> fmt::Debug for TokenExchange<D, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenExchange")
            .field("issuer", &self.issuer)
            .field("lifetime", &self.lifetime)
            .field("required_scope", &self.scope)
            .finish_non_exhaustive()
    }
}
