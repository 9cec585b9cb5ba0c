//! Checking (and repairing) a multi-part AOF directory, like Redis 7.0's `redis-check-aof`
//! (`src/redis-check-aof.c`, `checkMultiPartAof` / `checkSingleAof`).
//!
//! Every file the manifest lists must exist. Each file is read: an RDB part (when it starts with
//! `REDIS`) must be a complete, checksummed RDB; then RESP commands and `#` annotations, with
//! `MULTI`/`EXEC` balanced. The valid prefix of a file ends after its last complete command
//! outside `MULTI` (`ok_up_to`). A file with bytes past that is invalid; `fix` cuts the last file
//! back to `ok_up_to` (durably: `set_len` then fsync), as `redis-check-aof --fix` does; a damaged
//! file that is not the last is an error even with `fix`.
//!
//! `truncate_to_timestamp` = T cuts the last file before its first `#TS:` annotation later than
//! T (an error when that annotation is in an earlier file, or at offset 0 of the file, as Redis).
//!
//! History generations (`history/gen-<b>/`, see [`crate::history`]) are listed in
//! [`CheckReport::history`]: each valid one has its files checked the same way (never repaired);
//! an incomplete, invalid or stale one is reported and never fails the check of the live AOF.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader};
use std::path::Path;

use forkless_rdb::RdbReader;

use crate::error::{AofError, Result};
use crate::history::{list_generations, read_base_cut, BaseCut, GenerationStatus};
use crate::manifest::{Manifest, DEFAULT_FILENAME};
use crate::scan::{annotation_timestamp, Item, ScanError, Scanner};

/// Options of [`check_dir`].
#[derive(Debug, Clone, Default)]
pub struct CheckOptions {
    /// Cut an invalid tail off the last file.
    pub fix: bool,
    /// Cut the last file before its first timestamp later than this.
    pub truncate_to_timestamp: Option<i64>,
    /// `appendfilename` (default `appendonly.aof`).
    pub filename: Option<String>,
}

/// The verdict on one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileStatus {
    /// Valid to the end.
    Valid,
    /// Empty.
    Empty,
    /// Cut back to `ok_up_to` (by `fix`).
    Truncated,
    /// Cut before a later timestamp (by `truncate_to_timestamp`).
    TimestampTruncated,
}

/// What was found in one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileCheck {
    /// The file's name.
    pub name: String,
    /// Its size before any repair.
    pub size: u64,
    /// End of its valid prefix.
    pub ok_up_to: u64,
    /// Commands in the valid prefix.
    pub commands: u64,
    /// The verdict.
    pub status: FileStatus,
    /// Why the tail is invalid, when it is.
    pub problem: Option<String>,
}

/// What [`check_dir`] found about one history generation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenerationCheck {
    /// Its directory name under `history/`.
    pub name: String,
    /// The base sequence number in its name.
    pub base_seq: i64,
    /// Valid, incomplete, invalid (a file fails the check) or stale.
    pub status: GenerationStatus,
    /// The cut its base records.
    pub cut: Option<BaseCut>,
    /// Its files, when it was checked.
    pub files: Vec<FileCheck>,
}

/// What [`check_dir`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckReport {
    /// One entry per file, in load order.
    pub files: Vec<FileCheck>,
    /// The cut the live base records (`forkless-aof-*` aux fields), if any.
    pub base_cut: Option<BaseCut>,
    /// History generations, oldest first.
    pub history: Vec<GenerationCheck>,
}

/// Scan one file: (commands, ok_up_to, problem, timestamp cut offset).
fn scan_file(
    path: &Path,
    name: &str,
    size: u64,
    until: Option<i64>,
    aux: &mut Vec<(Vec<u8>, Vec<u8>)>,
) -> Result<(u64, u64, Option<String>, Option<u64>)> {
    let io_err = |e| AofError::io(format!("reading {}", path.display()), e);
    let f = File::open(path).map_err(io_err)?;
    let mut r = BufReader::with_capacity(64 * 1024, f);
    let mut start = 0u64;
    if r.fill_buf().map_err(io_err)?.starts_with(b"REDIS") {
        let mut rd = RdbReader::new(r).map_err(|e| AofError::Rdb {
            file: name.to_string(),
            what: e.to_string(),
        })?;
        while let Some(item) = rd.next_item().map_err(|e| AofError::Rdb {
            file: name.to_string(),
            what: e.to_string(),
        })? {
            if let forkless_rdb::Item::Aux { key, value } = item {
                aux.push((key, value));
            }
        }
        start = rd.offset();
        r = rd.into_inner();
    }
    let mut sc = Scanner::new(r, start, size);
    let (mut commands, mut in_multi_cmds) = (0u64, 0u64);
    let mut ok = start;
    let mut multi = false;
    loop {
        match sc.next_item() {
            Ok(None) => {
                let problem =
                    multi.then(|| "Reached EOF before reading EXEC for MULTI".to_string());
                return Ok((commands, ok, problem, None));
            }
            Ok(Some((at, Item::Annotation(text), end))) => {
                if let (Some(ts), Some(t)) = (annotation_timestamp(&text), until) {
                    if ts > t {
                        return Ok((commands, ok, None, Some(at)));
                    }
                }
                if !multi {
                    ok = end;
                }
            }
            Ok(Some((at, Item::Command(argv), end))) => {
                let name0 = argv[0].to_ascii_lowercase();
                if name0 == b"multi" {
                    if multi {
                        return Ok((
                            commands,
                            ok,
                            Some(format!("offset {at}: Unexpected MULTI")),
                            None,
                        ));
                    }
                    multi = true;
                    in_multi_cmds = 0;
                } else if name0 == b"exec" {
                    if !multi {
                        return Ok((
                            commands,
                            ok,
                            Some(format!("offset {at}: Unexpected EXEC")),
                            None,
                        ));
                    }
                    multi = false;
                    commands += in_multi_cmds;
                    ok = end;
                } else if multi {
                    in_multi_cmds += 1;
                } else {
                    commands += 1;
                    ok = end;
                }
            }
            Err(ScanError::Incomplete { offset }) => {
                return Ok((
                    commands,
                    ok,
                    Some(format!("offset {offset}: the file ends inside a command")),
                    None,
                ))
            }
            Err(ScanError::Corrupt { offset, what }) => {
                return Ok((commands, ok, Some(format!("offset {offset}: {what}")), None))
            }
            Err(ScanError::Io(e)) => return Err(io_err(e)),
        }
    }
}

/// Cut `path` to `len` bytes durably.
fn truncate_durably(path: &Path, len: u64) -> Result<()> {
    let ctx = |what: &str| format!("{what} {}", path.display());
    let f = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|e| AofError::io(ctx("opening"), e))?;
    f.set_len(len)
        .map_err(|e| AofError::io(ctx("truncating"), e))?;
    f.sync_all().map_err(|e| AofError::io(ctx("fsyncing"), e))
}

/// Check (and with `fix` / `truncate_to_timestamp`, repair) the AOF directory `dir`.
pub fn check_dir(dir: &Path, opts: &CheckOptions) -> Result<CheckReport> {
    let filename = opts.filename.as_deref().unwrap_or(DEFAULT_FILENAME);
    let manifest = Manifest::load(dir, filename)?;
    let mut aux = Vec::new();
    let files = check_files(dir, &manifest, opts, &mut aux)?;
    let mut report = CheckReport {
        files,
        base_cut: BaseCut::from_aux(&aux),
        history: Vec::new(),
    };
    let live = manifest.base.as_ref().map(|b| b.seq);
    for g in list_generations(dir, filename, live)? {
        let mut gc = GenerationCheck {
            name: g.name,
            base_seq: g.base_seq,
            status: g.status,
            cut: None,
            files: Vec::new(),
        };
        if let (GenerationStatus::Valid | GenerationStatus::Stale, Some(m)) =
            (&gc.status, &g.manifest)
        {
            let plain = CheckOptions {
                filename: opts.filename.clone(),
                ..CheckOptions::default()
            };
            let mut gaux = Vec::new();
            match check_files(&g.path, m, &plain, &mut gaux) {
                Ok(files) => {
                    gc.files = files;
                    gc.cut = BaseCut::from_aux(&gaux);
                }
                Err(e) => {
                    gc.status = GenerationStatus::Invalid(e.to_string());
                    gc.cut = read_base_cut(&g.path, m).ok().flatten();
                }
            }
        }
        report.history.push(gc);
    }
    Ok(report)
}

/// Check (and repair, per `opts`) the files `manifest` lists in `dir`; the base's aux fields go
/// to `aux`.
fn check_files(
    dir: &Path,
    manifest: &Manifest,
    opts: &CheckOptions,
    aux: &mut Vec<(Vec<u8>, Vec<u8>)>,
) -> Result<Vec<FileCheck>> {
    let files = manifest.load_order();
    let mut report = CheckReport {
        files: Vec::new(),
        base_cut: None,
        history: Vec::new(),
    };
    for f in &files {
        let p = dir.join(&f.name);
        std::fs::metadata(&p).map_err(|e| AofError::io(format!("opening {}", p.display()), e))?;
    }
    for (i, f) in files.iter().enumerate() {
        let last = i + 1 == files.len();
        let path = dir.join(&f.name);
        let size = std::fs::metadata(&path)
            .map_err(|e| AofError::io(format!("reading {}", path.display()), e))?
            .len();
        if size == 0 {
            report.files.push(FileCheck {
                name: f.name.clone(),
                size,
                ok_up_to: 0,
                commands: 0,
                status: FileStatus::Empty,
                problem: None,
            });
            continue;
        }
        let (commands, ok_up_to, problem, ts_cut) =
            scan_file(&path, &f.name, size, opts.truncate_to_timestamp, aux)?;
        let mut fc = FileCheck {
            name: f.name.clone(),
            size,
            ok_up_to,
            commands,
            status: FileStatus::Valid,
            problem,
        };
        if let Some(at) = ts_cut {
            let t = opts.truncate_to_timestamp.unwrap_or_default();
            if at == 0 {
                return Err(AofError::InvalidInput(format!(
                    "AOF {} has nothing before timestamp {t}",
                    f.name
                )));
            }
            if !last {
                return Err(AofError::InvalidInput(format!(
                    "cannot truncate AOF {} to timestamp {t} at offset {at}: it is not the last file",
                    f.name
                )));
            }
            truncate_durably(&path, at)?;
            fc.ok_up_to = at;
            fc.status = FileStatus::TimestampTruncated;
            report.files.push(fc);
            break;
        }
        if let Some(problem) = fc.problem.clone() {
            if !opts.fix {
                return Err(AofError::Corrupt {
                    file: f.name.clone(),
                    offset: ok_up_to,
                    what: format!("{problem}; valid up to offset {ok_up_to} of {size} (use --fix to cut the tail)"),
                });
            }
            if !last {
                return Err(AofError::Truncated {
                    file: f.name.clone(),
                    offset: ok_up_to,
                });
            }
            truncate_durably(&path, ok_up_to)?;
            fc.status = FileStatus::Truncated;
        }
        report.files.push(fc);
    }
    Ok(report.files)
}
