//! Several instances sharing limits on Redis: exact mode (one round trip per decision) against
//! leased mode (one per slice), on one server and on the cluster, for one hot key and for
//! 10,000 keys. Two instances (two stores, two connections) × 64 tasks each; every row prints
//! decisions/s, Redis round trips per decision, p50/p99 of a decision, and what was admitted
//! against what the limits allow (it must never be more).

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tollgate::Quota;
use tollgate::rate_limit::redis::{Leasing, RedisStore};
use tollgate::rate_limit::{Hit, RateLimitStore};
use tollgate::redis::RedisTarget;

const INSTANCES: usize = 2;
const TASKS: usize = 64;
const PER_TASK: usize = 400;
/// Windows no run crosses.
const WINDOW: Duration = Duration::from_secs(30 * 86_400);

struct Keys {
    name: &'static str,
    count: usize,
    limit: u64,
}

pub(super) async fn run() {
    let mut targets = vec![(
        "single ",
        RedisTarget::single(std::env::var("TOLLGATE_REDIS_URL").expect("TOLLGATE_REDIS_URL")),
    )];
    if let Ok(urls) = std::env::var("TOLLGATE_REDIS_CLUSTER_URLS") {
        targets.push(("cluster", RedisTarget::cluster(urls.split(','))));
    }
    let total = INSTANCES * TASKS * PER_TASK;
    println!(
        "shared limits: {INSTANCES} instances x {TASKS} tasks x {PER_TASK} decisions = {total}"
    );
    let keyspaces = [
        // Demand above the limit, so the limit is reached and must hold.
        Keys {
            name: "hot key   ",
            count: 1,
            limit: (total as u64) * 3 / 4,
        },
        Keys {
            name: "10000 keys",
            count: 10_000,
            limit: 4,
        },
    ];
    for (target_name, target) in &targets {
        for keys in &keyspaces {
            for leased in [false, true] {
                row(target_name, target, keys, leased).await;
            }
        }
    }
}

async fn row(target_name: &str, target: &RedisTarget, keys: &Keys, leased: bool) {
    let prefix = format!(
        "tollgate-bench:shared:{}:{}",
        std::process::id(),
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    let mut stores = Vec::new();
    for _ in 0..INSTANCES {
        let mut builder = RedisStore::builder()
            .prefix(&prefix)
            .timeout(Duration::from_secs(5));
        if leased {
            builder = builder.leased(Leasing::new());
        }
        stores.push(Arc::new(builder.connect(target).await.unwrap()));
    }
    let quota = Quota::new(keys.limit, WINDOW).unwrap();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (i, store) in stores.iter().enumerate() {
        for t in 0..TASKS {
            let store = Arc::clone(store);
            let count = keys.count;
            tasks.push(tokio::spawn(async move {
                let quotas = [quota];
                let mut latencies = Vec::with_capacity(PER_TASK);
                let mut admitted = vec![0u64; count];
                for n in 0..PER_TASK {
                    let k = (i * TASKS * PER_TASK + t * PER_TASK + n) % count;
                    let key = format!("key-{k}");
                    let hit = Hit::new(key.as_bytes(), &quotas, 1, SystemTime::now());
                    let at = Instant::now();
                    let decision = match store.try_hit(&hit) {
                        Some(decision) => decision,
                        None => store.hit(&hit).await,
                    }
                    .unwrap();
                    latencies.push(at.elapsed());
                    admitted[k] += u64::from(decision.is_allowed());
                }
                (latencies, admitted)
            }));
        }
    }
    let mut latencies = Vec::new();
    let mut admitted = vec![0u64; keys.count];
    for task in tasks {
        let (l, a) = task.await.unwrap();
        latencies.extend(l);
        for (sum, n) in admitted.iter_mut().zip(a) {
            *sum += n;
        }
    }
    let elapsed = started.elapsed();
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    let decisions = latencies.len();
    let trips: u64 = stores.iter().map(|s| s.round_trips()).sum();
    let total_admitted: u64 = admitted.iter().sum();
    let over = admitted.iter().filter(|&&n| n > keys.limit).count();
    let allowed = keys.limit * keys.count as u64;
    println!(
        "{target_name} {} {:6}  {:>9.0}/s  {:>7.4} round trips/decision  p50 {:>8.1?}  p99 {:>8.1?}  admitted {total_admitted} of {allowed} allowed ({} demanded){}",
        keys.name,
        if leased { "leased" } else { "exact" },
        decisions as f64 / elapsed.as_secs_f64(),
        trips as f64 / decisions as f64,
        at(0.50),
        at(0.99),
        decisions,
        if over == 0 {
            String::new()
        } else {
            format!("  OVER THE LIMIT on {over} keys")
        },
    );
    assert_eq!(over, 0, "a limit was exceeded");
}
