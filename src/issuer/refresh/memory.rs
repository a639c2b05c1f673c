//! `InMemoryRefreshStore`: a `RefreshTokenStore` in a mutex-guarded map.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use super::record::{RefreshRecord, RefreshState};
use super::store::{RefreshTokenStore, RotateOutcome, StoreError};
use super::token::{FamilyId, TokenDigest};

/// A [`RefreshTokenStore`] in memory, for tests and single-instance deployments.
///
/// One mutex makes every rotation atomic (it is never held across an `.await`: the store
/// does no I/O). Records whose expiry has passed are swept whenever the map has doubled since
/// the last sweep (and holds at least 1,024 records), so memory stays within about twice the
/// live tokens and each insert costs amortized O(1), not a scan of the whole map.
#[derive(Default)]
pub struct InMemoryRefreshStore {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    records: HashMap<TokenDigest, RefreshRecord>,
    families: HashMap<FamilyId, Vec<TokenDigest>>,
    /// How many records the last sweep left: the next one runs at twice that.
    swept_to: usize,
}

/// Below this many records, no sweep: a scan of a small map is not worth its time.
const SWEEP_FLOOR: usize = 1024;

impl State {
    fn add(&mut self, record: RefreshRecord, now: SystemTime) {
        if self.records.len() >= SWEEP_FLOOR.max(2 * self.swept_to) {
            self.sweep(now);
        }
        self.families
            .entry(record.family.clone())
            .or_default()
            .push(record.digest);
        self.records.insert(record.digest, record);
    }

    fn sweep(&mut self, now: SystemTime) {
        let records = &mut self.records;
        records.retain(|_, r| r.expires_at > now);
        self.families.retain(|_, digests| {
            digests.retain(|d| records.contains_key(d));
            !digests.is_empty()
        });
        self.swept_to = self.records.len();
    }

    fn family(&self, family: &FamilyId) -> Vec<RefreshRecord> {
        let mut out: Vec<_> = self
            .families
            .get(family)
            .into_iter()
            .flatten()
            .filter_map(|d| self.records.get(d).cloned())
            .collect();
        out.sort_by_key(|r| r.created_at);
        out
    }

    fn revoke(&mut self, family: &FamilyId) -> Vec<RefreshRecord> {
        for digest in self.families.get(family).into_iter().flatten() {
            if let Some(record) = self.records.get_mut(digest) {
                record.state = RefreshState::Revoked;
            }
        }
        self.family(family)
    }
}

impl InMemoryRefreshStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many records it holds (rotated and revoked ones included, until they expire).
    pub fn len(&self) -> usize {
        self.lock().records.len()
    }

    /// Whether it holds no record.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn rotate_now(
        &self,
        presented: &TokenDigest,
        successor: RefreshRecord,
        now: SystemTime,
        grace: Duration,
    ) -> RotateOutcome {
        let mut state = self.lock();
        let Some(old) = state.records.get(presented) else {
            return RotateOutcome::Unknown;
        };
        if old.state == RefreshState::Revoked {
            return RotateOutcome::Revoked;
        }
        if old.expires_at <= now {
            return RotateOutcome::Expired;
        }
        let family = old.family.clone();
        match old.state {
            RefreshState::Active => {
                let mut successor = successor;
                successor.family = family;
                successor.state = RefreshState::Active;
                if let Some(old) = state.records.get_mut(presented) {
                    old.state = RefreshState::Rotated {
                        at: now,
                        successor: successor.digest,
                        grace_used: false,
                    };
                }
                state.add(successor.clone(), now);
                RotateOutcome::Rotated(successor)
            }
            RefreshState::Rotated {
                at,
                successor: next,
                grace_used,
            } => {
                let within = !grace_used && super::before(now, at, grace);
                let next = state
                    .records
                    .get(&next)
                    .filter(|n| n.is_usable(now))
                    .cloned();
                match next {
                    Some(next) if within => {
                        if let Some(old) = state.records.get_mut(presented) {
                            old.state = RefreshState::Rotated {
                                at,
                                successor: next.digest,
                                grace_used: true,
                            };
                        }
                        RotateOutcome::ReusedWithinGrace(next)
                    }
                    _ => RotateOutcome::Reused(state.revoke(&family)),
                }
            }
            RefreshState::Revoked => RotateOutcome::Revoked,
        }
    }
}

impl RefreshTokenStore for InMemoryRefreshStore {
    async fn find(&self, digest: &TokenDigest) -> Result<Option<RefreshRecord>, StoreError> {
        Ok(self.lock().records.get(digest).cloned())
    }

    async fn insert(&self, record: RefreshRecord) -> Result<(), StoreError> {
        let mut state = self.lock();
        if state.records.contains_key(&record.digest) {
            return Err(StoreError::new("duplicate refresh-token digest"));
        }
        let now = record.created_at;
        state.add(record, now);
        Ok(())
    }

    async fn rotate(
        &self,
        presented: &TokenDigest,
        successor: RefreshRecord,
        now: SystemTime,
        grace: Duration,
    ) -> Result<RotateOutcome, StoreError> {
        Ok(self.rotate_now(presented, successor, now, grace))
    }

    async fn revoke_family(&self, family: &FamilyId) -> Result<Vec<RefreshRecord>, StoreError> {
        Ok(self.lock().revoke(family))
    }

    async fn family(&self, family: &FamilyId) -> Result<Vec<RefreshRecord>, StoreError> {
        Ok(self.lock().family(family))
    }
}

impl fmt::Debug for InMemoryRefreshStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InMemoryRefreshStore")
            .field("records", &self.len())
            .finish()
    }
}
