//! Set commands: SADD, SREM, SMEMBERS, SISMEMBER, SMISMEMBER, SCARD, SPOP, SRANDMEMBER, SMOVE,
//! SINTER, SUNION, SDIFF, SINTERSTORE, SUNIONSTORE, SDIFFSTORE.
//!
//! Semantics, replies, error texts and propagation follow Redis 7.0.15 `t_set.c` (verified
//! against redis-server 7.0.15): a missing key is an empty set; SPOP propagates one
//! `SREM key member` per popped member, or `DEL key` when the count takes the whole set; SMOVE
//! to the same key and writes that change nothing propagate nothing; the *STORE variants
//! overwrite the destination whatever its type and delete it when the result is empty (that
//! deletion propagates the command verbatim, as Redis does). Set replies are in our internal
//! order; Redis's order is its hash-table order, which clients cannot rely on either.

use rand::Rng;

use crate::command::{CommandSpec, READONLY, WRITE};
use crate::convert::parse_i64;
use crate::ctx::Ctx;
use crate::encoding::Collection;
use crate::notify::Flags;
use crate::reply::Reply;
use crate::types::Set;
use crate::value::{Obj, Value, View};

/// The commands of this module.
#[rustfmt::skip]
pub(crate) const COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("sadd", -3, WRITE, 1, 1, 1, sadd),
    CommandSpec::new("srem", -3, WRITE, 1, 1, 1, srem),
    CommandSpec::new("smembers", 2, READONLY, 1, 1, 1, smembers),
    CommandSpec::new("sismember", 3, READONLY, 1, 1, 1, sismember),
    CommandSpec::new("smismember", -3, READONLY, 1, 1, 1, smismember),
    CommandSpec::new("scard", 2, READONLY, 1, 1, 1, scard),
    CommandSpec::new("spop", -2, WRITE, 1, 1, 1, spop),
    CommandSpec::new("srandmember", -2, READONLY, 1, 1, 1, srandmember),
    CommandSpec::new("smove", 4, WRITE, 1, 2, 1, smove),
    CommandSpec::new("sinter", -2, READONLY, 1, -1, 1, sinter),
    CommandSpec::new("sunion", -2, READONLY, 1, -1, 1, sunion),
    CommandSpec::new("sdiff", -2, READONLY, 1, -1, 1, sdiff),
    CommandSpec::new("sinterstore", -3, WRITE, 1, -1, 1, sinterstore),
    CommandSpec::new("sunionstore", -3, WRITE, 1, -1, 1, sunionstore),
    CommandSpec::new("sdiffstore", -3, WRITE, 1, -1, 1, sdiffstore),
];

/// Largest |count| SRANDMEMBER with a negative count answers. Redis 7.0 streams any count (a
/// count near `-LONG_MAX` makes it build a reply of that many elements until memory runs out);
/// our replies are built in memory, so a larger count is refused with an error instead.
pub(crate) const MAX_RANDOM_REPLY: u64 = 1 << 24;

fn unwrap(r: Result<Reply, Reply>) -> Reply {
    r.unwrap_or_else(|e| e)
}

fn bulk_array<'a>(items: impl Iterator<Item = &'a [u8]>) -> Reply {
    Reply::Array(items.map(|m| Reply::Bulk(m.to_vec())).collect())
}

/// The set at `key`, created empty when missing.
fn set_or_create<'c>(ctx: &'c mut Ctx<'_>, key: &[u8]) -> Result<&'c mut Set, Reply> {
    if ctx.get_set(key)?.is_none() {
        ctx.insert(key, Value::Set(Set::new()));
    }
    ctx.get_set_mut(key)?
        .ok_or_else(|| Reply::err("ERR set vanished while being created"))
}

fn sadd(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> Reply {
    unwrap((|| {
        let set = set_or_create(ctx, argv[1])?;
        let added = argv[2..].iter().filter(|m| set.insert(**m)).count();
        let len = set.len();
        ctx.pin_if_converted(argv[1], Collection::Set, len, argv[2..].iter().copied());
        if added > 0 {
            ctx.event(Flags::SET, "sadd", argv[1]);
            ctx.propagate(argv);
        }
        Ok(Reply::Integer(added as i64))
    })())
}

fn srem(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> Reply {
    unwrap((|| {
        let Some(set) = ctx.get_set_mut(argv[1])? else {
            return Ok(Reply::Integer(0));
        };
        let removed = argv[2..].iter().filter(|m| set.remove(m)).count();
        if removed > 0 {
            ctx.event(Flags::SET, "srem", argv[1]);
            ctx.propagate(argv);
        }
        Ok(Reply::Integer(removed as i64))
    })())
}

fn smembers(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> Reply {
    unwrap((|| {
        Ok(match ctx.get_set(argv[1])? {
            Some(set) => bulk_array(set.iter()),
            None => Reply::Array(Vec::new()),
        })
    })())
}

fn sismember(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> Reply {
    unwrap((|| {
        let found = ctx.get_set(argv[1])?.is_some_and(|s| s.contains(argv[2]));
        Ok(Reply::Integer(i64::from(found)))
    })())
}

fn smismember(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> Reply {
    unwrap((|| {
        let set = ctx.get_set(argv[1])?;
        Ok(Reply::Array(
            argv[2..]
                .iter()
                .map(|m| Reply::Integer(i64::from(set.is_some_and(|s| s.contains(m)))))
                .collect(),
        ))
    })())
}

fn scard(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> Reply {
    unwrap((|| {
        Ok(Reply::Integer(
            ctx.get_set(argv[1])?.map_or(0, |s| s.len() as i64),
        ))
    })())
}

/// Parses SPOP's count as `getPositiveLongFromObjectOrReply` with its message.
fn positive_count(arg: &[u8]) -> Result<u64, Reply> {
    parse_i64(arg)
        .and_then(|n| u64::try_from(n).ok())
        .ok_or_else(|| Reply::err("ERR value is out of range, must be positive"))
}

fn spop(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> Reply {
    unwrap((|| {
        if argv.len() > 3 {
            return Err(Reply::syntax_error());
        }
        let count = match argv.get(2) {
            Some(a) => Some(positive_count(a)?),
            None => None,
        };
        let key = argv[1];
        let len = match ctx.get_set(key)? {
            Some(s) => s.len(),
            None => {
                return Ok(if count.is_some() {
                    Reply::Array(Vec::new())
                } else {
                    Reply::Nil
                });
            }
        };
        let Some(count) = count else {
            let pos = ctx.rng().gen_range(0..len);
            let member = ctx
                .get_set_mut(key)?
                .and_then(|s| s.remove_at(pos))
                .ok_or_else(|| Reply::err("ERR set vanished during SPOP"))?;
            ctx.event(Flags::SET, "spop", key);
            ctx.propagate(&[b"SREM", key, &member]);
            return Ok(Reply::Bulk(member));
        };
        if count == 0 {
            return Ok(Reply::Array(Vec::new()));
        }
        if count >= len as u64 {
            let Some(Value::Set(set)) = ctx.remove(key) else {
                return Err(Reply::err("ERR set vanished during SPOP"));
            };
            ctx.event(Flags::SET, "spop", key);
            ctx.event(Flags::GENERIC, "del", key);
            ctx.propagate(&[b"DEL", key]);
            return Ok(bulk_array(set.iter()));
        }
        let mut popped = Vec::with_capacity(count as usize);
        for _ in 0..count {
            let len = ctx.get_set(key)?.map_or(0, |s| s.len());
            if len == 0 {
                break;
            }
            let pos = ctx.rng().gen_range(0..len);
            if let Some(m) = ctx.get_set_mut(key)?.and_then(|s| s.remove_at(pos)) {
                popped.push(m);
            }
        }
        ctx.event(Flags::SET, "spop", key);
        for m in &popped {
            ctx.propagate(&[b"SREM", key, m]);
        }
        Ok(Reply::Array(popped.into_iter().map(Reply::Bulk).collect()))
    })())
}

fn srandmember(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> Reply {
    unwrap((|| {
        if argv.len() > 3 {
            return Err(Reply::syntax_error());
        }
        let count = match argv.get(2) {
            Some(a) => {
                let n = parse_i64(a).ok_or_else(Reply::not_integer)?;
                if n == i64::MIN {
                    return Err(Reply::err(
                        "ERR value is out of range, value must between -9223372036854775807 and \
                         9223372036854775807",
                    ));
                }
                Some(n)
            }
            None => None,
        };
        // Borrow the rng and the set at once: take a cheap snapshot of what we need.
        let key = argv[1];
        let Some(count) = count else {
            let len = ctx.get_set(key)?.map_or(0, |s| s.len());
            if len == 0 {
                return Ok(Reply::Nil);
            }
            let pos = ctx.rng().gen_range(0..len);
            return Ok(ctx
                .get_set(key)?
                .and_then(|s| s.member_at(pos))
                .map_or(Reply::Nil, |m| Reply::Bulk(m.to_vec())));
        };
        let len = ctx.get_set(key)?.map_or(0, |s| s.len());
        if len == 0 || count == 0 {
            return Ok(Reply::Array(Vec::new()));
        }
        let positions: Vec<usize> = if count < 0 {
            let n = count.unsigned_abs();
            if n > MAX_RANDOM_REPLY {
                return Err(Reply::err(format!(
                    "ERR count is too large: at most {MAX_RANDOM_REPLY} random members per call"
                )));
            }
            (0..n).map(|_| ctx.rng().gen_range(0..len)).collect()
        } else if count as u64 >= len as u64 {
            (0..len).collect()
        } else {
            rand::seq::index::sample(ctx.rng(), len, count as usize).into_vec()
        };
        let set = ctx.get_set(key)?;
        Ok(Reply::Array(
            positions
                .into_iter()
                .filter_map(|p| set.and_then(|s| s.member_at(p)))
                .map(|m| Reply::Bulk(m.to_vec()))
                .collect(),
        ))
    })())
}

fn smove(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> Reply {
    unwrap((|| {
        let (src, dst, member) = (argv[1], argv[2], argv[3]);
        // Both keys are looked up (and lazily expired) before any check, as Redis does.
        let src_state = ctx.get_set(src).map(|s| s.map(|s| s.contains(member)));
        let dst_state = ctx.get_set(dst).map(|_| ());
        let Some(present) = src_state? else {
            return Ok(Reply::Integer(0));
        };
        dst_state?;
        if src == dst || !present {
            return Ok(Reply::Integer(i64::from(present)));
        }
        let emptied = match ctx.get_set_mut(src)? {
            Some(s) => {
                s.remove(member);
                s.is_empty()
            }
            None => false,
        };
        ctx.event(Flags::SET, "srem", src);
        if emptied {
            // Deleted before the destination is written, as Redis does (event order).
            ctx.remove(src);
            ctx.event(Flags::GENERIC, "del", src);
        }
        let set = set_or_create(ctx, dst)?;
        set.insert(member);
        let len = set.len();
        ctx.pin_if_converted(dst, Collection::Set, len, [member]);
        ctx.event(Flags::SET, "sadd", dst);
        ctx.propagate(argv);
        Ok(Reply::Integer(1))
    })())
}

#[derive(Clone, Copy, PartialEq)]
enum Op {
    Inter,
    Union,
    Diff,
}

/// Computes the operation over the sets at `keys` (missing = empty), type-checking every key
/// first as Redis 7.0 does.
fn compute(ctx: &mut Ctx<'_>, keys: &[&[u8]], op: Op) -> Result<Set, Reply> {
    // Cheap handles (count increments) on every source, type-checked in order.
    let mut handles: Vec<Option<Obj>> = Vec::with_capacity(keys.len());
    let db = ctx.db();
    for k in keys {
        let v = ctx.slot_in(db, k).map(|s| s.value.clone());
        if let Some(v) = &v {
            if !matches!(v.view(), View::Arc(Value::Set(_))) {
                return Err(Reply::wrong_type());
            }
        }
        handles.push(v);
    }
    let sets: Vec<Option<&Set>> = handles
        .iter()
        .map(|h| match h.as_ref().map(Obj::view) {
            Some(View::Arc(Value::Set(s))) => Some(s),
            _ => None,
        })
        .collect();
    let mut out = Set::new();
    match op {
        Op::Inter => {
            if sets.iter().any(|s| s.is_none()) {
                return Ok(out);
            }
            let all: Vec<&Set> = sets.iter().flatten().copied().collect();
            let Some(smallest) = all.iter().min_by_key(|s| s.len()) else {
                return Ok(out);
            };
            for m in smallest.iter() {
                if all.iter().all(|s| s.contains(m)) {
                    out.insert(m);
                }
            }
        }
        Op::Union => {
            for m in sets.iter().flatten().flat_map(|s| s.iter()) {
                out.insert(m);
            }
        }
        Op::Diff => {
            let Some(Some(first)) = sets.first() else {
                return Ok(out);
            };
            for m in first.iter() {
                if !sets[1..].iter().flatten().any(|s| s.contains(m)) {
                    out.insert(m);
                }
            }
        }
    }
    Ok(out)
}

fn read_op(ctx: &mut Ctx<'_>, argv: &[&[u8]], op: Op) -> Reply {
    unwrap(compute(ctx, &argv[1..], op).map(|s| bulk_array(s.iter())))
}

fn store_op(ctx: &mut Ctx<'_>, argv: &[&[u8]], op: Op) -> Reply {
    unwrap((|| {
        let dst = argv[1];
        let result = compute(ctx, &argv[2..], op)?;
        let n = result.len();
        if n > 0 {
            ctx.insert(dst, Value::Set(result));
            let event = match op {
                Op::Inter => "sinterstore",
                Op::Union => "sunionstore",
                Op::Diff => "sdiffstore",
            };
            ctx.event(Flags::SET, event, dst);
            ctx.propagate(argv);
        } else if ctx.remove(dst).is_some() {
            ctx.event(Flags::GENERIC, "del", dst);
            ctx.propagate(argv);
        }
        Ok(Reply::Integer(n as i64))
    })())
}

fn sinter(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> Reply {
    read_op(ctx, argv, Op::Inter)
}

fn sunion(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> Reply {
    read_op(ctx, argv, Op::Union)
}

fn sdiff(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> Reply {
    read_op(ctx, argv, Op::Diff)
}

fn sinterstore(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> Reply {
    store_op(ctx, argv, Op::Inter)
}

fn sunionstore(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> Reply {
    store_op(ctx, argv, Op::Union)
}

fn sdiffstore(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> Reply {
    store_op(ctx, argv, Op::Diff)
}
