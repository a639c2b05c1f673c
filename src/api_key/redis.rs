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
//!   publishes it on a multiplexed [`ConnectionManager`] that
//!   reconnects by itself, with connect and response timeouts of one second and a few retries.
//!   A revocation never waits for Redis, and never fails because Redis is down: the store is
//!   the source of truth, and the other instances' positive TTL bounds how stale they can be.
//! - **Receiving** ([`RedisInvalidation::subscribe`]) runs a task per [`ApiKeys`] on a
//!   dedicated pub/sub connection. It pings the server every few seconds to notice a dead
//!   connection, reconnects with a capped backoff, and after a reconnect empties the cache
//!   ([`ApiKeys::invalidate_all`]), since messages sent meanwhile are lost.
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

use ::redis::Client;
use ::redis::aio::{ConnectionManager, PubSub};

use crate::redis::RedisError;
use futures_util::StreamExt;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::{ApiKeys, InvalidateHook, KeyDigest, KeyStore};

/// The `redis` crate, re-exported for [`RedisError`] and connection types.
pub use ::redis as redis_crate;

/// How long connecting to Redis, or waiting for one of its answers, may take.
const TIMEOUT: Duration = Duration::from_secs(1);
/// How often an idle subscription checks that its connection is alive.
const PING_EVERY: Duration = Duration::from_secs(5);
/// The longest wait between two reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Publishes and receives API-key cache invalidations on a Redis channel; see the
/// [module docs](self).
///
/// Clones share the publishing connection and queue.
#[derive(Clone)]
pub struct RedisInvalidation {
    client: Client,
    channel: Arc<str>,
    queue: mpsc::UnboundedSender<KeyDigest>,
    connection: ConnectionManager,
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

    /// Connects to the Redis server at `url` (`redis://[:password@]host:port[/db]`) and
    /// starts the task that publishes queued invalidations on `channel`. Every instance that
    /// shares keys must use the same channel.
    ///
    /// Must be called inside a tokio runtime.
    ///
    /// # Errors
    ///
    /// The URL does not parse, or the server cannot be reached within one second.
    pub async fn connect(url: &str, channel: impl Into<String>) -> Result<Self, RedisError> {
        let (client, connection) = crate::redis::connect(url, TIMEOUT, 3).await?;
        let channel: Arc<str> = Arc::from(channel.into());
        let (queue, receiver) = mpsc::unbounded_channel();
        tokio::spawn(publish_queued(
            connection.clone(),
            Arc::clone(&channel),
            receiver,
        ));
        Ok(Self {
            client,
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
    /// as needed) until the returned [`Subscription`] is dropped.
    ///
    /// # Errors
    ///
    /// The server cannot be reached, or refused the subscription, within one second.
    pub async fn subscribe<K: KeyStore>(
        &self,
        keys: ApiKeys<K>,
    ) -> Result<Subscription, RedisError> {
        let pubsub = open_subscription(&self.client, &self.channel).await?;
        let task = tokio::spawn(receive(
            pubsub,
            self.client.clone(),
            Arc::clone(&self.channel),
            keys,
        ));
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
    connection: &mut ConnectionManager,
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
/// published after a few tries is dropped (the other instances' TTL still bounds staleness).
async fn publish_queued(
    mut connection: ConnectionManager,
    channel: Arc<str>,
    mut queue: mpsc::UnboundedReceiver<KeyDigest>,
) {
    while let Some(digest) = queue.recv().await {
        for attempt in 0..3u32 {
            match publish(&mut connection, &channel, &digest).await {
                Ok(_) => break,
                Err(error) => {
                    log_warn!(%error, attempt, "publishing an API-key invalidation failed");
                    let _ = error;
                    tokio::time::sleep(Duration::from_millis(100) * (attempt + 1)).await;
                }
            }
        }
    }
}

async fn open_subscription(client: &Client, channel: &str) -> Result<PubSub, RedisError> {
    crate::redis::subscribe(client, channel, TIMEOUT).await
}

/// Evicts every digest received; on a lost connection, reconnects and empties the cache.
async fn receive<K: KeyStore>(
    mut pubsub: PubSub,
    client: Client,
    channel: Arc<str>,
    keys: ApiKeys<K>,
) {
    loop {
        let (mut sink, mut stream) = pubsub.split();
        let mut ping = tokio::time::interval(PING_EVERY);
        ping.tick().await;
        loop {
            tokio::select! {
                message = stream.next() => match message {
                    Some(message) => {
                        if let Ok(bytes) = <[u8; 32]>::try_from(message.get_payload_bytes()) {
                            keys.invalidate(&KeyDigest::from_bytes(bytes));
                        }
                    }
                    None => break,
                },
                _ = ping.tick() => {
                    let alive = tokio::time::timeout(TIMEOUT, sink.ping::<::redis::Value>()).await;
                    if !matches!(alive, Ok(Ok(_))) {
                        break;
                    }
                }
            }
        }
        log_warn!("lost the API-key invalidation subscription; reconnecting");
        let mut backoff = Duration::from_millis(100);
        pubsub = loop {
            tokio::time::sleep(backoff).await;
            match open_subscription(&client, &channel).await {
                Ok(pubsub) => break pubsub,
                Err(error) => {
                    log_warn!(%error, "reconnecting the API-key invalidation subscription failed");
                    let _ = error;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        };
        // Messages published while disconnected are lost: forget everything cached.
        keys.invalidate_all();
    }
}
