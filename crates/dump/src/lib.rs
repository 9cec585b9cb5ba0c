//! The canonical JSON Lines dump of a keyspace (`docs/keyspace-jsonl.md`): one format
//! to say what a dataset contains, independent of how it is stored, so RDB files, AOFs, our
//! engine's memory and a real redis-server can be compared as parsed values.
//!
//! ```text
//! {"db":0,"key":"counter","type":"string","value":"42","expire_at_ms":null}\n
//! {"db":3,"key":{"base64":"AP8="},"type":"zset","value":[["bob",-1.5],["amy","inf"]],"expire_at_ms":null}\n
//! ```
//!
//! * [`write_jsonl`] writes entries in canonical order whatever order they come in (it sorts a
//!   view of references; the input is not modified or copied).
//! * [`read_jsonl`] parses a dump, naming the line and field of any error, and returns the
//!   entries canonicalized ([`forkless_rdb::model::canonicalize`]), so two dumps are equal exactly
//!   when the returned vectors compare equal.
//! * [`diff`] lists human-readable differences between two keyspaces (for test failures).
#![forbid(unsafe_code)]

mod diff;
mod error;
mod read;
mod stream;
mod write;

pub use diff::{diff, MAX_DIFF_LINES};
pub use error::DumpError;
pub use read::{parse_line, read_jsonl};
pub use write::{write_entry_line, write_jsonl};

/// Text of a bytes value for messages: quoted UTF-8 when valid, else `b"..."` with escapes.
pub fn show_bytes(b: &[u8]) -> String {
    match std::str::from_utf8(b) {
        Ok(s) => format!("{s:?}"),
        Err(_) => format!("b\"{}\"", b.escape_ascii()),
    }
}
