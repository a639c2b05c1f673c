use super::*;
use crate::Quota;
use std::time::UNIX_EPOCH;

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

fn hit(store: &MemoryStore, key: &str, quotas: &[Quota], cost: u32, now: SystemTime) -> Decision {
    store
        .try_hit(&Hit::new(key.as_bytes(), quotas, cost, now))
        .unwrap()
        .unwrap()
}

#[test]
fn counts_within_a_window_and_resets_at_the_aligned_boundary() {
    let store = MemoryStore::new();
    let q = [Quota::per_minute(3)];
    // 1_000_040 s is 20 s into window 16_667 (of 60 s, starting at 1_000_020).
    for remaining in [2, 1, 0] {
        let d = hit(&store, "k", &q, 1, at(1_000_040));
        assert!(d.is_allowed());
        assert_eq!(d.statuses()[0].remaining(), remaining);
        assert_eq!(d.statuses()[0].reset(), Duration::from_secs(40));
    }
    let refused = hit(&store, "k", &q, 1, at(1_000_079));
    assert!(!refused.is_allowed());
    assert_eq!(refused.retry_after(), Some(Duration::from_secs(1)));
    assert!(hit(&store, "other", &q, 1, at(1_000_079)).is_allowed());
    let next = hit(&store, "k", &q, 1, at(1_000_080));
    assert!(next.is_allowed());
    assert_eq!(next.statuses()[0].remaining(), 2);
}

#[test]
fn a_refused_hit_consumes_no_limit_and_cost_counts() {
    let store = MemoryStore::new();
    let q = [Quota::per_second(2), Quota::per_hour(5)];
    let now = at(7200);
    assert!(hit(&store, "k", &q, 2, now).is_allowed());
    // The per-second limit refuses: the hourly one must not be charged.
    for _ in 0..10 {
        let d = hit(&store, "k", &q, 1, now);
        assert!(!d.is_allowed());
        assert!(d.statuses()[0].exceeded());
        assert!(!d.statuses()[1].exceeded());
        assert_eq!(d.statuses()[1].remaining(), 3);
    }
    // Hourly refuses, per-second would admit: per-second gives its charge back.
    let later = now + Duration::from_secs(1);
    let d = hit(&store, "k", &q, 2, later);
    assert!(d.is_allowed());
    let d = hit(&store, "k", &q, 2, later + Duration::from_secs(1));
    assert!(!d.is_allowed());
    assert!(!d.statuses()[0].exceeded());
    assert!(d.statuses()[1].exceeded());
    assert_eq!(d.statuses()[0].remaining(), 2);
    assert_eq!(d.retry_after(), Some(Duration::from_secs(3600 - 2)));
    // A cost above the limit never passes.
    assert!(!hit(&store, "big", &q, 3, later).is_allowed());
}

#[test]
fn a_sweep_keeps_every_key_counted_in_an_open_window() {
    let store = MemoryStore::new();
    let q = [Quota::per_second(1), Quota::per_hour(10)];
    // Window index 0 of both quotas: a new entry's slots already read "index 0, count 0".
    let early = UNIX_EPOCH + Duration::from_millis(500);
    assert!(hit(&store, "k", &q, 1, early).is_allowed());
    assert_eq!(store.sweep(early + Duration::from_millis(400)), 0);
    assert!(!hit(&store, "k", &q, 1, early + Duration::from_millis(450)).is_allowed());
    // A later second moves the per-second slot to a new window; the hourly one stays.
    let later = at(5) + Duration::from_millis(100);
    assert!(hit(&store, "k", &q, 1, later).is_allowed());
    assert_eq!(store.sweep(later + Duration::from_millis(800)), 0);
    // The hourly window keeps the key (and its count of 2) until the hour ends.
    assert_eq!(store.sweep(at(3599)), 0);
    assert_eq!(
        hit(&store, "k", &q, 1, at(3599)).statuses()[1].remaining(),
        7
    );
    assert_eq!(store.sweep(at(3600)), 1);
}

#[test]
fn sweeps_itself_and_caps_keys() {
    let store = MemoryStore::builder()
        .max_keys(3)
        .sweep_interval(Duration::from_secs(10))
        .build();
    let q = [Quota::per_second(2)];
    for key in ["a", "a", "b", "c"] {
        assert!(hit(&store, key, &q, 1, at(100)).is_allowed());
    }
    // Full of live keys: "d" takes the place of "b" or "c" (charged once), not of "a",
    // which has spent its quota and stays refused.
    assert!(hit(&store, "d", &q, 1, at(100)).is_allowed());
    assert_eq!(store.tracked_keys(), 3);
    assert!(!hit(&store, "a", &q, 1, at(100)).is_allowed());
    // A second later the old windows have ended: a new key makes room by sweeping.
    assert!(hit(&store, "e", &q, 1, at(101)).is_allowed());
    assert_eq!(store.tracked_keys(), 1);
    assert_eq!(store.sweep(at(102)), 1);
    assert_eq!(store.tracked_keys(), 0);
}

#[test]
fn a_window_index_wrapping_past_32_bits_still_never_moves_backwards() {
    // One-second windows: the window numbered 2^32 starts in 2106, and its low 32 bits are
    // 0 while the window before it reads 0xFFFF_FFFF.
    let store = MemoryStore::new();
    let quota = [Quota::per_second(1)];
    let wrap = 1_u64 << 32;
    let hit = |t: SystemTime| {
        store
            .try_hit(&Hit::new(b"k", &quota, 1, t))
            .unwrap()
            .unwrap()
            .is_allowed()
    };
    assert!(hit(at(wrap)));
    assert!(!hit(at(wrap) + Duration::from_millis(10)));
    // Stamped in the window before (0xFFFF_FFFF), charged to the spent newer one (0).
    assert!(!hit(at(wrap) - Duration::from_millis(10)));
    assert!(hit(at(wrap + 1)), "the next window starts from zero");
}

#[test]
fn a_slot_left_from_long_ago_is_not_taken_for_a_newer_window() {
    // A slot 2^32 - 1 windows old reads, in 32 bits, as one window *ahead*: it is stale,
    // not newer, so the hit's window starts from zero.
    let store = MemoryStore::builder()
        .sweep_interval(Duration::from_secs(u64::MAX / 4))
        .build();
    let quota = [Quota::new(1, Duration::from_millis(1)).unwrap()];
    let hit = |t: SystemTime| {
        store
            .try_hit(&Hit::new(b"k", &quota, 1, t))
            .unwrap()
            .unwrap()
            .is_allowed()
    };
    let first = UNIX_EPOCH + Duration::from_millis(1_u64 << 40);
    assert!(hit(first));
    assert!(hit(first + Duration::from_millis((1_u64 << 32) - 1)));
}
