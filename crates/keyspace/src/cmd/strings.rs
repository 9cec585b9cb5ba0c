//! String commands: SET (EX PX EXAT PXAT NX XX KEEPTTL GET), GET, GETSET, GETDEL, GETEX, SETNX,
//! SETEX, PSETEX, MSET, MSETNX, MGET, APPEND, STRLEN, INCR, DECR, INCRBY, DECRBY, INCRBYFLOAT,
//! SETRANGE, GETRANGE (and its old name SUBSTR).
//!
//! Semantics, replies, error texts and propagation follow Redis 7.0.15 `t_string.c`
//! (`setGenericCommand`, `parseExtendedStringArgumentsOrReply`, `getExpireMillisecondsOrReply`,
//! `getexCommand`, `incrDecrCommand`, `incrbyfloatCommand`, ...): any expiry option is propagated
//! as `SET k v PXAT <abs ms>`; `SET ... GET` drops the GET arguments; GETSET propagates as SET;
//! GETDEL as DEL; GETEX as PEXPIREAT, DEL or PERSIST; INCRBYFLOAT as `SET k <result> KEEPTTL`.
//! INCRBYFLOAT computes in x87 `long double` as Redis does (`ldouble.rs`).

use crate::command::{CommandSpec, READONLY, WRITE};
use crate::convert::parse_i64;
use crate::ctx::Ctx;
use crate::encoding::Pins;
use crate::notify::Flags;
use crate::reply::Reply;
use crate::types::LongDouble;
use crate::value::Value;

/// The commands of this module.
#[rustfmt::skip]
pub(crate) const COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("set", -3, WRITE, 1, 1, 1, set),
    CommandSpec::new("get", 2, READONLY, 1, 1, 1, get),
    CommandSpec::new("getset", 3, WRITE, 1, 1, 1, getset),
    CommandSpec::new("getdel", 2, WRITE, 1, 1, 1, getdel),
    CommandSpec::new("getex", -2, WRITE, 1, 1, 1, getex),
    CommandSpec::new("setnx", 3, WRITE, 1, 1, 1, setnx),
    CommandSpec::new("setex", 4, WRITE, 1, 1, 1, setex),
    CommandSpec::new("psetex", 4, WRITE, 1, 1, 1, psetex),
    CommandSpec::new("mset", -3, WRITE, 1, -1, 2, mset),
    CommandSpec::new("msetnx", -3, WRITE, 1, -1, 2, msetnx),
    CommandSpec::new("mget", -2, READONLY, 1, -1, 1, mget),
    CommandSpec::new("append", 3, WRITE, 1, 1, 1, append),
    CommandSpec::new("strlen", 2, READONLY, 1, 1, 1, strlen),
    CommandSpec::new("incr", 2, WRITE, 1, 1, 1, incr),
    CommandSpec::new("decr", 2, WRITE, 1, 1, 1, decr),
    CommandSpec::new("incrby", 3, WRITE, 1, 1, 1, incrby),
    CommandSpec::new("decrby", 3, WRITE, 1, 1, 1, decrby),
    CommandSpec::new("incrbyfloat", 3, WRITE, 1, 1, 1, incrbyfloat),
    CommandSpec::new("setrange", 4, WRITE, 1, 1, 1, setrange),
    CommandSpec::new("getrange", 4, READONLY, 1, 1, 1, getrange),
    CommandSpec::new("substr", 4, READONLY, 1, 1, 1, getrange),
];

/// Redis's `proto-max-bulk-len` default: the largest string SETRANGE/APPEND may build.
const MAX_STRING: i64 = 512 * 1024 * 1024;

const NX: u32 = 1;
const XX: u32 = 1 << 1;
const EX: u32 = 1 << 2;
const PX: u32 = 1 << 3;
const KEEPTTL: u32 = 1 << 4;
const GET: u32 = 1 << 5;
const EXAT: u32 = 1 << 6;
const PXAT: u32 = 1 << 7;
const PERSIST: u32 = 1 << 8;
const ANY_EXPIRE: u32 = EX | PX | EXAT | PXAT;

/// Options of SET (`set == true`, from argument 3) or GETEX (from argument 2), as
/// `parseExtendedStringArgumentsOrReply`. Returns the flags and the index of the expiry argument.
fn parse_extended(argv: &[&[u8]], set: bool) -> Result<(u32, Option<usize>), Reply> {
    let mut flags = 0u32;
    let mut expire = None;
    let mut j = if set { 3 } else { 2 };
    while j < argv.len() {
        let opt = argv[j];
        let has_next = j + 1 < argv.len();
        let is = |s: &[u8]| opt.eq_ignore_ascii_case(s);
        if is(b"nx") && flags & XX == 0 && set {
            flags |= NX;
        } else if is(b"xx") && flags & NX == 0 && set {
            flags |= XX;
        } else if is(b"get") && set {
            flags |= GET;
        } else if is(b"keepttl") && flags & (PERSIST | ANY_EXPIRE) == 0 && set {
            flags |= KEEPTTL;
        } else if is(b"persist") && !set && flags & (ANY_EXPIRE | KEEPTTL) == 0 {
            flags |= PERSIST;
        } else if has_next
            && flags & (KEEPTTL | PERSIST) == 0
            && ((is(b"ex") && flags & (EXAT | PX | PXAT) == 0)
                || (is(b"px") && flags & (EX | EXAT | PXAT) == 0)
                || (is(b"exat") && flags & (EX | PX | PXAT) == 0)
                || (is(b"pxat") && flags & (EX | EXAT | PX) == 0))
        {
            flags |= if is(b"ex") {
                EX
            } else if is(b"px") {
                PX
            } else if is(b"exat") {
                EXAT
            } else {
                PXAT
            };
            expire = Some(j + 1);
            j += 1;
        } else {
            return Err(Reply::syntax_error());
        }
        j += 1;
    }
    Ok((flags, expire))
}

/// `getExpireMillisecondsOrReply`: the absolute expiry in ms for an EX/PX/EXAT/PXAT argument.
pub(crate) fn expire_ms(
    arg: &[u8],
    seconds: bool,
    relative: bool,
    now: i64,
    cmd: &str,
) -> Result<i64, Reply> {
    let invalid = || Reply::err(format!("ERR invalid expire time in '{cmd}' command"));
    let mut ms = parse_i64(arg).ok_or_else(Reply::not_integer)?;
    if ms <= 0 || (seconds && ms > i64::MAX / 1000) {
        return Err(invalid());
    }
    if seconds {
        ms *= 1000;
    }
    if relative {
        ms = ms.checked_add(now).ok_or_else(invalid)?;
    }
    if ms <= 0 {
        return Err(invalid());
    }
    Ok(ms)
}

fn cmd_name(argv: &[&[u8]]) -> String {
    String::from_utf8_lossy(argv[0]).to_ascii_lowercase()
}

/// The shared body of SET, SETNX, SETEX, PSETEX (`setGenericCommand`).
#[allow(clippy::too_many_arguments)]
fn set_generic(
    ctx: &mut Ctx<'_>,
    argv: &[&[u8]],
    flags: u32,
    key: &[u8],
    val: &[u8],
    expire: Option<(&[u8], bool)>,
    ok_reply: Reply,
    abort_reply: Reply,
) -> Reply {
    let mut at = None;
    if let Some((arg, seconds)) = expire {
        match expire_ms(
            arg,
            seconds,
            flags & (EX | PX) != 0,
            ctx.now_ms(),
            &cmd_name(argv),
        ) {
            Ok(ms) => at = Some(ms),
            Err(e) => return e,
        }
    }
    let mut get_reply = None;
    if flags & GET != 0 {
        get_reply = Some(match ctx.get_str(key) {
            Ok(Some(v)) => Reply::Bulk(v.to_vec()),
            Ok(None) => Reply::Nil,
            Err(e) => return e,
        });
    }
    let found = ctx.exists(key);
    if (flags & NX != 0 && found) || (flags & XX != 0 && !found) {
        return get_reply.unwrap_or(abort_reply);
    }
    if flags & KEEPTTL != 0 {
        ctx.insert_keep_ttl(key, Value::String(val.into()));
    } else {
        ctx.insert(key, Value::String(val.into()));
    }
    ctx.event(Flags::STRING, "set", key);
    if let Some(ms) = at {
        ctx.set_expire_at(key, Some(ms));
        ctx.event(Flags::GENERIC, "expire", key);
        ctx.propagate(&[b"SET", key, val, b"PXAT", ms.to_string().as_bytes()]);
    } else if flags & GET != 0 {
        let kept: Vec<&[u8]> = argv
            .iter()
            .enumerate()
            .filter(|(j, a)| *j < 3 || !a.eq_ignore_ascii_case(b"get"))
            .map(|(_, a)| *a)
            .collect();
        ctx.propagate(&kept);
    } else {
        ctx.propagate(argv);
    }
    get_reply.unwrap_or(ok_reply)
}

fn set(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> Reply {
    let (flags, exp) = match parse_extended(argv, true) {
        Ok(x) => x,
        Err(e) => return e,
    };
    let expire = exp.map(|i| (argv[i], flags & (EX | EXAT) != 0));
    set_generic(
        ctx,
        argv,
        flags,
        argv[1],
        argv[2],
        expire,
        Reply::ok(),
        Reply::Nil,
    )
}

fn setnx(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> Reply {
    set_generic(
        ctx,
        argv,
        NX,
        argv[1],
        argv[2],
        None,
        Reply::Integer(1),
        Reply::Integer(0),
    )
}

fn setex(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> Reply {
    let e = Some((argv[2], true));
    set_generic(ctx, argv, EX, argv[1], argv[3], e, Reply::ok(), Reply::Nil)
}

fn psetex(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> Reply {
    let e = Some((argv[2], false));
    set_generic(ctx, argv, PX, argv[1], argv[3], e, Reply::ok(), Reply::Nil)
}

fn get(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> Reply {
    match ctx.get_str(argv[1]) {
        Ok(Some(v)) => Reply::Bulk(v.to_vec()),
        Ok(None) => Reply::Nil,
        Err(e) => e,
    }
}

fn getset(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> Reply {
    let old = match ctx.get_str(argv[1]) {
        Ok(v) => v.map(|v| v.to_vec()),
        Err(e) => return e,
    };
    ctx.insert(argv[1], Value::String(argv[2].into()));
    ctx.event(Flags::STRING, "set", argv[1]);
    ctx.propagate(&[b"SET", argv[1], argv[2]]);
    old.map_or(Reply::Nil, Reply::Bulk)
}

fn getdel(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> Reply {
    let old = match ctx.get_str(argv[1]) {
        Ok(Some(v)) => v.to_vec(),
        Ok(None) => return Reply::Nil,
        Err(e) => return e,
    };
    ctx.remove(argv[1]);
    ctx.event(Flags::GENERIC, "del", argv[1]);
    ctx.propagate(&[b"DEL", argv[1]]);
    Reply::Bulk(old)
}

fn getex(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> Reply {
    let (flags, exp) = match parse_extended(argv, false) {
        Ok(x) => x,
        Err(e) => return e,
    };
    let key = argv[1];
    let val = match ctx.get_str(key) {
        Ok(Some(v)) => v.to_vec(),
        Ok(None) => return Reply::Nil,
        Err(e) => return e,
    };
    let mut at = None;
    if let Some(i) = exp {
        let seconds = flags & (EX | EXAT) != 0;
        match expire_ms(
            argv[i],
            seconds,
            flags & (EX | PX) != 0,
            ctx.now_ms(),
            "getex",
        ) {
            Ok(ms) => at = Some(ms),
            Err(e) => return e,
        }
    }
    if let Some(ms) = at {
        if flags & (EXAT | PXAT) != 0 && ctx.already_expired(ms) {
            ctx.remove(key);
            ctx.event(Flags::GENERIC, "del", key);
            ctx.propagate(&[b"DEL", key]);
        } else {
            ctx.set_expire_at(key, Some(ms));
            ctx.event(Flags::GENERIC, "expire", key);
            ctx.propagate(&[b"PEXPIREAT", key, ms.to_string().as_bytes()]);
        }
    } else if flags & PERSIST != 0 && ctx.expire_at(key).is_some() {
        ctx.set_expire_at(key, None);
        ctx.event(Flags::GENERIC, "persist", key);
        ctx.propagate(&[b"PERSIST", key]);
    }
    Reply::Bulk(val)
}

fn mset(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> Reply {
    if argv.len().is_multiple_of(2) {
        return Reply::err("ERR wrong number of arguments for 'mset' command");
    }
    for kv in argv[1..].chunks(2) {
        ctx.insert(kv[0], Value::String(kv[1].into()));
        ctx.event(Flags::STRING, "set", kv[0]);
    }
    ctx.propagate(argv);
    Reply::ok()
}

fn msetnx(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> Reply {
    if argv.len().is_multiple_of(2) {
        return Reply::err("ERR wrong number of arguments for 'msetnx' command");
    }
    for kv in argv[1..].chunks(2) {
        if ctx.exists(kv[0]) {
            return Reply::Integer(0);
        }
    }
    for kv in argv[1..].chunks(2) {
        ctx.insert(kv[0], Value::String(kv[1].into()));
        ctx.event(Flags::STRING, "set", kv[0]);
    }
    ctx.propagate(argv);
    Reply::Integer(1)
}

fn mget(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> Reply {
    let mut out = Vec::with_capacity(argv.len() - 1);
    for k in &argv[1..] {
        out.push(match ctx.get_str(k) {
            Ok(Some(s)) => Reply::Bulk(s.to_vec()),
            _ => Reply::Nil,
        });
    }
    Reply::Array(out)
}

fn string_too_long() -> Reply {
    Reply::err("ERR string exceeds maximum allowed size (proto-max-bulk-len)")
}

fn append(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> Reply {
    let (key, add) = (argv[1], argv[2]);
    let len = match ctx.get_str(key) {
        Err(e) => return e,
        Ok(None) => {
            ctx.insert(key, Value::String(add.into()));
            add.len()
        }
        Ok(Some(cur)) => {
            if cur.len() as i64 + add.len() as i64 > MAX_STRING {
                return string_too_long();
            }
            let len = match ctx.get_str_mut(key) {
                Ok(Some(s)) => {
                    s.extend_from_slice(add);
                    s.len()
                }
                _ => 0,
            };
            // Appended in place: `raw` from now on (`dbUnshareStringValue`).
            ctx.pin(key, Pins::RAW);
            len
        }
    };
    ctx.event(Flags::STRING, "append", key);
    ctx.propagate(argv);
    Reply::Integer(len as i64)
}

fn strlen(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> Reply {
    match ctx.get_str(argv[1]) {
        Ok(v) => Reply::Integer(v.map_or(0, |s| s.len() as i64)),
        Err(e) => e,
    }
}

/// `incrDecrCommand`: add `incr` to the integer in `key` (keeping its TTL).
fn incr_decr(ctx: &mut Ctx<'_>, argv: &[&[u8]], incr: i64) -> Reply {
    let key = argv[1];
    let old = match ctx.get_str(key) {
        Err(e) => return e,
        Ok(None) => 0,
        Ok(Some(s)) => match parse_i64(s) {
            Some(v) => v,
            None => return Reply::not_integer(),
        },
    };
    let Some(new) = old.checked_add(incr) else {
        return Reply::err("ERR increment or decrement would overflow");
    };
    ctx.insert_keep_ttl(key, Value::String(new.to_string().as_bytes().into()));
    ctx.event(Flags::STRING, "incrby", key);
    ctx.propagate(argv);
    Reply::Integer(new)
}

fn incr(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> Reply {
    incr_decr(ctx, argv, 1)
}

fn decr(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> Reply {
    incr_decr(ctx, argv, -1)
}

fn incrby(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> Reply {
    match parse_i64(argv[2]) {
        Some(n) => incr_decr(ctx, argv, n),
        None => Reply::not_integer(),
    }
}

fn decrby(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> Reply {
    match parse_i64(argv[2]) {
        Some(i64::MIN) => Reply::err("ERR decrement would overflow"),
        Some(n) => incr_decr(ctx, argv, -n),
        None => Reply::not_integer(),
    }
}

fn incrbyfloat(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> Reply {
    // Redis computes in x87 `long double` and prints with "%.17Lf" trimmed: the software
    // long double of `crate::ldouble` gives the same text.
    let key = argv[1];
    let old = match ctx.get_str(key) {
        Err(e) => return e,
        Ok(None) => LongDouble::ZERO,
        Ok(Some(s)) => match LongDouble::parse(s) {
            Some(v) => v,
            None => return Reply::not_float(),
        },
    };
    let Some(incr) = LongDouble::parse(argv[2]) else {
        return Reply::not_float();
    };
    let new = old + incr;
    if !new.is_finite() {
        return Reply::err("ERR increment would produce NaN or Infinity");
    }
    let text = new.to_human_string().into_bytes();
    ctx.insert_keep_ttl(key, Value::String(text.as_slice().into()));
    // `createStringObjectFromLongDouble`: never the `int` encoding.
    ctx.pin(key, Pins::NOT_INT);
    ctx.event(Flags::STRING, "incrbyfloat", key);
    ctx.propagate(&[b"SET", key, &text, b"KEEPTTL"]);
    Reply::Bulk(text)
}

fn setrange(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> Reply {
    let (key, value) = (argv[1], argv[3]);
    let Some(offset) = parse_i64(argv[2]) else {
        return Reply::not_integer();
    };
    if offset < 0 {
        return Reply::err("ERR offset is out of range");
    }
    let cur_len = match ctx.get_str(key) {
        Err(e) => return e,
        Ok(None) => None,
        Ok(Some(s)) => Some(s.len()),
    };
    if value.is_empty() {
        return Reply::Integer(cur_len.unwrap_or(0) as i64);
    }
    if offset.saturating_add(value.len() as i64) > MAX_STRING {
        return string_too_long();
    }
    let off = offset as usize;
    let end = off + value.len();
    let len = match cur_len {
        None => {
            let mut s = vec![0u8; end];
            s[off..].copy_from_slice(value);
            ctx.insert(key, Value::String(s.into()));
            end
        }
        Some(_) => match ctx.get_str_mut(key) {
            Ok(Some(s)) => {
                if s.len() < end {
                    s.resize(end, 0);
                }
                s[off..end].copy_from_slice(value);
                s.len()
            }
            _ => 0,
        },
    };
    // Written in place, or created as a buffer: `raw` either way.
    ctx.pin(key, Pins::RAW);
    ctx.event(Flags::STRING, "setrange", key);
    ctx.propagate(argv);
    Reply::Integer(len as i64)
}

fn getrange(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> Reply {
    let (Some(mut start), Some(mut end)) = (parse_i64(argv[2]), parse_i64(argv[3])) else {
        return Reply::not_integer();
    };
    let s = match ctx.get_str(argv[1]) {
        Err(e) => return e,
        Ok(None) => return Reply::bulk(""),
        Ok(Some(s)) => s,
    };
    let len = s.len() as i64;
    if start < 0 && end < 0 && start > end {
        return Reply::bulk("");
    }
    if start < 0 {
        start += len;
    }
    if end < 0 {
        end += len;
    }
    start = start.max(0);
    end = end.max(0);
    if end >= len {
        end = len - 1;
    }
    if start > end || len == 0 {
        return Reply::bulk("");
    }
    Reply::Bulk(s[start as usize..=end as usize].to_vec())
}
