//! Crash test of the AOF and the forkless rewrite: a SIGKILL at any point loses no acknowledged
//! write (per fsync policy), and recovery never fails.
//!
//! # Problem
//! The rewrite (`src/rewrite.rs`) and the directory (`src/dir.rs`) claim that a crash at any step
//! (mid-append, mid-rewrite, between the base rename and the manifest rename, mid-deletion of
//! history files) leaves a directory that loads to a state containing every acknowledged write.
//! In-process tests cannot kill the engine between two system calls; a child process can.
//!
//! # Method (redb's `tests/crash_consistency.rs` idea, with a real process kill)
//! The test binary re-executes itself (`FORKLESS_CRASH_CHILD=<dir>`, `--exact crash::crash_child`). The
//! child opens (or creates) the AOF directory, runs two writer threads and a thread that rewrites
//! in a loop, and prints one line per acknowledged write to its stdout, a pipe the parent reads
//! (what was written to the pipe survives the kill). The parent SIGKILLs it after a random delay,
//! loads the directory into a fresh keyspace and checks it against the acknowledged log, then the
//! next round continues on the same directory.
//!
//! Each writer thread `t` issues a fixed sequence of writes `n = 0, 1, 2, ...`: write `n` goes to
//! database `n % 3` and is `INCR ctr:t` when `(n / 3)` is even, else `RPUSH list:t n`. So the
//! state after the first `P` writes of a thread is known exactly ([`expected`]), and `P` can be
//! read off a recovered keyspace (counters plus list lengths). Recovery must equal the state of
//! some prefix per thread (nothing lost in the middle, nothing duplicated or reordered) that
//! covers every acknowledged write (`always`), or every write acknowledged more than 3 s before
//! the kill (`everysec`: the writer postpones at most 2 s behind a running fsync).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use forkless_aof::{
    load_dir, rewrite, AofDir, AofDirOptions, FsyncPolicy, KeyspaceTarget, LoadOptions,
    WriterOptions,
};
use forkless_keyspace::{Config, Keyspace, Reply, Session};
use forkless_sync::atomic::{AtomicBool, Ordering};
use forkless_sync::{thread, Arc};
use forkless_testkit::crash::{self, say, AckedWrites, KillOnDrop, Recovered};
use forkless_testkit::{redis_check_aof, TempDir};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// The child's environment variable: the AOF directory.
const CHILD_ENV: &str = "FORKLESS_CRASH_CHILD";
/// The child's environment variable: `always` or `everysec`.
const POLICY_ENV: &str = "FORKLESS_CRASH_POLICY";
/// Writer threads in the child.
const THREADS: u64 = 2;
/// Databases the writers spread over.
const DBS: u64 = 3;
/// Filler keys (database 3) written once at creation, so a rewrite has some work to do.
const FILLER: usize = 5_000;

fn filler_value(i: usize) -> Vec<u8> {
    format!("filler-{i:08}-{}", "x".repeat(48)).into_bytes()
}

fn manifest_path(dir: &Path) -> PathBuf {
    dir.join("appendonly.aof.manifest")
}

fn policy_opts(policy: &str) -> AofDirOptions {
    let fsync: FsyncPolicy = policy.parse().expect("a crash-test policy");
    AofDirOptions {
        writer: WriterOptions {
            fsync,
            ..WriterOptions::default()
        },
        ..AofDirOptions::default()
    }
}

/// The writers' workload (see `forkless_testkit::crash::AckedWrites`).
const W: AckedWrites = AckedWrites {
    threads: THREADS,
    dbs: DBS,
    filler: FILLER,
    filler_value,
    counters: &[],
};

fn load(dir: &Path) -> Result<Recovered, String> {
    let ks = Keyspace::new(Config::seeded(11));
    load_dir(dir, &LoadOptions::default(), &mut KeyspaceTarget::new(&ks))
        .map_err(|e| format!("load_dir failed: {e}"))?;
    W.recovered(&ks.dump())
}

fn die(what: String) -> ! {
    crash::die("crash child", what)
}

fn run_child(dir: &Path, policy: &str) -> ! {
    let opts = policy_opts(policy);
    let mut ks = Keyspace::new(Config {
        shards: 4,
        ..Config::seeded(5)
    });
    let fresh = !manifest_path(dir).exists();
    let aof = if fresh {
        AofDir::create(dir, &[], opts).unwrap_or_else(|e| die(format!("create: {e}")))
    } else {
        AofDir::open(dir, &ks, opts)
            .unwrap_or_else(|e| die(format!("open: {e}")))
            .0
    };
    let writer = aof.writer();
    ks.set_sink(writer.clone());
    if fresh {
        let mut s = Session { db: 3 };
        for i in 0..FILLER {
            let k = format!("filler:{i}").into_bytes();
            ks.execute(&mut s, &[b"SET".as_slice(), &k, &filler_value(i)]);
        }
        writer
            .flush_and_sync()
            .unwrap_or_else(|e| die(format!("flush filler: {e}")));
    }
    let rec = W.recovered(&ks.dump()).unwrap_or_else(|e| die(e));
    let starts: Vec<u64> = (0..THREADS)
        .map(|t| rec.prefix(t).unwrap_or_else(|e| die(e)))
        .collect();
    // libtest has printed "test crash_child ... " without a line break: end that line first,
    // so that "ready" starts a line of its own and the parent sees it.
    say("");
    say(&format!("ready {}", rec.filler));
    let obs = forkless_snapshot::install(&mut ks);
    let ks = Arc::new(ks);
    let aof = Arc::new(aof);
    for (t, start) in (0..THREADS).zip(starts) {
        say(&format!("start {t} {start}"));
        let (ks, writer) = (ks.clone(), writer.clone());
        let throttle = policy != "always";
        thread::spawn(move || {
            let mut s = Session::default();
            for n in start.. {
                let (db, argv) = W.op(t, n);
                s.db = db;
                let argv: Vec<&[u8]> = argv.iter().map(|a| a.as_slice()).collect();
                match ks.execute(&mut s, &argv) {
                    Reply::Integer(_) => {}
                    other => die(format!("thread {t} write {n}: {other:?}")),
                }
                writer
                    .ack_current_thread()
                    .unwrap_or_else(|e| die(format!("thread {t} write {n} not acked: {e}")));
                say(&format!("ack {t} {n}"));
                if throttle {
                    // everysec acknowledges at once: keep the lists (and the log) small.
                    thread::sleep(Duration::from_micros(300));
                }
            }
        });
    }
    let stop = Arc::new(AtomicBool::new(false));
    {
        let (ks, aof, stop) = (ks.clone(), aof.clone(), stop.clone());
        thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                say("rw start");
                rewrite(&aof, &ks, &obs).unwrap_or_else(|e| die(format!("rewrite: {e}")));
                say("rw end");
            }
        });
    }
    // The parent kills us well before this; the bound only keeps an orphan from running on.
    thread::sleep(Duration::from_secs(60));
    stop.store(true, Ordering::Relaxed);
    die("not killed within 60 s".into())
}

/// The child entry point: a no-op unless the parent re-executed the binary for it.
#[test]
fn crash_child() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let policy = std::env::var(POLICY_ENV).unwrap_or_else(|_| "always".into());
    run_child(Path::new(&dir), &policy);
}

/// What one round's child said.
#[derive(Debug, Default)]
struct Round {
    ready_filler: Option<usize>,
    starts: BTreeMap<u64, u64>,
    /// Per thread: acknowledged write numbers, with when the parent read them.
    acks: BTreeMap<u64, Vec<(u64, Instant)>>,
    rewrites_started: usize,
    rewrites_ended: usize,
    /// The last marker was "rw start": the kill landed inside a rewrite.
    in_rewrite: bool,
}

fn parse_lines(lines: Vec<(Instant, String)>) -> Round {
    let mut r = Round::default();
    for (at, l) in lines {
        let f: Vec<&str> = l.split_whitespace().collect();
        let num = |i: usize| -> u64 { f[i].parse().unwrap_or_else(|_| panic!("bad line {l:?}")) };
        match f.as_slice() {
            ["ready", _] => r.ready_filler = Some(num(1) as usize),
            ["start", _, _] => {
                r.starts.insert(num(1), num(2));
            }
            ["ack", _, _] => r.acks.entry(num(1)).or_default().push((num(2), at)),
            ["rw", "start"] => {
                r.rewrites_started += 1;
                r.in_rewrite = true;
            }
            ["rw", "end"] => {
                r.rewrites_ended += 1;
                r.in_rewrite = false;
            }
            // libtest's own lines ("running 1 test", ...).
            _ => {}
        }
    }
    r
}

/// Totals over a run of rounds.
#[derive(Debug, Default)]
struct Totals {
    rounds: usize,
    kills_in_rewrite: usize,
    rewrites_completed: usize,
    acks: usize,
}

/// Run `rounds` kill-and-recover rounds with `policy`, the child living `min_ms..max_ms`.
fn crash_rounds(policy: &str, rounds: usize, min_ms: u64, max_ms: u64, seed: u64) -> Totals {
    let started = Instant::now();
    let tmp = TempDir::new("aof-crash");
    let dir = tmp.path().join("appendonlydir");
    let mut rng = StdRng::seed_from_u64(seed);
    let mut totals = Totals::default();
    let mut prev = [0u64; THREADS as usize];
    let mut filler_complete = false;
    let exe = std::env::current_exe().expect("current_exe");
    for round in 0..rounds {
        let child = Command::new(&exe)
            .args([
                "--exact",
                "crash::crash_child",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, &dir)
            .env(POLICY_ENV, policy)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn child");
        let mut child = KillOnDrop(child);
        let stdout = child.0.stdout.take().expect("child stdout");
        let reader = crash::read_lines(stdout);
        let life = rng.gen_range(min_ms..=max_ms);
        thread::sleep(Duration::from_millis(life));
        if let Some(status) = child.0.try_wait().expect("try_wait") {
            panic!("round {round}: the child ended by itself ({status}) before the kill");
        }
        child.0.kill().expect("SIGKILL the child");
        let killed_at = Instant::now();
        child.0.wait().expect("reap the child");
        let r = parse_lines(reader.join().expect("reader thread"));

        let rec = load(&dir).unwrap_or_else(|e| panic!("round {round} ({policy}): {e}"));
        if r.ready_filler.is_some() {
            filler_complete = true;
        }
        if filler_complete {
            assert_eq!(rec.filler, FILLER, "round {round}: filler keys lost");
        }
        for t in 0..THREADS {
            let p = rec
                .prefix(t)
                .unwrap_or_else(|e| panic!("round {round} ({policy}): {e}"));
            if let Some(&s) = r.starts.get(&t) {
                assert_eq!(
                    s, prev[t as usize],
                    "round {round}: the child resumed thread {t} elsewhere than the last recovery"
                );
            }
            assert!(
                p >= prev[t as usize],
                "round {round}: thread {t} went back from {} to {p} writes",
                prev[t as usize]
            );
            let acks = r.acks.get(&t).map(Vec::as_slice).unwrap_or(&[]);
            for (i, (n, _)) in acks.iter().enumerate() {
                assert_eq!(
                    *n,
                    prev[t as usize] + i as u64,
                    "round {round}: thread {t} acks out of sequence"
                );
            }
            // The acknowledged writes that must have survived.
            let must = match policy {
                "always" => acks.last().map(|(n, _)| n + 1),
                _ => acks
                    .iter()
                    .rev()
                    .find(|(_, at)| killed_at.duration_since(*at) > Duration::from_secs(3))
                    .map(|(n, _)| n + 1),
            };
            if let Some(must) = must {
                assert!(
                    p >= must,
                    "round {round} ({policy}): thread {t} recovered {p} writes, {must} were \
                     acknowledged"
                );
            }
            totals.acks += acks.len();
            prev[t as usize] = p;
        }
        totals.rounds += 1;
        totals.rewrites_completed += r.rewrites_ended;
        if r.in_rewrite {
            totals.kills_in_rewrite += 1;
        }
    }
    // Every child lives long enough to open the directory and say so (the lines are parsed).
    assert!(filler_complete, "no child reported ready");
    // A clean open (cuts a torn tail off, as redis-server does with aof-load-truncated) and
    // close, then redis-check-aof must accept the directory as it is.
    let ks = Keyspace::new(Config::seeded(12));
    let (aof, _) = AofDir::open(&dir, &ks, policy_opts(policy)).expect("final open");
    aof.close().expect("final close");
    let rec = W.recovered(&ks.dump()).expect("final state");
    for t in 0..THREADS {
        assert_eq!(rec.prefix(t).expect("final prefix"), prev[t as usize]);
    }
    if let Some(r) = redis_check_aof(&manifest_path(&dir)) {
        r.unwrap_or_else(|out| panic!("redis-check-aof refuses the crashed directory: {out}"));
    }
    eprintln!(
        "crash test ({policy}): {} rounds, {} kills inside a rewrite, {} rewrites completed, \
         {} acknowledged writes checked, final prefixes {prev:?}, {:.1} s",
        totals.rounds,
        totals.kills_in_rewrite,
        totals.rewrites_completed,
        totals.acks,
        started.elapsed().as_secs_f64()
    );
    totals
}

/// Rounds of the `always` test: 20, or `FORKLESS_CRASH_ROUNDS` for a longer soak.
fn always_rounds() -> usize {
    std::env::var("FORKLESS_CRASH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20)
}

#[test]
fn sigkill_during_rewrites_loses_no_acknowledged_write_always() {
    let rounds = always_rounds();
    let t = crash_rounds("always", rounds, 50, 400, 0xC4A5);
    assert_eq!(t.rounds, rounds);
    assert!(t.acks > 0, "no write was acknowledged: {t:?}");
    assert!(t.rewrites_completed > 0, "no rewrite completed: {t:?}");
}

#[test]
fn sigkill_under_everysec_recovers_a_prefix() {
    let t = crash_rounds("everysec", 3, 300, 4_000, 0xE5EC);
    assert_eq!(t.rounds, 3);
    assert!(t.acks > 0, "no write was acknowledged: {t:?}");
}
