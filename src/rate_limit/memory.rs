//! The in-memory fixed-window store on `dashmap`.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use std::hash::{BuildHasherDefault, Hasher};

use dashmap::DashMap;
use dashmap::mapref::entry::Entry as MapEntry;
use dashmap::mapref::one::Ref;

use self::slot::{Place, give_back, pack, place, unpack};
use super::siphash::SipKey;
use super::store::{Decision, Hit, HitFuture, LimitStatus, MAX_LIMITS, RateLimitStore, StoreError};

/// How often the store sweeps stale windows by default.
const DEFAULT_SWEEP_INTERVAL: Duration = Duration::from_secs(60);
/// The default cap on tracked keys.
const DEFAULT_MAX_KEYS: usize = 1_000_000;
/// At the cap, a sweep is tried at most this often (a full sweep is O(tracked keys)).
const CAPACITY_SWEEP_GAP: Duration = Duration::from_secs(1);
/// At the cap with every key live, a new key evicts the least charged of this many.
const EVICTION_SAMPLE: usize = 8;

/// Fixed-window counters in process memory, on a sharded `dashmap`.
///
/// - **Exact**: each key's counters are atomics, charged with compare-and-swap against the
///   limit, so no number of threads ever gets more than a quota's limit admitted in a window.
///   A counter never moves back to an older window: a *late* hit, stamped before a boundary
///   but charged after another request moved the key's counter past it (a thread preempted
///   between reading the clock and charging, a clock stepped back by up to an hour), counts
///   in the newer window, and its `reset` is that window's. A window's 32-bit index is
///   compared with wrap-around in mind, so this holds in 2106 as it does today.
///   Several quotas are charged in order; if one refuses, the ones already charged are given
///   back, so a refused request consumes nothing (while it is being given back, a concurrent
///   request may see the counter briefly higher: the limiter can err towards refusing, never
///   towards admitting).
/// - **No global lock**: a decision takes one shard's read lock (the map has several shards) and
///   touches only its key's atomics; a new key takes one shard's write lock once.
/// - **Bounded memory**: the store sweeps itself. Every [`sweep_interval`] (default 60 s, timed
///   by the requests' clock) one request removes every key whose windows have all ended; no
///   cleanup thread is needed. On top of that, at most [`max_keys`] keys (default 1,000,000) are
///   tracked. **At the cap** a new key first triggers a sweep (at most once a second); if the
///   store is still full of live keys, the new key takes the place of the key charged least
///   among a sample of 8 (forgetting a key gives it back at most what it was charged). So a
///   flood of fresh keys (one host cycling through addresses, a client inventing API keys)
///   evicts its own one-request keys: new clients are still served, and a client that has
///   spent its quota stays refused. Only if that eviction races with another one does the hit
///   fail with [`StoreErrorKind::Full`](super::StoreErrorKind), answered by the layer's
///   [`OnStoreError`](super::OnStoreError) policy (503 by default). Size the cap above the
///   keys you expect in one window: below it, nothing is ever forgotten.
///
/// Keys are stored as 64-bit SipHash values under a random per-store key, not as the key bytes:
/// no allocation per key and ~100 bytes of resident memory per tracked key (measured with the
/// `rate_limit_memory` example at 1,000,000 keys; ~150 when the key bytes were stored). Two
/// different keys share a counter only if their hashes collide, with probability about 2⁻⁶⁴ per
/// pair (for a million keys, under one in ten million that any pair does), and a client cannot
/// aim for a collision without the store's secret key. A collision can only make two keys
/// share one quota, never admit more than a quota.
///
/// A sweep scans every key, taking each shard's write lock in turn; at the default interval
/// and cap that is at most once a minute, a few milliseconds per million keys.
///
/// Counts are 32-bit: a limit above `u32::MAX` per window is treated as `u32::MAX`.
///
/// Clones share the same counters.
///
/// [`sweep_interval`]: MemoryStoreBuilder::sweep_interval
/// [`max_keys`]: MemoryStoreBuilder::max_keys
#[derive(Clone)]
pub struct MemoryStore {
    inner: Arc<Inner>,
}

struct Inner {
    /// Keyed by a keyed 64-bit hash of the rate-limit key (see `key_hasher`).
    map: DashMap<u64, Entry, BuildHasherDefault<Prehashed>>,
    /// SipHash with a per-store random key: clients cannot choose colliding keys.
    key_hasher: SipKey,
    tracked: AtomicUsize,
    max_keys: usize,
    sweep_interval: u64,
    next_sweep: AtomicU64,
    last_sweep: AtomicU64,
}

/// One key's counters: per quota, the window index (high 32 bits) and count, packed in one word
/// so a compare-and-swap moves both.
///
/// `repr(C)` with `expires` first: a hit on one quota touches the map's key, `expires` and the
/// first slot, the first 24 bytes of the map's 48-byte bucket, which then straddle two cache
/// lines a quarter of the time instead of half.
#[repr(C)]
struct Entry {
    /// The latest end of any window this key was counted in (ns since the epoch).
    expires: AtomicU64,
    slots: [AtomicU64; MAX_LIMITS],
}

impl Entry {
    fn new() -> Self {
        Self {
            expires: AtomicU64::new(0),
            slots: Default::default(),
        }
    }
}

impl MemoryStore {
    /// A store with the default sweep interval (60 s) and key cap (1,000,000).
    pub fn new() -> Self {
        Self::builder().build()
    }

    /// Configures a store.
    pub fn builder() -> MemoryStoreBuilder {
        MemoryStoreBuilder {
            max_keys: DEFAULT_MAX_KEYS,
            sweep_interval: DEFAULT_SWEEP_INTERVAL,
        }
    }

    /// How many keys the store tracks now.
    pub fn tracked_keys(&self) -> usize {
        self.inner.tracked.load(Ordering::Relaxed)
    }

    /// Removes every key whose windows have all ended by `now`, returning how many. The store
    /// calls this itself; it is public for tests and for shutdown-time reporting.
    pub fn sweep(&self, now: SystemTime) -> usize {
        self.inner.sweep(super::store::unix_nanos(now))
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryStore")
            .field("tracked_keys", &self.tracked_keys())
            .field("max_keys", &self.inner.max_keys)
            .finish_non_exhaustive()
    }
}

/// Configures a [`MemoryStore`].
#[derive(Debug, Clone)]
#[must_use]
pub struct MemoryStoreBuilder {
    max_keys: usize,
    sweep_interval: Duration,
}

impl MemoryStoreBuilder {
    /// The most keys tracked at once (see [`MemoryStore`] for what happens at the cap).
    pub fn max_keys(mut self, max_keys: usize) -> Self {
        self.max_keys = max_keys;
        self
    }

    /// How often stale windows are swept (by a request, on the requests' clock).
    pub fn sweep_interval(mut self, every: Duration) -> Self {
        self.sweep_interval = every;
        self
    }

    /// Builds the store.
    pub fn build(self) -> MemoryStore {
        MemoryStore {
            inner: Arc::new(Inner {
                map: DashMap::default(),
                key_hasher: SipKey::random(),
                tracked: AtomicUsize::new(0),
                max_keys: self.max_keys,
                sweep_interval: u64::try_from(self.sweep_interval.as_nanos()).unwrap_or(u64::MAX),
                next_sweep: AtomicU64::new(0),
                last_sweep: AtomicU64::new(0),
            }),
        }
    }
}

impl Inner {
    fn sweep(&self, now: u64) -> usize {
        self.last_sweep.store(now, Ordering::Relaxed);
        self.next_sweep
            .store(now.saturating_add(self.sweep_interval), Ordering::Relaxed);
        let mut removed = 0;
        self.map.retain(|_, entry| {
            let keep = entry.expires.load(Ordering::Acquire) > now;
            removed += usize::from(!keep);
            keep
        });
        self.tracked.fetch_sub(removed, Ordering::Relaxed);
        removed
    }

    /// Sweeps if the interval has passed; one caller wins the right to do it.
    fn maybe_sweep(&self, now: u64) {
        let due = self.next_sweep.load(Ordering::Relaxed);
        if now >= due
            && self
                .next_sweep
                .compare_exchange(
                    due,
                    now.saturating_add(self.sweep_interval),
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                )
                .is_ok()
        {
            self.sweep(now);
        }
    }

    /// At the cap: sweeps unless one ran less than a second ago.
    fn sweep_for_room(&self, now: u64) {
        let last = self.last_sweep.load(Ordering::Relaxed);
        let gap = CAPACITY_SWEEP_GAP.as_nanos() as u64;
        if (now >= last.saturating_add(gap) || now < last)
            && self
                .last_sweep
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            self.sweep(now);
        }
    }

    /// At the cap with every key live: removes the key charged least among the first
    /// [`EVICTION_SAMPLE`] the map yields (a key whose windows have all ended counts as 0).
    /// Forgetting a key gives it back at most what it was charged, so the victim is the one
    /// whose count matters least: under a flood of fresh keys, a key the flood sent once,
    /// never a client that has spent its quota.
    fn evict_one(&self, now: u64) -> bool {
        let mut victim: Option<(u64, u32)> = None;
        for entry in self.map.iter().take(EVICTION_SAMPLE) {
            let charged = if entry.expires.load(Ordering::Acquire) <= now {
                0
            } else {
                entry
                    .slots
                    .iter()
                    .map(|slot| unpack(slot.load(Ordering::Acquire)).1)
                    .max()
                    .unwrap_or(0)
            };
            if victim.is_none_or(|(_, least)| charged < least) {
                victim = Some((*entry.key(), charged));
            }
        }
        // The iterator's shard lock is released here, before the removal takes a write lock.
        let removed = victim.is_some_and(|(key, _)| self.map.remove(&key).is_some());
        if removed {
            self.tracked.fetch_sub(1, Ordering::Relaxed);
        }
        removed
    }

    fn reserve(&self) -> bool {
        if self.tracked.fetch_add(1, Ordering::Relaxed) < self.max_keys {
            true
        } else {
            self.tracked.fetch_sub(1, Ordering::Relaxed);
            false
        }
    }

    fn entry(&self, key: &[u8], now: u64) -> Result<Ref<'_, u64, Entry>, StoreError> {
        let key = self.key_hasher.hash(key);
        if let Some(entry) = self.map.get(&key) {
            return Ok(entry);
        }
        if !self.reserve() {
            self.sweep_for_room(now);
            // Still full of live keys: forget the least charged of a sample to make room.
            let room = self.reserve() || (self.evict_one(now) && self.reserve());
            if !room {
                return Err(StoreError::full());
            }
        }
        Ok(match self.map.entry(key) {
            MapEntry::Occupied(occupied) => {
                // Another request inserted it meanwhile.
                self.tracked.fetch_sub(1, Ordering::Relaxed);
                occupied.into_ref().downgrade()
            }
            MapEntry::Vacant(vacant) => vacant.insert(Entry::new()).downgrade(),
        })
    }

    fn decide(&self, hit: &Hit<'_>) -> Result<Decision, StoreError> {
        let now = hit.now_nanos();
        self.maybe_sweep(now);
        let entry = self.entry(hit.key(), now)?;
        let quotas = hit.quotas();
        let cost = hit.cost();
        let mut statuses = [LimitStatus::from_nanos(0, 0, 0, false); MAX_LIMITS];
        let mut refused = None;
        // The window each quota was charged in (a late hit's is its slot's newer one).
        let mut charged = [0u32; MAX_LIMITS];
        for (i, quota) in quotas.iter().enumerate() {
            let window = hit.window(quota);
            let limit = u32::try_from(quota.limit()).unwrap_or(u32::MAX);
            let slot = &entry.slots[i];
            let index = window.index() as u32;
            let mut current = slot.load(Ordering::Acquire);
            loop {
                let (slot_index, slot_count) = unpack(current);
                let (count, into, end) = match place(
                    slot_index,
                    index,
                    quota,
                    window.end_nanos(),
                    now,
                    &entry.expires,
                ) {
                    Place::Same => (slot_count, index, window.end_nanos()),
                    Place::Newer(ahead) => (
                        slot_count,
                        slot_index,
                        window.end_nanos().saturating_add(ahead),
                    ),
                    Place::Older => (0, index, window.end_nanos()),
                };
                let reset = end.saturating_sub(now).max(1);
                match count.checked_add(cost).filter(|&c| c <= limit) {
                    Some(new) => {
                        if count == 0 {
                            // Charging a window from zero (moving the slot to a newer one, or
                            // a new entry): `expires` covers it first (see below, and `place`).
                            entry.expires.fetch_max(end, Ordering::AcqRel);
                        }
                        match slot.compare_exchange_weak(
                            current,
                            pack(u64::from(into), new),
                            Ordering::AcqRel,
                            Ordering::Acquire,
                        ) {
                            Ok(_) => {
                                charged[i] = into;
                                statuses[i] = LimitStatus::from_nanos(
                                    u64::from(limit),
                                    u64::from(limit - new),
                                    reset,
                                    false,
                                );
                                break;
                            }
                            Err(actual) => current = actual,
                        }
                    }
                    None => {
                        statuses[i] = LimitStatus::from_nanos(
                            u64::from(limit),
                            u64::from(limit.saturating_sub(count)),
                            reset,
                            true,
                        );
                        refused = Some(i);
                        break;
                    }
                }
            }
            if refused.is_some() {
                break;
            }
        }
        if let Some(failed) = refused {
            // All or nothing: give back what was charged (every quota before the refusing one),
            // and report the rest as they stand.
            for (i, &into) in charged.iter().enumerate().take(failed) {
                give_back(&entry.slots[i], into, cost);
                let (_, count) = unpack(entry.slots[i].load(Ordering::Acquire));
                let status = statuses[i];
                statuses[i] = LimitStatus::new(
                    status.limit(),
                    status.limit().saturating_sub(u64::from(count)),
                    status.reset(),
                    false,
                );
            }
            for (i, quota) in quotas.iter().enumerate().skip(failed + 1) {
                let window = hit.window(quota);
                let limit = u32::try_from(quota.limit()).unwrap_or(u32::MAX);
                let (slot_index, slot_count) = unpack(entry.slots[i].load(Ordering::Acquire));
                let (count, end) = match place(
                    slot_index,
                    window.index() as u32,
                    quota,
                    window.end_nanos(),
                    now,
                    &entry.expires,
                ) {
                    Place::Same => (slot_count, window.end_nanos()),
                    Place::Newer(ahead) => (slot_count, window.end_nanos().saturating_add(ahead)),
                    Place::Older => (0, window.end_nanos()),
                };
                let exceeded = count.checked_add(cost).is_none_or(|c| c > limit);
                statuses[i] = LimitStatus::from_nanos(
                    u64::from(limit),
                    u64::from(limit.saturating_sub(count)),
                    end.saturating_sub(now).max(1),
                    exceeded,
                );
            }
        }
        // `expires` covers every window a slot counts in: a slot moves to a newer window only
        // after `expires` was raised to that window's end, while the shard's read lock is
        // held, so a sweep (which takes the write lock) never sees a count in a window
        // `expires` does not cover, and a late hit that finds a slot ahead of it can tell a
        // newer window (covered) from a slot left from long ago (not). A refused hit's
        // given-back slots stay in the window they moved to, covered likewise.
        Ok(Decision::from_array(statuses, quotas.len()))
    }
}

/// The map's keys are already uniformly distributed keyed hashes: use them as they are.
#[derive(Default)]
struct Prehashed(u64);

impl Hasher for Prehashed {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is used for `u64` keys; fold anything else in for safety.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

impl RateLimitStore for MemoryStore {
    fn hit(&self, hit: &Hit<'_>) -> HitFuture {
        Box::pin(std::future::ready(self.inner.decide(hit)))
    }

    #[inline]
    fn try_hit(&self, hit: &Hit<'_>) -> Option<Result<Decision, StoreError>> {
        Some(self.inner.decide(hit))
    }
}

mod slot;
#[cfg(test)]
mod tests;
