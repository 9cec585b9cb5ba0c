//! Decimal integers as RESP spells them: formatting without `format!`, strict parsing of the
//! numbers in header lines (`*<count>`, `$<len>`, `:<int>`), and CRLF line scanning.

use crate::error::RespError;

/// Longest header line we accept before its CRLF: a type byte, a sign and 19 digits of an i64,
/// plus slack for leading zeros. Anything longer without a CRLF is malformed.
pub(crate) const MAX_HEADER_LINE: usize = 32;

/// Format `v` into the tail of `buf`, returning the used suffix.
pub(crate) fn fmt_u64(mut v: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    &buf[i..]
}

/// Result of looking for a header line at some offset.
pub(crate) enum Line {
    /// The line's content (between the type byte and CRLF) spans `start..end`; the next item
    /// starts at `next`.
    Found {
        start: usize,
        end: usize,
        next: usize,
    },
    /// No CRLF yet.
    Incomplete,
}

/// Find the CRLF-terminated header line starting at `at` (where the type byte is). A lone LF,
/// or a line longer than [`MAX_HEADER_LINE`], is a protocol error.
pub(crate) fn header_line(buf: &[u8], at: usize) -> Result<Line, RespError> {
    let limit = buf.len().min(at + MAX_HEADER_LINE);
    let window = &buf[at..limit];
    match window.iter().position(|&b| b == b'\n') {
        Some(i) => {
            let lf = at + i;
            if i == 0 || buf[lf - 1] != b'\r' {
                return Err(RespError::protocol(lf, "line ends with LF instead of CRLF"));
            }
            Ok(Line::Found {
                start: at + 1,
                end: lf - 1,
                next: lf + 1,
            })
        }
        None if limit - at >= MAX_HEADER_LINE => Err(RespError::protocol(
            at,
            format!("header line longer than {MAX_HEADER_LINE} bytes without CRLF"),
        )),
        None => Ok(Line::Incomplete),
    }
}

/// Parse a signed decimal integer: an optional `-`, then one or more ASCII digits, nothing else.
/// `None` on anything else or on i64 overflow.
pub(crate) fn parse_i64(s: &[u8]) -> Option<i64> {
    let (neg, digits) = match s.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, s),
    };
    if digits.is_empty() {
        return None;
    }
    let mut v: i64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        let d = i64::from(d - b'0');
        v = v.checked_mul(10)?;
        v = if neg {
            v.checked_sub(d)?
        } else {
            v.checked_add(d)?
        };
    }
    Some(v)
}

/// Parse a length or count line: `-1` gives `Ok(None)` when `allow_null`, any other value must
/// lie in `0..=max`.
pub(crate) fn parse_len(
    s: &[u8],
    offset: usize,
    what: &str,
    max: usize,
    allow_null: bool,
) -> Result<Option<usize>, RespError> {
    let v = parse_i64(s).ok_or_else(|| {
        RespError::protocol(
            offset,
            format!("invalid {what} {:?}", String::from_utf8_lossy(s)),
        )
    })?;
    if v == -1 && allow_null {
        return Ok(None);
    }
    if v < 0 {
        return Err(RespError::protocol(offset, format!("negative {what} {v}")));
    }
    match usize::try_from(v) {
        Ok(n) if n <= max => Ok(Some(n)),
        _ => Err(RespError::protocol(
            offset,
            format!("{what} {v} exceeds the maximum {max}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_parses_integers() {
        for v in [0u64, 1, 9, 10, 99, 100, 12345, u64::MAX] {
            let mut b = [0u8; 20];
            assert_eq!(fmt_u64(v, &mut b), v.to_string().as_bytes());
        }
        for v in [0i64, -1, 42, i64::MIN, i64::MAX] {
            assert_eq!(parse_i64(v.to_string().as_bytes()), Some(v));
        }
        for bad in [
            &b""[..],
            b"-",
            b"+1",
            b" 1",
            b"1 ",
            b"9223372036854775808",
            b"1a",
            b"--1",
        ] {
            assert_eq!(parse_i64(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn header_lines() {
        assert!(matches!(
            header_line(b"*12\r\nx", 0),
            Ok(Line::Found {
                start: 1,
                end: 3,
                next: 5
            })
        ));
        assert!(matches!(header_line(b"*12\r", 0), Ok(Line::Incomplete)));
        assert!(matches!(
            header_line(b"*12\n", 0),
            Err(RespError::Protocol { offset: 3, .. })
        ));
        let long = [b'1'; 40];
        assert!(matches!(
            header_line(&long, 0),
            Err(RespError::Protocol { offset: 0, .. })
        ));
    }
}
