//! One database of one shard: the key → slot table.
//!
//! Problem: the keyspace needs a hash table whose hash is computed once per key by the caller
//! (the high bits pick the shard, the low bits the bucket), with a resumable cursor scan (SCAN,
//! active expiry) and random sampling (RANDOMKEY). This module is the only place that talks to
//! the table implementation, so the rest of the crate is independent of it.
//!
//! A [`Slot`] holds the value behind an `Arc` (copy-on-write for snapshots) and the absolute
//! expiry in Unix milliseconds, stored as an `i64` with [`NO_EXPIRE`] as the "no TTL" sentinel
//! (16 bytes per slot instead of 24 with `Option<i64>`).

use forkless_sync::Arc;
use hashbrown::HashTable;
use rand::Rng;

use crate::value::Value;

/// A key's bytes as stored.
pub type Key = Box<[u8]>;

/// Sentinel of [`Slot`]'s expiry meaning "no TTL".
pub const NO_EXPIRE: i64 = i64::MIN;

/// What the table stores for a key.
#[derive(Clone, Debug)]
pub struct Slot {
    /// The value (shared with a snapshot while one holds it).
    pub value: Arc<Value>,
    expire: i64,
}

impl Slot {
    /// A slot with an optional absolute expiry (Unix ms).
    pub fn new(value: Value, expire_at: Option<i64>) -> Slot {
        let mut s = Slot {
            value: Arc::new(value),
            expire: NO_EXPIRE,
        };
        s.set_expire_at(expire_at);
        s
    }
    /// The absolute expiry in Unix ms, if any.
    pub fn expire_at(&self) -> Option<i64> {
        (self.expire != NO_EXPIRE).then_some(self.expire)
    }
    /// Set or clear the expiry (`i64::MIN` is stored as `i64::MIN + 1`: both are long past).
    pub fn set_expire_at(&mut self, at: Option<i64>) {
        self.expire = match at {
            None => NO_EXPIRE,
            Some(NO_EXPIRE) => NO_EXPIRE + 1,
            Some(t) => t,
        };
    }
    /// True when the key is logically gone at `now_ms` (Redis's `keyIsExpired`: `now > when`).
    pub fn is_expired(&self, now_ms: i64) -> bool {
        self.expire != NO_EXPIRE && now_ms > self.expire
    }
}

struct Entry {
    hash: u64,
    key: Key,
    slot: Slot,
}

/// The table of one database in one shard.
#[derive(Default)]
pub struct Db {
    table: HashTable<Entry>,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db").field("len", &self.len()).finish()
    }
}

impl Db {
    /// Number of keys (expired ones not yet removed included).
    pub fn len(&self) -> usize {
        self.table.len()
    }
    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }
    /// The slot of `key` (hash `h`).
    pub fn find(&self, h: u64, key: &[u8]) -> Option<&Slot> {
        self.table.find(h, |e| &*e.key == key).map(|e| &e.slot)
    }
    /// The slot of `key` (hash `h`), mutable.
    pub fn find_mut(&mut self, h: u64, key: &[u8]) -> Option<&mut Slot> {
        self.table
            .find_mut(h, |e| &*e.key == key)
            .map(|e| &mut e.slot)
    }
    /// Insert or overwrite; returns the previous slot.
    pub fn insert(&mut self, h: u64, key: &[u8], slot: Slot) -> Option<Slot> {
        if let Some(e) = self.table.find_mut(h, |e| &*e.key == key) {
            return Some(std::mem::replace(&mut e.slot, slot));
        }
        self.table.insert_unique(
            h,
            Entry {
                hash: h,
                key: key.into(),
                slot,
            },
            |e| e.hash,
        );
        None
    }
    /// Insert a key known to be absent.
    pub fn insert_new(&mut self, h: u64, key: Key, slot: Slot) {
        self.table
            .insert_unique(h, Entry { hash: h, key, slot }, |e| e.hash);
    }
    /// Remove `key`; returns its slot.
    pub fn remove(&mut self, h: u64, key: &[u8]) -> Option<Slot> {
        match self.table.find_entry(h, |e| &*e.key == key) {
            Ok(occ) => Some(occ.remove().0.slot),
            Err(_) => None,
        }
    }
    /// Remove every key.
    pub fn clear(&mut self) {
        self.table.clear();
    }
    /// Every `(key, slot)` in table order.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &Slot)> {
        self.table.iter().map(|e| (&*e.key, &e.slot))
    }
    /// Resumable scan: visits the keys whose hash is >= `cursor` in hash order, at least one
    /// hash value and stops after `count` keys; returns the next cursor (0 when done). Every key
    /// present for the whole scan is visited at least once.
    pub fn scan(&self, cursor: u64, count: usize, mut f: impl FnMut(&[u8], &Slot)) -> u64 {
        let mut hashes: Vec<u64> = self
            .table
            .iter()
            .map(|e| e.hash)
            .filter(|&h| h >= cursor)
            .collect();
        hashes.sort_unstable();
        hashes.dedup();
        let mut visited = 0usize;
        for (i, &h) in hashes.iter().enumerate() {
            if visited >= count.max(1) {
                return hashes[i];
            }
            for e in self.table.iter_hash(h) {
                if e.hash == h {
                    f(&e.key, &e.slot);
                    visited += 1;
                }
            }
            if h == u64::MAX {
                return 0;
            }
        }
        0
    }
    /// A uniformly random key, or None when empty.
    pub fn random(&self, rng: &mut impl Rng) -> Option<(&[u8], &Slot)> {
        if self.table.is_empty() {
            return None;
        }
        let i = rng.gen_range(0..self.table.len());
        self.table.iter().nth(i).map(|e| (&*e.key, &e.slot))
    }
}
