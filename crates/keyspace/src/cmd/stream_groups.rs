//! Consumer-group commands: XGROUP CREATE|SETID|DESTROY|CREATECONSUMER|DELCONSUMER, XACK,
//! XPENDING, XCLAIM, XAUTOCLAIM, and the group side of XREADGROUP (Redis 7.0.15 `t_stream.c`).
//!
//! Propagation as Redis's: XGROUP, XACK verbatim when they changed something; XREADGROUP,
//! XCLAIM and XAUTOCLAIM never verbatim but as one idempotent
//! `XCLAIM key group consumer 0 id TIME ms RETRYCOUNT n FORCE JUSTID LASTID id` per entry whose
//! pending state changed (`streamPropagateXCLAIM`), `XGROUP SETID key group id ENTRIESREAD n`
//! when only the group's last ID moved (NOACK reads, XCLAIM LASTID), and XREADGROUP NOACK's new
//! consumer as `XGROUP CREATECONSUMER`. Several propagated commands of one call are one
//! MULTI/EXEC group (the context wraps them).

use forkless_rdb::stream::StreamId;

use crate::cmd::streams::{
    entry_reply, eq, help_reply, id_reply, lossy, parse_id, range_end, range_start, strict_id,
    subcommand, subcommand_syntax_error,
};
use crate::command::{CommandSpec, READONLY, WRITE};
use crate::convert::parse_i64;
use crate::ctx::Ctx;
use crate::notify::Flags;
use crate::reply::Reply;
use crate::types::stream::{Consumer, Group, Nack, Stream};

/// The commands of this module.
#[rustfmt::skip]
pub(crate) const COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("xgroup", -2, WRITE, 2, 2, 1, xgroup),
    CommandSpec::new("xack", -4, WRITE, 1, 1, 1, xack),
    CommandSpec::new("xpending", -3, READONLY, 1, 1, 1, xpending),
    CommandSpec::new("xclaim", -6, WRITE, 1, 1, 1, xclaim),
    CommandSpec::new("xautoclaim", -6, WRITE, 1, 1, 1, xautoclaim),
];

fn nogroup(key: &[u8], group: &[u8]) -> Reply {
    Reply::err(format!(
        "NOGROUP No such key '{}' or consumer group '{}'",
        lossy(key),
        lossy(group)
    ))
}

/// `streamLookupConsumer(SLC_DEFAULT)` or `streamCreateConsumer`: the consumer, seen now.
/// Returns whether it was created.
fn touch_consumer(g: &mut Group, name: &[u8], now: i64) -> bool {
    match g.consumers.get_mut(name) {
        Some(c) => {
            c.seen_time = now;
            false
        }
        None => {
            g.consumers.insert(
                name.to_vec(),
                Consumer {
                    seen_time: now,
                    pel: Default::default(),
                },
            );
            true
        }
    }
}

/// Move pending entry `id` to `consumer` (removing it from its previous owner's PEL).
fn assign(g: &mut Group, id: StreamId, consumer: &[u8]) {
    let Some(n) = g.pel.get_mut(&id) else {
        return;
    };
    if n.consumer != consumer {
        if let Some(prev) = g.consumers.get_mut(&n.consumer) {
            prev.pel.remove(&id);
        }
        n.consumer = consumer.to_vec();
    }
    if let Some(c) = g.consumers.get_mut(consumer) {
        c.pel.insert(id);
    }
}

/// Drop pending entry `id` from the group and its owner.
fn unpend(g: &mut Group, id: StreamId) -> Option<Nack> {
    let n = g.pel.remove(&id)?;
    if let Some(c) = g.consumers.get_mut(&n.consumer) {
        c.pel.remove(&id);
    }
    Some(n)
}

/// `streamPropagateXCLAIM`.
fn xclaim_argv(key: &[u8], group: &[u8], g: &Group, id_arg: &[u8], n: &Nack) -> Vec<Vec<u8>> {
    vec![
        b"XCLAIM".to_vec(),
        key.to_vec(),
        group.to_vec(),
        n.consumer.clone(),
        b"0".to_vec(),
        id_arg.to_vec(),
        b"TIME".to_vec(),
        n.delivery_time.to_string().into_bytes(),
        b"RETRYCOUNT".to_vec(),
        n.delivery_count.to_string().into_bytes(),
        b"FORCE".to_vec(),
        b"JUSTID".to_vec(),
        b"LASTID".to_vec(),
        g.last_id.to_text(),
    ]
}

/// `streamPropagateGroupID`.
fn setid_argv(key: &[u8], group: &[u8], g: &Group) -> Vec<Vec<u8>> {
    vec![
        b"XGROUP".to_vec(),
        b"SETID".to_vec(),
        key.to_vec(),
        group.to_vec(),
        g.last_id.to_text(),
        b"ENTRIESREAD".to_vec(),
        g.entries_read.to_string().into_bytes(),
    ]
}

fn propagate_all(ctx: &mut Ctx<'_>, cmds: Vec<Vec<Vec<u8>>>) {
    for c in cmds {
        let v: Vec<&[u8]> = c.iter().map(Vec::as_slice).collect();
        ctx.propagate(&v);
    }
}

/// The group part of XREADGROUP for one stream: `None` when it is not served now (nothing new
/// for `>`), else the entries replied (history or new ones) with the PEL, the consumer, the
/// group's last ID and entries-read updated and the changes propagated.
pub(crate) fn read_group(
    ctx: &mut Ctx<'_>,
    key: &[u8],
    group: &[u8],
    consumer: &[u8],
    gt: StreamId,
    count: usize,
    noack: bool,
) -> Option<Vec<Reply>> {
    let now = ctx.now_ms();
    let history = gt != StreamId::MAX;
    let mut gt = gt;
    {
        let s = ctx.get_stream(key).ok()??;
        let g = s.groups.get(group)?;
        if !history {
            if s.is_empty() {
                return None;
            }
            let maxid = s.last_entry_id()?;
            if maxid <= g.last_id {
                return None;
            }
            gt = g.last_id;
        }
    }
    let s = ctx.get_stream_mut(key).ok()??;
    let mut prop = Vec::new();
    let mut out = Vec::new();
    let created = {
        let g = s.group_mut(group)?;
        touch_consumer(g, consumer, now)
    };
    if created && noack {
        prop.push(vec![
            b"XGROUP".to_vec(),
            b"CREATECONSUMER".to_vec(),
            key.to_vec(),
            group.to_vec(),
            consumer.to_vec(),
        ]);
    }
    let start = gt.incr().unwrap_or(StreamId::MIN);
    if history {
        // `streamReplyWithRangeFromConsumerPEL`.
        let ids: Vec<StreamId> = {
            let g = s.groups.get(group)?;
            let c = g.consumers.get(consumer)?;
            c.pel
                .range(start..)
                .take(if count == 0 { usize::MAX } else { count })
                .copied()
                .collect()
        };
        for id in ids {
            match s.get(id) {
                Some(pairs) => {
                    out.push(entry_reply(&(id, pairs)));
                    if let Some(n) = s.group_mut(group).and_then(|g| g.pel.get_mut(&id)) {
                        n.delivery_time = now;
                        n.delivery_count += 1;
                    }
                }
                None => out.push(Reply::Array(vec![id_reply(id), Reply::NilArray])),
            }
        }
        if created {
            ctx.event(Flags::STREAM, "xgroup-createconsumer", key);
        }
        propagate_all(ctx, prop);
        return Some(out);
    }
    let cnt = (count > 0).then_some(count);
    let entries = s.range(start, StreamId::MAX, false, cnt);
    let mut moved = false;
    for e in &entries {
        let id = e.0;
        let tomb = s.range_has_tombstones(Some(id), None);
        let est = s.estimate_distance(id);
        let added = s.entries_added;
        let g = s.group_mut(group)?;
        if id > g.last_id {
            if g.entries_read != -1 && !tomb {
                g.entries_read += 1;
            } else if added != 0 {
                g.entries_read = est;
            }
            g.last_id = id;
            moved = true;
        }
        out.push(entry_reply(e));
        if !noack {
            match g.pel.get_mut(&id) {
                None => {
                    g.pel.insert(
                        id,
                        Nack {
                            delivery_time: now,
                            delivery_count: 1,
                            consumer: consumer.to_vec(),
                        },
                    );
                    if let Some(c) = g.consumers.get_mut(consumer) {
                        c.pel.insert(id);
                    }
                }
                Some(n) => {
                    n.delivery_time = now;
                    n.delivery_count = 1;
                    assign(g, id, consumer);
                }
            }
            if let Some(n) = g.pel.get(&id) {
                prop.push(xclaim_argv(key, group, g, &id.to_text(), n));
            }
        }
    }
    if noack && moved {
        if let Some(g) = s.groups.get(group) {
            prop.push(setid_argv(key, group, g));
        }
    }
    if created {
        ctx.event(Flags::STREAM, "xgroup-createconsumer", key);
    }
    propagate_all(ctx, prop);
    Some(out)
}

const XGROUP_SUBS: &[(&str, i32)] = &[
    ("create", -5),
    ("setid", -5),
    ("destroy", 4),
    ("createconsumer", 5),
    ("delconsumer", 5),
    ("help", 2),
];

fn xgroup(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> Reply {
    let sub = match subcommand(argv, "xgroup", XGROUP_SUBS) {
        Ok(s) => s,
        Err(r) => return r,
    };
    if sub == "help" {
        return help_reply(
            "xgroup",
            &[
                "CREATE <key> <groupname> <id|$> [option]",
                "    Create a new consumer group. Options are:",
                "    * MKSTREAM",
                "      Create the empty stream if it does not exist.",
                "    * ENTRIESREAD entries_read",
                "      Set the group's entries_read counter (internal use).",
                "CREATECONSUMER <key> <groupname> <consumer>",
                "    Create a new consumer in the specified group.",
                "DELCONSUMER <key> <groupname> <consumer>",
                "    Remove the specified consumer.",
                "DESTROY <key> <groupname>",
                "    Remove the specified group.",
                "SETID <key> <groupname> <id|$> [ENTRIESREAD entries_read]",
                "    Set the current group ID and entries_read counter.",
            ],
        );
    }
    let key = argv[2];
    let name = argv[3];
    let mut mkstream = false;
    let mut entries_read: i64 = -1;
    let mut i = 5;
    while i < argv.len() {
        if sub == "create" && eq(argv[i], "mkstream") {
            mkstream = true;
            i += 1;
        } else if (sub == "create" || sub == "setid")
            && eq(argv[i], "entriesread")
            && i + 1 < argv.len()
        {
            entries_read = match parse_i64(argv[i + 1]) {
                None => return Reply::not_integer(),
                Some(n) if n < 0 && n != -1 => {
                    return Reply::err("ERR value for ENTRIESREAD must be positive or -1")
                }
                Some(n) => n,
            };
            i += 2;
        } else {
            return subcommand_syntax_error(argv, "xgroup");
        }
    }
    let (exists, has_group, last_id) = match ctx.get_stream(key) {
        Err(r) => return r,
        Ok(None) => (false, false, StreamId::MIN),
        Ok(Some(s)) => (true, s.groups.contains_key(name), s.last_id),
    };
    if !mkstream {
        if !exists {
            return Reply::err("ERR The XGROUP subcommand requires the key to exist. Note that for CREATE you may want to use the MKSTREAM option to create an empty stream automatically.");
        }
        if !has_group && matches!(sub, "setid" | "createconsumer" | "delconsumer") {
            return Reply::err(format!(
                "NOGROUP No such consumer group '{}' for key name '{}'",
                lossy(name),
                lossy(key)
            ));
        }
    }
    let now = ctx.now_ms();
    match sub {
        "create" if argv.len() <= 8 => {
            let id = if argv[4] == b"$" {
                last_id
            } else {
                match strict_id(argv[4]) {
                    Ok(id) => id,
                    Err(r) => return r,
                }
            };
            if !exists {
                ctx.insert(key, crate::Value::Stream(Box::default()));
            }
            let Ok(Some(s)) = ctx.get_stream_mut(key) else {
                return Reply::Nil;
            };
            if s.create_group(name, id, entries_read) {
                ctx.event(Flags::STREAM, "xgroup-create", key);
                ctx.propagate(argv);
                Reply::ok()
            } else {
                Reply::err("BUSYGROUP Consumer Group name already exists")
            }
        }
        "setid" if argv.len() == 5 || argv.len() == 7 => {
            let id = if argv[4] == b"$" {
                last_id
            } else {
                match parse_id(argv[4], 0, false, false) {
                    Ok((id, _)) => id,
                    Err(r) => return r,
                }
            };
            let Ok(Some(s)) = ctx.get_stream_mut(key) else {
                return Reply::Nil;
            };
            if let Some(g) = s.group_mut(name) {
                g.last_id = id;
                g.entries_read = entries_read;
            }
            ctx.event(Flags::STREAM, "xgroup-setid", key);
            ctx.propagate(argv);
            Reply::ok()
        }
        "destroy" => {
            if !has_group {
                return Reply::Integer(0);
            }
            if let Ok(Some(s)) = ctx.get_stream_mut(key) {
                s.groups.remove(name);
            }
            ctx.event(Flags::STREAM, "xgroup-destroy", key);
            ctx.propagate(argv);
            Reply::Integer(1)
        }
        "createconsumer" => {
            let Ok(Some(s)) = ctx.get_stream_mut(key) else {
                return Reply::Integer(0);
            };
            let Some(g) = s.group_mut(name) else {
                return Reply::Integer(0);
            };
            if g.consumers.contains_key(argv[4]) {
                return Reply::Integer(0);
            }
            touch_consumer(g, argv[4], now);
            ctx.event(Flags::STREAM, "xgroup-createconsumer", key);
            ctx.propagate(argv);
            Reply::Integer(1)
        }
        "delconsumer" => {
            let has = matches!(ctx.get_stream(key), Ok(Some(s))
                if s.groups.get(name).is_some_and(|g| g.consumers.contains_key(argv[4])));
            if !has {
                return Reply::Integer(0);
            }
            let Ok(Some(s)) = ctx.get_stream_mut(key) else {
                return Reply::Integer(0);
            };
            let Some(g) = s.group_mut(name) else {
                return Reply::Integer(0);
            };
            let Some(c) = g.consumers.remove(argv[4]) else {
                return Reply::Integer(0);
            };
            for id in &c.pel {
                g.pel.remove(id);
            }
            ctx.event(Flags::STREAM, "xgroup-delconsumer", key);
            ctx.propagate(argv);
            Reply::Integer(c.pel.len() as i64)
        }
        _ => subcommand_syntax_error(argv, "xgroup"),
    }
}

fn group_of<'s>(s: &'s Stream, name: &[u8]) -> Option<&'s Group> {
    s.groups.get(name).map(|g| &**g)
}

fn xack(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> Reply {
    match ctx.get_stream(argv[1]) {
        Err(r) => return r,
        Ok(None) => return Reply::Integer(0),
        Ok(Some(s)) if group_of(s, argv[2]).is_none() => return Reply::Integer(0),
        Ok(Some(_)) => {}
    }
    let mut ids = Vec::with_capacity(argv.len() - 3);
    for a in &argv[3..] {
        match strict_id(a) {
            Ok(id) => ids.push(id),
            Err(r) => return r,
        }
    }
    let pending = match ctx.get_stream(argv[1]) {
        Ok(Some(s)) => group_of(s, argv[2]).map_or(0, |g| {
            ids.iter().filter(|id| g.pel.contains_key(id)).count()
        }),
        _ => 0,
    };
    if pending == 0 {
        return Reply::Integer(0);
    }
    let Ok(Some(s)) = ctx.get_stream_mut(argv[1]) else {
        return Reply::Integer(0);
    };
    let Some(g) = s.group_mut(argv[2]) else {
        return Reply::Integer(0);
    };
    let mut acked = 0;
    for id in ids {
        if unpend(g, id).is_some() {
            acked += 1;
        }
    }
    ctx.propagate(argv);
    Reply::Integer(acked)
}

fn xpending(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> Reply {
    let justinfo = argv.len() == 3;
    if argv.len() != 3 && (argv.len() < 6 || argv.len() > 9) {
        return Reply::syntax_error();
    }
    let mut start = StreamId::MIN;
    let mut end = StreamId::MAX;
    let mut count: i64 = 0;
    let mut minidle: i64 = 0;
    let mut consumer: Option<&[u8]> = None;
    if argv.len() >= 6 {
        let mut sidx = 3;
        if eq(argv[3], "idle") {
            minidle = match parse_i64(argv[4]) {
                Some(v) => v,
                None => return Reply::not_integer(),
            };
            if argv.len() < 8 {
                return Reply::syntax_error();
            }
            sidx += 2;
        }
        count = match parse_i64(argv[sidx + 2]) {
            Some(c) => c.max(0),
            None => return Reply::not_integer(),
        };
        start = match range_start(argv[sidx]) {
            Ok(v) => v,
            Err(r) => return r,
        };
        end = match range_end(argv[sidx + 1]) {
            Ok(v) => v,
            Err(r) => return r,
        };
        if sidx + 3 < argv.len() {
            consumer = Some(argv[sidx + 3]);
        }
    }
    let now = ctx.now_ms();
    let s = match ctx.get_stream(argv[1]) {
        Err(r) => return r,
        Ok(s) => s,
    };
    let Some(g) = s.and_then(|s| group_of(s, argv[2])) else {
        return nogroup(argv[1], argv[2]);
    };
    if justinfo {
        if g.pel.is_empty() {
            return Reply::Array(vec![
                Reply::Integer(0),
                Reply::Nil,
                Reply::Nil,
                Reply::NilArray,
            ]);
        }
        let first = g.pel.keys().next().copied().unwrap_or_default();
        let last = g.pel.keys().next_back().copied().unwrap_or_default();
        let consumers = g
            .consumers
            .iter()
            .filter(|(_, c)| !c.pel.is_empty())
            .map(|(n, c)| {
                Reply::Array(vec![
                    Reply::Bulk(n.clone()),
                    Reply::Bulk(c.pel.len().to_string().into_bytes()),
                ])
            })
            .collect();
        return Reply::Array(vec![
            Reply::Integer(g.pel.len() as i64),
            id_reply(first),
            id_reply(last),
            Reply::Array(consumers),
        ]);
    }
    let ids: Vec<StreamId> = match consumer {
        Some(cn) => match g.consumers.get(cn) {
            None => return Reply::Array(Vec::new()),
            Some(c) => c.pel.range(start..).copied().collect(),
        },
        None => g.pel.range(start..).map(|(id, _)| *id).collect(),
    };
    let mut out = Vec::new();
    for id in ids {
        if count == 0 || id > end {
            break;
        }
        let Some(n) = g.pel.get(&id) else {
            continue;
        };
        if minidle != 0 && now - n.delivery_time < minidle {
            continue;
        }
        count -= 1;
        out.push(Reply::Array(vec![
            id_reply(id),
            Reply::Bulk(n.consumer.clone()),
            Reply::Integer((now - n.delivery_time).max(0)),
            Reply::Integer(n.delivery_count as i64),
        ]));
    }
    Reply::Array(out)
}

fn xclaim(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> Reply {
    let (key, group, name) = (argv[1], argv[2], argv[3]);
    match ctx.get_stream(key) {
        Err(r) => return r,
        Ok(s) if s.and_then(|s| group_of(s, group)).is_none() => return nogroup(key, group),
        Ok(_) => {}
    }
    let minidle = match parse_i64(argv[4]) {
        Some(v) => v.max(0),
        None => return Reply::err("ERR Invalid min-idle-time argument for XCLAIM"),
    };
    let mut j = 5;
    let mut ids = Vec::new();
    while j < argv.len() {
        match strict_id(argv[j]) {
            Ok(id) => ids.push((id, argv[j])),
            Err(_) => break,
        }
        j += 1;
    }
    let now = ctx.now_ms();
    let mut force = false;
    let mut justid = false;
    let mut deliverytime: i64 = -1;
    let mut retrycount: i64 = -1;
    let mut last_id = StreamId::MIN;
    while j < argv.len() {
        let more = argv.len() - 1 - j;
        let opt = argv[j];
        if eq(opt, "force") {
            force = true;
        } else if eq(opt, "justid") {
            justid = true;
        } else if eq(opt, "idle") && more > 0 {
            j += 1;
            match parse_i64(argv[j]) {
                Some(v) => deliverytime = now.wrapping_sub(v),
                None => return Reply::err("ERR Invalid IDLE option argument for XCLAIM"),
            }
        } else if eq(opt, "time") && more > 0 {
            j += 1;
            match parse_i64(argv[j]) {
                Some(v) => deliverytime = v,
                None => return Reply::err("ERR Invalid TIME option argument for XCLAIM"),
            }
        } else if eq(opt, "retrycount") && more > 0 {
            j += 1;
            match parse_i64(argv[j]) {
                Some(v) => retrycount = v,
                None => return Reply::err("ERR Invalid RETRYCOUNT option argument for XCLAIM"),
            }
        } else if eq(opt, "lastid") && more > 0 {
            j += 1;
            match strict_id(argv[j]) {
                Ok(id) => last_id = id,
                Err(r) => return r,
            }
        } else {
            return Reply::err(format!("ERR Unrecognized XCLAIM option '{}'", lossy(opt)));
        }
        j += 1;
    }
    if deliverytime == -1 || deliverytime < 0 || deliverytime > now {
        deliverytime = now;
    }
    let Ok(Some(s)) = ctx.get_stream_mut(key) else {
        return nogroup(key, group);
    };
    let mut prop = Vec::new();
    let mut out = Vec::new();
    let mut propagate_last_id = false;
    {
        let Some(g) = s.group_mut(group) else {
            return nogroup(key, group);
        };
        if last_id > g.last_id {
            g.last_id = last_id;
            propagate_last_id = true;
        }
    }
    let mut have_consumer = false;
    let mut created_consumer = false;
    for (id, arg) in ids {
        let entry = s.get(id);
        let Some(g) = s.group_mut(group) else {
            break;
        };
        let Some(pairs) = entry else {
            if let Some(n) = g.pel.get(&id).cloned() {
                prop.push(xclaim_argv(key, group, g, arg, &n));
                propagate_last_id = false;
                unpend(g, id);
            }
            continue;
        };
        let mut fresh = false;
        if force && !g.pel.contains_key(&id) {
            g.pel.insert(
                id,
                Nack {
                    delivery_time: now,
                    delivery_count: 1,
                    consumer: Vec::new(),
                },
            );
            fresh = true;
        }
        let Some(n) = g.pel.get(&id) else {
            continue;
        };
        if !fresh && minidle != 0 && now - n.delivery_time < minidle {
            continue;
        }
        if !have_consumer {
            created_consumer = touch_consumer(g, name, now);
            have_consumer = true;
        }
        assign(g, id, name);
        if let Some(n) = g.pel.get_mut(&id) {
            n.delivery_time = deliverytime;
            if retrycount >= 0 {
                n.delivery_count = retrycount as u64;
            } else if !justid {
                n.delivery_count += 1;
            }
        }
        out.push(if justid {
            id_reply(id)
        } else {
            entry_reply(&(id, pairs))
        });
        if let Some(n) = g.pel.get(&id) {
            prop.push(xclaim_argv(key, group, g, arg, n));
        }
        propagate_last_id = false;
    }
    if propagate_last_id {
        if let Some(g) = s.groups.get(group) {
            prop.push(setid_argv(key, group, g));
        }
    }
    if created_consumer {
        ctx.event(Flags::STREAM, "xgroup-createconsumer", argv[1]);
    }
    propagate_all(ctx, prop);
    Reply::Array(out)
}

fn xautoclaim(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> Reply {
    let (key, group, name) = (argv[1], argv[2], argv[3]);
    let minidle = match parse_i64(argv[4]) {
        Some(v) => v.max(0),
        None => return Reply::err("ERR Invalid min-idle-time argument for XAUTOCLAIM"),
    };
    let start = match range_start(argv[5]) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let mut count: i64 = 100;
    let mut justid = false;
    let mut j = 6;
    while j < argv.len() {
        let more = argv.len() - 1 - j;
        if eq(argv[j], "count") && more > 0 {
            let max = i64::MAX / 16;
            count = match parse_i64(argv[j + 1]) {
                Some(c) if (1..=max).contains(&c) => c,
                _ => return Reply::err("ERR COUNT must be > 0"),
            };
            j += 1;
        } else if eq(argv[j], "justid") {
            justid = true;
        } else {
            return Reply::syntax_error();
        }
        j += 1;
    }
    match ctx.get_stream(key) {
        Err(r) => return r,
        Ok(s) if s.and_then(|s| group_of(s, group)).is_none() => return nogroup(key, group),
        Ok(_) => {}
    }
    let now = ctx.now_ms();
    let Ok(Some(s)) = ctx.get_stream_mut(key) else {
        return nogroup(key, group);
    };
    let mut attempts = count.saturating_mul(10);
    let mut prop = Vec::new();
    let mut claimed = Vec::new();
    let mut deleted = Vec::new();
    let mut have_consumer = false;
    let mut created_consumer = false;
    let mut cursor = start;
    let mut next: Option<StreamId> = None;
    loop {
        // The next pending ID at or after the cursor (the PEL changes as we go).
        let id = match s.groups.get(group) {
            Some(g) => g.pel.range(cursor..).next().map(|(id, _)| *id),
            None => None,
        };
        if attempts == 0 || count == 0 {
            next = id;
            break;
        }
        attempts -= 1;
        let Some(id) = id else {
            break;
        };
        cursor = match id.incr() {
            Some(c) => c,
            None => StreamId::MAX,
        };
        let entry = s.get(id);
        let Some(g) = s.group_mut(group) else {
            break;
        };
        let Some(pairs) = entry else {
            if let Some(n) = g.pel.get(&id).cloned() {
                prop.push(xclaim_argv(key, group, g, &id.to_text(), &n));
                unpend(g, id);
                deleted.push(id_reply(id));
                count -= 1;
            }
            if id == StreamId::MAX {
                break;
            }
            continue;
        };
        let Some(n) = g.pel.get(&id) else {
            continue;
        };
        if minidle != 0 && now - n.delivery_time < minidle {
            if id == StreamId::MAX {
                break;
            }
            continue;
        }
        if !have_consumer {
            created_consumer = touch_consumer(g, name, now);
            have_consumer = true;
        }
        assign(g, id, name);
        if let Some(n) = g.pel.get_mut(&id) {
            n.delivery_time = now;
            if !justid {
                n.delivery_count += 1;
            }
        }
        claimed.push(if justid {
            id_reply(id)
        } else {
            entry_reply(&(id, pairs))
        });
        count -= 1;
        if let Some(n) = g.pel.get(&id) {
            prop.push(xclaim_argv(key, group, g, &id.to_text(), n));
        }
        if id == StreamId::MAX {
            break;
        }
    }
    if created_consumer {
        ctx.event(Flags::STREAM, "xgroup-createconsumer", argv[1]);
    }
    propagate_all(ctx, prop);
    Reply::Array(vec![
        id_reply(next.unwrap_or(StreamId::MIN)),
        Reply::Array(claimed),
        Reply::Array(deleted),
    ])
}
