//! Parallel serialization (`serialize_threads`): the same keyspace snapshotted with 1 and with 4
//! serializer threads gives the same file, byte for byte, equal to the state rebuilt from the
//! command log, accepted by redis-check-rdb and loaded as such by redis-server 7.0.15; with
//! writers running, both modes with 4 threads give the state at their cut (the oracle test's
//! run, `oracle::run`; the stress test alternates 1 and 4 threads); and the chunks in flight
//! never exceed the bound.

use crate::{common, oracle};

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use forkless_keyspace::{CollectingSink, Config, Keyspace, Session};
use forkless_snapshot::{install, run_snapshot, Mode, Progress, SnapshotObserver, SnapshotOptions};
use forkless_testkit::{redis_check_rdb, redis_load_rdb, TempDir};

fn exec(ks: &Keyspace, db: u32, cmd: &[&[u8]]) {
    let r = ks.execute(&mut Session { db }, cmd);
    assert!(!r.is_error(), "{r:?}");
}

/// Mixed types in three databases, expiries, and big values: a 1 MiB string, a 60k-element list,
/// a 5k-field hash, a 3k-member zset and a 4k-member set.
fn mixed_keyspace() -> (Keyspace, Arc<SnapshotObserver>, Arc<CollectingSink>) {
    let mut ks = Keyspace::new(Config {
        shards: 4,
        databases: 16,
        ..Config::seeded(7)
    });
    let sink = Arc::new(CollectingSink::new());
    ks.set_sink(sink.clone());
    let obs = install(&mut ks);
    for db in [0u32, 2, 5] {
        for i in 0..6000u32 {
            let k = format!("k{db}:{i}");
            let (k, n) = (k.as_bytes(), i.to_string());
            let n = n.as_bytes();
            match i % 6 {
                0 => exec(&ks, db, &[b"SET", k, n]),
                1 => exec(&ks, db, &[b"SET", k, "v".repeat(150).as_bytes()]),
                2 => exec(&ks, db, &[b"RPUSH", k, b"a", n, b"c"]),
                3 => exec(&ks, db, &[b"SADD", k, n, b"7", b"m"]),
                4 => exec(&ks, db, &[b"ZADD", k, b"1.5", n, b"2", b"z"]),
                _ => exec(&ks, db, &[b"HSET", k, b"f", n, b"g", b"v"]),
            }
            if i % 7 == 0 {
                exec(&ks, db, &[b"PEXPIREAT", k, b"4102444800000"]);
            }
        }
    }
    exec(
        &ks,
        2,
        &[b"SET", b"big:str", "x".repeat(1 << 20).as_bytes()],
    );
    for i in 0..60 {
        let items: Vec<String> = (0..1000).map(|j| format!("it{i}-{j}")).collect();
        let mut cmd: Vec<&[u8]> = vec![b"RPUSH", b"big:list"];
        cmd.extend(items.iter().map(|s| s.as_bytes()));
        exec(&ks, 0, &cmd);
    }
    for i in 0..5 {
        let kv: Vec<String> = (0..1000)
            .flat_map(|j| [format!("f{i}-{j}"), format!("val{j}")])
            .collect();
        let mut cmd: Vec<&[u8]> = vec![b"HSET", b"big:hash"];
        cmd.extend(kv.iter().map(|s| s.as_bytes()));
        exec(&ks, 5, &cmd);
    }
    let z: Vec<String> = (0..3000)
        .flat_map(|j| [format!("{}", j % 97), format!("mem{j}")])
        .collect();
    let mut cmd: Vec<&[u8]> = vec![b"ZADD", b"big:zset"];
    cmd.extend(z.iter().map(|s| s.as_bytes()));
    exec(&ks, 0, &cmd);
    let m: Vec<String> = (0..4000).map(|j| format!("s{j}")).collect();
    let mut cmd: Vec<&[u8]> = vec![b"SADD", b"big:set"];
    cmd.extend(m.iter().map(|s| s.as_bytes()));
    exec(&ks, 5, &cmd);
    exec(&ks, 5, &[b"PEXPIREAT", b"big:set", b"4102444800000"]);
    (ks, obs, sink)
}

fn snapshot(
    ks: &Keyspace,
    obs: &Arc<SnapshotObserver>,
    threads: usize,
) -> (Vec<u8>, forkless_snapshot::SnapshotResult, Progress) {
    let opts = SnapshotOptions {
        mode: Mode::PointInTime,
        serialize_threads: threads,
        rdb: forkless_rdb::WriteOptions {
            ctime: Some(1_700_000_000),
            ..Default::default()
        },
        ..Default::default()
    };
    let progress = Progress::default();
    let (out, res) = run_snapshot(
        ks,
        obs.try_begin().unwrap(),
        &opts,
        Vec::new(),
        &progress,
        &AtomicBool::new(false),
    )
    .expect("snapshot");
    (out, res, progress)
}

#[test]
fn one_and_four_serializer_threads_write_the_same_file_that_redis_loads() {
    let (ks, obs, sink) = mixed_keyspace();
    let expected = common::expected_from_log(&sink.ops(), sink.ops().len());
    let (one, r1, _) = snapshot(&ks, &obs, 1);
    let (four, r4, p4) = snapshot(&ks, &obs, 4);
    assert_eq!((r1.serialize_threads, r4.serialize_threads), (1, 4));
    assert_eq!(r1.max_chunks_in_flight, 0, "one thread: no chunks");
    let chunks = p4.chunks_written.load(Ordering::Relaxed);
    assert!(chunks > 10, "4 threads: {chunks} chunks");
    assert_eq!(p4.chunks_dispatched.load(Ordering::Relaxed), chunks);
    assert_eq!(r1.keys, expected.len() as u64);
    assert_eq!(r4.keys, r1.keys);
    assert_eq!(r4.rdb_bytes, r1.rdb_bytes);
    assert_eq!(p4.keys.load(Ordering::Relaxed), r4.keys, "progress keys");
    assert_eq!(p4.bytes.load(Ordering::Relaxed), r4.total_bytes);
    assert!(one == four, "1 and 4 threads wrote different bytes");
    let dir = TempDir::new("snap-par");
    for (name, bytes) in [("one", &one), ("four", &four)] {
        assert_eq!(common::replay(bytes), expected, "{name}: self-replay");
        let path = dir.path().join(format!("{name}.rdb"));
        std::fs::write(&path, bytes).unwrap();
        if let Some(r) = redis_check_rdb(&path) {
            r.unwrap_or_else(|log| panic!("redis-check-rdb refused {name}:\n{log}"));
        }
        if let Some(r) = redis_load_rdb(&path) {
            let got = r.unwrap_or_else(|log| panic!("redis-server refused {name}:\n{log}"));
            if got != expected {
                panic!(
                    "{name}: redis-server holds something else:\n{}",
                    forkless_dump::diff(&expected, &got).join("\n")
                );
            }
        }
    }
}

#[test]
fn four_threads_under_writers_point_in_time_loads_in_redis_with_the_start_state() {
    oracle::run(Mode::PointInTime, false, 4);
}

#[test]
fn four_threads_under_writers_converging_loads_in_redis_with_the_end_state() {
    oracle::run(Mode::Converging, false, 4);
}

/// Back pressure, counted: chunk 0's encoding is held until the worker reports that it waited
/// for the bound (or dispatched past it, which fails the test); at that moment exactly `2 x
/// threads` chunks were dispatched, and no serializer ever saw more in flight.
#[test]
fn back_pressure_bounds_the_chunks_in_flight() {
    let mut ks = Keyspace::new(Config {
        shards: 4,
        ..Config::seeded(3)
    });
    let obs = install(&mut ks);
    for i in 0..60_000u32 {
        let k = format!("key:{i}");
        exec(&ks, 0, &[b"SET", k.as_bytes(), b"some value"]);
    }
    const THREADS: usize = 2;
    let limit = (THREADS * forkless_snapshot::worker::CHUNKS_IN_FLIGHT_PER_THREAD) as u64;
    let progress = Arc::new(Progress::default());
    let at_release = Arc::new(AtomicU64::new(u64::MAX));
    let max_seen = Arc::new(AtomicU64::new(0));
    let (p2, rel2, max2) = (progress.clone(), at_release.clone(), max_seen.clone());
    let opts = SnapshotOptions {
        mode: Mode::PointInTime,
        serialize_threads: THREADS,
        on_chunk_encode: Some(Arc::new(move |seq| {
            if seq == 0 {
                while p2.chunk_waits.load(Ordering::SeqCst) == 0
                    && p2.chunks_dispatched.load(Ordering::SeqCst) <= limit
                {
                    std::thread::yield_now();
                }
                rel2.store(
                    p2.chunks_dispatched.load(Ordering::SeqCst),
                    Ordering::SeqCst,
                );
            }
            // Dispatched first, then written: the difference read can only be too small.
            let d = p2.chunks_dispatched.load(Ordering::SeqCst);
            let w = p2.chunks_written.load(Ordering::SeqCst);
            max2.fetch_max(d.saturating_sub(w), Ordering::SeqCst);
        })),
        ..Default::default()
    };
    let (out, res) = run_snapshot(
        &ks,
        obs.try_begin().unwrap(),
        &opts,
        Vec::new(),
        &progress,
        &AtomicBool::new(false),
    )
    .expect("snapshot");
    assert_eq!(res.keys, 60_000);
    let chunks = progress.chunks_written.load(Ordering::Relaxed);
    assert!(chunks > 5 * limit, "{chunks} chunks");
    assert_eq!(
        at_release.load(Ordering::SeqCst),
        limit,
        "dispatched while chunk 0 was held"
    );
    assert_eq!(res.max_chunks_in_flight, limit);
    assert!(max_seen.load(Ordering::SeqCst) <= limit);
    assert!(progress.chunk_waits.load(Ordering::Relaxed) >= 1);
    assert_eq!(common::replay(&out).len(), 60_000);
}
