//! The store trait: one atomic "hit" that decides a request against all its limits.

use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::Quota;

/// The most limits one request can be decided against (e.g. `10/s` and `1000/h`).
pub const MAX_LIMITS: usize = 4;

/// The future of an asynchronous [`RateLimitStore::hit`].
pub type HitFuture = Pin<Box<dyn Future<Output = Result<Decision, StoreError>> + Send + 'static>>;

/// Where rate-limit counters live.
///
/// One operation, [`hit`](RateLimitStore::hit), decides a request: for the key, charge `cost`
/// against every quota of the [`Hit`] **all or nothing** (if any quota would be exceeded, no
/// counter moves) and report each quota's remaining allowance and reset. A store must make the
/// decision atomic: never more than a quota's `limit` admitted in one window, whatever the
/// concurrency. Fixed windows are aligned to the clock ([`Hit::window`]), so every node and
/// store agrees on where windows start.
///
/// Stores that decide in memory also implement [`try_hit`](RateLimitStore::try_hit), which the
/// middleware calls first: when it answers, the request never pays for a future, a box or a
/// clone of the inner service. A network store (Redis) leaves `try_hit` at its default `None`.
///
/// The future returned by `hit` must not borrow the store or the hit: copy the key and quotas
/// (and clone a connection handle) into it.
pub trait RateLimitStore: Send + Sync + 'static {
    /// Decides `hit` asynchronously.
    fn hit(&self, hit: &Hit<'_>) -> HitFuture;

    /// Decides `hit` synchronously if this store can; `None` means "use [`hit`](Self::hit)".
    fn try_hit(&self, hit: &Hit<'_>) -> Option<Result<Decision, StoreError>> {
        let _ = hit;
        None
    }

    /// How many limits one hit may carry (at most [`MAX_LIMITS`]). Checked when the layer is
    /// built.
    fn max_limits(&self) -> usize {
        MAX_LIMITS
    }
}

impl<T: RateLimitStore + ?Sized> RateLimitStore for std::sync::Arc<T> {
    fn hit(&self, hit: &Hit<'_>) -> HitFuture {
        (**self).hit(hit)
    }

    fn try_hit(&self, hit: &Hit<'_>) -> Option<Result<Decision, StoreError>> {
        (**self).try_hit(hit)
    }

    fn max_limits(&self) -> usize {
        (**self).max_limits()
    }
}

/// One request to decide: a key, its quotas, a cost and the time.
#[derive(Debug, Clone, Copy)]
pub struct Hit<'a> {
    key: &'a [u8],
    quotas: &'a [Quota],
    cost: u32,
    now_nanos: u64,
    statuses_needed: bool,
}

impl<'a> Hit<'a> {
    /// A hit of `cost` units on `key` against every quota in `quotas`, at `now`.
    ///
    /// # Panics
    ///
    /// If `quotas` is empty or longer than [`MAX_LIMITS`].
    pub fn new(key: &'a [u8], quotas: &'a [Quota], cost: u32, now: SystemTime) -> Self {
        Self::at_nanos(key, quotas, cost, unix_nanos(now))
    }

    /// As [`new`](Self::new), the time in nanoseconds since the Unix epoch (what
    /// [`Clock::unix_nanos`](crate::clock::Clock::unix_nanos) reads).
    ///
    /// # Panics
    ///
    /// If `quotas` is empty or longer than [`MAX_LIMITS`].
    #[inline]
    pub fn at_nanos(key: &'a [u8], quotas: &'a [Quota], cost: u32, now_nanos: u64) -> Self {
        assert!(
            !quotas.is_empty() && quotas.len() <= MAX_LIMITS,
            "a hit carries 1 to {MAX_LIMITS} quotas"
        );
        Self {
            key,
            quotas,
            cost,
            now_nanos,
            statuses_needed: true,
        }
    }

    /// Sets whether the caller reads the [`statuses`](Decision::statuses) of an admitted
    /// decision (the layer does when its responses carry rate-limit fields). When it does not, a
    /// store may answer an admitted hit with [`Decision::admitted`] and skip working them out. A
    /// refused hit always carries its statuses: they give the `Retry-After`.
    #[inline]
    #[must_use]
    pub fn statuses_needed(mut self, needed: bool) -> Self {
        self.statuses_needed = needed;
        self
    }

    /// Whether the caller reads an admitted decision's statuses (by default, it does).
    #[inline]
    pub fn needs_statuses(&self) -> bool {
        self.statuses_needed
    }

    /// The rate-limit key (opaque bytes; see [`Key`](super::Key)).
    #[inline]
    pub fn key(&self) -> &'a [u8] {
        self.key
    }

    /// The quotas to charge, all or nothing.
    #[inline]
    pub fn quotas(&self) -> &'a [Quota] {
        self.quotas
    }

    /// How many units this request costs (usually 1).
    #[inline]
    pub fn cost(&self) -> u32 {
        self.cost
    }

    /// When the request arrived.
    pub fn now(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_nanos(self.now_nanos)
    }

    /// When the request arrived, in nanoseconds since the Unix epoch (0 before it, saturated
    /// after the year 2554).
    #[inline]
    pub fn now_nanos(&self) -> u64 {
        self.now_nanos
    }

    /// The fixed window `quota` puts this hit in: `floor(unix_time / window)`.
    pub fn window(&self, quota: &Quota) -> Window {
        Window::from_nanos(self.now_nanos, quota.window())
    }
}

/// `t` in nanoseconds since the Unix epoch: 0 before it, saturated after the year 2554.
pub(super) fn unix_nanos(t: SystemTime) -> u64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => u64::try_from(d.as_nanos()).unwrap_or(u64::MAX),
        Err(_) => 0,
    }
}

/// A clock-aligned fixed window: index `floor(unix_time / length)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    index: u64,
    reset: Duration,
    end_nanos: u64,
}

impl Window {
    /// The window of length `length` containing `now`.
    ///
    /// ```
    /// use std::time::{Duration, UNIX_EPOCH};
    /// use tollgate::rate_limit::Window;
    ///
    /// let w = Window::at(UNIX_EPOCH + Duration::from_secs(7_250), Duration::from_secs(3600));
    /// assert_eq!(w.index(), 2);
    /// assert_eq!(w.reset(), Duration::from_secs(3_550));
    /// ```
    pub fn at(now: SystemTime, length: Duration) -> Self {
        Self::from_nanos(unix_nanos(now), length)
    }

    fn from_nanos(now: u64, length: Duration) -> Self {
        // u64 nanoseconds cover the years 1970 to 2554 and windows up to 584 years; u64
        // division is several times cheaper than u128 on the hot path.
        let length = u64::try_from(length.as_nanos()).unwrap_or(u64::MAX).max(1);
        let index = now / length;
        let end = (index * length).saturating_add(length);
        Self {
            index,
            reset: Duration::from_nanos(end - now),
            end_nanos: end,
        }
    }

    /// The window's index since the Unix epoch.
    pub fn index(&self) -> u64 {
        self.index
    }

    /// Time left until the window ends (never zero).
    pub fn reset(&self) -> Duration {
        self.reset
    }

    /// The window's end, nanoseconds since the Unix epoch.
    pub fn end_nanos(&self) -> u64 {
        self.end_nanos
    }
}

/// The state of one quota after a hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimitStatus {
    limit: u64,
    remaining: u64,
    // Nanoseconds: keeps a `Decision` small (it is moved a few times per request).
    reset: u64,
    exceeded: bool,
}

impl LimitStatus {
    /// `remaining` of `limit` units left, the quota resetting in `reset`; `exceeded` when this
    /// quota refused the hit.
    pub fn new(limit: u64, remaining: u64, reset: Duration, exceeded: bool) -> Self {
        Self {
            limit,
            remaining,
            reset: u64::try_from(reset.as_nanos()).unwrap_or(u64::MAX),
            exceeded,
        }
    }

    /// As [`new`](Self::new), the reset in nanoseconds (what the in-memory store has at hand).
    pub(crate) const fn from_nanos(limit: u64, remaining: u64, reset: u64, exceeded: bool) -> Self {
        Self {
            limit,
            remaining,
            reset,
            exceeded,
        }
    }

    /// The quota's limit.
    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// Units left in the current window (after this hit, if it was admitted).
    pub fn remaining(&self) -> u64 {
        self.remaining
    }

    /// Time until the quota resets (fixed window: the window's end).
    pub fn reset(&self) -> Duration {
        Duration::from_nanos(self.reset)
    }

    /// Whether this quota refused the hit.
    pub fn exceeded(&self) -> bool {
        self.exceeded
    }
}

/// A store's answer: admitted or not, and every quota's state.
#[derive(Debug, Clone, Copy)]
pub struct Decision {
    allowed: bool,
    len: u8,
    statuses: [LimitStatus; MAX_LIMITS],
}

impl Decision {
    /// A decision over `statuses` (one per quota of the hit, in order). The hit is admitted
    /// when no status is [`exceeded`](LimitStatus::exceeded).
    ///
    /// # Panics
    ///
    /// If `statuses` holds more than [`MAX_LIMITS`] entries.
    pub fn new(statuses: &[LimitStatus]) -> Self {
        assert!(statuses.len() <= MAX_LIMITS, "at most {MAX_LIMITS} limits");
        let mut all = [LimitStatus::new(0, 0, Duration::ZERO, false); MAX_LIMITS];
        all[..statuses.len()].copy_from_slice(statuses);
        Self {
            allowed: !statuses.iter().any(LimitStatus::exceeded),
            len: statuses.len() as u8,
            statuses: all,
        }
    }

    /// An admitted hit reported without statuses, for a [`Hit`] whose caller does not
    /// [need them](Hit::needs_statuses).
    #[inline]
    pub fn admitted() -> Self {
        Self {
            allowed: true,
            len: 0,
            statuses: [LimitStatus::from_nanos(0, 0, 0, false); MAX_LIMITS],
        }
    }

    /// A decision over the first `len` of `statuses`, built in place (no copy of the array).
    pub(crate) fn from_array(statuses: [LimitStatus; MAX_LIMITS], len: usize) -> Self {
        let len = len.min(MAX_LIMITS);
        Self {
            allowed: !statuses[..len].iter().any(LimitStatus::exceeded),
            len: len as u8,
            statuses,
        }
    }

    /// Whether the hit was admitted (and charged).
    #[inline]
    pub fn is_allowed(&self) -> bool {
        self.allowed
    }

    /// One status per quota of the hit, in order.
    #[inline]
    pub fn statuses(&self) -> &[LimitStatus] {
        &self.statuses[..usize::from(self.len)]
    }

    /// For a refused hit, how long until every exceeded quota has reset.
    pub fn retry_after(&self) -> Option<Duration> {
        if self.allowed {
            return None;
        }
        self.statuses()
            .iter()
            .filter(|s| s.exceeded)
            .map(LimitStatus::reset)
            .max()
    }
}

/// Why a store could not decide.
#[derive(Debug)]
pub struct StoreError {
    kind: StoreErrorKind,
    message: Cow<'static, str>,
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

/// The kind of a [`StoreError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreErrorKind {
    /// The store is unreachable or answered with an error.
    Unavailable,
    /// The store did not answer within the layer's timeout.
    Timeout,
    /// The store tracks as many keys as it may and cannot take a new one.
    Full,
}

impl StoreError {
    /// The store failed; `source` says why (must not contain secrets).
    pub fn unavailable(source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self {
            kind: StoreErrorKind::Unavailable,
            message: Cow::Borrowed("rate-limit store unavailable"),
            source: Some(source.into()),
        }
    }

    /// The store did not answer in time.
    pub fn timeout() -> Self {
        Self {
            kind: StoreErrorKind::Timeout,
            message: Cow::Borrowed("rate-limit store timed out"),
            source: None,
        }
    }

    /// The store is at its key cap.
    pub fn full() -> Self {
        Self {
            kind: StoreErrorKind::Full,
            message: Cow::Borrowed("rate-limit store is tracking its maximum number of keys"),
            source: None,
        }
    }

    /// What went wrong.
    pub fn kind(&self) -> StoreErrorKind {
        self.kind
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for StoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// What the layer does when the store errors or times out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum OnStoreError {
    /// Refuse the request with 503 / gRPC `UNAVAILABLE` (the default: a limiter that cannot
    /// count does not let traffic through).
    #[default]
    FailClosed,
    /// Let the request through unlimited (availability over enforcement).
    FailOpen,
}
