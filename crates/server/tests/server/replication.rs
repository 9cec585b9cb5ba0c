//! Replication against real redis-server 7.0.15 processes (issue 18's checks): stock replicas
//! of a forkless primary full-sync from a forkless snapshot under a write load, resume with
//! PSYNC, and agree with the primary; forkless follows a stock primary (and a forkless one);
//! WAIT; expiry and eviction reach replicas as DELs; a replica never expires keys by itself.
//!
//! Expected states come from redis-server: the stock replica's own dump, or a forkless node's
//! SAVE loaded into a fresh redis-server (`redis_load_rdb`).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use forkless_testkit::{redis_load_rdb, RedisServer, Reply, ReplyExt, TempDir};

use super::common::{Client, TestServer};

fn info(port: u16, section: &str) -> String {
    String::from_utf8(Client::connect(port).call(&["INFO", section]).bytes()).unwrap()
}

fn field(info: &str, name: &str) -> Option<String> {
    info.lines().find_map(|l| {
        l.trim()
            .strip_prefix(&format!("{name}:"))
            .map(str::to_string)
    })
}

fn wait_until(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("timed out waiting for {what}");
}

/// A node's keyspace as redis-server sees it: SAVE, then its RDB loaded into a fresh
/// redis-server.
fn forkless_dump(port: u16, dir: &std::path::Path) -> Vec<forkless_rdb::Entry> {
    assert_eq!(
        Client::connect(port).call(&["SAVE"]),
        Reply::Simple(b"OK".to_vec())
    );
    redis_load_rdb(&dir.join("dump.rdb"))
        .expect("redis-server present")
        .expect("redis-server loads the forkless RDB")
}

/// Wait until `replica_port`'s offset equals the primary's (both sides' INFO replication).
fn wait_offsets_equal(primary: u16, replica: u16) -> u64 {
    let mut last = (String::new(), String::new());
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        let p = field(&info(primary, "replication"), "master_repl_offset").unwrap();
        let r = info(replica, "replication");
        if field(&r, "master_link_status").as_deref() == Some("up") {
            let ro = field(&r, "slave_repl_offset").unwrap();
            if p == ro {
                return p.parse().unwrap();
            }
            last = (p, ro);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!(
        "offsets never matched: primary {} replica {}",
        last.0, last.1
    );
}

/// A continuous write load on `port` (every type, several databases, long TTLs) until stopped.
fn write_load(
    port: u16,
    stop: Arc<AtomicBool>,
    done: Arc<AtomicU64>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut c = Client::connect(port);
        let mut i: u64 = 0;
        while !stop.load(Ordering::Relaxed) {
            let mut batch = 0;
            for _ in 0..50 {
                i += 1;
                let k = format!("load:{}", i % 5000);
                let n = i.to_string();
                let db = (i % 3).to_string();
                let cmds: [Vec<&str>; 8] = [
                    vec!["SELECT", &db],
                    vec!["SET", &k, &n],
                    vec!["INCR", "load:ctr"],
                    vec!["HSET", "load:h", &k, &n],
                    vec!["RPUSH", "load:l", &n],
                    vec!["ZADD", "load:z", &n, &k],
                    vec!["EXPIRE", &k, "100000"],
                    vec!["DEL", "load:gone"],
                ];
                for cmd in &cmds {
                    c.send(cmd);
                    batch += 1;
                }
                if i.is_multiple_of(997) {
                    c.send(&["LTRIM", "load:l", "-100", "-1"]);
                    batch += 1;
                }
            }
            for _ in 0..batch {
                let r = c.read();
                assert!(!matches!(r, Reply::Error(_)), "load write failed: {r:?}");
            }
            done.fetch_add(batch, Ordering::Relaxed);
        }
    })
}

fn populate(port: u16, keys: usize) {
    let mut c = Client::connect(port);
    let mut sent = 0;
    for i in 0..keys {
        let k = format!("key:{i}");
        match i % 5 {
            0 => c.send(&["SET", &k, &format!("value-{i}-{}", "x".repeat(i % 40))]),
            1 => c.send(&["HSET", &k, "a", "1", "b", &i.to_string()]),
            2 => c.send(&["RPUSH", &k, "x", "y", &i.to_string()]),
            3 => c.send(&["SADD", &k, "m1", &i.to_string()]),
            _ => c.send(&["ZADD", &k, "1.5", "m", &i.to_string(), "n"]),
        }
        sent += 1;
        if sent == 1000 {
            for _ in 0..sent {
                c.read();
            }
            sent = 0;
        }
    }
    for _ in 0..sent {
        c.read();
    }
    c.call(&["SET", "ttl:long", "v", "EX", "100000"]);
    c.call(&["SELECT", "5"]);
    c.call(&["SET", "in-db5", "v"]);
}

fn redis_replica(dir: &TempDir, primary: u16, extra: &[&str]) -> Option<RedisServer> {
    let p = primary.to_string();
    let mut args = vec!["--replicaof", "127.0.0.1", p.as_str()];
    args.extend_from_slice(extra);
    RedisServer::start(dir.path(), &args)
}

#[test]
fn a_stock_replica_full_syncs_from_a_forkless_snapshot_under_load_and_equals_the_primary() {
    let primary = TestServer::start(&[]);
    populate(primary.port, 100_000);
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let load = write_load(primary.port, stop.clone(), done.clone());
    std::thread::sleep(Duration::from_millis(200));
    let rdir = TempDir::new("replica");
    let Some(replica) = redis_replica(&rdir, primary.port, &[]) else {
        stop.store(true, Ordering::Relaxed);
        load.join().unwrap();
        return;
    };
    wait_until("the replica online", 120, || {
        info(primary.port, "replication").contains("state=online")
    });
    // Writes go on after the sync, through the stream.
    let at_online = done.load(Ordering::Relaxed);
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);
    load.join().unwrap();
    assert!(
        done.load(Ordering::Relaxed) > at_online,
        "the load kept writing after the sync"
    );
    // WAIT: the replica acknowledges everything written so far.
    let mut c = primary.client();
    c.call(&["SET", "after-load", "1"]);
    let w = c.call(&["WAIT", "1", "5000"]);
    assert_eq!(
        w,
        Reply::Integer(1),
        "WAIT; primary: {}\nreplica log:\n{}",
        info(primary.port, "replication"),
        std::fs::read_to_string(rdir.path().join("redis.log")).unwrap_or_default()
    );
    let off = wait_offsets_equal(primary.port, replica.port());
    assert!(off > 0);
    // Both sides' INFO replication agree.
    let pi = info(primary.port, "replication");
    let ri = String::from_utf8(replica.call(&[b"INFO", b"replication"]).bytes()).unwrap();
    assert_eq!(field(&pi, "master_replid"), field(&ri, "master_replid"));
    assert_eq!(
        field(&pi, "master_repl_offset"),
        field(&ri, "master_repl_offset")
    );
    assert_eq!(field(&pi, "connected_slaves").as_deref(), Some("1"));
    let want = forkless_dump(primary.port, primary.dir.path());
    let got = replica.dump();
    assert!(want.len() > 100_000, "{} keys", want.len());
    assert_eq!(got.len(), want.len(), "key counts differ");
    assert!(
        got == want,
        "the replica's keyspace differs from the primary's"
    );
    // One forkless snapshot, no fork.
    let ps = info(primary.port, "stats");
    assert_eq!(field(&ps, "sync_full").as_deref(), Some("1"));
    assert_eq!(field(&ps, "total_forks").as_deref(), Some("0"));
}

#[test]
fn a_replica_that_reconnects_or_restarts_within_the_backlog_continues_without_a_snapshot() {
    let primary = TestServer::start(&[]);
    populate(primary.port, 2_000);
    let rdir = TempDir::new("replica");
    let Some(replica) = redis_replica(&rdir, primary.port, &[]) else {
        return;
    };
    wait_offsets_equal(primary.port, replica.port());
    let mut c = primary.client();
    // 1. The link drops (CLIENT KILL TYPE master on the replica): PSYNC continues.
    assert!(matches!(
        replica.call(&[b"CLIENT", b"KILL", b"TYPE", b"master"]),
        Reply::Integer(1)
    ));
    c.call(&["SET", "while-reconnecting", "1"]);
    wait_offsets_equal(primary.port, replica.port());
    // 2. The replica restarts (SHUTDOWN SAVE keeps its replication id and offset in its RDB).
    let port = replica.port();
    let out = std::process::Command::new("redis-cli")
        .args(["-p", &port.to_string(), "SHUTDOWN", "SAVE"])
        .output()
        .expect("redis-cli");
    let _ = out;
    drop(replica);
    for i in 0..100 {
        c.call(&["RPUSH", "while-down", &i.to_string()]);
    }
    let replica = redis_replica(&rdir, primary.port, &[]).expect("restart");
    wait_offsets_equal(primary.port, replica.port());
    let ps = info(primary.port, "stats");
    assert_eq!(field(&ps, "sync_full").as_deref(), Some("1"), "{ps}");
    assert_eq!(field(&ps, "sync_partial_ok").as_deref(), Some("2"), "{ps}");
    assert_eq!(
        field(
            &info(primary.port, "replication"),
            "forkless_sync_snapshots"
        )
        .as_deref(),
        Some("1")
    );
    let want = forkless_dump(primary.port, primary.dir.path());
    assert!(replica.dump() == want, "the replica's keyspace differs");
}

#[test]
fn forkless_follows_a_stock_primary_under_load_and_a_stock_replica_chains_off_it() {
    let pdir = TempDir::new("primary");
    let Some(primary) = RedisServer::start(pdir.path(), &["--repl-diskless-sync-delay", "0"])
    else {
        return;
    };
    populate(primary.port(), 20_000);
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let load = write_load(primary.port(), stop.clone(), done.clone());
    let p = primary.port().to_string();
    let replica = TestServer::start(&["--replicaof", "127.0.0.1", &p]);
    wait_until("the forkless replica's link", 60, || {
        field(&info(replica.port, "replication"), "master_link_status").as_deref() == Some("up")
    });
    // A stock replica of the forkless replica.
    let cdir = TempDir::new("chained");
    let chained = redis_replica(&cdir, replica.port, &[]).expect("chained replica");
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);
    load.join().unwrap();
    // The replica refuses writes from clients.
    let e = Client::connect(replica.port).call(&["SET", "x", "1"]);
    assert_eq!(
        e,
        Reply::Error(b"READONLY You can't write against a read only replica.".to_vec())
    );
    let pinfo = String::from_utf8(primary.call(&[b"INFO", b"replication"]).bytes()).unwrap();
    let poff = field(&pinfo, "master_repl_offset").unwrap();
    wait_until("the forkless replica's offset", 60, || {
        field(&info(replica.port, "replication"), "slave_repl_offset") == Some(poff.clone())
    });
    wait_until("the chained replica's offset", 60, || {
        let ci = String::from_utf8(chained.call(&[b"INFO", b"replication"]).bytes()).unwrap();
        field(&ci, "slave_repl_offset") == Some(poff.clone())
    });
    let want = primary.dump();
    assert!(want.len() > 20_000);
    let got = forkless_dump(replica.port, replica.dir.path());
    assert!(
        got == want,
        "the forkless replica differs from the stock primary"
    );
    assert!(chained.dump() == want, "the chained stock replica differs");
    // ROLE on the forkless replica, as Redis answers it.
    let role = Client::connect(replica.port).call(&["ROLE"]);
    let Reply::Array(parts) = role else {
        panic!("ROLE: {role:?}");
    };
    assert_eq!(parts[0], Reply::Bulk(b"slave".to_vec()));
    assert_eq!(parts[2], Reply::Integer(i64::from(primary.port())));
    assert_eq!(parts[3], Reply::Bulk(b"connected".to_vec()));
    // (at least the offset seen above: the primary's periodic PING may have arrived since)
    assert!(matches!(parts[4], Reply::Integer(o) if o >= poff.parse::<i64>().unwrap()));
    // Same id and offset along the chain.
    let ri = info(replica.port, "replication");
    assert_eq!(field(&ri, "master_replid"), field(&pinfo, "master_replid"));
}

#[test]
fn forkless_follows_a_forkless_primary_and_promotion_keeps_the_old_id() {
    let primary = TestServer::start(&[]);
    populate(primary.port, 3_000);
    let p = primary.port.to_string();
    let replica = TestServer::start(&["--replicaof", "127.0.0.1", &p]);
    let mut c = primary.client();
    c.call(&["SET", "after", "1"]);
    c.call(&["SELECT", "7"]);
    c.call(&["MULTI"]);
    c.call(&["INCR", "t"]);
    c.call(&["LPUSH", "tl", "a"]);
    assert!(matches!(c.call(&["EXEC"]), Reply::Array(_)));
    wait_offsets_equal(primary.port, replica.port);
    assert_eq!(c.call(&["WAIT", "1", "5000"]), Reply::Integer(1));
    let want = forkless_dump(primary.port, primary.dir.path());
    let got = forkless_dump(replica.port, replica.dir.path());
    assert!(got == want, "the forkless replica differs");
    // ROLE on the primary: the replica with its acknowledged offset.
    let off = field(&info(primary.port, "replication"), "master_repl_offset").unwrap();
    let role = c.call(&["ROLE"]);
    let Reply::Array(parts) = role else {
        panic!("ROLE: {role:?}");
    };
    assert_eq!(parts[0], Reply::Bulk(b"master".to_vec()));
    assert!(matches!(parts[1], Reply::Integer(o) if o >= off.parse::<i64>().unwrap()));
    let Reply::Array(reps) = &parts[2] else {
        panic!("ROLE replicas: {:?}", parts[2]);
    };
    assert_eq!(reps.len(), 1);
    let before = info(replica.port, "replication");
    let mut r = replica.client();
    assert_eq!(
        r.call(&["REPLICAOF", "NO", "ONE"]),
        Reply::Simple(b"OK".to_vec())
    );
    let after = info(replica.port, "replication");
    assert_eq!(field(&after, "role").as_deref(), Some("master"));
    assert_eq!(
        field(&after, "master_replid2"),
        field(&before, "master_replid")
    );
    assert_ne!(
        field(&after, "master_replid"),
        field(&before, "master_replid")
    );
    assert_eq!(
        r.call(&["SET", "now-writable", "1"]),
        Reply::Simple(b"OK".to_vec())
    );
}

#[test]
fn expiry_and_eviction_on_a_forkless_primary_reach_the_replica_as_dels() {
    let primary = TestServer::start(&["--hz", "100"]);
    let rdir = TempDir::new("replica");
    let Some(replica) = redis_replica(&rdir, primary.port, &[]) else {
        return;
    };
    let mut c = primary.client();
    for i in 0..200 {
        c.call(&["SET", &format!("short:{i}"), "v", "PX", "300"]);
    }
    for i in 0..3000 {
        c.call(&["SET", &format!("keep:{i}"), &"x".repeat(100)]);
    }
    wait_offsets_equal(primary.port, replica.port());
    // The primary's active expiry deletes the short keys; the replica gets DELs.
    wait_until("the short keys gone on the replica", 30, || {
        replica.call(&[b"DBSIZE"]) == Reply::Integer(3000)
    });
    // Eviction: a lower bound evicts at once, each eviction a DEL in the stream.
    c.call(&["CONFIG", "SET", "maxmemory-policy", "allkeys-random"]);
    // About half of what the 3000 keys of 100 bytes take.
    assert_eq!(
        c.call(&["CONFIG", "SET", "maxmemory", "200000"]),
        Reply::Simple(b"OK".to_vec())
    );
    let evicted: u64 = field(&info(primary.port, "stats"), "evicted_keys")
        .unwrap()
        .parse()
        .unwrap();
    assert!(evicted > 0);
    wait_offsets_equal(primary.port, replica.port());
    let want = forkless_dump(primary.port, primary.dir.path());
    let got = replica.dump();
    assert!(got.len() < 3000);
    assert!(got == want, "the replica kept keys the primary evicted");
}

#[test]
fn a_forkless_replica_never_expires_keys_by_itself() {
    let pdir = TempDir::new("primary");
    let Some(primary) = RedisServer::start(
        pdir.path(),
        &[
            "--repl-diskless-sync-delay",
            "0",
            "--enable-debug-command",
            "local",
        ],
    ) else {
        return;
    };
    // Only the primary's lazy expiry may delete: its active expiry is off.
    assert_eq!(
        primary.call(&[b"DEBUG", b"SET-ACTIVE-EXPIRE", b"0"]),
        Reply::Simple(b"OK".to_vec())
    );
    let p = primary.port().to_string();
    let replica = TestServer::start(&["--replicaof", "127.0.0.1", &p, "--hz", "100"]);
    primary.call(&[b"SET", b"k", b"v", b"PX", b"200"]);
    primary.call(&[b"SET", b"other", b"v"]);
    let mut r = replica.client();
    wait_until("the key on the replica", 30, || {
        r.call(&["DBSIZE"]) == Reply::Integer(2)
    });
    std::thread::sleep(Duration::from_millis(400));
    // Past its time: reads see it missing, but it is still there (no DEL from the primary yet).
    assert_eq!(r.call(&["GET", "k"]), Reply::Null);
    assert_eq!(r.call(&["EXISTS", "k"]), Reply::Integer(0));
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(r.call(&["DBSIZE"]), Reply::Integer(2));
    // The primary expires it on access: its DEL removes it on the replica.
    assert_eq!(primary.call(&[b"GET", b"k"]), Reply::Null);
    wait_until("the primary's DEL", 30, || {
        r.call(&["DBSIZE"]) == Reply::Integer(1)
    });
}
