//! Every RDB fixture written by real Redis reads to exactly the keyspace its `.jsonl` (dumped from
//! a real redis-server that loaded it) describes; the corrupt ones are refused; the RDB preamble
//! of an AOF stops exactly at its checksum.

use std::fs;
use std::io::{BufReader, Read};
use std::path::PathBuf;

use base64::Engine as _;
use forkless_rdb::model::canonicalize;
use forkless_rdb::{read_all, ChecksumStatus, Entry, Item, RdbError, RdbReader, Value};
use serde_json::Value as J;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/fixtures")
}

fn bytes(j: &J) -> Vec<u8> {
    match j {
        J::String(s) => s.as_bytes().to_vec(),
        J::Object(o) => {
            let b = o
                .get("base64")
                .and_then(J::as_str)
                .expect("{\"base64\": ...}");
            base64::engine::general_purpose::STANDARD
                .decode(b)
                .expect("valid base64")
        }
        other => panic!("not a bytes value: {other}"),
    }
}

fn score(j: &J) -> f64 {
    match j {
        J::Number(n) => n.as_f64().expect("finite number"),
        J::String(s) if s == "inf" => f64::INFINITY,
        J::String(s) if s == "-inf" => f64::NEG_INFINITY,
        other => panic!("not a score: {other}"),
    }
}

fn arr(j: &J) -> &Vec<J> {
    j.as_array().expect("array")
}

/// Parse a canonical keyspace dump (docs/keyspace-jsonl.md).
fn parse_jsonl(text: &str) -> Vec<Entry> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let o: J = serde_json::from_str(line).expect("valid JSON line");
            let v = &o["value"];
            let value = match o["type"].as_str().expect("type") {
                "string" => Value::String(bytes(v)),
                "list" => Value::List(arr(v).iter().map(bytes).collect()),
                "set" => Value::Set(arr(v).iter().map(bytes).collect()),
                "zset" => Value::ZSet(
                    arr(v)
                        .iter()
                        .map(|p| (bytes(&arr(p)[0]), score(&arr(p)[1])))
                        .collect(),
                ),
                "hash" => Value::Hash(
                    arr(v)
                        .iter()
                        .map(|p| (bytes(&arr(p)[0]), bytes(&arr(p)[1])))
                        .collect(),
                ),
                // The stream record's own reader (its format is specified in the dump document).
                "stream" => {
                    forkless_dump::parse_line(0, line.as_bytes())
                        .expect("stream record")
                        .value
                }
                t => panic!("unknown type {t}"),
            };
            Entry {
                db: o["db"].as_u64().expect("db") as u32,
                key: bytes(&o["key"]),
                value,
                expire_at_ms: o["expire_at_ms"].as_i64(),
            }
        })
        .collect()
}

fn open(rel: &str) -> BufReader<fs::File> {
    BufReader::new(fs::File::open(fixtures().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}")))
}

fn expected(rel: &str) -> Vec<Entry> {
    let jsonl = fixtures().join(rel).with_extension("jsonl");
    let mut e =
        parse_jsonl(&fs::read_to_string(&jsonl).unwrap_or_else(|e| panic!("{jsonl:?}: {e}")));
    canonicalize(&mut e);
    e
}

/// Compare entry by entry for a readable failure.
fn assert_same(rel: &str, mut got: Vec<Entry>, want: Vec<Entry>) {
    canonicalize(&mut got);
    for (g, w) in got.iter().zip(want.iter()) {
        assert_eq!(g, w, "{rel}: first differing key");
    }
    assert_eq!(got.len(), want.len(), "{rel}: key count");
}

fn all_rdb_fixtures() -> Vec<String> {
    let mut out = Vec::new();
    for dir in ["rdb", "redis-test-assets"] {
        for e in fs::read_dir(fixtures().join(dir)).expect("fixture dir") {
            let name = e
                .expect("dir entry")
                .file_name()
                .into_string()
                .expect("utf-8 name");
            if name.ends_with(".rdb") {
                out.push(format!("{dir}/{name}"));
            }
        }
    }
    out.sort();
    assert!(out.len() >= 20, "fixtures missing: {out:?}");
    out
}

#[test]
fn every_fixture_matches_its_dump() {
    let mut checked = 0;
    for rel in all_rdb_fixtures() {
        if rel.ends_with("corrupt_ziplist.rdb") {
            continue;
        }
        let loaded = read_all(open(&rel)).unwrap_or_else(|e| panic!("{rel}: {e}"));
        assert_same(&rel, loaded.entries, expected(&rel));
        checked += 1;
    }
    assert!(checked >= 19);
}

#[test]
fn versions_and_checksums() {
    let l = read_all(open("rdb/strings.rdb")).unwrap();
    assert_eq!((l.version, l.checksum), (10, ChecksumStatus::Verified));
    assert!(l
        .aux
        .iter()
        .any(|(k, v)| k == b"redis-ver" && v == b"7.0.15"));
    let l = read_all(open("rdb/nochecksum.rdb")).unwrap();
    assert_eq!(l.checksum, ChecksumStatus::Disabled);
    let l = read_all(open("redis-test-assets/encodings.rdb")).unwrap();
    assert_eq!((l.version, l.checksum), (4, ChecksumStatus::Absent));
    let l = read_all(open("redis-test-assets/hash-zipmap.rdb")).unwrap();
    assert_eq!(l.version, 3);
    let l = read_all(open("redis-test-assets/list-quicklist.rdb")).unwrap();
    assert_eq!(l.version, 8);
}

#[test]
fn stream_loads_with_its_group() {
    let l = read_all(open("rdb/with-stream.rdb")).unwrap();
    assert_eq!(l.entries.len(), 2);
    assert!(l.skipped.is_empty());
    let s = l
        .entries
        .iter()
        .find_map(|e| match &e.value {
            Value::Stream(s) => Some(s),
            _ => None,
        })
        .expect("the stream key");
    assert_eq!(s.length, 1);
    assert_eq!(s.groups.len(), 1);
    assert_eq!(s.groups[0].name, b"g");
}

#[test]
fn script_aux_and_empty_keys() {
    let l = read_all(open("redis-test-assets/scriptbackup.rdb")).unwrap();
    assert!(l.entries.is_empty());
    assert!(
        l.aux.iter().any(|(k, _)| k == b"lua"),
        "lua aux field: {:?}",
        l.aux
    );
    let l = read_all(open("redis-test-assets/corrupt_empty_keys.rdb")).unwrap();
    assert!(l.entries.is_empty() && l.skipped.is_empty());
}

#[test]
fn corrupt_ziplist_is_refused_with_key_and_format() {
    let err = read_all(open("redis-test-assets/corrupt_ziplist.rdb")).unwrap_err();
    let msg = err.to_string();
    eprintln!("corrupt_ziplist.rdb: {msg}");
    match &err {
        RdbError::Corrupt {
            key: Some(k), what, ..
        } => {
            assert!(!k.is_empty());
            assert!(what.contains("ziplist"), "{msg}");
        }
        other => panic!("expected Corrupt with a key, got {other:?}"),
    }
    assert!(msg.contains("key") && msg.contains("ziplist"), "{msg}");
}

#[test]
fn rdb_preamble_aof_stops_at_the_checksum() {
    let raw = fs::read(fixtures().join("redis-test-assets/rdb-preamble.aof")).unwrap();
    let mut rd = RdbReader::new(BufReader::new(&raw[..])).unwrap();
    let mut entries = Vec::new();
    let mut ended = false;
    while let Some(it) = rd.next_item().unwrap() {
        match it {
            Item::Entry(e) => entries.push(e),
            Item::End { checksum } => {
                assert_eq!(checksum, ChecksumStatus::Verified);
                ended = true;
            }
            _ => {}
        }
    }
    assert!(ended);
    assert!(rd.next_item().unwrap().is_none());
    let off = rd.offset() as usize;
    let mut rest = Vec::new();
    // Unwrap the BufReader too: the reader must not have pulled more than it consumed from it.
    let mut inner = rd.into_inner();
    inner.read_to_end(&mut rest).unwrap();
    assert_eq!(&raw[off..], &rest[..]);
    assert!(
        rest.starts_with(b"*2\r\n$6\r\nSELECT"),
        "{:?}",
        String::from_utf8_lossy(&rest[..20])
    );
    let mut keys: Vec<_> = entries.iter().map(|e| e.key.clone()).collect();
    keys.sort();
    assert_eq!(keys, vec![b"k1".to_vec(), b"k2".to_vec()]);
}

#[test]
fn wrong_checksum_is_a_mismatch_and_zero_is_disabled() {
    let mut raw = fs::read(fixtures().join("rdb/multidb.rdb")).unwrap();
    let n = raw.len();
    raw[n - 3] ^= 0x40;
    match read_all(&raw[..]) {
        Err(RdbError::ChecksumMismatch { offset, .. }) => assert_eq!(offset as usize, n - 8),
        other => panic!("expected ChecksumMismatch, got {other:?}"),
    }
    // Turning verification off accepts it.
    let opts = forkless_rdb::ReadOptions {
        verify_checksum: false,
    };
    let rd = RdbReader::with_options(&raw[..], opts).unwrap();
    let items: Result<Vec<_>, _> = rd.collect();
    assert!(matches!(
        items.unwrap().last(),
        Some(Item::End {
            checksum: ChecksumStatus::Disabled
        })
    ));
    // A stored 0 reads as Disabled.
    raw[n - 8..].fill(0);
    let l = read_all(&raw[..]).unwrap();
    assert_eq!(l.checksum, ChecksumStatus::Disabled);
    assert_same("multidb", l.entries, expected("rdb/multidb.rdb"));
}

#[test]
fn multidb_and_expiry_fields() {
    let l = read_all(open("rdb/multidb.rdb")).unwrap();
    let mut dbs: Vec<u32> = l.entries.iter().map(|e| e.db).collect();
    dbs.dedup();
    assert_eq!(dbs, vec![0, 3, 15]);
    let l = read_all(open("rdb/expires.rdb")).unwrap();
    assert!(l.entries.iter().any(|e| e.expire_at_ms.is_some()));
    assert!(l.entries.iter().any(|e| e.expire_at_ms.is_none()));
}
