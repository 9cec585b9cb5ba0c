//! Big-value write latency during a snapshot (issue 19, benches/README.md "Big values").
//!
//! Problem: a snapshot holds `Arc<Value>`s while it serializes them; a writer that changes a
//! held value copies what it shares with the snapshot. For a 1M-element hash, set, sorted set
//! or list that copy was the whole value (58-221 ms per write). This harness builds one key of
//! each type with `--elements` elements, then, during each snapshot (converging and
//! point-in-time, `--rounds` of each), writes to the four keys round-robin on one thread and
//! records every write's latency per type: count, p99.9 and the worst write. An idle phase of
//! the same writes (no snapshot) gives the baseline. It also prints the RSS growth per element
//! while each key is built (memory per element of the big forms).
//!
//! Writes alternate an insert and a delete so the values keep their size: HSET new field / HDEL
//! existing field, SADD / SREM, ZADD / ZREM, RPUSH / LPOP.

use std::time::{Duration, Instant};

use clap::Parser;
use forkless_benches::rss::{loadavg, rss_now};
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

#[derive(Default)]
struct Lat {
    ns: Vec<u64>,
}

impl Lat {
    fn row(&mut self) -> (usize, f64, f64) {
        self.ns.sort_unstable();
        let n = self.ns.len();
        if n == 0 {
            return (0, 0.0, 0.0);
        }
        let p999 = self.ns[(n * 999 / 1000).min(n - 1)];
        (n, p999 as f64 / 1e3, self.ns[n - 1] as f64 / 1e3)
    }
}

/// Writes round-robin until `done()`; latencies per type.
fn write_until(ks: &Keyspace, counter: &mut usize, done: impl Fn() -> bool) -> [Lat; 4] {
    let mut session = Session::default();
    let mut lat: [Lat; 4] = Default::default();
    while !done() {
        for (t, l) in lat.iter_mut().enumerate() {
            let argv = write_cmd(t, *counter);
            let t0 = Instant::now();
            exec(ks, &mut session, &argv);
            l.ns.push(t0.elapsed().as_nanos() as u64);
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
                a.ns.extend(l.ns);
            }
        }
        println!("{name} snapshots took {} s", secs.join(" / "));
        for (t, l) in all.iter_mut().enumerate() {
            rows.push((name.to_string(), t, l.row()));
        }
    }
    println!("\n| phase | type | writes | p99.9 | worst |\n|---|---|---|---|---|");
    for (phase, t, (n, p999, max)) in rows {
        println!(
            "| {phase} | {} | {n} | {p999:.1} us | {max:.1} us |",
            TYPES[t]
        );
    }
}
