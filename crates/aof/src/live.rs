//! Starting the AOF under a live keyspace (`CONFIG SET appendonly yes`), without fork.
//!
//! Redis turns the AOF on at run time with a rewrite: the child writes the dataset as the new
//! base while the parent appends new writes to a temp incr file; the manifest naming both is
//! persisted only when the child is done (`startAppendOnly`, `AOF_WAIT_REWRITE`). Here:
//!
//! 1. A new generation is prepared in memory: an empty incr file with the next free sequence,
//!    a writer appending to it, and a manifest `[incr]` that is **not** persisted. The
//!    directory's old manifest, if any, stays on disk untouched.
//! 2. A point-in-time snapshot starts. Inside its start barrier (every shard locked, so no write
//!    is half-applied) `attach(Some(writer))` hands the writer to the engine's propagation sink:
//!    every write before the barrier is in the snapshot (its state at the start) and not in the
//!    incr file; every write after it is in the incr file and not in the snapshot.
//! 3. The snapshot is committed durably as the temp base, renamed to the next base name, and
//!    the manifest `[base, incr]` replaces the old one atomically (temp, fsync, rename,
//!    directory fsync). Only then are the old generation's files deleted.
//!
//! Crash safety: before step 3's rename the directory holds the old manifest (or none) and
//! loads as it did before the command; after it, the new generation is complete. A failed
//! snapshot calls `attach(None)` (the sink stops appending), closes the writer and removes the
//! new incr file and the temp base: nothing on disk changes.
//!
//! The base records the cut it covers ([`BaseCut`]: the incr file's sequence, offset 0, the
//! second of the start barrier), as a rewrite's base does.

use std::fs;
use std::path::Path;
use std::sync::Arc;

use forkless_keyspace::Keyspace;
use forkless_rdb::WriteOptions;
use forkless_snapshot::{Barrier, Mode, SnapshotObserver, SnapshotOptions, SnapshotResult};
use forkless_sync::atomic::AtomicBool;
use forkless_sync::Mutex;

use crate::dir::{io_ctx, starts_with_rdb_magic, AofDir, AofDirOptions};
use crate::error::{AofError, Result};
use crate::history::BaseCut;
use crate::manifest::{base_name, incr_name, manifest_name, sync_dir, AofFile, FileType, Manifest};
use crate::position::LogPosition;
use crate::rewrite::snapshot_here;
use crate::writer::AofWriter;

/// Where the engine's sink learns about the writer: `Some` inside the start barrier, `None`
/// when the start failed after that.
pub type Attach = Arc<dyn Fn(Option<Arc<AofWriter>>) + Send + Sync>;

/// Start an AOF in `dir` for the live keyspace `ks` (whose snapshot observer is `obs`): see the
/// module doc. Returns the directory (its writer is the one passed to `attach`) and the
/// snapshot's figures. `cancel` stops the snapshot walk (the start then fails cleanly).
pub fn start_live(
    dir: &Path,
    opts: AofDirOptions,
    ks: &Keyspace,
    obs: &Arc<SnapshotObserver>,
    attach: Attach,
    cancel: &AtomicBool,
) -> Result<(AofDir, SnapshotResult)> {
    fs::create_dir_all(dir).map_err(io_ctx("creating directory", dir))?;
    let fname = opts.filename.clone();
    // The old generation (a previous `appendonly yes` period, or a directory left by another
    // run): its numbers are continued so that no name is reused, its files deleted at the end.
    let old = if dir.join(manifest_name(&fname)).exists() {
        Some(Manifest::load(dir, &fname)?)
    } else {
        None
    };
    let incr_seq = old.as_ref().map_or(0, |m| {
        m.incr
            .iter()
            .chain(m.history.iter())
            .map(|f| f.seq)
            .max()
            .unwrap_or(0)
            .max(m.last_incr_seq())
    }) + 1;
    let base_seq = old.as_ref().map_or(1, Manifest::next_base_seq);
    let incr = incr_name(&fname, incr_seq);
    let incr_path = dir.join(&incr);
    fs::File::create(&incr_path)
        .and_then(|f| f.sync_all())
        .map_err(io_ctx("creating", &incr_path))?;
    let pending = Manifest {
        base: None,
        history: Vec::new(),
        incr: vec![AofFile {
            name: incr.clone(),
            seq: incr_seq,
            kind: FileType::Incr,
        }],
    };
    let aof = match AofDir::start(dir, pending, opts) {
        Ok(a) => a,
        Err(e) => {
            let _ = fs::remove_file(&incr_path);
            return Err(e);
        }
    };
    let writer = aof.writer();
    let cut_secs: Arc<Mutex<Option<i64>>> = Arc::new(Mutex::new(None));
    let (w, a, secs) = (writer.clone(), attach.clone(), cut_secs.clone());
    let secs2 = cut_secs.clone();
    let wopts = aof.options().writer.clone();
    let sopts = SnapshotOptions {
        mode: Mode::PointInTime,
        rdb: WriteOptions {
            aof_base: true,
            ..WriteOptions::default()
        },
        on_barrier: Some(Arc::new(move |b| {
            if b == Barrier::Start {
                *secs.lock() = Some(wopts.clock_secs());
                a(Some(w.clone()));
            }
        })),
        trailer_aux: Some(Arc::new(move || match *secs2.lock() {
            Some(unix_secs) => BaseCut {
                at: LogPosition::start_of(incr_seq, unix_secs),
                logical: 0,
            }
            .to_aux(),
            None => Vec::new(),
        })),
        ..Default::default()
    };
    let temp = aof.rewrite_temp_path();
    let fail = |e: AofError| {
        if cut_secs.lock().is_some() {
            attach(None);
        }
        let _ = writer.close();
        let _ = fs::remove_file(&temp);
        let _ = fs::remove_file(&incr_path);
        e
    };
    let res = match snapshot_here(ks, obs, &temp, sopts, cancel) {
        Ok(r) => r,
        Err(e) => return Err(fail(AofError::RewriteSnapshot(e))),
    };
    if cut_secs.lock().is_none() {
        return Err(fail(AofError::Rewrite(
            "the snapshot passed no start barrier".into(),
        )));
    }
    install(&aof, &temp, base_seq, old.as_ref()).map_err(fail)?;
    Ok((aof, res))
}

/// Step 3 of the module doc: the base in place, the new manifest persisted, the old generation
/// deleted.
fn install(aof: &AofDir, temp: &Path, base_seq: i64, old: Option<&Manifest>) -> Result<()> {
    let dir = aof.path();
    let fname = &aof.options().filename;
    let rdb = starts_with_rdb_magic(temp).map_err(io_ctx("reading", temp))?;
    let name = base_name(fname, base_seq, rdb);
    let target = dir.join(&name);
    fs::rename(temp, &target).map_err(io_ctx("renaming", temp))?;
    let next = aof.with_manifest(|m| {
        m.base = Some(AofFile {
            name: name.clone(),
            seq: base_seq,
            kind: FileType::Base,
        });
        m.clone()
    });
    if let Err(e) = next.persist(dir, fname) {
        let _ = fs::remove_file(&target);
        return Err(e);
    }
    // From here on the new generation is the directory's: leftovers of the old one are only
    // disk space, so a failed deletion does not fail the start.
    if let Some(old) = old {
        let live: Vec<&str> = next.load_order().iter().map(|f| f.name.as_str()).collect();
        for f in old
            .base
            .iter()
            .chain(old.incr.iter())
            .chain(old.history.iter())
        {
            if live.contains(&f.name.as_str()) {
                continue;
            }
            let _ = fs::remove_file(dir.join(&f.name));
        }
        let _ = sync_dir(dir);
    }
    Ok(())
}
