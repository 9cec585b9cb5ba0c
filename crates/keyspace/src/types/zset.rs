//! The sorted-set type: members ordered by (score, member bytes) with O(log n) rank queries.
//!
//! Problem: ZADD/ZREM/ZRANK/ZRANGE and range-by-score/lex need O(log n) insert, delete, rank and
//! "n-th element", plus O(1) score lookup by member; a write to a big sorted set that a snapshot
//! still holds must copy O(chunk), not the set; and the many small sorted sets of a cache must
//! cost about what Redis's listpack costs, not a skip list's nodes and index (issue 19). Three
//! forms, with the same contents and order (score ascending, ties by member bytes, `-0 == 0`):
//! * packed, while Redis 7.0 would keep the value a listpack (at most
//!   `zset-max-listpack-entries` = 128 members of at most `zset-max-listpack-value` = 64 bytes,
//!   the defaults): one [`Packed`] buffer of entries member 0, score 0, member 1, score 1, ...
//!   in order, each score an integer of 1, 2 or 4 bytes when it is one (as a listpack stores
//!   small integers), else its 8 `f64` bytes ([`encode_score`]). Lookups, ranks and edits walk the
//!   buffer (O(bytes), at most 128 pairs), an edit reallocates it to its exact size, a reverse
//!   range walks it from the back, and a clone is one `memcpy`:
//!   ```text
//!    ┌───┬────────┬───┬───┬─────────┬───┬───┬────────┬───┬───┬───┬───┬─────
//!    │ 1 │ "a"    │ 1 │ 8 │ 1.5 LE  │ 8 │ 2 │ "bb"   │ 2 │ 1 │ 2 │ 1 │ ...
//!    └───┴────────┴───┴───┴─────────┴───┴───┴────────┴───┴───┴───┴───┴─────
//!      member 0          score 0 (f64)     member 1          score 1 (i8)
//!   ```
//!   The first write past the limits (a 129th member, a member longer than 64 bytes) converts
//!   it for good, as Redis converts a listpack, to one of the two general forms, which sit behind
//!   one box (so [`ZSet`] is the packed form's 24 bytes and `Value` holds it inline):
//! * a [`SkipList`] (Redis's `zset` encoding: skip list with spans plus a member index, in one
//!   arena; its clone is a deep copy of at most [`BIG_AT`] nodes), up to [`BIG_AT`] members;
//! * past it, the chunked form: the order in [`Ranked`] (sorted `Arc`'d chunks with a Fenwick
//!   tree of their lengths) and member → score in an [`IndexedTable`] (the hashes' and sets'
//!   table, whose big form is chunked too). A clone copies chunk pointers; a write copies the
//!   chunks it touches, counted in `cow_copied`. It turns back into a skip list (never into the
//!   packed form) below `BIG_AT / 4` members.
//!
//! The encoding is invisible except for one detail we reproduce: a listpack stores a score of
//! `-0` as `0`, so the packed form normalizes `-0` (and the other forms keep it).
//! [`ZSet::is_compact`] is "the form is packed" (OBJECT ENCODING and the RDB writer derive the
//! encoding from the contents and the configured limits, in `crate::encoding`).

use super::packed::{Packed, PackedIter, Pairs};
use super::ranked::{RIter, Ranked};
use super::skiplist::{key_lt, SkipIter, SkipList};
use super::table::IndexedTable;
use crate::memory::alloc_size;

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
    /// Within Redis's listpack limits: member, score, member, score, ... in order (see the
    /// module docs).
    Packed(Packed),
    /// Past the listpack limits. Boxed, so that [`ZSet`] is the packed form's 24 bytes and
    /// `Value` holds it inline.
    General(Box<General>),
}

/// The forms past the listpack limits.
#[derive(Clone)]
enum General {
    /// Up to [`BIG_AT`] members.
    Small(SkipList),
    /// The chunked form.
    Big(Big),
}

const _: () = assert!(std::mem::size_of::<ZSet>() <= 24);

/// A borrowed form, for matching on all three at once.
enum View<'a> {
    Packed(&'a Packed),
    Small(&'a SkipList),
    Big(&'a Big),
}

/// A mutably borrowed form.
enum ViewMut<'a> {
    Packed(&'a mut Packed),
    Small(&'a mut SkipList),
    Big(&'a mut Big),
}

impl Repr {
    fn small(s: SkipList) -> Repr {
        Repr::General(Box::new(General::Small(s)))
    }

    fn big(b: Big) -> Repr {
        Repr::General(Box::new(General::Big(b)))
    }
}

/// A Redis sorted-set value.
#[derive(Clone)]
pub struct ZSet {
    repr: Repr,
}

impl Default for ZSet {
    fn default() -> ZSet {
        ZSet {
            repr: Repr::Packed(Packed::default()),
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

/// A score as its packed entry: an integral score that fits an `i8`, `i16` or `i32` as that
/// integer in 1, 2 or 4 little-endian bytes (as a listpack stores `1`..`4` in one byte), any
/// other score as its 8 `f64` bytes. The entry's length tells the four apart.
#[derive(Clone, Copy)]
struct ScoreBytes {
    buf: [u8; 8],
    len: u8,
}

impl ScoreBytes {
    fn as_slice(&self) -> &[u8] {
        &self.buf[..usize::from(self.len)]
    }
}

fn encode_score(score: f64) -> ScoreBytes {
    let mut buf = [0u8; 8];
    // Integral and exact as an i32 (bit for bit: not -0, NaN, an infinity or a fraction).
    let int = score as i32;
    let len = if f64::from(int).to_bits() != score.to_bits() {
        buf = score.to_le_bytes();
        8
    } else if let Ok(b) = i8::try_from(int) {
        buf[..1].copy_from_slice(&b.to_le_bytes());
        1
    } else if let Ok(h) = i16::try_from(int) {
        buf[..2].copy_from_slice(&h.to_le_bytes());
        2
    } else {
        buf[..4].copy_from_slice(&int.to_le_bytes());
        4
    };
    ScoreBytes { buf, len }
}

/// A packed score entry's score (this form alone writes score entries, in one of the four
/// lengths of [`encode_score`]).
fn decode_score(e: &[u8]) -> f64 {
    match e.len() {
        1 => f64::from(i8::from_le_bytes([e[0]])),
        2 => f64::from(i16::from_le_bytes([e[0], e[1]])),
        4 => f64::from(i32::from_le_bytes([e[0], e[1], e[2], e[3]])),
        _ => <[u8; 8]>::try_from(e).map_or(0.0, f64::from_le_bytes),
    }
}

/// A packed form's `(member, score)` pairs with the score decoded, in either direction (a
/// [`Pairs`] or its reverse).
#[derive(Clone)]
struct Scored<I>(I);

impl<'a, I: Iterator<Item = (&'a [u8], &'a [u8])>> Iterator for Scored<I> {
    type Item = (&'a [u8], f64);

    fn next(&mut self) -> Option<Self::Item> {
        self.0.next().map(|(m, s)| (m, decode_score(s)))
    }
}

/// The pairs of the packed form from `it` upwards.
fn scored(it: PackedIter<'_>) -> Scored<Pairs<'_>> {
    Scored(it.pairs())
}

/// Iterator over `(member, score)` pairs, forward (ascending) or backward.
#[derive(Clone)]
pub struct ZIter<'a>(It<'a>);

#[derive(Clone)]
enum It<'a> {
    Packed(Scored<Pairs<'a>>),
    PackedRev(Scored<std::iter::Rev<Pairs<'a>>>),
    Small(SkipIter<'a>),
    Big(RIter<'a>),
}

impl<'a> Iterator for ZIter<'a> {
    type Item = (&'a [u8], f64);

    fn next(&mut self) -> Option<(&'a [u8], f64)> {
        match &mut self.0 {
            It::Packed(i) => i.next(),
            It::PackedRev(i) => i.next(),
            It::Small(i) => i.next(),
            It::Big(i) => i.next(),
        }
    }
}

/// Pair index (rank) and score of `member` in the packed form.
fn packed_find(p: &Packed, member: &[u8]) -> Option<(usize, f64)> {
    scored(p.iter())
        .enumerate()
        .find(|(_, (m, _))| *m == member)
        .map(|(i, (_, s))| (i, s))
}

/// Sets `member`'s score in the packed form; `Some(added)`, or `None` (and no change) when the
/// write would break the listpack limits (a new member past 128, or longer than 64 bytes).
/// `score` is not NaN.
fn packed_insert(p: &mut Packed, member: &[u8], score: f64) -> Option<bool> {
    let found = packed_find(p, member);
    if found.is_none() && (member.len() > MAX_COMPACT_VALUE || p.len() / 2 >= MAX_COMPACT_ENTRIES) {
        return None;
    }
    // A listpack stores -0 as 0.
    let score = if score == 0.0 { 0.0 } else { score };
    // Where (score, member) goes among the other pairs.
    let skip = found.map(|(i, _)| i);
    let at = scored(p.iter())
        .enumerate()
        .filter(|&(j, _)| Some(j) != skip)
        .take_while(|&(_, (m, s))| key_lt(s, m, score, member))
        .count();
    let enc = encode_score(score);
    match found {
        Some((i, old)) => {
            if old.to_bits() != score.to_bits() {
                if at == i {
                    p.splice(2 * i + 1, 1, &[enc.as_slice()]);
                } else {
                    p.splice(2 * i, 2, &[]);
                    p.splice(2 * at, 0, &[member, enc.as_slice()]);
                }
            }
            Some(false)
        }
        None => {
            p.splice(2 * at, 0, &[member, enc.as_slice()]);
            Some(true)
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
    fn view(&self) -> View<'_> {
        match &self.repr {
            Repr::Packed(p) => View::Packed(p),
            Repr::General(g) => match &**g {
                General::Small(s) => View::Small(s),
                General::Big(b) => View::Big(b),
            },
        }
    }

    fn view_mut(&mut self) -> ViewMut<'_> {
        match &mut self.repr {
            Repr::Packed(p) => ViewMut::Packed(p),
            Repr::General(g) => match &mut **g {
                General::Small(s) => ViewMut::Small(s),
                General::Big(b) => ViewMut::Big(b),
            },
        }
    }

    /// An empty sorted set.
    pub fn new() -> ZSet {
        ZSet::default()
    }

    /// Number of members.
    pub fn len(&self) -> usize {
        match self.view() {
            View::Packed(p) => p.len() / 2,
            View::Small(s) => s.len(),
            View::Big(b) => b.order.len(),
        }
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `(member, score)` pairs in ascending order.
    pub fn iter(&self) -> ZIter<'_> {
        match self.view() {
            View::Packed(p) => ZIter(It::Packed(scored(p.iter()))),
            View::Small(s) => ZIter(It::Small(s.iter())),
            View::Big(b) => ZIter(It::Big(b.order.iter_from(0, false))),
        }
    }

    /// Iterates from the element of ascending rank `rank` (0-based): upwards when `rev` is
    /// false, downwards when true. Empty when `rank >= len`.
    pub fn iter_from_rank(&self, rank: usize, rev: bool) -> ZIter<'_> {
        match self.view() {
            View::Packed(p) if rev => {
                // The entries up to rank's score, walked back to front.
                let end = if rank < p.len() / 2 { 2 * rank + 2 } else { 0 };
                ZIter(It::PackedRev(Scored(p.iter_until(end).pairs().rev())))
            }
            View::Packed(p) => ZIter(It::Packed(scored(p.iter_from(rank.saturating_mul(2))))),
            View::Small(s) => ZIter(It::Small(s.iter_from_rank(rank, rev))),
            View::Big(b) => ZIter(It::Big(b.order.iter_from(rank, rev))),
        }
    }

    /// The score of `member`.
    pub fn score(&self, member: &[u8]) -> Option<f64> {
        match self.view() {
            View::Packed(p) => packed_find(p, member).map(|(_, s)| s),
            View::Small(s) => s.score(member),
            View::Big(b) => b.scores.get(member).copied(),
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
        let added = match self.view_mut() {
            ViewMut::Packed(p) => match packed_insert(p, member.as_ref(), score) {
                Some(added) => return added,
                None => {
                    // Past the listpack limits: a skip list for good (Redis's `zsetConvert`).
                    let mut s: SkipList = scored(p.iter()).collect();
                    let added = s.insert(member, score);
                    self.repr = Repr::small(s);
                    added
                }
            },
            ViewMut::Small(s) => s.insert(member, score),
            ViewMut::Big(b) => return b.insert(member.into(), score),
        };
        if added {
            self.maybe_big();
        }
        added
    }

    /// To the chunked form once a skip list grew past [`BIG_AT`].
    fn maybe_big(&mut self) {
        if let View::Small(s) = self.view() {
            if s.len() > BIG_AT {
                self.repr = Repr::big(Big::from_small(s));
            }
        }
    }

    /// Back to the skip list once a big set shrank below a quarter of [`BIG_AT`].
    fn maybe_small(&mut self) {
        if let View::Big(b) = self.view() {
            if b.order.len() < BIG_AT / 4 {
                let s: SkipList = b
                    .order
                    .iter_from(0, false)
                    .map(|(m, sc)| (m.to_vec(), sc))
                    .collect();
                self.repr = Repr::small(s);
            }
        }
    }

    /// Removes `member`, returning its score.
    pub fn remove(&mut self, member: &[u8]) -> Option<f64> {
        let out = match self.view_mut() {
            ViewMut::Packed(p) => {
                let (i, score) = packed_find(p, member)?;
                p.splice(2 * i, 2, &[]);
                return Some(score);
            }
            ViewMut::Small(s) => return s.remove(member),
            ViewMut::Big(b) => b.remove(member),
        };
        self.maybe_small();
        out
    }

    /// Rank (0-based, ascending) of `member`.
    pub fn rank(&self, member: &[u8]) -> Option<usize> {
        match self.view() {
            View::Packed(p) => packed_find(p, member).map(|(i, _)| i),
            View::Small(s) => s.rank(member),
            View::Big(b) => b.order.rank(*b.scores.get(member)?, member),
        }
    }

    /// The element of ascending rank `rank` (0-based).
    pub fn get_by_rank(&self, rank: usize) -> Option<(&[u8], f64)> {
        match self.view() {
            View::Packed(p) => scored(p.iter_from(rank.checked_mul(2)?)).next(),
            View::Small(s) => s.get_by_rank(rank),
            View::Big(b) => b.order.at(rank),
        }
    }

    /// How many leading elements (ascending) satisfy `pred`, found by a walk (packed form), a
    /// descent (skip list) or binary searches (chunked form).
    ///
    /// Exact when `pred` holds for a prefix of the order (e.g. "score < min"); otherwise it gives
    /// some boundary where `pred` turns false, as Redis's `zslFirstInRange`-style descents do
    /// (packed: the first, as Redis's listpack walks, `zzlFirstInRange`).
    pub fn count_while(&self, pred: impl Fn(&[u8], f64) -> bool) -> usize {
        match self.view() {
            View::Packed(p) => scored(p.iter()).take_while(|&(m, s)| pred(m, s)).count(),
            View::Small(s) => s.count_while(pred),
            View::Big(b) => b.order.count_while(pred),
        }
    }

    /// Removes the elements of ascending ranks `start..end` (0-based, end exclusive, clamped);
    /// returns how many were removed.
    pub fn remove_rank_range(&mut self, start: usize, end: usize) -> usize {
        let n = match self.view_mut() {
            ViewMut::Packed(p) => {
                let end = end.min(p.len() / 2);
                if start >= end {
                    return 0;
                }
                p.splice(2 * start, 2 * (end - start), &[]);
                return end - start;
            }
            ViewMut::Small(s) => return s.remove_rank_range(start, end),
            ViewMut::Big(b) => {
                let Big { scores, order } = b;
                order.remove_range(start, end, |m| Big::unindex(scores, m))
            }
        };
        self.maybe_small();
        n
    }

    /// Removes and returns the lowest element.
    pub fn pop_first(&mut self) -> Option<(Vec<u8>, f64)> {
        let out = match self.view_mut() {
            ViewMut::Packed(p) => {
                let out = scored(p.iter()).next().map(|(m, s)| (m.to_vec(), s))?;
                p.splice(0, 2, &[]);
                return Some(out);
            }
            ViewMut::Small(s) => return s.pop_first(),
            ViewMut::Big(b) => b.pop_at(0),
        };
        self.maybe_small();
        out
    }

    /// Removes and returns the highest element.
    pub fn pop_last(&mut self) -> Option<(Vec<u8>, f64)> {
        let out = match self.view_mut() {
            ViewMut::Packed(p) => {
                let out = Scored(p.iter().pairs().rev())
                    .next()
                    .map(|(m, s)| (m.to_vec(), s))?;
                p.splice(p.len() - 2, 2, &[]);
                return Some(out);
            }
            ViewMut::Small(s) => return s.pop_last(),
            ViewMut::Big(b) => {
                let last = b.order.len().checked_sub(1)?;
                b.pop_at(last)
            }
        };
        self.maybe_small();
        out
    }

    /// True while Redis 7.0 would keep this value listpack-encoded with the default limits
    /// (the packed form).
    pub fn is_compact(&self) -> bool {
        matches!(self.repr, Repr::Packed(_))
    }

    /// True in the chunked form (tests, harnesses).
    pub fn is_chunked(&self) -> bool {
        matches!(self.view(), View::Big(_))
    }

    /// [`ZSet::mem_usage`] recomputed element by element (O(n); tests).
    pub fn mem_usage_recount(&self) -> usize {
        std::mem::size_of::<ZSet>()
            + match self.view() {
                View::Packed(p) => p.heap_recount(),
                View::Small(s) => {
                    std::mem::size_of::<General>() + s.mem_usage_recount()
                        - std::mem::size_of::<SkipList>()
                }
                View::Big(b) => {
                    std::mem::size_of::<General>()
                        + b.scores.base_mem_recount()
                        + b.order.mem_recount()
                }
            }
    }

    /// Estimated heap bytes used, O(1).
    pub fn mem_usage(&self) -> usize {
        std::mem::size_of::<ZSet>()
            + match self.view() {
                View::Packed(p) => alloc_size(p.byte_len()),
                View::Small(s) => {
                    std::mem::size_of::<General>() + s.mem_usage() - std::mem::size_of::<SkipList>()
                }
                View::Big(b) => {
                    std::mem::size_of::<General>() + b.scores.base_mem() + b.order.mem()
                }
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
