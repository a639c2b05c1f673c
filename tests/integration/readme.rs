//! The README's Rust snippets, compiled: each ```rust block of README.md stands below between
//! `// README block N` markers, inside the context it needs (the `keys`, `jwt`, handlers… it
//! names), and `the_readme_shows_the_code_compiled_here` fails when the two differ. So a
//! snippet that stops compiling fails the build, and one edited in the README alone fails the
//! test. The functions are compiled, not run: they would bind ports and reach servers.
#![allow(
    dead_code,
    unused_variables,
    unused_imports,
    clippy::diverging_sub_expression,
    clippy::unused_async,
    clippy::new_ret_no_self
)]

use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use axum::Extension;
use tollgate::api_key::{ApiKeys, InMemoryKeyStore};
use tollgate::identity::UserIdentity;
use tollgate::jwt::{Claims, StandardClaims};

type Fallible = Result<(), Box<dyn std::error::Error + Send + Sync>>;

fn keys() -> ApiKeys<InMemoryKeyStore> {
    ApiKeys::builder(InMemoryKeyStore::new()).build()
}

fn jwt_layer() -> tollgate::jwt::JwtLayer {
    tollgate::jwt::JwtLayer::new(
        tollgate::jwt::JwtKey::hmac([7; 32], tollgate::jwt::Algorithm::HS256).unwrap(),
    )
    .unwrap()
}

async fn list_orders() -> &'static str {
    "orders"
}

async fn create_order() -> &'static str {
    "created"
}

async fn me(Extension(user): Extension<UserIdentity>) -> String {
    user.subject().unwrap_or_default().to_owned()
}

#[rustfmt::skip] // the README shows this code as it stands
async fn block_1_axum(listener: tokio::net::TcpListener) -> Fallible {
    let (keys, jwt) = (keys(), jwt_layer());
    let cors = tower_http::cors::CorsLayer::new();
    // README block 1
    use axum::{Router, routing::{get, post}};
    use tollgate::app_user::{AppUserLayer, Policy};
    use tollgate::rate_limit::{ClientIp, Limit, RateLimitLayer};
    use tollgate::scope::RequireScopesLayer;
    use tollgate::{Quota, api_key::ApiKeyLayer};

    let app_key = ApiKeyLayer::new(keys);                      // ApiKeys, see "API keys"
    let app_and_user = AppUserLayer::from_layers(&app_key, &jwt, Policy::AppAndUser);
    let per_key = RateLimitLayer::new(Quota::per_hour(1000)); // RateLimit fields on
    let per_ip = RateLimitLayer::with_limit(Limit::new("per-ip", Quota::per_minute(600))?)
        .key(ClientIp::peer()); // finds axum's ConnectInfo<SocketAddr> (feature `axum`)
    // Both limits show in the fields: RateLimit-Policy: "default";q=1000;w=3600, "per-ip";q=600;w=60

    let app = Router::new()
        .route("/orders", get(list_orders)
            .route_layer(per_key.clone())                                // 4. per-key limit
            .route_layer(RequireScopesLayer::all(["orders:read"])?)      // 3. scopes
            .route_layer(app_key))                                       // 2. API key
        .route("/orders", post(create_order)
            .route_layer(per_key)
            .route_layer(RequireScopesLayer::all(["orders:write"])?)
            .route_layer(app_and_user))                                  // 2. API key and JWT
        .route_layer(per_ip)                                             // 1. IP limit, every route
        .layer(cors);                                                    // 0. tower_http CorsLayer
    axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await?;
    // Handlers take AppIdentity, UserIdentity, Principal or Claims<C> as extractors (feature `axum`).
    // README end
    Ok(())
}

#[rustfmt::skip] // the README shows this code as it stands
async fn block_2_hyper(listener: tokio::net::TcpListener) -> Fallible {
    use tollgate::Quota;
    use tollgate::api_key::ApiKeyLayer;
    use tollgate::rate_limit::{ClientIp, RateLimitLayer};
    use tollgate::scope::RequireScopesLayer;
    let keys = keys();
    let per_ip = RateLimitLayer::new(Quota::per_minute(600)).key(ClientIp::peer());
    let per_key = RateLimitLayer::new(Quota::per_hour(1000));
    let handler = |_request: http::Request<hyper::body::Incoming>| async {
        Ok::<_, std::convert::Infallible>(http::Response::new(String::from("orders")))
    };
    // README block 2
    use tower::{ServiceBuilder, ServiceExt};

    let service = ServiceBuilder::new()
        .layer(per_ip)                         // ClientIp::peer(): reads the SocketAddr inserted below
        .layer(ApiKeyLayer::new(keys))
        .layer(RequireScopesLayer::all(["orders:read"])?)
        .layer(per_key)
        .service_fn(handler);

    loop {
        let (stream, peer) = listener.accept().await?;
        let service = service.clone().map_request(move |mut request: http::Request<_>| {
            request.extensions_mut().insert(peer);
            request
        });
        tokio::spawn(hyper::server::conn::http1::Builder::new().serve_connection(
            hyper_util::rt::TokioIo::new(stream),
            hyper_util::service::TowerToHyperService::new(service),
        ));
    }
    // README end
}

/// Stands in for the server type tonic-build generates.
struct OrdersServer;

impl OrdersServer {
    fn new(_orders: ()) -> crate::support::ProbeServer {
        crate::support::ProbeServer::new(|_| String::new())
    }
}

#[rustfmt::skip] // the README shows this code as it stands
async fn block_3_tonic() -> Fallible {
    let keys = keys();
    let per_ip_quota = tollgate::Quota::per_minute(600);
    let orders = ();
    // README block 3
    use tollgate::Quota;
    use tollgate::api_key::ApiKeyLayer;
    use tollgate::rate_limit::{ClientIp, RateLimitLayer};
    use tollgate::scope::RequireScopesLayer;

    tonic::transport::Server::builder()           // first layer outermost
        .layer(RateLimitLayer::new(per_ip_quota).key(ClientIp::peer())) // tonic's TcpConnectInfo (feature `tonic`)
        .layer(ApiKeyLayer::new(keys))
        .layer(RequireScopesLayer::all(["orders:read"])?)
        .layer(RateLimitLayer::new(Quota::per_hour(1000)))
        .add_service(OrdersServer::new(orders))
        .serve("127.0.0.1:50051".parse()?)
        .await?;
    // In a handler: request.extensions().get::<AppIdentity>()
    // README end
    Ok(())
}

#[rustfmt::skip] // the README shows this code as it stands
async fn block_4_jwt() -> Fallible {
    use axum::Router;
    use axum::routing::get;
    let secret = [7u8; 32];
    // README block 4
    use tollgate::jwt::{Algorithm, JwtKey, JwtLayer};

    let key = JwtKey::hmac(secret, Algorithm::HS256)?;          // or rsa_pem, ec_pem, ed_pem, JWK
    let jwt = JwtLayer::builder(key)
        .issuer("https://auth.example")
        .audience("orders-api")
        .build()?;
    let app: Router = Router::new().route("/users/me", get(me)).route_layer(jwt);
    // In a handler: Extension<UserIdentity> (subject, scopes) and Extension<Claims<StandardClaims>>
    // README end
    Ok(())
}

#[rustfmt::skip] // the README shows this code as it stands
async fn blocks_5_and_6_providers() -> Fallible {
    use tollgate::scope::RequireLayer;
    let issuer = tollgate::issuer::TokenIssuer::builder(
        "https://orders.example.com",
        tollgate::issuer::SigningKey::hmac("k", [7; 32], tollgate::jwt::Algorithm::HS256)?,
    )
    .build()?;
    // README block 5
    use tollgate::jwt::{ClaimMapping, JwtLayer, Provider};
    use tollgate::oidc::Discovery;

    let keycloak = Discovery::new("https://sso.example.com/realms/acme")
        .discover()                                  // a clear error now, or `.lazy()` to retry in the background
        .await?
        .named("keycloak")
        .audience("orders-api")
        .claim_mapping(ClaimMapping::keycloak("orders-api")); // realm and client roles become scopes
    let internal = Provider::new("https://orders.example.com", issuer.verification_keys()).named("internal");
    let jwt = JwtLayer::with_providers([keycloak, internal]).build()?;
    // README end
    // README block 6
    let auth0 = Discovery::new("https://acme.eu.auth0.com/")
        .discover()
        .await?
        .audience("https://orders.example.com")
        .claim_mapping(ClaimMapping::auth0());
    let jwt = JwtLayer::with_providers([auth0]).build()?;
    // This route only for the internal provider's tokens (Envoy's `requires_any`):
    let internal_only = RequireLayer::extension(|u: &UserIdentity| u.provider() == Some("internal"));
    // README end
    Ok(())
}

#[rustfmt::skip] // the README shows this code as it stands
async fn block_7_issuing(pem: Vec<u8>, refresh_token: String) -> Fallible {
    use tollgate::jwt::Algorithm;
    let revocation_list = tollgate::jwt::RevocationList::new();
    #[derive(serde::Serialize)]
    struct Tenant {
        tenant: &'static str,
    }
    let tenant = Tenant { tenant: "acme" };
    let users: std::collections::HashMap<String, tollgate::issuer::DirectoryUser> =
        std::collections::HashMap::new();
    let app = tollgate::identity::AppIdentity::builder("key-1", "app-1").build();
    // README block 7
    use tollgate::issuer::{DirectoryUser, Grant, InMemoryRefreshStore, SigningKey, TokenExchange, TokenIssuer, TokenService};

    let issuer = TokenIssuer::builder("https://auth.example", SigningKey::ec_pem("2026-11", pem, Algorithm::ES256)?)
        .audience("orders-api")
        .build()?;                                         // 15 min access tokens, typ at+jwt
    let jwt = issuer.jwt_layer().build()?;                 // accepts exactly what the issuer mints
    let tokens = TokenService::builder(issuer.clone(), InMemoryRefreshStore::new())
        .grace_window(Duration::from_secs(5))
        .denylist(revocation_list)                         // also given to the JWT layer (or a RedisRevocation)
        .build();
    let login = tokens.issue("alice", ["orders:read"]).await?;   // access + refresh token
    let login = tokens.issue_grant(Grant::new("bob").scopes(["orders:read"]).claims(&tenant)?).await?; // claims kept across refreshes
    let next = tokens.refresh(&refresh_token).await?;            // rotates; reuse revokes the family
    let narrow = tokens.refresh_with_scopes(&refresh_token, ["orders:read"]).await?; // RFC 6749 §6
    let exchange = TokenExchange::new(issuer.clone(), users);   // users: your UserDirectory (a HashMap<String, DirectoryUser> will do)
    let exchanged = exchange.exchange(&app, "alice", None).await?; // 180 s, act = app, scopes = key's ∩ alice's
    let jwks_json = issuer.jwks().to_json();               // serve at /.well-known/jwks.json
    // README end
    Ok(())
}

#[rustfmt::skip] // the README shows this code as it stands
async fn block_8_scopes() -> Fallible {
    use axum::Router;
    use axum::routing::{get, post};
    use tollgate::api_key::ApiKeyLayer;
    let (keys, jwt) = (keys(), jwt_layer());
    // README block 8
    use tollgate::app_user::{AppUserLayer, Policy};
    use tollgate::scope::{RequireLayer, RequireScopesLayer};

    let api_key = ApiKeyLayer::new(keys);
    let app: Router = Router::new().route(
        "/orders",
        // GET: a key with `orders:read` (the last route_layer is the outermost).
        get(list_orders)
            .route_layer(RequireScopesLayer::all(["orders:read"])?)
            .route_layer(api_key.clone())
            // POST: a key (which app) AND a token (which user); the handler sees both.
            .merge(post(create_order).route_layer(AppUserLayer::from_layers(&api_key, &jwt, Policy::AppAndUser))),
    );
    // Predicates without writing a layer: 403 `forbidden` when false.
    let admins = RequireLayer::claims(|c: &Claims<StandardClaims>| c.roles.iter().flatten().any(|r| r == "admin"));
    // README end
    Ok(())
}

#[rustfmt::skip] // the README shows this code as it stands
async fn block_9_rate_limits() -> Fallible {
    use axum::Router;
    use axum::routing::get;
    use tollgate::api_key::ApiKeyLayer;
    let keys = keys();
    // README block 9
    use tollgate::{Quota, rate_limit::RateLimitLayer};

    let app: Router = Router::new()
        .route("/orders", get(list_orders))
        .route_layer(RateLimitLayer::new(Quota::per_hour(1000)))
        .route_layer(ApiKeyLayer::new(keys)); // the last route_layer runs first
    // README end
    Ok(())
}

#[rustfmt::skip] // the README shows this code as it stands
async fn block_10_instances(redis_url: String, jti: &str, token_exp: SystemTime) -> Fallible {
    use tollgate::Quota;
    use tollgate::jwt::JwtLayer;
    use tollgate::jwt::redis::RedisRevocation;
    use tollgate::rate_limit::RateLimitLayer;
    use tollgate::rate_limit::redis::{Leasing, RedisStore};
    use tollgate::redis::RedisTarget;
    let keys = tollgate::jwt::JwtKey::hmac([7; 32], tollgate::jwt::Algorithm::HS256)?;
    // README block 10
    let limits = RedisStore::builder().prefix("myapp:rl").connect(&redis_url).await?;
    let limit = RateLimitLayer::new(Quota::per_hour(1000)).with_store(limits)?;
    let revoked = RedisRevocation::builder().prefix("myapp:jti").connect(&redis_url).await?;
    let jwt = JwtLayer::builder(keys).revocation(revoked.clone()).build()?;
    revoked.revoke(jti, token_exp).await?; // on logout, on any instance: refused until exp + leeway

    // A Redis Cluster instead: every backend takes its seed nodes the same way.
    let cluster = RedisTarget::cluster(["redis://10.0.0.1:7000", "redis://10.0.0.2:7000"]);
    // Leased: one round trip per slice of a hot key's budget, never more than the limit in total.
    let leased = RedisStore::builder().leased(Leasing::new()).connect(cluster).await?;
    // README end
    Ok(())
}

/// The ```rust blocks of README.md, and the marked blocks of this file, dedented.
fn blocks(text: &str, begin: impl Fn(&str) -> bool, end: impl Fn(&str) -> bool) -> Vec<String> {
    let mut out = Vec::new();
    let mut current: Option<Vec<&str>> = None;
    for line in text.lines() {
        match &mut current {
            None if begin(line) => current = Some(Vec::new()),
            Some(lines) if end(line) => {
                out.push(dedent(lines));
                current = None;
            }
            Some(lines) => lines.push(line),
            None => {}
        }
    }
    out
}

fn dedent(lines: &[&str]) -> String {
    let indent = lines
        .iter()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.len() - l.trim_start().len())
        .min()
        .unwrap_or(0);
    lines
        .iter()
        .map(|l| l.get(indent..).unwrap_or("").trim_end())
        .collect::<Vec<_>>()
        .join("\n")
        .trim()
        .to_owned()
}

#[test]
fn the_readme_shows_the_code_compiled_here() {
    let readme = include_str!("../../README.md");
    let here = include_str!("readme.rs");
    let shown = blocks(readme, |l| l == "```rust", |l| l == "```");
    let compiled = blocks(
        here,
        |l| l.trim_start().starts_with("// README block "),
        |l| l.trim() == "// README end",
    );
    assert_eq!(
        shown.len(),
        compiled.len(),
        "README blocks vs blocks compiled here"
    );
    for (i, (shown, compiled)) in shown.iter().zip(&compiled).enumerate() {
        assert_eq!(shown, compiled, "README block {} differs", i + 1);
    }
}
