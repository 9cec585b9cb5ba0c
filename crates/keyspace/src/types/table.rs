//! An insertion-ordered byte-string map with O(1) lookup and O(1) access by position.
//!
//! Problem: sets need a uniformly random member in O(1) (SRANDMEMBER, SPOP), which a plain hash
//! table cannot give, and small hashes must iterate in the order Redis's listpack encoding
//! keeps (insertion order, deletions closing the gap). The layout is the one of the `indexmap`
//! crate: the entries live densely in a `Vec`, and a `hashbrown::HashTable<usize>` maps the hash
//! of a key to its position (keyed by a per-table `RandomState`, so clients cannot choose
//! colliding keys). Removal either swaps the last entry into the hole (O(1)) or shifts the tail
//! down (O(n), keeps order; used only for small tables).

use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::BuildHasher;

use hashbrown::HashTable;

/// Dense entries plus a hash index of positions. See the module docs.
#[derive(Clone, Default)]
pub(crate) struct IndexedTable<V> {
    entries: Vec<(Vec<u8>, V)>,
    index: HashTable<usize>,
    hasher: RandomState,
    /// Sum of the keys' lengths (kept by insert/remove, so [`IndexedTable::base_mem`] is O(1)).
    key_bytes: usize,
}

impl<V: fmt::Debug> fmt::Debug for IndexedTable<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(
                self.entries
                    .iter()
                    .map(|(k, v)| (String::from_utf8_lossy(k), v)),
            )
            .finish()
    }
}

impl<V> IndexedTable<V> {
    /// Number of entries.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    fn hash(&self, key: &[u8]) -> u64 {
        self.hasher.hash_one(key)
    }

    /// Position of `key`, if present.
    pub(crate) fn position(&self, key: &[u8]) -> Option<usize> {
        let h = self.hash(key);
        let entries = &self.entries;
        self.index.find(h, |&i| entries[i].0 == key).copied()
    }

    /// The value of `key`.
    pub(crate) fn get(&self, key: &[u8]) -> Option<&V> {
        self.position(key).map(|i| &self.entries[i].1)
    }

    /// The value of `key`, mutably.
    pub(crate) fn get_mut(&mut self, key: &[u8]) -> Option<&mut V> {
        self.position(key).map(|i| &mut self.entries[i].1)
    }

    /// The entry at `pos` (`pos < len`).
    pub(crate) fn at(&self, pos: usize) -> Option<(&[u8], &V)> {
        self.entries.get(pos).map(|(k, v)| (k.as_slice(), v))
    }

    /// Inserts or replaces; returns the previous value. A replaced entry keeps its position.
    pub(crate) fn insert(&mut self, key: Vec<u8>, value: V) -> Option<V> {
        if let Some(i) = self.position(&key) {
            return Some(std::mem::replace(&mut self.entries[i].1, value));
        }
        let h = self.hash(&key);
        let pos = self.entries.len();
        let (entries, hasher) = (&self.entries, &self.hasher);
        self.index
            .insert_unique(h, pos, |&i| hasher.hash_one(entries[i].0.as_slice()));
        self.key_bytes += key.len();
        self.entries.push((key, value));
        None
    }

    fn unindex(&mut self, pos: usize) {
        let h = self.hash(&self.entries[pos].0);
        if let Ok(e) = self.index.find_entry(h, |&i| i == pos) {
            e.remove();
        }
    }

    fn reindex(&mut self, from: usize, to: usize) {
        let h = self.hash(&self.entries[from].0);
        if let Some(slot) = self.index.find_mut(h, |&i| i == from) {
            *slot = to;
        }
    }

    /// Removes the entry at `pos` by moving the last entry into its place (O(1)).
    pub(crate) fn swap_remove_at(&mut self, pos: usize) -> Option<(Vec<u8>, V)> {
        if pos >= self.entries.len() {
            return None;
        }
        self.unindex(pos);
        let last = self.entries.len() - 1;
        if pos != last {
            self.reindex(last, pos);
        }
        let out = self.entries.swap_remove(pos);
        self.key_bytes -= out.0.len();
        self.shrink_if_sparse();
        Some(out)
    }

    /// Removes the entry at `pos` shifting the later entries down (keeps order, O(n)).
    pub(crate) fn shift_remove_at(&mut self, pos: usize) -> Option<(Vec<u8>, V)> {
        if pos >= self.entries.len() {
            return None;
        }
        self.unindex(pos);
        for slot in self.index.iter_mut() {
            if *slot > pos {
                *slot -= 1;
            }
        }
        let out = self.entries.remove(pos);
        self.key_bytes -= out.0.len();
        self.shrink_if_sparse();
        Some(out)
    }

    /// Gives memory back after mass deletions (a quarter full or less).
    fn shrink_if_sparse(&mut self) {
        if self.entries.capacity() > 64 && self.entries.len() * 4 < self.entries.capacity() {
            self.entries.shrink_to(self.entries.len() * 2);
            let (entries, hasher) = (&self.entries, &self.hasher);
            self.index.shrink_to(entries.len() * 2, |&i| {
                hasher.hash_one(entries[i].0.as_slice())
            });
        }
    }

    /// Entries in position order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&[u8], &V)> + Clone {
        self.entries.iter().map(|(k, v)| (k.as_slice(), v))
    }

    /// [`IndexedTable::base_mem`] with the key bytes recounted (O(n); tests).
    pub(crate) fn base_mem_recount(&self) -> usize {
        self.entries.capacity() * std::mem::size_of::<(Vec<u8>, V)>()
            + self.index.allocation_size()
            + self.entries.iter().map(|(k, _)| k.len()).sum::<usize>()
    }

    /// Bytes allocated by the entries' vector and the index (not counting what `V` owns).
    pub(crate) fn base_mem(&self) -> usize {
        self.entries.capacity() * std::mem::size_of::<(Vec<u8>, V)>()
            + self.index.allocation_size()
            + self.key_bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_get_remove_keeps_index_consistent() {
        let mut t = IndexedTable::default();
        for i in 0..200u32 {
            assert!(t.insert(i.to_string().into_bytes(), i).is_none());
        }
        assert_eq!(t.insert(b"5".to_vec(), 500), Some(5));
        assert_eq!(t.get(b"5"), Some(&500));
        // swap removal moves the last entry into the hole
        let (k, _) = t.swap_remove_at(0).unwrap();
        assert_eq!(k, b"0");
        assert_eq!(t.at(0).unwrap().0, b"199");
        assert_eq!(t.position(b"199"), Some(0));
        // shift removal keeps order
        let (k, _) = t.shift_remove_at(1).unwrap();
        assert_eq!(k, b"1");
        assert_eq!(t.at(1).unwrap().0, b"2");
        for i in 2..199u32 {
            let key = i.to_string().into_bytes();
            let pos = t.position(&key).unwrap();
            assert_eq!(t.at(pos).unwrap().0, key.as_slice());
        }
        assert_eq!(t.len(), 198);
        assert!(t.swap_remove_at(1000).is_none());
        while t.len() > 0 {
            let (k, _) = t.swap_remove_at(t.len() / 2).unwrap();
            assert!(t.position(&k).is_none());
        }
    }
}
