//! AOF benchmarks (criterion): append throughput per fsync policy and writer-thread count, load
//! and rewrite of a small directory. Percentiles, group commit, the 1M-key rewrite and the
//! comparison with redis-server are in the harness (`--bin aof_harness`, benches/README.md "AOF").
//!
//! Dimensions:
//! - `aof/append/<policy>/<T>t`: T threads execute together a batch of [`BATCH`] writes (SET /
//!   INCR / HSET, 100 B values, over 100k pre-loaded keys) through a keyspace whose sink is the
//!   AOF writer of a real directory in the system temp dir (on disk), each write acknowledged
//!   (`ack_current_thread`: fsynced under `always`). Throughput = writes per second.
//! - `aof/load/<case>`: `load_dir` of a directory of [`LOAD_KEYS`] 100 B strings into a fresh
//!   keyspace: `incr` (empty base, every key a SET in the incr file) and `base+incr` (after a
//!   rewrite: RDB-preamble base, plus [`LOAD_KEYS`] / 5 writes in the incr file). Throughput in
//!   bytes of the directory.
//! - `aof/rewrite/idle`: the forkless `rewrite()` of the [`LOAD_KEYS`]-key directory.
//!
//! `cargo bench -p forkless-criterion --bench aof` (about 1.5 min); one group:
//! `cargo bench -p forkless-criterion --bench aof -- aof/append`.

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use forkless_aof::FsyncPolicy;
use forkless_benches::aof_bench::{
    append_setup, dir_bytes, extra_writes, forkless_load, policy_name, populate, run_rewrite,
    write_load, ScratchDir,
};
use forkless_harness::workload::Dataset;
use forkless_sync::atomic::AtomicBool;

/// Writes per measured iteration (all threads together).
const BATCH: u64 = 256;
/// Keys of the load / rewrite directory.
const LOAD_KEYS: u64 = 100_000;

fn append(c: &mut Criterion) {
    let scratch = ScratchDir::temp("forkless-aof-bench", false).expect("scratch dir");
    let dataset = Dataset {
        keys: 100_000,
        value_size: 100,
        mixed: false,
    };
    let mut g = c.benchmark_group("aof/append");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .throughput(Throughput::Elements(BATCH));
    for policy in [FsyncPolicy::Always, FsyncPolicy::EverySec, FsyncPolicy::No] {
        for threads in [1usize, 4] {
            let dir = scratch
                .path()
                .join(format!("{}-{threads}t", policy_name(policy)));
            let (aof, ks) = append_setup(&dir, policy, dataset).expect("AOF setup");
            let mut writer_id = 0u64;
            g.bench_function(
                BenchmarkId::new(policy_name(policy), format!("{threads}t")),
                |b| {
                    b.iter_custom(|iters| {
                        let per_thread = (iters * BATCH).div_ceil(threads as u64);
                        let stop = AtomicBool::new(false);
                        writer_id += threads as u64;
                        let t0 = Instant::now();
                        write_load(&ks, &aof, dataset, threads, writer_id, &stop, per_thread)
                            .expect("writes");
                        t0.elapsed()
                    })
                },
            );
            drop(ks);
            aof.close().expect("close");
        }
    }
    g.finish();
}

fn load_and_rewrite(c: &mut Criterion) {
    let scratch = ScratchDir::temp("forkless-aof-bench", false).expect("scratch dir");
    let dataset = Dataset {
        keys: LOAD_KEYS,
        value_size: 100,
        mixed: false,
    };
    let dir = scratch.path().join("live").join("appendonlydir");
    let live = populate(&dir, dataset, FsyncPolicy::EverySec).expect("populate");
    let incr_case = scratch.path().join("incr").join("appendonlydir");
    forkless_benches::aof_bench::copy_dir(&dir, &incr_case).expect("copy");

    let mut g = c.benchmark_group("aof/rewrite");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    g.bench_function("idle", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let r = run_rewrite(&live, dataset, 0).expect("rewrite");
                total += Duration::from_secs_f64(r.seconds);
            }
            total
        })
    });
    g.finish();

    extra_writes(&live, dataset, LOAD_KEYS / 5, 300).expect("writes");
    let base_case = scratch.path().join("base").join("appendonlydir");
    forkless_benches::aof_bench::copy_dir(&dir, &base_case).expect("copy");
    drop(live.ks);
    live.aof.close().expect("close");

    let mut g = c.benchmark_group("aof/load");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    for (name, d) in [("incr", &incr_case), ("base+incr", &base_case)] {
        g.throughput(Throughput::Bytes(dir_bytes(d)));
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    total += Duration::from_secs_f64(forkless_load(d).expect("load").seconds);
                }
                total
            })
        });
    }
    g.finish();
}

/// The benchmark group: `criterion_group!` defines a `pub fn benches`, kept out of the crate's
/// public items here.
mod group {
    use super::*;
    criterion_group!(benches, append, load_and_rewrite);
}

criterion_main!(group::benches);
