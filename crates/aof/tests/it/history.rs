//! History retention and point-in-time recovery across rewrites: the cut each base records (aux
//! fields with the right values), generations kept under `history/` (newest N), recovery to
//! every second of the retained window equal to the live keyspace at the end of that second,
//! a clear error before the window, and redis-server 7.0.15 loading the live directory (with
//! `history/` inside it) and each generation directory.

use std::path::Path;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use forkless_aof::history::{read_base_cut, HISTORY_DIR};
use forkless_aof::{
    check_dir, load_dir, load_dir_at, rewrite, AofDir, AofDirOptions, BaseCut, CheckOptions,
    FsyncPolicy, GenerationStatus, KeyspaceTarget, LoadOptions, LogPosition, Manifest,
    WriterOptions,
};
use forkless_keyspace::{Config, Keyspace, Session};
use forkless_rdb::Entry;
use forkless_snapshot::SnapshotObserver;
use forkless_testkit::{redis_load_aof_dir, RedisServer, TempDir};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const T0: i64 = 1_700_000_000;

struct Live {
    ks: Arc<Keyspace>,
    obs: Arc<SnapshotObserver>,
    aof: AofDir,
    clock: Arc<AtomicI64>,
    rng: StdRng,
    session: Session,
}

fn opts(history: usize, clock: &Arc<AtomicI64>) -> AofDirOptions {
    let c = clock.clone();
    AofDirOptions {
        writer: WriterOptions {
            fsync: FsyncPolicy::EverySec,
            timestamps: true,
            clock: Some(Arc::new(move || c.load(Ordering::SeqCst))),
            ..WriterOptions::default()
        },
        history_generations: history,
        ..AofDirOptions::default()
    }
}

fn create(dir: &Path, history: usize) -> Live {
    let clock = Arc::new(AtomicI64::new(T0));
    let mut ks = Keyspace::new(Config {
        shards: 4,
        ..Config::seeded(7)
    });
    let aof = AofDir::create(dir, &[], opts(history, &clock)).unwrap();
    ks.set_sink(aof.writer());
    let obs = forkless_snapshot::install(&mut ks);
    Live {
        ks: Arc::new(ks),
        obs,
        aof,
        clock,
        rng: StdRng::seed_from_u64(42),
        session: Session::default(),
    }
}

impl Live {
    fn writes(&mut self, n: usize) {
        for i in 0..n {
            let k = format!("k{}", self.rng.gen_range(0..60));
            let k2 = format!("k{}", self.rng.gen_range(0..60));
            let v = format!("v{i}-{}", self.rng.gen_range(0..1000));
            let n2 = self.rng.gen_range(1..100).to_string();
            let argv: Vec<&str> = match self.rng.gen_range(0..12) {
                0 => vec!["SELECT", ["0", "1", "3"][self.rng.gen_range(0..3)]],
                1 => vec!["SET", &k, &v],
                2 => vec!["INCRBY", &k, &n2],
                3 => vec!["DEL", &k],
                4 => vec!["RPUSH", &k, &v, &n2],
                5 => vec!["SADD", &k, &v],
                6 => vec!["HSET", &k, &v, &n2],
                7 => vec!["ZADD", &k, &n2, &v],
                8 => vec!["EXPIRE", &k, "100000"],
                9 => vec!["RENAME", &k, &k2],
                10 => vec!["MSET", &k, &v, &k2, &n2],
                _ => vec!["APPEND", &k, &v],
            };
            let a: Vec<&[u8]> = argv.iter().map(|x| x.as_bytes()).collect();
            self.ks.execute(&mut self.session, &a);
            self.aof.writer().ack_current_thread().unwrap();
        }
    }

    fn rewrite(&self) {
        rewrite(&self.aof, &self.ks, &self.obs).expect("rewrite");
    }

    fn set_time(&self, t: i64) {
        self.clock.store(t, Ordering::SeqCst);
    }
}

fn incr_bytes(dir: &Path, m: &Manifest) -> u64 {
    m.incr
        .iter()
        .map(|f| std::fs::metadata(dir.join(&f.name)).unwrap().len())
        .sum()
}

fn load_at(dir: &Path, t: i64) -> forkless_aof::Result<(Vec<Entry>, Option<String>)> {
    let ks = Keyspace::new(Config::seeded(3));
    let r = load_dir_at(dir, t, None, &mut KeyspaceTarget::new(&ks))?;
    Ok((ks.dump(), r.generation))
}

/// Copy `from` (recursively) to `to`.
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let p = e.path();
        if p.is_dir() {
            copy_tree(&p, &to.join(e.file_name()));
        } else {
            std::fs::copy(&p, to.join(e.file_name())).unwrap();
        }
    }
}

/// redis-server 7.0.15 on a copy of the whole directory tree (history included): its dump.
fn redis_loads_tree(dir: &Path) -> Option<Vec<Entry>> {
    let tmp = TempDir::new("aof-history-redis");
    copy_tree(dir, &tmp.path().join("appendonlydir"));
    let server = RedisServer::try_start(
        tmp.path(),
        &[
            "--appendonly",
            "yes",
            "--appenddirname",
            "appendonlydir",
            "--appendfilename",
            "appendonly.aof",
        ],
    )?;
    let server = server.unwrap_or_else(|log| panic!("redis-server refuses the dir:\n{log}"));
    Some(server.dump())
}

#[test]
fn a_rewrite_records_the_cut_it_covers() {
    let tmp = TempDir::new("aof-cut-aux");
    let dir = tmp.path().join("appendonlydir");
    let mut live = create(&dir, 0);
    // The base AofDir::create writes covers incr 1 from offset 0, at creation time.
    let created = read_base_cut(&dir, &live.aof.manifest()).unwrap();
    assert_eq!(
        created,
        Some(BaseCut {
            at: LogPosition::start_of(1, T0),
            logical: 0,
        })
    );
    live.writes(300);
    live.set_time(T0 + 5);
    live.writes(300);
    live.aof.writer().flush_and_sync().unwrap();
    let m1 = live.aof.manifest();
    assert_eq!(m1.incr.len(), 1);
    let logged1 = incr_bytes(&dir, &m1);
    assert!(logged1 > 0);
    live.rewrite();
    let m2 = live.aof.manifest();
    assert_eq!(m2.incr[0].seq, 2);
    let cut1 = read_base_cut(&dir, &m2)
        .unwrap()
        .expect("the base records its cut");
    assert_eq!(
        cut1,
        BaseCut {
            at: LogPosition::start_of(2, T0 + 5),
            logical: logged1,
        }
    );
    // A second rewrite: the offset is the writer's logical offset (every byte logged since it
    // started, across the first rewrite).
    live.set_time(T0 + 9);
    live.writes(200);
    live.aof.writer().flush_and_sync().unwrap();
    let logged2 = incr_bytes(&dir, &live.aof.manifest());
    live.rewrite();
    let m3 = live.aof.manifest();
    let cut2 = read_base_cut(&dir, &m3).unwrap().unwrap();
    assert_eq!(
        cut2,
        BaseCut {
            at: LogPosition::start_of(m3.incr[0].seq, T0 + 9),
            logical: logged1 + logged2,
        }
    );
    assert_eq!(m3.incr[0].seq, 3);
    // Exposed when loading, and by check.
    let want = live.ks.dump();
    live.aof.close().unwrap();
    let ks = Keyspace::new(Config::seeded(9));
    let report = load_dir(&dir, &LoadOptions::default(), &mut KeyspaceTarget::new(&ks)).unwrap();
    assert_eq!(report.base_cut(), Some(cut2));
    assert_eq!(ks.dump(), want);
    assert_eq!(
        check_dir(&dir, &CheckOptions::default()).unwrap().base_cut,
        Some(cut2)
    );
    // history_generations = 0: nothing kept, as Redis.
    assert!(!dir.join(HISTORY_DIR).exists());
    if let Some(r) = redis_load_aof_dir(&dir) {
        assert_eq!(
            r.expect("redis-server loads a base with the cut aux fields"),
            want
        );
    }
}

#[test]
fn recovery_to_every_second_of_the_window_across_rewrites() {
    let tmp = TempDir::new("aof-history-pitr");
    let dir = tmp.path().join("appendonlydir");
    let mut live = create(&dir, 2);
    let mut at: Vec<(i64, Vec<Entry>)> = Vec::new();
    // Rewrites at the end of seconds 2, 6 and 10, and in the middle of seconds 4 and 8.
    for s in 0..12i64 {
        live.set_time(T0 + s);
        live.writes(150);
        if s == 4 || s == 8 {
            live.rewrite();
        }
        live.writes(150);
        if s == 2 || s == 6 || s == 10 {
            live.rewrite();
        }
        at.push((T0 + s, live.ks.dump()));
    }
    let final_state = live.ks.dump();
    let m = live.aof.manifest();
    assert_eq!(m.base.as_ref().unwrap().seq, 6, "five rewrites: {m:?}");
    assert!(m.history.is_empty(), "{m:?}");
    let gens = live.aof.generations().unwrap();
    let names: Vec<&str> = gens.iter().map(|g| g.name.as_str()).collect();
    assert_eq!(names, ["gen-4", "gen-5"], "the newest 2 generations only");
    assert!(gens.iter().all(|g| g.status == GenerationStatus::Valid));
    live.aof.close().unwrap();
    let mut top: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    top.sort();
    assert_eq!(
        top,
        [
            "appendonly.aof.6.base.rdb",
            "appendonly.aof.6.incr.aof",
            "appendonly.aof.manifest",
            "history"
        ]
    );

    // Generation gen-4's base was cut at second 6, gen-5's at second 8, the live base at 10.
    let cut = |d: &Path| {
        let m = Manifest::load(d, "appendonly.aof").unwrap();
        read_base_cut(d, &m).unwrap().unwrap()
    };
    let g4 = dir.join(HISTORY_DIR).join("gen-4");
    let g5 = dir.join(HISTORY_DIR).join("gen-5");
    assert_eq!(cut(&g4).at.unix_secs, T0 + 6);
    assert_eq!(cut(&g5).at.unix_secs, T0 + 8);
    assert_eq!(cut(&dir).at.unix_secs, T0 + 10);
    // Generations chain: each one's incr files end where the next base's cut starts.
    let last_incr = |d: &Path| Manifest::load(d, "appendonly.aof").unwrap().last_incr_seq();
    assert_eq!(cut(&g5).at.seq, last_incr(&g4) + 1);
    assert_eq!(cut(&dir).at.seq, last_incr(&g5) + 1);

    for (t, want) in &at {
        let t = *t;
        if t < T0 + 6 {
            let e = load_at(&dir, t).unwrap_err().to_string();
            assert!(
                e.contains(&format!("cannot recover to timestamp {t}"))
                    && e.contains("older than the oldest retained point")
                    && e.contains("gen-4"),
                "{e}"
            );
            continue;
        }
        let (got, from) = load_at(&dir, t).unwrap();
        let expect_from = match t - T0 {
            6 | 7 => Some("gen-4"),
            8 | 9 => Some("gen-5"),
            _ => None,
        };
        assert_eq!(from.as_deref(), expect_from, "T = {t}");
        assert!(
            got == *want,
            "recovery to T = {t} differs from the live keyspace then"
        );
    }
    assert_eq!(load_at(&dir, T0 + 1000).unwrap().0, final_state);
    if let Some(r) = redis_load_aof_dir(&dir) {
        assert_eq!(r.expect("redis-server loads the live dir"), final_state);
    }
    // redis-server on the whole tree (it must not be confused by history/), and on a generation
    // directory (loaded whole: the state at the next base's cut, the end of second 10 for gen-5).
    if let Some(got) = redis_loads_tree(&dir) {
        assert_eq!(got, final_state);
    }
    if let Some(r) = redis_load_aof_dir(&g5) {
        assert_eq!(r.expect("redis-server loads a generation"), at[10].1);
    }
    let report = check_dir(&dir, &CheckOptions::default()).unwrap();
    let statuses: Vec<(&str, &GenerationStatus)> = report
        .history
        .iter()
        .map(|g| (g.name.as_str(), &g.status))
        .collect();
    assert_eq!(
        statuses,
        [
            ("gen-4", &GenerationStatus::Valid),
            ("gen-5", &GenerationStatus::Valid)
        ]
    );
    assert!(report.history.iter().all(|g| g.files.len() >= 2));

    // A damaged generation is reported and skipped; the live AOF never depends on it.
    let g4m = Manifest::load(&g4, "appendonly.aof").unwrap();
    std::fs::remove_file(g4.join(&g4m.incr[0].name)).unwrap();
    let report = check_dir(&dir, &CheckOptions::default()).unwrap();
    assert!(matches!(
        report.history[0].status,
        GenerationStatus::Incomplete(_)
    ));
    let e = load_at(&dir, T0 + 7).unwrap_err().to_string();
    assert!(e.contains("older than the oldest retained point"), "{e}");
    assert!(load_at(&dir, T0 + 9).unwrap().0 == at[9].1);
    assert_eq!(reload(&dir), final_state);
}

fn reload(dir: &Path) -> Vec<Entry> {
    let ks = Keyspace::new(Config::seeded(2));
    load_dir(dir, &LoadOptions::default(), &mut KeyspaceTarget::new(&ks)).unwrap();
    ks.dump()
}
