use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::SystemTime;

use super::app::Application;
use super::format::KeyDigest;
use super::record::ApiKeyRecord;
use crate::usage::UsageDelta;

/// Where API-key records live: the pluggable lookup behind the cache.
///
/// tollgate ships [`InMemoryKeyStore`](super::InMemoryKeyStore) and, with the `postgres`
/// feature, `PostgresKeyStore`; another store implements the same operations. Lookups go
/// through the cache, so [`find_by_digest`](KeyStore::find_by_digest) is called on misses
/// only, at most once at a time per digest.
///
/// Records read back carry their application's record when there is one
/// ([`ApiKeyRecord::with_application`]): that is how a disabled application's keys, and keys
/// made after it was disabled, are refused.
pub trait KeyStore: Send + Sync + 'static {
    /// The record stored under `digest`, whatever its state (inactive and expired records are
    /// returned too: the layer tells the caller *why* a key no longer works).
    fn find_by_digest(
        &self,
        digest: &KeyDigest,
    ) -> impl Future<Output = Result<Option<ApiKeyRecord>, StoreError>> + Send;

    /// Stores a new record. Fails with [`StoreErrorKind::Conflict`] if its id or digest exists.
    fn insert(&self, record: ApiKeyRecord) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Every record of application `app_id`, newest first.
    fn list(
        &self,
        app_id: &str,
    ) -> impl Future<Output = Result<Vec<ApiKeyRecord>, StoreError>> + Send;

    /// Atomically stores `new` and retires the keys it replaces: every active key of
    /// `new.app_id()` in `new.slot()` whose expiry is later than `retire_at` (or absent) gets
    /// `retire_at` as its expiry. Returns the retired records as they now are.
    fn rotate(
        &self,
        new: ApiKeyRecord,
        retire_at: SystemTime,
    ) -> impl Future<Output = Result<Vec<ApiKeyRecord>, StoreError>> + Send;

    /// Revokes key `key_id` for good: inactive, with `revoked_at` set to `at` (kept if it
    /// was revoked before). Returns its record, or `None` if there is no such key.
    fn revoke(
        &self,
        key_id: &str,
        at: SystemTime,
    ) -> impl Future<Output = Result<Option<ApiKeyRecord>, StoreError>> + Send;

    /// Activates key `key_id`, created inactive. A revoked key stays revoked. Returns its
    /// record, or `None` if there is no such key.
    fn activate(
        &self,
        key_id: &str,
    ) -> impl Future<Output = Result<Option<ApiKeyRecord>, StoreError>> + Send;

    /// Every record, for listings (keys unused for a while, keys expiring soon).
    fn all(&self) -> impl Future<Output = Result<Vec<ApiKeyRecord>, StoreError>> + Send;

    /// Adds a batch of usage to the keys' totals (counts added, the later last use kept):
    /// several instances flushing to one store add up. Deltas for unknown keys are ignored.
    fn record_usage(
        &self,
        batch: &[UsageDelta],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Stores `app`, replacing the record of the same id.
    fn put_app(&self, app: Application) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The application record `app_id`, if there is one.
    fn find_app(
        &self,
        app_id: &str,
    ) -> impl Future<Output = Result<Option<Application>, StoreError>> + Send;

    /// Every application record, by id.
    fn list_apps(&self) -> impl Future<Output = Result<Vec<Application>, StoreError>> + Send;
}

impl<K: KeyStore> KeyStore for Arc<K> {
    fn find_by_digest(
        &self,
        digest: &KeyDigest,
    ) -> impl Future<Output = Result<Option<ApiKeyRecord>, StoreError>> + Send {
        (**self).find_by_digest(digest)
    }

    fn insert(&self, record: ApiKeyRecord) -> impl Future<Output = Result<(), StoreError>> + Send {
        (**self).insert(record)
    }

    fn list(
        &self,
        app_id: &str,
    ) -> impl Future<Output = Result<Vec<ApiKeyRecord>, StoreError>> + Send {
        (**self).list(app_id)
    }

    fn rotate(
        &self,
        new: ApiKeyRecord,
        retire_at: SystemTime,
    ) -> impl Future<Output = Result<Vec<ApiKeyRecord>, StoreError>> + Send {
        (**self).rotate(new, retire_at)
    }

    fn revoke(
        &self,
        key_id: &str,
        at: SystemTime,
    ) -> impl Future<Output = Result<Option<ApiKeyRecord>, StoreError>> + Send {
        (**self).revoke(key_id, at)
    }

    fn activate(
        &self,
        key_id: &str,
    ) -> impl Future<Output = Result<Option<ApiKeyRecord>, StoreError>> + Send {
        (**self).activate(key_id)
    }

    fn all(&self) -> impl Future<Output = Result<Vec<ApiKeyRecord>, StoreError>> + Send {
        (**self).all()
    }

    fn record_usage(
        &self,
        batch: &[UsageDelta],
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        (**self).record_usage(batch)
    }

    fn put_app(&self, app: Application) -> impl Future<Output = Result<(), StoreError>> + Send {
        (**self).put_app(app)
    }

    fn find_app(
        &self,
        app_id: &str,
    ) -> impl Future<Output = Result<Option<Application>, StoreError>> + Send {
        (**self).find_app(app_id)
    }

    fn list_apps(&self) -> impl Future<Output = Result<Vec<Application>, StoreError>> + Send {
        (**self).list_apps()
    }
}

/// A key store failed. The API-key layer answers 503 (fail closed) and logs it; the client
/// never sees the cause.
#[derive(Clone)]
pub struct StoreError {
    kind: StoreErrorKind,
    source: Option<Arc<dyn std::error::Error + Send + Sync>>,
}

/// What kind of failure a [`StoreError`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreErrorKind {
    /// The store could not be reached or answered with an error.
    Unavailable,
    /// The store did not answer within the configured lookup timeout.
    Timeout,
    /// The write conflicts with an existing record (duplicate id or digest).
    Conflict,
    /// The request cannot be carried out as given (a key no format accepts, an unknown
    /// application).
    Invalid,
}

impl StoreError {
    /// The store is unreachable or failed; `source` says why (it is logged, never sent).
    pub fn unavailable(source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self {
            kind: StoreErrorKind::Unavailable,
            source: Some(Arc::from(source.into())),
        }
    }

    /// The store did not answer in time.
    pub fn timeout() -> Self {
        Self {
            kind: StoreErrorKind::Timeout,
            source: None,
        }
    }

    /// A write conflicts with an existing record.
    pub fn conflict(what: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self {
            kind: StoreErrorKind::Conflict,
            source: Some(Arc::from(what.into())),
        }
    }

    /// The request cannot be carried out as given; `why` says what is wrong with it.
    pub fn invalid(why: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self {
            kind: StoreErrorKind::Invalid,
            source: Some(Arc::from(why.into())),
        }
    }

    /// The kind of failure.
    pub fn kind(&self) -> StoreErrorKind {
        self.kind
    }
}

impl fmt::Debug for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreError")
            .field("kind", &self.kind)
            .field("source", &self.source.as_ref().map(ToString::to_string))
            .finish()
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.kind {
            StoreErrorKind::Unavailable => "key store unavailable",
            StoreErrorKind::Timeout => "key store lookup timed out",
            StoreErrorKind::Conflict => "key store conflict",
            StoreErrorKind::Invalid => "invalid key store request",
        };
        match &self.source {
            Some(source) => write!(f, "{what}: {source}"),
            None => f.write_str(what),
        }
    }
}

impl std::error::Error for StoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}
