//! The real PostgreSQL and Redis servers `scripts/test.sh` starts, and names that keep tests
//! running in parallel against them apart.
#![allow(dead_code, unreachable_pub)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

fn required(variable: &str) -> String {
    std::env::var(variable).unwrap_or_else(|_| {
        panic!(
            "{variable} is not set: this test needs a real server. Run the suite with \
             `bash scripts/test.sh` (it installs and starts PostgreSQL and Redis and exports \
             TOLLGATE_POSTGRES_URL and TOLLGATE_REDIS_URL), or export {variable} yourself."
        )
    })
}

/// `TOLLGATE_POSTGRES_URL`; panics with directions when unset (never skips).
pub fn postgres_url() -> String {
    required("TOLLGATE_POSTGRES_URL")
}

/// `TOLLGATE_REDIS_URL`; panics with directions when unset (never skips).
pub fn redis_url() -> String {
    required("TOLLGATE_REDIS_URL")
}

/// A name no other test (in this run or an earlier one on the same server) uses.
pub fn unique(what: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "{what}-{}-{nanos:x}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}
