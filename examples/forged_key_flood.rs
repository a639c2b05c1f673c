//! Forged API keys against `PostgresKeyStore`: what a flood of well-formed made-up keys costs
//! the store, and whether real keys keep working meanwhile. Loopback only, bounded in time
//! (about 15 s).
//!
//! ```text
//! bash scripts/test.sh --run cargo run --release --example forged_key_flood --all-features
//! ```
//!
//! For each configuration (the public checksum; a checksum secret), an axum server guarded by
//! `ApiKeyLayer` on 127.0.0.1 is measured twice for 3 s: quiet, then under a flood of forged
//! keys (`tg_` + random digits + the public checksum anyone can compute) sent at a fixed rate
//! (10,000 a second by default, `FLOOD_RATE` to change it). Meanwhile real keys are called at
//! a steady pace: one cached key, and fresh keys never seen before (each call a store lookup).
//! Printed: the latency of each (p50 / p99, quiet and flooded), the answers to the forged
//! keys, and store queries per forged key.
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use bytes::Bytes;
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tollgate::api_key::postgres::{self as pg, PostgresKeyStore};
use tollgate::api_key::{ApiKeyLayer, ApiKeys, NewKey};

#[path = "common/delegate_store.rs"]
mod delegate_store;
#[path = "common/forge.rs"]
mod forge;
use forge::forge;

const PHASE: Duration = Duration::from_secs(3);

/// `PostgresKeyStore`, counting the lookups it answers.
#[derive(Clone)]
struct Counted {
    inner: Arc<PostgresKeyStore>,
    lookups: Arc<AtomicUsize>,
}

delegate_key_store!(Counted, |this, digest| {
    this.lookups.fetch_add(1, Ordering::Relaxed);
    this.inner.find_by_digest(digest).await
});

type Http = Client<HttpConnector, Full<Bytes>>;

async fn call(client: &Http, addr: SocketAddr, key: &str) -> (u16, Duration) {
    let request = http::Request::get(format!("http://{addr}/"))
        .header("x-api-key", key)
        .body(Full::new(Bytes::new()))
        .unwrap();
    let started = Instant::now();
    let status = match client.request(request).await {
        Ok(response) => response.status().as_u16(),
        Err(_) => 0,
    };
    (status, started.elapsed())
}

fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    if samples.is_empty() {
        return Duration::ZERO;
    }
    samples.sort_unstable();
    let at = ((samples.len() - 1) as f64 * p).round() as usize;
    samples[at]
}

/// Latencies of the real keys over one phase, with or without a flood.
struct Phase {
    cached: Vec<Duration>,
    uncached: Vec<Duration>,
    real_failures: usize,
    forged_sent: usize,
    forged_answers: [usize; 4], // 401, 503, other, transport error
    lookups: usize,
}

async fn phase(
    client: &Http,
    addr: SocketAddr,
    keys: &ApiKeys<Counted>,
    cached: &str,
    flood_rate: Option<u32>,
    lookups: &AtomicUsize,
    seed: u64,
) -> Phase {
    // Fresh real keys, one per uncached call (a call every 20 ms).
    let calls = (PHASE.as_millis() / 20) as usize;
    let mut fresh = Vec::with_capacity(calls);
    for i in 0..calls {
        let new = NewKey::new(format!("app-{seed}-{i}"), "Measured").scopes(["orders:read"]);
        fresh.push(keys.generate(new).await.unwrap().key().expose().to_owned());
    }
    let lookups_before = lookups.load(Ordering::Relaxed);
    let deadline = Instant::now() + PHASE;
    let flood = flood_rate.map(|rate| {
        let client = client.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1) / rate);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            let in_flight = Arc::new(tokio::sync::Semaphore::new(512));
            let mut handles = Vec::new();
            let mut i = seed << 32;
            while Instant::now() < deadline {
                tick.tick().await;
                let permit = in_flight.clone().acquire_owned().await.unwrap();
                let client = client.clone();
                i += 1;
                handles.push(tokio::spawn(async move {
                    let (status, _) = call(&client, addr, &forge(i)).await;
                    drop(permit);
                    status
                }));
            }
            let mut answers = [0usize; 4];
            let sent = handles.len();
            for handle in handles {
                match handle.await.unwrap() {
                    401 => answers[0] += 1,
                    503 => answers[1] += 1,
                    0 => answers[3] += 1,
                    _ => answers[2] += 1,
                }
            }
            (sent, answers)
        })
    });
    let mut result = Phase {
        cached: Vec::new(),
        uncached: Vec::new(),
        real_failures: 0,
        forged_sent: 0,
        forged_answers: [0; 4],
        lookups: 0,
    };
    let mut next_uncached = 0;
    let mut tick = tokio::time::interval(Duration::from_millis(2));
    let mut n = 0u64;
    while Instant::now() < deadline {
        tick.tick().await;
        n += 1;
        let (status, took) = call(client, addr, cached).await;
        result.cached.push(took);
        result.real_failures += usize::from(status != 200);
        if n % 10 == 0 && next_uncached < fresh.len() {
            let (status, took) = call(client, addr, &fresh[next_uncached]).await;
            next_uncached += 1;
            result.uncached.push(took);
            result.real_failures += usize::from(status != 200);
        }
    }
    if let Some(flood) = flood {
        let (sent, answers) = flood.await.unwrap();
        result.forged_sent = sent;
        result.forged_answers = answers;
    }
    result.lookups = lookups.load(Ordering::Relaxed) - lookups_before - result.uncached.len();
    result
}

fn main() {
    let url = std::env::var("TOLLGATE_POSTGRES_URL").unwrap_or_else(|_| {
        panic!("TOLLGATE_POSTGRES_URL is not set: run `bash scripts/test.sh --run cargo run --release --example forged_key_flood --all-features`")
    });
    let rate: u32 = std::env::var("FLOOD_RATE")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(10_000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let pool = pg::pool(&url).unwrap();
        pg::migrate(&pool).await.unwrap();
        let store = Arc::new(PostgresKeyStore::new(pool));
        println!("forged keys at {rate}/s for {PHASE:?}, against PostgresKeyStore (16 pooled connections)");
        println!(
            "{:<16} {:<8} {:>22} {:>22} {:>8} {:>7} {:>7} {:>7} {:>16}",
            "checksum", "phase", "cached p50 / p99", "uncached p50 / p99", "failed", "forged", "401", "503", "queries/forged"
        );
        for (seed, secret) in [(1u64, false), (2, true)] {
            let lookups = Arc::new(AtomicUsize::new(0));
            let counted = Counted {
                inner: Arc::clone(&store),
                lookups: Arc::clone(&lookups),
            };
            let builder = ApiKeys::builder(counted);
            let builder = if secret {
                builder.key_format(
                    tollgate::api_key::KeyFormat::default()
                        .with_checksum_secret(b"a secret of at least 32 bytes, for the example")
                        .unwrap(),
                )
            } else {
                builder
            };
            let keys = builder.build();
            let cached = keys
                .generate(NewKey::new(format!("app-{seed}"), "Measured"))
                .await
                .unwrap()
                .key()
                .expose()
                .to_owned();
            let router = Router::new()
                .route("/", get(|| async { "ok" }))
                .route_layer(ApiKeyLayer::new(keys.clone()));
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
            let client: Http = Client::builder(TokioExecutor::new())
                .pool_max_idle_per_host(1024)
                .build_http();
            assert_eq!(call(&client, addr, &cached).await.0, 200);
            for (name, flood) in [("quiet", None), ("flooded", Some(rate))] {
                let mut p = phase(&client, addr, &keys, &cached, flood, &lookups, seed * 10 + u64::from(flood.is_some())).await;
                let cached_row = format!(
                    "{:.0?} / {:.0?}",
                    percentile(&mut p.cached, 0.5),
                    percentile(&mut p.cached, 0.99)
                );
                let uncached_row = format!(
                    "{:.0?} / {:.0?}",
                    percentile(&mut p.uncached, 0.5),
                    percentile(&mut p.uncached, 0.99)
                );
                let per_forged = if p.forged_sent == 0 {
                    "-".to_owned()
                } else {
                    format!("{:.3}", p.lookups as f64 / p.forged_sent as f64)
                };
                println!(
                    "{:<16} {:<8} {:>22} {:>22} {:>8} {:>7} {:>7} {:>7} {:>16}",
                    if secret { "keyed (secret)" } else { "public" },
                    name,
                    cached_row,
                    uncached_row,
                    p.real_failures,
                    p.forged_sent,
                    p.forged_answers[0],
                    p.forged_answers[1],
                    per_forged
                );
                if p.forged_answers[2] + p.forged_answers[3] > 0 {
                    println!(
                        "  forged keys otherwise answered: {} other statuses, {} transport errors",
                        p.forged_answers[2], p.forged_answers[3]
                    );
                }
            }
        }
    });
}
