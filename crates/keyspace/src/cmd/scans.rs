//! Commands the server needed for Redis's own test suite: SSCAN, HSCAN, ZSCAN, LPOS, SINTERCARD.
//!
//! Semantics and error texts follow Redis 7.0.15 (`db.c` `scanGenericCommand`, `t_list.c`
//! `lposCommand`, `t_set.c` `sinterGenericCommand` with `cardinality_only`). The collection scans
//! answer the whole (matching) collection in one reply with cursor 0, as Redis does for its
//! small encodings: COUNT is a hint, and every element present for the whole scan is returned
//! exactly once. A non-zero cursor (never handed out) answers an empty page with cursor 0.

use crate::command::{CommandSpec, READONLY};
use crate::convert::{format_double_g17, parse_i64};
use crate::ctx::Ctx;
use crate::glob;
use crate::reply::Reply;

use super::keys::parse_cursor;

/// The commands of this module.
#[rustfmt::skip]
pub(crate) const COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("sscan", -3, READONLY, 1, 1, 1, sscan),
    CommandSpec::new("hscan", -3, READONLY, 1, 1, 1, hscan),
    CommandSpec::new("zscan", -3, READONLY, 1, 1, 1, zscan),
    CommandSpec::new("lpos", -3, READONLY, 1, 1, 1, lpos),
    // Keys are argv[2..2+numkeys]; the trailing LIMIT words are over-declared (harmless).
    CommandSpec::new("sintercard", -3, READONLY, 2, -1, 1, sintercard),
];

/// MATCH and COUNT of a collection scan, or the error reply.
fn scan_options(argv: &[&[u8]]) -> Result<(u64, Option<Vec<u8>>), Reply> {
    let Some(cursor) = parse_cursor(argv[2]) else {
        return Err(Reply::err("ERR invalid cursor"));
    };
    let mut pattern = None;
    let mut i = 3;
    while i < argv.len() {
        let more = argv.len() - i >= 2;
        if argv[i].eq_ignore_ascii_case(b"count") && more {
            match parse_i64(argv[i + 1]) {
                Some(c) if c >= 1 => {}
                Some(_) => return Err(Reply::syntax_error()),
                None => return Err(Reply::not_integer()),
            }
        } else if argv[i].eq_ignore_ascii_case(b"match") && more {
            pattern = (argv[i + 1] != b"*").then(|| argv[i + 1].to_vec());
        } else {
            return Err(Reply::syntax_error());
        }
        i += 2;
    }
    Ok((cursor, pattern))
}

fn page(items: Vec<Reply>) -> Reply {
    Reply::Array(vec![Reply::bulk("0"), Reply::Array(items)])
}

fn matches(p: &Option<Vec<u8>>, s: &[u8]) -> bool {
    p.as_ref().is_none_or(|p| glob::matches(p, s, false))
}

fn sscan(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> Reply {
    let (cursor, pat) = match scan_options(argv) {
        Ok(o) => o,
        Err(e) => return e,
    };
    match ctx.get_set(argv[1]) {
        Err(e) => e,
        Ok(None) => page(Vec::new()),
        Ok(Some(_)) if cursor != 0 => page(Vec::new()),
        Ok(Some(set)) => page(
            set.iter()
                .filter(|m| matches(&pat, m))
                .map(Reply::bulk)
                .collect(),
        ),
    }
}

fn hscan(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> Reply {
    let (cursor, pat) = match scan_options(argv) {
        Ok(o) => o,
        Err(e) => return e,
    };
    match ctx.get_hash(argv[1]) {
        Err(e) => e,
        Ok(None) => page(Vec::new()),
        Ok(Some(_)) if cursor != 0 => page(Vec::new()),
        Ok(Some(h)) => page(
            h.iter()
                .filter(|(f, _)| matches(&pat, f))
                .flat_map(|(f, v)| [Reply::bulk(f), Reply::bulk(v)])
                .collect(),
        ),
    }
}

fn zscan(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> Reply {
    let (cursor, pat) = match scan_options(argv) {
        Ok(o) => o,
        Err(e) => return e,
    };
    match ctx.get_zset(argv[1]) {
        Err(e) => e,
        Ok(None) => page(Vec::new()),
        Ok(Some(_)) if cursor != 0 => page(Vec::new()),
        Ok(Some(z)) => page(
            z.iter()
                .filter(|(m, _)| matches(&pat, m))
                .flat_map(|(m, s)| [Reply::bulk(m), Reply::bulk(format_double_g17(s))])
                .collect(),
        ),
    }
}

/// LPOS key element [RANK rank] [COUNT num-matches] [MAXLEN len].
fn lpos(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> Reply {
    let mut rank: i64 = 1;
    let mut count: Option<i64> = None;
    let mut maxlen: i64 = 0;
    let mut i = 3;
    while i < argv.len() {
        let more = argv.len() - i >= 2;
        if !more {
            return Reply::syntax_error();
        }
        let Some(v) = parse_i64(argv[i + 1]) else {
            return Reply::not_integer();
        };
        if argv[i].eq_ignore_ascii_case(b"rank") {
            if v == 0 {
                return Reply::err("ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... or use negative to start from the end of the list");
            }
            if v == i64::MIN {
                return Reply::err("ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807");
            }
            rank = v;
        } else if argv[i].eq_ignore_ascii_case(b"count") {
            if v < 0 {
                return Reply::err("ERR COUNT can't be negative");
            }
            count = Some(v);
        } else if argv[i].eq_ignore_ascii_case(b"maxlen") {
            if v < 0 {
                return Reply::err("ERR MAXLEN can't be negative");
            }
            maxlen = v;
        } else {
            return Reply::syntax_error();
        }
        i += 2;
    }
    let list = match ctx.get_list(argv[1]) {
        Err(e) => return e,
        Ok(None) => {
            return match count {
                Some(_) => Reply::Array(Vec::new()),
                None => Reply::Nil,
            }
        }
        Ok(Some(l)) => l,
    };
    let len = list.len();
    let want = match count {
        None => 1,
        Some(0) => usize::MAX,
        Some(c) => usize::try_from(c).unwrap_or(usize::MAX),
    };
    let mut skip = rank.unsigned_abs() - 1;
    let mut found: Vec<i64> = Vec::new();
    let limit = if maxlen == 0 {
        usize::MAX
    } else {
        maxlen as usize
    };
    let elems: Box<dyn Iterator<Item = (usize, &[u8])>> = if rank > 0 {
        Box::new(list.iter().enumerate())
    } else {
        Box::new(
            list.iter()
                .rev()
                .enumerate()
                .map(move |(i, e)| (len - 1 - i, e)),
        )
    };
    for (n, (idx, e)) in elems.enumerate() {
        if n >= limit || found.len() >= want {
            break;
        }
        if e == argv[2] {
            if skip > 0 {
                skip -= 1;
            } else {
                found.push(idx as i64);
            }
        }
    }
    match count {
        Some(_) => Reply::Array(found.into_iter().map(Reply::Integer).collect()),
        None => found.first().map_or(Reply::Nil, |&i| Reply::Integer(i)),
    }
}

/// SINTERCARD numkeys key [key ...] [LIMIT limit].
fn sintercard(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> Reply {
    let numkeys = match parse_i64(argv[1]) {
        Some(n) if n > 0 => n as usize,
        Some(_) => return Reply::err("ERR numkeys should be greater than 0"),
        None => return Reply::err("ERR numkeys should be greater than 0"),
    };
    if numkeys > argv.len() - 2 {
        return Reply::err("ERR Number of keys can't be greater than number of args");
    }
    let mut limit: usize = 0;
    let mut i = 2 + numkeys;
    while i < argv.len() {
        if argv[i].eq_ignore_ascii_case(b"limit") && i + 1 < argv.len() {
            match parse_i64(argv[i + 1]) {
                Some(l) if l >= 0 => limit = l as usize,
                // getPositiveLongFromObjectOrReply: one text for both.
                _ => return Reply::err("ERR LIMIT can't be negative"),
            }
            i += 2;
        } else {
            return Reply::syntax_error();
        }
    }
    let keys = &argv[2..2 + numkeys];
    let mut sets = Vec::with_capacity(numkeys);
    for k in keys {
        match ctx.get_set(k) {
            Err(e) => return e,
            Ok(None) => return Reply::Integer(0),
            Ok(Some(s)) => sets.push(s.iter().map(<[u8]>::to_vec).collect::<Vec<_>>()),
        }
    }
    sets.sort_by_key(Vec::len);
    let (first, rest) = sets.split_first().expect("numkeys > 0");
    let rest: Vec<std::collections::HashSet<&[u8]>> = rest
        .iter()
        .map(|s| s.iter().map(Vec::as_slice).collect())
        .collect();
    let mut n = 0usize;
    for m in first {
        if rest.iter().all(|s| s.contains(m.as_slice())) {
            n += 1;
            if limit != 0 && n >= limit {
                break;
            }
        }
    }
    Reply::Integer(n as i64)
}
