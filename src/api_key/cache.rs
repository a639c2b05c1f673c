//! The moka cache in front of a key store, with single-flight misses.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use futures_util::future::{BoxFuture, FutureExt, Shared};

use super::format::KeyDigest;
use super::record::{ApiKeyRecord, KeyStatus};
use super::store::StoreError;
use crate::identity::AppIdentity;
use crate::usage::UsageCounter;

/// What the cache knows about a digest, and since when (by the layer's clock).
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub(crate) state: State,
    pub(crate) fetched_at: SystemTime,
    /// The checksum digits of the key whose lookup filled this entry, checked before it:
    /// a later request with the same digest and these digits needs no checksum check.
    pub(crate) checksum: u32,
}

#[derive(Debug, Clone)]
pub(crate) enum State {
    /// A stored key, with its identity built once here rather than per request.
    /// The identity carries the key's usage counters when usage is tracked.
    Known {
        identity: AppIdentity,
        status: KeyStatus,
    },
    /// A well-formed key the store does not have (negative entry).
    Unknown,
}

impl Entry {
    pub(crate) fn from_lookup(
        found: Option<&ApiKeyRecord>,
        now: SystemTime,
        checksum: u32,
        usage: impl FnOnce(&ApiKeyRecord) -> Option<Arc<UsageCounter>>,
    ) -> Self {
        let state = match found {
            Some(record) => State::Known {
                identity: record.identity_counting(usage(record)),
                status: record.status(),
            },
            None => State::Unknown,
        };
        Self {
            state,
            fetched_at: now,
            checksum,
        }
    }

    /// Whether this is a stored key's entry filled by a key with these checksum digits.
    #[inline]
    pub(crate) fn vouches_for(&self, checksum: u32) -> bool {
        matches!(self.state, State::Known { .. }) && self.checksum == checksum
    }
}

pub(crate) type Flight = Shared<BoxFuture<'static, Result<Entry, StoreError>>>;

pub(crate) struct KeyCache {
    /// Tells this cache's entries apart from other caches' in the per-thread front tables.
    id: u64,
    /// The secret SipHash key of the presented keys' [`Tag`]s.
    tag_key: (u64, u64),
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
            id: crate::front_table::next_cache_id(),
            tag_key: random_key(),
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
    ///
    /// Hits are served from a small per-thread front table when they can be: moka records
    /// every read in a channel shared by all threads, which made two threads on a cache hit
    /// each slower than one. The front table only holds what moka gave this thread, and is
    /// valid only while the invalidation generation is unchanged.
    #[inline]
    pub(crate) fn get(&self, digest: &KeyDigest, now: SystemTime) -> Option<Entry> {
        let generation = self.generation();
        let entry = match front::get(self.id, generation, digest) {
            Some(entry) => entry,
            None => {
                let entry = self.entries.get(digest)?;
                front::put(self.id, generation, *digest, entry.clone());
                entry
            }
        };
        self.fresh(entry, now)
    }

    /// The presented key's tag: SipHash-2-4 with 128-bit output under this cache's secret key.
    /// It stands for the key as its digest does, at a fraction of SHA-256's cost: without the
    /// secret, finding another key with the same tag is as hard as forging a 128-bit MAC.
    #[inline]
    pub(crate) fn tag(&self, candidate: &[u8]) -> Tag {
        use siphasher::sip128::{Hasher128, SipHasher24};
        use std::hash::Hasher;
        let mut hasher = SipHasher24::new_with_keys(self.tag_key.0, self.tag_key.1);
        hasher.write(candidate);
        Tag(hasher.finish128().as_bytes())
    }

    /// The entry this thread last served for exactly these key bytes (by [`tag`](Self::tag)),
    /// while no invalidation happened since and it is fresh: no SHA-256, no format or
    /// checksum work, since the same bytes passed them when it was put.
    #[inline]
    pub(crate) fn get_tagged(&self, tag: &Tag, generation: u64, now: SystemTime) -> Option<Entry> {
        let entry = front::get_tagged(self.id, generation, tag)?;
        self.fresh(entry, now)
    }

    /// Remembers `entry` for the key bytes of `tag`, as of `generation` (read before `entry`
    /// was): an invalidation since makes it unreachable.
    ///
    /// The table keeps this thread's own copy of the identity. Each request clones it and drops
    /// the clone, two writes to its reference count: on a copy shared by all threads, threads
    /// serving the same key (or keys whose identities sit on one cache line) would take that
    /// line from each other on every request.
    pub(crate) fn put_tagged(&self, tag: Tag, generation: u64, entry: Entry) {
        let state = match entry.state {
            State::Known { identity, status } => State::Known {
                identity: identity.private_copy(),
                status,
            },
            State::Unknown => State::Unknown,
        };
        front::put_tagged(self.id, generation, tag, Entry { state, ..entry });
    }

    fn fresh(&self, entry: Entry, now: SystemTime) -> Option<Entry> {
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
    ///
    /// The generation moves twice. The bump before the removal stops a lookup that started
    /// earlier from filling moka (see `fill`); the bump after it invalidates every thread's
    /// front table, including an entry a thread read from moka just before the removal.
    pub(crate) fn invalidate(&self, digest: &KeyDigest) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.finish_flight(digest);
        self.entries.invalidate(digest);
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    /// Forgets every entry and every lookup in flight (same two-step generation as
    /// [`invalidate`](Self::invalidate)).
    pub(crate) fn invalidate_all(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
        self.entries.invalidate_all();
        self.generation.fetch_add(1, Ordering::SeqCst);
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

/// A presented key's SipHash-2-4-128 under a cache's secret key ([`KeyCache::tag`]).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct Tag([u8; 16]);

/// Two secret words for the tags, from `std`'s per-process random SipHash keys.
fn random_key() -> (u64, u64) {
    use std::hash::BuildHasher;
    let state = std::hash::RandomState::new();
    (
        state.hash_one(0x7A6_0000_u64),
        state.hash_one(0x7A6_0001_u64),
    )
}

/// This thread's front tables for API-key caches (see [`crate::front_table`]), tagged with the
/// invalidation generation: one by digest, one by the presented key's [`Tag`].
mod front {
    use std::cell::RefCell;

    use super::{Entry, KeyDigest, Tag};
    use crate::front_table::FrontTable;

    thread_local! {
        static TABLE: RefCell<FrontTable<KeyDigest, Entry>> =
            const { RefCell::new(FrontTable::new()) };
        static TAGGED: RefCell<FrontTable<Tag, Entry>> =
            const { RefCell::new(FrontTable::new()) };
    }

    pub(super) fn get_tagged(cache: u64, generation: u64, tag: &Tag) -> Option<Entry> {
        TAGGED.with(|table| {
            table
                .borrow()
                .get(usize::from(tag.0[0]), cache, generation, tag)
        })
    }

    pub(super) fn put_tagged(cache: u64, generation: u64, tag: Tag, entry: Entry) {
        TAGGED.with(|table| {
            let index = usize::from(tag.0[0]);
            table.borrow_mut().put(index, cache, generation, tag, entry);
        });
    }

    fn index(digest: &KeyDigest) -> usize {
        // Digests are SHA-256 outputs: any byte is uniformly spread.
        usize::from(digest.as_bytes()[0])
    }

    pub(super) fn get(cache: u64, generation: u64, digest: &KeyDigest) -> Option<Entry> {
        TABLE.with(|table| table.borrow().get(index(digest), cache, generation, digest))
    }

    pub(super) fn put(cache: u64, generation: u64, digest: KeyDigest, entry: Entry) {
        TABLE.with(|table| {
            let index = index(&digest);
            table
                .borrow_mut()
                .put(index, cache, generation, digest, entry);
        });
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, mpsc};
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;

    #[test]
    fn invalidation_reaches_other_threads_front_tables() {
        let now = UNIX_EPOCH + Duration::from_secs(1_000_000);
        let cache = Arc::new(KeyCache::new(
            100,
            Duration::from_secs(60),
            Duration::from_secs(5),
        ));
        let other = Arc::new(KeyCache::new(
            100,
            Duration::from_secs(60),
            Duration::from_secs(5),
        ));
        let digest = KeyDigest::of(b"some key");
        cache.fill(
            digest,
            Entry::from_lookup(None, now, 0, |_| None),
            cache.generation(),
        );

        let (ask, asked) = mpsc::channel::<()>();
        let (answer, answers) = mpsc::channel::<(bool, bool)>();
        let worker = {
            let (cache, other) = (Arc::clone(&cache), Arc::clone(&other));
            std::thread::spawn(move || {
                while asked.recv().is_ok() {
                    let seen = cache.get(&digest, now).is_some();
                    // The same digest in another cache never hits this cache's slot.
                    let seen_elsewhere = other.get(&digest, now).is_some();
                    answer.send((seen, seen_elsewhere)).unwrap();
                }
            })
        };
        let check = || {
            ask.send(()).unwrap();
            answers.recv().unwrap()
        };
        assert_eq!(
            check(),
            (true, false),
            "first read fills the worker's front table"
        );
        assert_eq!(check(), (true, false), "second read is served from it");
        cache.invalidate(&digest);
        assert_eq!(check(), (false, false), "invalidated on another thread");
        cache.fill(
            digest,
            Entry::from_lookup(None, now, 0, |_| None),
            cache.generation(),
        );
        assert_eq!(check(), (true, false));
        cache.invalidate_all();
        assert_eq!(check(), (false, false));
        drop(ask);
        worker.join().unwrap();
    }

    #[test]
    fn a_tag_serves_only_the_same_bytes_while_fresh_and_nothing_was_invalidated() {
        let now = UNIX_EPOCH + Duration::from_secs(1_000_000);
        let cache = KeyCache::new(100, Duration::from_secs(60), Duration::from_secs(5));
        let other = KeyCache::new(100, Duration::from_secs(60), Duration::from_secs(5));
        let (key, near) = (
            b"tg_0123456789abcdefghijABCDEFGHIJ012345".as_slice(),
            b"tg_0123456789abcdefghijABCDEFGHIJ012346".as_slice(),
        );
        assert!(
            cache.tag(key) != cache.tag(near),
            "one byte apart, another tag"
        );
        assert!(
            cache.tag(key) != other.tag(key),
            "each cache has its own secret"
        );
        let generation = cache.generation();
        cache.put_tagged(
            cache.tag(key),
            generation,
            Entry::from_lookup(None, now, 0, |_| None),
        );
        assert!(cache.get_tagged(&cache.tag(key), generation, now).is_some());
        assert!(
            cache
                .get_tagged(&cache.tag(near), generation, now)
                .is_none()
        );
        assert!(
            other
                .get_tagged(&other.tag(key), other.generation(), now)
                .is_none()
        );
        // A negative entry lasts the negative TTL.
        let later = now + Duration::from_secs(5);
        assert!(
            cache
                .get_tagged(&cache.tag(key), generation, later)
                .is_none(),
            "stale"
        );
        // Any invalidation, of any key, retires every tag put before it.
        cache.invalidate(&KeyDigest::of(b"another key"));
        assert!(
            cache
                .get_tagged(&cache.tag(key), cache.generation(), now)
                .is_none()
        );
    }
}
