//! DUMP and RESTORE (Redis 7.0.15 `cluster.c`: `dumpCommand`, `restoreCommand`). The payload
//! format is `forkless_rdb::dump` (the value's RDB encoding, RDB version, CRC-64), so payloads
//! move between forkless and redis-server both ways.
//!
//! RESTORE: `RESTORE key ttl payload [REPLACE] [ABSTTL] [IDLETIME s] [FREQ f]`, checks in Redis's
//! order (options, BUSYKEY, TTL, payload footer, value); a relative TTL propagates as an absolute
//! one with `ABSTTL` appended (Redis rewrites the command so replicas and the AOF agree on the
//! time); a TTL already past deletes the key (if REPLACE removed one, `DEL` propagates) and
//! answers OK without creating it (not while loading: [`Ctx::already_expired`]).

use forkless_rdb::dump::{dump_payload, restore_payload, PayloadError};

use crate::command::{CommandSpec, READONLY, WRITE};
use crate::convert::{from_model, parse_i64, to_model};
use crate::ctx::Ctx;
use crate::db::Slot;
use crate::notify::Flags;
use crate::reply::Reply;

/// The commands of this module.
#[rustfmt::skip]
pub(crate) const COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("dump", 2, READONLY, 1, 1, 1, dump),
    CommandSpec::new("restore", -4, WRITE, 1, 1, 1, restore),
];

fn dump(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> Reply {
    let Some(v) = ctx.get(argv[1]) else {
        return Reply::Nil;
    };
    match dump_payload(&to_model(&v), &forkless_rdb::WriteOptions::default()) {
        Ok(p) => Reply::Bulk(p),
        Err(e) => Reply::err(format!("ERR DUMP failed: {e}")),
    }
}

fn restore(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> Reply {
    let mut replace = false;
    let mut absttl = false;
    let mut idle: Option<i64> = None;
    let mut freq: Option<i64> = None;
    let mut j = 4;
    while j < argv.len() {
        let more = j + 1 < argv.len();
        let a = argv[j];
        if a.eq_ignore_ascii_case(b"replace") {
            replace = true;
        } else if a.eq_ignore_ascii_case(b"absttl") {
            absttl = true;
        } else if a.eq_ignore_ascii_case(b"idletime") && more && freq.is_none() {
            match parse_i64(argv[j + 1]) {
                None => return Reply::err("ERR value is not an integer or out of range"),
                Some(n) if n < 0 => return Reply::err("ERR Invalid IDLETIME value, must be >= 0"),
                Some(n) => idle = Some(n),
            }
            j += 1;
        } else if a.eq_ignore_ascii_case(b"freq") && more && idle.is_none() {
            match parse_i64(argv[j + 1]) {
                None => return Reply::err("ERR value is not an integer or out of range"),
                Some(n) if !(0..=255).contains(&n) => {
                    return Reply::err("ERR Invalid FREQ value, must be >= 0 and <= 255")
                }
                Some(n) => freq = Some(n),
            }
            j += 1;
        } else {
            return Reply::syntax_error();
        }
        j += 1;
    }
    let key = argv[1];
    if !replace && ctx.exists(key) {
        return Reply::err("BUSYKEY Target key name already exists.");
    }
    let Some(mut ttl) = parse_i64(argv[2]) else {
        return Reply::err("ERR value is not an integer or out of range");
    };
    if ttl < 0 {
        return Reply::err("ERR Invalid TTL value, must be >= 0");
    }
    let value = match restore_payload(argv[3]) {
        Ok(v) => from_model(v),
        Err(PayloadError::VersionOrChecksum) => {
            return Reply::err("ERR DUMP payload version or checksum are wrong")
        }
        Err(PayloadError::BadData(_)) => return Reply::err("ERR Bad data format"),
    };
    let db = ctx.db();
    let deleted = replace && ctx.remove_in(db, key).is_some();
    if ttl > 0 && !absttl {
        ttl = ttl.saturating_add(ctx.now_ms());
    }
    if ttl > 0 && ctx.already_expired(ttl) {
        if deleted {
            ctx.event(Flags::GENERIC, "del", key);
            ctx.propagate(&[b"DEL", key]);
        }
        return Reply::ok();
    }
    ctx.insert_slot_in(db, key, Slot::new(value, (ttl > 0).then_some(ttl)));
    ctx.event(Flags::GENERIC, "restore", key);
    // Redis's objectSetLRUOrLFU: FREQ under an LFU policy, IDLETIME under any other.
    ctx.set_access(
        key,
        forkless_rdb::KeyAccess {
            idle_secs: idle.map(|s| s as u64),
            freq: freq.map(|f| f as u8),
        },
    );
    if ttl > 0 && !absttl {
        let t = ttl.to_string();
        let mut out: Vec<&[u8]> = argv.to_vec();
        out[2] = t.as_bytes();
        out.push(b"ABSTTL");
        ctx.propagate(&out);
    } else {
        ctx.propagate(argv);
    }
    Reply::ok()
}
