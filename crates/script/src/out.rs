//! What a script returns to its caller: a RESP3-capable reply.
//!
//! Problem: the keyspace's [`Reply`] is RESP2-shaped, but a script that called
//! `redis.setresp(3)` may return maps, sets, doubles, booleans, big numbers and verbatim
//! strings (Redis 7.0 `luaReplyToRedisReply`, `script_lua.c`). [`Out`] is that superset; the
//! server encodes it for the caller's protocol (RESP2 flattens maps to arrays and doubles to
//! bulk strings, as Redis does).

use forkless_keyspace::Reply;

/// A script's reply (or the reply of a scripting command).
#[derive(Clone, Debug, PartialEq)]
pub enum Out {
    /// `+status`.
    Status(String),
    /// `-ERR ...` (the full text, code included).
    Error(String),
    /// `:n`.
    Int(i64),
    /// A bulk string.
    Bulk(Vec<u8>),
    /// The null (`$-1` in RESP2, `_` in RESP3).
    Null,
    /// The null array (`*-1` in RESP2, `_` in RESP3).
    NullArray,
    /// An array.
    Array(Vec<Out>),
    /// A map (RESP3; a flat array in RESP2).
    Map(Vec<(Out, Out)>),
    /// A set (RESP3; an array in RESP2).
    Set(Vec<Out>),
    /// A double (RESP3; a bulk string in RESP2).
    Double(f64),
    /// A boolean (RESP3; `:1`/`:0` in RESP2).
    Bool(bool),
    /// A big number (RESP3; a bulk string in RESP2).
    BigNum(String),
    /// A verbatim string: format (3 bytes) and text (RESP3; a bulk string in RESP2).
    Verbatim(String, Vec<u8>),
}

impl Out {
    /// An error reply from its full text.
    pub fn err(msg: impl Into<String>) -> Out {
        Out::Error(msg.into())
    }

    /// `+OK`.
    pub fn ok() -> Out {
        Out::Status("OK".into())
    }

    /// True for an error.
    pub fn is_error(&self) -> bool {
        matches!(self, Out::Error(_))
    }
}

impl From<Reply> for Out {
    fn from(r: Reply) -> Out {
        match r {
            Reply::Status(s) => Out::Status(s.into_owned()),
            Reply::Error(s) => Out::Error(s.into_owned()),
            Reply::Integer(n) => Out::Int(n),
            Reply::Bulk(b) => Out::Bulk(b),
            Reply::Nil => Out::Null,
            Reply::NilArray => Out::NullArray,
            Reply::Array(items) => Out::Array(items.into_iter().map(Out::from).collect()),
        }
    }
}

impl Out {
    /// The RESP2 form as a keyspace [`Reply`] (maps flattened, doubles as bulk strings `%.17g`,
    /// booleans `:1`/`:0`, big numbers and verbatim strings as bulk strings): what an embedder
    /// calling `Engine::execute` gets.
    pub fn into_reply(self) -> Reply {
        match self {
            Out::Status(s) => Reply::Status(s.into()),
            Out::Error(s) => Reply::Error(s.into()),
            Out::Int(n) => Reply::Integer(n),
            Out::Bulk(b) => Reply::Bulk(b),
            Out::Null => Reply::Nil,
            Out::NullArray => Reply::NilArray,
            Out::Array(items) | Out::Set(items) => {
                Reply::Array(items.into_iter().map(Out::into_reply).collect())
            }
            Out::Map(pairs) => Reply::Array(
                pairs
                    .into_iter()
                    .flat_map(|(k, v)| [k.into_reply(), v.into_reply()])
                    .collect(),
            ),
            Out::Double(d) => Reply::bulk_f64(d),
            Out::Bool(b) => Reply::Integer(b as i64),
            Out::BigNum(s) => Reply::Bulk(s.into_bytes()),
            Out::Verbatim(_, b) => Reply::Bulk(b),
        }
    }
}
