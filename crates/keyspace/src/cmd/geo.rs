//! GEO commands: GEOADD, GEODIST, GEOHASH, GEOPOS, GEORADIUS, GEORADIUSBYMEMBER (and their
//! `_RO` forms), GEOSEARCH, GEOSEARCHSTORE.
//!
//! A GEO set is a sorted set whose scores are 52-bit geohashes ([`crate::geohash`]).
//! Semantics, replies, error texts and propagation follow Redis 7.0.15 `geo.c` (verified
//! against redis-server 7.0.15 by the differential tests):
//! - GEOADD parses its options and positions, then runs ZADD with the scores, so it replies,
//!   notifies (`zadd`) and propagates exactly as that ZADD (the AOF and replicas see ZADD);
//! - a search checks the source's type, parses the centre and the area, then the options in one
//!   pass (errors in argument order), then the combinations; a missing source gives an empty
//!   array (or 0 and the destination deleted for STORE forms);
//! - the members are collected box by box in Redis's box order, each box's score range in
//!   ascending order, stopping early with COUNT ANY; ASC/DESC sort by distance stably (glibc's
//!   `qsort` is a merge sort), and a COUNT smaller than the matches uses Redis's partial
//!   quicksort ([`pqsort`]) so equal distances come out in Redis's order;
//! - distances print with 4 decimals (`fixedpoint_d2string`), coordinates as `%.17Lf` without
//!   trailing zeros (`addReplyHumanLongDouble`), hashes as integers;
//! - STORE/STOREDIST/GEOSEARCHSTORE replace the destination (dropping its TTL) with the result
//!   (scores: geohashes, or distances in the unit), delete it when the result is empty, and
//!   propagate the command verbatim when they changed something.
//!
//! Key positions: GEORADIUS and GEORADIUSBYMEMBER take their destination after STORE or
//! STOREDIST anywhere in the options, so their specs over-declare every argument (as
//! ZUNIONSTORE's do); the exact positions are Redis's key specs', [`crate::keyspec`].

use crate::command::{CommandSpec, READONLY, WRITE};
use crate::convert::{format_double_human, parse_i64};
use crate::ctx::Ctx;
use crate::geohash::{self, Query, Shape};
use crate::notify::Flags;
use crate::reply::Reply;
use crate::types::{parse_score, ZSet};
use crate::value::Value;

/// The commands of this module.
#[rustfmt::skip]
pub(crate) const COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("geoadd", -5, WRITE, 1, 1, 1, geoadd),
    CommandSpec::new("geodist", -4, READONLY, 1, 1, 1, geodist),
    CommandSpec::new("geohash", -2, READONLY, 1, 1, 1, geohash_cmd),
    CommandSpec::new("geopos", -2, READONLY, 1, 1, 1, geopos),
    // Keys: the source, and the argument after STORE/STOREDIST (over-declared).
    CommandSpec::new("georadius", -6, WRITE, 1, -1, 1, georadius),
    CommandSpec::new("georadiusbymember", -5, WRITE, 1, -1, 1, georadiusbymember),
    CommandSpec::new("georadius_ro", -6, READONLY, 1, 1, 1, georadius_ro),
    CommandSpec::new("georadiusbymember_ro", -5, READONLY, 1, 1, 1, georadiusbymember_ro),
    CommandSpec::new("geosearch", -7, READONLY, 1, 1, 1, geosearch),
    CommandSpec::new("geosearchstore", -8, WRITE, 1, 2, 1, geosearchstore),
];

fn unwrap(r: Result<Reply, Reply>) -> Reply {
    r.unwrap_or_else(|e| e)
}

/// A double argument (`getDoubleFromObjectOrReply`), `msg` the error when it is not one.
fn double_arg(arg: &[u8], msg: &'static str) -> Result<f64, Reply> {
    parse_score(arg).ok_or_else(|| Reply::err(msg))
}

const NOT_FLOAT: &str = "ERR value is not a valid float";

/// A longitude and a latitude (`extractLongLatOrReply`).
fn lon_lat(args: &[&[u8]]) -> Result<(f64, f64), Reply> {
    let lon = double_arg(args[0], NOT_FLOAT)?;
    let lat = double_arg(args[1], NOT_FLOAT)?;
    if !(geohash::LONG_MIN..=geohash::LONG_MAX).contains(&lon)
        || !(geohash::LAT_MIN..=geohash::LAT_MAX).contains(&lat)
    {
        return Err(Reply::err(format!(
            "ERR invalid longitude,latitude pair {lon:.6},{lat:.6}"
        )));
    }
    Ok((lon, lat))
}

/// Metres per unit (`extractUnitOrReply`).
fn unit(arg: &[u8]) -> Result<f64, Reply> {
    let u = arg.to_ascii_lowercase();
    match u.as_slice() {
        b"m" => Ok(1.0),
        b"km" => Ok(1000.0),
        b"ft" => Ok(0.3048),
        b"mi" => Ok(1609.34),
        _ => Err(Reply::err(
            "ERR unsupported unit provided. please use M, KM, FT, MI",
        )),
    }
}

/// `<radius> <unit>`: (radius, metres per unit) (`extractDistanceOrReply`).
fn radius_arg(args: &[&[u8]]) -> Result<(f64, f64), Reply> {
    let r = double_arg(args[0], "ERR need numeric radius")?;
    if r < 0.0 {
        return Err(Reply::err("ERR radius cannot be negative"));
    }
    Ok((r, unit(args[1])?))
}

/// `<width> <height> <unit>` (`extractBoxOrReply`).
fn box_arg(args: &[&[u8]]) -> Result<(f64, f64, f64), Reply> {
    let w = double_arg(args[0], "ERR need numeric width")?;
    let h = double_arg(args[1], "ERR need numeric height")?;
    if h < 0.0 || w < 0.0 {
        return Err(Reply::err("ERR height or width cannot be negative"));
    }
    Ok((w, h, unit(args[2])?))
}

/// A distance as Redis prints it: rounded (ties to even, as `llrint`) to 4 decimals
/// (`addReplyDoubleDistance`).
fn distance_text(d: f64) -> String {
    if d == 0.0 {
        return "0.0000".into();
    }
    let v = (d * 10000.0).round_ties_even();
    let neg = v < 0.0;
    // Earth distances in any unit are far below 2^63 / 10^4.
    let v = v.abs() as u64;
    format!(
        "{}{}.{:04}",
        if neg { "-" } else { "" },
        v / 10000,
        v % 10000
    )
}

fn coord_reply(lon: f64, lat: f64) -> Reply {
    Reply::Array(vec![
        Reply::Bulk(format_double_human(lon).into_bytes()),
        Reply::Bulk(format_double_human(lat).into_bytes()),
    ])
}

/// The score of `member` in the GEO set at `key` (`Ok(None)`: no key or no member).
fn member_score(ctx: &mut Ctx<'_>, key: &[u8], member: &[u8]) -> Result<Option<f64>, Reply> {
    Ok(ctx.get_zset(key)?.and_then(|z| z.score(member)))
}

// ---- GEOADD ----

/// GEOADD key [NX|XX] [CH] longitude latitude member [...]: ZADD with the geohashes.
fn geoadd(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> Reply {
    unwrap((|| {
        let (mut nx, mut xx) = (false, false);
        let mut first = 2;
        while first < argv.len() {
            let o = argv[first];
            if o.eq_ignore_ascii_case(b"nx") {
                nx = true;
            } else if o.eq_ignore_ascii_case(b"xx") {
                xx = true;
            } else if !o.eq_ignore_ascii_case(b"ch") {
                break;
            }
            first += 1;
        }
        if !(argv.len() - first).is_multiple_of(3) || (nx && xx) {
            return Err(Reply::syntax_error());
        }
        let scores = argv[first..]
            .chunks_exact(3)
            .map(|t| {
                let (lon, lat) = lon_lat(t)?;
                let score = geohash::score_of(lon, lat).unwrap_or(0);
                Ok(score.to_string().into_bytes())
            })
            .collect::<Result<Vec<_>, Reply>>()?;
        let mut zadd: Vec<&[u8]> = Vec::with_capacity(first + scores.len() * 2);
        zadd.push(b"zadd");
        zadd.extend_from_slice(&argv[1..first]);
        for (score, t) in scores.iter().zip(argv[first..].chunks_exact(3)) {
            zadd.push(score);
            zadd.push(t[2]);
        }
        crate::cmd::zsets::zadd_generic(ctx, &zadd, 0)
    })())
}

// ---- GEODIST, GEOHASH, GEOPOS ----

/// GEODIST key member1 member2 [unit].
fn geodist(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> Reply {
    unwrap((|| {
        let to_meter = match argv.len() {
            5 => unit(argv[4])?,
            n if n > 5 => return Err(Reply::syntax_error()),
            _ => 1.0,
        };
        let Some(z) = ctx.get_zset(argv[1])? else {
            return Ok(Reply::Nil);
        };
        let (Some(s1), Some(s2)) = (z.score(argv[2]), z.score(argv[3])) else {
            return Ok(Reply::Nil);
        };
        let (lon1, lat1) = geohash::decode_score(s1);
        let (lon2, lat2) = geohash::decode_score(s2);
        let d = geohash::distance(lon1, lat1, lon2, lat2) / to_meter;
        Ok(Reply::Bulk(distance_text(d).into_bytes()))
    })())
}

/// The reply of GEOHASH and GEOPOS: per member, `missing` when absent, else `found` of its
/// position (longitude, latitude).
fn per_member(
    ctx: &mut Ctx<'_>,
    argv: &[&[u8]],
    missing: Reply,
    found: impl Fn(f64, f64) -> Reply,
) -> Reply {
    unwrap((|| {
        let z = ctx.get_zset(argv[1])?;
        Ok(Reply::Array(
            argv[2..]
                .iter()
                .map(|m| match z.and_then(|z| z.score(m)) {
                    None => missing.clone(),
                    Some(score) => {
                        let (lon, lat) = geohash::decode_score(score);
                        found(lon, lat)
                    }
                })
                .collect(),
        ))
    })())
}

/// GEOHASH key [member ...]: 11-character standard geohashes.
fn geohash_cmd(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> Reply {
    const ALPHABET: &[u8; 32] = b"0123456789bcdefghjkmnpqrstuvwxyz";
    per_member(ctx, argv, Reply::Nil, |lon, lat| {
        // Stored hashes use latitudes in ±85.05; the standard string is over ±90.
        let bits = geohash::encode_standard(lon, lat, 26).map_or(0, |h| h.bits);
        let text: Vec<u8> = (0..11)
            .map(|i| {
                let idx = if i == 10 {
                    0
                } else {
                    (bits >> (52 - (i + 1) * 5)) & 0x1f
                };
                ALPHABET[idx as usize]
            })
            .collect();
        Reply::Bulk(text)
    })
}

/// GEOPOS key [member ...].
fn geopos(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> Reply {
    per_member(ctx, argv, Reply::NilArray, coord_reply)
}

// ---- searches ----

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// GEORADIUS[_RO] key lon lat radius unit ...
    Coords,
    /// GEORADIUSBYMEMBER[_RO] key member radius unit ...
    Member,
    /// GEOSEARCH key ...
    Search,
    /// GEOSEARCHSTORE dst key ...
    SearchStore,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Sort {
    None,
    Asc,
    Desc,
}

/// One match.
struct Point {
    lon: f64,
    lat: f64,
    dist: f64,
    score: f64,
    member: Vec<u8>,
}

/// The members of `z` inside the query's area, box by box (`membersOfAllNeighbors`), stopping
/// once `limit` (0: none) are found.
fn collect(z: &ZSet, q: &Query, limit: usize) -> Vec<Point> {
    let boxes = q.boxes();
    let mut out = Vec::new();
    let mut last_processed = 0usize;
    for (i, b) in boxes.iter().enumerate() {
        let Some(h) = b else { continue };
        // A huge radius can make neighbours equal: skip a repeat of the previous box (the
        // centre box never counts as "previous", as in Redis).
        if last_processed != 0 && boxes[last_processed] == Some(*h) {
            continue;
        }
        if !out.is_empty() && limit != 0 && out.len() >= limit {
            break;
        }
        let (min, max) = geohash::score_range(*h);
        let start = z.count_while(|_, s| s < min);
        for (m, s) in z.iter_from_rank(start, false) {
            if s >= max {
                break;
            }
            let (lon, lat) = geohash::decode_score(s);
            if let Some(dist) = q.contains(lon, lat) {
                out.push(Point {
                    lon,
                    lat,
                    dist,
                    score: s,
                    member: m.to_vec(),
                });
            }
            if !out.is_empty() && limit != 0 && out.len() >= limit {
                break;
            }
        }
        last_processed = i;
    }
    out
}

/// Redis's `pqsort`: Bentley & McIlroy's quicksort that only recurses into the parts that
/// overlap the index range `lrange..=rrange` (so those positions hold what a full sort would
/// put there). Written over indices; the comparisons and swaps are Redis's, so equal keys end
/// up where Redis puts them.
fn pqsort<T>(
    v: &mut [T],
    cmp: &impl Fn(&T, &T) -> std::cmp::Ordering,
    lrange: usize,
    rrange: usize,
) {
    pqsort_at(v, 0, v.len(), cmp, lrange, rrange);
}

fn med3<T>(
    v: &[T],
    a: usize,
    b: usize,
    c: usize,
    cmp: &impl Fn(&T, &T) -> std::cmp::Ordering,
) -> usize {
    if cmp(&v[a], &v[b]).is_lt() {
        if cmp(&v[b], &v[c]).is_lt() {
            b
        } else if cmp(&v[a], &v[c]).is_lt() {
            c
        } else {
            a
        }
    } else if cmp(&v[b], &v[c]).is_gt() {
        b
    } else if cmp(&v[a], &v[c]).is_lt() {
        a
    } else {
        c
    }
}

fn vecswap<T>(v: &mut [T], a: usize, b: usize, n: usize) {
    for i in 0..n {
        v.swap(a + i, b + i);
    }
}

fn pqsort_at<T>(
    v: &mut [T],
    mut a: usize,
    mut n: usize,
    cmp: &impl Fn(&T, &T) -> std::cmp::Ordering,
    lrange: usize,
    rrange: usize,
) {
    // True when [s, s + len) holds none of lrange..=rrange on either side.
    let outside = |s: usize, len: usize| {
        (lrange < s && rrange < s) || (lrange >= s + len && rrange >= s + len)
    };
    loop {
        if n < 7 {
            for pm in a + 1..a + n {
                let mut pl = pm;
                while pl > a && cmp(&v[pl - 1], &v[pl]).is_gt() {
                    v.swap(pl, pl - 1);
                    pl -= 1;
                }
            }
            return;
        }
        let mut pm = a + n / 2;
        if n > 7 {
            let mut pl = a;
            let mut pn = a + n - 1;
            if n > 40 {
                let d = n / 8;
                pl = med3(v, pl, pl + d, pl + 2 * d, cmp);
                pm = med3(v, pm - d, pm, pm + d, cmp);
                pn = med3(v, pn - 2 * d, pn - d, pn, cmp);
            }
            pm = med3(v, pl, pm, pn, cmp);
        }
        v.swap(a, pm);
        let (mut pa, mut pb) = (a + 1, a + 1);
        // pc/pd may step below a + 1 (to a); kept as signed to mirror the pointer walk.
        let (mut pc, mut pd) = ((a + n - 1) as isize, (a + n - 1) as isize);
        loop {
            while pb as isize <= pc {
                let c = cmp(&v[pb], &v[a]);
                if c.is_gt() {
                    break;
                }
                if c.is_eq() {
                    v.swap(pa, pb);
                    pa += 1;
                }
                pb += 1;
            }
            while pb as isize <= pc {
                let c = cmp(&v[pc as usize], &v[a]);
                if c.is_lt() {
                    break;
                }
                if c.is_eq() {
                    v.swap(pc as usize, pd as usize);
                    pd -= 1;
                }
                pc -= 1;
            }
            if pb as isize > pc {
                break;
            }
            v.swap(pb, pc as usize);
            pb += 1;
            pc -= 1;
        }
        let pn = a + n;
        let r = (pa - a).min(pb - pa);
        vecswap(v, a, pb - r, r);
        let r = ((pd - pc) as usize).min(pn - pd as usize - 1);
        vecswap(v, pb, pn - r, r);
        let left = pb - pa;
        if left > 1 && !outside(a, left) {
            pqsort_at(v, a, left, cmp, lrange, rrange);
        }
        let right = (pd - pc) as usize;
        if right > 1 {
            a = pn - right;
            n = right;
            if !outside(a, n) {
                continue;
            }
        }
        return;
    }
}

/// The parsed search.
struct Search {
    query: Query,
    store: Option<usize>,
    storedist: bool,
    withdist: bool,
    withhash: bool,
    withcoord: bool,
    sort: Sort,
    any: bool,
    count: i64,
}

/// Parse and run a search (`georadiusGeneric`); `src` is the source key's index.
fn search(ctx: &mut Ctx<'_>, argv: &[&[u8]], src: usize, kind: Kind, nostore: bool) -> Reply {
    unwrap(search_inner(ctx, argv, src, kind, nostore))
}

fn search_inner(
    ctx: &mut Ctx<'_>,
    argv: &[&[u8]],
    src: usize,
    kind: Kind,
    nostore: bool,
) -> Result<Reply, Reply> {
    let exists = ctx.get_zset(argv[src])?.is_some();
    let geosearch = matches!(kind, Kind::Search | Kind::SearchStore);
    let mut q = Query {
        lon: 0.0,
        lat: 0.0,
        shape: Shape::Radius(0.0),
        conversion: 0.0,
    };
    let mut s = Search {
        query: q,
        store: None,
        storedist: false,
        withdist: false,
        withhash: false,
        withcoord: false,
        sort: Sort::None,
        any: false,
        count: 0,
    };
    let base = match kind {
        Kind::Coords => {
            (q.lon, q.lat) = lon_lat(&argv[2..4])?;
            let (r, conv) = radius_arg(&argv[4..6])?;
            (q.shape, q.conversion) = (Shape::Radius(r), conv);
            6
        }
        Kind::Member if !exists => 5,
        Kind::Member => {
            let score = member_score(ctx, argv[src], argv[2])?
                .ok_or_else(|| Reply::err("ERR could not decode requested zset member"))?;
            (q.lon, q.lat) = geohash::decode_score(score);
            let (r, conv) = radius_arg(&argv[3..5])?;
            (q.shape, q.conversion) = (Shape::Radius(r), conv);
            5
        }
        Kind::Search => 2,
        Kind::SearchStore => {
            s.store = Some(1);
            3
        }
    };
    let (mut frommember, mut fromloc, mut byradius, mut bybox) = (false, false, false, false);
    let remaining = argv.len().saturating_sub(base);
    let mut i = 0;
    while i < remaining {
        let arg = argv[base + i];
        let is = |w: &[u8]| arg.eq_ignore_ascii_case(w);
        if is(b"withdist") {
            s.withdist = true;
        } else if is(b"withhash") {
            s.withhash = true;
        } else if is(b"withcoord") {
            s.withcoord = true;
        } else if is(b"any") {
            s.any = true;
        } else if is(b"asc") {
            s.sort = Sort::Asc;
        } else if is(b"desc") {
            s.sort = Sort::Desc;
        } else if is(b"count") && i + 1 < remaining {
            s.count = parse_i64(argv[base + i + 1]).ok_or_else(Reply::not_integer)?;
            if s.count <= 0 {
                return Err(Reply::err("ERR COUNT must be > 0"));
            }
            i += 1;
        } else if (is(b"store") || is(b"storedist")) && i + 1 < remaining && !nostore && !geosearch
        {
            s.store = Some(base + i + 1);
            s.storedist = is(b"storedist");
            i += 1;
        } else if is(b"storedist") && kind == Kind::SearchStore {
            s.storedist = true;
        } else if is(b"frommember") && i + 1 < remaining && geosearch && !fromloc {
            if exists {
                let score = member_score(ctx, argv[src], argv[base + i + 1])?
                    .ok_or_else(|| Reply::err("ERR could not decode requested zset member"))?;
                (q.lon, q.lat) = geohash::decode_score(score);
            }
            frommember = true;
            i += 1;
        } else if is(b"fromlonlat") && i + 2 < remaining && geosearch && !frommember {
            (q.lon, q.lat) = lon_lat(&argv[base + i + 1..base + i + 3])?;
            fromloc = true;
            i += 2;
        } else if is(b"byradius") && i + 2 < remaining && geosearch && !bybox {
            let (r, conv) = radius_arg(&argv[base + i + 1..base + i + 3])?;
            (q.shape, q.conversion) = (Shape::Radius(r), conv);
            byradius = true;
            i += 2;
        } else if is(b"bybox") && i + 3 < remaining && geosearch && !byradius {
            let (width, height, conv) = box_arg(&argv[base + i + 1..base + i + 4])?;
            (q.shape, q.conversion) = (Shape::Box { width, height }, conv);
            bybox = true;
            i += 3;
        } else {
            return Err(Reply::syntax_error());
        }
        i += 1;
    }
    s.query = q;
    if s.store.is_some() && (s.withdist || s.withhash || s.withcoord) {
        return Err(Reply::err(format!(
            "ERR {} is not compatible with WITHDIST, WITHHASH and WITHCOORD options",
            if kind == Kind::SearchStore {
                "GEOSEARCHSTORE"
            } else {
                "STORE option in GEORADIUS"
            }
        )));
    }
    let name = String::from_utf8_lossy(argv[0]);
    if geosearch && !(frommember || fromloc) {
        return Err(Reply::err(format!(
            "ERR exactly one of FROMMEMBER or FROMLONLAT can be specified for {name}"
        )));
    }
    if geosearch && !(byradius || bybox) {
        return Err(Reply::err(format!(
            "ERR exactly one of BYRADIUS and BYBOX can be specified for {name}"
        )));
    }
    if s.any && s.count == 0 {
        return Err(Reply::err("ERR the ANY argument requires COUNT argument"));
    }
    if !exists {
        return Ok(match s.store {
            Some(dst) => {
                if ctx.remove(argv[dst]).is_some() {
                    ctx.event(Flags::GENERIC, "del", argv[dst]);
                    ctx.propagate(argv);
                }
                Reply::Integer(0)
            }
            None => Reply::Array(Vec::new()),
        });
    }
    if s.count != 0 && s.sort == Sort::None && !s.any {
        s.sort = Sort::Asc;
    }
    let limit = if s.any { s.count as usize } else { 0 };
    let mut points = match ctx.get_zset(argv[src])? {
        Some(z) => collect(z, &s.query, limit),
        None => Vec::new(),
    };
    if points.is_empty() && s.store.is_none() {
        return Ok(Reply::Array(Vec::new()));
    }
    let returned = if s.count == 0 || (points.len() as i64) < s.count {
        points.len()
    } else {
        s.count as usize
    };
    let asc = |a: &Point, b: &Point| {
        a.dist
            .partial_cmp(&b.dist)
            .unwrap_or(std::cmp::Ordering::Equal)
    };
    let desc = |a: &Point, b: &Point| asc(b, a);
    match (s.sort, returned == points.len()) {
        (Sort::None, _) => {}
        (Sort::Asc, true) => points.sort_by(asc),
        (Sort::Desc, true) => points.sort_by(desc),
        (Sort::Asc, false) => pqsort(&mut points, &asc, 0, returned - 1),
        (Sort::Desc, false) => pqsort(&mut points, &desc, 0, returned - 1),
    }
    points.truncate(returned);
    let conv = s.query.conversion;
    match s.store {
        None => {
            let options = s.withdist || s.withhash || s.withcoord;
            Ok(Reply::Array(
                points
                    .into_iter()
                    .map(|p| {
                        if !options {
                            return Reply::Bulk(p.member);
                        }
                        let mut item = vec![Reply::Bulk(p.member)];
                        if s.withdist {
                            item.push(Reply::Bulk(distance_text(p.dist / conv).into_bytes()));
                        }
                        if s.withhash {
                            item.push(Reply::Integer(p.score as i64));
                        }
                        if s.withcoord {
                            item.push(coord_reply(p.lon, p.lat));
                        }
                        Reply::Array(item)
                    })
                    .collect(),
            ))
        }
        Some(dst) => {
            let dst = argv[dst];
            if returned > 0 {
                let mut z = ZSet::new();
                for p in points {
                    let score = if s.storedist { p.dist / conv } else { p.score };
                    z.insert(p.member, score);
                }
                ctx.insert(dst, Value::ZSet(z));
                let event = if geosearch {
                    "geosearchstore"
                } else {
                    "georadiusstore"
                };
                ctx.event(Flags::ZSET, event, dst);
                ctx.propagate(argv);
            } else if ctx.remove(dst).is_some() {
                ctx.event(Flags::GENERIC, "del", dst);
                ctx.propagate(argv);
            }
            Ok(Reply::Integer(returned as i64))
        }
    }
}

fn georadius(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> Reply {
    search(ctx, argv, 1, Kind::Coords, false)
}

fn georadiusbymember(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> Reply {
    search(ctx, argv, 1, Kind::Member, false)
}

fn georadius_ro(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> Reply {
    search(ctx, argv, 1, Kind::Coords, true)
}

fn georadiusbymember_ro(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> Reply {
    search(ctx, argv, 1, Kind::Member, true)
}

fn geosearch(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> Reply {
    search(ctx, argv, 1, Kind::Search, true)
}

fn geosearchstore(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> Reply {
    search(ctx, argv, 2, Kind::SearchStore, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances_print_like_fixedpoint_d2string() {
        assert_eq!(distance_text(0.0), "0.0000");
        assert_eq!(distance_text(166274.15156960033), "166274.1516");
        assert_eq!(distance_text(12.5), "12.5000");
        assert_eq!(distance_text(0.7750), "0.7750");
    }

    #[test]
    fn pqsort_orders_the_requested_prefix() {
        let mut seed = 12345u64;
        for n in [1usize, 5, 7, 8, 30, 41, 100, 300] {
            let mut v: Vec<u32> = (0..n)
                .map(|_| {
                    seed = seed
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    ((seed >> 33) % 50) as u32
                })
                .collect();
            let mut sorted = v.clone();
            sorted.sort();
            let k = (n / 3).max(1);
            pqsort(&mut v, &|a: &u32, b: &u32| a.cmp(b), 0, k - 1);
            assert_eq!(&v[..k], &sorted[..k], "n={n}");
        }
    }
}
