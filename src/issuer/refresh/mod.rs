//! Refresh tokens: format and digest, stored records, the store trait and an in-memory store.

mod memory;
mod record;
mod store;
mod token;

pub use self::memory::InMemoryRefreshStore;
pub use self::record::{RefreshRecord, RefreshState};
pub use self::store::{
    BoxRefreshStore, DynRefreshStore, RefreshTokenStore, RotateOutcome, StoreError,
};
pub use self::token::{FamilyId, RefreshToken, TokenDigest};

pub(crate) use self::token::random_bytes;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// `at + by`, or the end of the year 9999 when that would overflow: a lifetime or grace from
/// configuration, however long, never panics.
pub(crate) fn later(at: SystemTime, by: Duration) -> SystemTime {
    at.checked_add(by)
        .unwrap_or_else(|| UNIX_EPOCH + Duration::from_secs(253_402_300_799))
}

/// Whether `now` is before `at + by` (always, when that sum would overflow).
pub(crate) fn before(now: SystemTime, at: SystemTime, by: Duration) -> bool {
    at.checked_add(by).is_none_or(|end| now < end)
}
