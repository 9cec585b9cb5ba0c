//! The crate's one error type: malformed input versus input that merely stops early.

use std::fmt;

/// Why bytes could not be parsed as RESP.
///
/// Offsets are byte offsets into the buffer given to the parser.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RespError {
    /// The input ends inside the item that starts at `offset`: more bytes would complete it.
    /// Only reported where the caller said the input is finished ([`crate::scan_commands`]);
    /// the incremental parsers answer `Incomplete` instead of failing.
    Incomplete {
        /// Start of the unfinished item.
        offset: usize,
    },
    /// The bytes can never become valid RESP, whatever follows.
    Protocol {
        /// Offset of the offending byte or line.
        offset: usize,
        /// What is wrong.
        what: String,
    },
}

impl RespError {
    /// Offset the error refers to.
    pub fn offset(&self) -> usize {
        match self {
            RespError::Incomplete { offset } | RespError::Protocol { offset, .. } => *offset,
        }
    }

    pub(crate) fn protocol(offset: usize, what: impl Into<String>) -> Self {
        RespError::Protocol {
            offset,
            what: what.into(),
        }
    }
}

impl fmt::Display for RespError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RespError::Incomplete { offset } => {
                write!(
                    f,
                    "RESP input ends inside the item starting at offset {offset}"
                )
            }
            RespError::Protocol { offset, what } => {
                write!(f, "RESP protocol error at offset {offset}: {what}")
            }
        }
    }
}

impl std::error::Error for RespError {}
