//! Exactness of the fixed window across real window boundaries: threads on the real clock,
//! each reading the time and then charging the store, so hits stamped just before a
//! boundary land after it. No window may admit more than the limit (GCRA: no interval more
//! than its burst plus its refill). The Redis variant runs against the real server
//! `scripts/test.sh` starts.

use std::collections::HashMap;
use std::time::{Duration, Instant, UNIX_EPOCH};

use tollgate::Quota;
use tollgate::clock::{Clock, SystemClock};
use tollgate::rate_limit::{Decision, Hit, MemoryStore, RateLimitStore};

const THREADS: usize = 4;
const WINDOW: Duration = Duration::from_millis(10);
const LIMIT: u64 = 50;
/// 120 window boundaries per run.
const RUN: Duration = Duration::from_millis(1_200);
/// Windows a test must see admissions in; a run that sees fewer is repeated.
const MIN_WINDOWS: usize = 100;
/// At most this many runs.
const MAX_RUNS: usize = 8;

fn window_nanos() -> u64 {
    u64::try_from(WINDOW.as_nanos()).unwrap()
}

/// The window an admitted hit stamped `now` was charged to: the one ending `reset` after it
/// (a late hit is charged to the window its key has already moved to, not the one it was
/// stamped in).
fn charged_window(now: u64, decision: &Decision) -> u64 {
    let reset = u64::try_from(decision.statuses()[0].reset().as_nanos()).unwrap();
    (now + reset - 1) / window_nanos()
}

/// Runs `THREADS` threads hitting one key of `store` for `RUN`, again (at most `MAX_RUNS`)
/// until admitted hits were stamped in `MIN_WINDOWS` windows; returns each admitted hit's
/// stamp and decision.
fn hammer<S: RateLimitStore + Sync>(store: &S) -> Vec<(u64, Decision)> {
    let quota = [Quota::new(LIMIT, WINDOW).unwrap()];
    let mut all = Vec::new();
    for _ in 0..MAX_RUNS {
        let deadline = Instant::now() + RUN;
        all.extend(std::thread::scope(|s| {
            let handles: Vec<_> = (0..THREADS)
                .map(|_| {
                    s.spawn(|| {
                        let mut admitted = Vec::new();
                        while Instant::now() < deadline {
                            let now = SystemClock.unix_nanos();
                            let hit = Hit::at_nanos(b"k", &quota, 1, now).statuses_needed(true);
                            let decision = store.try_hit(&hit).unwrap().unwrap();
                            if decision.is_allowed() {
                                admitted.push((now, decision));
                            }
                        }
                        admitted
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap())
                .collect::<Vec<_>>()
        }));
        if per_window(all.iter().map(|(now, _)| now / window_nanos())).len() >= MIN_WINDOWS {
            break;
        }
    }
    all
}

/// Admitted hits per window, and the number of windows the run crossed.
fn per_window(admitted: impl IntoIterator<Item = u64>) -> HashMap<u64, u64> {
    let mut counts = HashMap::new();
    for window in admitted {
        *counts.entry(window).or_insert(0) += 1;
    }
    counts
}

fn assert_never_over(counts: &HashMap<u64, u64>, what: &str) {
    assert!(
        counts.len() >= MIN_WINDOWS,
        "{what}: the runs crossed only {} windows",
        counts.len()
    );
    let over: Vec<_> = counts.iter().filter(|&(_, &n)| n > LIMIT).collect();
    assert!(
        over.is_empty(),
        "{what}: {} of {} windows admitted more than {LIMIT} (worst {})",
        over.len(),
        counts.len(),
        counts.values().max().unwrap()
    );
}

#[test]
fn memory_store_never_admits_more_than_the_limit_across_real_window_boundaries() {
    let store = MemoryStore::new();
    let admitted = hammer(&store);
    let counts = per_window(admitted.iter().map(|(now, d)| charged_window(*now, d)));
    assert_never_over(&counts, "MemoryStore");
}

#[test]
fn memory_store_charges_a_late_hit_to_the_newer_window_it_has_moved_to() {
    let store = MemoryStore::new();
    let quota = [Quota::per_second(2)];
    let at = |ms: u64| UNIX_EPOCH + Duration::from_millis(1_700_000_000_000 + ms);
    let hit = |ms| {
        store
            .try_hit(&Hit::new(b"k", &quota, 1, at(ms)).statuses_needed(true))
            .unwrap()
            .unwrap()
    };
    assert!(hit(500).is_allowed() && hit(600).is_allowed());
    assert!(!hit(700).is_allowed(), "the first second is spent");
    // Alternating hits stamped either side of the boundary: the late ones (999 ms) count in
    // the second the key has moved to, so the two seconds together admit 2 + 2, not 50 + 50.
    let mut admitted = 0;
    for _ in 0..50 {
        admitted += usize::from(hit(1_000).is_allowed());
        let late = hit(999);
        if late.is_allowed() {
            admitted += 1;
            // Its reset is the newer window's: 1 s after 999 ms + 1 ms.
            assert_eq!(late.statuses()[0].reset(), Duration::from_millis(1_001));
        }
    }
    assert_eq!(
        admitted, 2,
        "2 per second, and the late hits count in the second one"
    );
    // The window has moved on for good: a later second starts from zero.
    assert!(hit(2_000).is_allowed() && hit(2_001).is_allowed());
    assert!(
        !hit(1_999).is_allowed(),
        "a late hit is charged to the full newer window"
    );
}

#[cfg(feature = "governor")]
#[test]
fn gcra_store_never_admits_more_than_its_burst_plus_refill_across_real_window_boundaries() {
    use tollgate::rate_limit::GcraStore;

    let store = GcraStore::new();
    let mut stamps: Vec<u64> = hammer(&store).into_iter().map(|(now, _)| now).collect();
    stamps.sort_unstable();
    assert!(!stamps.is_empty());
    // GCRA with `LIMIT` per `WINDOW`: one request per `T = WINDOW / LIMIT`, bursts of `LIMIT`.
    // Between any two admitted stamps t_i <= t_j, at most LIMIT + (t_j - t_i) / T are admitted:
    // with g(k) = k * T - t_k, g(j) - g(i) + T <= LIMIT * T for every i <= j.
    let t = i128::from(window_nanos() / LIMIT);
    let mut lowest = i128::MAX;
    let mut worst = i128::MIN;
    for (k, &stamp) in stamps.iter().enumerate() {
        let g = i128::try_from(k).unwrap() * t - i128::from(stamp);
        lowest = lowest.min(g);
        worst = worst.max(g - lowest + t);
    }
    assert!(
        worst <= i128::from(LIMIT) * t,
        "GcraStore admitted {} more than burst + refill allows",
        (worst - i128::from(LIMIT) * t) / t
    );
    // And per aligned window, at most a burst and one window's refill.
    let counts = per_window(stamps.iter().map(|now| now / window_nanos()));
    assert!(counts.len() >= MIN_WINDOWS);
    assert!(counts.values().all(|&n| n <= 2 * LIMIT), "{counts:?}");
}

#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_store_never_admits_more_than_the_limit_across_real_window_boundaries() {
    use std::sync::Arc;

    use tollgate::rate_limit::redis::RedisStore;

    let store = Arc::new(
        RedisStore::builder()
            .prefix(crate::servers::unique("exact"))
            .connect(&crate::servers::redis_url())
            .await
            .unwrap(),
    );
    // The script decides on the Redis server's clock (this host's clock, in microseconds), at
    // a time between the call and its answer; the window it charged ends `reset` later, on a
    // boundary. When only one boundary fits that span, it names the window; a hit whose span
    // holds two (an answer slower than a window) is left out.
    let (windows, ambiguous) = hammer_redis(&[store], |asked, answered, decision| {
        let reset = u64::try_from(decision.statuses()[0].reset().as_nanos()).unwrap();
        let first = (asked - 999 + reset).div_ceil(window_nanos());
        let last = (answered + reset) / window_nanos();
        (first == last).then(|| first - 1)
    })
    .await;
    assert!(
        ambiguous * 10 <= windows.len(),
        "{ambiguous} admitted hits could not be placed in a window"
    );
    assert_never_over(&per_window(windows), "RedisStore");
}

/// Leased limits on Redis (one server, then the cluster): two instances, each with its own
/// connection and leases, hammering one key across 120 real 10 ms windows. A hit is placed in
/// the window holding both its call and its answer (it was decided in between, and a lease
/// never outlives the window its units were reserved in); the few that straddle a boundary are
/// left out.
#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn leased_limits_never_admit_more_than_the_limit_across_real_window_boundaries() {
    use std::sync::Arc;

    use tollgate::rate_limit::redis::{Leasing, RedisStore};

    for (name, target, _guard) in crate::cluster_admin::both().await {
        let prefix = crate::servers::unique("leased-exact");
        let mut stores = Vec::new();
        for _ in 0..2 {
            stores.push(Arc::new(
                RedisStore::builder()
                    .prefix(&prefix)
                    .leased(Leasing::new().max_share(0.25))
                    .connect(&target)
                    .await
                    .unwrap(),
            ));
        }
        let (windows, ambiguous) = hammer_redis(&stores, |asked, answered, _| {
            (asked / window_nanos() == answered / window_nanos()).then(|| asked / window_nanos())
        })
        .await;
        // Hits waiting for a reservation straddle boundaries more often than exact ones.
        assert!(
            ambiguous <= windows.len(),
            "{name}: {ambiguous} admitted hits could not be placed in a window, {} could",
            windows.len()
        );
        eprintln!(
            "leased, {name}: {} placed, {ambiguous} straddling",
            windows.len()
        );
        assert_never_over(&per_window(windows), &format!("leased RedisStore ({name})"));
        let trips: u64 = stores.iter().map(|s| s.round_trips()).sum();
        eprintln!("leased, {name}: {trips} round trips");
    }
}

/// `2 * THREADS` tasks, spread over `stores`, hitting one key as the layer does (`try_hit`,
/// then `hit`). `place` names the window an admitted hit was charged to from its call and
/// answer times and its decision, or `None` when they do not tell. Runs of `RUN` repeat (at
/// most `MAX_RUNS`) until the placed hits cover `MIN_WINDOWS` windows, so a machine too busy
/// to answer within a window now and then still tests enough boundaries. Returns the placed
/// windows and the number of hits left out.
#[cfg(feature = "redis")]
async fn hammer_redis(
    stores: &[std::sync::Arc<tollgate::rate_limit::redis::RedisStore>],
    place: impl Fn(u64, u64, &Decision) -> Option<u64>,
) -> (Vec<u64>, usize) {
    let quota = Quota::new(LIMIT, WINDOW).unwrap();
    let mut windows = Vec::new();
    let mut ambiguous = 0;
    for _ in 0..MAX_RUNS {
        let deadline = Instant::now() + RUN;
        let tasks: Vec<_> = (0..2 * THREADS)
            .map(|i| {
                let store = std::sync::Arc::clone(&stores[i % stores.len()]);
                tokio::spawn(async move {
                    let quotas = [quota];
                    let mut admitted = Vec::new();
                    while Instant::now() < deadline {
                        let asked = SystemClock.unix_nanos();
                        let hit = Hit::at_nanos(b"k", &quotas, 1, asked).statuses_needed(true);
                        let decision = match store.try_hit(&hit) {
                            Some(decision) => decision.unwrap(),
                            None => store.hit(&hit).await.unwrap(),
                        };
                        let answered = SystemClock.unix_nanos();
                        if decision.is_allowed() {
                            admitted.push((asked, answered, decision));
                        }
                    }
                    admitted
                })
            })
            .collect();
        for task in tasks {
            for (asked, answered, decision) in task.await.unwrap() {
                match place(asked, answered, &decision) {
                    Some(window) => windows.push(window),
                    None => ambiguous += 1,
                }
            }
        }
        if per_window(windows.iter().copied()).len() >= MIN_WINDOWS {
            break;
        }
    }
    (windows, ambiguous)
}
