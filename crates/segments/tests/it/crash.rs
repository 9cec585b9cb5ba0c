//! Crash test of a segments directory: a SIGKILL at any point (mid-write, mid-roll,
//! mid-snapshot, mid-manifest update, mid-retention deletion, mid-open) loses no acknowledged
//! write (per fsync policy), recovery never fails, and the next open removes the crash's orphans.
//!
//! # Method (the child-process re-exec of `crates/aof/tests/it/crash.rs`)
//! The test binary re-executes itself (`FORKLESS_SEG_CRASH_CHILD=<dir>`, `--exact crash::crash_child`).
//! The child opens the directory with [`SegmentDir::open`] (16 KiB segments, so the writer rolls
//! often; 2 snapshots kept and a 32 KiB segment budget, so retention deletes files), runs two
//! writer threads and a thread taking snapshots back to back (alternating converging and
//! point-in-time, random tiny pauses between them), and prints one line per acknowledged write to
//! its stdout, a pipe the parent reads (what reached the pipe survives the kill). The parent
//! SIGKILLs it after a random delay, then:
//! 1. `check` must report no problem (a torn tail of the last segment is only a note);
//! 2. [`recover`] on [`SegManifest::load`] must succeed with no snapshot rejected, and its state
//!    must be an exact per-thread prefix of each writer's sequence covering every acknowledged
//!    write (`always`), or every write acknowledged more than 3 s before the kill (`everysec`);
//! 3. the files the manifest does not list (orphans of the crash) are noted; the parent reopens
//!    the directory with [`SegmentDir::open`], which must succeed with the same state, must have
//!    removed every orphan, and continues: one `INCR reopens` (counted, so a double replay of it
//!    would show), a clean close, and `check` finds no note at all.
//!
//! The next round's child continues on the same directory.
//!
//! Each writer thread `t` issues a fixed sequence of writes `n = 0, 1, 2, ...`: write `n` goes to
//! database `n % 3` and is `INCR ctr:t` when `(n / 3)` is even, else `RPUSH list:t n`: neither is
//! idempotent, so a write replayed twice, lost in the middle or reordered is detected.

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::config;
use forkless_aof::{FsyncPolicy, WriterOptions};
use forkless_keyspace::{Reply, Session};
use forkless_segments::manifest::MANIFEST_NAME;
use forkless_segments::{check, recover, RecoverOptions, SegManifest, SegmentDir, SegmentOptions};
use forkless_snapshot::Mode;
use forkless_testkit::crash::{self, say, AckedWrites, KillOnDrop};
use forkless_testkit::TempDir;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// The child's environment variable: the segments directory.
const CHILD_ENV: &str = "FORKLESS_SEG_CRASH_CHILD";
/// The child's environment variable: `always` or `everysec`.
const POLICY_ENV: &str = "FORKLESS_SEG_CRASH_POLICY";
/// The child's environment variable: its seed (snapshot modes, pauses).
const SEED_ENV: &str = "FORKLESS_SEG_CRASH_SEED";
/// Writer threads in the child.
const THREADS: u64 = 2;
/// Databases the writers spread over (database 3 holds the filler and the reopen counter).
const DBS: u64 = 3;
/// Filler keys (database 3), so that a snapshot has some work to do.
const FILLER: usize = 3_000;
/// The key the parent increments once per reopen.
const REOPENS: &str = "reopens";

fn filler_value(i: usize) -> Vec<u8> {
    format!("filler-{i:08}-{}", "x".repeat(40)).into_bytes()
}

fn seg_options(policy: &str) -> SegmentOptions {
    let fsync: FsyncPolicy = policy.parse().expect("a crash-test policy");
    SegmentOptions {
        segment_bytes: 16 << 10,
        keep_snapshots: 2,
        keep_segment_bytes: 32 << 10,
        writer: WriterOptions {
            fsync,
            timestamps: true,
            ..WriterOptions::default()
        },
        ..SegmentOptions::default()
    }
}

/// The writers' workload (see `forkless_testkit::crash::AckedWrites`).
const W: AckedWrites = AckedWrites {
    threads: THREADS,
    dbs: DBS,
    filler: FILLER,
    filler_value,
    counters: &[REOPENS],
};

fn die(what: String) -> ! {
    crash::die("segments crash child", what)
}

fn run_child(dir: &Path, policy: &str, seed: u64) -> ! {
    let (sd, mut ks, _) = SegmentDir::open(dir, &config(), seg_options(policy))
        .unwrap_or_else(|e| die(format!("open: {e}")));
    let writer = sd.writer();
    ks.set_sink(writer.clone());
    let obs = forkless_snapshot::install(&mut ks);
    // libtest has printed "test crash_child ... " without a line end: end that line first.
    say("");
    let rec = W.recovered(&ks.dump()).unwrap_or_else(|e| die(e));
    if rec.filler < FILLER {
        // SET is idempotent: (re)write all of it until one child got it durable.
        let mut s = Session { db: 3 };
        for i in 0..FILLER {
            let k = format!("filler:{i}").into_bytes();
            ks.execute(&mut s, &[b"SET".as_slice(), &k, &filler_value(i)]);
        }
        writer
            .flush_and_sync()
            .unwrap_or_else(|e| die(format!("flush filler: {e}")));
    }
    let starts: Vec<u64> = (0..THREADS)
        .map(|t| rec.prefix(t).unwrap_or_else(|e| die(e)))
        .collect();
    say("ready");
    let ks = Arc::new(ks);
    let sd = Arc::new(sd);
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
        let (ks, sd, stop) = (ks.clone(), sd.clone(), stop.clone());
        thread::spawn(move || {
            let mut rng = StdRng::seed_from_u64(seed);
            let mut converging = rng.gen_bool(0.5);
            while !stop.load(Ordering::Relaxed) {
                let mode = if converging {
                    Mode::Converging
                } else {
                    Mode::PointInTime
                };
                converging = !converging;
                say(&format!("snap start {}", mode.name()));
                let info = sd
                    .snapshot(&ks, &obs, mode)
                    .unwrap_or_else(|e| die(format!("snapshot: {e}")));
                say(&format!("snap end {}", info.deleted.len()));
                // Random tiny pauses move the kills around the snapshot's steps.
                match rng.gen_range(0..4) {
                    0 => {}
                    1 => thread::yield_now(),
                    _ => thread::sleep(Duration::from_micros(rng.gen_range(0..3_000))),
                }
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
    let seed = std::env::var(SEED_ENV)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    run_child(Path::new(&dir), &policy, seed);
}

/// What one round's child said.
#[derive(Debug, Default)]
struct Round {
    ready: bool,
    starts: BTreeMap<u64, u64>,
    /// Per thread: acknowledged write numbers, with when the parent read them.
    acks: BTreeMap<u64, Vec<(u64, Instant)>>,
    snapshots_ended: usize,
    /// Files retention deleted in completed snapshots.
    deleted: usize,
    /// The last marker was "snap start": the kill landed inside a snapshot.
    in_snapshot: bool,
}

fn parse_lines(lines: Vec<(Instant, String)>) -> Round {
    let mut r = Round::default();
    for (at, l) in lines {
        let f: Vec<&str> = l.split_whitespace().collect();
        let num = |i: usize| -> u64 { f[i].parse().unwrap_or_else(|_| panic!("bad line {l:?}")) };
        match f.as_slice() {
            ["ready"] => r.ready = true,
            ["start", _, _] => {
                r.starts.insert(num(1), num(2));
            }
            ["ack", _, _] => r.acks.entry(num(1)).or_default().push((num(2), at)),
            ["snap", "start", _] => r.in_snapshot = true,
            ["snap", "end", _] => {
                r.snapshots_ended += 1;
                r.deleted += num(2) as usize;
                r.in_snapshot = false;
            }
            // libtest's own lines ("running 1 test", ...).
            _ => {}
        }
    }
    r
}

/// The files of `dir` that `m` does not list: segments, snapshots, temp files of ours.
fn orphans(dir: &Path, m: &SegManifest) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for e in std::fs::read_dir(dir).expect("list the directory") {
        let name = e.expect("list the directory").file_name();
        let name = name.to_string_lossy().into_owned();
        if name == MANIFEST_NAME || name == forkless_segments::LOCK_NAME {
            continue;
        }
        let num = |pre: &str, suf: &str| {
            name.strip_prefix(pre)
                .and_then(|r| r.strip_suffix(suf))
                .and_then(|n| n.parse::<i64>().ok())
        };
        let listed = if let Some(n) = num("segment.", ".aof") {
            m.segments.contains(&n)
        } else if let Some(n) = num("snapshot.", ".rdb") {
            m.snapshots.iter().any(|s| s.seq == n)
        } else {
            assert!(
                name.starts_with('.') && name.contains(".tmp-"),
                "unexpected file {name} in the segments directory"
            );
            false
        };
        if !listed {
            out.insert(name);
        }
    }
    out
}

/// On a failure, copies the directory to `$FORKLESS_CRASH_KEEP/<policy>` (when set) for a
/// post-mortem.
struct KeepOnPanic(std::path::PathBuf, String);

impl Drop for KeepOnPanic {
    fn drop(&mut self) {
        let Some(to) = std::env::var_os("FORKLESS_CRASH_KEEP") else {
            return;
        };
        if !thread::panicking() {
            return;
        }
        let to = Path::new(&to).join(&self.1);
        let _ = std::fs::create_dir_all(&to);
        if let Ok(rd) = std::fs::read_dir(&self.0) {
            for e in rd.flatten() {
                let _ = std::fs::copy(e.path(), to.join(e.file_name()));
            }
        }
        eprintln!("the crashed directory is kept in {}", to.display());
    }
}

/// Totals over a run of rounds.
#[derive(Debug, Default)]
struct Totals {
    rounds: usize,
    kills_before_ready: usize,
    kills_in_snapshot: usize,
    snapshots_completed: usize,
    retention_deletions: usize,
    orphans_removed: usize,
    torn_tails: usize,
    from_empty: usize,
    acks: usize,
}

/// Run `rounds` kill-and-recover rounds with `policy`, the child living `min_ms..max_ms`.
fn crash_rounds(policy: &str, rounds: usize, min_ms: u64, max_ms: u64, seed: u64) -> Totals {
    let started = Instant::now();
    let tmp = TempDir::new("seg-crash");
    let dir = tmp.path().join("segments");
    let _keep = KeepOnPanic(dir.clone(), policy.to_string());
    let mut rng = StdRng::seed_from_u64(seed);
    let mut totals = Totals::default();
    let mut prev = [0u64; THREADS as usize];
    let mut filler_complete = false;
    let mut reopened = 0u64;
    let exe = std::env::current_exe().expect("current_exe");
    for round in 0..rounds {
        let ctx = format!("round {round} ({policy})");
        let child = Command::new(&exe)
            .args([
                "--exact",
                "crash::crash_child",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, &dir)
            .env(POLICY_ENV, policy)
            .env(SEED_ENV, rng.gen::<u64>().to_string())
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
            panic!("{ctx}: the child ended by itself ({status}) before the kill");
        }
        child.0.kill().expect("SIGKILL the child");
        let killed_at = Instant::now();
        child.0.wait().expect("reap the child");
        let r = parse_lines(reader.join().expect("reader thread"));
        if !dir.join(MANIFEST_NAME).exists() {
            // Killed before the first open created the directory: nothing to recover yet.
            assert!(!r.ready, "{ctx}: the child was ready without a manifest");
            totals.rounds += 1;
            totals.kills_before_ready += 1;
            continue;
        }

        // 1. check: no problem; at most a torn tail of the last segment.
        let rep = check(&dir).unwrap_or_else(|e| panic!("{ctx}: check failed: {e}"));
        assert!(rep.problems.is_empty(), "{ctx}: check: {:?}", rep.problems);
        assert!(rep.recovery.is_some(), "{ctx}: check: no recovery point");
        for n in &rep.notes {
            assert!(n.contains("torn tail"), "{ctx}: check note {n:?}");
        }

        // 2. recovery, read-only.
        let m = SegManifest::load(&dir).unwrap_or_else(|e| panic!("{ctx}: manifest: {e}"));
        let (ks, report) = recover(&dir, &m, &config(), RecoverOptions::default())
            .unwrap_or_else(|e| panic!("{ctx}: recovery failed: {e}"));
        assert!(
            report.rejected.is_empty(),
            "{ctx}: snapshots rejected: {:?}",
            report.rejected
        );
        if let Some(t) = &report.truncated {
            assert_eq!(
                t.file,
                forkless_segments::manifest::segment_name(m.last_segment()),
                "{ctx}: torn tail not in the last segment"
            );
            totals.torn_tails += 1;
        }
        if report.start == forkless_segments::StartPoint::Empty {
            totals.from_empty += 1;
        }
        let dump = ks.dump();
        drop(ks);
        let rec = W.recovered(&dump).unwrap_or_else(|e| panic!("{ctx}: {e}"));
        if r.ready {
            filler_complete = true;
        }
        if filler_complete {
            assert_eq!(rec.filler, FILLER, "{ctx}: filler keys lost");
        }
        assert_eq!(
            rec.counter(REOPENS),
            reopened,
            "{ctx}: the parent's reopen counter (one INCR per round, clean close)"
        );
        for t in 0..THREADS {
            let p = rec.prefix(t).unwrap_or_else(|e| panic!("{ctx}: {e}"));
            let ti = t as usize;
            if let Some(&s) = r.starts.get(&t) {
                assert_eq!(
                    s, prev[ti],
                    "{ctx}: the child resumed thread {t} elsewhere than the last recovery"
                );
            }
            assert!(
                p >= prev[ti],
                "{ctx}: thread {t} went back from {} to {p} writes",
                prev[ti]
            );
            let acks = r.acks.get(&t).map(Vec::as_slice).unwrap_or(&[]);
            for (i, (n, _)) in acks.iter().enumerate() {
                assert_eq!(
                    *n,
                    prev[ti] + i as u64,
                    "{ctx}: thread {t} acks out of sequence"
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
                    "{ctx}: thread {t} recovered {p} writes, {must} were acknowledged"
                );
            }
            totals.acks += acks.len();
            prev[ti] = p;
        }

        // 3. Reopen: same state, orphans gone, continue, close cleanly.
        let orphaned = orphans(&dir, &m);
        let (sd, mut ks, report2) = SegmentDir::open(&dir, &config(), seg_options(policy))
            .unwrap_or_else(|e| panic!("{ctx}: reopening failed: {e}"));
        assert!(report2.is_some(), "{ctx}: reopen saw a new directory");
        assert_eq!(ks.dump(), dump, "{ctx}: reopen recovered another state");
        let now = sd.manifest();
        for o in &orphaned {
            // The new segment may reuse the name of an orphan segment the crash left (created,
            // not yet listed): then it must be listed now and empty (recreated, not adopted).
            let reused = o == &forkless_segments::manifest::segment_name(now.last_segment());
            if reused {
                let len = std::fs::metadata(dir.join(o)).map(|m| m.len());
                assert_eq!(
                    len.ok(),
                    Some(0),
                    "{ctx}: orphan {o} adopted as the new segment"
                );
            } else {
                assert!(
                    !dir.join(o).exists(),
                    "{ctx}: orphan {o} survived the reopen"
                );
            }
        }
        totals.orphans_removed += orphaned.len();
        let after = orphans(&dir, &now);
        assert!(
            after.is_empty(),
            "{ctx}: orphans after the reopen: {after:?}"
        );
        ks.set_sink(sd.writer());
        let mut s = Session { db: 3 };
        match ks.execute(&mut s, &[b"INCR".as_slice(), REOPENS.as_bytes()]) {
            Reply::Integer(n) => assert_eq!(n as u64, reopened + 1, "{ctx}: reopen counter"),
            other => panic!("{ctx}: INCR {REOPENS}: {other:?}"),
        }
        sd.writer()
            .ack_current_thread()
            .unwrap_or_else(|e| panic!("{ctx}: INCR {REOPENS} not acked: {e}"));
        sd.close()
            .unwrap_or_else(|e| panic!("{ctx}: close failed: {e}"));
        drop(ks);
        reopened += 1;
        let rep = check(&dir).unwrap_or_else(|e| panic!("{ctx}: check failed: {e}"));
        assert!(
            rep.problems.is_empty() && rep.notes.is_empty(),
            "{ctx}: check after a clean close: {:?} {:?}",
            rep.problems,
            rep.notes
        );
        let m = SegManifest::load(&dir).expect("manifest after the reopen");
        for &q in &m.segments {
            let name = forkless_segments::manifest::segment_name(q);
            assert!(dir.join(&name).exists(), "{ctx}: listed {name} is missing");
        }
        for s in &m.snapshots {
            assert!(
                dir.join(s.name()).exists(),
                "{ctx}: listed {} is missing",
                s.name()
            );
        }

        totals.rounds += 1;
        totals.snapshots_completed += r.snapshots_ended;
        totals.retention_deletions += r.deleted;
        if !r.ready {
            totals.kills_before_ready += 1;
        } else if r.in_snapshot {
            totals.kills_in_snapshot += 1;
        }
    }
    let m = SegManifest::load(&dir).expect("final manifest");
    eprintln!(
        "segments crash test ({policy}): {totals:?}, final prefixes {prev:?}, final manifest: \
         segments {:?}, snapshots {:?}, {:.1} s",
        m.segments,
        m.snapshots.iter().map(|s| s.seq).collect::<Vec<_>>(),
        started.elapsed().as_secs_f64()
    );
    totals
}

/// Rounds of the `always` test: 24, or `FORKLESS_CRASH_ROUNDS` for a longer soak.
fn always_rounds() -> usize {
    std::env::var("FORKLESS_CRASH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(24)
}

#[test]
fn sigkill_anywhere_loses_no_acknowledged_write_always() {
    let rounds = always_rounds();
    let t = crash_rounds("always", rounds, 30, 500, 0x5E6C);
    assert_eq!(t.rounds, rounds);
    assert!(t.acks > 0, "no write was acknowledged: {t:?}");
    assert!(t.snapshots_completed > 0, "no snapshot completed: {t:?}");
    assert!(t.kills_before_ready < t.rounds, "no child got ready: {t:?}");
}

#[test]
fn sigkill_under_everysec_recovers_a_prefix() {
    let rounds = (always_rounds() / 6).max(4);
    let t = crash_rounds("everysec", rounds, 300, 4_500, 0xE5EC);
    assert_eq!(t.rounds, rounds);
    assert!(t.acks > 0, "no write was acknowledged: {t:?}");
    assert!(t.snapshots_completed > 0, "no snapshot completed: {t:?}");
}
