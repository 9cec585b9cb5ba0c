//! RDB `IDLE` (opcode 248) and `FREQ` (249) against redis-server 7.0.15 (issue 16): under an
//! LRU policy our snapshots carry each key's idle seconds and under an LFU policy its counter,
//! as `rdbSaveKeyValuePair` writes them; redis-server loads them into its clocks (`OBJECT
//! IDLETIME` / `OBJECT FREQ` agree) and we load redis-server's into ours. Expected values come
//! from a model (a manual clock: idle = save time - last access) or from a live redis-server
//! given the same commands, never from our own code.

use std::path::Path;

use forkless::{Engine, Reply, Session};
use forkless_keyspace::ManualClock;
use forkless_rdb::{Item, KeyAccess, RdbReader};
use forkless_testkit::{redis_check_rdb, RedisServer, Reply as RespReply, ReplyExt, TempDir};

use super::conf;

const T0: i64 = 1_700_000_000_000;
/// An absolute expiry far in the future of both clocks (2100-01-01).
const FAR: &str = "4102444800000";

fn exec(e: &Engine, argv: &[&[u8]]) -> Reply {
    e.execute(&mut Session::default(), argv)
}

fn int(r: Reply) -> i64 {
    match r {
        Reply::Integer(n) => n,
        other => panic!("expected an integer, got {other:?}"),
    }
}

fn redis_int(r: RespReply) -> i64 {
    match r {
        RespReply::Integer(n) => n,
        other => panic!("expected an integer from redis-server, got {other:?}"),
    }
}

/// The commands that create key `i` of a mix of types (one with an expiry).
fn create(i: usize) -> Vec<Vec<u8>> {
    let k = format!("k{i}");
    let v: Vec<&str> = match i % 5 {
        0 => vec!["SET", &k, "value"],
        1 => vec!["RPUSH", &k, "a", "b"],
        2 => vec!["HSET", &k, "f", "v"],
        3 => vec!["SADD", &k, "m1", "m2"],
        _ => vec!["ZADD", &k, "1", "m"],
    };
    v.into_iter().map(|s| s.as_bytes().to_vec()).collect()
}

fn run(e: &Engine, cmd: &[Vec<u8>]) {
    let argv: Vec<&[u8]> = cmd.iter().map(Vec::as_slice).collect();
    if let Reply::Error(err) = exec(e, &argv) {
        panic!("{:?}: {err}", String::from_utf8_lossy(&cmd.concat()));
    }
}

/// Every key of an RDB file with the access metadata before it.
fn access_in(path: &Path) -> Vec<(Vec<u8>, KeyAccess)> {
    let bytes = std::fs::read(path).unwrap();
    let mut rd = RdbReader::new(&bytes[..]).unwrap();
    let mut out = Vec::new();
    while let Some(item) = rd.next_item().unwrap() {
        if let Item::Entry(e) = item {
            out.push((e.key, rd.last_access()));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn engine_with_clock(dir: &Path, text: &str, clock: &ManualClock) -> Engine {
    Engine::builder(dir)
        .config(conf(text))
        .clock(clock.clock())
        .seed(7)
        .open()
        .unwrap()
}

/// Idle times set through a manual clock; the saved `IDLE`s equal the model; redis-server
/// loads them (OBJECT IDLETIME within the seconds the test takes); so do we, exactly.
#[test]
fn lru_idle_times_go_to_redis_server_and_back() {
    let tmp = TempDir::new("engine-rdb-idle");
    let text = "save \"\"\nmaxmemory-policy allkeys-lru\nsnapshot-mode pit\n";
    let idles: [u64; 6] = [1_000_000, 86_400, 3_600, 90, 5, 0];
    let t_save = T0 + 2_000_000_000;
    let clock = ManualClock::new(T0);
    let e = engine_with_clock(tmp.path(), text, &clock);
    for (i, idle) in idles.iter().enumerate() {
        clock.set(t_save - *idle as i64 * 1000);
        run(&e, &create(i));
    }
    clock.set(t_save);
    // A write touches the key: k5 (idle 0) gets its expiry now.
    run(
        &e,
        &[
            b"PEXPIREAT".to_vec(),
            b"k5".to_vec(),
            FAR.as_bytes().to_vec(),
        ],
    );
    for (i, idle) in idles.iter().enumerate() {
        let k = format!("k{i}");
        assert_eq!(
            int(exec(&e, &[b"OBJECT", b"IDLETIME", k.as_bytes()])) as u64,
            *idle,
            "{k}: our clock before saving"
        );
    }
    e.snapshot_now(None).unwrap();
    let live = e.keyspace().dump();
    e.shutdown().unwrap();
    drop(e);
    let file = tmp.path().join("dump.rdb");
    let want: Vec<(Vec<u8>, KeyAccess)> = idles
        .iter()
        .enumerate()
        .map(|(i, idle)| {
            (
                format!("k{i}").into_bytes(),
                KeyAccess {
                    idle_secs: Some(*idle),
                    freq: None,
                },
            )
        })
        .collect();
    assert_eq!(access_in(&file), want, "IDLE per key, no FREQ");
    if let Some(r) = redis_check_rdb(&file) {
        r.unwrap_or_else(|log| panic!("redis-check-rdb refuses our file:\n{log}"));
    }

    // We load our own file back into the clocks, exactly (same manual time).
    let e = engine_with_clock(tmp.path(), text, &clock);
    for (i, idle) in idles.iter().enumerate() {
        let k = format!("k{i}");
        assert_eq!(
            int(exec(&e, &[b"OBJECT", b"IDLETIME", k.as_bytes()])) as u64,
            *idle,
            "{k}: reloaded"
        );
    }
    e.shutdown().unwrap();
    drop(e);

    // redis-server loads it into its LRU clocks.
    let rdir = TempDir::new("engine-rdb-idle-redis");
    std::fs::copy(&file, rdir.path().join("dump.rdb")).unwrap();
    let Some(redis) = RedisServer::start(
        rdir.path(),
        &[
            "--dbfilename",
            "dump.rdb",
            "--maxmemory-policy",
            "allkeys-lru",
        ],
    ) else {
        return;
    };
    for (i, idle) in idles.iter().enumerate() {
        let k = format!("k{i}");
        let got = redis_int(redis.call(&[b"OBJECT", b"IDLETIME", k.as_bytes()])) as u64;
        assert!(
            (*idle..=idle + 5).contains(&got),
            "{k}: redis-server's OBJECT IDLETIME {got}, saved idle {idle}"
        );
    }
    // (After the idle times: reading the values touches the keys.)
    assert_eq!(redis.dump(), live, "redis-server loads the same keyspace");
}

/// LFU counters with `lfu-log-factor 0` (every access increments): the same commands give
/// redis-server and us the same counters; the saved `FREQ`s are those; redis-server loads
/// them; so do we.
#[test]
fn lfu_counters_go_to_redis_server_and_back() {
    let tmp = TempDir::new("engine-rdb-freq");
    let text = "save \"\"\nmaxmemory-policy allkeys-lfu\nlfu-log-factor 0\n\
                snapshot-mode pit\n";
    let odir = TempDir::new("engine-rdb-freq-oracle");
    let oracle = RedisServer::start(
        odir.path(),
        &["--maxmemory-policy", "allkeys-lfu", "--lfu-log-factor", "0"],
    );
    let hits: [usize; 6] = [0, 1, 10, 100, 249, 400];
    let clock = ManualClock::new(T0);
    let e = engine_with_clock(tmp.path(), text, &clock);
    for (i, n) in hits.iter().enumerate() {
        let create = create(i);
        run(&e, &create);
        let k = format!("k{i}");
        // A read of the key's type, so that every key is touched the same way.
        let read: Vec<&[u8]> = match i % 5 {
            0 => vec![b"GET", k.as_bytes()],
            1 => vec![b"LLEN", k.as_bytes()],
            2 => vec![b"HGET", k.as_bytes(), b"f"],
            3 => vec![b"SCARD", k.as_bytes()],
            _ => vec![b"ZSCORE", k.as_bytes(), b"m"],
        };
        for _ in 0..*n {
            exec(&e, &read);
        }
        if let Some(o) = &oracle {
            let argv: Vec<&[u8]> = create.iter().map(Vec::as_slice).collect();
            o.call(&argv);
            let reads: Vec<Vec<Vec<u8>>> = (0..*n)
                .map(|_| read.iter().map(|a| a.to_vec()).collect())
                .collect();
            o.pipeline(&reads);
        }
    }
    let mut ours = Vec::new();
    for (i, n) in hits.iter().enumerate() {
        let k = format!("k{i}");
        let f = int(exec(&e, &[b"OBJECT", b"FREQ", k.as_bytes()]));
        assert_eq!(f, (5 + *n as i64).min(255), "{k}: the model of factor 0");
        if let Some(o) = &oracle {
            let theirs = redis_int(o.call(&[b"OBJECT", b"FREQ", k.as_bytes()]));
            // redis-server's clock is real: a minute boundary during the test decays by one.
            assert!(
                theirs == f || theirs + 1 == f,
                "{k}: ours {f}, redis-server {theirs}"
            );
        }
        ours.push((k.into_bytes(), f as u8));
    }
    drop(oracle);
    e.snapshot_now(None).unwrap();
    e.shutdown().unwrap();
    drop(e);
    let file = tmp.path().join("dump.rdb");
    let want: Vec<(Vec<u8>, KeyAccess)> = ours
        .iter()
        .map(|(k, f)| {
            (
                k.clone(),
                KeyAccess {
                    idle_secs: None,
                    freq: Some(*f),
                },
            )
        })
        .collect();
    assert_eq!(access_in(&file), want, "FREQ per key, no IDLE");
    if let Some(r) = redis_check_rdb(&file) {
        r.unwrap_or_else(|log| panic!("redis-check-rdb refuses our file:\n{log}"));
    }

    let e = engine_with_clock(tmp.path(), text, &clock);
    for (k, f) in &ours {
        assert_eq!(
            int(exec(&e, &[b"OBJECT", b"FREQ", k])),
            *f as i64,
            "{}: reloaded",
            String::from_utf8_lossy(k)
        );
    }
    e.shutdown().unwrap();
    drop(e);

    let rdir = TempDir::new("engine-rdb-freq-redis");
    std::fs::copy(&file, rdir.path().join("dump.rdb")).unwrap();
    let Some(redis) = RedisServer::start(
        rdir.path(),
        &[
            "--dbfilename",
            "dump.rdb",
            "--maxmemory-policy",
            "allkeys-lfu",
        ],
    ) else {
        return;
    };
    for (k, f) in &ours {
        let got = redis_int(redis.call(&[b"OBJECT", b"FREQ", k]));
        assert!(
            got == *f as i64 || got + 1 == *f as i64,
            "{}: redis-server's OBJECT FREQ {got}, saved {f}",
            String::from_utf8_lossy(k)
        );
    }
}

/// Under a policy that is neither LRU nor LFU no key carries `IDLE` or `FREQ` (as Redis).
#[test]
fn other_policies_write_neither_opcode() {
    for policy in ["noeviction", "volatile-ttl", "allkeys-random"] {
        let tmp = TempDir::new("engine-rdb-noaccess");
        let text = format!("save \"\"\nmaxmemory-policy {policy}\nsnapshot-mode pit\n");
        let e = Engine::open(tmp.path(), conf(&text)).unwrap();
        for i in 0..5 {
            run(&e, &create(i));
        }
        e.snapshot_now(None).unwrap();
        e.shutdown().unwrap();
        let got = access_in(&tmp.path().join("dump.rdb"));
        assert_eq!(got.len(), 5);
        assert!(got.iter().all(|(_, a)| a.is_empty()), "{policy}: {got:?}");
    }
}

/// redis-server's own files: keys given idle times / counters with RESTORE ... IDLETIME / FREQ,
/// saved by redis-server under allkeys-lru / allkeys-lfu, load into our clocks.
#[test]
fn redis_server_idle_and_freq_load_into_our_clocks() {
    let idles: [u64; 5] = [0, 7, 600, 50_000, 3_000_000];
    let freqs: [u8; 5] = [0, 4, 50, 200, 255];
    for lfu in [false, true] {
        let rdir = TempDir::new("engine-rdb-from-redis");
        let policy = if lfu { "allkeys-lfu" } else { "allkeys-lru" };
        let Some(redis) = RedisServer::start(rdir.path(), &["--maxmemory-policy", policy]) else {
            return;
        };
        for i in 0..5 {
            let cmd = create(i);
            let argv: Vec<&[u8]> = cmd.iter().map(Vec::as_slice).collect();
            redis.call(&argv);
            let k = format!("k{i}");
            let payload = redis.call(&[b"DUMP", k.as_bytes()]).bytes();
            let (opt, val): (&[u8], String) = if lfu {
                (b"FREQ", freqs[i].to_string())
            } else {
                (b"IDLETIME", idles[i].to_string())
            };
            // k3 gets an absolute expiry in the same command (a later PEXPIREAT would touch it).
            let mut argv: Vec<&[u8]> = vec![b"RESTORE", k.as_bytes()];
            if i == 3 {
                argv.extend_from_slice(&[FAR.as_bytes(), &payload, b"REPLACE", b"ABSTTL"]);
            } else {
                argv.extend_from_slice(&[b"0", &payload, b"REPLACE"]);
            }
            argv.extend_from_slice(&[opt, val.as_bytes()]);
            let r = redis.call(&argv);
            assert!(matches!(r, RespReply::Simple(_)), "RESTORE: {r:?}");
        }
        redis.call(&[b"SAVE"]);
        let theirs = redis.dump();
        drop(redis);
        let file = rdir.path().join("dump.rdb");
        let saved = access_in(&file);
        assert_eq!(saved.len(), 5);
        for (i, (k, a)) in saved.iter().enumerate() {
            // The opcodes are really in redis-server's file (the test is not vacuous).
            if lfu {
                assert!(
                    a.idle_secs.is_none()
                        && a.freq
                            .is_some_and(|f| u16::from(f) + 1 >= u16::from(freqs[i])),
                    "{k:?}: {a:?}"
                );
            } else {
                assert!(
                    a.freq.is_none() && a.idle_secs.is_some_and(|s| s >= idles[i]),
                    "{k:?}: {a:?}"
                );
            }
        }
        // Our engine under the same policy, and under noeviction (Redis applies IDLE under
        // every non-LFU policy).
        let policies: &[&str] = if lfu {
            &["allkeys-lfu"]
        } else {
            &["allkeys-lru", "noeviction"]
        };
        for ours in policies {
            let tmp = TempDir::new("engine-rdb-from-redis-ours");
            std::fs::copy(&file, tmp.path().join("dump.rdb")).unwrap();
            let e = Engine::open(
                tmp.path(),
                conf(&format!("save \"\"\nmaxmemory-policy {ours}\n")),
            )
            .unwrap();
            assert_eq!(e.keyspace().dump(), theirs, "same keyspace");
            for (k, a) in &saved {
                let name = String::from_utf8_lossy(k);
                if lfu {
                    let got = int(exec(&e, &[b"OBJECT", b"FREQ", k]));
                    let f = a.freq.unwrap() as i64;
                    assert!(got == f || got + 1 == f, "{name}: ours {got}, saved {f}");
                } else {
                    let got = int(exec(&e, &[b"OBJECT", b"IDLETIME", k])) as u64;
                    let s = a.idle_secs.unwrap();
                    assert!((s..=s + 5).contains(&got), "{name}: ours {got}, saved {s}");
                }
            }
            e.shutdown().unwrap();
        }
    }
}

/// An AOF rewrite with the RDB preamble carries the clocks too, and reopening reads them.
#[test]
fn aof_rewrite_preamble_keeps_idle_times() {
    let tmp = TempDir::new("engine-rdb-idle-aof");
    let text = "save \"\"\nappendonly yes\nappendfsync no\naof-use-rdb-preamble yes\n\
                maxmemory-policy allkeys-lru\n";
    let clock = ManualClock::new(T0);
    let e = engine_with_clock(tmp.path(), text, &clock);
    let idles: [u64; 3] = [7_200, 60, 0];
    for (i, idle) in idles.iter().enumerate() {
        clock.set(T0 + 10_000_000 - *idle as i64 * 1000);
        run(&e, &create(i));
    }
    clock.set(T0 + 10_000_000);
    e.rewrite_now().unwrap();
    e.shutdown().unwrap();
    drop(e);
    let e = engine_with_clock(tmp.path(), text, &clock);
    for (i, idle) in idles.iter().enumerate() {
        let k = format!("k{i}");
        assert_eq!(
            int(exec(&e, &[b"OBJECT", b"IDLETIME", k.as_bytes()])) as u64,
            *idle,
            "{k}"
        );
    }
    e.shutdown().unwrap();
}
