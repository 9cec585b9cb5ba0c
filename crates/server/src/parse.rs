//! Incremental parsing of client requests: RESP multibulks and inline commands, as Redis 7.0.
//!
//! Problem: a client's bytes arrive in arbitrary pieces, possibly hostile. The connection must
//! parse every complete command in its buffer (pipelining), keep a half-received command's
//! progress without re-parsing it, and refuse bad input with Redis's exact error text *before*
//! allocating what the input declares. This follows `processMultibulkBuffer` and
//! `processInlineBuffer` of Redis 7.0.15 (`src/networking.c`):
//!
//! ```text
//! multibulk:  *<count>\r\n  then count times  $<len>\r\n<len bytes>\r\n
//!             count: string2ll, <= i32::MAX, > 10 refused before AUTH; count <= 0: empty command
//!             len:   string2ll, 0..=proto-max-bulk-len, > 16384 refused before AUTH
//!             a header line without '\r' after 64 KiB: "too big mbulk/bulk count string"
//! inline:     <args separated by blanks, "double" or 'single' quoted>\n  ('\r' before it dropped)
//!             no '\n' after 64 KiB: "too big inline request"
//! ```
//!
//! A request is multibulk when its first byte is `*`, inline otherwise. Like Redis, the two bytes
//! after a bulk's data are skipped without being checked. Unlike Redis, a big bulk is never
//! preallocated at its declared size (Redis reserves `len + 2` bytes once `len >= 32 KiB`): the
//! buffer grows only with bytes that arrived, so a client declaring 512 MiB and sending nothing
//! costs nothing.
//!
//! Errors are [`ProtocolError`]s holding the text after `ERR Protocol error: `; the connection
//! replies with it and closes (Redis's `setProtocolError` + `CLIENT_CLOSE_AFTER_REPLY`).

use std::fmt;

/// Longest header line or inline request without a terminator (Redis's `PROTO_INLINE_MAX_SIZE`).
pub const PROTO_INLINE_MAX_SIZE: usize = 64 * 1024;
/// Largest multibulk count accepted before authentication.
pub const UNAUTH_MAX_MULTIBULK: i64 = 10;
/// Largest bulk length accepted before authentication.
pub const UNAUTH_MAX_BULK: i64 = 16384;
/// At most this many argument slots are reserved ahead of their arrival (Redis: 1024).
const MAX_ARGV_PREALLOC: usize = 1024;

/// A refused request: the connection replies `-ERR Protocol error: <text>` and closes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtocolError(pub String);

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Protocol error: {}", self.0)
    }
}

impl std::error::Error for ProtocolError {}

fn perr(s: impl Into<String>) -> ProtocolError {
    ProtocolError(s.into())
}

/// One step of the parser.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    /// A complete command (possibly empty: `*0\r\n` or a blank line, which callers skip).
    Command(Vec<Vec<u8>>),
    /// The buffer holds no complete command; read more.
    Incomplete,
}

/// The parser's limits (from the configuration, read per call so `CONFIG SET` applies).
#[derive(Clone, Copy, Debug)]
pub struct ParseLimits {
    /// `proto-max-bulk-len`.
    pub proto_max_bulk_len: u64,
    /// True while the client must still authenticate (tighter limits, as Redis).
    pub auth_required: bool,
}

/// The state of a partially received multibulk.
#[derive(Debug, Default)]
pub struct RequestParser {
    /// Arguments still expected by the current multibulk (0: between commands).
    multibulk_left: usize,
    /// Length of the bulk being received, once its header was read.
    bulk_len: Option<usize>,
    /// Arguments received so far.
    args: Vec<Vec<u8>>,
    /// Bytes held in `args` (counted against the query buffer limit, as Redis counts argv).
    args_bytes: usize,
}

impl RequestParser {
    /// A parser between commands.
    pub fn new() -> RequestParser {
        RequestParser::default()
    }

    /// Bytes of the command in progress already taken out of the buffer.
    pub fn pending_bytes(&self) -> usize {
        self.args_bytes
    }

    /// True when the bytes of the current big bulk are still awaited: how many.
    pub fn awaiting_bulk(&self) -> Option<usize> {
        self.bulk_len
    }

    /// Parse the next command from `buf[*pos..]`, advancing `*pos` past what was consumed.
    pub fn next(
        &mut self,
        buf: &[u8],
        pos: &mut usize,
        limits: ParseLimits,
    ) -> Result<Parsed, ProtocolError> {
        if self.multibulk_left == 0 {
            let rest = &buf[*pos..];
            if rest.is_empty() {
                return Ok(Parsed::Incomplete);
            }
            if rest[0] != b'*' {
                return parse_inline(buf, pos);
            }
            let Some(cr) = memchr(b'\r', rest) else {
                if rest.len() > PROTO_INLINE_MAX_SIZE {
                    return Err(perr("too big mbulk count string"));
                }
                return Ok(Parsed::Incomplete);
            };
            // The buffer must also hold the '\n' (Redis does not check that it is one).
            if cr + 2 > rest.len() {
                return Ok(Parsed::Incomplete);
            }
            let n = match string2ll(&rest[1..cr]) {
                Some(n) if n <= i64::from(i32::MAX) => n,
                _ => return Err(perr("invalid multibulk length")),
            };
            if n > UNAUTH_MAX_MULTIBULK && limits.auth_required {
                return Err(perr("unauthenticated multibulk length"));
            }
            *pos += cr + 2;
            if n <= 0 {
                return Ok(Parsed::Command(Vec::new()));
            }
            self.multibulk_left = n as usize;
            self.args = Vec::with_capacity(self.multibulk_left.min(MAX_ARGV_PREALLOC));
            self.args_bytes = 0;
        }
        while self.multibulk_left > 0 {
            let rest = &buf[*pos..];
            let len = match self.bulk_len {
                Some(l) => l,
                None => {
                    let Some(cr) = memchr(b'\r', rest) else {
                        if rest.len() > PROTO_INLINE_MAX_SIZE {
                            return Err(perr("too big bulk count string"));
                        }
                        return Ok(Parsed::Incomplete);
                    };
                    if cr + 2 > rest.len() {
                        return Ok(Parsed::Incomplete);
                    }
                    if rest[0] != b'$' {
                        return Err(perr(format!("expected '$', got '{}'", char::from(rest[0]))));
                    }
                    let l = match string2ll(&rest[1..cr]) {
                        Some(l) if l >= 0 && (l as u64) <= limits.proto_max_bulk_len => l,
                        _ => return Err(perr("invalid bulk length")),
                    };
                    if l > UNAUTH_MAX_BULK && limits.auth_required {
                        return Err(perr("unauthenticated bulk length"));
                    }
                    *pos += cr + 2;
                    let l = usize::try_from(l).map_err(|_| perr("invalid bulk length"))?;
                    self.bulk_len = Some(l);
                    l
                }
            };
            let rest = &buf[*pos..];
            if rest.len() < len + 2 {
                return Ok(Parsed::Incomplete);
            }
            self.args.push(rest[..len].to_vec());
            self.args_bytes += len;
            *pos += len + 2;
            self.bulk_len = None;
            self.multibulk_left -= 1;
        }
        self.args_bytes = 0;
        Ok(Parsed::Command(std::mem::take(&mut self.args)))
    }
}

fn memchr(b: u8, s: &[u8]) -> Option<usize> {
    s.iter().position(|&c| c == b)
}

/// An inline command: one line, split like `sdssplitargs`.
fn parse_inline(buf: &[u8], pos: &mut usize) -> Result<Parsed, ProtocolError> {
    let rest = &buf[*pos..];
    let Some(nl) = memchr(b'\n', rest) else {
        if rest.len() > PROTO_INLINE_MAX_SIZE {
            return Err(perr("too big inline request"));
        }
        return Ok(Parsed::Incomplete);
    };
    let mut line = &rest[..nl];
    if line.last() == Some(&b'\r') {
        line = &line[..line.len() - 1];
    }
    let args = split_args(line).ok_or_else(|| perr("unbalanced quotes in request"))?;
    *pos += nl + 1;
    Ok(Parsed::Command(args))
}

fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

fn hex(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

/// Redis's `sdssplitargs`: blanks separate arguments; `"..."` takes `\n \r \t \b \a \\ \" \xHH`
/// escapes, `'...'` takes `\'`; a closing quote must be followed by a blank or the end. `None`
/// for unbalanced quotes. The line is a C string there: it ends at its first NUL byte.
pub fn split_args(line: &[u8]) -> Option<Vec<Vec<u8>>> {
    let line = match memchr(0, line) {
        Some(z) => &line[..z],
        None => line,
    };
    let at = |i: usize| line.get(i).copied();
    let mut out = Vec::new();
    let mut p = 0;
    loop {
        while at(p).is_some_and(is_space) {
            p += 1;
        }
        if p >= line.len() {
            return Some(out);
        }
        let mut cur = Vec::new();
        let (mut inq, mut insq) = (false, false);
        loop {
            let c = at(p);
            if inq {
                match c {
                    None => return None,
                    Some(b'\\')
                        if at(p + 1) == Some(b'x')
                            && at(p + 2).and_then(hex).is_some()
                            && at(p + 3).and_then(hex).is_some() =>
                    {
                        let hi = at(p + 2).and_then(hex).unwrap_or(0);
                        let lo = at(p + 3).and_then(hex).unwrap_or(0);
                        cur.push(hi * 16 + lo);
                        p += 3;
                    }
                    Some(b'\\') if at(p + 1).is_some() => {
                        p += 1;
                        cur.push(match at(p).unwrap_or(0) {
                            b'n' => b'\n',
                            b'r' => b'\r',
                            b't' => b'\t',
                            b'b' => 0x08,
                            b'a' => 0x07,
                            other => other,
                        });
                    }
                    Some(b'"') => {
                        if at(p + 1).is_some_and(|c| !is_space(c)) {
                            return None;
                        }
                        p += 1;
                        break;
                    }
                    Some(ch) => cur.push(ch),
                }
            } else if insq {
                match c {
                    None => return None,
                    Some(b'\\') if at(p + 1) == Some(b'\'') => {
                        p += 1;
                        cur.push(b'\'');
                    }
                    Some(b'\'') => {
                        if at(p + 1).is_some_and(|c| !is_space(c)) {
                            return None;
                        }
                        p += 1;
                        break;
                    }
                    Some(ch) => cur.push(ch),
                }
            } else {
                match c {
                    None | Some(b' ' | b'\n' | b'\r' | b'\t') => break,
                    Some(b'"') => inq = true,
                    Some(b'\'') => insq = true,
                    Some(ch) => cur.push(ch),
                }
            }
            p += 1;
        }
        out.push(cur);
    }
}

/// Redis's `string2ll` (strict decimal `i64`): the keyspace's parser, one implementation for
/// both request lengths and command arguments.
pub use forkless_keyspace::convert::parse_i64 as string2ll;

#[cfg(test)]
mod tests {
    use super::*;

    const L: ParseLimits = ParseLimits {
        proto_max_bulk_len: 512 * 1024 * 1024,
        auth_required: false,
    };

    fn all(input: &[u8]) -> (Vec<Vec<Vec<u8>>>, Result<(), ProtocolError>, usize) {
        let mut p = RequestParser::new();
        let mut pos = 0;
        let mut out = Vec::new();
        loop {
            match p.next(input, &mut pos, L) {
                Ok(Parsed::Command(c)) => out.push(c),
                Ok(Parsed::Incomplete) => return (out, Ok(()), pos),
                Err(e) => return (out, Err(e), pos),
            }
        }
    }

    fn v(args: &[&str]) -> Vec<Vec<u8>> {
        args.iter().map(|a| a.as_bytes().to_vec()).collect()
    }

    #[test]
    fn pipelined_multibulk_and_inline() {
        let (cmds, r, pos) =
            all(b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\nPING\r\nset a \"b c\"\n*1\r\n$4\r\nPI");
        assert_eq!(r, Ok(()));
        assert_eq!(
            cmds,
            vec![v(&["GET", "k"]), v(&["PING"]), v(&["set", "a", "b c"])]
        );
        // The partial command's headers were consumed into the parser's state; "PI" was not.
        let complete = b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\nPING\r\nset a \"b c\"\n".len();
        assert_eq!(pos, complete + b"*1\r\n$4\r\n".len());
    }

    #[test]
    fn byte_at_a_time_resumes() {
        let input = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nhello\r\n";
        let mut p = RequestParser::new();
        let mut buf = Vec::new();
        let mut pos = 0;
        let mut got = None;
        for &b in input.iter() {
            buf.push(b);
            if let Parsed::Command(c) = p.next(&buf, &mut pos, L).unwrap() {
                got = Some(c);
            }
        }
        assert_eq!(got, Some(v(&["SET", "k", "hello"])));
        assert_eq!(pos, input.len());
    }

    #[test]
    fn redis_error_texts() {
        let e = |i: &[u8]| all(i).1.unwrap_err().0;
        assert_eq!(e(b"*abc\r\n"), "invalid multibulk length");
        assert_eq!(e(b"*3000000000\r\n"), "invalid multibulk length");
        assert_eq!(e(b"*1\r\nx\r\n"), "expected '$', got 'x'");
        assert_eq!(e(b"*1\r\n$-1\r\n"), "invalid bulk length");
        assert_eq!(e(b"*1\r\n$600000000\r\n"), "invalid bulk length");
        assert_eq!(e(b"set \"a\n"), "unbalanced quotes in request");
        assert_eq!(e(b"set \"a\"b\n"), "unbalanced quotes in request");
        assert_eq!(e(&vec![b'a'; 70_000]), "too big inline request");
        let mut big = b"*".to_vec();
        big.extend(vec![b'1'; 70_000]);
        assert_eq!(e(&big), "too big mbulk count string");
        let mut big = b"*1\r\n$".to_vec();
        big.extend(vec![b'1'; 70_000]);
        assert_eq!(e(&big), "too big bulk count string");
        let mut p = RequestParser::new();
        let strict = ParseLimits {
            auth_required: true,
            ..L
        };
        assert_eq!(
            p.next(b"*11\r\n", &mut 0, strict).unwrap_err().0,
            "unauthenticated multibulk length"
        );
        let mut p = RequestParser::new();
        assert_eq!(
            p.next(b"*1\r\n$16385\r\n", &mut 0, strict).unwrap_err().0,
            "unauthenticated bulk length"
        );
    }

    #[test]
    fn huge_declared_bulk_allocates_nothing_ahead() {
        let mut p = RequestParser::new();
        let mut pos = 0;
        let r = p.next(b"*1\r\n$536870912\r\nab", &mut pos, L).unwrap();
        assert_eq!(r, Parsed::Incomplete);
        assert_eq!(p.awaiting_bulk(), Some(536_870_912));
        assert!(p.args.capacity() <= 1);
    }

    #[test]
    fn empty_commands() {
        let (cmds, r, _) = all(b"*0\r\n*-1\r\n\r\n   \n");
        assert_eq!(r, Ok(()));
        assert!(cmds.iter().all(|c| c.is_empty()));
        assert_eq!(cmds.len(), 4);
    }

    #[test]
    fn split_args_like_sdssplitargs() {
        assert_eq!(
            split_args(br#"a "b\x41\n" 'c\'d'"#).unwrap(),
            vec![b"a".to_vec(), b"bA\n".to_vec(), b"c'd".to_vec()]
        );
        assert_eq!(split_args(b"   ").unwrap(), Vec::<Vec<u8>>::new());
        assert!(split_args(b"'abc").is_none());
    }

    #[test]
    fn string2ll_is_strict() {
        assert_eq!(string2ll(b"0"), Some(0));
        assert_eq!(string2ll(b"-5"), Some(-5));
        assert_eq!(string2ll(b"01"), None);
        assert_eq!(string2ll(b"+1"), None);
        assert_eq!(string2ll(b" 1"), None);
        assert_eq!(string2ll(b"-9223372036854775808"), Some(i64::MIN));
        assert_eq!(string2ll(b"9223372036854775808"), None);
    }
}
