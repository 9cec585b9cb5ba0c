//! The sorted set against a model (a sorted `Vec`), in both forms and across conversions, with
//! clones taken as a snapshot would; and the work a write to a held big sorted set does.

use super::*;
use crate::types::cow_copied;
use proptest::prelude::*;

type Model = Vec<(Vec<u8>, f64)>;

fn sort(model: &mut Model) {
    model.sort_by(|x, y| x.1.total_cmp(&y.1).then(x.0.cmp(&y.0)));
}

fn check_form(z: &ZSet) {
    match &z.repr {
        Repr::Small(s) => assert!(s.len() <= BIG_AT),
        Repr::Big(b) => {
            b.order.check();
            assert_eq!(b.scores.len(), b.order.len());
            assert!(b.order.len() >= BIG_AT / 4);
        }
    }
    assert_eq!(
        z.mem_usage(),
        z.mem_usage_recount(),
        "chunked {}, len {}",
        z.is_chunked(),
        z.len()
    );
}

/// Every read of `z` against the sorted model.
fn check_against(z: &ZSet, model: &Model, probe: usize) {
    check_form(z);
    assert_eq!(z.len(), model.len());
    let got: Model = z.iter().map(|(m, s)| (m.to_vec(), s)).collect();
    if let Some(k) = (0..got.len().max(model.len())).find(|&k| got.get(k) != model.get(k)) {
        panic!(
            "first difference at {k}: {:?} vs model {:?}",
            got.get(k),
            model.get(k)
        );
    }
    if model.is_empty() {
        assert!(z.get_by_rank(0).is_none());
        return;
    }
    let i = probe % model.len();
    let (m, s) = &model[i];
    assert_eq!(z.rank(m), Some(i));
    assert_eq!(z.score(m), Some(*s));
    assert_eq!(z.get_by_rank(i), Some((m.as_slice(), *s)));
    let down: Vec<&[u8]> = z.iter_from_rank(i, true).map(|(m, _)| m).collect();
    let want: Vec<&[u8]> = model[..=i]
        .iter()
        .rev()
        .map(|(m, _)| m.as_slice())
        .collect();
    assert_eq!(down, want);
    let up = z.iter_from_rank(i, false).count();
    assert_eq!(up, model.len() - i);
    let below = z.count_while(|_, sc| sc < *s);
    assert_eq!(below, model.iter().filter(|(_, sc)| sc < s).count());
    let upto = z.count_while(|mm, sc| sc < *s || (sc == *s && mm <= m.as_slice()));
    assert_eq!(upto, i + 1);
    assert_eq!(z.rank(b"absent member"), None);
}

#[derive(Clone, Debug)]
enum Op {
    Add(u16, i8),
    Remove(u16),
    /// Adds members `from..from + n` with scores `0 - (i % 7)`.
    Bulk(u16, u16),
    RemoveRanks(u16, u16),
    PopFirst,
    PopLast,
    Snapshot,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0..3000u16, -5..5i8).prop_map(|(m, s)| Op::Add(m, s)),
        3 => (0..3000u16).prop_map(Op::Remove),
        1 => (0..3000u16, 0..1500u16).prop_map(|(f, n)| Op::Bulk(f, n)),
        1 => (0..2000u16, 0..1200u16).prop_map(|(a, n)| Op::RemoveRanks(a, n)),
        1 => Just(Op::PopFirst),
        1 => Just(Op::PopLast),
        1 => Just(Op::Snapshot),
    ]
}

fn name(m: u16) -> Vec<u8> {
    format!("m{m}").into_bytes()
}

fn model_set(model: &mut Model, m: Vec<u8>, s: f64) -> bool {
    let added = match model.iter_mut().find(|(mm, _)| *mm == m) {
        Some(e) => {
            e.1 = s;
            false
        }
        None => {
            model.push((m, s));
            true
        }
    };
    sort(model);
    added
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    /// Random writes (crossing the chunked form's thresholds both ways) against the model;
    /// clones taken at random points keep their contents while the original changes.
    #[test]
    fn model_with_snapshots(ops in proptest::collection::vec(op(), 1..60)) {
        let mut z = ZSet::new();
        let mut model: Model = Vec::new();
        let mut snaps: Vec<(ZSet, Model)> = Vec::new();
        for (k, o) in ops.iter().enumerate() {
            match o {
                Op::Add(m, s) => {
                    let added = z.insert(name(*m), f64::from(*s));
                    prop_assert_eq!(added, model_set(&mut model, name(*m), f64::from(*s)));
                }
                Op::Remove(m) => {
                    let want = model.iter().position(|(mm, _)| *mm == name(*m)).map(|i| model.remove(i).1);
                    prop_assert_eq!(z.remove(&name(*m)), want);
                }
                Op::Bulk(from, n) => {
                    for i in *from..from.saturating_add(*n) {
                        let s = 0.0 - f64::from(i % 7);
                        prop_assert_eq!(z.insert(name(i), s), model_set(&mut model, name(i), s));
                    }
                }
                Op::RemoveRanks(a, n) => {
                    let (a, b) = (usize::from(*a), usize::from(*a) + usize::from(*n));
                    let end = b.min(model.len());
                    let want = end.saturating_sub(a);
                    if a < end {
                        model.drain(a..end);
                    }
                    prop_assert_eq!(z.remove_rank_range(a, b), want);
                }
                Op::PopFirst => {
                    let want = (!model.is_empty()).then(|| model.remove(0));
                    prop_assert_eq!(z.pop_first(), want);
                }
                Op::PopLast => prop_assert_eq!(z.pop_last(), model.pop()),
                Op::Snapshot => snaps.push((z.clone(), model.clone())),
            }
            check_against(&z, &model, k * 7919);
        }
        for (i, (s, m)) in snaps.iter().enumerate() {
            check_against(s, m, i);
        }
    }
}

#[test]
fn forms_switch_at_the_thresholds() {
    let mut z: ZSet = (0..BIG_AT).map(|i| (format!("m{i}"), i as f64)).collect();
    assert!(!z.is_chunked());
    z.insert(&b"one more"[..], 0.5);
    assert!(z.is_chunked());
    while z.len() > BIG_AT / 4 {
        z.pop_last();
        assert!(z.is_chunked());
    }
    z.pop_last();
    assert!(!z.is_chunked());
    assert_eq!(z.len(), BIG_AT / 4 - 1);
    assert_eq!(z.get_by_rank(1), Some((&b"one more"[..], 0.5)));
}

#[test]
fn negative_zero_is_kept_only_past_the_listpack_limits() {
    let mut z = ZSet::new();
    z.insert(&b"a"[..], -0.0);
    assert!(z.score(b"a").unwrap().is_sign_positive());
    let mut z: ZSet = (0..=MAX_COMPACT_ENTRIES)
        .map(|i| (i.to_string(), 1.0))
        .collect();
    z.insert(&b"a"[..], -0.0);
    assert!(z.score(b"a").unwrap().is_sign_negative());
    let mut z = ZSet::new();
    z.insert(vec![b'm'; MAX_COMPACT_VALUE + 1], 2.0);
    z.insert(&b"a"[..], -0.0);
    assert!(z.score(b"a").unwrap().is_sign_negative());
    // In the chunked form too, and an update from 0 to -0 is stored.
    let mut z: ZSet = (0..2000).map(|i| (i.to_string(), 0.0)).collect();
    assert!(z.is_chunked());
    z.insert(&b"5"[..], -0.0);
    assert!(z.score(b"5").unwrap().is_sign_negative());
    assert_eq!(
        z.rank(b"5"),
        Some(z.iter().position(|(m, _)| m == b"5").unwrap())
    );
}

#[test]
fn nan_is_refused() {
    let mut z = ZSet::new();
    assert!(!z.insert(&b"a"[..], f64::NAN));
    assert!(z.is_empty());
    let mut z: ZSet = (0..2000).map(|i| (i.to_string(), 1.0)).collect();
    assert!(!z.insert(&b"a"[..], f64::NAN));
    assert!(!z.insert(&b"7"[..], f64::NAN));
    assert_eq!(z.score(b"7"), Some(1.0));
}

/// A write to a 1M-member sorted set that a clone (the snapshot's copy) still shares copies
/// O(chunk) elements: the clone copies pointers (the table's chunks, segments and directory,
/// the order's chunks and tree) and each ZADD / ZREM / score update / pop / rank-range removal
/// copies at most a few chunks and segments (a rank range: that per member removed). Reads stay right in both copies.
#[test]
fn write_to_a_shared_big_zset_copies_o_chunk() {
    use super::super::ranked::RCHUNK;
    use super::super::segtable::{CHUNK, SEG_MAX};
    const N: usize = 1_000_000;
    let mut z: ZSet = (0..N).map(|i| (format!("e:{i}"), i as f64)).collect();
    assert!(z.is_chunked());
    // Clone: table chunks + segments + directory (<= 2 slots per segment) + order chunks + tree.
    let pointers = N / CHUNK + 3 * N / (SEG_MAX / 2) + 2 * N / (RCHUNK / 4) + 16;
    // One write: two table chunks, two segments (or a split), two order chunks (a merge).
    let bound = 2 * CHUNK + 2 * SEG_MAX + 3 * RCHUNK;
    let mut worst = 0;
    for round in 0..50usize {
        let snapshot = z.clone();
        let before = cow_copied();
        let mut w = snapshot.clone(); // what Arc::make_mut does to a held value
        let clone_cost = (cow_copied() - before) as usize;
        assert!(
            clone_cost <= pointers,
            "clone copied {clone_cost} > {pointers}"
        );
        let i = round * 19_997 % N;
        let at_i = snapshot.get_by_rank(i).map(|(m, s)| (m.to_vec(), s));
        let before = cow_copied();
        match round % 6 {
            0 => assert!(w.insert(format!("new:{round}"), i as f64 + 0.5)),
            1 => assert_eq!(w.remove(format!("e:{i}").as_bytes()), Some(i as f64)),
            2 => assert!(!w.insert(format!("e:{i}"), (N - i) as f64)), // ZINCRBY: moves
            3 => assert!(!w.insert(format!("e:{i}"), i as f64 + 0.25)), // stays in place
            4 => assert!(w.pop_first().is_some()),
            _ => assert_eq!(w.remove_rank_range(i, i + 3), 3),
        }
        let copied = (cow_copied() - before) as usize;
        worst = worst.max(copied);
        // A rank range copies per removed member what one ZREM does (its table entries sit in
        // unrelated chunks), so ZREMRANGEBYRANK of k members is O(k * chunk).
        let bound = if round % 6 == 5 { 3 * bound } else { bound };
        assert!(
            copied <= bound,
            "round {round}: a write copied {copied} > {bound}"
        );
        assert_eq!(snapshot.len(), z.len());
        let (m, s) = at_i.unwrap();
        assert_eq!(snapshot.get_by_rank(i), Some((m.as_slice(), s)));
        assert_eq!(snapshot.rank(&m), Some(i));
        z = w;
    }
    assert!(worst > 0, "the writes met shared chunks");
    if let Repr::Big(b) = &z.repr {
        b.order.check();
    }
    assert_eq!(z.mem_usage(), z.mem_usage_recount());
}
