//! The crate's one error type: what went wrong, naming the file and byte offset involved.

use std::fmt;
use std::io;

use forkless_aof::AofError;
use forkless_snapshot::SnapshotError;

/// Everything that can go wrong with a segments directory.
#[derive(Debug)]
#[non_exhaustive]
pub enum SegError {
    /// An I/O error, with what was being done and on which file.
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        source: io::Error,
    },
    /// The manifest cannot be used.
    Manifest {
        /// The manifest file.
        file: String,
        /// 1-based line (0: the whole file).
        line: usize,
        /// What is wrong.
        what: String,
    },
    /// A segment or snapshot is corrupt, truncated where it may not be, or missing.
    Corrupt {
        /// The file's name.
        file: String,
        /// Byte offset in it.
        offset: u64,
        /// What is wrong.
        what: String,
    },
    /// The chain of segments after a snapshot's cut has a hole.
    MissingSegment {
        /// The sequence number that is missing.
        seq: forkless_aof::FileSeq,
        /// Who needs it.
        needed_by: String,
    },
    /// No retained snapshot (or the log from its first segment) can be recovered.
    NoRecoveryPoint(String),
    /// From the AOF layer (writer, loading).
    Aof(AofError),
    /// The snapshot failed.
    Snapshot(SnapshotError),
    /// A snapshot finished without recording its cut (no barrier ran).
    NoCut,
    /// A caller-supplied argument cannot be used.
    InvalidInput(String),
}

impl SegError {
    /// An [`SegError::Io`] with context.
    pub fn io(context: impl Into<String>, source: io::Error) -> SegError {
        SegError::Io {
            context: context.into(),
            source,
        }
    }
}

impl forkless_durable::IoContext for SegError {
    fn from_io(context: String, source: io::Error) -> SegError {
        SegError::io(context, source)
    }
}

impl fmt::Display for SegError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SegError::Io { context, source } => write!(f, "{context}: {source}"),
            SegError::Manifest {
                file,
                line: 0,
                what,
            } => write!(f, "manifest {file}: {what}"),
            SegError::Manifest { file, line, what } => {
                write!(f, "manifest {file}, line {line}: {what}")
            }
            SegError::Corrupt { file, offset, what } => {
                write!(f, "{file} at offset {offset}: {what}")
            }
            SegError::MissingSegment { seq, needed_by } => {
                write!(
                    f,
                    "segment {seq} is missing from the chain (needed by {needed_by})"
                )
            }
            SegError::NoRecoveryPoint(w) => write!(f, "nothing to recover from: {w}"),
            SegError::Aof(e) => write!(f, "{e}"),
            SegError::Snapshot(e) => write!(f, "snapshot failed: {e}"),
            SegError::NoCut => write!(f, "snapshot failed: the barrier recorded no cut"),
            SegError::InvalidInput(w) => write!(f, "{w}"),
        }
    }
}

impl std::error::Error for SegError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SegError::Io { source, .. } => Some(source),
            SegError::Aof(e) => Some(e),
            SegError::Snapshot(e) => Some(e),
            _ => None,
        }
    }
}

impl From<AofError> for SegError {
    fn from(e: AofError) -> SegError {
        SegError::Aof(e)
    }
}

/// The crate's result type.
pub type Result<T> = std::result::Result<T, SegError>;
