//! A writer's latency while a stock redis-server 7.0.15 replica full-syncs from the primary,
//! forkless server and redis-server side by side (benches/README.md "Replication").
//!
//! For each primary (`forkless server` from `--forkless-bin`, then `redis-server`): start it with
//! persistence off, load `--keys` strings of `--value` bytes (pipelined SETs, the same for both),
//! start `--writers` closed-loop writer connections (one `SET key:<random> <value>` at a time, the
//! latency of each recorded in an HDR histogram per phase), then:
//! * `idle`: `--idle` seconds with no replica;
//! * `sync`: a redis-server replica is started (`--replicaof`, disk-backed load) and the phase
//!   lasts until the primary reports it `online`;
//! * `after`: `--after` seconds of streaming to the online replica.
//!
//! Reported per phase: ops/s, p50, p99, p99.9, max, writes >= 1 ms; the sync's duration; the
//! primary's peak RSS; and the primary's child processes seen during the sync (redis-server
//! forks one; forkless none). Finally the replica's DBSIZE is checked against the primary's.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Parser;
use forkless_harness::hist::{phase_histogram, Summary};
use forkless_harness::redis::{Conn, Reply};
use forkless_redis_proc::{Launch, Process};
use forkless_sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use forkless_sync::{thread, Arc, Mutex};
use hdrhistogram::Histogram;
use rand::{Rng, SeedableRng};

#[derive(Parser, Debug)]
#[command(about = "Writer latency during a replica's full sync: forkless vs redis-server")]
struct Args {
    /// Keys loaded before the measurement.
    #[arg(long, default_value_t = 1_000_000)]
    keys: u64,
    /// Value size in bytes.
    #[arg(long, default_value_t = 100)]
    value: usize,
    /// Writer connections.
    #[arg(long, default_value_t = 1)]
    writers: usize,
    /// Seconds of the idle phase.
    #[arg(long, default_value_t = 5)]
    idle: u64,
    /// Seconds after the replica is online.
    #[arg(long, default_value_t = 3)]
    after: u64,
    /// The forkless binary (`forkless server` is run).
    #[arg(long, default_value = "target/release/forkless")]
    forkless_bin: PathBuf,
    /// Skip the redis-server primary.
    #[arg(long)]
    no_redis: bool,
}

const PHASES: [&str; 3] = ["idle", "sync", "after"];

struct Proc {
    server: Process,
    port: u16,
    _dir: tempdir::Dir,
}

mod tempdir {
    /// A scratch directory removed on drop.
    pub(crate) struct Dir(pub std::path::PathBuf);
    impl Dir {
        pub(crate) fn new(tag: &str) -> Dir {
            let p = std::env::temp_dir().join(format!(
                "forkless-repl-{tag}-{}-{}",
                std::process::id(),
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos())
            ));
            std::fs::create_dir_all(&p).expect("temp dir");
            Dir(p)
        }
    }
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

fn spawn(bin: &std::path::Path, pre: &[&str], tag: &str, extra: &[String]) -> Proc {
    let dir = tempdir::Dir::new(tag);
    let server = Launch::program(bin, pre, &dir.0)
        .args(["--appendonly", "no", "--loglevel", "warning"])
        .args(extra)
        .ready_within(Duration::from_secs(20))
        .start()
        .unwrap_or_else(|e| panic!("starting {}: {e}", bin.display()));
    Proc {
        port: server.port(),
        server,
        _dir: dir,
    }
}

fn load(port: u16, keys: u64, value: &[u8]) {
    let mut c = Conn::connect(port).expect("connect");
    let mut pending = 0;
    for i in 0..keys {
        c.queue(&[b"SET".as_slice(), format!("key:{i}").as_bytes(), value]);
        pending += 1;
        if pending == 1000 || i + 1 == keys {
            c.flush().expect("flush");
            for _ in 0..pending {
                c.read_reply().expect("reply");
            }
            pending = 0;
        }
    }
}

fn children_of(pid: u32) -> usize {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .map(|s| s.split_whitespace().count())
        .unwrap_or(0)
}

fn vm_hwm(pid: u32) -> u64 {
    forkless_harness::rss::status_field(&format!("/proc/{pid}/status"), "VmHWM").unwrap_or(0)
}

struct Outcome {
    name: &'static str,
    phases: Vec<Summary>,
    sync_s: f64,
    children_max: usize,
    rss_peak: u64,
    dbsize: (u64, u64),
}

fn run(name: &'static str, primary: Proc, args: &Args) -> Outcome {
    let value = vec![b'v'; args.value];
    let t0 = Instant::now();
    load(primary.port, args.keys, &value);
    eprintln!(
        "{name}: loaded {} keys in {:.1} s",
        args.keys,
        t0.elapsed().as_secs_f64()
    );
    let phase = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let hists: Arc<Mutex<Vec<Histogram<u64>>>> = Arc::new(Mutex::new(
        (0..PHASES.len()).map(|_| phase_histogram()).collect(),
    ));
    let mut writers = Vec::new();
    for w in 0..args.writers {
        let (phase, stop, hists) = (phase.clone(), stop.clone(), hists.clone());
        let port = primary.port;
        let keys = args.keys;
        let value = value.clone();
        writers.push(thread::spawn(move || {
            let mut c = Conn::connect(port).expect("connect");
            let mut rng = rand::rngs::StdRng::seed_from_u64(w as u64);
            let mut local: Vec<Histogram<u64>> =
                (0..PHASES.len()).map(|_| phase_histogram()).collect();
            while !stop.load(Ordering::Relaxed) {
                let k = format!("key:{}", rng.gen_range(0..keys));
                let p = phase.load(Ordering::Relaxed);
                let t = Instant::now();
                let r = c
                    .call(&[b"SET".as_slice(), k.as_bytes(), &value])
                    .expect("SET");
                let ns = t.elapsed().as_nanos() as u64;
                assert_eq!(r, Reply::Simple(b"OK".to_vec()));
                let _ = local[p].record(ns.max(1));
            }
            let mut g = hists.lock();
            for (a, b) in g.iter_mut().zip(&local) {
                a.add(b).expect("same bounds");
            }
        }));
    }
    let mut walls = [Duration::ZERO; 3];
    let t = Instant::now();
    thread::sleep(Duration::from_secs(args.idle));
    walls[0] = t.elapsed();
    // The replica.
    phase.store(1, Ordering::Relaxed);
    let t = Instant::now();
    let replica = spawn(
        std::path::Path::new("redis-server"),
        &[],
        "replica",
        &[
            "--replicaof".into(),
            "127.0.0.1".into(),
            primary.port.to_string(),
            "--repl-diskless-load".into(),
            "disabled".into(),
        ],
    );
    let pid = primary.server.pid();
    let mut children_max = 0;
    let mut mon = Conn::connect(primary.port).expect("connect");
    loop {
        children_max = children_max.max(children_of(pid));
        let info = mon.info("replication").expect("info");
        if info
            .iter()
            .any(|(k, v)| k.starts_with("slave") && v.contains("state=online"))
        {
            break;
        }
        if t.elapsed() > Duration::from_secs(600) {
            panic!("{name}: the replica did not come online in 10 minutes");
        }
        thread::sleep(Duration::from_millis(10));
    }
    walls[1] = t.elapsed();
    let sync_s = walls[1].as_secs_f64();
    phase.store(2, Ordering::Relaxed);
    let t = Instant::now();
    thread::sleep(Duration::from_secs(args.after));
    walls[2] = t.elapsed();
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.join().expect("writer");
    }
    // Let the replica catch up, then compare sizes.
    let mut rc = Conn::connect(replica.port).expect("connect replica");
    let want = mon
        .info_u64("replication", "master_repl_offset")
        .unwrap_or(0);
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if rc.info_u64("replication", "slave_repl_offset").unwrap_or(0) >= want {
            break;
        }
        thread::sleep(Duration::from_millis(20));
    }
    let size = |c: &mut Conn| match c.call(&["DBSIZE"]) {
        Ok(Reply::Integer(n)) => n as u64,
        _ => 0,
    };
    let dbsize = (size(&mut mon), size(&mut rc));
    let hists = hists.lock();
    Outcome {
        name,
        phases: hists
            .iter()
            .zip(walls)
            .map(|(h, w)| Summary::from_histogram(h, w))
            .collect(),
        sync_s,
        children_max,
        rss_peak: vm_hwm(pid),
        dbsize,
    }
}

fn main() {
    let args = Args::parse();
    let mut outcomes = Vec::new();
    let fl = spawn(&args.forkless_bin, &["server"], "forkless", &[]);
    outcomes.push(run("forkless", fl, &args));
    if !args.no_redis {
        let rs = spawn(std::path::Path::new("redis-server"), &[], "redis", &[]);
        outcomes.push(run("redis-server", rs, &args));
    }
    println!(
        "keys {} x {} B, {} writer(s), load average {}",
        args.keys,
        args.value,
        args.writers,
        forkless_harness::rss::loadavg()
    );
    println!("| primary | phase | ops/s | p50 us | p99 us | p99.9 us | max us | >=1 ms | p99.9 vs idle |");
    println!("|---|---|---|---|---|---|---|---|---|");
    for o in &outcomes {
        for (i, s) in o.phases.iter().enumerate() {
            println!(
                "| {} | {} | {:.0} | {:.1} | {:.1} | {:.1} | {:.0} | {} | {} |",
                o.name,
                PHASES[i],
                s.ops_per_s,
                s.p50_us,
                s.p99_us,
                s.p999_us,
                s.max_us,
                s.stalls,
                if i == 0 {
                    String::new()
                } else {
                    format!("{:.2}x", s.p999_ratio(&o.phases[0]))
                }
            );
        }
    }
    println!();
    println!("| primary | sync (s) | child processes during sync | peak RSS (MiB) | DBSIZE primary / replica |");
    println!("|---|---|---|---|---|");
    for o in &outcomes {
        println!(
            "| {} | {:.2} | {} | {:.0} | {} / {} |",
            o.name,
            o.sync_s,
            o.children_max,
            o.rss_peak as f64 / (1 << 20) as f64,
            o.dbsize.0,
            o.dbsize.1
        );
        assert_eq!(o.dbsize.0, o.dbsize.1, "{}: replica DBSIZE differs", o.name);
    }
}
