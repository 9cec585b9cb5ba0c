//! The writer side of the per-bucket snapshot protocol: a [`WriteObserver`] the keyspace calls,
//! under the shard lock, before every mutation.
//!
//! # The per-bucket state machine
//! Each bucket of each (shard, database) dict carries a `u32` stamp. A snapshot runs with a fresh
//! epoch `E` (never reused: no reset pass between snapshots). A bucket is:
//!
//! * `UNVISITED` while `stamp != E`: its entries have not reached the output yet;
//! * `VISITED` once `stamp == E`: its entries at the moment of the transition (the bucket's
//!   *baseline*) were handed to the worker, and every later change to it is the worker's no more.
//!
//! The transition happens exactly once per bucket and snapshot (a forced grow, below, replaces
//! buckets by new ones that inherit their state), always with the shard lock held, in
//! [`visit_bucket`], called from exactly these places:
//! 1. the worker's walk (`worker.rs`), bucket by bucket;
//! 2. point-in-time mode: the first write to an unvisited bucket ([`SnapshotObserver::before_write`]);
//! 3. converging mode: a command that touches visited *and* unvisited buckets visits the
//!    unvisited ones before any of them changes ([`SnapshotObserver::force_visit`], driven by the
//!    keyspace's `Ctx::notify`);
//!
//! FLUSHDB/FLUSHALL/SWAPDB visit nothing (O(1) for the writer; DESIGN.md 3.1). The walk and the
//! baselines follow *tables*, not database indexes: each shard keeps, per database index, the
//! index its table had at the start barrier (its *origin*), and every handle is recorded under
//! its table's origin. SWAPDB ([`SnapshotObserver::before_swap`]) swaps two origins; FLUSHDB
//! ([`SnapshotObserver::before_flush`]) moves the table out of the keyspace into the shard's
//! `detached` list (no writer can reach it any more, so its unvisited buckets keep their state
//! of the flush) and leaves a fresh table with no origin, whose every bucket counts as visited
//! (never a visit: in point-in-time mode that would hand post-flush keys to the snapshot; it is
//! not frozen, so it grows and rehashes normally). The walk serializes a detached table's
//! unvisited buckets outside every lock and drops it.
//!
//! No other place visits. In particular a frozen dict past its forced-resize bound grows by
//! itself on its next insert (`forkless_dict`'s forced grow) and keeps every hash's stamp:
//! visited entries stay visited, unvisited ones wait for the walk (which goes over a grown table
//! again, skipping stamped buckets). Nothing is handed over for it.
//!
//! # Lifecycle
//! * *Idle*: `running` false, every `ShardSnap::active` `None`, no dict frozen (between the end
//!   barrier and the thaw of its shard a dict is still frozen, which only delays its resize).
//! * *Active*: from the start barrier (`worker::begin_snapshot`: all shards locked; fresh epoch,
//!   every dict frozen, `active` set on every shard, `running` true) to the end barrier.
//! * The end (`worker.rs`, `Lifecycle`): the end barrier (all shards locked) clears `active` and
//!   `running` and closes the deltas; then, one shard lock at a time, the dicts thaw. It runs
//!   when the worker finishes, fails or is cancelled, and when a begun snapshot is dropped without
//!   being run. The ticket (one snapshot at a time) is released only after both steps, and for
//!   a file only after its commit: only then does the snapshot count as finished.
//!
//! # Hand-off rules
//! * H1. Baselines are reference-counted handles (`Obj`: an `Arc<Value>` or a string's counted
//!   block; key bytes, expiry) taken under the
//!   shard lock; serialization happens in the worker after the lock is released. A writer that
//!   later changes the value copies it first (copy-on-write), so the worker serializes the
//!   baseline, never a torn value.
//! * H2. Converging mode captures (appends to the delta stream) the propagated commands of every
//!   command that touched a visited bucket, under the command's shard locks, after it ran. By the
//!   visit in case 3, a captured command touches only visited buckets: every key it changes has its
//!   baseline in the RDB part and the command replays on top of it exactly once.
//! * H3. A key's baseline reaches the output before any delta that changes it: baselines go to the
//!   RDB part, deltas after the RDB's EOF.
//! * H4. Point-in-time mode never captures; its output is the union of the baselines, all taken
//!   before the first change of their bucket, i.e. the keyspace at the start barrier.
//!
//! * H5. A handle carries its table's origin, so the RDB part holds every baseline where its table
//!   was at the start barrier. Point-in-time: that is the start state. Converging: every SWAPDB
//!   and FLUSHDB during the snapshot is captured, so replaying them on top of the RDB moves each
//!   table's baselines to where the table is at the end (or drops them), whether a bucket was
//!   visited before or after the swap; a detached table's buckets hold their state at the flush,
//!   which the captured FLUSHDB then empties.
//!
//! Lock order: shard lock, then this module's per-shard slot, then the hand-off queue or the delta
//! buffer (leaves); a captured write takes `current`, then the delta buffer. The worker follows
//! the same order (it sets `current` holding no other lock of this module).

use forkless_keyspace::db::Db;
use forkless_keyspace::{Propagated, Shard, Slot, WriteObserver};
use forkless_sync::atomic::{AtomicBool, AtomicU64, Ordering};
use forkless_sync::{Arc, Mutex};

use crate::delta::DeltaBuf;

/// Which snapshot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// RDB + RESP deltas: the keyspace at the end barrier (the default).
    Converging,
    /// Pure RDB: the keyspace at the start barrier.
    PointInTime,
}

impl Mode {
    /// The mode's name, as every text form writes it (CLI flags, segment aux fields, reports):
    /// `converging` or `pit`.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Converging => "converging",
            Mode::PointInTime => "pit",
        }
    }
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A text that names no [`Mode`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseModeError(pub String);

impl std::fmt::Display for ParseModeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "unknown snapshot mode {:?} (expected converging or pit)",
            self.0
        )
    }
}

impl std::error::Error for ParseModeError {}

impl std::str::FromStr for Mode {
    type Err = ParseModeError;
    /// The inverse of [`Mode::name`] (exact, lower case).
    fn from_str(s: &str) -> Result<Mode, ParseModeError> {
        match s {
            "converging" => Ok(Mode::Converging),
            "pit" => Ok(Mode::PointInTime),
            _ => Err(ParseModeError(s.to_string())),
        }
    }
}

/// One baseline entry handed to the worker.
#[derive(Debug, Clone)]
pub struct Handle {
    /// Database.
    pub db: u32,
    /// Key bytes (no allocation for a key of up to 15 bytes: [`forkless_keyspace::Key`]).
    pub key: forkless_keyspace::Key,
    /// The value, shared with the keyspace (copy-on-write).
    pub value: forkless_keyspace::Obj,
    /// Absolute expiry (Unix ms).
    pub expire_at: Option<i64>,
    /// The key's access metadata word (LRU clock or LFU counter) when it was collected; the
    /// RDB's `IDLE` / `FREQ` come from it.
    pub meta: u32,
}

/// State shared by the writers and the worker while one snapshot runs.
#[derive(Debug)]
pub struct Active {
    /// The epoch stamped on visited buckets.
    pub epoch: u32,
    /// The mode.
    pub mode: Mode,
    /// Baselines handed over by writers (cases 2-4), drained by the worker.
    pub handoff: Mutex<Vec<Handle>>,
    /// Approximate bytes of the handles waiting in `handoff`.
    pub handoff_bytes: AtomicU64,
    /// The delta stream (converging mode).
    pub delta: Mutex<DeltaBuf>,
    /// Buckets visited by writers rather than by the walk (cases 2-4).
    pub forced_visits: AtomicU64,
    /// Buckets visited by the walk.
    pub walked_buckets: AtomicU64,
}

impl Active {
    pub(crate) fn new(epoch: u32, mode: Mode) -> Active {
        Active {
            epoch,
            mode,
            handoff: Mutex::new(Vec::new()),
            handoff_bytes: AtomicU64::new(0),
            delta: Mutex::new(DeltaBuf::default()),
            forced_visits: AtomicU64::new(0),
            walked_buckets: AtomicU64::new(0),
        }
    }
}

/// Per-shard snapshot state, guarded by its own (leaf) mutex, only touched with the shard lock
/// held.
#[derive(Debug, Default)]
pub(crate) struct ShardSnap {
    pub(crate) active: Option<Arc<Active>>,
    /// Per database index: the index its table had at the start barrier (moved by SWAPDB), or
    /// `None` for a table created by FLUSHDB/FLUSHALL during the snapshot (every bucket counts
    /// as visited).
    pub(crate) origin: Vec<Option<u32>>,
    /// Tables FLUSHDB/FLUSHALL took out of the keyspace during the snapshot, by origin: the walk
    /// serializes their unvisited buckets, then drops them.
    pub(crate) detached: Vec<Option<Box<Db>>>,
}

impl ShardSnap {
    fn new(databases: u32) -> ShardSnap {
        ShardSnap {
            active: None,
            origin: (0..databases).map(Some).collect(),
            detached: (0..databases).map(|_| None).collect(),
        }
    }

    /// Every table back at its own index, nothing detached (the start and end barriers). Returns
    /// the tables still detached (a cancelled walk), for the caller to drop outside the locks.
    pub(crate) fn reset(&mut self) -> Vec<Db> {
        for (i, o) in self.origin.iter_mut().enumerate() {
            *o = Some(i as u32);
        }
        self.detached
            .iter_mut()
            .filter_map(Option::take)
            .map(|t| *t)
            .collect()
    }

    /// The index the table of origin `origin` has now, or its detached table (taken).
    pub(crate) fn find(&mut self, origin: u32) -> Result<u32, Option<Box<Db>>> {
        match self.origin.iter().position(|o| *o == Some(origin)) {
            Some(i) => Ok(i as u32),
            None => Err(self
                .detached
                .get_mut(origin as usize)
                .and_then(Option::take)),
        }
    }
}

/// Approximate heap bytes of a handle, for the memory accounting.
pub(crate) fn handle_bytes(key: &[u8], value: &forkless_keyspace::Obj) -> u64 {
    (key.len() + value.mem_usage() + std::mem::size_of::<Handle>()) as u64
}

/// Collect the entries of bucket `b` of `table` as handles of database `origin` (the table's
/// index at the start barrier) and stamp it visited. The caller holds the shard lock (or owns a
/// detached table) and has checked that the bucket is unvisited.
pub(crate) fn visit_bucket(
    table: &mut Db,
    origin: u32,
    b: usize,
    epoch: u32,
    out: &mut Vec<Handle>,
) -> u64 {
    let db = origin;
    let d = table.dict_mut();
    let mut bytes = 0;
    for (k, slot, meta) in d.bucket_entries(b).with_meta() {
        out.push(handle_of(db, k, slot, meta));
        bytes += handle_bytes(k, &slot.value);
    }
    d.set_stamp(b, epoch);
    bytes
}

fn handle_of(db: u32, key: &[u8], slot: &Slot, meta: u32) -> Handle {
    Handle {
        db,
        key: key.into(),
        value: slot.value.clone(),
        expire_at: slot.expire_at(),
        meta,
    }
}

/// The [`WriteObserver`] of the forkless snapshot. Registered once on a keyspace
/// (`Keyspace::set_observer`); costs one relaxed atomic load per write while no snapshot runs.
#[derive(Debug)]
pub struct SnapshotObserver {
    /// True while a snapshot runs (set and cleared under all shard locks).
    pub(crate) running: AtomicBool,
    /// Per-shard state, indexed by shard index.
    pub(crate) shards: Box<[Mutex<ShardSnap>]>,
    /// The running snapshot, for [`WriteObserver::captured`] (which gets no shard).
    pub(crate) current: Mutex<Option<Arc<Active>>>,
    /// Last epoch used.
    pub(crate) epoch: AtomicU64,
    /// One snapshot at a time.
    pub(crate) busy: AtomicBool,
}

impl SnapshotObserver {
    /// An observer for a keyspace of `num_shards` shards and `databases` databases.
    pub fn new(num_shards: usize, databases: u32) -> SnapshotObserver {
        SnapshotObserver {
            running: AtomicBool::new(false),
            shards: (0..num_shards)
                .map(|_| Mutex::new(ShardSnap::new(databases)))
                .collect(),
            current: Mutex::new(None),
            epoch: AtomicU64::new(0),
            busy: AtomicBool::new(false),
        }
    }

    /// The shard's slot, locked, when a snapshot runs (one relaxed load otherwise). A writer
    /// holds it for the whole of its check and hand-off: one lock, and no reference count of
    /// the shared [`Active`] touched per write.
    fn slot(&self, shard: &Shard) -> Option<forkless_sync::MutexGuard<'_, ShardSnap>> {
        if !self.running.load(Ordering::Acquire) {
            return None;
        }
        let st = self.shards[shard.index()].lock();
        st.active.is_some().then_some(st)
    }

    /// The origin of the table at `db` when the bucket of `hash` in it is unvisited; `None` when
    /// visited (or the table was created during the snapshot).
    fn unvisited(
        st: &ShardSnap,
        active: &Active,
        shard: &Shard,
        db: u32,
        hash: u64,
    ) -> Option<u32> {
        let origin = st.origin.get(db as usize).copied().flatten()?;
        let d = shard.db(db).dict();
        (d.stamp(d.bucket_of(hash)) != active.epoch).then_some(origin)
    }

    /// Visit the bucket of `hash` (cases 2 and 3): its entries go straight into the hand-off
    /// queue (a leaf lock, held for the few entries of one bucket).
    fn visit_one(active: &Active, shard: &mut Shard, db: u32, origin: u32, hash: u64) {
        let table = shard.db_mut(db);
        let b = table.dict().bucket_of(hash);
        let bytes = visit_bucket(table, origin, b, active.epoch, &mut active.handoff.lock());
        active.forced_visits.fetch_add(1, Ordering::Relaxed);
        if bytes > 0 {
            active.handoff_bytes.fetch_add(bytes, Ordering::Relaxed);
        }
    }
}

impl WriteObserver for SnapshotObserver {
    fn before_write(&self, shard: &mut Shard, db: u32, hash: u64) -> bool {
        let Some(st) = self.slot(shard) else {
            return false;
        };
        let Some(active) = st.active.as_deref() else {
            return false;
        };
        let unvisited = Self::unvisited(&st, active, shard, db, hash);
        match active.mode {
            // Case 2: save the bucket before its first change; never capture.
            Mode::PointInTime => {
                if let Some(origin) = unvisited {
                    Self::visit_one(active, shard, db, origin, hash);
                }
                false
            }
            // Writes to unvisited buckets are only applied; writes to visited ones are captured.
            Mode::Converging => unvisited.is_none(),
        }
    }

    fn force_visit(&self, shard: &mut Shard, db: u32, hash: u64) {
        let Some(st) = self.slot(shard) else {
            return;
        };
        let Some(active) = st.active.as_deref() else {
            return;
        };
        if let Some(origin) = Self::unvisited(&st, active, shard, db, hash) {
            Self::visit_one(active, shard, db, origin, hash);
        }
    }

    fn before_flush(&self, shard: &mut Shard, db: u32) -> bool {
        let Some(mut st) = self.slot(shard) else {
            return false;
        };
        let converging = st
            .active
            .as_ref()
            .is_some_and(|a| a.mode == Mode::Converging);
        if let Some(origin) = st.origin.get_mut(db as usize).and_then(Option::take) {
            // O(1): the table leaves for the walk; an empty one without origin takes its place.
            let table = std::mem::take(shard.db_mut(db));
            if let Some(slot) = st.detached.get_mut(origin as usize) {
                *slot = Some(Box::new(table));
            }
        }
        // Converging: the FLUSHDB replays on top of the baselines (H5).
        converging
    }

    fn before_swap(&self, shard: &mut Shard, a: u32, b: u32) -> bool {
        let Some(mut st) = self.slot(shard) else {
            return false;
        };
        if (a as usize) < st.origin.len() && (b as usize) < st.origin.len() {
            st.origin.swap(a as usize, b as usize);
        }
        st.active
            .as_ref()
            .is_some_and(|a| a.mode == Mode::Converging)
    }

    fn captured(&self, ops: &[Propagated]) {
        // `current` is held while the delta is appended (order: `current`, then the delta
        // buffer; the worker only ever sets `current`, holding nothing else of ours), so no
        // reference count of the shared state is touched per captured write.
        let current = self.current.lock();
        let Some(active) = current.as_deref() else {
            return;
        };
        if active.mode != Mode::Converging {
            return;
        }
        let mut d = active.delta.lock();
        if d.closed {
            return;
        }
        for (db, argv) in ops {
            d.append(*db, std::slice::from_ref(argv));
        }
    }
}
