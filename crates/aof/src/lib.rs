//! Redis 7.0 compatible multi-part append-only file (AOF) for forkless.
#![forbid(unsafe_code)]

mod engine;
mod error;
pub mod load;
pub mod manifest;
pub mod scan;
pub mod sds;

pub use engine::KeyspaceTarget;
pub use error::{AofError, Result};
pub use load::{load_dir, load_manifest, LoadOptions, LoadReport, LoadTarget};
pub use manifest::Manifest;
