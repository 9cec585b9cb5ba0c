//! strings commands.

use crate::command::CommandSpec;

/// The commands of this module.
pub(crate) const COMMANDS: &[CommandSpec] = &[];
