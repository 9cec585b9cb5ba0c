//! Scripting through the engine: function libraries persist in the RDB (RDB_OPCODE_FUNCTION2,
//! checked both ways against redis-server 7.0.15) and in the AOF (FUNCTION LOAD), script
//! effects reach the AOF as one MULTI/EXEC unit.

use forkless::{Engine, Reply, Session};
use forkless_testkit::{RedisServer, Reply as RespReply, ReplyExt, TempDir};

use crate::{conf, open};

const LIB1: &str = "#!lua name=lib1\nredis.register_function('incr1', function(keys, args) return redis.call('incrby', keys[1], args[1]) end)";
const LIB2: &str = "#!lua name=lib2\nredis.register_function{function_name='hello', callback=function() return 'hello' end, flags={'no-writes'}, description='says hello'}";

fn exec(e: &Engine, argv: &[&str]) -> Reply {
    let argv: Vec<&[u8]> = argv.iter().map(|a| a.as_bytes()).collect();
    e.execute(&mut Session::default(), &argv)
}

fn bulk(s: &str) -> Reply {
    Reply::Bulk(s.as_bytes().to_vec())
}

#[test]
fn functions_in_our_rdb_load_into_redis_server() {
    let tmp = TempDir::new("engine-func-rdb-out");
    let c = conf("save \"\"\n");
    let e = open(tmp.path(), &c);
    assert_eq!(exec(&e, &["FUNCTION", "LOAD", LIB1]), bulk("lib1"));
    assert_eq!(exec(&e, &["FUNCTION", "LOAD", LIB2]), bulk("lib2"));
    assert_eq!(
        exec(&e, &["FCALL", "incr1", "1", "n", "5"]),
        Reply::Integer(5)
    );
    e.snapshot_now(None).unwrap();
    e.shutdown().unwrap();
    let Some(redis) = RedisServer::start(tmp.path(), &[]) else {
        return;
    };
    assert_eq!(redis.call(&[b"FCALL", b"incr1", b"1", b"n", b"2"]).int(), 7);
    assert_eq!(redis.call(&[b"FCALL_RO", b"hello", b"0"]).bytes(), b"hello");
    let list = redis.call(&[b"FUNCTION", b"LIST", b"WITHCODE"]).array();
    assert_eq!(list.len(), 2);
    let codes: Vec<Vec<u8>> = list
        .iter()
        .map(|lib| {
            let fields = lib.array();
            let i = fields
                .iter()
                .position(|f| matches!(f, RespReply::Bulk(b) if b == b"library_code"))
                .expect("library_code");
            fields[i + 1].bytes()
        })
        .collect();
    assert!(codes.contains(&LIB1.as_bytes().to_vec()));
    assert!(codes.contains(&LIB2.as_bytes().to_vec()));
}

#[test]
fn functions_in_redis_server_rdb_load_into_us() {
    let tmp = TempDir::new("engine-func-rdb-in");
    {
        let Some(redis) = RedisServer::start(tmp.path(), &[]) else {
            return;
        };
        assert_eq!(
            redis.call(&[b"FUNCTION", b"LOAD", LIB1.as_bytes()]).bytes(),
            b"lib1"
        );
        assert_eq!(
            redis.call(&[b"FUNCTION", b"LOAD", LIB2.as_bytes()]).bytes(),
            b"lib2"
        );
        redis.call(&[b"SET", b"n", b"10"]);
        redis.call(&[b"SAVE"]);
    }
    let e = open(tmp.path(), &conf("save \"\"\n"));
    assert_eq!(
        exec(&e, &["FCALL", "incr1", "1", "n", "1"]),
        Reply::Integer(11)
    );
    assert_eq!(exec(&e, &["FCALL_RO", "hello", "0"]), bulk("hello"));
}

#[test]
fn function_load_and_script_effects_survive_the_aof() {
    let tmp = TempDir::new("engine-func-aof");
    let c = conf("appendonly yes\nappendfsync always\nsave \"\"\n");
    {
        let e = open(tmp.path(), &c);
        assert_eq!(exec(&e, &["FUNCTION", "LOAD", LIB1]), bulk("lib1"));
        assert_eq!(
            exec(&e, &["FCALL", "incr1", "1", "n", "3"]),
            Reply::Integer(3)
        );
        let r = exec(
            &e,
            &[
                "EVAL",
                "redis.call('set', KEYS[1], 'a'); redis.call('append', KEYS[1], 'b'); return redis.call('get', KEYS[1])",
                "1",
                "s",
            ],
        );
        assert_eq!(r, bulk("ab"));
        e.shutdown().unwrap();
    }
    let e = open(tmp.path(), &c);
    assert_eq!(
        exec(&e, &["FCALL", "incr1", "1", "n", "1"]),
        Reply::Integer(4)
    );
    assert_eq!(exec(&e, &["GET", "s"]), bulk("ab"));
    e.shutdown().unwrap();
    // redis-server replays the same AOF directory: the library and the MULTI/EXEC unit.
    let Some(redis) = RedisServer::start(tmp.path(), &["--appendonly", "yes"]) else {
        return;
    };
    assert_eq!(redis.call(&[b"GET", b"n"]).bytes(), b"4");
    assert_eq!(redis.call(&[b"GET", b"s"]).bytes(), b"ab");
    assert_eq!(redis.call(&[b"FCALL", b"incr1", b"1", b"n", b"1"]).int(), 5);
}

#[test]
fn functions_survive_an_aof_rewrite() {
    let tmp = TempDir::new("engine-func-rewrite");
    let c = conf("appendonly yes\nsave \"\"\n");
    {
        let e = open(tmp.path(), &c);
        assert_eq!(exec(&e, &["FUNCTION", "LOAD", LIB2]), bulk("lib2"));
        e.rewrite_now().unwrap();
        e.shutdown().unwrap();
    }
    let e = open(tmp.path(), &c);
    assert_eq!(exec(&e, &["FCALL_RO", "hello", "0"]), bulk("hello"));
}

/// The `struct` library (lua_struct.c as Redis 7.0.15 bundles it): every case of
/// `struct_cases.lua` (packing, unpacking, sizes, alignment, endianness, integer and float
/// conversions, offsets, limits and the error messages with their positions) gives the same
/// line on redis-server and here; plus the 7,997-result unpack and the result limit.
#[test]
fn struct_library_equals_redis_server() {
    let tmp = TempDir::new("engine-struct");
    let Some(redis) = RedisServer::start(tmp.path(), &[]) else {
        return;
    };
    let e = open(&tmp.path().join("ours"), &conf("save \"\"\n"));
    let big_ok =
        "local t = {struct.unpack(string.rep('c1', 7997), string.rep('a', 8000))} return #t";
    let big_err = "local ok, e = pcall(function() return struct.unpack(string.rep('b', 7998), \
                   string.rep('a', 8000)) end) return e";
    for script in [include_str!("struct_cases.lua"), big_ok, big_err] {
        let want = redis.call(&[b"EVAL", script.as_bytes(), b"0"]);
        let got = exec(&e, &["EVAL", script, "0"]);
        let want: Reply = match want {
            RespReply::Array(items) => {
                assert!(items.len() > 90, "{items:?}");
                Reply::Array(items.iter().map(|i| Reply::Bulk(i.bytes())).collect())
            }
            RespReply::Integer(n) => Reply::Integer(n),
            RespReply::Bulk(b) => Reply::Bulk(b),
            other => panic!("redis-server answered {other:?}"),
        };
        assert_eq!(got, want, "script {script:.60}");
    }
}

/// Appendonly turned on over a dump.rdb with functions (redis-server's): the new AOF's base
/// carries the libraries with the keys (RDB preamble and RESP base), so after the dump is
/// gone the libraries are still there, here and in redis-server replaying the directory.
#[test]
fn libraries_of_a_dump_seed_a_new_aof() {
    for preamble in ["yes", "no"] {
        let tmp = TempDir::new("engine-func-seed");
        {
            let Some(redis) = RedisServer::start(tmp.path(), &[]) else {
                return;
            };
            assert_eq!(
                redis.call(&[b"FUNCTION", b"LOAD", LIB1.as_bytes()]).bytes(),
                b"lib1"
            );
            redis.call(&[b"SET", b"n", b"10"]);
            redis.call(&[b"SAVE"]);
        }
        let c = conf(&format!(
            "appendonly yes\naof-use-rdb-preamble {preamble}\nsave \"\"\n"
        ));
        let e = open(tmp.path(), &c);
        e.shutdown().unwrap();
        std::fs::remove_file(tmp.path().join("dump.rdb")).unwrap();
        let e = open(tmp.path(), &c);
        assert_eq!(
            exec(&e, &["FCALL", "incr1", "1", "n", "1"]),
            Reply::Integer(11),
            "preamble {preamble}"
        );
        e.shutdown().unwrap();
        let Some(redis) = RedisServer::start(tmp.path(), &["--appendonly", "yes"]) else {
            return;
        };
        assert_eq!(
            redis.call(&[b"FCALL", b"incr1", b"1", b"n", b"1"]).int(),
            12
        );
    }
}
