//! Fuzz target: arbitrary bytes → a keyspace (decoded by the small deterministic scheme below,
//! no `arbitrary` crate) → `forkless_rdb::write_all` → `read_all` → the same keyspace.
//!
//! The decoding favours the values that pick different RDB encodings: integer-like strings
//! (canonical and not: "007", "-0", " 1"), long compressible strings, sizes around the listpack
//! and intset limits, and edge scores (±inf, -0.0, subnormals).
#![no_main]

use std::collections::HashSet;

use forkless_rdb::model::{canonicalize, Entry, Value};
use forkless_rdb::{read_all, write_all, WriteOptions};
use libfuzzer_sys::fuzz_target;

/// Reads the fuzzer's bytes front to back; zeros once exhausted.
struct Bytes<'a>(&'a [u8]);

impl Bytes<'_> {
    fn u8(&mut self) -> u8 {
        match self.0.split_first() {
            Some((b, rest)) => {
                self.0 = rest;
                *b
            }
            None => 0,
        }
    }

    fn u64(&mut self) -> u64 {
        (0..8).fold(0, |acc, i| acc | (u64::from(self.u8()) << (8 * i)))
    }

    fn take(&mut self, n: usize) -> Vec<u8> {
        let n = n.min(self.0.len());
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        a.to_vec()
    }

    fn bytes(&mut self) -> Vec<u8> {
        const WORDS: [&[u8]; 12] = [
            b"0",
            b"-1",
            b"127",
            b"-32768",
            b"2147483647",
            b"9223372036854775807",
            b"-9223372036854775808",
            b"007",
            b"-0",
            b" 1",
            b"+1",
            b"",
        ];
        match self.u8() % 8 {
            0 => WORDS[usize::from(self.u8()) % WORDS.len()].to_vec(),
            1 => (self.u64() as i64).to_string().into_bytes(),
            2 => {
                // Long and compressible.
                let len = usize::from(self.u8()) * 4 + 20;
                vec![b'a' + self.u8() % 3; len]
            }
            _ => {
                let len = usize::from(self.u8() % 24);
                self.take(len)
            }
        }
    }

    fn score(&mut self) -> f64 {
        match self.u8() % 6 {
            0 => f64::INFINITY,
            1 => f64::NEG_INFINITY,
            2 => -0.0,
            3 => f64::from(self.u8() as i8),
            _ => {
                let f = f64::from_bits(self.u64());
                if f.is_nan() {
                    1.5
                } else {
                    f
                }
            }
        }
    }

    /// A collection size, sometimes crossing Redis's encoding limits (128, 512 entries).
    fn count(&mut self) -> usize {
        match self.u8() % 8 {
            0 => 129 + usize::from(self.u8() % 4),
            1 => 510 + usize::from(self.u8() % 6),
            _ => 1 + usize::from(self.u8() % 12),
        }
    }
}

fn unique<T>(items: Vec<T>, key: impl Fn(&T) -> Vec<u8>) -> Vec<T> {
    let mut seen = HashSet::new();
    items.into_iter().filter(|x| seen.insert(key(x))).collect()
}

fn decode(data: &[u8]) -> (Vec<Entry>, WriteOptions) {
    let mut b = Bytes(data);
    let flags = b.u8();
    let opts = WriteOptions {
        compression: flags & 1 == 0,
        checksum: flags & 2 == 0,
        ctime: Some(1_700_000_000),
        ..WriteOptions::default()
    };
    let n = usize::from(b.u8() % 8);
    let mut entries = Vec::new();
    let mut keys = HashSet::new();
    for _ in 0..n {
        let db = u32::from(b.u8() % 3) * 7;
        let key = b.bytes();
        let value = match b.u8() % 5 {
            0 => Value::String(b.bytes()),
            1 => Value::List((0..b.count()).map(|_| b.bytes()).collect()),
            2 => {
                let ints = b.u8() % 2 == 0;
                let members = (0..b.count())
                    .map(|_| {
                        if ints {
                            (b.u64() as i64 >> (b.u8() % 64)).to_string().into_bytes()
                        } else {
                            b.bytes()
                        }
                    })
                    .collect();
                Value::Set(unique(members, Clone::clone))
            }
            3 => Value::ZSet(unique(
                (0..b.count()).map(|_| (b.bytes(), b.score())).collect(),
                |p| p.0.clone(),
            )),
            _ => Value::Hash(unique(
                (0..b.count()).map(|_| (b.bytes(), b.bytes())).collect(),
                |p| p.0.clone(),
            )),
        };
        let expire_at_ms = match b.u8() % 3 {
            0 => Some(4_102_444_800_000 + i64::from(b.u8())),
            1 => Some(b.u64() as i64),
            _ => None,
        };
        if keys.insert((db, key.clone())) {
            entries.push(Entry {
                db,
                key,
                value,
                expire_at_ms,
            });
        }
    }
    (entries, opts)
}

/// `-0.0` becomes `0.0`: Redis (and our writer) store a listpack score of -0 as the integer 0
/// (`zzlInsertAt` → `double2ll`), so the sign is legitimately lost, and `canonicalize` orders by
/// `total_cmp`, which would then sort the two spellings differently.
fn normalize_zero(entries: &mut [Entry]) {
    for e in entries {
        if let Value::ZSet(pairs) = &mut e.value {
            for p in pairs {
                if p.1 == 0.0 {
                    p.1 = 0.0;
                }
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let (mut entries, opts) = decode(data);
    let file = write_all(Vec::new(), &entries, opts).expect("every decoded keyspace is writable");
    let loaded = read_all(&file[..]).expect("what we write, we read");
    let mut back = loaded.entries;
    normalize_zero(&mut entries);
    normalize_zero(&mut back);
    canonicalize(&mut entries);
    canonicalize(&mut back);
    assert_eq!(back, entries);
    assert!(loaded.skipped.is_empty());
});
