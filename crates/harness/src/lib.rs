//! Shared measurement code of forkless: the `forkless demo` CLI subcommand and the benchmark
//! harnesses (`benches/`) drive a keyspace (or a redis-server) through the same phases and
//! report the same figures.
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
//! * [`stall`]: the cause of every write >= 1 ms (lock wait by holder, hand-off, copy-on-write,
//!   delta capture, the OS descheduling the writer).
//! * [`verify`]: replay a snapshot (RDB + RESP deltas, [`forkless_snapshot::load`]) and compare
//!   it with the state at the cut.
//! * [`redis`]: the same dataset and writes against a redis-server child with `BGSAVE`.
//!
//! Not a benchmark crate: the shipped `forkless` binary links it (for `forkless demo`), the
//! benchmarks (`forkless-benches`) build on it.
#![forbid(unsafe_code)]

pub mod hist;
pub mod redis;
pub mod rss;
pub mod run;
pub mod stall;
pub mod verify;
pub mod workload;
