//! A `jti` denylist shared by every instance over Redis, checked locally.
//!
//! [`Revocation`] is asked on every request, cached tokens included, so it must not wait for
//! the network. [`RedisRevocation`] keeps the denylist in Redis as the source of truth and a
//! local [`RevocationList`] on every instance as the copy the JWT layer reads:
//!
//! - **Revoking** ([`RedisRevocation::revoke`]) adds the `jti` to the local list at once, then
//!   in one round trip adds `<exp>:<jti>` to the sorted set `<prefix>`, scored by when the entry
//!   may go (`exp` plus the retention), drops the entries already past theirs, and publishes
//!   `<exp>:<jti>` on the channel `<prefix>` (channels and keys are separate namespaces in
//!   Redis). On a Redis Cluster the set is one key, so one slot, and the write waits (up to
//!   200 ms) for the shard's replica to acknowledge it, so that a failover right after a
//!   revocation does not lose it (a replica that lags past that is logged as a warning: the
//!   entry is then on the primary only until it replicates).
//! - **Receiving**: every instance subscribes to the channel when it connects, then loads the
//!   whole set (`ZSCAN`), so a revocation made before it started, or while it was connecting,
//!   is not missed. A revocation reaches the other instances in a few milliseconds.
//! - **Reconnecting**: the subscription pings its node every two seconds; when its connection
//!   is lost it reconnects with a capped backoff (on a cluster, to the next seed node) and loads
//!   the set again, since messages published meanwhile are lost. While Redis is unreachable,
//!   each instance keeps refusing what it already knows; a revocation made meanwhile on another
//!   instance takes effect here after the reconnection.
//! - **0.1's entries** (one key `<prefix>:<jti>` per revocation) are still loaded on a single
//!   server, so an upgrade forgets no revocation; new ones go to the set.
//! - **Expiry**: pass the token's own `exp`. Local entries and Redis keys are kept for a
//!   retention after it: the JWT layer accepts a token until `exp + leeway`, so the layer
//!   raises the retention to its leeway when it is built (and it is at least
//!   [`keep_after_expiry`](RedisRevocationBuilder::keep_after_expiry), 5 minutes by default).
//!   Each instance applies its own retention to what it receives. Instances that share a
//!   prefix should have the same leeway, or a `keep_after_expiry` at least as long as the
//!   largest, so that an instance starting late still loads every entry that matters to it.
//! - **Bad values**: a message or stored value that does not parse is skipped; an `exp` too
//!   far in the future to represent is held as the year 9999. Nothing a Redis server sends
//!   stops the subscription.
//!
//! Needs Redis 6.2 or later. The subscription runs as long as any clone of the [`RedisRevocation`] is alive (the one
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

use crate::redis::subscription::{self, Listener};
use crate::redis::{RedisConnection, RedisError, RedisTarget};
use tokio::task::JoinHandle;

use super::revocation::{Revocation, RevocationList, RevokeFuture, Revoker};

mod load;

use load::load;

/// The `redis` crate, re-exported for [`RedisError`].
pub use ::redis as redis_crate;

/// How long connecting to Redis, or waiting for one of its answers, may take by default.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1);
/// How long a revocation on a cluster waits for its shard's replica.
const REPLICA_WAIT: Duration = Duration::from_millis(200);
/// How long entries outlive their token's `exp` at least, unless told otherwise.
const DEFAULT_RETENTION: Duration = Duration::from_secs(300);
/// The latest `exp` held (9999-12-31T23:59:59Z): a later one from Redis is clamped to it.
const MAX_EXP_SECS: u64 = 253_402_300_799;

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
    connection: RedisConnection,
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

    /// Connects to `target` (a URL or a [`RedisTarget::cluster`]) with the default prefix;
    /// see [`RedisRevocationBuilder::connect`].
    ///
    /// # Errors
    ///
    /// As [`RedisRevocationBuilder::connect`].
    pub async fn connect(target: impl Into<RedisTarget>) -> Result<Self, RedisError> {
        Self::builder().connect(target).await
    }

    /// Configures a denylist.
    pub fn builder() -> RedisRevocationBuilder {
        RedisRevocationBuilder {
            prefix: Self::DEFAULT_PREFIX.to_owned(),
            timeout: DEFAULT_TIMEOUT,
            retention: DEFAULT_RETENTION,
            list: None,
        }
    }

    /// Revokes the token with id `jti` whose `exp` is `expires_at`, on this instance at once
    /// and on every instance through Redis, for the retention after `exp` (see the
    /// [module docs](self)). A token already past that is not revoked (it is refused as
    /// expired anyway).
    ///
    /// # Errors
    ///
    /// Redis could not be reached or did not answer within the timeout. The token is still
    /// revoked on this instance; call again to share it.
    pub async fn revoke(&self, jti: &str, expires_at: SystemTime) -> Result<(), RedisError> {
        self.revoke_all(&[(jti, expires_at)]).await
    }

    /// As [`revoke`](Self::revoke) for every `(jti, expires_at)` of `entries`, in one round
    /// trip.
    ///
    /// # Errors
    ///
    /// As [`revoke`](Self::revoke).
    pub async fn revoke_all<J: AsRef<str>>(
        &self,
        entries: &[(J, SystemTime)],
    ) -> Result<(), RedisError> {
        let list = &self.inner.list;
        list.revoke_many(entries.iter().map(|(jti, exp)| (jti.as_ref(), *exp)));
        let retention = list.retention().as_secs();
        let now = SystemTime::now();
        let prefix = &*self.inner.prefix;
        let mut write = ::redis::pipe();
        let mut broadcast = ::redis::pipe();
        for (jti, expires_at) in entries {
            let (jti, exp) = (jti.as_ref(), exp_secs(*expires_at));
            let end = exp.saturating_add(retention).min(MAX_EXP_SECS);
            if epoch_plus(end) <= now {
                continue; // past the retention: refused as expired everywhere
            }
            let entry = format!("{exp}:{jti}");
            write.cmd("ZADD").arg(prefix).arg(end).arg(&entry).ignore();
            broadcast.cmd("PUBLISH").arg(prefix).arg(&entry).ignore();
        }
        if broadcast.is_empty() {
            return Ok(());
        }
        let now_secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        write
            .cmd("ZREMRANGEBYSCORE")
            .arg(prefix)
            .arg("-inf")
            .arg(format!("({now_secs}"))
            .ignore();
        let mut connection = self.inner.connection.clone();
        if connection.is_cluster() {
            // Replication is asynchronous: without this a failover right after the write could
            // lose it. The answer (how many replicas have it) is not an error either way.
            write
                .cmd("WAIT")
                .arg(1)
                .arg(REPLICA_WAIT.as_millis() as u64);
        }
        let acknowledged: Vec<i64> =
            with_timeout(self.inner.timeout, write.query_async(&mut connection)).await?;
        if acknowledged.first() == Some(&0) {
            // No replica, or one that lags: the entry is on the primary only until it
            // replicates, and a failover meanwhile would lose it.
            log_warn!("a revocation was not acknowledged by a replica within 200 ms");
        }
        // Published apart: on a cluster the channel's slot is not the set's.
        with_timeout(self.inner.timeout, broadcast.query_async(&mut connection)).await
    }

    /// The local copy the JWT layer reads.
    pub fn local(&self) -> &RevocationList {
        &self.inner.list
    }

    /// The key prefix: the sorted set's key, and the channel's name.
    pub fn prefix(&self) -> &str {
        &self.inner.prefix
    }
}

impl Revocation for RedisRevocation {
    #[inline]
    fn is_revoked(&self, jti: &str) -> bool {
        self.inner.list.is_revoked(jti)
    }

    fn keep_after_expiry(&self, leeway: Duration) {
        self.inner.list.keep_after_expiry(leeway);
    }
}

impl Revoker for RedisRevocation {
    fn revoke_many(&self, entries: Vec<(String, SystemTime)>) -> RevokeFuture<'_> {
        Box::pin(async move { Ok(self.revoke_all(&entries).await?) })
    }
}

/// Configures a [`RedisRevocation`].
#[derive(Debug, Clone)]
#[must_use]
pub struct RedisRevocationBuilder {
    prefix: String,
    timeout: Duration,
    retention: Duration,
    list: Option<RevocationList>,
}

impl RedisRevocationBuilder {
    /// Keeps every entry, here and in Redis, at least `retention` after its token's `exp`
    /// (default 5 minutes). The JWT layers given this denylist raise it to their leeway; set
    /// it to the largest leeway of the instances sharing the prefix if they differ.
    pub fn keep_after_expiry(mut self, retention: Duration) -> Self {
        self.retention = retention;
        self
    }

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

    /// Connects to `target` (a URL `redis://[:password@]host:port[/db]`, or a
    /// [`RedisTarget::cluster`]), subscribes to the channel and loads every entry already in
    /// Redis; returns once both are done, so a revocation made on any instance before this
    /// returns is known here. Must be called inside a tokio runtime.
    ///
    /// # Errors
    ///
    /// The URL does not parse, or the server cannot be reached, refuses the subscription or
    /// does not answer within the timeout.
    pub async fn connect(
        self,
        target: impl Into<RedisTarget>,
    ) -> Result<RedisRevocation, RedisError> {
        let target = target.into();
        let connection = crate::redis::connect(&target, self.timeout, 1).await?;
        let list = self.list.unwrap_or_default();
        list.keep_after_expiry(self.retention);
        let prefix: Arc<str> = Arc::from(self.prefix);
        let mirror = Mirror {
            connection: connection.clone(),
            prefix: Arc::clone(&prefix),
            list: list.clone(),
            timeout: self.timeout,
        };
        let subscription = subscription::start(&target, &prefix, self.timeout, mirror).await?;
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

/// `expires_at` as whole seconds since the epoch, rounded up (0 before the epoch).
fn exp_secs(expires_at: SystemTime) -> u64 {
    expires_at.duration_since(UNIX_EPOCH).map_or(0, |since| {
        since
            .as_secs()
            .saturating_add(u64::from(since.subsec_nanos() > 0))
    })
}

/// The epoch plus `secs`, clamped to the year 9999 (no `SystemTime` arithmetic can overflow).
fn epoch_plus(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs.min(MAX_EXP_SECS))
}

async fn with_timeout<T>(
    timeout: Duration,
    call: impl Future<Output = Result<T, ::redis::RedisError>>,
) -> Result<T, RedisError> {
    match tokio::time::timeout(timeout, call).await {
        Ok(result) => result.map_err(RedisError::from),
        Err(_) => Err(crate::redis::timed_out("Redis did not answer in time")),
    }
}

/// A message or a stored value: `<exp>:<jti>` / key suffix and `<exp>`.
fn parse_message(payload: &[u8]) -> Option<(&str, SystemTime)> {
    let (exp, jti) = std::str::from_utf8(payload).ok()?.split_once(':')?;
    Some((jti, epoch_plus(exp.parse().ok()?)))
}

/// Mirrors every message into the local list; after a reconnection, loads the set again.
struct Mirror {
    connection: RedisConnection,
    prefix: Arc<str>,
    list: RevocationList,
    timeout: Duration,
}

impl Listener for Mirror {
    fn message(&mut self, payload: &[u8]) {
        if let Some((jti, exp)) = parse_message(payload) {
            self.list.revoke(jti, exp);
        }
    }

    async fn resync(&mut self) -> Result<(), RedisError> {
        load(&mut self.connection, &self.prefix, &self.list, self.timeout).await
    }

    fn name(&self) -> &'static str {
        "jti denylist"
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
    }

    #[test]
    fn expiry_rounds_up_and_huge_values_are_clamped() {
        let later = SystemTime::now() + Duration::from_millis(1_500);
        let secs = later.duration_since(UNIX_EPOCH).unwrap();
        assert_eq!(exp_secs(later), secs.as_secs() + 1);
        assert_eq!(exp_secs(UNIX_EPOCH), 0);
        let (jti, exp) = parse_message(b"18446744073709551615:x").unwrap();
        assert_eq!(jti, "x");
        assert_eq!(exp, epoch_plus(MAX_EXP_SECS));
        assert_eq!(epoch_plus(u64::MAX), epoch_plus(MAX_EXP_SECS));
    }
}
