//! Per-key usage through real axum servers, flushed to the real PostgreSQL of
//! `scripts/test.sh`: two instances counting the same keys add up, refusals are counted by
//! reason, 429s against the key, and the listings find idle and expiring keys.

use std::time::{Duration, SystemTime};

use tollgate::Quota;
use tollgate::api_key::postgres::PostgresKeyStore;
use tollgate::api_key::{ApiKeyLayer, ApiKeys, NewKey};
use tollgate::rate_limit::RateLimitLayer;

use crate::postgres::migrated_pool;
use crate::servers::unique;
use crate::support::{HttpClient, serve_axum};

async fn instance() -> (ApiKeys<PostgresKeyStore>, HttpClient) {
    let keys = ApiKeys::builder(PostgresKeyStore::new(migrated_pool().await))
        .track_usage(true)
        .build();
    let router = axum::Router::new()
        .route("/", axum::routing::get(|| async { "ok" }))
        .route_layer(
            tower::ServiceBuilder::new()
                .layer(ApiKeyLayer::new(keys.clone()))
                .layer(RateLimitLayer::new(Quota::per_hour(1_000))),
        );
    (keys, HttpClient::new(serve_axum(router).await))
}

async fn hit(client: &HttpClient, key: &str, times: usize) -> Vec<u16> {
    let mut out = Vec::new();
    for _ in 0..times {
        out.push(
            client
                .get("/", &[("x-api-key", key.as_bytes())])
                .await
                .status
                .as_u16(),
        );
    }
    out
}

#[tokio::test]
async fn two_instances_flushing_to_one_database_add_up() {
    let ((a, client_a), (b, client_b)) = (instance().await, instance().await);
    let app = unique("usage");
    let busy = a.generate(NewKey::new(&app, "Busy")).await.unwrap();
    let limited = a
        .generate(NewKey::new(&app, "Busy").quota(Quota::per_hour(3)))
        .await
        .unwrap();
    let idle = a.generate(NewKey::new(&app, "Busy")).await.unwrap();
    let busy_key = busy.key().expose().to_owned();

    assert!(hit(&client_a, &busy_key, 7).await.iter().all(|s| *s == 200));
    assert!(hit(&client_b, &busy_key, 5).await.iter().all(|s| *s == 200));
    // 3 admitted, then 429s: counted against the key on whichever instance refused them.
    let statuses = hit(&client_a, limited.key().expose(), 5).await;
    assert_eq!(statuses, [200, 200, 200, 429, 429]);

    a.flush_usage().await.unwrap();
    b.flush_usage().await.unwrap();
    let record = |id: String| {
        let a = a.clone();
        async move {
            a.all_keys()
                .await
                .unwrap()
                .into_iter()
                .find(|r| r.id() == id)
                .unwrap()
        }
    };
    let busy_record = record(busy.record().id().to_owned()).await;
    assert_eq!(
        busy_record.usage().counts.authenticated,
        12,
        "7 on A + 5 on B"
    );
    let last = busy_record.usage().last_used_at.expect("a last use");
    assert!(SystemTime::now().duration_since(last).unwrap() < Duration::from_secs(60));
    let limited_record = record(limited.record().id().to_owned()).await;
    assert_eq!(limited_record.usage().counts.authenticated, 5);
    assert_eq!(limited_record.usage().counts.rate_limited, 2);

    // Refusals by reason: revoke the busy key, call it on B, flush again.
    a.revoke(busy.record().id()).await.unwrap();
    b.invalidate(busy.record().digest());
    assert!(hit(&client_b, &busy_key, 4).await.iter().all(|s| *s == 401));
    b.flush_usage().await.unwrap();
    let busy_record = record(busy.record().id().to_owned()).await;
    assert_eq!(busy_record.usage().counts.authenticated, 12);
    assert_eq!(busy_record.usage().counts.revoked, 4);
    assert_eq!(busy_record.usage().counts.refused(), 4);
    assert_eq!(b.flush_usage().await.unwrap(), 0, "nothing new to write");

    let app_usage = a.app_usage(&app).await.unwrap();
    assert_eq!(app_usage.authenticated, 17);
    assert_eq!(app_usage.rate_limited, 2);

    // The idle key was never used; the used ones were, just now.
    let unused: Vec<String> = a
        .unused_for(Duration::ZERO)
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.app_id() == app)
        .map(|r| r.id().to_owned())
        .collect();
    assert!(unused.contains(&idle.record().id().to_owned()));
    let unused_a_day: Vec<String> = a
        .unused_for(Duration::from_secs(86_400))
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.app_id() == app)
        .map(|r| r.id().to_owned())
        .collect();
    assert!(unused_a_day.is_empty(), "made just now: {unused_a_day:?}");
}

#[tokio::test]
async fn the_flush_task_writes_on_its_interval_and_once_more_at_shutdown_and_expiring_keys_are_listed()
 {
    let (keys, client) = instance().await;
    let app = unique("usage-task");
    let soon = SystemTime::now() + Duration::from_secs(3 * 86_400);
    let key = keys
        .generate(NewKey::new(&app, "Soon").expires_at(soon))
        .await
        .unwrap();
    let later = keys
        .generate(
            NewKey::new(&app, "Later")
                .expires_at(SystemTime::now() + Duration::from_secs(90 * 86_400)),
        )
        .await
        .unwrap();
    let flush = keys.spawn_usage_flush(Duration::from_millis(100));
    hit(&client, key.key().expose(), 3).await;
    let counted = |keys: ApiKeys<PostgresKeyStore>, id: String| async move {
        keys.all_keys()
            .await
            .unwrap()
            .into_iter()
            .find(|r| r.id() == id)
            .unwrap()
            .usage()
            .counts
            .authenticated
    };
    let id = key.record().id().to_owned();
    let started = std::time::Instant::now();
    while counted(keys.clone(), id.clone()).await < 3 {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the interval flush wrote"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    hit(&client, key.key().expose(), 2).await;
    flush.shutdown().await.unwrap();
    assert_eq!(
        counted(keys.clone(), id).await,
        5,
        "the last flush at shutdown"
    );

    let expiring: Vec<String> = keys
        .expiring_within(Duration::from_secs(7 * 86_400))
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.app_id() == app)
        .map(|r| r.id().to_owned())
        .collect();
    assert_eq!(expiring, [key.record().id().to_owned()]);
    assert!(!expiring.contains(&later.record().id().to_owned()));
}
