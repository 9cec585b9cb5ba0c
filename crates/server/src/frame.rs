//! Replies on the wire: RESP2 and RESP3 encodings of one reply type.
//!
//! Problem: the keyspace's handlers produce RESP2-shaped [`Reply`]s, while a client that said
//! `HELLO 3` expects RESP3 types where Redis 7.0 sends them: maps (HGETALL, CONFIG GET, HELLO),
//! sets (SMEMBERS, SUNION...), doubles (ZSCORE, ZINCRBY, WITHSCORES pairs), the null `_`, and
//! out-of-band pushes (pub/sub messages). [`Frame`] is the superset; [`Frame::encode`] writes
//! either protocol (RESP2 flattens maps to arrays, doubles to bulk strings, pushes to arrays,
//! as Redis's `addReplyMapLen`/`addReplyDouble`/`addReplyPushLen` do); [`resp3_shape`] turns a
//! keyspace reply into the RESP3 shape of the command that produced it.
//!
//! Formats: <https://github.com/redis/redis-specifications/blob/master/protocol/RESP3.md>.

use std::borrow::Cow;

use forkless_keyspace::convert::{format_double_g17, parse_f64};
use forkless_keyspace::Reply;

/// The protocol a client speaks (`HELLO 2|3`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proto {
    /// RESP2 (the default).
    Resp2,
    /// RESP3.
    Resp3,
}

/// A reply in RESP3's vocabulary.
#[derive(Clone, Debug, PartialEq)]
pub enum Frame {
    /// `+text`
    Simple(Cow<'static, str>),
    /// `-text` (the full text, code included)
    Error(Cow<'static, str>),
    /// `:n`
    Int(i64),
    /// `$len\r\nbytes`
    Bulk(Vec<u8>),
    /// The null bulk (`$-1` in RESP2, `_` in RESP3).
    Null,
    /// The null array (`*-1` in RESP2, `_` in RESP3).
    NullArray,
    /// `*n`
    Array(Vec<Frame>),
    /// `%n` (a flat array of 2n in RESP2)
    Map(Vec<(Frame, Frame)>),
    /// `~n` (an array in RESP2)
    Set(Vec<Frame>),
    /// `,d` (a bulk string `%.17g` in RESP2)
    Double(f64),
    /// `,text`: a double already formatted (a bulk string in RESP2), e.g. the `%.17Lf`-style
    /// coordinates of `addReplyHumanLongDouble` (GEOPOS, WITHCOORD)
    HumanDouble(String),
    /// `>n` (an array in RESP2)
    Push(Vec<Frame>),
    /// `=len\r\ntxt:bytes` (a bulk string in RESP2)
    Verbatim(Vec<u8>),
    /// `#t`/`#f` (`:1`/`:0` in RESP2)
    Bool(bool),
    /// `(digits` (a bulk string in RESP2)
    BigNum(String),
    /// `|n` attributes before a reply (nothing in RESP2)
    Attr(Vec<(Frame, Frame)>),
    /// Several frames sent back to back as one command's output (attribute or push + reply).
    Seq(Vec<Frame>),
}

impl Frame {
    /// `+OK`
    pub fn ok() -> Frame {
        Frame::Simple(Cow::Borrowed("OK"))
    }
    /// An error with its full text.
    pub fn err(s: impl Into<Cow<'static, str>>) -> Frame {
        Frame::Error(s.into())
    }
    /// A bulk string.
    pub fn bulk(b: impl Into<Vec<u8>>) -> Frame {
        Frame::Bulk(b.into())
    }
    /// True for an error.
    pub fn is_error(&self) -> bool {
        matches!(self, Frame::Error(_))
    }

    /// Append the encoding of this frame in `proto` to `out`.
    pub fn encode(&self, proto: Proto, out: &mut Vec<u8>) {
        let r3 = proto == Proto::Resp3;
        match self {
            Frame::Simple(s) => line(out, b'+', s.as_bytes()),
            Frame::Error(s) => line(out, b'-', s.as_bytes()),
            Frame::Int(n) => line(out, b':', n.to_string().as_bytes()),
            Frame::Bulk(b) => bulk(out, b),
            Frame::Null if r3 => out.extend_from_slice(b"_\r\n"),
            Frame::Null => out.extend_from_slice(b"$-1\r\n"),
            Frame::NullArray if r3 => out.extend_from_slice(b"_\r\n"),
            Frame::NullArray => out.extend_from_slice(b"*-1\r\n"),
            Frame::Array(items) => aggregate(out, b'*', items, proto),
            Frame::Set(items) => aggregate(out, if r3 { b'~' } else { b'*' }, items, proto),
            Frame::Push(items) => aggregate(out, if r3 { b'>' } else { b'*' }, items, proto),
            Frame::Map(pairs) => {
                if r3 {
                    line(out, b'%', pairs.len().to_string().as_bytes());
                } else {
                    line(out, b'*', (pairs.len() * 2).to_string().as_bytes());
                }
                for (k, v) in pairs {
                    k.encode(proto, out);
                    v.encode(proto, out);
                }
            }
            Frame::Double(d) => {
                let s = format_double_g17(*d);
                if r3 {
                    let s = if d.is_nan() { "nan".to_string() } else { s };
                    line(out, b',', s.as_bytes());
                } else {
                    bulk(out, s.as_bytes());
                }
            }
            Frame::HumanDouble(s) if r3 => line(out, b',', s.as_bytes()),
            Frame::HumanDouble(s) => bulk(out, s.as_bytes()),
            Frame::Bool(b) if r3 => line(out, b'#', if *b { b"t" } else { b"f" }),
            Frame::Bool(b) => line(out, b':', if *b { b"1" } else { b"0" }),
            Frame::BigNum(n) if r3 => line(out, b'(', n.as_bytes()),
            Frame::BigNum(n) => bulk(out, n.as_bytes()),
            Frame::Seq(frames) => {
                for f in frames {
                    f.encode(proto, out);
                }
            }
            Frame::Attr(pairs) => {
                if r3 {
                    line(out, b'|', pairs.len().to_string().as_bytes());
                    for (k, v) in pairs {
                        k.encode(proto, out);
                        v.encode(proto, out);
                    }
                }
            }
            Frame::Verbatim(b) => {
                if r3 {
                    line(out, b'=', (b.len() + 4).to_string().as_bytes());
                    out.extend_from_slice(b"txt:");
                    out.extend_from_slice(b);
                    out.extend_from_slice(b"\r\n");
                } else {
                    bulk(out, b);
                }
            }
        }
    }
}

fn line(out: &mut Vec<u8>, tag: u8, body: &[u8]) {
    out.push(tag);
    out.extend_from_slice(body);
    out.extend_from_slice(b"\r\n");
}

fn bulk(out: &mut Vec<u8>, b: &[u8]) {
    line(out, b'$', b.len().to_string().as_bytes());
    out.extend_from_slice(b);
    out.extend_from_slice(b"\r\n");
}

fn aggregate(out: &mut Vec<u8>, tag: u8, items: &[Frame], proto: Proto) {
    line(out, tag, items.len().to_string().as_bytes());
    for i in items {
        i.encode(proto, out);
    }
}

impl From<Reply> for Frame {
    fn from(r: Reply) -> Frame {
        match r {
            Reply::Status(s) => Frame::Simple(s),
            Reply::Error(s) => Frame::Error(s),
            Reply::Integer(n) => Frame::Int(n),
            Reply::Bulk(b) => Frame::Bulk(b),
            Reply::Nil => Frame::Null,
            Reply::NilArray => Frame::NullArray,
            Reply::Array(items) => Frame::Array(items.into_iter().map(Frame::from).collect()),
        }
    }
}

impl From<forkless_script::Out> for Frame {
    /// A script's reply (RESP3-capable) as a frame. A verbatim string keeps its text; its
    /// format is sent as `txt`.
    fn from(o: forkless_script::Out) -> Frame {
        use forkless_script::Out;
        match o {
            // A line reply must not carry CR/LF (Redis's addReplyErrorLength/addReplyStatus).
            Out::Status(s) => Frame::Simple(s.replace(['\r', '\n'], " ").into()),
            Out::Error(s) => Frame::Error(s.replace(['\r', '\n'], " ").into()),
            Out::Int(n) => Frame::Int(n),
            Out::Bulk(b) => Frame::Bulk(b),
            Out::Null => Frame::Null,
            Out::NullArray => Frame::NullArray,
            Out::Array(items) => Frame::Array(items.into_iter().map(Frame::from).collect()),
            Out::Set(items) => Frame::Set(items.into_iter().map(Frame::from).collect()),
            Out::Map(pairs) => Frame::Map(
                pairs
                    .into_iter()
                    .map(|(k, v)| (Frame::from(k), Frame::from(v)))
                    .collect(),
            ),
            Out::Double(d) => Frame::Double(d),
            Out::Bool(b) => Frame::Bool(b),
            Out::BigNum(n) => Frame::BigNum(n),
            Out::Verbatim(_, b) => Frame::Verbatim(b),
        }
    }
}

fn double_of(f: Frame) -> Frame {
    match f {
        Frame::Bulk(b) => match parse_f64(&b) {
            Some(d) => Frame::Double(d),
            None => Frame::Bulk(b),
        },
        other => other,
    }
}

fn pairs(items: Vec<Frame>, score: bool) -> Vec<(Frame, Frame)> {
    let mut out = Vec::with_capacity(items.len() / 2);
    let mut it = items.into_iter();
    while let (Some(k), Some(v)) = (it.next(), it.next()) {
        out.push((k, if score { double_of(v) } else { v }));
    }
    out
}

fn has_arg(argv: &[Vec<u8>], word: &[u8]) -> bool {
    argv.iter().skip(1).any(|a| a.eq_ignore_ascii_case(word))
}

/// The RESP3 shape of `cmd`'s reply (`cmd` lowercase), as Redis 7.0 builds it: what RESP2 sends
/// as flat arrays and bulk strings becomes maps, sets, doubles and `[member, score]` pairs.
pub fn resp3_shape(cmd: &str, argv: &[Vec<u8>], reply: Reply) -> Frame {
    let f = Frame::from(reply);
    if f.is_error() {
        return f;
    }
    match (cmd, f) {
        ("hgetall", Frame::Array(items)) => Frame::Map(pairs(items, false)),
        // LCS IDX: `matches` and `len` as a map (addReplyMapLen in lcsCommand).
        ("lcs", Frame::Array(items)) if argv.iter().any(|a| a.eq_ignore_ascii_case(b"idx")) => {
            Frame::Map(pairs(items, false))
        }
        ("smembers" | "sunion" | "sinter" | "sdiff", Frame::Array(items)) => Frame::Set(items),
        ("zscore" | "zincrby", f) => double_of(f),
        ("zadd", f) if has_arg(argv, b"incr") => double_of(f),
        ("zmscore", Frame::Array(items)) => {
            Frame::Array(items.into_iter().map(double_of).collect())
        }
        ("zpopmin" | "zpopmax", Frame::Array(items)) => {
            if argv.len() > 2 {
                let p = pairs(items, true);
                Frame::Array(
                    p.into_iter()
                        .map(|(m, s)| Frame::Array(vec![m, s]))
                        .collect(),
                )
            } else {
                let mut p = pairs(items, true);
                match p.pop() {
                    Some((m, s)) => Frame::Array(vec![m, s]),
                    None => Frame::Array(Vec::new()),
                }
            }
        }
        // ZMPOP: [key, [[member, score], ...]] with the scores as doubles.
        ("zmpop", Frame::Array(mut items)) if items.len() == 2 => {
            if let Some(Frame::Array(popped)) = items.pop() {
                let popped = popped
                    .into_iter()
                    .map(|p| match p {
                        Frame::Array(mut ms) if ms.len() == 2 => {
                            let s = ms.pop().map(double_of).unwrap_or(Frame::Null);
                            ms.push(s);
                            Frame::Array(ms)
                        }
                        other => other,
                    })
                    .collect();
                items.push(Frame::Array(popped));
            }
            Frame::Array(items)
        }
        // HRANDFIELD key count WITHVALUES: [[field, value], ...]; ZRANDMEMBER key count
        // WITHSCORES: [[member, score], ...] with the scores as doubles (the flag counts only as
        // the fourth argument: a key may be named "withvalues").
        ("hrandfield" | "zrandmember", Frame::Array(items))
            if argv.len() == 4
                && argv[3].eq_ignore_ascii_case(if cmd == "hrandfield" {
                    b"withvalues"
                } else {
                    b"withscores"
                }) =>
        {
            let p = pairs(items, cmd == "zrandmember");
            Frame::Array(
                p.into_iter()
                    .map(|(m, s)| Frame::Array(vec![m, s]))
                    .collect(),
            )
        }
        (
            "zrange" | "zrevrange" | "zrangebyscore" | "zrevrangebyscore" | "zunion" | "zinter"
            | "zdiff",
            Frame::Array(items),
        ) if has_arg(argv, b"withscores") => {
            let p = pairs(items, true);
            Frame::Array(
                p.into_iter()
                    .map(|(m, s)| Frame::Array(vec![m, s]))
                    .collect(),
            )
        }
        // Coordinates are RESP3 doubles printed as addReplyHumanLongDouble does.
        ("geopos", Frame::Array(items)) => Frame::Array(items.into_iter().map(coords).collect()),
        (
            "georadius"
            | "georadiusbymember"
            | "georadius_ro"
            | "georadiusbymember_ro"
            | "geosearch",
            Frame::Array(items),
        ) if has_arg(argv, b"withcoord") => Frame::Array(
            items
                .into_iter()
                .map(|item| match item {
                    Frame::Array(parts) => Frame::Array(parts.into_iter().map(coords).collect()),
                    other => other,
                })
                .collect(),
        ),
        // XREAD/XREADGROUP: a map of key -> entries.
        ("xread" | "xreadgroup", Frame::Array(items)) => Frame::Map(
            items
                .into_iter()
                .map(|kv| match kv {
                    Frame::Array(mut p) if p.len() == 2 => {
                        let v = p.pop().unwrap_or(Frame::Null);
                        let k = p.pop().unwrap_or(Frame::Null);
                        (k, v)
                    }
                    other => (other, Frame::Null),
                })
                .collect(),
        ),
        ("xinfo", f) => {
            let sub = argv.get(1).map(|s| s.to_ascii_lowercase());
            match (sub.as_deref(), f) {
                (Some(b"stream"), Frame::Array(items)) => xinfo_stream_map(items),
                (Some(b"groups" | b"consumers"), Frame::Array(items)) => {
                    Frame::Array(items.into_iter().map(flat_map).collect())
                }
                (_, f) => f,
            }
        }
        (_, f) => f,
    }
}

/// A `[longitude, latitude]` pair of bulk strings as human-formatted doubles.
fn coords(f: Frame) -> Frame {
    match f {
        Frame::Array(xy) => Frame::Array(
            xy.into_iter()
                .map(|c| match c {
                    Frame::Bulk(b) => Frame::HumanDouble(String::from_utf8_lossy(&b).into_owned()),
                    other => other,
                })
                .collect(),
        ),
        other => other,
    }
}

/// A flat `[name, value, ...]` array as a map (anything else unchanged).
fn flat_map(f: Frame) -> Frame {
    match f {
        Frame::Array(items) => Frame::Map(pairs(items, false)),
        other => other,
    }
}

/// XINFO STREAM [FULL]: the top level is a map; with FULL each group is a map and each group's
/// consumers are maps.
fn xinfo_stream_map(items: Vec<Frame>) -> Frame {
    let mut p = pairs(items, false);
    for (k, v) in p.iter_mut() {
        if matches!(k, Frame::Bulk(b) if b == b"groups") && matches!(v, Frame::Array(_)) {
            if let Frame::Array(groups) = std::mem::replace(v, Frame::Null) {
                *v = Frame::Array(
                    groups
                        .into_iter()
                        .map(|g| {
                            let mut gp = match g {
                                Frame::Array(items) => pairs(items, false),
                                other => return other,
                            };
                            for (gk, gv) in gp.iter_mut() {
                                if matches!(gk, Frame::Bulk(b) if b == b"consumers") {
                                    if let Frame::Array(cs) = std::mem::replace(gv, Frame::Null) {
                                        *gv = Frame::Array(cs.into_iter().map(flat_map).collect());
                                    }
                                }
                            }
                            Frame::Map(gp)
                        })
                        .collect(),
                );
            }
        }
    }
    Frame::Map(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(f: &Frame, p: Proto) -> Vec<u8> {
        let mut v = Vec::new();
        f.encode(p, &mut v);
        v
    }

    #[test]
    fn resp2_and_resp3() {
        let m = Frame::Map(vec![(Frame::bulk("a"), Frame::Int(1))]);
        assert_eq!(enc(&m, Proto::Resp2), b"*2\r\n$1\r\na\r\n:1\r\n");
        assert_eq!(enc(&m, Proto::Resp3), b"%1\r\n$1\r\na\r\n:1\r\n");
        assert_eq!(enc(&Frame::Null, Proto::Resp3), b"_\r\n");
        assert_eq!(enc(&Frame::NullArray, Proto::Resp2), b"*-1\r\n");
        assert_eq!(enc(&Frame::Double(1.5), Proto::Resp3), b",1.5\r\n");
        assert_eq!(enc(&Frame::Double(1.5), Proto::Resp2), b"$3\r\n1.5\r\n");
        assert_eq!(
            enc(&Frame::Double(f64::INFINITY), Proto::Resp3),
            b",inf\r\n"
        );
        let p = Frame::Push(vec![Frame::bulk("message")]);
        assert_eq!(enc(&p, Proto::Resp3), b">1\r\n$7\r\nmessage\r\n");
        assert_eq!(
            enc(&Frame::Set(vec![Frame::Int(1)]), Proto::Resp3),
            b"~1\r\n:1\r\n"
        );
        assert_eq!(
            enc(&Frame::Verbatim(b"x".to_vec()), Proto::Resp3),
            b"=5\r\ntxt:x\r\n"
        );
    }

    #[test]
    fn shapes_like_redis() {
        let argv = vec![
            b"zrange".to_vec(),
            b"z".to_vec(),
            b"0".to_vec(),
            b"-1".to_vec(),
            b"WITHSCORES".to_vec(),
        ];
        let r = Reply::Array(vec![Reply::bulk("m"), Reply::bulk("1.5")]);
        assert_eq!(
            resp3_shape("zrange", &argv, r),
            Frame::Array(vec![Frame::Array(vec![
                Frame::bulk("m"),
                Frame::Double(1.5)
            ])])
        );
        let r = Reply::Array(vec![Reply::bulk("f"), Reply::bulk("v")]);
        assert_eq!(
            resp3_shape("hgetall", &[], r),
            Frame::Map(vec![(Frame::bulk("f"), Frame::bulk("v"))])
        );
    }

    #[test]
    fn randfield_shapes_like_redis() {
        let argv =
            |v: &[&str]| -> Vec<Vec<u8>> { v.iter().map(|a| a.as_bytes().to_vec()).collect() };
        let shaped =
            |cmd: &str, a: &[&str], r: Reply| enc(&resp3_shape(cmd, &argv(a), r), Proto::Resp3);
        // Bytes redis-server 7.0.15 sends after HELLO 3 (HSET h f v; ZADD z 1.5 m).
        let r = Reply::Array(vec![Reply::bulk("f"), Reply::bulk("v")]);
        assert_eq!(
            shaped("hrandfield", &["HRANDFIELD", "h", "1", "WITHVALUES"], r),
            b"*1\r\n*2\r\n$1\r\nf\r\n$1\r\nv\r\n"
        );
        let r = Reply::Array(vec![
            Reply::bulk("m"),
            Reply::bulk("1.5"),
            Reply::bulk("m"),
            Reply::bulk("1.5"),
        ]);
        assert_eq!(
            shaped("zrandmember", &["ZRANDMEMBER", "z", "-2", "withscores"], r),
            b"*2\r\n*2\r\n$1\r\nm\r\n,1.5\r\n*2\r\n$1\r\nm\r\n,1.5\r\n"
        );
        let r = Reply::Array(vec![Reply::bulk("m")]);
        assert_eq!(
            shaped("zrandmember", &["ZRANDMEMBER", "z", "2"], r),
            b"*1\r\n$1\r\nm\r\n"
        );
        // A key named like the flag is not the flag.
        let r = Reply::Array(vec![Reply::bulk("a"), Reply::bulk("b")]);
        assert_eq!(
            shaped("hrandfield", &["HRANDFIELD", "withvalues", "2"], r),
            b"*2\r\n$1\r\na\r\n$1\r\nb\r\n"
        );
    }
}
