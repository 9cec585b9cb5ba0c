//! Oracle: files written by [`forkless_rdb::write_all`] load into redis-server 7.0.15 with the
//! same keyspace, `redis-check-rdb` calls them OK, and the server keeps the encodings we chose
//! (`OBJECT ENCODING`). Covers every type, the encoding thresholds, integer-string edges, special
//! scores, expiries in 2100, several databases, compression on and off, checksum off.
//! Skipped (with a notice) when redis-server is absent, unless FORKLESS_REQUIRE_REDIS=1.

use forkless_rdb::model::canonicalize;
use forkless_rdb::{write_all, Entry, Value, WriteOptions};
use forkless_testkit::{redis_check_rdb, redis_load_rdb, RedisServer, Reply, TempDir};

const FAR: i64 = 4_102_444_800_000; // 2100-01-01 in ms

fn b(s: &str) -> Vec<u8> {
    s.as_bytes().to_vec()
}

fn entry(db: u32, key: &str, value: Value, expire_at_ms: Option<i64>) -> Entry {
    Entry {
        db,
        key: b(key),
        value,
        expire_at_ms,
    }
}

/// Deterministic pseudo-random bytes (xorshift).
fn noise(seed: u64, n: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn ints(n: usize, scale: i64) -> Vec<Vec<u8>> {
    (0..n as i64)
        .map(|i| (i * scale - 1000).to_string().into_bytes())
        .collect()
}

fn fields(n: usize, val_len: usize) -> Vec<(Vec<u8>, Vec<u8>)> {
    (0..n)
        .map(|i| {
            let mut v = format!("value-{i}-").into_bytes();
            v.resize(val_len.max(v.len()), b'v');
            (format!("field-{i}").into_bytes(), v)
        })
        .collect()
}

fn zpairs(n: usize, member_len: usize) -> Vec<(Vec<u8>, f64)> {
    (0..n)
        .map(|i| {
            let mut m = format!("m{i}-").into_bytes();
            m.resize(member_len.max(m.len()), b'x');
            (m, (i as f64) * 0.5 - 10.0)
        })
        .collect()
}

/// The keyspace every variant writes, with the `OBJECT ENCODING` Redis must report per key.
fn keyspace() -> (Vec<Entry>, Vec<(&'static str, &'static str)>) {
    let mut e = Vec::new();
    for s in [
        "0",
        "1",
        "-1",
        "127",
        "128",
        "-128",
        "-129",
        "32767",
        "32768",
        "-32768",
        "-32769",
        "2147483647",
        "2147483648",
        "-2147483648",
        "-2147483649",
        "9223372036854775807",
        "-9223372036854775808",
        "9223372036854775808",
        "007",
        "-0",
        "+1",
        " 1",
        "1 ",
        "1.5",
        "",
    ] {
        e.push(entry(0, &format!("int:{s:?}"), Value::String(b(s)), None));
    }
    e.push(Entry {
        db: 0,
        key: b"127".to_vec(),
        value: Value::String(b("int key")),
        expire_at_ms: None,
    });
    e.push(entry(
        0,
        "str:compressible",
        Value::String(b"abcdefghij".repeat(50)),
        None,
    ));
    e.push(entry(0, "str:random", Value::String(noise(7, 300)), None));
    e.push(entry(
        0,
        "str:100k",
        Value::String(vec![b'x'; 100_000]),
        Some(FAR),
    ));
    e.push(Entry {
        db: 0,
        key: b"bin\x00key\r\n".to_vec(),
        value: Value::String(b"v\x00\xff".to_vec()),
        expire_at_ms: None,
    });
    e.push(entry(
        0,
        &"long-key-".repeat(10),
        Value::String(b("k")),
        None,
    ));

    let mixed: Vec<Vec<u8>> = (0..2000)
        .map(|i| {
            if i % 3 == 0 {
                (i * 7919).to_string().into_bytes()
            } else {
                format!("item-{i}").into_bytes()
            }
        })
        .collect();
    e.push(entry(0, "list:big", Value::List(mixed), Some(FAR)));
    e.push(entry(
        0,
        "list:small",
        Value::List(vec![
            b("a"),
            b("1"),
            b("-5"),
            b("70000"),
            b("9999999999"),
            b"\x00\xff".to_vec(),
        ]),
        None,
    ));
    e.push(entry(
        0,
        "list:bigvals",
        Value::List(vec![vec![b'y'; 9000], vec![b'z'; 100], noise(3, 20_000)]),
        None,
    ));
    e.push(entry(
        0,
        "list:100b",
        Value::List(
            (0..500)
                .map(|i| {
                    let mut v = format!("{i}-").into_bytes();
                    v.resize(100, b'p');
                    v
                })
                .collect(),
        ),
        None,
    ));
    e.push(entry(0, "list:one", Value::List(vec![b("only")]), None));

    e.push(entry(0, "set:int512", Value::Set(ints(512, 3)), None));
    e.push(entry(0, "set:int513", Value::Set(ints(513, 3)), None));
    e.push(entry(
        0,
        "set:int64",
        Value::Set(vec![
            b("-9223372036854775808"),
            b("9223372036854775807"),
            b("0"),
        ]),
        None,
    ));
    e.push(entry(
        0,
        "set:int32",
        Value::Set(vec![b("-2147483648"), b("65536"), b("1")]),
        None,
    ));
    e.push(entry(
        0,
        "set:noncanon",
        Value::Set(vec![b("1"), b("007")]),
        None,
    ));
    e.push(entry(
        0,
        "set:str",
        Value::Set(
            (0..300)
                .map(|i| format!("member-{i}").into_bytes())
                .collect(),
        ),
        Some(FAR),
    ));

    for (n, len) in [(127, 8), (128, 8), (129, 8), (10, 64), (10, 65)] {
        e.push(entry(
            0,
            &format!("zset:{n}x{len}"),
            Value::ZSet(zpairs(n, len)),
            None,
        ));
    }
    e.push(entry(
        0,
        "zset:special",
        Value::ZSet(vec![
            (b("negzero"), -0.0),
            (b("tiny"), 5e-324),
            (b("max"), f64::MAX),
            (b("inf"), f64::INFINITY),
            (b("ninf"), f64::NEG_INFINITY),
            (b("third"), 1.0 / 3.0),
            (b("big"), 1e20),
            (b("b-same"), 2.0),
            (b("a-same"), 2.0),
            (b("neg"), -1.5),
        ]),
        None,
    ));
    e.push(entry(
        0,
        "zset:big-special",
        Value::ZSet(
            [
                zpairs(200, 4),
                vec![(b("negzero"), -0.0), (b("ninf"), f64::NEG_INFINITY)],
            ]
            .concat(),
        ),
        None,
    ));

    for (n, len) in [
        (127, 10),
        (128, 10),
        (129, 10),
        (512, 10),
        (513, 10),
        (5, 64),
        (5, 65),
    ] {
        e.push(entry(
            0,
            &format!("hash:{n}x{len}"),
            Value::Hash(fields(n, len)),
            None,
        ));
    }
    e.push(entry(
        0,
        "hash:longfield",
        Value::Hash(vec![(vec![b'f'; 65], b("v")), (b("1"), b("2"))]),
        Some(FAR),
    ));

    e.push(entry(3, "db3:str", Value::String(b("three")), Some(FAR)));
    e.push(entry(3, "db3:list", Value::List(vec![b("x")]), None));
    e.push(entry(
        15,
        "db15:hash",
        Value::Hash(vec![(b("f"), b("v"))]),
        None,
    ));

    let encodings = vec![
        ("list:big", "quicklist"),
        ("set:int512", "intset"),
        ("set:int513", "hashtable"),
        ("set:int64", "intset"),
        ("set:noncanon", "hashtable"),
        ("set:str", "hashtable"),
        ("zset:127x8", "listpack"),
        ("zset:128x8", "listpack"),
        ("zset:129x8", "skiplist"),
        ("zset:10x64", "listpack"),
        ("zset:10x65", "skiplist"),
        ("zset:special", "listpack"),
        ("hash:129x10", "listpack"),
        ("hash:512x10", "listpack"),
        ("hash:513x10", "hashtable"),
        ("hash:5x64", "listpack"),
        ("hash:5x65", "hashtable"),
        ("hash:longfield", "hashtable"),
    ];
    (e, encodings)
}

fn write_file(
    dir: &TempDir,
    name: &str,
    entries: &[Entry],
    opts: WriteOptions,
) -> std::path::PathBuf {
    let path = dir.path().join(name);
    let file = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    write_all(file, entries, opts).unwrap();
    path
}

#[test]
fn redis_loads_what_we_write() {
    let (entries, _) = keyspace();
    let mut expected = entries.clone();
    canonicalize(&mut expected);
    let dir = TempDir::new("forkless-oracle-writer");
    let variants = [
        ("default.rdb", WriteOptions::default()),
        (
            "nocompress.rdb",
            WriteOptions {
                compression: false,
                ..WriteOptions::default()
            },
        ),
        (
            "nochecksum.rdb",
            WriteOptions {
                checksum: false,
                ..WriteOptions::default()
            },
        ),
        (
            "aofbase-aux.rdb",
            WriteOptions {
                aof_base: true,
                ctime: Some(1_700_000_000),
                used_mem: 123_456_789,
                extra_aux: vec![
                    (b("forkless-offset"), b("42")),
                    (b("forkless-note"), b"x".repeat(40)),
                ],
                ..WriteOptions::default()
            },
        ),
    ];
    for (name, opts) in variants {
        let path = write_file(&dir, name, &entries, opts);
        let Some(check) = redis_check_rdb(&path) else {
            return;
        };
        if let Err(out) = check {
            panic!("redis-check-rdb refuses {name}:\n{out}");
        }
        let Some(loaded) = redis_load_rdb(&path) else {
            return;
        };
        let got = loaded.unwrap_or_else(|log| panic!("redis-server refuses {name}:\n{log}"));
        assert_eq!(got.len(), expected.len(), "{name}: key count");
        for (g, x) in got.iter().zip(&expected) {
            assert_eq!(g, x, "{name}: key {:?}", String::from_utf8_lossy(&x.key));
        }
    }
}

#[test]
fn redis_keeps_our_encodings() {
    let (entries, encodings) = keyspace();
    let dir = TempDir::new("forkless-oracle-encodings");
    write_file(&dir, "dump.rdb", &entries, WriteOptions::default());
    let Some(server) = RedisServer::start(dir.path(), &["--dbfilename", "dump.rdb"]) else {
        return;
    };
    for (key, want) in encodings {
        let got = server.call(&[b"OBJECT", b"ENCODING", key.as_bytes()]);
        assert_eq!(
            got,
            Reply::Bulk(want.as_bytes().to_vec()),
            "OBJECT ENCODING {key}"
        );
    }
}

#[test]
fn redis_deep_sanitization_accepts_our_blobs() {
    // `sanitize-dump-payload yes` makes Redis validate every listpack, intset and quicklist node
    // entry by entry (and look for duplicates) while loading.
    let (entries, _) = keyspace();
    let mut expected = entries.clone();
    canonicalize(&mut expected);
    let dir = TempDir::new("forkless-oracle-sanitize");
    write_file(&dir, "dump.rdb", &entries, WriteOptions::default());
    let args = ["--dbfilename", "dump.rdb", "--sanitize-dump-payload", "yes"];
    let Some(server) = RedisServer::try_start(dir.path(), &args) else {
        return;
    };
    let server = server.unwrap_or_else(|log| panic!("redis-server refuses our file:\n{log}"));
    assert_eq!(server.dump(), expected);
}
