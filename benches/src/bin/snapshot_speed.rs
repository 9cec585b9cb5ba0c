//! Snapshot speed with no writers (issue 19, benches/README.md "Snapshot speed"): one dataset
//! snapshotted to a file with each `--threads` count of serializer threads
//! (`SnapshotOptions::serialize_threads`), and, with `--redis`, redis-server 7.0.15's BGSAVE
//! (fork + child) and SAVE (in the main thread) of the same dataset, in the same run.
//!
//! Per run it prints the wall time, the process CPU time the snapshot used (user + system,
//! from `/proc/self/stat`: how much work was spread over how many cores), MB/s of the file and
//! the load average, so a shared machine's noise is visible next to each figure.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;
use forkless_harness::redis::{self, Conn, Reply};
use forkless_harness::rss::loadavg;
use forkless_harness::run::build;
use forkless_harness::workload::Dataset;
use forkless_snapshot::{snapshot_to_file, Mode, SnapshotOptions};

/// The allocator `forkless server` uses (crates/cli), so the figures are the server's.
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Snapshot time with no writers: 1..N serializer threads against redis-server's BGSAVE.
#[derive(Debug, Parser)]
#[command(
    name = "snapshot_speed",
    after_help = "Example:\n  cargo run --release -p forkless-benches --bin snapshot_speed -- --keys 1000000 --threads 1,2 --redis"
)]
struct Args {
    /// Keys in the dataset.
    #[arg(long, default_value_t = 1_000_000)]
    keys: u64,
    /// Bytes per string value.
    #[arg(long, default_value_t = 100)]
    value_size: usize,
    /// Mixed types (string, list, set, zset, hash) instead of strings only.
    #[arg(long)]
    mixed: bool,
    /// Serializer thread counts to measure, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,2")]
    threads: Vec<usize>,
    /// Snapshot mode: converging or pit.
    #[arg(long, default_value = "converging")]
    mode: Mode,
    /// Runs of each configuration (the table keeps every run).
    #[arg(long, default_value_t = 2)]
    repeat: usize,
    /// Also load the dataset into redis-server and time BGSAVE and SAVE.
    #[arg(long)]
    redis: bool,
    /// Where files go (default: a directory under the system temp dir, removed after).
    #[arg(long)]
    out: Option<PathBuf>,
}

/// User + system CPU time of this process so far.
fn cpu_time() -> Duration {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return Duration::ZERO;
    };
    // Fields after the parenthesized command name: state is field 3; utime 14, stime 15.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        f.get(i - 3)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // Linux reports USER_HZ = 100 ticks per second to user space.
    Duration::from_millis((ticks(14) + ticks(15)) * 10)
}

fn main() -> ExitCode {
    match real_main(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("snapshot_speed: {e}");
            ExitCode::FAILURE
        }
    }
}

fn real_main(a: Args) -> Result<(), String> {
    let (dir, temp) = match &a.out {
        Some(d) => (d.clone(), false),
        None => (
            std::env::temp_dir().join(format!("forkless-snapspeed-{}", std::process::id())),
            true,
        ),
    };
    std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    let r = measure(&a, &dir);
    if temp {
        let _ = std::fs::remove_dir_all(&dir);
    }
    r
}

fn measure(a: &Args, dir: &std::path::Path) -> Result<(), String> {
    let dataset = Dataset {
        keys: a.keys,
        value_size: a.value_size,
        mixed: a.mixed,
    };
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "dataset: {} keys, {} B values{}, mode {}, {cores} cores",
        a.keys,
        a.value_size,
        if a.mixed { ", mixed types" } else { "" },
        a.mode
    );
    let t = Instant::now();
    let (ks, obs, _sink) = build(dataset, &|_| {});
    println!("built in {:.1} s", t.elapsed().as_secs_f64());
    let path = dir.join("forkless.rdb");
    let mut best: Vec<(usize, f64)> = Vec::new();
    for round in 0..a.repeat {
        for &threads in &a.threads {
            let opts = SnapshotOptions {
                mode: a.mode,
                serialize_threads: threads,
                ..Default::default()
            };
            let (c0, load) = (cpu_time(), loadavg());
            let res = snapshot_to_file(ks.clone(), &obs, &path, opts)
                .map_err(|e| format!("snapshot with {threads} threads: {e}"))?;
            let cpu = cpu_time().saturating_sub(c0);
            let wall = res.duration.as_secs_f64();
            println!(
                "  forkless  threads {threads}  run {round}: {wall:.3} s  cpu {:.2} s  {:.0} MB/s  {} keys  {:.1} MiB  load {load}",
                cpu.as_secs_f64(),
                res.mb_per_s,
                res.keys,
                res.total_bytes as f64 / (1 << 20) as f64,
            );
            match best.iter_mut().find(|(t, _)| *t == threads) {
                Some((_, b)) => *b = b.min(wall),
                None => best.push((threads, wall)),
            }
            let _ = std::fs::remove_file(&path);
        }
    }
    // Free the keyspace before redis-server loads its copy.
    drop((ks, obs));
    let mut redis_best = None;
    if a.redis {
        redis_best = time_redis(a, dataset, dir)?;
    }
    println!("best of {} runs:", a.repeat);
    for (threads, wall) in &best {
        let vs = redis_best.map_or(String::new(), |r: f64| {
            format!("  ({:.2}x BGSAVE's speed)", r / wall)
        });
        println!("  forkless threads {threads}: {wall:.3} s{vs}");
    }
    if let Some(r) = redis_best {
        println!("  redis-server BGSAVE: {r:.3} s");
    }
    Ok(())
}

/// BGSAVE and SAVE of the dataset in a fresh redis-server; the best BGSAVE wall time.
fn time_redis(a: &Args, dataset: Dataset, dir: &std::path::Path) -> Result<Option<f64>, String> {
    let rdir = dir.join("redis");
    std::fs::create_dir_all(&rdir).map_err(|e| format!("creating {}: {e}", rdir.display()))?;
    let Some(server) = redis::start(&rdir)? else {
        println!("  redis-server not installed: skipped");
        return Ok(None);
    };
    redis::load(server.port(), dataset, &|_| {})?;
    let mut c = Conn::connect(server.port()).map_err(|e| format!("redis connect: {e}"))?;
    let info = |c: &mut Conn, f: &str| {
        c.info_u64("persistence", f)
            .map_err(|e| format!("redis INFO: {e}"))
    };
    let mut best = f64::MAX;
    for round in 0..a.repeat {
        let load = loadavg();
        let t = Instant::now();
        if let Reply::Error(e) = c.call(&["BGSAVE"]).map_err(|e| format!("BGSAVE: {e}"))? {
            return Err(format!("BGSAVE: {}", String::from_utf8_lossy(&e)));
        }
        while info(&mut c, "rdb_bgsave_in_progress")? != 0 {
            std::thread::sleep(Duration::from_millis(2));
        }
        let wall = t.elapsed().as_secs_f64();
        best = best.min(wall);
        println!("  redis     BGSAVE     run {round}: {wall:.3} s  load {load}");
    }
    for round in 0..a.repeat {
        let load = loadavg();
        let t = Instant::now();
        if let Reply::Error(e) = c.call(&["SAVE"]).map_err(|e| format!("SAVE: {e}"))? {
            return Err(format!("SAVE: {}", String::from_utf8_lossy(&e)));
        }
        println!(
            "  redis     SAVE       run {round}: {:.3} s  load {load}",
            t.elapsed().as_secs_f64()
        );
    }
    drop(server);
    Ok(Some(best))
}
