//! `PostgresKeyStore` against the real PostgreSQL server `scripts/test.sh` starts.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::routing::get;
use axum::{Extension, Router};
use tollgate::Quota;
use tollgate::api_key::postgres::{self as pg, PostgresKeyStore};
use tollgate::api_key::{
    ApiKeyLayer, ApiKeyRecord, ApiKeys, KeyFormat, KeyStore, NewKey, StoreErrorKind,
};
use tollgate::clock::ManualClock;
use tollgate::identity::{AppIdentity, KeySlot};
use tollgate::rejection::RejectionKind;

use crate::servers::{Proxy, postgres_url, unique};
use crate::support::{HttpClient, serve_axum};

/// A pool on the test server with tollgate's schema applied.
pub(crate) async fn migrated_pool() -> pg::deadpool_postgres::Pool {
    let pool = pg::pool(&postgres_url()).unwrap();
    pg::migrate(&pool).await.unwrap();
    pool
}

async fn whoami(Extension(app): Extension<AppIdentity>) -> String {
    format!("{} {}", app.app_id(), app.scopes().join(","))
}

fn router<K: KeyStore>(keys: ApiKeys<K>) -> Router {
    Router::new()
        .route("/whoami", get(whoami))
        .route_layer(ApiKeyLayer::new(keys))
}

fn start_of_2030() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_893_456_000)
}

fn rejection(result: Result<AppIdentity, tollgate::rejection::Rejection>) -> RejectionKind {
    result.expect_err("the key was accepted").kind()
}

#[tokio::test]
async fn layer_on_axum_reads_keys_from_postgres_through_the_cache() {
    let keys = ApiKeys::builder(PostgresKeyStore::new(migrated_pool().await)).build();
    let app = unique("pg-layer");
    let key = keys
        .generate(NewKey::new(&app, "Orders").scopes(["orders:read", "orders:write"]))
        .await
        .unwrap();
    let client = HttpClient::new(serve_axum(router(keys.clone())).await);
    let header = key.key().expose().as_bytes();

    for _ in 0..2 {
        let answer = client.get("/whoami", &[("x-api-key", header)]).await;
        assert_eq!(answer.status, 200, "{}", answer.text());
        assert_eq!(answer.text(), format!("{app} orders:read,orders:write"));
    }
    assert!(keys.cached_entries() >= 1, "the key was not cached");

    let stranger = KeyFormat::default().generate();
    let answer = client
        .get("/whoami", &[("x-api-key", stranger.expose().as_bytes())])
        .await;
    assert_eq!(answer.status, 401);
    assert_eq!(answer.json()["code"], "invalid_credential");
}

#[tokio::test]
async fn records_round_trip_with_every_field() {
    let store = PostgresKeyStore::new(migrated_pool().await);
    let app = unique("pg-fields");
    let digest = KeyFormat::default().generate().digest();
    // Whole microseconds: timestamptz keeps no more.
    let created = start_of_2030() + Duration::from_micros(123_456);
    let record = ApiKeyRecord::new(unique("key"), &app, digest, "tg_ab…yz", created)
        .with_app_name("Billing")
        .with_scopes(["a:read", "b:write"])
        .with_slot(KeySlot::Secondary)
        .with_expires_at(Some(created + Duration::from_secs(3600)))
        .with_quota(Quota::new(250, Duration::from_millis(1500)))
        .with_metadata(BTreeMap::from([
            ("team".to_owned(), "payments".to_owned()),
            ("ticket".to_owned(), "OPS-1".to_owned()),
        ]));
    store.insert(record.clone()).await.unwrap();

    assert_eq!(
        store.find_by_digest(&digest).await.unwrap(),
        Some(record.clone())
    );
    assert_eq!(store.list(&app).await.unwrap(), vec![record.clone()]);

    let again = store.insert(record.clone()).await.unwrap_err();
    assert_eq!(again.kind(), StoreErrorKind::Conflict);
    let same_digest = ApiKeyRecord::new(unique("key"), &app, digest, "", created);
    let err = store.insert(same_digest).await.unwrap_err();
    assert_eq!(err.kind(), StoreErrorKind::Conflict);

    let revoked = store.revoke(record.id(), created).await.unwrap().unwrap();
    assert!(!revoked.is_active());
    assert!(
        !store
            .find_by_digest(&digest)
            .await
            .unwrap()
            .unwrap()
            .is_active()
    );
    assert_eq!(
        store.revoke(&unique("no-such-key"), created).await.unwrap(),
        None
    );
    assert_eq!(store.list(&unique("no-such-app")).await.unwrap(), vec![]);
}

#[tokio::test]
async fn rotation_with_grace_and_revocation_are_persisted() {
    let pool = migrated_pool().await;
    let clock = ManualClock::new(start_of_2030());
    let node = |pool: &pg::deadpool_postgres::Pool| {
        ApiKeys::builder(PostgresKeyStore::new(pool.clone()))
            .clock(clock.clone())
            .build()
    };
    let keys = node(&pool);
    let app = unique("pg-rotate");
    let old = keys.generate(NewKey::new(&app, "Sync")).await.unwrap();
    let old_key = old.key().expose().to_owned();
    let secondary = keys
        .generate(NewKey::new(&app, "Sync").slot(KeySlot::Secondary))
        .await
        .unwrap();

    clock.advance(Duration::from_secs(1));
    let rotation = keys
        .rotate(NewKey::new(&app, "Sync"), Duration::from_secs(3600))
        .await
        .unwrap();
    assert_eq!(rotation.retired().len(), 1, "only the primary is retired");
    assert_eq!(rotation.retired()[0].id(), old.record().id());
    let new_key = rotation.generated().key().expose().to_owned();

    // Another instance on the same database, with a cache of its own, sees the same state.
    let other = node(&pool);
    assert!(
        other.verify(&old_key).await.is_ok(),
        "old key works in its grace"
    );
    assert!(other.verify(&new_key).await.is_ok());
    let listed = other.list(&app).await.unwrap();
    assert_eq!(listed.len(), 3);
    assert_eq!(
        listed[0].id(),
        rotation.generated().record().id(),
        "newest first"
    );
    assert_eq!(
        other
            .current(&app, KeySlot::Primary)
            .await
            .unwrap()
            .unwrap()
            .id(),
        rotation.generated().record().id()
    );

    clock.advance(Duration::from_secs(3601));
    let later = node(&pool);
    assert_eq!(
        rejection(later.verify(&old_key).await),
        RejectionKind::ExpiredCredential
    );
    assert!(later.verify(&new_key).await.is_ok());
    assert!(
        later.verify(secondary.key().expose()).await.is_ok(),
        "the other slot is untouched"
    );

    assert!(
        keys.revoke(rotation.generated().record().id())
            .await
            .unwrap()
    );
    let after = node(&pool);
    assert_eq!(
        rejection(after.verify(&new_key).await),
        RejectionKind::RevokedCredential
    );

    // A zero grace retires at once.
    let rotation = keys
        .rotate(
            NewKey::new(&app, "Sync").slot(KeySlot::Secondary),
            Duration::ZERO,
        )
        .await
        .unwrap();
    assert_eq!(rotation.retired().len(), 1);
    assert_eq!(
        rejection(node(&pool).verify(secondary.key().expose()).await),
        RejectionKind::ExpiredCredential
    );
}

#[tokio::test]
async fn concurrent_rotations_of_one_slot_leave_exactly_one_current_key() {
    let keys = ApiKeys::builder(PostgresKeyStore::new(migrated_pool().await)).build();
    let app = unique("pg-concurrent");
    keys.generate(NewKey::new(&app, "Race")).await.unwrap();

    // The slot's very first key is raced too: no row exists yet in the secondary slot.
    let mut tasks = Vec::new();
    for i in 0..16 {
        let keys = keys.clone();
        let slot = if i % 2 == 0 {
            KeySlot::Primary
        } else {
            KeySlot::Secondary
        };
        let app = app.clone();
        tasks.push(tokio::spawn(async move {
            keys.rotate(
                NewKey::new(&app, "Race").slot(slot),
                Duration::from_secs(3600),
            )
            .await
            .unwrap()
        }));
    }
    let mut retired_total = 0;
    for task in tasks {
        retired_total += task.await.unwrap().retired().len();
    }

    let records = keys.list(&app).await.unwrap();
    assert_eq!(records.len(), 17);
    for slot in [KeySlot::Primary, KeySlot::Secondary] {
        let in_slot: Vec<_> = records.iter().filter(|r| r.slot() == slot).collect();
        let unexpiring = in_slot.iter().filter(|r| r.expires_at().is_none()).count();
        assert_eq!(
            unexpiring, 1,
            "{slot:?}: one current key, every other one retired"
        );
    }
    // Every key but the current one of each slot was retired by some rotation (a key can be
    // retired twice: a rotation that read the clock earlier but got the lock later brings its
    // expiry forward, as the in-memory store would).
    assert!(retired_total >= 15, "{retired_total}");
}

#[tokio::test]
async fn digest_lookups_use_the_unique_index() {
    let pool = migrated_pool().await;
    let client = pool.get().await.unwrap();
    let row = client
        .query_one(
            "SELECT indexdef FROM pg_indexes WHERE tablename = 'tollgate_api_keys' \
             AND indexname = 'tollgate_api_keys_digest_key'",
            &[],
        )
        .await
        .unwrap();
    let definition: String = row.get(0);
    assert!(
        definition.starts_with("CREATE UNIQUE INDEX") && definition.contains("(digest)"),
        "{definition}"
    );

    // With sequential scans priced out (a test table is too small for the planner to prefer
    // an index otherwise), the store's lookup plans as a scan of that index.
    client
        .batch_execute("SET enable_seqscan = off")
        .await
        .unwrap();
    let digest: &[u8] = &[7u8; 32];
    let plan: Vec<String> = client
        .query(
            "EXPLAIN SELECT id FROM tollgate_api_keys WHERE digest = $1",
            &[&digest],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    let plan = plan.join("\n");
    assert!(
        plan.contains("tollgate_api_keys_digest_key"),
        "the lookup does not use the index:\n{plan}"
    );
    client.batch_execute("RESET enable_seqscan").await.unwrap();
}

#[tokio::test]
async fn migrate_is_idempotent_and_safe_when_run_concurrently() {
    let url = postgres_url();
    let runs: Vec<_> = (0..4)
        .map(|_| {
            let url = url.clone();
            tokio::spawn(async move { pg::migrate(&pg::pool(&url).unwrap()).await.unwrap() })
        })
        .collect();
    let mut applied = Vec::new();
    for run in runs {
        applied.extend(run.await.unwrap());
    }
    assert!(
        applied.len() <= pg::MIGRATIONS.len(),
        "applied twice: {applied:?}"
    );
    let pool = migrated_pool().await;
    assert_eq!(pg::migrate(&pool).await.unwrap(), Vec::<i32>::new());
    let versions: Vec<i32> = pool
        .get()
        .await
        .unwrap()
        .query(
            "SELECT version FROM tollgate_schema_migrations ORDER BY version",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    let shipped: Vec<i32> = pg::MIGRATIONS.iter().map(|m| m.version()).collect();
    assert_eq!(versions, shipped);
}

#[tokio::test]
async fn postgres_down_cached_keys_work_until_their_ttl_and_unknown_keys_get_503() {
    // Keys are created directly on the server; the service reads them through a proxy.
    let direct = ApiKeys::builder(PostgresKeyStore::new(migrated_pool().await)).build();
    let app = unique("pg-outage");
    let key = direct.generate(NewKey::new(&app, "Outage")).await.unwrap();
    let unseen = direct.generate(NewKey::new(&app, "Outage")).await.unwrap();

    let url = postgres_url();
    let config: pg::tokio_postgres::Config = url.parse().unwrap();
    let port = config.get_ports()[0];
    let proxy = Proxy::start(SocketAddr::from(([127, 0, 0, 1], port))).await;
    let proxied = url.replace(&format!(":{port}/"), &format!(":{}/", proxy.addr().port()));
    assert_ne!(proxied, url);

    let clock = ManualClock::new(SystemTime::now());
    let keys = ApiKeys::builder(PostgresKeyStore::connect(&proxied).unwrap())
        .clock(clock.clone())
        .positive_ttl(Duration::from_secs(60))
        .lookup_timeout(Duration::from_secs(3))
        .build();
    let client = HttpClient::new(serve_axum(router(keys)).await);
    let call = |key: String| {
        let client = client.clone();
        async move {
            client
                .get("/whoami", &[("x-api-key", key.as_bytes())])
                .await
        }
    };
    let key = key.key().expose().to_owned();
    assert_eq!(call(key.clone()).await.status, 200, "warm the cache");

    proxy.cut().await;

    let started = std::time::Instant::now();
    assert_eq!(
        call(key.clone()).await.status,
        200,
        "a cached key keeps working"
    );
    let answer = call(unseen.key().expose().to_owned()).await;
    assert_eq!(answer.status, 503, "{}", answer.text());
    assert_eq!(answer.json()["code"], "unavailable");
    let stranger = KeyFormat::default().generate().expose().to_owned();
    assert_eq!(call(stranger).await.status, 503);

    clock.advance(Duration::from_secs(61));
    assert_eq!(
        call(key).await.status,
        503,
        "past its TTL the cached key needs the store"
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "failures must be fast, not wait for timeouts: {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn pooled_connections_carry_a_statement_timeout() {
    let pool = pg::pool(&postgres_url()).unwrap();
    let client = pool.get().await.unwrap();
    let timeout: String = client
        .query_one("SHOW statement_timeout", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(timeout, "5s");
    let status = pool.status();
    assert_eq!(status.max_size, 16);
    assert!(pool.timeouts().wait.is_some() && pool.timeouts().create.is_some());

    // A statement past it is cancelled by the server, not left to run.
    client
        .batch_execute("SET statement_timeout = 50")
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let error = client
        .batch_execute("SELECT pg_sleep(5)")
        .await
        .unwrap_err();
    assert_eq!(
        error.code(),
        Some(&pg::tokio_postgres::error::SqlState::QUERY_CANCELED)
    );
    assert!(started.elapsed() < Duration::from_secs(2));
    client
        .batch_execute("RESET statement_timeout")
        .await
        .unwrap();
}

/// A grace the clock can hold but PostgreSQL's `timestamptz` cannot (2^45 s, about a million
/// years): the old key is kept until the year 9999, neither retired at once by a wrapped
/// timestamp nor a panic.
#[tokio::test]
async fn a_grace_past_what_postgres_holds_keeps_the_old_key() {
    let pool = migrated_pool().await;
    let keys = ApiKeys::builder(PostgresKeyStore::new(pool)).build();
    let app = unique("pg-long-grace");
    let old = keys.generate(NewKey::new(&app, "Sync")).await.unwrap();
    for grace in [1_u64 << 45, 10_000_000_000_000] {
        let rotation = keys
            .rotate(NewKey::new(&app, "Sync"), Duration::from_secs(grace))
            .await
            .unwrap();
        keys.invalidate_all();
        assert!(
            keys.verify(old.key().expose()).await.is_ok(),
            "the old key was retired by a grace of {grace} s"
        );
        assert!(
            keys.verify(rotation.generated().key().expose())
                .await
                .is_ok()
        );
    }
}
