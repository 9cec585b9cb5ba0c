//! Checking a snapshot: replay its output (an RDB part, then RESP deltas in converging mode:
//! Redis's "RDB preamble + AOF" layout) into a fresh keyspace and compare it with the expected
//! state at the snapshot's cut.
//!
//! The expected state is rebuilt the way `crates/snapshot/tests/it/protocol.rs` does it: a base
//! taken while writers were stopped, plus the propagated commands recorded by a [`GatedSink`]
//! up to the log position recorded inside the snapshot's barrier
//! (`SnapshotOptions::on_barrier`, called while every shard is locked).
//!
//! Cost (the demo verifies 1M keys twice): the base is an [`Expected`] keyspace that shares the
//! values of the live keyspace through their `Arc` handles ([`cow_copy`]: copy-on-write, as a
//! snapshot's baselines; writers copy a value before changing it), so it costs the table and the
//! keys, not a copy of the data. The recorded commands are applied to it, so it is the state at
//! the cut; after the comparison the rest of the log is applied, so it is again the live state
//! and serves as the base of the next verification. The snapshot is replayed into one fresh
//! keyspace by [`forkless_snapshot::load`] (streaming: batches of entries, no list of every
//! entry is built), and the two keyspaces are compared without dumping either
//! (no canonical copy of any value is made): a content [`Digest`] of each side, one thread
//! each, walking its tables in order; only when the digests differ, a key-by-key comparison
//! names the keys that differ.

use forkless_keyspace::{render_aof, Config, Keyspace, Propagated, PropagationSink, Slot, Value};
use forkless_rdb::model::Entry;
use forkless_snapshot::LoadStats;
use forkless_sync::atomic::{AtomicBool, Ordering};
use forkless_sync::{thread, Mutex};

/// A propagation sink that records only while enabled (measurement passes leave it off, so the
/// log costs nothing but a flag check).
#[derive(Debug, Default)]
pub struct GatedSink {
    on: AtomicBool,
    ops: Mutex<Vec<Propagated>>,
}

impl GatedSink {
    /// A disabled, empty sink.
    pub fn new() -> GatedSink {
        GatedSink::default()
    }
    /// Start or stop recording.
    pub fn set_enabled(&self, on: bool) {
        self.on.store(on, Ordering::SeqCst);
    }
    /// Commands recorded so far.
    pub fn len(&self) -> usize {
        self.ops.lock().len()
    }
    /// True when nothing is recorded.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Take the log, leaving the sink empty.
    pub fn take(&self) -> Vec<Propagated> {
        std::mem::take(&mut *self.ops.lock())
    }
}

impl PropagationSink for GatedSink {
    fn propagate(&self, ops: &[Propagated]) {
        if self.on.load(Ordering::Relaxed) {
            self.ops.lock().extend_from_slice(ops);
        }
    }
}

/// A fresh keyspace for replays (fixed seed, so results compare by content only).
pub fn fresh() -> Keyspace {
    Keyspace::new(Config::seeded(99))
}

/// A keyspace with the entries of `src` (same number of databases, expiries kept), sharing
/// their values through the `Arc` handles: no value is copied. A later write to `src` copies
/// the value it changes first (copy-on-write, as for a snapshot's baselines), so the result
/// keeps the state of `src` at the time of the call. Call it while nothing writes to `src`
/// (shards are read one at a time).
pub fn cow_copy(src: &Keyspace) -> Keyspace {
    let dst = Keyspace::new(Config {
        databases: src.databases(),
        ..Config::seeded(99)
    });
    let mut items: Vec<(u32, forkless_keyspace::Key, Slot)> = Vec::new();
    for i in 0..src.num_shards() {
        items.clear();
        src.with_shard(i, |s| {
            for db in 0..s.databases() {
                for (k, slot) in s.db(db).iter() {
                    items.push((db, k.into(), slot.clone()));
                }
            }
        });
        for (db, k, slot) in items.drain(..) {
            let h = dst.hash_key(&k);
            dst.with_shard(dst.shard_of(h), |s| s.db_mut(db).insert_new(h, k, slot));
        }
    }
    dst
}

/// The expected state: a base (see [`cow_copy`]) moved forward by recorded commands.
#[derive(Debug)]
pub struct Expected {
    ks: Keyspace,
    /// Commands applied so far.
    pub applied: u64,
}

impl Expected {
    /// The state of `live` now (nothing may write to it during the call).
    pub fn capture(live: &Keyspace) -> Expected {
        Expected {
            ks: cow_copy(live),
            applied: 0,
        }
    }
    /// A base given as entries (tests).
    pub fn from_entries(entries: Vec<Entry>) -> Result<Expected, String> {
        let ks = fresh();
        ks.load(entries)
            .map_err(|e| format!("loading the base: {e}"))?;
        Ok(Expected { ks, applied: 0 })
    }
    /// Apply recorded commands, in order (they replay as an AOF would: loading mode, so a key
    /// that expired since does not vanish before its recorded `DEL`).
    pub fn advance(&mut self, log: &[Propagated]) -> Result<(), String> {
        if log.is_empty() {
            return Ok(());
        }
        let r = forkless_snapshot::load_commands(&render_aof(log), &self.ks);
        self.applied += log.len() as u64;
        r.map(|_| ())
            .map_err(|e| format!("applying the recorded commands: {e}"))
    }
    /// The keyspace holding the expected state.
    pub fn keyspace(&self) -> &Keyspace {
        &self.ks
    }
}

/// Replay a snapshot's bytes (RDB, then optional RESP deltas) into `ks` (normally [`fresh`]):
/// [`forkless_snapshot::load`].
pub fn replay_into(bytes: &[u8], ks: &Keyspace) -> Result<LoadStats, String> {
    forkless_snapshot::load(bytes, ks).map_err(|e| e.to_string())
}

/// Replay a snapshot's bytes into a fresh keyspace; returns its canonical dump.
pub fn replay(bytes: &[u8]) -> Result<Vec<Entry>, String> {
    let ks = fresh();
    replay_into(bytes, &ks)?;
    Ok(ks.dump())
}

/// Same content: same type, elements, order where the type has one (lists; sorted sets by
/// score then member), members/fields for sets and hashes.
pub fn same_value(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::String(x), Value::String(y)) => x == y,
        (Value::List(x), Value::List(y)) => x.len() == y.len() && x.iter().eq(y.iter()),
        (Value::Set(x), Value::Set(y)) => x.len() == y.len() && x.iter().all(|m| y.contains(m)),
        (Value::ZSet(x), Value::ZSet(y)) => x.len() == y.len() && x.iter().eq(y.iter()),
        (Value::Hash(x), Value::Hash(y)) => {
            x.len() == y.len() && x.iter().all(|(f, v)| y.get(f) == Some(v))
        }
        (Value::Stream(x), Value::Stream(y)) => {
            let (mut p, mut q) = (x.to_model(), y.to_model());
            p.relay_nodes();
            q.relay_nodes();
            p == q
        }
        _ => false,
    }
}

fn describe(v: &Value) -> String {
    let n = match v {
        Value::String(s) => return format!("a string of {} bytes", s.len()),
        Value::List(l) => l.len(),
        Value::Set(s) => s.len(),
        Value::ZSet(z) => z.len(),
        Value::Hash(h) => h.len(),
        Value::Stream(s) => s.len() as usize,
    };
    format!("a {} of {n}", v.type_name())
}

/// How two keyspaces differ.
#[derive(Debug, Default)]
struct Diff {
    compared: u64,
    missing: u64,
    changed: u64,
    first: Option<String>,
}

impl Diff {
    fn note(&mut self, what: String) {
        if self.first.is_none() {
            self.first = Some(what);
        }
    }
    fn merge(&mut self, o: Diff) {
        self.compared += o.compared;
        self.missing += o.missing;
        self.changed += o.changed;
        if self.first.is_none() {
            self.first = o.first;
        }
    }
}

fn key_name(db: u32, k: &[u8]) -> String {
    format!("db {db} key {:?}", String::from_utf8_lossy(k))
}

fn live_keys(ks: &Keyspace, now: i64) -> u64 {
    (0..ks.num_shards())
        .map(|i| {
            ks.with_shard(i, |s| {
                (0..s.databases())
                    .map(|db| s.db(db).iter().filter(|(_, v)| !v.is_expired(now)).count() as u64)
                    .sum::<u64>()
            })
        })
        .sum()
}

/// A digest of a keyspace's content: the number of live keys and the wrapping sum of one
/// 64-bit hash per key over (database, key, expiry, value), members of sets and hashes summed
/// the same way so that their order does not matter. The hash is hashbrown's default
/// (foldhash), seeded at random for each comparison ([`DigestKeys`]), so no fixed input can be
/// built to collide. Two keyspaces with the same content have the same digest; a difference
/// (a value, a key, an expiry, a database, a duplicated key in place of a missing one) leaves
/// the sum unchanged only by a 64-bit coincidence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Digest {
    /// Live keys.
    pub keys: u64,
    /// Sum of the keys' hashes.
    pub sum: u64,
}

/// The random seed of one comparison (both sides must use the same).
#[derive(Clone, Debug)]
pub struct DigestKeys(hashbrown::DefaultHashBuilder);

impl DigestKeys {
    /// A fresh random seed.
    pub fn new() -> DigestKeys {
        DigestKeys(hashbrown::DefaultHashBuilder::default())
    }
}

impl Default for DigestKeys {
    fn default() -> Self {
        DigestKeys::new()
    }
}

fn hash_value(rs: &hashbrown::DefaultHashBuilder, v: &Value, h: &mut impl std::hash::Hasher) {
    use std::hash::BuildHasher;
    match v {
        Value::String(s) => {
            h.write_u8(0);
            h.write_usize(s.len());
            h.write(s);
        }
        Value::List(l) => {
            h.write_u8(1);
            h.write_usize(l.len());
            for e in l.iter() {
                h.write_usize(e.len());
                h.write(e);
            }
        }
        Value::Set(x) => {
            h.write_u8(2);
            h.write_usize(x.len());
            let sum = x.iter().fold(0u64, |a, m| a.wrapping_add(rs.hash_one(m)));
            h.write_u64(sum);
        }
        Value::ZSet(z) => {
            h.write_u8(3);
            h.write_usize(z.len());
            for (m, score) in z.iter() {
                h.write_usize(m.len());
                h.write(m);
                // -0.0 and 0.0 compare equal (and Redis's listpack stores -0 as 0).
                h.write_u64(if score == 0.0 { 0 } else { score.to_bits() });
            }
        }
        Value::Hash(x) => {
            h.write_u8(4);
            h.write_usize(x.len());
            let sum = x.iter().fold(0u64, |a, fv| a.wrapping_add(rs.hash_one(fv)));
            h.write_u64(sum);
        }
        Value::Stream(x) => {
            use forkless_rdb::stream::StreamId;
            h.write_u8(5);
            h.write_u64(x.len());
            h.write_u64(x.last_id.ms);
            h.write_u64(x.last_id.seq);
            for (id, pairs) in x.range(StreamId::MIN, StreamId::MAX, false, None) {
                h.write_u64(id.ms);
                h.write_u64(id.seq);
                for (f, v) in pairs {
                    h.write_usize(f.len());
                    h.write(&f);
                    h.write_usize(v.len());
                    h.write(&v);
                }
            }
        }
    }
}

/// The [`Digest`] of `ks`, leaving out keys expired at `now` (Unix ms), computed on the calling
/// thread (nothing may write to `ks` meanwhile).
pub fn digest(ks: &Keyspace, keys: &DigestKeys, now: i64) -> Digest {
    use std::hash::{BuildHasher, Hasher};
    let rs = &keys.0;
    let mut d = Digest { keys: 0, sum: 0 };
    for i in 0..ks.num_shards() {
        ks.with_shard(i, |s| {
            for db in 0..s.databases() {
                for (k, slot) in s.db(db).iter() {
                    if slot.is_expired(now) {
                        continue;
                    }
                    let mut h = rs.build_hasher();
                    h.write_u32(db);
                    h.write_usize(k.len());
                    h.write(k);
                    h.write_i64(slot.expire_at().unwrap_or(i64::MIN));
                    hash_value(rs, &slot.value.get(), &mut h);
                    d.keys += 1;
                    d.sum = d.sum.wrapping_add(h.finish());
                }
            }
        });
    }
    d
}

/// Compare two keyspaces (keys expired now are left out on both sides, as a dump leaves them
/// out): every key of `expected` must be in `got` with the same value and expiry, and `got`
/// must have no other key. Returns the number of keys. First the [`Digest`]s of both sides,
/// one thread each (sequential walks of both tables); only when they differ, a key-by-key
/// comparison ([`compare_key_by_key`]) says how many keys are missing, different or extra and
/// names the first one found. Nothing may write to either keyspace meanwhile.
pub fn compare_keyspaces(expected: &Keyspace, got: &Keyspace) -> Result<u64, String> {
    let now = expected.now_ms();
    let keys = DigestKeys::new();
    let (de, dg) = thread::scope(|s| {
        let h = s.spawn(|| digest(got, &keys, now));
        let de = digest(expected, &keys, now);
        (de, h.join().expect("digest thread panicked"))
    });
    if de == dg {
        return Ok(de.keys);
    }
    match compare_key_by_key(expected, got, now) {
        Ok(n) => Err(format!(
            "snapshot differs from the state at the cut: {} keys expected, {} replayed, content digests differ ({:016x} expected, {:016x} replayed) though no key differs ({n} compared)",
            de.keys, dg.keys, de.sum, dg.sum
        )),
        Err(e) => Err(e),
    }
}

/// The key-by-key comparison of [`compare_keyspaces`] (keys expired at `now` left out): Err
/// says how many keys are missing, different or extra and names the first one found. Runs on
/// two threads (shards split between them).
pub fn compare_key_by_key(expected: &Keyspace, got: &Keyspace, now: i64) -> Result<u64, String> {
    let shards = expected.num_shards();
    let threads = 2.min(shards);
    let part = |t: usize| -> Diff {
        let mut d = Diff::default();
        for i in (t..shards).step_by(threads) {
            expected.with_shard(i, |s| {
                for db in 0..s.databases() {
                    for (k, slot) in s.db(db).iter() {
                        if slot.is_expired(now) {
                            continue;
                        }
                        d.compared += 1;
                        let h = got.hash_key(k);
                        got.with_shard(got.shard_of(h), |g| {
                            let other = (db < g.databases())
                                .then(|| g.db(db).find(h, k))
                                .flatten()
                                .filter(|o| !o.is_expired(now));
                            match other {
                                None => {
                                    d.missing += 1;
                                    d.note(format!("{} is missing", key_name(db, k)));
                                }
                                Some(o) => {
                                    if o.expire_at() != slot.expire_at() {
                                        d.changed += 1;
                                        d.note(format!(
                                            "{}: expiry {:?} expected, {:?} replayed",
                                            key_name(db, k),
                                            slot.expire_at(),
                                            o.expire_at()
                                        ));
                                    } else if !same_value(&slot.value.get(), &o.value.get()) {
                                        d.changed += 1;
                                        d.note(format!(
                                            "{}: {} expected, {} replayed{}",
                                            key_name(db, k),
                                            describe(&slot.value.get()),
                                            describe(&o.value.get()),
                                            if describe(&slot.value.get())
                                                == describe(&o.value.get())
                                            {
                                                " with other contents"
                                            } else {
                                                ""
                                            }
                                        ));
                                    }
                                }
                            }
                        });
                    }
                }
            });
        }
        d
    };
    let mut diff = Diff::default();
    thread::scope(|s| {
        let hs: Vec<_> = (1..threads).map(|t| s.spawn(move || part(t))).collect();
        diff.merge(part(0));
        for h in hs {
            diff.merge(h.join().expect("compare thread panicked"));
        }
    });
    let got_keys = live_keys(got, now);
    let present = diff.compared - diff.missing;
    let extra = got_keys.saturating_sub(present);
    if extra > 0 && diff.first.is_none() {
        // Name one extra key (slow path, only on failure).
        'find: for i in 0..got.num_shards() {
            let found = got.with_shard(i, |g| {
                for db in 0..g.databases() {
                    for (k, slot) in g.db(db).iter() {
                        if slot.is_expired(now) {
                            continue;
                        }
                        let h = expected.hash_key(k);
                        let there = expected.with_shard(expected.shard_of(h), |e| {
                            db < e.databases()
                                && e.db(db).find(h, k).is_some_and(|o| !o.is_expired(now))
                        });
                        if !there {
                            return Some(format!("{} is not expected", key_name(db, k)));
                        }
                    }
                }
                None
            });
            if let Some(f) = found {
                diff.first = Some(f);
                break 'find;
            }
        }
    }
    if diff.missing == 0 && diff.changed == 0 && extra == 0 {
        return Ok(diff.compared);
    }
    Err(format!(
        "snapshot differs from the state at the cut: {} keys expected, {} replayed ({} missing, {} with another value, {} extra); first difference: {}",
        diff.compared,
        got_keys,
        diff.missing,
        diff.changed,
        extra,
        diff.first.unwrap_or_else(|| "not found".into())
    ))
}

/// The state obtained from `base` followed by the first `n` commands of `log`.
pub fn expected(base: Vec<Entry>, log: &[Propagated], n: usize) -> Result<Vec<Entry>, String> {
    let mut e = Expected::from_entries(base)?;
    e.advance(&log[..n.min(log.len())])?;
    Ok(e.ks.dump())
}

/// Compare two canonical dumps; Err names the first differing key and the counts.
pub fn compare(expected: &[Entry], got: &[Entry]) -> Result<(), String> {
    if expected == got {
        return Ok(());
    }
    let first = expected
        .iter()
        .zip(got)
        .find(|(a, b)| a != b)
        .map(|(a, _)| format!("db {} key {:?}", a.db, String::from_utf8_lossy(&a.key)))
        .unwrap_or_else(|| "a key past the shorter side".to_string());
    Err(format!(
        "snapshot differs from the state at the cut: {} keys expected, {} replayed; first difference at {first}",
        expected.len(),
        got.len()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use forkless_keyspace::Session;
    use forkless_snapshot::{install, run_snapshot, Barrier, Mode, Progress, SnapshotOptions};
    use forkless_sync::atomic::AtomicUsize;
    use forkless_sync::Arc;

    fn exec(ks: &Keyspace, argv: &[&[u8]]) {
        let r = ks.execute(&mut Session::default(), argv);
        assert!(!r.is_error(), "{r:?}");
    }

    struct Scenario {
        live: Arc<Keyspace>,
        base: Expected,
        log: Vec<Propagated>,
        cut: usize,
        out: Vec<u8>,
        delta_commands: u64,
    }

    /// A keyspace with every type and an expiry, a base taken, then a snapshot with writes
    /// injected after every batch of its walk (so a converging one has deltas), recorded.
    fn scenario(mode: Mode) -> Scenario {
        let mut ks = Keyspace::new(Config::seeded(5));
        let sink = Arc::new(GatedSink::new());
        ks.set_sink(sink.clone());
        let obs = install(&mut ks);
        let ks = Arc::new(ks);
        exec(&ks, &[b"SET", b"a", b"1"]);
        exec(&ks, &[b"SADD", b"s", b"x", b"y", b"z"]);
        exec(&ks, &[b"HSET", b"h", b"f", b"v", b"g", b"w"]);
        exec(&ks, &[b"ZADD", b"z", b"1", b"m", b"2", b"n"]);
        exec(&ks, &[b"SET", b"t", b"v", b"PX", b"1000000"]);
        for i in 0..300 {
            exec(&ks, &[b"SET", format!("k{i}").as_bytes(), b"filler"]);
        }
        let base = Expected::capture(&ks);
        sink.set_enabled(true);
        let cut = Arc::new(AtomicUsize::new(usize::MAX));
        let (c2, s2, ks2) = (cut.clone(), sink.clone(), ks.clone());
        let opts = SnapshotOptions {
            mode,
            batch_buckets: 4,
            on_barrier: Some(std::sync::Arc::new(move |b| {
                let wanted = match mode {
                    Mode::PointInTime => Barrier::Start,
                    Mode::Converging => Barrier::End,
                };
                if b == wanted {
                    c2.store(s2.len(), Ordering::SeqCst);
                }
            })),
            after_batch: Some(std::sync::Arc::new(move |i| {
                let i = i.to_string();
                exec(&ks2, &[b"INCR", b"a"]);
                exec(&ks2, &[b"RPUSH", b"l", format!("x{i}").as_bytes()]);
                exec(&ks2, &[b"HSET", b"h", i.as_bytes(), b"v"]);
                exec(&ks2, &[b"SET", format!("k{i}").as_bytes(), b"changed"]);
            })),
            ..Default::default()
        };
        let (out, res) = run_snapshot(
            &ks,
            obs.try_begin().unwrap(),
            &opts,
            Vec::new(),
            &Progress::default(),
            &AtomicBool::new(false),
        )
        .unwrap();
        sink.set_enabled(false);
        let log = sink.take();
        let cut = cut.load(Ordering::SeqCst);
        assert!(cut <= log.len() && log.len() > 100, "{cut} {}", log.len());
        Scenario {
            live: ks,
            base,
            log,
            cut,
            out,
            delta_commands: res.delta_commands,
        }
    }

    #[test]
    fn replays_a_snapshot_and_detects_a_wrong_cut() {
        for mode in [Mode::Converging, Mode::PointInTime] {
            let Scenario {
                live,
                mut base,
                log,
                cut,
                out,
                delta_commands,
            } = scenario(mode);
            let got = fresh();
            let st = replay_into(&out, &got).unwrap();
            // The RESP part starts with a SELECT.
            let select = u64::from(delta_commands > 0);
            assert_eq!(st.delta_commands, delta_commands + select);
            let keys = live_keys(&got, got.now_ms());
            match mode {
                Mode::Converging => {
                    assert_eq!(cut, log.len());
                    assert!(delta_commands > 10, "{delta_commands}");
                    // The cut is one command later or earlier than the true one: detected.
                    base.advance(&log[..cut - 1]).unwrap();
                    let err = compare_keyspaces(base.keyspace(), &got).unwrap_err();
                    assert!(err.starts_with("snapshot differs"), "{err}");
                    base.advance(&log[cut - 1..cut]).unwrap();
                    assert_eq!(compare_keyspaces(base.keyspace(), &got), Ok(keys));
                    // The end state is also the live one.
                    assert_eq!(compare_keyspaces(&live, &got), Ok(keys));
                }
                Mode::PointInTime => {
                    assert_eq!(cut, 0);
                    assert_eq!(compare_keyspaces(base.keyspace(), &got), Ok(keys));
                    // The live state (every write after the cut) is not the snapshot.
                    let err = compare_keyspaces(&live, &got).unwrap_err();
                    assert!(
                        err.contains("0 extra") && !err.contains(" 0 missing"),
                        "{err}"
                    );
                    base.advance(&log[..1]).unwrap();
                    assert!(compare_keyspaces(base.keyspace(), &got).is_err());
                }
            }
            // The canonical-dump check agrees.
            assert_eq!(replay(&out).unwrap(), got.dump());
            assert_eq!(
                compare(&expected(got.dump(), &log, 0).unwrap(), &got.dump()),
                Ok(())
            );
        }
        assert!(replay(b"REDIS0010garbage").is_err());
    }

    #[test]
    fn detects_an_altered_replay() {
        let sc = scenario(Mode::Converging);
        let alterations: &[(&[&[u8]], &str)] = &[
            (&[b"INCR", b"a"], "key \"a\""),
            (
                &[b"SREM", b"s", b"y"],
                "key \"s\": a set of 3 expected, a set of 2 replayed",
            ),
            (
                &[b"SADD", b"s", b"q"],
                "key \"s\": a set of 3 expected, a set of 4",
            ),
            (&[b"HSET", b"h", b"f", b"other"], "key \"h\""),
            (
                &[b"ZADD", b"z", b"3", b"m"],
                "key \"z\": a zset of 2 expected, a zset of 2 replayed with other contents",
            ),
            (&[b"LSET", b"l", b"0", b"q"], "key \"l\""),
            (&[b"DEL", b"l"], "key \"l\" is missing"),
            (&[b"SET", b"k7", b"filler"], "key \"k7\""),
            (&[b"SET", b"extra", b"1"], "key \"extra\" is not expected"),
            (&[b"PERSIST", b"t"], "key \"t\": expiry"),
            (&[b"DEL", b"a"], "1 missing"),
        ];
        for (cmd, want) in alterations {
            let got = fresh();
            replay_into(&sc.out, &got).unwrap();
            assert!(compare_keyspaces(&sc.live, &got).is_ok());
            exec(&got, cmd);
            let err = compare_keyspaces(&sc.live, &got).unwrap_err();
            assert!(err.contains(want), "{cmd:?}: {err}");
        }
        // Same size, other members.
        let got = fresh();
        replay_into(&sc.out, &got).unwrap();
        exec(&got, &[b"SREM", b"s", b"y"]);
        exec(&got, &[b"SADD", b"s", b"q"]);
        let err = compare_keyspaces(&sc.live, &got).unwrap_err();
        assert!(
            err.contains("a set of 3 replayed with other contents"),
            "{err}"
        );
        // A key moved to another database.
        let got = fresh();
        replay_into(&sc.out, &got).unwrap();
        exec(&got, &[b"MOVE", b"a", b"3"]);
        let err = compare_keyspaces(&sc.live, &got).unwrap_err();
        assert!(
            err.contains("1 missing") && err.contains("1 extra"),
            "{err}"
        );
    }

    #[test]
    fn detects_a_corrupted_snapshot_file() {
        let sc = scenario(Mode::Converging);
        // Change one byte of an RPUSH argument in the delta part (the checksum covers only the
        // RDB part): the replay succeeds, the comparison fails.
        let at = sc
            .out
            .windows(3)
            .rposition(|w| w == b"\r\nx")
            .expect("a delta RPUSH l x<i>");
        let mut bad = sc.out.clone();
        bad[at + 2] = b'q';
        let got = fresh();
        replay_into(&bad, &got).unwrap();
        let err = compare_keyspaces(&sc.live, &got).unwrap_err();
        assert!(err.contains("key \"l\""), "{err}");
        // A flipped byte in the RDB part: the checksum catches it.
        let mut bad = sc.out.clone();
        let at = sc.out.windows(6).position(|w| w == b"filler").unwrap();
        bad[at] ^= 0x20;
        assert!(replay_into(&bad, &fresh()).is_err());
        // A truncated file.
        assert!(replay_into(&sc.out[..sc.out.len() / 2], &fresh()).is_err());
    }

    #[test]
    fn digest_depends_on_content_not_order() {
        let a = Keyspace::new(Config::seeded(1));
        let b = fresh();
        exec(&a, &[b"SADD", b"s", b"x", b"y", b"z"]);
        exec(&a, &[b"HSET", b"h", b"f", b"1", b"g", b"2"]);
        exec(&a, &[b"ZADD", b"z", b"1", b"m", b"2", b"n"]);
        exec(&a, &[b"SET", b"k", b"v"]);
        exec(&b, &[b"SET", b"k", b"v"]);
        exec(&b, &[b"ZADD", b"z", b"2", b"n", b"1", b"m"]);
        exec(&b, &[b"HSET", b"h", b"g", b"2", b"f", b"1"]);
        exec(&b, &[b"SADD", b"s", b"z", b"y", b"x"]);
        let keys = DigestKeys::new();
        let now = a.now_ms();
        assert_eq!(digest(&a, &keys, now), digest(&b, &keys, now));
        assert_eq!(compare_keyspaces(&a, &b), Ok(4));
        // Each change moves the digest.
        let mut prev = digest(&b, &keys, now);
        for cmd in [
            &[b"HSET".as_slice(), b"h", b"f", b"2"][..],
            &[b"HSET", b"h", b"f", b"1"],
            &[b"ZADD", b"z", b"3", b"n"],
            &[b"ZADD", b"z", b"2", b"n"],
            &[b"EXPIRE", b"k", b"1000"],
            &[b"PERSIST", b"k"],
            &[b"SET", b"k", b"w"],
        ] {
            exec(&b, cmd);
            let d = digest(&b, &keys, now);
            assert_ne!(d, prev, "{cmd:?}");
            prev = d;
        }
        // The same key in another database.
        let c = fresh();
        exec(&c, &[b"SET", b"k", b"w"]);
        let mut s1 = Session { db: 1 };
        let d = fresh();
        d.execute(&mut s1, &[b"SET", b"k", b"w"]);
        assert_ne!(digest(&c, &keys, now), digest(&d, &keys, now));
    }

    #[test]
    fn cow_copy_keeps_the_state_at_the_copy() {
        let ks = Keyspace::new(Config::seeded(8));
        for i in 0..1000u32 {
            exec(&ks, &[b"RPUSH", format!("l{i}").as_bytes(), b"a", b"b"]);
        }
        let copy = cow_copy(&ks);
        let before = ks.dump();
        exec(&ks, &[b"RPUSH", b"l7", b"c"]);
        exec(&ks, &[b"DEL", b"l8"]);
        assert_eq!(copy.dump(), before);
        let err = compare_keyspaces(&copy, &ks).unwrap_err();
        assert!(err.contains("1 missing, 1 with another value"), "{err}");
    }
}
