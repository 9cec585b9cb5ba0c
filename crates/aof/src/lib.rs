//! Redis 7.0 compatible multi-part append-only file (AOF) for forkless.
#![forbid(unsafe_code)]

pub mod check;
mod dir;
mod engine;
mod error;
pub mod io;
pub mod load;
pub mod manifest;
pub mod scan;
pub mod sds;
pub mod writer;

pub use check::{check_dir, CheckOptions, CheckReport, FileCheck, FileStatus};
pub use dir::{resp_base, write_base, AofDir, AofDirOptions};
pub use engine::KeyspaceTarget;
pub use error::{AofError, Result};
pub use io::{AofIo, AofStorage, DirStorage, FileIo, MemFile, MemStorage, SyncHandle};
pub use load::{load_dir, load_manifest, LoadOptions, LoadReport, LoadTarget};
pub use manifest::Manifest;
pub use writer::{AofMetrics, AofWriter, FsyncPolicy, OnError, Rotation, WhenFull, WriterOptions};
