//! Two "nodes" (two `ApiKeys` with caches of their own) on one PostgreSQL database, told of
//! each other's revocations and rotations over the real Redis server `scripts/test.sh` starts.

use std::time::{Duration, Instant};

use tollgate::api_key::postgres::PostgresKeyStore;
use tollgate::api_key::redis::{RedisInvalidation, Subscription};
use tollgate::api_key::{ApiKeyLayer, ApiKeys, KeyStore, NewKey};

use tollgate::redis::RedisTarget;

use crate::cluster_admin;
use crate::postgres::migrated_pool;
use crate::servers::{Proxy, redis_url, unique};
use crate::support::{HttpClient, serve_axum};

pub(crate) struct Node {
    pub(crate) keys: ApiKeys<PostgresKeyStore>,
    client: HttpClient,
    _subscription: Subscription,
}

/// A node whose cache would otherwise serve a key for an hour.
async fn node(channel: &str) -> Node {
    node_at(&redis_url(), channel).await
}

pub(crate) async fn node_at(redis: impl Into<RedisTarget>, channel: &str) -> Node {
    let invalidation = RedisInvalidation::connect(redis, channel).await.unwrap();
    let keys = ApiKeys::builder(PostgresKeyStore::new(migrated_pool().await))
        .positive_ttl(Duration::from_secs(3600))
        .on_invalidate(invalidation.hook())
        .build();
    let subscription = invalidation.subscribe(keys.clone()).await.unwrap();
    let router = axum::Router::new()
        .route("/", axum::routing::get(|| async { "ok" }))
        .route_layer(ApiKeyLayer::new(keys.clone()));
    Node {
        keys,
        client: HttpClient::new(serve_axum(router).await),
        _subscription: subscription,
    }
}

impl Node {
    pub(crate) async fn status(&self, key: &str) -> u16 {
        self.client
            .get("/", &[("x-api-key", key.as_bytes())])
            .await
            .status
            .as_u16()
    }

    /// How long until this node answers `status` for `key`, polling for up to `limit`.
    pub(crate) async fn until(&self, key: &str, status: u16, limit: Duration) -> Duration {
        let started = Instant::now();
        loop {
            if self.status(key).await == status {
                return started.elapsed();
            }
            assert!(
                started.elapsed() < limit,
                "still not {status} after {limit:?}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

#[tokio::test]
async fn a_key_revoked_on_node_a_is_refused_on_node_b_within_a_second() {
    for (_, target, _guard) in cluster_admin::both().await {
        revoked_on_a_refused_on_b(&target).await;
    }
}

async fn revoked_on_a_refused_on_b(target: &RedisTarget) {
    let channel = unique("tollgate-test:invalidate");
    let (a, b) = (
        node_at(target, &channel).await,
        node_at(target, &channel).await,
    );
    let app = unique("redis-revoke");
    let key = a
        .keys
        .generate(NewKey::new(&app, "Two nodes"))
        .await
        .unwrap();
    let plaintext = key.key().expose().to_owned();

    assert_eq!(b.status(&plaintext).await, 200);
    assert_eq!(b.status(&plaintext).await, 200, "served from B's cache");

    assert!(a.keys.revoke(key.record().id()).await.unwrap());
    assert_eq!(
        a.status(&plaintext).await,
        401,
        "A evicts its own cache at once"
    );
    let took = b.until(&plaintext, 401, Duration::from_secs(1)).await;
    eprintln!("revocation reached node B in {took:?}");
}

#[tokio::test]
async fn a_zero_grace_rotation_on_node_a_retires_the_key_on_node_b_within_a_second() {
    let channel = unique("tollgate-test:invalidate");
    let (a, b) = (node(&channel).await, node(&channel).await);
    let app = unique("redis-rotate");
    let old = a
        .keys
        .generate(NewKey::new(&app, "Two nodes"))
        .await
        .unwrap();
    let old = old.key().expose().to_owned();
    assert_eq!(b.status(&old).await, 200);

    let rotation = a
        .keys
        .rotate(NewKey::new(&app, "Two nodes"), Duration::ZERO)
        .await
        .unwrap();
    b.until(&old, 401, Duration::from_secs(1)).await;
    assert_eq!(b.status(rotation.generated().key().expose()).await, 200);
}

#[tokio::test]
async fn without_a_message_node_b_keeps_serving_its_cache() {
    // The control: on another channel, B never hears of A's revocation and serves the key
    // from its cache, which is what the pub/sub message fixes.
    let (a, b) = (
        node(&unique("tollgate-test:a")).await,
        node(&unique("tollgate-test:b")).await,
    );
    let key = a
        .keys
        .generate(NewKey::new(unique("redis-control"), "Control"))
        .await
        .unwrap();
    let plaintext = key.key().expose().to_owned();
    assert_eq!(b.status(&plaintext).await, 200);
    a.keys.revoke(key.record().id()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(b.status(&plaintext).await, 200);
    assert!(
        b.keys
            .store()
            .find_by_digest(key.record().digest())
            .await
            .unwrap()
            .is_some()
    );
}

#[tokio::test]
async fn publish_reaches_every_subscriber_and_connect_fails_fast_on_a_closed_port() {
    let channel = unique("tollgate-test:invalidate");
    let (_a, _b) = (node(&channel).await, node(&channel).await);
    let invalidation = RedisInvalidation::connect(&redis_url(), &channel)
        .await
        .unwrap();
    let digest = tollgate::api_key::KeyFormat::default().generate().digest();
    assert_eq!(invalidation.publish(&digest).await.unwrap(), 2);

    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let started = Instant::now();
    let result = RedisInvalidation::connect(&format!("redis://127.0.0.1:{port}"), &channel).await;
    assert!(result.is_err());
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}

/// How many connections Redis has subscribed to `channel`.
async fn subscribers(channel: &str) -> i64 {
    use tollgate::api_key::redis::redis_crate;
    let client = redis_crate::Client::open(redis_url()).unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    let (_, count): (String, i64) = redis_crate::cmd("PUBSUB")
        .arg("NUMSUB")
        .arg(channel)
        .query_async(&mut connection)
        .await
        .unwrap();
    count
}

#[tokio::test]
async fn a_subscriber_that_lost_redis_reconnects_and_forgets_what_it_may_have_missed() {
    let channel = unique("tollgate-test:invalidate");
    let a = node(&channel).await;
    let url = redis_url();
    let port: u16 = url
        .trim_end_matches('/')
        .rsplit(':')
        .next()
        .and_then(|port| port.parse().ok())
        .unwrap_or_else(|| panic!("no port in {url}"));
    let proxy = Proxy::start(([127, 0, 0, 1], port).into()).await;
    let b = node_at(&format!("redis://{}", proxy.addr()), &channel).await;

    let key = a
        .keys
        .generate(NewKey::new(unique("redis-reconnect"), "Reconnect"))
        .await
        .unwrap();
    let plaintext = key.key().expose().to_owned();
    assert_eq!(b.status(&plaintext).await, 200);

    // B loses Redis; the revocation's message is published while B cannot hear it.
    proxy.cut().await;
    // Wait until Redis has dropped B's subscription (only A's is left), so the message below
    // cannot slip through a relay that is still closing.
    let started = Instant::now();
    while subscribers(&channel).await != 1 {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "B's subscription stays"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(a.keys.revoke(key.record().id()).await.unwrap());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        b.status(&plaintext).await,
        200,
        "B missed the message: its cache still serves"
    );

    // Redis comes back: B resubscribes and empties its cache, so the store decides again.
    proxy.restore().await;
    let took = b.until(&plaintext, 401, Duration::from_secs(5)).await;
    eprintln!("B refused the key {took:?} after Redis came back");
}
