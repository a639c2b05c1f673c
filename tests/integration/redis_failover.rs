//! A real failover on the Redis Cluster `scripts/test.sh` starts: the primary serving the
//! tested keys is stopped (SIGSTOP: it neither answers nor closes its connections, like a hung
//! or partitioned machine) and its replica promoted. Rate-limit decisions follow the layer's
//! policy in the gap and recover without a restart; no invalidation or revocation is lost, and
//! a subscriber whose node was the stopped one resynchronises.

use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use tollgate::Quota;
use tollgate::api_key::NewKey;
use tollgate::rate_limit::redis::RedisStore;
use tollgate::rate_limit::{Key, OnStoreError, RateLimitLayer, RequestHead};
use tollgate::redis::RedisTarget;

use crate::cluster_admin::{self, primary_of, replicated, stop_primary_of};
use crate::servers::{redis_cluster_urls, unique};
use crate::support::{HttpClient, serve_axum};
use crate::{redis_invalidation, redis_revocation};

type ByClient = fn(&RequestHead<'_>) -> Option<Key<'static>>;

fn by_client(head: &RequestHead<'_>) -> Option<Key<'static>> {
    let value = head.headers().get("x-client")?;
    Some(Key::from(value.as_bytes().to_vec()))
}

async fn limited(store: RedisStore, quota: Quota, policy: OnStoreError) -> HttpClient {
    let layer = RateLimitLayer::new(quota)
        .key(by_client as ByClient)
        .with_store(store)
        .unwrap()
        .ietf_headers(true)
        .on_store_error(policy);
    let router = Router::new()
        .route("/", get(|| async { "ok" }))
        .route_layer(layer);
    HttpClient::new(serve_axum(router).await)
}

/// The cluster's nodes with `first` first: a subscriber takes the seeds in order.
fn seeds_starting_at(first: &str) -> RedisTarget {
    let mut urls = redis_cluster_urls();
    urls.sort_by_key(|url| !url.ends_with(first));
    RedisTarget::cluster(urls)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failover_applies_the_policy_in_the_gap_and_the_limit_recovers_without_a_restart() {
    let _alone = cluster_admin::exclusive().await;
    let prefix = unique("tollgate-test:failover");
    let store = || async {
        RedisStore::builder()
            .prefix(&prefix)
            .timeout(Duration::from_millis(500))
            .connect(cluster_admin::cluster())
            .await
            .unwrap()
    };
    let quota = Quota::new(100, Duration::from_secs(30 * 86_400)).unwrap();
    let closed = limited(store().await, quota, OnStoreError::FailClosed).await;
    let open = limited(store().await, quota, OnStoreError::FailOpen).await;
    let client = [("x-client", b"tenant".as_slice())];
    for _ in 0..10 {
        assert_eq!(closed.get("/", &client).await.status, 200);
    }
    let counter = store().await.counter_key(b"tenant", 0, quota.window());
    replicated().await;

    let failover = stop_primary_of(&counter).await;
    let stopped = Instant::now();
    // The gap: every decision is bounded by the layer's store timeout and answered by policy.
    for _ in 0..3 {
        let started = Instant::now();
        let refused = closed.get("/", &client).await;
        assert_eq!(refused.status, 503, "fail closed");
        assert!(started.elapsed() < Duration::from_secs(2));
        assert_eq!(open.get("/", &client).await.status, 200, "fail open");
    }
    let promotion = failover.promote().await;
    let promoted = Instant::now();
    let recovered = loop {
        let answer = closed.get("/", &client).await;
        if answer.status == 200 {
            break answer;
        }
        assert_eq!(answer.status, 503);
        assert!(
            stopped.elapsed() < Duration::from_secs(15),
            "never recovered"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let (gap, after_promotion) = (stopped.elapsed(), promoted.elapsed());
    eprintln!(
        "failover: {} stopped, {} promoted in {promotion:?}; decisions back {gap:?} after the \
         stop, {after_promotion:?} after the promotion",
        failover.stopped, failover.promoted
    );
    // Nothing counted before the stop was lost; the fail-open passes were not counted.
    let ratelimit = recovered.header("ratelimit").unwrap().to_owned();
    assert!(ratelimit.contains(";r=89;"), "{ratelimit}");
    failover.heal().await;
    assert_eq!(closed.get("/", &client).await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_failover_no_invalidation_or_revocation_is_lost_and_the_cut_off_subscriber_resyncs()
{
    let _alone = cluster_admin::exclusive().await;
    // One hash tag: the channel, the denylist and the stopped primary are one shard, the worst
    // case (publishing and revoking fail until the promotion).
    let tag = format!("{{{}}}", unique("failover"));
    let (channel, prefix) = (format!("{tag}:invalidate"), format!("{tag}:jti"));
    let primary = primary_of(tag.as_bytes()).await;
    let all = cluster_admin::cluster();
    // B subscribes on the primary that will stop; C on another node.
    let on_primary = seeds_starting_at(&primary);
    let elsewhere = {
        let mut urls = redis_cluster_urls();
        urls.sort_by_key(|url| url.ends_with(&primary));
        RedisTarget::cluster(urls)
    };
    let keys_a = redis_invalidation::node_at(&all, &channel).await;
    let keys_b = redis_invalidation::node_at(&on_primary, &channel).await;
    let keys_c = redis_invalidation::node_at(&elsewhere, &channel).await;
    let jwt_a = redis_revocation::node(&all, &prefix).await;
    let jwt_b = redis_revocation::node(&on_primary, &prefix).await;
    let jwt_c = redis_revocation::node(&elsewhere, &prefix).await;

    let app = unique("failover-app");
    let key = keys_a.keys.generate(NewKey::new(&app, "k")).await.unwrap();
    let plaintext = key.key().expose().to_owned();
    for node in [&keys_b, &keys_c] {
        assert_eq!(node.status(&plaintext).await, 200, "now cached");
    }
    // Revoked before the failure: acknowledged by the replica before `revoke` returns.
    jwt_a
        .revocation
        .revoke("t-before", redis_revocation::exp_of_token())
        .await
        .unwrap();
    let during = redis_revocation::token("t-during");
    for node in [&jwt_b, &jwt_c] {
        assert_eq!(node.status(&during).await, 200);
    }

    let failover = stop_primary_of(tag.as_bytes()).await;
    assert_eq!(failover.stopped, primary);
    // While the shard is down: the key revoked in the database (its invalidation queued and
    // retried), the token revoked as a caller would, retrying what fails.
    assert!(keys_a.keys.revoke(key.record().id()).await.unwrap());
    let revoking = tokio::spawn(async move {
        let started = Instant::now();
        while let Err(error) = jwt_a
            .revocation
            .revoke("t-during", redis_revocation::exp_of_token())
            .await
        {
            eprintln!("revoke during the failover: {error}");
            assert!(started.elapsed() < Duration::from_secs(20));
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        jwt_a
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    failover.promote().await;
    let jwt_a = revoking.await.unwrap();

    // C never lost its node: it hears the retried messages. B lost its node: it subscribes on
    // the next seed and resynchronises (empties its key cache, reloads the denylist).
    let limit = Duration::from_secs(15);
    eprintln!(
        "invalidation at C after {:?}",
        keys_c.until(&plaintext, 401, limit).await
    );
    eprintln!(
        "invalidation at B after {:?}",
        keys_b.until(&plaintext, 401, limit).await
    );
    eprintln!(
        "revocation at C after {:?}",
        jwt_c.until_refused(&during, limit).await
    );
    eprintln!(
        "revocation at B after {:?}",
        jwt_b.until_refused(&during, limit).await
    );
    failover.heal().await;

    // A node started after the failover loads both revocations from the promoted replica.
    let jwt_d = redis_revocation::node(&all, &prefix).await;
    assert_eq!(
        jwt_d.status(&redis_revocation::token("t-before")).await,
        401
    );
    assert_eq!(jwt_d.status(&during).await, 401);
    assert_eq!(jwt_d.status(&redis_revocation::token("t-other")).await, 200);
    drop(jwt_a);
}
