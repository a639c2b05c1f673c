//! One quota's counter of a key: a window index and a count packed in one atomic word, and
//! where a hit counts against it.

use std::sync::atomic::{AtomicU64, Ordering};

/// A window index's low 32 bits and a count, in one word.
pub(super) fn pack(index: u64, count: u32) -> u64 {
    (index << 32) | u64::from(count)
}

/// [`pack`]'s window index (low 32 bits) and count.
pub(super) fn unpack(word: u64) -> (u32, u32) {
    ((word >> 32) as u32, word as u32)
}

/// How long before the start of the window a slot has moved to a hit may be stamped and still
/// be charged there. Hits are late by the time between reading the clock and charging the store
/// (preemption, a clock re-calibration, an NTP step back): seconds at worst. A slot further
/// ahead than this is one left from long ago whose 32-bit index wrapped around.
const MAX_LATENESS_NANOS: u64 = 3_600 * 1_000_000_000;

/// Where a hit stamped in the window numbered `index` (the low 32 bits) counts, against a
/// slot last charged in `slot_index`.
pub(super) enum Place {
    /// The slot is in the hit's window.
    Same,
    /// The slot has moved to a newer window, ending this many nanoseconds after the hit's:
    /// the late hit counts there. A window never moves backwards.
    Newer(u64),
    /// The slot is in an older window: the hit's window starts from zero.
    Older,
}

#[inline]
pub(super) fn place(
    slot_index: u32,
    index: u32,
    quota: &crate::Quota,
    window_end: u64,
    now: u64,
    expires: &AtomicU64,
) -> Place {
    if slot_index == index {
        return Place::Same;
    }
    // Wrapping distance: correct however the 32-bit indices wrapped.
    let ahead = slot_index.wrapping_sub(index);
    if ahead < 1 << 31 {
        let length = u64::try_from(quota.window().as_nanos()).unwrap_or(u64::MAX);
        let by = u64::from(ahead).saturating_mul(length);
        // The hit is this late: from its stamp to the start of the slot's window.
        let late = (window_end - now).saturating_add(by - length);
        // A slot really in a newer window has raised `expires` to that window's end before
        // it moved there; a slot left from long ago whose index only reads as newer has not.
        if late <= MAX_LATENESS_NANOS
            && expires.load(Ordering::Acquire) >= window_end.saturating_add(by)
        {
            return Place::Newer(by);
        }
    }
    Place::Older
}

/// Returns `cost` to a slot if it is still in window `index`.
pub(super) fn give_back(slot: &AtomicU64, index: u32, cost: u32) {
    let mut current = slot.load(Ordering::Acquire);
    loop {
        let (slot_index, count) = unpack(current);
        if slot_index != index || count < cost {
            return;
        }
        match slot.compare_exchange_weak(
            current,
            pack(u64::from(index), count - cost),
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            Ok(_) => return,
            Err(actual) => current = actual,
        }
    }
}
