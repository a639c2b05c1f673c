//! Applications: records of their own, enabled or disabled as a whole, with a plan quota.

use super::ApiKeys;
use crate::Quota;
use crate::api_key::app::Application;
use crate::api_key::store::{KeyStore, StoreError};

impl<K: KeyStore> ApiKeys<K> {
    /// Stores application `app` (replacing a record of the same id), and makes every
    /// instance re-read its keys: a change of plan or of the enabled flag applies at once.
    ///
    /// # Errors
    ///
    /// The store's error.
    pub async fn put_app(&self, app: Application) -> Result<(), StoreError> {
        let app_id = app.id().to_owned();
        self.inner.store.put_app(app).await?;
        self.evict_app(&app_id).await
    }

    /// The record of application `app_id`, if there is one.
    ///
    /// # Errors
    ///
    /// The store's error.
    pub async fn app(&self, app_id: &str) -> Result<Option<Application>, StoreError> {
        self.inner.store.find_app(app_id).await
    }

    /// Every application record.
    ///
    /// # Errors
    ///
    /// The store's error.
    pub async fn apps(&self) -> Result<Vec<Application>, StoreError> {
        self.inner.store.list_apps().await
    }

    /// Disables application `app_id`: all its keys, including keys generated later, are
    /// refused with `403 app_disabled` (its own code, apart from a revoked or an expired key),
    /// on every instance the [invalidation hook](super::ApiKeysBuilder::on_invalidate)
    /// reaches. An application without a record gets one.
    ///
    /// # Errors
    ///
    /// The store's error.
    pub async fn disable_app(&self, app_id: &str) -> Result<Application, StoreError> {
        self.set_app(app_id, |app| app.with_enabled(false)).await
    }

    /// Enables application `app_id` again.
    ///
    /// # Errors
    ///
    /// The store's error.
    pub async fn enable_app(&self, app_id: &str) -> Result<Application, StoreError> {
        self.set_app(app_id, |app| app.with_enabled(true)).await
    }

    /// Sets application `app_id`'s plan quota, inherited by its keys without one of their
    /// own (`None`: no plan).
    ///
    /// # Errors
    ///
    /// The store's error.
    pub async fn set_app_quota(
        &self,
        app_id: &str,
        quota: Option<Quota>,
    ) -> Result<Application, StoreError> {
        self.set_app(app_id, |app| app.with_quota(quota)).await
    }

    async fn set_app(
        &self,
        app_id: &str,
        change: impl FnOnce(Application) -> Application,
    ) -> Result<Application, StoreError> {
        let current = match self.inner.store.find_app(app_id).await? {
            Some(app) => app,
            None => Application::new(app_id, app_id, self.now()),
        };
        let app = change(current);
        self.put_app(app.clone()).await?;
        Ok(app)
    }

    /// Evicts every key of `app_id` here and, through the hook, elsewhere.
    async fn evict_app(&self, app_id: &str) -> Result<(), StoreError> {
        for record in self.inner.store.list(app_id).await? {
            self.evict(record.digest());
        }
        Ok(())
    }
}
