//! Robustness of the reader on damaged real files: every fixture cut at every offset is an error
//! (never a panic), seeded random bit flips give `Ok` or `Err` (never a panic), and damaged
//! checksums are reported as such.

use std::fs;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;

use forkless_rdb::{read_all, RdbError, RdbReader, ReadOptions};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/fixtures")
}

fn all_rdb_fixtures() -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for dir in ["rdb", "redis-test-assets"] {
        for e in fs::read_dir(fixtures().join(dir)).expect("fixture dir") {
            let path = e.expect("dir entry").path();
            if path.extension().is_some_and(|x| x == "rdb") {
                let raw = fs::read(&path).expect("readable fixture");
                out.push((path.display().to_string(), raw));
            }
        }
    }
    out.sort();
    assert!(out.len() >= 20);
    out
}

/// Deterministic xorshift64* generator (fixed seeds: failures reproduce).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Read every item with the given options, returning whether it ended cleanly.
fn drain(data: &[u8], verify: bool) -> bool {
    let Ok(rd) = RdbReader::with_options(
        data,
        ReadOptions {
            verify_checksum: verify,
        },
    ) else {
        return false;
    };
    let mut n = 0usize;
    for it in rd {
        if it.is_err() {
            return false;
        }
        n += 1;
        assert!(n <= data.len(), "more items than bytes");
    }
    true
}

#[test]
fn every_truncation_is_an_error() {
    for (name, raw) in all_rdb_fixtures() {
        // Every offset in optimized builds (`cargo test --release`, ~5 s). Unoptimized builds
        // parse ~20x slower: there, files over 4 KB are cut at about 2000 spread offsets plus
        // every offset of their first and last 512 bytes.
        let stride = if cfg!(debug_assertions) && raw.len() > 4096 {
            raw.len() / 2000
        } else {
            1
        };
        let cuts = (0..raw.len())
            .filter(|c| stride == 1 || c % stride == 0 || *c < 512 || *c + 512 > raw.len());
        for cut in cuts {
            let prefix = &raw[..cut];
            // The CRC is computed only for cuts in the last 64 bytes (where the checksum is):
            // elsewhere it cannot change the outcome and would make this quadratic test slow.
            let verify = cut + 64 > raw.len();
            let opts = ReadOptions {
                verify_checksum: verify,
            };
            let r = catch_unwind(AssertUnwindSafe(|| {
                let rd = RdbReader::with_options(prefix, opts)?;
                rd.collect::<Result<Vec<_>, RdbError>>()
            }));
            match r {
                Ok(Err(RdbError::UnexpectedEof { offset, .. })) => {
                    assert!(
                        offset <= cut as u64,
                        "{name} cut at {cut}: EOF offset {offset} past the cut"
                    );
                }
                // The corrupt fixture may fail on its corruption before reaching the cut.
                Ok(Err(_)) if name.contains("corrupt_ziplist") => {}
                Ok(Err(e)) => panic!("{name} cut at {cut}: expected UnexpectedEof, got {e}"),
                Ok(Ok(_)) => panic!("{name} cut at {cut}: read succeeded"),
                Err(_) => panic!("{name} cut at {cut}: panicked"),
            }
        }
    }
}

#[test]
fn random_bit_flips_never_panic() {
    let mut outcomes = [0usize; 2];
    for (i, (name, raw)) in all_rdb_fixtures().into_iter().enumerate() {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (i as u64 + 1));
        // A few thousand flips per fixture in optimized builds; unoptimized builds parse ~20x
        // slower and do a tenth.
        let rounds = if cfg!(debug_assertions) { 300 } else { 3000 };
        for round in 0..rounds {
            let mut data = raw.clone();
            let flips = 1 + rng.below(3);
            for _ in 0..flips {
                let at = rng.below(data.len());
                data[at] ^= 1 << rng.below(8);
            }
            // Half the rounds skip the checksum so damaged bodies are parsed to their end.
            let verify = round % 2 == 0;
            let r = catch_unwind(AssertUnwindSafe(|| drain(&data, verify)));
            match r {
                Ok(ok) => outcomes[usize::from(ok)] += 1,
                Err(_) => panic!("{name}: round {round} panicked"),
            }
        }
    }
    // Both outcomes happen: the flips do reach the parser.
    assert!(outcomes[0] > 1000 && outcomes[1] > 100, "{outcomes:?}");
}

#[test]
fn checksum_damage_is_reported() {
    for (name, raw) in all_rdb_fixtures() {
        if name.contains("corrupt_ziplist")
            || raw[5..9] < b"0005"[..]
            || name.contains("nochecksum")
        {
            continue;
        }
        let mut data = raw.clone();
        let n = data.len();
        data[n - 1] ^= 0x01;
        match read_all(&data[..]) {
            Err(RdbError::ChecksumMismatch {
                stored, computed, ..
            }) => assert_ne!(stored, computed),
            other => panic!("{name}: expected ChecksumMismatch, got {other:?}"),
        }
        // Damage in the body is caught by the CRC when the structure survives it: flip a bit
        // inside the first aux value (always "redis-ver" text in these files).
        if let Some(pos) = raw.windows(9).position(|w| w == b"redis-ver") {
            let mut data = raw.clone();
            data[pos + 11] ^= 0x01;
            assert!(
                matches!(read_all(&data[..]), Err(RdbError::ChecksumMismatch { .. })),
                "{name}"
            );
        }
    }
}

#[test]
fn bad_headers() {
    assert!(matches!(
        read_all(&b""[..]),
        Err(RdbError::UnexpectedEof { offset: 0, .. })
    ));
    assert!(matches!(
        read_all(&b"REDIS00"[..]),
        Err(RdbError::UnexpectedEof { offset: 7, .. })
    ));
    assert!(matches!(
        read_all(&b"HELLO"[..]),
        Err(RdbError::BadMagic { .. })
    ));
    assert!(matches!(
        read_all(&b"REDIS00x0\xff"[..]),
        Err(RdbError::BadMagic { .. })
    ));
    assert!(matches!(
        read_all(&b"REDIS0012\xff"[..]),
        Err(RdbError::UnsupportedVersion(12))
    ));
    assert!(matches!(
        read_all(&b"REDIS0000\xff"[..]),
        Err(RdbError::UnsupportedVersion(0))
    ));
    // Version 4: no checksum, an EOF opcode ends it.
    let l = read_all(&b"REDIS0004\xff"[..]).unwrap();
    assert_eq!(l.checksum, forkless_rdb::ChecksumStatus::Absent);
    // Unknown opcode.
    match read_all(&b"REDIS0010\x16"[..]) {
        Err(RdbError::Corrupt {
            offset: 9, what, ..
        }) => assert!(what.contains("22"), "{what}"),
        other => panic!("{other:?}"),
    }
}
