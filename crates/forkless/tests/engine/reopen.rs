//! Open, write, close, reopen in every persistence mode: the state is equal to what was
//! written (checked against a model of the writes and against the live dump).

use std::collections::BTreeMap;
use std::time::Duration;

use forkless::{LoadSource, PersistenceMode, Reply, Session};
use forkless_testkit::TempDir;

use super::{conf, open};

/// Writes a fixed workload; returns the model of the string keys of db 0 and db 3.
fn workload(e: &forkless::Engine) -> BTreeMap<(u32, Vec<u8>), Vec<u8>> {
    let mut model = BTreeMap::new();
    for i in 0..500u32 {
        let k = format!("k{i}").into_bytes();
        let v = format!("value-{i}-{}", "x".repeat((i % 40) as usize)).into_bytes();
        let db = if i % 5 == 0 { 3 } else { 0 };
        e.set(db, &k, &v).unwrap();
        model.insert((db, k), v);
    }
    for i in 0..50u32 {
        let k = format!("k{i}").into_bytes();
        let db = if i % 5 == 0 { 3 } else { 0 };
        if i % 2 == 0 {
            e.del(db, &[&k]).unwrap();
            model.remove(&(db, k));
        }
    }
    for _ in 0..7 {
        e.incr(0, b"counter").unwrap();
    }
    model.insert((0, b"counter".to_vec()), b"7".to_vec());
    e.set_ex(0, b"ttl-long", b"stays", Duration::from_secs(3600))
        .unwrap();
    model.insert((0, b"ttl-long".to_vec()), b"stays".to_vec());
    e.lpush(1, b"list", &[b"a", b"b", b"c"]).unwrap();
    e.hset(2, b"hash", b"f", b"v").unwrap();
    e.sadd(2, b"set", &[b"m1", b"m2"]).unwrap();
    e.transaction(&mut Session { db: 4 }, |tx| {
        tx.set(b"tx-a", b"1")
            .incr(b"tx-a")
            .cmd(&[b"RPUSH", b"tx-l", b"x"]);
    })
    .unwrap();
    model
}

fn check(e: &forkless::Engine, model: &BTreeMap<(u32, Vec<u8>), Vec<u8>>) {
    for ((db, k), v) in model {
        assert_eq!(
            e.get(*db, k).unwrap().as_deref(),
            Some(v.as_slice()),
            "db {db} key {}",
            String::from_utf8_lossy(k)
        );
    }
    assert_eq!(e.get(0, b"k0").unwrap(), None);
    assert_eq!(
        e.lrange(1, b"list", 0, -1).unwrap(),
        vec![b"c".to_vec(), b"b".to_vec(), b"a".to_vec()]
    );
    assert_eq!(e.hget(2, b"hash", b"f").unwrap(), Some(b"v".to_vec()));
    assert_eq!(e.get(4, b"tx-a").unwrap(), Some(b"2".to_vec()));
    let ttl = e.ttl(0, b"ttl-long").unwrap().expect("ttl kept");
    assert!(ttl > Duration::from_secs(3000), "{ttl:?}");
    assert_eq!(
        e.execute(&mut Session { db: 2 }, &[b"SCARD", b"set"]),
        Reply::Integer(2)
    );
}

fn round_trip(text: &str, mode: PersistenceMode) {
    let tmp = TempDir::new("engine-reopen");
    let c = conf(text);
    let e = open(tmp.path(), &c);
    assert_eq!(e.mode(), mode);
    assert_eq!(e.open_report().source, LoadSource::Empty);
    let model = workload(&e);
    check(&e, &model);
    let before = e.keyspace().dump();
    let rep = e.shutdown().unwrap();
    assert!(rep.errors.is_empty(), "{rep:?}");
    drop(e);
    let e = open(tmp.path(), &c);
    assert_ne!(e.open_report().source, LoadSource::Empty, "{text}");
    check(&e, &model);
    assert_eq!(
        e.keyspace().dump(),
        before,
        "{text}: reopened state differs"
    );
    // Once more after more writes and a rewrite / snapshot.
    e.set(0, b"after", b"reopen").unwrap();
    match mode {
        PersistenceMode::Aof => {
            e.rewrite_now().unwrap();
            e.set(0, b"after-rewrite", b"1").unwrap();
        }
        _ => {
            e.snapshot_now(None).unwrap();
            e.set(0, b"after-snapshot", b"1").unwrap();
        }
    }
    let before = e.keyspace().dump();
    drop(e);
    let e = open(tmp.path(), &c);
    assert_eq!(e.keyspace().dump(), before, "{text}: second reopen differs");
}

#[test]
fn snapshots_point_in_time() {
    // save rules set: shutdown takes the final snapshot, as redis-server.
    round_trip("save 3600 1\n", PersistenceMode::Snapshots);
}

#[test]
fn snapshots_converging() {
    round_trip(
        "save 3600 1\nsnapshot-mode converging\n",
        PersistenceMode::Snapshots,
    );
}

#[test]
fn aof_everysec() {
    round_trip("appendonly yes\nsave \"\"\n", PersistenceMode::Aof);
}

#[test]
fn aof_always_resp_base() {
    round_trip(
        "appendonly yes\nappendfsync always\naof-use-rdb-preamble no\nsave \"\"\n",
        PersistenceMode::Aof,
    );
}

#[test]
fn segments() {
    round_trip(
        "persistence segments\nappendfsync always\nsave \"\"\nsegment-bytes 8kb\n",
        PersistenceMode::Segments,
    );
}

#[test]
fn no_persistence_starts_empty() {
    let tmp = TempDir::new("engine-none");
    let c = conf("save \"\"\n");
    let e = open(tmp.path(), &c);
    e.set(0, b"k", b"v").unwrap();
    drop(e);
    let e = open(tmp.path(), &c);
    assert_eq!(e.open_report().source, LoadSource::Empty);
    assert_eq!(e.dbsize(0), 0);
}

#[test]
fn turning_aof_on_keeps_the_snapshot_data() {
    let tmp = TempDir::new("engine-switch");
    let e = open(tmp.path(), &conf("save 3600 1\n"));
    let model = workload(&e);
    drop(e);
    let c = conf("appendonly yes\n");
    let e = open(tmp.path(), &c);
    assert!(matches!(
        e.open_report().source,
        LoadSource::SnapshotIntoNewAof(_)
    ));
    check(&e, &model);
    e.set(0, b"new", b"1").unwrap();
    drop(e);
    std::fs::remove_file(tmp.path().join("dump.rdb")).unwrap();
    let e = open(tmp.path(), &c);
    assert!(matches!(e.open_report().source, LoadSource::Aof(_)));
    check(&e, &model);
    assert_eq!(e.get(0, b"new").unwrap(), Some(b"1".to_vec()));
}

/// Wait until the AOF asked for by `CONFIG SET appendonly yes` runs (its start is a background
/// point-in-time snapshot).
fn wait_aof_started(e: &forkless::Engine) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while e.stats().rewrite_in_progress || e.stats().aof.is_none() {
        assert!(
            std::time::Instant::now() < deadline,
            "the AOF did not start"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// `CONFIG SET appendonly` at run time: on (the AOF starts from a snapshot of what is there),
/// off (writes stop reaching it), on again (a new generation replaces the stale one, whose
/// files are deleted). A reopen with `appendonly yes` loads exactly the model of every write
/// made (the writes while off included: the second start's snapshot holds them).
#[test]
fn appendonly_on_off_on_at_run_time() {
    let tmp = TempDir::new("engine-aof-runtime");
    let e = open(tmp.path(), &conf("save \"\"\n"));
    assert_eq!(e.mode(), PersistenceMode::Snapshots);
    let mut model = workload(&e);
    e.config_set(&[("appendonly", "yes")]).unwrap();
    assert_eq!(
        e.mode(),
        PersistenceMode::Aof,
        "aof_enabled from the request on"
    );
    wait_aof_started(&e);
    let adir = tmp.path().join("appendonlydir");
    let first: Vec<String> = names(&adir);
    assert!(first.iter().any(|n| n.ends_with(".base.rdb")), "{first:?}");
    e.set(0, b"while-on", b"1").unwrap();
    model.insert((0, b"while-on".to_vec()), b"1".to_vec());
    e.config_set(&[("appendonly", "no")]).unwrap();
    assert_eq!(e.mode(), PersistenceMode::Snapshots);
    assert!(e.stats().aof.is_none());
    e.set(0, b"while-off", b"2").unwrap();
    model.insert((0, b"while-off".to_vec()), b"2".to_vec());
    // The stale directory alone: what was written while on, not what came after.
    let stale = e.load_aof_copy().unwrap();
    let mut s = Session::default();
    assert_eq!(
        stale.execute(&mut s, &[b"GET", b"while-on"]),
        Reply::Bulk(b"1".to_vec())
    );
    assert_eq!(stale.execute(&mut s, &[b"GET", b"while-off"]), Reply::Nil);
    e.config_set(&[("appendonly", "yes"), ("appendfsync", "always")])
        .unwrap();
    wait_aof_started(&e);
    e.set(0, b"after", b"3").unwrap();
    model.insert((0, b"after".to_vec()), b"3".to_vec());
    let second = names(&adir);
    assert!(
        first
            .iter()
            .all(|n| n.ends_with(".manifest") || !second.contains(n)),
        "the old generation's files are deleted: {first:?} then {second:?}"
    );
    let before = e.keyspace().dump();
    e.shutdown().unwrap();
    drop(e);
    let e = open(tmp.path(), &conf("appendonly yes\nsave \"\"\n"));
    assert!(
        matches!(e.open_report().source, LoadSource::Aof(_)),
        "{:?}",
        e.open_report().source
    );
    check(&e, &model);
    for ((db, k), v) in &model {
        assert_eq!(e.get(*db, k).unwrap().as_deref(), Some(v.as_slice()));
    }
    assert_eq!(e.keyspace().dump(), before);
}

fn names(dir: &std::path::Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}
