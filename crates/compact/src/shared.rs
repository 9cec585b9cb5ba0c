//! [`SharedBytes`]: a reference-counted, growable byte string behind one thin pointer, with its
//! counter, length and capacity in the same allocation as its bytes.
//!
//! Problem: a string value was a `Vec<u8>` inside the key's `Arc<Value>`: two allocations per
//! key (the `Arc`'s 48-byte one with two counters and the enum, then the buffer), two `malloc`s
//! per SET and two pointer chases per GET. For a cache of small strings those 48 bytes are a
//! fifth of a key's memory (benches/README.md "Memory per key"). Redis keeps a short string's
//! header and bytes in one allocation (`embstr`). Here the counter that makes a value shareable
//! with a snapshot moves into the string's own allocation, so a string key is the dict node and
//! this one block ([`crate::ArcOrBytes`] puts it where the `Arc<Value>` pointer was).
//!
//! ## Layout (one allocation, alignment 8)
//!
//! ```text
//!  short (len and cap < 2^32, bit 31 of the first word clear): 12-byte header
//!  ptr -> +----------------------+----------+----------+---------------------------+
//!         | W | count (31 bits)  | len: u32 | cap: u32 | bytes[0..cap]             |
//!         +----------------------+----------+----------+---------------------------+
//!         0                      4          8          12
//!  wide (bit 31 set): 24-byte header, for a capacity of 4 GiB or more
//!  ptr -> +----------------------+----------+----------+----------+----------------+
//!         | W | count (31 bits)  | (unused) | len: u64 | cap: u64 | bytes[0..cap]  |
//!         +----------------------+----------+----------+----------+----------------+
//!         0                      4          8          16         24
//! ```
//!
//! The first word is the atomic count with the form's flag `W` in its top bit, set when the
//! block is allocated and never changed (a short block that must hold 4 GiB or more is copied
//! into a wide one), so every read of the form is a `Relaxed` load of a bit that cannot move. The
//! 12-byte header is the point: a 100-byte string takes 112 bytes (jemalloc's class), the size
//! of Redis's own `sds` buffer for it, and a slot needs no other allocation.
//!
//! The empty string is a pointer to a static short header (`EMPTY`, count and capacity 0):
//! making one never allocates, and it is never counted, written or freed (every method checks
//! `is_static` first, and writes happen only on a unique heap block).
//!
//! ## Sharing and writes (why the `unsafe` holds)
//! * `clone` increments the count (`Relaxed`, as `Arc`: a new handle comes from an existing one,
//!   which already keeps the block alive); `drop` decrements it (`Release`) and the handle that
//!   takes it to zero frees the block after an `Acquire` fence, so every other handle's reads
//!   happen before the free.
//! * Bytes, `len` and `cap` are written only through `&mut self` and only while the count is 1,
//!   read with `Acquire` ([`SharedBytes::is_unique`]): then no other handle exists and none can
//!   appear (a new one needs an existing one), and the `Acquire` orders the write after every
//!   read made through handles since dropped on other threads. Every `&mut self` method first
//!   makes the handle unique, copying the bytes into a fresh block when it is shared: the
//!   copy-on-write a snapshot's hold costs a writer, as `Arc::make_mut` did.
//! * So `&self` hands out `&[u8]` freely, and the type is `Send` and `Sync` as
//!   `Arc<Vec<u8>>` is.
//!
//! The counter is `std`'s atomic, not `forkless_sync`'s, for the reason `forkless_sync::Arc` is
//! `std`'s even under loom: reference counts are not what the models check, and a loom atomic
//! cannot live outside a model (values are built in tests and statics). Miri checks this module
//! (`ci/miri.sh`).

use std::alloc::{self, Layout};
use std::borrow::Borrow;
use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::{Deref, DerefMut, Range};
use std::ptr::{self, NonNull};
use std::sync::atomic::{fence, AtomicU32, Ordering as AtomicOrdering};

/// The header of a short block (module docs).
#[repr(C)]
struct Short {
    word: AtomicU32,
    len: u32,
    cap: u32,
}

/// The header of a wide block.
#[repr(C)]
struct Wide {
    word: AtomicU32,
    _unused: u32,
    len: usize,
    cap: usize,
}

const SHORT_HEADER: usize = std::mem::size_of::<Short>();
const WIDE_HEADER: usize = std::mem::size_of::<Wide>();
const _: () = assert!(SHORT_HEADER == 12 && WIDE_HEADER == 24);

/// The form flag in the first word.
const WIDE: u32 = 1 << 31;
/// The count's bits of the first word.
const COUNT: u32 = WIDE - 1;
/// Above this many handles a clone aborts, as `Arc` does (the count must never reach the flag).
const MAX_COUNT: u32 = 1 << 30;

/// The largest capacity of a short block (4 GiB - 1; a tiny one in this crate's unit tests, so
/// they cover the move from short to wide).
#[cfg(not(test))]
const SHORT_MAX: usize = u32::MAX as usize;
#[cfg(test)]
const SHORT_MAX: usize = 40;

/// Redis's `SDS_MAX_PREALLOC`: growth doubles below it and adds it above.
const PREALLOC_STEP: usize = 1 << 20;

/// The empty string: a short header, never counted, written or freed (aligned to 8 like every
/// block, so a pointer to it has its low bits free for [`crate::ArcOrBytes`]).
#[repr(C, align(8))]
struct Aligned(Short);
static EMPTY: Aligned = Aligned(Short {
    word: AtomicU32::new(0),
    len: 0,
    cap: 0,
});

/// A reference-counted byte string in one 8-byte pointer: clones share the bytes, and any
/// write through `&mut self` first copies them if the string is shared (copy-on-write).
///
/// Equality, ordering and hashing are the byte slice's.
#[repr(transparent)]
pub struct SharedBytes {
    /// The block's first byte (its first word: count and form).
    ptr: NonNull<u8>,
}

// SAFETY: the bytes are immutable while shared and written only through `&mut self` on a unique
// block (module docs); the counter is atomic. That is `Arc<Vec<u8>>`'s contract, which is `Send`
// and `Sync`.
unsafe impl Send for SharedBytes {}
// SAFETY: as for `Send`.
unsafe impl Sync for SharedBytes {}

fn header_for(cap: usize) -> usize {
    if cap > SHORT_MAX {
        WIDE_HEADER
    } else {
        SHORT_HEADER
    }
}

fn layout(header: usize, cap: usize) -> Layout {
    header
        .checked_add(cap)
        .and_then(|size| Layout::from_size_align(size, 8).ok())
        .expect("SharedBytes capacity overflow")
}

impl SharedBytes {
    /// The empty string (no allocation).
    pub fn new() -> SharedBytes {
        SharedBytes {
            ptr: NonNull::from(&EMPTY).cast(),
        }
    }

    /// An empty string with room for `cap` bytes (no allocation for 0).
    pub fn with_capacity(cap: usize) -> SharedBytes {
        if cap == 0 {
            return SharedBytes::new();
        }
        let header = header_for(cap);
        let layout = layout(header, cap);
        // SAFETY: the layout's size is at least the header's, so not zero.
        let raw = unsafe { alloc::alloc(layout) };
        let Some(ptr) = NonNull::new(raw) else {
            alloc::handle_alloc_error(layout)
        };
        // SAFETY: a fresh allocation of at least `header` bytes, aligned to 8.
        unsafe {
            if header == WIDE_HEADER {
                ptr.cast::<Wide>().as_ptr().write(Wide {
                    word: AtomicU32::new(WIDE | 1),
                    _unused: 0,
                    len: 0,
                    cap,
                })
            } else {
                ptr.cast::<Short>().as_ptr().write(Short {
                    word: AtomicU32::new(1),
                    len: 0,
                    cap: cap as u32,
                })
            }
        };
        SharedBytes { ptr }
    }

    /// A copy of `bytes` in a block of exactly their length.
    pub fn from_slice(bytes: &[u8]) -> SharedBytes {
        let mut s = SharedBytes::with_capacity(bytes.len());
        if !bytes.is_empty() {
            // SAFETY: a fresh unique block with capacity `bytes.len()`; the source is another
            // allocation.
            unsafe {
                ptr::copy_nonoverlapping(bytes.as_ptr(), s.data(), bytes.len());
                s.set_len(bytes.len());
            }
        }
        s
    }

    fn is_static(&self) -> bool {
        ptr::eq(
            self.ptr.as_ptr().cast_const(),
            (&raw const EMPTY).cast::<u8>(),
        )
    }

    /// The first word: the count, and the form's flag.
    fn word(&self) -> &AtomicU32 {
        // SAFETY: every block (and `EMPTY`) starts with its `AtomicU32`, initialized for the
        // block's lifetime, which `self` extends.
        unsafe { &*self.ptr.as_ptr().cast::<AtomicU32>() }
    }

    fn is_wide(&self) -> bool {
        // The flag is set at allocation and never changes: `Relaxed` reads it.
        self.word().load(AtomicOrdering::Relaxed) & WIDE != 0
    }

    fn header(&self) -> usize {
        if self.is_wide() {
            WIDE_HEADER
        } else {
            SHORT_HEADER
        }
    }

    /// The first byte after the header (one past the end of `EMPTY` for the empty string).
    fn data(&self) -> *mut u8 {
        // SAFETY: the block has `header + cap` bytes; for `EMPTY` this is one past its header,
        // inside its 16-byte aligned wrapper.
        unsafe { self.ptr.as_ptr().add(self.header()) }
    }

    /// SAFETY: the block is a unique heap block and `len <= cap`, the first `len` bytes
    /// initialized.
    unsafe fn set_len(&mut self, len: usize) {
        // SAFETY: unique heap block (caller), so nobody reads the header concurrently; a short
        // block's capacity, hence `len`, fits in `u32`.
        unsafe {
            if self.is_wide() {
                (*self.ptr.as_ptr().cast::<Wide>()).len = len;
            } else {
                (*self.ptr.as_ptr().cast::<Short>()).len = len as u32;
            }
        }
    }

    /// Number of bytes.
    pub fn len(&self) -> usize {
        // SAFETY: the header is initialized for the block's lifetime, which `self` extends; `len`
        // is written only through a unique `&mut` handle, so not while `&self` exists.
        unsafe {
            if self.is_wide() {
                (*self.ptr.as_ptr().cast::<Wide>()).len
            } else {
                (*self.ptr.as_ptr().cast::<Short>()).len as usize
            }
        }
    }

    /// True when there are no bytes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes the block has room for.
    pub fn capacity(&self) -> usize {
        // SAFETY: as in `len`.
        unsafe {
            if self.is_wide() {
                (*self.ptr.as_ptr().cast::<Wide>()).cap
            } else {
                (*self.ptr.as_ptr().cast::<Short>()).cap as usize
            }
        }
    }

    /// Bytes the heap block takes (header and capacity; 0 for the empty string without one).
    pub fn heap_size(&self) -> usize {
        if self.is_static() {
            0
        } else {
            self.header() + self.capacity()
        }
    }

    /// Bytes a block of exactly `len` bytes takes ([`SharedBytes::from_slice`]; 0 for none).
    pub const fn heap_size_of(len: usize) -> usize {
        match len {
            0 => 0,
            n if n > SHORT_MAX => WIDE_HEADER + n,
            n => SHORT_HEADER + n,
        }
    }

    /// The bytes.
    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: `len` bytes after the header are initialized and not written while `&self`
        // lives (writes need a unique `&mut`).
        unsafe { std::slice::from_raw_parts(self.data(), self.len()) }
    }

    /// True when this is the only handle to a heap block, so writes need no copy.
    pub fn is_unique(&self) -> bool {
        // `Acquire` pairs with other handles' `Release` decrement (module docs).
        !self.is_static() && self.word().load(AtomicOrdering::Acquire) & COUNT == 1
    }

    /// True when another handle holds the same block (a write through this one copies it).
    pub fn is_shared(&self) -> bool {
        !self.is_static() && self.word().load(AtomicOrdering::Acquire) & COUNT > 1
    }

    /// Copy the bytes into a block of this handle's own if another handle shares them, so the
    /// writes that follow copy nothing (a no-op for a unique or empty string).
    pub fn make_unique(&mut self) {
        if self.is_shared() {
            self.reserve_unique(self.len().max(1));
        }
    }

    /// Make this handle the only one to a heap block with room for `cap` bytes (`cap >= len`,
    /// `cap > 0`): a shared block is copied (with capacity `cap`), a unique one grown in place.
    fn reserve_unique(&mut self, cap: usize) {
        debug_assert!(cap >= self.len() && cap > 0);
        if self.is_unique() && header_for(cap) == self.header() {
            let (header, old) = (self.header(), self.capacity());
            if cap > old {
                // SAFETY: a unique heap block allocated with `layout(header, old)`; the new size
                // is non-zero and `layout` checked it.
                let raw = unsafe {
                    alloc::realloc(
                        self.ptr.as_ptr(),
                        layout(header, old),
                        layout(header, cap).size(),
                    )
                };
                let Some(ptr) = NonNull::new(raw) else {
                    alloc::handle_alloc_error(layout(header, cap))
                };
                self.ptr = ptr;
                // SAFETY: unique block (realloc kept the header); a short block's new capacity
                // fits in `u32` (`header_for`).
                unsafe {
                    if header == WIDE_HEADER {
                        (*self.ptr.as_ptr().cast::<Wide>()).cap = cap;
                    } else {
                        (*self.ptr.as_ptr().cast::<Short>()).cap = cap as u32;
                    }
                }
            }
        } else {
            // Shared (copy-on-write), or a short block outgrowing its form: a fresh block.
            let mut fresh = SharedBytes::with_capacity(cap);
            let len = self.len();
            // SAFETY: `fresh` is a unique block with room for `len` bytes; the source is
            // another block, kept alive by `self`.
            unsafe {
                ptr::copy_nonoverlapping(self.data(), fresh.data(), len);
                fresh.set_len(len);
            }
            *self = fresh;
        }
    }

    /// Room for `additional` more bytes. Growth is Redis's `sdsMakeRoomFor` (greedy): twice the
    /// needed length below 1 MiB, 1 MiB more above, so appends are amortized O(1).
    pub fn reserve(&mut self, additional: usize) {
        let need = self
            .len()
            .checked_add(additional)
            .expect("SharedBytes capacity overflow");
        if need == 0 {
            return;
        }
        if need > self.capacity() {
            let greedy = if need < PREALLOC_STEP {
                need * 2
            } else {
                need.saturating_add(PREALLOC_STEP)
            };
            self.reserve_unique(greedy);
        } else if !self.is_unique() {
            self.reserve_unique(self.capacity());
        }
    }

    /// The bytes, writable (copied first if shared).
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        let len = self.len();
        if len == 0 {
            return &mut [];
        }
        if !self.is_unique() {
            self.reserve_unique(len);
        }
        // SAFETY: a unique heap block with `len` initialized bytes; the slice borrows `self`
        // mutably, so nothing else reads or writes them meanwhile.
        unsafe { std::slice::from_raw_parts_mut(self.data(), len) }
    }

    /// Append `bytes`.
    pub fn extend_from_slice(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        self.reserve(bytes.len());
        let len = self.len();
        // SAFETY: unique block with room for `len + bytes.len()`; `bytes` cannot point into it
        // (it is borrowed immutably while `self` is borrowed mutably).
        unsafe {
            ptr::copy_nonoverlapping(bytes.as_ptr(), self.data().add(len), bytes.len());
            self.set_len(len + bytes.len());
        }
    }

    /// Make the length `new_len`, filling new bytes with `fill` or cutting the end.
    pub fn resize(&mut self, new_len: usize, fill: u8) {
        let len = self.len();
        if new_len <= len {
            self.truncate(new_len);
            return;
        }
        self.reserve(new_len - len);
        // SAFETY: unique block with room for `new_len` bytes.
        unsafe {
            ptr::write_bytes(self.data().add(len), fill, new_len - len);
            self.set_len(new_len);
        }
    }

    /// Keep the first `n` bytes (no-op if there are fewer); the capacity stays.
    pub fn truncate(&mut self, n: usize) {
        let len = self.len();
        if n >= len {
            return;
        }
        if self.is_unique() {
            // SAFETY: unique block, `n < len <= cap`.
            unsafe { self.set_len(n) };
        } else {
            *self = SharedBytes::from_slice(&self.as_slice()[..n]);
        }
    }

    /// Replace the bytes in `range` with `with` (Redis's sparse HyperLogLog edits in place).
    ///
    /// Panics if `range` is out of bounds, as slicing does.
    pub fn splice(&mut self, range: Range<usize>, with: &[u8]) {
        let len = self.len();
        assert!(
            range.start <= range.end && range.end <= len,
            "splice range {range:?} out of bounds for length {len}"
        );
        let removed = range.end - range.start;
        let new_len = len - removed + with.len();
        if new_len == 0 {
            *self = SharedBytes::new();
            return;
        }
        if with.len() > removed {
            self.reserve(with.len() - removed);
        } else if !self.is_unique() {
            self.reserve_unique(len);
        }
        let tail = len - range.end;
        // SAFETY: unique block with room for `max(len, new_len)` bytes; the tail moves within
        // it (`copy` handles the overlap); `with` is another allocation (borrow rules).
        unsafe {
            let d = self.data();
            ptr::copy(d.add(range.end), d.add(range.start + with.len()), tail);
            ptr::copy_nonoverlapping(with.as_ptr(), d.add(range.start), with.len());
            self.set_len(new_len);
        }
    }

    /// The bytes as a `Vec` (a copy).
    pub fn to_vec(&self) -> Vec<u8> {
        self.as_slice().to_vec()
    }

    /// Give up the handle as its raw pointer (for [`crate::ArcOrBytes`]); aligned to 8.
    pub(crate) fn into_raw(self) -> NonNull<u8> {
        let p = self.ptr;
        std::mem::forget(self);
        p
    }

    /// The handle `into_raw` gave up.
    ///
    /// SAFETY: `p` came from [`SharedBytes::into_raw`] and that handle was not rebuilt since.
    pub(crate) unsafe fn from_raw(p: NonNull<u8>) -> SharedBytes {
        SharedBytes { ptr: p }
    }
}

impl Drop for SharedBytes {
    fn drop(&mut self) {
        if self.is_static() {
            return;
        }
        if self.word().fetch_sub(1, AtomicOrdering::Release) & COUNT != 1 {
            return;
        }
        fence(AtomicOrdering::Acquire);
        let l = layout(self.header(), self.capacity());
        // SAFETY: the count reached zero, so this was the last handle: nobody else can reach the
        // block; it was allocated (or last reallocated) with this layout.
        unsafe { alloc::dealloc(self.ptr.as_ptr(), l) }
    }
}

impl Clone for SharedBytes {
    fn clone(&self) -> SharedBytes {
        // `self` keeps the block alive while the count goes up; the count stays far below the
        // form's flag.
        if !self.is_static()
            && self.word().fetch_add(1, AtomicOrdering::Relaxed) & COUNT > MAX_COUNT
        {
            std::process::abort();
        }
        SharedBytes { ptr: self.ptr }
    }
}

impl Default for SharedBytes {
    fn default() -> SharedBytes {
        SharedBytes::new()
    }
}

impl Deref for SharedBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.as_slice()
    }
}

/// Writable bytes: copies them first if the string is shared ([`SharedBytes::as_mut_slice`]).
impl DerefMut for SharedBytes {
    fn deref_mut(&mut self) -> &mut [u8] {
        self.as_mut_slice()
    }
}

impl AsRef<[u8]> for SharedBytes {
    fn as_ref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl Borrow<[u8]> for SharedBytes {
    fn borrow(&self) -> &[u8] {
        self.as_slice()
    }
}

impl PartialEq for SharedBytes {
    fn eq(&self, other: &SharedBytes) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl Eq for SharedBytes {}

impl PartialEq<[u8]> for SharedBytes {
    fn eq(&self, other: &[u8]) -> bool {
        self.as_slice() == other
    }
}

impl PartialEq<Vec<u8>> for SharedBytes {
    fn eq(&self, other: &Vec<u8>) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl PartialOrd for SharedBytes {
    fn partial_cmp(&self, other: &SharedBytes) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for SharedBytes {
    fn cmp(&self, other: &SharedBytes) -> Ordering {
        self.as_slice().cmp(other.as_slice())
    }
}

impl Hash for SharedBytes {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_slice().hash(state)
    }
}

impl fmt::Debug for SharedBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_slice(), f)
    }
}

impl From<&[u8]> for SharedBytes {
    fn from(b: &[u8]) -> SharedBytes {
        SharedBytes::from_slice(b)
    }
}

impl<const N: usize> From<&[u8; N]> for SharedBytes {
    fn from(b: &[u8; N]) -> SharedBytes {
        SharedBytes::from_slice(b)
    }
}

impl From<Vec<u8>> for SharedBytes {
    fn from(v: Vec<u8>) -> SharedBytes {
        SharedBytes::from_slice(&v)
    }
}

impl From<&Vec<u8>> for SharedBytes {
    fn from(v: &Vec<u8>) -> SharedBytes {
        SharedBytes::from_slice(v)
    }
}

impl From<&str> for SharedBytes {
    fn from(s: &str) -> SharedBytes {
        SharedBytes::from_slice(s.as_bytes())
    }
}

impl From<SharedBytes> for Vec<u8> {
    fn from(s: SharedBytes) -> Vec<u8> {
        s.to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_pointer_and_a_12_byte_header() {
        assert_eq!(std::mem::size_of::<SharedBytes>(), 8);
        assert_eq!(std::mem::size_of::<Option<SharedBytes>>(), 8);
        let s = SharedBytes::from_slice(&[1; 30]);
        assert_eq!(s.heap_size(), 12 + 30);
        assert_eq!(SharedBytes::heap_size_of(30), 12 + 30);
        let w = SharedBytes::from_slice(&[1; SHORT_MAX + 1]);
        assert_eq!(w.heap_size(), 24 + SHORT_MAX + 1);
        assert_eq!(SharedBytes::heap_size_of(SHORT_MAX + 1), w.heap_size());
        assert_eq!(SharedBytes::new().heap_size(), 0);
        assert_eq!(SharedBytes::from_slice(b"").heap_size(), 0);
    }

    #[test]
    fn a_write_to_a_shared_string_copies_it() {
        let a = SharedBytes::from_slice(b"hello");
        let mut b = a.clone();
        assert!(a.is_shared() && !a.is_unique());
        b.extend_from_slice(b" world");
        assert_eq!(&*a, b"hello");
        assert_eq!(&*b, b"hello world");
        assert!(a.is_unique() && b.is_unique());
        let mut c = b.clone();
        c.as_mut_slice()[0] = b'J';
        assert_eq!(&*b, b"hello world");
        assert_eq!(&*c, b"Jello world");
    }

    #[test]
    fn the_empty_string_is_never_written() {
        let mut e = SharedBytes::new();
        let f = e.clone();
        assert!(!e.is_unique() && !e.is_shared());
        assert_eq!(e.as_mut_slice(), &mut [] as &mut [u8]);
        e.truncate(0);
        e.splice(0..0, b"");
        e.extend_from_slice(b"x");
        assert_eq!(&*e, b"x");
        assert!(f.is_empty() && f.heap_size() == 0);
        e.splice(0..1, b"");
        assert_eq!(e.heap_size(), 0);
    }

    /// With this crate's tiny `SHORT_MAX` (40), edits cross between the two header forms: each
    /// must equal the same edit of a `Vec`, leave held clones alone, and keep the form the
    /// capacity asks for.
    #[test]
    fn edits_across_both_forms_equal_a_vec() {
        use proptest::prelude::*;
        let edit = (
            0u8..5,
            0usize..90,
            0usize..90,
            proptest::collection::vec(any::<u8>(), 0..50),
        );
        proptest!(|(start in proptest::collection::vec(any::<u8>(), 0..60),
                    edits in proptest::collection::vec(edit, 0..if cfg!(miri) { 8 } else { 30 }))| {
            let mut s = SharedBytes::from_slice(&start);
            let mut m = start.clone();
            let mut held = Vec::new();
            for (op, a, b, w) in edits {
                match op {
                    0 => { s.extend_from_slice(&w); m.extend_from_slice(&w); }
                    1 => { s.resize(a, 7); m.resize(a, 7); }
                    2 => { s.truncate(a); m.truncate(a); }
                    3 => {
                        let (x, y) = (a.min(m.len()), b.min(m.len()));
                        let (x, y) = (x.min(y), x.max(y));
                        s.splice(x..y, &w);
                        m.splice(x..y, w);
                    }
                    _ => held.push((s.clone(), m.clone())),
                }
                prop_assert_eq!(&*s, &m[..]);
                prop_assert!(s.capacity() >= s.len());
                if !s.is_static() {
                    prop_assert_eq!(s.is_wide(), s.capacity() > SHORT_MAX);
                }
                for (c, cm) in &held {
                    prop_assert_eq!(&**c, &cm[..]);
                }
            }
        });
    }
}
