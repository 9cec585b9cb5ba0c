//! forkless-dict: the keyspace's hash table, built so a snapshot can walk it without `fork()`.
//!
//! # Problem
//! forkless snapshots a Redis keyspace while writers go on: a worker walks the table bucket by
//! bucket, and a writer about to touch a bucket asks "was this bucket already serialized?"
//! (the shape of Dragonfly's versioned-bucket snapshot, `src/server/snapshot.cc`). That needs
//! a table whose buckets are addressable, whose entries never change bucket during the walk,
//! and which carries one epoch stamp per bucket. Peers that iterate a table that may resize
//! under the cursor lose keys; here the layout is frozen instead.
//!
//! # Structure
//! A chained hash table after Redis's `dict.c` (two tables and an incremental rehash,
//! [`rehash`](crate::Dict::rehash_step)), with `u32` chain links into a dense node arena (see
//! `arena.rs`), nodes that store their full 64-bit hash (a chain walk compares hashes before
//! keys), an 8-bit filter of the chain's hashes per bucket in a separate byte array (a miss
//! usually reads one cached byte, like hashbrown's control bytes),
//! and caller-supplied hashes (raw API like hashbrown's `RawTable`). [`Map`] is a typed
//! wrapper with a keyed hasher ([`KeyHasher`], SipHash-1-3 with a per-process random key).
//!
//! # Traversal space
//! Buckets are numbered `0..num_buckets()`, table 0 first, then table 1 (non-empty only while
//! a rehash runs). With `r` the rehash index:
//!
//! ```text
//!  traversal index: 0 ........ r-1 | r ........ size0-1 | size0 ........... size0+size1-1
//!                   table 0, moved  | table 0, live     | table 1
//!                   (always empty)  |                   |
//!
//!  bucket_of(h) = h & (size0-1)               if no rehash, or (h & (size0-1)) >= r
//!               = size0 + (h & (size1-1))     otherwise
//! ```
//!
//! A key always lives in `bucket_of(its hash)`: inserts go there (also during a rehash, not
//! always to table 1 as in Redis), and a rehash step moves table-0 bucket `r` to table 1 and
//! then increments `r`. A lookup therefore reads one chain. While frozen `r` and both sizes are
//! fixed, so `bucket_of` is a pure function of the hash and no entry changes bucket, except in
//! the forced grow below.
//!
//! # Freeze, forced grow, stamps
//! [`Dict::freeze_rehash`] stops all entry movement; inserts keep chaining. An insert that finds
//! more than `force_resize_ratio` entries per bucket ([`DictConfig`], default 8;
//! [`Dict::over_force_bound`]) first runs [`Dict::forced_grow`]: the table is rebuilt at once at
//! a size that is a multiple of both old sizes, so every new bucket's hashes come from exactly
//! one old bucket, whose stamp it takes. Each bucket of both tables has a `u32` stamp
//! ([`Dict::stamp`], [`Dict::set_stamp`]); a new snapshot uses a new epoch, so no reset pass is
//! needed; "is the bucket of hash `h` stamped `E`" survives the forced grow for every `h`. When
//! an unfrozen rehash moves entries, the destination bucket keeps its own stamp: stamps only
//! mean something while frozen. Details in `rehash.rs`.
//!
//! # Memory
//! Per entry: one node `{hash: u64, next: u32, K, V}` (16 bytes beyond `K` and `V` for 8-aligned
//! `K`/`V`, after padding) in a segmented arena (segments double, so up to 2x slack just after a
//! new segment) plus, per bucket, `{head: u32, stamp: u32}` and one filter byte = 9 bytes at
//! load factor 0.5..1 (1..2 buckets per entry). Measured by the `dict` benchmark with
//! `K = Vec<u8>` (24 bytes), `V = u64`, 1M entries (`memory_overhead() / len - 32`, key heap
//! buffers excluded): 27.8 B/entry overhead at 1M entries (load 0.95), about 36 B at 600K;
//! hashbrown 37.2 B/entry at 1M (`slots * (1 + size_of::<(K, V)>())`, load 0.545). Details in
//! `benches/README.md` ("Dict").
//!
//! # Performance
//! `find` and `insert_unique` are compared with `hashbrown::HashMap` under the same hasher in
//! `benches/criterion/benches/engine.rs` (`dict_group`): 0.89x on hits, 0.84x on misses, 1.45x on inserts
//! (1M 16-byte keys, noisy shared machine); figures in `benches/README.md`.
#![forbid(unsafe_code)]

mod arena;
mod dict;
mod hasher;
mod map;
mod rehash;
mod scan;

pub use dict::{BucketIter, Dict};
pub use hasher::KeyHasher;
pub use map::Map;
pub use rehash::DictConfig;
