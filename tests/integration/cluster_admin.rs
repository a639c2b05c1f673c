//! The two Redis deployments `scripts/test.sh` starts (one server, and a cluster of three
//! primaries with a replica each), and a real failover on the cluster: the primary owning a
//! key is stopped (SIGSTOP, as a hung or partitioned machine) and its replica promoted.
#![allow(dead_code, unreachable_pub)]

use std::time::{Duration, Instant};

use redis::aio::ConnectionManager;
use redis::cluster::ClusterClient;
use tokio::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};
use tollgate::redis::{RedisConnection, RedisTarget};

use crate::servers::{redis_cluster_urls, redis_url};

/// Tests on the cluster hold it shared; a failover test holds it alone, so no other test sees
/// its shard go away.
static FAILOVER: RwLock<()> = RwLock::const_new(());

/// Both deployments, each with the guard that keeps failovers out while it is used.
pub async fn both() -> Vec<(
    &'static str,
    RedisTarget,
    Option<RwLockReadGuard<'static, ()>>,
)> {
    vec![
        ("single", RedisTarget::single(redis_url()), None),
        ("cluster", cluster(), Some(FAILOVER.read().await)),
    ]
}

/// The cluster, through every node as a seed.
pub fn cluster() -> RedisTarget {
    RedisTarget::cluster(redis_cluster_urls())
}

/// Holds the cluster shared (no failover meanwhile).
pub async fn shared() -> RwLockReadGuard<'static, ()> {
    FAILOVER.read().await
}

/// Holds the cluster alone, for a failover.
pub async fn exclusive() -> RwLockWriteGuard<'static, ()> {
    FAILOVER.write().await
}

/// A plain connection to `target`, for looking at what the backends wrote.
pub async fn raw(target: &RedisTarget) -> RedisConnection {
    if target.is_cluster() {
        let client = ClusterClient::builder(redis_cluster_urls())
            .connection_timeout(Duration::from_secs(2))
            .response_timeout(Duration::from_secs(2))
            .build()
            .unwrap();
        client.get_async_connection().await.unwrap().into()
    } else {
        let client = redis::Client::open(redis_url()).unwrap();
        ConnectionManager::new(client).await.unwrap().into()
    }
}

async fn node(addr: &str) -> redis::aio::MultiplexedConnection {
    redis::Client::open(format!("redis://{addr}"))
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

/// One line of `CLUSTER NODES`.
#[derive(Debug, Clone)]
struct NodeLine {
    id: String,
    addr: String,
    primary: bool,
    primary_id: String,
    slots: Vec<(u16, u16)>,
}

async fn nodes(from: &str) -> Vec<NodeLine> {
    let text: String = redis::cmd("CLUSTER")
        .arg("NODES")
        .query_async(&mut node(from).await)
        .await
        .unwrap();
    text.lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            let fields: Vec<&str> = line.split(' ').collect();
            let slots = fields[8..]
                .iter()
                .filter(|s| !s.starts_with('['))
                .map(|s| match s.split_once('-') {
                    Some((a, b)) => (a.parse().unwrap(), b.parse().unwrap()),
                    None => (s.parse().unwrap(), s.parse().unwrap()),
                })
                .collect();
            NodeLine {
                id: fields[0].to_owned(),
                addr: fields[1].split('@').next().unwrap().to_owned(),
                primary: fields[2].contains("master") && !fields[2].contains("fail"),
                primary_id: fields[3].to_owned(),
                slots,
            }
        })
        .collect()
}

fn seed() -> String {
    redis_cluster_urls()[0]
        .trim_start_matches("redis://")
        .to_owned()
}

/// A stopped primary, its replica promoted in its place.
pub struct Failover {
    /// The stopped primary's address.
    pub stopped: String,
    /// The promoted replica's address.
    pub promoted: String,
    pid: u32,
}

/// The address of the primary serving `key`'s slot now.
pub async fn primary_of(key: &[u8]) -> String {
    let slot: u16 = redis::cmd("CLUSTER")
        .arg("KEYSLOT")
        .arg(key)
        .query_async(&mut node(&seed()).await)
        .await
        .unwrap();
    let lines = nodes(&seed()).await;
    lines
        .iter()
        .find(|n| n.primary && n.slots.iter().any(|&(a, b)| a <= slot && slot <= b))
        .expect("a primary serves every slot")
        .addr
        .clone()
}

/// Stops (SIGSTOP) the primary serving `key`; nothing answers for its slots until
/// [`promote`](Failover::promote).
pub async fn stop_primary_of(key: &[u8]) -> Failover {
    let primary = primary_of(key).await;
    let info: String = redis::cmd("INFO")
        .arg("server")
        .query_async(&mut node(&primary).await)
        .await
        .unwrap();
    let pid: u32 = info
        .lines()
        .find_map(|l| l.strip_prefix("process_id:"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let lines = nodes(&seed()).await;
    let primary_id = lines.iter().find(|n| n.addr == primary).unwrap().id.clone();
    let replica = lines
        .iter()
        .find(|n| !n.primary && n.primary_id == primary_id)
        .expect("every primary has a replica")
        .addr
        .clone();
    signal(pid, "-STOP");
    Failover {
        stopped: primary,
        promoted: replica,
        pid,
    }
}

fn signal(pid: u32, signal: &str) {
    let status = std::process::Command::new("kill")
        .arg(signal)
        .arg(pid.to_string())
        .status()
        .unwrap();
    assert!(status.success(), "kill {signal} {pid}");
}

impl Failover {
    /// Promotes the replica (`CLUSTER FAILOVER TAKEOVER`: no agreement with the stopped
    /// primary needed) and returns once it serves as a primary.
    pub async fn promote(&self) -> Duration {
        let started = Instant::now();
        let mut replica = node(&self.promoted).await;
        let _: () = redis::cmd("CLUSTER")
            .arg("FAILOVER")
            .arg("TAKEOVER")
            .query_async(&mut replica)
            .await
            .unwrap();
        loop {
            let role: Vec<redis::Value> =
                redis::cmd("ROLE").query_async(&mut replica).await.unwrap();
            if matches!(role.first(), Some(redis::Value::BulkString(b)) if b == b"master") {
                return started.elapsed();
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "the replica was not promoted"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Continues the stopped node, which rejoins as the new primary's replica, and returns once
    /// the cluster is whole again (every node agreeing, the old primary replicating).
    pub async fn heal(self) {
        signal(self.pid, "-CONT");
        let started = Instant::now();
        loop {
            let mut whole = true;
            let mut old = node(&self.stopped).await;
            let info: String = redis::cmd("INFO")
                .arg("replication")
                .query_async(&mut old)
                .await
                .unwrap();
            whole &= info.contains("role:slave") && info.contains("master_link_status:up");
            for url in redis_cluster_urls() {
                let mut c = node(url.trim_start_matches("redis://")).await;
                let info: String = redis::cmd("CLUSTER")
                    .arg("INFO")
                    .query_async(&mut c)
                    .await
                    .unwrap();
                whole &= info.contains("cluster_state:ok");
            }
            let lines = nodes(&seed()).await;
            whole &= lines.iter().filter(|n| n.primary).count() == 3;
            if whole {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "the cluster did not heal"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Failover {
    fn drop(&mut self) {
        // A failed assertion must not leave a node stopped for the tests after it.
        if std::thread::panicking() {
            let _ = std::process::Command::new("kill")
                .arg("-CONT")
                .arg(self.pid.to_string())
                .status();
        }
    }
}

/// Waits until every replica has what its primary has, so a failover loses nothing written
/// before it.
pub async fn replicated() {
    let started = Instant::now();
    for url in redis_cluster_urls() {
        let mut c = node(url.trim_start_matches("redis://")).await;
        loop {
            let info: String = redis::cmd("INFO")
                .arg("replication")
                .query_async(&mut c)
                .await
                .unwrap();
            if !info.contains("role:master") {
                break;
            }
            let field = |name: &str| -> Option<i64> {
                info.lines()
                    .find_map(|l| l.strip_prefix(name))
                    .map(|v| v.trim().parse().unwrap())
            };
            let primary = field("master_repl_offset:").unwrap();
            let replica = info
                .lines()
                .find(|l| l.starts_with("slave0:"))
                .and_then(|l| l.split(',').find_map(|f| f.strip_prefix("offset=")))
                .map(|v| v.parse::<i64>().unwrap());
            if replica.is_some_and(|r| r >= primary) {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "replication did not catch up"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}
