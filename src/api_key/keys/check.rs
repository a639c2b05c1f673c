//! The request path: format, checksum, cache, then at most one store lookup per digest.

use std::time::{Duration, SystemTime};

use super::{ApiKeys, RETRY_AFTER};
use crate::api_key::cache::{Entry, KeyCache, State};
use crate::api_key::format::{KeyDigest, Parsed, legacy_digest};
use crate::api_key::record::KeyStatus;
use crate::api_key::store::{KeyStore, StoreError};
use crate::identity::AppIdentity;
use crate::rejection::{Holder, Rejection, RejectionKind};
use crate::usage::Outcome;

impl<K: KeyStore> ApiKeys<K> {
    /// The synchronous part of a check: format, checksum, digest, cache.
    #[inline]
    pub(crate) fn check(&self, candidate: &[u8]) -> Check {
        let cache = &self.inner.cache;
        let now = self.now();
        // The same bytes this thread served since the last invalidation: their entry, without
        // the format, the checksum or the SHA-256 they already passed.
        let generation = cache.generation();
        let tag = cache.tag(candidate);
        if let Some(entry) = cache.get_tagged(&tag, generation, now) {
            self.inner.metrics.hit();
            return Check::Decided(decide(entry.state, now));
        }
        let format = &self.inner.format;
        let malformed = || Check::Decided(Err(Rejection::new(RejectionKind::MalformedCredential)));
        let Some(parsed) = format
            .parse(candidate)
            .or_else(|| self.inner.foreign.iter().find_map(|f| f.parse(candidate)))
        else {
            return malformed();
        };
        let cached = cache.get(&parsed.digest, now);
        // A stored key cached after its checksum was checked needs no second check when the
        // digits match: the same digest is the same key body. That spares a keyed checksum's
        // HMAC on every cached request; anything else is checked before any store work.
        let vouched = cached
            .as_ref()
            .is_some_and(|entry| entry.vouches_for(parsed.checksum));
        if !vouched && !format.checksum_holds(candidate, &parsed) {
            return malformed();
        }
        match cached {
            Some(entry) => {
                self.inner.metrics.hit();
                let state = entry.state.clone();
                cache.put_tagged(tag, generation, entry);
                Check::Decided(decide(state, now))
            }
            None => Check::Lookup(Lookup {
                parsed,
                legacy: (self.inner.legacy_digests && !parsed.foreign)
                    .then(|| legacy_digest(candidate)),
            }),
        }
    }

    /// The slow part: one store lookup per digest at a time, shared by every caller waiting
    /// for it, bounded by the lookup timeout.
    pub(crate) fn lookup(
        &self,
        lookup: Lookup,
    ) -> impl Future<Output = Result<AppIdentity, Rejection>> + Send + 'static {
        let Lookup { parsed, legacy } = lookup;
        let digest = parsed.digest;
        let (flight, started) = self.inner.cache.join_or_start(digest, || {
            let this = self.clone();
            KeyCache::boxed(async move { this.fetch(digest, legacy, parsed.checksum).await })
        });
        if started {
            // Drive the lookup on its own task where a runtime exists, so it completes and
            // leaves the in-flight table even if every waiting client disconnects.
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(flight.clone());
            }
        }
        let this = self.clone();
        async move {
            match flight.await {
                Ok(entry) => decide(entry.state, this.now()),
                Err(error) => {
                    log_warn!(%error, "API-key store lookup failed; answering 503");
                    let _ = error;
                    Err(Rejection::new(RejectionKind::Unavailable).with_retry_after(RETRY_AFTER))
                }
            }
        }
    }

    /// Looks `digest` (then its `legacy` digest, if any) up for a key whose checksum digits
    /// `checksum` were checked.
    async fn fetch(
        &self,
        digest: KeyDigest,
        legacy: Option<KeyDigest>,
        checksum: u32,
    ) -> Result<Entry, StoreError> {
        let generation = self.inner.cache.generation();
        self.inner.metrics.miss();
        let started = std::time::Instant::now();
        // Waiting for a turn counts against the timeout: under a flood of unknown keys the
        // store sees at most `max_concurrent_lookups` queries, and a caller a 503 in time.
        let found = with_timeout(self.inner.lookup_timeout, async {
            let _turn = self
                .inner
                .lookups
                .acquire()
                .await
                .map_err(StoreError::unavailable)?;
            match (self.inner.store.find_by_digest(&digest).await?, legacy) {
                (None, Some(legacy)) => self.inner.store.find_by_digest(&legacy).await,
                (found, _) => Ok(found),
            }
        })
        .await;
        self.inner.metrics.lookup(started.elapsed().as_secs_f64());
        let result = found.map(|record| {
            Entry::from_lookup(record.as_ref(), self.now(), checksum, |record| {
                self.inner
                    .usage
                    .as_ref()
                    .map(|usage| usage.counter(record.id(), record.app_id()))
            })
        });
        if let Ok(entry) = &result {
            self.inner.cache.fill(digest, entry.clone(), generation);
        }
        // Unregister only after filling, so a caller arriving in between finds the entry
        // instead of starting a second lookup.
        self.inner.cache.finish_flight(&digest);
        result
    }
}

pub(crate) enum Check {
    Decided(Result<AppIdentity, Rejection>),
    Lookup(Lookup),
}

/// A key to look up in the store: its digest, and its 0.1 digest when those are looked up too.
#[derive(Clone, Copy)]
pub(crate) struct Lookup {
    parsed: Parsed,
    legacy: Option<KeyDigest>,
}

/// The verdict on a cached or fetched entry at `now`, counted in the key's usage.
#[inline]
fn decide(state: State, now: SystemTime) -> Result<AppIdentity, Rejection> {
    let State::Known { identity, status } = state else {
        return Err(Rejection::new(RejectionKind::InvalidCredential));
    };
    let (outcome, refusal) = match status {
        KeyStatus::Revoked => (Outcome::Revoked, Some(RejectionKind::RevokedCredential)),
        KeyStatus::Inactive => (Outcome::Inactive, Some(RejectionKind::InactiveCredential)),
        _ if identity.expires_at().is_some_and(|at| at <= now) => {
            (Outcome::Expired, Some(RejectionKind::ExpiredCredential))
        }
        KeyStatus::AppDisabled => (Outcome::AppDisabled, Some(RejectionKind::AppDisabled)),
        KeyStatus::Active => (Outcome::Authenticated, None),
    };
    if let Some(usage) = identity.usage() {
        usage.count(outcome);
    }
    match refusal {
        Some(kind) => Err(Rejection::new(kind).with_holder(Holder {
            app_id: Some(identity.app_id().to_owned()),
            key_id: Some(identity.key_id().to_owned()),
            ..Holder::default()
        })),
        None => Ok(identity),
    }
}

/// Bounds a store call by `timeout` when a tokio runtime is there to time it; without one (a
/// store driven by another executor) the call runs unbounded rather than panicking.
async fn with_timeout<T>(
    timeout: Duration,
    call: impl Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    if tokio::runtime::Handle::try_current().is_ok() {
        tokio::time::timeout(timeout, call)
            .await
            .unwrap_or_else(|_| Err(StoreError::timeout()))
    } else {
        call.await
    }
}
