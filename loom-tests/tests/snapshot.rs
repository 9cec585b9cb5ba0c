//! Loom models of the per-bucket snapshot protocol, one race per test (tokio's `loom_*.rs`
//! style). Each model: a keyspace shrunk to one shard of a 4-bucket dict, three keys in distinct
//! buckets, two writer threads and the snapshot worker on the model's main thread with one or two
//! buckets per batch, so loom interleaves every write with every step of the walk and both
//! barriers. For every interleaving: replaying the output gives the keyspace at the cut (start
//! for point-in-time, end for converging), and nothing deadlocks (loom reports deadlocks itself).
//!
//! Two groups:
//! * one database, a single-key and a multi-key writer (RENAME, MSET); the expected state is the
//!   propagated log up to the cut, replayed;
//! * scenarios (`Scenario`): a second database with FLUSHDB and SWAPDB, the dict's forced grow
//!   (also of a dict frozen in the middle of a rehash), and expiry with a moving clock (lazy and
//!   active expiry). Their expected state comes from `Model`, an independent interpreter of the
//!   propagated commands written from Redis's semantics, not from the keyspace; the live
//!   keyspace is checked against the same model. Dropping the walk's restart over a grown dict
//!   (`worker.rs`) makes the mid-rehash forced-grow models fail.
//!
//! Run: `bash ci/loom.sh` (`RUSTFLAGS="--cfg forkless_loom" LOOM_MAX_PREEMPTIONS=3 cargo test
//! --release` in this directory); 14 models, about 75 s of CPU at 3 preemptions (2.5 minutes of
//! wall time on a busy 2-core machine), plus the build.
#![cfg(forkless_loom)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use forkless_keyspace::{render_aof, CollectingSink, Config, Keyspace, Propagated, Session};
use forkless_rdb::model::Entry;
use forkless_snapshot::{install, run_snapshot, Barrier, Mode, Progress, SnapshotOptions};
use forkless_sync::atomic::AtomicBool;
use forkless_sync::thread;

fn config() -> Config {
    Config {
        shards: 1,
        databases: 1,
        seed: Some(3),
        clock: Some(Arc::new(|| 1_700_000_000_000)),
        memory: Default::default(),
    }
}

fn exec(ks: &Keyspace, argv: &[&[u8]]) {
    let r = ks.execute(&mut Session::default(), argv);
    assert!(!r.is_error(), "{r:?}");
}

/// Replay a snapshot's output into a fresh keyspace (`forkless_snapshot::load`).
fn replay(bytes: &[u8]) -> Vec<Entry> {
    let ks = Keyspace::new(config());
    forkless_snapshot::load(bytes, &ks).expect("load");
    ks.dump()
}

fn expected(log: &[Propagated], n: usize) -> Vec<Entry> {
    let ks = Keyspace::new(config());
    forkless_snapshot::load_commands(&render_aof(&log[..n]), &ks).expect("replay the log");
    ks.dump()
}

/// Three key names that land in three different buckets of the one-shard keyspace (so every
/// mix of visited and unvisited buckets is reachable), found deterministically (fixed seed),
/// in descending bucket order.
fn distinct_bucket_keys() -> [&'static [u8]; 3] {
    const NAMES: [&[u8]; 12] = [
        b"a", b"b", b"c", b"d", b"e", b"f", b"g", b"h", b"i", b"j", b"k", b"l",
    ];
    let ks = Keyspace::new(config());
    let mut picked: Vec<(&'static [u8], usize)> = Vec::new();
    for n in NAMES {
        let h = ks.hash_key(n);
        let b = ks.with_shard(0, |s| s.db(0).dict().bucket_of(h));
        if picked.iter().all(|&(_, pb)| pb != b) {
            picked.push((n, b));
        }
        if picked.len() == 3 {
            // Descending bucket order: the walk visits $2 first and $0 last, the reverse of the
            // order in which commands name them, so a command meets an unvisited key before a
            // visited one (the case that needs the retroactive forced visit).
            picked.sort_by(|x, y| y.1.cmp(&x.1));
            return [picked[0].0, picked[1].0, picked[2].0];
        }
    }
    panic!("no three keys in distinct buckets");
}

/// The model shared by the tests: `single` and `multi` are the two writers' commands.
/// `$0`, `$1`, `$2` in a command template stand for the three keys.
fn instantiate(template: &[&str], keys: &[&'static [u8]; 3]) -> Vec<Vec<u8>> {
    template
        .iter()
        .map(|a| match *a {
            "$0" => keys[0].to_vec(),
            "$1" => keys[1].to_vec(),
            "$2" => keys[2].to_vec(),
            other => other.as_bytes().to_vec(),
        })
        .collect()
}

fn model(mode: Mode, single: &'static [&'static str], multi: &'static [&'static str]) {
    assert!(
        forkless_sync::LOOM,
        "forkless-sync is not in loom mode: build with --cfg forkless_loom"
    );
    static ITERATIONS: AtomicUsize = AtomicUsize::new(0);
    ITERATIONS.store(0, Ordering::SeqCst);
    loom::model(move || {
        ITERATIONS.fetch_add(1, Ordering::SeqCst);
        // Inside the model: a keyspace holds loom primitives (deterministic: fixed seed).
        let keys = distinct_bucket_keys();
        let single = instantiate(single, &keys);
        let multi = instantiate(multi, &keys);
        let mut ks = Keyspace::new(config());
        let sink = Arc::new(CollectingSink::new());
        ks.set_sink(sink.clone());
        let obs = install(&mut ks);
        exec(&ks, &[b"SET", keys[0], b"1"]);
        exec(&ks, &[b"SET", keys[1], b"10"]);
        exec(&ks, &[b"SET", keys[2], b"100"]);
        let ks = Arc::new(ks);

        let cut = Arc::new(AtomicUsize::new(usize::MAX));
        let (cut2, s2) = (cut.clone(), sink.clone());
        let opts = SnapshotOptions {
            mode,
            batch_buckets: 1,
            on_barrier: Some(Arc::new(move |b| {
                let at_cut = match (mode, b) {
                    (Mode::PointInTime, Barrier::Start) | (Mode::Converging, Barrier::End) => true,
                    _ => false,
                };
                if at_cut {
                    cut2.store(s2.ops().len(), Ordering::SeqCst);
                }
            })),
            ..Default::default()
        };

        let (k1, c1) = (ks.clone(), single.clone());
        let w1 = thread::spawn(move || exec(&k1, &c1.iter().map(|a| &a[..]).collect::<Vec<_>>()));
        let (k2, c2) = (ks.clone(), multi.clone());
        let w2 = thread::spawn(move || exec(&k2, &c2.iter().map(|a| &a[..]).collect::<Vec<_>>()));

        let ticket = obs.try_begin().expect("free");
        let (out, _res) = run_snapshot(
            &ks,
            ticket,
            &opts,
            Vec::new(),
            &Progress::default(),
            &AtomicBool::new(false),
        )
        .expect("snapshot");
        w1.join().unwrap();
        w2.join().unwrap();

        let log = sink.ops();
        let n = cut.load(Ordering::SeqCst);
        assert_eq!(replay(&out), expected(&log, n), "{mode:?}");
    });
    let n = ITERATIONS.load(Ordering::SeqCst);
    // Printed with --nocapture; the bound proves the model explored interleavings.
    println!("{mode:?}: {n} interleavings explored");
    assert!(n > 10, "loom explored only {n} interleavings");
}

#[test]
fn converging_incr_of_rename_target_vs_walk() {
    model(Mode::Converging, &["INCR", "$2"], &["RENAME", "$1", "$2"]);
}

#[test]
fn converging_incr_of_mset_key_vs_walk() {
    model(
        Mode::Converging,
        &["INCRBY", "$1", "5"],
        &["MSET", "$0", "7", "$1", "8"],
    );
}

#[test]
fn point_in_time_incr_of_rename_target_vs_walk() {
    model(Mode::PointInTime, &["INCR", "$2"], &["RENAME", "$1", "$2"]);
}

#[test]
fn point_in_time_incr_of_mset_key_vs_walk() {
    model(
        Mode::PointInTime,
        &["INCRBY", "$1", "5"],
        &["MSET", "$0", "7", "$1", "8"],
    );
}

// ---------------------------------------------------------------------------------------------
// Models whose expected state comes from an independent model of the commands (`Model` below),
// not from the keyspace: a second database with FLUSHDB and SWAPDB, the dict's forced grow, and
// expiry with a moving clock.

/// The clock of the model's keyspaces starts here (ms).
const T0: i64 = 1_700_000_000_000;

/// One step of a writer thread.
#[derive(Clone, Copy, Debug)]
enum Step {
    /// A command in a database (`$0`..`$2`: the three keys in distinct buckets).
    Cmd(u32, &'static [&'static str]),
    /// Move the shared clock forward (ms).
    Advance(i64),
    /// One active-expiry cycle.
    ActiveExpire,
}

/// What the commands the keyspace propagates mean, written from Redis's documentation: the
/// expected state of every model. Applies a log with loading semantics (nothing expires while
/// applying; the propagated `DEL`s of lazy and active expiry say when keys went), then keeps
/// what is live at a given time (Redis: expired when `now > at`).
#[derive(Debug, Default)]
struct Model {
    dbs: Vec<std::collections::BTreeMap<Vec<u8>, (Vec<u8>, Option<i64>)>>,
}

impl Model {
    fn new(databases: u32) -> Model {
        Model {
            dbs: vec![Default::default(); databases as usize],
        }
    }

    fn apply(&mut self, db: u32, argv: &[Vec<u8>]) {
        let name = String::from_utf8_lossy(&argv[0]).to_ascii_uppercase();
        let int = |b: &[u8]| -> i64 { std::str::from_utf8(b).unwrap().parse().unwrap() };
        let d = &mut self.dbs[db as usize];
        match name.as_str() {
            "MULTI" | "EXEC" => {}
            "SET" => {
                assert_eq!(argv.len(), 3, "model knows plain SET only: {argv:?}");
                d.insert(argv[1].clone(), (argv[2].clone(), None));
            }
            "MSET" => {
                for kv in argv[1..].chunks(2) {
                    d.insert(kv[0].clone(), (kv[1].clone(), None));
                }
            }
            "INCR" | "INCRBY" => {
                let by = if name == "INCR" { 1 } else { int(&argv[2]) };
                let (old, ttl) = d.get(&argv[1]).cloned().unwrap_or((b"0".to_vec(), None));
                let new = (int(&old) + by).to_string().into_bytes();
                d.insert(argv[1].clone(), (new, ttl));
            }
            "DEL" => {
                for k in &argv[1..] {
                    d.remove(k);
                }
            }
            "PEXPIREAT" => {
                let at = int(&argv[2]);
                if let Some(e) = d.get_mut(&argv[1]) {
                    e.1 = Some(at);
                }
            }
            "FLUSHDB" => d.clear(),
            "SWAPDB" => {
                let (a, b) = (int(&argv[1]) as usize, int(&argv[2]) as usize);
                self.dbs.swap(a, b);
            }
            other => panic!("the model does not know {other}"),
        }
    }

    /// The live entries at `now`, canonical.
    fn live_at(&self, now: i64) -> Vec<Entry> {
        let mut out = Vec::new();
        for (db, d) in self.dbs.iter().enumerate() {
            for (k, (v, ttl)) in d {
                if ttl.is_some_and(|at| now > at) {
                    continue;
                }
                out.push(Entry {
                    db: db as u32,
                    key: k.clone(),
                    value: forkless_rdb::model::Value::String(v.clone()),
                    expire_at_ms: *ttl,
                });
            }
        }
        forkless_rdb::model::canonicalize(&mut out);
        out
    }
}

fn clocked_config(databases: u32, clock: &Arc<std::sync::atomic::AtomicI64>) -> Config {
    let c = clock.clone();
    Config {
        shards: 1,
        databases,
        seed: Some(3),
        clock: Some(Arc::new(move || c.load(Ordering::SeqCst))),
        memory: Default::default(),
    }
}

/// Replay a snapshot's output into a fresh keyspace whose clock stands at `T0` while loading
/// (nothing expires during the replay, as while Redis loads) and at `now` for the dump.
fn replay_at(bytes: &[u8], databases: u32, now: i64) -> Vec<Entry> {
    let clock = Arc::new(std::sync::atomic::AtomicI64::new(T0));
    let ks = Keyspace::new(clocked_config(databases, &clock));
    forkless_snapshot::load(bytes, &ks).expect("load");
    clock.store(now, Ordering::SeqCst);
    ks.dump()
}

/// A scenario: `databases`, setup commands run before the snapshot, two writer threads, and an
/// optional forced-grow ratio for database 0's dict (1 = grow past one entry per bucket).
struct Scenario {
    databases: u32,
    setup: &'static [Step],
    w1: &'static [Step],
    w2: &'static [Step],
    force_ratio: Option<u32>,
    /// Buckets per batch of the walk (2 for two databases keeps the model's run short).
    batch: usize,
}

fn run_steps(
    ks: &Keyspace,
    clock: &std::sync::atomic::AtomicI64,
    steps: &[Step],
    keys: &[&'static [u8]; 3],
) {
    for st in steps {
        match *st {
            Step::Cmd(db, t) => {
                let argv = instantiate(t, keys);
                let argv: Vec<&[u8]> = argv.iter().map(|a| &a[..]).collect();
                let r = ks.execute(&mut Session { db }, &argv);
                assert!(!r.is_error(), "{t:?}: {r:?}");
            }
            Step::Advance(ms) => {
                clock.fetch_add(ms, Ordering::SeqCst);
            }
            Step::ActiveExpire => {
                ks.active_expire_cycle(16);
            }
        }
    }
}

fn model_scenario(mode: Mode, sc: &'static Scenario) {
    assert!(forkless_sync::LOOM, "build with --cfg forkless_loom");
    static ITERATIONS: AtomicUsize = AtomicUsize::new(0);
    ITERATIONS.store(0, Ordering::SeqCst);
    loom::model(move || {
        ITERATIONS.fetch_add(1, Ordering::SeqCst);
        let keys = distinct_bucket_keys();
        let clock = Arc::new(std::sync::atomic::AtomicI64::new(T0));
        let mut ks = Keyspace::new(clocked_config(sc.databases, &clock));
        let sink = Arc::new(CollectingSink::new());
        ks.set_sink(sink.clone());
        let obs = install(&mut ks);
        if let Some(ratio) = sc.force_ratio {
            ks.with_shard(0, |s| {
                let d = s.db_mut(0).dict_mut();
                let mut c = d.config();
                c.force_resize_ratio = ratio;
                d.set_config(c);
            });
        }
        run_steps(&ks, &clock, sc.setup, &keys);
        if sc.force_ratio.is_some() && sc.setup.len() > 3 {
            let mid = ks.with_shard(0, |s| s.db(0).dict().is_rehashing());
            assert!(mid, "the setup must leave the dict mid-rehash");
        }
        let ks = Arc::new(ks);

        let cut = Arc::new(AtomicUsize::new(usize::MAX));
        let (cut2, s2) = (cut.clone(), sink.clone());
        let opts = SnapshotOptions {
            mode,
            batch_buckets: sc.batch,
            on_barrier: Some(Arc::new(move |b| {
                if matches!(
                    (mode, b),
                    (Mode::PointInTime, Barrier::Start) | (Mode::Converging, Barrier::End)
                ) {
                    cut2.store(s2.ops().len(), Ordering::SeqCst);
                }
            })),
            ..Default::default()
        };
        let (k1, c1) = (ks.clone(), clock.clone());
        let w1 = thread::spawn(move || run_steps(&k1, &c1, sc.w1, &keys));
        let (k2, c2) = (ks.clone(), clock.clone());
        let w2 = thread::spawn(move || run_steps(&k2, &c2, sc.w2, &keys));
        let (out, _res) = run_snapshot(
            &ks,
            obs.try_begin().expect("free"),
            &opts,
            Vec::new(),
            &Progress::default(),
            &AtomicBool::new(false),
        )
        .expect("snapshot");
        w1.join().unwrap();
        w2.join().unwrap();

        let now = clock.load(Ordering::SeqCst);
        let log = sink.ops();
        let n = cut.load(Ordering::SeqCst);
        let mut m = Model::new(sc.databases);
        for (db, argv) in &log[..n] {
            m.apply(*db, argv);
        }
        assert_eq!(
            replay_at(&out, sc.databases, now),
            m.live_at(now),
            "{mode:?}"
        );
        // And the live keyspace agrees with the model of the whole log.
        for (db, argv) in &log[n..] {
            m.apply(*db, argv);
        }
        assert_eq!(
            ks.dump(),
            m.live_at(now),
            "{mode:?}: live keyspace vs model"
        );
    });
    let n = ITERATIONS.load(Ordering::SeqCst);
    println!("{mode:?}: {n} interleavings explored");
    assert!(n > 10, "loom explored only {n} interleavings");
}

/// Two databases: FLUSHDB of database 1 races the walk and an INCR in the same database.
static FLUSHDB_SECOND_DB: Scenario = Scenario {
    databases: 2,
    setup: &[
        Step::Cmd(0, &["SET", "$0", "1"]),
        Step::Cmd(1, &["SET", "$1", "10"]),
        Step::Cmd(1, &["SET", "$2", "100"]),
    ],
    w1: &[Step::Cmd(1, &["FLUSHDB"])],
    w2: &[Step::Cmd(1, &["INCR", "$2"])],
    force_ratio: None,
    batch: 2,
};

/// Two databases: SWAPDB races the walk and a multi-key write in database 0.
static SWAPDB: Scenario = Scenario {
    databases: 2,
    setup: &[
        Step::Cmd(0, &["SET", "$0", "1"]),
        Step::Cmd(0, &["SET", "$2", "3"]),
        Step::Cmd(1, &["SET", "$1", "10"]),
    ],
    w1: &[Step::Cmd(0, &["SWAPDB", "0", "1"])],
    w2: &[Step::Cmd(0, &["MSET", "$0", "7", "$1", "8"])],
    force_ratio: None,
    batch: 2,
};

/// The forced grow: database 0's dict may hold one entry per bucket while frozen; an MSET of
/// three new keys makes it grow mid-walk (the walk must go over the grown table again).
static FORCED_GROW: Scenario = Scenario {
    databases: 1,
    setup: &[
        Step::Cmd(0, &["SET", "$0", "1"]),
        Step::Cmd(0, &["SET", "$1", "10"]),
        Step::Cmd(0, &["SET", "$2", "100"]),
    ],
    w1: &[Step::Cmd(0, &["INCR", "$1"])],
    w2: &[Step::Cmd(0, &["MSET", "n1", "a", "n2", "b", "n3", "c"])],
    force_ratio: Some(1),
    batch: 1,
};

/// The forced grow of a dict frozen in the middle of a rehash (table 0 partly moved to table 1):
/// five keys start a rehash, the overwrite moves one bucket, and an MSET of new keys during the
/// snapshot grows the dict; the grown table's low buckets come from table 1, which the walk
/// reaches last, so the walk must go over the grown table again from bucket 0.
static FORCED_GROW_MID_REHASH: Scenario = Scenario {
    databases: 1,
    setup: &[
        Step::Cmd(0, &["SET", "$0", "1"]),
        Step::Cmd(0, &["SET", "$1", "10"]),
        Step::Cmd(0, &["SET", "$2", "100"]),
        Step::Cmd(0, &["SET", "x1", "x"]),
        Step::Cmd(0, &["SET", "x2", "y"]),
        Step::Cmd(0, &["SET", "$0", "2"]),
    ],
    w1: &[Step::Cmd(0, &["INCR", "$1"])],
    w2: &[Step::Cmd(0, &["MSET", "n1", "a", "n2", "b"])],
    force_ratio: Some(1),
    batch: 1,
};

/// Expiry with a moving clock: `$0` expires at T0+10, `$1` at T0+1000; one writer moves the
/// clock past both and reads `$0` (lazy expiry), the other increments `$1` (kept TTL, or a fresh
/// key once expired) and runs an active-expiry cycle.
static EXPIRY: Scenario = Scenario {
    databases: 1,
    setup: &[
        Step::Cmd(0, &["SET", "$0", "1"]),
        Step::Cmd(0, &["PEXPIREAT", "$0", "1700000000010"]),
        Step::Cmd(0, &["SET", "$1", "2"]),
        Step::Cmd(0, &["PEXPIREAT", "$1", "1700000001000"]),
        Step::Cmd(0, &["SET", "$2", "3"]),
    ],
    w1: &[Step::Advance(1500), Step::Cmd(0, &["GET", "$0"])],
    w2: &[Step::Cmd(0, &["INCR", "$1"]), Step::ActiveExpire],
    force_ratio: None,
    batch: 1,
};

#[test]
fn converging_flushdb_of_second_db_vs_walk() {
    model_scenario(Mode::Converging, &FLUSHDB_SECOND_DB);
}

#[test]
fn point_in_time_flushdb_of_second_db_vs_walk() {
    model_scenario(Mode::PointInTime, &FLUSHDB_SECOND_DB);
}

#[test]
fn converging_swapdb_vs_walk() {
    model_scenario(Mode::Converging, &SWAPDB);
}

#[test]
fn point_in_time_swapdb_vs_walk() {
    model_scenario(Mode::PointInTime, &SWAPDB);
}

#[test]
fn converging_forced_grow_vs_walk() {
    model_scenario(Mode::Converging, &FORCED_GROW);
}

#[test]
fn point_in_time_forced_grow_vs_walk() {
    model_scenario(Mode::PointInTime, &FORCED_GROW);
}

#[test]
fn converging_forced_grow_mid_rehash_vs_walk() {
    model_scenario(Mode::Converging, &FORCED_GROW_MID_REHASH);
}

#[test]
fn point_in_time_forced_grow_mid_rehash_vs_walk() {
    model_scenario(Mode::PointInTime, &FORCED_GROW_MID_REHASH);
}

#[test]
fn converging_expiry_with_moving_clock_vs_walk() {
    model_scenario(Mode::Converging, &EXPIRY);
}

#[test]
fn point_in_time_expiry_with_moving_clock_vs_walk() {
    model_scenario(Mode::PointInTime, &EXPIRY);
}
