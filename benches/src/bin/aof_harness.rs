//! AOF harness (benches/README.md "AOF"): append throughput and latency percentiles per fsync
//! policy and writer-thread count (group commit: writes per fsync), the forkless rewrite of a
//! directory of N keys (idle and under write load), and load speed of the same multi-part
//! directories by forkless (`load_dir`) and by redis-server 7.0 (its start-up log).
//!
//! Prints Markdown tables. Measurement code: `forkless_benches::aof_bench`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;
use forkless_aof::FsyncPolicy;
use forkless_benches::aof_bench::{
    copy_dir, dir_files, extra_writes, forkless_load, fsync_probe, parse_policy, policy_name,
    populate, redis_load, run_append, run_rewrite, AppendConfig, AppendResult, LoadResult,
    ScratchDir,
};
use forkless_harness::workload::Dataset;

/// Benchmarks of the forkless AOF.
#[derive(Debug, Parser)]
#[command(
    name = "aof_harness",
    after_help = "Example:\n  cargo run --release -p forkless-benches --bin aof_harness -- --keys 1000000"
)]
struct Args {
    /// What to run: any of append, rewrite, load (comma separated; load implies the rewrite's
    /// directories).
    #[arg(long, value_delimiter = ',', default_value = "append,rewrite,load")]
    what: Vec<String>,
    /// Seconds per append configuration.
    #[arg(long, default_value_t = 3.0)]
    secs: f64,
    /// Writer-thread counts of the append runs.
    #[arg(long, value_delimiter = ',', default_value = "1,4")]
    threads: Vec<usize>,
    /// fsync policies of the append runs.
    #[arg(long, value_delimiter = ',', default_value = "always,everysec,no")]
    policies: Vec<String>,
    /// Rounds of the append matrix (interleaved, so 1-thread and 4-thread runs see the same
    /// disk; medians reported).
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Keys the append runs' SETs pick from (pre-loaded, not logged).
    #[arg(long, default_value_t = 100_000)]
    append_keys: u64,
    /// Keys of the rewrite / load directory.
    #[arg(long, default_value_t = 1_000_000)]
    keys: u64,
    /// Bytes per string value.
    #[arg(long, default_value_t = 100)]
    value_size: usize,
    /// Mixed types (string, list, set, zset, hash) in the rewrite / load directory.
    #[arg(long)]
    mixed: bool,
    /// Writer threads during the second rewrite (0: only the idle rewrite).
    #[arg(long, default_value_t = 1)]
    rewrite_writers: usize,
    /// Writes appended after the rewrites (the incr part of the base+incr load case).
    #[arg(long, default_value_t = 200_000)]
    incr_writes: u64,
    /// Runs of each load (the median is reported).
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Skip redis-server.
    #[arg(long)]
    no_redis: bool,
    /// Parent of the scratch directories (default: the system temp dir); removed afterwards
    /// unless --keep.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Keep the scratch directories.
    #[arg(long)]
    keep: bool,
}

fn main() -> ExitCode {
    match real_main(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("aof_harness: {e}");
            ExitCode::FAILURE
        }
    }
}

use forkless_harness::rss::loadavg;

fn mib(b: u64) -> f64 {
    b as f64 / (1024.0 * 1024.0)
}

fn median(mut v: Vec<LoadResult>) -> Option<LoadResult> {
    v.sort_by(|a, b| a.seconds.total_cmp(&b.seconds));
    let n = v.len();
    (n > 0).then(|| v.swap_remove(n / 2))
}

fn real_main(a: Args) -> Result<(), String> {
    let parent = match &a.dir {
        Some(d) => ScratchDir::new(
            d.join(format!("aof-harness-{}", std::process::id())),
            a.keep,
        )?,
        None => ScratchDir::temp("forkless-aof-harness", a.keep)?,
    };
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "forkless AOF harness: {cores} cores, load average {} at start, scratch {}",
        loadavg(),
        parent.path().display()
    );
    let wants = |w: &str| a.what.iter().any(|x| x == w);

    if wants("append") {
        append(&a, parent.path())?;
    }
    if wants("rewrite") || wants("load") {
        rewrite_and_load(&a, parent.path(), wants("load"))?;
    }
    println!("\nload average at end: {}", loadavg());
    Ok(())
}

fn wpf_text(writes: u64, fsyncs: u64) -> String {
    match fsyncs {
        0 => "-".to_string(),
        f if writes / f >= 100 => format!("{}", writes / f),
        f => format!("{:.2}", writes as f64 / f as f64),
    }
}

fn med(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

fn append(a: &Args, parent: &std::path::Path) -> Result<(), String> {
    let policies: Vec<FsyncPolicy> = a
        .policies
        .iter()
        .map(|p| parse_policy(p).ok_or_else(|| format!("unknown policy {p:?}")))
        .collect::<Result<_, _>>()?;
    let dataset = Dataset {
        keys: a.append_keys,
        value_size: a.value_size,
        mixed: false,
    };
    let secs = Duration::from_secs_f64(a.secs);
    println!(
        "\n### Append: writes through the keyspace with the AOF writer as sink ({} s each, SET/INCR/HSET on {} keys, {} B values, latency = execute + ack), {} round(s)\n",
        a.secs, a.append_keys, a.value_size, a.rounds
    );
    println!("| round | policy | threads | ops/s | p50 us | p99 us | p99.9 us | max us | fsyncs | writes/fsync | MB/s written | load avg |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
    let mut all: Vec<AppendResult> = Vec::new();
    let mut probes = Vec::new();
    for round in 1..=a.rounds {
        if policies.contains(&FsyncPolicy::Always) {
            let p = fsync_probe(parent, secs.min(Duration::from_secs(2)), 128)?;
            println!(
                "| {round} | (disk: write 128 B + fdatasync) | 1 | {:.0} | {:.1} | {:.1} | {:.1} | {:.0} | {} | 1.00 | - | {} |",
                p.ops_per_s, p.p50_us, p.p99_us, p.p999_us, p.max_us, p.ops, loadavg()
            );
            probes.push(p);
        }
        for &policy in &policies {
            for &threads in &a.threads {
                let cfg = AppendConfig {
                    policy,
                    threads,
                    duration: secs,
                    dataset,
                };
                let r = run_append(parent, &cfg)?;
                let s = &r.summary;
                let wpf = wpf_text(r.summary.ops, r.fsyncs);
                println!(
                    "| {round} | {} | {} | {:.0} | {:.1} | {:.1} | {:.1} | {:.0} | {} | {} | {:.2} | {} |",
                    policy_name(policy),
                    threads,
                    s.ops_per_s,
                    s.p50_us,
                    s.p99_us,
                    s.p999_us,
                    s.max_us,
                    r.fsyncs,
                    wpf,
                    r.bytes as f64 / 1e6 / s.seconds.max(1e-9),
                    loadavg()
                );
                if r.delayed_fsyncs > 0 {
                    println!("(delayed fsyncs: {})", r.delayed_fsyncs);
                }
                all.push(r);
            }
        }
    }
    println!("\nMedian over rounds (writes/fsync: all writes / all fsyncs of the rounds):\n");
    println!("| policy | threads | ops/s | p50 us | p99 us | p99.9 us | writes/fsync | ops/s vs 1 thread of the same round | ops/s vs disk fdatasync/s of the same round |");
    println!("|---|---|---|---|---|---|---|---|---|");
    if !probes.is_empty() {
        println!(
            "| (disk: write 128 B + fdatasync) | 1 | {:.0} | {:.1} | {:.1} | {:.1} | 1.00 | | 1.00x |",
            med(probes.iter().map(|p| p.ops_per_s).collect()),
            med(probes.iter().map(|p| p.p50_us).collect()),
            med(probes.iter().map(|p| p.p99_us).collect()),
            med(probes.iter().map(|p| p.p999_us).collect()),
        );
    }
    for &policy in &policies {
        let base = med(all
            .iter()
            .filter(|r| r.policy == policy && r.threads == 1)
            .map(|r| r.summary.ops_per_s)
            .collect());
        for &threads in &a.threads {
            let rs: Vec<&AppendResult> = all
                .iter()
                .filter(|r| r.policy == policy && r.threads == threads)
                .collect();
            let f = |g: &dyn Fn(&AppendResult) -> f64| med(rs.iter().map(|r| g(r)).collect());
            let ops: u64 = rs.iter().map(|r| r.summary.ops).sum();
            let fsyncs: u64 = rs.iter().map(|r| r.fsyncs).sum();
            let tput = f(&|r| r.summary.ops_per_s);
            // Ratio to the 1-thread run of the same round (same disk weather), median.
            let per_round: Vec<f64> = rs
                .iter()
                .zip(all.iter().filter(|r| r.policy == policy && r.threads == 1))
                .map(|(r, one)| r.summary.ops_per_s / one.summary.ops_per_s.max(1e-9))
                .collect();
            // Ratio to the raw disk (write + fdatasync on one thread) of the same round.
            let vs_disk: Vec<f64> = rs
                .iter()
                .zip(&probes)
                .map(|(r, p)| r.summary.ops_per_s / p.ops_per_s.max(1e-9))
                .collect();
            println!(
                "| {} | {} | {:.0} | {:.1} | {:.1} | {:.1} | {} | {} | {} |",
                policy_name(policy),
                threads,
                tput,
                f(&|r| r.summary.p50_us),
                f(&|r| r.summary.p99_us),
                f(&|r| r.summary.p999_us),
                wpf_text(ops, fsyncs),
                if base > 0.0 {
                    let rr: Vec<String> = per_round.iter().map(|x| format!("{x:.2}")).collect();
                    format!(
                        "{:.2}x (per round: {})",
                        med(per_round.clone()),
                        rr.join(", ")
                    )
                } else {
                    String::new()
                },
                if policy == FsyncPolicy::Always && !vs_disk.is_empty() {
                    format!("{:.2}x", med(vs_disk))
                } else {
                    String::new()
                }
            );
        }
    }
    Ok(())
}

fn print_files(dir: &std::path::Path) {
    for (name, bytes) in dir_files(dir) {
        println!("  {name}: {bytes} bytes ({:.1} MiB)", mib(bytes));
    }
}

fn rewrite_and_load(a: &Args, parent: &std::path::Path, load: bool) -> Result<(), String> {
    let dataset = Dataset {
        keys: a.keys,
        value_size: a.value_size,
        mixed: a.mixed,
    };
    let live_dir = parent.join("live").join("appendonlydir");
    let incr_case = parent.join("case-incr").join("appendonlydir");
    let base_case = parent.join("case-base-incr").join("appendonlydir");
    println!(
        "\n### Rewrite: {} keys ({} B{}), populated through the AOF writer (everysec)\n",
        a.keys,
        a.value_size,
        if a.mixed { ", mixed types" } else { " strings" }
    );
    let t0 = Instant::now();
    let live = populate(&live_dir, dataset, FsyncPolicy::EverySec)?;
    println!(
        "populated in {:.2} s (load average {}); directory:",
        t0.elapsed().as_secs_f64(),
        loadavg()
    );
    print_files(&live_dir);
    if load {
        copy_dir(&live_dir, &incr_case)?;
    }
    // Under load first, idle last: the base+incr load case then has a pure RDB base (no
    // deltas after it) and an incr part of exactly --incr-writes writes.
    let mut rows = Vec::new();
    if a.rewrite_writers > 0 {
        rows.push(run_rewrite(&live, dataset, a.rewrite_writers)?);
    }
    rows.push(run_rewrite(&live, dataset, 0)?);
    println!("\n| rewrite | seconds | keys | base bytes | base MiB | MB/s | delta bytes | writers: ops/s, p99 us, p99.9 us, max us |");
    println!("|---|---|---|---|---|---|---|---|");
    for r in &rows {
        let load = r.load.as_ref().map_or("-".to_string(), |s| {
            format!(
                "{:.0}, {:.1}, {:.1}, {:.0}",
                s.ops_per_s, s.p99_us, s.p999_us, s.max_us
            )
        });
        println!(
            "| {} | {:.2} | {} | {} | {:.1} | {:.1} | {} | {} |",
            if r.writers == 0 {
                "idle".to_string()
            } else {
                format!("{} writer(s)", r.writers)
            },
            r.seconds,
            r.keys,
            r.base_bytes,
            mib(r.base_bytes),
            r.mb_per_s(),
            r.delta_bytes,
            load
        );
    }
    println!("load average: {}", loadavg());
    if !load {
        live.aof.close().map_err(|e| format!("close: {e}"))?;
        return Ok(());
    }
    extra_writes(&live, dataset, a.incr_writes, 200)?;
    copy_dir(&live_dir, &base_case)?;
    let keys_live: u64 = (0..live.ks.databases())
        .map(|d| live.ks.dbsize(d) as u64)
        .sum();
    let keys_first = a.keys;
    drop(live.ks);
    live.aof.close().map_err(|e| format!("close: {e}"))?;
    let _ = std::fs::remove_dir_all(parent.join("live"));

    println!("\n### Load: the same directory by forkless (`load_dir` into a fresh keyspace) and by redis-server (start-up log), median of {} runs\n", a.runs);
    let cases = [
        ("RDB-preamble base + incr", &base_case, keys_live),
        ("empty base + large incr", &incr_case, keys_first),
    ];
    for (name, dir, _) in &cases {
        println!("{name}:");
        print_files(dir);
    }
    println!("\n| case | loader | seconds | MB/s | keys | keys/s | detail |");
    println!("|---|---|---|---|---|---|---|");
    let redis_work = parent.join("redis-load");
    for (name, dir, expect) in &cases {
        let mut ours = Vec::new();
        let mut theirs = Vec::new();
        for _ in 0..a.runs {
            ours.push(forkless_load(dir)?);
            if !a.no_redis {
                match redis_load(dir, &redis_work)? {
                    Some(r) => theirs.push(r),
                    None => eprintln!("redis-server not installed: skipped"),
                }
            }
        }
        let o = median(ours).expect("runs >= 1");
        if o.keys != *expect {
            eprintln!(
                "note: {name}: forkless loaded {} keys, the live keyspace had {expect}",
                o.keys
            );
        }
        println!(
            "| {name} | forkless | {:.3} | {:.1} | {} | {:.0} | {} RESP commands applied (RDB keys + incr commands in one total time) |",
            o.seconds,
            o.mb_per_s(),
            o.keys,
            o.keys_per_s(),
            o.commands,
        );
        if let Some(r) = median(theirs) {
            if r.keys != o.keys {
                eprintln!(
                    "note: {name}: redis has {} keys, forkless {}",
                    r.keys, o.keys
                );
            }
            let parts: Vec<String> = r
                .parts
                .iter()
                .map(|(f, s)| format!("{f} {s:.3} s"))
                .collect();
            println!(
                "| {name} | redis-server | {:.3} | {:.1} | {} | {:.0} | {}; wall to loading:0 {:.3} s; ours/redis time {:.2} |",
                r.seconds,
                r.mb_per_s(),
                r.keys,
                r.keys_per_s(),
                parts.join(", "),
                r.wall_seconds,
                o.seconds / r.seconds.max(1e-9)
            );
        }
    }
    let _ = std::fs::remove_dir_all(&redis_work);
    println!("load average: {}", loadavg());
    Ok(())
}
