//! What a valid token hands downstream.

use std::fmt;

use super::claims::{Claims, StandardClaims};
use crate::auth::Identity;
use crate::identity::UserIdentity;

/// What a valid token hands downstream: the [`UserIdentity`] and the [`Claims<C>`], both
/// inserted into the request extensions.
pub struct VerifiedToken<C = StandardClaims> {
    pub(crate) user: UserIdentity,
    pub(crate) claims: Claims<C>,
}

impl<C> VerifiedToken<C> {
    /// The user the token speaks for.
    pub fn user(&self) -> &UserIdentity {
        &self.user
    }

    /// The validated claims.
    pub fn claims(&self) -> &Claims<C> {
        &self.claims
    }
}

impl<C> Clone for VerifiedToken<C> {
    fn clone(&self) -> Self {
        Self {
            user: self.user.clone(),
            claims: self.claims.clone(),
        }
    }
}

impl<C: fmt::Debug> fmt::Debug for VerifiedToken<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifiedToken")
            .field("user", &self.user)
            .field("claims", &self.claims)
            .finish()
    }
}

impl<C: Send + Sync + 'static> Identity for VerifiedToken<C> {
    fn insert_into(self, extensions: &mut http::Extensions) {
        extensions.insert(self.user);
        extensions.insert(self.claims);
    }

    fn actor(&self) -> Option<&str> {
        self.user.actor()
    }

    fn subject(&self) -> Option<&str> {
        self.user.subject()
    }

    fn issuer(&self) -> Option<&str> {
        self.user.issuer()
    }
}
