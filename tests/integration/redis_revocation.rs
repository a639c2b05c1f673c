//! `RedisRevocation`: a `jti` revoked on one node is refused by the others, over the real
//! Redis server `scripts/test.sh` starts, each node checking its own local copy.

use std::net::SocketAddr;
use std::sync::Once;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::routing::get;
use jsonwebtoken::crypto::CryptoProvider;
use jsonwebtoken::{EncodingKey, Header};
use serde_json::json;
use tollgate::jwt::redis::RedisRevocation;
use tollgate::jwt::{Algorithm, JwtKey, JwtLayer, Revocation};

use tollgate::redis::RedisTarget;

use crate::cluster_admin;
use crate::servers::{Proxy, redis_url, unique};
use crate::support::{HttpClient, serve_axum};

const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// An HS256 token with id `jti`, valid for ten minutes from now.
pub(crate) fn token(jti: &str) -> String {
    static ONCE: Once = Once::new();
    // Signing (test side only) needs one process-wide provider when both backends are on.
    ONCE.call_once(|| {
        let _ = CryptoProvider::install_default(&jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER);
    });
    let claims = json!({"sub": "alice", "iat": now(), "exp": now() + 600, "jti": jti});
    jsonwebtoken::encode(
        &Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(SECRET),
    )
    .unwrap()
}

fn exp_secs_of_token() -> u64 {
    exp_of_token().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

pub(crate) fn exp_of_token() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(now() + 600)
}

pub(crate) struct Node {
    pub(crate) revocation: RedisRevocation,
    client: HttpClient,
}

pub(crate) async fn node(url: impl Into<RedisTarget>, prefix: &str) -> Node {
    let revocation = RedisRevocation::builder()
        .prefix(prefix)
        .connect(url)
        .await
        .unwrap();
    let layer = JwtLayer::builder(JwtKey::hmac(SECRET, Algorithm::HS256).unwrap())
        .revocation(revocation.clone())
        .build()
        .unwrap();
    let router = Router::new()
        .route("/", get(|| async { "ok" }))
        .route_layer(layer);
    Node {
        revocation,
        client: HttpClient::new(serve_axum(router).await),
    }
}

impl Node {
    pub(crate) async fn status(&self, token: &str) -> u16 {
        let bearer = format!("Bearer {token}");
        self.client
            .get("/", &[("authorization", bearer.as_bytes())])
            .await
            .status
            .as_u16()
    }

    /// How long until this node refuses `token`, polling for up to `limit`.
    pub(crate) async fn until_refused(&self, token: &str, limit: Duration) -> Duration {
        let started = Instant::now();
        loop {
            if self.status(token).await == 401 {
                return started.elapsed();
            }
            assert!(started.elapsed() < limit, "still admitted after {limit:?}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

#[tokio::test]
async fn a_jti_revoked_on_node_a_is_refused_on_node_b_within_a_second() {
    for (_, target, _guard) in cluster_admin::both().await {
        revoked_on_a_refused_on_b(&target).await;
    }
}

async fn revoked_on_a_refused_on_b(target: &RedisTarget) {
    let prefix = unique("tollgate-test:jti");
    let (a, b) = (node(target, &prefix).await, node(target, &prefix).await);
    let revoked = token("t-revoked");
    let kept = token("t-kept");
    assert_eq!(b.status(&revoked).await, 200);
    assert_eq!(b.status(&revoked).await, 200, "B's verified-token cache");

    a.revocation
        .revoke("t-revoked", exp_of_token())
        .await
        .unwrap();
    assert_eq!(a.status(&revoked).await, 401, "A refuses at once");
    let took = b.until_refused(&revoked, Duration::from_secs(1)).await;
    eprintln!("revocation reached node B in {took:?}");
    assert_eq!(b.status(&kept).await, 200);
    assert_eq!(a.status(&kept).await, 200);

    // The entry in Redis may go when the token has expired: its score.
    let mut connection = cluster_admin::raw(target).await;
    let entry = format!("{}:t-revoked", exp_secs_of_token());
    let end: u64 = redis::cmd("ZSCORE")
        .arg(&prefix)
        .arg(&entry)
        .query_async(&mut connection)
        .await
        .unwrap();
    // The token's 600 s plus the retention (5 minutes by default, above the 60 s leeway).
    let ttl = end - now();
    assert!((890..=901).contains(&ttl), "ttl {ttl}");
}

#[tokio::test]
async fn a_node_started_later_loads_earlier_revocations() {
    for (_, target, _guard) in cluster_admin::both().await {
        later_node_loads_earlier_revocations(&target).await;
    }
}

async fn later_node_loads_earlier_revocations(target: &RedisTarget) {
    let prefix = unique("tollgate-test:jti");
    let a = node(target, &prefix).await;
    for i in 0..2_500 {
        // More than one ZSCAN step's worth.
        a.revocation
            .revoke(&format!("bulk-{i}"), exp_of_token())
            .await
            .unwrap();
    }
    let c = node(target, &prefix).await;
    assert_eq!(c.revocation.local().len(), 2_500);
    assert!(c.revocation.is_revoked("bulk-1234"));
    assert_eq!(c.status(&token("bulk-7")).await, 401);
    assert_eq!(c.status(&token("fresh")).await, 200);

    // An already expired token is revoked locally only: nothing to share.
    a.revocation
        .revoke("gone", UNIX_EPOCH + Duration::from_secs(1))
        .await
        .unwrap();
    let d = node(target, &prefix).await;
    assert_eq!(d.revocation.local().len(), 2_500);
}

/// 0.1 kept each revocation as a key of its own; an upgraded node still loads them.
#[tokio::test]
async fn revocations_stored_by_0_1_are_still_loaded() {
    let prefix = unique("tollgate-test:jti");
    let mut connection = cluster_admin::raw(&RedisTarget::single(redis_url())).await;
    let exp = exp_secs_of_token();
    let _: () = redis::cmd("SET")
        .arg(format!("{prefix}:t-old"))
        .arg(exp)
        .arg("EXAT")
        .arg(exp + 300)
        .query_async(&mut connection)
        .await
        .unwrap();
    let a = node(redis_url(), &prefix).await;
    assert_eq!(a.status(&token("t-old")).await, 401);
    assert_eq!(a.status(&token("t-new")).await, 200);
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

#[tokio::test]
async fn after_losing_redis_a_node_catches_up_on_what_it_missed() {
    let prefix = unique("tollgate-test:jti");
    let proxy = Proxy::start(redis_addr()).await;
    let a = node(&redis_url(), &prefix).await;
    let b = node(&format!("redis://{}", proxy.addr()), &prefix).await;
    let missed = token("t-missed");
    assert_eq!(b.status(&missed).await, 200);

    proxy.cut().await;
    a.revocation
        .revoke("t-missed", exp_of_token())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(b.status(&missed).await, 200, "the message was lost");

    proxy.restore().await;
    let took = b.until_refused(&missed, Duration::from_secs(5)).await;
    eprintln!("node B caught up {took:?} after Redis returned");
}

/// Review f7a: an `exp` too large for `SystemTime`, published on the channel or stored under
/// the prefix, neither stops the subscription (later revocations still arrive) nor fails a
/// node that loads it.
#[tokio::test]
async fn a_huge_exp_from_redis_does_not_stop_later_revocations() {
    let prefix = unique("tollgate-test:jti");
    let (a, b) = (
        node(&redis_url(), &prefix).await,
        node(&redis_url(), &prefix).await,
    );
    let mut connection = redis::Client::open(redis_url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let _: i64 = redis::cmd("PUBLISH")
        .arg(&prefix)
        .arg("18446744073709551615:t-huge")
        .query_async(&mut connection)
        .await
        .unwrap();
    let after = token("t-after");
    assert_eq!(b.status(&after).await, 200);
    a.revocation
        .revoke("t-after", exp_of_token())
        .await
        .unwrap();
    b.until_refused(&after, Duration::from_secs(2)).await;
    assert_eq!(b.status(&token("t-huge")).await, 401, "held, not dropped");

    let _: () = redis::cmd("SET")
        .arg(format!("{prefix}:t-stored"))
        .arg("18446744073709551615")
        .query_async(&mut connection)
        .await
        .unwrap();
    let c = node(&redis_url(), &prefix).await;
    assert_eq!(c.status(&token("t-stored")).await, 401);
    assert_eq!(c.status(&token("t-fresh")).await, 200);
}

mod token_service {
    use std::sync::Arc;

    use tollgate::issuer::{InMemoryRefreshStore, SigningKey, TokenIssuer, TokenService};

    use super::*;

    struct Instance {
        service: TokenService<Arc<InMemoryRefreshStore>>,
        client: HttpClient,
    }

    /// One instance: its own `RedisRevocation` on `prefix`, a token service revoking through
    /// it, and an API behind the issuer's JWT layer. `store` stands for the refresh-token
    /// store every instance shares (PostgreSQL in production).
    async fn instance(prefix: &str, store: Arc<InMemoryRefreshStore>) -> Instance {
        instance_on(&redis_url(), prefix, store).await
    }

    async fn instance_on(url: &str, prefix: &str, store: Arc<InMemoryRefreshStore>) -> Instance {
        let key = SigningKey::hmac("k1", SECRET, Algorithm::HS256).unwrap();
        let issuer = TokenIssuer::builder("https://auth.example", key)
            .audience("https://api.example")
            .build()
            .unwrap();
        let revocation = RedisRevocation::builder()
            .prefix(prefix)
            .timeout(Duration::from_millis(300))
            .connect(url)
            .await
            .unwrap();
        let service = TokenService::builder(issuer.clone(), store)
            .denylist(revocation.clone())
            .build();
        let layer = issuer
            .jwt_layer()
            .leeway(Duration::from_secs(120))
            .revocation(revocation)
            .build()
            .unwrap();
        let router = Router::new()
            .route("/", get(|| async { "ok" }))
            .route_layer(layer);
        Instance {
            service,
            client: HttpClient::new(serve_axum(router).await),
        }
    }

    impl Instance {
        async fn status(&self, token: &str) -> u16 {
            let bearer = format!("Bearer {token}");
            let answer = self
                .client
                .get("/", &[("authorization", bearer.as_bytes())])
                .await;
            answer.status.as_u16()
        }
    }

    /// Review #6: a reuse detected on instance A revokes the family's access tokens on
    /// instance B too, through the real Redis.
    #[tokio::test]
    async fn reuse_detected_on_instance_a_revokes_the_familys_access_tokens_on_instance_b() {
        let prefix = unique("tollgate-test:jti");
        let store = Arc::new(InMemoryRefreshStore::new());
        let a = instance(&prefix, Arc::clone(&store)).await;
        let b = instance(&prefix, store).await;
        let t0 = a.service.issue("alice", ["orders:read"]).await.unwrap();
        let t1 = a
            .service
            .refresh(t0.refresh_token.as_deref().unwrap())
            .await
            .unwrap();
        let other = b.service.issue("bob", ["orders:read"]).await.unwrap();
        for access in [&t0.access_token, &t1.access_token, &other.access_token] {
            assert_eq!(b.status(access).await, 200);
        }

        // A thief replays t0's spent refresh token on A: the family is revoked.
        assert!(
            a.service
                .refresh(t0.refresh_token.as_deref().unwrap())
                .await
                .is_err()
        );
        let started = Instant::now();
        for access in [&t0.access_token, &t1.access_token] {
            while b.status(access).await != 401 {
                assert!(
                    started.elapsed() < Duration::from_secs(2),
                    "instance B still admits the revoked family's access token"
                );
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            assert_eq!(a.status(access).await, 401);
        }
        assert_eq!(b.status(&other.access_token).await, 200);
    }

    /// With Redis unreachable, a logout still revokes the session here, but says it could not
    /// share it (`temporarily_unavailable`); called again once Redis is back, it reaches the
    /// other instances.
    #[tokio::test]
    async fn a_logout_that_cannot_reach_redis_says_so_and_can_be_repeated() {
        let prefix = unique("tollgate-test:jti");
        let proxy = Proxy::start(redis_addr()).await;
        let store = Arc::new(InMemoryRefreshStore::new());
        let a = instance_on(
            &format!("redis://{}", proxy.addr()),
            &prefix,
            Arc::clone(&store),
        )
        .await;
        let b = instance(&prefix, store).await;
        let login = a.service.issue("alice", ["orders:read"]).await.unwrap();
        let refresh = login.refresh_token.as_deref().unwrap();
        assert_eq!(b.status(&login.access_token).await, 200);

        proxy.cut().await;
        let error = a.service.logout(refresh).await.unwrap_err();
        assert_eq!(error.status(), 503, "{error:?}");
        assert_eq!(
            a.status(&login.access_token).await,
            401,
            "refused here at once"
        );
        assert_eq!(b.status(&login.access_token).await, 200, "not shared yet");

        proxy.restore().await;
        let started = Instant::now();
        while a.service.logout(refresh).await.is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "Redis never came back"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        while b.status(&login.access_token).await != 401 {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "never reached B"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}
