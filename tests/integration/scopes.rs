//! Scopes, predicates and the extractors through real axum and tonic servers on 127.0.0.1,
//! with real API keys (in-memory store) and HS256 tokens made here. The helpers are shared
//! with `combined.rs`.

use std::sync::{Arc, Once};
use std::time::{Duration, UNIX_EPOCH};

use axum::routing::{get, post};
use axum::{Extension, Router};
use jsonwebtoken::crypto::CryptoProvider;
use jsonwebtoken::{EncodingKey, Header};
use serde_json::{Value, json};
use tollgate::api_key::{ApiKeyLayer, ApiKeys, InMemoryKeyStore, NewKey};
use tollgate::app_user::{AppUserLayer, Policy};
use tollgate::clock::ManualClock;
use tollgate::identity::{AppIdentity, UserIdentity};
use tollgate::jwt::{Algorithm, JwtKey, JwtLayer};
use tollgate::principal::{EffectiveScopes, Principal};
use tollgate::scope::{RequireLayer, RequireScopesLayer, RequiredScopes};
use tower::ServiceBuilder;

use crate::support::{Answer, HttpClient, ProbeServer, call_whoami, serve_axum, serve_tonic};

pub(crate) const NOW: u64 = 1_700_000_000;
const SECRET: &[u8] = b"scopes-test-secret-of-at-least-32-bytes!";

pub(crate) fn token_with(secret: &[u8], claims: &Value) -> String {
    static ONCE: Once = Once::new();
    // Signing (test side only) needs one process-wide provider when both backends are on.
    ONCE.call_once(|| {
        let _ = CryptoProvider::install_default(&jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER);
    });
    jsonwebtoken::encode(
        &Header::new(jsonwebtoken::Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret),
    )
    .unwrap()
}

/// A valid token for `sub` with `extra` claims merged in.
pub(crate) fn token(sub: &str, extra: Value) -> String {
    let mut claims = json!({"sub": sub, "iat": NOW, "exp": NOW + 600});
    let Value::Object(extra) = extra else {
        panic!("extra claims are an object")
    };
    for (k, v) in extra {
        claims[k] = v;
    }
    token_with(SECRET, &claims)
}

pub(crate) fn jwt_builder() -> tollgate::jwt::JwtBuilder {
    let clock = ManualClock::new(UNIX_EPOCH + Duration::from_secs(NOW));
    JwtLayer::builder(JwtKey::hmac(SECRET, Algorithm::HS256).unwrap()).clock(Arc::new(clock))
}

pub(crate) struct Keys {
    pub(crate) keys: ApiKeys<InMemoryKeyStore>,
    pub(crate) reader: String,
    pub(crate) writer: String,
    /// Well-formed, right checksum, but from another store: unknown here.
    pub(crate) unknown: String,
}

pub(crate) async fn keys() -> Keys {
    let keys = ApiKeys::builder(InMemoryKeyStore::new()).build();
    let reader = keys
        .generate(NewKey::new("app-1", "Shop").scopes(["orders:read"]))
        .await
        .unwrap();
    let writer = keys
        .generate(NewKey::new("app-2", "Sync").scopes(["orders:write"]))
        .await
        .unwrap();
    let other = ApiKeys::builder(InMemoryKeyStore::new()).build();
    let unknown = other.generate(NewKey::new("app-x", "X")).await.unwrap();
    Keys {
        keys,
        reader: reader.key().expose().to_owned(),
        writer: writer.key().expose().to_owned(),
        unknown: unknown.key().expose().to_owned(),
    }
}

pub(crate) async fn send(
    client: &HttpClient,
    method: http::Method,
    path: &str,
    key: Option<&str>,
    bearer: Option<&str>,
) -> Answer {
    let mut builder = client.request(method, path);
    if let Some(key) = key {
        builder = builder.header("x-api-key", key);
    }
    if let Some(token) = bearer {
        builder = builder.header("authorization", format!("Bearer {token}"));
    }
    client.send(builder.body(Default::default()).unwrap()).await
}

async fn create_order(
    Extension(app): Extension<AppIdentity>,
    Extension(user): Extension<UserIdentity>,
) -> String {
    // Seed 000: the application id and the user id, together.
    format!(
        "app={} user={}",
        app.app_id(),
        user.subject().unwrap_or("-")
    )
}

/// Seed 000's orders endpoints: `GET /orders` needs a key with `orders:read`, `POST /orders`
/// a key (which app) and a token (which user).
async fn orders_server(keys: &Keys) -> HttpClient {
    let api_key = ApiKeyLayer::new(keys.keys.clone());
    let jwt = jwt_builder().build().unwrap();
    let router = Router::new().route(
        "/orders",
        get(|| async { "orders" })
            .route_layer(RequireScopesLayer::all(["orders:read"]).unwrap())
            .route_layer(api_key.clone())
            .merge(post(create_order).route_layer(AppUserLayer::from_layers(
                &api_key,
                &jwt,
                Policy::AppAndUser,
            ))),
    );
    HttpClient::new(serve_axum(router).await)
}

#[tokio::test]
async fn seed_000_orders_endpoints() {
    let keys = keys().await;
    let client = orders_server(&keys).await;
    let get = http::Method::GET;
    let post = http::Method::POST;
    let user = token("user-42", json!({}));

    let ok = send(&client, get.clone(), "/orders", Some(&keys.reader), None).await;
    assert_eq!(ok.status, 200, "{}", ok.text());
    assert_eq!(ok.text(), "orders");

    let refused = send(&client, get.clone(), "/orders", Some(&keys.writer), None).await;
    assert_eq!(refused.status, 403);
    // The API key lacks the scope, so the challenge names the API key (it said `Bearer`).
    assert_eq!(
        refused.header("www-authenticate"),
        Some(r#"ApiKey header="x-api-key", error="insufficient_scope", scope="orders:read""#)
    );
    assert_eq!(
        refused.header("content-type"),
        Some("application/problem+json")
    );
    assert_eq!(refused.json()["code"], "insufficient_scope");
    assert_eq!(refused.json()["scope"], "orders:read");

    let anonymous = send(&client, get, "/orders", None, None).await;
    assert_eq!(anonymous.status, 401);

    let key_only = send(&client, post.clone(), "/orders", Some(&keys.reader), None).await;
    assert_eq!(key_only.status, 401);
    assert_eq!(key_only.json()["code"], "missing_credential");
    assert_eq!(key_only.header("www-authenticate"), Some("Bearer"));

    let jwt_only = send(&client, post.clone(), "/orders", None, Some(&user)).await;
    assert_eq!(jwt_only.status, 401);
    assert_eq!(
        jwt_only.header("www-authenticate"),
        Some(r#"ApiKey header="x-api-key""#)
    );

    let both = send(&client, post, "/orders", Some(&keys.writer), Some(&user)).await;
    assert_eq!(both.status, 200, "{}", both.text());
    assert_eq!(both.text(), "app=app-2 user=user-42");

    let unknown_path = send(&client, http::Method::GET, "/nowhere", None, None).await;
    assert_eq!(
        unknown_path.status, 404,
        "route_layer keeps unknown paths 404"
    );
}

/// A JWT-protected route requiring `orders:read`, the user's scopes read as configured.
async fn scope_server(jwt: JwtLayer) -> HttpClient {
    let router = Router::new()
        .route("/orders", get(|| async { "orders" }))
        .route_layer(RequireScopesLayer::all(["orders:read"]).unwrap())
        .route_layer(jwt);
    HttpClient::new(serve_axum(router).await)
}

#[tokio::test]
async fn scope_parsing_edge_cases() {
    let client = scope_server(jwt_builder().build().unwrap()).await;
    let cases = [
        (json!({"scope": "orders:read"}), 200),
        (json!({"scope": "  orders:write   orders:read  "}), 200),
        (json!({"scope": ""}), 403),
        (json!({"scope": "   "}), 403),
        (json!({}), 403),
        (json!({"scp": ["orders:read"]}), 200),
        (json!({"scp": ["orders:write", "x"]}), 403),
        (json!({"scp": "orders:write orders:read"}), 200),
        (json!({"scope": "orders:readall"}), 403),
        (json!({"scope": "orders:rea"}), 403),
        (json!({"scope": "orders"}), 403),
        (json!({"scope": "Orders:Read ORDERS:READ"}), 403),
        (json!({"scope": "orders:read\torders:write"}), 403),
        (
            json!({"scope": "orders:write", "permissions": ["orders:read"]}),
            403,
        ),
    ];
    for (claims, want) in cases {
        let answer = send(
            &client,
            http::Method::GET,
            "/orders",
            None,
            Some(&token("alice", claims.clone())),
        )
        .await;
        assert_eq!(answer.status, want, "{claims}: {}", answer.text());
        if want == 403 {
            assert_eq!(answer.json()["scope"], "orders:read", "{claims}");
        }
    }
    // A scope claim of the wrong type is a malformed token, not an empty scope set.
    let answer = send(
        &client,
        http::Method::GET,
        "/orders",
        None,
        Some(&token("alice", json!({"scp": 7}))),
    )
    .await;
    assert_eq!(answer.status, 401);

    // `permissions` as the configured scope claim (Auth0 style), string or array.
    let client = scope_server(jwt_builder().scope_claim("permissions").build().unwrap()).await;
    for (claims, want) in [
        (json!({"permissions": ["orders:read"]}), 200),
        (json!({"scope": "orders:read", "permissions": []}), 403),
        (json!({"scope": "orders:read"}), 403),
        (json!({"permissions": {"orders:read": true}}), 401),
    ] {
        let answer = send(
            &client,
            http::Method::GET,
            "/orders",
            None,
            Some(&token("alice", claims.clone())),
        )
        .await;
        assert_eq!(answer.status, want, "{claims}: {}", answer.text());
    }
    // Any claim name; a space-delimited string works as well as an array.
    let client = scope_server(jwt_builder().scope_claim("authz").build().unwrap()).await;
    for (claims, want) in [
        (json!({"authz": " admin  orders:read "}), 200),
        (json!({"authz": "orders:read-only"}), 403),
    ] {
        let answer = send(
            &client,
            http::Method::GET,
            "/orders",
            None,
            Some(&token("alice", claims.clone())),
        )
        .await;
        assert_eq!(answer.status, want, "{claims}: {}", answer.text());
    }
}

#[tokio::test]
async fn alternatives_intersection_and_claim_predicates() {
    let keys = keys().await;
    let api_key = ApiKeyLayer::new(keys.keys.clone());
    let jwt = jwt_builder().build().unwrap();
    let both = |effective| {
        AppUserLayer::from_layers(&api_key, &jwt, Policy::AppAndUser).effective_scopes(effective)
    };
    let either = RequiredScopes::all(["orders:read", "orders:list"])
        .unwrap()
        .or(RequiredScopes::all(["admin"]).unwrap());
    let router = Router::new()
        .route(
            "/intersection",
            get(|| async { "ok" })
                .route_layer(RequireScopesLayer::all(["orders:read"]).unwrap())
                .route_layer(both(EffectiveScopes::Intersection)),
        )
        .route(
            "/app-scopes",
            get(|| async { "ok" })
                .route_layer(RequireScopesLayer::all(["orders:read"]).unwrap())
                .route_layer(both(EffectiveScopes::App)),
        )
        .route(
            "/alternatives",
            get(|| async { "ok" })
                .route_layer(RequireScopesLayer::new(either))
                .route_layer(jwt.clone()),
        )
        .route(
            "/admins",
            get(|| async { "ok" })
                .route_layer(RequireLayer::claims(
                    |c: &tollgate::jwt::Claims<tollgate::jwt::StandardClaims>| {
                        c.roles
                            .as_ref()
                            .is_some_and(|r| r.iter().any(|r| r == "admin"))
                    },
                ))
                .route_layer(jwt.clone()),
        )
        .route(
            "/shop-only",
            get(|| async { "ok" })
                .route_layer(RequireLayer::principal(|p: &Principal| {
                    p.app().is_some_and(|a| a.app_id() == "app-1")
                }))
                .route_layer(api_key.clone()),
        );
    let client = HttpClient::new(serve_axum(router).await);
    let get = |path: &'static str, key: Option<&'static str>, token: String| {
        let client = client.clone();
        let key = key.map(|k| match k {
            "reader" => keys.reader.clone(),
            _ => keys.writer.clone(),
        });
        async move {
            let bearer = (!token.is_empty()).then_some(token);
            send(
                &client,
                http::Method::GET,
                path,
                key.as_deref(),
                bearer.as_deref(),
            )
            .await
        }
    };
    let user_without = token("alice", json!({"scope": "profile"}));
    let user_with = token("alice", json!({"scope": "orders:read"}));

    // The key grants orders:read; the user does not: the intersection refuses.
    assert_eq!(
        get("/intersection", Some("reader"), user_without.clone())
            .await
            .status,
        403
    );
    assert_eq!(
        get("/intersection", Some("reader"), user_with.clone())
            .await
            .status,
        200
    );
    assert_eq!(
        get("/intersection", Some("writer"), user_with.clone())
            .await
            .status,
        403
    );
    // Configured to count the app's scopes only.
    assert_eq!(
        get("/app-scopes", Some("reader"), user_without.clone())
            .await
            .status,
        200
    );
    assert_eq!(
        get("/app-scopes", Some("writer"), user_with).await.status,
        403
    );

    for (scope, want) in [
        ("orders:read orders:list", 200),
        ("admin", 200),
        ("orders:read", 403),
        ("orders:list admin:x", 403),
    ] {
        let answer = get("/alternatives", None, token("bob", json!({"scope": scope}))).await;
        assert_eq!(answer.status, want, "{scope}");
    }

    let admin = token("carol", json!({"roles": ["admin"]}));
    assert_eq!(get("/admins", None, admin).await.status, 200);
    let forbidden = get("/admins", None, token("dave", json!({"roles": ["user"]}))).await;
    assert_eq!(forbidden.status, 403);
    assert_eq!(forbidden.json()["code"], "forbidden");
    assert_eq!(forbidden.header("www-authenticate"), None);

    assert_eq!(
        get("/shop-only", Some("reader"), String::new())
            .await
            .status,
        200
    );
    assert_eq!(
        get("/shop-only", Some("writer"), String::new())
            .await
            .status,
        403
    );
}

#[cfg(feature = "axum")]
#[tokio::test]
async fn axum_extractors_required_and_optional() {
    let keys = keys().await;
    let api_key = ApiKeyLayer::new(keys.keys.clone());
    let jwt = jwt_builder().build().unwrap();
    async fn both(
        app: AppIdentity,
        claims: tollgate::jwt::Claims<tollgate::jwt::StandardClaims>,
        principal: Principal,
    ) -> String {
        format!(
            "{} {} {}",
            app.app_id(),
            claims.sub.as_deref().unwrap_or("-"),
            principal.scopes().join(",")
        )
    }
    async fn maybe(app: Option<AppIdentity>, user: Option<UserIdentity>) -> String {
        format!(
            "{}|{}",
            app.map_or("-".into(), |a| a.app_id().to_owned()),
            user.and_then(|u| u.subject().map(str::to_owned))
                .unwrap_or("-".into())
        )
    }
    async fn needs_user(user: UserIdentity) -> String {
        user.subject().unwrap_or("-").to_owned()
    }
    let router = Router::new()
        .route(
            "/both",
            get(both).route_layer(AppUserLayer::from_layers(
                &api_key,
                &jwt,
                Policy::AppAndUser,
            )),
        )
        .route(
            "/maybe",
            get(maybe).route_layer(
                AppUserLayer::from_layers(&api_key, &jwt, Policy::AppOrUser).optional(),
            ),
        )
        .route("/needs-user", get(needs_user).route_layer(api_key.clone()));
    let client = HttpClient::new(serve_axum(router).await);
    let user = token("alice", json!({"scope": "orders:read orders:write"}));

    let answer = send(
        &client,
        http::Method::GET,
        "/both",
        Some(&keys.reader),
        Some(&user),
    )
    .await;
    assert_eq!(answer.text(), "app-1 alice orders:read");
    let answer = send(&client, http::Method::GET, "/maybe", None, None).await;
    assert_eq!(answer.text(), "-|-");
    let answer = send(&client, http::Method::GET, "/maybe", None, Some(&user)).await;
    assert_eq!(answer.text(), "-|alice");
    // Behind the API-key layer only: no user, so the required extractor answers 401.
    let answer = send(
        &client,
        http::Method::GET,
        "/needs-user",
        Some(&keys.reader),
        None,
    )
    .await;
    assert_eq!(answer.status, 401);
    assert_eq!(answer.json()["code"], "missing_credential");
    assert_eq!(answer.header("www-authenticate"), Some("Bearer"));
}

#[tokio::test]
async fn tonic_clients_see_permission_denied_and_handlers_see_both_ids() {
    let keys = keys().await;
    let probe = || {
        ProbeServer::new(|ext| {
            let principal = Principal::from_extensions(ext);
            format!(
                "{}|{}",
                principal
                    .as_ref()
                    .and_then(|p| p.app())
                    .map_or("-", |a| a.app_id()),
                principal
                    .as_ref()
                    .and_then(|p| p.user())
                    .and_then(|u| u.subject())
                    .unwrap_or("-")
            )
        })
    };
    let scoped = ServiceBuilder::new()
        .layer(ApiKeyLayer::new(keys.keys.clone()))
        .layer(RequireScopesLayer::all(["orders:read"]).unwrap());
    let addr = serve_tonic(scoped, probe()).await;
    let caller = call_whoami(addr, &[("x-api-key", &keys.reader)]).await;
    assert_eq!(caller.unwrap(), "app-1|-");
    let status = call_whoami(addr, &[("x-api-key", &keys.writer)])
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::PermissionDenied);
    assert_eq!(status.message(), "The credential lacks a required scope.");

    let api_key = ApiKeyLayer::new(keys.keys.clone());
    let jwt = jwt_builder().build().unwrap();
    let combined = AppUserLayer::from_layers(&api_key, &jwt, Policy::AppAndUser);
    let addr = serve_tonic(combined, probe()).await;
    let user = format!("Bearer {}", token("user-7", json!({})));
    let caller = call_whoami(
        addr,
        &[("x-api-key", &keys.writer), ("authorization", &user)],
    )
    .await;
    assert_eq!(caller.unwrap(), "app-2|user-7");
    let status = call_whoami(addr, &[("x-api-key", &keys.writer)])
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unauthenticated);
}
