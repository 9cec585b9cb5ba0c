//! The snapshot contract: `bucket_of` stability while frozen (also frozen mid-rehash), stamps
//! that persist without a reset pass, the force-resize bound and the stamp-keeping forced grow.

use forkless_dict::{Dict, DictConfig};

fn h(k: u64) -> u64 {
    k.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (k >> 7)
}

fn filled(n: u64) -> Dict<u64, u64> {
    let mut d = Dict::new();
    for k in 0..n {
        d.insert_unique(h(k), k, k * 10);
    }
    d
}

fn get(d: &Dict<u64, u64>, k: u64) -> Option<u64> {
    d.find(h(k), |x| *x == k).map(|(_, v)| *v)
}

/// Grows `d` until a rehash is in progress and some, not all, buckets have moved.
fn mid_rehash(d: &mut Dict<u64, u64>, next_key: &mut u64) {
    while !d.is_rehashing() {
        d.insert_unique(h(*next_key), *next_key, 0);
        *next_key += 1;
    }
    d.rehash_step(3);
    assert!(d.is_rehashing(), "rehash finished too early");
}

#[test]
fn frozen_mid_rehash_keeps_buckets_and_places_inserts_by_bucket_of() {
    let mut d = filled(60);
    let mut next = 60;
    mid_rehash(&mut d, &mut next);
    d.freeze_rehash();
    let n0 = d.num_buckets();
    let before: Vec<(u64, usize)> = d.iter().map(|(k, _)| (*k, d.bucket_of(h(*k)))).collect();
    // Inserts, removes, lookups while frozen: no rehash progress, no resize.
    for k in next..next + 200 {
        let b = d.bucket_of(h(k));
        d.insert_unique(h(k), k, k);
        assert_eq!(d.bucket_of(h(k)), b);
        assert!(
            d.bucket_entries(b).any(|(x, _)| *x == k),
            "insert went elsewhere"
        );
    }
    for k in (0..next).step_by(3) {
        assert!(d.remove(h(k), |x| *x == k).is_some());
    }
    d.rehash_step(1000);
    assert!(d.is_rehashing(), "rehash progressed while frozen");
    assert_eq!(d.num_buckets(), n0);
    for (k, b) in before {
        if k % 3 != 0 {
            assert_eq!(d.bucket_of(h(k)), b, "key {k} moved");
            assert!(d.bucket_entries(b).any(|(x, _)| *x == k));
        }
    }
    d.check_invariants();
    // Thaw: the rehash resumes and completes.
    d.thaw_rehash();
    d.rehash_step(1_000_000);
    assert!(!d.is_rehashing());
    d.check_invariants();
    for k in next..next + 200 {
        assert_eq!(get(&d, k), Some(k));
    }
}

#[test]
fn stamps_persist_and_new_epoch_needs_no_reset() {
    let mut d = filled(100);
    d.freeze_rehash();
    let nb = d.num_buckets();
    for b in 0..nb {
        assert_eq!(d.stamp(b), 0, "fresh buckets are stamped 0");
    }
    // Snapshot epoch 1 visits half the buckets; writes go on.
    for b in (0..nb).step_by(2) {
        d.set_stamp(b, 1);
    }
    for k in 1000..1100 {
        d.insert_unique(h(k), k, k);
    }
    for k in 0..50 {
        d.remove(h(k), |x| *x == k);
    }
    for b in 0..nb {
        assert_eq!(d.stamp(b), if b % 2 == 0 { 1 } else { 0 });
    }
    // Epoch 2: every bucket reads "not visited" (stamp != 2) without any reset.
    assert!((0..nb).all(|b| d.stamp(b) != 2));
    d.thaw_rehash();
}

#[test]
fn stamps_of_table1_while_frozen_mid_rehash() {
    let mut d = filled(30);
    let mut next = 30;
    mid_rehash(&mut d, &mut next);
    d.freeze_rehash();
    let nb = d.num_buckets();
    for b in 0..nb {
        d.set_stamp(b, 5 + b as u32);
    }
    for b in 0..nb {
        assert_eq!(d.stamp(b), 5 + b as u32);
    }
}

/// For every hash in a sample: is its bucket stamped `epoch`?
fn visited_map(d: &Dict<u64, u64>, epoch: u32, keys: u64) -> Vec<bool> {
    (0..keys)
        .map(|k| d.stamp(d.bucket_of(h(k))) == epoch)
        .collect()
}

#[test]
fn the_bound_holds_per_insert_and_the_forced_grow_keeps_every_hash_stamp() {
    let config = DictConfig {
        min_fill_percent: 10,
        force_resize_ratio: 5,
    };
    let mut d: Dict<u64, u64> = Dict::with_config(0, config);
    for k in 0..40 {
        d.insert_unique(h(k), k, k);
    }
    d.rehash_step(1000);
    assert!(!d.is_rehashing());
    d.freeze_rehash();
    let epoch = 9;
    // A snapshot visited every third bucket.
    for b in (0..d.num_buckets()).step_by(3) {
        d.set_stamp(b, epoch);
    }
    // Hashes never inserted too: a later insert must land in a bucket with the same answer.
    let sample = 100_000;
    let visited = visited_map(&d, epoch, sample);
    let mut grows = 0;
    let mut nb = d.num_buckets();
    for k in 40..20_000 {
        d.insert_unique(h(k), k, k);
        // Per insert: never more than one entry past the bound (5 per bucket).
        assert!(
            d.len() <= 5 * d.num_buckets() + 1,
            "{} entries chained into {} buckets",
            d.len(),
            d.num_buckets()
        );
        if d.num_buckets() != nb {
            grows += 1;
            nb = d.num_buckets();
            assert!(d.is_frozen() && !d.is_rehashing());
            assert!(nb > d.len() / 5, "grown to {nb}");
            assert_eq!(visited_map(&d, epoch, sample), visited, "stamps lost");
        }
    }
    assert!(grows >= 2, "{grows} forced grows");
    for x in 0..20_000 {
        assert_eq!(get(&d, x), Some(x), "entry {x} lost");
    }
    d.check_invariants();
}

#[test]
fn forced_grow_mid_rehash_completes_it_and_keeps_stamps() {
    let mut d = filled(200);
    let mut next = 200;
    mid_rehash(&mut d, &mut next);
    d.freeze_rehash();
    for b in (0..d.num_buckets()).step_by(2) {
        d.set_stamp(b, 3);
    }
    let visited = visited_map(&d, 3, 10_000);
    d.forced_grow();
    assert!(!d.is_rehashing());
    assert_eq!(visited_map(&d, 3, 10_000), visited);
    d.check_invariants();
    for k in 0..next {
        assert!(get(&d, k).is_some(), "entry {k} lost");
    }
}

#[test]
fn not_frozen_never_over_bound_and_shrinks() {
    let mut d = filled(10_000);
    assert!(!d.over_force_bound());
    let big = d.num_buckets();
    for k in 0..9_990 {
        d.remove(h(k), |x| *x == k);
    }
    while d.is_rehashing() {
        d.rehash_step(1_000);
    }
    assert!(
        d.num_buckets() < big / 100,
        "no shrink: {} buckets",
        d.num_buckets()
    );
    d.check_invariants();
    for k in 9_990..10_000 {
        assert_eq!(get(&d, k), Some(k * 10));
    }
}

#[test]
fn thaw_starts_a_pending_expansion() {
    let mut d: Dict<u64, u64> = Dict::new();
    d.freeze_rehash();
    for k in 0..20 {
        d.insert_unique(h(k), k, k);
    }
    assert_eq!(d.num_buckets(), 4);
    d.thaw_rehash();
    assert!(d.is_rehashing());
    d.rehash_step(100);
    assert!(d.num_buckets() >= 20);
}

#[test]
fn take_and_clear_are_swap_outs() {
    let mut d = filled(1000);
    d.freeze_rehash();
    d.set_stamp(0, 4);
    let old = d.take();
    assert_eq!(old.len(), 1000);
    assert_eq!(old.stamp(0), 4);
    assert!(old.is_frozen() && d.is_frozen());
    assert!(d.is_empty());
    assert_eq!(d.num_buckets(), 4);
    d.insert_unique(h(1), 1, 1);
    d.clear();
    assert!(d.is_empty());
    d.check_invariants();
}

#[test]
fn memory_overhead_counts_tables_and_nodes() {
    let d = filled(100_000);
    let per_entry = (d.memory_overhead() - d.len() * 16) as f64 / d.len() as f64;
    // Node hash+link (16 with padding) + 8-byte buckets at load >= 0.5 + arena slack.
    assert!(per_entry > 16.0 && per_entry < 80.0, "{per_entry}");
}
