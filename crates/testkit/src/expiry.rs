//! A workload for "replay after the TTLs have passed" (issue 13, item 1).
//!
//! Problem: a log written at time `t` and replayed after `t + ttl` must give the state redis-server
//! 7.0.15 gives when it loads the same log: while loading, Redis never deletes a key because its
//! expiry is past (`checkAlreadyExpired` and `keyIsExpired` are false while `server.loading`), so
//! `INCR rate; PEXPIRE rate 1500; INCR rate` loaded three seconds later holds `rate` with the past
//! expiry, the second INCR applies to it, and the key then expires. A loader that deletes the key
//! at the `PEXPIREAT` resurrects it at the next INCR as `"1"` with no TTL.
//!
//! [`SCRIPT`] writes, for every type, a key, gives it a short TTL, and writes to it again (each
//! write keeps or clears the TTL as Redis's command does); a few keys are persisted or given a far
//! TTL afterwards and must survive. Run it with a clock set in the past (tests use
//! [`SCRIPT_CLOCK_OFFSET_MS`] before the wall clock, advancing [`SCRIPT_STEP_MS`] per command) so
//! every short TTL has passed by the time the log is loaded.
//!
//! [`SURVIVORS`] is the model: the keys (db, name) that are live after the load. It is written by
//! hand from Redis's documented semantics, independently of forkless's code; the tests also
//! compare whole keyspaces with redis-server loading the same files.

/// How far behind the wall clock the script's clock starts (ms).
pub const SCRIPT_CLOCK_OFFSET_MS: i64 = 120_000;
/// How far the script's clock moves between two commands (ms).
pub const SCRIPT_STEP_MS: i64 = 1;

/// The commands (executed in order, in one session starting at db 0).
pub const SCRIPT: &[&[&str]] = &[
    // The example: the second INCR must apply to the key with its (past) TTL.
    &["INCR", "rate"],
    &["PEXPIRE", "rate", "1500"],
    &["INCR", "rate"],
    // Strings: APPEND / SETRANGE / INCRBY / INCRBYFLOAT / SET KEEPTTL keep the TTL.
    &["SET", "s:append", "v"],
    &["EXPIRE", "s:append", "10"],
    &["APPEND", "s:append", "x"],
    &["SET", "s:range", "hello"],
    &["PEXPIRE", "s:range", "50"],
    &["SETRANGE", "s:range", "0", "J"],
    &["SET", "s:incrby", "1", "EX", "10"],
    &["INCRBY", "s:incrby", "5"],
    &["SET", "s:float", "1.5", "PX", "10000"],
    &["INCRBYFLOAT", "s:float", "2"],
    &["SET", "s:keepttl", "v"],
    &["EXPIRE", "s:keepttl", "10"],
    &["SET", "s:keepttl", "w", "KEEPTTL"],
    &["SET", "s:getex", "v"],
    &["GETEX", "s:getex", "PX", "20"],
    &["APPEND", "s:getex", "w"],
    // Lists, hashes, sets, sorted sets: element writes keep the TTL.
    &["RPUSH", "l:rpush", "a", "b"],
    &["EXPIRE", "l:rpush", "10"],
    &["RPUSH", "l:rpush", "c"],
    &["LPUSH", "l:lpop", "a", "b"],
    &["EXPIRE", "l:lpop", "10"],
    &["LPOP", "l:lpop"],
    &["HSET", "h:incr", "f", "1"],
    &["EXPIRE", "h:incr", "10"],
    &["HINCRBY", "h:incr", "f", "2"],
    &["SADD", "set:add", "a"],
    &["EXPIRE", "set:add", "10"],
    &["SADD", "set:add", "b"],
    &["ZADD", "z:incr", "1", "a"],
    &["EXPIRE", "z:incr", "10"],
    &["ZINCRBY", "z:incr", "2", "a"],
    // A rename carries the TTL to the new name.
    &["SET", "ren:src", "v"],
    &["EXPIRE", "ren:src", "10"],
    &["RENAME", "ren:src", "ren:dst"],
    // An absolute expiry already in the past when written deletes the key (propagated as DEL).
    &["SET", "past", "v"],
    &["PEXPIREAT", "past", "1000"],
    &["SET", "past:after", "v"],
    &["PEXPIREAT", "past:after", "1000"],
    &["INCR", "past:after:counter"],
    // Survivors: persisted, overwritten without TTL, or given a far TTL before loading.
    &["SET", "keep:persist", "v"],
    &["EXPIRE", "keep:persist", "10"],
    &["PERSIST", "keep:persist"],
    &["APPEND", "keep:persist", "w"],
    &["SET", "keep:overwrite", "v"],
    &["EXPIRE", "keep:overwrite", "10"],
    &["SET", "keep:overwrite", "new"],
    &["RPUSH", "keep:list", "a"],
    &["PEXPIRE", "keep:list", "10"],
    &["PERSIST", "keep:list"],
    &["RPUSH", "keep:list", "b"],
    &["HSET", "keep:hash", "f", "v"],
    &["PEXPIRE", "keep:hash", "10"],
    &["HSET", "keep:hash", "g", "w"],
    &["PERSIST", "keep:hash"],
    &["ZADD", "keep:far", "1", "a"],
    &["EXPIRE", "keep:far", "10"],
    &["EXPIRE", "keep:far", "100000000"],
    &["ZADD", "keep:far", "2", "b"],
    // A second database.
    &["SELECT", "1"],
    &["SADD", "db1:set", "a"],
    &["EXPIRE", "db1:set", "10"],
    &["SADD", "db1:set", "b"],
    &["SET", "db1:keep", "1"],
    &["EXPIRE", "db1:keep", "10"],
    &["PERSIST", "db1:keep"],
    &["INCR", "db1:keep"],
    &["SELECT", "0"],
];

/// The keys live after loading the script's log once every short TTL has passed (the model).
pub const SURVIVORS: &[(u32, &str)] = &[
    (0, "keep:far"),
    (0, "keep:hash"),
    (0, "keep:list"),
    (0, "keep:overwrite"),
    (0, "keep:persist"),
    (0, "past:after:counter"),
    (1, "db1:keep"),
];

/// The wall clock (Unix ms).
pub fn wall_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// `(db, key)` of each entry, for comparing with [`SURVIVORS`].
pub fn live_keys(entries: &[forkless_rdb::model::Entry]) -> Vec<(u32, String)> {
    let mut v: Vec<(u32, String)> = entries
        .iter()
        .map(|e| (e.db, String::from_utf8_lossy(&e.key).into_owned()))
        .collect();
    v.sort();
    v
}

/// [`SURVIVORS`] in the form [`live_keys`] returns.
pub fn survivors() -> Vec<(u32, String)> {
    let mut v: Vec<(u32, String)> = SURVIVORS.iter().map(|&(d, k)| (d, k.to_string())).collect();
    v.sort();
    v
}
