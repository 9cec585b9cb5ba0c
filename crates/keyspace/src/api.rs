//! Typed convenience methods on [`Keyspace`] for embedding and tests.
//!
//! Problem: callers that are not a RESP server (tests, benchmarks, the CLI) want `ks.set(..)`
//! rather than building argument vectors and matching on [`Reply`]. Every method here runs the
//! real command through [`Keyspace::execute`], so it takes the same locks, calls the same
//! snapshot hooks and propagates exactly what the command propagates.

use crate::keyspace::{Keyspace, Session};
use crate::reply::Reply;

/// A command refused with an error reply (its full text, e.g. `WRONGTYPE ...`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandError(pub String);

impl std::fmt::Display for CommandError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CommandError {}

fn unexpected(r: Reply) -> CommandError {
    match r {
        Reply::Error(e) => CommandError(e.into_owned()),
        other => CommandError(format!("unexpected reply {other:?}")),
    }
}

impl Keyspace {
    fn run(&self, db: u32, argv: &[&[u8]]) -> Reply {
        self.execute(&mut Session { db }, argv)
    }

    fn run_int(&self, db: u32, argv: &[&[u8]]) -> Result<i64, CommandError> {
        match self.run(db, argv) {
            Reply::Integer(n) => Ok(n),
            r => Err(unexpected(r)),
        }
    }

    /// GET: the string at `key` in `db`.
    ///
    /// ```
    /// use forkless_keyspace::{Config, Keyspace};
    /// let ks = Keyspace::new(Config::default());
    /// assert_eq!(ks.get(0, b"k").unwrap(), None);
    /// ks.set(0, b"k", b"v").unwrap();
    /// assert_eq!(ks.get(0, b"k").unwrap(), Some(b"v".to_vec()));
    /// ```
    pub fn get(&self, db: u32, key: &[u8]) -> Result<Option<Vec<u8>>, CommandError> {
        match self.run(db, &[b"GET", key]) {
            Reply::Bulk(v) => Ok(Some(v)),
            Reply::Nil => Ok(None),
            r => Err(unexpected(r)),
        }
    }

    /// SET: store a string (clearing any TTL).
    ///
    /// ```
    /// use forkless_keyspace::{Config, Keyspace};
    /// let ks = Keyspace::new(Config::default());
    /// ks.set(3, b"k", b"v").unwrap();
    /// assert_eq!(ks.dbsize(3), 1);
    /// ```
    pub fn set(&self, db: u32, key: &[u8], value: &[u8]) -> Result<(), CommandError> {
        match self.run(db, &[b"SET", key, value]) {
            Reply::Status(_) => Ok(()),
            r => Err(unexpected(r)),
        }
    }

    /// SET key value PX ttl_ms: store a string that expires after `ttl_ms` milliseconds.
    ///
    /// ```
    /// use forkless_keyspace::{Config, Keyspace, ManualClock};
    /// let clock = ManualClock::new(1_000_000);
    /// let ks = Keyspace::new(Config::default().with_clock(clock.clock()));
    /// ks.set_ex(0, b"k", b"v", 500).unwrap();
    /// clock.advance(501);
    /// assert_eq!(ks.get(0, b"k").unwrap(), None);
    /// ```
    pub fn set_ex(
        &self,
        db: u32,
        key: &[u8],
        value: &[u8],
        ttl_ms: i64,
    ) -> Result<(), CommandError> {
        let ttl = ttl_ms.to_string();
        match self.run(db, &[b"SET", key, value, b"PX", ttl.as_bytes()]) {
            Reply::Status(_) => Ok(()),
            r => Err(unexpected(r)),
        }
    }

    /// DEL: remove keys, returning how many existed.
    ///
    /// ```
    /// use forkless_keyspace::{Config, Keyspace};
    /// let ks = Keyspace::new(Config::default());
    /// ks.set(0, b"a", b"1").unwrap();
    /// assert_eq!(ks.del(0, &[b"a", b"b"]).unwrap(), 1);
    /// ```
    pub fn del(&self, db: u32, keys: &[&[u8]]) -> Result<usize, CommandError> {
        let mut argv: Vec<&[u8]> = vec![b"DEL"];
        argv.extend_from_slice(keys);
        self.run_int(db, &argv).map(|n| n as usize)
    }

    /// EXISTS for one key.
    ///
    /// ```
    /// use forkless_keyspace::{Config, Keyspace};
    /// let ks = Keyspace::new(Config::default());
    /// assert!(!ks.exists(0, b"a"));
    /// ```
    pub fn exists(&self, db: u32, key: &[u8]) -> bool {
        matches!(self.run(db, &[b"EXISTS", key]), Reply::Integer(1))
    }

    /// INCR: add one to the integer at `key` (0 when missing).
    ///
    /// ```
    /// use forkless_keyspace::{Config, Keyspace};
    /// let ks = Keyspace::new(Config::default());
    /// assert_eq!(ks.incr(0, b"n").unwrap(), 1);
    /// ks.set(0, b"s", b"abc").unwrap();
    /// assert_eq!(ks.incr(0, b"s").unwrap_err().0, "ERR value is not an integer or out of range");
    /// ```
    pub fn incr(&self, db: u32, key: &[u8]) -> Result<i64, CommandError> {
        self.run_int(db, &[b"INCR", key])
    }

    /// LPUSH: push elements at the head of a list; returns the new length.
    ///
    /// ```
    /// use forkless_keyspace::{Config, Keyspace};
    /// let ks = Keyspace::new(Config::default());
    /// assert_eq!(ks.lpush(0, b"l", &[b"a", b"b"]).unwrap(), 2);
    /// ```
    pub fn lpush(&self, db: u32, key: &[u8], elems: &[&[u8]]) -> Result<usize, CommandError> {
        let mut argv: Vec<&[u8]> = vec![b"LPUSH", key];
        argv.extend_from_slice(elems);
        self.run_int(db, &argv).map(|n| n as usize)
    }

    /// HSET: set one field of a hash; true when the field is new.
    ///
    /// ```
    /// use forkless_keyspace::{Config, Keyspace};
    /// let ks = Keyspace::new(Config::default());
    /// assert!(ks.hset(0, b"h", b"f", b"v").unwrap());
    /// assert!(!ks.hset(0, b"h", b"f", b"w").unwrap());
    /// ```
    pub fn hset(
        &self,
        db: u32,
        key: &[u8],
        field: &[u8],
        value: &[u8],
    ) -> Result<bool, CommandError> {
        self.run_int(db, &[b"HSET", key, field, value])
            .map(|n| n == 1)
    }

    /// ZADD: add a member with a score; true when the member is new.
    ///
    /// ```
    /// use forkless_keyspace::{Config, Keyspace};
    /// let ks = Keyspace::new(Config::default());
    /// assert!(ks.zadd(0, b"z", 1.5, b"m").unwrap());
    /// assert!(!ks.zadd(0, b"z", 2.0, b"m").unwrap());
    /// ```
    pub fn zadd(
        &self,
        db: u32,
        key: &[u8],
        score: f64,
        member: &[u8],
    ) -> Result<bool, CommandError> {
        let s = if score.is_infinite() {
            if score > 0.0 {
                "+inf".to_string()
            } else {
                "-inf".to_string()
            }
        } else {
            format!("{score:?}")
        };
        self.run_int(db, &[b"ZADD", key, s.as_bytes(), member])
            .map(|n| n == 1)
    }
}
