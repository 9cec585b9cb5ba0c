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

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use forkless_keyspace::{Keyspace, Shard, Value};
use forkless_rdb::{RdbError, RdbWriter, WriteOptions};
use forkless_sync::atomic::{AtomicBool, AtomicU64, Ordering};
use forkless_sync::Arc;

use crate::delta::Spill;
use crate::observer::{visit_bucket, Active, Handle, Mode, SnapshotObserver};

/// Options of one snapshot.
#[derive(Clone)]
pub struct SnapshotOptions {
    /// Converging (default) or point-in-time.
    pub mode: Mode,
    /// RDB writer options (compression, checksum, extra aux fields...).
    pub rdb: WriteOptions,
    /// Buckets visited per shard-lock acquisition by the walk.
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
}

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
            .finish_non_exhaustive()
    }
}

impl Default for SnapshotOptions {
    fn default() -> Self {
        SnapshotOptions {
            mode: Mode::Converging,
            rdb: WriteOptions::default(),
            batch_buckets: 64,
            delta_spill_bytes: 64 << 20,
            spill_path: None,
            after_batch: None,
            on_barrier: None,
            trailer_aux: None,
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
    /// True once finished (successfully or not).
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

impl std::error::Error for SnapshotError {}

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

/// Ends the snapshot (the end barrier) when dropped, on success and on every error path, so
/// writers never keep capturing after the worker stopped.
struct Session<'a> {
    ks: &'a Keyspace,
    on_barrier: Option<std::sync::Arc<dyn Fn(Barrier) + Send + Sync>>,
    ticket: Ticket,
    active: Arc<Active>,
    ended: bool,
}

impl Session<'_> {
    /// The end barrier: all shards locked in order; deactivate, thaw the dicts, close the deltas.
    fn end(&mut self) {
        if self.ended {
            return;
        }
        self.ended = true;
        let obs = &*self.ticket.obs;
        let active = &self.active;
        self.ks.with_all_shards(|shards| {
            for s in shards.iter_mut() {
                let mut st = obs.shards[s.index()].lock();
                st.active = None;
                for f in st.fully_visited.iter_mut() {
                    *f = false;
                }
                drop(st);
                for db in 0..s.databases() {
                    s.db_mut(db).dict_mut().thaw_rehash();
                }
            }
            obs.running.store(false, Ordering::Release);
            *obs.current.lock() = None;
            active.delta.lock().closed = true;
            if let Some(hook) = &self.on_barrier {
                hook(Barrier::End);
            }
        });
    }
}

impl Drop for Session<'_> {
    fn drop(&mut self) {
        self.end();
        // Then the ticket drops and frees the observer for the next snapshot.
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

/// The RDB side of the worker: tracks the database of the last entry written.
struct Serializer<W: Write> {
    w: RdbWriter<W>,
    cur_db: Option<u32>,
    db_sizes: Vec<(u64, u64)>,
    keys: u64,
    skip_expired_before: i64,
}

impl<W: Write> Serializer<W> {
    fn write(&mut self, h: &Handle) -> Result<(), RdbError> {
        if let Some(at) = h.expire_at {
            // Logically gone at the start (Redis's `now > when`): not part of the snapshot.
            if self.skip_expired_before > at {
                return Ok(());
            }
        }
        if self.cur_db != Some(h.db) {
            let (size, expires) = self.db_sizes.get(h.db as usize).copied().unwrap_or((0, 0));
            self.w.select_db(h.db, size, expires)?;
            self.cur_db = Some(h.db);
        }
        let (k, exp) = (&*h.key, h.expire_at);
        match &*h.value {
            Value::String(s) => self.w.write_string(k, s, exp)?,
            Value::List(l) => self.w.write_list(k, l.iter(), exp)?,
            Value::Set(s) => self.w.write_set(k, s.iter(), exp)?,
            Value::ZSet(z) => self.w.write_zset(k, z.iter(), exp)?,
            Value::Hash(h) => self.w.write_hash(k, h.iter(), exp)?,
        }
        self.keys += 1;
        Ok(())
    }
}

/// A snapshot whose start barrier has passed ([`begin_snapshot`]): the cut of a point-in-time
/// snapshot is fixed. Run it with [`run_started`] (on any thread); until then writers hand their
/// pre-images over and nothing is serialized.
#[must_use = "a started snapshot must be run (run_started), or writers keep handing buckets over"]
#[derive(Debug)]
pub struct Started {
    ticket: Ticket,
    active: Arc<Active>,
    start: Instant,
    start_ms: i64,
    db_sizes: Vec<(u64, u64)>,
    buckets_total: u64,
}

/// The start barrier: every shard locked, in order; the snapshot becomes active for every writer
/// at once (from its next lock acquisition on), the dicts' rehash is frozen, and a fresh epoch
/// makes every bucket unvisited without a reset pass.
pub fn begin_snapshot(ks: &Keyspace, ticket: Ticket, opts: &SnapshotOptions) -> Started {
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
                for f in st.fully_visited.iter_mut() {
                    *f = false;
                }
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
        ticket,
        active,
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
    run_started(ks, started, opts, out, progress, cancel)
}

/// The walk, the end barrier and the output of a snapshot begun with [`begin_snapshot`] on the
/// same keyspace and options.
pub fn run_started<W: Write>(
    ks: &Keyspace,
    started: Started,
    opts: &SnapshotOptions,
    out: W,
    progress: &Progress,
    cancel: &AtomicBool,
) -> Result<(W, SnapshotResult), SnapshotError> {
    let Started {
        ticket,
        active,
        start,
        start_ms,
        db_sizes,
        buckets_total,
    } = started;
    let obs = ticket.obs.clone();
    let obs = &*obs;
    let databases = ks.databases();
    let epoch = active.epoch;
    let mut session = Session {
        ks,
        on_barrier: opts.on_barrier.clone(),
        ticket,
        active: active.clone(),
        ended: false,
    };
    progress
        .buckets_total
        .store(buckets_total, Ordering::Relaxed);

    let mut ser = Serializer {
        w: RdbWriter::new(out, opts.rdb.clone())?,
        cur_db: None,
        db_sizes,
        keys: 0,
        skip_expired_before: start_ms,
    };
    let mut spill: Option<Spill> = None;
    let mut peak_extra = 0u64;
    let batch = opts.batch_buckets.max(1);
    let mut batches = 0u64;
    let mut handles: Vec<Handle> = Vec::new();

    for db in 0..databases {
        for si in 0..ks.num_shards() {
            let mut b = 0usize;
            loop {
                if cancel.load(Ordering::Relaxed) {
                    return Err(SnapshotError::Cancelled);
                }
                handles.clear();
                let more = ks.with_shard(si, |s: &mut Shard| {
                    if obs.shards[s.index()].lock().fully_visited[db as usize] {
                        return false;
                    }
                    let n = s.db(db).dict().num_buckets();
                    if b >= n {
                        return false;
                    }
                    let end = (b + batch).min(n);
                    let mut walked = 0;
                    for i in b..end {
                        if s.db(db).dict().stamp(i) != epoch {
                            visit_bucket(s, db, i, epoch, &mut handles);
                            walked += 1;
                        }
                    }
                    active.walked_buckets.fetch_add(walked, Ordering::Relaxed);
                    b = end;
                    true
                });
                for h in &handles {
                    ser.write(h)?;
                }
                drain_handoffs(&active, &mut ser)?;
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
                batches += 1;
                if let Some(hook) = &opts.after_batch {
                    hook(batches);
                }
                if !more {
                    break;
                }
            }
        }
    }

    // Every bucket is visited: close the snapshot (converging: the delta stream ends here).
    session.end();
    drain_handoffs(&active, &mut ser)?;
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
    drop(session);
    let duration = start.elapsed();
    let total_bytes = rdb_bytes + delta_bytes;
    progress.keys.store(keys, Ordering::Relaxed);
    progress.bytes.store(total_bytes, Ordering::Relaxed);
    progress.done.store(true, Ordering::Release);
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
        },
    ))
}

fn extra_bytes(active: &Active) -> u64 {
    active.handoff_bytes.load(Ordering::Relaxed) + active.delta.lock().in_memory() as u64
}

/// Serialize the baselines writers handed over since the last call.
fn drain_handoffs<W: Write>(active: &Active, ser: &mut Serializer<W>) -> Result<(), RdbError> {
    let taken = std::mem::take(&mut *active.handoff.lock());
    if taken.is_empty() {
        return Ok(());
    }
    let mut bytes = 0;
    for h in &taken {
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
