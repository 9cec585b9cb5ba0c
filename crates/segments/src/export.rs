//! `segments export`: a Redis 7 multi-part AOF directory equal to a recovery of the segments.
//!
//! The start point recovery would use (checked the same way, without building a keyspace)
//! becomes the base `appendonly.aof.1.base.rdb`, copied byte for byte (a point-in-time
//! snapshot is a pure RDB; a converging one is an RDB followed by its RESP deltas, which is
//! exactly Redis's RDB-preamble layout); with no snapshot, the base is an empty RDB. The log
//! from the cut (up to `until_timestamp`, torn tail cut) becomes `appendonly.aof.1.incr.aof`,
//! starting with `SELECT` of the cut's database. The manifest is Redis's own format.

use std::io::Write;
use std::path::Path;

use forkless_aof::manifest::{Manifest, DEFAULT_FILENAME};
use forkless_aof::{LoadReport, LoadTarget, TargetError};
use forkless_durable::DurableFile;

use crate::error::{Result, SegError};
use crate::manifest::SegManifest;
use crate::recover::{check_chain, load_snapshot, replay_log, start_points, Discard, StartPoint};

/// What an export wrote.
#[derive(Debug, Clone)]
pub struct ExportReport {
    /// Where it started (the base).
    pub start: StartPoint,
    /// Snapshots refused on the way: (file, why).
    pub rejected: Vec<(String, String)>,
    /// Commands in the incr file.
    pub commands: u64,
    /// Segments read.
    pub segments: Vec<forkless_aof::FileSeq>,
}

/// Re-encodes every command it is given into a file.
struct Recorder {
    out: std::io::BufWriter<DurableFile>,
    buf: Vec<u8>,
    error: Option<std::io::Error>,
}

impl LoadTarget for Recorder {
    fn entries(
        &mut self,
        _entries: Vec<forkless_rdb::Entry>,
    ) -> std::result::Result<(), TargetError> {
        Ok(())
    }
    fn command(&mut self, argv: &[Vec<u8>]) -> std::result::Result<bool, TargetError> {
        self.buf.clear();
        forkless_resp::encode_command_iter(&mut self.buf, argv);
        if let Err(e) = self.out.write_all(&self.buf) {
            let what = e.to_string();
            self.error = Some(e);
            return Err(what.into());
        }
        Ok(true)
    }
}

/// Export the segments directory `dir` as a multi-part AOF directory `out` (which must not
/// hold an AOF manifest yet).
pub fn export(dir: &Path, out: &Path, until_timestamp: Option<i64>) -> Result<ExportReport> {
    let m = SegManifest::load(dir)?;
    let ctx = |what: &str, p: &Path| {
        let c = format!("{what} {}", p.display());
        move |e| SegError::io(c, e)
    };
    std::fs::create_dir_all(out).map_err(ctx("creating", out))?;
    let mname = forkless_aof::manifest::manifest_name(DEFAULT_FILENAME);
    if out.join(&mname).exists() {
        return Err(SegError::InvalidInput(format!(
            "{} already holds an AOF manifest",
            out.display()
        )));
    }
    let mut rejected = Vec::new();
    let mut chosen = None;
    for p in start_points(&m, until_timestamp) {
        match &p {
            StartPoint::Snapshot(s) => {
                if let Err(e) = check_chain(dir, &m, s.cut.seq, &s.name()) {
                    rejected.push((s.name(), e.to_string()));
                    continue;
                }
                let mut r = LoadReport::default();
                if let Err(why) = load_snapshot(dir, s, &mut Discard, &mut r) {
                    rejected.push((s.name(), why));
                    continue;
                }
            }
            StartPoint::Empty => check_chain(dir, &m, 1, "export from the empty keyspace")?,
        }
        chosen = Some(p);
        break;
    }
    let Some(start) = chosen else {
        return Err(SegError::NoRecoveryPoint(format!(
            "no snapshot to export{}",
            rejected
                .iter()
                .map(|(f, w)| format!("; {f}: {w}"))
                .collect::<String>()
        )));
    };
    let base = format!("{DEFAULT_FILENAME}.1.base.rdb");
    let base_path = out.join(&base);
    match &start {
        StartPoint::Snapshot(s) => {
            let src = dir.join(s.name());
            forkless_durable::write_durably(&base_path, |f| -> std::io::Result<()> {
                let mut r = std::fs::File::open(&src)?;
                std::io::copy(&mut r, f)?;
                Ok(())
            })
            .map_err(ctx("copying the snapshot to", &base_path))?;
        }
        StartPoint::Empty => forkless_aof::write_base(&base_path, &[], true)?,
    }
    let incr = format!("{DEFAULT_FILENAME}.1.incr.aof");
    let incr_path = out.join(&incr);
    let mut rec = Recorder {
        out: std::io::BufWriter::with_capacity(
            1 << 20,
            DurableFile::create(&incr_path).map_err(ctx("creating", &incr_path))?,
        ),
        buf: Vec::new(),
        error: None,
    };
    let mut log = LoadReport::default();
    let mut segments = Vec::new();
    let cut = start.cut();
    let r = replay_log(
        dir,
        &m,
        &cut,
        until_timestamp,
        &mut rec,
        &mut segments,
        &mut log,
    );
    if let Some(e) = rec.error.take() {
        return Err(SegError::io(format!("writing {}", incr_path.display()), e));
    }
    r?;
    let f = rec
        .out
        .into_inner()
        .map_err(|e| SegError::io(format!("writing {}", incr_path.display()), e.into_error()))?;
    f.commit().map_err(ctx("writing", &incr_path))?;
    Manifest::first_generation(base, incr).persist(out, DEFAULT_FILENAME)?;
    Ok(ExportReport {
        start,
        rejected,
        commands: log.commands,
        segments,
    })
}
