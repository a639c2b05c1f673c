//! Latency of an API-key lookup on a cache miss, PostgreSQL beside the in-memory store.
//!
//! Every sample evicts the key from the cache, then verifies it through `ApiKeys` (format,
//! checksum, SHA-256, cache miss, single-flight, store lookup, cache fill): the path a request
//! takes the first time a key is seen on an instance, or after its TTL. Printed: p50, p90, p99
//! and max over the samples on one task, then the throughput of 64 tasks doing the same at once
//! on a multi-threaded runtime (16 pooled connections).
//!
//! It needs a PostgreSQL server in `TOLLGATE_POSTGRES_URL`; `scripts/test.sh --run` starts one
//! (and Redis) for any command:
//!
//! ```text
//! bash scripts/test.sh --run cargo bench --bench backends --features postgres
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
    });
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
