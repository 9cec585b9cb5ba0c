//! Decoding one key's value, for every value type of RDB versions 1 to 11, into the owned
//! [`Value`] model, with the checks Redis's loader makes (`rdbLoadObject` in Redis `src/rdb.c`,
//! 7.0.15 and 7.2 for type 20) plus deep sanitization of every nested blob.
//!
//! Layouts (lengths are rdb lengths, strings rdb strings, see [`crate::constants`]):
//!
//! ```text
//! STRING (0)                <string>
//! LIST (1) / SET (2)        <n> n x <string>
//! ZSET (3) / ZSET_2 (5)     <n> n x ( <string member> <score: ASCII (3) | f64 LE (5)> )
//! HASH (4)                  <n> n x ( <string field> <string value> )
//! HASH_ZIPMAP (9), LIST_ZIPLIST (10), SET_INTSET (11), ZSET_ZIPLIST (12), HASH_ZIPLIST (13),
//! HASH_LISTPACK (16), ZSET_LISTPACK (17), SET_LISTPACK (20)   <string: the blob>
//! LIST_QUICKLIST (14)       <n nodes> n x <string: ziplist>
//! LIST_QUICKLIST_2 (18)     <n nodes> n x ( <container: 1 plain | 2 packed> <string: element | listpack> )
//! ```
//!
//! Empty collections are reported as [`Decoded::Empty`] (Redis 7.0 skips such keys with a notice);
//! duplicates in a set, zset or hash, an odd element count in a pair blob, and NaN scores are
//! errors, as in Redis.

use std::collections::HashSet;
use std::io::Read;

use super::skip;
use super::source::{parse_double, Source};
use crate::constants::*;
use crate::error::{RdbError, Result};
use crate::listpack::{find_duplicate, BlobError, Elem};
use crate::model::{Bytes, Value};

/// Largest capacity reserved up front from a count read in the file.
const MAX_PREALLOC: u64 = 1024;

/// What a value decoded to.
pub(crate) enum Decoded {
    /// A value of the model.
    Value(Value),
    /// An empty collection: Redis skips the key.
    Empty,
    /// A stream or module value, skipped byte-exactly.
    Skipped(&'static str),
}

struct Ctx<'k> {
    key: &'k [u8],
}

impl Ctx<'_> {
    fn corrupt(&self, offset: u64, what: impl Into<String>) -> RdbError {
        RdbError::Corrupt {
            offset,
            key: Some(self.key.to_vec()),
            what: what.into(),
        }
    }

    fn blob(&self, offset: u64, kind: &str, e: BlobError) -> RdbError {
        self.corrupt(offset, format!("{kind} integrity check failed: {e}"))
    }
}

/// Attach the key to a keyless `Corrupt` error from the primitives.
fn with_key(e: RdbError, key: &[u8]) -> RdbError {
    match e {
        RdbError::Corrupt {
            offset,
            key: None,
            what,
        } => RdbError::Corrupt {
            offset,
            key: Some(key.to_vec()),
            what,
        },
        other => other,
    }
}

fn cap(n: u64) -> usize {
    n.min(MAX_PREALLOC) as usize
}

/// Index of the first repeated item, if any.
fn first_dup<'a>(items: impl ExactSizeIterator<Item = &'a [u8]>) -> Option<usize> {
    let n = items.len();
    let mut seen: HashSet<&[u8]> = HashSet::with_capacity(n);
    for (i, it) in items.enumerate() {
        if !seen.insert(it) {
            return Some(i);
        }
    }
    None
}

/// Read the value of `key`, of type `rdb_type`, from `src`.
pub(crate) fn read_value<R: Read>(
    src: &mut Source<R>,
    rdb_type: u8,
    key: &[u8],
) -> Result<Decoded> {
    read_value_inner(src, rdb_type, &Ctx { key }).map_err(|e| with_key(e, key))
}

fn read_value_inner<R: Read>(src: &mut Source<R>, rdb_type: u8, cx: &Ctx<'_>) -> Result<Decoded> {
    let at = src.offset();
    let v = match rdb_type {
        TYPE_STRING => Value::String(src.read_string("string value")?),
        TYPE_LIST => {
            let n = src.read_len("list length")?;
            if n == 0 {
                return Ok(Decoded::Empty);
            }
            let mut v = Vec::with_capacity(cap(n));
            for _ in 0..n {
                v.push(src.read_string("list element")?);
            }
            Value::List(v)
        }
        TYPE_SET => {
            let n = src.read_len("set size")?;
            if n == 0 {
                return Ok(Decoded::Empty);
            }
            let mut v = Vec::with_capacity(cap(n));
            for _ in 0..n {
                v.push(src.read_string("set member")?);
            }
            if let Some(i) = first_dup(v.iter().map(|m| m.as_slice())) {
                return Err(cx.corrupt(
                    at,
                    format!("duplicate set member {:?}", String::from_utf8_lossy(&v[i])),
                ));
            }
            Value::Set(v)
        }
        TYPE_ZSET | TYPE_ZSET_2 => {
            let n = src.read_len("zset size")?;
            if n == 0 {
                return Ok(Decoded::Empty);
            }
            let mut v: Vec<(Bytes, f64)> = Vec::with_capacity(cap(n));
            for _ in 0..n {
                let m = src.read_string("zset member")?;
                let s_at = src.offset();
                let s = if rdb_type == TYPE_ZSET_2 {
                    src.read_binary_double("zset score")?
                } else {
                    src.read_ascii_double("zset score")?
                };
                if s.is_nan() {
                    return Err(cx.corrupt(s_at, "zset with NaN score"));
                }
                v.push((m, s));
            }
            if let Some(i) = first_dup(v.iter().map(|p| p.0.as_slice())) {
                return Err(cx.corrupt(
                    at,
                    format!(
                        "duplicate zset member {:?}",
                        String::from_utf8_lossy(&v[i].0)
                    ),
                ));
            }
            Value::ZSet(v)
        }
        TYPE_HASH => {
            let n = src.read_len("hash size")?;
            if n == 0 {
                return Ok(Decoded::Empty);
            }
            let mut v: Vec<(Bytes, Bytes)> = Vec::with_capacity(cap(n));
            for _ in 0..n {
                let f = src.read_string("hash field")?;
                let val = src.read_string("hash value")?;
                v.push((f, val));
            }
            if let Some(i) = first_dup(v.iter().map(|p| p.0.as_slice())) {
                return Err(cx.corrupt(
                    at,
                    format!(
                        "duplicate hash field {:?}",
                        String::from_utf8_lossy(&v[i].0)
                    ),
                ));
            }
            Value::Hash(v)
        }
        TYPE_HASH_ZIPMAP => {
            let blob = src.read_string("zipmap blob")?;
            let pairs = crate::zipmap::parse(&blob).map_err(|e| cx.blob(at, "hash zipmap", e))?;
            if let Some(i) = first_dup(pairs.iter().map(|p| p.0)) {
                return Err(cx.corrupt(
                    at,
                    format!(
                        "hash zipmap has duplicate field {:?}",
                        String::from_utf8_lossy(pairs[i].0)
                    ),
                ));
            }
            Value::Hash(
                pairs
                    .into_iter()
                    .map(|(f, v)| (f.to_vec(), v.to_vec()))
                    .collect(),
            )
        }
        TYPE_LIST_ZIPLIST => {
            let blob = src.read_string("ziplist blob")?;
            let elems = crate::ziplist::parse(&blob).map_err(|e| cx.blob(at, "list ziplist", e))?;
            if elems.is_empty() {
                return Ok(Decoded::Empty);
            }
            Value::List(elems.iter().map(Elem::to_bytes).collect())
        }
        TYPE_SET_INTSET => {
            let blob = src.read_string("intset blob")?;
            let ints = crate::intset::parse(&blob).map_err(|e| cx.blob(at, "intset", e))?;
            Value::Set(ints.iter().map(|i| i.to_string().into_bytes()).collect())
        }
        TYPE_SET_LISTPACK => {
            let blob = src.read_string("listpack blob")?;
            let elems =
                crate::listpack::parse(&blob).map_err(|e| cx.blob(at, "set listpack", e))?;
            if elems.is_empty() {
                return Ok(Decoded::Empty);
            }
            if let Some(i) = find_duplicate(&elems, 1) {
                return Err(cx.corrupt(
                    at,
                    format!("set listpack has duplicate member {:?}", lossy(&elems[i])),
                ));
            }
            Value::Set(elems.iter().map(Elem::to_bytes).collect())
        }
        TYPE_ZSET_ZIPLIST | TYPE_ZSET_LISTPACK | TYPE_HASH_ZIPLIST | TYPE_HASH_LISTPACK => {
            let (kind, is_zset) = match rdb_type {
                TYPE_ZSET_ZIPLIST => ("zset ziplist", true),
                TYPE_ZSET_LISTPACK => ("zset listpack", true),
                TYPE_HASH_ZIPLIST => ("hash ziplist", false),
                _ => ("hash listpack", false),
            };
            let blob = src.read_string("pairs blob")?;
            let parsed = if matches!(rdb_type, TYPE_ZSET_ZIPLIST | TYPE_HASH_ZIPLIST) {
                crate::ziplist::parse(&blob)
            } else {
                crate::listpack::parse(&blob)
            };
            let elems = parsed.map_err(|e| cx.blob(at, kind, e))?;
            if elems.len() % 2 != 0 {
                return Err(cx.blob(
                    at,
                    kind,
                    BlobError::new(0, format!("odd element count {}", elems.len())),
                ));
            }
            if elems.is_empty() {
                return Ok(Decoded::Empty);
            }
            if let Some(i) = find_duplicate(&elems, 2) {
                return Err(cx.blob(
                    at,
                    kind,
                    BlobError::new(0, format!("duplicate field {:?}", lossy(&elems[i]))),
                ));
            }
            if is_zset {
                let mut v = Vec::with_capacity(elems.len() / 2);
                for pair in elems.chunks_exact(2) {
                    let score = match pair[1] {
                        Elem::Int(i) => i as f64,
                        Elem::Str(s) => parse_double(s).ok_or_else(|| {
                            cx.blob(
                                at,
                                kind,
                                BlobError::new(
                                    0,
                                    format!("invalid score {:?}", String::from_utf8_lossy(s)),
                                ),
                            )
                        })?,
                    };
                    if score.is_nan() {
                        return Err(cx.corrupt(at, format!("{kind} with NaN score")));
                    }
                    v.push((pair[0].to_bytes(), score));
                }
                Value::ZSet(v)
            } else {
                Value::Hash(
                    elems
                        .chunks_exact(2)
                        .map(|p| (p[0].to_bytes(), p[1].to_bytes()))
                        .collect(),
                )
            }
        }
        TYPE_LIST_QUICKLIST | TYPE_LIST_QUICKLIST_2 => {
            let nodes = src.read_len("quicklist node count")?;
            if nodes == 0 {
                return Ok(Decoded::Empty);
            }
            let mut v: Vec<Bytes> = Vec::with_capacity(cap(nodes));
            for _ in 0..nodes {
                let mut container = QUICKLIST_NODE_PACKED;
                if rdb_type == TYPE_LIST_QUICKLIST_2 {
                    let c_at = src.offset();
                    container = src.read_len("quicklist container")?;
                    if container != QUICKLIST_NODE_PACKED && container != QUICKLIST_NODE_PLAIN {
                        return Err(cx.corrupt(
                            c_at,
                            format!("quicklist node container {container} is not 1 or 2"),
                        ));
                    }
                }
                let n_at = src.offset();
                let blob = src.read_string("quicklist node")?;
                if blob.is_empty() {
                    return Err(cx.corrupt(n_at, "empty quicklist node"));
                }
                if container == QUICKLIST_NODE_PLAIN {
                    v.push(blob);
                    continue;
                }
                let elems = if rdb_type == TYPE_LIST_QUICKLIST_2 {
                    crate::listpack::parse(&blob)
                        .map_err(|e| cx.blob(n_at, "quicklist listpack", e))?
                } else {
                    crate::ziplist::parse(&blob)
                        .map_err(|e| cx.blob(n_at, "quicklist ziplist", e))?
                };
                v.extend(elems.iter().map(Elem::to_bytes));
            }
            if v.is_empty() {
                return Ok(Decoded::Empty);
            }
            Value::List(v)
        }
        TYPE_STREAM_LISTPACKS | TYPE_STREAM_LISTPACKS_2 | TYPE_STREAM_LISTPACKS_3 => {
            Value::Stream(Box::new(super::stream::read_stream(src, rdb_type)?))
        }
        TYPE_MODULE_2 => {
            skip::skip_module_value(src)?;
            return Ok(Decoded::Skipped("module"));
        }
        TYPE_MODULE_PRE_GA => {
            return Err(cx.corrupt(
                at,
                "pre-release module value format (type 6) cannot be skipped",
            ));
        }
        t => return Err(cx.corrupt(at, format!("unknown RDB value type {t}"))),
    };
    Ok(Decoded::Value(v))
}

fn lossy(e: &Elem<'_>) -> String {
    String::from_utf8_lossy(&e.to_bytes()).into_owned()
}
