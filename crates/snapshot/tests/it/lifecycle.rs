//! When a snapshot counts as finished, and what it leaves behind when it never runs (issue 13
//! items 4 and 6).

use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use forkless_keyspace::{Config, Keyspace, Session};
use forkless_snapshot::output::DurableFs;
use forkless_snapshot::worker::begin_snapshot;
use forkless_snapshot::{
    install, run_snapshot, start_snapshot, Mode, Progress, SnapshotError, SnapshotOptions,
};

fn keyspace(n: usize) -> (Arc<Keyspace>, Arc<forkless_snapshot::SnapshotObserver>) {
    let mut ks = Keyspace::new(Config {
        shards: 4,
        ..Config::seeded(5)
    });
    let obs = install(&mut ks);
    for i in 0..n {
        let r = ks.execute(
            &mut Session::default(),
            &[b"SET", format!("k{i}").as_bytes(), b"v"],
        );
        assert!(!r.is_error());
    }
    (Arc::new(ks), obs)
}

fn all_dicts_frozen(ks: &Keyspace) -> Vec<bool> {
    (0..ks.num_shards())
        .flat_map(|si| {
            ks.with_shard(si, |s| {
                (0..s.databases())
                    .map(|db| s.db(db).dict().is_frozen())
                    .collect::<Vec<_>>()
            })
        })
        .collect()
}

/// The commit's file system, paused before the temp file's fsync until the test says go.
#[derive(Debug)]
struct Gate {
    reached: std::sync::mpsc::SyncSender<()>,
    go: forkless_sync::Mutex<mpsc::Receiver<()>>,
}

impl DurableFs for Gate {
    fn sync_file(&self, file: &std::fs::File) -> std::io::Result<()> {
        self.reached.send(()).unwrap();
        self.go.lock().recv().unwrap();
        file.sync_all()
    }
}

/// Item 4: the snapshot says "finished" (and frees its slot) only once its file is committed:
/// while the commit is still in progress, a second snapshot to the same path cannot start, so
/// it can never rename first and be overwritten by the older one.
#[test]
fn a_snapshot_is_finished_only_after_its_commit() {
    let (ks, obs) = keyspace(2_000);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dump.rdb");
    let (reached_tx, reached_rx) = mpsc::sync_channel(1);
    let (go_tx, go_rx) = mpsc::channel();
    let opts = SnapshotOptions {
        mode: Mode::PointInTime,
        commit_fs: Some(Arc::new(Gate {
            reached: reached_tx,
            go: forkless_sync::Mutex::new(go_rx),
        })),
        ..Default::default()
    };
    let h = start_snapshot(ks.clone(), &obs, &path, opts).unwrap();
    reached_rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the commit starts");
    // The walk and the output are done, the file is not in place yet.
    assert!(!Path::new(&path).exists());
    assert!(!h.is_finished(), "finished before the commit");
    assert!(
        matches!(
            start_snapshot(ks.clone(), &obs, &path, SnapshotOptions::default()),
            Err(SnapshotError::AlreadyInProgress)
        ),
        "a second snapshot started while the first one was committing"
    );
    go_tx.send(()).unwrap();
    let res = h.wait().unwrap();
    assert_eq!(res.keys, 2_000);
    assert!(path.exists());
    let second = start_snapshot(ks, &obs, &path, SnapshotOptions::default()).unwrap();
    assert!(second.wait().is_ok());
}

/// Item 6: a begun snapshot that is never run (its worker could not start, an early return)
/// ends when dropped: the observer deactivates, the dicts thaw, the slot is free.
#[test]
fn a_begun_snapshot_that_never_runs_ends_when_dropped() {
    let (ks, obs) = keyspace(1_000);
    for mode in [Mode::Converging, Mode::PointInTime] {
        let opts = SnapshotOptions {
            mode,
            ..Default::default()
        };
        let started = begin_snapshot(&*ks, obs.try_begin().unwrap(), &opts);
        assert!(all_dicts_frozen(&ks).iter().all(|&f| f));
        drop(started);
        assert!(
            all_dicts_frozen(&ks).iter().all(|&f| !f),
            "{mode:?}: dicts left frozen"
        );
        // The observer is inactive: a write to a bucket is neither handed over nor captured,
        // so a following point-in-time snapshot sees exactly the current keyspace.
        let r = ks.execute(&mut Session::default(), &[b"SET", b"k1", b"changed"]);
        assert!(!r.is_error());
        let (rdb, res) = run_snapshot(
            &ks,
            obs.try_begin().expect("slot free"),
            &SnapshotOptions {
                mode: Mode::PointInTime,
                ..Default::default()
            },
            Vec::new(),
            &Progress::default(),
            &AtomicBool::new(false),
        )
        .unwrap();
        assert_eq!(res.keys, 1_000);
        assert_eq!(res.forced_visits, 0, "{mode:?}: {res:?}");
        assert!(rdb.windows(7).any(|w| w == b"changed"));
    }
}
