//! The upkeep's rules: snapshots on `save` rules, AOF rewrites on the growth rule, rehashing,
//! all driven by the engine's own thread (the test only writes and waits).

use std::time::{Duration, Instant};

use forkless::LoadSource;
use forkless_testkit::TempDir;

use super::{conf, open};

fn wait_for(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn save_rule_takes_a_snapshot_and_resets_the_counter() {
    let tmp = TempDir::new("engine-save-rule");
    let e = open(tmp.path(), &conf("save \"\"\nhz 50\n"));
    for i in 0..100u32 {
        e.set(0, format!("k{i}").as_bytes(), b"v").unwrap();
    }
    assert_eq!(e.stats().dirty, 100);
    // No rule: nothing happens.
    std::thread::sleep(Duration::from_millis(1200));
    assert!(e.stats().last_snapshot.is_none());
    assert!(!tmp.path().join("dump.rdb").exists());
    // CONFIG SET save "1 100": due once more than 1 s passed since the last save (the open).
    e.config_set(&[("save", "1 100")]).unwrap();
    wait_for("the save rule's snapshot", 5, || {
        e.stats().last_snapshot.is_some()
    });
    let s = e.stats();
    assert!(s.last_snapshot.as_ref().unwrap().result.is_ok(), "{s:?}");
    assert_eq!(s.dirty, 0, "{s:?}");
    assert!(s.last_snapshot_ok);
    // Below the threshold: no second snapshot.
    e.set(0, b"one-more", b"v").unwrap();
    let first = s.last_snapshot.unwrap().finished_unix_ms;
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(e.stats().last_snapshot.unwrap().finished_unix_ms, first);
    // The snapshot holds the 100 keys (the extra write came after it).
    e.shutdown_with(forkless::ShutdownOptions {
        save: Some(false),
        timeout: None,
    })
    .unwrap();
    drop(e);
    let e = open(tmp.path(), &conf("save \"\"\n"));
    assert!(matches!(e.open_report().source, LoadSource::Snapshot(_)));
    assert_eq!(e.dbsize(0), 100);
}

#[test]
fn aof_growth_rule_rewrites() {
    let tmp = TempDir::new("engine-aof-rule");
    let e = open(
        tmp.path(),
        &conf(
            "appendonly yes\nsave \"\"\nhz 50\nauto-aof-rewrite-percentage 100\n\
             auto-aof-rewrite-min-size 64kb\n",
        ),
    );
    let v = vec![b'x'; 1000];
    // 40 KB: under the minimum size, no rewrite.
    for i in 0..40u32 {
        e.set(0, format!("k{i}").as_bytes(), &v).unwrap();
    }
    std::thread::sleep(Duration::from_millis(300));
    assert!(e.stats().last_rewrite.is_none());
    // Overwrite the same keys: the log grows, the data does not.
    for round in 0..3u32 {
        for i in 0..40u32 {
            e.set(
                0,
                format!("k{i}").as_bytes(),
                format!("{round}{}", "y".repeat(999)).as_bytes(),
            )
            .unwrap();
        }
    }
    wait_for("the automatic rewrite", 5, || {
        e.stats().last_rewrite.is_some()
    });
    let s = e.stats();
    assert!(s.last_rewrite.as_ref().unwrap().result.is_ok(), "{s:?}");
    let (cur, base) = s.aof_size.unwrap();
    assert!(base < 64 * 1024 && cur < 2 * 64 * 1024, "{s:?}");
    let live = e.keyspace().dump();
    drop(e);
    let e = open(tmp.path(), &conf("appendonly yes\nsave \"\"\n"));
    assert_eq!(e.keyspace().dump(), live);
}

#[test]
fn background_rehash_finishes_without_writes() {
    let tmp = TempDir::new("engine-rehash");
    let e = open(tmp.path(), &conf("save \"\"\nhz 50\nshards 4\n"));
    let rehashing = |e: &forkless::Engine| {
        (0..e.keyspace().num_shards())
            .filter(|&s| {
                e.keyspace()
                    .with_shard(s, |sh| sh.db(0).dict().is_rehashing())
            })
            .count()
    };
    // Insert until some shard's dict is in the middle of a rehash.
    let mut i = 0u32;
    e.config_set(&[("activerehashing", "no")]).unwrap();
    while rehashing(&e) == 0 {
        e.set(0, format!("key:{i}").as_bytes(), b"v").unwrap();
        i += 1;
        assert!(i < 1_000_000, "no rehash ever started");
    }
    // Without background steps it stays unfinished (no writes move buckets).
    std::thread::sleep(Duration::from_millis(200));
    assert!(rehashing(&e) > 0);
    e.config_set(&[("activerehashing", "yes")]).unwrap();
    wait_for("the background rehash", 5, || rehashing(&e) == 0);
    assert_eq!(e.dbsize(0), u64::from(i));
}

#[test]
fn scheduled_jobs_start_once_the_running_one_ends() {
    let tmp = TempDir::new("engine-schedule");
    let e = open(
        tmp.path(),
        &conf("appendonly yes\nsave \"\"\nauto-aof-rewrite-percentage 0\nhz 50\n"),
    );
    let v = vec![b'x'; 512];
    for i in 0..50_000u32 {
        e.set(0, format!("k{i}").as_bytes(), &v).unwrap();
    }
    e.start_rewrite().unwrap();
    // (25 MB to rewrite: the rewrite is still running here.)
    let started_now = e.schedule_snapshot().unwrap();
    if !started_now {
        assert!(e.stats().snapshot_scheduled);
    }
    wait_for("the rewrite and the scheduled snapshot", 10, || {
        let s = e.stats();
        s.last_rewrite.is_some() && s.last_snapshot.is_some() && !s.snapshot_scheduled
    });
    let s = e.stats();
    assert!(s.last_rewrite.unwrap().result.is_ok());
    assert!(s.last_snapshot.unwrap().result.is_ok());
    assert!(tmp.path().join("dump.rdb").exists());
}
