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
//! * `--aof-dir DIR --appendfsync always|everysec|no` persists the run into a Redis 7
//!   multi-part AOF directory (loading it first when it exists).
//! * `--segments-dir DIR [--segment-bytes N] [--snapshot-every N] [--mode converging|pit]
//!   [--appendfsync ...]` persists the run into a segments directory (recovering it first when
//!   it exists), rolling segments at N bytes and starting a forkless snapshot every N commands
//!   (on a worker thread; if the previous one still runs, the next starts when it is done).

use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Args;
use forkless_aof::{AofDir, AofDirOptions, FsyncPolicy, WriterOptions};
use forkless_keyspace::{Config, Keyspace, Session};
use forkless_resp::{scan_commands, Item, RespError};
use forkless_snapshot::{install, start_snapshot, Mode, SnapshotHandle, SnapshotOptions};

use crate::args;
use crate::error::CliError;

/// Arguments of `forkless run`.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  forkless run --commands cmds.resp > replies.resp\n  forkless run --commands cmds.resp --dump final.jsonl\n  forkless run --commands cmds.resp --snapshot-at 1000 --mode pit --out dump.rdb"
)]
pub(crate) struct RunArgs {
    /// File of RESP commands (arrays of bulk strings), executed in order.
    #[arg(long, value_name = "FILE")]
    pub commands: PathBuf,
    /// Write the final keyspace as canonical JSON Lines to this file.
    #[arg(long, value_name = "OUT.jsonl")]
    pub dump: Option<PathBuf>,
    /// Start a forkless snapshot after this many commands (0 = before the first).
    #[arg(long, value_name = "N", requires = "out")]
    pub snapshot_at: Option<u64>,
    /// Snapshot mode (of --snapshot-at and --snapshot-every).
    #[arg(long, value_parser = args::snapshot_mode(), default_value_t = Mode::Converging)]
    pub mode: Mode,
    /// Where the snapshot goes (converging: RDB-preamble AOF; pit: RDB loadable as dump.rdb).
    #[arg(long, value_name = "FILE", requires = "snapshot_at")]
    pub out: Option<PathBuf>,
    /// Persist the run into this Redis 7 multi-part AOF directory (created when it holds no
    /// manifest; otherwise loaded first and appended to).
    #[arg(long, value_name = "DIR")]
    pub aof_dir: Option<PathBuf>,
    /// fsync policy of the AOF or of the segments.
    #[arg(long, value_parser = args::fsync_policy(), default_value_t = FsyncPolicy::EverySec)]
    pub appendfsync: FsyncPolicy,
    /// Persist the run into this segments directory (created when it holds no manifest;
    /// otherwise recovered first and continued in a new segment).
    #[arg(long, value_name = "DIR", conflicts_with_all = ["aof_dir", "snapshot_at"])]
    pub segments_dir: Option<PathBuf>,
    /// Roll to a new segment at this many bytes.
    #[arg(long, value_name = "N", default_value_t = 64 << 20, requires = "segments_dir")]
    pub segment_bytes: u64,
    /// Start a forkless snapshot of the segments directory every N commands.
    #[arg(long, value_name = "N", requires = "segments_dir")]
    pub snapshot_every: Option<u64>,
    /// Segments directory retention: snapshots kept.
    #[arg(long, value_name = "N", default_value_t = 2, requires = "segments_dir")]
    pub keep_snapshots: usize,
    /// Segments directory retention: segments older than the oldest kept snapshot's cut are
    /// kept while all segments together stay within this many bytes.
    #[arg(long, value_name = "BYTES", default_value_t = 1 << 30, requires = "segments_dir")]
    pub keep_segment_bytes: u64,
    /// Number of databases.
    #[arg(long, default_value_t = 16)]
    pub databases: u32,
}

/// Open (or create) the AOF directory of `--aof-dir`, loading what it holds into `ks`.
fn open_aof(dir: &std::path::Path, fsync: FsyncPolicy, ks: &Keyspace) -> Result<AofDir, CliError> {
    let opts = AofDirOptions {
        writer: WriterOptions {
            fsync,
            ..WriterOptions::default()
        },
        ..AofDirOptions::default()
    };
    let ctx = format!("AOF directory {}", dir.display());
    if dir
        .join(forkless_aof::manifest::manifest_name(&opts.filename))
        .exists()
    {
        let (aof, report) = AofDir::open(dir, ks, opts).map_err(|e| CliError::new(&ctx, e))?;
        if let Some(t) = &report.truncated {
            eprintln!(
                "forkless: {ctx}: truncated tail of {} cut at offset {}",
                t.file, t.valid_len
            );
        }
        Ok(aof)
    } else {
        AofDir::create(dir, &[], opts).map_err(|e| CliError::new(&ctx, e))
    }
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
        mode: args.mode,
        ..Default::default()
    };
    start_snapshot(ks.clone(), obs, &path, opts)
        .map_err(|e| CliError::new(format!("snapshot to {}", path.display()), e))
}

/// Run `forkless run`.
pub(crate) fn run(args: RunArgs) -> Result<ExitCode, CliError> {
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

    let config = Config {
        databases: args.databases.max(1),
        ..Config::default()
    };
    if let Some(dir) = &args.segments_dir {
        return run_segments(&args, dir, &config, &scan.items);
    }
    let mut ks = Keyspace::new(config);
    let aof = match &args.aof_dir {
        Some(dir) => Some(open_aof(dir, args.appendfsync, &ks)?),
        None => None,
    };
    if let Some(aof) = &aof {
        ks.set_sink(aof.writer());
    }
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
        if let Some(aof) = &aof {
            // Acknowledge per the fsync policy before the reply goes out.
            aof.writer()
                .ack_current_thread()
                .map_err(|e| CliError::new("appending to the AOF", e))?;
        }
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

    if let Some(aof) = aof {
        aof.close()
            .map_err(|e| CliError::new("closing the AOF", e))?;
    }

    if let Some(path) = &args.dump {
        let entries = ks.dump();
        forkless_durable::write_durably(path, |w| forkless_dump::write_jsonl(w, &entries))
            .map_err(|e| CliError::new(format!("writing {}", path.display()), e))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `forkless run --segments-dir DIR`: recover DIR, execute the commands on top while persisting
/// them into it, with a forkless snapshot every `--snapshot-every` commands.
fn run_segments(
    args: &RunArgs,
    dir: &std::path::Path,
    config: &Config,
    items: &[forkless_resp::Scanned<'_>],
) -> Result<ExitCode, CliError> {
    use forkless_segments::{SegmentDir, SegmentOptions};
    let ctx = format!("segments directory {}", dir.display());
    let opts = SegmentOptions {
        segment_bytes: args.segment_bytes.max(1),
        keep_snapshots: args.keep_snapshots.max(1),
        keep_segment_bytes: args.keep_segment_bytes,
        writer: WriterOptions {
            fsync: args.appendfsync,
            timestamps: true,
            ..WriterOptions::default()
        },
        ..SegmentOptions::default()
    };
    let (sdir, mut ks, report) =
        SegmentDir::open(dir, config, opts).map_err(|e| CliError::new(&ctx, e))?;
    if let Some(r) = &report {
        for (f, why) in &r.rejected {
            eprintln!("forkless: {ctx}: {f} refused: {why}");
        }
        if let Some(t) = &r.truncated {
            eprintln!(
                "forkless: {ctx}: torn tail of {} cut at offset {}",
                t.file, t.valid_len
            );
        }
        eprintln!(
            "forkless: {ctx}: recovered from {} + {} commands of segments {:?}",
            r.start.describe(),
            r.commands,
            r.segments
        );
    }
    let writer = sdir.writer();
    ks.set_sink(writer.clone());
    let obs = install(&mut ks);
    let ks = Arc::new(ks);
    let sdir = Arc::new(sdir);
    let mode = args.mode;
    let spawn = || {
        let (sdir, ks, obs) = (sdir.clone(), ks.clone(), obs.clone());
        std::thread::spawn(move || sdir.snapshot(&ks, &obs, mode))
    };
    let report_snapshot = |h: std::thread::JoinHandle<forkless_segments::Result<_>>| {
        let info: forkless_segments::SnapshotInfo = h
            .join()
            .map_err(|_| CliError::new("snapshot", "the snapshot thread panicked"))?
            .map_err(|e| CliError::new("snapshot", e))?;
        eprintln!(
            "forkless: {} ({}) cut at segment {} offset {}: {} keys, {} bytes, {:.1} ms{}",
            info.entry.name(),
            info.entry.mode.name(),
            info.entry.cut.seq,
            info.entry.cut.offset,
            info.result.keys,
            info.entry.len,
            info.result.duration.as_secs_f64() * 1e3,
            if info.deleted.is_empty() {
                String::new()
            } else {
                format!("; retention deleted {}", info.deleted.join(" "))
            }
        );
        Ok::<(), CliError>(())
    };
    let stdout = std::io::stdout();
    let mut out = BufWriter::with_capacity(1 << 16, stdout.lock());
    let mut session = Session::default();
    let mut reply_buf = Vec::with_capacity(256);
    let mut executed = 0u64;
    let mut running: Option<std::thread::JoinHandle<_>> = None;
    let mut due = false;
    for item in items {
        let Item::Command(argv) = &item.item else {
            continue;
        };
        let reply = ks.execute(&mut session, argv);
        writer
            .ack_current_thread()
            .map_err(|e| CliError::new("appending to the segments", e))?;
        reply_buf.clear();
        reply.encode(&mut reply_buf);
        out.write_all(&reply_buf)
            .map_err(|e| CliError::new("writing replies", e))?;
        executed += 1;
        if args
            .snapshot_every
            .is_some_and(|n| n > 0 && executed.is_multiple_of(n))
        {
            due = true;
        }
        if running.as_ref().is_some_and(|h| h.is_finished()) {
            report_snapshot(running.take().expect("running"))?;
        }
        if due && running.is_none() {
            running = Some(spawn());
            due = false;
        }
    }
    out.flush()
        .map_err(|e| CliError::new("writing replies", e))?;
    if let Some(h) = running.take() {
        report_snapshot(h)?;
    }
    if due {
        report_snapshot(spawn())?;
    }
    sdir.close()
        .map_err(|e| CliError::new("closing the segments", e))?;
    if let Some(path) = &args.dump {
        let entries = ks.dump();
        forkless_durable::write_durably(path, |w| forkless_dump::write_jsonl(w, &entries))
            .map_err(|e| CliError::new(format!("writing {}", path.display()), e))?;
    }
    Ok(ExitCode::SUCCESS)
}
