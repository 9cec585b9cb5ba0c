//! The state shared by the callers ([`super::AofWriter`]), the writer thread (`thread`) and the
//! fsync thread (`syncer`).
//!
//! # Offsets
//! Three logical stream offsets (bytes since the writer started, across incr files) say how far
//! a byte has come:
//! ```text
//!   0 ........ durable ........ written ........ enqueued
//!   | fsynced   | written, not    | accepted, in the |
//!   |           | yet fsynced     | queue or pending |
//! ```
//! **Invariant: `durable <= written <= enqueued`**, always, under the `state` lock:
//! * `enqueued` grows only in `AofWriter::append`, by the bytes it queues;
//! * `written` grows only on the writer thread, by the bytes a write call took, which were
//!   taken from the queue and so were enqueued before;
//! * `durable` grows only to a value of `written` read *before* the fsync that covers it
//!   (`thread::sync_here`, or the `sync_request` the syncer serves), never past it.
//!
//! A caller's ticket is `enqueued` just after its bytes; under `always` it is acknowledged once
//! `durable >= ticket`. `queued_bytes` is `enqueued - written` (the bounded queue's fill).
//!
//! # Fields: who touches what
//! * callers: `queue`, `queued_bytes`, `enqueued`, `last_db`, `last_ts`, `next_seq` and the
//!   `tail_*` fields (in `append`/`rotate`), `force_sync`, `shutdown`;
//! * the writer thread: `written`, `current_seq`, `current_file`, `postponed_since`,
//!   `closed`, and it starts background fsyncs (`sync_in_progress`, `sync_request`);
//! * the fsync thread: takes `sync_request`, clears `sync_in_progress`;
//! * both threads: `durable`, `error`; everyone: `metrics` (callers count rolls).
//!
//! # Locks
//! `state` (with the `changed` condvar: every change a waiter may be waiting for is followed by
//! `notify_all`), `sync_slot` (the fsync handle of the current file), `syncer` (the fsync
//! thread to unpark; `writer`, the writer thread, is a cell set once at start, so an append
//! takes no lock to wake it). **Lock order: none is ever taken while another is held**: each
//! is locked alone and released before the next (callers drop `state` before unparking). The
//! only lock held across I/O is `sync_slot`, by the fsync thread during an `everysec` fsync;
//! the writer thread replaces the handle at rotation only after `sync_in_progress` cleared, so
//! it never waits behind that fsync. No file I/O happens under `state`.

use std::collections::VecDeque;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use forkless_sync::atomic::{AtomicU8, Ordering};
use forkless_sync::thread::Thread;
use forkless_sync::{Condvar, Mutex, MutexGuard, OnceLock};

use super::options::{AofMetrics, FsyncPolicy, WriterOptions};
use crate::io::SyncHandle;
use crate::position::FileSeq;

/// Which operation failed: a success of the same kind clears the error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ErrKind {
    Write,
    Sync,
    Rotate,
}

/// An element of the queue: encoded bytes, or "switch to this file here".
pub(super) enum Chunk {
    Data(Vec<u8>),
    Rotate { name: String, seq: FileSeq },
}

/// Guarded by [`Shared::state`]; see the module documentation for the invariant and owners.
pub(super) struct State {
    pub(super) queue: VecDeque<Chunk>,
    pub(super) queued_bytes: usize,
    pub(super) enqueued: u64,
    pub(super) written: u64,
    pub(super) durable: u64,
    pub(super) last_db: Option<u32>,
    pub(super) last_ts: i64,
    pub(super) filename: String,
    pub(super) next_seq: FileSeq,
    pub(super) current_seq: FileSeq,
    pub(super) current_file: String,
    /// The file the next enqueued bytes go to (after every queued rotation marker), the logical
    /// offset where it starts in the stream, its length before the writer started (only the
    /// first file, when continuing one), and when it was opened in the stream.
    pub(super) tail_seq: FileSeq,
    pub(super) tail_start: u64,
    pub(super) tail_base: u64,
    pub(super) tail_opened: Instant,
    pub(super) error: Option<(ErrKind, String)>,
    pub(super) shutdown: bool,
    pub(super) closed: bool,
    pub(super) force_sync: u64,
    /// The writer thread is parked with nothing to write: the next append wakes it (an
    /// append to a writer that is writing or lingering does not, see `WriterOptions::linger`).
    pub(super) writer_idle: bool,
    pub(super) sync_in_progress: Option<Instant>,
    pub(super) sync_request: Option<u64>,
    pub(super) postponed_since: Option<Instant>,
    pub(super) metrics: AofMetrics,
}

impl State {
    pub(super) fn err(&self) -> Option<&String> {
        self.error.as_ref().map(|e| &e.1)
    }
    pub(super) fn clear(&mut self, kind: ErrKind) {
        if self.error.as_ref().is_some_and(|e| e.0 == kind) {
            self.error = None;
        }
    }
}

/// Everything the callers and both threads share (one `Arc`).
pub(super) struct Shared {
    pub(super) state: Mutex<State>,
    pub(super) changed: Condvar,
    pub(super) sync_slot: Mutex<Option<Box<dyn SyncHandle>>>,
    pub(super) opts: WriterOptions,
    /// The fsync policy now (`opts.fsync` at start; [`super::AofWriter::set_fsync`] changes it,
    /// as `CONFIG SET appendfsync` does in Redis).
    pub(super) fsync: AtomicU8,
    pub(super) writer: OnceLock<Thread>,
    pub(super) syncer: Mutex<Option<Thread>>,
    pub(super) id: u64,
}

impl Shared {
    pub(super) fn policy(&self) -> FsyncPolicy {
        FsyncPolicy::from_u8(self.fsync.load(Ordering::Relaxed))
    }
}

impl Shared {
    /// Unpark the writer thread (`writer` is set once at start: no lock).
    pub(super) fn wake_writer(&self) {
        if let Some(t) = self.writer.get() {
            t.unpark();
        }
    }
}

pub(super) fn now_unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Bytes of the stream's tail file (what it held at start, plus what was enqueued for it).
pub(super) fn tail_len(st: &State) -> u64 {
    st.tail_base + (st.enqueued - st.tail_start)
}

pub(super) fn record_error(
    shared: &Shared,
    st: &mut MutexGuard<'_, State>,
    kind: ErrKind,
    what: String,
) {
    st.metrics.errors += 1;
    st.error = Some((kind, what));
    shared.changed.notify_all();
}

pub(super) fn unpark(slot: &Mutex<Option<Thread>>) {
    if let Some(t) = slot.lock().as_ref() {
        t.unpark();
    }
}
