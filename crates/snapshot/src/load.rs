//! Loading a snapshot's output into a keyspace: the one loader of the RDB (+ RESP deltas) layout.
//!
//! Problem: a converging snapshot is an RDB followed by RESP deltas (Redis's "RDB preamble +
//! AOF" layout), a point-in-time one a pure RDB; tests, the loom models, the benchmark's
//! verification and the embedded-cache example all need "replay these bytes into a keyspace",
//! with the same rules, and a bad file must fail with where it went wrong, not panic.
//!
//! * The RDB part is read with [`forkless_rdb::RdbReader`] and handed to [`Keyspace::load`]
//!   in batches of 4096 entries (no list of every entry is built).
//! * The RESP part after it is scanned with [`forkless_resp::scan_commands`] and executed in
//!   order, `MULTI`/`EXEC` frames applied as their contents, `SELECT` switching the database.
//! * The whole replay is a load: the keyspace is in loading mode meanwhile
//!   ([`Keyspace::set_loading`]), so no key counts as expired until it is done (Redis's rule
//!   while loading: a key that expired since keeps its expiry and its later logged writes). The
//!   previous mode is restored afterwards, also on error.
//!
//! ```
//! use forkless_keyspace::{Config, Keyspace, Session};
//! use forkless_snapshot::{install, run_snapshot, Progress, SnapshotOptions};
//! use std::sync::atomic::AtomicBool;
//!
//! let mut ks = Keyspace::new(Config::seeded(1));
//! let obs = install(&mut ks);
//! ks.execute(&mut Session::default(), &[b"SET", b"k", b"v"]);
//! let ticket = obs.try_begin().unwrap();
//! let opts = SnapshotOptions::default();
//! let (bytes, _) =
//!     run_snapshot(&ks, ticket, &opts, Vec::new(), &Progress::default(), &AtomicBool::new(false))
//!         .unwrap();
//! let copy = Keyspace::new(Config::seeded(2));
//! let stats = forkless_snapshot::load(&bytes, &copy).unwrap();
//! assert_eq!(stats.rdb_entries, 1);
//! assert_eq!(copy.dump(), ks.dump());
//! // A log of commands alone (an AOF's RESP part) loads with `load_commands`.
//! let n = forkless_snapshot::load_commands(b"*2\r\n$3\r\nDEL\r\n$1\r\nk\r\n", &copy).unwrap();
//! assert_eq!((n, copy.dump().len()), (1, 0));
//! ```

use std::fmt;

use forkless_keyspace::{Keyspace, Session};
use forkless_rdb::model::Entry;
use forkless_rdb::{Item, RdbError, RdbReader};

/// Entries handed to [`Keyspace::load`] at once.
const BATCH: usize = 4096;

/// What a [`load`] read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LoadStats {
    /// Entries of the RDB part.
    pub rdb_entries: u64,
    /// Commands of the RESP part (deltas; `SELECT` counted, `MULTI`/`EXEC` not).
    pub delta_commands: u64,
}

/// Why a [`load`] failed. Byte offsets count from the start of the loaded bytes.
#[derive(Debug)]
pub enum LoadError {
    /// The RDB header is bad.
    Header(RdbError),
    /// The RDB part is bad at byte `at`.
    Rdb {
        /// Offset of the item that failed to read.
        at: u64,
        /// The reader's error.
        source: RdbError,
    },
    /// The keyspace refused an entry of the RDB part.
    Keyspace(forkless_keyspace::LoadError),
    /// The RESP part is malformed or truncated after byte `after`.
    Deltas {
        /// Offset just past the last complete command.
        after: usize,
        /// The scanner's error.
        source: forkless_resp::RespError,
    },
    /// A delta command failed.
    Command {
        /// Offset of the command.
        at: usize,
        /// Its name.
        name: String,
        /// The error reply, as `Debug` of the keyspace's reply.
        reply: String,
    },
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::Header(e) => write!(f, "RDB header: {e}"),
            LoadError::Rdb { at, source } => write!(f, "RDB part at byte {at}: {source}"),
            LoadError::Keyspace(e) => write!(f, "loading the RDB part: {e}"),
            LoadError::Deltas { after, source } => {
                write!(f, "delta stream malformed after byte {after}: {source:?}")
            }
            LoadError::Command { at, name, reply } => {
                write!(f, "delta command at byte {at} ({name}) failed: {reply}")
            }
        }
    }
}

impl std::error::Error for LoadError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            LoadError::Header(e) | LoadError::Rdb { source: e, .. } => Some(e),
            LoadError::Keyspace(e) => Some(e),
            LoadError::Deltas { source, .. } => Some(source),
            LoadError::Command { .. } => None,
        }
    }
}

/// Replay a snapshot's bytes (RDB, then optional RESP deltas) into `ks`, normally a fresh
/// keyspace; see the [module](self) for the rules.
pub fn load(bytes: &[u8], ks: &Keyspace) -> Result<LoadStats, LoadError> {
    let was_loading = ks.is_loading();
    ks.set_loading(true);
    let r = load_loading(bytes, ks);
    ks.set_loading(was_loading);
    r
}

fn load_loading(bytes: &[u8], ks: &Keyspace) -> Result<LoadStats, LoadError> {
    let mut rd = RdbReader::new(bytes).map_err(LoadError::Header)?;
    let mut stats = LoadStats::default();
    let mut batch: Vec<Entry> = Vec::with_capacity(BATCH);
    let flush = |batch: &mut Vec<Entry>, loaded: u64| -> Result<(), LoadError> {
        ks.load(std::mem::take(batch)).map_err(|mut e| {
            e.index += loaded as usize;
            LoadError::Keyspace(e)
        })
    };
    loop {
        let at = rd.offset();
        match rd.next_item() {
            Ok(Some(Item::Entry(e))) => {
                batch.push(e);
                stats.rdb_entries += 1;
                if batch.len() == BATCH {
                    flush(&mut batch, stats.rdb_entries - BATCH as u64)?;
                    batch.reserve(BATCH);
                }
            }
            Ok(Some(_)) => {}
            Ok(None) => break,
            Err(source) => return Err(LoadError::Rdb { at, source }),
        }
    }
    let pending = batch.len() as u64;
    flush(&mut batch, stats.rdb_entries - pending)?;
    let rest = rd.into_inner();
    let base = bytes.len() - rest.len();
    stats.delta_commands = apply_deltas(ks, rest, base)?;
    Ok(stats)
}

/// Replay RESP commands alone (a propagated log, an AOF's RESP part) into `ks` by the same
/// rules as the delta part of [`load`] (loading mode meanwhile); returns how many ran.
pub fn load_commands(resp: &[u8], ks: &Keyspace) -> Result<u64, LoadError> {
    let was_loading = ks.is_loading();
    ks.set_loading(true);
    let r = apply_deltas(ks, resp, 0);
    ks.set_loading(was_loading);
    r
}

/// Execute the RESP commands of `resp` (which starts at byte `base` of the loaded bytes).
fn apply_deltas(ks: &Keyspace, resp: &[u8], base: usize) -> Result<u64, LoadError> {
    let scan = forkless_resp::scan_commands(resp);
    if let Some(source) = scan.tail {
        return Err(LoadError::Deltas {
            after: base + scan.offset_after_last_complete,
            source,
        });
    }
    let mut session = Session::default();
    let mut n = 0;
    for it in scan.items {
        if let forkless_resp::Item::Command(argv) = it.item {
            let Some(name) = argv.first() else {
                continue; // `*0`: nothing to execute, as in Redis
            };
            if name.eq_ignore_ascii_case(b"multi") || name.eq_ignore_ascii_case(b"exec") {
                continue;
            }
            let r = ks.execute(&mut session, &argv);
            if r.is_error() {
                return Err(LoadError::Command {
                    at: base + it.start,
                    name: String::from_utf8_lossy(name).into_owned(),
                    reply: format!("{r:?}"),
                });
            }
            n += 1;
        }
    }
    Ok(n)
}
