//! The snapshot's guarantees, deterministically: writes injected between the walk's batches hit
//! visited and unvisited buckets, single- and multi-key, across databases.
//!
//! * point-in-time: the RDB equals the keyspace at the start;
//! * converging: RDB + deltas replay to the keyspace at the end.

use crate::common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use forkless_keyspace::{CollectingSink, Config, Keyspace, Session};
use forkless_snapshot::{install, run_snapshot, Barrier, Mode, Progress, SnapshotOptions};

fn cmd(ks: &Keyspace, db: u32, args: &[&str]) {
    let argv: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
    let mut s = Session { db };
    let r = ks.execute(&mut s, &argv);
    assert!(!r.is_error(), "{args:?}: {r:?}");
}

fn populated(
    n: usize,
) -> (
    Arc<Keyspace>,
    Arc<forkless_snapshot::SnapshotObserver>,
    Arc<CollectingSink>,
) {
    let mut ks = Keyspace::new(Config {
        shards: 4,
        ..Config::seeded(7)
    });
    let sink = Arc::new(CollectingSink::new());
    ks.set_sink(sink.clone());
    let obs = install(&mut ks);
    let ks = Arc::new(ks);
    for i in 0..n {
        let k = format!("k{i}");
        match i % 5 {
            0 => cmd(&ks, 0, &["SET", &k, &i.to_string()]),
            1 => cmd(&ks, 0, &["RPUSH", &k, "a", "b", &k]),
            2 => cmd(&ks, 1, &["SADD", &k, "x", "y", &k]),
            3 => cmd(&ks, 2, &["ZADD", &k, "1", "m", "2.5", &k]),
            _ => cmd(&ks, 0, &["HSET", &k, "f", "v", "g", &k]),
        }
    }
    (ks, obs, sink)
}

/// A deterministic script of writes: each batch of the walk triggers the next few.
fn script(i: usize) -> Vec<(u32, Vec<String>)> {
    let k = |j: usize| format!("k{}", (i * 37 + j * 11) % 600);
    let n = |j: usize| format!("new{}-{}", i, j);
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let string_key = format!("k{}", 5 * ((i * 7) % 120));
    match i % 9 {
        0 => vec![
            (0, s(&["SET", &k(0), "overwritten"])),
            (0, s(&["SET", &n(0), "fresh"])),
        ],
        1 => vec![
            (0, s(&["RENAME", "k0", &n(1)])),
            (0, s(&["RENAME", &n(1), "k0"])),
        ],
        2 => vec![(0, s(&["MSET", &k(1), "m1", &k(2), "m2", &n(2), "m3"]))],
        3 => vec![(0, s(&["DEL", &k(3)])), (0, s(&["COPY", "k5", &n(3)]))],
        4 => vec![(0, s(&["MOVE", "k10", "3"])), (3, s(&["MOVE", "k10", "0"]))],
        5 => vec![
            (1, s(&["SMOVE", "k2", "k7", "x"])),
            (1, s(&["SADD", &n(5), "q"])),
        ],
        6 => vec![
            (0, s(&["LMOVE", "k1", "k6", "LEFT", "RIGHT"])),
            (0, s(&["APPEND", &k(4), "+"])),
        ],
        8 => vec![
            (0, s(&["RENAME", &string_key, &n(8)])),
            (0, s(&["INCR", &n(8)])),
        ],
        _ => vec![
            (2, s(&["ZINCRBY", "k3", "5", "m"])),
            (0, s(&["INCR", "k15"])),
        ],
    }
}

/// Runs a snapshot of `ks` (observer `obs`, propagation log `sink`) in `mode` with `batch`
/// buckets per batch, calling `after_batch(i)` after the walk's batch `i`, and checks that its
/// output replays to the keyspace at the cut: the log up to the start barrier (point-in-time)
/// or the end barrier (converging), replayed into a fresh keyspace. `what` names the case in
/// the failure message. Returns the result and the replay.
fn snapshot_at_cut(
    (ks, obs, sink): &(
        Arc<Keyspace>,
        Arc<forkless_snapshot::SnapshotObserver>,
        Arc<CollectingSink>,
    ),
    mode: Mode,
    batch: usize,
    after_batch: impl Fn(u64) + Send + Sync + 'static,
    what: &str,
) -> (
    forkless_snapshot::SnapshotResult,
    Vec<forkless_rdb::model::Entry>,
) {
    let start_log = Arc::new(AtomicUsize::new(usize::MAX));
    let end_log = Arc::new(AtomicUsize::new(usize::MAX));
    let (sl, el, s2) = (start_log.clone(), end_log.clone(), sink.clone());
    let opts = SnapshotOptions {
        mode,
        batch_buckets: batch,
        on_barrier: Some(Arc::new(move |b| match b {
            Barrier::Start => sl.store(s2.ops().len(), Ordering::SeqCst),
            Barrier::End => el.store(s2.ops().len(), Ordering::SeqCst),
        })),
        after_batch: Some(Arc::new(after_batch)),
        ..Default::default()
    };
    let ticket = obs.try_begin().unwrap();
    assert!(obs.try_begin().is_err(), "one snapshot at a time");
    let (out, res) = run_snapshot(
        ks,
        ticket,
        &opts,
        Vec::new(),
        &Progress::default(),
        &AtomicBool::new(false),
    )
    .unwrap();
    let log = sink.ops();
    let cut = match mode {
        Mode::PointInTime => start_log.load(Ordering::SeqCst),
        Mode::Converging => end_log.load(Ordering::SeqCst),
    };
    assert!(cut <= log.len());
    let (want, got) = (common::expected_from_log(&log, cut), common::replay(&out));
    if got != want {
        panic!(
            "{what}: replay differs from the keyspace at the cut:\n{}",
            forkless_dump::diff(&want, &got).join("\n")
        );
    }
    (res, got)
}

fn run_case(mode: Mode, n: usize, batch: usize) {
    let snap = populated(n);
    let ks2 = snap.0.clone();
    let after_batch = move |i: u64| {
        for (db, args) in script(i as usize) {
            let argv: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
            // Some scripted commands fail on purpose-free races with earlier ones (a key
            // renamed away): errors change nothing and propagate nothing.
            let _ = ks2.execute(&mut Session { db }, &argv);
        }
    };
    let (res, got) = snapshot_at_cut(
        &snap,
        mode,
        batch,
        after_batch,
        &format!("{mode:?} batch {batch}"),
    );
    let (ks, obs, _) = snap;
    assert!(res.walked_buckets > 0);
    if mode == Mode::PointInTime {
        assert_eq!(res.delta_commands, 0);
        assert!(
            res.forced_visits > 0,
            "writes hit unvisited buckets: {res:?}"
        );
    } else {
        assert!(
            res.delta_commands > 0,
            "writes hit visited buckets: {res:?}"
        );
        // And the live keyspace at the end equals the replay (nothing ran after the barrier).
        assert_eq!(ks.dump(), got);
    }
    // The observer is free again, and writes after the snapshot are not captured anywhere.
    drop(obs.try_begin().expect("free after the snapshot"));
}

#[test]
fn point_in_time_equals_the_start() {
    for batch in [1, 4, 64] {
        run_case(Mode::PointInTime, 600, batch);
    }
}

#[test]
fn converging_equals_the_end() {
    for batch in [1, 4, 64] {
        run_case(Mode::Converging, 600, batch);
    }
}

#[test]
fn flush_and_swap_during_a_snapshot() {
    for mode in [Mode::Converging, Mode::PointInTime] {
        let (ks, obs, sink) = populated(300);
        let start_log = Arc::new(AtomicUsize::new(0));
        let end_log = Arc::new(AtomicUsize::new(0));
        let (sl, el, s2, ks2) = (start_log.clone(), end_log.clone(), sink.clone(), ks.clone());
        let opts = SnapshotOptions {
            mode,
            batch_buckets: 2,
            on_barrier: Some(Arc::new(move |b| match b {
                Barrier::Start => sl.store(s2.ops().len(), Ordering::SeqCst),
                Barrier::End => el.store(s2.ops().len(), Ordering::SeqCst),
            })),
            after_batch: Some(Arc::new(move |i| match i {
                3 => cmd(&ks2, 0, &["SWAPDB", "0", "1"]),
                5 => cmd(&ks2, 0, &["SET", "after-swap", "1"]),
                8 => cmd(&ks2, 2, &["FLUSHDB"]),
                9 => cmd(&ks2, 2, &["ZADD", "after-flush", "1", "a"]),
                12 => cmd(&ks2, 0, &["FLUSHALL"]),
                13 => cmd(&ks2, 4, &["SET", "after-flushall", "x"]),
                _ => {}
            })),
            ..Default::default()
        };
        let ticket = obs.try_begin().unwrap();
        let (out, _) = run_snapshot(
            &ks,
            ticket,
            &opts,
            Vec::new(),
            &Progress::default(),
            &AtomicBool::new(false),
        )
        .unwrap();
        let log = sink.ops();
        let cut = match mode {
            Mode::PointInTime => start_log.load(Ordering::SeqCst),
            Mode::Converging => end_log.load(Ordering::SeqCst),
        };
        assert_eq!(
            common::replay(&out),
            common::expected_from_log(&log, cut),
            "{mode:?}"
        );
    }
}

#[test]
fn cancel_leaves_no_capture_behind() {
    let (ks, obs, _sink) = populated(200);
    let cancel = Arc::new(AtomicBool::new(false));
    let c2 = cancel.clone();
    let opts = SnapshotOptions {
        batch_buckets: 1,
        after_batch: Some(Arc::new(move |i| {
            if i == 3 {
                c2.store(true, Ordering::SeqCst)
            }
        })),
        ..Default::default()
    };
    let ticket = obs.try_begin().unwrap();
    let r = run_snapshot(
        &ks,
        ticket,
        &opts,
        Vec::new(),
        &Progress::default(),
        &cancel,
    );
    assert!(matches!(
        r,
        Err(forkless_snapshot::SnapshotError::Cancelled)
    ));
    drop(obs.try_begin().expect("free after a cancelled snapshot"));
    cmd(&ks, 0, &["SET", "k0", "after"]);
}

/// Transactions (`Keyspace::execute_multi`) during a snapshot: each is one unit for the
/// observer (one capture decision over the union of its keys, visited or not, across databases)
/// and one MULTI/EXEC group in the deltas, so the replay still equals the keyspace at the cut.
#[test]
fn transactions_during_a_snapshot() {
    for mode in [Mode::Converging, Mode::PointInTime] {
        for batch in [1, 8] {
            let (ks, obs, sink) = populated(600);
            let cut = Arc::new(AtomicUsize::new(usize::MAX));
            let (c2, s2, ks2) = (cut.clone(), sink.clone(), ks.clone());
            let opts = SnapshotOptions {
                mode,
                batch_buckets: batch,
                on_barrier: Some(Arc::new(move |b| {
                    let at = matches!(
                        (b, mode),
                        (Barrier::Start, Mode::PointInTime) | (Barrier::End, Mode::Converging)
                    );
                    if at {
                        c2.store(s2.ops().len(), Ordering::SeqCst);
                    }
                })),
                after_batch: Some(Arc::new(move |i| {
                    let i = i as usize;
                    let k = |j: usize| format!("k{}", 5 * ((i * 13 + j * 29) % 120));
                    let set = format!("k{}", 5 * ((i * 7) % 120) + 2);
                    let cmds: Vec<Vec<String>> = [
                        vec!["SET".into(), k(0), format!("tx{i}")],
                        vec!["APPEND".into(), k(1), "+".into()],
                        vec!["INCR".into(), format!("ctr{}", i % 7)],
                        vec!["RENAME".into(), k(2), format!("moved{i}")],
                        vec!["SELECT".into(), "1".into()],
                        vec!["SADD".into(), set, format!("t{i}")],
                        vec!["SELECT".into(), "0".into()],
                        vec!["DEL".into(), k(3)],
                    ]
                    .into();
                    let argvs: Vec<Vec<&[u8]>> = cmds
                        .iter()
                        .map(|c| c.iter().map(|a| a.as_bytes()).collect())
                        .collect();
                    let refs: Vec<&[&[u8]]> = argvs.iter().map(Vec::as_slice).collect();
                    ks2.execute_multi(&mut Session::default(), &refs)
                        .expect("queued");
                })),
                ..Default::default()
            };
            let ticket = obs.try_begin().unwrap();
            let (out, res) = run_snapshot(
                &ks,
                ticket,
                &opts,
                Vec::new(),
                &Progress::default(),
                &AtomicBool::new(false),
            )
            .unwrap();
            let log = sink.ops();
            assert!(
                log.iter().any(|(_, a)| a[0] == b"MULTI"),
                "transactions logged as units"
            );
            let expected = common::expected_from_log(&log, cut.load(Ordering::SeqCst));
            let got = common::replay(&out);
            if got != expected {
                let d = forkless_dump::diff(&expected, &got);
                panic!("{mode:?} batch {batch}: {}", d.join("\n"));
            }
            if mode == Mode::Converging {
                assert!(res.delta_commands > 0, "{res:?}");
                assert_eq!(ks.dump(), got);
            }
        }
    }
}

/// `(entries, buckets, frozen)` of database `db`'s dict in every shard.
fn dicts(ks: &Keyspace, db: u32) -> Vec<(usize, usize, bool)> {
    (0..ks.num_shards())
        .map(|si| {
            ks.with_shard(si, |s| {
                let d = s.db(db).dict();
                (d.len(), d.num_buckets(), d.is_frozen())
            })
        })
        .collect()
}

/// Runs a snapshot of `populated(600)` whose walk calls `mid` once, after its second batch (the
/// walk is then under way), and checks the output against the log at the cut.
fn snapshot_with_mid_walk_writes(
    mode: Mode,
    mid: impl Fn(&Keyspace) + Send + Sync + 'static,
) -> forkless_snapshot::SnapshotResult {
    let snap = populated(600);
    let ks2 = snap.0.clone();
    let after_batch = move |i: u64| {
        if i == 2 {
            mid(&ks2)
        }
    };
    snapshot_at_cut(&snap, mode, 4, after_batch, &format!("{mode:?}")).0
}

/// Issue 13 item 3: after FLUSHDB during a snapshot the database holds a fresh table (the old
/// one left for the walk, issue 19) whose every bucket counts as visited: it is not frozen at 4
/// buckets (every insert chaining under the shard lock), and 50k SETs keep the load factor at
/// most 1 (the unfrozen rule). A table SWAPDB moved is still walked, so it stays frozen like any
/// other unfinished one, within the forced grow's bound (8 per bucket).
#[test]
fn flushdb_mid_snapshot_thaws_the_new_dict() {
    for mode in [Mode::Converging, Mode::PointInTime] {
        snapshot_with_mid_walk_writes(mode, move |ks| {
            cmd(ks, 0, &["FLUSHDB"]);
            cmd(ks, 1, &["SWAPDB", "1", "3"]);
            for db in [0, 3] {
                for i in 0..25_000 {
                    cmd(ks, db, &["SET", &format!("after-{i}"), "v"]);
                }
                for (si, (len, buckets, frozen)) in dicts(ks, db).into_iter().enumerate() {
                    let bound = if db == 0 { buckets } else { 8 * buckets };
                    assert_eq!(frozen, db == 3, "{mode:?}: db {db} shard {si} frozen");
                    assert!(
                        len <= bound,
                        "{mode:?}: db {db} shard {si}: {len} keys chained into {buckets} buckets"
                    );
                }
            }
            // Databases the walk has not finished stay frozen.
            assert!(
                dicts(ks, 2).iter().all(|d| d.2),
                "{mode:?}: db 2 thawed early"
            );
        });
    }
}

/// Issue 13 item 3 (also): the forced-resize bound holds per insert, so one MSET of many new
/// keys into frozen dicts cannot chain past it (it used to be checked once per key, before all
/// of the command's inserts). And the walk still hands every key over exactly once.
#[test]
fn one_mset_cannot_chain_past_the_force_bound() {
    for mode in [Mode::Converging, Mode::PointInTime] {
        let res = snapshot_with_mid_walk_writes(mode, move |ks| {
            let before = dicts(ks, 0);
            let args: Vec<String> = (0..6_000)
                .flat_map(|i| [format!("mset-{i}"), i.to_string()])
                .collect();
            let mut argv = vec!["MSET"];
            argv.extend(args.iter().map(|a| a.as_str()));
            cmd(ks, 0, &argv);
            for (si, (len, buckets, frozen)) in dicts(ks, 0).into_iter().enumerate() {
                assert!(frozen, "{mode:?}: shard {si} thawed mid-snapshot");
                // DictConfig::default().force_resize_ratio = 8; at most one entry past it.
                assert!(
                    len <= 8 * buckets + 1,
                    "{mode:?}: shard {si}: {len} keys in {buckets} buckets"
                );
                assert!(buckets > before[si].1, "{mode:?}: shard {si} did not grow");
            }
        });
        assert!(res.walked_buckets > 0);
    }
}

/// A dict frozen in the middle of a rehash (part of table 0 already moved to table 1, which the
/// walk reaches last) grows by the forced grow while the walk is under way: the grown table's
/// low buckets take their entries (and stamps) from table 1, below the walk's cursor, so the walk
/// must go over the grown table again. Deterministic (fixed seeds); both modes.
#[test]
fn walk_goes_over_a_dict_grown_mid_rehash_again() {
    let mut grew_mid_rehash = 0;
    for seed in 1..=12u64 {
        for mode in [Mode::Converging, Mode::PointInTime] {
            let mut ks = Keyspace::new(Config {
                shards: 1,
                ..Config::seeded(seed)
            });
            let sink = Arc::new(CollectingSink::new());
            ks.set_sink(sink.clone());
            let obs = install(&mut ks);
            let ks = Arc::new(ks);
            // Insert until the dict is rehashing and some key already lives in table 1
            // (traversal index >= size0 = num_buckets / 3 for a doubling).
            let mut names = Vec::new();
            for i in 0.. {
                let k = format!("k{i}");
                cmd(&ks, 0, &["SET", &k, "v"]);
                names.push(k);
                let mid = ks.with_shard(0, |s| {
                    let d = s.db(0).dict();
                    d.is_rehashing()
                        && names
                            .iter()
                            .any(|n| d.bucket_of(ks.hash_key(n.as_bytes())) >= d.num_buckets() / 3)
                });
                if mid {
                    break;
                }
            }
            ks.with_shard(0, |s| {
                let d = s.db_mut(0).dict_mut();
                let mut c = d.config();
                c.force_resize_ratio = 2;
                d.set_config(c);
            });
            let ks2 = ks.clone();
            let grown = Arc::new(AtomicBool::new(false));
            let g2 = grown.clone();
            let after_batch = move |i: u64| {
                if i == 2 {
                    let before = ks2.with_shard(0, |s| s.db(0).dict().is_rehashing());
                    let args: Vec<String> = (0..40)
                        .flat_map(|j| [format!("new{j}"), j.to_string()])
                        .collect();
                    let mut argv = vec!["MSET"];
                    argv.extend(args.iter().map(|a| a.as_str()));
                    cmd(&ks2, 0, &argv);
                    let after = ks2.with_shard(0, |s| s.db(0).dict().is_rehashing());
                    g2.store(before && !after, Ordering::SeqCst);
                }
            };
            let what = format!("seed {seed} {mode:?}");
            snapshot_at_cut(&(ks, obs, sink), mode, 1, after_batch, &what);
            if grown.load(Ordering::SeqCst) {
                grew_mid_rehash += 1;
            }
        }
    }
    assert!(
        grew_mid_rehash >= 12,
        "only {grew_mid_rehash} forced grows mid-rehash"
    );
}
