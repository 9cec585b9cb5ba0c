//! Shared test helpers: an engine on a segments directory, random commands.
#![allow(dead_code)]

use std::path::Path;
use std::sync::Arc;

use forkless_aof::{FsyncPolicy, WriterOptions};
use forkless_keyspace::{Config, Keyspace, Session};
use forkless_segments::{SegmentDir, SegmentOptions};
use forkless_snapshot::{install, SnapshotObserver};
use rand::rngs::StdRng;
use rand::Rng;

pub(crate) const DBS: u32 = 4;

pub(crate) fn config() -> Config {
    Config {
        shards: 8,
        databases: DBS,
        ..Config::seeded(3)
    }
}

pub(crate) struct Engine {
    pub dir: Arc<SegmentDir>,
    pub ks: Arc<Keyspace>,
    pub obs: Arc<SnapshotObserver>,
}

pub(crate) fn options(segment_bytes: u64, fsync: FsyncPolicy) -> SegmentOptions {
    SegmentOptions {
        segment_bytes,
        keep_snapshots: 100,
        keep_segment_bytes: u64::MAX,
        writer: WriterOptions {
            fsync,
            timestamps: true,
            ..WriterOptions::default()
        },
        ..SegmentOptions::default()
    }
}

pub(crate) fn open(path: &Path, opts: SegmentOptions) -> Engine {
    let (dir, mut ks, _) = SegmentDir::open(path, &config(), opts).expect("open");
    ks.set_sink(dir.writer());
    let obs = install(&mut ks);
    Engine {
        dir: Arc::new(dir),
        ks: Arc::new(ks),
        obs,
    }
}

pub(crate) fn exec(ks: &Keyspace, session: &mut Session, cmd: &[String]) {
    let argv: Vec<&[u8]> = cmd.iter().map(|a| a.as_bytes()).collect();
    let _ = ks.execute(session, &argv);
}

pub(crate) fn random_command(rng: &mut StdRng, keys: usize) -> Vec<String> {
    let key = |rng: &mut StdRng| format!("key:{}", rng.gen_range(0..keys));
    let k = key(rng);
    let v = rng.gen_range(0..1000).to_string();
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect();
    match rng.gen_range(0..21) {
        0 => s(&["SET", &k, &v]),
        1 => s(&["INCR", &k]),
        2 => s(&["DEL", &k]),
        3 => s(&["RPUSH", &k, &v, "x"]),
        4 => s(&["LPOP", &k]),
        5 => s(&["SADD", &k, &v]),
        6 => s(&["SREM", &k, &v]),
        7 => s(&["ZADD", &k, &v, &v]),
        8 => s(&["ZINCRBY", &k, "1.5", &v]),
        9 => s(&["HSET", &k, &v, &v]),
        10 => s(&["HINCRBY", &k, &v, "3"]),
        11 => s(&["RENAME", &k, &key(rng)]),
        12 => s(&["MSET", &k, &v, &key(rng), &v]),
        13 => s(&["SMOVE", &k, &key(rng), &v]),
        14 => s(&["LMOVE", &k, &key(rng), "LEFT", "RIGHT"]),
        15 => s(&["EXPIRE", &k, "100000"]),
        16 => s(&["COPY", &k, &key(rng), "REPLACE"]),
        17 => s(&["MOVE", &k, &rng.gen_range(0..DBS).to_string()]),
        18 => s(&["SPOP", &k]),
        19 => s(&["SELECT", &rng.gen_range(0..DBS).to_string()]),
        _ => s(&["APPEND", &k, &v]),
    }
}
