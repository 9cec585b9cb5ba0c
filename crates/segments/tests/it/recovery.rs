//! Recovery equals the live keyspace: rolling segments, snapshots in both modes back to back
//! under 4 writer threads, recovery from every retained snapshot; reopen and continue;
//! retention; point-in-time recovery.

use crate::common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use common::*;
use forkless_aof::FsyncPolicy;
use forkless_keyspace::Session;
use forkless_segments::{check, recover, RecoverOptions, SegManifest, SegmentOptions, StartPoint};
use forkless_snapshot::Mode;
use forkless_testkit::TempDir;
use rand::rngs::StdRng;
use rand::SeedableRng;

/// Recover `path` from each start point separately (a manifest holding only that snapshot),
/// and from the manifest as it is; all must equal `expected`.
fn assert_every_start_point(path: &std::path::Path, expected: &[forkless_rdb::Entry]) -> usize {
    let m = SegManifest::load(path).unwrap();
    let (ks, rep) = recover(path, &m, &config(), RecoverOptions::default()).unwrap();
    assert!(rep.rejected.is_empty(), "{:?}", rep.rejected);
    assert_eq!(ks.dump(), expected, "newest start point {:?}", rep.start);
    let mut n = 0;
    for s in &m.snapshots {
        let mut only = m.clone();
        only.snapshots = vec![s.clone()];
        let (ks, rep) = recover(path, &only, &config(), RecoverOptions::default()).unwrap();
        assert_eq!(rep.start, StartPoint::Snapshot(s.clone()));
        assert_eq!(ks.dump(), expected, "from {}", s.name());
        n += 1;
    }
    if m.segments.first() == Some(&1) {
        let mut none = m.clone();
        none.snapshots.clear();
        let (ks, rep) = recover(path, &none, &config(), RecoverOptions::default()).unwrap();
        assert_eq!(rep.start, StartPoint::Empty);
        assert_eq!(ks.dump(), expected, "from the empty keyspace");
        n += 1;
    }
    n
}

#[test]
fn four_writers_rolling_segments_back_to_back_snapshots_both_modes() {
    let tmp = TempDir::new("seg-prop");
    let e = open(tmp.path(), options(64 << 10, FsyncPolicy::No));
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let writers: Vec<_> = (0..4u64)
        .map(|t| {
            let (ks, stop, done) = (e.ks.clone(), stop.clone(), done.clone());
            std::thread::spawn(move || {
                let mut rng = StdRng::seed_from_u64(40 + t);
                let mut s = Session::default();
                let mut n = 0u64;
                // Random commands over shared keys, and every 4th write an INCR of this
                // thread's own counter, which no other command touches: a write replayed twice
                // or lost is then visible in the final state, not overwritten by later ones.
                let ctr = vec!["INCR".to_string(), format!("ctr:{t}")];
                while !stop.load(Ordering::Relaxed) {
                    if n.is_multiple_of(4) {
                        exec(&ks, &mut s, &ctr);
                    } else {
                        exec(&ks, &mut s, &random_command(&mut rng, 5_000));
                    }
                    n += 1;
                    done.fetch_add(1, Ordering::Relaxed);
                    // A pause every 32 writes: four writers on a small machine would otherwise
                    // keep every core busy, the snapshot worker and the log writer would crawl,
                    // and the writes (so the replay below) would pile up with the machine's load.
                    if n.is_multiple_of(32) {
                        std::thread::sleep(std::time::Duration::from_millis(1));
                    }
                }
                n
            })
        })
        .collect();
    let wait_ops = |n: u64| {
        let target = done.load(Ordering::Relaxed) + n;
        while done.load(Ordering::Relaxed) < target {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    };
    let mut taken = Vec::new();
    for round in 0..6 {
        // Writers run before, during and after every snapshot.
        wait_ops(15_000);
        let mode = if round % 2 == 0 {
            Mode::Converging
        } else {
            Mode::PointInTime
        };
        let info = e.dir.snapshot(&e.ks, &e.obs, mode).unwrap();
        taken.push(info.entry);
    }
    wait_ops(15_000);
    stop.store(true, Ordering::Relaxed);
    let ops: u64 = writers.into_iter().map(|w| w.join().unwrap()).sum();
    e.dir.close().unwrap();
    let expected = e.ks.dump();
    let m = SegManifest::load(tmp.path()).unwrap();
    assert!(m.segments.len() > 5, "segments rolled: {:?}", m.segments);
    assert_eq!(m.snapshots.len(), 6);
    // Cuts move forward and lie on segment boundaries or inside segments.
    for w in taken.windows(2) {
        assert!((w[0].cut.seq, w[0].cut.offset) < (w[1].cut.seq, w[1].cut.offset));
    }
    assert!(
        taken.iter().filter(|s| s.cut.offset > 0).count() >= 3,
        "{taken:?}"
    );
    let n = assert_every_start_point(tmp.path(), &expected);
    assert_eq!(n, 7, "6 snapshots + the empty start");
    let rep = check(tmp.path()).unwrap();
    assert!(rep.problems.is_empty(), "{:?}", rep.problems);
    assert!(ops > 80_000);
}

#[test]
fn reopen_recovers_then_continues_in_a_new_segment() {
    let tmp = TempDir::new("seg-reopen");
    let mut rng = StdRng::seed_from_u64(9);
    let mut expected = None;
    for round in 0..4 {
        let e = open(tmp.path(), options(16 << 10, FsyncPolicy::EverySec));
        if let Some(exp) = &expected {
            assert_eq!(&e.ks.dump(), exp, "round {round}: recovered state");
        }
        let before = e.dir.manifest().segments;
        let mut s = Session::default();
        for i in 0..3_000 {
            exec(&e.ks, &mut s, &random_command(&mut rng, 500));
            if i == 1_500 {
                let mode = if round % 2 == 0 {
                    Mode::PointInTime
                } else {
                    Mode::Converging
                };
                e.dir.snapshot(&e.ks, &e.obs, mode).unwrap();
            }
        }
        e.dir.close().unwrap();
        expected = Some(e.ks.dump());
        let after = e.dir.manifest().segments;
        assert!(after.len() > before.len());
    }
    let exp = expected.unwrap();
    assert_every_start_point(tmp.path(), &exp);
}

#[test]
fn retention_keeps_snapshots_by_count_and_segments_by_bytes() {
    let tmp = TempDir::new("seg-retain");
    let opts = SegmentOptions {
        keep_snapshots: 2,
        keep_segment_bytes: 40 << 10,
        ..options(8 << 10, FsyncPolicy::No)
    };
    let e = open(tmp.path(), opts);
    let mut rng = StdRng::seed_from_u64(1);
    let mut s = Session::default();
    let mut deleted = Vec::new();
    for round in 0..8 {
        for _ in 0..2_000 {
            exec(&e.ks, &mut s, &random_command(&mut rng, 300));
        }
        let mode = if round % 2 == 0 {
            Mode::Converging
        } else {
            Mode::PointInTime
        };
        let info = e.dir.snapshot(&e.ks, &e.obs, mode).unwrap();
        deleted.extend(info.deleted);
        let m = e.dir.manifest();
        assert!(m.snapshots.len() <= 2);
        // Nothing a kept snapshot needs is gone.
        let need = m.snapshots[0].cut.seq;
        assert!(m.segments.first().copied().unwrap() <= need);
        let total: u64 = m
            .segments
            .iter()
            .filter(|&&q| q < need)
            .map(|&q| {
                std::fs::metadata(tmp.path().join(format!("segment.{q}.aof")))
                    .unwrap()
                    .len()
            })
            .sum();
        let all: u64 = m
            .segments
            .iter()
            .map(|&q| {
                std::fs::metadata(tmp.path().join(format!("segment.{q}.aof")))
                    .unwrap()
                    .len()
            })
            .sum();
        assert!(
            total == 0 || all <= 40 << 10,
            "old segments kept over budget"
        );
    }
    e.dir.close().unwrap();
    assert!(deleted.iter().any(|d| d.starts_with("snapshot.")));
    assert!(deleted.iter().any(|d| d.starts_with("segment.")));
    for d in &deleted {
        assert!(!tmp.path().join(d).exists(), "{d} still on disk");
    }
    let exp = e.ks.dump();
    let n = assert_every_start_point(tmp.path(), &exp);
    assert_eq!(
        n, 2,
        "segment 1 is gone: only the 2 snapshots are start points"
    );
}

#[test]
fn point_in_time_recovery_inside_the_retained_window() {
    let tmp = TempDir::new("seg-pitr");
    let clock = Arc::new(std::sync::atomic::AtomicI64::new(1_000));
    let c = clock.clone();
    let mut opts = options(4 << 10, FsyncPolicy::No);
    opts.writer.clock = Some(Arc::new(move || c.load(Ordering::SeqCst)));
    let e = open(tmp.path(), opts);
    let mut rng = StdRng::seed_from_u64(77);
    let mut s = Session::default();
    // states[t] = the keyspace once every write of second t is done.
    let mut states = Vec::new();
    for t in 1_000..1_012i64 {
        clock.store(t, Ordering::SeqCst);
        for i in 0..400 {
            exec(&e.ks, &mut s, &random_command(&mut rng, 200));
            if i == 200 && t % 3 == 0 {
                let mode = if t % 2 == 0 {
                    Mode::Converging
                } else {
                    Mode::PointInTime
                };
                e.dir.snapshot(&e.ks, &e.obs, mode).unwrap();
            }
        }
        states.push((t, e.ks.dump()));
    }
    e.dir.close().unwrap();
    let m = SegManifest::load(tmp.path()).unwrap();
    assert!(m.snapshots.len() >= 3);
    for (t, state) in &states {
        let (ks, rep) = recover(
            tmp.path(),
            &m,
            &config(),
            RecoverOptions {
                until_timestamp: Some(*t),
            },
        )
        .unwrap();
        assert_eq!(&ks.dump(), state, "recovery to {t} from {:?}", rep.start);
        if let StartPoint::Snapshot(s) = &rep.start {
            assert!(s.cut.unix_secs <= *t);
        }
    }
    // Before the first write: the empty keyspace.
    let (ks, _) = recover(
        tmp.path(),
        &m,
        &config(),
        RecoverOptions {
            until_timestamp: Some(999),
        },
    )
    .unwrap();
    assert!(ks.dump().is_empty());
}

#[test]
fn replay_does_not_expire_keys_that_were_live_when_the_log_was_written() {
    use forkless_keyspace::ManualClock;
    let tmp = TempDir::new("seg-expire");
    let clock = ManualClock::new(1_000_000);
    let cfg = forkless_keyspace::Config {
        clock: Some(clock.clock()),
        ..config()
    };
    let (dir, mut ks, _) =
        forkless_segments::SegmentDir::open(tmp.path(), &cfg, options(1 << 20, FsyncPolicy::No))
            .unwrap();
    ks.set_sink(dir.writer());
    let mut s = Session::default();
    let run = |ks: &forkless_keyspace::Keyspace, s: &mut Session, c: &str| {
        let argv: Vec<&[u8]> = c.split(' ').map(str::as_bytes).collect();
        ks.execute(s, &argv)
    };
    run(&ks, &mut s, "SET k 10 PX 5000");
    clock.advance(1_000);
    run(&ks, &mut s, "INCR k");
    run(&ks, &mut s, "PERSIST k");
    dir.close().unwrap();
    assert_eq!(
        ks.dump()[0].value,
        forkless_rdb::Value::String(b"11".to_vec())
    );
    // Recover long after the key's original deadline: it was persisted before it, so it lives.
    clock.advance(1_000_000);
    let m = SegManifest::load(tmp.path()).unwrap();
    let (rec, _) = recover(tmp.path(), &m, &cfg, RecoverOptions::default()).unwrap();
    assert_eq!(rec.dump(), ks.dump());
}

#[test]
fn a_changed_byte_in_a_closed_segment_that_still_parses_is_refused_by_its_crc() {
    let tmp = TempDir::new("seg-crc");
    let e = open(tmp.path(), options(4 << 10, FsyncPolicy::No));
    let mut s = Session::default();
    for i in 0..3_000 {
        let cmd = vec![
            "SET".to_string(),
            format!("k{}", i % 100),
            format!("{:05}", i),
        ];
        exec(&e.ks, &mut s, &cmd);
    }
    e.dir.close().unwrap();
    let m = SegManifest::load(tmp.path()).unwrap();
    let closed: Vec<i64> = m.segments[..m.segments.len() - 1].to_vec();
    assert!(closed.len() > 5);
    for q in &closed {
        assert!(
            m.closed_len.contains_key(q) && m.closed_crc.contains_key(q),
            "segment {q}"
        );
    }
    assert!(!m.closed_len.contains_key(&m.last_segment()));
    // Change one digit of a value in a middle segment: still valid RESP, a different write.
    let name = format!("segment.{}.aof", closed[2]);
    let p = tmp.path().join(&name);
    let mut bytes = std::fs::read(&p).unwrap();
    let at = bytes.len() - 3; // the last digit of the last value ("...NNNNN\r\n")
    assert!(bytes[at].is_ascii_digit());
    bytes[at] = if bytes[at] == b'9' {
        b'0'
    } else {
        bytes[at] + 1
    };
    std::fs::write(&p, &bytes).unwrap();
    let Err(err) = recover(tmp.path(), &m, &config(), RecoverOptions::default()) else {
        panic!("a changed closed segment was accepted");
    };
    let msg = err.to_string();
    assert!(msg.contains(&name) && msg.contains("CRC-64"), "{msg}");
    let rep = check(tmp.path()).unwrap();
    assert!(
        rep.problems.iter().any(|p| p.contains(&name)),
        "{:?}",
        rep.problems
    );
}

#[test]
fn a_directory_is_opened_by_one_writer_at_a_time() {
    let tmp = TempDir::new("seg-lock");
    let e = open(tmp.path(), options(1 << 20, FsyncPolicy::No));
    let second = forkless_segments::SegmentDir::open(
        tmp.path(),
        &config(),
        options(1 << 20, FsyncPolicy::No),
    );
    let msg = second.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(msg.contains("is in use"), "{msg}");
    e.dir.close().unwrap();
    drop(e);
    // Released on drop: the next open recovers and continues.
    let again = open(tmp.path(), options(1 << 20, FsyncPolicy::No));
    again.dir.close().unwrap();
}
