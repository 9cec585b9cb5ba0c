//! Every AOF directory written by redis-server 7.0.15 (testdata/fixtures/aof) loads into the engine
//! to the keyspace the real server holds.

use std::path::Path;

use forkless_aof::{load_dir, KeyspaceTarget, LoadOptions, LoadReport};
use forkless_keyspace::{Config, Keyspace};
use forkless_rdb::Entry;

use forkless_testkit::redis_load_aof_dir;
use forkless_testkit::{fixture, redis_check_aof, TempDir};

fn load(dir: &Path, until: Option<i64>) -> (Vec<Entry>, LoadReport) {
    let ks = Keyspace::new(Config::seeded(7));
    let opts = LoadOptions {
        until_timestamp: until,
        ..LoadOptions::default()
    };
    let report = load_dir(dir, &opts, &mut KeyspaceTarget::new(&ks))
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    (ks.dump(), report)
}

fn expected(name: &str) -> Vec<Entry> {
    let f = std::fs::File::open(fixture(&format!("aof/{name}.jsonl"))).expect("expected dump");
    let mut v = forkless_dump::read_jsonl(std::io::BufReader::new(f)).expect("parse jsonl");
    forkless_rdb::model::canonicalize(&mut v);
    v
}

#[test]
fn fixture_dirs_load_to_their_dumps() {
    for name in ["multipart", "multipart-resp-base", "timestamps"] {
        let (got, report) = load(&fixture(&format!("aof/{name}")), None);
        assert_eq!(got, expected(name), "{name}");
        assert!(report.truncated.is_none(), "{name}");
        assert_eq!(report.files.len(), 2, "{name}");
        assert!(report.commands > 0, "{name}");
    }
}

#[test]
fn truncated_fixture_drops_the_cut_command() {
    let dir = fixture("aof/truncated");
    let (got, report) = load(&dir, None);
    let t = report.truncated.expect("truncation reported");
    assert_eq!(t.file, "appendonly.aof.2.incr.aof");
    assert!(t.valid_len < t.file_len);
    assert!(!t.multi_rolled_back);
    // The cut command is the SET of in-db2: everything of multipart but that key.
    let mut want = expected("multipart");
    want.retain(|e| e.key != b"in-db2");
    assert_eq!(got, want);
    // And the real server agrees.
    if let Some(r) = redis_load_aof_dir(&dir) {
        assert_eq!(got, r.expect("redis loads the truncated dir"));
    }
}

/// Copy an AOF dir to a temp dir.
fn copy_dir(from: &Path, to: &Path) {
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

#[test]
fn timestamps_fixture_until_timestamp_matches_redis_check_aof() {
    let dir = fixture("aof/timestamps");
    // The fixture's annotations are #TS:1795486466, 467, 468.
    let (all, _) = load(&dir, None);
    let mut sizes = Vec::new();
    for ts in [1_795_486_465, 1_795_486_466, 1_795_486_467, 1_795_486_468] {
        let (got, report) = load(&dir, Some(ts));
        sizes.push(got.len());
        if ts >= 1_795_486_468 {
            assert!(report.stopped_at.is_none());
            assert_eq!(got, all);
        } else {
            let stop = report.stopped_at.expect("stopped");
            assert_eq!(stop.timestamp, ts + 1);
            assert_ne!(got, all);
        }
        // The oracle: redis-check-aof --truncate-to-timestamp on a copy, then redis-server loads it.
        if redis_check_aof(&dir.join("appendonly.aof.manifest")).is_none() {
            continue;
        }
        let tmp = TempDir::new("aof-ts");
        copy_dir(&dir, tmp.path());
        let out = std::process::Command::new("redis-check-aof")
            .arg("--truncate-to-timestamp")
            .arg(ts.to_string())
            .arg(tmp.path().join("appendonly.aof.manifest"))
            .output()
            .expect("run redis-check-aof");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
        if let Some(r) = redis_load_aof_dir(tmp.path()) {
            assert_eq!(got, r.expect("redis loads"), "until {ts}");
        }
    }
    assert!(sizes.windows(2).all(|w| w[0] <= w[1]), "{sizes:?}");
}
