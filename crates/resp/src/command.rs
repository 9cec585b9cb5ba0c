//! Incremental parsing of RESP commands (multibulks of bulk strings) and AOF annotations.
//!
//! Problem: commands arrive over a socket or sit in an append-only file that may end in the
//! middle of one (a crash during a write). The parser must say "incomplete" without failing,
//! resume cheaply when more bytes arrive, tell a truncated tail apart from garbage, and report
//! where the last complete command ends so a truncated AOF can be cut back to it (Redis's
//! `aof-load-truncated`).
//!
//! Format, as Redis 7.0's AOF loader reads it (`loadSingleAppendOnlyFile` in `src/aof.c`):
//!
//! ```text
//! *<argc>\r\n            argc in 1..=i32::MAX, ASCII decimal
//! $<len>\r\n<len bytes>\r\n   argc times; len in 0..=512 MiB
//! #<text>\n              an annotation line (Redis writes "#TS:<unix secs>\r\n"), only between
//!                        commands, at most 1024 bytes with its terminator
//! ```
//!
//! We are stricter than Redis's `atoi`/`strtol` in one way: a count or length must be plain
//! decimal digits followed by CRLF (Redis silently reads `*3abc` as 3).

use std::fmt;
use std::ops::Range;

use crate::error::RespError;
use crate::num::{header_line, parse_len, Line};
use crate::{MAX_ANNOTATION_LEN, MAX_BULK_LEN, MAX_MULTIBULK_COUNT};

/// The arguments of one parsed command, borrowed from the input buffer.
#[derive(Clone, Copy)]
pub struct Argv<'a> {
    buf: &'a [u8],
    ranges: &'a [Range<usize>],
}

impl<'a> Argv<'a> {
    /// Number of arguments (at least 1).
    pub fn len(&self) -> usize {
        self.ranges.len()
    }

    /// Always false for a parsed command (RESP commands have at least one argument).
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// Argument `i`, if present.
    pub fn get(&self, i: usize) -> Option<&'a [u8]> {
        self.ranges.get(i).map(|r| &self.buf[r.clone()])
    }

    /// The arguments in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &'a [u8]> + 'a {
        let buf = self.buf;
        self.ranges.iter().map(move |r| &buf[r.clone()])
    }

    /// The arguments as a vector of borrowed slices.
    pub fn to_vec(&self) -> Vec<&'a [u8]> {
        self.iter().collect()
    }

    /// The arguments as owned byte vectors.
    pub fn to_owned_vec(&self) -> Vec<Vec<u8>> {
        self.iter().map(<[u8]>::to_vec).collect()
    }
}

impl fmt::Debug for Argv<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.iter().map(String::from_utf8_lossy))
            .finish()
    }
}

impl PartialEq for Argv<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().zip(other.iter()).all(|(a, b)| a == b)
    }
}

/// What [`CommandParser::parse`] found at the start of the buffer.
#[derive(Debug, PartialEq)]
pub enum Parsed<'a> {
    /// A complete command occupying the first `consumed` bytes.
    Command {
        /// Its arguments.
        argv: Argv<'a>,
        /// Bytes used, CRLF of the last argument included.
        consumed: usize,
    },
    /// An annotation line occupying the first `consumed` bytes.
    Annotation {
        /// The line without its leading `#` and without its `\r\n` / `\n` terminator
        /// (`TS:1700000000` for Redis's timestamp annotation).
        text: &'a [u8],
        /// Bytes used, terminator included.
        consumed: usize,
    },
    /// The buffer holds only the beginning of an item (or nothing): call again with more bytes.
    Incomplete,
}

/// Resumable parser of commands and annotations.
///
/// Protocol of use: call [`parse`](Self::parse) with the unconsumed bytes. After `Incomplete`,
/// call again with the *same* bytes plus whatever arrived since; the parser remembers how far
/// it got, so a large command arriving in many pieces is parsed in linear time. After
/// `Command`/`Annotation`, drop `consumed` bytes from the front and call again. After an error
/// the stream is unusable; the parser itself is reset.
///
/// ```
/// use forkless_resp::{CommandParser, Parsed};
/// let mut p = CommandParser::new();
/// let input = b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n";
/// assert_eq!(p.parse(&input[..10]).unwrap(), Parsed::Incomplete);
/// match p.parse(input).unwrap() {
///     Parsed::Command { argv, consumed } => {
///         assert_eq!(argv.to_vec(), [&b"GET"[..], b"k"]);
///         assert_eq!(consumed, input.len());
///     }
///     other => panic!("{other:?}"),
/// }
/// ```
#[derive(Debug, Default)]
pub struct CommandParser {
    /// Ranges of the arguments parsed so far of the command in progress.
    ranges: Vec<Range<usize>>,
    /// Argument count of the command in progress; 0 when between commands.
    argc: usize,
    /// Where the next argument's `$` header starts (meaningful while `argc > 0`).
    pos: usize,
    /// The last call returned a complete item whose `ranges` the caller may still hold; the
    /// next call starts a new item.
    done: bool,
}

impl CommandParser {
    /// A parser positioned between commands.
    pub fn new() -> Self {
        Self::default()
    }

    /// Forget any command in progress.
    pub fn reset(&mut self) {
        self.ranges.clear();
        self.argc = 0;
        self.pos = 0;
        self.done = false;
    }

    /// Whether a command has been started but not finished (the last answer was `Incomplete`
    /// after its header).
    pub fn in_progress(&self) -> bool {
        self.argc > 0 && !self.done
    }

    /// Parse the item at the start of `buf` (see the type's documentation for the protocol).
    pub fn parse<'a>(&'a mut self, buf: &'a [u8]) -> Result<Parsed<'a>, RespError> {
        Ok(match self.step(buf)? {
            Step::Command { consumed } => Parsed::Command {
                argv: Argv {
                    buf,
                    ranges: &self.ranges,
                },
                consumed,
            },
            Step::Annotation { end, consumed } => Parsed::Annotation {
                text: &buf[1..end],
                consumed,
            },
            Step::Incomplete => Parsed::Incomplete,
        })
    }

    /// [`parse`](Self::parse) without borrowing the parser in the answer.
    fn step(&mut self, buf: &[u8]) -> Result<Step, RespError> {
        if self.done || (self.argc > 0 && buf.len() < self.pos) {
            // A new item, or the caller broke the "same bytes plus more" rule: start over.
            self.reset();
        }
        let r = self.step_inner(buf);
        match &r {
            Ok(Step::Incomplete) => {}
            Ok(_) => self.done = true,
            Err(_) => self.reset(),
        }
        r
    }

    fn step_inner(&mut self, buf: &[u8]) -> Result<Step, RespError> {
        if self.argc == 0 {
            let Some(&first) = buf.first() else {
                return Ok(Step::Incomplete);
            };
            match first {
                b'#' => return parse_annotation(buf),
                b'*' => {}
                other => {
                    return Err(RespError::protocol(
                        0,
                        format!(
                        "expected '*' (a command) or '#' (an annotation), found byte {other:#04x}"
                    ),
                    ))
                }
            }
            let Line::Found { start, end, next } = header_line(buf, 0)? else {
                return Ok(Step::Incomplete);
            };
            let argc = parse_len(
                &buf[start..end],
                0,
                "multibulk count",
                MAX_MULTIBULK_COUNT,
                false,
            )?
            .unwrap_or(0);
            if argc == 0 {
                return Err(RespError::protocol(0, "empty command (multibulk count 0)"));
            }
            self.argc = argc;
            self.pos = next;
            self.ranges.clear();
            // Each argument needs at least 6 bytes ("$0\r\n\r\n"): never reserve beyond what the
            // bytes present could hold.
            self.ranges.reserve(argc.min((buf.len() - next) / 6 + 1));
        }
        while self.ranges.len() < self.argc {
            let at = self.pos;
            let Some(&b) = buf.get(at) else {
                return Ok(Step::Incomplete);
            };
            if b != b'$' {
                return Err(RespError::protocol(
                    at,
                    format!("expected '$' (a bulk string), found byte {b:#04x}"),
                ));
            }
            let Line::Found { start, end, next } = header_line(buf, at)? else {
                return Ok(Step::Incomplete);
            };
            let len =
                parse_len(&buf[start..end], at, "bulk length", MAX_BULK_LEN, false)?.unwrap_or(0);
            let data_end = next + len;
            match buf.get(data_end..data_end + 2) {
                Some(b"\r\n") => {}
                Some(_) => {
                    return Err(RespError::protocol(
                        data_end,
                        "bulk string not followed by CRLF",
                    ))
                }
                None => {
                    if buf.get(data_end).is_some_and(|&c| c != b'\r') {
                        return Err(RespError::protocol(
                            data_end,
                            "bulk string not followed by CRLF",
                        ));
                    }
                    return Ok(Step::Incomplete);
                }
            }
            self.ranges.push(next..data_end);
            self.pos = data_end + 2;
        }
        Ok(Step::Command { consumed: self.pos })
    }
}

/// [`Parsed`] without borrows.
enum Step {
    Command { consumed: usize },
    Annotation { end: usize, consumed: usize },
    Incomplete,
}

fn parse_annotation(buf: &[u8]) -> Result<Step, RespError> {
    let window = &buf[..buf.len().min(MAX_ANNOTATION_LEN)];
    match window.iter().position(|&b| b == b'\n') {
        Some(lf) => {
            let end = if lf > 1 && buf[lf - 1] == b'\r' {
                lf - 1
            } else {
                lf
            };
            Ok(Step::Annotation {
                end,
                consumed: lf + 1,
            })
        }
        None if window.len() >= MAX_ANNOTATION_LEN => Err(RespError::protocol(
            0,
            format!("annotation line longer than {MAX_ANNOTATION_LEN} bytes"),
        )),
        None => Ok(Step::Incomplete),
    }
}

/// The timestamp of a Redis `#TS:<unix secs>` annotation, given its [`Parsed::Annotation`] text
/// (`TS:1700000000`, a trailing `\r` allowed); `None` for any other annotation. The one parser of
/// annotations (the AOF loader and `aof check --truncate-to-timestamp` use it too); the number is
/// a decimal `i64` as Rust's `str::parse` reads it.
pub fn annotation_timestamp(text: &[u8]) -> Option<i64> {
    let digits = text.strip_prefix(b"TS:")?;
    let digits = digits.strip_suffix(b"\r").unwrap_or(digits);
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// A complete item of a scanned buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item<'a> {
    /// A command's arguments.
    Command(Vec<&'a [u8]>),
    /// An annotation's text (without `#` and terminator, as in [`Parsed::Annotation`]).
    Annotation(&'a [u8]),
}

/// One item of a [`Scan`] with its position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scanned<'a> {
    /// Offset of its first byte.
    pub start: usize,
    /// Offset just past its last byte.
    pub end: usize,
    /// The item.
    pub item: Item<'a>,
}

/// Result of [`scan_commands`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scan<'a> {
    /// Every complete item, in order.
    pub items: Vec<Scanned<'a>>,
    /// Offset just past the last complete item (0 if none): the length to truncate a
    /// damaged AOF to.
    pub offset_after_last_complete: usize,
    /// `None` when the items cover the whole buffer; `Some(RespError::Incomplete{..})` when it
    /// ends inside an item (a truncated file); `Some(RespError::Protocol{..})` at the first
    /// malformed byte (nothing after it is scanned).
    pub tail: Option<RespError>,
}

/// Scan a whole buffer (an AOF file, say) into its complete commands and annotations.
///
/// ```
/// use forkless_resp::{scan_commands, Item, RespError};
/// let s = scan_commands(b"#TS:1\r\n*1\r\n$4\r\nPING\r\n*1\r\n$3\r\nDE");
/// assert_eq!(s.items.len(), 2);
/// assert_eq!(s.items[0].item, Item::Annotation(b"TS:1"));
/// assert_eq!(s.offset_after_last_complete, 21);
/// assert_eq!(s.tail, Some(RespError::Incomplete { offset: 21 }));
/// ```
pub fn scan_commands(buf: &[u8]) -> Scan<'_> {
    let mut parser = CommandParser::new();
    let mut items = Vec::new();
    let mut off = 0;
    let tail = loop {
        if off == buf.len() {
            break None;
        }
        let rest = &buf[off..];
        match parser.step(rest) {
            Ok(Step::Command { consumed }) => {
                let argv = parser.ranges.iter().map(|r| &rest[r.clone()]).collect();
                items.push(Scanned {
                    start: off,
                    end: off + consumed,
                    item: Item::Command(argv),
                });
                off += consumed;
            }
            Ok(Step::Annotation { end, consumed }) => {
                items.push(Scanned {
                    start: off,
                    end: off + consumed,
                    item: Item::Annotation(&rest[1..end]),
                });
                off += consumed;
            }
            Ok(Step::Incomplete) => break Some(RespError::Incomplete { offset: off }),
            Err(RespError::Protocol { offset, what }) => {
                break Some(RespError::Protocol {
                    offset: off + offset,
                    what,
                })
            }
            Err(RespError::Incomplete { offset }) => {
                break Some(RespError::Incomplete {
                    offset: off + offset,
                })
            }
        }
    };
    Scan {
        items,
        offset_after_last_complete: off,
        tail,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn protocol_offset(buf: &[u8]) -> usize {
        let mut p = CommandParser::new();
        match p.parse(buf) {
            Err(RespError::Protocol { offset, .. }) => offset,
            other => panic!(
                "expected a protocol error for {:?}, got {other:?}",
                String::from_utf8_lossy(buf)
            ),
        }
    }

    #[test]
    fn malformed_inputs_name_the_offset() {
        assert_eq!(protocol_offset(b"+OK\r\n"), 0);
        assert_eq!(protocol_offset(b"*0\r\n"), 0);
        assert_eq!(protocol_offset(b"*-1\r\n"), 0);
        assert_eq!(protocol_offset(b"*2147483648\r\n"), 0);
        assert_eq!(protocol_offset(b"*x\r\n"), 0);
        assert_eq!(protocol_offset(b"*1\n"), 2);
        assert_eq!(protocol_offset(b"*1\r\n:1\r\n"), 4);
        assert_eq!(protocol_offset(b"*1\r\n$-1\r\n"), 4);
        assert_eq!(protocol_offset(b"*1\r\n$536870913\r\n"), 4);
        assert_eq!(protocol_offset(b"*1\r\n$1\r\nab\r\n"), 9);
        assert_eq!(protocol_offset(b"*1\r\n$1\r\nab"), 9);
        assert_eq!(protocol_offset(b"*1\r\n$1\r\na\rx"), 9);
        assert_eq!(protocol_offset(b"*1111111111111111111111111111111111"), 0);
        let long = [b"#".as_slice(), &[b'x'; MAX_ANNOTATION_LEN]].concat();
        assert_eq!(protocol_offset(&long), 0);
    }

    #[test]
    fn huge_claims_are_incomplete_without_allocating() {
        // A header claiming i32::MAX arguments or a 512 MiB bulk parses as incomplete and
        // reserves next to nothing.
        let mut p = CommandParser::new();
        assert_eq!(
            p.parse(b"*2147483647\r\n$536870912\r\nab").unwrap(),
            Parsed::Incomplete
        );
        assert!(p.ranges.capacity() <= 16, "{}", p.ranges.capacity());
        assert!(p.in_progress());
    }

    #[test]
    fn annotations_between_commands() {
        let buf = b"#TS:1700000000\r\n*1\r\n$4\r\nPING\r\n#note\n*2\r\n$3\r\nGET\r\n$0\r\n\r\n";
        let s = scan_commands(buf);
        assert_eq!(s.tail, None);
        assert_eq!(s.offset_after_last_complete, buf.len());
        let items: Vec<_> = s.items.iter().map(|i| i.item.clone()).collect();
        assert_eq!(
            items,
            [
                Item::Annotation(b"TS:1700000000"),
                Item::Command(vec![b"PING"]),
                Item::Annotation(b"note"),
                Item::Command(vec![b"GET", b""]),
            ]
        );
        assert_eq!(annotation_timestamp(b"TS:1700000000"), Some(1_700_000_000));
        assert_eq!(annotation_timestamp(b"note"), None);
        assert_eq!(annotation_timestamp(b"TS:42\r"), Some(42));
        assert_eq!(annotation_timestamp(b"TS:4x2"), None);
        assert_eq!((s.items[1].start, s.items[1].end), (16, 30));
        // '#' inside a command is an error, not an annotation.
        let s = scan_commands(b"*2\r\n$1\r\na\r\n#x\n");
        assert_eq!(s.items, []);
        assert!(matches!(
            s.tail,
            Some(RespError::Protocol { offset: 11, .. })
        ));
    }

    #[test]
    fn scan_reports_garbage_after_commands() {
        let s = scan_commands(b"*1\r\n$4\r\nPING\r\nhello\r\n");
        assert_eq!(s.items.len(), 1);
        assert_eq!(s.offset_after_last_complete, 14);
        assert!(
            matches!(s.tail, Some(RespError::Protocol { offset: 14, .. })),
            "{:?}",
            s.tail
        );
    }

    #[test]
    fn resumes_and_restarts() {
        let input = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nvalue\r\n*1\r\n$4\r\nPING\r\n";
        let mut p = CommandParser::new();
        for k in 0..31 {
            assert_eq!(
                p.parse(&input[..k]).unwrap(),
                Parsed::Incomplete,
                "prefix {k}"
            );
        }
        let Parsed::Command { argv, consumed } = p.parse(input).unwrap() else {
            panic!()
        };
        assert_eq!(
            argv.to_owned_vec(),
            [b"SET".to_vec(), b"k".to_vec(), b"value".to_vec()]
        );
        assert_eq!(argv.get(3), None);
        assert_eq!(format!("{argv:?}"), r#"["SET", "k", "value"]"#);
        assert_eq!(consumed, 31);
        let Parsed::Command { argv, consumed } = p.parse(&input[31..]).unwrap() else {
            panic!()
        };
        assert_eq!(argv.to_vec(), [b"PING"]);
        assert_eq!(consumed, 14);
        // A shorter buffer than the remembered position makes the parser start over.
        assert_eq!(p.parse(b"*1\r\n$4\r\nPI").unwrap(), Parsed::Incomplete);
        assert_eq!(p.parse(b"*1\r").unwrap(), Parsed::Incomplete);
        assert!(matches!(
            p.parse(b"*1\r\n$4\r\nPING\r\n").unwrap(),
            Parsed::Command { consumed: 14, .. }
        ));
    }
}
