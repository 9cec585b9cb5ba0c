//! lists commands (written by the TYPES helper).

use crate::command::CommandSpec;

/// The commands of this module (filled by the TYPES helper).
pub(crate) const COMMANDS: &[CommandSpec] = &[];
