//! `forkless demo`: build a dataset, run writers at full speed, take forkless snapshots while
//! they run, verify each snapshot by replaying it, and show what the writers saw (throughput,
//! p50/p99/p99.9/max latency idle vs during), the snapshot's cost (duration, MB/s, peak extra
//! memory), optionally beside redis-server's `BGSAVE` on the same dataset and load.
//!
//! Problem: a claim like "snapshots without fork() do not hurt writers" needs a one-command
//! demonstration with real numbers on the user's machine. The measurement itself is shared with
//! the latency harness (`forkless_harness::run`, `forkless_harness::redis`); this module adds
//! the command line, progress bars (indicatif, on stderr, hidden when it is not a terminal),
//! the summary table, `report.json` ([`report`]) and the `latency.svg` chart ([`chart`]).

mod chart;
mod report;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use forkless_harness::hist::ratio;
use forkless_harness::redis::RedisReport;
use forkless_harness::run::{mode_name, run_keep, Event, RunConfig, RunReport};
use forkless_harness::workload::Dataset;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::args::{self, DemoModes};
use crate::error::CliError;

/// Arguments of `forkless demo`.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  forkless demo\n  forkless demo --keys 200000 --writers 1 --mode pit --report /tmp/demo\n  forkless demo --compare-redis --report /tmp/demo   # needs redis-server in PATH"
)]
pub(crate) struct DemoArgs {
    /// Keys in the dataset (mixed types: strings, lists, sets, sorted sets, hashes).
    #[arg(long, default_value_t = 1_000_000)]
    pub keys: u64,
    /// Writer threads running random SET/INCR/HSET at full speed.
    #[arg(long, default_value_t = 2)]
    pub writers: usize,
    /// Which snapshots to take.
    #[arg(long, value_parser = args::demo_modes(), default_value_t = args::demo_modes_default())]
    pub mode: DemoModes,
    /// Directory for the snapshot files (default: a temporary directory, removed at the end).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Write report.json and latency.svg into DIR.
    #[arg(long, value_name = "DIR")]
    pub report: Option<PathBuf>,
    /// Run the same dataset and writes against redis-server with BGSAVE, for comparison.
    #[arg(long)]
    pub compare_redis: bool,
    /// Seconds of the idle (no snapshot) phase.
    #[arg(long, default_value_t = 3.0)]
    pub idle_secs: f64,
    /// Bytes per string value (collections: per 4 elements).
    #[arg(long, default_value_t = 100)]
    pub value_size: usize,
}

/// What the demo measured, on both sides.
#[derive(Debug)]
pub(crate) struct DemoOutcome {
    /// The forkless run.
    pub ours: RunReport,
    /// The redis-server run, when asked for and installed.
    pub redis: Option<RedisReport>,
    /// Why there is no redis run although asked for.
    pub redis_note: Option<String>,
    /// The dataset.
    pub dataset: Dataset,
    /// Writer threads.
    pub writers: usize,
}

fn bar() -> ProgressBar {
    // Hidden by indicatif when stderr is not a terminal: piped output stays clean.
    let b = ProgressBar::with_draw_target(Some(1), ProgressDrawTarget::stderr());
    if let Ok(s) = ProgressStyle::with_template("{msg:>28} [{bar:40}] {pos}/{len} ({elapsed})") {
        b.set_style(s.progress_chars("=> "));
    }
    b
}

fn on_event(b: &ProgressBar, e: Event) {
    match e {
        Event::Build { done, total } => {
            if b.length() != Some(total) {
                b.reset();
                b.set_length(total);
                b.set_message("building dataset (keys)");
            }
            b.set_position(done);
        }
        Event::Phase(p) => {
            b.reset();
            b.set_length(1);
            b.set_message(format!("{p} (writers running)"));
        }
        Event::Snapshot { mode, done, total } => {
            if total > 0 {
                b.set_length(total);
                b.set_position(done.min(total));
                b.set_message(format!("{} snapshot (buckets)", mode_name(mode)));
            }
        }
        Event::SnapshotDone(_) => {}
        Event::Verify(m) => {
            b.reset();
            b.set_length(1);
            b.set_message(format!("verifying {} snapshot", mode_name(m)));
        }
    }
}

/// Run the demo and print its table on stdout. Any failure (bad arguments, a failed run or
/// verification) is an error, printed as `forkless: demo: <what>` with exit status 1.
pub(crate) fn run(args: DemoArgs) -> Result<ExitCode, CliError> {
    demo(args)
        .map(|()| ExitCode::SUCCESS)
        .map_err(|e| CliError::new("demo", e))
}

fn demo(args: DemoArgs) -> Result<(), String> {
    if args.keys == 0 {
        return Err("--keys must be at least 1".into());
    }
    if !(args.idle_secs.is_finite() && args.idle_secs >= 0.0) {
        return Err(format!("--idle-secs {}: not a duration", args.idle_secs));
    }
    let modes = args.mode.0.clone();
    let tmp = std::env::temp_dir().join(format!("forkless-demo-{}", std::process::id()));
    let out_dir = args.out.clone().unwrap_or_else(|| tmp.join("snapshots"));
    let dataset = Dataset {
        keys: args.keys,
        value_size: args.value_size,
        mixed: true,
    };
    let cfg = RunConfig {
        dataset,
        writers: args.writers.max(1),
        idle: Duration::from_secs_f64(args.idle_secs),
        modes,
        out_dir,
        verify: true,
        window: Duration::from_millis(100),
        attribute: false,
        tail_us: 0,
        snapshot_threads: 0,
        batch_buckets: 0,
    };
    let b = bar();
    let (ours, leftovers) = match run_keep(&cfg, &|e| on_event(&b, e)) {
        Ok((ours, leftovers)) => (Ok(ours), Some(leftovers)),
        Err(e) => (Err(e), None),
    };
    let mut leftovers = leftovers;
    if args.compare_redis {
        // Free our keyspaces before redis-server is measured.
        drop(leftovers.take());
    }
    let mut outcome = ours.map(|ours| DemoOutcome {
        ours,
        redis: None,
        redis_note: None,
        dataset,
        writers: cfg.writers,
    });
    if let (Ok(o), true) = (&mut outcome, args.compare_redis) {
        let dir = tmp.join("redis");
        let r = std::fs::create_dir_all(&dir)
            .map_err(|e| format!("creating {}: {e}", dir.display()))
            .and_then(|()| {
                forkless_harness::redis::run(
                    &dir,
                    dataset,
                    cfg.writers,
                    cfg.idle,
                    cfg.window,
                    &|e| on_event(&b, e),
                )
            });
        match r {
            Ok(Some(r)) => o.redis = Some(r),
            Ok(None) => {
                o.redis_note = Some(
                    "redis-server is not installed (not found in PATH): --compare-redis skipped"
                        .into(),
                )
            }
            Err(e) => o.redis_note = Some(format!("redis-server comparison failed: {e}")),
        }
    }
    b.finish_and_clear();
    let _ = std::fs::remove_dir_all(&tmp);
    let outcome = outcome?;
    if let Some(n) = &outcome.redis_note {
        eprintln!("forkless demo: {n}");
    }
    print!("{}", table(&outcome));
    if let Some(dir) = &args.report {
        std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
        let json = report::to_json(&outcome);
        let path = dir.join("report.json");
        let text = serde_json::to_string_pretty(&json).map_err(|e| format!("report.json: {e}"))?;
        std::fs::write(&path, text + "\n")
            .map_err(|e| format!("writing {}: {e}", path.display()))?;
        let svg = dir.join("latency.svg");
        chart::draw(&outcome, &svg)?;
        println!("report: {} and {}", path.display(), svg.display());
    }
    // The process ends now: the OS takes the keyspaces' memory back at once, which is faster
    // than freeing millions of allocations one by one (about 2 s for the default dataset).
    std::mem::forget(leftovers);
    let failed: Vec<String> = outcome
        .ours
        .snapshots
        .iter()
        .filter_map(|s| match &s.verified {
            Some(Err(e)) => Some(format!("{}: {e}", mode_name(s.result.mode))),
            _ => None,
        })
        .collect();
    if failed.is_empty() {
        Ok(())
    } else {
        Err(format!("verification failed: {}", failed.join("; ")))
    }
}

fn mib(b: u64) -> String {
    format!("{:.1} MiB", b as f64 / (1024.0 * 1024.0))
}

/// The summary table.
pub(crate) fn table(o: &DemoOutcome) -> String {
    use std::fmt::Write;
    let mut t = String::new();
    let ours = &o.ours;
    let _ = writeln!(
        t,
        "dataset: {} keys (mixed types, {} B values), {} in memory, built in {:.1} s; {} writer thread(s)",
        ours.keys,
        o.dataset.value_size,
        mib(ours.dataset_bytes),
        ours.build_seconds,
        o.writers
    );
    let _ = writeln!(
        t,
        "\nwrites            {:>14} {:>10} {:>10} {:>10} {:>10} {:>8}",
        "ops/s", "p50 us", "p99 us", "p99.9 us", "max us", "stalls"
    );
    let mut row = |name: &str, s: &forkless_harness::hist::Summary| {
        let _ = writeln!(
            t,
            "  {name:<16}{:>14.0} {:>10.2} {:>10.2} {:>10.2} {:>10.1} {:>8}",
            s.ops_per_s, s.p50_us, s.p99_us, s.p999_us, s.max_us, s.stalls
        );
    };
    for p in &ours.phases {
        row(&p.name, &p.summary);
    }
    if let Some(r) = &o.redis {
        for p in &r.phases {
            row(&format!("redis {}", p.name), &p.summary);
        }
    }
    let _ = writeln!(
        t,
        "  (stalls = writes that took >= 1 ms; redis latencies include the loopback round trip)"
    );
    let _ = writeln!(
        t,
        "\nsnapshot          {:>10} {:>12} {:>9} {:>9} {:>14} {:>10} {:>10}",
        "keys", "bytes", "seconds", "MB/s", "peak extra", "tput x", "p99.9 x"
    );
    let idle = &ours.phases[0].summary;
    for (s, p) in ours.snapshots.iter().zip(&ours.phases[1..]) {
        let r = &s.result;
        let _ = writeln!(
            t,
            "  {:<16}{:>10} {:>12} {:>9.2} {:>9.1} {:>7} {:>5.1}% {:>10.2} {:>10.2}",
            mode_name(r.mode),
            r.keys,
            r.total_bytes,
            r.duration.as_secs_f64(),
            r.mb_per_s,
            mib(r.peak_extra_bytes).replace(" MiB", "M"),
            100.0 * ratio(r.peak_extra_bytes as f64, ours.dataset_bytes as f64),
            p.summary.throughput_ratio(idle),
            p.summary.p999_ratio(idle),
        );
    }
    if let Some(r) = &o.redis {
        let (i, b) = (&r.phases[0].summary, &r.phases[1].summary);
        let _ = writeln!(
            t,
            "  {:<16}{:>10} {:>12} {:>9.2} {:>9.1} {:>7} {:>5.1}% {:>10.2} {:>10.2}   (fork {} us; peak extra = COW)",
            "redis BGSAVE",
            r.keys,
            r.rdb_bytes,
            r.bgsave_seconds,
            ratio(r.rdb_bytes as f64 / 1e6, r.bgsave_seconds),
            mib(r.cow_bytes).replace(" MiB", "M"),
            100.0 * ratio(r.cow_bytes as f64, r.dataset_bytes as f64),
            b.throughput_ratio(i),
            b.p999_ratio(i),
            r.fork_usec
        );
    }
    let _ = writeln!(
        t,
        "  (tput x = write throughput during / idle; p99.9 x = p99.9 during / idle)"
    );
    let _ = writeln!(
        t,
        "\nverification (replay into a fresh keyspace, compare with the state at the cut):"
    );
    for s in &ours.snapshots {
        let v = match &s.verified {
            Some(Ok(m)) => m.clone(),
            Some(Err(e)) => format!("FAILED: {e}"),
            None => "not run".into(),
        };
        let _ = writeln!(t, "  {:<16}{v}", mode_name(s.result.mode));
    }
    let _ = write!(t, "{}", timings(&ours.timings));
    if let Some(n) = &o.redis_note {
        let _ = writeln!(t, "\n{n}");
    }
    t
}

/// The wall time of each step: one line for the measured run, one per verified mode.
pub(crate) fn timings(steps: &[(String, f64)]) -> String {
    use std::fmt::Write;
    let total: f64 = steps.iter().map(|(_, s)| s).sum();
    let mut t = format!("\ntime: {total:.1} s in all\n ");
    let mut group = "";
    for (name, secs) in steps {
        let (g, step) = match name.split_once(": ") {
            Some((g, step)) => (g, step),
            None => ("", name.as_str()),
        };
        if g != group {
            let _ = write!(t, "\n  {g}:");
            group = g;
        } else if !t.ends_with(' ') {
            t.push(',');
        }
        let _ = write!(t, " {step} {secs:.1} s");
    }
    t.push('\n');
    t
}
