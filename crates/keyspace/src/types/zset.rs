//! The sorted-set type: members ordered by (score, member bytes) with O(log n) rank queries.
//!
//! Problem: ZADD/ZREM/ZRANK/ZRANGE and range-by-score/lex need O(log n) insert, delete, rank and
//! "n-th element", plus O(1) score lookup by member; and a write to a big sorted set that a
//! snapshot still holds must copy O(chunk), not the set (issue 19). Two forms, with the same
//! contents and order:
//! * up to [`BIG_AT`] members, [`SkipList`] (Redis's `zset` encoding: skip list with spans plus
//!   a member index, in one arena; its clone is a deep copy of at most [`BIG_AT`] nodes);
//! * past it, the chunked form: the order in [`Ranked`] (sorted `Arc`'d chunks with a Fenwick
//!   tree of their lengths) and member → score in an [`IndexedTable`] (the hashes' and sets'
//!   table, whose big form is chunked too). A clone copies chunk pointers; a write copies the
//!   chunks it touches, counted in `cow_copied`. It turns back into a skip list below
//!   `BIG_AT / 4` members.
//!
//! Redis 7.0 keeps a small sorted set as a listpack (at most `zset-max-listpack-entries` = 128
//! members of at most `zset-max-listpack-value` = 64 bytes) and converts it for good to a skip
//! list past those limits. The encoding is invisible except for one detail we reproduce: a
//! listpack stores a score of `-0` as `0`. [`ZSet`] tracks whether Redis would still use the
//! listpack ("compact") and normalizes `-0` while it would.

use super::ranked::{RIter, Ranked};
use super::skiplist::{SkipIter, SkipList};
use super::table::IndexedTable;

/// `zset-max-listpack-entries` default of Redis 7.0.
pub(super) const MAX_COMPACT_ENTRIES: usize = 128;
/// `zset-max-listpack-value` default of Redis 7.0.
pub(super) const MAX_COMPACT_VALUE: usize = 64;
/// Members past which a sorted set takes the chunked form.
pub(crate) const BIG_AT: usize = 1024;

/// The chunked form (see the module docs).
#[derive(Clone)]
struct Big {
    scores: IndexedTable<f64>,
    order: Ranked,
}

#[derive(Clone)]
enum Repr {
    Small(SkipList),
    /// Boxed: keeps the small form's size.
    Big(Box<Big>),
}

/// A Redis sorted-set value.
#[derive(Clone)]
pub struct ZSet {
    repr: Repr,
    compact: bool,
}

impl Default for ZSet {
    fn default() -> ZSet {
        ZSet {
            repr: Repr::Small(SkipList::new()),
            compact: true,
        }
    }
}

impl std::fmt::Debug for ZSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.iter().map(|(m, s)| (String::from_utf8_lossy(m), s)))
            .finish()
    }
}

impl PartialEq for ZSet {
    fn eq(&self, other: &ZSet) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

/// Iterator over `(member, score)` pairs, forward (ascending) or backward.
#[derive(Clone)]
pub struct ZIter<'a>(It<'a>);

#[derive(Clone)]
enum It<'a> {
    Small(SkipIter<'a>),
    Big(RIter<'a>),
}

impl<'a> Iterator for ZIter<'a> {
    type Item = (&'a [u8], f64);

    fn next(&mut self) -> Option<(&'a [u8], f64)> {
        match &mut self.0 {
            It::Small(i) => i.next(),
            It::Big(i) => i.next(),
        }
    }
}

impl Big {
    fn from_small(s: &SkipList) -> Big {
        let mut scores = IndexedTable::default();
        for (m, sc) in s.iter() {
            scores.insert(m.to_vec(), sc);
        }
        Big {
            scores,
            order: Ranked::from_sorted(s.iter().map(|(m, sc)| (sc, Box::from(m)))),
        }
    }

    fn insert(&mut self, member: Vec<u8>, score: f64) -> bool {
        if let Some(&old) = self.scores.get(&member) {
            if old.to_bits() == score.to_bits() {
                return false;
            }
            if let Some(m) = self.order.remove(old, &member) {
                self.order.insert(score, m);
            }
            if let Some(s) = self.scores.get_mut(&member) {
                *s = score;
            }
            return false;
        }
        self.order.insert(score, Box::from(member.as_slice()));
        self.scores.insert(member, score);
        true
    }

    fn remove(&mut self, member: &[u8]) -> Option<f64> {
        let pos = self.scores.position(member)?;
        let (_, score) = self.scores.swap_remove_at(pos)?;
        self.order.remove(score, member);
        Some(score)
    }

    fn unindex(scores: &mut IndexedTable<f64>, member: &[u8]) {
        if let Some(pos) = scores.position(member) {
            scores.swap_remove_at(pos);
        }
    }

    fn pop_at(&mut self, rank: usize) -> Option<(Vec<u8>, f64)> {
        let (score, m) = self.order.remove_at(rank)?;
        Big::unindex(&mut self.scores, &m);
        Some((m.into_vec(), score))
    }
}

impl ZSet {
    /// An empty sorted set.
    pub fn new() -> ZSet {
        ZSet::default()
    }

    /// Number of members.
    pub fn len(&self) -> usize {
        match &self.repr {
            Repr::Small(s) => s.len(),
            Repr::Big(b) => b.order.len(),
        }
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `(member, score)` pairs in ascending order.
    pub fn iter(&self) -> ZIter<'_> {
        match &self.repr {
            Repr::Small(s) => ZIter(It::Small(s.iter())),
            Repr::Big(b) => ZIter(It::Big(b.order.iter_from(0, false))),
        }
    }

    /// Iterates from the element of ascending rank `rank` (0-based): upwards when `rev` is
    /// false, downwards when true. Empty when `rank >= len`.
    pub fn iter_from_rank(&self, rank: usize, rev: bool) -> ZIter<'_> {
        match &self.repr {
            Repr::Small(s) => ZIter(It::Small(s.iter_from_rank(rank, rev))),
            Repr::Big(b) => ZIter(It::Big(b.order.iter_from(rank, rev))),
        }
    }

    /// The score of `member`.
    pub fn score(&self, member: &[u8]) -> Option<f64> {
        match &self.repr {
            Repr::Small(s) => s.score(member),
            Repr::Big(b) => b.scores.get(member).copied(),
        }
    }

    /// True when `member` is present.
    pub fn contains(&self, member: &[u8]) -> bool {
        self.score(member).is_some()
    }

    /// Sets `member`'s score, adding it if absent; true when it was added.
    ///
    /// `score` must not be NaN (the command layer refuses NaN; a NaN here is ignored and the
    /// call returns false).
    pub fn insert(&mut self, member: impl Into<Vec<u8>> + AsRef<[u8]>, score: f64) -> bool {
        if score.is_nan() {
            return false;
        }
        if self.compact
            && (self.len() + 1 > MAX_COMPACT_ENTRIES || member.as_ref().len() > MAX_COMPACT_VALUE)
            && !self.contains(member.as_ref())
        {
            self.compact = false;
        }
        // A listpack stores -0 as 0.
        let score = if self.compact && score == 0.0 {
            0.0
        } else {
            score
        };
        match &mut self.repr {
            Repr::Small(s) => {
                let added = s.insert(member, score);
                if added && s.len() > BIG_AT {
                    self.repr = Repr::Big(Box::new(Big::from_small(s)));
                }
                added
            }
            Repr::Big(b) => b.insert(member.into(), score),
        }
    }

    /// Back to the skip list once a big set shrank below a quarter of [`BIG_AT`].
    fn maybe_small(&mut self) {
        if let Repr::Big(b) = &self.repr {
            if b.order.len() < BIG_AT / 4 {
                let s: SkipList = b
                    .order
                    .iter_from(0, false)
                    .map(|(m, sc)| (m.to_vec(), sc))
                    .collect();
                self.repr = Repr::Small(s);
            }
        }
    }

    /// Removes `member`, returning its score.
    pub fn remove(&mut self, member: &[u8]) -> Option<f64> {
        let out = match &mut self.repr {
            Repr::Small(s) => return s.remove(member),
            Repr::Big(b) => b.remove(member),
        };
        self.maybe_small();
        out
    }

    /// Rank (0-based, ascending) of `member`.
    pub fn rank(&self, member: &[u8]) -> Option<usize> {
        match &self.repr {
            Repr::Small(s) => s.rank(member),
            Repr::Big(b) => b.order.rank(*b.scores.get(member)?, member),
        }
    }

    /// The element of ascending rank `rank` (0-based).
    pub fn get_by_rank(&self, rank: usize) -> Option<(&[u8], f64)> {
        match &self.repr {
            Repr::Small(s) => s.get_by_rank(rank),
            Repr::Big(b) => b.order.at(rank),
        }
    }

    /// How many leading elements (ascending) satisfy `pred`, found by a descent (skip list) or
    /// binary searches (chunked form).
    ///
    /// Exact when `pred` holds for a prefix of the order (e.g. "score < min"); otherwise it gives
    /// some boundary where `pred` turns false, as Redis's `zslFirstInRange`-style descents do.
    pub fn count_while(&self, pred: impl Fn(&[u8], f64) -> bool) -> usize {
        match &self.repr {
            Repr::Small(s) => s.count_while(pred),
            Repr::Big(b) => b.order.count_while(pred),
        }
    }

    /// Removes the elements of ascending ranks `start..end` (0-based, end exclusive, clamped);
    /// returns how many were removed.
    pub fn remove_rank_range(&mut self, start: usize, end: usize) -> usize {
        let n = match &mut self.repr {
            Repr::Small(s) => return s.remove_rank_range(start, end),
            Repr::Big(b) => {
                let Big { scores, order } = &mut **b;
                order.remove_range(start, end, |m| Big::unindex(scores, m))
            }
        };
        self.maybe_small();
        n
    }

    /// Removes and returns the lowest element.
    pub fn pop_first(&mut self) -> Option<(Vec<u8>, f64)> {
        let out = match &mut self.repr {
            Repr::Small(s) => return s.pop_first(),
            Repr::Big(b) => b.pop_at(0),
        };
        self.maybe_small();
        out
    }

    /// Removes and returns the highest element.
    pub fn pop_last(&mut self) -> Option<(Vec<u8>, f64)> {
        let out = match &mut self.repr {
            Repr::Small(s) => return s.pop_last(),
            Repr::Big(b) => {
                let last = b.order.len().checked_sub(1)?;
                b.pop_at(last)
            }
        };
        self.maybe_small();
        out
    }

    /// True while Redis 7.0 would keep this value listpack-encoded (OBJECT ENCODING).
    pub fn is_compact(&self) -> bool {
        self.compact
    }

    /// True in the chunked form (tests, harnesses).
    pub fn is_chunked(&self) -> bool {
        matches!(self.repr, Repr::Big(_))
    }

    /// [`ZSet::mem_usage`] recomputed element by element (O(n); tests).
    pub fn mem_usage_recount(&self) -> usize {
        std::mem::size_of::<ZSet>()
            + match &self.repr {
                Repr::Small(s) => s.mem_usage_recount(),
                Repr::Big(b) => {
                    std::mem::size_of::<Big>() + b.scores.base_mem_recount() + b.order.mem_recount()
                }
            }
    }

    /// Estimated heap bytes used, O(1).
    pub fn mem_usage(&self) -> usize {
        std::mem::size_of::<ZSet>()
            + match &self.repr {
                Repr::Small(s) => s.mem_usage(),
                Repr::Big(b) => std::mem::size_of::<Big>() + b.scores.base_mem() + b.order.mem(),
            }
    }
}

impl<M: Into<Vec<u8>> + AsRef<[u8]>> FromIterator<(M, f64)> for ZSet {
    fn from_iter<I: IntoIterator<Item = (M, f64)>>(iter: I) -> ZSet {
        let mut z = ZSet::new();
        for (m, s) in iter {
            z.insert(m, s);
        }
        z
    }
}

#[cfg(test)]
mod tests;
