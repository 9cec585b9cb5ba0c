//! Server and database commands: SELECT, SWAPDB, FLUSHDB, FLUSHALL, DBSIZE, PING, ECHO.
//!
//! Semantics and error texts follow Redis 7.0.15 `db.c` (`selectCommand`, `swapdbCommand`,
//! `flushdbCommand`, `flushallCommand`, `getFlushCommandFlags`) and `server.c` (`pingCommand`).
//! FLUSHDB and FLUSHALL are always propagated, even on an empty database
//! (`forceCommandPropagation`); SELECT is never propagated (the sink inserts SELECTs).

use crate::command::{CommandSpec, ALL_SHARDS, READONLY, WRITE};
use crate::convert::parse_i64;
use crate::ctx::Ctx;
use crate::reply::Reply;

/// The commands of this module.
pub(crate) const COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("select", 2, 0, 0, 0, 0, select),
    CommandSpec::new("swapdb", 3, WRITE | ALL_SHARDS, 0, 0, 0, swapdb),
    CommandSpec::new("flushdb", -1, WRITE | ALL_SHARDS, 0, 0, 0, flushdb),
    CommandSpec::new("flushall", -1, WRITE | ALL_SHARDS, 0, 0, 0, flushall),
    CommandSpec::new("dbsize", 1, READONLY | ALL_SHARDS, 0, 0, 0, dbsize),
    CommandSpec::new("ping", -1, 0, 0, 0, 0, ping),
    CommandSpec::new("echo", 2, 0, 0, 0, 0, echo),
];

/// Parse a database index as `getIntFromObjectOrReply` (any `int`), `Err` with Redis's text.
fn parse_db_index(ctx: &Ctx<'_>, arg: &[u8], invalid: &'static str) -> Result<u32, Reply> {
    let n = parse_i64(arg)
        .filter(|n| i32::try_from(*n).is_ok())
        .ok_or_else(|| {
            if invalid.is_empty() {
                Reply::not_integer()
            } else {
                Reply::err(invalid)
            }
        })?;
    if n < 0 || n >= i64::from(ctx.databases()) {
        return Err(Reply::err("ERR DB index is out of range"));
    }
    Ok(n as u32)
}

fn select(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> Reply {
    match parse_db_index(ctx, argv[1], "") {
        Ok(db) => {
            ctx.set_db(db);
            Reply::ok()
        }
        Err(e) => e,
    }
}

fn swapdb(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> Reply {
    let a = match parse_db_index(ctx, argv[1], "ERR invalid first DB index") {
        Ok(a) => a,
        Err(e) => return e,
    };
    let b = match parse_db_index(ctx, argv[2], "ERR invalid second DB index") {
        Ok(b) => b,
        Err(e) => return e,
    };
    if a != b {
        ctx.swap_db(a, b);
    }
    ctx.propagate(argv);
    Reply::ok()
}

/// `getFlushCommandFlags`: no argument, `SYNC` or `ASYNC`.
fn flush_flags_ok(argv: &[&[u8]]) -> bool {
    match argv.len() {
        1 => true,
        2 => argv[1].eq_ignore_ascii_case(b"sync") || argv[1].eq_ignore_ascii_case(b"async"),
        _ => false,
    }
}

fn flushdb(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> Reply {
    if !flush_flags_ok(argv) {
        return Reply::syntax_error();
    }
    ctx.flush_db(ctx.db());
    ctx.propagate(argv);
    Reply::ok()
}

fn flushall(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> Reply {
    if !flush_flags_ok(argv) {
        return Reply::syntax_error();
    }
    for db in 0..ctx.databases() {
        ctx.flush_db(db);
    }
    ctx.propagate(argv);
    Reply::ok()
}

fn dbsize(ctx: &mut Ctx<'_>, _argv: &[&[u8]]) -> Reply {
    Reply::Integer(ctx.db_len(ctx.db()) as i64)
}

fn ping(_ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> Reply {
    match argv.len() {
        1 => Reply::Status("PONG".into()),
        2 => Reply::bulk(argv[1]),
        _ => Reply::err("ERR wrong number of arguments for 'ping' command"),
    }
}

fn echo(_ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> Reply {
    Reply::bulk(argv[1])
}
