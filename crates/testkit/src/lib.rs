//! Test support shared by every crate's tests: fixture paths, temp dirs, and a real
//! `redis-server` 7.0.15 as the oracle.
//!
//! # The oracle is mandatory in CI, optional for a user
//! Tests that need redis-server call [`RedisServer::start`] (or the `redis_*` helpers). When the
//! server is not installed they return `None` and print a visible `SKIPPED` notice straight to the
//! terminal (bypassing libtest's output capture), so `cargo test` still passes for a user without
//! Redis. When the environment variable `FORKLESS_REQUIRE_REDIS=1` is set (`.ci/run` sets it), a
//! missing server is a test failure instead.
//!
//! The canonical dump ([`RedisServer::dump`]) mirrors `shared/oracle/redis_view.py`: every key of
//! every database via SCAN, read with the type's own command, expiry from PEXPIRETIME.
#![forbid(unsafe_code)]

pub mod crash;
pub mod expiry;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};

use forkless_redis_proc::Conn;
/// The launcher of Redis-compatible servers on free loopback ports (tests starting a
/// `forkless-server` binary use it too).
pub use forkless_redis_proc::{Launch, LaunchError, Process};

use forkless_rdb::model::{canonicalize, Entry, Value};

/// The repository root (the directory holding the workspace `Cargo.toml`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repo root")
}

/// Path of a fixture: `<repo>/testdata/fixtures/<rel>`.
pub fn fixture(rel: &str) -> PathBuf {
    repo_root().join("testdata/fixtures").join(rel)
}

/// A temporary directory removed on drop.
pub struct TempDir(tempfile::TempDir);

impl TempDir {
    /// A new empty directory under the system temp dir, its name starting with `prefix`.
    pub fn new(prefix: &str) -> TempDir {
        TempDir(
            tempfile::Builder::new()
                .prefix(prefix)
                .tempdir()
                .expect("create temp dir"),
        )
    }
    /// Its path.
    pub fn path(&self) -> &Path {
        self.0.path()
    }
}

/// True when the oracle is mandatory (`FORKLESS_REQUIRE_REDIS=1`).
pub fn redis_required() -> bool {
    std::env::var("FORKLESS_REQUIRE_REDIS")
        .map(|v| v == "1")
        .unwrap_or(false)
}

fn have_binary(name: &str) -> bool {
    Command::new(name)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

static NOTICE_PRINTED: AtomicBool = AtomicBool::new(false);

/// Whether `binary` can be used; prints the skip notice or panics per [`redis_required`].
fn oracle_available(binary: &str) -> bool {
    if have_binary(binary) {
        return true;
    }
    if redis_required() {
        panic!(
            "{binary} not found but FORKLESS_REQUIRE_REDIS=1: the Redis oracle tests are mandatory"
        );
    }
    if !NOTICE_PRINTED.swap(true, Ordering::Relaxed) {
        // Straight to the terminal: libtest captures only the print macros.
        let _ = writeln!(
            std::io::stderr(),
            "\nSKIPPED: {binary} not found; Redis oracle tests are skipped \
             (install redis-server 7.0.15, or set FORKLESS_REQUIRE_REDIS=1 to make this fatal)\n"
        );
    }
    false
}

/// A reply as a RESP2 client sees it: the protocol crate's type.
pub use forkless_resp::Reply;

/// Panicking accessors of [`Reply`] for tests.
pub trait ReplyExt {
    /// The bytes of a bulk or simple string (panics otherwise: test helper).
    fn bytes(&self) -> Vec<u8>;
    /// The integer of an integer reply (panics otherwise).
    fn int(&self) -> i64;
    /// The elements of an array reply (panics otherwise).
    fn array(&self) -> Vec<Reply>;
}

impl ReplyExt for Reply {
    fn bytes(&self) -> Vec<u8> {
        match self {
            Reply::Bulk(b) | Reply::Simple(b) => b.clone(),
            other => panic!("expected a string reply, got {other:?}"),
        }
    }
    fn int(&self) -> i64 {
        match self {
            Reply::Integer(i) => *i,
            other => panic!("expected an integer reply, got {other:?}"),
        }
    }
    fn array(&self) -> Vec<Reply> {
        match self {
            Reply::Array(a) => a.clone(),
            other => panic!("expected an array reply, got {other:?}"),
        }
    }
}

/// The fields of a RESP2 map reply (a flat array of name, value, ...).
fn resp_map(v: &Reply) -> std::collections::HashMap<String, Reply> {
    v.array()
        .chunks(2)
        .map(|p| {
            (
                String::from_utf8_lossy(&p[0].bytes()).into_owned(),
                p[1].clone(),
            )
        })
        .collect()
}

fn resp_id(v: &Reply) -> forkless_rdb::stream::StreamId {
    let t = String::from_utf8_lossy(&v.bytes()).into_owned();
    let (a, b) = t.split_once('-').expect("stream ID");
    forkless_rdb::stream::StreamId::new(a.parse().expect("ms"), b.parse().expect("seq"))
}

/// A stream model from redis-server's `XINFO STREAM key FULL COUNT 0` reply (nodes laid out
/// afresh from the entries: the canonical form).
pub fn stream_from_xinfo(reply: &Reply) -> forkless_rdb::stream::Stream {
    use forkless_rdb::stream::*;
    let m = resp_map(reply);
    let entries: Vec<RawEntry> = m["entries"]
        .array()
        .iter()
        .map(|e| {
            let e = e.array();
            let fv = e[1].array();
            let f = fv.iter().step_by(2).map(Reply::bytes).collect();
            let v = fv.iter().skip(1).step_by(2).map(Reply::bytes).collect();
            (resp_id(&e[0]), f, v)
        })
        .collect();
    let length = entries.len() as u64;
    let mut groups: Vec<StreamGroup> = m["groups"]
        .array()
        .iter()
        .map(|g| {
            let g = resp_map(g);
            let pending = g["pending"]
                .array()
                .iter()
                .map(|p| {
                    let p = p.array();
                    PendingEntry {
                        id: resp_id(&p[0]),
                        delivery_time: p[2].int(),
                        delivery_count: p[3].int() as u64,
                    }
                })
                .collect();
            let mut consumers: Vec<StreamConsumer> = g["consumers"]
                .array()
                .iter()
                .map(|c| {
                    let c = resp_map(c);
                    StreamConsumer {
                        name: c["name"].bytes(),
                        seen_time: c["seen-time"].int(),
                        pending: c["pending"]
                            .array()
                            .iter()
                            .map(|p| resp_id(&p.array()[0]))
                            .collect(),
                    }
                })
                .collect();
            consumers.sort_by(|a, b| a.name.cmp(&b.name));
            StreamGroup {
                name: g["name"].bytes(),
                last_id: resp_id(&g["last-delivered-id"]),
                entries_read: match &g["entries-read"] {
                    Reply::Integer(i) => *i,
                    _ => -1,
                },
                pending,
                consumers,
            }
        })
        .collect();
    groups.sort_by(|a, b| a.name.cmp(&b.name));
    Stream {
        nodes: build_nodes(entries, DEFAULT_NODE_MAX_BYTES, DEFAULT_NODE_MAX_ENTRIES),
        length,
        last_id: resp_id(&m["last-generated-id"]),
        first_id: resp_id(&m["recorded-first-entry-id"]),
        max_deleted_id: resp_id(&m["max-deleted-entry-id"]),
        entries_added: m["entries-added"].int() as u64,
        groups,
    }
}

/// Read one RESP2 reply from a blocking reader ([`forkless_redis_proc::read_reply`]).
pub use forkless_redis_proc::read_reply;

/// Encode a command as a RESP multibulk ([`forkless_resp::encode_command`]).
pub fn encode_command(argv: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    forkless_resp::encode_command(&mut out, argv);
    out
}

/// A `redis-server` child process on a free loopback port ([`forkless_redis_proc::Launch`]),
/// killed on drop.
pub struct RedisServer {
    process: Process,
    dir: PathBuf,
    conn: std::cell::RefCell<Option<Conn>>,
}

impl RedisServer {
    /// Start `redis-server --dir dir` plus `extra`, wait until it has loaded its data.
    /// `None` (with a notice) when redis-server is not installed and not required.
    /// Panics when the server refuses to start.
    pub fn start(dir: &Path, extra: &[&str]) -> Option<RedisServer> {
        Self::try_start(dir, extra)
            .map(|r| r.unwrap_or_else(|log| panic!("redis-server failed:\n{log}")))
    }

    /// Like [`RedisServer::start`], but `Some(Err(log))` when the server exits while starting
    /// or loading (for example because it refuses a file).
    pub fn try_start(dir: &Path, extra: &[&str]) -> Option<Result<RedisServer, String>> {
        if !oracle_available("redis-server") {
            return None;
        }
        Some(Self::spawn(dir, extra))
    }

    fn spawn(dir: &Path, extra: &[&str]) -> Result<RedisServer, String> {
        let process = Launch::redis_server(dir)
            .log(dir.join("redis.log"))
            .args(extra)
            .start()
            .map_err(|e| e.to_string())?;
        Ok(RedisServer {
            process,
            dir: dir.to_path_buf(),
            conn: std::cell::RefCell::new(None),
        })
    }

    fn try_call(&self, argv: &[&[u8]]) -> std::io::Result<Reply> {
        let mut guard = self.conn.borrow_mut();
        if guard.is_none() {
            *guard = Some(self.process.connect()?);
        }
        guard.as_mut().expect("connected").call(argv)
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.process.port()
    }

    /// Its data directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Send one command, return its reply (panics on I/O errors: test helper).
    pub fn call(&self, argv: &[&[u8]]) -> Reply {
        self.try_call(argv)
            .unwrap_or_else(|e| panic!("redis call {:?} failed: {e}", lossy(argv)))
    }

    /// Send a pipeline of commands, return their replies in order.
    pub fn pipeline(&self, cmds: &[Vec<Vec<u8>>]) -> Vec<Reply> {
        let mut guard = self.conn.borrow_mut();
        if guard.is_none() {
            *guard = Some(self.process.connect().expect("connect"));
        }
        let c = guard.as_mut().expect("connected");
        for argv in cmds {
            c.queue(argv);
        }
        c.flush().expect("write pipeline");
        cmds.iter()
            .map(|_| c.read_reply().expect("read reply"))
            .collect()
    }

    /// Every key of every database (0..16), canonicalized. Streams come from `XINFO STREAM key
    /// FULL COUNT 0`; module keys are left out.
    pub fn dump(&self) -> Vec<Entry> {
        let mut out = Vec::new();
        let dbs = match self.call(&[b"CONFIG", b"GET", b"databases"]) {
            Reply::Array(a) if a.len() == 2 => {
                String::from_utf8_lossy(&a[1].bytes()).parse().unwrap_or(16)
            }
            _ => 16u32,
        };
        for db in 0..dbs {
            let dbs = db.to_string();
            self.call(&[b"SELECT", dbs.as_bytes()]);
            let mut keys = Vec::new();
            let mut cursor = b"0".to_vec();
            loop {
                let r = self.call(&[b"SCAN", &cursor, b"COUNT", b"1000"]).array();
                cursor = r[0].bytes();
                keys.extend(r[1].array().iter().map(|k| k.bytes()));
                if cursor == b"0" {
                    break;
                }
            }
            keys.sort();
            keys.dedup();
            // Pipelined, a batch of keys at a time: their types, then each key's value read
            // and PEXPIRETIME (one round trip per batch and step instead of three per key).
            for batch in keys.chunks(1000) {
                let types = self.pipeline(
                    &batch
                        .iter()
                        .map(|k| vec![b"TYPE".to_vec(), k.clone()])
                        .collect::<Vec<_>>(),
                );
                let mut reads = Vec::new();
                let mut typed = Vec::new();
                for (key, ty) in batch.iter().zip(types) {
                    let k = key.clone();
                    let read: Vec<Vec<u8>> = match ty.bytes().as_slice() {
                        b"string" => vec![b"GET".to_vec(), k],
                        b"list" => vec![b"LRANGE".to_vec(), k, b"0".to_vec(), b"-1".to_vec()],
                        b"set" => vec![b"SMEMBERS".to_vec(), k],
                        b"hash" => vec![b"HGETALL".to_vec(), k],
                        b"zset" => vec![
                            b"ZRANGE".to_vec(),
                            k,
                            b"0".to_vec(),
                            b"-1".to_vec(),
                            b"WITHSCORES".to_vec(),
                        ],
                        b"stream" => ["XINFO", "STREAM"]
                            .iter()
                            .map(|a| a.as_bytes().to_vec())
                            .chain([k])
                            .chain(["FULL", "COUNT", "0"].iter().map(|a| a.as_bytes().to_vec()))
                            .collect(),
                        // "none": expired between SCAN and TYPE; a module: no canonical form.
                        _ => continue,
                    };
                    reads.push(read);
                    reads.push(vec![b"PEXPIRETIME".to_vec(), key.clone()]);
                    typed.push((key.clone(), ty.bytes()));
                }
                let replies = self.pipeline(&reads);
                for ((key, ty), r) in typed.into_iter().zip(replies.chunks(2)) {
                    let (v, pexp) = (&r[0], r[1].int());
                    let value = match ty.as_slice() {
                        b"string" => Value::String(v.bytes()),
                        b"list" => Value::List(v.array().iter().map(|e| e.bytes()).collect()),
                        b"set" => Value::Set(v.array().iter().map(|e| e.bytes()).collect()),
                        b"hash" => Value::Hash(
                            v.array()
                                .chunks(2)
                                .map(|p| (p[0].bytes(), p[1].bytes()))
                                .collect(),
                        ),
                        b"zset" => Value::ZSet(
                            v.array()
                                .chunks(2)
                                .map(|p| {
                                    let s = String::from_utf8_lossy(&p[1].bytes()).to_string();
                                    (p[0].bytes(), s.parse::<f64>().expect("score"))
                                })
                                .collect(),
                        ),
                        _ => Value::Stream(Box::new(stream_from_xinfo(v))),
                    };
                    out.push(Entry {
                        db,
                        key,
                        value,
                        expire_at_ms: if pexp >= 0 { Some(pexp) } else { None },
                    });
                }
            }
        }
        self.call(&[b"SELECT", b"0"]);
        canonicalize(&mut out);
        out
    }
}

fn lossy(argv: &[&[u8]]) -> Vec<String> {
    argv.iter()
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect()
}

/// Load an RDB file into a fresh redis-server as `dump.rdb` and dump it.
/// `None` when skipped; `Some(Err(log))` when Redis refuses the file.
pub fn redis_load_rdb(path: &Path) -> Option<Result<Vec<Entry>, String>> {
    if !oracle_available("redis-server") {
        return None;
    }
    let tmp = TempDir::new("forkless-oracle-rdb");
    std::fs::copy(path, tmp.path().join("dump.rdb")).expect("copy rdb");
    let r = RedisServer::spawn(tmp.path(), &["--dbfilename", "dump.rdb"]);
    Some(r.map(|s| s.dump()))
}

/// Load a Redis 7 multi-part AOF directory (a manifest `<name>.manifest` and its files) into a
/// fresh redis-server and dump it. `None` when skipped; `Some(Err(log))` when Redis refuses it.
pub fn redis_load_aof_dir(dir: &Path) -> Option<Result<Vec<Entry>, String>> {
    if !oracle_available("redis-server") {
        return None;
    }
    let tmp = TempDir::new("forkless-oracle-aof");
    let target = tmp.path().join("appendonlydir");
    std::fs::create_dir(&target).expect("mkdir");
    let mut appendfilename = None;
    for e in std::fs::read_dir(dir).expect("read aof dir") {
        let e = e.expect("dir entry");
        let name = e.file_name().to_string_lossy().into_owned();
        if let Some(stem) = name.strip_suffix(".manifest") {
            appendfilename = Some(stem.to_string());
        }
        if e.file_type().map(|t| t.is_file()).unwrap_or(false) {
            std::fs::copy(e.path(), target.join(&name)).expect("copy aof file");
        }
    }
    let Some(appendfilename) = appendfilename else {
        return Some(Err(format!("no *.manifest in {}", dir.display())));
    };
    let r = RedisServer::spawn(
        tmp.path(),
        &[
            "--appendonly",
            "yes",
            "--appenddirname",
            "appendonlydir",
            "--appendfilename",
            &appendfilename,
            "--aof-load-truncated",
            "yes",
        ],
    );
    Some(r.map(|s| s.dump()))
}

fn run_check(binary: &str, args: &[&std::ffi::OsStr]) -> Option<Result<String, String>> {
    if !oracle_available(binary) {
        return None;
    }
    let out = Command::new(binary)
        .args(args)
        .output()
        .expect("run checker");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Some(if out.status.success() {
        Ok(text)
    } else {
        Err(text)
    })
}

/// Run `redis-check-rdb FILE`: `Ok(output)` when it exits 0 (the file is OK).
pub fn redis_check_rdb(path: &Path) -> Option<Result<String, String>> {
    run_check("redis-check-rdb", &[path.as_os_str()]).map(|r| {
        r.and_then(|t| {
            if t.contains("RDB looks OK") {
                Ok(t)
            } else {
                Err(t)
            }
        })
    })
}

/// Run `redis-check-aof FILE-OR-MANIFEST`: `Ok(output)` when it exits 0.
pub fn redis_check_aof(path: &Path) -> Option<Result<String, String>> {
    run_check("redis-check-aof", &[path.as_os_str()])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixtures_are_found() {
        assert!(fixture("rdb/strings.rdb").is_file());
    }

    #[test]
    fn oracle_loads_a_real_fixture() {
        let Some(r) = redis_load_rdb(&fixture("rdb/multidb.rdb")) else {
            return;
        };
        let d = r.expect("redis loads its own file");
        assert!(d.iter().any(|e| e.db == 15), "{d:?}");
        assert_eq!(
            redis_check_rdb(&fixture("rdb/multidb.rdb")).map(|r| r.is_ok()),
            Some(true)
        );
        let bad = redis_load_rdb(&fixture("redis-test-assets/corrupt_ziplist.rdb")).expect("ran");
        assert!(bad.is_err());
    }

    #[test]
    fn oracle_loads_an_aof_dir() {
        let Some(r) = redis_load_aof_dir(&fixture("aof/multipart")) else {
            return;
        };
        assert!(!r.expect("loads").is_empty());
    }
}
