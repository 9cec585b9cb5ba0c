//! forkless-keyspace: the in-memory keyspace of forkless.
//!
//! A Redis 7.0-compatible keyspace (strings, lists, sets, sorted sets, hashes; 16 databases;
//! expiry) sharded over `forkless_sync::Mutex`es so several threads execute commands at once,
//! with the seams a fork-less snapshot and an AOF need: a [`WriteObserver`] called before every
//! mutation and a [`PropagationSink`] receiving what each write did, as Redis 7.0 propagates it.
//!
//! Layout: [`keyspace`] (sharding, lock order, the write path, expiry, loading mode, bulk
//! access), [`ctx`] (a command's view), [`command`] (the table), [`keyspec`] (Redis's command
//! table and key specs: which arguments are keys), [`reply`], [`value`], [`db`]
//! (one database of one shard on `forkless_dict::Dict`), [`propagate`] (sink, AOF rendering),
//! [`convert`] (number formats, RDB model), `ldouble` (the x87 `long double` number format of
//! INCRBYFLOAT/HINCRBYFLOAT),
//! [`encoding`] (OBJECT ENCODING and the history it keeps), [`glob`] (KEYS/SCAN patterns),
//! [`geohash`] (GEO scores and areas), [`trace`] (where a write's time goes), [`api`] (typed
//! helpers), `cmd::*` (handlers), [`types`]
//! (aggregate data structures).
#![forbid(unsafe_code)]

pub mod api;
pub mod atomic;
pub mod command;
pub mod convert;
pub mod ctx;
pub mod db;
pub mod encoding;
pub mod geohash;
pub mod glob;
pub mod keyspace;
pub mod keyspec;
mod ldouble;
pub mod memory;
pub mod notify;
pub mod propagate;
pub mod reply;
pub mod trace;
pub mod types;
pub mod value;

mod cmd;

pub use api::CommandError;
pub use atomic::{Atomic, Scope};
pub use cmd::sort::{SortOptionError, SortOptions};
pub use command::{CommandSpec, Handler, ALL_SHARDS, READONLY, WRITE};
pub use ctx::Ctx;
pub use db::{Key, Slot};
pub use keyspace::{
    Clock, Config, ExpiryView, Foreign, Keyspace, Libraries, LoadError, ManualClock, MemoryReport,
    Session, Shard, WriteObserver,
};
pub use memory::{EvictionPolicy, MemoryConfig, MemoryStats};
pub use propagate::{render_aof, CollectingSink, Propagated, PropagationSink};
pub use reply::Reply;
pub use value::{Obj, SharedBytes, Value, ValueRef, View};
