//! Key commands: replies and error paths (expected replies as redis-cli 7.0.15 shows them, via
//! `support::show`), expiry with a manual clock, databases.

use crate::support;

use forkless_keyspace::{Config, Keyspace, ManualClock, Session};
use forkless_testkit::ReplyExt;

const T0: i64 = 1_700_000_000_000;

fn check(ks: &Keyspace, s: &mut Session, table: &[(&str, &str)]) {
    for (cmd, want) in table {
        let argv: Vec<&[u8]> = cmd.split(' ').map(str::as_bytes).collect();
        let got = if argv[0] == b"LPUSH" {
            support::make_list(ks, s.db, argv[1], argv[2])
        } else {
            support::show(&support::to_resp(&ks.execute(s, &argv)))
        };
        assert_eq!(&got, want, "`{cmd}` (db {})", s.db);
    }
}

fn fresh() -> (Keyspace, ManualClock, Session) {
    let clock = ManualClock::new(T0);
    let ks = Keyspace::new(
        Config {
            shards: 8,
            ..Config::seeded(5)
        }
        .with_clock(clock.clock()),
    );
    (ks, clock, Session::default())
}

#[test]
fn del_exists_type() {
    let (ks, _c, mut s) = fresh();
    check(
        &ks,
        &mut s,
        &[
            ("MSET a 1 b 2 c 3", "+OK"),
            ("EXISTS a b nope a", ":3"),
            ("DEL a nope", ":1"),
            ("UNLINK b c", ":2"),
            ("DEL a", ":0"),
            ("TYPE a", "+none"),
            ("SET a 1", "+OK"),
            ("TYPE a", "+string"),
            ("LPUSH l x", ":1"),
            ("TYPE l", "+list"),
            ("DEL", "-ERR wrong number of arguments for 'del' command"),
        ],
    );
}

#[test]
fn expire_family() {
    let (ks, clock, mut s) = fresh();
    check(
        &ks,
        &mut s,
        &[
            ("SET k v", "+OK"),
            ("TTL k", ":-1"),
            ("PTTL k", ":-1"),
            ("EXPIRETIME k", ":-1"),
            ("TTL nope", ":-2"),
            ("PEXPIRETIME nope", ":-2"),
            ("EXPIRE nope 10", ":0"),
            ("EXPIRE k 10", ":1"),
            ("PTTL k", ":10000"),
            ("EXPIRETIME k", ":1700000010"),
            ("PEXPIRETIME k", ":1700000010000"),
            ("EXPIRE k 5 NX", ":0"),
            ("EXPIRE k 5 XX", ":1"),
            ("EXPIRE k 50 LT", ":0"),
            ("EXPIRE k 1 LT", ":1"),
            ("EXPIRE k 1 GT", ":0"),
            ("EXPIRE k 100 GT", ":1"),
            ("TTL k", ":100"),
            ("PERSIST k", ":1"),
            ("PERSIST k", ":0"),
            ("EXPIRE k 100 GT", ":0"),
            ("EXPIRE k 100 LT", ":1"),
            ("PERSIST nope", ":0"),
            ("PEXPIRE k 1500", ":1"),
            ("TTL k", ":2"),
            ("EXPIREAT k 1700000200", ":1"),
            ("TTL k", ":200"),
            ("PEXPIREAT k 1700000000100", ":1"),
            ("PTTL k", ":100"),
            (
                "EXPIRE k 10 NX XX",
                "-ERR NX and XX, GT or LT options at the same time are not compatible",
            ),
            (
                "EXPIRE k 10 GT LT",
                "-ERR GT and LT options at the same time are not compatible",
            ),
            ("EXPIRE k 10 FOO", "-ERR Unsupported option FOO"),
            ("EXPIRE k x", "-ERR value is not an integer or out of range"),
            (
                "EXPIRE k 9223372036854775807",
                "-ERR invalid expire time in 'expire' command",
            ),
            (
                "PEXPIRE k 9223372036854775807",
                "-ERR invalid expire time in 'pexpire' command",
            ),
            (
                "EXPIRE k",
                "-ERR wrong number of arguments for 'expire' command",
            ),
            ("EXPIRE k -1", ":1"),
            ("EXISTS k", ":0"),
            ("SET k v", "+OK"),
            ("EXPIREAT k 1", ":1"),
            ("EXISTS k", ":0"),
            ("SET k v PX 100", "+OK"),
        ],
    );
    clock.advance(100);
    check(&ks, &mut s, &[("PTTL k", ":0"), ("EXISTS k", ":1")]);
    clock.advance(1);
    check(
        &ks,
        &mut s,
        &[("PTTL k", ":-2"), ("EXISTS k", ":0"), ("DBSIZE", ":0")],
    );
}

#[test]
fn rename_copy_move() {
    let (ks, _c, mut s) = fresh();
    check(
        &ks,
        &mut s,
        &[
            ("RENAME nope x", "-ERR no such key"),
            ("RENAMENX nope x", "-ERR no such key"),
            ("SET a 1 EX 100", "+OK"),
            ("RENAME a a", "+OK"),
            ("RENAMENX a a", ":0"),
            ("RENAME a b", "+OK"),
            ("EXISTS a", ":0"),
            ("TTL b", ":100"),
            ("SET c 3", "+OK"),
            ("RENAMENX b c", ":0"),
            ("RENAME b c", "+OK"),
            ("GET c", "\"1\""),
            ("TTL c", ":100"),
            ("RENAMENX c d", ":1"),
            ("COPY d e", ":1"),
            ("TTL e", ":100"),
            ("COPY d e", ":0"),
            ("SET d 2", "+OK"),
            ("COPY d e REPLACE", ":1"),
            ("GET e", "\"2\""),
            ("TTL e", ":-1"),
            (
                "COPY d d",
                "-ERR source and destination objects are the same",
            ),
            ("COPY d d DB 1", ":1"),
            ("COPY d x DB 16", "-ERR DB index is out of range"),
            (
                "COPY d x DB x",
                "-ERR value is not an integer or out of range",
            ),
            ("COPY d x BOGUS", "-ERR syntax error"),
            ("COPY nope x", ":0"),
            (
                "MOVE d 0",
                "-ERR source and destination objects are the same",
            ),
            ("MOVE d 1", ":0"),
            ("MOVE e 1", ":1"),
            ("EXISTS e", ":0"),
            ("MOVE nope 1", ":0"),
            ("MOVE d 16", "-ERR DB index is out of range"),
            ("MOVE d x", "-ERR value is not an integer or out of range"),
            ("SELECT 1", "+OK"),
            ("MGET d e", "[\"2\", \"2\"]"),
            ("SELECT 16", "-ERR DB index is out of range"),
            ("SELECT x", "-ERR value is not an integer or out of range"),
            ("DBSIZE", ":2"),
        ],
    );
    assert_eq!(s.db, 1);
}

#[test]
fn databases_swap_flush() {
    let (ks, _c, mut s) = fresh();
    check(
        &ks,
        &mut s,
        &[
            ("SET a 0", "+OK"),
            ("SELECT 2", "+OK"),
            ("MSET a 2 b 2", "+OK"),
            ("SWAPDB 0 2", "+OK"),
            ("DBSIZE", ":1"),
            ("GET a", "\"0\""),
            ("SWAPDB 0 16", "-ERR DB index is out of range"),
            ("SWAPDB x 1", "-ERR invalid first DB index"),
            ("SWAPDB 1 x", "-ERR invalid second DB index"),
            ("FLUSHDB", "+OK"),
            ("DBSIZE", ":0"),
            ("SELECT 0", "+OK"),
            ("DBSIZE", ":2"),
            ("FLUSHDB BOGUS", "-ERR syntax error"),
            ("FLUSHALL ASYNC", "+OK"),
            ("DBSIZE", ":0"),
            ("FLUSHALL SYNC", "+OK"),
        ],
    );
}

#[test]
fn keys_scan_randomkey() {
    let (ks, clock, mut s) = fresh();
    check(
        &ks,
        &mut s,
        &[
            ("RANDOMKEY", "(nil)"),
            ("SCAN 0", "[\"0\", []]"),
            ("KEYS *", "[]"),
        ],
    );
    for i in 0..300 {
        check(&ks, &mut s, &[(&format!("SET key:{i} v"), "+OK")]);
    }
    check(
        &ks,
        &mut s,
        &[("SET gone v PX 10", "+OK"), ("LPUSH l x", ":1")],
    );
    clock.advance(11);
    let keys = |pat: &str| {
        let r = ks.execute(&mut Session::default(), &[b"KEYS", pat.as_bytes()]);
        match support::to_resp(&r) {
            forkless_testkit::Reply::Array(a) => a.len(),
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(keys("*"), 301);
    assert_eq!(keys("key:1?"), 10);
    assert_eq!(keys("key:[12]"), 2);
    assert_eq!(keys("nomatch*"), 0);
    // SCAN with small counts visits every key exactly once when the table does not change.
    let mut seen = std::collections::HashSet::new();
    let mut cursor = "0".to_string();
    let mut calls = 0;
    loop {
        let argv: Vec<&[u8]> = vec![b"SCAN", cursor.as_bytes(), b"COUNT", b"7"];
        let r = support::to_resp(&ks.execute(&mut s, &argv));
        let a = r.array();
        cursor = String::from_utf8(a[0].bytes()).unwrap();
        for k in a[1].array() {
            assert!(seen.insert(k.bytes()), "duplicate without resize");
        }
        calls += 1;
        if cursor == "0" {
            break;
        }
        assert!(calls < 1000);
    }
    assert_eq!(seen.len(), 301);
    assert!(calls > 10, "COUNT bounds the work per call ({calls} calls)");
    check(
        &ks,
        &mut s,
        &[
            ("SCAN 0 COUNT 1000 TYPE list", "[\"0\", [\"l\"]]"),
            ("SCAN 0 COUNT 1000 MATCH l", "[\"0\", [\"l\"]]"),
            ("SCAN x", "-ERR invalid cursor"),
            ("SCAN 0 COUNT 0", "-ERR syntax error"),
            (
                "SCAN 0 COUNT x",
                "-ERR value is not an integer or out of range",
            ),
            ("SCAN 0 FOO", "-ERR syntax error"),
            ("SCAN 0 MATCH", "-ERR syntax error"),
        ],
    );
    for _ in 0..50 {
        let r = support::to_resp(&ks.execute(&mut s, &[b"RANDOMKEY"]));
        let k = r.bytes();
        assert!(k.starts_with(b"key:") || k == b"l", "{k:?}");
    }
}
