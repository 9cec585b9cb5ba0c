//! (being written)
use criterion::{criterion_group, criterion_main, Criterion};
fn placeholder(_c: &mut Criterion) {}
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
            let cmds: Vec<Vec<Vec<u8>>> = idx.iter().enumerate().map(|(j, &i)| argv(i, j)).collect();
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
    pub fn keyspace_group(c: &mut Criterion) {
        let ks = populate();
        let mut g = c.benchmark_group("keyspace");
        g.throughput(Throughput::Elements(BATCH as u64));
        g.sample_size(20);
        type Gen = fn(usize, usize) -> Vec<Vec<u8>>;
        let cases: [(&str, Gen); 6] = [
            ("get", |i, _| vec![b"GET".to_vec(), key("str", i)]),
            ("set", |i, _| vec![b"SET".to_vec(), key("str", i), b"12345".to_vec()]),
            ("incr", |i, _| vec![b"INCR".to_vec(), key("str", i)]),
            ("lpush", |i, _| vec![b"LPUSH".to_vec(), key("list", i), b"y".to_vec()]),
            ("hset", |i, j| {
                vec![b"HSET".to_vec(), key("hash", i), format!("f{}", j % 8).into_bytes(), b"v".to_vec()]
            }),
            ("zadd", |i, j| {
                vec![b"ZADD".to_vec(), key("zset", i), (j % 100).to_string().into_bytes(), b"m".to_vec()]
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

criterion_group!(benches, placeholder, keyspace_benches::keyspace_group);
criterion_main!(benches);
