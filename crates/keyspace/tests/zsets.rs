//! Sorted-set commands: replies, error paths and propagation, one scripted session checked step by
//! step. The expected replies (as `support::show` prints them) and the propagated commands
//! (MULTI/EXEC and SELECT left out) were recorded from redis-server 7.0.15 with
//! `appendfsync always`: each step's reply and what it appended to the AOF.

mod support;

use forkless_keyspace::{Config, Session};

/// `(command, reply, propagated)`: arguments split on spaces (`""` is the empty string, `\s`
/// a space); propagated commands joined by ` | `, empty when nothing is propagated.
type Step = (&'static str, &'static str, &'static str);

fn run(steps: &[Step]) {
    let (ks, sink) = support::keyspace_with_sink(Config::seeded(7));
    let mut s = Session::default();
    for (i, (cmd, want, want_prop)) in steps.iter().enumerate() {
        let args: Vec<Vec<u8>> = cmd
            .split(' ')
            .map(|a| {
                if a == "\"\"" {
                    Vec::new()
                } else {
                    a.replace("\\s", " ").into_bytes()
                }
            })
            .collect();
        let argv: Vec<&[u8]> = args.iter().map(|a| a.as_slice()).collect();
        sink.take();
        let got = support::show(&support::to_resp(&ks.execute(&mut s, &argv)));
        assert_eq!(got, *want, "step {i}: `{cmd}`");
        let props: Vec<String> = sink
            .take()
            .into_iter()
            .map(|(_, argv)| argv)
            .filter(|a| {
                let n = a
                    .first()
                    .map(|x| x.to_ascii_uppercase())
                    .unwrap_or_default();
                n != b"MULTI" && n != b"EXEC" && n != b"SELECT"
            })
            .map(|a| {
                a.iter()
                    .map(|x| String::from_utf8_lossy(x).into_owned())
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect();
        assert_eq!(
            props.join(" | "),
            *want_prop,
            "step {i}: `{cmd}` propagated"
        );
    }
}

#[test]
fn zsets_session_matches_redis_7_0() {
    run(&[
        ("SET str x", "+OK", "SET str x"),
        ("ZADD z 1 a 2 b 3 c", ":3", "ZADD z 1 a 2 b 3 c"),
        ("ZADD z 1 a", ":0", ""),
        ("ZADD z CH 1 a 5 b", ":1", "ZADD z CH 1 a 5 b"),
        ("ZADD z NX 9 a 4 d", ":1", "ZADD z NX 9 a 4 d"),
        ("ZADD z XX 9 a 4 e", ":0", "ZADD z XX 9 a 4 e"),
        ("ZADD z GT 0 a", ":0", ""),
        ("ZADD z LT 0 a", ":0", "ZADD z LT 0 a"),
        ("ZADD z GT CH 10 b", ":1", "ZADD z GT CH 10 b"),
        ("ZADD z NX XX 1 a", "-ERR XX and NX options at the same time are not compatible", ""),
        ("ZADD z NX GT 1 a", "-ERR GT, LT, and/or NX options at the same time are not compatible", ""),
        ("ZADD z GT LT 1 a", "-ERR GT, LT, and/or NX options at the same time are not compatible", ""),
        ("ZADD z INCR 1 a 2 b", "-ERR INCR option supports a single increment-element pair", ""),
        ("ZADD z 1 a 2", "-ERR syntax error", ""),
        ("ZADD z x a", "-ERR value is not a valid float", ""),
        ("ZADD z nan a", "-ERR value is not a valid float", ""),
        ("ZADD z 1e400 a", "-ERR value is not a valid float", ""),
        ("ZADD z \\s1 a", "-ERR value is not a valid float", ""),
        ("ZADD z 0x10 h", ":1", "ZADD z 0x10 h"),
        ("ZADD str 1 a", "-WRONGTYPE Operation against a key holding the wrong kind of value", ""),
        ("ZADD nokey XX 1 a", ":0", ""),
        ("ZADD nokey XX INCR 1 a", "(nil)", ""),
        ("EXISTS nokey", ":0", ""),
        ("ZADD z INCR 2.5 a", "\"2.5\"", "ZADD z INCR 2.5 a"),
        ("ZADD z NX INCR 1 a", "(nil)", ""),
        ("ZADD z XX INCR 1 zz", "(nil)", ""),
        ("ZADD z INCR 0 a", "\"2.5\"", ""),
        ("ZADD z inf i", ":1", "ZADD z inf i"),
        ("ZADD z INCR -inf i", "-ERR resulting score is not a number (NaN)", ""),
        ("ZINCRBY z 1 c", "\"4\"", "ZINCRBY z 1 c"),
        ("ZINCRBY z x c", "-ERR value is not a valid float", ""),
        ("ZINCRBY z 0 c", "\"4\"", ""),
        ("ZINCRBY nz 0.1 m", "\"0.10000000000000001\"", "ZINCRBY nz 0.1 m"),
        ("ZINCRBY str 1 m", "-WRONGTYPE Operation against a key holding the wrong kind of value", ""),
        ("ZSCORE z a", "\"2.5\"", ""),
        ("ZSCORE z zz", "(nil)", ""),
        ("ZSCORE nokey a", "(nil)", ""),
        ("ZSCORE str a", "-WRONGTYPE Operation against a key holding the wrong kind of value", ""),
        ("ZMSCORE z a zz b", "[\"2.5\", (nil), \"10\"]", ""),
        ("ZMSCORE nokey a", "[(nil)]", ""),
        ("ZMSCORE str a", "-WRONGTYPE Operation against a key holding the wrong kind of value", ""),
        ("ZCARD z", ":6", ""),
        ("ZCARD nokey", ":0", ""),
        ("ZCARD str", "-WRONGTYPE Operation against a key holding the wrong kind of value", ""),
        ("ZRANGE z 0 -1 WITHSCORES", "[\"a\", \"2.5\", \"c\", \"4\", \"d\", \"4\", \"b\", \"10\", \"h\", \"16\", \"i\", \"inf\"]", ""),
        ("ZRANK z a", ":0", ""),
        ("ZREVRANK z a", ":5", ""),
        ("ZRANK z zz", "(nil)", ""),
        ("ZRANK nokey a", "(nil)", ""),
        ("ZRANK str a", "-WRONGTYPE Operation against a key holding the wrong kind of value", ""),
        ("ZRANGE z 0 1", "[\"a\", \"c\"]", ""),
        ("ZRANGE z -2 -1 REV", "[\"c\", \"a\"]", ""),
        ("ZRANGE z 5 1", "[]", ""),
        ("ZRANGE z x 1", "-ERR value is not an integer or out of range", ""),
        ("ZRANGE z 0 -1 LIMIT 0 1", "-ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX", ""),
        ("ZRANGE z 0 -1 LIMIT 0 -1", "[\"a\", \"c\", \"d\", \"b\", \"h\", \"i\"]", ""),
        ("ZRANGE z 0 -1 LIMIT 0", "-ERR syntax error", ""),
        ("ZRANGE z 0 -1 BOGUS", "-ERR syntax error", ""),
        ("ZRANGE z (3 +inf BYSCORE", "[\"c\", \"d\", \"b\", \"h\", \"i\"]", ""),
        ("ZRANGE z +inf (3 BYSCORE REV WITHSCORES", "[\"i\", \"inf\", \"h\", \"16\", \"b\", \"10\", \"d\", \"4\", \"c\", \"4\"]", ""),
        ("ZRANGE z -inf +inf BYSCORE LIMIT 1 2", "[\"c\", \"d\"]", ""),
        ("ZRANGE z -inf +inf BYSCORE LIMIT -1 2", "[]", ""),
        ("ZRANGE z -inf +inf BYSCORE LIMIT 1 -1", "[\"c\", \"d\", \"b\", \"h\", \"i\"]", ""),
        ("ZRANGE z x 1 BYSCORE", "-ERR min or max is not a float", ""),
        ("ZRANGE z \"\" 3 BYSCORE", "[\"a\"]", ""),
        ("ZRANGE z (0x1 3 BYSCORE", "[\"a\"]", ""),
        ("ZRANGE z - + BYLEX WITHSCORES", "-ERR syntax error, WITHSCORES not supported in combination with BYLEX", ""),
        ("ZRANGE z 0 -1 BYLEX BYSCORE", "-ERR syntax error", ""),
        ("ZRANGE nokey 0 -1", "[]", ""),
        ("ZRANGE str 0 -1", "-WRONGTYPE Operation against a key holding the wrong kind of value", ""),
        ("ZRANGEBYSCORE z 1 5 WITHSCORES", "[\"a\", \"2.5\", \"c\", \"4\", \"d\", \"4\"]", ""),
        ("ZRANGEBYSCORE z 1 5 REV", "-ERR syntax error", ""),
        ("ZRANGEBYSCORE z -inf +inf WITHSCORES LIMIT 2 2", "[\"d\", \"4\", \"b\", \"10\"]", ""),
        ("ZREVRANGEBYSCORE z 5 1", "[\"d\", \"c\", \"a\"]", ""),
        ("ZREVRANGEBYSCORE z (5 (1 WITHSCORES", "[\"d\", \"4\", \"c\", \"4\", \"a\", \"2.5\"]", ""),
        ("ZREVRANGE z 0 1 WITHSCORES", "[\"i\", \"inf\", \"h\", \"16\"]", ""),
        ("ZREVRANGE z 0 1 LIMIT 0 1", "-ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX", ""),
        ("ZCOUNT z 1 5", ":3", ""),
        ("ZCOUNT z (1 (5", ":3", ""),
        ("ZCOUNT z -inf +inf", ":6", ""),
        ("ZCOUNT z 5 1", ":0", ""),
        ("ZCOUNT z x 1", "-ERR min or max is not a float", ""),
        ("ZCOUNT nokey x 1", "-ERR min or max is not a float", ""),
        ("ZCOUNT nokey 0 1", ":0", ""),
        ("ZCOUNT str 0 1", "-WRONGTYPE Operation against a key holding the wrong kind of value", ""),
        ("ZADD lex 0 a 0 b 0 c 0 d 0 e", ":5", "ZADD lex 0 a 0 b 0 c 0 d 0 e"),
        ("ZRANGEBYLEX lex - +", "[\"a\", \"b\", \"c\", \"d\", \"e\"]", ""),
        ("ZRANGEBYLEX lex [b (d", "[\"b\", \"c\"]", ""),
        ("ZRANGEBYLEX lex (b + LIMIT 1 1", "[\"d\"]", ""),
        ("ZREVRANGEBYLEX lex + [c", "[\"e\", \"d\", \"c\"]", ""),
        ("ZRANGEBYLEX lex b d", "-ERR min or max not valid string range item", ""),
        ("ZRANGEBYLEX lex + -", "[]", ""),
        ("ZLEXCOUNT lex [b [d", ":3", ""),
        ("ZLEXCOUNT lex - +", ":5", ""),
        ("ZLEXCOUNT lex x y", "-ERR min or max not valid string range item", ""),
        ("ZREMRANGEBYLEX lex [a (c", ":2", "ZREMRANGEBYLEX lex [a (c"),
        ("ZREMRANGEBYLEX lex [zz +", ":0", ""),
        ("ZRANGE lex 0 -1", "[\"c\", \"d\", \"e\"]", ""),
        ("ZREMRANGEBYRANK z 0 0", ":1", "ZREMRANGEBYRANK z 0 0"),
        ("ZREMRANGEBYRANK z 100 200", ":0", ""),
        ("ZREMRANGEBYRANK z x 1", "-ERR value is not an integer or out of range", ""),
        ("ZREMRANGEBYRANK nokey 0 1", ":0", ""),
        ("ZREMRANGEBYRANK str 0 1", "-WRONGTYPE Operation against a key holding the wrong kind of value", ""),
        ("ZREMRANGEBYSCORE z 100 200", ":0", ""),
        ("ZREMRANGEBYSCORE z (3 9", ":2", "ZREMRANGEBYSCORE z (3 9"),
        ("ZREMRANGEBYSCORE z x 1", "-ERR min or max is not a float", ""),
        ("ZREMRANGEBYSCORE str 0 1", "-WRONGTYPE Operation against a key holding the wrong kind of value", ""),
        ("ZRANGE z 0 -1 WITHSCORES", "[\"b\", \"10\", \"h\", \"16\", \"i\", \"inf\"]", ""),
        ("ZREM z zz", ":0", ""),
        ("ZREM z d zz", ":0", ""),
        ("ZREM nokey a", ":0", ""),
        ("ZREM str a", "-WRONGTYPE Operation against a key holding the wrong kind of value", ""),
        ("ZPOPMIN z", "[\"b\", \"10\"]", "ZPOPMIN z"),
        ("ZPOPMAX z 2", "[\"i\", \"inf\", \"h\", \"16\"]", "ZPOPMAX z 2"),
        ("ZPOPMIN z 0", "[]", ""),
        ("ZPOPMIN z -1", "-ERR value is out of range, must be positive", ""),
        ("ZPOPMIN z x", "-ERR value is out of range, must be positive", ""),
        ("ZPOPMIN z 1 2", "-ERR syntax error", ""),
        ("ZPOPMIN nokey", "[]", ""),
        ("ZPOPMIN nokey 0", "[]", ""),
        ("ZPOPMIN str 0", "-WRONGTYPE Operation against a key holding the wrong kind of value", ""),
        ("ZPOPMAX str", "-WRONGTYPE Operation against a key holding the wrong kind of value", ""),
        ("ZRANGE z 0 -1 WITHSCORES", "[]", ""),
        ("ZPOPMAX z 10", "[]", ""),
        ("EXISTS z", ":0", ""),
        ("ZADD neg -0 m", ":1", "ZADD neg -0 m"),
        ("ZSCORE neg m", "\"0\"", ""),
        ("ZINCRBY neg -0 m", "\"0\"", ""),
        ("ZADD", "-ERR wrong number of arguments for 'zadd' command", ""),
    ]);
}
