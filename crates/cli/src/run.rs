//! `forkless run`: execute a file of RESP commands in a fresh keyspace.
//!
//! Problem: scripts (and outside checks) need to drive the engine end to end without writing
//! Rust: send commands, read the replies, look at the final keyspace, and exercise the snapshot
//! protocol while commands keep running.
//!
//! * Replies go to stdout in RESP, one per command, in order (exactly what a RESP2 client reads).
//! * `SELECT n` switches the database of the following commands, as in a Redis connection;
//!   `#` annotation lines (AOF timestamps) are skipped.
//! * `--dump OUT.jsonl` writes the final keyspace as canonical JSON Lines.
//! * `--snapshot-at N --mode converging|pit --out FILE` starts a forkless snapshot after the Nth
//!   command on a worker thread and goes on executing while it runs; the file appears durably
//!   at FILE when it is complete, and a summary goes to stderr.

use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, ValueEnum};
use forkless_keyspace::{Config, Keyspace, Session};
use forkless_resp::{scan_commands, Item, RespError};
use forkless_snapshot::{install, start_snapshot, Mode, SnapshotHandle, SnapshotOptions};

use crate::error::CliError;
use crate::fsutil;

/// Snapshot mode of `--mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ModeArg {
    /// RDB + RESP deltas: the keyspace when the snapshot ends.
    Converging,
    /// Pure RDB: the keyspace when the snapshot starts.
    Pit,
}

/// Arguments of `forkless run`.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  forkless run --commands cmds.resp > replies.resp\n  forkless run --commands cmds.resp --dump final.jsonl\n  forkless run --commands cmds.resp --snapshot-at 1000 --mode pit --out dump.rdb"
)]
pub struct RunArgs {
    /// File of RESP commands (arrays of bulk strings), executed in order.
    #[arg(long, value_name = "FILE")]
    pub commands: PathBuf,
    /// Write the final keyspace as canonical JSON Lines to this file.
    #[arg(long, value_name = "OUT.jsonl")]
    pub dump: Option<PathBuf>,
    /// Start a forkless snapshot after this many commands (0 = before the first).
    #[arg(long, value_name = "N", requires = "out")]
    pub snapshot_at: Option<u64>,
    /// Snapshot mode.
    #[arg(long, value_enum, default_value_t = ModeArg::Converging, requires = "snapshot_at")]
    pub mode: ModeArg,
    /// Where the snapshot goes (converging: RDB-preamble AOF; pit: RDB loadable as dump.rdb).
    #[arg(long, value_name = "FILE", requires = "snapshot_at")]
    pub out: Option<PathBuf>,
    /// Number of databases.
    #[arg(long, default_value_t = 16)]
    pub databases: u32,
}

/// Start the snapshot `--snapshot-at` asks for, on its worker thread.
fn begin_snapshot(
    ks: &Arc<Keyspace>,
    obs: Option<&Arc<forkless_snapshot::SnapshotObserver>>,
    args: &RunArgs,
) -> Result<SnapshotHandle, CliError> {
    let obs = obs.expect("observer installed when --snapshot-at is given");
    let path = args
        .out
        .clone()
        .expect("clap: --out required by --snapshot-at");
    let opts = SnapshotOptions {
        mode: match args.mode {
            ModeArg::Converging => Mode::Converging,
            ModeArg::Pit => Mode::PointInTime,
        },
        ..Default::default()
    };
    start_snapshot(ks.clone(), obs, &path, opts)
        .map_err(|e| CliError::new(format!("snapshot to {}", path.display()), e))
}

/// Run `forkless run`.
pub fn run(args: RunArgs) -> Result<ExitCode, CliError> {
    let ctx = format!("reading {}", args.commands.display());
    let input = std::fs::read(&args.commands).map_err(|e| CliError::new(&ctx, e))?;
    let scan = scan_commands(&input);
    if let Some(err) = &scan.tail {
        let what = match err {
            RespError::Incomplete { offset } => {
                format!("truncated command at offset {offset} (file ends inside it)")
            }
            other => other.to_string(),
        };
        return Err(CliError::new(ctx, what));
    }

    let mut ks = Keyspace::new(Config {
        databases: args.databases.max(1),
        ..Config::default()
    });
    let obs = args.snapshot_at.map(|_| install(&mut ks));
    let ks = Arc::new(ks);
    let stdout = std::io::stdout();
    let mut out = BufWriter::with_capacity(1 << 16, stdout.lock());
    let mut session = Session::default();
    let mut reply_buf = Vec::with_capacity(256);
    let mut executed = 0u64;
    let mut snapshot: Option<SnapshotHandle> = None;

    let due = |executed: u64| args.snapshot_at.is_some_and(|at| executed >= at);
    if due(0) {
        snapshot = Some(begin_snapshot(&ks, obs.as_ref(), &args)?);
    }
    for item in &scan.items {
        let Item::Command(argv) = &item.item else {
            continue;
        };
        let reply = ks.execute(&mut session, argv);
        reply_buf.clear();
        reply.encode(&mut reply_buf);
        out.write_all(&reply_buf)
            .map_err(|e| CliError::new("writing replies", e))?;
        executed += 1;
        if snapshot.is_none() && due(executed) {
            snapshot = Some(begin_snapshot(&ks, obs.as_ref(), &args)?);
        }
    }
    if snapshot.is_none() && args.snapshot_at.is_some() {
        eprintln!(
            "forkless: --snapshot-at {} is past the {executed} commands: snapshot taken at the end",
            args.snapshot_at.unwrap_or(0)
        );
        snapshot = Some(begin_snapshot(&ks, obs.as_ref(), &args)?);
    }
    out.flush()
        .map_err(|e| CliError::new("writing replies", e))?;

    if let Some(h) = snapshot {
        let path = h.path().to_path_buf();
        let res = h
            .wait()
            .map_err(|e| CliError::new(format!("snapshot to {}", path.display()), e))?;
        eprintln!(
            "forkless: snapshot ({:?}) written to {}: {} keys, {} bytes ({} RDB + {} delta bytes \
             in {} commands), {:.1} ms, {} buckets walked, {} visited by writers",
            res.mode,
            path.display(),
            res.keys,
            res.total_bytes,
            res.rdb_bytes,
            res.delta_bytes,
            res.delta_commands,
            res.duration.as_secs_f64() * 1e3,
            res.walked_buckets,
            res.forced_visits,
        );
    }

    if let Some(path) = &args.dump {
        let entries = ks.dump();
        fsutil::write_durably(path, |w| forkless_dump::write_jsonl(w, &entries))
            .map_err(|e| CliError::new(format!("writing {}", path.display()), e))?;
    }
    Ok(ExitCode::SUCCESS)
}
