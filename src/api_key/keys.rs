use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::cache::KeyCache;
use super::format::{ApiKey, ForeignKeyFormat, KeyDigest, KeyFormat};
use super::record::{ApiKeyRecord, NewKey};
use super::store::{KeyStore, StoreError};
use crate::clock::SharedClock;
use crate::identity::{AppIdentity, KeySlot};
use crate::observe::metrics::KeyCache as CacheMetrics;
use crate::rejection::Rejection;
use crate::usage::UsageRegistry;

mod apps;
mod builder;
mod check;
#[cfg(test)]
mod tests;
mod usage;

pub use self::builder::ApiKeysBuilder;
pub(crate) use self::check::Check;
pub use self::usage::UsageFlush;

/// An application's API keys: generation, lookup through the cache, rotation and revocation.
///
/// One `ApiKeys` serves both the request path ([`ApiKeyLayer`](super::ApiKeyLayer)) and the
/// management operations, so revoking or rotating a key evicts it from the very cache the
/// layer reads. Clones share everything (one `Arc`).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use tollgate::api_key::{ApiKeys, InMemoryKeyStore, KeyFormat, NewKey};
///
/// let keys = ApiKeys::builder(InMemoryKeyStore::new())
///     .key_format(KeyFormat::new("sk")?)
///     .build();
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
    /// Told of every key whose state these `ApiKeys` changed (other instances' caches).
    on_invalidate: Vec<InvalidateHook>,
    /// Formats of keys made elsewhere, accepted next to `format`.
    foreign: Vec<ForeignKeyFormat>,
    /// On a store miss for a key of `format`, also look up its 0.1 digest.
    legacy_digests: bool,
    /// Every key's usage counters, when usage is tracked.
    usage: Option<UsageRegistry>,
    metrics: CacheMetrics,
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
            on_invalidate: Vec::new(),
            max_lookups: DEFAULT_MAX_LOOKUPS,
            foreign: Vec::new(),
            legacy_digests: false,
            track_usage: false,
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

    /// Stores a key that was made elsewhere (preloaded from configuration, or an existing key
    /// of another system). Only its digest is kept.
    ///
    /// # Errors
    ///
    /// [`StoreErrorKind::Invalid`](super::StoreErrorKind::Invalid) for a key the layer would
    /// never accept: not a well-formed key of the crate's format (checksum included) nor of an
    /// [accepted foreign format](ApiKeysBuilder::accept_format). Otherwise the store's error.
    pub async fn import(&self, key: &ApiKey, new: NewKey) -> Result<ApiKeyRecord, StoreError> {
        if !self.accepts(key.expose().as_bytes()) {
            return Err(StoreError::invalid(
                "the key matches neither the key format nor an accepted foreign format",
            ));
        }
        self.import_digest(key.digest(), key.masked(), new).await
    }

    /// Whether the layer would accept `candidate`'s shape: a well-formed key of the format
    /// (checksum checked) or of an accepted foreign format.
    pub fn accepts(&self, candidate: &[u8]) -> bool {
        self.inner.format.is_well_formed(candidate)
            || self.inner.foreign.iter().any(|f| f.matches(candidate))
    }

    /// Stores a key known only by its digest, the SHA-256 of the whole key string
    /// (`printf %s "$KEY" | sha256sum`; [`KeyDigest::from_hex`]), and a display hint.
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
        let revoked = self.inner.store.revoke(key_id, self.now()).await?;
        if let Some(record) = &revoked {
            self.evict(record.digest());
        }
        Ok(revoked.is_some())
    }

    /// Activates key `key_id`, created inactive ([`NewKey::inactive`]); a revoked key stays
    /// revoked. Returns its record, or `None` if there is no such key.
    ///
    /// # Errors
    ///
    /// The store's error.
    pub async fn activate(&self, key_id: &str) -> Result<Option<ApiKeyRecord>, StoreError> {
        let record = self.inner.store.activate(key_id).await?;
        if let Some(record) = &record {
            self.evict(record.digest());
        }
        Ok(record)
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
            Check::Lookup(lookup) => self.lookup(lookup).await,
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

    /// Evicts `digest` after a write of ours, and tells the invalidation hook (other nodes).
    fn evict(&self, digest: &KeyDigest) {
        self.inner.cache.invalidate(digest);
        for hook in &self.inner.on_invalidate {
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
