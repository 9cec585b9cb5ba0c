//! Codec throughput: RDB encode and decode, CRC-64, LZF (see benches/README.md, "Codec").
//!
//! Dimensions (each group reports bytes/s; the `*-keys` variants report keys/s):
//! * `rdb/strings-1m`: 1,000,000 string keys `key:N` with 100-byte values `value:N` padded with
//!   NUL bytes: exactly the dataset `DEBUG POPULATE 1000000 key 100` creates in redis-server, so
//!   the figures sit beside Redis's own `SAVE` and load times (benches/scripts/redis_save_load.sh).
//!   Encoded with compression on (Redis's default), decoded with checksum verification.
//! * `rdb/big-hashes`: 10 hashes x 100,000 fields (HASH encoding) + 2,000 hashes x 100 fields
//!   (HASH_LISTPACK); `rdb/big-zsets`: 10 zsets x 100,000 members (ZSET_2) + 2,000 zsets x 100
//!   members (ZSET_LISTPACK).
//! * `crc64`: CRC-64/REDIS over a 64 MiB buffer.
//! * `lzf`: compress / decompress 1 MiB of text-like data (Redis-exact compressor; `lzf` crate
//!   decompressor behind the crate's guards).
//!
//! With `FORKLESS_CODEC_DUMP=PATH` the 1M-string dataset is also written to PATH, for
//! benches/scripts/redis_save_load.sh (`OURS=PATH`).
//!
//! Sample sizes are small (10) so the whole run stays around two minutes on 2 cores.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use forkless_rdb::{read_all, write_all, Entry, LzfCompressor, Value, WriteOptions};

const STRINGS: usize = 1_000_000;

/// The keyspace of `DEBUG POPULATE 1000000 key 100`.
fn populate_strings() -> Vec<Entry> {
    (0..STRINGS)
        .map(|i| {
            let mut v = format!("value:{i}").into_bytes();
            v.resize(100, 0);
            Entry {
                db: 0,
                key: format!("key:{i}").into_bytes(),
                value: Value::String(v),
                expire_at_ms: None,
            }
        })
        .collect()
}

fn big_hashes() -> Vec<Entry> {
    let mut out = Vec::new();
    for h in 0..10 {
        let pairs = (0..100_000)
            .map(|i| {
                (
                    format!("field:{i}").into_bytes(),
                    format!("value:{h}:{i}").into_bytes(),
                )
            })
            .collect();
        out.push(Entry {
            db: 0,
            key: format!("bighash:{h}").into_bytes(),
            value: Value::Hash(pairs),
            expire_at_ms: None,
        });
    }
    for h in 0..2000 {
        let pairs = (0..100)
            .map(|i| {
                (
                    format!("f{i}").into_bytes(),
                    format!("{}", h * 1000 + i).into_bytes(),
                )
            })
            .collect();
        out.push(Entry {
            db: 0,
            key: format!("hash:{h}").into_bytes(),
            value: Value::Hash(pairs),
            expire_at_ms: None,
        });
    }
    out
}

fn big_zsets() -> Vec<Entry> {
    let mut out = Vec::new();
    for z in 0..10 {
        let pairs = (0..100_000)
            .map(|i| {
                (
                    format!("member:{i}").into_bytes(),
                    f64::from(i) * 1.25 + f64::from(z),
                )
            })
            .collect();
        out.push(Entry {
            db: 0,
            key: format!("bigzset:{z}").into_bytes(),
            value: Value::ZSet(pairs),
            expire_at_ms: None,
        });
    }
    for z in 0..2000 {
        let pairs = (0..100)
            .map(|i| {
                (
                    format!("m{i}").into_bytes(),
                    f64::from(i) / 3.0 + f64::from(z),
                )
            })
            .collect();
        out.push(Entry {
            db: 0,
            key: format!("zset:{z}").into_bytes(),
            value: Value::ZSet(pairs),
            expire_at_ms: None,
        });
    }
    out
}

fn opts() -> WriteOptions {
    WriteOptions {
        ctime: Some(1_700_000_000),
        ..WriteOptions::default()
    }
}

fn bench_keyspace(c: &mut Criterion, name: &str, entries: &[Entry]) {
    let encoded = write_all(Vec::new(), entries, opts()).expect("encode");
    let size = encoded.len();
    let mut g = c.benchmark_group(format!("rdb/{name}"));
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    g.throughput(Throughput::Bytes(size as u64));
    g.bench_function(
        BenchmarkId::new("encode", format!("{} MB", size / 1_000_000)),
        |b| {
            b.iter(|| {
                write_all(Vec::with_capacity(size + 1024), black_box(entries), opts())
                    .expect("encode")
            })
        },
    );
    g.bench_function(
        BenchmarkId::new("decode", format!("{} MB", size / 1_000_000)),
        |b| b.iter(|| read_all(black_box(encoded.as_slice())).expect("decode")),
    );
    g.throughput(Throughput::Elements(entries.len() as u64));
    g.bench_function("encode-keys", |b| {
        b.iter(|| {
            write_all(Vec::with_capacity(size + 1024), black_box(entries), opts()).expect("encode")
        })
    });
    g.bench_function("decode-keys", |b| {
        b.iter(|| read_all(black_box(encoded.as_slice())).expect("decode"))
    });
    g.finish();
}

fn rdb_strings(c: &mut Criterion) {
    let entries = populate_strings();
    // For benches/scripts/redis_save_load.sh: let redis-server load our encoding of the dataset.
    if let Some(path) = std::env::var_os("FORKLESS_CODEC_DUMP") {
        let file = std::io::BufWriter::new(std::fs::File::create(&path).expect("create dump"));
        write_all(file, &entries, opts()).expect("write dump");
    }
    bench_keyspace(c, "strings-1m", &entries);
}

fn rdb_big_collections(c: &mut Criterion) {
    bench_keyspace(c, "big-hashes", &big_hashes());
    bench_keyspace(c, "big-zsets", &big_zsets());
}

fn crc64(c: &mut Criterion) {
    let data: Vec<u8> = (0..64u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let mut g = c.benchmark_group("crc64");
    g.sample_size(10).measurement_time(Duration::from_secs(3));
    g.throughput(Throughput::Bytes(data.len() as u64));
    g.bench_function("64MiB", |b| {
        b.iter(|| forkless_rdb::crc::crc64(black_box(&data)))
    });
    g.finish();
}

fn lzf(c: &mut Criterion) {
    // Text-like: words from a small vocabulary with numbers, about 2.5:1 with LZF.
    let words = [
        "user", "session", "alpha", "beta", "gamma", "value", "key", "token", "id", "name",
    ];
    let mut data = Vec::with_capacity(1 << 20);
    let mut i = 0u32;
    while data.len() < 1 << 20 {
        let w = words[(i.wrapping_mul(2_654_435_761) >> 28) as usize % words.len()];
        data.extend_from_slice(format!("{w}:{} ", i % 977).as_bytes());
        i += 1;
    }
    data.truncate(1 << 20);
    let mut comp = LzfCompressor::new();
    let mut out = Vec::new();
    let compressed = comp
        .compress_for_rdb(&data, &mut out)
        .expect("compressible")
        .to_vec();
    let mut g = c.benchmark_group("lzf");
    g.sample_size(10).measurement_time(Duration::from_secs(3));
    g.throughput(Throughput::Bytes(data.len() as u64));
    g.bench_function(
        format!(
            "compress-1MiB-ratio-{:.2}",
            data.len() as f64 / compressed.len() as f64
        ),
        |b| {
            b.iter(|| {
                comp.compress_for_rdb(black_box(&data), &mut out)
                    .map(<[u8]>::len)
            })
        },
    );
    g.bench_function("decompress-1MiB", |b| {
        b.iter(|| forkless_rdb::lzf::decompress(black_box(&compressed), data.len()).expect("valid"))
    });
    g.finish();
}

/// The benchmark group: `criterion_group!` defines a `pub fn benches`, kept out of the crate's
/// public items here.
mod group {
    use super::*;
    criterion_group!(benches, rdb_strings, rdb_big_collections, crc64, lzf);
}

criterion_main!(group::benches);
