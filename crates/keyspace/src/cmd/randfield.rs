//! HRANDFIELD and ZRANDMEMBER (Redis 7.0.15 `t_hash.c` `hrandfieldCommand` /
//! `hrandfieldWithCountCommand`, `t_zset.c` `zrandmemberCommand` /
//! `zrandmemberWithCountCommand`).
//!
//! * No count: one random field / member (bulk), nil when the key is missing.
//! * `count` (parsed before the key is looked up: `ERR value is not an integer or out of range`,
//!   or `ERR value is out of range, value must between -9223372036854775807 and
//!   9223372036854775807` for `i64::MIN`): a missing key gives an empty array; 0 an empty array;
//!   a positive count that many *distinct* elements (all of them when it is not smaller than the
//!   size: a hash in its order, a zset from the highest score down, as `zuiNext` walks it), a
//!   negative count `|count|` elements drawn independently (repeats possible).
//! * `WITHVALUES` / `WITHSCORES` (only as the fourth argument, else a syntax error; with it a
//!   count beyond ±`LONG_MAX / 2` is `ERR value is out of range`): RESP2 gets a flat array field,
//!   value, ...; RESP3 an array of pairs with scores as doubles (the server's `resp3_shape`).
//! * A negative count beyond [`MAX_RANDOM_REPLY`] is refused, as for SRANDMEMBER (our replies
//!   are built in memory; Redis streams them).

use rand::Rng;

use crate::cmd::sets::MAX_RANDOM_REPLY;
use crate::command::{CommandSpec, READONLY};
use crate::convert::parse_i64;
use crate::ctx::Ctx;
use crate::reply::Reply;

/// The commands of this module.
#[rustfmt::skip]
pub(crate) const COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("hrandfield", -2, READONLY, 1, 1, 1, hrandfield),
    CommandSpec::new("zrandmember", -2, READONLY, 1, 1, 1, zrandmember),
];

fn unwrap(r: Result<Reply, Reply>) -> Reply {
    r.unwrap_or_else(|e| e)
}

/// The count and the WITH* flag of `argv` (`None` count: the variant without one).
fn parse_args(argv: &[&[u8]], with: &[u8]) -> Result<(Option<i64>, bool), Reply> {
    let Some(c) = argv.get(2) else {
        return Ok((None, false));
    };
    let n = parse_i64(c).ok_or_else(Reply::not_integer)?;
    if n == i64::MIN {
        return Err(Reply::err(
            "ERR value is out of range, value must between -9223372036854775807 and \
             9223372036854775807",
        ));
    }
    if argv.len() > 4 || (argv.len() == 4 && !argv[3].eq_ignore_ascii_case(with)) {
        return Err(Reply::syntax_error());
    }
    let withvalues = argv.len() == 4;
    if withvalues && !(-(i64::MAX / 2)..=i64::MAX / 2).contains(&n) {
        return Err(Reply::err("ERR value is out of range"));
    }
    Ok((Some(n), withvalues))
}

/// Positions to reply for `count` over `len` elements: distinct (random order when fewer than
/// all, every position in order otherwise) for a positive count, independent draws for a
/// negative one.
fn positions(ctx: &mut Ctx<'_>, len: usize, count: i64) -> Result<Vec<usize>, Reply> {
    if count < 0 {
        let n = count.unsigned_abs();
        if n > MAX_RANDOM_REPLY {
            return Err(Reply::err(format!(
                "ERR count is too large: at most {MAX_RANDOM_REPLY} random elements per call"
            )));
        }
        let rng = ctx.rng();
        return Ok((0..n).map(|_| rng.gen_range(0..len)).collect());
    }
    if count as u64 >= len as u64 {
        return Ok((0..len).collect());
    }
    Ok(rand::seq::index::sample(ctx.rng(), len, count as usize).into_vec())
}

fn hrandfield(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> Reply {
    unwrap((|| {
        let (count, withvalues) = parse_args(argv, b"withvalues")?;
        let key = argv[1];
        let len = ctx.get_hash(key)?.map_or(0, |h| h.len());
        let Some(count) = count else {
            if len == 0 {
                return Ok(Reply::Nil);
            }
            let pos = ctx.rng().gen_range(0..len);
            return Ok(ctx
                .get_hash(key)?
                .and_then(|h| h.entry_at(pos))
                .map_or(Reply::Nil, |(f, _)| Reply::Bulk(f.to_vec())));
        };
        if len == 0 || count == 0 {
            return Ok(Reply::Array(Vec::new()));
        }
        let pos = positions(ctx, len, count)?;
        let Some(h) = ctx.get_hash(key)? else {
            return Ok(Reply::Array(Vec::new()));
        };
        let mut out = Vec::with_capacity(pos.len() * if withvalues { 2 } else { 1 });
        for (f, v) in pos.into_iter().filter_map(|p| h.entry_at(p)) {
            out.push(Reply::Bulk(f.to_vec()));
            if withvalues {
                out.push(Reply::Bulk(v.to_vec()));
            }
        }
        Ok(Reply::Array(out))
    })())
}

fn zrandmember(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> Reply {
    unwrap((|| {
        let (count, withscores) = parse_args(argv, b"withscores")?;
        let key = argv[1];
        let len = ctx.get_zset(key)?.map_or(0, |z| z.len());
        let Some(count) = count else {
            if len == 0 {
                return Ok(Reply::Nil);
            }
            let pos = ctx.rng().gen_range(0..len);
            return Ok(ctx
                .get_zset(key)?
                .and_then(|z| z.get_by_rank(pos))
                .map_or(Reply::Nil, |(m, _)| Reply::Bulk(m.to_vec())));
        };
        if len == 0 || count == 0 {
            return Ok(Reply::Array(Vec::new()));
        }
        let pos = positions(ctx, len, count)?;
        let Some(z) = ctx.get_zset(key)? else {
            return Ok(Reply::Array(Vec::new()));
        };
        let mut out = Vec::with_capacity(pos.len() * if withscores { 2 } else { 1 });
        if count > 0 && count as u64 >= len as u64 {
            // The whole set as Redis's `zuiNext` walks it: from the tail (highest score first,
            // in both encodings); one walk instead of a descent per rank.
            for (m, s) in z.iter_from_rank(len - 1, true) {
                out.push(Reply::Bulk(m.to_vec()));
                if withscores {
                    out.push(Reply::bulk_f64(s));
                }
            }
            return Ok(Reply::Array(out));
        }
        for (m, s) in pos.into_iter().filter_map(|p| z.get_by_rank(p)) {
            out.push(Reply::Bulk(m.to_vec()));
            if withscores {
                out.push(Reply::bulk_f64(s));
            }
        }
        Ok(Reply::Array(out))
    })())
}
