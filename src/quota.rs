//! Request quotas: how many requests in how long a window.

use std::fmt;
use std::num::NonZeroU64;
use std::time::Duration;

/// A number of requests allowed per window, e.g. seed 000's "1000 per hour".
///
/// Units are what they say: `Quota::per_hour(1000)` allows 1000 requests per hour. The
/// `per_*` constructors are for constants (no `unwrap`; usable in `const`): a zero limit is a
/// programming error and panics. A quota read from configuration goes through
/// [`Quota::new`], which answers `None` for zero.
///
/// ```
/// use std::time::Duration;
/// use tollgate::Quota;
///
/// const PER_KEY: Quota = Quota::per_hour(1000);
/// assert_eq!(PER_KEY.limit(), 1000);
/// assert_eq!(PER_KEY.window(), Duration::from_secs(3600));
/// assert!(Quota::new(0, Duration::from_secs(60)).is_none());
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Quota {
    limit: NonZeroU64,
    window: Duration,
}

impl Quota {
    /// `limit` requests per `window`. `None` if either is zero: for values read at run time.
    pub fn new(limit: u64, window: Duration) -> Option<Self> {
        if window.is_zero() {
            return None;
        }
        Some(Self {
            limit: NonZeroU64::new(limit)?,
            window,
        })
    }

    const fn per(limit: u64, window: Duration) -> Self {
        match NonZeroU64::new(limit) {
            Some(limit) => Self { limit, window },
            None => panic!(
                "a quota of zero requests admits nothing: use Quota::new for run-time values"
            ),
        }
    }

    /// `limit` requests per second.
    ///
    /// # Panics
    ///
    /// If `limit` is zero (at compile time in a `const`).
    pub const fn per_second(limit: u64) -> Self {
        Self::per(limit, Duration::from_secs(1))
    }

    /// `limit` requests per minute.
    ///
    /// # Panics
    ///
    /// If `limit` is zero (at compile time in a `const`).
    pub const fn per_minute(limit: u64) -> Self {
        Self::per(limit, Duration::from_secs(60))
    }

    /// `limit` requests per hour.
    ///
    /// # Panics
    ///
    /// If `limit` is zero (at compile time in a `const`).
    pub const fn per_hour(limit: u64) -> Self {
        Self::per(limit, Duration::from_secs(3600))
    }

    /// `limit` requests per day.
    ///
    /// # Panics
    ///
    /// If `limit` is zero (at compile time in a `const`).
    pub const fn per_day(limit: u64) -> Self {
        Self::per(limit, Duration::from_secs(86_400))
    }

    /// The number of requests allowed in one window.
    pub fn limit(&self) -> u64 {
        self.limit.get()
    }

    /// The window's length.
    pub fn window(&self) -> Duration {
        self.window
    }
}

impl fmt::Debug for Quota {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Quota({} per {:?})", self.limit, self.window)
    }
}
