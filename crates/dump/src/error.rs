//! The crate's one error type.

use std::fmt;
use std::io;

/// Why a dump could not be read.
#[derive(Debug)]
#[non_exhaustive]
pub enum DumpError {
    /// Reading the input failed.
    Io(io::Error),
    /// A line is not valid JSON (or not valid UTF-8).
    Json {
        /// 1-based line number.
        line: usize,
        /// The parser's message.
        what: String,
    },
    /// A field is missing or has the wrong shape.
    Field {
        /// 1-based line number.
        line: usize,
        /// Path of the field, e.g. `value[2][1]`.
        field: String,
        /// What is wrong.
        what: String,
    },
    /// The same key appears twice in one database.
    DuplicateKey {
        /// 1-based line number of the second occurrence.
        line: usize,
        /// Database.
        db: u32,
        /// The key.
        key: Vec<u8>,
    },
}

impl fmt::Display for DumpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DumpError::Io(e) => write!(f, "I/O error: {e}"),
            DumpError::Json { line, what } => write!(f, "line {line}: invalid JSON: {what}"),
            DumpError::Field { line, field, what } => {
                write!(f, "line {line}: field `{field}`: {what}")
            }
            DumpError::DuplicateKey { line, db, key } => {
                write!(
                    f,
                    "line {line}: duplicate key {} in db {db}",
                    crate::show_bytes(key)
                )
            }
        }
    }
}

impl std::error::Error for DumpError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            DumpError::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for DumpError {
    fn from(e: io::Error) -> Self {
        DumpError::Io(e)
    }
}
