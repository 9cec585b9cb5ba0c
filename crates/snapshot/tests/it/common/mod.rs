//! Test support: replay a snapshot's output (RDB, optionally followed by RESP deltas) into a fresh
//! keyspace, and build expected states from a log of propagated commands.
#![allow(dead_code)]

use forkless_keyspace::{render_aof, Config, Keyspace, Propagated, Session};
use forkless_rdb::model::Entry;
use forkless_rdb::{Item, RdbReader};

/// A fresh keyspace for replays.
pub fn fresh() -> Keyspace {
    Keyspace::new(Config {
        shards: 4,
        ..Config::seeded(99)
    })
}

/// Execute a RESP byte stream (MULTI/EXEC frames applied as their contents) in `ks`.
pub fn apply_resp(ks: &Keyspace, resp: &[u8]) {
    let scan = forkless_resp::scan_commands(resp);
    assert!(
        scan.tail.is_none(),
        "delta stream malformed: {:?}",
        scan.tail
    );
    let mut session = Session::default();
    for it in scan.items {
        if let forkless_resp::Item::Command(argv) = it.item {
            if argv[0].eq_ignore_ascii_case(b"multi") || argv[0].eq_ignore_ascii_case(b"exec") {
                continue;
            }
            let r = ks.execute(&mut session, &argv);
            assert!(!r.is_error(), "replaying {:?} failed: {r:?}", lossy(&argv));
        }
    }
}

fn lossy(argv: &[&[u8]]) -> Vec<String> {
    argv.iter()
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect()
}

/// Replay an RDB (+ optional RESP deltas after it) into a fresh keyspace; returns its dump.
pub fn replay(bytes: &[u8]) -> Vec<Entry> {
    let mut rd = RdbReader::new(bytes).expect("RDB header");
    let mut entries = Vec::new();
    while let Some(item) = rd.next_item().expect("RDB part reads") {
        if let Item::Entry(e) = item {
            entries.push(e);
        }
    }
    let rest = rd.into_inner();
    let ks = fresh();
    // A replay is a load: no key counts as expired until it is done (Redis's rule while loading).
    ks.set_loading(true);
    ks.load(entries).expect("load");
    apply_resp(&ks, rest);
    ks.set_loading(false);
    ks.dump()
}

/// The keyspace obtained by replaying the first `n` propagated commands into a fresh keyspace.
pub fn expected_from_log(log: &[Propagated], n: usize) -> Vec<Entry> {
    let ks = fresh();
    ks.set_loading(true);
    apply_resp(&ks, &render_aof(&log[..n]));
    ks.set_loading(false);
    ks.dump()
}
