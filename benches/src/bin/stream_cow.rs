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
//! After 1,000 unmeasured steps (warm-up). With `--pel` (default on) the stream also has a group `g` whose PEL holds every entry (one
//! `XREADGROUP ... COUNT <entries>`), and each step also times an `XACK s g <id>` of a pending
//! entry from the middle of the PEL: a write to the group's PEL, which sits in shared chunks.
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
    /// Pause between two steps, microseconds.
    #[arg(long, default_value_t = 200)]
    gap_us: u64,
    /// Also a group whose PEL holds every entry, and an XACK per step.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pel: bool,
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

fn xack(ks: &Keyspace, s: &mut Session, id: u64) -> Duration {
    let id = format!("{id}-0");
    let t = Instant::now();
    let r = ks.execute(s, &[b"XACK", b"s", b"g", id.as_bytes()]);
    let d = t.elapsed();
    assert_eq!(r, Reply::Integer(1), "XACK {id}");
    d
}

struct Phase {
    name: String,
    samples: Vec<Duration>,
    snapshot: Option<Duration>,
}

/// Steps of one phase: each an XADD and, with a PEL, an XACK.
struct Steps<'a> {
    ks: &'a Keyspace,
    session: Session,
    next: u64,
    next_ack: u64,
    pel: bool,
}

impl Steps<'_> {
    fn step(&mut self, add: &mut Vec<Duration>, ack: &mut Vec<Duration>) {
        add.push(xadd(self.ks, &mut self.session, self.next));
        self.next += 1;
        if self.pel {
            ack.push(xack(self.ks, &mut self.session, self.next_ack));
            self.next_ack += 1;
        }
    }
}

fn report(p: &Phase) {
    if p.samples.is_empty() {
        return;
    }
    let mut v = p.samples.clone();
    v.sort();
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    println!(
        "{:<22} {:>7} {:>10.1} {:>10.1} {:>12.1} {:>14}",
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
    let t = Instant::now();
    for i in 1..=args.entries {
        xadd(&ks, &mut session, i);
    }
    if args.pel {
        ks.execute(&mut session, &[b"XGROUP", b"CREATE", b"s", b"g", b"0"]);
        let count = args.entries.to_string();
        let r = ks.execute(
            &mut session,
            &[
                b"XREADGROUP",
                b"GROUP",
                b"g",
                b"c",
                b"COUNT",
                count.as_bytes(),
                b"STREAMS",
                b"s",
                b">",
            ],
        );
        drop(r);
    }
    // Freeing that reply (millions of small allocations) left glibc's fast bins full; the next
    // malloc of a large-bin size on this thread consolidates them all (~200 ms, measured with
    // perf: `malloc_consolidate`). Pay it here, not in the first measured phase that happens
    // to allocate 1 KiB (a converging snapshot's delta buffer grows on the writer's thread).
    drop(std::hint::black_box(Vec::<u8>::with_capacity(64 << 10)));
    eprintln!(
        "built {} entries (PEL: {}) in {:.1?}",
        args.entries,
        args.pel,
        t.elapsed()
    );

    let dir = std::env::temp_dir().join(format!("forkless-stream-cow-{}", std::process::id()));
    if let Err(e) = std::fs::create_dir_all(&dir) {
        eprintln!("creating {}: {e}", dir.display());
        return ExitCode::FAILURE;
    }
    let gap = Duration::from_micros(args.gap_us);
    let mut steps = Steps {
        ks: &ks,
        session,
        next: args.entries + 1,
        next_ack: args.entries / 2,
        pel: args.pel,
    };
    // Warm-up, not measured: right after the set-up (a million entries read into the PEL) the
    // first few dozen writes are slow (~0.6 ms each, allocator state), snapshot or not.
    for _ in 0..1000 {
        steps.step(&mut Vec::new(), &mut Vec::new());
        std::thread::sleep(gap);
    }
    let mut phases = Vec::new();
    let (mut add, mut ack) = (Vec::new(), Vec::new());
    while add.len() < args.samples {
        steps.step(&mut add, &mut ack);
        std::thread::sleep(gap);
    }
    phases.push(Phase {
        name: "idle XADD".into(),
        samples: add,
        snapshot: None,
    });
    phases.push(Phase {
        name: "idle XACK".into(),
        samples: ack,
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
        let (mut add, mut ack) = (Vec::new(), Vec::new());
        while !h.is_finished() || add.len() < args.samples {
            steps.step(&mut add, &mut ack);
            std::thread::sleep(gap);
        }
        if let Err(e) = h.wait() {
            eprintln!("{name} snapshot: {e}");
            return ExitCode::FAILURE;
        }
        let took = Some(t.elapsed());
        phases.push(Phase {
            name: format!("{name} XADD"),
            samples: add,
            snapshot: took,
        });
        phases.push(Phase {
            name: format!("{name} XACK"),
            samples: ack,
            snapshot: took,
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
        "stream of {} entries{}; latency (us), one step every {} us",
        args.entries,
        if args.pel {
            ", all pending in group g"
        } else {
            ""
        },
        args.gap_us
    );
    println!(
        "{:<22} {:>7} {:>10} {:>10} {:>12} {:>14}",
        "phase", "calls", "p50", "p99", "worst", "snapshot"
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
