//! Refresh tokens: format and digest, stored records, the store trait and an in-memory store.

mod memory;
mod record;
mod store;
mod token;

pub use self::memory::InMemoryRefreshStore;
pub use self::record::{RefreshRecord, RefreshState};
pub use self::store::{RefreshTokenStore, RotateOutcome, StoreError};
pub use self::token::{FamilyId, RefreshToken, TokenDigest};

pub(crate) use self::token::random_bytes;
