//! `segments check`: the chain, each snapshot's cut, what recovery would use, and problems.
//!
//! Read-only. Every segment is parsed from its start (only the last may end in a torn
//! command, reported as a note since a crash leaves exactly that); every snapshot is verified
//! as recovery would (length, whole-file CRC, RDB and deltas, aux cut = manifest cut).

use std::path::Path;

use forkless_aof::{load_file_from, LoadOptions, LoadReport};

use crate::error::Result;
use crate::manifest::{segment_name, SegManifest};
use crate::recover::{check_chain, load_snapshot, start_points, Discard, StartPoint};

/// What [`check`] found.
#[derive(Debug, Clone, Default)]
pub struct CheckReport {
    /// One line per segment and snapshot.
    pub lines: Vec<String>,
    /// Notes that are not problems (a torn tail recovery will cut).
    pub notes: Vec<String>,
    /// Problems: corrupt or missing files, snapshots recovery would refuse.
    pub problems: Vec<String>,
    /// What recovery would start from, if anything.
    pub recovery: Option<String>,
}

/// Check the segments directory `dir`. Errs only when its manifest cannot be read.
pub fn check(dir: &Path) -> Result<CheckReport> {
    let m = SegManifest::load(dir)?;
    let mut r = CheckReport::default();
    let last = m.last_segment();
    let mut chain_ok = true;
    for w in m.segments.windows(2) {
        if w[1] != w[0] + 1 {
            chain_ok = false;
            r.problems.push(format!(
                "the chain has a hole: segments {} to {} are missing",
                w[0] + 1,
                w[1] - 1
            ));
        }
    }
    let mut bad_segments = Vec::new();
    for &seq in &m.segments {
        let name = segment_name(seq);
        let p = dir.join(&name);
        let len = match std::fs::metadata(&p) {
            Ok(md) => md.len(),
            Err(e) => {
                r.problems.push(format!("{name}: {e}"));
                bad_segments.push(seq);
                continue;
            }
        };
        let mut rep = LoadReport::default();
        let res = load_file_from(
            &p,
            &name,
            0,
            seq == last,
            &LoadOptions::default(),
            &mut Discard,
            &mut rep,
        )
        .map_err(|e| (e.to_string(), "CORRUPT"))
        .and_then(|_| {
            crate::recover::check_closed(dir, &m, seq)
                .map_err(|e| (e.to_string(), "CHANGED SINCE IT WAS CLOSED"))
        });
        match res {
            Ok(()) => {
                let ts = rep
                    .last_timestamp
                    .map_or(String::new(), |t| format!(", last #TS:{t}"));
                r.lines.push(format!(
                    "segment {seq}: {name}, {len} bytes, {} commands{ts}{}",
                    rep.commands,
                    if seq == last { " (open/last)" } else { "" }
                ));
                if let Some(t) = rep.truncated {
                    r.notes.push(format!(
                        "{name}: torn tail at offset {} of {} bytes: recovery cuts it",
                        t.valid_len, t.file_len
                    ));
                }
            }
            Err((e, verdict)) => {
                r.lines
                    .push(format!("segment {seq}: {name}, {len} bytes, {verdict}"));
                r.problems.push(e);
                bad_segments.push(seq);
            }
        }
    }
    let mut usable = Vec::new();
    for s in &m.snapshots {
        let mut rep = LoadReport::default();
        let status = match load_snapshot(dir, s, &mut Discard, &mut rep) {
            Ok(()) => {
                usable.push(s.seq);
                format!("ok, {} keys, {} delta commands", rep.rdb_keys, rep.commands)
            }
            Err(why) => {
                r.problems.push(format!("{}: {why}", s.name()));
                "REFUSED".to_string()
            }
        };
        r.lines.push(format!(
            "snapshot {}: {}, {} bytes, {}, cut at segment {} offset {} (db {}, time {}): {status}",
            s.seq,
            s.name(),
            s.len,
            s.mode.name(),
            s.cut.seq,
            s.cut.offset,
            s.cut.db.map_or("-".into(), |d| d.to_string()),
            s.cut.unix_secs
        ));
    }
    for p in start_points(&m, None) {
        let (from, ok) = match &p {
            StartPoint::Snapshot(s) => (s.cut.seq, usable.contains(&s.seq)),
            StartPoint::Empty => (1, true),
        };
        if !ok || !chain_ok || check_chain(dir, &m, from, "recovery").is_err() {
            continue;
        }
        if bad_segments.iter().any(|&b| b >= from) {
            break;
        }
        r.recovery = Some(format!("{}, then segments {from}..={last}", p.describe()));
        break;
    }
    if r.recovery.is_none() {
        r.problems
            .push("recovery would fail: no usable start point with a whole log after it".into());
    }
    Ok(r)
}
