//! The value a key holds, and the pointer a slot keeps to it.
//!
//! Problem: every command and the snapshot serializer need one sum type for "what is stored under
//! a key". Values are reference-counted so a snapshot can keep a reference to a value while
//! writers go on: a writer's write copies only when the snapshot still holds the old version
//! (copy-on-write, as Dragonfly's and KeyDB's fork-less snapshots do). The six types are Redis's
//! core types (`server.h`, `OBJ_STRING` ... `OBJ_HASH`, `OBJ_STREAM`).
//!
//! A slot holds an [`Obj`]: one 8-byte pointer to either an `Arc<Value>` or, for a string, the
//! string's own [`SharedBytes`] block (counter, length, capacity and bytes in one allocation,
//! as Redis's `embstr` keeps a short string's header with its bytes). A string key therefore
//! costs the dict node and that block, not also a 48-byte `Arc` allocation around a pointer to
//! its buffer (benches/README.md "Memory per key", step 5). A string is a `Value::String` only
//! while it is outside a slot; [`Obj::new`] takes its block out, and [`Obj::get`] lends a
//! `Value` back for the code that works on any type (a count increment for a string), while the
//! typed paths (`Ctx::get_str`, `Ctx::get_str_mut`, the snapshot's serializer) use the block in
//! place through [`Obj::view`] and [`Obj::str_mut`].
//!
//! The enum, which every other key pays for inside its `Arc`, is 32 bytes: streams are boxed;
//! lists, sets, hashes and sorted sets (24 bytes each: a packed buffer, or a box holding the
//! general forms) are inline.

use std::mem::size_of;
use std::ops::Deref;

use forkless_compact::{ArcOrBytes, Mut, Unpacked};
pub use forkless_compact::{Ref as View, SharedBytes};
use forkless_sync::Arc;

use crate::types::{Hash, List, Set, Stream, ZSet};

/// The value of a key.
#[derive(Clone, Debug)]
pub enum Value {
    /// A string (binary safe). Integers are kept as their decimal text.
    String(SharedBytes),
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
            Value::String(s) => crate::memory::alloc_size(s.heap_size()),
            Value::List(l) => l.mem_usage_recount() - size_of::<List>(),
            Value::Set(s) => s.mem_usage_recount() - size_of::<Set>(),
            Value::ZSet(z) => z.mem_usage_recount() - size_of::<ZSet>(),
            Value::Hash(h) => h.mem_usage_recount() - size_of::<Hash>(),
            Value::Stream(s) => s.mem_usage_recount() + size_of::<Stream>(),
        }
    }

    /// Approximate heap bytes used by the value, O(1) (memory accounting; see `crate::memory`):
    /// a string's block (header and capacity), or what a collection owns: each type's
    /// `mem_usage` counts its own struct, but lists, sets, sorted sets and hashes sit inside the
    /// `Arc` allocation ([`Obj::mem_usage`] adds it), so their struct is taken off; the stream's
    /// box is added.
    pub fn mem_usage(&self) -> usize {
        match self {
            Value::String(s) => crate::memory::alloc_size(s.heap_size()),
            Value::List(l) => l.mem_usage() - size_of::<List>(),
            Value::Set(s) => s.mem_usage() - size_of::<Set>(),
            Value::ZSet(z) => z.mem_usage() - size_of::<ZSet>(),
            Value::Hash(h) => h.mem_usage() - size_of::<Hash>(),
            Value::Stream(s) => s.mem_usage() + size_of::<Stream>(),
        }
    }
}

/// The `Arc<Value>` allocation at its size class (16 bytes of counters and the 32-byte enum).
pub const ARC_ALLOC: usize = 48;
const _: () = assert!(16 + size_of::<Value>() <= ARC_ALLOC);

/// What a slot holds: an `Arc<Value>`, or a string's own [`SharedBytes`] block, in one pointer
/// (module docs). Cloning shares; writes go through [`Obj::str_mut`] or the crate's typed
/// getters, which copy a value someone else still holds. Invariant: a string is always the
/// block, never a `Value::String` inside the `Arc` ([`Obj::new`] is the only way in).
#[derive(Clone, Debug)]
pub struct Obj(ArcOrBytes<Value>);

impl Obj {
    /// Store `v` (a string's block moves in, no copy).
    pub fn new(v: Value) -> Obj {
        match v {
            Value::String(s) => Obj(ArcOrBytes::from_bytes(s)),
            v => Obj(ArcOrBytes::from_arc(Arc::new(v))),
        }
    }

    /// The value in place: a string's bytes, or any other value. No count changes.
    pub fn view(&self) -> View<'_, Value> {
        self.0.get()
    }

    /// The value as a [`Value`] (for code that handles every type): a string is lent as a new
    /// handle to the same block (a count increment), any other value by reference.
    pub fn get(&self) -> ValueRef<'_> {
        match self.0.get() {
            View::Arc(v) => ValueRef::Borrowed(v),
            View::Bytes(s) => ValueRef::Str(Value::String(s.clone())),
        }
    }

    /// True when a snapshot (or another handle) holds the same value: a write copies it.
    pub fn is_shared(&self) -> bool {
        self.0.is_shared()
    }

    /// Copy the value if it is shared, so that writes after this one copy nothing (the copy a
    /// writer pays while a snapshot holds the value: O(chunk) for big collections).
    pub fn make_unique(&mut self) {
        match self.0.get_mut() {
            Mut::Arc(_) => {}
            Mut::Bytes(s) => s.make_unique(),
        }
    }

    /// Any value but a string, writable in place (copied first if shared); `None` for a string.
    /// Crate-private: the typed getters hand out the collection inside, so no caller can store
    /// a string into the `Arc` (a string in a slot is always its own block).
    pub(crate) fn value_mut(&mut self) -> Option<&mut Value> {
        match self.0.get_mut() {
            Mut::Arc(v) => Some(v),
            Mut::Bytes(_) => None,
        }
    }

    /// The string's block, writable in place (its writes copy it first if shared); `None` for
    /// other types.
    pub fn str_mut(&mut self) -> Option<&mut SharedBytes> {
        self.0.bytes_mut()
    }

    /// The value, owned (a copy only when another handle still holds a non-string value).
    pub fn into_value(self) -> Value {
        match self.0.into_unpacked() {
            Unpacked::Bytes(s) => Value::String(s),
            Unpacked::Arc(a) => Arc::try_unwrap(a).unwrap_or_else(|a| (*a).clone()),
        }
    }

    /// Bytes this value takes in memory accounting, O(1): a string's block, or the `Arc`
    /// allocation plus what the value owns ([`Value::mem_usage`]).
    pub fn mem_usage(&self) -> usize {
        match self.view() {
            View::Bytes(s) => crate::memory::alloc_size(s.heap_size()),
            View::Arc(v) => ARC_ALLOC + v.mem_usage(),
        }
    }

    /// [`Obj::mem_usage`] recomputed by walking the value (tests).
    pub fn mem_usage_recount(&self) -> usize {
        match self.view() {
            View::Bytes(s) => crate::memory::alloc_size(s.heap_size()),
            View::Arc(v) => ARC_ALLOC + v.mem_usage_recount(),
        }
    }
}

/// A slot's value lent as a [`Value`] ([`Obj::get`]).
#[derive(Debug)]
pub enum ValueRef<'a> {
    /// Any type but a string, in place.
    Borrowed(&'a Value),
    /// A string: a second handle to the slot's block.
    Str(Value),
}

impl Deref for ValueRef<'_> {
    type Target = Value;
    fn deref(&self) -> &Value {
        match self {
            ValueRef::Borrowed(v) => v,
            ValueRef::Str(v) => v,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::cow_copied;
    use crate::types::Set;
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

    /// A string key is the node and one block: `Obj` holds the block itself, lends it as a
    /// `Value` (a second handle) and writes it in place, copying it while another handle holds
    /// it.
    #[test]
    fn a_string_is_its_own_block_and_copies_on_write() {
        let mut o = Obj::new(Value::String(SharedBytes::from_slice(&[7; 100])));
        assert!(matches!(o.view(), View::Bytes(b) if b.len() == 100));
        assert_eq!(o.mem_usage(), crate::memory::alloc_size(12 + 100));
        assert_eq!(o.mem_usage(), o.mem_usage_recount());
        {
            let r = o.get();
            assert!(matches!(&*r, Value::String(b) if b.len() == 100));
            assert!(o.is_shared(), "the lent Value is a second handle");
        }
        assert!(!o.is_shared());
        let held = o.clone();
        o.str_mut().unwrap().extend_from_slice(b"!");
        assert!(matches!(o.view(), View::Bytes(b) if b.len() == 101 && b[100] == b'!'));
        assert!(
            matches!(held.view(), View::Bytes(b) if b.len() == 100),
            "copy on write"
        );
        assert!(o.value_mut().is_none());
        assert!(matches!(o.into_value(), Value::String(b) if b.len() == 101));
        assert!(matches!(held.into_value(), Value::String(b) if b.len() == 100));
    }

    #[test]
    fn any_other_value_sits_in_an_arc_and_copies_on_write() {
        let mut o = Obj::new(Value::Set(Set::from_iter([b"m".to_vec()])));
        assert!(o.str_mut().is_none());
        let held = o.clone();
        assert!(o.is_shared());
        o.make_unique();
        assert!(!o.is_shared() && !held.is_shared());
        if let Some(Value::Set(s)) = o.value_mut() {
            assert!(s.insert(b"n".to_vec()));
        }
        assert!(matches!(held.view(), View::Arc(Value::Set(s)) if s.len() == 1));
        assert!(matches!(o.view(), View::Arc(Value::Set(s)) if s.len() == 2));
        assert_eq!(o.mem_usage(), ARC_ALLOC + o.get().mem_usage());
    }
}
