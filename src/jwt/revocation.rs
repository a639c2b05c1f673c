//! Revocation by `jti`: a denylist trait, an in-memory list whose entries outlive the tokens
//! they revoke by the JWT layer's leeway, and [`Revoker`], what a token service revokes through.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use crate::clock::SharedClock;

/// Answers whether a token id (`jti`) has been revoked. Checked on every request, cached
/// tokens included, so it must answer synchronously and quickly: a denylist kept in a
/// shared store (Redis) should be mirrored locally and updated by subscription.
pub trait Revocation: Send + Sync + 'static {
    /// Whether the token with id `jti` is revoked.
    fn is_revoked(&self, jti: &str) -> bool;

    /// Called once by [`JwtBuilder::build`](super::JwtBuilder::build) with the layer's leeway.
    /// The layer accepts a token until `exp + leeway`, so a denylist that forgets an entry at
    /// the token's `exp` must keep it at least `leeway` longer. [`RevocationList`] and
    /// `RedisRevocation` keep the largest leeway they are told; the default does nothing (for
    /// a denylist that never forgets, or that already keeps entries long enough).
    fn keep_after_expiry(&self, leeway: Duration) {
        let _ = leeway;
    }
}

impl<F> Revocation for F
where
    F: Fn(&str) -> bool + Send + Sync + 'static,
{
    fn is_revoked(&self, jti: &str) -> bool {
        self(jti)
    }
}

/// Why a [`Revoker`] could not share a revocation (for instance, Redis did not answer).
pub type RevokeError = Box<dyn std::error::Error + Send + Sync>;

/// The future a [`Revoker`] returns.
pub type RevokeFuture<'a> = Pin<Box<dyn Future<Output = Result<(), RevokeError>> + Send + 'a>>;

/// Revokes tokens by `jti`: what [`TokenService`](crate::issuer::TokenService) calls when it
/// revokes a refresh-token family, so that the family's access tokens are refused too.
///
/// [`RevocationList`] revokes in this process; `RedisRevocation` (feature `redis`) revokes
/// here at once and on every instance through Redis.
pub trait Revoker: Send + Sync + 'static {
    /// Revokes every `(jti, exp)` of `entries`, `exp` being the token's own expiry (the
    /// denylist keeps each entry for the JWT layer's leeway after it; see
    /// [`Revocation::keep_after_expiry`]).
    ///
    /// # Errors
    ///
    /// The revocation could not be shared (it may still hold locally).
    fn revoke_many(&self, entries: Vec<(String, SystemTime)>) -> RevokeFuture<'_>;
}

impl<T: Revoker> Revoker for Arc<T> {
    fn revoke_many(&self, entries: Vec<(String, SystemTime)>) -> RevokeFuture<'_> {
        (**self).revoke_many(entries)
    }
}

/// An in-memory `jti` denylist. Each entry is kept until the revoked token's own `exp` plus
/// the largest leeway of the JWT layers it was given to ([`Revocation::keep_after_expiry`],
/// or [`keep_after_expiry`](Self::keep_after_expiry)), after which the layer refuses the
/// token as expired anyway.
///
/// Lookups take no lock while the list is empty; otherwise one uncontended read lock.
/// Entries past their end are swept when the list has doubled since the last sweep, so a
/// revocation costs amortised O(1) under the write lock, and memory stays within about twice
/// the live entries. Clones share the same list.
#[derive(Clone)]
pub struct RevocationList {
    inner: Arc<Inner>,
}

struct Inner {
    clock: SharedClock,
    len: AtomicUsize,
    /// How long an entry outlives its token's `exp`, in seconds.
    margin: AtomicU64,
    table: RwLock<Table>,
}

#[derive(Default)]
struct Table {
    /// `jti` → the token's `exp`.
    entries: HashMap<Box<str>, SystemTime>,
    /// How many entries the last sweep left: the next one runs at twice that.
    swept_to: usize,
}

/// Below this many entries, no sweep.
const SWEEP_FLOOR: usize = 256;

/// Whether an entry for a token expiring at `exp` still holds at `now`: `now < exp + margin`,
/// computed without adding (so no `exp`, however far, can overflow).
fn holds(exp: SystemTime, now: SystemTime, margin: Duration) -> bool {
    match now.duration_since(exp) {
        Ok(past) => past < margin,
        Err(_) => true, // now < exp
    }
}

impl Table {
    fn sweep_if_doubled(&mut self, now: SystemTime, margin: Duration) {
        if self.entries.len() >= SWEEP_FLOOR.max(2 * self.swept_to) {
            self.entries.retain(|_, exp| holds(*exp, now, margin));
            self.swept_to = self.entries.len();
        }
    }
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
                margin: AtomicU64::new(0),
                table: RwLock::new(Table::default()),
            }),
        }
    }

    /// Keeps every entry at least `margin` after its token's `exp` (rounded up to whole
    /// seconds). Only ever raises the margin: the JWT layers given this list raise it to their
    /// leeway when they are built, so you only need this for a list checked by other code.
    pub fn keep_after_expiry(&self, margin: Duration) {
        let secs = margin
            .as_secs()
            .saturating_add(u64::from(margin.subsec_nanos() > 0));
        self.inner.margin.fetch_max(secs, Ordering::AcqRel);
    }

    /// How long entries are kept after their token's `exp`.
    pub fn retention(&self) -> Duration {
        Duration::from_secs(self.inner.margin.load(Ordering::Acquire))
    }

    /// Revokes the token with id `jti` whose `exp` is `expires_at`. The entry is kept until
    /// `expires_at` plus the [retention](Self::retention) (the JWT layer's leeway). A token
    /// already past both is not added: the layer refuses it as expired anyway.
    pub fn revoke(&self, jti: impl AsRef<str>, expires_at: SystemTime) {
        self.revoke_many([(jti, expires_at)]);
    }

    /// Revokes every `(jti, expires_at)` of `entries` under one lock (a bulk load, such as a
    /// shared denylist's contents at startup, or a whole refresh-token family).
    pub fn revoke_many<J: AsRef<str>>(&self, entries: impl IntoIterator<Item = (J, SystemTime)>) {
        let now = self.inner.clock.now();
        let margin = self.retention();
        let mut table = self
            .inner
            .table
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for (jti, expires_at) in entries {
            if holds(expires_at, now, margin) {
                table.entries.insert(Box::from(jti.as_ref()), expires_at);
            }
        }
        table.sweep_if_doubled(now, margin);
        self.inner.len.store(table.entries.len(), Ordering::Release);
    }

    /// How many entries are held (entries past their end are removed by the next sweep).
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
        let table = self
            .inner
            .table
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        table
            .entries
            .get(jti)
            .is_some_and(|exp| holds(*exp, self.inner.clock.now(), self.retention()))
    }

    fn keep_after_expiry(&self, leeway: Duration) {
        RevocationList::keep_after_expiry(self, leeway);
    }
}

impl Revoker for RevocationList {
    fn revoke_many(&self, entries: Vec<(String, SystemTime)>) -> RevokeFuture<'_> {
        RevocationList::revoke_many(self, entries);
        Box::pin(std::future::ready(Ok(())))
    }
}

impl fmt::Debug for RevocationList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RevocationList")
            .field("len", &self.len())
            .field("retention", &self.retention())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use std::time::UNIX_EPOCH;

    use super::*;
    use crate::clock::ManualClock;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn entries_last_until_exp_plus_the_retention() {
        let clock = ManualClock::new(at(1_000));
        let list = RevocationList::with_clock(Arc::new(clock.clone()));
        assert!(!list.is_revoked("a"));
        list.revoke("a", at(1_100));
        list.revoke("gone", at(900));
        assert!(list.is_revoked("a"));
        assert!(!list.is_revoked("b"));
        assert!(!list.is_revoked("gone"));
        assert_eq!(list.len(), 1);
        clock.set(at(1_100));
        assert!(!list.is_revoked("a"), "no retention: ends at exp");

        Revocation::keep_after_expiry(&list, Duration::from_secs(60));
        Revocation::keep_after_expiry(&list, Duration::from_millis(30_500));
        assert_eq!(list.retention(), Duration::from_secs(60), "only raised");
        assert!(list.is_revoked("a"), "kept 60 s after exp");
        clock.set(at(1_159));
        assert!(list.is_revoked("a"));
        list.revoke("late", at(1_120)); // past exp, within the retention: still added
        assert!(list.is_revoked("late"));
        clock.set(at(1_160));
        assert!(!list.is_revoked("a"));
        assert!(list.is_revoked("late"));
    }

    #[test]
    fn far_expiries_do_not_overflow() {
        let list = RevocationList::with_clock(Arc::new(ManualClock::new(at(1_000))));
        list.keep_after_expiry(Duration::MAX);
        assert_eq!(list.retention(), Duration::from_secs(u64::MAX));
        list.revoke("far", at(253_402_300_799));
        list.revoke("old", at(1));
        assert!(list.is_revoked("far") && list.is_revoked("old"));
    }

    #[test]
    fn sweeps_run_when_the_list_doubles() {
        let clock = ManualClock::new(at(1_000));
        let list = RevocationList::with_clock(Arc::new(clock.clone()));
        list.revoke_many((0..SWEEP_FLOOR - 1).map(|i| (i.to_string(), at(1_010))));
        clock.set(at(1_020)); // every entry so far has ended
        list.revoke("live", at(2_000));
        assert_eq!(list.len(), 1, "the floor was reached: swept");
        list.revoke_many((0..10).map(|i| (format!("x{i}"), at(1_030))));
        clock.set(at(1_040));
        list.revoke("more", at(2_000));
        assert_eq!(
            list.len(),
            12,
            "far below twice the last sweep: not swept yet"
        );
        assert!(!list.is_revoked("x1") && list.is_revoked("live") && list.is_revoked("more"));
    }
}
