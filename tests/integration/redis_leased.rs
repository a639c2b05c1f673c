//! Leased limits through real axum servers, on the real Redis server and the real cluster:
//! two instances sharing one hot key never admit more than the limit together, make far fewer
//! round trips than decisions, and keep `RateLimit` and `Retry-After` truthful.

use std::time::Duration;

use axum::Router;
use axum::routing::get;
use tollgate::Quota;
use tollgate::rate_limit::redis::{Leasing, RedisStore};
use tollgate::rate_limit::{Key, RateLimitLayer, RequestHead};
use tollgate::redis::RedisTarget;

use crate::cluster_admin;
use crate::servers::unique;
use crate::support::{HttpClient, serve_axum};

type ByClient = fn(&RequestHead<'_>) -> Option<Key<'static>>;

fn by_client(head: &RequestHead<'_>) -> Option<Key<'static>> {
    let value = head.headers().get("x-client")?;
    Some(Key::from(value.as_bytes().to_vec()))
}

async fn instance(target: &RedisTarget, prefix: &str, quota: Quota) -> (HttpClient, RedisStore) {
    let store = RedisStore::builder()
        .prefix(prefix)
        .leased(Leasing::new())
        .connect(target)
        .await
        .unwrap();
    let layer = RateLimitLayer::new(quota)
        .key(by_client as ByClient)
        .with_store(store.clone())
        .unwrap()
        .ietf_headers(true)
        .store_timeout(Some(Duration::from_secs(5)));
    let router = Router::new()
        .route("/", get(|| async { "ok" }))
        .route_layer(layer);
    (HttpClient::new(serve_axum(router).await), store)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leased_instances_never_admit_more_than_the_limit_together_with_few_round_trips() {
    const LIMIT: u64 = 400;
    const TASKS: usize = 16;
    const EACH: usize = 50;
    let quota = Quota::new(LIMIT, Duration::from_secs(30 * 86_400)).unwrap();
    for (name, target, _guard) in cluster_admin::both().await {
        let prefix = unique("tollgate-test:leased");
        let (a, store_a) = instance(&target, &prefix, quota).await;
        let (b, store_b) = instance(&target, &prefix, quota).await;
        let tasks: Vec<_> = (0..TASKS)
            .map(|i| {
                let client = if i % 2 == 0 { a.clone() } else { b.clone() };
                tokio::spawn(async move {
                    let mut seen = Vec::new();
                    for _ in 0..EACH {
                        let answer = client.get("/", &[("x-client", b"hot".as_slice())]).await;
                        let status = answer.status.as_u16();
                        let remaining: u64 = answer
                            .header("ratelimit")
                            .and_then(|h| h.split(";r=").nth(1))
                            .and_then(|r| r.split(';').next())
                            .and_then(|r| r.parse().ok())
                            .expect("every answer says what remains");
                        let retry_after = answer.header("retry-after").map(str::to_owned);
                        seen.push((status, remaining, retry_after));
                    }
                    seen
                })
            })
            .collect();
        let mut seen = Vec::new();
        for task in tasks {
            seen.extend(task.await.unwrap());
        }
        let admitted = seen.iter().filter(|(s, ..)| *s == 200).count() as u64;
        let trips = store_a.round_trips() + store_b.round_trips();
        eprintln!(
            "{name}: {admitted} admitted of {} with {trips} round trips",
            seen.len()
        );
        assert!(
            admitted <= LIMIT,
            "{name}: {admitted} admitted over {LIMIT}"
        );
        // Each instance keeps asking until the end, so it spends what it holds: the most left
        // stranded is what the last reservations handed out.
        assert!(
            admitted + 2 * (LIMIT / 16) >= LIMIT,
            "{name}: only {admitted} admitted"
        );
        assert!(
            trips * 4 <= admitted,
            "{name}: {trips} round trips for {admitted} decisions"
        );
        for (status, remaining, retry_after) in &seen {
            assert!(*remaining <= LIMIT);
            match status {
                200 => assert!(retry_after.is_none()),
                429 => {
                    assert_eq!(*remaining, 0, "{name}: a refusal says nothing remains");
                    let secs: u64 = retry_after.as_deref().unwrap().parse().unwrap();
                    assert!(secs > 0 && secs <= 30 * 86_400);
                }
                other => panic!("{name}: status {other}"),
            }
        }
        // The counter in Redis holds at least what was admitted: never less than the truth.
        let mut raw = cluster_admin::raw(&target).await;
        let counted: u64 = redis::cmd("HGET")
            .arg(store_a.counter_key(b"hot", 0, quota.window()))
            .arg("c")
            .query_async(&mut raw)
            .await
            .unwrap();
        assert!(
            counted >= admitted && counted <= LIMIT,
            "{name}: {counted} counted"
        );
    }
}

/// A lease ends with the window its units were reserved in (measured from before the
/// reservation was sent): the first hit after a boundary asks Redis again, even with units
/// left over.
#[tokio::test]
async fn a_lease_is_never_spent_past_its_windows_end() {
    use std::time::{SystemTime, UNIX_EPOCH};
    use tollgate::rate_limit::{Hit, RateLimitStore};

    for (name, target, _guard) in cluster_admin::both().await {
        let store = RedisStore::builder()
            .prefix(unique("tollgate-test:lease-end"))
            // Slices grow fast and far: the lease holds many units at the boundary.
            .leased(
                Leasing::new()
                    .period(Duration::from_secs(10))
                    .max_share(1.0),
            )
            .connect(&target)
            .await
            .unwrap();
        let quotas = [Quota::new(1_000, Duration::from_secs(1)).unwrap()];
        let into_second = || {
            let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
            Duration::from_nanos(u64::from(now.subsec_nanos()))
        };
        // Start early in a second, so the hits below stay in it.
        tokio::time::sleep(Duration::from_secs(1) + Duration::from_millis(100) - into_second())
            .await;
        let decide = |store: &RedisStore| {
            let store = store.clone();
            async move {
                let hit = Hit::new(b"k", &quotas, 1, SystemTime::now()).statuses_needed(true);
                match store.try_hit(&hit) {
                    Some(decision) => decision.unwrap(),
                    None => store.hit(&hit).await.unwrap(),
                }
            }
        };
        for _ in 0..40 {
            assert!(decide(&store).await.is_allowed());
        }
        let before = store.round_trips();
        assert!(before < 10, "{name}: {before} round trips for 40 hits");
        assert!(decide(&store).await.is_allowed());
        assert_eq!(store.round_trips(), before, "{name}: the lease holds units");
        // Just past the next boundary.
        tokio::time::sleep(Duration::from_secs(1) + Duration::from_micros(300) - into_second())
            .await;
        let after = decide(&store).await;
        assert!(after.is_allowed());
        assert_eq!(
            store.round_trips(),
            before + 1,
            "{name}: a unit of the last window was spent in the new one"
        );
        assert!(after.statuses()[0].reset() > Duration::from_millis(900));
    }
}

/// Leases are kept for at most `max_keys` keys: past that, a key is decided with one round
/// trip per hit (no lease kept), so a flood of fresh keys cannot grow an instance's memory.
#[tokio::test]
async fn past_max_keys_a_key_is_decided_without_keeping_a_lease() {
    use std::time::SystemTime;
    use tollgate::rate_limit::{Hit, RateLimitStore};

    let store = RedisStore::builder()
        .prefix(unique("tollgate-test:lease-cap"))
        .leased(Leasing::new().period(Duration::from_secs(10)).max_keys(2))
        .connect(crate::servers::redis_url())
        .await
        .unwrap();
    let quotas = [Quota::new(1_000, Duration::from_secs(30 * 86_400)).unwrap()];
    let trips_for = |key: &'static [u8]| {
        let store = store.clone();
        async move {
            let before = store.round_trips();
            for _ in 0..3 {
                let hit = Hit::new(key, &quotas, 1, SystemTime::now()).statuses_needed(true);
                let decision = match store.try_hit(&hit) {
                    Some(decision) => decision.unwrap(),
                    None => store.hit(&hit).await.unwrap(),
                };
                assert!(decision.is_allowed());
            }
            store.round_trips() - before
        }
    };
    // A leased key: a slice of 1, then one of 4 that serves the third hit locally.
    assert_eq!(trips_for(b"first").await, 2);
    assert_eq!(trips_for(b"second").await, 2);
    assert_eq!(trips_for(b"third").await, 3, "past the cap: no lease kept");
    // The leased keys keep theirs: two of the three hits are served by the 2 units left.
    assert_eq!(trips_for(b"first").await, 1);
    assert_eq!(trips_for(b"third").await, 3);
}
