//! The per-thread front table both credential caches put before moka.
//!
//! moka records every read in a channel all threads share, which is most of a cached check's
//! cost once two threads hit it. A front table keeps, per thread, the last few entries that
//! thread read from its cache: direct-mapped, [`SLOTS`] slots, one allocation per thread on
//! first use. It is never authoritative. A slot counts only for the cache that filled it (caches
//! are told apart by an id) and the tag it was filled under (the API-key cache's invalidation
//! generation), it is matched on the whole key, never on an unkeyed hash (the API-key cache's
//! second table is keyed by a 128-bit SipHash under a secret key, which stands for the presented
//! key as its digest does), and what it hands back is still judged fresh or not per request by
//! its owner.

use std::borrow::Borrow;
use std::sync::atomic::{AtomicU64, Ordering};

/// Slots per thread and table.
pub(crate) const SLOTS: usize = 64;

/// A fresh id for a cache, distinct from every other cache's in the process.
pub(crate) fn next_cache_id() -> u64 {
    static NEXT_ID: AtomicU64 = AtomicU64::new(1);
    NEXT_ID.fetch_add(1, Ordering::Relaxed)
}

/// One thread's table, held in a `thread_local!` by the cache module that owns it. The caller
/// picks the slot (`index`, taken modulo [`SLOTS`]) from its key, in whatever way spreads its
/// keys.
pub(crate) struct FrontTable<K, V> {
    slots: Vec<Option<Slot<K, V>>>,
}

struct Slot<K, V> {
    cache: u64,
    tag: u64,
    key: K,
    value: V,
}

impl<K, V: Clone> FrontTable<K, V> {
    pub(crate) const fn new() -> Self {
        Self { slots: Vec::new() }
    }

    /// The value `cache` stored for `key` under `tag` in slot `index`, if it is still there.
    #[inline]
    pub(crate) fn get<Q>(&self, index: usize, cache: u64, tag: u64, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: PartialEq + ?Sized,
    {
        let slot = self.slots.get(index % SLOTS)?.as_ref()?;
        (slot.cache == cache && slot.tag == tag && slot.key.borrow() == key)
            .then(|| slot.value.clone())
    }

    /// Puts `value` in slot `index`, replacing whatever was there.
    pub(crate) fn put(&mut self, index: usize, cache: u64, tag: u64, key: K, value: V) {
        if self.slots.is_empty() {
            self.slots.resize_with(SLOTS, || None);
        }
        self.slots[index % SLOTS] = Some(Slot {
            cache,
            tag,
            key,
            value,
        });
    }

    /// Empties slot `index` if it holds `cache`'s `key` (under any tag).
    // The API-key cache forgets by tag (its generation); only the JWT cache removes.
    #[cfg_attr(not(feature = "jwt-base"), allow(dead_code))]
    pub(crate) fn remove<Q>(&mut self, index: usize, cache: u64, key: &Q)
    where
        K: Borrow<Q>,
        Q: PartialEq + ?Sized,
    {
        if let Some(slot) = self.slots.get_mut(index % SLOTS) {
            if slot
                .as_ref()
                .is_some_and(|s| s.cache == cache && s.key.borrow() == key)
            {
                *slot = None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slot_answers_only_its_cache_tag_and_whole_key() {
        let mut table: FrontTable<Box<[u8]>, u32> = FrontTable::new();
        assert_eq!(table.get(3, 1, 0, b"k".as_slice()), None, "empty");
        table.put(3, 1, 7, Box::from(b"key".as_slice()), 42);
        assert_eq!(table.get(3, 1, 7, b"key".as_slice()), Some(42));
        assert_eq!(
            table.get(3 + SLOTS, 1, 7, b"key".as_slice()),
            Some(42),
            "modulo"
        );
        assert_eq!(table.get(3, 2, 7, b"key".as_slice()), None, "another cache");
        assert_eq!(table.get(3, 1, 8, b"key".as_slice()), None, "another tag");
        assert_eq!(table.get(3, 1, 7, b"ke".as_slice()), None, "a prefix");
        assert_eq!(table.get(4, 1, 7, b"key".as_slice()), None, "another slot");
        table.remove(3, 2, b"key".as_slice());
        assert_eq!(
            table.get(3, 1, 7, b"key".as_slice()),
            Some(42),
            "not its cache"
        );
        table.remove(3, 1, b"key".as_slice());
        assert_eq!(table.get(3, 1, 7, b"key".as_slice()), None);
        assert_ne!(next_cache_id(), next_cache_id());
    }
}
