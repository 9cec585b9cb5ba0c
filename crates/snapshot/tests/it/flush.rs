//! FLUSHDB / FLUSHALL / SWAPDB during a snapshot (issue 19): O(1) for the writer, and the
//! snapshot still equals the state at its start (point-in-time) or its end (converging).
//!
//! * `flush_and_swap_visit_no_bucket`: the work bound. The walk is under way over 40,000 keys
//!   in four databases when SWAPDB, FLUSHDB and FLUSHALL run; the writer visits no bucket and
//!   hands no key over (`forced_visits` counts every bucket a writer visited; before, these
//!   commands visited every unvisited bucket of the databases involved under the locks); the
//!   output still holds every start key exactly once and equals the model.
//! * `random_flush_swap_against_a_model`: seeded random SET / APPEND / INCR / DEL / MOVE /
//!   SWAPDB / FLUSHDB / FLUSHALL interleaved with the walk, both modes, the replayed output
//!   compared with an independent model of the commands (one `BTreeMap` per database), taken
//!   at the snapshot's start (point-in-time) or end (converging).

use crate::common;
use std::collections::BTreeMap;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use forkless_sync::Mutex;

use forkless_keyspace::{Config, Keyspace, Session};
use forkless_rdb::model::Value;
use forkless_snapshot::{install, run_snapshot, Mode, Progress, SnapshotOptions};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const DBS: u32 = 4;

fn keyspace() -> (Arc<Keyspace>, Arc<forkless_snapshot::SnapshotObserver>) {
    let mut ks = Keyspace::new(Config {
        shards: 4,
        ..Config::seeded(11)
    });
    let obs = install(&mut ks);
    (Arc::new(ks), obs)
}

fn cmd(ks: &Keyspace, db: u32, args: &[String]) -> forkless_keyspace::Reply {
    let argv: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
    ks.execute(&mut Session { db }, &argv)
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

/// The model: one map per database, key → string value.
type Model = Vec<BTreeMap<String, String>>;

/// Applies one command to the model (Redis's semantics for these commands, written out).
fn model_apply(m: &mut Model, db: u32, argv: &[String]) {
    let d = db as usize;
    match argv[0].as_str() {
        "SET" => {
            m[d].insert(argv[1].clone(), argv[2].clone());
        }
        "APPEND" => m[d].entry(argv[1].clone()).or_default().push_str(&argv[2]),
        "INCR" => {
            let v = m[d].entry(argv[1].clone()).or_insert_with(|| "0".into());
            *v = (v.parse::<i64>().unwrap() + 1).to_string();
        }
        "DEL" => {
            m[d].remove(&argv[1]);
        }
        "MOVE" => {
            let to: usize = argv[2].parse().unwrap();
            if to != d && !m[to].contains_key(&argv[1]) {
                if let Some(v) = m[d].remove(&argv[1]) {
                    m[to].insert(argv[1].clone(), v);
                }
            }
        }
        "SWAPDB" => {
            let (a, b): (usize, usize) = (argv[1].parse().unwrap(), argv[2].parse().unwrap());
            m.swap(a, b);
        }
        "FLUSHDB" => m[d].clear(),
        "FLUSHALL" => m.iter_mut().for_each(BTreeMap::clear),
        other => unreachable!("{other}"),
    }
}

fn random_cmd(rng: &mut StdRng) -> (u32, Vec<String>) {
    let db = rng.gen_range(0..DBS);
    let k = format!("k{}", rng.gen_range(0..3000));
    let n = format!("n{}", rng.gen_range(0..500));
    let argv = match rng.gen_range(0..1000) {
        0..=399 => s(&["SET", &k, &format!("v{}", rng.gen_range(0..100))]),
        400..=599 => s(&["APPEND", &k, "+"]),
        600..=749 => s(&["INCR", &n]),
        750..=899 => s(&["DEL", &k]),
        900..=979 => s(&[
            "MOVE",
            &k,
            &((db + rng.gen_range(1..DBS)) % DBS).to_string(),
        ]),
        980..=991 => s(&[
            "SWAPDB",
            &rng.gen_range(0..DBS).to_string(),
            &rng.gen_range(0..DBS).to_string(),
        ]),
        992..=998 => s(&["FLUSHDB"]),
        _ => s(&["FLUSHALL"]),
    };
    (db, argv)
}

/// The replayed output as the model's shape (every value here is a string).
fn as_model(entries: Vec<forkless_rdb::model::Entry>) -> Model {
    let mut m: Model = vec![BTreeMap::new(); DBS as usize];
    for e in entries {
        let Value::String(v) = e.value else {
            panic!("not a string: {:?}", e.key)
        };
        m[e.db as usize].insert(
            String::from_utf8(e.key).unwrap(),
            String::from_utf8(v).unwrap(),
        );
    }
    m
}

fn first_difference(want: &Model, got: &Model) -> Option<String> {
    for db in 0..DBS as usize {
        for (k, v) in &want[db] {
            if got[db].get(k) != Some(v) {
                return Some(format!(
                    "db {db} key {k}: want {v:?}, got {:?}",
                    got[db].get(k)
                ));
            }
        }
        for (k, v) in &got[db] {
            if !want[db].contains_key(k) {
                return Some(format!("db {db} key {k}: unexpected {v:?}"));
            }
        }
    }
    None
}

#[test]
fn random_flush_swap_against_a_model() {
    for seed in 0..6u64 {
        for mode in [Mode::Converging, Mode::PointInTime] {
            let (ks, obs) = keyspace();
            let rng = StdRng::seed_from_u64(seed);
            let mut model: Model = vec![BTreeMap::new(); DBS as usize];
            // Set-up without FLUSH/SWAP so there is something to walk.
            for i in 0..6000 {
                let argv = s(&["SET", &format!("k{}", i % 3000), &format!("s{i}")]);
                let db = (i % DBS as usize) as u32;
                assert!(!cmd(&ks, db, &argv).is_error());
                model_apply(&mut model, db, &argv);
            }
            let at_start = model.clone();
            let shared = Arc::new(Mutex::new((rng, model)));
            let (ks2, sh2) = (ks.clone(), shared.clone());
            let opts = SnapshotOptions {
                mode,
                batch_buckets: 8,
                after_batch: Some(Arc::new(move |_| {
                    let mut g = sh2.lock();
                    let (rng, model) = &mut *g;
                    for _ in 0..rng.gen_range(0..6) {
                        let (db, argv) = random_cmd(rng);
                        let r = cmd(&ks2, db, &argv);
                        assert!(!r.is_error(), "{argv:?}: {r:?}");
                        model_apply(model, db, &argv);
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
            let want = match mode {
                Mode::PointInTime => at_start,
                Mode::Converging => shared.lock().1.clone(),
            };
            let got = as_model(common::replay(&out));
            if let Some(d) = first_difference(&want, &got) {
                panic!("seed {seed} {mode:?}: {d} ({res:?})");
            }
        }
    }
}

#[test]
fn flush_and_swap_visit_no_bucket() {
    for mode in [Mode::Converging, Mode::PointInTime] {
        let (ks, obs) = keyspace();
        let mut model: Model = vec![BTreeMap::new(); DBS as usize];
        for i in 0..40_000 {
            let db = (i % DBS as usize) as u32;
            let argv = s(&["SET", &format!("key:{i}"), &i.to_string()]);
            assert!(!cmd(&ks, db, &argv).is_error());
            model_apply(&mut model, db, &argv);
        }
        let at_start = model.clone();
        let (ks2, m2) = (ks.clone(), Arc::new(Mutex::new(model)));
        let m3 = m2.clone();
        let lens = Arc::new(Mutex::new(Vec::new()));
        let l2 = lens.clone();
        let opts = SnapshotOptions {
            mode,
            batch_buckets: 64,
            after_batch: Some(Arc::new(move |i| {
                let script: &[(u32, &[&str])] = match i {
                    3 => &[(0, &["SWAPDB", "0", "1"])],
                    5 => &[(2, &["FLUSHDB"]), (2, &["SET", "after-flush", "1"])],
                    7 => &[(3, &["SWAPDB", "3", "2"]), (0, &["FLUSHALL"])],
                    9 => &[(1, &["SET", "after-flushall", "x"])],
                    _ => &[],
                };
                for (db, argv) in script {
                    let argv = s(argv);
                    assert!(!cmd(&ks2, *db, &argv).is_error());
                    model_apply(&mut m2.lock(), *db, &argv);
                }
                if i == 7 {
                    // FLUSHALL took the tables out: the keyspace is empty at once.
                    l2.lock()
                        .push(ks2.dbsize(0) + ks2.dbsize(1) + ks2.dbsize(2));
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
        // The bound: no writer visited a bucket or handed a key over.
        assert_eq!(res.forced_visits, 0, "{mode:?}: writers visited buckets");
        assert_eq!(*lens.lock(), vec![0]);
        assert_eq!(
            res.keys, 40_000,
            "{mode:?}: every start key serialized once"
        );
        let want = match mode {
            Mode::PointInTime => at_start,
            Mode::Converging => m3.lock().clone(),
        };
        let got = as_model(common::replay(&out));
        if let Some(d) = first_difference(&want, &got) {
            panic!("{mode:?}: {d}");
        }
    }
}
