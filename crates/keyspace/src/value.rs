//! The value a key holds.
//!
//! Problem: every command and the snapshot serializer need one sum type for "what is stored under
//! a key". Values live in the dict behind `std::sync::Arc` so a snapshot can keep a reference to a
//! value while writers go on: a writer calls `Arc::make_mut`, which clones only when the snapshot
//! still holds the old version (copy-on-write, as Dragonfly's and KeyDB's fork-less snapshots do).
//! The six types are Redis's core types (`server.h`, `OBJ_STRING` ... `OBJ_HASH`, `OBJ_STREAM`).
//! The enum, which every key pays for inside its `Arc`, is 32 bytes: streams are boxed; lists,
//! sets, hashes and sorted sets (24 bytes each: a packed buffer, or a box holding the general
//! forms) are inline.

use std::mem::size_of;

use crate::types::{Hash, List, Set, Stream, ZSet};

/// The value of a key.
#[derive(Clone, Debug)]
pub enum Value {
    /// A string (binary safe). Integers are kept as their decimal text.
    String(Vec<u8>),
    /// A list (inline: 24 bytes, a packed buffer or its boxed general form).
    List(List),
    /// A set.
    Set(Set),
    /// A sorted set.
    ZSet(ZSet),
    /// A hash.
    Hash(Hash),
    /// A stream (boxed: it is larger than the other variants).
    Stream(Box<Stream>),
}

// Every key's `Arc<Value>` allocation is 16 bytes of counters plus this enum, so its size is
// paid once per key: the big collections are boxed (inline, the largest made it 144 bytes and
// the allocation 160, for strings too; benches/README.md "Memory per key"). The string's `Vec`
// and the 24-byte lists, sets, hashes and sorted sets make it 32: the 48-byte size class, which
// 40 bytes (strings alone) round to as well, so inlining them costs strings nothing and saves
// each of those a box.
const _: () = assert!(std::mem::size_of::<Value>() <= 32);

impl Value {
    /// The name TYPE replies with (`string`, `list`, `set`, `zset`, `hash`).
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::String(_) => "string",
            Value::List(_) => "list",
            Value::Set(_) => "set",
            Value::ZSet(_) => "zset",
            Value::Hash(_) => "hash",
            Value::Stream(_) => "stream",
        }
    }

    /// True for an aggregate (list, set, zset, hash) with no elements: Redis never keeps one, so
    /// the command framework deletes such keys after each write.
    pub fn is_empty_aggregate(&self) -> bool {
        match self {
            Value::String(_) => false,
            Value::List(l) => l.is_empty(),
            Value::Set(s) => s.is_empty(),
            Value::ZSet(z) => z.is_empty(),
            Value::Hash(h) => h.is_empty(),
            // Redis keeps an empty stream (its last ID and groups still matter).
            Value::Stream(_) => false,
        }
    }

    /// [`Value::mem_usage`] recomputed by walking every element (O(n)): the reference the O(1)
    /// counters of each type are checked against in tests.
    pub fn mem_usage_recount(&self) -> usize {
        match self {
            Value::String(s) => crate::memory::alloc_size(s.capacity()),
            Value::List(l) => l.mem_usage_recount() - size_of::<List>(),
            Value::Set(s) => s.mem_usage_recount() - size_of::<Set>(),
            Value::ZSet(z) => z.mem_usage_recount() - size_of::<ZSet>(),
            Value::Hash(h) => h.mem_usage_recount() - size_of::<Hash>(),
            Value::Stream(s) => s.mem_usage_recount() + size_of::<Stream>(),
        }
    }

    /// Approximate heap bytes used by the value, O(1) (memory accounting; see `crate::memory`):
    /// a string's buffer, or what a collection owns: each type's `mem_usage` counts its own
    /// struct, but lists, sets, sorted sets and hashes sit inside the `Arc` allocation
    /// (`ENTRY_OVERHEAD`), so their struct is taken off; the stream's box is added.
    pub fn mem_usage(&self) -> usize {
        match self {
            Value::String(s) => crate::memory::alloc_size(s.capacity()),
            Value::List(l) => l.mem_usage() - size_of::<List>(),
            Value::Set(s) => s.mem_usage() - size_of::<Set>(),
            Value::ZSet(z) => z.mem_usage() - size_of::<ZSet>(),
            Value::Hash(h) => h.mem_usage() - size_of::<Hash>(),
            Value::Stream(s) => s.mem_usage() + size_of::<Stream>(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::cow_copied;
    use forkless_sync::Arc;

    /// What a writer does to a value the snapshot worker holds (`Arc::make_mut` on a shared
    /// `Arc<Value>`, then one change) copies O(CHUNK + n / CHUNK) elements and pointers for the
    /// big forms, not the value: 1M elements, at most 8,000 copied (12,000 for the sorted set:
    /// its member table and its order are both chunked).
    #[test]
    fn make_mut_on_a_held_big_value_copies_o_chunk() {
        const N: usize = 1_000_000;
        let values = [
            Value::Hash((0..N).map(|i| (format!("f{i}"), b"v".to_vec())).collect()),
            Value::Set((0..N).map(|i| format!("m{i}")).collect()),
            Value::List((0..N).map(|i| format!("e{i}")).collect()),
            Value::ZSet((0..N).map(|i| (format!("z{i}"), i as f64)).collect()),
        ];
        for v in values {
            let mut live = Arc::new(v);
            let held = Arc::clone(&live); // the worker's handle
            let before = cow_copied();
            match Arc::make_mut(&mut live) {
                Value::Hash(h) => assert!(h.remove(b"f12345")),
                Value::Set(s) => assert!(s.insert(b"new".to_vec())),
                Value::List(l) => assert!(l.set(500_000, b"x".to_vec())),
                Value::ZSet(z) => assert!(!z.insert(&b"z500000"[..], -1.0)),
                _ => unreachable!(),
            }
            let copied = cow_copied() - before;
            let bound = if held.type_name() == "zset" {
                12_000
            } else {
                8_000
            };
            assert!(copied <= bound, "{}: copied {copied}", held.type_name());
            assert_eq!(live.mem_usage(), live.mem_usage_recount());
            assert_eq!(held.mem_usage(), held.mem_usage_recount());
            match (&*held, &*live) {
                (Value::Hash(a), Value::Hash(b)) => {
                    assert_eq!((a.len(), b.len()), (N, N - 1));
                    assert_eq!(a.get(b"f12345"), Some(&b"v"[..]));
                }
                (Value::Set(a), Value::Set(b)) => {
                    assert_eq!((a.len(), b.len()), (N, N + 1));
                    assert!(!a.contains(b"new"));
                }
                (Value::List(a), Value::List(b)) => {
                    assert_eq!(a.get(500_000), Some(&b"e500000"[..]));
                    assert_eq!(b.get(500_000), Some(&b"x"[..]));
                }
                (Value::ZSet(a), Value::ZSet(b)) => {
                    assert_eq!(
                        (a.rank(b"z500000"), b.rank(b"z500000")),
                        (Some(500_000), Some(0))
                    );
                    assert_eq!(b.get_by_rank(500_000), Some((&b"z499999"[..], 499_999.0)));
                }
                _ => unreachable!(),
            }
        }
    }
}
