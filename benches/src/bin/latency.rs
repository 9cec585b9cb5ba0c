//! Snapshot latency harness: what writers see while a forkless snapshot runs, against the same
//! load on redis-server during `BGSAVE`.
//!
//! Phases: idle (writers only), then one snapshot per mode while the writers go on. Per phase:
//! throughput, p50/p99/p99.9/max latency, stalls (ops >= 1 ms); per snapshot: duration, MB/s,
//! peak extra bytes, peak RSS over the dataset. Targets checked at the end (benches/README.md
//! "Snapshot latency"). The measurement code is shared with `forkless demo`
//! (`forkless_harness::run`, `forkless_harness::redis`).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use forkless_harness::hist::{ratio, Summary};
use forkless_harness::run::{mode_name, run, Event, RunConfig};
use forkless_harness::stall::{Cause, Causes};
use forkless_harness::workload::Dataset;
use forkless_snapshot::Mode;

#[derive(Clone, Copy, Debug, ValueEnum)]
enum ModeArg {
    Converging,
    Pit,
    Both,
}

/// Latency of writers during forkless snapshots (and redis-server BGSAVE with --redis).
#[derive(Debug, Parser)]
#[command(
    name = "latency",
    after_help = "Example:\n  cargo run --release -p forkless-benches --bin latency -- --keys 1000000 --writers 2 --mode both --redis"
)]
struct Args {
    /// Keys in the dataset.
    #[arg(long, default_value_t = 1_000_000)]
    keys: u64,
    /// Writer threads (and redis client connections).
    #[arg(long, default_value_t = 2)]
    writers: usize,
    /// Bytes per string value.
    #[arg(long, default_value_t = 100)]
    value_size: usize,
    /// Mixed types (string, list, set, zset, hash) instead of strings only.
    #[arg(long)]
    mixed: bool,
    /// Which snapshots to take.
    #[arg(long, value_enum, default_value_t = ModeArg::Both)]
    mode: ModeArg,
    /// Seconds of the idle phase.
    #[arg(long, default_value_t = 5.0)]
    idle_secs: f64,
    /// Also run the same dataset and load against redis-server with BGSAVE.
    #[arg(long)]
    redis: bool,
    /// Where snapshot files go (default: a directory under the system temp dir, removed after).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Verify each snapshot (replay and compare with the state at the cut).
    #[arg(long)]
    verify: bool,
    /// Name the cause of every write >= 1 ms (lock wait by holder, hand-off, copy-on-write,
    /// delta capture, descheduled by the OS, on-CPU): two system calls more per write.
    #[arg(long)]
    attribute: bool,
    /// With --attribute: also name the cause of every write of at least this many microseconds
    /// (0: none), e.g. the idle p99.9, to see what the tail of a snapshot phase waited for.
    #[arg(long, default_value_t = 0)]
    tail_us: u64,
    /// Serializer threads of each snapshot (`SnapshotOptions::serialize_threads`; 0: the
    /// default, half the cores available, 1 to 8; 1: encoded on the snapshot worker alone).
    #[arg(long, default_value_t = 0)]
    snapshot_threads: usize,
    /// Buckets the snapshot worker visits per shard-lock hold (`SnapshotOptions::batch_buckets`;
    /// 0: the default).
    #[arg(long, default_value_t = 0)]
    batch_buckets: usize,
}

fn line(name: &str, s: &Summary) {
    println!(
        "  {name:<16} {:>12.0} ops/s  p50 {:>8.2} us  p99 {:>8.2} us  p99.9 {:>9.2} us  max {:>10.1} us  stalls>=1ms {}",
        s.ops_per_s, s.p50_us, s.p99_us, s.p999_us, s.max_us, s.stalls
    );
}

fn mb(b: u64) -> f64 {
    b as f64 / (1024.0 * 1024.0)
}

fn main() -> ExitCode {
    let a = Args::parse();
    match real_main(a) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("latency: {e}");
            ExitCode::FAILURE
        }
    }
}

fn real_main(a: Args) -> Result<(), String> {
    let modes = match a.mode {
        ModeArg::Converging => vec![Mode::Converging],
        ModeArg::Pit => vec![Mode::PointInTime],
        ModeArg::Both => vec![Mode::Converging, Mode::PointInTime],
    };
    let (out_dir, temp) = match &a.out {
        Some(d) => (d.clone(), false),
        None => (
            std::env::temp_dir().join(format!("forkless-latency-{}", std::process::id())),
            true,
        ),
    };
    let dataset = Dataset {
        keys: a.keys,
        value_size: a.value_size,
        mixed: a.mixed,
    };
    let cfg = RunConfig {
        dataset,
        writers: a.writers,
        idle: Duration::from_secs_f64(a.idle_secs),
        modes,
        out_dir: out_dir.clone(),
        verify: a.verify,
        window: Duration::from_millis(100),
        attribute: a.attribute,
        tail_us: a.tail_us,
        snapshot_threads: a.snapshot_threads,
        batch_buckets: a.batch_buckets,
    };
    let log = |e: Event| match e {
        Event::Build { done, total } if done == total => eprintln!("built {total} keys"),
        Event::Phase(p) => eprintln!("phase: {p}"),
        Event::SnapshotDone(m) => eprintln!("{} snapshot done", mode_name(m)),
        Event::Verify(m) => eprintln!("verifying the {} snapshot", mode_name(m)),
        _ => {}
    };
    println!(
        "dataset: {} keys, {} B values{}, {} writers, {} cores",
        a.keys,
        a.value_size,
        if a.mixed { ", mixed types" } else { "" },
        a.writers,
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    );
    let rep = run(&cfg, &log);
    if temp {
        let _ = std::fs::remove_dir_all(&out_dir);
    }
    let rep = rep?;
    println!(
        "forkless: built in {:.2} s, dataset RSS {:.1} MiB",
        rep.build_seconds,
        mb(rep.dataset_bytes)
    );
    for p in &rep.phases {
        line(&p.name, &p.summary);
        let by_cause = |what: &str, c: &Causes| {
            let parts: Vec<String> = Cause::ALL
                .iter()
                .filter(|&&k| c.get(k) > 0)
                .map(|&k| format!("{} {}", k.name(), c.get(k)))
                .collect();
            println!(
                "    writes >= {what} by cause: {} (by the snapshot: {})",
                if parts.is_empty() {
                    "none".to_string()
                } else {
                    parts.join(", ")
                },
                c.by_snapshot()
            );
        };
        if let Some(c) = &p.causes {
            by_cause("1 ms", c);
        }
        if let Some(c) = &p.tail {
            by_cause(&format!("{} us", a.tail_us), c);
        }
        if let Some(t) = &p.times {
            let per = |ns: u64| ns as f64 / p.summary.ops.max(1) as f64;
            println!(
                "    per write (mean ns): lock wait behind worker {:.1}, barrier {:.1}, other {:.1}; hand-off {:.1}; copy-on-write {:.1}; delta capture {:.1}",
                per(t.lock_worker_ns),
                per(t.lock_barrier_ns),
                per(t.lock_other_ns),
                per(t.handoff_ns),
                per(t.cow_ns),
                per(t.capture_ns)
            );
        }
    }
    let idle = &rep.phases[0].summary;
    let mut ok = true;
    for (s, p) in rep.snapshots.iter().zip(&rep.phases[1..]) {
        let r = &s.result;
        let extra_pct = 100.0 * ratio(r.peak_extra_bytes as f64, rep.dataset_bytes as f64);
        println!(
            "  {} snapshot: {:.2} s, {:.1} MB/s, {} keys, {:.1} MiB ({:.1} MiB deltas, {} commands), peak extra {:.1} MiB = {:.2}% of dataset, RSS +{:.1} MiB (peak {:.1} MiB)",
            mode_name(r.mode),
            r.duration.as_secs_f64(),
            r.mb_per_s,
            r.keys,
            mb(r.total_bytes),
            mb(r.delta_bytes),
            r.delta_commands,
            mb(r.peak_extra_bytes),
            extra_pct,
            mb(s.rss_extra_bytes),
            mb(s.rss_peak_bytes),
        );
        let tr = p.summary.throughput_ratio(idle);
        let lr = p.summary.p999_ratio(idle);
        let t_ok = tr >= 0.9;
        let l_ok = lr <= 1.5;
        // Attributed: only the slow writes the snapshot caused count against it.
        let stalls = p.causes.map_or(p.summary.stalls, |c| c.by_snapshot());
        let s_ok = stalls == 0;
        let m_ok = r.mode != Mode::Converging || extra_pct <= 10.0;
        println!(
            "    targets: throughput {:.2}x idle (>= 0.9: {}), p99.9 {:.2}x idle (<= 1.5: {}), {} {} (0: {}), extra memory {:.2}% ({})",
            tr,
            verdict(t_ok),
            lr,
            verdict(l_ok),
            if p.causes.is_some() { "writes >= 1 ms caused by the snapshot" } else { "stalls" },
            stalls,
            verdict(s_ok),
            extra_pct,
            if r.mode == Mode::Converging { verdict(m_ok) } else { "no target" }
        );
        ok &= t_ok && l_ok && s_ok && m_ok;
        if let Some(v) = &s.verified {
            match v {
                Ok(m) => println!("    verification: {m}"),
                Err(e) => {
                    println!("    verification FAILED: {e}");
                    ok = false;
                }
            }
        }
    }
    println!(
        "  process peak RSS (VmHWM) {:.1} MiB",
        mb(rep.rss_hwm_bytes)
    );
    println!("targets {}", if ok { "all met" } else { "NOT all met" });

    if a.redis {
        let dir =
            std::env::temp_dir().join(format!("forkless-latency-redis-{}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
        let r = forkless_harness::redis::run(&dir, dataset, a.writers, cfg.idle, cfg.window, &log);
        let _ = std::fs::remove_dir_all(&dir);
        match r? {
            None => println!("redis: redis-server not found in PATH; comparison skipped"),
            Some(r) => {
                println!(
                    "redis-server {}: {} keys loaded in {:.2} s (pipelined), used_memory_dataset {:.1} MiB, RSS {:.1} MiB",
                    r.version,
                    r.keys,
                    r.load_seconds,
                    mb(r.dataset_bytes),
                    mb(r.rss_bytes)
                );
                for p in &r.phases {
                    line(&p.name, &p.summary);
                }
                let (i, b) = (&r.phases[0].summary, &r.phases[1].summary);
                println!(
                    "  BGSAVE: fork {} us, {:.2} s, status {}, dump {:.1} MiB, COW {:.1} MiB = {:.2}% of dataset; throughput {:.2}x idle, p99.9 {:.2}x idle",
                    r.fork_usec,
                    r.bgsave_seconds,
                    r.bgsave_status,
                    mb(r.rdb_bytes),
                    mb(r.cow_bytes),
                    100.0 * ratio(r.cow_bytes as f64, r.dataset_bytes as f64),
                    b.throughput_ratio(i),
                    b.p999_ratio(i)
                );
            }
        }
    }
    Ok(())
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "met"
    } else {
        "MISSED"
    }
}
