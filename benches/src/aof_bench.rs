//! AOF measurements (benches/README.md "AOF"), shared by the harness (`src/bin/aof_harness.rs`)
//! and the criterion bench (`benches/aof.rs`).
//!
//! * [`run_append`]: W writer threads execute random writes ([`WriteGen`]: SET / INCR / HSET)
//!   through a keyspace whose propagation sink is the AOF writer of a real directory on disk,
//!   the way `forkless run --aof-dir` does (`ks.set_sink(aof.writer())`, `execute`, then
//!   `writer.ack_current_thread()`): every operation's latency, execute + acknowledgement, in an
//!   HDR histogram; fsyncs from `AofMetrics` (group commit: writes per fsync under `always`).
//! * [`populate`] + [`run_rewrite`]: a directory holding N keys (all logged through the writer,
//!   so its incr file holds N commands), then the forkless [`rewrite`] of it, optionally while
//!   writer threads keep going.
//! * [`forkless_load`] / [`redis_load`]: the same directory loaded by `load_dir` into a fresh
//!   keyspace, and by redis-server 7.0 at start-up (its log line "DB loaded from append only
//!   file: X seconds", plus per-file lines).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use forkless_aof::{
    load_dir, rewrite, AofDir, AofDirOptions, FsyncPolicy, KeyspaceTarget, LoadOptions,
    WriterOptions,
};
use forkless_keyspace::{Config, Keyspace, Session};
use forkless_snapshot::SnapshotObserver;
use forkless_sync::atomic::{AtomicBool, Ordering};
use forkless_sync::{thread, Arc};
use hdrhistogram::Histogram;

use forkless_harness::hist::{phase_histogram, Summary};
use forkless_harness::redis::Reply;
use forkless_harness::workload::{Dataset, WriteGen};
use forkless_redis_proc::{Launch, LaunchError};

/// `appendfsync` name of a policy.
pub fn policy_name(p: FsyncPolicy) -> &'static str {
    match p {
        FsyncPolicy::Always => "always",
        FsyncPolicy::EverySec => "everysec",
        FsyncPolicy::No => "no",
    }
}

/// The policy named `s` (`always`, `everysec`, `no`).
pub fn parse_policy(s: &str) -> Option<FsyncPolicy> {
    match s {
        "always" => Some(FsyncPolicy::Always),
        "everysec" => Some(FsyncPolicy::EverySec),
        "no" => Some(FsyncPolicy::No),
        _ => None,
    }
}

/// A directory removed on drop (unless kept).
#[derive(Debug)]
pub struct ScratchDir {
    path: PathBuf,
    keep: bool,
}

impl ScratchDir {
    /// Create `path` (and its parents); it is removed on drop unless `keep`.
    pub fn new(path: PathBuf, keep: bool) -> Result<ScratchDir, String> {
        std::fs::create_dir_all(&path).map_err(|e| format!("creating {}: {e}", path.display()))?;
        Ok(ScratchDir { path, keep })
    }

    /// A fresh directory under the system temp dir (a real disk here, not tmpfs).
    pub fn temp(prefix: &str, keep: bool) -> Result<ScratchDir, String> {
        static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let p = std::env::temp_dir().join(format!("{prefix}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        ScratchDir::new(p, keep)
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// Writer options with `policy`, everything else Redis's default.
pub fn dir_options(policy: FsyncPolicy) -> AofDirOptions {
    AofDirOptions {
        writer: WriterOptions {
            fsync: policy,
            ..WriterOptions::default()
        },
        ..AofDirOptions::default()
    }
}

/// One append configuration.
#[derive(Clone, Debug)]
pub struct AppendConfig {
    /// The fsync policy.
    pub policy: FsyncPolicy,
    /// Writer threads.
    pub threads: usize,
    /// Measured time.
    pub duration: Duration,
    /// Keys the SET writes pick from (pre-loaded, not logged).
    pub dataset: Dataset,
}

/// What one append configuration measured.
#[derive(Clone, Debug)]
pub struct AppendResult {
    /// The configuration.
    pub policy: FsyncPolicy,
    /// Writer threads.
    pub threads: usize,
    /// Latency of execute + acknowledgement, and throughput.
    pub summary: Summary,
    /// fsyncs during the measured time.
    pub fsyncs: u64,
    /// Bytes the writer wrote to the incr file during the measured time.
    pub bytes: u64,
    /// Writes that went ahead behind a slow `everysec` fsync.
    pub delayed_fsyncs: u64,
}

impl AppendResult {
    /// Writes per fsync (0 when no fsync happened).
    pub fn writes_per_fsync(&self) -> f64 {
        if self.fsyncs == 0 {
            0.0
        } else {
            self.summary.ops as f64 / self.fsyncs as f64
        }
    }
}

/// A keyspace holding `dataset` (not logged) whose sink is a fresh AOF directory in `dir`.
pub fn append_setup(
    dir: &Path,
    policy: FsyncPolicy,
    dataset: Dataset,
) -> Result<(AofDir, Arc<Keyspace>), String> {
    let mut ks = Keyspace::new(Config::seeded(7));
    let mut s = Session::default();
    for i in 0..dataset.keys {
        let argv = dataset.command(i);
        let refs: Vec<&[u8]> = argv.iter().map(|a| a.as_slice()).collect();
        ks.execute(&mut s, &refs);
    }
    let aof = AofDir::create(&dir.join("appendonlydir"), &[], dir_options(policy))
        .map_err(|e| format!("creating the AOF dir: {e}"))?;
    ks.set_sink(aof.writer());
    Ok((aof, Arc::new(ks)))
}

/// `threads` threads, writer number `first + t`, each executing writes through `ks` and
/// acknowledging them on `aof`'s writer, until `stop` is set or each has done `limit` writes.
/// Returns the merged latency histogram (nanoseconds).
pub fn write_load(
    ks: &Arc<Keyspace>,
    aof: &AofDir,
    dataset: Dataset,
    threads: usize,
    first: u64,
    stop: &AtomicBool,
    limit: u64,
) -> Result<Histogram<u64>, String> {
    thread::scope(|sc| {
        let hs: Vec<_> = (0..threads)
            .map(|t| {
                let (ks, w) = (ks.clone(), aof.writer());
                sc.spawn(move || -> Result<Histogram<u64>, String> {
                    let mut h = phase_histogram();
                    let mut gen = WriteGen::new(dataset, first + t as u64);
                    let mut s = Session::default();
                    let mut n = 0u64;
                    while n < limit && !stop.load(Ordering::Relaxed) {
                        let w0 = gen.next_write();
                        let t0 = Instant::now();
                        ks.execute(&mut s, w0.argv());
                        w.ack_current_thread()
                            .map_err(|e| format!("AOF ack: {e}"))?;
                        h.saturating_record((t0.elapsed().as_nanos() as u64).max(1));
                        n += 1;
                    }
                    Ok(h)
                })
            })
            .collect();
        let mut all = phase_histogram();
        for h in hs {
            let h = h
                .join()
                .map_err(|_| "writer thread panicked".to_string())??;
            all.add(&h)
                .map_err(|e| format!("merging histograms: {e}"))?;
        }
        Ok(all)
    })
}

/// Run one append configuration on a fresh AOF directory under `parent`.
pub fn run_append(parent: &Path, cfg: &AppendConfig) -> Result<AppendResult, String> {
    let scratch = ScratchDir::new(
        parent.join(format!(
            "append-{}-{}t",
            policy_name(cfg.policy),
            cfg.threads
        )),
        false,
    )?;
    let (aof, ks) = append_setup(scratch.path(), cfg.policy, cfg.dataset)?;
    let m0 = aof.writer().metrics();
    let stop = AtomicBool::new(false);
    let t0 = Instant::now();
    let h = thread::scope(|sc| {
        let timer = sc.spawn(|| {
            // Sleep in slices so a failing writer does not leave us waiting long.
            while t0.elapsed() < cfg.duration && !stop.load(Ordering::Relaxed) {
                thread::sleep(Duration::from_millis(10));
            }
            stop.store(true, Ordering::Relaxed);
        });
        let r = write_load(&ks, &aof, cfg.dataset, cfg.threads, 0, &stop, u64::MAX);
        stop.store(true, Ordering::Relaxed);
        let _ = timer.join();
        r
    })?;
    let wall = t0.elapsed();
    let m1 = aof.writer().metrics();
    drop(ks);
    aof.close().map_err(|e| format!("closing the AOF: {e}"))?;
    Ok(AppendResult {
        policy: cfg.policy,
        threads: cfg.threads,
        summary: Summary::from_histogram(&h, wall),
        fsyncs: m1.fsyncs - m0.fsyncs,
        bytes: m1.bytes_written - m0.bytes_written,
        delayed_fsyncs: m1.delayed_fsyncs - m0.delayed_fsyncs,
    })
}

/// The disk's own cost: one thread appends `bytes` bytes to a file in `parent` and calls
/// `fdatasync` (what the writer's `always` policy does per group), for `duration`. Latency per
/// append + fdatasync, nanoseconds.
pub fn fsync_probe(parent: &Path, duration: Duration, bytes: usize) -> Result<Summary, String> {
    use std::io::Write as _;
    let scratch = ScratchDir::new(parent.join("fsync-probe"), false)?;
    let path = scratch.path().join("probe.aof");
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(|e| format!("opening {}: {e}", path.display()))?;
    let buf = vec![b'x'; bytes];
    let mut h = phase_histogram();
    let start = Instant::now();
    while start.elapsed() < duration {
        let t0 = Instant::now();
        f.write_all(&buf)
            .and_then(|()| f.sync_data())
            .map_err(|e| format!("probe write/fdatasync: {e}"))?;
        h.saturating_record((t0.elapsed().as_nanos() as u64).max(1));
    }
    Ok(Summary::from_histogram(&h, start.elapsed()))
}

/// Execute `dataset`'s commands into `ks` on 2 threads (whatever its sink).
pub fn build(ks: &Keyspace, dataset: Dataset) {
    let threads = 2u64;
    thread::scope(|sc| {
        for t in 0..threads {
            sc.spawn(move || {
                let mut s = Session::default();
                let mut i = t;
                while i < dataset.keys {
                    let argv = dataset.command(i);
                    let refs: Vec<&[u8]> = argv.iter().map(|a| a.as_slice()).collect();
                    ks.execute(&mut s, &refs);
                    i += threads;
                }
            });
        }
    });
}

/// A live AOF directory with its keyspace and snapshot observer.
pub struct LiveAof {
    /// The directory (its writer is the keyspace's sink).
    pub aof: AofDir,
    /// The keyspace.
    pub ks: Arc<Keyspace>,
    /// Its snapshot observer (for [`rewrite`]).
    pub obs: Arc<SnapshotObserver>,
}

/// Create an AOF directory at `dir` (empty RDB base) and execute `dataset`'s commands through
/// the sink on 2 threads, so the incr file holds them all; fsynced before returning.
pub fn populate(dir: &Path, dataset: Dataset, policy: FsyncPolicy) -> Result<LiveAof, String> {
    let mut ks = Keyspace::new(Config::seeded(11));
    let aof = AofDir::create(dir, &[], dir_options(policy))
        .map_err(|e| format!("creating {}: {e}", dir.display()))?;
    ks.set_sink(aof.writer());
    let obs = forkless_snapshot::install(&mut ks);
    let ks = Arc::new(ks);
    build(&ks, dataset);
    aof.writer()
        .flush_and_sync()
        .map_err(|e| format!("flushing the AOF: {e}"))?;
    Ok(LiveAof { aof, ks, obs })
}

/// What one rewrite measured.
#[derive(Clone, Debug)]
pub struct RewriteResult {
    /// Wall time of `rewrite()` (snapshot + durable base + manifest switch).
    pub seconds: f64,
    /// Keys in the new base's RDB part.
    pub keys: u64,
    /// Size of the new base file.
    pub base_bytes: u64,
    /// Delta bytes (writes during the rewrite, appended to the base as RESP).
    pub delta_bytes: u64,
    /// Writer threads running during it.
    pub writers: usize,
    /// Their latency and throughput during the rewrite (None without writers).
    pub load: Option<Summary>,
}

impl RewriteResult {
    /// Base bytes per second (MB = 10^6 bytes).
    pub fn mb_per_s(&self) -> f64 {
        self.base_bytes as f64 / 1e6 / self.seconds.max(1e-9)
    }
}

/// Size of the file the manifest names as base.
pub fn base_size(live: &LiveAof) -> u64 {
    live.aof
        .manifest()
        .base
        .and_then(|b| std::fs::metadata(live.aof.path().join(b.name)).ok())
        .map_or(0, |m| m.len())
}

/// Rewrite `live` with `writers` threads of [`WriteGen`] writes running meanwhile.
pub fn run_rewrite(
    live: &LiveAof,
    dataset: Dataset,
    writers: usize,
) -> Result<RewriteResult, String> {
    let stop = AtomicBool::new(false);
    let (res, wall, hist) = thread::scope(|sc| {
        let load = (writers > 0).then(|| {
            let stop = &stop;
            sc.spawn(move || {
                let t0 = Instant::now();
                let h = write_load(&live.ks, &live.aof, dataset, writers, 100, stop, u64::MAX);
                (h, t0.elapsed())
            })
        });
        if writers > 0 {
            // Let the writers get going first.
            thread::sleep(Duration::from_millis(200));
        }
        let t0 = Instant::now();
        let res = rewrite(&live.aof, &live.ks, &live.obs);
        let wall = t0.elapsed();
        stop.store(true, Ordering::Relaxed);
        let hist = load.map(|l| l.join().expect("load thread"));
        (res, wall, hist)
    });
    let res = res.map_err(|e| format!("rewrite: {e}"))?;
    let load = match hist {
        Some((h, w)) => Some(Summary::from_histogram(&h?, w)),
        None => None,
    };
    Ok(RewriteResult {
        seconds: wall.as_secs_f64(),
        keys: res.keys,
        base_bytes: base_size(live),
        delta_bytes: res.delta_bytes,
        writers,
        load,
    })
}

/// Execute `n` more writes through `live` (one thread, writer number `writer`) and sync.
pub fn extra_writes(live: &LiveAof, dataset: Dataset, n: u64, writer: u64) -> Result<(), String> {
    let stop = AtomicBool::new(false);
    write_load(&live.ks, &live.aof, dataset, 1, writer, &stop, n)?;
    live.aof
        .writer()
        .flush_and_sync()
        .map_err(|e| format!("flushing the AOF: {e}"))
}

/// Copy the files of the AOF directory `from` into a new directory `to`.
pub fn copy_dir(from: &Path, to: &Path) -> Result<(), String> {
    std::fs::create_dir_all(to).map_err(|e| format!("creating {}: {e}", to.display()))?;
    for e in std::fs::read_dir(from).map_err(|e| format!("reading {}: {e}", from.display()))? {
        let e = e.map_err(|e| format!("reading {}: {e}", from.display()))?;
        if e.file_type().is_ok_and(|t| t.is_file()) {
            std::fs::copy(e.path(), to.join(e.file_name()))
                .map_err(|err| format!("copying {}: {err}", e.path().display()))?;
        }
    }
    Ok(())
}

/// The files of an AOF directory: (name, bytes), sorted by name.
pub fn dir_files(dir: &Path) -> Vec<(String, u64)> {
    let mut v: Vec<(String, u64)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                e.metadata().map_or(0, |m| m.len()),
            )
        })
        .collect();
    v.sort();
    v
}

/// Total bytes of the files of an AOF directory.
pub fn dir_bytes(dir: &Path) -> u64 {
    dir_files(dir).iter().map(|f| f.1).sum()
}

/// What one load measured.
#[derive(Clone, Debug)]
pub struct LoadResult {
    /// Load time, seconds (forkless: wall time of `load_dir`; redis: its log line).
    pub seconds: f64,
    /// Bytes of the directory.
    pub bytes: u64,
    /// Keys afterwards.
    pub keys: u64,
    /// Commands applied from RESP parts (forkless only; 0 for redis).
    pub commands: u64,
    /// Per-file times from redis's log: (file, seconds).
    pub parts: Vec<(String, f64)>,
    /// Wall time from spawn until `loading:0` (redis only).
    pub wall_seconds: f64,
}

impl LoadResult {
    /// MB/s (10^6 bytes).
    pub fn mb_per_s(&self) -> f64 {
        self.bytes as f64 / 1e6 / self.seconds.max(1e-9)
    }
    /// Keys per second.
    pub fn keys_per_s(&self) -> f64 {
        self.keys as f64 / self.seconds.max(1e-9)
    }
}

/// Load the AOF directory `dir` into a fresh keyspace with `load_dir`; the keyspace is dropped
/// after the clock stops.
pub fn forkless_load(dir: &Path) -> Result<LoadResult, String> {
    let ks = Keyspace::new(Config::seeded(5));
    let t0 = Instant::now();
    let rep = load_dir(dir, &LoadOptions::default(), &mut KeyspaceTarget::new(&ks))
        .map_err(|e| format!("load_dir {}: {e}", dir.display()))?;
    let seconds = t0.elapsed().as_secs_f64();
    let keys = (0..ks.databases()).map(|d| ks.dbsize(d) as u64).sum();
    Ok(LoadResult {
        seconds,
        bytes: dir_bytes(dir),
        keys,
        commands: rep.commands,
        parts: Vec::new(),
        wall_seconds: seconds,
    })
}

/// `X` of the first `<prefix>X seconds` in `log`.
fn seconds_after(line: &str, prefix: &str) -> Option<f64> {
    let rest = &line[line.find(prefix)? + prefix.len()..];
    rest.split_whitespace().next()?.parse().ok()
}

/// Parse redis-server's load log: the total ("DB loaded from append only file: X seconds") and
/// the per-file lines ("DB loaded from base|incr file NAME: X seconds").
pub fn parse_redis_load_log(log: &str) -> (Option<f64>, Vec<(String, f64)>) {
    let mut total = None;
    let mut parts = Vec::new();
    for l in log.lines() {
        if let Some(s) = seconds_after(l, "DB loaded from append only file: ") {
            total = Some(s);
        }
        for kind in ["base", "incr"] {
            let p = format!("DB loaded from {kind} file ");
            if let Some(i) = l.find(&p) {
                let rest = &l[i + p.len()..];
                if let Some((name, tail)) = rest.split_once(": ") {
                    if let Some(s) = tail.split_whitespace().next().and_then(|x| x.parse().ok()) {
                        parts.push((name.to_string(), s));
                    }
                }
            }
        }
    }
    (total, parts)
}

/// Load a copy of the AOF directory `dir` into a fresh redis-server (`--appendonly yes
/// --appenddirname`, a free port) and read the load time from its log. `work` receives the copy
/// and the log. `Ok(None)` when redis-server is not installed.
pub fn redis_load(dir: &Path, work: &Path) -> Result<Option<LoadResult>, String> {
    let _ = std::fs::remove_dir_all(work);
    let target = work.join("appendonlydir");
    copy_dir(dir, &target)?;
    let log = work.join("redis.log");
    let t0 = Instant::now();
    let server = match Launch::redis_server(work)
        .args(["--appendonly", "yes", "--appenddirname", "appendonlydir"])
        .args([
            "--appendfilename",
            "appendonly.aof",
            "--aof-load-truncated",
            "yes",
        ])
        .log(&log)
        .ready_within(Duration::from_secs(600))
        .start()
    {
        Ok(s) => s,
        Err(LaunchError::NotInstalled(_)) => return Ok(None),
        Err(e) => return Err(format!("redis-server: {e}")),
    };
    let wall = t0.elapsed().as_secs_f64();
    let mut c = server.connect().map_err(|e| format!("connect: {e}"))?;
    let keys = match c.call(&["DBSIZE"]) {
        Ok(Reply::Integer(n)) => n as u64,
        r => return Err(format!("DBSIZE: {r:?}")),
    };
    let text = std::fs::read_to_string(&log).map_err(|e| format!("reading the log: {e}"))?;
    drop(server);
    let (total, parts) = parse_redis_load_log(&text);
    let seconds =
        total.ok_or_else(|| format!("no \"DB loaded from append only file\" in:\n{text}"))?;
    Ok(Some(LoadResult {
        seconds,
        bytes: dir_bytes(&target),
        keys,
        commands: 0,
        parts,
        wall_seconds: wall,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_redis_load_lines() {
        let log = "1:M 25 Nov 2026 10:00:00.000 * DB loaded from base file appendonly.aof.2.base.rdb: 1.234 seconds\n\
                   1:M 25 Nov 2026 10:00:00.500 * DB loaded from incr file appendonly.aof.2.incr.aof: 0.500 seconds\n\
                   1:M 25 Nov 2026 10:00:00.500 * DB loaded from append only file: 1.735 seconds\n";
        let (total, parts) = parse_redis_load_log(log);
        assert_eq!(total, Some(1.735));
        assert_eq!(
            parts,
            vec![
                ("appendonly.aof.2.base.rdb".to_string(), 1.234),
                ("appendonly.aof.2.incr.aof".to_string(), 0.5)
            ]
        );
        assert_eq!(parse_policy("everysec"), Some(FsyncPolicy::EverySec));
        assert_eq!(policy_name(FsyncPolicy::Always), "always");
    }
}
