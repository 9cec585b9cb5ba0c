//! `forkless aof`: check, repair and read Redis 7.0 multi-part AOF directories.
//!
//! Problem: an operator needs `redis-check-aof` for directories forkless writes (and Redis
//! writes), and a way to see what an AOF recovers to, possibly as of a point in time.
//!
//! * `forkless aof check DIR [--fix] [--truncate-to-timestamp TS]`: like `redis-check-aof`
//!   (`forkless_aof::check_dir`): every file of the manifest valid; `--fix` cuts an invalid
//!   tail off the last file, durably; `--truncate-to-timestamp` cuts the last file before its
//!   first `#TS:` annotation later than TS. It also prints the cut the live base records and
//!   lists the history generations (`history/gen-<b>/`: valid, incomplete, invalid or stale;
//!   they never make the check fail).
//! * `forkless aof to-json DIR [--until-timestamp TS]`: load the directory into an engine
//!   keyspace and print it as canonical JSONL (`docs/keyspace-jsonl.md`). With TS
//!   earlier than the live base's cut (`forkless-aof-cut-time`), recovery starts from the newest
//!   history generation cut at or before TS (`forkless_aof::load_dir_at`); TS older than the
//!   retained window is an error.
//!
//! `DIR` is the AOF directory (`appendonlydir`) or its manifest file.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand};
use forkless_aof::{
    check_dir, load_dir, load_dir_at, BaseCut, CheckOptions, FileStatus, GenerationStatus,
    KeyspaceTarget, LoadOptions,
};
use forkless_keyspace::{Config, Keyspace};

use crate::error::CliError;

/// Arguments of `forkless aof`.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  forkless aof check appendonlydir\n  forkless aof check appendonlydir/appendonly.aof.manifest --fix\n  forkless aof to-json appendonlydir --until-timestamp 1700000000 > at.jsonl"
)]
pub(crate) struct AofArgs {
    #[command(subcommand)]
    command: AofCommand,
}

/// The `aof` subcommands.
#[derive(Debug, Subcommand)]
enum AofCommand {
    /// Check a multi-part AOF directory like redis-check-aof (exit 1 when invalid).
    Check {
        /// The AOF directory, or its `.manifest` file.
        dir: PathBuf,
        /// Cut an invalid tail off the last file (to its last complete command), durably.
        #[arg(long, conflicts_with = "truncate_to_timestamp")]
        fix: bool,
        /// Cut the last file before its first `#TS:` annotation later than this Unix time.
        #[arg(long, value_name = "TS")]
        truncate_to_timestamp: Option<i64>,
        /// `appendfilename` (the manifest is `<NAME>.manifest`); taken from DIR when DIR is a
        /// manifest.
        #[arg(long, value_name = "NAME")]
        filename: Option<String>,
    },
    /// Print the keyspace the directory recovers to, as canonical JSONL on stdout.
    ToJson {
        /// The AOF directory, or its `.manifest` file.
        dir: PathBuf,
        /// Stop before the first `#TS:` annotation later than this Unix time.
        #[arg(long, value_name = "TS")]
        until_timestamp: Option<i64>,
        /// `appendfilename`; taken from DIR when DIR is a manifest.
        #[arg(long, value_name = "NAME")]
        filename: Option<String>,
    },
}

/// Split `DIR` into (directory, appendfilename).
fn locate(dir: &Path, filename: Option<String>) -> Result<(PathBuf, Option<String>), String> {
    if dir.is_file() {
        let name = dir.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        let Some(stem) = name.strip_suffix(".manifest") else {
            return Err(format!(
                "{}: not a directory or a .manifest file",
                dir.display()
            ));
        };
        let parent = dir.parent().map(Path::to_path_buf).unwrap_or_default();
        let parent = if parent.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            parent
        };
        return Ok((parent, Some(filename.unwrap_or_else(|| stem.to_string()))));
    }
    Ok((dir.to_path_buf(), filename))
}

/// Run `forkless aof ...`. A directory that does not check out is an error (`forkless: aof:
/// <what>`, exit status 1), as `redis-check-aof` fails.
pub(crate) fn run(args: AofArgs) -> Result<ExitCode, CliError> {
    aof(args)
        .map(|()| ExitCode::SUCCESS)
        .map_err(|e| CliError::new("aof", e))
}

fn aof(args: AofArgs) -> Result<(), String> {
    match args.command {
        AofCommand::Check {
            dir,
            fix,
            truncate_to_timestamp,
            filename,
        } => {
            let (dir, filename) = locate(&dir, filename)?;
            let opts = CheckOptions {
                fix,
                truncate_to_timestamp,
                filename,
            };
            let bar = crate::progress::spinner(&format!("checking {}", dir.display()));
            let report = check_dir(&dir, &opts);
            bar.finish_and_clear();
            let report = report.map_err(|e| format!("aof check {}: {e}", dir.display()))?;
            let mut out = std::io::stdout().lock();
            for f in &report.files {
                let verdict = match f.status {
                    FileStatus::Valid => "valid".to_string(),
                    FileStatus::Empty => "empty".to_string(),
                    FileStatus::Truncated => format!(
                        "truncated from {} to {} bytes ({})",
                        f.size,
                        f.ok_up_to,
                        f.problem.as_deref().unwrap_or("invalid tail")
                    ),
                    FileStatus::TimestampTruncated => {
                        format!(
                            "truncated to timestamp at offset {} (was {} bytes)",
                            f.ok_up_to, f.size
                        )
                    }
                };
                writeln!(out, "{}: {verdict}, {} commands", f.name, f.commands)
                    .map_err(|e| e.to_string())?;
            }
            if let Some(c) = &report.base_cut {
                writeln!(out, "base cut {}", describe_cut(c)).map_err(|e| e.to_string())?;
            }
            writeln!(out, "All AOF files and manifest are valid").map_err(|e| e.to_string())?;
            if !report.history.is_empty() {
                writeln!(out, "history generations:").map_err(|e| e.to_string())?;
            }
            for g in &report.history {
                let verdict = match &g.status {
                    GenerationStatus::Valid => "valid".to_string(),
                    GenerationStatus::Stale => {
                        "stale (its base is the live base: a rewrite did not finish)".to_string()
                    }
                    GenerationStatus::Incomplete(why) => format!("incomplete ({why})"),
                    GenerationStatus::Invalid(why) => format!("invalid ({why})"),
                };
                let commands: u64 = g.files.iter().map(|f| f.commands).sum();
                let cut = g
                    .cut
                    .as_ref()
                    .map_or_else(|| "no recorded cut".to_string(), describe_cut);
                writeln!(
                    out,
                    "  history/{}: {verdict}, {} files, {commands} commands, base cut {cut}",
                    g.name,
                    g.files.len()
                )
                .map_err(|e| e.to_string())?;
            }
            Ok(())
        }
        AofCommand::ToJson {
            dir,
            until_timestamp,
            filename,
        } => {
            let (dir, filename) = locate(&dir, filename)?;
            let ks = Keyspace::new(Config::default());
            let opts = LoadOptions {
                until_timestamp,
                filename,
            };
            let bar = crate::progress::spinner(&format!("loading {}", dir.display()));
            let report = match until_timestamp {
                None => load_dir(&dir, &opts, &mut KeyspaceTarget::new(&ks)),
                Some(t) => load_dir_at(
                    &dir,
                    t,
                    opts.filename.as_deref(),
                    &mut KeyspaceTarget::new(&ks),
                )
                .map(|r| {
                    for (g, why) in &r.skipped {
                        eprintln!("forkless: history/{g} skipped: {why}");
                    }
                    match &r.generation {
                        Some(g) => eprintln!(
                            "forkless: recovering from history/{g}, base cut {}",
                            r.base_cut
                                .as_ref()
                                .map_or_else(|| "not recorded".to_string(), describe_cut)
                        ),
                        None if r.base_cut.is_none() => eprintln!(
                            "forkless: warning: the base records no cut time: the result is the \
                             base plus the log up to {t}"
                        ),
                        None => {}
                    }
                    r.load
                }),
            };
            bar.finish_and_clear();
            let report = report.map_err(|e| format!("aof to-json {}: {e}", dir.display()))?;
            if let Some(t) = &report.truncated {
                eprintln!(
                    "forkless: warning: {} ends inside a command: loaded its first {} of {} bytes{}",
                    t.file,
                    t.valid_len,
                    t.file_len,
                    if t.multi_rolled_back { " (an unfinished MULTI rolled back)" } else { "" }
                );
            }
            if let Some(s) = &report.stopped_at {
                eprintln!(
                    "forkless: stopped at #TS:{} in {} offset {}",
                    s.timestamp, s.file, s.offset
                );
            }
            for (db, key, kind) in &report.skipped_keys {
                eprintln!(
                    "forkless: warning: key {:?} in db {db} is a {kind}, which has no canonical form: left out",
                    String::from_utf8_lossy(key)
                );
            }
            let out = std::io::BufWriter::new(std::io::stdout().lock());
            forkless_dump::write_jsonl(out, &ks.dump()).map_err(|e| format!("writing JSONL: {e}"))
        }
    }
}

/// `at <time> (incr file <seq>, stream offset <n>)`.
fn describe_cut(c: &BaseCut) -> String {
    format!(
        "at {} (first incr not covered: seq {}; writer stream offset {})",
        c.at.unix_secs, c.at.seq, c.logical
    )
}
