//! Reading the RESP part of an AOF file item by item, telling "the file stops early" apart from
//! "these bytes can never be an AOF".
//!
//! Grammar (what Redis 7.0 appends, `catAppendOnlyGenericCommand` and
//! `genAofTimestampAnnotationIfNeeded` in `src/aof.c`):
//!
//! ```text
//! file       = { command | annotation }
//! command    = "*" argc CRLF { "$" len CRLF <len bytes> CRLF }    argc >= 1, 0 <= len <= 512 MiB
//! annotation = "#" <bytes> LF                                    at most 1024 bytes, LF included
//! ```
//!
//! Redis's loader (`loadSingleAppendOnlyFile`) reads with `fgets` into a 1024-byte buffer and does
//! not check the CRLF after an argument; we check it (strictly better: such a file is corrupt).
//! A claimed `len` or `argc` is checked against the bytes left in the file before anything is
//! allocated for it. The end of the input inside an item is [`ScanError::Incomplete`] (a
//! truncated tail, repairable in the last file); anything else malformed is
//! [`ScanError::Corrupt`].

use std::io::{self, BufRead, Read};

/// Longest annotation line, LF included (`AOF_ANNOTATION_LINE_MAX_LEN`).
pub const MAX_ANNOTATION_LEN: usize = 1024;
/// Largest bulk length accepted (`proto-max-bulk-len` default).
pub const MAX_BULK_LEN: u64 = 512 * 1024 * 1024;
/// Longest `*<argc>` / `$<len>` header line we accept, CRLF included.
const MAX_HEADER_LEN: usize = 32;

/// One item of an AOF's RESP part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// A command's arguments.
    Command(Vec<Vec<u8>>),
    /// An annotation line without its `#` and line terminator (`TS:1700000000`).
    Annotation(Vec<u8>),
}

/// Why the scan stopped.
#[derive(Debug)]
pub enum ScanError {
    /// The input ends inside the item starting at `offset`.
    Incomplete {
        /// Start of the unfinished item.
        offset: u64,
    },
    /// Malformed bytes.
    Corrupt {
        /// Offset of the offending line or byte.
        offset: u64,
        /// What is wrong.
        what: String,
    },
    /// The reader failed.
    Io(io::Error),
}

/// The timestamp of a `TS:<unix seconds>` annotation (`None` for any other annotation): the
/// RESP crate's one parser.
pub use forkless_resp::annotation_timestamp;

/// A resumable reader of items from a `BufRead`, tracking absolute offsets.
pub struct Scanner<R> {
    r: R,
    pos: u64,
    end: u64,
}

enum Line {
    Eof,
    Partial,
    Full(Vec<u8>),
    TooLong,
}

impl<R: BufRead> Scanner<R> {
    /// Scan `r`, whose first byte is at absolute offset `start` and whose input ends at offset
    /// `end` (the file's size: it bounds every allocation).
    pub fn new(r: R, start: u64, end: u64) -> Self {
        Scanner { r, pos: start, end }
    }

    /// Offset of the next unread byte.
    pub fn position(&self) -> u64 {
        self.pos
    }

    fn remaining(&self) -> u64 {
        self.end.saturating_sub(self.pos)
    }

    /// Read up to and including LF, at most `max` bytes.
    fn read_line(&mut self, max: usize) -> io::Result<Line> {
        let mut out = Vec::new();
        let n = (&mut self.r).take(max as u64).read_until(b'\n', &mut out)?;
        self.pos += n as u64;
        Ok(if n == 0 {
            Line::Eof
        } else if out.ends_with(b"\n") {
            Line::Full(out)
        } else if n == max {
            Line::TooLong
        } else {
            Line::Partial
        })
    }

    fn number(line: &[u8], at: u64, what: &str) -> Result<u64, ScanError> {
        let corrupt = || ScanError::Corrupt {
            offset: at,
            what: format!("bad {what} line {:?}", String::from_utf8_lossy(line)),
        };
        let body = line.strip_suffix(b"\r\n").ok_or_else(corrupt)?;
        let digits = &body[1..];
        if digits.is_empty() || digits.len() > 19 || !digits.iter().all(u8::is_ascii_digit) {
            return Err(corrupt());
        }
        std::str::from_utf8(digits)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(corrupt)
    }

    /// The next item with its start and end offsets, or `None` at a clean end of input.
    pub fn next_item(&mut self) -> Result<Option<(u64, Item, u64)>, ScanError> {
        let start = self.pos;
        let first = match self.r.fill_buf().map_err(ScanError::Io)?.first() {
            None => return Ok(None),
            Some(&b) => b,
        };
        let incomplete = ScanError::Incomplete { offset: start };
        match first {
            b'#' => match self.read_line(MAX_ANNOTATION_LEN).map_err(ScanError::Io)? {
                Line::Full(mut l) => {
                    l.pop();
                    if l.last() == Some(&b'\r') {
                        l.pop();
                    }
                    l.remove(0);
                    Ok(Some((start, Item::Annotation(l), self.pos)))
                }
                Line::Eof | Line::Partial => Err(incomplete),
                Line::TooLong => Err(ScanError::Corrupt {
                    offset: start,
                    what: format!("annotation line longer than {MAX_ANNOTATION_LEN} bytes"),
                }),
            },
            b'*' => {
                let line = match self.read_line(MAX_HEADER_LEN).map_err(ScanError::Io)? {
                    Line::Full(l) => l,
                    Line::Eof | Line::Partial => return Err(incomplete),
                    Line::TooLong => {
                        return Err(ScanError::Corrupt {
                            offset: start,
                            what: "argument count line too long".into(),
                        })
                    }
                };
                let argc = Self::number(&line, start, "argument count")?;
                if argc == 0 || argc > i32::MAX as u64 {
                    return Err(ScanError::Corrupt {
                        offset: start,
                        what: format!("invalid argument count {argc}"),
                    });
                }
                // Each argument takes at least 6 bytes ("$0\r\n\r\n"): never reserve beyond that.
                let cap = argc.min(self.remaining() / 6) as usize;
                let mut argv = Vec::with_capacity(cap);
                for _ in 0..argc {
                    let at = self.pos;
                    let line = match self.read_line(MAX_HEADER_LEN).map_err(ScanError::Io)? {
                        Line::Full(l) => l,
                        Line::Eof | Line::Partial => return Err(incomplete),
                        Line::TooLong => {
                            return Err(ScanError::Corrupt {
                                offset: at,
                                what: "bulk length line too long".into(),
                            })
                        }
                    };
                    if line[0] != b'$' {
                        return Err(ScanError::Corrupt {
                            offset: at,
                            what: format!("expected '$', got {:?}", char::from(line[0])),
                        });
                    }
                    let len = Self::number(&line, at, "bulk length")?;
                    if len > MAX_BULK_LEN {
                        return Err(ScanError::Corrupt {
                            offset: at,
                            what: format!("bulk length {len} too large"),
                        });
                    }
                    if len + 2 > self.remaining() {
                        return Err(incomplete);
                    }
                    let mut arg = vec![0u8; len as usize + 2];
                    self.r.read_exact(&mut arg).map_err(|e| match e.kind() {
                        io::ErrorKind::UnexpectedEof => ScanError::Incomplete { offset: start },
                        _ => ScanError::Io(e),
                    })?;
                    self.pos += len + 2;
                    if !arg.ends_with(b"\r\n") {
                        return Err(ScanError::Corrupt {
                            offset: at + line.len() as u64 + len,
                            what: "expected CRLF after argument".into(),
                        });
                    }
                    arg.truncate(len as usize);
                    argv.push(arg);
                }
                Ok(Some((start, Item::Command(argv), self.pos)))
            }
            other => Err(ScanError::Corrupt {
                offset: start,
                what: format!("expected '*' or '#', got byte 0x{other:02x}"),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan_all(b: &[u8]) -> (Vec<(u64, Item, u64)>, Option<ScanError>) {
        let mut s = Scanner::new(b, 0, b.len() as u64);
        let mut out = Vec::new();
        loop {
            match s.next_item() {
                Ok(Some(x)) => out.push(x),
                Ok(None) => return (out, None),
                Err(e) => return (out, Some(e)),
            }
        }
    }

    #[test]
    fn commands_and_annotations() {
        let b = b"#TS:1700000000\r\n*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n*1\r\n$0\r\n\r\n";
        let (items, err) = scan_all(b);
        assert!(err.is_none());
        assert_eq!(
            items[0],
            (0, Item::Annotation(b"TS:1700000000".to_vec()), 16)
        );
        assert_eq!(annotation_timestamp(b"TS:1700000000"), Some(1_700_000_000));
        assert_eq!(annotation_timestamp(b"source x"), None);
        assert_eq!(
            items[1].1,
            Item::Command(vec![b"SELECT".to_vec(), b"0".to_vec()])
        );
        assert_eq!(items[2], (39, Item::Command(vec![vec![]]), b.len() as u64));
    }

    #[test]
    fn every_cut_is_incomplete_at_the_command_start() {
        let b = b"*1\r\n$4\r\nPING\r\n*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nhello\r\n";
        for cut in 15..b.len() {
            let (items, err) = scan_all(&b[..cut]);
            assert_eq!(items.len(), 1);
            assert!(
                matches!(err, Some(ScanError::Incomplete { offset: 14 })),
                "cut {cut}: {err:?}"
            );
        }
    }

    #[test]
    fn corruption_is_reported_with_offset() {
        let cases: [(&[u8], u64); 6] = [
            (b"*1\r\n$4\r\nPING\r\nX", 14),
            (b"*0\r\n", 0),
            (b"*1\r\n:4\r\nPING\r\n", 4),
            (b"*1\r\n$4\r\nPINGxx", 12),
            (b"*-1\r\n", 0),
            (b"*1\r\n$999999999999\r\n", 4),
        ];
        for (b, off) in cases {
            match scan_all(b).1 {
                Some(ScanError::Corrupt { offset, .. }) => {
                    assert_eq!(offset, off, "{:?}", String::from_utf8_lossy(b))
                }
                other => panic!("{:?}: {other:?}", String::from_utf8_lossy(b)),
            }
        }
        let long = [b"#".as_slice(), &[b'a'; 2000], b"\r\n"].concat();
        assert!(matches!(
            scan_all(&long).1,
            Some(ScanError::Corrupt { offset: 0, .. })
        ));
    }

    #[test]
    fn huge_claims_allocate_nothing() {
        // argc of two billion with 10 bytes behind it: reported incomplete, no huge Vec.
        let (_, err) = scan_all(b"*2000000000\r\n$1\r\na\r\n");
        assert!(matches!(err, Some(ScanError::Incomplete { offset: 0 })));
        let (_, err) = scan_all(b"*1\r\n$536870912\r\nab");
        assert!(matches!(err, Some(ScanError::Incomplete { offset: 0 })));
    }
}
