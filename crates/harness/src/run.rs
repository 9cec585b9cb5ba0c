//! The forkless measurement run: build a dataset, run writer threads at full speed, measure an
//! idle phase, then one phase per snapshot (converging, point-in-time), then optionally a
//! verification pass per mode (writers on a known, throttled pattern, the propagated commands
//! recorded, the snapshot replayed and compared with the state at its cut).
//!
//! Every write's latency goes to the writer's own [`Recorder`] (no shared state on the hot
//! path); the controller only flips the phase index.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use forkless_keyspace::{Config, Keyspace, Session};
use forkless_snapshot::{
    start_snapshot, Barrier, Mode, SnapshotObserver, SnapshotOptions, SnapshotResult,
};
use forkless_sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use forkless_sync::{thread, Arc};

use crate::hist::{Recorder, Summary, WindowPoint};
use crate::rss::{rss_now, rss_peak, RssSampler};
use crate::stall;
use crate::verify::{self, GatedSink};
use crate::workload::{Dataset, WriteGen};

/// What to run.
#[derive(Clone, Debug)]
pub struct RunConfig {
    /// The dataset.
    pub dataset: Dataset,
    /// Writer threads.
    pub writers: usize,
    /// Length of the idle phase.
    pub idle: Duration,
    /// Snapshots to take, in order.
    pub modes: Vec<Mode>,
    /// Where snapshot files go.
    pub out_dir: PathBuf,
    /// Run the verification pass (one verified snapshot per mode).
    pub verify: bool,
    /// Time-series window.
    pub window: Duration,
    /// Name the cause of every write >= 1 ms (`crate::stall`; adds two system calls per write).
    pub attribute: bool,
    /// With `attribute`: also name the cause of every write of at least this many
    /// microseconds (0: none), the tail that p99.9 measures.
    pub tail_us: u64,
    /// `SnapshotOptions::serialize_threads` of the measured snapshots (0: the default).
    pub snapshot_threads: usize,
    /// `SnapshotOptions::batch_buckets` of the measured snapshots (0: the default).
    pub batch_buckets: usize,
}

/// Progress events, for progress bars or log lines.
#[derive(Clone, Debug)]
pub enum Event {
    /// Dataset build: keys done of total.
    Build {
        /// Keys built so far.
        done: u64,
        /// Keys to build.
        total: u64,
    },
    /// A phase started.
    Phase(String),
    /// Snapshot progress: buckets done of total.
    Snapshot {
        /// The snapshot's mode.
        mode: Mode,
        /// Buckets visited so far.
        done: u64,
        /// Buckets to visit.
        total: u64,
    },
    /// A snapshot finished.
    SnapshotDone(Mode),
    /// Verifying a snapshot.
    Verify(Mode),
}

/// One measured phase.
#[derive(Clone, Debug)]
pub struct Phase {
    /// "idle", "converging", "point-in-time".
    pub name: String,
    /// Start, seconds since the writers started.
    pub start_s: f64,
    /// End, seconds since the writers started.
    pub end_s: f64,
    /// Latency and throughput.
    pub summary: Summary,
    /// The writes >= 1 ms by cause (None unless the run was attributed).
    pub causes: Option<crate::stall::Causes>,
    /// The writes at or above [`RunConfig::tail_us`] by cause (None unless attributed with a
    /// threshold).
    pub tail: Option<crate::stall::Causes>,
    /// Every write's attributed time, summed over the phase (None unless attributed).
    pub times: Option<forkless_keyspace::trace::WriteTimes>,
}

/// One measured snapshot.
#[derive(Clone, Debug)]
pub struct SnapshotRun {
    /// What the snapshot reported.
    pub result: SnapshotResult,
    /// Largest RSS sampled during the snapshot minus the RSS just before it, bytes.
    pub rss_extra_bytes: u64,
    /// Largest RSS sampled during the snapshot, bytes.
    pub rss_peak_bytes: u64,
    /// The file written.
    pub path: PathBuf,
    /// Verification outcome (None when not verified).
    pub verified: Option<Result<String, String>>,
}

/// Everything a run measured.
#[derive(Clone, Debug)]
pub struct RunReport {
    /// Keys after the build.
    pub keys: u64,
    /// RSS growth while building the dataset, bytes (the dataset's memory).
    pub dataset_bytes: u64,
    /// Time to build the dataset.
    pub build_seconds: f64,
    /// Measured phases: idle first, then one per snapshot.
    pub phases: Vec<Phase>,
    /// One per mode, in order.
    pub snapshots: Vec<SnapshotRun>,
    /// p99 per window over the measured part (seconds since the writers started).
    pub timeline: Vec<WindowPoint>,
    /// RSS samples (seconds since the writers started, bytes).
    pub rss: Vec<(f64, u64)>,
    /// VmHWM at the end, bytes.
    pub rss_hwm_bytes: u64,
    /// Wall time of each step, in order: `build`, `idle`, one per snapshot phase (with the
    /// unmeasured gap before it), then per verified mode `verify <mode>: <step>`.
    pub timings: Vec<(String, f64)>,
}

/// The name of a mode in reports.
pub fn mode_name(m: Mode) -> &'static str {
    match m {
        Mode::Converging => "converging",
        Mode::PointInTime => "point-in-time",
    }
}

/// Phase index meaning "not measured".
const NO_PHASE: usize = usize::MAX;

struct Writers {
    stop: Arc<AtomicBool>,
    threads: Vec<thread::JoinHandle<Recorder>>,
}

/// Start `n` writers on `ks`. `phase` selects the histogram; `throttle` (ops per second per
/// writer, 0 = full speed) limits the rate.
#[allow(clippy::too_many_arguments)]
fn start_writers(
    ks: &Arc<Keyspace>,
    dataset: Dataset,
    n: usize,
    phases: usize,
    phase: &Arc<AtomicUsize>,
    origin: Instant,
    window: Duration,
    throttle: u64,
    seed: u64,
    attribute: bool,
    tail_ns: u64,
) -> Writers {
    let stop = Arc::new(AtomicBool::new(false));
    let threads = (0..n)
        .map(|w| {
            let (ks, stop, phase) = (ks.clone(), stop.clone(), phase.clone());
            thread::spawn(move || {
                let mut rec = Recorder::new(phases, window);
                let mut gen = WriteGen::new(dataset, seed * 1000 + w as u64);
                let mut session = Session::default();
                let started = Instant::now();
                let mut done: u64 = 0;
                while !stop.load(Ordering::Relaxed) {
                    let p = phase.load(Ordering::Relaxed);
                    let w = gen.next_write();
                    let cpu0 = if attribute {
                        forkless_keyspace::trace::take();
                        stall::thread_cpu_ns()
                    } else {
                        0
                    };
                    let t0 = Instant::now();
                    let r = ks.execute(&mut session, w.argv());
                    let t1 = Instant::now();
                    debug_assert!(!r.is_error(), "{r:?}");
                    let at = t0.saturating_duration_since(origin).as_nanos() as u64;
                    let ns = (t1 - t0).as_nanos() as u64;
                    rec.record(p, at, ns);
                    if attribute {
                        let times = forkless_keyspace::trace::take();
                        rec.record_times(p, &times);
                        let tail = tail_ns > 0 && ns >= tail_ns;
                        if ns >= crate::hist::STALL_NS || tail {
                            let cpu = stall::thread_cpu_ns().saturating_sub(cpu0);
                            let cause = stall::classify(ns, cpu, &times);
                            if ns >= crate::hist::STALL_NS {
                                rec.record_stall(p, cause);
                            }
                            if tail {
                                rec.record_tail(p, cause);
                            }
                        }
                    }
                    done += 1;
                    if throttle > 0 {
                        let due = Duration::from_secs_f64(done as f64 / throttle as f64);
                        let el = started.elapsed();
                        if due > el {
                            thread::sleep(due - el);
                        }
                    }
                }
                rec
            })
        })
        .collect();
    Writers { stop, threads }
}

impl Writers {
    fn finish(self) -> Recorder {
        self.stop.store(true, Ordering::Relaxed);
        let mut all: Option<Recorder> = None;
        for t in self.threads {
            let r = t.join().expect("writer thread panicked");
            match &mut all {
                None => all = Some(r),
                Some(a) => a.merge(&r),
            }
        }
        all.expect("at least one writer")
    }
}

/// Build the keyspace (with the snapshot observer and a gated sink installed) and load the
/// dataset on up to 2 threads.
pub fn build(
    dataset: Dataset,
    on_event: &(dyn Fn(Event) + Sync),
) -> (Arc<Keyspace>, Arc<SnapshotObserver>, Arc<GatedSink>) {
    let mut ks = Keyspace::new(Config::seeded(42));
    let sink = Arc::new(GatedSink::new());
    ks.set_sink(sink.clone());
    let obs = forkless_snapshot::install(&mut ks);
    let ks = Arc::new(ks);
    let done = AtomicU64::new(0);
    let threads = 2u64;
    thread::scope(|s| {
        for t in 0..threads {
            let (ks, done) = (&ks, &done);
            s.spawn(move || {
                let mut session = Session::default();
                let mut i = t;
                let mut local = 0u64;
                while i < dataset.keys {
                    let argv = dataset.command(i);
                    let refs: Vec<&[u8]> = argv.iter().map(|a| a.as_slice()).collect();
                    ks.execute(&mut session, &refs);
                    i += threads;
                    local += 1;
                    if local.is_multiple_of(16384) {
                        let d = done.fetch_add(16384, Ordering::Relaxed) + 16384;
                        if t == 0 {
                            on_event(Event::Build {
                                done: d,
                                total: dataset.keys,
                            });
                        }
                    }
                }
            });
        }
    });
    on_event(Event::Build {
        done: dataset.keys,
        total: dataset.keys,
    });
    (ks, obs, sink)
}

fn snapshot_path(cfg: &RunConfig, mode: Mode, tag: &str) -> PathBuf {
    cfg.out_dir.join(format!("{}-{tag}.rdb", mode_name(mode)))
}

/// What a run leaves behind: the keyspace, and after a verification its expected state and
/// last replay. Freeing a million-key keyspace takes a second or more (millions of small
/// allocations); dropping this frees them, and a process that exits right after the run may
/// skip that with `std::mem::forget` (the OS takes the memory back at once).
pub struct Leftovers {
    parts: Vec<Box<dyn std::any::Any + Send>>,
}

impl Leftovers {
    /// Free everything on a background thread (join it before measuring anything else).
    pub fn drop_in_background(self) -> thread::JoinHandle<()> {
        thread::spawn(move || drop(self))
    }
}

impl std::fmt::Debug for Leftovers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Leftovers({} parts)", self.parts.len())
    }
}

/// Run the whole measurement. Progress goes to `on_event`. Everything is freed before it
/// returns (see [`run_keep`]).
pub fn run(cfg: &RunConfig, on_event: &(dyn Fn(Event) + Sync)) -> Result<RunReport, String> {
    run_keep(cfg, on_event).map(|(report, leftovers)| {
        drop(leftovers);
        report
    })
}

/// [`run`], returning the keyspaces instead of freeing them.
pub fn run_keep(
    cfg: &RunConfig,
    on_event: &(dyn Fn(Event) + Sync),
) -> Result<(RunReport, Leftovers), String> {
    std::fs::create_dir_all(&cfg.out_dir)
        .map_err(|e| format!("creating {}: {e}", cfg.out_dir.display()))?;
    let rss0 = rss_now();
    let t_build = Instant::now();
    let (ks, obs, sink) = build(cfg.dataset, on_event);
    let build_seconds = t_build.elapsed().as_secs_f64();
    let keys = ks.dbsize(0) as u64;
    let dataset_bytes = rss_now().saturating_sub(rss0);
    let mut timings = vec![("build".to_string(), build_seconds)];

    let origin = Instant::now();
    let sampler = RssSampler::start(origin, Duration::from_millis(20));
    let phase = Arc::new(AtomicUsize::new(0));
    let n_phases = 1 + cfg.modes.len();
    let writers = start_writers(
        &ks,
        cfg.dataset,
        cfg.writers.max(1),
        n_phases,
        &phase,
        origin,
        cfg.window,
        0,
        1,
        cfg.attribute,
        cfg.tail_us.saturating_mul(1000),
    );
    if cfg.attribute {
        forkless_keyspace::trace::enable(true);
    }
    on_event(Event::Phase("idle".into()));
    let mut bounds = vec![(0.0, 0.0); n_phases];
    let idle_start = origin.elapsed().as_secs_f64();
    thread::sleep(cfg.idle);
    bounds[0] = (idle_start, origin.elapsed().as_secs_f64());
    let mut snapshots = Vec::new();
    let mut failure = None;
    timings.push(("idle".into(), origin.elapsed().as_secs_f64() - idle_start));
    for (i, &mode) in cfg.modes.iter().enumerate() {
        let t_phase = Instant::now();
        // A short unmeasured gap lets the previous snapshot's after-effects settle.
        phase.store(NO_PHASE, Ordering::Relaxed);
        thread::sleep(Duration::from_millis(200));
        on_event(Event::Phase(mode_name(mode).into()));
        let path = snapshot_path(cfg, mode, "load");
        let before = rss_now();
        let start = origin.elapsed().as_secs_f64();
        phase.store(i + 1, Ordering::Relaxed);
        let mut opts = SnapshotOptions {
            mode,
            ..Default::default()
        };
        if cfg.batch_buckets > 0 {
            opts.batch_buckets = cfg.batch_buckets;
        }
        if cfg.snapshot_threads > 0 {
            opts.serialize_threads = cfg.snapshot_threads;
        }
        let h = match start_snapshot(ks.clone(), &obs, &path, opts) {
            Ok(h) => h,
            Err(e) => {
                failure = Some(format!("starting the {} snapshot: {e}", mode_name(mode)));
                break;
            }
        };
        while !h.is_finished() {
            let p = h.progress();
            on_event(Event::Snapshot {
                mode,
                done: p.buckets_done.load(Ordering::Relaxed),
                total: p.buckets_total.load(Ordering::Relaxed),
            });
            thread::sleep(Duration::from_millis(5));
        }
        let res = h.wait();
        let end = origin.elapsed().as_secs_f64();
        phase.store(NO_PHASE, Ordering::Relaxed);
        bounds[i + 1] = (start, end);
        timings.push((mode_name(mode).into(), t_phase.elapsed().as_secs_f64()));
        on_event(Event::SnapshotDone(mode));
        match res {
            Ok(result) => {
                let peak = sampler.peak_between(start, end).max(before);
                snapshots.push(SnapshotRun {
                    result,
                    rss_extra_bytes: peak - before,
                    rss_peak_bytes: peak,
                    path,
                    verified: None,
                });
            }
            Err(e) => {
                failure = Some(format!("{} snapshot: {e}", mode_name(mode)));
                break;
            }
        }
    }
    let rec = writers.finish();
    forkless_keyspace::trace::enable(false);
    if let Some(f) = failure {
        return Err(f);
    }
    let phases: Vec<Phase> = std::iter::once("idle")
        .chain(cfg.modes.iter().map(|&m| mode_name(m)))
        .enumerate()
        .map(|(i, name)| Phase {
            name: name.to_string(),
            start_s: bounds[i].0,
            end_s: bounds[i].1,
            summary: Summary::from_histogram(
                &rec.phases[i],
                Duration::from_secs_f64((bounds[i].1 - bounds[i].0).max(0.0)),
            ),
            causes: cfg.attribute.then(|| rec.causes[i]),
            tail: (cfg.attribute && cfg.tail_us > 0).then(|| rec.tail[i]),
            times: cfg.attribute.then(|| rec.times[i]),
        })
        .collect();
    let timeline = rec.timeline();
    drop(rec);

    let mut leftovers = Leftovers { parts: Vec::new() };
    if cfg.verify {
        let t = Instant::now();
        // The writers are stopped: this is the base of the first verification.
        let mut base = Some(verify::Expected::capture(&ks));
        timings.push(("verify: base".into(), t.elapsed().as_secs_f64()));
        // The previous replay is freed while the next verification snapshot runs.
        let mut freeing: Option<Keyspace> = None;
        for (i, &mode) in cfg.modes.iter().enumerate() {
            on_event(Event::Verify(mode));
            let (outcome, replayed) = match &mut base {
                Some(b) => verify_one(cfg, &ks, &obs, &sink, b, mode, &mut freeing, &mut timings),
                None => (
                    Err("not run: the expected state is unknown after an earlier error".into()),
                    None,
                ),
            };
            if outcome.as_ref().is_err_and(|e| e.starts_with(BASE_LOST)) {
                base = None;
            }
            snapshots[i].verified = Some(outcome);
            if let Some(r) = replayed {
                if i + 1 < cfg.modes.len() {
                    freeing = Some(r);
                } else {
                    leftovers.parts.push(Box::new(r));
                }
            }
        }
        drop(freeing);
        if let Some(b) = base {
            leftovers.parts.push(Box::new(b));
        }
    }
    leftovers.parts.push(Box::new((ks, obs, sink)));
    let rss = sampler.finish();
    let report = RunReport {
        keys,
        dataset_bytes,
        build_seconds,
        phases,
        snapshots,
        timeline,
        rss,
        rss_hwm_bytes: rss_peak(),
        timings,
    };
    Ok((report, leftovers))
}

/// Prefix of a verification error after which the expected state no longer follows the live
/// keyspace (the following modes cannot be verified).
const BASE_LOST: &str = "expected state lost: ";

/// One verified snapshot under a throttled write load: the state at the cut (`base`, the live
/// state now, moved forward by the commands recorded up to the barrier) must equal the
/// replayed file. On return `base` is again the live state (the rest of the log applied), the
/// base of the next verification.
#[allow(clippy::too_many_arguments)]
fn verify_one(
    cfg: &RunConfig,
    ks: &Arc<Keyspace>,
    obs: &Arc<SnapshotObserver>,
    sink: &Arc<GatedSink>,
    base: &mut verify::Expected,
    mode: Mode,
    freeing: &mut Option<Keyspace>,
    timings: &mut Vec<(String, f64)>,
) -> (Result<String, String>, Option<Keyspace>) {
    let mut step = Instant::now();
    let mut lap = |name: &str, timings: &mut Vec<(String, f64)>| {
        timings.push((
            format!("verify {}: {name}", mode_name(mode)),
            step.elapsed().as_secs_f64(),
        ));
        step = Instant::now();
    };
    sink.take();
    sink.set_enabled(true);
    let cut = Arc::new(AtomicUsize::new(usize::MAX));
    let (c2, s2) = (cut.clone(), sink.clone());
    let opts = SnapshotOptions {
        mode,
        on_barrier: Some(std::sync::Arc::new(move |b| {
            let wanted = match mode {
                Mode::PointInTime => Barrier::Start,
                Mode::Converging => Barrier::End,
            };
            if b == wanted {
                c2.store(s2.len(), Ordering::SeqCst);
            }
        })),
        ..Default::default()
    };
    let phase = Arc::new(AtomicUsize::new(NO_PHASE));
    // Throttled so the command log stays small (about 50k writes/s in all).
    let per_writer = 50_000 / cfg.writers.max(1) as u64;
    let writers = start_writers(
        ks,
        cfg.dataset,
        cfg.writers.max(1),
        0,
        &phase,
        Instant::now(),
        Duration::from_secs(3600),
        per_writer,
        2,
        false,
        0,
    );
    thread::sleep(Duration::from_millis(50));
    let path = snapshot_path(cfg, mode, "verify");
    let res = start_snapshot(ks.clone(), obs, &path, opts).and_then(|h| {
        // Free the previous replay here, on this thread, while the worker walks: the next
        // replay then reuses its memory (freed on another thread, glibc's per-thread arenas
        // kept it apart: +600 MiB of peak RSS).
        drop(freeing.take());
        h.wait()
    });
    drop(freeing.take());
    thread::sleep(Duration::from_millis(50));
    writers.finish();
    sink.set_enabled(false);
    let log = sink.take();
    lap("snapshot under writes", timings);

    let n = cut.load(Ordering::SeqCst).min(log.len());
    let res = match res {
        Ok(r) if cut.load(Ordering::SeqCst) != usize::MAX => Ok(r),
        Ok(_) => Err("the barrier hook was not called".to_string()),
        Err(e) => Err(format!("verification snapshot: {e}")),
    };
    // Move the base to the cut, check, then to the live state (the writers are stopped), so it
    // is the base of the next verification whatever the outcome.
    let mut applied = 0;
    let mut replayed = None;
    let outcome = res.and_then(|res| {
        applied = n;
        base.advance(&log[..n])
            .map_err(|e| format!("{BASE_LOST}{e}"))?;
        let bytes =
            std::fs::read(&path).map_err(|e| format!("reading {}: {e}", path.display()))?;
        let got = verify::fresh();
        let loaded = verify::replay_into(&bytes, &got);
        drop(bytes);
        lap("replay", timings);
        loaded?;
        let keys = verify::compare_keyspaces(base.keyspace(), &got);
        lap("compare", timings);
        replayed = Some(got);
        Ok(format!(
            "OK: {} keys equal the state at the cut ({} writes during the snapshot, {} of them before the cut, {} delta commands)",
            keys?,
            log.len(),
            n,
            res.delta_commands
        ))
    });
    let rest = base
        .advance(&log[applied..])
        .map_err(|e| format!("{BASE_LOST}{e}"));
    let outcome = match (outcome, rest) {
        (Err(e), _) => Err(e),
        (Ok(_), Err(e)) => Err(e),
        (Ok(m), Ok(())) => Ok(m),
    };
    (outcome, replayed)
}
