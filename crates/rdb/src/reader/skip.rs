//! Values the model cannot hold — module values — parsed just far enough to skip
//! them byte-exactly, so the keys after them still load.
//!
//! Layouts (Redis `src/rdb.c` 7.2, `rdbLoadCheckModuleValue`; lengths are rdb lengths):
//!
//! ```text
//! module value (type 7): <module id> then opcodes until EOF (0):
//!   1 SINT / 2 UINT: <length>   3 FLOAT: 4 bytes   4 DOUBLE: 8 bytes   5 STRING: <string>
//! module aux (opcode 247): <module id> <when opcode = 2> <when> then the same opcode stream
//! ```
//!
//! Every loop consumes input on each turn, so a huge count ends at the end of the input; nothing
//! is allocated from a count.

use std::io::Read;

use super::source::Source;
use crate::constants::*;
use crate::error::{RdbError, Result};

fn corrupt(offset: u64, what: String) -> RdbError {
    RdbError::Corrupt {
        offset,
        key: None,
        what,
    }
}

/// Skip a module opcode stream up to and including its EOF opcode.
pub(crate) fn skip_module_opcodes<R: Read>(src: &mut Source<R>) -> Result<()> {
    loop {
        let at = src.offset();
        match src.read_len("module opcode")? {
            MODULE_OPCODE_EOF => return Ok(()),
            MODULE_OPCODE_SINT | MODULE_OPCODE_UINT => {
                src.read_len("module integer")?;
            }
            MODULE_OPCODE_FLOAT => src.skip(4, "module float")?,
            MODULE_OPCODE_DOUBLE => src.skip(8, "module double")?,
            MODULE_OPCODE_STRING => src.skip_string("module string")?,
            op => return Err(corrupt(at, format!("unknown module opcode {op}"))),
        }
    }
}

/// Skip a module value (type 7): its module id, then its opcode stream. Returns the module id.
pub(crate) fn skip_module_value<R: Read>(src: &mut Source<R>) -> Result<u64> {
    let id = src.read_len("module id")?;
    skip_module_opcodes(src)?;
    Ok(id)
}

/// Skip a MODULE_AUX record (after its opcode). Returns the module id.
pub(crate) fn skip_module_aux<R: Read>(src: &mut Source<R>) -> Result<u64> {
    let id = src.read_len("module aux id")?;
    let at = src.offset();
    let when_opcode = src.read_len("module aux when opcode")?;
    if when_opcode != MODULE_OPCODE_UINT {
        return Err(corrupt(
            at,
            format!("module aux 'when' opcode is {when_opcode}, expected {MODULE_OPCODE_UINT}"),
        ));
    }
    src.read_len("module aux when")?;
    skip_module_opcodes(src)?;
    Ok(id)
}
