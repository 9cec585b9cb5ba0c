//! Segments harness (benches/README.md "Segments"): segmented persistence (`forkless-segments`:
//! segments never rewritten, a snapshot every K seconds, retention) against the multi-part AOF
//! with forkless rewrites (every K seconds, or Redis's growth rule) on the same workload: write
//! amplification, write latency and throughput, disk use over time; then recovery time as a
//! function of the snapshot interval.
//!
//! Prints Markdown tables (and an SVG chart with `--svg`). Measurement code:
//! `forkless_benches::segments_bench`.

use forkless_snapshot::Mode;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use forkless_benches::aof_bench::{parse_policy, policy_name, ScratchDir};
use forkless_benches::segments_bench::{
    draw_chart, run, run_dir, run_recovery, RecoveryResult, RunConfig, RunResult, System, Trigger,
};
use forkless_harness::workload::{Dataset, SplitMix64};

/// Benchmarks of segmented persistence against the AOF with forkless rewrites.
#[derive(Debug, Parser)]
#[command(
    name = "segments_harness",
    after_help = "Example:\n  cargo run --release -p forkless-benches --bin segments_harness -- --secs 120 --interval 30"
)]
struct Args {
    /// What to run: compare (segments vs AOF), recovery (recovery time per snapshot interval).
    #[arg(long, value_delimiter = ',', default_value = "compare,recovery")]
    what: Vec<String>,
    /// Systems of the comparison: segments, aof-interval (rewrite every --interval seconds),
    /// aof-growth (rewrite on Redis's auto-aof-rewrite rule).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "segments,aof-interval,aof-growth"
    )]
    systems: Vec<String>,
    /// Keys built before persisting (strings `key:<i>`).
    #[arg(long, default_value_t = 1_000_000)]
    keys: u64,
    /// Bytes per string value.
    #[arg(long, default_value_t = 100)]
    value_size: usize,
    /// Writer threads.
    #[arg(long, default_value_t = 2)]
    writers: usize,
    /// Measured seconds per system of the comparison.
    #[arg(long, default_value_t = 90.0)]
    secs: f64,
    /// Snapshot (segments) / rewrite (aof-interval) interval, seconds.
    #[arg(long, default_value_t = 30.0)]
    interval: f64,
    /// aof-growth: auto-aof-rewrite-percentage.
    #[arg(long, default_value_t = 100)]
    growth_percent: u64,
    /// aof-growth: auto-aof-rewrite-min-size, MiB.
    #[arg(long, default_value_t = 64)]
    growth_min_mib: u64,
    /// appendfsync of both writers: always, everysec, no.
    #[arg(long, default_value = "everysec")]
    policy: String,
    /// No `#TS:` annotations (on by default in both systems: segments need them for
    /// point-in-time recovery).
    #[arg(long)]
    no_timestamps: bool,
    /// Segment size, MiB.
    #[arg(long, default_value_t = 64)]
    segment_mib: u64,
    /// Snapshots kept.
    #[arg(long, default_value_t = 2)]
    keep_snapshots: usize,
    /// Byte budget of the segments (keep_segment_bytes), MiB.
    #[arg(long, default_value_t = 256)]
    keep_segment_mib: u64,
    /// Segments snapshot mode: converging or pit.
    #[arg(long, default_value = "converging")]
    mode: String,
    /// Rounds of the comparison (systems interleaved; every run is printed).
    #[arg(long, default_value_t = 1)]
    rounds: usize,
    /// Snapshot intervals of the recovery measurement, seconds.
    #[arg(long, value_delimiter = ',', default_value = "5,15,30,60")]
    recovery_intervals: Vec<f64>,
    /// Runs per interval of the recovery measurement.
    #[arg(long, default_value_t = 1)]
    recovery_runs: usize,
    /// Seed of the random stop points (stop uniformly in [K, 2K) seconds).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Write the disk-use / throughput chart of the last comparison round here.
    #[arg(long)]
    svg: Option<PathBuf>,
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
            eprintln!("segments_harness: {e}");
            ExitCode::FAILURE
        }
    }
}

use forkless_harness::rss::loadavg;

fn mib(b: u64) -> f64 {
    b as f64 / (1024.0 * 1024.0)
}

fn mb(b: u64) -> f64 {
    b as f64 / 1e6
}

fn base_config(a: &Args) -> Result<RunConfig, String> {
    Ok(RunConfig {
        system: System::Segments,
        trigger: Trigger::Every(Duration::from_secs_f64(a.interval)),
        writers: a.writers,
        duration: Duration::from_secs_f64(a.secs),
        dataset: Dataset {
            keys: a.keys,
            value_size: a.value_size,
            mixed: false,
        },
        policy: parse_policy(&a.policy).ok_or_else(|| format!("unknown policy {:?}", a.policy))?,
        timestamps: !a.no_timestamps,
        segment_bytes: a.segment_mib << 20,
        keep_snapshots: a.keep_snapshots,
        keep_segment_bytes: a.keep_segment_mib << 20,
        mode: match a.mode.as_str() {
            "converging" => Mode::Converging,
            "pit" => Mode::PointInTime,
            m => return Err(format!("unknown mode {m:?}")),
        },
        sample_every: Duration::from_secs(1),
    })
}

fn real_main(a: Args) -> Result<(), String> {
    let parent = match &a.dir {
        Some(d) => ScratchDir::new(
            d.join(format!("segments-harness-{}", std::process::id())),
            a.keep,
        )?,
        None => ScratchDir::temp("forkless-segments-harness", a.keep)?,
    };
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "forkless segments harness: {cores} cores, load average {} at start, scratch {}",
        loadavg(),
        parent.path().display()
    );
    let base = base_config(&a)?;
    let wants = |w: &str| a.what.iter().any(|x| x == w);
    if wants("compare") {
        compare(&a, &base, parent.path())?;
    }
    if wants("recovery") {
        recovery(&a, &base, parent.path())?;
    }
    println!("\nload average at end: {}", loadavg());
    Ok(())
}

fn configs(a: &Args, base: &RunConfig) -> Result<Vec<RunConfig>, String> {
    a.systems
        .iter()
        .map(|s| {
            let mut c = base.clone();
            match s.as_str() {
                "segments" => {}
                "aof-interval" => c.system = System::Aof,
                "aof-growth" => {
                    c.system = System::Aof;
                    c.trigger = Trigger::Growth {
                        percent: a.growth_percent,
                        min_bytes: a.growth_min_mib << 20,
                    };
                }
                other => return Err(format!("unknown system {other:?}")),
            }
            Ok(c)
        })
        .collect()
}

fn compare(a: &Args, base: &RunConfig, parent: &std::path::Path) -> Result<(), String> {
    let cfgs = configs(a, base)?;
    println!(
        "\n### Segments vs AOF: {} keys x {} B built, then persisted; {} writer thread(s) at full speed for {} s (SET/INCR/HSET), appendfsync {}, #TS: {}; segments of {} MiB, {} snapshots, keep {} snapshots, segment budget {} MiB\n",
        a.keys,
        a.value_size,
        a.writers,
        a.secs,
        policy_name(base.policy),
        if base.timestamps { "on" } else { "off" },
        a.segment_mib,
        a.mode,
        a.keep_snapshots,
        a.keep_segment_mib
    );
    let mut last_round: Vec<RunResult> = Vec::new();
    let mut all: Vec<(usize, RunResult)> = Vec::new();
    for round in 1..=a.rounds {
        last_round.clear();
        // Interleave: round 2 runs the systems in reverse order.
        let order: Vec<usize> = if round % 2 == 1 {
            (0..cfgs.len()).collect()
        } else {
            (0..cfgs.len()).rev().collect()
        };
        for &i in &order {
            let c = &cfgs[i];
            let dir = run_dir(parent, &format!("r{round}-{}", c.label()));
            println!(
                "round {round}: {} (load average {}) ...",
                c.label(),
                loadavg()
            );
            let r = run(&dir, c)?;
            let _ = std::fs::remove_dir_all(&dir);
            println!(
                "  built in {:.2} s, first snapshot/base {:.2} s ({:.1} MiB); {:.0} writes/s; {} snapshots/rewrites; load average {}",
                r.build_seconds,
                r.initial_seconds,
                mib(r.initial_bytes),
                r.m.summary.ops_per_s,
                r.m.events.len(),
                loadavg()
            );
            for (name, bytes) in &r.files {
                println!("    {name}: {bytes} bytes");
            }
            last_round.push(r.clone());
            all.push((round, r));
        }
        // Table order = the configuration order.
        last_round.sort_by_key(|r| cfgs.iter().position(|c| c.label() == r.cfg.label()));
    }
    all.sort_by_key(|(round, r)| (*round, cfgs.iter().position(|c| c.label() == r.cfg.label())));

    println!("\n#### Write amplification (measured time only; the first snapshot/base before it is listed apart)\n");
    println!("| round | system | logged MB (writer bytes_written) | snapshots/bases written: n, MB | files written / logged | /proc write_bytes MB | /proc write_bytes / logged | /proc cancelled MB | first snapshot/base MB, s |");
    println!("|---|---|---|---|---|---|---|---|---|");
    for (round, r) in &all {
        let m = &r.m;
        println!(
            "| {round} | {} | {:.1} | {}, {:.1} | **{:.3}** | {:.1} | {:.3} | {:.1} | {:.1}, {:.2} |",
            r.cfg.label(),
            mb(m.logged),
            m.events.len(),
            mb(m.persisted()),
            m.amplification(),
            mb(m.io.write_bytes),
            m.proc_amplification(),
            mb(m.io.cancelled_write_bytes),
            mb(r.initial_bytes),
            r.initial_seconds
        );
    }

    println!("\n#### Writes (latency = execute + ack, HDR histogram of every write)\n");
    println!("| round | system | writes/s | p50 us | p99 us | p99.9 us | max us | writes >= 1 ms | snapshot/rewrite seconds (each) |");
    println!("|---|---|---|---|---|---|---|---|---|");
    for (round, r) in &all {
        let s = &r.m.summary;
        let secs: Vec<String> =
            r.m.events
                .iter()
                .map(|e| format!("{:.1}", e.seconds))
                .collect();
        println!(
            "| {round} | {} | {:.0} | {:.1} | {:.1} | {:.1} | {:.0} | {} | {} |",
            r.cfg.label(),
            s.ops_per_s,
            s.p50_us,
            s.p99_us,
            s.p999_us,
            s.max_us,
            s.stalls,
            secs.join(" ")
        );
    }

    println!("\n#### Disk use (directory size every second, MiB)\n");
    println!("| round | system | min | max | final | mean | files at the end |");
    println!("|---|---|---|---|---|---|---|");
    for (round, r) in &all {
        let (min, max, fin) = r.m.disk_min_max_final();
        let n = r.m.samples.len().max(1) as f64;
        let mean = r.m.samples.iter().map(|s| mib(s.dir_bytes)).sum::<f64>() / n;
        println!(
            "| {round} | {} | {:.1} | {:.1} | {:.1} | {:.1} | {} |",
            r.cfg.label(),
            mib(min),
            mib(max),
            mib(fin),
            mean,
            r.files.len()
        );
    }

    // Over time, every 10 s (last round).
    println!("\nDirectory size over time (last round, MiB, sample nearest each 10 s mark):\n");
    let head: Vec<String> = last_round.iter().map(|r| r.cfg.label()).collect();
    println!("| t s | {} |", head.join(" | "));
    println!("|---|{}", "---|".repeat(head.len()));
    let t_end = a.secs.ceil() as u64;
    let mut t = 0;
    while t <= t_end {
        let cells: Vec<String> = last_round
            .iter()
            .map(|r| {
                r.m.samples
                    .iter()
                    .min_by(|x, y| {
                        (x.t_s - t as f64)
                            .abs()
                            .total_cmp(&(y.t_s - t as f64).abs())
                    })
                    .map_or("-".into(), |s| format!("{:.0}", mib(s.dir_bytes)))
            })
            .collect();
        println!("| {t} | {} |", cells.join(" | "));
        t += 10;
    }
    if let Some(p) = &a.svg {
        draw_chart(&last_round, p)?;
        println!("\nchart: {}", p.display());
    }
    Ok(())
}

fn recovery(a: &Args, base: &RunConfig, parent: &std::path::Path) -> Result<(), String> {
    println!(
        "\n### Recovery time vs snapshot interval: segments, {} keys x {} B, {} writer(s) at full speed, a snapshot every K s ({}), stopped at a random point in [K, 2K) s (seed {}), `forkless_segments::recover` of the manifest as it was at the stop (page cache warm)\n",
        a.keys, a.value_size, a.writers, a.mode, a.seed
    );
    let mut rng = SplitMix64::new(a.seed);
    let mut rows: Vec<RecoveryResult> = Vec::new();
    for run_no in 0..a.recovery_runs {
        for &k in &a.recovery_intervals {
            let u = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
            let stop = k * (1.0 + u);
            let mut c = base.clone();
            c.trigger = Trigger::Every(Duration::from_secs_f64(k));
            c.duration = Duration::from_secs_f64(stop);
            let dir = run_dir(parent, &format!("recovery-{run_no}-{k}"));
            println!(
                "interval {k} s, stop at {stop:.1} s (load average {}) ...",
                loadavg()
            );
            let r = run_recovery(&dir, &c)?;
            let _ = std::fs::remove_dir_all(&dir);
            if r.keys.0 != r.keys.1 {
                eprintln!(
                    "note: recovered {} keys, {} were live at the stop",
                    r.keys.0, r.keys.1
                );
            }
            rows.push(r);
        }
    }
    println!("\n| interval s | stopped at s | writes/s | snapshots done | start point | cut age at stop s | snapshot MB | log MB replayed | segments | commands replayed | **recover s** | snapshot load alone s | log replay s (difference) | log MB/s | keys recovered = live |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for r in &rows {
        let replay = (r.recover_seconds - r.snapshot_load_seconds).max(0.0);
        println!(
            "| {} | {:.1} | {:.0} | {} | {} | {:.0} | {:.1} | {:.1} | {} | {} | **{:.2}** | {:.2} | {:.2} | {:.0} | {} ({}) |",
            r.interval_s,
            r.stopped_s,
            r.ops_per_s,
            r.snapshots,
            r.start,
            r.cut_age_s,
            mb(r.snapshot_bytes),
            mb(r.log_bytes),
            r.segments,
            r.commands,
            r.recover_seconds,
            r.snapshot_load_seconds,
            replay,
            if replay > 0.0 { mb(r.log_bytes) / replay } else { 0.0 },
            if r.keys.0 == r.keys.1 { "yes" } else { "NO" },
            r.keys.0
        );
    }
    println!("load average: {}", loadavg());
    Ok(())
}
