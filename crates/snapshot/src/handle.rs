//! Snapshots to files on a background thread: start, watch progress, cancel, wait.

use std::path::{Path, PathBuf};

use forkless_keyspace::Keyspace;
use forkless_sync::atomic::{AtomicBool, Ordering};
use forkless_sync::{thread, Arc};

use crate::observer::SnapshotObserver;
use crate::output::DurableFile;
use crate::worker::{
    begin_snapshot, run_started, Progress, SnapshotError, SnapshotOptions, SnapshotResult,
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
    /// True once the worker finished.
    pub fn is_finished(&self) -> bool {
        self.progress.done.load(Ordering::Acquire)
    }
    /// Wait for the end.
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
pub fn start_snapshot(
    ks: Arc<Keyspace>,
    obs: &Arc<SnapshotObserver>,
    path: &Path,
    mut opts: SnapshotOptions,
) -> Result<SnapshotHandle, SnapshotError> {
    let ticket = obs.try_begin()?;
    let file = DurableFile::create(path)?;
    if opts.spill_path.is_none() {
        opts.spill_path = Some(path.to_path_buf());
    }
    let progress = Arc::new(Progress::default());
    let cancel = Arc::new(AtomicBool::new(false));
    let (p, c) = (progress.clone(), cancel.clone());
    let started = begin_snapshot(&ks, ticket, &opts);
    let thread = thread::spawn(move || {
        let r = run_started(&ks, started, &opts, file, &p, &c);
        let r = r.and_then(|(file, res)| {
            file.commit()?;
            Ok(res)
        });
        p.done.store(true, Ordering::Release);
        r
    });
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
