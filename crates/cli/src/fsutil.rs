//! Replacing a file durably: a crash leaves either the old file or the complete new one.
//!
//! The classic sequence (the one Redis uses for `SAVE`: `rdbSave` writes `temp-<pid>.rdb`,
//! fsyncs, renames; 7.0 also fsyncs the directory): write a temporary file in the target's
//! directory (a rename is only atomic within one file system), `fsync` it, `rename` it over the
//! target, then `fsync` the directory so the rename itself is durable.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

/// Write `path` through `fill`, durably and atomically (see the module documentation). On any
/// error the temporary file is removed and the target is left untouched.
pub fn write_durably<T, E>(
    path: &Path,
    fill: impl FnOnce(&mut BufWriter<File>) -> Result<T, E>,
) -> Result<T, E>
where
    E: From<io::Error>,
{
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path.file_name().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "the output path has no file name",
        )
    })?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let file = match OpenOptions::new().write(true).create_new(true).open(&tmp) {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            // Left by a crashed process that had our pid: it is garbage.
            fs::remove_file(&tmp)?;
            OpenOptions::new().write(true).create_new(true).open(&tmp)?
        }
        r => r?,
    };
    let result = (|| {
        let mut w = BufWriter::with_capacity(1 << 16, file);
        let value = fill(&mut w)?;
        w.flush()?;
        let file = w.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        drop(file);
        fs::rename(&tmp, path)?;
        Ok(value)
    })();
    match result {
        Ok(v) => {
            File::open(&dir)?.sync_all()?;
            Ok(v)
        }
        Err(e) => {
            // Best effort: the error being reported matters more than a leftover temp file.
            let _ = fs::remove_file(&tmp);
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_atomically_and_cleans_up_on_error() {
        let dir = std::env::temp_dir().join(format!("forkless-fsutil-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let target = dir.join("out.bin");
        fs::write(&target, b"old").unwrap();
        let r: io::Result<()> = write_durably(&target, |w| {
            w.write_all(b"partial")?;
            Err(io::Error::other("boom"))
        });
        assert!(r.is_err());
        assert_eq!(fs::read(&target).unwrap(), b"old");
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 1, "temp file removed");
        let n: io::Result<usize> = write_durably(&target, |w| w.write_all(b"new").map(|_| 3));
        assert_eq!(n.unwrap(), 3);
        assert_eq!(fs::read(&target).unwrap(), b"new");
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 1);
        fs::remove_dir_all(&dir).unwrap();
    }
}
