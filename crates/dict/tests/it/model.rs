//! Property test: random operations on a `Dict`, interleaved with freeze / thaw / rehash_step /
//! forced_grow / take, against a `std::collections::HashMap` model. After every operation the
//! structural invariants are checked; while frozen, `bucket_of` of every key must not change
//! between forced grows, stamps must persist, the stamp of every key's bucket must survive the
//! forced grows, and the force bound must hold after every insert.

use std::collections::HashMap;

use forkless_dict::{Dict, DictConfig};
use proptest::prelude::*;

/// A deliberately weak hash: a third of the keys share one of 7 full hashes (so `eq` must be
/// consulted), the rest are spread by a multiplicative mix.
fn h(k: u16) -> u64 {
    if k.is_multiple_of(3) {
        (k % 7) as u64
    } else {
        (k as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
    }
}

#[derive(Debug, Clone)]
enum Op {
    Insert(u16, u32),
    Remove(u16),
    Get(u16),
    GetMut(u16, u32),
    Freeze,
    Thaw,
    Step(usize),
    Forced,
    Stamp(usize, u32),
    Take,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        30 => (0..400u16, any::<u32>()).prop_map(|(k, v)| Op::Insert(k, v)),
        15 => (0..400u16).prop_map(Op::Remove),
        10 => (0..400u16).prop_map(Op::Get),
        5 => (0..400u16, any::<u32>()).prop_map(|(k, v)| Op::GetMut(k, v)),
        3 => Just(Op::Freeze),
        3 => Just(Op::Thaw),
        4 => (0..20usize).prop_map(Op::Step),
        1 => Just(Op::Forced),
        5 => (any::<usize>(), 1..1000u32).prop_map(|(b, e)| Op::Stamp(b, e)),
        1 => Just(Op::Take),
    ]
}

fn run(ops: Vec<Op>, config: DictConfig) {
    let mut d: Dict<u16, u32> = Dict::with_config(0, config);
    let mut model: HashMap<u16, u32> = HashMap::new();
    // While frozen: the bucket of every key seen, and the stamps we set.
    let mut frozen_buckets: HashMap<u16, usize> = HashMap::new();
    let mut frozen_stamps: HashMap<usize, u32> = HashMap::new();
    // While frozen: the stamp of the bucket of every key seen (survives forced grows).
    let mut key_stamps: HashMap<u16, u32> = HashMap::new();
    let mut buckets_before = d.num_buckets();
    for op in ops {
        match op {
            Op::Insert(k, v) => {
                let hit = d
                    .find_mut(h(k), |x| *x == k)
                    .map(|(_, old)| std::mem::replace(old, v));
                if hit.is_none() {
                    *d.insert_unique(h(k), k, v) += 0;
                }
                assert_eq!(hit, model.insert(k, v), "insert {k}");
            }
            Op::Remove(k) => {
                let got = d.remove(h(k), |x| *x == k);
                assert_eq!(got, model.remove(&k).map(|v| (k, v)), "remove {k}");
                frozen_buckets.remove(&k);
            }
            Op::Get(k) => {
                assert_eq!(
                    d.find(h(k), |x| *x == k).map(|(k, v)| (*k, *v)),
                    model.get(&k).map(|v| (k, *v))
                );
            }
            Op::GetMut(k, v) => {
                let got = d
                    .find_mut(h(k), |x| *x == k)
                    .map(|(_, old)| std::mem::replace(old, v));
                let want = model.get_mut(&k).map(|old| std::mem::replace(old, v));
                assert_eq!(got, want);
            }
            Op::Freeze => d.freeze_rehash(),
            Op::Thaw => {
                d.thaw_rehash();
                frozen_buckets.clear();
                frozen_stamps.clear();
                key_stamps.clear();
            }
            Op::Step(n) => d.rehash_step(n),
            Op::Forced => {
                d.forced_grow();
                assert!(!d.is_rehashing());
            }
            Op::Stamp(b, e) => {
                let b = b % d.num_buckets();
                d.set_stamp(b, e);
                assert_eq!(d.stamp(b), e);
                if d.is_frozen() {
                    frozen_stamps.insert(b, e);
                    key_stamps.clear();
                }
            }
            Op::Take => {
                let was_frozen = d.is_frozen();
                let old = d.take();
                old.check_invariants();
                assert_eq!(old.len(), model.len());
                assert!(d.is_empty());
                assert_eq!(d.is_frozen(), was_frozen);
                model.clear();
                frozen_buckets.clear();
                frozen_stamps.clear();
                key_stamps.clear();
            }
        }
        d.check_invariants();
        assert_eq!(d.len(), model.len());
        if d.is_frozen() {
            // The bound holds after every operation (inserts grow first when past it: each
            // table part at most one entry past it).
            let ratio = d.config().force_resize_ratio as usize;
            assert!(
                d.len() <= ratio * d.num_buckets() + 2,
                "{} entries in {} buckets",
                d.len(),
                d.num_buckets()
            );
            if d.num_buckets() != buckets_before {
                // A forced grow: indices changed, per-hash stamps did not (checked below).
                frozen_buckets.clear();
                frozen_stamps.clear();
            }
            for &k in model.keys() {
                let b = d.bucket_of(h(k));
                let prev = *frozen_buckets.entry(k).or_insert(b);
                assert_eq!(prev, b, "key {k} changed bucket while frozen");
                assert!(
                    d.bucket_entries(b).any(|(x, _)| *x == k),
                    "key {k} not in its bucket"
                );
                let st = *key_stamps.entry(k).or_insert(d.stamp(b));
                assert_eq!(
                    st,
                    d.stamp(b),
                    "stamp of key {k}'s bucket changed while frozen"
                );
            }
            for (&b, &e) in &frozen_stamps {
                assert_eq!(d.stamp(b), e, "stamp of bucket {b} changed while frozen");
            }
        } else {
            assert!(!d.over_force_bound());
        }
        buckets_before = d.num_buckets();
    }
    let mut got: Vec<(u16, u32)> = d.iter().map(|(k, v)| (*k, *v)).collect();
    got.sort_unstable();
    let mut want: Vec<(u16, u32)> = model.into_iter().collect();
    want.sort_unstable();
    assert_eq!(got, want);
    // Bucket-wise traversal covers every entry exactly once.
    let mut by_bucket: Vec<u16> = (0..d.num_buckets())
        .flat_map(|b| d.bucket_entries(b).map(|(k, _)| *k))
        .collect();
    by_bucket.sort_unstable();
    assert_eq!(by_bucket, got.iter().map(|(k, _)| *k).collect::<Vec<_>>());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn matches_hashmap_model(ops in prop::collection::vec(op(), 1..600)) {
        run(ops, DictConfig::default());
    }

    #[test]
    fn matches_hashmap_model_tight_bounds(ops in prop::collection::vec(op(), 1..600)) {
        run(ops, DictConfig { min_fill_percent: 40, force_resize_ratio: 1 });
    }
}
