//! The fixed-window store on Redis: one limit shared by every instance.
//!
//! [`RedisStore`] decides a hit with one atomic Lua script, in one round trip (`EVALSHA`,
//! falling back to `EVAL` the first time a server has not seen the script). The script
//! reads the **Redis server's clock** (`TIME`), so instances whose clocks drift still agree on
//! where a window starts; windows are aligned like the in-memory store's,
//! `floor(unix_time / window)` (to the microsecond).
//!
//! - **One hash per key and quota** holds the current window's index and count. A hit in a new
//!   window rewrites both and sets the hash's expiry to the window's end (once per window);
//!   a hit in the same window only adds to the count. A key that stops being used costs
//!   nothing after its window ends.
//! - **All or nothing**: the script checks every quota first and charges them only if all
//!   admit the cost, so a request refused by one limit consumes none of the others. Redis runs
//!   a script without interleaving other commands, so the count is exact under any number of
//!   instances and connections.
//! - **Keys** are `<prefix>:{<rate-limit key>}:<quota position>:<window µs>`. The braces are a
//!   Redis Cluster hash tag: all of a request's quotas live on one node, as a script needs.
//! - **Failures**: every call is bounded by the store's [`timeout`](RedisStoreBuilder::timeout)
//!   (default 1 s) on top of the layer's own
//!   [`store_timeout`](super::RateLimitLayer::store_timeout) (default 200 ms), and any error
//!   becomes a [`StoreError`], so the layer's [`OnStoreError`](super::OnStoreError) policy
//!   applies and a request never hangs. The connection reconnects by itself once
//!   Redis is back.
//!
//! - **A Redis Cluster** works the same ([`RedisTarget::cluster`]): the hash tag keeps each
//!   script on one slot. When a primary fails, its keys' decisions fail (and the layer's policy
//!   answers) until its replica is promoted; the connection then follows the new primary by
//!   itself. Replication is asynchronous, so the hits the failed primary admitted in its last
//!   moment and had not passed on (typically well under a millisecond of traffic) are forgotten:
//!   its windows may admit that many more than their limit, once.
//! - **Leased mode** ([`RedisStoreBuilder::leased`]) trades round trips for stranded budget on
//!   hot keys, never admitting more than a limit across instances; see [`Leasing`].
//!
//! Counts are Lua numbers (doubles): limits above 2^53 are treated as 2^53. Needs Redis 5 or
//! later (a script that reads `TIME` and then writes relies on effects replication, the
//! default since 5.0).
//!
//! # Example
//!
//! ```no_run
//! use tollgate::rate_limit::redis::RedisStore;
//! use tollgate::rate_limit::{OnStoreError, RateLimitLayer};
//! use tollgate::Quota;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let store = RedisStore::builder()
//!     .prefix("myapp:ratelimit")
//!     .connect("redis://127.0.0.1:6379")
//!     .await?;
//! // Every instance built like this shares one 1000-per-hour limit per API key.
//! let layer = RateLimitLayer::new(Quota::per_hour(1000))
//!     .with_store(store)?
//!     .on_store_error(OnStoreError::FailOpen);
//! # let _ = layer;
//! # Ok(())
//! # }
//! ```

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use ::redis::Script;

use crate::Quota;
use crate::redis::{RedisConnection, RedisError, RedisTarget};

use super::store::{Decision, Hit, HitFuture, LimitStatus, MAX_LIMITS, RateLimitStore, StoreError};

mod lease;
mod reserve;

use lease::Leases;
pub use lease::Leasing;
use reserve::{RESERVE, Reserve};

/// The `redis` crate, re-exported for [`RedisError`] and the connection types.
pub use ::redis as redis_crate;

/// The largest count a Lua number holds exactly.
const MAX_EXACT: u64 = 1 << 53;

/// ARGV: cost, then per quota its window length (µs) and limit. KEYS: one hash per quota.
/// Returns `allowed, (remaining, reset µs, exceeded)…`.
const SCRIPT: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local cost = tonumber(ARGV[1])
local n = #KEYS
local index, count, fresh, limit, reset, finish = {}, {}, {}, {}, {}, {}
local allowed = 1
for i = 1, n do
  local len = tonumber(ARGV[2 * i])
  limit[i] = tonumber(ARGV[2 * i + 1])
  -- fmod is exact on doubles, so the window's start is an exact multiple of its length
  -- (floor(now / len) may round up just before a boundary).
  local into = math.fmod(now, len)
  reset[i] = len - into
  finish[i] = now - into + len
  -- '%.0f' keeps every digit: tostring would round to 14 significant ones.
  index[i] = string.format('%.0f', (now - into) / len)
  local stored = redis.call('HMGET', KEYS[i], 'w', 'c')
  if stored[1] == index[i] then
    count[i] = tonumber(stored[2]) or 0
    fresh[i] = false
  else
    count[i] = 0
    fresh[i] = true
  end
  if count[i] + cost > limit[i] then allowed = 0 end
end
local out = {allowed}
for i = 1, n do
  local exceeded = 0
  if allowed == 1 then
    if fresh[i] then
      redis.call('HSET', KEYS[i], 'w', index[i], 'c', ARGV[1])
      redis.call('PEXPIREAT', KEYS[i], string.format('%.0f', math.ceil(finish[i] / 1000)))
    elseif cost > 0 then
      redis.call('HINCRBY', KEYS[i], 'c', ARGV[1])
    end
    count[i] = count[i] + cost
  elseif count[i] + cost > limit[i] then
    exceeded = 1
  end
  local remaining = limit[i] - count[i]
  if remaining < 0 then remaining = 0 end
  out[#out + 1] = remaining
  out[#out + 1] = reset[i]
  out[#out + 1] = exceeded
end
return out
";

/// Fixed-window counters in Redis, shared by every instance that uses the same server and
/// prefix; see the [module docs](self).
///
/// Clones share one multiplexed connection.
#[derive(Clone)]
pub struct RedisStore {
    inner: Arc<Inner>,
}

struct Inner {
    connection: RedisConnection,
    script: Script,
    prefix: Box<[u8]>,
    timeout: Duration,
    leases: Option<Arc<Leases>>,
    reserve: Arc<Script>,
    round_trips: Arc<AtomicU64>,
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The connection's info may hold a password: not shown.
        f.debug_struct("RedisStore")
            .field("prefix", &String::from_utf8_lossy(&self.inner.prefix))
            .field("timeout", &self.inner.timeout)
            .field("leased", &self.inner.leases.is_some())
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// The key prefix used unless told otherwise.
    pub const DEFAULT_PREFIX: &'static str = "tollgate:rl";

    /// A store on `target` (a URL `redis://[:password@]host:port[/db]`, or a
    /// [`RedisTarget::cluster`]) with the default prefix and timeout.
    ///
    /// # Errors
    ///
    /// The URL does not parse, or the server cannot be reached within the timeout.
    pub async fn connect(target: impl Into<RedisTarget>) -> Result<Self, RedisError> {
        Self::builder().connect(target).await
    }

    /// Configures a store.
    pub fn builder() -> RedisStoreBuilder {
        RedisStoreBuilder {
            prefix: Self::DEFAULT_PREFIX.into(),
            timeout: DEFAULT_TIMEOUT,
            leasing: None,
        }
    }

    /// How many calls to Redis this store (and its clones) has made: one per decision in the
    /// exact mode, one per reservation in the [leased](RedisStoreBuilder::leased) mode.
    pub fn round_trips(&self) -> u64 {
        self.inner.round_trips.load(Ordering::Relaxed)
    }

    /// Whether decisions are [leased](RedisStoreBuilder::leased).
    pub fn is_leased(&self) -> bool {
        self.inner.leases.is_some()
    }

    /// The key prefix.
    pub fn prefix(&self) -> &[u8] {
        &self.inner.prefix
    }

    /// The Redis key holding `key`'s counter for the quota at `position`: what the store
    /// reads and writes, for inspection and tests.
    pub fn counter_key(&self, key: &[u8], position: usize, window: Duration) -> Vec<u8> {
        let prefix = &self.inner.prefix;
        let mut out = Vec::with_capacity(prefix.len() + key.len() + 32);
        out.extend_from_slice(prefix);
        out.extend_from_slice(b":{");
        out.extend_from_slice(key);
        out.extend_from_slice(b"}:");
        out.extend_from_slice(format!("{position}:{}", window_micros(window)).as_bytes());
        out
    }
}

/// How long a call to Redis may take by default.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1);

/// Configures a [`RedisStore`].
#[derive(Debug, Clone)]
#[must_use]
pub struct RedisStoreBuilder {
    prefix: Vec<u8>,
    timeout: Duration,
    leasing: Option<Leasing>,
}

impl RedisStoreBuilder {
    /// Prefixes every key (default [`RedisStore::DEFAULT_PREFIX`]). Instances that share a
    /// limit must use the same prefix; distinct prefixes keep applications apart on one server.
    pub fn prefix(mut self, prefix: impl AsRef<[u8]>) -> Self {
        self.prefix = prefix.as_ref().to_vec();
        self
    }

    /// Bounds connecting and every decision (default 1 s). Past it the hit fails with
    /// [`StoreErrorKind::Timeout`](super::StoreErrorKind::Timeout).
    ///
    /// # Panics
    ///
    /// If `timeout` is zero.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        assert!(!timeout.is_zero(), "a zero timeout refuses every request");
        self.timeout = timeout;
        self
    }

    /// Leases budget instead of asking Redis for every decision: an opt-in for hot keys that
    /// cuts round trips to about one per slice, at the cost of budget stranded on instances;
    /// see [`Leasing`] for the rules. The sum admitted across instances still
    /// never exceeds a limit.
    ///
    /// ```no_run
    /// use tollgate::rate_limit::redis::{Leasing, RedisStore};
    ///
    /// # async fn f() -> Result<(), tollgate::redis::RedisError> {
    /// let store = RedisStore::builder()
    ///     .leased(Leasing::new())
    ///     .connect("redis://127.0.0.1:6379")
    ///     .await?;
    /// # let _ = store; Ok(()) }
    /// ```
    pub fn leased(mut self, leasing: Leasing) -> Self {
        self.leasing = Some(leasing);
        self
    }

    /// Connects to `target` (a URL or a [`RedisTarget::cluster`]) and builds the store. Must
    /// be called inside a tokio runtime.
    ///
    /// # Errors
    ///
    /// The URL does not parse, or the server cannot be reached within the timeout.
    pub async fn connect(self, target: impl Into<RedisTarget>) -> Result<RedisStore, RedisError> {
        // A request never waits for reconnection attempts: it fails at once and the layer's
        // policy answers, while the manager keeps reconnecting in the background.
        let mut connection = crate::redis::connect(&target.into(), self.timeout, 1).await?;
        let store = self.build(connection.clone());
        // Loaded now, the first decisions are one `EVALSHA` each too (a server that restarts
        // forgets it: the first decision after that loads it again).
        store.inner.script.load_async(&mut connection).await?;
        store.inner.reserve.load_async(&mut connection).await?;
        Ok(store)
    }

    /// Builds the store on a connection you configured (a [`ConnectionManager`] or a
    /// [`ClusterConnection`]; keep its response timeout bounded).
    ///
    /// [`ConnectionManager`]: ::redis::aio::ConnectionManager
    /// [`ClusterConnection`]: ::redis::cluster_async::ClusterConnection
    pub fn build(self, connection: impl Into<RedisConnection>) -> RedisStore {
        RedisStore {
            inner: Arc::new(Inner {
                connection: connection.into(),
                script: Script::new(SCRIPT),
                prefix: self.prefix.into_boxed_slice(),
                timeout: self.timeout,
                leases: self.leasing.map(|leasing| Arc::new(Leases::new(leasing))),
                reserve: Arc::new(Script::new(RESERVE)),
                round_trips: Arc::new(AtomicU64::new(0)),
            }),
        }
    }
}

fn window_micros(window: Duration) -> u64 {
    u64::try_from(window.as_micros())
        .unwrap_or(u64::MAX)
        .clamp(1, MAX_EXACT)
}

impl RateLimitStore for RedisStore {
    fn try_hit(&self, hit: &Hit<'_>) -> Option<Result<Decision, StoreError>> {
        Some(Ok(self.inner.leases.as_ref()?.try_hit(hit)?))
    }

    fn hit(&self, hit: &Hit<'_>) -> HitFuture {
        if let Some(leases) = &self.inner.leases {
            return self.leased_hit(leases, hit);
        }
        // Everything the future needs is copied out of `hit` now: it must not borrow it.
        let quotas = hit.quotas();
        let mut keys = Vec::with_capacity(quotas.len());
        let mut args = Vec::with_capacity(1 + 2 * quotas.len());
        let mut limits = [0u64; MAX_LIMITS];
        args.push(hit.cost().to_string());
        for (i, quota) in quotas.iter().enumerate() {
            keys.push(self.counter_key(hit.key(), i, quota.window()));
            args.push(window_micros(quota.window()).to_string());
            limits[i] = quota.limit().min(MAX_EXACT);
            args.push(limits[i].to_string());
        }
        let inner = Arc::clone(&self.inner);
        Box::pin(async move {
            inner.round_trips.fetch_add(1, Ordering::Relaxed);
            let mut connection = inner.connection.clone();
            let mut invocation = inner.script.prepare_invoke();
            for key in &keys {
                invocation.key(key.as_slice());
            }
            for arg in &args {
                invocation.arg(arg.as_str());
            }
            let answer = tokio::time::timeout(
                inner.timeout,
                invocation.invoke_async::<Vec<u64>>(&mut connection),
            )
            .await;
            match answer {
                Err(_) => Err(StoreError::timeout()),
                Ok(Err(error)) => Err(StoreError::unavailable(error)),
                Ok(Ok(values)) => decision(&values, &limits[..keys.len()]),
            }
        })
    }
}

impl RedisStore {
    fn leased_hit(&self, leases: &Arc<Leases>, hit: &Hit<'_>) -> HitFuture {
        let quotas = hit.quotas();
        let mut copied = [Quota::per_second(1); MAX_LIMITS];
        let mut limits = [0u64; MAX_LIMITS];
        let mut keys = Vec::with_capacity(quotas.len());
        for (i, quota) in quotas.iter().enumerate() {
            copied[i] = *quota;
            limits[i] = quota.limit().min(MAX_EXACT);
            keys.push(self.counter_key(hit.key(), i, quota.window()));
        }
        let reserve = Reserve {
            connection: self.inner.connection.clone(),
            script: Arc::clone(&self.inner.reserve),
            keys,
            quotas: copied,
            limits,
            len: quotas.len(),
            timeout: self.inner.timeout,
            round_trips: Arc::clone(&self.inner.round_trips),
        };
        let key = Leases::slot_key(hit);
        Box::pin(Arc::clone(leases).hit(reserve, key, u64::from(hit.cost())))
    }
}

/// Reads the script's answer.
fn decision(values: &[u64], limits: &[u64]) -> Result<Decision, StoreError> {
    if values.len() != 1 + 3 * limits.len() {
        return Err(StoreError::unavailable(
            "unexpected answer from the Redis script",
        ));
    }
    let mut statuses = [LimitStatus::new(0, 0, Duration::ZERO, false); MAX_LIMITS];
    for (i, (status, chunk)) in statuses.iter_mut().zip(values[1..].chunks(3)).enumerate() {
        *status = LimitStatus::new(
            limits[i],
            chunk[0],
            Duration::from_micros(chunk[1]),
            chunk[2] == 1,
        );
    }
    Ok(Decision::new(&statuses[..limits.len()]))
}

#[cfg(test)]
mod proptests;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_scripts_answer() {
        let d = decision(&[0, 3, 1_500_000, 0, 0, 40_000_000, 1], &[5, 10]).unwrap();
        assert!(!d.is_allowed());
        assert_eq!(d.statuses()[0].remaining(), 3);
        assert!(!d.statuses()[0].exceeded());
        assert_eq!(d.statuses()[1].limit(), 10);
        assert_eq!(d.retry_after(), Some(Duration::from_secs(40)));
        assert!(decision(&[1, 2], &[5]).is_err());
    }

    #[test]
    fn windows_in_whole_microseconds() {
        assert_eq!(window_micros(Duration::from_secs(3600)), 3_600_000_000);
        assert_eq!(window_micros(Duration::from_nanos(10)), 1);
        assert_eq!(window_micros(Duration::MAX), MAX_EXACT);
    }
}
