//! Incremental rehash, the freeze, and the forced resize.
//!
//! Problem: resizing a table of millions of buckets at once stalls every command behind it, so
//! (like Redis's `dict.c`, `_dictExpandIfNeeded` / `dictRehash` / `htNeedsResize` in
//! `server.c`) a resize allocates table 1 and each later operation moves a bounded number of
//! table-0 buckets into it; a background driver calls [`Dict::rehash_step`] with a larger `n`.
//! Growth starts when `len >= size0` (load factor 1), a shrink when the fill drops below
//! [`DictConfig::min_fill_percent`] (Redis `HASHTABLE_MIN_FILL` = 10 %); the new size is the
//! next power of two >= `len + 1` (growth) or >= `len` (shrink), at least 4.
//!
//! A snapshot walks the buckets while writers go on, so it needs to know, for every key, whether
//! its bucket was already visited: [`Dict::freeze_rehash`] stops every rehash step, expansion and
//! shrink (Redis gets the same effect from `dict_can_resize = 0` while a fork child exists), so
//! `bucket_of` stays a pure function of the hash and every entry stays in its bucket. Inserts keep
//! chaining into the bucket `bucket_of` names, so chains grow; an insert that finds the dict past
//! [`DictConfig::force_resize_ratio`] entries per bucket (default 8; Redis 7.0 uses
//! `dict_force_resize_ratio` = 5; [`Dict::over_force_bound`]) first runs the **forced grow**,
//! which needs nothing from the snapshot layer because it keeps every hash's stamp:
//!
//! * the table is rebuilt at once (any rehash completes) as one table of
//!   `S = max(next_power_of_two(len + 1), size0, size1)` buckets;
//! * since `S` is a multiple of both old sizes, all hashes that land in new bucket `j` came from
//!   one and the same old bucket (`loc_of(j)`: the low bits of `j` decide it), and bucket `j`
//!   takes that bucket's stamp. So "is the bucket of hash `h` stamped `E`?" has the same answer
//!   before and after, for every `h`: visited entries stay visited, unvisited ones unvisited,
//!   and no entry is visited twice or missed, however the walk interleaves.
//!
//! The bound is checked per insert (one multi-key command cannot chain past it); after a forced
//! grow the dict stays frozen. A walker that indexes buckets must notice that `num_buckets`
//! changed and go over the new table again (skipping stamped buckets): the same unvisited entries
//! now live at other indices.
//!
//! Stamp rule when a rehash moves entries (only when not frozen): the destination bucket keeps
//! its own stamp and the source keeps its own. Stamps only matter while frozen, and a frozen
//! dict moves entries only in the stamp-keeping forced grow; a snapshot begins with a fresh
//! epoch so any stale stamp reads as "not visited". A new table 1 starts with every stamp 0
//! (epoch 0 is never used by a snapshot).

use crate::dict::{table_size_for, tag, Bucket, Dict, Loc, MIN_SIZE, NIL};

/// Resize policy of a [`Dict`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DictConfig {
    /// Start a shrink when `len * 100 < size0 * min_fill_percent` (Redis: 10). 0 disables
    /// shrinking.
    pub min_fill_percent: u32,
    /// While frozen, [`Dict::over_force_bound`] turns true once the live part of a table holds
    /// more than this many entries per bucket, and the next insert runs the forced grow
    /// (default 8; Redis 7.0's `dict_force_resize_ratio` is 5).
    pub force_resize_ratio: u32,
}

impl Default for DictConfig {
    fn default() -> Self {
        DictConfig {
            min_fill_percent: 10,
            force_resize_ratio: 8,
        }
    }
}

/// Empty buckets a rehash step may visit per bucket it is asked to move (Redis: `n * 10`).
const EMPTY_VISITS_PER_STEP: usize = 10;

impl<K, V> Dict<K, V> {
    /// The resize policy.
    pub fn config(&self) -> DictConfig {
        self.config
    }

    /// Changes the resize policy (takes effect at the next operation).
    pub fn set_config(&mut self, config: DictConfig) {
        self.config = config;
    }

    /// Stops every entry movement (rehash steps, expansion, shrink) until
    /// [`Dict::thaw_rehash`]. While frozen, `bucket_of` is a pure function of the hash and an
    /// entry stays in its bucket from insertion to removal.
    pub fn freeze_rehash(&mut self) {
        self.frozen = true;
    }

    /// Ends the freeze; a pending expansion or shrink starts now if the load calls for it.
    pub fn thaw_rehash(&mut self) {
        self.frozen = false;
        if !self.is_rehashing() {
            self.expand_if_needed();
            if !self.is_rehashing() {
                self.shrink_if_needed();
            }
        }
    }

    /// True between [`Dict::freeze_rehash`] and [`Dict::thaw_rehash`].
    #[inline]
    pub fn is_frozen(&self) -> bool {
        self.frozen
    }

    /// True when frozen and the live part of a table holds more than `force_resize_ratio`
    /// entries per bucket: the next insert runs the forced grow first (module docs). The live
    /// part of table 0 is its buckets from the rehash index on.
    pub fn over_force_bound(&self) -> bool {
        if !self.frozen {
            return false;
        }
        let ratio = self.config.force_resize_ratio as usize;
        let live0 = self.t0.len()
            - if self.is_rehashing() {
                self.rehash_idx
            } else {
                0
            };
        self.used[0] > ratio.saturating_mul(live0)
            || self.used[1] > ratio.saturating_mul(self.t1.len())
    }

    /// The forced grow (module docs): completes any rehash and rebuilds the table at once with
    /// `max(next_power_of_two(len + 1), size0, size1)` buckets, each new bucket taking the stamp
    /// of the one old bucket its hashes came from. Called by inserts into a frozen dict past the
    /// bound; works frozen or not; the frozen flag is kept. Costs O(len + buckets).
    pub fn forced_grow(&mut self) {
        let size = table_size_for(self.len() + 1)
            .max(self.t0.len())
            .max(self.t1.len());
        let mut table = Vec::with_capacity(size);
        for j in 0..size {
            // Every hash with low bits `j` has the old location of the hash `j` itself (both old
            // masks are below `size`).
            let old = self.loc_of(j as u64);
            table.push(Bucket {
                head: NIL,
                stamp: self.table(old.table)[old.idx].stamp,
            });
        }
        let mut filters = vec![0u8; size];
        let mask = size - 1;
        // Relink every node straight from the arena (no chain walks needed).
        for (i, s) in self.arena.iter_mut().enumerate() {
            let j = (s.hash as usize) & mask;
            s.next = table[j].head;
            table[j].head = i as u32;
            filters[j] |= tag(s.hash);
        }
        self.t0 = table;
        self.t1 = Vec::new();
        self.f0 = filters;
        self.f1 = Vec::new();
        self.rehash_idx = 0;
        self.used = [self.len(), 0];
    }

    /// Moves up to `n` non-empty table-0 buckets into table 1, visiting at most `10 * n` empty
    /// ones (Redis's `dictRehash`); finishes the rehash when table 0 is drained (and then starts a
    /// shrink if the fill is already below the bound). Does nothing
    /// while frozen or when no rehash runs.
    pub fn rehash_step(&mut self, n: usize) {
        if self.frozen || !self.is_rehashing() {
            return;
        }
        let mut empty_visits = n.saturating_mul(EMPTY_VISITS_PER_STEP);
        let mask1 = self.t1.len() - 1;
        for _ in 0..n {
            if self.used[0] == 0 {
                break;
            }
            // used[0] > 0 guarantees a non-empty bucket at or after rehash_idx.
            while self.t0[self.rehash_idx].head == NIL {
                self.rehash_idx += 1;
                empty_visits -= 1;
                if empty_visits == 0 {
                    return;
                }
            }
            let mut node = std::mem::replace(&mut self.t0[self.rehash_idx].head, NIL);
            self.f0[self.rehash_idx] = 0;
            while node != NIL {
                let s = self.arena.get_mut(node);
                let next = s.next;
                let j = (s.hash as usize) & mask1;
                s.next = self.t1[j].head;
                self.t1[j].head = node;
                self.f1[j] |= tag(s.hash);
                self.used[0] -= 1;
                self.used[1] += 1;
                node = next;
            }
            self.rehash_idx += 1;
        }
        if self.used[0] == 0 {
            self.t0 = std::mem::take(&mut self.t1);
            self.f0 = std::mem::take(&mut self.f1);
            self.used = [self.used[1], 0];
            self.rehash_idx = 0;
            // Removals during the rehash may already call for a smaller table (Redis leaves
            // this to its cron's `tryResizeHashTables`).
            self.shrink_if_needed();
        }
    }

    /// The one automatic rehash step of a mutating operation.
    #[inline]
    pub(crate) fn op_step(&mut self) {
        if !self.frozen && self.is_rehashing() {
            self.rehash_step(1);
        }
    }

    /// Starts growth when the load factor reaches 1 (not frozen, not rehashing).
    #[inline]
    pub(crate) fn expand_if_needed(&mut self) {
        if self.len() >= self.t0.len() {
            self.start_resize(table_size_for(self.len() + 1));
        }
    }

    /// Starts a shrink when the fill is below `min_fill_percent` (not frozen, not rehashing).
    pub(crate) fn shrink_if_needed(&mut self) {
        let size = self.t0.len();
        if size > MIN_SIZE
            && (self.len() as u128) * 100 < (size as u128) * (self.config.min_fill_percent as u128)
        {
            self.start_resize(table_size_for(self.len()));
        }
    }

    /// Allocates table 1 of `size` buckets and begins the incremental rehash; an empty dict
    /// just swaps tables.
    fn start_resize(&mut self, size: usize) {
        debug_assert!(!self.frozen && !self.is_rehashing());
        if size == self.t0.len() {
            return;
        }
        if self.is_empty() {
            self.t0 = vec![Bucket::EMPTY; size];
            self.f0 = vec![0; size];
            return;
        }
        self.t1 = vec![Bucket::EMPTY; size];
        self.f1 = vec![0; size];
        self.rehash_idx = 0;
    }

    /// Debug check of every structural invariant (used by the tests): each node is reachable
    /// exactly once, from the bucket `loc_of(hash)` names; bucket filters are exact; `used` counts match; rehash index in
    /// range; moved-out table-0 buckets are empty.
    #[doc(hidden)]
    pub fn check_invariants(&self) {
        let mut seen = vec![false; self.len()];
        let mut used = [0usize; 2];
        for (t, used_t) in used.iter_mut().enumerate() {
            for (i, b) in self.table(t).iter().enumerate() {
                if t == 0 && self.is_rehashing() && i < self.rehash_idx {
                    assert_eq!(b.head, NIL, "moved-out bucket {i} not empty");
                }
                let mut n = b.head;
                let mut filter = 0;
                while n != NIL {
                    assert!((n as usize) < self.len(), "link {n} past len");
                    assert!(!seen[n as usize], "node {n} linked twice");
                    seen[n as usize] = true;
                    let s = self.arena.get(n);
                    assert_eq!(self.loc_of(s.hash), Loc { table: t, idx: i }, "node {n}");
                    *used_t += 1;
                    filter |= tag(s.hash);
                    n = s.next;
                }
                assert_eq!(
                    self.filters(t)[i],
                    filter,
                    "filter of bucket {i} in table {t}"
                );
            }
        }
        assert!(seen.iter().all(|&x| x), "unreachable node");
        assert_eq!(used, self.used);
        assert!(self.t0.len().is_power_of_two() && self.t0.len() >= MIN_SIZE);
        assert_eq!(
            (self.f0.len(), self.f1.len()),
            (self.t0.len(), self.t1.len())
        );
        if self.is_rehashing() {
            assert!(self.t1.len().is_power_of_two() && self.t1.len() != self.t0.len());
            assert!(self.rehash_idx <= self.t0.len());
        } else {
            assert_eq!(self.rehash_idx, 0);
        }
    }
}
