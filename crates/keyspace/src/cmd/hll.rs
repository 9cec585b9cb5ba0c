//! PFADD, PFCOUNT, PFMERGE, PFDEBUG, PFSELFTEST (Redis 7.0.15 `hyperloglog.c`) on string values
//! in HyperLogLog format ([`crate::types::hll`]).
//!
//! PFCOUNT of one key stores the computed cardinality in the value's cache, as Redis does, and
//! then propagates itself (Redis's `server.dirty++` on a read-only command flagged
//! MAY_REPLICATE): replicas and the AOF cache the same bytes. The write goes through
//! [`Ctx::get_str_mut`], which hands the key to the snapshot observer before the change.

use crate::command::{CommandSpec, READONLY, WRITE};
use crate::ctx::Ctx;
use crate::encoding::Pins;
use crate::notify::Flags;
use crate::reply::Reply;
use crate::types::hll;
use crate::value::{SharedBytes, Value};

/// The commands of this module.
#[rustfmt::skip]
pub(crate) const COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("pfadd", -2, WRITE, 1, 1, 1, pfadd),
    CommandSpec::new("pfcount", -2, READONLY, 1, -1, 1, pfcount),
    CommandSpec::new("pfmerge", -2, WRITE, 1, -1, 1, pfmerge),
    CommandSpec::new("pfdebug", 3, WRITE, 2, 2, 1, pfdebug),
    CommandSpec::new("pfselftest", 1, 0, 0, 0, 0, pfselftest),
];

fn invalid() -> Reply {
    Reply::err(hll::INVALID_ERR)
}

/// The HLL string at `key` (`None`: no key); WRONGTYPE for another type or a string that is
/// not an HLL (`isHLLObjectOrReply`).
fn read_hll<'c>(ctx: &'c mut Ctx<'_>, key: &[u8]) -> Result<Option<&'c SharedBytes>, Reply> {
    match ctx.get_str(key)? {
        None => Ok(None),
        Some(s) if hll::is_hll(s) => Ok(Some(s)),
        Some(_) => Err(Reply::err(hll::NOT_HLL_ERR)),
    }
}

fn pfadd(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> Reply {
    let key = argv[1];
    let max_bytes = ctx.hll_sparse_max_bytes();
    let mut updated = 0usize;
    match read_hll(ctx, key) {
        Err(e) => return e,
        Ok(None) => {
            ctx.insert(key, Value::String(hll::new_sparse()));
            updated += 1;
        }
        Ok(Some(_)) => {}
    }
    // A HyperLogLog is a raw string, unshared before every update (`createHLLObject`,
    // `dbUnshareStringValue`).
    ctx.pin(key, Pins::RAW);
    let Ok(Some(s)) = ctx.get_str_mut(key) else {
        return invalid();
    };
    for ele in &argv[2..] {
        match hll::add(s, ele, max_bytes) {
            Ok(true) => updated += 1,
            Ok(false) => {}
            Err(hll::Invalid) => return invalid(),
        }
    }
    if updated > 0 {
        hll::invalidate(s);
        ctx.event(Flags::STRING, "pfadd", key);
        ctx.propagate(argv);
    }
    Reply::Integer(i64::from(updated > 0))
}

fn pfcount(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> Reply {
    if argv.len() > 2 {
        // The cardinality of the union, from registers merged one byte each.
        let mut max = vec![0u8; hll::REGISTERS];
        for key in &argv[1..] {
            match read_hll(ctx, key) {
                Err(e) => return e,
                Ok(None) => {}
                Ok(Some(s)) => {
                    if hll::merge_into(&mut max, s).is_err() {
                        return invalid();
                    }
                }
            }
        }
        return Reply::Integer(hll::count_raw(&max) as i64);
    }
    let key = argv[1];
    let card = match read_hll(ctx, key) {
        Err(e) => return e,
        Ok(None) => return Reply::Integer(0),
        Ok(Some(s)) => match hll::cached(s) {
            Some(c) => return Reply::Integer(c as i64),
            None => match hll::count(s) {
                Ok(c) => c,
                Err(hll::Invalid) => return invalid(),
            },
        },
    };
    if let Ok(Some(s)) = ctx.get_str_mut(key) {
        hll::set_cached(s, card);
    }
    ctx.propagate(argv);
    Reply::Integer(card as i64)
}

fn pfmerge(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> Reply {
    let dest = argv[1];
    let max_bytes = ctx.hll_sparse_max_bytes();
    let mut max = vec![0u8; hll::REGISTERS];
    let mut use_dense = false;
    for key in &argv[1..] {
        match read_hll(ctx, key) {
            Err(e) => return e,
            Ok(None) => {}
            Ok(Some(s)) => {
                use_dense |= hll::is_dense(s);
                if hll::merge_into(&mut max, s).is_err() {
                    return invalid();
                }
            }
        }
    }
    if ctx.get(dest).is_none() {
        ctx.insert(dest, Value::String(hll::new_sparse()));
    }
    ctx.pin(dest, Pins::RAW);
    let Ok(Some(s)) = ctx.get_str_mut(dest) else {
        return invalid();
    };
    if use_dense && hll::to_dense(s).is_err() {
        return invalid();
    }
    for (i, &m) in max.iter().enumerate() {
        if m > 0 && hll::set_register(s, i, m, max_bytes).is_err() {
            // The destination was validated by the merge above; a sparse one that is corrupt
            // inside stops here, as Redis's hllSparseSet returning -1 leaves it.
            break;
        }
    }
    hll::invalidate(s);
    ctx.event(Flags::STRING, "pfadd", dest);
    ctx.propagate(argv);
    Reply::ok()
}

fn pfdebug(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> Reply {
    let sub = String::from_utf8_lossy(argv[1]).to_ascii_lowercase();
    let key = argv[2];
    match read_hll(ctx, key) {
        Err(e) => return e,
        Ok(None) => return Reply::err("ERR The specified key does not exist"),
        Ok(Some(_)) => {}
    }
    let Ok(Some(s)) = ctx.get_str_mut(key) else {
        return invalid();
    };
    match sub.as_str() {
        "getreg" => {
            let converted = !hll::is_dense(s);
            if hll::to_dense(s).is_err() {
                return invalid();
            }
            let regs = hll::registers(s);
            if converted {
                ctx.propagate(argv);
            }
            Reply::Array(regs.into_iter().map(|r| Reply::Integer(r.into())).collect())
        }
        "decode" => {
            if hll::is_dense(s) {
                return Reply::err("ERR HLL encoding is not sparse");
            }
            match hll::decode(s) {
                Ok(d) => Reply::Bulk(d.into_bytes()),
                Err(hll::Invalid) => invalid(),
            }
        }
        "encoding" => Reply::Status(if hll::is_dense(s) { "dense" } else { "sparse" }.into()),
        "todense" => {
            if hll::is_dense(s) {
                return Reply::Integer(0);
            }
            if hll::to_dense(s).is_err() {
                return invalid();
            }
            ctx.propagate(argv);
            Reply::Integer(1)
        }
        _ => Reply::err(format!(
            "ERR Unknown PFDEBUG subcommand '{}'",
            String::from_utf8_lossy(argv[1])
        )),
    }
}

fn pfselftest(ctx: &mut Ctx<'_>, _argv: &[&[u8]]) -> Reply {
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64);
    match hll::self_test(seed, ctx.hll_sparse_max_bytes()) {
        Ok(()) => Reply::ok(),
        Err(e) => Reply::err(format!("ERR {e}")),
    }
}
