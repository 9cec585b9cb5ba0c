//! The hash type: a field → value map that iterates like Redis 7.0 does while small.
//!
//! Problem: HSET/HGET/HDEL in O(1), and HGETALL/HKEYS/HVALS in the order a client of Redis 7.0
//! would see whenever that order is defined. Redis keeps a small hash as a listpack (insertion
//! order, a deleted field closes its gap) until it has more than `hash-max-listpack-entries`
//! (128) fields or a field or value longer than `hash-max-listpack-value` (64) bytes, and then
//! converts it for good to a hash table (`t_hash.c`, `hashTypeTryConversion`,
//! `hashTypeConvert`). We keep insertion order always ([`IndexedTable`]); while the hash is
//! "compact" in Redis's sense a deletion shifts (exact listpack order), afterwards it swaps (O(1);
//! Redis's order is then its hash order, which clients cannot rely on).

use super::table::IndexedTable;

/// `hash-max-listpack-entries` default of Redis 7.0.
pub(super) const MAX_COMPACT_ENTRIES: usize = 128;
/// `hash-max-listpack-value` default of Redis 7.0.
pub(super) const MAX_COMPACT_VALUE: usize = 64;

/// A Redis hash value.
#[derive(Clone)]
pub struct Hash {
    table: IndexedTable<Vec<u8>>,
    compact: bool,
    /// Sum of the values' lengths (kept by insert/remove, so [`Hash::mem_usage`] is O(1)).
    value_bytes: usize,
}

impl Default for Hash {
    fn default() -> Hash {
        Hash {
            table: IndexedTable::default(),
            compact: true,
            value_bytes: 0,
        }
    }
}

impl std::fmt::Debug for Hash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map()
            .entries(
                self.iter()
                    .map(|(k, v)| (String::from_utf8_lossy(k), String::from_utf8_lossy(v))),
            )
            .finish()
    }
}

impl Hash {
    /// An empty hash.
    pub fn new() -> Hash {
        Hash::default()
    }

    /// Number of fields.
    pub fn len(&self) -> usize {
        self.table.len()
    }

    /// True when the hash has no field.
    pub fn is_empty(&self) -> bool {
        self.table.len() == 0
    }

    /// `(field, value)` pairs (insertion order; see the module docs).
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> + Clone {
        self.table.iter().map(|(k, v)| (k, v.as_slice()))
    }

    /// The `(field, value)` at position `pos` of [`Hash::iter`]'s order (O(1)).
    pub fn entry_at(&self, pos: usize) -> Option<(&[u8], &[u8])> {
        self.table.at(pos).map(|(k, v)| (k, v.as_slice()))
    }

    /// Sets a field; true when the field is new. An existing field keeps its position.
    pub fn insert(
        &mut self,
        field: impl Into<Vec<u8>> + AsRef<[u8]>,
        value: impl Into<Vec<u8>>,
    ) -> bool {
        let value = value.into();
        if field.as_ref().len() > MAX_COMPACT_VALUE || value.len() > MAX_COMPACT_VALUE {
            self.compact = false;
        }
        if let Some(v) = self.table.get_mut(field.as_ref()) {
            self.value_bytes = self.value_bytes - v.len() + value.len();
            *v = value;
            return false;
        }
        self.value_bytes += value.len();
        self.table.insert(field.into(), value);
        if self.table.len() > MAX_COMPACT_ENTRIES {
            self.compact = false;
        }
        true
    }

    /// The value of `field`.
    pub fn get(&self, field: &[u8]) -> Option<&[u8]> {
        self.table.get(field).map(|v| v.as_slice())
    }

    /// True when `field` exists.
    pub fn contains(&self, field: &[u8]) -> bool {
        self.table.position(field).is_some()
    }

    /// Deletes a field; true when it existed.
    pub fn remove(&mut self, field: &[u8]) -> bool {
        let Some(pos) = self.table.position(field) else {
            return false;
        };
        let removed = if self.compact {
            self.table.shift_remove_at(pos)
        } else {
            self.table.swap_remove_at(pos)
        };
        self.value_bytes -= removed.map_or(0, |(_, v)| v.len());
        true
    }

    /// True while Redis 7.0 would keep this value listpack-encoded (OBJECT ENCODING).
    pub fn is_compact(&self) -> bool {
        self.compact
    }

    /// [`Hash::mem_usage`] recomputed element by element (O(n); tests).
    pub fn mem_usage_recount(&self) -> usize {
        std::mem::size_of::<Hash>()
            + self.table.base_mem_recount()
            + self.table.iter().map(|(_, v)| v.len()).sum::<usize>()
    }

    /// Estimated heap bytes used.
    pub fn mem_usage(&self) -> usize {
        std::mem::size_of::<Hash>() + self.table.base_mem() + self.value_bytes
    }
}

impl<F: Into<Vec<u8>> + AsRef<[u8]>, V: Into<Vec<u8>>> FromIterator<(F, V)> for Hash {
    fn from_iter<I: IntoIterator<Item = (F, V)>>(iter: I) -> Hash {
        let mut h = Hash::new();
        for (f, v) in iter {
            h.insert(f, v);
        }
        h
    }
}

impl PartialEq for Hash {
    fn eq(&self, other: &Hash) -> bool {
        self.len() == other.len() && self.iter().all(|(f, v)| other.get(f) == Some(v))
    }
}

impl Eq for Hash {}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(h: &Hash) -> Vec<&[u8]> {
        h.iter().map(|(f, _)| f).collect()
    }

    #[test]
    fn small_hash_keeps_listpack_order() {
        let mut h = Hash::new();
        for f in ["a", "b", "c", "d"] {
            assert!(h.insert(f.as_bytes(), f.as_bytes()));
        }
        assert!(!h.insert(&b"b"[..], &b"B"[..]));
        assert!(h.remove(b"a"));
        assert!(!h.remove(b"a"));
        assert_eq!(fields(&h), vec![&b"b"[..], b"c", b"d"]);
        assert_eq!(h.get(b"b"), Some(&b"B"[..]));
        assert!(h.contains(b"d"));
        assert!(h.get(b"zz").is_none());
    }

    #[test]
    fn big_hash_stops_being_compact() {
        let mut h = Hash::new();
        h.insert(&b"f"[..], vec![b'x'; MAX_COMPACT_VALUE + 1]);
        assert!(!h.compact);
        let mut h: Hash = (0..=MAX_COMPACT_ENTRIES)
            .map(|i| (i.to_string().into_bytes(), b"v".to_vec()))
            .collect();
        assert!(!h.compact);
        assert!(h.remove(b"0"));
        assert_eq!(h.len(), MAX_COMPACT_ENTRIES);
        assert_eq!(h.clone(), h);
        assert!(h.mem_usage() > 0);
    }
}
