//! The list type: a double-ended sequence of byte strings.
//!
//! Problem: LPUSH/RPUSH/LPOP/RPOP must be O(1) at both ends, LINDEX/LSET/LRANGE need positional
//! access, and a write to a big list that a snapshot still holds must not copy the list
//! (issue 19: 58-77 ms for 1M elements when the whole `VecDeque` was cloned). Redis uses a
//! quicklist of listpacks (`t_list.c`, `quicklist.c`); we keep three forms:
//!
//! * packed (at most 128 elements of at most 64 bytes, where most lists of a cache sit): the
//!   elements in one exact-size buffer ([`Packed`]), as Redis keeps such a list in one listpack
//!   node. A push at the head or a positional edit moves the buffer's bytes (at most ~8.4 KB, as
//!   `lpInsert` moves them); what it saves is a 24-byte slot and a heap buffer per element. The
//!   first write past the limits unpacks it for good;
//! * small (up to [`CHUNK`] elements): a ring buffer (`VecDeque`) of owned byte strings;
//! * big (past [`CHUNK`]): a ring buffer of chunks, each an `Arc`'d `VecDeque` of at most
//!   [`CHUNK`] elements (a quicklist whose nodes are reference counted). Cloning the list copies
//!   one pointer per chunk; a write makes unique only the chunk it touches (`cow`), so a write to
//!   a shared list copies O(CHUNK + n / CHUNK) elements and pointers.
//!
//! ```text
//!  big: chunks (VecDeque) [Arc]──▶[e e e ... e]  ≤ CHUNK elements, ≥ 1
//!                         [Arc]──▶[e e ... e]
//!                         [Arc]──▶[e ... e]      push/pop touch the end chunks only
//! ```
//!
//! [`List`] is 24 bytes, so [`crate::Value`] holds it inline (no box of its own; every key pays
//! for its `Arc<Value>`, and a packed list key then costs that allocation and its buffer only).
//! The packed form is the [`Packed`] itself (its element bytes are its buffer's less two per
//! element, so it needs no counter). The small and big forms, which already own a heap buffer
//! per element, sit behind one box ([`General`]) with the sum of their elements' lengths (for an
//! O(1) [`List::mem_usage`]); the big form's own state is boxed again inside it, which keeps
//! that box at 40 bytes (jemalloc's 48 class, what the boxed 40-byte list cost before) for the
//! small form.
//!
//! A position is found by summing chunk lengths from the nearer end (O(n / CHUNK)). The big form
//! turns small again at `CHUNK / 4` elements or fewer. Index arithmetic with negative indexes
//! (Redis's `-1` = last) lives in [`List::resolve`].

use std::collections::{vec_deque, VecDeque};
use std::mem::size_of;

use forkless_sync::Arc;

use super::cow::{count, cow};
use super::packed::{Either, Packed, PackedIter};
use crate::memory::alloc_size;

/// Elements a list keeps packed at most.
const MAX_PACKED_ENTRIES: usize = 128;
/// Bytes per element a list keeps packed at most.
const MAX_PACKED_VALUE: usize = 64;

/// Elements per chunk of the big form, and the size past which a list takes that form.
pub(crate) const CHUNK: usize = 1024;
/// Bytes of an `Arc`'s allocation besides its value.
const ARC_HEADER: usize = 2 * size_of::<usize>();

type Items = VecDeque<Vec<u8>>;

static NO_ITEMS: Items = VecDeque::new();
static NO_CHUNKS: VecDeque<Arc<Items>> = VecDeque::new();

/// The big form (see the module docs).
struct Big {
    chunks: VecDeque<Arc<Items>>,
    len: usize,
    /// Sum of the chunks' capacities (kept by every chunk change, for O(1) `mem_usage`).
    slots: usize,
}

impl Clone for Big {
    /// O(n / CHUNK): copies the chunk pointers (counted in `cow_copied`).
    fn clone(&self) -> Big {
        count(self.chunks.len());
        Big {
            chunks: self.chunks.clone(),
            len: self.len,
            slots: self.slots,
        }
    }
}

#[derive(Clone)]
enum Repr {
    /// At most [`MAX_PACKED_ENTRIES`] elements of at most [`MAX_PACKED_VALUE`] bytes.
    Packed(Packed),
    /// Past the packed limits, for good (boxed: keeps [`List`] at 24 bytes).
    General(Box<General>),
}

/// The small and big forms, behind [`Repr::General`]'s box.
#[derive(Clone)]
struct General {
    form: Form,
    /// Sum of the elements' lengths, kept by every mutation so [`List::mem_usage`] is O(1).
    bytes: usize,
}

#[derive(Clone)]
enum Form {
    /// Up to [`CHUNK`] elements.
    Small(Items),
    /// Past [`CHUNK`] elements (boxed: keeps [`General`] at 40 bytes for the small form).
    Big(Box<Big>),
}

/// A Redis list value, head first.
#[derive(Clone)]
pub struct List {
    repr: Repr,
}

// `Value::List` holds a list inline; `Value` stays 32 bytes (see `value.rs`).
const _: () = assert!(std::mem::size_of::<List>() <= 24);
const _: () = assert!(std::mem::size_of::<General>() <= 40);

impl Default for List {
    fn default() -> List {
        List {
            repr: Repr::Packed(Packed::default()),
        }
    }
}

impl PartialEq for List {
    fn eq(&self, other: &List) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl Eq for List {}

impl std::fmt::Debug for List {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.iter().map(String::from_utf8_lossy))
            .finish()
    }
}

/// Iterator over a run of a list's elements (either form), double-ended.
#[derive(Clone)]
pub(super) struct ListIter<'a> {
    front: vec_deque::Iter<'a, Vec<u8>>,
    back: vec_deque::Iter<'a, Vec<u8>>,
    outer: vec_deque::Iter<'a, Arc<Items>>,
    left: usize,
}

impl<'a> Iterator for ListIter<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        if self.left == 0 {
            return None;
        }
        loop {
            if let Some(x) = self.front.next() {
                self.left -= 1;
                return Some(x);
            }
            match self.outer.next() {
                Some(c) => self.front = c.iter(),
                None => {
                    let x = self.back.next()?;
                    self.left -= 1;
                    return Some(x);
                }
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl DoubleEndedIterator for ListIter<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        loop {
            if let Some(x) = self.back.next_back() {
                self.left -= 1;
                return Some(x);
            }
            match self.outer.next_back() {
                Some(c) => self.back = c.iter(),
                None => {
                    let x = self.front.next_back()?;
                    self.left -= 1;
                    return Some(x);
                }
            }
        }
    }
}

impl Big {
    /// (chunk, offset) of position `pos < len`, summing lengths from the nearer end.
    fn locate(&self, pos: usize) -> (usize, usize) {
        if pos < self.len / 2 {
            let mut p = pos;
            for (i, c) in self.chunks.iter().enumerate() {
                if p < c.len() {
                    return (i, p);
                }
                p -= c.len();
            }
        } else {
            let mut from_end = self.len - pos; // >= 1
            for (i, c) in self.chunks.iter().enumerate().rev() {
                if from_end <= c.len() {
                    return (i, c.len() - from_end);
                }
                from_end -= c.len();
            }
        }
        unreachable!("position {pos} within a list of {} elements", self.len)
    }

    /// Runs `f` on chunk `ci` made unique, keeping `slots` true.
    fn with_chunk<R>(&mut self, ci: usize, f: impl FnOnce(&mut Items) -> R) -> R {
        let before = self.chunks[ci].capacity();
        let c = cow(&mut self.chunks[ci], VecDeque::len);
        let r = f(c);
        self.slots = self.slots + c.capacity() - before;
        r
    }

    fn insert_chunk(&mut self, at: usize, c: Items) {
        self.slots += c.capacity();
        self.chunks.insert(at, Arc::new(c));
    }

    fn remove_chunk(&mut self, at: usize) {
        if let Some(c) = self.chunks.remove(at) {
            self.slots -= c.capacity();
        }
    }

    fn push(&mut self, v: Vec<u8>, back: bool) {
        let end = if back {
            self.chunks.len().wrapping_sub(1)
        } else {
            0
        };
        if self.chunks.get(end).is_none_or(|c| c.len() >= CHUNK) {
            let at = if back { self.chunks.len() } else { 0 };
            self.insert_chunk(at, VecDeque::with_capacity(CHUNK));
        }
        let end = if back { self.chunks.len() - 1 } else { 0 };
        self.with_chunk(end, |c| {
            if c.len() == c.capacity() {
                c.reserve_exact(CHUNK - c.len());
            }
            if back {
                c.push_back(v);
            } else {
                c.push_front(v);
            }
        });
        self.len += 1;
    }

    fn pop(&mut self, back: bool) -> Option<Vec<u8>> {
        let end = if back {
            self.chunks.len().checked_sub(1)?
        } else {
            0
        };
        let (v, empty) = self.with_chunk(end, |c| {
            let v = if back { c.pop_back() } else { c.pop_front() };
            (v, c.is_empty())
        });
        if empty {
            self.remove_chunk(end);
        }
        self.len -= usize::from(v.is_some());
        v
    }

    /// Removes `n` elements from the front (or back); returns their bytes.
    fn drop_end(&mut self, mut n: usize, back: bool) -> usize {
        let mut bytes = 0;
        while n > 0 {
            let end = if back { self.chunks.len() - 1 } else { 0 };
            let clen = self.chunks[end].len();
            if clen <= n {
                bytes += self.chunks[end].iter().map(Vec::len).sum::<usize>();
                self.remove_chunk(end);
                n -= clen;
                self.len -= clen;
            } else {
                bytes += self.with_chunk(end, |c| {
                    let range = if back { clen - n..clen } else { 0..n };
                    c.drain(range).map(|v| v.len()).sum::<usize>()
                });
                self.len -= n;
                n = 0;
            }
        }
        bytes
    }

    /// Merges neighbouring chunks whose elements fit in one (after removals in the middle).
    fn merge_small_chunks(&mut self) {
        let mut i = 0;
        while i + 1 < self.chunks.len() {
            if self.chunks[i].len() + self.chunks[i + 1].len() <= CHUNK / 2 {
                let Some(next) = self.chunks.remove(i + 1) else {
                    break;
                };
                self.slots -= next.capacity();
                let next: Vec<Vec<u8>> = match Arc::try_unwrap(next) {
                    Ok(c) => c.into(),
                    Err(shared) => {
                        count(shared.len());
                        shared.iter().cloned().collect()
                    }
                };
                self.with_chunk(i, |c| c.extend(next));
            } else {
                i += 1;
            }
        }
    }

    fn into_items(self) -> Items {
        let mut out = VecDeque::with_capacity(self.len);
        for c in self.chunks {
            match Arc::try_unwrap(c) {
                Ok(c) => out.extend(c),
                Err(shared) => {
                    count(shared.len());
                    out.extend(shared.iter().cloned());
                }
            }
        }
        out
    }

    fn from_items(items: Items) -> Big {
        let mut big = Big {
            chunks: VecDeque::with_capacity(items.len().div_ceil(CHUNK)),
            len: 0,
            slots: 0,
        };
        let mut it = items.into_iter().peekable();
        while it.peek().is_some() {
            let mut c = VecDeque::with_capacity(CHUNK);
            c.extend(it.by_ref().take(CHUNK));
            big.len += c.len();
            big.insert_chunk(big.chunks.len(), c);
        }
        big
    }
}

impl General {
    /// The small form of `items`, counting their bytes.
    fn small(items: Items) -> General {
        General {
            bytes: items.iter().map(Vec::len).sum(),
            form: Form::Small(items),
        }
    }

    fn len(&self) -> usize {
        match &self.form {
            Form::Small(items) => items.len(),
            Form::Big(b) => b.len,
        }
    }

    /// Takes the big form past [`CHUNK`] elements and the small one at `CHUNK / 4` or fewer.
    fn normalize(&mut self) {
        let len = self.len();
        match &mut self.form {
            Form::Small(items) if len > CHUNK => {
                let items = std::mem::take(items);
                self.form = Form::Big(Box::new(Big::from_items(items)));
            }
            Form::Big(b) if len <= CHUNK / 4 => {
                let big = std::mem::replace(&mut **b, Big::from_items(VecDeque::new()));
                self.form = Form::Small(big.into_items());
            }
            _ => {}
        }
    }
}

impl List {
    /// An empty list.
    pub fn new() -> List {
        List::default()
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        match &self.repr {
            Repr::Packed(p) => p.len(),
            Repr::General(g) => g.len(),
        }
    }

    /// True when the list holds no element.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Elements head first.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &[u8]> + Clone {
        self.run(0, self.len())
    }

    /// The `n` elements from position `start` (`start + n <= len`).
    fn run(&self, start: usize, n: usize) -> Either<PackedIter<'_>, ListIter<'_>> {
        let g = match &self.repr {
            Repr::Packed(p) => return Either::A(p.range(start, n)),
            Repr::General(g) => g,
        };
        let mut it = ListIter {
            front: NO_ITEMS.iter(),
            back: NO_ITEMS.iter(),
            outer: NO_CHUNKS.iter(),
            left: n,
        };
        if n == 0 {
            return Either::B(it);
        }
        match &g.form {
            Form::Small(items) => it.front = items.range(start..start + n),
            Form::Big(b) => {
                let (ci, off) = b.locate(start);
                let (cj, offj) = b.locate(start + n - 1);
                if ci == cj {
                    it.front = b.chunks[ci].range(off..=offj);
                } else {
                    it.front = b.chunks[ci].range(off..);
                    it.back = b.chunks[cj].range(..=offj);
                    it.outer = b.chunks.range(ci + 1..cj);
                }
            }
        }
        Either::B(it)
    }

    /// Leaves the packed form for good (a write past its limits), keeping the order, and
    /// returns the general form.
    fn unpack(&mut self) -> &mut General {
        if let Repr::Packed(p) = &self.repr {
            let items = p.iter().map(<[u8]>::to_vec).collect();
            self.repr = Repr::General(Box::new(General::small(items)));
        }
        match &mut self.repr {
            Repr::General(g) => g,
            Repr::Packed(_) => unreachable!("unpacked above"),
        }
    }

    /// True when `v` can join packed `p` without leaving the packed form.
    fn fits(p: &Packed, v: &[u8]) -> bool {
        v.len() <= MAX_PACKED_VALUE && p.len() < MAX_PACKED_ENTRIES
    }

    fn push(&mut self, v: Vec<u8>, back: bool) {
        if let Repr::Packed(p) = &mut self.repr {
            if Self::fits(p, &v) {
                let at = if back { p.len() } else { 0 };
                p.splice(at, 0, &[&v]);
                return;
            }
        }
        let g = self.unpack();
        g.bytes += v.len();
        match &mut g.form {
            Form::Small(items) => {
                if back {
                    items.push_back(v);
                } else {
                    items.push_front(v);
                }
                if items.len() > CHUNK {
                    g.normalize();
                }
            }
            Form::Big(b) => b.push(v, back),
        }
    }

    fn pop(&mut self, back: bool) -> Option<Vec<u8>> {
        let g = match &mut self.repr {
            Repr::Packed(p) => {
                let at = if back {
                    p.len().checked_sub(1)
                } else {
                    Some(0)
                };
                let v = at.and_then(|at| p.get(at)).map(<[u8]>::to_vec);
                if let (Some(at), Some(_)) = (at, &v) {
                    p.splice(at, 1, &[]);
                }
                return v;
            }
            Repr::General(g) => g,
        };
        let v = match &mut g.form {
            Form::Small(items) => {
                let v = if back {
                    items.pop_back()
                } else {
                    items.pop_front()
                };
                Self::shrink_if_sparse(items);
                v
            }
            Form::Big(b) => b.pop(back),
        };
        g.bytes -= v.as_ref().map_or(0, Vec::len);
        g.normalize();
        v
    }

    /// Pushes at the head.
    pub fn push_front(&mut self, v: impl Into<Vec<u8>>) {
        self.push(v.into(), false);
    }

    /// Pushes at the tail.
    pub fn push_back(&mut self, v: impl Into<Vec<u8>>) {
        self.push(v.into(), true);
    }

    /// Pops the head.
    pub fn pop_front(&mut self) -> Option<Vec<u8>> {
        self.pop(false)
    }

    /// Pops the tail.
    pub fn pop_back(&mut self) -> Option<Vec<u8>> {
        self.pop(true)
    }

    /// Turns a Redis index (negative counts from the tail, -1 = last) into a position, or None
    /// when it falls outside the list.
    pub fn resolve(&self, index: i64) -> Option<usize> {
        let len = self.len() as i64;
        let i = if index < 0 {
            len.checked_add(index)?
        } else {
            index
        };
        if (0..len).contains(&i) {
            Some(i as usize)
        } else {
            None
        }
    }

    /// The element at a Redis index.
    pub fn get(&self, index: i64) -> Option<&[u8]> {
        let i = self.resolve(index)?;
        match &self.repr {
            Repr::Packed(p) => p.get(i),
            Repr::General(g) => match &g.form {
                Form::Small(items) => Some(items[i].as_slice()),
                Form::Big(b) => {
                    let (ci, off) = b.locate(i);
                    Some(b.chunks[ci][off].as_slice())
                }
            },
        }
    }

    /// Replaces the element at a Redis index; false when out of range.
    pub fn set(&mut self, index: i64, v: Vec<u8>) -> bool {
        let Some(i) = self.resolve(index) else {
            return false;
        };
        if let Repr::Packed(p) = &mut self.repr {
            if v.len() <= MAX_PACKED_VALUE {
                p.splice(i, 1, &[&v]);
                return true;
            }
        }
        let g = self.unpack();
        g.bytes += v.len();
        let old = match &mut g.form {
            Form::Small(items) => std::mem::replace(&mut items[i], v),
            Form::Big(b) => {
                let (ci, off) = b.locate(i);
                b.with_chunk(ci, |c| std::mem::replace(&mut c[off], v))
            }
        };
        g.bytes -= old.len();
        true
    }

    /// Clamps an inclusive Redis range `[start, stop]` (negative indexes allowed) to positions,
    /// as LRANGE and LTRIM do; None when the range is empty.
    pub fn clamp_range(&self, start: i64, stop: i64) -> Option<(usize, usize)> {
        let len = self.len() as i64;
        let mut start = if start < 0 {
            len.saturating_add(start)
        } else {
            start
        };
        let mut stop = if stop < 0 {
            len.saturating_add(stop)
        } else {
            stop
        };
        if start < 0 {
            start = 0;
        }
        if start > stop || start >= len {
            return None;
        }
        if stop >= len {
            stop = len - 1;
        }
        Some((start as usize, stop as usize))
    }

    /// Elements at positions `start..=stop` (positions from [`List::clamp_range`]).
    pub fn range(
        &self,
        start: usize,
        stop: usize,
    ) -> impl DoubleEndedIterator<Item = &[u8]> + Clone {
        let end = stop.saturating_add(1).min(self.len());
        let start = start.min(end);
        self.run(start, end - start)
    }

    /// Keeps only positions `start..=stop`; with None empties the list.
    pub fn trim(&mut self, keep: Option<(usize, usize)>) {
        let len = self.len();
        let (start, stop) = match keep {
            Some((start, stop)) if start <= stop && start < len => (start, stop.min(len - 1)),
            _ => {
                *self = List::new();
                return;
            }
        };
        let g = match &mut self.repr {
            Repr::Packed(p) => {
                *p = p.range(start, stop + 1 - start).collect();
                return;
            }
            Repr::General(g) => g,
        };
        match &mut g.form {
            Form::Small(items) => {
                items.truncate(stop + 1);
                items.drain(..start);
                g.bytes = items.iter().map(Vec::len).sum();
                Self::shrink_if_sparse(items);
            }
            Form::Big(b) => {
                g.bytes -= b.drop_end(len - 1 - stop, true);
                g.bytes -= b.drop_end(start, false);
            }
        }
        g.normalize();
    }

    /// Removes up to `count` elements equal to `v` (LREM semantics: count > 0 from the head,
    /// count < 0 from the tail, 0 all). Returns how many were removed.
    pub fn remove_matching(&mut self, v: &[u8], count: i64) -> usize {
        let limit = if count == 0 {
            usize::MAX
        } else {
            usize::try_from(count.unsigned_abs()).unwrap_or(usize::MAX)
        };
        // One pass (O(n)): from the tail, first find the position where removal must stop.
        let floor = if count < 0 {
            let mut seen = 0;
            let mut floor = 0;
            let len = self.len();
            for (i, x) in self.iter().rev().enumerate() {
                if x == v {
                    seen += 1;
                    if seen == limit {
                        floor = len - 1 - i;
                        break;
                    }
                }
            }
            floor
        } else {
            0
        };
        // (position of the next element looked at, elements removed so far)
        let mut st = (0usize, 0usize);
        let keep = |st: &mut (usize, usize), x: &[u8]| {
            let keep = st.0 < floor || st.1 >= limit || x != v;
            if !keep {
                st.1 += 1;
            }
            st.0 += 1;
            keep
        };
        let g = match &mut self.repr {
            Repr::Packed(p) => {
                *p = p.iter().filter(|x| keep(&mut st, x)).collect();
                return st.1;
            }
            Repr::General(g) => g,
        };
        match &mut g.form {
            Form::Small(items) => {
                items.retain(|x| keep(&mut st, x));
                Self::shrink_if_sparse(items);
            }
            Form::Big(b) => {
                let mut ci = 0;
                while ci < b.chunks.len() {
                    // Only the chunks with a removal are made unique.
                    let first = st.0;
                    let hit = b.chunks[ci]
                        .iter()
                        .enumerate()
                        .any(|(k, x)| first + k >= floor && x == v);
                    if hit && st.1 < limit {
                        b.with_chunk(ci, |c| c.retain(|x| keep(&mut st, x)));
                    } else {
                        st.0 += b.chunks[ci].len();
                    }
                    if b.chunks[ci].is_empty() {
                        b.remove_chunk(ci);
                    } else {
                        ci += 1;
                    }
                }
                b.len -= st.1;
                b.merge_small_chunks();
            }
        }
        let removed = st.1;
        g.bytes -= removed * v.len();
        g.normalize();
        removed
    }

    /// Position of the first element equal to `pivot`.
    pub fn position(&self, pivot: &[u8]) -> Option<usize> {
        self.iter().position(|x| x == pivot)
    }

    /// Inserts at position `pos` (0..=len).
    pub fn insert_at(&mut self, pos: usize, v: Vec<u8>) {
        let len = self.len();
        let pos = pos.min(len);
        if let Repr::Packed(p) = &mut self.repr {
            if Self::fits(p, &v) {
                p.splice(pos, 0, &[&v]);
                return;
            }
        }
        let g = self.unpack();
        if matches!(g.form, Form::Big(_)) && (pos == 0 || pos == len) {
            self.push(v, pos == len);
            return;
        }
        g.bytes += v.len();
        match &mut g.form {
            Form::Small(items) => {
                items.insert(pos, v);
                g.normalize();
            }
            Form::Big(b) => {
                let (mut ci, mut off) = b.locate(pos);
                if b.chunks[ci].len() >= CHUNK {
                    let mut tail = b.with_chunk(ci, |c| c.split_off(CHUNK / 2));
                    tail.reserve_exact(CHUNK - tail.len());
                    b.insert_chunk(ci + 1, tail);
                    if off >= CHUNK / 2 {
                        ci += 1;
                        off -= CHUNK / 2;
                    }
                }
                b.with_chunk(ci, |c| c.insert(off, v));
                b.len += 1;
            }
        }
    }

    fn shrink_if_sparse(items: &mut Items) {
        if items.capacity() > 64 && items.len() * 4 < items.capacity() {
            items.shrink_to(items.len() * 2);
        }
    }

    /// Heap bytes of the structure given the big form's element slots and the elements' bytes.
    fn mem_with(&self, slots: usize, bytes: usize) -> usize {
        size_of::<List>()
            + match &self.repr {
                // A packed list's bytes are its buffer's (elements plus two bytes each).
                Repr::Packed(p) => alloc_size(bytes + 2 * p.len()),
                Repr::General(g) => {
                    size_of::<General>()
                        + bytes
                        + match &g.form {
                            Form::Small(items) => items.capacity() * size_of::<Vec<u8>>(),
                            Form::Big(b) => {
                                size_of::<Big>()
                                    + b.chunks.capacity() * size_of::<Arc<Items>>()
                                    + b.chunks.len() * (ARC_HEADER + size_of::<Items>())
                                    + slots * size_of::<Vec<u8>>()
                            }
                        }
                }
            }
    }

    /// The big form's chunk capacities, summed.
    fn slots_recount(&self) -> usize {
        match &self.repr {
            Repr::General(g) => match &g.form {
                Form::Big(b) => b.chunks.iter().map(|c| c.capacity()).sum(),
                Form::Small(_) => 0,
            },
            Repr::Packed(_) => 0,
        }
    }

    /// [`List::mem_usage`] recomputed element by element (O(n); tests).
    pub fn mem_usage_recount(&self) -> usize {
        self.mem_with(self.slots_recount(), self.iter().map(<[u8]>::len).sum())
    }

    /// Estimated heap bytes used.
    pub fn mem_usage(&self) -> usize {
        match &self.repr {
            Repr::Packed(p) => self.mem_with(0, p.byte_len() - 2 * p.len()),
            Repr::General(g) => {
                let slots = match &g.form {
                    Form::Small(_) => 0,
                    Form::Big(b) => b.slots,
                };
                self.mem_with(slots, g.bytes)
            }
        }
    }

    /// Checks the forms' invariants (tests).
    #[cfg(test)]
    fn check(&self) {
        match &self.repr {
            Repr::Packed(p) => {
                assert!(p.len() <= MAX_PACKED_ENTRIES);
                assert!(p.iter().all(|x| x.len() <= MAX_PACKED_VALUE));
                let bytes: usize = p.iter().map(<[u8]>::len).sum();
                assert_eq!(p.byte_len(), bytes + 2 * p.len());
            }
            Repr::General(g) => match &g.form {
                Form::Small(items) => assert!(items.len() <= CHUNK),
                Form::Big(b) => {
                    assert!(b.len > CHUNK / 4);
                    assert_eq!(b.chunks.iter().map(|c| c.len()).sum::<usize>(), b.len);
                    assert!(b.chunks.iter().all(|c| !c.is_empty() && c.len() <= CHUNK));
                }
            },
        }
        assert_eq!(self.mem_usage(), self.mem_usage_recount());
    }
}

impl<T: Into<Vec<u8>>> FromIterator<T> for List {
    fn from_iter<I: IntoIterator<Item = T>>(iter: I) -> List {
        let items: Items = iter.into_iter().map(Into::into).collect();
        if items.len() <= MAX_PACKED_ENTRIES && items.iter().all(|x| x.len() <= MAX_PACKED_VALUE) {
            let p = items.iter().map(Vec::as_slice).collect();
            return List {
                repr: Repr::Packed(p),
            };
        }
        let mut g = General::small(items);
        g.normalize();
        List {
            repr: Repr::General(Box::new(g)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l(items: &[&str]) -> List {
        items.iter().map(|s| s.as_bytes()).collect()
    }

    fn v(list: &List) -> Vec<String> {
        list.iter()
            .map(|x| String::from_utf8_lossy(x).into_owned())
            .collect()
    }

    #[test]
    fn indexes_and_ranges() {
        let list = l(&["a", "b", "c", "d"]);
        assert_eq!(list.get(0), Some(&b"a"[..]));
        assert_eq!(list.get(-1), Some(&b"d"[..]));
        assert_eq!(list.get(-4), Some(&b"a"[..]));
        assert_eq!(list.get(-5), None);
        assert_eq!(list.get(4), None);
        assert_eq!(list.get(i64::MIN), None);
        assert_eq!(list.clamp_range(0, -1), Some((0, 3)));
        assert_eq!(list.clamp_range(-100, 1), Some((0, 1)));
        assert_eq!(list.clamp_range(2, 100), Some((2, 3)));
        assert_eq!(list.clamp_range(3, 2), None);
        assert_eq!(list.clamp_range(4, 10), None);
        assert_eq!(list.clamp_range(i64::MIN, i64::MAX), Some((0, 3)));
        let (s, e) = list.clamp_range(1, 2).unwrap();
        assert_eq!(
            list.range(s, e).collect::<Vec<_>>(),
            vec![&b"b"[..], &b"c"[..]]
        );
    }

    #[test]
    fn trim_and_remove() {
        let mut list = l(&["a", "x", "b", "x", "c", "x"]);
        assert_eq!(list.remove_matching(b"x", -2), 2);
        assert_eq!(v(&list), ["a", "x", "b", "c"]);
        assert_eq!(list.remove_matching(b"x", 0), 1);
        assert_eq!(list.remove_matching(b"zz", 1), 0);
        let keep = list.clamp_range(1, -1);
        list.trim(keep);
        assert_eq!(v(&list), ["b", "c"]);
        list.trim(None);
        assert!(list.is_empty());
    }

    #[test]
    fn remove_from_either_end() {
        let mut list = l(&["x", "a", "x", "x", "b", "x"]);
        assert_eq!(list.remove_matching(b"x", -3), 3);
        assert_eq!(v(&list), ["x", "a", "b"]);
        let mut list = l(&["x", "a", "x", "x", "b", "x"]);
        assert_eq!(list.remove_matching(b"x", 2), 2);
        assert_eq!(v(&list), ["a", "x", "b", "x"]);
        assert_eq!(list.remove_matching(b"x", i64::MIN), 2);
        assert_eq!(v(&list), ["a", "b"]);
    }

    #[test]
    fn push_pop_insert() {
        let mut list = List::new();
        list.push_back(b"b".to_vec());
        list.push_front(&b"a"[..]);
        list.insert_at(2, b"c".to_vec());
        assert_eq!(list.position(b"c"), Some(2));
        assert!(list.set(-1, b"C".to_vec()));
        assert!(!list.set(3, b"D".to_vec()));
        assert_eq!(list.pop_back().unwrap(), b"C");
        assert_eq!(list.pop_front().unwrap(), b"a");
        assert_eq!(list.len(), 1);
        assert!(list.mem_usage() > 0);
    }

    #[derive(Clone, Debug)]
    enum Op {
        Push(bool, u16),
        PushMany(bool, u16),
        Pop(bool),
        PopMany(bool, u16),
        Set(i64, u16),
        Insert(usize, u16),
        Trim(i64, i64),
        Rem(u16, i64),
        Snapshot,
    }

    fn op() -> impl proptest::strategy::Strategy<Value = Op> {
        use proptest::prelude::*;
        prop_oneof![
            3 => (any::<bool>(), 0..50u16).prop_map(|(b, x)| Op::Push(b, x)),
            2 => (any::<bool>(), 0..3000u16).prop_map(|(b, n)| Op::PushMany(b, n)),
            2 => any::<bool>().prop_map(Op::Pop),
            1 => (any::<bool>(), 0..3000u16).prop_map(|(b, n)| Op::PopMany(b, n)),
            2 => (-4000..4000i64, 0..50u16).prop_map(|(i, x)| Op::Set(i, x)),
            2 => (any::<usize>(), 0..50u16).prop_map(|(p, x)| Op::Insert(p, x)),
            1 => (-3000..3000i64, -3000..3000i64).prop_map(|(a, b)| Op::Trim(a, b)),
            1 => (0..50u16, -400..400i64).prop_map(|(x, c)| Op::Rem(x, c)),
            1 => Just(Op::Snapshot),
        ]
    }

    /// LREM on the model (`VecDeque`), written independently of `remove_matching`.
    fn model_rem(m: &mut VecDeque<Vec<u8>>, v: &[u8], count: i64) -> usize {
        let limit = if count == 0 {
            usize::MAX
        } else {
            count.unsigned_abs() as usize
        };
        let mut hits: Vec<usize> = (0..m.len()).filter(|&i| m[i] == v).collect();
        if count < 0 {
            hits.reverse();
        }
        hits.truncate(limit);
        hits.sort_unstable();
        for &i in hits.iter().rev() {
            m.remove(i);
        }
        hits.len()
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(48))]
        /// Both forms and their conversions behave as a `VecDeque`, and a clone taken at any
        /// point (a snapshot's copy) keeps its content while the original changes.
        #[test]
        fn model_with_snapshots(ops in proptest::collection::vec(op(), 1..40)) {
            let mut l = List::new();
            let mut m: VecDeque<Vec<u8>> = VecDeque::new();
            let mut snaps: Vec<(List, VecDeque<Vec<u8>>)> = Vec::new();
            // x >= 45: longer than a packed element may be
            let val = |x: u16| if x >= 45 { vec![b'a' + (x % 26) as u8; 60 + usize::from(x)] } else { format!("v{x}").into_bytes() };
            let push = |l: &mut List, m: &mut VecDeque<Vec<u8>>, back: bool, x: u16| {
                if back {
                    l.push_back(val(x));
                    m.push_back(val(x));
                } else {
                    l.push_front(val(x));
                    m.push_front(val(x));
                }
            };
            for op in ops {
                match op {
                    Op::Push(back, x) => push(&mut l, &mut m, back, x),
                    Op::PushMany(back, n) => (0..n).for_each(|i| push(&mut l, &mut m, back, i % 50)),
                    Op::Pop(back) => {
                        let (a, b) = if back { (l.pop_back(), m.pop_back()) } else { (l.pop_front(), m.pop_front()) };
                        assert_eq!(a, b);
                    }
                    Op::PopMany(back, n) => {
                        for _ in 0..n {
                            let (a, b) = if back { (l.pop_back(), m.pop_back()) } else { (l.pop_front(), m.pop_front()) };
                            assert_eq!(a, b);
                        }
                    }
                    Op::Set(i, x) => {
                        let len = m.len() as i64;
                        let p = if i < 0 { len + i } else { i };
                        let ok = (0..len).contains(&p);
                        if ok { m[p as usize] = val(x); }
                        assert_eq!(l.set(i, val(x)), ok);
                    }
                    Op::Insert(p, x) => {
                        let p = p % (m.len() + 1);
                        l.insert_at(p, val(x));
                        m.insert(p, val(x));
                    }
                    Op::Trim(a, b) => {
                        let keep = l.clamp_range(a, b);
                        l.trim(keep);
                        match keep {
                            Some((s, e)) => { m.truncate(e + 1); m.drain(..s); }
                            None => m.clear(),
                        }
                    }
                    Op::Rem(x, c) => assert_eq!(l.remove_matching(&val(x), c), model_rem(&mut m, &val(x), c)),
                    Op::Snapshot => snaps.push((l.clone(), m.clone())),
                }
                l.check();
            }
            for (l, m) in snaps.iter().chain(std::iter::once(&(l.clone(), m.clone()))) {
                l.check();
                assert_eq!(l.len(), m.len());
                assert!(l.iter().eq(m.iter().map(Vec::as_slice)));
                assert!(l.iter().rev().eq(m.iter().rev().map(Vec::as_slice)));
                let n = m.len();
                for (a, b) in [(0, n / 3), (n / 4, n / 2 + 3), (n.saturating_sub(5), n + 2)] {
                    if let Some((s, e)) = l.clamp_range(a as i64, b as i64) {
                        assert!(l.range(s, e).eq(m.range(s..=e).map(Vec::as_slice)));
                        assert!(l.range(s, e).rev().eq(m.range(s..=e).rev().map(Vec::as_slice)));
                        assert_eq!(l.get(s as i64), Some(m[s].as_slice()));
                    }
                }
            }
        }
    }

    /// A write to a 1M-element list that a clone (the snapshot's copy) still shares copies
    /// O(CHUNK + n / CHUNK) elements, not O(n).
    #[test]
    fn write_to_a_shared_big_list_copies_o_chunk() {
        use super::super::cow::cow_copied;
        const N: usize = 1_000_000;
        let mut l: List = (0..N).map(|i| format!("e{i}")).collect();
        let pointers = (N / (CHUNK / 2) + 8) as u64;
        let bound = (2 * CHUNK + N / (CHUNK / 2)) as u64;
        for round in 0..50usize {
            let snapshot = l.clone();
            let before = cow_copied();
            let mut w = l.clone(); // what Arc::make_mut does to a shared value
            assert!(cow_copied() - before <= pointers);
            let before = cow_copied();
            match round % 6 {
                0 => w.push_back(b"x".to_vec()),
                1 => w.push_front(b"x".to_vec()),
                2 => assert!(w.pop_front().is_some()),
                3 => assert!(w.pop_back().is_some()),
                4 => assert!(w.set((round * 7919) as i64, b"y".to_vec())),
                _ => w.insert_at(round * 4999, b"z".to_vec()),
            }
            let copied = cow_copied() - before;
            assert!(
                copied <= bound,
                "round {round}: a write copied {copied} elements"
            );
            assert_eq!(snapshot, l);
            l = w;
        }
    }
}
