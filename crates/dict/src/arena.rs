//! A dense, segmented node arena addressed by `u32` indices.
//!
//! Problem: the dict's chains need nodes that (a) are addressed by a small integer so a bucket
//! head and a chain link cost 4 bytes instead of an 8-byte pointer, (b) never move when the
//! arena grows, so growth never copies every entry at once (a `Vec` doubling from 1M to 2M
//! 48-byte nodes would memcpy 48 MB inside one command: exactly the latency spike the
//! incremental rehash of Redis's `dict.c` exists to avoid), and (c) stay dense, so that
//! `len` slots `0..len` are all live (uniform random sampling is then one `gen_range`).
//!
//! Layout: a segmented vector (as in e.g. the "two-level array" of Brodnik et al., "Resizable
//! Arrays in Optimal Time and Space", 1999, simplified to power-of-two segments): segment `c`
//! holds `BASE << c` slots up to [`MAX_SEGMENT`] slots, then every further segment holds
//! `MAX_SEGMENT`. Small arenas double like a `Vec` (little waste for tiny dicts), big ones grow
//! by fixed 64 Ki-slot steps (slack at most one segment instead of up to the whole size), and no
//! segment is ever reallocated. Below the fixed part, slot `i` lives in segment
//! `c = floor(log2(i + BASE)) - log2(BASE)` at offset `i + BASE - 2^floor(log2(i + BASE))`: one
//! `leading_zeros` and a subtraction; above it, a shift and a mask.
//!
//! ```text
//!  index:    0 1 2 3 | 4 5 6 7 8 9 10 11 | 12 ... 27 | ... | GEOM_SLOTS ... +65535 | ...
//!  segment:  0 (4)   | 1 (8)             | 2 (16)    | ... | 15 (65536)           | 16 (65536)
//! ```
//!
//! Removal is `swap_remove` (the caller relinks the moved last node); an empty last segment is
//! freed once the segment before it is empty too (one spare segment of hysteresis, so a
//! push/pop pair at a segment boundary does not allocate and free every time).

/// log2 of the first segment's size.
const BASE_LOG: u32 = 2;
/// Slots in the first segment.
const BASE: usize = 1 << BASE_LOG;

/// Number of doubling segments (the last holds `BASE << (GEOM_SEGMENTS - 1)` = 64 Ki slots).
const GEOM_SEGMENTS: usize = 15;
/// Slots in a full-size segment.
const MAX_SEGMENT: usize = BASE << (GEOM_SEGMENTS - 1);
/// log2 of [`MAX_SEGMENT`].
const MAX_SEGMENT_LOG: u32 = BASE_LOG + GEOM_SEGMENTS as u32 - 1;
/// Slots held by the doubling segments together.
const GEOM_SLOTS: usize = BASE * ((1 << GEOM_SEGMENTS) - 1);

/// Largest number of slots (indices must stay below `u32::MAX`, which is the chain terminator).
pub(crate) const MAX_SLOTS: usize = (u32::MAX - 1) as usize;

/// Segment and offset of slot `i`.
#[inline(always)]
fn locate(i: usize) -> (usize, usize) {
    if i >= GEOM_SLOTS {
        let k = i - GEOM_SLOTS;
        return (
            GEOM_SEGMENTS + (k >> MAX_SEGMENT_LOG),
            k & (MAX_SEGMENT - 1),
        );
    }
    let j = i + BASE;
    let hb = usize::BITS - 1 - j.leading_zeros();
    ((hb - BASE_LOG) as usize, j - (1usize << hb))
}

/// Capacity of segment `c`.
#[inline]
fn segment_capacity(c: usize) -> usize {
    if c < GEOM_SEGMENTS {
        BASE << c
    } else {
        MAX_SEGMENT
    }
}

/// A dense arena of `T` whose slots never move except through [`Arena::swap_remove`].
pub(crate) struct Arena<T> {
    segments: Vec<Vec<T>>,
    len: usize,
}

impl<T> Arena<T> {
    /// An empty arena (no allocation).
    pub(crate) const fn new() -> Self {
        Arena {
            segments: Vec::new(),
            len: 0,
        }
    }

    /// Allocates segments until at least `n` slots fit without allocating.
    pub(crate) fn reserve_total(&mut self, n: usize) {
        let n = n.min(MAX_SLOTS);
        while self.capacity() < n {
            let c = self.segments.len();
            self.segments.push(Vec::with_capacity(segment_capacity(c)));
        }
    }

    /// Number of live slots.
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Slots allocated (live or not).
    pub(crate) fn capacity(&self) -> usize {
        let s = self.segments.len();
        if s <= GEOM_SEGMENTS {
            // Segments 0..s hold BASE * (2^s - 1) slots.
            BASE * ((1usize << s) - 1)
        } else {
            GEOM_SLOTS + (s - GEOM_SEGMENTS) * MAX_SEGMENT
        }
    }

    /// Bytes allocated by the arena itself: slots plus the segment directory.
    pub(crate) fn allocated_bytes(&self) -> usize {
        self.capacity() * std::mem::size_of::<T>()
            + self.segments.capacity() * std::mem::size_of::<Vec<T>>()
    }

    /// Appends `t` and returns its index.
    ///
    /// # Panics
    /// When the arena already holds [`MAX_SLOTS`] slots (the `u32` index space is exhausted),
    /// like `Vec`'s "capacity overflow".
    #[inline]
    pub(crate) fn push(&mut self, t: T) -> u32 {
        assert!(
            self.len < MAX_SLOTS,
            "forkless-dict: more than 2^32-2 entries"
        );
        let i = self.len;
        let (c, _) = locate(i);
        if c == self.segments.len() {
            self.segments.push(Vec::with_capacity(segment_capacity(c)));
        }
        // The segment was allocated with its full capacity and is filled in order, so this
        // push never reallocates (older slots never move).
        self.segments[c].push(t);
        self.len += 1;
        i as u32
    }

    /// The slot at `i` (`i < len`).
    #[inline(always)]
    pub(crate) fn get(&self, i: u32) -> &T {
        let (c, o) = locate(i as usize);
        &self.segments[c][o]
    }

    /// The slot at `i` (`i < len`), mutably.
    #[inline(always)]
    pub(crate) fn get_mut(&mut self, i: u32) -> &mut T {
        let (c, o) = locate(i as usize);
        &mut self.segments[c][o]
    }

    /// Removes the last slot.
    fn pop(&mut self) -> Option<T> {
        if self.len == 0 {
            return None;
        }
        self.len -= 1;
        let (c, _) = locate(self.len);
        let t = self.segments[c].pop();
        // Free trailing empty segments, keeping one spare.
        while self.segments.len() >= 2
            && self.segments[self.segments.len() - 1].is_empty()
            && self.segments[self.segments.len() - 2].is_empty()
        {
            self.segments.pop();
        }
        t
    }

    /// Removes slot `i` by moving the last slot into it; returns the removed value. The caller
    /// must relink whatever pointed at index `len - 1` (the old last) to `i` when `i != len - 1`.
    pub(crate) fn swap_remove(&mut self, i: u32) -> T {
        let last = self.pop().expect("swap_remove on an empty arena");
        if i as usize == self.len {
            last
        } else {
            std::mem::replace(self.get_mut(i), last)
        }
    }

    /// Live slots in index order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &T> + '_ {
        self.segments.iter().flat_map(|s| s.iter())
    }

    /// Live slots in index order, mutably.
    pub(crate) fn iter_mut(&mut self) -> impl Iterator<Item = &mut T> + '_ {
        self.segments.iter_mut().flat_map(|s| s.iter_mut())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locate_is_contiguous() {
        let mut expect = (0usize, 0usize);
        for i in 0..(GEOM_SLOTS + 3 * MAX_SEGMENT + 10) {
            assert_eq!(locate(i), expect, "slot {i}");
            expect.1 += 1;
            if expect.1 == segment_capacity(expect.0) {
                expect = (expect.0 + 1, 0);
            }
        }
    }

    #[test]
    fn push_get_swap_remove() {
        let mut a = Arena::new();
        for i in 0..1000u32 {
            assert_eq!(a.push(i), i);
        }
        assert_eq!(a.len(), 1000);
        assert!(a.capacity() >= 1000);
        assert_eq!(*a.get(517), 517);
        // Removing 3 moves 999 into slot 3.
        assert_eq!(a.swap_remove(3), 3);
        assert_eq!(*a.get(3), 999);
        assert_eq!(a.len(), 999);
        // Removing the last one returns it.
        assert_eq!(a.swap_remove(998), 998);
        let mut all: Vec<u32> = a.iter().copied().collect();
        all.sort_unstable();
        let expect: Vec<u32> = (0..1000).filter(|&x| x != 3 && x != 998).collect();
        assert_eq!(all, expect);
        while a.len() > 0 {
            a.swap_remove(0);
        }
        assert!(a.capacity() <= BASE, "segments freed: {}", a.capacity());
    }

    #[test]
    fn grows_past_the_doubling_segments() {
        let n = GEOM_SLOTS + 2 * MAX_SEGMENT + 5;
        let mut a = Arena::new();
        for i in 0..n as u32 {
            a.push(i);
        }
        assert_eq!(
            a.capacity(),
            GEOM_SLOTS + 3 * MAX_SEGMENT,
            "slack is one fixed segment"
        );
        assert!((0..n as u32).step_by(97).all(|i| *a.get(i) == i));
        assert_eq!(a.swap_remove(7), 7);
        assert_eq!(*a.get(7), n as u32 - 1);
        while a.len() > GEOM_SLOTS {
            a.swap_remove(0);
        }
        assert!(a.capacity() <= GEOM_SLOTS + MAX_SEGMENT, "{}", a.capacity());
    }

    #[test]
    fn capacity_matches_segments() {
        let mut a: Arena<u8> = Arena::new();
        let mut sum = 0;
        for c in 0..GEOM_SEGMENTS + 3 {
            a.segments.push(Vec::new());
            sum += segment_capacity(c);
            assert_eq!(a.capacity(), sum, "{c} segments");
        }
        assert_eq!(segment_capacity(GEOM_SEGMENTS - 1), MAX_SEGMENT);
        assert_eq!(1usize << MAX_SEGMENT_LOG, MAX_SEGMENT);
    }

    #[test]
    fn reserve_allocates_ahead() {
        let mut a: Arena<u64> = Arena::new();
        a.reserve_total(100);
        let cap = a.capacity();
        assert!(cap >= 100);
        for i in 0..100 {
            a.push(i);
        }
        assert_eq!(a.capacity(), cap);
    }
}
