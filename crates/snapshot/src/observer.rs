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
//! 4. FLUSHDB/FLUSHALL/SWAPDB ([`SnapshotObserver::before_db_change`]): every unvisited bucket of
//!    the database is visited, then the database is marked *fully visited* for the rest of the
//!    snapshot (its dict may be replaced; the flag, not the stamps, then answers). A fully
//!    visited database needs no freeze: the first write to it after the change thaws its dict
//!    (never a visit: in point-in-time mode that would hand post-flush keys to the snapshot), so
//!    a replacement dict grows and rehashes normally.
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
//! * H1. Baselines are reference-counted handles (`Arc<Value>`, key bytes, expiry) taken under the
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
//! Lock order: shard lock, then this module's per-shard slot, then the hand-off queue or the delta
//! buffer (leaves). The worker follows the same order.

use forkless_keyspace::{Propagated, Shard, Slot, Value, WriteObserver};
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

/// One baseline entry handed to the worker.
#[derive(Debug, Clone)]
pub struct Handle {
    /// Database.
    pub db: u32,
    /// Key bytes.
    pub key: Box<[u8]>,
    /// The value, shared with the keyspace (copy-on-write).
    pub value: std::sync::Arc<Value>,
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
    /// Keys handed over by writers.
    pub handed_keys: AtomicU64,
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
            handed_keys: AtomicU64::new(0),
        }
    }
}

/// Per-shard snapshot state, guarded by its own (leaf) mutex, only touched with the shard lock
/// held.
#[derive(Debug, Default)]
pub(crate) struct ShardSnap {
    pub(crate) active: Option<Arc<Active>>,
    /// Databases whose every bucket counts as visited (after FLUSHDB/FLUSHALL/SWAPDB).
    pub(crate) fully_visited: Vec<bool>,
}

/// Approximate heap bytes of a handle, for the memory accounting.
pub(crate) fn handle_bytes(key: &[u8], value: &Value) -> u64 {
    (key.len() + value.mem_usage() + std::mem::size_of::<Handle>()) as u64
}

/// Collect the entries of bucket `b` of `db` and stamp it visited. The caller holds the shard
/// lock and has checked that the bucket is unvisited.
pub(crate) fn visit_bucket(
    shard: &mut Shard,
    db: u32,
    b: usize,
    epoch: u32,
    out: &mut Vec<Handle>,
) -> u64 {
    let d = shard.db_mut(db).dict_mut();
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
                .map(|_| {
                    Mutex::new(ShardSnap {
                        active: None,
                        fully_visited: vec![false; databases as usize],
                    })
                })
                .collect(),
            current: Mutex::new(None),
            epoch: AtomicU64::new(0),
            busy: AtomicBool::new(false),
        }
    }

    fn active_for(&self, shard: &Shard) -> Option<(Arc<Active>, bool)> {
        if !self.running.load(Ordering::Acquire) {
            return None;
        }
        let st = self.shards[shard.index()].lock();
        st.active.as_ref().map(|a| (a.clone(), false))
    }

    fn fully_visited(&self, shard: &Shard, db: u32) -> bool {
        self.shards[shard.index()]
            .lock()
            .fully_visited
            .get(db as usize)
            .copied()
            .unwrap_or(true)
    }

    fn push_handoff(active: &Active, handles: Vec<Handle>, bytes: u64, buckets: u64) {
        if buckets == 0 {
            return;
        }
        active.forced_visits.fetch_add(buckets, Ordering::Relaxed);
        active
            .handed_keys
            .fetch_add(handles.len() as u64, Ordering::Relaxed);
        if handles.is_empty() {
            return;
        }
        active.handoff_bytes.fetch_add(bytes, Ordering::Relaxed);
        active.handoff.lock().extend(handles);
    }

    /// Visit every unvisited bucket of `db` (case 4).
    fn visit_all(&self, active: &Active, shard: &mut Shard, db: u32) {
        let mut handles = Vec::new();
        let mut bytes = 0;
        let mut buckets = 0;
        let n = shard.db(db).dict().num_buckets();
        for b in 0..n {
            if shard.db(db).dict().stamp(b) != active.epoch {
                bytes += visit_bucket(shard, db, b, active.epoch, &mut handles);
                buckets += 1;
            }
        }
        Self::push_handoff(active, handles, bytes, buckets);
    }

    /// Is the bucket of `hash` in `db` visited? A fully visited database (case 4) answers yes,
    /// and its dict is thawed on the way (it needs no freeze any more).
    fn visited(&self, active: &Active, shard: &mut Shard, db: u32, hash: u64) -> bool {
        if self.fully_visited(shard, db) {
            let d = shard.db_mut(db).dict_mut();
            if d.is_frozen() {
                d.thaw_rehash();
            }
            return true;
        }
        let d = shard.db(db).dict();
        d.stamp(d.bucket_of(hash)) == active.epoch
    }

    fn visit_one(&self, active: &Active, shard: &mut Shard, db: u32, hash: u64) {
        let b = shard.db(db).dict().bucket_of(hash);
        let mut handles = Vec::new();
        let bytes = visit_bucket(shard, db, b, active.epoch, &mut handles);
        Self::push_handoff(active, handles, bytes, 1);
    }
}

impl WriteObserver for SnapshotObserver {
    fn before_write(&self, shard: &mut Shard, db: u32, hash: u64) -> bool {
        let Some((active, _)) = self.active_for(shard) else {
            return false;
        };
        let visited = self.visited(&active, shard, db, hash);
        match active.mode {
            // Case 2: save the bucket before its first change; never capture.
            Mode::PointInTime => {
                if !visited {
                    self.visit_one(&active, shard, db, hash);
                }
                false
            }
            // Writes to unvisited buckets are only applied; writes to visited ones are captured.
            Mode::Converging => visited,
        }
    }

    fn force_visit(&self, shard: &mut Shard, db: u32, hash: u64) {
        let Some((active, _)) = self.active_for(shard) else {
            return;
        };
        if !self.visited(&active, shard, db, hash) {
            self.visit_one(&active, shard, db, hash);
        }
    }

    fn before_db_change(&self, shard: &mut Shard, db: u32) -> bool {
        let Some((active, _)) = self.active_for(shard) else {
            return false;
        };
        if !self.fully_visited(shard, db) {
            // Case 4. Converging mode needs the baselines too: the captured FLUSHDB/SWAPDB
            // replays on top of them.
            self.visit_all(&active, shard, db);
            if let Some(f) = self.shards[shard.index()]
                .lock()
                .fully_visited
                .get_mut(db as usize)
            {
                *f = true;
            }
        }
        active.mode == Mode::Converging
    }

    fn captured(&self, ops: &[Propagated]) {
        let Some(active) = self.current.lock().clone() else {
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
