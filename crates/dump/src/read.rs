//! Reading a canonical dump back into entries, with errors that name the line and the field.
//!
//! Accepted input is a little wider than what [`crate::write_jsonl`] writes, as the format
//! allows: bytes as a JSON string or `{"base64": "..."}` anywhere, scores as any JSON number or
//! `"inf"` / `"+inf"` / `"-inf"`, lines in any order, blank lines ignored, `expire_at_ms` may be
//! omitted (no expiry). Refused: unknown fields, an empty collection or a duplicate member /
//! field (Redis never holds one, and an RDB written from it would not load to the same data), a
//! key twice in one database (it would crash redis-server loading the RDB written from it).

use std::collections::HashSet;
use std::io::BufRead;

use base64::Engine as _;
use forkless_rdb::model::{canonicalize, Entry, Value};
use serde_json::Value as Json;

use crate::error::DumpError;

/// Read a whole dump; the entries come back canonicalized (see the crate documentation).
pub fn read_jsonl<R: BufRead>(mut r: R) -> Result<Vec<Entry>, DumpError> {
    let mut with_lines: Vec<(Entry, usize)> = Vec::new();
    let mut buf = Vec::new();
    let mut line_no = 0;
    loop {
        buf.clear();
        if r.read_until(b'\n', &mut buf)? == 0 {
            break;
        }
        line_no += 1;
        if buf.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        with_lines.push((parse_line(line_no, &buf)?, line_no));
    }
    with_lines.sort_by(|a, b| a.0.db.cmp(&b.0.db).then_with(|| a.0.key.cmp(&b.0.key)));
    for w in with_lines.windows(2) {
        if w[0].0.db == w[1].0.db && w[0].0.key == w[1].0.key {
            return Err(DumpError::DuplicateKey {
                line: w[0].1.max(w[1].1),
                db: w[1].0.db,
                key: w[1].0.key.clone(),
            });
        }
    }
    let mut entries: Vec<Entry> = with_lines.into_iter().map(|(e, _)| e).collect();
    canonicalize(&mut entries);
    Ok(entries)
}

/// Parse one line (`line` is its 1-based number, for errors). Elements keep the line's order.
pub fn parse_line(line: usize, text: &[u8]) -> Result<Entry, DumpError> {
    let json: Json = serde_json::from_slice(text).map_err(|e| DumpError::Json {
        line,
        what: e.to_string(),
    })?;
    let ctx = Ctx { line };
    let Json::Object(obj) = json else {
        return Err(ctx.err("", "expected a JSON object"));
    };
    for k in obj.keys() {
        if !matches!(k.as_str(), "db" | "key" | "type" | "value" | "expire_at_ms") {
            return Err(ctx.err(k, "unknown field"));
        }
    }
    let field = |name: &str| obj.get(name).ok_or_else(|| ctx.err(name, "missing"));
    let db = field("db")?
        .as_u64()
        .and_then(|v| u32::try_from(v).ok())
        .ok_or_else(|| ctx.err("db", "expected an integer in 0..=4294967295"))?;
    let key = ctx.bytes("key", field("key")?)?;
    let ty = field("type")?
        .as_str()
        .ok_or_else(|| ctx.err("type", "expected a string"))?;
    let value = field("value")?;
    let value = match ty {
        "string" => Value::String(ctx.bytes("value", value)?),
        "list" => Value::List(ctx.array("value", value, |p, v| ctx.bytes(p, v))?),
        "set" => {
            let mut m = ctx.array("value", value, |p, v| ctx.bytes(p, v))?;
            m.sort_unstable();
            if let Some(w) = m.windows(2).find(|w| w[0] == w[1]) {
                return Err(ctx.err(
                    "value",
                    &format!("duplicate set member {}", crate::show_bytes(&w[0])),
                ));
            }
            Value::Set(m)
        }
        "zset" => {
            let pairs = ctx.array("value", value, |p, v| {
                let [m, s] = ctx.pair(p, v)?;
                Ok((
                    ctx.bytes(&format!("{p}[0]"), m)?,
                    ctx.score(&format!("{p}[1]"), s)?,
                ))
            })?;
            let mut seen = HashSet::with_capacity(pairs.len());
            if let Some((m, _)) = pairs.iter().find(|(m, _)| !seen.insert(m.as_slice())) {
                return Err(ctx.err(
                    "value",
                    &format!("duplicate zset member {}", crate::show_bytes(m)),
                ));
            }
            Value::ZSet(pairs)
        }
        "hash" => {
            let mut pairs = ctx.array("value", value, |p, v| {
                let [f, x] = ctx.pair(p, v)?;
                Ok((
                    ctx.bytes(&format!("{p}[0]"), f)?,
                    ctx.bytes(&format!("{p}[1]"), x)?,
                ))
            })?;
            pairs.sort_unstable_by(|a, b| a.0.cmp(&b.0));
            if let Some(w) = pairs.windows(2).find(|w| w[0].0 == w[1].0) {
                return Err(ctx.err(
                    "value",
                    &format!("duplicate hash field {}", crate::show_bytes(&w[0].0)),
                ));
            }
            Value::Hash(pairs)
        }
        "stream" => {
            let b = |path: &str, v: &Json| {
                ctx.bytes(path, v).map_err(|e| match e {
                    DumpError::Field { field, what, .. } => (field, what),
                    other => (path.to_string(), other.to_string()),
                })
            };
            Value::Stream(Box::new(
                crate::stream::from_json(value, &b).map_err(|(f, w)| ctx.err(&f, &w))?,
            ))
        }
        other => {
            return Err(ctx.err(
                "type",
                &format!(
                    "unknown type {other:?} (expected string, list, set, zset, hash or stream)"
                ),
            ))
        }
    };
    let empty = match &value {
        Value::String(_) | Value::Stream(_) => false,
        Value::List(v) | Value::Set(v) => v.is_empty(),
        Value::ZSet(v) => v.is_empty(),
        Value::Hash(v) => v.is_empty(),
    };
    if empty {
        return Err(ctx.err(
            "value",
            &format!("empty {ty}: Redis holds no empty collections"),
        ));
    }
    let expire_at_ms = match obj.get("expire_at_ms") {
        None | Some(Json::Null) => None,
        Some(v) => Some(
            v.as_i64()
                .ok_or_else(|| ctx.err("expire_at_ms", "expected an integer or null"))?,
        ),
    };
    Ok(Entry {
        db,
        key,
        value,
        expire_at_ms,
    })
}

/// Error construction for one line.
struct Ctx {
    line: usize,
}

impl Ctx {
    fn err(&self, field: &str, what: &str) -> DumpError {
        DumpError::Field {
            line: self.line,
            field: field.to_string(),
            what: what.to_string(),
        }
    }

    fn bytes(&self, path: &str, v: &Json) -> Result<Vec<u8>, DumpError> {
        match v {
            Json::String(s) => Ok(s.clone().into_bytes()),
            Json::Object(o) if o.len() == 1 => {
                let Some(Json::String(b64)) = o.get("base64") else {
                    return Err(self.err(path, "expected a string or {\"base64\": \"...\"}"));
                };
                base64::engine::general_purpose::STANDARD
                    .decode(b64)
                    .map_err(|e| {
                        self.err(&format!("{path}.base64"), &format!("invalid base64: {e}"))
                    })
            }
            _ => Err(self.err(path, "expected a string or {\"base64\": \"...\"}")),
        }
    }

    fn array<T>(
        &self,
        path: &str,
        v: &Json,
        mut item: impl FnMut(&str, &Json) -> Result<T, DumpError>,
    ) -> Result<Vec<T>, DumpError> {
        let Json::Array(a) = v else {
            return Err(self.err(path, "expected an array"));
        };
        a.iter()
            .enumerate()
            .map(|(i, x)| item(&format!("{path}[{i}]"), x))
            .collect()
    }

    fn pair<'v>(&self, path: &str, v: &'v Json) -> Result<[&'v Json; 2], DumpError> {
        match v {
            Json::Array(a) if a.len() == 2 => Ok([&a[0], &a[1]]),
            _ => Err(self.err(path, "expected a two-element array")),
        }
    }

    fn score(&self, path: &str, v: &Json) -> Result<f64, DumpError> {
        match v {
            Json::Number(n) => n
                .as_f64()
                .ok_or_else(|| self.err(path, "number out of range")),
            Json::String(s) if s == "inf" || s == "+inf" => Ok(f64::INFINITY),
            Json::String(s) if s == "-inf" => Ok(f64::NEG_INFINITY),
            _ => Err(self.err(path, "expected a number, \"inf\" or \"-inf\"")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err_of(text: &str) -> String {
        match read_jsonl(text.as_bytes()) {
            Err(e) => e.to_string(),
            Ok(v) => panic!("accepted {text:?}: {v:?}"),
        }
    }

    #[test]
    fn errors_name_line_and_field() {
        let good = r#"{"db":0,"key":"a","type":"string","value":"1","expire_at_ms":null}"#;
        assert_eq!(
            err_of(&format!("{good}\n{{\"db\":0")),
            "line 2: invalid JSON: EOF while parsing an object at line 1 column 7"
        );
        assert_eq!(
            err_of(
                r#"{"db":0,"key":"k","type":"zset","value":[["m",1],["n","x"]],"expire_at_ms":null}"#
            ),
            "line 1: field `value[1][1]`: expected a number, \"inf\" or \"-inf\""
        );
        assert_eq!(
            err_of(r#"{"db":-1,"key":"k","type":"string","value":"v"}"#),
            "line 1: field `db`: expected an integer in 0..=4294967295"
        );
        assert_eq!(
            err_of(r#"{"db":0,"key":"k","type":"string","value":"v","ttl":1}"#),
            "line 1: field `ttl`: unknown field"
        );
        assert_eq!(
            err_of(r#"{"db":0,"key":{"base64":"!!"},"type":"string","value":"v"}"#)[..33]
                .to_string(),
            "line 1: field `key.base64`: inval"
        );
        assert_eq!(
            err_of(r#"{"db":0,"key":"k","type":"list","value":[]}"#),
            "line 1: field `value`: empty list: Redis holds no empty collections"
        );
        assert_eq!(
            err_of(r#"{"db":0,"key":"k","type":"set","value":["a","a"]}"#),
            "line 1: field `value`: duplicate set member \"a\""
        );
        assert_eq!(
            err_of(r#"{"db":0,"key":"k","type":"zset","value":[["a",1],["a",2]]}"#),
            "line 1: field `value`: duplicate zset member \"a\""
        );
        assert_eq!(
            err_of(r#"{"db":0,"key":"k","type":"module","value":[]}"#)[..28].to_string(),
            "line 1: field `type`: unknow"
        );
        assert_eq!(
            err_of(r#"{"db":0,"key":"k","type":"stream","value":[]}"#),
            "line 1: field `value`: expected an object"
        );
        let st = r#"{"entries":[["2-0",["f","v"]],["1-0",["f","v"]]],"last_id":"2-0","first_id":"1-0","max_deleted_id":"0-0","entries_added":2,"groups":[]}"#;
        assert_eq!(
            err_of(&format!(
                r#"{{"db":0,"key":"k","type":"stream","value":{st}}}"#
            )),
            "line 1: field `value.entries[1]`: entry IDs must be strictly ascending"
        );
        let st = r#"{"entries":[],"last_id":"2-0","first_id":"0-0","max_deleted_id":"0-0","entries_added":2,"groups":[{"name":"g","last_id":"0-0","entries_read":0,"consumers":[],"pending":[["1-0","bob",5,1]]}]}"#;
        assert_eq!(
            err_of(&format!(
                r#"{{"db":0,"key":"k","type":"stream","value":{st}}}"#
            )),
            "line 1: field `value.groups[0].pending[0][1]`: not a consumer of the group"
        );
        assert_eq!(
            err_of(&format!("{good}\n\n{good}\n")),
            "line 3: duplicate key \"a\" in db 0"
        );
        assert_eq!(
            err_of(r#"{"db":0,"key":"k","type":"string","value":"v","expire_at_ms":1.5}"#),
            "line 1: field `expire_at_ms`: expected an integer or null"
        );
        assert_eq!(
            err_of(r#"{"db":0,"key":"k","type":"hash","value":[["a"]]}"#),
            "line 1: field `value[0]`: expected a two-element array"
        );
    }

    #[test]
    fn accepts_both_bytes_forms_and_score_spellings() {
        let text = concat!(
            r#"{"db":1,"key":{"base64":"AP8="},"type":"zset","value":[["x","-inf"],["y",-0.0],["z",2],["w","+inf"],[{"base64":"YQ=="},1e308]]}"#,
            "\n",
            r#"{"db":0,"key":"h","type":"hash","value":[["b",{"base64":""}],["a","1"]],"expire_at_ms":4102444800000}"#,
            "\n"
        );
        let e = read_jsonl(text.as_bytes()).unwrap();
        assert_eq!(e.len(), 2);
        assert_eq!(e[0].key, b"h");
        assert_eq!(
            e[0].value,
            Value::Hash(vec![
                (b"a".to_vec(), b"1".to_vec()),
                (b"b".to_vec(), vec![])
            ])
        );
        assert_eq!(e[0].expire_at_ms, Some(4_102_444_800_000));
        assert_eq!(e[1].key, [0u8, 255]);
        let Value::ZSet(z) = &e[1].value else {
            panic!()
        };
        let scores: Vec<f64> = z.iter().map(|p| p.1).collect();
        assert_eq!(scores, [f64::NEG_INFINITY, -0.0, 2.0, 1e308, f64::INFINITY]);
        assert!(scores[1].is_sign_negative(), "-0.0 keeps its sign");
        assert_eq!(z[3].0, b"a");
    }
}
