//! Eviction harness (benches/README.md "Eviction"): hit rate of `allkeys-lru` and `allkeys-lfu`
//! on a Zipfian cache-aside trace with `maxmemory` at a fraction of the dataset, forkless
//! (in-process keyspace) beside redis-server 7.0.15 (loopback, pipelined) on the same trace and
//! bound; used_memory / maxmemory over the trace (SVG with `--svg`); writer latency with
//! eviction on and off. Prints Markdown. Measurement code: `bench.rs` beside
//! this file (private to this binary).

mod bench;

use std::path::PathBuf;
use std::process::ExitCode;

use bench::{draw_chart, markdown, run, EvictionConfig};
use clap::Parser;
use forkless_benches::aof_bench::ScratchDir;
use forkless_harness::rss::loadavg;

/// Hit rate and memory bound of the eviction policies, against redis-server.
#[derive(Debug, Parser)]
#[command(
    name = "eviction_harness",
    after_help = "Example:\n  cargo run --release -p forkless-benches --bin eviction_harness -- --keys 1000000 --ops 3000000 --svg benches/eviction_memory.svg"
)]
struct Args {
    /// Keys of the dataset (the trace's universe).
    #[arg(long, default_value_t = 1_000_000)]
    keys: u64,
    /// Trace operations.
    #[arg(long, default_value_t = 3_000_000)]
    ops: u64,
    /// Bytes per value.
    #[arg(long, default_value_t = 64)]
    value_size: usize,
    /// maxmemory as a fraction of the full dataset.
    #[arg(long, default_value_t = 0.5)]
    fraction: f64,
    /// Trace operations between used_memory samples.
    #[arg(long, default_value_t = 50_000)]
    sample_every: u64,
    /// SETs per writer-latency phase.
    #[arg(long, default_value_t = 2_000_000)]
    writer_ops: u64,
    /// Skip redis-server.
    #[arg(long)]
    no_redis: bool,
    /// Trace seed.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Write the memory chart (SVG) here.
    #[arg(long)]
    svg: Option<PathBuf>,
}

fn main() -> ExitCode {
    let a = Args::parse();
    let cfg = EvictionConfig {
        keys: a.keys,
        ops: a.ops,
        value_size: a.value_size,
        fraction: a.fraction,
        sample_every: a.sample_every.max(1),
        writer_ops: a.writer_ops,
        redis: !a.no_redis,
        seed: a.seed,
    };
    if cfg.keys == 0 || cfg.keys > u32::MAX as u64 || !(0.0..=1.0).contains(&cfg.fraction) {
        eprintln!("eviction_harness: --keys must be in 1..2^32 and --fraction in 0..=1");
        return ExitCode::from(2);
    }
    eprintln!("load average before: {}", loadavg());
    let scratch = match ScratchDir::temp("forkless-eviction", false) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("eviction_harness: {e}");
            return ExitCode::FAILURE;
        }
    };
    let rep = match run(&cfg, scratch.path(), &|l| eprintln!("{l}")) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("eviction_harness: {e}");
            return ExitCode::FAILURE;
        }
    };
    eprintln!("load average after: {}", loadavg());
    print!("{}", markdown(&cfg, &rep));
    if let Some(p) = &a.svg {
        if let Err(e) = draw_chart(&rep, p) {
            eprintln!("eviction_harness: {e}");
            return ExitCode::FAILURE;
        }
        eprintln!("chart: {}", p.display());
    }
    ExitCode::SUCCESS
}
