//! The log an engine appends to, attached and detached at run time (`CONFIG SET appendonly`).
//!
//! Problem: the persistence backend used to be fixed at open, but Redis users (and Redis's own
//! test suite) turn the AOF on and off on a running server. The propagation sink runs on every
//! write, under the writer's shard locks, so the switch must cost writers nothing while nothing
//! changes and must cut the command stream at a point a snapshot agrees with.
//!
//! State (one [`LogSlot`] per engine, shared by the sink and the engine's threads):
//!
//! ```text
//!   backend   Snapshots | Aof(dir) | Segments(dir)    what SAVE / BGREWRITEAOF / INFO act on
//!   writer    None | Some(w)                          where the sink appends (the AOF's or the
//!                                                     segments' writer; during an AOF start the
//!                                                     new writer before its directory is live)
//!   gen       +1 at every writer change               tickets name the writer they belong to
//!   retired   the writer replaced last, with its gen  a ticket of it is waited for there
//!   attached  == writer.is_some(), one atomic          the sink's fast path (no lock when off)
//! ```
//!
//! Callers:
//! - the sink (`engine::Fanout`): `append`, under the writer's shard locks;
//! - `CONFIG SET appendonly yes` (`engine::Core::start_aof`): `attach(Some(w))` inside the start
//!   barrier of the snapshot that becomes the new base (every shard locked), then
//!   `set_backend(Aof)` once the base is installed; `attach(None)` if the start fails;
//! - `CONFIG SET appendonly no` (`engine::Core::stop_aof`): `detach_aof`, then the old writer is
//!   closed (flush, fsync) with no lock held;
//! - durability tickets and the notifier: `writer_of(gen)`, `current`.
//!
//! Hand-off rule: a write is logged by the writer attached when it propagates. Because attach
//! happens with every shard lock held and writes propagate under their shard locks, each write
//! is entirely before the cut (in the snapshot, not in the new log) or entirely after it.
//!
//! Lock order: shard locks -> `LogSlot::state` -> the writer's own mutexes. `Core::acks` is
//! never taken while holding the slot.

use forkless_aof::{AofDir, AofWriter};
use forkless_keyspace::Propagated;
use forkless_segments::SegmentDir;
use forkless_sync::atomic::{AtomicBool, Ordering};
use forkless_sync::{Arc, RwLock};

use forkless_aof::FsyncPolicy;

/// The persistence backend.
#[derive(Clone)]
pub(crate) enum Backend {
    /// Snapshots only (`appendonly no`).
    Snapshots,
    /// A multi-part AOF directory.
    Aof(Arc<AofDir>),
    /// A segments directory (`persistence segments`, fixed at open).
    Segments(Arc<SegmentDir>),
}

#[derive(Clone)]
struct LogState {
    backend: Backend,
    writer: Option<Arc<AofWriter>>,
    gen: u64,
    retired: Option<(u64, Arc<AofWriter>)>,
}

/// What one append through the sink left for the executing thread: the writer's generation,
/// the ticket (or the error text), and whether that writer fsyncs every write.
pub(crate) type Appended = (u64, std::result::Result<u64, String>, bool);

/// See the module doc.
pub(crate) struct LogSlot {
    attached: AtomicBool,
    state: RwLock<LogState>,
}

impl LogSlot {
    pub(crate) fn new(backend: Backend, writer: Option<Arc<AofWriter>>) -> LogSlot {
        LogSlot {
            attached: AtomicBool::new(writer.is_some()),
            state: RwLock::new(LogState {
                backend,
                writer,
                gen: 1,
                retired: None,
            }),
        }
    }

    /// The backend now.
    pub(crate) fn backend(&self) -> Backend {
        self.state.read().backend.clone()
    }

    /// The writer now.
    pub(crate) fn writer(&self) -> Option<Arc<AofWriter>> {
        self.state.read().writer.clone()
    }

    /// The writer now with its generation.
    pub(crate) fn current(&self) -> (u64, Option<Arc<AofWriter>>) {
        let s = self.state.read();
        (s.gen, s.writer.clone())
    }

    /// The writer of generation `gen` (the current or the last retired one).
    pub(crate) fn writer_of(&self, gen: u64) -> Option<Arc<AofWriter>> {
        let s = self.state.read();
        if s.gen == gen {
            return s.writer.clone();
        }
        match &s.retired {
            Some((g, w)) if *g == gen => Some(w.clone()),
            _ => None,
        }
    }

    /// The sink's append (under the writer's shard locks): `None` when no log is attached.
    pub(crate) fn append(&self, ops: &[Propagated]) -> Option<Appended> {
        if !self.attached.load(Ordering::Acquire) {
            return None;
        }
        let s = self.state.read();
        let w = s.writer.as_ref()?;
        let r = w.append(ops, None).map_err(|e| e.to_string());
        Some((s.gen, r, w.fsync_policy() == FsyncPolicy::Always))
    }

    /// Replace the writer (see the module doc for when); returns the new generation.
    pub(crate) fn attach(&self, writer: Option<Arc<AofWriter>>) -> u64 {
        let mut s = self.state.write();
        let old = std::mem::replace(&mut s.writer, writer);
        s.gen += 1;
        if let Some(w) = old {
            s.retired = Some((s.gen - 1, w));
        }
        self.attached.store(s.writer.is_some(), Ordering::Release);
        s.gen
    }

    /// Make `backend` the backend (the writer is attached separately).
    pub(crate) fn set_backend(&self, backend: Backend) {
        self.state.write().backend = backend;
    }

    /// `appendonly no`: no writer, snapshots only. Returns the AOF writer that was attached
    /// (the caller closes it, with no lock held).
    pub(crate) fn detach_aof(&self) -> Option<Arc<AofWriter>> {
        let mut s = self.state.write();
        if !matches!(s.backend, Backend::Aof(_)) && s.writer.is_none() {
            return None;
        }
        s.backend = Backend::Snapshots;
        let old = s.writer.take();
        s.gen += 1;
        if let Some(w) = &old {
            s.retired = Some((s.gen - 1, w.clone()));
        }
        self.attached.store(false, Ordering::Release);
        old
    }
}
