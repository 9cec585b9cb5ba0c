//! String commands: replies and error paths, one table per command family (expected replies
//! as redis-cli 7.0.15 shows them, printed by `support::show`). Expiry uses a manual clock.

use crate::support;

use forkless_keyspace::{Config, Keyspace, ManualClock, Session};

const T0: i64 = 1_700_000_000_000;

fn check(ks: &Keyspace, s: &mut Session, table: &[(&str, &str)]) {
    for (cmd, want) in table {
        let argv: Vec<&[u8]> = if cmd.is_empty() {
            vec![]
        } else {
            cmd.split(' ').map(str::as_bytes).collect()
        };
        let got = if argv.first() == Some(&&b"LPUSH"[..]) && argv.len() == 3 {
            support::make_list(ks, s.db, argv[1], argv[2])
        } else {
            support::show(&support::to_resp(&ks.execute(s, &argv)))
        };
        assert_eq!(&got, want, "`{cmd}`");
    }
}

fn fresh() -> (Keyspace, ManualClock, Session) {
    let clock = ManualClock::new(T0);
    let ks = Keyspace::new(Config::seeded(3).with_clock(clock.clock()));
    (ks, clock, Session::default())
}

const WRONGTYPE: &str = "-WRONGTYPE Operation against a key holding the wrong kind of value";

#[test]
fn set_options() {
    let (ks, clock, mut s) = fresh();
    check(
        &ks,
        &mut s,
        &[
            ("SET k v", "+OK"),
            ("GET k", "\"v\""),
            ("SET k w NX", "(nil)"),
            ("SET n w XX", "(nil)"),
            ("SET k w XX", "+OK"),
            ("SET k x GET", "\"w\""),
            ("SET new x NX GET", "(nil)"),
            ("SET k y NX GET", "\"x\""),
            ("SET k v EX 10", "+OK"),
            ("PTTL k", ":10000"),
            ("SET k v2 KEEPTTL", "+OK"),
            ("PTTL k", ":10000"),
            ("SET k v3", "+OK"),
            ("PTTL k", ":-1"),
            ("SET k v PX 1500", "+OK"),
            ("TTL k", ":2"),
            ("SET k v EXAT 1700000100", "+OK"),
            ("TTL k", ":100"),
            ("SET k v PXAT 1700000000500", "+OK"),
            ("PTTL k", ":500"),
            ("SET k v NX XX", "-ERR syntax error"),
            ("SET k v EX 1 PX 1", "-ERR syntax error"),
            ("SET k v EX 1 KEEPTTL", "-ERR syntax error"),
            ("SET k v EX", "-ERR syntax error"),
            ("SET k v BOGUS", "-ERR syntax error"),
            ("SET k v EX 0", "-ERR invalid expire time in 'set' command"),
            ("SET k v PX -1", "-ERR invalid expire time in 'set' command"),
            (
                "SET k v EX x",
                "-ERR value is not an integer or out of range",
            ),
            (
                "SET k v EX 9223372036854775",
                "-ERR invalid expire time in 'set' command",
            ),
            ("SET k", "-ERR wrong number of arguments for 'set' command"),
            ("LPUSH l a", ":1"),
            ("SET l v GET", WRONGTYPE),
            ("GET l", WRONGTYPE),
            ("SET l v", "+OK"),
            ("GET l", "\"v\""),
        ],
    );
    clock.advance(600);
    check(&ks, &mut s, &[("GET k", "(nil)"), ("EXISTS k", ":0")]);
}

#[test]
fn setnx_setex_psetex_getset_getdel() {
    let (ks, _clock, mut s) = fresh();
    check(
        &ks,
        &mut s,
        &[
            ("SETNX a 1", ":1"),
            ("SETNX a 2", ":0"),
            ("SETEX b 100 v", "+OK"),
            ("TTL b", ":100"),
            ("SETEX b 0 v", "-ERR invalid expire time in 'setex' command"),
            (
                "SETEX b x v",
                "-ERR value is not an integer or out of range",
            ),
            ("PSETEX c 1000 v", "+OK"),
            ("PTTL c", ":1000"),
            (
                "PSETEX c -5 v",
                "-ERR invalid expire time in 'psetex' command",
            ),
            ("GETSET b new", "\"v\""),
            ("TTL b", ":-1"),
            ("GETSET nope x", "(nil)"),
            ("GETDEL b", "\"new\""),
            ("GETDEL b", "(nil)"),
            ("LPUSH l a", ":1"),
            ("GETSET l x", WRONGTYPE),
            ("GETDEL l", WRONGTYPE),
        ],
    );
}

#[test]
fn getex() {
    let (ks, _clock, mut s) = fresh();
    check(
        &ks,
        &mut s,
        &[
            ("SET k v", "+OK"),
            ("GETEX k", "\"v\""),
            ("TTL k", ":-1"),
            ("GETEX k EX 100", "\"v\""),
            ("TTL k", ":100"),
            ("GETEX k PERSIST", "\"v\""),
            ("TTL k", ":-1"),
            ("GETEX k PX 2000", "\"v\""),
            ("PTTL k", ":2000"),
            ("GETEX k EXAT 1700000100", "\"v\""),
            ("TTL k", ":100"),
            ("GETEX k PXAT 1", "\"v\""),
            ("EXISTS k", ":0"),
            ("GETEX nope EX -5", "(nil)"),
            ("SET k v", "+OK"),
            (
                "GETEX k EX -5",
                "-ERR invalid expire time in 'getex' command",
            ),
            ("GETEX k EX 1 PERSIST", "-ERR syntax error"),
            ("GETEX k KEEPTTL", "-ERR syntax error"),
            ("GETEX k NX", "-ERR syntax error"),
            ("LPUSH l a", ":1"),
            ("GETEX l", WRONGTYPE),
        ],
    );
}

#[test]
fn mset_msetnx_mget() {
    let (ks, _clock, mut s) = fresh();
    check(
        &ks,
        &mut s,
        &[
            ("MSET a 1 b 2", "+OK"),
            ("MGET a b c", "[\"1\", \"2\", (nil)]"),
            (
                "MSET a 1 b",
                "-ERR wrong number of arguments for 'mset' command",
            ),
            ("MSETNX a 5 z 6", ":0"),
            ("GET z", "(nil)"),
            ("MSETNX y 5 z 6", ":1"),
            ("MGET y z", "[\"5\", \"6\"]"),
            ("LPUSH l a", ":1"),
            ("MGET l a", "[(nil), \"1\"]"),
            ("MSET l x", "+OK"),
            ("GET l", "\"x\""),
        ],
    );
}

#[test]
fn append_strlen_setrange_getrange() {
    let (ks, _clock, mut s) = fresh();
    check(
        &ks,
        &mut s,
        &[
            ("APPEND k Hello", ":5"),
            ("APPEND k World", ":10"),
            ("STRLEN k", ":10"),
            ("STRLEN nope", ":0"),
            ("GETRANGE k 0 4", "\"Hello\""),
            ("GETRANGE k -5 -1", "\"World\""),
            ("GETRANGE k 5 100", "\"World\""),
            ("GETRANGE k -1 -5", "\"\""),
            ("GETRANGE k 7 3", "\"\""),
            ("GETRANGE nope 0 -1", "\"\""),
            (
                "GETRANGE k x 1",
                "-ERR value is not an integer or out of range",
            ),
            ("SETRANGE k 5 !!", ":10"),
            ("GET k", "\"Hello!!rld\""),
            ("SETRANGE n 3 ab", ":5"),
            ("GET n", "\"\\0\\0\\0ab\""),
            ("SETRANGE z 3 ", ":0"),
            ("EXISTS z", ":0"),
            ("SETRANGE k 100 ", ":10"),
            ("SETRANGE k -1 x", "-ERR offset is out of range"),
            (
                "SETRANGE k 536870911 xx",
                "-ERR string exceeds maximum allowed size (proto-max-bulk-len)",
            ),
            (
                "SETRANGE k x x",
                "-ERR value is not an integer or out of range",
            ),
            ("LPUSH l a", ":1"),
            ("APPEND l x", WRONGTYPE),
            ("STRLEN l", WRONGTYPE),
            ("SETRANGE l 0 x", WRONGTYPE),
            ("GETRANGE l 0 1", WRONGTYPE),
        ],
    );
}

#[test]
fn incr_family() {
    let (ks, clock, mut s) = fresh();
    check(
        &ks,
        &mut s,
        &[
            ("INCR n", ":1"),
            ("INCRBY n 10", ":11"),
            ("DECR n", ":10"),
            ("DECRBY n 20", ":-10"),
            ("SET n 9223372036854775806", "+OK"),
            ("INCR n", ":9223372036854775807"),
            ("INCR n", "-ERR increment or decrement would overflow"),
            (
                "DECRBY n -9223372036854775808",
                "-ERR decrement would overflow",
            ),
            ("INCRBY n x", "-ERR value is not an integer or out of range"),
            ("SET s abc", "+OK"),
            ("INCR s", "-ERR value is not an integer or out of range"),
            ("SET s 01", "+OK"),
            ("INCR s", "-ERR value is not an integer or out of range"),
            ("SET t 5 EX 100", "+OK"),
            ("INCR t", ":6"),
            ("TTL t", ":100"),
            ("INCRBYFLOAT f 1.5", "\"1.5\""),
            ("INCRBYFLOAT f 0.25", "\"1.75\""),
            ("INCRBYFLOAT f -1.75", "\"0\""),
            ("INCRBYFLOAT f 1e3", "\"1000\""),
            ("INCRBYFLOAT f abc", "-ERR value is not a valid float"),
            ("INCRBYFLOAT s 1", "\"2\""),
            ("SET s abc", "+OK"),
            ("INCRBYFLOAT s 1", "-ERR value is not a valid float"),
            (
                "INCRBYFLOAT f inf",
                "-ERR increment would produce NaN or Infinity",
            ),
            ("INCRBYFLOAT t 0.5", "\"6.5\""),
            ("TTL t", ":100"),
            ("LPUSH l a", ":1"),
            ("INCR l", WRONGTYPE),
            ("INCRBYFLOAT l 1", WRONGTYPE),
        ],
    );
    clock.advance(100_001);
    check(&ks, &mut s, &[("INCR t", ":1"), ("TTL t", ":-1")]);
}

#[test]
fn dispatcher_errors() {
    let (ks, _clock, mut s) = fresh();
    check(
        &ks,
        &mut s,
        &[
            (
                "NOSUCH a b",
                "-ERR unknown command 'NOSUCH', with args beginning with: 'a' 'b' ",
            ),
            (
                "nosuch",
                "-ERR unknown command 'nosuch', with args beginning with: ",
            ),
            ("GET", "-ERR wrong number of arguments for 'get' command"),
            (
                "get a b",
                "-ERR wrong number of arguments for 'get' command",
            ),
            ("", "-ERR empty command"),
            ("PING", "+PONG"),
            ("ping hi", "\"hi\""),
            ("ECHO x", "\"x\""),
        ],
    );
}
