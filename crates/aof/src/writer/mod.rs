//! The asynchronous AOF writer: one background thread owns the incr file; callers enqueue the
//! RESP of their writes into a bounded queue and, under `appendfsync always`, wait until their
//! bytes are durable.
//!
//! # Problem
//! Every write must reach the AOF in execution order, with `SELECT` inserted when the database
//! changes (Redis 7.0 `feedAppendOnlyFile`; a new file starts with no database selected) and
//! optional `#TS:<unix secs>` annotations (`genAofTimestampAnnotationIfNeeded`), without making
//! the executing threads do file I/O while they hold shard locks.
//!
//! # Design
//! * Callers encode under the state lock (so the stream order is the enqueue order) and get a
//!   *ticket*: the logical stream offset just past their bytes. Offsets count every byte ever
//!   enqueued, across incr files.
//! * The writer thread takes everything queued, writes it in one call, then applies the policy:
//!   - `always`: fsync on the writer thread, then publish `durable = written`. Writers wait for
//!     `durable >= ticket`; all writes enqueued during one fsync share the next one (group commit).
//!   - `everysec`: at most once per interval a background fsync thread syncs the file (Redis's
//!     `bio` fsync job). While that fsync runs, writing is postponed, for at most `max_postpone`
//!     (2 s); after that the write goes ahead and `delayed_fsyncs` is counted (Redis
//!     `flushAppendOnlyFile`, `aof_delayed_fsync`). Postponed bytes stay queued, so callers feel
//!     it through the bounded queue.
//!   - `no`: never fsync (except at close and rotation).
//! * The queue is bounded in bytes (accepted but not yet written). When full, callers block or
//!   get [`AofError::QueueFull`] ([`WhenFull`]).
//! * On a write or fsync error ([`OnError`]): `Refuse` (default) refuses every new write with
//!   [`AofError::WriterFailed`] (Redis's MISCONF; redb's sticky `PreviousIo`) until a retry
//!   succeeds; `Continue` (cache mode) counts the error and keeps accepting. Either way the
//!   accepted bytes are kept and retried every `retry_interval`, resuming after a partial write
//!   at the file's length, so the file never holds a gap.
//! * [`AofWriter::rotate`] puts a "switch to a new incr file here" marker into the stream and
//!   returns the new file's name at once, without I/O (callable inside a snapshot barrier). The
//!   writer thread later syncs the old file, creates the new one through [`AofStorage`] (which
//!   records it in the manifest) and continues there; the next write starts with `SELECT`.
//!
//! Threads wait on a `Condvar` for state changes; the writer and fsync threads sleep with
//! `thread::park_timeout` and callers unpark them (the `forkless_sync` condvar has no timed wait).
//!
//! # Modules
//! * `options`: the configuration, counters and stream points (plain data).
//! * `state`: the state shared by callers, the writer thread and the fsync thread, with its
//!   invariant (`durable <= written <= enqueued`) and the lock order of its mutexes.
//! * `thread`: the writer thread (take, write, fsync per policy, rotate, sleep).
//! * `syncer`: the `everysec` background fsync thread.
//! * this file: [`AofWriter`], the callers' side (append, wait, position, rotate, close).

mod options;
mod state;
mod syncer;
mod thread;

pub use options::{
    AofMetrics, FileNamer, FsyncPolicy, IoWrapper, OnError, ParseFsyncError, Rotation,
    SecondsClock, WhenFull, WriterOptions,
};

use std::cell::RefCell;
use std::collections::VecDeque;
use std::time::Instant;

use forkless_keyspace::{Propagated, PropagationSink};
use forkless_resp::encode_command_iter;
use forkless_sync::atomic::{AtomicU64, AtomicU8, Ordering};
use forkless_sync::thread::{Builder, JoinHandle};
use forkless_sync::{Arc, Condvar, Mutex, OnceLock};

use crate::error::{AofError, Result};
use crate::io::{AofIo, AofStorage};
use crate::manifest::incr_name;
use crate::position::{FileSeq, LogPosition};

use options::WrappedStorage;
use state::{tail_len, Chunk, Shared, State};

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

thread_local! {
    /// The outcome of this thread's last append through the sink: (writer id, ticket or error).
    static LAST_APPEND: RefCell<Option<(u64, Result<u64>)>> = const { RefCell::new(None) };
    /// The source tag of this thread's writes (see [`AofWriter::with_source_tag`]).
    static SOURCE_TAG: RefCell<Option<Vec<u8>>> = const { RefCell::new(None) };
}

/// The asynchronous AOF writer. See the module documentation.
pub struct AofWriter {
    shared: Arc<Shared>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl std::fmt::Debug for AofWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AofWriter")
            .field("metrics", &self.metrics())
            .finish()
    }
}

impl AofWriter {
    /// Start appending to `io`, the incr file `filename.<seq>.incr.aof` (`current_seq`);
    /// `storage` creates the files of later rotations. A file that already holds data continues
    /// with no database selected (the first write gets `SELECT`).
    pub fn start(
        io: Box<dyn AofIo>,
        storage: Box<dyn AofStorage>,
        filename: &str,
        current_seq: FileSeq,
        opts: WriterOptions,
    ) -> Result<AofWriter> {
        let (io, storage) = match &opts.io_wrapper {
            Some(w) => (
                w(io),
                Box::new(WrappedStorage {
                    inner: storage,
                    wrap: w.clone(),
                }) as Box<dyn AofStorage>,
            ),
            None => (io, storage),
        };
        let handle = io
            .sync_handle()
            .map_err(|e| AofError::io("opening an fsync handle", e))?;
        let initial_len = io
            .len()
            .map_err(|e| AofError::io("reading the file length", e))?;
        let current_file = match &opts.file_namer {
            Some(n) => n(current_seq),
            None => incr_name(filename, current_seq),
        };
        let state = State {
            queue: VecDeque::new(),
            queued_bytes: 0,
            enqueued: 0,
            written: 0,
            durable: 0,
            last_db: None,
            last_ts: 0,
            filename: filename.to_string(),
            next_seq: current_seq + 1,
            current_seq,
            current_file,
            tail_seq: current_seq,
            tail_start: 0,
            tail_base: initial_len,
            tail_opened: Instant::now(),
            error: None,
            shutdown: false,
            closed: false,
            force_sync: 0,
            writer_idle: false,
            sync_in_progress: None,
            sync_request: None,
            postponed_since: None,
            metrics: AofMetrics::default(),
        };
        let shared = Arc::new(Shared {
            state: Mutex::new(state),
            changed: Condvar::new(),
            sync_slot: Mutex::new(Some(handle)),
            fsync: AtomicU8::new(opts.fsync.to_u8()),
            opts,
            writer: OnceLock::new(),
            syncer: Mutex::new(None),
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
        });
        let s1 = shared.clone();
        let w = Builder::new()
            .name("aof-writer".into())
            .spawn(move || thread::writer_loop(&s1, io, storage))
            .map_err(|e| AofError::io("spawning the AOF writer thread", e))?;
        let _ = shared.writer.set(w.thread().clone());
        let mut threads = vec![w];
        // Always started: the policy can become `everysec` at run time.
        let s2 = shared.clone();
        let f = Builder::new()
            .name("aof-fsync".into())
            .spawn(move || syncer::syncer_loop(&s2))
            .map_err(|e| AofError::io("spawning the AOF fsync thread", e))?;
        *shared.syncer.lock() = Some(f.thread().clone());
        threads.push(f);
        Ok(AofWriter {
            shared,
            threads: Mutex::new(threads),
        })
    }

    /// The fsync policy now.
    pub fn fsync_policy(&self) -> FsyncPolicy {
        self.shared.policy()
    }

    /// Change the fsync policy of a running writer (`CONFIG SET appendfsync`). Becoming
    /// `always` fsyncs what was written before on the writer's next turn; tickets taken under
    /// another policy resolve at once, as they did when they were taken.
    pub fn set_fsync(&self, policy: FsyncPolicy) {
        self.shared.fsync.store(policy.to_u8(), Ordering::Relaxed);
        let _g = self.shared.state.lock();
        self.shared.changed.notify_all();
        drop(_g);
        self.shared.wake_writer();
    }

    /// Refuse early, before executing a write, when appends would be refused
    /// ([`OnError::Refuse`] after an error, or closed).
    pub fn check_writable(&self) -> Result<()> {
        let st = self.shared.state.lock();
        if st.shutdown {
            return Err(AofError::Closed);
        }
        match (st.err(), self.shared.opts.on_error) {
            (Some(e), OnError::Refuse) => Err(AofError::WriterFailed(e.clone())),
            _ => Ok(()),
        }
    }

    /// Append one write's propagated commands (each with its database) and return its ticket:
    /// the logical offset just past its bytes (see [`AofWriter::wait`]). `tag`, when source tags
    /// are enabled, is written as a `#<tag>` line before the commands.
    pub fn append(&self, ops: &[Propagated], tag: Option<&[u8]>) -> Result<u64> {
        let opts = &self.shared.opts;
        let mut body = Vec::new();
        if let Some(t) = tag.filter(|_| opts.source_tags) {
            if t.contains(&b'\n') || t.contains(&b'\r') || t.len() > 1000 || t.starts_with(b"TS:") {
                return Err(AofError::InvalidInput(
                    "a source tag must be at most 1000 bytes, hold no line break and not start with \"TS:\"".into(),
                ));
            }
            body.push(b'#');
            body.extend_from_slice(t);
            body.extend_from_slice(b"\r\n");
        }
        let need = ops
            .iter()
            .map(|(_, a)| a.iter().map(|x| x.len() + 16).sum::<usize>() + 16)
            .sum::<usize>()
            + body.len()
            + 32;
        // The commands are encoded before the state lock (a large value is copied without
        // holding it): an op after the first is preceded by a SELECT when its database differs
        // from the previous op's. What depends on the stream's state (a `#TS:` line, the first
        // op's SELECT) is prefixed under the lock.
        let select = |buf: &mut Vec<u8>, db: u32| {
            encode_command_iter(buf, [b"SELECT".as_slice(), db.to_string().as_bytes()]);
        };
        let mut cmds = Vec::with_capacity(need);
        for (i, (db, argv)) in ops.iter().enumerate() {
            if i > 0 && ops[i - 1].0 != *db {
                select(&mut cmds, *db);
            }
            encode_command_iter(&mut cmds, argv);
        }
        let mut st = self.shared.state.lock();
        loop {
            if st.shutdown {
                return Err(AofError::Closed);
            }
            if let (Some(e), OnError::Refuse) = (st.err(), opts.on_error) {
                return Err(AofError::WriterFailed(e.clone()));
            }
            if st.queued_bytes == 0 || st.queued_bytes + need <= opts.queue_capacity {
                break;
            }
            if opts.when_full == WhenFull::Fail {
                return Err(AofError::QueueFull {
                    queued: st.queued_bytes,
                    capacity: opts.queue_capacity,
                });
            }
            let mut g = Some(st);
            self.shared.changed.wait(&mut g);
            st = g.expect("guard");
        }
        if let Some(age) = opts.roll_age {
            if tail_len(&st) > 0 && st.tail_opened.elapsed() >= age {
                self.rotate_locked(&mut st);
                st.metrics.rolls += 1;
            }
        }
        let mut prefix = Vec::new();
        if opts.timestamps {
            let now = opts.clock_secs();
            if now > st.last_ts {
                st.last_ts = now;
                prefix.extend_from_slice(format!("#TS:{now}\r\n").as_bytes());
            }
        }
        prefix.extend_from_slice(&body);
        if let (Some((first, _)), Some((last, _))) = (ops.first(), ops.last()) {
            if st.last_db != Some(*first) {
                select(&mut prefix, *first);
            }
            st.last_db = Some(*last);
        }
        let n = prefix.len() + cmds.len();
        for chunk in [prefix, cmds] {
            if !chunk.is_empty() {
                st.queue.push_back(Chunk::Data(chunk));
            }
        }
        st.queued_bytes += n;
        st.enqueued += n as u64;
        let ticket = st.enqueued;
        if opts.roll_bytes.is_some_and(|r| tail_len(&st) >= r) {
            self.rotate_locked(&mut st);
            st.metrics.rolls += 1;
        }
        // Wake the writer only when it is parked idle, or when this append must not wait for
        // a linger (`always`: the caller waits for the fsync).
        let wake = st.writer_idle || self.shared.policy() == FsyncPolicy::Always;
        st.writer_idle = false;
        drop(st);
        if wake {
            self.shared.wake_writer();
        }
        Ok(ticket)
    }

    /// Where the next write will start. Called with every shard lock held (a snapshot
    /// barrier), it is an exact cut of the write stream: every write executed before lies
    /// wholly before it, every later one wholly after it, because a command hands its
    /// propagated bytes to [`AofWriter::append`] while it still holds its shard locks.
    pub fn position(&self) -> LogPosition {
        let st = self.shared.state.lock();
        LogPosition {
            seq: st.tail_seq,
            offset: tail_len(&st),
            db: st.last_db,
            unix_secs: self.shared.opts.clock_secs(),
        }
    }

    /// Wait until the file with sequence number `seq` exists (the writer has opened it).
    pub fn wait_for_file(&self, seq: FileSeq) -> Result<()> {
        let mut g = Some(self.shared.state.lock());
        loop {
            let st = g.as_ref().expect("guard");
            if st.current_seq >= seq {
                return Ok(());
            }
            if st.closed {
                return Err(AofError::Closed);
            }
            if let (Some(e), OnError::Refuse) = (st.err(), self.shared.opts.on_error) {
                return Err(AofError::WriterFailed(e.clone()));
            }
            self.shared.changed.wait(&mut g);
        }
    }

    fn rotate_locked(&self, st: &mut State) -> Rotation {
        let seq = st.next_seq;
        st.next_seq += 1;
        let name = match &self.shared.opts.file_namer {
            Some(n) => n(seq),
            None => incr_name(&st.filename, seq),
        };
        st.queue.push_back(Chunk::Rotate {
            name: name.clone(),
            seq,
        });
        st.last_db = None;
        st.last_ts = 0;
        st.tail_seq = seq;
        st.tail_start = st.enqueued;
        st.tail_base = 0;
        st.tail_opened = Instant::now();
        Rotation {
            name,
            at: LogPosition::start_of(seq, self.shared.opts.clock_secs()),
            logical: st.enqueued,
        }
    }

    /// Wait until the write with `ticket` is acknowledged: under `always`, until its bytes are
    /// durable; under the other policies at once. With [`OnError::Refuse`], an error before it
    /// became durable fails the wait; with [`OnError::Continue`] the wait ends unacknowledged but Ok.
    pub fn wait(&self, ticket: u64) -> Result<()> {
        if self.shared.policy() != FsyncPolicy::Always {
            return Ok(());
        }
        let mut g = Some(self.shared.state.lock());
        loop {
            let st = g.as_ref().expect("guard");
            if st.durable >= ticket {
                return Ok(());
            }
            if let Some(e) = st.err() {
                return match self.shared.opts.on_error {
                    OnError::Refuse => Err(AofError::WriterFailed(e.clone())),
                    OnError::Continue => Ok(()),
                };
            }
            if st.closed {
                return Err(AofError::Closed);
            }
            self.shared.changed.wait(&mut g);
        }
    }

    /// [`AofWriter::append`] then [`AofWriter::wait`].
    pub fn append_and_wait(&self, ops: &[Propagated], tag: Option<&[u8]>) -> Result<u64> {
        let t = self.append(ops, tag)?;
        self.wait(t)?;
        Ok(t)
    }

    /// Acknowledge this thread's last write made through the [`PropagationSink`] implementation
    /// (call it after `Keyspace::execute` returns, with no locks held): its error if the append
    /// was refused, else [`AofWriter::wait`] on its ticket. Ok when this thread appended nothing.
    pub fn ack_current_thread(&self) -> Result<()> {
        let last = LAST_APPEND.with(|c| c.borrow_mut().take());
        match last {
            Some((id, r)) if id == self.shared.id => self.wait(r?),
            _ => Ok(()),
        }
    }

    /// Run `f` with `tag` as the source tag of this thread's writes through the sink.
    pub fn with_source_tag<R>(tag: &[u8], f: impl FnOnce() -> R) -> R {
        let old = SOURCE_TAG.with(|c| c.borrow_mut().replace(tag.to_vec()));
        let r = f();
        SOURCE_TAG.with(|c| *c.borrow_mut() = old);
        r
    }

    /// Switch to a new incr file at this point of the stream; returns its name without doing
    /// any I/O (the writer thread syncs the old file and creates the new one).
    pub fn rotate(&self) -> Result<Rotation> {
        let mut st = self.shared.state.lock();
        if st.shutdown {
            return Err(AofError::Closed);
        }
        let r = self.rotate_locked(&mut st);
        drop(st);
        self.shared.wake_writer();
        Ok(r)
    }

    /// Wait until the writer appends to the file of `rotation` (it exists and is in the manifest).
    pub fn wait_rotated(&self, rotation: &Rotation) -> Result<()> {
        self.wait_for_file(rotation.at.seq)
    }

    /// Write and fsync everything accepted so far, whatever the policy, and wait for it. With
    /// [`OnError::Refuse`] an error fails it; with [`OnError::Continue`] it waits for the retries
    /// to succeed.
    pub fn flush_and_sync(&self) -> Result<()> {
        let mut st = self.shared.state.lock();
        let target = st.enqueued;
        st.force_sync = st.force_sync.max(target);
        drop(st);
        self.shared.wake_writer();
        let mut g = Some(self.shared.state.lock());
        loop {
            let st = g.as_ref().expect("guard");
            if st.durable >= target {
                return Ok(());
            }
            if let (Some(e), OnError::Refuse) = (st.err(), self.shared.opts.on_error) {
                return Err(AofError::WriterFailed(e.clone()));
            }
            if st.closed {
                return Err(AofError::Closed);
            }
            self.shared.changed.wait(&mut g);
        }
    }

    /// The writer's counters.
    pub fn metrics(&self) -> AofMetrics {
        let st = self.shared.state.lock();
        let mut m = st.metrics.clone();
        m.queue_bytes = st.queued_bytes;
        m.last_error = st.err().cloned();
        m.enqueued_offset = st.enqueued;
        m.written_offset = st.written;
        m.durable_offset = st.durable;
        m.current_file = st.current_file.clone();
        m
    }

    /// Stop accepting writes, write and fsync what is queued, stop the threads. An error that
    /// remains (the disk did not recover) is returned; idempotent.
    pub fn close(&self) -> Result<()> {
        self.shared.state.lock().shutdown = true;
        self.shared.changed.notify_all();
        self.shared.wake_writer();
        let threads: Vec<_> = self.threads.lock().drain(..).collect();
        for t in threads {
            let _ = t.join();
        }
        let st = self.shared.state.lock();
        match st.err() {
            Some(e) if st.durable < st.enqueued => Err(AofError::WriterFailed(e.clone())),
            _ => Ok(()),
        }
    }
}

impl Drop for AofWriter {
    fn drop(&mut self) {
        let _ = self.close();
    }
}

impl PropagationSink for AofWriter {
    /// Enqueue a write (with this thread's source tag, if any) and remember its ticket or error
    /// for [`AofWriter::ack_current_thread`].
    fn propagate(&self, ops: &[Propagated]) {
        let tag = SOURCE_TAG.with(|c| c.borrow().clone());
        let r = self.append(ops, tag.as_deref());
        LAST_APPEND.with(|c| *c.borrow_mut() = Some((self.shared.id, r)));
    }
}
