//! Checking a snapshot: replay its output (an RDB part, then RESP deltas in converging mode:
//! Redis's "RDB preamble + AOF" layout) into a fresh keyspace and compare it with the expected
//! state at the snapshot's cut.
//!
//! The expected state is rebuilt the way `crates/snapshot/tests/protocol.rs` does it: a base
//! dump taken while writers were stopped, plus the propagated commands recorded by a
//! [`GatedSink`] up to the log position recorded inside the snapshot's barrier
//! (`SnapshotOptions::on_barrier`, called while every shard is locked).

use forkless_keyspace::{render_aof, Config, Keyspace, Propagated, PropagationSink, Session};
use forkless_rdb::model::Entry;
use forkless_rdb::{Item, RdbReader};
use forkless_sync::atomic::{AtomicBool, Ordering};
use forkless_sync::Mutex;

/// A propagation sink that records only while enabled (measurement passes leave it off, so the
/// log costs nothing but a flag check).
#[derive(Debug, Default)]
pub struct GatedSink {
    on: AtomicBool,
    ops: Mutex<Vec<Propagated>>,
}

impl GatedSink {
    /// A disabled, empty sink.
    pub fn new() -> GatedSink {
        GatedSink::default()
    }
    /// Start or stop recording.
    pub fn set_enabled(&self, on: bool) {
        self.on.store(on, Ordering::SeqCst);
    }
    /// Commands recorded so far.
    pub fn len(&self) -> usize {
        self.ops.lock().len()
    }
    /// True when nothing is recorded.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Take the log, leaving the sink empty.
    pub fn take(&self) -> Vec<Propagated> {
        std::mem::take(&mut *self.ops.lock())
    }
}

impl PropagationSink for GatedSink {
    fn propagate(&self, ops: &[Propagated]) {
        if self.on.load(Ordering::Relaxed) {
            self.ops.lock().extend_from_slice(ops);
        }
    }
}

/// A fresh keyspace for replays (fixed seed, so dumps compare by content only).
pub fn fresh() -> Keyspace {
    Keyspace::new(Config::seeded(99))
}

/// Execute a RESP command stream in `ks` (`MULTI`/`EXEC` frames applied as their contents).
/// Errors name the byte offset of the bad command.
pub fn apply_resp(ks: &Keyspace, resp: &[u8]) -> Result<u64, String> {
    let scan = forkless_resp::scan_commands(resp);
    if let Some(e) = scan.tail {
        return Err(format!(
            "delta stream malformed after byte {}: {e:?}",
            scan.offset_after_last_complete
        ));
    }
    let mut session = Session::default();
    let mut n = 0;
    for it in scan.items {
        if let forkless_resp::Item::Command(argv) = it.item {
            if argv[0].eq_ignore_ascii_case(b"multi") || argv[0].eq_ignore_ascii_case(b"exec") {
                continue;
            }
            let r = ks.execute(&mut session, &argv);
            if r.is_error() {
                return Err(format!(
                    "delta command at byte {} ({}) failed: {r:?}",
                    it.start,
                    String::from_utf8_lossy(argv[0])
                ));
            }
            n += 1;
        }
    }
    Ok(n)
}

/// Replay a snapshot's bytes (RDB, then optional RESP deltas) into a fresh keyspace; returns
/// its dump.
pub fn replay(bytes: &[u8]) -> Result<Vec<Entry>, String> {
    let mut rd = RdbReader::new(bytes).map_err(|e| format!("RDB header: {e}"))?;
    let mut entries = Vec::new();
    loop {
        let at = rd.offset();
        match rd.next_item() {
            Ok(Some(Item::Entry(e))) => entries.push(e),
            Ok(Some(_)) => {}
            Ok(None) => break,
            Err(e) => return Err(format!("RDB part at byte {at}: {e}")),
        }
    }
    let rest = rd.into_inner();
    let ks = fresh();
    ks.load(entries)
        .map_err(|e| format!("loading the RDB part: {e}"))?;
    apply_resp(&ks, rest).map_err(|e| {
        let base = bytes.len() - rest.len();
        format!("{e} (deltas start at byte {base})")
    })?;
    Ok(ks.dump())
}

/// The state obtained from `base` followed by the first `n` commands of `log`.
pub fn expected(base: Vec<Entry>, log: &[Propagated], n: usize) -> Result<Vec<Entry>, String> {
    let ks = fresh();
    ks.load(base)
        .map_err(|e| format!("loading the base dump: {e}"))?;
    let n = n.min(log.len());
    apply_resp(&ks, &render_aof(&log[..n]))?;
    Ok(ks.dump())
}

/// Compare two canonical dumps; Err names the first differing key and the counts.
pub fn compare(expected: &[Entry], got: &[Entry]) -> Result<(), String> {
    if expected == got {
        return Ok(());
    }
    let first = expected
        .iter()
        .zip(got)
        .find(|(a, b)| a != b)
        .map(|(a, _)| format!("db {} key {:?}", a.db, String::from_utf8_lossy(&a.key)))
        .unwrap_or_else(|| "a key past the shorter side".to_string());
    Err(format!(
        "snapshot differs from the state at the cut: {} keys expected, {} replayed; first difference at {first}",
        expected.len(),
        got.len()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use forkless_snapshot::{install, run_snapshot, Mode, Progress, SnapshotOptions};
    use forkless_sync::Arc;

    #[test]
    fn replays_a_snapshot_and_detects_a_difference() {
        let mut ks = Keyspace::new(Config::seeded(5));
        let sink = Arc::new(GatedSink::new());
        ks.set_sink(sink.clone());
        let obs = install(&mut ks);
        let mut s = Session::default();
        ks.execute(&mut s, &[b"SET", b"a", b"1"]);
        let base = ks.dump();
        sink.set_enabled(true);
        ks.execute(&mut s, &[b"RPUSH", b"l", b"x", b"y"]);
        ks.execute(&mut s, &[b"INCR", b"a"]);
        let opts = SnapshotOptions {
            mode: Mode::Converging,
            ..Default::default()
        };
        let (out, _) = run_snapshot(
            &ks,
            obs.try_begin().unwrap(),
            &opts,
            Vec::new(),
            &Progress::default(),
            &AtomicBool::new(false),
        )
        .unwrap();
        let log = sink.take();
        assert_eq!(log.len(), 2);
        let got = replay(&out).unwrap();
        compare(&expected(base.clone(), &log, 2).unwrap(), &got).unwrap();
        let err = compare(&expected(base, &log, 1).unwrap(), &got).unwrap_err();
        assert!(err.contains("key \"a\""), "{err}");
        assert!(replay(b"REDIS0010garbage").is_err());
    }
}
