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
//! adds only the new incr file to the chain; no temp file stays behind (a failed commit of the
//! base removes its hidden temp file: `forkless-durable`; the rewrite removes the temp base).

use std::sync::Arc;

use forkless_keyspace::Keyspace;
use forkless_rdb::WriteOptions;
use forkless_snapshot::output::DurableFile;
use forkless_snapshot::worker::{begin_snapshot, run_until_output};
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
    rewrite_inner(aof, ks, obs, InstallStop::Done, cancel, proceed, None)
}

/// [`rewrite`], stopping the installation after `stop` (crash tests).
pub(crate) fn rewrite_until(
    aof: &AofDir,
    ks: &Arc<Keyspace>,
    obs: &Arc<SnapshotObserver>,
    stop: InstallStop,
) -> Result<SnapshotResult> {
    rewrite_inner(aof, ks, obs, stop, &AtomicBool::new(false), &|| true, None)
}

/// [`rewrite_until`] with the base's commit going through `commit_fs` (fault tests).
#[cfg(test)]
pub(crate) fn rewrite_with(
    aof: &AofDir,
    ks: &Arc<Keyspace>,
    obs: &Arc<SnapshotObserver>,
    stop: InstallStop,
    commit_fs: Option<Arc<dyn forkless_durable::DurableFs>>,
) -> Result<SnapshotResult> {
    rewrite_inner(
        aof,
        ks,
        obs,
        stop,
        &AtomicBool::new(false),
        &|| true,
        commit_fs,
    )
}

/// The snapshot of a rewrite, on the calling thread (what `snapshot_to_file` does on a worker
/// thread), stopping when `cancel` is set. As there, the snapshot's slot is released only after
/// the base's commit.
pub(crate) fn snapshot_here(
    ks: &Keyspace,
    obs: &Arc<SnapshotObserver>,
    path: &std::path::Path,
    mut opts: SnapshotOptions,
    cancel: &AtomicBool,
) -> std::result::Result<SnapshotResult, forkless_snapshot::SnapshotError> {
    let ticket = obs.try_begin()?;
    let file = match &opts.commit_fs {
        Some(fs) => DurableFile::create_with(path, Box::new(fs.clone()))?,
        None => DurableFile::create_with(path, Box::new(forkless_durable::RealFs))?,
    };
    opts.spill_path = Some(path.to_path_buf());
    let started = begin_snapshot(ks, ticket, &opts);
    let (file, res, ticket) = run_until_output(started, &opts, file, &Progress::default(), cancel)?;
    file.commit()?;
    drop(ticket);
    Ok(res)
}

fn rewrite_inner(
    aof: &AofDir,
    ks: &Arc<Keyspace>,
    obs: &Arc<SnapshotObserver>,
    stop: InstallStop,
    cancel: &AtomicBool,
    proceed: &dyn Fn() -> bool,
    commit_fs: Option<Arc<dyn forkless_durable::DurableFs>>,
) -> Result<SnapshotResult> {
    let writer = aof.writer();
    // The incr switch (with the writer clock's second), taken inside the end barrier.
    type Cut = Option<Result<Rotation>>;
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
                *rot.lock() = Some(w.rotate());
            }
        })),
        // Written after the end barrier, before EOF: the AOF position the base covers.
        trailer_aux: Some(Arc::new(move || match &*rot2.lock() {
            Some(Ok(r)) => BaseCut::at_rotation(r).to_aux(),
            _ => Vec::new(),
        })),
        commit_fs,
        ..Default::default()
    };
    let temp = aof.rewrite_temp_path();
    let res = snapshot_here(ks, obs, &temp, opts, cancel).map_err(AofError::RewriteSnapshot);
    let rotation = rotation.lock().take();
    let res = match res {
        Ok(r) => r,
        Err(e) => {
            let _ = std::fs::remove_file(&temp);
            return Err(e);
        }
    };
    let rotation =
        rotation.ok_or_else(|| AofError::Rewrite("no incr switch at the barrier".into()))??;
    if !proceed() {
        let _ = std::fs::remove_file(&temp);
        return Err(AofError::Rewrite("cancelled before installing".into()));
    }
    aof.install_rewrite_until(&temp, &rotation, stop)?;
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{load_dir, AofDirOptions, KeyspaceTarget, LoadOptions};
    use forkless_durable::{FaultFs, Step};
    use forkless_keyspace::{Config, Session};
    use forkless_testkit::TempDir;

    fn names(dir: &std::path::Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    /// Issue 13 item 5: a rewrite whose base commit fails (fsync of the temp file, or the
    /// rename) leaves no temp file behind (it used to leave the hidden one of the durable
    /// file), the directory still loads to the live keyspace, and the next rewrite works.
    #[test]
    fn a_failed_base_commit_leaves_no_temp_file() {
        for step in [Step::SyncFile, Step::Rename] {
            let tmp = TempDir::new("aof-rewrite-fault");
            let dir = tmp.path().join("appendonlydir");
            let mut ks = Keyspace::new(Config::seeded(1));
            let aof = AofDir::create(&dir, &[], AofDirOptions::default()).unwrap();
            ks.set_sink(aof.writer());
            let obs = forkless_snapshot::install(&mut ks);
            let ks = Arc::new(ks);
            let mut s = Session::default();
            for i in 0..200 {
                let k = format!("k{i}");
                ks.execute(&mut s, &[b"SET", k.as_bytes(), b"v"]);
            }
            aof.writer().ack_current_thread().unwrap();
            let fault: Arc<dyn forkless_durable::DurableFs> = Arc::new(FaultFs { fail: step });
            let r = rewrite_with(&aof, &ks, &obs, InstallStop::Done, Some(fault));
            assert!(
                r.is_err(),
                "{step:?}: the injected fault must fail the rewrite"
            );
            // The writer thread switches incr files at the barrier and replaces the manifest on
            // its own (a transient hidden temp file): a leak is what is still there after it.
            let leftovers = || -> Vec<String> {
                names(&dir)
                    .into_iter()
                    .filter(|n| n.starts_with('.') || n.contains("temp"))
                    .collect()
            };
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
            let mut left = leftovers();
            while !left.is_empty() && std::time::Instant::now() < deadline {
                std::thread::sleep(std::time::Duration::from_millis(20));
                left = leftovers();
            }
            assert!(left.is_empty(), "{step:?}: left behind: {left:?}");
            ks.execute(&mut s, &[b"SET", b"after", b"1"]);
            aof.writer().ack_current_thread().unwrap();
            rewrite(&aof, &ks, &obs).unwrap();
            let live = ks.dump();
            aof.close().unwrap();
            let back = Keyspace::new(Config::seeded(5));
            load_dir(
                &dir,
                &LoadOptions::default(),
                &mut KeyspaceTarget::new(&back),
            )
            .unwrap();
            assert!(
                back.dump() == live,
                "{step:?}: the directory loads another keyspace"
            );
        }
    }
}
