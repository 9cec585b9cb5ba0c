//! Redis-compatible RDB codec: a streaming reader for versions 1 to 11 and a streaming writer of
//! version 10 (Redis 7.0), byte-compatible with redis-server 7.0.15.
//!
//! The file layout, byte by byte, is in `DESIGN.md` ("RDB") and in [`constants`].
//!
//! * [`RdbReader`] reads any `io::Read` item by item ([`Item`]); it never holds the whole file,
//!   validates every nested blob (ziplist, listpack, intset, zipmap) as Redis's deep sanitization
//!   does, verifies the CRC, and reads nothing past the trailing checksum (so an RDB-preamble AOF
//!   can go on with RESP from the same reader).
//! * [`RdbWriter`] writes to any `io::Write` with a running CRC, choosing encodings the way Redis
//!   7.0 does with its default configuration ([`EncodingLimits`]).
#![forbid(unsafe_code)]

pub mod constants;
pub mod crc;
pub mod dump;
mod error;
pub mod lzf;
pub mod model;

// Nested blob formats (parse + validate; builders for what the writer emits).
pub mod intset;
pub mod listpack;
pub mod stream;
pub mod ziplist;
pub mod zipmap;

mod reader;
mod writer;

pub use error::{RdbError, Result};
pub use model::{Bytes, Entry, KeyAccess, Value};
pub use reader::*;
pub use writer::*;
