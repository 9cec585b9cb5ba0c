//! The same exchanges against redis-server 7.0.15 and forkless: the replies must be equal.

use forkless_testkit::{RedisServer, TempDir};

use crate::common::{Client, TestServer};

/// Commands whose replies do not depend on hash order, ids or time.
const SCRIPT: &[&[&str]] = &[
    &["PING"],
    &["PING", "hi"],
    &["ECHO", "x y"],
    &["SET", "s", "1"],
    &["INCRBY", "s", "41"],
    &["GET", "s"],
    &["GET", "nope"],
    &["RPUSH", "l", "a", "b", "c"],
    &["LRANGE", "l", "0", "-1"],
    &["HSET", "h", "f", "v"],
    &["HGETALL", "h"],
    &["ZADD", "z", "1.5", "m", "2", "n"],
    &["ZRANGE", "z", "0", "-1", "WITHSCORES"],
    &["ZSCORE", "z", "m"],
    &["SADD", "set", "only"],
    &["SMEMBERS", "set"],
    &["NOSUCH", "a", "b"],
    &["GET"],
    &["SELECT", "99"],
    &["SELECT", "1"],
    &["DBSIZE"],
    &["SELECT", "0"],
    &["DBSIZE"],
    &["MULTI"],
    &["SET", "t", "1"],
    &["INCR", "t"],
    &["EXEC"],
    &["MULTI"],
    &["MULTI"],
    &["DISCARD"],
    &["EXEC"],
    &["DISCARD"],
    &["MULTI"],
    &["BADCMD"],
    &["EXEC"],
    &["AUTH", "x"],
    &["CLIENT", "SETNAME", "a b"],
    &["CLIENT", "GETNAME"],
    &["CLIENT", "NOSUCH"],
    &["CONFIG", "GET", "maxclients"],
    &["CONFIG", "SET", "nosuch", "1"],
    &["BLPOP", "none", "-1"],
    &["BLPOP", "none", "x"],
    &["BLPOP", "none", "0.01"],
    &["BLMPOP", "0.01", "0", "a", "LEFT"],
    &["RPUSH", "bl", "1", "2", "3"],
    &["BLMPOP", "0", "1", "bl", "LEFT", "COUNT", "2"],
    &["SET", "str", "x"],
    &["BLPOP", "str", "0"],
    &["OBJECT", "ENCODING", "s"],
    &["OBJECT", "ENCODING", "str"],
    &["OBJECT", "ENCODING", "l"],
    &["OBJECT", "ENCODING", "missing"],
    &["HELLO", "5"],
    &["HELLO", "2", "SETNAME", "a b"],
    &["PUBLISH", "ch", "m"],
    &["PUBSUB", "NUMSUB", "ch"],
    &["PUBSUB", "NUMPAT"],
    &["SSCAN", "set", "0"],
    &["SSCAN", "set", "0", "MATCH", "x*"],
    &["SSCAN", "set", "abc"],
    &["SSCAN", "set", "0", "COUNT", "0"],
    &["HSCAN", "h", "0", "COUNT", "10"],
    &["ZSCAN", "z", "0", "MATCH", "m"],
    &["SSCAN", "nokey", "0"],
    &["SSCAN", "h", "0"],
    &["RPUSH", "pl", "a", "b", "c", "b", "a", "b"],
    &["LPOS", "pl", "b"],
    &["LPOS", "pl", "b", "RANK", "-1"],
    &["LPOS", "pl", "b", "RANK", "2", "COUNT", "0"],
    &["LPOS", "pl", "b", "COUNT", "2", "MAXLEN", "3"],
    &["LPOS", "pl", "z"],
    &["LPOS", "pl", "z", "COUNT", "0"],
    &["LPOS", "nokey", "a", "COUNT", "1"],
    &["LPOS", "pl", "b", "RANK", "0"],
    &["LPOS", "pl", "b", "COUNT", "-1"],
    &["LPOS", "pl", "b", "MAXLEN", "-1"],
    &["LPOS", "pl", "b", "FOO", "1"],
    &["SADD", "s1", "a", "b", "c"],
    &["SADD", "s2", "b", "c", "d"],
    &["SINTERCARD", "2", "s1", "s2"],
    &["SINTERCARD", "2", "s1", "s2", "LIMIT", "1"],
    &["SINTERCARD", "2", "s1", "nokey"],
    &["SINTERCARD", "0", "s1"],
    &["SINTERCARD", "3", "s1", "s2"],
    &["SINTERCARD", "1", "s1", "LIMIT", "-1"],
    &["SINTERCARD", "2", "s1", "h"],
    &["FLUSHALL"],
    &["DBSIZE"],
    &["UNWATCH"],
];

#[test]
fn replies_equal_redis_server() {
    let dir = TempDir::new("server-oracle");
    let Some(redis) = RedisServer::start(dir.path(), &[]) else {
        return;
    };
    let ours = TestServer::start(&[]);
    let mut a = Client::connect(redis.port());
    let mut b = ours.client();
    for cmd in SCRIPT {
        let want = a.call(cmd);
        let got = b.call(cmd);
        assert_eq!(got, want, "command {cmd:?}");
    }
}

#[test]
fn protocol_errors_equal_redis_server() {
    let dir = TempDir::new("server-oracle-proto");
    let Some(redis) = RedisServer::start(dir.path(), &[]) else {
        return;
    };
    let ours = TestServer::start(&[]);
    let inputs: &[&[u8]] = &[
        b"*x\r\n",
        b"*1\r\n+PING\r\n",
        b"*1\r\n$abc\r\n",
        b"*1\r\n$-1\r\n",
        b"*2\r\n$4\r\nECHO\r\n$1000000000\r\n",
        b"echo \"a\"b\r\n",
        b"echo 'a\r\n",
        b"*-1\r\n*0\r\nPING\r\n",
        b"\r\n\r\nPING\r\n",
    ];
    for input in inputs {
        let mut a = Client::connect(redis.port());
        let mut b = ours.client();
        a.raw(input);
        b.raw(input);
        let want = a.read();
        let got = b.read();
        assert_eq!(got, want, "input {:?}", String::from_utf8_lossy(input));
    }
}

/// A client blocked on several streams, served by a transaction that adds to two of them:
/// redis-server 7.0.15 answers with the first stream signalled ready only
/// (`serveClientsBlockedOnStreamKey`), for XREAD and XREADGROUP alike (the other stream's entry
/// is not delivered, so it is not pending either).
#[test]
fn blocked_multi_stream_read_is_served_one_stream_as_redis() {
    let dir = TempDir::new("forkless-oracle-xread");
    let Some(redis) = RedisServer::start(dir.path(), &[]) else {
        return;
    };
    let ours = TestServer::start(&[]);
    let run = |port: u16| -> Vec<String> {
        let mut c = Client::connect(port);
        let mut out = Vec::new();
        for read in [
            &[
                "XREAD", "BLOCK", "5000", "STREAMS", "s1", "s2", "s3", "$", "$", "$",
            ][..],
            &[
                "XREAD", "COUNT", "5", "BLOCK", "5000", "STREAMS", "s3", "s2", "s1", "$", "$", "$",
            ][..],
            &[
                "XREADGROUP",
                "GROUP",
                "g",
                "alice",
                "BLOCK",
                "5000",
                "STREAMS",
                "s1",
                "s2",
                "s3",
                ">",
                ">",
                ">",
            ][..],
            &[
                "XREADGROUP",
                "GROUP",
                "g",
                "bob",
                "NOACK",
                "BLOCK",
                "5000",
                "STREAMS",
                "s2",
                "s1",
                ">",
                ">",
            ][..],
        ] {
            c.call(&["DEL", "s1", "s2", "s3"]);
            for k in ["s1", "s2", "s3"] {
                c.call(&["XADD", k, "1-0", "f", "old"]);
                c.call(&["XGROUP", "CREATE", k, "g", "$"]);
            }
            let mut reader = Client::connect(port);
            reader.send(read);
            crate::common::wait_blocked(port, 1);
            c.call(&["MULTI"]);
            c.call(&["XADD", "s2", "2-0", "f", "two"]);
            c.call(&["XADD", "s1", "2-0", "f", "one"]);
            c.call(&["EXEC"]);
            out.push(format!("{read:?}: {:?}", reader.read()));
            for k in ["s1", "s2"] {
                out.push(format!("{k}: {:?}", c.call(&["XPENDING", k, "g"])));
            }
        }
        out
    };
    assert_eq!(run(ours.port), run(redis.port()));
}
