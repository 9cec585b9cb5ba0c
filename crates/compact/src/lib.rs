//! [`CompactBytes`]: an immutable byte string in 16 bytes that keeps up to 15 bytes inline and
//! longer ones in one heap allocation of exactly their length.
//!
//! Problem: every key of the keyspace lives in a dict node as a `Box<[u8]>`, a 16-byte fat
//! pointer to its own allocation. Most keys are short (`user:1234`, `session:9f3a`): the
//! allocation costs a 16-byte size class per key (a sixth of a small string key's memory,
//! benches/README.md "Memory per key"), a `malloc` on insert, a `free` on delete, and a pointer
//! chase on every comparison; and a snapshot copies each key it hands to its serializer, which
//! was one more `malloc` per key under the shard lock. A key of up to 15 bytes fits in the 16
//! bytes the pointer took.
//!
//! ## Layout (16 bytes, alignment 8; the same on every target with 64-bit pointers)
//!
//! ```text
//!   byte:  0                           8                          15
//!         +---------------------------------------------------------+----+
//! inline  | b0 b1 ... b(len-1)  (unused bytes are 0)                 |0x80|len   tag = 0x80 | len, len <= 15
//!         +---------------------------+-----------------------------+----+
//! heap    | ptr (NonNull<u8>)         | len: 7 bytes, little endian | 0xFF |     len >= 16, len < 2^56
//!         +---------------------------+-----------------------------+----+
//! ```
//!
//! The last byte is the tag: `0x80..=0x8F` inline (the low 4 bits are the length), `0xFF` heap.
//! It is a plain `u8` in both variants of the union, so reading it is always defined. A heap
//! string owns a `Box<[u8]>` of exactly `len` bytes, rebuilt from `(ptr, len)` to drop it; the
//! bytes are never written after construction, so `&self` gives out `&[u8]` freely and the type
//! is `Send` and `Sync` as `Box<[u8]>` is.
//!
//! Equality, ordering and hashing are the byte slice's, so `CompactBytes: Borrow<[u8]>` holds
//! its contract and a table keyed by it is looked up with `&[u8]`. [`CompactBytes::heap_size`]
//! tells memory accounting what the heap holds (0 inline).
//!
//! Besides the Lua VM boundary (`crates/script/src/vm.rs`), this is the engine's only `unsafe`
//! (DESIGN.md section 1): the union reads and the raw parts of the heap box. Each block has its
//! `// SAFETY:` argument; the tests check every length around the boundary against `Vec<u8>` and
//! count allocations, so a leak or a double free fails them (`ci/miri.sh` runs them under Miri).

mod shared;
mod tagged;

pub use shared::SharedBytes;
pub use tagged::{ArcOrBytes, Mut, Ref, Unpacked};

use std::borrow::Borrow;
use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;
use std::ptr::NonNull;

/// The longest byte string kept inline (no allocation).
pub const INLINE_CAP: usize = 15;

/// Tag of an inline string: `INLINE_TAG | len` in the last byte.
const INLINE_TAG: u8 = 0x80;
/// Tag of a heap string.
const HEAP_TAG: u8 = 0xFF;
/// A heap string's length must fit its 7 length bytes.
const MAX_LEN: usize = (1 << 56) - 1;

#[repr(C)]
#[derive(Clone, Copy)]
struct Heap {
    ptr: NonNull<u8>,
    len: [u8; 7],
    tag: u8,
}

#[repr(C)]
union Repr {
    inline: [u8; 16],
    heap: Heap,
}

/// An immutable byte string: up to [`INLINE_CAP`] bytes inline, longer ones in one exact-size
/// heap allocation (module docs: layout and invariants).
pub struct CompactBytes(Repr);

// SAFETY: a `CompactBytes` is either plain bytes or the unique owner of an immutable heap
// allocation (a `Box<[u8]>` in parts); `Box<[u8]>` is `Send` and `Sync`, so is this.
unsafe impl Send for CompactBytes {}
// SAFETY: as for `Send`: shared access only reads the bytes.
unsafe impl Sync for CompactBytes {}

impl CompactBytes {
    /// The empty string.
    pub const EMPTY: CompactBytes = CompactBytes(Repr {
        inline: [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, INLINE_TAG],
    });

    /// A copy of `bytes` (an allocation only above [`INLINE_CAP`] bytes).
    pub fn new(bytes: &[u8]) -> CompactBytes {
        if bytes.len() <= INLINE_CAP {
            Self::inline(bytes)
        } else {
            Self::from_box(Box::from(bytes))
        }
    }

    fn inline(bytes: &[u8]) -> CompactBytes {
        debug_assert!(bytes.len() <= INLINE_CAP);
        let mut b = [0u8; 16];
        b[..bytes.len()].copy_from_slice(bytes);
        // The length is at most 15: it fits the tag's low 4 bits.
        b[15] = INLINE_TAG | bytes.len() as u8;
        CompactBytes(Repr { inline: b })
    }

    /// Takes `b` over without copying when it is longer than [`INLINE_CAP`] bytes.
    ///
    /// # Panics
    /// If `b` is 2^56 bytes or longer (no machine holds that much).
    fn from_box(b: Box<[u8]>) -> CompactBytes {
        let len = b.len();
        if len <= INLINE_CAP {
            return Self::inline(&b);
        }
        assert!(len <= MAX_LEN, "byte string of {len} bytes");
        let ptr = NonNull::from(Box::leak(b)).cast::<u8>();
        let l = (len as u64).to_le_bytes();
        CompactBytes(Repr {
            heap: Heap {
                ptr,
                len: [l[0], l[1], l[2], l[3], l[4], l[5], l[6]],
                tag: HEAP_TAG,
            },
        })
    }

    fn tag(&self) -> u8 {
        // SAFETY: byte 15 is an initialized `u8` in both variants (`inline[15]`, `Heap::tag`,
        // both `repr(C)` at offset 15), so reading it through `inline` is defined.
        unsafe { self.0.inline[15] }
    }

    /// True when the bytes are inline (no heap allocation).
    pub fn is_inline(&self) -> bool {
        self.tag() != HEAP_TAG
    }

    /// The heap bytes this string owns: 0 inline, else its length (the allocation is exact;
    /// memory accounting rounds it to the allocator's size class).
    pub fn heap_size(&self) -> usize {
        Self::heap_size_of(self.len())
    }

    /// The heap bytes a string of `len` bytes owns ([`CompactBytes::heap_size`] without the
    /// string: for accounting that knows only the length).
    pub const fn heap_size_of(len: usize) -> usize {
        if len <= INLINE_CAP {
            0
        } else {
            len
        }
    }

    /// The bytes.
    pub fn as_bytes(&self) -> &[u8] {
        let tag = self.tag();
        if tag == HEAP_TAG {
            // SAFETY: the tag says heap, so `heap` is the variant written by `from_box`: `ptr`
            // points to a live allocation of exactly `len` bytes that this value owns and that
            // is never written; the slice borrows `self`, so it cannot outlive the drop.
            unsafe {
                let h = self.0.heap;
                std::slice::from_raw_parts(h.ptr.as_ptr(), heap_len(&h))
            }
        } else {
            // SAFETY: the tag says inline, and all 16 bytes of `inline` are initialized.
            let b = unsafe { &self.0.inline };
            &b[..usize::from(tag & 0x0F)]
        }
    }

    /// The bytes as a `Box<[u8]>` (no copy for a heap string).
    pub fn into_boxed_bytes(self) -> Box<[u8]> {
        if self.is_inline() {
            return Box::from(self.as_bytes());
        }
        let this = std::mem::ManuallyDrop::new(self);
        // SAFETY: heap variant (checked above): `(ptr, len)` are the parts of the `Box<[u8]>`
        // that `from_box` leaked; `ManuallyDrop` keeps `Drop` from freeing it a second time.
        unsafe {
            let h = this.0.heap;
            Box::from_raw(std::ptr::slice_from_raw_parts_mut(
                h.ptr.as_ptr(),
                heap_len(&h),
            ))
        }
    }
}

fn heap_len(h: &Heap) -> usize {
    let l = h.len;
    u64::from_le_bytes([l[0], l[1], l[2], l[3], l[4], l[5], l[6], 0]) as usize
}

impl Drop for CompactBytes {
    fn drop(&mut self) {
        if !self.is_inline() {
            // SAFETY: heap variant: this value owns the `Box<[u8]>` whose parts are stored
            // (module docs), and nothing uses them after `drop`.
            unsafe {
                let h = self.0.heap;
                drop(Box::from_raw(std::ptr::slice_from_raw_parts_mut(
                    h.ptr.as_ptr(),
                    heap_len(&h),
                )));
            }
        }
    }
}

impl Clone for CompactBytes {
    fn clone(&self) -> CompactBytes {
        if self.is_inline() {
            // SAFETY: inline variant: plain initialized bytes, copied.
            let bytes = unsafe { self.0.inline };
            CompactBytes(Repr { inline: bytes })
        } else {
            Self::from_box(Box::from(self.as_bytes()))
        }
    }
}

impl Default for CompactBytes {
    fn default() -> CompactBytes {
        CompactBytes::EMPTY
    }
}

impl Deref for CompactBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl AsRef<[u8]> for CompactBytes {
    fn as_ref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl Borrow<[u8]> for CompactBytes {
    fn borrow(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl PartialEq for CompactBytes {
    fn eq(&self, other: &CompactBytes) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for CompactBytes {}

impl PartialEq<[u8]> for CompactBytes {
    fn eq(&self, other: &[u8]) -> bool {
        self.as_bytes() == other
    }
}

impl PartialOrd for CompactBytes {
    fn partial_cmp(&self, other: &CompactBytes) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for CompactBytes {
    fn cmp(&self, other: &CompactBytes) -> Ordering {
        self.as_bytes().cmp(other.as_bytes())
    }
}

impl Hash for CompactBytes {
    /// The slice's hash, as `Borrow<[u8]>` requires.
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_bytes().hash(state)
    }
}

impl fmt::Debug for CompactBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "b\"{}\"", self.as_bytes().escape_ascii())
    }
}

impl From<&[u8]> for CompactBytes {
    fn from(b: &[u8]) -> CompactBytes {
        CompactBytes::new(b)
    }
}

impl<const N: usize> From<&[u8; N]> for CompactBytes {
    fn from(b: &[u8; N]) -> CompactBytes {
        CompactBytes::new(b)
    }
}

impl From<Box<[u8]>> for CompactBytes {
    fn from(b: Box<[u8]>) -> CompactBytes {
        CompactBytes::from_box(b)
    }
}

impl From<Vec<u8>> for CompactBytes {
    /// No copy when `v` is longer than [`INLINE_CAP`] and has no spare capacity.
    fn from(v: Vec<u8>) -> CompactBytes {
        if v.len() <= INLINE_CAP {
            CompactBytes::inline(&v)
        } else {
            CompactBytes::from_box(v.into_boxed_slice())
        }
    }
}

impl From<&str> for CompactBytes {
    fn from(s: &str) -> CompactBytes {
        CompactBytes::new(s.as_bytes())
    }
}

impl From<CompactBytes> for Vec<u8> {
    fn from(b: CompactBytes) -> Vec<u8> {
        b.into_boxed_bytes().into_vec()
    }
}

impl From<CompactBytes> for Box<[u8]> {
    fn from(b: CompactBytes) -> Box<[u8]> {
        b.into_boxed_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sixteen_bytes() {
        assert_eq!(std::mem::size_of::<CompactBytes>(), 16);
        assert_eq!(std::mem::align_of::<CompactBytes>(), 8);
    }

    #[test]
    fn the_boundary_is_fifteen_bytes() {
        for n in 0..40usize {
            let v: Vec<u8> = (0..n as u8).map(|i| i.wrapping_mul(37)).collect();
            let c = CompactBytes::new(&v);
            assert_eq!(c.as_bytes(), &v[..], "len {n}");
            assert_eq!(c.is_inline(), n <= INLINE_CAP, "len {n}");
            assert_eq!(c.heap_size(), if n <= INLINE_CAP { 0 } else { n });
            assert_eq!(c.clone(), c);
            assert_eq!(Vec::from(c.clone()), v);
            assert_eq!(CompactBytes::from(v.clone()), c);
            assert_eq!(CompactBytes::from(v.clone().into_boxed_slice()), c);
        }
        assert_eq!(CompactBytes::EMPTY.as_bytes(), b"");
        assert_eq!(CompactBytes::default(), CompactBytes::new(b""));
    }
}
