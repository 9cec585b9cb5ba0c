//! The crate's one error type.

use std::fmt;
use std::io;

/// Everything that can go wrong reading or writing an RDB file.
///
/// Offsets are absolute byte offsets from the start of the RDB stream (the `R` in `REDIS`).
#[derive(Debug)]
#[non_exhaustive]
pub enum RdbError {
    /// An I/O error from the underlying reader or writer.
    Io(io::Error),
    /// The file does not start with `REDIS` + four digits.
    BadMagic {
        /// The first bytes that were found.
        found: Vec<u8>,
    },
    /// A version this crate does not read (or write).
    UnsupportedVersion(u32),
    /// The input ended where more was required.
    UnexpectedEof {
        /// Offset where the missing bytes should have started.
        offset: u64,
        /// What was being read.
        expected: String,
    },
    /// The bytes are not a valid RDB (bad opcode, bad length, invalid nested blob, ...).
    Corrupt {
        /// Offset of the offending item.
        offset: u64,
        /// Which key (when inside a key's value), for the error message.
        key: Option<Vec<u8>>,
        /// What is wrong.
        what: String,
    },
    /// The stored CRC-64 does not match the computed one.
    ChecksumMismatch {
        /// Offset of the 8-byte checksum field.
        offset: u64,
        /// Value stored in the file.
        stored: u64,
        /// Value computed over the file.
        computed: u64,
    },
    /// The writer was given something RDB cannot represent.
    InvalidInput(String),
}

impl fmt::Display for RdbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RdbError::Io(e) => write!(f, "I/O error: {e}"),
            RdbError::BadMagic { found } => {
                write!(f, "not an RDB file: expected \"REDIS\" and 4 version digits, found {:?}", String::from_utf8_lossy(found))
            }
            RdbError::UnsupportedVersion(v) => write!(f, "unsupported RDB version {v}"),
            RdbError::UnexpectedEof { offset, expected } => {
                write!(f, "unexpected end of file at offset {offset}: expected {expected}")
            }
            RdbError::Corrupt { offset, key, what } => {
                write!(f, "corrupt RDB at offset {offset}")?;
                if let Some(k) = key {
                    write!(f, " (key {:?})", String::from_utf8_lossy(k))?;
                }
                write!(f, ": {what}")
            }
            RdbError::ChecksumMismatch { offset, stored, computed } => write!(
                f,
                "RDB checksum mismatch at offset {offset}: stored {stored:#018x}, computed {computed:#018x}"
            ),
            RdbError::InvalidInput(s) => write!(f, "invalid input: {s}"),
        }
    }
}

impl std::error::Error for RdbError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            RdbError::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for RdbError {
    fn from(e: io::Error) -> Self {
        RdbError::Io(e)
    }
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, RdbError>;
