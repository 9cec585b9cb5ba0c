//! What each command propagates, checked against what redis-server 7.0.15 appended to its AOF
//! (`testdata/fixtures/aof/commands-propagation.txt`, FACTS.md), with a manual clock standing in
//! for Redis's: the absolute times of the fixture are "now + the relative time" here.

use crate::support;

use forkless_keyspace::{render_aof, Config, ManualClock, Reply, Session};

const T0: i64 = 1_795_486_482_725;

fn run(ks: &forkless_keyspace::Keyspace, s: &mut Session, line: &str) -> Reply {
    let argv: Vec<&[u8]> = line.split(' ').map(str::as_bytes).collect();
    ks.execute(s, &argv)
}

/// The fixture's line for `cmd`: the escaped RESP text after `=>`.
fn fixture_lines() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(forkless_testkit::fixture("aof/commands-propagation.txt"))
        .expect("fixture");
    text.lines()
        .filter_map(|l| l.split_once("=>"))
        .map(|(c, p)| (c.trim().to_string(), p.trim().replace("\\r\\n", "\r\n")))
        .collect()
}

#[test]
fn matches_the_redis_fixture_shape() {
    let clock = ManualClock::new(T0);
    let (ks, sink) = support::keyspace_with_sink(Config::seeded(1).with_clock(clock.clock()));
    let mut s = Session::default();
    let mut checked = 0;
    for (cmd, expected) in fixture_lines() {
        if cmd.starts_with("(sleep") {
            continue;
        }
        let types = [
            "SADD",
            "SPOP",
            "LPUSH",
            "LPOP",
            "ZADD",
            "ZINCRBY",
            "HSET",
            "HINCRBYFLOAT",
        ];
        if types.iter().any(|t| cmd.starts_with(t))
            && !ks.has_command(&cmd[..cmd.find(' ').unwrap_or(cmd.len())])
        {
            continue;
        }
        if cmd.starts_with("GET short") {
            clock.advance(50);
        }
        let r = run(&ks, &mut s, &cmd);
        assert!(!r.is_error(), "{cmd}: {r:?}");
        let got = String::from_utf8(render_aof(&sink.take())).unwrap();
        if cmd.starts_with("SPOP") {
            // The member is random (ours and Redis's differ); the shape is `SREM s <member>`.
            assert!(
                got.contains("*3\r\n$4\r\nSREM\r\n$1\r\ns\r\n$1\r\n"),
                "{got:?}"
            );
            checked += 1;
            continue;
        }
        if expected == "(nothing)" {
            assert_eq!(got, "", "{cmd} should propagate nothing");
            checked += 1;
            continue;
        }
        // Our sink renders SELECT before every group; Redis only where the db changes. Compare
        // the commands themselves, with absolute times replaced by a marker.
        let strip_select = |x: &str| {
            let mut x = x.to_string();
            for db in ["0", "1"] {
                x = x.replace(&format!("*2\r\n$6\r\nSELECT\r\n$1\r\n{db}\r\n"), "");
            }
            x
        };
        let mask = |x: &str| {
            x.split("\r\n")
                .map(|f| {
                    if f.len() == 13 && f.bytes().all(|b| b.is_ascii_digit()) {
                        "<ms>"
                    } else {
                        f
                    }
                })
                .collect::<Vec<_>>()
                .join("\r\n")
        };
        assert_eq!(
            mask(&strip_select(&got)),
            mask(&strip_select(&expected)),
            "{cmd}"
        );
        checked += 1;
    }
    assert!(checked >= 15, "only {checked} fixture lines checked");
}

#[test]
fn relative_expiries_become_absolute() {
    let clock = ManualClock::new(T0);
    let (ks, sink) = support::keyspace_with_sink(Config::seeded(1).with_clock(clock.clock()));
    let mut s = Session::default();
    let at = |d: i64| (T0 + d).to_string().into_bytes();
    let cases: Vec<(&str, Vec<Vec<u8>>)> = vec![
        (
            "SET k v EX 100",
            vec![
                b"SET".to_vec(),
                b"k".to_vec(),
                b"v".to_vec(),
                b"PXAT".to_vec(),
                at(100_000),
            ],
        ),
        (
            "SETEX k2 100 v",
            vec![
                b"SET".to_vec(),
                b"k2".to_vec(),
                b"v".to_vec(),
                b"PXAT".to_vec(),
                at(100_000),
            ],
        ),
        (
            "PSETEX k3 5 v",
            vec![
                b"SET".to_vec(),
                b"k3".to_vec(),
                b"v".to_vec(),
                b"PXAT".to_vec(),
                at(5),
            ],
        ),
        (
            "EXPIRE k 200 GT",
            vec![
                b"PEXPIREAT".to_vec(),
                b"k".to_vec(),
                at(200_000),
                b"GT".to_vec(),
            ],
        ),
        (
            "PEXPIRE k 300000",
            vec![b"PEXPIREAT".to_vec(), b"k".to_vec(), at(300_000)],
        ),
        (
            "EXPIREAT k 4102444800",
            vec![
                b"PEXPIREAT".to_vec(),
                b"k".to_vec(),
                b"4102444800000".to_vec(),
            ],
        ),
        (
            "GETEX k PX 50",
            vec![b"PEXPIREAT".to_vec(), b"k".to_vec(), at(50)],
        ),
        ("GETEX k PERSIST", vec![b"PERSIST".to_vec(), b"k".to_vec()]),
        (
            "SET k v GET",
            vec![b"SET".to_vec(), b"k".to_vec(), b"v".to_vec()],
        ),
        (
            "GETSET k w",
            vec![b"SET".to_vec(), b"k".to_vec(), b"w".to_vec()],
        ),
        (
            "INCRBYFLOAT f 1.5",
            vec![
                b"SET".to_vec(),
                b"f".to_vec(),
                b"1.5".to_vec(),
                b"KEEPTTL".to_vec(),
            ],
        ),
        ("GETDEL f", vec![b"DEL".to_vec(), b"f".to_vec()]),
        ("EXPIRE k -1", vec![b"DEL".to_vec(), b"k".to_vec()]),
    ];
    for (cmd, want) in cases {
        let r = run(&ks, &mut s, cmd);
        assert!(!r.is_error(), "{cmd}: {r:?}");
        assert_eq!(sink.take(), vec![(0, want)], "{cmd}");
    }
}

#[test]
fn noops_propagate_nothing() {
    let clock = ManualClock::new(T0);
    let (ks, sink) = support::keyspace_with_sink(Config::seeded(1).with_clock(clock.clock()));
    let mut s = Session::default();
    run(&ks, &mut s, "SET k v");
    sink.take();
    for cmd in [
        "SET k v NX",
        "SET nope v XX",
        "DEL nope",
        "EXPIRE nope 10",
        "PERSIST k",
        "GETEX k",
        "GETDEL nope",
        "RENAMENX k k",
        "MSETNX k 1 z 2",
        "MOVE nope 1",
        "COPY nope x",
        "SETRANGE k 0 ",
        "EXPIRE k 100 XX",
        "GET k",
        "INCR k",
        "SELECT 1",
        "SELECT 0",
    ] {
        run(&ks, &mut s, cmd);
        assert_eq!(sink.take(), vec![], "{cmd} should propagate nothing");
    }
}

#[test]
fn lazy_expiry_propagates_del_and_groups_get_multi_exec() {
    let clock = ManualClock::new(T0);
    let (ks, sink) = support::keyspace_with_sink(Config::seeded(1).with_clock(clock.clock()));
    let mut s = Session::default();
    run(&ks, &mut s, "SET short x PX 10");
    sink.take();
    clock.advance(11);
    assert_eq!(run(&ks, &mut s, "GET short"), Reply::Nil);
    assert_eq!(
        sink.take(),
        vec![(0, vec![b"DEL".to_vec(), b"short".to_vec()])]
    );

    // An expired key overwritten: DEL then SET, wrapped in MULTI/EXEC as Redis 7.0 does.
    run(&ks, &mut s, "SET k x PX 10");
    sink.take();
    clock.advance(11);
    run(&ks, &mut s, "SET k y");
    let got = sink.take();
    let names: Vec<&[u8]> = got.iter().map(|(_, a)| a[0].as_slice()).collect();
    assert_eq!(names, vec![&b"MULTI"[..], b"DEL", b"SET", b"EXEC"]);
}

#[test]
fn select_is_rendered_where_the_db_changes() {
    let (ks, sink) = support::keyspace_with_sink(Config::seeded(1));
    let mut s = Session::default();
    run(&ks, &mut s, "SET a 1");
    run(&ks, &mut s, "SELECT 3");
    run(&ks, &mut s, "SET b 2");
    run(&ks, &mut s, "SET c 3");
    let aof = String::from_utf8(render_aof(&sink.take())).unwrap();
    assert_eq!(aof.matches("SELECT").count(), 2, "{aof:?}");
    assert!(aof.starts_with("*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n"));
    assert!(aof.contains("SELECT\r\n$1\r\n3\r\n*3\r\n$3\r\nSET\r\n$1\r\nb"));
}

#[test]
fn active_expiry_deletes_and_propagates_within_budget() {
    let clock = ManualClock::new(T0);
    let (ks, sink) = support::keyspace_with_sink(
        Config {
            shards: 4,
            ..Config::seeded(1)
        }
        .with_clock(clock.clock()),
    );
    let mut s = Session::default();
    for i in 0..200 {
        run(
            &ks,
            &mut s,
            &format!("SET k{i} v PX {}", if i % 2 == 0 { 10 } else { 100_000 }),
        );
    }
    sink.take();
    clock.advance(20);
    let mut deleted = 0;
    let mut calls = 0;
    while deleted < 100 {
        let d = ks.active_expire_cycle(16);
        assert!(d <= 16, "budget respected: {d}");
        deleted += d;
        calls += 1;
        assert!(calls < 200, "active expiry does not converge");
    }
    assert_eq!(deleted, 100);
    assert_eq!(ks.dbsize(0), 100);
    let dels = sink.take();
    assert_eq!(dels.len(), 100);
    assert!(dels.iter().all(|(db, a)| *db == 0 && a[0] == b"DEL"));
    assert_eq!(ks.active_expire_cycle(1000), 0);
}

/// The sorted-set algebra and SORT propagate exactly what redis-server 7.0.15 appends to its AOF
/// for the same commands (verbatim when something changed, nothing otherwise).
#[test]
fn zset_algebra_and_sort_propagate_as_redis_aof() {
    let dir = forkless_testkit::TempDir::new("forkless-prop-zsetops");
    let Some(redis) = forkless_testkit::RedisServer::start(
        dir.path(),
        &["--appendonly", "yes", "--appendfsync", "always"],
    ) else {
        return;
    };
    let (ks, sink) = support::keyspace_with_sink(Config::seeded(1));
    let mut s = Session::default();
    let script = [
        "ZADD a 1 x 2 y",
        "SADD b y z",
        "RPUSH l 3 1 2",
        "SET w_1 5",
        "ZUNIONSTORE d 2 a b WEIGHTS 2 3 AGGREGATE MAX",
        "ZINTERSTORE d 2 a b",
        "ZINTERSTORE d 2 a nope",
        "ZINTERSTORE d 2 a nope",
        "ZDIFFSTORE d 2 a b",
        "ZDIFFSTORE d 1 nope",
        "ZUNIONSTORE d 0 a",
        "ZUNION 2 a b",
        "ZINTERCARD 2 a b",
        "SORT l",
        "SORT l BY w_* GET # STORE out",
        "SORT nope STORE out",
        "SORT nope STORE out",
        "SORT_RO l ALPHA",
        "SORT l LIMIT 0 1 STORE out",
    ];
    for line in script {
        let argv: Vec<&[u8]> = line.split(' ').map(str::as_bytes).collect();
        let theirs = redis.call(&argv);
        let ours = support::to_resp(&ks.execute(&mut s, &argv));
        assert_eq!(ours, theirs, "{line}");
    }
    let aof_dir = dir.path().join("appendonlydir");
    let incr = std::fs::read_dir(&aof_dir)
        .expect("appendonlydir")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.to_string_lossy().ends_with(".incr.aof"))
        .expect("incr AOF");
    let theirs = std::fs::read(incr).expect("read AOF");
    let ours = render_aof(&sink.take());
    assert_eq!(
        String::from_utf8_lossy(&ours),
        String::from_utf8_lossy(&theirs)
    );
}
