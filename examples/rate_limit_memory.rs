//! Resident memory of an in-memory rate-limit store with 1,000,000 tracked keys.
//!
//! ```text
//! cargo run --release --features rate-limit --example rate_limit_memory
//! cargo run --release --features rate-limit,governor --example rate_limit_memory -- gcra
//! ```
//!
//! Prints the process's resident set size (Linux `/proc/self/statm`) before and after one hit
//! on each of 1,000,000 distinct 16-byte keys, the difference per key, and what a sweep after
//! the window leaves. The store is the fixed-window `MemoryStore`, or `GcraStore` with `gcra`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tollgate::Quota;
use tollgate::rate_limit::{Hit, MemoryStore, RateLimitStore};

const KEYS: u64 = 1_000_000;

fn rss_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

/// One hit per key, then the figures; `tracked` and `sweep` are the store's own.
fn measure<S: RateLimitStore>(
    store: &S,
    tracked: impl Fn() -> usize,
    sweep: impl Fn(SystemTime) -> usize,
) {
    let quotas = [Quota::per_hour(1000)];
    let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let before = rss_bytes().unwrap_or(0);
    for i in 0..KEYS {
        let key = format!("key_{i:012}");
        let decision = store
            .try_hit(&Hit::new(key.as_bytes(), &quotas, 1, now))
            .expect("in-memory stores decide synchronously")
            .expect("under the key cap");
        assert!(decision.is_allowed());
    }
    let after = rss_bytes().unwrap_or(0);
    assert_eq!(tracked(), KEYS as usize);
    let grown = after.saturating_sub(before);
    println!(
        "tracked keys: {}\nRSS before: {:.1} MiB\nRSS after:  {:.1} MiB\ngrowth: {:.1} MiB ({} bytes per key)",
        tracked(),
        before as f64 / 1048576.0,
        after as f64 / 1048576.0,
        grown as f64 / 1048576.0,
        grown / KEYS
    );
    let swept = sweep(now + Duration::from_secs(3600));
    println!("swept after the window: {swept} keys, {} left", tracked());
}

fn main() {
    match std::env::args().nth(1).as_deref() {
        None | Some("memory") => {
            let store = MemoryStore::builder().max_keys(KEYS as usize).build();
            measure(&store, || store.tracked_keys(), |t| store.sweep(t));
        }
        #[cfg(feature = "governor")]
        Some("gcra") => {
            let store = tollgate::rate_limit::GcraStore::new();
            measure(&store, || store.tracked_keys(), |t| store.sweep(t));
        }
        Some(other) => {
            eprintln!("unknown store {other:?}: `memory` (default) or `gcra` (feature `governor`)");
            std::process::exit(2);
        }
    }
}
