//! A typed map over the raw [`Dict`]: hashes keys with a [`KeyHasher`] and compares with `Eq`.
//!
//! Problem: most callers (tests, small per-key collections, benchmarks) want `get`/`insert`
//! without hashing by hand, while the keyspace wants the raw dict and the hasher to hash each
//! key once. `Map` is the first and exposes both parts for the second (the layering of
//! hashbrown's `HashMap` over `RawTable`).

use std::borrow::Borrow;
use std::hash::Hash;

use crate::dict::Dict;
use crate::hasher::KeyHasher;

/// A hash map with a keyed hasher over a [`Dict`].
#[derive(Debug, Default)]
pub struct Map<K, V> {
    dict: Dict<K, V>,
    hasher: KeyHasher,
}

impl<K: Hash + Eq, V> Map<K, V> {
    /// An empty map with a fresh random hash key.
    pub fn new() -> Self {
        Self::with_hasher(0, KeyHasher::new())
    }

    /// An empty map that holds `n` entries without resizing.
    pub fn with_capacity(n: usize) -> Self {
        Self::with_hasher(n, KeyHasher::new())
    }

    /// An empty map sized for `n` entries that hashes with `hasher`.
    pub fn with_hasher(n: usize, hasher: KeyHasher) -> Self {
        Map {
            dict: Dict::with_capacity(n),
            hasher,
        }
    }

    /// The hasher (hash a key once with it and use [`Map::dict`] for raw access).
    pub fn hasher(&self) -> &KeyHasher {
        &self.hasher
    }

    /// The underlying dict.
    pub fn dict(&self) -> &Dict<K, V> {
        &self.dict
    }

    /// The underlying dict, mutably (hash with [`Map::hasher`] to keep entries findable).
    pub fn dict_mut(&mut self) -> &mut Dict<K, V> {
        &mut self.dict
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.dict.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.dict.is_empty()
    }

    /// The value of `k`.
    #[inline]
    pub fn get<Q>(&self, k: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let h = self.hasher.hash(k);
        self.dict.find(h, |x| x.borrow() == k).map(|(_, v)| v)
    }

    /// The value of `k`, mutably.
    #[inline]
    pub fn get_mut<Q>(&mut self, k: &Q) -> Option<&mut V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let h = self.hasher.hash(k);
        self.dict.find_mut(h, |x| x.borrow() == k).map(|(_, v)| v)
    }

    /// True when `k` is present.
    pub fn contains_key<Q>(&self, k: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.get(k).is_some()
    }

    /// Inserts or replaces; returns the previous value.
    #[inline]
    pub fn insert(&mut self, k: K, v: V) -> Option<V> {
        let h = self.hasher.hash(&k);
        if let Some((_, old)) = self.dict.find_mut(h, |x| *x == k) {
            return Some(std::mem::replace(old, v));
        }
        self.dict.insert_unique(h, k, v);
        None
    }

    /// Removes `k`; returns its value.
    pub fn remove<Q>(&mut self, k: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.remove_entry(k).map(|(_, v)| v)
    }

    /// Removes `k`; returns the stored key and value.
    pub fn remove_entry<Q>(&mut self, k: &Q) -> Option<(K, V)>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let h = self.hasher.hash(k);
        self.dict.remove(h, |x| x.borrow() == k)
    }

    /// Removes everything.
    pub fn clear(&mut self) {
        self.dict.clear();
    }

    /// Every entry, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> + '_ {
        self.dict.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::Map;

    #[test]
    fn basic_ops() {
        let mut m: Map<Vec<u8>, u32> = Map::new();
        assert!(m.is_empty());
        for i in 0..1000u32 {
            assert_eq!(m.insert(format!("key:{i}").into_bytes(), i), None);
        }
        assert_eq!(m.len(), 1000);
        assert_eq!(m.insert(b"key:7".to_vec(), 70), Some(7));
        assert_eq!(m.get(b"key:7".as_slice()), Some(&70));
        assert_eq!(m.get(b"key:1000".as_slice()), None);
        *m.get_mut(b"key:8".as_slice()).unwrap() += 1;
        assert_eq!(m.get(b"key:8".as_slice()), Some(&9));
        for i in 0..900u32 {
            let k = format!("key:{i}").into_bytes();
            assert!(m.remove(k.as_slice()).is_some());
            assert!(!m.contains_key(k.as_slice()));
        }
        assert_eq!(m.len(), 100);
        let sum: u64 = m.iter().map(|(_, v)| *v as u64).sum();
        assert_eq!(sum, (900..1000u64).sum::<u64>());
        // Raw access with the exported hasher agrees with the typed API.
        let h = m.hasher().hash_key(b"key:950");
        assert_eq!(
            m.dict().find(h, |k| k == b"key:950").map(|(_, v)| *v),
            Some(950)
        );
        m.dict().check_invariants();
        m.clear();
        assert!(m.is_empty());
    }
}
