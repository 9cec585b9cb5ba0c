//! The set type: unordered distinct byte strings with O(1) random member.
//!
//! Problem: SISMEMBER/SADD/SREM need O(1) membership, and SPOP/SRANDMEMBER need a uniformly
//! random member in O(1). Redis's dict picks random buckets (`dictGetFairRandomKey` in `dict.c`);
//! here members live densely in a vector indexed by a hash table ([`IndexedTable`]), so a random
//! member is a random position and removal swaps the last member into the hole.
//!
//! A small set (at most 128 members of at most 64 bytes, the limits Redis 7.2 gave its listpack
//! sets) is packed instead: its members in one exact-size buffer ([`Packed`]), found by a linear
//! walk over at most a few kilobytes, as Redis 7.2 walks a listpack set. That is its bytes plus
//! two per member, where the table costs a 24-byte entry, a heap buffer and an index slot per
//! member. The first write past the limits converts it to the table for good. OBJECT ENCODING
//! does not depend on the form (Redis 7.0 reports `intset` or `hashtable`; `crate::encoding`).

use super::packed::{Either, Packed};
use super::table::IndexedTable;
use crate::memory::alloc_size;

/// Members a set keeps packed at most (Redis 7.2's `set-max-listpack-entries`).
const MAX_PACKED_ENTRIES: usize = 128;
/// Bytes per member a set keeps packed at most (Redis 7.2's `set-max-listpack-value`).
const MAX_PACKED_VALUE: usize = 64;

#[derive(Clone)]
enum Repr {
    /// Small: the members in one [`Packed`] buffer, looked up linearly.
    Packed(Packed),
    /// From the first write past the packed limits on, for good (boxed: keeps [`Set`] small).
    Table(Box<IndexedTable<()>>),
}

/// A Redis set value.
#[derive(Clone)]
pub struct Set {
    repr: Repr,
}

impl Default for Set {
    fn default() -> Set {
        Set {
            repr: Repr::Packed(Packed::default()),
        }
    }
}

impl std::fmt::Debug for Set {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set()
            .entries(self.iter().map(String::from_utf8_lossy))
            .finish()
    }
}

/// A table entry's member.
fn member<'a>((k, _): (&'a [u8], &'a ())) -> &'a [u8] {
    k
}

impl Set {
    /// An empty set.
    pub fn new() -> Set {
        Set::default()
    }

    /// Number of members.
    pub fn len(&self) -> usize {
        match &self.repr {
            Repr::Packed(p) => p.len(),
            Repr::Table(t) => t.len(),
        }
    }

    /// True when the set has no member.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Members in internal order (not meaningful to clients: Redis's order is its hash order).
    pub fn iter(&self) -> impl Iterator<Item = &[u8]> + Clone {
        match &self.repr {
            Repr::Packed(p) => Either::A(p.iter()),
            Repr::Table(t) => Either::B(t.iter().map(member)),
        }
    }

    /// Adds a member; true when it was not there.
    pub fn insert(&mut self, member: impl Into<Vec<u8>> + AsRef<[u8]>) -> bool {
        if let Repr::Packed(p) = &mut self.repr {
            if p.find(member.as_ref(), 1).is_some() {
                return false;
            }
            if member.as_ref().len() <= MAX_PACKED_VALUE && p.len() < MAX_PACKED_ENTRIES {
                p.push(&[member.as_ref()]);
                return true;
            }
            let mut t = IndexedTable::default();
            for m in p.iter() {
                t.insert(m.to_vec(), ());
            }
            self.repr = Repr::Table(Box::new(t));
        }
        let Repr::Table(t) = &mut self.repr else {
            unreachable!("converted above")
        };
        if t.position(member.as_ref()).is_some() {
            return false;
        }
        t.insert(member.into(), ());
        true
    }

    /// Removes a member; true when it was there.
    pub fn remove(&mut self, member: &[u8]) -> bool {
        let pos = match &self.repr {
            Repr::Packed(p) => p.find(member, 1),
            Repr::Table(t) => t.position(member),
        };
        pos.is_some_and(|pos| self.remove_at(pos).is_some())
    }

    /// True when `member` is in the set.
    pub fn contains(&self, member: &[u8]) -> bool {
        match &self.repr {
            Repr::Packed(p) => p.find(member, 1).is_some(),
            Repr::Table(t) => t.position(member).is_some(),
        }
    }

    /// The member at internal position `pos` (`pos < len`): pick `pos` at random for a uniformly
    /// random member (O(1) in the table form, O(bytes) packed).
    pub fn member_at(&self, pos: usize) -> Option<&[u8]> {
        match &self.repr {
            Repr::Packed(p) => p.get(pos),
            Repr::Table(t) => t.at(pos).map(|(k, _)| k),
        }
    }

    /// Removes and returns the member at internal position `pos` (the table form moves its last
    /// member into the hole, O(1); packed, the later members close the gap).
    pub fn remove_at(&mut self, pos: usize) -> Option<Vec<u8>> {
        match &mut self.repr {
            Repr::Packed(p) => {
                let m = p.get(pos)?.to_vec();
                p.splice(pos, 1, &[]);
                Some(m)
            }
            Repr::Table(t) => t.swap_remove_at(pos).map(|(k, _)| k),
        }
    }

    /// [`Set::mem_usage`] recomputed element by element (O(n); tests).
    pub fn mem_usage_recount(&self) -> usize {
        std::mem::size_of::<Set>()
            + match &self.repr {
                Repr::Packed(p) => p.heap_recount(),
                Repr::Table(t) => std::mem::size_of::<IndexedTable<()>>() + t.base_mem_recount(),
            }
    }

    /// Estimated heap bytes used.
    pub fn mem_usage(&self) -> usize {
        std::mem::size_of::<Set>()
            + match &self.repr {
                Repr::Packed(p) => alloc_size(p.byte_len()),
                Repr::Table(t) => std::mem::size_of::<IndexedTable<()>>() + t.base_mem(),
            }
    }
}

impl<T: Into<Vec<u8>> + AsRef<[u8]>> FromIterator<T> for Set {
    fn from_iter<I: IntoIterator<Item = T>>(iter: I) -> Set {
        let mut s = Set::new();
        for m in iter {
            s.insert(m);
        }
        s
    }
}

impl PartialEq for Set {
    fn eq(&self, other: &Set) -> bool {
        self.len() == other.len() && self.iter().all(|m| other.contains(m))
    }
}

impl Eq for Set {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn membership_and_positions() {
        let mut s: Set = ["a", "b", "c"].iter().map(|x| x.as_bytes()).collect();
        assert!(!s.insert(&b"a"[..]));
        assert!(s.insert(b"d".to_vec()));
        assert_eq!(s.len(), 4);
        assert!(s.contains(b"c"));
        assert!(s.remove(b"a"));
        assert!(!s.remove(b"a"));
        assert!(!s.contains(b"a"));
        let mut seen: Vec<Vec<u8>> = (0..s.len())
            .map(|i| s.member_at(i).unwrap().to_vec())
            .collect();
        seen.sort();
        assert_eq!(seen, vec![b"b".to_vec(), b"c".to_vec(), b"d".to_vec()]);
        let popped = s.remove_at(1).unwrap();
        assert!(!s.contains(&popped));
        assert_eq!(s.len(), 2);
        assert!(s.member_at(2).is_none());
        let t: Set = s.iter().map(|m| m.to_vec()).collect();
        assert_eq!(s, t);
        assert!(s.mem_usage() > 0);
    }

    /// A set against a model (a `Vec` of members): membership, positions, removal by position,
    /// across the packed limits both ways (128 members, 64-byte members), for good.
    #[test]
    fn set_equals_a_model_across_its_forms() {
        use proptest::prelude::*;
        use proptest::test_runner::TestRunner;
        let op = (0u8..4, 0u16..200, 1usize..80);
        TestRunner::default()
            .run(&proptest::collection::vec(op, 1..400), |ops| {
                let mut s = Set::new();
                let mut model: Vec<Vec<u8>> = Vec::new();
                let mut packed = true;
                for (kind, m, n) in ops {
                    let member = format!("{m:0n$}").into_bytes();
                    match kind {
                        0 => {
                            let new = !model.contains(&member);
                            prop_assert_eq!(s.insert(member.as_slice()), new);
                            if new {
                                model.push(member.clone());
                            }
                            if model.len() > MAX_PACKED_ENTRIES
                                || (new && member.len() > MAX_PACKED_VALUE)
                            {
                                packed = false;
                            }
                        }
                        1 => {
                            for i in 0..n as u16 {
                                let member = format!("m{}", m.wrapping_add(i)).into_bytes();
                                let new = !model.contains(&member);
                                prop_assert_eq!(s.insert(member.clone()), new);
                                if new {
                                    model.push(member);
                                }
                            }
                            if model.len() > MAX_PACKED_ENTRIES {
                                packed = false;
                            }
                        }
                        2 => {
                            let pos = model.iter().position(|x| *x == member);
                            prop_assert_eq!(s.remove(&member), pos.is_some());
                            if let Some(p) = pos {
                                model.remove(p);
                            }
                        }
                        _ => {
                            let pos = n % (s.len() + 1);
                            let got = s.remove_at(pos);
                            prop_assert_eq!(got.is_some(), pos < model.len());
                            if let Some(g) = got {
                                let i = model.iter().position(|x| *x == g);
                                prop_assert!(i.is_some());
                                model.remove(i.unwrap_or(0));
                            }
                        }
                    }
                    prop_assert_eq!(matches!(s.repr, Repr::Packed(_)), packed);
                    prop_assert_eq!(s.len(), model.len());
                    prop_assert_eq!(s.mem_usage(), s.mem_usage_recount());
                    for m in &model {
                        prop_assert!(s.contains(m));
                    }
                    prop_assert!(!s.contains(b"absent"));
                    let mut got: Vec<&[u8]> = s.iter().collect();
                    let by_pos: Vec<&[u8]> = (0..s.len()).filter_map(|i| s.member_at(i)).collect();
                    prop_assert_eq!(&got, &by_pos);
                    prop_assert!(s.member_at(s.len()).is_none());
                    got.sort();
                    let mut want: Vec<&[u8]> = model.iter().map(|m| m.as_slice()).collect();
                    want.sort();
                    prop_assert_eq!(got, want);
                }
                Ok(())
            })
            .unwrap();
    }
}
