//! HRANDFIELD and ZRANDMEMBER against redis-server 7.0.15: the same commands on the same data.
//! Deterministic replies (errors, nil, empty arrays, a count that covers the whole small hash or
//! zset, whose order is the listpack's) must be equal; random replies are checked for what
//! Redis guarantees, on both sides: the length, membership, distinct elements for a positive
//! count, the value or score paired with each field or member, and that repeated draws do vary.

use crate::support;

use std::collections::{HashMap, HashSet};

use forkless_keyspace::{Config, Keyspace, Session};
use forkless_testkit::{RedisServer, Reply, ReplyExt, TempDir};
use support::{show, to_resp};

/// A key's fields (members) and values (scores as Redis formats them).
type Data = HashMap<Vec<u8>, Vec<u8>>;

struct Both {
    ks: Keyspace,
    s: Session,
    redis: RedisServer,
}

impl Both {
    fn run(&mut self, argv: &[&str]) -> (Reply, Reply) {
        let a: Vec<&[u8]> = argv.iter().map(|x| x.as_bytes()).collect();
        (
            to_resp(&self.ks.execute(&mut self.s, &a)),
            self.redis.call(&a),
        )
    }
    fn same(&mut self, argv: &[&str]) {
        let (ours, theirs) = self.run(argv);
        assert_eq!(
            ours,
            theirs,
            "{argv:?}: ours {} redis-server {}",
            show(&ours),
            show(&theirs)
        );
    }
}

fn bulks(v: &Reply) -> Vec<Vec<u8>> {
    match v {
        Reply::Array(a) => a.iter().map(|x| x.bytes()).collect(),
        other => panic!("expected an array, got {}", show(other)),
    }
}

/// Check one random reply against the data: `pairs` when WITH*, `distinct` for positive counts.
fn check(
    who: &str,
    argv: &[&str],
    reply: &Reply,
    data: &Data,
    want_len: usize,
    pairs: bool,
    distinct: bool,
) -> Vec<Vec<u8>> {
    let items = bulks(reply);
    let step = if pairs { 2 } else { 1 };
    assert_eq!(
        items.len(),
        want_len * step,
        "{who} {argv:?}: {}",
        show(reply)
    );
    let mut seen = HashSet::new();
    let mut picked = Vec::new();
    for chunk in items.chunks(step) {
        let v = data
            .get(&chunk[0])
            .unwrap_or_else(|| panic!("{who} {argv:?}: {:?} is not in the key", chunk[0]));
        if pairs {
            assert_eq!(&chunk[1], v, "{who} {argv:?}: value of {:?}", chunk[0]);
        }
        if distinct {
            assert!(seen.insert(chunk[0].clone()), "{who} {argv:?}: repeated");
        }
        picked.push(chunk[0].clone());
    }
    picked
}

#[test]
fn hrandfield_and_zrandmember_match_redis_server() {
    let dir = TempDir::new("forkless-randfield");
    let Some(redis) = RedisServer::start(dir.path(), &[]) else {
        return;
    };
    let mut b = Both {
        ks: Keyspace::new(Config::seeded(17)),
        s: Session::default(),
        redis,
    };
    // Small (listpack-encoded in Redis) and large (hash table / skip list) keys, a string.
    let mut hsmall = HashMap::new();
    let mut zsmall = HashMap::new();
    for i in 0..5 {
        let (f, v) = (format!("f{i}"), format!("v{i}"));
        b.same(&["HSET", "hsmall", &f, &v]);
        hsmall.insert(f.into_bytes(), v.into_bytes());
        let (m, s) = (format!("m{i}"), format!("{}.5", i * 3 % 5));
        b.same(&["ZADD", "zsmall", &s, &m]);
        zsmall.insert(m.into_bytes(), s.into_bytes());
    }
    let mut hbig = HashMap::new();
    let mut zbig = HashMap::new();
    for i in 0..300 {
        let (f, v) = (format!("field:{i}"), format!("value:{i}"));
        b.same(&["HSET", "hbig", &f, &v]);
        hbig.insert(f.into_bytes(), v.into_bytes());
        let (m, s) = (format!("member:{i}"), format!("{}", i * 7 % 300));
        b.same(&["ZADD", "zbig", &s, &m]);
        zbig.insert(m.into_bytes(), s.into_bytes());
    }
    b.same(&["SET", "str", "x"]);

    // Deterministic: errors, missing keys, zero, the whole small key.
    for (cmd, with) in [("HRANDFIELD", "WITHVALUES"), ("ZRANDMEMBER", "WITHSCORES")] {
        let lw = with.to_ascii_lowercase();
        for argv in [
            vec![cmd, "missing"],
            vec![cmd, "missing", "3"],
            vec![cmd, "missing", "-3", with],
            vec![cmd, "missing", "x"],
            vec![cmd, "str"],
            vec![cmd, "str", "2"],
            vec![cmd, "str", "x"],
            vec![cmd, "str", "2", "bogus"],
            vec![cmd, "hsmall", "0"],
            vec![cmd, "zsmall", "0", with],
            vec![cmd, "hsmall", "1.5"],
            vec![cmd, "hsmall", "-9223372036854775808"],
            vec![cmd, "hsmall", "9223372036854775807", with],
            vec![cmd, "zsmall", "-9223372036854775807", with],
            vec![cmd, "zsmall", "4611686018427387904", with],
            vec![cmd, "zsmall", "-4611686018427387904", with],
            vec![cmd, "hsmall", "2", with, with],
            vec![cmd, "hsmall", "2", "withnothing"],
            vec![cmd, "zsmall", "2", "withvalues", "x"],
            vec![cmd, "hsmall", "5", with],
            vec![cmd, "hsmall", "100", &lw],
            vec![cmd, "zsmall", "5", with],
            vec![cmd, "zsmall", "6"],
            vec![cmd, "hsmall", "5"],
        ] {
            b.same(&argv);
        }
    }
    let cases: [(&str, &str, &Data, &str); 4] = [
        ("HRANDFIELD", "hsmall", &hsmall, "WITHVALUES"),
        ("HRANDFIELD", "hbig", &hbig, "WITHVALUES"),
        ("ZRANDMEMBER", "zsmall", &zsmall, "WITHSCORES"),
        ("ZRANDMEMBER", "zbig", &zbig, "WITHSCORES"),
    ];
    for (cmd, key, data, with) in cases {
        let n = data.len();
        // Whole big keys (Redis's order is its hash table's): the same set of pairs.
        for argv in [vec![cmd, key, "1000", with], vec![cmd, key, "1000"]] {
            let (ours, theirs) = b.run(&argv);
            let pairs = argv.len() == 4;
            let mut o = check("ours", &argv, &ours, data, n, pairs, true);
            let mut t = check("redis-server", &argv, &theirs, data, n, pairs, true);
            o.sort();
            t.sort();
            assert_eq!(o, t, "{argv:?}");
        }
        // Random draws: shape and content on both sides, and variety over repeats.
        for (count, len, distinct) in [
            ("3", 3, true),
            ("1", 1, true),
            ("-1", 1, false),
            ("-7", 7, false),
            ("-20", 20, false),
        ] {
            for pairs in [false, true] {
                let mut argv = vec![cmd, key, count];
                if pairs {
                    argv.push(with);
                }
                let mut variety = HashSet::new();
                for _ in 0..40 {
                    let (ours, theirs) = b.run(&argv);
                    let o = check("ours", &argv, &ours, data, len, pairs, distinct);
                    check("redis-server", &argv, &theirs, data, len, pairs, distinct);
                    variety.insert(o);
                }
                assert!(variety.len() > 1, "{argv:?}: ours never varies");
            }
        }
        // Negative counts beyond the size repeat elements (all from the key).
        let big = format!("-{}", n * 3);
        let argv = [cmd, key, big.as_str()];
        let (ours, theirs) = b.run(&argv);
        check("ours", &argv, &ours, data, n * 3, false, false);
        check("redis-server", &argv, &theirs, data, n * 3, false, false);
        // No count: one field / member of the key.
        for _ in 0..20 {
            let (ours, theirs) = b.run(&[cmd, key]);
            assert!(data.contains_key(&ours.bytes()), "{}", show(&ours));
            assert!(data.contains_key(&theirs.bytes()), "{}", show(&theirs));
        }
    }
}
