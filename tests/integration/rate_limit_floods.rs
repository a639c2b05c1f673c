//! Rate limiting under floods, through real axum servers: one IPv6 host rotating addresses,
//! a flood of fresh keys against the in-memory store's key cap, and the 401 for a request
//! without a key.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use axum::Router;
use axum::extract::ConnectInfo;
use axum::routing::get;
use http::StatusCode;
use tollgate::Quota;
use tollgate::rate_limit::{ClientIp, ConfigError, Key, MemoryStore, RateLimitLayer, RequestHead};

use crate::support::{HttpClient, serve_axum};

async fn ok() -> &'static str {
    "ok"
}

fn axum_peer(extensions: &http::Extensions) -> Option<IpAddr> {
    extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0.ip())
}

/// Behind a trusted proxy (loopback), the client address comes from `X-Forwarded-For`: the
/// way a test on 127.0.0.1 sends from many IPv6 addresses.
async fn per_ip_server(client_ip: ClientIp, quota: Quota) -> HttpClient {
    let client_ip = client_ip.trust_proxies(["127.0.0.0/8"]).unwrap();
    let router = Router::new()
        .route("/login", get(ok))
        .route_layer(RateLimitLayer::new(quota).key(client_ip));
    HttpClient::new(serve_axum(router).await)
}

async fn from(client: &HttpClient, ip: IpAddr) -> StatusCode {
    client
        .get("/login", &[("x-forwarded-for", ip.to_string().as_bytes())])
        .await
        .status
}

fn in_64(network: u128, n: u64) -> IpAddr {
    IpAddr::V6(Ipv6Addr::from((network << 64) | u128::from(n)))
}

#[tokio::test]
async fn one_ipv6_host_rotating_addresses_in_its_64_gets_one_quota() {
    let client = per_ip_server(ClientIp::peer_from(axum_peer), Quota::per_hour(1)).await;
    let host = 0x2001_0db8_0001_0002_u128;
    let mut admitted = 0;
    for n in 1..=2_000 {
        admitted += usize::from(from(&client, in_64(host, n)).await == StatusCode::OK);
    }
    assert_eq!(admitted, 1, "2,000 addresses of one /64 against 1 per hour");
    // Another /64 is another client; IPv4 clients are still counted per address.
    assert_eq!(from(&client, in_64(host + 1, 1)).await, StatusCode::OK);
    assert_eq!(
        from(&client, IpAddr::from([198, 51, 100, 7])).await,
        StatusCode::OK
    );
    assert_eq!(
        from(&client, IpAddr::from([198, 51, 100, 8])).await,
        StatusCode::OK
    );
}

#[tokio::test]
async fn client_networks_are_configurable_and_validated() {
    let per_address = ClientIp::peer_from(axum_peer).ipv6_prefix(128).unwrap();
    let client = per_ip_server(per_address, Quota::per_hour(1)).await;
    let host = 0x2001_0db8_0001_0003_u128;
    for n in 1..=3 {
        assert_eq!(from(&client, in_64(host, n)).await, StatusCode::OK);
    }
    let per_24 = ClientIp::peer_from(axum_peer).ipv4_prefix(24).unwrap();
    let client = per_ip_server(per_24, Quota::per_hour(1)).await;
    assert_eq!(
        from(&client, IpAddr::from([203, 0, 113, 1])).await,
        StatusCode::OK
    );
    assert_eq!(
        from(&client, IpAddr::from([203, 0, 113, 2])).await,
        StatusCode::TOO_MANY_REQUESTS
    );
    for bad in [0, 129] {
        assert_eq!(
            ClientIp::peer().ipv6_prefix(bad).unwrap_err(),
            ConfigError::InvalidPrefix { length: bad }
        );
    }
    assert!(ClientIp::peer().ipv4_prefix(33).is_err());
}

#[tokio::test]
async fn the_401_for_a_request_without_a_key_carries_a_challenge() {
    // The default key is the API key's id; nothing authenticated this request.
    let router = Router::new()
        .route("/", get(ok))
        .route_layer(RateLimitLayer::new(Quota::per_hour(10)));
    let client = HttpClient::new(serve_axum(router).await);
    let answer = client.get("/", &[]).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert_eq!(answer.json()["code"], "missing_credential");
    let challenges: Vec<&str> = answer
        .headers
        .get_all("www-authenticate")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert_eq!(challenges, ["Bearer", "ApiKey header=\"x-api-key\""]);
}

type ByClient = fn(&RequestHead<'_>) -> Option<Key<'static>>;

/// Keys requests by their `x-client` header.
fn by_client(head: &RequestHead<'_>) -> Option<Key<'static>> {
    let value = head.headers().get("x-client")?;
    Some(Key::from(value.as_bytes().to_vec()))
}

#[tokio::test]
async fn a_flood_of_new_keys_at_the_cap_locks_out_neither_new_clients_nor_spent_keys() {
    let store = MemoryStore::builder().max_keys(1_000).build();
    let layer: RateLimitLayer<ByClient, MemoryStore> = RateLimitLayer::new(Quota::per_hour(5))
        .key(by_client as ByClient)
        .with_store(store.clone())
        .unwrap();
    let router = Router::new().route("/", get(ok)).route_layer(layer);
    let client = HttpClient::new(serve_axum(router).await);
    let call = |who: String| {
        let client = client.clone();
        async move {
            client
                .get("/", &[("x-client", who.as_bytes())])
                .await
                .status
        }
    };
    // A real client spends its quota.
    for _ in 0..5 {
        assert_eq!(call("heavy".to_owned()).await, StatusCode::OK);
    }
    assert_eq!(
        call("heavy".to_owned()).await,
        StatusCode::TOO_MANY_REQUESTS
    );
    // A flood of 3,000 fresh keys (three times the cap), each sent once.
    let mut refused = 0;
    for n in 0..3_000 {
        refused += usize::from(call(format!("flood-{n}")).await != StatusCode::OK);
    }
    assert_eq!(refused, 0, "each fresh key gets its own first request");
    assert!(store.tracked_keys() <= 1_000, "{}", store.tracked_keys());
    // A new client is served (not 503 until the hour ends), and the spent key stays spent.
    assert_eq!(call("newcomer".to_owned()).await, StatusCode::OK);
    assert_eq!(
        call("heavy".to_owned()).await,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert!(store.tracked_keys() <= 1_000);
}

#[cfg(feature = "redis")]
#[tokio::test]
async fn a_flood_of_fresh_keys_leaves_redis_nothing_once_its_window_ends() {
    use std::time::Duration;

    use tollgate::rate_limit::redis::{RedisStore, redis_crate};

    let prefix = crate::servers::unique("flood");
    let store = RedisStore::builder()
        .prefix(&prefix)
        .connect(&crate::servers::redis_url())
        .await
        .unwrap();
    let layer: RateLimitLayer<ByClient, RedisStore> =
        RateLimitLayer::new(Quota::new(1, Duration::from_secs(1)).unwrap())
            .key(by_client as ByClient)
            .with_store(store)
            .unwrap();
    let router = Router::new().route("/", get(ok)).route_layer(layer);
    let client = HttpClient::new(serve_axum(router).await);
    let redis = redis_crate::Client::open(crate::servers::redis_url()).unwrap();
    let mut redis = redis.get_multiplexed_async_connection().await.unwrap();
    let mut keys_now = async || -> usize {
        let keys: Vec<String> = redis_crate::cmd("KEYS")
            .arg(format!("{prefix}:*"))
            .query_async(&mut redis)
            .await
            .unwrap();
        keys.len()
    };
    for n in 0..500 {
        let who = format!("flood-{n}");
        let status = client
            .get("/", &[("x-client", who.as_bytes())])
            .await
            .status;
        assert_eq!(status, StatusCode::OK);
    }
    // One key per client and quota, each expiring when its window ends.
    let during = keys_now().await;
    assert!((1..=500).contains(&during), "{during}");
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let left = keys_now().await;
        if left == 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{left} keys still in Redis 5 s after a 1 s window"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[cfg(feature = "governor")]
#[tokio::test]
async fn gcra_store_under_a_flood_of_fresh_keys_stays_within_its_cap_and_serves_new_clients() {
    use tollgate::rate_limit::GcraStore;

    let store = GcraStore::new().max_keys(1_000);
    let layer: RateLimitLayer<ByClient, GcraStore> = RateLimitLayer::new(Quota::per_hour(5))
        .key(by_client as ByClient)
        .with_store(store.clone())
        .unwrap();
    let router = Router::new().route("/", get(ok)).route_layer(layer);
    let client = HttpClient::new(serve_axum(router).await);
    let call = |who: String| {
        let client = client.clone();
        async move {
            client
                .get("/", &[("x-client", who.as_bytes())])
                .await
                .status
        }
    };
    for _ in 0..5 {
        assert_eq!(call("heavy".to_owned()).await, StatusCode::OK);
    }
    assert_eq!(
        call("heavy".to_owned()).await,
        StatusCode::TOO_MANY_REQUESTS
    );
    for n in 0..3_000 {
        assert_eq!(call(format!("flood-{n}")).await, StatusCode::OK);
        assert!(store.tracked_keys() <= 1_000, "{}", store.tracked_keys());
    }
    assert_eq!(call("newcomer".to_owned()).await, StatusCode::OK);
    // Its bucket is the emptiest of all: never the one evicted.
    assert_eq!(
        call("heavy".to_owned()).await,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(store.tracked_keys(), 1_000);
}
