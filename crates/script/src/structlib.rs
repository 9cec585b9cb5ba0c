//! `struct`: the binary packing library Redis bundles (Roberto Ierusalimschy's `struct.c`
//! 1.7 as Redis 7.0 ships it in `deps/lua/src/lua_struct.c`), in Rust.
//!
//! `struct.pack(fmt, ...)`, `struct.unpack(fmt, data [, pos])`, `struct.size(fmt)` with the
//! C library's formats (`>` `<` `![n]` `x` `b/B` `h/H` `l/L` `T` `i/I[n]` `c[n]` `s` `f` `d`,
//! space ignored), its sizes on x86-64 Linux (the platform of the oracle: long and size_t 8
//! bytes, int 4, native order little endian, maximum alignment 8), its integer conversions
//! (through a 64-bit `long`, sizes up to 32 bytes) and its error messages, argument numbers
//! included (a `c`/`s` string too short names the argument after it, as the C code does).

use mlua::{Lua, MultiValue, Table, Value};

use crate::libs::lua_number_string;

/// `MAXINTSIZE`: the largest `i`/`I` size.
const MAX_INT_SIZE: usize = 32;
/// `MAXALIGN` on x86-64: the padding of a double after a char (8).
const MAX_ALIGN: usize = 8;
/// 2^63, where C's double-to-long conversion stops fitting.
const TWO63: f64 = (1u64 << 63) as f64;
/// Lua 5.1's `LUAI_MAXCSTACK`: a C function's stack slots (`luaL_checkstack` limit).
const MAX_C_STACK: usize = 8000;

/// Install `struct` as a global of `lua` (before the sandbox locks it).
pub fn install(lua: &Lua) -> mlua::Result<()> {
    lua.globals().raw_set("struct", table(lua)?)
}

fn table(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.raw_set(
        "pack",
        lua.create_function(|lua, args: MultiValue| {
            let mut a = Args::new(lua, args, "pack");
            // b_pack pushes a nil after its arguments (the mark before its buffer): a missing
            // argument right after the last one is that nil.
            a.v.push(Value::Nil);
            pack(&a).map_err(|e| a.located(e))
        })?,
    )?;
    // unpack may return thousands of values: behind a C frame that unpacks a table (see
    // `vm::many_results`); the caller is one level further up.
    let unpack_fn = lua.create_function(|lua, args: MultiValue| {
        let a = Args::at_level(lua, args, "unpack", 1);
        unpack(lua, &a).map_err(|e| a.located(e))
    })?;
    t.raw_set("unpack", crate::vm::many_results(lua, unpack_fn)?)?;
    t.raw_set(
        "size",
        lua.create_function(|lua, args: MultiValue| {
            let a = Args::new(lua, args, "size");
            size(&a).map_err(|e| a.located(e))
        })?,
    )?;
    Ok(t)
}

fn error(msg: String) -> mlua::Error {
    mlua::Error::RuntimeError(msg)
}

/// A call's arguments and the name `luaL_argerror` reports (the name the caller used, `?`
/// when it has none, argument numbers shifted for a method call).
struct Args {
    v: Vec<Value>,
    name: String,
    method: bool,
    /// `luaL_where(L, 1)`: `source:line: ` of the calling Lua function, empty for a C caller.
    at: String,
}

impl Args {
    fn new(lua: &Lua, args: MultiValue, default: &str) -> Args {
        Args::at_level(lua, args, default, 0)
    }

    /// `level`: the stack level of the C function the script called (0: this callback).
    fn at_level(lua: &Lua, args: MultiValue, default: &str, level: usize) -> Args {
        let (name, method) = lua
            .inspect_stack(level)
            .map(|d| {
                let n = d.names();
                (n.name.map(|s| s.to_string()), n.name_what == Some("method"))
            })
            .unwrap_or((Some(default.to_string()), false));
        let at = lua
            .inspect_stack(level + 1)
            .and_then(|d| {
                let line = d.curr_line();
                let src = d.source().short_src.map(|s| s.to_string())?;
                (line > 0).then(|| format!("{src}:{line}: "))
            })
            .unwrap_or_default();
        Args {
            v: args.into_iter().collect(),
            name: name.unwrap_or_else(|| "?".to_string()),
            method,
            at,
        }
    }

    /// Every error of the library is raised by `luaL_error`, which prefixes the position of
    /// the caller.
    fn located(&self, e: mlua::Error) -> mlua::Error {
        match e {
            mlua::Error::RuntimeError(m) => error(format!("{}{m}", self.at)),
            other => other,
        }
    }

    /// Lua 5.1's `luaL_argerror`.
    fn arg_error(&self, narg: usize, extra: &str) -> mlua::Error {
        let mut narg = narg as i64;
        if self.method {
            narg -= 1;
            if narg == 0 {
                return error(format!("calling '{}' on bad self ({extra})", self.name));
            }
        }
        error(format!("bad argument #{narg} to '{}' ({extra})", self.name))
    }

    fn type_error(&self, narg: usize, want: &str) -> mlua::Error {
        let got = match self.v.get(narg - 1) {
            None => "no value",
            Some(v) => v.type_name(),
        };
        self.arg_error(narg, &format!("{want} expected, got {got}"))
    }

    /// `luaL_checknumber` (numbers, and strings `lua_tonumber` converts).
    fn number(&self, narg: usize) -> mlua::Result<f64> {
        match self.v.get(narg - 1) {
            Some(Value::Integer(i)) => Ok(*i as f64),
            Some(Value::Number(n)) => Ok(*n),
            Some(Value::String(s)) => {
                str_to_number(&s.as_bytes()).ok_or_else(|| self.type_error(narg, "number"))
            }
            _ => Err(self.type_error(narg, "number")),
        }
    }

    /// `luaL_checklstring` (strings, and numbers as `tostring` writes them).
    fn string(&self, narg: usize) -> mlua::Result<Vec<u8>> {
        match self.v.get(narg - 1) {
            Some(Value::String(s)) => Ok(s.as_bytes().to_vec()),
            Some(Value::Integer(i)) => Ok(i.to_string().into_bytes()),
            Some(Value::Number(n)) => Ok(lua_number_string(*n).into_bytes()),
            _ => Err(self.type_error(narg, "string")),
        }
    }

    /// `luaL_optinteger` (absent or nil: `default`; numbers truncate toward zero).
    fn opt_integer(&self, narg: usize, default: i64) -> mlua::Result<i64> {
        match self.v.get(narg - 1) {
            None | Some(Value::Nil) => Ok(default),
            Some(Value::Integer(i)) => Ok(*i),
            Some(Value::Number(n)) => Ok(f64_to_i64(*n)),
            Some(Value::String(s)) => str_to_number(&s.as_bytes())
                .map(f64_to_i64)
                .ok_or_else(|| self.type_error(narg, "number")),
            _ => Err(self.type_error(narg, "number")),
        }
    }
}

/// Lua 5.1's `luaO_str2d`: `strtod` (or hex with `0x`), surrounding spaces allowed.
fn str_to_number(s: &[u8]) -> Option<f64> {
    let t = std::str::from_utf8(s).ok()?;
    let t = t.trim_matches(|c: char| c.is_ascii_whitespace());
    if t.is_empty() {
        return None;
    }
    let (neg, body) = match t.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    if let Some(hex) = body.strip_prefix("0x").or_else(|| body.strip_prefix("0X")) {
        let v = u64::from_str_radix(hex, 16).ok()? as f64;
        return Some(if neg { -v } else { v });
    }
    let lower = body.to_ascii_lowercase();
    if lower.starts_with("inf") || lower.starts_with("nan") {
        return match lower.as_str() {
            "inf" | "infinity" => Some(if neg {
                f64::NEG_INFINITY
            } else {
                f64::INFINITY
            }),
            "nan" => Some(f64::NAN),
            _ => None,
        };
    }
    t.parse::<f64>().ok()
}

/// C's `(long)d` as x86-64 computes it (`cvttsd2si`: out of range and NaN give `i64::MIN`).
fn f64_to_i64(d: f64) -> i64 {
    if !(-TWO63..TWO63).contains(&d) {
        i64::MIN
    } else {
        d as i64
    }
}

/// C's `(unsigned long)d` as gcc compiles it on x86-64: below 2^63 (or NaN, the comparison
/// being unordered) through `(long)d`, otherwise `(long)(d - 2^63) ^ 2^63`.
fn f64_to_u64(d: f64) -> u64 {
    if d.is_nan() || d < TWO63 {
        f64_to_i64(d) as u64
    } else {
        (f64_to_i64(d - TWO63) as u64) ^ (1u64 << 63)
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Endian {
    Big,
    Little,
}

struct Header {
    endian: Endian,
    align: usize,
}

impl Header {
    fn new() -> Header {
        Header {
            endian: Endian::Little,
            align: 1,
        }
    }
}

/// A format string being read (`getnum` advances it).
struct Fmt<'a> {
    s: &'a [u8],
    i: usize,
}

impl Fmt<'_> {
    fn next(&mut self) -> Option<u8> {
        let c = self.s.get(self.i).copied()?;
        // The C code stops at the string's first NUL.
        if c == 0 {
            return None;
        }
        self.i += 1;
        Some(c)
    }

    /// `getnum`: a decimal number here, or `default`.
    fn num(&mut self, default: usize) -> mlua::Result<usize> {
        if !self.s.get(self.i).is_some_and(u8::is_ascii_digit) {
            return Ok(default);
        }
        let mut a: i32 = 0;
        while let Some(&c) = self.s.get(self.i).filter(|c| c.is_ascii_digit()) {
            let d = i32::from(c - b'0');
            if a > i32::MAX / 10 || a * 10 > i32::MAX - d {
                return Err(error("integral size overflow".into()));
            }
            a = a * 10 + d;
            self.i += 1;
        }
        Ok(a as usize)
    }
}

/// `optsize`: the size of option `opt` (reads a count after `c`, `i`, `I`).
fn opt_size(opt: u8, fmt: &mut Fmt<'_>) -> mlua::Result<usize> {
    Ok(match opt {
        b'B' | b'b' | b'x' => 1,
        b'H' | b'h' => 2,
        b'L' | b'l' | b'T' | b'd' => 8,
        b'f' => 4,
        b'c' => fmt.num(1)?,
        b'i' | b'I' => {
            let sz = fmt.num(4)?;
            if sz > MAX_INT_SIZE {
                return Err(error(format!(
                    "integral size {sz} is larger than limit of {MAX_INT_SIZE}"
                )));
            }
            sz
        }
        _ => 0,
    })
}

/// `gettoalign`: padding before an item of `size` at offset `len`.
fn to_align(len: usize, h: &Header, opt: u8, size: usize) -> usize {
    if size == 0 || opt == b'c' {
        return 0;
    }
    let size = size.min(h.align);
    (size.wrapping_sub(len & (size - 1))) & (size - 1)
}

/// `controloptions`: endianness, alignment, space; anything else is an invalid option.
fn control(args: &Args, opt: u8, fmt: &mut Fmt<'_>, h: &mut Header) -> mlua::Result<()> {
    match opt {
        b' ' => Ok(()),
        b'>' => {
            h.endian = Endian::Big;
            Ok(())
        }
        b'<' => {
            h.endian = Endian::Little;
            Ok(())
        }
        b'!' => {
            let a = fmt.num(MAX_ALIGN)?;
            if a == 0 || a & (a - 1) != 0 {
                return Err(error(format!("alignment {a} is not a power of 2")));
            }
            h.align = a;
            Ok(())
        }
        _ => Err(args.arg_error(1, &format!("invalid format option '{}'", char::from(opt)))),
    }
}

/// Bytes `b` (native, little-endian order) in `endian` order.
fn ordered(mut b: Vec<u8>, endian: Endian) -> Vec<u8> {
    if endian == Endian::Big {
        b.reverse();
    }
    b
}

fn pack(args: &Args) -> mlua::Result<mlua::BString> {
    let fmt_s = args.string(1)?;
    let mut fmt = Fmt { s: &fmt_s, i: 0 };
    let mut h = Header::new();
    let mut arg = 2;
    let mut out: Vec<u8> = Vec::new();
    let mut total = 0usize;
    while let Some(opt) = fmt.next() {
        let mut size = opt_size(opt, &mut fmt)?;
        let pad = to_align(total, &h, opt, size);
        total += pad;
        out.resize(out.len() + pad, 0);
        match opt {
            b'b' | b'B' | b'h' | b'H' | b'l' | b'L' | b'T' | b'i' | b'I' => {
                let n = args.number(arg)?;
                arg += 1;
                let mut value = if n < 0.0 {
                    f64_to_i64(n) as u64
                } else {
                    f64_to_u64(n)
                };
                let mut buf = vec![0u8; size];
                for b in buf.iter_mut() {
                    *b = (value & 0xff) as u8;
                    value >>= 8;
                }
                out.extend(ordered(buf, h.endian));
            }
            b'x' => out.push(0),
            b'f' => {
                let f = args.number(arg)? as f32;
                arg += 1;
                out.extend(ordered(f.to_le_bytes().to_vec(), h.endian));
            }
            b'd' => {
                let d = args.number(arg)?;
                arg += 1;
                out.extend(ordered(d.to_le_bytes().to_vec(), h.endian));
            }
            b'c' | b's' => {
                let s = args.string(arg)?;
                arg += 1;
                if size == 0 {
                    size = s.len();
                }
                if s.len() < size {
                    // The C code checks after moving to the next argument.
                    return Err(args.arg_error(arg, "string too short"));
                }
                out.extend_from_slice(&s[..size]);
                if opt == b's' {
                    out.push(0);
                    size += 1;
                }
            }
            _ => control(args, opt, &mut fmt, &mut h)?,
        }
        total += size;
    }
    Ok(mlua::BString::from(out))
}

/// `getinteger`: `size` bytes in `endian` order through a 64-bit `long` (bytes beyond 8
/// shift out; sign extension from bit `size*8-1`, its shift masked to 6 bits as x86-64 does).
fn get_integer(b: &[u8], endian: Endian, signed: bool) -> f64 {
    let mut l: u64 = 0;
    let bytes: Box<dyn Iterator<Item = &u8>> = match endian {
        Endian::Big => Box::new(b.iter()),
        Endian::Little => Box::new(b.iter().rev()),
    };
    for &x in bytes {
        l = (l << 8) | u64::from(x);
    }
    if !signed {
        return l as f64;
    }
    let shift = ((b.len() * 8) as u32).wrapping_sub(1) & 63;
    let mask = u64::MAX << shift;
    if l & mask != 0 {
        l |= mask;
    }
    l as i64 as f64
}

fn unpack(lua: &Lua, args: &Args) -> mlua::Result<MultiValue> {
    let fmt_s = args.string(1)?;
    let data = args.string(2)?;
    let ld = data.len();
    // `size_t pos = luaL_optinteger(...)`: a negative offset wraps to a huge one.
    let pos0 = args.opt_integer(3, 1)? as u64 as usize;
    if pos0 == 0 {
        return Err(args.arg_error(3, "offset must be 1 or greater"));
    }
    let mut pos = pos0 - 1;
    let mut fmt = Fmt { s: &fmt_s, i: 0 };
    let mut h = Header::new();
    // Results go straight into a table (a string held in Rust would take a reference slot).
    let t = lua.create_table()?;
    let mut n = 0usize;
    let push = |v: Value, n: &mut usize| -> mlua::Result<()> {
        *n += 1;
        t.raw_set(*n, v)
    };
    let nargs = args.v.len();
    let fits = |size: usize, pos: usize| size <= ld && pos <= ld - size;
    while let Some(opt) = fmt.next() {
        let mut size = opt_size(opt, &mut fmt)?;
        pos = pos.wrapping_add(to_align(pos, &h, opt, size));
        if !fits(size, pos) {
            return Err(args.arg_error(2, "data string too short"));
        }
        if nargs + n + 2 > MAX_C_STACK {
            return Err(error("stack overflow (too many results)".into()));
        }
        match opt {
            b'b' | b'B' | b'h' | b'H' | b'l' | b'L' | b'T' | b'i' | b'I' => {
                let v = get_integer(&data[pos..pos + size], h.endian, opt.is_ascii_lowercase());
                push(Value::Number(v), &mut n)?;
            }
            b'x' => {}
            b'f' => {
                let mut b = [0u8; 4];
                b.copy_from_slice(&data[pos..pos + 4]);
                if h.endian == Endian::Big {
                    b.reverse();
                }
                push(Value::Number(f64::from(f32::from_le_bytes(b))), &mut n)?;
            }
            b'd' => {
                let mut b = [0u8; 8];
                b.copy_from_slice(&data[pos..pos + 8]);
                if h.endian == Endian::Big {
                    b.reverse();
                }
                push(Value::Number(f64::from_le_bytes(b)), &mut n)?;
            }
            b'c' => {
                if size == 0 {
                    // The previous result is the length (a number, or a string Lua reads as one).
                    let last: Value = if n == 0 { Value::Nil } else { t.raw_get(n)? };
                    let prev = match last {
                        Value::Number(x) => Some(x),
                        Value::Integer(x) => Some(x as f64),
                        Value::String(s) => str_to_number(&s.as_bytes()),
                        _ => None,
                    };
                    let Some(x) = prev else {
                        return Err(error("format 'c0' needs a previous size".into()));
                    };
                    size = f64_to_u64(x) as usize;
                    t.raw_set(n, Value::Nil)?;
                    n -= 1;
                    if !fits(size, pos) {
                        return Err(args.arg_error(2, "data string too short"));
                    }
                }
                push(
                    Value::String(lua.create_string(&data[pos..pos + size])?),
                    &mut n,
                )?;
            }
            b's' => {
                let Some(e) = data[pos..].iter().position(|&b| b == 0) else {
                    return Err(error("unfinished string in data".into()));
                };
                size = e + 1;
                push(
                    Value::String(lua.create_string(&data[pos..pos + e])?),
                    &mut n,
                )?;
            }
            _ => control(args, opt, &mut fmt, &mut h)?,
        }
        pos = pos.wrapping_add(size);
    }
    push(Value::Number(pos.wrapping_add(1) as i64 as f64), &mut n)?;
    Ok(MultiValue::from_iter([
        Value::LightUserData(mlua::LightUserData(crate::vm::PACKED)),
        Value::Table(t),
        Value::Integer(n as i64),
    ]))
}

fn size(args: &Args) -> mlua::Result<f64> {
    let fmt_s = args.string(1)?;
    let mut fmt = Fmt { s: &fmt_s, i: 0 };
    let mut h = Header::new();
    let mut pos = 0usize;
    while let Some(opt) = fmt.next() {
        let size = opt_size(opt, &mut fmt)?;
        pos += to_align(pos, &h, opt, size);
        if opt == b's' {
            return Err(args.arg_error(1, "option 's' has no fixed size"));
        } else if opt == b'c' && size == 0 {
            return Err(args.arg_error(1, "option 'c0' has no fixed size"));
        }
        if !opt.is_ascii_alphanumeric() {
            control(args, opt, &mut fmt, &mut h)?;
        }
        pos += size;
    }
    Ok(pos as f64)
}
