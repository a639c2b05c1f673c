//! Request quotas: how many requests in how long a window.

use std::fmt;
use std::num::NonZeroU64;
use std::time::Duration;

/// A number of requests allowed per window, e.g. seed 000's "1000 per hour".
///
/// Units are what they say: `Quota::per_hour(1000)` allows 1000 requests per hour.
///
/// ```
/// use std::time::Duration;
/// use tollgate::Quota;
///
/// let q = Quota::per_hour(1000).unwrap();
/// assert_eq!(q.limit(), 1000);
/// assert_eq!(q.window(), Duration::from_secs(3600));
/// assert!(Quota::per_hour(0).is_none());
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Quota {
    limit: NonZeroU64,
    window: Duration,
}

impl Quota {
    /// `limit` requests per `window`. `None` if either is zero.
    pub fn new(limit: u64, window: Duration) -> Option<Self> {
        if window.is_zero() {
            return None;
        }
        Some(Self {
            limit: NonZeroU64::new(limit)?,
            window,
        })
    }

    /// `limit` requests per second. `None` if `limit` is zero.
    pub fn per_second(limit: u64) -> Option<Self> {
        Self::new(limit, Duration::from_secs(1))
    }

    /// `limit` requests per minute. `None` if `limit` is zero.
    pub fn per_minute(limit: u64) -> Option<Self> {
        Self::new(limit, Duration::from_secs(60))
    }

    /// `limit` requests per hour. `None` if `limit` is zero.
    pub fn per_hour(limit: u64) -> Option<Self> {
        Self::new(limit, Duration::from_secs(3600))
    }

    /// `limit` requests per day. `None` if `limit` is zero.
    pub fn per_day(limit: u64) -> Option<Self> {
        Self::new(limit, Duration::from_secs(86_400))
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
