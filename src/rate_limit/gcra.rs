//! The GCRA store on `governor`.

use std::fmt;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use dashmap::DashMap;
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DashMapStateStore;

use super::store::{Decision, Hit, HitFuture, LimitStatus, RateLimitStore, StoreError};
use crate::Quota;
use crate::clock::SharedClock;

type Limiter = governor::RateLimiter<
    u64,
    DashMapStateStore<u64, PreHashed>,
    GovClock,
    StateInformationMiddleware,
>;

/// The hasher for the limiters' maps. Their keys are already keyed SipHash outputs (uniform and
/// unpredictable without the store's secret), so hashing them again with `RandomState` only
/// costs time: the key is used as its own hash.
#[derive(Clone, Copy, Default)]
struct PreHashed;

impl std::hash::BuildHasher for PreHashed {
    type Hasher = PreHashedHasher;

    fn build_hasher(&self) -> PreHashedHasher {
        PreHashedHasher(0)
    }
}

#[derive(Default)]
struct PreHashedHasher(u64);

impl std::hash::Hasher for PreHashedHasher {
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

/// Smooth per-key limiting with GCRA (the generic cell rate algorithm) on `governor`.
///
/// A fixed window admits its whole quota at the end of one window and again at the start of the
/// next: up to twice the quota in a moment. GCRA spreads the quota instead: `Quota::per_hour(1000)`
/// is a bucket of 1000 that refills one request every 3.6 s, so a burst empties it and after that
/// requests are admitted at the steady rate. Choose it where the boundary burst matters.
///
/// **Per-key quotas.** A `governor` limiter has one quota. This store keeps one keyed limiter per
/// distinct quota it has seen (created on first use; a plan tier is a quota), so keys with their
/// own [`AppIdentity`](crate::identity::AppIdentity) quota get their own rate.
///
/// **Limits.** GCRA keeps no windows, and `governor` cannot give back a charge, so multi-limit
/// all-or-nothing is not possible: this store takes exactly **one** limit per request (checked
/// when the layer is built). The IETF fields report `r` as the burst capacity left and `t` as
/// the time until the bucket is full again.
///
/// **Memory.** Keys are stored as 64-bit keyed hashes of the rate-limit key (no allocation per
/// request; two keys share a bucket with probability about 2⁻⁶⁴ per pair). Every
/// [`sweep_interval`](GcraStore::sweep_interval) one request drops the keys whose bucket is full
/// again (`governor`'s `retain_recent`). There is no hard cap on keys between sweeps; use
/// [`MemoryStore`](super::MemoryStore) where one is required.
///
/// The store reads time from its own clock ([`GcraStore::with_clock`]), a `governor` clock over
/// tollgate's [`Clock`](crate::clock::Clock).
#[derive(Clone)]
pub struct GcraStore {
    inner: Arc<Inner>,
}

struct Inner {
    first: OnceLock<(Quota, Limiter)>,
    others: DashMap<Quota, Limiter>,
    hasher: super::siphash::SipKey,
    clock: GovClock,
    sweep_interval: u64,
    next_sweep: AtomicU64,
}

#[derive(Clone)]
struct GovClock(SharedClock);

impl governor::clock::Clock for GovClock {
    // Integer nanoseconds since the Unix epoch: governor's arithmetic on them is plain integer
    // math, where `SystemTime` would pay for timespec arithmetic several times per check.
    type Instant = governor::nanos::Nanos;

    fn now(&self) -> governor::nanos::Nanos {
        governor::nanos::Nanos::from(self.0.unix_nanos())
    }
}

impl GcraStore {
    /// A store on the system clock, swept every 60 s.
    pub fn new() -> Self {
        Self::with_clock(crate::clock::system())
    }

    /// A store reading time from `clock` (a [`ManualClock`](crate::clock::ManualClock) in tests).
    pub fn with_clock(clock: SharedClock) -> Self {
        Self {
            inner: Arc::new(Inner {
                first: OnceLock::new(),
                others: DashMap::new(),
                hasher: super::siphash::SipKey::random(),
                clock: GovClock(clock),
                sweep_interval: 60_000_000_000,
                next_sweep: AtomicU64::new(0),
            }),
        }
    }

    /// Sets how often idle keys are dropped (default 60 s).
    ///
    /// # Panics
    ///
    /// If the store has been cloned (set it before handing the store to a layer).
    #[must_use]
    pub fn sweep_interval(mut self, every: Duration) -> Self {
        Arc::get_mut(&mut self.inner)
            .expect("GcraStore::sweep_interval is set before the store is shared")
            .sweep_interval = u64::try_from(every.as_nanos()).unwrap_or(u64::MAX);
        self
    }

    /// How many keys the store tracks now (over all quotas).
    pub fn tracked_keys(&self) -> usize {
        let first = self.inner.first.get().map_or(0, |(_, l)| l.len());
        first + self.inner.others.iter().map(|l| l.len()).sum::<usize>()
    }

    /// Drops the keys whose bucket is full again. The store calls this itself.
    pub fn sweep(&self) {
        let sweep = |limiter: &Limiter| {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        };
        if let Some((_, first)) = self.inner.first.get() {
            sweep(first);
        }
        for limiter in self.inner.others.iter() {
            sweep(limiter.value());
        }
    }

    /// Runs `f` with the limiter of `quota`, made on first use. The first quota seen (usually
    /// the layer's default) is reached without a map lookup.
    fn with_limiter<T>(&self, quota: Quota, f: impl FnOnce(&Limiter) -> T) -> T {
        let (first_quota, first) = self
            .inner
            .first
            .get_or_init(|| (quota, self.new_limiter(quota)));
        if *first_quota == quota {
            return f(first);
        }
        if let Some(limiter) = self.inner.others.get(&quota) {
            return f(limiter.value());
        }
        let limiter = self
            .inner
            .others
            .entry(quota)
            .or_insert_with(|| self.new_limiter(quota))
            .downgrade();
        f(limiter.value())
    }

    fn new_limiter(&self, quota: Quota) -> Limiter {
        governor::RateLimiter::dashmap_with_clock_and_hasher(
            gcra_quota(quota),
            self.inner.clock.clone(),
            PreHashed,
        )
        .with_middleware::<StateInformationMiddleware>()
    }

    fn decide(&self, hit: &Hit<'_>) -> Decision {
        let quota = hit.quotas()[0];
        self.maybe_sweep(hit.now_nanos());
        let key = self.inner.hasher.hash(hit.key());
        let limit = quota.limit();
        let burst = u32::try_from(limit).unwrap_or(u32::MAX);
        let outcome = NonZeroU32::new(hit.cost())
            .map(|n| self.with_limiter(quota, |limiter| limiter.check_key_n(&key, n)));
        let status = match outcome {
            // A cost of 0 never reaches a store; treat it as admitted, uncharged.
            None => LimitStatus::new(limit, limit, Duration::ZERO, false),
            Some(Ok(Ok(snapshot))) => {
                let remaining = snapshot.remaining_burst_capacity();
                // Integer nanoseconds: the same whole-nanosecond period as `replenish_period`,
                // without `Duration`'s division and multiplication on every admitted request.
                let refill =
                    period_nanos(quota).saturating_mul(u64::from(burst - remaining.min(burst)));
                LimitStatus::from_nanos(limit, u64::from(remaining), refill, false)
            }
            Some(Ok(Err(not_until))) => {
                let wait = not_until.wait_time_from(governor::clock::Clock::now(&self.inner.clock));
                LimitStatus::new(limit, 0, wait.max(Duration::from_nanos(1)), true)
            }
            // More than the whole burst: never admitted.
            Some(Err(_)) => LimitStatus::new(limit, 0, quota.window(), true),
        };
        Decision::new(&[status])
    }

    fn maybe_sweep(&self, now: u64) {
        let due = self.inner.next_sweep.load(Ordering::Relaxed);
        if now >= due
            && self
                .inner
                .next_sweep
                .compare_exchange(
                    due,
                    now.saturating_add(self.inner.sweep_interval),
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                )
                .is_ok()
            && due != 0
        {
            self.sweep();
        }
    }
}

/// One request every `window / limit`, bursts up to `limit`.
fn replenish_period(quota: Quota) -> Duration {
    let burst = u32::try_from(quota.limit()).unwrap_or(u32::MAX);
    (quota.window() / burst).max(Duration::from_nanos(1))
}

/// [`replenish_period`] in nanoseconds.
fn period_nanos(quota: Quota) -> u64 {
    match u64::try_from(quota.window().as_nanos()) {
        Ok(window) => (window / u64::from(u32::try_from(quota.limit()).unwrap_or(u32::MAX))).max(1),
        // A window beyond 584 years: the exact period, saturated as a reset is anyway.
        Err(_) => u64::try_from(replenish_period(quota).as_nanos()).unwrap_or(u64::MAX),
    }
}

fn gcra_quota(quota: Quota) -> governor::Quota {
    let burst = NonZeroU32::new(u32::try_from(quota.limit()).unwrap_or(u32::MAX))
        .unwrap_or(NonZeroU32::MIN);
    governor::Quota::with_period(replenish_period(quota))
        .expect("the period is at least 1 ns")
        .allow_burst(burst)
}

impl Default for GcraStore {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for GcraStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GcraStore")
            .field("tracked_keys", &self.tracked_keys())
            .finish_non_exhaustive()
    }
}

impl RateLimitStore for GcraStore {
    fn hit(&self, hit: &Hit<'_>) -> HitFuture {
        Box::pin(std::future::ready(Ok(self.decide(hit))))
    }

    fn try_hit(&self, hit: &Hit<'_>) -> Option<Result<Decision, StoreError>> {
        Some(Ok(self.decide(hit)))
    }

    fn max_limits(&self) -> usize {
        1
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    use crate::clock::{Clock, ManualClock};

    #[test]
    fn smooth_per_quota_buckets() {
        let clock = ManualClock::new(UNIX_EPOCH + Duration::from_secs(1_000_000));
        let store = GcraStore::with_clock(Arc::new(clock.clone()));
        let hourly = [Quota::per_hour(3600).unwrap()]; // 1 per second, burst 3600
        let tiny = [Quota::per_minute(2).unwrap()]; // 1 per 30 s, burst 2
        let now = clock.now();
        let hit = |key: &str, q: &[Quota]| {
            store
                .try_hit(&Hit::new(key.as_bytes(), q, 1, now))
                .unwrap()
                .unwrap()
        };
        assert!(hit("a", &tiny).is_allowed());
        let second = hit("a", &tiny);
        assert!(second.is_allowed());
        assert_eq!(second.statuses()[0].remaining(), 0);
        assert_eq!(second.statuses()[0].reset(), Duration::from_secs(60));
        let refused = hit("a", &tiny);
        assert!(!refused.is_allowed());
        assert_eq!(refused.retry_after(), Some(Duration::from_secs(30)));
        // Another quota is another limiter: the same key is not refused there.
        assert!(hit("a", &hourly).is_allowed());
        clock.advance(Duration::from_secs(30));
        let now = clock.now();
        let again = store
            .try_hit(&Hit::new(b"a", &tiny, 1, now))
            .unwrap()
            .unwrap();
        assert!(again.is_allowed(), "one cell refilled after 30 s");
        assert_eq!(store.tracked_keys(), 2);
    }
}
