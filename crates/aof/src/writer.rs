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

use std::cell::RefCell;
use std::collections::VecDeque;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use forkless_keyspace::{Propagated, PropagationSink};
use forkless_sync::atomic::{AtomicU64, AtomicU8, Ordering};
use forkless_sync::thread::{self, JoinHandle, Thread};
use forkless_sync::{Arc, Condvar, Mutex, MutexGuard};

use crate::error::{AofError, Result};
use crate::io::{AofIo, AofStorage, SyncHandle};
use crate::manifest::incr_name;

/// `appendfsync`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsyncPolicy {
    /// A write is acknowledged once fsynced.
    Always,
    /// fsync in the background about once a second.
    EverySec,
    /// Leave flushing to the OS.
    No,
}

impl FsyncPolicy {
    fn to_u8(self) -> u8 {
        match self {
            FsyncPolicy::Always => 0,
            FsyncPolicy::EverySec => 1,
            FsyncPolicy::No => 2,
        }
    }

    fn from_u8(v: u8) -> FsyncPolicy {
        match v {
            0 => FsyncPolicy::Always,
            1 => FsyncPolicy::EverySec,
            _ => FsyncPolicy::No,
        }
    }
}

/// What a caller meets when the queue is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhenFull {
    /// Wait for room (backpressure).
    Block,
    /// Fail at once with [`AofError::QueueFull`].
    Fail,
}

/// What happens after a write or fsync error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnError {
    /// Refuse new writes until a retry succeeds (Redis MISCONF).
    Refuse,
    /// Count the error, keep accepting writes (cache mode).
    Continue,
}

/// A clock in Unix seconds (for `#TS:` annotations).
pub type SecondsClock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// Names the file of a sequence number (default: the incr name `<filename>.<seq>.incr.aof`).
pub type FileNamer = Arc<dyn Fn(i64) -> String + Send + Sync>;

/// Wraps every file the writer appends to (the first and those of later rotations): fault
/// injection for tests of the layers above, e.g. the engine's MISCONF test.
pub type IoWrapper = Arc<dyn Fn(Box<dyn AofIo>) -> Box<dyn AofIo> + Send + Sync>;

/// Writer configuration.
#[derive(Clone)]
pub struct WriterOptions {
    /// The fsync policy (default `everysec`, as Redis).
    pub fsync: FsyncPolicy,
    /// Queue capacity in bytes (default 64 MiB). One write larger than this is accepted alone.
    pub queue_capacity: usize,
    /// Full queue behaviour (default block).
    pub when_full: WhenFull,
    /// Error behaviour (default refuse).
    pub on_error: OnError,
    /// Write `#TS:<secs>` before a write when the second changed (`aof-timestamp-enabled`).
    pub timestamps: bool,
    /// Accept per-write source tags (written as `#<tag>` lines; off by default).
    pub source_tags: bool,
    /// The clock for annotations; `None` = system time.
    pub clock: Option<SecondsClock>,
    /// `everysec` interval (default 1 s).
    pub fsync_interval: Duration,
    /// Longest postponement of writes behind a running fsync (default 2 s).
    pub max_postpone: Duration,
    /// Delay between retries after an error (default 1 s, Redis's serverCron period).
    pub retry_interval: Duration,
    /// Roll to a new file once the current one holds at least this many bytes (decided in the
    /// stream when a write is enqueued, so every write lies wholly in one file). `None`: never.
    pub roll_bytes: Option<u64>,
    /// Roll before a write when the current file holds data and was opened this long ago.
    pub roll_age: Option<Duration>,
    /// File names by sequence number; `None` = `<filename>.<seq>.incr.aof`.
    pub file_namer: Option<FileNamer>,
    /// Wraps the files appended to (tests); `None` = as opened.
    pub io_wrapper: Option<IoWrapper>,
}

impl Default for WriterOptions {
    fn default() -> Self {
        WriterOptions {
            fsync: FsyncPolicy::EverySec,
            queue_capacity: 64 << 20,
            when_full: WhenFull::Block,
            on_error: OnError::Refuse,
            timestamps: false,
            source_tags: false,
            clock: None,
            fsync_interval: Duration::from_secs(1),
            max_postpone: Duration::from_secs(2),
            retry_interval: Duration::from_secs(1),
            roll_bytes: None,
            roll_age: None,
            file_namer: None,
            io_wrapper: None,
        }
    }
}

/// Storage whose files go through [`WriterOptions::io_wrapper`].
struct WrappedStorage {
    inner: Box<dyn AofStorage>,
    wrap: IoWrapper,
}

impl AofStorage for WrappedStorage {
    fn open_incr(&mut self, name: &str, seq: i64) -> std::io::Result<Box<dyn AofIo>> {
        self.inner.open_incr(name, seq).map(|io| (self.wrap)(io))
    }
    fn closing(&mut self, seq: i64, len: u64, crc: Option<u64>) {
        self.inner.closing(seq, len, crc);
    }
}

impl std::fmt::Debug for WriterOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriterOptions")
            .field("fsync", &self.fsync)
            .field("queue_capacity", &self.queue_capacity)
            .field("when_full", &self.when_full)
            .field("on_error", &self.on_error)
            .field("timestamps", &self.timestamps)
            .field("source_tags", &self.source_tags)
            .field("roll_bytes", &self.roll_bytes)
            .field("roll_age", &self.roll_age)
            .finish_non_exhaustive()
    }
}

/// A snapshot of the writer's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AofMetrics {
    /// Bytes accepted but not yet written.
    pub queue_bytes: usize,
    /// Bytes written to files.
    pub bytes_written: u64,
    /// Completed fsyncs.
    pub fsyncs: u64,
    /// When the last fsync completed (Unix ms).
    pub last_fsync_unix_ms: Option<i64>,
    /// Writes that went ahead after being postponed `max_postpone` behind a slow fsync.
    pub delayed_fsyncs: u64,
    /// Write and fsync errors.
    pub errors: u64,
    /// The current error, if the last attempt failed.
    pub last_error: Option<String>,
    /// Logical offset of everything accepted.
    pub enqueued_offset: u64,
    /// Logical offset written.
    pub written_offset: u64,
    /// Logical offset durable.
    pub durable_offset: u64,
    /// The incr file being appended to.
    pub current_file: String,
    /// Files closed by [`WriterOptions::roll_bytes`] / [`WriterOptions::roll_age`].
    pub rolls: u64,
}

/// A point of the write stream, as [`AofWriter::position`] reports it: the file (by sequence
/// number) and byte offset in it where the next write will start, the database selected there
/// and the writer clock's second.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamPosition {
    /// Sequence number of the file the next write goes to.
    pub seq: i64,
    /// Byte offset in that file where the next write starts.
    pub offset: u64,
    /// The database selected at that point in the file (`None`: none yet; replay starts in 0).
    pub db: Option<u32>,
    /// Logical stream offset (bytes enqueued since the writer started).
    pub logical: u64,
    /// The writer clock's Unix second at that point.
    pub unix_secs: i64,
}

/// Where [`AofWriter::rotate`] switched files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotation {
    /// The new incr file's name.
    pub name: String,
    /// Its sequence number.
    pub seq: i64,
    /// Logical stream offset of the switch: bytes before it go to the old file.
    pub offset: u64,
}

/// Which operation failed: a success of the same kind clears the error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ErrKind {
    Write,
    Sync,
    Rotate,
}

impl State {
    fn err(&self) -> Option<&String> {
        self.error.as_ref().map(|e| &e.1)
    }
    fn clear(&mut self, kind: ErrKind) {
        if self.error.as_ref().is_some_and(|e| e.0 == kind) {
            self.error = None;
        }
    }
}

enum Chunk {
    Data(Vec<u8>),
    Rotate { name: String, seq: i64 },
}

struct State {
    queue: VecDeque<Chunk>,
    queued_bytes: usize,
    enqueued: u64,
    written: u64,
    durable: u64,
    last_db: Option<u32>,
    last_ts: i64,
    filename: String,
    next_seq: i64,
    current_seq: i64,
    current_file: String,
    /// The file the next enqueued bytes go to (after every queued rotation marker), the logical
    /// offset where it starts in the stream, its length before the writer started (only the
    /// first file, when continuing one), and when it was opened in the stream.
    tail_seq: i64,
    tail_start: u64,
    tail_base: u64,
    tail_opened: Instant,
    error: Option<(ErrKind, String)>,
    shutdown: bool,
    closed: bool,
    force_sync: u64,
    sync_in_progress: Option<Instant>,
    sync_request: Option<u64>,
    postponed_since: Option<Instant>,
    metrics: AofMetrics,
}

struct Shared {
    state: Mutex<State>,
    changed: Condvar,
    sync_slot: Mutex<Option<Box<dyn SyncHandle>>>,
    opts: WriterOptions,
    /// The fsync policy now (`opts.fsync` at start; [`AofWriter::set_fsync`] changes it, as
    /// `CONFIG SET appendfsync` does in Redis).
    fsync: AtomicU8,
    writer: Mutex<Option<Thread>>,
    syncer: Mutex<Option<Thread>>,
    id: u64,
}

impl Shared {
    fn policy(&self) -> FsyncPolicy {
        FsyncPolicy::from_u8(self.fsync.load(Ordering::Relaxed))
    }
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

thread_local! {
    /// The outcome of this thread's last append through the sink: (writer id, ticket or error).
    static LAST_APPEND: RefCell<Option<(u64, Result<u64>)>> = const { RefCell::new(None) };
    /// The source tag of this thread's writes (see [`AofWriter::with_source_tag`]).
    static SOURCE_TAG: RefCell<Option<Vec<u8>>> = const { RefCell::new(None) };
}

fn now_unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Append `argv` as a RESP multibulk (`catAppendOnlyGenericCommand`).
pub fn encode_command(out: &mut Vec<u8>, argv: &[impl AsRef<[u8]>]) {
    out.push(b'*');
    out.extend_from_slice(argv.len().to_string().as_bytes());
    out.extend_from_slice(b"\r\n");
    for a in argv {
        let a = a.as_ref();
        out.push(b'$');
        out.extend_from_slice(a.len().to_string().as_bytes());
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
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
        current_seq: i64,
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
            writer: Mutex::new(None),
            syncer: Mutex::new(None),
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
        });
        let s1 = shared.clone();
        let w = thread::Builder::new()
            .name("aof-writer".into())
            .spawn(move || writer_loop(&s1, io, storage))
            .map_err(|e| AofError::io("spawning the AOF writer thread", e))?;
        *shared.writer.lock() = Some(w.thread().clone());
        let mut threads = vec![w];
        // Always started: the policy can become `everysec` at run time.
        let s2 = shared.clone();
        let f = thread::Builder::new()
            .name("aof-fsync".into())
            .spawn(move || syncer_loop(&s2))
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
        self.wake_writer();
    }

    fn wake_writer(&self) {
        if let Some(t) = self.shared.writer.lock().as_ref() {
            t.unpark();
        }
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
        let mut st = self.shared.state.lock();
        let need = ops
            .iter()
            .map(|(_, a)| a.iter().map(|x| x.len() + 16).sum::<usize>() + 16)
            .sum::<usize>()
            + body.len()
            + 32;
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
        let mut buf = Vec::with_capacity(need);
        if opts.timestamps {
            let now = opts
                .clock
                .as_ref()
                .map_or_else(|| now_unix_ms() / 1000, |c| c());
            if now > st.last_ts {
                st.last_ts = now;
                buf.extend_from_slice(format!("#TS:{now}\r\n").as_bytes());
            }
        }
        buf.extend_from_slice(&body);
        for (db, argv) in ops {
            if st.last_db != Some(*db) {
                encode_command(&mut buf, &[b"SELECT".as_slice(), db.to_string().as_bytes()]);
                st.last_db = Some(*db);
            }
            encode_command(&mut buf, argv);
        }
        let n = buf.len();
        st.queue.push_back(Chunk::Data(buf));
        st.queued_bytes += n;
        st.enqueued += n as u64;
        let ticket = st.enqueued;
        if opts.roll_bytes.is_some_and(|r| tail_len(&st) >= r) {
            self.rotate_locked(&mut st);
            st.metrics.rolls += 1;
        }
        drop(st);
        self.wake_writer();
        Ok(ticket)
    }

    /// Where the next write will start (see [`StreamPosition`]). Called with every shard lock
    /// held (a snapshot barrier), it is an exact cut of the write stream: every write executed
    /// before lies wholly before it, every later one wholly after it, because a command hands
    /// its propagated bytes to [`AofWriter::append`] while it still holds its shard locks.
    pub fn position(&self) -> StreamPosition {
        let st = self.shared.state.lock();
        let unix_secs = self
            .shared
            .opts
            .clock
            .as_ref()
            .map_or_else(|| now_unix_ms() / 1000, |c| c());
        StreamPosition {
            seq: st.tail_seq,
            offset: tail_len(&st),
            db: st.last_db,
            logical: st.enqueued,
            unix_secs,
        }
    }

    /// Wait until the file with sequence number `seq` exists (the writer has opened it).
    pub fn wait_for_file(&self, seq: i64) -> Result<()> {
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
            seq,
            offset: st.enqueued,
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
        self.wake_writer();
        Ok(r)
    }

    /// Wait until the writer appends to the file of `rotation` (it exists and is in the manifest).
    pub fn wait_rotated(&self, rotation: &Rotation) -> Result<()> {
        self.wait_for_file(rotation.seq)
    }

    /// Write and fsync everything accepted so far, whatever the policy, and wait for it. With
    /// [`OnError::Refuse`] an error fails it; with [`OnError::Continue`] it waits for the retries
    /// to succeed.
    pub fn flush_and_sync(&self) -> Result<()> {
        let mut st = self.shared.state.lock();
        let target = st.enqueued;
        st.force_sync = st.force_sync.max(target);
        drop(st);
        self.wake_writer();
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
        self.wake_writer();
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

/// Bytes of the stream's tail file (what it held at start, plus what was enqueued for it).
fn tail_len(st: &State) -> u64 {
    st.tail_base + (st.enqueued - st.tail_start)
}

fn record_error(shared: &Shared, st: &mut MutexGuard<'_, State>, kind: ErrKind, what: String) {
    st.metrics.errors += 1;
    st.error = Some((kind, what));
    shared.changed.notify_all();
}

fn unpark(slot: &Mutex<Option<Thread>>) {
    if let Some(t) = slot.lock().as_ref() {
        t.unpark();
    }
}

/// Sync the current file on the writer thread; updates `durable` on success.
fn sync_here(shared: &Shared, io: &mut dyn AofIo, file: &str) -> bool {
    let target = shared.state.lock().written;
    let r = io.sync();
    let mut st = shared.state.lock();
    match r {
        Ok(()) => {
            st.durable = st.durable.max(target);
            st.metrics.fsyncs += 1;
            st.metrics.last_fsync_unix_ms = Some(now_unix_ms());
            st.clear(ErrKind::Sync);
            shared.changed.notify_all();
            true
        }
        Err(e) => {
            record_error(
                shared,
                &mut st,
                ErrKind::Sync,
                format!("fsync of {file} failed: {e}"),
            );
            false
        }
    }
}

/// The writer thread's private state.
struct Local {
    io: Box<dyn AofIo>,
    storage: Box<dyn AofStorage>,
    /// Bytes taken from the queue, not yet written (still counted in `queued_bytes`).
    pending: Vec<u8>,
    /// A rotation marker met after `pending`.
    rotate: Option<(String, i64)>,
    /// No I/O before this instant (after an error).
    next_retry: Option<Instant>,
    last_sync_start: Instant,
    /// A write, fsync or file creation failed after shutdown was requested: give up.
    failed_in_shutdown: bool,
}

impl Local {
    fn failed(&mut self, shared: &Shared) {
        self.next_retry = Some(Instant::now() + shared.opts.retry_interval);
        if shared.state.lock().shutdown {
            self.failed_in_shutdown = true;
        }
    }
}

fn writer_loop(shared: &Shared, io: Box<dyn AofIo>, storage: Box<dyn AofStorage>) {
    let opts = &shared.opts;
    let mut l = Local {
        io,
        storage,
        pending: Vec::new(),
        rotate: None,
        next_retry: None,
        last_sync_start: Instant::now(),
        failed_in_shutdown: false,
    };
    loop {
        // A: take what is queued; decide whether to write now.
        let now = Instant::now();
        let (do_write, file, shutdown) = {
            let mut st = shared.state.lock();
            while l.rotate.is_none() {
                match st.queue.pop_front() {
                    Some(Chunk::Data(b)) => l.pending.extend_from_slice(&b),
                    Some(Chunk::Rotate { name, seq }) => l.rotate = Some((name, seq)),
                    None => break,
                }
            }
            let retry_ok =
                l.next_retry.is_none_or(|t| now >= t) || (st.shutdown && !l.failed_in_shutdown);
            let mut w = !l.pending.is_empty() && retry_ok;
            if w && shared.policy() == FsyncPolicy::EverySec
                && st.sync_in_progress.is_some()
                && !st.shutdown
            {
                match st.postponed_since {
                    None => {
                        st.postponed_since = Some(now);
                        w = false;
                    }
                    Some(t) if now.duration_since(t) < opts.max_postpone => w = false,
                    Some(_) => {
                        st.metrics.delayed_fsyncs += 1;
                        st.postponed_since = None;
                    }
                }
            } else if w {
                st.postponed_since = None;
            }
            if st.shutdown && l.failed_in_shutdown {
                // The disk did not recover while shutting down: stop, close() reports the error.
                st.closed = true;
                shared.changed.notify_all();
                drop(st);
                unpark(&shared.syncer);
                return;
            }
            (w, st.current_file.clone(), st.shutdown)
        };
        // B: write.
        if do_write {
            let before = l.io.len().unwrap_or(0);
            let r = l.io.write(&l.pending);
            let mut st = shared.state.lock();
            let done = match &r {
                Ok(()) => l.pending.len(),
                Err(_) => {
                    l.io.len()
                        .map_or(0, |n| n.saturating_sub(before))
                        .min(l.pending.len() as u64) as usize
                }
            };
            l.pending.drain(..done);
            st.written += done as u64;
            st.queued_bytes -= done;
            st.metrics.bytes_written += done as u64;
            match r {
                Ok(()) => {
                    st.clear(ErrKind::Write);
                    l.next_retry = None;
                    shared.changed.notify_all();
                }
                Err(e) => {
                    record_error(
                        shared,
                        &mut st,
                        ErrKind::Write,
                        format!("write to {file} failed: {e}"),
                    );
                    drop(st);
                    l.failed(shared);
                }
            }
        }
        // C: fsync per policy.
        let retry_ok =
            l.next_retry.is_none_or(|t| Instant::now() >= t) || (shutdown && !l.failed_in_shutdown);
        let (written, durable, force, sync_busy, write_err) = {
            let st = shared.state.lock();
            let we = st.error.as_ref().is_some_and(|e| e.0 == ErrKind::Write);
            (
                st.written,
                st.durable,
                st.force_sync,
                st.sync_in_progress.is_some(),
                we,
            )
        };
        let forced = force > durable && l.pending.is_empty() && !sync_busy;
        if written > durable
            && retry_ok
            && !write_err
            && (shared.policy() == FsyncPolicy::Always || forced)
        {
            if !sync_here(shared, l.io.as_mut(), &file) {
                l.failed(shared);
            }
        } else if shared.policy() == FsyncPolicy::EverySec
            && written > durable
            && l.last_sync_start.elapsed() >= opts.fsync_interval
        {
            let mut st = shared.state.lock();
            if st.sync_in_progress.is_none() {
                st.sync_in_progress = Some(Instant::now());
                st.sync_request = Some(written);
                l.last_sync_start = Instant::now();
                drop(st);
                unpark(&shared.syncer);
            }
        }
        // D: rotation, once everything before the marker is written.
        if l.pending.is_empty() && retry_ok {
            if let Some((name, seq)) = l.rotate.clone() {
                while shared.state.lock().sync_in_progress.is_some() {
                    thread::park_timeout(Duration::from_millis(1));
                }
                if !sync_here(shared, l.io.as_mut(), &file) {
                    l.failed(shared);
                } else {
                    let closing_seq = shared.state.lock().current_seq;
                    if let Ok(len) = l.io.len() {
                        l.storage.closing(closing_seq, len, l.io.crc64());
                    }
                    let opened = l
                        .storage
                        .open_incr(&name, seq)
                        .and_then(|io| Ok((io.sync_handle()?, io)));
                    match opened {
                        Ok((h, io)) => {
                            *shared.sync_slot.lock() = Some(h);
                            l.io = io;
                            l.rotate = None;
                            let mut st = shared.state.lock();
                            st.current_seq = seq;
                            st.current_file = name;
                            st.clear(ErrKind::Rotate);
                            shared.changed.notify_all();
                            continue;
                        }
                        Err(e) => {
                            let mut st = shared.state.lock();
                            record_error(
                                shared,
                                &mut st,
                                ErrKind::Rotate,
                                format!("creating {name} failed: {e}"),
                            );
                            drop(st);
                            l.failed(shared);
                        }
                    }
                }
            }
        }
        // E: exit when shut down and drained, else sleep until there is something to do.
        let park_for = {
            let st = shared.state.lock();
            let idle = st.queue.is_empty() && l.pending.is_empty() && l.rotate.is_none();
            if st.shutdown && idle && st.sync_in_progress.is_none() {
                let unsynced = st.written > st.durable;
                drop(st);
                if unsynced {
                    sync_here(shared, l.io.as_mut(), &file);
                }
                let mut st = shared.state.lock();
                st.closed = true;
                shared.changed.notify_all();
                drop(st);
                unpark(&shared.syncer);
                return;
            }
            if st.shutdown && !l.failed_in_shutdown {
                Duration::from_millis(1)
            } else if !st.queue.is_empty() && l.rotate.is_none() {
                Duration::ZERO
            } else if let Some(t) = l.next_retry {
                t.saturating_duration_since(Instant::now())
            } else if !l.pending.is_empty() {
                Duration::from_millis(5)
            } else if shared.policy() == FsyncPolicy::EverySec && st.written > st.durable {
                opts.fsync_interval
                    .saturating_sub(l.last_sync_start.elapsed())
                    .max(Duration::from_millis(1))
            } else if st.force_sync > st.durable {
                Duration::from_millis(1)
            } else {
                Duration::from_millis(500)
            }
        };
        if !park_for.is_zero() {
            thread::park_timeout(park_for);
        }
    }
}

fn syncer_loop(shared: &Shared) {
    loop {
        let target = {
            let mut st = shared.state.lock();
            match st.sync_request.take() {
                Some(t) => t,
                None if st.closed => return,
                None => {
                    drop(st);
                    thread::park_timeout(Duration::from_millis(200));
                    continue;
                }
            }
        };
        let r = match shared.sync_slot.lock().as_mut() {
            Some(h) => h.sync(),
            None => Ok(()),
        };
        let mut st = shared.state.lock();
        st.sync_in_progress = None;
        match r {
            Ok(()) => {
                st.durable = st.durable.max(target);
                st.metrics.fsyncs += 1;
                st.metrics.last_fsync_unix_ms = Some(now_unix_ms());
                st.clear(ErrKind::Sync);
                shared.changed.notify_all();
            }
            Err(e) => {
                let file = st.current_file.clone();
                record_error(
                    shared,
                    &mut st,
                    ErrKind::Sync,
                    format!("fsync of {file} failed: {e}"),
                );
            }
        }
        drop(st);
        unpark(&shared.writer);
    }
}
