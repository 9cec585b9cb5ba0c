//! Copy-on-write of one chunk, counted.
//!
//! Problem: a value the snapshot worker still holds is shared (`Arc<Value>` with a count above
//! one), so the writer's `Arc::make_mut` clones it. The big forms of the collections keep their
//! elements in chunks behind their own `Arc`s, so that clone copies pointers, and a write then
//! copies only the chunk it touches (see DESIGN.md, "Big values"). Every chunk a write makes
//! unique goes through [`cow`], which counts the elements the copy cloned: tests bound the
//! *work* a write does on a shared value with that counter rather than timing it, and the
//! big-value harness reports it. The count is per thread (a `Cell`, touched only when a copy
//! happens), so it costs nothing on the unshared path.

use std::cell::Cell;

use forkless_sync::Arc;

thread_local! {
    static COPIED: Cell<u64> = const { Cell::new(0) };
}

/// Elements (entries, index slots, chunk pointers) this thread has copied because a chunk or
/// a value it wrote was shared; see the module docs.
pub fn cow_copied() -> u64 {
    COPIED.with(Cell::get)
}

/// Adds `n` to this thread's [`cow_copied`].
pub(crate) fn count(n: usize) {
    COPIED.with(|c| c.set(c.get() + n as u64));
}

/// `Arc::make_mut`, counting `cost(&value)` copied elements when the chunk was shared.
pub(crate) fn cow<T: Clone>(a: &mut Arc<T>, cost: impl FnOnce(&T) -> usize) -> &mut T {
    if Arc::get_mut(a).is_none() {
        count(cost(a));
    }
    Arc::make_mut(a)
}
