//! List commands: LPUSH, RPUSH, LPUSHX, RPUSHX, LPOP, RPOP, LRANGE, LINDEX, LLEN, LSET, LREM,
//! LTRIM, LINSERT, LMOVE, RPOPLPUSH.
//!
//! Semantics, replies, error texts and propagation follow Redis 7.0.15 `t_list.c` (verified
//! against redis-server 7.0.15), including the order of checks (LINDEX looks the key up before
//! parsing the index, LRANGE/LTRIM/LREM parse first), `*-1` for LPOP with a count on a missing
//! key, and no propagation for writes that change nothing (LPOP with count 0, LTRIM keeping
//! everything, LREM or LINSERT that find nothing). Everything else propagates verbatim.

use crate::command::{CommandSpec, READONLY, WRITE};
use crate::convert::parse_i64;
use crate::ctx::Ctx;
use crate::notify::Flags;
use crate::reply::Reply;
use crate::types::List;
use crate::value::Value;

/// The commands of this module.
#[rustfmt::skip]
pub(crate) const COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("lpush", -3, WRITE, 1, 1, 1, lpush),
    CommandSpec::new("rpush", -3, WRITE, 1, 1, 1, rpush),
    CommandSpec::new("lpushx", -3, WRITE, 1, 1, 1, lpushx),
    CommandSpec::new("rpushx", -3, WRITE, 1, 1, 1, rpushx),
    CommandSpec::new("lpop", -2, WRITE, 1, 1, 1, lpop),
    CommandSpec::new("rpop", -2, WRITE, 1, 1, 1, rpop),
    CommandSpec::new("lrange", 4, READONLY, 1, 1, 1, lrange),
    CommandSpec::new("lindex", 3, READONLY, 1, 1, 1, lindex),
    CommandSpec::new("llen", 2, READONLY, 1, 1, 1, llen),
    CommandSpec::new("lset", 4, WRITE, 1, 1, 1, lset),
    CommandSpec::new("lrem", 4, WRITE, 1, 1, 1, lrem),
    CommandSpec::new("ltrim", 4, WRITE, 1, 1, 1, ltrim),
    CommandSpec::new("linsert", 5, WRITE, 1, 1, 1, linsert),
    CommandSpec::new("lmove", 5, WRITE, 1, 2, 1, lmove),
    CommandSpec::new("rpoplpush", 3, WRITE, 1, 2, 1, rpoplpush),
];

fn unwrap(r: Result<Reply, Reply>) -> Reply {
    r.unwrap_or_else(|e| e)
}

fn int_arg(arg: &[u8]) -> Result<i64, Reply> {
    parse_i64(arg).ok_or_else(Reply::not_integer)
}

/// Which end of a list.
#[derive(Clone, Copy, PartialEq, Eq)]
enum End {
    Left,
    Right,
}

fn parse_end(arg: &[u8]) -> Result<End, Reply> {
    if arg.eq_ignore_ascii_case(b"left") {
        Ok(End::Left)
    } else if arg.eq_ignore_ascii_case(b"right") {
        Ok(End::Right)
    } else {
        Err(Reply::syntax_error())
    }
}

/// The list at `key`, created empty when missing.
fn list_or_create<'c>(ctx: &'c mut Ctx<'_>, key: &[u8]) -> Result<&'c mut List, Reply> {
    if ctx.get_list(key)?.is_none() {
        ctx.insert(key, Value::List(List::new()));
    }
    ctx.get_list_mut(key)?
        .ok_or_else(|| Reply::err("ERR list vanished while being created"))
}

fn push(list: &mut List, end: End, v: &[u8]) {
    match end {
        End::Left => list.push_front(v),
        End::Right => list.push_back(v),
    }
}

fn pop(list: &mut List, end: End) -> Option<Vec<u8>> {
    match end {
        End::Left => list.pop_front(),
        End::Right => list.pop_back(),
    }
}

fn push_generic(ctx: &mut Ctx<'_>, argv: &[&[u8]], end: End, only_existing: bool) -> Reply {
    unwrap((|| {
        let list = if only_existing {
            match ctx.get_list_mut(argv[1])? {
                Some(l) => l,
                None => return Ok(Reply::Integer(0)),
            }
        } else {
            list_or_create(ctx, argv[1])?
        };
        for v in &argv[2..] {
            push(list, end, v);
        }
        let len = list.len();
        ctx.event(Flags::LIST, end_event(end, "lpush", "rpush"), argv[1]);
        ctx.propagate(argv);
        Ok(Reply::Integer(len as i64))
    })())
}

/// The event name of an operation at `end`.
fn end_event(end: End, left: &'static str, right: &'static str) -> &'static str {
    match end {
        End::Left => left,
        End::Right => right,
    }
}

fn lpush(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> Reply {
    push_generic(ctx, argv, End::Left, false)
}

fn rpush(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> Reply {
    push_generic(ctx, argv, End::Right, false)
}

fn lpushx(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> Reply {
    push_generic(ctx, argv, End::Left, true)
}

fn rpushx(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> Reply {
    push_generic(ctx, argv, End::Right, true)
}

fn pop_generic(ctx: &mut Ctx<'_>, argv: &[&[u8]], end: End) -> Reply {
    unwrap((|| {
        if argv.len() > 3 {
            let name = String::from_utf8_lossy(argv[0]).to_ascii_lowercase();
            return Err(Reply::err(format!(
                "ERR wrong number of arguments for '{name}' command"
            )));
        }
        let count = match argv.get(2) {
            Some(a) => Some(
                parse_i64(a)
                    .and_then(|n| u64::try_from(n).ok())
                    .ok_or_else(|| Reply::err("ERR value is out of range, must be positive"))?,
            ),
            None => None,
        };
        let Some(list) = ctx.get_list_mut(argv[1])? else {
            return Ok(if count.is_some() {
                Reply::NilArray
            } else {
                Reply::Nil
            });
        };
        let reply = match count {
            None => match pop(list, end) {
                Some(v) => Reply::Bulk(v),
                None => Reply::Nil,
            },
            Some(0) => return Ok(Reply::Array(Vec::new())),
            Some(n) => {
                let n = n.min(list.len() as u64) as usize;
                Reply::Array(
                    (0..n)
                        .filter_map(|_| pop(list, end))
                        .map(Reply::Bulk)
                        .collect(),
                )
            }
        };
        ctx.event(Flags::LIST, end_event(end, "lpop", "rpop"), argv[1]);
        ctx.propagate(argv);
        Ok(reply)
    })())
}

fn lpop(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> Reply {
    pop_generic(ctx, argv, End::Left)
}

fn rpop(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> Reply {
    pop_generic(ctx, argv, End::Right)
}

fn lrange(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> Reply {
    unwrap((|| {
        let (start, stop) = (int_arg(argv[2])?, int_arg(argv[3])?);
        let Some(list) = ctx.get_list(argv[1])? else {
            return Ok(Reply::Array(Vec::new()));
        };
        Ok(Reply::Array(match list.clamp_range(start, stop) {
            Some((s, e)) => list.range(s, e).map(|v| Reply::Bulk(v.to_vec())).collect(),
            None => Vec::new(),
        }))
    })())
}

fn lindex(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> Reply {
    unwrap((|| {
        let Some(list) = ctx.get_list(argv[1])? else {
            return Ok(Reply::Nil);
        };
        let index = int_arg(argv[2])?;
        Ok(list
            .get(index)
            .map_or(Reply::Nil, |v| Reply::Bulk(v.to_vec())))
    })())
}

fn llen(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> Reply {
    unwrap((|| {
        Ok(Reply::Integer(
            ctx.get_list(argv[1])?.map_or(0, |l| l.len() as i64),
        ))
    })())
}

fn lset(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> Reply {
    unwrap((|| {
        if ctx.get_list(argv[1])?.is_none() {
            return Err(Reply::no_such_key());
        }
        let index = int_arg(argv[2])?;
        let Some(list) = ctx.get_list_mut(argv[1])? else {
            return Err(Reply::no_such_key());
        };
        if !list.set(index, argv[3].to_vec()) {
            return Err(Reply::err("ERR index out of range"));
        }
        ctx.event(Flags::LIST, "lset", argv[1]);
        ctx.propagate(argv);
        Ok(Reply::ok())
    })())
}

fn lrem(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> Reply {
    unwrap((|| {
        let count = int_arg(argv[2])?;
        if ctx
            .get_list(argv[1])?
            .is_none_or(|l| l.position(argv[3]).is_none())
        {
            return Ok(Reply::Integer(0));
        }
        let Some(list) = ctx.get_list_mut(argv[1])? else {
            return Ok(Reply::Integer(0));
        };
        let removed = list.remove_matching(argv[3], count);
        if removed > 0 {
            ctx.event(Flags::LIST, "lrem", argv[1]);
            ctx.propagate(argv);
        }
        Ok(Reply::Integer(removed as i64))
    })())
}

fn ltrim(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> Reply {
    unwrap((|| {
        let (start, stop) = (int_arg(argv[2])?, int_arg(argv[3])?);
        let Some(list) = ctx.get_list(argv[1])? else {
            return Ok(Reply::ok());
        };
        let keep = list.clamp_range(start, stop);
        let len = list.len();
        if keep == Some((0, len.saturating_sub(1))) && len > 0 {
            // Nothing trimmed: nothing to propagate, but Redis raises the event anyway.
            ctx.event(Flags::LIST, "ltrim", argv[1]);
            return Ok(Reply::ok());
        }
        if let Some(list) = ctx.get_list_mut(argv[1])? {
            list.trim(keep);
        }
        ctx.event(Flags::LIST, "ltrim", argv[1]);
        ctx.propagate(argv);
        Ok(Reply::ok())
    })())
}

fn linsert(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> Reply {
    unwrap((|| {
        let after = if argv[2].eq_ignore_ascii_case(b"after") {
            true
        } else if argv[2].eq_ignore_ascii_case(b"before") {
            false
        } else {
            return Err(Reply::syntax_error());
        };
        let Some(list) = ctx.get_list(argv[1])? else {
            return Ok(Reply::Integer(0));
        };
        let Some(pos) = list.position(argv[3]) else {
            return Ok(Reply::Integer(-1));
        };
        let Some(list) = ctx.get_list_mut(argv[1])? else {
            return Ok(Reply::Integer(0));
        };
        list.insert_at(pos + usize::from(after), argv[4].to_vec());
        let len = list.len();
        ctx.event(Flags::LIST, "linsert", argv[1]);
        ctx.propagate(argv);
        Ok(Reply::Integer(len as i64))
    })())
}

fn move_generic(ctx: &mut Ctx<'_>, argv: &[&[u8]], from: End, to: End) -> Reply {
    let (src, dst) = (argv[1], argv[2]);
    unwrap((|| {
        if ctx.get_list(src)?.is_none_or(|l| l.is_empty()) {
            return Ok(Reply::Nil);
        }
        ctx.get_list(dst)?;
        let value = ctx
            .get_list_mut(src)?
            .and_then(|l| pop(l, from))
            .ok_or_else(|| Reply::err("ERR list vanished during LMOVE"))?;
        push(list_or_create(ctx, dst)?, to, &value);
        ctx.event(Flags::LIST, end_event(to, "lpush", "rpush"), dst);
        ctx.event(Flags::LIST, end_event(from, "lpop", "rpop"), src);
        ctx.propagate(argv);
        Ok(Reply::Bulk(value))
    })())
}

fn lmove(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> Reply {
    let ends = parse_end(argv[3]).and_then(|f| parse_end(argv[4]).map(|t| (f, t)));
    match ends {
        Ok((from, to)) => move_generic(ctx, argv, from, to),
        Err(e) => e,
    }
}

fn rpoplpush(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> Reply {
    move_generic(ctx, argv, End::Right, End::Left)
}
