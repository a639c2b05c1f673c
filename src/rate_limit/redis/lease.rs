//! Leased limits: the lease each key holds on this instance; see [`Leasing`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dashmap::DashMap;

use crate::Quota;

use super::super::store::{Decision, Hit, LimitStatus, MAX_LIMITS, StoreError};
use super::reserve::Reserve;
use super::{MAX_EXACT, window_micros};

/// Leased limits: an instance reserves a slice of a key's window budget from Redis in one round
/// trip and spends it locally.
///
/// Each reservation is an atomic script: it charges the slice to every quota's counter, as an
/// exact hit of that cost would, so the counters in Redis always hold at least what every
/// instance has admitted, and **the sum admitted across instances never exceeds a limit**. What
/// a lease costs is budget **stranded** on an instance: reserved, not (yet) spent. It is bounded
/// by the slice, returned to windows that are still open when the lease ends, and otherwise
/// gone with its window.
///
/// - **Slices adapt** to the key's rate: a new slice is what the key spent in the last
///   [`period`](Leasing::period) at the rate it spent the previous one, at least 1, at most four
///   times the previous slice and at most [`max_share`](Leasing::max_share) of the smallest
///   limit. A cold key takes one unit per round trip, as the exact mode does.
/// - **Near the end of a budget** a reservation takes at most half of what is left, so that
///   instances share the last units instead of one hoarding them.
/// - **A lease ends** at the earliest end of its quotas' windows, measured on this instance's
///   monotonic clock from *before* the reservation was sent, so no unit reserved in one window
///   is ever spent in the next. Whatever is left then is handed back with the next reservation
///   (one round trip for both) to the windows that are still open.
/// - **Refusals** are local while a quota's budget is known to be spent (until its window ends),
///   so a key over its limit costs no round trip either.
/// - **Headers** report each quota's remaining units as Redis reported them at the last
///   reservation plus this instance's unspent lease: they can overstate what the other
///   instances have left by at most what those hold. `Reset` and `Retry-After` are the windows'
///   ends, as in the exact mode.
/// - **Errors**: a reservation that fails or times out forgets the lease it was handing back
///   (it may or may not have been applied): that budget is stranded, never counted twice.
///
/// - **Memory**: an instance holds a lease for at most [`max_keys`](Leasing::max_keys) keys
///   (100,000 by default); leases whose windows have ended are swept. A key beyond that is
///   decided without keeping a lease (one round trip reserving just its cost), so a flood of
///   fresh keys costs round trips, never unbounded memory.
///
/// Turned on with [`RedisStoreBuilder::leased`](super::RedisStoreBuilder::leased); this value
/// sizes the slices.
#[derive(Debug, Clone, Copy, PartialEq)]
#[must_use]
pub struct Leasing {
    period: Duration,
    max_share: f64,
    max_keys: usize,
}

impl Default for Leasing {
    fn default() -> Self {
        Self::new()
    }
}

impl Leasing {
    /// A slice lasting about 50 ms at the key's rate, at most 1/16 of the smallest limit.
    pub const fn new() -> Self {
        Self {
            period: Duration::from_millis(50),
            max_share: 1.0 / 16.0,
            max_keys: 100_000,
        }
    }

    /// How long a slice should last at the key's recent rate (default 50 ms). Longer means
    /// fewer round trips and more stranded budget.
    ///
    /// # Panics
    ///
    /// If `period` is zero.
    pub fn period(mut self, period: Duration) -> Self {
        assert!(!period.is_zero(), "a zero period leases nothing");
        self.period = period;
        self
    }

    /// The largest slice, as a share of the smallest limit (default 1/16, at least one unit):
    /// the most one instance can strand per key.
    ///
    /// # Panics
    ///
    /// Unless `0 < share <= 1`.
    pub fn max_share(mut self, share: f64) -> Self {
        assert!(share > 0.0 && share <= 1.0, "a share is in (0, 1]");
        self.max_share = share;
        self
    }

    /// How many keys this instance keeps a lease for at most (default 100,000).
    ///
    /// # Panics
    ///
    /// If `keys` is zero.
    pub fn max_keys(mut self, keys: usize) -> Self {
        assert!(keys > 0, "zero keys leases nothing");
        self.max_keys = keys;
        self
    }

    /// The largest slice for `quotas`.
    fn max_slice(&self, quotas: &[Quota]) -> u64 {
        let smallest = quotas
            .iter()
            .map(Quota::limit)
            .min()
            .unwrap_or(1)
            .min(MAX_EXACT);
        ((smallest as f64 * self.max_share) as u64).max(1)
    }
}

/// Every key's lease on this instance.
pub(super) struct Leases {
    config: Leasing,
    slots: DashMap<Box<[u8]>, Arc<Slot>>,
    inserts: AtomicU64,
}

/// One key's lease, and the lock that makes its reservations one at a time.
struct Slot {
    state: Mutex<Lease>,
    reserving: tokio::sync::Mutex<()>,
}

#[derive(Clone, Copy)]
struct Lease {
    /// Units reserved and not spent.
    tokens: u64,
    /// Until when they may be spent: the earliest window end.
    until: Option<Instant>,
    /// Per quota: its window's end, its window index, and what Redis had left after the last
    /// reservation.
    ends: [Option<Instant>; MAX_LIMITS],
    windows: [u64; MAX_LIMITS],
    remaining: [u64; MAX_LIMITS],
    limits: [u64; MAX_LIMITS],
    len: usize,
    /// The next slice, and what was spent since the last reservation (and when it was made).
    slice: u64,
    spent: u64,
    reserved_at: Option<Instant>,
}

impl Lease {
    const fn new() -> Self {
        Self {
            tokens: 0,
            until: None,
            ends: [None; MAX_LIMITS],
            windows: [0; MAX_LIMITS],
            remaining: [0; MAX_LIMITS],
            limits: [0; MAX_LIMITS],
            len: 0,
            slice: 1,
            spent: 0,
            reserved_at: None,
        }
    }

    fn live(&self, now: Instant) -> bool {
        self.until.is_some_and(|until| now < until)
    }

    /// Decides locally when it can: spends from a live lease, or refuses for a quota whose
    /// budget is known spent until its window ends.
    fn decide(&mut self, cost: u64, now: Instant) -> Option<Decision> {
        let live = self.live(now);
        if live && self.tokens >= cost {
            self.tokens -= cost;
            self.spent += cost;
            return Some(self.decision(now, |_| false));
        }
        let held = if live { self.tokens } else { 0 };
        let spent_for = |i: usize| {
            self.ends[i].is_some_and(|end| now < end)
                && self.remaining[i].saturating_add(held) < cost
        };
        if (0..self.len).any(spent_for) {
            return Some(self.decision(now, spent_for));
        }
        None
    }

    fn decision(&self, now: Instant, exceeded: impl Fn(usize) -> bool) -> Decision {
        let held = if self.live(now) { self.tokens } else { 0 };
        let mut statuses = [LimitStatus::new(0, 0, Duration::ZERO, false); MAX_LIMITS];
        for (i, status) in statuses.iter_mut().enumerate().take(self.len) {
            let reset =
                self.ends[i].map_or(Duration::ZERO, |end| end.saturating_duration_since(now));
            let remaining = self.remaining[i].saturating_add(held).min(self.limits[i]);
            *status = LimitStatus::new(self.limits[i], remaining, reset, exceeded(i));
        }
        Decision::new(&statuses[..self.len])
    }

    /// The next slice, from what was spent since the last reservation.
    fn next_slice(&self, now: Instant, config: &Leasing, max: u64) -> u64 {
        let Some(at) = self.reserved_at else {
            return 1;
        };
        let elapsed = now.saturating_duration_since(at).as_secs_f64().max(1e-6);
        let wanted = (self.spent as f64 * config.period.as_secs_f64() / elapsed).ceil() as u64;
        wanted
            .clamp(1, self.slice.saturating_mul(4).max(1))
            .min(max)
    }
}

impl Leases {
    pub(super) fn new(config: Leasing) -> Self {
        Self {
            config,
            slots: DashMap::new(),
            inserts: AtomicU64::new(0),
        }
    }

    /// The map key: the rate-limit key and its quotas (a store shared by layers with different
    /// limits keeps their leases apart).
    pub(super) fn slot_key(hit: &Hit<'_>) -> Vec<u8> {
        let mut key = vec![0; Self::slot_key_len(hit)];
        Self::write_slot_key(hit, &mut key);
        key
    }

    fn slot_key_len(hit: &Hit<'_>) -> usize {
        hit.key().len() + 16 * hit.quotas().len()
    }

    /// Writes [`slot_key`](Self::slot_key) into `out`, exactly `slot_key_len` long.
    fn write_slot_key(hit: &Hit<'_>, out: &mut [u8]) {
        let (key, mut rest) = out.split_at_mut(hit.key().len());
        key.copy_from_slice(hit.key());
        for quota in hit.quotas() {
            let (window, tail) = rest.split_at_mut(8);
            let (limit, tail) = tail.split_at_mut(8);
            window.copy_from_slice(&window_micros(quota.window()).to_le_bytes());
            limit.copy_from_slice(&quota.limit().to_le_bytes());
            rest = tail;
        }
    }

    /// A local decision, if the key's lease can make one. The map key is built on the stack
    /// when it fits: a decision from the lease allocates nothing.
    pub(super) fn try_hit(&self, hit: &Hit<'_>) -> Option<Decision> {
        let mut stack = [0u8; 256];
        let len = Self::slot_key_len(hit);
        let heap;
        let key: &[u8] = match stack.get_mut(..len) {
            Some(key) => {
                Self::write_slot_key(hit, key);
                key
            }
            None => {
                heap = Self::slot_key(hit);
                &heap
            }
        };
        let slot = self.slots.get(key)?;
        let mut lease = slot.lock();
        lease.decide(u64::from(hit.cost()), Instant::now())
    }

    fn slot(&self, key: Vec<u8>) -> Arc<Slot> {
        if let Some(slot) = self.slots.get(key.as_slice()) {
            return Arc::clone(&slot);
        }
        let fresh = || {
            Arc::new(Slot {
                state: Mutex::new(Lease::new()),
                reserving: tokio::sync::Mutex::new(()),
            })
        };
        if self.inserts.fetch_add(1, Ordering::Relaxed) % 1024 == 1023 {
            // Leases whose windows all ended hold nothing: forget them.
            let now = Instant::now();
            self.slots.retain(|_, slot| {
                slot.lock()
                    .ends
                    .iter()
                    .any(|end| end.is_some_and(|end| now < end))
            });
        }
        if self.slots.len() >= self.config.max_keys {
            // At the cap: decided without keeping a lease (a new lease reserves just the cost).
            return fresh();
        }
        Arc::clone(
            self.slots
                .entry(key.into_boxed_slice())
                .or_insert_with(fresh)
                .value(),
        )
    }

    /// Decides `hit`, reserving a new slice when the lease cannot.
    pub(super) async fn hit(
        self: Arc<Self>,
        reserve: Reserve,
        key: Vec<u8>,
        cost: u64,
    ) -> Result<Decision, StoreError> {
        let slot = self.slot(key);
        if let Some(decision) = slot.lock().decide(cost, Instant::now()) {
            return Ok(decision);
        }
        // One reservation at a time per key: the others wait for it and spend from it.
        let _reserving = slot.reserving.lock().await;
        let sent = Instant::now();
        let (want, back, windows) = {
            let mut lease = slot.lock();
            if let Some(decision) = lease.decide(cost, sent) {
                return Ok(decision);
            }
            let max = self.config.max_slice(&reserve.quotas[..reserve.len]);
            let slice = lease.next_slice(sent, &self.config, max);
            lease.slice = slice;
            // What is left is handed back (to the windows still open) and forgotten here,
            // whatever the answer: never counted twice.
            let back = std::mem::take(&mut lease.tokens);
            lease.until = None;
            (slice.max(cost), back, lease.windows)
        };
        let answer = reserve.call(want, cost, back, &windows).await?;
        let mut lease = slot.lock();
        // What Redis answers is bounded by what was asked for and by the quotas, so that no
        // answer (a foreign script, a hostile server) can widen a lease or overflow a clock.
        lease.tokens = answer.grant.min(want);
        lease.len = reserve.len;
        lease.spent = 0;
        lease.reserved_at = Some(sent);
        let mut until: Option<Instant> = None;
        for i in 0..reserve.len {
            // From when the reservation was sent: never later than the window's real end.
            let window = window_micros(reserve.quotas[i].window());
            let end = sent
                .checked_add(Duration::from_micros(answer.resets[i].min(window)))
                .unwrap_or(sent);
            lease.ends[i] = Some(end);
            lease.windows[i] = answer.windows[i];
            lease.remaining[i] = answer.remaining[i].min(reserve.limits[i]);
            lease.limits[i] = reserve.limits[i];
            until = Some(until.map_or(end, |u| u.min(end)));
        }
        lease.until = until;
        let now = Instant::now();
        if lease.live(now) && lease.tokens >= cost {
            lease.tokens -= cost;
            lease.spent += cost;
            return Ok(lease.decision(now, |_| false));
        }
        // Refused: every quota without room for the cost.
        let (remaining, tokens) = (lease.remaining, lease.tokens);
        Ok(lease.decision(now, |i| remaining[i].saturating_add(tokens) < cost))
    }
}

impl Slot {
    fn lock(&self) -> std::sync::MutexGuard<'_, Lease> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_follow_the_rate_within_their_bounds() {
        let config = Leasing::new();
        let start = Instant::now();
        let mut lease = Lease::new();
        assert_eq!(
            lease.next_slice(start, &config, 100),
            1,
            "a cold key takes one"
        );
        lease.reserved_at = Some(start);
        lease.slice = 4;
        // 40 spent in 10 ms: 200 in a 50 ms period, but at most four times the last slice.
        lease.spent = 40;
        assert_eq!(
            lease.next_slice(start + Duration::from_millis(10), &config, 100),
            16
        );
        lease.slice = 64;
        assert_eq!(
            lease.next_slice(start + Duration::from_millis(10), &config, 100),
            100
        );
        // One in a second: one.
        lease.spent = 1;
        assert_eq!(
            lease.next_slice(start + Duration::from_secs(1), &config, 100),
            1
        );
        let quotas = [Quota::per_second(8), Quota::per_hour(1_600)];
        assert_eq!(config.max_slice(&quotas), 1);
        assert_eq!(config.max_slice(&[Quota::per_hour(1_600)]), 100);
    }

    #[test]
    fn a_lease_spends_until_its_end_and_refuses_what_no_window_holds() {
        let now = Instant::now();
        let mut lease = Lease::new();
        assert!(lease.decide(1, now).is_none(), "nothing known: ask Redis");
        lease.tokens = 2;
        lease.len = 1;
        lease.limits[0] = 10;
        lease.remaining[0] = 0;
        lease.ends[0] = Some(now + Duration::from_secs(1));
        lease.until = lease.ends[0];
        let first = lease.decide(1, now).unwrap();
        assert!(first.is_allowed());
        assert_eq!(first.statuses()[0].remaining(), 1);
        assert!(lease.decide(1, now).unwrap().is_allowed());
        let refused = lease.decide(1, now).unwrap();
        assert!(!refused.is_allowed(), "Redis had nothing left");
        assert!(refused.retry_after().unwrap() <= Duration::from_secs(1));
        // Past the window's end nothing is known: ask Redis again.
        assert!(lease.decide(1, now + Duration::from_secs(1)).is_none());
        lease.tokens = 5;
        assert!(
            lease.decide(1, now + Duration::from_secs(2)).is_none(),
            "expired tokens are not spent"
        );
    }

    /// The stack-built map key of `try_hit` is the one `slot_key` builds, for short keys and
    /// for keys too long for the stack buffer.
    #[test]
    fn the_map_key_is_the_same_however_it_is_built() {
        use crate::Quota;
        use crate::rate_limit::Hit;

        let quotas = [Quota::per_second(7), Quota::per_hour(1_000)];
        for key in [b"k".to_vec(), vec![b'x'; 300]] {
            let hit = Hit::at_nanos(&key, &quotas, 1, 1_700_000_000_000_000_000);
            let mut out = vec![0xAA; Leases::slot_key_len(&hit)];
            Leases::write_slot_key(&hit, &mut out);
            assert_eq!(out, Leases::slot_key(&hit));
            assert_eq!(&out[..key.len()], &key[..]);
            assert_eq!(out.len(), key.len() + 32);
            let quota = |at: usize| &out[key.len() + at..key.len() + at + 8];
            assert_eq!(
                quota(0),
                1_000_000u64.to_le_bytes(),
                "the window in microseconds"
            );
            assert_eq!(quota(8), 7u64.to_le_bytes(), "the limit");
            assert_eq!(quota(16), 3_600_000_000u64.to_le_bytes());
            assert_eq!(quota(24), 1_000u64.to_le_bytes());
        }
    }
}
