//! The benchmark code of forkless shared by more than one target (see `benches/README.md`): the AOF
//! measurements of the `aof_harness` binary and the `aof` criterion bench (also used by the
//! segments harness), and the segments measurements. Code that serves one binary and nothing
//! else is a private module of it (`src/bin/eviction_harness/bench.rs`). The workload,
//! histograms, RSS sampling, the redis-server comparison run and snapshot verification they use
//! are in `forkless-harness` (shared with `forkless demo`).
//!
//! * [`aof_bench`]: the AOF measurements (append per fsync policy, rewrite, load against
//!   redis-server) of the `aof_harness` binary and the `aof` criterion bench.
//! * [`segments_bench`]: segmented persistence against the AOF with forkless rewrites (write
//!   amplification, latency, disk use over time, recovery time per snapshot interval) of the
//!   `segments_harness` binary (its result types keep fields the binary does not print yet).
//!
//! Benchmarks (criterion) live in `benches/criterion/benches/`.
#![forbid(unsafe_code)]

pub mod aof_bench;
pub mod segments_bench;
