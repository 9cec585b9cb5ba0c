//! Reply conversions both ways, as Redis 7.0's `script_lua.c`.
//!
//! Command reply → Lua (`redisProtocolToLuaType`), RESP2: integer → number, bulk → string,
//! null bulk / null array → `false`, status → `{ok=...}`, error → `{err=...}`, array → table.
//! With `redis.setresp(3)` the reply takes the RESP3 shape of its command first (maps →
//! `{map={...}}`, sets → `{set={m=true}}`, doubles → `{double=n}`, nulls → `nil`).
//!
//! Lua → caller (`luaReplyToRedisReply`): string → bulk, number → integer (truncated),
//! boolean → `:1`/null under RESP2 (the script's protocol) or a boolean under RESP3, table →
//! error (`err` field), status (`ok`), double, big number, verbatim string, map, set, or an
//! array of the elements `1..n` up to the first `nil`; anything else → null.

use forkless_keyspace::convert::parse_f64;
use forkless_keyspace::Reply;
use mlua::{Lua, Table, Value};

use crate::out::Out;

/// Nesting deeper than this is refused (a self-referencing table must not recurse forever).
/// (mlua keeps each live table reference on its reference stack, so the limit stays well under
/// Lua's 8000 C stack slots; past it the reply ends with "reached lua stack limit", as Redis's.)
const MAX_DEPTH: usize = 200;

/// Convert a command's reply into a Lua value. `resp3` = the script called `redis.setresp(3)`;
/// `cmd` is the command's lowercase name (for its RESP3 shape).
pub fn reply_to_lua(lua: &Lua, reply: Reply, resp3: bool, cmd: &str) -> mlua::Result<Value> {
    if resp3 {
        return out_to_lua(lua, resp3_shape(cmd, reply));
    }
    Ok(match reply {
        Reply::Status(s) => {
            let t = lua.create_table()?;
            t.raw_set("ok", lua.create_string(s.as_bytes())?)?;
            Value::Table(t)
        }
        Reply::Error(s) => Value::Table(error_table(lua, &s)?),
        Reply::Integer(n) => Value::Number(n as f64),
        Reply::Bulk(b) => Value::String(lua.create_string(&b)?),
        Reply::Nil | Reply::NilArray => Value::Boolean(false),
        Reply::Array(items) => {
            let t = lua.create_table_with_capacity(items.len(), 0)?;
            for (i, item) in items.into_iter().enumerate() {
                t.raw_set(i + 1, reply_to_lua(lua, item, false, "")?)?;
            }
            Value::Table(t)
        }
    })
}

/// `{err = "CODE message"}` (a leading `-` dropped, trailing CR/LF trimmed; Redis's
/// `luaPushErrorBuff`).
pub fn error_table(lua: &Lua, msg: &str) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.raw_set("err", lua.create_string(normalize_error(msg))?)?;
    Ok(t)
}

/// Redis's error normalization: "-CODE msg" → "CODE msg", "msg" without a leading '-' stays,
/// trailing CR/LF trimmed.
pub fn normalize_error(msg: &str) -> String {
    let m = msg.strip_prefix('-').unwrap_or(msg);
    m.trim_end_matches(['\r', '\n']).to_string()
}

/// The error text Redis's `luaPushError` makes of a plain message: "ERR msg", or "CODE msg"
/// when it starts with "-CODE".
pub fn push_error_text(msg: &str) -> String {
    match msg.strip_prefix('-') {
        Some(rest) => match rest.split_once(' ') {
            Some((code, m)) => format!("{code} {}", m.trim_end_matches(['\r', '\n'])),
            None => format!("ERR {}", rest.trim_end_matches(['\r', '\n'])),
        },
        None => format!("ERR {}", msg.trim_end_matches(['\r', '\n'])),
    }
}

/// A RESP3-capable reply as a RESP3 script sees it (`redisProtocolToLuaType` with RESP3).
pub(crate) fn out_to_lua(lua: &Lua, out: Out) -> mlua::Result<Value> {
    let tagged = |k: &str, v: Value| -> mlua::Result<Value> {
        let t = lua.create_table()?;
        t.raw_set(k, v)?;
        Ok(Value::Table(t))
    };
    Ok(match out {
        Out::Status(s) => tagged("ok", Value::String(lua.create_string(&s)?))?,
        Out::Error(s) => Value::Table(error_table(lua, &s)?),
        Out::Int(n) => Value::Number(n as f64),
        Out::Bulk(b) => Value::String(lua.create_string(&b)?),
        Out::Null | Out::NullArray => Value::Nil,
        Out::Array(items) => {
            let t = lua.create_table_with_capacity(items.len(), 0)?;
            for (i, item) in items.into_iter().enumerate() {
                t.raw_set(i + 1, out_to_lua(lua, item)?)?;
            }
            Value::Table(t)
        }
        Out::Map(pairs) => {
            let m = lua.create_table()?;
            for (k, v) in pairs {
                m.raw_set(out_to_lua(lua, k)?, out_to_lua(lua, v)?)?;
            }
            tagged("map", Value::Table(m))?
        }
        Out::Set(items) => {
            let m = lua.create_table()?;
            for k in items {
                m.raw_set(out_to_lua(lua, k)?, true)?;
            }
            tagged("set", Value::Table(m))?
        }
        Out::Double(d) => tagged("double", Value::Number(d))?,
        Out::Bool(b) => Value::Boolean(b),
        Out::BigNum(s) => tagged("big_number", Value::String(lua.create_string(&s)?))?,
        Out::Verbatim(f, s) => {
            let t = lua.create_table()?;
            t.raw_set("format", lua.create_string(&f)?)?;
            t.raw_set("string", lua.create_string(&s)?)?;
            tagged("verbatim_string", Value::Table(t))?
        }
    })
}

/// The RESP3 shape Redis 7.0 gives the replies of the commands whose type differs from RESP2
/// (the same rules as the server's `resp3_shape`).
pub fn resp3_shape(cmd: &str, reply: Reply) -> Out {
    let double_of = |o: Out| match o {
        Out::Bulk(b) => match parse_f64(&b) {
            Some(d) => Out::Double(d),
            None => Out::Bulk(b),
        },
        other => other,
    };
    match (cmd, Out::from(reply)) {
        ("hgetall" | "config", Out::Array(items)) => {
            let mut it = items.into_iter();
            let mut pairs = Vec::new();
            while let (Some(k), Some(v)) = (it.next(), it.next()) {
                pairs.push((k, v));
            }
            Out::Map(pairs)
        }
        ("smembers" | "sunion" | "sinter" | "sdiff", Out::Array(items)) => Out::Set(items),
        ("zscore" | "zincrby", o) => double_of(o),
        ("zmscore", Out::Array(items)) => Out::Array(items.into_iter().map(double_of).collect()),
        // Coordinates (GEOPOS, WITHCOORD) are doubles.
        ("geopos", Out::Array(items)) => Out::Array(
            items
                .into_iter()
                .map(|xy| pair_of_doubles(xy, &double_of))
                .collect(),
        ),
        (
            "georadius"
            | "georadiusbymember"
            | "georadius_ro"
            | "georadiusbymember_ro"
            | "geosearch",
            Out::Array(items),
        ) => Out::Array(
            items
                .into_iter()
                .map(|item| match item {
                    Out::Array(parts) => Out::Array(
                        parts
                            .into_iter()
                            .map(|p| pair_of_doubles(p, &double_of))
                            .collect(),
                    ),
                    other => other,
                })
                .collect(),
        ),
        (_, o) => o,
    }
}

/// An array's items as doubles (a `[longitude, latitude]` pair); anything else unchanged.
fn pair_of_doubles(o: Out, double_of: &impl Fn(Out) -> Out) -> Out {
    match o {
        Out::Array(xy) => Out::Array(xy.into_iter().map(double_of).collect()),
        other => other,
    }
}

/// Convert the value a script returned (Lua) into the caller's reply. `resp3` is the script's
/// protocol (`redis.setresp`), which decides how booleans convert.
pub fn lua_to_out(v: &Value, resp3: bool) -> Out {
    lua_to_out_depth(v, resp3, 0)
}

fn lua_to_out_depth(v: &Value, resp3: bool, depth: usize) -> Out {
    if depth > MAX_DEPTH {
        return Out::err("ERR reached lua stack limit");
    }
    match v {
        Value::String(s) => Out::Bulk(s.as_bytes().to_vec()),
        Value::Boolean(b) if resp3 => Out::Bool(*b),
        Value::Boolean(true) => Out::Int(1),
        Value::Boolean(false) => Out::Null,
        Value::Integer(n) => Out::Int(*n),
        Value::Number(n) => Out::Int(number_to_i64(*n)),
        Value::Table(t) => table_to_out(t, resp3, depth),
        _ => Out::Null,
    }
}

/// C's `(long long)` of a double (truncation; saturating where C is undefined).
fn number_to_i64(n: f64) -> i64 {
    if n.is_nan() {
        i64::MIN
    } else {
        n as i64
    }
}

/// The field Redis puts in the error table of a `redis.call` error whose statistics were
/// counted when the command ran.
pub const IGNORE_STATS: &str = "ignore_error_stats_update";

fn field(t: &Table, k: &str) -> Value {
    t.raw_get::<Value>(k).unwrap_or(Value::Nil)
}

fn table_to_out(t: &Table, resp3: bool, depth: usize) -> Out {
    if let Value::String(e) = field(t, "err") {
        if depth == 0 && matches!(field(t, IGNORE_STATS), Value::Boolean(true)) {
            crate::set_final_error_counted(true);
        }
        return Out::Error(String::from_utf8_lossy(&e.as_bytes()).into_owned());
    }
    if let Value::String(s) = field(t, "ok") {
        let s = String::from_utf8_lossy(&s.as_bytes()).replace(['\r', '\n'], " ");
        return Out::Status(s);
    }
    match field(t, "double") {
        Value::Number(d) => return Out::Double(d),
        Value::Integer(d) => return Out::Double(d as f64),
        _ => {}
    }
    if let Value::String(s) = field(t, "big_number") {
        let s = String::from_utf8_lossy(&s.as_bytes()).replace(['\r', '\n'], " ");
        return Out::BigNum(s);
    }
    if let Value::Table(v) = field(t, "verbatim_string") {
        if let (Value::String(f), Value::String(s)) = (field(&v, "format"), field(&v, "string")) {
            return Out::Verbatim(
                String::from_utf8_lossy(&f.as_bytes()).into_owned(),
                s.as_bytes().to_vec(),
            );
        }
    }
    if let Value::Table(m) = field(t, "map") {
        let mut pairs = Vec::new();
        for (k, v) in m.pairs::<Value, Value>().flatten() {
            pairs.push((
                lua_to_out_depth(&k, resp3, depth + 1),
                lua_to_out_depth(&v, resp3, depth + 1),
            ));
        }
        return Out::Map(pairs);
    }
    if let Value::Table(m) = field(t, "set") {
        let mut items = Vec::new();
        for (k, _) in m.pairs::<Value, Value>().flatten() {
            items.push(lua_to_out_depth(&k, resp3, depth + 1));
        }
        return Out::Set(items);
    }
    let mut items = Vec::new();
    let mut j = 1usize;
    loop {
        let v: Value = t.raw_get(j).unwrap_or(Value::Nil);
        if v.is_nil() {
            break;
        }
        items.push(lua_to_out_depth(&v, resp3, depth + 1));
        j += 1;
    }
    Out::Array(items)
}
