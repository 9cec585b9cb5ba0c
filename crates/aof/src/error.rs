//! The crate's one error type: what went wrong, naming the file, line or byte offset involved.
//!
//! Shape after redb's `src/error.rs`: one `#[non_exhaustive]` enum, a hand-written `Display`,
//! `From<io::Error>`. A failed writer stays failed ([`AofError::WriterFailed`], like redb's
//! `PreviousIo` and Redis's `MISCONF`) until a retry succeeds.

use std::fmt;
use std::io;

use forkless_snapshot::SnapshotError;

/// The error a [`LoadTarget`](crate::LoadTarget) returns: any error type (the keyspace's, a
/// function library's), kept as the `source()` of [`AofError::Apply`]. A `String` or `&str`
/// converts into it with `.into()`.
pub type TargetError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A function library of an RDB base that the target refused: its error, displayed after
/// `function library: ` (the wording of [`AofError::Apply`] for libraries).
#[derive(Debug)]
pub struct FunctionLibraryError(pub TargetError);

impl fmt::Display for FunctionLibraryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "function library: {}", self.0)
    }
}

impl std::error::Error for FunctionLibraryError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(self.0.as_ref())
    }
}

/// Everything that can go wrong reading, checking or writing a multi-part AOF.
#[derive(Debug)]
#[non_exhaustive]
pub enum AofError {
    /// An I/O error, with what was being done (`"reading appendonly.aof.1.incr.aof"`).
    Io {
        /// What was being done, and on which file.
        context: String,
        /// The underlying error.
        source: io::Error,
    },
    /// The manifest cannot be parsed (`aofLoadManifestFromFile` rules).
    Manifest {
        /// 1-based line number, 0 when the error is about the whole file.
        line: usize,
        /// What is wrong.
        what: String,
    },
    /// A base or incr file holds bytes that can never be a valid AOF.
    Corrupt {
        /// The file's name (as listed in the manifest).
        file: String,
        /// Byte offset in that file.
        offset: u64,
        /// What is wrong.
        what: String,
    },
    /// A file other than the last one ends inside a command (or inside MULTI ... EXEC).
    Truncated {
        /// The file's name.
        file: String,
        /// Offset of the unfinished command.
        offset: u64,
    },
    /// The RDB part of a base file is invalid.
    Rdb {
        /// The file's name.
        file: String,
        /// The RDB reader's error text (it names the offset).
        what: String,
    },
    /// A command (or an RDB base's keys or function library) could not be applied to the
    /// [`LoadTarget`](crate::LoadTarget).
    Apply {
        /// The file's name.
        file: String,
        /// Offset of the command (0 for a base's keys and libraries).
        offset: u64,
        /// The target's error.
        source: TargetError,
    },
    /// The writer refuses writes after a write or fsync error, until a retry succeeds.
    WriterFailed(String),
    /// The forkless rewrite (or the start of the AOF under a live keyspace) failed for a reason
    /// other than its snapshot's error (the old base and incr files stay in use).
    Rewrite(String),
    /// The snapshot of a forkless rewrite (or of the start of the AOF under a live keyspace)
    /// failed (the old base and incr files stay in use).
    RewriteSnapshot(SnapshotError),
    /// The bounded queue is full and the writer is configured to fail fast.
    QueueFull {
        /// Bytes queued.
        queued: usize,
        /// Capacity in bytes.
        capacity: usize,
    },
    /// The writer has been shut down.
    Closed,
    /// A caller-supplied argument cannot be used (e.g. a tag holding a line break).
    InvalidInput(String),
}

impl AofError {
    /// An [`AofError::Io`] with context.
    pub fn io(context: impl Into<String>, source: io::Error) -> AofError {
        AofError::Io {
            context: context.into(),
            source,
        }
    }
}

impl forkless_durable::IoContext for AofError {
    fn from_io(context: String, source: io::Error) -> AofError {
        AofError::io(context, source)
    }
}

impl fmt::Display for AofError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AofError::Io { context, source } => write!(f, "I/O error {context}: {source}"),
            AofError::Manifest { line: 0, what } => write!(f, "invalid AOF manifest: {what}"),
            AofError::Manifest { line, what } => write!(f, "invalid AOF manifest at line {line}: {what}"),
            AofError::Corrupt { file, offset, what } => {
                write!(f, "bad AOF format in {file} at offset {offset}: {what}")
            }
            AofError::Truncated { file, offset } => write!(
                f,
                "{file} ends inside the command at offset {offset}, but it is not the last file \
                 (only the last file may be truncated)"
            ),
            AofError::Rdb { file, what } => write!(f, "bad RDB base {file}: {what}"),
            AofError::Apply { file, offset, source } => {
                write!(f, "cannot apply the command in {file} at offset {offset}: {source}")
            }
            AofError::Rewrite(why) => write!(f, "AOF rewrite failed: {why}"),
            AofError::RewriteSnapshot(e) => write!(f, "AOF rewrite failed: {e}"),
            AofError::WriterFailed(why) => write!(
                f,
                "MISCONF AOF writes are refused after an I/O error ({why}); they resume once a retry succeeds"
            ),
            AofError::QueueFull { queued, capacity } => {
                write!(f, "AOF queue full ({queued} of {capacity} bytes queued): write refused")
            }
            AofError::Closed => write!(f, "the AOF writer is closed"),
            AofError::InvalidInput(s) => write!(f, "invalid input: {s}"),
        }
    }
}

impl std::error::Error for AofError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            AofError::Io { source, .. } => Some(source),
            AofError::Apply { source, .. } => Some(source.as_ref()),
            AofError::RewriteSnapshot(e) => Some(e),
            _ => None,
        }
    }
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, AofError>;
