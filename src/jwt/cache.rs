//! The verified-token cache: a token seen before skips base64, JSON and the signature check.
//!
//! Keyed by the exact token text. An entry keeps what the checks that must run on every
//! request need (`exp`, `nbf`, `jti`, the key that verified it) next to the identity and
//! claims handed downstream. Entries expire from the cache at the token's `exp` (plus
//! leeway), and a hit whose key is no longer in the key set is treated as a miss.

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
    pub(crate) kid: Option<Box<str>>,
    pub(crate) key: Arc<JwtKey>,
    /// How long the entry may live, computed at insertion from the token's `exp`.
    pub(crate) ttl: Duration,
}

pub(crate) struct TokenCache<C> {
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
            cache: Cache::builder()
                .max_capacity(capacity)
                .expire_after(UntilExpiry)
                .build(),
        }
    }

    #[inline]
    pub(crate) fn get(&self, token: &[u8]) -> Option<Arc<Entry<C>>> {
        self.cache.get(token)
    }

    pub(crate) fn insert(&self, token: &str, entry: Entry<C>) {
        if !entry.ttl.is_zero() {
            self.cache
                .insert(Box::from(token.as_bytes()), Arc::new(entry));
        }
    }

    pub(crate) fn remove(&self, token: &[u8]) {
        self.cache.invalidate(token);
    }
}
