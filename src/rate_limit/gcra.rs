//! The GCRA store on `governor`.

use std::cell::Cell;
use std::fmt;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use dashmap::DashMap;
use governor::middleware::{StateInformationMiddleware, StateSnapshot};
use governor::nanos::Nanos;
use governor::{InsufficientCapacity, NotUntil};

use super::gcra_state::{CappedState, KeyBudget};
use super::store::{Decision, Hit, HitFuture, LimitStatus, RateLimitStore, StoreError};
use crate::Quota;

type Limiter = governor::RateLimiter<u64, CappedState, HitClock, StateInformationMiddleware>;

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
/// again (`governor`'s `retain_recent`). At most [`max_keys`](GcraStore::max_keys) keys
/// (default 1,000,000) are tracked: at the cap, a new key takes the place of the key whose
/// bucket is fullest among a sample of 8 (forgetting it gives back the least), so a flood of
/// fresh keys evicts its own keys and new clients are still served.
///
/// Like every store, it decides a hit at the time the hit carries (read once per request from
/// the layer's [`clock`](super::RateLimitLayer::clock)).
#[derive(Clone)]
pub struct GcraStore {
    inner: Arc<Inner>,
}

struct Inner {
    budget: Arc<KeyBudget>,
    first: OnceLock<(Quota, Limiter)>,
    others: DashMap<Quota, Limiter>,
    hasher: super::siphash::SipKey,
    sweep_interval: u64,
    next_sweep: AtomicU64,
}

thread_local! {
    /// The time of the hit this thread is deciding, in nanoseconds since the Unix epoch.
    /// `governor` reads its clock inside every check, and the hit already carries the time the
    /// layer read: handing it over here saves a second clock read per request and makes the
    /// store decide at the hit's time, as every store does.
    static HIT_TIME: Cell<u64> = const { Cell::new(0) };
}

/// `governor`'s clock: the time of the hit being decided on this thread ([`HIT_TIME`]).
#[derive(Clone, Copy, Default)]
struct HitClock;

impl governor::clock::Clock for HitClock {
    // Integer nanoseconds since the Unix epoch: governor's arithmetic on them is plain integer
    // math, where `SystemTime` would pay for timespec arithmetic several times per check.
    type Instant = Nanos;

    #[inline]
    fn now(&self) -> Nanos {
        Nanos::from(HIT_TIME.get())
    }
}

/// Runs `f` with `governor`'s clock reading `now` on this thread.
fn at_time<T>(now: u64, f: impl FnOnce() -> T) -> T {
    let before = HIT_TIME.replace(now);
    let result = f();
    HIT_TIME.set(before);
    result
}

impl GcraStore {
    /// A store swept every 60 s. It decides each hit at the hit's time (the layer's
    /// [`clock`](super::RateLimitLayer::clock)).
    pub fn new() -> Self {
        Self {
            inner: Arc::new(Inner {
                budget: KeyBudget::new(DEFAULT_MAX_KEYS),
                first: OnceLock::new(),
                others: DashMap::new(),
                hasher: super::siphash::SipKey::random(),
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

    /// Sets the most keys tracked at once, over all quotas (default 1,000,000); see the
    /// type's docs for what happens at the cap.
    ///
    /// # Panics
    ///
    /// If the store has been cloned (set it before handing the store to a layer).
    #[must_use]
    pub fn max_keys(mut self, max_keys: usize) -> Self {
        Arc::get_mut(&mut self.inner)
            .expect("GcraStore::max_keys is set before the store is shared")
            .budget = KeyBudget::new(max_keys);
        self
    }

    /// How many keys the store tracks now (over all quotas).
    pub fn tracked_keys(&self) -> usize {
        self.inner.budget.tracked()
    }

    /// Drops the keys whose bucket is full again by `now`, returning how many. The store calls
    /// this itself; it is public for tests and for shutdown-time reporting.
    pub fn sweep(&self, now: SystemTime) -> usize {
        let before = self.tracked_keys();
        at_time(super::store::unix_nanos(now), || self.sweep_now());
        // Keys other threads add meanwhile can make this an undercount, never a wrap.
        before.saturating_sub(self.tracked_keys())
    }

    /// [`sweep`](Self::sweep) at the time [`HIT_TIME`] holds.
    fn sweep_now(&self) {
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
    #[inline]
    fn with_limiter<T>(&self, quota: Quota, f: impl FnOnce(&Limiter) -> T) -> T {
        let budget = &self.inner.budget;
        let (first_quota, first) = self
            .inner
            .first
            .get_or_init(|| (quota, new_limiter(quota, budget)));
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
            .or_insert_with(|| new_limiter(quota, budget))
            .downgrade();
        f(limiter.value())
    }

    fn decide(&self, hit: &Hit<'_>) -> Decision {
        let quota = hit.quotas()[0];
        let now = hit.now_nanos();
        HIT_TIME.set(now);
        self.maybe_sweep(now);
        let key = self.inner.hasher.hash(hit.key());
        match NonZeroU32::new(hit.cost()) {
            Some(cost) => self.with_limiter(quota, |limiter| {
                // The single-cell check is governor's cheaper path (no multiplication).
                let outcome = if cost == NonZeroU32::MIN {
                    Ok(limiter.check_key(&key))
                } else {
                    limiter.check_key_n(&key, cost)
                };
                status(quota, now, hit.needs_statuses(), outcome)
            }),
            // A cost of 0 never reaches a store; treat it as admitted, uncharged.
            None => Decision::new(&[LimitStatus::new(
                quota.limit(),
                quota.limit(),
                Duration::ZERO,
                false,
            )]),
        }
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
            self.sweep_now();
        }
    }
}

/// A limiter for `quota`, counting from the Unix epoch, its keys within `budget`.
fn new_limiter(quota: Quota, budget: &Arc<KeyBudget>) -> Limiter {
    // governor measures from what its clock reads when the limiter is made: make that read 0,
    // so every limiter counts from the Unix epoch as the hits' times do.
    at_time(0, || {
        governor::RateLimiter::<u64, _, _, governor::middleware::NoOpMiddleware<Nanos>>::new(
            gcra_quota(quota),
            CappedState::new(Arc::clone(budget)),
            HitClock,
        )
        .with_middleware::<StateInformationMiddleware>()
    })
}

/// The default cap on tracked keys, as [`MemoryStore`](super::MemoryStore)'s.
const DEFAULT_MAX_KEYS: usize = 1_000_000;

/// The decision for one governor check at `now`.
#[inline]
fn status(
    quota: Quota,
    now: u64,
    needed: bool,
    outcome: Result<Result<StateSnapshot, NotUntil<Nanos>>, InsufficientCapacity>,
) -> Decision {
    let limit = quota.limit();
    let status = match outcome {
        // What tower_governor's plain middleware does: no division for fields nobody reads.
        Ok(Ok(_)) if !needed => return Decision::admitted(),
        Ok(Ok(snapshot)) => {
            let burst = u32::try_from(limit).unwrap_or(u32::MAX);
            let remaining = snapshot.remaining_burst_capacity();
            // Integer nanoseconds: the same whole-nanosecond period as `replenish_period`,
            // without `Duration`'s division and multiplication on every admitted request.
            let refill =
                period_nanos(quota).saturating_mul(u64::from(burst - remaining.min(burst)));
            LimitStatus::from_nanos(limit, u64::from(remaining), refill, false)
        }
        Ok(Err(not_until)) => {
            let wait = not_until.wait_time_from(Nanos::from(now));
            LimitStatus::new(limit, 0, wait.max(Duration::from_nanos(1)), true)
        }
        // More than the whole burst: never admitted.
        Err(_) => LimitStatus::new(limit, 0, quota.window(), true),
    };
    Decision::new(&[status])
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

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_000_000 + secs)
    }

    fn hit(store: &GcraStore, key: &str, quotas: &[Quota], cost: u32, now: SystemTime) -> Decision {
        store
            .try_hit(&Hit::new(key.as_bytes(), quotas, cost, now))
            .unwrap()
            .unwrap()
    }

    #[test]
    fn smooth_per_quota_buckets_at_the_hits_time() {
        let store = GcraStore::new();
        let hourly = [Quota::per_hour(3600)]; // 1 per second, burst 3600
        let tiny = [Quota::per_minute(2)]; // 1 per 30 s, burst 2
        assert!(hit(&store, "a", &tiny, 1, at(0)).is_allowed());
        let second = hit(&store, "a", &tiny, 1, at(0));
        assert!(second.is_allowed());
        assert_eq!(second.statuses()[0].remaining(), 0);
        assert_eq!(second.statuses()[0].reset(), Duration::from_secs(60));
        let refused = hit(&store, "a", &tiny, 1, at(0));
        assert!(!refused.is_allowed());
        assert_eq!(refused.retry_after(), Some(Duration::from_secs(30)));
        // Another quota is another limiter: the same key is not refused there.
        assert!(hit(&store, "a", &hourly, 1, at(0)).is_allowed());
        // The store has no clock of its own: 30 s later is the hit's time, from any thread.
        let again = std::thread::scope(|s| s.spawn(|| hit(&store, "a", &tiny, 1, at(30))).join());
        assert!(again.unwrap().is_allowed(), "one cell refilled after 30 s");
        assert!(!hit(&store, "a", &tiny, 1, at(30)).is_allowed());
        assert_eq!(store.tracked_keys(), 2);
    }

    #[test]
    fn weighted_hits_are_all_or_nothing_and_never_beyond_the_burst() {
        let store = GcraStore::new();
        let five = [Quota::per_second(5)];
        let three = hit(&store, "w", &five, 3, at(0));
        assert!(three.is_allowed());
        assert_eq!(three.statuses()[0].remaining(), 2);
        // Three more do not fit in the two left: refused, and nothing is charged.
        assert!(!hit(&store, "w", &five, 3, at(0)).is_allowed());
        assert_eq!(
            hit(&store, "w", &five, 2, at(0)).statuses()[0].remaining(),
            0
        );
        // More than the whole burst can never pass; it waits a whole window.
        let six = hit(&store, "x", &five, 6, at(0));
        assert!(!six.is_allowed());
        assert_eq!(six.retry_after(), Some(Duration::from_secs(1)));
    }

    #[test]
    fn statuses_are_skipped_only_when_not_needed_and_only_when_admitted() {
        let store = GcraStore::new();
        let two = [Quota::per_minute(2)];
        let lean = |now| {
            let hit = Hit::new(b"k", &two, 1, now).statuses_needed(false);
            store.try_hit(&hit).unwrap().unwrap()
        };
        let admitted = lean(at(0));
        assert!(admitted.is_allowed());
        assert!(admitted.statuses().is_empty());
        assert!(lean(at(0)).is_allowed());
        // A refusal still says how long to wait.
        let refused = lean(at(0));
        assert!(!refused.is_allowed());
        assert_eq!(refused.retry_after(), Some(Duration::from_secs(30)));
    }

    #[test]
    fn a_sweep_drops_the_keys_whose_bucket_is_full_again() {
        let store = GcraStore::new();
        let minute = [Quota::per_minute(60)];
        for key in 0..100 {
            assert!(hit(&store, &format!("k{key}"), &minute, 1, at(0)).is_allowed());
        }
        assert!(hit(&store, "late", &minute, 30, at(50)).is_allowed());
        assert_eq!(store.tracked_keys(), 101);
        // After 1 s every one-request bucket is full again; the 30-request one refills by 80 s.
        assert_eq!(store.sweep(at(0)), 0);
        assert_eq!(store.sweep(at(60)), 100);
        assert_eq!(store.tracked_keys(), 1);
        assert_eq!(store.sweep(at(81)), 1);
        assert_eq!(store.tracked_keys(), 0);
    }
}
