//! Test support: replay a snapshot's output (RDB, optionally followed by RESP deltas) into a fresh
//! keyspace, and build expected states from a log of propagated commands.
#![allow(dead_code)]

use forkless_keyspace::{render_aof, Config, Keyspace, Propagated};
use forkless_rdb::model::Entry;

/// A fresh keyspace for replays.
pub(crate) fn fresh() -> Keyspace {
    Keyspace::new(Config {
        shards: 4,
        ..Config::seeded(99)
    })
}

/// Replay an RDB (+ optional RESP deltas after it) into a fresh keyspace; returns its dump.
pub(crate) fn replay(bytes: &[u8]) -> Vec<Entry> {
    let ks = fresh();
    forkless_snapshot::load(bytes, &ks).unwrap_or_else(|e| panic!("replaying the snapshot: {e}"));
    ks.dump()
}

/// The keyspace obtained by replaying the first `n` propagated commands into a fresh keyspace.
pub(crate) fn expected_from_log(log: &[Propagated], n: usize) -> Vec<Entry> {
    let ks = fresh();
    forkless_snapshot::load_commands(&render_aof(&log[..n]), &ks)
        .unwrap_or_else(|e| panic!("replaying the log: {e}"));
    ks.dump()
}
