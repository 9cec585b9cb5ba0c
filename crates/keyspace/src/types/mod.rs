//! The aggregate value types of the keyspace: lists, sets, sorted sets, hashes and streams.
//!
//! Problem: each Redis aggregate type needs a container with the complexity Redis documents for
//! its commands (O(1) push/pop, O(1) random set member, O(log n) sorted-set rank, ...), cheap
//! `Clone` for copy-on-write snapshots, and an iteration order the snapshot serializer can use.
//! One file per type; `table` is the indexed hash table shared by sets and hashes; `hll` is
//! Redis's HyperLogLog string format (a string, not a type of its own). (The `long double`
//! number format of HINCRBYFLOAT/INCRBYFLOAT is `crate::ldouble`, beside `crate::convert`;
//! re-exported here for its callers.)

pub mod chunked;
pub(crate) mod cow;
mod hash;
mod hasher;
pub mod hll;
mod list;
mod packed;
mod ranked;
mod segtable;
mod set;
mod skiplist;
pub mod stream;
mod table;
mod zset;

pub use crate::ldouble::{parse_range_score, parse_score, parse_sort_score, LongDouble};
pub use cow::cow_copied;
pub use hash::Hash;
pub use list::List;
pub use set::Set;
pub use stream::Stream;
pub use zset::{ZIter, ZSet};
