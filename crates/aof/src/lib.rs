//! Redis 7.0 compatible multi-part append-only file (AOF) for forkless.
#![forbid(unsafe_code)]

mod error;
pub mod manifest;
pub mod scan;
pub mod sds;

pub use error::{AofError, Result};
