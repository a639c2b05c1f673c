//! `TokenService`: logins, refresh with rotation and reuse detection, logout.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::grant::{AccessToken, Grant};
use super::refresh::{
    FamilyId, RefreshRecord, RefreshState, RefreshToken, RefreshTokenStore, RotateOutcome,
    StoreError, later, random_bytes,
};
use super::response::{ErrorCode, OAuthError, TokenResponse};
use super::token_issuer::{TokenIssuer, random_id};
use crate::jwt::Revoker;

/// Issues access + refresh token pairs and rotates refresh tokens. See the
/// [module docs](super) for the rules.
///
/// Cloning is cheap (one `Arc`).
pub struct TokenService<S> {
    inner: Arc<Inner<S>>,
}

struct Inner<S> {
    issuer: TokenIssuer,
    store: S,
    refresh_lifetime: Duration,
    grace: Duration,
    denylist: Option<Arc<dyn Revoker>>,
}

impl<S> Clone for TokenService<S> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<S: RefreshTokenStore> TokenService<S> {
    /// Starts configuring a service minting with `issuer` and keeping refresh tokens in
    /// `store`: refresh tokens live 30 days (each rotation restarts the count), no grace
    /// window, no denylist.
    pub fn builder(issuer: TokenIssuer, store: S) -> TokenServiceBuilder<S> {
        TokenServiceBuilder {
            issuer,
            store,
            refresh_lifetime: Duration::from_secs(30 * 24 * 3600),
            grace: Duration::ZERO,
            denylist: None,
        }
    }

    /// After a login: a new family, an access token and its first refresh token for
    /// `subject` with `scopes`.
    ///
    /// # Errors
    ///
    /// `temporarily_unavailable` if the store or the signer fails.
    pub async fn issue<I, T>(&self, subject: &str, scopes: I) -> Result<TokenResponse, OAuthError>
    where
        I: IntoIterator<Item = T>,
        T: Into<String>,
    {
        self.issue_grant(Grant::new(subject).scopes(scopes)).await
    }

    /// After a login, with custom claims: as [`issue`](Self::issue) for `grant`'s subject and
    /// scopes, and every access token of the session, the refreshed ones included, carries
    /// `grant`'s custom claims ([`Grant::claims`], e.g. a tenant). The session's access tokens
    /// live the issuer's lifetime and are the subject's own: `grant`'s lifetime and actor are
    /// not used.
    ///
    /// ```
    /// # async fn run(service: tollgate::issuer::TokenService<tollgate::issuer::InMemoryRefreshStore>)
    /// # -> Result<(), Box<dyn std::error::Error>> {
    /// use tollgate::issuer::Grant;
    ///
    /// let grant = Grant::new("alice")
    ///     .scopes(["orders:read"])
    ///     .claims(&serde_json::json!({"tenant": "acme"}))?;
    /// let tokens = service.issue_grant(grant).await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// `temporarily_unavailable` if the store or the signer fails.
    pub async fn issue_grant(&self, grant: Grant) -> Result<TokenResponse, OAuthError> {
        let now = self.inner.issuer.clock().now();
        let token = RefreshToken::generate();
        let grant = Grant {
            lifetime: None,
            actor: None,
            ..grant
        };
        let record = self.record(&token, FamilyId::generate(), &grant, now);
        let access = self.mint(&grant, &record)?;
        self.inner.store.insert(record).await.map_err(unavailable)?;
        Ok(self.response(&access, &token, now))
    }

    /// Refresh (RFC 6749 §6): uses `refresh_token` once and answers with a new access
    /// token and its successor. The successor keeps the token's subject and scopes.
    ///
    /// - A malformed, unknown, expired or revoked token: `invalid_grant`.
    /// - A token already used: within the grace window, the immediate predecessor of the
    ///   family's active token gets the *same* successor once more; any other reuse revokes
    ///   the whole family (RFC 9700 §4.14.2), denylists the access tokens minted from it
    ///   when a denylist is wired, and answers `invalid_grant`.
    ///
    /// # Errors
    ///
    /// As above; `temporarily_unavailable` if the store fails.
    pub async fn refresh(&self, refresh_token: &str) -> Result<TokenResponse, OAuthError> {
        self.rotate(refresh_token, None).await
    }

    /// Refresh asking for a narrower scope (RFC 6749 §6, the `scope` parameter): as
    /// [`refresh`](Self::refresh), but the new access token carries only `scopes`. The successor
    /// refresh token keeps the whole original grant, as §6 requires, so a later refresh may
    /// ask for the rest again.
    ///
    /// # Errors
    ///
    /// As [`refresh`](Self::refresh); `invalid_scope` if `scopes` is empty (empty strings, as
    /// from splitting `"a  b"` on spaces, are skipped) or names a scope the session was not
    /// granted. An active token asking for too much is refused before it is used, so it can
    /// be presented again. A spent token is still decided by the store first, whatever it asks
    /// for: a reuse revokes its family, and a retry within the grace window spends the one
    /// retry it has.
    pub async fn refresh_with_scopes<I, T>(
        &self,
        refresh_token: &str,
        scopes: I,
    ) -> Result<TokenResponse, OAuthError>
    where
        I: IntoIterator<Item = T>,
        T: Into<String>,
    {
        let mut requested: Vec<String> = scopes
            .into_iter()
            .map(Into::into)
            .filter(|scope| !scope.is_empty())
            .collect();
        crate::identity::normalize_scopes(&mut requested);
        self.rotate(refresh_token, Some(requested)).await
    }

    /// The refresh grant; `narrowed` is the access token's scope when the client asked for one.
    async fn rotate(
        &self,
        refresh_token: &str,
        narrowed: Option<Vec<String>>,
    ) -> Result<TokenResponse, OAuthError> {
        let token = RefreshToken::parse(refresh_token)
            .ok_or_else(|| OAuthError::invalid_grant("The refresh token is malformed."))?;
        let digest = token.digest();
        let store = &self.inner.store;
        let Some(old) = store.find(&digest).await.map_err(unavailable)? else {
            return Err(unknown());
        };
        let now = self.inner.issuer.clock().now();
        let granted = |scope: &String| crate::identity::contains_scope(&old.scopes, scope);
        let scope_refused = narrowed
            .as_ref()
            .is_some_and(|requested| requested.is_empty() || !requested.iter().all(granted));
        // A usable token asking for too much is refused before it is spent. Any other token
        // still goes through the store, so that a reuse is detected (and its family revoked)
        // whatever scope it asks for.
        if scope_refused && old.is_usable(now) {
            return Err(invalid_scope());
        }
        let next = token.successor(&old.seed);
        let candidate = self.record(&next, old.family.clone(), &session_grant(&old), now);
        let outcome = store
            .rotate(&digest, candidate, now, self.inner.grace)
            .await
            .map_err(unavailable)?;
        let successor = match outcome {
            RotateOutcome::Rotated(s) | RotateOutcome::ReusedWithinGrace(s) => {
                crate::observe::metrics::refresh(false);
                s
            }
            RotateOutcome::Reused(family) => {
                crate::observe::metrics::refresh(true);
                #[cfg(feature = "tracing")]
                tracing::warn!(
                    target: "tollgate::issuer",
                    family = %old.family,
                    "refresh token reused: family revoked"
                );
                // The answer is `invalid_grant` either way; a failure to share is logged.
                let _ = self.denylist(&family).await;
                return Err(OAuthError::invalid_grant(
                    "The refresh token was already used; its session is revoked.",
                ));
            }
            RotateOutcome::Revoked => {
                return Err(OAuthError::invalid_grant("The refresh token is revoked."));
            }
            RotateOutcome::Expired => {
                return Err(OAuthError::invalid_grant("The refresh token has expired."));
            }
            RotateOutcome::Unknown => return Err(unknown()),
        };
        if scope_refused {
            // A grace-window retry asking for too much: its successor exists already; nothing
            // new is issued.
            return Err(invalid_scope());
        }
        // The store answers with the successor it keeps; it must be the one this token
        // derives (a store that let another in would be handing out a token we cannot name).
        if successor.digest != next.digest() {
            return Err(OAuthError::new(
                ErrorCode::TemporarilyUnavailable,
                "The refresh-token store answered inconsistently.",
            ));
        }
        let mut grant = session_grant(&successor);
        if let Some(scopes) = narrowed {
            grant.scopes = scopes;
        }
        let access = self.mint(&grant, &successor)?;
        Ok(self.response(&access, &next, now))
    }

    /// Logout: revokes the family of `refresh_token` (any of its tokens, used or not) and
    /// denylists its access tokens when a denylist is wired. Returns whether a family was
    /// found; like RFC 7009, an unknown or malformed token is not an error.
    ///
    /// # Errors
    ///
    /// As [`revoke_family`](Self::revoke_family): `temporarily_unavailable` if the store fails
    /// or the denylist could not share the revocation (call again).
    pub async fn logout(&self, refresh_token: &str) -> Result<bool, OAuthError> {
        let Some(token) = RefreshToken::parse(refresh_token) else {
            return Ok(false);
        };
        let store = &self.inner.store;
        let Some(record) = store.find(&token.digest()).await.map_err(unavailable)? else {
            return Ok(false);
        };
        self.revoke_family(&record.family).await
    }

    /// Revokes `family` (e.g. from an account page listing sessions). Returns whether it had
    /// any token.
    ///
    /// # Errors
    ///
    /// `temporarily_unavailable` if the store fails, or if the denylist could not share the
    /// revocation of the family's access tokens (Redis down): the family is revoked and its
    /// access tokens are refused on this instance; call again (with any token of the family)
    /// to share it.
    pub async fn revoke_family(&self, family: &FamilyId) -> Result<bool, OAuthError> {
        let records = self
            .inner
            .store
            .revoke_family(family)
            .await
            .map_err(unavailable)?;
        self.denylist(&records).await?;
        Ok(!records.is_empty())
    }

    /// The family of `refresh_token`, for listing or revoking sessions. `None` for a
    /// malformed or unknown token.
    ///
    /// # Errors
    ///
    /// `temporarily_unavailable` if the store fails.
    pub async fn family_of(&self, refresh_token: &str) -> Result<Option<FamilyId>, OAuthError> {
        let Some(token) = RefreshToken::parse(refresh_token) else {
            return Ok(None);
        };
        let record = self
            .inner
            .store
            .find(&token.digest())
            .await
            .map_err(unavailable)?;
        Ok(record.map(|r| r.family))
    }

    /// The issuer.
    pub fn issuer(&self) -> &TokenIssuer {
        &self.inner.issuer
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.inner.store
    }

    /// A new active record for `token`, recording the id and expiry of the access token
    /// minted with it (the id is chosen here so the store holds it before the token exists).
    fn record(
        &self,
        token: &RefreshToken,
        family: FamilyId,
        grant: &Grant,
        now: SystemTime,
    ) -> RefreshRecord {
        RefreshRecord {
            digest: token.digest(),
            family,
            subject: grant.subject.clone(),
            scopes: grant.scopes.clone(),
            created_at: now,
            expires_at: later(now, self.inner.refresh_lifetime),
            state: RefreshState::Active,
            seed: random_bytes(),
            access_jti: random_id(),
            access_expires_at: later(now, self.inner.issuer.lifetime()),
            claims: grant.extra.clone(),
        }
    }

    /// Mints the access token `record` names: its `jti`, issued at its creation, expiring
    /// when it says. Minting it again (a grace re-use) yields the same claims and `jti`.
    fn mint(&self, grant: &Grant, record: &RefreshRecord) -> Result<AccessToken, OAuthError> {
        let mut grant = grant.clone();
        grant.jti = Some(record.access_jti.clone());
        grant.issued_at = Some(record.created_at);
        grant.expires_at = Some(record.access_expires_at);
        self.inner.issuer.mint(&grant).map_err(|_| {
            OAuthError::new(
                ErrorCode::TemporarilyUnavailable,
                "The access token could not be signed.",
            )
        })
    }

    fn response(
        &self,
        access: &AccessToken,
        refresh: &RefreshToken,
        now: SystemTime,
    ) -> TokenResponse {
        TokenResponse {
            access_token: access.as_str().to_owned(),
            token_type: "Bearer".to_owned(),
            expires_in: access.expires_in(now),
            refresh_token: Some(refresh.to_plaintext()),
            scope: (!access.scopes().is_empty()).then(|| access.scopes().join(" ")),
            issued_token_type: None,
        }
    }

    /// Puts the access tokens of `records` on the denylist in one call, each until its `exp`
    /// (the denylist keeps it for the JWT layer's leeway after that, and drops what has
    /// ended). A failure to share the revocation is logged: the local copy holds already.
    async fn denylist(&self, records: &[RefreshRecord]) -> Result<(), OAuthError> {
        let Some(revoker) = &self.inner.denylist else {
            return Ok(());
        };
        let entries: Vec<(String, SystemTime)> = records
            .iter()
            .map(|record| (record.access_jti.clone(), record.access_expires_at))
            .collect();
        if let Err(error) = revoker.revoke_many(entries).await {
            #[cfg(feature = "tracing")]
            tracing::warn!(
                target: "tollgate::issuer",
                %error,
                "sharing a family's access-token revocations failed"
            );
            drop(error);
            return Err(OAuthError::new(
                ErrorCode::TemporarilyUnavailable,
                "The session is revoked, but not yet everywhere: try again.",
            ));
        }
        Ok(())
    }
}

impl<S: fmt::Debug> fmt::Debug for TokenService<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenService")
            .field("issuer", &self.inner.issuer)
            .field("store", &self.inner.store)
            .field("refresh_lifetime", &self.inner.refresh_lifetime)
            .field("grace", &self.inner.grace)
            .field("denylist", &self.inner.denylist.is_some())
            .finish()
    }
}

/// Configures a [`TokenService`]; see [`TokenService::builder`].
#[must_use]
pub struct TokenServiceBuilder<S> {
    issuer: TokenIssuer,
    store: S,
    refresh_lifetime: Duration,
    grace: Duration,
    denylist: Option<Arc<dyn Revoker>>,
}

impl<S: RefreshTokenStore> TokenServiceBuilder<S> {
    /// How long a refresh token lives from its issue (default 30 days; a rotation issues a
    /// new one, so an active session slides).
    pub fn refresh_lifetime(mut self, lifetime: Duration) -> Self {
        self.refresh_lifetime = lifetime;
        self
    }

    /// A grace window (default none): for this long after a rotation, the token just used
    /// may be presented once more and gets the same successor, so a client whose response
    /// was lost (or two tabs refreshing at once) is not logged out. Keep it short (seconds).
    pub fn grace_window(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// Wires a `jti` denylist: when a family is revoked (logout or detected reuse), the access
    /// tokens minted from it are revoked through `revoker` in one call, each until its `exp`.
    /// Give the same denylist to the JWT layer with
    /// [`JwtBuilder::revocation`](crate::jwt::JwtBuilder::revocation): the layer tells it its
    /// leeway, and it keeps each entry that long after `exp`.
    ///
    /// - A [`RevocationList`](crate::jwt::RevocationList) revokes in this process only.
    /// - With several instances, wire `RedisRevocation` (features `redis` + `jwt`): the
    ///   revocation holds here at once and reaches every instance through Redis. If Redis
    ///   fails, the tokens are refused here only: [`logout`](TokenService::logout) and
    ///   [`revoke_family`](TokenService::revoke_family) then answer `temporarily_unavailable`
    ///   so the caller can try again; a detected reuse still answers `invalid_grant` (the
    ///   failure is logged).
    pub fn denylist(mut self, revoker: impl Revoker) -> Self {
        self.denylist = Some(Arc::new(revoker));
        self
    }

    /// Builds the service.
    pub fn build(self) -> TokenService<S> {
        TokenService {
            inner: Arc::new(Inner {
                issuer: self.issuer,
                store: self.store,
                refresh_lifetime: self.refresh_lifetime,
                grace: self.grace,
                denylist: self.denylist,
            }),
        }
    }
}

impl<S> fmt::Debug for TokenServiceBuilder<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenServiceBuilder")
            .field("issuer", &self.issuer)
            .field("grace", &self.grace)
            .finish_non_exhaustive()
    }
}

/// What every access token of `record`'s session grants: its subject, scopes and claims.
fn session_grant(record: &RefreshRecord) -> Grant {
    let mut grant = Grant::new(record.subject.clone()).scopes(record.scopes.clone());
    grant.extra = record.claims.clone();
    grant
}

fn invalid_scope() -> OAuthError {
    OAuthError::new(
        ErrorCode::InvalidScope,
        "The requested scope is empty or exceeds what the session was granted.",
    )
}

fn unknown() -> OAuthError {
    OAuthError::invalid_grant("The refresh token is not valid.")
}

fn unavailable(error: StoreError) -> OAuthError {
    #[cfg(feature = "tracing")]
    tracing::warn!(target: "tollgate::issuer", %error, "refresh-token store failed");
    drop(error); // only logged: clients never see a store's error
    OAuthError::new(
        ErrorCode::TemporarilyUnavailable,
        "The token service is temporarily unavailable.",
    )
}
