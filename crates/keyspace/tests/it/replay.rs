//! Replay property: for random command sequences (fixed seeds) with a clock that moves, lazy
//! and active expiry, several databases and every string/key command, replaying the propagated
//! stream into a fresh keyspace (in loading mode, as an AOF load) gives the same dump.

use crate::support;

use forkless_keyspace::{render_aof, Config, Keyspace, ManualClock, Session};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

const T0: i64 = 1_700_000_000_000;
const KEYS: &[&str] = &["a", "b", "c", "d", "e"];
const VALS: &[&str] = &["1", "x", "", "-7", "2.5"];

fn gen(rng: &mut StdRng, now: i64, types: bool) -> Vec<String> {
    let k = KEYS.choose(rng).unwrap().to_string();
    let k2 = KEYS.choose(rng).unwrap().to_string();
    let v = VALS.choose(rng).unwrap().to_string();
    let ms = rng.gen_range(1..200).to_string();
    let s = |x: &[&str]| x.iter().map(|a| a.to_string()).collect::<Vec<_>>();
    match rng.gen_range(0..34) {
        0 => s(&["SET", &k, &v]),
        1 => s(&["SET", &k, &v, "PX", &ms]),
        2 => s(&["SET", &k, &v, "KEEPTTL", "GET"]),
        3 => s(&["SET", &k, &v, "NX", "EX", "1"]),
        4 => s(&["SET", &k, &v, "PXAT", &(now + 50).to_string()]),
        5 => s(&["GET", &k]),
        6 => s(&["GETEX", &k, "PX", &ms]),
        7 => s(&["GETEX", &k, "PERSIST"]),
        8 => s(&["GETDEL", &k]),
        9 => s(&["GETSET", &k, &v]),
        10 => s(&["MSET", &k, &v, &k2, "2"]),
        11 => s(&["MSETNX", &k, &v, &k2, "2"]),
        12 => s(&["APPEND", &k, &v]),
        13 => s(&["INCR", &k]),
        14 => s(&["INCRBYFLOAT", &k, "1.5"]),
        15 => s(&["SETRANGE", &k, "2", &v]),
        16 => s(&["DEL", &k, &k2]),
        17 => s(&["EXPIRE", &k, &rng.gen_range(-1..3).to_string()]),
        18 => s(&[
            "PEXPIRE",
            &k,
            &ms,
            ["NX", "XX", "GT", "LT"].choose(rng).unwrap(),
        ]),
        19 => s(&[
            "PEXPIREAT",
            &k,
            &(now + rng.gen_range(-50..300)).to_string(),
        ]),
        20 => s(&["PERSIST", &k]),
        21 => s(&["RENAME", &k, &k2]),
        22 => s(&["RENAMENX", &k, &k2]),
        23 => s(&[
            "COPY",
            &k,
            &k2,
            "DB",
            &rng.gen_range(0..3).to_string(),
            "REPLACE",
        ]),
        24 => s(&["MOVE", &k, &rng.gen_range(0..3).to_string()]),
        25 => s(&["SELECT", &rng.gen_range(0..3).to_string()]),
        26 => s(&[
            "SWAPDB",
            &rng.gen_range(0..3).to_string(),
            &rng.gen_range(0..3).to_string(),
        ]),
        27 => {
            if rng.gen_bool(0.2) {
                s(&["FLUSHDB"])
            } else {
                s(&["SCAN", "0", "COUNT", "100"])
            }
        }
        28 => s(&["RANDOMKEY"]),
        29 => s(&["EXISTS", &k, &k2]),
        30 if types => s(&["LPUSH", &k, &v, "y"]),
        31 if types => s(&["SADD", &k, &v, "y"]),
        32 if types => s(&["SPOP", &k]),
        33 if types => s(&["HSET", &k, "f", &v]),
        _ => s(&["DECRBY", &k, "3"]),
    }
}

fn run_seed(seed: u64, n: usize) {
    let clock = ManualClock::new(T0);
    let config = Config {
        shards: 4,
        databases: 3,
        ..Config::seeded(seed)
    };
    let (ks, sink) = support::keyspace_with_sink(config.clone().with_clock(clock.clock()));
    let types = ks.has_command("lpush") && ks.has_command("sadd") && ks.has_command("spop");
    let types = types && ks.has_command("hset");
    let mut rng = StdRng::seed_from_u64(seed);
    let mut s = Session::default();
    for _ in 0..n {
        let argv = gen(&mut rng, clock.now(), types);
        let a: Vec<&[u8]> = argv.iter().map(|x| x.as_bytes()).collect();
        ks.execute(&mut s, &a);
        if rng.gen_bool(0.3) {
            clock.advance(rng.gen_range(0..40));
        }
        if rng.gen_bool(0.05) {
            ks.active_expire_cycle(rng.gen_range(1..20));
        }
        // Each table's count of keys with a TTL equals a walk of its slots.
        for db in 0..config.databases {
            let walked: usize = (0..ks.num_shards())
                .map(|sh| {
                    ks.with_shard(sh, |shard| {
                        shard
                            .db(db)
                            .iter()
                            .filter(|(_, s)| s.expire_at().is_some())
                            .count()
                    })
                })
                .sum();
            assert_eq!(
                ks.expires(db),
                walked,
                "seed {seed}: db {db} after {argv:?}"
            );
        }
    }
    let ops = sink.ops();
    let rclock = ManualClock::new(T0);
    let replayed = support::replay(&ops, config.with_clock(rclock.clock()));
    rclock.set(clock.now());
    let (ours, theirs) = (ks.dump(), replayed.dump());
    if let Err(e) = support::dumps_match(&ours, &theirs) {
        let aof = String::from_utf8_lossy(&render_aof(&ops)).into_owned();
        let tail: String = aof
            .chars()
            .rev()
            .take(2000)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        panic!("seed {seed}: replay differs: {e}\n... AOF tail:\n{tail}");
    }
    assert!(!ops.is_empty());
}

#[test]
fn replaying_the_propagated_stream_rebuilds_the_keyspace() {
    for seed in 0..40 {
        run_seed(seed, 600);
    }
}

#[test]
fn a_dump_loaded_into_a_fresh_keyspace_dumps_the_same() {
    let clock = ManualClock::new(T0);
    let ks = Keyspace::new(Config::seeded(9).with_clock(clock.clock()));
    let mut s = Session::default();
    let mut rng = StdRng::seed_from_u64(9);
    for _ in 0..500 {
        let argv = gen(&mut rng, clock.now(), false);
        let a: Vec<&[u8]> = argv.iter().map(|x| x.as_bytes()).collect();
        ks.execute(&mut s, &a);
    }
    let dump = ks.dump();
    let copy = Keyspace::from_entries(Config::seeded(10).with_clock(clock.clock()), dump.clone())
        .expect("load");
    assert_eq!(copy.dump(), dump);
    let bad = vec![forkless_rdb::model::Entry {
        db: 99,
        key: b"k".to_vec(),
        value: forkless_rdb::model::Value::String(b"v".to_vec()),
        expire_at_ms: None,
    }];
    let err = Keyspace::from_entries(Config::seeded(1), bad).unwrap_err();
    assert_eq!(err.index, 0);
    assert!(err.to_string().contains("database 99"), "{err}");
}
