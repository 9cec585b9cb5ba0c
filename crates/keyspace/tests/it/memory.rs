//! maxmemory: accounting checked against a full recount, each eviction policy's choice on a
//! crafted keyspace, OOM replies, evictions propagated as DEL, OBJECT IDLETIME/FREQ.

use std::sync::Arc;

use forkless_keyspace::db::entry_cost;
use forkless_keyspace::{
    CollectingSink, Config, EvictionPolicy, Keyspace, ManualClock, MemoryConfig, Reply, Session,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const T0: i64 = 1_700_000_000_000;

fn run(ks: &Keyspace, s: &mut Session, cmd: &[&str]) -> Reply {
    let argv: Vec<&[u8]> = cmd.iter().map(|a| a.as_bytes()).collect();
    ks.execute(s, &argv)
}

/// The bytes every live entry costs, recounted element by element (O(n) per value), independent
/// of the incremental counters.
fn recount(ks: &Keyspace) -> i64 {
    let mut total = 0i64;
    for i in 0..ks.num_shards() {
        ks.with_shard(i, |sh| {
            for db in 0..sh.databases() {
                let mut sum = 0i64;
                for (k, slot) in sh.db(db).iter() {
                    let fast = entry_cost(k.len(), slot);
                    let slow = fast - slot.value.mem_usage() as i64
                        + slot.value.mem_usage_recount() as i64;
                    assert_eq!(
                        fast,
                        slow,
                        "O(1) counters of {:?}",
                        String::from_utf8_lossy(k)
                    );
                    sum += slow;
                }
                assert_eq!(sh.db(db).used(), sum, "shard {i} db {db}");
                total += sum;
            }
        });
    }
    total
}

fn random_command(rng: &mut StdRng) -> Vec<String> {
    let k = format!("k{}", rng.gen_range(0..300));
    let k2 = format!("k{}", rng.gen_range(0..300));
    let v: String = "x".repeat(rng.gen_range(0..80));
    let n = rng.gen_range(0..50).to_string();
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect();
    match rng.gen_range(0..24) {
        0 => s(&["SET", &k, &v]),
        1 => s(&["APPEND", &k, &v]),
        2 => s(&["INCRBY", &k, &n]),
        3 => s(&["DEL", &k]),
        4 => s(&["RPUSH", &k, &v, &n]),
        5 => s(&["LPOP", &k]),
        6 => s(&["LSET", &k, "0", &v]),
        7 => s(&["LTRIM", &k, "1", "-2"]),
        8 => s(&["LREM", &k, "0", &n]),
        9 => s(&["LINSERT", &k, "BEFORE", &n, &v]),
        10 => s(&["SADD", &k, &n, &v]),
        11 => s(&["SREM", &k, &n]),
        12 => s(&["SPOP", &k]),
        13 => s(&["HSET", &k, &n, &v]),
        14 => s(&["HDEL", &k, &n]),
        15 => s(&["HINCRBY", &k, &n, "3"]),
        16 => s(&["ZADD", &k, &n, &v]),
        17 => s(&["ZREM", &k, &v]),
        18 => s(&["ZPOPMIN", &k]),
        19 => s(&["ZREMRANGEBYRANK", &k, "0", "1"]),
        20 => s(&["RENAME", &k, &k2]),
        21 => s(&["SETRANGE", &k, &n, &v]),
        22 => s(&["PEXPIRE", &k, "5"]),
        _ => s(&["SUNIONSTORE", &k, &k, &k2]),
    }
}

#[test]
fn used_memory_equals_a_full_recount_after_every_kind_of_write() {
    let clock = ManualClock::new(T0);
    let ks = Keyspace::new(
        Config {
            shards: 4,
            databases: 3,
            ..Config::seeded(3)
        }
        .with_clock(clock.clock()),
    );
    let mut rng = StdRng::seed_from_u64(4);
    let mut s = Session::default();
    for i in 0..20_000 {
        if i % 1000 == 0 {
            s.db = rng.gen_range(0..3);
        }
        let c = random_command(&mut rng);
        let argv: Vec<&[u8]> = c.iter().map(|a| a.as_bytes()).collect();
        ks.execute(&mut s, &argv);
        clock.advance(1);
        if i % 2500 == 0 {
            assert_eq!(ks.used_memory() as i64, recount(&ks), "after {i} commands");
        }
    }
    assert_eq!(ks.used_memory() as i64, recount(&ks));
    assert!(ks.used_memory() > 0);
    // Active expiry, SWAPDB, FLUSHDB, FLUSHALL.
    clock.advance(1000);
    while ks.active_expire_cycle(1000) > 0 {}
    assert_eq!(ks.used_memory() as i64, recount(&ks), "after active expiry");
    run(&ks, &mut s, &["SWAPDB", "0", "2"]);
    assert_eq!(ks.used_memory() as i64, recount(&ks), "after SWAPDB");
    s.db = 1;
    run(&ks, &mut s, &["FLUSHDB"]);
    assert_eq!(ks.used_memory() as i64, recount(&ks), "after FLUSHDB");
    run(&ks, &mut s, &["FLUSHALL"]);
    assert_eq!(ks.used_memory(), 0);
    assert_eq!(recount(&ks), 0);
    // Loading charges too.
    let ks2 = Keyspace::from_entries(Config::seeded(1), ks.dump()).unwrap();
    assert_eq!(ks2.used_memory() as i64, recount(&ks2));
}

/// A keyspace with one shard (so sampling sees every key) and a memory bound `slack` bytes below
/// what it holds after `setup`.
fn bounded(
    policy: EvictionPolicy,
    setup: impl Fn(&Keyspace, &mut Session, &ManualClock),
) -> (Keyspace, Arc<CollectingSink>, ManualClock) {
    let clock = ManualClock::new(T0);
    let mut ks = Keyspace::new(
        Config {
            shards: 1,
            ..Config::seeded(9)
        }
        .with_clock(clock.clock()),
    );
    let sink = Arc::new(CollectingSink::new());
    ks.set_sink(sink.clone());
    ks.set_memory_config(MemoryConfig {
        policy,
        samples: 64,
        ..MemoryConfig::default()
    });
    let mut s = Session::default();
    setup(&ks, &mut s, &clock);
    (ks, sink, clock)
}

fn set_bound(ks: &Keyspace, bytes: u64) {
    let cfg = ks.memory_config();
    ks.set_memory_config(MemoryConfig {
        maxmemory: bytes,
        ..cfg
    });
}

fn keys(ks: &Keyspace) -> Vec<String> {
    ks.dump()
        .iter()
        .map(|e| String::from_utf8_lossy(&e.key).into_owned())
        .collect()
}

fn ten_keys(ks: &Keyspace, s: &mut Session, _: &ManualClock) {
    for i in 0..10 {
        run(ks, s, &["SET", &format!("k{i}"), &"v".repeat(100)]);
    }
}

#[test]
fn allkeys_lru_evicts_the_idle_keys() {
    let (ks, sink, clock) = bounded(EvictionPolicy::AllkeysLru, ten_keys);
    let mut s = Session::default();
    clock.advance(100_000);
    for i in 5..10 {
        run(&ks, &mut s, &["GET", &format!("k{i}")]);
    }
    let per_key = ks.used_memory() / 10;
    // Room for 6 of the 10 keys, and a new key arrives: 5 must go, all of them idle ones.
    set_bound(&ks, per_key * 6 + per_key / 2);
    assert_eq!(
        run(&ks, &mut s, &["SET", "new", &"v".repeat(100)]),
        Reply::ok()
    );
    let left = keys(&ks);
    for i in 5..10 {
        assert!(
            left.contains(&format!("k{i}")),
            "hot k{i} evicted: {left:?}"
        );
    }
    assert!(left.contains(&"new".to_string()));
    // The bound is enforced before each write (as Redis does), so the write itself may pass it.
    assert!(ks.used_memory() <= per_key * 7 + per_key / 2);
    let st = ks.memory_stats();
    assert_eq!(st.evicted_keys, 4);
    // Every eviction was propagated as a DEL of an idle key.
    let dels: Vec<String> = sink
        .ops()
        .iter()
        .filter(|(_, a)| a[0] == b"DEL")
        .map(|(_, a)| String::from_utf8_lossy(&a[1]).into_owned())
        .collect();
    assert_eq!(dels.len(), 4, "{dels:?}");
    assert!(dels
        .iter()
        .all(|k| ["k0", "k1", "k2", "k3", "k4"].contains(&k.as_str())));
}

#[test]
fn allkeys_lfu_keeps_the_hot_keys_and_object_freq_reports_them() {
    let (ks, _, _) = bounded(EvictionPolicy::AllkeysLfu, ten_keys);
    let mut s = Session::default();
    for _ in 0..2000 {
        for i in 0..3 {
            run(&ks, &mut s, &["GET", &format!("k{i}")]);
        }
    }
    let Reply::Integer(hot) = run(&ks, &mut s, &["OBJECT", "FREQ", "k0"]) else {
        panic!()
    };
    let Reply::Integer(cold) = run(&ks, &mut s, &["OBJECT", "FREQ", "k9"]) else {
        panic!()
    };
    assert!(hot > cold && cold <= 6, "freq hot {hot} cold {cold}");
    assert!(run(&ks, &mut s, &["OBJECT", "IDLETIME", "k0"]).is_error());
    let per_key = ks.used_memory() / 10;
    set_bound(&ks, per_key * 4);
    assert!(ks.evict_to_bound());
    let left = keys(&ks);
    for i in 0..3 {
        assert!(
            left.contains(&format!("k{i}")),
            "hot k{i} evicted: {left:?}"
        );
    }
}

#[test]
fn volatile_ttl_evicts_the_nearest_expiry_and_never_a_key_without_ttl() {
    let (ks, _, _) = bounded(EvictionPolicy::VolatileTtl, |ks, s, _| {
        run(ks, s, &["SET", "far", &"v".repeat(100), "EX", "1000"]);
        run(ks, s, &["SET", "near", &"v".repeat(100), "EX", "10"]);
        run(ks, s, &["SET", "mid", &"v".repeat(100), "EX", "100"]);
        run(ks, s, &["SET", "forever", &"v".repeat(100)]);
    });
    let mut s = Session::default();
    let per_key = ks.used_memory() / 4;
    set_bound(&ks, per_key * 3 + per_key / 2);
    assert!(ks.evict_to_bound());
    assert_eq!(keys(&ks), vec!["far", "forever", "mid"]);
    set_bound(&ks, per_key * 2 + per_key / 2);
    assert!(ks.evict_to_bound());
    assert_eq!(keys(&ks), vec!["far", "forever"]);
    // Only keys without a TTL are left: nothing evictable, SET is refused, DEL and GET are not.
    set_bound(&ks, per_key / 2);
    assert!(!ks.evict_to_bound() || ks.used_memory() <= per_key / 2);
    let r = run(&ks, &mut s, &["SET", "x", "y"]);
    assert_eq!(
        r,
        Reply::err("OOM command not allowed when used memory > 'maxmemory'.")
    );
    assert_eq!(
        run(&ks, &mut s, &["GET", "forever"]),
        Reply::bulk("v".repeat(100))
    );
    assert_eq!(run(&ks, &mut s, &["DEL", "forever"]), Reply::Integer(1));
}

#[test]
fn noeviction_refuses_growth_and_random_policies_stay_within_the_bound() {
    let (ks, sink, _) = bounded(EvictionPolicy::NoEviction, ten_keys);
    let mut s = Session::default();
    set_bound(&ks, ks.used_memory() / 2);
    let oom = Reply::err("OOM command not allowed when used memory > 'maxmemory'.");
    assert_eq!(run(&ks, &mut s, &["SET", "x", "y"]), oom);
    assert_eq!(run(&ks, &mut s, &["RPUSH", "l", "y"]), oom);
    assert_eq!(
        run(&ks, &mut s, &["EXPIRE", "k1", "100"]),
        Reply::Integer(1)
    );
    assert_eq!(run(&ks, &mut s, &["DEL", "k1"]), Reply::Integer(1));
    assert_eq!(keys(&ks).len(), 9);
    assert!(sink.ops().iter().all(|(_, a)| a[1] != b"x" && a[1] != b"l"));

    for policy in [
        EvictionPolicy::AllkeysRandom,
        EvictionPolicy::VolatileRandom,
    ] {
        let (ks, _, _) = bounded(policy, |ks, s, _| {
            for i in 0..200 {
                let k = format!("k{i}");
                if i % 2 == 0 {
                    run(ks, s, &["SET", &k, &"v".repeat(50), "EX", "1000"]);
                } else {
                    run(ks, s, &["SET", &k, &"v".repeat(50)]);
                }
            }
        });
        let per_key = ks.used_memory() / 200;
        let bound = ks.used_memory() * 3 / 4;
        set_bound(&ks, bound);
        let mut s = Session::default();
        for i in 0..50 {
            run(
                &ks,
                &mut s,
                &["SET", &format!("v{i}"), &"v".repeat(50), "EX", "1000"],
            );
            assert!(
                ks.used_memory() <= bound + 2 * per_key,
                "{policy}: {} over {bound} after {i}",
                ks.used_memory()
            );
        }
        if policy == EvictionPolicy::VolatileRandom {
            // Keys without a TTL are never chosen.
            let left = keys(&ks);
            for i in (1..200).step_by(2) {
                assert!(left.contains(&format!("k{i}")), "{policy} evicted k{i}");
            }
        }
    }
}

#[test]
fn lowering_maxmemory_at_run_time_evicts_down_to_it() {
    let (ks, _, _) = bounded(EvictionPolicy::AllkeysLru, |ks, s, _| {
        for i in 0..1000 {
            run(ks, s, &["HSET", &format!("h{i}"), "f", &"v".repeat(40)]);
        }
    });
    let before = ks.used_memory();
    set_bound(&ks, before / 3);
    assert!(ks.evict_to_bound());
    assert!(ks.used_memory() <= before / 3);
    let evicted = ks.memory_stats().evicted_keys;
    assert_eq!(ks.dbsize(0) as u64, 1000 - evicted);
}

#[test]
fn object_idletime_and_keyspace_hits() {
    let (ks, _, clock) = bounded(EvictionPolicy::AllkeysLru, ten_keys);
    let mut s = Session::default();
    clock.advance(42_000);
    assert_eq!(
        run(&ks, &mut s, &["OBJECT", "IDLETIME", "k1"]),
        Reply::Integer(42)
    );
    // OBJECT does not touch the key; GET does.
    assert_eq!(
        run(&ks, &mut s, &["OBJECT", "IDLETIME", "k1"]),
        Reply::Integer(42)
    );
    run(&ks, &mut s, &["GET", "k1"]);
    assert_eq!(
        run(&ks, &mut s, &["OBJECT", "IDLETIME", "k1"]),
        Reply::Integer(0)
    );
    assert!(run(&ks, &mut s, &["OBJECT", "FREQ", "k1"]).is_error());
    assert_eq!(
        run(&ks, &mut s, &["OBJECT", "IDLETIME", "nope"]),
        Reply::Nil
    );
    let a = ks.memory_stats();
    run(&ks, &mut s, &["GET", "nope"]);
    run(&ks, &mut s, &["GET", "k2"]);
    run(&ks, &mut s, &["SET", "k3", "w"]);
    let b = ks.memory_stats();
    assert_eq!(
        (
            b.keyspace_hits - a.keyspace_hits,
            b.keyspace_misses - a.keyspace_misses
        ),
        (1, 1)
    );
}
