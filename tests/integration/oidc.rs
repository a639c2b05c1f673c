//! A real OpenID provider (the Node.js `oidc-provider` package, started by
//! `scripts/test.sh`) in front of real axum and tonic servers: tokens from its
//! client-credentials grant validated through discovery, over plain loopback HTTP and over TLS
//! with a test CA, next to the crate's own EdDSA issuer in the same layer; its key rotation
//! seen through the unknown-kid re-fetch; its outage survived on cached keys.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::routing::get;
use axum::{Extension, Json, Router};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use tokio::sync::RwLock;
use tollgate::identity::UserIdentity;
use tollgate::issuer::{Grant, SigningKey, TokenIssuer};
use tollgate::jwt::{ClaimMapping, JwtLayer, Provider};
use tollgate::oidc::{Discovery, DiscoveryError, HttpClient};
use tollgate::scope::RequireLayer;

use crate::servers::{oidc_ca_pem, oidc_client, oidc_issuer, oidc_tls_issuer};
use crate::support::{HttpClient as TestClient, ProbeServer, call_whoami, serve_axum, serve_tonic};

/// Tests that rotate the provider's keys or take it down hold this for writing; the others
/// read. One process, one provider: an outage must not reach a test that does not expect it.
static PROVIDER: RwLock<()> = RwLock::const_new(());

const INTERNAL: &str = "https://orders.internal";

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/jwt/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The crate's own issuer, EdDSA.
fn internal_issuer() -> TokenIssuer {
    let key = SigningKey::ed_pem("ed-1", fixture("ed25519.key")).unwrap();
    TokenIssuer::builder(INTERNAL, key).build().unwrap()
}

/// An HTTP(S) client for the test's own calls to the provider (token endpoint, admin routes),
/// trusting the test CA.
fn raw_client() -> Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::pem::PemObject::pem_slice_iter(&oidc_ca_pem()[..]) {
        roots.add(cert.unwrap()).unwrap();
    }
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .build();
    Client::builder(TokioExecutor::new()).build(connector)
}

async fn call(request: http::Request<Full<Bytes>>) -> (http::StatusCode, Value) {
    let response = tokio::time::timeout(Duration::from_secs(10), raw_client().request(request))
        .await
        .expect("the provider answers within 10 s")
        .expect("the provider is reachable");
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

/// A client-credentials access token from the provider at `issuer` (a JWT, `typ: at+jwt`).
pub(crate) async fn provider_token(issuer: &str, scope: &str) -> String {
    let metadata = Discovery::new(issuer)
        .client(test_ca_client())
        .metadata()
        .await
        .unwrap();
    let endpoint = metadata.token_endpoint.expect("a token endpoint");
    let (id, secret, audience) = oidc_client();
    let basic = STANDARD.encode(format!("{id}:{secret}"));
    let form = format!(
        "grant_type=client_credentials&scope={}&resource={}",
        scope.replace(' ', "%20"),
        audience.replace(':', "%3A").replace('/', "%2F")
    );
    let request = http::Request::post(endpoint)
        .header("authorization", format!("Basic {basic}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Full::from(form))
        .unwrap();
    let (status, body) = call(request).await;
    assert_eq!(status, 200, "token endpoint: {body}");
    body["access_token"].as_str().unwrap().to_owned()
}

/// Calls a test-only admin route of the provider (rotate keys, outage on/off).
async fn admin(path: &str) -> Value {
    let request = http::Request::post(format!("{}{path}", oidc_issuer()))
        .body(Full::default())
        .unwrap();
    let (status, body) = call(request).await;
    assert_eq!(status, 200, "{path}: {body}");
    body
}

fn header_of(token: &str) -> Value {
    let header = token.split('.').next().unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap()
}

fn test_ca_client() -> HttpClient {
    HttpClient::builder()
        .add_root_pem(oidc_ca_pem())
        .unwrap()
        .build()
        .unwrap()
}

/// The provider discovered at `issuer`, for the test audience, with Keycloak-style roles.
async fn discovered(issuer: &str) -> Provider {
    let (client_id, _, audience) = oidc_client();
    Discovery::new(issuer)
        .client(test_ca_client())
        .discover()
        .await
        .unwrap()
        .named("idp")
        .audience(audience)
        .require_access_token_type()
        .claim_mapping(ClaimMapping::keycloak(client_id))
}

async fn me(Extension(user): Extension<UserIdentity>) -> Json<Value> {
    Json(json!({
        "sub": user.subject(),
        "provider": user.provider(),
        "scopes": user.scopes(),
    }))
}

/// `/me` for any provider, `/internal` for the internal one only.
async fn api(layer: JwtLayer) -> TestClient {
    let internal_only =
        RequireLayer::extension(|user: &UserIdentity| user.provider() == Some("internal"));
    let router = Router::new()
        .route("/me", get(me))
        .route("/internal", get(me).layer(internal_only))
        .layer(layer);
    TestClient::new(serve_axum(router).await)
}

async fn get_me(client: &TestClient, path: &str, token: &str) -> crate::support::Answer {
    client
        .get(
            path,
            &[("authorization", format!("Bearer {token}").as_bytes())],
        )
        .await
}

#[tokio::test]
async fn tokens_of_the_real_provider_and_of_the_own_issuer_pass_one_layer() {
    let _shared = PROVIDER.read().await;
    let internal = internal_issuer();
    let layer = JwtLayer::with_providers([
        discovered(&oidc_issuer()).await,
        Provider::new(INTERNAL, internal.verification_keys()).named("internal"),
    ])
    .build()
    .unwrap();
    let client = api(layer.clone()).await;

    let idp_token = provider_token(&oidc_issuer(), "orders:read").await;
    assert_eq!(header_of(&idp_token)["typ"], "at+jwt");
    let answer = get_me(&client, "/me", &idp_token).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    let body = answer.json();
    assert_eq!(body["provider"], "idp");
    let scopes: Vec<&str> = body["scopes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    // `scope`, then Keycloak's realm and client roles, as the provider puts them in the token.
    for scope in [
        "orders:read",
        "orders-admin",
        "offline_access",
        "orders-reader",
    ] {
        assert!(scopes.contains(&scope), "{scope} missing from {scopes:?}");
    }
    assert!(!scopes.contains(&"orders:write"), "not granted: {scopes:?}");

    let own = internal
        .mint(&Grant::new("alice").scopes(["orders:read"]))
        .unwrap();
    let answer = get_me(&client, "/me", own.as_str()).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(answer.json()["provider"], "internal");
    assert_eq!(answer.json()["sub"], "alice");

    // A route for the internal provider only.
    assert_eq!(get_me(&client, "/internal", own.as_str()).await.status, 200);
    assert_eq!(get_me(&client, "/internal", &idp_token).await.status, 403);

    // A token of the provider's, re-signed by nobody: a flipped signature byte.
    let mut forged = idp_token.clone().into_bytes();
    let last = forged.len() - 2;
    forged[last] = if forged[last] == b'A' { b'B' } else { b'A' };
    let answer = get_me(&client, "/me", std::str::from_utf8(&forged).unwrap()).await;
    assert_eq!(answer.status, 401);
    assert!(
        answer
            .header("www-authenticate")
            .unwrap()
            .contains("invalid_token")
    );

    // The same layer on a real tonic server.
    let probe = ProbeServer::new(|extensions| {
        let user = extensions.get::<UserIdentity>().unwrap();
        format!(
            "{}:{}",
            user.provider().unwrap(),
            user.subject().unwrap_or("")
        )
    });
    let addr = serve_tonic(layer, probe).await;
    let bearer = format!("Bearer {idp_token}");
    let caller = call_whoami(addr, &[("authorization", &bearer)])
        .await
        .unwrap();
    assert!(caller.starts_with("idp:"), "{caller}");
    let bearer = format!("Bearer {}", own.as_str());
    let caller = call_whoami(addr, &[("authorization", &bearer)])
        .await
        .unwrap();
    assert_eq!(caller, "internal:alice");
    let status = call_whoami(addr, &[("authorization", "Bearer a.b.c")])
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unauthenticated);
}

#[tokio::test]
async fn the_provider_over_tls_is_trusted_through_the_test_ca_only() {
    let _shared = PROVIDER.read().await;
    let issuer = oidc_tls_issuer();
    assert!(issuer.starts_with("https://"), "{issuer}");
    let layer = JwtLayer::with_providers([discovered(&issuer).await])
        .build()
        .unwrap();
    let client = api(layer).await;
    let token = provider_token(&issuer, "orders:read orders:write").await;
    let answer = get_me(&client, "/me", &token).await;
    assert_eq!(answer.status, 200, "{}", answer.text());

    // Without the test CA the certificate is not trusted: a clear error, no provider.
    let error = Discovery::new(&issuer).discover().await.unwrap_err();
    assert!(matches!(error, DiscoveryError::Fetch(_)), "{error}");
    let message = error.to_string();
    assert!(message.to_lowercase().contains("certificate"), "{message}");
    // The plain-HTTP issuer's token is not the TLS issuer's.
    let plain = provider_token(&oidc_issuer(), "orders:read").await;
    assert_eq!(get_me(&client, "/me", &plain).await.status, 401);
}

#[tokio::test]
async fn claim_mapping_presets_read_where_real_providers_put_roles() {
    let _shared = PROVIDER.read().await;
    let (_, _, audience) = oidc_client();
    let token = provider_token(&oidc_issuer(), "orders:read").await;
    let cases: [(ClaimMapping, &[&str]); 5] = [
        (ClaimMapping::standard(), &["orders:read"]),
        (ClaimMapping::auth0(), &["orders:read"]),
        (ClaimMapping::entra(), &["Orders.Admin", "orders:read"]),
        (ClaimMapping::cognito(), &["ops", "orders:read"]),
        (
            ClaimMapping::only(["resource_access", "tollgate-test", "roles"]),
            &["orders-reader"],
        ),
    ];
    let source = Discovery::new(oidc_issuer()).discover().await.unwrap();
    for (mapping, want) in cases {
        let layer = JwtLayer::with_providers([source
            .clone()
            .audience(&audience)
            .claim_mapping(mapping.clone())])
        .build()
        .unwrap();
        let verified = layer.authenticator().validate(&token).unwrap();
        assert_eq!(verified.user().scopes(), want, "{mapping:?}");
    }
}

#[tokio::test]
async fn a_key_rotation_is_picked_up_by_the_unknown_kid_refetch() {
    let _exclusive = PROVIDER.write().await;
    let layer = JwtLayer::with_providers([discovered(&oidc_issuer()).await])
        .build()
        .unwrap();
    let client = api(layer).await;
    let before = provider_token(&oidc_issuer(), "orders:read").await;
    assert_eq!(get_me(&client, "/me", &before).await.status, 200);

    let rotated = admin("/__test/rotate").await;
    let after = provider_token(&oidc_issuer(), "orders:read").await;
    assert_eq!(header_of(&after)["kid"], rotated["kid"]);
    assert_ne!(header_of(&after)["kid"], header_of(&before)["kid"]);
    let answer = get_me(&client, "/me", &after).await;
    assert_eq!(
        answer.status,
        200,
        "the new kid is fetched: {}",
        answer.text()
    );
    assert_eq!(
        get_me(&client, "/me", &before).await.status,
        200,
        "the old key stays published"
    );
}

#[tokio::test]
async fn a_provider_that_is_down_leaves_cached_keys_working_and_unknown_kids_refused_in_time() {
    let _exclusive = PROVIDER.write().await;
    let layer = JwtLayer::with_providers([Discovery::new(oidc_issuer())
        .jwks(|jwks| jwks.unknown_kid_timeout(Duration::from_secs(2)))
        .discover()
        .await
        .unwrap()
        .audience(oidc_client().2)])
    .build()
    .unwrap();
    let client = api(layer).await;
    let token = provider_token(&oidc_issuer(), "orders:read").await;

    admin("/__test/outage?on=1").await;
    let outcome = async move {
        // Never presented before: verified with the keys fetched before the outage.
        let answer = get_me(&client, "/me", &token).await;
        assert_eq!(answer.status, 200, "{}", answer.text());
        // Discovery itself fails, bounded.
        let started = Instant::now();
        let error = Discovery::new(oidc_issuer())
            .client(
                HttpClient::builder()
                    .timeout(Duration::from_secs(2))
                    .build()
                    .unwrap(),
            )
            .discover()
            .await
            .unwrap_err();
        assert!(matches!(error, DiscoveryError::Fetch(_)), "{error}");
        assert!(started.elapsed() < Duration::from_secs(5));
        // A kid the layer does not hold: one re-fetch, which fails, and a 401 in time.
        let mut header = header_of(&token);
        header["kid"] = json!("never-published");
        let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
        parts[0] = URL_SAFE_NO_PAD.encode(header.to_string());
        let started = Instant::now();
        let answer = get_me(&client, "/me", &parts.join(".")).await;
        assert_eq!(answer.status, 401);
        assert!(started.elapsed() < Duration::from_secs(5));
    };
    // Whatever happens, the provider comes back for the other tests.
    let result = tokio::spawn(outcome).await;
    admin("/__test/outage?on=0").await;
    if let Err(panic) = result {
        std::panic::resume_unwind(panic.into_panic());
    }
}
