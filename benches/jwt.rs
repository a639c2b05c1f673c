//! Per-request cost of JWT validation, side by side: a bare `service_fn`, raw
//! `jsonwebtoken::decode`, `JwtLayer` for each algorithm (uncached and cached), and
//! jwt-authorizer 0.15 (HS256) as a plain tower layer around the same `service_fn`.
//!
//! Every service future completes on its first poll (no I/O), so it is polled once with a
//! no-op waker: what is measured is the layer, not an executor. Overhead = a row minus `bare`.
//! jwt-authorizer answers axum 0.7's body only, so its inner service answers that body
//! and its overhead is over `bare_axum07`, the same service with that body.
//!
//! ```text
//! cargo bench --features jwt --bench jwt -- --warm-up-time 1 --measurement-time 3
//! TOLLGATE_PAIRED=1 cargo bench --features jwt --bench jwt
//! ```
//!
//! Paired mode (`TOLLGATE_PAIRED=1`) runs `bare`, tollgate HS256 uncached and cached,
//! `bare_axum07` and jwt-authorizer in alternating rounds, and reports each row's median, its
//! median overhead over its bare row in the same round, and the median per-round ratio of tollgate's uncached
//! overhead to jwt-authorizer's: on a busy machine, rows measured minutes apart drift more
//! than the differences between them.

// criterion_group! generates an undocumented function.
#![allow(missing_docs)]

use std::convert::Infallible;
use std::future::{Future, Ready, ready};
use std::hint::black_box;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{SystemTime, UNIX_EPOCH};

use criterion::{Criterion, criterion_group};
use http::{HeaderValue, Request, Response};
use jsonwebtoken::{Algorithm as Alg, DecodingKey, EncodingKey, Header, Validation};
use serde_json::json;
use tollgate::jwt::{Algorithm, JwtKey, JwtLayer, Provider, StandardClaims};
use tower::{Layer, Service, service_fn};

#[path = "common/stats.rs"]
mod stats;
use stats::median;

/// The inner body of tollgate's rows (any [`tollgate::body::RejectionBody`] would do).
type Body = http_body_util::Full<bytes::Bytes>;
/// The inner body of jwt-authorizer's rows: it answers axum 0.7's `Body` only.
type Body07 = axum07::body::Body;

const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/fixtures/jwt/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

/// The inner service every tollgate row wraps.
fn bare() -> impl Service<
    Request<()>,
    Response = Response<Body>,
    Error = Infallible,
    Future = Ready<Result<Response<Body>, Infallible>>,
> + Clone {
    bare_with::<Body>()
}

/// An inner service answering an empty `B`: `Body` for tollgate, `Body07` for jwt-authorizer,
/// each row's overhead taken over the bare service with its own body.
fn bare_with<B: Default>() -> impl Service<
    Request<()>,
    Response = Response<B>,
    Error = Infallible,
    Future = Ready<Result<Response<B>, Infallible>>,
> + Clone {
    service_fn(|_request: Request<()>| ready(Ok::<_, Infallible>(Response::new(B::default()))))
}

/// Polls a future that must be ready at once.
fn now<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("the benchmarked future did not complete on its first poll"),
    }
}

/// One request through `service`, which must answer 200.
fn call<S, B>(service: &mut S, authorization: &HeaderValue)
where
    S: Service<Request<()>, Response = Response<B>>,
    S::Error: std::fmt::Debug,
{
    let mut request = Request::new(());
    request
        .headers_mut()
        .insert(http::header::AUTHORIZATION, authorization.clone());
    now(std::future::poll_fn(|cx| service.poll_ready(cx))).unwrap();
    let response = now(service.call(request)).unwrap();
    assert_eq!(response.status(), 200);
    black_box(response);
}

struct Case {
    name: &'static str,
    alg: Alg,
    signing: EncodingKey,
    decoding: DecodingKey,
    key: JwtKey,
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "HS256",
            alg: Alg::HS256,
            signing: EncodingKey::from_secret(SECRET),
            decoding: DecodingKey::from_secret(SECRET),
            key: JwtKey::hmac(SECRET, Algorithm::HS256).unwrap(),
        },
        Case {
            name: "RS256",
            alg: Alg::RS256,
            signing: EncodingKey::from_rsa_pem(&fixture("rsa.key")).unwrap(),
            decoding: DecodingKey::from_rsa_pem(&fixture("rsa.pub.pem")).unwrap(),
            key: JwtKey::rsa_pem(fixture("rsa.pub.pem"), Algorithm::RS256).unwrap(),
        },
        Case {
            name: "ES256",
            alg: Alg::ES256,
            signing: EncodingKey::from_ec_pem(&fixture("ec256.key")).unwrap(),
            decoding: DecodingKey::from_ec_pem(&fixture("ec256.pub.pem")).unwrap(),
            key: JwtKey::ec_pem(fixture("ec256.pub.pem"), Algorithm::ES256).unwrap(),
        },
        Case {
            name: "EdDSA",
            alg: Alg::EdDSA,
            signing: EncodingKey::from_ed_pem(&fixture("ed25519.key")).unwrap(),
            decoding: DecodingKey::from_ed_pem(&fixture("ed25519.pub.pem")).unwrap(),
            key: JwtKey::ed_pem(fixture("ed25519.pub.pem")).unwrap(),
        },
    ]
}

fn token(case: &Case) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = json!({
        "sub": "user-1234",
        "iat": now,
        "exp": now + 3600,
        "scope": "read write",
        "email": "someone@example.com",
    });
    jsonwebtoken::encode(&Header::new(case.alg), &claims, &case.signing).unwrap()
}

fn jwt(c: &mut Criterion) {
    let _ = jsonwebtoken::crypto::CryptoProvider::install_default(
        &jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER,
    );
    let mut group = c.benchmark_group("jwt");
    let cases = cases();

    let hs_header = HeaderValue::from_str(&format!("Bearer {}", token(&cases[0]))).unwrap();
    let mut service = bare();
    group.bench_function("bare", |b| b.iter(|| call(&mut service, &hs_header)));

    for case in &cases {
        let token = token(case);
        let header = HeaderValue::from_str(&format!("Bearer {token}")).unwrap();
        let mut validation = Validation::new(case.alg);
        validation.required_spec_claims = ["exp".to_owned()].into();
        group.bench_function(format!("jsonwebtoken_decode/{}", case.name), |b| {
            b.iter(|| {
                let data = jsonwebtoken::decode::<StandardClaims>(
                    black_box(token.as_str()),
                    &case.decoding,
                    &validation,
                )
                .unwrap();
                black_box(data);
            });
        });

        let uncached = JwtLayer::builder(case.key.clone())
            .no_cache()
            .build()
            .unwrap();
        let mut service = uncached.layer(bare());
        group.bench_function(format!("tollgate_uncached/{}", case.name), |b| {
            b.iter(|| call(&mut service, &header));
        });

        let cached = JwtLayer::builder(case.key.clone()).build().unwrap();
        let mut service = cached.layer(bare());
        group.bench_function(format!("tollgate_cached/{}", case.name), |b| {
            b.iter(|| call(&mut service, &header));
        });
    }

    providers(&mut group);

    let mut service = bare_with::<Body07>();
    group.bench_function("bare_axum07", |b| b.iter(|| call(&mut service, &hs_header)));
    let layer = authorizer();
    let mut service = layer.layer(bare_with::<Body07>());
    group.bench_function("jwt_authorizer/HS256", |b| {
        b.iter(|| call(&mut service, &hs_header));
    });
    group.finish();
}

/// jwt-authorizer 0.15 on the same HS256 secret, claims as `serde_json::Value`.
fn authorizer() -> jwt_authorizer::layer::AuthorizationLayer<serde_json::Value> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let authorizer = runtime.block_on(async {
        jwt_authorizer::JwtAuthorizer::<serde_json::Value>::from_secret(
            std::str::from_utf8(SECRET).unwrap(),
        )
        .build()
        .await
        .unwrap()
    });
    jwt_authorizer::layer::AuthorizationLayer::new(vec![Arc::new(authorizer)])
}

/// Paired mode: see the module's documentation.
fn paired() {
    let _ = jsonwebtoken::crypto::CryptoProvider::install_default(
        &jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER,
    );
    const ROUNDS: usize = 21;
    const CALLS: usize = 20_000;
    let case = &cases()[0];
    let header = HeaderValue::from_str(&format!("Bearer {}", token(case))).unwrap();
    let uncached = JwtLayer::builder(case.key.clone())
        .no_cache()
        .build()
        .unwrap();
    let cached = JwtLayer::builder(case.key.clone()).build().unwrap();
    let mut rows: Vec<(&str, Box<dyn FnMut(&HeaderValue)>)> = vec![
        ("bare", {
            let mut s = bare();
            Box::new(move |h| call(&mut s, h))
        }),
        ("tollgate_uncached/HS256", {
            let mut s = uncached.layer(bare());
            Box::new(move |h| call(&mut s, h))
        }),
        ("tollgate_cached/HS256", {
            let mut s = cached.layer(bare());
            Box::new(move |h| call(&mut s, h))
        }),
        ("bare_axum07", {
            let mut s = bare_with::<Body07>();
            Box::new(move |h| call(&mut s, h))
        }),
        ("jwt_authorizer/HS256", {
            let mut s = authorizer().layer(bare_with::<Body07>());
            Box::new(move |h| call(&mut s, h))
        }),
    ];
    let names: Vec<&str> = rows.iter().map(|(name, _)| *name).collect();
    let row = |name: &str| {
        names
            .iter()
            .position(|n| *n == name)
            .expect("a row of this mode")
    };
    // Each row's overhead is over the bare service with the same body: the nearest `bare*` row
    // listed before it.
    let base = |r: usize| {
        (0..=r)
            .rev()
            .find(|&i| names[i].starts_with("bare"))
            .expect("a bare row comes first")
    };
    let mut samples = vec![Vec::new(); rows.len()];
    for round in 0..ROUNDS {
        for r in 0..rows.len() {
            let r = (r + round) % rows.len();
            let began = std::time::Instant::now();
            for _ in 0..CALLS {
                (rows[r].1)(&header);
            }
            samples[r].push(began.elapsed().as_nanos() as f64 / CALLS as f64);
        }
    }
    let overhead = |r: usize| -> Vec<f64> {
        samples[r]
            .iter()
            .zip(&samples[base(r)])
            .map(|(row, bare)| row - bare)
            .collect()
    };
    for (r, name) in names.iter().enumerate() {
        println!(
            "{name:24} median {:8.1} ns   overhead {:8.1} ns",
            median(samples[r].clone()),
            median(overhead(r))
        );
    }
    let ratios: Vec<f64> = overhead(row("tollgate_uncached/HS256"))
        .iter()
        .zip(overhead(row("jwt_authorizer/HS256")))
        .map(|(ours, theirs)| ours / theirs)
        .collect();
    println!(
        "tollgate uncached / jwt-authorizer overhead: median {:.3} (per-round range {:.3}-{:.3})",
        median(ratios.clone()),
        ratios.iter().copied().fold(f64::MAX, f64::min),
        ratios.iter().copied().fold(f64::MIN, f64::max)
    );
}

/// One provider against two routed by `iss` (the token's issuer listed second), HS256, cached
/// and uncached: the cost of choosing a provider.
fn providers(group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>) {
    const ISS: &str = "https://auth.example";
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = json!({
        "iss": ISS,
        "sub": "user-1234",
        "iat": now,
        "exp": now + 3600,
        "scope": "read write",
    });
    let token = jsonwebtoken::encode(
        &Header::new(Alg::HS256),
        &claims,
        &EncodingKey::from_secret(SECRET),
    )
    .unwrap();
    let header = HeaderValue::from_str(&format!("Bearer {token}")).unwrap();
    let key = || JwtKey::hmac(SECRET, Algorithm::HS256).unwrap();
    let other = JwtKey::hmac([9; 32], Algorithm::HS256).unwrap();
    for cached in [false, true] {
        let one = JwtLayer::builder(key()).issuer(ISS);
        let two = JwtLayer::with_providers([
            Provider::new("https://other.example", other.clone()),
            Provider::new(ISS, key()),
        ]);
        let (one, two) = if cached {
            (one, two)
        } else {
            (one.no_cache(), two.no_cache())
        };
        let suffix = if cached { "cached" } else { "uncached" };
        let mut service = one.build().unwrap().layer(bare());
        group.bench_function(format!("providers_one_{suffix}/HS256"), |b| {
            b.iter(|| call(&mut service, &header));
        });
        let mut service = two.build().unwrap().layer(bare());
        group.bench_function(format!("providers_two_{suffix}/HS256"), |b| {
            b.iter(|| call(&mut service, &header));
        });
    }
}

criterion_group!(benches, jwt);

fn main() {
    if std::env::var_os("TOLLGATE_PAIRED").is_some() {
        paired();
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
