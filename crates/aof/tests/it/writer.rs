//! The asynchronous writer: stream layout, fsync policies, group commit, crash consistency,
//! fault injection (errors, full queue, slow fsync) and rotation, on in-memory backends.

use std::time::{Duration, Instant};

use forkless_aof::scan::{Item, ScanError, Scanner};
use forkless_aof::{
    AofError, AofWriter, FsyncPolicy, MemFile, MemStorage, OnError, WhenFull, WriterOptions,
};
use forkless_sync::atomic::{AtomicI64, AtomicU64, Ordering};
use forkless_sync::{thread, Arc};
use rand::{Rng, SeedableRng};

fn opts(fsync: FsyncPolicy) -> WriterOptions {
    WriterOptions {
        fsync,
        fsync_interval: Duration::from_millis(5),
        retry_interval: Duration::from_millis(5),
        max_postpone: Duration::from_millis(50),
        ..WriterOptions::default()
    }
}

fn start(file: &MemFile, o: WriterOptions) -> AofWriter {
    AofWriter::start(
        Box::new(file.clone()),
        Box::new(MemStorage::new()),
        "appendonly.aof",
        1,
        o,
    )
    .unwrap()
}

fn set(db: u32, k: &str, v: &str) -> Vec<(u32, Vec<Vec<u8>>)> {
    vec![(
        db,
        vec![
            b"SET".to_vec(),
            k.as_bytes().to_vec(),
            v.as_bytes().to_vec(),
        ],
    )]
}

/// Every complete item of `bytes`, and where the complete prefix ends.
fn items(bytes: &[u8]) -> (Vec<Item>, u64) {
    let mut sc = Scanner::new(bytes, 0, bytes.len() as u64);
    let mut out = Vec::new();
    let mut end = 0;
    loop {
        match sc.next_item() {
            Ok(Some((_, it, e))) => {
                out.push(it);
                end = e;
            }
            Ok(None) | Err(ScanError::Incomplete { .. }) => return (out, end),
            Err(e) => panic!("corrupt AOF: {e:?}"),
        }
    }
}

fn commands(bytes: &[u8]) -> Vec<Vec<Vec<u8>>> {
    items(bytes)
        .0
        .into_iter()
        .filter_map(|i| match i {
            Item::Command(a) => Some(a),
            Item::Annotation(_) => None,
        })
        .collect()
}

#[test]
fn select_is_written_when_the_db_changes() {
    let f = MemFile::new();
    let w = start(&f, opts(FsyncPolicy::No));
    w.append(&set(0, "a", "1"), None).unwrap();
    w.append(&set(0, "b", "2"), None).unwrap();
    w.append(&set(3, "c", "3"), None).unwrap();
    let multi = vec![
        (3, vec![b"MULTI".to_vec()]),
        (3, vec![b"SREM".to_vec(), b"s".to_vec(), b"x".to_vec()]),
        (3, vec![b"EXEC".to_vec()]),
    ];
    w.append(&multi, None).unwrap();
    w.flush_and_sync().unwrap();
    let expect = b"*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n*3\r\n$3\r\nSET\r\n$1\r\na\r\n$1\r\n1\r\n*3\r\n$3\r\nSET\r\n$1\r\nb\r\n$1\r\n2\r\n\
*2\r\n$6\r\nSELECT\r\n$1\r\n3\r\n*3\r\n$3\r\nSET\r\n$1\r\nc\r\n$1\r\n3\r\n*1\r\n$5\r\nMULTI\r\n*3\r\n$4\r\nSREM\r\n$1\r\ns\r\n$1\r\nx\r\n*1\r\n$4\r\nEXEC\r\n";
    assert_eq!(f.data(), expect.to_vec());
    assert_eq!(f.durable_len(), expect.len());
    let m = w.metrics();
    assert_eq!(m.bytes_written, expect.len() as u64);
    assert_eq!(m.queue_bytes, 0);
    assert!(m.fsyncs >= 1 && m.last_fsync_unix_ms.is_some());
    w.close().unwrap();
}

#[test]
fn timestamps_and_source_tags() {
    let f = MemFile::new();
    let now = Arc::new(AtomicI64::new(1_700_000_000));
    let n2 = now.clone();
    let o = WriterOptions {
        timestamps: true,
        source_tags: true,
        clock: Some(Arc::new(move || n2.load(Ordering::SeqCst))),
        ..opts(FsyncPolicy::No)
    };
    let w = start(&f, o);
    w.append(&set(0, "a", "1"), Some(b"client=1")).unwrap();
    w.append(&set(0, "b", "1"), None).unwrap();
    now.store(1_700_000_002, Ordering::SeqCst);
    w.append(&set(0, "c", "1"), None).unwrap();
    assert!(matches!(
        w.append(&set(0, "d", "1"), Some(b"bad\nline")),
        Err(AofError::InvalidInput(_))
    ));
    w.flush_and_sync().unwrap();
    let anns: Vec<Vec<u8>> = items(&f.data())
        .0
        .into_iter()
        .filter_map(|i| match i {
            Item::Annotation(a) => Some(a),
            Item::Command(_) => None,
        })
        .collect();
    assert_eq!(
        anns,
        vec![
            b"TS:1700000000".to_vec(),
            b"client=1".to_vec(),
            b"TS:1700000002".to_vec()
        ]
    );
    assert_eq!(commands(&f.data()).len(), 4); // SELECT + 3 SET
                                              // Tags are ignored unless enabled.
    let f2 = MemFile::new();
    let w2 = start(&f2, opts(FsyncPolicy::No));
    w2.append(&set(0, "a", "1"), Some(b"t")).unwrap();
    w2.flush_and_sync().unwrap();
    assert!(!f2.data().contains(&b'#'));
}

#[test]
fn group_commit_shares_fsyncs_and_acknowledges_only_durable_writes() {
    let f = MemFile::new();
    f.set_sync_delay(Duration::from_millis(2));
    let w = Arc::new(start(&f, opts(FsyncPolicy::Always)));
    let acked_max = Arc::new(AtomicU64::new(0));
    let per_thread = 60;
    let hs: Vec<_> = (0..4)
        .map(|t| {
            let (w, f, acked_max) = (w.clone(), f.clone(), acked_max.clone());
            thread::spawn(move || {
                for i in 0..per_thread {
                    let ticket = w
                        .append_and_wait(&set(0, &format!("k{t}-{i}"), "v"), None)
                        .unwrap();
                    // Acknowledged => durable in the file.
                    assert!(
                        f.durable_len() as u64 >= ticket,
                        "acked {ticket} > durable {}",
                        f.durable_len()
                    );
                    acked_max.fetch_max(ticket, Ordering::SeqCst);
                }
            })
        })
        .collect();
    for h in hs {
        h.join().unwrap();
    }
    let writes = 4 * per_thread;
    let syncs = f.syncs();
    assert!(
        syncs < writes,
        "{syncs} fsyncs for {writes} writes: no group commit"
    );
    assert_eq!(commands(&f.data()).len() as u64, writes + 1);
    assert_eq!(acked_max.load(Ordering::SeqCst), f.data().len() as u64);
    eprintln!("group commit: {writes} writes, {syncs} fsyncs");
}

/// For each policy: crash at random moments while 2 threads write; what a power cut leaves is a
/// prefix of the stream that holds every acknowledged write.
#[test]
fn crash_leaves_a_prefix_with_every_acknowledged_write() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(42);
    for policy in [FsyncPolicy::Always, FsyncPolicy::EverySec, FsyncPolicy::No] {
        for round in 0..4 {
            let f = MemFile::new();
            let w = Arc::new(start(&f, opts(policy)));
            let acked = Arc::new(AtomicU64::new(0));
            let hs: Vec<_> = (0..2)
                .map(|t| {
                    let (w, acked) = (w.clone(), acked.clone());
                    thread::spawn(move || {
                        for i in 0..300 {
                            let db = (i % 3) as u32;
                            let ticket = w
                                .append(&set(db, &format!("k{t}-{i}"), &"x".repeat(i % 50)), None)
                                .unwrap();
                            w.wait(ticket).unwrap();
                            if policy == FsyncPolicy::Always {
                                acked.fetch_max(ticket, Ordering::SeqCst);
                            }
                        }
                    })
                })
                .collect();
            thread::sleep(Duration::from_millis(rng.gen_range(0..15)));
            // Read the acknowledged offset first: everything acknowledged by now must survive.
            let acked_now = acked.load(Ordering::SeqCst);
            let seed: u64 = rng.gen();
            let crashed = f.crash(|rest| {
                if rest == 0 {
                    0
                } else {
                    (seed as usize) % (rest + 1)
                }
            });
            for h in hs {
                h.join().unwrap();
            }
            w.close().unwrap();
            let full = f.data();
            assert!(
                full.starts_with(&crashed),
                "{policy:?} round {round}: not a prefix"
            );
            let (_, valid_end) = items(&crashed);
            assert!(
                valid_end >= acked_now,
                "{policy:?} round {round}: lost acknowledged bytes ({valid_end} < {acked_now})"
            );
            let got = commands(&crashed);
            assert_eq!(got[..], commands(&full)[..got.len()]);
        }
    }
}

#[test]
fn write_errors_refuse_until_the_disk_recovers() {
    let f = MemFile::new();
    let w = start(
        &f,
        WriterOptions {
            retry_interval: Duration::from_millis(20),
            ..opts(FsyncPolicy::Always)
        },
    );
    w.append_and_wait(&set(0, "before", "1"), None).unwrap();
    f.set_fail_writes(true);
    let t = w.append(&set(0, "during", "1"), None).unwrap();
    assert!(matches!(w.wait(t), Err(AofError::WriterFailed(_))));
    // Sticky: refused while the disk is full, with a clear error.
    let e = w.append(&set(0, "refused", "1"), None).unwrap_err();
    assert!(
        e.to_string().contains("MISCONF") && e.to_string().contains("No space left"),
        "{e}"
    );
    assert!(w.check_writable().is_err());
    assert!(w.metrics().errors >= 1);
    f.set_fail_writes(false);
    let deadline = Instant::now() + Duration::from_secs(5);
    while w.check_writable().is_err() {
        assert!(Instant::now() < deadline, "never recovered");
        thread::sleep(Duration::from_millis(5));
    }
    w.append_and_wait(&set(0, "after", "1"), None).unwrap();
    w.close().unwrap();
    let keys: Vec<Vec<u8>> = commands(&f.data())
        .into_iter()
        .skip(1)
        .map(|a| a[1].clone())
        .collect();
    assert_eq!(
        keys,
        vec![b"before".to_vec(), b"during".to_vec(), b"after".to_vec()]
    );
}

#[test]
fn write_errors_in_cache_mode_are_counted_and_writes_continue() {
    let f = MemFile::new();
    let w = start(
        &f,
        WriterOptions {
            on_error: OnError::Continue,
            ..opts(FsyncPolicy::EverySec)
        },
    );
    f.set_fail_writes(true);
    for i in 0..20 {
        w.append(&set(0, &format!("k{i}"), "v"), None).unwrap();
        thread::sleep(Duration::from_millis(1));
    }
    assert!(w.metrics().errors >= 1);
    assert!(w.metrics().last_error.is_some());
    f.set_fail_writes(false);
    w.flush_and_sync().unwrap();
    w.close().unwrap();
    assert_eq!(commands(&f.data()).len(), 21);
}

#[test]
fn fsync_errors_refuse_then_recover() {
    let f = MemFile::new();
    let w = start(&f, opts(FsyncPolicy::Always));
    f.set_fail_syncs(true);
    let t = w.append(&set(0, "a", "1"), None).unwrap();
    assert!(matches!(w.wait(t), Err(AofError::WriterFailed(ref s)) if s.contains("fsync")));
    f.set_fail_syncs(false);
    let deadline = Instant::now() + Duration::from_secs(5);
    while w.check_writable().is_err() {
        assert!(Instant::now() < deadline);
        thread::sleep(Duration::from_millis(5));
    }
    w.append_and_wait(&set(0, "b", "1"), None).unwrap();
    assert_eq!(f.durable_len(), f.data().len());
}

#[test]
fn full_queue_fails_fast_or_blocks() {
    let f = MemFile::new();
    f.set_stalled(true);
    let w = Arc::new(start(
        &f,
        WriterOptions {
            queue_capacity: 1000,
            when_full: WhenFull::Fail,
            ..opts(FsyncPolicy::No)
        },
    ));
    let mut accepted = 0;
    let err = loop {
        match w.append(&set(0, "key", &"v".repeat(100)), None) {
            Ok(_) => accepted += 1,
            Err(e) => break e,
        }
        assert!(accepted < 100, "queue never filled");
    };
    assert!(
        matches!(err, AofError::QueueFull { capacity: 1000, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("queue full"));
    f.set_stalled(false);
    w.flush_and_sync().unwrap();

    let f = MemFile::new();
    f.set_stalled(true);
    let w = Arc::new(start(
        &f,
        WriterOptions {
            queue_capacity: 1000,
            ..opts(FsyncPolicy::No)
        },
    ));
    let done = Arc::new(AtomicU64::new(0));
    let (w2, d2) = (w.clone(), done.clone());
    let h = thread::spawn(move || {
        for i in 0..30 {
            w2.append(&set(0, &format!("k{i}"), &"v".repeat(100)), None)
                .unwrap();
            d2.fetch_add(1, Ordering::SeqCst);
        }
    });
    thread::sleep(Duration::from_millis(50));
    let blocked_at = done.load(Ordering::SeqCst);
    assert!(blocked_at < 30, "the caller was not blocked");
    assert!(w.metrics().queue_bytes <= 1000 + 200);
    f.set_stalled(false);
    h.join().unwrap();
    w.flush_and_sync().unwrap();
    assert_eq!(commands(&f.data()).len(), 31);
}

#[test]
fn slow_everysec_fsync_postpones_writes_at_most_max_postpone() {
    let f = MemFile::new();
    f.set_sync_delay(Duration::from_millis(300));
    let w = start(&f, opts(FsyncPolicy::EverySec));
    w.append(&set(0, "a", "1"), None).unwrap();
    thread::sleep(Duration::from_millis(30)); // the first fsync starts and hangs
    let t0 = Instant::now();
    w.append(&set(0, "b", "1"), None).unwrap();
    while f.data().len() < w.metrics().enqueued_offset as usize {
        assert!(
            t0.elapsed() < Duration::from_millis(250),
            "write waited for the whole fsync"
        );
        thread::sleep(Duration::from_millis(2));
    }
    let waited = t0.elapsed();
    assert!(
        waited >= Duration::from_millis(40),
        "write was not postponed ({waited:?})"
    );
    assert!(w.metrics().delayed_fsyncs >= 1);
}

#[test]
fn rotation_switches_files_at_the_marker() {
    let f = MemFile::new();
    let storage = MemStorage::new();
    let w = AofWriter::start(
        Box::new(f.clone()),
        Box::new(storage.clone()),
        "appendonly.aof",
        1,
        opts(FsyncPolicy::EverySec),
    )
    .unwrap();
    w.append(&set(2, "old", "1"), None).unwrap();
    let r = w.rotate().unwrap();
    assert_eq!(r.name, "appendonly.aof.2.incr.aof");
    w.append(&set(2, "new", "1"), None).unwrap();
    w.wait_rotated(&r).unwrap();
    w.flush_and_sync().unwrap();
    assert_eq!(w.metrics().current_file, r.name);
    let old = commands(&f.data());
    assert_eq!(
        old.iter().map(|a| a[1].clone()).collect::<Vec<_>>(),
        vec![b"2".to_vec(), b"old".to_vec()]
    );
    assert_eq!(
        f.durable_len(),
        f.data().len(),
        "old file synced at rotation"
    );
    let new = commands(&storage.file(&r.name).unwrap().data());
    assert_eq!(
        new[0],
        vec![b"SELECT".to_vec(), b"2".to_vec()],
        "new file starts with SELECT"
    );
    assert_eq!(new[1][1], b"new".to_vec());
    assert_eq!(w.rotate().unwrap().name, "appendonly.aof.3.incr.aof");
}

#[test]
fn failed_rotation_refuses_writes_until_the_new_file_can_be_created() {
    let f = MemFile::new();
    let storage = MemStorage::new();
    storage.set_fail_open(true);
    let w = AofWriter::start(
        Box::new(f.clone()),
        Box::new(storage.clone()),
        "appendonly.aof",
        1,
        opts(FsyncPolicy::Always),
    )
    .unwrap();
    w.append_and_wait(&set(0, "a", "1"), None).unwrap();
    let r = w.rotate().unwrap();
    let e = w.wait_rotated(&r).unwrap_err();
    assert!(e.to_string().contains("cannot create file"), "{e}");
    assert!(matches!(
        w.append(&set(0, "b", "1"), None),
        Err(AofError::WriterFailed(_))
    ));
    storage.set_fail_open(false);
    let deadline = Instant::now() + Duration::from_secs(5);
    while w.check_writable().is_err() {
        assert!(Instant::now() < deadline, "rotation never retried");
        thread::sleep(Duration::from_millis(5));
    }
    w.wait_rotated(&r).unwrap();
    w.append_and_wait(&set(0, "c", "1"), None).unwrap();
    w.close().unwrap();
    assert_eq!(commands(&f.data()).len(), 2); // SELECT, SET a
    let new = commands(&storage.file(&r.name).unwrap().data());
    assert_eq!(
        new.iter().map(|a| a[1].clone()).collect::<Vec<_>>(),
        vec![b"0".to_vec(), b"c".to_vec()]
    );
}
