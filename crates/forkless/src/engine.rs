//! The engine handle: open (create or recover), execute, persistence jobs, stats, shutdown.
//!
//! # Structure
//! [`Engine`] is a cloneable handle (`Arc<Handle>`). The `Handle` owns the threads and shuts the
//! engine down when the last clone is dropped; the threads themselves hold the `Arc<Core>` (the
//! keyspace, its snapshot observer, the persistence backend, counters), never the `Handle`, so
//! dropping the last handle is what stops them.
//!
//! # The write path
//! [`Engine::execute_deferred`] refuses a write command with Redis's `MISCONF` error while
//! persistence is failing (the log writer's sticky error, or a failed snapshot with
//! `stop-writes-on-bgsave-error yes` and save rules set), then runs it through
//! `Keyspace::execute`, whose propagation sink (this module's `Fanout`, the one fan-out point) appends
//! the propagated commands to the log writer under the command's shard locks and records the
//! log offset ("ticket") in a thread-local slot. The caller gets the reply and a [`Durability`]:
//! ready at once unless `appendfsync always`, otherwise a ticket to wait on, blocking
//! ([`Durability::wait`]) or as a `Future` (no runtime dependency: a notifier thread owned by the
//! engine waits for the writer's group commit and wakes the tasks). [`Engine::execute`] is
//! `execute_deferred` followed by the blocking wait.
//!
//! # Lock order
//! The engine's own mutexes (`config`, `tun`, `state`, `job`, `acks`) are leaves: none is held
//! while another is taken, while a command executes (shard locks) or across I/O. The sink runs
//! under the command's shard locks and takes only the writer's queue lock (a leaf, see
//! DESIGN.md section 2) and a thread-local.

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use forkless_aof::{
    AofDir, AofDirOptions, AofMetrics, FsyncPolicy, KeyspaceTarget, LoadOptions, LoadReport,
    OnError, WriterOptions,
};
use forkless_keyspace::{Keyspace, Propagated, PropagationSink, Reply, Session};
use forkless_script::{Host, MultiReply, Out, Scripting, Touched};
use forkless_segments::{SegmentDir, SegmentOptions};
use forkless_snapshot::output::DurableFile;
use forkless_snapshot::worker::{begin_snapshot, run_until_output};
use forkless_snapshot::{
    install, Mode, Progress, SnapshotObserver, SnapshotOptions, SnapshotResult,
};
use forkless_sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicU8, Ordering};
use forkless_sync::thread::{self, JoinHandle, Thread};
use forkless_sync::{Arc, Mutex};

use crate::config::{Config, SaveRule};
use crate::durability::{notifier, AckState, Durability, CLOSED};
use crate::error::{io, Error, Result};
use crate::helpers::Tx;
use crate::logslot::{Appended, Backend, LogSlot};
use crate::replication::{Cursor, ReplLog};

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

thread_local! {
    /// This thread's last append through an engine's sink: (engine id, what the slot returned).
    static LAST_APPEND: RefCell<Option<(u64, Appended)>> =
        const { RefCell::new(None) };
}

/// Redis's text when a background save failed and `stop-writes-on-bgsave-error` is on.
pub const MISCONF_RDB: &str = "MISCONF Redis is configured to save RDB snapshots, but it's currently unable to persist to disk. Commands that may modify the data set are disabled, because this instance is configured to report errors during writes if RDB snapshotting fails (stop-writes-on-bgsave-error option). Please check the Redis logs for details about the RDB error.";

pub(crate) fn misconf_aof(e: &dyn std::fmt::Display) -> String {
    format!("MISCONF Errors writing to the AOF file: {e}")
}

pub(crate) fn unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// The one propagation sink: appends to the log writer (when there is one), counts changes
/// for the save rules, and leaves the ticket for the executing thread.
struct Fanout {
    id: u64,
    log: Arc<LogSlot>,
    dirty: Arc<AtomicU64>,
    repl: Arc<ReplLog>,
}

impl PropagationSink for Fanout {
    fn propagate(&self, ops: &[Propagated]) {
        let changes = ops
            .iter()
            .filter(|(_, a)| {
                !(a.len() == 1
                    && (a[0].eq_ignore_ascii_case(b"multi") || a[0].eq_ignore_ascii_case(b"exec")))
            })
            .count() as u64;
        self.dirty.fetch_add(changes, Ordering::Relaxed);
        if let Some(a) = self.log.append(ops) {
            LAST_APPEND.with(|c| *c.borrow_mut() = Some((self.id, a)));
        }
        self.repl.feed_ops(ops);
    }
}

/// [`Engine::sync_snapshot`]'s callback at the cut: the cursor at O, the replication id, O.
pub type OnCut = Box<dyn FnOnce(Cursor, &str, u64) + Send>;

/// The cut of a replication snapshot: cursor, replication id, the stream's database.
type Cut = (Cursor, String, Option<u32>);

/// RDB aux fields (name, value).
type AuxFields = Vec<(Vec<u8>, Vec<u8>)>;

/// What [`Engine::sync_snapshot`] produced.
#[derive(Debug)]
pub struct FullSync {
    /// The replication id at the cut.
    pub replid: String,
    /// The stream offset at the cut (`+FULLRESYNC <replid> <offset>`).
    pub offset: u64,
    /// Bytes of the RDB file.
    pub len: u64,
    /// The snapshot's figures.
    pub result: SnapshotResult,
}

/// The `repl-stream-db` aux field of an RDB (0 when absent or unreadable): reads only the
/// header's aux fields.
fn read_repl_stream_db(path: &Path) -> u32 {
    let Ok(f) = std::fs::File::open(path) else {
        return 0;
    };
    let Ok(mut r) = forkless_rdb::RdbReader::new(std::io::BufReader::new(f)) else {
        return 0;
    };
    while let Ok(Some(item)) = r.next_item() {
        match item {
            forkless_rdb::Item::Aux { key, value } => {
                if &key[..] == b"repl-stream-db" {
                    return std::str::from_utf8(&value)
                        .ok()
                        .and_then(|s| s.parse().ok())
                        .unwrap_or(0);
                }
            }
            _ => return 0,
        }
    }
    0
}

/// Which persistence the engine runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PersistenceMode {
    /// Snapshots to `dir/dbfilename` on the save rules (none when `save ""`); no log.
    Snapshots,
    /// Multi-part AOF in `dir/appenddirname` with forkless rewrites (plus snapshots to
    /// `dbfilename` on the save rules, as Redis).
    Aof,
    /// Segmented log and snapshots in `dir/segments-dirname`.
    Segments,
}

/// Where [`Engine::open`] loaded the data from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoadSource {
    /// Nothing to load: a new, empty keyspace.
    Empty,
    /// A snapshot file (`dbfilename`).
    Snapshot(PathBuf),
    /// The AOF directory (its files, in load order).
    Aof(Vec<String>),
    /// The AOF did not exist yet: the snapshot file was loaded and became the new AOF's base.
    SnapshotIntoNewAof(PathBuf),
    /// A segments directory (from the start point described).
    Segments(String),
}

/// What [`Engine::open`] found and did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenReport {
    /// The persistence mode running now.
    pub mode: PersistenceMode,
    /// Where the data came from.
    pub source: LoadSource,
    /// Keys read from RDB parts.
    pub rdb_keys: u64,
    /// Commands replayed (RDB + deltas, AOF incr files, segments).
    pub commands_replayed: u64,
    /// The torn tail cut off the last log file: (file, bytes cut).
    pub torn_tail: Option<(String, u64)>,
    /// Keys in the keyspace after loading.
    pub keys: u64,
    /// Time spent opening.
    pub duration: Duration,
}

/// A finished snapshot or rewrite.
#[derive(Debug, Clone, PartialEq)]
pub struct JobReport {
    /// When it finished (Unix ms).
    pub finished_unix_ms: i64,
    /// How long it ran.
    pub duration: Duration,
    /// The snapshot's figures, or why it failed.
    pub result: std::result::Result<SnapshotResult, String>,
}

/// Persistence and upkeep counters ([`Engine::stats`]).
#[derive(Debug, Clone)]
pub struct Stats {
    /// Persistence mode.
    pub mode: PersistenceMode,
    /// Keys per database (expired keys not yet removed included, as DBSIZE).
    pub keys: Vec<u64>,
    /// Resident set size of the process, when the OS tells (Linux `/proc/self/status`).
    pub rss_bytes: Option<u64>,
    /// The keyspace's memory (`used_memory` of the entries, the bound, evicted keys, hits and
    /// misses); snapshot hand-offs, deltas and log queues are not in it.
    pub memory: forkless_keyspace::MemoryStats,
    /// Changes since the last successful snapshot (the save rules' counter).
    pub dirty: u64,
    /// Unix seconds of the last successful snapshot (the open time when there was none).
    pub last_save_unix: i64,
    /// A snapshot is running.
    pub snapshot_in_progress: bool,
    /// A rewrite is running.
    pub rewrite_in_progress: bool,
    /// A snapshot is scheduled to start once the running job ends.
    pub snapshot_scheduled: bool,
    /// A rewrite is scheduled to start once the running job ends (`aof_rewrite_scheduled`).
    pub rewrite_scheduled: bool,
    /// When the running snapshot or rewrite started (Unix ms).
    pub job_started_unix_ms: Option<i64>,
    /// The last snapshot succeeded (true before the first), as `rdb_last_bgsave_status`.
    pub last_snapshot_ok: bool,
    /// The last rewrite succeeded (true before the first), as `aof_last_bgrewrite_status`.
    pub last_rewrite_ok: bool,
    /// The last snapshot (`SAVE`, `BGSAVE`, save rules, segments snapshots).
    pub last_snapshot: Option<JobReport>,
    /// The last AOF rewrite.
    pub last_rewrite: Option<JobReport>,
    /// The log writer's counters (AOF and segments modes).
    pub aof: Option<AofMetrics>,
    /// AOF size as the rewrite rule sees it (base + bytes logged since), and at the last rewrite.
    pub aof_size: Option<(u64, u64)>,
    /// Bytes logged but not yet durable.
    pub fsync_lag_bytes: u64,
    /// Keys removed by active expiry.
    pub expired_keys: u64,
    /// Upkeep ticks run.
    pub upkeep_ticks: u64,
    /// Why writes are refused right now (`MISCONF ...`), if they are.
    pub misconf: Option<String>,
    /// The last persistence error seen (kept after recovery, for the logs).
    pub last_error: Option<String>,
}

/// Options of [`Engine::shutdown_with`].
#[derive(Debug, Clone, Copy, Default)]
pub struct ShutdownOptions {
    /// Take a final snapshot: `None` = as Redis (when save rules are set), `Some(b)` = force.
    pub save: Option<bool>,
    /// Bound on waiting for a running snapshot or rewrite (it is cancelled when it can be);
    /// `None` = `shutdown-timeout` seconds.
    pub timeout: Option<Duration>,
}

/// What [`Engine::shutdown`] did.
#[derive(Debug, Clone, Default)]
pub struct ShutdownReport {
    /// The final snapshot, if one was taken.
    pub final_snapshot: Option<std::result::Result<SnapshotResult, String>>,
    /// A background job did not stop within the bound and was left to finish on its own
    /// (its thread is detached; the log was closed, so it cannot install anything).
    pub abandoned_job: bool,
    /// Errors closing the log (writes that could not be made durable).
    pub errors: Vec<String>,
    /// Time taken.
    pub duration: Duration,
}

/// Values the upkeep reads every tick (copied out of the [`Config`] when it changes).
#[derive(Debug, Clone)]
pub(crate) struct Tunables {
    pub hz: u32,
    pub effort: u32,
    pub activerehashing: bool,
    pub save_rules: Vec<SaveRule>,
    pub auto_aof_pct: u64,
    pub auto_aof_min: u64,
    pub snapshot_mode: Mode,
    pub shutdown_timeout: Duration,
}

impl Tunables {
    fn from(c: &Config) -> Tunables {
        Tunables {
            hz: c.hz(),
            effort: c.int("active-expire-effort").clamp(1, 10) as u32,
            activerehashing: c.bool("activerehashing"),
            save_rules: c.save_rules(),
            auto_aof_pct: c.int("auto-aof-rewrite-percentage").max(0) as u64,
            auto_aof_min: c.int("auto-aof-rewrite-min-size").max(0) as u64,
            snapshot_mode: mode_of(c.str("snapshot-mode")),
            shutdown_timeout: Duration::from_secs(c.int("shutdown-timeout").max(0) as u64),
        }
    }
}

fn mode_of(s: &str) -> Mode {
    if s == "converging" {
        Mode::Converging
    } else {
        Mode::PointInTime
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum JobKind {
    Snapshot,
    Rewrite,
}

/// `Core::job_pending` when no job thread runs.
const JOB_NONE: u8 = 0;

impl JobKind {
    /// Its code in `Core::job_pending`.
    fn code(self) -> u8 {
        match self {
            JobKind::Snapshot => 1,
            JobKind::Rewrite => 2,
        }
    }
}

pub(crate) struct Job {
    pub kind: JobKind,
    pub cancel: Arc<AtomicBool>,
    pub thread: JoinHandle<()>,
}

#[derive(Default)]
pub(crate) struct PersistState {
    pub last_save_unix: i64,
    pub last_bgsave_ok: bool,
    pub last_bgsave_try: Option<Instant>,
    pub last_snapshot: Option<JobReport>,
    pub last_rewrite: Option<JobReport>,
    pub last_rewrite_fail: Option<Instant>,
    pub last_error: Option<String>,
    /// AOF size after the last rewrite (or at open), and the writer offset then.
    pub aof_base_size: u64,
    pub aof_base_offset: u64,
}

/// Everything the threads share.
pub(crate) struct Core {
    id: u64,
    pub ks: Arc<Keyspace>,
    pub obs: Arc<SnapshotObserver>,
    /// The replication stream (`crate::replication`).
    pub repl: Arc<ReplLog>,
    /// The log: backend and writer, switchable at run time (`crate::logslot`).
    pub(crate) log: Arc<LogSlot>,
    /// `CONFIG SET appendonly yes` asked for an AOF that is not started yet.
    aof_wanted: AtomicBool,
    /// The log writer's options at open (fsync and timestamps are re-read from the
    /// configuration when an AOF starts at run time).
    writer_opts: WriterOptions,
    dir: PathBuf,
    config: Mutex<Config>,
    pub tun: Mutex<Tunables>,
    pub dirty: Arc<AtomicU64>,
    pub state: Mutex<PersistState>,
    /// Writes refused because of a failed snapshot (stop-writes-on-bgsave-error).
    misconf_rdb: AtomicBool,
    closed: AtomicBool,
    pub stop_upkeep: AtomicBool,
    pub job: Mutex<Option<Job>>,
    pub snapshot_running: AtomicBool,
    pub rewrite_running: AtomicBool,
    /// The kind of the job thread `start_job` spawned, from before the spawn until the thread
    /// returns ([`JOB_NONE`] otherwise): INFO counts a job in progress from the request on, not
    /// from the moment its thread claims the slot (a client polling INFO after BGREWRITEAOF
    /// must not see it idle and then meet "already in progress").
    job_pending: AtomicU8,
    /// A snapshot or rewrite runs (claimed by `Core::claim`), and since when (Unix ms).
    busy: AtomicBool,
    busy_since_ms: AtomicI64,
    /// A snapshot / rewrite waits for the running job (`schedule_*`).
    pub scheduled_snapshot: AtomicBool,
    pub scheduled_rewrite: AtomicBool,
    /// (shutting down: rewrites must not install, a rewrite is installing).
    rw_gate: Mutex<(bool, bool)>,
    pub(crate) acks: Mutex<AckState>,
    pub(crate) notifier: Mutex<Option<Thread>>,
    pub expired: AtomicU64,
    /// Active expiry on (`DEBUG SET-ACTIVE-EXPIRE`; off on a replica, which waits for its
    /// primary's DELs).
    pub active_expire: AtomicBool,
    pub ticks: AtomicU64,
    pub cron: Mutex<Option<Thread>>,
    /// EVAL scripts and function libraries (`forkless-script`).
    pub scripting: Arc<Scripting>,
}

/// Releases [`Core::claim`].
struct Busy<'a> {
    core: &'a Core,
    flag: &'a AtomicBool,
}

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        // `busy` first: whoever sees the job's flag clear (INFO) finds the slot free too.
        self.core.busy.store(false, Ordering::Release);
        self.flag.store(false, Ordering::Release);
    }
}

/// The threads a handle owns.
struct Handle {
    core: Arc<Core>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    shut: Mutex<Option<ShutdownReport>>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        let _ = shutdown_handle(self, ShutdownOptions::default());
    }
}

/// A persistent, expiring, snapshotting Redis keyspace: the one type an embedding program needs.
///
/// Cloneable (`Arc` inside), `Send + Sync`. Background threads (upkeep, durability notifier,
/// snapshot and rewrite jobs) belong to it and stop when [`Engine::shutdown`] is called or the
/// last clone is dropped.
///
/// ```
/// use forkless::{Config, Engine};
/// let dir = tempfile::tempdir().unwrap();
/// let config = Config::default().with("appendonly", "yes").with("appendfsync", "always");
/// let engine = Engine::open(dir.path(), config.clone()).unwrap();
/// engine.set(0, b"greeting", b"hello").unwrap();
/// assert_eq!(engine.incr(0, b"visits").unwrap(), 1);
/// drop(engine); // shuts down: log flushed and fsynced, threads joined
///
/// let engine = Engine::open(dir.path(), config).unwrap();
/// assert_eq!(engine.get(0, b"greeting").unwrap(), Some(b"hello".to_vec()));
/// assert_eq!(engine.open_report().commands_replayed, 2);
/// ```
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Handle>,
    report: Arc<OpenReport>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("dir", &self.inner.core.dir)
            .field("mode", &self.report.mode)
            .finish_non_exhaustive()
    }
}

/// Builder of an [`Engine`]: a [`Config`] plus settings that are not redis.conf options.
pub struct EngineBuilder {
    dir: PathBuf,
    config: Config,
    clock: Option<forkless_keyspace::Clock>,
    seed: Option<u64>,
    io_wrapper: Option<forkless_aof::IoWrapper>,
}

impl EngineBuilder {
    /// Wrap every log file the engine appends to (AOF and segments modes): fault injection for
    /// tests (see `forkless_aof::io` for the trait and the in-memory fault backends).
    pub fn log_io_wrapper(mut self, w: forkless_aof::IoWrapper) -> Self {
        self.io_wrapper = Some(w);
        self
    }
    /// Use this configuration (its `dir` is ignored: the builder's directory wins).
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }
    /// Set one option (redis.conf syntax for the value).
    pub fn option(mut self, name: &str, value: &str) -> Result<Self> {
        self.config.set_any(name, value)?;
        Ok(self)
    }
    /// The clock of expiry (tests: `forkless_keyspace::ManualClock`); default system time.
    pub fn clock(mut self, clock: forkless_keyspace::Clock) -> Self {
        self.clock = Some(clock);
        self
    }
    /// Seed of the key hash and random commands (deterministic tests); default random.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }
    /// Open (create or recover) the engine.
    pub fn open(self) -> Result<Engine> {
        Engine::open_with(self)
    }
}

impl Engine {
    /// Open the engine in `dir` (created if missing) with `config` (`config`'s own `dir` is
    /// replaced by `dir`): recover whatever the directory holds, as redis-server does (the AOF
    /// when `appendonly yes`, else the snapshot file; segments with `persistence segments`),
    /// start the upkeep threads, and return the handle. See [`Engine::open_report`].
    pub fn open(dir: impl AsRef<Path>, config: Config) -> Result<Engine> {
        Engine::builder(dir).config(config).open()
    }

    /// Open with `dir` taken from the configuration (`dir` option, relative to the current
    /// directory), as `forkless server` does.
    pub fn open_config(config: Config) -> Result<Engine> {
        let dir = config.dir();
        Engine::open(dir, config)
    }

    /// A builder for `dir` with the default configuration.
    pub fn builder(dir: impl AsRef<Path>) -> EngineBuilder {
        EngineBuilder {
            dir: dir.as_ref().to_path_buf(),
            config: Config::default(),
            clock: None,
            seed: None,
            io_wrapper: None,
        }
    }

    fn open_with(b: EngineBuilder) -> Result<Engine> {
        let t0 = Instant::now();
        let mut config = b.config;
        let dir = b.dir;
        std::fs::create_dir_all(&dir).map_err(io(format!("creating {}", dir.display())))?;
        // CONFIG GET dir answers the absolute path, as redis-server.
        let dir =
            std::fs::canonicalize(&dir).map_err(io(format!("resolving {}", dir.display())))?;
        config.set_any("dir", &dir.to_string_lossy())?;
        let shards = config.int("shards");
        // Scripting exists before loading: the RDB's function libraries and the AOF's FUNCTION
        // commands are applied to it.
        let scripting = Arc::new(
            Scripting::new(Arc::new(|level, msg: &str| {
                // redis.log at notice and warning reaches the server's log (stderr).
                if level >= 2 {
                    eprintln!("script: {msg}");
                }
            }))
            .map_err(|e| Error::Unsupported(format!("ERR cannot start Lua: {e}")))?,
        );
        let mut kconf = forkless_keyspace::Config {
            databases: config.int("databases") as u32,
            seed: b.seed,
            clock: b.clock,
            memory: memory_config_of(&config),
            ..forkless_keyspace::Config::default()
        };
        if shards > 0 {
            kconf.shards = shards as usize;
        }
        let fsync = fsync_of(&config);
        let writer_opts = WriterOptions {
            fsync,
            timestamps: config.bool("aof-timestamp-enabled"),
            on_error: if config.str("aof-on-error") == "continue" {
                OnError::Continue
            } else {
                OnError::Refuse
            },
            io_wrapper: b.io_wrapper.clone(),
            ..WriterOptions::default()
        };
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        let dirty = Arc::new(AtomicU64::new(0));
        let dump_path = dir.join(config.str("dbfilename"));
        // Temp files of snapshots and rewrites a crash left behind (never loaded: the targets
        // are only replaced by complete, durable files).
        remove_stale_temps(&dir, &stale_dump_prefixes(config.str("dbfilename")));
        // Full-sync payloads being sent or received when the process died (the server's
        // `temp-sync-*` files; a new sync makes new ones).
        remove_stale_temps(&dir, &["temp-sync-".to_string()]);
        remove_stale_temps(
            &dir.join(config.str("appenddirname")),
            &[
                format!("temp-rewriteaof-{}", config.str("appendfilename")),
                format!(".temp-rewriteaof-{}", config.str("appendfilename")),
                // Manifest and base temps (`.appendonly.aof.manifest.tmp-<pid>-<n>`).
                format!(".{}.", config.str("appendfilename")),
            ],
        );
        let mut rdb_keys = 0;
        let mut commands = 0;
        let mut torn = None;
        let (mut ks, backend, source, mode) = if config.str("persistence") == "segments" {
            let sdir = dir.join(config.str("segments-dirname"));
            let age = config.int("segment-age");
            let sopts = SegmentOptions {
                segment_bytes: config.int("segment-bytes") as u64,
                segment_age: (age > 0).then(|| Duration::from_secs(age as u64)),
                keep_snapshots: config.int("keep-snapshots") as usize,
                keep_segment_bytes: config.int("keep-segment-bytes") as u64,
                writer: WriterOptions {
                    timestamps: true,
                    ..writer_opts.clone()
                },
            };
            let (sd, ks, rep) = SegmentDir::open(&sdir, &kconf, sopts)?;
            let source = match rep {
                Some(r) => {
                    rdb_keys = r.rdb_keys;
                    commands = r.commands;
                    torn = r
                        .truncated
                        .as_ref()
                        .map(|t| (t.file.clone(), t.file_len - t.valid_len));
                    LoadSource::Segments(r.start.describe())
                }
                None => LoadSource::Empty,
            };
            (
                ks,
                Backend::Segments(Arc::new(sd)),
                source,
                PersistenceMode::Segments,
            )
        } else if config.appendonly() {
            let adir = dir.join(config.str("appenddirname"));
            let fname = config.str("appendfilename").to_string();
            let aopts = AofDirOptions {
                filename: fname.clone(),
                rdb_preamble: config.bool("aof-use-rdb-preamble"),
                writer: writer_opts.clone(),
                history_generations: config.int("aof-history-generations") as usize,
            };
            let ks = keyspace_with_libraries(kconf, &scripting);
            let manifest = adir.join(format!("{fname}.manifest"));
            if manifest.exists() {
                let (ad, rep) = AofDir::open(&adir, &ks, aopts)?;
                rdb_keys = rep.rdb_keys;
                commands = rep.commands;
                torn = rep
                    .truncated
                    .as_ref()
                    .map(|t| (t.file.clone(), t.file_len - t.valid_len));
                let files = rep.files.clone();
                (
                    ks,
                    Backend::Aof(Arc::new(ad)),
                    LoadSource::Aof(files),
                    PersistenceMode::Aof,
                )
            } else {
                let source = if dump_path.exists() {
                    let rep = load_snapshot_file(&ks, &dump_path)?;
                    rdb_keys = rep.rdb_keys;
                    commands = rep.commands;
                    LoadSource::SnapshotIntoNewAof(dump_path.clone())
                } else {
                    LoadSource::Empty
                };
                // The libraries the dump carried seed the new base with its keys.
                let libs = ks.libraries().map(|l| l.codes()).unwrap_or_default();
                let ad = AofDir::create_with_functions(&adir, &ks.dump(), &libs, aopts)?;
                (ks, Backend::Aof(Arc::new(ad)), source, PersistenceMode::Aof)
            }
        } else {
            let ks = keyspace_with_libraries(kconf, &scripting);
            let source = if dump_path.exists() {
                let rep = load_snapshot_file(&ks, &dump_path)?;
                rdb_keys = rep.rdb_keys;
                commands = rep.commands;
                LoadSource::Snapshot(dump_path.clone())
            } else {
                LoadSource::Empty
            };
            (ks, Backend::Snapshots, source, PersistenceMode::Snapshots)
        };
        let writer = match &backend {
            Backend::Snapshots => None,
            Backend::Aof(a) => Some(a.writer()),
            Backend::Segments(s) => Some(s.writer()),
        };
        let log = Arc::new(LogSlot::new(backend.clone(), writer.clone()));
        let obs = install(&mut ks);
        let repl = Arc::new(ReplLog::new(config.int("repl-backlog-size") as u64));
        repl.set_sizes(
            config.int("repl-backlog-size") as u64,
            config.output_buffer_limits()[1].hard,
        );
        ks.set_sink(Arc::new(Fanout {
            id,
            log: log.clone(),
            dirty: dirty.clone(),
            repl: repl.clone(),
        }));
        ks.set_memory_config(memory_config_of(&config));
        ks.set_notify_flags(config.notify_flags());
        tune_keyspace(&ks, &config);
        let ks = Arc::new(ks);
        let keys: u64 = (0..ks.databases()).map(|d| ks.dbsize(d) as u64).sum();
        let now_s = unix_ms() / 1000;
        let mut state = PersistState {
            last_save_unix: now_s,
            last_bgsave_ok: true,
            ..Default::default()
        };
        if let Backend::Aof(a) = &backend {
            state.aof_base_size = aof_files_size(a);
            state.aof_base_offset = a.writer().metrics().enqueued_offset;
        }
        let tun = Tunables::from(&config);
        scripting.set_busy_threshold_ms(config.int("busy-reply-threshold").max(0) as u64);
        let core = Arc::new(Core {
            id,
            ks,
            obs,
            repl,
            log,
            aof_wanted: AtomicBool::new(false),
            writer_opts: writer_opts.clone(),
            dir,
            misconf_rdb: AtomicBool::new(false),
            config: Mutex::new(config),
            tun: Mutex::new(tun),
            dirty,
            state: Mutex::new(state),
            closed: AtomicBool::new(false),
            stop_upkeep: AtomicBool::new(false),
            job: Mutex::new(None),
            snapshot_running: AtomicBool::new(false),
            rewrite_running: AtomicBool::new(false),
            job_pending: AtomicU8::new(JOB_NONE),
            busy: AtomicBool::new(false),
            busy_since_ms: AtomicI64::new(0),
            rw_gate: Mutex::new((false, false)),
            scheduled_snapshot: AtomicBool::new(false),
            scheduled_rewrite: AtomicBool::new(false),
            acks: Mutex::new(AckState::default()),
            notifier: Mutex::new(None),
            expired: AtomicU64::new(0),
            active_expire: AtomicBool::new(true),
            ticks: AtomicU64::new(0),
            cron: Mutex::new(None),
            scripting,
        });
        let mut threads = Vec::new();
        let c = core.clone();
        let cron = thread::Builder::new()
            .name("forkless-upkeep".into())
            .spawn(move || crate::upkeep::run(c))
            .map_err(io("starting the upkeep thread"))?;
        *core.cron.lock() = Some(cron.thread().clone());
        threads.push(cron);
        // Always started: `appendfsync always` and the AOF itself can be set at run time.
        let c = core.clone();
        let n = thread::Builder::new()
            .name("forkless-durable-notify".into())
            .spawn(move || notifier(c))
            .map_err(io("starting the notifier thread"))?;
        *core.notifier.lock() = Some(n.thread().clone());
        threads.push(n);
        let report = OpenReport {
            mode,
            source,
            rdb_keys,
            commands_replayed: commands,
            torn_tail: torn,
            keys,
            duration: t0.elapsed(),
        };
        Ok(Engine {
            inner: Arc::new(Handle {
                core,
                threads: Mutex::new(threads),
                shut: Mutex::new(None),
            }),
            report: Arc::new(report),
        })
    }

    fn core(&self) -> &Arc<Core> {
        &self.inner.core
    }

    /// What opening found (source, commands replayed, torn tail, time).
    pub fn open_report(&self) -> &OpenReport {
        &self.report
    }

    /// The keyspace (reads, dumps, `command_spec`; writes through it bypass MISCONF checks and
    /// durability waits: use [`Engine::execute`]).
    pub fn keyspace(&self) -> &Arc<Keyspace> {
        &self.core().ks
    }

    /// Turn active expiry on or off (`DEBUG SET-ACTIVE-EXPIRE`; a replica turns it off and
    /// waits for its primary's DELs). Lazy expiry on access is not affected.
    pub fn set_active_expire(&self, on: bool) {
        self.core().active_expire.store(on, Ordering::Release);
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.core().dir
    }

    /// The persistence mode now (`CONFIG SET appendonly` changes it).
    pub fn mode(&self) -> PersistenceMode {
        self.core().mode()
    }

    /// Execute one command (`argv[0]` is its name) in `session`'s database and return its
    /// reply once the fsync policy is met: under `appendfsync always` the write is durable;
    /// otherwise this never waits for I/O (the only wait is backpressure when the log writer's
    /// queue is full, 64 MiB by default, as a disk slower than the writes). While persistence is failing, write commands get
    /// Redis's `MISCONF` error and change nothing.
    ///
    /// ```
    /// use forkless::{Config, Engine, Reply, Session};
    /// let dir = tempfile::tempdir().unwrap();
    /// let engine = Engine::open(dir.path(), Config::default()).unwrap();
    /// let mut s = Session::default();
    /// assert_eq!(engine.execute(&mut s, &[b"SET", b"k", b"v"]), Reply::ok());
    /// assert_eq!(engine.execute(&mut s, &[b"GET", b"k"]), Reply::Bulk(b"v".to_vec()));
    /// ```
    pub fn execute(&self, session: &mut Session, argv: &[&[u8]]) -> Reply {
        let (reply, d) = self.execute_deferred(session, argv);
        match d.wait() {
            Ok(()) => reply,
            Err(Error::Closed) => Reply::err(CLOSED),
            Err(e) => Reply::err(e.to_string()),
        }
    }

    /// [`Engine::execute`] without waiting for durability: returns the reply and a
    /// [`Durability`] ticket. Never blocks on I/O (the command runs under its shard locks and
    /// hands its log bytes to the writer's queue), so async servers call it on their worker
    /// threads and `.await` the ticket before sending the reply (or [`Durability::wait`] from a
    /// blocking context). The reply must not be sent before the ticket resolves `Ok` if the
    /// client is to be told the write is durable; on `Err`, send the error instead.
    ///
    /// Replies to later commands of the same connection may be computed before an earlier
    /// ticket resolves (pipelining); the writer's group commit resolves tickets in log order.
    pub fn execute_deferred(&self, session: &mut Session, argv: &[&[u8]]) -> (Reply, Durability) {
        let spec = argv.first().and_then(|n| self.core().ks.command_spec(n));
        self.execute_deferred_spec(session, spec, argv)
    }

    /// [`Engine::execute_deferred`] for a caller that already looked `argv[0]` up in the
    /// keyspace's table ([`forkless_keyspace::Keyspace::command_spec`]; `None`: not there).
    pub fn execute_deferred_spec(
        &self,
        session: &mut Session,
        spec: Option<&'static forkless_keyspace::CommandSpec>,
        argv: &[&[u8]],
    ) -> (Reply, Durability) {
        let core = self.core();
        if core.closed.load(Ordering::Acquire) {
            return (Reply::err(CLOSED), Durability::ready());
        }
        // Scripting commands are not in the keyspace's table: a name found there is not one.
        let Some(spec) = spec else {
            if argv
                .first()
                .is_some_and(|n| forkless_script::is_script_command(n))
            {
                let (out, d, _) = self.execute_script_deferred(session, argv);
                return (out.into_reply(), d);
            }
            return (core.ks.execute(session, argv), Durability::ready());
        };
        if spec.is_write() {
            if let Some(msg) = core.misconf() {
                return (Reply::err(msg), Durability::ready());
            }
        }
        LAST_APPEND.with(|c| *c.borrow_mut() = None);
        let reply = core.ks.execute_spec(session, spec, argv);
        (reply, core.ticket_of_last_append())
    }

    /// A scripting command (`EVAL`, `EVALSHA`, `EVAL_RO`, `EVALSHA_RO`, `FCALL`, `FCALL_RO`,
    /// `SCRIPT ...`, `FUNCTION ...`; see `forkless_script`): its RESP3-capable reply, the
    /// durability ticket of its effects, and the keys its writes named (for WATCH and blocked
    /// clients). The script runs on the calling thread, atomically (it holds its keys' shards,
    /// or every shard), and may run long: async servers call it where blocking is allowed.
    /// Its effects reach the log as one unit (MULTI/EXEC around two or more).
    pub fn execute_script_deferred(
        &self,
        session: &mut Session,
        argv: &[&[u8]],
    ) -> (Out, Durability, Touched) {
        let core = self.core();
        if core.closed.load(Ordering::Acquire) {
            return (Out::err(CLOSED), Durability::ready(), Touched::default());
        }
        let deny = || core.misconf();
        let host = Host { deny_write: &deny };
        LAST_APPEND.with(|c| *c.borrow_mut() = None);
        let (out, touched) = core
            .scripting
            .execute_touching(&core.ks, session, argv, &host);
        (out, core.ticket_of_last_append(), touched)
    }

    /// The server's EXEC of a queue holding scripts (`EVAL*`, `FCALL*`) among keyspace
    /// commands: one atomic unit holding every shard, the effects of the whole queue one
    /// MULTI/EXEC unit in the log (Redis 7.0). Each command's reply, the durability ticket and
    /// the keys the writes named. `Err`: MISCONF (a keyspace write queued while persistence
    /// fails), nothing ran.
    pub fn execute_multi_script_deferred(
        &self,
        session: &mut Session,
        cmds: &[&[&[u8]]],
    ) -> (
        std::result::Result<Vec<MultiReply>, Reply>,
        Durability,
        Touched,
    ) {
        let core = self.core();
        if let Some(refused) = core.transaction_refusal(cmds) {
            return (Err(refused), Durability::ready(), Touched::default());
        }
        let deny = || core.misconf();
        let host = Host { deny_write: &deny };
        LAST_APPEND.with(|c| *c.borrow_mut() = None);
        let (replies, touched) = core.scripting.execute_multi(&core.ks, session, cmds, &host);
        (Ok(replies), core.ticket_of_last_append(), touched)
    }

    /// Scripting: the script cache, function libraries, busy state (`-BUSY` replies, SCRIPT
    /// KILL).
    pub fn scripting(&self) -> &Arc<Scripting> {
        &self.core().scripting
    }

    /// A transaction (MULTI ... EXEC): the commands run in order under one lock set, no other
    /// command interleaves, and their propagated commands form one unit in the log and in a
    /// running snapshot's deltas. A command that cannot be queued (unknown, wrong arity) aborts
    /// everything (`EXECABORT`); a command failing at run time (`WRONGTYPE`) does not stop the
    /// others (Redis semantics). Returns each command's reply, once durable under `always`.
    ///
    /// ```
    /// use forkless::{Config, Engine, Reply, Session};
    /// let dir = tempfile::tempdir().unwrap();
    /// let engine = Engine::open(dir.path(), Config::default()).unwrap();
    /// let replies = engine
    ///     .transaction(&mut Session::default(), |tx| {
    ///         tx.cmd(&[b"SET", b"a", b"1"]).cmd(&[b"INCR", b"a"]);
    ///     })
    ///     .unwrap();
    /// assert_eq!(replies, vec![Reply::ok(), Reply::Integer(2)]);
    /// ```
    pub fn transaction(
        &self,
        session: &mut Session,
        build: impl FnOnce(&mut Tx),
    ) -> Result<Vec<Reply>> {
        let mut tx = Tx::default();
        build(&mut tx);
        let cmds: Vec<Vec<&[u8]>> = tx
            .cmds
            .iter()
            .map(|c| c.iter().map(Vec::as_slice).collect())
            .collect();
        let refs: Vec<&[&[u8]]> = cmds.iter().map(Vec::as_slice).collect();
        let (r, d) = self.execute_multi_deferred(session, &refs);
        d.wait()?;
        r.map_err(|e| match e {
            Reply::Error(e) if e.starts_with("MISCONF") => Error::Misconf(e.into_owned()),
            Reply::Error(e) if e.starts_with(CLOSED) => Error::Closed,
            Reply::Error(e) => Error::Command(format!(
                "EXECABORT Transaction discarded because of previous errors: {e}"
            )),
            other => Error::Command(format!("{other:?}")),
        })
    }

    /// The server's EXEC: like [`Engine::execute_deferred`] for a queued transaction. `Err`
    /// holds the first queueing error (answer `EXECABORT`); nothing ran then.
    pub fn execute_multi_deferred(
        &self,
        session: &mut Session,
        cmds: &[&[&[u8]]],
    ) -> (std::result::Result<Vec<Reply>, Reply>, Durability) {
        let core = self.core();
        if let Some(refused) = core.transaction_refusal(cmds) {
            return (Err(refused), Durability::ready());
        }
        LAST_APPEND.with(|c| *c.borrow_mut() = None);
        let r = core.ks.execute_multi(session, cmds);
        (r, core.ticket_of_last_append())
    }

    /// [`Engine::execute_multi_deferred`] for a queue that also holds commands the caller serves
    /// itself inside the unit (see [`Keyspace::execute_multi_foreign`]: they must not touch
    /// the keyspace).
    pub fn execute_multi_foreign_deferred(
        &self,
        session: &mut Session,
        cmds: &[&[&[u8]]],
        foreign: &mut forkless_keyspace::Foreign<'_>,
    ) -> (std::result::Result<Vec<Reply>, Reply>, Durability) {
        let core = self.core();
        if let Some(refused) = core.transaction_refusal(cmds) {
            return (Err(refused), Durability::ready());
        }
        LAST_APPEND.with(|c| *c.borrow_mut() = None);
        let r = core.ks.execute_multi_foreign(session, cmds, foreign);
        (r, core.ticket_of_last_append())
    }

    /// The replication stream (offsets, backlog, replication ids): see [`crate::replication`].
    pub fn replication(&self) -> &Arc<ReplLog> {
        &self.core().repl
    }

    /// A full sync's payload: a point-in-time snapshot written to `path` (a temp file the
    /// caller sends and removes), cut at the start barrier where the replication stream stands
    /// at offset O. The returned [`FullSync`] holds a cursor at O: the replica that loads the RDB
    /// and then applies the stream from O has applied exactly the primary's first O bytes, so
    /// its offset equals the primary's once it caught up (DESIGN.md section 10).
    /// `on_cut(cursor, replid, O)` is called right after the barrier with the cursor at O (the
    /// server answers `+FULLRESYNC <replid> <O>` from it) while the walk goes on. Waits for a running
    /// snapshot or rewrite to end first (one at a time); `cancel` stops the wait and the walk.
    /// The RDB carries Redis's `repl-stream-db`, `repl-id` and `repl-offset` aux fields.
    pub fn sync_snapshot(
        &self,
        path: &Path,
        on_cut: OnCut,
        cancel: &Arc<AtomicBool>,
    ) -> Result<FullSync> {
        let core = self.core();
        core.repl.activate();
        let busy = core.claim_waiting(cancel)?;
        let cut: Arc<Mutex<Option<Cut>>> = Arc::new(Mutex::new(None));
        let mut opts = core.snapshot_options(Mode::PointInTime, path);
        opts.spill_path = None;
        let (c, r) = (cut.clone(), core.repl.clone());
        opts.on_barrier = Some(std::sync::Arc::new(move |b| {
            if b == forkless_snapshot::worker::Barrier::Start {
                *c.lock() = Some(r.cut());
            }
        }));
        let aux_vals: Arc<Mutex<AuxFields>> = Arc::new(Mutex::new(Vec::new()));
        let a = aux_vals.clone();
        opts.trailer_aux = Some(std::sync::Arc::new(move || a.lock().clone()));
        let ticket = core.obs.try_begin()?;
        let file =
            std::fs::File::create(path).map_err(io(format!("creating {}", path.display())))?;
        let started = begin_snapshot(&*core.ks, ticket, &opts);
        let Some((cursor, replid, stream_db)) = cut.lock().take() else {
            return Err(Error::Unsupported(
                "ERR the snapshot barrier did not run".into(),
            ));
        };
        let offset = cursor.position();
        *aux_vals.lock() = vec![
            (
                b"repl-stream-db".to_vec(),
                stream_db.unwrap_or(0).to_string().into_bytes(),
            ),
            (b"repl-id".to_vec(), replid.clone().into_bytes()),
            (b"repl-offset".to_vec(), offset.to_string().into_bytes()),
        ];
        on_cut(cursor, &replid, offset);
        let (w, res, ticket) = run_until_output(
            started,
            &opts,
            std::io::BufWriter::with_capacity(1 << 20, file),
            &Progress::default(),
            cancel,
        )?;
        let file = w
            .into_inner()
            .map_err(|e| io(format!("writing {}", path.display()))(e.into_error()))?;
        drop(file);
        drop(ticket);
        drop(busy);
        let len = std::fs::metadata(path)
            .map_err(io(format!("reading {}", path.display())))?
            .len();
        Ok(FullSync {
            replid,
            offset,
            len,
            result: res,
        })
    }

    /// Replica side of a full sync: this engine now follows a primary whose stream has id
    /// `replid` and stands at `offset`; its dataset is replaced by the RDB at `path` (the
    /// primary's payload). Loading runs with no snapshot or rewrite in flight and in loading
    /// mode (no expiry); the previous data is dropped with a propagated `FLUSHALL` so the log
    /// stays replayable, and with a log the load is followed by a rewrite (segments: a
    /// snapshot), as Redis restarts its AOF after a sync. Returns the keys loaded and the
    /// database the primary's stream had selected (`repl-stream-db`).
    pub fn load_primary_payload(
        &self,
        path: &Path,
        replid: &str,
        offset: u64,
    ) -> Result<(u64, u32)> {
        let core = self.core();
        core.ks.set_replica(true);
        core.repl.follow(replid, offset);
        let stream_db = read_repl_stream_db(path);
        let busy = core.claim_waiting(&AtomicBool::new(false))?;
        let _ = core
            .ks
            .execute(&mut Session::default(), &[b"FLUSHALL".as_slice()]);
        let rep = load_snapshot_file(&core.ks, path);
        drop(busy);
        let rep = rep?;
        if !matches!(core.log.backend(), Backend::Snapshots) {
            core.run_rewrite(&Arc::new(AtomicBool::new(false)))?;
        }
        Ok((rep.rdb_keys, stream_db))
    }

    /// Execute a command of this replica's primary (its stream): no expiry, no eviction, no
    /// MISCONF refusal (a replica applies what its primary already applied); propagated to this
    /// engine's log like any write.
    pub fn execute_as_primary(&self, session: &mut Session, argv: &[&[u8]]) -> Reply {
        self.core().ks.execute_as_primary(session, argv)
    }

    /// [`Engine::execute_as_primary`] for a MULTI/EXEC block of the primary's stream.
    pub fn execute_multi_as_primary(
        &self,
        session: &mut Session,
        cmds: &[&[&[u8]]],
    ) -> std::result::Result<Vec<Reply>, Reply> {
        self.core().ks.execute_multi_as_primary(session, cmds)
    }

    /// Replica mode on or off: keys never expire by themselves and nothing is evicted while on
    /// (the primary's stream deletes them); off also ends following the primary's stream.
    pub fn set_replica(&self, on: bool) {
        let core = self.core();
        core.ks.set_replica(on);
        if !on {
            core.repl.promote();
        }
    }

    /// Take a snapshot now, on the calling thread, while writers go on (`SAVE`, but without
    /// blocking anyone): to `dir/dbfilename` in `mode` (`None`: the `snapshot-mode` option), or
    /// a segments snapshot (with retention) in segments mode. Counts as a save for the rules.
    pub fn snapshot_now(&self, mode: Option<Mode>) -> Result<SnapshotResult> {
        let mode = mode.unwrap_or_else(|| self.core().tun.lock().snapshot_mode);
        self.core()
            .run_snapshot(mode, &Arc::new(AtomicBool::new(false)))
    }

    /// Start a snapshot on a background thread owned by the engine (`BGSAVE`); `Err(InProgress)`
    /// while a snapshot or rewrite runs. Its outcome appears in [`Engine::stats`].
    pub fn start_snapshot(&self) -> Result<()> {
        self.core().start_job(JobKind::Snapshot)
    }

    /// Start a snapshot as soon as no snapshot or rewrite runs (`BGSAVE SCHEDULE`; the upkeep
    /// starts it within a tick once idle). Returns true when it started at once.
    pub fn schedule_snapshot(&self) -> Result<bool> {
        match self.core().start_job(JobKind::Snapshot) {
            Ok(()) => Ok(true),
            Err(Error::InProgress(_)) => {
                self.core()
                    .scheduled_snapshot
                    .store(true, Ordering::Release);
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    /// Start a rewrite as soon as no snapshot or rewrite runs (`BGREWRITEAOF` while a
    /// snapshot runs: "scheduled"). Returns true when it started at once.
    pub fn schedule_rewrite(&self) -> Result<bool> {
        match self.core().start_job(JobKind::Rewrite) {
            Ok(()) => Ok(true),
            Err(Error::InProgress(_)) => {
                self.core().scheduled_rewrite.store(true, Ordering::Release);
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    /// Rewrite the AOF now (`BGREWRITEAOF`, waited for): a converging forkless snapshot becomes
    /// the new base. In segments mode a converging snapshot (old segments then fall to
    /// retention). `Err(Unsupported)` without a log.
    pub fn rewrite_now(&self) -> Result<SnapshotResult> {
        self.core().run_rewrite(&Arc::new(AtomicBool::new(false)))
    }

    /// Start a rewrite on a background thread owned by the engine.
    pub fn start_rewrite(&self) -> Result<()> {
        self.core().start_job(JobKind::Rewrite)
    }

    /// Counters: keys per database, memory, persistence state, last snapshot and rewrite,
    /// fsync lag, errors.
    pub fn stats(&self) -> Stats {
        let core = self.core();
        core.stats(core.mode())
    }

    /// `CONFIG RESETSTAT`: zero the counters of [`Stats`] that Redis resets (`expired_keys`);
    /// the save rules' change counter and the persistence history are kept.
    pub fn reset_stats(&self) {
        self.core().expired.store(0, Ordering::Relaxed);
    }

    /// Keys with an expiry per database (INFO keyspace's `expires=`): each table keeps its
    /// count, so this is O(shards x databases), not a walk of the keys under the shard locks.
    pub fn expires_per_db(&self) -> Vec<u64> {
        let ks = self.keyspace();
        (0..ks.databases())
            .map(|db| ks.expires(db) as u64)
            .collect()
    }

    /// A copy of the configuration.
    pub fn config(&self) -> Config {
        self.core().config.lock().clone()
    }

    /// `CONFIG GET pattern`.
    pub fn config_get(&self, pattern: &str) -> Vec<(&'static str, String)> {
        self.core().config.lock().matching(pattern)
    }

    /// `CONFIG SET name value [name value ...]`: all or nothing; applied at once to the upkeep
    /// (hz, save rules, rewrite rule, snapshot options); options the engine does not act on are
    /// stored for the server.
    pub fn config_set(&self, pairs: &[(&str, &str)]) -> Result<()> {
        let core = self.core();
        let mut c = core.config.lock();
        if c.str("persistence") == "segments"
            && pairs
                .iter()
                .any(|(k, _)| k.eq_ignore_ascii_case("appendonly"))
        {
            return Err(Error::Unsupported(
                "ERR appendonly cannot change with persistence segments".into(),
            ));
        }
        c.set_many(pairs)?;
        let appendonly = c.appendonly();
        let fsync = fsync_of(&c);
        let tun = Tunables::from(&c);
        let mem = memory_config_of(&c);
        let repl_sizes = (
            c.int("repl-backlog-size") as u64,
            c.output_buffer_limits()[1].hard,
        );
        let notify = c.notify_flags();
        tune_keyspace(&core.ks, &c);
        drop(c);
        core.ks.set_notify_flags(notify);
        *core.tun.lock() = tun;
        core.repl.set_sizes(repl_sizes.0, repl_sizes.1);
        core.scripting
            .set_busy_threshold_ms(core.config.lock().int("busy-reply-threshold").max(0) as u64);
        // A lower maxmemory is enforced at once (Redis evicts on CONFIG SET maxmemory).
        core.ks.set_memory_config(mem);
        core.ks.evict_to_bound();
        core.update_misconf();
        if let Some(w) = core.log.writer() {
            if w.fsync_policy() != fsync {
                w.set_fsync(fsync);
            }
        }
        // The AOF on or off at run time (Redis's startAppendOnly / stopAppendOnly).
        match (appendonly, core.log.backend()) {
            (true, Backend::Snapshots) if !core.aof_wanted.swap(true, Ordering::AcqRel) => {
                match core.start_job(JobKind::Rewrite) {
                    Ok(()) => {}
                    Err(Error::InProgress(_)) => {
                        core.scheduled_rewrite.store(true, Ordering::Release)
                    }
                    Err(e) => {
                        core.aof_wanted.store(false, Ordering::Release);
                        return Err(e);
                    }
                }
            }
            (false, Backend::Aof(_)) => core.stop_aof()?,
            (false, Backend::Snapshots) if core.aof_wanted.load(Ordering::Acquire) => {
                core.stop_aof()?
            }
            _ => {}
        }
        Ok(())
    }

    /// What the AOF directory (`dir/appenddirname`) loads to, in a new keyspace: the log is
    /// flushed and fsynced first (`DEBUG LOADAOF` compares it with the live keyspace). Works
    /// with `appendonly no` too when the directory exists (BGREWRITEAOF writes it anyway).
    pub fn load_aof_copy(&self) -> Result<Keyspace> {
        let core = self.core();
        if let Backend::Aof(a) = core.log.backend() {
            a.writer().flush_and_sync()?;
        }
        let (adir, aopts) = core.aof_dir_options();
        let scripting = Arc::new(
            Scripting::new(Arc::new(|_, _: &str| {}))
                .map_err(|e| Error::Unsupported(format!("ERR cannot start Lua: {e}")))?,
        );
        let c = core.config.lock().clone();
        let ks = keyspace_with_libraries(
            forkless_keyspace::Config {
                databases: c.int("databases") as u32,
                ..forkless_keyspace::Config::default()
            },
            &scripting,
        );
        tune_keyspace(&ks, &c);
        let lopts = LoadOptions {
            until_timestamp: None,
            filename: Some(aopts.filename),
        };
        forkless_aof::load_dir(&adir, &lopts, &mut KeyspaceTarget::new(&ks))?;
        Ok(ks)
    }

    /// `CONFIG REWRITE`: rewrite the file the configuration was read from.
    pub fn config_rewrite(&self) -> Result<()> {
        let c = self.core().config.lock().clone();
        let Some(path) = c.file().map(Path::to_path_buf) else {
            return Err(Error::Unsupported(
                "ERR The server is running without a config file".into(),
            ));
        };
        Ok(c.rewrite_file(&path)?)
    }

    /// Stop the engine: refuse new commands, stop the upkeep, cancel or wait (bounded by
    /// `shutdown-timeout`) for a running snapshot or rewrite, take a final snapshot when save
    /// rules are set (as redis-server), flush and fsync the log, join every thread. Idempotent;
    /// also run when the last handle is dropped.
    pub fn shutdown(&self) -> Result<ShutdownReport> {
        self.shutdown_with(ShutdownOptions::default())
    }

    /// [`Engine::shutdown`] with explicit options.
    pub fn shutdown_with(&self, opts: ShutdownOptions) -> Result<ShutdownReport> {
        shutdown_handle(&self.inner, opts)
    }
}

/// `appendfsync`.
fn fsync_of(c: &Config) -> FsyncPolicy {
    c.str("appendfsync")
        .parse()
        .unwrap_or(FsyncPolicy::EverySec)
}

/// The keyspace's data-structure tuning from the configuration: XADD's node limits,
/// `hll-sparse-max-bytes` and the encoding thresholds (every keyspace the engine builds or
/// reconfigures gets them here).
fn tune_keyspace(ks: &Keyspace, c: &Config) {
    ks.set_stream_node_limits(
        c.int("stream-node-max-bytes"),
        c.int("stream-node-max-entries"),
    );
    ks.set_hll_sparse_max_bytes(c.int("hll-sparse-max-bytes"));
    ks.set_encoding_limits(&c.encoding_limits());
}

/// The keyspace's memory bound and eviction policy from the configuration (`maxmemory`,
/// `maxmemory-policy`, `maxmemory-samples`, `lfu-log-factor`, `lfu-decay-time`).
pub(crate) fn memory_config_of(c: &Config) -> forkless_keyspace::MemoryConfig {
    forkless_keyspace::MemoryConfig {
        maxmemory: c.int("maxmemory").max(0) as u64,
        policy: c.str("maxmemory-policy").parse().unwrap_or_default(),
        samples: c.int("maxmemory-samples").clamp(1, 64) as u32,
        lfu_log_factor: c.int("lfu-log-factor").max(0) as u32,
        lfu_decay_time: c.int("lfu-decay-time").max(0) as u32,
    }
}

/// Load a snapshot file (RDB, or RDB + RESP deltas) into `ks` in loading mode.
pub(crate) fn load_snapshot_file(ks: &Keyspace, path: &Path) -> Result<LoadReport> {
    let mut report = LoadReport::default();
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut target = KeyspaceTarget::new(ks);
    forkless_aof::load_file_from(
        path,
        &name,
        0,
        false,
        &LoadOptions::default(),
        &mut target,
        &mut report,
    )
    .map_err(|e| Error::Load {
        file: path.display().to_string(),
        what: e.to_string(),
    })?;
    Ok(report)
}

/// A keyspace whose function libraries are `scripting`'s (RDB records and logged FUNCTION
/// commands load into it; snapshots write its libraries).
fn keyspace_with_libraries(
    kconf: forkless_keyspace::Config,
    scripting: &Arc<Scripting>,
) -> Keyspace {
    let mut ks = Keyspace::new(kconf);
    ks.set_libraries(scripting.clone());
    scripting.publish_memory(&ks);
    ks
}

/// [`load_snapshot_file`] into a new keyspace: the one public loader of what forkless
/// snapshots write (a pure RDB, or RDB + RESP deltas).
pub fn load(path: &Path) -> Result<Keyspace> {
    let ks = Keyspace::new(forkless_keyspace::Config::default());
    load_snapshot_file(&ks, path)?;
    Ok(ks)
}

/// The temp names of a snapshot to `dbfilename` (`forkless_durable::temp_path_for` of the
/// file and of its delta spill file).
fn stale_dump_prefixes(dbfilename: &str) -> Vec<String> {
    let stem = Path::new(dbfilename)
        .with_extension("deltas")
        .to_string_lossy()
        .into_owned();
    vec![format!(".{dbfilename}.tmp-"), format!(".{stem}.tmp-")]
}

/// Remove the files of `dir` whose name starts with one of `prefixes` (best effort).
fn remove_stale_temps(dir: &Path, prefixes: &[String]) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if prefixes.iter().any(|p| name.starts_with(p.as_str()))
            && e.file_type().is_ok_and(|t| t.is_file())
        {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

fn aof_files_size(a: &AofDir) -> u64 {
    let m = a.manifest();
    m.base
        .iter()
        .chain(m.incr.iter())
        .filter_map(|f| std::fs::metadata(a.path().join(&f.name)).ok())
        .map(|md| md.len())
        .sum()
}

fn rss_bytes() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

impl Core {
    /// Why writes are refused now, if they are.
    fn misconf(&self) -> Option<String> {
        if let Some(w) = self.log.writer() {
            if let Err(e) = w.check_writable() {
                // Shutdown closed the log after this command passed the `closed` check.
                if self.is_closed() {
                    return Some(CLOSED.to_string());
                }
                return Some(misconf_aof(&e));
            }
        }
        if self.misconf_rdb.load(Ordering::Relaxed) {
            return Some(MISCONF_RDB.to_string());
        }
        None
    }

    pub(crate) fn update_misconf(&self) {
        let stop = self.config.lock().bool("stop-writes-on-bgsave-error");
        let rules = !self.tun.lock().save_rules.is_empty();
        let failed = !self.state.lock().last_bgsave_ok;
        self.misconf_rdb
            .store(stop && rules && failed, Ordering::Relaxed);
    }

    fn ticket_of_last_append(self: &Arc<Self>) -> Durability {
        let last = LAST_APPEND.with(|c| c.borrow_mut().take());
        match last {
            // A write racing with shutdown: the log closed before its bytes were accepted.
            // A write racing with shutdown: the log closed before its bytes were accepted.
            Some((id, (_, Err(_), _))) if id == self.id && self.is_closed() => Durability {
                pending: None,
                error: Some(CLOSED.to_string()),
            },
            Some((id, (_, Err(e), _))) if id == self.id => Durability {
                pending: None,
                error: Some(misconf_aof(&e)),
            },
            Some((id, (gen, Ok(t), true))) if id == self.id => Durability {
                pending: Some((self.clone(), gen, t)),
                error: None,
            },
            _ => Durability::ready(),
        }
    }

    fn snapshot_options(&self, mode: Mode, path: &Path) -> SnapshotOptions {
        let c = self.config.lock();
        SnapshotOptions {
            mode,
            rdb: forkless_rdb::WriteOptions {
                compression: c.bool("rdbcompression"),
                checksum: c.bool("rdbchecksum"),
                limits: c.encoding_limits(),
                ..Default::default()
            },
            spill_path: Some(path.to_path_buf()),
            ..Default::default()
        }
    }

    /// A snapshot (`dbfilename`, or a segments snapshot), on this thread; records the outcome.
    pub(crate) fn run_snapshot(
        &self,
        mode: Mode,
        cancel: &Arc<AtomicBool>,
    ) -> Result<SnapshotResult> {
        let busy = self.claim(&self.snapshot_running)?;
        let t0 = Instant::now();
        let dirty_before = self.dirty.load(Ordering::Relaxed);
        let r = match &self.log.backend() {
            Backend::Segments(sd) => {
                sd.snapshot(&self.ks, &self.obs, mode)
                    .map(|i| {
                        // The growth rule counts the log written since this snapshot.
                        let off = sd.writer().metrics().enqueued_offset;
                        let mut st = self.state.lock();
                        st.aof_base_size = i.entry.len;
                        st.aof_base_offset = off;
                        i.result
                    })
                    .map_err(Error::from)
            }
            _ => self.snapshot_to_dump(mode, cancel),
        };
        drop(busy);
        let mut st = self.state.lock();
        st.last_bgsave_try = Some(Instant::now());
        match &r {
            Ok(_) => {
                st.last_bgsave_ok = true;
                st.last_save_unix = unix_ms() / 1000;
                let _ = self
                    .dirty
                    .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |d| {
                        Some(d.saturating_sub(dirty_before))
                    });
            }
            Err(e) => {
                st.last_bgsave_ok = false;
                st.last_error = Some(format!("snapshot: {e}"));
            }
        }
        st.last_snapshot = Some(JobReport {
            finished_unix_ms: unix_ms(),
            duration: t0.elapsed(),
            result: r.as_ref().map(Clone::clone).map_err(|e| e.to_string()),
        });
        drop(st);
        self.update_misconf();
        r
    }

    fn snapshot_to_dump(&self, mode: Mode, cancel: &Arc<AtomicBool>) -> Result<SnapshotResult> {
        let path = self.dir.join(self.config.lock().str("dbfilename"));
        let opts = self.snapshot_options(mode, &path);
        let ticket = self.obs.try_begin()?;
        let file =
            DurableFile::create(&path).map_err(io(format!("creating {}", path.display())))?;
        let started = begin_snapshot(&*self.ks, ticket, &opts);
        // The slot (ticket) is released only after the commit (issue 13 item 4).
        let (file, res, ticket) =
            run_until_output(started, &opts, file, &Progress::default(), cancel)?;
        file.commit()
            .map_err(io(format!("committing {}", path.display())))?;
        drop(ticket);
        Ok(res)
    }

    /// Why a transaction (`cmds`, queued) may not run at all: the engine is closed, or a write
    /// is queued while persistence fails (MISCONF). Checked once, before any command runs.
    fn transaction_refusal(&self, cmds: &[&[&[u8]]]) -> Option<Reply> {
        if self.closed.load(Ordering::Acquire) {
            return Some(Reply::err(CLOSED));
        }
        let writes = cmds.iter().any(|c| {
            c.first()
                .and_then(|n| self.ks.command_spec(n))
                .is_some_and(|s| s.is_write())
        });
        if writes {
            return self.misconf().map(Reply::err);
        }
        None
    }

    /// Claim the right to run a snapshot or rewrite (one at a time; the loser gets
    /// `InProgress` and records nothing, so a collision is never taken for a failed save).
    fn claim<'a>(&'a self, flag: &'a AtomicBool) -> Result<Busy<'a>> {
        if self
            .busy
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return Err(Error::InProgress("a snapshot or rewrite is"));
        }
        self.busy_since_ms.store(unix_ms(), Ordering::Release);
        flag.store(true, Ordering::Release);
        Ok(Busy { core: self, flag })
    }

    /// [`Core::claim`] as a snapshot, waiting while another snapshot or rewrite runs (the
    /// replication paths: a replica waits rather than fails); stops at shutdown or `cancel`.
    fn claim_waiting<'a>(&'a self, cancel: &AtomicBool) -> Result<Busy<'a>> {
        loop {
            if self.is_closed() || cancel.load(Ordering::Acquire) {
                return Err(Error::Unsupported("ERR shutting down".into()));
            }
            match self.claim(&self.snapshot_running) {
                Err(Error::InProgress(_)) => std::thread::sleep(Duration::from_millis(20)),
                r => return r,
            }
        }
    }

    /// An AOF rewrite (segments: a converging snapshot), on this thread; records the outcome.
    pub(crate) fn run_rewrite(&self, cancel: &Arc<AtomicBool>) -> Result<SnapshotResult> {
        let t0 = Instant::now();
        let r = match &self.log.backend() {
            Backend::Snapshots => return self.run_rewrite_without_aof(cancel),
            Backend::Segments(_) => {
                return self.run_snapshot(Mode::Converging, &Arc::new(AtomicBool::new(false)))
            }
            Backend::Aof(a) => {
                let busy = self.claim(&self.rewrite_running)?;
                // The gate: once shutdown has begun, no rewrite installs (the manifest switch);
                // one that is installing is waited for (a few fsyncs and renames).
                let proceed = || {
                    let mut g = self.rw_gate.lock();
                    if g.0 {
                        false
                    } else {
                        g.1 = true;
                        true
                    }
                };
                let r = forkless_aof::rewrite_cancellable(a, &self.ks, &self.obs, cancel, &proceed)
                    .map_err(Error::from);
                self.rw_gate.lock().1 = false;
                drop(busy);
                if r.is_ok() {
                    let size = aof_files_size(a);
                    let off = a.writer().metrics().enqueued_offset;
                    let mut st = self.state.lock();
                    st.aof_base_size = size;
                    st.aof_base_offset = off;
                }
                r
            }
        };
        let mut st = self.state.lock();
        match &r {
            Ok(_) => st.last_rewrite_fail = None,
            Err(e) => {
                st.last_rewrite_fail = Some(Instant::now());
                st.last_error = Some(format!("rewrite: {e}"));
            }
        }
        st.last_rewrite = Some(JobReport {
            finished_unix_ms: unix_ms(),
            duration: t0.elapsed(),
            result: r.as_ref().map(Clone::clone).map_err(|e| e.to_string()),
        });
        r
    }

    /// Start a background job unless one runs.
    pub(crate) fn start_job(self: &Arc<Self>, kind: JobKind) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        let mut slot = self.job.lock();
        // A job that released its claim is only returning: give it a moment to end, so a
        // request right after a finished job (INFO already says idle) is not refused.
        for _ in 0..100 {
            match slot.as_ref() {
                Some(j) if !j.thread.is_finished() && !self.busy.load(Ordering::Acquire) => {
                    std::thread::sleep(Duration::from_millis(1))
                }
                _ => break,
            }
        }
        if let Some(j) = slot.as_ref() {
            if !j.thread.is_finished() {
                return Err(Error::InProgress(match j.kind {
                    JobKind::Snapshot => "a background snapshot is",
                    JobKind::Rewrite => "an AOF rewrite is",
                }));
            }
        }
        if let Some(j) = slot.take() {
            let _ = j.thread.join();
        }
        if self.busy.load(Ordering::Acquire) {
            return Err(Error::InProgress("a snapshot or rewrite is"));
        }
        let cancel = Arc::new(AtomicBool::new(false));
        let (c, cc) = (self.clone(), cancel.clone());
        let mode = self.tun.lock().snapshot_mode;
        // In progress from here (the job lock is held, so no other start races this store).
        self.job_pending.store(kind.code(), Ordering::Release);
        let spawned = thread::Builder::new()
            .name(match kind {
                JobKind::Snapshot => "forkless-bgsave".into(),
                JobKind::Rewrite => "forkless-rewrite".into(),
            })
            .spawn(move || {
                let _ = match kind {
                    JobKind::Snapshot => c.run_snapshot(mode, &cc),
                    JobKind::Rewrite => c.run_rewrite(&cc),
                };
                c.job_pending.store(JOB_NONE, Ordering::Release);
            });
        let thread = match spawned {
            Ok(t) => t,
            Err(e) => {
                self.job_pending.store(JOB_NONE, Ordering::Release);
                return Err(io("starting a background job")(e));
            }
        };
        *slot = Some(Job {
            kind,
            cancel,
            thread,
        });
        Ok(())
    }

    /// Log size for the rewrite rule: (current, at the last rewrite). Segments: the last
    /// snapshot's size plus the log written since, and the snapshot's size.
    pub(crate) fn aof_sizes(&self) -> Option<(u64, u64)> {
        let off = match &self.log.backend() {
            Backend::Aof(a) => a.writer().metrics().enqueued_offset,
            Backend::Segments(s) => s.writer().metrics().enqueued_offset,
            Backend::Snapshots => return None,
        };
        let st = self.state.lock();
        Some((
            st.aof_base_size + off.saturating_sub(st.aof_base_offset),
            st.aof_base_size,
        ))
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    pub(crate) fn is_busy(&self) -> bool {
        self.busy.load(Ordering::Acquire)
    }

    /// True with a log (AOF or segments): the growth rule applies.
    pub(crate) fn has_log(&self) -> bool {
        !matches!(self.log.backend(), Backend::Snapshots)
    }

    /// The persistence mode now (`appendonly yes` counts from the moment it is asked for, as
    /// Redis's `aof_enabled`).
    pub(crate) fn mode(&self) -> PersistenceMode {
        match self.log.backend() {
            Backend::Aof(_) => PersistenceMode::Aof,
            Backend::Segments(_) => PersistenceMode::Segments,
            Backend::Snapshots if self.aof_wanted.load(Ordering::Acquire) => PersistenceMode::Aof,
            Backend::Snapshots => PersistenceMode::Snapshots,
        }
    }

    /// The AOF directory and its options from the configuration now.
    fn aof_dir_options(&self) -> (PathBuf, AofDirOptions) {
        let c = self.config.lock();
        let writer = WriterOptions {
            fsync: fsync_of(&c),
            timestamps: c.bool("aof-timestamp-enabled"),
            ..self.writer_opts.clone()
        };
        (
            self.dir.join(c.str("appenddirname")),
            AofDirOptions {
                filename: c.str("appendfilename").to_string(),
                rdb_preamble: c.bool("aof-use-rdb-preamble"),
                writer,
                history_generations: c.int("aof-history-generations") as usize,
            },
        )
    }

    /// A new AOF generation from a point-in-time snapshot of the live keyspace
    /// (`forkless_aof::live`): with `attach`, the sink appends to it from the snapshot's start
    /// barrier on and it becomes the backend (`CONFIG SET appendonly yes`); without, it is only
    /// written, as Redis's BGREWRITEAOF does with `appendonly no`.
    fn start_aof(&self, attach: bool, cancel: &AtomicBool) -> Result<SnapshotResult> {
        let busy = self.claim(&self.rewrite_running)?;
        let (adir, aopts) = self.aof_dir_options();
        let log = self.log.clone();
        let hook: forkless_aof::live::Attach = if attach {
            Arc::new(move |w| {
                log.attach(w);
            })
        } else {
            Arc::new(|_| {})
        };
        let r = forkless_aof::start_live(&adir, aopts, &self.ks, &self.obs, hook, cancel);
        let (dir, res) = match r {
            Ok(x) => x,
            Err(e) => {
                // The AOF stays off (nothing changed on disk); INFO reports the failure.
                if attach {
                    self.aof_wanted.store(false, Ordering::Release);
                }
                let mut st = self.state.lock();
                st.last_rewrite_fail = Some(Instant::now());
                st.last_error = Some(format!("starting the AOF: {e}"));
                return Err(e.into());
            }
        };
        if !attach {
            dir.writer().close()?;
            return Ok(res);
        }
        if !self.aof_wanted.load(Ordering::Acquire) || self.is_closed() {
            // `appendonly no` (or shutdown) came while the base was written.
            self.log.attach(None);
            let _ = dir.writer().close();
            return Ok(res);
        }
        let off = dir.writer().metrics().enqueued_offset;
        let size = aof_files_size(&dir);
        // The backend first, then the request cleared: INFO never shows the AOF off between.
        self.log.set_backend(Backend::Aof(Arc::new(dir)));
        self.aof_wanted.store(false, Ordering::Release);
        let mut st = self.state.lock();
        st.aof_base_size = size;
        st.aof_base_offset = off;
        drop(st);
        drop(busy);
        self.wake_notifier();
        Ok(res)
    }

    /// BGREWRITEAOF with `appendonly no`, or the start of a wanted AOF.
    fn run_rewrite_without_aof(&self, cancel: &AtomicBool) -> Result<SnapshotResult> {
        let attach = self.aof_wanted.load(Ordering::Acquire);
        self.start_aof(attach, cancel)
    }

    /// `CONFIG SET appendonly no`: a start in progress is cancelled, the writer detached, then
    /// flushed, fsynced and closed (its files stay, as Redis leaves them).
    fn stop_aof(&self) -> Result<()> {
        self.aof_wanted.store(false, Ordering::Release);
        let job = {
            let mut slot = self.job.lock();
            match slot.as_ref() {
                Some(j) if j.kind == JobKind::Rewrite => slot.take(),
                _ => None,
            }
        };
        if let Some(j) = job {
            j.cancel.store(true, Ordering::Release);
            let _ = j.thread.join();
        }
        let closed = match self.log.detach_aof() {
            Some(w) => w.close().map_err(Error::from),
            None => Ok(()),
        };
        self.wake_notifier();
        closed
    }

    fn wake_notifier(&self) {
        if let Some(n) = self.notifier.lock().as_ref() {
            n.unpark();
        }
    }

    fn stats(&self, mode: PersistenceMode) -> Stats {
        let keys = (0..self.ks.databases())
            .map(|d| self.ks.dbsize(d) as u64)
            .collect();
        let aof = self.log.writer().map(|w| w.metrics());
        let fsync_lag_bytes = aof
            .as_ref()
            .map_or(0, |m| m.enqueued_offset.saturating_sub(m.durable_offset));
        let aof_size = self.aof_sizes();
        let misconf = self.misconf();
        let st = self.state.lock();
        Stats {
            mode,
            keys,
            rss_bytes: rss_bytes(),
            memory: self.ks.memory_stats(),
            dirty: self.dirty.load(Ordering::Relaxed),
            last_save_unix: st.last_save_unix,
            snapshot_in_progress: self.snapshot_running.load(Ordering::Acquire)
                || self.job_pending.load(Ordering::Acquire) == JobKind::Snapshot.code(),
            // An AOF asked for (`CONFIG SET appendonly yes`) and not installed yet counts as its
            // rewrite in progress from the request on, as in Redis (the job thread may not have
            // claimed the slot yet).
            rewrite_in_progress: self.rewrite_running.load(Ordering::Acquire)
                || self.job_pending.load(Ordering::Acquire) == JobKind::Rewrite.code()
                || (self.aof_wanted.load(Ordering::Acquire)
                    && matches!(self.log.backend(), Backend::Snapshots)),
            snapshot_scheduled: self.scheduled_snapshot.load(Ordering::Acquire),
            rewrite_scheduled: self.scheduled_rewrite.load(Ordering::Acquire),
            job_started_unix_ms: self
                .busy
                .load(Ordering::Acquire)
                .then(|| self.busy_since_ms.load(Ordering::Acquire)),
            last_snapshot_ok: st.last_bgsave_ok,
            last_rewrite_ok: st.last_rewrite.as_ref().is_none_or(|r| r.result.is_ok()),
            last_snapshot: st.last_snapshot.clone(),
            last_rewrite: st.last_rewrite.clone(),
            aof,
            aof_size,
            fsync_lag_bytes,
            expired_keys: self.expired.load(Ordering::Relaxed),
            upkeep_ticks: self.ticks.load(Ordering::Relaxed),
            misconf,
            last_error: st.last_error.clone(),
        }
    }
}

fn shutdown_handle(h: &Handle, opts: ShutdownOptions) -> Result<ShutdownReport> {
    let mut done = h.shut.lock();
    if let Some(r) = done.as_ref() {
        return Ok(r.clone());
    }
    let t0 = Instant::now();
    let core = &h.core;
    let timeout = opts
        .timeout
        .unwrap_or_else(|| core.tun.lock().shutdown_timeout);
    let deadline = t0 + timeout;
    let mut report = ShutdownReport::default();
    core.closed.store(true, Ordering::Release);
    // 1. The upkeep stops (it starts no new job once `stop_upkeep` is set).
    core.stop_upkeep.store(true, Ordering::Release);
    if let Some(t) = core.cron.lock().as_ref() {
        t.unpark();
    }
    // 2. A running job: cancelled when it can be (dump snapshots), waited for until the bound.
    let installing = {
        let mut g = core.rw_gate.lock();
        g.0 = true;
        g.1
    };
    let job = core.job.lock().take();
    if let Some(j) = job {
        j.cancel.store(true, Ordering::Relaxed);
        while !j.thread.is_finished() && (installing || Instant::now() < deadline) {
            thread::sleep(Duration::from_millis(2));
        }
        if j.thread.is_finished() {
            let _ = j.thread.join();
        } else {
            report.abandoned_job = true;
        }
    }
    // A rewrite installing on another thread (`rewrite_now`) finishes its manifest switch.
    while core.rw_gate.lock().1 {
        thread::sleep(Duration::from_millis(1));
    }
    // 3. The final snapshot, as redis-server: when save rules are set (or asked for).
    let want = opts
        .save
        .unwrap_or_else(|| !core.tun.lock().save_rules.is_empty());
    if want && !report.abandoned_job {
        let mode = core.tun.lock().snapshot_mode;
        let cancel = Arc::new(AtomicBool::new(false));
        let (c, cc) = (core.clone(), cancel.clone());
        let t = thread::spawn(move || c.run_snapshot(mode, &cc));
        while !t.is_finished() && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(2));
        }
        cancel.store(true, Ordering::Relaxed);
        report.final_snapshot = Some(match t.join() {
            Ok(r) => r.map_err(|e| e.to_string()),
            Err(_) => Err("the final snapshot panicked".into()),
        });
    }
    // 4. The log: flush, fsync, stop its threads.
    let closed = match &core.log.backend() {
        Backend::Snapshots => Ok(()),
        Backend::Aof(a) => a.writer().close().map_err(|e| e.to_string()),
        Backend::Segments(s) => s.close().map_err(|e| e.to_string()),
    };
    if let Err(e) = closed {
        report.errors.push(e);
    }
    // 5. Our threads.
    core.acks.lock().stop = true;
    if let Some(n) = core.notifier.lock().as_ref() {
        n.unpark();
    }
    let threads: Vec<_> = h.threads.lock().drain(..).collect();
    for t in threads {
        if t.thread().id() == thread::current().id() {
            continue;
        }
        let _ = t.join();
    }
    report.duration = t0.elapsed();
    *done = Some(report.clone());
    Ok(report)
}
