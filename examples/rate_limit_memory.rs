//! Resident memory of the in-memory rate-limit store with 1,000,000 tracked keys.
//!
//! ```text
//! cargo run --release --features rate-limit --example rate_limit_memory
//! ```
//!
//! Prints the process's resident set size (Linux `/proc/self/statm`) before and after one hit
//! on each of 1,000,000 distinct 16-byte keys, and the difference per key.

use std::time::{Duration, UNIX_EPOCH};

use tollgate::Quota;
use tollgate::rate_limit::{Hit, MemoryStore, RateLimitStore};

fn rss_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

fn main() {
    const KEYS: u64 = 1_000_000;
    let store = MemoryStore::builder().max_keys(KEYS as usize).build();
    let quotas = [Quota::per_hour(1000).expect("non-zero")];
    let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let before = rss_bytes().unwrap_or(0);
    for i in 0..KEYS {
        let key = format!("key_{i:012}");
        let decision = store
            .try_hit(&Hit::new(key.as_bytes(), &quotas, 1, now))
            .expect("in-memory store decides synchronously")
            .expect("under the key cap");
        assert!(decision.is_allowed());
    }
    let after = rss_bytes().unwrap_or(0);
    assert_eq!(store.tracked_keys(), KEYS as usize);
    let grown = after.saturating_sub(before);
    println!(
        "tracked keys: {}\nRSS before: {:.1} MiB\nRSS after:  {:.1} MiB\ngrowth: {:.1} MiB ({} bytes per key)",
        store.tracked_keys(),
        before as f64 / 1048576.0,
        after as f64 / 1048576.0,
        grown as f64 / 1048576.0,
        grown / KEYS
    );
    let swept = store.sweep(now + Duration::from_secs(3600));
    println!(
        "swept after the window: {swept} keys, {} left",
        store.tracked_keys()
    );
}
