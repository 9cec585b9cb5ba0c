//! LMPOP and ZMPOP (Redis 7.0 `t_list.c` `lmpopGenericCommand`, `t_zset.c`
//! `zmpopGenericCommand`): pop up to COUNT elements from the first non-empty key of a list.
//!
//! `LMPOP numkeys key [key ...] LEFT|RIGHT [COUNT count]`, `ZMPOP numkeys key [key ...] MIN|MAX
//! [COUNT count]`. Keys are tried in order; a missing key is skipped, a key of another type is
//! WRONGTYPE. The reply is `[key, elements]` (ZMPOP: `[key, [[member, score], ...]]`) or a null
//! array. Propagated as `LPOP|RPOP key n` / `ZPOPMIN|ZPOPMAX key n` with n the number popped.
//! Key positions: every argument after numkeys is declared (over-declaring is allowed, see
//! `command.rs`), so the keys are always locked.

use crate::command::{CommandSpec, WRITE};
use crate::convert::parse_i64;
use crate::ctx::Ctx;
use crate::notify::Flags;
use crate::reply::Reply;

/// The commands of this module.
#[rustfmt::skip]
pub(crate) const COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("lmpop", -4, WRITE, 2, -1, 1, lmpop),
    CommandSpec::new("zmpop", -4, WRITE, 2, -1, 1, zmpop),
];

/// Parsed arguments: the keys, whether the first direction word (LEFT / MIN) was given, COUNT.
struct Args<'a> {
    keys: &'a [&'a [u8]],
    first: bool,
    count: usize,
}

/// Parse as Redis does: numkeys, the direction word after the keys, then an optional COUNT.
fn parse<'a>(argv: &'a [&'a [u8]], dirs: (&[u8], &[u8])) -> Result<Args<'a>, Reply> {
    let numkeys = parse_i64(argv[1])
        .filter(|&n| n > 0)
        .ok_or_else(|| Reply::err("ERR numkeys should be greater than 0"))?
        as usize;
    let where_idx = numkeys.checked_add(2).filter(|&i| i < argv.len());
    let Some(where_idx) = where_idx else {
        return Err(Reply::syntax_error());
    };
    let dir = argv[where_idx];
    let first = if dir.eq_ignore_ascii_case(dirs.0) {
        true
    } else if dir.eq_ignore_ascii_case(dirs.1) {
        false
    } else {
        return Err(Reply::syntax_error());
    };
    let mut count = None;
    let mut j = where_idx + 1;
    while j < argv.len() {
        let more = j + 1 < argv.len();
        if count.is_none() && argv[j].eq_ignore_ascii_case(b"count") && more {
            let n = parse_i64(argv[j + 1])
                .filter(|&n| n > 0)
                .ok_or_else(|| Reply::err("ERR count should be greater than 0"))?;
            count = Some(usize::try_from(n).unwrap_or(usize::MAX));
            j += 2;
        } else {
            return Err(Reply::syntax_error());
        }
    }
    Ok(Args {
        keys: &argv[2..where_idx],
        first,
        count: count.unwrap_or(1),
    })
}

fn lmpop(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> Reply {
    let a = match parse(argv, (b"left", b"right")) {
        Ok(a) => a,
        Err(e) => return e,
    };
    for &key in a.keys {
        let list = match ctx.get_list_mut(key) {
            Err(e) => return e,
            Ok(None) => continue,
            Ok(Some(l)) if l.is_empty() => continue,
            Ok(Some(l)) => l,
        };
        let n = a.count.min(list.len());
        let popped: Vec<Reply> = (0..n)
            .filter_map(|_| {
                if a.first {
                    list.pop_front()
                } else {
                    list.pop_back()
                }
            })
            .map(Reply::Bulk)
            .collect();
        let n_s = popped.len().to_string();
        let op: &[u8] = if a.first { b"LPOP" } else { b"RPOP" };
        ctx.event(Flags::LIST, if a.first { "lpop" } else { "rpop" }, key);
        ctx.propagate(&[op, key, n_s.as_bytes()]);
        return Reply::Array(vec![Reply::bulk(key), Reply::Array(popped)]);
    }
    Reply::NilArray
}

fn zmpop(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> Reply {
    let a = match parse(argv, (b"min", b"max")) {
        Ok(a) => a,
        Err(e) => return e,
    };
    for &key in a.keys {
        let z = match ctx.get_zset_mut(key) {
            Err(e) => return e,
            Ok(None) => continue,
            Ok(Some(z)) if z.is_empty() => continue,
            Ok(Some(z)) => z,
        };
        let n = a.count.min(z.len());
        let popped: Vec<Reply> = (0..n)
            .filter_map(|_| if a.first { z.pop_first() } else { z.pop_last() })
            .map(|(m, s)| Reply::Array(vec![Reply::Bulk(m), Reply::bulk_f64(s)]))
            .collect();
        let n_s = popped.len().to_string();
        let op: &[u8] = if a.first { b"ZPOPMIN" } else { b"ZPOPMAX" };
        ctx.event(
            Flags::ZSET,
            if a.first { "zpopmin" } else { "zpopmax" },
            key,
        );
        ctx.propagate(&[op, key, n_s.as_bytes()]);
        return Reply::Array(vec![Reply::bulk(key), Reply::Array(popped)]);
    }
    Reply::NilArray
}
