//! Stateless cursor iteration (Redis SCAN) and uniform random sampling.
//!
//! Problem: `SCAN` must return every element present for the whole iteration at least once even
//! if the table grows or shrinks between calls, with a cursor that is a single `u64` the client
//! holds. The algorithm is Pieter Noordhuis's reverse-binary cursor from Redis's `dictScan`
//! (`src/dict.c`, Redis 7.0): the cursor's bits are incremented from the high end, so the
//! buckets of a table of size 2^n are visited in an order where, after any resize to 2^m, the
//! buckets still to visit in the new table cover exactly the not-yet-visited hash classes. While
//! a rehash runs, a call visits bucket `v & m_small` of the smaller table and then every bucket
//! of the larger table that expands it. Guarantees (as Redis documents them): every element
//! present from the first to the last call is returned at least once; elements may be returned
//! more than once; 0 as the returned cursor means the iteration is complete.
//!
//! Random sampling is exact: the node arena is dense, so an entry is drawn uniformly with one
//! `gen_range` (Redis's `dictGetFairRandomKey` approximates this by sampling buckets).

use crate::dict::{Bucket, Dict, NIL};

impl<K, V> Dict<K, V> {
    /// One SCAN step from `cursor` (0 to start): calls `f` on every entry of the buckets this
    /// step covers and returns the next cursor (0 when done). Guarantees of Redis's `dictScan`
    /// across resizes between calls (module docs).
    pub fn scan(&self, cursor: u64, mut f: impl FnMut(&K, &V)) -> u64 {
        let mut v = cursor;
        if !self.is_rehashing() {
            let m0 = (self.t0.len() - 1) as u64;
            self.emit(&self.t0, v & m0, &mut f);
            v = next_cursor(v, m0);
        } else {
            let (small, large) = if self.t0.len() <= self.t1.len() {
                (&self.t0, &self.t1)
            } else {
                (&self.t1, &self.t0)
            };
            let m0 = (small.len() - 1) as u64;
            let m1 = (large.len() - 1) as u64;
            self.emit(small, v & m0, &mut f);
            // Every bucket of the larger table that expands the small bucket `v & m0`.
            loop {
                self.emit(large, v & m1, &mut f);
                v = next_cursor(v, m1);
                if v & (m0 ^ m1) == 0 {
                    break;
                }
            }
        }
        v
    }

    fn emit(&self, table: &[Bucket], b: u64, f: &mut impl FnMut(&K, &V)) {
        let mut n = table[b as usize].head;
        while n != NIL {
            let s = self.arena.get(n);
            f(&s.key, &s.value);
            n = s.next;
        }
    }

    /// A uniformly random entry (every entry has probability `1/len`), or `None` when empty.
    pub fn random_entry(&self, rng: &mut impl rand::Rng) -> Option<(&K, &V)> {
        if self.is_empty() {
            return None;
        }
        let i = rng.gen_range(0..self.len());
        let s = self.arena.get(i as u32);
        Some((&s.key, &s.value))
    }

    /// [`Dict::random_entry`] with the entry's metadata word.
    pub fn random_entry_meta(&self, rng: &mut impl rand::Rng) -> Option<(&K, &V, u32)> {
        if self.is_empty() {
            return None;
        }
        let i = rng.gen_range(0..self.len());
        let s = self.arena.get(i as u32);
        Some((&s.key, &s.value, s.meta))
    }
}

/// Increments the reverse-binary cursor over the bits of `mask`: set the unmasked high bits,
/// reverse, add one, reverse back (Redis `dictScan`).
#[inline]
fn next_cursor(v: u64, mask: u64) -> u64 {
    let v = v | !mask;
    v.reverse_bits().wrapping_add(1).reverse_bits()
}

#[cfg(test)]
mod tests {
    use super::next_cursor;

    #[test]
    fn cursor_order_size_8() {
        // Reverse-binary order over 3 bits: 0 4 2 6 1 5 3 7, then 0 (done).
        let mut v = 0u64;
        let mut seen = vec![];
        loop {
            seen.push(v & 7);
            v = next_cursor(v, 7);
            if v == 0 {
                break;
            }
        }
        assert_eq!(seen, vec![0, 4, 2, 6, 1, 5, 3, 7]);
    }
}
