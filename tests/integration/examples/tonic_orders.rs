//! `examples/tonic_orders` and `examples/tonic_client`: the same guards over gRPC, the
//! rejections seen by a real tonic client as statuses.

use serde_json::json;
use tollgate::api_key::KeyFormat;
use tonic::Code;

use super::{Example, hs256_token, now, run_to_end};

#[path = "../../../examples/common/orders_grpc.rs"]
mod orders_grpc;

use orders_grpc::{CreateOrderRequest, OrdersClient};

const SECRET: &str = "an example secret of at least 32 bytes!";
const ISSUER: &str = "https://auth.test";

fn tea() -> CreateOrderRequest {
    CreateOrderRequest {
        item: "tea".to_owned(),
        quantity: 2,
    }
}

#[tokio::test]
async fn tonic_orders_statuses() {
    let key = KeyFormat::default().generate();
    let partner = KeyFormat::default().generate();
    let preload = format!(
        "app=partner,key={},scopes=notifications:read",
        partner.expose()
    );
    let example = Example::start(
        "tonic_orders",
        &[
            ("TOLLGATE_DEMO_KEY", key.expose()),
            ("TOLLGATE_API_KEYS", &preload),
            ("TOLLGATE_JWT_HMAC_SECRET", SECRET),
            ("TOLLGATE_ISSUER", ISSUER),
            ("TOLLGATE_RATE_LIMIT", "3/hour"),
        ],
    );
    let url = format!("http://{}", example.addr());
    let mut client = OrdersClient::connect(url.clone()).await.unwrap();
    let token = hs256_token(
        SECRET,
        &json!({ "sub": "alice", "scope": "orders:write", "iss": ISSUER, "aud": "orders-api", "exp": now() + 900 }),
    );
    let bearer = format!("Bearer {token}");
    let app = [("x-api-key", key.expose())];
    let app_and_user = [
        ("x-api-key", key.expose()),
        ("authorization", bearer.as_str()),
    ];

    // Refused before any count: no key, a malformed key.
    let status = client.list_orders(&[]).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    let status = client
        .list_orders(&[("x-api-key", "tg_typo")])
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");

    // A key without `orders:read`, a token without `orders:write`: PERMISSION_DENIED.
    let status = client
        .list_orders(&[("x-api-key", partner.expose())])
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    let reader = hs256_token(
        SECRET,
        &json!({ "sub": "carl", "scope": "profile", "iss": ISSUER, "aud": "orders-api", "exp": now() + 900 }),
    );
    let reader = format!("Bearer {reader}");
    let status = client
        .create_order(
            tea(),
            &[("x-api-key", key.expose()), ("authorization", &reader)],
        )
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");

    // The client example with the key alone, as in the README. Its ListOrders is the first
    // call counted; its refused CreateOrder is not (the token guard runs before the limit).
    let (ok, printed) = run_to_end(
        "tonic_client",
        &[("TOLLGATE_GRPC_URL", &url), ("KEY", key.expose())],
    );
    assert!(ok, "{printed}");
    assert!(
        printed.contains("ListOrders: ok, app demo-app, 0 orders\n"),
        "{printed}"
    );
    assert!(
        printed.contains("CreateOrder: refused, Unauthenticated (16): No credential was sent.\n"),
        "{printed}"
    );

    // CreateOrder without a token is refused by its own guard.
    let status = client.create_order(tea(), &app).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    // 2: key and token; the handler sees both ids.
    let order = client.create_order(tea(), &app_and_user).await.unwrap();
    assert_eq!(
        (order.user_id.as_str(), order.app_id.as_str()),
        ("alice", "demo-app")
    );
    // 3: the order is listed.
    let reply = client.list_orders(&app).await.unwrap();
    assert_eq!(reply.app_id, "demo-app");
    assert_eq!(reply.orders, vec![order]);

    // Over the per-key limit of 3 an hour, on either method.
    let status = client.list_orders(&app).await.unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    let status = client.create_order(tea(), &app_and_user).await.unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    let (_, printed) = run_to_end(
        "tonic_client",
        &[
            ("TOLLGATE_GRPC_URL", &url),
            ("KEY", key.expose()),
            ("TOKEN", &token),
        ],
    );
    assert!(
        printed.contains("ListOrders: refused, ResourceExhausted (8)"),
        "{printed}"
    );
    assert!(!example.output().contains(&token), "{}", example.output());
}

/// The README's cross-service line: tonic_orders verifies axum_orders' tokens through its
/// JWKS document, so a user who logged in over HTTP places an order over gRPC.
#[cfg(all(feature = "issuer", feature = "axum", feature = "jwks-hyper"))]
#[tokio::test]
async fn tonic_orders_verifies_axum_orders_tokens_by_jwks() {
    let http = Example::start("axum_orders", &[]);
    let issuer = format!("http://{}", http.addr());
    let client = crate::support::HttpClient::new(http.addr());
    let request = client
        .request(http::Method::POST, "/auth/login")
        .header("content-type", "application/json")
        .body(http_body_util::Full::new(bytes::Bytes::from_static(
            br#"{"username":"alice","password":"alice-demo-password"}"#,
        )))
        .unwrap();
    let login = client.send(request).await.json();
    let bearer = format!("Bearer {}", login["access_token"].as_str().unwrap());

    let key = KeyFormat::default().generate();
    let jwks_url = format!("{issuer}/.well-known/jwks.json");
    let grpc = Example::start(
        "tonic_orders",
        &[
            ("TOLLGATE_DEMO_KEY", key.expose()),
            ("TOLLGATE_JWKS_URL", &jwks_url),
            ("TOLLGATE_ISSUER", &issuer),
        ],
    );
    let mut orders = OrdersClient::connect(format!("http://{}", grpc.addr()))
        .await
        .unwrap();
    let metadata = [
        ("x-api-key", key.expose()),
        ("authorization", bearer.as_str()),
    ];
    let order = orders.create_order(tea(), &metadata).await.unwrap();
    assert_eq!(
        (order.user_id.as_str(), order.app_id.as_str()),
        ("alice", "demo-app")
    );
}
