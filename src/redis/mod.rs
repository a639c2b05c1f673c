//! What the Redis backends share (feature `redis`): their error type, and how they connect
//! and subscribe.
//!
//! The backends themselves live with what they serve: `api_key::redis::RedisInvalidation`
//! (cache invalidation over pub/sub), `jwt::redis::RedisRevocation` (a shared `jti` denylist)
//! and `rate_limit::redis::RedisStore` (one fixed window for every instance). Each opens its
//! connection and its subscriber here, with every wait bounded.

use std::fmt;
use std::time::Duration;

use ::redis::Client;
use ::redis::aio::{ConnectionManager, ConnectionManagerConfig, PubSub};

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

/// A client for `url` and a reconnecting connection to it: connecting and every answer bounded
/// by `timeout`; a failed command is retried `retries` times (a rate-limit decision never
/// waits for reconnection, so it asks for one) while the manager reconnects in the background.
#[cfg_attr(
    not(any(feature = "api-key", feature = "jwt-base", feature = "rate-limit")),
    allow(dead_code)
)]
pub(crate) async fn connect(
    url: &str,
    timeout: Duration,
    retries: usize,
) -> Result<(Client, ConnectionManager), RedisError> {
    let client = Client::open(url)?;
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(timeout))
        .set_response_timeout(Some(timeout))
        .set_number_of_retries(retries)
        .set_max_delay(Duration::from_millis(500));
    let connection = client.get_connection_manager_with_config(config).await?;
    Ok((client, connection))
}

/// A subscriber to `channel`, subscribed within `timeout`.
#[cfg_attr(not(any(feature = "api-key", feature = "jwt-base")), allow(dead_code))]
pub(crate) async fn subscribe(
    client: &Client,
    channel: &str,
    timeout: Duration,
) -> Result<PubSub, RedisError> {
    let subscribe = async {
        let mut pubsub = client.get_async_pubsub().await?;
        pubsub.subscribe(channel).await?;
        Ok::<_, RedisError>(pubsub)
    };
    tokio::time::timeout(timeout, subscribe)
        .await
        .unwrap_or_else(|_| Err(timed_out("subscribing to Redis timed out")))
}

/// The error of a wait that ran out.
#[cfg_attr(
    not(any(feature = "api-key", feature = "jwt-base", feature = "rate-limit")),
    allow(dead_code)
)]
pub(crate) fn timed_out(what: &'static str) -> RedisError {
    RedisError::from(std::io::Error::new(std::io::ErrorKind::TimedOut, what))
}
