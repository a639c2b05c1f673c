//! Revocation by `jti`: a denylist trait and an in-memory list whose entries expire with
//! the tokens they revoke.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use crate::clock::SharedClock;

/// Answers whether a token id (`jti`) has been revoked. Checked on every request, cached
/// tokens included, so it must answer synchronously and quickly: a denylist kept in a
/// shared store (Redis) should be mirrored locally and updated by subscription.
pub trait Revocation: Send + Sync + 'static {
    /// Whether the token with id `jti` is revoked.
    fn is_revoked(&self, jti: &str) -> bool;
}

impl<F> Revocation for F
where
    F: Fn(&str) -> bool + Send + Sync + 'static,
{
    fn is_revoked(&self, jti: &str) -> bool {
        self(jti)
    }
}

/// An in-memory `jti` denylist. Each entry is kept until the revoked token's own expiry,
/// after which the token is refused as expired anyway; expired entries are swept on insert.
///
/// Lookups take no lock while the list is empty; otherwise one uncontended read lock.
/// Clones share the same list.
#[derive(Clone)]
pub struct RevocationList {
    inner: Arc<Inner>,
}

struct Inner {
    clock: SharedClock,
    len: AtomicUsize,
    entries: RwLock<HashMap<Box<str>, SystemTime>>,
}

impl RevocationList {
    /// An empty list on the system clock.
    pub fn new() -> Self {
        Self::with_clock(crate::clock::system())
    }

    /// An empty list that reads time from `clock`.
    pub fn with_clock(clock: SharedClock) -> Self {
        Self {
            inner: Arc::new(Inner {
                clock,
                len: AtomicUsize::new(0),
                entries: RwLock::new(HashMap::new()),
            }),
        }
    }

    /// Revokes the token with id `jti` until `expires_at` (the token's `exp`, plus the
    /// layer's leeway if you want to be exact).
    pub fn revoke(&self, jti: impl AsRef<str>, expires_at: SystemTime) {
        let now = self.inner.clock.now();
        let mut entries = self
            .inner
            .entries
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        entries.retain(|_, until| *until > now);
        if expires_at > now {
            entries.insert(Box::from(jti.as_ref()), expires_at);
        }
        self.inner.len.store(entries.len(), Ordering::Release);
    }

    /// Revokes every `(jti, expires_at)` of `entries` under one lock and one sweep (a bulk
    /// load, such as a shared denylist's contents at startup).
    pub fn revoke_many<J: AsRef<str>>(&self, entries: impl IntoIterator<Item = (J, SystemTime)>) {
        let now = self.inner.clock.now();
        let mut held = self
            .inner
            .entries
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        held.retain(|_, until| *until > now);
        for (jti, expires_at) in entries {
            if expires_at > now {
                held.insert(Box::from(jti.as_ref()), expires_at);
            }
        }
        self.inner.len.store(held.len(), Ordering::Release);
    }

    /// How many entries are held (expired ones are removed on the next [`revoke`](Self::revoke)).
    pub fn len(&self) -> usize {
        self.inner.len.load(Ordering::Acquire)
    }

    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Default for RevocationList {
    fn default() -> Self {
        Self::new()
    }
}

impl Revocation for RevocationList {
    #[inline]
    fn is_revoked(&self, jti: &str) -> bool {
        if self.inner.len.load(Ordering::Acquire) == 0 {
            return false;
        }
        let entries = self
            .inner
            .entries
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        entries
            .get(jti)
            .is_some_and(|until| *until > self.inner.clock.now())
    }
}

impl fmt::Debug for RevocationList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RevocationList")
            .field("len", &self.len())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;
    use crate::clock::ManualClock;

    #[test]
    fn entries_expire_with_the_token() {
        let clock = ManualClock::new(UNIX_EPOCH + Duration::from_secs(1_000));
        let list = RevocationList::with_clock(Arc::new(clock.clone()));
        assert!(!list.is_revoked("a"));
        list.revoke("a", UNIX_EPOCH + Duration::from_secs(1_100));
        list.revoke("gone", UNIX_EPOCH + Duration::from_secs(900));
        assert!(list.is_revoked("a"));
        assert!(!list.is_revoked("b"));
        assert!(!list.is_revoked("gone"));
        assert_eq!(list.len(), 1);
        clock.advance(Duration::from_secs(101));
        assert!(!list.is_revoked("a"));
        list.revoke("c", UNIX_EPOCH + Duration::from_secs(2_000));
        assert_eq!(list.len(), 1, "the expired entry was swept");
        list.revoke_many([
            ("d", UNIX_EPOCH + Duration::from_secs(2_000)),
            ("old", UNIX_EPOCH + Duration::from_secs(1_000)),
        ]);
        assert!(list.is_revoked("c") && list.is_revoked("d") && !list.is_revoked("old"));
        assert_eq!(list.len(), 2);
    }
}
