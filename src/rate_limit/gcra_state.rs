//! The key-capped state store under [`GcraStore`](super::GcraStore)'s `governor` limiters.

use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use dashmap::DashMap;
use governor::nanos::Nanos;
use governor::state::keyed::ShrinkableKeyedStateStore;
use governor::state::{InMemoryState, NotKeyed, StateStore};

/// At the cap, a new key takes the place of the most refilled of this many.
const EVICTION_SAMPLE: usize = 8;

/// The keys every limiter of one store may track together, and how many they do.
#[derive(Debug)]
pub(super) struct KeyBudget {
    tracked: AtomicUsize,
    max_keys: usize,
}

impl KeyBudget {
    pub(super) fn new(max_keys: usize) -> Arc<Self> {
        Arc::new(Self {
            tracked: AtomicUsize::new(0),
            max_keys,
        })
    }

    pub(super) fn tracked(&self) -> usize {
        self.tracked.load(Ordering::Relaxed)
    }

    fn reserve(&self) -> bool {
        if self.tracked.fetch_add(1, Ordering::Relaxed) < self.max_keys {
            true
        } else {
            self.tracked.fetch_sub(1, Ordering::Relaxed);
            false
        }
    }
}

/// `governor`'s per-key GCRA states (theoretical arrival times) in a dashmap, as its own
/// `DashMapStateStore`, but with a cap on keys shared by the store's limiters: at the cap a new
/// key takes the place of the sampled key whose bucket is fullest (the earliest arrival time),
/// which forgets the least. A flood of fresh keys therefore evicts its own keys, and memory stays
/// bounded whatever clients send.
pub(super) struct CappedState {
    map: DashMap<u64, InMemoryState, PreHashed>,
    budget: Arc<KeyBudget>,
}

impl CappedState {
    pub(super) fn new(budget: Arc<KeyBudget>) -> Self {
        Self {
            map: DashMap::with_hasher(PreHashed),
            budget,
        }
    }

    /// At the cap: removes the sampled key with the earliest arrival time.
    fn evict_one(&self) -> bool {
        let mut victim: Option<(u64, u64)> = None;
        for entry in self.map.iter().take(EVICTION_SAMPLE) {
            let tat = arrival(entry.value());
            if victim.is_none_or(|(_, earliest)| tat < earliest) {
                victim = Some((*entry.key(), tat));
            }
        }
        // The iterator's read lock is gone before the removal takes the write lock.
        let removed = victim.is_some_and(|(key, _)| self.map.remove(&key).is_some());
        if removed {
            self.budget.tracked.fetch_sub(1, Ordering::Relaxed);
        }
        removed
    }
}

/// A state's theoretical arrival time, read through `governor`'s own API: a measurement that
/// refuses hands back the time it saw and changes nothing.
fn arrival(state: &InMemoryState) -> u64 {
    match state.measure_and_replace(&NotKeyed::NonKey, |seen| {
        Err::<((), Nanos), u64>(seen.map_or(0, u64::from))
    }) {
        Ok(()) => 0,
        Err(tat) => tat,
    }
}

impl StateStore for CappedState {
    type Key = u64;

    fn measure_and_replace<T, F, E>(&self, key: &u64, f: F) -> Result<T, E>
    where
        F: Fn(Option<Nanos>) -> Result<(T, Nanos), E>,
    {
        if let Some(state) = self.map.get(key) {
            return state.measure_and_replace(&NotKeyed::NonKey, f);
        }
        // A new key: room first, by eviction at the cap (a lost race to the last room evicts
        // once more rather than fail: the store must decide every hit).
        if !self.budget.reserve() {
            self.evict_one();
            self.budget.tracked.fetch_add(1, Ordering::Relaxed);
        }
        let mut inserted = false;
        let state = self.map.entry(*key).or_insert_with(|| {
            inserted = true;
            InMemoryState::default()
        });
        if !inserted {
            self.budget.tracked.fetch_sub(1, Ordering::Relaxed);
        }
        state.measure_and_replace(&NotKeyed::NonKey, f)
    }
}

impl ShrinkableKeyedStateStore<u64> for CappedState {
    fn retain_recent(&self, drop_below: Nanos) {
        let drop_below = u64::from(drop_below);
        let mut removed = 0;
        self.map.retain(|_, state| {
            let keep = arrival(state) > drop_below;
            removed += usize::from(!keep);
            keep
        });
        self.budget.tracked.fetch_sub(removed, Ordering::Relaxed);
    }

    fn shrink_to_fit(&self) {
        self.map.shrink_to_fit();
    }

    fn len(&self) -> usize {
        self.map.len()
    }

    fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

/// The hasher for the map. Its keys are already keyed SipHash outputs (uniform and
/// unpredictable without the store's secret): the key is its own hash.
#[derive(Clone, Copy, Default)]
pub(super) struct PreHashed;

impl BuildHasher for PreHashed {
    type Hasher = PreHashedHasher;

    fn build_hasher(&self) -> PreHashedHasher {
        PreHashedHasher(0)
    }
}

#[derive(Default)]
pub(super) struct PreHashedHasher(u64);

impl Hasher for PreHashedHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `u64` keys reach this hasher; fold anything else in rather than drop it.
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}
