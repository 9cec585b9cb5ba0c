//! Shared parts of the child-process crash tests (`crates/aof/tests/it/crash.rs`,
//! `crates/segments/tests/it/crash.rs`).
//!
//! The test binary re-executes itself as a child engine that reports each acknowledged write on
//! its stdout (a pipe: what reached it survives the kill); the parent SIGKILLs it and checks the
//! recovered keyspace against those acknowledgements. The writes are chosen so that the state
//! after any prefix of a thread's writes is known exactly and a double replay or a loss in the
//! middle is visible ([`AckedWrites`]).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdout};
use std::thread::JoinHandle;
use std::time::Instant;

use forkless_rdb::model::{Entry, Value};

/// The writers' workload. Thread `t`'s write `n` goes to database `n % dbs` and is `INCR ctr:t`
/// when `(n / dbs)` is even, else `RPUSH list:t n`: not idempotent, so a write replayed twice or
/// lost is visible. Database `dbs` holds `filler` keys `filler:<i>` = `filler_value(i)` and the
/// numeric string keys named in `counters`.
#[derive(Debug, Clone, Copy)]
pub struct AckedWrites {
    /// Writer threads.
    pub threads: u64,
    /// Databases the writes spread over (the filler lives in database `dbs`).
    pub dbs: u64,
    /// Filler keys.
    pub filler: usize,
    /// The value of filler key `i`.
    pub filler_value: fn(usize) -> Vec<u8>,
    /// Other keys of database `dbs`, each holding a number.
    pub counters: &'static [&'static str],
}

/// What a keyspace holds, checked against an [`AckedWrites`] workload.
#[derive(Debug, Clone)]
pub struct Recovered {
    w: AckedWrites,
    /// Per thread, per database: (counter, list).
    pub threads: BTreeMap<u64, Vec<(u64, Vec<u64>)>>,
    /// Filler keys present (each with its exact value).
    pub filler: usize,
    /// The counters present.
    pub counters: BTreeMap<String, u64>,
}

fn parse_num(b: &[u8], what: &str) -> Result<u64, String> {
    std::str::from_utf8(b)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("{what}: not a number: {:?}", String::from_utf8_lossy(b)))
}

impl AckedWrites {
    /// Write `n` of thread `t`: (database, argv).
    pub fn op(&self, t: u64, n: u64) -> (u32, Vec<Vec<u8>>) {
        let db = (n % self.dbs) as u32;
        if (n / self.dbs).is_multiple_of(2) {
            (db, vec![b"INCR".to_vec(), format!("ctr:{t}").into_bytes()])
        } else {
            (
                db,
                vec![
                    b"RPUSH".to_vec(),
                    format!("list:{t}").into_bytes(),
                    n.to_string().into_bytes(),
                ],
            )
        }
    }

    /// Per database: (counter, list) of thread `t` after its first `p` writes.
    pub fn expected(&self, t: u64, p: u64) -> Vec<(u64, Vec<u64>)> {
        let mut out = vec![(0u64, Vec::new()); self.dbs as usize];
        for n in 0..p {
            let (db, argv) = self.op(t, n);
            let slot = &mut out[db as usize];
            if argv[0] == b"INCR" {
                slot.0 += 1;
            } else {
                slot.1.push(n);
            }
        }
        out
    }

    /// Read a dump; anything that is not the workload's is an error.
    pub fn recovered(&self, dump: &[Entry]) -> Result<Recovered, String> {
        let mut r = Recovered {
            w: *self,
            threads: BTreeMap::new(),
            filler: 0,
            counters: BTreeMap::new(),
        };
        let side_db = self.dbs as u32;
        for e in dump {
            let key = String::from_utf8_lossy(&e.key).into_owned();
            if e.expire_at_ms.is_some() {
                return Err(format!("{key} has an expiry"));
            }
            let slot = |r: &mut Recovered, t: u64| -> Result<(), String> {
                if t >= self.threads || u64::from(e.db) >= self.dbs {
                    return Err(format!("unexpected key {key} in db {}", e.db));
                }
                r.threads
                    .entry(t)
                    .or_insert_with(|| vec![(0, Vec::new()); self.dbs as usize]);
                Ok(())
            };
            if self.counters.contains(&key.as_str()) {
                let Value::String(v) = &e.value else {
                    return Err(format!("{key} is not a string"));
                };
                if e.db != side_db {
                    return Err(format!("{key} in db {}", e.db));
                }
                r.counters.insert(key.clone(), parse_num(v, &key)?);
            } else if let Some(i) = key.strip_prefix("filler:") {
                let i = parse_num(i.as_bytes(), &key)? as usize;
                if e.db != side_db
                    || i >= self.filler
                    || e.value != Value::String((self.filler_value)(i))
                {
                    return Err(format!("bad filler {key} in db {}: {:?}", e.db, e.value));
                }
                r.filler += 1;
            } else if let Some(t) = key.strip_prefix("ctr:") {
                let t = parse_num(t.as_bytes(), &key)?;
                slot(&mut r, t)?;
                let Value::String(v) = &e.value else {
                    return Err(format!("{key} in db {} is not a string", e.db));
                };
                r.threads.get_mut(&t).expect("slot")[e.db as usize].0 = parse_num(v, &key)?;
            } else if let Some(t) = key.strip_prefix("list:") {
                let t = parse_num(t.as_bytes(), &key)?;
                slot(&mut r, t)?;
                let Value::List(items) = &e.value else {
                    return Err(format!("{key} in db {} is not a list", e.db));
                };
                let items = items
                    .iter()
                    .map(|x| parse_num(x, &key))
                    .collect::<Result<Vec<u64>, String>>()?;
                r.threads.get_mut(&t).expect("slot")[e.db as usize].1 = items;
            } else {
                return Err(format!("unexpected key {key} in db {}", e.db));
            }
        }
        Ok(r)
    }
}

impl Recovered {
    /// The prefix length of thread `t`'s writes this state holds, after checking that it is
    /// exactly the state of that prefix (nothing lost in the middle, duplicated or reordered).
    pub fn prefix(&self, t: u64) -> Result<u64, String> {
        let Some(got) = self.threads.get(&t) else {
            return Ok(0);
        };
        let p: u64 = got.iter().map(|(c, l)| c + l.len() as u64).sum();
        let want = self.w.expected(t, p);
        if *got != want {
            return Err(format!(
                "thread {t}: recovered state is not the state after its first {p} writes:\n\
                 got  {got:?}\nwant {want:?}"
            ));
        }
        Ok(p)
    }

    /// A counter's value (0 when absent).
    pub fn counter(&self, name: &str) -> u64 {
        self.counters.get(name).copied().unwrap_or(0)
    }
}

/// Child side: one line to the parent, flushed at once; a broken pipe (the parent is gone) ends
/// the child.
pub fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    if writeln!(out, "{line}").and_then(|_| out.flush()).is_err() {
        std::process::exit(0);
    }
}

/// Child side: fail the whole process (a panic on a helper thread would not end it).
pub fn die(who: &str, what: String) -> ! {
    eprintln!("{who}: {what}");
    std::process::exit(3);
}

/// Parent side: kills the child if the parent panics before doing so.
#[derive(Debug)]
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Parent side: read the child's complete lines (with when they arrived) until it ends; a line
/// cut by the kill has no newline and is dropped.
pub fn read_lines(stdout: ChildStdout) -> JoinHandle<Vec<(Instant, String)>> {
    std::thread::spawn(move || {
        let mut r = BufReader::new(stdout);
        let mut lines = Vec::new();
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match r.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) if buf.last() == Some(&b'\n') => lines.push((
                    Instant::now(),
                    String::from_utf8_lossy(&buf[..buf.len() - 1]).into_owned(),
                )),
                Ok(_) => {}
            }
        }
        lines
    })
}
