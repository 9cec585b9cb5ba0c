//! Encoding commands as RESP multibulks into a caller-owned buffer.
//!
//! A command is `*<argc>\r\n` followed by one `$<len>\r\n<bytes>\r\n` per argument (RESP2,
//! <https://redis.io/docs/latest/develop/reference/protocol-spec/#bulk-strings>); this is also
//! exactly what Redis appends to an AOF (`catAppendOnlyGenericCommand` in Redis's `aof.c`).
//! Nothing here allocates per argument: integers are formatted on the stack and bytes are
//! appended to the one output `Vec`.

use crate::num::fmt_u64;

/// Append the decimal text of `v` to `out`.
pub fn write_u64(out: &mut Vec<u8>, v: u64) {
    let mut b = [0u8; 20];
    out.extend_from_slice(fmt_u64(v, &mut b));
}

/// Append the decimal text of `v` (with a leading `-` when negative) to `out`.
pub fn write_i64(out: &mut Vec<u8>, v: i64) {
    if v < 0 {
        out.push(b'-');
    }
    write_u64(out, v.unsigned_abs());
}

fn write_header(out: &mut Vec<u8>, type_byte: u8, n: usize) {
    out.push(type_byte);
    write_u64(out, n as u64);
    out.extend_from_slice(b"\r\n");
}

/// Append one bulk string, `$<len>\r\n<bytes>\r\n`.
pub fn encode_bulk(out: &mut Vec<u8>, bytes: &[u8]) {
    out.reserve(bytes.len() + 16);
    write_header(out, b'$', bytes.len());
    out.extend_from_slice(bytes);
    out.extend_from_slice(b"\r\n");
}

/// Append an integer reply, `:<v>\r\n`.
pub fn encode_integer(out: &mut Vec<u8>, v: i64) {
    out.push(b':');
    write_i64(out, v);
    out.extend_from_slice(b"\r\n");
}

/// Append the command `argv` as a RESP multibulk of bulk strings.
///
/// ```
/// let mut out = Vec::new();
/// forkless_resp::encode_command(&mut out, &[b"SET", b"k", b"v"]);
/// assert_eq!(out, b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n");
/// ```
pub fn encode_command(out: &mut Vec<u8>, argv: &[&[u8]]) {
    // One reservation for the whole command: payload plus the framing of a typical argument
    // ("$", up to 9 digits for lengths below 1 GB, two CRLFs: 16 bytes).
    let payload: usize = argv.iter().map(|a| a.len() + 16).sum();
    out.reserve(payload + 16);
    encode_command_iter(out, argv.iter().copied());
}

/// Append a command given as any exact-size sequence of byte strings (`Vec<Vec<u8>>`,
/// `&[String]`, an iterator of `&[u8]`, ...).
///
/// ```
/// let mut out = Vec::new();
/// forkless_resp::encode_command_iter(&mut out, vec![String::from("PING")]);
/// assert_eq!(out, b"*1\r\n$4\r\nPING\r\n");
/// ```
pub fn encode_command_iter<I>(out: &mut Vec<u8>, argv: I)
where
    I: IntoIterator,
    I::IntoIter: ExactSizeIterator,
    I::Item: AsRef<[u8]>,
{
    let it = argv.into_iter();
    write_header(out, b'*', it.len());
    for a in it {
        encode_bulk(out, a.as_ref());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_commands_and_integers() {
        let mut out = Vec::new();
        encode_command(&mut out, &[b"SET", b"", b"0123456789"]);
        assert_eq!(out, b"*3\r\n$3\r\nSET\r\n$0\r\n\r\n$10\r\n0123456789\r\n");
        out.clear();
        encode_command_iter(&mut out, [vec![b'x'; 100]]);
        assert_eq!(&out[..10], b"*1\r\n$100\r\n");
        assert_eq!(out.len(), 10 + 100 + 2);
        out.clear();
        for v in [0, -1, i64::MIN, i64::MAX, 1000] {
            out.clear();
            encode_integer(&mut out, v);
            assert_eq!(out, format!(":{v}\r\n").as_bytes());
        }
    }
}
