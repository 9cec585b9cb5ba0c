//! AOF directories written by the engine: reload, `redis-check-aof`, redis-server loading them to
//! the same keyspace (the oracle round trip), open-and-continue, rewrite, check/fix.

use std::path::Path;

use forkless_aof::manifest::FileType;
use forkless_aof::Manifest;
use forkless_aof::{
    check_dir, load_dir, AofDir, AofDirOptions, AofError, CheckOptions, FileStatus, FsyncPolicy,
    KeyspaceTarget, LoadOptions, WriterOptions,
};
use forkless_keyspace::{Config, Keyspace, Session};
use forkless_rdb::Entry;

use forkless_testkit::redis_load_aof_dir;
use forkless_testkit::{fixture, redis_check_aof, TempDir};
use rand::{Rng, SeedableRng};

fn dir_opts(fsync: FsyncPolicy) -> AofDirOptions {
    AofDirOptions {
        writer: WriterOptions {
            fsync,
            ..WriterOptions::default()
        },
        ..AofDirOptions::default()
    }
}

/// A keyspace appending to a new AOF dir.
fn create(dir: &Path, opts: AofDirOptions) -> (Keyspace, AofDir) {
    let mut ks = Keyspace::new(Config::seeded(1));
    let aof = AofDir::create(dir, &ks.dump(), opts).unwrap();
    ks.set_sink(aof.writer());
    (ks, aof)
}

fn exec(ks: &Keyspace, aof: &AofDir, s: &mut Session, argv: &[&str]) {
    let a: Vec<&[u8]> = argv.iter().map(|x| x.as_bytes()).collect();
    ks.execute(s, &a);
    aof.writer().ack_current_thread().unwrap();
}

/// A random workload over several databases and types (commands the engine does not know yet
/// answer with an error and propagate nothing).
fn workload(ks: &Keyspace, aof: &AofDir, seed: u64, n: usize) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut s = Session::default();
    for i in 0..n {
        let k = format!("k{}", rng.gen_range(0..40));
        let v = format!("v{i}");
        let n2 = rng.gen_range(1..1000).to_string();
        let argv: Vec<&str> = match rng.gen_range(0..16) {
            0 => vec!["SELECT", ["0", "1", "5"][rng.gen_range(0..3)]],
            1 => vec!["SET", &k, &v],
            2 => vec!["SET", &k, &v, "EX", "1000"],
            3 => vec!["INCRBY", &k, &n2],
            4 => vec!["DEL", &k],
            5 => vec!["EXPIRE", &k, "5000"],
            6 => vec!["APPEND", &k, &v],
            7 => vec!["MSET", &k, &v, "other", &n2],
            8 => vec!["RPUSH", &k, &v, &n2],
            9 => vec!["SADD", &k, &v],
            10 => vec!["HSET", &k, &v, &n2],
            11 => vec!["ZADD", &k, &n2, &v],
            12 => vec!["INCRBYFLOAT", &k, "1.5"],
            13 => vec!["GETEX", &k, "PX", "900000"],
            14 => vec!["PERSIST", &k],
            _ => vec!["RENAME", &k, "renamed"],
        };
        exec(ks, aof, &mut s, &argv);
    }
}

fn reload(dir: &Path) -> Vec<Entry> {
    let ks = Keyspace::new(Config::seeded(2));
    load_dir(dir, &LoadOptions::default(), &mut KeyspaceTarget::new(&ks)).unwrap();
    ks.dump()
}

fn assert_redis_agrees(dir: &Path, want: &[Entry]) {
    if let Some(r) = redis_check_aof(&dir.join("appendonly.aof.manifest")) {
        r.unwrap_or_else(|out| panic!("redis-check-aof refuses {}: {out}", dir.display()));
    }
    if let Some(r) = redis_load_aof_dir(dir) {
        assert_eq!(r.expect("redis-server loads our AOF dir"), want);
    }
}

#[test]
fn oracle_round_trip_for_each_policy_and_base_format() {
    for (policy, rdb) in [
        (FsyncPolicy::Always, true),
        (FsyncPolicy::EverySec, false),
        (FsyncPolicy::No, true),
    ] {
        let tmp = TempDir::new("aof-rt");
        let dir = tmp.path().join("appendonlydir");
        // A non-empty keyspace at creation time goes into the base.
        let mut ks = Keyspace::new(Config::seeded(1));
        let mut s = Session::default();
        for i in 0..50 {
            ks.execute(&mut s, &[b"SET", format!("base{i}").as_bytes(), b"x"]);
        }
        let opts = AofDirOptions {
            rdb_preamble: rdb,
            ..dir_opts(policy)
        };
        let aof = AofDir::create(&dir, &ks.dump(), opts).unwrap();
        ks.set_sink(aof.writer());
        workload(&ks, &aof, 11, 400);
        let want = ks.dump();
        aof.close().unwrap();
        assert_eq!(reload(&dir), want, "{policy:?}");
        assert_redis_agrees(&dir, &want);
    }
}

#[test]
fn open_loads_and_continues_the_last_incr_file() {
    let tmp = TempDir::new("aof-open");
    let dir = tmp.path().join("appendonlydir");
    let (ks, aof) = create(&dir, dir_opts(FsyncPolicy::EverySec));
    workload(&ks, &aof, 3, 100);
    aof.close().unwrap();
    let before = std::fs::metadata(dir.join("appendonly.aof.1.incr.aof"))
        .unwrap()
        .len();
    let want1 = ks.dump();

    let mut ks2 = Keyspace::new(Config::seeded(5));
    let (aof2, report) = AofDir::open(&dir, &ks2, dir_opts(FsyncPolicy::Always)).unwrap();
    assert!(report.truncated.is_none());
    assert_eq!(ks2.dump(), want1);
    ks2.set_sink(aof2.writer());
    workload(&ks2, &aof2, 4, 100);
    let want2 = ks2.dump();
    let m = aof2.manifest();
    assert_eq!(m.incr.len(), 1, "Redis 7.0 reuses the last incr file");
    aof2.close().unwrap();
    assert!(
        std::fs::metadata(dir.join("appendonly.aof.1.incr.aof"))
            .unwrap()
            .len()
            > before
    );
    assert_eq!(reload(&dir), want2);
    assert_redis_agrees(&dir, &want2);
}

#[test]
fn open_cuts_a_truncated_tail_before_appending() {
    let tmp = TempDir::new("aof-trunc");
    let dir = tmp.path().join("appendonlydir");
    let (ks, aof) = create(&dir, dir_opts(FsyncPolicy::Always));
    workload(&ks, &aof, 5, 60);
    aof.close().unwrap();
    let incr = dir.join("appendonly.aof.1.incr.aof");
    let good = std::fs::read(&incr).unwrap();
    // A half-written command at the end (as a crash mid-write leaves it).
    let mut bad = good.clone();
    bad.extend_from_slice(b"*3\r\n$3\r\nSET\r\n$1\r\nz");
    std::fs::write(&incr, &bad).unwrap();
    let mut ks2 = Keyspace::new(Config::seeded(5));
    let (aof2, report) = AofDir::open(&dir, &ks2, dir_opts(FsyncPolicy::Always)).unwrap();
    let t = report.truncated.expect("tail reported");
    assert_eq!(t.valid_len, good.len() as u64);
    assert_eq!(std::fs::read(&incr).unwrap(), good, "tail cut off on disk");
    ks2.set_sink(aof2.writer());
    let mut s = Session::default();
    exec(&ks2, &aof2, &mut s, &["SET", "after", "1"]);
    let want = ks2.dump();
    aof2.close().unwrap();
    assert_eq!(reload(&dir), want);
    assert_redis_agrees(&dir, &want);
}

#[test]
fn rewrite_installs_a_new_base_and_deletes_history() {
    let tmp = TempDir::new("aof-rw");
    let dir = tmp.path().join("appendonlydir");
    let (ks, aof) = create(&dir, dir_opts(FsyncPolicy::EverySec));
    workload(&ks, &aof, 8, 150);
    // The snapshot side: rotate at the barrier, write the snapshot as of that point, install.
    let rotation = aof.writer().rotate().unwrap();
    let snapshot = ks.dump();
    workload(&ks, &aof, 9, 150); // writes after the barrier go to the new incr file
    forkless_aof::write_base(&aof.rewrite_temp_path(), &snapshot, true).unwrap();
    aof.install_rewrite(&aof.rewrite_temp_path(), &rotation)
        .unwrap();
    workload(&ks, &aof, 10, 50);
    let m = aof.manifest();
    assert_eq!(
        m.base.as_ref().map(|b| (b.name.as_str(), b.seq)),
        Some(("appendonly.aof.2.base.rdb", 2))
    );
    assert_eq!(
        m.incr.iter().map(|f| f.name.as_str()).collect::<Vec<_>>(),
        ["appendonly.aof.2.incr.aof"]
    );
    assert!(m.history.is_empty());
    assert!(!dir.join("appendonly.aof.1.base.rdb").exists());
    assert!(!dir.join("appendonly.aof.1.incr.aof").exists());
    assert_eq!(m.base.as_ref().unwrap().kind, FileType::Base);
    let want = ks.dump();
    aof.close().unwrap();
    assert_eq!(reload(&dir), want);
    assert_redis_agrees(&dir, &want);
}

#[test]
fn source_tags_and_timestamps_are_ignored_by_redis() {
    let tmp = TempDir::new("aof-tags");
    let dir = tmp.path().join("appendonlydir");
    let w = WriterOptions {
        timestamps: true,
        source_tags: true,
        fsync: FsyncPolicy::No,
        ..WriterOptions::default()
    };
    let (ks, aof) = create(
        &dir,
        AofDirOptions {
            writer: w,
            ..AofDirOptions::default()
        },
    );
    let writer = aof.writer();
    forkless_aof::AofWriter::with_source_tag(b"client=42 addr=10.0.0.1", || {
        workload(&ks, &aof, 12, 80)
    });
    drop(writer);
    let want = ks.dump();
    aof.close().unwrap();
    let text = std::fs::read(dir.join("appendonly.aof.1.incr.aof")).unwrap();
    assert!(text.windows(10).any(|w| w == b"#client=42"));
    assert!(text.windows(4).any(|w| w == b"#TS:"));
    assert_eq!(reload(&dir), want);
    assert_redis_agrees(&dir, &want);
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

#[test]
fn check_accepts_valid_dirs_and_fix_cuts_the_truncated_tail() {
    let r = check_dir(&fixture("aof/multipart"), &CheckOptions::default()).unwrap();
    assert_eq!(
        r.files.iter().map(|f| f.status.clone()).collect::<Vec<_>>(),
        [FileStatus::Valid, FileStatus::Valid]
    );

    let tmp = TempDir::new("aof-fix");
    copy_dir(&fixture("aof/truncated"), tmp.path());
    let err = check_dir(tmp.path(), &CheckOptions::default()).unwrap_err();
    assert!(
        matches!(err, AofError::Corrupt { offset: 367, .. }),
        "{err}"
    ); // redis-check-aof: ok_up_to=367
    let r = check_dir(
        tmp.path(),
        &CheckOptions {
            fix: true,
            ..CheckOptions::default()
        },
    )
    .unwrap();
    assert_eq!(r.files[1].status, FileStatus::Truncated);
    assert_eq!(
        std::fs::metadata(tmp.path().join("appendonly.aof.2.incr.aof"))
            .unwrap()
            .len(),
        367
    );
    check_dir(tmp.path(), &CheckOptions::default()).unwrap();
    if let Some(r) = redis_check_aof(&tmp.path().join("appendonly.aof.manifest")) {
        r.unwrap();
    }
}

#[test]
fn check_truncate_to_timestamp_cuts_like_redis_check_aof() {
    let tmp = TempDir::new("aof-ts");
    copy_dir(&fixture("aof/timestamps"), tmp.path());
    let ours = tmp.path().join("ours");
    let theirs = tmp.path().join("theirs");
    copy_dir(&fixture("aof/timestamps"), &ours);
    copy_dir(&fixture("aof/timestamps"), &theirs);
    let opts = CheckOptions {
        truncate_to_timestamp: Some(1_795_486_466),
        ..CheckOptions::default()
    };
    let r = check_dir(&ours, &opts).unwrap();
    assert_eq!(r.files[1].status, FileStatus::TimestampTruncated);
    let ran = std::process::Command::new("redis-check-aof")
        .args(["--truncate-to-timestamp", "1795486466"])
        .arg(theirs.join("appendonly.aof.manifest"))
        .output();
    if let Ok(out) = ran {
        assert!(out.status.success());
        let name = "appendonly.aof.2.incr.aof";
        assert_eq!(
            std::fs::read(ours.join(name)).unwrap(),
            std::fs::read(theirs.join(name)).unwrap()
        );
    }
}

#[test]
fn corruption_in_a_non_last_file_is_an_error_naming_file_and_offset() {
    let tmp = TempDir::new("aof-mid");
    let dir = tmp.path().join("appendonlydir");
    let (ks, aof) = create(&dir, dir_opts(FsyncPolicy::No));
    workload(&ks, &aof, 1, 30);
    let r = aof.writer().rotate().unwrap();
    workload(&ks, &aof, 2, 30);
    aof.writer().wait_rotated(&r).unwrap();
    aof.close().unwrap();
    let first = dir.join("appendonly.aof.1.incr.aof");
    let mut b = std::fs::read(&first).unwrap();
    let cut = b.len() - 3;
    b.truncate(cut);
    std::fs::write(&first, &b).unwrap();
    let ks2 = Keyspace::new(Config::seeded(1));
    let e = load_dir(
        &dir,
        &LoadOptions::default(),
        &mut KeyspaceTarget::new(&ks2),
    )
    .unwrap_err();
    let text = e.to_string();
    assert!(
        text.contains("appendonly.aof.1.incr.aof") && text.contains("not the last file"),
        "{text}"
    );
    b[0] = b'!';
    std::fs::write(&first, &b).unwrap();
    let e = load_dir(
        &dir,
        &LoadOptions::default(),
        &mut KeyspaceTarget::new(&ks2),
    )
    .unwrap_err();
    assert!(
        matches!(e, AofError::Corrupt { ref file, .. } if file == "appendonly.aof.1.incr.aof"),
        "{e}"
    );
}

#[test]
fn a_crash_during_a_rewrite_leaves_a_loadable_directory() {
    let tmp = TempDir::new("aof-rwcrash");
    let dir = tmp.path().join("appendonlydir");
    let (ks, aof) = create(&dir, dir_opts(FsyncPolicy::Always));
    workload(&ks, &aof, 21, 100);
    let rotation = aof.writer().rotate().unwrap();
    let snapshot = ks.dump();
    workload(&ks, &aof, 22, 100);
    aof.writer().wait_rotated(&rotation).unwrap();
    aof.writer().flush_and_sync().unwrap();
    // Crash after the rotation, before the new base is installed: old base + both incr files.
    let before_install = tmp.path().join("crash1");
    copy_dir(&dir, &before_install);
    assert_eq!(reload(&before_install), ks.dump());
    assert_eq!(
        Manifest::load(&before_install, "appendonly.aof")
            .unwrap()
            .incr
            .len(),
        2
    );
    // Crash with the new base written but not yet in the manifest: still the old layout.
    forkless_aof::write_base(&aof.rewrite_temp_path(), &snapshot, true).unwrap();
    let half = tmp.path().join("crash2");
    copy_dir(&dir, &half);
    assert_eq!(reload(&half), ks.dump());
    aof.install_rewrite(&aof.rewrite_temp_path(), &rotation)
        .unwrap();
    let want = ks.dump();
    aof.close().unwrap();
    assert_eq!(reload(&dir), want);
    assert_redis_agrees(&before_install, &want);
}

/// Issue 13, item 1: an AOF directory written with TTLs that have passed by the time it is loaded.
/// Expected: redis-server 7.0.15 loading the same directory, and the hand-written model of which
/// keys survive (`forkless_testkit::expiry`).
#[test]
fn replay_after_ttls_passed_matches_redis_loading_the_same_dir() {
    use forkless_keyspace::ManualClock;
    use forkless_testkit::expiry;
    let tmp = TempDir::new("aof-expired-replay");
    let dir = tmp.path().join("appendonlydir");
    let clock = ManualClock::new(expiry::wall_ms() - expiry::SCRIPT_CLOCK_OFFSET_MS);
    let mut ks = Keyspace::new(Config::seeded(1).with_clock(clock.clock()));
    let aof = AofDir::create(&dir, &ks.dump(), dir_opts(FsyncPolicy::Always)).unwrap();
    ks.set_sink(aof.writer());
    let mut s = Session::default();
    for cmd in expiry::SCRIPT {
        clock.advance(expiry::SCRIPT_STEP_MS);
        let r = {
            let a: Vec<&[u8]> = cmd.iter().map(|x| x.as_bytes()).collect();
            ks.execute(&mut s, &a)
        };
        assert!(!r.is_error(), "{cmd:?}: {r:?}");
        aof.writer().ack_current_thread().unwrap();
    }
    aof.close().unwrap();
    // Loaded now, at the wall clock: every short TTL lies in the past.
    let got = reload(&dir);
    assert_eq!(expiry::live_keys(&got), expiry::survivors(), "model");
    if let Some(r) = redis_load_aof_dir(&dir) {
        let redis = r.expect("redis-server loads the directory");
        assert_eq!(
            got, redis,
            "forkless vs redis-server loading the same directory"
        );
    }
}

/// Issue 16: a run with evictions (allkeys-lru, the bound well below the data) recovers to the
/// live keyspace, in forkless and in redis-server 7.0.15: every eviction is a logged DEL.
#[test]
fn evictions_are_logged_and_recovery_equals_the_live_keyspace() {
    let tmp = TempDir::new("aof-evict");
    let dir = tmp.path().join("appendonlydir");
    let (ks, aof) = create(&dir, dir_opts(FsyncPolicy::No));
    workload(&ks, &aof, 5, 300);
    ks.set_memory_config(forkless_keyspace::MemoryConfig {
        maxmemory: ks.used_memory() / 2,
        policy: forkless_keyspace::EvictionPolicy::AllkeysLru,
        ..Default::default()
    });
    workload(&ks, &aof, 6, 600);
    assert!(ks.memory_stats().evicted_keys > 0);
    let want = ks.dump();
    aof.close().unwrap();
    assert_eq!(reload(&dir), want);
    assert_redis_agrees(&dir, &want);
}
