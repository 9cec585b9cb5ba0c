//! The keyed hash of the keyspace.
//!
//! Problem: a Redis keyspace takes its keys from clients, and a chained table is only as fast
//! as its longest chain: with an unkeyed hash an attacker picks keys with equal low bits and
//! turns every lookup into a list walk (hash flooding, Crosby & Wallach, USENIX Security 2003;
//! Redis answers with SipHash keyed by a random seed, `dict.c`/`siphash.c`). [`KeyHasher`] is
//! std's `RandomState`: SipHash-1-3 with a 128-bit key drawn from the OS once per process (and
//! varied per instance), the hash Redis itself uses since 4.0. A faster keyed hash (foldhash,
//! ahash) would cut a few nanoseconds per 16-byte key but is not a workspace dependency, and
//! the benches compare against hashbrown with this same hasher.
//!
//! The keyspace hashes a key once with [`KeyHasher::hash_key`], uses the top bits for its shard
//! and hands the hash to the shard's [`crate::Dict`], whose bucket index takes the low bits.
//! `hash_key(bytes)` equals `hash(&bytes.to_vec())`, so a [`crate::Map`]`<Vec<u8>, V>` and
//! raw callers agree.

use std::collections::hash_map::{DefaultHasher, RandomState};
use std::hash::{BuildHasher, Hash};

/// Keyed hasher (SipHash-1-3, random key per process); clones hash identically.
#[derive(Clone, Debug, Default)]
pub struct KeyHasher {
    state: RandomState,
}

impl KeyHasher {
    /// A hasher with a fresh random key.
    pub fn new() -> Self {
        Self::default()
    }

    /// Hash of a byte-string key; equal to [`KeyHasher::hash`] of the same bytes as a
    /// `Vec<u8>` or `&[u8]`.
    #[inline]
    pub fn hash_key(&self, key: &[u8]) -> u64 {
        self.state.hash_one(key)
    }

    /// Hash of any `Hash` value.
    #[inline]
    pub fn hash<Q: Hash + ?Sized>(&self, q: &Q) -> u64 {
        self.state.hash_one(q)
    }
}

impl BuildHasher for KeyHasher {
    type Hasher = DefaultHasher;

    fn build_hasher(&self) -> DefaultHasher {
        self.state.build_hasher()
    }
}

#[cfg(test)]
mod tests {
    use super::KeyHasher;

    #[test]
    fn hash_key_matches_vec_hash() {
        let h = KeyHasher::new();
        let k = b"user:1000:profile".to_vec();
        assert_eq!(h.hash_key(&k), h.hash(&k));
        assert_eq!(h.hash_key(&k), h.hash(k.as_slice()));
        assert_eq!(h.clone().hash_key(&k), h.hash_key(&k));
        assert_ne!(h.hash_key(b"a"), h.hash_key(b"b"));
    }

    #[test]
    fn instances_have_different_keys() {
        let (a, b) = (KeyHasher::new(), KeyHasher::new());
        let differ = (0..16u8)
            .filter(|i| a.hash_key(&[*i]) != b.hash_key(&[*i]))
            .count();
        assert!(differ > 0);
    }
}
