//! `forkless`: the command-line tool of the forkless engine.
//!
//! Problem: scripts and people need one binary to inspect and convert persistence files (and,
//! later, to run the engine), with subcommand names and flags that outside scripts can rely on.
//!
//! Layout: one top-level [`Command`] enum, one module per subcommand group, each exposing its
//! clap arguments and a `run(args) -> Result<ExitCode, CliError>` function. Adding a subcommand
//! is a variant plus a match arm (the `run` subcommand: `Run(run::RunArgs)` and
//! `Command::Run(a) => run::run(a)`, with `mod run;`).
//!
//! Outcomes: `Ok(code)` is the exit status of a command that ran (`segments check` exits 1
//! after printing its report when it lists problems); `Err(CliError)` is
//! one line on stderr, `forkless: <context>: <error>`, and exit status 1 (clap's usage errors
//! exit 2). Flag values with a type of their own (`--appendfsync`, `--mode`) are parsed by that
//! type's `FromStr` (module `args`).
#![forbid(unsafe_code)]

mod aof;
mod args;
mod demo;
mod error;
mod progress;
mod rdb;
mod run;
mod segments;
mod server;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub use error::CliError;

/// jemalloc instead of glibc's malloc: 7% less RSS for 1M small strings (the `mimalloc` crate
/// was 7% worse than glibc) and none of glibc's `malloc_consolidate` stalls after large frees
/// (benches/README.md, "Allocator"; DESIGN.md, "Third-party dependencies").
/// Feature `jemalloc`, on by default (crates/cli/Cargo.toml).
#[cfg(feature = "jemalloc")]
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Redis-compatible in-memory keyspace that persists without fork().
#[derive(Debug, Parser)]
#[command(
    name = "forkless",
    version,
    after_help = "Examples:\n  forkless rdb to-json dump.rdb > dump.jsonl\n  forkless rdb from-json dump.jsonl --out dump.rdb\n  forkless rdb check dump.rdb\n  forkless run --commands cmds.resp --snapshot-at 1000 --mode pit --out dump.rdb\n  forkless aof check appendonlydir\n  forkless run --commands cmds.resp --segments-dir segdir --snapshot-every 10000\n  forkless segments check segdir\n  forkless demo --keys 200000 --report out/"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
enum Command {
    /// Inspect and convert RDB files (Redis 7.0 format).
    #[command(
        subcommand,
        after_help = "Examples:\n  forkless rdb to-json dump.rdb > dump.jsonl\n  forkless rdb from-json dump.jsonl --out dump.rdb --no-compress\n  forkless rdb check dump.rdb"
    )]
    Rdb(rdb::RdbCommand),
    /// Execute a file of RESP commands in a fresh keyspace (replies on stdout), optionally
    /// taking a forkless snapshot while it runs.
    Run(run::RunArgs),
    /// Measure write latency while forkless snapshots run (and against redis BGSAVE): the demo.
    Demo(demo::DemoArgs),
    /// Check, repair and read Redis 7 multi-part AOF directories.
    Aof(aof::AofArgs),
    /// Check, read and export segmented persistence directories (segments + snapshots).
    Segments(segments::SegmentsArgs),
    /// Run a Redis-compatible server: redis-server's command line
    /// (`forkless server [CONFIG-FILE] [--<option> <value>]...`).
    Server(server::ServerArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Rdb(c) => rdb::run(c),
        Command::Run(a) => run::run(a),
        Command::Demo(a) => demo::run(a),
        Command::Aof(a) => aof::run(a),
        Command::Segments(a) => segments::run(a),
        Command::Server(a) => server::run(a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("forkless: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
