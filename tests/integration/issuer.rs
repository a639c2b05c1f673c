//! The issuer through real axum servers on 127.0.0.1: a token endpoint built on
//! `TokenService`/`TokenExchange`, and APIs guarded by `JwtLayer` fed by the issuer (its own
//! configuration, or its JWKS document over HTTP).

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use bytes::Bytes;
use http_body_util::Full;
use serde_json::{Value, json};
use tollgate::api_key::{ApiKeyLayer, ApiKeys, InMemoryKeyStore, NewKey};
use tollgate::app_user::{AppUserLayer, Policy};
use tollgate::clock::ManualClock;
use tollgate::identity::{AppIdentity, UserIdentity};
use tollgate::issuer::{
    DirectoryUser, Grant, InMemoryRefreshStore, OAuthError, SigningKey, TokenExchange, TokenIssuer,
    TokenResponse, TokenService,
};
use tollgate::jwt::jwks::HyperJwksFetcher;
use tollgate::jwt::{Algorithm, Claims, JwksSource, JwtLayer, RevocationList, StandardClaims};

use crate::support::{Answer, HttpClient, serve_axum};

const NOW: u64 = 1_700_000_000;
const ISS: &str = "https://auth.example";
const AUD: &str = "https://api.example";

type Service = TokenService<Arc<InMemoryRefreshStore>>;

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/jwt/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn clock() -> ManualClock {
    ManualClock::new(UNIX_EPOCH + Duration::from_secs(NOW))
}

fn issuer(clock: &ManualClock, key: SigningKey) -> TokenIssuer {
    TokenIssuer::builder(ISS, key)
        .audience(AUD)
        .clock(Arc::new(clock.clone()))
        .build()
        .unwrap()
}

fn rsa_key() -> SigningKey {
    SigningKey::rsa_pem("rsa-1", fixture("rsa.key"), Algorithm::RS256).unwrap()
}

fn reply(result: Result<TokenResponse, OAuthError>) -> Response {
    match result {
        Ok(tokens) => Json(tokens).into_response(),
        Err(error) => (error.status(), Json(error)).into_response(),
    }
}

async fn login(State(service): State<Service>, Json(body): Json<Value>) -> Response {
    let sub = body["sub"].as_str().unwrap_or_default();
    let scope = body["scope"].as_str().unwrap_or_default();
    let grant = Grant::new(sub).scopes(scope.split(' '));
    match &body["claims"] {
        Value::Null => reply(service.issue_grant(grant).await),
        claims => reply(service.issue_grant(grant.claims(claims).unwrap()).await),
    }
}

/// The refresh grant (JSON instead of a form, to keep the test's dependencies as they are).
async fn token(State(service): State<Service>, Json(body): Json<Value>) -> Response {
    if body["grant_type"] != "refresh_token" {
        let error = OAuthError::new(
            tollgate::issuer::ErrorCode::UnsupportedGrantType,
            "Only refresh_token here.",
        );
        return reply(Err(error));
    }
    let refresh_token = body["refresh_token"].as_str().unwrap_or_default();
    match body["scope"].as_str() {
        Some(scope) => reply(
            service
                .refresh_with_scopes(refresh_token, scope.split(' '))
                .await,
        ),
        None => reply(service.refresh(refresh_token).await),
    }
}

async fn logout(State(service): State<Service>, Json(body): Json<Value>) -> Response {
    let refresh_token = body["refresh_token"].as_str().unwrap_or_default();
    match service.logout(refresh_token).await {
        Ok(_) => http::StatusCode::NO_CONTENT.into_response(),
        Err(error) => reply(Err(error)),
    }
}

async fn me(
    Extension(user): Extension<UserIdentity>,
    Extension(claims): Extension<Claims<StandardClaims>>,
) -> Json<Value> {
    let claims = claims.get();
    Json(json!({
        "sub": user.subject(),
        "scopes": user.scopes(),
        "actor": user.actor(),
        "authorized_party": user.authorized_party(),
        "act": claims.act,
        "azp": claims.azp,
        "client_id": claims.client_id,
        "jti": claims.jti,
        "roles": claims.roles,
    }))
}

struct Fixture {
    client: HttpClient,
    clock: ManualClock,
    store: Arc<InMemoryRefreshStore>,
    service: Service,
}

/// A token endpoint and an API guarded by the issuer's own `jwt_layer`, with the denylist
/// wired between the service and the layer.
async fn token_server(grace: Duration) -> Fixture {
    token_server_with_leeway(grace, Duration::from_secs(60)).await
}

/// As [`token_server`], with the layer's leeway `leeway`.
async fn token_server_with_leeway(grace: Duration, leeway: Duration) -> Fixture {
    let clock = clock();
    let denylist = RevocationList::with_clock(Arc::new(clock.clone()));
    let issuer = issuer(&clock, rsa_key());
    let store = Arc::new(InMemoryRefreshStore::new());
    let service = TokenService::builder(issuer.clone(), Arc::clone(&store))
        .grace_window(grace)
        .denylist(denylist.clone())
        .build();
    let layer = issuer
        .jwt_layer()
        .leeway(leeway)
        .revocation(denylist)
        .build()
        .unwrap();
    let router = Router::new()
        .route("/me", get(me))
        .route_layer(layer)
        .route("/login", post(login))
        .route("/token", post(token))
        .route("/logout", post(logout))
        .with_state(service.clone());
    Fixture {
        client: HttpClient::new(serve_axum(router).await),
        clock,
        store,
        service,
    }
}

impl Fixture {
    async fn post(&self, path: &str, body: Value) -> Answer {
        let request = self
            .client
            .request(http::Method::POST, path)
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body.to_string())))
            .unwrap();
        self.client.send(request).await
    }

    async fn login(&self, sub: &str, scope: &str) -> Value {
        let answer = self
            .post("/login", json!({"sub": sub, "scope": scope}))
            .await;
        assert_eq!(answer.status, 200, "{}", answer.text());
        answer.json()
    }

    async fn refresh(&self, refresh_token: &str) -> Answer {
        self.post(
            "/token",
            json!({"grant_type": "refresh_token", "refresh_token": refresh_token}),
        )
        .await
    }

    async fn me(&self, access_token: &str) -> Answer {
        let bearer = format!("Bearer {access_token}");
        self.client
            .get("/me", &[("authorization", bearer.as_bytes())])
            .await
    }

    async fn family_len(&self, refresh_token: &str) -> usize {
        let family = self
            .service
            .family_of(refresh_token)
            .await
            .unwrap()
            .unwrap();
        use tollgate::issuer::RefreshTokenStore as _;
        self.store.family(&family).await.unwrap().len()
    }
}

fn str_of<'a>(value: &'a Value, member: &str) -> &'a str {
    value[member]
        .as_str()
        .unwrap_or_else(|| panic!("{member} in {value}"))
}

fn assert_invalid_grant(answer: &Answer) {
    assert_eq!(answer.status, 400, "{}", answer.text());
    assert_eq!(answer.json()["error"], "invalid_grant");
}

#[tokio::test]
async fn issued_tokens_pass_the_jwt_layer_built_from_the_same_issuer() {
    let f = token_server(Duration::ZERO).await;
    let tokens = f.login("alice", "orders:read orders:write").await;
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["expires_in"], 900);
    assert_eq!(tokens["scope"], "orders:read orders:write");
    assert!(str_of(&tokens, "refresh_token").starts_with("rt_"));

    let answer = f.me(str_of(&tokens, "access_token")).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(answer.json()["sub"], "alice");
    assert_eq!(
        answer.json()["scopes"],
        json!(["orders:read", "orders:write"])
    );

    // Valid until exp + the layer's 60 s leeway, then refused.
    f.clock.advance(Duration::from_secs(900 + 61));
    assert_eq!(f.me(str_of(&tokens, "access_token")).await.status, 401);
    // A refresh token is not an access token.
    assert_eq!(f.me(str_of(&tokens, "refresh_token")).await.status, 401);
}

#[tokio::test]
async fn refresh_rotates_through_a_chain_of_five() {
    let f = token_server(Duration::ZERO).await;
    let first = f.login("alice", "orders:read").await;
    let mut used = Vec::new();
    let mut current = str_of(&first, "refresh_token").to_owned();
    for step in 0..5 {
        f.clock.advance(Duration::from_secs(60));
        let answer = f.refresh(&current).await;
        assert_eq!(answer.status, 200, "step {step}: {}", answer.text());
        let tokens = answer.json();
        let next = str_of(&tokens, "refresh_token").to_owned();
        assert_ne!(next, current);
        assert!(!used.contains(&next), "never an earlier token");
        let me = f.me(str_of(&tokens, "access_token")).await;
        assert_eq!(me.status, 200);
        assert_eq!(me.json()["sub"], "alice");
        used.push(std::mem::replace(&mut current, next));
    }
    assert_eq!(
        f.family_len(&current).await,
        6,
        "one login and five rotations"
    );
}

#[tokio::test]
async fn refresh_narrows_the_access_tokens_scope_but_never_widens_it() {
    let f = token_server(Duration::ZERO).await;
    let login = f.login("alice", "orders:read orders:write").await;
    let scoped = |token: &str, scope: &str| json!({"grant_type": "refresh_token", "refresh_token": token, "scope": scope});
    // Narrower: the access token carries only what was asked for.
    let narrow = f
        .post(
            "/token",
            scoped(str_of(&login, "refresh_token"), "orders:read"),
        )
        .await;
    assert_eq!(narrow.status, 200, "{}", narrow.text());
    let narrow = narrow.json();
    assert_eq!(narrow["scope"], "orders:read");
    let me = f.me(str_of(&narrow, "access_token")).await.json();
    assert_eq!(me["scopes"], json!(["orders:read"]));
    // Wider, or nothing at all: invalid_scope, and the refresh token is not used up by it.
    let next = str_of(&narrow, "refresh_token");
    for scope in ["orders:read admin", "orders", ""] {
        let refused = f.post("/token", scoped(next, scope)).await;
        assert_eq!(refused.status, 400, "{scope:?}");
        assert_eq!(refused.json()["error"], "invalid_scope", "{scope:?}");
    }
    // The successor kept the whole grant: a plain refresh gets it all back.
    let full = f.refresh(next).await;
    assert_eq!(full.status, 200, "{}", full.text());
    let full = full.json();
    assert_eq!(full["scope"], "orders:read orders:write");
    assert_eq!(f.family_len(next).await, 3, "one login and two rotations");
    // A spent token is a reuse whatever scope it asks for: the session is revoked.
    let reused = f.post("/token", scoped(next, "admin")).await;
    assert_invalid_grant(&reused);
    assert_invalid_grant(&f.refresh(str_of(&full, "refresh_token")).await);
}

#[tokio::test]
async fn a_sessions_custom_claims_ride_along_every_refresh() {
    let f = token_server(Duration::ZERO).await;
    let login = f
        .post(
            "/login",
            json!({"sub": "alice", "scope": "orders:read orders:write", "claims": {"roles": ["support"]}}),
        )
        .await;
    assert_eq!(login.status, 200, "{}", login.text());
    let mut tokens = login.json();
    for step in 0..3 {
        let me = f.me(str_of(&tokens, "access_token")).await;
        assert_eq!(me.status, 200, "step {step}: {}", me.text());
        assert_eq!(me.json()["roles"], json!(["support"]), "step {step}");
        let next = if step == 1 {
            let body = json!({"grant_type": "refresh_token", "scope": "orders:read",
                              "refresh_token": str_of(&tokens, "refresh_token")});
            f.post("/token", body).await
        } else {
            f.refresh(str_of(&tokens, "refresh_token")).await
        };
        assert_eq!(next.status, 200, "step {step}: {}", next.text());
        tokens = next.json();
    }
    // A session without claims mints tokens without them.
    let plain = f.login("bob", "orders:read").await;
    let me = f.me(str_of(&plain, "access_token")).await.json();
    assert_eq!(me["roles"], Value::Null);
}

#[tokio::test]
async fn reusing_a_rotated_token_revokes_the_family_and_its_access_tokens() {
    let f = token_server(Duration::ZERO).await;
    let t0 = f.login("alice", "orders:read").await;
    let t1 = f.refresh(str_of(&t0, "refresh_token")).await.json();
    let t2 = f.refresh(str_of(&t1, "refresh_token")).await.json();
    for tokens in [&t0, &t1, &t2] {
        assert_eq!(f.me(str_of(tokens, "access_token")).await.status, 200);
    }
    // A thief replays t1's refresh token, already rotated.
    assert_invalid_grant(&f.refresh(str_of(&t1, "refresh_token")).await);
    // Every refresh token of the family now fails, the active one included.
    for tokens in [&t0, &t1, &t2] {
        assert_invalid_grant(&f.refresh(str_of(tokens, "refresh_token")).await);
    }
    // And the access tokens minted from it are refused by the layer with the denylist.
    for tokens in [&t0, &t1, &t2] {
        let answer = f.me(str_of(tokens, "access_token")).await;
        assert_eq!(answer.status, 401, "{}", answer.text());
    }
    // Another user's session is untouched.
    let other = f.login("bob", "orders:read").await;
    assert_eq!(f.refresh(str_of(&other, "refresh_token")).await.status, 200);
}

#[tokio::test]
async fn logout_revokes_the_family() {
    let f = token_server(Duration::ZERO).await;
    let t0 = f.login("alice", "orders:read").await;
    let t1 = f.refresh(str_of(&t0, "refresh_token")).await.json();
    let answer = f
        .post(
            "/logout",
            json!({"refresh_token": str_of(&t1, "refresh_token")}),
        )
        .await;
    assert_eq!(answer.status, 204);
    assert_invalid_grant(&f.refresh(str_of(&t1, "refresh_token")).await);
    assert_eq!(f.me(str_of(&t1, "access_token")).await.status, 401);
}

/// Review f2, second variant: the access tokens of a logged-out (or reused) session stay
/// refused through the layer's leeway after their `exp`, whatever that leeway is (the
/// service's denylist margin was fixed at 60 s).
#[tokio::test]
async fn a_revoked_sessions_access_token_stays_refused_through_a_long_leeway() {
    let f = token_server_with_leeway(Duration::ZERO, Duration::from_secs(120)).await;
    let t0 = f.login("alice", "orders:read").await;
    let t1 = f.refresh(str_of(&t0, "refresh_token")).await.json();
    assert_eq!(f.me(str_of(&t1, "access_token")).await.status, 200);
    // Reuse of t0's spent refresh token revokes the family.
    assert_invalid_grant(&f.refresh(str_of(&t0, "refresh_token")).await);
    let expires_in = t1["expires_in"].as_u64().unwrap();
    for after_exp in [0, 59, 61, 90, 119] {
        f.clock
            .set(UNIX_EPOCH + Duration::from_secs(NOW + expires_in + after_exp));
        let answer = f.me(str_of(&t1, "access_token")).await;
        assert_eq!(
            answer.status,
            401,
            "{after_exp} s after exp: {}",
            answer.text()
        );
        assert_eq!(
            answer.json()["code"],
            "revoked_credential",
            "{after_exp} s after exp"
        );
    }
    f.clock
        .set(UNIX_EPOCH + Duration::from_secs(NOW + expires_in + 120));
    assert_eq!(
        f.me(str_of(&t1, "access_token")).await.json()["code"],
        "expired_credential"
    );
}

#[tokio::test]
async fn grace_window_gives_the_direct_predecessor_the_same_successor_once() {
    let f = token_server(Duration::from_secs(10)).await;
    let t0 = f.login("alice", "orders:read").await;
    let t1 = f.refresh(str_of(&t0, "refresh_token")).await.json();
    f.clock.advance(Duration::from_secs(3));
    // The response to the first refresh was "lost": the client retries with t0.
    let retry = f.refresh(str_of(&t0, "refresh_token")).await;
    assert_eq!(retry.status, 200, "{}", retry.text());
    let retry = retry.json();
    assert_eq!(
        retry["refresh_token"], t1["refresh_token"],
        "the same successor"
    );
    assert_eq!(retry["expires_in"], 897, "the same access token lifetime");
    assert_eq!(f.me(str_of(&retry, "access_token")).await.status, 200);
    assert_eq!(
        f.family_len(str_of(&t1, "refresh_token")).await,
        2,
        "no third token"
    );
    // Only once.
    assert_invalid_grant(&f.refresh(str_of(&t0, "refresh_token")).await);
    assert_invalid_grant(&f.refresh(str_of(&t1, "refresh_token")).await);

    // Only the direct predecessor: two steps back is a reuse even inside the window.
    let u0 = f.login("bob", "orders:read").await;
    let u1 = f.refresh(str_of(&u0, "refresh_token")).await.json();
    let u2 = f.refresh(str_of(&u1, "refresh_token")).await.json();
    assert_invalid_grant(&f.refresh(str_of(&u0, "refresh_token")).await);
    assert_invalid_grant(&f.refresh(str_of(&u2, "refresh_token")).await);
}

/// Review #10: a grace window too long to add to a time (`Duration::MAX`, as from an
/// unchecked setting) is "always within", not a panic in the token endpoint.
#[tokio::test]
async fn a_huge_grace_window_is_always_within_not_a_panic() {
    let f = token_server(Duration::MAX).await;
    let t0 = f.login("alice", "orders:read").await;
    let t1 = f.refresh(str_of(&t0, "refresh_token")).await;
    assert_eq!(t1.status, 200, "{}", t1.text());
    f.clock.advance(Duration::from_secs(3600));
    let again = f.refresh(str_of(&t0, "refresh_token")).await;
    assert_eq!(again.status, 200, "{}", again.text());
    assert_eq!(
        str_of(&again.json(), "refresh_token"),
        str_of(&t1.json(), "refresh_token"),
        "the same successor"
    );
}

// Several worker threads, so the handlers really interleave between lookup and rotation.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_refreshes_with_one_token_yield_one_successor() {
    for grace in [Duration::ZERO, Duration::from_secs(5)] {
        let f = token_server(grace).await;
        let t0 = f.login("alice", "orders:read").await;
        let t0 = str_of(&t0, "refresh_token");
        let answers = futures_util::future::join_all((0..8).map(|_| f.refresh(t0))).await;
        let successors: std::collections::BTreeSet<String> = answers
            .iter()
            .filter(|a| a.status == 200)
            .map(|a| str_of(&a.json(), "refresh_token").to_owned())
            .collect();
        assert_eq!(
            successors.len(),
            1,
            "grace {grace:?}: exactly one successor"
        );
        assert_eq!(
            f.family_len(t0).await,
            2,
            "grace {grace:?}: one family member added"
        );
        let ok = answers.iter().filter(|a| a.status == 200).count();
        if grace.is_zero() {
            // The first wins; every other is a reuse, which revokes the family.
            assert_eq!(ok, 1);
            let successor = successors.first().unwrap();
            assert_invalid_grant(&f.refresh(successor).await);
        } else {
            // With a grace window one retry shares the successor, the rest are reuses.
            assert_eq!(ok, 2);
        }
        for answer in answers.iter().filter(|a| a.status != 200) {
            assert_invalid_grant(answer);
        }
    }
}

#[tokio::test]
async fn bad_refresh_tokens_are_invalid_grant_never_a_crash() {
    let f = token_server(Duration::ZERO).await;
    let t0 = f.login("alice", "orders:read").await;
    let good = str_of(&t0, "refresh_token").to_owned();
    let mut flipped = good.clone().into_bytes();
    let last = flipped.len() - 2;
    flipped[last] = if flipped[last] == b'A' { b'B' } else { b'A' };
    let flipped = String::from_utf8(flipped).unwrap();
    let long = "rt_".to_owned() + &"A".repeat(100_000);
    for bad in [
        "",
        "rt_",
        "null",
        "rt_\u{0}\u{1}",
        &long,
        &flipped,
        &good[..20],
    ] {
        assert_invalid_grant(&f.refresh(bad).await);
    }
    // Expired: past the 30-day refresh lifetime.
    f.clock.advance(Duration::from_secs(31 * 24 * 3600));
    let answer = f.refresh(&good).await;
    assert_invalid_grant(&answer);
    assert_eq!(
        answer.json()["error_description"],
        "The refresh token has expired."
    );
    // The wrong grant type is its own error.
    let answer = f.post("/token", json!({"grant_type": "password"})).await;
    assert_eq!(answer.json()["error"], "unsupported_grant_type");
}

// ----------------------------------------------------------------------------------------
// Token exchange: an app authenticated by its API key gets a token for one user.
// ----------------------------------------------------------------------------------------

type Directory = std::collections::HashMap<String, DirectoryUser>;

async fn exchange(
    State(exchange): State<TokenExchange<Directory>>,
    Extension(app): Extension<AppIdentity>,
    Json(body): Json<Value>,
) -> Response {
    let user = body["user_id"].as_str().unwrap_or_default();
    reply(exchange.exchange(&app, user, body["scope"].as_str()).await)
}

#[tokio::test]
async fn token_exchange_narrows_scopes_records_act_and_refuses_apps_without_the_scope() {
    let clock = clock();
    let issuer = issuer(&clock, rsa_key());
    let keys = ApiKeys::builder(InMemoryKeyStore::new()).build();
    // The application's user store: alice holds orders and her profile, dave is disabled.
    let directory: Directory = [
        (
            "alice".to_owned(),
            DirectoryUser::active(["orders:read", "orders:write", "profile"]).tenant("acme"),
        ),
        ("dave".to_owned(), DirectoryUser::inactive()),
    ]
    .into();
    let jwt = issuer.jwt_layer().build().unwrap();
    let api_key = ApiKeyLayer::new(keys.clone());
    let router = Router::new()
        .route("/token-exchange", post(exchange))
        .route_layer(api_key.clone())
        .with_state(TokenExchange::new(issuer.clone(), directory))
        .merge(Router::new().route("/me", get(me)).route_layer(jwt.clone()))
        // Key and token together, as the README's POST /orders.
        .merge(
            Router::new()
                .route("/orders", post(|| async { "placed" }))
                .route_layer(AppUserLayer::from_layers(
                    &api_key,
                    &jwt,
                    Policy::AppAndUser,
                )),
        );
    let client = HttpClient::new(serve_axum(router).await);
    let key = |new| {
        let keys = keys.clone();
        async move { keys.generate(new).await.unwrap().key().expose().to_owned() }
    };
    let billing = key(NewKey::new("app-billing", "Billing").scopes([
        "token:exchange",
        "orders:read",
        "invoices:read",
    ]))
    .await;
    let shop = key(NewKey::new("app-shop", "Shop").scopes(["token:exchange", "orders:read"])).await;
    let plain = key(NewKey::new("app-plain", "Plain").scopes(["orders:read"])).await;
    let post = |api_key: String, body: Value| {
        let client = client.clone();
        async move {
            let request = client
                .request(http::Method::POST, "/token-exchange")
                .header("x-api-key", api_key)
                .header("content-type", "application/json")
                .body(Full::new(Bytes::from(body.to_string())))
                .unwrap();
            client.send(request).await
        }
    };
    let error = |answer: &Answer| (answer.status.as_u16(), answer.json()["error"].clone());

    // Requested ∩ the key's ∩ alice's own: orders:read (the key lacks orders:write, alice
    // lacks admin).
    let answer = post(
        billing.clone(),
        json!({"user_id": "alice", "scope": "orders:read orders:write admin"}),
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    let tokens = answer.json();
    assert_eq!(tokens["expires_in"], 180);
    assert_eq!(tokens["scope"], "orders:read");
    assert!(tokens.get("refresh_token").is_none());
    let bearer = format!("Bearer {}", str_of(&tokens, "access_token"));
    let me = client
        .get("/me", &[("authorization", bearer.as_bytes())])
        .await;
    assert_eq!(me.status, 200, "{}", me.text());
    let me = me.json();
    assert_eq!(me["sub"], "alice");
    assert_eq!(me["scopes"], json!(["orders:read"]));
    assert_eq!(me["act"], json!({"sub": "app-billing"}));
    assert_eq!(me["actor"], "app-billing");
    assert_eq!(me["authorized_party"], "app-billing");
    assert_eq!(me["azp"], "app-billing");
    assert_eq!(me["client_id"], "app-billing");

    // Without a scope parameter: everything both hold, never the key's invoices:read, which
    // alice does not hold (before, the token carried the app's scopes, whoever the user).
    let answer = post(billing.clone(), json!({"user_id": "alice"})).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(answer.json()["scope"], "orders:read");
    let answer = post(
        billing.clone(),
        json!({"user_id": "alice", "scope": "invoices:read"}),
    )
    .await;
    assert_eq!(error(&answer), (400, json!("invalid_scope")));

    // A disabled user and a user who does not exist get no token, and the same answer.
    for user in ["dave", "nobody-at-all"] {
        let answer = post(billing.clone(), json!({"user_id": user})).await;
        assert_eq!(error(&answer), (400, json!("invalid_request")), "{user}");
        assert_eq!(
            answer.json()["error_description"],
            "The subject is not a user the client may act for."
        );
    }

    // The delegated token is bound to the app it was minted for: with billing's own key it
    // passes the key + token route; with another app's key it is refused.
    let order = |api_key: String| {
        let client = client.clone();
        let bearer = bearer.clone();
        async move {
            let request = client
                .request(http::Method::POST, "/orders")
                .header("x-api-key", api_key)
                .header("authorization", bearer)
                .body(Full::new(Bytes::new()))
                .unwrap();
            client.send(request).await
        }
    };
    assert_eq!(order(billing.clone()).await.status, 200);
    let answer = order(shop.clone()).await;
    assert_eq!(answer.status, 401, "{}", answer.text());
    assert_eq!(answer.json()["code"], "invalid_credential");
    assert!(
        answer
            .header("www-authenticate")
            .is_some_and(|c| c.starts_with("Bearer error=\"invalid_token\"")),
        "{:?}",
        answer.header("www-authenticate")
    );

    // Short-lived: gone after 180 s + leeway.
    clock.advance(Duration::from_secs(180 + 61));
    let me = client
        .get("/me", &[("authorization", bearer.as_bytes())])
        .await;
    assert_eq!(me.status, 401);

    // No scope in common: invalid_scope. An app without token:exchange: unauthorized_client.
    let answer = post(billing, json!({"user_id": "alice", "scope": "admin"})).await;
    assert_eq!(error(&answer), (400, json!("invalid_scope")));
    let answer = post(plain, json!({"user_id": "alice"})).await;
    assert_eq!(error(&answer), (400, json!("unauthorized_client")));
    // And without an API key the exchange route is not reached at all.
    let answer = client.get("/token-exchange", &[]).await;
    assert_eq!(answer.status, 401);
}

#[tokio::test]
async fn trusting_the_app_is_the_only_exchange_without_a_directory() {
    let clock = clock();
    let issuer = issuer(&clock, rsa_key());
    let keys = ApiKeys::builder(InMemoryKeyStore::new()).build();
    let key = keys
        .generate(NewKey::new("app-1", "First party").scopes(["token:exchange", "orders:read"]))
        .await
        .unwrap();
    let app = keys.verify(key.key().expose()).await.unwrap();
    // Named for what it does: any subject, the app's own scopes.
    let exchange = TokenExchange::trusting_the_app(issuer.clone());
    let tokens = exchange.exchange(&app, "anyone", None).await.unwrap();
    assert_eq!(tokens.scope.as_deref(), Some("orders:read"));
    let verified = issuer
        .jwt_layer()
        .build()
        .unwrap()
        .authenticator()
        .validate(&tokens.access_token)
        .unwrap();
    assert_eq!(verified.user().actor(), Some("app-1"));
}

// ----------------------------------------------------------------------------------------
// Key rotation: the JWKS document keeps the old key while its tokens live.
// ----------------------------------------------------------------------------------------

#[tokio::test]
async fn key_rotation_keeps_old_tokens_valid_through_the_jwks_document_until_they_expire() {
    let clock = clock();
    let issuer = issuer(&clock, rsa_key());
    let jwks_route = {
        let issuer = issuer.clone();
        move || {
            let issuer = issuer.clone();
            async move {
                (
                    [
                        ("content-type", "application/json"),
                        ("cache-control", "max-age=300"),
                    ],
                    issuer.jwks().to_json(),
                )
            }
        }
    };
    let auth = serve_axum(Router::new().route("/.well-known/jwks.json", get(jwks_route))).await;
    let uri: http::Uri = format!("http://{auth}/.well-known/jwks.json")
        .parse()
        .unwrap();
    let source = JwksSource::builder(HyperJwksFetcher::http(uri)).build();
    source.refresh().await.unwrap();
    let layer = JwtLayer::builder(source.clone())
        .issuer(ISS)
        .audience(AUD)
        .require_access_token_type()
        .clock(Arc::new(clock.clone()))
        .build()
        .unwrap();
    let api =
        HttpClient::new(serve_axum(Router::new().route("/me", get(me)).route_layer(layer)).await);
    let call = |token: String| {
        let api = api.clone();
        async move {
            let bearer = format!("Bearer {token}");
            api.get("/me", &[("authorization", bearer.as_bytes())])
                .await
                .status
        }
    };
    let grant = tollgate::issuer::Grant::new("alice").scopes(["orders:read"]);
    let old = issuer.mint(&grant).unwrap().into_string();
    assert_eq!(call(old.clone()).await, 200);

    // Rotate to an EC key; the layer learns it from the document (an unknown kid triggers a
    // re-fetch, or the refresh does).
    clock.advance(Duration::from_secs(300));
    issuer.rotate_key(SigningKey::ec_pem("ec-2", fixture("ec256.key"), Algorithm::ES256).unwrap());
    let new = issuer.mint(&grant).unwrap().into_string();
    source.refresh().await.unwrap();
    assert_eq!(source.keys().len(), 2, "old and new published");
    assert_eq!(call(new.clone()).await, 200);
    assert_eq!(
        call(old.clone()).await,
        200,
        "the old key still verifies its tokens"
    );

    // Once the old key's tokens have expired (15 min + 60 s after the rotation), it is
    // dropped from the document; new tokens keep working.
    clock.advance(Duration::from_secs(900 + 61));
    source.refresh().await.unwrap();
    assert_eq!(source.keys().len(), 1);
    let kids: Vec<_> = issuer
        .jwks()
        .keys()
        .iter()
        .map(|k| k.common.key_id.clone().unwrap())
        .collect();
    assert_eq!(kids, ["ec-2"]);
    assert_eq!(call(old).await, 401);
    let fresh = issuer.mint(&grant).unwrap().into_string();
    assert_eq!(call(fresh).await, 200);
}
