//! The forkless snapshot: a worker thread walks the keyspace bucket by bucket while writers go
//! on; no `fork()`, no stop-the-world copy.
//!
//! * **Converging mode** (default): buckets not yet visited are streamed as RDB; writes that land
//!   in visited buckets are captured as RESP deltas appended after the RDB (Redis's "RDB preamble
//!   AOF" layout). Replaying the output reproduces exactly the keyspace at the end barrier.
//! * **Point-in-time mode**: a bucket is handed to the worker before its first write. The output
//!   is a pure RDB equal to the keyspace at the start barrier.
//!
//! The per-bucket protocol (states, hand-off rules, lock order) is documented in [`observer`];
//! the walk and the barriers in [`worker`]; the serializer threads in `parallel`; durable files in [`output`] (`forkless-durable`); the delta stream in
//! [`delta`]; loading a snapshot's output back into a keyspace in [`load()`] (the one loader of
//! the RDB + RESP deltas layout, also used by tests, the loom models and the benchmarks). `DESIGN.md` section 3 states the guarantees and why they hold.
//!
//! ```
//! use std::sync::Arc;
//! use forkless_keyspace::{Config, Keyspace, Session};
//! use forkless_snapshot::{install, run_snapshot, Mode, Progress, SnapshotOptions};
//! use std::sync::atomic::AtomicBool;
//!
//! let mut ks = Keyspace::new(Config::seeded(1));
//! let obs = install(&mut ks);
//! ks.execute(&mut Session::default(), &[b"SET", b"k", b"v"]);
//! let opts = SnapshotOptions { mode: Mode::PointInTime, ..Default::default() };
//! let ticket = obs.try_begin().unwrap();
//! let (rdb, result) =
//!     run_snapshot(&ks, ticket, &opts, Vec::new(), &Progress::default(), &AtomicBool::new(false))
//!         .unwrap();
//! assert_eq!(result.keys, 1);
//! assert!(rdb.starts_with(b"REDIS0010"));
//! ```
#![forbid(unsafe_code)]

pub mod delta;
mod handle;
mod load;
pub mod observer;
mod parallel;
pub mod worker;

/// Durable output files (the `forkless-durable` crate).
pub use forkless_durable as output;

pub use handle::{snapshot_to_file, start_snapshot, SnapshotHandle};
pub use load::{load, load_commands, LoadError, LoadStats};
pub use observer::{Mode, ParseModeError, SnapshotObserver};
pub use worker::{
    default_serialize_threads, run_snapshot, Barrier, EncodeHook, Progress, SnapshotError,
    SnapshotOptions, SnapshotResult, Ticket, TrailerAux,
};

use forkless_keyspace::Keyspace;
use forkless_sync::Arc;

/// Create the snapshot observer for `ks` and register it (before sharing the keyspace).
pub fn install(ks: &mut Keyspace) -> Arc<SnapshotObserver> {
    let obs = Arc::new(SnapshotObserver::new(ks.num_shards(), ks.databases()));
    ks.set_observer(obs.clone());
    obs
}
