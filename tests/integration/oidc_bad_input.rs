//! Discovery and JWKS against hostile or broken providers, served by a real axum server on
//! 127.0.0.1: another issuer, a `jwks_uri` on another scheme, oversized and malformed
//! documents, a provider that hangs, and keys that go bad after a good start. Each is a
//! bounded failure that keeps the last good keys; requests get 401, never a hang or a 500.
//! And a layer with several providers routes by `iss` without fetching for a stranger.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use serde_json::json;
use tokio::net::TcpListener;
use tollgate::identity::UserIdentity;
use tollgate::issuer::{Grant, SigningKey, TokenIssuer};
use tollgate::jwt::{
    Algorithm, FetchError, JwksDocument, JwksFetcher, JwksSource, JwtLayer, Provider,
};
use tollgate::oidc::{Discovery, DiscoveryError, HttpClient};

use crate::support::{HttpClient as TestClient, serve_axum};

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/jwt/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn rsa_issuer(iss: &str, kid: &str, file: &str) -> TokenIssuer {
    let key = SigningKey::rsa_pem(kid, fixture(file), Algorithm::RS256).unwrap();
    TokenIssuer::builder(iss, key).build().unwrap()
}

/// What the fake provider's JWKS endpoint answers.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Jwks {
    Good,
    Garbage,
    Error,
    Oversized,
    Hang,
}

#[derive(Clone)]
struct Fake {
    base: String,
    jwks: String,
    mode: Arc<std::sync::Mutex<Jwks>>,
}

async fn discovery(State(fake): State<Fake>, uri: axum::http::Uri) -> Response {
    let prefix = uri
        .path()
        .trim_end_matches("/.well-known/openid-configuration");
    let issuer = format!("{}{prefix}", fake.base);
    let jwks_uri = format!("{}/jwks", fake.base);
    let body = match prefix {
        "/good" => json!({"issuer": issuer, "jwks_uri": jwks_uri}).to_string(),
        "/other-issuer" => {
            json!({"issuer": "http://127.0.0.1:1/elsewhere", "jwks_uri": jwks_uri}).to_string()
        }
        "/wrong-scheme" => {
            json!({"issuer": issuer, "jwks_uri": jwks_uri.replace("http://", "https://")})
                .to_string()
        }
        "/not-a-url" => json!({"issuer": issuer, "jwks_uri": "::::"}).to_string(),
        "/oversized" => {
            json!({"issuer": issuer, "jwks_uri": jwks_uri, "pad": "x".repeat(300 * 1024)})
                .to_string()
        }
        "/malformed" => "{\"issuer\":".to_owned(),
        "/array" => "[]".to_owned(),
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    ([("content-type", "application/json")], body).into_response()
}

/// RFC 8414's form only, for the issuer `{base}/as`.
async fn oauth_metadata(State(fake): State<Fake>) -> Response {
    let body =
        json!({"issuer": format!("{}/as", fake.base), "jwks_uri": format!("{}/jwks", fake.base)});
    ([("content-type", "application/json")], body.to_string()).into_response()
}

async fn jwks(State(fake): State<Fake>) -> Response {
    let mode = *fake.mode.lock().unwrap();
    match mode {
        Jwks::Good => ([("cache-control", "max-age=3600")], fake.jwks.clone()).into_response(),
        Jwks::Garbage => "{\"keys\":".into_response(),
        Jwks::Error => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        Jwks::Oversized => {
            format!("{{\"keys\":[],\"pad\":\"{}\"}}", "x".repeat(400 * 1024)).into_response()
        }
        Jwks::Hang => {
            tokio::time::sleep(Duration::from_secs(60)).await;
            StatusCode::OK.into_response()
        }
    }
}

async fn fake_provider(jwks_doc: String) -> Fake {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let fake = Fake {
        base: format!("http://{addr}"),
        jwks: jwks_doc,
        mode: Arc::new(std::sync::Mutex::new(Jwks::Good)),
    };
    let router = Router::new()
        .route("/{prefix}/.well-known/openid-configuration", get(discovery))
        .route(
            "/.well-known/oauth-authorization-server/as",
            get(oauth_metadata),
        )
        .route("/jwks", get(jwks))
        .with_state(fake.clone());
    let listener = TcpListener::bind(addr).await.unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    fake
}

fn quick_client() -> HttpClient {
    HttpClient::builder()
        .timeout(Duration::from_millis(500))
        .build()
        .unwrap()
}

#[tokio::test]
async fn discovery_refuses_documents_that_do_not_check_out_in_bounded_time() {
    let issuer = rsa_issuer("unused", "k1", "rsa.key");
    let fake = fake_provider(serde_json::to_string(&issuer.jwks()).unwrap()).await;
    let discover = |path: &str| {
        Discovery::new(format!("{}{path}", fake.base))
            .client(quick_client())
            .discover()
    };
    assert!(discover("/good").await.is_ok());
    assert!(discover("/as").await.is_ok(), "RFC 8414's well-known form");
    let cases = [
        ("/other-issuer", "IssuerMismatch"),
        ("/wrong-scheme", "JwksUri"),
        ("/not-a-url", "JwksUri"),
        ("/oversized", "Fetch"),
        ("/malformed", "InvalidDocument"),
        ("/array", "InvalidDocument"),
        ("/missing", "Fetch"),
    ];
    for (path, want) in cases {
        let error = discover(path).await.unwrap_err();
        let kind = format!("{error:?}");
        assert!(kind.starts_with(want), "{path}: {kind}");
        assert!(!error.to_string().is_empty());
    }
    // A trailing slash is another issuer (compared exactly, OIDC Discovery §4.3).
    assert!(matches!(
        discover("/good/").await.unwrap_err(),
        DiscoveryError::IssuerMismatch { .. }
    ));

    // A provider that accepts the connection and never answers.
    let silent = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_addr: SocketAddr = silent.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            held.push(socket);
        }
    });
    let started = Instant::now();
    let error = Discovery::new(format!("http://{silent_addr}"))
        .client(quick_client())
        .discover()
        .await
        .unwrap_err();
    assert!(error.to_string().contains("timed out"), "{error}");
    assert!(started.elapsed() < Duration::from_secs(3));

    // Plain HTTP beyond loopback is refused before any connection.
    let error = Discovery::new("http://idp.example")
        .discover()
        .await
        .unwrap_err();
    assert!(error.to_string().contains("loopback"), "{error}");
}

async fn me(Extension(user): Extension<UserIdentity>) -> String {
    user.provider().unwrap_or("").to_owned()
}

#[tokio::test]
async fn keys_that_go_bad_after_a_good_start_leave_the_last_good_ones_in_use() {
    let good = rsa_issuer("placeholder", "k1", "rsa.key");
    let fake = fake_provider(serde_json::to_string(&good.jwks()).unwrap()).await;
    let iss = format!("{}/good", fake.base);
    let known = rsa_issuer(&iss, "k1", "rsa.key");
    let unpublished = rsa_issuer(&iss, "k2", "rsa-other.key");
    let provider = Discovery::new(&iss)
        .client(quick_client())
        .jwks(|jwks| {
            jwks.unknown_kid_cooldown(Duration::ZERO)
                .unknown_kid_timeout(Duration::from_secs(2))
        })
        .discover()
        .await
        .unwrap();
    let layer = JwtLayer::with_providers([provider.named("fake")])
        .build()
        .unwrap();
    let client =
        TestClient::new(serve_axum(Router::new().route("/me", get(me)).layer(layer)).await);
    let bearer = |t: &TokenIssuer| format!("Bearer {}", t.mint(&Grant::new("u")).unwrap().as_str());
    for mode in [Jwks::Garbage, Jwks::Error, Jwks::Oversized, Jwks::Hang] {
        *fake.mode.lock().unwrap() = mode;
        let started = Instant::now();
        let answer = client
            .get("/me", &[("authorization", bearer(&unpublished).as_bytes())])
            .await;
        assert_eq!(
            answer.status, 401,
            "{mode:?}: an unknown kid, and the re-fetch fails"
        );
        assert!(
            started.elapsed() < Duration::from_secs(4),
            "{mode:?}: bounded"
        );
        let answer = client
            .get("/me", &[("authorization", bearer(&known).as_bytes())])
            .await;
        assert_eq!(answer.status, 200, "{mode:?}: the last good keys stay");
        assert_eq!(answer.text(), "fake");
    }
}

/// A JWKS fetcher serving a fixed document and counting its fetches.
#[derive(Clone)]
struct Counting {
    document: String,
    fetches: Arc<AtomicUsize>,
}

impl JwksFetcher for Counting {
    type Future = std::future::Ready<Result<JwksDocument, FetchError>>;

    fn fetch(&self) -> Self::Future {
        self.fetches.fetch_add(1, Ordering::SeqCst);
        std::future::ready(Ok(JwksDocument::new(self.document.clone())))
    }
}

#[tokio::test]
async fn several_providers_route_by_iss_and_a_stranger_costs_no_fetch() {
    let a = rsa_issuer("https://a.example", "a1", "rsa.key");
    let b = rsa_issuer("https://b.example", "b1", "rsa-other.key");
    let counting = |issuer: &TokenIssuer| Counting {
        document: serde_json::to_string(&issuer.jwks()).unwrap(),
        fetches: Arc::new(AtomicUsize::new(0)),
    };
    let (fa, fb) = (counting(&a), counting(&b));
    let source = |f: &Counting| {
        JwksSource::builder(f.clone())
            .unknown_kid_cooldown(Duration::ZERO)
            .build()
    };
    let (sa, sb) = (source(&fa), source(&fb));
    sa.refresh().await.unwrap();
    sb.refresh().await.unwrap();
    let layer = JwtLayer::with_providers([
        Provider::new("https://a.example", sa).named("a"),
        Provider::new("https://b.example", sb).named("b"),
    ])
    .build()
    .unwrap();
    let client =
        TestClient::new(serve_axum(Router::new().route("/me", get(me)).layer(layer)).await);
    let call = |token: String| {
        let client = client.clone();
        async move {
            client
                .get(
                    "/me",
                    &[("authorization", format!("Bearer {token}").as_bytes())],
                )
                .await
        }
    };
    let token = |t: &TokenIssuer| t.mint(&Grant::new("u")).unwrap().as_str().to_owned();
    assert_eq!(call(token(&a)).await.text(), "a");
    assert_eq!(call(token(&b)).await.text(), "b");
    let fetched = || {
        (
            fa.fetches.load(Ordering::SeqCst),
            fb.fetches.load(Ordering::SeqCst),
        )
    };
    assert_eq!(fetched(), (1, 1));

    // A stranger's token, with a kid neither provider holds: 401, no fetch.
    let stranger = rsa_issuer("https://stranger.example", "s1", "rsa.key");
    for _ in 0..5 {
        let answer = call(token(&stranger)).await;
        assert_eq!(answer.status, 401);
        assert!(
            answer
                .header("www-authenticate")
                .unwrap()
                .contains("invalid_token")
        );
    }
    assert_eq!(fetched(), (1, 1), "an unknown issuer fetches nothing");

    // B's key claiming to be A's issuer: routed to A, whose keys do not verify it.
    let impostor = rsa_issuer("https://a.example", "b1", "rsa-other.key");
    assert_eq!(call(token(&impostor)).await.status, 401);
    assert_eq!(fetched(), (2, 1), "only A re-fetches, for a kid it lacks");
}

/// `Discovery::lazy()`: the provider is down at start-up, the layer serves anyway (its tokens
/// refused), and the background retry picks the provider up once it answers.
#[tokio::test]
async fn a_lazy_provider_is_retried_in_the_background_until_it_answers() {
    let good = rsa_issuer("placeholder", "k1", "rsa.key");
    let fake = fake_provider(serde_json::to_string(&good.jwks()).unwrap()).await;
    *fake.mode.lock().unwrap() = Jwks::Error;
    let iss = format!("{}/good", fake.base);
    let provider = Discovery::new(&iss)
        .client(quick_client())
        .jwks(|jwks| jwks.refresh_floor(Duration::from_millis(100)))
        .lazy()
        .named("lazy");
    let layer = JwtLayer::with_providers([provider]).build().unwrap();
    let client =
        TestClient::new(serve_axum(Router::new().route("/me", get(me)).layer(layer)).await);
    let token = rsa_issuer(&iss, "k1", "rsa.key");
    let bearer = format!("Bearer {}", token.mint(&Grant::new("u")).unwrap().as_str());
    let answer = client
        .get("/me", &[("authorization", bearer.as_bytes())])
        .await;
    assert_eq!(answer.status, 401, "no keys yet: {}", answer.text());

    *fake.mode.lock().unwrap() = Jwks::Good;
    let started = Instant::now();
    loop {
        let answer = client
            .get("/me", &[("authorization", bearer.as_bytes())])
            .await;
        if answer.status == 200 {
            assert_eq!(answer.text(), "lazy");
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "still {}",
            answer.status
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
