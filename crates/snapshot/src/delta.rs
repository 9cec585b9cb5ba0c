//! The delta stream of a converging snapshot: the propagated RESP of every write applied to an
//! already-visited bucket, in execution order, with `SELECT` where the database changes.
//!
//! Writers append under their shard locks (the delta lock is a leaf of the lock order), so two
//! writes to the same key reach the stream in the order they were executed; writes to different
//! keys commute. Writers only ever append to memory; the worker thread moves the buffer to a spill
//! file when it passes the configured limit, so writers never wait on disk I/O and memory stays
//! bounded by the limit plus what arrives between two worker checks.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};

/// In-memory part of the delta stream.
#[derive(Debug, Default)]
pub struct DeltaBuf {
    buf: Vec<u8>,
    /// Database of the last command appended (`None`: none yet, so the first one gets a SELECT:
    /// a loader starts the RESP part of an RDB-preamble AOF in database 0 whatever the RDB said).
    last_db: Option<u32>,
    /// Commands appended (SELECT not counted).
    pub commands: u64,
    /// Bytes appended in total (including spilled ones).
    pub bytes: u64,
    /// Set at the barrier: nothing may be appended afterwards.
    pub closed: bool,
}

impl DeltaBuf {
    /// Append the propagated commands of one write to database `db`.
    pub fn append<C: AsRef<[u8]>>(&mut self, db: u32, cmds: &[Vec<C>]) {
        debug_assert!(!self.closed, "delta appended after the barrier");
        if cmds.is_empty() {
            return;
        }
        let before = self.buf.len();
        if self.last_db != Some(db) {
            let mut digits = Vec::with_capacity(10);
            forkless_resp::write_u64(&mut digits, u64::from(db));
            forkless_resp::encode_command(&mut self.buf, &[b"SELECT", &digits]);
            self.last_db = Some(db);
        }
        for c in cmds {
            forkless_resp::encode_command_iter(&mut self.buf, c.iter().map(|a| a.as_ref()));
        }
        self.commands += cmds.len() as u64;
        self.bytes += (self.buf.len() - before) as u64;
    }

    /// Bytes held in memory now.
    pub fn in_memory(&self) -> usize {
        self.buf.len()
    }

    /// Take the in-memory bytes (O(1)), leaving an empty buffer.
    pub fn take(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.buf)
    }
}

/// A temp file holding spilled deltas, removed on drop.
#[derive(Debug)]
pub struct Spill {
    file: File,
    path: std::path::PathBuf,
    /// Bytes spilled.
    pub len: u64,
}

impl Spill {
    /// Create a spill file beside `target`.
    pub fn create(target: &std::path::Path) -> io::Result<Spill> {
        let path = crate::output::temp_path_for(&target.with_extension("deltas"));
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)?;
        Ok(Spill { file, path, len: 0 })
    }

    /// Append bytes.
    pub fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.file.write_all(bytes)?;
        self.len += bytes.len() as u64;
        Ok(())
    }

    /// Copy everything spilled to `out`.
    pub fn copy_to(&mut self, out: &mut impl Write) -> io::Result<u64> {
        self.file.seek(SeekFrom::Start(0))?;
        io::copy(&mut (&mut self.file).take(self.len), out)
    }
}

impl Drop for Spill {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn select_only_when_db_changes() {
        let mut d = DeltaBuf::default();
        d.append(0, &[vec![b"SET".to_vec(), b"a".to_vec(), b"1".to_vec()]]);
        d.append(0, &[vec![b"INCR".to_vec(), b"a".to_vec()]]);
        d.append(3, &[vec![b"DEL".to_vec(), b"b".to_vec()]]);
        let text = String::from_utf8(d.take()).unwrap();
        assert_eq!(
            text,
            "*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n*3\r\n$3\r\nSET\r\n$1\r\na\r\n$1\r\n1\r\n\
             *2\r\n$4\r\nINCR\r\n$1\r\na\r\n*2\r\n$6\r\nSELECT\r\n$1\r\n3\r\n*2\r\n$3\r\nDEL\r\n$1\r\nb\r\n"
        );
        assert_eq!(d.commands, 3);
        assert_eq!(d.in_memory(), 0);
    }
}
