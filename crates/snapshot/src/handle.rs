//! Snapshots to files on a background thread: start, watch progress, cancel, wait.

use std::path::{Path, PathBuf};

use forkless_keyspace::Keyspace;
use forkless_sync::atomic::{AtomicBool, Ordering};
use forkless_sync::{thread, Arc};

use crate::observer::SnapshotObserver;
use crate::output::{DurableFile, RealFs};
use crate::worker::{
    begin_snapshot, run_until_output, Progress, SnapshotError, SnapshotOptions, SnapshotResult,
};

/// A snapshot running on its worker thread.
#[derive(Debug)]
pub struct SnapshotHandle {
    thread: Option<thread::JoinHandle<Result<SnapshotResult, SnapshotError>>>,
    progress: Arc<Progress>,
    cancel: Arc<AtomicBool>,
    path: PathBuf,
}

impl SnapshotHandle {
    /// Live counters.
    pub fn progress(&self) -> &Progress {
        &self.progress
    }
    /// The target file.
    pub fn path(&self) -> &Path {
        &self.path
    }
    /// Ask the worker to stop; [`SnapshotHandle::wait`] then returns `Err(Cancelled)`, the temp
    /// file is removed and the previous target file is left as it was.
    pub fn cancel(&self) {
        self.cancel.store(true, Ordering::Relaxed);
    }
    /// True once the snapshot finished: the file is committed (renamed into place, directory
    /// fsynced) or, on failure, its temp file removed; and a new snapshot may begin.
    pub fn is_finished(&self) -> bool {
        self.progress.done.load(Ordering::Acquire)
    }
    /// Wait for the end. A failed commit is `Err(Io(e))` with a
    /// [`CommitError`](crate::output::CommitError) inside `e` saying whether the target was
    /// already replaced.
    pub fn wait(mut self) -> Result<SnapshotResult, SnapshotError> {
        match self.thread.take().expect("joined once").join() {
            Ok(r) => r,
            Err(_) => Err(SnapshotError::Io(std::io::Error::other(
                "snapshot worker panicked",
            ))),
        }
    }
}

/// Start a snapshot of `ks` into `path` on a new worker thread. The start barrier passes before
/// this returns (a point-in-time snapshot is the keyspace at this call). The file appears at
/// `path` only once complete and durable (temp file in the same directory, fsync, rename,
/// directory fsync). Fails at once with `AlreadyInProgress` while another snapshot runs.
///
/// The snapshot counts as finished ([`SnapshotHandle::is_finished`], and its slot free for the
/// next `start_snapshot`) only after the commit: two snapshots to the same path can never
/// rename out of order.
pub fn start_snapshot(
    ks: Arc<Keyspace>,
    obs: &Arc<SnapshotObserver>,
    path: &Path,
    mut opts: SnapshotOptions,
) -> Result<SnapshotHandle, SnapshotError> {
    let ticket = obs.try_begin()?;
    let file = match &opts.commit_fs {
        Some(fs) => DurableFile::create_with(path, Box::new(fs.clone()))?,
        None => DurableFile::create_with(path, Box::new(RealFs))?,
    };
    if opts.spill_path.is_none() {
        opts.spill_path = Some(path.to_path_buf());
    }
    let progress = Arc::new(Progress::default());
    let cancel = Arc::new(AtomicBool::new(false));
    let (p, c) = (progress.clone(), cancel.clone());
    // If the thread cannot start, the closure drops `started` (which ends the snapshot: the
    // observer deactivates, the dicts thaw, the ticket is released) and `file` (its temp file
    // is removed).
    let started = begin_snapshot(ks, ticket, &opts);
    let thread = thread::Builder::new()
        .name("forkless-snapshot".into())
        .spawn(move || {
            let r = match run_until_output(started, &opts, file, &p, &c) {
                Ok((file, res, ticket)) => {
                    let committed = file.commit();
                    // Only now is the snapshot finished: release the slot, then report it.
                    drop(ticket);
                    committed.map(|_| res).map_err(SnapshotError::Io)
                }
                // The temp file is removed and the ticket released already.
                Err(e) => Err(e),
            };
            p.done.store(true, Ordering::Release);
            r
        })?;
    Ok(SnapshotHandle {
        thread: Some(thread),
        progress,
        cancel,
        path: path.to_path_buf(),
    })
}

/// Take a snapshot into `path` and wait for it.
pub fn snapshot_to_file(
    ks: Arc<Keyspace>,
    obs: &Arc<SnapshotObserver>,
    path: &Path,
    opts: SnapshotOptions,
) -> Result<SnapshotResult, SnapshotError> {
    start_snapshot(ks, obs, path, opts)?.wait()
}
