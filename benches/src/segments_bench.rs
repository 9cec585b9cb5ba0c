//! Segmented persistence against the multi-part AOF (benches/README.md "Segments"), the
//! measurement code of `src/bin/segments_harness.rs`.
//!
//! Problem: segmented persistence (`forkless-segments`: segments never rewritten, snapshots
//! that record their cut, retention) replaces the AOF rewrite. Whether that is worth it shows in
//! what the disk sees (bytes written per byte logged, bytes kept over time), in what writers
//! see (latency, throughput) and in recovery time, on the same workload.
//!
//! * Setup ([`setup_segments`], [`setup_aof`]): a keyspace of N keys is built first (not
//!   logged), then persisted: segments: [`SegmentDir::open`] on an empty directory, the keys
//!   executed into the keyspace it returns, a first snapshot; AOF: [`AofDir::create`] with the
//!   keys (`Keyspace::dump`) as RDB base. Both writers with the same options (fsync policy,
//!   `#TS:` annotations).
//! * [`measure`]: W writer threads at full speed ([`WriteGen`] SET / INCR / HSET, each write
//!   `execute` + `ack_current_thread`, latency in HDR histograms, one per second too) for a
//!   fixed time while one thread persists on a schedule ([`Trigger`]: every K seconds, or
//!   Redis's `auto-aof-rewrite-percentage` / `auto-aof-rewrite-min-size` rule) and one samples
//!   the directory's size every second.
//! * Bytes: logged = the writer's `AofMetrics::bytes_written` over the measured time (the RESP
//!   commands plus their `SELECT` / `#TS:` lines); files written = logged + the bytes of every
//!   snapshot (segments) or base (AOF rewrite) written meanwhile; and, as a cross-check, the
//!   process's `write_bytes` / `cancelled_write_bytes` from `/proc/self/io` (page-granular,
//!   manifests included; one system runs at a time, so the process delta is that system's).
//! * [`run_recovery`]: segments only: the same load with a snapshot every K seconds, stopped at
//!   a random point; the manifest as it was at the stop (a snapshot still running then is not
//!   used, as after a crash) is recovered with [`forkless_segments::recover`] (timed), and the
//!   snapshot's load is timed alone.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use forkless_aof::{
    rewrite, AofDir, AofDirOptions, AofWriter, FsyncPolicy, KeyspaceTarget, LoadReport,
    WriterOptions,
};
use forkless_keyspace::{Config, Keyspace, Session};
use forkless_segments::recover::load_snapshot;
use forkless_segments::{
    recover, RecoverOptions, SegManifest, SegmentDir, SegmentOptions, StartPoint,
};
use forkless_snapshot::Mode;
use forkless_snapshot::SnapshotObserver;
use forkless_sync::atomic::{AtomicBool, Ordering};
use forkless_sync::{thread, Arc, Mutex};

use crate::aof_bench::{build, dir_bytes, dir_files};
use forkless_harness::hist::{Recorder, Summary, WindowPoint};
use forkless_harness::workload::{Dataset, WriteGen};

/// When the persistence thread snapshots (segments) or rewrites (AOF).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Trigger {
    /// At K, 2K, 3K... seconds after the start (at once when the previous one overran).
    Every(Duration),
    /// Redis's rule (`auto-aof-rewrite-percentage`, `auto-aof-rewrite-min-size`): when the
    /// directory holds at least `min_bytes` and has grown by `percent` % over its size after the
    /// last rewrite (at the start: after the base was written). Checked every 50 ms.
    Growth {
        /// Growth in percent (Redis default 100).
        percent: u64,
        /// Minimum size (Redis default 64 MiB).
        min_bytes: u64,
    },
}

impl Trigger {
    /// For tables.
    pub fn describe(&self) -> String {
        match self {
            Trigger::Every(d) => format!("every {} s", d.as_secs_f64()),
            Trigger::Growth { percent, min_bytes } => format!(
                "growth {percent}% over the size after the last rewrite, min {} MiB",
                min_bytes >> 20
            ),
        }
    }
}

/// The system under test.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum System {
    /// `forkless-segments`: snapshots on the trigger, retention after each.
    Segments,
    /// The multi-part AOF with `forkless_aof::rewrite` on the trigger.
    Aof,
}

/// One measured configuration.
#[derive(Clone, Debug)]
pub struct RunConfig {
    /// The system.
    pub system: System,
    /// When to snapshot / rewrite.
    pub trigger: Trigger,
    /// Writer threads.
    pub writers: usize,
    /// Measured time.
    pub duration: Duration,
    /// The keyspace built before (and the keys the SETs pick from).
    pub dataset: Dataset,
    /// fsync policy of the writer.
    pub policy: FsyncPolicy,
    /// `#TS:` annotations (both systems alike).
    pub timestamps: bool,
    /// Segments: roll size.
    pub segment_bytes: u64,
    /// Segments: snapshots kept.
    pub keep_snapshots: usize,
    /// Segments: byte budget of the segments older than the oldest kept snapshot's cut.
    pub keep_segment_bytes: u64,
    /// Segments: snapshot mode (the AOF rewrite is always converging).
    pub mode: Mode,
    /// Directory-size sampling period.
    pub sample_every: Duration,
}

impl RunConfig {
    /// A short name for tables: `segments`, `aof (every 30 s)`, ...
    pub fn label(&self) -> String {
        match (self.system, self.trigger) {
            (System::Segments, t) => format!("segments ({})", short(t)),
            (System::Aof, t) => format!("aof rewrite ({})", short(t)),
        }
    }
}

fn short(t: Trigger) -> String {
    match t {
        Trigger::Every(d) => format!("every {} s", d.as_secs_f64()),
        Trigger::Growth { percent, min_bytes } => {
            format!("growth {percent}%, min {} MiB", min_bytes >> 20)
        }
    }
}

/// One snapshot or rewrite during the measured time.
#[derive(Clone, Debug)]
pub struct PersistEvent {
    /// Start, seconds after the writers started.
    pub start_s: f64,
    /// Wall time.
    pub seconds: f64,
    /// Bytes of the file it wrote (snapshot, or new base with its deltas).
    pub bytes: u64,
    /// Files deleted by it (segments retention; for the AOF the old base and incr files).
    pub deleted: usize,
}

/// One directory-size sample.
#[derive(Clone, Copy, Debug)]
pub struct DiskSample {
    /// Seconds after the writers started.
    pub t_s: f64,
    /// Total bytes of the directory's files (apparent sizes).
    pub dir_bytes: u64,
    /// Bytes logged by the writer since the start.
    pub logged: u64,
}

/// `/proc/self/io` counters (bytes).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProcIo {
    /// `write_bytes`: bytes this process caused to be sent to storage (dirtied pages).
    pub write_bytes: u64,
    /// `cancelled_write_bytes`: dirty bytes dropped before write-back (truncate, delete).
    pub cancelled_write_bytes: u64,
}

impl ProcIo {
    /// The current counters (zeros when `/proc/self/io` is unreadable).
    pub fn read() -> ProcIo {
        let text = std::fs::read_to_string("/proc/self/io").unwrap_or_default();
        let get = |k: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(k))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0)
        };
        ProcIo {
            write_bytes: get("write_bytes:"),
            cancelled_write_bytes: get("cancelled_write_bytes:"),
        }
    }

    /// `self - earlier`.
    pub fn since(&self, earlier: &ProcIo) -> ProcIo {
        ProcIo {
            write_bytes: self.write_bytes.saturating_sub(earlier.write_bytes),
            cancelled_write_bytes: self
                .cancelled_write_bytes
                .saturating_sub(earlier.cancelled_write_bytes),
        }
    }
}

/// What [`measure`] recorded.
#[derive(Clone, Debug)]
pub struct Measured {
    /// Latency (execute + ack) and throughput of all writers over the measured time.
    pub summary: Summary,
    /// Per second: writes and p99.
    pub timeline: Vec<WindowPoint>,
    /// Bytes the writer wrote (logged), measured time only.
    pub logged: u64,
    /// Snapshots / rewrites.
    pub events: Vec<PersistEvent>,
    /// Directory size every `sample_every`, and once more at the end.
    pub samples: Vec<DiskSample>,
    /// `/proc/self/io` delta over the measured time (until the writer was flushed and the
    /// persistence thread had finished).
    pub io: ProcIo,
}

impl Measured {
    /// Bytes of the snapshots / bases written.
    pub fn persisted(&self) -> u64 {
        self.events.iter().map(|e| e.bytes).sum()
    }
    /// (logged + persisted) / logged.
    pub fn amplification(&self) -> f64 {
        (self.logged + self.persisted()) as f64 / (self.logged.max(1)) as f64
    }
    /// `/proc` write_bytes / logged.
    pub fn proc_amplification(&self) -> f64 {
        self.io.write_bytes as f64 / (self.logged.max(1)) as f64
    }
    /// (min, max, final) directory bytes.
    pub fn disk_min_max_final(&self) -> (u64, u64, u64) {
        let v = self.samples.iter().map(|s| s.dir_bytes);
        let min = v.clone().min().unwrap_or(0);
        let max = v.max().unwrap_or(0);
        (min, max, self.samples.last().map_or(0, |s| s.dir_bytes))
    }
}

/// Everything one configuration produced.
#[derive(Clone, Debug)]
pub struct RunResult {
    /// The configuration.
    pub cfg: RunConfig,
    /// Seconds to build the keyspace (not logged).
    pub build_seconds: f64,
    /// Seconds to persist it first (first snapshot / base), and its bytes.
    pub initial_seconds: f64,
    /// Bytes of that first snapshot / base.
    pub initial_bytes: u64,
    /// The measurement.
    pub m: Measured,
    /// The directory's files at the end: (name, bytes).
    pub files: Vec<(String, u64)>,
}

fn writer_options(cfg: &RunConfig) -> WriterOptions {
    WriterOptions {
        fsync: cfg.policy,
        timestamps: cfg.timestamps,
        ..WriterOptions::default()
    }
}

/// A live segments directory holding `cfg.dataset` (built, then a first snapshot).
pub struct LiveSegments {
    /// The directory.
    pub seg: SegmentDir,
    /// The keyspace (sink: `seg.writer()`).
    pub ks: Arc<Keyspace>,
    /// Its snapshot observer.
    pub obs: Arc<SnapshotObserver>,
}

/// (live directory, build seconds, first snapshot seconds, first snapshot bytes).
pub fn setup_segments(
    dir: &Path,
    cfg: &RunConfig,
) -> Result<(LiveSegments, f64, f64, u64), String> {
    let opts = SegmentOptions {
        segment_bytes: cfg.segment_bytes,
        keep_snapshots: cfg.keep_snapshots,
        keep_segment_bytes: cfg.keep_segment_bytes,
        writer: writer_options(cfg),
        ..SegmentOptions::default()
    };
    let (seg, mut ks, _) = SegmentDir::open(dir, &Config::seeded(7), opts)
        .map_err(|e| format!("opening {}: {e}", dir.display()))?;
    let t0 = Instant::now();
    build(&ks, cfg.dataset);
    let build_s = t0.elapsed().as_secs_f64();
    ks.set_sink(seg.writer());
    let obs = forkless_snapshot::install(&mut ks);
    let ks = Arc::new(ks);
    let t1 = Instant::now();
    let first = seg
        .snapshot(&ks, &obs, cfg.mode)
        .map_err(|e| format!("first snapshot: {e}"))?;
    let first_s = t1.elapsed().as_secs_f64();
    Ok((
        LiveSegments { seg, ks, obs },
        build_s,
        first_s,
        first.entry.len,
    ))
}

/// A live AOF directory holding `cfg.dataset` as its base.
pub struct LiveAofDir {
    /// The directory.
    pub aof: AofDir,
    /// The keyspace (sink: `aof.writer()`).
    pub ks: Arc<Keyspace>,
    /// Its snapshot observer.
    pub obs: Arc<SnapshotObserver>,
}

/// Size of the AOF directory's base file.
pub fn aof_base_bytes(aof: &AofDir) -> u64 {
    aof.manifest()
        .base
        .and_then(|b| std::fs::metadata(aof.path().join(b.name)).ok())
        .map_or(0, |m| m.len())
}

/// (live directory, build seconds, base seconds, base bytes).
pub fn setup_aof(dir: &Path, cfg: &RunConfig) -> Result<(LiveAofDir, f64, f64, u64), String> {
    let mut ks = Keyspace::new(Config::seeded(7));
    let t0 = Instant::now();
    build(&ks, cfg.dataset);
    let build_s = t0.elapsed().as_secs_f64();
    let t1 = Instant::now();
    let entries = ks.dump();
    let opts = AofDirOptions {
        writer: writer_options(cfg),
        ..AofDirOptions::default()
    };
    let aof = AofDir::create(dir, &entries, opts)
        .map_err(|e| format!("creating {}: {e}", dir.display()))?;
    drop(entries);
    let base_s = t1.elapsed().as_secs_f64();
    ks.set_sink(aof.writer());
    let obs = forkless_snapshot::install(&mut ks);
    let base = aof_base_bytes(&aof);
    Ok((
        LiveAofDir {
            aof,
            ks: Arc::new(ks),
            obs,
        },
        build_s,
        base_s,
        base,
    ))
}

/// One snapshot or rewrite: (bytes written, files deleted).
pub type PersistFn<'a> = dyn Fn() -> Result<(u64, usize), String> + Sync + 'a;

/// Run `writers` writer threads through `ks` (acknowledging on `writer`) for `duration` while
/// `persist` runs on `trigger` and `dir`'s size is sampled. After the writers stopped and the
/// writer was flushed, `at_stop` runs (before the persistence thread is waited for).
#[allow(clippy::too_many_arguments)]
pub fn measure(
    ks: &Arc<Keyspace>,
    writer: &Arc<AofWriter>,
    dir: &Path,
    cfg: &RunConfig,
    persist: &PersistFn<'_>,
    at_stop: &mut dyn FnMut(),
) -> Result<Measured, String> {
    let stop = AtomicBool::new(false);
    let persist_stop = AtomicBool::new(false);
    let events: Mutex<Vec<PersistEvent>> = Mutex::new(Vec::new());
    let samples: Mutex<Vec<DiskSample>> = Mutex::new(Vec::new());
    let failure: Mutex<Option<String>> = Mutex::new(None);
    let b0 = writer.metrics().bytes_written;
    let io0 = ProcIo::read();
    let t0 = Instant::now();
    let fail = |e: String| {
        failure.lock().get_or_insert(e);
    };
    let rec = thread::scope(|sc| -> Result<Recorder, String> {
        // Directory sampler.
        sc.spawn(|| {
            let mut next = Duration::ZERO;
            while !persist_stop.load(Ordering::Relaxed) {
                if t0.elapsed() >= next {
                    let logged = writer.metrics().bytes_written - b0;
                    samples.lock().push(DiskSample {
                        t_s: t0.elapsed().as_secs_f64(),
                        dir_bytes: dir_bytes(dir),
                        logged,
                    });
                    next += cfg.sample_every;
                }
                thread::sleep(Duration::from_millis(5));
            }
        });
        // Persistence on the trigger.
        let persister = sc.spawn(|| {
            let mut next_due = match cfg.trigger {
                Trigger::Every(k) => k,
                Trigger::Growth { .. } => Duration::ZERO,
            };
            let mut size_after = dir_bytes(dir);
            while !stop.load(Ordering::Relaxed) {
                let due = match cfg.trigger {
                    Trigger::Every(_) => t0.elapsed() >= next_due,
                    Trigger::Growth { percent, min_bytes } => {
                        let now = dir_bytes(dir);
                        now >= min_bytes && now * 100 >= size_after * (100 + percent)
                    }
                };
                if !due {
                    thread::sleep(Duration::from_millis(match cfg.trigger {
                        Trigger::Every(_) => 5,
                        Trigger::Growth { .. } => 50,
                    }));
                    continue;
                }
                let start = t0.elapsed();
                match persist() {
                    Ok((bytes, deleted)) => events.lock().push(PersistEvent {
                        start_s: start.as_secs_f64(),
                        seconds: (t0.elapsed() - start).as_secs_f64(),
                        bytes,
                        deleted,
                    }),
                    Err(e) => {
                        fail(e);
                        stop.store(true, Ordering::Relaxed);
                        return;
                    }
                }
                size_after = dir_bytes(dir);
                if let Trigger::Every(k) = cfg.trigger {
                    next_due += k;
                }
            }
        });
        // Writers.
        let hs: Vec<_> = (0..cfg.writers)
            .map(|t| {
                let (ks, w, stop) = (ks.clone(), writer.clone(), &stop);
                sc.spawn(move || -> Result<Recorder, String> {
                    let mut rec = Recorder::new(1, Duration::from_secs(1));
                    let mut gen = WriteGen::new(cfg.dataset, 1000 + t as u64);
                    let mut s = Session::default();
                    while !stop.load(Ordering::Relaxed) {
                        let w0 = gen.next_write();
                        let t1 = Instant::now();
                        ks.execute(&mut s, w0.argv());
                        w.ack_current_thread()
                            .map_err(|e| format!("writer ack: {e}"))?;
                        let ns = t1.elapsed().as_nanos() as u64;
                        rec.record(0, (t1 - t0).as_nanos() as u64, ns);
                    }
                    Ok(rec)
                })
            })
            .collect();
        while t0.elapsed() < cfg.duration && !stop.load(Ordering::Relaxed) {
            thread::sleep(Duration::from_millis(10));
        }
        stop.store(true, Ordering::Relaxed);
        let mut all = Recorder::new(1, Duration::from_secs(1));
        for h in hs {
            match h.join() {
                Ok(Ok(r)) => all.merge(&r),
                Ok(Err(e)) => fail(e),
                Err(_) => fail("writer thread panicked".into()),
            }
        }
        let wall = t0.elapsed();
        if let Err(e) = writer.flush_and_sync() {
            fail(format!("flushing the writer: {e}"));
        }
        at_stop();
        if persister.join().is_err() {
            fail("persistence thread panicked".into());
        }
        persist_stop.store(true, Ordering::Relaxed);
        // Keep the writers' wall time for the throughput.
        all.windows
            .truncate((wall.as_secs_f64().ceil() as usize).max(1));
        samples.lock().push(DiskSample {
            t_s: t0.elapsed().as_secs_f64(),
            dir_bytes: dir_bytes(dir),
            logged: writer.metrics().bytes_written - b0,
        });
        Ok(all)
    });
    let rec = rec?;
    if let Some(e) = failure.lock().take() {
        return Err(e);
    }
    let io = ProcIo::read().since(&io0);
    let wall = cfg.duration.min(t0.elapsed());
    let mut samples = samples.into_inner();
    samples.sort_by(|a, b| a.t_s.total_cmp(&b.t_s));
    Ok(Measured {
        summary: Summary::from_histogram(&rec.phases[0], wall),
        timeline: rec.timeline(),
        logged: writer.metrics().bytes_written - b0,
        events: events.into_inner(),
        samples,
        io,
    })
}

/// Persist one segments snapshot: (snapshot bytes, files deleted by retention).
fn segments_persist(live: &LiveSegments, mode: Mode) -> Result<(u64, usize), String> {
    let info = live
        .seg
        .snapshot(&live.ks, &live.obs, mode)
        .map_err(|e| format!("snapshot: {e}"))?;
    Ok((info.entry.len, info.deleted.len()))
}

/// Rewrite the AOF once: (new base bytes, files the switch removed).
fn aof_persist(live: &LiveAofDir) -> Result<(u64, usize), String> {
    let before = live.aof.manifest();
    rewrite(&live.aof, &live.ks, &live.obs).map_err(|e| format!("rewrite: {e}"))?;
    let after = live.aof.manifest();
    let names = |m: &forkless_aof::Manifest| -> Vec<String> {
        m.base
            .iter()
            .chain(m.incr.iter())
            .map(|f| f.name.clone())
            .collect()
    };
    let now = names(&after);
    let deleted = names(&before)
        .into_iter()
        .filter(|n| !now.contains(n))
        .count();
    Ok((aof_base_bytes(&live.aof), deleted))
}

/// Run one configuration on a fresh directory `dir`.
pub fn run(dir: &Path, cfg: &RunConfig) -> Result<RunResult, String> {
    match cfg.system {
        System::Segments => {
            let (live, build_s, init_s, init_b) = setup_segments(dir, cfg)?;
            let w = live.seg.writer();
            let persist = || segments_persist(&live, cfg.mode);
            let m = measure(&live.ks, &w, dir, cfg, &persist, &mut || {})?;
            live.seg.close().map_err(|e| format!("close: {e}"))?;
            Ok(RunResult {
                cfg: cfg.clone(),
                build_seconds: build_s,
                initial_seconds: init_s,
                initial_bytes: init_b,
                m,
                files: dir_files(dir),
            })
        }
        System::Aof => {
            let (live, build_s, init_s, init_b) = setup_aof(dir, cfg)?;
            let w = live.aof.writer();
            let persist = || aof_persist(&live);
            let m = measure(&live.ks, &w, dir, cfg, &persist, &mut || {})?;
            let files = dir_files(dir);
            drop(live.ks);
            live.aof.close().map_err(|e| format!("close: {e}"))?;
            Ok(RunResult {
                cfg: cfg.clone(),
                build_seconds: build_s,
                initial_seconds: init_s,
                initial_bytes: init_b,
                m,
                files,
            })
        }
    }
}

/// What one recovery measurement found.
#[derive(Clone, Debug)]
pub struct RecoveryResult {
    /// Snapshot interval.
    pub interval_s: f64,
    /// Where the writers were stopped (seconds after they started).
    pub stopped_s: f64,
    /// Writers' throughput until then.
    pub ops_per_s: f64,
    /// Snapshots completed before the stop (the first one at t = 0 not counted).
    pub snapshots: usize,
    /// The start point recovery used (`snapshot.<n>.rdb` or the empty keyspace).
    pub start: String,
    /// Seconds between that snapshot's cut and the stop (about: a converging snapshot's cut
    /// is taken as its end).
    pub cut_age_s: f64,
    /// Bytes of that snapshot file.
    pub snapshot_bytes: u64,
    /// Log bytes replayed (from the cut offset to the end).
    pub log_bytes: u64,
    /// Segments replayed.
    pub segments: usize,
    /// Commands replayed (snapshot deltas + log).
    pub commands: u64,
    /// Wall time of `forkless_segments::recover`.
    pub recover_seconds: f64,
    /// Wall time of loading the snapshot alone (`recover::load_snapshot` into a fresh
    /// keyspace), measured after.
    pub snapshot_load_seconds: f64,
    /// Keys recovered / keys live at the stop.
    pub keys: (u64, u64),
}

fn keys_of(ks: &Keyspace) -> u64 {
    (0..ks.databases()).map(|d| ks.dbsize(d) as u64).sum()
}

/// A segments run (`cfg.system` ignored) with a snapshot every `cfg.trigger` stopped after
/// `cfg.duration`, then recovery of the directory as it was at the stop.
pub fn run_recovery(dir: &Path, cfg: &RunConfig) -> Result<RecoveryResult, String> {
    let interval_s = match cfg.trigger {
        Trigger::Every(k) => k.as_secs_f64(),
        Trigger::Growth { .. } => 0.0,
    };
    let (live, _, _, _) = setup_segments(dir, cfg)?;
    let w = live.seg.writer();
    let persist = || segments_persist(&live, cfg.mode);
    let mut at_stop: Option<(SegManifest, u64)> = None;
    let m = measure(&live.ks, &w, dir, cfg, &persist, &mut || {
        at_stop = Some((live.seg.manifest(), keys_of(&live.ks)));
    })?;
    let (manifest, live_keys) = at_stop.ok_or("no manifest at the stop")?;
    live.seg.close().map_err(|e| format!("close: {e}"))?;
    drop(live);
    let stopped_s = cfg.duration.as_secs_f64();
    let snapshots = m
        .events
        .iter()
        .filter(|e| e.start_s + e.seconds <= stopped_s)
        .count();
    let config = Config::seeded(9);
    let t0 = Instant::now();
    let (ks, rep) = recover(dir, &manifest, &config, RecoverOptions::default())
        .map_err(|e| format!("recover: {e}"))?;
    let recover_seconds = t0.elapsed().as_secs_f64();
    let keys = keys_of(&ks);
    drop(ks);
    let cut = rep.start.cut();
    let seg_len = |s: forkless_aof::FileSeq| {
        std::fs::metadata(dir.join(format!("segment.{s}.aof"))).map_or(0, |md| md.len())
    };
    let log_bytes: u64 = rep
        .segments
        .iter()
        .map(|&s| {
            let len = seg_len(s);
            if s == cut.seq {
                len.saturating_sub(cut.offset)
            } else {
                len
            }
        })
        .sum();
    let (start, snapshot_bytes, snapshot_load_seconds, cut_age_s) = match &rep.start {
        StartPoint::Snapshot(s) => {
            let ks2 = Keyspace::new(Config::seeded(9));
            let t1 = Instant::now();
            load_snapshot(
                dir,
                s,
                &mut KeyspaceTarget::new(&ks2),
                &mut LoadReport::default(),
            )
            .map_err(|e| format!("loading {}: {e}", s.name()))?;
            let secs = t1.elapsed().as_secs_f64();
            // Snapshot n >= 2 is event n - 2 (snapshot 1 was taken before the writers
            // started); its cut is at its end barrier (converging) or start (point-in-time).
            let cut_s = usize::try_from(s.seq)
                .ok()
                .and_then(|n| n.checked_sub(2))
                .and_then(|i| m.events.get(i))
                .map_or(0.0, |e| match cfg.mode {
                    Mode::Converging => e.start_s + e.seconds,
                    Mode::PointInTime => e.start_s,
                });
            (s.name(), s.len, secs, (stopped_s - cut_s).max(0.0))
        }
        StartPoint::Empty => ("empty keyspace".to_string(), 0, 0.0, 0.0),
    };
    Ok(RecoveryResult {
        interval_s,
        stopped_s,
        ops_per_s: m.summary.ops_per_s,
        snapshots,
        start,
        cut_age_s,
        snapshot_bytes,
        log_bytes,
        segments: rep.segments.len(),
        commands: rep.commands,
        recover_seconds,
        snapshot_load_seconds,
        keys: (keys, live_keys),
    })
}

/// Draw the disk-use and throughput lines of `runs` into an SVG file at `path`.
pub fn draw_chart(runs: &[RunResult], path: &Path) -> Result<(), String> {
    use plotters::prelude::*;
    let err = |e: &dyn std::fmt::Debug| format!("drawing {}: {e:?}", path.display());
    let root = SVGBackend::new(path, (1000, 640)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let areas = root.split_evenly((2, 1));
    let colors = [
        RGBColor(40, 110, 200),
        RGBColor(220, 90, 40),
        RGBColor(60, 160, 80),
        RGBColor(150, 90, 200),
    ];
    let t_max = runs
        .iter()
        .flat_map(|r| r.m.samples.last().map(|s| s.t_s))
        .fold(1.0, f64::max);
    let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
    let y_max = runs
        .iter()
        .flat_map(|r| r.m.samples.iter().map(|s| mib(s.dir_bytes)))
        .fold(1.0, f64::max)
        * 1.1;
    let mut c = ChartBuilder::on(&areas[0])
        .caption(
            "directory size (files, apparent bytes), sampled every second",
            ("sans-serif", 18),
        )
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..t_max, 0f64..y_max)
        .map_err(|e| err(&e))?;
    c.configure_mesh()
        .x_desc("seconds since the writers started")
        .y_desc("MiB on disk")
        .draw()
        .map_err(|e| err(&e))?;
    for (i, r) in runs.iter().enumerate() {
        let col = colors[i % colors.len()];
        c.draw_series(LineSeries::new(
            r.m.samples.iter().map(|s| (s.t_s, mib(s.dir_bytes))),
            col.stroke_width(2),
        ))
        .map_err(|e| err(&e))?
        .label(r.cfg.label())
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 15, y)], col.stroke_width(2)));
    }
    c.configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperLeft)
        .draw()
        .map_err(|e| err(&e))?;
    let k_max = runs
        .iter()
        .flat_map(|r| r.m.timeline.iter().map(|w| w.ops as f64 / 1000.0))
        .fold(1.0, f64::max)
        * 1.1;
    let mut c = ChartBuilder::on(&areas[1])
        .caption("writes per second (all writer threads)", ("sans-serif", 18))
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..t_max, 0f64..k_max)
        .map_err(|e| err(&e))?;
    c.configure_mesh()
        .x_desc("seconds since the writers started")
        .y_desc("thousand writes / s")
        .draw()
        .map_err(|e| err(&e))?;
    for (i, r) in runs.iter().enumerate() {
        let col = colors[i % colors.len()];
        c.draw_series(LineSeries::new(
            r.m.timeline
                .iter()
                .map(|w| (w.t_s + 0.5, w.ops as f64 / 1000.0)),
            col.stroke_width(1),
        ))
        .map_err(|e| err(&e))?
        .label(r.cfg.label())
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 15, y)], col.stroke_width(2)));
    }
    c.configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::LowerLeft)
        .draw()
        .map_err(|e| err(&e))?;
    root.present().map_err(|e| err(&e))?;
    Ok(())
}

/// A scratch path for one configuration under `parent`.
pub fn run_dir(parent: &Path, name: &str) -> PathBuf {
    parent.join(
        name.chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect::<String>(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_io_parses_and_subtracts() {
        let a = ProcIo {
            write_bytes: 10,
            cancelled_write_bytes: 3,
        };
        let b = ProcIo {
            write_bytes: 25,
            cancelled_write_bytes: 2,
        };
        assert_eq!(
            b.since(&a),
            ProcIo {
                write_bytes: 15,
                cancelled_write_bytes: 0
            }
        );
        // Readable on Linux; zeros elsewhere.
        let _ = ProcIo::read();
        assert_eq!(
            run_dir(Path::new("/x"), "aof (every 5 s)"),
            Path::new("/x/aof--every-5-s-")
        );
    }

    /// Both systems on a tiny dataset for a fraction of a second: the figures are consistent
    /// (no timing assertions).
    #[test]
    fn tiny_runs_and_recovery() {
        let parent = crate::aof_bench::ScratchDir::temp("forkless-segbench-test", false).unwrap();
        let cfg = |system, trigger| RunConfig {
            system,
            trigger,
            writers: 2,
            duration: Duration::from_millis(600),
            dataset: Dataset {
                keys: 2_000,
                value_size: 100,
                mixed: false,
            },
            policy: FsyncPolicy::EverySec,
            timestamps: true,
            segment_bytes: 64 << 10,
            keep_snapshots: 2,
            keep_segment_bytes: 256 << 10,
            mode: Mode::Converging,
            sample_every: Duration::from_millis(100),
        };
        for (i, c) in [
            cfg(System::Segments, Trigger::Every(Duration::from_millis(150))),
            cfg(System::Aof, Trigger::Every(Duration::from_millis(150))),
            cfg(
                System::Aof,
                Trigger::Growth {
                    percent: 100,
                    min_bytes: 64 << 10,
                },
            ),
        ]
        .iter()
        .enumerate()
        {
            let d = parent.path().join(format!("run{i}"));
            let r = run(&d, c).unwrap();
            assert!(r.m.summary.ops > 0);
            assert!(r.m.logged > 0);
            assert!(r.initial_bytes > 0);
            assert!(r.m.amplification() >= 1.0);
            assert!(!r.m.samples.is_empty());
            let (min, max, fin) = r.m.disk_min_max_final();
            assert!(min <= fin && fin <= max && max > 0);
        }
        let mut c = cfg(System::Segments, Trigger::Every(Duration::from_millis(200)));
        c.duration = Duration::from_millis(500);
        let r = run_recovery(&parent.path().join("rec"), &c).unwrap();
        assert_eq!(r.keys.0, r.keys.1);
        assert!(r.log_bytes > 0 || r.commands > 0);
    }
}
