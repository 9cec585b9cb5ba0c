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
    assert_eq!(cut.at.seq, m.incr[0].seq);
    assert!(cut.logical > 0);
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

/// Counts the bytes allocated by the thread that turned tracking on (issue 13, item 2: installing
/// a rewrite must not read the new base into memory).
mod thread_alloc {
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::cell::Cell;

    pub(super) struct Counting;

    thread_local! {
        static TRACK: Cell<bool> = const { Cell::new(false) };
        static LIVE: Cell<i64> = const { Cell::new(0) };
        static PEAK: Cell<i64> = const { Cell::new(0) };
    }

    fn note(delta: i64) {
        let _ = TRACK.try_with(|t| {
            if t.get() {
                let live = LIVE.with(|l| {
                    l.set(l.get() + delta);
                    l.get()
                });
                PEAK.with(|p| p.set(p.get().max(live)));
            }
        });
    }

    // SAFETY: forwards every call to the system allocator unchanged; the bookkeeping only touches
    // const-initialized thread-locals, which never allocate.
    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            note(layout.size() as i64);
            // SAFETY: same contract as the caller's.
            unsafe { System.alloc(layout) }
        }
        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            note(-(layout.size() as i64));
            // SAFETY: same contract as the caller's.
            unsafe { System.dealloc(ptr, layout) }
        }
        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            note(new_size as i64 - layout.size() as i64);
            // SAFETY: same contract as the caller's.
            unsafe { System.realloc(ptr, layout, new_size) }
        }
    }

    /// Run `f` and return the peak of bytes allocated and not yet freed by this thread during it.
    pub(super) fn peak_during<R>(f: impl FnOnce() -> R) -> (R, i64) {
        LIVE.with(|l| l.set(0));
        PEAK.with(|p| p.set(0));
        TRACK.with(|t| t.set(true));
        let r = f();
        TRACK.with(|t| t.set(false));
        (r, PEAK.with(|p| p.get()))
    }
}

#[global_allocator]
static ALLOC: thread_alloc::Counting = thread_alloc::Counting;

#[test]
fn installing_a_rewrite_does_not_read_the_base_into_memory() {
    let tmp = TempDir::new("aof-rewrite-mem");
    let dir = tmp.path().join("appendonlydir");
    let mut ks = Keyspace::new(Config::seeded(4));
    let aof = AofDir::create(&dir, &[], AofDirOptions::default()).unwrap();
    ks.set_sink(aof.writer());
    let obs = forkless_snapshot::install(&mut ks);
    let ks = Arc::new(ks);
    // ~24 MiB of incompressible values: the new base is about that size.
    let mut rng = StdRng::seed_from_u64(5);
    let mut s = Session::default();
    for i in 0..384 {
        let v: Vec<u8> = (0..64 * 1024).map(|_| rng.gen_range(b'!'..=b'~')).collect();
        ks.execute(&mut s, &[b"SET", format!("big{i}").as_bytes(), &v]);
    }
    // The snapshot runs on its worker thread; the installation (manifest switch) on this one.
    let (r, peak) = thread_alloc::peak_during(|| rewrite(&aof, &ks, &obs));
    r.expect("rewrite");
    let base = aof.manifest().base.expect("a base").name;
    let size = std::fs::metadata(dir.join(&base)).unwrap().len() as i64;
    assert!(size > 20 << 20, "base of {size} bytes");
    assert!(
        peak < size / 4,
        "installing a {size}-byte base allocated up to {peak} bytes on the calling thread"
    );
    aof.close().unwrap();
}
