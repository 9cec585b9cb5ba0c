//! Sorted-set algebra: ZUNIONSTORE, ZINTERSTORE, ZDIFFSTORE, ZUNION, ZINTER, ZDIFF, ZINTERCARD.
//!
//! Semantics, replies, error texts and propagation follow Redis 7.0.15 `t_zset.c`
//! (`zunionInterDiffGenericCommand`, `zunionInterAggregate`; verified against redis-server
//! 7.0.15 by the differential tests):
//! - inputs may be sorted sets or sets (a set member has score 1); a missing key is empty; any
//!   other type is WRONGTYPE, checked for every input before the options are parsed;
//! - WEIGHTS (not for ZDIFF*), AGGREGATE SUM|MIN|MAX (not for ZDIFF*), WITHSCORES (only the
//!   non-STORE forms), LIMIT (only ZINTERCARD), with Redis's texts: `at least 1 input key is
//!   needed for '<cmd>' command`, `weight value is not a float`, syntax errors;
//! - a weighted score that is NaN (`inf * 0`) is 0, and a SUM that is NaN (`inf + -inf`) is 0;
//! - the inputs are visited as Redis visits them (stably sorted by cardinality for union and
//!   intersection), so floating-point sums add in Redis's order;
//! - a STORE form replaces the destination (dropping its TTL) when the result is non-empty,
//!   deletes it when empty, and is propagated verbatim when it changed something (a non-empty
//!   result, or an existing destination deleted), as Redis's `server.dirty` does.
//!
//! Key positions: the keys are the destination (STORE forms) and the `numkeys` arguments after
//! `numkeys`. The command table has no numkeys-dependent key spec; as for SINTERCARD, the specs
//! over-declare every argument from the first key to the last argument (allowed by
//! [`crate::command`]: it only locks more shards), so every key the handler reads is declared.

use crate::command::{CommandSpec, READONLY, WRITE};
use crate::convert::parse_i64;
use crate::ctx::Ctx;
use crate::notify::Flags;
use crate::reply::Reply;
use crate::types::{parse_score, ZSet};
use crate::value::Value;

/// The commands of this module.
#[rustfmt::skip]
pub(crate) const COMMANDS: &[CommandSpec] = &[
    // Keys: destination, then argv[3..3+numkeys]; trailing option words are over-declared.
    CommandSpec::new("zunionstore", -4, WRITE, 1, -1, 1, zunionstore),
    CommandSpec::new("zinterstore", -4, WRITE, 1, -1, 1, zinterstore),
    CommandSpec::new("zdiffstore", -4, WRITE, 1, -1, 1, zdiffstore),
    // Keys: argv[2..2+numkeys]; trailing option words are over-declared.
    CommandSpec::new("zunion", -3, READONLY, 2, -1, 1, zunion),
    CommandSpec::new("zinter", -3, READONLY, 2, -1, 1, zinter),
    CommandSpec::new("zdiff", -3, READONLY, 2, -1, 1, zdiff),
    CommandSpec::new("zintercard", -3, READONLY, 2, -1, 1, zintercard),
];

#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    Union,
    Inter,
    Diff,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Aggregate {
    Sum,
    Min,
    Max,
}

/// One input: its members with their scores (a copy, so the context can be borrowed again).
struct Src {
    members: Vec<(Vec<u8>, f64)>,
    weight: f64,
}

fn aggregate(target: &mut f64, val: f64, agg: Aggregate) {
    match agg {
        Aggregate::Sum => {
            *target += val;
            if target.is_nan() {
                *target = 0.0;
            }
        }
        Aggregate::Min => {
            if val < *target {
                *target = val;
            }
        }
        Aggregate::Max => {
            if val > *target {
                *target = val;
            }
        }
    }
}

/// The parsed call.
struct Call {
    srcs: Vec<Src>,
    agg: Aggregate,
    withscores: bool,
    limit: usize,
}

fn read_input(ctx: &mut Ctx<'_>, key: &[u8]) -> Result<Vec<(Vec<u8>, f64)>, Reply> {
    match ctx.get(key).as_deref() {
        None => Ok(Vec::new()),
        Some(Value::ZSet(z)) => Ok(z.iter().map(|(m, s)| (m.to_vec(), s)).collect()),
        Some(Value::Set(s)) => Ok(s.iter().map(|m| (m.to_vec(), 1.0)).collect()),
        Some(_) => Err(Reply::wrong_type()),
    }
}

/// Parse numkeys, the inputs and the options as `zunionInterDiffGenericCommand` does.
fn parse(
    ctx: &mut Ctx<'_>,
    argv: &[&[u8]],
    numkeys_index: usize,
    op: Op,
    store: bool,
    card_only: bool,
) -> Result<Call, Reply> {
    let name = String::from_utf8_lossy(argv[0]).to_ascii_lowercase();
    let setnum = parse_i64(argv[numkeys_index]).ok_or_else(Reply::not_integer)?;
    if setnum < 1 {
        return Err(Reply::err(format!(
            "ERR at least 1 input key is needed for '{name}' command"
        )));
    }
    if setnum > (argv.len() - (numkeys_index + 1)) as i64 {
        return Err(Reply::syntax_error());
    }
    let setnum = setnum as usize;
    let mut srcs = Vec::with_capacity(setnum);
    for key in &argv[numkeys_index + 1..numkeys_index + 1 + setnum] {
        srcs.push(Src {
            members: read_input(ctx, key)?,
            weight: 1.0,
        });
    }
    let mut agg = Aggregate::Sum;
    let mut withscores = false;
    let mut limit = 0usize;
    let mut j = numkeys_index + 1 + setnum;
    while j < argv.len() {
        let remaining = argv.len() - j;
        let word = argv[j];
        if op != Op::Diff
            && !card_only
            && remaining > setnum
            && word.eq_ignore_ascii_case(b"weights")
        {
            j += 1;
            for src in srcs.iter_mut() {
                src.weight = parse_score(argv[j])
                    .ok_or_else(|| Reply::err("ERR weight value is not a float"))?;
                j += 1;
            }
        } else if op != Op::Diff
            && !card_only
            && remaining >= 2
            && word.eq_ignore_ascii_case(b"aggregate")
        {
            let a = argv[j + 1];
            agg = if a.eq_ignore_ascii_case(b"sum") {
                Aggregate::Sum
            } else if a.eq_ignore_ascii_case(b"min") {
                Aggregate::Min
            } else if a.eq_ignore_ascii_case(b"max") {
                Aggregate::Max
            } else {
                return Err(Reply::syntax_error());
            };
            j += 2;
        } else if !store && !card_only && word.eq_ignore_ascii_case(b"withscores") {
            withscores = true;
            j += 1;
        } else if card_only && remaining >= 2 && word.eq_ignore_ascii_case(b"limit") {
            match parse_i64(argv[j + 1]) {
                Some(l) if l >= 0 => limit = l as usize,
                _ => return Err(Reply::err("ERR LIMIT can't be negative")),
            }
            j += 2;
        } else {
            return Err(Reply::syntax_error());
        }
    }
    Ok(Call {
        srcs,
        agg,
        withscores,
        limit,
    })
}

/// The result of the operation in sorted-set order (score, then member). A `-0` score stays
/// `-0` (Redis's skip list keeps it; only a STORE into a listpack-sized result makes it 0,
/// which [`ZSet::insert`] does).
fn compute(call: &mut Call, op: Op) -> Vec<(Vec<u8>, f64)> {
    let mut out: Vec<(Vec<u8>, f64)> = Vec::new();
    let agg = call.agg;
    match op {
        Op::Inter => {
            // Stable sort by cardinality (glibc's qsort is a merge sort here).
            call.srcs.sort_by_key(|s| s.members.len());
            let maps = lookup_maps(&call.srcs);
            let (first, rest) = call.srcs.split_first().expect("numkeys >= 1");
            'members: for (m, s) in &first.members {
                let mut score = first.weight * s;
                if score.is_nan() {
                    score = 0.0;
                }
                for (src, map) in rest.iter().zip(&maps[1..]) {
                    match map.get(m.as_slice()) {
                        Some(&v) => aggregate(&mut score, v * src.weight, agg),
                        None => continue 'members,
                    }
                }
                out.push((m.clone(), score));
            }
        }
        Op::Union => {
            call.srcs.sort_by_key(|s| s.members.len());
            let mut acc: std::collections::HashMap<&[u8], f64> = std::collections::HashMap::new();
            let mut order: Vec<&[u8]> = Vec::new();
            for src in &call.srcs {
                for (m, s) in &src.members {
                    let mut score = src.weight * s;
                    if score.is_nan() {
                        score = 0.0;
                    }
                    match acc.get_mut(m.as_slice()) {
                        Some(t) => aggregate(t, score, agg),
                        None => {
                            acc.insert(m.as_slice(), score);
                            order.push(m.as_slice());
                        }
                    }
                }
            }
            for m in order {
                out.push((m.to_vec(), acc[m]));
            }
        }
        Op::Diff => {
            let maps = lookup_maps(&call.srcs);
            let (first, _) = call.srcs.split_first().expect("numkeys >= 1");
            for (m, s) in &first.members {
                if !maps[1..].iter().any(|map| map.contains_key(m.as_slice())) {
                    out.push((m.clone(), *s));
                }
            }
        }
    }
    // No score is NaN; -0 and 0 compare equal, as in the skip list.
    out.sort_by(|a, b| {
        a.1.partial_cmp(&b.1)
            .unwrap_or(std::cmp::Ordering::Equal)
            .then_with(|| a.0.cmp(&b.0))
    });
    out
}

fn lookup_maps(srcs: &[Src]) -> Vec<std::collections::HashMap<&[u8], f64>> {
    srcs.iter()
        .map(|s| s.members.iter().map(|(m, v)| (m.as_slice(), *v)).collect())
        .collect()
}

fn store_generic(ctx: &mut Ctx<'_>, argv: &[&[u8]], op: Op) -> Reply {
    let mut call = match parse(ctx, argv, 2, op, true, false) {
        Ok(c) => c,
        Err(e) => return e,
    };
    let result = compute(&mut call, op);
    let dst = argv[1];
    let n = result.len();
    if n > 0 {
        // Redis builds a skip list (keeping -0) and converts it to a listpack (where -0 is 0)
        // only when small enough; ZSet normalizes -0 while it is compact, so the -0 scores are
        // written again once the whole result is in and the set is known to be large.
        let mut z = ZSet::new();
        let mut negzero = Vec::new();
        for (m, s) in result {
            if s == 0.0 && s.is_sign_negative() {
                negzero.push(m.clone());
            }
            z.insert(m, s);
        }
        if !z.is_compact() {
            for m in negzero {
                z.insert(m, -0.0);
            }
        }
        ctx.insert(dst, Value::ZSet(z));
        let event = match op {
            Op::Union => "zunionstore",
            Op::Inter => "zinterstore",
            Op::Diff => "zdiffstore",
        };
        ctx.event(Flags::ZSET, event, dst);
        ctx.propagate(argv);
    } else if ctx.remove(dst).is_some() {
        ctx.event(Flags::GENERIC, "del", dst);
        ctx.propagate(argv);
    }
    Reply::Integer(n as i64)
}

fn read_generic(ctx: &mut Ctx<'_>, argv: &[&[u8]], op: Op) -> Reply {
    let mut call = match parse(ctx, argv, 1, op, false, false) {
        Ok(c) => c,
        Err(e) => return e,
    };
    let result = compute(&mut call, op);
    let mut out = Vec::with_capacity(result.len() * if call.withscores { 2 } else { 1 });
    for (m, s) in result {
        out.push(Reply::Bulk(m));
        if call.withscores {
            out.push(Reply::bulk_f64(s));
        }
    }
    Reply::Array(out)
}

fn zunionstore(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> Reply {
    store_generic(ctx, argv, Op::Union)
}

fn zinterstore(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> Reply {
    store_generic(ctx, argv, Op::Inter)
}

fn zdiffstore(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> Reply {
    store_generic(ctx, argv, Op::Diff)
}

fn zunion(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> Reply {
    read_generic(ctx, argv, Op::Union)
}

fn zinter(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> Reply {
    read_generic(ctx, argv, Op::Inter)
}

fn zdiff(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> Reply {
    read_generic(ctx, argv, Op::Diff)
}

/// ZINTERCARD numkeys key [key ...] [LIMIT limit].
fn zintercard(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> Reply {
    let mut call = match parse(ctx, argv, 1, Op::Inter, false, true) {
        Ok(c) => c,
        Err(e) => return e,
    };
    call.srcs.sort_by_key(|s| s.members.len());
    let maps = lookup_maps(&call.srcs);
    let mut n = 0usize;
    for (m, _) in &call.srcs[0].members {
        if maps[1..].iter().all(|map| map.contains_key(m.as_slice())) {
            n += 1;
            if call.limit != 0 && n >= call.limit {
                break;
            }
        }
    }
    Reply::Integer(n as i64)
}
