//! `shutdown` returns within its bound while writers and a snapshot are running.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use forkless::{Error, ShutdownOptions};
use forkless_testkit::TempDir;

use super::{conf, open};

#[test]
fn shutdown_is_bounded_with_writers_and_a_snapshot_running() {
    let tmp = TempDir::new("engine-shutdown");
    let e = open(
        tmp.path(),
        &conf("appendonly yes\nappendfsync everysec\nsave \"\"\nsnapshot-mode converging\n"),
    );
    let big = vec![b'x'; 512];
    for i in 0..60_000u32 {
        e.set(i % 4, format!("key:{i}").as_bytes(), &big).unwrap();
    }
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let mut writers = Vec::new();
    for t in 0..3u32 {
        let (e, stop, done) = (e.clone(), stop.clone(), done.clone());
        writers.push(std::thread::spawn(move || {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                match e.incr(t, format!("ctr:{t}").as_bytes()) {
                    Ok(_) => n += 1,
                    Err(Error::Closed) => break,
                    Err(e) => panic!("writer {t}: {e}"),
                }
            }
            done.fetch_add(n, Ordering::Relaxed);
        }));
    }
    // Every writer has written before the snapshot starts (INFO counts a snapshot in progress
    // from its request, so the shutdown below may come at once).
    let t = Instant::now();
    while (0..3u32).any(|w| e.get(w, format!("ctr:{w}").as_bytes()).unwrap().is_none()) {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "the writers never wrote"
        );
        std::thread::yield_now();
    }
    e.start_snapshot().unwrap();
    let t = Instant::now();
    while !e.stats().snapshot_in_progress {
        assert!(
            t.elapsed() < Duration::from_secs(2),
            "the snapshot never started"
        );
        std::thread::yield_now();
    }
    let bound = Duration::from_millis(1500);
    let t0 = Instant::now();
    let rep = e
        .shutdown_with(ShutdownOptions {
            save: Some(false),
            timeout: Some(bound),
        })
        .unwrap();
    let took = t0.elapsed();
    // The bound covers the wait for the job; closing the log (flush + fsync of what is queued)
    // comes on top and is short.
    assert!(
        took < bound + Duration::from_secs(2),
        "shutdown took {took:?}: {rep:?}"
    );
    assert!(rep.errors.is_empty(), "{rep:?}");
    // Writers now get Closed and stop.
    for w in writers {
        w.join().unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    assert!(done.load(Ordering::Relaxed) > 0);
    assert!(matches!(e.set(0, b"late", b"1"), Err(Error::Closed)));
    // Idempotent.
    e.shutdown().unwrap();
    eprintln!("shutdown took {took:?}: {rep:?}");
}

#[test]
fn shutdown_does_not_wait_past_its_bound_for_a_rewrite() {
    let tmp = TempDir::new("engine-shutdown-rw");
    let e = open(
        tmp.path(),
        &conf("appendonly yes\nsave \"\"\nauto-aof-rewrite-percentage 0\n"),
    );
    let big = vec![b'x'; 1024];
    for i in 0..100_000u32 {
        e.set(0, format!("key:{i}").as_bytes(), &big).unwrap();
    }
    e.start_rewrite().unwrap();
    let t = Instant::now();
    while !e.stats().rewrite_in_progress {
        assert!(
            t.elapsed() < Duration::from_secs(2),
            "the rewrite never started"
        );
        std::thread::yield_now();
    }
    let t0 = Instant::now();
    let rep = e
        .shutdown_with(ShutdownOptions {
            save: None,
            timeout: Some(Duration::from_millis(1)),
        })
        .unwrap();
    let took = t0.elapsed();
    eprintln!("shutdown during a rewrite took {took:?}: {rep:?}");
    assert!(took < Duration::from_secs(2), "{took:?} {rep:?}");
    drop(e);
    // Whatever the abandoned rewrite did, the directory recovers every write.
    let e = open(tmp.path(), &conf("appendonly yes\nsave \"\"\n"));
    assert_eq!(e.dbsize(0), 100_000);
}
