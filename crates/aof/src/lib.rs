//! Redis 7.0 compatible multi-part append-only file (AOF) for forkless.
//!
//! # Problem
//! Every write of the keyspace must be logged so that a restart rebuilds the same data, in the
//! exact on-disk layout of Redis 7.0 (so `redis-server` 7.0 loads what forkless writes, and the
//! other way round), without stalling the threads that execute commands.
//!
//! # Layout on disk (Redis 7.0 `src/aof.c`)
//! ```text
//! appendonlydir/
//!   appendonly.aof.manifest          file <name> seq <n> type b|h|i      (one line per file)
//!   appendonly.aof.1.base.rdb        "REDIS0010" ... 0xFF <crc64 LE>     (aof-base aux = 1)
//!    or appendonly.aof.1.base.aof    RESP commands
//!   appendonly.aof.1.incr.aof        { "#TS:<secs>\r\n" | "#<tag>\r\n" | "*<n>\r\n" {"$<len>\r\n" <bytes> "\r\n"} }
//! ```
//!
//! # Parts
//! * [`manifest`]: parse (exactly `aofLoadManifestFromFile`, quoting by
//!   [`forkless_resp::sds`]) and atomic persist (temp, fsync, rename, directory fsync); the rewrite's manifest switch.
//! * [`scan`]: the RESP/annotation reader, "incomplete" versus "corrupt", offsets.
//! * [`load`]: load a directory into a [`LoadTarget`] (the engine: [`KeyspaceTarget`]), with
//!   truncation of the last file, MULTI rollback and recovery to a timestamp.
//! * [`check`]: `redis-check-aof` (check, `--fix`, `--truncate-to-timestamp`).
//! * [`writer`]: the asynchronous writer thread with the `always` / `everysec` / `no` fsync
//!   policies, group commit, a bounded queue, sticky errors and rotation; it is the keyspace's
//!   `PropagationSink`.
//! * [`io`]: the small I/O trait under the writer, with real, crash-simulating and
//!   fault-injecting backends.
//! * [`AofDir`]: a directory for a live keyspace: create, open-and-continue, install a rewrite.
//! * [`rewrite`]: the forkless rewrite (a converging snapshot, the incr switch at its barrier).
//! * [`position`]: the log's "where" ([`LogPosition`], [`FileSeq`]), shared with the segments
//!   layout.
//! * [`history`]: the cut each base records, history generations kept across rewrites, and
//!   point-in-time recovery across them ([`load_dir_at`]).
#![forbid(unsafe_code)]

pub mod auxfields;
pub mod check;
mod dir;
mod engine;
mod error;
pub mod history;
pub mod io;
pub mod live;
pub mod load;
pub mod manifest;
pub mod position;
pub mod rewrite;
pub mod scan;
pub mod writer;

pub use check::{check_dir, CheckOptions, CheckReport, FileCheck, FileStatus, GenerationCheck};
pub use dir::{resp_base, stream_commands, write_base, AofDir, AofDirOptions};
pub use engine::KeyspaceTarget;
pub use error::{AofError, FunctionLibraryError, Result, TargetError};
pub use history::{load_dir_at, BaseCut, Generation, GenerationStatus, PitrReport};
pub use io::{AofIo, AofStorage, DirStorage, FileIo, MemFile, MemStorage, SyncHandle};
pub use live::start_live;
pub use load::{load_dir, load_file_from, load_manifest, LoadOptions, LoadReport, LoadTarget};
pub use manifest::Manifest;
pub use position::{FileSeq, LogPosition};
pub use rewrite::{rewrite, rewrite_cancellable};
pub use writer::{
    AofMetrics, AofWriter, FileNamer, FsyncPolicy, IoWrapper, OnError, ParseFsyncError, Rotation,
    WhenFull, WriterOptions,
};
