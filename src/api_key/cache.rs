//! The moka cache in front of a key store, with single-flight misses.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use futures_util::future::{BoxFuture, FutureExt, Shared};

use super::format::KeyDigest;
use super::record::ApiKeyRecord;
use super::store::StoreError;
use crate::identity::AppIdentity;

/// What the cache knows about a digest, and since when (by the layer's clock).
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub(crate) state: State,
    pub(crate) fetched_at: SystemTime,
}

#[derive(Debug, Clone)]
pub(crate) enum State {
    /// A stored key, with its identity built once here rather than per request.
    Known { identity: AppIdentity, active: bool },
    /// A well-formed key the store does not have (negative entry).
    Unknown,
}

impl Entry {
    pub(crate) fn from_lookup(found: Option<&ApiKeyRecord>, now: SystemTime) -> Self {
        let state = match found {
            Some(record) => State::Known {
                identity: record.identity(),
                active: record.is_active(),
            },
            None => State::Unknown,
        };
        Self {
            state,
            fetched_at: now,
        }
    }
}

pub(crate) type Flight = Shared<BoxFuture<'static, Result<Entry, StoreError>>>;

pub(crate) struct KeyCache {
    entries: moka::sync::Cache<KeyDigest, Entry>,
    in_flight: Mutex<HashMap<KeyDigest, Flight>>,
    /// Bumped by every invalidation; a lookup that started before one does not fill the cache,
    /// so a revoke racing an in-flight lookup cannot be undone by it.
    generation: AtomicU64,
    positive_ttl: Duration,
    negative_ttl: Duration,
}

impl KeyCache {
    pub(crate) fn new(capacity: u64, positive_ttl: Duration, negative_ttl: Duration) -> Self {
        // One TTL for moka, only to bound memory: freshness is judged per entry kind by the
        // layer's clock in `get`. (A per-entry `Expiry` costs ~25 ns on every hit.)
        let entries = moka::sync::Cache::builder()
            .max_capacity(capacity)
            .time_to_live(positive_ttl.max(negative_ttl))
            .build();
        Self {
            entries,
            in_flight: Mutex::new(HashMap::new()),
            generation: AtomicU64::new(0),
            positive_ttl,
            negative_ttl,
        }
    }

    /// A fresh entry for `digest`, if the cache has one. Freshness is judged by `now` (the
    /// layer's clock), so tests with a manual clock see TTLs exactly; moka's own expiry only
    /// bounds memory.
    #[inline]
    pub(crate) fn get(&self, digest: &KeyDigest, now: SystemTime) -> Option<Entry> {
        let entry = self.entries.get(digest)?;
        let ttl = match entry.state {
            State::Known { .. } => self.positive_ttl,
            State::Unknown => self.negative_ttl,
        };
        let age = now.duration_since(entry.fetched_at).ok()?;
        (age < ttl).then_some(entry)
    }

    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// Fills the cache, unless an invalidation happened since `generation` was read.
    pub(crate) fn fill(&self, digest: KeyDigest, entry: Entry, generation: u64) {
        if self.generation() == generation {
            self.entries.insert(digest, entry);
            // An invalidation between the check and the insert bumped the generation before
            // removing; seeing the bump now, undo the insert it could not see.
            if self.generation() != generation {
                self.entries.invalidate(&digest);
            }
        }
    }

    /// The in-flight lookup for `digest`, or the one `start` makes (then `true`).
    pub(crate) fn join_or_start(
        &self,
        digest: KeyDigest,
        start: impl FnOnce() -> Flight,
    ) -> (Flight, bool) {
        let mut in_flight = self
            .in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match in_flight.entry(digest) {
            std::collections::hash_map::Entry::Occupied(e) => (e.get().clone(), false),
            std::collections::hash_map::Entry::Vacant(e) => (e.insert(start()).clone(), true),
        }
    }

    pub(crate) fn finish_flight(&self, digest: &KeyDigest) {
        self.in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(digest);
    }

    /// Forgets `digest`: its cached entry and any lookup in flight for it.
    pub(crate) fn invalidate(&self, digest: &KeyDigest) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.finish_flight(digest);
        self.entries.invalidate(digest);
    }

    /// Forgets everything: every cached entry and every lookup in flight.
    pub(crate) fn invalidate_all(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
        self.entries.invalidate_all();
    }

    pub(crate) fn entry_count(&self) -> u64 {
        self.entries.run_pending_tasks();
        self.entries.entry_count()
    }

    pub(crate) fn boxed<F>(future: F) -> Flight
    where
        F: Future<Output = Result<Entry, StoreError>> + Send + 'static,
    {
        future.boxed().shared()
    }
}
