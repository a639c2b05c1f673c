//! The whole stack under load on 127.0.0.1: requests/s, p50/p99 latency and server CPU time per
//! request, for a bare axum router and the same router behind tollgate's layers, and for
//! jwt-authorizer 0.15 (axum 0.7) next to a bare axum 0.7 router.
//!
//! ```text
//! cargo bench --all-features --bench load
//! TOLLGATE_LOAD_SECS=5 TOLLGATE_LOAD_ROWS=bare,full_stack cargo bench --all-features --bench load
//! ```
//!
//! Each row runs its server in a child process (this binary re-executed with `--serve ROW`), so
//! the server's CPU time is the child's `utime + stime` from `/proc/<pid>/stat`, read before and
//! after the measured window: the load generator's own work is not in it. The load generator is
//! a hyper HTTP/1.1 client on its own runtime, `TOLLGATE_LOAD_CONNECTIONS` (64) keep-alive
//! connections each sending one request at a time. All servers start at once; then
//! `TOLLGATE_LOAD_ROUNDS` (3) rounds, in rotating order, load each for a 0.3 s warm-up and
//! `TOLLGATE_LOAD_SECS` (1.5) measured seconds, and it stops by itself (about a minute with the
//! defaults). Figures are medians over rounds; ratios are taken per round against the
//! baseline's run in the same round, then the median. Every row is sent the
//! same request (`GET /orders` with an `x-api-key` and an HS256 bearer token), whether or not
//! its server reads them. Server worker threads: `TOLLGATE_LOAD_SERVER_THREADS` (1); client
//! worker threads: `TOLLGATE_LOAD_CLIENT_THREADS` (1).
//!
//! Ratios are against the bare router of the same framework; on a shared machine absolute
//! figures drift, ratios hold better.

#![allow(missing_docs)]

use std::convert::Infallible;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tower::{Service, ServiceExt};

#[path = "common/stats.rs"]
mod stats;
use stats::median;
#[path = "common/floor_stack.rs"]
mod floor_stack;
#[path = "common/static_fields.rs"]
mod static_fields;

const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

/// Rows in the order they run: name, framework baseline row, what it is.
const ROWS: &[(&str, &str, &str)] = &[
    ("bare", "bare", "axum 0.8 router, no layers"),
    (
        "api_key",
        "bare",
        "ApiKeyLayer, in-memory store, cached key",
    ),
    (
        "jwt_hs256",
        "bare",
        "JwtLayer HS256 (default: verified-token cache on)",
    ),
    (
        "api_key_jwt",
        "bare",
        "ApiKeyLayer + JwtLayer (the full stack without the limiter)",
    ),
    (
        "full_stack",
        "bare",
        "ApiKeyLayer + JwtLayer + RequireScopesLayer + per-key RateLimitLayer (IETF fields on)",
    ),
    (
        "full_stack_no_fields",
        "bare",
        "the full stack with `ietf_headers(false)`",
    ),
    (
        "floor_stack",
        "bare",
        "the full stack's work in one hand-written middleware (benches/common/floor_stack.rs)",
    ),
    (
        "floor_stack_no_fields",
        "bare",
        "the floor without the RateLimit fields",
    ),
    ("axum07_bare", "axum07_bare", "axum 0.7 router, no layers"),
    (
        "jwt_authorizer_hs256",
        "axum07_bare",
        "jwt-authorizer 0.15 HS256 on axum 0.7",
    ),
];

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(at) = args.iter().position(|a| a == "--serve") {
        let row = args.get(at + 1).expect("--serve ROW");
        serve(row);
        return;
    }
    drive_all();
}

// ---------------------------------------------------------------------------------------
// Server side (the child process).
// ---------------------------------------------------------------------------------------

async fn orders() -> &'static str {
    "orders"
}

/// Builds `row`'s router and serves it; prints `ready ADDR API_KEY` once listening.
fn serve(row: &str) {
    // The parent holds our stdin: when it goes away (however it ends), so do we.
    std::thread::spawn(|| {
        let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
        std::process::exit(0);
    });
    let _ = jsonwebtoken::crypto::CryptoProvider::install_default(
        &jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER,
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(env_or("TOLLGATE_LOAD_SERVER_THREADS", 1))
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        if row == "jwt_authorizer_hs256" || row == "axum07_bare" {
            let router = axum07::Router::new().route("/orders", axum07::routing::get(orders));
            let router = if row == "jwt_authorizer_hs256" {
                let authorizer = jwt_authorizer::JwtAuthorizer::<serde_json::Value>::from_secret(
                    std::str::from_utf8(SECRET).unwrap(),
                )
                .build()
                .await
                .unwrap();
                router.layer(jwt_authorizer::layer::AuthorizationLayer::new(vec![
                    Arc::new(authorizer),
                ]))
            } else {
                router
            };
            println!("ready {addr} -");
            accept(listener, router.with_state(())).await;
        } else {
            let (router, key) = axum08_router(row).await;
            println!("ready {addr} {key}");
            accept(listener, router.with_state(())).await;
        }
    });
}

/// The axum 0.8 rows; the second value is the API key the client must send.
async fn axum08_router(row: &str) -> (axum::Router, String) {
    use tollgate::Quota;
    use tollgate::api_key::{ApiKeyLayer, ApiKeys, InMemoryKeyStore, NewKey};
    use tollgate::jwt::{Algorithm, JwtKey, JwtLayer};
    use tollgate::rate_limit::RateLimitLayer;
    use tollgate::scope::RequireScopesLayer;

    let keys = ApiKeys::builder(InMemoryKeyStore::new()).build();
    let generated = keys
        .generate(NewKey::new("app-load", "Load test").scopes(["orders:read"]))
        .await
        .unwrap();
    let api_key = generated.key().expose().to_owned();
    let jwt = || JwtLayer::new(JwtKey::hmac(SECRET, Algorithm::HS256).unwrap()).unwrap();
    let router = axum::Router::new().route("/orders", axum::routing::get(orders));
    let router = match row {
        "bare" => router,
        "api_key" => router.route_layer(ApiKeyLayer::new(keys)),
        "jwt_hs256" => router.route_layer(jwt()),
        "api_key_jwt" => router.route_layer(
            tower::ServiceBuilder::new()
                .layer(ApiKeyLayer::new(keys))
                .layer(jwt()),
        ),
        // One `route_layer` for the whole stack (axum boxes each `route_layer` separately),
        // in request order: API key → JWT → scopes → per-key limit → handler.
        "full_stack" | "full_stack_no_fields" => router.route_layer(
            tower::ServiceBuilder::new()
                .layer(ApiKeyLayer::new(keys))
                .layer(jwt())
                // The key and the token both grant `orders:read`: the intersection does too.
                .layer(RequireScopesLayer::all(["orders:read"]).unwrap())
                .layer(
                    RateLimitLayer::new(Quota::per_second(1_000_000_000))
                        .ietf_headers(row == "full_stack"),
                ),
        ),
        "floor_stack" | "floor_stack_no_fields" => router.route_layer(
            floor_stack::FloorLayer::new(&api_key, SECRET, row == "floor_stack"),
        ),
        other => panic!("unknown row {other}"),
    };
    (router, api_key)
}

/// Serves HTTP/1.1 keep-alive connections with `service`: the same plumbing for axum 0.8 and
/// 0.7, so the rows differ only in the router. Routers come `with_state(())`, as
/// `axum::serve` does it: otherwise axum turns each handler into a route (applying every
/// `route_layer` again) on every request.
async fn accept<S, B>(listener: TcpListener, service: S)
where
    S: Service<Request<Incoming>, Response = Response<B>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    loop {
        let (stream, _) = listener.accept().await.unwrap();
        stream.set_nodelay(true).unwrap();
        let service = service.clone();
        tokio::spawn(async move {
            let hyper_service = hyper::service::service_fn(move |request: Request<Incoming>| {
                service.clone().oneshot(request)
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), hyper_service)
                .await;
        });
    }
}

// ---------------------------------------------------------------------------------------
// Load generator (the parent process).
// ---------------------------------------------------------------------------------------

struct Server {
    child: Child,
    addr: SocketAddr,
    api_key: String,
}

impl Server {
    fn start(row: &str) -> Self {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--serve", row])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let mut parts = line.split_whitespace();
        assert_eq!(parts.next(), Some("ready"), "server said {line:?}");
        let addr = parts.next().unwrap().parse().unwrap();
        let api_key = parts.next().unwrap_or("-").to_owned();
        Self {
            child,
            addr,
            api_key,
        }
    }

    /// The child's user + system CPU time so far.
    fn cpu(&self, tick: f64) -> Duration {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap();
        // Fields after the command name (which is in parentheses and may contain spaces).
        let rest = &stat[stat.rfind(')').unwrap() + 2..];
        let fields: Vec<&str> = rest.split(' ').collect();
        // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
        let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
        Duration::from_secs_f64(ticks as f64 / tick)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Clock ticks per second of `/proc/<pid>/stat` (`getconf CLK_TCK`, 100 almost everywhere).
fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

fn bearer() -> HeaderValue {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = serde_json::json!({
        "sub": "user-1234",
        "iat": now,
        "exp": now + 3600,
        "scope": "orders:read orders:write",
    });
    let token = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(SECRET),
    )
    .unwrap();
    HeaderValue::from_str(&format!("Bearer {token}")).unwrap()
}

struct Measured {
    requests: usize,
    errors: usize,
    elapsed: Duration,
    latencies_us: Vec<u32>,
    server_cpu: Duration,
}

/// One connection: requests back to back until `stop`; latencies recorded while `measuring`.
async fn connection(
    addr: SocketAddr,
    api_key: HeaderValue,
    authorization: HeaderValue,
    measuring: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
) -> (Vec<u32>, usize) {
    let stream = TcpStream::connect(addr).await.unwrap();
    stream.set_nodelay(true).unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let host = HeaderValue::from_str(&addr.to_string()).unwrap();
    let mut latencies = Vec::with_capacity(1 << 16);
    let mut errors = 0;
    while !stop.load(Ordering::Relaxed) {
        let request = Request::get("/orders")
            .header(http::header::HOST, host.clone())
            .header("x-api-key", api_key.clone())
            .header(http::header::AUTHORIZATION, authorization.clone())
            .body(Empty::<Bytes>::new())
            .unwrap();
        if sender.ready().await.is_err() {
            break;
        }
        let began = Instant::now();
        let Ok(response) = sender.send_request(request).await else {
            errors += 1;
            break;
        };
        let status = response.status();
        let body = response.into_body().collect().await;
        let took = began.elapsed();
        if measuring.load(Ordering::Relaxed) {
            if status == StatusCode::OK && body.is_ok() {
                latencies.push(u32::try_from(took.as_micros()).unwrap_or(u32::MAX));
            } else {
                errors += 1;
            }
        }
    }
    (latencies, errors)
}

/// Loads `server` for a short warm-up, then `secs` measured seconds.
fn measure(
    runtime: &tokio::runtime::Runtime,
    server: &Server,
    authorization: &HeaderValue,
    secs: f64,
    tick: f64,
) -> Measured {
    let connections = env_or("TOLLGATE_LOAD_CONNECTIONS", 64usize);
    let measuring = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let api_key = HeaderValue::from_str(&server.api_key).unwrap();
    runtime.block_on(async {
        let tasks: Vec<_> = (0..connections)
            .map(|_| {
                tokio::spawn(connection(
                    server.addr,
                    api_key.clone(),
                    authorization.clone(),
                    measuring.clone(),
                    stop.clone(),
                ))
            })
            .collect();
        // Warm-up: connections open, caches filled, the server's threads awake.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let cpu_before = server.cpu(tick);
        let began = Instant::now();
        measuring.store(true, Ordering::Relaxed);
        tokio::time::sleep(Duration::from_secs_f64(secs)).await;
        measuring.store(false, Ordering::Relaxed);
        let elapsed = began.elapsed();
        let cpu_after = server.cpu(tick);
        stop.store(true, Ordering::Relaxed);
        let mut latencies = Vec::new();
        let mut errors = 0;
        for task in tasks {
            let (l, e) = task.await.unwrap();
            latencies.extend(l);
            errors += e;
        }
        Measured {
            requests: latencies.len(),
            errors,
            elapsed,
            latencies_us: latencies,
            server_cpu: cpu_after - cpu_before,
        }
    })
}

fn percentile(sorted: &[u32], p: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

impl Measured {
    fn rps(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }

    fn cpu_us(&self) -> f64 {
        self.server_cpu.as_secs_f64() * 1e6 / self.requests.max(1) as f64
    }
}

fn drive_all() {
    let _ = jsonwebtoken::crypto::CryptoProvider::install_default(
        &jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER,
    );
    let selected: Option<Vec<String>> = std::env::var("TOLLGATE_LOAD_ROWS")
        .ok()
        .map(|v| v.split(',').map(str::to_owned).collect());
    let rows: Vec<_> = ROWS
        .iter()
        .filter(|(row, ..)| selected.as_ref().is_none_or(|s| s.iter().any(|r| r == row)))
        .collect();
    let rounds = env_or("TOLLGATE_LOAD_ROUNDS", 3usize).max(1);
    let secs = env_or("TOLLGATE_LOAD_SECS", 1.5f64);
    let tick = clock_ticks();
    let authorization = bearer();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(env_or("TOLLGATE_LOAD_CLIENT_THREADS", 1))
        .enable_all()
        .build()
        .unwrap();
    // Every server up at once (idle ones cost nothing), measured in rotating rounds so that a
    // row and its baseline are always measured minutes apart at most.
    let servers: Vec<Server> = rows.iter().map(|(row, ..)| Server::start(row)).collect();
    let mut runs: Vec<Vec<Measured>> = rows.iter().map(|_| Vec::new()).collect();
    for round in 0..rounds {
        for i in 0..rows.len() {
            let i = (i + round) % rows.len();
            eprintln!("load: round {}/{rounds}: {}", round + 1, rows[i].0);
            let m = measure(&runtime, &servers[i], &authorization, secs, tick);
            runs[i].push(m);
        }
    }
    drop(servers);
    println!(
        "\n{} connections, {rounds} rounds of {secs} s per row, server threads {}, CLK_TCK {tick}\n",
        env_or("TOLLGATE_LOAD_CONNECTIONS", 64usize),
        env_or("TOLLGATE_LOAD_SERVER_THREADS", 1usize),
    );
    println!(
        "| row | requests/s | p50 | p99 | server CPU / request | rps vs baseline | CPU/request vs baseline | errors |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for (i, (row, baseline, what)) in rows.iter().enumerate() {
        let ms = &runs[i];
        let rps = median(ms.iter().map(Measured::rps).collect());
        let cpu_us = median(ms.iter().map(Measured::cpu_us).collect());
        let mut latencies: Vec<u32> = ms.iter().flat_map(|m| m.latencies_us.clone()).collect();
        latencies.sort_unstable();
        let errors: usize = ms.iter().map(|m| m.errors).sum();
        // Ratios per round against the baseline's run of the same round, then the median.
        let (rps_ratio, cpu_ratio) = match rows.iter().position(|(r, ..)| r == baseline) {
            Some(b) => (
                format!(
                    "{:.2}x",
                    median(
                        ms.iter()
                            .zip(&runs[b])
                            .map(|(m, b)| m.rps() / b.rps())
                            .collect()
                    )
                ),
                format!(
                    "{:.2}x",
                    median(
                        ms.iter()
                            .zip(&runs[b])
                            .map(|(m, b)| m.cpu_us() / b.cpu_us())
                            .collect()
                    )
                ),
            ),
            None => ("-".to_owned(), "-".to_owned()),
        };
        println!(
            "| {row} ({what}) | {rps:.0} | {} µs | {} µs | {cpu_us:.1} µs | {rps_ratio} | {cpu_ratio} | {errors} |",
            percentile(&latencies, 0.50),
            percentile(&latencies, 0.99),
        );
    }
}
