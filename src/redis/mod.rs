//! What the Redis backends share (feature `redis`): where they connect ([`RedisTarget`]: one
//! server or a Redis Cluster), their connection ([`RedisConnection`]), their error type, and
//! the subscription loop of the two that listen.
//!
//! The backends themselves live with what they serve: `api_key::redis::RedisInvalidation`
//! (cache invalidation over pub/sub), `jwt::redis::RedisRevocation` (a shared `jti` denylist)
//! and `rate_limit::redis::RedisStore` (one fixed window for every instance, exact or leased).
//! Each opens its connection and its subscriber here, with every wait bounded.
//!
//! # One server or a cluster
//!
//! Every backend works against both, with the same behaviour:
//!
//! - Each command and script touches keys of **one hash slot**: a rate-limit key's counters
//!   share the hash tag `{<key>}`, and the denylist is one sorted set.
//! - Invalidations and revocations are broadcast with plain `PUBLISH`, which every node of a
//!   cluster relays to its subscribers; each instance subscribes on one node and, when that node
//!   is lost, takes the next seed, then **resynchronises**: the key cache is emptied, the
//!   denylist read again. Nothing published while it was away is lost.
//! - During a failover, commands to the failed shard fail until the replica is promoted (a
//!   second or two with `cluster-node-timeout 1000`); the cluster client then follows the new
//!   primary without a restart. What a rate-limit decision does meanwhile is the layer's
//!   `on_store_error` policy.

use std::fmt;

mod connection;
#[cfg(any(feature = "api-key", feature = "jwt-base"))]
pub(crate) mod subscription;
mod target;

pub use connection::RedisConnection;
#[cfg_attr(
    not(any(feature = "api-key", feature = "jwt-base", feature = "rate-limit")),
    allow(unused_imports)
)]
pub(crate) use connection::connect;
pub use target::RedisTarget;

/// A Redis backend failed: the server could not be reached, refused the command, or answered
/// in a way the backend cannot read. The `redis` crate's error is its
/// [`source`](std::error::Error::source); the message never holds a key, a token or a URL's
/// password.
#[derive(Debug)]
pub struct RedisError(::redis::RedisError);

impl RedisError {
    /// Whether the failure was reaching the server (refused, closed, timed out) rather than
    /// the server's answer.
    pub fn is_connection_problem(&self) -> bool {
        unreachable(&self.0)
    }
}

/// Whether `error` is a failure to reach the server rather than its answer.
fn unreachable(error: &::redis::RedisError) -> bool {
    error.is_io_error()
        || error.is_connection_refusal()
        || error.is_connection_dropped()
        || error.is_timeout()
}

impl fmt::Display for RedisError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "redis: {}", self.0)
    }
}

impl std::error::Error for RedisError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

impl From<::redis::RedisError> for RedisError {
    fn from(error: ::redis::RedisError) -> Self {
        Self(error)
    }
}

impl From<std::io::Error> for RedisError {
    fn from(error: std::io::Error) -> Self {
        Self(::redis::RedisError::from(error))
    }
}

/// The error of a wait that ran out.
#[cfg_attr(
    not(any(feature = "api-key", feature = "jwt-base", feature = "rate-limit")),
    allow(dead_code)
)]
pub(crate) fn timed_out(what: &'static str) -> RedisError {
    RedisError::from(std::io::Error::new(std::io::ErrorKind::TimedOut, what))
}
