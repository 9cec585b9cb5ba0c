//! An ordered map in `Arc`-shared chunks, for the big collections inside a value that a snapshot
//! may hold (a stream group's pending entries list and its consumers' PELs).
//!
//! Problem: a writer's `Arc::make_mut` on a value the snapshot worker still holds clones the
//! value; with a plain `BTreeMap` of a million pending entries, one XACK would copy them all.
//! Here the entries sit in sorted chunks of at most [`CHUNK_MAX`] entries, each behind an `Arc`,
//! indexed by their smallest key: cloning the map copies one pointer per chunk, and a write
//! copies only the chunk it changes (counted in [`ChunkMap::copied`], which the big-value tests
//! bound). Chunks split when they pass [`CHUNK_MAX`] and merge with a neighbour below a quarter
//! of it, so a map of `n` entries has at most about `4n / CHUNK_MAX + 1` chunks.

use std::collections::BTreeMap;
use std::ops::RangeFrom;

use forkless_sync::Arc;

/// Largest chunk; a chunk that grows past it splits in two.
pub const CHUNK_MAX: usize = 256;

/// An ordered map in shared chunks (see the module doc).
#[derive(Clone, Debug)]
pub struct ChunkMap<K, V> {
    chunks: BTreeMap<K, Arc<BTreeMap<K, V>>>,
    len: usize,
    copied: u64,
}

impl<K, V> Default for ChunkMap<K, V> {
    fn default() -> Self {
        ChunkMap {
            chunks: BTreeMap::new(),
            len: 0,
            copied: 0,
        }
    }
}

impl<K: Ord + Copy, V: Clone> ChunkMap<K, V> {
    /// An empty map.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when there is no entry.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Number of chunks (what a clone copies pointers of).
    pub fn chunk_count(&self) -> usize {
        self.chunks.len()
    }

    /// Entries copied so far because a write met a chunk shared with a clone.
    pub fn copied(&self) -> u64 {
        self.copied
    }

    /// The index key of the chunk that holds (or would hold) `k`.
    fn chunk_of(&self, k: &K) -> Option<K> {
        self.chunks
            .range(..=*k)
            .next_back()
            .or_else(|| self.chunks.iter().next())
            .map(|(ck, _)| *ck)
    }

    /// The chunk `ck` for writing (copied first when a clone shares it).
    fn chunk_mut(&mut self, ck: &K) -> Option<&mut BTreeMap<K, V>> {
        let c = self.chunks.get_mut(ck)?;
        if Arc::strong_count(c) > 1 || Arc::weak_count(c) > 0 {
            self.copied += c.len() as u64;
        }
        Some(Arc::make_mut(c))
    }

    /// The value of `k`.
    pub fn get(&self, k: &K) -> Option<&V> {
        self.chunks.range(..=*k).next_back()?.1.get(k)
    }

    /// True when `k` is present.
    pub fn contains_key(&self, k: &K) -> bool {
        self.get(k).is_some()
    }

    /// The value of `k` for writing (its chunk unshared first; nothing copied when absent).
    pub fn get_mut(&mut self, k: &K) -> Option<&mut V> {
        if !self.contains_key(k) {
            return None;
        }
        let ck = self.chunk_of(k)?;
        self.chunk_mut(&ck)?.get_mut(k)
    }

    /// Insert `k`, returning the previous value.
    pub fn insert(&mut self, k: K, v: V) -> Option<V> {
        let Some(ck) = self.chunk_of(&k) else {
            self.chunks.insert(k, Arc::new(BTreeMap::from([(k, v)])));
            self.len = 1;
            return None;
        };
        let c = self.chunk_mut(&ck)?;
        let old = c.insert(k, v);
        let split = (c.len() > CHUNK_MAX).then(|| {
            let mid = *c.keys().nth(c.len() / 2).unwrap_or(&k);
            c.split_off(&mid)
        });
        if old.is_none() {
            self.len += 1;
        }
        if k < ck {
            // A new smallest key: the first chunk's index key moves down.
            if let Some(c) = self.chunks.remove(&ck) {
                self.chunks.insert(k, c);
            }
        }
        if let Some(hi) = split {
            if let Some(&lo) = hi.keys().next() {
                self.chunks.insert(lo, Arc::new(hi));
            }
        }
        old
    }

    /// Remove `k`, returning its value.
    pub fn remove(&mut self, k: &K) -> Option<V> {
        if !self.contains_key(k) {
            return None;
        }
        let ck = self.chunk_of(k)?;
        let c = self.chunk_mut(&ck)?;
        let v = c.remove(k)?;
        let left = c.len();
        self.len -= 1;
        let mut c = self.chunks.remove(&ck)?;
        if left == 0 {
            return Some(v);
        }
        // Merge a small chunk into its next neighbour (or the neighbour into it).
        if left < CHUNK_MAX / 4 {
            let next = self.chunks.range(ck..).next().map(|(nk, n)| (*nk, n.len()));
            if let Some((nk, nlen)) = next.filter(|(_, n)| left + n <= CHUNK_MAX) {
                if let Some(mut n) = self.chunks.remove(&nk) {
                    if Arc::strong_count(&n) > 1 || Arc::weak_count(&n) > 0 {
                        self.copied += nlen as u64;
                    }
                    Arc::make_mut(&mut c).append(Arc::make_mut(&mut n));
                }
            }
        }
        if let Some(&lo) = c.keys().next() {
            self.chunks.insert(lo, c);
        }
        Some(v)
    }

    /// Entries with a key in `r`, ascending.
    pub fn range(&self, r: RangeFrom<K>) -> impl DoubleEndedIterator<Item = (&K, &V)> + '_ {
        let from = r.start;
        let start = self
            .chunks
            .range(..=from)
            .next_back()
            .map_or(from, |(ck, _)| *ck);
        self.chunks
            .range(start..)
            .flat_map(move |(_, c)| c.range(from..))
    }

    /// Entries with `a <= key <= b`, ascending (reverse it for descending); empty when `a > b`.
    pub fn range_between(&self, a: K, b: K) -> impl DoubleEndedIterator<Item = (&K, &V)> + '_ {
        (a <= b)
            .then(|| {
                let start = self.chunks.range(..=a).next_back().map_or(a, |(ck, _)| *ck);
                self.chunks
                    .range(start..=b)
                    .flat_map(move |(_, c)| c.range(a..=b))
            })
            .into_iter()
            .flatten()
    }

    /// The entry with the largest key `<= k`.
    pub fn floor(&self, k: &K) -> Option<(&K, &V)> {
        self.chunks
            .range(..=*k)
            .next_back()?
            .1
            .range(..=*k)
            .next_back()
    }

    /// The entry with the largest key.
    pub fn last(&self) -> Option<(&K, &V)> {
        self.chunks.values().next_back()?.iter().next_back()
    }

    /// The smallest key.
    pub fn first_key(&self) -> Option<K> {
        self.chunks.keys().next().copied()
    }

    /// All entries, ascending.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (&K, &V)> + ExactSizeIterator + '_ {
        Exact {
            inner: self.chunks.values().flat_map(|c| c.iter()),
            left: self.len,
        }
    }

    /// All keys, ascending.
    pub fn keys(&self) -> impl DoubleEndedIterator<Item = &K> + ExactSizeIterator + '_ {
        self.iter().map(|(k, _)| k)
    }

    /// The chunk handles in key order (tests check which chunks a clone still shares).
    pub fn chunk_handles(&self) -> impl Iterator<Item = &Arc<BTreeMap<K, V>>> + '_ {
        self.chunks.values()
    }
}

/// An iterator of a known length (the map's), so callers get `ExactSizeIterator`.
struct Exact<I> {
    inner: I,
    left: usize,
}

impl<I: Iterator> Iterator for Exact<I> {
    type Item = I::Item;

    fn next(&mut self) -> Option<I::Item> {
        let x = self.inner.next()?;
        self.left = self.left.saturating_sub(1);
        Some(x)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl<I: DoubleEndedIterator> DoubleEndedIterator for Exact<I> {
    fn next_back(&mut self) -> Option<I::Item> {
        let x = self.inner.next_back()?;
        self.left = self.left.saturating_sub(1);
        Some(x)
    }
}

impl<I: Iterator> ExactSizeIterator for Exact<I> {}

impl<K: Ord + Copy, V: Clone + PartialEq> PartialEq for ChunkMap<K, V> {
    fn eq(&self, other: &Self) -> bool {
        self.len == other.len && self.iter().eq(other.iter())
    }
}

impl<K: Ord + Copy, V: Clone + Eq> Eq for ChunkMap<K, V> {}

impl<K: Ord + Copy, V: Clone> FromIterator<(K, V)> for ChunkMap<K, V> {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(it: I) -> Self {
        let mut m = ChunkMap::new();
        for (k, v) in it {
            m.insert(k, v);
        }
        m
    }
}

impl<'a, K: Ord + Copy, V: Clone> IntoIterator for &'a ChunkMap<K, V> {
    type Item = (&'a K, &'a V);
    type IntoIter = Box<dyn DoubleEndedIterator<Item = (&'a K, &'a V)> + 'a>;

    fn into_iter(self) -> Self::IntoIter {
        Box::new(self.iter())
    }
}

/// An ordered set in shared chunks: a [`ChunkMap`] of `()`.
#[derive(Clone, Debug, Default)]
pub struct ChunkSet<K>(ChunkMap<K, ()>);

impl<K: Ord + Copy> PartialEq for ChunkSet<K> {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0
    }
}

impl<K: Ord + Copy> Eq for ChunkSet<K> {}

impl<K: Ord + Copy> ChunkSet<K> {
    /// An empty set.
    pub fn new() -> Self {
        ChunkSet(ChunkMap::new())
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// True when `k` is present.
    pub fn contains(&self, k: &K) -> bool {
        self.0.contains_key(k)
    }

    /// Add `k`; true when it was not there.
    pub fn insert(&mut self, k: K) -> bool {
        self.0.insert(k, ()).is_none()
    }

    /// Remove `k`; true when it was there.
    pub fn remove(&mut self, k: &K) -> bool {
        self.0.remove(k).is_some()
    }

    /// Keys in `r`, ascending.
    pub fn range(&self, r: RangeFrom<K>) -> impl DoubleEndedIterator<Item = &K> + '_ {
        self.0.range(r).map(|(k, _)| k)
    }

    /// All keys, ascending.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &K> + ExactSizeIterator + '_ {
        self.0.keys()
    }

    /// Number of chunks.
    pub fn chunk_count(&self) -> usize {
        self.0.chunk_count()
    }

    /// Keys copied so far because a write met a shared chunk.
    pub fn copied(&self) -> u64 {
        self.0.copied()
    }
}

impl<K: Ord + Copy> FromIterator<K> for ChunkSet<K> {
    fn from_iter<I: IntoIterator<Item = K>>(it: I) -> Self {
        ChunkSet(it.into_iter().map(|k| (k, ())).collect())
    }
}

impl<'a, K: Ord + Copy> IntoIterator for &'a ChunkSet<K> {
    type Item = &'a K;
    type IntoIter = Box<dyn DoubleEndedIterator<Item = &'a K> + 'a>;

    fn into_iter(self) -> Self::IntoIter {
        Box::new(self.iter())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    /// Against `BTreeMap` (the model): random inserts, removes, lookups and ranges keep the
    /// same contents, chunks stay within their bounds and index keys stay each chunk's minimum.
    #[test]
    fn behaves_as_a_btreemap() {
        let mut rng = StdRng::seed_from_u64(7);
        let mut m: ChunkMap<u32, u32> = ChunkMap::new();
        let mut model = BTreeMap::new();
        for step in 0..60_000u32 {
            let k = rng.gen_range(0..3_000u32);
            match rng.gen_range(0..10) {
                0..=5 => assert_eq!(m.insert(k, step), model.insert(k, step)),
                6..=8 => assert_eq!(m.remove(&k), model.remove(&k)),
                _ => {
                    if let Some(v) = m.get_mut(&k) {
                        *v += 1;
                    }
                    if let Some(v) = model.get_mut(&k) {
                        *v += 1;
                    }
                }
            }
            assert_eq!(m.len(), model.len());
            if step % 997 == 0 {
                assert!(m.iter().eq(model.iter()));
                assert!(m.range(k..).eq(model.range(k..)));
                let hi = k.saturating_add(400);
                assert!(m.range_between(k, hi).eq(model.range(k..=hi)));
                assert!(m.range_between(k, hi).rev().eq(model.range(k..=hi).rev()));
                assert_eq!(m.range_between(hi, k).count(), 0);
                assert_eq!(m.floor(&k), model.range(..=k).next_back());
                assert_eq!(m.last(), model.iter().next_back());
                assert_eq!(m.first_key(), model.keys().next().copied());
                assert_eq!(m.keys().next_back(), model.keys().next_back());
                for (ck, c) in &m.chunks {
                    assert!(!c.is_empty() && c.len() <= CHUNK_MAX);
                    assert_eq!(c.keys().next(), Some(ck));
                }
                assert!(m.chunk_count() <= 4 * m.len() / CHUNK_MAX + 1 + m.len() / 16);
            }
            assert_eq!(m.get(&k), model.get(&k));
        }
    }

    /// A write to a map shared with a clone copies one chunk (or two, merging), never the map.
    #[test]
    fn a_write_to_a_shared_map_copies_one_chunk() {
        let mut m: ChunkMap<u64, u64> = (0..1_000_000u64).map(|k| (k * 2, k)).collect();
        let held = m.clone();
        assert_eq!(m.copied(), 0);
        m.remove(&1000);
        m.insert(777_777, 1);
        if let Some(v) = m.get_mut(&1_999_998) {
            *v = 0;
        }
        assert!(m.copied() <= 4 * CHUNK_MAX as u64, "copied {}", m.copied());
        let held_ptrs: std::collections::HashSet<*const BTreeMap<u64, u64>> =
            held.chunk_handles().map(Arc::as_ptr).collect();
        let shared = m
            .chunk_handles()
            .filter(|c| held_ptrs.contains(&Arc::as_ptr(c)))
            .count();
        assert!(shared + 4 >= m.chunk_count());
        assert_eq!(held.get(&1000), Some(&500));
        assert_eq!(held.len(), 1_000_000);
    }
}
