//! The libraries Redis bundles into its Lua, in Rust: `bit` (LuaBitOp 1.0.2 semantics) and
//! `cjson` (lua-cjson 2.1 as Redis ships it: `encode`, `decode`, `null`, the depth and
//! invalid-number settings); `cmsgpack` is in `msgpack.rs`, `struct` in `structlib.rs`.

use mlua::{LightUserData, Lua, MultiValue, Table, Value};

/// Install `bit`, `cjson`, `cmsgpack` and `struct` as globals of `lua` (before the sandbox locks them).
pub fn install(lua: &Lua) -> mlua::Result<()> {
    let g = lua.globals();
    g.raw_set("bit", bit(lua)?)?;
    g.raw_set("cjson", cjson(lua)?)?;
    g.raw_set("cmsgpack", crate::msgpack::table(lua)?)?;
    crate::structlib::install(lua)?;
    Ok(())
}

/// Lua 5.1's `tostring` of a number (`%.14g`).
pub fn lua_number_string(n: f64) -> String {
    if n.is_nan() {
        return if n.is_sign_negative() { "-nan" } else { "nan" }.to_string();
    }
    if n.is_infinite() {
        return if n > 0.0 { "inf" } else { "-inf" }.to_string();
    }
    if n == n.trunc() && n.abs() < 1e15 {
        return format!("{}", n as i64);
    }
    format_g(n, 14)
}

/// C's `%.<prec>g`.
fn format_g(n: f64, prec: usize) -> String {
    if n == 0.0 {
        return if n.is_sign_negative() { "-0" } else { "0" }.to_string();
    }
    let exp = n.abs().log10().floor() as i32;
    let e_form = format!("{:.*e}", prec - 1, n);
    // Rust's `{:e}` rounding may bump the exponent: read it back.
    let (mant, e) = e_form.split_once('e').unwrap_or((&e_form, "0"));
    let e: i32 = e.parse().unwrap_or(exp);
    if e < -4 || e >= prec as i32 {
        let mant = trim_zeros(mant);
        let sign = if e < 0 { '-' } else { '+' };
        format!("{mant}e{sign}{:02}", e.abs())
    } else {
        let decimals = (prec as i32 - 1 - e).max(0) as usize;
        trim_zeros(&format!("{:.*}", decimals, n)).to_string()
    }
}

fn trim_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

// ---- bit ----

fn tobit(v: &Value) -> mlua::Result<i32> {
    let n = match v {
        Value::Integer(n) => *n as f64,
        Value::Number(n) => *n,
        Value::String(s) => s.to_string_lossy().trim().parse::<f64>().map_err(|_| {
            mlua::Error::RuntimeError("bad argument to 'bit' (number expected)".into())
        })?,
        other => {
            return Err(mlua::Error::RuntimeError(format!(
                "bad argument to 'bit' (number expected, got {})",
                other.type_name()
            )))
        }
    };
    // LuaBitOp: add 2^52+2^51 and take the low 32 bits (round to nearest even, modulo 2^32).
    let r = (n + 6_755_399_441_055_744.0).to_bits() as u32;
    Ok(r as i32)
}

fn bit(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.raw_set(
        "tobit",
        lua.create_function(|_, v: Value| Ok(tobit(&v)? as f64))?,
    )?;
    t.raw_set(
        "bnot",
        lua.create_function(|_, v: Value| Ok(!tobit(&v)? as f64))?,
    )?;
    fn fold(args: &MultiValue, init: i32, f: fn(i32, i32) -> i32) -> mlua::Result<f64> {
        let mut acc = init;
        for (i, v) in args.iter().enumerate() {
            let x = tobit(v)?;
            acc = if i == 0 { x } else { f(acc, x) };
        }
        Ok(acc as f64)
    }
    t.raw_set(
        "band",
        lua.create_function(|_, a: MultiValue| fold(&a, -1, |x, y| x & y))?,
    )?;
    t.raw_set(
        "bor",
        lua.create_function(|_, a: MultiValue| fold(&a, 0, |x, y| x | y))?,
    )?;
    t.raw_set(
        "bxor",
        lua.create_function(|_, a: MultiValue| fold(&a, 0, |x, y| x ^ y))?,
    )?;
    type Shift = fn(u32, u32) -> u32;
    let shifts: [(&str, Shift); 5] = [
        ("lshift", |x, n| x << n),
        ("rshift", |x, n| x >> n),
        ("arshift", |x, n| ((x as i32) >> n) as u32),
        ("rol", |x, n| x.rotate_left(n)),
        ("ror", |x, n| x.rotate_right(n)),
    ];
    for (name, f) in shifts {
        t.raw_set(
            name,
            lua.create_function(move |_, (x, n): (Value, Value)| {
                let x = tobit(&x)? as u32;
                let n = (tobit(&n)? as u32) & 31;
                Ok(f(x, n) as i32 as f64)
            })?,
        )?;
    }
    t.raw_set(
        "bswap",
        lua.create_function(|_, v: Value| Ok((tobit(&v)? as u32).swap_bytes() as i32 as f64))?,
    )?;
    t.raw_set(
        "tohex",
        lua.create_function(|_, (x, n): (Value, Option<Value>)| {
            let x = tobit(&x)? as u32;
            let n = match n {
                Some(v) => tobit(&v)?,
                None => 8,
            };
            let upper = n < 0;
            let n = n.unsigned_abs().min(8) as usize;
            let s = if upper {
                format!("{x:08X}")
            } else {
                format!("{x:08x}")
            };
            Ok(s[8 - n..].to_string())
        })?,
    )?;
    Ok(t)
}

// ---- cjson ----

fn cjson_null() -> Value {
    Value::LightUserData(LightUserData(std::ptr::null_mut()))
}

/// lua-cjson's default nesting limit (encode and decode).
const DEFAULT_MAX_DEPTH: usize = 1000;

fn cjson(lua: &Lua) -> mlua::Result<Table> {
    use forkless_sync::atomic::{AtomicUsize, Ordering};
    use forkless_sync::Arc;
    let enc_depth = Arc::new(AtomicUsize::new(DEFAULT_MAX_DEPTH));
    let dec_depth = Arc::new(AtomicUsize::new(DEFAULT_MAX_DEPTH));
    let invalid = Arc::new(forkless_sync::atomic::AtomicBool::new(false));
    let t = lua.create_table()?;
    t.raw_set("null", cjson_null())?;
    let d = enc_depth.clone();
    let inv = invalid.clone();
    t.raw_set(
        "encode",
        lua.create_function(move |_, v: Value| {
            let mut out = String::new();
            let opts = EncodeOpts {
                max_depth: d.load(Ordering::Relaxed),
                invalid_numbers: inv.load(Ordering::Relaxed),
            };
            encode(&v, &mut out, 1, &opts)?;
            Ok(out)
        })?,
    )?;
    let d = dec_depth.clone();
    t.raw_set(
        "decode",
        lua.create_function(move |lua, s: mlua::String| {
            let parsed: serde_json::Value = serde_json::from_slice(&s.as_bytes()).map_err(|e| {
                mlua::Error::RuntimeError(format!("Expected value but found invalid token: {e}"))
            })?;
            let max = d.load(Ordering::Relaxed);
            if nesting(&parsed) > max {
                return Err(mlua::Error::RuntimeError(format!(
                    "Found too many nested data structures ({}) at character 1",
                    max + 1
                )));
            }
            decode(lua, &parsed)
        })?,
    )?;
    // Configuration functions (lua-cjson 2.1): the depth limits are enforced; the others are
    // accepted and answered like lua-cjson (this encoder has one fixed behaviour for them).
    for (name, depth) in [
        ("encode_max_depth", enc_depth),
        ("decode_max_depth", dec_depth),
    ] {
        t.raw_set(
            name,
            lua.create_function(move |_, n: Option<i64>| {
                if let Some(n) = n {
                    if n < 1 {
                        return Err(mlua::Error::RuntimeError(format!(
                            "bad argument #1 to '{name}' (expected integer between 1 and 2147483647)"
                        )));
                    }
                    depth.store(n as usize, Ordering::Relaxed);
                }
                Ok(depth.load(Ordering::Relaxed) as i64)
            })?,
        )?;
    }
    t.raw_set(
        "encode_keep_buffer",
        lua.create_function(|_, v: Option<bool>| Ok(v.unwrap_or(true)))?,
    )?;
    t.raw_set(
        "encode_number_precision",
        lua.create_function(|_, v: Option<i64>| Ok(v.unwrap_or(14)))?,
    )?;
    t.raw_set(
        "encode_invalid_numbers",
        lua.create_function(move |_, v: Option<Value>| {
            match v {
                Some(Value::Boolean(b)) => invalid.store(b, Ordering::Relaxed),
                Some(Value::String(s)) => {
                    invalid.store(&*s.as_bytes() != b"off", Ordering::Relaxed)
                }
                _ => {}
            }
            Ok(invalid.load(Ordering::Relaxed))
        })?,
    )?;
    t.raw_set(
        "decode_invalid_numbers",
        lua.create_function(|_, v: Option<Value>| Ok(v.unwrap_or(Value::Boolean(true))))?,
    )?;
    t.raw_set(
        "encode_sparse_array",
        lua.create_function(|_, v: MultiValue| Ok(v))?,
    )?;
    Ok(t)
}

/// Nesting depth of a JSON value (arrays and objects count one level each).
fn nesting(v: &serde_json::Value) -> usize {
    match v {
        serde_json::Value::Array(a) => 1 + a.iter().map(nesting).max().unwrap_or(0),
        serde_json::Value::Object(m) => 1 + m.values().map(nesting).max().unwrap_or(0),
        _ => 0,
    }
}

/// `cjson.encode` settings.
struct EncodeOpts {
    max_depth: usize,
    /// `encode_invalid_numbers(true)`: NaN and infinities are written (as `nan`, `inf`).
    invalid_numbers: bool,
}

fn encode(v: &Value, out: &mut String, depth: usize, opts: &EncodeOpts) -> mlua::Result<()> {
    if matches!(v, Value::Table(_)) && depth > opts.max_depth {
        return Err(mlua::Error::RuntimeError(format!(
            "Cannot serialise, excessive nesting ({depth})"
        )));
    }
    match v {
        Value::Nil => out.push_str("null"),
        Value::LightUserData(p) if p.0.is_null() => out.push_str("null"),
        Value::Boolean(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Integer(n) => out.push_str(&n.to_string()),
        Value::Number(n) => {
            if !n.is_finite() && !opts.invalid_numbers {
                return Err(mlua::Error::RuntimeError(
                    "Cannot serialise number: must not be NaN or Inf".into(),
                ));
            }
            out.push_str(&lua_number_string(*n));
        }
        Value::String(s) => encode_string(&s.as_bytes(), out),
        Value::Table(t) => {
            // An array when every key is a positive integer (lua-cjson's default sparseness
            // rules: more than 10 elements and fewer than half used makes it an error there;
            // we encode such tables as arrays with nulls like small ones).
            let mut max = 0usize;
            let mut count = 0usize;
            let mut is_array = true;
            for pair in t.clone().pairs::<Value, Value>() {
                let (k, _) = pair?;
                count += 1;
                match k {
                    Value::Integer(i) if i >= 1 => max = max.max(i as usize),
                    Value::Number(n) if n >= 1.0 && n.fract() == 0.0 => max = max.max(n as usize),
                    _ => is_array = false,
                }
            }
            if count == 0 {
                out.push_str("{}");
            } else if is_array {
                if max > count * 2 && max > 10 {
                    return Err(mlua::Error::RuntimeError(
                        "Cannot serialise table: excessively sparse array".into(),
                    ));
                }
                out.push('[');
                for i in 1..=max {
                    if i > 1 {
                        out.push(',');
                    }
                    let v: Value = t.raw_get(i)?;
                    encode(&v, out, depth + 1, opts)?;
                }
                out.push(']');
            } else {
                out.push('{');
                let mut first = true;
                for pair in t.clone().pairs::<Value, Value>() {
                    let (k, v) = pair?;
                    let key = match &k {
                        Value::String(s) => s.as_bytes().to_vec(),
                        Value::Integer(n) => n.to_string().into_bytes(),
                        Value::Number(n) => lua_number_string(*n).into_bytes(),
                        _ => {
                            return Err(mlua::Error::RuntimeError(
                                "Cannot serialise table: table key must be a number or string"
                                    .into(),
                            ))
                        }
                    };
                    if !first {
                        out.push(',');
                    }
                    first = false;
                    encode_string(&key, out);
                    out.push(':');
                    encode(&v, out, depth + 1, opts)?;
                }
                out.push('}');
            }
        }
        other => {
            return Err(mlua::Error::RuntimeError(format!(
                "Cannot serialise {}: type not supported",
                other.type_name()
            )))
        }
    }
    Ok(())
}

fn encode_string(b: &[u8], out: &mut String) {
    out.push('"');
    for ch in String::from_utf8_lossy(b).chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '/' => out.push_str("\\/"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\u{:04x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn decode(lua: &Lua, v: &serde_json::Value) -> mlua::Result<Value> {
    Ok(match v {
        serde_json::Value::Null => cjson_null(),
        serde_json::Value::Bool(b) => Value::Boolean(*b),
        serde_json::Value::Number(n) => Value::Number(n.as_f64().unwrap_or(0.0)),
        serde_json::Value::String(s) => Value::String(lua.create_string(s)?),
        serde_json::Value::Array(items) => {
            let t = lua.create_table_with_capacity(items.len(), 0)?;
            for (i, item) in items.iter().enumerate() {
                t.raw_set(i + 1, decode(lua, item)?)?;
            }
            Value::Table(t)
        }
        serde_json::Value::Object(m) => {
            let t = lua.create_table()?;
            for (k, item) in m {
                t.raw_set(lua.create_string(k)?, decode(lua, item)?)?;
            }
            Value::Table(t)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn number_strings_like_lua() {
        assert_eq!(lua_number_string(1.0), "1");
        assert_eq!(lua_number_string(-3.0), "-3");
        assert_eq!(lua_number_string(0.1), "0.1");
        assert_eq!(lua_number_string(1e20), "1e+20");
        assert_eq!(lua_number_string(1.234_567_890_123_456), "1.2345678901235");
        assert_eq!(lua_number_string(1.5e-7), "1.5e-07");
    }
}
