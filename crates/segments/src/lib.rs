//! Segmented persistence for forkless: a log of AOF segments that are closed and never
//! rewritten, forkless snapshots that record exactly where in that log they stand, recovery
//! from the newest good snapshot plus the log after it, retention, and point-in-time recovery.
//!
//! # Problem
//! Redis's AOF grows until a rewrite replaces it, and the rewrite is an I/O burst that also
//! drops the history (timestamps, source annotations) it replaces. Here no rewrite ever runs:
//! the writer rolls to a new segment at a size or age threshold, snapshots run beside it, and
//! old segments and snapshots are simply deleted by a retention policy.
//!
//! # Layout (DESIGN.md section 7 byte by byte)
//! ```text
//! DIR/
//!   segments.manifest        what is live (see [`manifest`]), replaced atomically
//!   segment.<n>.aof          RESP commands with #TS:<secs> / #<tag> lines; closed ones fsynced, never written again
//!   snapshot.<n>.rdb         RDB v10 (point-in-time) or RDB v10 + RESP deltas (converging);
//!                            aux fields forkless-cut-{segment,offset,db,time}, forkless-snapshot-mode
//! ```
//!
//! # Parts
//! * [`manifest`]: the manifest format, parse and atomic persist.
//! * [`SegmentDir`]: open (recover, continue in a new segment), the rolling writer, snapshots
//!   with their cut, retention.
//! * [`recover`]: recovery and point-in-time recovery (read-only).
//! * [`check()`]: `forkless segments check`.
//! * [`export()`]: a Redis 7 multi-part AOF directory equal to the recovery.
#![forbid(unsafe_code)]

pub mod check;
mod dir;
mod error;
pub mod export;
pub mod manifest;
pub mod recover;

pub use check::{check, CheckReport};
pub use dir::{
    apply_retention, is_segments_dir, SegmentDir, SegmentOptions, SnapshotInfo, LOCK_NAME,
};
pub use error::{Result, SegError};
pub use export::{export, ExportReport};
pub use manifest::{SegManifest, SnapshotEntry};
pub use recover::{recover, RecoverOptions, RecoveryReport, StartPoint};
