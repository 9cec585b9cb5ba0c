//! Snapshots back to back, both modes, while 4 writer threads run random mixed commands over
//! 100k keys in 4 databases. The writers' propagated commands are recorded (a `CollectingSink`,
//! fed under the shard locks), and each snapshot's cut is recorded inside its barrier; the
//! expected state is rebuilt independently by replaying the log up to the cut. Each output,
//! replayed into a fresh keyspace, must equal it: the start for point-in-time, the end for
//! converging. Rounds 0-1 encode on the worker, rounds 2-3 on 4 serializer threads.

use crate::common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use forkless_keyspace::{CollectingSink, Config, Keyspace, Session};
use forkless_snapshot::{install, run_snapshot, Barrier, Mode, Progress, SnapshotOptions};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const KEYS: usize = 100_000;
const DBS: u32 = 4;

fn key(rng: &mut StdRng) -> String {
    format!("key:{}", rng.gen_range(0..KEYS))
}

fn random_command(rng: &mut StdRng) -> Vec<String> {
    let k = key(rng);
    let v = rng.gen_range(0..1000).to_string();
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect();
    match rng.gen_range(0..20) {
        0 => s(&["SET", &k, &v]),
        1 => s(&["INCR", &k]),
        2 => s(&["DEL", &k]),
        3 => s(&["RPUSH", &k, &v, "x"]),
        4 => s(&["LPOP", &k]),
        5 => s(&["SADD", &k, &v]),
        6 => s(&["SREM", &k, &v]),
        7 => s(&["ZADD", &k, &v, &v]),
        8 => s(&["ZINCRBY", &k, "1.5", &v]),
        9 => s(&["HSET", &k, &v, &v]),
        10 => s(&["HDEL", &k, &v]),
        11 => s(&["RENAME", &k, &key(rng)]),
        12 => s(&["MSET", &k, &v, &key(rng), &v]),
        13 => s(&["SMOVE", &k, &key(rng), &v]),
        14 => s(&["LMOVE", &k, &key(rng), "LEFT", "RIGHT"]),
        15 => s(&["EXPIRE", &k, "100000"]),
        16 => s(&["COPY", &k, &key(rng), "REPLACE"]),
        17 => s(&["MOVE", &k, &rng.gen_range(0..DBS).to_string()]),
        18 => s(&["SPOP", &k]),
        _ => s(&["APPEND", &k, &v]),
    }
}

fn exec(ks: &Keyspace, db: u32, cmd: &[String]) {
    let argv: Vec<&[u8]> = cmd.iter().map(|a| a.as_bytes()).collect();
    let _ = ks.execute(&mut Session { db }, &argv);
}

#[test]
fn back_to_back_snapshots_under_four_writers() {
    let mut ks = Keyspace::new(Config {
        shards: 8,
        databases: DBS,
        ..Config::seeded(11)
    });
    let sink = Arc::new(CollectingSink::new());
    ks.set_sink(sink.clone());
    let obs = install(&mut ks);
    let ks = Arc::new(ks);
    let mut rng = StdRng::seed_from_u64(5);
    for i in 0..KEYS {
        let db = (i % DBS as usize) as u32;
        let k = format!("key:{i}");
        let cmd: Vec<String> = match i % 4 {
            0 => vec!["SET".into(), k, i.to_string()],
            1 => vec!["RPUSH".into(), k, "a".into(), "b".into()],
            2 => vec!["SADD".into(), k, "m".into(), i.to_string()],
            _ => vec![
                "HSET".into(),
                k,
                "f".into(),
                rng.gen_range(0..9).to_string(),
            ],
        };
        exec(&ks, db, &cmd);
    }

    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..4u64)
        .map(|t| {
            let (ks, stop) = (ks.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut rng = StdRng::seed_from_u64(100 + t);
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let db = rng.gen_range(0..DBS);
                    exec(&ks, db, &random_command(&mut rng));
                    n += 1;
                }
                n
            })
        })
        .collect();

    let mut results = Vec::new();
    for round in 0..4 {
        let mode = if round % 2 == 0 {
            Mode::Converging
        } else {
            Mode::PointInTime
        };
        let cut = Arc::new(AtomicUsize::new(usize::MAX));
        let (c2, s2) = (cut.clone(), sink.clone());
        let opts = SnapshotOptions {
            mode,
            batch_buckets: 16,
            // Both modes with the worker encoding alone and with 4 serializer threads.
            serialize_threads: [1, 1, 4, 4][round],
            on_barrier: Some(Arc::new(move |b| {
                let at_cut = matches!(
                    (mode, b),
                    (Mode::PointInTime, Barrier::Start) | (Mode::Converging, Barrier::End)
                );
                if at_cut {
                    c2.store(s2.ops().len(), Ordering::SeqCst);
                }
            })),
            ..Default::default()
        };
        let ticket = obs.try_begin().unwrap();
        let (out, res) = run_snapshot(
            &ks,
            ticket,
            &opts,
            Vec::new(),
            &Progress::default(),
            &AtomicBool::new(false),
        )
        .unwrap();
        results.push((res, out, cut.load(Ordering::SeqCst)));
    }
    stop.store(true, Ordering::Relaxed);
    let ops: u64 = writers.into_iter().map(|w| w.join().unwrap()).sum();
    let log = sink.ops();
    for (round, (res, out, cut)) in results.iter().enumerate() {
        let got = common::replay(out);
        let expected = common::expected_from_log(&log, *cut);
        if got != expected {
            let d = forkless_dump::diff(&expected, &got);
            panic!(
                "round {round} ({:?}): replay differs from the cut:\n{}",
                res.mode,
                d.join("\n")
            );
        }
    }
    assert!(ops > 1000, "writers ran ({ops} commands)");
    for (r, _, _) in &results {
        assert!(r.keys > 0);
        if r.mode == Mode::Converging {
            assert!(r.delta_commands > 0, "writers hit visited buckets: {r:?}");
        } else {
            assert!(r.forced_visits > 0, "writers hit unvisited buckets: {r:?}");
        }
    }
}
