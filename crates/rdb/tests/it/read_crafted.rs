//! Hand-built files for what the Redis-written fixtures do not contain: opcodes (EXPIRETIME in
//! seconds, IDLE, FREQ, MODULE_AUX, FUNCTION2, pre-GA FUNCTION), Redis 7.2 types (set listpack,
//! stream v3), module values, and the loader's semantic checks (duplicates, odd pair counts, NaN
//! scores, empty keys, bad quicklist containers).

use forkless_rdb::crc::crc64;
use forkless_rdb::{read_all, Item, RdbError, RdbReader, Value};

fn file(version: u32, body: &[u8]) -> Vec<u8> {
    let mut v = format!("REDIS{version:04}").into_bytes();
    v.extend_from_slice(body);
    v.push(0xFF);
    if version >= 5 {
        let c = crc64(&v);
        v.extend_from_slice(&c.to_le_bytes());
    }
    v
}

/// An rdb string (6- or 14-bit length form).
fn s(b: &[u8]) -> Vec<u8> {
    let mut v = if b.len() < 64 {
        vec![b.len() as u8]
    } else {
        vec![0x40 | (b.len() >> 8) as u8, (b.len() & 0xff) as u8]
    };
    v.extend_from_slice(b);
    v
}

/// A listpack of short strings / small ints.
fn listpack(items: &[&[u8]]) -> Vec<u8> {
    let mut body = Vec::new();
    for it in items {
        let enc: Vec<u8> = match std::str::from_utf8(it)
            .ok()
            .and_then(|t| t.parse::<u8>().ok())
        {
            Some(n) if n < 128 && it.len() == 1 + usize::from(n >= 10) + usize::from(n >= 100) => {
                vec![n]
            }
            _ => [&[0x80 | it.len() as u8][..], it].concat(),
        };
        body.extend_from_slice(&enc);
        body.push(enc.len() as u8);
    }
    let mut v = ((body.len() + 7) as u32).to_le_bytes().to_vec();
    v.extend_from_slice(&(items.len() as u16).to_le_bytes());
    v.extend_from_slice(&body);
    v.push(0xFF);
    v
}

fn keyed(t: u8, key: &[u8], value: &[u8]) -> Vec<u8> {
    [&[t][..], &s(key), value].concat()
}

fn entries(data: &[u8]) -> Vec<forkless_rdb::Entry> {
    read_all(data).unwrap_or_else(|e| panic!("{e}")).entries
}

fn corrupt_what(data: &[u8]) -> (Option<Vec<u8>>, String) {
    match read_all(data) {
        Err(RdbError::Corrupt { key, what, .. }) => (key, what),
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

#[test]
fn opcodes_apply_and_are_reported() {
    let mut body = Vec::new();
    body.extend([0xFA]);
    body.extend(s(b"redis-ver"));
    body.extend(s(b"7.2.0"));
    body.extend([0xF5]);
    body.extend(s(
        b"#!lua name=lib\nredis.register_function('f', function() return 1 end)",
    ));
    body.extend([0xF6]);
    body.extend(s(b"oldlib"));
    body.extend(s(b"LUA"));
    body.push(1);
    body.extend(s(b"a description"));
    body.extend(s(b"return 1"));
    // MODULE_AUX: id, when-opcode UINT, when, then: UINT 5, STRING "x", FLOAT, DOUBLE, EOF.
    body.extend([0xF7, 0x81, 0, 0, 0, 0, 0, 0, 0x12, 0x34, 0x02, 0x02]);
    body.extend([0x02, 0x05, 0x05]);
    body.extend(s(b"x"));
    body.extend([0x03, 0, 0, 0, 0, 0x04, 0, 0, 0, 0, 0, 0, 0, 0, 0x00]);
    body.extend([0xFE, 0x02, 0xFB, 0x03, 0x01]);
    // EXPIRETIME (seconds), IDLE, FREQ before a key.
    body.extend([0xFD]);
    body.extend(1_700_000_000i32.to_le_bytes());
    body.extend([0xF8, 0x10, 0xF9, 0x07]);
    body.extend(keyed(0, b"k", &s(b"v")));
    // The expiry does not leak to the next key; EXPIRETIME_MS works.
    body.extend(keyed(0, b"k2", &s(b"v2")));
    body.extend([0xFC]);
    body.extend(4_102_444_800_000i64.to_le_bytes());
    body.extend(keyed(0, b"k3", &[0xC0, 0x7F]));
    let data = file(10, &body);
    let items: Vec<Item> = RdbReader::new(&data[..])
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    let funcs: Vec<&Item> = items
        .iter()
        .filter(|i| matches!(i, Item::Function { .. }))
        .collect();
    assert_eq!(funcs.len(), 2);
    assert!(matches!(funcs[1], Item::Function { code } if code == b"return 1"));
    assert!(items.contains(&Item::ModuleAux { module_id: 0x1234 }));
    assert!(items.contains(&Item::SelectDb(2)));
    assert!(items.contains(&Item::ResizeDb {
        db_size: 3,
        expires_size: 1
    }));
    let es: Vec<_> = items
        .iter()
        .filter_map(|i| match i {
            Item::Entry(e) => Some(e.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(es.len(), 3);
    assert_eq!((es[0].db, es[0].expire_at_ms), (2, Some(1_700_000_000_000)));
    assert_eq!(es[1].expire_at_ms, None);
    assert_eq!(es[2].expire_at_ms, Some(4_102_444_800_000));
    assert_eq!(es[2].value, Value::String(b"127".to_vec()));
}

#[test]
fn redis_7_2_types_and_skipped_values() {
    let mut body = Vec::new();
    body.extend(keyed(20, b"set", &s(&listpack(&[b"a", b"7", b"bb"]))));
    // Stream v3 with one listpack (master entry 1 live, 0 deleted, field "f"; entry 5-0 with the
    // master's fields, value "v"), one group, one PEL entry owned by one consumer.
    let mut st = vec![0x01];
    let mut master = [0u8; 16];
    master[7] = 5;
    st.extend(s(&master));
    st.extend(s(&listpack(&[
        b"1", b"0", b"1", b"f", b"0", b"2", b"0", b"0", b"v", b"4",
    ])));
    st.extend([1, 5, 0, 5, 0, 0, 0, 1]); // length, last id, first id, max deleted, added
    st.push(1);
    st.extend(s(b"grp"));
    st.extend([0, 5, 1]); // id ms, seq, entries read
    st.push(1);
    st.extend([7u8; 16]);
    st.extend(0i64.to_le_bytes());
    st.push(1);
    st.push(1);
    st.extend(s(b"alice"));
    st.extend(0i64.to_le_bytes());
    st.extend(0i64.to_le_bytes()); // v3: active time
    st.push(1);
    st.extend([7u8; 16]);
    body.extend(keyed(21, b"stream", &st));
    // Module value: id, UINT 1, STRING "abc", EOF.
    let mut m = vec![0x05, 0x02, 0x01, 0x05];
    m.extend(s(b"abc"));
    m.push(0);
    body.extend(keyed(7, b"mod", &m));
    body.extend(keyed(0, b"after", &s(b"ok")));
    let mut l = read_all(&file(11, &body)[..]).unwrap();
    assert_eq!(l.version, 11);
    assert_eq!(l.skipped, vec![(0, b"mod".to_vec(), "module")]);
    assert_eq!(l.entries.len(), 3);
    let Value::Stream(st) = &l.entries[1].value else {
        panic!("not a stream: {:?}", l.entries[1].value)
    };
    let live: Vec<_> = st.live_entries().collect();
    assert_eq!(live.len(), 1);
    assert_eq!(live[0].0, forkless_rdb::stream::StreamId::new(5, 0));
    assert_eq!(
        (live[0].1, live[0].2),
        (&[b"f".to_vec()][..], &[b"v".to_vec()][..])
    );
    assert_eq!(st.groups.len(), 1);
    assert_eq!(st.groups[0].consumers[0].name, b"alice");
    assert_eq!(
        st.groups[0].pending[0].id,
        forkless_rdb::stream::StreamId::new(0x0707070707070707, 0x0707070707070707)
    );
    l.entries.remove(1);
    assert_eq!(
        l.entries[0].value,
        Value::Set(vec![b"a".to_vec(), b"7".to_vec(), b"bb".to_vec()])
    );
    assert_eq!(l.entries[1].key, b"after");
    // Pre-GA module values cannot be skipped.
    let (key, what) = corrupt_what(&file(10, &keyed(6, b"old", &[0x05])));
    assert_eq!(key.as_deref(), Some(&b"old"[..]));
    assert!(what.contains("module"), "{what}");
}

#[test]
fn plain_encodings_of_old_versions() {
    let mut body = Vec::new();
    body.extend(keyed(
        1,
        b"list",
        &[&[2u8][..], &s(b"x"), &[0xC1, 0x00, 0x01]].concat(),
    ));
    body.extend(keyed(
        3,
        b"zset",
        &[
            &[3u8][..],
            &s(b"a"),
            &[3],
            b"1.5",
            &s(b"b"),
            &[254],
            &s(b"c"),
            &[255],
        ]
        .concat(),
    ));
    body.extend(keyed(
        4,
        b"hash",
        &[&[1u8][..], &s(b"f"), &s(b"v")].concat(),
    ));
    let es = entries(&file(4, &body));
    assert_eq!(
        es[0].value,
        Value::List(vec![b"x".to_vec(), b"256".to_vec()])
    );
    assert_eq!(
        es[1].value,
        Value::ZSet(vec![
            (b"a".to_vec(), 1.5),
            (b"b".to_vec(), f64::INFINITY),
            (b"c".to_vec(), f64::NEG_INFINITY)
        ])
    );
    assert_eq!(
        es[2].value,
        Value::Hash(vec![(b"f".to_vec(), b"v".to_vec())])
    );
}

#[test]
fn semantic_checks_like_redis() {
    // Duplicates.
    let dup_set = keyed(2, b"s", &[&[2u8][..], &s(b"m"), &s(b"m")].concat());
    assert!(corrupt_what(&file(10, &dup_set)).1.contains("duplicate"));
    let dup_hash = keyed(
        4,
        b"h",
        &[&[2u8][..], &s(b"f"), &s(b"1"), &s(b"f"), &s(b"2")].concat(),
    );
    assert!(corrupt_what(&file(10, &dup_hash)).1.contains("duplicate"));
    let dup_zset = keyed(
        5,
        b"z",
        &[
            &[2u8][..],
            &s(b"m"),
            &1f64.to_le_bytes(),
            &s(b"m"),
            &2f64.to_le_bytes(),
        ]
        .concat(),
    );
    assert!(corrupt_what(&file(10, &dup_zset)).1.contains("duplicate"));
    let dup_lp = keyed(16, b"h", &s(&listpack(&[b"f", b"1", b"f", b"2"])));
    let (key, what) = corrupt_what(&file(10, &dup_lp));
    assert_eq!(key.as_deref(), Some(&b"h"[..]));
    assert!(
        what.contains("listpack") && what.contains("duplicate"),
        "{what}"
    );
    let dup_set_lp = keyed(20, b"s", &s(&listpack(&[b"5", b"x", b"5"])));
    assert!(corrupt_what(&file(11, &dup_set_lp)).1.contains("duplicate"));
    // Odd element count in a pair listpack.
    let odd = keyed(17, b"z", &s(&listpack(&[b"m", b"1", b"n"])));
    assert!(corrupt_what(&file(10, &odd)).1.contains("odd"));
    // NaN scores.
    let nan = keyed(3, b"z", &[&[1u8][..], &s(b"m"), &[253]].concat());
    assert!(corrupt_what(&file(10, &nan)).1.contains("NaN"));
    let nan2 = keyed(
        5,
        b"z",
        &[&[1u8][..], &s(b"m"), &f64::NAN.to_le_bytes()].concat(),
    );
    assert!(corrupt_what(&file(10, &nan2)).1.contains("NaN"));
    // Quicklist container other than 1/2, and an empty node.
    let qc = keyed(18, b"l", &[&[1u8, 3][..], &s(&listpack(&[b"a"]))].concat());
    assert!(corrupt_what(&file(10, &qc)).1.contains("container"));
    let qe = keyed(18, b"l", &[1u8, 2, 0]);
    assert!(corrupt_what(&file(10, &qe)).1.contains("empty"));
    // Plain quicklist node: the element as is.
    let plain = keyed(
        18,
        b"l",
        &[&[2u8, 1][..], &s(b"big"), &[2], &s(&listpack(&[b"x"]))].concat(),
    );
    assert_eq!(
        entries(&file(10, &plain))[0].value,
        Value::List(vec![b"big".to_vec(), b"x".to_vec()])
    );
    // Unknown string encoding in a key.
    let bad = [0u8, 0xC5];
    assert!(corrupt_what(&file(10, &bad)).1.contains("encoding"));
}

#[test]
fn empty_collections_are_skipped() {
    let mut body = Vec::new();
    for t in [1u8, 2, 3, 4, 5, 14, 18] {
        body.extend(keyed(t, &[b'e', t], &[0]));
    }
    body.extend(keyed(20, b"lp", &s(&listpack(&[]))));
    body.extend(keyed(17, b"zlp", &s(&listpack(&[]))));
    body.extend(keyed(0, b"kept", &s(b"1")));
    let es = entries(&file(11, &body));
    assert_eq!(es.len(), 1);
    assert_eq!(es[0].key, b"kept");
}

#[test]
fn reader_stops_after_an_error() {
    let data = file(10, &[0x16]);
    let mut rd = RdbReader::new(&data[..]).unwrap();
    assert!(rd.next_item().is_err());
    assert!(rd.next_item().is_err());
    let mut rd = RdbReader::new(&data[..]).unwrap();
    assert!(rd.next().unwrap().is_err());
    assert!(rd.next().is_none());
}
