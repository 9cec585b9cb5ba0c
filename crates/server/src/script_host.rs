//! The server's commands that Lua scripts may call: `DEBUG` (a deny-script command, so only
//! after `DEBUG set-disable-deny-scripts 1`), `TIME` and `PUBLISH`.
//!
//! PUBLISH from a script reaches this server's subscribers at once (as Redis, whose
//! subscribers also hear it before the script's writes are visible to others) and goes to the
//! replication stream as the server's PUBLISH does, ahead of the script's own MULTI/EXEC block
//! (Redis puts it inside the block); never to the AOF (Redis does not log PUBLISH either). The
//! pub/sub registry and the options copy are leaves, so taking them while the script holds its
//! shard locks keeps the lock order of DESIGN 9.6.
//!
//! Problem: Redis runs any command from a script (`scriptCall` in `script.c`); forkless's
//! scripts run inside the engine and reach the keyspace's commands, while DEBUG and TIME are
//! the server's. The script crate asks its host ([`forkless_script::HostCommands`]) for the
//! commands it does not know; this module answers for the server. A script holds its shards
//! while it calls them, so only the DEBUG subcommands that leave the keyspace alone are served
//! here (SLEEP, PROTOCOL, LOG, SET-ACTIVE-EXPIRE, SET-DISABLE-DENY-SCRIPTS and the no-ops);
//! DEBUG OBJECT, DIGEST, RELOAD... read the keyspace under its locks and answer an error from a
//! script. The same code serves those subcommands to clients ([`debug_common`]).
//!
//! It also tells scripts when the server refuses writes (`min-replicas-to-write`:
//! NOREPLICAS), which Redis checks before a script that may write and before each write
//! command of a script without flags.
//!
//! The host holds the server state weakly: the state owns the engine, which owns the scripts.

use std::sync::Weak;
use std::time::Duration;

use forkless_script::{HostCommand, HostCommands, Out};
use forkless_sync::atomic::Ordering;

use crate::frame::Frame;
use crate::state::Shared;

/// The server as a script's host (see the module docs).
pub struct ScriptHost {
    shared: Weak<Shared>,
}

impl ScriptHost {
    /// A host for `shared`'s scripts.
    pub fn new(shared: Weak<Shared>) -> ScriptHost {
        ScriptHost { shared }
    }
}

impl HostCommands for ScriptHost {
    fn lookup(&self, name: &str) -> Option<HostCommand> {
        match name {
            "debug" => Some(HostCommand {
                arity: -2,
                noscript: true,
            }),
            "time" => Some(HostCommand {
                arity: 1,
                noscript: false,
            }),
            "publish" | "spublish" => Some(HostCommand {
                arity: 3,
                noscript: false,
            }),
            _ => None,
        }
    }

    fn call(&self, argv: &[&[u8]], resp3: bool) -> Out {
        let Some(shared) = self.shared.upgrade() else {
            return Out::err("ERR the server is shutting down");
        };
        let name = lower(argv[0]);
        let frame = match name.as_str() {
            "time" => time(),
            "publish" | "spublish" => {
                let limit = shared.opts.lock().pubsub_limit;
                let n = if name == "spublish" {
                    shared.pubsub.publish_shard(argv[1], argv[2], &limit)
                } else {
                    shared.pubsub.publish(argv[1], argv[2], &limit)
                };
                let cmd: Vec<Vec<u8>> = argv.iter().map(|a| a.to_vec()).collect();
                shared.engine.replication().feed_ops(&[(0, cmd)]);
                Frame::Int(n)
            }
            _ => {
                let sub = lower(argv[1]);
                let args: Vec<Vec<u8>> = argv.iter().map(|a| a.to_vec()).collect();
                debug_common(&shared, &sub, &args, resp3).unwrap_or_else(|| {
                    Frame::err(format!(
                        "ERR DEBUG {sub} is not available from scripts (it reads the keys the script holds)"
                    ))
                })
            }
        };
        frame_to_out(frame)
    }

    fn after_call(&self, name: Option<&str>, error: Option<&str>, rejected: bool) {
        let Some(shared) = self.shared.upgrade() else {
            return;
        };
        if let Some(row) = name.and_then(|n| shared.cmdstats.row(n)) {
            if rejected {
                row.rejected.fetch_add(1, Ordering::Relaxed);
            } else {
                row.calls.fetch_add(1, Ordering::Relaxed);
                if error.is_some() {
                    row.failed.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        if let Some(e) = error {
            shared.count_error(e);
        }
    }

    fn deny_write(&self) -> Option<String> {
        let shared = self.shared.upgrade()?;
        too_few_replicas(&shared).then(|| "NOREPLICAS Not enough good replicas to write.".into())
    }
}

/// Redis's `checkGoodReplicasStatus` failing: a primary with `min-replicas-to-write` set has
/// fewer online replicas whose last ack is within `min-replicas-max-lag` seconds.
fn too_few_replicas(shared: &Shared) -> bool {
    let (min, max_lag) = {
        let o = shared.opts.lock();
        (o.min_replicas.0, o.min_replicas.1)
    };
    if min == 0 || max_lag == 0 || shared.repl.is_replica() {
        return false;
    }
    let good = shared
        .repl
        .replicas
        .lock()
        .values()
        .filter(|r| r.state == "online" && r.last_ack.elapsed().as_secs() <= max_lag)
        .count() as u64;
    good < min
}

fn lower(a: &[u8]) -> String {
    String::from_utf8_lossy(a).to_ascii_lowercase()
}

/// TIME: Unix seconds and microseconds, as bulk strings.
pub fn time() -> Frame {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    Frame::Array(vec![
        Frame::bulk(now.as_secs().to_string()),
        Frame::bulk(now.subsec_micros().to_string()),
    ])
}

/// The DEBUG subcommands [`debug_common`] serves: they leave the keyspace alone, so a script or a
/// transaction may run them while it holds shard locks.
pub const DEBUG_COMMON: &[&str] = &[
    "sleep",
    "set-active-expire",
    "set-disable-deny-scripts",
    "change-repl-id",
    "quicklist-packed-threshold",
    "jmap",
    "protocol",
    "log",
];

/// The DEBUG subcommands that do not read the keyspace (`sub` lowercase, `argv` the whole
/// command, `resp3` the caller's protocol): `None` for the others.
pub fn debug_common(shared: &Shared, sub: &str, argv: &[Vec<u8>], resp3: bool) -> Option<Frame> {
    if !DEBUG_COMMON.contains(&sub) {
        return None;
    }
    Some(match (sub, argv.len()) {
        ("sleep", 3) => {
            // Redis: strtod, then whole microseconds.
            let secs: f64 = String::from_utf8_lossy(&argv[2])
                .trim()
                .parse()
                .unwrap_or(0.0);
            std::thread::sleep(Duration::from_secs_f64(secs.clamp(0.0, 3600.0)));
            Frame::ok()
        }
        ("set-active-expire", 3) => {
            shared.engine.set_active_expire(argv[2] != b"0");
            Frame::ok()
        }
        ("set-disable-deny-scripts", 3) => {
            shared
                .engine
                .scripting()
                .run_state()
                .set_deny_disabled(atoi(&argv[2]) != 0);
            Frame::ok()
        }
        ("change-repl-id", 2) | ("quicklist-packed-threshold", 3) | ("jmap", 2) => Frame::ok(),
        ("protocol", 3) => debug_protocol(resp3, &argv[2]),
        ("log", 3) => {
            crate::log::warn(&format!("DEBUG LOG: {}", String::from_utf8_lossy(&argv[2])));
            Frame::ok()
        }
        _ => return None,
    })
}

/// C's `atoi`: optional blanks and sign, then digits up to the first non-digit (0 if none).
fn atoi(s: &[u8]) -> i64 {
    let t = String::from_utf8_lossy(s);
    let t = t.trim_start();
    let (neg, digits) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let n = digits
        .bytes()
        .take_while(u8::is_ascii_digit)
        .fold(0i64, |n, d| {
            n.saturating_mul(10).saturating_add(i64::from(d - b'0'))
        });
    if neg {
        -n
    } else {
        n
    }
}

/// DEBUG PROTOCOL <type>: one reply of each RESP3 type (Redis 7.0 `debug.c`).
fn debug_protocol(r3: bool, name: &[u8]) -> Frame {
    match lower(name).as_str() {
        "string" => Frame::bulk("Hello World"),
        "integer" => Frame::Int(12345),
        // Redis's own test value (debug.c), not an approximation of pi.
        #[allow(clippy::approx_constant)]
        "double" => Frame::Double(3.141),
        "bignum" => Frame::BigNum("1234567999999999999999999999999999999".into()),
        "null" => Frame::Null,
        "array" => Frame::Array((0..3).map(Frame::Int).collect()),
        "set" => Frame::Set((0..3).map(Frame::Int).collect()),
        "map" => Frame::Map((0..3).map(|j| (Frame::Int(j), Frame::Bool(j == 1))).collect()),
        "attrib" => Frame::Seq(vec![
            Frame::Attr(vec![(
                Frame::bulk("key-popularity"),
                Frame::Array(vec![Frame::bulk("key:123"), Frame::Int(90)]),
            )]),
            Frame::bulk("Some real reply following the attribute"),
        ]),
        "push" if !r3 => Frame::err("ERR RESP2 is not supported by this command"),
        "push" => Frame::Seq(vec![
            Frame::Push(vec![Frame::bulk("server-cpu-usage"), Frame::Int(42)]),
            Frame::bulk("Some real reply following the push reply"),
        ]),
        "true" => Frame::Bool(true),
        "false" => Frame::Bool(false),
        "verbatim" => Frame::Verbatim(b"This is a verbatim\nstring".to_vec()),
        _ => Frame::err("ERR Wrong protocol type name. Please use one of the following: string|integer|double|bignum|null|array|set|map|attrib|push|verbatim|true|false"),
    }
}

/// A reply as a script's command reply. Attributes are dropped (Redis's Lua parser skips
/// them); of a push and the reply after it the reply is kept; a push alone is an array.
pub fn frame_to_out(f: Frame) -> Out {
    match f {
        Frame::Simple(s) => Out::Status(s.into_owned()),
        Frame::Error(s) => Out::Error(s.into_owned()),
        Frame::Int(n) => Out::Int(n),
        Frame::Bulk(b) => Out::Bulk(b),
        Frame::Null => Out::Null,
        Frame::NullArray => Out::NullArray,
        Frame::Array(items) | Frame::Push(items) => {
            Out::Array(items.into_iter().map(frame_to_out).collect())
        }
        Frame::Set(items) => Out::Set(items.into_iter().map(frame_to_out).collect()),
        Frame::Map(pairs) | Frame::Attr(pairs) => Out::Map(
            pairs
                .into_iter()
                .map(|(k, v)| (frame_to_out(k), frame_to_out(v)))
                .collect(),
        ),
        Frame::Double(d) => Out::Double(d),
        Frame::HumanDouble(s) => Out::Double(s.parse().unwrap_or(0.0)),
        Frame::Verbatim(b) => Out::Verbatim("txt".into(), b),
        Frame::Bool(b) => Out::Bool(b),
        Frame::BigNum(s) => Out::BigNum(s),
        Frame::Seq(items) => items
            .into_iter()
            .rfind(|f| !matches!(f, Frame::Attr(_) | Frame::Push(_)))
            .map_or(Out::Null, frame_to_out),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atoi_like_c() {
        assert_eq!(atoi(b"1"), 1);
        assert_eq!(atoi(b" 12abc"), 12);
        assert_eq!(atoi(b"-3"), -3);
        assert_eq!(atoi(b"abc"), 0);
        assert_eq!(atoi(b""), 0);
    }

    #[test]
    fn attributes_are_skipped() {
        let f = debug_protocol(true, b"attrib");
        assert_eq!(
            frame_to_out(f),
            Out::Bulk(b"Some real reply following the attribute".to_vec())
        );
    }
}
