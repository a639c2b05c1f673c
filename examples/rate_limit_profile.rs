//! A fixed number of rate-limit decisions on distinct keys, for instruction and cache-miss
//! counts (timings on a shared machine are too noisy to compare small changes).
//!
//! ```text
//! cargo build --release --all-features --example rate_limit_profile
//! valgrind --tool=callgrind --cache-sim=yes --toggle-collect='*profiled_calls*' \
//!     target/release/examples/rate_limit_profile header 100000
//! ```
//!
//! Rows (first argument): `bare`, `appkey` (`RateLimitLayer` keyed by the `AppIdentity`, no
//! fields), `header` (keyed by the `x-api-key` header, no fields, no plan quota read), `gcra`
//! (as `header` on the `GcraStore`) and `governor` (tower_governor keyed by the header), as in
//! `benches/rate_limit.rs`. Then the number of measured calls (default 100,000) and of distinct
//! keys (default 10,000). Every key is tracked before the measured calls; only
//! `profiled_calls` is counted with `--toggle-collect`, so a row's figures divided by the calls,
//! minus `bare`'s, are its overhead per request.
use std::hint::black_box;
use std::task::{Context, Poll, Waker};

use axum::body::Body;
use http::{HeaderValue, Request, Response};
use tollgate::Quota;
use tollgate::identity::AppIdentity;
use tollgate::rate_limit::{GcraStore, RateLimitLayer};
use tower::{Layer, Service};

#[path = "../benches/common/header_keys.rs"]
mod header_keys;
use header_keys::{API_KEY, GovernorHeaderKey, header_layer};

fn bare()
-> impl Service<Request<Body>, Response = Response<Body>, Error = std::convert::Infallible> + Clone
{
    tower::service_fn(|_: Request<Body>| std::future::ready(Ok(Response::new(Body::empty()))))
}

fn call_once<S: Service<Request<Body>>>(service: &mut S, request: Request<Body>) {
    let mut cx = Context::from_waker(Waker::noop());
    assert!(service.poll_ready(&mut cx).is_ready());
    let mut future = std::pin::pin!(service.call(request));
    match future.as_mut().poll(&mut cx) {
        Poll::Ready(Ok(response)) => {
            black_box(response);
        }
        _ => panic!(),
    }
}

struct Keys {
    headers: Vec<HeaderValue>,
    ids: Vec<AppIdentity>,
}
impl Keys {
    fn request(&self, i: usize) -> Request<Body> {
        let i = i % self.headers.len();
        let mut r = Request::new(Body::empty());
        r.headers_mut()
            .insert(API_KEY.clone(), self.headers[i].clone());
        r.extensions_mut().insert(self.ids[i].clone());
        r
    }
}

/// The measured calls (a separate symbol for `--toggle-collect`, named so that no other
/// function matches the pattern: `--toggle-collect` flips collection on entering *any* match,
/// and governor's `measure_and_replace` would switch it off inside the call).
#[inline(never)]
fn profiled_calls<S: Service<Request<Body>>>(s: &mut S, keys: &Keys, n: usize) {
    for i in 0..n {
        call_once(s, keys.request(i * 7));
    }
}

fn drive<S: Service<Request<Body>>>(mut s: S, keys: &Keys, n: usize) {
    for i in 0..keys.headers.len() * 7 {
        call_once(&mut s, keys.request(i));
    }
    profiled_calls(&mut s, keys, n);
}

fn main() {
    let mut args = std::env::args().skip(1);
    let row = args.next().unwrap();
    let n: usize = args.next().map_or(100_000, |s| s.parse().unwrap());
    let distinct: usize = args.next().map_or(10_000, |s| s.parse().unwrap());
    let ids: Vec<String> = (0..distinct).map(|i| format!("key_{i:08}")).collect();
    let keys = Keys {
        headers: ids
            .iter()
            .map(|id| HeaderValue::from_str(id).unwrap())
            .collect(),
        ids: ids
            .iter()
            .map(|id| AppIdentity::builder(id.clone(), "app").build())
            .collect(),
    };
    let huge = Quota::per_second(1_000_000_000);
    match row.as_str() {
        "bare" => drive(bare(), &keys, n),
        "appkey" => drive(
            RateLimitLayer::new(huge).ietf_headers(false).layer(bare()),
            &keys,
            n,
        ),
        "header" => drive(header_layer(huge).layer(bare()), &keys, n),
        "gcra" => drive(
            header_layer(huge)
                .with_store(GcraStore::new())
                .unwrap()
                .layer(bare()),
            &keys,
            n,
        ),
        "governor" => {
            let mut b = tower_governor::governor::GovernorConfigBuilder::default();
            b.per_nanosecond(1).burst_size(u32::MAX);
            let config = b.key_extractor(GovernorHeaderKey).finish().unwrap();
            drive(
                tower_governor::governor::Governor::new(bare(), &config),
                &keys,
                n,
            )
        }
        _ => panic!("row"),
    }
}
