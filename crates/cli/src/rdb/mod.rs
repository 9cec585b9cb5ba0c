//! `forkless rdb ...`: convert RDB files to and from the canonical JSON Lines dump, and check
//! them like `redis-check-rdb`.
//!
//! The RDB format is read and written by `forkless-rdb` (layout in its `reader` module and in
//! DESIGN.md); the dump format is `docs/keyspace-jsonl.md` (`forkless-dump`).

mod check;

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand};
use forkless_dump::show_bytes;
use forkless_rdb::{Item, RdbReader, WriteOptions};

use crate::error::CliError;
use forkless_durable::write_durably;

/// Databases a default redis-server has (`databases 16`); a file using more does not load.
const REDIS_DEFAULT_DATABASES: u32 = 16;

/// `forkless rdb` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum RdbCommand {
    /// Print the keyspace of an RDB file as canonical JSON Lines on stdout.
    ///
    /// Keys without a canonical form (module types) are left out and reported on
    /// stderr, one line each with database, key and type.
    #[command(
        after_help = "Examples:\n  forkless rdb to-json dump.rdb > dump.jsonl\n  forkless rdb to-json - < dump.rdb"
    )]
    ToJson(ToJsonArgs),
    /// Write an RDB file (version 10, as Redis 7.0 does) from a canonical JSON Lines dump.
    ///
    /// The file is replaced durably: written to a temporary file in the same directory,
    /// fsynced, renamed over FILE.rdb, and the directory fsynced.
    #[command(
        after_help = "Examples:\n  forkless rdb from-json dump.jsonl --out dump.rdb\n  forkless rdb from-json dump.jsonl --out plain.rdb --no-compress --no-checksum"
    )]
    FromJson(FromJsonArgs),
    /// Check an RDB file like redis-check-rdb: version, aux fields, keys per database and type,
    /// expiries, skipped keys, checksum.
    ///
    /// Exits 0 when the whole file is valid; otherwise prints `error at offset N: ...` and exits 1.
    #[command(
        after_help = "Examples:\n  forkless rdb check dump.rdb\n  forkless rdb check /var/lib/redis/dump.rdb && echo OK"
    )]
    Check(CheckArgs),
}

/// Arguments of `forkless rdb to-json`.
#[derive(Debug, Args)]
pub(crate) struct ToJsonArgs {
    /// The RDB file (`-` for stdin).
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
}

/// Arguments of `forkless rdb from-json`.
#[derive(Debug, Args)]
pub(crate) struct FromJsonArgs {
    /// The JSON Lines dump (`-` for stdin).
    #[arg(value_name = "DUMP.jsonl")]
    pub dump: PathBuf,
    /// The RDB file to write (replaced atomically).
    #[arg(long, value_name = "FILE.rdb")]
    pub out: PathBuf,
    /// Do not LZF-compress strings (like `rdbcompression no`).
    #[arg(long)]
    pub no_compress: bool,
    /// Write a zero checksum (like `rdbchecksum no`).
    #[arg(long)]
    pub no_checksum: bool,
}

/// Arguments of `forkless rdb check`.
#[derive(Debug, Args)]
pub(crate) struct CheckArgs {
    /// The RDB file (`-` for stdin).
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
}

/// Run one `forkless rdb` subcommand.
pub(crate) fn run(cmd: RdbCommand) -> Result<ExitCode, CliError> {
    match cmd {
        RdbCommand::ToJson(a) => to_json(&a),
        RdbCommand::FromJson(a) => from_json(&a),
        RdbCommand::Check(a) => check::check(&a),
    }
}

/// Open `path` for reading, `-` meaning stdin, buffered.
pub(crate) fn open_input(path: &Path) -> io::Result<BufReader<Box<dyn Read>>> {
    let r: Box<dyn Read> = if path == Path::new("-") {
        Box::new(io::stdin().lock())
    } else {
        Box::new(File::open(path)?)
    };
    Ok(BufReader::with_capacity(1 << 16, r))
}

fn to_json(a: &ToJsonArgs) -> Result<ExitCode, CliError> {
    let ctx = format!("reading {}", a.file.display());
    let input = open_input(&a.file).map_err(|e| CliError::new(&ctx, e))?;
    let mut reader = RdbReader::new(input).map_err(|e| CliError::new(&ctx, e))?;
    let mut entries = Vec::new();
    let bar = crate::progress::file_bar(&a.file, "reading");
    while let Some(item) = reader.next_item().map_err(|e| CliError::new(&ctx, e))? {
        if entries.len() % 4096 == 0 {
            bar.set_position(reader.offset());
        }
        match item {
            Item::Entry(e) => entries.push(e),
            Item::Skipped { db, key, kind, rdb_type } => eprintln!(
                "forkless: skipped db {db} key {} type {kind} (RDB type {rdb_type}): no canonical form",
                show_bytes(&key)
            ),
            _ => {}
        }
    }
    bar.finish_and_clear();
    let out = BufWriter::with_capacity(1 << 16, io::stdout().lock());
    match forkless_dump::write_jsonl(out, &entries) {
        Ok(()) => Ok(ExitCode::SUCCESS),
        // `forkless rdb to-json x | head`: the reader went away, nothing to report.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(ExitCode::SUCCESS),
        Err(e) => Err(CliError::new("writing stdout", e)),
    }
}

fn from_json(a: &FromJsonArgs) -> Result<ExitCode, CliError> {
    let ctx = format!("reading {}", a.dump.display());
    let input = open_input(&a.dump).map_err(|e| CliError::new(&ctx, e))?;
    let entries = forkless_dump::read_jsonl(input).map_err(|e| CliError::new(&ctx, e))?;
    if let Some(e) = entries.iter().find(|e| e.db >= REDIS_DEFAULT_DATABASES) {
        eprintln!(
            "forkless: warning: key {} is in db {}: a redis-server with the default `databases {}` refuses this file",
            show_bytes(&e.key),
            e.db,
            REDIS_DEFAULT_DATABASES
        );
    }
    let opts = WriteOptions {
        compression: !a.no_compress,
        checksum: !a.no_checksum,
        ..WriteOptions::default()
    };
    write_durably(&a.out, |w| {
        forkless_rdb::write_all(&mut *w, &entries, opts).map(|_| ())
    })
    .map_err(|e| CliError::new(format!("writing {}", a.out.display()), e))?;
    Ok(ExitCode::SUCCESS)
}

/// Write `text` to stdout, treating a closed pipe as success.
pub(crate) fn print_stdout(text: &str) -> Result<(), CliError> {
    match io::stdout().lock().write_all(text.as_bytes()) {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => Err(CliError::new("writing stdout", e)),
        _ => Ok(()),
    }
}
