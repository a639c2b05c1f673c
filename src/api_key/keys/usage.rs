//! Usage: flushing the counted use to the store, and reading it back.

use std::time::{Duration, SystemTime};

use super::ApiKeys;
use crate::api_key::record::ApiKeyRecord;
use crate::api_key::store::{KeyStore, StoreError};
use crate::usage::UsageCounts;

impl<K: KeyStore> ApiKeys<K> {
    /// Writes the usage counted since the last flush to the store, in one batch
    /// ([`KeyStore::record_usage`]). Returns how many keys it covered. Does nothing when usage
    /// is not tracked ([`track_usage`](super::ApiKeysBuilder::track_usage)).
    ///
    /// # Errors
    ///
    /// The store's error; the batch is kept for the next flush.
    pub async fn flush_usage(&self) -> Result<usize, StoreError> {
        let Some(registry) = &self.inner.usage else {
            return Ok(0);
        };
        let batch = registry.drain(self.now());
        if batch.is_empty() {
            return Ok(0);
        }
        match self.inner.store.record_usage(&batch).await {
            Ok(()) => Ok(batch.len()),
            Err(error) => {
                registry.restore(&batch);
                Err(error)
            }
        }
    }

    /// Spawns a task that flushes usage every `interval` (60 s is a good default) until the
    /// returned [`UsageFlush`] is shut down, which flushes one last time: call it on graceful
    /// shutdown. A failed flush is logged (`tracing` feature) and retried at the next tick.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime, or if `interval` is zero.
    pub fn spawn_usage_flush(&self, interval: Duration) -> UsageFlush {
        assert!(
            !interval.is_zero(),
            "a usage flush interval must be positive"
        );
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        let keys = self.clone();
        let task = tokio::spawn(async move {
            // Until told to stop (or the handle is dropped): a flush after every interval.
            while tokio::time::timeout(interval, &mut stopped).await.is_err() {
                if let Err(_error) = keys.flush_usage().await {
                    log_warn!(error = %_error, "usage flush failed; kept for the next one");
                }
            }
            keys.flush_usage().await
        });
        UsageFlush { stop, task }
    }

    /// Every key with its usage totals as last flushed, for a report.
    ///
    /// # Errors
    ///
    /// The store's error.
    pub async fn all_keys(&self) -> Result<Vec<ApiKeyRecord>, StoreError> {
        self.inner.store.all().await
    }

    /// Keys not used for `idle` (never used keys count from their creation), still active:
    /// candidates for revocation.
    ///
    /// # Errors
    ///
    /// The store's error.
    pub async fn unused_for(&self, idle: Duration) -> Result<Vec<ApiKeyRecord>, StoreError> {
        let since = self
            .now()
            .checked_sub(idle)
            .unwrap_or(SystemTime::UNIX_EPOCH);
        Ok(self
            .all_keys()
            .await?
            .into_iter()
            .filter(|r| r.is_active())
            .filter(|r| r.usage().last_used_at.unwrap_or(r.created_at()) < since)
            .collect())
    }

    /// Active keys that expire within `within` from now (not those already expired).
    ///
    /// # Errors
    ///
    /// The store's error.
    pub async fn expiring_within(&self, within: Duration) -> Result<Vec<ApiKeyRecord>, StoreError> {
        let now = self.now();
        let until = now.checked_add(within);
        Ok(self
            .all_keys()
            .await?
            .into_iter()
            .filter(|r| r.is_active())
            .filter(|r| {
                r.expires_at()
                    .is_some_and(|at| at > now && until.is_none_or(|until| at <= until))
            })
            .collect())
    }

    /// The usage of application `app_id`: the sum over its keys, as last flushed.
    ///
    /// # Errors
    ///
    /// The store's error.
    pub async fn app_usage(&self, app_id: &str) -> Result<UsageCounts, StoreError> {
        Ok(self
            .list(app_id)
            .await?
            .iter()
            .fold(UsageCounts::default(), |sum, r| sum.plus(r.usage().counts)))
    }
}

/// The task [`ApiKeys::spawn_usage_flush`] started.
#[derive(Debug)]
pub struct UsageFlush {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<usize, StoreError>>,
}

impl UsageFlush {
    /// Stops the task after one last flush, and returns that flush's result.
    ///
    /// # Errors
    ///
    /// The last flush's store error.
    pub async fn shutdown(self) -> Result<usize, StoreError> {
        let _ = self.stop.send(());
        self.task
            .await
            .map_err(|e| StoreError::unavailable(format!("the usage flush task failed: {e}")))?
    }
}
