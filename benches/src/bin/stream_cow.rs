//! XADD latency on a long stream while a snapshot holds it (benches/README.md "Streams under a
//! snapshot", issue 21's big-value rule).
//!
//! One keyspace (default config, snapshot observer installed) holds one stream of `--entries`
//! entries (`XADD s <i>-0 f <16 B>`). Then, per phase, `--samples` or more XADDs to that stream,
//! one every `--gap-us` microseconds, each timed around `Keyspace::execute`:
//! * `idle`: no snapshot;
//! * `converging` / `point-in-time`: from the snapshot's start until it has finished (the walk
//!   hands the stream's `Arc` to the worker, which holds it while it serializes the 1M entries;
//!   a point-in-time snapshot also takes it on the first write). The first XADD that meets the
//!   held value pays the copy-on-write: with nodes behind `Arc` a pointer per node plus the one
//!   node it appends to.
//!
//! For reference it also times a deep copy of every node of a stream of the same shape (what a
//! write paid when the stream was copied whole) and prints the worst latency of each phase.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;
use forkless_keyspace::types::Stream;
use forkless_keyspace::{Config, Keyspace, Reply, Session};
use forkless_rdb::stream::{Node, StreamId};
use forkless_snapshot::{start_snapshot, Mode, SnapshotOptions};

/// XADD latency on a long stream under a snapshot.
#[derive(Debug, Parser)]
#[command(
    name = "stream_cow",
    after_help = "Example:\n  cargo run --release -p forkless-benches --bin stream_cow -- --entries 1000000"
)]
struct Args {
    /// Entries in the stream.
    #[arg(long, default_value_t = 1_000_000)]
    entries: u64,
    /// Minimum XADDs per phase.
    #[arg(long, default_value_t = 50)]
    samples: usize,
    /// Pause between two XADDs, microseconds.
    #[arg(long, default_value_t = 200)]
    gap_us: u64,
}

fn xadd(ks: &Keyspace, s: &mut Session, id: u64) -> Duration {
    let id = format!("{id}-0");
    let t = Instant::now();
    let r = ks.execute(
        s,
        &[b"XADD", b"s", id.as_bytes(), b"f", b"0123456789abcdef"],
    );
    let d = t.elapsed();
    assert!(matches!(r, Reply::Bulk(_)), "XADD failed: {r:?}");
    d
}

struct Phase {
    name: &'static str,
    samples: Vec<Duration>,
    snapshot: Option<Duration>,
}

fn report(p: &Phase) {
    let mut v = p.samples.clone();
    v.sort();
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    println!(
        "{:<14} {:>7} {:>10.1} {:>10.1} {:>12.1} {:>14}",
        p.name,
        v.len(),
        us(v[v.len() / 2]),
        us(v[v.len() * 99 / 100]),
        us(v[v.len() - 1]),
        p.snapshot
            .map(|d| format!("{:.0} ms", d.as_secs_f64() * 1e3))
            .unwrap_or_else(|| "-".into()),
    );
}

fn main() -> ExitCode {
    let args = Args::parse();
    let mut ks = Keyspace::new(Config::seeded(42));
    let obs = forkless_snapshot::install(&mut ks);
    let ks = std::sync::Arc::new(ks);
    let mut session = Session::default();
    let mut next = 1u64;
    let t = Instant::now();
    while next <= args.entries {
        xadd(&ks, &mut session, next);
        next += 1;
    }
    eprintln!("built {} entries in {:.1?}", args.entries, t.elapsed());

    let dir = std::env::temp_dir().join(format!("forkless-stream-cow-{}", std::process::id()));
    if let Err(e) = std::fs::create_dir_all(&dir) {
        eprintln!("creating {}: {e}", dir.display());
        return ExitCode::FAILURE;
    }
    let gap = Duration::from_micros(args.gap_us);
    let mut phases = Vec::new();
    let mut idle = Vec::new();
    while idle.len() < args.samples {
        idle.push(xadd(&ks, &mut session, next));
        next += 1;
        std::thread::sleep(gap);
    }
    phases.push(Phase {
        name: "idle",
        samples: idle,
        snapshot: None,
    });
    for (mode, name) in [
        (Mode::Converging, "converging"),
        (Mode::PointInTime, "point-in-time"),
    ] {
        let path = dir.join(format!("{name}.rdb"));
        let opts = SnapshotOptions {
            mode,
            ..Default::default()
        };
        let t = Instant::now();
        let h = match start_snapshot(ks.clone(), &obs, &path, opts) {
            Ok(h) => h,
            Err(e) => {
                eprintln!("starting the {name} snapshot: {e}");
                return ExitCode::FAILURE;
            }
        };
        let mut samples = Vec::new();
        while !h.is_finished() || samples.len() < args.samples {
            samples.push(xadd(&ks, &mut session, next));
            next += 1;
            std::thread::sleep(gap);
        }
        if let Err(e) = h.wait() {
            eprintln!("{name} snapshot: {e}");
            return ExitCode::FAILURE;
        }
        phases.push(Phase {
            name,
            samples,
            snapshot: Some(t.elapsed()),
        });
    }
    let _ = std::fs::remove_dir_all(&dir);

    // Last (freeing a million small allocations before the phases would leave glibc's fast
    // bins full, and the next large malloc would consolidate them: an 80 ms stall of its own).
    // The reference: a deep copy of every node of a stream of the same shape.
    let mut model = Stream::new();
    for i in 1..=args.entries {
        let _ = model.append(
            StreamId::new(i, 0),
            vec![b"f".to_vec()],
            vec![b"0123456789abcdef".to_vec()],
        );
    }
    let t = Instant::now();
    let deep: Vec<Node> = model.nodes().cloned().collect();
    let deep_time = t.elapsed();
    drop(deep);
    let t = Instant::now();
    let shallow = model.clone();
    let shallow_time = t.elapsed();
    drop(shallow);
    drop(model);

    println!(
        "stream of {} entries; XADD latency (us), one every {} us",
        args.entries, args.gap_us
    );
    println!(
        "{:<14} {:>7} {:>10} {:>10} {:>12} {:>14}",
        "phase", "XADDs", "p50", "p99", "worst", "snapshot"
    );
    for p in &phases {
        report(p);
    }
    println!(
        "reference: deep copy of every node {:.1} ms; clone of the stream (Arc per node) {:.2} ms",
        deep_time.as_secs_f64() * 1e3,
        shallow_time.as_secs_f64() * 1e3
    );
    ExitCode::SUCCESS
}
