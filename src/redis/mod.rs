//! What the Redis backends share (feature `redis`): their error type.
//!
//! The backends themselves live with what they serve: `api_key::redis::RedisInvalidation`
//! (cache invalidation over pub/sub), `jwt::redis::RedisRevocation` (a shared `jti` denylist)
//! and `rate_limit::redis::RedisStore` (one fixed window for every instance).

use std::fmt;

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
        self.0.is_io_error()
            || self.0.is_connection_refusal()
            || self.0.is_connection_dropped()
            || self.0.is_timeout()
    }
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
