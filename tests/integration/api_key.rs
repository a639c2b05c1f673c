//! `ApiKeyLayer` through real axum and tonic servers on 127.0.0.1.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::routing::get;
use axum::{Extension, Router};
use futures_util::future::join_all;
use tokio::sync::Semaphore;
use tollgate::api_key::{ApiKeyLayer, ApiKeys, InMemoryKeyStore, KeyDigest, NewKey, StoreError};
use tollgate::clock::ManualClock;
use tollgate::identity::{AppIdentity, KeySlot};

use crate::support::{Answer, HttpClient, ProbeServer, call_whoami, serve_axum, serve_tonic};

/// A real in-memory store with a fault switch, a lookup counter and a gate that can hold
/// lookups: what the tests need to see outages, single-flight and negative caching.
#[derive(Clone, Default)]
struct InstrumentedStore {
    inner: InMemoryKeyStore,
    lookups: Arc<AtomicUsize>,
    down: Arc<AtomicBool>,
    hang: Arc<AtomicBool>,
    gate: Arc<Gate>,
}

struct Gate {
    held: AtomicBool,
    permits: Semaphore,
}

impl Default for Gate {
    fn default() -> Self {
        Self {
            held: AtomicBool::new(false),
            permits: Semaphore::new(0),
        }
    }
}

impl InstrumentedStore {
    fn lookups(&self) -> usize {
        self.lookups.load(Ordering::SeqCst)
    }
}

delegate_key_store!(InstrumentedStore, |this, digest| {
    this.lookups.fetch_add(1, Ordering::SeqCst);
    if this.gate.held.load(Ordering::SeqCst) {
        this.gate.permits.acquire().await.unwrap().forget();
    }
    if this.hang.load(Ordering::SeqCst) {
        std::future::pending::<()>().await;
    }
    if this.down.load(Ordering::SeqCst) {
        return Err(StoreError::unavailable("connection refused"));
    }
    this.inner.find_by_digest(digest).await
});

fn start_of_2030() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_893_456_000)
}

struct Fixture {
    keys: ApiKeys<InstrumentedStore>,
    store: InstrumentedStore,
    clock: ManualClock,
    client: HttpClient,
}

async fn whoami(Extension(app): Extension<AppIdentity>) -> String {
    format!(
        "{} {} {}",
        app.app_id(),
        app.app_name(),
        app.scopes().join(",")
    )
}

async fn fixture() -> Fixture {
    let store = InstrumentedStore::default();
    let clock = ManualClock::new(start_of_2030());
    let keys = ApiKeys::builder(store.clone())
        .clock(clock.clone())
        .lookup_timeout(Duration::from_millis(300))
        .build();
    let router = Router::new()
        .route("/whoami", get(whoami))
        .route_layer(ApiKeyLayer::new(keys.clone()));
    let client = HttpClient::new(serve_axum(router).await);
    Fixture {
        keys,
        store,
        clock,
        client,
    }
}

impl Fixture {
    async fn key(&self, new: NewKey) -> String {
        self.keys
            .generate(new)
            .await
            .unwrap()
            .key()
            .expose()
            .to_owned()
    }

    async fn call(&self, key: &str) -> Answer {
        self.client
            .get("/whoami", &[("x-api-key", key.as_bytes())])
            .await
    }
}

fn assert_rejected(answer: &Answer, status: u16, code: &str) {
    assert_eq!(answer.status, status, "{answer:?}");
    assert_eq!(
        answer.header("content-type"),
        Some("application/problem+json")
    );
    let body = answer.json();
    assert_eq!(body["code"], code, "{body}");
    assert_eq!(body["status"], status);
    if status == 401 {
        let challenge = answer.header("www-authenticate").unwrap();
        assert!(
            challenge.starts_with(r#"ApiKey header="x-api-key""#),
            "{challenge}"
        );
    }
}

#[tokio::test]
async fn valid_key_reaches_the_handler_as_an_identity() {
    let f = fixture().await;
    let key = f
        .key(NewKey::new("app-1", "Orders sync").scopes(["orders:write", "orders:read"]))
        .await;
    let answer = f.call(&key).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.text(), "app-1 Orders sync orders:read,orders:write");
}

#[tokio::test]
async fn every_kind_of_bad_key_gets_a_401_with_its_code() {
    let f = fixture().await;
    let good = f.key(NewKey::new("app-1", "A")).await;
    let expiring = f
        .key(NewKey::new("app-2", "B").expires_at(start_of_2030() + Duration::from_secs(60)))
        .await;
    let revoked = f.keys.generate(NewKey::new("app-3", "C")).await.unwrap();
    assert!(f.keys.revoke(revoked.record().id()).await.unwrap());
    let unknown = f.keys.format().generate().into_plaintext();
    let mut bad_checksum = good.clone().into_bytes();
    let last = bad_checksum.len() - 1;
    bad_checksum[last] = if bad_checksum[last] == b'a' {
        b'b'
    } else {
        b'a'
    };
    f.clock.advance(Duration::from_secs(61));

    let missing = f.client.get("/whoami", &[]).await;
    assert_rejected(&missing, 401, "missing_credential");
    assert_eq!(
        missing.header("www-authenticate"),
        Some(r#"ApiKey header="x-api-key""#)
    );

    assert_rejected(&f.call("not-a-key").await, 401, "malformed_credential");
    assert_rejected(
        &f.call(std::str::from_utf8(&bad_checksum).unwrap()).await,
        401,
        "malformed_credential",
    );
    assert_rejected(&f.call(&unknown).await, 401, "invalid_credential");
    assert_rejected(&f.call(&expiring).await, 401, "expired_credential");
    assert_rejected(
        &f.call(revoked.key().expose()).await,
        401,
        "revoked_credential",
    );
    let answer = f.call(&unknown).await;
    assert_eq!(
        answer.header("www-authenticate"),
        Some(r#"ApiKey header="x-api-key", error="invalid_credential""#)
    );
    // Malformed keys are refused before the store: only the unknown, expired and revoked keys
    // (one lookup each, then cached) reached it.
    assert_eq!(f.store.lookups(), 3);
    // And no rejection ever echoes the key.
    for key in [&good, &unknown, &expiring] {
        assert!(!String::from_utf8_lossy(&f.call(key).await.body).contains(&key[3..]));
    }
}

#[tokio::test]
async fn hostile_headers_get_a_clean_4xx() {
    let f = fixture().await;
    let key = f.key(NewKey::new("app-1", "A")).await;
    let other = f.key(NewKey::new("app-2", "B")).await;

    let huge = vec![b'a'; 64 * 1024];
    let answer = f.client.get("/whoami", &[("x-api-key", &huge)]).await;
    assert!(answer.status.is_client_error(), "{:?}", answer.status);

    let answer = f
        .client
        .get("/whoami", &[("x-api-key", b"tg_\xff\xfe\x80")])
        .await;
    assert_rejected(&answer, 401, "malformed_credential");

    let answer = f
        .client
        .get(
            "/whoami",
            &[
                ("x-api-key", key.as_bytes()),
                ("x-api-key", other.as_bytes()),
            ],
        )
        .await;
    assert_rejected(&answer, 400, "invalid_request");
    let answer = f
        .client
        .get(
            "/whoami",
            &[("x-api-key", key.as_bytes()), ("x-api-key", key.as_bytes())],
        )
        .await;
    assert_rejected(&answer, 400, "invalid_request");

    let spaced = format!("{} {}", &key[..10], &key[10..]);
    assert_rejected(&f.call(&spaced).await, 401, "malformed_credential");
    // Surrounding whitespace is not part of the key (HTTP strips it; so do we).
    assert_eq!(f.call(&format!("{key}\t")).await.status, 200);
    assert_rejected(&f.call("").await, 401, "malformed_credential");
}

#[tokio::test]
async fn store_failures_fail_closed_with_503_and_never_hang() {
    let f = fixture().await;
    let key = f.key(NewKey::new("app-1", "A")).await;
    let cached = f.key(NewKey::new("app-2", "B")).await;
    assert_eq!(f.call(&cached).await.status, 200);

    f.store.down.store(true, Ordering::SeqCst);
    let answer = f.call(&key).await;
    assert_eq!(answer.status, 503);
    assert_eq!(answer.json()["code"], "unavailable");
    assert!(answer.header("www-authenticate").is_none());
    // A key already in the cache keeps working while the store is down.
    assert_eq!(f.call(&cached).await.status, 200);

    f.store.down.store(false, Ordering::SeqCst);
    f.store.hang.store(true, Ordering::SeqCst);
    let started = std::time::Instant::now();
    let answer = f.call(&key).await;
    assert_eq!(answer.status, 503);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );

    // Failures are not cached: once the store is back, so is the key.
    f.store.hang.store(false, Ordering::SeqCst);
    assert_eq!(f.call(&key).await.status, 200);
}

#[tokio::test]
async fn concurrent_misses_for_one_key_cause_one_lookup() {
    let f = fixture().await;
    let key = f.key(NewKey::new("app-1", "A")).await;
    f.store.gate.held.store(true, Ordering::SeqCst);

    // join_all polls every verify once (each joins the flight) before the held lookup is
    // released.
    let verifies = (0..32).map(|_| f.keys.verify(&key));
    let all = join_all(verifies);
    let release = async {
        while f.store.lookups() == 0 {
            tokio::task::yield_now().await;
        }
        f.store.gate.permits.add_permits(1);
    };
    let (results, ()) = tokio::join!(all, release);
    assert!(results.iter().all(Result::is_ok));
    assert_eq!(f.store.lookups(), 1);

    // The same over real sockets: 16 concurrent requests for another uncached key.
    let other = f.key(NewKey::new("app-2", "B")).await;
    let requests = (0..16).map(|_| f.call(&other));
    let all = join_all(requests);
    let release = async {
        while f.store.lookups() == 1 {
            tokio::task::yield_now().await;
        }
        // Give the other requests time to arrive and join the flight.
        tokio::time::sleep(Duration::from_millis(200)).await;
        f.store.gate.permits.add_permits(1);
    };
    let (answers, ()) = tokio::join!(all, release);
    assert!(answers.iter().all(|a| a.status == 200));
    assert_eq!(f.store.lookups(), 2);
}

#[tokio::test]
async fn unknown_keys_are_negatively_cached_for_the_negative_ttl() {
    let f = fixture().await;
    let unknown = f.keys.format().generate().into_plaintext();
    for _ in 0..5 {
        assert_rejected(&f.call(&unknown).await, 401, "invalid_credential");
    }
    assert_eq!(f.store.lookups(), 1);
    f.clock.advance(Duration::from_secs(11)); // default negative TTL is 10 s
    assert_rejected(&f.call(&unknown).await, 401, "invalid_credential");
    assert_eq!(f.store.lookups(), 2);

    // A positive entry lasts the positive TTL (60 s), then the store is asked again.
    let key = f.key(NewKey::new("app-1", "A")).await;
    for _ in 0..3 {
        assert_eq!(f.call(&key).await.status, 200);
    }
    assert_eq!(f.store.lookups(), 3);
    f.clock.advance(Duration::from_secs(61));
    assert_eq!(f.call(&key).await.status, 200);
    assert_eq!(f.store.lookups(), 4);
}

#[tokio::test]
async fn revoking_a_cached_key_takes_effect_immediately() {
    let f = fixture().await;
    let created = f.keys.generate(NewKey::new("app-1", "A")).await.unwrap();
    let key = created.key().expose();
    assert_eq!(f.call(key).await.status, 200);
    assert_eq!(f.call(key).await.status, 200);
    assert!(f.keys.revoke(created.record().id()).await.unwrap());
    assert_rejected(&f.call(key).await, 401, "revoked_credential");
    assert!(!f.keys.revoke("key_does_not_exist").await.unwrap());
}

#[tokio::test]
async fn rotation_keeps_the_old_key_for_the_grace_period_only() {
    let f = fixture().await;
    let old = f
        .key(
            NewKey::new("app-1", "A")
                .slot(KeySlot::Primary)
                .scopes(["orders:read"]),
        )
        .await;
    let secondary = f
        .key(NewKey::new("app-1", "A").slot(KeySlot::Secondary))
        .await;
    assert_eq!(f.call(&old).await.status, 200);

    let rotation = f
        .keys
        .rotate(
            NewKey::new("app-1", "A")
                .slot(KeySlot::Primary)
                .scopes(["orders:read"]),
            Duration::from_secs(3600),
        )
        .await
        .unwrap();
    let new = rotation.generated().key().expose().to_owned();
    assert_eq!(
        rotation.retired().len(),
        1,
        "only the primary slot is replaced"
    );
    assert_eq!(
        rotation.retired()[0].expires_at(),
        Some(start_of_2030() + Duration::from_secs(3600))
    );

    // During the grace period both keys work.
    assert_eq!(f.call(&old).await.status, 200);
    assert_eq!(f.call(&new).await.status, 200);
    f.clock.advance(Duration::from_secs(3599));
    assert_eq!(f.call(&old).await.status, 200);
    // At its end the old key expires; the new one and the other slot go on.
    f.clock.advance(Duration::from_secs(1));
    assert_rejected(&f.call(&old).await, 401, "expired_credential");
    assert_eq!(f.call(&new).await.status, 200);
    assert_eq!(f.call(&secondary).await.status, 200);

    // A zero grace retires the current key at once (seed 001's semantics).
    let newest = f
        .keys
        .rotate(NewKey::new("app-1", "A"), Duration::ZERO)
        .await
        .unwrap();
    assert_rejected(&f.call(&new).await, 401, "expired_credential");
    assert_eq!(f.call(newest.generated().key().expose()).await.status, 200);

    // Listing shows masked hints only, newest first.
    let listed = f.keys.list("app-1").await.unwrap();
    assert_eq!(listed.len(), 4);
    for record in &listed {
        assert!(record.hint().starts_with("tg_…"));
        assert!(!format!("{record:?}").contains(&new[3..]));
    }
    let current = f
        .keys
        .current("app-1", KeySlot::Primary)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(current.id(), newest.generated().record().id());
}

#[tokio::test]
async fn query_parameter_only_when_enabled() {
    let keys = ApiKeys::builder(InMemoryKeyStore::new()).build();
    let key = keys.generate(NewKey::new("app-1", "A")).await.unwrap();
    let key = key.key().expose();
    let router = Router::new()
        .route("/header-only", get(|| async { "ok" }))
        .route_layer(ApiKeyLayer::new(keys.clone()))
        .merge(
            Router::new()
                .route("/query", get(|| async { "ok" }))
                .route_layer(ApiKeyLayer::new(keys).query_param("api_key")),
        );
    let client = HttpClient::new(serve_axum(router).await);

    let answer = client
        .get(&format!("/header-only?api_key={key}"), &[])
        .await;
    assert_rejected(&answer, 401, "missing_credential");
    assert_eq!(
        client
            .get(&format!("/query?api_key={key}"), &[])
            .await
            .status,
        200
    );
    let both = client
        .get(
            &format!("/query?api_key={key}"),
            &[("x-api-key", key.as_bytes())],
        )
        .await;
    assert_rejected(&both, 400, "invalid_request");
    let twice = client
        .get(&format!("/query?api_key={key}&api_key={key}"), &[])
        .await;
    assert_rejected(&twice, 400, "invalid_request");
}

#[tokio::test]
async fn tonic_server_sees_the_identity_and_clients_see_statuses() {
    let store = InstrumentedStore::default();
    let keys = ApiKeys::builder(store.clone()).build();
    let key = keys
        .generate(NewKey::new("app-9", "Mobile backend"))
        .await
        .unwrap();
    let probe = ProbeServer::new(|ext| {
        ext.get::<AppIdentity>()
            .map_or_else(|| "nobody".to_owned(), |app| app.app_id().to_owned())
    });
    let addr = serve_tonic(ApiKeyLayer::new(keys.clone()), probe).await;

    let caller = call_whoami(addr, &[("x-api-key", key.key().expose())]).await;
    assert_eq!(caller.unwrap(), "app-9");

    let status = call_whoami(addr, &[]).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unauthenticated);
    let status = call_whoami(addr, &[("x-api-key", "tg_nope")])
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unauthenticated);
    assert_eq!(status.message(), "The credential is not well-formed.");

    store.down.store(true, Ordering::SeqCst);
    let fresh = keys.generate(NewKey::new("app-10", "X")).await.unwrap();
    let status = call_whoami(addr, &[("x-api-key", fresh.key().expose())])
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unavailable);
}

#[tokio::test]
async fn the_invalidate_hook_hears_retired_revoked_and_imported_keys_only() {
    let heard = Arc::new(std::sync::Mutex::new(Vec::<KeyDigest>::new()));
    let record = Arc::clone(&heard);
    let keys = ApiKeys::builder(InMemoryKeyStore::new())
        .on_invalidate(Arc::new(move |digest: &KeyDigest| {
            record.lock().unwrap().push(*digest);
        }))
        .build();
    let take = || std::mem::take(&mut *heard.lock().unwrap());

    let first = keys
        .generate(NewKey::new("app-hook", "Hook"))
        .await
        .unwrap();
    assert_eq!(take(), vec![], "a fresh key is nobody's stale entry");

    let rotation = keys
        .rotate(NewKey::new("app-hook", "Hook"), Duration::ZERO)
        .await
        .unwrap();
    let new = *rotation.generated().record().digest();
    assert_eq!(
        take(),
        vec![*first.record().digest()],
        "the retired key only"
    );

    let imported = tollgate::api_key::KeyFormat::default().generate();
    keys.import(&imported, NewKey::new("app-hook", "Hook"))
        .await
        .unwrap();
    assert_eq!(take(), vec![imported.digest()]);

    assert!(
        keys.revoke(rotation.generated().record().id())
            .await
            .unwrap()
    );
    assert_eq!(take(), vec![new]);
    assert!(!keys.revoke("key_missing").await.unwrap());
    assert_eq!(take(), vec![]);

    // Evictions received from elsewhere are not echoed.
    keys.invalidate(&new);
    keys.invalidate_all();
    assert_eq!(take(), vec![]);
}

#[tokio::test]
async fn invalidate_all_empties_the_cache() {
    let f = fixture().await;
    let key = f.key(NewKey::new("app-all", "All")).await;
    assert_eq!(f.call(&key).await.status, 200);
    let before = f.store.lookups();
    assert_eq!(f.call(&key).await.status, 200);
    assert_eq!(f.store.lookups(), before, "cached");
    f.keys.invalidate_all();
    assert_eq!(f.call(&key).await.status, 200);
    assert_eq!(f.store.lookups(), before + 1, "looked up again");
}
