//! Hash commands: HSET, HMSET, HSETNX, HGET, HMGET, HDEL, HLEN, HEXISTS, HGETALL, HKEYS, HVALS,
//! HINCRBY, HINCRBYFLOAT, HSTRLEN.
//!
//! Semantics, replies, error texts and propagation follow Redis 7.0.15 `t_hash.c` (verified
//! against redis-server 7.0.15): HSET always propagates verbatim, HSETNX/HDEL only when they
//! changed something, HINCRBYFLOAT propagates `HSET key field <result>` so a replay does not
//! depend on float arithmetic. HINCRBYFLOAT computes in x87 extended precision like Redis's
//! `long double` ([`LongDouble`]), so its results are the same text.

use crate::command::{CommandSpec, READONLY, WRITE};
use crate::convert::parse_i64;
use crate::ctx::Ctx;
use crate::encoding::Collection;
use crate::notify::Flags;
use crate::reply::Reply;
use crate::types::{Hash, LongDouble};
use crate::value::Value;

/// The commands of this module.
#[rustfmt::skip]
pub(crate) const COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("hset", -4, WRITE, 1, 1, 1, hset),
    CommandSpec::new("hmset", -4, WRITE, 1, 1, 1, hmset),
    CommandSpec::new("hsetnx", 4, WRITE, 1, 1, 1, hsetnx),
    CommandSpec::new("hget", 3, READONLY, 1, 1, 1, hget),
    CommandSpec::new("hmget", -3, READONLY, 1, 1, 1, hmget),
    CommandSpec::new("hdel", -3, WRITE, 1, 1, 1, hdel),
    CommandSpec::new("hlen", 2, READONLY, 1, 1, 1, hlen),
    CommandSpec::new("hexists", 3, READONLY, 1, 1, 1, hexists),
    CommandSpec::new("hgetall", 2, READONLY, 1, 1, 1, hgetall),
    CommandSpec::new("hkeys", 2, READONLY, 1, 1, 1, hkeys),
    CommandSpec::new("hvals", 2, READONLY, 1, 1, 1, hvals),
    CommandSpec::new("hincrby", 4, WRITE, 1, 1, 1, hincrby),
    CommandSpec::new("hincrbyfloat", 4, WRITE, 1, 1, 1, hincrbyfloat),
    CommandSpec::new("hstrlen", 3, READONLY, 1, 1, 1, hstrlen),
];

fn unwrap(r: Result<Reply, Reply>) -> Reply {
    r.unwrap_or_else(|e| e)
}

/// The hash at `key`, created empty when missing.
fn hash_or_create<'c>(ctx: &'c mut Ctx<'_>, key: &[u8]) -> Result<&'c mut Hash, Reply> {
    if ctx.get_hash(key)?.is_none() {
        ctx.insert(key, Value::Hash(Hash::new()));
    }
    ctx.get_hash_mut(key)?
        .ok_or_else(|| Reply::err("ERR hash vanished while being created"))
}

/// HSET and HMSET: returns the number of new fields.
fn set_pairs(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> Result<i64, Reply> {
    if !argv.len().is_multiple_of(2) {
        let name = String::from_utf8_lossy(argv[0]).to_ascii_lowercase();
        return Err(Reply::err(format!(
            "ERR wrong number of arguments for '{name}' command"
        )));
    }
    let hash = hash_or_create(ctx, argv[1])?;
    let added = argv[2..]
        .chunks_exact(2)
        .filter(|p| hash.insert(p[0], p[1]))
        .count();
    let len = hash.len();
    ctx.pin_if_converted(argv[1], Collection::Hash, len, argv[2..].iter().copied());
    ctx.event(Flags::HASH, "hset", argv[1]);
    ctx.propagate(argv);
    Ok(added as i64)
}

fn hset(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> Reply {
    unwrap(set_pairs(ctx, argv).map(Reply::Integer))
}

fn hmset(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> Reply {
    unwrap(set_pairs(ctx, argv).map(|_| Reply::ok()))
}

fn hsetnx(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> Reply {
    unwrap((|| {
        if ctx.get_hash(argv[1])?.is_some_and(|h| h.contains(argv[2])) {
            return Ok(Reply::Integer(0));
        }
        let hash = hash_or_create(ctx, argv[1])?;
        hash.insert(argv[2], argv[3]);
        let len = hash.len();
        ctx.pin_if_converted(argv[1], Collection::Hash, len, argv[2..4].iter().copied());
        ctx.event(Flags::HASH, "hset", argv[1]);
        ctx.propagate(argv);
        Ok(Reply::Integer(1))
    })())
}

fn hget(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> Reply {
    unwrap((|| {
        Ok(match ctx.get_hash(argv[1])?.and_then(|h| h.get(argv[2])) {
            Some(v) => Reply::Bulk(v.to_vec()),
            None => Reply::Nil,
        })
    })())
}

fn hmget(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> Reply {
    unwrap((|| {
        let hash = ctx.get_hash(argv[1])?;
        Ok(Reply::Array(
            argv[2..]
                .iter()
                .map(|f| match hash.and_then(|h| h.get(f)) {
                    Some(v) => Reply::Bulk(v.to_vec()),
                    None => Reply::Nil,
                })
                .collect(),
        ))
    })())
}

fn hdel(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> Reply {
    unwrap((|| {
        let Some(hash) = ctx.get_hash_mut(argv[1])? else {
            return Ok(Reply::Integer(0));
        };
        let mut deleted = 0;
        for f in &argv[2..] {
            if hash.remove(f) {
                deleted += 1;
                if hash.is_empty() {
                    break;
                }
            }
        }
        if deleted > 0 {
            ctx.event(Flags::HASH, "hdel", argv[1]);
            ctx.propagate(argv);
        }
        Ok(Reply::Integer(deleted))
    })())
}

fn hlen(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> Reply {
    unwrap((|| {
        Ok(Reply::Integer(
            ctx.get_hash(argv[1])?.map_or(0, |h| h.len() as i64),
        ))
    })())
}

fn hexists(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> Reply {
    unwrap((|| {
        let found = ctx.get_hash(argv[1])?.is_some_and(|h| h.contains(argv[2]));
        Ok(Reply::Integer(i64::from(found)))
    })())
}

fn hstrlen(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> Reply {
    unwrap((|| {
        let n = ctx
            .get_hash(argv[1])?
            .and_then(|h| h.get(argv[2]))
            .map_or(0, |v| v.len());
        Ok(Reply::Integer(n as i64))
    })())
}

fn dump(ctx: &mut Ctx<'_>, key: &[u8], fields: bool, values: bool) -> Reply {
    unwrap((|| {
        let mut out = Vec::new();
        if let Some(h) = ctx.get_hash(key)? {
            for (f, v) in h.iter() {
                if fields {
                    out.push(Reply::Bulk(f.to_vec()));
                }
                if values {
                    out.push(Reply::Bulk(v.to_vec()));
                }
            }
        }
        Ok(Reply::Array(out))
    })())
}

fn hgetall(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> Reply {
    dump(ctx, argv[1], true, true)
}

fn hkeys(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> Reply {
    dump(ctx, argv[1], true, false)
}

fn hvals(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> Reply {
    dump(ctx, argv[1], false, true)
}

fn hincrby(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> Reply {
    unwrap((|| {
        let incr = parse_i64(argv[3]).ok_or_else(Reply::not_integer)?;
        let hash = hash_or_create(ctx, argv[1])?;
        let old = match hash.get(argv[2]) {
            Some(v) => {
                parse_i64(v).ok_or_else(|| Reply::err("ERR hash value is not an integer"))?
            }
            None => 0,
        };
        let new = old
            .checked_add(incr)
            .ok_or_else(|| Reply::err("ERR increment or decrement would overflow"))?;
        let text = new.to_string().into_bytes();
        hash.insert(argv[2], text.clone());
        let len = hash.len();
        ctx.pin_if_converted(argv[1], Collection::Hash, len, [argv[2], &text[..]]);
        ctx.event(Flags::HASH, "hincrby", argv[1]);
        ctx.propagate(argv);
        Ok(Reply::Integer(new))
    })())
}

fn hincrbyfloat(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> Reply {
    unwrap((|| {
        let incr = LongDouble::parse(argv[3]).ok_or_else(Reply::not_float)?;
        if !incr.is_finite() {
            return Err(Reply::err("ERR value is NaN or Infinity"));
        }
        let hash = hash_or_create(ctx, argv[1])?;
        let old = match hash.get(argv[2]) {
            Some(v) => {
                LongDouble::parse(v).ok_or_else(|| Reply::err("ERR hash value is not a float"))?
            }
            None => LongDouble::ZERO,
        };
        let new = old + incr;
        if !new.is_finite() {
            return Err(Reply::err("ERR increment would produce NaN or Infinity"));
        }
        let text = new.to_human_string().into_bytes();
        hash.insert(argv[2], text.clone());
        let len = hash.len();
        ctx.pin_if_converted(argv[1], Collection::Hash, len, [argv[2], &text[..]]);
        ctx.event(Flags::HASH, "hincrbyfloat", argv[1]);
        ctx.propagate(&[b"HSET", argv[1], argv[2], &text]);
        Ok(Reply::Bulk(text))
    })())
}
