//! Sorted-set commands: ZADD (NX XX GT LT CH INCR), ZINCRBY, ZREM, ZSCORE, ZMSCORE, ZCARD,
//! ZRANK, ZREVRANK, ZRANGE (BYSCORE BYLEX REV LIMIT WITHSCORES), ZRANGEBYSCORE,
//! ZREVRANGEBYSCORE, ZREVRANGE, ZRANGEBYLEX, ZREVRANGEBYLEX, ZCOUNT, ZLEXCOUNT, ZREMRANGEBYRANK,
//! ZREMRANGEBYSCORE, ZREMRANGEBYLEX, ZPOPMIN, ZPOPMAX.
//!
//! Semantics, replies, error texts and propagation follow Redis 7.0.15 `t_zset.c`
//! (`zaddGenericCommand`, `zrangeGenericCommand`, `zslParseRange`, `zslParseLexRange`,
//! `genericZpopCommand`; verified against redis-server 7.0.15): option parsing and the order of
//! checks, `*-1`-free RESP2 replies (scores as `%.17g` bulk strings, WITHSCORES flattened),
//! LIMIT skipping as Redis does (a negative offset gives nothing, a negative count means all),
//! and propagation verbatim only when something changed (a ZADD or ZINCRBY that leaves every
//! score as it was propagates nothing).

use crate::command::{CommandSpec, READONLY, WRITE};
use crate::convert::parse_i64;
use crate::ctx::Ctx;
use crate::encoding::Collection;
use crate::notify::Flags;
use crate::reply::Reply;
use crate::types::{parse_range_score, parse_score, ZSet};
use crate::value::Value;

/// The commands of this module.
#[rustfmt::skip]
pub(crate) const COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("zadd", -4, WRITE, 1, 1, 1, zadd),
    CommandSpec::new("zincrby", 4, WRITE, 1, 1, 1, zincrby),
    CommandSpec::new("zrem", -3, WRITE, 1, 1, 1, zrem),
    CommandSpec::new("zscore", 3, READONLY, 1, 1, 1, zscore),
    CommandSpec::new("zmscore", -3, READONLY, 1, 1, 1, zmscore),
    CommandSpec::new("zcard", 2, READONLY, 1, 1, 1, zcard),
    CommandSpec::new("zrank", 3, READONLY, 1, 1, 1, zrank),
    CommandSpec::new("zrevrank", 3, READONLY, 1, 1, 1, zrevrank),
    CommandSpec::new("zrange", -4, READONLY, 1, 1, 1, zrange),
    CommandSpec::new("zrangestore", -5, WRITE, 1, 2, 1, zrangestore),
    CommandSpec::new("zrangebyscore", -4, READONLY, 1, 1, 1, zrangebyscore),
    CommandSpec::new("zrevrangebyscore", -4, READONLY, 1, 1, 1, zrevrangebyscore),
    CommandSpec::new("zrevrange", -4, READONLY, 1, 1, 1, zrevrange),
    CommandSpec::new("zrangebylex", -4, READONLY, 1, 1, 1, zrangebylex),
    CommandSpec::new("zrevrangebylex", -4, READONLY, 1, 1, 1, zrevrangebylex),
    CommandSpec::new("zcount", 4, READONLY, 1, 1, 1, zcount),
    CommandSpec::new("zlexcount", 4, READONLY, 1, 1, 1, zlexcount),
    CommandSpec::new("zremrangebyrank", 4, WRITE, 1, 1, 1, zremrangebyrank),
    CommandSpec::new("zremrangebyscore", 4, WRITE, 1, 1, 1, zremrangebyscore),
    CommandSpec::new("zremrangebylex", 4, WRITE, 1, 1, 1, zremrangebylex),
    CommandSpec::new("zpopmin", -2, WRITE, 1, 1, 1, zpopmin),
    CommandSpec::new("zpopmax", -2, WRITE, 1, 1, 1, zpopmax),
];

fn unwrap(r: Result<Reply, Reply>) -> Reply {
    r.unwrap_or_else(|e| e)
}

fn int_arg(arg: &[u8]) -> Result<i64, Reply> {
    parse_i64(arg).ok_or_else(Reply::not_integer)
}

fn nan_error() -> Reply {
    Reply::err("ERR resulting score is not a number (NaN)")
}

/// The sorted set at `key`, created empty when missing.
fn zset_or_create<'c>(ctx: &'c mut Ctx<'_>, key: &[u8]) -> Result<&'c mut ZSet, Reply> {
    if ctx.get_zset(key)?.is_none() {
        ctx.insert(key, Value::ZSet(ZSet::new()));
    }
    ctx.get_zset_mut(key)?
        .ok_or_else(|| Reply::err("ERR zset vanished while being created"))
}

// ---- ranges ----

/// One end of a score range (`zrangespec` in Redis).
#[derive(Clone, Copy, Debug)]
struct ScoreRange {
    min: f64,
    max: f64,
    minex: bool,
    maxex: bool,
}

impl ScoreRange {
    fn gte_min(&self, s: f64) -> bool {
        if self.minex {
            s > self.min
        } else {
            s >= self.min
        }
    }
    fn lte_max(&self, s: f64) -> bool {
        if self.maxex {
            s < self.max
        } else {
            s <= self.max
        }
    }
}

fn parse_score_bound(s: &[u8]) -> Option<(f64, bool)> {
    match s.first() {
        Some(b'(') => parse_range_score(&s[1..]).map(|v| (v, true)),
        _ => parse_range_score(s).map(|v| (v, false)),
    }
}

fn parse_score_range(min: &[u8], max: &[u8]) -> Result<ScoreRange, Reply> {
    match (parse_score_bound(min), parse_score_bound(max)) {
        (Some((min, minex)), Some((max, maxex))) => Ok(ScoreRange {
            min,
            max,
            minex,
            maxex,
        }),
        _ => Err(Reply::err("ERR min or max is not a float")),
    }
}

/// One end of a lex range (`zlexrangespec`): `-`, `+`, `[x` or `(x`.
#[derive(Clone, Debug)]
enum LexBound {
    Min,
    Max,
    Incl(Vec<u8>),
    Excl(Vec<u8>),
}

/// `sdscmplex`: the member compared with a bound (`-` below everything, `+` above).
fn cmp_lex(m: &[u8], b: &LexBound) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    match b {
        LexBound::Min => Ordering::Greater,
        LexBound::Max => Ordering::Less,
        LexBound::Incl(v) | LexBound::Excl(v) => m.cmp(v.as_slice()),
    }
}

#[derive(Clone, Debug)]
struct LexRange {
    min: LexBound,
    max: LexBound,
}

impl LexRange {
    fn gte_min(&self, m: &[u8]) -> bool {
        let c = cmp_lex(m, &self.min);
        match self.min {
            LexBound::Excl(_) | LexBound::Min | LexBound::Max => c.is_gt(),
            LexBound::Incl(_) => c.is_ge(),
        }
    }
    fn lte_max(&self, m: &[u8]) -> bool {
        let c = cmp_lex(m, &self.max);
        match self.max {
            LexBound::Excl(_) | LexBound::Min | LexBound::Max => c.is_lt(),
            LexBound::Incl(_) => c.is_le(),
        }
    }
}

fn parse_lex_bound(s: &[u8]) -> Option<LexBound> {
    match s.first()? {
        b'+' if s.len() == 1 => Some(LexBound::Max),
        b'-' if s.len() == 1 => Some(LexBound::Min),
        b'(' => Some(LexBound::Excl(s[1..].to_vec())),
        b'[' => Some(LexBound::Incl(s[1..].to_vec())),
        _ => None,
    }
}

fn parse_lex_range(min: &[u8], max: &[u8]) -> Result<LexRange, Reply> {
    match (parse_lex_bound(min), parse_lex_bound(max)) {
        (Some(min), Some(max)) => Ok(LexRange { min, max }),
        _ => Err(Reply::err("ERR min or max not valid string range item")),
    }
}

/// A score or lex range as predicates on (member, score).
trait Range {
    fn gte_min(&self, m: &[u8], s: f64) -> bool;
    fn lte_max(&self, m: &[u8], s: f64) -> bool;
}

impl Range for ScoreRange {
    fn gte_min(&self, _: &[u8], s: f64) -> bool {
        ScoreRange::gte_min(self, s)
    }
    fn lte_max(&self, _: &[u8], s: f64) -> bool {
        ScoreRange::lte_max(self, s)
    }
}

impl Range for LexRange {
    fn gte_min(&self, m: &[u8], _: f64) -> bool {
        LexRange::gte_min(self, m)
    }
    fn lte_max(&self, m: &[u8], _: f64) -> bool {
        LexRange::lte_max(self, m)
    }
}

/// Ascending rank of the first element in range (`zslFirstInRange`).
fn first_in_range(z: &ZSet, r: &impl Range) -> Option<usize> {
    let i = z.count_while(|m, s| !r.gte_min(m, s));
    let (m, s) = z.get_by_rank(i)?;
    r.lte_max(m, s).then_some(i)
}

/// Ascending rank of the last element in range (`zslLastInRange`).
fn last_in_range(z: &ZSet, r: &impl Range) -> Option<usize> {
    let i = z.count_while(|m, s| r.lte_max(m, s)).checked_sub(1)?;
    let (m, s) = z.get_by_rank(i)?;
    r.gte_min(m, s).then_some(i)
}

/// The elements in range, after skipping `offset` and taking at most `limit` (negative: all),
/// walking down from the top when `rev`; as `genericZrangebyscoreCommand`.
fn collect_range<'z>(
    z: &'z ZSet,
    r: &impl Range,
    rev: bool,
    offset: i64,
    limit: i64,
) -> Vec<(&'z [u8], f64)> {
    let start = if rev {
        last_in_range(z, r)
    } else {
        first_in_range(z, r)
    };
    let Some(start) = start else {
        return Vec::new();
    };
    let Ok(offset) = usize::try_from(offset) else {
        return Vec::new();
    };
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    z.iter_from_rank(start, rev)
        .skip(offset)
        .take(limit)
        .take_while(|(m, s)| {
            if rev {
                r.gte_min(m, *s)
            } else {
                r.lte_max(m, *s)
            }
        })
        .collect()
}

/// Count of elements in range.
fn count_range(z: &ZSet, r: &impl Range) -> usize {
    match (first_in_range(z, r), last_in_range(z, r)) {
        (Some(a), Some(b)) if b >= a => b - a + 1,
        _ => 0,
    }
}

/// Clamps an inclusive rank range with negative indexes; None when empty.
fn clamp_ranks(len: usize, start: i64, end: i64) -> Option<(usize, usize)> {
    let len = len as i64;
    let mut start = if start < 0 {
        len.saturating_add(start)
    } else {
        start
    };
    let mut end = if end < 0 {
        len.saturating_add(end)
    } else {
        end
    };
    if start < 0 {
        start = 0;
    }
    if start > end || start >= len {
        return None;
    }
    if end >= len {
        end = len - 1;
    }
    Some((start as usize, end as usize))
}

fn emit(items: Vec<(&[u8], f64)>, withscores: bool) -> Reply {
    let mut out = Vec::with_capacity(items.len() * if withscores { 2 } else { 1 });
    for (m, s) in items {
        out.push(Reply::Bulk(m.to_vec()));
        if withscores {
            out.push(Reply::bulk_f64(s));
        }
    }
    Reply::Array(out)
}

// ---- ZADD / ZINCRBY ----

const NX: u32 = 1;
const XX: u32 = 1 << 1;
const GT: u32 = 1 << 2;
const LT: u32 = 1 << 3;
const CH: u32 = 1 << 4;
const INCR: u32 = 1 << 5;

pub(crate) fn zadd_generic(
    ctx: &mut Ctx<'_>,
    argv: &[&[u8]],
    mut flags: u32,
) -> Result<Reply, Reply> {
    let mut idx = 2;
    while idx < argv.len() {
        let a = argv[idx];
        let f = if a.eq_ignore_ascii_case(b"nx") {
            NX
        } else if a.eq_ignore_ascii_case(b"xx") {
            XX
        } else if a.eq_ignore_ascii_case(b"gt") {
            GT
        } else if a.eq_ignore_ascii_case(b"lt") {
            LT
        } else if a.eq_ignore_ascii_case(b"ch") {
            CH
        } else if a.eq_ignore_ascii_case(b"incr") {
            INCR
        } else {
            break;
        };
        flags |= f;
        idx += 1;
    }
    let elements = argv.len() - idx;
    if !elements.is_multiple_of(2) || elements == 0 {
        return Err(Reply::syntax_error());
    }
    if flags & NX != 0 && flags & XX != 0 {
        return Err(Reply::err(
            "ERR XX and NX options at the same time are not compatible",
        ));
    }
    let gt_lt_nx = [GT, LT, NX].iter().filter(|&&f| flags & f != 0).count();
    if gt_lt_nx > 1 {
        return Err(Reply::err(
            "ERR GT, LT, and/or NX options at the same time are not compatible",
        ));
    }
    let incr = flags & INCR != 0;
    if incr && elements > 2 {
        return Err(Reply::err(
            "ERR INCR option supports a single increment-element pair",
        ));
    }
    let members = argv[idx..].chunks_exact(2).map(|p| p[1]);
    let mut pairs = Vec::with_capacity(elements / 2);
    for p in argv[idx..].chunks_exact(2) {
        let score = parse_score(p[0]).ok_or_else(Reply::not_float)?;
        pairs.push((score, p[1]));
    }
    let key = argv[1];
    let exists = ctx.get_zset(key)?.is_some();
    if !exists && flags & XX != 0 {
        return Ok(if incr { Reply::Nil } else { Reply::Integer(0) });
    }
    let z = zset_or_create(ctx, key)?;
    let (mut added, mut updated, mut processed) = (0i64, 0i64, 0i64);
    let mut newscore = 0.0;
    let mut error = None;
    for (score, member) in pairs {
        match z.score(member) {
            Some(cur) => {
                if flags & NX != 0 {
                    continue;
                }
                let mut score = score;
                if incr {
                    score += cur;
                    if score.is_nan() {
                        error = Some(nan_error());
                        break;
                    }
                }
                if (flags & LT != 0 && score >= cur) || (flags & GT != 0 && score <= cur) {
                    continue;
                }
                newscore = score;
                if score != cur {
                    z.insert(member, score);
                    updated += 1;
                }
                processed += 1;
            }
            None => {
                if flags & XX != 0 {
                    continue;
                }
                z.insert(member, score);
                newscore = score;
                added += 1;
                processed += 1;
            }
        }
    }
    let len = z.len();
    ctx.pin_if_converted(key, Collection::ZSet, len, members);
    if added + updated > 0 {
        ctx.event(Flags::ZSET, if incr { "zincr" } else { "zadd" }, argv[1]);
        ctx.propagate(argv);
    }
    if let Some(e) = error {
        return Err(e);
    }
    Ok(if incr {
        if processed > 0 {
            Reply::bulk_f64(newscore)
        } else {
            Reply::Nil
        }
    } else if flags & CH != 0 {
        Reply::Integer(added + updated)
    } else {
        Reply::Integer(added)
    })
}

fn zadd(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> Reply {
    unwrap(zadd_generic(ctx, argv, 0))
}

fn zincrby(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> Reply {
    unwrap(zadd_generic(ctx, argv, INCR))
}

// ---- simple reads and ZREM ----

fn zrem(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> Reply {
    unwrap((|| {
        let Some(z) = ctx.get_zset_mut(argv[1])? else {
            return Ok(Reply::Integer(0));
        };
        let removed = argv[2..].iter().filter(|m| z.remove(m).is_some()).count();
        if removed > 0 {
            ctx.event(Flags::ZSET, "zrem", argv[1]);
            ctx.propagate(argv);
        }
        Ok(Reply::Integer(removed as i64))
    })())
}

fn zscore(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> Reply {
    unwrap((|| {
        Ok(ctx
            .get_zset(argv[1])?
            .and_then(|z| z.score(argv[2]))
            .map_or(Reply::Nil, Reply::bulk_f64))
    })())
}

fn zmscore(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> Reply {
    unwrap((|| {
        let z = ctx.get_zset(argv[1])?;
        Ok(Reply::Array(
            argv[2..]
                .iter()
                .map(|m| {
                    z.and_then(|z| z.score(m))
                        .map_or(Reply::Nil, Reply::bulk_f64)
                })
                .collect(),
        ))
    })())
}

fn zcard(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> Reply {
    unwrap((|| {
        Ok(Reply::Integer(
            ctx.get_zset(argv[1])?.map_or(0, |z| z.len() as i64),
        ))
    })())
}

fn rank_generic(ctx: &mut Ctx<'_>, argv: &[&[u8]], rev: bool) -> Reply {
    unwrap((|| {
        let Some(z) = ctx.get_zset(argv[1])? else {
            return Ok(Reply::Nil);
        };
        Ok(match z.rank(argv[2]) {
            Some(r) => Reply::Integer(if rev { z.len() - 1 - r } else { r } as i64),
            None => Reply::Nil,
        })
    })())
}

fn zrank(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> Reply {
    rank_generic(ctx, argv, false)
}

fn zrevrank(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> Reply {
    rank_generic(ctx, argv, true)
}

// ---- ZRANGE family ----

#[derive(Clone, Copy, PartialEq)]
enum RangeType {
    Auto,
    Rank,
    Score,
    Lex,
}

#[derive(Clone, Copy, PartialEq)]
enum Direction {
    Auto,
    Forward,
    Reverse,
}

/// `zrangeGenericCommand`: `argv[1]` is the key, `argv[2..4]` the range, options after.
fn zrange_generic(
    ctx: &mut Ctx<'_>,
    argv: &[&[u8]],
    rangetype: RangeType,
    direction: Direction,
) -> Result<Reply, Reply> {
    let (items, withscores) = zrange_select(ctx, argv, rangetype, direction, false)?;
    Ok(emit(items, withscores))
}

/// `ZRANGESTORE dst src min max [BYSCORE|BYLEX] [REV] [LIMIT offset count]`: the selection
/// stored in `dst` (replaced, without TTL); an empty one deletes `dst`. Propagated verbatim.
fn zrangestore(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> Reply {
    let items: Vec<(Vec<u8>, f64)> =
        match zrange_select(ctx, &argv[1..], RangeType::Auto, Direction::Auto, true) {
            Err(e) => return e,
            Ok((items, _)) => items.into_iter().map(|(m, s)| (m.to_vec(), s)).collect(),
        };
    let dst = argv[1];
    if items.is_empty() {
        if ctx.remove(dst).is_some() {
            ctx.event(Flags::GENERIC, "del", dst);
            ctx.propagate(argv);
        }
        return Reply::Integer(0);
    }
    let n = items.len();
    let mut z = ZSet::new();
    for (m, s) in items {
        z.insert(m, s);
    }
    ctx.insert(dst, Value::ZSet(z));
    ctx.event(Flags::ZSET, "zrangestore", dst);
    ctx.propagate(argv);
    Reply::Integer(n as i64)
}

/// Members with their scores, borrowed from the sorted set.
type Selection<'c> = Vec<(&'c [u8], f64)>;

/// The members (with scores) a ZRANGE-family command selects, and whether WITHSCORES was given
/// (`store`: ZRANGESTORE, which refuses WITHSCORES). `argv[1]` is the source key.
fn zrange_select<'c>(
    ctx: &'c mut Ctx<'_>,
    argv: &[&[u8]],
    mut rangetype: RangeType,
    mut direction: Direction,
    store: bool,
) -> Result<(Selection<'c>, bool), Reply> {
    let mut withscores = false;
    let (mut offset, mut limit) = (0i64, -1i64);
    let mut j = 4;
    while j < argv.len() {
        let a = argv[j];
        let left = argv.len() - j - 1;
        if !store && a.eq_ignore_ascii_case(b"withscores") {
            withscores = true;
        } else if a.eq_ignore_ascii_case(b"limit") && left >= 2 {
            offset = int_arg(argv[j + 1])?;
            limit = int_arg(argv[j + 2])?;
            j += 2;
        } else if direction == Direction::Auto && a.eq_ignore_ascii_case(b"rev") {
            direction = Direction::Reverse;
        } else if rangetype == RangeType::Auto && a.eq_ignore_ascii_case(b"bylex") {
            rangetype = RangeType::Lex;
        } else if rangetype == RangeType::Auto && a.eq_ignore_ascii_case(b"byscore") {
            rangetype = RangeType::Score;
        } else {
            return Err(Reply::syntax_error());
        }
        j += 1;
    }
    if direction == Direction::Auto {
        direction = Direction::Forward;
    }
    if rangetype == RangeType::Auto {
        rangetype = RangeType::Rank;
    }
    if limit != -1 && rangetype == RangeType::Rank {
        return Err(Reply::err(
            "ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX",
        ));
    }
    if withscores && rangetype == RangeType::Lex {
        return Err(Reply::err(
            "ERR syntax error, WITHSCORES not supported in combination with BYLEX",
        ));
    }
    let rev = direction == Direction::Reverse;
    let (mut minarg, mut maxarg) = (argv[2], argv[3]);
    if rev && rangetype != RangeType::Rank {
        std::mem::swap(&mut minarg, &mut maxarg);
    }
    enum Parsed {
        Rank(i64, i64),
        Score(ScoreRange),
        Lex(LexRange),
    }
    let parsed = match rangetype {
        RangeType::Score => Parsed::Score(parse_score_range(minarg, maxarg)?),
        RangeType::Lex => Parsed::Lex(parse_lex_range(minarg, maxarg)?),
        _ => Parsed::Rank(int_arg(minarg)?, int_arg(maxarg)?),
    };
    let Some(z) = ctx.get_zset(argv[1])? else {
        return Ok((Vec::new(), withscores));
    };
    let items: Vec<(&[u8], f64)> = match parsed {
        Parsed::Rank(start, end) => match clamp_ranks(z.len(), start, end) {
            None => Vec::new(),
            Some((s, e)) => {
                let n = e - s + 1;
                let from = if rev { z.len() - 1 - s } else { s };
                z.iter_from_rank(from, rev).take(n).collect()
            }
        },
        Parsed::Score(r) => collect_range(z, &r, rev, offset, limit),
        Parsed::Lex(r) => collect_range(z, &r, rev, offset, limit),
    };
    Ok((items, withscores))
}

fn zrange(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> Reply {
    unwrap(zrange_generic(ctx, argv, RangeType::Auto, Direction::Auto))
}

fn zrangebyscore(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> Reply {
    unwrap(zrange_generic(
        ctx,
        argv,
        RangeType::Score,
        Direction::Forward,
    ))
}

fn zrevrangebyscore(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> Reply {
    unwrap(zrange_generic(
        ctx,
        argv,
        RangeType::Score,
        Direction::Reverse,
    ))
}

fn zrevrange(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> Reply {
    unwrap(zrange_generic(
        ctx,
        argv,
        RangeType::Rank,
        Direction::Reverse,
    ))
}

fn zrangebylex(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> Reply {
    unwrap(zrange_generic(
        ctx,
        argv,
        RangeType::Lex,
        Direction::Forward,
    ))
}

fn zrevrangebylex(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> Reply {
    unwrap(zrange_generic(
        ctx,
        argv,
        RangeType::Lex,
        Direction::Reverse,
    ))
}

fn zcount(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> Reply {
    unwrap((|| {
        let r = parse_score_range(argv[2], argv[3])?;
        Ok(Reply::Integer(
            ctx.get_zset(argv[1])?.map_or(0, |z| count_range(z, &r)) as i64,
        ))
    })())
}

fn zlexcount(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> Reply {
    unwrap((|| {
        let r = parse_lex_range(argv[2], argv[3])?;
        Ok(Reply::Integer(
            ctx.get_zset(argv[1])?.map_or(0, |z| count_range(z, &r)) as i64,
        ))
    })())
}

// ---- removal ----

/// Removes ascending ranks `start..=end` of the zset at `argv[1]` once the range is known.
fn remove_ranks(
    ctx: &mut Ctx<'_>,
    argv: &[&[u8]],
    span: Option<(usize, usize)>,
    event: &'static str,
) -> Result<Reply, Reply> {
    let key = argv[1];
    let Some((start, end)) = span else {
        return Ok(Reply::Integer(0));
    };
    let removed = match ctx.get_zset_mut(key)? {
        Some(z) => z.remove_rank_range(start, end + 1),
        None => 0,
    };
    if removed > 0 {
        ctx.event(Flags::ZSET, event, key);
        ctx.propagate(argv);
    }
    Ok(Reply::Integer(removed as i64))
}

fn zremrangebyrank(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> Reply {
    unwrap((|| {
        let (start, end) = (int_arg(argv[2])?, int_arg(argv[3])?);
        let Some(z) = ctx.get_zset(argv[1])? else {
            return Ok(Reply::Integer(0));
        };
        let span = clamp_ranks(z.len(), start, end);
        remove_ranks(ctx, argv, span, "zremrangebyrank")
    })())
}

fn span_of(z: &ZSet, r: &impl Range) -> Option<(usize, usize)> {
    match (first_in_range(z, r), last_in_range(z, r)) {
        (Some(a), Some(b)) if b >= a => Some((a, b)),
        _ => None,
    }
}

fn zremrangebyscore(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> Reply {
    unwrap((|| {
        let r = parse_score_range(argv[2], argv[3])?;
        let Some(z) = ctx.get_zset(argv[1])? else {
            return Ok(Reply::Integer(0));
        };
        let span = span_of(z, &r);
        remove_ranks(ctx, argv, span, "zremrangebyscore")
    })())
}

fn zremrangebylex(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> Reply {
    unwrap((|| {
        let r = parse_lex_range(argv[2], argv[3])?;
        let Some(z) = ctx.get_zset(argv[1])? else {
            return Ok(Reply::Integer(0));
        };
        let span = span_of(z, &r);
        remove_ranks(ctx, argv, span, "zremrangebylex")
    })())
}

fn zpop_generic(ctx: &mut Ctx<'_>, argv: &[&[u8]], max: bool) -> Reply {
    unwrap((|| {
        if argv.len() > 3 {
            return Err(Reply::syntax_error());
        }
        let count = match argv.get(2) {
            Some(a) => parse_i64(a)
                .and_then(|n| usize::try_from(n).ok())
                .ok_or_else(|| Reply::err("ERR value is out of range, must be positive"))?,
            None => 1,
        };
        // The key is type-checked before a zero count is honoured.
        if ctx.get_zset(argv[1])?.is_none() || count == 0 {
            return Ok(Reply::Array(Vec::new()));
        }
        let Some(z) = ctx.get_zset_mut(argv[1])? else {
            return Ok(Reply::Array(Vec::new()));
        };
        let n = count.min(z.len());
        let mut out = Vec::with_capacity(n * 2);
        for _ in 0..n {
            let popped = if max { z.pop_last() } else { z.pop_first() };
            if let Some((m, s)) = popped {
                out.push(Reply::Bulk(m));
                out.push(Reply::bulk_f64(s));
            }
        }
        if !out.is_empty() {
            ctx.event(
                Flags::ZSET,
                if max { "zpopmax" } else { "zpopmin" },
                argv[1],
            );
            ctx.propagate(argv);
        }
        Ok(Reply::Array(out))
    })())
}

fn zpopmin(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> Reply {
    zpop_generic(ctx, argv, false)
}

fn zpopmax(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> Reply {
    zpop_generic(ctx, argv, true)
}
