//! The hash type: a field → value map that iterates like Redis 7.0 does while small.
//!
//! Problem: HSET/HGET/HDEL in O(1), and HGETALL/HKEYS/HVALS in the order a client of Redis 7.0
//! would see whenever that order is defined. Redis keeps a small hash as a listpack (insertion
//! order, a deleted field closes its gap) until it has more than `hash-max-listpack-entries`
//! (128) fields or a field or value longer than `hash-max-listpack-value` (64) bytes, and then
//! converts it for good to a hash table (`t_hash.c`, `hashTypeTryConversion`,
//! `hashTypeConvert`). We do the same with our own packed form ([`Packed`]: field, value, field,
//! value, ... in one exact-size buffer, looked up linearly as Redis walks its listpack), so a small
//! hash costs its bytes plus two per field or value, iterates in exact listpack order and clones
//! (copy-on-write under a snapshot) in one `memcpy`. Past the limits, an [`IndexedTable`] keeps the
//! order it had and a deletion swaps the last field into the hole (O(1); Redis's order is then its
//! hash order, which clients cannot rely on).

use super::packed::{Either, Packed};
use super::table::IndexedTable;
use crate::memory::alloc_size;

/// `hash-max-listpack-entries` default of Redis 7.0.
pub(super) const MAX_COMPACT_ENTRIES: usize = 128;
/// `hash-max-listpack-value` default of Redis 7.0.
pub(super) const MAX_COMPACT_VALUE: usize = 64;

/// The general form: fields in an [`IndexedTable`], with the sum of the values' lengths.
#[derive(Clone, Default)]
struct Table {
    table: IndexedTable<Vec<u8>>,
    /// Sum of the values' lengths (kept by insert/remove, so [`Hash::mem_usage`] is O(1)).
    value_bytes: usize,
}

#[derive(Clone)]
enum Repr {
    /// Compact: field 0, value 0, field 1, value 1, ... in insertion order ([`Packed`]).
    Packed(Packed),
    /// Past Redis's listpack limits, for good (boxed: keeps [`Hash`] at 24 bytes).
    Table(Box<Table>),
}

/// A Redis hash value.
///
/// Packed (one buffer, listpack order, linear lookups over at most 128 fields) while Redis
/// would keep it a listpack; an [`IndexedTable`] from the first write past those limits on.
#[derive(Clone)]
pub struct Hash {
    repr: Repr,
}

impl Default for Hash {
    fn default() -> Hash {
        Hash {
            repr: Repr::Packed(Packed::default()),
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

/// A table entry as a pair of slices.
fn pair<'a>((k, v): (&'a [u8], &'a Vec<u8>)) -> (&'a [u8], &'a [u8]) {
    (k, v.as_slice())
}

impl Hash {
    /// An empty hash.
    pub fn new() -> Hash {
        Hash::default()
    }

    /// Number of fields.
    pub fn len(&self) -> usize {
        match &self.repr {
            Repr::Packed(p) => p.len() / 2,
            Repr::Table(t) => t.table.len(),
        }
    }

    /// True when the hash has no field.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `(field, value)` pairs (insertion order; see the module docs).
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> + Clone {
        match &self.repr {
            Repr::Packed(p) => Either::A(p.iter().pairs()),
            Repr::Table(t) => Either::B(t.table.iter().map(pair)),
        }
    }

    /// The `(field, value)` at position `pos` of [`Hash::iter`]'s order (O(1) in the table
    /// form, O(bytes) packed).
    pub fn entry_at(&self, pos: usize) -> Option<(&[u8], &[u8])> {
        match &self.repr {
            Repr::Packed(p) => p.iter_from(pos.checked_mul(2)?).pairs().next(),
            Repr::Table(t) => t.table.at(pos).map(|(k, v)| (k, v.as_slice())),
        }
    }

    /// Leaves the packed form for good (Redis's `hashTypeConvert`), keeping the order.
    fn table_form(&mut self) -> &mut Table {
        if let Repr::Packed(p) = &self.repr {
            let mut t = Table::default();
            for (f, v) in p.iter().pairs() {
                t.value_bytes += v.len();
                t.table.insert(f.to_vec(), v.to_vec());
            }
            self.repr = Repr::Table(Box::new(t));
        }
        match &mut self.repr {
            Repr::Table(t) => t,
            Repr::Packed(_) => unreachable!("converted above"),
        }
    }

    /// Sets a field; true when the field is new. An existing field keeps its position.
    pub fn insert(
        &mut self,
        field: impl Into<Vec<u8>> + AsRef<[u8]>,
        value: impl Into<Vec<u8>> + AsRef<[u8]>,
    ) -> bool {
        let fits =
            field.as_ref().len() <= MAX_COMPACT_VALUE && value.as_ref().len() <= MAX_COMPACT_VALUE;
        if let Repr::Packed(p) = &mut self.repr {
            let found = p.find(field.as_ref(), 2);
            if fits {
                match found {
                    Some(i) => {
                        p.splice(i + 1, 1, &[value.as_ref()]);
                        return false;
                    }
                    None if p.len() / 2 < MAX_COMPACT_ENTRIES => {
                        p.push(&[field.as_ref(), value.as_ref()]);
                        return true;
                    }
                    None => {}
                }
            }
        }
        let t = self.table_form();
        let value = value.into();
        if let Some(v) = t.table.get_mut(field.as_ref()) {
            t.value_bytes = t.value_bytes - v.len() + value.len();
            *v = value;
            return false;
        }
        t.value_bytes += value.len();
        t.table.insert(field.into(), value);
        true
    }

    /// The value of `field`.
    pub fn get(&self, field: &[u8]) -> Option<&[u8]> {
        match &self.repr {
            Repr::Packed(p) => p.find(field, 2).and_then(|i| p.get(i + 1)),
            Repr::Table(t) => t.table.get(field).map(|v| v.as_slice()),
        }
    }

    /// True when `field` exists.
    pub fn contains(&self, field: &[u8]) -> bool {
        match &self.repr {
            Repr::Packed(p) => p.find(field, 2).is_some(),
            Repr::Table(t) => t.table.position(field).is_some(),
        }
    }

    /// Deletes a field; true when it existed. Packed, the later fields close the gap (listpack
    /// order); in the table form the last field moves into it (O(1)).
    pub fn remove(&mut self, field: &[u8]) -> bool {
        match &mut self.repr {
            Repr::Packed(p) => match p.find(field, 2) {
                Some(i) => {
                    p.splice(i, 2, &[]);
                    true
                }
                None => false,
            },
            Repr::Table(t) => {
                let Some(pos) = t.table.position(field) else {
                    return false;
                };
                let removed = t.table.swap_remove_at(pos);
                t.value_bytes -= removed.map_or(0, |(_, v)| v.len());
                true
            }
        }
    }

    /// True while Redis 7.0 would keep this value listpack-encoded with the default limits
    /// (the packed form).
    pub fn is_compact(&self) -> bool {
        matches!(self.repr, Repr::Packed(_))
    }

    /// [`Hash::mem_usage`] recomputed element by element (O(n); tests).
    pub fn mem_usage_recount(&self) -> usize {
        std::mem::size_of::<Hash>()
            + match &self.repr {
                Repr::Packed(p) => p.heap_recount(),
                Repr::Table(t) => {
                    std::mem::size_of::<Table>()
                        + t.table.base_mem_recount()
                        + t.table.iter().map(|(_, v)| v.len()).sum::<usize>()
                }
            }
    }

    /// Estimated heap bytes used.
    pub fn mem_usage(&self) -> usize {
        std::mem::size_of::<Hash>()
            + match &self.repr {
                Repr::Packed(p) => alloc_size(p.byte_len()),
                Repr::Table(t) => std::mem::size_of::<Table>() + t.table.base_mem() + t.value_bytes,
            }
    }
}

impl<F: Into<Vec<u8>> + AsRef<[u8]>, V: Into<Vec<u8>> + AsRef<[u8]>> FromIterator<(F, V)> for Hash {
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
        assert!(!h.is_compact());
        let mut h: Hash = (0..=MAX_COMPACT_ENTRIES)
            .map(|i| (i.to_string().into_bytes(), b"v".to_vec()))
            .collect();
        assert!(!h.is_compact());
        assert!(h.remove(b"0"));
        assert_eq!(h.len(), MAX_COMPACT_ENTRIES);
        assert_eq!(h.clone(), h);
        assert!(h.mem_usage() > 0);
    }

    /// A hash against a model of Redis's: an ordered list of pairs (a listpack) while within
    /// 128 fields of at most 64 bytes, a map after the first write past them, for good.
    #[test]
    fn hash_equals_a_listpack_then_a_map() {
        use proptest::prelude::*;
        use proptest::test_runner::TestRunner;
        let op = (0u8..4, 0u16..200, 0usize..80, 1u8..40);
        TestRunner::default()
            .run(&proptest::collection::vec(op, 1..400), |ops| {
                let mut h = Hash::new();
                let mut model: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
                let mut listpack = true;
                for (kind, f, vlen, n) in ops {
                    let field = format!("f{f}").into_bytes();
                    let value = vec![b'a' + (f % 26) as u8; vlen];
                    match kind {
                        0 | 1 => {
                            let pos = model.iter().position(|(k, _)| *k == field);
                            prop_assert_eq!(
                                h.insert(field.as_slice(), value.clone()),
                                pos.is_none()
                            );
                            if vlen > MAX_COMPACT_VALUE {
                                listpack = false;
                            }
                            match pos {
                                Some(p) => model[p].1 = value,
                                None => model.push((field, value)),
                            }
                            if model.len() > MAX_COMPACT_ENTRIES {
                                listpack = false;
                            }
                        }
                        2 => {
                            let pos = model.iter().position(|(k, _)| *k == field);
                            prop_assert_eq!(h.remove(&field), pos.is_some());
                            if let Some(p) = pos {
                                model.remove(p);
                            }
                        }
                        _ => {
                            for i in 0..u16::from(n) {
                                let field = format!("f{}", f.wrapping_add(i)).into_bytes();
                                if !model.iter().any(|(k, _)| *k == field) {
                                    model.push((field.clone(), b"v".to_vec()));
                                    prop_assert!(h.insert(field, &b"v"[..]));
                                }
                            }
                            if model.len() > MAX_COMPACT_ENTRIES {
                                listpack = false;
                            }
                        }
                    }
                    prop_assert_eq!(h.is_compact(), listpack);
                    prop_assert_eq!(h.len(), model.len());
                    prop_assert_eq!(h.mem_usage(), h.mem_usage_recount());
                    if listpack {
                        prop_assert!(h.iter().eq(model.iter().map(|(k, v)| (&k[..], &v[..]))));
                    }
                    for (k, v) in &model {
                        prop_assert_eq!(h.get(k), Some(&v[..]));
                    }
                    prop_assert!(h.get(b"absent").is_none());
                    let mut got: Vec<_> = (0..h.len()).map(|i| h.entry_at(i).unwrap()).collect();
                    prop_assert!(h.entry_at(h.len()).is_none());
                    prop_assert!(got.iter().copied().eq(h.iter()));
                    got.sort();
                    let mut want: Vec<_> = model.iter().map(|(k, v)| (&k[..], &v[..])).collect();
                    want.sort();
                    prop_assert_eq!(got, want);
                }
                Ok(())
            })
            .unwrap();
    }
}
