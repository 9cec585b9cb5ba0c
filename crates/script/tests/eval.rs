//! EVAL / FCALL against a keyspace: replies, errors, atomic propagation.

use forkless_keyspace::{CollectingSink, Config, Keyspace, Session};
use forkless_script::{Host, Out, Scripting};
use forkless_sync::Arc;

fn setup() -> (Keyspace, Arc<CollectingSink>, Scripting) {
    let mut ks = Keyspace::new(Config::default());
    let sink = Arc::new(CollectingSink::new());
    ks.set_sink(sink.clone());
    let s = Scripting::new(Arc::new(|_, _| {})).unwrap();
    (ks, sink, s)
}

fn run(ks: &Keyspace, s: &Scripting, argv: &[&str]) -> Out {
    let argv: Vec<&[u8]> = argv.iter().map(|a| a.as_bytes()).collect();
    let host = Host {
        deny_write: &|| None,
    };
    s.execute(ks, &Session::default(), &argv, &host)
}

fn bulk(s: &str) -> Out {
    Out::Bulk(s.as_bytes().to_vec())
}

#[test]
fn basic_replies() {
    let (ks, _, s) = setup();
    assert_eq!(run(&ks, &s, &["EVAL", "return 1", "0"]), Out::Int(1));
    assert_eq!(run(&ks, &s, &["EVAL", "return 'x'", "0"]), bulk("x"));
    assert_eq!(
        run(&ks, &s, &["EVAL", "return {1,2,{3,'a'}}", "0"]),
        Out::Array(vec![
            Out::Int(1),
            Out::Int(2),
            Out::Array(vec![Out::Int(3), bulk("a")])
        ])
    );
    assert_eq!(
        run(&ks, &s, &["EVAL", "return redis.status_reply('FINE')", "0"]),
        Out::Status("FINE".into())
    );
    assert_eq!(
        run(
            &ks,
            &s,
            &["EVAL", "return redis.error_reply('My Error')", "0"]
        ),
        Out::err("My Error")
    );
    assert_eq!(
        run(
            &ks,
            &s,
            &["EVAL", "return {KEYS[1], ARGV[1]}", "1", "k", "a"]
        ),
        Out::Array(vec![bulk("k"), bulk("a")])
    );
    assert_eq!(run(&ks, &s, &["EVAL", "return true", "0"]), Out::Int(1));
    assert_eq!(run(&ks, &s, &["EVAL", "return false", "0"]), Out::Null);
    assert_eq!(run(&ks, &s, &["EVAL", "return 3.99", "0"]), Out::Int(3));
    assert_eq!(
        run(&ks, &s, &["EVAL", "return redis.sha1hex('')", "0"]),
        bulk("da39a3ee5e6b4b0d3255bfef95601890afd80709")
    );
}

#[test]
fn calls_and_propagation() {
    let (ks, sink, s) = setup();
    let r = run(
        &ks,
        &s,
        &[
            "EVAL",
            "redis.call('set', KEYS[1], ARGV[1]); return redis.call('incr', KEYS[1])",
            "1",
            "k",
            "41",
        ],
    );
    assert_eq!(r, Out::Int(42));
    let ops = sink.ops();
    let names: Vec<String> = ops
        .iter()
        .map(|(_, a)| String::from_utf8_lossy(&a[0]).to_string())
        .collect();
    assert_eq!(names, vec!["MULTI", "set", "incr", "EXEC"]);
    assert_eq!(
        run(&ks, &s, &["EVAL", "return redis.call('get', 'k')", "0"]),
        bulk("42")
    );
    // Undeclared key with declared keys: refused.
    let r = run(
        &ks,
        &s,
        &["EVAL", "return redis.call('get', 'other')", "1", "k"],
    );
    assert!(
        matches!(&r, Out::Error(e) if e.contains("not declared")),
        "{r:?}"
    );
}

#[test]
fn errors_like_redis() {
    let (ks, _, s) = setup();
    let r = run(&ks, &s, &["EVAL", "return a", "0"]);
    assert!(
        matches!(&r, Out::Error(e) if e.starts_with("ERR user_script:1: Script attempted to access nonexistent global variable 'a' script: ") && e.ends_with("on @user_script:1.")),
        "{r:?}"
    );
    let r = run(&ks, &s, &["EVAL", "a = 1", "0"]);
    assert!(
        matches!(&r, Out::Error(e) if e.contains("Attempt to modify a readonly table")),
        "{r:?}"
    );
    let r = run(&ks, &s, &["EVAL", "return redis.call('nosuch')", "0"]);
    assert!(
        matches!(&r, Out::Error(e) if e.starts_with("ERR Unknown Redis command called from script script: ")),
        "{r:?}"
    );
    let r = run(&ks, &s, &["EVAL", "return redis.pcall('nosuch')", "0"]);
    assert_eq!(r, Out::err("ERR Unknown Redis command called from script"));
    run(&ks, &s, &["EVAL", "redis.call('lpush', 'l', 'a')", "0"]);
    let r = run(&ks, &s, &["EVAL", "return redis.call('get', 'l')", "0"]);
    assert!(
        matches!(&r, Out::Error(e) if e.starts_with("WRONGTYPE")),
        "{r:?}"
    );
    let r = run(
        &ks,
        &s,
        &[
            "EVAL",
            "local ok, e = pcall(redis.call, 'get', 'l'); return e",
            "0",
        ],
    );
    assert!(
        matches!(&r, Out::Bulk(b) if b.starts_with(b"WRONGTYPE")),
        "{r:?}"
    );
    let r = run(&ks, &s, &["EVAL", "return 'x", "0"]);
    assert!(
        matches!(&r, Out::Error(e) if e.starts_with("ERR Error compiling script (new function): user_script:1:")),
        "{r:?}"
    );
    assert_eq!(
        run(
            &ks,
            &s,
            &["EVALSHA", "ffffffffffffffffffffffffffffffffffffffff", "0"]
        ),
        Out::err("NOSCRIPT No matching script. Please use EVAL.")
    );
    let r = run(
        &ks,
        &s,
        &["EVAL_RO", "return redis.call('set','x','1')", "0"],
    );
    assert!(
        matches!(&r, Out::Error(e) if e.starts_with("ERR Write commands are not allowed from read-only scripts.")),
        "{r:?}"
    );
    assert_eq!(
        run(&ks, &s, &["EVAL", "return 1", "2", "a"]),
        Out::err("ERR Number of keys can't be greater than number of args")
    );
    assert_eq!(
        run(&ks, &s, &["EVAL", "return 1", "-1"]),
        Out::err("ERR Number of keys can't be negative")
    );
}

#[test]
fn script_cache() {
    let (ks, _, s) = setup();
    let sha = match run(&ks, &s, &["SCRIPT", "LOAD", "return 7"]) {
        Out::Bulk(b) => String::from_utf8(b).unwrap(),
        o => panic!("{o:?}"),
    };
    assert_eq!(run(&ks, &s, &["EVALSHA", &sha, "0"]), Out::Int(7));
    assert_eq!(
        run(&ks, &s, &["SCRIPT", "EXISTS", &sha, "nope"]),
        Out::Array(vec![Out::Int(1), Out::Int(0)])
    );
    assert_eq!(run(&ks, &s, &["SCRIPT", "FLUSH"]), Out::ok());
    assert_eq!(
        run(&ks, &s, &["SCRIPT", "EXISTS", &sha]),
        Out::Array(vec![Out::Int(0)])
    );
}

#[test]
fn functions() {
    let (ks, sink, s) = setup();
    let code = "#!lua name=mylib\nredis.register_function('myfunc', function(keys, args) return redis.call('set', keys[1], args[1]) end)\nredis.register_function{function_name='ro', callback=function(keys) return redis.call('get', keys[1]) end, flags={'no-writes'}}";
    assert_eq!(run(&ks, &s, &["FUNCTION", "LOAD", code]), bulk("mylib"));
    assert_eq!(
        run(&ks, &s, &["FUNCTION", "LOAD", code]),
        Out::err("ERR Library 'mylib' already exists")
    );
    assert_eq!(run(&ks, &s, &["FCALL", "myfunc", "1", "k", "v"]), Out::ok());
    assert_eq!(run(&ks, &s, &["FCALL_RO", "ro", "1", "k"]), bulk("v"));
    assert_eq!(
        run(&ks, &s, &["FCALL_RO", "myfunc", "1", "k", "v"]),
        Out::err("ERR Can not execute a script with write flag using *_ro command.")
    );
    let first = sink.ops()[0].1.clone();
    assert_eq!(first[0], b"FUNCTION");
    let dump = match run(&ks, &s, &["FUNCTION", "DUMP"]) {
        Out::Bulk(b) => b,
        o => panic!("{o:?}"),
    };
    assert_eq!(run(&ks, &s, &["FUNCTION", "FLUSH"]), Out::ok());
    assert_eq!(
        run(&ks, &s, &["FCALL", "myfunc", "1", "k", "v"]),
        Out::err("ERR Function not found")
    );
    let argv: Vec<&[u8]> = vec![b"FUNCTION", b"RESTORE", &dump];
    let host = Host {
        deny_write: &|| None,
    };
    assert_eq!(s.execute(&ks, &Session::default(), &argv, &host), Out::ok());
    assert_eq!(run(&ks, &s, &["FCALL_RO", "ro", "1", "k"]), bulk("v"));
}

#[test]
fn bundled_libraries() {
    let (ks, _, s) = setup();
    let hex = "local e = cmsgpack.pack(ARGV[1] + 0) local h = '' for i = 1, #e do h = h .. string.format('%02x', string.byte(e, i)) end return h";
    // Expected bytes from Redis 7.0.15's own test suite (unit/scripting).
    assert_eq!(
        run(&ks, &s, &["EVAL", hex, "0", "0.1"]),
        bulk("cb3fb999999999999a")
    );
    assert_eq!(
        run(&ks, &s, &["EVAL", hex, "0", "-1099511627776"]),
        bulk("d3ffffff0000000000")
    );
    let r = run(&ks, &s, &["EVAL", "local t = cmsgpack.unpack(cmsgpack.pack({1, 'two', {a=3}})) return {t[1], t[2], t[3].a}", "0"]);
    assert_eq!(r, Out::Array(vec![Out::Int(1), bulk("two"), Out::Int(3)]));
    assert_eq!(
        run(
            &ks,
            &s,
            &["EVAL", "return bit.bor(1,2,4,8,16,32,64,128)", "0"]
        ),
        Out::Int(255)
    );
    assert_eq!(
        run(&ks, &s, &["EVAL", "return bit.tohex(65535, -4)", "0"]),
        bulk("FFFF")
    );
    assert_eq!(
        run(&ks, &s, &["EVAL", "return bit.lshift(1, 31)", "0"]),
        Out::Int(-2147483648)
    );
    let r = run(&ks, &s, &["EVAL", "local d = cjson.decode('{\"keya\": \"a\", \"keyb\": [1, null]}') return {d.keya, d.keyb[1], tostring(d.keyb[2] == cjson.null)}", "0"]);
    assert_eq!(r, Out::Array(vec![bulk("a"), Out::Int(1), bulk("true")]));
    let r = run(&ks, &s, &["EVAL", "cjson.encode_max_depth(1) local ok = pcall(cjson.encode, {{1}}) cjson.encode_max_depth(1000) return tostring(ok)", "0"]);
    assert_eq!(r, bulk("false"));
    // Library tables are read-only.
    let r = run(
        &ks,
        &s,
        &["EVAL", "cmsgpack.pack = function() return 1 end", "0"],
    );
    assert!(
        matches!(&r, Out::Error(e) if e.contains("Attempt to modify a readonly table")),
        "{r:?}"
    );
}

#[test]
fn math_random_is_redis_sequence() {
    let (ks, _, s) = setup();
    // redis-server 7.0.15 answers these to the first two scripts after start (rand.c's LCG).
    assert_eq!(
        run(&ks, &s, &["EVAL", "return tostring(math.random())", "0"]),
        bulk("0.39646477363839")
    );
    assert_eq!(
        run(&ks, &s, &["EVAL", "return tostring(math.random())", "0"]),
        bulk("0.84048536971234")
    );
}

#[test]
fn library_load_sees_only_the_library_api() {
    let (ks, _, s) = setup();
    let r = run(
        &ks,
        &s,
        &["FUNCTION", "LOAD", "#!lua name=l\nreturn math.random()"],
    );
    assert!(
        matches!(&r, Out::Error(e) if e.contains("attempted to access nonexistent global variable 'math'")),
        "{r:?}"
    );
    let r = run(
        &ks,
        &s,
        &[
            "FUNCTION",
            "LOAD",
            "#!lua name=l\nreturn redis.call('ping')",
        ],
    );
    assert!(
        matches!(&r, Out::Error(e) if e.contains("attempted to access nonexistent global variable 'call'")),
        "{r:?}"
    );
    // Registered functions run with the full API afterwards.
    let code = "#!lua name=l\nredis.register_function('r', function() return math.floor(2.5) + #string.rep('a', 3) end)";
    assert_eq!(run(&ks, &s, &["FUNCTION", "LOAD", code]), bulk("l"));
    assert_eq!(run(&ks, &s, &["FCALL", "r", "0"]), Out::Int(5));
}

/// Redis's 'Script check unpack with massive arguments': `redis.call` with 8,001 arguments
/// (mlua alone refuses: its reference stack), strings or numbers, and an argument of a bad
/// type among many still gets Redis's error.
#[test]
fn redis_call_with_thousands_of_arguments() {
    let (ks, _, s) = setup();
    let numbers =
        "local a = {} for i=1,7999 do a[i] = 1 end return redis.call('lpush', 'l', unpack(a))";
    assert_eq!(run(&ks, &s, &["EVAL", numbers, "0"]), Out::Int(7999));
    let strings = "local a = {} for i=1,7999 do a[i] = 'x' .. i end return redis.call('rpush', 'm', unpack(a))";
    assert_eq!(run(&ks, &s, &["EVAL", strings, "0"]), Out::Int(7999));
    assert_eq!(
        run(
            &ks,
            &s,
            &["EVAL", "return redis.call('lindex', 'm', -1)", "0"]
        ),
        bulk("x7999")
    );
    let bad = "local a = {} for i=1,100 do a[i] = 'x' end a[50] = {} return redis.pcall('lpush', 'l', unpack(a))";
    assert_eq!(
        run(&ks, &s, &["EVAL", bad, "0"]),
        Out::err("ERR Lua redis lib command arguments must be strings or integers")
    );
}

/// The script cache is not bounded by mlua's reference stack (about 8,000 handles): 9,000
/// distinct scripts stay cached and runnable.
#[test]
fn nine_thousand_cached_scripts() {
    let (ks, _, s) = setup();
    for i in 0..9000 {
        let body = format!("return {i}");
        assert_eq!(run(&ks, &s, &["EVAL", &body, "0"]), Out::Int(i));
    }
    let sha = forkless_script::vm::sha1_hex(b"return 17");
    assert_eq!(run(&ks, &s, &["EVALSHA", &sha, "0"]), Out::Int(17));
}
