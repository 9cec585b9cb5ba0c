//! The writer's view of storage: a small I/O trait so tests can plug in crash and fault backends.
//!
//! After redb's `StorageBackend` and its `tests/crash_consistency.rs`: the writer only ever
//! appends, syncs and asks for the length, so that is the whole trait ([`AofIo`]). A
//! [`SyncHandle`] fsyncs the same file from the background fsync thread (`everysec`, like Redis's
//! `bio` fsync job), and an [`AofStorage`] opens new incr files when the writer rotates.
//!
//! Backends: [`FileIo`]/[`DirStorage`] on the real file system; [`MemFile`]/[`MemStorage`] in
//! memory, tracking written versus durable bytes, with injectable write/fsync errors, slow
//! fsyncs, stalls, and [`MemFile::crash`], which rebuilds the file as a power cut could leave it:
//! every durable byte plus an arbitrary prefix of the rest.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::PathBuf;
use std::time::Duration;

use forkless_sync::{Arc, Mutex};

use crate::manifest::{AofFile, FileType, Manifest};
use crate::position::FileSeq;

/// An append-only file as the writer uses it.
pub trait AofIo: Send {
    /// Append all of `buf`. On error a prefix of `buf` may have been appended: [`AofIo::len`]
    /// tells how much, and the writer resumes from there.
    fn write(&mut self, buf: &[u8]) -> io::Result<()>;
    /// Make every appended byte durable (fdatasync).
    fn sync(&mut self) -> io::Result<()>;
    /// The file's length.
    fn len(&self) -> io::Result<u64>;
    /// Whether the file is empty.
    fn is_empty(&self) -> io::Result<bool> {
        Ok(self.len()? == 0)
    }
    /// A handle that syncs this same file from another thread.
    fn sync_handle(&self) -> io::Result<Box<dyn SyncHandle>>;
    /// CRC-64/REDIS of every byte of the file, when this handle has seen all of them (it was
    /// opened on an empty file); `None` otherwise.
    fn crc64(&self) -> Option<u64> {
        None
    }
}

/// Syncs one file from the background fsync thread.
pub trait SyncHandle: Send {
    /// fdatasync the file.
    fn sync(&mut self) -> io::Result<()>;
}

/// Opens the incr files the writer rotates to.
pub trait AofStorage: Send {
    /// Create (truncating) the incr file `name` with sequence `seq`, and record it (a directory
    /// adds it to the manifest, durably, before returning).
    fn open_incr(&mut self, name: &str, seq: FileSeq) -> io::Result<Box<dyn AofIo>>;
    /// Called by the writer just before [`AofStorage::open_incr`], once the file `seq` it is
    /// leaving is fsynced and will never be written again: its final length and CRC (when
    /// known). Default: nothing.
    fn closing(&mut self, _seq: FileSeq, _len: u64, _crc: Option<u64>) {}
}

/// A real file opened for appending.
#[derive(Debug)]
pub struct FileIo {
    file: File,
    len: u64,
    /// Running CRC of the whole file, kept when it was opened empty.
    crc: Option<forkless_rdb::crc::Crc64>,
}

impl FileIo {
    /// Open `path` for appending (creating it), keeping what it holds.
    pub fn open_append(path: &std::path::Path) -> io::Result<FileIo> {
        let file = OpenOptions::new().append(true).create(true).open(path)?;
        let len = file.metadata()?.len();
        let crc = (len == 0).then(forkless_rdb::crc::Crc64::new);
        Ok(FileIo { file, len, crc })
    }
}

impl AofIo for FileIo {
    fn write(&mut self, mut buf: &[u8]) -> io::Result<()> {
        while !buf.is_empty() {
            match self.file.write(buf) {
                Ok(0) => return Err(io::Error::new(io::ErrorKind::WriteZero, "write returned 0")),
                Ok(n) => {
                    self.len += n as u64;
                    if let Some(c) = self.crc.as_mut() {
                        c.update(&buf[..n]);
                    }
                    buf = &buf[n..];
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
    fn sync(&mut self) -> io::Result<()> {
        self.file.sync_data()
    }
    fn len(&self) -> io::Result<u64> {
        Ok(self.len)
    }
    fn sync_handle(&self) -> io::Result<Box<dyn SyncHandle>> {
        Ok(Box::new(FileSync(self.file.try_clone()?)))
    }
    fn crc64(&self) -> Option<u64> {
        self.crc.as_ref().map(|c| c.value())
    }
}

struct FileSync(File);

impl SyncHandle for FileSync {
    fn sync(&mut self) -> io::Result<()> {
        self.0.sync_data()
    }
}

/// An AOF directory as storage: new incr files are created there and added to the shared
/// manifest, which is persisted atomically.
pub struct DirStorage {
    dir: PathBuf,
    filename: String,
    manifest: Arc<Mutex<Manifest>>,
}

impl DirStorage {
    /// Storage in `dir` for `appendfilename` = `filename`, sharing `manifest`.
    pub fn new(dir: PathBuf, filename: String, manifest: Arc<Mutex<Manifest>>) -> DirStorage {
        DirStorage {
            dir,
            filename,
            manifest,
        }
    }
}

impl AofStorage for DirStorage {
    fn open_incr(&mut self, name: &str, seq: FileSeq) -> io::Result<Box<dyn AofIo>> {
        let path = self.dir.join(name);
        let file = OpenOptions::new()
            .write(true)
            .truncate(true)
            .create(true)
            .open(&path)?;
        drop(file);
        let io = FileIo::open_append(&path)?;
        let mut m = self.manifest.lock();
        let mut next = m.clone();
        next.incr.push(AofFile {
            name: name.to_string(),
            seq,
            kind: FileType::Incr,
        });
        next.persist(&self.dir, &self.filename)
            .map_err(|e| io::Error::other(e.to_string()))?;
        *m = next;
        Ok(Box::new(io))
    }
}

/// Fault switches and contents of a [`MemFile`].
#[derive(Debug, Default)]
struct MemState {
    data: Vec<u8>,
    durable: usize,
    syncs: u64,
    fail_writes: bool,
    fail_syncs: bool,
    stalled: bool,
    sync_delay: Duration,
}

/// An in-memory file for tests: tracks written versus durable bytes and injects faults.
/// Clones share the same file.
#[derive(Debug, Clone, Default)]
pub struct MemFile(Arc<Mutex<MemState>>);

impl MemFile {
    /// An empty file.
    pub fn new() -> MemFile {
        MemFile::default()
    }
    /// Everything written.
    pub fn data(&self) -> Vec<u8> {
        self.0.lock().data.clone()
    }
    /// Bytes made durable by a completed sync.
    pub fn durable_len(&self) -> usize {
        self.0.lock().durable
    }
    /// Completed syncs.
    pub fn syncs(&self) -> u64 {
        self.0.lock().syncs
    }
    /// Make writes fail with an ENOSPC-like error (after writing half of the buffer).
    pub fn set_fail_writes(&self, on: bool) {
        self.0.lock().fail_writes = on;
    }
    /// Make syncs fail.
    pub fn set_fail_syncs(&self, on: bool) {
        self.0.lock().fail_syncs = on;
    }
    /// Block writes until un-stalled (a hung disk).
    pub fn set_stalled(&self, on: bool) {
        self.0.lock().stalled = on;
    }
    /// Make each sync take this long.
    pub fn set_sync_delay(&self, d: Duration) {
        self.0.lock().sync_delay = d;
    }
    /// The file as a power cut at this instant could leave it: every durable byte plus a prefix of
    /// the rest, of length `pick(undurable_len)` (clamped).
    pub fn crash(&self, pick: impl FnOnce(usize) -> usize) -> Vec<u8> {
        let s = self.0.lock();
        let extra = pick(s.data.len() - s.durable).min(s.data.len() - s.durable);
        s.data[..s.durable + extra].to_vec()
    }
}

impl AofIo for MemFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<()> {
        loop {
            let mut s = self.0.lock();
            if s.stalled {
                drop(s);
                std::thread::sleep(Duration::from_millis(1));
                continue;
            }
            if s.fail_writes {
                s.data.extend_from_slice(&buf[..buf.len() / 2]);
                return Err(io::Error::new(
                    io::ErrorKind::StorageFull,
                    "No space left on device (injected)",
                ));
            }
            s.data.extend_from_slice(buf);
            return Ok(());
        }
    }
    fn sync(&mut self) -> io::Result<()> {
        self.sync_handle()?.sync()
    }
    fn len(&self) -> io::Result<u64> {
        Ok(self.0.lock().data.len() as u64)
    }
    fn sync_handle(&self) -> io::Result<Box<dyn SyncHandle>> {
        Ok(Box::new(self.clone()))
    }
}

impl SyncHandle for MemFile {
    fn sync(&mut self) -> io::Result<()> {
        let (target, delay) = {
            let s = self.0.lock();
            if s.fail_syncs {
                return Err(io::Error::other("fsync failed (injected)"));
            }
            (s.data.len(), s.sync_delay)
        };
        if !delay.is_zero() {
            std::thread::sleep(delay);
        }
        let mut s = self.0.lock();
        s.durable = s.durable.max(target);
        s.syncs += 1;
        Ok(())
    }
}

/// In-memory storage: named [`MemFile`]s, with an injectable failure to create files.
#[derive(Debug, Clone, Default)]
pub struct MemStorage(Arc<Mutex<(HashMap<String, MemFile>, bool)>>);

impl MemStorage {
    /// No files.
    pub fn new() -> MemStorage {
        MemStorage::default()
    }
    /// The file `name`, if it was opened.
    pub fn file(&self, name: &str) -> Option<MemFile> {
        self.0.lock().0.get(name).cloned()
    }
    /// Make creating files fail (a full or read-only directory).
    pub fn set_fail_open(&self, on: bool) {
        self.0.lock().1 = on;
    }
}

impl AofStorage for MemStorage {
    fn open_incr(&mut self, name: &str, _seq: FileSeq) -> io::Result<Box<dyn AofIo>> {
        let mut s = self.0.lock();
        if s.1 {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                "cannot create file (injected)",
            ));
        }
        let f = MemFile::new();
        s.0.insert(name.to_string(), f.clone());
        Ok(Box::new(f))
    }
}
