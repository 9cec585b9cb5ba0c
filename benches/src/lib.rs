//! The benchmark harnesses of forkless (see `benches/README.md`): the AOF, segments and eviction
//! measurements shared by their binaries and the `aof` criterion bench. The workload,
//! histograms, RSS sampling, the redis-server comparison run and snapshot verification they use
//! are in `forkless-harness` (shared with `forkless demo`).
//!
//! * [`aof_bench`]: the AOF measurements (append per fsync policy, rewrite, load against
//!   redis-server) of the `aof_harness` binary and the `aof` criterion bench.
//! * [`segments_bench`]: segmented persistence against the AOF with forkless rewrites (write
//!   amplification, latency, disk use over time, recovery time per snapshot interval) of the
//!   `segments_harness` binary.
//! * [`eviction_bench`]: maxmemory — hit rate of allkeys-lru/lfu on a Zipfian trace against
//!   redis-server, memory held against the bound, writer latency with eviction on and off (the
//!   `eviction_harness` binary).
//!
//! Benchmarks (criterion) live in `benches/benches/`.
#![forbid(unsafe_code)]

pub mod aof_bench;
pub mod eviction_bench;
pub mod segments_bench;
