//! maxmemory through the engine (issue 16): the configuration reaches the keyspace, writes evict,
//! CONFIG SET maxmemory evicts at once, and the evictions (logged DELs) survive a reopen.

use forkless_testkit::TempDir;

use super::{conf, open};

#[test]
fn maxmemory_evicts_and_the_evictions_are_logged() {
    let tmp = TempDir::new("engine-maxmemory");
    let c =
        conf("appendonly yes\nappendfsync everysec\nmaxmemory 2mb\nmaxmemory-policy allkeys-lru\n");
    let e = open(tmp.path(), &c);
    let v = vec![b'x'; 1000];
    for i in 0..10_000 {
        e.set(0, format!("key:{i}").as_bytes(), &v).unwrap();
    }
    let st = e.stats().memory;
    assert!(st.evicted_keys > 0, "{st:?}");
    assert!(st.used <= (2 << 20) + 4096, "{st:?}");
    assert_eq!(st.maxmemory, 2 << 20);
    // A lower bound through CONFIG SET evicts at once.
    e.config_set(&[("maxmemory", "1mb")]).unwrap();
    let st = e.stats().memory;
    assert!(st.used <= 1 << 20, "{st:?}");
    let live: Vec<u64> = e.stats().keys;
    e.shutdown().unwrap();
    drop(e);
    let e = open(tmp.path(), &c);
    assert_eq!(e.stats().keys, live, "the evictions are in the log");
    e.shutdown().unwrap();
}

#[test]
fn noeviction_answers_oom_to_writes_that_grow() {
    let tmp = TempDir::new("engine-oom");
    let c = conf("maxmemory 1mb\nsave \"\"\n");
    let e = open(tmp.path(), &c);
    let v = vec![b'x'; 1000];
    let mut refused = None;
    for i in 0..5_000 {
        if let Err(err) = e.set(0, format!("key:{i}").as_bytes(), &v) {
            refused = Some(err.to_string());
            break;
        }
    }
    let msg = refused.expect("a write refused");
    assert!(
        msg.contains("OOM command not allowed when used memory > 'maxmemory'"),
        "{msg}"
    );
    e.del(0, &[b"key:1"]).unwrap();
    e.shutdown().unwrap();
}
