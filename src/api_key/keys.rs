use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::ConfigError;
use super::cache::{Entry, KeyCache, State};
use super::format::{ApiKey, KeyDigest, KeyFormat, Parsed};
use super::record::{ApiKeyRecord, NewKey};
use super::store::{KeyStore, StoreError};
use crate::clock::SharedClock;
use crate::identity::{AppIdentity, KeySlot};
use crate::rejection::{Rejection, RejectionKind};

/// An application's API keys: generation, lookup through the cache, rotation and revocation.
///
/// One `ApiKeys` serves both the request path ([`ApiKeyLayer`](super::ApiKeyLayer)) and the
/// management operations, so revoking or rotating a key evicts it from the very cache the
/// layer reads. Clones share everything (one `Arc`).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use tollgate::api_key::{ApiKeys, InMemoryKeyStore, NewKey};
///
/// let keys = ApiKeys::builder(InMemoryKeyStore::new()).prefix("sk")?.build();
/// let created = keys.generate(NewKey::new("app-1", "Billing").scopes(["orders:read"])).await?;
/// let plaintext = created.key().expose().to_owned(); // show it to the user once
///
/// let app = keys.verify(&plaintext).await?;
/// assert_eq!(app.app_id(), "app-1");
/// assert!(app.has_scope("orders:read"));
/// # Ok(())
/// # }
/// ```
pub struct ApiKeys<K> {
    inner: Arc<Inner<K>>,
}

struct Inner<K> {
    store: K,
    cache: KeyCache,
    format: KeyFormat,
    clock: SharedClock,
    lookup_timeout: Duration,
    /// Turns for store lookups: at most `max_concurrent_lookups` at once.
    lookups: tokio::sync::Semaphore,
    default_grace: Duration,
    on_invalidate: Option<InvalidateHook>,
}

/// A function told the digest of every key whose state [`ApiKeys`] changed in a way other
/// instances may hold stale (retired, revoked, imported); see [`ApiKeysBuilder::on_invalidate`].
pub type InvalidateHook = Arc<dyn Fn(&KeyDigest) + Send + Sync + 'static>;

impl<K> Clone for ApiKeys<K> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<K> fmt::Debug for ApiKeys<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiKeys")
            .field("prefix", &self.inner.format.prefix())
            .field("lookup_timeout", &self.inner.lookup_timeout)
            .finish_non_exhaustive()
    }
}

/// A newly generated key and its record. The plaintext exists only here.
#[derive(Debug, Clone)]
pub struct GeneratedKey {
    key: ApiKey,
    record: ApiKeyRecord,
}

impl GeneratedKey {
    /// The plaintext key: show it to its owner once, then drop it.
    pub fn key(&self) -> &ApiKey {
        &self.key
    }

    /// The stored record.
    pub fn record(&self) -> &ApiKeyRecord {
        &self.record
    }

    /// Splits into key and record.
    pub fn into_parts(self) -> (ApiKey, ApiKeyRecord) {
        (self.key, self.record)
    }
}

/// The result of [`ApiKeys::rotate`]: the new key, and the keys it retires.
#[derive(Debug, Clone)]
pub struct Rotation {
    generated: GeneratedKey,
    retired: Vec<ApiKeyRecord>,
}

impl Rotation {
    /// The new key.
    pub fn generated(&self) -> &GeneratedKey {
        &self.generated
    }

    /// The replaced keys, with the expiry that ends their grace period.
    pub fn retired(&self) -> &[ApiKeyRecord] {
        &self.retired
    }
}

impl<K: KeyStore> ApiKeys<K> {
    /// Starts configuring keys backed by `store`.
    pub fn builder(store: K) -> ApiKeysBuilder<K> {
        ApiKeysBuilder {
            store,
            format: KeyFormat::default(),
            clock: crate::clock::system(),
            capacity: 100_000,
            positive_ttl: Duration::from_secs(60),
            negative_ttl: Duration::from_secs(10),
            lookup_timeout: Duration::from_secs(2),
            default_grace: Duration::from_secs(24 * 60 * 60),
            on_invalidate: None,
            max_lookups: DEFAULT_MAX_LOOKUPS,
        }
    }

    /// Generates a key for `new`, stores its digest, and returns the plaintext once.
    ///
    /// # Errors
    ///
    /// The store's error.
    pub async fn generate(&self, new: NewKey) -> Result<GeneratedKey, StoreError> {
        let (key, record) = self.prepare(new);
        self.inner.store.insert(record.clone()).await?;
        // A fresh random key: no other instance can have it cached, so nothing to broadcast.
        self.inner.cache.invalidate(record.digest());
        Ok(GeneratedKey { key, record })
    }

    /// Stores a key that was made elsewhere (for example preloaded from configuration).
    /// Only its digest is kept.
    ///
    /// # Errors
    ///
    /// The store's error.
    pub async fn import(&self, key: &ApiKey, new: NewKey) -> Result<ApiKeyRecord, StoreError> {
        self.import_digest(key.digest(), key.masked(), new).await
    }

    /// Stores a key known only by its digest (hex in configuration, say) and a display hint.
    ///
    /// # Errors
    ///
    /// The store's error.
    pub async fn import_digest(
        &self,
        digest: KeyDigest,
        hint: impl Into<String>,
        new: NewKey,
    ) -> Result<ApiKeyRecord, StoreError> {
        let record = new.into_record(new_key_id(), digest, hint.into(), self.now());
        self.inner.store.insert(record.clone()).await?;
        self.evict(&digest);
        Ok(record)
    }

    /// Replaces the application's key in `new`'s slot: the new key works at once, and the old
    /// ones keep working for `grace`, then expire. A zero grace retires them immediately
    /// (seed 001: "generating a new primary key invalidates the previous key of the same type").
    ///
    /// # Errors
    ///
    /// The store's error; nothing changes then.
    pub async fn rotate(&self, new: NewKey, grace: Duration) -> Result<Rotation, StoreError> {
        // A grace past the year 9999 (what every store, PostgreSQL's `timestamptz` included,
        // holds) keeps the old keys until then.
        let retire_at = self
            .now()
            .checked_add(grace)
            .map_or_else(far_future, |at| at.min(far_future()));
        let (key, record) = self.prepare(new);
        let retired = self.inner.store.rotate(record.clone(), retire_at).await?;
        for old in &retired {
            self.evict(old.digest());
        }
        self.inner.cache.invalidate(record.digest());
        Ok(Rotation {
            generated: GeneratedKey { key, record },
            retired,
        })
    }

    /// [`rotate`](Self::rotate) with the configured default grace period (24 hours unless set).
    ///
    /// # Errors
    ///
    /// The store's error.
    pub async fn rotate_with_default_grace(&self, new: NewKey) -> Result<Rotation, StoreError> {
        self.rotate(new, self.inner.default_grace).await
    }

    /// Revokes key `key_id` now, here and in this process's cache. Returns whether it existed.
    ///
    /// # Errors
    ///
    /// The store's error.
    pub async fn revoke(&self, key_id: &str) -> Result<bool, StoreError> {
        let revoked = self.inner.store.revoke(key_id).await?;
        if let Some(record) = &revoked {
            self.evict(record.digest());
        }
        Ok(revoked.is_some())
    }

    /// The application's keys, newest first. Records hold a masked hint, never the key.
    ///
    /// # Errors
    ///
    /// The store's error.
    pub async fn list(&self, app_id: &str) -> Result<Vec<ApiKeyRecord>, StoreError> {
        self.inner.store.list(app_id).await
    }

    /// The key currently in `slot` for `app_id` that is usable now, if any (newest first).
    ///
    /// # Errors
    ///
    /// The store's error.
    pub async fn current(
        &self,
        app_id: &str,
        slot: KeySlot,
    ) -> Result<Option<ApiKeyRecord>, StoreError> {
        let now = self.now();
        Ok(self
            .list(app_id)
            .await?
            .into_iter()
            .find(|r| r.slot() == slot && r.is_usable_at(now)))
    }

    /// Checks a plaintext key the way the layer does (format, cache, store) outside a tower
    /// stack.
    ///
    /// # Errors
    ///
    /// The same [`Rejection`] the layer would answer with.
    pub async fn verify(&self, key: &str) -> Result<AppIdentity, Rejection> {
        match self.check(key.as_bytes()) {
            Check::Decided(decision) => decision,
            Check::Lookup(parsed) => self.lookup(parsed).await,
        }
    }

    /// Evicts `digest` from this process's cache (for invalidation messages from other nodes).
    /// Unlike revoking or rotating, this does not call the
    /// [`on_invalidate`](ApiKeysBuilder::on_invalidate) hook, so a message received is never
    /// echoed back.
    pub fn invalidate(&self, digest: &KeyDigest) {
        self.inner.cache.invalidate(digest);
    }

    /// Empties this process's cache, so every key is looked up again (for an invalidation
    /// channel that lost messages, say after a reconnect). Does not call the
    /// [`on_invalidate`](ApiKeysBuilder::on_invalidate) hook.
    pub fn invalidate_all(&self) {
        self.inner.cache.invalidate_all();
    }

    /// The number of entries in the cache (positive and negative).
    pub fn cached_entries(&self) -> u64 {
        self.inner.cache.entry_count()
    }

    /// The key format.
    pub fn format(&self) -> &KeyFormat {
        &self.inner.format
    }

    /// The store.
    pub fn store(&self) -> &K {
        &self.inner.store
    }

    /// The synchronous part of a check: format, checksum, digest, cache.
    #[inline]
    pub(crate) fn check(&self, candidate: &[u8]) -> Check {
        let format = &self.inner.format;
        let malformed = || Check::Decided(Err(Rejection::new(RejectionKind::MalformedCredential)));
        let Some(parsed) = format.parse(candidate) else {
            return malformed();
        };
        let now = self.now();
        let cached = self.inner.cache.get(&parsed.digest, now);
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
            Some(entry) => Check::Decided(decide(entry.state, now)),
            None => Check::Lookup(parsed),
        }
    }

    /// The slow part: one store lookup per digest at a time, shared by every caller waiting
    /// for it, bounded by the lookup timeout.
    pub(crate) fn lookup(
        &self,
        parsed: Parsed,
    ) -> impl Future<Output = Result<AppIdentity, Rejection>> + Send + 'static {
        let digest = parsed.digest;
        let (flight, started) = self.inner.cache.join_or_start(digest, || {
            let this = self.clone();
            KeyCache::boxed(async move { this.fetch(digest, parsed.checksum).await })
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

    /// Looks `digest` up for a key whose checksum digits `checksum` were checked.
    async fn fetch(&self, digest: KeyDigest, checksum: u32) -> Result<Entry, StoreError> {
        let generation = self.inner.cache.generation();
        // Waiting for a turn counts against the timeout: under a flood of unknown keys the
        // store sees at most `max_concurrent_lookups` queries, and a caller a 503 in time.
        let found = with_timeout(self.inner.lookup_timeout, async {
            let _turn = self
                .inner
                .lookups
                .acquire()
                .await
                .map_err(StoreError::unavailable)?;
            self.inner.store.find_by_digest(&digest).await
        })
        .await;
        let result = found.map(|record| Entry::from_lookup(record.as_ref(), self.now(), checksum));
        if let Ok(entry) = &result {
            self.inner.cache.fill(digest, entry.clone(), generation);
        }
        // Unregister only after filling, so a caller arriving in between finds the entry
        // instead of starting a second lookup.
        self.inner.cache.finish_flight(&digest);
        result
    }

    /// Evicts `digest` after a write of ours, and tells the invalidation hook (other nodes).
    fn evict(&self, digest: &KeyDigest) {
        self.inner.cache.invalidate(digest);
        if let Some(hook) = &self.inner.on_invalidate {
            hook(digest);
        }
    }

    fn prepare(&self, new: NewKey) -> (ApiKey, ApiKeyRecord) {
        let key = self.inner.format.generate();
        let record = new.into_record(new_key_id(), key.digest(), key.masked(), self.now());
        (key, record)
    }

    #[inline]
    fn now(&self) -> SystemTime {
        self.inner.clock.now()
    }
}

pub(crate) enum Check {
    Decided(Result<AppIdentity, Rejection>),
    Lookup(Parsed),
}

/// The verdict on a cached or fetched entry at `now`.
#[inline]
fn decide(state: State, now: SystemTime) -> Result<AppIdentity, Rejection> {
    match state {
        State::Unknown => Err(Rejection::new(RejectionKind::InvalidCredential)),
        State::Known { active: false, .. } => Err(Rejection::new(RejectionKind::RevokedCredential)),
        State::Known { identity, .. } if identity.expires_at().is_some_and(|at| at <= now) => {
            Err(Rejection::new(RejectionKind::ExpiredCredential))
        }
        State::Known { identity, .. } => Ok(identity),
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

/// The latest time used for "never before this": the year 9999 (PostgreSQL's `timestamptz`
/// and every `SystemTime` hold it).
fn far_future() -> SystemTime {
    std::time::UNIX_EPOCH + Duration::from_secs(253_402_300_799)
}

/// Store lookups allowed at once unless configured.
const DEFAULT_MAX_LOOKUPS: usize = 16;

/// What a 503 for a failed or crowded lookup asks the client to wait.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// A fresh public key id, `key_` and 24 hex digits of randomness.
fn new_key_id() -> String {
    let mut bytes = [0u8; 12];
    getrandom::fill(&mut bytes).expect("the OS random number generator failed");
    let mut id = String::with_capacity(28);
    id.push_str("key_");
    for b in bytes {
        id.push_str(&format!("{b:02x}"));
    }
    id
}

/// Configures [`ApiKeys`]; from [`ApiKeys::builder`].
#[must_use]
pub struct ApiKeysBuilder<K> {
    store: K,
    format: KeyFormat,
    clock: SharedClock,
    capacity: u64,
    positive_ttl: Duration,
    negative_ttl: Duration,
    lookup_timeout: Duration,
    default_grace: Duration,
    on_invalidate: Option<InvalidateHook>,
    max_lookups: usize,
}

impl<K: KeyStore> ApiKeysBuilder<K> {
    /// The prefix of generated keys (default `tg`).
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidPrefix`]; see [`KeyFormat::new`].
    pub fn prefix(mut self, prefix: impl Into<String>) -> Result<Self, ConfigError> {
        self.format = self.format.renamed(prefix)?;
        Ok(self)
    }

    /// The key format: its prefix and checksum (see [`KeyFormat::with_checksum_secret`]).
    pub fn key_format(mut self, format: KeyFormat) -> Self {
        self.format = format;
        self
    }

    /// Keys carry a checksum keyed with `secret` (at least 32 bytes): a key made up without it
    /// is refused before any cache or store work. See [`KeyFormat::with_checksum_secret`] for
    /// moving an existing deployment and for changing the secret.
    ///
    /// # Errors
    ///
    /// [`ConfigError::WeakChecksumSecret`] for a secret shorter than 32 bytes.
    pub fn checksum_secret(mut self, secret: impl AsRef<[u8]>) -> Result<Self, ConfigError> {
        self.format = self.format.with_checksum_secret(secret)?;
        Ok(self)
    }

    /// At most this many store lookups run at once (default 16); a cache miss beyond them
    /// waits for a turn within the [lookup timeout](Self::lookup_timeout), then gets 503 with
    /// `Retry-After`. However many unknown keys clients send, the store sees at most this many
    /// queries at a time, so it keeps answering the lookups that matter; keys already cached
    /// never wait. Size it at or below the store's connection pool.
    ///
    /// # Panics
    ///
    /// If `lookups` is 0.
    pub fn max_concurrent_lookups(mut self, lookups: usize) -> Self {
        assert!(lookups > 0, "at least one store lookup must be allowed");
        self.max_lookups = lookups;
        self
    }

    /// The clock used for expiry, grace periods and cache freshness.
    pub fn clock(mut self, clock: impl crate::clock::Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// The most keys the cache holds (default 100,000). Past that moka evicts by TinyLFU, which
    /// also keeps a spray of one-off unknown keys from pushing out keys in use.
    pub fn cache_capacity(mut self, entries: u64) -> Self {
        self.capacity = entries;
        self
    }

    /// How long a found key is served from the cache (default 60 s). Revocation and rotation
    /// through these `ApiKeys` evict at once; this bounds how long a change made elsewhere
    /// (another process writing the store) takes to be seen.
    pub fn positive_ttl(mut self, ttl: Duration) -> Self {
        self.positive_ttl = ttl;
        self
    }

    /// How long a well-formed but unknown key is remembered as unknown (default 10 s), so
    /// retries of a wrong key don't each reach the store.
    pub fn negative_ttl(mut self, ttl: Duration) -> Self {
        self.negative_ttl = ttl;
        self
    }

    /// The most a store lookup may take before the request is answered 503 (default 2 s).
    pub fn lookup_timeout(mut self, timeout: Duration) -> Self {
        self.lookup_timeout = timeout;
        self
    }

    /// The grace period of [`ApiKeys::rotate_with_default_grace`] (default 24 h, as seed 000).
    pub fn default_grace(mut self, grace: Duration) -> Self {
        self.default_grace = grace;
        self
    }

    /// Calls `hook` with the digest of every key whose stored state these `ApiKeys` changed in
    /// a way another instance's cache could be holding stale: keys retired by
    /// [`rotate`](ApiKeys::rotate), revoked by [`revoke`](ApiKeys::revoke), or imported (a
    /// known key may have been tried, and cached as unknown, before). It is called after the
    /// store accepted the write. Freshly generated keys are not announced: nobody can have
    /// looked them up yet.
    ///
    /// This is how other instances learn of a change at once instead of after their positive
    /// TTL: the hook broadcasts the digest, and every instance receiving it calls
    /// [`ApiKeys::invalidate`]. With the `redis` feature,
    /// `tollgate::api_key::redis::RedisInvalidation::hook` is such a hook.
    ///
    /// The hook runs synchronously on the caller's task: hand the digest to a channel or a
    /// spawned task rather than doing I/O in it. Digests are not secret (they are what the
    /// store keeps), but they identify keys: keep them out of logs.
    pub fn on_invalidate(mut self, hook: InvalidateHook) -> Self {
        self.on_invalidate = Some(hook);
        self
    }

    /// Finishes the configuration.
    pub fn build(self) -> ApiKeys<K> {
        ApiKeys {
            inner: Arc::new(Inner {
                cache: KeyCache::new(self.capacity, self.positive_ttl, self.negative_ttl),
                store: self.store,
                format: self.format,
                clock: self.clock,
                lookup_timeout: self.lookup_timeout,
                lookups: tokio::sync::Semaphore::new(self.max_lookups),
                default_grace: self.default_grace,
                on_invalidate: self.on_invalidate,
            }),
        }
    }
}

impl<K> fmt::Debug for ApiKeysBuilder<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiKeysBuilder")
            .field("prefix", &self.format.prefix())
            .field("capacity", &self.capacity)
            .field("positive_ttl", &self.positive_ttl)
            .field("negative_ttl", &self.negative_ttl)
            .field("lookup_timeout", &self.lookup_timeout)
            .field("max_concurrent_lookups", &self.max_lookups)
            .field(
                "on_invalidate",
                &self.on_invalidate.as_ref().map(|_| "<hook>"),
            )
            .finish_non_exhaustive()
    }
}
