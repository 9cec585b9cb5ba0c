//! DUMP and RESTORE against redis-server 7.0.15: random writes, DUMPs (payloads compared byte
//! for byte: small values take the same encodings) and RESTOREs of fixed payloads (valid for
//! every type, damaged, short) with every option, replies and final dumps compared, and the
//! propagated stream replayed (`support::run_differential`).

use crate::support;

use forkless_rdb::dump::dump_payload;
use forkless_rdb::{Value, WriteOptions};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::Rng;

const KEYS: &[&str] = &["a", "b", "c", "d"];

fn payloads() -> Vec<Vec<u8>> {
    let o = WriteOptions::default();
    let values = [
        Value::String(b"hello".to_vec()),
        Value::String(b"12345".to_vec()),
        Value::String(vec![b'x'; 300]),
        Value::List(vec![b"a".to_vec(), b"7".to_vec()]),
        Value::Set(vec![b"1".to_vec(), b"2".to_vec()]),
        Value::Set(vec![b"m".to_vec(), b"n".to_vec()]),
        Value::ZSet(vec![(b"m".to_vec(), 1.5), (b"n".to_vec(), -2.0)]),
        Value::Hash(vec![(b"f".to_vec(), b"v".to_vec())]),
    ];
    let mut out: Vec<Vec<u8>> = values
        .iter()
        .map(|v| dump_payload(v, &o).expect("dump"))
        .collect();
    let mut bad = out[0].clone();
    bad[2] ^= 0x20;
    out.push(bad);
    out.push(b"garbage".to_vec());
    out.push(Vec::new());
    out
}

fn gen(rng: &mut StdRng, payloads: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let k = KEYS.choose(rng).unwrap().as_bytes().to_vec();
    let n = rng.gen_range(0..50).to_string().into_bytes();
    let s = |x: &str| x.as_bytes().to_vec();
    match rng.gen_range(0..12) {
        0 => vec![s("SET"), k, n],
        1 => vec![s("RPUSH"), k, n, s("x")],
        2 => vec![s("SADD"), k, n],
        3 => vec![s("HSET"), k, s("f"), n],
        4 => vec![s("ZADD"), k, n.clone(), n],
        5 => vec![s("DEL"), k],
        6 | 7 => vec![s("DUMP"), k],
        _ => {
            let mut c = vec![
                s("RESTORE"),
                k,
                s(["0", "0", "5000", "-1", "x", "100000"].choose(rng).unwrap()),
                payloads.choose(rng).unwrap().clone(),
            ];
            for opt in ["REPLACE", "ABSTTL", "IDLETIME", "FREQ", "BOGUS"] {
                if rng.gen_bool(if opt == "BOGUS" { 0.03 } else { 0.3 }) {
                    c.push(s(opt));
                    if opt == "IDLETIME" || opt == "FREQ" {
                        c.push(s(["10", "-1", "300", "x"].choose(rng).unwrap()));
                    }
                }
            }
            c
        }
    }
}

#[test]
fn dump_and_restore_match_redis() {
    let p = payloads();
    for seed in [1, 2, 3] {
        // DUMP of a set of strings lists its members in hash-table order, which differs
        // between the two: DUMP replies are compared by shape here, byte for byte below.
        support::run_differential(seed, 1500, |rng| gen(rng, &p), &["dump"]);
    }
}

/// Byte-identical payloads for every encoding whose order is defined, and payloads that
/// cross over both ways for the others (hash-table sets and hashes).
#[test]
fn payloads_are_byte_identical_and_cross_over() {
    use forkless_keyspace::{Config, Keyspace, Session};
    use forkless_testkit::{RedisServer, Reply, TempDir};
    let dir = TempDir::new("dump-bytes");
    let Some(redis) = RedisServer::start(dir.path(), &[]) else {
        return;
    };
    let ks = Keyspace::new(Config::default());
    let mut s = Session::default();
    let big: Vec<String> = (0..600).map(|i| format!("member-{i}")).collect();
    let mut setup: Vec<Vec<String>> = vec![
        vec!["SET".into(), "str".into(), "hello world".into()],
        vec!["SET".into(), "int".into(), "-12345".into()],
        vec!["SET".into(), "long".into(), "y".repeat(5000)],
        vec![
            "RPUSH".into(),
            "list".into(),
            "a".into(),
            "1".into(),
            "b".into(),
        ],
        vec![
            "SADD".into(),
            "intset".into(),
            "3".into(),
            "1".into(),
            "2".into(),
        ],
        vec![
            "ZADD".into(),
            "zset".into(),
            "1.5".into(),
            "x".into(),
            "2".into(),
            "y".into(),
        ],
        vec![
            "HSET".into(),
            "hash".into(),
            "f".into(),
            "v".into(),
            "g".into(),
            "w".into(),
        ],
    ];
    let mut sadd = vec!["SADD".to_string(), "bigset".into()];
    sadd.extend(big.iter().cloned());
    setup.push(sadd);
    let mut hset = vec!["HSET".to_string(), "bighash".into()];
    for m in &big {
        hset.push(m.clone());
        hset.push(m.clone());
    }
    setup.push(hset);
    for c in &setup {
        let a: Vec<&[u8]> = c.iter().map(|x| x.as_bytes()).collect();
        redis.call(&a);
        ks.execute(&mut s, &a);
    }
    for key in ["str", "int", "long", "list", "intset", "zset", "hash"] {
        let theirs = redis.call(&[b"DUMP", key.as_bytes()]);
        let ours = support::to_resp(&ks.execute(&mut s, &[b"DUMP", key.as_bytes()]));
        assert_eq!(ours, theirs, "DUMP {key}");
    }
    for key in ["bigset", "bighash", "list", "zset"] {
        // Theirs into ours, ours into theirs: the same value arrives.
        let Reply::Bulk(theirs) = redis.call(&[b"DUMP", key.as_bytes()]) else {
            panic!("no DUMP of {key}");
        };
        let forkless_keyspace::Reply::Bulk(ours) = ks.execute(&mut s, &[b"DUMP", key.as_bytes()])
        else {
            panic!("no DUMP of {key}");
        };
        let copy = format!("{key}-copy");
        let r = ks.execute(&mut s, &[b"RESTORE", copy.as_bytes(), b"0", &theirs]);
        assert!(!r.is_error(), "{r:?}");
        let r = redis.call(&[b"RESTORE", copy.as_bytes(), b"0", &ours]);
        assert_eq!(r, Reply::Simple(b"OK".to_vec()));
    }
    let mut ours = ks.dump();
    let mut theirs = redis.dump();
    ours.sort_by(|a, b| a.key.cmp(&b.key));
    theirs.sort_by(|a, b| a.key.cmp(&b.key));
    support::dumps_match(&ours, &theirs).unwrap();
    assert_eq!(ours.len(), 13);
}
