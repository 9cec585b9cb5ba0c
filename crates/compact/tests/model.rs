//! `CompactBytes` against `Vec<u8>` as the model: contents, equality, ordering and hashing equal
//! the slice's for every length around the inline boundary; and a counting allocator shows that
//! every heap string is freed exactly once and that inline strings never allocate.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};

use forkless_compact::{CompactBytes, INLINE_CAP};
use proptest::prelude::*;

thread_local! {
    /// Live allocations made by this thread (allocations minus frees): each test counts its
    /// own, whatever the other tests of the binary do at the same time. A `const` thread-local
    /// without a destructor never allocates, so the allocator can use it.
    static LIVE: Cell<i64> = const { Cell::new(0) };
}

fn live() -> i64 {
    LIVE.with(Cell::get)
}

struct Counting;

// SAFETY: every call is forwarded unchanged to `System`, which upholds `GlobalAlloc`'s contract;
// the counter is a thread-local cell and never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE.with(|c| c.set(c.get() + 1));
        // SAFETY: forwarded with the caller's layout.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.with(|c| c.set(c.get() - 1));
        // SAFETY: `p` came from `System.alloc` with `l` (every allocation goes through here).
        unsafe { System.dealloc(p, l) }
    }
}

#[global_allocator]
static A: Counting = Counting;

fn h<T: Hash + ?Sized>(t: &T) -> u64 {
    let mut s = DefaultHasher::new();
    t.hash(&mut s);
    s.finish()
}

proptest! {
    #[test]
    fn behaves_as_its_bytes(a in proptest::collection::vec(any::<u8>(), 0..48),
                            b in proptest::collection::vec(any::<u8>(), 0..48)) {
        let (ca, cb) = (CompactBytes::new(&a), CompactBytes::from(b.clone()));
        prop_assert_eq!(&*ca, &a[..]);
        prop_assert_eq!(&*cb, &b[..]);
        prop_assert_eq!(ca == cb, a == b);
        prop_assert_eq!(ca.cmp(&cb), a.cmp(&b));
        prop_assert_eq!(h(&ca), h(&a[..]));
        prop_assert_eq!(ca.is_inline(), a.len() <= INLINE_CAP);
        let moved = std::thread::spawn(move || ca).join().unwrap();
        prop_assert_eq!(&*moved, &a[..]);
        let mut set = std::collections::HashSet::new();
        set.insert(cb);
        prop_assert!(set.contains(&b[..]));
    }
}

#[test]
fn heap_strings_are_freed_once_and_inline_ones_never_allocate() {
    // Inline: no allocation for construction, clone or drop.
    let before = live();
    for n in 0..=INLINE_CAP {
        let bytes = [7u8; INLINE_CAP];
        let c = CompactBytes::new(&bytes[..n]);
        let d = c.clone();
        assert_eq!(c, d);
    }
    assert_eq!(live(), before, "an inline string allocated");

    // Heap: each string holds one allocation, freed exactly once (a double free would also
    // corrupt `System`'s heap and abort).
    let sources: Vec<Vec<u8>> = (INLINE_CAP + 1..200).map(|n| vec![n as u8; n]).collect();
    let before = live();
    let mut held: Vec<CompactBytes> = sources.iter().map(|v| CompactBytes::new(v)).collect();
    let clones: Vec<CompactBytes> = held.to_vec();
    // `held` (one allocation of its own) plus one per string and per clone.
    assert_eq!(live() - before, 1 + 1 + 2 * sources.len() as i64);
    drop(clones);
    // Round trips through Box and Vec move the allocation, no copy and no leak.
    let boxed: Vec<Box<[u8]>> = held.drain(..).map(|c| c.into_boxed_bytes()).collect();
    let back: Vec<CompactBytes> = boxed.into_iter().map(CompactBytes::from).collect();
    for (c, v) in back.iter().zip(&sources) {
        assert_eq!(&**c, &v[..]);
    }
    drop(back);
    drop(held);
    assert_eq!(live(), before, "leaked or freed twice");
}
