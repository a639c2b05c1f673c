//! The `RefreshTokenStore` trait: where refresh-token records live, and the one atomic
//! operation rotation needs.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::record::RefreshRecord;
use super::token::{FamilyId, TokenDigest};

/// Where refresh-token records live.
///
/// Rotation is one operation, [`rotate`](Self::rotate), so that a store backed by a
/// database decides it in one transaction (`SELECT … FOR UPDATE` on the presented token's
/// row, or a conditional `UPDATE … WHERE state = 'active' RETURNING`): two refreshes racing
/// with the same token then produce exactly one successor. tollgate ships
/// [`InMemoryRefreshStore`](super::InMemoryRefreshStore).
pub trait RefreshTokenStore: Send + Sync + 'static {
    /// The record stored under `digest`, whatever its state.
    fn find(
        &self,
        digest: &TokenDigest,
    ) -> impl Future<Output = Result<Option<RefreshRecord>, StoreError>> + Send;

    /// Stores the first record of a new family.
    fn insert(&self, record: RefreshRecord) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Atomically uses the token stored under `presented`, as follows (checked in order):
    ///
    /// 1. no such record: [`RotateOutcome::Unknown`];
    /// 2. its family is revoked: [`RotateOutcome::Revoked`];
    /// 3. it expired (`expires_at <= now`): [`RotateOutcome::Expired`];
    /// 4. it is active: it becomes `Rotated { at: now, successor: successor.digest() }` and
    ///    `successor` is stored (active): [`RotateOutcome::Rotated`] with the successor;
    /// 5. it was rotated less than `grace` ago, its grace re-use is unspent and its
    ///    successor is still active (so it is the *immediate* predecessor): the re-use is
    ///    spent and the stored successor is returned, [`RotateOutcome::ReusedWithinGrace`];
    ///    the `successor` argument is discarded;
    /// 6. otherwise it is a reuse: every record of its family is revoked and returned,
    ///    [`RotateOutcome::Reused`].
    fn rotate(
        &self,
        presented: &TokenDigest,
        successor: RefreshRecord,
        now: SystemTime,
        grace: Duration,
    ) -> impl Future<Output = Result<RotateOutcome, StoreError>> + Send;

    /// Revokes every record of `family` and returns them (empty if there is none).
    fn revoke_family(
        &self,
        family: &FamilyId,
    ) -> impl Future<Output = Result<Vec<RefreshRecord>, StoreError>> + Send;

    /// Every record of `family`, oldest first.
    fn family(
        &self,
        family: &FamilyId,
    ) -> impl Future<Output = Result<Vec<RefreshRecord>, StoreError>> + Send;
}

impl<S: RefreshTokenStore> RefreshTokenStore for Arc<S> {
    fn find(
        &self,
        digest: &TokenDigest,
    ) -> impl Future<Output = Result<Option<RefreshRecord>, StoreError>> + Send {
        (**self).find(digest)
    }

    fn insert(&self, record: RefreshRecord) -> impl Future<Output = Result<(), StoreError>> + Send {
        (**self).insert(record)
    }

    fn rotate(
        &self,
        presented: &TokenDigest,
        successor: RefreshRecord,
        now: SystemTime,
        grace: Duration,
    ) -> impl Future<Output = Result<RotateOutcome, StoreError>> + Send {
        (**self).rotate(presented, successor, now, grace)
    }

    fn revoke_family(
        &self,
        family: &FamilyId,
    ) -> impl Future<Output = Result<Vec<RefreshRecord>, StoreError>> + Send {
        (**self).revoke_family(family)
    }

    fn family(
        &self,
        family: &FamilyId,
    ) -> impl Future<Output = Result<Vec<RefreshRecord>, StoreError>> + Send {
        (**self).family(family)
    }
}

/// What [`RefreshTokenStore::rotate`] did.
#[derive(Debug, Clone)]
pub enum RotateOutcome {
    /// The token was active: it is now rotated, and this successor is stored.
    Rotated(RefreshRecord),
    /// The token was the successor's immediate predecessor, re-used within the grace window:
    /// this is the successor already stored (the same one the first use got).
    ReusedWithinGrace(RefreshRecord),
    /// The token had been rotated: a reuse. Its whole family is now revoked; these are its
    /// records.
    Reused(Vec<RefreshRecord>),
    /// The token's family was revoked before.
    Revoked,
    /// The token expired.
    Expired,
    /// No such token.
    Unknown,
}

/// A refresh-token store failed. The token endpoint answers `temporarily_unavailable`; the
/// client never sees the cause.
#[derive(Clone)]
pub struct StoreError {
    source: Arc<dyn std::error::Error + Send + Sync>,
}

impl StoreError {
    /// The store is unreachable or failed; `source` says why (for logs, never for clients).
    pub fn new(source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self {
            source: Arc::from(source.into()),
        }
    }
}

impl fmt::Debug for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("StoreError")
            .field(&self.source.to_string())
            .finish()
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "refresh-token store failed: {}", self.source)
    }
}

impl std::error::Error for StoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.source)
    }
}

type BoxFuture<'a, T> = std::pin::Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// [`RefreshTokenStore`] as a trait object: every store is one, and `Arc<dyn DynRefreshStore>`
/// ([`BoxRefreshStore`]) is a [`RefreshTokenStore`] again, so the store can be chosen at run
/// time (memory or PostgreSQL) without a generic through the application. Each call
/// allocates its future.
pub trait DynRefreshStore: Send + Sync + 'static {
    /// [`RefreshTokenStore::find`].
    fn find<'a>(
        &'a self,
        digest: &'a TokenDigest,
    ) -> BoxFuture<'a, Result<Option<RefreshRecord>, StoreError>>;
    /// [`RefreshTokenStore::insert`].
    fn insert(&self, record: RefreshRecord) -> BoxFuture<'_, Result<(), StoreError>>;
    /// [`RefreshTokenStore::rotate`].
    fn rotate<'a>(
        &'a self,
        presented: &'a TokenDigest,
        successor: RefreshRecord,
        now: SystemTime,
        grace: Duration,
    ) -> BoxFuture<'a, Result<RotateOutcome, StoreError>>;
    /// [`RefreshTokenStore::revoke_family`].
    fn revoke_family<'a>(
        &'a self,
        family: &'a FamilyId,
    ) -> BoxFuture<'a, Result<Vec<RefreshRecord>, StoreError>>;
    /// [`RefreshTokenStore::family`].
    fn family<'a>(
        &'a self,
        family: &'a FamilyId,
    ) -> BoxFuture<'a, Result<Vec<RefreshRecord>, StoreError>>;
}

/// A refresh-token store chosen at run time; see [`DynRefreshStore`].
pub type BoxRefreshStore = Arc<dyn DynRefreshStore>;

impl<S: RefreshTokenStore> DynRefreshStore for S {
    fn find<'a>(
        &'a self,
        digest: &'a TokenDigest,
    ) -> BoxFuture<'a, Result<Option<RefreshRecord>, StoreError>> {
        Box::pin(RefreshTokenStore::find(self, digest))
    }
    fn insert(&self, record: RefreshRecord) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(RefreshTokenStore::insert(self, record))
    }
    fn rotate<'a>(
        &'a self,
        presented: &'a TokenDigest,
        successor: RefreshRecord,
        now: SystemTime,
        grace: Duration,
    ) -> BoxFuture<'a, Result<RotateOutcome, StoreError>> {
        Box::pin(RefreshTokenStore::rotate(
            self, presented, successor, now, grace,
        ))
    }
    fn revoke_family<'a>(
        &'a self,
        family: &'a FamilyId,
    ) -> BoxFuture<'a, Result<Vec<RefreshRecord>, StoreError>> {
        Box::pin(RefreshTokenStore::revoke_family(self, family))
    }
    fn family<'a>(
        &'a self,
        family: &'a FamilyId,
    ) -> BoxFuture<'a, Result<Vec<RefreshRecord>, StoreError>> {
        Box::pin(RefreshTokenStore::family(self, family))
    }
}

// The futures own what they need: `RefreshTokenStore`'s futures may not borrow the arguments.
impl RefreshTokenStore for Arc<dyn DynRefreshStore> {
    fn find(
        &self,
        digest: &TokenDigest,
    ) -> impl Future<Output = Result<Option<RefreshRecord>, StoreError>> + Send {
        let (this, digest) = (Arc::clone(self), *digest);
        async move { DynRefreshStore::find(&*this, &digest).await }
    }
    fn insert(&self, record: RefreshRecord) -> impl Future<Output = Result<(), StoreError>> + Send {
        DynRefreshStore::insert(&**self, record)
    }
    fn rotate(
        &self,
        presented: &TokenDigest,
        successor: RefreshRecord,
        now: SystemTime,
        grace: Duration,
    ) -> impl Future<Output = Result<RotateOutcome, StoreError>> + Send {
        let (this, presented) = (Arc::clone(self), *presented);
        async move { DynRefreshStore::rotate(&*this, &presented, successor, now, grace).await }
    }
    fn revoke_family(
        &self,
        family: &FamilyId,
    ) -> impl Future<Output = Result<Vec<RefreshRecord>, StoreError>> + Send {
        let (this, family) = (Arc::clone(self), family.clone());
        async move { DynRefreshStore::revoke_family(&*this, &family).await }
    }
    fn family(
        &self,
        family: &FamilyId,
    ) -> impl Future<Output = Result<Vec<RefreshRecord>, StoreError>> + Send {
        let (this, family) = (Arc::clone(self), family.clone());
        async move { DynRefreshStore::family(&*this, &family).await }
    }
}
