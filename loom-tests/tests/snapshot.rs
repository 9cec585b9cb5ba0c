//! Loom models of the per-bucket snapshot protocol, one race per test (tokio's `loom_*.rs`
//! style). Each model: a keyspace shrunk to one shard of a 4-bucket dict (the dict's minimum) and
//! one database, three keys, two writer threads (one single-key, one multi-key across buckets)
//! and the snapshot worker on the model's main thread with one bucket per batch, so loom
//! interleaves every write with every step of the walk and both barriers. For every interleaving:
//! replaying the output gives the keyspace at the cut (start for point-in-time, end for
//! converging), and nothing deadlocks (loom reports deadlocks itself).
//!
//! Run: `RUSTFLAGS="--cfg forkless_loom" LOOM_MAX_PREEMPTIONS=2 cargo test --release` in this
//! directory (see ci/loom.sh); a few minutes on 2 cores.
#![cfg(forkless_loom)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use forkless_keyspace::{render_aof, CollectingSink, Config, Keyspace, Propagated, Session};
use forkless_rdb::model::Entry;
use forkless_rdb::{Item, RdbReader};
use forkless_snapshot::{install, run_snapshot, Barrier, Mode, Progress, SnapshotOptions};
use forkless_sync::atomic::AtomicBool;
use forkless_sync::thread;

fn config() -> Config {
    Config {
        shards: 1,
        databases: 1,
        seed: Some(3),
        clock: Some(Arc::new(|| 1_700_000_000_000)),
    }
}

fn exec(ks: &Keyspace, argv: &[&[u8]]) {
    let r = ks.execute(&mut Session::default(), argv);
    assert!(!r.is_error(), "{r:?}");
}

fn apply_resp(ks: &Keyspace, resp: &[u8]) {
    let scan = forkless_resp::scan_commands(resp);
    assert!(scan.tail.is_none());
    let mut s = Session::default();
    for it in scan.items {
        if let forkless_resp::Item::Command(argv) = it.item {
            if argv[0].eq_ignore_ascii_case(b"multi") || argv[0].eq_ignore_ascii_case(b"exec") {
                continue;
            }
            assert!(!ks.execute(&mut s, &argv).is_error());
        }
    }
}

fn replay(bytes: &[u8]) -> Vec<Entry> {
    let mut rd = RdbReader::new(bytes).expect("header");
    let mut entries = Vec::new();
    while let Some(item) = rd.next_item().expect("rdb") {
        if let Item::Entry(e) = item {
            entries.push(e);
        }
    }
    let rest = rd.into_inner();
    let ks = Keyspace::new(config());
    ks.load(entries).expect("load");
    apply_resp(&ks, rest);
    ks.dump()
}

fn expected(log: &[Propagated], n: usize) -> Vec<Entry> {
    let ks = Keyspace::new(config());
    apply_resp(&ks, &render_aof(&log[..n]));
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
