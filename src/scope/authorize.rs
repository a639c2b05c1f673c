//! The [`Authorize`] trait and the predicate checks built on it.

use std::fmt;
use std::marker::PhantomData;

use crate::principal::Principal;
use crate::rejection::{Rejection, RejectionKind, RequestHead};

/// Decides, synchronously and from the request head, whether an authenticated request may go
/// on. See the [module docs](super).
///
/// Return [`RejectionKind::MissingCredential`] when no identity is there (401) and
/// [`RejectionKind::InsufficientScope`] or [`RejectionKind::Forbidden`] (403) when it is not
/// enough; [`RequireLayer`](super::RequireLayer) adds its `WWW-Authenticate` challenge.
pub trait Authorize {
    /// `Ok(())` lets the request through; a rejection answers it.
    fn authorize(&self, request: &RequestHead<'_>) -> Result<(), Rejection>;
}

/// A predicate on the [`Principal`]: no principal → 401, `false` → 403 `forbidden`.
/// Made by [`RequireLayer::principal`](super::RequireLayer::principal).
#[derive(Clone)]
pub struct PrincipalPredicate<F> {
    predicate: F,
}

impl<F> PrincipalPredicate<F> {
    pub(crate) fn new(predicate: F) -> Self {
        Self { predicate }
    }
}

impl<F> Authorize for PrincipalPredicate<F>
where
    F: Fn(&Principal) -> bool,
{
    fn authorize(&self, request: &RequestHead<'_>) -> Result<(), Rejection> {
        let principal = Principal::from_extensions(request.extensions())
            .ok_or_else(|| Rejection::new(RejectionKind::MissingCredential))?;
        if (self.predicate)(&principal) {
            Ok(())
        } else {
            Err(Rejection::new(RejectionKind::Forbidden))
        }
    }
}

impl<F> fmt::Debug for PrincipalPredicate<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrincipalPredicate").finish_non_exhaustive()
    }
}

/// A predicate on a request extension `T`, such as the validated
/// [`Claims<C>`](crate::jwt::Claims): no `T` → 401, `false` → 403 `forbidden`. Made by
/// [`RequireLayer::extension`](super::RequireLayer::extension) and
/// [`RequireLayer::claims`](super::RequireLayer::claims).
pub struct ExtensionPredicate<T, F> {
    predicate: F,
    _extension: PhantomData<fn(&T)>,
}

impl<T, F> ExtensionPredicate<T, F> {
    pub(crate) fn new(predicate: F) -> Self {
        Self {
            predicate,
            _extension: PhantomData,
        }
    }
}

impl<T, F: Clone> Clone for ExtensionPredicate<T, F> {
    fn clone(&self) -> Self {
        Self::new(self.predicate.clone())
    }
}

impl<T, F> Authorize for ExtensionPredicate<T, F>
where
    T: Send + Sync + 'static,
    F: Fn(&T) -> bool,
{
    fn authorize(&self, request: &RequestHead<'_>) -> Result<(), Rejection> {
        let value = request
            .extensions()
            .get::<T>()
            .ok_or_else(|| Rejection::new(RejectionKind::MissingCredential))?;
        if (self.predicate)(value) {
            Ok(())
        } else {
            Err(Rejection::new(RejectionKind::Forbidden))
        }
    }
}

impl<T, F> fmt::Debug for ExtensionPredicate<T, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExtensionPredicate")
            .field("extension", &std::any::type_name::<T>())
            .finish_non_exhaustive()
    }
}
