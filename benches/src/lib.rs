//! Shared measurement code of forkless: the latency harness (`src/bin/latency.rs`) and the
//! `forkless demo` CLI subcommand both drive a keyspace (or a redis-server) through the same
//! phases and report the same figures.
//!
//! Problem: a fork-less snapshot is only worth it if writers do not notice it. Measuring that
//! needs every write's latency (not averages), phase by phase (idle, during a converging
//! snapshot, during a point-in-time snapshot), the memory the snapshot costs, and the same
//! measurement against redis-server's `BGSAVE` (fork + copy-on-write) for comparison.
//!
//! * [`hist`]: HDR histograms (Gil Tene's HdrHistogram, `hdrhistogram` crate) per phase and per
//!   100 ms window, summarized as throughput, p50/p99/p99.9/max and stalls (ops >= 1 ms).
//! * [`workload`]: the dataset (strings, or mixed types) and the random SET/INCR/HSET writes.
//! * [`rss`]: resident memory sampled from `/proc/self/status` (`VmRSS`, `VmHWM`).
//! * [`run`]: the forkless run: build, idle phase, one phase per snapshot, optional verification.
//! * [`verify`]: replay a snapshot (RDB + RESP deltas) and compare it with the state at the cut.
//! * [`redis`]: the same dataset and writes against a redis-server child with `BGSAVE`.
//! * [`aof_bench`]: the AOF measurements (append per fsync policy, rewrite, load against
//!   redis-server) of the `aof_harness` binary and the `aof` criterion bench.
//! * [`segments_bench`]: segmented persistence against the AOF with forkless rewrites (write
//!   amplification, latency, disk use over time, recovery time per snapshot interval) of the
//!   `segments_harness` binary.
//!
//! * [`eviction_bench`]: maxmemory — hit rate of allkeys-lru/lfu on a Zipfian trace against
//!   redis-server, memory held against the bound, writer latency with eviction on and off (the
//!   `eviction_harness` binary).
//!
//! Benchmarks (criterion) live in `benches/benches/`.
#![forbid(unsafe_code)]

pub mod aof_bench;
pub mod eviction_bench;
pub mod hist;
pub mod redis;
pub mod rss;
pub mod run;
pub mod segments_bench;
pub mod verify;
pub mod workload;
