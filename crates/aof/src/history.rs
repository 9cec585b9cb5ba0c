//! History retention and point-in-time recovery across rewrites.
//!
//! # The cut a base covers
//! Every RDB base written by [`crate::rewrite`] (and by [`crate::AofDir::create`]) records, in aux
//! fields written after the snapshot's end barrier and before EOF, which AOF position it covers
//! ([`BaseCut`]): `forkless-aof-incr-seq` (the first incr file it does *not* cover: the one the
//! writer switched to at the barrier), `forkless-aof-offset` (the writer's logical stream offset
//! at the cut: bytes logged since that writer started) and `forkless-aof-cut-time` (Unix second
//! at the cut, from the writer clock). Redis 7.0 ignores unknown aux fields.
//!
//! # Layout
//! ```text
//! appendonlydir/
//!   appendonly.aof.manifest                      the live AOF (never lists history files)
//!   appendonly.aof.<s>.base.rdb  ...incr.aof
//!   history/
//!     gen-<b>/                                   one generation: a loadable multi-part AOF dir
//!       appendonly.aof.manifest                  file <base b> type b, file <incr> type i ...
//!       appendonly.aof.<b>.base.rdb
//!       appendonly.aof.<i>.incr.aof ...          the incr files up to the next base's cut
//!     gen-<b>.tmp/                               a generation being assembled (incomplete)
//! ```
//! A generation named `gen-<b>` holds base `b` and the incr files from its cut up to the cut of
//! base `b+1` (the next generation's, or the live one's): so generations chain exactly.
//!
//! # Crash safety
//! With [`crate::AofDirOptions::history_generations`] = N > 0, a rewrite assembles the outgoing
//! generation *before* the main manifest switch, in `history/gen-<b>.tmp/`, by hard links (a
//! copy where links are not supported) to the old base and the incr files before the rotation,
//! plus its own manifest, all fsynced; then renames the directory to `gen-<b>` (one atomic
//! rename, directory fsynced). Only then does the main manifest switch as without history
//! (atomic rename), the old names are unlinked from the main directory (the generation keeps its
//! links), and generations beyond the newest N are deleted. A crash anywhere leaves the main
//! directory exactly as a rewrite without history would (old or new manifest, both complete);
//! in history at worst a `*.tmp` directory (incomplete, skipped, removed by the next rewrite), a
//! `gen-<b>` whose base is still the live base (stale: covered by the live AOF, replaced by the
//! next rewrite), or more than N generations (pruned by the next rewrite).

use std::fs::{self, File};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use forkless_durable::io_ctx;
use forkless_rdb::RdbReader;

use crate::auxfields;
use crate::error::{AofError, Result};
use crate::load::{load_manifest, LoadOptions, LoadReport, LoadTarget};
use crate::manifest::{sync_dir, Manifest, DEFAULT_FILENAME};
use crate::position::{FileSeq, LogPosition};
use crate::writer::Rotation;

/// Aux field names a base records its cut in.
pub mod aux {
    /// Sequence number of the first incr file the base does not cover.
    pub const INCR_SEQ: &[u8] = b"forkless-aof-incr-seq";
    /// The writer's logical stream offset at the cut.
    pub const OFFSET: &[u8] = b"forkless-aof-offset";
    /// Unix seconds at the cut (writer clock).
    pub const CUT_TIME: &[u8] = b"forkless-aof-cut-time";
}

/// The sub-directory of an AOF directory holding history generations.
pub const HISTORY_DIR: &str = "history";

/// The AOF position a base covers (see the module doc): the start of the first incr file it
/// does not cover.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BaseCut {
    /// The start of the first incr file not covered (the writer's rotation target at the cut),
    /// at the writer clock's second of the cut.
    pub at: LogPosition,
    /// The writer's logical stream offset at the cut (bytes logged since it started).
    pub logical: u64,
}

impl BaseCut {
    /// The cut at `rotation` (the switch to the first incr file the base does not cover).
    pub fn at_rotation(rotation: &Rotation) -> BaseCut {
        BaseCut {
            at: rotation.at,
            logical: rotation.logical,
        }
    }

    /// The aux fields recording this cut.
    pub fn to_aux(&self) -> Vec<(Vec<u8>, Vec<u8>)> {
        vec![
            auxfields::field(aux::INCR_SEQ, self.at.seq),
            auxfields::field(aux::OFFSET, self.logical),
            auxfields::field(aux::CUT_TIME, self.at.unix_secs),
        ]
    }

    /// The cut recorded in `fields` (aux fields in file order; the last value of a key wins),
    /// if all three fields are there and valid.
    pub fn from_aux(fields: &[(Vec<u8>, Vec<u8>)]) -> Option<BaseCut> {
        Some(BaseCut {
            at: LogPosition::start_of(
                auxfields::get(fields, aux::INCR_SEQ)?,
                auxfields::get(fields, aux::CUT_TIME)?,
            ),
            logical: auxfields::get(fields, aux::OFFSET)?,
        })
    }
}

/// `gen-<base seq>`.
pub fn generation_dir_name(base_seq: FileSeq) -> String {
    format!("gen-{base_seq}")
}

/// The structural state of a history generation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GenerationStatus {
    /// Its manifest parses, lists a base, and every file it lists exists.
    Valid,
    /// Being assembled when a crash happened (`*.tmp`), or its manifest or a file is missing or
    /// unreadable: skipped by recovery, removed by the next rewrite's pruning.
    Incomplete(String),
    /// Its files fail a content check ([`crate::check_dir`] only).
    Invalid(String),
    /// Its base is still the live base (a rewrite did not finish): the live AOF covers it; the
    /// next rewrite replaces it.
    Stale,
}

/// One directory under `history/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Generation {
    /// Its directory name (`gen-<b>` or `gen-<b>.tmp`).
    pub name: String,
    /// Its path.
    pub path: PathBuf,
    /// The base sequence number in its name.
    pub base_seq: FileSeq,
    /// Structural state.
    pub status: GenerationStatus,
    /// Its manifest, when it could be read.
    pub manifest: Option<Manifest>,
}

/// Parse `gen-<n>` / `gen-<n>.tmp`: (n, tmp).
fn parse_gen_name(name: &str) -> Option<(FileSeq, bool)> {
    let rest = name.strip_prefix("gen-")?;
    let (num, tmp) = match rest.strip_suffix(".tmp") {
        Some(n) => (n, true),
        None => (rest, false),
    };
    if num.is_empty() || !num.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((num.parse().ok()?, tmp))
}

/// The history generations of the AOF directory `dir` (empty when there is no `history/`),
/// oldest first. `live_base_seq` is the live manifest's base sequence (generations at or past
/// it are [`GenerationStatus::Stale`]).
pub fn list_generations(
    dir: &Path,
    filename: &str,
    live_base_seq: Option<FileSeq>,
) -> Result<Vec<Generation>> {
    let hist = dir.join(HISTORY_DIR);
    let rd = match fs::read_dir(&hist) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(AofError::io(format!("reading {}", hist.display()), e)),
    };
    let mut out = Vec::new();
    for e in rd {
        let e = e.map_err(io_ctx("reading", &hist))?;
        let name = e.file_name().to_string_lossy().into_owned();
        let Some((base_seq, tmp)) = parse_gen_name(&name) else {
            continue;
        };
        let path = e.path();
        let mut g = Generation {
            name,
            path,
            base_seq,
            status: GenerationStatus::Valid,
            manifest: None,
        };
        if tmp {
            g.status = GenerationStatus::Incomplete(
                "being assembled when the rewrite stopped (no final rename)".into(),
            );
        } else {
            match Manifest::load(&g.path, filename) {
                Err(e) => g.status = GenerationStatus::Incomplete(format!("its manifest: {e}")),
                Ok(m) => {
                    if m.base.is_none() && m.incr.is_empty() {
                        g.status =
                            GenerationStatus::Incomplete("its manifest lists no file".into());
                    } else if let Some(f) = m
                        .load_order()
                        .into_iter()
                        .find(|f| !g.path.join(&f.name).is_file())
                    {
                        g.status = GenerationStatus::Incomplete(format!("{} is missing", f.name));
                    } else if live_base_seq.is_some_and(|s| base_seq >= s) {
                        g.status = GenerationStatus::Stale;
                    }
                    g.manifest = Some(m);
                }
            }
        }
        out.push(g);
    }
    out.sort_by_key(|g| (g.base_seq, g.name.clone()));
    Ok(out)
}

/// The cut recorded in the base `manifest` lists (in `dir`): `None` for a RESP base, a base
/// without the aux fields, or no base. Reads the base's RDB part (every key is parsed).
pub fn read_base_cut(dir: &Path, manifest: &Manifest) -> Result<Option<BaseCut>> {
    let Some(base) = &manifest.base else {
        return Ok(None);
    };
    let path = dir.join(&base.name);
    let f = File::open(&path).map_err(io_ctx("opening", &path))?;
    let mut r = BufReader::with_capacity(64 * 1024, f);
    if !r
        .fill_buf()
        .map_err(io_ctx("reading", &path))?
        .starts_with(b"REDIS")
    {
        return Ok(None);
    }
    let rdb_err = |e: forkless_rdb::RdbError| AofError::Rdb {
        file: base.name.clone(),
        what: e.to_string(),
    };
    let mut rd = RdbReader::new(r).map_err(rdb_err)?;
    let mut aux = Vec::new();
    while let Some(item) = rd.next_item().map_err(rdb_err)? {
        if let forkless_rdb::Item::Aux { key, value } = item {
            aux.push((key, value));
        }
    }
    Ok(BaseCut::from_aux(&aux))
}

/// Hard-link `from` to `to`, or copy it (and fsync the copy) where links are not supported.
fn link_or_copy(from: &Path, to: &Path) -> Result<()> {
    if fs::hard_link(from, to).is_ok() {
        return Ok(());
    }
    fs::copy(from, to).map_err(io_ctx("copying into history", from))?;
    File::open(to)
        .and_then(|f| f.sync_all())
        .map_err(io_ctx("fsyncing", to))
}

/// Step 1 of a rewrite with history: assemble the generation that the rewrite retires (the base
/// of `live` and its incr files before `first_kept_incr`) as `history/gen-<base seq>`, durably
/// and atomically (see the module doc). `publish` = false stops before the final rename (crash
/// tests). Returns the generation's directory.
pub(crate) fn preserve_generation(
    dir: &Path,
    filename: &str,
    live: &Manifest,
    first_kept_incr: &str,
    publish: bool,
) -> Result<PathBuf> {
    let keep_from = live.incr_index(first_kept_incr)?;
    let gen_manifest = Manifest {
        base: live.base.clone(),
        history: Vec::new(),
        incr: live.incr[..keep_from].to_vec(),
    };
    let base_seq = live.base.as_ref().map_or(0, |b| b.seq);
    let hist = dir.join(HISTORY_DIR);
    if !hist.is_dir() {
        fs::create_dir_all(&hist).map_err(io_ctx("creating", &hist))?;
        sync_dir(dir)?;
    }
    let name = generation_dir_name(base_seq);
    let tmp = hist.join(format!("{name}.tmp"));
    if tmp.exists() {
        fs::remove_dir_all(&tmp).map_err(io_ctx("removing", &tmp))?;
    }
    fs::create_dir(&tmp).map_err(io_ctx("creating", &tmp))?;
    for f in gen_manifest.load_order() {
        link_or_copy(&dir.join(&f.name), &tmp.join(&f.name))?;
    }
    // Writes the manifest durably and fsyncs the directory (covering the links too).
    gen_manifest.persist(&tmp, filename)?;
    sync_dir(&tmp)?;
    let target = hist.join(&name);
    if !publish {
        return Ok(target);
    }
    if target.exists() {
        // Stale: assembled by a rewrite that did not switch the main manifest.
        fs::remove_dir_all(&target).map_err(io_ctx("removing", &target))?;
    }
    fs::rename(&tmp, &target).map_err(io_ctx("renaming", &tmp))?;
    sync_dir(&hist)?;
    Ok(target)
}

/// Keep the newest `keep` generations older than the live base (`live_base_seq`), delete the
/// others and every incomplete `*.tmp`; returns the names deleted. Stale generations (at or
/// past the live base) are left to the next rewrite, which replaces them.
pub(crate) fn prune(
    dir: &Path,
    filename: &str,
    keep: usize,
    live_base_seq: FileSeq,
) -> Result<Vec<String>> {
    let gens = list_generations(dir, filename, Some(live_base_seq))?;
    let mut deleted = Vec::new();
    let mut kept = 0usize;
    for g in gens.iter().rev() {
        let tmp = g.name.ends_with(".tmp");
        let remove = if tmp {
            true
        } else if g.status == GenerationStatus::Stale {
            false
        } else if kept < keep {
            kept += 1;
            false
        } else {
            true
        };
        if remove {
            fs::remove_dir_all(&g.path).map_err(io_ctx("removing", &g.path))?;
            deleted.push(g.name.clone());
        }
    }
    if !deleted.is_empty() {
        sync_dir(&dir.join(HISTORY_DIR))?;
    }
    Ok(deleted)
}

/// What [`load_dir_at`] recovered from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PitrReport {
    /// `None`: the live AOF; `Some(name)`: the history generation `history/<name>`.
    pub generation: Option<String>,
    /// The cut of the base loaded, when it records one.
    pub base_cut: Option<BaseCut>,
    /// What loading found.
    pub load: LoadReport,
    /// Generations passed over: (name, why).
    pub skipped: Vec<(String, String)>,
}

/// One place recovery may start from.
struct Candidate {
    generation: Option<String>,
    dir: PathBuf,
    manifest: Manifest,
    cut: Option<BaseCut>,
}

/// Recover the state of the AOF directory `dir` at Unix second `t`, also across rewrites: from
/// the newest of the live AOF and the valid history generations whose base was cut at or
/// before `t` (a base without a recorded cut counts as cut before everything), loading its base
/// and then its incr files up to the first `#TS:` annotation later than `t`. A generation's incr
/// files end exactly at the next base's cut, so the result is exact when every write carried a
/// timestamp (`WriterOptions::timestamps`).
///
/// Errors: `t` earlier than the oldest recorded cut (the retained window), the generation
/// covering `t` incomplete or not chained to the next one, or the chosen files failing to load.
pub fn load_dir_at(
    dir: &Path,
    t: i64,
    filename: Option<&str>,
    target: &mut dyn LoadTarget,
) -> Result<PitrReport> {
    let filename = filename.unwrap_or(DEFAULT_FILENAME);
    let live = Manifest::load(dir, filename)?;
    let live_base_seq = live.base.as_ref().map(|b| b.seq);
    let mut skipped = Vec::new();
    // Newest first: the live AOF, then the generations. `None` = an unusable generation.
    let mut cands: Vec<Option<Candidate>> = vec![Some(Candidate {
        generation: None,
        dir: dir.to_path_buf(),
        cut: read_base_cut(dir, &live)?,
        manifest: live,
    })];
    for g in list_generations(dir, filename, live_base_seq)?
        .into_iter()
        .rev()
    {
        match (&g.status, g.manifest) {
            (GenerationStatus::Valid, Some(m)) => match read_base_cut(&g.path, &m) {
                Ok(cut) => cands.push(Some(Candidate {
                    generation: Some(g.name),
                    dir: g.path,
                    manifest: m,
                    cut,
                })),
                Err(e) => {
                    skipped.push((g.name, format!("its base cannot be read: {e}")));
                    cands.push(None);
                }
            },
            (GenerationStatus::Stale, _) => {
                skipped.push((g.name, "stale: covered by the live AOF".into()));
            }
            (GenerationStatus::Incomplete(why) | GenerationStatus::Invalid(why), _) => {
                skipped.push((g.name, format!("incomplete: {why}")));
                if !g.path.to_string_lossy().ends_with(".tmp") {
                    cands.push(None);
                }
            }
            (GenerationStatus::Valid, None) => cands.push(None),
        }
    }
    let pick = cands.iter().position(|c| {
        c.as_ref()
            .is_some_and(|c| c.cut.is_none_or(|cut| cut.at.unix_secs <= t))
    });
    let Some(i) = pick else {
        let oldest = cands
            .iter()
            .flatten()
            .last()
            .map(|c| {
                format!(
                    "{} (base cut at {})",
                    c.generation.as_deref().unwrap_or("the live AOF"),
                    c.cut.map_or(0, |c| c.at.unix_secs)
                )
            })
            .unwrap_or_default();
        let why = if skipped.is_empty() {
            String::new()
        } else {
            let list: Vec<String> = skipped.iter().map(|(n, w)| format!("{n}: {w}")).collect();
            format!("; generations skipped: {}", list.join("; "))
        };
        return Err(AofError::InvalidInput(format!(
            "cannot recover to timestamp {t}: it is older than the oldest retained point, \
             {oldest}{why} (keep more with history_generations)"
        )));
    };
    let chosen = cands[i].as_ref().expect("picked a candidate");
    let newer = if i == 0 { None } else { Some(&cands[i - 1]) };
    let opts = LoadOptions {
        until_timestamp: Some(t),
        filename: Some(filename.to_string()),
    };
    let load = load_manifest(&chosen.dir, &chosen.manifest, &opts, target)?;
    let name = chosen.generation.as_deref().unwrap_or("the live AOF");
    if load.stopped_at.is_none() {
        // Loaded to the end of a generation: exact only if the next one starts right there.
        match newer {
            None => {}
            Some(None) => {
                return Err(AofError::InvalidInput(format!(
                    "cannot recover to timestamp {t}: it falls after the end of {name}, in a \
                     history generation that is incomplete"
                )))
            }
            Some(Some(next)) => {
                let end = chosen.manifest.last_incr_seq() + 1;
                let chained = next.cut.is_some_and(|c| c.at.seq == end);
                if !chained {
                    return Err(AofError::InvalidInput(format!(
                        "cannot recover to timestamp {t}: {name} ends at incr file {end} but the \
                         next base ({}) does not record a cut there: history is not contiguous",
                        next.generation.as_deref().unwrap_or("the live AOF")
                    )));
                }
            }
        }
    }
    Ok(PitrReport {
        generation: chosen.generation.clone(),
        base_cut: chosen.cut,
        load,
        skipped,
    })
}

#[cfg(test)]
mod tests {
    //! Crash safety: a rewrite with history stopped at each of its crash points leaves the main
    //! directory loadable (engine and redis-server) with every write, history at worst
    //! incomplete or stale, point-in-time recovery correct; the next rewrite cleans up.

    use super::*;
    use crate::dir::InstallStop;
    use crate::engine::KeyspaceTarget;
    use crate::rewrite::{rewrite, rewrite_until};
    use crate::writer::WriterOptions;
    use crate::{AofDir, AofDirOptions, FsyncPolicy};
    use forkless_keyspace::{Config, Keyspace, Session};
    use forkless_rdb::Entry;
    use forkless_testkit::{RedisServer, TempDir};
    use std::sync::atomic::{AtomicI64, Ordering};
    use std::sync::Arc;

    fn opts(clock: &Arc<AtomicI64>) -> AofDirOptions {
        let c = clock.clone();
        AofDirOptions {
            writer: WriterOptions {
                fsync: FsyncPolicy::EverySec,
                timestamps: true,
                clock: Some(Arc::new(move || c.load(Ordering::SeqCst))),
                ..WriterOptions::default()
            },
            history_generations: 2,
            ..AofDirOptions::default()
        }
    }

    fn writes(ks: &Keyspace, aof: &AofDir, tag: &str, n: usize) {
        let mut s = Session::default();
        for i in 0..n {
            let k = format!("k{}", i % 17);
            let v = format!("{tag}-{i}");
            ks.execute(&mut s, &[b"SET", k.as_bytes(), v.as_bytes()]);
            ks.execute(&mut s, &[b"RPUSH", b"log", v.as_bytes()]);
            aof.writer().ack_current_thread().unwrap();
        }
    }

    fn load(dir: &Path) -> Vec<Entry> {
        let ks = Keyspace::new(Config::seeded(5));
        crate::load_dir(dir, &LoadOptions::default(), &mut KeyspaceTarget::new(&ks)).unwrap();
        ks.dump()
    }

    fn at(dir: &Path, t: i64) -> Result<Vec<Entry>> {
        let ks = Keyspace::new(Config::seeded(5));
        load_dir_at(dir, t, None, &mut KeyspaceTarget::new(&ks))?;
        Ok(ks.dump())
    }

    fn copy_tree(from: &Path, to: &Path) {
        fs::create_dir_all(to).unwrap();
        for e in fs::read_dir(from).unwrap() {
            let e = e.unwrap();
            if e.path().is_dir() {
                copy_tree(&e.path(), &to.join(e.file_name()));
            } else {
                fs::copy(e.path(), to.join(e.file_name())).unwrap();
            }
        }
    }

    fn redis_agrees(dir: &Path, want: &[Entry]) {
        let tmp = TempDir::new("aof-hist-crash-redis");
        copy_tree(dir, &tmp.path().join("appendonlydir"));
        let args = ["--appendonly", "yes", "--appenddirname", "appendonlydir"];
        if let Some(r) = RedisServer::try_start(tmp.path(), &args) {
            let server = r.unwrap_or_else(|log| panic!("redis-server refuses {dir:?}:\n{log}"));
            assert!(server.dump() == want, "redis-server loads another keyspace");
        }
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    const T: i64 = 1_000;

    #[test]
    fn a_crash_at_each_point_of_a_rewrite_with_history() {
        for stop in [
            InstallStop::BeforePublish,
            InstallStop::AfterPublish,
            InstallStop::AfterSwitch,
        ] {
            let tmp = TempDir::new("aof-hist-crash");
            let dir = tmp.path().join("appendonlydir");
            let clock = Arc::new(AtomicI64::new(T));
            let mut states = Vec::new();
            let mut ks = Keyspace::new(Config::seeded(1));
            let aof = AofDir::create(&dir, &[], opts(&clock)).unwrap();
            ks.set_sink(aof.writer());
            let obs = forkless_snapshot::install(&mut ks);
            let ks = Arc::new(ks);
            writes(&ks, &aof, "a", 50);
            states.push((T, ks.dump()));
            clock.store(T + 1, Ordering::SeqCst);
            writes(&ks, &aof, "b", 50);
            rewrite(&aof, &ks, &obs).unwrap(); // gen-1 kept
            states.push((T + 1, ks.dump()));
            clock.store(T + 2, Ordering::SeqCst);
            writes(&ks, &aof, "c", 50);
            rewrite_until(&aof, &ks, &obs, stop).unwrap(); // "crashes" at `stop`
            states.push((T + 2, ks.dump()));
            clock.store(T + 3, Ordering::SeqCst);
            writes(&ks, &aof, "d", 50); // acknowledged after the crash point, before the crash
            states.push((T + 3, ks.dump()));
            let live = ks.dump();
            aof.close().unwrap();
            drop(ks);

            // The state the crash left.
            assert!(load(&dir) == live, "{stop:?}: main dir loses writes");
            redis_agrees(&dir, &live);
            let m = Manifest::load(&dir, DEFAULT_FILENAME).unwrap();
            let gens =
                list_generations(&dir, DEFAULT_FILENAME, m.base.as_ref().map(|b| b.seq)).unwrap();
            let st: Vec<(&str, &GenerationStatus)> =
                gens.iter().map(|g| (g.name.as_str(), &g.status)).collect();
            match stop {
                InstallStop::BeforePublish => {
                    assert_eq!(m.base.as_ref().unwrap().seq, 2, "old manifest");
                    assert!(
                        matches!(
                            st.as_slice(),
                            [
                                ("gen-1", GenerationStatus::Valid),
                                ("gen-2.tmp", GenerationStatus::Incomplete(_))
                            ]
                        ),
                        "{st:?}"
                    );
                }
                InstallStop::AfterPublish => {
                    assert_eq!(m.base.as_ref().unwrap().seq, 2, "old manifest");
                    assert_eq!(
                        st,
                        [
                            ("gen-1", &GenerationStatus::Valid),
                            ("gen-2", &GenerationStatus::Stale)
                        ]
                    );
                }
                _ => {
                    assert_eq!(m.base.as_ref().unwrap().seq, 3, "new manifest");
                    assert_eq!(
                        m.history.len(),
                        2,
                        "old files still listed as history: {m:?}"
                    );
                    assert!(dir.join(&m.history[0].name).exists());
                    assert_eq!(
                        st,
                        [
                            ("gen-1", &GenerationStatus::Valid),
                            ("gen-2", &GenerationStatus::Valid)
                        ]
                    );
                }
            }
            for (t, want) in &states {
                assert!(at(&dir, *t).unwrap() == *want, "{stop:?}: recovery to {t}");
            }
            assert!(at(&dir, T - 1).is_err());
            let check = crate::check_dir(&dir, &crate::CheckOptions::default()).unwrap();
            assert_eq!(check.history.len(), 2);

            // Restart, write, rewrite: everything is cleaned up.
            let mut ks = Keyspace::new(Config::seeded(2));
            let (aof, _) = AofDir::open(&dir, &ks, opts(&clock)).unwrap();
            assert!(ks.dump() == live);
            ks.set_sink(aof.writer());
            let obs = forkless_snapshot::install(&mut ks);
            let ks = Arc::new(ks);
            clock.store(T + 4, Ordering::SeqCst);
            writes(&ks, &aof, "e", 50);
            rewrite(&aof, &ks, &obs).unwrap();
            states.push((T + 4, ks.dump()));
            let live = ks.dump();
            let m = aof.manifest();
            aof.close().unwrap();
            assert!(m.history.is_empty());
            let base = m.base.as_ref().unwrap();
            assert_eq!(
                names(&dir),
                [
                    base.name.clone(),
                    m.incr[0].name.clone(),
                    "appendonly.aof.manifest".into(),
                    "history".into()
                ],
                "{stop:?}"
            );
            let gens = list_generations(&dir, DEFAULT_FILENAME, Some(base.seq)).unwrap();
            assert_eq!(gens.len(), 2, "{stop:?}: {gens:?}");
            assert!(gens.iter().all(|g| g.status == GenerationStatus::Valid));
            assert_eq!(
                gens.iter().map(|g| g.base_seq).collect::<Vec<_>>(),
                [base.seq - 2, base.seq - 1]
            );
            assert!(load(&dir) == live);
            redis_agrees(&dir, &live);
            // The window is the two kept generations' cuts onwards.
            let oldest = read_base_cut(&gens[0].path, gens[0].manifest.as_ref().unwrap())
                .unwrap()
                .unwrap()
                .at
                .unix_secs;
            for (t, want) in &states {
                if *t >= oldest {
                    assert!(
                        at(&dir, *t).unwrap() == *want,
                        "{stop:?}: after restart, {t}"
                    );
                } else {
                    assert!(at(&dir, *t).is_err());
                }
            }
        }
    }
}
