//! The AOF rewrite of a stream against redis-server 7.0.15's own: redis-server builds streams
//! (deleted entries, an emptied stream, groups with pending entries, consumers with and without
//! them), rewrites its AOF with a RESP base (`aof-use-rdb-preamble no`) and saves an RDB; our
//! reader loads that RDB (so delivery times are Redis's) and [`forkless_aof::stream_commands`]
//! must produce, key by key, exactly the commands of Redis's base file.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use forkless_rdb::Value;
use forkless_testkit::{RedisServer, Reply, ReplyExt, TempDir};

/// The commands of a RESP file (arrays of bulk strings).
fn parse_resp(mut b: &[u8]) -> Vec<Vec<Vec<u8>>> {
    fn line<'a>(b: &mut &'a [u8]) -> &'a [u8] {
        let i = b.windows(2).position(|w| w == b"\r\n").expect("CRLF");
        let l = &b[..i];
        *b = &b[i + 2..];
        l
    }
    let num = |l: &[u8]| -> usize { std::str::from_utf8(&l[1..]).unwrap().parse().unwrap() };
    let mut out = Vec::new();
    while !b.is_empty() {
        let l = line(&mut b);
        assert_eq!(l[0], b'*', "array expected");
        let n = num(l);
        let mut argv = Vec::with_capacity(n);
        for _ in 0..n {
            let l = line(&mut b);
            let len = num(l);
            argv.push(b[..len].to_vec());
            b = &b[len + 2..];
        }
        out.push(argv);
    }
    out
}

/// The key a rewrite command is about.
fn key_of(argv: &[Vec<u8>]) -> Vec<u8> {
    if argv[0].eq_ignore_ascii_case(b"XGROUP") {
        argv[2].clone()
    } else {
        argv[1].clone()
    }
}

#[test]
fn stream_rewrite_matches_redis() {
    let dir = TempDir::new("forkless-stream-aof");
    let Some(redis) = RedisServer::start(
        dir.path(),
        &["--appendonly", "yes", "--aof-use-rdb-preamble", "no"],
    ) else {
        return;
    };
    let cmds: &[&[&str]] = &[
        &["XADD", "s", "1-1", "a", "1"],
        &["XADD", "s", "2-1", "b", "2", "c", "3"],
        &["XADD", "s", "3-0", "a", "4"],
        &["XADD", "s", "4-0", "a", "5"],
        &["XDEL", "s", "2-1"],
        &["XGROUP", "CREATE", "s", "g1", "0"],
        &["XGROUP", "CREATE", "s", "g0", "$"],
        &[
            "XREADGROUP",
            "GROUP",
            "g1",
            "alice",
            "COUNT",
            "1",
            "STREAMS",
            "s",
            ">",
        ],
        &["XREADGROUP", "GROUP", "g1", "bob", "STREAMS", "s", ">"],
        &["XGROUP", "CREATECONSUMER", "s", "g1", "carol"],
        &["XCLAIM", "s", "g1", "alice", "0", "4-0", "RETRYCOUNT", "7"],
        &["XADD", "e", "1-1", "x", "y"],
        &["XDEL", "e", "1-1"],
        &["XGROUP", "CREATE", "e", "ge", "$", "ENTRIESREAD", "3"],
        &["XADD", "t", "5-5", "f", "v"],
        &[
            "XSETID",
            "t",
            "9-9",
            "ENTRIESADDED",
            "4",
            "MAXDELETEDID",
            "6-0",
        ],
    ];
    for c in cmds {
        let a: Vec<&[u8]> = c.iter().map(|x| x.as_bytes()).collect();
        let r = redis.call(&a);
        assert!(!matches!(r, Reply::Error(_)), "{c:?}: {r:?}");
    }
    redis.call(&[b"BGREWRITEAOF"]);
    let start = Instant::now();
    loop {
        let info =
            String::from_utf8_lossy(&redis.call(&[b"INFO", b"persistence"]).bytes()).into_owned();
        if info.contains("aof_rewrite_in_progress:0") && info.contains("aof_rewrite_scheduled:0") {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "rewrite did not finish"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    redis.call(&[b"SAVE"]);
    let aofdir = redis.dir().join("appendonlydir");
    let base = std::fs::read_dir(&aofdir)
        .expect("appendonlydir")
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().contains(".base.aof"))
        .max()
        .expect("a base file");
    let theirs = parse_resp(&std::fs::read(&base).expect("base"));
    let mut by_key: BTreeMap<Vec<u8>, Vec<Vec<Vec<u8>>>> = BTreeMap::new();
    for c in theirs {
        if c[0].eq_ignore_ascii_case(b"SELECT") {
            continue;
        }
        by_key.entry(key_of(&c)).or_default().push(c);
    }
    let loaded = forkless_rdb::read_all(std::io::BufReader::new(
        std::fs::File::open(redis.dir().join("dump.rdb")).expect("dump.rdb"),
    ))
    .expect("read redis's RDB");
    let mut n = 0;
    for e in &loaded.entries {
        let Value::Stream(s) = &e.value else {
            continue;
        };
        let ours = forkless_aof::stream_commands(&e.key, s);
        let want = by_key.get(&e.key).cloned().unwrap_or_default();
        let show = |v: &[Vec<Vec<u8>>]| {
            v.iter()
                .map(|c| {
                    c.iter()
                        .map(|a| String::from_utf8_lossy(a).into_owned())
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .collect::<Vec<_>>()
                .join("\n")
        };
        assert_eq!(
            show(&ours),
            show(&want),
            "key {}",
            String::from_utf8_lossy(&e.key)
        );
        n += 1;
    }
    assert_eq!(n, 3);
}
