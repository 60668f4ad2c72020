//! A small in-process cache with a time to live, for registry and token lookups on the hot path.
//!
//! Writes made through this process evict their entries at once; the short TTL bounds how long a change
//! made elsewhere (another node, until cluster signals exist) can go unseen.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::RwLock;

/// A map whose entries expire `ttl_ms` after they were put in.
#[derive(Debug)]
pub struct TtlCache<K, V> {
    entries: RwLock<HashMap<K, (V, i64)>>,
    ttl_ms: i64,
    max_entries: usize,
}

impl<K: Eq + Hash, V: Clone> TtlCache<K, V> {
    /// A cache keeping entries `ttl_ms`, cleared whole when it reaches `max_entries`.
    pub fn new(ttl_ms: i64, max_entries: usize) -> Self {
        TtlCache {
            entries: RwLock::new(HashMap::new()),
            ttl_ms,
            max_entries,
        }
    }

    /// The value for `key` if it was put in less than the TTL ago.
    pub fn get<Q>(&self, key: &Q, now_ms: i64) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let entries = self.entries.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        let (value, put_at_ms) = entries.get(key)?;
        (now_ms - put_at_ms < self.ttl_ms).then(|| value.clone())
    }

    /// Puts a value in.
    pub fn insert(&self, key: K, value: V, now_ms: i64) {
        let mut entries = self.entries.write().unwrap_or_else(std::sync::PoisonError::into_inner);
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
        self.entries.write().unwrap_or_else(std::sync::PoisonError::into_inner).remove(key);
    }

    /// Evicts every entry whose value matches.
    pub fn remove_where(&self, mut matches: impl FnMut(&V) -> bool) {
        self.entries
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .retain(|_, (value, _)| !matches(value));
    }
}

#[cfg(test)]
mod tests {
    use super::TtlCache;

    #[test]
    fn entries_expire_and_evict() {
        let cache: TtlCache<String, u32> = TtlCache::new(100, 2);
        cache.insert("a".into(), 1, 0);
        assert_eq!(cache.get("a", 99), Some(1));
        assert_eq!(cache.get("a", 100), None);
        cache.insert("b".into(), 2, 0);
        cache.remove_where(|v| *v == 2);
        assert_eq!(cache.get("b", 0), None);
        cache.insert("c".into(), 3, 0);
        cache.insert("d".into(), 4, 0);
        cache.insert("e".into(), 5, 0);
        assert_eq!(cache.get("e", 0), Some(5));
    }
}
