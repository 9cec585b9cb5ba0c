//! List commands: replies, error paths and propagation, one scripted session checked step by
//! step. The expected replies (as `support::show` prints them) and the propagated commands
//! (MULTI/EXEC and SELECT left out) were recorded from redis-server 7.0.15 with
//! `appendfsync always`: each step's reply and what it appended to the AOF.

use crate::session;

use session::run;

#[test]
fn lists_session_matches_redis_7_0() {
    run(&[
        ("SET str x", "+OK", "SET str x"),
        ("LPUSH l a b c", ":3", "LPUSH l a b c"),
        ("RPUSH l d e", ":5", "RPUSH l d e"),
        (
            "LPUSH str a",
            "-WRONGTYPE Operation against a key holding the wrong kind of value",
            "",
        ),
        ("LPUSHX nokey a", ":0", ""),
        ("RPUSHX nokey a", ":0", ""),
        ("LPUSHX l z", ":6", "LPUSHX l z"),
        ("RPUSHX l y", ":7", "RPUSHX l y"),
        (
            "LPUSHX str a",
            "-WRONGTYPE Operation against a key holding the wrong kind of value",
            "",
        ),
        (
            "LRANGE l 0 -1",
            "[\"z\", \"c\", \"b\", \"a\", \"d\", \"e\", \"y\"]",
            "",
        ),
        (
            "LRANGE l -100 100",
            "[\"z\", \"c\", \"b\", \"a\", \"d\", \"e\", \"y\"]",
            "",
        ),
        ("LRANGE l 5 2", "[]", ""),
        (
            "LRANGE l x 1",
            "-ERR value is not an integer or out of range",
            "",
        ),
        ("LRANGE nokey 0 -1", "[]", ""),
        (
            "LRANGE str 0 -1",
            "-WRONGTYPE Operation against a key holding the wrong kind of value",
            "",
        ),
        ("LRANGE l 2 2", "[\"b\"]", ""),
        ("LLEN l", ":7", ""),
        ("LLEN nokey", ":0", ""),
        (
            "LLEN str",
            "-WRONGTYPE Operation against a key holding the wrong kind of value",
            "",
        ),
        ("LINDEX l 0", "\"z\"", ""),
        ("LINDEX l -1", "\"y\"", ""),
        ("LINDEX l 100", "(nil)", ""),
        (
            "LINDEX l x",
            "-ERR value is not an integer or out of range",
            "",
        ),
        ("LINDEX nokey x", "(nil)", ""),
        (
            "LINDEX str 0",
            "-WRONGTYPE Operation against a key holding the wrong kind of value",
            "",
        ),
        ("LSET l 0 A", "+OK", "LSET l 0 A"),
        ("LSET l -1 Y", "+OK", "LSET l -1 Y"),
        ("LSET l 100 v", "-ERR index out of range", ""),
        (
            "LSET l x v",
            "-ERR value is not an integer or out of range",
            "",
        ),
        ("LSET nokey 0 v", "-ERR no such key", ""),
        ("LSET nokey x v", "-ERR no such key", ""),
        (
            "LSET str 0 v",
            "-WRONGTYPE Operation against a key holding the wrong kind of value",
            "",
        ),
        ("LPOP l", "\"A\"", "LPOP l"),
        ("RPOP l", "\"Y\"", "RPOP l"),
        ("LPOP l 2", "[\"c\", \"b\"]", "LPOP l 2"),
        ("RPOP l 0", "[]", ""),
        (
            "LPOP l -1",
            "-ERR value is out of range, must be positive",
            "",
        ),
        (
            "LPOP l x",
            "-ERR value is out of range, must be positive",
            "",
        ),
        (
            "LPOP l 1 2",
            "-ERR wrong number of arguments for 'lpop' command",
            "",
        ),
        ("LPOP nokey", "(nil)", ""),
        ("LPOP nokey 2", "(nil array)", ""),
        ("LPOP nokey 0", "(nil array)", ""),
        (
            "LPOP str",
            "-WRONGTYPE Operation against a key holding the wrong kind of value",
            "",
        ),
        ("RPUSH r a b a c a", ":5", "RPUSH r a b a c a"),
        ("LREM r 0 zz", ":0", ""),
        ("LREM r -1 a", ":1", "LREM r -1 a"),
        ("LREM r 1 a", ":1", "LREM r 1 a"),
        (
            "LREM r x a",
            "-ERR value is not an integer or out of range",
            "",
        ),
        ("LREM nokey 1 a", ":0", ""),
        (
            "LREM str 1 a",
            "-WRONGTYPE Operation against a key holding the wrong kind of value",
            "",
        ),
        ("LRANGE r 0 -1", "[\"b\", \"a\", \"c\"]", ""),
        ("LREM r 0 a", ":1", "LREM r 0 a"),
        ("LINSERT r BEFORE b x", ":3", "LINSERT r BEFORE b x"),
        ("LINSERT r after c y", ":4", "LINSERT r after c y"),
        ("LINSERT r before zz y", ":-1", ""),
        ("LINSERT r middle b y", "-ERR syntax error", ""),
        ("LINSERT nokey before a b", ":0", ""),
        (
            "LINSERT str before a b",
            "-WRONGTYPE Operation against a key holding the wrong kind of value",
            "",
        ),
        ("LRANGE r 0 -1", "[\"x\", \"b\", \"c\", \"y\"]", ""),
        ("LTRIM r 0 -1", "+OK", ""),
        ("LTRIM r 1 2", "+OK", "LTRIM r 1 2"),
        (
            "LTRIM r x 1",
            "-ERR value is not an integer or out of range",
            "",
        ),
        ("LTRIM nokey 0 1", "+OK", ""),
        (
            "LTRIM str 0 1",
            "-WRONGTYPE Operation against a key holding the wrong kind of value",
            "",
        ),
        ("LRANGE r 0 -1", "[\"b\", \"c\"]", ""),
        ("LTRIM r 5 10", "+OK", "LTRIM r 5 10"),
        ("EXISTS r", ":0", ""),
        ("RPUSH m 1 2 3", ":3", "RPUSH m 1 2 3"),
        ("LMOVE m n LEFT RIGHT", "\"1\"", "LMOVE m n LEFT RIGHT"),
        ("LMOVE m n right left", "\"3\"", "LMOVE m n right left"),
        ("LMOVE m m left right", "\"2\"", "LMOVE m m left right"),
        ("LMOVE m n up left", "-ERR syntax error", ""),
        ("LMOVE nokey n left left", "(nil)", ""),
        (
            "LMOVE m str left left",
            "-WRONGTYPE Operation against a key holding the wrong kind of value",
            "",
        ),
        (
            "LMOVE str m left left",
            "-WRONGTYPE Operation against a key holding the wrong kind of value",
            "",
        ),
        ("LRANGE m 0 -1", "[\"2\"]", ""),
        ("LRANGE n 0 -1", "[\"3\", \"1\"]", ""),
        ("RPOPLPUSH n m", "\"1\"", "RPOPLPUSH n m"),
        ("RPOPLPUSH nokey m", "(nil)", ""),
        ("RPOPLPUSH n n", "\"3\"", "RPOPLPUSH n n"),
        (
            "RPOPLPUSH n str",
            "-WRONGTYPE Operation against a key holding the wrong kind of value",
            "",
        ),
        ("LRANGE n 0 -1", "[\"3\"]", ""),
        (
            "LPUSH",
            "-ERR wrong number of arguments for 'lpush' command",
            "",
        ),
        (
            "LPOP",
            "-ERR wrong number of arguments for 'lpop' command",
            "",
        ),
    ]);
}
