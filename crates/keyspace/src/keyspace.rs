//! The sharded keyspace: hashing, locking, the write path, expiry and bulk access.
//!
//! Problem: many threads execute commands on one keyspace. Keys are spread over a power-of-two
//! number of shards, each a `forkless_sync::Mutex<Shard>` holding one table per database (so
//! MOVE/COPY between databases stay inside one shard). A key is hashed once with a keyed hash;
//! the hash's high bits pick the shard, its low bits the bucket inside the shard's table
//! (the layout of Dragonfly's shared-nothing shards, with locks instead of threads).
//!
//! # Lock order
//! 1. A command locks the shards of all its keys (from its `CommandSpec` key positions, or
//!    shard 0 when it has none) in **ascending shard index**, each at most once, before its
//!    handler runs.
//! 2. Whole-keyspace commands (FLUSHALL, FLUSHDB, SWAPDB, DBSIZE, KEYS, SCAN, RANDOMKEY) lock all
//!    shards in ascending order.
//! 3. [`Keyspace::with_shard`] and [`Keyspace::active_expire_cycle`] lock one shard at a time.
//! 4. No shard lock is held across I/O; the propagation sink and the write observer are called
//!    with the locks held and must not lock shards themselves.
//!
//! # The write path (snapshot seams)
//! [`Keyspace::execute`] is the one function every command goes through:
//! (a) lock the shards; (b) for a write command, call [`WriteObserver::before_write`] for every
//! declared key `(db, hash)`; (c) run the handler (which calls `before_write` again for any other
//! key it mutates, and [`WriteObserver::before_flush`] / [`WriteObserver::before_swap`] before
//! emptying or swapping a whole database); (d) delete aggregates the write left empty; (e) hand the propagated commands to the
//! [`PropagationSink`] (framed MULTI/EXEC when two or more) while the locks are still held;
//! (f) unlock. Lazy expiry in read commands and active expiry also call `before_write` before
//! deleting.

use std::hash::{BuildHasher, Hasher};

use forkless_rdb::model::{canonicalize, Entry, KeyAccess};
use forkless_sync::atomic::{AtomicBool, AtomicI64, AtomicU32, AtomicU8, AtomicUsize, Ordering};
use forkless_sync::{Arc, AtomicCell, Mutex, MutexGuard};
use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};

use crate::command::{unknown_command, wrong_arity, CommandTable, ALL_SHARDS};
use crate::convert::{from_model, to_model};
use crate::ctx::Ctx;
use crate::db::{Db, Slot};
use crate::memory::{self, EvictionPolicy, MemoryConfig, MemoryState, MemoryStats, PoolEntry};
use crate::notify::{EventSink, Flags, KeyEvent};
use crate::propagate::{Propagated, PropagationSink};
use crate::reply::Reply;

/// Function libraries kept beside the keyspace (Redis 7.0 functions, implemented by
/// `forkless-script`). They are not keys, but persist with them: snapshots write their code as
/// RDB_OPCODE_FUNCTION2 records, loaders hand such records and logged `FUNCTION` commands back.
pub trait Libraries: Send + Sync {
    /// Every library's code, in a stable order.
    fn codes(&self) -> Vec<Vec<u8>>;
    /// Load a library from an RDB record, replacing one of the same name.
    fn load(&self, code: &[u8]) -> Result<(), String>;
    /// Apply a logged `FUNCTION LOAD|DELETE|FLUSH|RESTORE` while loading (not propagated).
    /// `Err` holds the command's error.
    fn command(&self, argv: &[&[u8]]) -> Result<(), String>;
}

/// A clock returning Unix time in milliseconds.
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// Keyspace configuration.
#[derive(Clone)]
pub struct Config {
    /// Number of shards (rounded up to a power of two, at least 1).
    pub shards: usize,
    /// Number of databases (SELECT 0..databases-1).
    pub databases: u32,
    /// Seed for the hash key and the random generators (deterministic tests); None = random.
    pub seed: Option<u64>,
    /// The clock; None = `SystemTime::now()`.
    pub clock: Option<Clock>,
    /// The memory bound and eviction policy from the start, so that loading already applies
    /// the policy's access metadata (RDB `IDLE`/`FREQ`); changeable later with
    /// [`Keyspace::set_memory_config`].
    pub memory: MemoryConfig,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("shards", &self.shards)
            .field("databases", &self.databases)
            .field("seed", &self.seed)
            .field("clock", &self.clock.as_ref().map(|_| "custom"))
            .field("memory", &self.memory)
            .finish()
    }
}

impl Default for Config {
    /// 4 shards per available core (rounded up to a power of two), 16 databases, random seed,
    /// system clock.
    fn default() -> Self {
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        Config {
            shards: (cores * 4).next_power_of_two(),
            databases: 16,
            seed: None,
            clock: None,
            memory: MemoryConfig::default(),
        }
    }
}

impl Config {
    /// Default configuration with a fixed seed.
    pub fn seeded(seed: u64) -> Config {
        Config {
            seed: Some(seed),
            ..Config::default()
        }
    }
    /// This configuration with the given clock.
    pub fn with_clock(mut self, clock: Clock) -> Config {
        self.clock = Some(clock);
        self
    }
}

/// A settable clock for tests: expiry without sleeping.
#[derive(Clone, Debug)]
pub struct ManualClock(Arc<AtomicI64>);

impl ManualClock {
    /// A clock reading `now_ms`.
    pub fn new(now_ms: i64) -> ManualClock {
        ManualClock(Arc::new(AtomicI64::new(now_ms)))
    }
    /// Set the time.
    pub fn set(&self, now_ms: i64) {
        self.0.store(now_ms, Ordering::SeqCst);
    }
    /// Move the time forward by `ms`.
    pub fn advance(&self, ms: i64) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }
    /// The current reading.
    pub fn now(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
    /// A [`Clock`] reading this manual clock.
    pub fn clock(&self) -> Clock {
        let a = self.0.clone();
        Arc::new(move || a.load(Ordering::SeqCst))
    }
}

/// Observes mutations before they happen: the seam where a snapshot saves old contents and
/// decides which writes to capture.
///
/// Every method is called with the shard(s) locked, from the thread executing the command.
/// Implementations must not lock shards.
///
/// # Protocol (per command)
/// 1. `before_write` is called once per `(db, key)` the command may modify, before the first
///    modification of that key: for a write command's declared keys all of them before the handler
///    runs; for other keys (MOVE/COPY destinations, lazily expired keys) before their first change.
///    It returns `true` when the key's bucket was already *visited* by a running converging
///    snapshot, i.e. when the command's effects must be captured.
/// 2. As soon as one call returned `true`, every other key of the command that returned `false`
///    gets `force_visit` (immediately, and for later keys right after their `before_write`), still
///    before it changes: a captured command then touches only visited buckets.
/// 3. `before_flush` precedes the emptying of a whole database (FLUSHDB, FLUSHALL) and
///    `before_swap` the swapping of two (SWAPDB); `true` means capture, as in 1. Both must be
///    O(1): the observer may move the table out (`std::mem::take` of the `Db`, leaving an empty
///    one) but must not walk it.
/// 4. After the handler, if anything asked for capture, `captured` receives the command's
///    propagated commands (framed MULTI/EXEC when two or more), before the locks are released.
pub trait WriteObserver: Send + Sync {
    /// The key with hash `hash` in database `db` of `shard` is about to be modified, inserted or
    /// deleted. Returns whether the command's effects must be captured (see the protocol).
    fn before_write(&self, shard: &mut Shard, db: u32, hash: u64) -> bool;
    /// Make the bucket of `(db, hash)` visited now (step 2 of the protocol).
    fn force_visit(&self, shard: &mut Shard, db: u32, hash: u64);
    /// The whole database `db` of `shard` is about to be emptied; the keyspace then empties
    /// whatever table is left at `db`. Returns whether the command's effects must be captured.
    fn before_flush(&self, shard: &mut Shard, db: u32) -> bool;
    /// Databases `a` and `b` of `shard` are about to be swapped. Returns whether the command's
    /// effects must be captured.
    fn before_swap(&self, shard: &mut Shard, a: u32, b: u32) -> bool;
    /// The propagated commands of a command that asked for capture.
    fn captured(&self, ops: &[Propagated]);
}

/// How a command sees keys whose expiry time has passed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExpiryView {
    /// Expired keys are deleted when touched and a `DEL` propagated (a primary, an embedder).
    Normal,
    /// Expired keys are still there (loading a file; a replica applying its primary's stream).
    Frozen,
    /// Expired keys read as missing but are not deleted (a replica's clients: only the
    /// primary's `DEL` removes them, as Redis's `expireIfNeeded` on a replica).
    Hidden,
}

/// The commands of a transaction that its caller serves itself
/// ([`Keyspace::execute_multi_foreign`]).
pub struct Foreign<'a> {
    /// True for a queue entry the caller serves (it must not touch the keyspace).
    pub is: &'a dyn Fn(&[&[u8]]) -> bool,
    /// Serve queue entry `i` (called in queue order, shard locks held).
    pub run: &'a mut dyn FnMut(usize),
}

/// A client session: the selected database.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Session {
    /// The selected database.
    pub db: u32,
}

/// One shard: a table per database, a random generator and the active-expiry cursor.
pub struct Shard {
    index: usize,
    dbs: Box<[Db]>,
    rng: StdRng,
    expire_cursor: (u32, u64),
}

impl std::fmt::Debug for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shard")
            .field("index", &self.index)
            .field("dbs", &self.dbs.len())
            .finish()
    }
}

impl Shard {
    /// This shard's index.
    pub fn index(&self) -> usize {
        self.index
    }
    /// The table of database `db`.
    pub fn db(&self, db: u32) -> &Db {
        &self.dbs[db as usize]
    }
    /// The table of database `db`, mutable.
    pub fn db_mut(&mut self, db: u32) -> &mut Db {
        &mut self.dbs[db as usize]
    }
    /// Number of databases.
    pub fn databases(&self) -> u32 {
        self.dbs.len() as u32
    }
    pub(crate) fn rng_mut(&mut self) -> &mut StdRng {
        &mut self.rng
    }
    pub(crate) fn swap_dbs(&mut self, a: u32, b: u32) {
        self.dbs.swap(a as usize, b as usize);
    }
}

/// The keyed hash of keys: SipHash-1-3 (std's `DefaultHasher`) keyed by a per-keyspace secret.
#[derive(Clone, Copy, Debug)]
struct KeyHasher {
    k0: u64,
    k1: u64,
}

impl KeyHasher {
    fn hash(&self, key: &[u8]) -> u64 {
        let mut h =
            std::hash::BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default()
                .build_hasher();
        h.write_u64(self.k0);
        h.write_u64(self.k1);
        h.write(key);
        h.finish()
    }
}

/// The keyspace (`Send + Sync`; share it by reference or `Arc`).
pub struct Keyspace {
    shards: Box<[Mutex<Shard>]>,
    /// Who holds each shard as far as the keyspace knows (`crate::trace::Holder`): read only
    /// by a command whose lock attempt failed, to name what it waited for.
    holders: Box<[AtomicU8]>,
    shard_bits: u32,
    databases: u32,
    hasher: KeyHasher,
    clock: Option<Clock>,
    table: CommandTable,
    sink: Option<Arc<dyn PropagationSink>>,
    observer: Option<Arc<dyn WriteObserver>>,
    libraries: Option<Arc<dyn Libraries>>,
    expire_shard: AtomicUsize,
    loading: AtomicBool,
    /// Replica mode (`replicaof`): keys are never expired by this keyspace (see [`ExpiryView`]).
    replica: AtomicBool,
    /// Bytes charged per shard (the sum of its databases' [`Db::used`]), readable without the
    /// shard's lock: `used_memory` sums them.
    mem: Box<[AtomicI64]>,
    /// maxmemory, policy, counters, eviction pool (`crate::memory`).
    memory: MemoryState,
    /// `stream-node-max-bytes` and `stream-node-max-entries` (XADD's node split).
    stream_node_max_bytes: AtomicI64,
    stream_node_max_entries: AtomicI64,
    hll_sparse_max_bytes: AtomicI64,
    /// The encoding thresholds the converting commands check (`crate::encoding`), read whole
    /// once per converting command without a lock.
    encoding_limits: AtomicCell<forkless_rdb::EncodingLimits>,
    /// `notify-keyspace-events` (`crate::notify`): read once per command.
    notify_flags: AtomicU32,
    /// Event classes the event sink wants whatever the flags (the server's CLIENT TRACKING
    /// wants `expired` and `evicted`).
    internal_events: AtomicU32,
    /// Where the events go (none: they are dropped however the flags are set).
    event_sink: Mutex<Option<Arc<dyn EventSink>>>,
}

impl std::fmt::Debug for Keyspace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyspace")
            .field("shards", &self.shards.len())
            .field("databases", &self.databases)
            .finish_non_exhaustive()
    }
}

/// Who sent a command to [`Keyspace::execute_with`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    /// A client: may evict before a write.
    Client,
    /// This replica's primary: never evicts.
    Primary,
    /// The eviction's own DEL: raises `evicted` instead of `del`.
    Eviction,
}

/// After a write: delete each declared key the command left as an empty aggregate (Redis's
/// commands do it themselves, raising `del` after their own event).
pub(crate) fn remove_emptied(
    ctx: &mut Ctx<'_>,
    db: u32,
    argv: &[&[u8]],
    keys: impl IntoIterator<Item = usize>,
) {
    for i in keys {
        if ctx
            .peek_in(db, argv[i])
            .is_some_and(|v| matches!(v, crate::value::View::Arc(v) if v.is_empty_aggregate()))
            && ctx.remove_in(db, argv[i]).is_some()
        {
            ctx.event_in(db, Flags::GENERIC, "del", argv[i]);
        }
    }
}

/// What [`Keyspace::memory_report`] measures.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemoryReport {
    /// Bytes charged for the entries (see [`crate::db::entry_cost`]).
    pub entries: u64,
    /// Bytes of the dicts' tables (the node arena includes the nodes counted in `entries`).
    pub tables: u64,
}

/// Error of [`Keyspace::load`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadError {
    /// Index of the offending entry.
    pub index: usize,
    /// What is wrong.
    pub what: String,
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "entry {}: {}", self.index, self.what)
    }
}

impl std::error::Error for LoadError {}

impl Keyspace {
    /// An empty keyspace.
    pub fn new(config: Config) -> Keyspace {
        let n = config.shards.max(1).next_power_of_two();
        let databases = config.databases.max(1);
        let mut seeder = match config.seed {
            Some(s) => StdRng::seed_from_u64(s),
            None => StdRng::from_entropy(),
        };
        let hasher = KeyHasher {
            k0: seeder.next_u64(),
            k1: seeder.next_u64(),
        };
        let shards = (0..n)
            .map(|i| {
                Mutex::new(Shard {
                    index: i,
                    dbs: (0..databases).map(|_| Db::default()).collect(),
                    rng: StdRng::seed_from_u64(seeder.next_u64()),
                    expire_cursor: (0, 0),
                })
            })
            .collect();
        Keyspace {
            shards,
            holders: (0..n).map(|_| AtomicU8::new(0)).collect(),
            shard_bits: n.trailing_zeros(),
            databases,
            hasher,
            clock: config.clock,
            table: CommandTable::new(),
            sink: None,
            observer: None,
            libraries: None,
            expire_shard: AtomicUsize::new(0),
            loading: AtomicBool::new(false),
            replica: AtomicBool::new(false),
            mem: (0..n).map(|_| AtomicI64::new(0)).collect(),
            memory: MemoryState::new(config.memory),
            stream_node_max_bytes: AtomicI64::new(crate::types::stream::NODE_MAX_BYTES as i64),
            stream_node_max_entries: AtomicI64::new(crate::types::stream::NODE_MAX_ENTRIES as i64),
            hll_sparse_max_bytes: AtomicI64::new(3000),
            encoding_limits: AtomicCell::new(forkless_rdb::EncodingLimits::default()),
            notify_flags: AtomicU32::new(0),
            internal_events: AtomicU32::new(0),
            event_sink: Mutex::new(None),
        }
    }

    /// Set `stream-node-max-bytes` and `stream-node-max-entries` (0: no limit), used by XADD
    /// from the next command on (Redis's defaults are 4096 and 100).
    pub fn set_stream_node_limits(&self, max_bytes: i64, max_entries: i64) {
        self.stream_node_max_bytes
            .store(max_bytes.max(0), Ordering::Relaxed);
        self.stream_node_max_entries
            .store(max_entries.max(0), Ordering::Relaxed);
    }

    /// Set `hll-sparse-max-bytes` (Redis's default 3000): a sparse HyperLogLog that would grow
    /// past it becomes dense.
    pub fn set_hll_sparse_max_bytes(&self, max_bytes: i64) {
        self.hll_sparse_max_bytes
            .store(max_bytes.max(0), Ordering::Relaxed);
    }

    /// Set the encoding thresholds (`set-max-intset-entries`, `hash-max-listpack-*`,
    /// `zset-max-listpack-*`) the converting commands check from the next command on.
    pub fn set_encoding_limits(&self, lim: &forkless_rdb::EncodingLimits) {
        self.encoding_limits.store(*lim);
    }

    /// The encoding thresholds in force.
    pub fn encoding_limits(&self) -> forkless_rdb::EncodingLimits {
        self.encoding_limits.load()
    }

    /// The encoding history of `key` in `db` as OBJECT ENCODING reads it (`crate::encoding`):
    /// `f` gets the stored value (even past its expiry, as Redis's `dictFind`) and its pins.
    pub fn with_encoding<R>(
        &self,
        db: u32,
        key: &[u8],
        f: impl FnOnce(&crate::Value, crate::encoding::Pins) -> R,
    ) -> Option<R> {
        let h = self.hash_key(key);
        self.with_shard(self.shard_of(h), |sh| {
            sh.db_mut(db)
                .find_meta_mut(h, key)
                .map(|(slot, meta)| f(&slot.value.get(), crate::encoding::Pins::of_meta(*meta)))
        })
    }

    /// `hll-sparse-max-bytes`.
    pub fn hll_sparse_max_bytes(&self) -> usize {
        self.hll_sparse_max_bytes.load(Ordering::Relaxed) as usize
    }

    /// `(stream-node-max-bytes, stream-node-max-entries)`.
    pub fn stream_node_limits(&self) -> (i64, i64) {
        (
            self.stream_node_max_bytes.load(Ordering::Relaxed),
            self.stream_node_max_entries.load(Ordering::Relaxed),
        )
    }

    /// A keyspace holding `entries` (see [`Keyspace::load`]).
    pub fn from_entries(config: Config, entries: Vec<Entry>) -> Result<Keyspace, LoadError> {
        let ks = Keyspace::new(config);
        ks.load(entries)?;
        Ok(ks)
    }

    /// Register the propagation sink (before sharing the keyspace).
    pub fn set_sink(&mut self, sink: Arc<dyn PropagationSink>) {
        self.sink = Some(sink);
    }

    /// Register the function libraries kept beside this keyspace (before sharing it).
    pub fn set_libraries(&mut self, libraries: Arc<dyn Libraries>) {
        self.libraries = Some(libraries);
    }

    /// The function libraries, if registered.
    pub fn libraries(&self) -> Option<&Arc<dyn Libraries>> {
        self.libraries.as_ref()
    }

    /// Register the write observer (before sharing the keyspace). A snapshot implementation
    /// registers one permanent observer that does nothing while no snapshot runs.
    pub fn set_observer(&mut self, observer: Arc<dyn WriteObserver>) {
        self.observer = Some(observer);
    }

    pub(crate) fn observer(&self) -> Option<&Arc<dyn WriteObserver>> {
        self.observer.as_ref()
    }

    /// Loading mode (replaying an AOF): while on, no key counts as expired, so lazy expiry
    /// deletes nothing and [`Keyspace::active_expire_cycle`] does nothing, as Redis's
    /// `keyIsExpired` returns false while `server.loading` (7.0). Commands replayed from a log
    /// then see the keyspace as it was when they were first executed.
    pub fn set_loading(&self, on: bool) {
        self.loading.store(on, Ordering::SeqCst);
    }

    /// True in loading mode.
    pub fn is_loading(&self) -> bool {
        self.loading.load(Ordering::Relaxed)
    }

    /// Replica mode (Redis's `server.masterhost != NULL`): no key is ever deleted because its
    /// time passed. Clients' reads see an expired key as missing; the primary's own commands
    /// ([`Keyspace::execute_as_primary`]) see it as present, and its DEL removes it. Active
    /// expiry and eviction are the engine's to stop (they do not run on replicas).
    pub fn set_replica(&self, on: bool) {
        self.replica.store(on, Ordering::SeqCst);
    }

    /// Set `notify-keyspace-events` (see `crate::notify`).
    pub fn set_notify_flags(&self, flags: Flags) {
        self.notify_flags.store(flags.0, Ordering::Relaxed);
    }

    /// The `notify-keyspace-events` classes in force.
    pub fn notify_flags(&self) -> Flags {
        Flags(self.notify_flags.load(Ordering::Relaxed))
    }

    /// Ask for events of `classes` whatever `notify-keyspace-events` says (the sink then gets
    /// them with the configured flags, and filters what it publishes).
    pub fn set_internal_events(&self, classes: Flags) {
        self.internal_events.store(classes.0, Ordering::Relaxed);
    }

    /// The classes whose events are recorded: the configured ones when they are published
    /// (`K` or `E` set), plus the internal ones.
    pub(crate) fn recorded_events(&self) -> Flags {
        let user = self.notify_flags();
        let published = if user.any(Flags(Flags::KEYSPACE.0 | Flags::KEYEVENT.0)) {
            user.0
        } else {
            0
        };
        Flags(published | self.internal_events.load(Ordering::Relaxed))
    }

    /// Send keyspace events to `sink` (replacing the previous one; `None`: drop them).
    pub fn set_event_sink(&self, sink: Option<Arc<dyn EventSink>>) {
        *self.event_sink.lock() = sink;
    }

    /// Hand `events` to the event sink (the caller holds the shard locks of their keys, so two
    /// commands on one key deliver in the order they ran).
    pub(crate) fn deliver_events(&self, events: &[KeyEvent]) {
        if events.is_empty() {
            return;
        }
        let sink = self.event_sink.lock().clone();
        if let Some(s) = sink {
            s.events(self.notify_flags(), events);
        }
    }

    /// True in replica mode.
    pub fn is_replica(&self) -> bool {
        self.replica.load(Ordering::Relaxed)
    }

    /// How commands run now see keys whose time has passed (not counting the primary's link).
    pub(crate) fn expiry_view(&self) -> ExpiryView {
        if self.is_loading() {
            ExpiryView::Frozen
        } else if self.is_replica() {
            ExpiryView::Hidden
        } else {
            ExpiryView::Normal
        }
    }

    /// Number of databases.
    pub fn databases(&self) -> u32 {
        self.databases
    }

    /// Number of shards.
    pub fn num_shards(&self) -> usize {
        self.shards.len()
    }

    /// The keyed hash of `key` (computed once per key per command).
    pub fn hash_key(&self, key: &[u8]) -> u64 {
        self.hasher.hash(key)
    }

    /// The shard a hash belongs to (its high bits).
    pub fn shard_of(&self, hash: u64) -> usize {
        if self.shard_bits == 0 {
            0
        } else {
            (hash >> (64 - self.shard_bits)) as usize
        }
    }

    /// The current time in Unix ms (the configured clock).
    pub fn now_ms(&self) -> i64 {
        match &self.clock {
            Some(c) => c(),
            None => std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis() as i64)
                .unwrap_or(0),
        }
    }

    /// Lock shard `index` and run `f` on it (the snapshot walks shards this way, one at a time;
    /// never call it while executing a command on the same thread).
    pub fn with_shard<R>(&self, index: usize, f: impl FnOnce(&mut Shard) -> R) -> R {
        let mut g = self.lock_shard(index);
        // The worker marks its holds whether or not the accounting is on: a command that finds
        // the shard held by the worker spins for it instead of parking (`trace::lock_shard`).
        if !forkless_sync::LOOM && crate::trace::is_snapshot_worker() {
            let h = &self.holders[index];
            h.store(crate::trace::Holder::Worker as u8, Ordering::Relaxed);
            let r = f(&mut g);
            // Unmarked after the unlock: a command that fails its `try_lock` just before the
            // unlock still reads the worker as the holder (and spins for the last instant of
            // the hold rather than parking).
            drop(g);
            h.store(crate::trace::Holder::Command as u8, Ordering::Relaxed);
            return r;
        }
        f(&mut g)
    }

    /// Lock shard `i` for a command (`crate::trace`: a contended wait is charged to its holder).
    pub(crate) fn lock_shard(&self, i: usize) -> MutexGuard<'_, Shard> {
        crate::trace::lock_shard(&self.shards[i], &self.holders[i])
    }

    /// Lock every shard in index order (the lock order), for a command.
    pub(crate) fn lock_all_shards(&self) -> Vec<MutexGuard<'_, Shard>> {
        (0..self.shards.len()).map(|i| self.lock_shard(i)).collect()
    }

    /// Lock every shard in ascending order (the lock order) and run `f` on all of them: the
    /// all-shards barrier of the snapshot's start and end.
    pub fn with_all_shards<R>(&self, f: impl FnOnce(&mut [&mut Shard]) -> R) -> R {
        let traced = crate::trace::enabled();
        // Each shard is marked as the barrier's as soon as it is taken (not once all are): a
        // command waiting for one while the barrier still waits for a later one is the
        // barrier's wait.
        let mut guards = Vec::with_capacity(self.shards.len());
        for i in 0..self.shards.len() {
            guards.push(self.lock_shard(i));
            if traced {
                self.holders[i].store(crate::trace::Holder::Barrier as u8, Ordering::Relaxed);
            }
        }
        let mut refs: Vec<&mut Shard> = guards.iter_mut().map(|g| &mut **g).collect();
        let r = f(&mut refs);
        if traced {
            for h in self.holders.iter() {
                h.store(crate::trace::Holder::Command as u8, Ordering::Relaxed);
            }
        }
        r
    }

    /// True when a command of this name (any case) exists.
    pub fn has_command(&self, name: &str) -> bool {
        self.table.lookup(name.as_bytes()).is_some()
    }

    /// Execute one command (`argv[0]` is its name) in `session`'s database.
    pub fn execute(&self, session: &mut Session, argv: &[&[u8]]) -> Reply {
        self.execute_with(session, None, argv, Origin::Client, self.expiry_view())
    }

    /// [`Keyspace::execute`] for a caller that already looked `argv[0]` up
    /// ([`Keyspace::command_spec`]): the table is not searched again.
    pub fn execute_spec(
        &self,
        session: &mut Session,
        spec: &'static crate::CommandSpec,
        argv: &[&[u8]],
    ) -> Reply {
        self.execute_with(
            session,
            Some(spec),
            argv,
            Origin::Client,
            self.expiry_view(),
        )
    }

    /// [`Keyspace::execute`] for a command that came from this replica's primary (Redis's
    /// `server.current_client == server.master`): no key counts as expired, nothing is evicted,
    /// and the primary's stream alone deletes keys.
    pub fn execute_as_primary(&self, session: &mut Session, argv: &[&[u8]]) -> Reply {
        self.execute_with(session, None, argv, Origin::Primary, ExpiryView::Frozen)
    }

    /// [`Keyspace::execute`] for a command from `origin`; `view` says how expired keys look.
    fn execute_with(
        &self,
        session: &mut Session,
        spec: Option<&'static crate::CommandSpec>,
        argv: &[&[u8]],
        origin: Origin,
        view: ExpiryView,
    ) -> Reply {
        let evict = origin == Origin::Client;
        let Some(name) = argv.first() else {
            return Reply::err("ERR empty command");
        };
        let Some(spec) = spec.or_else(|| self.table.lookup(name)) else {
            return unknown_command(argv);
        };
        if !spec.arity_ok(argv.len()) {
            return wrong_arity(spec);
        }
        let all = spec.flags & ALL_SHARDS != 0;
        let db = session.db.min(self.databases - 1);
        // maxmemory: evict before a write (no lock held here); refuse what may grow memory when
        // nothing more can be evicted (Redis's processCommand + performEvictions).
        if evict
            && spec.is_write()
            && self.memory.maxmemory() > 0
            && !self.is_loading()
            && !self.evict_to_bound()
            && memory::may_grow(spec.name)
        {
            return Reply::err(memory::OOM_ERROR);
        }
        // Each key is hashed once here; the context reuses these hashes for the same arguments
        // (`(address, length, hash)`: see `Ctx::locate`).
        let key_hashes: Vec<(usize, usize, u64)> = if all {
            Vec::new()
        } else {
            spec.key_indices(argv.len())
                .map(|i| {
                    (
                        argv[i].as_ptr() as usize,
                        argv[i].len(),
                        self.hash_key(argv[i]),
                    )
                })
                .collect()
        };
        let guards: Vec<MutexGuard<'_, Shard>> = if all {
            self.lock_all_shards()
        } else if let [(_, _, h)] = key_hashes[..] {
            // One key (most commands): no index vector to sort.
            vec![self.lock_shard(self.shard_of(h))]
        } else {
            let mut idx: Vec<usize> = key_hashes
                .iter()
                .map(|&(_, _, h)| self.shard_of(h))
                .collect();
            if idx.is_empty() {
                idx.push(0);
            }
            idx.sort_unstable();
            idx.dedup();
            idx.iter().map(|&i| self.lock_shard(i)).collect()
        };
        let now = self.now_ms();
        let mut ctx = Ctx::new(self, guards, all, db, now, key_hashes);
        ctx.set_view(view);
        ctx.set_name(spec.name);
        ctx.set_count_hits(spec.flags & crate::command::READONLY != 0);
        let write = spec.is_write();
        if write && self.observer.is_some() {
            for i in spec.key_indices(argv.len()) {
                ctx.notify_key(db, argv[i]);
            }
        }
        let reply = (spec.handler)(&mut ctx, argv);
        if write {
            remove_emptied(&mut ctx, db, argv, spec.key_indices(argv.len()));
        }
        if origin == Origin::Eviction {
            // An evicted key raises `evicted`, not DEL's `del` (Redis's performEvictions).
            ctx.take_events();
            if matches!(reply, Reply::Integer(1)) {
                ctx.event_in(db, Flags::EVICTED, "evicted", argv[1]);
            }
        }
        ctx.settle_memory();
        session.db = ctx.db();
        let events = ctx.take_events();
        let (guards, prop, capture) = ctx.into_parts();
        // SCAN and RANDOMKEY touch arbitrary keys: their lazy-expiry DELs go out one by one,
        // not as a MULTI/EXEC unit (Redis's CMD_TOUCHES_ARBITRARY_KEYS, `propagatePendingCommands`).
        if matches!(spec.name, "scan" | "randomkey") && prop.len() > 1 {
            for p in prop {
                self.deliver(vec![p], capture);
            }
        } else {
            self.deliver(prop, capture);
        }
        self.deliver_events(&events);
        drop(guards);
        reply
    }

    /// The table entry of command `name` (any case): arity, flags ([`crate::WRITE`]...), key
    /// positions. Lets a caller refuse a write before executing it (MISCONF, OOM).
    pub fn command_spec(&self, name: &[u8]) -> Option<&'static crate::CommandSpec> {
        self.table.lookup(name)
    }

    /// Execute a transaction (MULTI ... EXEC): every command, in order, under one lock set (the
    /// union of their shards in ascending order, or all shards when one of them needs all), so
    /// no other command interleaves; the propagated commands of all of them form **one unit**
    /// for the sink (wrapped in MULTI/EXEC when two or more) and for a running snapshot (one
    /// capture decision, the observer's protocol applied to the union of their keys).
    ///
    /// For a running converging snapshot the transaction asks for capture from its start: every
    /// key it touches (declared or not, in any database) is visited before its first change and
    /// the whole group goes to the deltas (deciding per command would let a later command switch
    /// to capture after an earlier one changed an unvisited key, which would then be replayed
    /// twice). A point-in-time snapshot gets the pre-image of every bucket before it changes.
    ///
    /// Commands that cannot be queued (unknown, wrong arity) abort the whole transaction
    /// before anything runs: `Err` holds the first such error reply (Redis then answers EXEC
    /// with EXECABORT). Commands that fail while running (WRONGTYPE...) do not stop the others,
    /// as in Redis; their error is their reply.
    pub fn execute_multi(
        &self,
        session: &mut Session,
        cmds: &[&[&[u8]]],
    ) -> Result<Vec<Reply>, Reply> {
        self.execute_multi_with(session, cmds, self.expiry_view(), None)
    }

    /// [`Keyspace::execute_multi`] for a queue that also holds commands the caller serves itself
    /// (a server's PING, TIME, PUBLISH, DEBUG SLEEP: `foreign.is(argv)`), in queue order inside
    /// the same unit: every shard is locked from the first command to the last, so no other
    /// command interleaves and the data commands' effects are one MULTI/EXEC in the log.
    /// `foreign.run(i)` is called for queue entry `i` **while the shard locks are held**: it
    /// must not touch the keyspace (the caller's list of such commands is its promise). Their
    /// place in the returned replies holds `Reply::Nil`; the caller has their real replies.
    pub fn execute_multi_foreign(
        &self,
        session: &mut Session,
        cmds: &[&[&[u8]]],
        foreign: &mut Foreign<'_>,
    ) -> Result<Vec<Reply>, Reply> {
        self.execute_multi_with(session, cmds, self.expiry_view(), Some(foreign))
    }

    /// [`Keyspace::execute_multi`] for a transaction that came from this replica's primary
    /// (see [`Keyspace::execute_as_primary`]).
    pub fn execute_multi_as_primary(
        &self,
        session: &mut Session,
        cmds: &[&[&[u8]]],
    ) -> Result<Vec<Reply>, Reply> {
        self.execute_multi_with(session, cmds, ExpiryView::Frozen, None)
    }

    fn execute_multi_with(
        &self,
        session: &mut Session,
        cmds: &[&[&[u8]]],
        view: ExpiryView,
        mut foreign: Option<&mut Foreign<'_>>,
    ) -> Result<Vec<Reply>, Reply> {
        // `None`: a foreign command (see `execute_multi_foreign`).
        let mut specs: Vec<Option<&crate::CommandSpec>> = Vec::with_capacity(cmds.len());
        for argv in cmds {
            let Some(name) = argv.first() else {
                return Err(Reply::err("ERR empty command"));
            };
            if foreign.as_ref().is_some_and(|f| (f.is)(argv)) {
                specs.push(None);
                continue;
            }
            let Some(spec) = self.table.lookup(name) else {
                return Err(unknown_command(argv));
            };
            if !spec.arity_ok(argv.len()) {
                return Err(wrong_arity(spec));
            }
            specs.push(Some(spec));
        }
        if cmds.is_empty() {
            return Ok(Vec::new());
        }
        // A foreign command holds every shard: whatever it waits for (DEBUG SLEEP), no other
        // command may run meanwhile, as in Redis.
        let all = specs
            .iter()
            .any(|s| s.is_none_or(|s| s.flags & ALL_SHARDS != 0));
        let hashes: Vec<Vec<(usize, u64)>> = cmds
            .iter()
            .zip(&specs)
            .map(|(argv, spec)| match spec {
                Some(spec) => spec
                    .key_indices(argv.len())
                    .map(|i| (i, self.hash_key(argv[i])))
                    .collect(),
                None => Vec::new(),
            })
            .collect();
        let guards: Vec<MutexGuard<'_, Shard>> = if all {
            self.lock_all_shards()
        } else {
            let mut idx: Vec<usize> = hashes
                .iter()
                .flatten()
                .map(|&(_, h)| self.shard_of(h))
                .collect();
            if idx.is_empty() {
                idx.push(0);
            }
            idx.sort_unstable();
            idx.dedup();
            idx.iter().map(|&i| self.lock_shard(i)).collect()
        };
        let now = self.now_ms();
        let db = session.db.min(self.databases - 1);
        let mut ctx = Ctx::new(self, guards, all, db, now, Vec::new());
        ctx.set_view(view);
        ctx.capture_from_start();
        let mut replies = Vec::with_capacity(cmds.len());
        for (i, ((argv, spec), key_hashes)) in cmds.iter().zip(&specs).zip(hashes).enumerate() {
            let Some(spec) = spec else {
                if let Some(f) = foreign.as_mut() {
                    (f.run)(i);
                }
                replies.push(Reply::Nil);
                continue;
            };
            let key_hashes = if all { Vec::new() } else { key_hashes };
            ctx.next_command(argv, key_hashes);
            ctx.set_name(spec.name);
            let db = ctx.db();
            let write = spec.is_write();
            if write && self.observer.is_some() {
                for i in spec.key_indices(argv.len()) {
                    ctx.notify_key(db, argv[i]);
                }
            }
            replies.push((spec.handler)(&mut ctx, argv));
            if write {
                remove_emptied(&mut ctx, db, argv, spec.key_indices(argv.len()));
            }
        }
        session.db = ctx.db();
        let events = ctx.take_events();
        let (guards, prop, capture) = ctx.into_parts();
        self.deliver(prop, capture);
        self.deliver_events(&events);
        drop(guards);
        Ok(replies)
    }

    /// Hand one command's propagated commands to the sink (MULTI/EXEC framing for 2+), and to
    /// the observer when the command asked for capture.
    /// Hand `argv` to the propagation sink as a command of its own, outside any shard lock
    /// (FUNCTION LOAD/DELETE/FLUSH/RESTORE: state that is not in the keyspace but must reach the
    /// AOF and the replicas). Database 0.
    pub fn propagate_command(&self, argv: &[&[u8]]) {
        self.deliver(vec![(0, argv.iter().map(|a| a.to_vec()).collect())], false);
    }

    pub(crate) fn deliver_unit(&self, prop: Vec<Propagated>, capture: bool) {
        self.deliver(prop, capture)
    }

    fn deliver(&self, mut prop: Vec<Propagated>, capture: bool) {
        if prop.is_empty() || (self.sink.is_none() && !capture) {
            return;
        }
        if prop.len() >= 2 {
            let db = prop[0].0;
            prop.insert(0, (db, vec![b"MULTI".to_vec()]));
            let last = prop[prop.len() - 1].0;
            prop.push((last, vec![b"EXEC".to_vec()]));
        }
        if capture {
            if let Some(obs) = &self.observer {
                crate::trace::capture(|| obs.captured(&prop));
            }
        }
        if let Some(sink) = &self.sink {
            sink.propagate(&prop);
        }
    }

    /// Every live key of every database, canonicalized (`forkless_rdb::model::canonicalize`).
    pub fn dump(&self) -> Vec<Entry> {
        let now = self.now_ms();
        let mut out = Vec::new();
        for s in self.shards.iter() {
            let s = s.lock();
            for db in 0..self.databases {
                for (k, slot) in s.db(db).iter() {
                    if slot.is_expired(now) {
                        continue;
                    }
                    out.push(Entry {
                        db,
                        key: k.to_vec(),
                        value: to_model(&slot.value.get()),
                        expire_at_ms: slot.expire_at(),
                    });
                }
            }
        }
        canonicalize(&mut out);
        out
    }

    /// Add `entries` (a later entry for the same key replaces an earlier one; empty aggregates
    /// are skipped, as Redis skips them when loading). Not propagated, no observer calls.
    pub fn load(&self, entries: Vec<Entry>) -> Result<(), LoadError> {
        self.load_with_access(entries, Vec::new())
    }

    /// [`Keyspace::load`] with each key's access metadata from its RDB (`IDLE` / `FREQ`),
    /// `access` parallel to `entries` (or shorter: the rest have none). As Redis's
    /// `objectSetLRUOrLFU`: under an LFU policy a key with `FREQ` starts with that counter (decay
    /// time now), under any other policy a key with `IDLE` gets the LRU clock of that many
    /// seconds ago; a key without the field the policy uses starts as a new key does.
    pub fn load_with_access(
        &self,
        entries: Vec<Entry>,
        access: Vec<KeyAccess>,
    ) -> Result<(), LoadError> {
        let mut access = access.into_iter();
        for (index, e) in entries.into_iter().enumerate() {
            let acc = access.next().unwrap_or_default();
            if e.db >= self.databases {
                return Err(LoadError {
                    index,
                    what: format!(
                        "key {:?}: database {} out of range (0..{})",
                        String::from_utf8_lossy(&e.key),
                        e.db,
                        self.databases
                    ),
                });
            }
            let value = from_model(e.value);
            if value.is_empty_aggregate() {
                continue;
            }
            let h = self.hash_key(&e.key);
            let si = self.shard_of(h);
            let mut s = self.shards[si].lock();
            let d = s.db_mut(e.db);
            let before = d.cost_of(h, &e.key);
            let meta = self.memory.loaded_meta(acc, self.now_ms());
            d.insert_meta(h, &e.key, Slot::new(value, e.expire_at_ms), meta);
            let delta = d.cost_of(h, &e.key) - before;
            d.charge(delta);
            self.charge_shard(si, delta);
        }
        Ok(())
    }

    /// The memory bound and policy in force.
    pub fn memory_config(&self) -> MemoryConfig {
        self.memory.get()
    }

    /// Set the memory bound and policy (CONFIG SET maxmemory / maxmemory-policy / ...). A lower
    /// bound is enforced by the next write; call [`Keyspace::evict_to_bound`] to evict now.
    pub fn set_memory_config(&self, cfg: MemoryConfig) {
        self.memory.set(cfg);
    }

    /// Memory counters: used bytes, the bound, evicted keys, keyspace hits and misses.
    pub fn memory_stats(&self) -> MemoryStats {
        MemoryStats {
            used: self.used_memory(),
            maxmemory: self.memory.maxmemory(),
            evicted_keys: self.memory.evicted.load(Ordering::Relaxed),
            keyspace_hits: self.memory.hits.load(Ordering::Relaxed),
            keyspace_misses: self.memory.misses.load(Ordering::Relaxed),
        }
    }

    pub(crate) fn memory_state(&self) -> &MemoryState {
        &self.memory
    }

    /// Evict keys (each one a propagated `DEL` through the command path) until the keyspace is
    /// within `maxmemory`. Returns true when it is (or there is no bound), false when the policy
    /// allows no eviction or nothing evictable is left. Takes no lock on entry; see
    /// `crate::memory`. A replica never evicts (Redis's `replica-ignore-maxmemory yes`): its
    /// primary's DELs keep it in step.
    pub fn evict_to_bound(&self) -> bool {
        let max = self.memory.maxmemory();
        if max == 0 || self.is_replica() {
            return true;
        }
        let mut misses = 0;
        while self.used_memory() > max {
            if self.memory.policy() == EvictionPolicy::NoEviction {
                return false;
            }
            let Some((db, key)) = self.pick_victim() else {
                return false;
            };
            let r = self.execute_with(
                &mut Session { db },
                None,
                &[b"DEL", &key],
                Origin::Eviction,
                ExpiryView::Normal,
            );
            if matches!(r, Reply::Integer(1)) {
                self.memory.evicted.fetch_add(1, Ordering::Relaxed);
                misses = 0;
            } else {
                // The candidate was gone already (deleted since it was sampled).
                misses += 1;
                if misses > 64 {
                    return false;
                }
            }
        }
        true
    }

    /// The next key to evict under the current policy: `(db, key)`.
    fn pick_victim(&self) -> Option<(u32, Vec<u8>)> {
        let policy = self.memory.policy();
        let now = self.now_ms();
        let n = self.shards.len();
        let start = rand::random::<u64>() as usize % n;
        if matches!(
            policy,
            EvictionPolicy::AllkeysRandom | EvictionPolicy::VolatileRandom
        ) {
            let mut rng = rand::thread_rng();
            for i in 0..n {
                let s = self.shards[(start + i) % n].lock();
                for db in 0..self.databases {
                    let d = s.db(db);
                    for _ in 0..d.len().min(16) {
                        if let Some((k, slot, _)) = d.random_meta(&mut rng) {
                            if !policy.is_volatile() || slot.expire_at().is_some() {
                                return Some((db, k.to_vec()));
                            }
                        }
                    }
                }
            }
            return None;
        }
        // Pool policies: each round samples up to SHARDS_PER_ROUND shards (every database of
        // each), merges the candidates into the pool and evicts its best; shards are visited
        // from a random start until the pool has a candidate.
        const SHARDS_PER_ROUND: usize = 4;
        let samples = self.memory.samples();
        let mut found: Vec<PoolEntry> = Vec::new();
        for i in 0..n {
            {
                let mut rng = rand::thread_rng();
                let s = self.shards[(start + i) % n].lock();
                for db in 0..self.databases {
                    let d = s.db(db);
                    if d.is_empty() {
                        continue;
                    }
                    for _ in 0..samples {
                        let Some((k, slot, meta)) = d.random_meta(&mut rng) else {
                            break;
                        };
                        if let Some(score) = self.memory.score(meta, slot.expire_at(), now) {
                            found.push(PoolEntry {
                                score,
                                db,
                                key: k.to_vec(),
                            });
                        }
                    }
                }
            }
            if (i + 1) % SHARDS_PER_ROUND != 0 && i + 1 != n {
                continue;
            }
            let mut pool = self.memory.pool.lock();
            for e in found.drain(..) {
                memory::pool_insert(&mut pool, e);
            }
            if let Some(best) = pool.pop() {
                return Some((best.db, best.key));
            }
        }
        None
    }

    /// Memory accounting: add `delta` bytes to shard `index`'s total (its lock is held by the
    /// caller, which charged the same delta to the database).
    pub(crate) fn charge_shard(&self, index: usize, delta: i64) {
        self.mem[index].fetch_add(delta, Ordering::Relaxed);
    }

    /// Bytes the keyspace's entries hold (keys, values, per-key structure; see
    /// [`crate::db::entry_cost`]), kept incrementally by every write; no lock taken. The dicts'
    /// bucket arrays are added by [`Keyspace::memory_report`].
    pub fn used_memory(&self) -> u64 {
        let keys = self
            .mem
            .iter()
            .map(|m| m.load(Ordering::Relaxed))
            .sum::<i64>()
            .max(0) as u64;
        keys + self.memory.extra.load(Ordering::Relaxed)
    }

    /// Set the bytes held beside the keys that count in [`Keyspace::used_memory`] (and so
    /// against `maxmemory`): the scripting VMs and their libraries, as Redis counts them.
    pub fn set_extra_memory(&self, bytes: u64) {
        self.memory.extra.store(bytes, Ordering::Relaxed);
    }

    /// [`Keyspace::used_memory`] plus the bytes of the dicts' own tables (bucket arrays, filters,
    /// node arenas), which change only on resize; locks one shard at a time.
    pub fn memory_report(&self) -> MemoryReport {
        let mut tables = 0usize;
        for s in self.shards.iter() {
            let s = s.lock();
            for db in 0..self.databases {
                tables += s.db(db).table_bytes();
            }
        }
        MemoryReport {
            entries: self.used_memory(),
            tables: tables as u64,
        }
    }

    /// Number of keys in `db` (expired keys not yet deleted included, as Redis's DBSIZE).
    pub fn dbsize(&self, db: u32) -> usize {
        if db >= self.databases {
            return 0;
        }
        self.shards.iter().map(|s| s.lock().db(db).len()).sum()
    }

    /// Keys with a TTL in `db` (expired ones not yet deleted included; INFO's `expires=`),
    /// O(shards): each table keeps its count.
    pub fn expires(&self, db: u32) -> usize {
        if db >= self.databases {
            return 0;
        }
        self.shards.iter().map(|s| s.lock().db(db).volatile()).sum()
    }

    /// Keys with a TTL in every database, O(shards x databases).
    pub fn expires_total(&self) -> usize {
        self.shards
            .iter()
            .map(|s| {
                let s = s.lock();
                (0..self.databases)
                    .map(|db| s.db(db).volatile())
                    .sum::<usize>()
            })
            .sum()
    }

    /// Active expiry: visit at most `budget` keys (resuming where the previous call stopped,
    /// shard by shard, database by database), delete those whose time has passed, propagate
    /// `DEL` for each. Returns the number of keys deleted. Locks one shard at a time.
    pub fn active_expire_cycle(&self, budget: usize) -> usize {
        if self.is_loading() || self.is_replica() {
            return 0;
        }
        let now = self.now_ms();
        let n = self.shards.len();
        let mut visited = 0usize;
        let mut deleted = 0usize;
        let mut shards_done = 0usize;
        while visited < budget && shards_done < n {
            let si = self.expire_shard.load(Ordering::Relaxed) % n;
            let mut shard = self.shards[si].lock();
            let (mut db, mut cursor) = shard.expire_cursor;
            let mut finished_shard = false;
            while visited < budget {
                if db >= self.databases {
                    finished_shard = true;
                    db = 0;
                    cursor = 0;
                    break;
                }
                if shard.db(db).volatile() == 0 {
                    // No key of this table has a TTL: nothing to walk.
                    db += 1;
                    cursor = 0;
                    continue;
                }
                let mut expired: Vec<(Vec<u8>, u64)> = Vec::new();
                let want = budget - visited;
                let next = shard.db(db).scan(cursor, want, |k, slot| {
                    visited += 1;
                    if slot.is_expired(now) {
                        expired.push((k.to_vec(), 0));
                    }
                });
                for (k, h) in expired.iter_mut() {
                    *h = self.hash_key(k);
                }
                for (k, h) in expired {
                    let capture = match &self.observer {
                        Some(obs) => obs.before_write(&mut shard, db, h),
                        None => false,
                    };
                    let cost = shard.db(db).cost_of(h, &k);
                    if shard.db_mut(db).remove(h, &k).is_some() {
                        shard.db_mut(db).charge(-cost);
                        self.charge_shard(si, -cost);
                        deleted += 1;
                        let event = self
                            .recorded_events()
                            .any(Flags::EXPIRED)
                            .then(|| KeyEvent {
                                db,
                                class: Flags::EXPIRED,
                                event: "expired",
                                key: k.clone(),
                            });
                        let op = [(db, vec![b"DEL".to_vec(), k])];
                        if capture {
                            if let Some(obs) = &self.observer {
                                obs.captured(&op);
                            }
                        }
                        if let Some(sink) = &self.sink {
                            sink.propagate(&op);
                        }
                        if let Some(ev) = event {
                            self.deliver_events(&[ev]);
                        }
                    }
                }
                if next == 0 {
                    db += 1;
                    cursor = 0;
                } else {
                    cursor = next;
                }
            }
            shard.expire_cursor = (db, cursor);
            drop(shard);
            if finished_shard {
                self.expire_shard.store((si + 1) % n, Ordering::Relaxed);
                shards_done += 1;
            }
        }
        deleted
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn keyspace_is_send_sync() {
        assert_send_sync::<Keyspace>();
    }

    #[test]
    fn shard_of_uses_high_bits() {
        let ks = Keyspace::new(Config {
            shards: 8,
            ..Config::seeded(1)
        });
        assert_eq!(ks.num_shards(), 8);
        assert_eq!(ks.shard_of(u64::MAX), 7);
        assert_eq!(ks.shard_of(1 << 60), 0);
        let one = Keyspace::new(Config {
            shards: 1,
            ..Config::seeded(1)
        });
        assert_eq!(one.shard_of(u64::MAX), 0);
    }

    #[test]
    fn seeded_hash_is_deterministic() {
        let a = Keyspace::new(Config::seeded(7));
        let b = Keyspace::new(Config::seeded(7));
        let c = Keyspace::new(Config::seeded(8));
        assert_eq!(a.hash_key(b"k"), b.hash_key(b"k"));
        assert_ne!(a.hash_key(b"k"), c.hash_key(b"k"));
    }
}
