//! The Redis 7.0 multi-part AOF manifest: which files make up the AOF, in which order.
//!
//! Format (Redis 7.0 `src/aof.c`, `aofInfoFormat` / `aofLoadManifestFromFile`), one line per file,
//! `\n`-terminated, base first, then history, then incr files by increasing sequence:
//!
//! ```text
//! file appendonly.aof.2.base.rdb seq 2 type b\n
//! file appendonly.aof.1.incr.aof seq 1 type h\n
//! file appendonly.aof.2.incr.aof seq 2 type i\n
//! ```
//!
//! Parsing follows `aofLoadManifestFromFile` exactly: lines of at most 1024 bytes that must end in
//! `\n`; lines starting with `#` are comments; an empty (after trimming) line is an error; words are
//! split by `sdssplitargs` (quoted names, see [`forkless_resp::sds`]); at least 6 words, an even count; keys
//! `file`/`seq`/`type` are case-insensitive and unknown keys are ignored (forward compatibility);
//! `seq` is read with `atoll` (and must not be 0), `type` by its first byte; a name must not hold a
//! `/`; at most one base; incr sequences strictly increase. An empty file is an error. Errors name the
//! 1-based line.
//!
//! Updates are atomic like `writeAofManifestFile`: write `temp-<name>.manifest`, fsync it, rename
//! it over the manifest, fsync the directory.

use std::fs;
use std::path::Path;

use crate::error::{AofError, Result};
use crate::position::FileSeq;
use forkless_resp::sds;

/// Longest manifest line Redis reads (`MANIFEST_MAX_LINE`), terminator excluded.
pub const MANIFEST_MAX_LINE: usize = 1024;
/// Default `appendfilename`.
pub const DEFAULT_FILENAME: &str = "appendonly.aof";
/// Default `appenddirname`.
pub const DEFAULT_DIRNAME: &str = "appendonlydir";

/// The kind of a file in the manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileType {
    /// `b`: the base (a snapshot, RDB or RESP).
    Base,
    /// `h`: history, a base or incr superseded by a rewrite, to be deleted.
    History,
    /// `i`: incremental commands after the base.
    Incr,
}

impl FileType {
    /// The manifest letter.
    pub fn letter(self) -> char {
        match self {
            FileType::Base => 'b',
            FileType::History => 'h',
            FileType::Incr => 'i',
        }
    }
}

/// One line of the manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AofFile {
    /// File name inside the AOF directory (never a path).
    pub name: String,
    /// Sequence number.
    pub seq: FileSeq,
    /// Kind.
    pub kind: FileType,
}

/// The parsed manifest.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Manifest {
    /// The base file, if any.
    pub base: Option<AofFile>,
    /// History files, to be deleted.
    pub history: Vec<AofFile>,
    /// Incr files in load order.
    pub incr: Vec<AofFile>,
}

/// C's `atoll`: optional blanks, optional sign, digits; stops at the first other byte; 0 if none.
fn atoll(s: &[u8]) -> i64 {
    let mut i = 0;
    while i < s.len() && matches!(s[i], b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r') {
        i += 1;
    }
    let neg = match s.get(i) {
        Some(b'-') => {
            i += 1;
            true
        }
        Some(b'+') => {
            i += 1;
            false
        }
        _ => false,
    };
    let mut v: i64 = 0;
    while let Some(d @ b'0'..=b'9') = s.get(i) {
        // Saturate instead of C's undefined overflow.
        v = v.saturating_mul(10).saturating_add(i64::from(d - b'0'));
        i += 1;
    }
    if neg {
        -v
    } else {
        v
    }
}

fn trim(line: &[u8]) -> &[u8] {
    let blank = |c: &u8| matches!(c, b' ' | b'\t' | b'\r' | b'\n');
    let start = line.iter().position(|c| !blank(c)).unwrap_or(line.len());
    let end = line
        .iter()
        .rposition(|c| !blank(c))
        .map_or(start, |e| e + 1);
    &line[start..end.max(start)]
}

impl Manifest {
    /// Parse manifest bytes (see the module doc for the rules).
    pub fn parse(bytes: &[u8]) -> Result<Manifest> {
        let err = |line: usize, what: &str| AofError::Manifest {
            line,
            what: what.to_string(),
        };
        if bytes.is_empty() {
            return Err(err(0, "Found an empty AOF manifest"));
        }
        let mut m = Manifest::default();
        let mut maxseq: FileSeq = 0;
        let mut pos = 0usize;
        let mut linenum = 0usize;
        while pos < bytes.len() {
            // fgets with a MANIFEST_MAX_LINE+1 buffer: at most 1024 bytes per read, up to '\n'.
            let rest = &bytes[pos..];
            let take = rest.len().min(MANIFEST_MAX_LINE);
            let chunk = &rest[..take];
            let line = match chunk.iter().position(|&c| c == b'\n') {
                Some(n) => &chunk[..=n],
                None => chunk,
            };
            pos += line.len();
            linenum += 1;
            if line[0] == b'#' {
                continue;
            }
            if !line.ends_with(b"\n") {
                return Err(err(linenum, "The AOF manifest file contains too long line"));
            }
            let t = trim(line);
            if t.is_empty() {
                return Err(err(linenum, "Invalid AOF manifest file format"));
            }
            let argv = match sds::split_args(t) {
                Some(a) if a.len() >= 6 && a.len() % 2 == 0 => a,
                _ => return Err(err(linenum, "Invalid AOF manifest file format")),
            };
            let (mut name, mut seq, mut kind): (Option<Vec<u8>>, FileSeq, u8) = (None, 0, 0);
            for kv in argv.chunks_exact(2) {
                let key = kv[0].to_ascii_lowercase();
                match key.as_slice() {
                    b"file" => {
                        // sdsnew: a C string, cut at the first NUL.
                        let v = kv[1].split(|&c| c == 0).next().unwrap_or_default().to_vec();
                        if v.contains(&b'/') {
                            return Err(err(linenum, "File can't be a path, just a filename"));
                        }
                        name = Some(v);
                    }
                    b"seq" => seq = atoll(&kv[1]),
                    b"type" => kind = kv[1].first().copied().unwrap_or(0),
                    _ => {} // unknown keys are ignored
                }
            }
            let name = match name {
                Some(n) if !n.is_empty() && seq != 0 && kind != 0 => n,
                _ => return Err(err(linenum, "Invalid AOF manifest file format")),
            };
            let name = String::from_utf8(name).map_err(|_| {
                err(
                    linenum,
                    "file name is not valid UTF-8 (not supported by forkless)",
                )
            })?;
            match kind {
                b'b' => {
                    if m.base.is_some() {
                        return Err(err(linenum, "Found duplicate base file information"));
                    }
                    m.base = Some(AofFile {
                        name,
                        seq,
                        kind: FileType::Base,
                    });
                }
                b'h' => m.history.push(AofFile {
                    name,
                    seq,
                    kind: FileType::History,
                }),
                b'i' => {
                    if seq <= maxseq {
                        return Err(err(linenum, "Found a non-monotonic sequence number"));
                    }
                    maxseq = seq;
                    m.incr.push(AofFile {
                        name,
                        seq,
                        kind: FileType::Incr,
                    });
                }
                _ => return Err(err(linenum, "Unknown AOF file type")),
            }
        }
        Ok(m)
    }

    /// Read and parse `<dir>/<filename>.manifest`.
    pub fn load(dir: &Path, filename: &str) -> Result<Manifest> {
        let path = dir.join(manifest_name(filename));
        let bytes =
            fs::read(&path).map_err(|e| AofError::io(format!("reading {}", path.display()), e))?;
        Manifest::parse(&bytes)
    }

    /// The manifest text, as `getAofManifestAsString` writes it: base, history, incr.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let all = self
            .base
            .iter()
            .chain(self.history.iter())
            .chain(self.incr.iter());
        for f in all {
            out.extend_from_slice(b"file ");
            if sds::needs_repr(f.name.as_bytes()) {
                out.extend_from_slice(&sds::repr(f.name.as_bytes()));
            } else {
                out.extend_from_slice(f.name.as_bytes());
            }
            out.extend_from_slice(format!(" seq {} type {}\n", f.seq, f.kind.letter()).as_bytes());
        }
        out
    }

    /// Base then incr files: the files to load, in order.
    pub fn load_order(&self) -> Vec<&AofFile> {
        self.base.iter().chain(self.incr.iter()).collect()
    }

    /// Sequence of the last incr file (0 when none).
    pub fn last_incr_seq(&self) -> FileSeq {
        self.incr.last().map_or(0, |f| f.seq)
    }

    /// Add a new incr file named like `getNewIncrAofName` (`<filename>.<seq+1>.incr.aof`) and
    /// return its name.
    pub fn add_new_incr(&mut self, filename: &str) -> String {
        let seq = self.last_incr_seq() + 1;
        let name = incr_name(filename, seq);
        self.incr.push(AofFile {
            name: name.clone(),
            seq,
            kind: FileType::Incr,
        });
        name
    }

    /// The manifest of a new directory: base `base` and incr `incr`, both sequence 1.
    pub fn first_generation(base: String, incr: String) -> Manifest {
        Manifest {
            base: Some(AofFile {
                name: base,
                seq: 1,
                kind: FileType::Base,
            }),
            history: Vec::new(),
            incr: vec![AofFile {
                name: incr,
                seq: 1,
                kind: FileType::Incr,
            }],
        }
    }

    /// The position of the incr file `name` in [`Manifest::incr`].
    pub fn incr_index(&self, name: &str) -> Result<usize> {
        self.incr
            .iter()
            .position(|f| f.name == name)
            .ok_or_else(|| {
                AofError::InvalidInput(format!("incr file {name} is not in the manifest"))
            })
    }

    /// The manifest update at the end of a rewrite (`backgroundRewriteDoneHandler` with
    /// `getNewBaseFileNameAndMarkPreAsHistory` and `markRewrittenIncrAofAsHistory`): `new_base`
    /// becomes the base; the old base and every incr file before `first_kept_incr` (the file the
    /// writer switched to when the rewrite's snapshot was taken) become history.
    pub fn apply_rewrite(&mut self, new_base: AofFile, first_kept_incr: &str) -> Result<()> {
        let keep_from = self.incr_index(first_kept_incr)?;
        if let Some(mut old) = self.base.take() {
            old.kind = FileType::History;
            self.history.insert(0, old);
        }
        for mut f in self.incr.drain(..keep_from).rev() {
            f.kind = FileType::History;
            self.history.insert(0, f);
        }
        self.base = Some(AofFile {
            kind: FileType::Base,
            ..new_base
        });
        Ok(())
    }

    /// Next base sequence number (`curr_base_file_seq + 1`).
    pub fn next_base_seq(&self) -> FileSeq {
        self.base.as_ref().map_or(0, |b| b.seq) + 1
    }

    /// Write this manifest atomically into `dir` (temp file, fsync, rename, directory fsync).
    pub fn persist(&self, dir: &Path, filename: &str) -> Result<()> {
        let target = dir.join(manifest_name(filename));
        forkless_durable::write_file_durably(&target, &self.to_bytes())
            .map_err(|e| AofError::io(format!("persisting {}", target.display()), e))
    }
}

/// fsync a directory so that renames and new files in it are durable.
pub fn sync_dir(dir: &Path) -> Result<()> {
    forkless_durable::fsync_dir(dir)
        .map_err(|e| AofError::io(format!("fsyncing directory {}", dir.display()), e))
}

/// `<filename>.manifest`.
pub fn manifest_name(filename: &str) -> String {
    format!("{filename}.manifest")
}

/// `<filename>.<seq>.incr.aof`.
pub fn incr_name(filename: &str, seq: FileSeq) -> String {
    format!("{filename}.{seq}.incr.aof")
}

/// `<filename>.<seq>.base.rdb` (RDB preamble) or `.base.aof` (RESP).
pub fn base_name(filename: &str, seq: FileSeq, rdb: bool) -> String {
    format!("{filename}.{seq}.base.{}", if rdb { "rdb" } else { "aof" })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line_err(text: &str) -> (usize, String) {
        match Manifest::parse(text.as_bytes()) {
            Err(AofError::Manifest { line, what }) => (line, what),
            other => panic!("expected a manifest error for {text:?}, got {other:?}"),
        }
    }

    #[test]
    fn parses_redis_example() {
        let text = "file appendonly.aof.2.base.rdb seq 2 type b\n\
                    file appendonly.aof.1.incr.aof seq 1 type h\n\
                    # a comment\n\
                    file appendonly.aof.4.incr.aof seq 4 type i\n\
                    FILE appendonly.aof.5.incr.aof SEQ 5 TYPE i extra ignored\n";
        let m = Manifest::parse(text.as_bytes()).unwrap();
        assert_eq!(m.base.as_ref().unwrap().name, "appendonly.aof.2.base.rdb");
        assert_eq!(m.history.len(), 1);
        assert_eq!(m.incr.iter().map(|f| f.seq).collect::<Vec<_>>(), [4, 5]);
        assert_eq!(m.load_order().len(), 3);
    }

    #[test]
    fn errors_name_the_line() {
        assert_eq!(
            Manifest::parse(b"").unwrap_err().to_string(),
            "invalid AOF manifest: Found an empty AOF manifest"
        );
        assert_eq!(line_err("file a seq 1 type b\n\n").0, 2);
        assert_eq!(
            line_err("file a seq 1 type b").1,
            "The AOF manifest file contains too long line"
        );
        assert_eq!(
            line_err("file a seq 1 type\n").1,
            "Invalid AOF manifest file format"
        );
        assert_eq!(
            line_err("file a seq x type b\n").1,
            "Invalid AOF manifest file format"
        );
        assert_eq!(
            line_err("file d/a seq 1 type b\n").1,
            "File can't be a path, just a filename"
        );
        assert_eq!(
            line_err("file a seq 1 type b\nfile c seq 2 type b\n"),
            (2, "Found duplicate base file information".into())
        );
        assert_eq!(
            line_err("file a seq 2 type i\nfile c seq 2 type i\n").1,
            "Found a non-monotonic sequence number"
        );
        assert_eq!(line_err("file a seq 2 type x\n").1, "Unknown AOF file type");
        assert_eq!(
            line_err("file \"a seq 2 type i\n").1,
            "Invalid AOF manifest file format"
        );
        let long = format!("file {} seq 1 type i\n", "a".repeat(1100));
        assert_eq!(
            line_err(&long).1,
            "The AOF manifest file contains too long line"
        );
    }

    #[test]
    fn quoted_names_round_trip() {
        let mut m = Manifest {
            base: Some(AofFile {
                name: "my base.rdb".into(),
                seq: 1,
                kind: FileType::Base,
            }),
            ..Manifest::default()
        };
        m.incr.push(AofFile {
            name: "tab\there.aof".into(),
            seq: 3,
            kind: FileType::Incr,
        });
        let text = m.to_bytes();
        assert_eq!(
            text,
            b"file \"my base.rdb\" seq 1 type b\nfile \"tab\\there.aof\" seq 3 type i\n"
        );
        assert_eq!(Manifest::parse(&text).unwrap(), m);
    }

    #[test]
    fn rewrite_moves_old_files_to_history() {
        let mut m = Manifest {
            base: Some(AofFile {
                name: base_name("a", 1, true),
                seq: 1,
                kind: FileType::Base,
            }),
            ..Manifest::default()
        };
        m.add_new_incr("a");
        m.add_new_incr("a");
        let kept = m.add_new_incr("a");
        let nb = AofFile {
            name: base_name("a", m.next_base_seq(), true),
            seq: m.next_base_seq(),
            kind: FileType::Base,
        };
        m.apply_rewrite(nb, &kept).unwrap();
        assert_eq!(
            String::from_utf8(m.to_bytes()).unwrap(),
            "file a.2.base.rdb seq 2 type b\nfile a.1.incr.aof seq 1 type h\nfile a.2.incr.aof seq 2 type h\n\
             file a.1.base.rdb seq 1 type h\nfile a.3.incr.aof seq 3 type i\n"
        );
        assert!(m
            .apply_rewrite(
                AofFile {
                    name: "x".into(),
                    seq: 9,
                    kind: FileType::Base
                },
                "nope"
            )
            .is_err());
    }
}
