//! The routes of seed 000 and the guards in front of each.
//!
//! Guards are attached per route with `route_layer`, so an unknown path is a plain 404 and a
//! wrong method a 405, never a 401. Within one route the last `route_layer` runs first, which
//! gives the order the README recommends: CORS → IP limit → auth → scopes → per-key limit →
//! handler.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::ConnectInfo;
use axum::http::{HeaderName, Method, StatusCode, header};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use tollgate::Quota;
use tollgate::api_key::{ApiKeyLayer, ApiKeys, KeyStore};
use tollgate::app_user::{AppUserLayer, Policy};
use tollgate::identity::{AppIdentity, UserIdentity};
use tollgate::issuer::RefreshTokenStore;
use tollgate::jwt::JwtLayer;
use tollgate::observe::AuditEvent;
use tollgate::principal::Principal;
use tollgate::rate_limit::{AppKeyId, ClientIp, Limit, RateLimitLayer, RateLimitStore};
use tollgate::rejection::Challenge;
use tollgate::scope::RequireScopesLayer;
use tower_http::cors::{Any, CorsLayer};
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::trace::{DefaultMakeSpan, DefaultOnResponse, TraceLayer};

use crate::admin;
use crate::tokens::{self, Tokens};

/// What the handlers share: the orders placed since start-up.
#[derive(Clone, Default)]
struct Orders(Arc<Mutex<Vec<Value>>>);

/// The whole service. Serve it with `into_make_service_with_connect_info::<SocketAddr>()`
/// so the per-IP limit sees the peer address.
pub(crate) fn router<K, St, R>(
    keys: ApiKeys<K>,
    jwt: JwtLayer,
    per_key: RateLimitLayer<AppKeyId, St>,
    tokens: Tokens<R>,
    per_ip: Option<Quota>,
) -> Router
where
    K: KeyStore,
    St: RateLimitStore + Clone,
    R: RefreshTokenStore,
{
    // Every refusal of every guard is logged as one structured line (target `audit`).
    let app = ApiKeyLayer::new(keys.clone()).audit(audit_line);
    let jwt = jwt.audit(audit_line);
    let per_key = per_key.audit(audit_line);
    // Seed 000's combined example: the key names the app, the token the user, both required.
    let app_and_user = AppUserLayer::from_layers(&app, &jwt, Policy::AppAndUser).audit(audit_line);
    let token_routes = Router::new()
        // Seed 001: the user store's login, and refresh with rotation (form data).
        .route("/auth/login", post(tokens::login::<R>))
        .route("/auth/token", post(tokens::token::<R>))
        // Seed 001: an application, known by its key, gets a token for one of its users.
        .route(
            "/auth/token-exchange",
            post(tokens::token_exchange::<R>)
                .route_layer(per_key.clone())
                .route_layer(app.clone()),
        )
        .route("/.well-known/jwks.json", get(tokens::jwks::<R>))
        .with_state(Arc::new(tokens));
    // Seed 001's key management, for a user holding `keys:admin`.
    let admin_routes = Router::new()
        .route(
            "/admin/api-keys",
            post(admin::generate::<K>).get(admin::list::<K>),
        )
        .route(
            "/admin/apps/{app_id}",
            axum::routing::put(admin::put_app::<K>),
        )
        .route_layer(scopes(["keys:admin"]))
        .route_layer(jwt.clone())
        .with_state(keys);
    let routes = Router::new()
        // Seed 000: an application reads orders with its API key and `orders:read`.
        .route(
            "/orders",
            get(list_orders)
                .route_layer(per_key.clone())
                .route_layer(key_scopes(["orders:read"]))
                .route_layer(app.clone()),
        )
        // Seed 000's `[ApiKeyAuthorize][Authorize]`: an app acting for a user.
        .route(
            "/orders",
            post(create_order)
                .route_layer(per_key.clone())
                .route_layer(scopes(["orders:write"]))
                .route_layer(app_and_user),
        )
        .route(
            "/notifications",
            get(notifications)
                .route_layer(per_key)
                .route_layer(key_scopes(["notifications:read"]))
                .route_layer(app),
        )
        .route("/users/me", get(me).route_layer(jwt))
        .with_state(Orders::default())
        .merge(token_routes)
        .merge(admin_routes);
    // Outside every route's guards, so a flood is refused before any key or token work.
    let routes = match per_ip {
        Some(quota) => routes.route_layer(
            RateLimitLayer::with_limit(Limit::new("ip", quota).expect("a valid name")).key(
                // Finds axum's `ConnectInfo<SocketAddr>` (tollgate's `axum` feature).
                ClientIp::peer(),
            ),
        ),
        None => routes,
    };
    routes
        .route("/health", get(|| async { "ok" }))
        .layer(
            TraceLayer::new_for_http()
                // Headers included to show that credentials appear as `Sensitive`.
                .make_span_with(
                    DefaultMakeSpan::new()
                        .level(tracing::Level::INFO)
                        .include_headers(true),
                )
                .on_response(DefaultOnResponse::new().level(tracing::Level::INFO)),
        )
        // Outside the trace layer, so the spans it records show credentials as `Sensitive`.
        .layer(SetSensitiveRequestHeadersLayer::new([
            header::AUTHORIZATION,
            HeaderName::from_static("x-api-key"),
        ]))
        // CORS outermost, before any auth: a browser's preflight carries no credentials and
        // must be answered, not refused with a 401.
        .layer(
            CorsLayer::new()
                .allow_origin(Any)
                .allow_methods([Method::GET, Method::POST])
                .allow_headers([
                    header::AUTHORIZATION,
                    header::CONTENT_TYPE,
                    HeaderName::from_static("x-api-key"),
                ]),
        )
}

/// A scope check; these scope lists are fixed, so building one cannot fail.
fn scopes<const N: usize>(all: [&str; N]) -> RequireScopesLayer {
    RequireScopesLayer::all(all).expect("valid scopes")
}

/// A scope check on an API key's scopes: its 403 challenges for the key, not a token.
fn key_scopes<const N: usize>(all: [&str; N]) -> RequireScopesLayer {
    scopes(all).challenge(Challenge::api_key(HeaderName::from_static("x-api-key")))
}

async fn list_orders(
    app: AppIdentity,
    axum::extract::State(orders): axum::extract::State<Orders>,
) -> Json<Value> {
    let placed = orders.0.lock().expect("orders lock").clone();
    Json(json!({
        "app": { "id": app.app_id(), "name": app.app_name(), "scopes": app.scopes() },
        "orders": placed,
    }))
}

#[derive(Deserialize)]
struct NewOrder {
    item: String,
    #[serde(default = "one")]
    quantity: u32,
}

fn one() -> u32 {
    1
}

async fn create_order(
    caller: Principal,
    axum::extract::State(orders): axum::extract::State<Orders>,
    Json(new): Json<NewOrder>,
) -> (StatusCode, Json<Value>) {
    // The combined layer let the request in with both, so both are here.
    let (Some(app), Some(user)) = (caller.app(), caller.user()) else {
        return (StatusCode::UNAUTHORIZED, Json(json!({})));
    };
    let user_id = user.subject().unwrap_or("");
    // Seed 000: "Order created by user {UserId} via application {AppId}". Ids only, no secret.
    tracing::info!(user_id, app_id = app.app_id(), item = %new.item, "order created");
    let mut placed = orders.0.lock().expect("orders lock");
    let order = json!({
        "id": placed.len() + 1,
        "item": new.item,
        "quantity": new.quantity,
        "user": user_id,
        "app": app.app_id(),
    });
    placed.push(order.clone());
    (StatusCode::CREATED, Json(order))
}

async fn notifications(app: AppIdentity) -> Json<Value> {
    Json(json!({ "app": app.app_id(), "notifications": [] }))
}

async fn me(user: UserIdentity) -> Json<Value> {
    let mut body = json!({
        "sub": user.subject(),
        "issuer": user.issuer(),
        "scopes": user.scopes(),
    });
    // Named for tokens of an external provider (`TOLLGATE_OIDC_ISSUER`).
    if let Some(provider) = user.provider() {
        body["provider"] = provider.into();
    }
    Json(body)
}

/// The audit sink: one structured log line per refusal, never with a credential.
fn audit_line(event: &AuditEvent<'_>) {
    let client = event.client.or_else(|| {
        event
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|info| info.0.ip())
    });
    tracing::info!(
        target: "audit",
        layer = event.layer,
        code = event.code.unwrap_or("allowed"),
        app = event.app_id.unwrap_or("-"),
        key = event.key_id.unwrap_or("-"),
        sub = event.subject.unwrap_or("-"),
        iss = event.issuer.unwrap_or("-"),
        client = %client.map_or_else(|| "-".to_owned(), |ip| ip.to_string()),
        method = %event.method,
        path = event.path,
        "refused"
    );
}
