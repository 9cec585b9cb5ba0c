//! Hash commands: replies, error paths and propagation, one scripted session checked step by
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
fn hashes_session_matches_redis_7_0() {
    run(&[
        ("SET str x", "+OK", "SET str x"),
        ("HSET h f v g w", ":2", "HSET h f v g w"),
        ("HSET h f v2", ":0", "HSET h f v2"),
        ("HSET h f", "-ERR wrong number of arguments for 'hset' command", ""),
        ("HSET str f v", "-WRONGTYPE Operation against a key holding the wrong kind of value", ""),
        ("HMSET h a 1 b 2", "+OK", "HMSET h a 1 b 2"),
        ("HMSET h a", "-ERR wrong number of arguments for 'hmset' command", ""),
        ("HSETNX h f z", ":0", ""),
        ("HSETNX h n 10", ":1", "HSETNX h n 10"),
        ("HSETNX str f v", "-WRONGTYPE Operation against a key holding the wrong kind of value", ""),
        ("HGET h f", "\"v2\"", ""),
        ("HGET h zz", "(nil)", ""),
        ("HGET nokey f", "(nil)", ""),
        ("HGET str f", "-WRONGTYPE Operation against a key holding the wrong kind of value", ""),
        ("HMGET h f zz n", "[\"v2\", (nil), \"10\"]", ""),
        ("HMGET nokey a b", "[(nil), (nil)]", ""),
        ("HMGET str a", "-WRONGTYPE Operation against a key holding the wrong kind of value", ""),
        ("HLEN h", ":5", ""),
        ("HLEN nokey", ":0", ""),
        ("HLEN str", "-WRONGTYPE Operation against a key holding the wrong kind of value", ""),
        ("HEXISTS h f", ":1", ""),
        ("HEXISTS h zz", ":0", ""),
        ("HEXISTS nokey f", ":0", ""),
        ("HEXISTS str f", "-WRONGTYPE Operation against a key holding the wrong kind of value", ""),
        ("HSTRLEN h f", ":2", ""),
        ("HSTRLEN h zz", ":0", ""),
        ("HSTRLEN str f", "-WRONGTYPE Operation against a key holding the wrong kind of value", ""),
        ("HGETALL h", "[\"f\", \"v2\", \"g\", \"w\", \"a\", \"1\", \"b\", \"2\", \"n\", \"10\"]", ""),
        ("HKEYS h", "[\"f\", \"g\", \"a\", \"b\", \"n\"]", ""),
        ("HVALS h", "[\"v2\", \"w\", \"1\", \"2\", \"10\"]", ""),
        ("HGETALL nokey", "[]", ""),
        ("HKEYS str", "-WRONGTYPE Operation against a key holding the wrong kind of value", ""),
        ("HDEL h zz", ":0", ""),
        ("HDEL h a b zz", ":2", "HDEL h a b zz"),
        ("HDEL nokey a", ":0", ""),
        ("HDEL str a", "-WRONGTYPE Operation against a key holding the wrong kind of value", ""),
        ("HGETALL h", "[\"f\", \"v2\", \"g\", \"w\", \"n\", \"10\"]", ""),
        ("HINCRBY h n 5", ":15", "HINCRBY h n 5"),
        ("HINCRBY h n -20", ":-5", "HINCRBY h n -20"),
        ("HINCRBY h new 3", ":3", "HINCRBY h new 3"),
        ("HINCRBY h n x", "-ERR value is not an integer or out of range", ""),
        ("HINCRBY h f 1", "-ERR hash value is not an integer", ""),
        ("HINCRBY str f 1", "-WRONGTYPE Operation against a key holding the wrong kind of value", ""),
        ("HSET h big 9223372036854775807", ":1", "HSET h big 9223372036854775807"),
        ("HINCRBY h big 1", "-ERR increment or decrement would overflow", ""),
        ("HINCRBY h big 0", ":9223372036854775807", "HINCRBY h big 0"),
        ("HSET h lz 007", ":1", "HSET h lz 007"),
        ("HINCRBY h lz 1", "-ERR hash value is not an integer", ""),
        ("HINCRBYFLOAT h fl 0.1", "\"0.1\"", "HSET h fl 0.1"),
        ("HINCRBYFLOAT h fl 0.2", "\"0.3\"", "HSET h fl 0.3"),
        ("HINCRBYFLOAT h fl 1e400", "\"10000000000000000000281880683947586514586453433629052038625910693539685534008629862039363994848324160522094053927317616200295822777259255734023828976593340661017797447434546173917862448116674971723778943824391593338047470675026246684401359237513603830343735485505244955964979021825038280091068414947402456898653040951017512658092615827588920183472511643316591362664138176309734806343732497430221946880\"", "HSET h fl 10000000000000000000281880683947586514586453433629052038625910693539685534008629862039363994848324160522094053927317616200295822777259255734023828976593340661017797447434546173917862448116674971723778943824391593338047470675026246684401359237513603830343735485505244955964979021825038280091068414947402456898653040951017512658092615827588920183472511643316591362664138176309734806343732497430221946880"),
        ("HINCRBYFLOAT h fl inf", "-ERR value is NaN or Infinity", ""),
        ("HINCRBYFLOAT h fl nan", "-ERR value is not a valid float", ""),
        ("HINCRBYFLOAT h fl x", "-ERR value is not a valid float", ""),
        ("HINCRBYFLOAT h fl \\s1", "-ERR value is not a valid float", ""),
        ("HINCRBYFLOAT h f 1", "-ERR hash value is not a float", ""),
        ("HINCRBYFLOAT str f 1", "-WRONGTYPE Operation against a key holding the wrong kind of value", ""),
        ("HINCRBYFLOAT str f inf", "-ERR value is NaN or Infinity", ""),
        ("HINCRBYFLOAT h n 1.5", "\"-3.5\"", "HSET h n -3.5"),
        ("HINCRBYFLOAT h n -1.5", "\"-5\"", "HSET h n -5"),
        ("HINCRBYFLOAT h h2 1234.1", "\"1234.09999999999999998\"", "HSET h h2 1234.09999999999999998"),
        ("HINCRBYFLOAT h h3 0x10", "\"16\"", "HSET h h3 16"),
        ("HINCRBYFLOAT h h4 5.0e3", "\"5000\"", "HSET h h4 5000"),
        ("HSET h huge 1e4932", ":1", "HSET h huge 1e4932"),
        ("HINCRBYFLOAT h huge 1e4932", "-ERR increment would produce NaN or Infinity", ""),
        ("HDEL h f g n new big lz fl h2 h3 h4 huge", ":11", "HDEL h f g n new big lz fl h2 h3 h4 huge"),
        ("EXISTS h", ":0", ""),
        ("HSET", "-ERR wrong number of arguments for 'hset' command", ""),
    ]);
}
