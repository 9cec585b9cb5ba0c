//! Key commands: DEL, UNLINK, EXISTS, TYPE, EXPIRE, PEXPIRE, EXPIREAT, PEXPIREAT (NX XX GT LT),
//! PERSIST, TTL, PTTL, EXPIRETIME, PEXPIRETIME, RENAME, RENAMENX, COPY (DB, REPLACE), MOVE, TOUCH, KEYS,
//! SCAN (MATCH COUNT TYPE), RANDOMKEY.
//!
//! Semantics, error texts and propagation follow Redis 7.0.15 `db.c` (`delGenericCommand`,
//! `renameGenericCommand`, `moveCommand`, `copyCommand`, `keysCommand`, `scanGenericCommand`,
//! `dbRandomKey`) and `expire.c` (`expireGenericCommand`, `ttlGenericCommand`): relative expiries
//! propagate as `PEXPIREAT k <abs ms>` (other arguments kept), an expiry already in the past
//! deletes the key and propagates `DEL k` (except while loading: [`Ctx::already_expired`]), and a write that changes nothing propagates nothing.

use crate::command::{CommandSpec, ALL_SHARDS, READONLY, WRITE};
use crate::convert::parse_i64;
use crate::ctx::Ctx;
use crate::glob;
use crate::notify::Flags;
use crate::reply::Reply;

/// The commands of this module.
#[rustfmt::skip]
pub(crate) const COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("del", -2, WRITE, 1, -1, 1, del),
    CommandSpec::new("unlink", -2, WRITE, 1, -1, 1, del),
    CommandSpec::new("exists", -2, READONLY, 1, -1, 1, exists),
    CommandSpec::new("touch", -2, READONLY, 1, -1, 1, touch),
    CommandSpec::new("type", 2, READONLY, 1, 1, 1, type_cmd),
    CommandSpec::new("expire", -3, WRITE, 1, 1, 1, expire),
    CommandSpec::new("pexpire", -3, WRITE, 1, 1, 1, pexpire),
    CommandSpec::new("expireat", -3, WRITE, 1, 1, 1, expireat),
    CommandSpec::new("pexpireat", -3, WRITE, 1, 1, 1, pexpireat),
    CommandSpec::new("persist", 2, WRITE, 1, 1, 1, persist),
    CommandSpec::new("ttl", 2, READONLY, 1, 1, 1, ttl),
    CommandSpec::new("pttl", 2, READONLY, 1, 1, 1, pttl),
    CommandSpec::new("expiretime", 2, READONLY, 1, 1, 1, expiretime),
    CommandSpec::new("pexpiretime", 2, READONLY, 1, 1, 1, pexpiretime),
    CommandSpec::new("rename", 3, WRITE, 1, 2, 1, rename),
    CommandSpec::new("renamenx", 3, WRITE, 1, 2, 1, renamenx),
    CommandSpec::new("copy", -3, WRITE, 1, 2, 1, copy),
    CommandSpec::new("move", 3, WRITE, 1, 1, 1, move_cmd),
    CommandSpec::new("keys", 2, READONLY | ALL_SHARDS, 0, 0, 0, keys),
    CommandSpec::new("scan", -2, READONLY | ALL_SHARDS, 0, 0, 0, scan),
    CommandSpec::new("randomkey", 1, READONLY | ALL_SHARDS, 0, 0, 0, randomkey),
    CommandSpec::new("object", -2, READONLY, 2, 2, 1, object),
];

/// OBJECT FREQ|IDLETIME|HELP (`objectCommand`, `object.c`). Reading the key's
/// metadata does not touch it (Redis's `LOOKUP_NOTOUCH`): the word is read before the lookup
/// updates it.
fn object(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> Reply {
    let sub = String::from_utf8_lossy(argv[1]).to_ascii_lowercase();
    if sub == "help" && argv.len() == 2 {
        return Reply::Array(
            [
                "OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                "ENCODING <key>",
                "    Return the kind of internal representation used in order to store the value",
                "    associated with a <key>.",
                "FREQ <key>",
                "    Return the access frequency index of the <key>. The returned integer is",
                "    proportional to the logarithm of the recent access frequency of the key.",
                "IDLETIME <key>",
                "    Return the idle time of the <key>, that is the approximated number of",
                "    seconds elapsed since the last access to the key.",
                "REFCOUNT <key>",
                "    Return the number of references of the value associated with the specified",
                "    <key>.",
                "HELP",
                "    Print this help.",
            ]
            .iter()
            .map(|l| Reply::Status((*l).into()))
            .collect(),
        );
    }
    // ENCODING and REFCOUNT depend on the encoding thresholds of the configuration: the server
    // answers them (`forkless-server`, `command.rs`).
    if argv.len() != 3 || !matches!(sub.as_str(), "freq" | "idletime") {
        return Reply::err(format!(
            "ERR unknown subcommand or wrong number of arguments for '{}'. Try OBJECT HELP.",
            String::from_utf8_lossy(argv[1])
        ));
    }
    let key = argv[2];
    let policy = ctx.memory_policy();
    let Some(meta) = ctx.access_meta(key) else {
        return Reply::Nil;
    };
    if sub == "idletime" {
        if policy.is_lfu() {
            return Reply::err("ERR An LFU maxmemory policy is selected, idle time not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.");
        }
        Reply::Integer((crate::memory::idle_ms(ctx.now_ms(), meta) / 1000) as i64)
    } else {
        if !policy.is_lfu() {
            return Reply::err("ERR An LFU maxmemory policy is not selected, access frequency not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.");
        }
        let decay = ctx.memory_config().lfu_decay_time;
        Reply::Integer(crate::memory::lfu_decayed(meta, ctx.now_ms(), decay) as i64)
    }
}

fn del(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> Reply {
    let mut n = 0;
    for k in &argv[1..] {
        if ctx.remove_in(ctx.db(), k).is_some() {
            ctx.event(Flags::GENERIC, "del", k);
            n += 1;
        }
    }
    if n > 0 {
        ctx.propagate(argv);
    }
    Reply::Integer(n)
}

fn exists(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> Reply {
    Reply::Integer(argv[1..].iter().filter(|k| ctx.exists(k)).count() as i64)
}

fn type_cmd(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> Reply {
    let db = ctx.db();
    Reply::Status(ctx.type_in(db, argv[1]).unwrap_or("none").into())
}

const E_NX: u32 = 1;
const E_XX: u32 = 2;
const E_GT: u32 = 4;
const E_LT: u32 = 8;

/// `expireGenericCommand`: `basetime` is added to the argument (0 for the *AT forms).
fn expire_generic(ctx: &mut Ctx<'_>, argv: &[&[u8]], relative: bool, seconds: bool) -> Reply {
    let mut flags = 0;
    for opt in &argv[3..] {
        flags |= if opt.eq_ignore_ascii_case(b"nx") {
            E_NX
        } else if opt.eq_ignore_ascii_case(b"xx") {
            E_XX
        } else if opt.eq_ignore_ascii_case(b"gt") {
            E_GT
        } else if opt.eq_ignore_ascii_case(b"lt") {
            E_LT
        } else {
            return Reply::err(format!(
                "ERR Unsupported option {}",
                String::from_utf8_lossy(opt)
            ));
        };
    }
    if flags & E_NX != 0 && flags & (E_XX | E_GT | E_LT) != 0 {
        return Reply::err("ERR NX and XX, GT or LT options at the same time are not compatible");
    }
    if flags & E_GT != 0 && flags & E_LT != 0 {
        return Reply::err("ERR GT and LT options at the same time are not compatible");
    }
    let Some(mut when) = parse_i64(argv[2]) else {
        return Reply::not_integer();
    };
    let invalid = || {
        let name = String::from_utf8_lossy(argv[0]).to_ascii_lowercase();
        Reply::err(format!("ERR invalid expire time in '{name}' command"))
    };
    if seconds {
        if !(i64::MIN / 1000..=i64::MAX / 1000).contains(&when) {
            return invalid();
        }
        when *= 1000;
    }
    let base = if relative { ctx.now_ms() } else { 0 };
    if when > i64::MAX - base {
        return invalid();
    }
    when += base;
    let key = argv[1];
    if !ctx.exists(key) {
        return Reply::Integer(0);
    }
    if flags != 0 {
        let cur = ctx.expire_at(key);
        let refused = (flags & E_NX != 0 && cur.is_some())
            || (flags & E_XX != 0 && cur.is_none())
            || (flags & E_GT != 0 && cur.is_none_or(|c| when <= c))
            || (flags & E_LT != 0 && cur.is_some_and(|c| when >= c));
        if refused {
            return Reply::Integer(0);
        }
    }
    if ctx.already_expired(when) {
        ctx.remove(key);
        ctx.event(Flags::GENERIC, "del", key);
        ctx.propagate(&[b"DEL", key]);
    } else {
        ctx.set_expire_at(key, Some(when));
        ctx.event(Flags::GENERIC, "expire", key);
        let when_s = when.to_string();
        let mut out: Vec<&[u8]> = argv.to_vec();
        out[0] = b"PEXPIREAT";
        out[2] = when_s.as_bytes();
        ctx.propagate(&out);
    }
    Reply::Integer(1)
}

fn expire(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> Reply {
    expire_generic(ctx, argv, true, true)
}

fn pexpire(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> Reply {
    expire_generic(ctx, argv, true, false)
}

fn expireat(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> Reply {
    expire_generic(ctx, argv, false, true)
}

fn pexpireat(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> Reply {
    expire_generic(ctx, argv, false, false)
}

fn persist(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> Reply {
    if ctx.expire_at(argv[1]).is_some() {
        ctx.set_expire_at(argv[1], None);
        ctx.event(Flags::GENERIC, "persist", argv[1]);
        ctx.propagate(argv);
        Reply::Integer(1)
    } else {
        Reply::Integer(0)
    }
}

/// `ttlGenericCommand`.
fn ttl_generic(ctx: &mut Ctx<'_>, key: &[u8], ms: bool, absolute: bool) -> Reply {
    if !ctx.exists(key) {
        return Reply::Integer(-2);
    }
    match ctx.expire_at(key) {
        None => Reply::Integer(-1),
        Some(at) => {
            let t = if absolute {
                at
            } else {
                at.saturating_sub(ctx.now_ms())
            }
            .max(0);
            Reply::Integer(if ms { t } else { (t + 500) / 1000 })
        }
    }
}

fn ttl(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> Reply {
    ttl_generic(ctx, argv[1], false, false)
}

fn pttl(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> Reply {
    ttl_generic(ctx, argv[1], true, false)
}

fn expiretime(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> Reply {
    ttl_generic(ctx, argv[1], false, true)
}

fn pexpiretime(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> Reply {
    ttl_generic(ctx, argv[1], true, true)
}

/// `renameGenericCommand`.
fn rename_generic(ctx: &mut Ctx<'_>, argv: &[&[u8]], nx: bool) -> Reply {
    let (src, dst) = (argv[1], argv[2]);
    let db = ctx.db();
    let Some(slot) = ctx.slot_in(db, src).cloned() else {
        return Reply::no_such_key();
    };
    if src == dst {
        return if nx { Reply::Integer(0) } else { Reply::ok() };
    }
    if ctx.exists(dst) {
        if nx {
            return Reply::Integer(0);
        }
        ctx.remove_in(db, dst);
    }
    // The object moves with its encoding (`crate::encoding`).
    let pins = ctx.pins_in(db, src);
    ctx.remove_in(db, src);
    ctx.insert_slot_in(db, dst, slot);
    ctx.pin_in(db, dst, pins);
    ctx.event(Flags::GENERIC, "rename_from", src);
    ctx.event(Flags::GENERIC, "rename_to", dst);
    ctx.propagate(argv);
    if nx {
        Reply::Integer(1)
    } else {
        Reply::ok()
    }
}

fn rename(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> Reply {
    rename_generic(ctx, argv, false)
}

fn renamenx(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> Reply {
    rename_generic(ctx, argv, true)
}

/// A database index as `getIntFromObjectOrReply` + `selectDb`.
fn db_index(ctx: &Ctx<'_>, arg: &[u8]) -> Result<u32, Reply> {
    let n = parse_i64(arg)
        .filter(|n| i32::try_from(*n).is_ok())
        .ok_or_else(Reply::not_integer)?;
    if n < 0 || n >= i64::from(ctx.databases()) {
        return Err(Reply::err("ERR DB index is out of range"));
    }
    Ok(n as u32)
}

fn same_object() -> Reply {
    Reply::err("ERR source and destination objects are the same")
}

fn move_cmd(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> Reply {
    let key = argv[1];
    let dst = match db_index(ctx, argv[2]) {
        Ok(d) => d,
        Err(e) => return e,
    };
    let src = ctx.db();
    if src == dst {
        return same_object();
    }
    let Some(slot) = ctx.slot_in(src, key).cloned() else {
        return Reply::Integer(0);
    };
    if ctx.slot_in(dst, key).is_some() {
        return Reply::Integer(0);
    }
    let pins = ctx.pins_in(src, key);
    ctx.insert_slot_in(dst, key, slot);
    ctx.pin_in(dst, key, pins);
    ctx.remove_in(src, key);
    ctx.event_in(src, Flags::GENERIC, "move_from", key);
    ctx.event_in(dst, Flags::GENERIC, "move_to", key);
    ctx.propagate(argv);
    Reply::Integer(1)
}

/// `TOUCH key...`: how many exist; each lookup updates the key's access clock.
fn touch(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> Reply {
    Reply::Integer(argv[1..].iter().filter(|k| ctx.exists(k)).count() as i64)
}

fn copy(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> Reply {
    let src_db = ctx.db();
    let mut dst_db = src_db;
    let mut replace = false;
    let mut j = 3;
    while j < argv.len() {
        if argv[j].eq_ignore_ascii_case(b"replace") {
            replace = true;
        } else if argv[j].eq_ignore_ascii_case(b"db") && j + 1 < argv.len() {
            dst_db = match db_index(ctx, argv[j + 1]) {
                Ok(d) => d,
                Err(e) => return e,
            };
            j += 1;
        } else {
            return Reply::syntax_error();
        }
        j += 1;
    }
    let (key, newkey) = (argv[1], argv[2]);
    if src_db == dst_db && key == newkey {
        return same_object();
    }
    let Some(slot) = ctx.slot_in(src_db, key).cloned() else {
        return Reply::Integer(0);
    };
    if ctx.slot_in(dst_db, newkey).is_some() {
        if !replace {
            return Reply::Integer(0);
        }
        ctx.remove_in(dst_db, newkey);
    }
    // The copy shares the value (`Arc`) until either side is written (copy-on-write).
    // Redis duplicates the object in its encoding (`dupStringObject`, `setTypeDup`...).
    let pins = ctx.pins_in(src_db, key);
    ctx.insert_slot_in(dst_db, newkey, slot);
    ctx.pin_in(dst_db, newkey, pins);
    ctx.event_in(dst_db, Flags::GENERIC, "copy_to", newkey);
    ctx.propagate(argv);
    Reply::Integer(1)
}

fn keys(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> Reply {
    let pattern = argv[1];
    let all = pattern == b"*";
    let (db, now) = (ctx.db(), ctx.now_ms());
    let mut out = Vec::new();
    for shard in ctx.shards_mut().iter() {
        for (k, slot) in shard.db(db).iter() {
            if (all || glob::matches(pattern, k, false)) && !slot.is_expired(now) {
                out.push(Reply::Bulk(k.to_vec()));
            }
        }
    }
    Reply::Array(out)
}

/// Parse a SCAN cursor as `parseScanCursorOrReply` (an unsigned decimal).
pub(crate) fn parse_cursor(arg: &[u8]) -> Option<u64> {
    if arg.is_empty() || !arg.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(arg).ok()?.parse().ok()
}

fn scan(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> Reply {
    let Some(cursor) = parse_cursor(argv[1]) else {
        return Reply::err("ERR invalid cursor");
    };
    let mut count: i64 = 10;
    let mut pattern: Option<&[u8]> = None;
    let mut type_name: Option<&[u8]> = None;
    let mut i = 2;
    while i < argv.len() {
        let more = argv.len() - i >= 2;
        if argv[i].eq_ignore_ascii_case(b"count") && more {
            match parse_i64(argv[i + 1]) {
                Some(c) if c >= 1 => count = c,
                Some(_) => return Reply::syntax_error(),
                None => return Reply::not_integer(),
            }
        } else if argv[i].eq_ignore_ascii_case(b"match") && more {
            pattern = (argv[i + 1] != b"*").then_some(argv[i + 1]);
        } else if argv[i].eq_ignore_ascii_case(b"type") && more {
            type_name = Some(argv[i + 1]);
        } else {
            return Reply::syntax_error();
        }
        i += 2;
    }
    let db = ctx.db();
    let want = usize::try_from(count).unwrap_or(usize::MAX);
    let mut found: Vec<Vec<u8>> = Vec::new();
    let shards = ctx.shards_mut();
    // The cursor holds the shard index in its high bits and the shard's dict cursor (Redis's
    // reverse-binary bucket cursor, which only uses the bits of the bucket mask) in the rest.
    let bits = shards.len().trailing_zeros();
    let (mut si, mut c) = split_cursor(cursor, bits);
    let next;
    loop {
        if si >= shards.len() {
            next = 0;
            break;
        }
        let r = shards[si]
            .db(db)
            .scan(c, want.saturating_sub(found.len()), |k, _| {
                found.push(k.to_vec())
            });
        if r != 0 {
            next = join_cursor(si, r, bits);
            break;
        }
        si += 1;
        c = 0;
        if found.len() >= want {
            next = if si < shards.len() {
                join_cursor(si, 0, bits)
            } else {
                0
            };
            break;
        }
    }
    let mut out = Vec::new();
    for k in found {
        if pattern.is_some_and(|p| !glob::matches(p, &k, false)) {
            continue;
        }
        let Some(v) = ctx.type_in(db, &k) else {
            continue;
        };
        if type_name.is_some_and(|t| !t.eq_ignore_ascii_case(v.as_bytes())) {
            continue;
        }
        out.push(Reply::Bulk(k));
    }
    Reply::Array(vec![
        Reply::Bulk(next.to_string().into_bytes()),
        Reply::Array(out),
    ])
}

/// Split a SCAN cursor into (shard index, dict cursor).
fn split_cursor(cursor: u64, bits: u32) -> (usize, u64) {
    if bits == 0 {
        (0, cursor)
    } else {
        (
            (cursor >> (64 - bits)) as usize,
            cursor & (u64::MAX >> bits),
        )
    }
}

/// Join a shard index and a dict cursor into a SCAN cursor.
fn join_cursor(shard: usize, c: u64, bits: u32) -> u64 {
    if bits == 0 {
        c
    } else {
        ((shard as u64) << (64 - bits)) | (c & (u64::MAX >> bits))
    }
}

fn randomkey(ctx: &mut Ctx<'_>, _argv: &[&[u8]]) -> Reply {
    let db = ctx.db();
    loop {
        let total = ctx.db_len(db);
        if total == 0 {
            return Reply::Nil;
        }
        let mut r = {
            use rand::Rng;
            ctx.rng().gen_range(0..total)
        };
        let mut chosen: Option<Vec<u8>> = None;
        let (guards, rng) = ctx.shards_and_rng();
        for shard in guards.iter() {
            let n = shard.db(db).len();
            if r < n {
                chosen = shard.db(db).random(rng).map(|(k, _)| k.to_vec());
                break;
            }
            r -= n;
        }
        let Some(k) = chosen else { return Reply::Nil };
        if ctx.exists(&k) {
            return Reply::Bulk(k);
        }
    }
}
