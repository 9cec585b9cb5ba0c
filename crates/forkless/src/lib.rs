//! forkless: a Redis-compatible keyspace in memory, persisted without `fork()`, behind one
//! handle.
//!
//! [`Engine::open`] creates or recovers a directory (AOF, snapshot file or segments, as the
//! [`Config`] says: redis.conf syntax and defaults), starts the threads that keep it healthy
//! (active expiry, rehashing, snapshots on the `save` rules, AOF rewrites on the growth rule,
//! durability notifications) and returns a cloneable, thread-safe [`Engine`]. Commands go
//! through [`Engine::execute`] (or the typed helpers, or [`Engine::transaction`]); dropping the
//! last handle (or [`Engine::shutdown`]) flushes the log and joins every thread.
//!
//! ```
//! use std::time::Duration;
//! use forkless::{Config, Engine};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let mut config = Config::default();
//! config.load_str("appendonly yes\nappendfsync everysec\nsave \"60 1000\"\n").unwrap();
//! let cache = Engine::open(dir.path(), config).unwrap();
//! cache.set_ex(0, b"session:42", b"alice", Duration::from_secs(30)).unwrap();
//! assert_eq!(cache.get(0, b"session:42").unwrap(), Some(b"alice".to_vec()));
//! println!("{:?}", cache.stats().keys[0]);
//! ```
//!
//! Modules: [`config`] (the option table), [`engine`] (the handle, open, the write path, jobs,
//! stats, shutdown), `durability` ([`Durability`] tickets and their notifier), `helpers` (typed
//! helpers, [`Tx`]), `upkeep` (the background cron).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod config;
mod durability;
pub mod engine;
mod error;
mod helpers;
mod logslot;
pub mod replication;
mod upkeep;

pub use config::{Config, ConfigError, OptionSpec, OPTIONS};
pub use durability::Durability;
pub use engine::{
    load, Engine, EngineBuilder, FullSync, JobReport, LoadSource, OpenReport, PersistenceMode,
    ShutdownOptions, ShutdownReport, Stats,
};
pub use error::{Error, Result};
pub use forkless_keyspace::{Reply, Session};
pub use forkless_snapshot::{Mode, SnapshotResult};
pub use helpers::Tx;
pub use replication::{Cursor, Lagged, ReplInfo, ReplLog};
