//! Per-request cost of authorization next to authentication, in one run:
//!
//! - `bare`: a `service_fn` answering at once (request with credential headers).
//! - `bare_authenticated`: the same service, the request carrying an `AppIdentity` and a
//!   `UserIdentity` already (as the authentication layers leave it): the baseline of `scopes`.
//! - `scopes`: `RequireScopesLayer::all(["orders:read"])` alone over that request
//!   (intersection of app and user scopes).
//! - `combined`: `AppUserLayer` (API key cached in moka + HS256 JWT cached), app *and* user.
//! - `combined_scopes`: both, as a route in seed 000 would stack them.
//!
//! Every future completes on its first poll and is polled once with a no-op waker. Overheads
//! are a row minus its baseline; the paired rounds at the end give medians that hold on a
//! shared machine and the ratio the issue targets (scope check < 10% of the combined layer).
//!
//! ```text
//! cargo bench --bench scopes --features api-key,jwt -- --warm-up-time 1 --measurement-time 2
//! ```

#![allow(missing_docs)] // criterion_group! generates an undocumented function

use std::convert::Infallible;
use std::future::{Future, Ready, ready};
use std::hint::black_box;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use criterion::{Criterion, criterion_group, criterion_main};
use http::{HeaderValue, Request, Response};
use serde_json::json;
use tollgate::api_key::{ApiKeyLayer, ApiKeys, InMemoryKeyStore, NewKey};
use tollgate::app_user::{AppUserLayer, Policy};
use tollgate::identity::{AppIdentity, UserIdentity};
use tollgate::jwt::{Algorithm, JwtKey, JwtLayer};
use tollgate::scope::RequireScopesLayer;
use tower::{Layer, Service, ServiceExt, service_fn};

#[path = "common/stats.rs"]
mod stats;
use stats::median;

type Req = Request<()>;

const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

fn bare() -> impl Service<
    Req,
    Response = Response<String>,
    Error = Infallible,
    Future = Ready<Result<Response<String>, Infallible>>,
> + Clone {
    service_fn(|_req: Req| ready(Ok::<_, Infallible>(Response::new(String::new()))))
}

/// Polls a future that must be ready at once.
fn run<F: Future>(future: F) -> F::Output {
    match pin!(future).poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("the benchmarked future did not complete on its first poll"),
    }
}

/// What each request is made from.
#[derive(Clone)]
struct Inputs {
    key: HeaderValue,
    bearer: HeaderValue,
    app: AppIdentity,
    user: UserIdentity,
}

impl Inputs {
    /// A request with both credentials in headers.
    fn with_credentials(&self) -> Req {
        let mut request = Request::new(());
        request.headers_mut().insert("x-api-key", self.key.clone());
        request
            .headers_mut()
            .insert("authorization", self.bearer.clone());
        request
    }

    /// A request as the authentication layers leave it: both identities inserted.
    fn authenticated(&self) -> Req {
        let mut request = self.with_credentials();
        request.extensions_mut().insert(self.app.clone());
        request.extensions_mut().insert(self.user.clone());
        request
    }
}

fn call<S>(service: &mut S, request: Req)
where
    S: Service<Req>,
    S::Response: std::fmt::Debug,
    S::Error: std::fmt::Debug,
{
    black_box(run(service.call(request)).unwrap());
}

fn inputs() -> (Inputs, ApiKeys<InMemoryKeyStore>, JwtLayer) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let keys = ApiKeys::builder(InMemoryKeyStore::new()).build();
    let (key, record) = runtime
        .block_on(
            keys.generate(NewKey::new("app-1", "Shop").scopes(["orders:read", "orders:write"])),
        )
        .unwrap()
        .into_parts();
    let _ = jsonwebtoken::crypto::CryptoProvider::install_default(
        &jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER,
    );
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims =
        json!({"sub": "alice", "iat": now, "exp": now + 3600, "scope": "orders:read profile"});
    let token = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(SECRET),
    )
    .unwrap();
    let jwt = JwtLayer::builder(JwtKey::hmac(SECRET, Algorithm::HS256).unwrap())
        .build()
        .unwrap();
    let inputs = Inputs {
        key: HeaderValue::from_str(key.expose()).unwrap(),
        bearer: HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
        app: record.identity(),
        user: UserIdentity::new(Some("alice".into()), ["orders:read", "profile"]),
    };
    // Warm the key cache and the token cache (the first key lookup awaits the store).
    let combined =
        AppUserLayer::from_layers(&ApiKeyLayer::new(keys.clone()), &jwt, Policy::AppAndUser)
            .layer(bare());
    let warmed = runtime
        .block_on(combined.oneshot(inputs.with_credentials()))
        .unwrap();
    assert_eq!(warmed.status(), 200);
    (inputs, keys, jwt)
}

fn benches(c: &mut Criterion) {
    let (inputs, keys, jwt) = inputs();
    let scopes = RequireScopesLayer::all(["orders:read"])
        .unwrap()
        .layer(bare());
    let combined_layer =
        AppUserLayer::from_layers(&ApiKeyLayer::new(keys), &jwt, Policy::AppAndUser);
    let combined = combined_layer.layer(bare());
    let combined_scopes = combined_layer.layer(
        RequireScopesLayer::all(["orders:read"])
            .unwrap()
            .layer(bare()),
    );
    // Each layered row must pass, not be refused cheaply.
    assert_eq!(
        run(scopes.clone().call(inputs.authenticated()))
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        run(combined.clone().call(inputs.with_credentials()))
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        run(combined_scopes.clone().call(inputs.with_credentials()))
            .unwrap()
            .status(),
        200
    );

    let mut group = c.benchmark_group("scopes");
    group.bench_function("bare", |b| {
        let mut service = bare();
        b.iter(|| call(&mut service, inputs.with_credentials()));
    });
    group.bench_function("bare_authenticated", |b| {
        let mut service = bare();
        b.iter(|| call(&mut service, inputs.authenticated()));
    });
    group.bench_function("scopes", |b| {
        let mut service = scopes.clone();
        b.iter(|| call(&mut service, inputs.authenticated()));
    });
    group.bench_function("combined", |b| {
        let mut service = combined.clone();
        b.iter(|| call(&mut service, inputs.with_credentials()));
    });
    group.bench_function("combined_scopes", |b| {
        let mut service = combined_scopes.clone();
        b.iter(|| call(&mut service, inputs.with_credentials()));
    });
    group.finish();

    paired_rounds(&inputs, &scopes, &combined, &combined_scopes);
}

/// Criterion's rows run one after another, so load from other processes lands on some rows
/// and not others. This times the four services in alternating rounds (order rotated each
/// round) and reports medians, and the median per-round ratio of the two overheads.
fn paired_rounds<Sc, Co, CS>(inputs: &Inputs, scopes: &Sc, combined: &Co, combined_scopes: &CS)
where
    CS: Service<Req> + Clone,
    CS::Response: std::fmt::Debug,
    CS::Error: std::fmt::Debug,
    Sc: Service<Req> + Clone,
    Sc::Response: std::fmt::Debug,
    Sc::Error: std::fmt::Debug,
    Co: Service<Req> + Clone,
    Co::Response: std::fmt::Debug,
    Co::Error: std::fmt::Debug,
{
    const ROUNDS: usize = 31;
    const CALLS: u32 = 20_000;
    fn time<S>(mut service: S, make: impl Fn() -> Req) -> f64
    where
        S: Service<Req>,
        S::Response: std::fmt::Debug,
        S::Error: std::fmt::Debug,
    {
        let start = Instant::now();
        for _ in 0..CALLS {
            call(&mut service, make());
        }
        start.elapsed().as_nanos() as f64 / f64::from(CALLS)
    }
    let mut rows: [Vec<f64>; 5] = Default::default();
    let mut ratios = Vec::with_capacity(ROUNDS);
    for round in 0..ROUNDS {
        let mut t = [0.0; 5];
        for i in 0..5 {
            let which = (round + i) % 5;
            t[which] = match which {
                0 => time(bare(), || inputs.with_credentials()),
                1 => time(bare(), || inputs.authenticated()),
                2 => time(scopes.clone(), || inputs.authenticated()),
                3 => time(combined.clone(), || inputs.with_credentials()),
                _ => time(combined_scopes.clone(), || inputs.with_credentials()),
            };
        }
        for (row, value) in rows.iter_mut().zip(t) {
            row.push(value);
        }
        ratios.push((t[2] - t[1]) / (t[3] - t[0]));
    }
    let [bare, bare_auth, scopes, combined, combined_scopes] = rows.map(median);
    println!(
        "scopes paired ({ROUNDS} alternating rounds of {CALLS} calls), median ns/request: \
         bare {bare:.0}, bare_authenticated {bare_auth:.0}, scopes {scopes:.0} (+{:.0}), \
         combined {combined:.0} (+{:.0}), combined_scopes {combined_scopes:.0} (+{:.0}); \
         median per-round ratio scope/combined overhead = {:.3}",
        scopes - bare_auth,
        combined - bare,
        combined_scopes - bare,
        median(ratios)
    );
}

criterion_group!(scopes, benches);
criterion_main!(scopes);
