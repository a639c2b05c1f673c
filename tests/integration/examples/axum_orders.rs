//! `examples/axum_orders`: the README's curl walk-through, with a real HTTP client.

use std::time::Duration;

use bytes::Bytes;
use http::Method;
use http_body_util::Full;
use serde_json::json;
use tollgate::api_key::KeyFormat;

use super::{Example, hs256_token, now, run_to_end};
use crate::support::{Answer, HttpClient};

const SECRET: &str = "an example secret of at least 32 bytes!";
const ISSUER: &str = "https://auth.test";

fn start(extra: &[(&str, &str)], demo_key: &str) -> Example {
    let mut env = vec![
        ("TOLLGATE_DEMO_KEY", demo_key),
        ("TOLLGATE_JWT_HMAC_SECRET", SECRET),
        ("TOLLGATE_ISSUER", ISSUER),
    ];
    env.extend_from_slice(extra);
    Example::start("axum_orders", &env)
}

fn token(sub: &str, scope: &str, audience: &str) -> String {
    hs256_token(
        SECRET,
        &json!({ "sub": sub, "scope": scope, "iss": ISSUER, "aud": audience, "exp": now() + 900 }),
    )
}

async fn post_order(client: &HttpClient, headers: &[(&str, &str)]) -> Answer {
    let mut request = client
        .request(Method::POST, "/orders")
        .header("content-type", "application/json");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    client
        .send(
            request
                .body(Full::new(Bytes::from(r#"{"item":"tea","quantity":2}"#)))
                .unwrap(),
        )
        .await
}

fn assert_problem(answer: &Answer, status: u16, code: &str) {
    assert_eq!(answer.status, status, "{}", answer.text());
    assert_eq!(
        answer.header("content-type"),
        Some("application/problem+json")
    );
    assert_eq!(answer.json()["code"], code);
}

#[tokio::test]
async fn axum_orders_walkthrough() {
    let key = KeyFormat::default().generate();
    let billing = KeyFormat::default().generate();
    let retired = KeyFormat::default().generate();
    let expired = KeyFormat::default().generate();
    let partner = KeyFormat::default().generate();
    let preload = format!(
        "app=billing,name=Billing,digest={},scopes=orders:read;\
         app=old,key={},active=false;app=gone,key={},expires=2020-01-01T00:00:00Z;\
         app=partner,key={},scopes=notifications:read",
        billing.digest().to_hex(),
        retired.expose(),
        expired.expose(),
        partner.expose(),
    );
    let mut example = start(&[("TOLLGATE_API_KEYS", &preload)], key.expose());
    let client = HttpClient::new(example.addr());
    let with_key = [("x-api-key", key.expose().as_bytes())];

    // The banner: the key once, in a line to paste, then curl lines that use it.
    example.wait_for("/.well-known/jwks.json", Duration::from_secs(5)); // its last line
    let banner = example.output();
    assert!(
        banner.contains(&format!("export KEY={}", key.expose())),
        "{banner}"
    );
    assert!(banner.contains("-H \"X-API-Key: $KEY\""), "{banner}");

    // API key: 200 and the per-key limit's headers.
    let answer = client.get("/orders", &with_key).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(answer.header("content-type"), Some("application/json"));
    assert_eq!(
        answer.text(),
        r#"{"app":{"id":"demo-app","name":"Demo app","scopes":["notifications:read","orders:read","orders:write","token:exchange"]},"orders":[]}"#
    );
    assert_eq!(
        answer.header("ratelimit-policy"),
        Some("\"default\";q=1000;w=3600")
    );
    assert!(
        answer
            .header("ratelimit")
            .unwrap()
            .starts_with("\"default\";r=999;t="),
        "{:?}",
        answer.headers
    );
    assert_eq!(client.get("/notifications", &with_key).await.status, 200);

    // No key, a mistyped key: 401 with the challenge the README shows.
    let answer = client.get("/orders", &[]).await;
    assert_problem(&answer, 401, "missing_credential");
    assert_eq!(
        answer.header("www-authenticate"),
        Some("ApiKey header=\"x-api-key\"")
    );
    assert_eq!(answer.header("cache-control"), Some("no-store"));
    let answer = client.get("/orders", &[("x-api-key", b"tg_typo")]).await;
    assert_problem(&answer, 401, "malformed_credential");
    assert_eq!(
        answer.header("www-authenticate"),
        Some("ApiKey header=\"x-api-key\", error=\"malformed_credential\"")
    );
    assert_eq!(answer.header("cache-control"), Some("no-store"));
    assert_eq!(
        answer.text(),
        r#"{"type":"about:blank","title":"Unauthorized","status":401,"code":"malformed_credential","detail":"The credential is not well-formed."}"#
    );

    // Preloaded keys: by digest (works), inactive and expired (refused).
    let answer = client
        .get("/orders", &[("x-api-key", billing.expose().as_bytes())])
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(answer.json()["app"]["id"], "billing");
    let answer = client
        .get("/orders", &[("x-api-key", retired.expose().as_bytes())])
        .await;
    assert_problem(&answer, 401, "inactive_credential");
    let answer = client
        .get("/orders", &[("x-api-key", expired.expose().as_bytes())])
        .await;
    assert_problem(&answer, 401, "expired_credential");

    // A key without `orders:read`: 403 naming the scope, for the key.
    let with_partner = [("x-api-key", partner.expose().as_bytes())];
    let answer = client.get("/orders", &with_partner).await;
    assert_problem(&answer, 403, "insufficient_scope");
    assert_eq!(
        answer.header("www-authenticate"),
        Some("ApiKey header=\"x-api-key\", error=\"insufficient_scope\", scope=\"orders:read\"")
    );
    assert_eq!(
        answer.text(),
        r#"{"type":"about:blank","title":"Forbidden","status":403,"code":"insufficient_scope","detail":"The credential lacks a required scope.","scope":"orders:read"}"#
    );
    assert_eq!(
        client.get("/notifications", &with_partner).await.status,
        200
    );

    // Unknown paths stay 404 (route_layer), and a browser's preflight passes (CORS before auth).
    assert_eq!(client.get("/nope", &[]).await.status, 404);
    let preflight = client
        .request(Method::OPTIONS, "/orders")
        .header("origin", "https://shop.example")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "x-api-key,authorization")
        .body(Full::default())
        .unwrap();
    let answer = client.send(preflight).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.header("access-control-allow-origin"), Some("*"));

    // Bearer token: /users/me answers the caller's sub and scopes.
    let alice = token("alice", "orders:write profile", "orders-api");
    let bearer = format!("Bearer {alice}");
    let answer = client
        .get("/users/me", &[("authorization", bearer.as_bytes())])
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(
        answer.text(),
        format!(r#"{{"issuer":"{ISSUER}","scopes":["orders:write","profile"],"sub":"alice"}}"#)
    );
    let answer = client.get("/users/me", &[]).await;
    assert_problem(&answer, 401, "missing_credential");
    assert_eq!(answer.header("www-authenticate"), Some("Bearer"));
    let other_api = format!("Bearer {}", token("alice", "profile", "billing-api"));
    let answer = client
        .get("/users/me", &[("authorization", other_api.as_bytes())])
        .await;
    assert_eq!(answer.status, 401, "{}", answer.text());
    assert!(
        answer
            .header("www-authenticate")
            .unwrap()
            .starts_with("Bearer error=\"invalid_token\""),
        "{:?}",
        answer.headers
    );

    // POST /orders needs both: key only, token only, then both.
    let answer = post_order(&client, &[("x-api-key", key.expose())]).await;
    assert_problem(&answer, 401, "missing_credential");
    assert_eq!(answer.header("www-authenticate"), Some("Bearer"));
    let answer = post_order(&client, &[("authorization", &bearer)]).await;
    assert_problem(&answer, 401, "missing_credential");
    assert_eq!(
        answer.header("www-authenticate"),
        Some("ApiKey header=\"x-api-key\"")
    );
    let answer = post_order(
        &client,
        &[("x-api-key", key.expose()), ("authorization", &bearer)],
    )
    .await;
    assert_eq!(answer.status, 201, "{}", answer.text());
    assert_eq!(
        answer.text(),
        r#"{"app":"demo-app","id":1,"item":"tea","quantity":2,"user":"alice"}"#
    );
    let answer = client.get("/orders", &with_key).await;
    assert_eq!(answer.json()["orders"][0]["item"], "tea");

    // The handler logged both ids; no log line holds a key, a token or the secret.
    example.wait_for("order created", Duration::from_secs(5));
    let output = example.output();
    let created = output
        .lines()
        .find(|l| l.contains("order created"))
        .unwrap();
    assert!(
        created.contains("alice") && created.contains("demo-app"),
        "{created}"
    );
    assert_eq!(
        output.matches(key.expose()).count(),
        1,
        "the key beyond the banner:\n{output}"
    );
    for secret in [
        billing.expose(),
        retired.expose(),
        expired.expose(),
        &alice,
        SECRET,
    ] {
        assert!(
            !output.contains(secret),
            "a secret in the output:\n{output}"
        );
    }
    assert!(output.contains("\"x-api-key\": Sensitive"), "{output}");
}

#[tokio::test]
async fn axum_orders_rate_limit_from_env() {
    let key = KeyFormat::default().generate();
    let tier = KeyFormat::default().generate();
    let preload = format!(
        "app=tiny,key={},scopes=orders:read,quota=1/hour",
        tier.expose()
    );
    let example = start(
        &[
            ("TOLLGATE_RATE_LIMIT", "3/hour"),
            ("TOLLGATE_API_KEYS", &preload),
        ],
        key.expose(),
    );
    let client = HttpClient::new(example.addr());
    let with_key = [("x-api-key", key.expose().as_bytes())];
    for remaining in [2, 1, 0] {
        let answer = client.get("/orders", &with_key).await;
        assert_eq!(answer.status, 200);
        let expected = format!("\"default\";r={remaining};t=");
        assert!(answer.header("ratelimit").unwrap().starts_with(&expected));
    }
    let answer = client.get("/orders", &with_key).await;
    assert_problem(&answer, 429, "rate_limited");
    assert_eq!(answer.header("cache-control"), Some("no-store"));
    assert_eq!(
        answer.text(),
        r#"{"type":"about:blank","title":"Too Many Requests","status":429,"code":"rate_limited","detail":"Too many requests."}"#
    );
    // The limit is per key across routes: /notifications is refused too.
    let answer = client.get("/notifications", &with_key).await;
    assert_problem(&answer, 429, "rate_limited");
    let retry: u64 = answer.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=3600).contains(&retry), "Retry-After {retry}");
    assert_eq!(
        answer.header("ratelimit-policy"),
        Some("\"default\";q=3;w=3600")
    );
    assert!(
        answer
            .header("ratelimit")
            .unwrap()
            .starts_with("\"default\";r=0;t=")
    );

    // A key's own quota (plan tier) overrides the default.
    let with_tier = [("x-api-key", tier.expose().as_bytes())];
    assert_eq!(client.get("/orders", &with_tier).await.status, 200);
    assert_eq!(client.get("/orders", &with_tier).await.status, 429);
}

#[test]
fn axum_orders_refuses_bad_settings() {
    for (var, value) in [
        ("TOLLGATE_RATE_LIMIT", "0/hour"),
        ("TOLLGATE_API_KEYS", "app=x,key=tg_not_a_key"),
        ("TOLLGATE_DEMO_KEY", "hunter2"),
        ("TOLLGATE_API_KEYS", "app=x,hunter2"),
    ] {
        let (ok, output) = run_to_end("axum_orders", &[(var, value)]);
        assert!(!ok, "{var}={value} was accepted:\n{output}");
        assert!(output.contains(var), "{var}={value}:\n{output}");
        assert!(!output.contains("hunter2"), "{output}");
    }
}

/// Two instances on one PostgreSQL database and one Redis: a key stored through one works on
/// the other, and both count against the same per-key limit. Then the same on the Redis
/// Cluster, with the limit leased.
#[cfg(all(feature = "postgres", feature = "redis"))]
#[tokio::test]
async fn axum_orders_instances_share_postgres_and_redis() {
    let redis = crate::servers::redis_url();
    let cluster = crate::servers::redis_cluster_urls().join(",");
    instances_share(&[("TOLLGATE_REDIS_URL", redis.as_str())]).await;
    let _shared = crate::cluster_admin::shared().await;
    instances_share(&[
        ("TOLLGATE_REDIS_CLUSTER", cluster.as_str()),
        ("TOLLGATE_RATE_LIMIT_LEASED", "1"),
    ])
    .await;
}

#[cfg(all(feature = "postgres", feature = "redis"))]
async fn instances_share(redis: &[(&str, &str)]) {
    let url = crate::servers::postgres_url();
    let shared = KeyFormat::default().generate();
    let preload = format!(
        "app={},key={},scopes=orders:read",
        crate::servers::unique("app"),
        shared.expose()
    );
    let mut common = vec![
        ("TOLLGATE_POSTGRES_URL", url.as_str()),
        ("TOLLGATE_RATE_LIMIT", "3/hour"),
    ];
    common.extend_from_slice(redis);
    let mut first_env = common.clone();
    first_env.push(("TOLLGATE_API_KEYS", &preload));
    let first = Example::start("axum_orders", &first_env);
    let second = Example::start("axum_orders", &common);
    let (first, second) = (
        HttpClient::new(first.addr()),
        HttpClient::new(second.addr()),
    );
    let with_key = [("x-api-key", shared.expose().as_bytes())];
    for (client, remaining) in [(&first, 2), (&second, 1), (&first, 0)] {
        let answer = client.get("/orders", &with_key).await;
        assert_eq!(answer.status, 200, "{redis:?}: {}", answer.text());
        let expected = format!("\"default\";r={remaining};t=");
        let ratelimit = answer.header("ratelimit").unwrap();
        assert!(ratelimit.starts_with(&expected), "{redis:?}: {ratelimit}");
    }
    let answer = second.get("/orders", &with_key).await;
    assert_problem(&answer, 429, "rate_limited");
    assert!(answer.header("retry-after").is_some());
}

/// Two instances sharing a signing key, PostgreSQL and Redis: a refresh token reused on one
/// revokes its session, and the session's access token is refused on the other too (the
/// denylist is `RedisRevocation`, not each process's own).
#[tokio::test]
async fn axum_orders_a_session_revoked_on_one_instance_is_refused_on_the_other() {
    let postgres = crate::servers::postgres_url();
    let redis = crate::servers::redis_url();
    let pem = format!(
        "{}/tests/fixtures/jwt/ed25519.key",
        env!("CARGO_MANIFEST_DIR")
    );
    let common = [
        ("TOLLGATE_POSTGRES_URL", postgres.as_str()),
        ("TOLLGATE_REDIS_URL", redis.as_str()),
        ("TOLLGATE_SIGNING_KEY_PEM", pem.as_str()),
        ("TOLLGATE_SIGNING_ALG", "EdDSA"),
        ("TOLLGATE_ISSUER", "https://orders.example"),
    ];
    let first = Example::start("axum_orders", &common);
    let second = Example::start("axum_orders", &common);
    let (first, second) = (
        HttpClient::new(first.addr()),
        HttpClient::new(second.addr()),
    );
    let answer = post_json(
        &first,
        "/auth/login",
        &[],
        r#"{"username":"alice","password":"alice-demo-password"}"#,
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    let login = answer.json();
    let bearer = format!("Bearer {}", login["access_token"].as_str().unwrap());
    let spent = login["refresh_token"].as_str().unwrap().to_owned();
    let me = |client: HttpClient| {
        let bearer = bearer.clone();
        async move {
            client
                .get("/users/me", &[("authorization", bearer.as_bytes())])
                .await
        }
    };
    assert_eq!(me(second.clone()).await.status, 200);
    // Rotate once, then present the spent token again: reuse, the session is revoked.
    assert_eq!(refresh(&first, &spent, None).await.status, 200);
    assert_oauth_error(&refresh(&first, &spent, None).await, 400, "invalid_grant");
    assert_problem(&me(first.clone()).await, 401, "revoked_credential");
    // The other instance hears it over Redis.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
    loop {
        let answer = me(second.clone()).await;
        if answer.status == 401 {
            assert_problem(&answer, 401, "revoked_credential");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the revoked session's access token is still accepted on the other instance"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// `TOLLGATE_IP_RATE_LIMIT`: counted per client before auth, so requests without a key count
/// too, and unknown paths stay 404.
#[tokio::test]
async fn axum_orders_ip_limit_before_auth() {
    let key = KeyFormat::default().generate();
    let example = start(&[("TOLLGATE_IP_RATE_LIMIT", "3/hour")], key.expose());
    let client = HttpClient::new(example.addr());
    let with_key = [("x-api-key", key.expose().as_bytes())];
    assert_eq!(client.get("/orders", &[]).await.status, 401);
    assert_eq!(client.get("/users/me", &[]).await.status, 401);
    assert_eq!(client.get("/orders", &with_key).await.status, 200);
    let answer = client.get("/orders", &with_key).await;
    assert_problem(&answer, 429, "rate_limited");
    let retry: u64 = answer.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=3600).contains(&retry), "Retry-After {retry}");
    assert_eq!(client.get("/nope", &[]).await.status, 404);
    assert_eq!(client.get("/health", &[]).await.status, 200);
}

async fn post_json(
    client: &HttpClient,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Answer {
    let mut request = client
        .request(Method::POST, path)
        .header("content-type", "application/json");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    client
        .send(
            request
                .body(Full::new(Bytes::from(body.to_owned())))
                .unwrap(),
        )
        .await
}

async fn post_form(client: &HttpClient, path: &str, body: &str) -> Answer {
    let request = client
        .request(Method::POST, path)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Full::new(Bytes::from(body.to_owned())))
        .unwrap();
    client.send(request).await
}

/// `POST /auth/token` with the refresh grant for `token`, and `&scope=…` when given.
async fn refresh(client: &HttpClient, token: &str, scope: Option<&str>) -> Answer {
    let mut form = format!("grant_type=refresh_token&refresh_token={token}");
    if let Some(scope) = scope {
        form = format!("{form}&scope={scope}");
    }
    post_form(client, "/auth/token", &form).await
}

fn assert_oauth_error(answer: &Answer, status: u16, error: &str) {
    assert_eq!(answer.status, status, "{}", answer.text());
    assert_eq!(answer.header("content-type"), Some("application/json"));
    assert_eq!(answer.header("cache-control"), Some("no-store"));
    assert_eq!(answer.json()["error"], error, "{}", answer.text());
}

/// The token side: login, refresh with rotation and reuse detection, token exchange, and
/// the JWKS document another service verifies with.
#[tokio::test]
async fn axum_orders_token_flows() {
    let key = KeyFormat::default().generate();
    let reader = KeyFormat::default().generate();
    let preload = format!("app=reader,key={},scopes=orders:read", reader.expose());
    let mut example = Example::start(
        "axum_orders",
        &[
            ("TOLLGATE_DEMO_KEY", key.expose()),
            ("TOLLGATE_API_KEYS", &preload),
        ],
    );
    let issuer = format!("http://{}", example.addr());
    let client = HttpClient::new(example.addr());
    example.wait_for("/.well-known/jwks.json", Duration::from_secs(5)); // the banner's end
    let banner = example.output();
    assert!(
        banner.contains(r#"-d '{"username":"alice","password":"alice-demo-password"}'"#),
        "{banner}"
    );

    // Login: an access and a refresh token, never cached.
    let login = r#"{"username":"alice","password":"alice-demo-password"}"#;
    let answer = post_json(&client, "/auth/login", &[], login).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(answer.header("cache-control"), Some("no-store"));
    assert_eq!(answer.header("pragma"), Some("no-cache"));
    let tokens = answer.json();
    assert_eq!(tokens["token_type"], "Bearer");
    let expires_in = tokens["expires_in"].as_u64().unwrap();
    assert!((890..=900).contains(&expires_in), "{expires_in}");
    assert_eq!(tokens["scope"], "orders:read orders:write profile");
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    let first_refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
    assert!(first_refresh.starts_with("rt_"), "{first_refresh}");
    let bearer = format!("Bearer {access}");
    let answer = client
        .get("/users/me", &[("authorization", bearer.as_bytes())])
        .await;
    assert_eq!(
        answer.text(),
        format!(
            r#"{{"issuer":"{issuer}","scopes":["orders:read","orders:write","profile"],"sub":"alice"}}"#
        )
    );
    let answer = post_json(
        &client,
        "/auth/login",
        &[],
        r#"{"username":"alice","password":"guess"}"#,
    )
    .await;
    assert_oauth_error(&answer, 400, "invalid_grant");

    // Refresh (form data): a new pair; the used refresh token is spent.
    let answer = refresh(&client, &first_refresh, None).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(answer.header("cache-control"), Some("no-store"));
    let refreshed = answer.json();
    let second_refresh = refreshed["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(second_refresh, first_refresh);
    let second_bearer = format!("Bearer {}", refreshed["access_token"].as_str().unwrap());
    let answer = client
        .get("/users/me", &[("authorization", second_bearer.as_bytes())])
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    // A narrower scope on refresh (RFC 6749 §6); more than the session holds is refused and
    // spends nothing.
    let answer = refresh(&client, &second_refresh, Some("orders:read+admin")).await;
    assert_oauth_error(&answer, 400, "invalid_scope");
    let answer = refresh(&client, &second_refresh, Some("orders:read")).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(answer.json()["scope"], "orders:read");
    let answer = post_form(&client, "/auth/token", "grant_type=password&username=alice").await;
    assert_oauth_error(&answer, 400, "unsupported_grant_type");
    let answer = post_form(&client, "/auth/token", "grant_type=refresh_token").await;
    assert_oauth_error(&answer, 400, "invalid_request");

    // Reuse of the spent token: the whole session dies, its access tokens with it.
    let answer = refresh(&client, &first_refresh, None).await;
    assert_oauth_error(&answer, 400, "invalid_grant");
    assert_eq!(
        answer.text(),
        r#"{"error":"invalid_grant","error_description":"The refresh token was already used; its session is revoked."}"#
    );
    let answer = refresh(&client, &second_refresh, None).await;
    assert_oauth_error(&answer, 400, "invalid_grant");
    let answer = client
        .get("/users/me", &[("authorization", second_bearer.as_bytes())])
        .await;
    assert_problem(&answer, 401, "revoked_credential");

    // Token exchange: the app's key buys a 180 s token for one user, within what both the key
    // and the user hold (the example's user store is the directory).
    let exchange = r#"{"userId":"alice"}"#;
    let answer = post_json(
        &client,
        "/auth/token-exchange",
        &[("x-api-key", key.expose())],
        exchange,
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    let exchanged = answer.json();
    let expires_in = exchanged["expires_in"].as_u64().unwrap();
    assert!((170..=180).contains(&expires_in), "{expires_in}");
    assert_eq!(
        exchanged["issued_token_type"],
        "urn:ietf:params:oauth:token-type:access_token"
    );
    assert!(exchanged.get("refresh_token").is_none());
    assert_eq!(exchanged["token_type"], "Bearer");
    // alice holds orders:read orders:write profile, the key notifications:read orders:read
    // orders:write token:exchange: the token gets what both hold.
    assert_eq!(exchanged["scope"], "orders:read orders:write");
    let alice = format!("Bearer {}", exchanged["access_token"].as_str().unwrap());
    let answer = client
        .get("/users/me", &[("authorization", alice.as_bytes())])
        .await;
    assert_eq!(answer.json()["sub"], "alice");
    assert_eq!(
        answer.json()["scopes"],
        json!(["orders:read", "orders:write"])
    );
    let answer = post_order(
        &client,
        &[("x-api-key", key.expose()), ("authorization", &alice)],
    )
    .await;
    assert_eq!(answer.status, 201, "{}", answer.text());
    assert_eq!(answer.json()["user"], "alice");
    // bob's own login grants `profile` only: placing an order is a 403 for the user.
    let answer = post_json(
        &client,
        "/auth/login",
        &[],
        r#"{"username":"bob","password":"bob-demo-password"}"#,
    )
    .await;
    let bob_own = format!("Bearer {}", answer.json()["access_token"].as_str().unwrap());
    let answer = post_order(
        &client,
        &[("x-api-key", key.expose()), ("authorization", &bob_own)],
    )
    .await;
    assert_problem(&answer, 403, "insufficient_scope");
    assert_eq!(
        answer.header("www-authenticate"),
        Some(
            "Bearer error=\"insufficient_scope\", error_description=\"The credential lacks a required scope.\", scope=\"orders:write\""
        )
    );
    // And the app cannot lend bob its own scopes: nothing the key holds is bob's, so no token
    // (before, the exchanged token carried the app's scopes and placed the order as bob).
    let for_bob = r#"{"userId":"bob"}"#;
    let answer = post_json(
        &client,
        "/auth/token-exchange",
        &[("x-api-key", key.expose())],
        for_bob,
    )
    .await;
    assert_oauth_error(&answer, 400, "invalid_scope");
    // A subject the directory does not know gets no token at all.
    let answer = post_json(
        &client,
        "/auth/token-exchange",
        &[("x-api-key", key.expose())],
        r#"{"userId":"mallory"}"#,
    )
    .await;
    assert_oauth_error(&answer, 400, "invalid_request");
    let answer = post_json(&client, "/auth/token-exchange", &[], exchange).await;
    assert_problem(&answer, 401, "missing_credential");
    let answer = post_json(
        &client,
        "/auth/token-exchange",
        &[("x-api-key", reader.expose())],
        exchange,
    )
    .await;
    assert_oauth_error(&answer, 400, "unauthorized_client");

    // The JWKS document holds the public key; a second service verifies with it alone.
    let answer = client.get("/.well-known/jwks.json", &[]).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.header("content-type"), Some("application/json"));
    let jwks = answer.json();
    assert_eq!(jwks["keys"][0]["kid"], "demo-1");
    assert_eq!(jwks["keys"][0]["kty"], "OKP");
    assert_eq!(jwks["keys"][0]["crv"], "Ed25519");
    assert_eq!(jwks["keys"][0]["alg"], "EdDSA");
    assert_eq!(jwks["keys"][0]["use"], "sig");
    assert!(
        jwks["keys"][0].get("d").is_none(),
        "a private part in {jwks}"
    );
    // (TOLLGATE_JWKS_URL needs the `jwks-hyper` feature.)
    #[cfg(feature = "jwks-hyper")]
    {
        let jwks_url = format!("{issuer}/.well-known/jwks.json");
        let verifier = Example::start(
            "axum_orders",
            &[
                ("TOLLGATE_JWKS_URL", &jwks_url),
                ("TOLLGATE_ISSUER", &issuer),
            ],
        );
        let verifier = HttpClient::new(verifier.addr());
        let answer = post_json(
            &client,
            "/auth/login",
            &[],
            r#"{"username":"bob","password":"bob-demo-password"}"#,
        )
        .await;
        let bob_login = format!("Bearer {}", answer.json()["access_token"].as_str().unwrap());
        let answer = verifier
            .get("/users/me", &[("authorization", bob_login.as_bytes())])
            .await;
        assert_eq!(answer.status, 200, "{}", answer.text());
        assert_eq!(answer.json()["sub"], "bob");
    }

    // No token reached the log, nor a password beyond the banner's demo line.
    let output = example.output();
    for secret in [access.as_str(), &first_refresh, &second_refresh] {
        assert!(
            !output.contains(secret),
            "{secret} in the output:\n{output}"
        );
    }
    assert_eq!(output.matches("alice-demo-password").count(), 1, "{output}");
}

/// Seed 001's key management: a user with `keys:admin` generates and lists an app's keys.
#[tokio::test]
async fn axum_orders_admin_api_keys() {
    let key = KeyFormat::default().generate();
    let example = start(&[], key.expose());
    let client = HttpClient::new(example.addr());
    let login = async |user: &str| {
        let body = format!(r#"{{"username":"{user}","password":"{user}-demo-password"}}"#);
        let answer = post_json(&client, "/auth/login", &[], &body).await;
        format!("Bearer {}", answer.json()["access_token"].as_str().unwrap())
    };
    let carol = login("carol").await;
    // `POST /admin/api-keys` as carol (who holds keys:admin).
    let generate_key = async |body: &str| {
        post_json(
            &client,
            "/admin/api-keys",
            &[("authorization", &carol)],
            body,
        )
        .await
    };
    let alice = login("alice").await;

    // Not an admin: 403 naming the scope; no token: 401.
    let answer = client
        .get("/admin/api-keys", &[("authorization", alice.as_bytes())])
        .await;
    assert_problem(&answer, 403, "insufficient_scope");
    assert!(
        answer
            .header("www-authenticate")
            .unwrap()
            .ends_with("scope=\"keys:admin\"")
    );
    assert_problem(
        &client.get("/admin/api-keys", &[]).await,
        401,
        "missing_credential",
    );

    // A secondary key: shown once, works at once, beside the primary.
    let answer = generate_key(r#"{"type":"secondary"}"#).await;
    assert_eq!(answer.status, 201, "{}", answer.text());
    let secondary = answer.json()["apiKey"].as_str().unwrap().to_owned();
    assert_eq!(answer.json()["type"], "secondary");
    let with_secondary = [("x-api-key", secondary.as_bytes())];
    assert_eq!(client.get("/orders", &with_secondary).await.status, 200);

    // Listed masked: the hints, never a key.
    let answer = client
        .get(
            "/admin/api-keys?appId=demo-app",
            &[("authorization", carol.as_bytes())],
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    let listed = answer.json();
    assert!(
        listed["primaryApiKey"]
            .as_str()
            .unwrap()
            .starts_with("tg_…"),
        "{listed}"
    );
    assert!(
        listed["secondaryApiKey"]
            .as_str()
            .unwrap()
            .starts_with("tg_…"),
        "{listed}"
    );
    assert!(!answer.text().contains(key.expose()) && !answer.text().contains(&secondary));

    // A new primary retires the old one at once (seed 001); the secondary keeps working.
    let answer = generate_key(r#"{"type":"primary"}"#).await;
    assert_eq!(answer.status, 201, "{}", answer.text());
    let primary = answer.json()["apiKey"].as_str().unwrap().to_owned();
    assert_eq!(
        client
            .get("/orders", &[("x-api-key", key.expose().as_bytes())])
            .await
            .status,
        401
    );
    assert_eq!(
        client
            .get("/orders", &[("x-api-key", primary.as_bytes())])
            .await
            .status,
        200
    );
    assert_eq!(client.get("/orders", &with_secondary).await.status, 200);
    let answer = generate_key(r#"{"type":"tertiary"}"#).await;
    assert_eq!(answer.status, 400);
    // An absurd grace is a 400, not a panic of the connection's task (before: no answer).
    let answer = generate_key(r#"{"type":"secondary","graceSeconds":18446744073709551615}"#).await;
    assert_eq!(answer.status, 400, "{}", answer.text());
    assert_eq!(client.get("/orders", &with_secondary).await.status, 200);
    let answer = generate_key(r#"{"type":"primary","appId":"nobody"}"#).await;
    assert_eq!(answer.status, 404);

    // The log names keys by hint only.
    let output = example.output();
    assert!(
        !output.contains(&primary) && !output.contains(&secondary),
        "{output}"
    );
    assert!(output.contains("API key generated"), "{output}");
}

/// `TOLLGATE_OIDC_ISSUER` with the real OpenID provider, over plain loopback HTTP and over TLS
/// with the test CA: `/users/me` answers for its tokens and for the example's own, on the
/// same route. A provider that cannot be discovered stops the start with the reason.
#[cfg(feature = "oidc")]
#[tokio::test]
async fn axum_orders_accepts_tokens_of_an_external_provider() {
    use crate::servers::{oidc_client, oidc_issuer, oidc_tls_issuer};

    let (plain, tls) = (oidc_issuer(), oidc_tls_issuer());
    let issuers = format!("{plain},{tls}");
    let ca = std::env::var("TOLLGATE_OIDC_CA").unwrap();
    let audience = oidc_client().2;
    let example = start(
        &[
            ("TOLLGATE_OIDC_ISSUER", &issuers),
            ("TOLLGATE_OIDC_CA", &ca),
            ("TOLLGATE_OIDC_AUDIENCE", &audience),
        ],
        KeyFormat::default().generate().expose(),
    );
    let client = HttpClient::new(example.addr());
    for issuer in [&plain, &tls] {
        let token = crate::oidc::provider_token(issuer, "orders:read").await;
        let bearer = format!("Bearer {token}");
        let answer = client
            .get("/users/me", &[("authorization", bearer.as_bytes())])
            .await;
        assert_eq!(answer.status, 200, "{issuer}: {}", answer.text());
        let body = answer.json();
        assert_eq!(body["provider"], issuer.as_str());
        assert_eq!(body["issuer"], issuer.as_str());
        assert_eq!(body["scopes"], json!(["orders:read"]));
    }
    // The example's own tokens, on the same route.
    let own = format!("Bearer {}", token("alice", "profile", "orders-api"));
    let answer = client
        .get("/users/me", &[("authorization", own.as_bytes())])
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert!(answer.json().get("provider").is_none());
    // Each provider's keys were fetched once at start-up, and counted.
    let metrics = parse_exposition(client.get("/metrics", &[]).await.text());
    assert_eq!(
        series(
            &metrics,
            "tollgate_jwks_fetches_total",
            &[("outcome", "ok")]
        ),
        2.0
    );
    drop(example);

    let (ok, output) = run_to_end(
        "axum_orders",
        &[("TOLLGATE_OIDC_ISSUER", "http://127.0.0.1:9/nowhere")],
    );
    assert!(!ok, "an undiscoverable provider was accepted:\n{output}");
    assert!(output.contains("TOLLGATE_OIDC_ISSUER"), "{output}");
}

/// The Prometheus exposition text as (metric name, sorted labels) → value.
fn parse_exposition(text: &str) -> std::collections::HashMap<(String, Vec<(String, String)>), f64> {
    let mut out = std::collections::HashMap::new();
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').expect("`series value`");
        let (name, labels) = match series.split_once('{') {
            Some((name, rest)) => (name, rest.trim_end_matches('}')),
            None => (series, ""),
        };
        let mut labels: Vec<(String, String)> = labels
            .split(',')
            .filter(|l| !l.is_empty())
            .map(|l| {
                let (k, v) = l.split_once('=').expect("label=value");
                (k.to_owned(), v.trim_matches('"').to_owned())
            })
            .collect();
        labels.sort();
        out.insert((name.to_owned(), labels), value.parse().expect("a number"));
    }
    out
}

fn series(
    metrics: &std::collections::HashMap<(String, Vec<(String, String)>), f64>,
    name: &str,
    labels: &[(&str, &str)],
) -> f64 {
    let mut labels: Vec<(String, String)> = labels
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    labels.sort();
    metrics
        .get(&(name.to_owned(), labels.clone()))
        .copied()
        .unwrap_or_else(|| panic!("no {name} {labels:?} in {metrics:?}"))
}

/// `GET /metrics` after real traffic, parsed; one structured audit line per refusal; usage in
/// the admin listing once flushed; an application disabled and re-enabled by the admin API;
/// and the last usage flush written to PostgreSQL at a graceful shutdown.
#[cfg(feature = "postgres")]
#[tokio::test]
async fn axum_orders_metrics_usage_audit_and_apps() {
    let url = crate::servers::postgres_url();
    // An application of this test's own: the database is shared with other tests.
    let app = crate::servers::unique("metrics-app");
    let key = KeyFormat::default().generate();
    // A second key of the app, for after the first has spent its hour's quota.
    let other = KeyFormat::default().generate();
    let preload = format!(
        "app={app},key={},scopes=orders:read notifications:read;\
         app={app},key={},scopes=notifications:read,slot=secondary",
        key.expose(),
        other.expose()
    );
    let mut example = start(
        &[
            ("TOLLGATE_USAGE_FLUSH_SECS", "1"),
            ("TOLLGATE_POSTGRES_URL", url.as_str()),
            ("TOLLGATE_RATE_LIMIT", "4/hour"),
            ("TOLLGATE_API_KEYS", preload.as_str()),
        ],
        KeyFormat::default().generate().expose(),
    );
    let client = HttpClient::new(example.addr());
    let with_key = [("x-api-key", key.expose().as_bytes())];
    for _ in 0..3 {
        assert_eq!(client.get("/orders", &with_key).await.status, 200);
    }
    for _ in 0..2 {
        assert_eq!(client.get("/orders", &[]).await.status, 401);
    }
    assert_eq!(
        client
            .get("/orders", &[("x-api-key", b"tg_typo")])
            .await
            .status,
        401
    );
    // The fourth request of the hour is the last; the fifth is limited.
    assert_eq!(client.get("/orders", &with_key).await.status, 200);
    assert_eq!(client.get("/orders", &with_key).await.status, 429);

    let answer = client.get("/metrics", &[]).await;
    assert_eq!(answer.status, 200);
    let metrics = parse_exposition(answer.text());
    let decisions = "tollgate_auth_decisions_total";
    let api_key = |outcome: &str, code: &str| {
        series(
            &metrics,
            decisions,
            &[("layer", "api_key"), ("outcome", outcome), ("code", code)],
        )
    };
    assert_eq!(api_key("allowed", ""), 5.0);
    assert_eq!(api_key("refused", "missing_credential"), 2.0);
    assert_eq!(api_key("refused", "malformed_credential"), 1.0);
    let limit = |outcome: &str| {
        series(
            &metrics,
            "tollgate_rate_limit_decisions_total",
            &[("limit", "default"), ("outcome", outcome)],
        )
    };
    assert_eq!(limit("allowed"), 4.0);
    assert_eq!(limit("limited"), 1.0);
    let cache = |result: &str| {
        series(
            &metrics,
            "tollgate_api_key_cache_total",
            &[("result", result)],
        )
    };
    // The five admitted requests, and the start-up check of the demo key (a miss).
    assert_eq!(cache("hit") + cache("miss"), 6.0);
    assert_eq!(
        cache("miss"),
        2.0,
        "the demo key at start-up, this key's first request"
    );
    assert!(!answer.text().contains(key.expose()), "no key in a label");

    // One audit line per refusal, with the key's app and id where known, never the key.
    let output = example.output();
    let audit: Vec<&str> = output.lines().filter(|l| l.contains(" audit:")).collect();
    assert!(
        audit
            .iter()
            .filter(|l| l.contains("code=\"missing_credential\"")
                || l.contains("code=missing_credential"))
            .count()
            >= 2,
        "{output}"
    );
    let limited = audit
        .iter()
        .find(|l| l.contains("rate_limited"))
        .unwrap_or_else(|| panic!("no rate_limited audit line:\n{output}"));
    assert!(limited.contains(&app), "{limited}");
    assert!(limited.contains("/orders"), "{limited}");
    assert!(!output.contains(key.expose()), "the key is never logged");

    // Usage in the admin listing, once flushed (every second here).
    let login = post_json(
        &client,
        "/auth/login",
        &[],
        r#"{"username":"carol","password":"carol-demo-password"}"#,
    )
    .await;
    let carol = format!("Bearer {}", login.json()["access_token"].as_str().unwrap());
    let started = std::time::Instant::now();
    let listed = loop {
        let answer = client
            .get(
                &format!("/admin/api-keys?appId={app}"),
                &[("authorization", carol.as_bytes())],
            )
            .await;
        let listed = answer.json();
        let demo = listed["keys"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["usage"]["authenticated"].as_u64() == Some(5))
            .cloned();
        if let Some(demo) = demo {
            break demo;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "{listed}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(listed["usage"]["rateLimited"], 1);
    assert!(listed["lastUsedAt"].as_u64().is_some());

    // The admin disables the demo app: its key is refused with its own code, then back.
    let put_app = async |body: &str| {
        let request = client
            .request(Method::PUT, &format!("/admin/apps/{app}"))
            .header("authorization", &carol)
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body.to_owned())))
            .unwrap();
        client.send(request).await
    };
    let with_other = [("x-api-key", other.expose().as_bytes())];
    let answer = put_app(r#"{"enabled":false}"#).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_problem(
        &client.get("/notifications", &with_key).await,
        403,
        "app_disabled",
    );
    assert_problem(
        &client.get("/notifications", &with_other).await,
        403,
        "app_disabled",
    );
    assert_eq!(put_app(r#"{"enabled":true}"#).await.status, 200);
    assert_eq!(client.get("/notifications", &with_other).await.status, 200);

    // Refresh rotations and a detected reuse, counted.
    let login = post_json(
        &client,
        "/auth/login",
        &[],
        r#"{"username":"alice","password":"alice-demo-password"}"#,
    )
    .await;
    let first = login.json()["refresh_token"].as_str().unwrap().to_owned();
    assert_eq!(refresh(&client, &first, None).await.status, 200);
    assert_eq!(refresh(&client, &first, None).await.status, 400, "a reuse");
    let metrics = parse_exposition(client.get("/metrics", &[]).await.text());
    let rotations = |outcome: &str| {
        series(
            &metrics,
            "tollgate_refresh_rotations_total",
            &[("outcome", outcome)],
        )
    };
    assert_eq!(rotations("rotated"), 1.0);
    assert_eq!(rotations("reuse_detected"), 1.0);

    // A graceful shutdown writes what was counted since the last flush.
    for _ in 0..3 {
        assert_eq!(client.get("/notifications", &with_other).await.status, 200);
    }
    assert!(example.terminate(), "{}", example.output());
    assert!(
        example.output().contains("usage flushed at shutdown"),
        "{}",
        example.output()
    );
    let store = tollgate::api_key::postgres::PostgresKeyStore::connect(&url).unwrap();
    let keys = tollgate::api_key::ApiKeys::builder(store).build();
    let record = keys
        .all_keys()
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.digest() == &other.digest())
        .expect("the second key's record");
    // 1 after re-enabling, 3 before the shutdown.
    assert_eq!(record.usage().counts.authenticated, 4);
    assert_eq!(record.usage().counts.app_disabled, 1);
}
