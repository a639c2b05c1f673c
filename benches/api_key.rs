//! Per-request overhead of `ApiKeyLayer`, against a bare service and a floor, in one run.
//!
//! - `bare`: a `service_fn` answering at once.
//! - `floor`: the least an API-key layer can do: one header read, one `HashMap` lookup, one
//!   extension insert.
//! - `cache_hit`: `ApiKeyLayer` with the key cached (checksum, SHA-256, moka, extension).
//! - `cache_miss`: `ApiKeyLayer` with the key evicted before each request (in-memory store).
//!
//! Each is measured on one thread, and on two threads at once (per-request time per thread;
//! equal to the one-thread figure when it scales) with one hot key and with distinct keys.
//!
//! `cargo bench --bench api_key --features api-key`

#![allow(missing_docs)] // criterion_group! generates an undocumented function

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::{Future, Ready, ready};
use std::hint::black_box;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use http::{HeaderValue, Request, Response};
use tollgate::api_key::{ApiKeyLayer, ApiKeys, InMemoryKeyStore, KeyDigest, NewKey};
use tollgate::identity::AppIdentity;
use tower::{Layer, Service, service_fn};

#[path = "common/stats.rs"]
mod stats;
use stats::median;

type Req = Request<()>;

fn bare() -> impl Service<
    Req,
    Response = Response<String>,
    Error = Infallible,
    Future = Ready<Result<Response<String>, Infallible>>,
> + Clone {
    service_fn(|_req: Req| ready(Ok::<_, Infallible>(Response::new(String::new()))))
}

/// Polls a future that is expected to finish without waiting.
fn run<F: Future>(future: F) -> F::Output {
    let mut cx = Context::from_waker(Waker::noop());
    match pin!(future).poll(&mut cx) {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("benchmarked future did not complete synchronously"),
    }
}

fn request(key: &HeaderValue) -> Req {
    let mut request = Request::new(());
    request.headers_mut().insert("x-api-key", key.clone());
    request
}

/// The floor: header → HashMap → extension.
#[derive(Clone)]
struct Floor<S> {
    inner: S,
    keys: Arc<HashMap<Vec<u8>, AppIdentity>>,
}

impl<S: Service<Req>> Service<Req> for Floor<S> {
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Req) -> S::Future {
        let found = req
            .headers()
            .get("x-api-key")
            .and_then(|v| self.keys.get(v.as_bytes()))
            .cloned();
        if let Some(identity) = found {
            req.extensions_mut().insert(identity);
        }
        self.inner.call(req)
    }
}

fn call_once<S: Service<Req>>(service: &mut S, key: &HeaderValue)
where
    S::Response: std::fmt::Debug,
    S::Error: std::fmt::Debug,
{
    let response = run(service.call(request(key))).unwrap();
    black_box(response);
}

/// Runs `iters` calls on each of two threads at once; returns the slower thread's time, so
/// the figure is per-request time per thread.
fn two_threads<S>(service: &S, keys: [&HeaderValue; 2], iters: u64) -> Duration
where
    S: Service<Req> + Clone + Send,
    S::Response: std::fmt::Debug,
    S::Error: std::fmt::Debug,
{
    let barrier = std::sync::Barrier::new(2);
    std::thread::scope(|scope| {
        let handles: Vec<_> = keys
            .into_iter()
            .map(|key| {
                let mut service = service.clone();
                let barrier = &barrier;
                scope.spawn(move || {
                    barrier.wait();
                    let start = Instant::now();
                    for _ in 0..iters {
                        call_once(&mut service, key);
                    }
                    start.elapsed()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap())
            .max()
            .unwrap()
    })
}

fn benches(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let keys = ApiKeys::builder(InMemoryKeyStore::new()).build();
    let (key_a, record_a) = runtime
        .block_on(keys.generate(NewKey::new("app-a", "A").scopes(["orders:read"])))
        .unwrap()
        .into_parts();
    let (key_b, _) = runtime
        .block_on(keys.generate(NewKey::new("app-b", "B").scopes(["orders:read"])))
        .unwrap()
        .into_parts();
    drop(runtime);
    let a = HeaderValue::from_str(key_a.expose()).unwrap();
    let b = HeaderValue::from_str(key_b.expose()).unwrap();
    let digest_a: KeyDigest = *record_a.digest();

    let floor = Floor {
        inner: bare(),
        keys: Arc::new(HashMap::from([
            (key_a.expose().as_bytes().to_vec(), record_a.identity()),
            (key_b.expose().as_bytes().to_vec(), record_a.identity()),
        ])),
    };
    let layered = ApiKeyLayer::new(keys.clone()).layer(bare());
    // Warm the cache.
    call_once(&mut layered.clone(), &a);
    call_once(&mut layered.clone(), &b);

    let mut group = c.benchmark_group("api_key");
    group.bench_function("bare", |bench| {
        let mut service = bare();
        bench.iter(|| call_once(&mut service, &a));
    });
    group.bench_function("floor", |bench| {
        let mut service = floor.clone();
        bench.iter(|| call_once(&mut service, &a));
    });
    group.bench_function("cache_hit", |bench| {
        let mut service = layered.clone();
        bench.iter(|| call_once(&mut service, &a));
    });
    group.bench_function("cache_miss", |bench| {
        let mut service = layered.clone();
        bench.iter(|| {
            keys.invalidate(&digest_a);
            call_once(&mut service, &a);
        });
    });
    for (name, pair) in [("hot_key", [&a, &a]), ("distinct_keys", [&a, &b])] {
        group.bench_function(format!("bare/2_threads/{name}"), |bench| {
            bench.iter_custom(|iters| two_threads(&bare(), pair, iters));
        });
        group.bench_function(format!("floor/2_threads/{name}"), |bench| {
            bench.iter_custom(|iters| two_threads(&floor, pair, iters));
        });
        group.bench_function(format!("cache_hit/2_threads/{name}"), |bench| {
            bench.iter_custom(|iters| two_threads(&layered, pair, iters));
        });
    }
    group.finish();

    // Where a cache hit's time goes.
    let mut parts = c.benchmark_group("api_key_parts");
    let format = keys.format().clone();
    parts.bench_function("format_check_and_digest", |bench| {
        bench.iter(|| black_box(format.check(black_box(a.as_bytes()))));
    });
    parts.bench_function("sha256", |bench| {
        bench.iter(|| black_box(KeyDigest::of(black_box(a.as_bytes()))));
    });
    parts.bench_function("system_time_now", |bench| {
        bench.iter(|| black_box(std::time::SystemTime::now()));
    });
    let plain: moka::sync::Cache<KeyDigest, AppIdentity> = moka::sync::Cache::new(1000);
    plain.insert(digest_a, record_a.identity());
    parts.bench_function("moka_get", |bench| {
        bench.iter(|| black_box(plain.get(black_box(&digest_a))));
    });
    let identity = record_a.identity();
    parts.bench_function("extension_insert", |bench| {
        bench.iter(|| {
            let mut request = Request::new(());
            request.extensions_mut().insert(identity.clone());
            black_box(request)
        });
    });
    parts.finish();

    paired_rounds(&floor, &layered, &a);
    #[cfg(feature = "metrics")]
    paired_observed(&keys, &layered, &a);
}

/// A cached key as today (no usage counting; its counters registered before any recorder,
/// so they are no-ops) against one with usage counting and a Prometheus recorder installed,
/// in alternating rounds: the median per-round difference is what observing costs.
#[cfg(feature = "metrics")]
fn paired_observed<L>(keys: &ApiKeys<InMemoryKeyStore>, layered: &L, key: &HeaderValue)
where
    L: Service<Req> + Clone,
    L::Response: std::fmt::Debug,
    L::Error: std::fmt::Debug,
{
    const ROUNDS: usize = 41;
    const CALLS: u32 = 20_000;
    let tracking = || {
        ApiKeys::builder(keys.store().clone())
            .track_usage(true)
            .build()
    };
    // Usage counting alone: warmed before the recorder, so its counters are no-ops.
    let counting = ApiKeyLayer::new(tracking()).layer(bare());
    call_once(&mut counting.clone(), key);
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    metrics::set_global_recorder(recorder).expect("the first recorder");
    let observed = ApiKeyLayer::new(tracking()).layer(bare());
    call_once(&mut observed.clone(), key);
    fn time<S>(mut service: S, key: &HeaderValue) -> f64
    where
        S: Service<Req>,
        S::Response: std::fmt::Debug,
        S::Error: std::fmt::Debug,
    {
        let start = Instant::now();
        for _ in 0..CALLS {
            call_once(&mut service, key);
        }
        start.elapsed().as_nanos() as f64 / f64::from(CALLS)
    }
    let (mut plain, mut usage, mut with, mut usage_diffs, mut diffs) =
        (vec![], vec![], vec![], vec![], vec![]);
    for round in 0..ROUNDS {
        let mut t = [0.0; 3];
        for i in 0..3 {
            let which = (round + i) % 3;
            t[which] = match which {
                0 => time(layered.clone(), key),
                1 => time(counting.clone(), key),
                _ => time(observed.clone(), key),
            };
        }
        plain.push(t[0]);
        usage.push(t[1]);
        with.push(t[2]);
        usage_diffs.push(t[1] - t[0]);
        diffs.push(t[2] - t[0]);
    }
    assert!(handle.render().contains("tollgate_auth_decisions_total"));
    println!(
        "api_key observed ({ROUNDS} alternating rounds of {CALLS} calls), median ns/request: \
         cache_hit {:.0}, with usage counting {:.0} (median difference +{:.1}), with usage \
         counting and a Prometheus recorder {:.0} (median difference +{:.1})",
        median(plain),
        median(usage),
        median(usage_diffs),
        median(with),
        median(diffs)
    );
}

/// Criterion's groups run one after another, so load from other processes lands on some rows
/// and not others. This measures bare, floor and cache hit in alternating rounds (order rotated
/// each round) and reports the median of each, and the median of the per-round ratio of the
/// two overheads, which is what holds on a shared machine.
fn paired_rounds<F, L>(floor: &F, layered: &L, key: &HeaderValue)
where
    F: Service<Req> + Clone,
    F::Response: std::fmt::Debug,
    F::Error: std::fmt::Debug,
    L: Service<Req> + Clone,
    L::Response: std::fmt::Debug,
    L::Error: std::fmt::Debug,
{
    const ROUNDS: usize = 41;
    const CALLS: u32 = 20_000;
    fn time<S>(mut service: S, key: &HeaderValue) -> f64
    where
        S: Service<Req>,
        S::Response: std::fmt::Debug,
        S::Error: std::fmt::Debug,
    {
        let start = Instant::now();
        for _ in 0..CALLS {
            call_once(&mut service, key);
        }
        start.elapsed().as_nanos() as f64 / f64::from(CALLS)
    }
    let (mut bare_ns, mut floor_ns, mut hit_ns, mut ratios) = (vec![], vec![], vec![], vec![]);
    for round in 0..ROUNDS {
        let mut t = [0.0; 3];
        for i in 0..3 {
            let which = (round + i) % 3;
            t[which] = match which {
                0 => time(bare(), key),
                1 => time(floor.clone(), key),
                _ => time(layered.clone(), key),
            };
        }
        bare_ns.push(t[0]);
        floor_ns.push(t[1]);
        hit_ns.push(t[2]);
        ratios.push((t[2] - t[0]) / (t[1] - t[0]));
    }
    let (bare, floor, hit) = (median(bare_ns), median(floor_ns), median(hit_ns));
    println!(
        "api_key paired ({ROUNDS} alternating rounds of {CALLS} calls), median ns/request: \
         bare {bare:.0}, floor {floor:.0} (+{:.0}), cache_hit {hit:.0} (+{:.0}); \
         median per-round overhead ratio cache_hit/floor = {:.2}",
        floor - bare,
        hit - bare,
        median(ratios)
    );
}

criterion_group!(api_key, benches);
criterion_main!(api_key);
