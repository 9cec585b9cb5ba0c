//! The small form of a sorted set: a skip list with spans, plus a hash index member → node.
//!
//! Problem: ZADD/ZREM/ZRANK/ZRANGE and range-by-score/lex need O(log n) insert, delete, rank and
//! "n-th element", plus O(1) score lookup by member. This is Redis's `zset` encoding
//! (`t_zset.c`): a skip list whose links carry *spans* (how many level-0 steps a link jumps), so
//! a descent accumulates ranks (W. Pugh, "Skip Lists: A Probabilistic Alternative to Balanced
//! Trees", 1990; spans as in "A Skip List Cookbook", section 3.4), plus a hash index member →
//! node. Nodes live in an arena (`Vec`) addressed by index, so the whole structure is plain data
//! (`Clone` is a deep copy) and needs no `unsafe`; freed slots go to a free list and the arena is
//! compacted when more than half of it is free.
//!
//! Ordering: score ascending, ties by member bytes (memcmp). Scores are never NaN (the command
//! layer refuses them), so the order is total.
//!
//! [`super::zset::ZSet`] uses this form past Redis's listpack limits (below them it is packed)
//! up to [`super::zset::BIG_AT`] members: its clone is a deep copy, O(n), which a write to a
//! held value pays, so past that size the sorted set moves to the chunked form
//! (`super::ranked` plus an `IndexedTable`).

use super::hasher::MemberHasher;
use std::hash::BuildHasher;

use hashbrown::HashTable;

/// Maximum skip-list level (`ZSKIPLIST_MAXLEVEL` in Redis).
const MAX_LEVEL: usize = 32;

/// Index of the header node.
const HEAD: usize = 0;
/// "No node".
const NIL: usize = usize::MAX;

#[derive(Clone, Copy, Debug)]
struct Link {
    forward: usize,
    span: usize,
}

#[derive(Clone, Debug)]
struct Node {
    member: Vec<u8>,
    score: f64,
    backward: usize,
    levels: Vec<Link>,
}

/// A skip list with a member index (see the module docs).
pub(crate) struct SkipList {
    nodes: Vec<Node>,
    free: Vec<usize>,
    tail: usize,
    level: usize,
    len: usize,
    index: HashTable<usize>,
    hasher: MemberHasher,
    rng: u64,
    /// Heap bytes of the live nodes (members and level arrays), kept by `alloc`/`release` so
    /// [`SkipList::mem_usage`] is O(1).
    node_bytes: usize,
}

impl Default for SkipList {
    fn default() -> SkipList {
        let head = Node {
            member: Vec::new(),
            score: 0.0,
            backward: NIL,
            // The header's levels grow with the list's level (`sl_insert`) rather than starting
            // at MAX_LEVEL: 16 bytes per level in use instead of 512 bytes in every sorted set.
            // Invariant: `levels.len() >= self.level`, and links above `self.level` are NIL.
            levels: vec![
                Link {
                    forward: NIL,
                    span: 0
                };
                1
            ],
        };
        SkipList {
            nodes: vec![head],
            free: Vec::new(),
            tail: NIL,
            level: 1,
            len: 0,
            index: HashTable::new(),
            hasher: MemberHasher,
            rng: 0x9E37_79B9_7F4A_7C15,
            node_bytes: 0,
        }
    }
}

impl Clone for SkipList {
    /// A deep copy, O(n): counted in `cow_copied` (one per node), so the big-value harness and
    /// tests see what a write to a small sorted set a snapshot holds copies.
    fn clone(&self) -> SkipList {
        super::cow::count(self.nodes.len());
        SkipList {
            nodes: self.nodes.clone(),
            free: self.free.clone(),
            tail: self.tail,
            level: self.level,
            len: self.len,
            index: self.index.clone(),
            hasher: self.hasher,
            rng: self.rng,
            node_bytes: self.node_bytes,
        }
    }
}

impl PartialEq for SkipList {
    fn eq(&self, other: &SkipList) -> bool {
        self.len == other.len && self.iter().eq(other.iter())
    }
}

/// True when (s1, m1) sorts before (s2, m2) (the order of every form of a sorted set).
pub(super) fn key_lt(s1: f64, m1: &[u8], s2: f64, m2: &[u8]) -> bool {
    s1 < s2 || (s1 == s2 && m1 < m2)
}

/// Iterator over `(member, score)` pairs, forward (ascending) or backward.
#[derive(Clone)]
pub(crate) struct SkipIter<'a> {
    zs: &'a SkipList,
    cur: usize,
    rev: bool,
}

impl<'a> Iterator for SkipIter<'a> {
    type Item = (&'a [u8], f64);

    fn next(&mut self) -> Option<(&'a [u8], f64)> {
        if self.cur == NIL || self.cur == HEAD {
            return None;
        }
        let n = &self.zs.nodes[self.cur];
        self.cur = if self.rev {
            n.backward
        } else {
            n.levels[0].forward
        };
        Some((n.member.as_slice(), n.score))
    }
}

impl SkipList {
    /// An empty sorted set.
    pub(crate) fn new() -> SkipList {
        SkipList::default()
    }

    /// Number of members.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// `(member, score)` pairs in ascending order.
    pub(crate) fn iter(&self) -> SkipIter<'_> {
        SkipIter {
            zs: self,
            cur: self.nodes[HEAD].levels[0].forward,
            rev: false,
        }
    }

    /// Iterates from the element of ascending rank `rank` (0-based): upwards when `rev` is
    /// false, downwards when true. Empty when `rank >= len`.
    pub(crate) fn iter_from_rank(&self, rank: usize, rev: bool) -> SkipIter<'_> {
        let cur = self.node_at_rank(rank).unwrap_or(NIL);
        SkipIter { zs: self, cur, rev }
    }

    fn hash(&self, member: &[u8]) -> u64 {
        self.hasher.hash_one(member)
    }

    fn find_node(&self, member: &[u8]) -> Option<usize> {
        let h = self.hash(member);
        let nodes = &self.nodes;
        self.index.find(h, |&i| nodes[i].member == member).copied()
    }

    /// The score of `member`.
    pub(crate) fn score(&self, member: &[u8]) -> Option<f64> {
        self.find_node(member).map(|i| self.nodes[i].score)
    }

    fn random_level(&mut self) -> usize {
        // xorshift64*; the level only shapes performance, never results.
        let mut level = 1;
        loop {
            self.rng ^= self.rng >> 12;
            self.rng ^= self.rng << 25;
            self.rng ^= self.rng >> 27;
            let r = self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 48;
            // ZSKIPLIST_P = 0.25
            if r < 0x4000 && level < MAX_LEVEL {
                level += 1;
            } else {
                return level;
            }
        }
    }

    /// Sets `member`'s score, adding it if absent; true when it was added. `score` is not NaN.
    pub(crate) fn insert(&mut self, member: impl Into<Vec<u8>> + AsRef<[u8]>, score: f64) -> bool {
        if let Some(x) = self.find_node(member.as_ref()) {
            self.update_score(x, score);
            return false;
        }
        let x = self.sl_insert(member.into(), score);
        let h = self.hash(&self.nodes[x].member);
        let (nodes, hasher) = (&self.nodes, &self.hasher);
        self.index
            .insert_unique(h, x, |&i| hasher.hash_one(nodes[i].member.as_slice()));
        true
    }

    /// Removes `member`, returning its score.
    pub(crate) fn remove(&mut self, member: &[u8]) -> Option<f64> {
        let x = self.find_node(member)?;
        let score = self.nodes[x].score;
        self.unindex(x);
        self.sl_delete(score, x);
        self.release(x);
        self.maybe_compact();
        Some(score)
    }

    /// Rank (0-based, ascending) of `member`.
    pub(crate) fn rank(&self, member: &[u8]) -> Option<usize> {
        let target = self.find_node(member)?;
        let (score, m) = (self.nodes[target].score, &self.nodes[target].member);
        let mut rank = 0;
        let mut x = HEAD;
        for i in (0..self.level).rev() {
            loop {
                let l = self.nodes[x].levels[i];
                if l.forward == NIL {
                    break;
                }
                let f = &self.nodes[l.forward];
                if key_lt(f.score, &f.member, score, m) || l.forward == target {
                    rank += l.span;
                    x = l.forward;
                } else {
                    break;
                }
            }
            if x == target {
                return Some(rank - 1);
            }
        }
        None
    }

    /// The element of ascending rank `rank` (0-based).
    pub(crate) fn get_by_rank(&self, rank: usize) -> Option<(&[u8], f64)> {
        self.node_at_rank(rank)
            .map(|x| (self.nodes[x].member.as_slice(), self.nodes[x].score))
    }

    fn node_at_rank(&self, rank: usize) -> Option<usize> {
        if rank >= self.len {
            return None;
        }
        let mut update = [HEAD; MAX_LEVEL];
        let (x, traversed) = self.descend_to_rank(rank + 1, &mut update);
        (traversed == rank + 1).then_some(x)
    }

    /// The rank descent: from the head, on each level from the top, move forward while the
    /// elements passed stay within `rank`; `update[i]` is the last node visited on level `i`.
    /// Returns the node reached and how many elements it passed (`rank` when `rank <= len`: the
    /// node of 1-based rank `rank`, or the head for 0).
    fn descend_to_rank(&self, rank: usize, update: &mut [usize; MAX_LEVEL]) -> (usize, usize) {
        let mut traversed = 0;
        let mut x = HEAD;
        for i in (0..self.level).rev() {
            loop {
                let l = self.nodes[x].levels[i];
                if l.forward != NIL && traversed + l.span <= rank {
                    traversed += l.span;
                    x = l.forward;
                } else {
                    break;
                }
            }
            update[i] = x;
        }
        (x, traversed)
    }

    /// How many leading elements (ascending) satisfy `pred`, found by a skip-list descent.
    ///
    /// Exact when `pred` holds for a prefix of the order (e.g. "score < min"); otherwise it gives
    /// what Redis's `zslFirstInRange`/`zslFirstInLexRange`-style descents give.
    pub(crate) fn count_while(&self, pred: impl Fn(&[u8], f64) -> bool) -> usize {
        let mut rank = 0;
        let mut x = HEAD;
        for i in (0..self.level).rev() {
            loop {
                let l = self.nodes[x].levels[i];
                if l.forward == NIL {
                    break;
                }
                let f = &self.nodes[l.forward];
                if pred(&f.member, f.score) {
                    rank += l.span;
                    x = l.forward;
                } else {
                    break;
                }
            }
        }
        rank
    }

    /// Removes the elements of ascending ranks `start..end` (0-based, end exclusive, clamped);
    /// returns how many were removed.
    pub(crate) fn remove_rank_range(&mut self, start: usize, end: usize) -> usize {
        let end = end.min(self.len);
        if start >= end {
            return 0;
        }
        let mut update = [HEAD; MAX_LEVEL];
        let (x, mut traversed) = self.descend_to_rank(start, &mut update);
        let mut x = self.nodes[x].levels[0].forward;
        let mut removed = 0;
        while x != NIL && traversed < end {
            let next = self.nodes[x].levels[0].forward;
            self.unindex(x);
            self.delete_node(x, &update);
            self.release(x);
            removed += 1;
            traversed += 1;
            x = next;
        }
        self.maybe_compact();
        removed
    }

    /// Removes and returns the lowest element.
    pub(crate) fn pop_first(&mut self) -> Option<(Vec<u8>, f64)> {
        let x = self.nodes[HEAD].levels[0].forward;
        self.pop_node(x)
    }

    /// Removes and returns the highest element.
    pub(crate) fn pop_last(&mut self) -> Option<(Vec<u8>, f64)> {
        self.pop_node(self.tail)
    }

    fn pop_node(&mut self, x: usize) -> Option<(Vec<u8>, f64)> {
        if x == NIL || x == HEAD {
            return None;
        }
        let score = self.nodes[x].score;
        self.unindex(x);
        self.sl_delete(score, x);
        let member = std::mem::take(&mut self.nodes[x].member);
        self.node_bytes -= member.len();
        self.release(x);
        self.maybe_compact();
        Some((member, score))
    }

    /// [`SkipList::mem_usage`] recomputed node by node (O(n); tests).
    pub(crate) fn mem_usage_recount(&self) -> usize {
        std::mem::size_of::<SkipList>()
            + self.nodes.capacity() * std::mem::size_of::<Node>()
            + self
                .nodes
                .iter()
                .map(|n| n.member.len() + n.levels.len() * std::mem::size_of::<Link>())
                .sum::<usize>()
            - self.nodes[HEAD].levels.len() * std::mem::size_of::<Link>()
            + self.head_bytes()
            + self.index.allocation_size()
            + self.free.capacity() * std::mem::size_of::<usize>()
    }

    /// Estimated heap bytes used.
    pub(crate) fn mem_usage(&self) -> usize {
        std::mem::size_of::<SkipList>()
            + self.nodes.capacity() * std::mem::size_of::<Node>()
            + self.node_bytes
            + self.head_bytes()
            + self.index.allocation_size()
            + self.free.capacity() * std::mem::size_of::<usize>()
    }

    /// Heap bytes of the header's level array (not in `node_bytes`: it grows with the level).
    fn head_bytes(&self) -> usize {
        self.nodes[HEAD].levels.capacity() * std::mem::size_of::<Link>()
    }

    // ---- skip-list internals (zslInsert, zslDeleteNode, zslUpdateScore in t_zset.c) ----

    fn alloc(&mut self, member: Vec<u8>, score: f64, level: usize) -> usize {
        self.node_bytes += member.len() + level * std::mem::size_of::<Link>();
        let node = Node {
            member,
            score,
            backward: NIL,
            levels: vec![
                Link {
                    forward: NIL,
                    span: 0
                };
                level
            ],
        };
        match self.free.pop() {
            Some(i) => {
                self.nodes[i] = node;
                i
            }
            None => {
                self.nodes.push(node);
                self.nodes.len() - 1
            }
        }
    }

    fn release(&mut self, x: usize) {
        let n = &mut self.nodes[x];
        self.node_bytes -= n.member.len() + n.levels.len() * std::mem::size_of::<Link>();
        n.member = Vec::new();
        n.levels = Vec::new();
        n.backward = NIL;
        self.free.push(x);
    }

    fn unindex(&mut self, x: usize) {
        let h = self.hash(&self.nodes[x].member);
        if let Ok(e) = self.index.find_entry(h, |&i| i == x) {
            e.remove();
        }
    }

    /// Inserts a node for a member known to be absent; returns its index.
    fn sl_insert(&mut self, member: Vec<u8>, score: f64) -> usize {
        let mut update = [HEAD; MAX_LEVEL];
        let mut rank = [0usize; MAX_LEVEL];
        let mut x = HEAD;
        for i in (0..self.level).rev() {
            rank[i] = if i == self.level - 1 { 0 } else { rank[i + 1] };
            loop {
                let l = self.nodes[x].levels[i];
                if l.forward == NIL {
                    break;
                }
                let f = &self.nodes[l.forward];
                if key_lt(f.score, &f.member, score, &member) {
                    rank[i] += l.span;
                    x = l.forward;
                } else {
                    break;
                }
            }
            update[i] = x;
        }
        let level = self.random_level();
        if level > self.level {
            let head = &mut self.nodes[HEAD].levels;
            if head.len() < level {
                head.resize(
                    level,
                    Link {
                        forward: NIL,
                        span: 0,
                    },
                );
            }
            for i in self.level..level {
                rank[i] = 0;
                update[i] = HEAD;
                self.nodes[HEAD].levels[i].span = self.len;
            }
            self.level = level;
        }
        let n = self.alloc(member, score, level);
        for i in 0..level {
            let u = self.nodes[update[i]].levels[i];
            self.nodes[n].levels[i] = Link {
                forward: u.forward,
                span: u.span - (rank[0] - rank[i]),
            };
            self.nodes[update[i]].levels[i] = Link {
                forward: n,
                span: rank[0] - rank[i] + 1,
            };
        }
        for (i, &u) in update.iter().enumerate().take(self.level).skip(level) {
            self.nodes[u].levels[i].span += 1;
        }
        self.nodes[n].backward = if update[0] == HEAD { NIL } else { update[0] };
        let f = self.nodes[n].levels[0].forward;
        if f != NIL {
            self.nodes[f].backward = n;
        } else {
            self.tail = n;
        }
        self.len += 1;
        n
    }

    fn delete_node(&mut self, x: usize, update: &[usize; MAX_LEVEL]) {
        for (i, &u) in update.iter().enumerate().take(self.level) {
            if self.nodes[u].levels[i].forward == x {
                let xl = self.nodes[x].levels[i];
                let ul = &mut self.nodes[u].levels[i];
                ul.span = ul.span + xl.span - 1;
                ul.forward = xl.forward;
            } else {
                self.nodes[u].levels[i].span -= 1;
            }
        }
        let f = self.nodes[x].levels[0].forward;
        let b = self.nodes[x].backward;
        if f != NIL {
            self.nodes[f].backward = b;
        } else {
            self.tail = b;
        }
        while self.level > 1 && self.nodes[HEAD].levels[self.level - 1].forward == NIL {
            self.level -= 1;
        }
        self.len -= 1;
    }

    /// Unlinks node `x` (whose score is `score`) from the list; the slot is not released.
    fn sl_delete(&mut self, score: f64, x: usize) {
        let mut update = [HEAD; MAX_LEVEL];
        let mut cur = HEAD;
        for i in (0..self.level).rev() {
            loop {
                let l = self.nodes[cur].levels[i];
                if l.forward == NIL || l.forward == x {
                    break;
                }
                let f = &self.nodes[l.forward];
                if key_lt(f.score, &f.member, score, &self.nodes[x].member) {
                    cur = l.forward;
                } else {
                    break;
                }
            }
            update[i] = cur;
        }
        self.delete_node(x, &update);
    }

    fn update_score(&mut self, x: usize, score: f64) {
        let (b, f) = (self.nodes[x].backward, self.nodes[x].levels[0].forward);
        let m = &self.nodes[x].member;
        let after_prev = b == NIL || key_lt(self.nodes[b].score, &self.nodes[b].member, score, m);
        let before_next = f == NIL || key_lt(score, m, self.nodes[f].score, &self.nodes[f].member);
        if after_prev && before_next {
            self.nodes[x].score = score;
            return;
        }
        let old = self.nodes[x].score;
        self.sl_delete(old, x);
        let member = std::mem::take(&mut self.nodes[x].member);
        // `release` counts the (now empty) member out; the member's bytes move to the new node.
        self.node_bytes -= member.len();
        // Reinsert; the hash index must point at the new slot.
        let hash = self.hash(&member);
        if let Ok(e) = self.index.find_entry(hash, |&i| i == x) {
            e.remove();
        }
        self.release(x);
        let n = self.sl_insert(member, score);
        let (nodes, hasher) = (&self.nodes, &self.hasher);
        self.index
            .insert_unique(hash, n, |&i| hasher.hash_one(nodes[i].member.as_slice()));
        self.maybe_compact();
    }

    /// Rebuilds the arena when more than half of it is free slots.
    fn maybe_compact(&mut self) {
        if self.free.len() <= 64 || self.free.len() <= self.len {
            return;
        }
        let mut fresh = SkipList {
            hasher: self.hasher,
            rng: self.rng,
            ..SkipList::default()
        };
        let old = std::mem::take(&mut self.nodes);
        let mut x = old[HEAD].levels[0].forward;
        let mut nodes = old;
        while x != NIL {
            let next = nodes[x].levels[0].forward;
            let member = std::mem::take(&mut nodes[x].member);
            let score = nodes[x].score;
            fresh.insert(member, score);
            x = next;
        }
        *self = fresh;
    }
}

impl<M: Into<Vec<u8>> + AsRef<[u8]>> FromIterator<(M, f64)> for SkipList {
    fn from_iter<I: IntoIterator<Item = (M, f64)>>(iter: I) -> SkipList {
        let mut z = SkipList::new();
        for (m, s) in iter {
            z.insert(m, s);
        }
        z
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Checks every span, backward link, the tail and the index against a linear walk.
    fn check(z: &SkipList) {
        let order: Vec<usize> = {
            let mut v = Vec::new();
            let mut x = z.nodes[HEAD].levels[0].forward;
            while x != NIL {
                v.push(x);
                x = z.nodes[x].levels[0].forward;
            }
            v
        };
        assert_eq!(order.len(), z.len);
        assert_eq!(z.index.len(), z.len);
        let pos = |x: usize| {
            if x == HEAD {
                0
            } else {
                order.iter().position(|&o| o == x).unwrap() + 1
            }
        };
        for (k, &x) in order.iter().enumerate() {
            let n = &z.nodes[x];
            assert_eq!(n.backward, if k == 0 { NIL } else { order[k - 1] });
            if k > 0 {
                let p = &z.nodes[order[k - 1]];
                assert!(key_lt(p.score, &p.member, n.score, &n.member));
            }
            assert_eq!(z.find_node(&n.member), Some(x));
        }
        assert_eq!(z.tail, order.last().copied().unwrap_or(NIL));
        for x in std::iter::once(HEAD).chain(order.iter().copied()) {
            let lv = if x == HEAD {
                z.level
            } else {
                z.nodes[x].levels.len()
            };
            for i in 0..lv {
                let l = z.nodes[x].levels[i];
                let to = if l.forward == NIL {
                    z.len + 1
                } else {
                    pos(l.forward)
                };
                if l.forward != NIL {
                    assert_eq!(l.span, to - pos(x), "span at level {i}");
                }
            }
        }
    }

    #[test]
    fn random_ops_match_a_sorted_model() {
        let mut z = SkipList::new();
        let mut model: Vec<(Vec<u8>, f64)> = Vec::new();
        let mut seed = 12345u64;
        let mut rnd = |n: u64| {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) % n
        };
        for step in 0..4000 {
            let m = format!("m{}", rnd(300)).into_bytes();
            let s = (rnd(20) as f64) - 10.0;
            match rnd(10) {
                0..=5 => {
                    let added = z.insert(m.clone(), s);
                    let was = model.iter().position(|(mm, _)| *mm == m);
                    assert_eq!(added, was.is_none());
                    match was {
                        Some(i) => model[i].1 = s,
                        None => model.push((m, s)),
                    }
                }
                6 | 7 => {
                    let r = z.remove(&m);
                    let was = model
                        .iter()
                        .position(|(mm, _)| *mm == m)
                        .map(|i| model.remove(i).1);
                    assert_eq!(r, was);
                }
                8 => {
                    let a = rnd(40) as usize;
                    let b = a + rnd(10) as usize;
                    model.sort_by(|x, y| x.1.total_cmp(&y.1).then(x.0.cmp(&y.0)));
                    let n = z.remove_rank_range(a, b);
                    let end = b.min(model.len());
                    let expect = end.saturating_sub(a);
                    if a < end {
                        model.drain(a..end);
                    }
                    assert_eq!(n, expect);
                }
                _ => {
                    if rnd(2) == 0 {
                        let p = z.pop_first();
                        model.sort_by(|x, y| x.1.total_cmp(&y.1).then(x.0.cmp(&y.0)));
                        let e = if model.is_empty() {
                            None
                        } else {
                            Some(model.remove(0))
                        };
                        assert_eq!(p, e);
                    } else {
                        let p = z.pop_last();
                        model.sort_by(|x, y| x.1.total_cmp(&y.1).then(x.0.cmp(&y.0)));
                        assert_eq!(p, model.pop());
                    }
                }
            }
            model.sort_by(|x, y| x.1.total_cmp(&y.1).then(x.0.cmp(&y.0)));
            if step % 97 == 0 {
                check(&z);
            }
            let got: Vec<(Vec<u8>, f64)> = z.iter().map(|(m, s)| (m.to_vec(), s)).collect();
            assert_eq!(got, model, "step {step}");
            if let Some(i) = (!model.is_empty()).then(|| rnd(model.len() as u64) as usize) {
                assert_eq!(z.rank(&model[i].0), Some(i));
                assert_eq!(z.get_by_rank(i).unwrap().0, model[i].0.as_slice());
                let rev: Vec<_> = z.iter_from_rank(i, true).map(|(m, _)| m.to_vec()).collect();
                let want: Vec<_> = model[..=i].iter().rev().map(|(m, _)| m.clone()).collect();
                assert_eq!(rev, want);
            }
            let below = z.count_while(|_, sc| sc < 0.0);
            assert_eq!(below, model.iter().filter(|(_, sc)| *sc < 0.0).count());
        }
        check(&z);
        let c = z.clone();
        assert!(c == z);
        assert!(z.mem_usage() > 0);
    }

    #[test]
    fn arena_compaction_keeps_everything_consistent() {
        let mut z: SkipList = (0..1000)
            .map(|i| (format!("m{i:04}"), f64::from(i % 37)))
            .collect();
        for _ in 0..400 {
            z.pop_first();
        }
        assert_eq!(z.remove_rank_range(100, 450), 350);
        assert!(z.free.len() <= 64 || z.free.len() <= z.len, "compacted");
        check(&z);
        for i in 0..300 {
            z.insert(format!("n{i}"), -f64::from(i));
        }
        check(&z);
        assert_eq!(z.len(), 550);
        assert_eq!(z.get_by_rank(0).unwrap(), (&b"n299"[..], -299.0));
        let ranks: Vec<usize> = z.iter().map(|(m, _)| z.rank(m).unwrap()).collect();
        assert_eq!(ranks, (0..550).collect::<Vec<_>>());
        // Past the listpack limits -0 stays -0, through compactions too.
        z.insert(&b"neg"[..], -0.0);
        let r = z.rank(b"neg").unwrap();
        z.remove_rank_range(r + 1, usize::MAX);
        z.remove_rank_range(0, r);
        assert_eq!(z.len(), 1);
        assert!(z.free.len() <= 64, "compacted");
        assert!(z.score(b"neg").unwrap().is_sign_negative());
        check(&z);
    }

    #[test]
    fn nan_and_edges() {
        let mut z = SkipList::new();
        assert!(z.insert(&b"a"[..], f64::INFINITY));
        assert!(z.insert(&b"b"[..], f64::NEG_INFINITY));
        assert!(z.insert(&b"c"[..], -0.0));
        assert_eq!(z.rank(b"b"), Some(0));
        assert_eq!(z.rank(b"a"), Some(2));
        assert_eq!(z.rank(b"zz"), None);
        assert!(z.get_by_rank(3).is_none());
        assert_eq!(z.iter_from_rank(3, false).count(), 0);
        assert_eq!(z.remove_rank_range(5, 10), 0);
        assert_eq!(z.remove_rank_range(0, 100), 3);
        assert!(z.pop_first().is_none());
        check(&z);
    }
}
