//! [`DynKeyStore`]: a `KeyStore` chosen at run time, as a trait object.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::SystemTime;

use super::app::Application;
use super::format::KeyDigest;
use super::record::ApiKeyRecord;
use super::store::{KeyStore, StoreError};
use crate::usage::UsageDelta;

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// [`KeyStore`] as a trait object: every [`KeyStore`] is one, and
/// `Arc<dyn DynKeyStore>` ([`BoxKeyStore`]) is a [`KeyStore`] again. Use it to pick the store
/// at run time (memory in development, PostgreSQL in production) without making the whole
/// application generic over it.
///
/// Each call allocates its future (cache hits never reach the store, so the request path only
/// pays on a miss); a static store stays the fastest choice where the type is known.
///
/// ```
/// use std::sync::Arc;
/// use tollgate::api_key::{ApiKeys, BoxKeyStore, InMemoryKeyStore};
///
/// let store: BoxKeyStore = if std::env::var("DATABASE_URL").is_ok() {
///     # unreachable!()
///     // Arc::new(PostgresKeyStore::connect(&url)?)
/// } else {
///     Arc::new(InMemoryKeyStore::new())
/// };
/// let keys: ApiKeys<BoxKeyStore> = ApiKeys::builder(store).build();
/// # let _ = keys;
/// ```
pub trait DynKeyStore: Send + Sync + 'static {
    /// [`KeyStore::find_by_digest`].
    fn find_by_digest<'a>(
        &'a self,
        digest: &'a KeyDigest,
    ) -> BoxFuture<'a, Result<Option<ApiKeyRecord>, StoreError>>;
    /// [`KeyStore::insert`].
    fn insert(&self, record: ApiKeyRecord) -> BoxFuture<'_, Result<(), StoreError>>;
    /// [`KeyStore::list`].
    fn list<'a>(&'a self, app_id: &'a str) -> BoxFuture<'a, Result<Vec<ApiKeyRecord>, StoreError>>;
    /// [`KeyStore::rotate`].
    fn rotate(
        &self,
        new: ApiKeyRecord,
        retire_at: SystemTime,
    ) -> BoxFuture<'_, Result<Vec<ApiKeyRecord>, StoreError>>;
    /// [`KeyStore::revoke`].
    fn revoke<'a>(
        &'a self,
        key_id: &'a str,
        at: SystemTime,
    ) -> BoxFuture<'a, Result<Option<ApiKeyRecord>, StoreError>>;
    /// [`KeyStore::activate`].
    fn activate<'a>(
        &'a self,
        key_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<ApiKeyRecord>, StoreError>>;
    /// [`KeyStore::all`].
    fn all(&self) -> BoxFuture<'_, Result<Vec<ApiKeyRecord>, StoreError>>;
    /// [`KeyStore::record_usage`].
    fn record_usage<'a>(&'a self, batch: &'a [UsageDelta])
    -> BoxFuture<'a, Result<(), StoreError>>;
    /// [`KeyStore::put_app`].
    fn put_app(&self, app: Application) -> BoxFuture<'_, Result<(), StoreError>>;
    /// [`KeyStore::find_app`].
    fn find_app<'a>(
        &'a self,
        app_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<Application>, StoreError>>;
    /// [`KeyStore::list_apps`].
    fn list_apps(&self) -> BoxFuture<'_, Result<Vec<Application>, StoreError>>;
}

/// A key store chosen at run time; see [`DynKeyStore`].
pub type BoxKeyStore = Arc<dyn DynKeyStore>;

impl<K: KeyStore> DynKeyStore for K {
    fn find_by_digest<'a>(
        &'a self,
        digest: &'a KeyDigest,
    ) -> BoxFuture<'a, Result<Option<ApiKeyRecord>, StoreError>> {
        Box::pin(KeyStore::find_by_digest(self, digest))
    }
    fn insert(&self, record: ApiKeyRecord) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(KeyStore::insert(self, record))
    }
    fn list<'a>(&'a self, app_id: &'a str) -> BoxFuture<'a, Result<Vec<ApiKeyRecord>, StoreError>> {
        Box::pin(KeyStore::list(self, app_id))
    }
    fn rotate(
        &self,
        new: ApiKeyRecord,
        retire_at: SystemTime,
    ) -> BoxFuture<'_, Result<Vec<ApiKeyRecord>, StoreError>> {
        Box::pin(KeyStore::rotate(self, new, retire_at))
    }
    fn revoke<'a>(
        &'a self,
        key_id: &'a str,
        at: SystemTime,
    ) -> BoxFuture<'a, Result<Option<ApiKeyRecord>, StoreError>> {
        Box::pin(KeyStore::revoke(self, key_id, at))
    }
    fn activate<'a>(
        &'a self,
        key_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<ApiKeyRecord>, StoreError>> {
        Box::pin(KeyStore::activate(self, key_id))
    }
    fn all(&self) -> BoxFuture<'_, Result<Vec<ApiKeyRecord>, StoreError>> {
        Box::pin(KeyStore::all(self))
    }
    fn record_usage<'a>(
        &'a self,
        batch: &'a [UsageDelta],
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(KeyStore::record_usage(self, batch))
    }
    fn put_app(&self, app: Application) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(KeyStore::put_app(self, app))
    }
    fn find_app<'a>(
        &'a self,
        app_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<Application>, StoreError>> {
        Box::pin(KeyStore::find_app(self, app_id))
    }
    fn list_apps(&self) -> BoxFuture<'_, Result<Vec<Application>, StoreError>> {
        Box::pin(KeyStore::list_apps(self))
    }
}

// The futures own what they need (the `Arc`, the arguments): `KeyStore`'s futures may not
// borrow the arguments.
impl KeyStore for Arc<dyn DynKeyStore> {
    fn find_by_digest(
        &self,
        digest: &KeyDigest,
    ) -> impl Future<Output = Result<Option<ApiKeyRecord>, StoreError>> + Send {
        let (this, digest) = (Arc::clone(self), *digest);
        async move { DynKeyStore::find_by_digest(&*this, &digest).await }
    }
    fn insert(&self, record: ApiKeyRecord) -> impl Future<Output = Result<(), StoreError>> + Send {
        DynKeyStore::insert(&**self, record)
    }
    fn list(
        &self,
        app_id: &str,
    ) -> impl Future<Output = Result<Vec<ApiKeyRecord>, StoreError>> + Send {
        let (this, app_id) = (Arc::clone(self), app_id.to_owned());
        async move { DynKeyStore::list(&*this, &app_id).await }
    }
    fn rotate(
        &self,
        new: ApiKeyRecord,
        retire_at: SystemTime,
    ) -> impl Future<Output = Result<Vec<ApiKeyRecord>, StoreError>> + Send {
        DynKeyStore::rotate(&**self, new, retire_at)
    }
    fn revoke(
        &self,
        key_id: &str,
        at: SystemTime,
    ) -> impl Future<Output = Result<Option<ApiKeyRecord>, StoreError>> + Send {
        let (this, key_id) = (Arc::clone(self), key_id.to_owned());
        async move { DynKeyStore::revoke(&*this, &key_id, at).await }
    }
    fn activate(
        &self,
        key_id: &str,
    ) -> impl Future<Output = Result<Option<ApiKeyRecord>, StoreError>> + Send {
        let (this, key_id) = (Arc::clone(self), key_id.to_owned());
        async move { DynKeyStore::activate(&*this, &key_id).await }
    }
    fn all(&self) -> impl Future<Output = Result<Vec<ApiKeyRecord>, StoreError>> + Send {
        DynKeyStore::all(&**self)
    }
    fn record_usage(
        &self,
        batch: &[UsageDelta],
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        let (this, batch) = (Arc::clone(self), batch.to_vec());
        async move { DynKeyStore::record_usage(&*this, &batch).await }
    }
    fn put_app(&self, app: Application) -> impl Future<Output = Result<(), StoreError>> + Send {
        DynKeyStore::put_app(&**self, app)
    }
    fn find_app(
        &self,
        app_id: &str,
    ) -> impl Future<Output = Result<Option<Application>, StoreError>> + Send {
        let (this, app_id) = (Arc::clone(self), app_id.to_owned());
        async move { DynKeyStore::find_app(&*this, &app_id).await }
    }
    fn list_apps(&self) -> impl Future<Output = Result<Vec<Application>, StoreError>> + Send {
        DynKeyStore::list_apps(&**self)
    }
}
