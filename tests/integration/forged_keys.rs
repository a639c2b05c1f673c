//! Forged API keys (well-formed, with the public checksum anyone can compute) against a real
//! axum server: how many reach the store, how many at once, and whether real keys keep
//! working meanwhile. Also: a grace period too long for the clock is not a panic.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use futures_util::future::join_all;
use tollgate::api_key::{ApiKeyLayer, ApiKeys, InMemoryKeyStore, KeyFormat, NewKey};

use crate::support::{HttpClient, serve_axum};

#[path = "../../examples/common/forge.rs"]
mod forge;
use forge::forge;

/// The real in-memory store, slowed to 20 ms a lookup (a busy database), counting lookups and
/// the most in flight at once.
#[derive(Clone, Default)]
struct Measured {
    inner: InMemoryKeyStore,
    lookups: Arc<AtomicUsize>,
    in_flight: Arc<AtomicUsize>,
    most_in_flight: Arc<AtomicUsize>,
}

delegate_key_store!(Measured, |this, digest| {
    this.lookups.fetch_add(1, Ordering::SeqCst);
    let now = this.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    this.most_in_flight.fetch_max(now, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(20)).await;
    this.in_flight.fetch_sub(1, Ordering::SeqCst);
    this.inner.find_by_digest(digest).await
});

async fn server(keys: &ApiKeys<Measured>) -> HttpClient {
    let router = Router::new()
        .route("/", get(|| async { "ok" }))
        .route_layer(ApiKeyLayer::new(keys.clone()));
    HttpClient::new(serve_axum(router).await)
}

#[tokio::test]
async fn a_flood_of_forged_keys_reaches_the_store_a_bounded_number_at_a_time() {
    let store = Measured::default();
    let keys = ApiKeys::builder(store.clone()).build();
    let cached = keys.generate(NewKey::new("a", "A")).await.unwrap();
    let uncached = keys.generate(NewKey::new("b", "B")).await.unwrap();
    let client = server(&keys).await;
    let call = |key: String| {
        let client = client.clone();
        async move { client.get("/", &[("x-api-key", key.as_bytes())]).await }
    };
    assert_eq!(call(cached.key().expose().to_owned()).await.status, 200);
    assert!(keys.format().is_well_formed(forge(0).as_bytes()));

    // 300 forged keys at once, and the real keys in the middle of them.
    let flood = join_all((0..300).map(|i| call(forge(i))));
    let real = async {
        tokio::time::sleep(Duration::from_millis(5)).await;
        (
            call(cached.key().expose().to_owned()).await.status,
            call(uncached.key().expose().to_owned()).await.status,
        )
    };
    let (answers, (cached_status, uncached_status)) = tokio::join!(flood, real);
    // The store never saw more than the default 16 lookups at a time (before: all 300).
    let most = store.most_in_flight.load(Ordering::SeqCst);
    assert!(most <= 16, "{most} lookups in flight at once");
    // Each forged key is a 401, or a 503 with Retry-After when its turn did not come within
    // the lookup timeout; never a 500.
    for answer in &answers {
        match answer.status.as_u16() {
            401 => {}
            503 => assert_eq!(answer.header("retry-after"), Some("1")),
            other => panic!("a forged key got {other}"),
        }
    }
    assert_eq!(cached_status, 200, "a cached key never waits for a lookup");
    assert!(
        [200, 503].contains(&uncached_status.as_u16()),
        "{uncached_status}"
    );
    // Once the flood is over, the uncached key is looked up and admitted.
    assert_eq!(call(uncached.key().expose().to_owned()).await.status, 200);
}

#[tokio::test]
async fn with_a_checksum_secret_forged_keys_never_reach_the_store() {
    let store = Measured::default();
    let keys = ApiKeys::builder(store.clone())
        .key_format(
            KeyFormat::default()
                .with_checksum_secret([7u8; 32])
                .unwrap(),
        )
        .build();
    let real = keys.generate(NewKey::new("a", "A")).await.unwrap();
    let client = server(&keys).await;
    for i in 0..500 {
        let forged = forge(i);
        assert!(!keys.format().is_well_formed(forged.as_bytes()));
        let answer = client.get("/", &[("x-api-key", forged.as_bytes())]).await;
        assert_eq!(answer.status, 401);
        assert_eq!(answer.json()["code"], "malformed_credential");
    }
    assert_eq!(store.lookups.load(Ordering::SeqCst), 0, "no store lookup");
    assert_eq!(keys.cached_entries(), 0, "no cache entry");
    // The real key, made under the secret, works; the same random part with the public
    // checksum does not.
    let real = real.key().expose();
    assert_eq!(
        client
            .get("/", &[("x-api-key", real.as_bytes())])
            .await
            .status,
        200
    );
    assert_eq!(store.lookups.load(Ordering::SeqCst), 1);
    // Cached now: it is admitted without the HMAC (its checksum digits were checked when it
    // was cached), but the same body with other checksum digits is still refused.
    assert_eq!(
        client
            .get("/", &[("x-api-key", real.as_bytes())])
            .await
            .status,
        200
    );
    let (body, digits) = real.split_at(real.len() - 6);
    for digits in [
        "000000".to_owned(),
        format!(
            "{}{}",
            &digits[..5],
            if digits.ends_with('A') { 'B' } else { 'A' }
        ),
    ] {
        let tampered = format!("{body}{digits}");
        let answer = client.get("/", &[("x-api-key", tampered.as_bytes())]).await;
        assert_eq!(answer.status, 401, "{tampered}");
        assert_eq!(answer.json()["code"], "malformed_credential");
    }
    assert_eq!(store.lookups.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn checksum_secrets_can_be_changed_and_introduced() {
    let old = ApiKeys::builder(InMemoryKeyStore::new()).build();
    let unkeyed = old.generate(NewKey::new("a", "A")).await.unwrap();
    let store = old.store().clone();
    let first = ApiKeys::builder(store.clone())
        .key_format(
            KeyFormat::default()
                .with_checksum_secret([1u8; 32])
                .unwrap(),
        )
        .build();
    let under_first = first.generate(NewKey::new("b", "B")).await.unwrap();
    assert!(
        !first
            .format()
            .is_well_formed(unkeyed.key().expose().as_bytes())
    );
    // Moving to a secret: the old, unkeyed keys still work while they are rotated out.
    let moving = tollgate::api_key::KeyFormat::default()
        .with_checksum_secret([1u8; 32])
        .unwrap()
        .accept_unkeyed_checksums(true)
        .unwrap();
    assert!(moving.is_well_formed(unkeyed.key().expose().as_bytes()));
    // A new secret: keys made under the previous one keep working.
    let second = tollgate::api_key::KeyFormat::default()
        .with_checksum_secret([1u8; 32])
        .unwrap()
        .with_checksum_secret([2u8; 32])
        .unwrap();
    assert!(second.is_well_formed(under_first.key().expose().as_bytes()));
    assert!(!second.is_well_formed(unkeyed.key().expose().as_bytes()));
    let keys = ApiKeys::builder(store).key_format(second).build();
    assert!(keys.verify(under_first.key().expose()).await.is_ok());
    // Short secrets are refused.
    assert!(KeyFormat::default().with_checksum_secret(b"short").is_err());
}

#[tokio::test]
async fn a_grace_too_long_for_the_clock_keeps_the_old_key_instead_of_panicking() {
    let keys = ApiKeys::builder(InMemoryKeyStore::new()).build();
    let old = keys.generate(NewKey::new("a", "A")).await.unwrap();
    let k = keys.clone();
    // (The example's admin endpoint passed JSON `graceSeconds` straight through.)
    let rotated = tokio::spawn(async move {
        k.rotate(NewKey::new("a", "A"), Duration::from_secs(u64::MAX))
            .await
    })
    .await
    .expect("rotate did not panic")
    .unwrap();
    assert!(keys.verify(old.key().expose()).await.is_ok());
    assert!(
        keys.verify(rotated.generated().key().expose())
            .await
            .is_ok()
    );
}
