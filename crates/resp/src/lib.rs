//! RESP2, the Redis serialization protocol: command encoding, an incremental command parser that
//! understands AOF annotations, and RESP2 replies.
//!
//! The wire format (<https://redis.io/docs/latest/develop/reference/protocol-spec/>), byte by byte:
//!
//! ```text
//! command   = "*" count CRLF { "$" len CRLF <len bytes> CRLF }     count >= 1, 0 <= len <= 512 MiB
//! annotation= "#" <bytes without LF> LF          (AOF only: "#TS:<unix secs>\r\n", Redis 7.0 aof.c)
//! reply     = "+" line CRLF | "-" line CRLF | ":" int64 CRLF
//!           | "$" len CRLF <len bytes> CRLF | "$-1" CRLF
//!           | "*" count CRLF {reply} | "*-1" CRLF
//! ```
//!
//! All numbers are ASCII decimal; lengths and counts are checked before anything is allocated for
//! them, and no allocation is ever sized by a claimed length beyond what the bytes present can
//! hold. Parsers report [`RespError::Protocol`] with the byte offset of the offending item, and
//! tell "more bytes needed" apart from malformed input.
//!
//! * [`encode_command`] / [`encode_command_iter`]: write a command into the caller's buffer.
//! * [`CommandParser`]: resumable parser over a growing buffer; [`scan_commands`] scans a whole
//!   buffer and says where the last complete command ends (AOF truncation repair).
//! * [`Reply`]: RESP2 replies, [`Reply::encode`] and [`parse_reply`].
//! * [`sds`]: Redis's `sdssplitargs` / `sdscatrepr` (AOF manifest lines, Lua shebang lines).
#![forbid(unsafe_code)]

mod command;
mod encode;
mod error;
mod num;
mod reply;
pub mod sds;

pub use command::{
    annotation_timestamp, scan_commands, Argv, CommandParser, Item, Parsed, Scan, Scanned,
};
pub use encode::{
    encode_bulk, encode_command, encode_command_iter, encode_integer, write_i64, write_u64,
};
pub use error::RespError;
pub use reply::{parse_reply, ParsedReply, Reply, MAX_REPLY_DEPTH};

/// Largest bulk string accepted (Redis's default `proto-max-bulk-len`, 512 MiB).
pub const MAX_BULK_LEN: usize = 512 * 1024 * 1024;

/// Largest multibulk count accepted (Redis 7.0 refuses counts above `INT_MAX`).
pub const MAX_MULTIBULK_COUNT: usize = i32::MAX as usize;

/// Longest AOF annotation line, terminator included (Redis's `AOF_ANNOTATION_LINE_MAX_LEN`).
pub const MAX_ANNOTATION_LEN: usize = 1024;
