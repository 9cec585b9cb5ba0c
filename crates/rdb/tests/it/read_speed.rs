//! Read throughput, measured on demand (ignored by default):
//!
//! ```text
//! FORKLESS_RDB_SPEED_FILE=/path/dump.rdb cargo test -p forkless-rdb --release \
//!     --test it read_speed -- --ignored --nocapture
//! ```
//!
//! Without the variable it reads `testdata/fixtures/rdb/all-types.rdb` from memory many times.

use std::io::BufReader;
use std::time::Instant;

use forkless_rdb::{Item, RdbReader};

fn count(data: impl std::io::Read) -> (usize, u64) {
    let mut rd = RdbReader::new(data).expect("header");
    let mut keys = 0;
    while let Some(it) = rd.next_item().expect("valid file") {
        if matches!(it, Item::Entry(_)) {
            keys += 1;
        }
    }
    (keys, rd.offset())
}

#[test]
#[ignore = "throughput measurement, run on demand"]
fn read_throughput() {
    if let Ok(path) = std::env::var("FORKLESS_RDB_SPEED_FILE") {
        let t = Instant::now();
        let f = std::fs::File::open(&path).expect("file");
        let (keys, bytes) = count(BufReader::with_capacity(1 << 16, f));
        let s = t.elapsed().as_secs_f64();
        eprintln!(
            "{path}: {keys} keys, {bytes} bytes in {s:.3} s = {:.1} MB/s",
            bytes as f64 / s / 1e6
        );
        return;
    }
    let raw = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../testdata/fixtures/rdb/all-types.rdb"),
    )
    .expect("fixture");
    let rounds = 200;
    let t = Instant::now();
    let mut total = 0u64;
    for _ in 0..rounds {
        total += count(&raw[..]).1;
    }
    let s = t.elapsed().as_secs_f64();
    eprintln!(
        "all-types x{rounds}: {:.1} MB/s ({:.3} ms per read)",
        total as f64 / s / 1e6,
        s * 1e3 / f64::from(rounds)
    );
}
