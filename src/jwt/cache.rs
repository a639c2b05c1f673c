//! The verified-token cache: a token seen before skips base64, JSON and the signature check.
//!
//! Keyed by the exact token text. An entry keeps what the checks that must run on every
//! request need (`exp`, `nbf`, `jti`, the key that verified it) next to the identity and
//! claims handed downstream. Entries expire from the cache at the token's `exp` (plus
//! leeway), and a hit whose key is no longer in the key set is treated as a miss.
//!
//! Hits are served from a small per-thread front table when they can be, as the API-key
//! cache does: moka hashes the whole token (hundreds of bytes) and records every read in a
//! channel all threads share, which is most of a cached check's cost. The front table is never
//! authoritative: what a hit hands back is re-checked per request (the key that verified it
//! is still the key set's, `exp`/`nbf`, revocation), so an entry it keeps a little longer than
//! moka does is harmless.

use std::sync::Arc;
use std::time::{Duration, Instant};

use moka::Expiry;
use moka::sync::Cache;

use super::claims::Claims;
use super::keys::JwtKey;
use crate::identity::UserIdentity;

/// What a verified token leaves in the cache.
pub(crate) struct Entry<C> {
    pub(crate) user: UserIdentity,
    pub(crate) claims: Claims<C>,
    pub(crate) exp: Option<u64>,
    pub(crate) nbf: Option<u64>,
    pub(crate) jti: Option<Box<str>>,
    /// The index of the provider whose key verified it.
    pub(crate) provider: usize,
    pub(crate) key: Arc<JwtKey>,
    /// How long the entry may live, computed at insertion from the token's `exp`.
    pub(crate) ttl: Duration,
}

pub(crate) struct TokenCache<C> {
    /// Tells this cache's entries apart from other caches' in the per-thread front tables.
    id: u64,
    cache: Cache<Box<[u8]>, Arc<Entry<C>>>,
}

struct UntilExpiry;

impl<C> Expiry<Box<[u8]>, Arc<Entry<C>>> for UntilExpiry {
    fn expire_after_create(
        &self,
        _key: &Box<[u8]>,
        value: &Arc<Entry<C>>,
        _created_at: Instant,
    ) -> Option<Duration> {
        Some(value.ttl)
    }
}

impl<C: Send + Sync + 'static> TokenCache<C> {
    pub(crate) fn new(capacity: u64) -> Self {
        Self {
            id: crate::front_table::next_cache_id(),
            cache: Cache::builder()
                .max_capacity(capacity)
                .expire_after(UntilExpiry)
                .build(),
        }
    }

    #[inline]
    pub(crate) fn get(&self, token: &[u8]) -> Option<Arc<Entry<C>>> {
        // Another cache's entry never matches (ids differ), so the downcast cannot fail.
        if let Some(Ok(entry)) = front::get(self.id, token).map(Arc::downcast::<Entry<C>>) {
            return Some(entry);
        }
        let entry = self.cache.get(token)?;
        front::put(self.id, token, entry.clone());
        Some(entry)
    }

    pub(crate) fn insert(&self, token: &[u8], entry: Entry<C>) {
        if !entry.ttl.is_zero() {
            self.cache.insert(Box::from(token), Arc::new(entry));
        }
    }

    /// Forgets `token` in moka and in this thread's front table. Another thread's front
    /// table may still hold it: its next hit fails the same re-check and removes it there.
    pub(crate) fn remove(&self, token: &[u8]) {
        front::remove(self.id, token);
        self.cache.invalidate(token);
    }
}

/// This thread's front table for verified-token caches (see [`crate::front_table`]), keyed by
/// the whole token. Tokens over 2 KiB are not kept here.
mod front {
    use std::any::Any;
    use std::cell::RefCell;
    use std::sync::Arc;

    use crate::front_table::FrontTable;

    const MAX_TOKEN: usize = 2048;

    type Value = Arc<dyn Any + Send + Sync>;

    thread_local! {
        static TABLE: RefCell<FrontTable<Box<[u8]>, Value>> =
            const { RefCell::new(FrontTable::new()) };
    }

    /// The slot of `token`, from its last 8 bytes (signature characters). A client choosing
    /// tokens that share a slot only makes its own lookups fall through to moka.
    fn index(token: &[u8]) -> usize {
        let tail = &token[token.len().saturating_sub(8)..];
        let mut word = [0u8; 8];
        word[..tail.len()].copy_from_slice(tail);
        let hash = u64::from_le_bytes(word).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        // The top bits, well mixed by the multiplication.
        (hash >> 58) as usize
    }

    // `try_with`: a token can be checked while the thread's locals are being torn down.
    pub(super) fn get(cache: u64, token: &[u8]) -> Option<Value> {
        if token.len() > MAX_TOKEN {
            return None;
        }
        TABLE
            .try_with(|table| table.borrow().get(index(token), cache, 0, token))
            .ok()
            .flatten()
    }

    pub(super) fn put(cache: u64, token: &[u8], entry: Value) {
        if token.len() > MAX_TOKEN {
            return;
        }
        let _ = TABLE.try_with(|table| {
            (table.borrow_mut()).put(index(token), cache, 0, token.into(), entry);
        });
    }

    pub(super) fn remove(cache: u64, token: &[u8]) {
        let _ = TABLE.try_with(|table| table.borrow_mut().remove(index(token), cache, token));
    }
}
