//! `RedisStore` against the real Redis server `scripts/test.sh` starts: one limit shared by
//! two "nodes" (two `RateLimitLayer`s, each with its own connection, on two axum servers),
//! the same decisions as the in-memory store, and the failure policy when Redis goes away.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use axum::Router;
use axum::routing::get;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tollgate::Quota;
use tollgate::rate_limit::redis::RedisStore;
use tollgate::rate_limit::{
    Decision, Hit, Key, Limit, MemoryStore, OnStoreError, RateLimitLayer, RateLimitStore,
    RequestHead,
};

use tollgate::redis::RedisTarget;

use crate::cluster_admin;
use crate::servers::{Proxy, redis_url, unique};
use crate::support::{Answer, HttpClient, serve_axum};

/// Windows are aligned to the Unix epoch on the Redis server's clock. A 30-day window makes a
/// boundary falling inside a test (which would reset the counts) vanishingly unlikely.
const LONG: Duration = Duration::from_secs(30 * 86_400);

fn long(limit: u64) -> Quota {
    Quota::new(limit, LONG).unwrap()
}

type ByClient = fn(&RequestHead<'_>) -> Option<Key<'static>>;

/// Keys requests by their `x-client` header.
fn by_client(head: &RequestHead<'_>) -> Option<Key<'static>> {
    let value = head.headers().get("x-client")?;
    Some(Key::from(value.as_bytes().to_vec()))
}

async fn store_at(target: impl Into<RedisTarget>, prefix: &str) -> RedisStore {
    RedisStore::builder()
        .prefix(prefix)
        .timeout(Duration::from_millis(500))
        .connect(target)
        .await
        .unwrap()
}

/// A node: an axum server limited through `store`.
async fn node(layer: RateLimitLayer<ByClient, RedisStore>) -> HttpClient {
    let router = Router::new()
        .route("/", get(|| async { "ok" }))
        .route_layer(layer);
    HttpClient::new(serve_axum(router).await)
}

fn layer(quota: Quota, store: RedisStore) -> RateLimitLayer<ByClient, RedisStore> {
    RateLimitLayer::new(quota)
        .key(by_client as ByClient)
        .with_store(store)
        .unwrap()
        .ietf_headers(true)
}

async fn get_as(client: &HttpClient, who: &str) -> Answer {
    client.get("/", &[("x-client", who.as_bytes())]).await
}

fn redis_addr() -> SocketAddr {
    let url = redis_url();
    let hostport = url
        .trim_start_matches("redis://")
        .split('/')
        .next()
        .unwrap();
    hostport.parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fixed_window_on_redis_is_exact_across_two_nodes() {
    for (_, target, _guard) in cluster_admin::both().await {
        exact_across_two_nodes(&target).await;
    }
}

async fn exact_across_two_nodes(target: &RedisTarget) {
    const QUOTA: u64 = 60;
    const REQUESTS: usize = 300;
    let prefix = unique("tollgate-test:rl");
    // Generous timeouts: this test is about exactness, not about a loaded CI machine.
    let slow = |store| layer(long(QUOTA), store).store_timeout(Some(Duration::from_secs(5)));
    let a = node(slow(store_at(target, &prefix).await)).await;
    let b = node(slow(store_at(target, &prefix).await)).await;

    let tasks: Vec<_> = (0..REQUESTS)
        .map(|i| {
            let client = if i % 2 == 0 { a.clone() } else { b.clone() };
            tokio::spawn(async move { get_as(&client, "shared").await.status.as_u16() })
        })
        .collect();
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(task.await.unwrap());
    }
    let admitted = statuses.iter().filter(|&&s| s == 200).count();
    let refused = statuses.iter().filter(|&&s| s == 429).count();
    assert_eq!(admitted as u64, QUOTA, "{statuses:?}");
    assert_eq!(refused, REQUESTS - QUOTA as usize, "{statuses:?}");

    // Both nodes see the one exhausted limit; another key is untouched.
    assert_eq!(get_as(&a, "shared").await.status, 429);
    assert_eq!(get_as(&b, "shared").await.status, 429);
    assert_eq!(get_as(&b, "other").await.status, 200);
}

/// The same sequence of hits on Redis and in memory: identical decisions.
#[tokio::test]
async fn redis_decides_like_the_memory_store_all_or_nothing_with_costs() {
    for (_, target, _guard) in cluster_admin::both().await {
        decides_like_the_memory_store(&target).await;
    }
}

async fn decides_like_the_memory_store(target: &RedisTarget) {
    let redis = store_at(target, &unique("tollgate-test:rl")).await;
    let memory = MemoryStore::new();
    // Two windows of different lengths, so each has a counter of its own.
    let quotas = [
        long(5),
        Quota::new(8, LONG + Duration::from_secs(86_400)).unwrap(),
    ];
    let costs = [4, 2, 1, 4, 1, 9, 0];
    let mut seen = Vec::new();
    for cost in costs {
        let hit = Hit::new(b"client", &quotas, cost, SystemTime::now());
        let on_redis = redis.hit(&hit).await.unwrap();
        let in_memory = memory.try_hit(&hit).unwrap().unwrap();
        assert_eq!(summary(&on_redis), summary(&in_memory), "cost {cost}");
        seen.push(summary(&on_redis));
    }
    assert_eq!(
        seen,
        [
            (true, vec![(1, false), (4, false)]),
            // The first limit refuses: the second is not charged.
            (false, vec![(1, true), (4, false)]),
            (true, vec![(0, false), (3, false)]),
            (false, vec![(0, true), (3, true)]),
            (false, vec![(0, true), (3, false)]),
            // A cost above a limit never passes.
            (false, vec![(0, true), (3, true)]),
            (true, vec![(0, false), (3, false)]),
        ]
    );

    // Resets come from the server's clock: the window's end, give or take this test's run.
    let hit = Hit::new(b"client", &quotas, 1, SystemTime::now());
    let refused = redis.hit(&hit).await.unwrap();
    let expected = tollgate::rate_limit::Window::at(SystemTime::now(), LONG).reset();
    let reset = refused.statuses()[0].reset();
    assert!(
        reset.abs_diff(expected) < Duration::from_secs(2),
        "{reset:?} vs {expected:?}"
    );
    assert_eq!(refused.retry_after(), Some(reset));

    // The counter's expiry was set when its window started: at the window's end.
    let mut connection = cluster_admin::raw(target).await;
    let pttl: i64 = redis::cmd("PTTL")
        .arg(redis.counter_key(b"client", 0, LONG))
        .query_async(&mut connection)
        .await
        .unwrap();
    let pttl = Duration::from_millis(pttl.try_into().unwrap());
    assert!(
        pttl.abs_diff(expected) < Duration::from_secs(2),
        "{pttl:?} vs {expected:?}"
    );
}

fn summary(decision: &Decision) -> (bool, Vec<(u64, bool)>) {
    (
        decision.is_allowed(),
        decision
            .statuses()
            .iter()
            .map(|s| (s.remaining(), s.exceeded()))
            .collect(),
    )
}

#[tokio::test]
async fn headers_and_retry_after_come_from_the_redis_decision() {
    for (_, target, _guard) in cluster_admin::both().await {
        headers_from_the_redis_decision(&target).await;
    }
}

async fn headers_from_the_redis_decision(target: &RedisTarget) {
    let prefix = unique("tollgate-test:rl");
    let limits = [
        Limit::new("small", long(2)).unwrap(),
        Limit::new("large", Quota::new(10, LONG * 2).unwrap()).unwrap(),
    ];
    let layer = RateLimitLayer::with_limits(limits)
        .unwrap()
        .key(by_client as ByClient)
        .with_store(store_at(target, &prefix).await)
        .unwrap()
        .ietf_headers(true)
        .legacy_headers(true);
    let client = node(layer).await;
    let t = |window: Duration| {
        tollgate::rate_limit::Window::at(SystemTime::now(), window)
            .reset()
            .as_secs_f64()
            .ceil() as u64
    };
    let close = |header: &str, window: Duration| {
        let got: u64 = header.parse().unwrap();
        assert!(got.abs_diff(t(window)) <= 1, "{got} vs {}", t(window));
    };

    let first = get_as(&client, "h").await;
    assert_eq!(first.status, 200);
    assert_eq!(
        first.header("ratelimit-policy"),
        Some(
            format!(
                "\"small\";q=2;w={}, \"large\";q=10;w={}",
                LONG.as_secs(),
                LONG.as_secs() * 2
            )
            .as_str()
        )
    );
    let ratelimit = first.header("ratelimit").unwrap();
    assert!(ratelimit.starts_with("\"small\";r=1;t="), "{ratelimit}");
    assert!(ratelimit.contains("\"large\";r=9;t="), "{ratelimit}");
    assert_eq!(first.header("x-ratelimit-remaining"), Some("1"));

    assert_eq!(get_as(&client, "h").await.status, 200);
    let refused = get_as(&client, "h").await;
    assert_eq!(refused.status, 429);
    assert_eq!(refused.json()["code"], "rate_limited");
    close(refused.header("retry-after").unwrap(), LONG);
    let ratelimit = refused.header("ratelimit").unwrap();
    assert!(ratelimit.starts_with("\"small\";r=0;t="), "{ratelimit}");
    // Refused by `small`: `large` kept its 8.
    assert!(ratelimit.contains("\"large\";r=8;t="), "{ratelimit}");
    let small_t = ratelimit.split(['=', ',']).nth(2).unwrap();
    close(small_t, LONG);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_applies_the_policy_within_the_timeout_and_recovers() {
    let proxy = Proxy::start(redis_addr()).await;
    let url = format!("redis://{}", proxy.addr());
    let prefix = unique("tollgate-test:rl");
    let timeout = Duration::from_millis(300);
    let with = |policy, store| {
        layer(long(100), store)
            .on_store_error(policy)
            .store_timeout(Some(timeout))
    };
    let closed = node(with(
        OnStoreError::FailClosed,
        store_at(&url, &prefix).await,
    ))
    .await;
    let open = node(with(OnStoreError::FailOpen, store_at(&url, &prefix).await)).await;

    let before = get_as(&closed, "outage").await;
    assert_eq!(before.status, 200);
    assert!(
        before
            .header("ratelimit")
            .unwrap()
            .starts_with("\"default\";r=99;")
    );
    assert!(get_as(&open, "outage").await.header("ratelimit").is_some());

    proxy.cut().await;
    for _ in 0..3 {
        let started = Instant::now();
        let answer = get_as(&closed, "outage").await;
        let took = started.elapsed();
        assert_eq!(answer.status, 503, "{}", answer.text());
        assert_eq!(answer.json()["code"], "unavailable", "{}", answer.text());
        assert!(took < timeout + Duration::from_millis(700), "took {took:?}");

        let started = Instant::now();
        let answer = get_as(&open, "outage").await;
        let took = started.elapsed();
        assert_eq!(answer.status, 200);
        assert!(
            answer.header("ratelimit").is_none(),
            "let through uncounted"
        );
        assert!(took < timeout + Duration::from_millis(700), "took {took:?}");
    }

    proxy.restore().await;
    // Both nodes count again once their connections are back, from where the count was.
    for client in [&closed, &open] {
        let started = Instant::now();
        let answer = loop {
            let answer = get_as(client, "outage").await;
            if answer.status == 200 && answer.header("ratelimit").is_some() {
                break answer;
            }
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "still failing: {} {}",
                answer.status,
                answer.text()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        eprintln!(
            "counting again {:?} after Redis returned",
            started.elapsed()
        );
        let remaining: u64 = answer.header("ratelimit").unwrap()["\"default\";r=".len()..]
            .split(';')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert!(
            remaining <= 97,
            "the count before the outage was kept: r={remaining}"
        );
    }
}

#[allow(dead_code)]
fn public_types_are_send_and_sync() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<RedisStore>();
    send_sync::<Arc<RedisStore>>();
}

/// A TCP relay to Redis that can stall: while stalled it holds every byte in both directions,
/// connections stay open, and Redis seems to hang rather than to be gone.
struct Stall {
    addr: SocketAddr,
    stalled: Arc<AtomicBool>,
}

impl Stall {
    async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let stalled = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stalled);
        tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                let Ok(outbound) = TcpStream::connect(upstream).await else {
                    continue;
                };
                let (in_read, in_write) = inbound.into_split();
                let (out_read, out_write) = outbound.into_split();
                tokio::spawn(relay(in_read, out_write, Arc::clone(&flag)));
                tokio::spawn(relay(out_read, in_write, Arc::clone(&flag)));
            }
        });
        Self { addr, stalled }
    }

    fn stall(&self, stalled: bool) {
        self.stalled.store(stalled, Ordering::SeqCst);
    }
}

async fn relay(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, stalled: Arc<AtomicBool>) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        while stalled.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        // Bytes read just before a stall are held too.
        while stalled.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_redis_times_out_into_the_policy_and_never_holds_a_request() {
    let stall = Stall::start(redis_addr()).await;
    let url = format!("redis://{}", stall.addr);
    let prefix = unique("tollgate-test:rl");
    let timeout = Duration::from_millis(250);
    let with = |policy, store| {
        layer(long(100), store)
            .on_store_error(policy)
            .store_timeout(Some(timeout))
    };
    let closed = node(with(
        OnStoreError::FailClosed,
        store_at(&url, &prefix).await,
    ))
    .await;
    let open = node(with(OnStoreError::FailOpen, store_at(&url, &prefix).await)).await;
    assert_eq!(get_as(&closed, "hang").await.status, 200);

    stall.stall(true);
    for (client, status) in [(&closed, 503), (&open, 200)] {
        let started = Instant::now();
        let answer = get_as(client, "hang").await;
        let took = started.elapsed();
        assert_eq!(answer.status, status, "{}", answer.text());
        assert!(answer.header("ratelimit").is_none());
        assert!(took >= timeout, "answered before the timeout: {took:?}");
        assert!(took < timeout * 4, "took {took:?}");
    }

    stall.stall(false);
    let started = Instant::now();
    loop {
        let answer = get_as(&closed, "hang").await;
        if answer.status == 200 && answer.header("ratelimit").is_some() {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{}",
            answer.status
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
