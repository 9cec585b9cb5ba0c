//! Where a write's time goes: the stall attribution of the latency harness (issue 19).
//!
//! Problem: a write that takes a millisecond while a snapshot runs may have waited for the
//! snapshot (a shard lock the worker holds for its batch, the all-shards barrier, the observer's
//! hand-off or forced visit, a copy-on-write of a value the worker holds, the delta capture) or
//! for something else (another writer's lock, the OS running another thread on its core). "No
//! write >= 1 ms caused by the snapshot" can only be checked when every slow write names its
//! cause.
//!
//! # How
//! While [`enable`]d, the write path adds the time it spends at each of those points to
//! per-thread accumulators ([`WriteTimes`]); the caller reads and resets them after each command
//! with [`take`] and compares them with the command's wall and CPU time. The points:
//! * **shard locks** ([`lock_shard`]): a `try_lock` first, so an uncontended lock costs nothing
//!   more; when it fails the wait is timed and charged to whoever holds the shard as far as the
//!   keyspace knows ([`Holder`]: the snapshot worker marks the shards it locks through
//!   [`crate::Keyspace::with_shard`] inside its [`snapshot_worker_scope`], and
//!   [`crate::Keyspace::with_all_shards`] marks every shard as held by a barrier);
//! * **observer calls** (`before_write`, `force_visit`: the point-in-time pre-image hand-off and
//!   the converging forced visit), **delta capture** (`captured`);
//! * **copy-on-write**: `Arc::make_mut` on a value someone else also holds.
//!
//! Disabled (the default) it costs one relaxed load per lock and per observer call. The clock
//! reads happen only on a contended lock, on observer calls (which exist only while a snapshot
//! runs) and on shared values.
//!
//! The holder byte is also read to decide how to wait, whether or not the accounting is on: a
//! command that finds a shard held by the snapshot worker spins for it ([`spin_for_worker`])
//! instead of parking, because the worker's holds are a few buckets long and a parked thread's
//! wake-up was the largest part of the snapshot phases' tail.

use std::cell::Cell;
use std::time::Instant;

use forkless_sync::atomic::{AtomicU8, Ordering};
use forkless_sync::{Mutex, MutexGuard};

// A measurement switch, not part of any protocol between threads (a stale read only records or
// skips one measurement): a std atomic, because a `static` needs a `const` constructor, which
// loom's atomics (under `--cfg forkless_loom`) do not have.
static ENABLED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

thread_local! {
    static TIMES: Cell<WriteTimes> = const { Cell::new(WriteTimes::ZERO) };
    static WORKER: Cell<bool> = const { Cell::new(false) };
}

/// Nanoseconds one thread spent at each attributed point since the last [`take`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WriteTimes {
    /// Waiting for a shard lock the snapshot worker held (its walk batch).
    pub lock_worker_ns: u64,
    /// Waiting for a shard lock held by an all-shards barrier (snapshot start/end, or a
    /// whole-keyspace operation).
    pub lock_barrier_ns: u64,
    /// Waiting for a shard lock another command held.
    pub lock_other_ns: u64,
    /// In the snapshot observer before a write (pre-image hand-off, forced visit).
    pub handoff_ns: u64,
    /// Copying a value the snapshot (or another holder) still shares.
    pub cow_ns: u64,
    /// Handing the command's effects to the snapshot's delta buffer.
    pub capture_ns: u64,
}

impl WriteTimes {
    const ZERO: WriteTimes = WriteTimes {
        lock_worker_ns: 0,
        lock_barrier_ns: 0,
        lock_other_ns: 0,
        handoff_ns: 0,
        cow_ns: 0,
        capture_ns: 0,
    };

    /// Time spent waiting for locks, any holder.
    pub fn lock_ns(&self) -> u64 {
        self.lock_worker_ns + self.lock_barrier_ns + self.lock_other_ns
    }

    /// Add `o`'s times to these (sums over many writes).
    pub fn add(&mut self, o: &WriteTimes) {
        self.lock_worker_ns += o.lock_worker_ns;
        self.lock_barrier_ns += o.lock_barrier_ns;
        self.lock_other_ns += o.lock_other_ns;
        self.handoff_ns += o.handoff_ns;
        self.cow_ns += o.cow_ns;
        self.capture_ns += o.capture_ns;
    }
}

/// Who holds a shard, as far as the keyspace knows (one byte per shard).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Holder {
    /// A command (or nobody).
    Command = 0,
    /// The snapshot worker's walk.
    Worker = 1,
    /// An all-shards barrier.
    Barrier = 2,
}

/// Turn the accounting on or off for every thread (the harness turns it on for a run).
pub fn enable(on: bool) {
    ENABLED.store(on, std::sync::atomic::Ordering::Relaxed);
}

/// True while the accounting is on.
pub fn enabled() -> bool {
    ENABLED.load(std::sync::atomic::Ordering::Relaxed)
}

/// This thread's times since the last call (and reset them).
pub fn take() -> WriteTimes {
    TIMES.with(|t| t.replace(WriteTimes::ZERO))
}

/// Mark the calling thread as the snapshot worker until the returned guard drops: the shards
/// it locks through `Keyspace::with_shard` meanwhile are shown as held by the worker.
pub fn snapshot_worker_scope() -> WorkerScope {
    WorkerScope {
        was: WORKER.with(|w| w.replace(true)),
    }
}

/// See [`snapshot_worker_scope`].
#[derive(Debug)]
pub struct WorkerScope {
    was: bool,
}

impl Drop for WorkerScope {
    fn drop(&mut self) {
        WORKER.with(|w| w.set(self.was));
    }
}

pub(crate) fn is_snapshot_worker() -> bool {
    WORKER.with(Cell::get)
}

fn add(f: impl FnOnce(&mut WriteTimes, u64), since: Instant) {
    let ns = since.elapsed().as_nanos() as u64;
    TIMES.with(|t| {
        let mut v = t.get();
        f(&mut v, ns);
        t.set(v);
    });
}

/// Lock `m` (shard `holder`'s mutex). A shard the snapshot worker holds is waited for by
/// spinning ([`spin_for_worker`]); with the accounting on, a contended wait is charged to the
/// holder.
pub(crate) fn lock_shard<'a, T>(m: &'a Mutex<T>, holder: &AtomicU8) -> MutexGuard<'a, T> {
    if forkless_sync::LOOM {
        // The models check the snapshot protocol, not waits: the plain lock, no more
        // operations for loom to interleave.
        return m.lock();
    }
    if let Some(g) = m.try_lock() {
        return g;
    }
    let who = holder.load(Ordering::Relaxed);
    let t0 = enabled().then(Instant::now);
    let g = if who == Holder::Worker as u8 {
        spin_for_worker(m, holder)
    } else {
        m.lock()
    };
    if let Some(t0) = t0 {
        add(
            |v, ns| match who {
                x if x == Holder::Worker as u8 => v.lock_worker_ns += ns,
                x if x == Holder::Barrier as u8 => v.lock_barrier_ns += ns,
                _ => v.lock_other_ns += ns,
            },
            t0,
        );
    }
    g
}

/// Longest a command spins for a shard the snapshot worker holds before it parks.
const WORKER_SPIN: std::time::Duration = std::time::Duration::from_micros(50);

/// Wait for a shard the snapshot worker holds by spinning, then park.
///
/// The worker holds a shard for a few buckets (`DEFAULT_BATCH_BUCKETS`: about a microsecond),
/// while a parked thread's wake-up on a busy machine takes tens of microseconds: with the
/// mutex's own short spin a writer that found the worker's hold parked, and its wake-up became
/// the tail of the snapshot phase (benches/README.md, "What the slowest writes wait for"). So
/// the writer spins, re-trying the lock (a read while it is held: no cache-line traffic), for
/// as long as the worker still holds the shard and at most [`WORKER_SPIN`]: a worker
/// descheduled inside its hold costs the writer that much CPU before it parks as before.
fn spin_for_worker<'a, T>(m: &'a Mutex<T>, holder: &AtomicU8) -> MutexGuard<'a, T> {
    let start = Instant::now();
    loop {
        for _ in 0..32 {
            std::hint::spin_loop();
        }
        if let Some(g) = m.try_lock() {
            return g;
        }
        if holder.load(Ordering::Relaxed) != Holder::Worker as u8 || start.elapsed() >= WORKER_SPIN
        {
            return m.lock();
        }
    }
}

/// Run `f` (an observer call before a write), charging its time to the hand-off.
pub(crate) fn handoff<R>(f: impl FnOnce() -> R) -> R {
    timed(f, |v, ns| v.handoff_ns += ns)
}

/// Run `f` (the delta capture), charging its time to the capture.
pub(crate) fn capture<R>(f: impl FnOnce() -> R) -> R {
    timed(f, |v, ns| v.capture_ns += ns)
}

/// Run `f` (a copy-on-write of a shared value), charging its time to the copy.
pub(crate) fn cow<R>(f: impl FnOnce() -> R) -> R {
    timed(f, |v, ns| v.cow_ns += ns)
}

fn timed<R>(f: impl FnOnce() -> R, charge: impl FnOnce(&mut WriteTimes, u64)) -> R {
    if !enabled() {
        return f();
    }
    let t0 = Instant::now();
    let r = f();
    add(charge, t0);
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_contended_lock_is_charged_to_its_holder() {
        enable(true);
        let m = std::sync::Arc::new(Mutex::new(0u32));
        let holder = std::sync::Arc::new(AtomicU8::new(Holder::Worker as u8));
        let g = m.lock();
        let (m2, h2) = (m.clone(), holder.clone());
        let t = std::thread::spawn(move || {
            let _ = take();
            drop(lock_shard(&m2, &h2));
            take()
        });
        std::thread::sleep(std::time::Duration::from_millis(30));
        drop(g);
        let times = t.join().expect("thread");
        assert!(times.lock_worker_ns >= 20_000_000, "{times:?}");
        assert_eq!(times.lock_other_ns + times.lock_barrier_ns, 0);
        // Uncontended: nothing charged.
        drop(lock_shard(&m, &holder));
        assert_eq!(take().lock_ns(), 0);
    }
}
