//! Usage per API key: what was authenticated, refused and rate-limited, and when a key was
//! last used.
//!
//! Counted in memory on the request path (a few relaxed atomic operations on the key's own
//! counters: no allocation, no lock shared by all threads) and written to the key store in
//! batches ([`KeyStore::record_usage`](crate::api_key::KeyStore::record_usage)), on an
//! interval and at shutdown, never once per request. See
//! [`ApiKeysBuilder::track_usage`](crate::api_key::ApiKeysBuilder::track_usage).
//!
//! What a crash loses is what was counted since the last flush: at most one interval.

// Only `ApiKeys` counts; the types stay for the identity that carries the counters.
#![cfg_attr(not(feature = "api-key"), allow(dead_code))]

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

/// Request counts of one key (or one application), by outcome.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UsageCounts {
    /// Requests the key authenticated.
    pub authenticated: u64,
    /// Requests refused because the key was revoked.
    pub revoked: u64,
    /// Requests refused because the key had expired.
    pub expired: u64,
    /// Requests refused because the key was not active yet.
    pub inactive: u64,
    /// Requests refused because the key's application was disabled.
    pub app_disabled: u64,
    /// Authenticated requests a rate limit then refused.
    pub rate_limited: u64,
}

impl UsageCounts {
    /// Requests refused, whatever the reason (rate limits not included).
    pub fn refused(&self) -> u64 {
        self.revoked + self.expired + self.inactive + self.app_disabled
    }

    /// Whether nothing was counted.
    pub fn is_zero(&self) -> bool {
        *self == Self::default()
    }

    /// The sum of two counts.
    #[must_use]
    pub fn plus(self, other: Self) -> Self {
        Self {
            authenticated: self.authenticated + other.authenticated,
            revoked: self.revoked + other.revoked,
            expired: self.expired + other.expired,
            inactive: self.inactive + other.inactive,
            app_disabled: self.app_disabled + other.app_disabled,
            rate_limited: self.rate_limited + other.rate_limited,
        }
    }
}

/// What a key store keeps about a key's use: totals and the last time it authenticated (to
/// the flush interval: the time of the first flush after the use).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KeyUsage {
    /// Totals since the key was created.
    pub counts: UsageCounts,
    /// When the key last authenticated a request (to the second), if ever.
    pub last_used_at: Option<SystemTime>,
}

/// Usage of one key since the last flush: what [`KeyStore::record_usage`] adds to its totals.
///
/// [`KeyStore::record_usage`]: crate::api_key::KeyStore::record_usage
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageDelta {
    /// The key's id.
    pub key_id: String,
    /// Its application.
    pub app_id: String,
    /// What to add.
    pub counts: UsageCounts,
    /// The latest use in this batch; a store keeps the later of it and what it holds.
    pub last_used_at: Option<SystemTime>,
}

/// How one request with a known key ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Authenticated,
    Revoked,
    Expired,
    Inactive,
    AppDisabled,
}

/// The live counters of one key, shared by its cache entry and its identity.
#[derive(Debug, Default)]
pub struct UsageCounter {
    authenticated: AtomicU64,
    revoked: AtomicU64,
    expired: AtomicU64,
    inactive: AtomicU64,
    app_disabled: AtomicU64,
    rate_limited: AtomicU64,
}

impl UsageCounter {
    #[inline]
    pub(crate) fn count(&self, outcome: Outcome) {
        let counter = match outcome {
            // The time of use is taken at the flush, not per request.
            Outcome::Authenticated => &self.authenticated,
            Outcome::Revoked => &self.revoked,
            Outcome::Expired => &self.expired,
            Outcome::Inactive => &self.inactive,
            Outcome::AppDisabled => &self.app_disabled,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a request of this key that a rate limit refused.
    #[inline]
    pub fn count_rate_limited(&self) {
        self.rate_limited.fetch_add(1, Ordering::Relaxed);
    }

    /// Takes what was counted since the last take, and the time of the take as the last use
    /// when any request authenticated since the one before.
    fn take(&self, now: SystemTime) -> (UsageCounts, Option<SystemTime>) {
        let take = |c: &AtomicU64| c.swap(0, Ordering::Relaxed);
        let counts = UsageCounts {
            authenticated: take(&self.authenticated),
            revoked: take(&self.revoked),
            expired: take(&self.expired),
            inactive: take(&self.inactive),
            app_disabled: take(&self.app_disabled),
            rate_limited: take(&self.rate_limited),
        };
        let last = (counts.authenticated > 0).then_some(now);
        (counts, last)
    }

    /// Puts counts back after a failed flush.
    fn restore(&self, counts: UsageCounts) {
        let add = |c: &AtomicU64, n: u64| {
            c.fetch_add(n, Ordering::Relaxed);
        };
        add(&self.authenticated, counts.authenticated);
        add(&self.revoked, counts.revoked);
        add(&self.expired, counts.expired);
        add(&self.inactive, counts.inactive);
        add(&self.app_disabled, counts.app_disabled);
        add(&self.rate_limited, counts.rate_limited);
    }
}

/// Every key's counters, by key id: touched when a key enters the cache and when usage is
/// flushed, never per request.
#[derive(Debug, Default)]
pub(crate) struct UsageRegistry {
    counters: Mutex<HashMap<String, (String, Arc<UsageCounter>)>>,
}

impl UsageRegistry {
    /// The counters of key `key_id` of application `app_id`, made on first use.
    pub(crate) fn counter(&self, key_id: &str, app_id: &str) -> Arc<UsageCounter> {
        let mut counters = self.counters.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((_, counter)) = counters.get(key_id) {
            return Arc::clone(counter);
        }
        let counter = Arc::new(UsageCounter::default());
        counters.insert(key_id.to_owned(), (app_id.to_owned(), Arc::clone(&counter)));
        counter
    }

    /// Takes every key's counts since the last drain: the batch to write. Counters no cache
    /// entry holds any more, and with nothing to write, are dropped from the registry.
    pub(crate) fn drain(&self, now: SystemTime) -> Vec<UsageDelta> {
        let mut counters = self.counters.lock().unwrap_or_else(PoisonError::into_inner);
        let mut out = Vec::new();
        counters.retain(|key_id, (app_id, counter)| {
            let (counts, last_used_at) = counter.take(now);
            if !counts.is_zero() {
                out.push(UsageDelta {
                    key_id: key_id.clone(),
                    app_id: app_id.clone(),
                    counts,
                    last_used_at,
                });
            }
            Arc::strong_count(counter) > 1 || !counts.is_zero()
        });
        out
    }

    /// Puts a batch back after the store refused it, so the next flush writes it.
    pub(crate) fn restore(&self, batch: &[UsageDelta]) {
        for delta in batch {
            self.counter(&delta.key_id, &delta.app_id)
                .restore(delta.counts);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;

    #[test]
    fn drained_counts_are_taken_once_and_restored_after_a_failed_write() {
        let registry = UsageRegistry::default();
        let counter = registry.counter("key_1", "app");
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        for _ in 0..3 {
            counter.count(Outcome::Authenticated);
        }
        counter.count(Outcome::Revoked);
        counter.count_rate_limited();
        let batch = registry.drain(now);
        assert_eq!(batch.len(), 1);
        assert_eq!(batch[0].counts.authenticated, 3);
        assert_eq!(batch[0].counts.refused(), 1);
        assert_eq!(batch[0].counts.rate_limited, 1);
        assert_eq!(batch[0].last_used_at, Some(now));
        assert!(registry.drain(now).is_empty(), "taken once");
        registry.restore(&batch);
        assert_eq!(registry.drain(now)[0].counts, batch[0].counts);
    }
}
