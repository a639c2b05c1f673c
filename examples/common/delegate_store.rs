//! `delegate_key_store!`: a `KeyStore` whose `find_by_digest` is its own and whose other
//! operations go to `self.inner`. Shared through `#[path]` by the example and the integration
//! tests that wrap a real store to count or hold its lookups.

/// Implements `KeyStore` for `$store` (with a field `inner` holding a `KeyStore`): the body
/// given becomes `find_by_digest`, every other operation is delegated to `inner`.
#[macro_export]
macro_rules! delegate_key_store {
    ($store:ty, |$this:ident, $digest:ident| $find:block) => {
        impl tollgate::api_key::KeyStore for $store {
            async fn find_by_digest(
                &self,
                $digest: &tollgate::api_key::KeyDigest,
            ) -> Result<Option<tollgate::api_key::ApiKeyRecord>, tollgate::api_key::StoreError>
            {
                let $this = self;
                $find
            }

            async fn insert(
                &self,
                record: tollgate::api_key::ApiKeyRecord,
            ) -> Result<(), tollgate::api_key::StoreError> {
                self.inner.insert(record).await
            }

            async fn list(
                &self,
                app_id: &str,
            ) -> Result<Vec<tollgate::api_key::ApiKeyRecord>, tollgate::api_key::StoreError> {
                self.inner.list(app_id).await
            }

            async fn rotate(
                &self,
                new: tollgate::api_key::ApiKeyRecord,
                retire_at: std::time::SystemTime,
            ) -> Result<Vec<tollgate::api_key::ApiKeyRecord>, tollgate::api_key::StoreError> {
                self.inner.rotate(new, retire_at).await
            }

            async fn revoke(
                &self,
                key_id: &str,
                at: std::time::SystemTime,
            ) -> Result<Option<tollgate::api_key::ApiKeyRecord>, tollgate::api_key::StoreError>
            {
                self.inner.revoke(key_id, at).await
            }

            async fn activate(
                &self,
                key_id: &str,
            ) -> Result<Option<tollgate::api_key::ApiKeyRecord>, tollgate::api_key::StoreError>
            {
                self.inner.activate(key_id).await
            }

            async fn all(
                &self,
            ) -> Result<Vec<tollgate::api_key::ApiKeyRecord>, tollgate::api_key::StoreError> {
                self.inner.all().await
            }

            async fn record_usage(
                &self,
                batch: &[tollgate::usage::UsageDelta],
            ) -> Result<(), tollgate::api_key::StoreError> {
                self.inner.record_usage(batch).await
            }

            async fn put_app(
                &self,
                app: tollgate::api_key::Application,
            ) -> Result<(), tollgate::api_key::StoreError> {
                self.inner.put_app(app).await
            }

            async fn find_app(
                &self,
                app_id: &str,
            ) -> Result<Option<tollgate::api_key::Application>, tollgate::api_key::StoreError> {
                self.inner.find_app(app_id).await
            }

            async fn list_apps(
                &self,
            ) -> Result<Vec<tollgate::api_key::Application>, tollgate::api_key::StoreError> {
                self.inner.list_apps().await
            }
        }
    };
}
