//! A `jti` denylist shared by every instance over Redis, checked locally.
//!
//! [`Revocation`] is asked on every request, cached tokens included, so it must not wait for
//! the network. [`RedisRevocation`] keeps the denylist in Redis as the source of truth and a
//! local [`RevocationList`] on every instance as the copy the JWT layer reads:
//!
//! - **Revoking** ([`RedisRevocation::revoke`]) adds the `jti` to the local list at once, then
//!   in one round trip writes `SET <prefix>:<jti> <exp> EXAT <exp>` (the entry expires with the
//!   token) and publishes `<exp>:<jti>` on the channel named `<prefix>` (channels and keys are
//!   separate namespaces in Redis).
//! - **Receiving**: every instance subscribes to the channel when it connects, then loads
//!   every entry already in Redis (`SCAN` + `MGET`), so a revocation made before it started,
//!   or while it was connecting, is not missed. A revocation reaches the other instances in a
//!   few milliseconds.
//! - **Reconnecting**: the subscription pings the server every few seconds; when its connection
//!   is lost it reconnects with a capped backoff and loads every entry again, since messages
//!   published meanwhile are lost. While Redis is unreachable, each instance keeps refusing
//!   what it already knows; a revocation made meanwhile on another instance takes effect here
//!   after the reconnection.
//! - **Expiry**: local entries and Redis keys both end at the token's `exp`, after which the
//!   token is refused as expired anyway. Pass `exp` plus the layer's leeway to be exact.
//!
//! Needs Redis 6.2 or later (`SET … EXAT`). The subscription runs as long as any clone of the [`RedisRevocation`] is alive (the one
//! given to [`JwtBuilder::revocation`](super::JwtBuilder::revocation) included).
//!
//! # Example
//!
//! ```no_run
//! use std::time::{Duration, SystemTime};
//! use tollgate::jwt::redis::RedisRevocation;
//! use tollgate::jwt::{JwtKey, JwtLayer};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let revocation = RedisRevocation::builder()
//!     .prefix("myapp:jti")
//!     .connect("redis://127.0.0.1:6379")
//!     .await?;
//! # let key = JwtKey::hmac(b"0123456789abcdef0123456789abcdef", tollgate::jwt::Algorithm::HS256)?;
//! let layer = JwtLayer::builder(key).revocation(revocation.clone()).build()?;
//!
//! // On logout: every instance refuses the token from now until it expires.
//! let exp = SystemTime::now() + Duration::from_secs(900); // the token's `exp`
//! revocation.revoke("token-id", exp).await?;
//! # let _ = layer;
//! # Ok(())
//! # }
//! ```

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig, PubSub};
use ::redis::{Client, RedisError};
use futures_util::StreamExt;
use tokio::task::JoinHandle;

use super::revocation::{Revocation, RevocationList};

/// The `redis` crate, re-exported for [`RedisError`].
pub use ::redis as redis_crate;

/// How long connecting to Redis, or waiting for one of its answers, may take by default.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1);
/// How often an idle subscription checks that its connection is alive.
const PING_EVERY: Duration = Duration::from_secs(5);
/// The longest wait between two reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// Keys asked for per `SCAN` step.
const SCAN_COUNT: usize = 1000;

/// A `jti` denylist in Redis, mirrored in memory on every instance; see the
/// [module docs](self).
///
/// Clones share the connection, the local list and the subscription.
#[derive(Clone)]
pub struct RedisRevocation {
    inner: Arc<Inner>,
}

struct Inner {
    list: RevocationList,
    connection: ConnectionManager,
    prefix: Arc<str>,
    timeout: Duration,
    subscription: JoinHandle<()>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.subscription.abort();
    }
}

impl fmt::Debug for RedisRevocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The client's connection info may hold a password: not shown.
        f.debug_struct("RedisRevocation")
            .field("prefix", &self.inner.prefix)
            .field("local_entries", &self.inner.list.len())
            .finish_non_exhaustive()
    }
}

impl RedisRevocation {
    /// The key prefix and channel used unless told otherwise.
    pub const DEFAULT_PREFIX: &'static str = "tollgate:jti";

    /// Connects to the server at `url` with the default prefix; see
    /// [`RedisRevocationBuilder::connect`].
    ///
    /// # Errors
    ///
    /// As [`RedisRevocationBuilder::connect`].
    pub async fn connect(url: &str) -> Result<Self, RedisError> {
        Self::builder().connect(url).await
    }

    /// Configures a denylist.
    pub fn builder() -> RedisRevocationBuilder {
        RedisRevocationBuilder {
            prefix: Self::DEFAULT_PREFIX.to_owned(),
            timeout: DEFAULT_TIMEOUT,
            list: None,
        }
    }

    /// Revokes the token with id `jti` until `expires_at` (its `exp`, plus the JWT layer's
    /// leeway to be exact) on this instance at once, and on every instance through Redis.
    /// A token already expired is only added locally (it is refused as expired anyway).
    ///
    /// # Errors
    ///
    /// Redis could not be reached or did not answer within the timeout. The token is still
    /// revoked on this instance; call again to share it.
    pub async fn revoke(&self, jti: &str, expires_at: SystemTime) -> Result<(), RedisError> {
        self.inner.list.revoke(jti, expires_at);
        let Some(exp) = exat(expires_at) else {
            return Ok(());
        };
        let mut connection = self.inner.connection.clone();
        let mut pipe = ::redis::pipe();
        pipe.cmd("SET")
            .arg(format!("{}:{jti}", self.inner.prefix))
            .arg(exp)
            .arg("EXAT")
            .arg(exp)
            .ignore()
            .cmd("PUBLISH")
            .arg(&*self.inner.prefix)
            .arg(format!("{exp}:{jti}"))
            .ignore();
        with_timeout(self.inner.timeout, pipe.query_async(&mut connection)).await
    }

    /// The local copy the JWT layer reads.
    pub fn local(&self) -> &RevocationList {
        &self.inner.list
    }

    /// The key prefix, also the channel's name.
    pub fn prefix(&self) -> &str {
        &self.inner.prefix
    }
}

impl Revocation for RedisRevocation {
    #[inline]
    fn is_revoked(&self, jti: &str) -> bool {
        self.inner.list.is_revoked(jti)
    }
}

/// Configures a [`RedisRevocation`].
#[derive(Debug, Clone)]
#[must_use]
pub struct RedisRevocationBuilder {
    prefix: String,
    timeout: Duration,
    list: Option<RevocationList>,
}

impl RedisRevocationBuilder {
    /// Prefixes every key, and names the channel (default [`RedisRevocation::DEFAULT_PREFIX`]).
    /// Every instance that shares the denylist must use the same prefix.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Bounds connecting and every command (default 1 s).
    ///
    /// # Panics
    ///
    /// If `timeout` is zero.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        assert!(!timeout.is_zero(), "a zero timeout fails every command");
        self.timeout = timeout;
        self
    }

    /// Mirrors into `list` (for instance one on a test clock) instead of a new one.
    pub fn local(mut self, list: RevocationList) -> Self {
        self.list = Some(list);
        self
    }

    /// Connects to the server at `url` (`redis://[:password@]host:port[/db]`), subscribes to
    /// the channel and loads every entry already in Redis; returns once both are done, so a
    /// revocation made on any instance before this returns is known here. Must be called
    /// inside a tokio runtime.
    ///
    /// # Errors
    ///
    /// The URL does not parse, or the server cannot be reached, refuses the subscription or
    /// does not answer within the timeout.
    pub async fn connect(self, url: &str) -> Result<RedisRevocation, RedisError> {
        let client = Client::open(url)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.timeout))
            .set_response_timeout(Some(self.timeout))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(500));
        let mut connection = client.get_connection_manager_with_config(config).await?;
        let list = self.list.unwrap_or_default();
        let prefix: Arc<str> = Arc::from(self.prefix);
        let mirror = Mirror {
            client,
            connection: connection.clone(),
            prefix: Arc::clone(&prefix),
            list: list.clone(),
            timeout: self.timeout,
        };
        // Subscribe before loading: a revocation in between is then in one or the other.
        let pubsub = mirror.subscribe().await?;
        load(&mut connection, &prefix, &list, self.timeout).await?;
        let subscription = tokio::spawn(mirror.run(pubsub));
        Ok(RedisRevocation {
            inner: Arc::new(Inner {
                list,
                connection,
                prefix,
                timeout: self.timeout,
                subscription,
            }),
        })
    }
}

/// `expires_at` as whole seconds since the epoch, rounded up; `None` if already past.
fn exat(expires_at: SystemTime) -> Option<u64> {
    if expires_at <= SystemTime::now() {
        return None;
    }
    let since = expires_at.duration_since(UNIX_EPOCH).ok()?;
    Some(since.as_secs() + u64::from(since.subsec_nanos() > 0))
}

async fn with_timeout<T>(
    timeout: Duration,
    call: impl Future<Output = Result<T, RedisError>>,
) -> Result<T, RedisError> {
    tokio::time::timeout(timeout, call)
        .await
        .unwrap_or_else(|_| {
            Err(RedisError::from(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "Redis did not answer in time",
            )))
        })
}

/// A message or a stored value: `<exp>:<jti>` / key suffix and `<exp>`.
fn parse_message(payload: &[u8]) -> Option<(&str, SystemTime)> {
    let (exp, jti) = std::str::from_utf8(payload).ok()?.split_once(':')?;
    Some((jti, expiry(exp.parse().ok()?)))
}

/// `secs` since the epoch, capped at the last NumericDate a token may carry (9999-12-31): a
/// larger value (which `SystemTime` may not even hold) still revokes, and never panics.
fn expiry(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs.min(253_402_300_799))
}

/// `prefix` with the glob characters of `SCAN … MATCH` escaped.
fn escape_glob(prefix: &str) -> String {
    let mut out = String::with_capacity(prefix.len() + 2);
    for c in prefix.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Adds every entry under `prefix` in Redis to `list`.
async fn load(
    connection: &mut ConnectionManager,
    prefix: &str,
    list: &RevocationList,
    timeout: Duration,
) -> Result<(), RedisError> {
    let pattern = format!("{}:*", escape_glob(prefix));
    let mut cursor = 0u64;
    loop {
        // Raw bytes: a foreign key or value under the prefix is skipped, not an error.
        let (next, keys): (u64, Vec<Vec<u8>>) = with_timeout(
            timeout,
            ::redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(SCAN_COUNT)
                .query_async(connection),
        )
        .await?;
        if !keys.is_empty() {
            let values: Vec<Option<Vec<u8>>> = with_timeout(
                timeout,
                ::redis::cmd("MGET").arg(&keys).query_async(connection),
            )
            .await?;
            let skip = prefix.len() + 1;
            list.revoke_many(keys.iter().zip(values).filter_map(|(key, exp)| {
                let jti = std::str::from_utf8(key.get(skip..)?).ok()?;
                let exp: u64 = std::str::from_utf8(&exp?).ok()?.parse().ok()?;
                Some((jti, expiry(exp)))
            }));
        }
        if next == 0 {
            return Ok(());
        }
        cursor = next;
    }
}

/// What the subscription task needs.
struct Mirror {
    client: Client,
    connection: ConnectionManager,
    prefix: Arc<str>,
    list: RevocationList,
    timeout: Duration,
}

impl Mirror {
    async fn subscribe(&self) -> Result<PubSub, RedisError> {
        with_timeout(self.timeout, async {
            let mut pubsub = self.client.get_async_pubsub().await?;
            pubsub.subscribe(&*self.prefix).await?;
            Ok(pubsub)
        })
        .await
    }

    /// Subscribes again and reloads every entry, retrying with a capped backoff.
    async fn resync(&mut self) -> PubSub {
        let mut backoff = Duration::from_millis(100);
        loop {
            tokio::time::sleep(backoff).await;
            let attempt = async {
                let pubsub = self.subscribe().await?;
                load(&mut self.connection, &self.prefix, &self.list, self.timeout).await?;
                Ok::<_, RedisError>(pubsub)
            };
            match attempt.await {
                Ok(pubsub) => return pubsub,
                Err(error) => {
                    log_warn!(%error, "resubscribing to the jti denylist failed");
                    let _ = error;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }

    /// Mirrors every message; on a lost connection, resubscribes and reloads.
    async fn run(mut self, mut pubsub: PubSub) {
        loop {
            let (mut sink, mut stream) = pubsub.split();
            let mut ping = tokio::time::interval(PING_EVERY);
            ping.tick().await;
            loop {
                tokio::select! {
                    message = stream.next() => match message {
                        Some(message) => {
                            if let Some((jti, exp)) = parse_message(message.get_payload_bytes()) {
                                self.list.revoke(jti, exp);
                            }
                        }
                        None => break,
                    },
                    _ = ping.tick() => {
                        let alive = tokio::time::timeout(self.timeout, sink.ping::<::redis::Value>()).await;
                        if !matches!(alive, Ok(Ok(_))) {
                            break;
                        }
                    }
                }
            }
            log_warn!("lost the jti denylist subscription; reconnecting");
            drop((sink, stream));
            pubsub = self.resync().await;
        }
    }
}

#[cfg(test)]
mod proptests;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_and_patterns() {
        let (jti, exp) = parse_message(b"1700000600:a:b").unwrap();
        assert_eq!(jti, "a:b");
        assert_eq!(exp, UNIX_EPOCH + Duration::from_secs(1_700_000_600));
        assert!(parse_message(b"soon:a").is_none());
        assert!(parse_message(b"no separator").is_none());
        assert!(parse_message(&[0xff, b':', b'a']).is_none());
        assert_eq!(escape_glob("app[1]*:jti"), "app\\[1\\]\\*:jti");
    }

    #[test]
    fn expiry_rounds_up_and_past_is_none() {
        let later = SystemTime::now() + Duration::from_millis(1_500);
        let secs = later.duration_since(UNIX_EPOCH).unwrap();
        assert_eq!(exat(later), Some(secs.as_secs() + 1));
        assert_eq!(exat(UNIX_EPOCH + Duration::from_secs(5)), None);
    }
}
