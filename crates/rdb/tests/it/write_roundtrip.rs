//! Round trip: random keyspaces of every type, written by [`forkless_rdb::write_all`] and read
//! back by [`forkless_rdb::read_all`], give the same keyspace. Sizes cross every encoding
//! threshold (127/128/129 and 511/512/513 entries, 64/65-byte elements, 8 KiB list nodes),
//! integers sit at encoding edges, scores include -0, 5e-324, f64::MAX and the infinities.
//!
//! One normalization: a listpack zset stores an integral score as an integer, so Redis (and we)
//! turn a score of -0 into 0 there; both sides map -0 to 0 before comparing.

use std::collections::{BTreeMap, BTreeSet};

use forkless_rdb::model::canonicalize;
use forkless_rdb::{read_all, write_all, EncodingLimits, Entry, RdbReader, Value, WriteOptions};
use proptest::prelude::*;

const EDGE_STRINGS: &[&str] = &[
    "0",
    "127",
    "128",
    "-128",
    "-129",
    "-32768",
    "32767",
    "32768",
    "2147483647",
    "-2147483648",
    "2147483648",
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
    "a",
    "4095",
    "-4096",
    "4096",
    "8388607",
    "-8388609",
];

const EDGE_SCORES: &[f64] = &[
    -0.0,
    0.0,
    5e-324,
    1.797_693_134_862_315_7e308,
    f64::INFINITY,
    f64::NEG_INFINITY,
    1.5,
    -2.0,
    4_611_686_018_427_387_904.0,
    4_611_686_018_427_389_952.0,
    0.1,
];

fn element(max_len: usize) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => proptest::sample::select(EDGE_STRINGS).prop_map(|s| s.as_bytes().to_vec()),
        3 => proptest::collection::vec(any::<u8>(), 0..=max_len.min(80)),
        1 => (0..=max_len).prop_map(|n| vec![b'q'; n]),
        1 => any::<i64>().prop_map(|v| v.to_string().into_bytes()),
    ]
}

/// Element counts around a threshold, or small.
fn count_near(thresholds: &'static [usize]) -> impl Strategy<Value = usize> {
    prop_oneof![1usize..12, proptest::sample::select(thresholds)]
}

fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        element(300).prop_map(Value::String),
        (0usize..30_000)
            .prop_map(|n| Value::String(b"abc".iter().cycle().take(n).copied().collect())),
        // Lists: many small elements (several 8 KiB nodes), or a few big ones.
        prop_oneof![
            proptest::collection::vec(element(120), 1..700),
            proptest::collection::vec(
                prop_oneof![element(40), (8000usize..8300).prop_map(|n| vec![b'L'; n])],
                1..8
            ),
        ]
        .prop_map(Value::List),
        // Integer sets around 512, or mixed members.
        (
            count_near(&[511, 512, 513]),
            any::<i64>(),
            1i64..1_000_000_000_000
        )
            .prop_map(|(n, base, step)| Value::Set(
                (0..n as i64)
                    .map(|i| base
                        .wrapping_add(i.wrapping_mul(step))
                        .to_string()
                        .into_bytes())
                    .collect()
            )),
        proptest::collection::vec(element(70), 1..40).prop_map(Value::Set),
        (
            count_near(&[127, 128, 129]),
            prop_oneof![Just(64usize), Just(65), Just(8)],
            proptest::collection::vec(
                prop_oneof![
                    proptest::sample::select(EDGE_SCORES),
                    any::<f64>().prop_filter("no NaN", |f| !f.is_nan()),
                    (-1000i64..1000).prop_map(|i| i as f64)
                ],
                1..20
            )
        )
            .prop_map(|(n, len, scores)| Value::ZSet(
                (0..n)
                    .map(|i| {
                        let mut m = format!("{i}:").into_bytes();
                        m.resize(if i == 0 { len } else { m.len().max(len / 2) }, b'm');
                        (m, scores[i % scores.len()])
                    })
                    .collect()
            )),
        (
            count_near(&[127, 128, 129, 511, 512, 513]),
            prop_oneof![Just(64usize), Just(65), Just(3)],
            element(64)
        )
            .prop_map(|(n, len, v)| Value::Hash(
                (0..n)
                    .map(|i| {
                        let mut val = v.clone();
                        if i == n / 2 {
                            val.resize(len, b'h');
                        }
                        (format!("f{i}").into_bytes(), val)
                    })
                    .collect()
            )),
    ]
}

fn keyspace() -> impl Strategy<Value = Vec<Entry>> {
    proptest::collection::vec(
        (
            prop_oneof![3 => Just(0u32), 1 => 0u32..16],
            element(30),
            value(),
            proptest::option::of(1_000_000_000_000i64..5_000_000_000_000),
        ),
        0..12,
    )
    .prop_map(|raw| {
        // Unique keys per database; unique members, fields and zset members.
        let mut seen = BTreeMap::new();
        for (db, key, value, exp) in raw {
            let value = match value {
                Value::Set(m) => {
                    Value::Set(m.into_iter().collect::<BTreeSet<_>>().into_iter().collect())
                }
                Value::ZSet(p) => {
                    let mut s = BTreeSet::new();
                    Value::ZSet(p.into_iter().filter(|(m, _)| s.insert(m.clone())).collect())
                }
                Value::Hash(p) => {
                    let mut s = BTreeSet::new();
                    Value::Hash(p.into_iter().filter(|(f, _)| s.insert(f.clone())).collect())
                }
                v => v,
            };
            seen.insert(
                (db, key.clone()),
                Entry {
                    db,
                    key,
                    value,
                    expire_at_ms: exp,
                },
            );
        }
        seen.into_values().collect()
    })
}

fn normalize(mut entries: Vec<Entry>) -> Vec<Entry> {
    for e in &mut entries {
        if let Value::ZSet(p) = &mut e.value {
            for (_, s) in p.iter_mut() {
                if *s == 0.0 {
                    *s = 0.0;
                }
            }
        }
    }
    canonicalize(&mut entries);
    entries
}

fn options() -> impl Strategy<Value = WriteOptions> {
    (
        any::<bool>(),
        any::<bool>(),
        prop_oneof![Just(-2i64), -5i64..=-1, 1i64..200],
    )
        .prop_map(|(compression, checksum, fill)| WriteOptions {
            compression,
            checksum,
            limits: EncodingLimits {
                list_max_listpack_size: fill,
                ..EncodingLimits::default()
            },
            ..WriteOptions::default()
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn write_then_read_gives_the_same_keyspace(entries in keyspace(), opts in options()) {
        let checksum = opts.checksum;
        let bytes = write_all(Vec::new(), &entries, opts).unwrap();
        let loaded = read_all(bytes.as_slice()).unwrap();
        prop_assert_eq!(normalize(loaded.entries), normalize(entries));
        prop_assert_eq!(bytes[bytes.len() - 8..] == [0u8; 8], !checksum);
        // Nothing is read past the checksum.
        let mut with_tail = bytes.clone();
        with_tail.extend_from_slice(b"*1\r\n$4\r\nPING\r\n");
        let mut rd = RdbReader::new(with_tail.as_slice()).unwrap();
        while rd.next_item().unwrap().is_some() {}
        prop_assert_eq!(rd.into_inner(), &b"*1\r\n$4\r\nPING\r\n"[..]);
    }
}

#[test]
fn finish_returns_the_writer_and_counts_bytes() {
    let entries = vec![Entry {
        db: 2,
        key: b"k".to_vec(),
        value: Value::String(b"v".to_vec()),
        expire_at_ms: Some(1),
    }];
    let opts = || WriteOptions {
        ctime: Some(1_700_000_000),
        ..WriteOptions::default()
    };
    let mut w = forkless_rdb::RdbWriter::new(Vec::new(), opts()).unwrap();
    w.select_db(2, 1, 1).unwrap();
    w.write_entry(&entries[0]).unwrap();
    let n = w.bytes_written();
    let out = w.finish().unwrap();
    assert_eq!(out.len() as u64, n + 9);
    assert_eq!(out, write_all(Vec::new(), &entries, opts()).unwrap());
}
