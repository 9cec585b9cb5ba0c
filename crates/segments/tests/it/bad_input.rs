//! Bad input: a real segments directory (many segments, snapshots of both modes) with one file
//! damaged at a time (truncated at many offsets, seeded random bit flips, deleted, a hole in
//! the chain, a crafted snapshot claiming huge lengths).
//!
//! What must hold:
//! * recovery ([`recover`] on [`SegManifest::load`]), [`check`] and [`SegmentDir::open`] never
//!   panic;
//! * an error names the damaged file, and the offset where there is one;
//! * a truncated last segment recovers with its torn tail cut exactly at the last whole command
//!   ([`RecoveryReport::truncated`]), and open cuts the file there;
//! * a damaged newest snapshot is refused and recovery falls back to the previous one
//!   ([`RecoveryReport::rejected`] names it) with the same state as the live keyspace; a damaged
//!   older snapshot changes nothing but is reported by `check`;
//! * a missing segment or a hole in the chain is an error naming the segment;
//! * a failed [`SegmentDir::open`] changes nothing on disk (every file's bytes compared);
//! * a snapshot claiming huge lengths is refused without a huge allocation (a counting global
//!   allocator bounds the largest single allocation during those loads).

use crate::common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use common::*;
use forkless_aof::FsyncPolicy;
use forkless_keyspace::Session;
use forkless_rdb::Entry;
use forkless_segments::manifest::{segment_name, MANIFEST_NAME};
use forkless_segments::{
    check, recover, RecoverOptions, RecoveryReport, SegError, SegManifest, SegmentDir,
    SegmentOptions, StartPoint,
};
use forkless_snapshot::Mode;
use forkless_testkit::TempDir;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

// ---------------------------------------------------------------------------------------------
// A global allocator that records the largest single allocation made by a thread that asked.

struct Tracking;

thread_local! {
    static TRACK: Cell<bool> = const { Cell::new(false) };
}
static MAX_ALLOC: AtomicUsize = AtomicUsize::new(0);

fn note(size: usize) {
    if TRACK.try_with(Cell::get).unwrap_or(false) {
        MAX_ALLOC.fetch_max(size, Ordering::Relaxed);
    }
}

// SAFETY: every call is forwarded unchanged to the system allocator; the bookkeeping touches
// only an atomic and a const-initialized thread-local `Cell` (no allocation, no reentrancy).
unsafe impl GlobalAlloc for Tracking {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: same contract as ours.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Tracking = Tracking;

/// Run `f` and return the largest single allocation this thread made during it.
fn largest_allocation<T>(f: impl FnOnce() -> T) -> (T, usize) {
    MAX_ALLOC.store(0, Ordering::Relaxed);
    TRACK.with(|t| t.set(true));
    let r = f();
    TRACK.with(|t| t.set(false));
    (r, MAX_ALLOC.load(Ordering::Relaxed))
}

// ---------------------------------------------------------------------------------------------
// The directory under test.

type Files = BTreeMap<String, Vec<u8>>;

/// Every file of `dir` with its bytes.
fn files(dir: &Path) -> Files {
    std::fs::read_dir(dir)
        .expect("list")
        .map(|e| {
            let e = e.expect("list");
            let name = e.file_name().to_string_lossy().into_owned();
            let bytes = std::fs::read(e.path()).expect("read");
            (name, bytes)
        })
        .collect()
}

/// Put `dir` back to exactly `pristine`.
fn restore(dir: &Path, pristine: &Files) {
    for (name, bytes) in files(dir) {
        match pristine.get(&name) {
            None => std::fs::remove_file(dir.join(&name)).expect("remove"),
            Some(b) if *b != bytes => std::fs::write(dir.join(&name), b).expect("write"),
            Some(_) => {}
        }
    }
    for (name, b) in pristine {
        if !dir.join(name).exists() {
            std::fs::write(dir.join(name), b).expect("write");
        }
    }
}

struct Fixture {
    _tmp: TempDir,
    path: std::path::PathBuf,
    pristine: Files,
    manifest: SegManifest,
    /// The live keyspace at close.
    expected: Vec<Entry>,
}

/// 4 snapshots (point-in-time, converging, point-in-time, converging) between rounds of random
/// writes, then more writes: the newest snapshot's cut is followed by several segments. The
/// converging snapshots are taken while a second thread writes, until one holds deltas; the
/// attempts without are dropped from the manifest afterwards (as retention would).
fn build() -> Fixture {
    let tmp = TempDir::new("seg-bad");
    let path = tmp.path().to_path_buf();
    let opts = SegmentOptions {
        keep_snapshots: usize::MAX,
        ..options(4 << 10, FsyncPolicy::No)
    };
    let e = open(&path, opts);
    let mut rng = StdRng::seed_from_u64(0xBAD1);
    let mut s = Session::default();
    let mut keep = Vec::new();
    let mut attempt = 0u64;
    for round in 0..4 {
        for _ in 0..400 {
            exec(&e.ks, &mut s, &random_command(&mut rng, 150));
        }
        if round % 2 == 0 {
            let info = e.dir.snapshot(&e.ks, &e.obs, Mode::PointInTime);
            keep.push(info.expect("snapshot").entry.seq);
            continue;
        }
        loop {
            attempt += 1;
            assert!(attempt < 200, "no converging snapshot caught a delta");
            let stop = Arc::new(AtomicBool::new(false));
            let started = Arc::new(AtomicBool::new(false));
            let w = {
                let (ks, stop, started) = (e.ks.clone(), stop.clone(), started.clone());
                std::thread::spawn(move || {
                    let mut rng = StdRng::seed_from_u64(attempt);
                    let mut s = Session::default();
                    // Paced and bounded: it spans the snapshot, the log stays a few dozen
                    // segments.
                    for _ in 0..2_000 {
                        if stop.load(Ordering::Relaxed) {
                            break;
                        }
                        exec(&ks, &mut s, &random_command(&mut rng, 150));
                        started.store(true, Ordering::Relaxed);
                        std::thread::sleep(std::time::Duration::from_micros(20));
                    }
                    started.store(true, Ordering::Relaxed);
                })
            };
            while !started.load(Ordering::Relaxed) {
                std::thread::yield_now();
            }
            let info = e.dir.snapshot(&e.ks, &e.obs, Mode::Converging);
            stop.store(true, Ordering::Relaxed);
            w.join().expect("writer");
            let info = info.expect("snapshot");
            if info.result.delta_commands > 0 {
                keep.push(info.entry.seq);
                break;
            }
        }
    }
    for _ in 0..900 {
        exec(&e.ks, &mut s, &random_command(&mut rng, 150));
    }
    e.dir.close().expect("close");
    let expected = e.ks.dump();
    drop(e);
    let mut manifest = SegManifest::load(&path).expect("manifest");
    eprintln!("fixture: {attempt} converging attempts for 2 with deltas");
    // A roll triggered by the very last write leaves an empty last segment (it happens about once
    // in dozens of runs): the tests below need bytes to damage in the last one. Drop it, leaving
    // the previous segment in the state the empty one had (a crash just before that roll).
    let last = manifest.last_segment();
    let last_len = std::fs::metadata(path.join(segment_name(last)))
        .map(|m| m.len())
        .unwrap_or(0);
    if last_len == 0 && manifest.segments.len() > 1 {
        let was_closed = manifest.closed_len.contains_key(&last);
        std::fs::remove_file(path.join(segment_name(last))).expect("remove empty segment");
        manifest.segments.pop();
        manifest.closed_len.remove(&last);
        manifest.closed_crc.remove(&last);
        if !was_closed {
            let prev = manifest.last_segment();
            manifest.closed_len.remove(&prev);
            manifest.closed_crc.remove(&prev);
        }
    }
    for d in manifest.snapshots.iter().filter(|x| !keep.contains(&x.seq)) {
        std::fs::remove_file(path.join(d.name())).expect("remove");
    }
    manifest.snapshots.retain(|x| keep.contains(&x.seq));
    manifest.persist(&path).expect("persist");
    let modes: Vec<Mode> = manifest.snapshots.iter().map(|x| x.mode).collect();
    use Mode::{Converging as C, PointInTime as P};
    assert_eq!(modes, [P, C, P, C]);
    let newest = manifest.snapshots.last().expect("snapshots").cut.seq;
    assert!(
        manifest.last_segment() >= newest + 3,
        "want several segments after the newest cut: {manifest:?}"
    );
    assert!(manifest.snapshots.iter().all(|s| s.cut.seq > 1));
    let pristine = files(&path);
    Fixture {
        _tmp: tmp,
        path,
        pristine,
        manifest,
        expected,
    }
}

impl Fixture {
    fn restore(&self) {
        restore(&self.path, &self.pristine);
    }
    fn seg(&self, seq: i64) -> Vec<u8> {
        self.pristine[&segment_name(seq)].clone()
    }
    fn write(&self, name: &str, bytes: &[u8]) {
        std::fs::write(self.path.join(name), bytes).expect("write");
    }
}

/// `f`, turning a panic into one that says which case it was.
fn guarded<T>(ctx: &str, f: impl FnOnce() -> T) -> T {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(v) => v,
        Err(p) => {
            let msg = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            panic!("{ctx}: panicked: {msg}");
        }
    }
}

/// Recovery as a reader would do it: load the manifest, recover.
fn recover_dir(dir: &Path, ctx: &str) -> Result<(Vec<Entry>, RecoveryReport), SegError> {
    guarded(ctx, || {
        let m = SegManifest::load(dir)?;
        let (ks, rep) = recover(dir, &m, &config(), RecoverOptions::default())?;
        Ok((ks.dump(), rep))
    })
}

/// `check`'s problems (Err: the manifest cannot be read).
fn check_problems(dir: &Path, ctx: &str) -> Result<(Vec<String>, Vec<String>), SegError> {
    guarded(ctx, || check(dir).map(|r| (r.problems, r.notes)))
}

/// SegmentDir::open must fail and leave every file as it was. Returns the error.
fn open_fails_unchanged(dir: &Path, ctx: &str) -> SegError {
    let before = files(dir);
    let r = guarded(ctx, || {
        SegmentDir::open(dir, &config(), options(4 << 10, FsyncPolicy::No)).map(|_| ())
    });
    let e = match r {
        Ok(()) => panic!("{ctx}: open succeeded"),
        Err(e) => e,
    };
    let after = files(dir);
    assert_eq!(
        before.keys().collect::<Vec<_>>(),
        after.keys().collect::<Vec<_>>(),
        "{ctx}: a failed open added or removed files"
    );
    for (name, b) in &before {
        assert!(after[name] == *b, "{ctx}: a failed open changed {name}");
    }
    e
}

/// SegmentDir::open must succeed; returns its state and report (the writer is closed).
fn open_ok(dir: &Path, ctx: &str) -> (Vec<Entry>, RecoveryReport) {
    guarded(ctx, || {
        let (sd, ks, rep) = SegmentDir::open(dir, &config(), options(4 << 10, FsyncPolicy::No))
            .unwrap_or_else(|e| panic!("{ctx}: open failed: {e}"));
        sd.close().expect("close");
        (ks.dump(), rep.expect("an existing directory"))
    })
}

/// Offsets of a segment where a whole item ends (0 included): where loading may stop without
/// a torn command. A MULTI ... EXEC block counts as one item.
fn boundaries(b: &[u8]) -> BTreeSet<u64> {
    let mut out = BTreeSet::from([0u64]);
    let mut i = 0usize;
    let mut in_multi = false;
    let line = |i: usize| -> (usize, usize) {
        let j = i + b[i..].windows(2).position(|w| w == b"\r\n").expect("CRLF");
        (j, j + 2)
    };
    let int = |s: &[u8]| -> usize { std::str::from_utf8(s).unwrap().parse().unwrap() };
    while i < b.len() {
        if b[i] == b'#' {
            i += b[i..].iter().position(|&c| c == b'\n').expect("LF") + 1;
        } else {
            assert_eq!(b[i], b'*', "segment item at {i}");
            let (j, next) = line(i);
            let argc = int(&b[i + 1..j]);
            i = next;
            let mut first = Vec::new();
            for k in 0..argc {
                let (j, next) = line(i);
                let len = int(&b[i + 1..j]);
                if k == 0 {
                    first = b[next..next + len].to_ascii_uppercase();
                }
                i = next + len + 2;
            }
            if first == b"MULTI" {
                in_multi = true;
            } else if first == b"EXEC" {
                in_multi = false;
            }
        }
        if !in_multi {
            out.insert(i as u64);
        }
    }
    out
}

/// Truncation lengths to try for a file of `len` bytes: both ends densely, the rest sampled.
fn cut_points(len: usize, rng: &mut StdRng, samples: usize) -> BTreeSet<usize> {
    let mut v: BTreeSet<usize> = (0..len.min(24))
        .chain(len.saturating_sub(24)..len)
        .collect();
    for _ in 0..samples {
        v.insert(rng.gen_range(0..len));
    }
    v
}

fn flip(bytes: &[u8], rng: &mut StdRng) -> (Vec<u8>, usize, u32) {
    let mut c = bytes.to_vec();
    let at = rng.gen_range(0..c.len());
    let bit = rng.gen_range(0..8);
    c[at] ^= 1 << bit;
    (c, at, bit)
}

/// Flips per damaged file (a few thousand in all).
const FLIPS: usize = 400;

/// An error from the log must be `Corrupt` naming `file`, at an offset inside it.
fn assert_names_segment(e: &SegError, file: &str, len: usize, ctx: &str) -> u64 {
    match e {
        SegError::Corrupt {
            file: f, offset, ..
        } if f == file && *offset <= len as u64 => *offset,
        other => panic!("{ctx}: the error does not name {file} and an offset in it: {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------

/// (a) A segment after the newest snapshot's cut that is not the last: every truncation is an
/// error (inside a command: at its start; at a command boundary: the recorded length of the
/// closed segment differs), bit flips.
#[test]
fn damaged_middle_segment() {
    let fx = build();
    let dir = &fx.path;
    let cut = fx.manifest.snapshots.last().unwrap().cut.seq;
    let seq = cut + 1;
    assert!(seq < fx.manifest.last_segment());
    let name = segment_name(seq);
    let orig = fx.seg(seq);
    let bounds = boundaries(&orig);
    let mut rng = StdRng::seed_from_u64(0xA);
    let mut errors = 0;
    for l in cut_points(orig.len(), &mut rng, 150) {
        let ctx = format!("{name} truncated to {l} of {}", orig.len());
        fx.write(&name, &orig[..l]);
        match recover_dir(dir, &ctx) {
            // The manifest records a closed segment's length: even a cut at a command
            // boundary is refused.
            Ok(_) => panic!("{ctx}: recovery accepted a truncated closed segment"),
            Err(e) => {
                let at = assert_names_segment(&e, &name, l, &ctx);
                let want = *bounds.range(..=l as u64).next_back().unwrap();
                assert_eq!(at, want, "{ctx}: {e}: not the start of the torn command");
                let (problems, _) = check_problems(dir, &ctx).expect("check");
                assert!(
                    problems.iter().any(|p| p.contains(&name)),
                    "{ctx}: {problems:?}"
                );
                let e2 = open_fails_unchanged(dir, &ctx);
                assert!(e2.to_string().contains(&name), "{ctx}: open: {e2}");
                errors += 1;
            }
        }
    }
    assert!(errors > 50, "{errors} truncations refused");
    let mut refused = 0;
    for i in 0..FLIPS {
        let (c, at, bit) = flip(&orig, &mut rng);
        let ctx = format!("{name} flip {i} at {at} bit {bit}");
        fx.write(&name, &c);
        if i % 2 == 0 {
            let _ = check_problems(dir, &ctx).expect("check");
        }
        if let Err(e) = recover_dir(dir, &ctx) {
            assert_names_segment(&e, &name, c.len(), &ctx);
            if i % 5 == 0 {
                open_fails_unchanged(dir, &ctx);
            }
            refused += 1;
        }
    }
    fx.write(&name, &orig);
    eprintln!("middle segment: {refused} of {FLIPS} flips refused");
    // A closed segment's CRC is in the manifest: even a flip that still parses is refused.
    assert_eq!(refused, FLIPS);
    let (got, _) = recover_dir(dir, "restored").expect("restored");
    assert_eq!(got, fx.expected);
}

/// (b) The last segment: every truncation recovers with the torn tail cut at the last whole
/// command (the same state as a clean cut there), open cuts the file there; flips never panic.
#[test]
fn damaged_last_segment() {
    let fx = build();
    let dir = &fx.path;
    let seq = fx.manifest.last_segment();
    let name = segment_name(seq);
    let orig = fx.seg(seq);
    let bounds = boundaries(&orig);
    assert!(bounds.contains(&(orig.len() as u64)));
    let mut rng = StdRng::seed_from_u64(0xB);
    // Clean cuts first: the state at each command boundary.
    let mut at_boundary: BTreeMap<u64, Vec<Entry>> = BTreeMap::new();
    for &b in &bounds {
        let ctx = format!("{name} cut at boundary {b}");
        fx.write(&name, &orig[..b as usize]);
        let (got, rep) = recover_dir(dir, &ctx).unwrap_or_else(|e| panic!("{ctx}: {e}"));
        assert_eq!(rep.truncated, None, "{ctx}");
        at_boundary.insert(b, got);
    }
    assert_eq!(at_boundary[&(orig.len() as u64)], fx.expected);
    let mut torn = 0;
    let mut points = cut_points(orig.len(), &mut rng, 200);
    for w in bounds.iter().collect::<Vec<_>>().windows(2) {
        // Inside every command: just after its start and just before its end.
        points.insert(*w[0] as usize + 1);
        points.insert(*w[1] as usize - 1);
    }
    for (k, l) in points.into_iter().enumerate() {
        let ctx = format!("{name} truncated to {l} of {}", orig.len());
        fx.write(&name, &orig[..l]);
        let (got, rep) = recover_dir(dir, &ctx).unwrap_or_else(|e| panic!("{ctx}: {e}"));
        let valid = *bounds.range(..=l as u64).next_back().unwrap();
        if valid == l as u64 {
            assert_eq!(rep.truncated, None, "{ctx}");
        } else {
            let t = rep
                .truncated
                .clone()
                .unwrap_or_else(|| panic!("{ctx}: no torn tail"));
            assert_eq!(
                (t.file.as_str(), t.valid_len, t.file_len),
                (name.as_str(), valid, l as u64),
                "{ctx}"
            );
            torn += 1;
            let (problems, notes) = check_problems(dir, &ctx).expect("check");
            assert!(problems.is_empty(), "{ctx}: {problems:?}");
            assert!(
                notes
                    .iter()
                    .any(|n| n.contains(&name) && n.contains("torn tail")),
                "{ctx}: {notes:?}"
            );
        }
        assert_eq!(got, at_boundary[&valid], "{ctx}: state after the cut");
        if k % 10 == 0 && valid != l as u64 {
            let (st, rep2) = open_ok(dir, &ctx);
            assert_eq!(st, got, "{ctx}: open");
            assert_eq!(rep2.truncated, rep.truncated, "{ctx}");
            let len = std::fs::metadata(dir.join(&name)).unwrap().len();
            assert_eq!(len, valid, "{ctx}: open did not cut the torn tail");
            fx.restore();
        }
    }
    assert!(torn > 100, "{torn}");
    for i in 0..FLIPS {
        let (c, at, bit) = flip(&orig, &mut rng);
        let ctx = format!("{name} flip {i} at {at} bit {bit}");
        fx.write(&name, &c);
        if i % 2 == 0 {
            let _ = check_problems(dir, &ctx).expect("check");
        }
        match recover_dir(dir, &ctx) {
            Ok((_, rep)) => {
                if let Some(t) = rep.truncated {
                    assert_eq!(t.file, name, "{ctx}");
                }
            }
            Err(e) => {
                assert_names_segment(&e, &name, c.len(), &ctx);
                if i % 5 == 0 {
                    open_fails_unchanged(dir, &ctx);
                }
            }
        }
    }
}

/// The snapshot entries of the fixture's manifest, newest first.
fn newest_first(m: &SegManifest) -> Vec<forkless_segments::SnapshotEntry> {
    m.snapshots.iter().rev().cloned().collect()
}

/// (c) The newest snapshot (both modes: once as it is, once with the manifest ending at the
/// previous snapshot): any truncation or flip is refused, recovery falls back to the previous
/// snapshot and still equals the live state.
#[test]
fn damaged_newest_snapshot_falls_back() {
    let fx = build();
    let dir = &fx.path;
    let mut rng = StdRng::seed_from_u64(0xC);
    let mut modes = BTreeSet::new();
    for variant in 0..2 {
        let mut m = fx.manifest.clone();
        m.snapshots.truncate(m.snapshots.len() - variant);
        m.persist(dir).unwrap();
        let base = files(dir);
        let snaps = newest_first(&m);
        let (newest, previous) = (&snaps[0], &snaps[1]);
        modes.insert(newest.mode.name());
        let name = newest.name();
        let orig = base[&name].clone();
        let mut cases: Vec<(String, Vec<u8>)> = cut_points(orig.len(), &mut rng, 60)
            .into_iter()
            .map(|l| (format!("{name} truncated to {l}"), orig[..l].to_vec()))
            .collect();
        for i in 0..FLIPS {
            let (c, at, bit) = flip(&orig, &mut rng);
            cases.push((format!("{name} flip {i} at {at} bit {bit}"), c));
        }
        cases.push((format!("{name} deleted"), Vec::new()));
        for (k, (ctx, bytes)) in cases.iter().enumerate() {
            if ctx.ends_with("deleted") {
                std::fs::remove_file(dir.join(&name)).unwrap();
            } else {
                fx.write(&name, bytes);
            }
            let (got, rep) = recover_dir(dir, ctx).unwrap_or_else(|e| panic!("{ctx}: {e}"));
            assert_eq!(rep.rejected.len(), 1, "{ctx}: {:?}", rep.rejected);
            assert_eq!(rep.rejected[0].0, name, "{ctx}");
            assert_eq!(rep.start, StartPoint::Snapshot(previous.clone()), "{ctx}");
            assert!(
                got == fx.expected,
                "{ctx}: the fallback differs from the live state"
            );
            let (problems, _) = check_problems(dir, ctx).expect("check");
            assert!(
                problems.iter().any(|p| p.contains(&name)),
                "{ctx}: {problems:?}"
            );
            if k % 25 == 0 {
                let (st, rep2) = open_ok(dir, ctx);
                assert!(st == fx.expected, "{ctx}: open");
                assert_eq!(rep2.rejected, rep.rejected, "{ctx}");
                restore(dir, &base);
            }
        }
        fx.write(&name, &orig);
    }
    assert_eq!(modes.len(), 2, "both modes as the newest: {modes:?}");
    fx.restore();
}

/// (d) An older snapshot: recovery still starts from the newest, check reports the damage.
#[test]
fn damaged_older_snapshot_is_reported_not_used() {
    let fx = build();
    let dir = &fx.path;
    let mut rng = StdRng::seed_from_u64(0xD);
    let snaps = newest_first(&fx.manifest);
    for older in &snaps[1..3] {
        let name = older.name();
        let orig = fx.pristine[&name].clone();
        let mut cases: Vec<(String, Vec<u8>)> = cut_points(orig.len(), &mut rng, 30)
            .into_iter()
            .map(|l| (format!("{name} truncated to {l}"), orig[..l].to_vec()))
            .collect();
        for i in 0..FLIPS / 2 {
            let (c, at, bit) = flip(&orig, &mut rng);
            cases.push((format!("{name} flip {i} at {at} bit {bit}"), c));
        }
        for (ctx, bytes) in &cases {
            fx.write(&name, bytes);
            let (got, rep) = recover_dir(dir, ctx).unwrap_or_else(|e| panic!("{ctx}: {e}"));
            assert!(rep.rejected.is_empty(), "{ctx}: {:?}", rep.rejected);
            assert_eq!(rep.start, StartPoint::Snapshot(snaps[0].clone()), "{ctx}");
            assert!(got == fx.expected, "{ctx}: state");
            let (problems, _) = check_problems(dir, ctx).expect("check");
            assert!(
                problems.iter().any(|p| p.contains(&name)),
                "{ctx}: {problems:?}"
            );
        }
        fx.write(&name, &orig);
    }
}

/// (e) The manifest: every truncation and a flip of every bit is refused by load, check and
/// open, naming the manifest; open changes nothing. A missing manifest with files present too.
#[test]
fn damaged_manifest_is_refused_and_nothing_changes() {
    let fx = build();
    let dir = &fx.path;
    let orig = fx.pristine[MANIFEST_NAME].clone();
    let mut cases: Vec<(String, Vec<u8>)> = (0..orig.len())
        .map(|l| (format!("manifest truncated to {l}"), orig[..l].to_vec()))
        .collect();
    for at in 0..orig.len() {
        for bit in 0..8 {
            let mut c = orig.clone();
            c[at] ^= 1 << bit;
            cases.push((format!("manifest flip at {at} bit {bit}"), c));
        }
    }
    for (k, (ctx, bytes)) in cases.iter().enumerate() {
        fx.write(MANIFEST_NAME, bytes);
        let e = recover_dir(dir, ctx)
            .err()
            .unwrap_or_else(|| panic!("{ctx}: accepted"));
        assert!(
            matches!(e, SegError::Manifest { .. }) && e.to_string().contains(MANIFEST_NAME),
            "{ctx}: {e:?}"
        );
        let e = check_problems(dir, ctx)
            .err()
            .unwrap_or_else(|| panic!("{ctx}: check accepted it"));
        assert!(e.to_string().contains(MANIFEST_NAME), "{ctx}: {e}");
        if k % 16 == 0 {
            let e = open_fails_unchanged(dir, ctx);
            assert!(e.to_string().contains("manifest"), "{ctx}: {e}");
        }
    }
    std::fs::remove_file(dir.join(MANIFEST_NAME)).unwrap();
    let e = open_fails_unchanged(dir, "manifest missing");
    assert!(e.to_string().contains("refusing"), "{e}");
    fx.restore();
    let (got, _) = recover_dir(dir, "restored").expect("restored");
    assert_eq!(got, fx.expected);
}

/// A missing segment file after the newest cut, or a hole in the manifest's chain, is an error
/// naming the segment; open changes nothing. A missing segment that no start point needs is
/// only reported by check.
#[test]
fn missing_segment_and_hole_in_the_chain() {
    let fx = build();
    let dir = &fx.path;
    let m = &fx.manifest;
    let newest_cut = m.snapshots.last().unwrap().cut.seq;
    // Files after the newest cut (its own segment included): needed by every start point.
    for seq in [newest_cut, newest_cut + 1, m.last_segment()] {
        let name = segment_name(seq);
        let ctx = format!("{name} deleted");
        std::fs::remove_file(dir.join(&name)).unwrap();
        let e = recover_dir(dir, &ctx)
            .err()
            .unwrap_or_else(|| panic!("{ctx}: accepted"));
        assert!(e.to_string().contains(&name), "{ctx}: {e}");
        let (problems, _) = check_problems(dir, &ctx).expect("check");
        assert!(
            problems.iter().any(|p| p.contains(&name)),
            "{ctx}: {problems:?}"
        );
        let e = open_fails_unchanged(dir, &ctx);
        assert!(e.to_string().contains(&name), "{ctx}: open: {e}");
        fx.restore();
    }
    // A segment before the newest cut: recovery from the newest snapshot does not need it.
    let seq = newest_cut - 1;
    let name = segment_name(seq);
    std::fs::remove_file(dir.join(&name)).unwrap();
    let (got, rep) = recover_dir(dir, "old segment deleted").expect("recovers");
    assert!(got == fx.expected);
    assert!(rep.rejected.is_empty(), "{:?}", rep.rejected);
    let (problems, _) = check_problems(dir, "old segment deleted").expect("check");
    assert!(problems.iter().any(|p| p.contains(&name)), "{problems:?}");
    fx.restore();
    // Holes in the chain: the manifest drops a segment (before and after the newest cut).
    for seq in [2, newest_cut - 1, newest_cut + 1, m.last_segment() - 1] {
        let ctx = format!("manifest without segment {seq}");
        let mut h = m.clone();
        h.segments.retain(|&s| s != seq);
        h.persist(dir).unwrap();
        let e = recover_dir(dir, &ctx)
            .err()
            .unwrap_or_else(|| panic!("{ctx}: accepted"));
        assert!(
            e.to_string().contains(&format!("segment {seq} ")),
            "{ctx}: {e}"
        );
        let (problems, _) = check_problems(dir, &ctx).expect("check");
        assert!(
            problems.iter().any(|p| p.contains("hole")),
            "{ctx}: {problems:?}"
        );
        let e = open_fails_unchanged(dir, &ctx);
        assert!(
            e.to_string().contains(&format!("segment {seq} ")),
            "{ctx}: {e}"
        );
        fx.restore();
    }
    let (got, _) = recover_dir(dir, "restored").expect("restored");
    assert_eq!(got, fx.expected);
}

/// The newest snapshot replaced by damaged bytes whose length and CRC the manifest is made to
/// agree with, so the RDB and delta readers themselves meet the damage: never a panic; a
/// point-in-time snapshot (pure RDB, its own CRC-64) is always refused; refusals fall back.
#[test]
fn damaged_snapshot_behind_a_matching_manifest() {
    let fx = build();
    let dir = &fx.path;
    let mut rng = StdRng::seed_from_u64(0xF);
    for variant in 0..2 {
        let mut m = fx.manifest.clone();
        m.snapshots.truncate(m.snapshots.len() - variant);
        let snaps = newest_first(&m);
        let (newest, previous) = (snaps[0].clone(), snaps[1].clone());
        let name = newest.name();
        let orig = fx.pristine[&name].clone();
        let mut cases: Vec<(String, Vec<u8>)> = cut_points(orig.len(), &mut rng, 40)
            .into_iter()
            .map(|l| (format!("{name} truncated to {l}"), orig[..l].to_vec()))
            .collect();
        for i in 0..FLIPS / 2 {
            let (c, at, bit) = flip(&orig, &mut rng);
            cases.push((format!("{name} flip {i} at {at} bit {bit}"), c));
        }
        let mut refused = 0;
        for (ctx, bytes) in &cases {
            fx.write(&name, bytes);
            let mut sealed = m.clone();
            let e = sealed.snapshots.last_mut().unwrap();
            e.len = bytes.len() as u64;
            e.crc = forkless_rdb::crc::crc64(bytes);
            sealed.persist(dir).unwrap();
            let _ = check_problems(dir, ctx).expect("check");
            let (got, rep) = recover_dir(dir, ctx).unwrap_or_else(|e| panic!("{ctx}: {e}"));
            if rep.rejected.is_empty() {
                assert_eq!(
                    newest.mode,
                    Mode::Converging,
                    "{ctx}: a damaged point-in-time snapshot was accepted"
                );
            } else {
                assert_eq!(rep.rejected[0].0, name, "{ctx}");
                assert_eq!(rep.start, StartPoint::Snapshot(previous.clone()), "{ctx}");
                assert!(got == fx.expected, "{ctx}: the fallback differs");
                let why = &rep.rejected[0].1;
                // The file and the offset; the header's version has no offset to name.
                let located = why.contains(" offset ") || why.contains("RDB version");
                assert!(
                    why.contains(&name) && located || why.contains("aux fields"),
                    "{ctx}: the reason names no file and offset: {why}"
                );
                refused += 1;
            }
        }
        eprintln!(
            "{} newest, manifest sealed over the damage: {refused} of {} refused",
            newest.mode.name(),
            cases.len()
        );
        if newest.mode == Mode::PointInTime {
            assert_eq!(refused, cases.len());
        }
        fx.restore();
    }
}

/// Snapshots claiming huge lengths (strings, collections, LZF, aux) behind a matching manifest:
/// refused with an error, no large allocation, fallback to the previous snapshot.
#[test]
fn crafted_huge_lengths_do_not_allocate() {
    let fx = build();
    let dir = &fx.path;
    let snaps = newest_first(&fx.manifest);
    let (newest, previous) = (&snaps[0], &snaps[1]);
    let name = newest.name();
    let huge64 = |v: u64| {
        let mut b = vec![0x81];
        b.extend_from_slice(&v.to_be_bytes());
        b
    };
    let huge32 = |v: u32| {
        let mut b = vec![0x80];
        b.extend_from_slice(&v.to_be_bytes());
        b
    };
    let key = |t: u8| {
        // SELECTDB 0, value type t, key "k".
        vec![0xFE, 0x00, t, 0x01, b'k']
    };
    // The tracker does see allocations (so the bound below is not vacuous).
    let (v, peak) = largest_allocation(|| vec![1u8; 3 << 20]);
    assert!(peak >= 3 << 20 && v.len() == 3 << 20, "{peak}");
    drop(v);
    let mut cases: Vec<(String, Vec<u8>)> = Vec::new();
    for (what, len) in [("u64", huge64(1 << 62)), ("u32", huge32(0xFFFF_FFF0))] {
        let tag = |s: &str| format!("{s} ({what})");
        cases.push((tag("string value"), [key(0), len.clone()].concat()));
        cases.push((tag("list"), [key(1), len.clone()].concat()));
        cases.push((tag("set"), [key(2), len.clone()].concat()));
        cases.push((tag("zset"), [key(5), len.clone()].concat()));
        cases.push((tag("hash"), [key(4), len.clone()].concat()));
        cases.push((tag("quicklist"), [key(18), len.clone()].concat()));
        cases.push((
            tag("key"),
            [vec![0xFE, 0x00, 0x00], len.clone(), b"k".to_vec()].concat(),
        ));
        cases.push((tag("aux"), [vec![0xFA], len.clone()].concat()));
        cases.push((
            tag("lzf"),
            [
                key(0),
                vec![0xC3],
                vec![0x05],
                len.clone(),
                b"abcde".to_vec(),
            ]
            .concat(),
        ));
        cases.push((
            tag("lzf compressed"),
            [
                key(0),
                vec![0xC3],
                len.clone(),
                vec![0x05],
                b"abcde".to_vec(),
            ]
            .concat(),
        ));
        cases.push((
            tag("resizedb"),
            [vec![0xFE, 0x00, 0xFB], len.clone(), len.clone()].concat(),
        ));
    }
    for (what, body) in cases {
        let ctx = format!("{name} crafted: huge {what}");
        let mut bytes = b"REDIS0010".to_vec();
        bytes.extend_from_slice(&body);
        bytes.extend_from_slice(&[0u8; 64]);
        fx.write(&name, &bytes);
        let mut sealed = fx.manifest.clone();
        let e = sealed.snapshots.last_mut().unwrap();
        e.len = bytes.len() as u64;
        e.crc = forkless_rdb::crc::crc64(&bytes);
        sealed.persist(dir).unwrap();
        let (r, peak) = largest_allocation(|| recover_dir(dir, &ctx));
        let (got, rep) = r.unwrap_or_else(|e| panic!("{ctx}: {e}"));
        assert_eq!(rep.rejected.len(), 1, "{ctx}: {:?}", rep.rejected);
        assert_eq!(rep.rejected[0].0, name, "{ctx}");
        assert!(
            rep.rejected[0].1.contains("offset"),
            "{ctx}: no offset in {:?}",
            rep.rejected[0].1
        );
        assert_eq!(rep.start, StartPoint::Snapshot(previous.clone()), "{ctx}");
        assert!(got == fx.expected, "{ctx}: the fallback differs");
        assert!(peak < 64 << 20, "{ctx}: a {peak}-byte allocation");
        let _ = check_problems(dir, &ctx).expect("check");
    }
    fx.restore();
}
