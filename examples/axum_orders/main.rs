//! Seed 000's orders service, guarded by tollgate: API keys for applications, JWT bearer
//! tokens for users, both for placing an order, and a per-key rate limit.
//!
//! ```text
//! cargo run --example axum_orders --features full
//! ```
//!
//! With no settings it listens on 127.0.0.1:3000 with in-memory stores, and prints a demo
//! API key (once) with `curl` commands to paste.
//!
//! | route | guard |
//! |---|---|
//! | `GET /orders` | API key with `orders:read` |
//! | `POST /orders` | API key **and** bearer token, `orders:write` in both; the handler logs the app id and user id |
//! | `GET /notifications` | API key with `notifications:read` |
//! | `GET /users/me` | bearer token; answers the caller's `sub` and scopes |
//! | `POST /auth/login` | none: a demo user store; answers an access and a refresh token |
//! | `POST /auth/token` | none: `grant_type=refresh_token` (form data) rotates the refresh token; `scope` narrows the access token |
//! | `POST /auth/token-exchange` | API key with `token:exchange`: a 180 s token for `{"userId": …}` |
//! | `GET /.well-known/jwks.json` | none: the public key tokens are signed with |
//! | `POST /admin/api-keys`, `GET /admin/api-keys` | bearer token with `keys:admin`: generate an app's primary or secondary key (`{"type": "primary", "appId": …, "graceSeconds": …}`), list them masked (`?appId=…`) |
//! | `GET /health` | none |
//!
//! API-key routes share a per-key limit (1000 per hour) and answer with `RateLimit-Policy` /
//! `RateLimit` headers, and `Retry-After` on 429. The service is its own token issuer: it signs
//! with an Ed25519 key made at start-up (or `TOLLGATE_SIGNING_KEY_PEM`), and accepts its own
//! tokens plus, optionally, another issuer's (one static key, or a JWKS URL instead).
//!
//! # Settings (environment variables, all optional)
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `TOLLGATE_ADDR` | `127.0.0.1:3000` | listen address |
//! | `TOLLGATE_ISSUER` | `http://<addr>` | the `iss` tokens must carry |
//! | `TOLLGATE_AUDIENCE` | `orders-api` | the `aud` tokens must carry |
//! | `TOLLGATE_LEEWAY_SECS` | `60` | clock-skew leeway for `exp`/`nbf` |
//! | `TOLLGATE_SIGNING_KEY_PEM` + `TOLLGATE_SIGNING_ALG` + `TOLLGATE_SIGNING_KID` | generated + `EdDSA` + `demo-1` | the private key `/auth/login` signs with (RSA, EC or Ed25519 PEM) |
//! | `TOLLGATE_USERS` | alice, bob, carol | the demo user store: `name:password:scope scope…;…` |
//! | `TOLLGATE_JWT_HMAC_SECRET` | — | also accept HS256 tokens signed with this secret |
//! | `TOLLGATE_JWT_RSA_PEM` + `TOLLGATE_JWT_RSA_ALG` | — + `RS256` | or an RSA public key file |
//! | `TOLLGATE_JWT_EC_PEM` + `TOLLGATE_JWT_EC_ALG` | — + `ES256` | or an EC public key file |
//! | `TOLLGATE_JWT_ED25519_PEM` | — | or an Ed25519 public key file |
//! | `TOLLGATE_JWT_KID` | — | the `kid` of that one static key, for tokens that name one |
//! | `TOLLGATE_JWKS_URL` | — | verify with the keys of an `http://` JWKS endpoint instead (feature `jwks-hyper`) |
//! | `TOLLGATE_OIDC_ISSUER` | — | also accept tokens of these OpenID providers (comma-separated issuer URLs, discovered at start-up over HTTPS; plain HTTP to loopback only) |
//! | `TOLLGATE_OIDC_AUDIENCE` | `TOLLGATE_AUDIENCE` | the `aud` their tokens must carry |
//! | `TOLLGATE_OIDC_CA` | — | a PEM file of CA certificates to trust for them (a private PKI) |
//! | `TOLLGATE_DEMO_KEY` | generated | a `tg_` key to use as the demo app's key, so restarts keep it |
//! | `TOLLGATE_API_KEYS` | — | keys to preload, see below |
//! | `TOLLGATE_RATE_LIMIT` | `1000/hour` | per-key limit: `N/second`, `N/minute`, `N/hour`, `N/day` |
//! | `TOLLGATE_IP_RATE_LIMIT` | off | a per-client-IP limit in front of auth, same format |
//! | `TOLLGATE_USAGE_FLUSH_SECS` | `60` | how often per-key usage is written to the key store (and at shutdown) |
//! | `TOLLGATE_POSTGRES_URL` | — | keep key records and refresh tokens in PostgreSQL (feature `postgres`; migrates on start) |
//! | `TOLLGATE_REDIS_URL` | — | broadcast key revocations and revoked sessions' access tokens to other instances and share the per-key limit over Redis (feature `redis`) |
//! | `TOLLGATE_REDIS_CLUSTER` | — | the same on a Redis Cluster: its seed nodes, comma-separated |
//! | `TOLLGATE_RATE_LIMIT_LEASED` | `0` | `1`: the shared per-key limit leases slices of each key's budget (fewer round trips, never more than the limit) |
//! | `RUST_LOG` | `info,tollgate=debug` | log filter |
//!
//! `TOLLGATE_API_KEYS` holds entries separated by `;`, each a comma-separated list of
//! `name=value` fields: `app` (required), `name`, `key` (the plaintext) **or** `digest` (its
//! SHA-256 in hex, so the key itself never sits in your configuration), `scopes`
//! (space-separated), `slot` (`primary`/`secondary`), `active` (`true`/`false`), `expires`
//! (unix seconds or `2027-01-01T00:00:00Z`), `quota` (`100/hour`, overrides the default limit):
//!
//! ```text
//! TOLLGATE_API_KEYS='app=billing,name=Billing,digest=3f9a…,scopes=orders:read;app=old,key=tg_…,active=false'
//! ```
//!
//! Logs never show a secret: credential headers are marked sensitive before the trace layer
//! records them, and tollgate logs key hints (`tg_…a1B2`), never keys or tokens.

mod admin;
mod config;
mod keys;
mod routes;
mod tokens;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tokio::net::TcpListener;
use tollgate::api_key::{ApiKey, ApiKeys, InMemoryKeyStore, KeyStore, UsageFlush};
use tollgate::issuer::{InMemoryRefreshStore, RefreshTokenStore};
use tollgate::jwt::{Revocation, RevocationList, Revoker};
use tollgate::rate_limit::RateLimitLayer;
use tracing_subscriber::EnvFilter;

#[cfg(any(feature = "postgres", feature = "redis"))]
use crate::config::Secret;
use crate::config::{Config, DemoUser};
use crate::tokens::Tokens;

/// The recorder's handle, for `GET /metrics`.
static PROMETHEUS: std::sync::OnceLock<PrometheusHandle> = std::sync::OnceLock::new();

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        // Colours only for a terminal: piped into a file or a collector, lines stay plain.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| "info,tollgate=debug".into()),
        )
        .init();
    if let Err(message) = start().await {
        eprintln!("axum_orders: {message}");
        std::process::exit(1);
    }
}

/// Picks the stores: PostgreSQL for keys and refresh tokens when configured, else memory.
async fn start() -> Result<(), String> {
    // The metrics recorder first: tollgate registers its counters on first use, and the
    // start-up below already looks keys up.
    let prometheus = PrometheusBuilder::new()
        .install_recorder()
        .map_err(|e| format!("installing the metrics recorder: {e}"))?;
    let _ = PROMETHEUS.set(prometheus);
    let mut config = Config::from_env("127.0.0.1:3000")?;
    let users = std::mem::take(&mut config.users);
    #[cfg(feature = "postgres")]
    if let Some(Secret(url)) = &config.postgres_url {
        use tollgate::api_key::postgres::{PostgresKeyStore, migrate};
        use tollgate::issuer::PostgresRefreshStore;
        let store =
            PostgresKeyStore::connect(url).map_err(|e| format!("TOLLGATE_POSTGRES_URL: {e}"))?;
        migrate(store.pool())
            .await
            .map_err(|e| format!("migrating PostgreSQL: {e}"))?;
        let refresh = PostgresRefreshStore::new(store.pool().clone());
        return serve(config, users, store, refresh).await;
    }
    if config.postgres_url.is_some() {
        return Err("TOLLGATE_POSTGRES_URL needs the `postgres` feature".to_owned());
    }
    serve(
        config,
        users,
        InMemoryKeyStore::new(),
        InMemoryRefreshStore::new(),
    )
    .await
}

async fn serve<K, R>(
    config: Config,
    users: Vec<DemoUser>,
    store: K,
    refresh: R,
) -> Result<(), String>
where
    K: KeyStore,
    R: RefreshTokenStore,
{
    let builder = ApiKeys::builder(store);
    #[cfg(feature = "redis")]
    let redis_target = redis_target(&config);
    #[cfg(feature = "redis")]
    let (builder, invalidation) = match &redis_target {
        Some(target) => {
            use tollgate::api_key::redis::RedisInvalidation;
            let redis = RedisInvalidation::connect(target, RedisInvalidation::DEFAULT_CHANNEL)
                .await
                .map_err(|e| format!("Redis (TOLLGATE_REDIS_URL or _CLUSTER): {e}"))?;
            (builder.on_invalidate(redis.hook()), Some(redis))
        }
        None => (builder, None),
    };
    #[cfg(not(feature = "redis"))]
    if config.redis_url.is_some() || config.redis_cluster.is_some() {
        return Err("TOLLGATE_REDIS_URL and _CLUSTER need the `redis` feature".to_owned());
    }
    // Usage per key, flushed to the store every TOLLGATE_USAGE_FLUSH_SECS and at shutdown.
    let keys = builder.track_usage(true).build();
    let usage_flush = keys.spawn_usage_flush(config.usage_flush);
    // Dropping the subscription would unsubscribe: keep it for the life of the server.
    #[cfg(feature = "redis")]
    let _subscription = match invalidation {
        Some(redis) => Some(
            redis
                .subscribe(keys.clone())
                .await
                .map_err(|e| format!("subscribing on Redis: {e}"))?,
        ),
        None => None,
    };

    let demo_key = keys::preload(&keys, &config).await?;
    // Access tokens of a revoked session (reuse of its refresh token) are refused from then
    // on: on every instance over Redis when it is configured, in this process otherwise.
    #[cfg(feature = "redis")]
    let shared = match &redis_target {
        Some(target) => Some(
            tollgate::jwt::redis::RedisRevocation::connect(target)
                .await
                .map_err(|e| format!("Redis (revocations): {e}"))?,
        ),
        None => None,
    };
    #[cfg(feature = "redis")]
    let (tokens, jwt) = match shared {
        Some(denylist) => token_side(&config, users, refresh, denylist).await?,
        None => token_side(&config, users, refresh, RevocationList::new()).await?,
    };
    #[cfg(not(feature = "redis"))]
    let (tokens, jwt) = token_side(&config, users, refresh, RevocationList::new()).await?;
    let per_key = RateLimitLayer::new(config.rate_limit).ietf_headers(true);
    // With Redis, every instance counts against one limit per key.
    #[cfg(feature = "redis")]
    if let Some(target) = &redis_target {
        use tollgate::rate_limit::redis::{Leasing, RedisStore};
        let mut store = RedisStore::builder();
        if config.leased {
            store = store.leased(Leasing::new());
        }
        let store = store
            .connect(target)
            .await
            .map_err(|e| format!("Redis (rate limits): {e}"))?;
        let per_key = per_key.with_store(store).map_err(|e| e.to_string())?;
        let app = routes::router(keys, jwt, per_key, tokens, config.ip_rate_limit);
        return listen(&config, app, &demo_key, usage_flush).await;
    }
    let app = routes::router(keys, jwt, per_key, tokens, config.ip_rate_limit);
    listen(&config, app, &demo_key, usage_flush).await
}

/// `TOLLGATE_REDIS_CLUSTER` (seed nodes), else `TOLLGATE_REDIS_URL` (one server).
#[cfg(feature = "redis")]
fn redis_target(config: &Config) -> Option<tollgate::redis::RedisTarget> {
    use tollgate::redis::RedisTarget;
    match (&config.redis_cluster, &config.redis_url) {
        (Some(Secret(seeds)), _) => Some(RedisTarget::cluster(
            seeds.split(',').map(str::trim).filter(|s| !s.is_empty()),
        )),
        (None, Some(Secret(url))) => Some(RedisTarget::single(url.as_str())),
        (None, None) => None,
    }
}

/// The issuer and token endpoints, and the JWT layer, sharing one access-token denylist.
async fn token_side<R, D>(
    config: &Config,
    users: Vec<DemoUser>,
    refresh: R,
    denylist: D,
) -> Result<(Tokens<R>, tollgate::jwt::JwtLayer), String>
where
    R: RefreshTokenStore,
    D: Revocation + Revoker + Clone,
{
    let tokens = Tokens::new(config, users, refresh, denylist.clone())?;
    let jwt = keys::jwt_layer(config, tokens.issuer.verification_keys(), denylist).await?;
    Ok((tokens, jwt))
}

async fn listen(
    config: &Config,
    app: axum::Router,
    demo_key: &ApiKey,
    usage_flush: UsageFlush,
) -> Result<(), String> {
    // GET /metrics: the layers' counters in the Prometheus text format.
    let prometheus = PROMETHEUS.get().expect("installed in start").clone();
    let app = app.route(
        "/metrics",
        axum::routing::get(move || std::future::ready(prometheus.render())),
    );
    let listener = TcpListener::bind(config.addr)
        .await
        .map_err(|e| format!("binding {}: {e}", config.addr))?;
    print_banner(config, demo_key.expose());
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown_signal())
    .await
    .map_err(|e| format!("serving: {e}"))?;
    // The usage counted since the last flush, written before the process ends.
    match usage_flush.shutdown().await {
        Ok(keys) => tracing::info!(keys, "usage flushed at shutdown"),
        Err(error) => tracing::warn!(%error, "the last usage flush failed"),
    }
    Ok(())
}

/// Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("a SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

/// The start-up message: the demo key, shown once, and commands that use it.
fn print_banner(config: &Config, demo_key: &str) {
    let base = format!("http://{}", config.addr);
    let login = if config.demo_users {
        r#"{"username":"alice","password":"alice-demo-password"}"#
    } else {
        r#"{"username":"…","password":"…"}"#
    };
    println!("orders service ready on {base}");
    println!();
    println!("The demo app's API key (shown once; set TOLLGATE_DEMO_KEY to keep one):");
    println!();
    println!("  export KEY={demo_key}");
    println!();
    println!("  curl -i {base}/orders -H \"X-API-Key: $KEY\"          # 200 and RateLimit headers");
    println!("  curl -i {base}/notifications -H \"X-API-Key: $KEY\"   # 200");
    println!("  curl -i {base}/orders                               # 401 missing_credential");
    println!("  curl -i {base}/orders -H 'X-API-Key: tg_typo'       # 401 malformed_credential");
    println!();
    println!("A user's tokens (demo users: alice, bob, carol; TOLLGATE_USERS replaces them):");
    println!();
    println!("  curl -s {base}/auth/login -H 'content-type: application/json' -d '{login}'");
    println!("  export TOKEN=…  REFRESH=…   # access_token and refresh_token from the answer");
    println!("  curl -i {base}/users/me -H \"Authorization: Bearer $TOKEN\"");
    println!(
        "  curl -i {base}/orders -X POST -H \"X-API-Key: $KEY\" -H \"Authorization: Bearer $TOKEN\" \\\n       -H 'content-type: application/json' -d '{{\"item\":\"tea\"}}'"
    );
    println!("  curl -s {base}/auth/token -d grant_type=refresh_token -d refresh_token=$REFRESH");
    println!(
        "  curl -s {base}/auth/token-exchange -H \"X-API-Key: $KEY\" -H 'content-type: application/json' -d '{{\"userId\":\"alice\"}}'"
    );
    println!("  curl -s {base}/.well-known/jwks.json");
    if config.demo_users {
        println!();
        println!("  # passwords are <name>-demo-password; bob holds only `profile` (403 on POST");
        println!("  # /orders), carol holds `keys:admin` (POST/GET {base}/admin/api-keys)");
    }
    println!();
}
