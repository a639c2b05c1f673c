//! The user directory token exchange consults: does the user exist, is the user active, and
//! what may the user do.

use std::collections::HashMap;
use std::fmt;
use std::future::{Future, ready};
use std::sync::Arc;

/// Why a [`UserDirectory`] could not answer (its database is down, say). Token exchange
/// answers `temporarily_unavailable` and mints nothing.
pub type DirectoryError = Box<dyn std::error::Error + Send + Sync>;

/// Where token exchange looks a subject up: the application's own user store.
///
/// [`TokenExchange`](super::TokenExchange) mints a token for a user only if the directory
/// knows the user and says the user is active, and only with scopes the user holds. Async, so
/// it can ask a database. Implemented for `HashMap<String, DirectoryUser>` and for `Arc`s of
/// directories.
///
/// ```
/// use std::collections::HashMap;
/// use tollgate::issuer::DirectoryUser;
///
/// let mut users = HashMap::new();
/// users.insert("alice".to_owned(), DirectoryUser::active(["orders:read", "orders:write"]));
/// users.insert("bob".to_owned(), DirectoryUser::inactive());
/// // `users` is a UserDirectory: `TokenExchange::new(issuer, users)`.
/// ```
pub trait UserDirectory: Send + Sync + 'static {
    /// The user `subject` names, or `None` when there is no such user.
    fn find_user(
        &self,
        subject: &str,
    ) -> impl Future<Output = Result<Option<DirectoryUser>, DirectoryError>> + Send;
}

impl<D: UserDirectory> UserDirectory for Arc<D> {
    fn find_user(
        &self,
        subject: &str,
    ) -> impl Future<Output = Result<Option<DirectoryUser>, DirectoryError>> + Send {
        (**self).find_user(subject)
    }
}

impl<S> UserDirectory for HashMap<String, DirectoryUser, S>
where
    S: std::hash::BuildHasher + Send + Sync + 'static,
{
    fn find_user(
        &self,
        subject: &str,
    ) -> impl Future<Output = Result<Option<DirectoryUser>, DirectoryError>> + Send {
        ready(Ok(self.get(subject).cloned()))
    }
}

/// A user as a [`UserDirectory`] knows it: active or not, the scopes the user holds, and
/// optionally a tenant (written into exchanged tokens as the `tenant` claim).
#[derive(Clone, PartialEq, Eq)]
pub struct DirectoryUser {
    active: bool,
    grants: Grants,
    tenant: Option<String>,
}

#[derive(Clone, PartialEq, Eq)]
enum Grants {
    /// The user's own scopes.
    These(Vec<String>),
    /// Whatever the acting app holds: only [`TrustTheApp`] answers this.
    WhateverTheAppHolds,
}

impl DirectoryUser {
    /// An active user holding `scopes`.
    pub fn active<I, T>(scopes: I) -> Self
    where
        I: IntoIterator<Item = T>,
        T: Into<String>,
    {
        Self {
            active: true,
            grants: Grants::These(scopes.into_iter().map(Into::into).collect()),
            tenant: None,
        }
    }

    /// A user who exists but may not be acted for (disabled, locked, deleted): exchange
    /// refuses as for an unknown user.
    pub fn inactive() -> Self {
        Self {
            active: false,
            grants: Grants::These(Vec::new()),
            tenant: None,
        }
    }

    /// The user's tenant, written into exchanged tokens as the `tenant` claim.
    #[must_use]
    pub fn tenant(mut self, tenant: impl Into<String>) -> Self {
        self.tenant = Some(tenant.into());
        self
    }

    /// Whether the user may be acted for.
    pub fn is_active(&self) -> bool {
        self.active
    }

    /// The scopes the user holds; `None` for [`TrustTheApp`]'s users, who hold whatever the
    /// acting app holds.
    pub fn scopes(&self) -> Option<&[String]> {
        match &self.grants {
            Grants::These(scopes) => Some(scopes),
            Grants::WhateverTheAppHolds => None,
        }
    }

    /// The user's tenant, if any.
    pub fn tenant_id(&self) -> Option<&str> {
        self.tenant.as_deref()
    }

    /// Whether the user holds `scope` (any scope for [`TrustTheApp`]'s users).
    pub(super) fn holds(&self, scope: &str) -> bool {
        match &self.grants {
            Grants::These(scopes) => scopes.iter().any(|s| s == scope),
            Grants::WhateverTheAppHolds => true,
        }
    }
}

impl fmt::Debug for DirectoryUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DirectoryUser")
            .field("active", &self.active)
            .field("scopes", &self.scopes())
            .field("tenant", &self.tenant)
            .finish()
    }
}

/// The directory of [`TokenExchange::trusting_the_app`](super::TokenExchange::trusting_the_app):
/// every subject exists, is active and holds whatever the acting app holds. The app may then
/// act as **anyone**, even a user who does not exist, with all of its own scopes: use it
/// only for a first-party backend you trust as much as the issuer itself, never for
/// partners' keys.
#[derive(Debug, Clone, Copy)]
pub struct TrustTheApp {
    _private: (),
}

impl TrustTheApp {
    pub(super) const fn new() -> Self {
        Self { _private: () }
    }
}

impl UserDirectory for TrustTheApp {
    fn find_user(
        &self,
        _subject: &str,
    ) -> impl Future<Output = Result<Option<DirectoryUser>, DirectoryError>> + Send {
        ready(Ok(Some(DirectoryUser {
            active: true,
            grants: Grants::WhateverTheAppHolds,
            tenant: None,
        })))
    }
}
