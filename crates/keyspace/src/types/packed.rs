//! Packed small collections: a run of short byte strings in one exact-size allocation.
//!
//! Problem: most hashes, sets and sorted sets of a cache are small (a handful of short fields),
//! and the general forms pay per element: an entry of 24 + 8 bytes and a heap buffer per field
//! and value, a hash index, a struct. Redis keeps such a value in one listpack (`listpack.c`):
//! every element back to back, walked linearly, at most 128 elements of at most 64 bytes
//! (`hash-max-listpack-*`, `zset-max-listpack-*`). [`Packed`] is that layout for forkless:
//!
//! ```text
//!  buf: Box<[u8]> (exactly the bytes below, no spare capacity)
//!  ┌─────┬───────────┬─────┬─────┬───────────┬─────┬─────
//!  │ len │ bytes ... │ len │ len │ bytes ... │ len │ ...
//!  └─────┴───────────┴─────┴─────┴───────────┴─────┴─────
//!    entry 0 (len + 2 bytes)   entry 1
//! ```
//!
//! Each entry is its length in one byte, its bytes, and its length again (listpack's "backlen"),
//! so the run can be walked from either end (ZREVRANGE on a packed sorted set). Entries are at
//! most [`MAX_ENTRY`] bytes; callers keep a collection packed only while it has at most 128
//! elements of at most 64 bytes (Redis's defaults) and leave the form for good above them, as
//! Redis converts a listpack for good. Every edit reallocates the buffer once to its
//! exact new size (as `lpInsert` does): a packed value's memory is its bytes plus the allocator's
//! rounding, and its `Clone` (copy-on-write under a snapshot) is one `memcpy`.
//!
//! The entry count is kept beside the buffer (`u32`), so `len` is O(1); lookups, positions and
//! edits are O(bytes), bounded by the callers' limits (128 entries of 66 bytes: 8.4 KB at most,
//! usually a few hundred bytes in one or two cache lines' worth of allocations).

/// The longest entry a [`Packed`] holds (its length must fit the one-byte header).
pub(crate) const MAX_ENTRY: usize = u8::MAX as usize;

/// A run of short byte strings (see the module docs).
#[derive(Clone, Default, PartialEq, Eq)]
pub(crate) struct Packed {
    buf: Box<[u8]>,
    count: u32,
}

impl Packed {
    /// Number of entries.
    pub(crate) fn len(&self) -> usize {
        self.count as usize
    }

    /// Bytes of the buffer (what the allocator is asked for).
    pub(crate) fn byte_len(&self) -> usize {
        self.buf.len()
    }

    /// The buffer's allocation recomputed from its entries (each costs its bytes and two length
    /// bytes) at its size class: the reference the collections' `mem_usage_recount` use, which
    /// must not trust [`Packed::byte_len`], the size it checks.
    pub(crate) fn heap_recount(&self) -> usize {
        crate::memory::alloc_size(self.iter().map(|e| e.len() + 2).sum())
    }

    /// The entries, front to back (double-ended).
    pub(crate) fn iter(&self) -> PackedIter<'_> {
        PackedIter {
            buf: &self.buf,
            front: 0,
            back: self.buf.len(),
            left: self.len(),
        }
    }

    /// The entries from entry `index` on (O(bytes before it)).
    pub(crate) fn iter_from(&self, index: usize) -> PackedIter<'_> {
        let index = index.min(self.len());
        PackedIter {
            buf: &self.buf,
            front: self.offset_of(index),
            back: self.buf.len(),
            left: self.len() - index,
        }
    }

    /// The entries before entry `end`, for walking backwards from `end - 1` (O(bytes before it)).
    pub(crate) fn iter_until(&self, end: usize) -> PackedIter<'_> {
        let end = end.min(self.len());
        PackedIter {
            buf: &self.buf,
            front: 0,
            back: self.offset_of(end),
            left: end,
        }
    }

    /// The `n` entries from entry `start` on (`start + n <= len`; O(bytes before the end)).
    pub(crate) fn range(&self, start: usize, n: usize) -> PackedIter<'_> {
        let front = self.offset_of(start);
        let mut back = front;
        for _ in 0..n {
            back += self.buf[back] as usize + 2;
        }
        PackedIter {
            buf: &self.buf,
            front,
            back,
            left: n,
        }
    }

    /// Entry `index`, if there is one.
    pub(crate) fn get(&self, index: usize) -> Option<&[u8]> {
        self.iter_from(index).next()
    }

    /// Index of the first entry equal to `x` among entries `0, stride, 2 * stride, ...` (the
    /// fields of field/value pairs with `stride` 2).
    pub(crate) fn find(&self, x: &[u8], stride: usize) -> Option<usize> {
        let mut off = 0;
        let mut index = 0;
        while off < self.buf.len() {
            let n = self.buf[off] as usize;
            if index % stride == 0 && n == x.len() && &self.buf[off + 1..off + 1 + n] == x {
                return Some(index);
            }
            off += n + 2;
            index += 1;
        }
        None
    }

    /// Byte offset of entry `index` (`index <= len`; the buffer's length for `len`).
    fn offset_of(&self, index: usize) -> usize {
        let mut off = 0;
        for _ in 0..index {
            off += self.buf[off] as usize + 2;
        }
        off
    }

    /// Replaces `remove` entries from entry `at` on with `insert` (an insertion with `remove`
    /// 0, a deletion with `insert` empty), in one allocation of the exact new size.
    ///
    /// Callers keep `at + remove <= len` and every inserted entry at most [`MAX_ENTRY`] bytes.
    pub(crate) fn splice(&mut self, at: usize, remove: usize, insert: &[&[u8]]) {
        debug_assert!(at + remove <= self.len());
        debug_assert!(insert.iter().all(|e| e.len() <= MAX_ENTRY));
        let start = self.offset_of(at);
        let mut end = start;
        for _ in 0..remove {
            end += self.buf[end] as usize + 2;
        }
        let added: usize = insert.iter().map(|e| e.len() + 2).sum();
        let mut out = Vec::with_capacity(self.buf.len() - (end - start) + added);
        out.extend_from_slice(&self.buf[..start]);
        for e in insert {
            let n = e.len() as u8;
            out.push(n);
            out.extend_from_slice(e);
            out.push(n);
        }
        out.extend_from_slice(&self.buf[end..]);
        self.buf = out.into_boxed_slice();
        self.count = (self.len() - remove + insert.len()) as u32;
    }

    /// Appends entries at the end.
    pub(crate) fn push(&mut self, insert: &[&[u8]]) {
        let len = self.len();
        self.splice(len, 0, insert);
    }
}

impl<'a> FromIterator<&'a [u8]> for Packed {
    /// The entries in order, in one allocation of the exact size (entries of at most
    /// [`MAX_ENTRY`] bytes, as for [`Packed::splice`]).
    fn from_iter<I: IntoIterator<Item = &'a [u8]>>(iter: I) -> Packed {
        let entries: Vec<&[u8]> = iter.into_iter().collect();
        let mut p = Packed::default();
        p.push(&entries);
        p
    }
}

/// Iterator over a [`Packed`]'s entries (see [`Packed::iter`]).
#[derive(Clone)]
pub(crate) struct PackedIter<'a> {
    buf: &'a [u8],
    front: usize,
    back: usize,
    left: usize,
}

impl<'a> Iterator for PackedIter<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        if self.left == 0 {
            return None;
        }
        let n = self.buf[self.front] as usize;
        let e = &self.buf[self.front + 1..self.front + 1 + n];
        self.front += n + 2;
        self.left -= 1;
        Some(e)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl DoubleEndedIterator for PackedIter<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        let n = self.buf[self.back - 1] as usize;
        let e = &self.buf[self.back - 1 - n..self.back - 1];
        self.back -= n + 2;
        self.left -= 1;
        Some(e)
    }
}

impl ExactSizeIterator for PackedIter<'_> {}

impl<'a> PackedIter<'a> {
    /// The entries two at a time (a hash's field and value, a sorted set's member and score),
    /// from either end.
    pub(crate) fn pairs(self) -> Pairs<'a> {
        Pairs(self)
    }
}

/// Entries two at a time ([`PackedIter::pairs`]); backwards, each pair still comes first entry
/// first.
#[derive(Clone)]
pub(crate) struct Pairs<'a>(PackedIter<'a>);

impl<'a> Iterator for Pairs<'a> {
    type Item = (&'a [u8], &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        Some((self.0.next()?, self.0.next()?))
    }
}

impl DoubleEndedIterator for Pairs<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        let second = self.0.next_back()?;
        Some((self.0.next_back()?, second))
    }
}

/// One of two iterators with the same items: a collection's packed or general form.
#[derive(Clone)]
pub(crate) enum Either<A, B> {
    /// The packed form's.
    A(A),
    /// The general form's.
    B(B),
}

impl<T, A: Iterator<Item = T>, B: Iterator<Item = T>> Iterator for Either<A, B> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        match self {
            Either::A(a) => a.next(),
            Either::B(b) => b.next(),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match self {
            Either::A(a) => a.size_hint(),
            Either::B(b) => b.size_hint(),
        }
    }
}

impl<T, A, B> DoubleEndedIterator for Either<A, B>
where
    A: DoubleEndedIterator<Item = T>,
    B: DoubleEndedIterator<Item = T>,
{
    fn next_back(&mut self) -> Option<T> {
        match self {
            Either::A(a) => a.next_back(),
            Either::B(b) => b.next_back(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[derive(Clone, Debug)]
    enum Op {
        Splice(usize, usize, Vec<Vec<u8>>),
        Push(Vec<Vec<u8>>),
    }

    fn entry() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..4),
            proptest::collection::vec(any::<u8>(), 0..=MAX_ENTRY),
        ]
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (
                any::<usize>(),
                0usize..4,
                proptest::collection::vec(entry(), 0..4)
            )
                .prop_map(|(a, r, i)| Op::Splice(a, r, i)),
            proptest::collection::vec(entry(), 0..3).prop_map(Op::Push),
        ]
    }

    proptest! {
        /// Every edit leaves the same entries as the same edit on a `Vec<Vec<u8>>`, read front
        /// to back, back to front, from any index and by search; the buffer is exact.
        #[test]
        fn packed_equals_a_vector_of_entries(ops in proptest::collection::vec(op(), 0..40)) {
            let mut p = Packed::default();
            let mut model: Vec<Vec<u8>> = Vec::new();
            for op in ops {
                match op {
                    Op::Splice(at, remove, insert) => {
                        let at = at % (model.len() + 1);
                        let remove = remove.min(model.len() - at);
                        let refs: Vec<&[u8]> = insert.iter().map(|e| e.as_slice()).collect();
                        p.splice(at, remove, &refs);
                        model.splice(at..at + remove, insert);
                    }
                    Op::Push(insert) => {
                        let refs: Vec<&[u8]> = insert.iter().map(|e| e.as_slice()).collect();
                        p.push(&refs);
                        model.extend(insert);
                    }
                }
                prop_assert_eq!(p.len(), model.len());
                prop_assert_eq!(p.byte_len(), model.iter().map(|e| e.len() + 2).sum::<usize>());
                prop_assert!(p.iter().eq(model.iter().map(|e| e.as_slice())));
                let collected: Packed = model.iter().map(|e| e.as_slice()).collect();
                prop_assert!(collected == p);
                prop_assert!(p.iter().rev().eq(model.iter().rev().map(|e| e.as_slice())));
                for i in 0..=model.len() {
                    prop_assert!(p.iter_from(i).eq(model[i..].iter().map(|e| e.as_slice())));
                    prop_assert!(p.iter_until(i).rev().eq(model[..i].iter().rev().map(|e| e.as_slice())));
                    prop_assert_eq!(p.get(i), model.get(i).map(|e| e.as_slice()));
                    for n in 0..=model.len() - i {
                        prop_assert!(p.range(i, n).eq(model[i..i + n].iter().map(|e| e.as_slice())));
                        prop_assert!(p.range(i, n).rev().eq(model[i..i + n].iter().rev().map(|e| e.as_slice())));
                    }
                }
                for (i, e) in model.iter().enumerate() {
                    let first = model.iter().position(|x| x == e);
                    prop_assert_eq!(p.find(e, 1), first);
                    let first_even = model.iter().enumerate().position(|(j, x)| j % 2 == 0 && x == e);
                    prop_assert_eq!(p.find(e, 2), first_even);
                    prop_assert!(first.unwrap() <= i);
                }
                let mut both = p.iter();
                let mut front = 0;
                let mut back = model.len();
                while front < back {
                    if (front + back).is_multiple_of(2) {
                        prop_assert_eq!(both.next(), Some(model[front].as_slice()));
                        front += 1;
                    } else {
                        back -= 1;
                        prop_assert_eq!(both.next_back(), Some(model[back].as_slice()));
                    }
                }
                prop_assert_eq!(both.next(), None);
                prop_assert_eq!(both.next_back(), None);
            }
        }
    }
}
