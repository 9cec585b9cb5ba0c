//! The raw dict: a chained hash table over caller-supplied hashes, with a bucket-indexed view
//! for the snapshot.
//!
//! Problem: the keyspace must be serialized by a worker that walks it bucket by bucket while
//! writers go on, so the table must expose its buckets (`num_buckets`, `bucket_of`,
//! `bucket_entries`, a per-bucket epoch stamp) and must be able to promise that no entry
//! changes bucket while a snapshot runs. Open addressing (hashbrown) cannot promise that an
//! insert leaves other entries in place; chaining can.
//!
//! The structure follows Redis's `dict.c` (two tables, incremental rehash, see
//! [`crate::rehash`]) with two changes:
//! - chains are `u32` links into a dense node arena ([`crate::arena`]) instead of malloc'ed
//!   `dictEntry` pointers: a bucket is 8 bytes (head + stamp), a node stores its full hash so a
//!   chain walk compares hashes before keys, and rehashing only rewrites links (no allocation);
//! - a key's place is a pure function of its hash and the rehash index (see
//!   [`Dict::bucket_of`]): inserts during a rehash go to that place rather than always to table
//!   1, so a lookup reads exactly one chain where Redis reads one in each table.
//!
//! The API is raw like hashbrown's `RawTable`: the caller hashes once (the keyspace uses the top
//! bits for its shard and the low bits land here) and passes an equality closure.

use crate::arena::Arena;
use crate::rehash::DictConfig;

/// Chain terminator and "empty bucket".
pub(crate) const NIL: u32 = u32::MAX;

/// Smallest table size (Redis's `DICT_HT_INITIAL_SIZE`).
pub(crate) const MIN_SIZE: usize = 4;

/// One node of a chain: the full hash, the link to the next node, the caller's metadata word,
/// the entry. `meta` sits beside `next` in what would otherwise be 4 bytes of padding (hash 8 +
/// next 4 + meta 4, then K and V), so it costs nothing per entry; the keyspace keeps Redis's
/// 24-bit LRU clock or LFU counter there.
pub(crate) struct Slot<K, V> {
    pub(crate) hash: u64,
    pub(crate) next: u32,
    pub(crate) meta: u32,
    pub(crate) key: K,
    pub(crate) value: V,
}

/// One bucket: the head of its chain and the epoch stamp of the snapshot that last visited it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Bucket {
    pub(crate) head: u32,
    pub(crate) stamp: u32,
}

impl Bucket {
    pub(crate) const EMPTY: Bucket = Bucket {
        head: NIL,
        stamp: 0,
    };
}

/// Filter bit of a hash: one of 8 bits chosen by hash bits 32..35. Each bucket has a filter
/// byte (the OR of the tags of its chain) in a separate array of one byte per bucket, small
/// enough to stay in cache like hashbrown's control bytes, so a miss usually ends there without
/// touching the bucket array or any node (each of which is a cache miss on a big table). The
/// bucket index uses the low bits (tables stay below 2^32 buckets since node links are `u32`)
/// and the keyspace's shard the top bits, so these bits are independent of the bucket.
#[inline(always)]
pub(crate) fn tag(hash: u64) -> u8 {
    1u8 << ((hash >> 32) & 7)
}

/// A chained hash table keyed by caller-supplied 64-bit hashes.
///
/// See the crate docs for the traversal space, the freeze and stamp contracts, and the measured
/// memory overhead. Single-threaded: the keyspace wraps each dict in its shard's lock.
pub struct Dict<K, V> {
    pub(crate) arena: Arena<Slot<K, V>>,
    /// Table 0 (the only one when no rehash runs). Its length is a power of two >= MIN_SIZE.
    pub(crate) t0: Vec<Bucket>,
    /// Table 1: non-empty exactly while a rehash runs (a power of two != t0.len()).
    pub(crate) t1: Vec<Bucket>,
    /// Filter bytes of t0 and t1 (same lengths as the tables; see [`tag`]).
    pub(crate) f0: Vec<u8>,
    pub(crate) f1: Vec<u8>,
    /// Entries chained in t0 and in t1.
    pub(crate) used: [usize; 2],
    /// While rehashing: t0 buckets below this index are empty (moved to t1).
    pub(crate) rehash_idx: usize,
    pub(crate) frozen: bool,
    pub(crate) config: DictConfig,
}

impl<K, V> Default for Dict<K, V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K, V> std::fmt::Debug for Dict<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dict")
            .field("len", &self.len())
            .field("table0", &self.t0.len())
            .field("table1", &self.t1.len())
            .field("rehash_idx", &self.rehash_idx)
            .field("frozen", &self.frozen)
            .finish()
    }
}

/// Where a bucket lives: table 0 or 1 and the index inside it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Loc {
    pub(crate) table: usize,
    pub(crate) idx: usize,
}

impl<K, V> Dict<K, V> {
    /// An empty dict with [`MIN_SIZE`] buckets and the default [`DictConfig`].
    pub fn new() -> Self {
        Self::with_config(0, DictConfig::default())
    }

    /// An empty dict that holds `n` entries without resizing (table of the next power of two
    /// at or above `n`, node arena reserved). Allocates O(n) at once: a caller with an untrusted `n`
    /// (an RDB `RESIZEDB` hint) must bound it by what the input can justify.
    pub fn with_capacity(n: usize) -> Self {
        Self::with_config(n, DictConfig::default())
    }

    /// An empty dict sized for `n` entries with the given resize policy.
    pub fn with_config(n: usize, config: DictConfig) -> Self {
        let size = table_size_for(n);
        let mut arena = Arena::new();
        arena.reserve_total(n);
        Dict {
            arena,
            t0: vec![Bucket::EMPTY; size],
            t1: Vec::new(),
            f0: vec![0; size],
            f1: Vec::new(),
            used: [0, 0],
            rehash_idx: 0,
            frozen: false,
            config,
        }
    }

    /// Number of entries.
    #[inline]
    pub fn len(&self) -> usize {
        self.arena.len()
    }

    /// True when the dict holds no entry.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.arena.len() == 0
    }

    /// True while an incremental rehash is in progress (two tables in use).
    #[inline]
    pub fn is_rehashing(&self) -> bool {
        !self.t1.is_empty()
    }

    /// The table and index a key with this hash lives in (or would be inserted into).
    #[inline(always)]
    pub(crate) fn loc_of(&self, hash: u64) -> Loc {
        let i0 = (hash as usize) & (self.t0.len() - 1);
        if self.t1.is_empty() || i0 >= self.rehash_idx {
            Loc { table: 0, idx: i0 }
        } else {
            Loc {
                table: 1,
                idx: (hash as usize) & (self.t1.len() - 1),
            }
        }
    }

    #[inline(always)]
    pub(crate) fn table(&self, t: usize) -> &Vec<Bucket> {
        if t == 0 {
            &self.t0
        } else {
            &self.t1
        }
    }

    #[inline(always)]
    pub(crate) fn filters(&self, t: usize) -> &Vec<u8> {
        if t == 0 {
            &self.f0
        } else {
            &self.f1
        }
    }

    #[inline(always)]
    pub(crate) fn filters_mut(&mut self, t: usize) -> &mut Vec<u8> {
        if t == 0 {
            &mut self.f0
        } else {
            &mut self.f1
        }
    }

    #[inline(always)]
    pub(crate) fn table_mut(&mut self, t: usize) -> &mut Vec<Bucket> {
        if t == 0 {
            &mut self.t0
        } else {
            &mut self.t1
        }
    }

    /// Index in the arena of the entry with this hash for which `eq` holds.
    #[inline]
    fn find_index(&self, hash: u64, mut eq: impl FnMut(&K) -> bool) -> Option<u32> {
        let loc = self.loc_of(hash);
        if self.filters(loc.table)[loc.idx] & tag(hash) == 0 {
            return None;
        }
        let mut n = self.table(loc.table)[loc.idx].head;
        while n != NIL {
            let s = self.arena.get(n);
            if s.hash == hash && eq(&s.key) {
                return Some(n);
            }
            n = s.next;
        }
        None
    }

    /// The entry with this hash for which `eq` holds. Only the one chain `bucket_of(hash)`
    /// names is read, and nodes whose stored hash differs are skipped without calling `eq`.
    #[inline]
    pub fn find(&self, hash: u64, eq: impl FnMut(&K) -> bool) -> Option<(&K, &V)> {
        let n = self.find_index(hash, eq)?;
        let s = self.arena.get(n);
        Some((&s.key, &s.value))
    }

    /// Like [`Dict::find`], with the value and the entry's metadata word (a `u32` the caller
    /// owns: 0 at insertion unless [`Dict::insert_unique_meta`] set it) mutable. Never performs a
    /// rehash step, so readers can update access metadata without moving entries.
    #[inline]
    pub fn find_meta_mut(
        &mut self,
        hash: u64,
        eq: impl FnMut(&K) -> bool,
    ) -> Option<(&K, &mut V, &mut u32)> {
        let n = self.find_index(hash, eq)?;
        let s = self.arena.get_mut(n);
        Some((&s.key, &mut s.value, &mut s.meta))
    }

    /// Like [`Dict::find`] with a mutable value. Performs one incremental rehash step first
    /// (unless frozen), as Redis's `dictFind` does.
    #[inline]
    pub fn find_mut(&mut self, hash: u64, eq: impl FnMut(&K) -> bool) -> Option<(&K, &mut V)> {
        self.op_step();
        let n = self.find_index(hash, eq)?;
        let s = self.arena.get_mut(n);
        Some((&s.key, &mut s.value))
    }

    /// [`Dict::find_mut`] (one incremental rehash step first) with the entry's metadata word
    /// mutable too (see [`Dict::find_meta_mut`]).
    #[inline]
    pub fn find_mut_with_meta(
        &mut self,
        hash: u64,
        eq: impl FnMut(&K) -> bool,
    ) -> Option<(&K, &mut V, &mut u32)> {
        self.op_step();
        self.find_meta_mut(hash, eq)
    }

    /// Inserts an entry the caller has checked is absent, at the head of the chain of
    /// `bucket_of(hash)` (after the automatic rehash step / expansion this call may perform
    /// when not frozen, or the stamp-keeping forced grow when frozen past the bound). Returns
    /// the stored value.
    ///
    /// # Panics
    /// When the dict already holds 2^32 - 2 entries (the node index space), like `Vec`'s
    /// capacity overflow.
    #[inline]
    pub fn insert_unique(&mut self, hash: u64, k: K, v: V) -> &mut V {
        self.insert_unique_meta(hash, k, v, 0)
    }

    /// [`Dict::insert_unique`] with the entry's metadata word (see [`Dict::find_meta_mut`]).
    #[inline]
    pub fn insert_unique_meta(&mut self, hash: u64, k: K, v: V, meta: u32) -> &mut V {
        if !self.frozen {
            if self.is_rehashing() {
                self.rehash_step(1);
            } else {
                self.expand_if_needed();
            }
        } else if self.over_force_bound() {
            // Per insert, so no sequence of inserts chains past the bound (rehash.rs).
            self.forced_grow();
        }
        let loc = self.loc_of(hash);
        let head = self.table(loc.table)[loc.idx].head;
        let n = self.arena.push(Slot {
            hash,
            next: head,
            meta,
            key: k,
            value: v,
        });
        self.table_mut(loc.table)[loc.idx].head = n;
        self.filters_mut(loc.table)[loc.idx] |= tag(hash);
        self.used[loc.table] += 1;
        &mut self.arena.get_mut(n).value
    }

    /// Removes and returns the entry with this hash for which `eq` holds. Performs one rehash
    /// step first and may start a shrink afterwards (neither when frozen).
    pub fn remove(&mut self, hash: u64, mut eq: impl FnMut(&K) -> bool) -> Option<(K, V)> {
        self.op_step();
        let loc = self.loc_of(hash);
        if self.filters(loc.table)[loc.idx] & tag(hash) == 0 {
            return None;
        }
        // Find the node and its predecessor.
        let mut prev = NIL;
        let mut n = self.table(loc.table)[loc.idx].head;
        while n != NIL {
            let s = self.arena.get(n);
            if s.hash == hash && eq(&s.key) {
                break;
            }
            prev = n;
            n = s.next;
        }
        if n == NIL {
            return None;
        }
        let next = self.arena.get(n).next;
        if prev == NIL {
            self.table_mut(loc.table)[loc.idx].head = next;
        } else {
            self.arena.get_mut(prev).next = next;
        }
        self.used[loc.table] -= 1;
        self.refilter(loc);
        // The arena is dense: its last node moves into slot n; repoint its one incoming link.
        let last = (self.arena.len() - 1) as u32;
        if n != last {
            self.relink(last, n);
        }
        let removed = self.arena.swap_remove(n);
        if !self.frozen && !self.is_rehashing() {
            self.shrink_if_needed();
        }
        Some((removed.key, removed.value))
    }

    /// Recomputes the filter of one bucket from its chain (after a removal; chains are short).
    fn refilter(&mut self, loc: Loc) {
        let mut f = 0;
        let mut n = self.table(loc.table)[loc.idx].head;
        while n != NIL {
            let s = self.arena.get(n);
            f |= tag(s.hash);
            n = s.next;
        }
        self.filters_mut(loc.table)[loc.idx] = f;
    }

    /// Repoints the single link (bucket head or a node's `next`) that refers to node `from` so
    /// it refers to `to`. `from` is still linked in the bucket its hash names.
    fn relink(&mut self, from: u32, to: u32) {
        let hash = self.arena.get(from).hash;
        let loc = self.loc_of(hash);
        let head = self.table(loc.table)[loc.idx].head;
        if head == from {
            self.table_mut(loc.table)[loc.idx].head = to;
            return;
        }
        let mut p = head;
        loop {
            debug_assert!(p != NIL, "node {from} missing from its chain");
            let s = self.arena.get_mut(p);
            if s.next == from {
                s.next = to;
                return;
            }
            p = s.next;
        }
    }

    /// Removes every entry, dropping them. The tables shrink back to [`MIN_SIZE`]; the frozen
    /// flag and the config are kept, stamps restart at 0. O(1) plus the drops.
    pub fn clear(&mut self) {
        drop(self.take());
    }

    /// Swaps everything out in O(1): returns the current contents (with their tables, stamps
    /// and frozen flag) and leaves `self` empty with [`MIN_SIZE`] buckets stamped 0, the same
    /// config and the same frozen flag. `bucket_of` changes for `self` even if frozen: a
    /// snapshot layer that takes a frozen dict (FLUSHDB during a snapshot) keeps serializing
    /// the returned one and stamps the fresh buckets of `self` itself.
    pub fn take(&mut self) -> Dict<K, V> {
        let mut fresh = Self::with_config(0, self.config);
        fresh.frozen = self.frozen;
        std::mem::replace(self, fresh)
    }

    /// Every entry, in node-arena order (not bucket order).
    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> + '_ {
        self.arena.iter().map(|s| (&s.key, &s.value))
    }

    /// Every entry with a mutable value, in node-arena order.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (&K, &mut V)> + '_ {
        self.arena.iter_mut().map(|s| (&s.key, &mut s.value))
    }

    // ------------------------------------------------------------------ the snapshot's view

    /// Size of the traversal space: `table0.len() + table1.len()` (table 1 is empty unless a
    /// rehash is in progress). Valid bucket indices are `0..num_buckets()`.
    #[inline]
    pub fn num_buckets(&self) -> usize {
        self.t0.len() + self.t1.len()
    }

    /// The bucket (traversal index) where a key with this hash lives or would be inserted:
    /// `h & (size0-1)` when that index is >= the rehash index (or no rehash runs), else
    /// `size0 + (h & (size1-1))`. While the dict is frozen a pure function of the hash, until a
    /// forced grow (which keeps the bucket's stamp; `rehash.rs`).
    #[inline]
    pub fn bucket_of(&self, hash: u64) -> usize {
        let loc = self.loc_of(hash);
        if loc.table == 0 {
            loc.idx
        } else {
            self.t0.len() + loc.idx
        }
    }

    /// Traversal index -> table and index.
    ///
    /// # Panics
    /// When `b >= num_buckets()`.
    #[inline]
    fn loc_of_bucket(&self, b: usize) -> Loc {
        let n0 = self.t0.len();
        if b < n0 {
            Loc { table: 0, idx: b }
        } else {
            assert!(
                b - n0 < self.t1.len(),
                "bucket {b} out of range (num_buckets {})",
                self.num_buckets()
            );
            Loc {
                table: 1,
                idx: b - n0,
            }
        }
    }

    /// The entries chained in bucket `b` (a traversal index), most recently inserted first.
    ///
    /// # Panics
    /// When `b >= num_buckets()`.
    pub fn bucket_entries(&self, b: usize) -> BucketIter<'_, K, V> {
        let loc = self.loc_of_bucket(b);
        BucketIter {
            dict: self,
            next: self.table(loc.table)[loc.idx].head,
        }
    }

    /// The epoch stamp of bucket `b` (0 for a bucket no snapshot has stamped).
    ///
    /// # Panics
    /// When `b >= num_buckets()`.
    #[inline]
    pub fn stamp(&self, b: usize) -> u32 {
        let loc = self.loc_of_bucket(b);
        self.table(loc.table)[loc.idx].stamp
    }

    /// Sets the epoch stamp of bucket `b`.
    ///
    /// # Panics
    /// When `b >= num_buckets()`.
    #[inline]
    pub fn set_stamp(&mut self, b: usize, epoch: u32) {
        let loc = self.loc_of_bucket(b);
        self.table_mut(loc.table)[loc.idx].stamp = epoch;
    }

    /// Bytes of structure this dict allocates: both bucket arrays and filter arrays, the node arena (nodes hold
    /// the hash, the link and `K` and `V` inline) and the `Dict` itself. Heap data owned by
    /// `K`/`V` (a `Vec<u8>`'s buffer) is not counted. Subtract `len() * size_of::<(K, V)>()`
    /// for the pure overhead.
    pub fn memory_overhead(&self) -> usize {
        (self.t0.capacity() + self.t1.capacity()) * std::mem::size_of::<Bucket>()
            + self.f0.capacity()
            + self.f1.capacity()
            + self.arena.allocated_bytes()
            + std::mem::size_of::<Self>()
    }
}

/// Iterator over one bucket's chain, from [`Dict::bucket_entries`].
pub struct BucketIter<'a, K, V> {
    dict: &'a Dict<K, V>,
    next: u32,
}

impl<'a, K, V> BucketIter<'a, K, V> {
    /// The same chain with each entry's metadata word (see [`Dict::find_meta_mut`]).
    pub fn with_meta(self) -> impl Iterator<Item = (&'a K, &'a V, u32)> {
        let (dict, mut next) = (self.dict, self.next);
        std::iter::from_fn(move || {
            if next == NIL {
                return None;
            }
            let s = dict.arena.get(next);
            next = s.next;
            Some((&s.key, &s.value, s.meta))
        })
    }
}

impl<'a, K, V> Iterator for BucketIter<'a, K, V> {
    type Item = (&'a K, &'a V);

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        if self.next == NIL {
            return None;
        }
        let s = self.dict.arena.get(self.next);
        self.next = s.next;
        Some((&s.key, &s.value))
    }
}

/// Table size for `n` entries: the next power of two >= n, at least [`MIN_SIZE`].
pub(crate) fn table_size_for(n: usize) -> usize {
    n.max(MIN_SIZE)
        .checked_next_power_of_two()
        .unwrap_or(1 << (usize::BITS - 1))
}
