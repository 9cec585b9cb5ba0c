//! The forkless AOF rewrite: a new base from a converging forkless snapshot, with a crash-safe
//! cutover and no fork.
//!
//! Redis rewrites by forking: the child writes the dataset, the parent buffers new writes and
//! switches files when the child is done. Here:
//!
//! 1. A converging snapshot starts (`forkless-snapshot`); writers go on, their commands still
//!    go to the current incr file.
//! 2. Inside the snapshot's end barrier (every shard locked, so no write is half-logged) the
//!    writer is told to switch to a new incr file ([`AofWriter::rotate`]): a queue marker, no
//!    I/O and no fsync under the barrier. Every write before the barrier is in the old files and
//!    in the snapshot (its RDB part or its deltas); every write after it goes to the new incr
//!    file only.
//! 3. The snapshot (RDB + deltas = the keyspace at the barrier, with `aof-base` 1) is written
//!    durably to the rewrite temp file, then [`AofDir::install_rewrite`] makes the manifest
//!    `[new base, new incr]` atomically (temp, fsync, rename, directory fsync) and deletes the
//!    old files (with `history_generations` > 0, after keeping them under `history/`).
//!
//! The base records the cut it covers in trailing aux fields ([`BaseCut`]:
//! `forkless-aof-incr-seq` = the new incr file's sequence, `forkless-aof-offset` = the writer's
//! logical offset at the switch, `forkless-aof-cut-time` = the writer clock's second inside the
//! barrier).
//!
//! Crash safety: until the manifest rename, the old manifest (old base + all incr files,
//! including the new one once the writer created it) is complete and loads to the latest
//! acknowledged state; after it, the new one does. A failed snapshot leaves the old base and
//! adds only the new incr file to the chain.

use std::sync::Arc;

use forkless_keyspace::Keyspace;
use forkless_rdb::WriteOptions;
use forkless_snapshot::output::DurableFile;
use forkless_snapshot::worker::{begin_snapshot, run_started};
use forkless_snapshot::{
    Barrier, Mode, Progress, SnapshotObserver, SnapshotOptions, SnapshotResult,
};
use forkless_sync::atomic::AtomicBool;
use forkless_sync::Mutex;

use crate::dir::{AofDir, InstallStop};
use crate::error::{AofError, Result};
use crate::history::BaseCut;
use crate::writer::Rotation;

/// Rewrite `aof`'s base from a forkless snapshot of `ks` (whose sink is `aof.writer()` and whose
/// snapshot observer is `obs`). Writers keep running; returns the snapshot's figures.
pub fn rewrite(
    aof: &AofDir,
    ks: &Arc<Keyspace>,
    obs: &Arc<SnapshotObserver>,
) -> Result<SnapshotResult> {
    rewrite_until(aof, ks, obs, InstallStop::Done)
}

/// [`rewrite`] that its owner can stop: the snapshot walk stops soon after `cancel` is set,
/// and `proceed` is called once, just before the new base is installed (the manifest switch):
/// `false` abandons the rewrite there (the temp file is removed, nothing else changed). An
/// engine shutting down uses it so that no rewrite installs into a directory it has closed.
pub fn rewrite_cancellable(
    aof: &AofDir,
    ks: &Arc<Keyspace>,
    obs: &Arc<SnapshotObserver>,
    cancel: &AtomicBool,
    proceed: &dyn Fn() -> bool,
) -> Result<SnapshotResult> {
    rewrite_inner(aof, ks, obs, InstallStop::Done, cancel, proceed)
}

/// [`rewrite`], stopping the installation after `stop` (crash tests).
pub(crate) fn rewrite_until(
    aof: &AofDir,
    ks: &Arc<Keyspace>,
    obs: &Arc<SnapshotObserver>,
    stop: InstallStop,
) -> Result<SnapshotResult> {
    rewrite_inner(aof, ks, obs, stop, &AtomicBool::new(false), &|| true)
}

/// The snapshot of a rewrite, on the calling thread (what `snapshot_to_file` does on a worker
/// thread), stopping when `cancel` is set.
fn snapshot_here(
    ks: &Keyspace,
    obs: &Arc<SnapshotObserver>,
    path: &std::path::Path,
    mut opts: SnapshotOptions,
    cancel: &AtomicBool,
) -> std::result::Result<SnapshotResult, forkless_snapshot::SnapshotError> {
    let ticket = obs.try_begin()?;
    let file = DurableFile::create(path)?;
    opts.spill_path = Some(path.to_path_buf());
    let started = begin_snapshot(ks, ticket, &opts);
    let (file, res) = run_started(ks, started, &opts, file, &Progress::default(), cancel)?;
    file.commit()?;
    Ok(res)
}

fn rewrite_inner(
    aof: &AofDir,
    ks: &Arc<Keyspace>,
    obs: &Arc<SnapshotObserver>,
    stop: InstallStop,
    cancel: &AtomicBool,
    proceed: &dyn Fn() -> bool,
) -> Result<SnapshotResult> {
    let writer = aof.writer();
    // The incr switch and the writer clock's second, both taken inside the end barrier.
    type Cut = Option<Result<(Rotation, i64)>>;
    let rotation: Arc<Mutex<Cut>> = Arc::new(Mutex::new(None));
    let (rot, w) = (rotation.clone(), writer.clone());
    let rot2 = rotation.clone();
    let opts = SnapshotOptions {
        mode: Mode::Converging,
        rdb: WriteOptions {
            aof_base: true,
            ..WriteOptions::default()
        },
        on_barrier: Some(Arc::new(move |b| {
            if b == Barrier::End {
                *rot.lock() = Some(w.rotate().map(|r| (r, w.position().unix_secs)));
            }
        })),
        // Written after the end barrier, before EOF: the AOF position the base covers.
        trailer_aux: Some(Arc::new(move || match &*rot2.lock() {
            Some(Ok((r, secs))) => BaseCut {
                incr_seq: r.seq,
                offset: r.offset,
                unix_secs: *secs,
            }
            .to_aux(),
            _ => Vec::new(),
        })),
        ..Default::default()
    };
    let temp = aof.rewrite_temp_path();
    let res =
        snapshot_here(ks, obs, &temp, opts, cancel).map_err(|e| AofError::Rewrite(e.to_string()));
    let rotation = rotation.lock().take();
    let res = match res {
        Ok(r) => r,
        Err(e) => {
            let _ = std::fs::remove_file(&temp);
            return Err(e);
        }
    };
    let (rotation, _) =
        rotation.ok_or_else(|| AofError::Rewrite("no incr switch at the barrier".into()))??;
    if !proceed() {
        let _ = std::fs::remove_file(&temp);
        return Err(AofError::Rewrite("cancelled before installing".into()));
    }
    aof.install_rewrite_until(&temp, &rotation, stop)?;
    Ok(res)
}
