//! The cause of every write >= 1 ms (issue 19: "the harness names the cause of every write >= 1
//! ms ... so that 'caused by the snapshot' is measured, not guessed").
//!
//! With `RunConfig::attribute` each writer reads, around every write, its thread's CPU time
//! (`CLOCK_THREAD_CPUTIME_ID`) and the keyspace's per-thread accounting
//! ([`forkless_keyspace::trace`]: lock waits by holder, observer hand-off, copy-on-write, delta
//! capture). A write of at least [`crate::hist::STALL_NS`] gets one [`Cause`] ([`classify`]):
//!
//! * **descheduled** when at least half of it was off the CPU for no lock: the OS ran something
//!   else on the writer's core (on 2 cores with the snapshot worker and a busy machine, the
//!   usual case);
//! * otherwise the largest of: lock wait behind the snapshot worker's batch, behind an
//!   all-shards barrier, behind another writer; the observer's hand-off / forced visit; a
//!   copy-on-write; the delta capture; and the rest of the on-CPU time (the command itself,
//!   allocation, cache misses).
//!
//! The first five are the snapshot's ([`Cause::is_snapshot`]). Cost: two `clock_gettime`
//! system calls per write (~0.3 us), so attributed runs are slower than plain ones: compare
//! their ratios, not their throughput with a plain run.

use forkless_keyspace::trace::WriteTimes;

/// Why a slow write was slow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cause {
    /// Waited for a shard the snapshot worker held (one walk batch).
    LockWorker,
    /// Waited behind an all-shards barrier (snapshot start or end).
    LockBarrier,
    /// In the snapshot observer (point-in-time pre-image hand-off, converging forced visit).
    Handoff,
    /// Copied a value the snapshot still held.
    CopyOnWrite,
    /// Handed its effects to the snapshot's delta buffer.
    Capture,
    /// Waited for a shard another command held (or a thread the keyspace does not know).
    LockWriter,
    /// Off the CPU without waiting for a lock: the OS ran another thread.
    Descheduled,
    /// On the CPU in the command itself (work, allocation, cache misses).
    OnCpu,
}

impl Cause {
    /// Every cause, in report order.
    pub const ALL: [Cause; 8] = [
        Cause::LockWorker,
        Cause::LockBarrier,
        Cause::Handoff,
        Cause::CopyOnWrite,
        Cause::Capture,
        Cause::LockWriter,
        Cause::Descheduled,
        Cause::OnCpu,
    ];

    /// Its name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Cause::LockWorker => "lock_worker",
            Cause::LockBarrier => "lock_barrier",
            Cause::Handoff => "handoff",
            Cause::CopyOnWrite => "copy_on_write",
            Cause::Capture => "delta_capture",
            Cause::LockWriter => "lock_other",
            Cause::Descheduled => "descheduled",
            Cause::OnCpu => "on_cpu",
        }
    }

    /// True for the causes that are the snapshot's.
    pub fn is_snapshot(self) -> bool {
        matches!(
            self,
            Cause::LockWorker
                | Cause::LockBarrier
                | Cause::Handoff
                | Cause::CopyOnWrite
                | Cause::Capture
        )
    }

    fn index(self) -> usize {
        Cause::ALL
            .iter()
            .position(|&c| c == self)
            .unwrap_or_default()
    }
}

/// Slow writes counted by cause (index: [`Cause::ALL`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Causes(pub [u64; 8]);

impl Causes {
    /// Count one write of cause `c`.
    pub fn add(&mut self, c: Cause) {
        self.0[c.index()] += 1;
    }

    /// Add another count.
    pub fn merge(&mut self, o: &Causes) {
        for (a, b) in self.0.iter_mut().zip(o.0) {
            *a += b;
        }
    }

    /// The count of cause `c`.
    pub fn get(&self, c: Cause) -> u64 {
        self.0[c.index()]
    }

    /// Slow writes caused by the snapshot.
    pub fn by_snapshot(&self) -> u64 {
        Cause::ALL
            .iter()
            .filter(|c| c.is_snapshot())
            .map(|&c| self.get(c))
            .sum()
    }

    /// A JSON object `{cause: count}`.
    pub fn to_json(&self) -> serde_json::Value {
        let mut m = serde_json::Map::new();
        for c in Cause::ALL {
            m.insert(c.name().into(), self.get(c).into());
        }
        m.insert("by_snapshot".into(), self.by_snapshot().into());
        serde_json::Value::Object(m)
    }
}

/// The cause of a write that took `wall_ns`, `cpu_ns` of it on the CPU, with the keyspace's
/// accounting `t` (see the module docs).
pub fn classify(wall_ns: u64, cpu_ns: u64, t: &WriteTimes) -> Cause {
    let off_cpu = wall_ns.saturating_sub(cpu_ns);
    let descheduled = off_cpu.saturating_sub(t.lock_ns());
    if descheduled.saturating_mul(2) >= wall_ns {
        return Cause::Descheduled;
    }
    let snapshot_work = t.handoff_ns + t.cow_ns + t.capture_ns;
    let on_cpu = cpu_ns.saturating_sub(snapshot_work);
    [
        (Cause::LockWorker, t.lock_worker_ns),
        (Cause::LockBarrier, t.lock_barrier_ns),
        (Cause::Handoff, t.handoff_ns),
        (Cause::CopyOnWrite, t.cow_ns),
        (Cause::Capture, t.capture_ns),
        (Cause::LockWriter, t.lock_other_ns),
        (Cause::Descheduled, descheduled),
        (Cause::OnCpu, on_cpu),
    ]
    .into_iter()
    .max_by_key(|&(_, ns)| ns)
    .map_or(Cause::OnCpu, |(c, _)| c)
}

/// This thread's CPU time, nanoseconds (`CLOCK_THREAD_CPUTIME_ID`).
pub fn thread_cpu_ns() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    (t.tv_sec as u64).saturating_mul(1_000_000_000) + t.tv_nsec as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    #[test]
    fn off_cpu_time_without_a_lock_is_the_os() {
        let t = WriteTimes::default();
        assert_eq!(classify(2 * MS, MS / 2, &t), Cause::Descheduled);
    }

    #[test]
    fn the_largest_snapshot_component_names_the_cause() {
        let t = WriteTimes {
            lock_worker_ns: 2 * MS,
            ..WriteTimes::default()
        };
        // 2 ms off the CPU, all of it waiting for the worker's shard.
        assert_eq!(classify(2 * MS + 100, 100, &t), Cause::LockWorker);
        let t = WriteTimes {
            cow_ns: 3 * MS / 2,
            ..WriteTimes::default()
        };
        assert_eq!(classify(2 * MS, 2 * MS, &t), Cause::CopyOnWrite);
        assert!(Cause::CopyOnWrite.is_snapshot());
        let t = WriteTimes {
            lock_other_ns: 2 * MS,
            ..WriteTimes::default()
        };
        assert_eq!(classify(2 * MS, 0, &t), Cause::LockWriter);
        assert!(!Cause::LockWriter.is_snapshot());
        // All on the CPU, nothing attributed: the command itself.
        assert_eq!(
            classify(2 * MS, 2 * MS, &WriteTimes::default()),
            Cause::OnCpu
        );
    }

    #[test]
    fn thread_cpu_time_advances_with_work() {
        let a = thread_cpu_ns();
        let mut x = 0u64;
        for i in 0..5_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        assert!(thread_cpu_ns() > a);
    }
}
