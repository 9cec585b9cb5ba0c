//! The order of a big sorted set: `(score, member)` pairs sorted in `Arc`'d chunks, with a
//! Fenwick tree of the chunk lengths for ranks.
//!
//! Problem: a snapshot worker holds `Arc<Value>`s while a writer changes them, and the skip list
//! of [`super::skiplist`] lives in one arena with global links, so a write to a held 1M-member
//! sorted set cloned all of it (193-221 ms, issue 19). Here the order is a sequence of sorted
//! chunks of at most [`RCHUNK`] pairs, each behind its own `Arc` (the leaves of a B+ tree of
//! height two, as in a counted B-tree): cloning copies one pointer and one count per chunk, and a
//! write makes unique only the chunk it changes (through [`super::cow::cow`], so it is counted
//! in `cow_copied` with the rest of the big-value machinery). Work per write on a shared order:
//! O(RCHUNK + n / RCHUNK).
//!
//! ```text
//!  chunks [Arc]──▶[(s,m) x ≤512]   fen: Fenwick tree over the chunk lengths
//!         [Arc]──▶[(s,m) x ≤512]        prefix(i) = pairs before chunk i, O(log chunks)
//!         [Arc]──▶[(s,m) x ≤512]        find(rank) = (chunk, offset), O(log chunks)
//! ```
//!
//! Complexities (`c` = chunks ≈ n / 384): find a pair by key O(log c + log RCHUNK) (binary
//! search on the chunks' last pairs, then in the chunk); rank and select O(log c + log RCHUNK);
//! insert and remove O(RCHUNK + log c), plus O(c) to rebuild the Fenwick tree when a chunk
//! splits, merges or empties (once per at least RCHUNK / 4 writes to a chunk). A full chunk
//! splits in halves, except that a pair past the last chunk's end (or before the first's start)
//! opens a new chunk, so a set built in ascending order fills its chunks. A chunk below a
//! quarter of [`RCHUNK`] merges with a neighbour it fits in. Every chunk is allocated with room
//! for exactly [`RCHUNK`] pairs (a chunk copied while shared gets that room back), so the memory
//! accounting is O(1).
//!
//! The member → score lookup is not here: [`super::zset`] keeps it in an
//! [`super::table::IndexedTable`], whose big form is chunked the same way.

use std::cmp::Ordering;
use std::mem::size_of;

use forkless_sync::Arc;

use super::cow::{count, cow};

/// Most pairs in one chunk.
pub(crate) const RCHUNK: usize = 512;
/// Bytes of an `Arc`'s allocation besides its value (strong and weak counts).
const ARC_HEADER: usize = 2 * size_of::<usize>();

/// One `(score, member)` pair.
pub(crate) type Pair = (f64, Box<[u8]>);
type Chunk = Vec<Pair>;

/// The sorted-set order: score ascending, ties by member bytes. Scores are never NaN.
pub(crate) fn cmp_key(s1: f64, m1: &[u8], s2: f64, m2: &[u8]) -> Ordering {
    s1.partial_cmp(&s2)
        .unwrap_or(Ordering::Equal)
        .then_with(|| m1.cmp(m2))
}

/// See the module docs.
#[derive(Default)]
pub(crate) struct Ranked {
    chunks: Vec<Arc<Chunk>>,
    /// Fenwick tree over the chunk lengths (entry `i` covers chunks `i + 1 - lowbit(i + 1) ..= i`).
    fen: Vec<usize>,
    len: usize,
    /// Sum of the members' lengths.
    member_bytes: usize,
}

impl Clone for Ranked {
    /// O(n / RCHUNK): copies the chunk pointers and the tree (counted in `cow_copied`).
    fn clone(&self) -> Self {
        count(self.chunks.len() + self.fen.len());
        Ranked {
            chunks: self.chunks.clone(),
            fen: self.fen.clone(),
            len: self.len,
            member_bytes: self.member_bytes,
        }
    }
}

fn new_chunk() -> Chunk {
    Vec::with_capacity(RCHUNK)
}

impl Ranked {
    /// The order of `pairs`, which must be sorted and free of duplicate members (O(n)).
    pub(crate) fn from_sorted(pairs: impl IntoIterator<Item = Pair>) -> Ranked {
        let mut r = Ranked::default();
        let mut cur = new_chunk();
        for p in pairs {
            if cur.len() == RCHUNK {
                r.chunks
                    .push(Arc::new(std::mem::replace(&mut cur, new_chunk())));
            }
            r.len += 1;
            r.member_bytes += p.1.len();
            cur.push(p);
        }
        if !cur.is_empty() {
            r.chunks.push(Arc::new(cur));
        }
        r.fen_rebuild();
        r
    }

    /// Number of pairs.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Chunk `ci` for writing: copied first when shared (counted), with room for RCHUNK pairs.
    fn chunk_mut(&mut self, ci: usize) -> &mut Chunk {
        let c = cow(&mut self.chunks[ci], Vec::len);
        if c.capacity() < RCHUNK {
            c.reserve_exact(RCHUNK - c.len());
        }
        c
    }

    fn fen_rebuild(&mut self) {
        let n = self.chunks.len();
        self.fen.clear();
        self.fen.extend(self.chunks.iter().map(|c| c.len()));
        for i in 1..=n {
            let j = i + (i & i.wrapping_neg());
            if j <= n {
                self.fen[j - 1] += self.fen[i - 1];
            }
        }
    }

    fn fen_inc(&mut self, ci: usize) {
        let mut i = ci + 1;
        while i <= self.fen.len() {
            self.fen[i - 1] += 1;
            i += i & i.wrapping_neg();
        }
    }

    fn fen_dec(&mut self, ci: usize) {
        let mut i = ci + 1;
        while i <= self.fen.len() {
            self.fen[i - 1] -= 1;
            i += i & i.wrapping_neg();
        }
    }

    /// Pairs in the chunks before chunk `ci`.
    fn prefix(&self, ci: usize) -> usize {
        let mut i = ci.min(self.fen.len());
        let mut s = 0;
        while i > 0 {
            s += self.fen[i - 1];
            i &= i - 1;
        }
        s
    }

    /// `(chunk, offset)` of rank `rank` (`rank < len`).
    fn find(&self, rank: usize) -> (usize, usize) {
        let n = self.fen.len();
        let mut pos = 0;
        let mut rem = rank;
        let mut step = if n == 0 {
            0
        } else {
            1 << (usize::BITS - 1 - n.leading_zeros())
        };
        while step > 0 {
            if pos + step <= n && self.fen[pos + step - 1] <= rem {
                pos += step;
                rem -= self.fen[pos - 1];
            }
            step >>= 1;
        }
        (pos, rem)
    }

    /// The chunk that holds (or would hold) `(s, m)`, and the pair's offset in it (`Err`: where
    /// it would go).
    fn locate(&self, s: f64, m: &[u8]) -> (usize, Result<usize, usize>) {
        if self.chunks.is_empty() {
            return (0, Err(0));
        }
        let ci = self.chunks.partition_point(|c| {
            c.last()
                .is_some_and(|(ls, lm)| cmp_key(*ls, lm, s, m) == Ordering::Less)
        });
        let ci = ci.min(self.chunks.len() - 1);
        let r = self.chunks[ci].binary_search_by(|(es, em)| cmp_key(*es, em, s, m));
        (ci, r)
    }

    /// Inserts `(s, m)`; the member must be absent.
    pub(crate) fn insert(&mut self, s: f64, m: Box<[u8]>) {
        self.len += 1;
        self.member_bytes += m.len();
        let (mut ci, r) = self.locate(s, &m);
        let mut j = r.unwrap_or_else(|j| j);
        if self.chunks.is_empty() {
            let mut c = new_chunk();
            c.push((s, m));
            self.chunks.push(Arc::new(c));
            self.fen_rebuild();
            return;
        }
        if self.chunks[ci].len() >= RCHUNK {
            let at_end = ci + 1 == self.chunks.len() && j == self.chunks[ci].len();
            if at_end || (ci == 0 && j == 0) {
                let mut c = new_chunk();
                c.push((s, m));
                self.chunks
                    .insert(if at_end { ci + 1 } else { 0 }, Arc::new(c));
                self.fen_rebuild();
                return;
            }
            let half = RCHUNK / 2;
            let mut hi = new_chunk();
            hi.extend(self.chunk_mut(ci).drain(half..));
            self.chunks.insert(ci + 1, Arc::new(hi));
            self.fen_rebuild();
            if j > half {
                ci += 1;
                j -= half;
            }
        }
        self.chunk_mut(ci).insert(j, (s, m));
        self.fen_inc(ci);
    }

    /// Removes `(s, m)`, returning the member's bytes.
    pub(crate) fn remove(&mut self, s: f64, m: &[u8]) -> Option<Box<[u8]>> {
        let (ci, Ok(j)) = self.locate(s, m) else {
            return None;
        };
        Some(self.remove_at_pos(ci, j).1)
    }

    /// Removes and returns the pair of rank `rank`.
    pub(crate) fn remove_at(&mut self, rank: usize) -> Option<Pair> {
        if rank >= self.len {
            return None;
        }
        let (ci, j) = self.find(rank);
        Some(self.remove_at_pos(ci, j))
    }

    fn remove_at_pos(&mut self, ci: usize, j: usize) -> Pair {
        let p = self.chunk_mut(ci).remove(j);
        self.len -= 1;
        self.member_bytes -= p.1.len();
        let n = self.chunks[ci].len();
        if n == 0 || n < RCHUNK / 4 {
            self.settle(ci);
        } else {
            self.fen_dec(ci);
        }
        p
    }

    /// After chunk `ci` shrank: drops it when empty, merges it with a neighbour it fits in when
    /// below a quarter full, and rebuilds the tree.
    fn settle(&mut self, ci: usize) {
        if ci < self.chunks.len() {
            let n = self.chunks[ci].len();
            if n == 0 {
                self.chunks.remove(ci);
            } else if n < RCHUNK / 4 {
                let fits = |o: usize| self.chunks.get(o).is_some_and(|c| n + c.len() <= RCHUNK);
                let pair = if fits(ci + 1) {
                    Some((ci, ci + 1))
                } else if ci > 0 && fits(ci - 1) {
                    Some((ci - 1, ci))
                } else {
                    None
                };
                if let Some((a, b)) = pair {
                    let moved = match Arc::try_unwrap(self.chunks.remove(b)) {
                        Ok(v) => v,
                        Err(shared) => {
                            count(shared.len());
                            (*shared).clone()
                        }
                    };
                    self.chunk_mut(a).extend(moved);
                }
            }
        }
        self.fen_rebuild();
    }

    /// Removes the pairs of ranks `start..end` (end exclusive, clamped), calling `f` with each
    /// removed member; returns how many were removed. O(removed + RCHUNK + chunks).
    pub(crate) fn remove_range(
        &mut self,
        start: usize,
        end: usize,
        mut f: impl FnMut(&[u8]),
    ) -> usize {
        let end = end.min(self.len);
        if start >= end {
            return 0;
        }
        let (c0, j0) = self.find(start);
        let (c1, j1) = if end == self.len {
            (self.chunks.len(), 0)
        } else {
            self.find(end)
        };
        let mut bytes = 0;
        if c0 == c1 {
            for (_, m) in self.chunk_mut(c0).drain(j0..j1) {
                bytes += m.len();
                f(&m);
            }
        } else {
            let first = if j0 == 0 {
                c0
            } else {
                for (_, m) in self.chunk_mut(c0).drain(j0..) {
                    bytes += m.len();
                    f(&m);
                }
                c0 + 1
            };
            for c in self.chunks.drain(first..c1) {
                for (_, m) in c.iter() {
                    bytes += m.len();
                    f(m);
                }
            }
            if j1 > 0 && first < self.chunks.len() {
                for (_, m) in self.chunk_mut(first).drain(..j1) {
                    bytes += m.len();
                    f(&m);
                }
            }
        }
        self.len -= end - start;
        self.member_bytes -= bytes;
        // At most the two boundary chunks shrank: settle the later one first (indices stay).
        let c0 = c0.min(self.chunks.len());
        if c0 + 1 < self.chunks.len() {
            self.settle(c0 + 1);
        }
        self.settle(c0);
        end - start
    }

    /// Rank of `(s, m)`, if present.
    pub(crate) fn rank(&self, s: f64, m: &[u8]) -> Option<usize> {
        let (ci, r) = self.locate(s, m);
        r.ok().map(|j| self.prefix(ci) + j)
    }

    /// The pair of rank `rank`.
    pub(crate) fn at(&self, rank: usize) -> Option<(&[u8], f64)> {
        if rank >= self.len {
            return None;
        }
        let (ci, j) = self.find(rank);
        let (s, m) = &self.chunks[ci][j];
        Some((m, *s))
    }

    /// How many leading pairs satisfy `pred` (exact when it holds for a prefix of the order).
    pub(crate) fn count_while(&self, pred: impl Fn(&[u8], f64) -> bool) -> usize {
        let ci = self
            .chunks
            .partition_point(|c| c.last().is_some_and(|(s, m)| pred(m, *s)));
        match self.chunks.get(ci) {
            None => self.len,
            Some(c) => self.prefix(ci) + c.partition_point(|(s, m)| pred(m, *s)),
        }
    }

    /// Iterates from rank `rank`, upwards or (`rev`) downwards; empty when `rank >= len`.
    pub(crate) fn iter_from(&self, rank: usize, rev: bool) -> RIter<'_> {
        if rank >= self.len {
            return RIter {
                chunks: &self.chunks,
                ci: 0,
                j: 0,
                rev,
                left: 0,
            };
        }
        let (ci, j) = self.find(rank);
        RIter {
            chunks: &self.chunks,
            ci,
            j,
            rev,
            left: if rev { rank + 1 } else { self.len - rank },
        }
    }

    /// Heap bytes, O(1) (every chunk has room for exactly RCHUNK pairs).
    pub(crate) fn mem(&self) -> usize {
        self.chunks.capacity() * size_of::<Arc<Chunk>>()
            + self.fen.capacity() * size_of::<usize>()
            + self.chunks.len() * (ARC_HEADER + size_of::<Chunk>() + RCHUNK * size_of::<Pair>())
            + self.member_bytes
    }

    /// [`Ranked::mem`] recounted chunk by chunk (O(n); tests).
    pub(crate) fn mem_recount(&self) -> usize {
        self.chunks.capacity() * size_of::<Arc<Chunk>>()
            + self.fen.capacity() * size_of::<usize>()
            + self
                .chunks
                .iter()
                .map(|c| {
                    ARC_HEADER
                        + size_of::<Chunk>()
                        + c.capacity() * size_of::<Pair>()
                        + c.iter().map(|(_, m)| m.len()).sum::<usize>()
                })
                .sum::<usize>()
    }

    /// Checks the invariants (tests): chunks non-empty and within RCHUNK, sorted across
    /// chunks, the tree and the counters right.
    #[cfg(test)]
    pub(crate) fn check(&self) {
        let mut prev: Option<&Pair> = None;
        let mut n = 0;
        for (i, c) in self.chunks.iter().enumerate() {
            assert!(!c.is_empty() && c.len() <= RCHUNK, "chunk {i}: {}", c.len());
            for p in c.iter() {
                if let Some(q) = prev {
                    assert_eq!(cmp_key(q.0, &q.1, p.0, &p.1), Ordering::Less);
                }
                prev = Some(p);
            }
            assert_eq!(self.prefix(i), n);
            n += c.len();
        }
        assert_eq!(n, self.len);
        assert_eq!(self.mem(), self.mem_recount());
    }
}

/// Iterator over a [`Ranked`] from a rank, either way.
#[derive(Clone)]
pub(crate) struct RIter<'a> {
    chunks: &'a [Arc<Chunk>],
    ci: usize,
    j: usize,
    rev: bool,
    left: usize,
}

impl<'a> Iterator for RIter<'a> {
    type Item = (&'a [u8], f64);

    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        let c = self.chunks.get(self.ci)?;
        let (s, m) = c.get(self.j)?;
        self.left -= 1;
        if !self.rev {
            self.j += 1;
            if self.j == c.len() {
                self.ci += 1;
                self.j = 0;
            }
        } else if self.j > 0 {
            self.j -= 1;
        } else if self.ci > 0 {
            self.ci -= 1;
            self.j = self.chunks[self.ci].len().saturating_sub(1);
        } else {
            self.left = 0;
        }
        Some((m, *s))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}
