//! The sorted set against a model (a sorted `Vec`), in all three forms and across conversions,
//! with clones taken as a snapshot would; the packed form against a model of Redis's listpack
//! rules; and the work a write to a held big sorted set does.

use super::*;
use crate::types::cow_copied;
use proptest::prelude::*;

type Model = Vec<(Vec<u8>, f64)>;

fn sort(model: &mut Model) {
    model.sort_by(|x, y| x.1.total_cmp(&y.1).then(x.0.cmp(&y.0)));
}

fn check_form(z: &ZSet) {
    match z.view() {
        View::Packed(p) => assert!(p.len() % 2 == 0 && p.len() / 2 <= MAX_COMPACT_ENTRIES),
        View::Small(s) => assert!(s.len() <= BIG_AT),
        View::Big(b) => {
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
    if let View::Big(b) = z.view() {
        b.order.check();
    }
    assert_eq!(z.mem_usage(), z.mem_usage_recount());
}

/// A model of Redis's sorted set: `(score, member)` sorted as every form sorts (score with
/// `-0 == 0`, ties by member bytes), and whether Redis would still keep it a listpack (a new
/// member past 128 or longer than 64 bytes ends that for good; a listpack stores -0 as 0).
#[derive(Clone, Debug, Default)]
struct Listpack {
    pairs: Vec<(f64, Vec<u8>)>,
    compact: bool,
}

impl Listpack {
    fn new() -> Listpack {
        Listpack {
            pairs: Vec::new(),
            compact: true,
        }
    }

    fn find(&self, m: &[u8]) -> Option<usize> {
        self.pairs.iter().position(|(_, mm)| mm == m)
    }

    fn insert(&mut self, m: Vec<u8>, s: f64) -> bool {
        let found = self.find(&m);
        if found.is_none()
            && (self.pairs.len() >= MAX_COMPACT_ENTRIES || m.len() > MAX_COMPACT_VALUE)
        {
            self.compact = false;
        }
        let s = if self.compact && s == 0.0 { 0.0 } else { s };
        match found {
            Some(i) => self.pairs[i].0 = s,
            None => self.pairs.push((s, m)),
        }
        self.pairs
            .sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap().then_with(|| a.1.cmp(&b.1)));
        found.is_none()
    }
}

/// Member `id`: short (`m<id>`, or the empty member for 0) or long (`id` zero-padded to 64,
/// 65 or 66 bytes: at the listpack limit and past it).
fn member(id: u16, long: bool) -> Vec<u8> {
    match (long, id) {
        (false, 0) => Vec::new(),
        (false, _) => format!("m{id}").into_bytes(),
        (true, _) => {
            format!("{:0>w$}", id, w = MAX_COMPACT_VALUE + usize::from(id % 3)).into_bytes()
        }
    }
}

/// Bytes of a packed score entry, from the score's value: an integer that fits 8, 16 or 32 bits
/// takes that many, anything else (fractions, infinities, big values) 8 bytes.
fn packed_score_len(s: f64) -> usize {
    let integral = s.fract() == 0.0 && s.is_finite() && !(s == 0.0 && s.is_sign_negative());
    match s {
        _ if !integral => 8,
        s if (-128.0..=127.0).contains(&s) => 1,
        s if (-32768.0..=32767.0).contains(&s) => 2,
        s if (-2147483648.0..=2147483647.0).contains(&s) => 4,
        _ => 8,
    }
}

/// Scores with ties, both zeros and the infinities.
const SCORES: [f64; 13] = [
    0.0,
    -0.0,
    1.0,
    -1.0,
    200.0,
    -40000.0,
    3e9,
    -2147483648.0,
    2.5,
    1e300,
    f64::INFINITY,
    f64::NEG_INFINITY,
    -7.25,
];

#[derive(Clone, Debug)]
enum LpOp {
    Insert(u16, bool, usize),
    Remove(u16, bool),
    /// Adds (or rescores) short members `from..from + n`, scores cycling through [`SCORES`].
    Bulk(u16, u16),
    RemoveRanks(u16, u16),
    PopFirst,
    PopLast,
}

fn lp_op() -> impl Strategy<Value = LpOp> {
    prop_oneof![
        8 => (0..300u16, proptest::bool::weighted(0.05), 0..SCORES.len())
            .prop_map(|(m, l, s)| LpOp::Insert(m, l, s)),
        3 => (0..300u16, proptest::bool::weighted(0.05)).prop_map(|(m, l)| LpOp::Remove(m, l)),
        1 => (0..300u16, 0..140u16).prop_map(|(f, n)| LpOp::Bulk(f, n)),
        1 => (0..150u16, 0..20u16).prop_map(|(a, n)| LpOp::RemoveRanks(a, n)),
        1 => Just(LpOp::PopFirst),
        1 => Just(LpOp::PopLast),
    ]
}

fn bits(pairs: impl Iterator<Item = (f64, Vec<u8>)>) -> Vec<(u64, Vec<u8>)> {
    pairs.map(|(s, m)| (s.to_bits(), m)).collect()
}

/// Every read of `z` against the listpack model, at ranks around `probe`.
fn check_listpack(z: &ZSet, lp: &Listpack, probe: usize) -> Result<(), TestCaseError> {
    let n = lp.pairs.len();
    prop_assert_eq!(z.len(), n);
    prop_assert_eq!(z.is_empty(), n == 0);
    prop_assert_eq!(z.is_compact(), lp.compact);
    prop_assert!(!z.is_chunked() || !lp.compact);
    prop_assert_eq!(z.mem_usage(), z.mem_usage_recount());
    if lp.compact {
        let bytes: usize = lp
            .pairs
            .iter()
            .map(|(s, m)| m.len() + 2 + packed_score_len(*s) + 2)
            .sum();
        prop_assert_eq!(
            z.mem_usage(),
            std::mem::size_of::<ZSet>() + crate::memory::alloc_size(bytes)
        );
    }
    let want = bits(lp.pairs.iter().cloned());
    prop_assert_eq!(bits(z.iter().map(|(m, s)| (s, m.to_vec()))), want.clone());
    let ranks = [0, 1, n / 2, n.saturating_sub(1), n, n + 3, probe % (n + 1)];
    for r in ranks {
        let up = bits(z.iter_from_rank(r, false).map(|(m, s)| (s, m.to_vec())));
        prop_assert_eq!(&up[..], &want[r.min(n)..]);
        let down = bits(z.iter_from_rank(r, true).map(|(m, s)| (s, m.to_vec())));
        let want_down: Vec<_> = if r < n {
            want[..=r].iter().rev().cloned().collect()
        } else {
            Vec::new()
        };
        prop_assert_eq!(down, want_down);
        prop_assert_eq!(
            z.get_by_rank(r).map(|(m, s)| (s.to_bits(), m.to_vec())),
            want.get(r).cloned()
        );
    }
    for (i, (s, m)) in lp.pairs.iter().enumerate() {
        if i % 7 == probe % 7 || i + 1 == n {
            prop_assert_eq!(z.rank(m), Some(i));
            prop_assert_eq!(z.score(m).map(f64::to_bits), Some(s.to_bits()));
            prop_assert!(z.contains(m));
            let below = z.count_while(|_, sc| sc < *s);
            prop_assert_eq!(below, lp.pairs.iter().filter(|(sc, _)| sc < s).count());
        }
    }
    for absent in [member(299 + (probe % 7) as u16, false), b"absent".to_vec()] {
        if lp.find(&absent).is_none() {
            prop_assert_eq!(z.rank(&absent), None);
            prop_assert_eq!(z.score(&absent), None);
        }
    }
    let c = z.clone();
    prop_assert!(c == *z);
    prop_assert_eq!(c.is_compact(), z.is_compact());
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]
    /// The sorted set against the listpack model: packed while Redis would keep a listpack
    /// (same order, -0 stored as 0, exact memory), a skip list (or the chunked form) for good
    /// after the first write past the limits, with the same reads in every form.
    #[test]
    fn zset_equals_a_listpack_then_a_skiplist(ops in proptest::collection::vec(lp_op(), 1..80)) {
        let mut z = ZSet::new();
        let mut lp = Listpack::new();
        for (k, o) in ops.into_iter().enumerate() {
            match o {
                LpOp::Insert(id, long, s) => {
                    let m = member(id, long);
                    prop_assert_eq!(z.insert(m.as_slice(), SCORES[s]), lp.insert(m, SCORES[s]));
                }
                LpOp::Remove(id, long) => {
                    let m = member(id, long);
                    let want = lp.find(&m).map(|i| lp.pairs.remove(i).0.to_bits());
                    prop_assert_eq!(z.remove(&m).map(f64::to_bits), want);
                }
                LpOp::Bulk(from, n) => {
                    for i in from..from.saturating_add(n) {
                        let (m, s) = (member(i, false), SCORES[usize::from(i) % SCORES.len()]);
                        prop_assert_eq!(z.insert(m.clone(), s), lp.insert(m, s));
                    }
                }
                LpOp::RemoveRanks(a, n) => {
                    let (a, b) = (usize::from(a), usize::from(a) + usize::from(n));
                    let end = b.min(lp.pairs.len());
                    let want = end.saturating_sub(a);
                    if a < end {
                        lp.pairs.drain(a..end);
                    }
                    prop_assert_eq!(z.remove_rank_range(a, b), want);
                }
                LpOp::PopFirst => {
                    let want = (!lp.pairs.is_empty()).then(|| lp.pairs.remove(0));
                    prop_assert_eq!(
                        z.pop_first().map(|(m, s)| (s.to_bits(), m)),
                        want.map(|(s, m)| (s.to_bits(), m))
                    );
                }
                LpOp::PopLast => prop_assert_eq!(
                    z.pop_last().map(|(m, s)| (s.to_bits(), m)),
                    lp.pairs.pop().map(|(s, m)| (s.to_bits(), m))
                ),
            }
            check_form(&z);
            check_listpack(&z, &lp, k * 31)?;
        }
    }
}

/// Members longer than a packed entry can hold, the empty member and NaN: the set leaves the
/// packed form (or refuses NaN) without panicking.
#[test]
fn packed_form_edges() {
    let mut z: ZSet = [("b", 1.0), ("a", 1.0), ("", 1.0)].into_iter().collect();
    assert!(z.is_compact());
    assert!(!z.insert(&b"a"[..], f64::NAN));
    assert_eq!(
        z.iter().map(|(m, _)| m).collect::<Vec<_>>(),
        [&b""[..], b"a", b"b"]
    );
    assert!(z.insert(vec![b'x'; 1000], 0.5));
    assert!(!z.is_compact());
    assert_eq!(z.rank(&[b'x'; 1000]), Some(0));
    assert_eq!(z.len(), 4);
    // Removing back below the limits does not pack it again (Redis does not either).
    assert_eq!(z.remove(&[b'x'; 1000]), Some(0.5));
    assert!(!z.is_compact());
    // A 4-member set with small integer scores: its struct and one buffer of
    // 4 * (member + 2) + 4 * (1 + 2) bytes; with fractions, 4 * (8 + 2) for the scores.
    let z: ZSet = (0..4).map(|i| (format!("m{i}"), f64::from(i))).collect();
    assert_eq!(
        z.mem_usage(),
        std::mem::size_of::<ZSet>() + crate::memory::alloc_size(4 * 4 + 4 * 3)
    );
    let z: ZSet = (0..4)
        .map(|i| (format!("m{i}"), f64::from(i) + 0.5))
        .collect();
    assert_eq!(
        z.mem_usage(),
        std::mem::size_of::<ZSet>() + crate::memory::alloc_size(4 * 4 + 4 * 10)
    );
    // Every integer width and its bounds round-trip, in order.
    let edges = [
        -129.0,
        -128.0,
        127.0,
        128.0,
        -32769.0,
        -32768.0,
        32767.0,
        32768.0,
        -2147483649.0,
        -2147483648.0,
        2147483647.0,
        2147483648.0,
        1e15,
        -0.0,
        0.0,
    ];
    let z: ZSet = edges
        .iter()
        .enumerate()
        .map(|(i, s)| (format!("e{i}"), *s))
        .collect();
    assert!(z.is_compact());
    let mut want: Vec<f64> = edges.to_vec();
    want.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let got: Vec<f64> = z.iter().map(|(_, s)| s).collect();
    assert_eq!(got, want);
    for (i, s) in edges.iter().enumerate() {
        assert_eq!(z.score(format!("e{i}").as_bytes()), Some(*s));
    }
    assert!(std::mem::size_of::<ZSet>() <= 32);
}
