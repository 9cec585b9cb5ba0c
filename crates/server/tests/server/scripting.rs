//! Scripting over the wire: the busy state (`-BUSY` for other
//! clients past `busy-reply-threshold`), SCRIPT KILL of a read-only script, UNKILLABLE after a
//! write, and WATCH seeing a script's writes.

use std::time::{Duration, Instant};

use crate::common::{assert_same_reply, bulk, err_text, simple, Client, Reply, TestServer};
use forkless_testkit::ReplyExt;

#[test]
fn script_kill_stops_a_busy_read_only_script() {
    let server = TestServer::start(&["--busy-reply-threshold", "50"]);
    let mut a = server.client();
    let mut b = server.client();
    a.send(&["EVAL", "local i = 0 while true do i = i + 1 end", "0"]);
    // Once the script is past the threshold, other clients get -BUSY.
    let t0 = Instant::now();
    loop {
        let r = b.call(&["PING"]);
        if matches!(&r, Reply::Error(e) if e.starts_with(
            b"BUSY Redis is busy running a script. You can only call SCRIPT KILL"
        )) {
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(10), "never busy: {r:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(b.call(&["FUNCTION", "KILL"]), Reply::Error(
        "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.".into()
    ));
    assert_eq!(b.call(&["SCRIPT", "KILL"]), simple("OK"));
    let r = a.read();
    assert!(
        err_text(&r).starts_with("ERR Script killed by user with SCRIPT KILL..."),
        "{r:?}"
    );
    assert_eq!(b.call(&["PING"]), simple("PONG"));
    assert_eq!(
        err_text(&b.call(&["SCRIPT", "KILL"])),
        "NOTBUSY No scripts in execution right now."
    );
}

#[test]
fn a_script_that_wrote_is_unkillable() {
    let server = TestServer::start(&["--busy-reply-threshold", "20"]);
    let mut a = server.client();
    let mut b = server.client();
    a.send(&[
        "EVAL",
        "redis.call('set', 'w', '1') local i = 0 while i < 30000000 do i = i + 1 end return i",
        "0",
    ]);
    let t0 = Instant::now();
    loop {
        let r = b.call(&["SCRIPT", "KILL"]);
        let Reply::Error(e) = &r else {
            panic!("SCRIPT KILL answered {r:?}");
        };
        let e = String::from_utf8_lossy(e).into_owned();
        if e.starts_with("UNKILLABLE") {
            break;
        }
        assert!(e.starts_with("NOTBUSY"), "{r:?}");
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "script never seen running"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(a.read(), Reply::Integer(30_000_000));
    assert_eq!(b.call(&["GET", "w"]), bulk("1"));
}

#[test]
fn watch_sees_a_scripts_writes() {
    let server = TestServer::start(&[]);
    let mut c = server.client();
    let mut w = server.client();
    assert_eq!(w.call(&["WATCH", "k"]), simple("OK"));
    c.call(&["EVAL", "return redis.call('set', KEYS[1], 'x')", "1", "k"]);
    w.call(&["MULTI"]);
    w.call(&["SET", "k", "y"]);
    assert_eq!(w.call(&["EXEC"]), Reply::NullArray);
    assert_eq!(c.call(&["GET", "k"]), bulk("x"));
}

/// The `*.incr.aof` of an append-only directory, read after the server answered.
pub(crate) fn incr_aof(dir: &std::path::Path) -> Vec<u8> {
    let d = dir.join("appendonlydir");
    let mut out = Vec::new();
    for e in std::fs::read_dir(&d).expect("appendonlydir") {
        let p = e.expect("entry").path();
        if p.to_string_lossy().ends_with(".incr.aof") {
            out.extend(std::fs::read(&p).expect("incr aof"));
        }
    }
    out
}

#[test]
fn eval_and_fcall_inside_multi_equal_redis_server() {
    let dir = forkless_testkit::TempDir::new("script-multi-oracle");
    let opts = ["--appendonly", "yes", "--appendfsync", "always"];
    let Some(redis) = forkless_testkit::RedisServer::start(dir.path(), &opts) else {
        return;
    };
    let ours = TestServer::start(&opts);
    let lib = "#!lua name=ml\nredis.register_function('bump', function(keys, args) \
               redis.call('incrby', keys[1], args[1]) return redis.call('get', keys[1]) end)";
    let script: &[&[&str]] = &[
        &["FUNCTION", "LOAD", lib],
        &["MULTI"],
        &["SET", "a", "1"],
        &[
            "EVAL",
            "redis.call('set', KEYS[1], 'x') redis.call('incr', 'a') return redis.call('get', 'a')",
            "1",
            "b",
        ],
        &["SELECT", "2"],
        &[
            "EVAL",
            "redis.call('select', 5) redis.call('set', 'c', 'y') return 1",
            "0",
        ],
        &["SET", "d", "1"],
        &["FCALL", "bump", "1", "d", "41"],
        &["EVAL", "return redis.call('get', 'nope')", "0"],
        &["EVAL", "return redis.call('incr', KEYS[1])", "1", "c"],
        &["EXEC"],
        &["SELECT", "0"],
        &["MULTI"],
        &["EVAL", "redis.call('set', 'q', '1')", "0"],
        &["EXEC"],
        &["MULTI"],
        &["EVAL", "return redis.error_reply('boom')", "0"],
        &["EVALSHA", "0000000000000000000000000000000000000000", "0"],
        &["FCALL_RO", "bump", "1", "a", "1"],
        &["GET", "a"],
        &["EXEC"],
    ];
    let mut a = crate::common::Client::connect(redis.port());
    let mut b = ours.client();
    for cmd in script {
        assert_same_reply(&mut a, &mut b, cmd);
    }
    // The effects, in one MULTI/EXEC per transaction, as redis-server logs them.
    let want = incr_aof(redis.dir());
    let got = incr_aof(ours.dir.path());
    let tail = |v: &[u8]| {
        // Both files start with FUNCTION LOAD; compare from the first MULTI on.
        let s = String::from_utf8_lossy(v).into_owned();
        s[s.find("MULTI").unwrap_or(0)..].to_string()
    };
    assert!(tail(&want).contains("incrby"), "{}", tail(&want));
    assert_eq!(tail(&got), tail(&want));
}

#[test]
fn shutdown_nosave_stops_a_busy_script_that_wrote() {
    let server = TestServer::start(&[
        "--busy-reply-threshold",
        "50",
        "--appendonly",
        "yes",
        "--appendfsync",
        "always",
    ]);
    let mut a = server.client();
    let mut b = server.client();
    assert_eq!(b.call(&["SET", "before", "1"]), simple("OK"));
    a.send(&[
        "EVAL",
        "redis.call('set', KEYS[1], 'partial') while true do end",
        "1",
        "x",
    ]);
    let t0 = Instant::now();
    loop {
        let r = b.call(&["PING"]);
        if matches!(&r, Reply::Error(e) if e.starts_with(b"BUSY")) {
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(10), "never busy: {r:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
    // Redis's shutdownCommand: a timed-out script allows SHUTDOWN only with NOSAVE.
    assert_eq!(
        err_text(&b.call(&["SHUTDOWN"])),
        "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE."
    );
    assert!(err_text(&b.call(&["SCRIPT", "KILL"])).starts_with("UNKILLABLE"));
    b.send(&["SHUTDOWN", "NOSAVE"]);
    assert!(b.closed(), "SHUTDOWN NOSAVE left the connection open");
    // The server goes away: new connections are refused.
    let t0 = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", server.port)).is_ok() {
        assert!(t0.elapsed() < Duration::from_secs(10), "server still up");
        std::thread::sleep(Duration::from_millis(20));
    }
    // The script's partial effects never reached the log; the earlier write did.
    let aof = String::from_utf8_lossy(&incr_aof(server.dir.path())).into_owned();
    assert!(aof.contains("before"), "{aof:?}");
    assert!(!aof.contains("partial"), "{aof:?}");
}

/// INFO's `name:value` field, if present.
fn info_field(info: &Reply, name: &str) -> Option<String> {
    let text = String::from_utf8_lossy(&info.bytes()).into_owned();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}:")).map(str::to_string))
}

/// What scripts reach beyond the keyspace, every reply equal to redis-server 7.0.15's: DEBUG
/// refused until `DEBUG set-disable-deny-scripts 1`, then DEBUG PROTOCOL's RESP3 replies as a
/// RESP2 and a RESP3 script sees them, DEBUG SLEEP inside a script whose clock stands still,
/// TIME, an empty shebang flag list, NOREPLICAS for scripts that may write, INFO's count of
/// cached scripts, DEBUG OBJECT on a key past its expiry.
#[test]
fn debug_time_and_replicas_from_scripts_equal_redis_server() {
    let dir = forkless_testkit::TempDir::new("script-host-oracle");
    let opts = ["--enable-debug-command", "yes"];
    let Some(redis) = forkless_testkit::RedisServer::start(dir.path(), &opts) else {
        return;
    };
    let ours = TestServer::start(&opts);
    let r3 = |ty: &str, body: &str| {
        format!("redis.setresp(3) local r = redis.call('debug', 'protocol', '{ty}') {body}")
    };
    let protocol: Vec<String> = vec![
        r3("bignum", "return {type(r), r.big_number}"),
        r3("double", "return {type(r), tostring(r.double)}"),
        r3(
            "map",
            "return {tostring(r.map[0]), tostring(r.map[1]), tostring(r.map[2])}",
        ),
        r3(
            "set",
            "return {tostring(r.set[0]), tostring(r.set[1]), tostring(r.set[2])}",
        ),
        r3("null", "return type(r)"),
        r3("true", "return {type(r), tostring(r)}"),
        r3("false", "return {type(r), tostring(r)}"),
        r3(
            "verbatim",
            "return {r.verbatim_string.format, r.verbatim_string.string}",
        ),
        r3("attrib", "return r"),
        r3("bignum", "return r"),
        r3("map", "return r"),
        r3("true", "return r"),
    ];
    let mut steps: Vec<Vec<String>> = Vec::new();
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<String>>();
    steps.push(s(&[
        "EVAL",
        "return redis.call('debug', 'protocol', 'map')",
        "0",
    ]));
    steps.push(s(&["DEBUG", "SET-DISABLE-DENY-SCRIPTS", "1"]));
    for ty in [
        "string", "integer", "double", "bignum", "null", "array", "set", "map", "attrib", "true",
        "false", "verbatim", "push", "nosuch",
    ] {
        steps.push(vec![
            "EVAL".into(),
            format!("return redis.pcall('debug', 'protocol', '{ty}')"),
            "0".into(),
        ]);
    }
    for body in &protocol {
        steps.push(vec!["EVAL".into(), body.clone(), "0".into()]);
    }
    steps.extend([
        s(&["EVAL", "return redis.pcall('debug')", "0"]),
        s(&[
            "EVAL",
            "redis.call('set', 'k', 'v', 'px', '1') redis.call('debug', 'sleep', '0.01') \
             return redis.call('exists', 'k')",
            "0",
        ]),
        s(&["EXISTS", "k"]),
        s(&["DEBUG", "SET-DISABLE-DENY-SCRIPTS", "0"]),
        s(&["EVAL", "return redis.pcall('debug', 'sleep', '0')", "0"]),
        s(&[
            "EVAL",
            "local t = redis.call('time') return {#t, type(t[1]), type(t[2])}",
            "0",
        ]),
        s(&["EVAL", "return redis.pcall('time', 'x')", "0"]),
        s(&["EVAL", "#!lua flags=\nreturn 1", "0"]),
        s(&["EVAL", "#!lua flags=no-writes,,\nreturn 1", "0"]),
        s(&["SET", "x", "1"]),
        s(&["CONFIG", "SET", "min-replicas-to-write", "1"]),
        s(&["EVAL", "#!lua\nreturn redis.call('get', KEYS[1])", "1", "x"]),
        s(&[
            "EVAL",
            "#!lua flags=no-writes\nreturn redis.call('get', KEYS[1])",
            "1",
            "x",
        ]),
        s(&["EVAL", "return redis.call('get', KEYS[1])", "1", "x"]),
        s(&["EVAL", "return redis.call('set', KEYS[1], '2')", "1", "x"]),
        s(&["EVAL", "return redis.pcall('set', KEYS[1], '2')", "1", "x"]),
        s(&["CONFIG", "SET", "min-replicas-to-write", "0"]),
        s(&["EVAL", "return redis.call('set', KEYS[1], '2')", "1", "x"]),
    ]);
    let mut a = crate::common::Client::connect(redis.port());
    let mut b = ours.client();
    for (i, cmd) in steps.iter().enumerate() {
        let argv: Vec<&str> = cmd.iter().map(String::as_str).collect();
        let want = a.call(&argv);
        let got = b.call(&argv);
        assert_eq!(got, want, "step {i}: {argv:?}");
    }
    // INFO counts the cached scripts; SCRIPT FLUSH empties the cache.
    for c in [&mut a, &mut b] {
        c.call(&["SCRIPT", "FLUSH"]);
        for n in 0..3 {
            c.call(&["SCRIPT", "LOAD", &format!("return {n}")]);
        }
    }
    let field = |c: &mut crate::common::Client| {
        info_field(&c.call(&["INFO", "memory"]), "number_of_cached_scripts")
    };
    assert_eq!(field(&mut b), field(&mut a));
    assert_eq!(field(&mut b).as_deref(), Some("3"));
    // DEBUG OBJECT finds a key past its expiry while active expiry is off (Redis's dictFind).
    for c in [&mut a, &mut b] {
        c.call(&["DEBUG", "SET-ACTIVE-EXPIRE", "0"]);
        c.call(&["SET", "gone", "v", "PX", "1"]);
    }
    std::thread::sleep(Duration::from_millis(5));
    let (want, got) = (
        a.call(&["DEBUG", "OBJECT", "gone"]),
        b.call(&["DEBUG", "OBJECT", "gone"]),
    );
    assert!(matches!(want, Reply::Simple(_)), "{want:?}");
    assert!(matches!(got, Reply::Simple(_)), "{got:?}");
    assert_eq!(b.call(&["EXISTS", "gone"]), a.call(&["EXISTS", "gone"]));
}

/// SORT from a script that declares its keys: a SORT whose BY/GET patterns read no other key
/// runs on the declared shards, and a set sorted with a constant BY comes back in order for a
/// script (Redis's `CLIENT_SCRIPT` rule); replies equal to redis-server 7.0.15's. A pattern
/// that reads other keys still needs every shard (forkless's rule, an error reply).
#[test]
fn sort_in_a_script_with_declared_keys_equals_redis_server() {
    let dir = forkless_testkit::TempDir::new("script-sort-oracle");
    let Some(redis) = forkless_testkit::RedisServer::start(dir.path(), &[]) else {
        return;
    };
    let ours = TestServer::start(&[]);
    let steps: &[&[&str]] = &[
        &["RPUSH", "l", "3", "1", "2", "10"],
        &["SADD", "s", "c", "a", "b", "aa", "zz", "m"],
        &[
            "EVAL",
            "return redis.call('sort', KEYS[1], 'desc')",
            "1",
            "l",
        ],
        &[
            "EVAL",
            "return redis.call('sort', KEYS[1], 'limit', '1', '2', 'alpha')",
            "1",
            "l",
        ],
        &[
            "EVAL",
            "return redis.call('sort', KEYS[1], 'by', 'nosort')",
            "1",
            "s",
        ],
        &[
            "EVAL",
            "return redis.call('sort', KEYS[1], 'by', 'x', 'get', '#', 'get', 'y')",
            "1",
            "s",
        ],
        &[
            "EVAL",
            "return redis.call('sort', KEYS[1], 'store', KEYS[2])",
            "2",
            "l",
            "d",
        ],
        &["LRANGE", "d", "0", "-1"],
        &[
            "EVAL",
            "return redis.call('sort_ro', KEYS[1], 'alpha')",
            "1",
            "s",
        ],
        &[
            "EVAL",
            "return redis.pcall('sort', KEYS[1], 'bad')",
            "1",
            "l",
        ],
        &["SORT", "s", "BY", "nosort", "STORE", "d2"],
        &["LRANGE", "d2", "0", "-1"],
    ];
    let mut a = crate::common::Client::connect(redis.port());
    let mut b = ours.client();
    for (i, cmd) in steps.iter().enumerate() {
        let want = a.call(cmd);
        let got = b.call(cmd);
        assert_eq!(got, want, "step {i}: {cmd:?}");
    }
    let by_pattern = b.call(&[
        "EVAL",
        "return redis.call('sort', KEYS[1], 'by', 'w_*')",
        "1",
        "l",
    ]);
    assert!(
        err_text(&by_pattern).contains("needs every shard"),
        "{by_pattern:?}"
    );
    let undeclared = b.call(&[
        "EVAL",
        "return redis.call('sort', KEYS[1], 'store', 'other')",
        "1",
        "l",
    ]);
    assert!(
        err_text(&undeclared).contains("not declared in KEYS"),
        "{undeclared:?}"
    );
}

/// PUBLISH from a script: the subscribers hear it, the script gets the receiver count, and a
/// wrong call fails as in redis-server 7.0.15 (replies and messages compared).
#[test]
fn publish_from_a_script_equals_redis_server() {
    let dir = forkless_testkit::TempDir::new("script-publish-oracle");
    let Some(redis) = forkless_testkit::RedisServer::start(dir.path(), &[]) else {
        return;
    };
    let ours = TestServer::start(&[]);
    let scripts: &[&[&str]] = &[
        &[
            "EVAL",
            "return redis.call('publish', 'news', ARGV[1])",
            "0",
            "hello",
        ],
        &[
            "EVAL",
            "redis.call('set', KEYS[1], 'v') return redis.call('publish', 'n2', 'x')",
            "1",
            "k",
        ],
        &["EVAL", "return redis.pcall('publish', 'news')", "0"],
        &["EVAL", "return redis.call('publish', 'news', 'bye')", "0"],
    ];
    let mut heard = Vec::new();
    let mut replies = Vec::new();
    for port in [redis.port(), ours.port] {
        let mut sub = Client::connect(port);
        sub.send(&["SUBSCRIBE", "news"]);
        sub.read();
        sub.send(&["PSUBSCRIBE", "n*"]);
        sub.read();
        let mut c = Client::connect(port);
        let got: Vec<Reply> = scripts.iter().map(|s| c.call(s)).collect();
        replies.push(got);
        let msgs: Vec<Reply> = (0..5).map(|_| sub.read()).collect();
        heard.push(msgs);
    }
    assert_eq!(replies[1], replies[0]);
    assert_eq!(heard[1], heard[0]);
}

/// The statistics INFO shows for the commands a script calls: calls, rejected and failed calls
/// per command, errorstats and `total_error_replies` equal redis-server's after each step of
/// Redis's 'Consistent eval error reporting' (OOM, a failed command, read-only scripts, with
/// `redis.call` and `redis.pcall`, an error reply the script makes itself, an unknown command).
#[test]
fn script_calls_count_in_info_as_redis_server() {
    let dir = forkless_testkit::TempDir::new("script-stats-oracle");
    let Some(redis) = forkless_testkit::RedisServer::start(dir.path(), &[]) else {
        return;
    };
    let ours = TestServer::start(&[]);
    let mut a = Client::connect(redis.port());
    let mut b = ours.client();
    let pcall_set = "local t = redis.pcall('set','x','y') \
                     if t['err'] == \"OOM command not allowed when used memory > 'maxmemory'.\" \
                     then return 1 else return 0 end";
    let pcall_select = "local t = redis.pcall('select',99) \
                        if t['err'] == 'ERR DB index is out of range' then return 1 else return 0 end";
    let pcall_ro = "local t = redis.pcall('set','x','y') if t['err'] == \
                    'ERR Write commands are not allowed from read-only scripts.' \
                    then return 1 else return 0 end";
    let steps: &[&[&[&str]]] = &[
        &[
            &["CONFIG", "SET", "maxmemory", "1"],
            &["EVAL", "return redis.call('set','x','y')", "1", "x"],
        ],
        &[&["EVAL", pcall_set, "1", "x"]],
        &[&["EVAL", "return redis.pcall('set','x','y')", "1", "x"]],
        &[
            &["CONFIG", "SET", "maxmemory", "0"],
            &["EVAL", "return redis.call('select',99)", "0"],
        ],
        &[&["EVAL", pcall_select, "0"]],
        &[&["EVAL_RO", "return redis.call('set','x','y')", "1", "x"]],
        &[&["EVAL_RO", pcall_ro, "1", "x"]],
        &[&[
            "EVAL",
            "return redis.error_reply('MY_ERR_CODE custom msg')",
            "0",
        ]],
        &[&["EVAL", "return redis.call('nosuchcommand')", "0"]],
        &[
            &["SET", "s", "abc"],
            &["EVAL", "return redis.call('incr',KEYS[1])", "1", "s"],
        ],
        &[&["EVAL", "return redis.call('get',KEYS[1])", "1", "s"]],
    ];
    // INFO's counters, without the timings.
    fn stats(c: &mut Client) -> Vec<String> {
        let Reply::Bulk(info) = c.call(&["INFO", "ALL"]) else {
            panic!("INFO");
        };
        String::from_utf8_lossy(&info)
            .lines()
            .filter(|l| {
                l.starts_with("errorstat_")
                    || l.starts_with("total_error_replies:")
                    || ["set", "eval", "eval_ro", "select", "incr", "get"]
                        .iter()
                        .any(|n| l.starts_with(&format!("cmdstat_{n}:")))
            })
            .map(|l| {
                l.split(',')
                    .filter(|f| !f.starts_with("usec"))
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .collect()
    }
    for (i, step) in steps.iter().enumerate() {
        for c in [&mut a, &mut b] {
            assert_eq!(c.call(&["CONFIG", "RESETSTAT"]), simple("OK"));
        }
        for cmd in step.iter() {
            let want = a.call(cmd);
            let got = b.call(cmd);
            assert_eq!(got, want, "step {i}: {cmd:?}");
        }
        // Redis lists commandstats in its dict's order: compare as sets.
        let (mut want, mut got) = (stats(&mut a), stats(&mut b));
        want.sort();
        got.sort();
        assert_eq!(got, want, "step {i}: INFO counters");
    }
}
