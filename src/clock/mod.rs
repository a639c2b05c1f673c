//! An injectable clock.
//!
//! Everything in tollgate that depends on wall-clock time (key expiry, rotation grace periods,
//! cache freshness, rate-limit windows, token lifetimes) reads it through a [`Clock`], so tests
//! can move time forward with a [`ManualClock`] instead of sleeping.
//!
//! ```
//! use std::time::{Duration, UNIX_EPOCH};
//! use tollgate::clock::{Clock, ManualClock};
//!
//! let clock = ManualClock::new(UNIX_EPOCH + Duration::from_secs(1_700_000_000));
//! let start = clock.now();
//! clock.advance(Duration::from_secs(90));
//! assert_eq!(clock.now().duration_since(start).unwrap(), Duration::from_secs(90));
//! ```

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A source of wall-clock time.
pub trait Clock: Send + Sync + 'static {
    /// The current time.
    fn now(&self) -> SystemTime;

    /// The current time in nanoseconds since the Unix epoch (0 before it, saturated after the
    /// year 2554). Per-request code reads this; a clock that keeps nanoseconds anyway overrides
    /// it to skip the round trip through `SystemTime`.
    fn unix_nanos(&self) -> u64 {
        match self.now().duration_since(UNIX_EPOCH) {
            Ok(d) => u64::try_from(d.as_nanos()).unwrap_or(u64::MAX),
            Err(_) => 0,
        }
    }
}

/// The operating system's clock, [`SystemTime::now`].
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[inline]
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// A clock that only moves when told to. Clones share the same time.
///
/// Meant for tests, of tollgate and of the applications using it.
#[derive(Clone)]
pub struct ManualClock {
    nanos_since_epoch: Arc<AtomicU64>,
}

impl ManualClock {
    /// A clock stopped at `now`.
    ///
    /// # Panics
    ///
    /// If `now` is before the Unix epoch or after the year 2554.
    pub fn new(now: SystemTime) -> Self {
        Self {
            nanos_since_epoch: Arc::new(AtomicU64::new(to_nanos(now))),
        }
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        let by = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX);
        self.nanos_since_epoch.fetch_add(by, Ordering::SeqCst);
    }

    /// Sets the clock to `now`.
    ///
    /// # Panics
    ///
    /// As [`ManualClock::new`].
    pub fn set(&self, now: SystemTime) {
        self.nanos_since_epoch
            .store(to_nanos(now), Ordering::SeqCst);
    }
}

impl Default for ManualClock {
    /// A clock stopped at the moment it was made.
    fn default() -> Self {
        Self::new(SystemTime::now())
    }
}

impl Clock for ManualClock {
    fn now(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_nanos(self.unix_nanos())
    }

    fn unix_nanos(&self) -> u64 {
        self.nanos_since_epoch.load(Ordering::SeqCst)
    }
}

impl fmt::Debug for ManualClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ManualClock")
            .field("now", &self.now())
            .finish()
    }
}

fn to_nanos(t: SystemTime) -> u64 {
    let since = t
        .duration_since(UNIX_EPOCH)
        .expect("ManualClock cannot be set before the Unix epoch");
    u64::try_from(since.as_nanos()).expect("ManualClock cannot be set after the year 2554")
}

/// A shared, type-erased clock, as stored in layer configuration.
pub type SharedClock = Arc<dyn Clock>;

/// The default clock of every layer: the system's wall clock, read cheaply where a layer that
/// needs it is built (see [`fast`]'s notes: `SystemTime::now` can cost ~75 ns on a VM, more
/// than the rest of an API-key or rate-limit decision).
#[allow(dead_code)] // unused only when no feature-gated layer is built
pub(crate) fn system() -> SharedClock {
    #[cfg(any(feature = "api-key", feature = "rate-limit", feature = "jwt-base"))]
    return Arc::new(fast::FastWallClock::new());
    #[cfg(not(any(feature = "api-key", feature = "rate-limit", feature = "jwt-base")))]
    return Arc::new(SystemClock);
}

#[cfg(any(feature = "api-key", feature = "rate-limit", feature = "jwt-base"))]
mod fast;
