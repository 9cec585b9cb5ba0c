//! The hasher of every collection's member index.
//!
//! Problem: a small set, hash or sorted set keeps a hash index of its members, and a per-index
//! `RandomState` (two `u64` keys) made each of them 16 bytes bigger; with a million small
//! collections that is 16 MB (benches/README.md "Memory per key"). [`MemberHasher`] is zero-sized:
//! SipHash-1-3 (std's `RandomState`) keyed once per process at random, so clients still cannot
//! choose colliding members, and every index of the process agrees on hashes (the main keyspace
//! is keyed the same way, once per keyspace).

use std::collections::hash_map::{DefaultHasher, RandomState};
use std::hash::BuildHasher;
use std::sync::OnceLock;

/// The process-wide key, drawn on first use.
static KEY: OnceLock<RandomState> = OnceLock::new();

/// Zero-sized `BuildHasher` over the process-wide random key. See the module docs.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct MemberHasher;

impl BuildHasher for MemberHasher {
    type Hasher = DefaultHasher;

    #[inline]
    fn build_hasher(&self) -> DefaultHasher {
        KEY.get_or_init(RandomState::new).build_hasher()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_sized_and_consistent() {
        assert_eq!(std::mem::size_of::<MemberHasher>(), 0);
        let (a, b) = (MemberHasher, MemberHasher);
        assert_eq!(a.hash_one(b"member"), b.hash_one(b"member"));
        assert_ne!(a.hash_one(b"member"), a.hash_one(b"other"));
    }
}
