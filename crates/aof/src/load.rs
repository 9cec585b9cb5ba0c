//! Loading a multi-part AOF directory: base (RDB preamble or RESP), then the incr files in order.
//!
//! The rules are those of Redis 7.0's `loadAppendOnlyFiles` / `loadSingleAppendOnlyFile`
//! (`src/aof.c`), with the differences noted:
//!
//! * Format by content: a file starting with `REDIS` is an RDB (read with
//!   [`forkless_rdb::RdbReader`], which stops right after the checksum) followed by RESP; any other
//!   file is RESP only. An empty file is skipped.
//! * `#` lines are annotations and skipped; `#TS:<secs>` ones are timestamps: with
//!   [`LoadOptions::until_timestamp`] = T, loading stops before the first timestamp later than T
//!   (the point where `redis-check-aof --truncate-to-timestamp T` cuts).
//! * Only the last file may end inside a command: its tail is cut off (aof-load-truncated yes) and
//!   reported in [`LoadReport::truncated`]; in any other file that is an error naming file and offset.
//!   Corrupt bytes are an error anywhere (as Redis's "Bad file format").
//! * `MULTI` ... `EXEC` is applied as a unit; a `MULTI` without `EXEC` at the end of the input is
//!   rolled back, like a truncated command.
//! * Commands that answer with an error are ignored, as Redis's AOF client discards replies; an
//!   unknown command is fatal ([`LoadTarget::command`] says which is which).
//! * Redis truncates the file on disk while loading; [`load_dir`] never modifies files
//!   ([`crate::AofDir::open`] does, before appending, and `check --fix` does).

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use forkless_rdb::{Entry, KeyAccess, RdbReader};

use crate::error::{AofError, FunctionLibraryError, Result, TargetError};
use crate::manifest::Manifest;
use crate::scan::{annotation_timestamp, Item, ScanError, Scanner};

/// Where loaded data goes.
pub trait LoadTarget {
    /// The keys of an RDB base, in file order.
    fn entries(&mut self, entries: Vec<Entry>) -> std::result::Result<(), TargetError>;
    /// The keys of an RDB base with their access metadata (the `IDLE` / `FREQ` opcodes before
    /// each key), `access` parallel to `entries`. By default the metadata is dropped.
    fn entries_with_access(
        &mut self,
        entries: Vec<Entry>,
        access: Vec<KeyAccess>,
    ) -> std::result::Result<(), TargetError> {
        let _ = access;
        self.entries(entries)
    }
    /// Apply one command. `Ok(true)`: applied; `Ok(false)`: it answered with an error (ignored,
    /// as Redis does); `Err`: it cannot be executed at all (unknown command), loading fails.
    fn command(&mut self, argv: &[Vec<u8>]) -> std::result::Result<bool, TargetError>;
    /// A function library of an RDB base (RDB_OPCODE_FUNCTION2). Default: ignored.
    fn function(&mut self, code: &[u8]) -> std::result::Result<(), TargetError> {
        let _ = code;
        Ok(())
    }
}

/// Options of [`load_dir`].
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// Stop before the first `#TS:` annotation later than this Unix time (seconds).
    pub until_timestamp: Option<i64>,
    /// `appendfilename` (the manifest is `<filename>.manifest`); default `appendonly.aof`.
    pub filename: Option<String>,
}

/// Where the valid data of a truncated last file ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Truncation {
    /// The file's name.
    pub file: String,
    /// Length of the valid prefix (the file should be cut to this).
    pub valid_len: u64,
    /// The file's length.
    pub file_len: u64,
    /// True when the cut drops an unfinished `MULTI` block.
    pub multi_rolled_back: bool,
}

/// Where loading stopped because of [`LoadOptions::until_timestamp`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimestampStop {
    /// The file holding the first later annotation.
    pub file: String,
    /// Offset of that annotation.
    pub offset: u64,
    /// Its timestamp.
    pub timestamp: i64,
}

/// What loading found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadReport {
    /// Files loaded, in order.
    pub files: Vec<String>,
    /// Keys read from RDB bases.
    pub rdb_keys: u64,
    /// Commands applied (SELECT, MULTI and EXEC not counted).
    pub commands: u64,
    /// Commands that answered with an error (ignored).
    pub command_errors: u64,
    /// Keys of an RDB base whose type has no model here (streams, modules): (db, key, kind).
    pub skipped_keys: Vec<(u32, Vec<u8>, String)>,
    /// The last file's cut-off tail, if any.
    pub truncated: Option<Truncation>,
    /// Where `until_timestamp` stopped loading, if it did.
    pub stopped_at: Option<TimestampStop>,
    /// The last `#TS:` timestamp applied.
    pub last_timestamp: Option<i64>,
    /// Offset just past the last complete command of the last file loaded (where appending may
    /// continue).
    pub last_valid_len: u64,
    /// Aux fields of the RDB parts read, in file order.
    pub aux: Vec<(Vec<u8>, Vec<u8>)>,
}

impl LoadReport {
    /// The AOF position the loaded base covers, from its `forkless-aof-*` aux fields (see
    /// [`crate::history::BaseCut`]); `None` for a RESP base or one written without them.
    pub fn base_cut(&self) -> Option<crate::history::BaseCut> {
        crate::history::BaseCut::from_aux(&self.aux)
    }
}

/// Load every file of the AOF directory `dir` into `target`.
pub fn load_dir(dir: &Path, opts: &LoadOptions, target: &mut dyn LoadTarget) -> Result<LoadReport> {
    let filename = opts
        .filename
        .as_deref()
        .unwrap_or(crate::manifest::DEFAULT_FILENAME);
    let manifest = Manifest::load(dir, filename)?;
    load_manifest(dir, &manifest, opts, target)
}

/// Load the files `manifest` lists (in `dir`) into `target`.
pub fn load_manifest(
    dir: &Path,
    manifest: &Manifest,
    opts: &LoadOptions,
    target: &mut dyn LoadTarget,
) -> Result<LoadReport> {
    let files = manifest.load_order();
    let mut report = LoadReport::default();
    // Files missing on disk are fatal before anything is loaded (getBaseAndIncrAppendOnlyFilesSize).
    for f in &files {
        let p = dir.join(&f.name);
        std::fs::metadata(&p).map_err(|e| AofError::io(format!("opening {}", p.display()), e))?;
    }
    for (i, f) in files.iter().enumerate() {
        let last = i + 1 == files.len();
        let path = dir.join(&f.name);
        report.files.push(f.name.clone());
        if !load_file_from(&path, &f.name, 0, last, opts, target, &mut report)? {
            break;
        }
    }
    Ok(report)
}

/// A reader that counts the bytes taken from it (so the RESP part knows its offset).
struct Counting<R> {
    inner: R,
    n: u64,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let k = self.inner.read(buf)?;
        self.n += k as u64;
        Ok(k)
    }
}

impl<R: BufRead> BufRead for Counting<R> {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        self.inner.fill_buf()
    }
    fn consume(&mut self, amt: usize) {
        self.n += amt as u64;
        self.inner.consume(amt);
    }
}

/// Read the RDB part of a base into `target`; returns the reader positioned after the checksum.
fn load_rdb<R: BufRead>(
    r: Counting<R>,
    name: &str,
    target: &mut dyn LoadTarget,
    report: &mut LoadReport,
) -> Result<Counting<R>> {
    let rdb_err = |e: forkless_rdb::RdbError| AofError::Rdb {
        file: name.to_string(),
        what: e.to_string(),
    };
    let mut rd = RdbReader::new(r).map_err(rdb_err)?;
    let mut entries = Vec::new();
    let mut access = Vec::new();
    while let Some(item) = rd.next_item().map_err(rdb_err)? {
        match item {
            forkless_rdb::Item::Entry(e) => {
                entries.push(e);
                access.push(rd.last_access());
            }
            forkless_rdb::Item::Skipped { db, key, kind, .. } => {
                report.skipped_keys.push((db, key, kind.to_string()))
            }
            forkless_rdb::Item::Aux { key, value } => report.aux.push((key, value)),
            forkless_rdb::Item::Function { code } => {
                target.function(&code).map_err(|e| AofError::Apply {
                    file: name.to_string(),
                    offset: 0,
                    source: Box::new(FunctionLibraryError(e)),
                })?
            }
            _ => {}
        }
    }
    report.rdb_keys += entries.len() as u64;
    if access.iter().all(KeyAccess::is_empty) {
        access = Vec::new();
    }
    target
        .entries_with_access(entries, access)
        .map_err(|source| AofError::Apply {
            file: name.to_string(),
            offset: 0,
            source,
        })?;
    Ok(rd.into_inner())
}

fn is_cmd(argv: &[Vec<u8>], name: &[u8]) -> bool {
    argv.first().is_some_and(|a| a.eq_ignore_ascii_case(name))
}

/// Load one file from byte `start` (0: the whole file, an RDB part first if it starts with
/// `REDIS`; otherwise RESP from that offset, which must be a command boundary). `last`: a
/// truncated tail is cut and reported instead of failing. Returns false when loading must stop
/// here (the timestamp of [`LoadOptions::until_timestamp`] was reached).
pub fn load_file_from(
    path: &Path,
    name: &str,
    start: u64,
    last: bool,
    opts: &LoadOptions,
    target: &mut dyn LoadTarget,
    report: &mut LoadReport,
) -> Result<bool> {
    let io_err = |e| AofError::io(format!("reading {}", path.display()), e);
    let file = File::open(path).map_err(io_err)?;
    let len = file.metadata().map_err(io_err)?.len();
    report.last_valid_len = start;
    if start > len {
        return Err(AofError::Corrupt {
            file: name.to_string(),
            offset: len,
            what: format!("the file ends before offset {start} where loading should start"),
        });
    }
    if len == start {
        return Ok(true);
    }
    let mut file = file;
    if start > 0 {
        use std::io::{Seek, SeekFrom};
        file.seek(SeekFrom::Start(start)).map_err(io_err)?;
    }
    let mut r = Counting {
        inner: BufReader::with_capacity(64 * 1024, file),
        n: start,
    };
    if start == 0 && r.fill_buf().map_err(io_err)?.starts_with(b"REDIS") {
        r = load_rdb(r, name, target, report)?;
    }
    let start = r.n;
    report.last_valid_len = start;
    let mut sc = Scanner::new(r, start, len);
    let mut multi: Option<(u64, Vec<Vec<Vec<u8>>>)> = None;
    let corrupt = |offset, what| AofError::Corrupt {
        file: name.to_string(),
        offset,
        what,
    };
    let truncated_at = |report: &mut LoadReport, valid: u64, rolled: bool| -> Result<bool> {
        if !last {
            return Err(AofError::Truncated {
                file: name.to_string(),
                offset: valid,
            });
        }
        report.truncated = Some(Truncation {
            file: name.to_string(),
            valid_len: valid,
            file_len: len,
            multi_rolled_back: rolled,
        });
        report.last_valid_len = valid;
        Ok(true)
    };
    loop {
        match sc.next_item() {
            Ok(None) => {
                if let Some((m, _)) = multi {
                    return truncated_at(report, m, true);
                }
                return Ok(true);
            }
            Ok(Some((at, Item::Annotation(text), end))) => {
                if let Some(ts) = annotation_timestamp(&text) {
                    if opts.until_timestamp.is_some_and(|t| ts > t) {
                        report.stopped_at = Some(TimestampStop {
                            file: name.to_string(),
                            offset: at,
                            timestamp: ts,
                        });
                        return Ok(false);
                    }
                    report.last_timestamp = Some(ts);
                }
                if multi.is_none() {
                    report.last_valid_len = end;
                }
            }
            Ok(Some((at, Item::Command(argv), end))) => {
                let apply = |argv: &[Vec<u8>],
                             report: &mut LoadReport,
                             target: &mut dyn LoadTarget|
                 -> Result<()> {
                    match target.command(argv) {
                        Ok(true) => {}
                        Ok(false) => report.command_errors += 1,
                        Err(source) => {
                            return Err(AofError::Apply {
                                file: name.to_string(),
                                offset: at,
                                source,
                            })
                        }
                    }
                    if !is_cmd(argv, b"SELECT") {
                        report.commands += 1;
                    }
                    Ok(())
                };
                if is_cmd(&argv, b"MULTI") {
                    if multi.is_some() {
                        return Err(corrupt(at, "MULTI inside MULTI".into()));
                    }
                    multi = Some((at, Vec::new()));
                } else if is_cmd(&argv, b"EXEC") {
                    let Some((_, queued)) = multi.take() else {
                        return Err(corrupt(at, "EXEC without MULTI".into()));
                    };
                    for q in &queued {
                        apply(q, report, target)?;
                    }
                    report.last_valid_len = end;
                } else if let Some((_, queued)) = multi.as_mut() {
                    queued.push(argv);
                } else {
                    apply(&argv, report, target)?;
                    report.last_valid_len = end;
                }
            }
            Err(ScanError::Incomplete { offset }) => {
                let (valid, rolled) = match &multi {
                    Some((m, _)) => (*m, true),
                    None => (offset, false),
                };
                return truncated_at(report, valid, rolled);
            }
            Err(ScanError::Corrupt { offset, what }) => return Err(corrupt(offset, what)),
            Err(ScanError::Io(e)) => return Err(io_err(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::{AofFile, FileType};
    use forkless_testkit::TempDir;

    /// Records what it is given; `BAD` is an unknown command, `ERRCMD` answers an error.
    #[derive(Default)]
    struct Rec(Vec<String>);

    impl LoadTarget for Rec {
        fn entries(&mut self, entries: Vec<Entry>) -> std::result::Result<(), TargetError> {
            self.0.extend(
                entries
                    .iter()
                    .map(|e| format!("key {}", String::from_utf8_lossy(&e.key))),
            );
            Ok(())
        }
        fn command(&mut self, argv: &[Vec<u8>]) -> std::result::Result<bool, TargetError> {
            match argv[0].as_slice() {
                b"BAD" => Err("ERR unknown command 'BAD'".into()),
                b"ERRCMD" => Ok(false),
                _ => {
                    let words: Vec<String> = argv
                        .iter()
                        .map(|a| String::from_utf8_lossy(a).into_owned())
                        .collect();
                    self.0.push(words.join(" "));
                    Ok(true)
                }
            }
        }
    }

    fn cmd(words: &str) -> Vec<u8> {
        let mut out = Vec::new();
        forkless_resp::encode_command_iter(&mut out, words.split(' ').collect::<Vec<_>>());
        out
    }

    /// A directory with incr files holding `files` (no base).
    fn dir_with(files: &[Vec<u8>]) -> (TempDir, Manifest) {
        let tmp = TempDir::new("aof-load");
        let mut m = Manifest::default();
        for (i, bytes) in files.iter().enumerate() {
            let name = format!("appendonly.aof.{}.incr.aof", i + 1);
            std::fs::write(tmp.path().join(&name), bytes).unwrap();
            m.incr.push(AofFile {
                name,
                seq: i as i64 + 1,
                kind: FileType::Incr,
            });
        }
        (tmp, m)
    }

    fn run(files: &[Vec<u8>], opts: &LoadOptions) -> (Result<LoadReport>, Vec<String>) {
        let (tmp, m) = dir_with(files);
        let mut rec = Rec::default();
        let r = load_manifest(tmp.path(), &m, opts, &mut rec);
        (r, rec.0)
    }

    #[test]
    fn multi_is_applied_as_a_unit_and_rolled_back_at_the_end() {
        let f = [
            cmd("SET a 1"),
            cmd("MULTI"),
            cmd("SET b 2"),
            cmd("EXEC"),
            cmd("MULTI"),
            cmd("SET c 3"),
        ]
        .concat();
        let (r, got) = run(std::slice::from_ref(&f), &LoadOptions::default());
        let r = r.unwrap();
        assert_eq!(got, ["SET a 1", "SET b 2"]);
        let t = r.truncated.unwrap();
        assert!(t.multi_rolled_back);
        let keep = [cmd("SET a 1"), cmd("MULTI"), cmd("SET b 2"), cmd("EXEC")]
            .concat()
            .len() as u64;
        assert_eq!((t.valid_len, r.last_valid_len), (keep, keep));
        // The same in a file that is not the last one is an error naming it.
        let (r, _) = run(&[f, cmd("SET z 1")], &LoadOptions::default());
        match r.unwrap_err() {
            AofError::Truncated { file, offset } => {
                assert_eq!((file.as_str(), offset), ("appendonly.aof.1.incr.aof", keep));
            }
            e => panic!("{e}"),
        }
    }

    #[test]
    fn bad_transactions_unknown_commands_and_error_replies() {
        let (r, _) = run(&[[cmd("EXEC")].concat()], &LoadOptions::default());
        assert!(matches!(
            r.unwrap_err(),
            AofError::Corrupt { offset: 0, .. }
        ));
        let (r, _) = run(
            &[[cmd("MULTI"), cmd("MULTI")].concat()],
            &LoadOptions::default(),
        );
        assert!(matches!(
            r.unwrap_err(),
            AofError::Corrupt { offset: 15, .. }
        ));
        let (r, _) = run(
            &[[cmd("SET a 1"), cmd("BAD x")].concat()],
            &LoadOptions::default(),
        );
        let e = r.unwrap_err().to_string();
        assert!(
            e.contains("appendonly.aof.1.incr.aof at offset 27") && e.contains("unknown command"),
            "{e}"
        );
        let (r, got) = run(
            &[[cmd("ERRCMD x"), cmd("SET a 1")].concat()],
            &LoadOptions::default(),
        );
        assert_eq!(r.unwrap().command_errors, 1);
        assert_eq!(got, ["SET a 1"]);
    }

    #[test]
    fn until_timestamp_stops_before_the_first_later_annotation() {
        let f1 = [
            b"#TS:100\r\n".to_vec(),
            cmd("SET a 1"),
            b"#TS:105\r\n".to_vec(),
            cmd("SET b 1"),
        ]
        .concat();
        let f2 = [
            b"#TS:110\r\n".to_vec(),
            cmd("SET c 1"),
            b"#other note\r\n".to_vec(),
            cmd("SET d 1"),
        ]
        .concat();
        let files = [f1, f2];
        let at = |t: Option<i64>| {
            let (r, got) = run(
                &files,
                &LoadOptions {
                    until_timestamp: t,
                    ..LoadOptions::default()
                },
            );
            (r.unwrap(), got)
        };
        assert_eq!(at(None).1.len(), 4);
        assert_eq!(at(Some(99)).1.len(), 0);
        assert_eq!(at(Some(100)).1, ["SET a 1"]);
        let (r, got) = at(Some(107));
        assert_eq!(got, ["SET a 1", "SET b 1"]);
        let stop = r.stopped_at.unwrap();
        assert_eq!(
            (stop.file.as_str(), stop.offset, stop.timestamp),
            ("appendonly.aof.2.incr.aof", 0, 110)
        );
        assert_eq!(r.last_timestamp, Some(105));
        assert_eq!(at(Some(110)).1.len(), 4);
    }

    #[test]
    fn missing_files_and_empty_files() {
        let (tmp, mut m) = dir_with(&[Vec::new(), cmd("SET a 1")]);
        let r =
            load_manifest(tmp.path(), &m, &LoadOptions::default(), &mut Rec::default()).unwrap();
        assert_eq!(r.commands, 1);
        m.incr.push(AofFile {
            name: "gone.aof".into(),
            seq: 9,
            kind: FileType::Incr,
        });
        let e = load_manifest(tmp.path(), &m, &LoadOptions::default(), &mut Rec::default())
            .unwrap_err();
        assert!(e.to_string().contains("gone.aof"), "{e}");
    }
}
