//! [`ArcOrBytes`]: an `Arc<T>` or a [`SharedBytes`] in one 8-byte pointer, told apart by the
//! pointer's lowest bit.
//!
//! Problem: a keyspace slot holds its value behind a counted pointer so that a snapshot can
//! share it (copy-on-write). For most values that is `Arc<Value>`; for a string it is better as
//! the string's own block, counter included ([`SharedBytes`]), which saves the `Arc`'s
//! allocation per string key. A safe enum of the two pointers takes 16 bytes, and the slot's 8
//! would grow every dict node past its 48-byte size. Both pointers are aligned to at least 8
//! (`T`'s alignment is asserted to be at least 2), so the lowest bit is free:
//!
//! ```text
//!   bit 0 = 1:  Arc::into_raw(arc) | 1     (points to the T inside the Arc's allocation)
//!   bit 0 = 0:  SharedBytes::into_raw(s)   (points to the block's header)
//! ```
//!
//! The untagged form is bit for bit a `SharedBytes` (both `repr(transparent)` over one non-null
//! pointer), so `&self` and `&mut self` lend a `&SharedBytes` / `&mut SharedBytes` in place: a
//! write through the latter stores another `SharedBytes`, which is again a valid untagged
//! value. The `Arc` side is rebuilt from its raw pointer only inside `ManuallyDrop` (to read the
//! counts or run `Arc::make_mut`) or to be dropped or given back, never twice.

use std::fmt;
use std::marker::PhantomData;
use std::mem::ManuallyDrop;
use std::ptr::NonNull;
use std::sync::Arc;

use crate::SharedBytes;

const ARC_BIT: usize = 1;

/// An `Arc<T>` or a [`SharedBytes`], in 8 bytes. Clone shares (a count goes up); see
/// [`ArcOrBytes::get_mut`] for writes.
#[repr(transparent)]
pub struct ArcOrBytes<T> {
    ptr: NonNull<u8>,
    _owns: PhantomData<Arc<T>>,
}

// SAFETY: it owns either an `Arc<T>` (`Send` when `T: Send + Sync`) or a `SharedBytes` (`Send`).
unsafe impl<T: Send + Sync> Send for ArcOrBytes<T> {}
// SAFETY: as for `Send`: `&ArcOrBytes` lends `&T` or `&SharedBytes`, both `Sync` then.
unsafe impl<T: Send + Sync> Sync for ArcOrBytes<T> {}

/// Borrowed view of an [`ArcOrBytes`].
#[derive(Debug)]
pub enum Ref<'a, T> {
    /// The value behind the `Arc`.
    Arc(&'a T),
    /// The byte string.
    Bytes(&'a SharedBytes),
}

/// Mutable view of an [`ArcOrBytes`] (the `Arc` side already made unique).
#[derive(Debug)]
pub enum Mut<'a, T> {
    /// The value behind the (now unique) `Arc`.
    Arc(&'a mut T),
    /// The byte string (its own writes copy it first if shared).
    Bytes(&'a mut SharedBytes),
}

/// An [`ArcOrBytes`] taken apart.
#[derive(Debug)]
pub enum Unpacked<T> {
    /// It held an `Arc`.
    Arc(Arc<T>),
    /// It held a byte string.
    Bytes(SharedBytes),
}

impl<T> ArcOrBytes<T> {
    /// Hold an `Arc`.
    pub fn from_arc(a: Arc<T>) -> ArcOrBytes<T> {
        const {
            assert!(
                std::mem::align_of::<T>() >= 2,
                "the tag needs a free low bit"
            )
        };
        let raw = Arc::into_raw(a).cast_mut().cast::<u8>();
        // SAFETY: `Arc::into_raw` is non-null and aligned to at least 2, so setting bit 0 gives
        // another non-null address in the same allocation's provenance.
        let ptr = unsafe { NonNull::new_unchecked(raw.map_addr(|a| a | ARC_BIT)) };
        ArcOrBytes {
            ptr,
            _owns: PhantomData,
        }
    }

    /// Hold a byte string.
    pub fn from_bytes(b: SharedBytes) -> ArcOrBytes<T> {
        ArcOrBytes {
            ptr: b.into_raw(),
            _owns: PhantomData,
        }
    }

    fn is_arc(&self) -> bool {
        self.ptr.as_ptr().addr() & ARC_BIT != 0
    }

    /// The `Arc`'s raw pointer (only meaningful when `is_arc`).
    fn arc_raw(&self) -> *const T {
        self.ptr.as_ptr().map_addr(|a| a & !ARC_BIT).cast::<T>()
    }

    /// The `Arc`, not to be dropped (only when `is_arc`).
    fn arc(&self) -> ManuallyDrop<Arc<T>> {
        // SAFETY: `is_arc` (callers), so `arc_raw` is what `Arc::into_raw` returned and this
        // value still owns that count; `ManuallyDrop` keeps the rebuilt `Arc` from releasing it.
        ManuallyDrop::new(unsafe { Arc::from_raw(self.arc_raw()) })
    }

    /// A borrowed view.
    pub fn get(&self) -> Ref<'_, T> {
        if self.is_arc() {
            // SAFETY: this value owns a count of the `Arc`, so the `T` lives at least as long as
            // the borrow of `self`.
            Ref::Arc(unsafe { &*self.arc_raw() })
        } else {
            // SAFETY: untagged, `self` is bit for bit a valid `SharedBytes` (both
            // `repr(transparent)` over one non-null pointer: module docs).
            Ref::Bytes(unsafe { &*(self as *const ArcOrBytes<T>).cast::<SharedBytes>() })
        }
    }

    /// The byte string, writable in place (`None` for an `Arc`). Its writes copy it first if
    /// it is shared.
    pub fn bytes_mut(&mut self) -> Option<&mut SharedBytes> {
        if self.is_arc() {
            return None;
        }
        // SAFETY: as in `get`; whatever is stored through the reference is a `SharedBytes`,
        // which is again a valid untagged value.
        Some(unsafe { &mut *(self as *mut ArcOrBytes<T>).cast::<SharedBytes>() })
    }

    /// True when another handle holds the same value (so a write copies it).
    pub fn is_shared(&self) -> bool {
        match self.get() {
            Ref::Bytes(b) => b.is_shared(),
            Ref::Arc(_) => {
                let a = self.arc();
                Arc::strong_count(&a) > 1 || Arc::weak_count(&a) > 0
            }
        }
    }

    /// Take it apart.
    pub fn into_unpacked(self) -> Unpacked<T> {
        let me = ManuallyDrop::new(self);
        if me.is_arc() {
            // SAFETY: the count `me` owned moves into the rebuilt `Arc`; `me` is never dropped.
            Unpacked::Arc(unsafe { Arc::from_raw(me.arc_raw()) })
        } else {
            // SAFETY: as above, for the untagged `SharedBytes`.
            Unpacked::Bytes(unsafe { SharedBytes::from_raw(me.ptr) })
        }
    }
}

impl<T: Clone> ArcOrBytes<T> {
    /// A mutable view: the `Arc` side is made unique first (`Arc::make_mut`: a clone of `T`
    /// when shared); the byte string copies itself on its first write if shared.
    pub fn get_mut(&mut self) -> Mut<'_, T> {
        if !self.is_arc() {
            return Mut::Bytes(self.bytes_mut().expect("untagged"));
        }
        let mut a = self.arc();
        // If `T::clone` panics inside, `a` is not dropped (`ManuallyDrop`) and `self` still owns
        // the original count: nothing leaks or is freed twice.
        Arc::make_mut(&mut a);
        // `make_mut` may have replaced the `Arc` (a fresh unique one; the old count released):
        // store the current one.
        let raw = Arc::into_raw(ManuallyDrop::into_inner(a)).cast_mut();
        // SAFETY: as in `from_arc`.
        self.ptr = unsafe { NonNull::new_unchecked(raw.cast::<u8>().map_addr(|a| a | ARC_BIT)) };
        // SAFETY: the `Arc` is unique now (strong 1, no weak), owned by `self`, and the returned
        // borrow of `self` keeps anyone else from cloning it meanwhile.
        Mut::Arc(unsafe { &mut *raw })
    }
}

impl<T> Clone for ArcOrBytes<T> {
    fn clone(&self) -> ArcOrBytes<T> {
        match self.get() {
            Ref::Bytes(b) => ArcOrBytes::from_bytes(b.clone()),
            Ref::Arc(_) => ArcOrBytes::from_arc(Arc::clone(&self.arc())),
        }
    }
}

impl<T> Drop for ArcOrBytes<T> {
    fn drop(&mut self) {
        let me = ArcOrBytes {
            ptr: self.ptr,
            _owns: PhantomData::<Arc<T>>,
        };
        // `into_unpacked` rebuilds the owner and drops it here; `self`'s own drop is this one.
        drop(me.into_unpacked());
    }
}

impl<T: fmt::Debug> fmt::Debug for ArcOrBytes<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.get() {
            Ref::Arc(t) => f.debug_tuple("Arc").field(t).finish(),
            Ref::Bytes(b) => f.debug_tuple("Bytes").field(b).finish(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_pointer() {
        assert_eq!(std::mem::size_of::<ArcOrBytes<u64>>(), 8);
        assert_eq!(std::mem::size_of::<Option<ArcOrBytes<u64>>>(), 8);
    }

    #[test]
    fn arc_side_is_copied_on_write_only_when_shared() {
        let mut a = ArcOrBytes::from_arc(Arc::new(vec![1u64, 2]));
        assert!(!a.is_shared());
        let held = a.clone();
        assert!(a.is_shared() && held.is_shared());
        match a.get_mut() {
            Mut::Arc(v) => v.push(3),
            Mut::Bytes(_) => unreachable!(),
        }
        assert!(!a.is_shared() && !held.is_shared());
        assert!(matches!(held.get(), Ref::Arc(v) if v == &vec![1, 2]));
        assert!(matches!(a.get(), Ref::Arc(v) if v == &vec![1, 2, 3]));
        match a.into_unpacked() {
            Unpacked::Arc(v) => assert_eq!(*v, vec![1, 2, 3]),
            Unpacked::Bytes(_) => unreachable!(),
        }
    }

    #[test]
    fn bytes_side_is_written_in_place() {
        let mut a = ArcOrBytes::<u64>::from_bytes(SharedBytes::from_slice(b"abc"));
        let held = a.clone();
        a.bytes_mut().unwrap().extend_from_slice(b"def");
        *a.bytes_mut().unwrap() = SharedBytes::from_slice(b"xyz");
        assert!(matches!(a.get(), Ref::Bytes(b) if &**b == b"xyz"));
        assert!(matches!(held.get(), Ref::Bytes(b) if &**b == b"abc"));
        assert!(matches!(a.into_unpacked(), Unpacked::Bytes(b) if &*b == b"xyz"));
    }
}
