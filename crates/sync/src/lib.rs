//! The one place concurrency primitives come from.
//!
//! Every concurrent crate of forkless imports `Mutex`, `RwLock`, `Arc`, atomics, `thread` and `UnsafeCell`
//! from here, never from `std::sync` or `parking_lot` directly (clippy.toml enforces it). A normal
//! build maps them to `parking_lot` and `std`; a build with `--cfg forkless_loom` and the `loom`
//! feature maps them to loom's model-checked versions, so the loom-tests crate checks the real
//! protocol code (the pattern of tokio's `src/loom/mod.rs` and crossbeam's `primitive` module).
//!
//! The API is the intersection of both worlds: `Mutex::lock` returns the guard directly (loom's
//! poisoning is unwrapped: a panic while holding a lock is a bug that already failed the model).
//! `Arc` is always `std`'s: reference counts are not what the models check (locks, atomics and
//! thread interleavings are), and values need `Arc::make_mut` and unsized `Arc<dyn Trait>`.
#![allow(clippy::disallowed_types)]
#![forbid(unsafe_code)]

#[cfg(all(forkless_loom, feature = "loom"))]
mod imp {
    pub use loom::sync::atomic;
    pub use loom::thread;
    /// Reference counting is not part of the modeled protocol (values, trait objects, shared
    /// state handles): `std`'s `Arc` even under loom, so `Arc::make_mut` and `Arc<dyn Trait>`
    /// work in the model.
    pub use std::sync::Arc;

    /// A mutual-exclusion lock (loom model).
    #[derive(Debug, Default)]
    pub struct Mutex<T>(loom::sync::Mutex<T>);
    /// Guard of [`Mutex`].
    pub type MutexGuard<'a, T> = loom::sync::MutexGuard<'a, T>;

    impl<T> Mutex<T> {
        /// A new unlocked mutex.
        pub fn new(v: T) -> Self {
            Mutex(loom::sync::Mutex::new(v))
        }
        /// Lock, blocking.
        pub fn lock(&self) -> MutexGuard<'_, T> {
            self.0.lock().expect("poisoned lock in loom model")
        }
        /// Lock if free.
        pub fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
            self.0.try_lock().ok()
        }
    }

    /// A reader-writer lock (loom model).
    #[derive(Debug, Default)]
    pub struct RwLock<T>(loom::sync::RwLock<T>);
    /// Shared guard of [`RwLock`].
    pub type RwLockReadGuard<'a, T> = loom::sync::RwLockReadGuard<'a, T>;
    /// Exclusive guard of [`RwLock`].
    pub type RwLockWriteGuard<'a, T> = loom::sync::RwLockWriteGuard<'a, T>;

    impl<T> RwLock<T> {
        /// A new unlocked lock.
        pub fn new(v: T) -> Self {
            RwLock(loom::sync::RwLock::new(v))
        }
        /// Lock shared, blocking.
        pub fn read(&self) -> RwLockReadGuard<'_, T> {
            self.0.read().expect("poisoned lock in loom model")
        }
        /// Lock exclusive, blocking.
        pub fn write(&self) -> RwLockWriteGuard<'_, T> {
            self.0.write().expect("poisoned lock in loom model")
        }
    }

    /// Condition variable (loom model).
    #[derive(Debug, Default)]
    pub struct Condvar(loom::sync::Condvar);
    impl Condvar {
        /// A new condition variable.
        pub fn new() -> Self {
            Condvar(loom::sync::Condvar::new())
        }
        /// Wait, releasing the guard's lock. The guard is replaced by the reacquired one.
        pub fn wait<'a, T>(&self, guard: &mut Option<MutexGuard<'a, T>>) {
            let g = guard.take().expect("guard present");
            *guard = Some(self.0.wait(g).expect("poisoned lock in loom model"));
        }
        /// Wake one waiter.
        pub fn notify_one(&self) {
            self.0.notify_one()
        }
        /// Wake all waiters.
        pub fn notify_all(&self) {
            self.0.notify_all()
        }
    }

    /// `UnsafeCell` with loom's access tracking.
    pub use loom::cell::UnsafeCell;

    /// Yield hint for spin loops (a loom scheduling point).
    pub fn spin_loop() {
        loom::thread::yield_now();
    }

    /// A `Copy` value read and replaced whole (loom model: a mutex, what crossbeam's seqlock
    /// amounts to for a reader that meets a writer).
    #[derive(Debug, Default)]
    pub struct AtomicCell<T>(Mutex<T>);
    impl<T: Copy> AtomicCell<T> {
        /// A cell holding `v`.
        pub fn new(v: T) -> Self {
            AtomicCell(Mutex::new(v))
        }
        /// A copy of the value.
        pub fn load(&self) -> T {
            *self.0.lock()
        }
        /// Replace the value.
        pub fn store(&self, v: T) {
            *self.0.lock() = v;
        }
    }
}

#[cfg(not(all(forkless_loom, feature = "loom")))]
mod imp {
    pub use std::sync::atomic;
    pub use std::sync::Arc;
    /// A cell written once (no loom twin: only crates never model-checked use it, e.g. the
    /// server's process-wide allocator name).
    pub use std::sync::OnceLock;
    /// `Arc`'s weak reference (no loom twin: only crates never model-checked use it, e.g. the
    /// server's keyspace-event sink, which must not keep the server alive).
    pub use std::sync::Weak;
    pub use std::thread;

    /// A mutual-exclusion lock (parking_lot).
    pub type Mutex<T> = parking_lot::Mutex<T>;
    /// Guard of [`Mutex`].
    pub type MutexGuard<'a, T> = parking_lot::MutexGuard<'a, T>;

    /// A reader-writer lock (parking_lot).
    pub type RwLock<T> = parking_lot::RwLock<T>;
    /// Shared guard of [`RwLock`].
    pub type RwLockReadGuard<'a, T> = parking_lot::RwLockReadGuard<'a, T>;
    /// Exclusive guard of [`RwLock`].
    pub type RwLockWriteGuard<'a, T> = parking_lot::RwLockWriteGuard<'a, T>;

    /// Condition variable (parking_lot), with the same `Option<guard>` calling convention as the
    /// loom build.
    #[derive(Debug, Default)]
    pub struct Condvar(parking_lot::Condvar);
    impl Condvar {
        /// A new condition variable.
        pub fn new() -> Self {
            Condvar(parking_lot::Condvar::new())
        }
        /// Wait, releasing the guard's lock while blocked.
        pub fn wait<T>(&self, guard: &mut Option<MutexGuard<'_, T>>) {
            let g = guard.as_mut().expect("guard present");
            self.0.wait(g);
        }
        /// Wake one waiter.
        pub fn notify_one(&self) {
            self.0.notify_one();
        }
        /// Wake all waiters.
        pub fn notify_all(&self) {
            self.0.notify_all();
        }
    }

    /// `UnsafeCell` with the `with`/`with_mut` API of loom's.
    #[derive(Debug, Default)]
    pub struct UnsafeCell<T>(std::cell::UnsafeCell<T>);
    impl<T> UnsafeCell<T> {
        /// Wrap a value.
        pub const fn new(v: T) -> Self {
            UnsafeCell(std::cell::UnsafeCell::new(v))
        }
        /// Run `f` with a shared raw pointer to the value.
        pub fn with<R>(&self, f: impl FnOnce(*const T) -> R) -> R {
            f(self.0.get())
        }
        /// Run `f` with a mutable raw pointer to the value.
        pub fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
            f(self.0.get())
        }
    }

    /// Yield hint for spin loops.
    pub fn spin_loop() {
        std::hint::spin_loop();
    }

    /// A `Copy` value read and replaced whole, with no lock on the read path: crossbeam's cell,
    /// a plain atomic for values of a machine word or less, else a seqlock (a read copies the
    /// value and retries only if a write ran meanwhile; writes take the lock). For settings
    /// read on every command and replaced by CONFIG SET, e.g. the encoding thresholds.
    pub use crossbeam_utils::atomic::AtomicCell;
}

pub use imp::*;

/// True when built as a loom model.
pub const LOOM: bool = cfg!(all(forkless_loom, feature = "loom"));

#[cfg(all(test, not(all(forkless_loom, feature = "loom"))))]
mod tests {
    use super::AtomicCell;

    /// Six words, too big for an atomic: the cell must never hand out half of one write and half
    /// of another.
    #[derive(Clone, Copy, Debug, PartialEq)]
    struct Wide([u64; 6]);

    #[test]
    fn an_atomic_cell_is_read_whole_while_written() {
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::time::{Duration, Instant};
        let cell = AtomicCell::new(Wide([0; 6]));
        let (a, b) = (Wide([1; 6]), Wide([u64::MAX; 6]));
        let stop = AtomicBool::new(false);
        let mut seen = [0u32; 2];
        // The writer alternates until the reader has seen each value many times, so the reads
        // overlap the writes however the threads are scheduled (a fixed number of writes could
        // all happen while a loaded machine keeps the reader off the CPU); the deadline only
        // bounds a broken cell.
        let deadline = Instant::now() + Duration::from_secs(60);
        std::thread::scope(|s| {
            s.spawn(|| {
                let mut i = 0u64;
                while !stop.load(Ordering::Acquire) {
                    cell.store(if i.is_multiple_of(2) { a } else { b });
                    i += 1;
                }
            });
            while (seen[0] < 10_000 || seen[1] < 10_000) && Instant::now() < deadline {
                let v = cell.load();
                assert!(v == a || v == b || v == Wide([0; 6]), "torn read {v:?}");
                if v != Wide([0; 6]) {
                    seen[usize::from(v == b)] += 1;
                }
            }
            stop.store(true, Ordering::Release);
        });
        assert!(seen[0] >= 10_000 && seen[1] >= 10_000, "reads {seen:?}");
    }
}
