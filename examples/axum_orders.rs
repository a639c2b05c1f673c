//! An orders service guarded by API keys, with in-memory stores and no setup.
//!
//! ```text
//! cargo run --example axum_orders --features full
//! ```
//!
//! It prints a demo key and `curl` commands to try. Settings (environment variables):
//! `TOLLGATE_ADDR` (listen address, default `127.0.0.1:3000`) and `TOLLGATE_DEMO_KEY` (a key of
//! the `tg_` format to preload instead of generating one, so restarts keep the same key).

use std::net::SocketAddr;

use axum::routing::get;
use axum::{Extension, Json, Router};
use serde_json::{Value, json};
use tollgate::api_key::{ApiKey, ApiKeyLayer, ApiKeys, InMemoryKeyStore, NewKey};
use tollgate::identity::AppIdentity;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr: SocketAddr = std::env::var("TOLLGATE_ADDR")
        .unwrap_or_else(|_| "127.0.0.1:3000".to_owned())
        .parse()?;
    let keys = ApiKeys::builder(InMemoryKeyStore::new()).build();
    let demo = NewKey::new("demo-app", "Demo app").scopes(["orders:read", "notifications:read"]);
    let demo_key = match std::env::var("TOLLGATE_DEMO_KEY") {
        Ok(key) => {
            let key = ApiKey::from_plaintext(key);
            if !keys.format().is_well_formed(key.expose().as_bytes()) {
                return Err("TOLLGATE_DEMO_KEY is not a well-formed tg_ key".into());
            }
            keys.import(&key, demo).await?;
            key
        }
        Err(_) => keys.generate(demo).await?.key().clone(),
    };

    let app = router(keys);
    let listener = tokio::net::TcpListener::bind(addr).await?;
    println!("orders service on http://{addr}\n");
    println!("  demo API key (shown once): {}\n", demo_key.expose());
    println!(
        "  curl -i http://{addr}/orders -H 'X-API-Key: {}'",
        demo_key.expose()
    );
    println!(
        "  curl -i http://{addr}/notifications -H 'X-API-Key: {}'",
        demo_key.expose()
    );
    println!("  curl -i http://{addr}/orders                      # 401 missing_credential");
    println!("  curl -i http://{addr}/orders -H 'X-API-Key: tg_typo'   # 401 malformed_credential");
    axum::serve(listener, app).await?;
    Ok(())
}

/// The routes: `/health` is open; `/orders` and `/notifications` need an API key.
fn router(keys: ApiKeys<InMemoryKeyStore>) -> Router {
    Router::new()
        .route("/orders", get(orders))
        .route("/notifications", get(notifications))
        // route_layer: only matched routes need a key, so unknown paths stay 404.
        .route_layer(ApiKeyLayer::new(keys))
        .route("/health", get(|| async { "ok" }))
}

async fn orders(Extension(app): Extension<AppIdentity>) -> Json<Value> {
    Json(json!({
        "app": { "id": app.app_id(), "name": app.app_name(), "scopes": app.scopes() },
        "orders": [ { "id": 1, "item": "tea", "quantity": 2 } ],
    }))
}

async fn notifications(Extension(app): Extension<AppIdentity>) -> Json<Value> {
    Json(json!({ "app": app.app_id(), "notifications": [] }))
}
