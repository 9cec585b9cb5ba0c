//! `forkless segments`: inspect, read and export segmented persistence directories.
//!
//! Problem: an operator needs to see what a segments directory holds and what it recovers to
//! (possibly as of a point in time), and to hand it to redis-server.
//!
//! * `forkless segments check DIR`: the chain of segments, each snapshot with its cut, what
//!   recovery would use, and problems (exit 1 when there is one).
//! * `forkless segments to-json DIR [--until-timestamp TS]`: the recovered keyspace as
//!   canonical JSON Lines on stdout.
//! * `forkless segments export DIR --out AOFDIR [--until-timestamp TS]`: a Redis 7 multi-part
//!   AOF directory that redis-server 7.0 loads to the same keyspace.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use forkless_keyspace::Config;
use forkless_segments::{check, export, recover, RecoverOptions, SegManifest};

use crate::error::CliError;

/// Arguments of `forkless segments`.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  forkless segments check segdir\n  forkless segments to-json segdir --until-timestamp 1700000000 > at.jsonl\n  forkless segments export segdir --out appendonlydir"
)]
pub(crate) struct SegmentsArgs {
    #[command(subcommand)]
    command: SegmentsCommand,
}

/// The `segments` subcommands.
#[derive(Debug, Subcommand)]
enum SegmentsCommand {
    /// The chain, each snapshot's cut, what recovery would use, problems (exit 1 when any).
    #[command(after_help = "Example:\n  forkless segments check segdir")]
    Check {
        /// The segments directory.
        dir: PathBuf,
    },
    /// Print the keyspace the directory recovers to, as canonical JSONL on stdout.
    #[command(
        after_help = "Examples:\n  forkless segments to-json segdir > now.jsonl\n  forkless segments to-json segdir --until-timestamp 1700000000 > then.jsonl"
    )]
    ToJson {
        /// The segments directory.
        dir: PathBuf,
        /// Recover the state at this Unix second (newest snapshot cut at or before it, then
        /// the log up to the first later `#TS:` annotation).
        #[arg(long, value_name = "TS")]
        until_timestamp: Option<i64>,
    },
    /// Write a Redis 7 multi-part AOF directory (snapshot as base, log tail as incr).
    #[command(after_help = "Example:\n  forkless segments export segdir --out appendonlydir")]
    Export {
        /// The segments directory.
        dir: PathBuf,
        /// The AOF directory to create (it must not hold an AOF manifest).
        #[arg(long, value_name = "AOFDIR")]
        out: PathBuf,
        /// Export the state at this Unix second.
        #[arg(long, value_name = "TS")]
        until_timestamp: Option<i64>,
    },
}

/// Run `forkless segments ...`.
pub(crate) fn run(args: SegmentsArgs) -> Result<ExitCode, CliError> {
    match args.command {
        SegmentsCommand::Check { dir } => {
            let ctx = format!("segments check {}", dir.display());
            let bar = crate::progress::spinner(&format!("checking {}", dir.display()));
            let r = check(&dir);
            bar.finish_and_clear();
            let r = r.map_err(|e| CliError::new(&ctx, e))?;
            let mut out = std::io::stdout().lock();
            let w = |out: &mut std::io::StdoutLock, s: &str| {
                writeln!(out, "{s}").map_err(|e| CliError::new("writing", e))
            };
            for l in &r.lines {
                w(&mut out, l)?;
            }
            for n in &r.notes {
                w(&mut out, &format!("note: {n}"))?;
            }
            match &r.recovery {
                Some(s) => w(&mut out, &format!("recovery would use: {s}"))?,
                None => w(&mut out, "recovery would fail")?,
            }
            for p in &r.problems {
                w(&mut out, &format!("problem: {p}"))?;
            }
            if r.problems.is_empty() {
                w(&mut out, "no problems")?;
                Ok(ExitCode::SUCCESS)
            } else {
                Ok(ExitCode::FAILURE)
            }
        }
        SegmentsCommand::ToJson {
            dir,
            until_timestamp,
        } => {
            let ctx = format!("segments to-json {}", dir.display());
            let m = SegManifest::load(&dir).map_err(|e| CliError::new(&ctx, e))?;
            let bar = crate::progress::spinner(&format!("recovering {}", dir.display()));
            let r = recover(
                &dir,
                &m,
                &Config::default(),
                RecoverOptions { until_timestamp },
            );
            bar.finish_and_clear();
            let (ks, rep) = r.map_err(|e| CliError::new(&ctx, e))?;
            for (f, why) in &rep.rejected {
                eprintln!("forkless: warning: {f} refused: {why}");
            }
            if let Some(t) = &rep.truncated {
                eprintln!(
                    "forkless: warning: {} ends inside a command: used its first {} of {} bytes",
                    t.file, t.valid_len, t.file_len
                );
            }
            if let Some(s) = &rep.stopped_at {
                eprintln!(
                    "forkless: stopped at #TS:{} in {} offset {}",
                    s.timestamp, s.file, s.offset
                );
            }
            let out = std::io::BufWriter::new(std::io::stdout().lock());
            forkless_dump::write_jsonl(out, &ks.dump())
                .map_err(|e| CliError::new("writing JSONL", e))?;
            Ok(ExitCode::SUCCESS)
        }
        SegmentsCommand::Export {
            dir,
            out,
            until_timestamp,
        } => {
            let ctx = format!("segments export {} --out {}", dir.display(), out.display());
            let r = export(&dir, &out, until_timestamp).map_err(|e| CliError::new(&ctx, e))?;
            for (f, why) in &r.rejected {
                eprintln!("forkless: warning: {f} refused: {why}");
            }
            eprintln!(
                "forkless: exported {} + {} commands from segments {:?} to {}",
                r.start.describe(),
                r.commands,
                r.segments,
                out.display()
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}
