//! A cheap wall clock: the default of every layer that reads the time per request.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::clock::Clock;

/// How often the cheap clock re-reads the system clock.
const RECALIBRATE_EVERY: u64 = 1_000_000_000;

/// The system's wall clock, read cheaply.
///
/// Every decision needs the wall-clock time (fixed windows are aligned to it, keys expire), and on
/// virtual machines `SystemTime::now` can cost ~75 ns, more than the rest of a decision. This clock reads
/// the CPU's time-stamp counter through `quanta` (~10 ns) and adds an offset to the wall clock
/// that it re-measures once a second (one request a second pays for `SystemTime::now`), so it
/// follows the system clock within that second's drift (microseconds). Where the CPU has no
/// reliable counter, `quanta` falls back to the OS monotonic clock.
pub(crate) struct FastWallClock {
    counter: quanta::Clock,
    base: u64,
    /// Wall-clock nanoseconds minus counter nanoseconds since `base`.
    offset: AtomicI64,
    /// Counter nanoseconds (since `base`) at the last calibration.
    calibrated: AtomicU64,
}

fn wall_nanos() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .ok()
        .and_then(|d| i64::try_from(d.as_nanos()).ok())
        .unwrap_or(0)
}

impl FastWallClock {
    pub(crate) fn new() -> Self {
        let counter = quanta::Clock::new();
        let base = counter.raw();
        Self {
            counter,
            base,
            offset: AtomicI64::new(wall_nanos()),
            calibrated: AtomicU64::new(0),
        }
    }

    fn since_base(&self) -> u64 {
        self.counter.delta_as_nanos(self.base, self.counter.raw())
    }
}

impl Clock for FastWallClock {
    fn now(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_nanos(self.unix_nanos())
    }

    fn unix_nanos(&self) -> u64 {
        let elapsed = self.since_base();
        let last = self.calibrated.load(Ordering::Relaxed);
        if elapsed.wrapping_sub(last) >= RECALIBRATE_EVERY
            && self
                .calibrated
                .compare_exchange(last, elapsed, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            let elapsed = self.since_base();
            let offset = wall_nanos().wrapping_sub(elapsed as i64);
            self.offset.store(offset, Ordering::Relaxed);
            return (elapsed as i64).wrapping_add(offset).max(0) as u64;
        }
        let nanos = (elapsed as i64).wrapping_add(self.offset.load(Ordering::Relaxed));
        nanos.max(0) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_the_system_clock() {
        let clock = FastWallClock::new();
        for _ in 0..1000 {
            let ours = clock.now();
            let system = SystemTime::now();
            let apart = system.duration_since(ours).unwrap_or_else(|e| e.duration());
            assert!(apart < Duration::from_millis(5), "{apart:?}");
        }
    }
}
