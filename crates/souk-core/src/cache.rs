//! A small in-process cache with a time to live, for registry and token lookups on the hot path.
//!
//! Writes made through this process evict their entries at once, and with cluster signals
//! (`crate::signals`) so do writes on other nodes; the short TTL bounds how long a change can go unseen
//! when a signal is lost (Redis unreachable, or no Redis at all).
//!
//! **A load never resurrects what an eviction removed.** A miss hands out a [`Stamp`] (the cache's
//! eviction count); the value read from the store afterwards is kept only if no eviction happened in
//! between. Without this, a read that began before a change and ended after its eviction would put
//! the old value back for a whole TTL.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::RwLock;

/// What a miss hands out: pass it to [`TtlCache::insert`] with the value loaded after the miss.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp(u64);

/// A map whose entries expire `ttl_ms` after they were put in.
#[derive(Debug)]
pub struct TtlCache<K, V> {
    entries: RwLock<HashMap<K, (V, i64)>>,
    ttl_ms: i64,
    max_entries: usize,
    /// Evictions so far (changed under the write lock, read before a load).
    evictions: AtomicU64,
}

impl<K: Eq + Hash, V: Clone> TtlCache<K, V> {
    /// A cache keeping entries `ttl_ms`, cleared whole when it reaches `max_entries`.
    pub fn new(ttl_ms: i64, max_entries: usize) -> Self {
        TtlCache {
            entries: RwLock::new(HashMap::new()),
            ttl_ms,
            max_entries,
            evictions: AtomicU64::new(0),
        }
    }

    /// The value for `key` if it was put in less than the TTL ago; on a miss, the [`Stamp`] to insert
    /// the value loaded next with.
    pub fn get<Q>(&self, key: &Q, now_ms: i64) -> Result<V, Stamp>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let entries = self.entries.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        match entries.get(key) {
            Some((value, put_at_ms)) if now_ms - put_at_ms < self.ttl_ms => Ok(value.clone()),
            // Read under the lock: an eviction after this point changes the count.
            _ => Err(Stamp(self.evictions.load(Ordering::Acquire))),
        }
    }

    /// Puts in a value loaded after the miss that gave `stamp`, unless something was evicted since
    /// (then the value may be older than the eviction, and the next lookup loads again).
    pub fn insert(&self, key: K, value: V, now_ms: i64, stamp: Stamp) {
        let mut entries = self.entries.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        if self.evictions.load(Ordering::Acquire) != stamp.0 {
            return;
        }
        if entries.len() >= self.max_entries {
            // Rare and cheap to refill: simpler than an LRU, and bounded.
            entries.clear();
        }
        entries.insert(key, (value, now_ms));
    }

    /// Evicts one entry.
    pub fn remove<Q>(&self, key: &Q)
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let mut entries = self.entries.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        self.evictions.fetch_add(1, Ordering::AcqRel);
        entries.remove(key);
    }

    /// Evicts every entry whose value matches.
    pub fn remove_where(&self, mut matches: impl FnMut(&V) -> bool) {
        let mut entries = self.entries.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        self.evictions.fetch_add(1, Ordering::AcqRel);
        entries.retain(|_, (value, _)| !matches(value));
    }

    /// Evicts everything (a node that may have missed signals).
    pub fn clear(&self) {
        let mut entries = self.entries.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        self.evictions.fetch_add(1, Ordering::AcqRel);
        entries.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::TtlCache;

    #[test]
    fn entries_expire_and_evict() {
        let cache: TtlCache<String, u32> = TtlCache::new(100, 2);
        let put = |key: &str, value: u32| {
            let stamp = cache.get(key, 0).unwrap_err();
            cache.insert(key.into(), value, 0, stamp);
        };
        put("a", 1);
        assert_eq!(cache.get("a", 99), Ok(1));
        assert!(cache.get("a", 100).is_err());
        put("b", 2);
        cache.remove_where(|v| *v == 2);
        assert!(cache.get("b", 0).is_err());
        put("c", 3);
        put("d", 4);
        put("e", 5);
        assert_eq!(cache.get("e", 0), Ok(5));
        cache.clear();
        assert!(cache.get("e", 0).is_err());
    }

    #[test]
    fn a_load_that_straddles_an_eviction_is_not_kept() {
        let cache: TtlCache<String, u32> = TtlCache::new(1_000, 10);
        let stamp = cache.get("app", 0).unwrap_err();
        // The store is read (old value), then the change's eviction arrives before the insert.
        cache.remove("app");
        cache.insert("app".into(), 1, 0, stamp);
        assert!(cache.get("app", 0).is_err(), "the old value came back after its eviction");
        let stamp = cache.get("app", 0).unwrap_err();
        cache.insert("app".into(), 2, 0, stamp);
        assert_eq!(cache.get("app", 0), Ok(2));
    }
}
