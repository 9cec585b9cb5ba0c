//! Mandatory in CI (FORKLESS_REQUIRE_REDIS=1): `export` of a segments directory, whole and as of
//! a time T, loads into redis-server 7.0.15 with exactly the keyspace forkless recovers to.

use crate::common;

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use common::*;
use forkless_aof::FsyncPolicy;
use forkless_keyspace::Session;
use forkless_segments::{export, recover, RecoverOptions, SegManifest};
use forkless_snapshot::Mode;
use forkless_testkit::{redis_check_aof, redis_load_aof_dir, TempDir};
use rand::rngs::StdRng;
use rand::SeedableRng;

#[test]
fn export_whole_and_as_of_a_time_loads_into_redis_with_the_same_keyspace() {
    let tmp = TempDir::new("seg-oracle");
    let dir = tmp.path().join("seg");
    let clock = Arc::new(AtomicI64::new(2_000_000_000));
    let c = clock.clone();
    let mut opts = options(16 << 10, FsyncPolicy::No);
    opts.writer.clock = Some(Arc::new(move || c.load(Ordering::SeqCst)));
    let e = open(&dir, opts);
    let mut rng = StdRng::seed_from_u64(12);
    let mut s = Session::default();
    let mut states = Vec::new();
    for t in 0..6i64 {
        clock.store(2_000_000_000 + t, Ordering::SeqCst);
        for i in 0..1_500 {
            exec(&e.ks, &mut s, &random_command(&mut rng, 400));
            if i == 700 {
                let mode = if t % 2 == 0 {
                    Mode::Converging
                } else {
                    Mode::PointInTime
                };
                e.dir.snapshot(&e.ks, &e.obs, mode).unwrap();
            }
        }
        states.push(e.ks.dump());
    }
    e.dir.close().unwrap();
    let m = SegManifest::load(&dir).unwrap();
    for (until, expected) in [
        (None, states.last().unwrap()),
        (Some(2_000_000_003), &states[3]),
        (Some(2_000_000_000), &states[0]),
    ] {
        let (ks, _) = recover(
            &dir,
            &m,
            &config(),
            RecoverOptions {
                until_timestamp: until,
            },
        )
        .unwrap();
        assert_eq!(&ks.dump(), expected, "recovery to {until:?}");
        let out = tmp.path().join(format!("aof-{}", until.unwrap_or(0)));
        let rep = export(&dir, &out, until).unwrap();
        assert!(rep.rejected.is_empty());
        if let Some(r) = redis_check_aof(&out.join("appendonly.aof.manifest")) {
            r.expect("redis-check-aof accepts the export");
        }
        if let Some(r) = redis_load_aof_dir(&out) {
            let redis = r.expect("redis-server loads the export");
            assert_eq!(&redis, expected, "redis-server after export to {until:?}");
        }
    }
}

/// Issue 13, item 1: segments written with TTLs that have passed when they are recovered and
/// exported (a snapshot in the middle of the script, so both the snapshot's deltas and the
/// segments after it replay expiries). Expected: the hand-written model of survivors and
/// redis-server 7.0.15 loading the export.
#[test]
fn recovery_and_export_after_ttls_passed_match_redis() {
    use forkless_keyspace::ManualClock;
    use forkless_segments::SegmentDir;
    use forkless_testkit::expiry;
    for mode in [Mode::Converging, Mode::PointInTime] {
        let tmp = TempDir::new("seg-expired");
        let dir = tmp.path().join("seg");
        let clock = ManualClock::new(expiry::wall_ms() - expiry::SCRIPT_CLOCK_OFFSET_MS);
        let cfg = config().with_clock(clock.clock());
        let (sd, mut ks, _) =
            SegmentDir::open(&dir, &cfg, options(1 << 10, FsyncPolicy::No)).expect("open");
        ks.set_sink(sd.writer());
        let obs = forkless_snapshot::install(&mut ks);
        let ks = Arc::new(ks);
        let mut s = Session::default();
        let half = expiry::SCRIPT.len() / 2;
        for (i, cmd) in expiry::SCRIPT.iter().enumerate() {
            clock.advance(expiry::SCRIPT_STEP_MS);
            let cmd: Vec<String> = cmd.iter().map(|x| x.to_string()).collect();
            exec(&ks, &mut s, &cmd);
            if i == half {
                sd.snapshot(&ks, &obs, mode).unwrap();
            }
        }
        sd.close().unwrap();
        let m = SegManifest::load(&dir).unwrap();
        let (rec, _) = recover(&dir, &m, &config(), RecoverOptions::default()).unwrap();
        let got = rec.dump();
        assert_eq!(
            expiry::live_keys(&got),
            expiry::survivors(),
            "{mode:?}: model"
        );
        let out = tmp.path().join("export");
        export(&dir, &out, None).unwrap();
        if let Some(r) = redis_load_aof_dir(&out) {
            let redis = r.expect("redis-server loads the export");
            assert_eq!(
                got, redis,
                "{mode:?}: forkless recovery vs redis-server on the export"
            );
        }
    }
}
