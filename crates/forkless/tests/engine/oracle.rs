//! The option table's defaults against redis-server 7.0.15 itself (`CONFIG GET` of a server
//! started with no config file): every Redis option we list exists there, under the same name,
//! with the same default, except the documented differences.

use forkless::config::Kind;
use forkless::{Config, OPTIONS};
use forkless_testkit::{RedisServer, Reply, ReplyExt, TempDir};

/// forkless's own options (unknown to Redis).
const OURS: &[&str] = &[
    "persistence",
    "snapshot-mode",
    "segments-dirname",
    "segment-bytes",
    "segment-age",
    "keep-snapshots",
    "keep-segment-bytes",
    "aof-history-generations",
    "aof-on-error",
    "shards",
];

/// Set by the oracle's command line (testkit) or different on purpose.
const DIFFERENT: &[(&str, &str)] = &[
    ("dir", "the engine's directory"),
    ("port", "the oracle's free port"),
    ("save", "the oracle runs with save \"\""),
    ("logfile", "the oracle logs to a file"),
    (
        "bind",
        "redis-server's built-in default is \"* -::*\"; forkless uses redis.conf's shipped loopback value",
    ),
];

#[test]
fn defaults_match_redis_server_7_0_15() {
    let tmp = TempDir::new("engine-config-oracle");
    let Some(redis) = RedisServer::start(tmp.path(), &[]) else {
        return;
    };
    let ours = Config::default();
    let mut checked = 0;
    let mut bad = Vec::new();
    for s in OPTIONS {
        if OURS.contains(&s.name) {
            continue;
        }
        let reply = redis.call(&[b"CONFIG", b"GET", s.name.as_bytes()]).array();
        if reply.len() != 2 {
            bad.push(format!(
                "redis-server 7.0.15 does not know option '{}'",
                s.name
            ));
            continue;
        }
        if DIFFERENT.iter().any(|(n, _)| *n == s.name) {
            continue;
        }
        let theirs = String::from_utf8_lossy(&reply[1].bytes()).into_owned();
        let mine = ours.get(s.name).unwrap();
        if mine != theirs {
            bad.push(format!(
                "{}: ours {mine:?}, redis-server {theirs:?}",
                s.name
            ));
        }
        if let Some(a) = s.alias {
            let r = redis.call(&[b"CONFIG", b"GET", a.as_bytes()]).array();
            if r.len() != 2 {
                bad.push(format!("redis-server 7.0.15 does not know alias '{a}'"));
            }
        }
        // Redis accepts our rendering back (CONFIG SET of the default value) for mutable ones
        // (protected configs need enable-protected-configs there).
        if s.mutable && !matches!(s.kind, Kind::ReplicaOf) {
            if let Reply::Error(e) =
                redis.call(&[b"CONFIG", b"SET", s.name.as_bytes(), mine.as_bytes()])
            {
                let e = String::from_utf8_lossy(&e).into_owned();
                if !e.contains("protected config") {
                    bad.push(format!(
                        "redis-server refuses CONFIG SET {} {mine:?}: {e}",
                        s.name
                    ));
                }
            }
        }
        checked += 1;
    }
    assert!(
        bad.is_empty(),
        "differences from redis-server 7.0.15:\n{}",
        bad.join("\n")
    );
    assert!(checked > 80, "{checked}");
}
