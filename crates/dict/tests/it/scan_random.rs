//! SCAN guarantees across resizes, uniform random sampling, and hash-flooding resistance.

use std::collections::{HashMap, HashSet};

use forkless_dict::{Dict, KeyHasher, Map};
use rand::{rngs::StdRng, Rng, SeedableRng};

fn h(k: u64) -> u64 {
    k.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (k >> 29)
}

/// Runs a full SCAN; between calls `between(call_no, dict)` may mutate the dict. Returns the
/// keys returned and the number of calls.
fn scan_all(
    d: &mut Dict<u64, ()>,
    mut between: impl FnMut(usize, &mut Dict<u64, ()>),
) -> (HashSet<u64>, usize) {
    let mut seen = HashSet::new();
    let mut cursor = 0;
    let mut calls = 0;
    loop {
        cursor = d.scan(cursor, |k, _| {
            seen.insert(*k);
        });
        calls += 1;
        assert!(calls < 1_000_000, "scan does not terminate");
        if cursor == 0 {
            return (seen, calls);
        }
        between(calls, d);
    }
}

#[test]
fn scan_without_changes_returns_everything_once_per_bucket() {
    let mut d = Dict::new();
    for k in 0..5000 {
        d.insert_unique(h(k), k, ());
    }
    let mut count = 0usize;
    let mut cursor = 0;
    loop {
        cursor = d.scan(cursor, |_, _| count += 1);
        if cursor == 0 {
            break;
        }
    }
    // Not rehashing: every bucket is visited exactly once.
    if !d.is_rehashing() {
        assert_eq!(count, 5000);
    }
    let (seen, _) = scan_all(&mut d, |_, _| {});
    assert_eq!(seen.len(), 5000);
}

/// Stable keys `0..stable` stay for the whole scan; churn keys come and go, making the table
/// grow, shrink and rehash (incl. frozen stretches) between calls.
fn scan_under_churn(seed: u64, stable: u64, initial_churn: u64, grow: bool) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut d = Dict::new();
    for k in 0..stable {
        d.insert_unique(h(k), k, ());
    }
    let mut churn: Vec<u64> = (1_000_000..1_000_000 + initial_churn).collect();
    for &k in &churn {
        d.insert_unique(h(k), k, ());
    }
    let mut next_churn = 2_000_000u64;
    let mut resized = 0;
    let mut last_nb = d.num_buckets();
    let (seen, _) = scan_all(&mut d, |_, d| {
        match rng.gen_range(0..10) {
            // Growth is capped: a table that outgrows the cursor forever never ends a scan.
            0..=3 if (grow && churn.len() < 6000) || churn.len() < 50 => {
                for _ in 0..rng.gen_range(1..300) {
                    d.insert_unique(h(next_churn), next_churn, ());
                    churn.push(next_churn);
                    next_churn += 1;
                }
            }
            0..=5 => {
                for _ in 0..rng.gen_range(1..400) {
                    if churn.is_empty() {
                        break;
                    }
                    let i = rng.gen_range(0..churn.len());
                    let k = churn.swap_remove(i);
                    assert!(d.remove(h(k), |x| *x == k).is_some());
                }
            }
            6 => d.rehash_step(rng.gen_range(1..50)),
            7 => d.freeze_rehash(),
            8 => d.thaw_rehash(),
            _ => {}
        }
        if d.num_buckets() != last_nb {
            resized += 1;
            last_nb = d.num_buckets();
        }
    });
    for k in 0..stable {
        assert!(
            seen.contains(&k),
            "seed {seed}: stable key {k} never returned"
        );
    }
    assert!(
        resized > 0,
        "seed {seed}: no resize happened during the scan"
    );
    d.check_invariants();
}

#[test]
fn scan_returns_stable_keys_across_growth() {
    for seed in 0..12 {
        scan_under_churn(seed, 300, 0, true);
    }
}

#[test]
fn scan_returns_stable_keys_across_shrink() {
    for seed in 100..112 {
        scan_under_churn(seed, 100, 20_000, false);
    }
}

#[test]
fn random_entry_starves_no_key() {
    let mut rng = StdRng::seed_from_u64(7);
    let mut d = Dict::new();
    for k in 0..40u64 {
        d.insert_unique(h(k), k, ());
    }
    // Removals shuffle the arena; sampling must stay uniform over what is left.
    for k in (0..40u64).step_by(4) {
        d.remove(h(k), |x| *x == k);
    }
    let draws = 60_000;
    let mut counts: HashMap<u64, usize> = HashMap::new();
    for _ in 0..draws {
        let (k, _) = d.random_entry(&mut rng).expect("non-empty");
        *counts.entry(*k).or_default() += 1;
    }
    assert_eq!(counts.len(), 30, "some key was never drawn");
    let expect = draws / 30; // 2000, standard deviation ~44
    for (k, c) in counts {
        assert!(k % 4 != 0, "removed key {k} drawn");
        assert!(
            c > expect * 8 / 10 && c < expect * 12 / 10,
            "key {k}: {c} draws"
        );
    }
    assert!(Dict::<u64, ()>::new().random_entry(&mut rng).is_none());
}

/// Keys chosen so that one hasher instance (the attacker's model of our hash) gives them equal
/// low bits still spread under a different instance, before and after a rehash.
#[test]
fn hostile_keys_spread_under_a_fresh_key() {
    let attacker = KeyHasher::new();
    let mut hostile: Vec<Vec<u8>> = Vec::new();
    let mut i = 0u64;
    while hostile.len() < 256 {
        let k = format!("evil:{i:016}").into_bytes();
        if attacker.hash_key(&k) & 0x3ff == 0 {
            hostile.push(k);
        }
        i += 1;
    }
    // Under the attacker's own key they all share one bucket of any table up to 1024.
    let mut flooded: Map<Vec<u8>, u32> = Map::with_hasher(0, attacker.clone());
    for (n, k) in hostile.iter().enumerate() {
        flooded.insert(k.clone(), n as u32);
    }
    let d = flooded.dict_mut();
    while d.is_rehashing() {
        d.rehash_step(100);
    }
    assert_eq!(
        longest_chain(flooded.dict()),
        256,
        "the attack works against a known key"
    );

    // A server has its own key: the same keys spread.
    let mut m: Map<Vec<u8>, u32> = Map::new();
    for (n, k) in hostile.iter().enumerate() {
        m.insert(k.clone(), n as u32);
        if n == 100 {
            assert!(longest_chain(m.dict()) <= 8, "mid-rehash chains too long");
        }
    }
    let d = m.dict_mut();
    while d.is_rehashing() {
        d.rehash_step(100);
    }
    assert!(m.dict().num_buckets() >= 256);
    assert!(
        longest_chain(m.dict()) <= 8,
        "chain of {}",
        longest_chain(m.dict())
    );
    for (n, k) in hostile.iter().enumerate() {
        assert_eq!(m.get(k), Some(&(n as u32)));
    }
}

fn longest_chain<K, V>(d: &Dict<K, V>) -> usize {
    (0..d.num_buckets())
        .map(|b| d.bucket_entries(b).count())
        .max()
        .unwrap_or(0)
}

#[test]
fn bucket_walk_with_meta_sees_each_entry_once_with_its_word() {
    let mut d = Dict::new();
    for k in 0..3000u64 {
        d.insert_unique_meta(h(k), k, (), (k * 7) as u32);
    }
    // Change some words after insertion: the walk must see the current one.
    for k in (0..3000u64).step_by(3) {
        let (_, _, m) = d.find_meta_mut(h(k), |x| *x == k).unwrap();
        *m = k as u32 + 1;
    }
    let mut seen = HashMap::new();
    for b in 0..d.num_buckets() {
        let plain: Vec<u64> = d.bucket_entries(b).map(|(k, _)| *k).collect();
        let with: Vec<u64> = d
            .bucket_entries(b)
            .with_meta()
            .map(|(k, _, _)| *k)
            .collect();
        assert_eq!(plain, with, "bucket {b}: same chain, same order");
        for (k, _, m) in d.bucket_entries(b).with_meta() {
            assert!(seen.insert(*k, m).is_none(), "key {k} twice");
        }
    }
    assert_eq!(seen.len(), 3000);
    for (k, m) in seen {
        let want = if k % 3 == 0 {
            k as u32 + 1
        } else {
            (k * 7) as u32
        };
        assert_eq!(m, want, "key {k}");
    }
}
