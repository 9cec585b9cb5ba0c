//! One database of one shard: the key → slot table.
//!
//! Problem: the keyspace needs a hash table whose hash is computed once per key by the caller
//! (the high bits pick the shard, the low bits the bucket), with a resumable cursor scan (SCAN,
//! active expiry) and random sampling (RANDOMKEY). This module is the only place that talks to
//! the table implementation, so the rest of the crate is independent of it.
//!
//! A [`Slot`] holds the value behind an [`Obj`] (an `Arc<Value>` or a string's own counted
//! block: copy-on-write for snapshots) and the absolute
//! expiry in Unix milliseconds, stored as an `i64` with [`NO_EXPIRE`] as the "no TTL" sentinel
//! (16 bytes per slot instead of 24 with `Option<i64>`).

use forkless_dict::Dict;
use rand::Rng;

use crate::value::{Obj, Value};

/// A key's bytes as stored: 16 bytes in the dict node, the bytes themselves inline up to
/// [`forkless_compact::INLINE_CAP`] (15) bytes, one exact-size allocation above.
pub type Key = forkless_compact::CompactBytes;

/// Sentinel of [`Slot`]'s expiry meaning "no TTL".
pub const NO_EXPIRE: i64 = i64::MIN;

/// What the table stores for a key.
#[derive(Clone, Debug)]
pub struct Slot {
    /// The value (shared with a snapshot while one holds it).
    pub value: Obj,
    expire: i64,
}

impl Slot {
    /// A slot with an optional absolute expiry (Unix ms).
    pub fn new(value: Value, expire_at: Option<i64>) -> Slot {
        let mut s = Slot {
            value: Obj::new(value),
            expire: NO_EXPIRE,
        };
        s.set_expire_at(expire_at);
        s
    }
    /// The absolute expiry in Unix ms, if any.
    pub fn expire_at(&self) -> Option<i64> {
        (self.expire != NO_EXPIRE).then_some(self.expire)
    }
    /// True when the key has a TTL.
    pub fn has_expiry(&self) -> bool {
        self.expire != NO_EXPIRE
    }
    /// Set or clear the expiry (`i64::MIN` is stored as `i64::MIN + 1`: both are long past).
    /// Private: a slot in a table changes its expiry through [`Db::set_expire_at`], which keeps
    /// the table's count of keys with a TTL.
    fn set_expire_at(&mut self, at: Option<i64>) {
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

/// The table of one database in one shard.
#[derive(Default)]
pub struct Db {
    dict: Dict<Key, Slot>,
    /// Bytes charged for this table's entries ([`entry_cost`] summed), kept by the keyspace's
    /// write paths (see `crate::memory`); the dict's own tables are added when reported.
    used: i64,
    /// Keys with a TTL (Redis's `dictSize(db->expires)`), kept by every method that adds,
    /// replaces or removes a slot or changes its expiry: INFO's `expires=` reads it in O(1), and
    /// active expiry skips a table that has none instead of walking it.
    volatile: usize,
}

/// Bytes one key costs in memory accounting: the key's allocation (none up to 15 bytes: inline
/// in the node, see [`Key`]), the dict node (hash, link, key and slot inline) and the value
/// ([`Obj::mem_usage`]: a string's block, or the `Arc<Value>` allocation and what the value owns;
/// O(1) for every type). Allocations are charged at the allocator's size class
/// ([`crate::memory::alloc_size`]).
pub fn entry_cost(key_len: usize, slot: &Slot) -> i64 {
    let key_heap = crate::memory::alloc_size(Key::heap_size_of(key_len));
    (key_heap + ENTRY_OVERHEAD + slot.value.mem_usage()) as i64
}

/// Fixed bytes per key besides the key's allocation and the value: the dict node (48: hash 8,
/// link 4, metadata 4, key 16 (inline or a pointer and length), slot 16 (the value's pointer and
/// the expiry); nodes live in an arena).
pub const ENTRY_OVERHEAD: usize = 48;

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db").field("len", &self.len()).finish()
    }
}

impl Db {
    /// Number of keys (expired ones not yet removed included).
    pub fn len(&self) -> usize {
        self.dict.len()
    }
    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.dict.is_empty()
    }
    /// The underlying dict (the snapshot reads buckets and stamps through it).
    pub fn dict(&self) -> &Dict<Key, Slot> {
        &self.dict
    }
    /// The underlying dict, mutable (freeze/thaw rehash, stamps, forced resize).
    pub fn dict_mut(&mut self) -> &mut Dict<Key, Slot> {
        &mut self.dict
    }
    /// The slot of `key` (hash `h`).
    pub fn find(&self, h: u64, key: &[u8]) -> Option<&Slot> {
        self.dict.find(h, |k| &**k == key).map(|(_, s)| s)
    }
    /// The slot of `key` (hash `h`), mutable.
    pub fn find_mut(&mut self, h: u64, key: &[u8]) -> Option<&mut Slot> {
        self.dict.find_mut(h, |k| &**k == key).map(|(_, s)| s)
    }
    /// Insert or overwrite; returns the previous slot.
    pub fn insert(&mut self, h: u64, key: &[u8], slot: Slot) -> Option<Slot> {
        self.insert_meta(h, key, slot, 0)
    }
    /// [`Db::insert`] with the access metadata a new entry starts with (an overwritten entry
    /// keeps its own).
    pub fn insert_meta(&mut self, h: u64, key: &[u8], slot: Slot, meta: u32) -> Option<Slot> {
        let added = slot.has_expiry();
        if let Some(old) = self.find_mut(h, key) {
            let old = std::mem::replace(old, slot);
            self.note_expiry_change(old.has_expiry(), added);
            return Some(old);
        }
        self.dict.insert_unique_meta(h, key.into(), slot, meta);
        self.note_expiry_change(false, added);
        None
    }
    /// Insert a key known to be absent.
    pub fn insert_new(&mut self, h: u64, key: Key, slot: Slot) {
        self.insert_new_meta(h, key, slot, 0);
    }
    /// Insert a key known to be absent, with its access metadata (LRU clock or LFU counter, see
    /// `crate::memory`).
    pub fn insert_new_meta(&mut self, h: u64, key: Key, slot: Slot, meta: u32) {
        self.note_expiry_change(false, slot.has_expiry());
        self.dict.insert_unique_meta(h, key, slot, meta);
    }
    /// Set or clear the expiry of `key` (hash `h`); false when it is absent.
    pub fn set_expire_at(&mut self, h: u64, key: &[u8], at: Option<i64>) -> bool {
        let Some(s) = self.find_mut(h, key) else {
            return false;
        };
        let before = s.has_expiry();
        s.set_expire_at(at);
        let after = s.has_expiry();
        self.note_expiry_change(before, after);
        true
    }
    /// Keys with a TTL, O(1).
    pub fn volatile(&self) -> usize {
        self.volatile
    }
    /// A slot of this table went from having a TTL or not (`before`) to `after` by a path
    /// outside these methods (a command replacing a whole slot it found with
    /// [`Db::find_mut_with_meta`]).
    pub(crate) fn note_expiry_change(&mut self, before: bool, after: bool) {
        self.volatile = self.volatile + usize::from(after) - usize::from(before);
    }
    /// The slot of `key` with its access metadata word, both mutable (no rehash step).
    pub fn find_meta_mut(&mut self, h: u64, key: &[u8]) -> Option<(&mut Slot, &mut u32)> {
        self.dict
            .find_meta_mut(h, |k| &**k == key)
            .map(|(_, s, m)| (s, m))
    }
    /// [`Db::find_mut`] (one rehash step first) with the access metadata word, both mutable.
    pub fn find_mut_with_meta(&mut self, h: u64, key: &[u8]) -> Option<(&mut Slot, &mut u32)> {
        self.dict
            .find_mut_with_meta(h, |k| &**k == key)
            .map(|(_, s, m)| (s, m))
    }
    /// A uniformly random key with its slot and access metadata, or None when empty.
    pub fn random_meta(&self, rng: &mut impl Rng) -> Option<(&[u8], &Slot, u32)> {
        self.dict
            .random_entry_meta(rng)
            .map(|(k, s, m)| (&**k, s, m))
    }
    /// Remove `key`; returns its slot.
    pub fn remove(&mut self, h: u64, key: &[u8]) -> Option<Slot> {
        let removed = self.dict.remove(h, |k| &**k == key).map(|(_, s)| s);
        if let Some(s) = &removed {
            self.note_expiry_change(s.has_expiry(), false);
        }
        removed
    }
    /// Remove every key.
    pub fn clear(&mut self) {
        self.dict.clear();
        self.used = 0;
        self.volatile = 0;
    }
    /// Bytes charged for the entries (see [`entry_cost`]).
    pub fn used(&self) -> i64 {
        self.used
    }
    /// Bytes of the dict's own structure (bucket arrays, filters, node arena).
    pub fn table_bytes(&self) -> usize {
        self.dict.memory_overhead()
    }
    /// Add `delta` to the charged bytes (the keyspace's write paths call it, see `crate::memory`).
    pub(crate) fn charge(&mut self, delta: i64) {
        self.used += delta;
    }
    /// The cost of `key` (hash `h`) as it is now, 0 when absent.
    pub fn cost_of(&self, h: u64, key: &[u8]) -> i64 {
        self.find(h, key).map_or(0, |s| entry_cost(key.len(), s))
    }
    /// Every `(key, slot)`.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &Slot)> {
        self.dict.iter().map(|(k, s)| (&**k, s))
    }
    /// Resumable scan (Redis's reverse-binary cursor, see `forkless_dict::Dict::scan`): visits
    /// buckets from `cursor` until at least `count` keys were seen or the table is done; returns
    /// the next cursor (0 when done). Every key present for the whole scan is visited at least
    /// once.
    pub fn scan(&self, cursor: u64, count: usize, mut f: impl FnMut(&[u8], &Slot)) -> u64 {
        let mut seen = 0usize;
        let mut c = cursor;
        loop {
            c = self.dict.scan(c, |k, s| {
                seen += 1;
                f(k, s)
            });
            if c == 0 || seen >= count.max(1) {
                return c;
            }
        }
    }
    /// A uniformly random key, or None when empty.
    pub fn random(&self, rng: &mut impl Rng) -> Option<(&[u8], &Slot)> {
        self.dict.random_entry(rng).map(|(k, s)| (&**k, s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::SharedBytes;

    #[test]
    fn slot_is_two_words() {
        // Value pointer + i64 expiry with a sentinel; `Option<i64>` would make it 24 bytes.
        assert_eq!(std::mem::size_of::<Slot>(), 16);
        assert_eq!(std::mem::size_of::<Option<i64>>() + 8, 24);
    }

    #[test]
    fn expiry_sentinel_round_trips() {
        let mut s = Slot::new(Value::String(b"v".into()), None);
        assert_eq!(s.expire_at(), None);
        assert!(!s.is_expired(i64::MAX));
        s.set_expire_at(Some(i64::MIN));
        assert_eq!(s.expire_at(), Some(i64::MIN + 1));
        assert!(s.is_expired(0));
        s.set_expire_at(Some(100));
        assert!(!s.is_expired(100), "Redis expires when now > when");
        assert!(s.is_expired(101));
    }

    /// Every method that adds, replaces or removes a slot or changes its expiry keeps the
    /// count of keys with a TTL equal to a walk of the table.
    #[test]
    fn the_ttl_count_follows_every_change() {
        let mut db = Db::default();
        let walk = |db: &Db| db.iter().filter(|(_, s)| s.has_expiry()).count();
        let slot = |ttl: Option<i64>| Slot::new(Value::String(b"v".into()), ttl);
        let h = |i: u64| i.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        use rand::SeedableRng;
        for step in 0..5000u64 {
            let i = rng.gen_range(0..64u64);
            let k = format!("k{i}");
            let ttl = rng.gen_bool(0.5).then_some(step as i64);
            match rng.gen_range(0..6) {
                0 => drop(db.insert(h(i), k.as_bytes(), slot(ttl))),
                1 => drop(db.insert_meta(h(i), k.as_bytes(), slot(ttl), 3)),
                2 if db.find(h(i), k.as_bytes()).is_none() => {
                    db.insert_new(h(i), k.as_str().into(), slot(ttl))
                }
                3 => drop(db.set_expire_at(h(i), k.as_bytes(), ttl)),
                4 => drop(db.remove(h(i), k.as_bytes())),
                5 if step % 500 == 0 => db.clear(),
                _ => {}
            }
            assert_eq!(db.volatile(), walk(&db), "step {step}");
        }
    }

    #[test]
    fn scan_visits_every_key_once_without_resize() {
        let mut db = Db::default();
        for i in 0..1000u64 {
            let k = format!("k{i}");
            let h = i.wrapping_mul(0x9e37_79b9_7f4a_7c15);
            db.insert(
                h,
                k.as_bytes(),
                Slot::new(Value::String(SharedBytes::new()), None),
            );
        }
        let mut seen = std::collections::HashSet::new();
        let mut c = 0;
        loop {
            c = db.scan(c, 10, |k, _| assert!(seen.insert(k.to_vec())));
            if c == 0 {
                break;
            }
        }
        assert_eq!(seen.len(), 1000);
    }
}
