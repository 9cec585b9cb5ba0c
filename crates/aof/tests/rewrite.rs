//! The forkless rewrite under load: writer threads keep executing while the base is rebuilt from
//! a converging snapshot and the incr file switches at its barrier. Afterwards the directory
//! loads (in the engine and in redis-server 7.0.15) to exactly the live keyspace, and the
//! manifest is [new base, new incr].

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use forkless_aof::{
    load_dir, rewrite, AofDir, AofDirOptions, FsyncPolicy, KeyspaceTarget, LoadOptions,
    WriterOptions,
};
use forkless_keyspace::{Config, Keyspace, Session};
use forkless_testkit::{redis_check_aof, redis_load_aof_dir, TempDir};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn command(rng: &mut StdRng) -> Vec<String> {
    let k = format!("k{}", rng.gen_range(0..5_000));
    let k2 = format!("k{}", rng.gen_range(0..5_000));
    let v = rng.gen_range(0..100).to_string();
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect();
    match rng.gen_range(0..9) {
        0 => s(&["SET", &k, &v]),
        1 => s(&["INCR", &k]),
        2 => s(&["RPUSH", &k, &v]),
        3 => s(&["SADD", &k, &v]),
        4 => s(&["ZINCRBY", &k, "2", &v]),
        5 => s(&["HINCRBY", &k, &v, "3"]),
        6 => s(&["RENAME", &k, &k2]),
        7 => s(&["LMOVE", &k, &k2, "RIGHT", "LEFT"]),
        _ => s(&["DEL", &k]),
    }
}

#[test]
fn rewrite_under_load_keeps_every_write() {
    let tmp = TempDir::new("aof-rewrite");
    let dir = tmp.path().join("appendonlydir");
    let opts = AofDirOptions {
        writer: WriterOptions {
            fsync: FsyncPolicy::EverySec,
            ..WriterOptions::default()
        },
        ..AofDirOptions::default()
    };
    let mut ks = Keyspace::new(Config {
        shards: 4,
        ..Config::seeded(3)
    });
    let aof = AofDir::create(&dir, &[], opts).unwrap();
    ks.set_sink(aof.writer());
    let obs = forkless_snapshot::install(&mut ks);
    let ks = Arc::new(ks);
    let mut rng = StdRng::seed_from_u64(9);
    let mut s = Session::default();
    for _ in 0..20_000 {
        let c = command(&mut rng);
        let argv: Vec<&[u8]> = c.iter().map(|a| a.as_bytes()).collect();
        ks.execute(&mut s, &argv);
    }
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..2u64)
        .map(|t| {
            let (ks, stop) = (ks.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut rng = StdRng::seed_from_u64(70 + t);
                let mut s = Session { db: t as u32 };
                while !stop.load(Ordering::Relaxed) {
                    let c = command(&mut rng);
                    let argv: Vec<&[u8]> = c.iter().map(|a| a.as_bytes()).collect();
                    ks.execute(&mut s, &argv);
                }
            })
        })
        .collect();
    for _ in 0..3 {
        let r = rewrite(&aof, &ks, &obs).expect("rewrite");
        assert!(r.keys > 0);
    }
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.join().unwrap();
    }
    let live = ks.dump();
    let m = aof.manifest();
    assert_eq!(
        m.base.as_ref().map(|b| b.seq),
        Some(4),
        "three rewrites: {m:?}"
    );
    assert_eq!(
        m.incr.len(),
        1,
        "only the incr file after the last barrier: {m:?}"
    );
    assert!(m.history.is_empty());
    aof.close().unwrap();
    let names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 3, "manifest, base, incr only: {names:?}");

    let reloaded = Keyspace::new(Config::seeded(4));
    let report = load_dir(
        &dir,
        &LoadOptions::default(),
        &mut KeyspaceTarget::new(&reloaded),
    )
    .unwrap();
    // The base records the cut it covers: up to the incr file the writer switched to.
    let cut = report
        .base_cut()
        .expect("forkless-aof-* aux fields in the base");
    assert_eq!(cut.incr_seq, m.incr[0].seq);
    assert!(cut.offset > 0);
    for key in [
        &b"forkless-aof-incr-seq"[..],
        b"forkless-aof-offset",
        b"forkless-aof-cut-time",
    ] {
        assert!(
            report.aux.iter().any(|(k, _)| k == key),
            "aux {key:?} missing"
        );
    }
    assert_eq!(
        reloaded.dump(),
        live,
        "engine reload equals the live keyspace"
    );
    if let Some(r) = redis_check_aof(&dir.join("appendonly.aof.manifest")) {
        r.unwrap_or_else(|out| panic!("redis-check-aof refuses the rewritten dir: {out}"));
    }
    if let Some(r) = redis_load_aof_dir(&dir) {
        assert_eq!(r.expect("redis-server loads the rewritten dir"), live);
    }
}
