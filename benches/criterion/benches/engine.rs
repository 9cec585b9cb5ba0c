//! Engine benchmarks: the dict against hashbrown, keyspace command throughput.
//!
//! Dimensions (see benches/README.md for the figures):
//! - dict: 1M keys of 16 bytes (`Vec<u8>`), `u64` values, `forkless_dict::Map` against
//!   `hashbrown::HashMap` with the same hasher (`forkless_dict::KeyHasher`, SipHash-1-3);
//!   lookups in batches of 1024 random keys (hits and misses), inserts of all 1M keys into an
//!   empty map (growth included), a bucket-by-bucket walk as the snapshot does.
//! - keyspace: see `keyspace_benches` below.
//!
//! Run one area: `cargo bench -p forkless-criterion --bench engine -- dict/`.

use criterion::{criterion_group, criterion_main};

// ============================== dict benchmarks (owner: dict) ==============================
mod dict_benches {
    use std::hint::black_box;

    use criterion::{BatchSize, Criterion, Throughput};
    use forkless_dict::{KeyHasher, Map};
    use rand::{rngs::StdRng, seq::SliceRandom, SeedableRng};

    /// Keys in the populated maps.
    const N: usize = 1_000_000;
    /// Lookups per measured iteration.
    const BATCH: usize = 1024;

    type Brown = hashbrown::HashMap<Vec<u8>, u64, KeyHasher>;

    /// `key:000000000042`: 16 bytes.
    fn hit_key(i: usize) -> Vec<u8> {
        format!("key:{i:012}").into_bytes()
    }

    /// `miss:00000000042`: 16 bytes, never inserted.
    fn miss_key(i: usize) -> Vec<u8> {
        format!("miss:{i:011}").into_bytes()
    }

    /// A random order of `keys` (fixed seed).
    fn shuffled(keys: &[Vec<u8>], seed: u64) -> Vec<Vec<u8>> {
        let mut v = keys.to_vec();
        v.shuffle(&mut StdRng::seed_from_u64(seed));
        v
    }

    /// Per-entry structure bytes beyond `size_of::<(Vec<u8>, u64)>()` (key heap excluded).
    fn report_memory(dict: &Map<Vec<u8>, u64>, brown: &Brown) {
        let kv = std::mem::size_of::<(Vec<u8>, u64)>();
        let n = dict.len() as f64;
        let d = dict.dict();
        let d_total = d.memory_overhead() as f64 / n;
        let b_total = (brown.allocation_size() + std::mem::size_of::<Brown>()) as f64 / n;
        eprintln!(
            "dict/memory: {} entries, (K,V) = {kv} B; forkless-dict {:.1} B/entry total, \
             {:.1} overhead ({} buckets); hashbrown {:.1} B/entry total, {:.1} overhead \
             ({} capacity)",
            dict.len(),
            d_total,
            d_total - kv as f64,
            d.num_buckets(),
            b_total,
            b_total - kv as f64,
            brown.capacity(),
        );
    }

    /// Registers the dict group: `dict/get_hit`, `dict/get_miss`, `dict/insert_1m`,
    /// `dict/walk_buckets`.
    pub(crate) fn dict_group(c: &mut Criterion) {
        let hasher = KeyHasher::new();
        let keys: Vec<Vec<u8>> = (0..N).map(hit_key).collect();
        let mut dict: Map<Vec<u8>, u64> = Map::with_hasher(0, hasher.clone());
        let mut brown: Brown = Brown::with_hasher(hasher.clone());
        for (i, k) in keys.iter().enumerate() {
            dict.insert(k.clone(), i as u64);
            brown.insert(k.clone(), i as u64);
        }
        // Let a pending incremental rehash finish, as the background driver would.
        while dict.dict().is_rehashing() {
            dict.dict_mut().rehash_step(1 << 16);
        }
        report_memory(&dict, &brown);

        let hits = shuffled(&keys, 1);
        let misses: Vec<Vec<u8>> = (0..N).map(miss_key).collect();

        let mut g = c.benchmark_group("dict");
        g.throughput(Throughput::Elements(BATCH as u64));
        for (name, probe, expect_hit) in [("get_hit", &hits, true), ("get_miss", &misses, false)] {
            let mut at = 0usize;
            g.bench_function(format!("{name}/forkless"), |b| {
                b.iter(|| {
                    let mut found = 0u64;
                    for k in &probe[at..at + BATCH] {
                        found += dict.get(k.as_slice()).is_some() as u64;
                    }
                    at = (at + BATCH) % (N - BATCH);
                    assert_eq!(found == BATCH as u64, expect_hit);
                    black_box(found)
                });
            });
            let mut at = 0usize;
            g.bench_function(format!("{name}/hashbrown"), |b| {
                b.iter(|| {
                    let mut found = 0u64;
                    for k in &probe[at..at + BATCH] {
                        found += brown.get(k.as_slice()).is_some() as u64;
                    }
                    at = (at + BATCH) % (N - BATCH);
                    assert_eq!(found == BATCH as u64, expect_hit);
                    black_box(found)
                });
            });
        }
        g.finish();

        let mut g = c.benchmark_group("dict");
        g.sample_size(10);
        g.throughput(Throughput::Elements(N as u64));
        let order = shuffled(&keys, 2);
        g.bench_function("insert_1m/forkless", |b| {
            b.iter_batched(
                || order.clone(),
                |ks| {
                    let mut m: Map<Vec<u8>, u64> = Map::with_hasher(0, hasher.clone());
                    for (i, k) in ks.into_iter().enumerate() {
                        m.insert(k, i as u64);
                    }
                    m
                },
                BatchSize::PerIteration,
            );
        });
        g.bench_function("insert_1m/hashbrown", |b| {
            b.iter_batched(
                || order.clone(),
                |ks| {
                    let mut m: Brown = Brown::with_hasher(hasher.clone());
                    for (i, k) in ks.into_iter().enumerate() {
                        m.insert(k, i as u64);
                    }
                    m
                },
                BatchSize::PerIteration,
            );
        });
        // The snapshot's access pattern: every bucket in index order.
        g.bench_function("walk_buckets/forkless", |b| {
            let d = dict.dict();
            b.iter(|| {
                let mut sum = 0u64;
                for bucket in 0..d.num_buckets() {
                    for (_, v) in d.bucket_entries(bucket) {
                        sum = sum.wrapping_add(*v);
                    }
                }
                black_box(sum)
            });
        });
        g.bench_function("walk_iter/hashbrown", |b| {
            b.iter(|| black_box(brown.values().fold(0u64, |s, v| s.wrapping_add(*v))));
        });
        g.finish();
    }
}
// ============================ end of dict benchmarks ============================

// ============================ keyspace benchmarks (owner: keyspace) ============================
mod keyspace_benches {
    use std::time::{Duration, Instant};

    use criterion::{Criterion, Throughput};
    use forkless_keyspace::{Config, Keyspace, Session};
    use rand::{rngs::StdRng, Rng, SeedableRng};

    /// Keys of each kind in the populated keyspace.
    const N: usize = 1_000_000;
    /// Commands per measured iteration.
    const BATCH: usize = 1024;

    fn key(prefix: &str, i: usize) -> Vec<u8> {
        format!("{prefix}:{i:012}").into_bytes()
    }

    /// `BATCH` random indices below `N` (fixed seed).
    fn batch(seed: u64) -> Vec<usize> {
        let mut rng = StdRng::seed_from_u64(seed);
        (0..BATCH).map(|_| rng.gen_range(0..N)).collect()
    }

    /// 1M integer strings (`str:*`), 1M lists, 1M hashes and 1M sorted sets of one element each,
    /// 16 databases, default shard count (4 x cores).
    fn populate() -> Keyspace {
        let ks = Keyspace::new(Config::seeded(1));
        let mut s = Session::default();
        for i in 0..N {
            let v = i.to_string();
            ks.execute(&mut s, &[b"SET", &key("str", i), v.as_bytes()]);
            ks.execute(&mut s, &[b"LPUSH", &key("list", i), b"x"]);
            ks.execute(&mut s, &[b"HSET", &key("hash", i), b"f", v.as_bytes()]);
            ks.execute(&mut s, &[b"ZADD", &key("zset", i), b"1", b"m"]);
        }
        ks
    }

    /// Run `BATCH` commands built by `argv(i)` per iteration, on `threads` threads at once
    /// (each thread runs the whole batch on its own keys); returns the elapsed time.
    fn run(
        ks: &Keyspace,
        iters: u64,
        threads: usize,
        argv: &(dyn Fn(usize, usize) -> Vec<Vec<u8>> + Sync),
    ) -> Duration {
        let work = |t: usize| {
            let idx = batch(t as u64 + 7);
            let cmds: Vec<Vec<Vec<u8>>> =
                idx.iter().enumerate().map(|(j, &i)| argv(i, j)).collect();
            let mut s = Session::default();
            for _ in 0..iters {
                for c in &cmds {
                    let a: Vec<&[u8]> = c.iter().map(|x| x.as_slice()).collect();
                    std::hint::black_box(ks.execute(&mut s, &a));
                }
            }
        };
        let start = Instant::now();
        if threads == 1 {
            work(0);
        } else {
            // Benchmark driver threads (not engine code): std's scoped threads.
            std::thread::scope(|sc| {
                for t in 0..threads {
                    sc.spawn(move || work(t));
                }
            });
        }
        start.elapsed()
    }

    /// Registers `keyspace/{get,set,incr,lpush,hset,zadd}` (one thread) and
    /// `keyspace_mt/{get,set}_{1,2}t` (1 vs 2 threads, throughput of all threads together).
    pub(crate) fn keyspace_group(c: &mut Criterion) {
        let ks = populate();
        let mut g = c.benchmark_group("keyspace");
        g.throughput(Throughput::Elements(BATCH as u64));
        g.sample_size(20);
        type Gen = fn(usize, usize) -> Vec<Vec<u8>>;
        let cases: [(&str, Gen); 6] = [
            ("get", |i, _| vec![b"GET".to_vec(), key("str", i)]),
            ("set", |i, _| {
                vec![b"SET".to_vec(), key("str", i), b"12345".to_vec()]
            }),
            ("incr", |i, _| vec![b"INCR".to_vec(), key("str", i)]),
            ("lpush", |i, _| {
                vec![b"LPUSH".to_vec(), key("list", i), b"y".to_vec()]
            }),
            ("hset", |i, j| {
                vec![
                    b"HSET".to_vec(),
                    key("hash", i),
                    format!("f{}", j % 8).into_bytes(),
                    b"v".to_vec(),
                ]
            }),
            ("zadd", |i, j| {
                vec![
                    b"ZADD".to_vec(),
                    key("zset", i),
                    (j % 100).to_string().into_bytes(),
                    b"m".to_vec(),
                ]
            }),
        ];
        for (name, f) in cases {
            g.bench_function(name, |b| b.iter_custom(|iters| run(&ks, iters, 1, &f)));
        }
        g.finish();
        let mut g = c.benchmark_group("keyspace_mt");
        g.sample_size(20);
        for threads in [1usize, 2] {
            g.throughput(Throughput::Elements((BATCH * threads) as u64));
            let get: Gen = |i, _| vec![b"GET".to_vec(), key("str", i)];
            let set: Gen = |i, _| vec![b"SET".to_vec(), key("str", i), b"12345".to_vec()];
            g.bench_function(format!("get_{threads}t"), |b| {
                b.iter_custom(|iters| run(&ks, iters, threads, &get))
            });
            g.bench_function(format!("set_{threads}t"), |b| {
                b.iter_custom(|iters| run(&ks, iters, threads, &set))
            });
        }
        g.finish();
    }
}

/// The benchmark group: `criterion_group!` defines a `pub fn benches`, kept out of the crate's
/// public items here.
mod group {
    use super::*;
    criterion_group!(
        benches,
        dict_benches::dict_group,
        keyspace_benches::keyspace_group
    );
}

criterion_main!(group::benches);
