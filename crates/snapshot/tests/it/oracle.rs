//! Mandatory in CI (FORKLESS_REQUIRE_REDIS=1): snapshots taken under load load into redis-server
//! 7.0.15 with the expected canonical dump: the point-in-time one as `dump.rdb`, the converging
//! one (RDB + RESP deltas) as the base of a Redis 7 multi-part AOF directory whose manifest the
//! test writes.

use crate::common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use forkless_keyspace::{CollectingSink, Config, Keyspace, Session};
use forkless_snapshot::{install, snapshot_to_file, Barrier, Mode, SnapshotOptions};
use forkless_testkit::{redis_load_aof_dir, redis_load_rdb, TempDir};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn exec(ks: &Keyspace, db: u32, cmd: &[String]) {
    let argv: Vec<&[u8]> = cmd.iter().map(|a| a.as_bytes()).collect();
    let _ = ks.execute(&mut Session { db }, &argv);
}

fn command(rng: &mut StdRng) -> Vec<String> {
    let k = format!("k{}", rng.gen_range(0..10_000));
    let k2 = format!("k{}", rng.gen_range(0..10_000));
    let v = rng.gen_range(0..200).to_string();
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect();
    match rng.gen_range(0..10) {
        0 => s(&["SET", &k, &v]),
        1 => s(&["INCR", &k]),
        2 => s(&["RPUSH", &k, &v]),
        3 => s(&["SADD", &k, &v]),
        4 => s(&["ZADD", &k, &v, &v]),
        5 => s(&["HSET", &k, &v, &v]),
        6 => s(&["RENAME", &k, &k2]),
        7 => s(&["DEL", &k]),
        8 => s(&["PEXPIREAT", &k, "4102444800000"]),
        _ => s(&["LMOVE", &k, &k2, "LEFT", "LEFT"]),
    }
}

/// One snapshot of `mode` under two writers with `threads` serializer threads (`parallel.rs`
/// runs it with 4), checked against the log and redis-server.
pub(crate) fn run(mode: Mode, evicting: bool, threads: usize) {
    let dir = TempDir::new("snap-oracle");
    let mut ks = Keyspace::new(Config {
        shards: 4,
        databases: 16,
        ..Config::seeded(21)
    });
    let sink = Arc::new(CollectingSink::new());
    ks.set_sink(sink.clone());
    let obs = install(&mut ks);
    let ks = Arc::new(ks);
    let mut rng = StdRng::seed_from_u64(1);
    for _ in 0..30_000 {
        let db = rng.gen_range(0..3);
        exec(&ks, db, &command(&mut rng));
    }
    if evicting {
        // maxmemory below what the keyspace holds: the writers' commands evict while the
        // snapshot runs (each eviction a DEL through the snapshot protocol and the log).
        ks.set_memory_config(forkless_keyspace::MemoryConfig {
            maxmemory: ks.used_memory() * 7 / 10,
            policy: forkless_keyspace::EvictionPolicy::AllkeysLru,
            ..Default::default()
        });
    }
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..2u64)
        .map(|t| {
            let (ks, stop) = (ks.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut rng = StdRng::seed_from_u64(50 + t);
                while !stop.load(Ordering::Relaxed) {
                    let db = rng.gen_range(0..3);
                    exec(&ks, db, &command(&mut rng));
                }
            })
        })
        .collect();
    let cut = Arc::new(AtomicUsize::new(usize::MAX));
    let (c2, s2) = (cut.clone(), sink.clone());
    let opts = SnapshotOptions {
        mode,
        batch_buckets: 8,
        serialize_threads: threads,
        on_barrier: Some(Arc::new(move |b| {
            if matches!(
                (mode, b),
                (Mode::PointInTime, Barrier::Start) | (Mode::Converging, Barrier::End)
            ) {
                c2.store(s2.ops().len(), Ordering::SeqCst);
            }
        })),
        ..Default::default()
    };
    let path = match mode {
        Mode::PointInTime => dir.path().join("dump.rdb"),
        Mode::Converging => dir.path().join("appendonly.aof.1.base.rdb"),
    };
    let res = snapshot_to_file(ks.clone(), &obs, &path, opts).expect("snapshot");
    stop.store(true, Ordering::Relaxed);
    if evicting {
        assert!(ks.memory_stats().evicted_keys > 0, "no eviction happened");
    }
    for w in writers {
        w.join().unwrap();
    }
    let expected = common::expected_from_log(&sink.ops(), cut.load(Ordering::SeqCst));
    assert!(!expected.is_empty());
    // Our own replay first (also runs without Redis).
    assert_eq!(
        common::replay(&std::fs::read(&path).unwrap()),
        expected,
        "{mode:?} self-replay"
    );
    let loaded = match mode {
        Mode::PointInTime => redis_load_rdb(&path),
        Mode::Converging => {
            std::fs::write(dir.path().join("appendonly.aof.1.incr.aof"), b"").unwrap();
            std::fs::write(
                dir.path().join("appendonly.aof.manifest"),
                "file appendonly.aof.1.base.rdb seq 1 type b\nfile appendonly.aof.1.incr.aof seq 1 type i\n",
            )
            .unwrap();
            redis_load_aof_dir(dir.path())
        }
    };
    let Some(loaded) = loaded else { return };
    let got =
        loaded.unwrap_or_else(|log| panic!("redis-server refused our {mode:?} snapshot:\n{log}"));
    if got != expected {
        panic!(
            "{mode:?}: redis-server holds something else:\n{}",
            forkless_dump::diff(&expected, &got).join("\n")
        );
    }
    eprintln!("{mode:?}: {res:?}");
}

#[test]
fn point_in_time_snapshot_loads_in_redis_as_dump_rdb() {
    run(Mode::PointInTime, false, 1);
}

/// Issue 16: evictions (DELs propagated through the snapshot protocol) while snapshots run.
#[test]
fn snapshots_with_evictions_during_them_load_in_redis_with_the_expected_state() {
    run(Mode::PointInTime, true, 1);
    run(Mode::Converging, true, 1);
}

#[test]
fn converging_snapshot_loads_in_redis_as_aof_base() {
    run(Mode::Converging, false, 1);
}

/// Issue 13, item 1: a converging snapshot whose deltas hold expiries that have passed when the
/// file is loaded as an AOF base. The script runs after the walk has visited every bucket (one
/// shard, one database, one batch), so all of it is in the deltas. Expected: the hand-written
/// model of survivors and redis-server 7.0.15 loading the file as the base of an AOF directory.
#[test]
fn converging_deltas_replayed_after_ttls_passed_match_redis() {
    use forkless_keyspace::ManualClock;
    use forkless_testkit::expiry;
    let dir = TempDir::new("snap-expired");
    let clock = ManualClock::new(expiry::wall_ms() - expiry::SCRIPT_CLOCK_OFFSET_MS);
    let mut ks = Keyspace::new(
        Config {
            shards: 1,
            databases: 2,
            ..Config::seeded(5)
        }
        .with_clock(clock.clock()),
    );
    let obs = install(&mut ks);
    let ks = Arc::new(ks);
    for i in 0..100 {
        let _ = ks.execute(
            &mut Session::default(),
            &[b"SET", format!("base:{i}").as_bytes(), b"v"],
        );
    }
    let ran = Arc::new(AtomicBool::new(false));
    let (ks2, ran2, clock2) = (ks.clone(), ran.clone(), clock.clone());
    let opts = SnapshotOptions {
        mode: Mode::Converging,
        batch_buckets: 1 << 20,
        after_batch: Some(Arc::new(move |_| {
            if ran2.swap(true, Ordering::SeqCst) {
                return;
            }
            let mut s = Session::default();
            for cmd in expiry::SCRIPT {
                clock2.advance(expiry::SCRIPT_STEP_MS);
                let a: Vec<&[u8]> = cmd.iter().map(|x| x.as_bytes()).collect();
                let r = ks2.execute(&mut s, &a);
                assert!(!r.is_error(), "{cmd:?}: {r:?}");
            }
        })),
        ..Default::default()
    };
    let path = dir.path().join("appendonly.aof.1.base.rdb");
    let res = snapshot_to_file(ks.clone(), &obs, &path, opts).expect("snapshot");
    assert!(ran.load(Ordering::SeqCst));
    assert!(
        res.delta_commands > 0,
        "the script must land in the deltas: {res:?}"
    );
    let got = common::replay(&std::fs::read(&path).unwrap());
    let mut want_keys = expiry::survivors();
    want_keys.extend((0..100).map(|i| (0, format!("base:{i}"))));
    want_keys.sort();
    assert_eq!(expiry::live_keys(&got), want_keys, "model");
    std::fs::write(dir.path().join("appendonly.aof.1.incr.aof"), b"").unwrap();
    std::fs::write(
        dir.path().join("appendonly.aof.manifest"),
        "file appendonly.aof.1.base.rdb seq 1 type b\nfile appendonly.aof.1.incr.aof seq 1 type i\n",
    )
    .unwrap();
    if let Some(r) = redis_load_aof_dir(dir.path()) {
        let redis = r.expect("redis-server loads the converging snapshot as an AOF base");
        assert_eq!(got, redis, "forkless replay vs redis-server");
    }
}
