//! Latency of an API-key lookup on a cache miss, PostgreSQL beside the in-memory store.
//!
//! Every sample evicts the key from the cache, then verifies it through `ApiKeys` (format,
//! checksum, SHA-256, cache miss, single-flight, store lookup, cache fill): the path a request
//! takes the first time a key is seen on an instance, or after its TTL. Printed: p50, p90, p99
//! and max over the samples on one task, then the throughput of 64 tasks doing the same at once
//! on a multi-threaded runtime (16 pooled connections).
//!
//! With the `redis` feature it also measures how long a revocation on one `ApiKeys` takes to
//! be refused by another one subscribed over Redis pub/sub (revoke → publish → message →
//! eviction → the next check goes to the store and sees the revocation).
//!
//! With `redis` and `rate-limit` it also measures a rate-limit decision (`RateLimitStore::hit`
//! on one hot key, two limits) on `RedisStore` beside `MemoryStore`: p50/p99 on one task, then
//! the throughput of 64 tasks sharing the store (one multiplexed Redis connection).
//!
//! Then several instances sharing limits (`backends/instances.rs`): exact against leased mode,
//! on one Redis server and on the cluster, one hot key and 10,000 keys.
//!
//! It needs a PostgreSQL server in `TOLLGATE_POSTGRES_URL` (and Redis in `TOLLGATE_REDIS_URL`
//! for the Redis parts); `scripts/test.sh --run` starts both for any command:
//!
//! ```text
//! bash scripts/test.sh --run cargo bench --bench backends --features full
//! ```

use std::time::Instant;

use tollgate::api_key::postgres::{self as pg, PostgresKeyStore};
use tollgate::api_key::{ApiKeys, InMemoryKeyStore, KeyStore, NewKey};

const SAMPLES: usize = 5_000;
const TASKS: usize = 64;
const PER_TASK: usize = 200;

fn main() {
    let url = std::env::var("TOLLGATE_POSTGRES_URL").unwrap_or_else(|_| {
        panic!("TOLLGATE_POSTGRES_URL is not set: run `bash scripts/test.sh --run cargo bench --bench backends --features postgres`")
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        println!(
            "API-key verify on a cache miss ({SAMPLES} samples, one task; then {TASKS} tasks)"
        );
        bench(
            "in-memory",
            ApiKeys::builder(InMemoryKeyStore::new()).build(),
        )
        .await;

        let pool = pg::pool(&url).unwrap();
        pg::migrate(&pool).await.unwrap();
        bench(
            "postgres ",
            ApiKeys::builder(PostgresKeyStore::new(pool)).build(),
        )
        .await;

        #[cfg(feature = "redis")]
        invalidation().await;

        #[cfg(all(feature = "redis", feature = "rate-limit"))]
        rate_limit::run().await;

        #[cfg(all(feature = "redis", feature = "rate-limit"))]
        instances::run().await;
    });
}

#[cfg(all(feature = "redis", feature = "rate-limit"))]
#[path = "backends/instances.rs"]
mod instances;

/// Rate-limit decisions: `RedisStore` beside `MemoryStore`.
#[cfg(all(feature = "redis", feature = "rate-limit"))]
mod rate_limit {
    use std::sync::Arc;
    use std::time::{Instant, SystemTime};

    use tollgate::Quota;
    use tollgate::rate_limit::redis::RedisStore;
    use tollgate::rate_limit::{Hit, MemoryStore, RateLimitStore};

    use super::{SAMPLES, TASKS};

    const PER_TASK: usize = 500;

    pub(super) async fn run() {
        let url = std::env::var("TOLLGATE_REDIS_URL").unwrap_or_else(|_| {
            panic!("TOLLGATE_REDIS_URL is not set: run through scripts/test.sh --run")
        });
        println!(
            "rate-limit decision, one hot key, 2 limits ({SAMPLES} samples, one task; then {TASKS} tasks)"
        );
        decisions("in-memory", Arc::new(MemoryStore::new())).await;
        let prefix = format!("tollgate-bench:rl:{}", std::process::id());
        let redis = RedisStore::builder()
            .prefix(prefix)
            .connect(&url)
            .await
            .unwrap();
        decisions("redis    ", Arc::new(redis)).await;
    }

    /// Limits no run reaches: every decision admits and writes.
    fn unreachable_quotas() -> [Quota; 2] {
        [Quota::per_second(1 << 40), Quota::per_hour(1 << 50)]
    }

    /// One decision, as the layer makes it: synchronously when the store can.
    async fn decide<St: RateLimitStore>(store: &St, quotas: &[Quota]) {
        let hit = Hit::new(b"bench-key", quotas, 1, SystemTime::now());
        let decision = match store.try_hit(&hit) {
            Some(decision) => decision,
            None => store.hit(&hit).await,
        };
        assert!(decision.unwrap().is_allowed());
    }

    async fn decisions<St: RateLimitStore>(name: &str, store: Arc<St>) {
        let quotas = unreachable_quotas();
        for _ in 0..500 {
            decide(&*store, &quotas).await;
        }
        let mut samples = Vec::with_capacity(SAMPLES);
        for _ in 0..SAMPLES {
            let started = Instant::now();
            decide(&*store, &quotas).await;
            samples.push(started.elapsed());
        }
        samples.sort();
        let at = |q: f64| samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)];
        println!(
            "{name}  p50 {:>9.1?}  p99 {:>9.1?}  max {:>9.1?}",
            at(0.50),
            at(0.99),
            samples[samples.len() - 1]
        );

        let started = Instant::now();
        let tasks: Vec<_> = (0..TASKS)
            .map(|_| {
                let store = Arc::clone(&store);
                tokio::spawn(async move {
                    let quotas = unreachable_quotas();
                    for _ in 0..PER_TASK {
                        decide(&*store, &quotas).await;
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        let elapsed = started.elapsed();
        let total = TASKS * PER_TASK;
        println!(
            "{name}  {TASKS} tasks: {total} decisions in {elapsed:.2?} = {:.0}/s",
            total as f64 / elapsed.as_secs_f64()
        );
    }
}

/// Revocation on node A until node B refuses the key, over Redis pub/sub.
#[cfg(feature = "redis")]
async fn invalidation() {
    use tollgate::api_key::redis::RedisInvalidation;
    use tollgate::rejection::RejectionKind;

    const ROUNDS: usize = 1_000;
    let url = std::env::var("TOLLGATE_REDIS_URL").unwrap_or_else(|_| {
        panic!("TOLLGATE_REDIS_URL is not set: run through scripts/test.sh --run")
    });
    let channel = format!("tollgate-bench:{}", std::process::id());
    // One shared store (clones of an in-memory store share it), two caches.
    let node = |store: InMemoryKeyStore| {
        let url = url.clone();
        let channel = channel.clone();
        async move {
            let invalidation = RedisInvalidation::connect(&url, channel).await.unwrap();
            let keys = ApiKeys::builder(store)
                .positive_ttl(std::time::Duration::from_secs(3600))
                .on_invalidate(invalidation.hook())
                .build();
            let subscription = invalidation.subscribe(keys.clone()).await.unwrap();
            (keys, subscription)
        }
    };
    let store = InMemoryKeyStore::new();
    let (a, _a) = node(store.clone()).await;
    let (b, _b) = node(store).await;

    let mut samples = Vec::with_capacity(ROUNDS);
    for _ in 0..ROUNDS {
        let created = a
            .generate(NewKey::new("bench-invalidation", "Bench"))
            .await
            .unwrap();
        let key = created.key().expose();
        b.verify(key).await.unwrap();
        let started = Instant::now();
        a.revoke(created.record().id()).await.unwrap();
        while b.verify(key).await.is_ok() {
            tokio::task::yield_now().await;
        }
        samples.push(started.elapsed());
        assert_eq!(
            b.verify(key).await.unwrap_err().kind(),
            RejectionKind::RevokedCredential
        );
    }
    samples.sort();
    let at = |q: f64| samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)];
    println!(
        "revoke on A, refused on B over Redis ({ROUNDS} rounds): p50 {:.1?}  p90 {:.1?}  p99 {:.1?}  max {:.1?}",
        at(0.50),
        at(0.90),
        at(0.99),
        samples[samples.len() - 1]
    );
}

async fn bench<K: KeyStore>(name: &str, keys: ApiKeys<K>) {
    let app = format!("bench-{}-{}", std::process::id(), name.trim());
    let created = keys.generate(NewKey::new(&app, "Bench")).await.unwrap();
    let key = created.key().expose().to_owned();
    let digest = created.record().digest();

    // Warm up: connections, prepared statements, the server's buffers.
    for _ in 0..500 {
        keys.invalidate(digest);
        keys.verify(&key).await.unwrap();
    }

    let mut samples = Vec::with_capacity(SAMPLES);
    for _ in 0..SAMPLES {
        keys.invalidate(digest);
        let started = Instant::now();
        keys.verify(&key).await.unwrap();
        samples.push(started.elapsed());
    }
    samples.sort();
    let at = |q: f64| samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)];
    println!(
        "{name}  p50 {:>9.1?}  p90 {:>9.1?}  p99 {:>9.1?}  max {:>9.1?}",
        at(0.50),
        at(0.90),
        at(0.99),
        samples[samples.len() - 1]
    );

    // 64 concurrent tasks, each with a key of its own (so single-flight does not merge them).
    let mut per_task = Vec::new();
    for _ in 0..TASKS {
        let created = keys.generate(NewKey::new(&app, "Bench")).await.unwrap();
        per_task.push((
            created.key().expose().to_owned(),
            *created.record().digest(),
        ));
    }
    let started = Instant::now();
    let tasks: Vec<_> = per_task
        .into_iter()
        .map(|(key, digest)| {
            let keys = keys.clone();
            tokio::spawn(async move {
                for _ in 0..PER_TASK {
                    keys.invalidate(&digest);
                    keys.verify(&key).await.unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let elapsed = started.elapsed();
    let total = TASKS * PER_TASK;
    println!(
        "{name}  {TASKS} tasks: {total} misses in {elapsed:.2?} = {:.0}/s",
        total as f64 / elapsed.as_secs_f64()
    );
}
