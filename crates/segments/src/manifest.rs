//! The manifest: the small text file that lists what is live in a segments directory.
//!
//! ```text
//! forkless-segments 1\n
//! segment <seq> <name> [<len> [<crc>]]\n                    one per live segment, seq ascending
//! snapshot <seq> <name> <len> <crc> <mode> <cut-seg> <cut-offset> <cut-db> <cut-secs>\n
//! end <crc>\n
//! ```
//! * `<seq>`: decimal, 0 to 2^63-1 ([`FileSeq`]), strictly ascending per kind; `<name>` is `segment.<seq>.aof` /
//!   `snapshot.<seq>.rdb` exactly (no other name is accepted, so a manifest cannot point
//!   outside the directory).
//! * A segment's `<len>` and `<crc>` (CRC-64/REDIS of all its bytes, 16 hex digits, computed by
//!   the writer as it wrote them) are recorded when it is closed (it is never written again):
//!   recovery and check refuse a closed segment of any other length or CRC, so a truncation on
//!   a command boundary or a bit flip that still parses is caught. The open (last) segment has
//!   neither.
//! * `<len>` and `<crc>`: the snapshot file's length and CRC-64/REDIS of all its bytes (16 hex
//!   digits), so a damaged snapshot is detected before it is used, deltas included.
//! * `<mode>` `c` (converging) or `p` (point-in-time); the cut (segment, byte offset, database
//!   selected there or `-`, writer-clock Unix second) repeats the snapshot's own aux fields
//!   (the file is self-describing; recovery checks that both agree) so that choosing a snapshot
//!   for a time T needs no snapshot read.
//! * `end <crc>`: CRC-64/REDIS (16 hex digits) of every byte before this line. A manifest
//!   without it, or whose CRC differs, is refused.
//!
//! Updates are atomic: temp file, fsync, rename, directory fsync (`forkless-durable`).

use std::fmt::Write as _;
use std::path::Path;

use forkless_aof::{FileSeq, LogPosition};
use forkless_rdb::crc::crc64;
use forkless_snapshot::Mode;

use crate::error::{Result, SegError};

/// The manifest's file name.
pub const MANIFEST_NAME: &str = "segments.manifest";
const HEADER: &str = "forkless-segments 1";

/// The file name of segment `seq`.
pub fn segment_name(seq: FileSeq) -> String {
    format!("segment.{seq}.aof")
}

/// The file name of snapshot `seq`.
pub fn snapshot_name(seq: FileSeq) -> String {
    format!("snapshot.{seq}.rdb")
}

/// The manifest letter of a snapshot's mode (`c` converging, `p` point-in-time).
fn mode_letter(m: Mode) -> char {
    match m {
        Mode::Converging => 'c',
        Mode::PointInTime => 'p',
    }
}

/// A live snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotEntry {
    /// Sequence number.
    pub seq: FileSeq,
    /// File length.
    pub len: u64,
    /// CRC-64/REDIS of the whole file.
    pub crc: u64,
    /// Mode.
    pub mode: Mode,
    /// Where it cuts the log: every write before this point is in the snapshot, every write
    /// from it on is not.
    pub cut: LogPosition,
}

impl SnapshotEntry {
    /// Its file name.
    pub fn name(&self) -> String {
        snapshot_name(self.seq)
    }
}

/// What is live in a segments directory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SegManifest {
    /// Live segments, ascending.
    pub segments: Vec<FileSeq>,
    /// Final lengths of closed segments (the open one has none).
    pub closed_len: std::collections::BTreeMap<FileSeq, u64>,
    /// CRC-64/REDIS of closed segments, when the writer saw all their bytes.
    pub closed_crc: std::collections::BTreeMap<FileSeq, u64>,
    /// Live snapshots, ascending.
    pub snapshots: Vec<SnapshotEntry>,
}

fn bad(line: usize, what: impl Into<String>) -> SegError {
    SegError::Manifest {
        file: MANIFEST_NAME.into(),
        line,
        what: what.into(),
    }
}

fn num<T: std::str::FromStr>(s: &str, line: usize, what: &str) -> Result<T> {
    s.parse()
        .map_err(|_| bad(line, format!("{what} {s:?} is not a valid number")))
}

/// A file number: a decimal without sign, at most `FileSeq::MAX`.
fn seq_num(s: &str, line: usize, what: &str) -> Result<FileSeq> {
    let n: u64 = num(s, line, what)?;
    FileSeq::try_from(n).map_err(|_| bad(line, format!("{what} {s:?} is out of range")))
}

impl SegManifest {
    /// The manifest's bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut s = String::new();
        s.push_str(HEADER);
        s.push('\n');
        for seq in &self.segments {
            let _ = write!(s, "segment {seq} {}", segment_name(*seq));
            if let Some(len) = self.closed_len.get(seq) {
                let _ = write!(s, " {len}");
                if let Some(crc) = self.closed_crc.get(seq) {
                    let _ = write!(s, " {crc:016x}");
                }
            }
            s.push('\n');
        }
        for e in &self.snapshots {
            let db = e.cut.db.map_or("-".to_string(), |d| d.to_string());
            let _ = writeln!(
                s,
                "snapshot {} {} {} {:016x} {} {} {} {} {}",
                e.seq,
                e.name(),
                e.len,
                e.crc,
                mode_letter(e.mode),
                e.cut.seq,
                e.cut.offset,
                db,
                e.cut.unix_secs
            );
        }
        let crc = crc64(s.as_bytes());
        let _ = writeln!(s, "end {crc:016x}");
        s.into_bytes()
    }

    /// Parse a manifest (see the module doc); every problem names its line.
    pub fn parse(bytes: &[u8]) -> Result<SegManifest> {
        let text = std::str::from_utf8(bytes)
            .map_err(|e| bad(0, format!("not UTF-8 text (byte {})", e.valid_up_to())))?;
        let Some(end_at) = text.rfind("end ") else {
            return Err(bad(0, "no `end <crc>` line: the file is truncated"));
        };
        let (body, tail) = text.split_at(end_at);
        let tail_line = body.lines().count() + 1;
        let stored = tail
            .strip_prefix("end ")
            .and_then(|t| t.strip_suffix('\n'))
            .ok_or_else(|| bad(tail_line, "the `end` line must be the last line"))?;
        let stored = u64::from_str_radix(stored, 16)
            .ok()
            .filter(|_| {
                stored.len() == 16
                    && stored
                        .bytes()
                        .all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'))
            })
            .ok_or_else(|| bad(tail_line, format!("bad checksum {stored:?}")))?;
        let actual = crc64(body.as_bytes());
        if stored != actual {
            return Err(bad(
                tail_line,
                format!("checksum mismatch (stored {stored:016x}, computed {actual:016x})"),
            ));
        }
        let mut m = SegManifest::default();
        for (i, line) in body.lines().enumerate() {
            let n = i + 1;
            let f: Vec<&str> = line.split(' ').collect();
            if n == 1 {
                if line != HEADER {
                    return Err(bad(1, format!("expected {HEADER:?}, found {line:?}")));
                }
                continue;
            }
            match f.first().copied() {
                Some("segment") if (3..=5).contains(&f.len()) => {
                    let seq = seq_num(f[1], n, "segment number")?;
                    if f[2] != segment_name(seq) {
                        return Err(bad(
                            n,
                            format!("segment {seq} must be named {}", segment_name(seq)),
                        ));
                    }
                    if m.segments.last().is_some_and(|&l| l >= seq) {
                        return Err(bad(n, "segment numbers must ascend"));
                    }
                    m.segments.push(seq);
                    if let Some(len) = f.get(3) {
                        m.closed_len.insert(seq, num(len, n, "segment length")?);
                    }
                    if let Some(c) = f.get(4) {
                        let crc = u64::from_str_radix(c, 16)
                            .ok()
                            .filter(|_| c.len() == 16)
                            .ok_or_else(|| bad(n, format!("bad segment checksum {c:?}")))?;
                        m.closed_crc.insert(seq, crc);
                    }
                }
                Some("snapshot") if f.len() == 10 => {
                    let seq = seq_num(f[1], n, "snapshot number")?;
                    if f[2] != snapshot_name(seq) {
                        return Err(bad(
                            n,
                            format!("snapshot {seq} must be named {}", snapshot_name(seq)),
                        ));
                    }
                    if m.snapshots.last().is_some_and(|l| l.seq >= seq) {
                        return Err(bad(n, "snapshot numbers must ascend"));
                    }
                    let crc = u64::from_str_radix(f[4], 16)
                        .ok()
                        .filter(|_| f[4].len() == 16)
                        .ok_or_else(|| bad(n, format!("bad snapshot checksum {:?}", f[4])))?;
                    let mode = match f[5] {
                        "c" => Mode::Converging,
                        "p" => Mode::PointInTime,
                        o => return Err(bad(n, format!("unknown snapshot mode {o:?}"))),
                    };
                    let db = match f[8] {
                        "-" => None,
                        d => Some(num(d, n, "cut database")?),
                    };
                    m.snapshots.push(SnapshotEntry {
                        seq,
                        len: num(f[3], n, "snapshot length")?,
                        crc,
                        mode,
                        cut: LogPosition {
                            seq: seq_num(f[6], n, "cut segment")?,
                            offset: num(f[7], n, "cut offset")?,
                            db,
                            unix_secs: num(f[9], n, "cut time")?,
                        },
                    });
                }
                _ => return Err(bad(n, format!("unrecognized line {line:?}"))),
            }
        }
        if m.segments.is_empty() {
            return Err(bad(0, "the manifest lists no segment"));
        }
        Ok(m)
    }

    /// Read `dir`'s manifest.
    pub fn load(dir: &Path) -> Result<SegManifest> {
        let p = dir.join(MANIFEST_NAME);
        let bytes =
            std::fs::read(&p).map_err(|e| SegError::io(format!("reading {}", p.display()), e))?;
        SegManifest::parse(&bytes)
    }

    /// Replace `dir`'s manifest atomically (temp, fsync, rename, directory fsync).
    pub fn persist(&self, dir: &Path) -> Result<()> {
        let p = dir.join(MANIFEST_NAME);
        forkless_durable::write_file_durably(&p, &self.to_bytes())
            .map_err(|e| SegError::io(format!("writing {}", p.display()), e))
    }

    /// The next snapshot number.
    pub fn next_snapshot_seq(&self) -> FileSeq {
        self.snapshots.last().map_or(1, |s| s.seq + 1)
    }

    /// The last segment.
    pub fn last_segment(&self) -> FileSeq {
        self.segments.last().copied().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> SegManifest {
        SegManifest {
            segments: vec![3, 4, 5],
            closed_len: [(3, 100), (4, 4096)].into_iter().collect(),
            closed_crc: [(3, 0xfeed)].into_iter().collect(),
            snapshots: vec![SnapshotEntry {
                seq: 2,
                len: 1234,
                crc: 0xdead_beef,
                mode: Mode::Converging,
                cut: LogPosition {
                    seq: 4,
                    offset: 77,
                    db: Some(3),
                    unix_secs: 1_700_000_000,
                },
            }],
        }
    }

    #[test]
    fn round_trip() {
        let m = sample();
        assert_eq!(SegManifest::parse(&m.to_bytes()).unwrap(), m);
    }

    #[test]
    fn every_truncation_and_bit_flip_is_refused_with_a_line() {
        let b = sample().to_bytes();
        for n in 0..b.len() {
            assert!(SegManifest::parse(&b[..n]).is_err(), "prefix {n} accepted");
        }
        for i in 0..b.len() {
            for bit in 0..8 {
                let mut c = b.clone();
                c[i] ^= 1 << bit;
                let r = SegManifest::parse(&c);
                assert!(r.is_err(), "flip at {i} bit {bit} accepted");
                assert!(r.unwrap_err().to_string().contains("manifest"));
            }
        }
    }
}
