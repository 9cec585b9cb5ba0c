//! Recovery: the newest snapshot that verifies, then the log from its cut.
//!
//! 1. The manifest's segments must form an unbroken chain (`n, n+1, ...`) and every segment
//!    from the chosen start on must exist; otherwise [`SegError::MissingSegment`] /
//!    [`SegError::Io`] name it. Nothing is loaded before these checks pass.
//! 2. Start points, newest first: each listed snapshot (with `until_timestamp` = T, only those
//!    cut at or before T), then, while segment 1 is still retained, the empty keyspace at
//!    segment 1 offset 0. A snapshot is used only if its length and whole-file CRC-64 match the
//!    manifest, its RDB part (own CRC) and deltas load, and its aux fields name the same cut;
//!    otherwise it is reported in [`RecoveryReport::rejected`] and the next one is tried (a
//!    longer replay).
//! 3. The log: `SELECT <cut db>`, then the cut segment from the cut offset, then every later
//!    segment. Only the last segment may end inside a command (its torn tail is cut and
//!    reported); corruption anywhere else is fatal and names file and offset. With T, replay
//!    stops before the first `#TS:` annotation later than T.
//!
//! Recovery never writes to the directory ([`crate::SegmentDir::open`] truncates the torn tail
//! afterwards, once recovery succeeded).

use std::fs::File;
use std::io::Read;
use std::path::Path;

use forkless_aof::auxfields;
use forkless_aof::load::{TimestampStop, Truncation};
use forkless_aof::{
    load_file_from, KeyspaceTarget, LoadOptions, LoadReport, LoadTarget, TargetError,
};
use forkless_keyspace::{Config, Keyspace};
use forkless_rdb::crc::Crc64;

use crate::error::{Result, SegError};
use crate::manifest::{segment_name, SegManifest, SnapshotEntry};
use forkless_aof::{FileSeq, LogPosition};
use forkless_snapshot::Mode;

/// Aux field names a snapshot records its cut in.
pub mod aux {
    /// The segment of the cut.
    pub const CUT_SEGMENT: &[u8] = b"forkless-cut-segment";
    /// The byte offset of the cut in that segment.
    pub const CUT_OFFSET: &[u8] = b"forkless-cut-offset";
    /// The database selected at the cut (`-1`: none).
    pub const CUT_DB: &[u8] = b"forkless-cut-db";
    /// The writer clock's Unix second at the cut.
    pub const CUT_TIME: &[u8] = b"forkless-cut-time";
    /// `converging` or `pit`.
    pub const MODE: &[u8] = b"forkless-snapshot-mode";
}

/// The aux fields that record `cut` and `mode` ([`forkless_aof::auxfields`]).
pub fn cut_aux(cut: &LogPosition, mode: Mode) -> Vec<(Vec<u8>, Vec<u8>)> {
    vec![
        auxfields::field(aux::CUT_SEGMENT, cut.seq),
        auxfields::field(aux::CUT_OFFSET, cut.offset),
        auxfields::field(aux::CUT_DB, cut.db.map_or(-1, i64::from)),
        auxfields::field(aux::CUT_TIME, cut.unix_secs),
        auxfields::field(aux::MODE, mode.name()),
    ]
}

/// The cut and mode recorded in a snapshot's aux fields, if all are there and valid.
pub fn parse_cut_aux(fields: &[(Vec<u8>, Vec<u8>)]) -> Option<(LogPosition, Mode)> {
    let db: i64 = auxfields::get(fields, aux::CUT_DB)?;
    let mode: Mode = auxfields::get::<Mode>(fields, aux::MODE)?;
    Some((
        LogPosition {
            seq: auxfields::get(fields, aux::CUT_SEGMENT)?,
            offset: auxfields::get(fields, aux::CUT_OFFSET)?,
            db: if db < 0 {
                None
            } else {
                Some(u32::try_from(db).ok()?)
            },
            unix_secs: auxfields::get(fields, aux::CUT_TIME)?,
        },
        mode,
    ))
}

/// Options of [`recover`].
#[derive(Debug, Clone, Copy, Default)]
pub struct RecoverOptions {
    /// Recover the state at this Unix second: the newest snapshot cut at or before it, then the
    /// log up to the first `#TS:` annotation later than it.
    pub until_timestamp: Option<i64>,
}

/// Where recovery started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartPoint {
    /// A snapshot.
    Snapshot(SnapshotEntry),
    /// The empty keyspace at segment 1, offset 0.
    Empty,
}

impl StartPoint {
    /// The cut this start point replays from.
    pub fn cut(&self) -> LogPosition {
        match self {
            StartPoint::Snapshot(s) => s.cut,
            StartPoint::Empty => LogPosition::start_of(1, i64::MIN),
        }
    }
    /// For messages.
    pub fn describe(&self) -> String {
        match self {
            StartPoint::Snapshot(s) => format!(
                "{} ({}, cut at segment {} offset {}, db {}, time {})",
                s.name(),
                s.mode.name(),
                s.cut.seq,
                s.cut.offset,
                s.cut.db.map_or("-".into(), |d| d.to_string()),
                s.cut.unix_secs
            ),
            StartPoint::Empty => "the empty keyspace (log from segment 1)".into(),
        }
    }
}

/// What recovery did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Where it started.
    pub start: StartPoint,
    /// Snapshots tried before and refused: (file, why).
    pub rejected: Vec<(String, String)>,
    /// Segments replayed (in part or whole).
    pub segments: Vec<FileSeq>,
    /// Keys read from the snapshot's RDB part.
    pub rdb_keys: u64,
    /// Commands replayed (snapshot deltas and log).
    pub commands: u64,
    /// The torn tail cut off the last segment, if any.
    pub truncated: Option<Truncation>,
    /// Where `until_timestamp` stopped the replay.
    pub stopped_at: Option<TimestampStop>,
    /// The last `#TS:` annotation replayed.
    pub last_timestamp: Option<i64>,
}

/// A [`LoadTarget`] that checks structure and applies nothing.
#[derive(Debug, Default)]
pub struct Discard;

impl LoadTarget for Discard {
    fn entries(
        &mut self,
        _entries: Vec<forkless_rdb::Entry>,
    ) -> std::result::Result<(), TargetError> {
        Ok(())
    }
    fn command(&mut self, _argv: &[Vec<u8>]) -> std::result::Result<bool, TargetError> {
        Ok(true)
    }
}

/// Length and CRC-64/REDIS of a whole file.
pub fn file_crc(path: &Path) -> std::io::Result<(u64, u64)> {
    let mut f = File::open(path)?;
    let mut crc = Crc64::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut len = 0u64;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            return Ok((len, crc.value()));
        }
        crc.update(&buf[..n]);
        len += n as u64;
    }
}

fn aof_err(e: forkless_aof::AofError) -> SegError {
    use forkless_aof::AofError as A;
    match e {
        A::Corrupt { file, offset, what } => SegError::Corrupt { file, offset, what },
        A::Truncated { file, offset } => SegError::Corrupt {
            file,
            offset,
            what: "the segment ends inside a command, and it is not the last one".into(),
        },
        A::Apply {
            file,
            offset,
            source,
        } => SegError::Corrupt {
            file,
            offset,
            what: format!("the command cannot be applied: {source}"),
        },
        other => SegError::Aof(other),
    }
}

/// Check that `m`'s segments are an unbroken chain and that the files from `from` on exist.
pub fn check_chain(dir: &Path, m: &SegManifest, from: FileSeq, needed_by: &str) -> Result<()> {
    for w in m.segments.windows(2) {
        if w[1] != w[0] + 1 {
            return Err(SegError::MissingSegment {
                seq: w[0] + 1,
                needed_by: "the manifest's chain".into(),
            });
        }
    }
    let first = m.segments.first().copied().unwrap_or(1);
    if from < first || from > m.last_segment() {
        return Err(SegError::MissingSegment {
            seq: from,
            needed_by: needed_by.into(),
        });
    }
    for &s in m.segments.iter().filter(|&&s| s >= from) {
        let p = dir.join(segment_name(s));
        std::fs::metadata(&p).map_err(|e| SegError::io(format!("opening {}", p.display()), e))?;
    }
    Ok(())
}

/// A closed segment must have exactly the length (and CRC, when recorded) the manifest
/// recorded when it was closed.
pub fn check_closed(dir: &Path, m: &SegManifest, seq: FileSeq) -> Result<()> {
    let Some(&want) = m.closed_len.get(&seq) else {
        return Ok(());
    };
    let name = segment_name(seq);
    let p = dir.join(&name);
    let have = std::fs::metadata(&p)
        .map_err(|e| SegError::io(format!("reading {}", p.display()), e))?
        .len();
    if have != want {
        return Err(SegError::Corrupt {
            file: name,
            offset: have.min(want),
            what: format!(
                "the closed segment is {have} bytes, the manifest recorded {want} when it was closed \
                 (closed segments are never written again)"
            ),
        });
    }
    if let Some(&want) = m.closed_crc.get(&seq) {
        let (_, have) =
            file_crc(&p).map_err(|e| SegError::io(format!("reading {}", p.display()), e))?;
        if have != want {
            return Err(SegError::Corrupt {
                file: segment_name(seq),
                offset: 0,
                what: format!(
                    "the closed segment's CRC-64 is {have:016x}, the manifest recorded {want:016x} \
                     when it was closed: its bytes changed"
                ),
            });
        }
    }
    Ok(())
}

/// Load snapshot `s` into `target` (verifying length, CRC and cut); Err(why) if unusable.
pub fn load_snapshot(
    dir: &Path,
    s: &SnapshotEntry,
    target: &mut dyn LoadTarget,
    report: &mut LoadReport,
) -> std::result::Result<(), String> {
    let p = dir.join(s.name());
    let (len, crc) = file_crc(&p).map_err(|e| format!("reading it: {e}"))?;
    if len != s.len {
        return Err(format!("its length is {len}, the manifest says {}", s.len));
    }
    if crc != s.crc {
        return Err(format!(
            "its CRC-64 is {crc:016x}, the manifest says {:016x}",
            s.crc
        ));
    }
    let opts = LoadOptions::default();
    load_file_from(&p, &s.name(), 0, false, &opts, target, report).map_err(|e| e.to_string())?;
    match parse_cut_aux(&report.aux) {
        Some((cut, mode)) if cut == s.cut && mode == s.mode => Ok(()),
        Some((cut, mode)) => Err(format!(
            "its aux fields record a {} cut at {cut:?}, the manifest a {} cut at {:?}",
            mode.name(),
            s.mode.name(),
            s.cut
        )),
        None => Err("it has no valid forkless-cut-* aux fields".into()),
    }
}

/// Replay the log from `cut` into `target`, filling the log part of `report`.
pub fn replay_log(
    dir: &Path,
    m: &SegManifest,
    cut: &LogPosition,
    until: Option<i64>,
    target: &mut dyn LoadTarget,
    segments: &mut Vec<FileSeq>,
    report: &mut LoadReport,
) -> Result<()> {
    if let Some(db) = cut.db {
        target
            .command(&[b"SELECT".to_vec(), db.to_string().into_bytes()])
            .map_err(|e| SegError::InvalidInput(e.to_string()))?;
    }
    let last = m.last_segment();
    let opts = LoadOptions {
        until_timestamp: until,
        filename: None,
    };
    for &seq in m.segments.iter().filter(|&&s| s >= cut.seq) {
        let name = segment_name(seq);
        let start = if seq == cut.seq { cut.offset } else { 0 };
        segments.push(seq);
        let go_on = load_file_from(
            &dir.join(&name),
            &name,
            start,
            seq == last,
            &opts,
            target,
            report,
        )
        .map_err(aof_err)?;
        if !go_on {
            break;
        }
        check_closed(dir, m, seq)?;
    }
    Ok(())
}

/// The start points to try, newest first.
pub fn start_points(m: &SegManifest, until: Option<i64>) -> Vec<StartPoint> {
    let mut v: Vec<StartPoint> = m
        .snapshots
        .iter()
        .rev()
        .filter(|s| until.is_none_or(|t| s.cut.unix_secs <= t))
        .cloned()
        .map(StartPoint::Snapshot)
        .collect();
    if m.segments.first() == Some(&1) {
        v.push(StartPoint::Empty);
    }
    v
}

/// Recover `dir` (its manifest `m`) into a new keyspace built from `config`.
pub fn recover(
    dir: &Path,
    m: &SegManifest,
    config: &Config,
    opts: RecoverOptions,
) -> Result<(Keyspace, RecoveryReport)> {
    recover_with(dir, m, opts, &mut || Keyspace::new(config.clone()))
}

/// [`recover`] with a keyspace factory (called once per start point tried).
pub fn recover_with(
    dir: &Path,
    m: &SegManifest,
    opts: RecoverOptions,
    new_keyspace: &mut dyn FnMut() -> Keyspace,
) -> Result<(Keyspace, RecoveryReport)> {
    let points = start_points(m, opts.until_timestamp);
    let mut rejected = Vec::new();
    // The oldest cut any start point needs: the chain must be whole from there.
    for p in &points {
        let cut = p.cut();
        let ks = new_keyspace();
        let mut load = LoadReport::default();
        {
            let mut target = KeyspaceTarget::new(&ks);
            if let StartPoint::Snapshot(s) = p {
                if let Err(e) = check_chain(dir, m, cut.seq, &s.name()) {
                    rejected.push((s.name(), e.to_string()));
                    continue;
                }
                if let Err(why) = load_snapshot(dir, s, &mut target, &mut load) {
                    rejected.push((s.name(), why));
                    continue;
                }
            } else {
                check_chain(dir, m, 1, "recovery from the empty keyspace")?;
            }
            let snapshot_commands = load.commands;
            let rdb_keys = load.rdb_keys;
            let mut log = LoadReport::default();
            let mut segments = Vec::new();
            replay_log(
                dir,
                m,
                &cut,
                opts.until_timestamp,
                &mut target,
                &mut segments,
                &mut log,
            )?;
            drop(target);
            let report = RecoveryReport {
                start: p.clone(),
                rejected,
                segments,
                rdb_keys,
                commands: snapshot_commands + log.commands,
                truncated: log.truncated,
                stopped_at: log.stopped_at,
                last_timestamp: log.last_timestamp,
            };
            return Ok((ks, report));
        }
    }
    let mut why = match opts.until_timestamp {
        Some(t) => format!("no retained snapshot is cut at or before {t}"),
        None => "no snapshot could be loaded".to_string(),
    };
    if m.segments.first() != Some(&1) {
        why.push_str(&format!(
            " and the log no longer starts at segment 1 (first retained: {})",
            m.segments.first().copied().unwrap_or(0)
        ));
    }
    for (f, w) in &rejected {
        why.push_str(&format!("; {f}: {w}"));
    }
    Err(SegError::NoRecoveryPoint(why))
}
