//! Round trips of the dump format: every fixture dump, and arbitrary keyspaces (proptest).

use std::path::PathBuf;

use forkless_dump::{diff, read_jsonl, write_jsonl};
use forkless_rdb::model::{canonicalize, Entry, Value};
use proptest::prelude::*;

fn fixture_dumps() -> Vec<PathBuf> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/fixtures");
    let mut out = Vec::new();
    for dir in ["rdb", "redis-test-assets", "aof"] {
        for e in std::fs::read_dir(root.join(dir)).expect("fixture dir") {
            let p = e.expect("dir entry").path();
            if p.extension().is_some_and(|x| x == "jsonl") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn every_fixture_dump_round_trips() {
    let paths = fixture_dumps();
    assert!(paths.len() >= 15, "found only {paths:?}");
    for p in paths {
        let text = std::fs::read(&p).unwrap();
        let entries = read_jsonl(&text[..]).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        let mut out = Vec::new();
        write_jsonl(&mut out, &entries).unwrap();
        let again = read_jsonl(&out[..]).unwrap();
        assert_eq!(
            entries,
            again,
            "{}: {:?}",
            p.display(),
            diff(&entries, &again)
        );
        // Canonical output is stable: writing what was read gives the same bytes.
        let mut out2 = Vec::new();
        write_jsonl(&mut out2, &again).unwrap();
        assert_eq!(out, out2, "{}", p.display());
        // Line order is the file's order when the file is canonical.
        assert_eq!(
            text.iter().filter(|&&b| b == b'\n').count(),
            entries.len(),
            "{}",
            p.display()
        );
    }
}

#[test]
fn zset_edge_scores_keep_their_values() {
    let p =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/fixtures/rdb/zsets.jsonl");
    let entries = read_jsonl(std::fs::File::open(p).map(std::io::BufReader::new).unwrap()).unwrap();
    let edge = entries
        .iter()
        .find(|e| e.key == b"zset:edge")
        .expect("zset:edge");
    let mut out = Vec::new();
    write_jsonl(&mut out, std::slice::from_ref(edge)).unwrap();
    let line = String::from_utf8(out).unwrap();
    assert!(line.contains(r#"["tiny",5e-324]"#), "{line}");
    assert!(
        line.contains(r#"["huge",1.7976931348623157e+308]"#),
        "{line}"
    );
    let small = entries
        .iter()
        .find(|e| e.key == b"zset:small")
        .expect("zset:small");
    let mut out = Vec::new();
    write_jsonl(&mut out, std::slice::from_ref(small)).unwrap();
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "{\"db\":0,\"key\":\"zset:small\",\"type\":\"zset\",\"value\":[[\"bottom\",\"-inf\"],[\"c\",-3.0],[\"zero\",0.0],[\"a\",1.0],[\"b\",2.5],[\"top\",\"inf\"]],\"expire_at_ms\":null}\n"
    );
}

#[test]
fn negative_zero_and_binary_bytes_round_trip_exactly() {
    let entries = vec![Entry {
        db: 7,
        key: vec![0, 0xff, b'\n'],
        value: Value::ZSet(vec![(b"n".to_vec(), -0.0), (vec![0xc3], f64::MIN_POSITIVE)]),
        expire_at_ms: Some(-5),
    }];
    let mut out = Vec::new();
    write_jsonl(&mut out, &entries).unwrap();
    let text = String::from_utf8(out.clone()).unwrap();
    assert!(text.contains(r#""key":{"base64":"AP8K"}"#), "{text}");
    assert!(text.contains(r#"["n",-0.0]"#), "{text}");
    let back = read_jsonl(&out[..]).unwrap();
    let Value::ZSet(z) = &back[0].value else {
        panic!()
    };
    assert_eq!(z[0].1.to_bits(), (-0.0f64).to_bits());
    assert_eq!(back, entries);
}

#[test]
fn signed_zero_scores_tie_like_in_redis() {
    let e = Entry {
        db: 0,
        key: b"z".to_vec(),
        value: Value::ZSet(vec![
            (b"b".to_vec(), -0.0),
            (b"a".to_vec(), 0.0),
            (b"c".to_vec(), -1.0),
        ]),
        expire_at_ms: None,
    };
    let mut out = Vec::new();
    write_jsonl(&mut out, &[e]).unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(
        text.contains(r#"[["c",-1.0],["a",0.0],["b",-0.0]]"#),
        "{text}"
    );
}

#[test]
fn nan_scores_are_refused() {
    let e = Entry {
        db: 0,
        key: b"k".to_vec(),
        value: Value::ZSet(vec![(b"m".to_vec(), f64::NAN)]),
        expire_at_ms: None,
    };
    let err = write_jsonl(Vec::new(), &[e]).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
    assert!(err.to_string().contains("NaN"), "{err}");
}

fn bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        "[a-z]{0,4}".prop_map(String::into_bytes),
        "\\PC{0,4}".prop_map(String::into_bytes),
        proptest::collection::vec(any::<u8>(), 0..6),
    ]
}

fn score() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<f64>().prop_filter("no NaN", |f| !f.is_nan()),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
        Just(-0.0),
        (-1000i32..1000).prop_map(f64::from),
    ]
}

fn unique<T, K: Ord + Clone>(mut v: Vec<T>, key: impl Fn(&T) -> K) -> Vec<T> {
    let mut seen = std::collections::BTreeSet::new();
    v.retain(|x| seen.insert(key(x)));
    v
}

fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        bytes().prop_map(Value::String),
        proptest::collection::vec(bytes(), 1..5).prop_map(Value::List),
        proptest::collection::vec(bytes(), 1..5).prop_map(|v| Value::Set(unique(v, |m| m.clone()))),
        proptest::collection::vec((bytes(), score()), 1..5)
            .prop_map(|v| Value::ZSet(unique(v, |p| p.0.clone()))),
        proptest::collection::vec((bytes(), bytes()), 1..5)
            .prop_map(|v| Value::Hash(unique(v, |p| p.0.clone()))),
    ]
}

fn keyspace() -> impl Strategy<Value = Vec<Entry>> {
    proptest::collection::vec(
        (
            0u32..4,
            bytes(),
            value(),
            proptest::option::of(any::<i64>()),
        )
            .prop_map(|(db, key, value, expire_at_ms)| Entry {
                db,
                key,
                value,
                expire_at_ms,
            }),
        0..8,
    )
    .prop_map(|v| unique(v, |e| (e.db, e.key.clone())))
}

proptest! {
    #[test]
    fn arbitrary_keyspaces_round_trip(entries in keyspace()) {
        let mut out = Vec::new();
        write_jsonl(&mut out, &entries).unwrap();
        let back = read_jsonl(&out[..]).unwrap();
        let mut expected = entries.clone();
        canonicalize(&mut expected);
        prop_assert_eq!(&back, &expected);
        // Bit-exact scores (== would let -0.0 and 0.0 pass for each other).
        for (x, y) in back.iter().zip(&expected) {
            if let (Value::ZSet(p), Value::ZSet(q)) = (&x.value, &y.value) {
                for (a, b) in p.iter().zip(q) {
                    prop_assert_eq!(a.1.to_bits(), b.1.to_bits());
                }
            }
        }
        prop_assert!(diff(&back, &entries).is_empty());
    }
}
