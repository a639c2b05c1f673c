//! [`ApiKeysBuilder`]: the settings of [`ApiKeys`].

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::{ApiKeys, Inner, InvalidateHook};
use crate::api_key::ConfigError;
use crate::api_key::cache::KeyCache;
use crate::api_key::format::{ForeignKeyFormat, KeyFormat};
use crate::api_key::store::KeyStore;
use crate::clock::SharedClock;
use crate::usage::UsageRegistry;

/// Configures [`ApiKeys`]; from [`ApiKeys::builder`].
#[must_use]
pub struct ApiKeysBuilder<K> {
    pub(super) store: K,
    pub(super) format: KeyFormat,
    pub(super) clock: SharedClock,
    pub(super) capacity: u64,
    pub(super) positive_ttl: Duration,
    pub(super) negative_ttl: Duration,
    pub(super) lookup_timeout: Duration,
    pub(super) default_grace: Duration,
    pub(super) on_invalidate: Vec<InvalidateHook>,
    pub(super) max_lookups: usize,
    pub(super) foreign: Vec<ForeignKeyFormat>,
    pub(super) legacy_digests: bool,
    pub(super) track_usage: bool,
}

impl<K: KeyStore> ApiKeysBuilder<K> {
    /// The prefix of generated keys (default `tg`).
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidPrefix`]; see [`KeyFormat::new`].
    #[deprecated(
        since = "0.2.0",
        note = "the builder has no fallible step: use `key_format(KeyFormat::new(prefix)?)`"
    )]
    pub fn prefix(mut self, prefix: impl Into<String>) -> Result<Self, ConfigError> {
        self.format = self.format.renamed(prefix)?;
        Ok(self)
    }

    /// The key format: its prefix, environment and checksum, validated when it is made
    /// (`KeyFormat::new("sk")?`, [`KeyFormat::with_environment`],
    /// [`KeyFormat::with_checksum_secret`]); the builder itself has no fallible step.
    ///
    /// ```
    /// use tollgate::api_key::{ApiKeys, InMemoryKeyStore, KeyFormat};
    ///
    /// let format = KeyFormat::new("sk")?.with_environment("live")?.with_checksum_secret([7; 32])?;
    /// let keys = ApiKeys::builder(InMemoryKeyStore::new()).key_format(format).build();
    /// # let _ = keys;
    /// # Ok::<_, tollgate::api_key::ConfigError>(())
    /// ```
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
    #[deprecated(
        since = "0.2.0",
        note = "the builder has no fallible step: use `key_format(KeyFormat::default().with_checksum_secret(secret)?)`"
    )]
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
    ///
    /// Call it again to add more hooks (a Redis publisher and an application cache, say):
    /// each is called, in the order added.
    pub fn on_invalidate(mut self, hook: InvalidateHook) -> Self {
        self.on_invalidate.push(hook);
        self
    }

    /// Also accepts keys of `format`, made by another system (import them with
    /// [`ApiKeys::import`] or [`ApiKeys::import_digest`]). New keys are still generated in the
    /// crate's format; both work side by side. Call again for several formats.
    pub fn accept_format(mut self, format: ForeignKeyFormat) -> Self {
        self.foreign.push(format);
        self
    }

    /// Also finds keys stored by tollgate 0.1, whose digest left out the checksum: a key of
    /// the crate's format missing from the store under its digest is looked up once more
    /// under the old one. Costs a second store query for unknown keys only; turn it off once
    /// the old records are rotated out.
    pub fn legacy_digests(mut self, on: bool) -> Self {
        self.legacy_digests = on;
        self
    }

    /// Counts each key's use in memory: requests authenticated, refused (revoked, expired,
    /// inactive, application disabled) and rate-limited, and the last use (off by default).
    /// The counts reach the store in batches, by [`ApiKeys::flush_usage`] or
    /// [`ApiKeys::spawn_usage_flush`] (an interval, and a last flush at shutdown), never a
    /// write per request. On the request path it costs a few relaxed atomic operations on
    /// the key's own counters. What a crash loses is what was counted since the last flush.
    pub fn track_usage(mut self, on: bool) -> Self {
        self.track_usage = on;
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
                foreign: self.foreign,
                legacy_digests: self.legacy_digests,
                usage: self.track_usage.then(UsageRegistry::default),
                metrics: Default::default(),
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
                &format_args!("{} hooks", self.on_invalidate.len()),
            )
            .finish_non_exhaustive()
    }
}
