//! Parallel serialization's building blocks (`RdbWriter::fragment`, `take_fragment`,
//! `append_encoded`): entries encoded into fragments, on several encoders, and appended in order
//! to one writer give exactly the bytes (CRC included) one writer streaming the same records
//! writes, whatever the fragment boundaries (inside a database, across databases, a value over
//! the writer's 64 KiB buffer in one fragment), and the file reads back to the entries.

use forkless_rdb::{read_all, Entry, KeyAccess, RdbWriter, Value, WriteOptions};

fn opts() -> WriteOptions {
    WriteOptions {
        ctime: Some(1_700_000_000),
        ..WriteOptions::default()
    }
}

fn b(s: impl AsRef<[u8]>) -> Vec<u8> {
    s.as_ref().to_vec()
}

/// Mixed entries in three databases: every type in its small and large encodings, integers,
/// LZF-compressible strings, expiries, a 200 KiB string and a 20k-element list.
fn entries() -> Vec<Entry> {
    let mut v = Vec::new();
    for db in [0u32, 3, 7] {
        for i in 0..60u32 {
            let key = b(format!("k{db}:{i}"));
            let value = match i % 8 {
                0 => Value::String(b(i.to_string())),
                1 => Value::String(b("x".repeat(30 + i as usize))),
                2 => Value::List((0..(1 + i * 40)).map(|j| b(format!("e{j}"))).collect()),
                3 => Value::Set((0..(1 + i * 20)).map(|j| b(j.to_string())).collect()),
                4 => Value::Set((0..(1 + i)).map(|j| b(format!("m{j}"))).collect()),
                5 => Value::ZSet(
                    (0..(1 + i * 5))
                        .map(|j| (b(format!("z{j}")), f64::from(j) / 3.0))
                        .collect(),
                ),
                6 => Value::Hash(
                    (0..(1 + i * 12))
                        .map(|j| (b(format!("f{j}")), b(format!("v{j}"))))
                        .collect(),
                ),
                _ => Value::String(b(format!("plain {i}"))),
            };
            let expire_at_ms = i
                .is_multiple_of(3)
                .then_some(4_102_444_800_000 + i64::from(i));
            v.push(Entry {
                db,
                key,
                value,
                expire_at_ms,
            });
        }
    }
    v[5].value = Value::String(b("ab".repeat(100 << 10)));
    v[70].value = Value::List((0..20_000).map(|j| b(format!("item-{j}"))).collect());
    v
}

fn access(i: usize) -> KeyAccess {
    KeyAccess {
        idle_secs: i.is_multiple_of(2).then_some(i as u64),
        freq: i.is_multiple_of(5).then_some(i as u8),
    }
}

fn sizes(es: &[Entry], db: u32) -> (u64, u64) {
    let of_db = es.iter().filter(|e| e.db == db);
    let n = of_db.clone().count() as u64;
    (n, of_db.filter(|e| e.expire_at_ms.is_some()).count() as u64)
}

/// The records of `es[range]`: SELECTDB whenever the database changes from `cur`.
fn put<W: std::io::Write>(
    w: &mut RdbWriter<W>,
    es: &[Entry],
    range: std::ops::Range<usize>,
    cur: &mut Option<u32>,
) {
    for i in range {
        let e = &es[i];
        if *cur != Some(e.db) {
            let (n, x) = sizes(es, e.db);
            w.select_db(e.db, n, x).unwrap();
            *cur = Some(e.db);
        }
        w.set_next_access(access(i));
        let (k, x) = (&e.key[..], e.expire_at_ms);
        // The typed methods, as the snapshot uses them (`write_entry` checks the database
        // against the writer's own last SELECTDB, which a fragment encoder may not have seen).
        match &e.value {
            Value::String(s) => w.write_string(k, s, x),
            Value::List(l) => w.write_list(k, l.iter().map(Vec::as_slice), x),
            Value::Set(m) => w.write_set(k, m.iter().map(Vec::as_slice), x),
            Value::ZSet(z) => w.write_zset(k, z.iter().map(|(m, s)| (&m[..], *s)), x),
            Value::Hash(h) => w.write_hash(k, h.iter().map(|(f, v)| (&f[..], &v[..])), x),
            Value::Stream(_) => unreachable!("no streams here"),
        }
        .unwrap();
    }
}

fn single(es: &[Entry]) -> Vec<u8> {
    let mut w = RdbWriter::new(Vec::new(), opts()).unwrap();
    put(&mut w, es, 0..es.len(), &mut None);
    w.function(b"#!lua name=lib\nredis.register_function('f', function() return 1 end)")
        .unwrap();
    w.finish().unwrap()
}

/// Fragments of `chunk` entries, encoded round robin by `encoders` encoders (reused across
/// fragments), appended in order.
fn fragmented(es: &[Entry], chunk: usize, encoders: usize) -> Vec<u8> {
    let mut encs: Vec<_> = (0..encoders)
        .map(|_| RdbWriter::fragment(&opts()))
        .collect();
    let mut frags = Vec::new();
    let mut cur = None;
    for (n, start) in (0..es.len()).step_by(chunk).enumerate() {
        let enc = &mut encs[n % encoders];
        put(enc, es, start..(start + chunk).min(es.len()), &mut cur);
        frags.push(enc.take_fragment().unwrap());
    }
    let mut w = RdbWriter::new(Vec::new(), opts()).unwrap();
    for f in &frags {
        w.append_encoded(f).unwrap();
    }
    let mut enc = RdbWriter::fragment(&opts());
    enc.function(b"#!lua name=lib\nredis.register_function('f', function() return 1 end)")
        .unwrap();
    w.append_encoded(&enc.take_fragment().unwrap()).unwrap();
    let written = w.bytes_written();
    let out = w.finish().unwrap();
    assert_eq!(
        written + 9,
        out.len() as u64,
        "byte count covers appended bytes"
    );
    out
}

#[test]
fn fragments_appended_in_order_equal_one_writers_bytes() {
    let es = entries();
    let want = single(&es);
    for (chunk, encoders) in [(1, 1), (1, 3), (7, 2), (60, 4), (61, 4), (1000, 1)] {
        let got = fragmented(&es, chunk, encoders);
        assert!(
            got == want,
            "chunk {chunk}, {encoders} encoders: {} bytes vs {}",
            got.len(),
            want.len()
        );
    }
    let back = read_all(&want[..]).expect("reads back");
    assert_eq!(back.entries.len(), es.len());
}

#[test]
fn a_failed_fragment_encoder_says_so() {
    let mut enc = RdbWriter::fragment(&opts());
    assert!(enc.write_set(b"empty", std::iter::empty(), None).is_err());
    assert!(enc.take_fragment().is_err());
}
