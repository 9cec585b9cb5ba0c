//! `CompactBytes` against `Vec<u8>` as the model: contents, equality, ordering and hashing equal
//! the slice's for every length around the inline boundary; and a counting allocator shows that
//! every heap string is freed exactly once and that inline strings never allocate. `SharedBytes`
//! against `Vec<u8>` under edits, with clones held across them (copy-on-write), and
//! `ArcOrBytes`'s two sides freed exactly once.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};

use forkless_compact::{ArcOrBytes, CompactBytes, Mut, Ref, SharedBytes, Unpacked, INLINE_CAP};
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

/// One edit of the `SharedBytes` model test.
#[derive(Debug, Clone)]
enum Edit {
    Extend(Vec<u8>),
    Resize(usize, u8),
    Truncate(usize),
    Splice(usize, usize, Vec<u8>),
    Write(usize, u8),
    /// Keep a clone (a snapshot's hold): later edits must not reach it.
    Hold,
    /// Drop the oldest held clone.
    Release,
}

fn edit() -> impl Strategy<Value = Edit> {
    let bytes = proptest::collection::vec(any::<u8>(), 0..40);
    prop_oneof![
        bytes.clone().prop_map(Edit::Extend),
        (0usize..120, any::<u8>()).prop_map(|(n, f)| Edit::Resize(n, f)),
        (0usize..120).prop_map(Edit::Truncate),
        (0usize..100, 0usize..100, bytes).prop_map(|(a, b, w)| Edit::Splice(a, b, w)),
        (0usize..100, any::<u8>()).prop_map(|(i, b)| Edit::Write(i, b)),
        Just(Edit::Hold),
        Just(Edit::Release),
    ]
}

/// Edits per case: fewer under Miri, which runs each about a thousand times slower (the cases
/// still cover both forms' every method; `ci/miri.sh` also lowers the case count).
const EDITS: usize = if cfg!(miri) { 8 } else { 40 };

proptest! {
    /// Every edit of a `SharedBytes` equals the same edit of a `Vec<u8>`; every clone taken
    /// along the way keeps the bytes it had (copy-on-write); and when all are dropped, every
    /// block was freed exactly once.
    #[test]
    fn shared_bytes_edits_equal_a_vec_and_never_reach_a_clone(
        start in proptest::collection::vec(any::<u8>(), 0..60),
        edits in proptest::collection::vec(edit(), 0..EDITS),
    ) {
        let before = live();
        {
            let mut s = SharedBytes::from_slice(&start);
            let mut model = start.clone();
            let mut held: Vec<(SharedBytes, Vec<u8>)> = Vec::new();
            for e in &edits {
                match e.clone() {
                    Edit::Extend(b) => {
                        s.extend_from_slice(&b);
                        model.extend_from_slice(&b);
                    }
                    Edit::Resize(n, f) => {
                        s.resize(n, f);
                        model.resize(n, f);
                    }
                    Edit::Truncate(n) => {
                        s.truncate(n);
                        model.truncate(n);
                    }
                    Edit::Splice(a, b, w) => {
                        let (a, b) = (a.min(model.len()), b.min(model.len()));
                        let (a, b) = (a.min(b), a.max(b));
                        s.splice(a..b, &w);
                        model.splice(a..b, w);
                    }
                    Edit::Write(i, b) => {
                        if i < model.len() {
                            s.as_mut_slice()[i] = b;
                            model[i] = b;
                        }
                    }
                    Edit::Hold => held.push((s.clone(), model.clone())),
                    Edit::Release => {
                        if !held.is_empty() {
                            held.remove(0);
                        }
                    }
                }
                prop_assert_eq!(&*s, &model[..]);
                prop_assert!(s.capacity() >= s.len());
                for (c, m) in &held {
                    prop_assert_eq!(&**c, &m[..]);
                }
                prop_assert_eq!(s.cmp(&SharedBytes::from_slice(&start)), model.cmp(&start));
                prop_assert_eq!(h(&s), h(&model[..]));
            }
        }
        prop_assert_eq!(live(), before, "leaked or freed twice");
    }
}

#[test]
fn shared_bytes_allocate_once_per_block_and_share_on_clone() {
    let before = live();
    let a = SharedBytes::from_slice(&[5u8; 100]);
    assert_eq!(live() - before, 1);
    let clones: Vec<SharedBytes> = (0..10).map(|_| a.clone()).collect();
    assert_eq!(
        live() - before,
        2,
        "clones share the block (the Vec is the other allocation)"
    );
    let empty = SharedBytes::from_slice(b"");
    let e2 = empty.clone();
    assert_eq!(live() - before, 2, "the empty string never allocates");
    drop((clones, empty, e2));
    assert_eq!(live() - before, 1);
    drop(a);
    assert_eq!(live(), before);
}

#[test]
fn arc_or_bytes_frees_each_side_once() {
    use std::sync::Arc;
    let before = live();
    {
        let arc = ArcOrBytes::from_arc(Arc::new(vec![1u64; 8]));
        let bytes = ArcOrBytes::<Vec<u64>>::from_bytes(SharedBytes::from_slice(&[9; 64]));
        let (a2, b2) = (arc.clone(), bytes.clone());
        let (mut a3, mut b3) = (arc.clone(), bytes.clone());
        match a3.get_mut() {
            Mut::Arc(v) => v.push(2),
            Mut::Bytes(_) => unreachable!(),
        }
        if let Mut::Bytes(b) = b3.get_mut() {
            b.as_mut_slice()[0] = 1;
        }
        assert!(matches!(arc.get(), Ref::Arc(v) if v.len() == 8));
        assert!(matches!(a3.get(), Ref::Arc(v) if v.len() == 9));
        assert!(matches!(bytes.get(), Ref::Bytes(b) if b[0] == 9));
        assert!(matches!(b3.get(), Ref::Bytes(b) if b[0] == 1));
        drop((a2, b2));
        assert!(matches!(arc.into_unpacked(), Unpacked::Arc(_)));
    }
    assert_eq!(live(), before, "leaked or freed twice");
}

/// Handles cloned, written and dropped on several threads at once: each thread's copy-on-write
/// leaves the others' bytes alone. (Allocations are counted per thread above, so this one checks
/// contents; Miri's leak and data-race checks cover the frees, `ci/miri.sh`.)
#[test]
fn shared_handles_cross_threads() {
    use std::sync::Arc;
    let s = SharedBytes::from_slice(b"base");
    let v = ArcOrBytes::from_arc(Arc::new(7u64));
    let threads: Vec<_> = (0..4u8)
        .map(|i| {
            let (mut s, mut v) = (s.clone(), v.clone());
            std::thread::spawn(move || {
                s.extend_from_slice(&[i]);
                if let Mut::Arc(n) = v.get_mut() {
                    *n += u64::from(i);
                }
                (
                    s.to_vec(),
                    matches!(v.get(), Ref::Arc(n) if *n == 7 + u64::from(i)),
                )
            })
        })
        .collect();
    for (i, t) in threads.into_iter().enumerate() {
        let (bytes, ok) = t.join().unwrap();
        assert_eq!(bytes, [b'b', b'a', b's', b'e', i as u8]);
        assert!(ok);
    }
    assert_eq!(&*s, b"base");
    assert!(matches!(v.get(), Ref::Arc(7)));
    assert!(!s.is_shared() && !v.is_shared());
}
