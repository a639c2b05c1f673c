//! `RateLimitLayer` in-process, through real axum and tonic servers on 127.0.0.1, and the
//! in-memory store under concurrency and key spraying.

use std::convert::Infallible;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::ConnectInfo;
use axum::routing::get;
use axum::{Extension, Router};
use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use tollgate::Quota;
use tollgate::clock::{ManualClock, SharedClock};
use tollgate::identity::{AppIdentity, UserIdentity};
use tollgate::rate_limit::{
    AppAndUser, AppId, AppKeyId, ClientIp, ConfigError, Decision, Hit, HitFuture, Key,
    KeyExtractor, Limit, MemoryStore, OnMissingKey, OnStoreError, RateLimitLayer, RateLimitStore,
    RequestHead, ShadowRejection, StoreError, UserSubject,
};
use tollgate::rejection::RejectionKind;
use tower::{Layer, Service, ServiceExt};

use crate::support::{HttpClient, ProbeServer, call_whoami, serve_axum, serve_tonic};

/// 2023-11-14T22:13:20Z: 800 s into its hour, 20 s into its minute.
const T0: u64 = 1_700_000_000;

fn clock() -> (ManualClock, SharedClock) {
    let clock = ManualClock::new(UNIX_EPOCH + Duration::from_secs(T0));
    let shared: SharedClock = Arc::new(clock.clone());
    (clock, shared)
}

fn per_hour(n: u64) -> Quota {
    Quota::per_hour(n)
}

fn app(key_id: &str) -> AppIdentity {
    AppIdentity::builder(key_id, format!("app-of-{key_id}")).build()
}

fn request_for(identity: Option<AppIdentity>) -> Request<Full<Bytes>> {
    let mut request = Request::new(Full::default());
    if let Some(identity) = identity {
        request.extensions_mut().insert(identity);
    }
    request
}

/// An echo service that counts its calls.
#[derive(Clone, Default)]
struct Echo {
    calls: Arc<AtomicUsize>,
}

impl Service<Request<Full<Bytes>>> for Echo {
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = std::future::Ready<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: Request<Full<Bytes>>) -> Self::Future {
        self.calls.fetch_add(1, Ordering::SeqCst);
        std::future::ready(Ok(Response::new(Full::new(Bytes::from_static(b"inner")))))
    }
}

async fn body_of<B: http_body::Body>(response: Response<B>) -> Bytes
where
    B::Error: std::fmt::Debug,
{
    response.into_body().collect().await.unwrap().to_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exactly_the_quota_per_window_on_two_threads_and_64_tasks() {
    let (clock, shared) = clock();
    let echo = Echo::default();
    let service = RateLimitLayer::new(per_hour(1000))
        .clock(shared)
        .layer(echo.clone());
    for window in 0..3 {
        let mut tasks = Vec::new();
        for _ in 0..64 {
            let service = service.clone();
            tasks.push(tokio::spawn(async move {
                let mut admitted = 0;
                for _ in 0..40 {
                    let response = service
                        .clone()
                        .oneshot(request_for(Some(app("hot"))))
                        .await
                        .unwrap();
                    match response.status() {
                        StatusCode::OK => admitted += 1,
                        StatusCode::TOO_MANY_REQUESTS => {}
                        other => panic!("unexpected {other}"),
                    }
                }
                admitted
            }));
        }
        let mut admitted = 0;
        for task in tasks {
            admitted += task.await.unwrap();
        }
        // 64 × 40 = 2560 attempts, exactly 1000 through, and the inner service saw only those.
        assert_eq!(admitted, 1000, "window {window}");
        assert_eq!(echo.calls.load(Ordering::SeqCst), 1000 * (window + 1));
        clock.advance(Duration::from_secs(3600));
    }
}

#[tokio::test]
async fn window_boundary_reset_and_header_values_are_exact() {
    let (clock, shared) = clock();
    let service = RateLimitLayer::new(per_hour(3))
        .clock(shared)
        .ietf_headers(true)
        .legacy_headers(true)
        .layer(Echo::default());
    let call = || service.clone().oneshot(request_for(Some(app("k"))));

    for remaining in [2, 1, 0] {
        let response = call().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let h = response.headers();
        assert_eq!(h["ratelimit-policy"], "\"default\";q=3;w=3600");
        assert_eq!(
            h["ratelimit"],
            format!("\"default\";r={remaining};t=2800").as_str()
        );
        assert_eq!(h["x-ratelimit-limit"], "3");
        assert_eq!(h["x-ratelimit-remaining"], remaining.to_string().as_str());
        assert_eq!(h["x-ratelimit-reset"], "2800");
        assert!(h.get("retry-after").is_none());
        assert_eq!(body_of(response).await, "inner");
    }

    // Half a second before the boundary: `t` and `Retry-After` round up to 1, never 0.
    clock.advance(Duration::from_millis(2_799_500));
    let refused = call().await.unwrap();
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(refused.headers()["retry-after"], "1");
    assert_eq!(refused.headers()["ratelimit"], "\"default\";r=0;t=1");
    assert_eq!(
        refused.headers()["content-type"],
        "application/problem+json"
    );
    assert_eq!(
        refused.extensions().get::<RejectionKind>(),
        Some(&RejectionKind::RateLimited)
    );
    let problem: serde_json::Value = serde_json::from_slice(&body_of(refused).await).unwrap();
    assert_eq!(problem["status"], 429);
    assert_eq!(problem["code"], "rate_limited");

    // Exactly at the boundary the new window starts full.
    clock.advance(Duration::from_millis(500));
    let response = call().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["ratelimit"], "\"default\";r=2;t=3600");
}

#[tokio::test]
async fn a_keys_own_quota_overrides_the_default() {
    let (_clock, shared) = clock();
    let service = RateLimitLayer::new(per_hour(5))
        .clock(shared)
        .ietf_headers(true)
        .layer(Echo::default());
    let gold = AppIdentity::builder("gold-key", "gold")
        .quota(Some(Quota::per_minute(2)))
        .build();
    let mut statuses = Vec::new();
    for _ in 0..3 {
        let response = service
            .clone()
            .oneshot(request_for(Some(gold.clone())))
            .await
            .unwrap();
        statuses.push(response.status().as_u16());
        assert_eq!(
            response.headers()["ratelimit-policy"],
            "\"default\";q=2;w=60"
        );
    }
    assert_eq!(statuses, [200, 200, 429]);
    // The default applies to a key without its own quota; keys do not share buckets.
    for _ in 0..5 {
        let response = service
            .clone()
            .oneshot(request_for(Some(app("plain"))))
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }
    let response = service
        .clone()
        .oneshot(request_for(Some(app("plain"))))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    // Ignoring key quotas is a choice.
    let (_c, shared) = clock();
    let flat = RateLimitLayer::new(per_hour(5))
        .clock(shared)
        .quota_from_identity(false)
        .layer(Echo::default());
    for _ in 0..5 {
        let response = flat
            .clone()
            .oneshot(request_for(Some(gold.clone())))
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }
}

#[tokio::test]
async fn several_limits_are_all_or_nothing() {
    let (clock, shared) = clock();
    let echo = Echo::default();
    let service = RateLimitLayer::with_limits([
        Limit::new("burst", Quota::per_second(2)).unwrap(),
        Limit::new("hourly", per_hour(5)).unwrap(),
    ])
    .unwrap()
    .clock(shared)
    .layer(echo.clone());
    let call = || service.clone().oneshot(request_for(Some(app("k"))));

    // Hammer the burst limit: refused requests must not eat the hourly quota.
    for second in 0..2 {
        let mut statuses = Vec::new();
        for _ in 0..10 {
            statuses.push(call().await.unwrap().status().as_u16());
        }
        assert_eq!(statuses[..3], [200, 200, 429], "second {second}");
        clock.advance(Duration::from_secs(1));
    }
    // 4 of the hourly 5 used: one more.
    let response = call().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["ratelimit-policy"],
        "\"burst\";q=2;w=1, \"hourly\";q=5;w=3600"
    );
    assert_eq!(
        response.headers()["ratelimit"],
        "\"burst\";r=1;t=1, \"hourly\";r=0;t=2798"
    );
    // The hourly limit now refuses; Retry-After is the hourly reset, not the burst one.
    clock.advance(Duration::from_secs(1));
    let refused = call().await.unwrap();
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(refused.headers()["retry-after"], "2797");
    assert_eq!(
        refused.headers()["ratelimit"],
        "\"burst\";r=2;t=1, \"hourly\";r=0;t=2797"
    );
    assert_eq!(echo.calls.load(Ordering::SeqCst), 5);

    // Configuration mistakes fail when the layer is built.
    assert!(matches!(
        RateLimitLayer::with_limits([
            Limit::new("a", per_hour(1)).unwrap(),
            Limit::new("a", per_hour(2)).unwrap()
        ]),
        Err(ConfigError::DuplicateName { .. })
    ));
    assert!(matches!(
        Limit::new("bad\"name", per_hour(1)),
        Err(ConfigError::InvalidName { .. })
    ));
    assert!(matches!(
        RateLimitLayer::with_limits(Vec::new()),
        Err(ConfigError::TooManyLimits { .. })
    ));
}

#[tokio::test]
async fn request_cost_is_charged() {
    let (_clock, shared) = clock();
    let service = RateLimitLayer::new(per_hour(10))
        .clock(shared)
        .cost(|request: &RequestHead<'_>| {
            if request.uri().path() == "/export" {
                4
            } else {
                1
            }
        })
        .layer(Echo::default());
    let call = |path: &'static str| {
        let mut request = request_for(Some(app("k")));
        *request.uri_mut() = path.parse().unwrap();
        service.clone().oneshot(request)
    };
    assert_eq!(call("/export").await.unwrap().status(), StatusCode::OK);
    assert_eq!(call("/export").await.unwrap().status(), StatusCode::OK);
    // 8 used: another export (4) does not fit, two cheap calls do.
    assert_eq!(
        call("/export").await.unwrap().status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(call("/cheap").await.unwrap().status(), StatusCode::OK);
    assert_eq!(call("/cheap").await.unwrap().status(), StatusCode::OK);
    assert_eq!(
        call("/cheap").await.unwrap().status(),
        StatusCode::TOO_MANY_REQUESTS
    );
}

#[tokio::test]
async fn a_missing_key_is_a_configured_outcome_never_a_500() {
    let (_clock, shared) = clock();
    let echo = Echo::default();
    let layer = RateLimitLayer::new(per_hour(1)).clock(shared);

    let rejecting = layer.clone().layer(echo.clone());
    let response = rejecting.oneshot(request_for(None)).await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(echo.calls.load(Ordering::SeqCst), 0);

    let passing = layer
        .clone()
        .on_missing_key(OnMissingKey::Pass)
        .layer(echo.clone());
    for _ in 0..3 {
        let response = passing.clone().oneshot(request_for(None)).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }

    let by_ip = layer
        .on_missing_key(OnMissingKey::FallbackToIp)
        .layer(echo.clone());
    let from = |ip: &str| {
        let mut request = request_for(None);
        request
            .extensions_mut()
            .insert(SocketAddr::new(ip.parse().unwrap(), 5000));
        request
    };
    assert_eq!(
        by_ip
            .clone()
            .oneshot(from("192.0.2.1"))
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        by_ip
            .clone()
            .oneshot(from("192.0.2.1"))
            .await
            .unwrap()
            .status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        by_ip
            .clone()
            .oneshot(from("192.0.2.2"))
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    // No address either: refused as unauthenticated, not a 500.
    assert_eq!(
        by_ip.oneshot(request_for(None)).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn dry_run_reports_without_refusing() {
    let (_clock, shared) = clock();
    let echo = Echo::default();
    let service = RateLimitLayer::new(per_hour(1))
        .clock(shared)
        .dry_run(true)
        .ietf_headers(true)
        .layer(echo.clone());
    let first = service
        .clone()
        .oneshot(request_for(Some(app("k"))))
        .await
        .unwrap();
    assert!(first.extensions().get::<ShadowRejection>().is_none());
    let second = service.oneshot(request_for(Some(app("k")))).await.unwrap();
    assert_eq!(second.status(), StatusCode::OK);
    assert_eq!(
        second
            .extensions()
            .get::<ShadowRejection>()
            .map(ShadowRejection::retry_after),
        Some(Duration::from_secs(2800))
    );
    assert_eq!(second.headers()["ratelimit"], "\"default\";r=0;t=2800");
    assert_eq!(echo.calls.load(Ordering::SeqCst), 2);
}

// ---------------------------------------------------------------------------------------
// Asynchronous stores: a real store that answers only through `hit` (as Redis would),
// after yielding to the runtime, with an outage switch and a hang switch.
// ---------------------------------------------------------------------------------------

#[derive(Clone, Default)]
struct AsyncStore {
    memory: MemoryStore,
    down: Arc<std::sync::atomic::AtomicBool>,
    hang: Arc<std::sync::atomic::AtomicBool>,
}

impl RateLimitStore for AsyncStore {
    fn hit(&self, hit: &Hit<'_>) -> HitFuture {
        let result = if self.down.load(Ordering::SeqCst) {
            Err(StoreError::unavailable("connection refused"))
        } else {
            self.memory.try_hit(hit).unwrap()
        };
        let hang = self.hang.load(Ordering::SeqCst);
        Box::pin(async move {
            tokio::task::yield_now().await;
            if hang {
                std::future::pending::<()>().await;
            }
            result
        })
    }
}

#[tokio::test(start_paused = true)]
async fn async_store_decides_with_clone_and_swap_and_applies_the_failure_policy() {
    let (_clock, shared) = clock();
    let store = AsyncStore::default();
    let echo = Echo::default();
    let layer = RateLimitLayer::new(per_hour(2))
        .clock(shared)
        .with_store(store.clone())
        .unwrap();
    // tower-test's mock panics if a fresh clone (not the readied service) is called.
    let (mock, mut handle) =
        tower_test::mock::pair::<Request<Full<Bytes>>, Response<Full<Bytes>>>();
    let mut service = layer.clone().layer(mock);
    handle.allow(1);
    let ready = service.ready().await.unwrap();
    let pending = tokio::spawn(ready.call(request_for(Some(app("k")))));
    let (_request, send) = handle.next_request().await.unwrap();
    send.send_response(Response::new(Full::new(Bytes::from_static(b"mock"))));
    assert_eq!(pending.await.unwrap().unwrap().status(), StatusCode::OK);

    let service = layer.clone().layer(echo.clone());
    let call = || service.clone().oneshot(request_for(Some(app("k"))));
    assert_eq!(call().await.unwrap().status(), StatusCode::OK);
    assert_eq!(
        call().await.unwrap().status(),
        StatusCode::TOO_MANY_REQUESTS
    );

    // Outage: fail closed (503) by default, fail open on request.
    store.down.store(true, Ordering::SeqCst);
    let response = call().await.unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        response.extensions().get::<RejectionKind>(),
        Some(&RejectionKind::Unavailable)
    );
    let open = layer
        .clone()
        .on_store_error(OnStoreError::FailOpen)
        .layer(echo.clone());
    assert_eq!(
        open.clone()
            .oneshot(request_for(Some(app("k"))))
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );

    // A store that never answers is cut off by the timeout (virtual time: no real wait).
    store.down.store(false, Ordering::SeqCst);
    store.hang.store(true, Ordering::SeqCst);
    let started = tokio::time::Instant::now();
    let response = call().await.unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(started.elapsed(), Duration::from_millis(200));
    let response = open.oneshot(request_for(Some(app("k")))).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

// ---------------------------------------------------------------------------------------
// Memory stays bounded under key spraying.
// ---------------------------------------------------------------------------------------

#[test]
fn a_million_distinct_keys_stay_bounded_and_are_swept() {
    let store = MemoryStore::builder()
        .max_keys(200_000)
        .sweep_interval(Duration::from_secs(1))
        .build();
    let quotas = [Quota::per_second(5)];
    let mut now = UNIX_EPOCH + Duration::from_secs(T0);
    let mut most = 0;
    for i in 0u64..1_000_000 {
        if i % 100_000 == 0 {
            now += Duration::from_secs(1);
        }
        let key = i.to_be_bytes();
        let decision: Decision = store
            .try_hit(&Hit::new(&key, &quotas, 1, now))
            .unwrap()
            .unwrap();
        assert!(decision.is_allowed());
        most = most.max(store.tracked_keys());
    }
    // The store swept each second's keys itself as the clock moved: at most two seconds'
    // worth (100,000 keys each) were ever tracked, never the million.
    assert!(most <= 200_000, "tracked {most}");
    assert_eq!(store.tracked_keys(), 100_000);
    assert_eq!(store.sweep(now + Duration::from_secs(1)), 100_000);
    assert_eq!(store.tracked_keys(), 0);
}

#[tokio::test]
async fn at_the_key_cap_a_new_key_takes_the_place_of_the_least_charged() {
    let (clock, shared) = clock();
    let store = MemoryStore::builder().max_keys(2).build();
    let limited = RateLimitLayer::new(per_hour(3))
        .clock(shared)
        .with_store(store.clone())
        .unwrap()
        .layer(Echo::default());
    let status = |key: &'static str| {
        let limited = limited.clone();
        async move {
            limited
                .oneshot(request_for(Some(app(key))))
                .await
                .unwrap()
                .status()
        }
    };
    // "spent" uses its whole quota, "once" one request.
    for _ in 0..3 {
        assert_eq!(status("spent").await, StatusCode::OK);
    }
    assert_eq!(status("spent").await, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(status("once").await, StatusCode::OK);
    // Full: a new key is served in the place of "once", the least charged.
    assert_eq!(status("new").await, StatusCode::OK);
    assert_eq!(store.tracked_keys(), 2);
    assert_eq!(status("spent").await, StatusCode::TOO_MANY_REQUESTS);
    // Once the window is over, a sweep makes room without forgetting anyone live.
    clock.advance(Duration::from_secs(2800));
    assert_eq!(status("later").await, StatusCode::OK);
    assert_eq!(store.tracked_keys(), 1);
}

// ---------------------------------------------------------------------------------------
// Real servers.
// ---------------------------------------------------------------------------------------

async fn ok() -> &'static str {
    "ok"
}

fn axum_peer(extensions: &http::Extensions) -> Option<IpAddr> {
    extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0.ip())
}

#[tokio::test]
async fn seed_000_a_thousand_per_hour_on_a_real_axum_server() {
    let router = Router::new()
        .route("/orders", get(ok))
        .route_layer(RateLimitLayer::new(per_hour(1000)))
        .layer(Extension(app("key_seed_000")));
    let client = HttpClient::new(serve_axum(router).await);
    for n in 1..=1000u32 {
        let answer = client.get("/orders", &[]).await;
        assert_eq!(answer.status, StatusCode::OK, "request {n}");
        if n == 1000 {
            assert!(
                answer
                    .header("ratelimit")
                    .unwrap()
                    .starts_with("\"default\";r=0;t=")
            );
        }
    }
    let answer = client.get("/orders", &[]).await;
    assert_eq!(answer.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(answer.json()["code"], "rate_limited");
    let retry: u64 = answer.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=3600).contains(&retry), "{retry}");
    assert_eq!(
        answer.header("ratelimit-policy"),
        Some("\"default\";q=1000;w=3600")
    );
}

#[tokio::test]
async fn forwarded_for_cannot_be_spoofed_on_a_real_server() {
    // Without trusted proxies, X-Forwarded-For is ignored: every request is the peer's.
    let direct = Router::new()
        .route("/", get(ok))
        .route_layer(RateLimitLayer::new(per_hour(2)).key(ClientIp::peer_from(axum_peer)));
    let client = HttpClient::new(serve_axum(direct).await);
    let mut statuses = Vec::new();
    for fake in ["1.1.1.1", "2.2.2.2", "3.3.3.3"] {
        statuses.push(
            client
                .get("/", &[("x-forwarded-for", fake.as_bytes())])
                .await
                .status
                .as_u16(),
        );
    }
    assert_eq!(statuses, [200, 200, 429]);

    // Behind a trusted proxy (here: loopback), the right-most untrusted hop is the client;
    // whatever the client put to its left does not choose the bucket.
    let proxied = Router::new().route("/", get(ok)).route_layer(
        RateLimitLayer::new(per_hour(2)).key(
            ClientIp::peer_from(axum_peer)
                .trust_proxies(["127.0.0.0/8"])
                .unwrap(),
        ),
    );
    let client = HttpClient::new(serve_axum(proxied).await);
    let mut statuses = Vec::new();
    for spoof in ["6.6.6.1", "6.6.6.2", "6.6.6.3"] {
        let header = format!("{spoof}, 203.0.113.7");
        statuses.push(
            client
                .get("/", &[("x-forwarded-for", header.as_bytes())])
                .await
                .status
                .as_u16(),
        );
    }
    assert_eq!(statuses, [200, 200, 429]);
    let other = client
        .get("/", &[("x-forwarded-for", b"203.0.113.8")])
        .await;
    assert_eq!(other.status, StatusCode::OK);
}

#[tokio::test]
async fn grpc_clients_see_resource_exhausted() {
    let by_tenant = |request: &RequestHead<'_>| {
        let tenant = request.headers().get("x-tenant")?.to_str().ok()?;
        Some(Key::from(tenant.to_owned()))
    };
    let layer = RateLimitLayer::new(Quota::per_minute(2)).key(by_tenant);
    let addr = serve_tonic(layer, ProbeServer::new(|_| "served".to_owned())).await;
    for _ in 0..2 {
        assert_eq!(
            call_whoami(addr, &[("x-tenant", "acme")]).await.unwrap(),
            "served"
        );
    }
    let status = call_whoami(addr, &[("x-tenant", "acme")])
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::ResourceExhausted);
    assert_eq!(status.message(), "Too many requests.");
    assert!(status.metadata().get("retry-after").is_some());
    // Another tenant has its own bucket; no tenant at all is UNAUTHENTICATED, not an error.
    assert!(call_whoami(addr, &[("x-tenant", "globex")]).await.is_ok());
    let status = call_whoami(addr, &[]).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unauthenticated);
}

#[cfg(feature = "governor")]
#[tokio::test]
async fn gcra_store_limits_smoothly_per_key_quota() {
    use tollgate::rate_limit::GcraStore;

    let (clock, shared) = clock();
    // The store decides at the time the layer reads from its clock.
    let layer = RateLimitLayer::new(Quota::per_minute(2))
        .clock(shared)
        .with_store(GcraStore::new())
        .unwrap()
        .ietf_headers(true);
    let service = layer.layer(Echo::default());
    let call = |identity: AppIdentity| service.clone().oneshot(request_for(Some(identity)));
    assert_eq!(call(app("k")).await.unwrap().status(), StatusCode::OK);
    let second = call(app("k")).await.unwrap();
    assert_eq!(second.headers()["ratelimit"], "\"default\";r=0;t=60");
    let refused = call(app("k")).await.unwrap();
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(refused.headers()["retry-after"], "30");
    // Smooth: one more after 30 s, not a whole new window.
    clock.advance(Duration::from_secs(30));
    assert_eq!(call(app("k")).await.unwrap().status(), StatusCode::OK);
    assert_eq!(
        call(app("k")).await.unwrap().status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    // A key with its own quota gets its own limiter.
    let gold = AppIdentity::builder("gold", "gold")
        .quota(Some(per_hour(100)))
        .build();
    for _ in 0..100 {
        assert_eq!(call(gold.clone()).await.unwrap().status(), StatusCode::OK);
    }
    assert_eq!(
        call(gold).await.unwrap().status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    // GCRA cannot decide several limits all or nothing: refused at build time.
    let two = RateLimitLayer::with_limits([
        Limit::new("a", Quota::per_second(1)).unwrap(),
        Limit::new("b", per_hour(1)).unwrap(),
    ])
    .unwrap()
    .with_store(GcraStore::new());
    assert!(matches!(two, Err(ConfigError::TooManyLimits { max: 1 })));
}

#[cfg(feature = "governor")]
#[tokio::test]
async fn gcra_store_on_a_real_axum_server_refills_smoothly_per_key() {
    use tollgate::rate_limit::GcraStore;

    // 2 a minute: a burst of 2, then one every 30 s, on the layer's (manual) clock.
    let (clock, shared) = clock();
    let limit = RateLimitLayer::new(Quota::per_minute(2))
        .clock(shared)
        .with_store(GcraStore::new())
        .unwrap();
    let router = Router::new()
        .route("/", get(ok))
        .route_layer(limit)
        .layer(tower::util::MapRequestLayer::new(identities));
    let client = HttpClient::new(serve_axum(router).await);
    let k1: &[(&str, &[u8])] = &[("x-test-key", b"k1@a")];
    let k2: &[(&str, &[u8])] = &[("x-test-key", b"k2@a")];
    let first = client.get("/", k1).await;
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(
        first.header("ratelimit-policy"),
        Some("\"default\";q=2;w=60")
    );
    assert_eq!(first.header("ratelimit"), Some("\"default\";r=1;t=30"));
    assert_eq!(client.get("/", k1).await.status, StatusCode::OK);
    let refused = client.get("/", k1).await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(refused.header("retry-after"), Some("30"));
    assert_eq!(refused.json()["code"], "rate_limited");
    // Another key has its own bucket.
    assert_eq!(client.get("/", k2).await.status, StatusCode::OK);
    // Smooth: 30 s later exactly one more, not a whole new window.
    clock.advance(Duration::from_secs(30));
    assert_eq!(client.get("/", k1).await.status, StatusCode::OK);
    assert_eq!(
        client.get("/", k1).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
    // No key at all is the configured outcome (401), never a 500.
    assert_eq!(client.get("/", &[]).await.status, StatusCode::UNAUTHORIZED);
}

#[cfg(feature = "api-key")]
#[tokio::test]
async fn with_the_api_key_layer_each_key_has_its_plan() {
    use tollgate::api_key::{ApiKeyLayer, ApiKeys, InMemoryKeyStore, NewKey};

    let keys = ApiKeys::builder(InMemoryKeyStore::new()).build();
    let router = Router::new()
        .route("/orders", get(ok))
        .route_layer(RateLimitLayer::new(per_hour(3)))
        .route_layer(ApiKeyLayer::new(keys.clone()));
    let client = HttpClient::new(serve_axum(router).await);
    let basic = keys.generate(NewKey::new("app-1", "Basic")).await.unwrap();
    let gold = keys
        .generate(NewKey::new("app-2", "Gold").quota(per_hour(5)))
        .await
        .unwrap();
    let mut counts = Vec::new();
    for key in [basic.key().expose(), gold.key().expose()] {
        let mut admitted = 0;
        for _ in 0..8 {
            if client
                .get("/orders", &[("x-api-key", key.as_bytes())])
                .await
                .status
                == StatusCode::OK
            {
                admitted += 1;
            }
        }
        counts.push(admitted);
    }
    assert_eq!(counts, [3, 5]);
    // No key: the API-key layer answers 401 before the limiter counts anything.
    assert_eq!(
        client.get("/orders", &[]).await.status,
        StatusCode::UNAUTHORIZED
    );
}

/// Stands in for `ApiKeyLayer` and `JwtLayer`: `x-test-key: <key id>@<app id>` inserts an
/// `AppIdentity`, `x-test-sub: <subject>` a `UserIdentity` (`x-test-sub-less` one without `sub`).
fn identities(mut request: Request<axum::body::Body>) -> Request<axum::body::Body> {
    let header = |name: &str| {
        request
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let key = header("x-test-key");
    let sub = header("x-test-sub");
    let sub_less = header("x-test-sub-less").is_some();
    if let Some((key_id, app_id)) = key.as_deref().and_then(|k| k.split_once('@')) {
        request
            .extensions_mut()
            .insert(AppIdentity::builder(key_id, app_id).build());
    }
    if sub.is_some() || sub_less {
        request
            .extensions_mut()
            .insert(UserIdentity::new(sub, ["orders:read"]));
    }
    request
}

/// A router limited to 2 per hour by `key`, behind the identity stand-in, on a real socket.
async fn identity_server(limit: RateLimitLayer<impl KeyExtractor + Clone>) -> HttpClient {
    let router = Router::new()
        .route("/", get(ok))
        .route_layer(limit)
        .layer(tower::util::MapRequestLayer::new(identities));
    HttpClient::new(serve_axum(router).await)
}

async fn statuses(client: &HttpClient, calls: &[&[(&str, &str)]]) -> Vec<u16> {
    let mut out = Vec::new();
    for headers in calls {
        let headers: Vec<(&str, &[u8])> = headers.iter().map(|(n, v)| (*n, v.as_bytes())).collect();
        out.push(client.get("/", &headers).await.status.as_u16());
    }
    out
}

#[tokio::test]
async fn user_subject_key_counts_per_user_across_apps() {
    let client = identity_server(RateLimitLayer::new(per_hour(2)).key(UserSubject)).await;
    let alice_a: &[(&str, &str)] = &[("x-test-key", "k1@a"), ("x-test-sub", "alice")];
    let alice_b: &[(&str, &str)] = &[("x-test-key", "k9@b"), ("x-test-sub", "alice")];
    let bob: &[(&str, &str)] = &[("x-test-sub", "bob")];
    // Alice's two requests through app a use up her quota; through app b she is still limited.
    assert_eq!(
        statuses(&client, &[alice_a, alice_a, alice_b, bob]).await,
        [200, 200, 429, 200]
    );
    // No user, or a token without `sub`: no key, so 401 (the default outcome), never 500.
    let no_user: &[(&str, &str)] = &[("x-test-key", "k1@a")];
    let no_sub: &[(&str, &str)] = &[("x-test-sub-less", "1")];
    assert_eq!(statuses(&client, &[no_user, no_sub]).await, [401, 401]);
}

#[tokio::test]
async fn app_user_key_counts_per_app_key_and_user() {
    let client = identity_server(RateLimitLayer::new(per_hour(2)).key(AppAndUser::new())).await;
    let alice_k1: &[(&str, &str)] = &[("x-test-key", "k1@a"), ("x-test-sub", "alice")];
    let alice_k2: &[(&str, &str)] = &[("x-test-key", "k2@a"), ("x-test-sub", "alice")];
    let bob_k1: &[(&str, &str)] = &[("x-test-key", "k1@a"), ("x-test-sub", "bob")];
    assert_eq!(
        statuses(&client, &[alice_k1, alice_k1, alice_k1, alice_k2, bob_k1]).await,
        [200, 200, 429, 200, 200]
    );
    // Both identities are needed.
    let app_only: &[(&str, &str)] = &[("x-test-key", "k1@a")];
    let user_only: &[(&str, &str)] = &[("x-test-sub", "alice")];
    assert_eq!(statuses(&client, &[app_only, user_only]).await, [401, 401]);

    // By application id, an app's two keys share the user's bucket; another app does not.
    let client =
        identity_server(RateLimitLayer::new(per_hour(2)).key(AppAndUser::by_app_id())).await;
    let alice_other_app: &[(&str, &str)] = &[("x-test-key", "k3@b"), ("x-test-sub", "alice")];
    assert_eq!(
        statuses(&client, &[alice_k1, alice_k2, alice_k1, alice_other_app]).await,
        [200, 200, 429, 200]
    );
}

#[test]
fn app_user_keys_equal_the_tuples_and_do_not_collide() {
    let mut request = Request::new(());
    request
        .extensions_mut()
        .insert(AppIdentity::builder("k1", "a").build());
    request.extensions_mut().insert(UserIdentity::new(
        Some("alice".into()),
        Vec::<String>::new(),
    ));
    let view = RequestHead::of(&request);
    assert_eq!(
        AppAndUser::new().extract(&view),
        (AppKeyId, UserSubject).extract(&view)
    );
    assert_eq!(
        AppAndUser::by_app_id().extract(&view),
        (AppId, UserSubject).extract(&view)
    );
    assert_ne!(AppAndUser::new().extract(&view), UserSubject.extract(&view));
    assert_eq!(UserSubject.extract(&view), Some(Key::from("alice")));
}

#[tokio::test]
async fn ietf_fields_are_on_by_default_and_can_be_turned_off() {
    let (_clock, shared) = clock();
    let default = RateLimitLayer::new(per_hour(1))
        .clock(shared.clone())
        .layer(Echo::default());
    let ok = default
        .clone()
        .oneshot(request_for(Some(app("k"))))
        .await
        .unwrap();
    assert_eq!(ok.headers()["ratelimit-policy"], "\"default\";q=1;w=3600");
    assert_eq!(ok.headers()["ratelimit"], "\"default\";r=0;t=2800");
    assert!(ok.headers().get("x-ratelimit-limit").is_none());
    let refused = default.oneshot(request_for(Some(app("k")))).await.unwrap();
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(refused.headers()["ratelimit"], "\"default\";r=0;t=2800");

    let off = RateLimitLayer::new(per_hour(1))
        .clock(shared)
        .ietf_headers(false)
        .layer(Echo::default());
    let ok = off
        .clone()
        .oneshot(request_for(Some(app("k"))))
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    assert!(ok.headers().get("ratelimit").is_none());
    assert!(ok.headers().get("ratelimit-policy").is_none());
    let refused = off.oneshot(request_for(Some(app("k")))).await.unwrap();
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(refused.headers()["retry-after"], "2800");
    assert!(refused.headers().get("ratelimit").is_none());
}

#[tokio::test]
async fn app_id_key_shares_a_bucket_and_reads_the_plan_quota() {
    let identity = |key_id: &str, quota: Option<Quota>| {
        AppIdentity::builder(key_id, "app-1").quota(quota).build()
    };
    let admitted = |service: KeyedRateLimitService, ids: Vec<AppIdentity>| async move {
        let mut statuses = Vec::new();
        for id in ids {
            let response = service
                .clone()
                .oneshot(request_for(Some(id)))
                .await
                .unwrap();
            statuses.push(response.status().as_u16());
        }
        statuses
    };
    // The app's primary and secondary keys count together under AppId.
    let by_app = RateLimitLayer::new(per_hour(2))
        .key(AppId)
        .layer(Echo::default());
    let ids = vec![
        identity("k1", None),
        identity("k2", None),
        identity("k1", None),
    ];
    assert_eq!(admitted(by_app, ids).await, [200, 200, 429]);
    // The record's own quota (3 per hour) replaces the default (1)...
    let gold = Some(per_hour(3));
    let by_app = RateLimitLayer::new(per_hour(1))
        .key(AppId)
        .layer(Echo::default());
    let ids = vec![identity("k1", gold); 4];
    assert_eq!(admitted(by_app, ids).await, [200, 200, 200, 429]);
    // ...unless turned off.
    let fixed = RateLimitLayer::new(per_hour(1))
        .key(AppId)
        .quota_from_identity(false)
        .layer(Echo::default());
    let ids = vec![identity("k1", gold); 2];
    assert_eq!(admitted(fixed, ids).await, [200, 429]);
}

type KeyedRateLimitService = tollgate::rate_limit::KeyedRateLimit<Echo, AppId>;

#[allow(dead_code)]
fn _assert_bounds() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<RateLimitLayer>();
    send_sync::<MemoryStore>();
    let _: Option<Pin<Box<dyn Future<Output = ()>>>> = None;
    let _ = SystemTime::now();
}

/// `ClientIp::peer()` as written, with no function telling it where to look: behind axum it
/// reads `ConnectInfo<SocketAddr>`, behind tonic `TcpConnectInfo`. (It read only a
/// `SocketAddr` extension, so every request was refused 401 `missing_credential`.)
#[cfg(all(feature = "axum", feature = "tonic"))]
#[tokio::test]
async fn client_ip_peer_finds_the_address_where_axum_and_tonic_put_it() {
    let limit = || RateLimitLayer::new(per_hour(1)).key(ClientIp::peer());
    let router = Router::new()
        .route("/", get(|| async { "ok" }))
        .route_layer(limit());
    let client = HttpClient::new(serve_axum(router).await);
    assert_eq!(client.get("/", &[]).await.status, 200);
    let limited = client.get("/", &[]).await;
    assert_eq!(limited.status, 429, "{}", limited.text());

    let probe = ProbeServer::new(|_| "ok".to_owned());
    let addr = serve_tonic(limit(), probe).await;
    assert_eq!(call_whoami(addr, &[]).await.unwrap(), "ok");
    let status = call_whoami(addr, &[]).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::ResourceExhausted);
}
