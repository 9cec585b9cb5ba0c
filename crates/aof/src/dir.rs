//! A multi-part AOF directory for a live keyspace: create, open (load then keep appending),
//! and the manifest switch at the end of a rewrite.
//!
//! Layout and life cycle follow Redis 7.0 (`src/aof.c`):
//!
//! * [`AofDir::create`] (like `aofOpenIfNeededOnServerStart` on an empty dataset): base
//!   `<name>.1.base.rdb` (an RDB with `aof-base` 1, see [`forkless_rdb::write_all`]) or
//!   `<name>.1.base.aof` (RESP commands, `aof-use-rdb-preamble no`), an empty
//!   `<name>.1.incr.aof`, then the manifest. Every file and the directory are fsynced.
//! * [`AofDir::open`] loads every file, cuts a truncated tail of the last file off (durably, as
//!   Redis truncates with `aof-load-truncated yes`) and continues appending to the *last* incr
//!   file, as Redis 7.0 does at start-up (`getLastIncrAofName`); without an incr file it
//!   creates the next one.
//! * A rewrite (the snapshot side): inside its barrier call [`AofWriter::rotate`] (no I/O),
//!   write the new base to [`AofDir::rewrite_temp_path`], then call [`AofDir::install_rewrite`]:
//!   it fsyncs and renames the base into place, makes the old base and the incr files before the
//!   rotation history (`backgroundRewriteDoneHandler`), persists the manifest, deletes the history
//!   files (`aofDelHistoryFiles`) and persists it again.
//! * With [`AofDirOptions::history_generations`] = N > 0 the retired generation (old base + the
//!   incr files before the rotation) is first assembled as `history/gen-<old base seq>/`, a
//!   loadable multi-part AOF directory of its own, and the newest N generations are kept
//!   (see [`crate::history`] for the layout and the crash-safety argument).

use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use forkless_keyspace::Keyspace;
use forkless_rdb::{Entry, Value, WriteOptions};
use forkless_sync::{Arc, Mutex};

use crate::engine::KeyspaceTarget;
use crate::error::{AofError, Result};
use crate::history::{self, BaseCut, Generation};
use crate::io::{DirStorage, FileIo};
use crate::load::{load_manifest, LoadOptions, LoadReport};
use crate::manifest::{
    base_name, incr_name, sync_dir, AofFile, FileType, Manifest, DEFAULT_FILENAME,
};
use crate::position::LogPosition;
use crate::writer::{AofWriter, Rotation, WriterOptions};
use forkless_resp::encode_command_iter;

/// Options of an AOF directory.
#[derive(Debug, Clone)]
pub struct AofDirOptions {
    /// `appendfilename` (default `appendonly.aof`).
    pub filename: String,
    /// `aof-use-rdb-preamble` (default true): bases are RDB files.
    pub rdb_preamble: bool,
    /// The writer's options.
    pub writer: WriterOptions,
    /// History generations kept after a rewrite (default 0: the old base and incr files are
    /// deleted, as Redis does). With N > 0 each rewrite moves the generation it retires to
    /// `history/gen-<old base seq>/` and deletes all but the newest N, so that point-in-time
    /// recovery ([`crate::load_dir_at`]) reaches back across the last N rewrites.
    pub history_generations: usize,
}

impl Default for AofDirOptions {
    fn default() -> Self {
        AofDirOptions {
            filename: DEFAULT_FILENAME.to_string(),
            rdb_preamble: true,
            writer: WriterOptions::default(),
            history_generations: 0,
        }
    }
}

/// A multi-part AOF directory being appended to.
pub struct AofDir {
    dir: PathBuf,
    opts: AofDirOptions,
    manifest: Arc<Mutex<Manifest>>,
    writer: Arc<AofWriter>,
}

impl std::fmt::Debug for AofDir {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AofDir")
            .field("dir", &self.dir)
            .field("manifest", &*self.manifest.lock())
            .finish()
    }
}

pub(crate) use forkless_durable::io_ctx;

/// How many elements one rewrite command carries (`AOF_REWRITE_ITEMS_PER_CMD`).
const ITEMS_PER_CMD: usize = 64;

/// The RESP commands that rebuild `entries` (`rewriteAppendOnlyFileRio`): per database a
/// `SELECT`, per key `SET` / `RPUSH` / `SADD` / `ZADD` / `HMSET` in batches of 64 elements (a
/// stream: [`stream_commands`]), then `PEXPIREAT` for a key with an expiry.
pub fn resp_base(entries: &[Entry]) -> Vec<u8> {
    let mut order: Vec<&Entry> = entries.iter().collect();
    order.sort_by_key(|e| e.db);
    let mut out = Vec::new();
    let mut db = None;
    for e in order {
        if db != Some(e.db) {
            encode_command_iter(
                &mut out,
                &[b"SELECT".to_vec(), e.db.to_string().into_bytes()],
            );
            db = Some(e.db);
        }
        let k = e.key.clone();
        let batches = |out: &mut Vec<u8>, cmd: &[u8], items: Vec<Vec<Vec<u8>>>| {
            for chunk in items.chunks(ITEMS_PER_CMD) {
                let mut argv = vec![cmd.to_vec(), k.clone()];
                argv.extend(chunk.iter().flatten().cloned());
                encode_command_iter(out, &argv);
            }
        };
        match &e.value {
            Value::String(v) => {
                encode_command_iter(&mut out, &[b"SET".to_vec(), k.clone(), v.clone()])
            }
            Value::List(items) => batches(
                &mut out,
                b"RPUSH",
                items.iter().map(|x| vec![x.clone()]).collect(),
            ),
            Value::Set(items) => batches(
                &mut out,
                b"SADD",
                items.iter().map(|x| vec![x.clone()]).collect(),
            ),
            Value::ZSet(items) => batches(
                &mut out,
                b"ZADD",
                items
                    .iter()
                    .map(|(m, s)| vec![s.to_string().into_bytes(), m.clone()])
                    .collect(),
            ),
            Value::Hash(items) => batches(
                &mut out,
                b"HMSET",
                items
                    .iter()
                    .map(|(f, v)| vec![f.clone(), v.clone()])
                    .collect(),
            ),
            Value::Stream(s) => {
                for argv in stream_commands(&k, s) {
                    encode_command_iter(&mut out, &argv);
                }
            }
        }
        if let Some(at) = e.expire_at_ms {
            encode_command_iter(
                &mut out,
                &[b"PEXPIREAT".to_vec(), k, at.to_string().into_bytes()],
            );
        }
    }
    out
}

/// The commands Redis's `rewriteStreamObject` (`aof.c`, 7.0.15) emits for a stream: one
/// `XADD key id field value ...` per live entry (an empty stream: `XADD key MAXLEN 0 0-1 x y`),
/// `XSETID key last ENTRIESADDED n MAXDELETEDID id`, then per group (byte order)
/// `XGROUP CREATE key group last ENTRIESREAD n` and per consumer (byte order) either
/// `XGROUP CREATECONSUMER key group consumer` (no pending entries) or, per pending entry,
/// `XCLAIM key group consumer 0 id TIME ms RETRYCOUNT n JUSTID FORCE`.
pub fn stream_commands(key: &[u8], s: &forkless_rdb::stream::Stream) -> Vec<Vec<Vec<u8>>> {
    let t = |x: &str| x.as_bytes().to_vec();
    let mut out = Vec::new();
    if s.length > 0 {
        for (id, f, v) in s.live_entries() {
            let mut argv = vec![t("XADD"), key.to_vec(), id.to_text()];
            for (f, v) in f.iter().zip(v.iter()) {
                argv.push(f.clone());
                argv.push(v.clone());
            }
            out.push(argv);
        }
    } else {
        out.push(vec![
            t("XADD"),
            key.to_vec(),
            t("MAXLEN"),
            t("0"),
            t("0-1"),
            t("x"),
            t("y"),
        ]);
    }
    out.push(vec![
        t("XSETID"),
        key.to_vec(),
        s.last_id.to_text(),
        t("ENTRIESADDED"),
        s.entries_added.to_string().into_bytes(),
        t("MAXDELETEDID"),
        s.max_deleted_id.to_text(),
    ]);
    let mut groups: Vec<_> = s.groups.iter().collect();
    groups.sort_by(|a, b| a.name.cmp(&b.name));
    for g in groups {
        out.push(vec![
            t("XGROUP"),
            t("CREATE"),
            key.to_vec(),
            g.name.clone(),
            g.last_id.to_text(),
            t("ENTRIESREAD"),
            g.entries_read.to_string().into_bytes(),
        ]);
        let mut consumers: Vec<_> = g.consumers.iter().collect();
        consumers.sort_by(|a, b| a.name.cmp(&b.name));
        for c in consumers {
            if c.pending.is_empty() {
                out.push(vec![
                    t("XGROUP"),
                    t("CREATECONSUMER"),
                    key.to_vec(),
                    g.name.clone(),
                    c.name.clone(),
                ]);
                continue;
            }
            for id in &c.pending {
                let Some(p) = g.pending.iter().find(|p| p.id == *id) else {
                    continue;
                };
                out.push(vec![
                    t("XCLAIM"),
                    key.to_vec(),
                    g.name.clone(),
                    c.name.clone(),
                    t("0"),
                    id.to_text(),
                    t("TIME"),
                    p.delivery_time.to_string().into_bytes(),
                    t("RETRYCOUNT"),
                    p.delivery_count.to_string().into_bytes(),
                    t("JUSTID"),
                    t("FORCE"),
                ]);
            }
        }
    }
    out
}

/// Write `entries` as a base file at `path` (RDB with `aof-base` 1, or RESP) and fsync it.
pub fn write_base(path: &Path, entries: &[Entry], rdb: bool) -> Result<()> {
    write_base_aux(path, entries, &[], rdb, Vec::new())
}

/// [`write_base`] with extra aux fields (RDB only).
fn write_base_aux(
    path: &Path,
    entries: &[Entry],
    functions: &[Vec<u8>],
    rdb: bool,
    extra_aux: Vec<(Vec<u8>, Vec<u8>)>,
) -> Result<()> {
    let f = File::create(path).map_err(io_ctx("creating", path))?;
    let mut w = BufWriter::new(f);
    if rdb {
        let opts = WriteOptions {
            aof_base: true,
            extra_aux,
            ..WriteOptions::default()
        };
        w = forkless_rdb::write_all_with_functions(w, entries, functions, opts).map_err(|e| {
            AofError::Rdb {
                file: path.display().to_string(),
                what: e.to_string(),
            }
        })?;
    } else {
        // Redis's RESP rewrite: one FUNCTION LOAD per library, before the keys.
        let mut out = Vec::new();
        for code in functions {
            encode_command_iter(
                &mut out,
                &[b"FUNCTION".to_vec(), b"LOAD".to_vec(), code.clone()],
            );
        }
        w.write_all(&out).map_err(io_ctx("writing", path))?;
        w.write_all(&resp_base(entries))
            .map_err(io_ctx("writing", path))?;
    }
    let f = w
        .into_inner()
        .map_err(|e| AofError::io(format!("writing {}", path.display()), e.into_error()))?;
    f.sync_all().map_err(io_ctx("fsyncing", path))
}

impl AofDir {
    /// Create a new AOF directory at `dir` holding `entries` as its base (see the module doc).
    /// Fails if `dir` already holds this AOF's manifest.
    pub fn create(dir: &Path, entries: &[Entry], opts: AofDirOptions) -> Result<AofDir> {
        Self::create_with_functions(dir, entries, &[], opts)
    }

    /// [`AofDir::create`] with function libraries (their codes) in the base: a new AOF
    /// directory seeded from a dump.rdb that carries functions keeps them.
    pub fn create_with_functions(
        dir: &Path,
        entries: &[Entry],
        functions: &[Vec<u8>],
        opts: AofDirOptions,
    ) -> Result<AofDir> {
        fs::create_dir_all(dir).map_err(io_ctx("creating directory", dir))?;
        let fname = &opts.filename;
        if dir.join(crate::manifest::manifest_name(fname)).exists() {
            return Err(AofError::InvalidInput(format!(
                "{} already holds an AOF manifest",
                dir.display()
            )));
        }
        let base = base_name(fname, 1, opts.rdb_preamble);
        // The base covers the stream up to incr file 1, offset 0, at this instant.
        let cut = BaseCut {
            at: LogPosition::start_of(1, opts.writer.clock_secs()),
            logical: 0,
        };
        write_base_aux(
            &dir.join(&base),
            entries,
            functions,
            opts.rdb_preamble,
            cut.to_aux(),
        )?;
        let incr = incr_name(fname, 1);
        let incr_path = dir.join(&incr);
        let f = File::create(&incr_path).map_err(io_ctx("creating", &incr_path))?;
        f.sync_all().map_err(io_ctx("fsyncing", &incr_path))?;
        let manifest = Manifest::first_generation(base, incr);
        manifest.persist(dir, fname)?;
        Self::start(dir, manifest, opts)
    }

    /// Load the AOF directory `dir` into `ks` and continue appending to its last incr file
    /// (creating one when the manifest lists none). A truncated tail of the last file is cut
    /// off on disk first. Returns the directory and what loading found.
    pub fn open(dir: &Path, ks: &Keyspace, opts: AofDirOptions) -> Result<(AofDir, LoadReport)> {
        let mut manifest = Manifest::load(dir, &opts.filename)?;
        if manifest.base.is_none() && manifest.incr.is_empty() {
            return Err(AofError::Manifest {
                line: 0,
                what: "the manifest lists no base and no incr file".into(),
            });
        }
        let lopts = LoadOptions {
            until_timestamp: None,
            filename: Some(opts.filename.clone()),
        };
        let report = load_manifest(dir, &manifest, &lopts, &mut KeyspaceTarget::new(ks))?;
        if let Some(t) = &report.truncated {
            let p = dir.join(&t.file);
            let f = OpenOptions::new()
                .write(true)
                .open(&p)
                .map_err(io_ctx("opening", &p))?;
            f.set_len(t.valid_len).map_err(io_ctx("truncating", &p))?;
            f.sync_all().map_err(io_ctx("fsyncing", &p))?;
        }
        if manifest.incr.is_empty() {
            let name = manifest.add_new_incr(&opts.filename);
            let p = dir.join(&name);
            File::create(&p)
                .map_err(io_ctx("creating", &p))?
                .sync_all()
                .map_err(io_ctx("fsyncing", &p))?;
            manifest.persist(dir, &opts.filename)?;
        }
        Ok((Self::start(dir, manifest, opts)?, report))
    }

    pub(crate) fn start(dir: &Path, manifest: Manifest, opts: AofDirOptions) -> Result<AofDir> {
        let last = manifest
            .incr
            .last()
            .cloned()
            .ok_or_else(|| AofError::InvalidInput("no incr file".into()))?;
        let path = dir.join(&last.name);
        let io = FileIo::open_append(&path).map_err(io_ctx("opening", &path))?;
        let manifest = Arc::new(Mutex::new(manifest));
        let storage = DirStorage::new(dir.to_path_buf(), opts.filename.clone(), manifest.clone());
        let writer = AofWriter::start(
            Box::new(io),
            Box::new(storage),
            &opts.filename,
            last.seq,
            opts.writer.clone(),
        )?;
        Ok(AofDir {
            dir: dir.to_path_buf(),
            opts,
            manifest,
            writer: Arc::new(writer),
        })
    }

    /// The writer (also the keyspace's `PropagationSink`: `ks.set_sink(aof.writer())`).
    pub fn writer(&self) -> Arc<AofWriter> {
        self.writer.clone()
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Run `f` on the in-memory manifest (under its lock; `f` must not do I/O).
    pub(crate) fn with_manifest<R>(&self, f: impl FnOnce(&mut Manifest) -> R) -> R {
        f(&mut self.manifest.lock())
    }

    /// The manifest as last persisted.
    pub fn manifest(&self) -> Manifest {
        self.manifest.lock().clone()
    }

    /// Where the snapshot side writes a new base before [`AofDir::install_rewrite`]
    /// (`temp-rewriteaof-<name>`, like Redis's temp rewrite file).
    pub fn rewrite_temp_path(&self) -> PathBuf {
        self.dir
            .join(format!("temp-rewriteaof-{}", self.opts.filename))
    }

    /// Finish a rewrite: the base written at `temp_base` (a snapshot taken at `rotation`, the
    /// point where the writer switched incr files) replaces the old base; the old base and incr
    /// files before the rotation become history and are deleted. Crash-safe: until the manifest
    /// rename the old manifest (old base + all incr files) stays valid.
    ///
    /// With [`AofDirOptions::history_generations`] > 0 the retired generation is first assembled
    /// under `history/` (if that fails, the rewrite fails and nothing changes), and after the
    /// switch generations beyond the newest N are deleted.
    pub fn install_rewrite(&self, temp_base: &Path, rotation: &Rotation) -> Result<()> {
        self.install_rewrite_until(temp_base, rotation, InstallStop::Done)
    }

    /// [`AofDir::install_rewrite`], stopping after `stop` (crash tests: the state a crash at
    /// that point leaves on disk; the in-memory manifest is not updated).
    pub(crate) fn install_rewrite_until(
        &self,
        temp_base: &Path,
        rotation: &Rotation,
        stop: InstallStop,
    ) -> Result<()> {
        self.writer.wait_rotated(rotation)?;
        File::open(temp_base)
            .and_then(|f| f.sync_all())
            .map_err(io_ctx("fsyncing", temp_base))?;
        // The base's format decides its name: read its first five bytes (never the whole file,
        // which is the size of the dataset), before taking the manifest lock.
        let rdb = starts_with_rdb_magic(temp_base).map_err(io_ctx("reading", temp_base))?;
        let mut m = self.manifest.lock();
        let keep = self.opts.history_generations;
        if keep > 0 {
            let publish = stop != InstallStop::BeforePublish;
            let r = history::preserve_generation(
                &self.dir,
                &self.opts.filename,
                &m,
                &rotation.name,
                publish,
            );
            if let Err(e) = r {
                let _ = fs::remove_file(temp_base);
                return Err(e);
            }
            if stop <= InstallStop::AfterPublish {
                return Ok(());
            }
        }
        let seq = m.next_base_seq();
        let name = base_name(&self.opts.filename, seq, rdb);
        let target = self.dir.join(&name);
        fs::rename(temp_base, &target).map_err(io_ctx("renaming", temp_base))?;
        let mut next = m.clone();
        next.apply_rewrite(
            AofFile {
                name,
                seq,
                kind: FileType::Base,
            },
            &rotation.name,
        )?;
        next.persist(&self.dir, &self.opts.filename)?;
        if stop == InstallStop::AfterSwitch {
            return Ok(());
        }
        // aofDelHistoryFiles: delete, then persist the manifest without them.
        for h in std::mem::take(&mut next.history) {
            let p = self.dir.join(&h.name);
            if let Err(e) = fs::remove_file(&p) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    return Err(AofError::io(
                        format!("deleting history file {}", p.display()),
                        e,
                    ));
                }
            }
        }
        next.persist(&self.dir, &self.opts.filename)?;
        sync_dir(&self.dir)?;
        *m = next;
        drop(m);
        history::prune(&self.dir, &self.opts.filename, keep, seq)?;
        Ok(())
    }

    /// The history generations under `history/` (oldest first).
    pub fn generations(&self) -> Result<Vec<Generation>> {
        let live = self.manifest.lock().base.as_ref().map(|b| b.seq);
        history::list_generations(&self.dir, &self.opts.filename, live)
    }

    /// The options.
    pub fn options(&self) -> &AofDirOptions {
        &self.opts
    }

    /// Write and fsync everything queued, then stop the writer.
    pub fn close(self) -> Result<()> {
        self.writer.close()
    }
}

/// Where [`AofDir::install_rewrite_until`] stops (the crash points of a rewrite).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[cfg_attr(not(test), allow(dead_code))]
pub(crate) enum InstallStop {
    /// History generation assembled in `history/gen-<b>.tmp`, not renamed.
    BeforePublish,
    /// `history/gen-<b>` published, main manifest not switched.
    AfterPublish,
    /// Main manifest switched (old files still listed as history), nothing deleted.
    AfterSwitch,
    /// The whole rewrite.
    Done,
}

/// True when the file at `path` starts with the RDB magic `REDIS` (an RDB or RDB-preamble base);
/// reads at most five bytes.
pub(crate) fn starts_with_rdb_magic(path: &Path) -> std::io::Result<bool> {
    use std::io::Read;
    let mut head = Vec::with_capacity(5);
    File::open(path)?.take(5).read_to_end(&mut head)?;
    Ok(head == b"REDIS")
}
