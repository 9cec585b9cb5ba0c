//! The set type: unordered distinct byte strings with O(1) random member.
//!
//! Problem: SISMEMBER/SADD/SREM need O(1) membership, and SPOP/SRANDMEMBER need a uniformly
//! random member in O(1). Redis's dict picks random buckets (`dictGetFairRandomKey` in `dict.c`);
//! here members live densely in a vector indexed by a hash table ([`IndexedTable`]), so a random
//! member is a random position and removal swaps the last member into the hole.

use super::table::IndexedTable;

/// A Redis set value.
#[derive(Clone, Default)]
pub struct Set {
    table: IndexedTable<()>,
}

impl std::fmt::Debug for Set {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set()
            .entries(self.iter().map(String::from_utf8_lossy))
            .finish()
    }
}

impl Set {
    /// An empty set.
    pub fn new() -> Set {
        Set::default()
    }

    /// Number of members.
    pub fn len(&self) -> usize {
        self.table.len()
    }

    /// True when the set has no member.
    pub fn is_empty(&self) -> bool {
        self.table.len() == 0
    }

    /// Members in internal order (not meaningful to clients: Redis's order is its hash order).
    pub fn iter(&self) -> impl Iterator<Item = &[u8]> + Clone {
        self.table.iter().map(|(k, _)| k)
    }

    /// Adds a member; true when it was not there.
    pub fn insert(&mut self, member: impl Into<Vec<u8>> + AsRef<[u8]>) -> bool {
        if self.table.position(member.as_ref()).is_some() {
            return false;
        }
        self.table.insert(member.into(), ());
        true
    }

    /// Removes a member; true when it was there.
    pub fn remove(&mut self, member: &[u8]) -> bool {
        match self.table.position(member) {
            Some(pos) => self.table.swap_remove_at(pos).is_some(),
            None => false,
        }
    }

    /// True when `member` is in the set.
    pub fn contains(&self, member: &[u8]) -> bool {
        self.table.position(member).is_some()
    }

    /// The member at internal position `pos` (`pos < len`): pick `pos` at random for a uniformly
    /// random member.
    pub fn member_at(&self, pos: usize) -> Option<&[u8]> {
        self.table.at(pos).map(|(k, _)| k)
    }

    /// Removes and returns the member at internal position `pos` (O(1)).
    pub fn remove_at(&mut self, pos: usize) -> Option<Vec<u8>> {
        self.table.swap_remove_at(pos).map(|(k, _)| k)
    }

    /// [`Set::mem_usage`] recomputed element by element (O(n); tests).
    pub fn mem_usage_recount(&self) -> usize {
        std::mem::size_of::<Set>() + self.table.base_mem_recount()
    }

    /// Estimated heap bytes used.
    pub fn mem_usage(&self) -> usize {
        std::mem::size_of::<Set>() + self.table.base_mem()
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
}
