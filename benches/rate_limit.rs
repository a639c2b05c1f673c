//! Per-request overhead of `RateLimitLayer` next to a bare service and `tower_governor` 0.8.
//!
//! ```text
//! cargo bench --all-features --bench rate_limit -- --warm-up-time 1 --measurement-time 3
//! TOLLGATE_PAIRED=1 cargo bench --all-features --bench rate_limit
//! TOLLGATE_PAIRED=1 TOLLGATE_ROWS=no_headers,tower_governor/header TOLLGATE_KEYS=distinct \
//!     cargo bench --all-features --bench rate_limit
//! ```
//!
//! `TOLLGATE_INNER=typed` makes every row's inner service answer with a `content-type` header,
//! as an axum handler does, so the response's header map is allocated before any layer adds
//! fields (by default it answers with none, and the first field added allocates it).
//!
//! In paired mode, `TOLLGATE_ROWS` (comma-separated substrings of row names; `bare` is always
//! run) and `TOLLGATE_KEYS` (a substring of `hot_key` / `distinct_keys`) run only the matching
//! rows.
//!
//! (`--features rate-limit,governor` builds it alone.) To count instructions instead of timing:
//! `valgrind --tool=callgrind target/release/deps/rate_limit-… --bench 'fixed_window/app_key_id/hot_key/1_threads' --profile-time 3`
//! and divide `call_once`'s inclusive count by its calls.
//!
//! Every row calls a service that answers at once; the request (built the same way for every
//! row) carries an `x-api-key` header and an `AppIdentity` extension. Quotas are far above what a
//! run can spend, so every request is admitted: the figures are the cost of deciding. Rows:
//!
//! - `bare`: the service alone;
//! - `fixed_window/app_key_id`: `RateLimitLayer` in memory keyed by the `AppIdentity` key id
//!   (the default, as behind `ApiKeyLayer`), with its default IETF `RateLimit-Policy` and
//!   `RateLimit` fields on every response;
//! - `fixed_window/app_key_id/no_headers`: the same with `ietf_headers(false)`;
//! - `fixed_window/header/no_headers`: keyed by the `x-api-key` header, no fields, no plan
//!   quota read from the `AppIdentity` (so it touches the same request memory as
//!   tower_governor's row);
//! - `gcra/header/no_headers`: the GCRA store on governor, keyed by the header, likewise;
//! - `floor/two_static_fields`: no limiter, two pre-rendered field values inserted into the
//!   response: what sending the fields costs at least (the header map's allocation included,
//!   as `bare` sends none);
//! - `tower_governor/header`: tower_governor 0.8 with a key extractor reading the header (it
//!   adds no fields to an admitted response: compare with the `no_headers` rows);
//! - `tower_governor/header/headers`: the same with `use_headers()` (`x-ratelimit-limit` and
//!   `x-ratelimit-remaining` on every response: compare with `fixed_window/app_key_id`).
//!
//! Each on one hot key and on 10,000 distinct keys, from 1 thread and from 2 threads (each
//! thread runs the iterations; the slower thread's time is reported, so a row is the latency per
//! request while the other thread hammers the same limiter).

// `criterion_group!` defines an undocumented public function.
#![allow(missing_docs)]

use std::hint::black_box;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use axum::body::Body;
use criterion::{BenchmarkId, Criterion, criterion_group};
use http::{HeaderValue, Request, Response};
use tollgate::Quota;
use tollgate::identity::AppIdentity;
use tollgate::rate_limit::{GcraStore, RateLimitLayer};
use tower::{Layer, Service};

#[path = "common/header_keys.rs"]
mod header_keys;
#[path = "common/static_fields.rs"]
mod static_fields;
use header_keys::{API_KEY, GovernorHeaderKey, header_layer};
use static_fields::with_static_fields;

#[path = "common/stats.rs"]
mod stats;
use stats::median;

const DISTINCT: usize = 10_000;

#[derive(Clone)]
struct Keys {
    headers: Arc<[HeaderValue]>,
    identities: Arc<[AppIdentity]>,
}

impl Keys {
    fn new(n: usize) -> Self {
        let ids: Vec<String> = (0..n).map(|i| format!("key_{i:08}")).collect();
        Self {
            headers: ids
                .iter()
                .map(|id| HeaderValue::from_str(id).unwrap())
                .collect(),
            identities: ids
                .iter()
                .map(|id| AppIdentity::builder(id.clone(), "app").build())
                .collect(),
        }
    }

    fn request(&self, i: usize) -> Request<Body> {
        let i = i % self.headers.len();
        let mut request = Request::new(Body::empty());
        request
            .headers_mut()
            .insert(API_KEY.clone(), self.headers[i].clone());
        request.extensions_mut().insert(self.identities[i].clone());
        request
    }
}

fn bare() -> impl Service<Request<Body>, Response = Response<Body>, Error = std::convert::Infallible>
+ Clone
+ Send
+ 'static {
    let typed = std::env::var_os("TOLLGATE_INNER").is_some_and(|inner| inner == "typed");
    tower::service_fn(move |_: Request<Body>| {
        let mut response = Response::new(Body::empty());
        if typed {
            // As an axum handler returning a string answers: its header map is already
            // allocated when a layer adds fields.
            response.headers_mut().insert(
                http::header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            );
        }
        std::future::ready(Ok(response))
    })
}

/// Calls `service` once, polling its (immediately ready) future with a no-op waker.
fn call_once<S>(service: &mut S, request: Request<Body>)
where
    S: Service<Request<Body>>,
{
    let mut cx = Context::from_waker(Waker::noop());
    assert!(service.poll_ready(&mut cx).is_ready());
    let mut future = std::pin::pin!(service.call(request));
    match future.as_mut().poll(&mut cx) {
        Poll::Ready(Ok(response)) => {
            black_box(response);
        }
        _ => panic!("the service answers at once"),
    }
}

fn run(c: &mut Criterion, group: &str, make: &Make) {
    let mut g = c.benchmark_group(group);
    for (keys_name, keys) in [
        ("hot_key", Keys::new(1)),
        ("distinct_keys", Keys::new(DISTINCT)),
    ] {
        for threads in [1usize, 2] {
            // One shared limiter per row, as a server has; each thread calls its own handle.
            let handles = make();
            let mut services: Vec<_> = (0..threads).map(|_| handles()).collect();
            let keys = keys.clone();
            g.bench_function(
                BenchmarkId::new(keys_name, format!("{threads}_threads")),
                |b| {
                    b.iter_custom(|iters| {
                        let start = std::sync::Barrier::new(threads);
                        std::thread::scope(|scope| {
                            let handles: Vec<_> = services
                                .iter_mut()
                                .enumerate()
                                .map(|(t, call)| {
                                    let keys = keys.clone();
                                    let start = &start;
                                    scope.spawn(move || {
                                        start.wait();
                                        let began = Instant::now();
                                        for i in 0..iters as usize {
                                            call(keys.request(i * 7 + t * 3));
                                        }
                                        began.elapsed()
                                    })
                                })
                                .collect();
                            handles
                                .into_iter()
                                .map(|h| h.join().unwrap())
                                .max()
                                .unwrap_or(Duration::ZERO)
                        })
                    });
                },
            );
        }
    }
    g.finish();
}

/// tower_governor's builder for every request admitted, keyed by the header.
macro_rules! governor_config {
    () => {{
        let mut builder = tower_governor::governor::GovernorConfigBuilder::default();
        builder.per_nanosecond(1).burst_size(u32::MAX);
        builder.key_extractor(GovernorHeaderKey)
    }};
}

/// One thread's handle on a row's service.
type Handle = Box<dyn FnMut(Request<Body>) + Send>;
/// Builds a row's service (one limiter) and returns a maker of handles on it: every thread
/// gets a clone of the same service, so two threads share one limiter, as in a server.
type Make = Box<dyn Fn() -> Box<dyn Fn() -> Handle>>;

fn boxed<S>(make: impl Fn() -> S + 'static) -> Make
where
    S: Service<Request<Body>> + Clone + Send + 'static,
{
    Box::new(move || {
        let service = make();
        Box::new(move || {
            let mut service = service.clone();
            Box::new(move |request| call_once(&mut service, request))
        })
    })
}

/// Every row, by name.
fn rows() -> Vec<(&'static str, Make)> {
    let huge = Quota::per_second(1_000_000_000);
    vec![
        ("bare", boxed(bare)),
        (
            "fixed_window/app_key_id",
            boxed(move || RateLimitLayer::new(huge).layer(bare())),
        ),
        (
            "fixed_window/app_key_id/no_headers",
            boxed(move || RateLimitLayer::new(huge).ietf_headers(false).layer(bare())),
        ),
        // Keyed by the header like tower_governor, and like it never reading the request's
        // `AppIdentity` (see `header_layer`).
        (
            "fixed_window/header/no_headers",
            boxed(move || header_layer(huge).layer(bare())),
        ),
        (
            "gcra/header/no_headers",
            boxed(move || {
                header_layer(huge)
                    .with_store(GcraStore::new())
                    .unwrap()
                    .layer(bare())
            }),
        ),
        // The floor of any limiter that sends the fields: two values already rendered, inserted
        // into the response (allocating its header map when the service sent none).
        (
            "floor/two_static_fields",
            boxed(|| tower::util::MapResponseLayer::new(with_static_fields).layer(bare())),
        ),
        (
            "tower_governor/header",
            boxed(|| {
                let config = governor_config!().finish().unwrap();
                tower_governor::governor::Governor::new(bare(), &config)
            }),
        ),
        (
            "tower_governor/header/headers",
            boxed(|| {
                let config = governor_config!().use_headers().finish().unwrap();
                tower_governor::governor::Governor::new(bare(), &config)
            }),
        ),
    ]
}

fn benches(c: &mut Criterion) {
    for (name, make) in rows() {
        run(c, name, &make);
    }
}

criterion_group!(rate_limit, benches);

/// Paired mode (`TOLLGATE_PAIRED=1`): on a busy machine criterion's absolute figures drift
/// between rows measured minutes apart, so this runs every row in alternating rounds and reports
/// each row's median and its median paired overhead over `bare` from the same round.
fn paired() {
    let wanted = std::env::var("TOLLGATE_ROWS").unwrap_or_default();
    let keys_wanted = std::env::var("TOLLGATE_KEYS").unwrap_or_default();
    let rows: Vec<_> = rows()
        .into_iter()
        .filter(|(name, _)| {
            *name == "bare" || wanted.is_empty() || wanted.split(',').any(|w| name.contains(w))
        })
        .collect();
    const ROUNDS: usize = 21;
    const CALLS: usize = 50_000;
    for (keys_name, keys) in [
        ("hot_key", Keys::new(1)),
        ("distinct_keys", Keys::new(DISTINCT)),
    ] {
        if !keys_name.contains(keys_wanted.as_str()) {
            continue;
        }
        for threads in [1usize, 2] {
            // One shared limiter per row, as a server has; each thread calls its own handle.
            let services: Vec<Vec<_>> = rows
                .iter()
                .map(|(_, make)| {
                    let handles = make();
                    (0..threads).map(|_| handles()).collect()
                })
                .collect();
            let mut services = services;
            let mut samples = vec![Vec::new(); rows.len()];
            for round in 0..ROUNDS {
                for r in 0..rows.len() {
                    let r = (r + round) % rows.len();
                    let start = std::sync::Barrier::new(threads);
                    let keys = &keys;
                    let ns = std::thread::scope(|scope| {
                        let handles: Vec<_> = services[r]
                            .iter_mut()
                            .enumerate()
                            .map(|(t, call)| {
                                let start = &start;
                                scope.spawn(move || {
                                    start.wait();
                                    let began = Instant::now();
                                    for i in 0..CALLS {
                                        call(keys.request(i * 7 + t * 3));
                                    }
                                    began.elapsed()
                                })
                            })
                            .collect();
                        handles
                            .into_iter()
                            .map(|h| h.join().unwrap())
                            .max()
                            .unwrap()
                            .as_nanos() as f64
                            / CALLS as f64
                    });
                    samples[r].push(ns);
                }
            }
            for (r, (name, _)) in rows.iter().enumerate() {
                let overhead: Vec<f64> = samples[r]
                    .iter()
                    .zip(&samples[0])
                    .map(|(row, bare)| row - bare)
                    .collect();
                println!(
                    "{keys_name:13} {threads} thread(s)  {name:24} median {:7.1} ns   overhead {:7.1} ns",
                    median(samples[r].clone()),
                    median(overhead)
                );
            }
        }
    }
}

fn main() {
    if std::env::var_os("TOLLGATE_PAIRED").is_some() {
        paired();
        return;
    }
    rate_limit();
    Criterion::default().configure_from_args().final_summary();
}
