//! Big-value write latency during a snapshot (issue 19, benches/README.md "Big values").
//!
//! Problem: a snapshot holds `Arc<Value>`s while it serializes them; a writer that changes a
//! held value copies what it shares with the snapshot. For a 1M-element hash, set, sorted set
//! or list that copy was the whole value (58-221 ms per write). This harness builds one key of
//! each type with `--elements` elements, then, during each snapshot (converging and
//! point-in-time, `--rounds` of each), writes to the four keys round-robin on one thread and
//! records every write's latency per type: count, p99.9 and the worst write. An idle phase of
//! the same writes (no snapshot) gives the baseline. Each write also reads the thread's
//! `cow_copied` counter before and after, so the table shows how many writes found their value
//! shared with the snapshot, the worst latency among those, and the most elements and pointers
//! one write copied: a slow write that copied little was descheduled or waited, not copied.
//! The worst *CPU time* of a write (`CLOCK_THREAD_CPUTIME_ID` around it) separates the write's
//! own work from the time the OS kept the thread off a core (dominant on a loaded machine). It also prints the RSS growth per element
//! while each key is built (memory per element of the big forms).
//!
//! Writes alternate an insert and a delete so the values keep their size: HSET new field / HDEL
//! existing field, SADD / SREM, ZADD / ZREM or ZINCRBY (moving a member), RPUSH / LPOP.

use std::time::{Duration, Instant};

use clap::Parser;
use forkless_harness::rss::{loadavg, rss_now};
use forkless_keyspace::types::cow_copied;
use forkless_keyspace::{Config, Keyspace, Session};
use forkless_snapshot::{start_snapshot, Mode, SnapshotOptions};
use forkless_sync::Arc;

/// Big-value write latency during snapshots.
#[derive(Debug, Parser)]
#[command(
    name = "bigvalue",
    after_help = "Example:\n  cargo run --release -p forkless-benches --bin bigvalue -- --elements 1000000"
)]
struct Args {
    /// Elements per big value.
    #[arg(long, default_value_t = 1_000_000)]
    elements: usize,
    /// Snapshots per mode.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Where the snapshot files go (removed afterwards).
    #[arg(long, default_value = "/tmp")]
    dir: std::path::PathBuf,
}

const TYPES: [&str; 4] = ["hash", "set", "zset", "list"];

fn key(t: usize) -> Vec<u8> {
    format!("big:{}", TYPES[t]).into_bytes()
}

/// The i-th write to type `t` (see the module docs).
fn write_cmd(t: usize, i: usize) -> Vec<Vec<u8>> {
    let k = key(t);
    let n = i / 2;
    let s = |x: &str| x.as_bytes().to_vec();
    let insert = i.is_multiple_of(2);
    match (TYPES[t], insert) {
        ("hash", true) => vec![s("HSET"), k, format!("w:{n}").into_bytes(), s("v")],
        ("hash", false) => vec![s("HDEL"), k, format!("e:{n}").into_bytes()],
        ("set", true) => vec![s("SADD"), k, format!("w:{n}").into_bytes()],
        ("set", false) => vec![s("SREM"), k, format!("e:{n}").into_bytes()],
        ("zset", true) => vec![
            s("ZADD"),
            k,
            n.to_string().into_bytes(),
            format!("w:{n}").into_bytes(),
        ],
        // Every other delete is a ZINCRBY that moves the member just added far up the order.
        ("zset", false) if n % 2 == 1 => {
            vec![s("ZINCRBY"), k, s("500000"), format!("w:{n}").into_bytes()]
        }
        ("zset", false) => vec![s("ZREM"), k, format!("e:{n}").into_bytes()],
        (_, true) => vec![s("RPUSH"), k, s("x")],
        (_, false) => vec![s("LPOP"), k],
    }
}

fn exec(ks: &Keyspace, session: &mut Session, argv: &[Vec<u8>]) {
    let refs: Vec<&[u8]> = argv.iter().map(Vec::as_slice).collect();
    ks.execute(session, &refs);
}

/// Builds `big:<type>` with `n` elements `e:<i>`; returns the RSS growth in bytes.
fn build(ks: &Keyspace, t: usize, n: usize) -> u64 {
    let mut session = Session::default();
    let before = rss_now();
    let k = key(t);
    for start in (0..n).step_by(1000) {
        let end = (start + 1000).min(n);
        let mut argv: Vec<Vec<u8>> = match TYPES[t] {
            "hash" => vec![b"HSET".to_vec(), k.clone()],
            "set" => vec![b"SADD".to_vec(), k.clone()],
            "zset" => vec![b"ZADD".to_vec(), k.clone()],
            _ => vec![b"RPUSH".to_vec(), k.clone()],
        };
        for i in start..end {
            let e = format!("e:{i}").into_bytes();
            match TYPES[t] {
                "hash" => argv.extend([e, b"v".to_vec()]),
                "zset" => argv.extend([i.to_string().into_bytes(), e]),
                _ => argv.push(e),
            }
        }
        exec(ks, &mut session, &argv);
    }
    rss_now().saturating_sub(before)
}

/// `struct timespec` of 64-bit Linux.
#[repr(C)]
struct Timespec {
    sec: i64,
    nsec: i64,
}

extern "C" {
    fn clock_gettime(clock: i32, tp: *mut Timespec) -> i32;
}

/// `CLOCK_THREAD_CPUTIME_ID` (Linux).
const CLOCK_THREAD_CPUTIME_ID: i32 = 3;

/// CPU time this thread has used, ns: a write's CPU time excludes the time the OS kept the
/// thread off the CPU, which on a loaded machine dominates the wall-clock worst case.
fn thread_cpu_ns() -> u64 {
    let mut ts = Timespec { sec: 0, nsec: 0 };
    // SAFETY: `ts` is a valid, writable `struct timespec` (two 64-bit fields on 64-bit Linux,
    // the only target of this harness) and the clock id is a constant the kernel knows.
    let rc = unsafe { clock_gettime(CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return 0;
    }
    ts.sec as u64 * 1_000_000_000 + ts.nsec as u64
}

/// Latencies of one type's writes, and what copy-on-write copied.
#[derive(Default)]
struct Lat {
    ns: Vec<u64>,
    /// Writes that copied something (the value was shared with the snapshot).
    shared: u64,
    /// Most elements and pointers one write copied (`cow_copied`).
    max_copied: u64,
    /// Worst latency among the writes that copied something.
    worst_shared_ns: u64,
    /// Most CPU time one write used (wall clock minus time off the CPU).
    worst_cpu_ns: u64,
}

/// One table row: writes, p99.9 us, worst us, worst CPU us, shared writes, worst shared us,
/// max copied.
type Row = (usize, f64, f64, f64, u64, f64, u64);

impl Lat {
    fn add(&mut self, ns: u64, cpu_ns: u64, copied: u64) {
        self.ns.push(ns);
        self.worst_cpu_ns = self.worst_cpu_ns.max(cpu_ns);
        if copied > 0 {
            self.shared += 1;
            self.worst_shared_ns = self.worst_shared_ns.max(ns);
            self.max_copied = self.max_copied.max(copied);
        }
    }

    fn merge(&mut self, o: Lat) {
        self.ns.extend(o.ns);
        self.shared += o.shared;
        self.max_copied = self.max_copied.max(o.max_copied);
        self.worst_shared_ns = self.worst_shared_ns.max(o.worst_shared_ns);
        self.worst_cpu_ns = self.worst_cpu_ns.max(o.worst_cpu_ns);
    }

    fn row(&mut self) -> Row {
        self.ns.sort_unstable();
        let n = self.ns.len();
        if n == 0 {
            return (0, 0.0, 0.0, 0.0, 0, 0.0, 0);
        }
        let p999 = self.ns[(n * 999 / 1000).min(n - 1)];
        (
            n,
            p999 as f64 / 1e3,
            self.ns[n - 1] as f64 / 1e3,
            self.worst_cpu_ns as f64 / 1e3,
            self.shared,
            self.worst_shared_ns as f64 / 1e3,
            self.max_copied,
        )
    }
}

/// Writes round-robin until `done()`; latencies per type.
fn write_until(ks: &Keyspace, counter: &mut usize, done: impl Fn() -> bool) -> [Lat; 4] {
    let mut session = Session::default();
    let mut lat: [Lat; 4] = Default::default();
    while !done() {
        for (t, l) in lat.iter_mut().enumerate() {
            let argv = write_cmd(t, *counter);
            let c0 = cow_copied();
            let cpu0 = thread_cpu_ns();
            let t0 = Instant::now();
            exec(ks, &mut session, &argv);
            let wall = t0.elapsed().as_nanos() as u64;
            l.add(wall, thread_cpu_ns() - cpu0, cow_copied() - c0);
        }
        *counter += 1;
    }
    lat
}

fn main() {
    let args = Args::parse();
    let mut ks = Keyspace::new(Config::seeded(42));
    let obs = forkless_snapshot::install(&mut ks);
    let ks = Arc::new(ks);
    println!("load average: {}", loadavg());
    println!("\n| type | elements | RSS growth | bytes per element |\n|---|---|---|---|");
    for (t, name) in TYPES.iter().enumerate() {
        let grown = build(&ks, t, args.elements);
        println!(
            "| {} | {} | {:.1} MiB | {:.1} |",
            name,
            args.elements,
            grown as f64 / 1048576.0,
            grown as f64 / args.elements as f64
        );
    }
    let mut counter = 0usize;
    let mut rows = Vec::new();
    let t_idle = Instant::now();
    let mut idle = write_until(&ks, &mut counter, || {
        t_idle.elapsed() > Duration::from_millis(500)
    });
    for (t, l) in idle.iter_mut().enumerate() {
        rows.push(("idle".to_string(), t, l.row()));
    }
    for mode in [Mode::Converging, Mode::PointInTime] {
        let name = match mode {
            Mode::Converging => "converging",
            Mode::PointInTime => "point-in-time",
        };
        let mut all: [Lat; 4] = Default::default();
        let mut secs = Vec::new();
        for r in 0..args.rounds {
            let path = args.dir.join(format!("bigvalue-{name}-{r}.rdb"));
            let opts = SnapshotOptions {
                mode,
                ..Default::default()
            };
            let t0 = Instant::now();
            let h = start_snapshot(ks.clone(), &obs, &path, opts).expect("snapshot starts");
            let lat = write_until(&ks, &mut counter, || h.is_finished());
            h.wait().expect("snapshot succeeds");
            secs.push(format!("{:.2}", t0.elapsed().as_secs_f64()));
            let _ = std::fs::remove_file(&path);
            for (a, l) in all.iter_mut().zip(lat) {
                a.merge(l);
            }
        }
        println!("{name} snapshots took {} s", secs.join(" / "));
        for (t, l) in all.iter_mut().enumerate() {
            rows.push((name.to_string(), t, l.row()));
        }
    }
    println!(
        "\n| phase | type | writes | p99.9 | worst | worst CPU time | writes on a shared value | worst of those | most copied by one write |\n|---|---|---|---|---|---|---|---|---|"
    );
    for (phase, t, (n, p999, max, cpu, shared, worst_shared, copied)) in rows {
        println!(
            "| {phase} | {} | {n} | {p999:.1} us | {max:.1} us | {cpu:.1} us | {shared} | {worst_shared:.1} us | {copied} |",
            TYPES[t]
        );
    }
}
