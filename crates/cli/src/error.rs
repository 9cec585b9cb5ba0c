//! The error every subcommand returns: what was being done, and what went wrong.

use std::fmt;

/// A failure of a subcommand, printed by `main` as `forkless: <context>: <message>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CliError {
    /// What was being done (`reading dump.rdb`, `writing out.rdb`, ...).
    pub context: String,
    /// The error's own message.
    pub message: String,
}

impl CliError {
    /// An error `err` that happened while doing `context`.
    pub fn new(context: impl Into<String>, err: impl fmt::Display) -> Self {
        CliError {
            context: context.into(),
            message: err.to_string(),
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.context, self.message)
    }
}

impl std::error::Error for CliError {}
