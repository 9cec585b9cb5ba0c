//! Values the model cannot hold — streams and module values — parsed just far enough to skip
//! them byte-exactly, so the keys after them still load.
//!
//! Layouts (Redis `src/rdb.c` 7.2, `rdbLoadObject` stream branch and `rdbLoadCheckModuleValue`;
//! lengths are rdb lengths, times are u64 little-endian milliseconds, IDs are 16 raw bytes):
//!
//! ```text
//! stream (types 15, 19, 21):
//!   <n listpacks> n x ( <string: 16-byte master ID> <string: listpack> )
//!   <length> <last id ms> <last id seq>
//!   [v2+: <first id ms> <first id seq> <max deleted ms> <max deleted seq> <entries added>]
//!   <n groups> n x ( <string name> <id ms> <id seq> [v2+: <entries read>]
//!                    <n pel> n x ( <16-byte id> <u64 delivery time> <delivery count> )
//!                    <n consumers> n x ( <string name> <u64 seen time> [v3: <u64 active time>]
//!                                        <n pel> n x <16-byte id> ) )
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

/// Skip a stream value of type `rdb_type` (15, 19 or 21), validating its listpacks.
pub(crate) fn skip_stream<R: Read>(src: &mut Source<R>, rdb_type: u8) -> Result<()> {
    let listpacks = src.read_len("stream listpack count")?;
    for _ in 0..listpacks {
        let at = src.offset();
        let id = src.read_string("stream master ID")?;
        if id.len() != 16 {
            return Err(corrupt(
                at,
                format!(
                    "stream node key is {} bytes, not a 16-byte stream ID",
                    id.len()
                ),
            ));
        }
        let at = src.offset();
        let lp = src.read_string("stream listpack")?;
        let elems = crate::listpack::parse(&lp)
            .map_err(|e| corrupt(at, format!("stream listpack integrity check failed: {e}")))?;
        if elems.is_empty() {
            return Err(corrupt(at, "empty listpack inside stream".to_string()));
        }
    }
    src.read_len("stream length")?;
    src.read_len("stream last ID")?;
    src.read_len("stream last ID")?;
    if rdb_type >= TYPE_STREAM_LISTPACKS_2 {
        for _ in 0..5 {
            src.read_len("stream first/max-deleted ID or entries added")?;
        }
    }
    let groups = src.read_len("stream consumer group count")?;
    for _ in 0..groups {
        src.skip_string("stream consumer group name")?;
        src.read_len("stream consumer group ID")?;
        src.read_len("stream consumer group ID")?;
        if rdb_type >= TYPE_STREAM_LISTPACKS_2 {
            src.read_len("stream consumer group offset")?;
        }
        let pel = src.read_len("stream PEL size")?;
        for _ in 0..pel {
            src.skip(16 + 8, "stream PEL entry")?;
            src.read_len("stream PEL delivery count")?;
        }
        let consumers = src.read_len("stream consumer count")?;
        for _ in 0..consumers {
            src.skip_string("stream consumer name")?;
            src.skip(8, "stream consumer seen time")?;
            if rdb_type >= TYPE_STREAM_LISTPACKS_3 {
                src.skip(8, "stream consumer active time")?;
            }
            let pel = src.read_len("stream consumer PEL size")?;
            for _ in 0..pel {
                src.skip(16, "stream consumer PEL entry")?;
            }
        }
    }
    Ok(())
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
