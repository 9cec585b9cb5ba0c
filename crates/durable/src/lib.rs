//! Durable files: write to a temp file in the target directory, fsync it, rename it over
//! the target, fsync the directory. A crash at any point leaves the previous file (if any)
//! complete and loadable; a failed or cancelled write removes its temp file.
//!
//! This is the classic protocol (see e.g. Redis's `rdbSave`: temp file `temp-<pid>.rdb`,
//! `fsync`, `rename`; and "Files are hard" (Pillai et al., OSDI'14) for why the directory fsync is
//! needed for the rename to be durable).
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

/// A file being written durably; becomes `path` only on [`DurableFile::commit`].
#[derive(Debug)]
pub struct DurableFile {
    tmp: PathBuf,
    target: PathBuf,
    out: Option<BufWriter<File>>,
    written: u64,
}

impl DurableFile {
    /// Create the temp file for `target`.
    pub fn create(target: &Path) -> io::Result<DurableFile> {
        let tmp = temp_path_for(target);
        let f = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        Ok(DurableFile {
            tmp,
            target: target.to_path_buf(),
            out: Some(BufWriter::with_capacity(1 << 20, f)),
            written: 0,
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

    /// Flush, fsync, rename over the target, fsync the directory. Returns the file's size.
    pub fn commit(mut self) -> io::Result<u64> {
        let out = self.out.take().expect("not committed twice");
        let f = out.into_inner().map_err(|e| e.into_error())?;
        f.sync_all()?;
        drop(f);
        fs::rename(&self.tmp, &self.target)?;
        fsync_dir(&parent_of(&self.target))?;
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
/// the temp file is removed and the target is left as it was.
pub fn write_durably<T, E>(
    target: &Path,
    fill: impl FnOnce(&mut DurableFile) -> Result<T, E>,
) -> Result<T, E>
where
    E: From<io::Error>,
{
    let mut f = DurableFile::create(target)?;
    let value = fill(&mut f)?;
    f.commit()?;
    Ok(value)
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
}
