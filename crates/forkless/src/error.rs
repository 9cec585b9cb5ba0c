//! The crate's one error type.

use std::fmt;

use crate::config::ConfigError;

/// What went wrong in the engine.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// A bad option or value.
    Config(ConfigError),
    /// The AOF directory or writer.
    Aof(forkless_aof::AofError),
    /// The segments directory.
    Segments(forkless_segments::SegError),
    /// A snapshot failed.
    Snapshot(forkless_snapshot::SnapshotError),
    /// Loading the snapshot file failed (`file`, why).
    Load {
        /// The file.
        file: String,
        /// Why.
        what: String,
    },
    /// File system error (what we were doing, the error).
    Io {
        /// What the engine was doing.
        context: String,
        /// The error.
        source: std::io::Error,
    },
    /// A command answered with an error reply (its full text, e.g. `WRONGTYPE ...`).
    Command(String),
    /// Writes are refused because persistence is failing (Redis's `MISCONF`).
    Misconf(String),
    /// A snapshot or rewrite is already running.
    InProgress(&'static str),
    /// The operation does not apply to this persistence mode.
    Unsupported(String),
    /// The engine was shut down.
    Closed,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Config(e) => write!(f, "configuration: {e}"),
            Error::Aof(e) => write!(f, "AOF: {e}"),
            Error::Segments(e) => write!(f, "segments: {e}"),
            Error::Snapshot(e) => write!(f, "{e}"),
            Error::Load { file, what } => write!(f, "loading {file}: {what}"),
            Error::Io { context, source } => write!(f, "{context}: {source}"),
            Error::Command(e) => f.write_str(e),
            Error::Misconf(e) => f.write_str(e),
            Error::InProgress(what) => write!(f, "{what} already in progress"),
            Error::Unsupported(what) => f.write_str(what),
            Error::Closed => f.write_str("the engine is shut down"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Config(e) => Some(e),
            Error::Aof(e) => Some(e),
            Error::Segments(e) => Some(e),
            Error::Snapshot(e) => Some(e),
            Error::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl From<ConfigError> for Error {
    fn from(e: ConfigError) -> Self {
        Error::Config(e)
    }
}

impl From<forkless_aof::AofError> for Error {
    fn from(e: forkless_aof::AofError) -> Self {
        Error::Aof(e)
    }
}

impl From<forkless_segments::SegError> for Error {
    fn from(e: forkless_segments::SegError) -> Self {
        Error::Segments(e)
    }
}

impl From<forkless_snapshot::SnapshotError> for Error {
    fn from(e: forkless_snapshot::SnapshotError) -> Self {
        Error::Snapshot(e)
    }
}

/// `Result` with [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
    let context = context.into();
    move |source| Error::Io { context, source }
}
