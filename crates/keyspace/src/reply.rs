//! Command replies, encoded as RESP2 exactly as redis-server 7.0 sends them.
//!
//! Problem: handlers must produce byte-identical replies to Redis 7.0 (the differential tests
//! compare them), including error texts and the formatting of doubles. The RESP2 framing is the
//! one of the Redis protocol specification (<https://redis.io/docs/reference/protocol-spec/>);
//! doubles follow `addReplyDouble` of Redis 7.0 (`%.17g`, `inf`/`-inf`).

use std::borrow::Cow;

/// A RESP2 reply.
#[derive(Clone, Debug, PartialEq)]
pub enum Reply {
    /// A simple string, e.g. `+OK`.
    Status(Cow<'static, str>),
    /// An error, its full text including the code, e.g. `ERR syntax error`.
    Error(Cow<'static, str>),
    /// An integer (`:n`).
    Integer(i64),
    /// A bulk string.
    Bulk(Vec<u8>),
    /// The null bulk string (`$-1`).
    Nil,
    /// The null array (`*-1`).
    NilArray,
    /// An array of replies.
    Array(Vec<Reply>),
}

impl Reply {
    /// `+OK`.
    pub fn ok() -> Reply {
        Reply::Status(Cow::Borrowed("OK"))
    }
    /// The WRONGTYPE error.
    pub fn wrong_type() -> Reply {
        Reply::Error(Cow::Borrowed(
            "WRONGTYPE Operation against a key holding the wrong kind of value",
        ))
    }
    /// `ERR syntax error`.
    pub fn syntax_error() -> Reply {
        Reply::Error(Cow::Borrowed("ERR syntax error"))
    }
    /// `ERR value is not an integer or out of range`.
    pub fn not_integer() -> Reply {
        Reply::Error(Cow::Borrowed("ERR value is not an integer or out of range"))
    }
    /// `ERR value is not a valid float`.
    pub fn not_float() -> Reply {
        Reply::Error(Cow::Borrowed("ERR value is not a valid float"))
    }
    /// `ERR no such key`.
    pub fn no_such_key() -> Reply {
        Reply::Error(Cow::Borrowed("ERR no such key"))
    }
    /// An error with the given full text (include the code, e.g. `"ERR ..."`).
    pub fn err(msg: impl Into<Cow<'static, str>>) -> Reply {
        Reply::Error(msg.into())
    }
    /// A bulk string from anything byte-like.
    pub fn bulk(b: impl Into<Vec<u8>>) -> Reply {
        Reply::Bulk(b.into())
    }
    /// A double as Redis 7.0 replies it in RESP2: a bulk string formatted with `%.17g`, `inf`
    /// and `-inf` for infinities.
    pub fn bulk_f64(d: f64) -> Reply {
        Reply::Bulk(crate::convert::format_double_g17(d).into_bytes())
    }
    /// True for an error reply.
    pub fn is_error(&self) -> bool {
        matches!(self, Reply::Error(_))
    }

    /// Append the RESP2 encoding of the reply to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Reply::Status(s) => {
                out.push(b'+');
                out.extend_from_slice(s.as_bytes());
                out.extend_from_slice(b"\r\n");
            }
            Reply::Error(s) => {
                out.push(b'-');
                out.extend_from_slice(s.as_bytes());
                out.extend_from_slice(b"\r\n");
            }
            Reply::Integer(n) => {
                out.push(b':');
                out.extend_from_slice(n.to_string().as_bytes());
                out.extend_from_slice(b"\r\n");
            }
            Reply::Bulk(b) => {
                out.push(b'$');
                out.extend_from_slice(b.len().to_string().as_bytes());
                out.extend_from_slice(b"\r\n");
                out.extend_from_slice(b);
                out.extend_from_slice(b"\r\n");
            }
            Reply::Nil => out.extend_from_slice(b"$-1\r\n"),
            Reply::NilArray => out.extend_from_slice(b"*-1\r\n"),
            Reply::Array(items) => {
                out.push(b'*');
                out.extend_from_slice(items.len().to_string().as_bytes());
                out.extend_from_slice(b"\r\n");
                for i in items {
                    i.encode(out);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(r: &Reply) -> Vec<u8> {
        let mut v = Vec::new();
        r.encode(&mut v);
        v
    }

    #[test]
    fn encodes_resp2() {
        assert_eq!(enc(&Reply::ok()), b"+OK\r\n");
        assert_eq!(enc(&Reply::syntax_error()), b"-ERR syntax error\r\n");
        assert_eq!(enc(&Reply::Integer(-3)), b":-3\r\n");
        assert_eq!(enc(&Reply::bulk("ab")), b"$2\r\nab\r\n");
        assert_eq!(enc(&Reply::Nil), b"$-1\r\n");
        assert_eq!(enc(&Reply::NilArray), b"*-1\r\n");
        assert_eq!(
            enc(&Reply::Array(vec![Reply::Integer(1), Reply::Nil])),
            b"*2\r\n:1\r\n$-1\r\n"
        );
    }

    #[test]
    fn doubles_like_redis_7_0() {
        // Observed on redis-server 7.0.15: ZADD z 0.1 m; ZSCORE z m.
        assert_eq!(Reply::bulk_f64(0.1), Reply::bulk("0.10000000000000001"));
        assert_eq!(Reply::bulk_f64(1e20), Reply::bulk("1e+20"));
        assert_eq!(
            Reply::bulk_f64(123456789012345678.0),
            Reply::bulk("1.2345678901234568e+17")
        );
        assert_eq!(Reply::bulk_f64(1.5), Reply::bulk("1.5"));
        assert_eq!(Reply::bulk_f64(f64::INFINITY), Reply::bulk("inf"));
        assert_eq!(Reply::bulk_f64(f64::NEG_INFINITY), Reply::bulk("-inf"));
        assert_eq!(Reply::bulk_f64(3.0), Reply::bulk("3"));
        assert_eq!(Reply::bulk_f64(-0.0), Reply::bulk("-0"));
        assert_eq!(Reply::bulk_f64(1e-5), Reply::bulk("1.0000000000000001e-05"));
        assert_eq!(Reply::bulk_f64(0.0001), Reply::bulk("0.0001"));
    }
}
