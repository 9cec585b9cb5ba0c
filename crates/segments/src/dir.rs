//! A live segments directory: open (recover, then append to a new segment), the writer that
//! rolls segments, forkless snapshots that record their cut, and retention.
//!
//! Life cycle of the files (every step crash-safe; see DESIGN.md section 7):
//! * A segment is created by the writer thread when it rolls (size or age threshold, or at
//!   open): the empty file is created and fsynced, then the manifest lists it (atomic
//!   replace), and only then is anything written to it. The segment before it was fsynced
//!   first and is never written again.
//! * A snapshot is written durably as `snapshot.<n>.rdb` (temp, fsync, rename, directory
//!   fsync); then the manifest lists it with its length, CRC and cut; then retention drops
//!   snapshots and segments from the manifest (atomic replace) and only then deletes their
//!   files. A crash leaves either the old manifest (the new file is an orphan) or the new one
//!   (deleted files may remain as orphans); orphans are removed at the next open.
//!
//! Locks: the manifest mutex is a leaf (never held while taking another lock); it is taken by
//! the writer thread when it rolls and by the snapshotting thread when it installs a snapshot.
//! Command threads never take it.

use std::fs::{self, OpenOptions};
use std::path::{Path, PathBuf};
use std::time::Duration;

use forkless_aof::{
    AofIo, AofStorage, AofWriter, FileIo, FileNamer, FileSeq, LogPosition, WriterOptions,
};
use forkless_keyspace::{Config, Keyspace};
use forkless_rdb::WriteOptions;
use forkless_snapshot::{
    snapshot_to_file, Barrier, Mode, SnapshotObserver, SnapshotOptions, SnapshotResult,
};
use forkless_sync::{Arc, Mutex};

use crate::error::{Result, SegError};
use crate::manifest::{segment_name, snapshot_name, SegManifest, SnapshotEntry, MANIFEST_NAME};
use crate::recover::{cut_aux, file_crc, recover, RecoverOptions, RecoveryReport};

/// Options of a segments directory.
#[derive(Debug, Clone)]
pub struct SegmentOptions {
    /// Roll to a new segment once the current one holds this many bytes (default 64 MiB).
    pub segment_bytes: u64,
    /// Roll before a write when the current segment holds data and is this old (default none).
    pub segment_age: Option<Duration>,
    /// Snapshots kept (at least 1; default 2).
    pub keep_snapshots: usize,
    /// Segments older than the oldest kept snapshot's cut are kept while all segments together
    /// stay within this many bytes (default 1 GiB). Segments a kept snapshot needs are never
    /// deleted.
    pub keep_segment_bytes: u64,
    /// The writer's options (fsync policy, queue...). `timestamps` is on by default here:
    /// point-in-time recovery needs the `#TS:` annotations. Roll and naming fields are set by
    /// the directory.
    pub writer: WriterOptions,
}

impl Default for SegmentOptions {
    fn default() -> Self {
        SegmentOptions {
            segment_bytes: 64 << 20,
            segment_age: None,
            keep_snapshots: 2,
            keep_segment_bytes: 1 << 30,
            writer: WriterOptions {
                timestamps: true,
                ..WriterOptions::default()
            },
        }
    }
}

/// What [`SegmentDir::snapshot`] produced.
#[derive(Debug, Clone)]
pub struct SnapshotInfo {
    /// The manifest entry (file, length, CRC, cut).
    pub entry: SnapshotEntry,
    /// The snapshot's figures.
    pub result: SnapshotResult,
    /// Files deleted by retention.
    pub deleted: Vec<String>,
}

/// The lock file: held (an exclusive advisory lock, `flock`) for as long as a [`SegmentDir`]
/// is open, so a second process (or a second open in this one) cannot append to the same log.
pub const LOCK_NAME: &str = "segments.lock";

/// A segments directory being appended to.
pub struct SegmentDir {
    dir: PathBuf,
    /// Holds the directory's lock until dropped.
    _lock: fs::File,
    opts: SegmentOptions,
    manifest: Arc<Mutex<SegManifest>>,
    writer: Arc<AofWriter>,
    next_snapshot: Mutex<FileSeq>,
}

impl std::fmt::Debug for SegmentDir {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SegmentDir")
            .field("dir", &self.dir)
            .field("manifest", &*self.manifest.lock())
            .finish()
    }
}

/// [`forkless_durable::io_ctx`] as a [`SegError`] (`?` would not know which error to build:
/// `SegError` also converts from `AofError`).
fn io_ctx(what: &str, p: &Path) -> impl FnOnce(std::io::Error) -> SegError {
    forkless_durable::io_ctx(what, p)
}

/// Creates the segments the writer rolls to and lists them in the manifest.
struct SegmentStorage {
    dir: PathBuf,
    manifest: Arc<Mutex<SegManifest>>,
    /// What the writer said of the segment it is closing: (seq, length, CRC).
    closing: Option<(FileSeq, u64, Option<u64>)>,
}

impl AofStorage for SegmentStorage {
    fn closing(&mut self, seq: FileSeq, len: u64, crc: Option<u64>) {
        self.closing = Some((seq, len, crc));
    }

    fn open_incr(&mut self, name: &str, seq: FileSeq) -> std::io::Result<Box<dyn AofIo>> {
        let path = self.dir.join(name);
        create_empty(&path)?;
        let mut m = self.manifest.lock();
        let mut next = m.clone();
        // The previous segment is closed (fsynced by the writer before it rolls): record its
        // final length.
        if let Some(&prev) = next.segments.last() {
            let len = std::fs::metadata(self.dir.join(segment_name(prev)))?.len();
            next.closed_len.insert(prev, len);
            match self.closing {
                Some((s, l, Some(crc))) if s == prev && l == len => {
                    next.closed_crc.insert(prev, crc);
                }
                _ => {}
            }
        }
        next.segments.push(seq);
        next.persist(&self.dir)
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        *m = next;
        drop(m);
        Ok(Box::new(FileIo::open_append(&path)?))
    }
}

fn create_empty(path: &Path) -> std::io::Result<()> {
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)?
        .sync_all()
}

/// Whether `name` is one of ours that the manifest does not list (an orphan of a crash).
fn is_orphan(name: &str, m: &SegManifest) -> bool {
    if name.starts_with('.') && name.contains(".tmp-") {
        return true;
    }
    let num = |pre: &str, suf: &str| {
        name.strip_prefix(pre)
            .and_then(|r| r.strip_suffix(suf))
            .and_then(|n| n.parse::<FileSeq>().ok())
            .filter(|n| name == format!("{pre}{n}{suf}"))
    };
    if let Some(n) = num("segment.", ".aof") {
        return !m.segments.contains(&n);
    }
    if let Some(n) = num("snapshot.", ".rdb") {
        return !m.snapshots.iter().any(|s| s.seq == n);
    }
    false
}

/// Remove the files of ours that `m` does not list. Returns their names.
fn remove_orphans(dir: &Path, m: &SegManifest) -> Result<Vec<String>> {
    let mut removed = Vec::new();
    for e in fs::read_dir(dir).map_err(io_ctx("listing", dir))? {
        let e = e.map_err(io_ctx("listing", dir))?;
        let name = e.file_name().to_string_lossy().into_owned();
        if is_orphan(&name, m) {
            let p = dir.join(&name);
            match fs::remove_file(&p) {
                Ok(()) => removed.push(name),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(SegError::io(format!("deleting {}", p.display()), e)),
            }
        }
    }
    if !removed.is_empty() {
        forkless_durable::fsync_dir(dir).map_err(io_ctx("fsyncing", dir))?;
    }
    Ok(removed)
}

/// Apply the retention policy to `m`: keep the newest `keep_snapshots` snapshots; delete
/// segments older than the oldest kept snapshot's cut, oldest first, while all segments
/// together exceed `keep_segment_bytes`. Returns the file names dropped from `m`.
pub fn apply_retention(
    m: &mut SegManifest,
    keep_snapshots: usize,
    keep_segment_bytes: u64,
    size_of: &dyn Fn(FileSeq) -> u64,
) -> Vec<String> {
    let mut dropped = Vec::new();
    let keep = keep_snapshots.max(1);
    while m.snapshots.len() > keep {
        dropped.push(m.snapshots.remove(0).name());
    }
    let Some(needed_from) = m.snapshots.first().map(|s| s.cut.seq) else {
        return dropped;
    };
    let mut total: u64 = m.segments.iter().map(|&s| size_of(s)).sum();
    while let Some(&first) = m.segments.first() {
        if first >= needed_from || total <= keep_segment_bytes || m.segments.len() == 1 {
            break;
        }
        total -= size_of(first);
        m.segments.remove(0);
        m.closed_len.remove(&first);
        m.closed_crc.remove(&first);
        dropped.push(segment_name(first));
    }
    dropped
}

impl SegmentDir {
    /// Open the segments directory `dir` (creating it when it holds no manifest): recover it
    /// into a new keyspace built from `config`, cut a torn tail off the last segment, remove
    /// orphans of a crash, and start appending to a new segment. Returns the directory, the
    /// recovered keyspace (install its observer and set `dir.writer()` as its sink before
    /// sharing it) and what recovery did (`None` for a new directory).
    pub fn open(
        dir: &Path,
        config: &Config,
        opts: SegmentOptions,
    ) -> Result<(SegmentDir, Keyspace, Option<RecoveryReport>)> {
        fs::create_dir_all(dir).map_err(io_ctx("creating directory", dir))?;
        let lock = lock_dir(dir)?;
        Self::open_locked(dir, config, opts, lock)
    }

    fn open_locked(
        dir: &Path,
        config: &Config,
        opts: SegmentOptions,
        lock: fs::File,
    ) -> Result<(SegmentDir, Keyspace, Option<RecoveryReport>)> {
        let mpath = dir.join(MANIFEST_NAME);
        if !mpath.exists() {
            // A new directory; refuse one that holds our files without a manifest.
            for e in fs::read_dir(dir).map_err(io_ctx("listing", dir))? {
                let e = e.map_err(io_ctx("listing", dir))?;
                let name = e.file_name().to_string_lossy().into_owned();
                let ours = name.starts_with("snapshot.")
                    || (name.starts_with("segment.") && name != segment_name(1));
                let nonempty_first =
                    name == segment_name(1) && e.metadata().map(|md| md.len() > 0).unwrap_or(true);
                if ours || nonempty_first {
                    return Err(SegError::Manifest {
                        file: mpath.display().to_string(),
                        line: 0,
                        what: format!(
                            "missing, but the directory holds {name}: refusing to start over on top of it"
                        ),
                    });
                }
            }
            let m = SegManifest {
                segments: vec![1],
                ..SegManifest::default()
            };
            let p = dir.join(segment_name(1));
            create_empty(&p).map_err(io_ctx("creating", &p))?;
            m.persist(dir)?;
            remove_orphans(dir, &m)?;
            let me = Self::start(dir, m, 1, opts, lock)?;
            return Ok((me, Keyspace::new(config.clone()), None));
        }
        let m = SegManifest::load(dir)?;
        let (ks, report) = recover(dir, &m, config, RecoverOptions::default())?;
        if let Some(t) = &report.truncated {
            let p = dir.join(&t.file);
            let f = OpenOptions::new()
                .write(true)
                .open(&p)
                .map_err(io_ctx("opening", &p))?;
            f.set_len(t.valid_len).map_err(io_ctx("truncating", &p))?;
            f.sync_all().map_err(io_ctx("fsyncing", &p))?;
        }
        remove_orphans(dir, &m)?;
        // Continue in a new segment: closed segments are never appended to.
        let seq = m.last_segment() + 1;
        let p = dir.join(segment_name(seq));
        create_empty(&p).map_err(io_ctx("creating", &p))?;
        let mut next = m.clone();
        let last = m.last_segment();
        let lp = dir.join(segment_name(last));
        let (last_len, last_crc) = file_crc(&lp).map_err(io_ctx("reading", &lp))?;
        next.closed_len.insert(last, last_len);
        next.closed_crc.insert(last, last_crc);
        next.segments.push(seq);
        next.persist(dir)?;
        let me = Self::start(dir, next, seq, opts, lock)?;
        Ok((me, ks, Some(report)))
    }

    fn start(
        dir: &Path,
        m: SegManifest,
        seq: FileSeq,
        opts: SegmentOptions,
        lock: fs::File,
    ) -> Result<SegmentDir> {
        let next_snapshot = Mutex::new(m.next_snapshot_seq());
        let manifest = Arc::new(Mutex::new(m));
        let path = dir.join(segment_name(seq));
        let io = FileIo::open_append(&path).map_err(io_ctx("opening", &path))?;
        let storage = SegmentStorage {
            dir: dir.to_path_buf(),
            manifest: manifest.clone(),
            closing: None,
        };
        let namer: FileNamer = std::sync::Arc::new(segment_name);
        let wopts = WriterOptions {
            roll_bytes: Some(opts.segment_bytes.max(1)),
            roll_age: opts.segment_age,
            file_namer: Some(namer),
            ..opts.writer.clone()
        };
        let writer = AofWriter::start(Box::new(io), Box::new(storage), "segment", seq, wopts)?;
        Ok(SegmentDir {
            dir: dir.to_path_buf(),
            _lock: lock,
            opts,
            manifest,
            writer: Arc::new(writer),
            next_snapshot,
        })
    }

    /// The writer (the keyspace's `PropagationSink`: `ks.set_sink(dir.writer())`).
    pub fn writer(&self) -> Arc<AofWriter> {
        self.writer.clone()
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// The manifest as last persisted.
    pub fn manifest(&self) -> SegManifest {
        self.manifest.lock().clone()
    }

    /// Take a forkless snapshot of `ks` (whose sink is this directory's writer and whose
    /// observer is `obs`) on the calling thread while writers go on, record its cut, list it
    /// and apply retention.
    ///
    /// The cut is taken inside the snapshot's barrier (the start barrier for point-in-time,
    /// the end barrier for converging), where every shard lock is held: no command is between
    /// executing and handing its propagated bytes to the writer, so
    /// [`AofWriter::position`] there splits the log exactly at the snapshot's state.
    pub fn snapshot(
        &self,
        ks: &Arc<Keyspace>,
        obs: &Arc<SnapshotObserver>,
        mode: Mode,
    ) -> Result<SnapshotInfo> {
        let seq = {
            let mut n = self.next_snapshot.lock();
            let s = *n;
            *n += 1;
            s
        };
        let path = self.dir.join(snapshot_name(seq));
        let cut: std::sync::Arc<Mutex<Option<LogPosition>>> = Default::default();
        let (c1, w1) = (cut.clone(), self.writer.clone());
        let at = match mode {
            Mode::Converging => Barrier::End,
            Mode::PointInTime => Barrier::Start,
        };
        let c2 = cut.clone();
        let opts = SnapshotOptions {
            mode,
            rdb: WriteOptions {
                aof_base: mode == Mode::Converging,
                ..WriteOptions::default()
            },
            on_barrier: Some(std::sync::Arc::new(move |b| {
                if b == at {
                    *c1.lock() = Some(w1.position());
                }
            })),
            trailer_aux: Some(std::sync::Arc::new(move || {
                c2.lock().map(|p| cut_aux(&p, mode)).unwrap_or_default()
            })),
            ..Default::default()
        };
        let result = snapshot_to_file(ks.clone(), obs, &path, opts).map_err(SegError::Snapshot)?;
        let cut = cut.lock().ok_or(SegError::NoCut)?;
        let (len, crc) = file_crc(&path).map_err(io_ctx("reading", &path))?;
        // The cut's segment must be listed before the snapshot that needs it.
        self.writer.wait_for_file(cut.seq)?;
        // And the log must be durable up to the cut: otherwise a crash after the manifest
        // lists the snapshot leaves a cut beyond the end of its segment (writes still queued
        // or not fsynced at the barrier), and recovery from that snapshot fails.
        self.writer.flush_and_sync()?;
        let entry = SnapshotEntry {
            seq,
            len,
            crc,
            mode,
            cut,
        };
        let deleted = {
            let mut m = self.manifest.lock();
            let mut next = m.clone();
            next.snapshots.push(entry.clone());
            let size_of = |s: FileSeq| {
                fs::metadata(self.dir.join(segment_name(s)))
                    .map(|md| md.len())
                    .unwrap_or(0)
            };
            let dropped = apply_retention(
                &mut next,
                self.opts.keep_snapshots,
                self.opts.keep_segment_bytes,
                &size_of,
            );
            next.persist(&self.dir)?;
            *m = next;
            dropped
        };
        for name in &deleted {
            let p = self.dir.join(name);
            match fs::remove_file(&p) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(SegError::io(format!("deleting {}", p.display()), e)),
            }
        }
        if !deleted.is_empty() {
            forkless_durable::fsync_dir(&self.dir).map_err(io_ctx("fsyncing", &self.dir))?;
        }
        Ok(SnapshotInfo {
            entry,
            result,
            deleted,
        })
    }

    /// Write and fsync everything queued, then stop the writer.
    pub fn close(&self) -> Result<()> {
        Ok(self.writer.close()?)
    }
}

/// Take `dir`'s lock file, or fail naming the directory when another open holds it.
fn lock_dir(dir: &Path) -> Result<fs::File> {
    let p = dir.join(LOCK_NAME);
    let f = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&p)
        .map_err(io_ctx("opening", &p))?;
    match f.try_lock() {
        Ok(()) => Ok(f),
        Err(fs::TryLockError::WouldBlock) => Err(SegError::InvalidInput(format!(
            "{} is in use: another process (or another open in this one) holds {LOCK_NAME}",
            dir.display()
        ))),
        Err(fs::TryLockError::Error(e)) => Err(SegError::io(format!("locking {}", p.display()), e)),
    }
}

/// Whether a directory holds a segments manifest.
pub fn is_segments_dir(dir: &Path) -> bool {
    dir.join(MANIFEST_NAME).exists()
}
