//! Cache invalidation across instances over Redis pub/sub.
//!
//! Each instance caches key lookups in its own moka cache, so without help a key revoked on
//! one instance keeps working on the others until their positive TTL ends. With
//! [`RedisInvalidation`], revoking or rotating a key through any instance's
//! [`ApiKeys`] publishes the key's digest on a Redis channel, and every instance subscribed to
//! it evicts that digest at once: the next request with the key goes to the store and sees the
//! change. On a healthy network that takes a few milliseconds.
//!
//! - **Publishing** goes through the [`ApiKeysBuilder::on_invalidate`](super::ApiKeysBuilder::on_invalidate)
//!   hook ([`RedisInvalidation::hook`]): the hook only queues the digest; a background task
//!   publishes it on a multiplexed [`RedisConnection`] that
//!   reconnects by itself, with connect and response timeouts of one second and a few retries.
//!   A revocation never waits for Redis, and never fails because Redis is down: the store is
//!   the source of truth, and the other instances' positive TTL bounds how stale they can be.
//! - **Receiving** ([`RedisInvalidation::subscribe`]) runs a task per [`ApiKeys`] on a
//!   dedicated pub/sub connection. It pings the server every two seconds to notice a dead
//!   connection, reconnects with a capped backoff (on a cluster, to the next seed node), and
//!   after a reconnect empties the cache ([`ApiKeys::invalidate_all`]), since messages sent
//!   meanwhile are lost.
//! - **A Redis Cluster** works the same ([`RedisTarget::cluster`]): every node relays every
//!   `PUBLISH`, so one node is enough to hear them all.
//! - **Messages** are the 32-byte SHA-256 digest of the key, never the key. Anything else on
//!   the channel is ignored.
//!
//! # Example
//!
//! ```no_run
//! use tollgate::api_key::redis::RedisInvalidation;
//! use tollgate::api_key::{ApiKeys, InMemoryKeyStore};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let store = InMemoryKeyStore::new(); // a shared store, such as `PostgresKeyStore`
//! let invalidation =
//!     RedisInvalidation::connect("redis://127.0.0.1:6379", RedisInvalidation::DEFAULT_CHANNEL)
//!         .await?;
//! let keys = ApiKeys::builder(store).on_invalidate(invalidation.hook()).build();
//! // Keep the subscription alive as long as `keys` serves requests: dropping it unsubscribes.
//! let _subscription = invalidation.subscribe(keys.clone()).await?;
//!
//! // A revocation here now evicts the key on every subscribed instance.
//! keys.revoke("key_0123").await?;
//! # Ok(())
//! # }
//! ```

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::redis::subscription::{self, Listener};
use crate::redis::{RedisConnection, RedisError, RedisTarget};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::{ApiKeys, InvalidateHook, KeyDigest, KeyStore};

/// The `redis` crate, re-exported for [`RedisError`] and connection types.
pub use ::redis as redis_crate;

/// How long connecting to Redis, or waiting for one of its answers, may take.
const TIMEOUT: Duration = Duration::from_secs(1);
/// How long an invalidation is retried before it is dropped.
const PUBLISH_FOR: Duration = Duration::from_secs(30);

/// Publishes and receives API-key cache invalidations on a Redis channel; see the
/// [module docs](self).
///
/// Clones share the publishing connection and queue.
#[derive(Clone)]
pub struct RedisInvalidation {
    target: RedisTarget,
    channel: Arc<str>,
    queue: mpsc::UnboundedSender<KeyDigest>,
    connection: RedisConnection,
}

impl fmt::Debug for RedisInvalidation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The client's connection info may hold a password: not shown.
        f.debug_struct("RedisInvalidation")
            .field("channel", &self.channel)
            .finish_non_exhaustive()
    }
}

impl RedisInvalidation {
    /// The channel used unless told otherwise.
    pub const DEFAULT_CHANNEL: &'static str = "tollgate:api-key:invalidate";

    /// Connects to `target` (a URL `redis://[:password@]host:port[/db]`, or a
    /// [`RedisTarget::cluster`]) and starts the task that publishes queued invalidations on
    /// `channel`. Every instance that shares keys must use the same channel.
    ///
    /// Must be called inside a tokio runtime.
    ///
    /// # Errors
    ///
    /// The URL does not parse, or the server cannot be reached within one second.
    pub async fn connect(
        target: impl Into<RedisTarget>,
        channel: impl Into<String>,
    ) -> Result<Self, RedisError> {
        let target = target.into();
        let connection = crate::redis::connect(&target, TIMEOUT, 3).await?;
        let channel: Arc<str> = Arc::from(channel.into());
        let (queue, receiver) = mpsc::unbounded_channel();
        tokio::spawn(publish_queued(
            connection.clone(),
            Arc::clone(&channel),
            receiver,
        ));
        Ok(Self {
            target,
            channel,
            queue,
            connection,
        })
    }

    /// The channel.
    pub fn channel(&self) -> &str {
        &self.channel
    }

    /// A hook for [`ApiKeysBuilder::on_invalidate`](super::ApiKeysBuilder::on_invalidate)
    /// that queues every digest for publishing and returns at once.
    pub fn hook(&self) -> InvalidateHook {
        let queue = self.queue.clone();
        Arc::new(move |digest: &KeyDigest| {
            // Fails only once the publishing task is gone (the runtime is shutting down).
            let _ = queue.send(*digest);
        })
    }

    /// Publishes `digest` now and returns how many subscribers received it. The
    /// [`hook`](Self::hook) does this in the background; this is for invalidating a key
    /// changed outside [`ApiKeys`] (directly in the database, say).
    ///
    /// # Errors
    ///
    /// Redis could not be reached or did not answer within its timeouts.
    pub async fn publish(&self, digest: &KeyDigest) -> Result<u64, RedisError> {
        publish(&mut self.connection.clone(), &self.channel, digest).await
    }

    /// Subscribes `keys` to the channel: every digest received is evicted from its cache
    /// ([`ApiKeys::invalidate`]). Returns once the subscription is active, so invalidations
    /// published after this returns are received; the subscription then lives (reconnecting
    /// as needed, and emptying the cache after each reconnection) until the returned
    /// [`Subscription`] is dropped.
    ///
    /// # Errors
    ///
    /// The server cannot be reached, or refused the subscription, within one second.
    pub async fn subscribe<K: KeyStore>(
        &self,
        keys: ApiKeys<K>,
    ) -> Result<Subscription, RedisError> {
        let task = subscription::start(&self.target, &self.channel, TIMEOUT, Evict(keys)).await?;
        Ok(Subscription { task })
    }
}

/// A running subscription from [`RedisInvalidation::subscribe`]; dropping it stops it.
#[must_use = "dropping a Subscription unsubscribes at once"]
#[derive(Debug)]
pub struct Subscription {
    task: JoinHandle<()>,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn publish(
    connection: &mut RedisConnection,
    channel: &str,
    digest: &KeyDigest,
) -> Result<u64, RedisError> {
    Ok(::redis::cmd("PUBLISH")
        .arg(channel)
        .arg(&digest.as_bytes()[..])
        .query_async(connection)
        .await?)
}

/// Publishes queued digests in order until every sender is gone. A digest that cannot be
/// published is retried with a growing pause for up to [`PUBLISH_FOR`], long enough to outlast
/// a cluster's failover; after that it is dropped (the other instances' TTL still bounds
/// staleness).
async fn publish_queued(
    mut connection: RedisConnection,
    channel: Arc<str>,
    mut queue: mpsc::UnboundedReceiver<KeyDigest>,
) {
    while let Some(digest) = queue.recv().await {
        let started = tokio::time::Instant::now();
        let mut pause = Duration::from_millis(50);
        while let Err(error) = publish(&mut connection, &channel, &digest).await {
            log_warn!(%error, "publishing an API-key invalidation failed; retrying");
            let _ = error;
            if started.elapsed() >= PUBLISH_FOR {
                break;
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(2));
        }
    }
}

/// Evicts every digest heard; after a reconnection, everything, since messages published
/// meanwhile are lost.
struct Evict<K: KeyStore>(ApiKeys<K>);

impl<K: KeyStore> Listener for Evict<K> {
    fn message(&mut self, payload: &[u8]) {
        if let Ok(bytes) = <[u8; 32]>::try_from(payload) {
            self.0.invalidate(&KeyDigest::from_bytes(bytes));
        }
    }

    async fn resync(&mut self) -> Result<(), RedisError> {
        self.0.invalidate_all();
        Ok(())
    }

    fn name(&self) -> &'static str {
        "api-key invalidation"
    }
}
