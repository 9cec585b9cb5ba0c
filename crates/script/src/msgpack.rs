//! `cmsgpack` as Redis bundles it (lua-cmsgpack 0.4.0): `pack(...)`, `unpack(s)`,
//! `unpack_one(s [, offset])`, `unpack_limit(s, limit [, offset])`.
//!
//! Encoding rules of lua-cmsgpack: nil → `0xc0`; booleans `0xc2`/`0xc3`; a number that is an
//! integer (fits i64 and equals its truncation) → the smallest of positive/negative fixint,
//! `0xcc`-`0xcf` (u8..u64), `0xd0`-`0xd3` (i8..i64); other numbers `0xca` float32 when exact,
//! else `0xcb` float64; strings fixstr / `0xd9` str8 / `0xda` str16 / `0xdb` str32; a table whose
//! keys are exactly `1..n` → array (fixarray, `0xdc`, `0xdd`), any other table → map (fixmap,
//! `0xde`, `0xdf`); deeper than 16 tables → nil. All multi-byte fields big-endian.

use mlua::{Lua, MultiValue, Table, Value};

const MAX_NESTING: usize = 16;

/// The `cmsgpack` table.
pub fn table(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.raw_set(
        "pack",
        lua.create_function(|_, args: MultiValue| {
            if args.is_empty() {
                return Err(mlua::Error::RuntimeError(
                    "MessagePack pack needs input.".into(),
                ));
            }
            let mut out = Vec::new();
            for v in args.iter() {
                encode(v, &mut out, 0)?;
            }
            Ok(mlua::BString::from(out))
        })?,
    )?;
    t.raw_set(
        "unpack",
        lua.create_function(|lua, s: mlua::String| {
            let b = s.as_bytes();
            let mut pos = 0;
            let mut out = Vec::new();
            while pos < b.len() {
                out.push(decode(lua, &b, &mut pos)?);
            }
            Ok(MultiValue::from_iter(out))
        })?,
    )?;
    for (name, limited) in [("unpack_one", false), ("unpack_limit", true)] {
        t.raw_set(
            name,
            lua.create_function(move |lua, args: MultiValue| {
                let b = match args.front() {
                    Some(Value::String(s)) => s.as_bytes().to_vec(),
                    _ => {
                        return Err(mlua::Error::RuntimeError(
                            "bad argument #1 (string expected)".into(),
                        ))
                    }
                };
                let num = |i: usize| match args.get(i) {
                    Some(Value::Integer(n)) => *n,
                    Some(Value::Number(n)) => *n as i64,
                    _ => 0,
                };
                let (limit, offset) = if limited {
                    (num(1), num(2))
                } else {
                    (1, num(1))
                };
                if offset < 0 || offset as usize > b.len() {
                    return Err(mlua::Error::RuntimeError(
                        "Start offset greater than input length".into(),
                    ));
                }
                let mut pos = offset as usize;
                let mut vals = Vec::new();
                while pos < b.len() && (limit <= 0 || (vals.len() as i64) < limit) {
                    vals.push(decode(lua, &b, &mut pos)?);
                }
                let next = if pos >= b.len() { -1 } else { pos as i64 };
                let mut out = vec![Value::Integer(next)];
                out.extend(vals);
                Ok(MultiValue::from_iter(out))
            })?,
        )?;
    }
    Ok(t)
}

fn encode(v: &Value, out: &mut Vec<u8>, depth: usize) -> mlua::Result<()> {
    match v {
        Value::Nil => out.push(0xc0),
        Value::Boolean(b) => out.push(if *b { 0xc3 } else { 0xc2 }),
        Value::Integer(n) => encode_int(*n, out),
        Value::Number(n) => {
            let f = *n;
            if f.is_finite() && f == f.trunc() && f >= i64::MIN as f64 && f < i64::MAX as f64 {
                encode_int(f as i64, out);
            } else if (f as f32) as f64 == f || f.is_nan() {
                out.push(0xca);
                out.extend_from_slice(&(f as f32).to_be_bytes());
            } else {
                out.push(0xcb);
                out.extend_from_slice(&f.to_be_bytes());
            }
        }
        Value::String(s) => {
            let b = s.as_bytes();
            let n = b.len();
            if n < 32 {
                out.push(0xa0 | n as u8);
            } else if n <= 0xff {
                out.push(0xd9);
                out.push(n as u8);
            } else if n <= 0xffff {
                out.push(0xda);
                out.extend_from_slice(&(n as u16).to_be_bytes());
            } else {
                out.push(0xdb);
                out.extend_from_slice(&(n as u32).to_be_bytes());
            }
            out.extend_from_slice(&b);
        }
        Value::Table(t) if depth < MAX_NESTING => {
            let mut count = 0usize;
            let mut max = 0i64;
            let mut array = true;
            for pair in t.clone().pairs::<Value, Value>() {
                let (k, _) = pair?;
                count += 1;
                match k {
                    Value::Integer(i) if i >= 1 => max = max.max(i),
                    Value::Number(f) if f >= 1.0 && f == f.trunc() => max = max.max(f as i64),
                    _ => array = false,
                }
            }
            if array && max as usize == count {
                len_header(out, count, 0x90, 0xdc, 0xdd);
                for i in 1..=count {
                    let v: Value = t.raw_get(i)?;
                    encode(&v, out, depth + 1)?;
                }
            } else {
                len_header(out, count, 0x80, 0xde, 0xdf);
                for pair in t.clone().pairs::<Value, Value>() {
                    let (k, v) = pair?;
                    encode(&k, out, depth + 1)?;
                    encode(&v, out, depth + 1)?;
                }
            }
        }
        _ => out.push(0xc0),
    }
    Ok(())
}

fn len_header(out: &mut Vec<u8>, n: usize, fix: u8, b16: u8, b32: u8) {
    if n < 16 {
        out.push(fix | n as u8);
    } else if n <= 0xffff {
        out.push(b16);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        out.push(b32);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    }
}

fn encode_int(n: i64, out: &mut Vec<u8>) {
    if n >= 0 {
        let u = n as u64;
        if u < 128 {
            out.push(u as u8);
        } else if u <= 0xff {
            out.extend_from_slice(&[0xcc, u as u8]);
        } else if u <= 0xffff {
            out.push(0xcd);
            out.extend_from_slice(&(u as u16).to_be_bytes());
        } else if u <= 0xffff_ffff {
            out.push(0xce);
            out.extend_from_slice(&(u as u32).to_be_bytes());
        } else {
            out.push(0xcf);
            out.extend_from_slice(&u.to_be_bytes());
        }
    } else if n >= -32 {
        out.push(n as i8 as u8);
    } else if n >= -128 {
        out.extend_from_slice(&[0xd0, n as i8 as u8]);
    } else if n >= -32768 {
        out.push(0xd1);
        out.extend_from_slice(&(n as i16).to_be_bytes());
    } else if n >= i32::MIN as i64 {
        out.push(0xd2);
        out.extend_from_slice(&(n as i32).to_be_bytes());
    } else {
        out.push(0xd3);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

fn take<'a>(b: &'a [u8], pos: &mut usize, n: usize) -> mlua::Result<&'a [u8]> {
    let end = pos
        .checked_add(n)
        .filter(|&e| e <= b.len())
        .ok_or_else(|| mlua::Error::RuntimeError("Missing bytes in input.".into()))?;
    let s = &b[*pos..end];
    *pos = end;
    Ok(s)
}

fn be(b: &[u8]) -> u64 {
    b.iter().fold(0u64, |a, &x| (a << 8) | x as u64)
}

fn decode(lua: &Lua, b: &[u8], pos: &mut usize) -> mlua::Result<Value> {
    let tag = take(b, pos, 1)?[0];
    let num = |v: f64| Ok(Value::Number(v));
    match tag {
        0x00..=0x7f => num(tag as f64),
        0xe0..=0xff => num(tag as i8 as f64),
        0x80..=0x8f => map(lua, b, pos, (tag & 0x0f) as usize),
        0x90..=0x9f => array(lua, b, pos, (tag & 0x0f) as usize),
        0xa0..=0xbf => string(lua, b, pos, (tag & 0x1f) as usize),
        0xc0 => Ok(Value::Nil),
        0xc2 => Ok(Value::Boolean(false)),
        0xc3 => Ok(Value::Boolean(true)),
        0xc4 | 0xd9 => {
            let n = be(take(b, pos, 1)?) as usize;
            string(lua, b, pos, n)
        }
        0xc5 | 0xda => {
            let n = be(take(b, pos, 2)?) as usize;
            string(lua, b, pos, n)
        }
        0xc6 | 0xdb => {
            let n = be(take(b, pos, 4)?) as usize;
            string(lua, b, pos, n)
        }
        0xca => {
            let x = take(b, pos, 4)?;
            num(f32::from_be_bytes([x[0], x[1], x[2], x[3]]) as f64)
        }
        0xcb => num(f64::from_bits(be(take(b, pos, 8)?))),
        0xcc => num(be(take(b, pos, 1)?) as f64),
        0xcd => num(be(take(b, pos, 2)?) as f64),
        0xce => num(be(take(b, pos, 4)?) as f64),
        0xcf => num(be(take(b, pos, 8)?) as f64),
        0xd0 => num(be(take(b, pos, 1)?) as u8 as i8 as f64),
        0xd1 => num(be(take(b, pos, 2)?) as u16 as i16 as f64),
        0xd2 => num(be(take(b, pos, 4)?) as u32 as i32 as f64),
        0xd3 => num(be(take(b, pos, 8)?) as i64 as f64),
        0xdc => {
            let n = be(take(b, pos, 2)?) as usize;
            array(lua, b, pos, n)
        }
        0xdd => {
            let n = be(take(b, pos, 4)?) as usize;
            array(lua, b, pos, n)
        }
        0xde => {
            let n = be(take(b, pos, 2)?) as usize;
            map(lua, b, pos, n)
        }
        0xdf => {
            let n = be(take(b, pos, 4)?) as usize;
            map(lua, b, pos, n)
        }
        _ => Err(mlua::Error::RuntimeError(
            "Bad data format in input.".into(),
        )),
    }
}

fn string(lua: &Lua, b: &[u8], pos: &mut usize, n: usize) -> mlua::Result<Value> {
    Ok(Value::String(lua.create_string(take(b, pos, n)?)?))
}

fn array(lua: &Lua, b: &[u8], pos: &mut usize, n: usize) -> mlua::Result<Value> {
    // Every element takes at least one byte: a count past the input is refused before
    // allocating for it.
    if n > b.len() - *pos {
        return Err(mlua::Error::RuntimeError("Missing bytes in input.".into()));
    }
    let t = lua.create_table_with_capacity(n, 0)?;
    for i in 1..=n {
        t.raw_set(i, decode(lua, b, pos)?)?;
    }
    Ok(Value::Table(t))
}

fn map(lua: &Lua, b: &[u8], pos: &mut usize, n: usize) -> mlua::Result<Value> {
    if n > b.len() - *pos {
        return Err(mlua::Error::RuntimeError("Missing bytes in input.".into()));
    }
    let t = lua.create_table()?;
    for _ in 0..n {
        let k = decode(lua, b, pos)?;
        let v = decode(lua, b, pos)?;
        if !k.is_nil() {
            t.raw_set(k, v)?;
        }
    }
    Ok(Value::Table(t))
}
