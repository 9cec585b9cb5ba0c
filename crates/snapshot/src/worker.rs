//! The worker side: the start barrier, the bucket walk, serialization, and the end barrier.
//!
//! The walk goes database by database, shard by shard, `batch_buckets` buckets at a time. For a
//! batch it takes the shard lock only to stamp the unvisited buckets and take handles to their
//! entries ([`visit_bucket`]); it serializes them to RDB after releasing the lock. Between
//! batches it drains the baselines writers handed over (point-in-time pre-images, converging
//! forced visits), moves the delta buffer to the spill file when it passed its limit, updates the
//! progress counters and honours cancellation.
//!
//! The output is one RDB (v10, `RdbWriter`): `SELECTDB` is written whenever the database of the
//! next entry differs from the last one (handed-over baselines of another database interleave
//! with the walk; Redis's loader accepts any number of SELECTDB opcodes). In converging mode the
//! delta stream follows the RDB's EOF and checksum: the layout of a Redis RDB-preamble AOF.
//!
//! Encoding the entries is [`encode_entry`]'s job, on this thread (`serialize_threads` 1) or on
//! a pool of serializer threads fed runs of entries in file order and written back in that order
//! ([`crate::parallel`]): the walk and its protocol are the same either way, and so are the
//! file's bytes.

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use forkless_keyspace::{memory, Keyspace, MemoryConfig, Shard, Value, View};
use forkless_rdb::{KeyAccess, RdbError, RdbWriter, WriteOptions};
use forkless_sync::atomic::{AtomicBool, AtomicU64, Ordering};
use forkless_sync::Arc;

use crate::delta::Spill;
use crate::observer::{visit_bucket, Active, Handle, Mode, SnapshotObserver};
use crate::parallel::{Job, Pool, CHUNK_BYTES, CHUNK_ENTRIES};

/// Options of one snapshot.
#[derive(Clone)]
pub struct SnapshotOptions {
    /// Converging (default) or point-in-time.
    pub mode: Mode,
    /// RDB writer options (compression, checksum, extra aux fields...).
    pub rdb: WriteOptions,
    /// Buckets visited per shard-lock acquisition by the walk (default [`DEFAULT_BATCH_BUCKETS`]).
    pub batch_buckets: usize,
    /// Converging mode: in-memory delta bytes past which the worker moves them to a spill file
    /// (only when `spill_path` is set).
    pub delta_spill_bytes: usize,
    /// Where spill files go (a path beside the target; None = keep deltas in memory).
    pub spill_path: Option<PathBuf>,
    /// Test hook: called by the worker after each batch (lets tests interleave writes with the
    /// walk deterministically).
    pub after_batch: Option<std::sync::Arc<dyn Fn(u64) + Send + Sync>>,
    /// Called inside the start and end barriers (every shard locked, no writer running): lets
    /// callers record exactly where in their own write log the snapshot's cut falls (the AOF
    /// rewrite switches files here; tests record the expected state).
    pub on_barrier: Option<std::sync::Arc<dyn Fn(Barrier) + Send + Sync>>,
    /// Aux fields written at the end of the RDB part, after the end barrier and before EOF
    /// (called once, on the worker, with no lock held): lets callers record what they learned
    /// inside the barriers (the segment position of the cut) in the file itself.
    pub trailer_aux: Option<TrailerAux>,
    /// The file system calls of the final commit of a file (`start_snapshot`): `None` is the
    /// real file system; tests plug in faults or pauses (`forkless_durable::FaultFs`).
    pub commit_fs: Option<std::sync::Arc<dyn forkless_durable::DurableFs>>,
    /// Threads that encode entries to RDB ([`crate::parallel`]): 1 encodes on the worker
    /// itself (no extra thread); N > 1 starts N - 1 serializer threads for the snapshot, the
    /// worker walking, writing their chunks in order, and encoding jobs itself whenever the
    /// chunks in flight reach their bound. Default: [`default_serialize_threads`].
    pub serialize_threads: usize,
    /// Test hook: called before chunk `seq` is encoded, on the thread that encodes it (N > 1
    /// only).
    pub on_chunk_encode: Option<EncodeHook>,
}

/// See [`SnapshotOptions::on_chunk_encode`].
pub type EncodeHook = std::sync::Arc<dyn Fn(u64) + Send + Sync>;

/// Buckets the walk visits per shard-lock hold by default. Small, because a writer that finds
/// its shard held waits for the rest of the batch: with one writer beside the worker (1M keys,
/// benches/README.md "Where the writer's time goes"), 64 buckets cost each write 1.3 us of lock
/// wait on average and cut its throughput to 0.5-0.64x idle; 4 buckets cost 55-90 ns and kept
/// 0.90-0.92x, with the snapshot as fast (an uncontended lock is tens of nanoseconds).
pub const DEFAULT_BATCH_BUCKETS: usize = 4;

/// Most serializer threads the default starts.
pub const MAX_DEFAULT_SERIALIZE_THREADS: usize = 8;

/// The default of [`SnapshotOptions::serialize_threads`]: half the cores available to the
/// process, at most [`MAX_DEFAULT_SERIALIZE_THREADS`] (1 in loom models, which model the walk's
/// protocol, not the encoding). Half, because the snapshot must not take the writers' cores: a
/// snapshot is background work, and on 2 cores a second encoder cut a concurrent writer's
/// throughput by three quarters (benches/README.md, "Snapshot speed"); with one writer per
/// other core the serializers get the cores nobody writes on.
pub fn default_serialize_threads() -> usize {
    if forkless_sync::LOOM {
        return 1;
    }
    (std::thread::available_parallelism().map_or(1, |n| n.get()) / 2)
        .clamp(1, MAX_DEFAULT_SERIALIZE_THREADS)
}

/// Chunks in flight per serializer thread (the back pressure bound is this times the threads).
pub const CHUNKS_IN_FLIGHT_PER_THREAD: usize = 2;

/// See [`SnapshotOptions::trailer_aux`].
pub type TrailerAux = std::sync::Arc<dyn Fn() -> Vec<(Vec<u8>, Vec<u8>)> + Send + Sync>;

/// Which barrier [`SnapshotOptions::on_barrier`] is called from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Barrier {
    /// The start: a point-in-time snapshot is the keyspace at this instant.
    Start,
    /// The end: a converging snapshot is the keyspace at this instant.
    End,
}

impl std::fmt::Debug for SnapshotOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnapshotOptions")
            .field("mode", &self.mode)
            .field("batch_buckets", &self.batch_buckets)
            .field("delta_spill_bytes", &self.delta_spill_bytes)
            .field("spill_path", &self.spill_path)
            .field("serialize_threads", &self.serialize_threads)
            .finish_non_exhaustive()
    }
}

impl Default for SnapshotOptions {
    fn default() -> Self {
        SnapshotOptions {
            mode: Mode::Converging,
            rdb: WriteOptions::default(),
            batch_buckets: DEFAULT_BATCH_BUCKETS,
            delta_spill_bytes: 64 << 20,
            spill_path: None,
            after_batch: None,
            on_barrier: None,
            trailer_aux: None,
            commit_fs: None,
            serialize_threads: default_serialize_threads(),
            on_chunk_encode: None,
        }
    }
}

/// Live progress counters (read them from any thread while the snapshot runs).
#[derive(Debug, Default)]
pub struct Progress {
    /// Buckets visited (by the walk or by writers).
    pub buckets_done: AtomicU64,
    /// Buckets in the traversal space at the start.
    pub buckets_total: AtomicU64,
    /// Keys serialized.
    pub keys: AtomicU64,
    /// RDB bytes written.
    pub bytes: AtomicU64,
    /// Delta bytes captured.
    pub delta_bytes: AtomicU64,
    /// Chunks handed to serializer threads (`serialize_threads` > 1).
    pub chunks_dispatched: AtomicU64,
    /// Chunks written to the output, in order.
    pub chunks_written: AtomicU64,
    /// Times the worker stopped walking before dispatching a chunk because the bound of chunks
    /// in flight was reached (back pressure: it then encodes queued jobs itself, or waits).
    pub chunk_waits: AtomicU64,
    /// True once the snapshot finished, successfully or not: its slot is free again (a new
    /// snapshot may begin) and, for a file (`start_snapshot`), the file is committed (in place
    /// and durable) or its temp file removed.
    pub done: AtomicBool,
}

/// What a finished snapshot reports.
#[derive(Clone, Debug, PartialEq)]
pub struct SnapshotResult {
    /// Mode.
    pub mode: Mode,
    /// Wall time from the start barrier to the last byte.
    pub duration: Duration,
    /// Keys in the RDB part.
    pub keys: u64,
    /// Bytes of the RDB part.
    pub rdb_bytes: u64,
    /// Bytes in total (RDB + deltas).
    pub total_bytes: u64,
    /// Throughput of the whole output.
    pub mb_per_s: f64,
    /// Peak of (baselines waiting in the hand-off queue + deltas held in memory), in bytes.
    pub peak_extra_bytes: u64,
    /// Buckets visited by writers (point-in-time pre-images, converging forced visits).
    pub forced_visits: u64,
    /// Buckets visited by the walk.
    pub walked_buckets: u64,
    /// Commands captured as deltas.
    pub delta_commands: u64,
    /// Bytes of deltas.
    pub delta_bytes: u64,
    /// Bytes of deltas that went through the spill file.
    pub spilled_bytes: u64,
    /// Serializer threads used (1: encoded on the worker).
    pub serialize_threads: usize,
    /// The most chunks that were in flight at once (0 with one thread).
    pub max_chunks_in_flight: u64,
}

/// Why a snapshot failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum SnapshotError {
    /// Another snapshot is running on this keyspace.
    AlreadyInProgress,
    /// Cancelled by the caller.
    Cancelled,
    /// Writing the RDB failed.
    Rdb(RdbError),
    /// I/O error (output, spill or rename).
    Io(std::io::Error),
}

impl std::fmt::Display for SnapshotError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SnapshotError::AlreadyInProgress => write!(f, "a snapshot is already in progress"),
            SnapshotError::Cancelled => write!(f, "snapshot cancelled"),
            SnapshotError::Rdb(e) => write!(f, "snapshot: {e}"),
            SnapshotError::Io(e) => write!(f, "snapshot I/O error: {e}"),
        }
    }
}

impl std::error::Error for SnapshotError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SnapshotError::Rdb(e) => Some(e),
            SnapshotError::Io(e) => Some(e),
            SnapshotError::AlreadyInProgress | SnapshotError::Cancelled => None,
        }
    }
}

impl From<RdbError> for SnapshotError {
    fn from(e: RdbError) -> Self {
        SnapshotError::Rdb(e)
    }
}

impl From<std::io::Error> for SnapshotError {
    fn from(e: std::io::Error) -> Self {
        SnapshotError::Io(e)
    }
}

/// How a [`Started`] snapshot reaches its keyspace: borrowed (the snapshot runs on the caller's
/// thread, [`run_snapshot`]) or shared (a worker thread owns it, `start_snapshot`).
#[derive(Debug)]
pub enum KeyspaceRef<'a> {
    /// Borrowed from the caller.
    Borrowed(&'a Keyspace),
    /// Shared with the caller.
    Shared(Arc<Keyspace>),
}

impl std::ops::Deref for KeyspaceRef<'_> {
    type Target = Keyspace;
    fn deref(&self) -> &Keyspace {
        match self {
            KeyspaceRef::Borrowed(k) => k,
            KeyspaceRef::Shared(k) => k,
        }
    }
}

impl<'a> From<&'a Keyspace> for KeyspaceRef<'a> {
    fn from(k: &'a Keyspace) -> Self {
        KeyspaceRef::Borrowed(k)
    }
}

impl From<Arc<Keyspace>> for KeyspaceRef<'static> {
    fn from(k: Arc<Keyspace>) -> Self {
        KeyspaceRef::Shared(k)
    }
}

/// The life of one snapshot from its start barrier on: ends it when dropped (on success, on
/// every error path, and when a begun snapshot is never run), so writers never keep handing
/// buckets over or capturing after the worker stopped, and no dict stays frozen.
///
/// Ending is two steps ([`Lifecycle::end`]):
/// 1. the end barrier (every shard locked, in order): the observer deactivates for every writer
///    at once and the delta stream closes; nothing else, so the barrier costs O(shards);
/// 2. after the barrier, shard by shard (one shard lock at a time): the dicts thaw. A dict that
///    passed load factor 1 while frozen allocates its new table here, holding only its own
///    shard's lock: no writer of another shard waits for it.
///
/// The ticket (the one-snapshot-at-a-time slot) is held until both steps are done, so no new
/// snapshot can freeze a dict that step 2 would then thaw; callers that commit a file keep it
/// longer ([`Lifecycle::finish`]).
struct Lifecycle<'a> {
    ks: KeyspaceRef<'a>,
    on_barrier: Option<std::sync::Arc<dyn Fn(Barrier) + Send + Sync>>,
    ticket: Option<Ticket>,
    active: Arc<Active>,
    ended: bool,
}

impl std::fmt::Debug for Lifecycle<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lifecycle")
            .field("epoch", &self.active.epoch)
            .field("ended", &self.ended)
            .finish_non_exhaustive()
    }
}

impl Lifecycle<'_> {
    fn obs(&self) -> &SnapshotObserver {
        &self.ticket.as_ref().expect("held until finish").obs
    }

    fn obs_arc(&self) -> Arc<SnapshotObserver> {
        self.ticket.as_ref().expect("held until finish").obs.clone()
    }

    /// Step 1 and step 2 (see the type's docs), once.
    fn end(&mut self) {
        if self.ended {
            return;
        }
        self.ended = true;
        self.end_barrier();
        self.thaw();
    }

    /// Step 1: the end barrier. Deactivates, closes the deltas, calls the `End` hook; resizes
    /// nothing.
    fn end_barrier(&self) {
        let obs = self.obs();
        let active = &self.active;
        // Tables a cancelled walk left detached: moved out here, dropped after the barrier.
        let mut leftover = Vec::new();
        self.ks.with_all_shards(|shards| {
            for s in shards.iter_mut() {
                let mut st = obs.shards[s.index()].lock();
                st.active = None;
                leftover.extend(st.reset());
            }
            obs.running.store(false, Ordering::Release);
            *obs.current.lock() = None;
            active.delta.lock().closed = true;
            if let Some(hook) = &self.on_barrier {
                hook(Barrier::End);
            }
        });
        drop(leftover);
    }

    /// Step 2: thaw every dict, one shard lock at a time.
    fn thaw(&self) {
        for si in 0..self.ks.num_shards() {
            self.ks.with_shard(si, |s: &mut Shard| {
                for db in 0..s.databases() {
                    s.db_mut(db).dict_mut().thaw_rehash();
                }
            });
        }
    }

    /// End the snapshot and hand the ticket over: the caller releases the slot when its output
    /// is complete (a file: after its commit).
    fn finish(mut self) -> Ticket {
        self.end();
        self.ticket.take().expect("finished once")
    }
}

impl Drop for Lifecycle<'_> {
    fn drop(&mut self) {
        if self.ticket.is_some() {
            self.end();
        }
        // Then the ticket (if still held) drops and frees the observer for the next snapshot.
    }
}

/// The right to run one snapshot on an observer's keyspace ("one snapshot at a time"): taken by
/// [`SnapshotObserver::try_begin`], released when dropped.
#[derive(Debug)]
pub struct Ticket {
    obs: Arc<SnapshotObserver>,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.obs.busy.store(false, Ordering::Release);
    }
}

impl SnapshotObserver {
    /// Take the right to run a snapshot; `Err(AlreadyInProgress)` while another one runs.
    pub fn try_begin(self: &Arc<Self>) -> Result<Ticket, SnapshotError> {
        if self
            .busy
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return Err(SnapshotError::AlreadyInProgress);
        }
        Ok(Ticket { obs: self.clone() })
    }
}

/// Encode one entry: SELECTDB (with the database's sizes) when its database is not `cur_db`,
/// then the key with its expiry and access metadata. The one encoder of the snapshot, used on
/// the worker and on serializer threads alike.
pub(crate) fn encode_entry<W: Write>(
    w: &mut RdbWriter<W>,
    cur_db: &mut Option<u32>,
    db_sizes: &[(u64, u64)],
    h: &Handle,
    access: KeyAccess,
) -> Result<(), RdbError> {
    if *cur_db != Some(h.db) {
        let (size, expires) = db_sizes.get(h.db as usize).copied().unwrap_or((0, 0));
        w.select_db(h.db, size, expires)?;
        *cur_db = Some(h.db);
    }
    let (k, exp) = (&*h.key, h.expire_at);
    w.set_next_access(access);
    match h.value.view() {
        // A string in a slot is always its own block (`Obj::new`); the second pattern cannot
        // match, and would be written the same way.
        View::Bytes(s) | View::Arc(Value::String(s)) => w.write_string(k, s, exp),
        View::Arc(Value::List(l)) => w.write_list(k, l.iter(), exp),
        View::Arc(Value::Set(s)) => w.write_set(k, s.iter(), exp),
        View::Arc(Value::ZSet(z)) => w.write_zset(k, z.iter(), exp),
        View::Arc(Value::Hash(h)) => w.write_hash(k, h.iter(), exp),
        View::Arc(Value::Stream(s)) => s.write_rdb(w, k, exp),
    }
}

/// The RDB side of the worker: decides what is written in which order (the expiry filter, the
/// access metadata, the database of the last entry) and encodes it here or on the pool.
struct Serializer<'p, W: Write> {
    w: RdbWriter<W>,
    cur_db: Option<u32>,
    db_sizes: Arc<Vec<(u64, u64)>>,
    /// Keys written (with a pool: in chunks written so far).
    keys: u64,
    skip_expired_before: i64,
    /// The keyspace's memory policy and clock as of the current batch ([`Serializer::refresh`]):
    /// the `IDLE` / `FREQ` of each key follow them, as Redis's `rdbSaveKeyValuePair` follows
    /// `server.maxmemory_policy` when it saves each key.
    mem: MemoryConfig,
    now_ms: i64,
    /// Serializer threads (None: encode here).
    pool: Option<Pool>,
    /// The job being filled (with a pool), and the database selected before its first entry.
    pending: Vec<(Handle, KeyAccess)>,
    pending_db: Option<u32>,
    /// Value and key bytes of `pending` (`Value::mem_usage`, O(1)).
    pending_bytes: u64,
    progress: &'p Progress,
}

impl<W: Write> Serializer<'_, W> {
    fn refresh(&mut self, ks: &Keyspace) {
        self.mem = ks.memory_config();
        self.now_ms = ks.now_ms();
    }

    fn write(&mut self, h: Handle) -> Result<(), RdbError> {
        if let Some(at) = h.expire_at {
            // Logically gone at the start (Redis's `now > when`): not part of the snapshot.
            if self.skip_expired_before > at {
                return Ok(());
            }
        }
        let access = memory::rdb_access(&self.mem, h.meta, self.now_ms);
        if self.pool.is_none() {
            encode_entry(&mut self.w, &mut self.cur_db, &self.db_sizes, &h, access)?;
            self.keys += 1;
            return Ok(());
        }
        if self.pending.is_empty() {
            self.pending_db = self.cur_db;
        }
        self.cur_db = Some(h.db);
        self.pending_bytes += (h.key.len() + h.value.mem_usage()) as u64;
        self.pending.push((h, access));
        if self.pending.len() >= CHUNK_ENTRIES || self.pending_bytes >= CHUNK_BYTES {
            self.dispatch()?;
        }
        Ok(())
    }

    /// With a pool: hand the pending entries over as one job.
    fn dispatch(&mut self) -> Result<(), RdbError> {
        let Some(pool) = self.pool.as_mut() else {
            return Ok(());
        };
        if self.pending.is_empty() {
            return Ok(());
        }
        self.pending_bytes = 0;
        let job = Job {
            start_db: self.pending_db,
            items: std::mem::replace(&mut self.pending, Vec::with_capacity(CHUNK_ENTRIES)),
        };
        self.keys += pool.submit(job, &mut self.w, self.progress)?;
        Ok(())
    }

    /// Every entry given so far is in the output (a pool's chunks written, in order); the next
    /// records (functions, aux, EOF) follow them.
    fn flush_entries(&mut self) -> Result<(), RdbError> {
        self.dispatch()?;
        if let Some(pool) = self.pool.as_mut() {
            self.keys += pool.drain(&mut self.w, self.progress)?;
        }
        Ok(())
    }
}

/// A snapshot whose start barrier has passed ([`begin_snapshot`]): the cut of a point-in-time
/// snapshot is fixed. Run it with [`run_started`] (on any thread); until then writers hand their
/// pre-images over and nothing is serialized. Dropped without being run (a worker thread that
/// could not start, an early return), it ends the snapshot: the observer deactivates, the dicts
/// thaw and the ticket is released.
#[must_use = "a started snapshot must be run (run_started); dropping it ends the snapshot"]
#[derive(Debug)]
pub struct Started<'a> {
    life: Lifecycle<'a>,
    start: Instant,
    start_ms: i64,
    db_sizes: Vec<(u64, u64)>,
    buckets_total: u64,
}

/// The start barrier: every shard locked, in order; the snapshot becomes active for every writer
/// at once (from its next lock acquisition on), the dicts' rehash is frozen, and a fresh epoch
/// makes every bucket unvisited without a reset pass.
pub fn begin_snapshot<'a>(
    ks: impl Into<KeyspaceRef<'a>>,
    ticket: Ticket,
    opts: &SnapshotOptions,
) -> Started<'a> {
    // The shards this thread locks while setting up are the snapshot's (stall attribution).
    let _worker = forkless_keyspace::trace::snapshot_worker_scope();
    let ks = ks.into();
    let obs = ticket.obs.clone();
    let start = Instant::now();
    let mut epoch = (obs.epoch.fetch_add(1, Ordering::Relaxed) + 1) as u32;
    if epoch == 0 {
        // u32 wrap: 0 is the stamp of never-visited buckets.
        epoch = (obs.epoch.fetch_add(1, Ordering::Relaxed) + 1) as u32;
    }
    let active = Arc::new(Active::new(epoch, opts.mode));
    let databases = ks.databases();
    let mut db_sizes = vec![(0u64, 0u64); databases as usize];
    let mut buckets_total = 0u64;
    let start_ms = ks.now_ms();
    ks.with_all_shards(|shards| {
        for s in shards.iter_mut() {
            {
                let mut st = obs.shards[s.index()].lock();
                st.active = Some(active.clone());
                // Empty: the previous end barrier reset it.
                let _ = st.reset();
            }
            for db in 0..databases {
                let d = s.db_mut(db).dict_mut();
                d.freeze_rehash();
                db_sizes[db as usize].0 += d.len() as u64;
                buckets_total += d.num_buckets() as u64;
            }
        }
        *obs.current.lock() = Some(active.clone());
        obs.running.store(true, Ordering::Release);
        if let Some(hook) = &opts.on_barrier {
            hook(Barrier::Start);
        }
    });
    Started {
        life: Lifecycle {
            ks,
            on_barrier: opts.on_barrier.clone(),
            ticket: Some(ticket),
            active,
            ended: false,
        },
        start,
        start_ms,
        db_sizes,
        buckets_total,
    }
}

/// Run one snapshot of `ks` on the current thread, writing to `out`: [`begin_snapshot`] then
/// [`run_started`]. The ticket's observer must be the one registered on `ks`. Returns the writer
/// (positioned after the last byte) and the result.
pub fn run_snapshot<W: Write>(
    ks: &Keyspace,
    ticket: Ticket,
    opts: &SnapshotOptions,
    out: W,
    progress: &Progress,
    cancel: &AtomicBool,
) -> Result<(W, SnapshotResult), SnapshotError> {
    let started = begin_snapshot(ks, ticket, opts);
    run_started(started, opts, out, progress, cancel)
}

/// The walk, the end and the output of a snapshot begun with [`begin_snapshot`] (same options).
/// The snapshot counts as finished when this returns: the ticket is released and
/// `progress.done` set (in that order) just before, on success and on error. A caller that
/// still has to make the output durable uses `start_snapshot` (files), which reports finished
/// only after the commit.
pub fn run_started<W: Write>(
    started: Started<'_>,
    opts: &SnapshotOptions,
    out: W,
    progress: &Progress,
    cancel: &AtomicBool,
) -> Result<(W, SnapshotResult), SnapshotError> {
    let r = run_until_output(started, opts, out, progress, cancel).map(|(w, res, ticket)| {
        drop(ticket);
        (w, res)
    });
    progress.done.store(true, Ordering::Release);
    r
}

/// [`run_started`] without the release: returns the ticket with the output, so the caller can
/// commit the output before it releases the slot and reports finished. On error the ticket is
/// released (after `out` is dropped) before this returns; `progress.done` is never set here.
pub fn run_until_output<W: Write>(
    started: Started<'_>,
    opts: &SnapshotOptions,
    out: W,
    progress: &Progress,
    cancel: &AtomicBool,
) -> Result<(W, SnapshotResult, Ticket), SnapshotError> {
    // The shards this thread locks from here on are the worker's (stall attribution).
    let _worker = forkless_keyspace::trace::snapshot_worker_scope();
    let Started {
        life,
        start,
        start_ms,
        db_sizes,
        buckets_total,
    } = started;
    let mut life = life;
    let obs = life.obs_arc();
    let obs = &*obs;
    // A second handle on the keyspace, so `life` stays movable (`finish`) while we walk.
    let ks_ref = match &life.ks {
        KeyspaceRef::Borrowed(k) => KeyspaceRef::Borrowed(k),
        KeyspaceRef::Shared(k) => KeyspaceRef::Shared(k.clone()),
    };
    let ks: &Keyspace = &ks_ref;
    let active = life.active.clone();
    let databases = ks.databases();
    let epoch = active.epoch;
    progress
        .buckets_total
        .store(buckets_total, Ordering::Relaxed);

    let db_sizes = Arc::new(db_sizes);
    let threads = opts.serialize_threads.max(1);
    let pool = if threads > 1 {
        Some(Pool::new(
            threads - 1,
            threads * CHUNKS_IN_FLIGHT_PER_THREAD,
            db_sizes.clone(),
            opts.rdb.clone(),
            opts.on_chunk_encode.clone(),
        )?)
    } else {
        None
    };
    let mut ser = Serializer {
        w: RdbWriter::new(out, opts.rdb.clone())?,
        cur_db: None,
        db_sizes,
        keys: 0,
        skip_expired_before: start_ms,
        mem: ks.memory_config(),
        now_ms: start_ms,
        pool,
        pending: Vec::new(),
        pending_db: None,
        pending_bytes: 0,
        progress,
    };
    let mut spill: Option<Spill> = None;
    let mut peak_extra = 0u64;
    let batch = opts.batch_buckets.max(1);
    let mut batches = 0u64;
    let mut handles: Vec<Handle> = Vec::new();

    // `db` is a table's origin (its index at the start barrier): SWAPDB moves tables, FLUSHDB
    // detaches them (observer.rs, H5); handles are recorded under the origin.
    for db in 0..databases {
        for si in 0..ks.num_shards() {
            let mut b = 0usize;
            let mut detached = None;
            // The dict's size when the walk last looked: a frozen dict that grew (the forced
            // grow keeps every hash's stamp but moves buckets) is walked again from 0, skipping
            // stamped buckets.
            let mut seen_n: Option<usize> = None;
            loop {
                if cancel.load(Ordering::Relaxed) {
                    return Err(SnapshotError::Cancelled);
                }
                handles.clear();
                let more = ks.with_shard(si, |s: &mut Shard| {
                    let cur = match obs.shards[s.index()].lock().find(db) {
                        Ok(cur) => cur,
                        Err(table) => {
                            detached = table;
                            return false;
                        }
                    };
                    let n = s.db(cur).dict().num_buckets();
                    if let Some(old) = seen_n.filter(|&old| old != n) {
                        b = 0;
                        progress
                            .buckets_total
                            .fetch_add(n.saturating_sub(old) as u64, Ordering::Relaxed);
                    }
                    seen_n = Some(n);
                    if b >= n {
                        return false;
                    }
                    let end = (b + batch).min(n);
                    let mut walked = 0;
                    let table = s.db_mut(cur);
                    for i in b..end {
                        if table.dict().stamp(i) != epoch {
                            visit_bucket(table, db, i, epoch, &mut handles);
                            walked += 1;
                        }
                    }
                    active.walked_buckets.fetch_add(walked, Ordering::Relaxed);
                    b = end;
                    true
                });
                ser.refresh(ks);
                for h in handles.drain(..) {
                    ser.write(h)?;
                }
                batches += 1;
                if batches.is_multiple_of(BOOKKEEP_EVERY) || !more {
                    drain_handoffs(&active, &mut ser, &mut handles)?;
                    peak_extra = peak_extra.max(extra_bytes(&active));
                    maybe_spill(&active, opts, &mut spill)?;
                    progress.buckets_done.store(
                        active.walked_buckets.load(Ordering::Relaxed)
                            + active.forced_visits.load(Ordering::Relaxed),
                        Ordering::Relaxed,
                    );
                    progress.keys.store(ser.keys, Ordering::Relaxed);
                    progress
                        .bytes
                        .store(ser.w.bytes_written(), Ordering::Relaxed);
                    progress
                        .delta_bytes
                        .store(active.delta.lock().bytes, Ordering::Relaxed);
                }
                if let Some(hook) = &opts.after_batch {
                    hook(batches);
                }
                if !more {
                    break;
                }
            }
            if let Some(table) = detached.take() {
                walk_detached(table, db, batch, &active, &mut ser, &mut handles, cancel)?;
            }
        }
    }

    // Every bucket is visited: close the snapshot (converging: the delta stream ends here), then
    // thaw the dicts shard by shard.
    life.end();
    drain_handoffs(&active, &mut ser, &mut handles)?;
    ser.flush_entries()?;
    let max_chunks_in_flight = ser.pool.as_ref().map_or(0, |p| p.max_in_flight);
    // The serializer threads end here (their queue is empty).
    drop(ser.pool.take());
    // Function libraries, read after the end barrier: a FUNCTION command logged before the
    // barrier (an AOF rewrite's cut) is in them, one logged after it replays on top (a repeated
    // LOAD or a DELETE of a missing library fails harmlessly while loading). Redis accepts the
    // record anywhere before EOF.
    if let Some(libs) = ks.libraries() {
        for code in libs.codes() {
            ser.w.function(&code)?;
        }
    }
    if let Some(trailer) = &opts.trailer_aux {
        for (k, v) in trailer() {
            ser.w.aux(&k, &v)?;
        }
    }
    let rdb_bytes = ser.w.bytes_written();
    let keys = ser.keys;
    let mut out = ser.w.finish()?;
    let (delta_commands, delta_bytes, rest) = {
        let mut d = active.delta.lock();
        (d.commands, d.bytes, d.take())
    };
    let mut spilled_bytes = 0;
    if let Some(sp) = spill.as_mut() {
        spilled_bytes = sp.copy_to(&mut out)?;
    }
    out.write_all(&rest)?;
    out.flush()?;
    let ticket = life.finish();
    let duration = start.elapsed();
    let total_bytes = rdb_bytes + delta_bytes;
    progress.keys.store(keys, Ordering::Relaxed);
    progress.bytes.store(total_bytes, Ordering::Relaxed);
    Ok((
        out,
        SnapshotResult {
            mode: opts.mode,
            duration,
            keys,
            rdb_bytes,
            total_bytes,
            mb_per_s: total_bytes as f64 / 1e6 / duration.as_secs_f64().max(1e-9),
            peak_extra_bytes: peak_extra,
            forced_visits: active.forced_visits.load(Ordering::Relaxed),
            walked_buckets: active.walked_buckets.load(Ordering::Relaxed),
            delta_commands,
            delta_bytes,
            spilled_bytes,
            serialize_threads: threads,
            max_chunks_in_flight,
        },
        ticket,
    ))
}

/// Serialize the unvisited buckets of a table FLUSHDB detached (origin `db`), without any lock
/// (no writer can reach it any more), then drop it here, on the worker.
fn walk_detached<W: Write>(
    mut table: Box<forkless_keyspace::db::Db>,
    db: u32,
    batch: usize,
    active: &Active,
    ser: &mut Serializer<'_, W>,
    handles: &mut Vec<Handle>,
    cancel: &AtomicBool,
) -> Result<(), SnapshotError> {
    let n = table.dict().num_buckets();
    for start in (0..n).step_by(batch) {
        if cancel.load(Ordering::Relaxed) {
            return Err(SnapshotError::Cancelled);
        }
        handles.clear();
        let mut walked = 0;
        for i in start..(start + batch).min(n) {
            if table.dict().stamp(i) != active.epoch {
                visit_bucket(&mut table, db, i, active.epoch, handles);
                walked += 1;
            }
        }
        active.walked_buckets.fetch_add(walked, Ordering::Relaxed);
        for h in handles.drain(..) {
            ser.write(h)?;
        }
    }
    handles.clear();
    Ok(())
}

/// Batches (of `batch_buckets`, 4 by default) between two passes of the worker's bookkeeping:
/// draining the hand-off queue, the peak-memory sample, the spill check and the progress
/// counters. Each pass takes the hand-off and delta mutexes that every handed-off or captured
/// write takes too; once per 4-bucket batch, the two threads traded those cache lines every few
/// keys. Every 16 batches (64 buckets, the old batch) they meet 16 times less; the hand-off queue
/// and the in-memory deltas wait at most 16 batches longer (a shard's last batch and the end
/// barrier always drain).
const BOOKKEEP_EVERY: u64 = 16;

fn extra_bytes(active: &Active) -> u64 {
    active.handoff_bytes.load(Ordering::Relaxed) + active.delta.lock().in_memory() as u64
}

/// Serialize the baselines writers handed over since the last call. `spare` (empty) is swapped
/// in for them, so the writers' queue keeps a capacity and a hand-off rarely allocates.
fn drain_handoffs<W: Write>(
    active: &Active,
    ser: &mut Serializer<'_, W>,
    spare: &mut Vec<Handle>,
) -> Result<(), RdbError> {
    spare.clear();
    std::mem::swap(&mut *active.handoff.lock(), spare);
    if spare.is_empty() {
        return Ok(());
    }
    let mut bytes = 0;
    for h in spare.drain(..) {
        bytes += crate::observer::handle_bytes(&h.key, &h.value);
        ser.write(h)?;
    }
    active.handoff_bytes.fetch_sub(
        bytes.min(active.handoff_bytes.load(Ordering::Relaxed)),
        Ordering::Relaxed,
    );
    Ok(())
}

/// Converging mode: move the in-memory deltas to the spill file once past the limit. The delta
/// lock is held only for the O(1) swap, never across the write.
fn maybe_spill(
    active: &Active,
    opts: &SnapshotOptions,
    spill: &mut Option<Spill>,
) -> Result<(), SnapshotError> {
    let Some(path) = &opts.spill_path else {
        return Ok(());
    };
    let buf = {
        let mut d = active.delta.lock();
        if d.in_memory() < opts.delta_spill_bytes {
            return Ok(());
        }
        d.take()
    };
    if spill.is_none() {
        *spill = Some(Spill::create(path)?);
    }
    spill.as_mut().expect("created").write(&buf)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use forkless_keyspace::{Config, Session};

    fn frozen_and_buckets(ks: &Keyspace) -> Vec<(bool, usize)> {
        (0..ks.num_shards())
            .map(|si| {
                ks.with_shard(si, |s: &mut Shard| {
                    let d = s.db(0).dict();
                    (d.is_frozen(), d.num_buckets())
                })
            })
            .collect()
    }

    /// Issue 13 item 7: the end barrier (every writer waiting) resizes nothing; the dicts that
    /// passed load factor 1 while frozen thaw and start their resize after it, one shard lock at
    /// a time.
    #[test]
    fn the_end_barrier_resizes_nothing_the_thaw_after_it_does() {
        let mut ks = Keyspace::new(Config {
            shards: 4,
            ..Config::seeded(11)
        });
        let obs = crate::install(&mut ks);
        let opts = SnapshotOptions::default();
        let started = begin_snapshot(&ks, obs.try_begin().unwrap(), &opts);
        let frozen_at = frozen_and_buckets(&ks);
        // Grow every dict past load factor 1 (below the forced-grow bound) while frozen.
        for i in 0..60 {
            let key = format!("k{i}");
            let r = ks.execute(&mut Session::default(), &[b"SET", key.as_bytes(), b"v"]);
            assert!(!r.is_error());
        }
        let grown = frozen_and_buckets(&ks);
        assert_eq!(grown, frozen_at, "resized while frozen");
        let mut life = started.life;
        life.end_barrier();
        // After the barrier: inactive, yet every dict is still frozen at its size.
        assert!(!obs.running.load(Ordering::Acquire));
        assert_eq!(frozen_and_buckets(&ks), frozen_at, "the barrier resized");
        life.thaw();
        let thawed = frozen_and_buckets(&ks);
        for (si, ((frozen, buckets), (_, before))) in thawed.iter().zip(&frozen_at).enumerate() {
            assert!(!frozen, "shard {si} not thawed");
            assert!(
                buckets > before,
                "shard {si}: no resize started after the barrier"
            );
        }
        life.ended = true;
        drop(life);
        drop(obs.try_begin().expect("free"));
    }
}
