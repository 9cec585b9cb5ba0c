//! RESP2 replies: the value type, its encoding and an incremental parser.
//!
//! Problem: tests and tools talk to Redis-compatible servers and must read every RESP2 reply
//! shape, including partial ones, from untrusted bytes.
//!
//! Format (<https://redis.io/docs/latest/develop/reference/protocol-spec/>, RESP2 only):
//!
//! ```text
//! +<simple string>\r\n    -<error>\r\n    :<i64>\r\n
//! $<len>\r\n<len bytes>\r\n   $-1\r\n (null bulk)
//! *<count>\r\n<count replies> *-1\r\n (null array)
//! ```
//!
//! Simple strings and errors cannot hold CR or LF; [`Reply::encode`] replaces them with spaces,
//! as Redis's `addReplyErrorLength` does. Nesting is limited to [`MAX_REPLY_DEPTH`] so hostile
//! input cannot exhaust the stack.

use crate::encode::{encode_bulk, encode_integer, write_u64};
use crate::error::RespError;
use crate::num::{header_line, parse_i64, parse_len, Line};
use crate::{MAX_BULK_LEN, MAX_MULTIBULK_COUNT};

/// Deepest nesting of arrays [`parse_reply`] accepts.
pub const MAX_REPLY_DEPTH: usize = 128;

/// Longest simple string or error line accepted (Redis's inline limit, 64 KiB).
const MAX_SIMPLE_LINE: usize = 64 * 1024;

/// A RESP2 reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// `+OK`
    Simple(Vec<u8>),
    /// `-ERR ...`
    Error(Vec<u8>),
    /// `:42`
    Integer(i64),
    /// `$3\r\nabc`
    Bulk(Vec<u8>),
    /// `$-1`
    Null,
    /// `*-1`
    NullArray,
    /// `*2\r\n...`
    Array(Vec<Reply>),
}

impl Reply {
    /// Append the RESP2 encoding of this reply to `out`.
    ///
    /// ```
    /// use forkless_resp::Reply;
    /// let mut out = Vec::new();
    /// Reply::Array(vec![Reply::Integer(1), Reply::Null]).encode(&mut out);
    /// assert_eq!(out, b"*2\r\n:1\r\n$-1\r\n");
    /// ```
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Reply::Simple(s) => encode_line(out, b'+', s),
            Reply::Error(s) => encode_line(out, b'-', s),
            Reply::Integer(v) => encode_integer(out, *v),
            Reply::Bulk(b) => encode_bulk(out, b),
            Reply::Null => out.extend_from_slice(b"$-1\r\n"),
            Reply::NullArray => out.extend_from_slice(b"*-1\r\n"),
            Reply::Array(items) => {
                out.push(b'*');
                write_u64(out, items.len() as u64);
                out.extend_from_slice(b"\r\n");
                for r in items {
                    r.encode(out);
                }
            }
        }
    }

    /// The encoding as a new vector.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut out);
        out
    }
}

fn encode_line(out: &mut Vec<u8>, type_byte: u8, s: &[u8]) {
    out.reserve(s.len() + 3);
    out.push(type_byte);
    out.extend(
        s.iter()
            .map(|&b| if b == b'\r' || b == b'\n' { b' ' } else { b }),
    );
    out.extend_from_slice(b"\r\n");
}

/// Answer of [`parse_reply`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParsedReply {
    /// A complete reply occupying the first `consumed` bytes.
    Complete {
        /// The reply.
        reply: Reply,
        /// Bytes used.
        consumed: usize,
    },
    /// The buffer holds only the beginning of a reply: call again with more bytes.
    Incomplete,
}

/// Parse the reply at the start of `buf`.
///
/// Incremental in the simple sense: an unfinished reply answers `Incomplete` and is parsed again
/// from its start on the next call (replies are small; commands have the resumable
/// [`crate::CommandParser`]).
///
/// ```
/// use forkless_resp::{parse_reply, ParsedReply, Reply};
/// assert_eq!(parse_reply(b":12\r").unwrap(), ParsedReply::Incomplete);
/// assert_eq!(
///     parse_reply(b":12\r\n+OK").unwrap(),
///     ParsedReply::Complete { reply: Reply::Integer(12), consumed: 5 }
/// );
/// ```
pub fn parse_reply(buf: &[u8]) -> Result<ParsedReply, RespError> {
    Ok(match parse_at(buf, 0, 0)? {
        Some((reply, next)) => ParsedReply::Complete {
            reply,
            consumed: next,
        },
        None => ParsedReply::Incomplete,
    })
}

/// Parse one reply starting at `at`; `Ok(None)` when incomplete.
fn parse_at(buf: &[u8], at: usize, depth: usize) -> Result<Option<(Reply, usize)>, RespError> {
    let Some(&t) = buf.get(at) else {
        return Ok(None);
    };
    match t {
        b'+' | b'-' => {
            let limit = buf.len().min(at + MAX_SIMPLE_LINE);
            let Some(i) = buf[at..limit].iter().position(|&b| b == b'\n') else {
                if limit - at >= MAX_SIMPLE_LINE {
                    return Err(RespError::protocol(
                        at,
                        "simple string or error line longer than 64 KiB",
                    ));
                }
                return Ok(None);
            };
            let lf = at + i;
            if buf[lf - 1] != b'\r' || lf - 1 == at {
                return Err(RespError::protocol(lf, "line ends with LF instead of CRLF"));
            }
            let s = buf[at + 1..lf - 1].to_vec();
            let r = if t == b'+' {
                Reply::Simple(s)
            } else {
                Reply::Error(s)
            };
            Ok(Some((r, lf + 1)))
        }
        b':' => {
            let Line::Found { start, end, next } = header_line(buf, at)? else {
                return Ok(None);
            };
            let v = parse_i64(&buf[start..end]).ok_or_else(|| {
                RespError::protocol(
                    at,
                    format!(
                        "invalid integer {:?}",
                        String::from_utf8_lossy(&buf[start..end])
                    ),
                )
            })?;
            Ok(Some((Reply::Integer(v), next)))
        }
        b'$' => {
            let Line::Found { start, end, next } = header_line(buf, at)? else {
                return Ok(None);
            };
            let Some(len) = parse_len(&buf[start..end], at, "bulk length", MAX_BULK_LEN, true)?
            else {
                return Ok(Some((Reply::Null, next)));
            };
            let data_end = next + len;
            match buf.get(data_end..data_end + 2) {
                Some(b"\r\n") => Ok(Some((
                    Reply::Bulk(buf[next..data_end].to_vec()),
                    data_end + 2,
                ))),
                Some(_) => Err(RespError::protocol(
                    data_end,
                    "bulk string not followed by CRLF",
                )),
                None if buf.get(data_end).is_some_and(|&c| c != b'\r') => Err(RespError::protocol(
                    data_end,
                    "bulk string not followed by CRLF",
                )),
                None => Ok(None),
            }
        }
        b'*' => {
            let Line::Found { start, end, next } = header_line(buf, at)? else {
                return Ok(None);
            };
            let Some(count) = parse_len(
                &buf[start..end],
                at,
                "array length",
                MAX_MULTIBULK_COUNT,
                true,
            )?
            else {
                return Ok(Some((Reply::NullArray, next)));
            };
            if count > 0 && depth >= MAX_REPLY_DEPTH {
                return Err(RespError::protocol(
                    at,
                    format!("arrays nested deeper than {MAX_REPLY_DEPTH}"),
                ));
            }
            // Every element takes at least 3 bytes (":0\r\n" is 4, "+\r\n" is 3).
            let mut items = Vec::with_capacity(count.min((buf.len() - next) / 3 + 1));
            let mut pos = next;
            for _ in 0..count {
                let Some((r, n)) = parse_at(buf, pos, depth + 1)? else {
                    return Ok(None);
                };
                items.push(r);
                pos = n;
            }
            Ok(Some((Reply::Array(items), pos)))
        }
        other => Err(RespError::protocol(
            at,
            format!("unknown reply type byte {other:#04x}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn complete(buf: &[u8]) -> (Reply, usize) {
        match parse_reply(buf).unwrap() {
            ParsedReply::Complete { reply, consumed } => (reply, consumed),
            ParsedReply::Incomplete => panic!("incomplete: {:?}", String::from_utf8_lossy(buf)),
        }
    }

    fn error_offset(buf: &[u8]) -> usize {
        match parse_reply(buf) {
            Err(RespError::Protocol { offset, .. }) => offset,
            other => panic!(
                "expected a protocol error for {:?}, got {other:?}",
                String::from_utf8_lossy(buf)
            ),
        }
    }

    #[test]
    fn parses_every_shape() {
        assert_eq!(complete(b"+OK\r\n"), (Reply::Simple(b"OK".to_vec()), 5));
        assert_eq!(complete(b"+\r\n"), (Reply::Simple(vec![]), 3));
        assert_eq!(
            complete(b"-ERR x\r\n"),
            (Reply::Error(b"ERR x".to_vec()), 8)
        );
        assert_eq!(
            complete(b":-9223372036854775808\r\n").0,
            Reply::Integer(i64::MIN)
        );
        assert_eq!(complete(b"$-1\r\n"), (Reply::Null, 5));
        assert_eq!(complete(b"*-1\r\n"), (Reply::NullArray, 5));
        assert_eq!(complete(b"*0\r\n"), (Reply::Array(vec![]), 4));
        assert_eq!(complete(b"$0\r\n\r\n"), (Reply::Bulk(vec![]), 6));
        assert_eq!(
            complete(b"*2\r\n*1\r\n$1\r\n\n\r\n:0\r\nrest").0,
            Reply::Array(vec![
                Reply::Array(vec![Reply::Bulk(b"\n".to_vec())]),
                Reply::Integer(0)
            ])
        );
    }

    #[test]
    fn rejects_malformed_replies() {
        assert_eq!(error_offset(b"!x\r\n"), 0);
        assert_eq!(error_offset(b":1x\r\n"), 0);
        assert_eq!(error_offset(b":99999999999999999999\r\n"), 0);
        assert_eq!(error_offset(b"$-2\r\n"), 0);
        assert_eq!(error_offset(b"*-2\r\n"), 0);
        assert_eq!(error_offset(b"$1\r\nab\r\n"), 5);
        assert_eq!(error_offset(b"+OK\n"), 3);
        assert_eq!(error_offset(b"*1\r\n?\r\n"), 4);
        let deep = b"*1\r\n".repeat(MAX_REPLY_DEPTH + 1);
        assert_eq!(error_offset(&deep), 4 * MAX_REPLY_DEPTH);
        assert_eq!(
            parse_reply(&b"*1\r\n".repeat(MAX_REPLY_DEPTH)).unwrap(),
            ParsedReply::Incomplete
        );
    }

    #[test]
    fn encode_sanitizes_lines() {
        assert_eq!(
            Reply::Error(b"ERR a\r\nb".to_vec()).to_bytes(),
            b"-ERR a  b\r\n"
        );
        assert_eq!(Reply::Simple(b"OK".to_vec()).to_bytes(), b"+OK\r\n");
    }

    #[test]
    fn huge_array_claim_does_not_allocate_its_count() {
        assert_eq!(
            parse_reply(b"*2147483647\r\n:1\r\n").unwrap(),
            ParsedReply::Incomplete
        );
    }
}
