//! The list type: a double-ended sequence of byte strings.
//!
//! Problem: LPUSH/RPUSH/LPOP/RPOP must be O(1) at both ends, and LINDEX/LSET/LRANGE need random
//! access. Redis uses a quicklist of listpacks (`t_list.c`, `quicklist.c`) to save memory; we use
//! a ring buffer (`VecDeque`) of owned byte strings, which gives O(1) ends and O(1) indexing.
//! Index arithmetic with negative indexes (Redis's `-1` = last) lives in [`List::resolve`].

use std::collections::VecDeque;

/// A Redis list value, head first.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct List {
    items: VecDeque<Vec<u8>>,
    /// Sum of the elements' lengths, kept by every mutation so [`List::mem_usage`] is O(1).
    bytes: usize,
}

impl std::fmt::Debug for List {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.items.iter().map(|v| String::from_utf8_lossy(v)))
            .finish()
    }
}

impl List {
    /// An empty list.
    pub fn new() -> List {
        List::default()
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// True when the list holds no element.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Elements head first.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &[u8]> + Clone {
        self.items.iter().map(|v| v.as_slice())
    }

    /// Pushes at the head.
    pub fn push_front(&mut self, v: impl Into<Vec<u8>>) {
        let v = v.into();
        self.bytes += v.len();
        self.items.push_front(v);
    }

    /// Pushes at the tail.
    pub fn push_back(&mut self, v: impl Into<Vec<u8>>) {
        let v = v.into();
        self.bytes += v.len();
        self.items.push_back(v);
    }

    /// Pops the head.
    pub fn pop_front(&mut self) -> Option<Vec<u8>> {
        let v = self.items.pop_front();
        self.bytes -= v.as_ref().map_or(0, Vec::len);
        self.shrink_if_sparse();
        v
    }

    /// Pops the tail.
    pub fn pop_back(&mut self) -> Option<Vec<u8>> {
        let v = self.items.pop_back();
        self.bytes -= v.as_ref().map_or(0, Vec::len);
        self.shrink_if_sparse();
        v
    }

    /// Turns a Redis index (negative counts from the tail, -1 = last) into a position, or None
    /// when it falls outside the list.
    pub fn resolve(&self, index: i64) -> Option<usize> {
        let len = self.items.len() as i64;
        let i = if index < 0 {
            len.checked_add(index)?
        } else {
            index
        };
        if (0..len).contains(&i) {
            Some(i as usize)
        } else {
            None
        }
    }

    /// The element at a Redis index.
    pub fn get(&self, index: i64) -> Option<&[u8]> {
        self.resolve(index).map(|i| self.items[i].as_slice())
    }

    /// Replaces the element at a Redis index; false when out of range.
    pub fn set(&mut self, index: i64, v: Vec<u8>) -> bool {
        match self.resolve(index) {
            Some(i) => {
                self.bytes = self.bytes - self.items[i].len() + v.len();
                self.items[i] = v;
                true
            }
            None => false,
        }
    }

    /// Clamps an inclusive Redis range `[start, stop]` (negative indexes allowed) to positions,
    /// as LRANGE and LTRIM do; None when the range is empty.
    pub fn clamp_range(&self, start: i64, stop: i64) -> Option<(usize, usize)> {
        let len = self.items.len() as i64;
        let mut start = if start < 0 {
            len.saturating_add(start)
        } else {
            start
        };
        let mut stop = if stop < 0 {
            len.saturating_add(stop)
        } else {
            stop
        };
        if start < 0 {
            start = 0;
        }
        if start > stop || start >= len {
            return None;
        }
        if stop >= len {
            stop = len - 1;
        }
        Some((start as usize, stop as usize))
    }

    /// Elements at positions `start..=stop` (positions from [`List::clamp_range`]).
    pub fn range(&self, start: usize, stop: usize) -> impl Iterator<Item = &[u8]> + Clone {
        let end = stop.saturating_add(1).min(self.items.len());
        self.items.range(start.min(end)..end).map(|v| v.as_slice())
    }

    /// Keeps only positions `start..=stop`; with None empties the list.
    pub fn trim(&mut self, keep: Option<(usize, usize)>) {
        match keep {
            Some((start, stop)) => {
                self.items.truncate(stop + 1);
                self.items.drain(..start.min(self.items.len()));
            }
            None => self.items.clear(),
        }
        self.bytes = self.items.iter().map(Vec::len).sum();
        self.shrink_if_sparse();
    }

    /// Removes up to `count` elements equal to `v` (LREM semantics: count > 0 from the head,
    /// count < 0 from the tail, 0 all). Returns how many were removed.
    pub fn remove_matching(&mut self, v: &[u8], count: i64) -> usize {
        let limit = if count == 0 {
            usize::MAX
        } else {
            usize::try_from(count.unsigned_abs()).unwrap_or(usize::MAX)
        };
        // One pass (O(n)): from the tail, first find the position where removal must stop.
        let floor = if count < 0 {
            let mut seen = 0;
            let mut floor = 0;
            for (i, x) in self.items.iter().enumerate().rev() {
                if x == v {
                    seen += 1;
                    if seen == limit {
                        floor = i;
                        break;
                    }
                }
            }
            floor
        } else {
            0
        };
        let mut removed = 0;
        let mut i = 0;
        self.items.retain(|x| {
            let keep = i < floor || removed >= limit || x != v;
            if !keep {
                removed += 1;
            }
            i += 1;
            keep
        });
        self.bytes -= removed * v.len();
        self.shrink_if_sparse();
        removed
    }

    /// Position of the first element equal to `pivot`.
    pub fn position(&self, pivot: &[u8]) -> Option<usize> {
        self.items.iter().position(|x| x == pivot)
    }

    /// Inserts at position `pos` (0..=len).
    pub fn insert_at(&mut self, pos: usize, v: Vec<u8>) {
        self.bytes += v.len();
        self.items.insert(pos.min(self.items.len()), v);
    }

    fn shrink_if_sparse(&mut self) {
        if self.items.capacity() > 64 && self.items.len() * 4 < self.items.capacity() {
            self.items.shrink_to(self.items.len() * 2);
        }
    }

    /// [`List::mem_usage`] recomputed element by element (O(n); tests).
    pub fn mem_usage_recount(&self) -> usize {
        std::mem::size_of::<List>()
            + self.items.capacity() * std::mem::size_of::<Vec<u8>>()
            + self.items.iter().map(Vec::len).sum::<usize>()
    }

    /// Estimated heap bytes used.
    pub fn mem_usage(&self) -> usize {
        std::mem::size_of::<List>()
            + self.items.capacity() * std::mem::size_of::<Vec<u8>>()
            + self.bytes
    }
}

impl<T: Into<Vec<u8>>> FromIterator<T> for List {
    fn from_iter<I: IntoIterator<Item = T>>(iter: I) -> List {
        let items: VecDeque<Vec<u8>> = iter.into_iter().map(Into::into).collect();
        let bytes = items.iter().map(Vec::len).sum();
        List { items, bytes }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l(items: &[&str]) -> List {
        items.iter().map(|s| s.as_bytes()).collect()
    }

    fn v(list: &List) -> Vec<String> {
        list.iter()
            .map(|x| String::from_utf8_lossy(x).into_owned())
            .collect()
    }

    #[test]
    fn indexes_and_ranges() {
        let list = l(&["a", "b", "c", "d"]);
        assert_eq!(list.get(0), Some(&b"a"[..]));
        assert_eq!(list.get(-1), Some(&b"d"[..]));
        assert_eq!(list.get(-4), Some(&b"a"[..]));
        assert_eq!(list.get(-5), None);
        assert_eq!(list.get(4), None);
        assert_eq!(list.get(i64::MIN), None);
        assert_eq!(list.clamp_range(0, -1), Some((0, 3)));
        assert_eq!(list.clamp_range(-100, 1), Some((0, 1)));
        assert_eq!(list.clamp_range(2, 100), Some((2, 3)));
        assert_eq!(list.clamp_range(3, 2), None);
        assert_eq!(list.clamp_range(4, 10), None);
        assert_eq!(list.clamp_range(i64::MIN, i64::MAX), Some((0, 3)));
        let (s, e) = list.clamp_range(1, 2).unwrap();
        assert_eq!(
            list.range(s, e).collect::<Vec<_>>(),
            vec![&b"b"[..], &b"c"[..]]
        );
    }

    #[test]
    fn trim_and_remove() {
        let mut list = l(&["a", "x", "b", "x", "c", "x"]);
        assert_eq!(list.remove_matching(b"x", -2), 2);
        assert_eq!(v(&list), ["a", "x", "b", "c"]);
        assert_eq!(list.remove_matching(b"x", 0), 1);
        assert_eq!(list.remove_matching(b"zz", 1), 0);
        let keep = list.clamp_range(1, -1);
        list.trim(keep);
        assert_eq!(v(&list), ["b", "c"]);
        list.trim(None);
        assert!(list.is_empty());
    }

    #[test]
    fn remove_from_either_end() {
        let mut list = l(&["x", "a", "x", "x", "b", "x"]);
        assert_eq!(list.remove_matching(b"x", -3), 3);
        assert_eq!(v(&list), ["x", "a", "b"]);
        let mut list = l(&["x", "a", "x", "x", "b", "x"]);
        assert_eq!(list.remove_matching(b"x", 2), 2);
        assert_eq!(v(&list), ["a", "x", "b", "x"]);
        assert_eq!(list.remove_matching(b"x", i64::MIN), 2);
        assert_eq!(v(&list), ["a", "b"]);
    }

    #[test]
    fn push_pop_insert() {
        let mut list = List::new();
        list.push_back(b"b".to_vec());
        list.push_front(&b"a"[..]);
        list.insert_at(2, b"c".to_vec());
        assert_eq!(list.position(b"c"), Some(2));
        assert!(list.set(-1, b"C".to_vec()));
        assert!(!list.set(3, b"D".to_vec()));
        assert_eq!(list.pop_back().unwrap(), b"C");
        assert_eq!(list.pop_front().unwrap(), b"a");
        assert_eq!(list.len(), 1);
        assert!(list.mem_usage() > 0);
    }
}
