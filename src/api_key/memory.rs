use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::SystemTime;

use super::app::Application;
use super::format::KeyDigest;
use super::record::ApiKeyRecord;
use super::store::{KeyStore, StoreError};
use crate::usage::UsageDelta;

/// A [`KeyStore`] in process memory, for single-instance services, tests and examples.
///
/// Clones share the same records. Every operation holds a short, synchronous lock and never
/// across an `.await`.
#[derive(Debug, Clone, Default)]
pub struct InMemoryKeyStore {
    state: Arc<RwLock<State>>,
}

#[derive(Debug, Default)]
struct State {
    by_digest: HashMap<KeyDigest, ApiKeyRecord>,
    digest_by_id: HashMap<String, KeyDigest>,
    apps: HashMap<String, Application>,
}

impl InMemoryKeyStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// The number of records held.
    pub fn len(&self) -> usize {
        self.read(|s| s.by_digest.len())
    }

    /// Whether the store is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn read<T>(&self, f: impl FnOnce(&State) -> T) -> T {
        f(&self.state.read().unwrap_or_else(PoisonError::into_inner))
    }

    fn write<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        f(&mut self.state.write().unwrap_or_else(PoisonError::into_inner))
    }
}

impl State {
    /// `record` as read back: with its application's record.
    fn joined(&self, record: &ApiKeyRecord) -> ApiKeyRecord {
        record
            .clone()
            .with_application(self.apps.get(record.app_id()).cloned())
    }

    fn by_id_mut(&mut self, key_id: &str) -> Option<&mut ApiKeyRecord> {
        let digest = *self.digest_by_id.get(key_id)?;
        self.by_digest.get_mut(&digest)
    }

    fn insert(&mut self, record: ApiKeyRecord) -> Result<(), StoreError> {
        if self.by_digest.contains_key(record.digest())
            || self.digest_by_id.contains_key(record.id())
        {
            return Err(StoreError::conflict(format!(
                "a key with id {} or the same digest exists",
                record.id()
            )));
        }
        self.digest_by_id
            .insert(record.id().to_owned(), *record.digest());
        self.by_digest.insert(*record.digest(), record);
        Ok(())
    }
}

impl KeyStore for InMemoryKeyStore {
    async fn find_by_digest(&self, digest: &KeyDigest) -> Result<Option<ApiKeyRecord>, StoreError> {
        Ok(self.read(|s| s.by_digest.get(digest).map(|r| s.joined(r))))
    }

    async fn insert(&self, record: ApiKeyRecord) -> Result<(), StoreError> {
        self.write(|s| s.insert(record))
    }

    async fn list(&self, app_id: &str) -> Result<Vec<ApiKeyRecord>, StoreError> {
        let mut records: Vec<_> = self.read(|s| {
            s.by_digest
                .values()
                .filter(|r| r.app_id() == app_id)
                .map(|r| s.joined(r))
                .collect()
        });
        records.sort_by(|a, b| b.created_at().cmp(&a.created_at()).then(a.id().cmp(b.id())));
        Ok(records)
    }

    async fn rotate(
        &self,
        new: ApiKeyRecord,
        retire_at: SystemTime,
    ) -> Result<Vec<ApiKeyRecord>, StoreError> {
        self.write(|s| {
            if s.by_digest.contains_key(new.digest()) || s.digest_by_id.contains_key(new.id()) {
                return Err(StoreError::conflict("the new key already exists"));
            }
            let mut retired = Vec::new();
            for record in s.by_digest.values_mut() {
                let replaced = record.app_id() == new.app_id()
                    && record.slot() == new.slot()
                    && record.is_active()
                    && record.expires_at().is_none_or(|at| at > retire_at);
                if replaced {
                    record.set_expires_at(Some(retire_at));
                    retired.push(record.clone());
                }
            }
            s.insert(new)?;
            Ok(retired.iter().map(|r| s.joined(r)).collect())
        })
    }

    async fn revoke(
        &self,
        key_id: &str,
        at: SystemTime,
    ) -> Result<Option<ApiKeyRecord>, StoreError> {
        Ok(self.write(|s| {
            let record = s.by_id_mut(key_id)?;
            if !record.is_revoked() {
                record.set_revoked_at(at);
            }
            let record = record.clone();
            Some(s.joined(&record))
        }))
    }

    async fn activate(&self, key_id: &str) -> Result<Option<ApiKeyRecord>, StoreError> {
        Ok(self.write(|s| {
            let record = s.by_id_mut(key_id)?;
            if !record.is_revoked() {
                record.set_active(true);
            }
            let record = record.clone();
            Some(s.joined(&record))
        }))
    }

    async fn all(&self) -> Result<Vec<ApiKeyRecord>, StoreError> {
        let mut records: Vec<_> =
            self.read(|s| s.by_digest.values().map(|r| s.joined(r)).collect());
        records.sort_by(|a, b| b.created_at().cmp(&a.created_at()).then(a.id().cmp(b.id())));
        Ok(records)
    }

    async fn record_usage(&self, batch: &[UsageDelta]) -> Result<(), StoreError> {
        self.write(|s| {
            for delta in batch {
                if let Some(record) = s.by_id_mut(&delta.key_id) {
                    record.add_usage(delta);
                }
            }
        });
        Ok(())
    }

    async fn put_app(&self, app: Application) -> Result<(), StoreError> {
        self.write(|s| s.apps.insert(app.id().to_owned(), app));
        Ok(())
    }

    async fn find_app(&self, app_id: &str) -> Result<Option<Application>, StoreError> {
        Ok(self.read(|s| s.apps.get(app_id).cloned()))
    }

    async fn list_apps(&self) -> Result<Vec<Application>, StoreError> {
        let mut apps: Vec<_> = self.read(|s| s.apps.values().cloned().collect());
        apps.sort_by(|a, b| a.id().cmp(b.id()));
        Ok(apps)
    }
}
