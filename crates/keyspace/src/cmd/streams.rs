//! Stream commands without consumer groups: XADD, XRANGE, XREVRANGE, XLEN, XDEL, XTRIM, XREAD
//! (and the shared reading of XREADGROUP), XSETID, XINFO (Redis 7.0.15 `t_stream.c`).
//!
//! Replies, errors and their order follow redis-server 7.0.15 (checked by the differential test
//! and the Tcl units `type/stream` and `type/stream-cgroups`). Propagation as Redis's: XADD with
//! its generated ID written into the ID argument and an approximate trim (`~`) rewritten to the
//! exact `=` result (`MAXLEN = <length>` / `MINID = <first ID>`), so a replay is deterministic;
//! XTRIM the same; XDEL/XSETID verbatim when they changed something. XREAD never writes; XREAD
//! with BLOCK answers a null array when nothing is there and the server blocks the client
//! (`forkless-server`, `blocking.rs`).

use forkless_rdb::stream::StreamId;

use crate::cmd::stream_groups;
use crate::command::{CommandSpec, READONLY, WRITE};
use crate::convert::parse_i64;
use crate::ctx::Ctx;
use crate::notify::Flags;
use crate::reply::Reply;
use crate::types::stream::{AddError, Entry, Stream, Trim};

/// The commands of this module.
#[rustfmt::skip]
pub(crate) const COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("xadd", -5, WRITE, 1, 1, 1, xadd),
    CommandSpec::new("xrange", -4, READONLY, 1, 1, 1, xrange),
    CommandSpec::new("xrevrange", -4, READONLY, 1, 1, 1, xrevrange),
    CommandSpec::new("xlen", 2, READONLY, 1, 1, 1, xlen),
    CommandSpec::new("xdel", -3, WRITE, 1, 1, 1, xdel),
    CommandSpec::new("xtrim", -4, WRITE, 1, 1, 1, xtrim),
    // The keys follow STREAMS: every argument is declared (over-declaring only locks more).
    CommandSpec::new("xread", -4, READONLY, 1, -1, 1, xread),
    CommandSpec::new("xreadgroup", -7, WRITE, 1, -1, 1, xreadgroup),
    CommandSpec::new("xsetid", -3, WRITE, 1, 1, 1, xsetid),
    CommandSpec::new("xinfo", -2, READONLY, 2, 2, 1, xinfo),
];

/// `ERR Invalid stream ID specified as stream command argument`.
pub(crate) fn invalid_id() -> Reply {
    Reply::err("ERR Invalid stream ID specified as stream command argument")
}

/// C's `strtoull(s, &end, 10)` with Redis's checks (the whole string consumed, no overflow):
/// leading white space, an optional sign (`-` negates modulo 2^64), at least one digit.
fn strtoull(s: &[u8]) -> Option<u64> {
    let mut i = 0;
    while i < s.len() && matches!(s[i], b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r') {
        i += 1;
    }
    let mut neg = false;
    if i < s.len() && (s[i] == b'-' || s[i] == b'+') {
        neg = s[i] == b'-';
        i += 1;
    }
    if i == s.len() {
        return None;
    }
    let mut v: u64 = 0;
    for &c in &s[i..] {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
    }
    Some(if neg { v.wrapping_neg() } else { v })
}

/// Redis's `string2ull`: `string2ll` when it applies (negative refused), else `strtoull`.
pub(crate) fn string2ull(s: &[u8]) -> Option<u64> {
    match parse_i64(s) {
        Some(v) if v < 0 => None,
        Some(v) => Some(v as u64),
        None => strtoull(s),
    }
}

/// `streamGenericParseIDOrReply`: `-`, `+` (refused when `strict`), `<ms>`, `<ms>-<seq>`, and
/// with `allow_star` `<ms>-*`. Returns the ID and whether the sequence was given.
pub(crate) fn parse_id(
    arg: &[u8],
    missing_seq: u64,
    strict: bool,
    allow_star: bool,
) -> Result<(StreamId, bool), Reply> {
    if arg.len() > 127 {
        return Err(invalid_id());
    }
    // The C code works on a NUL-terminated copy.
    let arg = &arg[..arg.iter().position(|&c| c == 0).unwrap_or(arg.len())];
    if strict && (arg == b"-" || arg == b"+") {
        return Err(invalid_id());
    }
    if arg == b"-" {
        return Ok((StreamId::MIN, true));
    }
    if arg == b"+" {
        return Ok((StreamId::MAX, true));
    }
    let (ms_part, seq_part) = match arg.iter().position(|&c| c == b'-') {
        Some(p) => (&arg[..p], Some(&arg[p + 1..])),
        None => (arg, None),
    };
    let ms = string2ull(ms_part).ok_or_else(invalid_id)?;
    let (seq, given) = match seq_part {
        Some(b"*") if allow_star => (0, false),
        Some(s) => (string2ull(s).ok_or_else(invalid_id)?, true),
        None => (missing_seq, true),
    };
    Ok((StreamId::new(ms, seq), given))
}

/// A strict ID (`streamParseStrictIDOrReply` without `<ms>-*`).
pub(crate) fn strict_id(arg: &[u8]) -> Result<StreamId, Reply> {
    parse_id(arg, 0, true, false).map(|r| r.0)
}

/// `streamParseIntervalIDOrReply`: a `(` prefix makes the bound exclusive (and strict).
fn interval_id(arg: &[u8], missing_seq: u64) -> Result<(StreamId, bool), Reply> {
    if arg.len() > 1 && arg[0] == b'(' {
        Ok((parse_id(&arg[1..], missing_seq, true, false)?.0, true))
    } else {
        Ok((parse_id(arg, missing_seq, false, false)?.0, false))
    }
}

/// The start of an interval (XRANGE, XPENDING, XAUTOCLAIM): `(id` is the ID after it.
pub(crate) fn range_start(arg: &[u8]) -> Result<StreamId, Reply> {
    match interval_id(arg, 0)? {
        (id, false) => Ok(id),
        (id, true) => id
            .incr()
            .ok_or_else(|| Reply::err("ERR invalid start ID for the interval")),
    }
}

/// The end of an interval: `(id` is the ID before it; a missing sequence is the largest.
pub(crate) fn range_end(arg: &[u8]) -> Result<StreamId, Reply> {
    match interval_id(arg, u64::MAX)? {
        (id, false) => Ok(id),
        (id, true) => id
            .decr()
            .ok_or_else(|| Reply::err("ERR invalid end ID for the interval")),
    }
}

/// The reply for one entry: `[id, [field, value, ...]]`.
pub(crate) fn entry_reply(e: &Entry) -> Reply {
    let mut fv = Vec::with_capacity(e.1.len() * 2);
    for (f, v) in &e.1 {
        fv.push(Reply::Bulk(f.clone()));
        fv.push(Reply::Bulk(v.clone()));
    }
    Reply::Array(vec![Reply::Bulk(e.0.to_text()), Reply::Array(fv)])
}

pub(crate) fn id_reply(id: StreamId) -> Reply {
    Reply::Bulk(id.to_text())
}

/// An option name, any case.
pub(crate) fn eq(a: &[u8], b: &str) -> bool {
    a.eq_ignore_ascii_case(b.as_bytes())
}

/// An argument in an error message.
pub(crate) fn lossy(b: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(b)
}

/// Parsed XADD / XTRIM options (`streamAddTrimArgs`).
struct AddTrim {
    trim: Option<Trim>,
    approx: bool,
    limit: u64,
    /// Index of the MAXLEN/MINID value (the `~`/`=` is just before it when given).
    arg_idx: usize,
    /// XADD: the ID argument's index (`argc` when none was found) and the ID if not `*`.
    idpos: usize,
    id: Option<(StreamId, bool)>,
    nomkstream: bool,
}

fn parse_add_trim(ctx: &Ctx<'_>, argv: &[&[u8]], xadd: bool) -> Result<AddTrim, Reply> {
    let mut a = AddTrim {
        trim: None,
        approx: false,
        limit: 0,
        arg_idx: 0,
        idpos: argv.len(),
        id: None,
        nomkstream: false,
    };
    let mut limit_given = false;
    let mut limit: i64 = 0;
    let mut i = 2;
    while i < argv.len() {
        let more = argv.len() - 1 - i;
        let opt = argv[i];
        if xadd && opt == b"*" {
            a.idpos = i;
            break;
        } else if (eq(opt, "maxlen") || eq(opt, "minid")) && more > 0 {
            if a.trim.is_some() {
                return Err(Reply::err(
                    "ERR syntax error, MAXLEN and MINID options at the same time are not compatible",
                ));
            }
            a.approx = false;
            let next = argv[i + 1];
            if more >= 2 && next == b"~" {
                a.approx = true;
                i += 1;
            } else if more >= 2 && next == b"=" {
                i += 1;
            }
            if eq(opt, "maxlen") {
                let n = parse_i64(argv[i + 1]).ok_or_else(Reply::not_integer)?;
                if n < 0 {
                    return Err(Reply::err("ERR The MAXLEN argument must be >= 0."));
                }
                a.trim = Some(Trim::MaxLen(n as u64));
            } else {
                a.trim = Some(Trim::MinId(strict_id(argv[i + 1])?));
            }
            i += 1;
            a.arg_idx = i;
        } else if eq(opt, "limit") && more > 0 {
            limit = parse_i64(argv[i + 1]).ok_or_else(Reply::not_integer)?;
            if limit < 0 {
                return Err(Reply::err("ERR The LIMIT argument must be >= 0."));
            }
            limit_given = true;
            i += 1;
        } else if xadd && eq(opt, "nomkstream") {
            a.nomkstream = true;
        } else if xadd {
            a.id = Some(parse_id(opt, 0, true, true)?);
            a.idpos = i;
            break;
        } else {
            return Err(Reply::syntax_error());
        }
        i += 1;
    }
    if limit != 0 && a.trim.is_none() {
        return Err(Reply::err(
            "ERR syntax error, LIMIT cannot be used without specifying a trimming strategy",
        ));
    }
    if !xadd && a.trim.is_none() {
        return Err(Reply::err(
            "ERR syntax error, XTRIM must be called with a trimming strategy",
        ));
    }
    if ctx.is_loading() {
        a.limit = 0;
    } else if limit_given {
        if !a.approx {
            return Err(Reply::err(
                "ERR syntax error, LIMIT cannot be used without the special ~ option",
            ));
        }
        a.limit = limit as u64;
    } else if a.approx {
        // At most 100 nodes' worth of work, capped on both sides (Redis's bounds).
        let l = 100i64.saturating_mul(ctx.stream_node_limits().1);
        a.limit = if l <= 0 { 10_000 } else { l.min(1_000_000) } as u64;
    }
    Ok(a)
}

/// Rewrite an approximate trim into the exact result (`streamRewriteApproxSpecifier`,
/// `streamRewriteTrimArgument`).
fn rewrite_trim(argv: &mut [Vec<u8>], a: &AddTrim, s: &Stream) {
    if !a.approx {
        return;
    }
    argv[a.arg_idx - 1] = b"=".to_vec();
    argv[a.arg_idx] = match a.trim {
        Some(Trim::MaxLen(_)) => s.len().to_string().into_bytes(),
        _ => s
            .nodes()
            .next()
            .and_then(|n| n.entries().first())
            .map_or(StreamId::MAX, |e| e.id)
            .to_text(),
    };
}

fn owned(argv: &[&[u8]]) -> Vec<Vec<u8>> {
    argv.iter().map(|a| a.to_vec()).collect()
}

fn propagate_owned(ctx: &mut Ctx<'_>, argv: &[Vec<u8>]) {
    let v: Vec<&[u8]> = argv.iter().map(Vec::as_slice).collect();
    ctx.propagate(&v);
}

fn xadd(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> Reply {
    let a = match parse_add_trim(ctx, argv, true) {
        Ok(a) => a,
        Err(r) => return r,
    };
    let field_pos = a.idpos + 1;
    let nfv = argv.len() as i64 - field_pos as i64;
    if nfv < 2 || nfv % 2 == 1 {
        return Reply::err("ERR wrong number of arguments for 'xadd' command");
    }
    if let Some((id, true)) = a.id {
        if id == StreamId::MIN {
            return Reply::err("ERR The ID specified in XADD must be greater than 0-0");
        }
    }
    let key = argv[1];
    match ctx.get_stream(key) {
        Err(r) => return r,
        Ok(Some(_)) => {}
        Ok(None) => {
            if a.nomkstream {
                return Reply::Nil;
            }
            ctx.insert(key, crate::Value::Stream(Box::default()));
        }
    }
    let now = ctx.now_ms().max(0) as u64;
    let (mb, me) = ctx.stream_node_limits();
    let limits = (mb as usize, me as u64);
    let Ok(Some(s)) = ctx.get_stream_mut(key) else {
        return Reply::Nil;
    };
    if s.last_id == StreamId::MAX {
        return Reply::err(
            "ERR The stream has exhausted the last possible ID, unable to add more items",
        );
    }
    let id = match a.id {
        Some((id, true)) => Some(id),
        Some((id, false)) => {
            if s.last_id.ms == id.ms {
                s.last_id.incr().filter(|n| n.ms == id.ms)
            } else {
                Some(id)
            }
        }
        None => s.next_id(now),
    };
    let mut fields = Vec::with_capacity(nfv as usize / 2);
    let mut values = Vec::with_capacity(nfv as usize / 2);
    for p in argv[field_pos..].chunks(2) {
        fields.push(p[0].to_vec());
        values.push(p[1].to_vec());
    }
    let id =
        match id.map(|id| s.append_with(id, fields, values, limits)) {
            Some(Ok(id)) => id,
            Some(Err(AddError::TooLarge)) => {
                return Reply::err("ERR Elements are too large to be stored")
            }
            _ => return Reply::err(
                "ERR The ID specified in XADD is equal or smaller than the target stream top item",
            ),
        };
    let mut prop = owned(argv);
    let mut trimmed = 0;
    if let Some(t) = a.trim {
        trimmed = s.trim(t, a.approx, a.limit);
        rewrite_trim(&mut prop, &a, s);
    }
    if !matches!(a.id, Some((_, true))) {
        prop[a.idpos] = id.to_text();
    }
    ctx.event(Flags::STREAM, "xadd", key);
    if trimmed > 0 {
        ctx.event(Flags::STREAM, "xtrim", key);
    }
    propagate_owned(ctx, &prop);
    id_reply(id)
}

fn range_generic(ctx: &mut Ctx<'_>, argv: &[&[u8]], rev: bool) -> Reply {
    let (sa, ea) = if rev {
        (argv[3], argv[2])
    } else {
        (argv[2], argv[3])
    };
    let start = match range_start(sa) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let end = match range_end(ea) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let mut count: i64 = -1;
    let mut j = 4;
    while j < argv.len() {
        if eq(argv[j], "count") && j + 1 < argv.len() {
            count = match parse_i64(argv[j + 1]) {
                Some(c) => c.max(0),
                None => return Reply::not_integer(),
            };
            j += 2;
        } else {
            return Reply::syntax_error();
        }
    }
    let s = match ctx.get_stream(argv[1]) {
        Err(r) => return r,
        Ok(None) => return Reply::Array(Vec::new()),
        Ok(Some(s)) => s,
    };
    if count == 0 {
        return Reply::NilArray;
    }
    let count = (count > 0).then_some(count as usize);
    Reply::Array(
        s.range(start, end, rev, count)
            .iter()
            .map(entry_reply)
            .collect(),
    )
}

fn xrange(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> Reply {
    range_generic(ctx, argv, false)
}

fn xrevrange(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> Reply {
    range_generic(ctx, argv, true)
}

fn xlen(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> Reply {
    match ctx.get_stream(argv[1]) {
        Err(r) => r,
        Ok(None) => Reply::Integer(0),
        Ok(Some(s)) => Reply::Integer(s.len() as i64),
    }
}

fn xdel(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> Reply {
    match ctx.get_stream(argv[1]) {
        Err(r) => return r,
        Ok(None) => return Reply::Integer(0),
        Ok(Some(_)) => {}
    }
    let mut ids = Vec::with_capacity(argv.len() - 2);
    for a in &argv[2..] {
        match strict_id(a) {
            Ok(id) => ids.push(id),
            Err(r) => return r,
        }
    }
    let Ok(Some(s)) = ctx.get_stream_mut(argv[1]) else {
        return Reply::Integer(0);
    };
    let first = s.first_id;
    let mut deleted = 0;
    let mut max_deleted = StreamId::MIN;
    let mut any_first = false;
    for id in ids {
        if s.delete(id) {
            any_first |= id == first;
            max_deleted = max_deleted.max(id);
            deleted += 1;
        }
    }
    if deleted > 0 {
        s.after_deletes(max_deleted, any_first);
        ctx.event(Flags::STREAM, "xdel", argv[1]);
        ctx.propagate(argv);
    }
    Reply::Integer(deleted)
}

fn xtrim(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> Reply {
    let a = match parse_add_trim(ctx, argv, false) {
        Ok(a) => a,
        Err(r) => return r,
    };
    match ctx.get_stream(argv[1]) {
        Err(r) => return r,
        Ok(None) => return Reply::Integer(0),
        Ok(Some(_)) => {}
    }
    let Ok(Some(s)) = ctx.get_stream_mut(argv[1]) else {
        return Reply::Integer(0);
    };
    let Some(t) = a.trim else {
        return Reply::Integer(0);
    };
    let deleted = s.trim(t, a.approx, a.limit);
    if deleted > 0 {
        let mut prop = owned(argv);
        rewrite_trim(&mut prop, &a, s);
        ctx.event(Flags::STREAM, "xtrim", argv[1]);
        propagate_owned(ctx, &prop);
    }
    Reply::Integer(deleted as i64)
}

/// Parsed XREAD / XREADGROUP arguments.
pub(crate) struct ReadArgs<'a> {
    /// BLOCK timeout in ms, if given.
    pub block: Option<i64>,
    /// COUNT (0: no limit).
    pub count: usize,
    /// Index of the first key.
    pub streams_arg: usize,
    /// Number of streams.
    pub nstreams: usize,
    /// GROUP name and consumer.
    pub group: Option<(&'a [u8], &'a [u8])>,
    /// NOACK.
    pub noack: bool,
}

/// Parse XREAD / XREADGROUP options up to STREAMS (`xreadCommand`).
/// `from_script`: BLOCK is refused from scripts, as Redis 7.0 does while parsing it.
pub(crate) fn parse_read<'a>(
    argv: &[&'a [u8]],
    group_cmd: bool,
    from_script: bool,
) -> Result<ReadArgs<'a>, Reply> {
    let mut r = ReadArgs {
        block: None,
        count: 0,
        streams_arg: 0,
        nstreams: 0,
        group: None,
        noack: false,
    };
    let mut i = 1;
    while i < argv.len() {
        let more = argv.len() - i - 1;
        let o = argv[i];
        if eq(o, "block") && more > 0 {
            if from_script {
                return Err(Reply::err(format!(
                    "ERR {} command is not allowed with BLOCK option from scripts",
                    String::from_utf8_lossy(argv[0])
                )));
            }
            i += 1;
            let t = parse_i64(argv[i])
                .ok_or_else(|| Reply::err("ERR timeout is not an integer or out of range"))?;
            if t < 0 {
                return Err(Reply::err("ERR timeout is negative"));
            }
            r.block = Some(t);
        } else if eq(o, "count") && more > 0 {
            i += 1;
            let c = parse_i64(argv[i]).ok_or_else(Reply::not_integer)?;
            r.count = c.max(0) as usize;
        } else if eq(o, "streams") && more > 0 {
            r.streams_arg = i + 1;
            let n = argv.len() - r.streams_arg;
            if !n.is_multiple_of(2) {
                return Err(Reply::err(
                    "ERR Unbalanced XREAD list of streams: for each stream key an ID or '$' must be specified.",
                ));
            }
            r.nstreams = n / 2;
            break;
        } else if eq(o, "group") && more >= 2 {
            if !group_cmd {
                return Err(Reply::err(
                    "ERR The GROUP option is only supported by XREADGROUP. You called XREAD instead.",
                ));
            }
            r.group = Some((argv[i + 1], argv[i + 2]));
            i += 2;
        } else if eq(o, "noack") {
            if !group_cmd {
                return Err(Reply::err(
                    "ERR The NOACK option is only supported by XREADGROUP. You called XREAD instead.",
                ));
            }
            r.noack = true;
        } else {
            return Err(Reply::syntax_error());
        }
        i += 1;
    }
    if r.streams_arg == 0 {
        return Err(Reply::syntax_error());
    }
    if group_cmd && r.group.is_none() {
        return Err(Reply::err("ERR Missing GROUP option for XREADGROUP"));
    }
    Ok(r)
}

fn xread(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> Reply {
    read_generic(ctx, argv, false)
}

fn xreadgroup(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> Reply {
    read_generic(ctx, argv, true)
}

fn read_generic(ctx: &mut Ctx<'_>, argv: &[&[u8]], group_cmd: bool) -> Reply {
    let r = match parse_read(argv, group_cmd, ctx.called_by_script()) {
        Ok(r) => r,
        Err(e) => return e,
    };
    let keys = &argv[r.streams_arg..r.streams_arg + r.nstreams];
    let id_args = &argv[r.streams_arg + r.nstreams..];
    let mut ids = Vec::with_capacity(r.nstreams);
    for (key, arg) in keys.iter().zip(id_args.iter()) {
        let s = match ctx.get_stream(key) {
            Err(e) => return e,
            Ok(s) => s,
        };
        if let Some((g, _)) = r.group {
            if s.is_none_or(|s| !s.groups.contains_key(g)) {
                return Reply::err(format!(
                    "NOGROUP No such key '{}' or consumer group '{}' in XREADGROUP with GROUP option",
                    String::from_utf8_lossy(key),
                    String::from_utf8_lossy(g)
                ));
            }
        }
        if *arg == b"$" {
            if group_cmd {
                return Reply::err("ERR The $ ID is meaningless in the context of XREADGROUP: you want to read the history of this consumer by specifying a proper ID, or use the > ID to get new messages. The $ ID would just return an empty result set.");
            }
            ids.push(s.map_or(StreamId::MIN, |s| s.last_id));
            continue;
        }
        if *arg == b">" {
            if !group_cmd {
                return Reply::err("ERR The > ID can be specified only when calling XREADGROUP using the GROUP <group> <consumer> option.");
            }
            ids.push(StreamId::MAX);
            continue;
        }
        match strict_id(arg) {
            Ok(id) => ids.push(id),
            Err(e) => return e,
        }
    }
    let mut out = Vec::new();
    for (i, key) in keys.iter().enumerate() {
        let gt = ids[i];
        let entries = if let Some((g, c)) = r.group {
            match stream_groups::read_group(ctx, key, g, c, gt, r.count, r.noack) {
                Some(e) => e,
                None => continue,
            }
        } else {
            let Ok(Some(s)) = ctx.get_stream(key) else {
                continue;
            };
            if s.is_empty() || s.last_entry_id().is_none_or(|m| m <= gt) {
                continue;
            }
            let Some(start) = gt.incr() else {
                continue;
            };
            let count = (r.count > 0).then_some(r.count);
            s.range(start, StreamId::MAX, false, count)
                .iter()
                .map(entry_reply)
                .collect()
        };
        out.push(Reply::Array(vec![
            Reply::Bulk(key.to_vec()),
            Reply::Array(entries),
        ]));
    }
    if out.is_empty() {
        Reply::NilArray
    } else {
        Reply::Array(out)
    }
}

fn xsetid(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> Reply {
    let id = match strict_id(argv[2]) {
        Ok(id) => id,
        Err(r) => return r,
    };
    let mut entries_added: i64 = -1;
    let mut max_xdel = StreamId::MIN;
    let mut i = 3;
    while i < argv.len() {
        let more = argv.len() - 1 - i;
        let opt = argv[i];
        if eq(opt, "entriesadded") && more > 0 {
            match parse_i64(argv[i + 1]) {
                None => return Reply::not_integer(),
                Some(n) if n < 0 => return Reply::err("ERR entries_added must be positive"),
                Some(n) => entries_added = n,
            }
            i += 2;
        } else if eq(opt, "maxdeletedid") && more > 0 {
            match strict_id(argv[i + 1]) {
                Err(r) => return r,
                Ok(m) if id < m => return Reply::err(
                    "ERR The ID specified in XSETID is smaller than the provided max_deleted_entry_id",
                ),
                Ok(m) => max_xdel = m,
            }
            i += 2;
        } else {
            return Reply::syntax_error();
        }
    }
    match ctx.get_stream(argv[1]) {
        Err(r) => return r,
        Ok(None) => return Reply::no_such_key(),
        Ok(Some(s)) => {
            if !s.is_empty() {
                if s.last_entry_id().is_some_and(|m| id < m) {
                    return Reply::err(
                        "ERR The ID specified in XSETID is smaller than the target stream top item",
                    );
                }
                if entries_added != -1 && s.len() > entries_added as u64 {
                    return Reply::err("ERR The entries_added specified in XSETID is smaller than the target stream length");
                }
            }
        }
    }
    let Ok(Some(s)) = ctx.get_stream_mut(argv[1]) else {
        return Reply::no_such_key();
    };
    s.last_id = id;
    if entries_added != -1 {
        s.entries_added = entries_added as u64;
    }
    if max_xdel != StreamId::MIN {
        s.max_deleted_id = max_xdel;
    }
    ctx.event(Flags::STREAM, "xsetid", argv[1]);
    ctx.propagate(argv);
    Reply::ok()
}

/// The error of an unknown subcommand of a container command (Redis 7.0 `processCommand`).
pub(crate) fn unknown_subcommand(argv: &[&[u8]], cmd: &str) -> Reply {
    let sub: String = String::from_utf8_lossy(argv[1]).chars().take(128).collect();
    Reply::err(format!(
        "ERR unknown subcommand '{sub}'. Try {} HELP.",
        cmd.to_ascii_uppercase()
    ))
}

/// `addReplySubcommandSyntaxError`.
pub(crate) fn subcommand_syntax_error(argv: &[&[u8]], cmd: &str) -> Reply {
    let sub: String = String::from_utf8_lossy(argv[1]).chars().take(128).collect();
    Reply::err(format!(
        "ERR unknown subcommand or wrong number of arguments for '{sub}'. Try {} HELP.",
        cmd.to_ascii_uppercase()
    ))
}

/// Check a container command's subcommand against its arity table; `Err` is the reply.
pub(crate) fn subcommand(
    argv: &[&[u8]],
    cmd: &str,
    table: &[(&'static str, i32)],
) -> Result<&'static str, Reply> {
    let sub = String::from_utf8_lossy(argv[1]).to_ascii_lowercase();
    let Some(&(name, arity)) = table.iter().find(|(n, _)| *n == sub) else {
        return Err(unknown_subcommand(argv, cmd));
    };
    let n = argv.len() as i32;
    if (arity > 0 && n != arity) || (arity < 0 && n < -arity) {
        return Err(Reply::err(format!(
            "ERR wrong number of arguments for '{cmd}|{name}' command"
        )));
    }
    Ok(name)
}

/// `addReplyHelp`.
pub(crate) fn help_reply(cmd: &str, lines: &[&str]) -> Reply {
    let mut out = vec![Reply::Status(
        format!(
            "{} <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            cmd.to_ascii_uppercase()
        )
        .into(),
    )];
    out.extend(lines.iter().map(|l| Reply::Status(l.to_string().into())));
    out.push(Reply::Status("HELP".into()));
    out.push(Reply::Status("    Prints this help.".into()));
    Reply::Array(out)
}

fn bulk(s: &str) -> Reply {
    Reply::Bulk(s.as_bytes().to_vec())
}

/// The number of nodes of the radix tree Redis would hold for these 16-byte node keys
/// (`rax->numnodes`, compressed chains counted once, every key ending in its own node), as a
/// tree built by insertions lays them out.
fn rax_nodes(keys: &[[u8; 16]]) -> u64 {
    fn count(keys: &[[u8; 16]], depth: usize) -> u64 {
        if depth == 16 || keys.is_empty() {
            return 1;
        }
        // Longest common run from `depth`.
        let first = &keys[0];
        let last = &keys[keys.len() - 1];
        let mut d = depth;
        while d < 16 && first[d] == last[d] {
            d += 1;
        }
        if d > depth {
            // A compressed node for the run, then what follows it.
            return 1 + count(keys, d);
        }
        // A branching node, one child per distinct byte.
        let mut total = 1;
        let mut i = 0;
        while i < keys.len() {
            let b = keys[i][depth];
            let j = i + keys[i..].partition_point(|k| k[depth] == b);
            total += count(&keys[i..j], depth + 1);
            i = j;
        }
        total
    }
    if keys.is_empty() {
        return 1;
    }
    count(keys, 0)
}

const XINFO_SUBS: &[(&str, i32)] = &[("consumers", 4), ("groups", 3), ("stream", -3), ("help", 2)];

fn xinfo(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> Reply {
    let sub = match subcommand(argv, "xinfo", XINFO_SUBS) {
        Ok(s) => s,
        Err(r) => return r,
    };
    if sub == "help" {
        return help_reply(
            "xinfo",
            &[
                "CONSUMERS <key> <groupname>",
                "    Show consumers of <groupname>.",
                "GROUPS <key>",
                "    Show the stream consumer groups.",
                "STREAM <key> [FULL [COUNT <count>]",
                "    Show information about the stream.",
            ],
        );
    }
    let now = ctx.now_ms();
    let key = argv[2];
    let s = match ctx.get_stream(key) {
        Err(r) => return r,
        Ok(None) => return Reply::no_such_key(),
        Ok(Some(s)) => s,
    };
    match sub {
        "consumers" => {
            let Some(g) = s.groups.get(argv[3]) else {
                return Reply::err(format!(
                    "NOGROUP No such consumer group '{}' for key name '{}'",
                    String::from_utf8_lossy(argv[3]),
                    String::from_utf8_lossy(key)
                ));
            };
            Reply::Array(
                g.consumers
                    .iter()
                    .map(|(name, c)| {
                        Reply::Array(vec![
                            bulk("name"),
                            Reply::Bulk(name.clone()),
                            bulk("pending"),
                            Reply::Integer(c.pel.len() as i64),
                            bulk("idle"),
                            Reply::Integer((now - c.seen_time).max(0)),
                        ])
                    })
                    .collect(),
            )
        }
        "groups" => Reply::Array(
            s.groups
                .iter()
                .map(|(name, g)| {
                    Reply::Array(vec![
                        bulk("name"),
                        Reply::Bulk(name.clone()),
                        bulk("consumers"),
                        Reply::Integer(g.consumers.len() as i64),
                        bulk("pending"),
                        Reply::Integer(g.pel.len() as i64),
                        bulk("last-delivered-id"),
                        id_reply(g.last_id),
                        bulk("entries-read"),
                        entries_read_reply(g.entries_read),
                        bulk("lag"),
                        s.group_lag(g).map_or(Reply::Nil, Reply::Integer),
                    ])
                })
                .collect(),
        ),
        _ => xinfo_stream(s, argv),
    }
}

fn entries_read_reply(n: i64) -> Reply {
    if n == -1 {
        Reply::Nil
    } else {
        Reply::Integer(n)
    }
}

fn xinfo_stream(s: &Stream, argv: &[&[u8]]) -> Reply {
    let opts = &argv[3..];
    let mut full = false;
    let mut count: i64 = 10;
    if !opts.is_empty() {
        if (opts.len() != 1 && opts.len() != 3) || !eq(opts[0], "full") {
            return subcommand_syntax_error(argv, "xinfo");
        }
        full = true;
        if opts.len() == 3 {
            if !eq(opts[1], "count") {
                return subcommand_syntax_error(argv, "xinfo");
            }
            count = match parse_i64(opts[2]) {
                Some(c) if c < 0 => 10,
                Some(c) => c,
                None => return Reply::not_integer(),
            };
        }
    }
    let keys: Vec<[u8; 16]> = s.nodes().map(|n| n.master().to_be_bytes()).collect();
    let mut out = vec![
        bulk("length"),
        Reply::Integer(s.len() as i64),
        bulk("radix-tree-keys"),
        Reply::Integer(keys.len() as i64),
        bulk("radix-tree-nodes"),
        Reply::Integer(rax_nodes(&keys) as i64),
        bulk("last-generated-id"),
        id_reply(s.last_id),
        bulk("max-deleted-entry-id"),
        id_reply(s.max_deleted_id),
        bulk("entries-added"),
        Reply::Integer(s.entries_added as i64),
        bulk("recorded-first-entry-id"),
        id_reply(s.first_id),
    ];
    if !full {
        out.push(bulk("groups"));
        out.push(Reply::Integer(s.groups.len() as i64));
        out.push(bulk("first-entry"));
        out.push(
            s.range(StreamId::MIN, StreamId::MAX, false, Some(1))
                .first()
                .map_or(Reply::Nil, entry_reply),
        );
        out.push(bulk("last-entry"));
        out.push(
            s.range(StreamId::MIN, StreamId::MAX, true, Some(1))
                .first()
                .map_or(Reply::Nil, entry_reply),
        );
        return Reply::Array(out);
    }
    let lim = |n: usize| count == 0 || (n as i64) < count;
    let c = (count > 0).then_some(count as usize);
    out.push(bulk("entries"));
    out.push(Reply::Array(
        s.range(StreamId::MIN, StreamId::MAX, false, c)
            .iter()
            .map(entry_reply)
            .collect(),
    ));
    out.push(bulk("groups"));
    let groups = s
        .groups
        .iter()
        .map(|(name, g)| {
            let mut pel = Vec::new();
            for (id, n) in &g.pel {
                if !lim(pel.len()) {
                    break;
                }
                pel.push(Reply::Array(vec![
                    id_reply(*id),
                    Reply::Bulk(n.consumer.clone()),
                    Reply::Integer(n.delivery_time),
                    Reply::Integer(n.delivery_count as i64),
                ]));
            }
            let consumers = g
                .consumers
                .iter()
                .map(|(cn, c)| {
                    let mut cp = Vec::new();
                    for id in &c.pel {
                        if !lim(cp.len()) {
                            break;
                        }
                        let (t, k) = g
                            .pel
                            .get(id)
                            .map_or((0, 0), |n| (n.delivery_time, n.delivery_count));
                        cp.push(Reply::Array(vec![
                            id_reply(*id),
                            Reply::Integer(t),
                            Reply::Integer(k as i64),
                        ]));
                    }
                    Reply::Array(vec![
                        bulk("name"),
                        Reply::Bulk(cn.clone()),
                        bulk("seen-time"),
                        Reply::Integer(c.seen_time),
                        bulk("pel-count"),
                        Reply::Integer(c.pel.len() as i64),
                        bulk("pending"),
                        Reply::Array(cp),
                    ])
                })
                .collect();
            Reply::Array(vec![
                bulk("name"),
                Reply::Bulk(name.clone()),
                bulk("last-delivered-id"),
                id_reply(g.last_id),
                bulk("entries-read"),
                entries_read_reply(g.entries_read),
                bulk("lag"),
                s.group_lag(g).map_or(Reply::Nil, Reply::Integer),
                bulk("pel-count"),
                Reply::Integer(g.pel.len() as i64),
                bulk("pending"),
                Reply::Array(pel),
                bulk("consumers"),
                Reply::Array(consumers),
            ])
        })
        .collect();
    out.push(Reply::Array(groups));
    Reply::Array(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_parse_like_redis() {
        assert_eq!(
            parse_id(b"5", 7, true, false).unwrap(),
            (StreamId::new(5, 7), true)
        );
        assert_eq!(
            parse_id(b"5-*", 0, true, true).unwrap(),
            (StreamId::new(5, 0), false)
        );
        assert!(parse_id(b"5-*", 0, true, false).is_err());
        assert!(parse_id(b"-", 0, true, false).is_err());
        assert_eq!(parse_id(b"+", 0, false, false).unwrap().0, StreamId::MAX);
        assert_eq!(
            parse_id(b"007-+3", 0, true, false).unwrap().0,
            StreamId::new(7, 3)
        );
        assert!(parse_id(b"1--5", 0, true, false).is_err());
        assert_eq!(
            parse_id(b"1--05", 0, true, false).unwrap().0,
            StreamId::new(1, 5u64.wrapping_neg())
        );
        assert!(parse_id(b"18446744073709551616", 0, true, false).is_err());
        assert!(parse_id(b"", 0, true, false).is_err());
    }

    #[test]
    fn rax_node_counts() {
        let k = |ms: u64| StreamId::new(ms, 0).to_be_bytes();
        assert_eq!(rax_nodes(&[]), 1);
        assert_eq!(rax_nodes(&[k(1)]), 2);
        // Common 7-byte run, branch on byte 7, then two 8-byte runs and their leaves.
        assert_eq!(rax_nodes(&[k(1), k(2)]), 6);
    }
}
