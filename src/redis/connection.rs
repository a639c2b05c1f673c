//! One connection type for both deployments, and connecting to a [`RedisTarget`].

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use ::redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use ::redis::cluster::{ClusterClient, ClusterClientBuilder};
use ::redis::cluster_async::ClusterConnection;
use ::redis::{Client, Cmd, Pipeline, RedisFuture, Value};

use super::{RedisError, RedisTarget, timed_out};

/// A multiplexed, self-healing connection to one server (a [`ConnectionManager`]) or to a Redis
/// Cluster (a [`ClusterConnection`], which routes every command to the node owning its slot).
/// Cheap to clone; clones share the connection.
///
/// The backends make their own with `connect`; build one yourself to configure what they do not
/// (TLS, a username), keeping its response timeout bounded, and hand it to the backend's `build`.
#[derive(Clone)]
pub struct RedisConnection(Inner);

#[derive(Clone)]
enum Inner {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
    Healing(Arc<Healing>),
}

impl RedisConnection {
    /// Whether this connection is to a Redis Cluster.
    pub fn is_cluster(&self) -> bool {
        !matches!(self.0, Inner::Single(_))
    }
}

/// A cluster connection that rebuilds itself when a node stops answering.
///
/// The cluster client learns a new topology from a `MOVED` answer or a dropped connection.
/// A primary that hangs (a stopped process, a partitioned machine) gives neither: every command
/// for its slots times out, even after its replica has been promoted. So a command that fails
/// to reach the cluster, or is abandoned by its caller's timeout, has a fresh connection built
/// in the background (one at a time, at most one every [`REBUILD_EVERY`]), which reads the
/// topology from the nodes that answer; later commands use it.
struct Healing {
    client: ClusterClient,
    current: RwLock<ClusterConnection>,
    rebuilding: AtomicBool,
    last_rebuild: Mutex<Option<Instant>>,
    timeout: Duration,
}

/// The least time between two rebuilds.
const REBUILD_EVERY: Duration = Duration::from_millis(250);

impl Healing {
    fn current(&self) -> ClusterConnection {
        self.current
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn rebuild_soon(self: &Arc<Self>) {
        if self.rebuilding.swap(true, Ordering::AcqRel) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            self.rebuilding.store(false, Ordering::Release);
            return;
        };
        let this = Arc::clone(self);
        runtime.spawn(async move {
            let since = this
                .last_rebuild
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .map(|at| at.elapsed());
            if let Some(since) = since.filter(|&since| since < REBUILD_EVERY) {
                tokio::time::sleep(REBUILD_EVERY - since).await;
            }
            let fresh =
                tokio::time::timeout(this.timeout * 2, this.client.get_async_connection()).await;
            if let Ok(Ok(connection)) = fresh {
                *this
                    .current
                    .write()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = connection;
            } else {
                log_warn!(
                    "rebuilding the Redis Cluster connection failed; retried on the next failure"
                );
            }
            *this
                .last_rebuild
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(Instant::now());
            this.rebuilding.store(false, Ordering::Release);
        });
    }
}

/// Asks for a rebuild unless disarmed: dropped with the command unfinished (its caller's
/// timeout) or finished with a failure to reach the cluster.
struct RebuildUnlessDone(Option<Arc<Healing>>);

impl RebuildUnlessDone {
    fn finish<T>(mut self, result: &::redis::RedisResult<T>) {
        if !result.as_ref().err().is_some_and(super::unreachable) {
            self.0 = None;
        }
    }
}

impl Drop for RebuildUnlessDone {
    fn drop(&mut self) {
        if let Some(healing) = self.0.take() {
            healing.rebuild_soon();
        }
    }
}

impl fmt::Debug for RedisConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisConnection")
            .field("cluster", &self.is_cluster())
            .finish_non_exhaustive()
    }
}

impl From<ConnectionManager> for RedisConnection {
    fn from(connection: ConnectionManager) -> Self {
        Self(Inner::Single(connection))
    }
}

impl From<ClusterConnection> for RedisConnection {
    fn from(connection: ClusterConnection) -> Self {
        Self(Inner::Cluster(connection))
    }
}

impl ConnectionLike for RedisConnection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match &mut self.0 {
            Inner::Single(c) => c.req_packed_command(cmd),
            Inner::Cluster(c) => c.req_packed_command(cmd),
            Inner::Healing(healing) => {
                let mut connection = healing.current();
                let guard = RebuildUnlessDone(Some(Arc::clone(healing)));
                Box::pin(async move {
                    let result = connection.req_packed_command(cmd).await;
                    guard.finish(&result);
                    result
                })
            }
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match &mut self.0 {
            Inner::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Inner::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
            Inner::Healing(healing) => {
                let mut connection = healing.current();
                let guard = RebuildUnlessDone(Some(Arc::clone(healing)));
                Box::pin(async move {
                    let result = connection
                        .req_packed_commands(pipeline, offset, count)
                        .await;
                    guard.finish(&result);
                    result
                })
            }
        }
    }

    fn get_db(&self) -> i64 {
        match &self.0 {
            Inner::Single(c) => c.get_db(),
            Inner::Cluster(c) => c.get_db(),
            Inner::Healing(_) => 0,
        }
    }
}

/// A reconnecting connection to `target`: connecting and every answer bounded by `timeout`.
///
/// On one server, a failed command is retried `retries` times while the manager reconnects in
/// the background (a rate-limit decision never waits for reconnection, so it asks for one). On
/// a cluster, `retries` also covers following redirections and a failover's new primary, with
/// short waits, all within `timeout`.
#[cfg_attr(
    not(any(feature = "api-key", feature = "jwt-base", feature = "rate-limit")),
    allow(dead_code)
)]
pub(crate) async fn connect(
    target: &RedisTarget,
    timeout: Duration,
    retries: usize,
) -> Result<RedisConnection, RedisError> {
    if target.is_cluster() {
        if target.urls().is_empty() {
            return Err(RedisError::from(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "a Redis Cluster needs at least one seed node",
            )));
        }
        let client = ClusterClientBuilder::new(target.urls().to_vec())
            .connection_timeout(timeout)
            .response_timeout(timeout)
            .overall_response_timeout(Some(timeout))
            .retries(u32::try_from(retries.max(3)).unwrap_or(u32::MAX))
            .min_retry_wait(10)
            .max_retry_wait(250)
            .retry_wait_formula(10, 2)
            .build()?;
        let connection = tokio::time::timeout(timeout, client.get_async_connection())
            .await
            .unwrap_or_else(|_| Err(timed_out("connecting to the Redis Cluster timed out").0))?;
        Ok(RedisConnection(Inner::Healing(Arc::new(Healing {
            client,
            current: RwLock::new(connection),
            rebuilding: AtomicBool::new(false),
            last_rebuild: Mutex::new(None),
            timeout,
        }))))
    } else {
        let client = Client::open(target.urls()[0].as_str())?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(retries)
            .set_max_delay(Duration::from_millis(500));
        Ok(client
            .get_connection_manager_with_config(config)
            .await?
            .into())
    }
}
