//! Durable files: write to a temp file in the target directory, fsync it, rename it over
//! the target, fsync the directory. A crash at any point leaves the previous file (if any)
//! complete and loadable; a failed or cancelled write removes its temp file.
//!
//! This is the classic protocol (see e.g. Redis's `rdbSave`: temp file `temp-<pid>.rdb`,
//! `fsync`, `rename`; and "Files are hard" (Pillai et al., OSDI'14) for why the directory fsync is
//! needed for the rename to be durable).
//!
//! # What a failed commit leaves behind
//! [`DurableFile::commit`] runs four steps; where it fails decides the state, and the error says
//! which ([`CommitError`], inside the returned `io::Error`: [`CommitError::of`]):
//!
//! | failing step             | target                      | temp file | error                                |
//! |--------------------------|-----------------------------|-----------|--------------------------------------|
//! | flush, fsync of the temp | unchanged                   | removed   | [`CommitError::NotReplaced`]         |
//! | rename                   | unchanged                   | removed   | [`CommitError::NotReplaced`]         |
//! | fsync of the directory   | **replaced** (new contents) | gone      | [`CommitError::ReplacedNotDurable`]  |
//!
//! In the last row the new file is in place and readable, but a power cut may still bring the
//! previous one back: the caller must not report the write as durable, and must not treat the
//! target as unchanged either (retrying the directory fsync, [`fsync_dir`], makes it durable).
//! Removing the temp file is best effort (an error there is ignored: there is nothing more to do).
//!
//! The file system calls of the commit go through [`DurableFs`] so tests can inject faults
//! ([`FaultFs`]), the way `forkless-aof`'s `io.rs` lets them plug in failing storage.
#![forbid(unsafe_code)]

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

// A process-wide counter for temp names (not part of any modeled protocol: std's atomic).
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// fsync a directory, so that a rename or create inside it is durable.
pub fn fsync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

fn parent_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// A temp file in the same directory as `path` (so the final rename is atomic).
pub fn temp_path_for(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    parent_of(path).join(format!(".{name}.tmp-{}-{n}", std::process::id()))
}

/// The file system calls of [`DurableFile::commit`]: the real ones ([`RealFs`]) or a test
/// backend that fails one of them ([`FaultFs`]).
pub trait DurableFs: std::fmt::Debug + Send + Sync {
    /// fsync a written file.
    fn sync_file(&self, file: &File) -> io::Result<()> {
        file.sync_all()
    }
    /// Rename `from` over `to` (same directory).
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        fs::rename(from, to)
    }
    /// fsync a directory.
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        fsync_dir(dir)
    }
}

impl<T: DurableFs + ?Sized> DurableFs for std::sync::Arc<T> {
    fn sync_file(&self, file: &File) -> io::Result<()> {
        (**self).sync_file(file)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        (**self).rename(from, to)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        (**self).sync_dir(dir)
    }
}

/// The real file system.
#[derive(Debug, Clone, Copy, Default)]
pub struct RealFs;

impl DurableFs for RealFs {}

/// A step of [`DurableFile::commit`] ([`FaultFs`] fails one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// fsync of the temp file.
    SyncFile,
    /// The rename over the target.
    Rename,
    /// fsync of the directory after the rename.
    SyncDir,
}

/// Test backend: the real file system, except that `fail` returns an injected error without
/// doing anything (as a disk that refuses the call).
#[derive(Debug, Clone, Copy)]
pub struct FaultFs {
    /// The step that fails.
    pub fail: Step,
}

impl FaultFs {
    fn injected(&self, step: Step) -> io::Result<()> {
        if self.fail == step {
            return Err(io::Error::other(format!("injected fault at {step:?}")));
        }
        Ok(())
    }
}

impl DurableFs for FaultFs {
    fn sync_file(&self, file: &File) -> io::Result<()> {
        self.injected(Step::SyncFile)?;
        file.sync_all()
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.injected(Step::Rename)?;
        fs::rename(from, to)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.injected(Step::SyncDir)?;
        fsync_dir(dir)
    }
}

/// How a failed [`DurableFile::commit`] left the target (module docs). It travels inside the
/// returned `io::Error` (same [`io::ErrorKind`] as the cause); [`CommitError::of`] gets it back.
#[derive(Debug)]
#[non_exhaustive]
pub enum CommitError {
    /// Failed before or at the rename: the target is as it was, the temp file is removed.
    NotReplaced {
        /// The step that failed (`None`: flushing the buffered bytes).
        step: Option<Step>,
        /// The cause.
        source: io::Error,
    },
    /// The rename happened, the directory fsync failed: the target holds the new contents, but
    /// whether the rename survives a crash is unknown.
    ReplacedNotDurable {
        /// The directory fsync's error.
        source: io::Error,
    },
}

impl CommitError {
    /// The commit error inside an `io::Error` returned by [`DurableFile::commit`] (or by
    /// [`write_durably`] / [`write_file_durably`] for their commit step).
    pub fn of(e: &io::Error) -> Option<&CommitError> {
        e.get_ref()
            .and_then(|inner| inner.downcast_ref::<CommitError>())
    }

    /// True when the target already holds the new contents.
    pub fn target_replaced(&self) -> bool {
        matches!(self, CommitError::ReplacedNotDurable { .. })
    }

    fn source_io(&self) -> &io::Error {
        match self {
            CommitError::NotReplaced { source, .. }
            | CommitError::ReplacedNotDurable { source } => source,
        }
    }
}

impl std::fmt::Display for CommitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CommitError::NotReplaced { step, source } => {
                let what = match step {
                    None => "flushing the temp file",
                    Some(Step::SyncFile) => "fsyncing the temp file",
                    Some(Step::Rename) => "renaming the temp file over the target",
                    Some(Step::SyncDir) => "fsyncing the directory",
                };
                write!(f, "{what}: {source} (target unchanged, temp file removed)")
            }
            CommitError::ReplacedNotDurable { source } => write!(
                f,
                "fsyncing the directory after the rename: {source} (the target holds the new \
                 contents, but the rename may not survive a crash)"
            ),
        }
    }
}

impl std::error::Error for CommitError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(self.source_io())
    }
}

impl From<CommitError> for io::Error {
    fn from(e: CommitError) -> io::Error {
        io::Error::new(e.source_io().kind(), e)
    }
}

/// A file being written durably; becomes `path` only on [`DurableFile::commit`].
#[derive(Debug)]
pub struct DurableFile {
    tmp: PathBuf,
    target: PathBuf,
    out: Option<BufWriter<File>>,
    written: u64,
    fs: Box<dyn DurableFs>,
}

impl DurableFile {
    /// Create the temp file for `target`.
    pub fn create(target: &Path) -> io::Result<DurableFile> {
        Self::create_with(target, Box::new(RealFs))
    }

    /// Create the temp file for `target`; the commit's file system calls go through `fs`.
    pub fn create_with(target: &Path, fs: Box<dyn DurableFs>) -> io::Result<DurableFile> {
        let tmp = temp_path_for(target);
        let f = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        Ok(DurableFile {
            tmp,
            target: target.to_path_buf(),
            out: Some(BufWriter::with_capacity(1 << 20, f)),
            written: 0,
            fs,
        })
    }

    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// The temp file's path (for messages).
    pub fn temp_path(&self) -> &Path {
        &self.tmp
    }

    /// Flush, fsync, rename over the target, fsync the directory. Returns the file's size. On
    /// error the `io::Error` carries a [`CommitError`] saying whether the target was replaced
    /// (module docs); the temp file never stays behind.
    pub fn commit(mut self) -> io::Result<u64> {
        let out = self.out.take().expect("not committed twice");
        // From here on Drop no longer removes the temp file: every failure path below does.
        let not_replaced = |tmp: &Path, step: Option<Step>, source: io::Error| {
            let _ = fs::remove_file(tmp);
            io::Error::from(CommitError::NotReplaced { step, source })
        };
        let f = match out.into_inner() {
            Ok(f) => f,
            Err(e) => {
                let source = e.into_error();
                return Err(not_replaced(&self.tmp, None, source));
            }
        };
        if let Err(e) = self.fs.sync_file(&f) {
            drop(f);
            return Err(not_replaced(&self.tmp, Some(Step::SyncFile), e));
        }
        drop(f);
        if let Err(e) = self.fs.rename(&self.tmp, &self.target) {
            return Err(not_replaced(&self.tmp, Some(Step::Rename), e));
        }
        if let Err(source) = self.fs.sync_dir(&parent_of(&self.target)) {
            return Err(CommitError::ReplacedNotDurable { source }.into());
        }
        Ok(self.written)
    }
}

impl Write for DurableFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.out.as_mut().expect("open").write(buf)?;
        self.written += n as u64;
        Ok(n)
    }
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.out.as_mut().expect("open").write_all(buf)?;
        self.written += buf.len() as u64;
        Ok(())
    }
    fn flush(&mut self) -> io::Result<()> {
        self.out.as_mut().expect("open").flush()
    }
}

impl Drop for DurableFile {
    fn drop(&mut self) {
        if self.out.take().is_some() {
            // Not committed: cancelled or failed. The target is untouched.
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

/// Write `bytes` to `target` durably (temp, fsync, rename, fsync dir).
pub fn write_file_durably(target: &Path, bytes: &[u8]) -> io::Result<()> {
    write_durably(target, |f| f.write_all(bytes))
}

/// Write `target` through `fill`, durably and atomically: on any error (from `fill` or the I/O)
/// the temp file is removed and the target is left as it was, except when only the final
/// directory fsync failed: then the target already holds the new contents and the error says so
/// ([`CommitError::ReplacedNotDurable`], module docs).
pub fn write_durably<T, E>(
    target: &Path,
    fill: impl FnOnce(&mut DurableFile) -> Result<T, E>,
) -> Result<T, E>
where
    E: From<io::Error>,
{
    write_durably_with(target, Box::new(RealFs), fill)
}

/// [`write_durably`] with the commit's file system calls going through `fs`.
pub fn write_durably_with<T, E>(
    target: &Path,
    fs: Box<dyn DurableFs>,
    fill: impl FnOnce(&mut DurableFile) -> Result<T, E>,
) -> Result<T, E>
where
    E: From<io::Error>,
{
    let mut f = DurableFile::create_with(target, fs)?;
    let value = fill(&mut f)?;
    f.commit()?;
    Ok(value)
}

/// An error type that records which I/O operation failed, and on what: the crates writing
/// files (`forkless-aof`, `forkless-segments`) each implement it for their error.
pub trait IoContext {
    /// The error for `source`, which happened while `context` (e.g. "reading /x/y").
    fn from_io(context: String, source: io::Error) -> Self;
}

/// For `map_err`: an I/O error while `what`-ing `path` (e.g. `io_ctx("reading", p)`), as the
/// caller's error type.
pub fn io_ctx<E: IoContext>(what: &str, path: &Path) -> impl FnOnce(io::Error) -> E {
    let context = format!("{what} {}", path.display());
    move |e| E::from_io(context, e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_replaces_and_drop_cancels() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("dump.rdb");
        fs::write(&target, b"old").unwrap();
        {
            let mut f = DurableFile::create(&target).unwrap();
            f.write_all(b"new but cancelled").unwrap();
            // dropped without commit
        }
        assert_eq!(fs::read(&target).unwrap(), b"old");
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            1,
            "temp file removed"
        );
        write_file_durably(&target, b"new").unwrap();
        assert_eq!(fs::read(&target).unwrap(), b"new");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
        let r: io::Result<()> = write_durably(&target, |w| {
            w.write_all(b"partial")?;
            Err(io::Error::other("boom"))
        });
        assert!(r.is_err());
        assert_eq!(fs::read(&target).unwrap(), b"new");
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            1,
            "temp file removed"
        );
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    fn commit_failing(step: Step) -> (tempfile::TempDir, PathBuf, io::Error) {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("dump.rdb");
        fs::write(&target, b"old").unwrap();
        let mut f = DurableFile::create_with(&target, Box::new(FaultFs { fail: step })).unwrap();
        f.write_all(b"new").unwrap();
        let e = f.commit().expect_err("injected fault");
        (dir, target, e)
    }

    #[test]
    fn failed_fsync_or_rename_removes_the_temp_file_and_keeps_the_target() {
        for step in [Step::SyncFile, Step::Rename] {
            let (dir, target, e) = commit_failing(step);
            let ce = CommitError::of(&e).expect("a CommitError inside");
            assert!(
                matches!(ce, CommitError::NotReplaced { step: Some(s), .. } if *s == step),
                "{ce:?}"
            );
            assert!(!ce.target_replaced());
            assert_eq!(fs::read(&target).unwrap(), b"old", "{step:?}");
            assert_eq!(
                names(dir.path()),
                ["dump.rdb"],
                "temp file left at {step:?}"
            );
        }
    }

    #[test]
    fn failed_directory_fsync_reports_a_replaced_target() {
        let (dir, target, e) = commit_failing(Step::SyncDir);
        let ce = CommitError::of(&e).expect("a CommitError inside");
        assert!(ce.target_replaced(), "{ce:?}");
        assert!(e.to_string().contains("holds the new contents"), "{e}");
        assert_eq!(fs::read(&target).unwrap(), b"new");
        assert_eq!(names(dir.path()), ["dump.rdb"]);
    }

    #[test]
    fn write_durably_keeps_the_commit_error() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("m");
        let r: io::Result<()> = write_durably_with(
            &target,
            Box::new(FaultFs {
                fail: Step::SyncFile,
            }),
            |w| w.write_all(b"x"),
        );
        let e = r.expect_err("injected");
        assert!(matches!(
            CommitError::of(&e),
            Some(CommitError::NotReplaced { .. })
        ));
        assert!(names(dir.path()).is_empty(), "{:?}", names(dir.path()));
    }
}
