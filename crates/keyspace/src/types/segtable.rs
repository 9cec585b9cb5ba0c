//! The big form of [`super::table::IndexedTable`]: dense entries in fixed-size chunks and a
//! hash index split into segments, each chunk and segment behind its own `Arc`.
//!
//! Problem: a snapshot worker holds `Arc<Value>`s while a writer changes them; the writer's
//! `Arc::make_mut` then clones the whole value, which for a 1M-field hash took 134-157 ms
//! (issue 19). Here a clone of the table copies only pointers (one per chunk, one per segment,
//! one `u32` per directory slot: O(n / CHUNK)) and a write makes unique only what it touches:
//! one or two entry chunks (at most [`CHUNK`] entries each) and one or two index segments (at
//! most [`SEG_MAX`] slots each). Work per write on a shared table: O(CHUNK + n / CHUNK).
//!
//! ```text
//!  entries (position order; all chunks full but the last)      index (extendible hashing)
//!  chunks: [Arc]──▶[(k,v) x1024] positions 0..1023             dir[h & (2^depth - 1)] ──▶ seg id
//!          [Arc]──▶[(k,v) x1024] positions 1024..2047          segs: [Arc]──▶ Seg { depth, HashTable<pos> }
//!          [Arc]──▶[(k,v) x  n % 1024]                                [Arc]──▶ Seg { ... }
//! ```
//!
//! Positions are dense (`0..len`), as in the flat form, so a uniformly random member (SPOP,
//! SRANDMEMBER, HRANDFIELD) is a random position: chunk `pos >> CHUNK_BITS`, offset
//! `pos & (CHUNK - 1)`. Removal swaps the last entry into the hole, exactly as the flat form
//! does, so the order of the entries (and hence of RDB output) is the same in both forms.
//!
//! The index is extendible hashing (Fagin et al., "Extendible Hashing - A Fast Access Method for
//! Dynamic Files", TODS 1979): the directory is indexed by the low `depth` bits of the key's
//! hash; a segment with local depth `d` holds the keys whose low `d` bits match its pattern and
//! splits in two (O(SEG_MAX)) when it would exceed [`SEG_MAX`] slots, doubling the directory
//! (O(n / SEG_MAX)) only when `d` equals the directory's depth. Inside a segment the hash is
//! rotated by 32 bits before it reaches `hashbrown`, so the bits the directory consumed are
//! neither `hashbrown`'s bucket bits (the low bits) nor its 7-bit tag (the top bits).

use super::hasher::MemberHasher;
use std::hash::BuildHasher;
use std::mem::size_of;

use forkless_sync::Arc;
use hashbrown::HashTable;

use super::cow::{count, cow};

/// log2 of [`CHUNK`].
pub(crate) const CHUNK_BITS: u32 = 10;
/// Entries per chunk.
pub(crate) const CHUNK: usize = 1 << CHUNK_BITS;
/// Index slots per segment before it splits (7/8 of 2048 buckets: `hashbrown`'s full load).
pub(crate) const SEG_MAX: usize = 1792;
/// Deepest directory (2^24 segments, ~15 G entries); past it segments just grow.
const MAX_DEPTH: u32 = 24;
/// Bytes of an `Arc`'s allocation besides its value (strong and weak counts).
const ARC_HEADER: usize = 2 * size_of::<usize>();

type Entry<V> = (Vec<u8>, V);
type Chunk<V> = Vec<Entry<V>>;

/// One index segment: positions of the entries whose hash's low `depth` bits match.
#[derive(Clone)]
struct Seg {
    depth: u32,
    table: HashTable<usize>,
}

/// See the module docs.
pub(crate) struct SegTable<V> {
    chunks: Vec<Arc<Chunk<V>>>,
    len: usize,
    dir: Vec<u32>,
    depth: u32,
    segs: Vec<Arc<Seg>>,
    hasher: MemberHasher,
    /// Sum of the keys' lengths.
    key_bytes: usize,
    /// Sum of the segments' `allocation_size()` (kept by every segment change).
    seg_bytes: usize,
}

impl<V> Clone for SegTable<V> {
    /// O(n / CHUNK): copies the pointers, not the entries (counted in `cow_copied`).
    fn clone(&self) -> Self {
        count(self.chunks.len() + self.segs.len() + self.dir.len());
        SegTable {
            chunks: self.chunks.clone(),
            len: self.len,
            dir: self.dir.clone(),
            depth: self.depth,
            segs: self.segs.clone(),
            hasher: self.hasher,
            key_bytes: self.key_bytes,
            seg_bytes: self.seg_bytes,
        }
    }
}

fn rot(h: u64) -> u64 {
    h.rotate_left(32)
}

fn key_at<V>(chunks: &[Arc<Chunk<V>>], pos: usize) -> &[u8] {
    &chunks[pos >> CHUNK_BITS][pos & (CHUNK - 1)].0
}

/// Iterator over a table's entries in position order (flat or big form).
pub(crate) struct Iter<'a, V> {
    pub(crate) cur: std::slice::Iter<'a, Entry<V>>,
    pub(crate) rest: std::slice::Iter<'a, Arc<Chunk<V>>>,
}

impl<V> Clone for Iter<'_, V> {
    fn clone(&self) -> Self {
        Iter {
            cur: self.cur.clone(),
            rest: self.rest.clone(),
        }
    }
}

impl<'a, V> Iterator for Iter<'a, V> {
    type Item = (&'a [u8], &'a V);

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some((k, v)) = self.cur.next() {
                return Some((k.as_slice(), v));
            }
            self.cur = self.rest.next()?.iter();
        }
    }
}

impl<V: Clone> SegTable<V> {
    /// A big table holding `entries` in this order (O(n)).
    pub(crate) fn from_entries(entries: Vec<Entry<V>>, hasher: MemberHasher) -> SegTable<V> {
        let mut t = SegTable {
            chunks: Vec::with_capacity(entries.len().div_ceil(CHUNK)),
            len: 0,
            dir: vec![0],
            depth: 0,
            segs: vec![Arc::new(Seg {
                depth: 0,
                table: HashTable::new(),
            })],
            hasher,
            key_bytes: 0,
            seg_bytes: 0,
        };
        for e in entries {
            let h = t.hasher.hash_one(e.0.as_slice());
            t.key_bytes += e.0.len();
            let pos = t.len;
            t.push_entry(e);
            t.index_insert(h, pos);
        }
        t
    }

    /// The entries in order, and the hasher (O(n); unshared chunks are moved, shared ones
    /// cloned).
    pub(crate) fn into_entries(self) -> (Vec<Entry<V>>, MemberHasher) {
        let mut out = Vec::with_capacity(self.len);
        for c in self.chunks {
            match Arc::try_unwrap(c) {
                Ok(v) => out.extend(v),
                Err(shared) => {
                    count(shared.len());
                    out.extend(shared.iter().cloned());
                }
            }
        }
        (out, self.hasher)
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    fn seg_of(&self, h: u64) -> usize {
        self.dir[(h as usize) & ((1usize << self.depth) - 1)] as usize
    }

    fn find(&self, h: u64, key: &[u8]) -> Option<usize> {
        let chunks = &self.chunks;
        self.segs[self.seg_of(h)]
            .table
            .find(rot(h), |&i| key_at(chunks, i) == key)
            .copied()
    }

    pub(crate) fn position(&self, key: &[u8]) -> Option<usize> {
        self.find(self.hasher.hash_one(key), key)
    }

    pub(crate) fn at(&self, pos: usize) -> Option<(&[u8], &V)> {
        if pos >= self.len {
            return None;
        }
        let (k, v) = &self.chunks[pos >> CHUNK_BITS][pos & (CHUNK - 1)];
        Some((k.as_slice(), v))
    }

    /// The entry at `pos` (`pos < len`), its chunk made unique first.
    fn entry_mut(&mut self, pos: usize) -> &mut Entry<V> {
        let c = cow(&mut self.chunks[pos >> CHUNK_BITS], Vec::len);
        &mut c[pos & (CHUNK - 1)]
    }

    pub(crate) fn value_at_mut(&mut self, pos: usize) -> &mut V {
        &mut self.entry_mut(pos).1
    }

    fn push_entry(&mut self, e: Entry<V>) {
        if self.chunks.last().is_none_or(|c| c.len() == CHUNK) {
            self.chunks.push(Arc::new(Vec::with_capacity(CHUNK)));
        }
        let last = self.chunks.len() - 1;
        let c = cow(&mut self.chunks[last], Vec::len);
        // A clone of a part-full chunk has capacity == len: give it back its full size once.
        if c.capacity() < CHUNK {
            c.reserve_exact(CHUNK - c.len());
        }
        c.push(e);
        self.len += 1;
    }

    fn pop_entry(&mut self) -> Option<Entry<V>> {
        let last = self.chunks.len().checked_sub(1)?;
        let c = cow(&mut self.chunks[last], Vec::len);
        let e = c.pop();
        if c.is_empty() {
            self.chunks.pop();
        }
        self.len -= 1;
        e
    }

    /// Runs `f` on segment `sid` made unique, keeping `seg_bytes` true.
    fn with_seg<R>(
        &mut self,
        sid: usize,
        f: impl FnOnce(&mut HashTable<usize>, &[Arc<Chunk<V>>], &MemberHasher) -> R,
    ) -> R {
        let seg = cow(&mut self.segs[sid], |s| s.table.len());
        let before = seg.table.allocation_size();
        let r = f(&mut seg.table, &self.chunks, &self.hasher);
        self.seg_bytes = self.seg_bytes + seg.table.allocation_size() - before;
        r
    }

    /// Indexes position `pos` (whose key hashes to `h`), splitting a full segment first.
    fn index_insert(&mut self, h: u64, pos: usize) {
        let mut sid = self.seg_of(h);
        while self.segs[sid].table.len() >= SEG_MAX && self.segs[sid].depth < MAX_DEPTH {
            self.split(sid, h);
            sid = self.seg_of(h);
        }
        self.with_seg(sid, |t, chunks, hasher| {
            t.insert_unique(rot(h), pos, |&i| rot(hasher.hash_one(key_at(chunks, i))));
        });
    }

    /// Splits segment `sid` (which holds hash `h`) by the next hash bit: O(SEG_MAX), plus
    /// O(n / SEG_MAX) when the directory doubles.
    fn split(&mut self, sid: usize, h: u64) {
        let d = self.segs[sid].depth;
        if d == self.depth {
            count(self.dir.len());
            self.dir.extend_from_within(..);
            self.depth += 1;
        }
        let bit = 1usize << d;
        let (chunks, hasher) = (&self.chunks, &self.hasher);
        let old = &self.segs[sid].table;
        count(old.len());
        let hashed: Vec<(u64, usize)> = old
            .iter()
            .map(|&i| (hasher.hash_one(key_at(chunks, i)), i))
            .collect();
        let ones = hashed
            .iter()
            .filter(|(hh, _)| *hh as usize & bit != 0)
            .count();
        let mut lo = HashTable::with_capacity(hashed.len() - ones);
        let mut hi = HashTable::with_capacity(ones);
        let rehash = |&i: &usize| rot(hasher.hash_one(key_at(chunks, i)));
        for (hh, i) in hashed {
            let t = if hh as usize & bit != 0 {
                &mut hi
            } else {
                &mut lo
            };
            t.insert_unique(rot(hh), i, rehash);
        }
        self.seg_bytes =
            self.seg_bytes + lo.allocation_size() + hi.allocation_size() - old.allocation_size();
        self.segs[sid] = Arc::new(Seg {
            depth: d + 1,
            table: lo,
        });
        let new = self.segs.len() as u32;
        self.segs.push(Arc::new(Seg {
            depth: d + 1,
            table: hi,
        }));
        let pattern = (h as usize) & (bit - 1);
        let mut j = pattern | bit;
        while j < self.dir.len() {
            self.dir[j] = new;
            j += bit << 1;
        }
    }

    fn unindex(&mut self, pos: usize) {
        let h = self.hasher.hash_one(key_at(&self.chunks, pos));
        let sid = self.seg_of(h);
        self.with_seg(sid, |t, chunks, hasher| {
            if let Ok(e) = t.find_entry(rot(h), |&i| i == pos) {
                e.remove();
            }
            // Give memory back after mass deletions (a quarter full or less).
            if t.capacity() > 64 && t.len() * 4 < t.capacity() {
                t.shrink_to(t.len() * 2, |&i| rot(hasher.hash_one(key_at(chunks, i))));
            }
        });
    }

    fn reindex(&mut self, from: usize, to: usize) {
        let h = self.hasher.hash_one(key_at(&self.chunks, from));
        let sid = self.seg_of(h);
        self.with_seg(sid, |t, _, _| {
            if let Some(slot) = t.find_mut(rot(h), |&i| i == from) {
                *slot = to;
            }
        });
    }

    /// Inserts or replaces; returns the previous value. A replaced entry keeps its position.
    pub(crate) fn insert(&mut self, key: Vec<u8>, value: V) -> Option<V> {
        let h = self.hasher.hash_one(key.as_slice());
        if let Some(pos) = self.find(h, &key) {
            return Some(std::mem::replace(self.value_at_mut(pos), value));
        }
        let pos = self.len;
        self.key_bytes += key.len();
        self.push_entry((key, value));
        self.index_insert(h, pos);
        None
    }

    /// Removes the entry at `pos` by moving the last entry into its place: touches the chunks
    /// and segments of those two entries only.
    pub(crate) fn swap_remove_at(&mut self, pos: usize) -> Option<Entry<V>> {
        if pos >= self.len {
            return None;
        }
        self.unindex(pos);
        let last = self.len - 1;
        if pos != last {
            self.reindex(last, pos);
        }
        let tail = self.pop_entry()?;
        let out = if pos != last {
            std::mem::replace(self.entry_mut(pos), tail)
        } else {
            tail
        };
        self.key_bytes -= out.0.len();
        Some(out)
    }

    pub(crate) fn iter(&self) -> Iter<'_, V> {
        Iter {
            cur: [].iter(),
            rest: self.chunks.iter(),
        }
    }

    /// Bytes allocated besides what the keys and `V` own, with `seg_bytes` and the chunk sizes
    /// given.
    fn mem_with(&self, seg_bytes: usize, entry_slots: usize) -> usize {
        self.chunks.capacity() * size_of::<Arc<Chunk<V>>>()
            + self.chunks.len() * (ARC_HEADER + size_of::<Chunk<V>>())
            + entry_slots * size_of::<Entry<V>>()
            + self.segs.capacity() * size_of::<Arc<Seg>>()
            + self.segs.len() * (ARC_HEADER + size_of::<Seg>())
            + seg_bytes
            + self.dir.capacity() * size_of::<u32>()
    }

    /// Heap bytes of the structure and the keys, O(1).
    pub(crate) fn base_mem(&self) -> usize {
        // Every chunk but the last has exactly CHUNK slots (`push_entry`).
        let slots = match self.chunks.last() {
            Some(last) => (self.chunks.len() - 1) * CHUNK + last.capacity(),
            None => 0,
        };
        size_of::<Self>() + self.mem_with(self.seg_bytes, slots) + self.key_bytes
    }

    /// [`SegTable::base_mem`] recounted chunk by chunk and key by key (O(n); tests).
    pub(crate) fn base_mem_recount(&self) -> usize {
        let segs = self.segs.iter().map(|s| s.table.allocation_size()).sum();
        let slots = self.chunks.iter().map(|c| c.capacity()).sum();
        let keys: usize = self.iter().map(|(k, _)| k.len()).sum();
        size_of::<Self>() + self.mem_with(segs, slots) + keys
    }

    /// Checks the structure's invariants (tests).
    #[cfg(test)]
    pub(crate) fn check(&self) {
        assert_eq!(self.dir.len(), 1 << self.depth);
        let n: usize = self.chunks.iter().map(|c| c.len()).sum();
        assert_eq!(n, self.len);
        for (i, c) in self.chunks.iter().enumerate() {
            assert!(!c.is_empty());
            if i + 1 < self.chunks.len() {
                assert_eq!(c.len(), CHUNK);
            }
        }
        let indexed: usize = self.segs.iter().map(|s| s.table.len()).sum();
        assert_eq!(indexed, self.len);
        for pos in 0..self.len {
            let k = key_at(&self.chunks, pos);
            assert_eq!(self.position(k), Some(pos));
        }
        for (j, &sid) in self.dir.iter().enumerate() {
            let d = self.segs[sid as usize].depth;
            assert!(d <= self.depth);
            for &i in self.segs[sid as usize].table.iter() {
                let h = self.hasher.hash_one(key_at(&self.chunks, i)) as usize;
                assert_eq!(h & ((1 << d) - 1), j & ((1 << d) - 1));
            }
        }
    }
}
