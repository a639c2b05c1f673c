//! A fixed number of requests through each layer's hot path, for instruction counts under
//! callgrind (deterministic, so two builds can be compared on a shared, noisy machine).
//!
//! ```text
//! cargo build --release --all-features --example hot_path_profile
//! valgrind --tool=callgrind --toggle-collect='*profiled_calls*' --callgrind-out-file=/dev/null \
//!     target/release/examples/hot_path_profile api_key 20000
//! ```
//!
//! `scripts/hot-path-profile.sh` runs every row and prints instructions per request over
//! `bare`.
//!
//! Rows (first argument), each with one hot credential and a `service_fn` answering at once:
//! - `bare`: the inner service alone;
//! - `api_key`: `ApiKeyLayer`, the key cached (checksum and digest, front table, extension);
//! - `api_key_keyed`: the same with a checksum secret (`KeyFormat::with_checksum_secret`);
//! - `jwt_uncached` / `jwt_cached`: `JwtLayer` on an HS256 key, without and with the
//!   verified-token cache;
//! - `rate_limit` / `rate_limit_fields`: `RateLimitLayer` keyed by the `x-api-key` header on the
//!   in-memory store, without and with the IETF RateLimit fields;
//! - `floor_fields`: no layer, two pre-rendered field values inserted into each response (the
//!   header map's allocation included, as `bare` sends none): what sending the fields costs at
//!   least, to read `rate_limit_fields` against;
//! - `full`: API key + JWT (`AppUserLayer`, both cached) + `RequireScopesLayer` + the per-key
//!   `RateLimitLayer` with its fields, as the README's full stack.
//!
//! The second argument is the number of measured requests (default 20,000). Only
//! `profiled_calls` is counted with `--toggle-collect`; the warm-up is not.
use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::{SystemTime, UNIX_EPOCH};

use http::{HeaderValue, Request, Response};
use tollgate::Quota;
use tollgate::api_key::{ApiKeyLayer, ApiKeys, InMemoryKeyStore, NewKey};
use tollgate::app_user::{AppUserLayer, Policy};
use tollgate::jwt::{Algorithm, JwtKey, JwtLayer};
use tollgate::rate_limit::RateLimitLayer;
use tollgate::scope::RequireScopesLayer;
use tower::{Layer, Service};

#[path = "../benches/common/header_keys.rs"]
#[allow(dead_code)] // the governor extractor is for the rate-limit bench
mod header_keys;
#[path = "../benches/common/static_fields.rs"]
mod static_fields;
use static_fields::with_static_fields;

const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

type Req = Request<()>;

fn bare() -> impl Service<Req, Response = Response<String>, Error = std::convert::Infallible> + Clone
{
    tower::service_fn(|_: Req| std::future::ready(Ok(Response::new(String::new()))))
}

/// Polls a future that must finish without waiting (every row is warm).
fn now<F: Future>(future: F) -> F::Output {
    let mut cx = Context::from_waker(Waker::noop());
    match pin!(future).poll(&mut cx) {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("a warm request did not complete on its first poll"),
    }
}

struct Credentials {
    key: HeaderValue,
    bearer: HeaderValue,
}

impl Credentials {
    fn request(&self) -> Req {
        let mut request = Request::new(());
        let headers = request.headers_mut();
        headers.insert("x-api-key", self.key.clone());
        headers.insert(http::header::AUTHORIZATION, self.bearer.clone());
        request
    }
}

fn call_once<S, B>(service: &mut S, request: Req)
where
    S: Service<Req, Response = Response<B>>,
    S::Error: std::fmt::Debug,
{
    now(std::future::poll_fn(|cx| service.poll_ready(cx))).unwrap();
    let response = now(service.call(request)).unwrap();
    assert_eq!(response.status(), 200, "every measured request is admitted");
    black_box(response);
}

/// The measured calls: a symbol of its own for `--toggle-collect`.
#[inline(never)]
fn profiled_calls<S, B>(service: &mut S, credentials: &Credentials, n: usize)
where
    S: Service<Req, Response = Response<B>>,
    S::Error: std::fmt::Debug,
{
    for _ in 0..n {
        call_once(service, credentials.request());
    }
}

fn drive<S, B>(mut service: S, credentials: &Credentials, n: usize)
where
    S: Service<Req, Response = Response<B>>,
    S::Error: std::fmt::Debug,
{
    for _ in 0..100 {
        call_once(&mut service, credentials.request());
    }
    profiled_calls(&mut service, credentials, n);
}

fn main() {
    let mut args = std::env::args().skip(1);
    let row = args.next().expect("a row: bare, api_key, jwt_uncached, …");
    let n: usize = args.next().map_or(20_000, |s| s.parse().expect("a count"));

    let _ = jsonwebtoken::crypto::CryptoProvider::install_default(
        &jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER,
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let keys = if row == "api_key_keyed" {
        ApiKeys::builder(InMemoryKeyStore::new())
            .key_format(
                tollgate::api_key::KeyFormat::default()
                    .with_checksum_secret([7u8; 32])
                    .unwrap(),
            )
            .build()
    } else {
        ApiKeys::builder(InMemoryKeyStore::new()).build()
    };
    let key = runtime
        .block_on(keys.generate(NewKey::new("app-1", "Shop").scopes(["orders:read"])))
        .unwrap();
    let at = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = serde_json::json!({
        "sub": "alice", "iat": at, "exp": at + 3600, "scope": "orders:read profile",
    });
    let token = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(SECRET),
    )
    .unwrap();
    let credentials = Credentials {
        key: HeaderValue::from_str(key.key().expose()).unwrap(),
        bearer: HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
    };
    let api_key = ApiKeyLayer::new(keys);
    // The first lookup of the key awaits the store: warm the cache on the runtime.
    let warm = runtime
        .block_on(tower::ServiceExt::oneshot(
            api_key.layer(bare()),
            credentials.request(),
        ))
        .unwrap();
    assert_eq!(warm.status(), 200);

    let jwt = |cached: bool| {
        let builder = JwtLayer::builder(JwtKey::hmac(SECRET, Algorithm::HS256).unwrap());
        if cached { builder } else { builder.no_cache() }
            .build()
            .unwrap()
    };
    let huge = Quota::per_second(1_000_000_000);
    match row.as_str() {
        "bare" => drive(bare(), &credentials, n),
        "api_key" | "api_key_keyed" => drive(api_key.layer(bare()), &credentials, n),
        "jwt_uncached" => drive(jwt(false).layer(bare()), &credentials, n),
        "jwt_cached" => drive(jwt(true).layer(bare()), &credentials, n),
        "rate_limit" => drive(
            header_keys::header_layer(huge).layer(bare()),
            &credentials,
            n,
        ),
        "rate_limit_fields" => drive(
            header_keys::header_layer(huge)
                .ietf_headers(true)
                .layer(bare()),
            &credentials,
            n,
        ),
        "floor_fields" => drive(
            tower::util::MapResponseLayer::new(with_static_fields).layer(bare()),
            &credentials,
            n,
        ),
        "full" => {
            let stack = AppUserLayer::from_layers(&api_key, &jwt(true), Policy::AppAndUser).layer(
                RequireScopesLayer::all(["orders:read"])
                    .unwrap()
                    .layer(RateLimitLayer::new(huge).layer(bare())),
            );
            drive(stack, &credentials, n);
        }
        other => panic!("unknown row {other}"),
    }
}
