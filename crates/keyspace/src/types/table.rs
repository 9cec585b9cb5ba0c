//! An insertion-ordered byte-string map with O(1) lookup and O(1) access by position.
//!
//! Problem: sets need a uniformly random member in O(1) (SRANDMEMBER, SPOP), which a plain hash
//! table cannot give, and small hashes must iterate in the order Redis's listpack encoding
//! keeps (insertion order, deletions closing the gap). The layout is the one of the `indexmap`
//! crate: the entries live densely in a `Vec`, and a `hashbrown::HashTable<usize>` maps the hash
//! of a key to its position (keyed by the process-wide, zero-sized
//! [`super::hasher::MemberHasher`], so clients cannot choose colliding keys). Removal swaps the last entry into the hole (O(1)).
//!
//! Two forms with the same positions and the same order: the flat form above up to [`BIG_AT`]
//! entries, and past it the chunked form of [`super::segtable`] (entries in `Arc`'d chunks, the
//! index in `Arc`'d segments), so a write to a big table a snapshot still holds copies one chunk,
//! not the table. The big form turns flat again below `BIG_AT / 4` entries.

use super::hasher::MemberHasher;
use std::fmt;
use std::hash::BuildHasher;

use hashbrown::HashTable;

use super::segtable::{Iter, SegTable, CHUNK};

/// Entries past which a table takes the big (chunked) form.
pub(crate) const BIG_AT: usize = CHUNK;

/// The flat form: dense entries plus a hash index of positions. See the module docs.
#[derive(Clone, Default)]
pub(crate) struct Flat<V> {
    entries: Vec<(Vec<u8>, V)>,
    index: HashTable<usize>,
    hasher: MemberHasher,
    /// Sum of the keys' lengths (kept by insert/remove, so [`Flat::base_mem`] is O(1)).
    key_bytes: usize,
}

impl<V: fmt::Debug> fmt::Debug for Flat<V> {
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

impl<V> Flat<V> {
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
    #[cfg(test)]
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
    pub(crate) fn iter(&self) -> Iter<'_, V> {
        Iter {
            cur: self.entries.iter(),
            rest: [].iter(),
        }
    }

    /// [`Flat::base_mem`] with the key bytes recounted (O(n); tests).
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

/// An indexed table in its flat or big form (see the module docs).
#[derive(Clone)]
pub(crate) enum IndexedTable<V> {
    /// Up to [`BIG_AT`] entries.
    Flat(Flat<V>),
    /// Past [`BIG_AT`] entries (boxed: keeps the small form's size).
    Big(Box<SegTable<V>>),
}

impl<V> Default for IndexedTable<V> {
    fn default() -> Self {
        IndexedTable::Flat(Flat {
            entries: Vec::new(),
            index: HashTable::new(),
            hasher: MemberHasher,
            key_bytes: 0,
        })
    }
}

impl<V: fmt::Debug + Clone> fmt::Debug for IndexedTable<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.iter().map(|(k, v)| (String::from_utf8_lossy(k), v)))
            .finish()
    }
}

impl<V: Clone> IndexedTable<V> {
    /// Number of entries.
    pub(crate) fn len(&self) -> usize {
        match self {
            IndexedTable::Flat(t) => t.len(),
            IndexedTable::Big(t) => t.len(),
        }
    }

    /// Position of `key`, if present.
    pub(crate) fn position(&self, key: &[u8]) -> Option<usize> {
        match self {
            IndexedTable::Flat(t) => t.position(key),
            IndexedTable::Big(t) => t.position(key),
        }
    }

    /// The value of `key`.
    pub(crate) fn get(&self, key: &[u8]) -> Option<&V> {
        self.position(key).and_then(|i| self.at(i)).map(|(_, v)| v)
    }

    /// The value of `key`, mutably.
    pub(crate) fn get_mut(&mut self, key: &[u8]) -> Option<&mut V> {
        match self {
            IndexedTable::Flat(t) => t.get_mut(key),
            IndexedTable::Big(t) => {
                let pos = t.position(key)?;
                Some(t.value_at_mut(pos))
            }
        }
    }

    /// The entry at `pos` (`pos < len`).
    pub(crate) fn at(&self, pos: usize) -> Option<(&[u8], &V)> {
        match self {
            IndexedTable::Flat(t) => t.at(pos),
            IndexedTable::Big(t) => t.at(pos),
        }
    }

    /// Inserts or replaces; returns the previous value. A replaced entry keeps its position.
    pub(crate) fn insert(&mut self, key: Vec<u8>, value: V) -> Option<V> {
        let out = match self {
            IndexedTable::Flat(t) => t.insert(key, value),
            IndexedTable::Big(t) => return t.insert(key, value),
        };
        if out.is_none() && self.len() > BIG_AT {
            self.set_form(true);
        }
        out
    }

    /// Removes the entry at `pos` by moving the last entry into its place (O(1)).
    pub(crate) fn swap_remove_at(&mut self, pos: usize) -> Option<(Vec<u8>, V)> {
        let out = match self {
            IndexedTable::Flat(t) => t.swap_remove_at(pos),
            IndexedTable::Big(t) => t.swap_remove_at(pos),
        };
        self.maybe_flatten();
        out
    }

    fn maybe_flatten(&mut self) {
        if matches!(self, IndexedTable::Big(_)) && self.len() < BIG_AT / 4 {
            self.set_form(false);
        }
    }

    /// Converts to the big (`true`) or flat form, keeping positions (O(n)).
    fn set_form(&mut self, big: bool) {
        let taken = std::mem::take(self);
        *self = match (taken, big) {
            (IndexedTable::Flat(t), true) => {
                IndexedTable::Big(Box::new(SegTable::from_entries(t.entries, t.hasher)))
            }
            (IndexedTable::Big(t), false) => {
                let (entries, hasher) = t.into_entries();
                let mut flat = Flat {
                    entries: Vec::with_capacity(entries.len()),
                    index: HashTable::with_capacity(entries.len()),
                    hasher,
                    key_bytes: 0,
                };
                for (k, v) in entries {
                    flat.insert(k, v);
                }
                IndexedTable::Flat(flat)
            }
            (same, _) => same,
        };
    }

    /// Entries in position order.
    pub(crate) fn iter(&self) -> Iter<'_, V> {
        match self {
            IndexedTable::Flat(t) => t.iter(),
            IndexedTable::Big(t) => t.iter(),
        }
    }

    /// [`IndexedTable::base_mem`] recounted (O(n); tests).
    pub(crate) fn base_mem_recount(&self) -> usize {
        match self {
            IndexedTable::Flat(t) => t.base_mem_recount(),
            IndexedTable::Big(t) => t.base_mem_recount(),
        }
    }

    /// Bytes allocated by the structure and the keys (not counting what `V` owns), O(1).
    pub(crate) fn base_mem(&self) -> usize {
        match self {
            IndexedTable::Flat(t) => t.base_mem(),
            IndexedTable::Big(t) => t.base_mem(),
        }
    }

    /// True in the big (chunked) form.
    #[cfg(test)]
    pub(crate) fn is_big(&self) -> bool {
        matches!(self, IndexedTable::Big(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_get_remove_keeps_index_consistent() {
        let mut t = Flat::default();
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
        for i in 2..199u32 {
            let key = i.to_string().into_bytes();
            let pos = t.position(&key).unwrap();
            assert_eq!(t.at(pos).unwrap().0, key.as_slice());
        }
        assert_eq!(t.len(), 199);
        assert!(t.swap_remove_at(1000).is_none());
        while t.len() > 0 {
            let (k, _) = t.swap_remove_at(t.len() / 2).unwrap();
            assert!(t.position(&k).is_none());
        }
    }

    type Model = Vec<(Vec<u8>, u32)>;

    /// The table's entries, in order.
    fn entries(t: &IndexedTable<u32>) -> Vec<(Vec<u8>, u32)> {
        t.iter().map(|(k, v)| (k.to_vec(), *v)).collect()
    }

    /// The model: a `Vec` with the same swap-removal rule (positions are part of the contract).
    fn check_against(t: &IndexedTable<u32>, model: &[(Vec<u8>, u32)]) {
        assert_eq!(t.len(), model.len());
        assert_eq!(entries(t), model);
        for (i, (k, v)) in model.iter().enumerate() {
            assert_eq!(t.position(k), Some(i));
            assert_eq!(t.get(k), Some(v));
        }
        assert_eq!(t.base_mem(), t.base_mem_recount());
        if let IndexedTable::Big(b) = t {
            b.check();
        }
    }

    #[derive(Clone, Debug)]
    enum Op {
        Insert(u16, u32),
        InsertRange(u16, u16),
        Remove(u16),
        RemoveAt(usize),
        RemoveMany(u16, usize),
        Snapshot,
    }

    fn op() -> impl proptest::strategy::Strategy<Value = Op> {
        use proptest::prelude::*;
        prop_oneof![
            4 => (0..5000u16, any::<u32>()).prop_map(|(k, v)| Op::Insert(k, v)),
            2 => (0..5000u16, 0..2500u16).prop_map(|(k, n)| Op::InsertRange(k, n)),
            3 => (0..5000u16).prop_map(Op::Remove),
            3 => any::<usize>().prop_map(Op::RemoveAt),
            1 => (0..2500u16, any::<usize>()).prop_map(|(n, s)| Op::RemoveMany(n, s)),
            1 => Just(Op::Snapshot),
        ]
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(48))]
        /// Both forms and the conversions between them behave as the `Vec` model, and a clone
        /// taken at any point (a snapshot's copy) keeps its content while the original changes.
        #[test]
        fn model_with_snapshots(ops in proptest::collection::vec(op(), 1..40)) {
            let mut t: IndexedTable<u32> = IndexedTable::default();
            let mut model: Vec<(Vec<u8>, u32)> = Vec::new();
            let mut snaps: Vec<(IndexedTable<u32>, Model)> = Vec::new();
            let key = |k: u16| format!("key:{k}").into_bytes();
            let insert = |t: &mut IndexedTable<u32>, model: &mut Vec<(Vec<u8>, u32)>, k: Vec<u8>, v: u32| {
                let old = t.insert(k.clone(), v);
                match model.iter().position(|(mk, _)| *mk == k) {
                    Some(i) => assert_eq!(old, Some(std::mem::replace(&mut model[i].1, v))),
                    None => {
                        assert_eq!(old, None);
                        model.push((k, v));
                    }
                }
            };
            for op in ops {
                match op {
                    Op::Insert(k, v) => insert(&mut t, &mut model, key(k), v),
                    Op::InsertRange(k, n) => {
                        for i in 0..n {
                            insert(&mut t, &mut model, key(k.wrapping_add(i)), u32::from(i));
                        }
                    }
                    Op::Remove(k) => {
                        let k = key(k);
                        let pos = t.position(&k);
                        assert_eq!(pos, model.iter().position(|(mk, _)| *mk == k));
                        if let Some(p) = pos {
                            assert_eq!(t.swap_remove_at(p), Some(model.swap_remove(p)));
                        }
                    }
                    Op::RemoveAt(p) => {
                        let p = p % (model.len() + 1);
                        let want = (p < model.len()).then(|| model.swap_remove(p));
                        assert_eq!(t.swap_remove_at(p), want);
                    }
                    Op::RemoveMany(n, seed) => {
                        for i in 0..usize::from(n) {
                            if model.is_empty() {
                                break;
                            }
                            let p = seed.wrapping_mul(i + 1).wrapping_add(i) % model.len();
                            assert_eq!(t.swap_remove_at(p), Some(model.swap_remove(p)));
                        }
                    }
                    Op::Snapshot => snaps.push((t.clone(), model.clone())),
                }
                assert_eq!(t.is_big(), t.len() > BIG_AT || (t.is_big() && t.len() >= BIG_AT / 4));
            }
            check_against(&t, &model);
            for (s, m) in &snaps {
                check_against(s, m);
            }
        }
    }

    /// A write to a 1M-entry table that a clone (the snapshot's copy) still shares copies at
    /// most a few chunks and segments: O(CHUNK + n / CHUNK) elements, not O(n).
    #[test]
    fn write_to_a_shared_big_table_copies_o_chunk() {
        use super::super::cow::cow_copied;
        use super::super::segtable::SEG_MAX;
        const N: usize = 1_000_000;
        let mut t: IndexedTable<Vec<u8>> = IndexedTable::default();
        for i in 0..N {
            t.insert(format!("field:{i}").into_bytes(), b"v".to_vec());
        }
        assert!(t.is_big());
        let pointers = (N / CHUNK + N / (SEG_MAX / 2) + 2 * N / (SEG_MAX / 2) + 8) as u64;
        let bound = (2 * CHUNK + 2 * SEG_MAX) as u64;
        for round in 0..50 {
            let snapshot = t.clone();
            let before = cow_copied();
            let mut w = t.clone(); // what Arc::make_mut does to a shared value
            let clone_cost = cow_copied() - before;
            assert!(clone_cost <= pointers, "clone copied {clone_cost}");
            let before = cow_copied();
            match round % 4 {
                0 => assert!(w
                    .insert(format!("new:{round}").into_bytes(), b"x".to_vec())
                    .is_none()),
                1 => assert!(w
                    .insert(format!("field:{round}").into_bytes(), b"y".to_vec())
                    .is_some()),
                2 => assert!(w.swap_remove_at(round * 997).is_some()),
                _ => {
                    *w.get_mut(format!("field:{}", round * 31).as_bytes())
                        .unwrap() = b"z".to_vec()
                }
            }
            let copied = cow_copied() - before;
            assert!(
                copied <= bound,
                "round {round}: a write copied {copied} elements"
            );
            assert_eq!(snapshot.len(), t.len());
            t = w;
            drop(snapshot);
        }
    }
}
