//! SIGKILL a child engine under `appendfsync always` while rewrites and snapshots run: every
//! acknowledged write is recovered by `Engine::open`.
//!
//! The test binary re-executes itself as the child (`engine_crash_child`), which opens an
//! [`Engine`] on the directory, runs 4 writer threads of the [`AckedWrites`] workload through
//! `Engine::execute` (printing each write once acknowledged) and a thread that alternates
//! rewrites and snapshots; the automatic rewrite rule and save rules are also on. The parent
//! kills it at a random point, reopens the directory with `Engine::open` and checks, per thread,
//! that the recovered state is exactly a prefix of its writes that covers every acknowledged one.

use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::Duration;

use forkless::{Config, Engine, Reply, Session};
use forkless_testkit::crash::{self, die, say, AckedWrites, KillOnDrop};
use forkless_testkit::TempDir;
use rand::{Rng, SeedableRng};

const CHILD_ENV: &str = "FORKLESS_ENGINE_CRASH_DIR";
const MODE_ENV: &str = "FORKLESS_ENGINE_CRASH_MODE";
const THREADS: u64 = 4;
const W: AckedWrites = AckedWrites {
    threads: THREADS,
    dbs: 2,
    filler: 0,
    filler_value: |_| Vec::new(),
    counters: &[],
};

/// `aof`: multi-part AOF with rewrites and dump snapshots; `segments`: segments with
/// snapshots of both modes (and retention).
fn config(mode: &str) -> Config {
    let mut c = Config::default();
    c.load_str(
        "appendfsync always\nsave \"1 1\"\nauto-aof-rewrite-percentage 50\n\
         auto-aof-rewrite-min-size 16kb\nhz 50\nsegment-bytes 16kb\n",
    )
    .expect("config");
    match mode {
        "aof" => c.set_any("appendonly", "yes").expect("appendonly"),
        _ => c.set_any("persistence", "segments").expect("segments"),
    }
    c
}

fn run_child(dir: &Path, mode: &str) -> ! {
    let e = Engine::open(dir, config(mode)).unwrap_or_else(|e| die("child", format!("open: {e}")));
    let rec = W
        .recovered(&e.keyspace().dump())
        .unwrap_or_else(|err| die("child", err));
    for t in 0..THREADS {
        let start = rec.prefix(t).unwrap_or_else(|err| die("child", err));
        say(&format!("start {t} {start}"));
        let e = e.clone();
        thread::spawn(move || {
            let mut s = Session::default();
            for n in start.. {
                let (db, argv) = W.op(t, n);
                s.db = db;
                let refs: Vec<&[u8]> = argv.iter().map(Vec::as_slice).collect();
                match e.execute(&mut s, &refs) {
                    Reply::Error(m) => die("child", format!("thread {t} write {n}: {m}")),
                    _ => say(&format!("ack {t} {n}")),
                }
            }
        });
    }
    let e2 = e.clone();
    thread::spawn(move || loop {
        say("job rewrite");
        if let Err(err) = e2.rewrite_now() {
            if !err.to_string().contains("in progress") {
                die("child", format!("rewrite: {err}"));
            }
        }
        say("job snapshot");
        if let Err(err) = e2.snapshot_now(None) {
            if !err.to_string().contains("in progress") {
                die("child", format!("snapshot: {err}"));
            }
        }
    });
    thread::sleep(Duration::from_secs(60));
    die("child", "not killed within 60 s".into())
}

/// The child entry point: a no-op unless the parent re-executed the binary for it.
#[test]
fn engine_crash_child() {
    if let Ok(dir) = std::env::var(CHILD_ENV) {
        let mode = std::env::var(MODE_ENV).unwrap_or_else(|_| "aof".into());
        run_child(Path::new(&dir), &mode);
    }
}

#[test]
fn sigkill_under_always_loses_no_acknowledged_write_aof() {
    crash_rounds("aof");
}

#[test]
fn sigkill_under_always_loses_no_acknowledged_write_segments() {
    crash_rounds("segments");
}

fn crash_rounds(mode: &str) {
    let tmp = TempDir::new("engine-crash");
    let dir = tmp.path().join("data");
    let exe = std::env::current_exe().expect("current_exe");
    let mut rng = rand::rngs::StdRng::seed_from_u64(0xE17);
    let mut prev = [0u64; THREADS as usize];
    let rounds = std::env::var("FORKLESS_CRASH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(8);
    let (mut acks_total, mut jobs, mut rounds_started) = (0usize, 0usize, 0usize);
    for round in 0..rounds {
        let child = Command::new(&exe)
            .args([
                "--exact",
                "crash::engine_crash_child",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, &dir)
            .env(MODE_ENV, mode)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn child");
        let mut child = KillOnDrop(child);
        let reader = crash::read_lines(child.0.stdout.take().expect("stdout"));
        thread::sleep(Duration::from_millis(rng.gen_range(300..900)));
        if let Some(st) = child.0.try_wait().expect("try_wait") {
            panic!("round {round}: the child ended by itself ({st})");
        }
        child.0.kill().expect("SIGKILL");
        child.0.wait().expect("reap");
        let lines = reader.join().expect("reader");
        let mut acked = [None::<u64>; THREADS as usize];
        let mut started = false;
        for (_, l) in &lines {
            let f: Vec<&str> = l.split_whitespace().collect();
            match f.as_slice() {
                ["start", t, n] => {
                    started = true;
                    let (t, n): (usize, u64) = (t.parse().unwrap(), n.parse().unwrap());
                    assert_eq!(n, prev[t], "round {round}: thread {t} resumed elsewhere");
                }
                ["ack", t, n] => {
                    acks_total += 1;
                    acked[t.parse::<usize>().unwrap()] = Some(n.parse().unwrap());
                }
                ["job", _] => jobs += 1,
                _ => {}
            }
        }
        // (A child killed before it opened, on a loaded machine, still checks recovery.)
        rounds_started += usize::from(started);
        let e = Engine::open(&dir, config(mode)).unwrap_or_else(|e| panic!("round {round}: {e}"));
        let rec = W
            .recovered(&e.keyspace().dump())
            .unwrap_or_else(|err| panic!("round {round}: {err}"));
        for t in 0..THREADS as usize {
            let p = rec
                .prefix(t as u64)
                .unwrap_or_else(|err| panic!("round {round}: {err}"));
            if let Some(n) = acked[t] {
                assert!(
                    p > n,
                    "round {round}: thread {t} recovered {p} writes, write {n} was acknowledged"
                );
            }
            assert!(p >= prev[t], "round {round}: thread {t} went back");
            prev[t] = p;
        }
        eprintln!(
            "{mode} round {round}: {:?}, prefixes {prev:?}",
            e.open_report()
        );
        drop(e);
    }
    assert!(
        acks_total > 100,
        "too few acknowledged writes ({acks_total})"
    );
    assert!(
        rounds_started > rounds / 2,
        "only {rounds_started} children opened in time"
    );
    assert!(jobs > rounds_started, "the jobs did not run ({jobs})");
    // Reopening cleaned up what the kills left (temp files of snapshots and rewrites).
    drop(Engine::open(&dir, config(mode)).expect("final open"));
    for sub in [dir.clone(), dir.join("appendonlydir")] {
        for f in std::fs::read_dir(&sub).into_iter().flatten().flatten() {
            let name = f.file_name().to_string_lossy().into_owned();
            assert!(
                !name.contains(".tmp-") && !name.starts_with("temp-rewriteaof"),
                "{mode}: {name} left in {}",
                sub.display()
            );
        }
    }
}

#[test]
fn open_removes_temp_files_a_crash_left() {
    let tmp = TempDir::new("engine-temps");
    let adir = tmp.path().join("appendonlydir");
    std::fs::create_dir_all(&adir).unwrap();
    let stale = [
        tmp.path().join(".dump.rdb.tmp-123-0"),
        tmp.path().join(".dump.deltas.tmp-123-1"),
        adir.join("temp-rewriteaof-appendonly.aof"),
        adir.join(".temp-rewriteaof-appendonly.aof.tmp-9-9"),
        adir.join(".appendonly.aof.manifest.tmp-9-10"),
    ];
    for p in &stale {
        std::fs::write(p, b"partial").unwrap();
    }
    let keep = tmp.path().join("unrelated.tmp-1");
    std::fs::write(&keep, b"x").unwrap();
    let e = Engine::open(tmp.path(), config("aof")).unwrap();
    for p in &stale {
        assert!(!p.exists(), "{} left", p.display());
    }
    assert!(keep.exists());
    drop(e);
}
