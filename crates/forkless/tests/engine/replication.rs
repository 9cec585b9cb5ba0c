//! The offset argument of a full sync (DESIGN.md section 10), checked with redis-server as the
//! oracle: the RDB of `Engine::sync_snapshot` loaded into redis-server, followed by the stream
//! bytes from the cut's offset O, equals a redis-server that executed every write from the
//! start; and O plus the bytes after it is the primary's offset.
//!
//! The interleaving is fixed: writes before the sync, writes right after the start barrier
//! (from `on_cut`, while the walk has not begun), writes from a second thread while the walk
//! runs (in a known order, one writer), and writes after the snapshot ended.

use std::io::Write;
use std::sync::mpsc;
use std::time::Duration;

use forkless::{Engine, Session};
use forkless_sync::atomic::AtomicBool;
use forkless_sync::{Arc, Mutex};
use forkless_testkit::{encode_command, read_reply, RedisServer, Reply, TempDir};

use super::conf;

type Cmd = Vec<Vec<u8>>;

fn cmd(parts: &[&str]) -> Cmd {
    parts.iter().map(|p| p.as_bytes().to_vec()).collect()
}

/// Run `c` on the engine in `db` and record it (with its SELECT) for the oracle.
fn write(e: &Engine, log: &Mutex<Vec<Cmd>>, db: u32, c: Cmd) {
    let refs: Vec<&[u8]> = c.iter().map(Vec::as_slice).collect();
    let r = e.execute(&mut Session { db }, &refs);
    assert!(!matches!(r, forkless::Reply::Error(_)), "{r:?}");
    let mut g = log.lock();
    g.push(cmd(&["SELECT", &db.to_string()]));
    g.push(c);
}

fn batch(e: &Engine, log: &Mutex<Vec<Cmd>>, tag: &str, n: usize) {
    for i in 0..n {
        let db = (i % 3) as u32;
        let k = format!("k{}", i % 50);
        match i % 6 {
            0 => write(e, log, db, cmd(&["SET", &k, &format!("{tag}-{i}")])),
            1 => write(e, log, db, cmd(&["INCR", &format!("ctr{}", i % 7)])),
            2 => write(e, log, db, cmd(&["RPUSH", "list", tag])),
            3 => write(e, log, db, cmd(&["HSET", "hash", &k, tag])),
            4 => write(e, log, db, cmd(&["DEL", &format!("k{}", (i + 3) % 50)])),
            _ => write(
                e,
                log,
                db,
                cmd(&["ZADD", "zset", &i.to_string(), &format!("{tag}{i}")]),
            ),
        }
    }
}

/// Send raw RESP to a redis-server and wait until it executed all of it.
fn apply_raw(port: u16, raw: &[u8]) {
    let s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    let mut r = std::io::BufReader::new(s.try_clone().expect("clone"));
    let mut w = s;
    w.write_all(raw).expect("write");
    w.write_all(&encode_command(&[b"SELECT", b"0"]))
        .expect("write");
    w.write_all(&encode_command(&[b"ECHO", b"the-end"]))
        .expect("write");
    loop {
        match read_reply(&mut r).expect("reply") {
            Reply::Bulk(b) if b == b"the-end" => return,
            Reply::Error(e) => panic!(
                "redis refused a stream command: {}",
                String::from_utf8_lossy(&e)
            ),
            _ => {}
        }
    }
}

#[test]
fn the_rdb_at_the_cut_plus_the_stream_from_its_offset_is_the_primary() {
    let dir = TempDir::new("repl-cut");
    let e = Engine::open(dir.path(), conf("save \"\"\nappendonly no\n")).expect("open");
    let log = Arc::new(Mutex::new(Vec::new()));
    // Before the replication stream exists.
    batch(&e, &log, "before", 300);
    e.replication().activate();
    batch(&e, &log, "active", 100);
    // The sync: writes right after the start barrier, then from another thread during the walk.
    let (tx, rx) = mpsc::channel();
    let (e2, log2) = (e.clone(), log.clone());
    let path = dir.path().join("sync.rdb");
    let fs = e
        .sync_snapshot(
            &path,
            Box::new(move |cursor, replid, offset| {
                batch(&e2, &log2, "at-cut", 200);
                let (e3, log3) = (e2.clone(), log2.clone());
                let t = std::thread::spawn(move || batch(&e3, &log3, "walk", 500));
                tx.send((cursor, replid.to_string(), offset, t)).unwrap();
            }),
            &Arc::new(AtomicBool::new(false)),
        )
        .expect("sync snapshot");
    let (cursor, replid, offset, t) = rx.recv_timeout(Duration::from_secs(30)).unwrap();
    t.join().unwrap();
    batch(&e, &log, "after", 200);
    assert_eq!(fs.offset, offset);
    assert_eq!(fs.replid, replid);
    let stream = cursor.read(usize::MAX).expect("the cursor kept its bytes");
    assert_eq!(offset + stream.len() as u64, e.replication().offset());
    // The oracle: every write, in order, on a fresh redis-server.
    let Some(want_srv) = RedisServer::start(TempDir::new("repl-want").path(), &[]) else {
        return;
    };
    let mut all = Vec::new();
    for c in log.lock().iter() {
        let refs: Vec<&[u8]> = c.iter().map(Vec::as_slice).collect();
        all.extend_from_slice(&encode_command(&refs));
    }
    apply_raw(want_srv.port(), &all);
    let want = want_srv.dump();
    // The replica: our RDB (redis-server loads it), then our stream from O.
    let rdir = TempDir::new("repl-got");
    std::fs::copy(&path, rdir.path().join("dump.rdb")).unwrap();
    let got_srv = RedisServer::start(rdir.path(), &["--dbfilename", "dump.rdb"]).unwrap();
    apply_raw(got_srv.port(), &stream);
    let got = got_srv.dump();
    assert!(!want.is_empty());
    assert!(
        got == want,
        "RDB at O + stream from O differs from the primary"
    );
    // The aux fields of a replication RDB, as Redis writes them.
    let aux = forkless_rdb::read_all(std::fs::File::open(&path).unwrap())
        .expect("our RDB reads back")
        .aux;
    let get = |k: &[u8]| {
        aux.iter()
            .find(|(a, _)| a.as_slice() == k)
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
    };
    assert_eq!(get(b"repl-id"), Some(replid));
    assert_eq!(get(b"repl-offset"), Some(offset.to_string()));
    assert!(get(b"repl-stream-db").is_some());
}
