//! Typed helpers on [`Engine`] and the transaction builder [`Tx`].
//!
//! Each helper runs the real command through [`Engine::execute`] (so MISCONF and the fsync
//! policy apply) and maps its reply: an error reply becomes [`Error::Command`], `MISCONF`
//! [`Error::Misconf`], a shut-down engine [`Error::Closed`].

use std::time::Duration;

use forkless_keyspace::{Reply, Session};

use crate::durability::CLOSED;
use crate::engine::Engine;
use crate::error::{Error, Result};

impl Engine {
    fn run(&self, db: u32, argv: &[&[u8]]) -> Result<Reply> {
        match self.execute(&mut Session { db }, argv) {
            Reply::Error(e) if e.starts_with("MISCONF") => Err(Error::Misconf(e.into_owned())),
            Reply::Error(e) if e.starts_with(CLOSED) => Err(Error::Closed),
            Reply::Error(e) => Err(Error::Command(e.into_owned())),
            r => Ok(r),
        }
    }

    fn run_int(&self, db: u32, argv: &[&[u8]]) -> Result<i64> {
        match self.run(db, argv)? {
            Reply::Integer(n) => Ok(n),
            r => Err(Error::Command(format!("unexpected reply {r:?}"))),
        }
    }

    /// GET.
    pub fn get(&self, db: u32, key: &[u8]) -> Result<Option<Vec<u8>>> {
        match self.run(db, &[b"GET", key])? {
            Reply::Bulk(v) => Ok(Some(v)),
            Reply::Nil => Ok(None),
            r => Err(Error::Command(format!("unexpected reply {r:?}"))),
        }
    }

    /// SET (clears any TTL).
    pub fn set(&self, db: u32, key: &[u8], value: &[u8]) -> Result<()> {
        self.run(db, &[b"SET", key, value]).map(drop)
    }

    /// SET with an expiry of `ttl` (millisecond precision).
    pub fn set_ex(&self, db: u32, key: &[u8], value: &[u8], ttl: Duration) -> Result<()> {
        let ms = ttl.as_millis().max(1).to_string();
        self.run(db, &[b"SET", key, value, b"PX", ms.as_bytes()])
            .map(drop)
    }

    /// INCR.
    pub fn incr(&self, db: u32, key: &[u8]) -> Result<i64> {
        self.run_int(db, &[b"INCR", key])
    }

    /// DEL: how many of `keys` existed.
    pub fn del(&self, db: u32, keys: &[&[u8]]) -> Result<u64> {
        let mut argv: Vec<&[u8]> = vec![b"DEL"];
        argv.extend_from_slice(keys);
        self.run_int(db, &argv).map(|n| n as u64)
    }

    /// EXISTS for one key.
    pub fn exists(&self, db: u32, key: &[u8]) -> Result<bool> {
        self.run_int(db, &[b"EXISTS", key]).map(|n| n == 1)
    }

    /// PEXPIRE: true when the key exists and got the expiry.
    pub fn expire(&self, db: u32, key: &[u8], ttl: Duration) -> Result<bool> {
        let ms = ttl.as_millis().to_string();
        self.run_int(db, &[b"PEXPIRE", key, ms.as_bytes()])
            .map(|n| n == 1)
    }

    /// PTTL: `None` when the key does not exist or has no expiry.
    pub fn ttl(&self, db: u32, key: &[u8]) -> Result<Option<Duration>> {
        let n = self.run_int(db, &[b"PTTL", key])?;
        Ok((n >= 0).then(|| Duration::from_millis(n as u64)))
    }

    /// HSET of one field: true when the field is new.
    pub fn hset(&self, db: u32, key: &[u8], field: &[u8], value: &[u8]) -> Result<bool> {
        self.run_int(db, &[b"HSET", key, field, value])
            .map(|n| n == 1)
    }

    /// HGET.
    pub fn hget(&self, db: u32, key: &[u8], field: &[u8]) -> Result<Option<Vec<u8>>> {
        match self.run(db, &[b"HGET", key, field])? {
            Reply::Bulk(v) => Ok(Some(v)),
            Reply::Nil => Ok(None),
            r => Err(Error::Command(format!("unexpected reply {r:?}"))),
        }
    }

    /// LPUSH: the list's new length.
    pub fn lpush(&self, db: u32, key: &[u8], elems: &[&[u8]]) -> Result<u64> {
        let mut argv: Vec<&[u8]> = vec![b"LPUSH", key];
        argv.extend_from_slice(elems);
        self.run_int(db, &argv).map(|n| n as u64)
    }

    /// RPUSH: the list's new length.
    pub fn rpush(&self, db: u32, key: &[u8], elems: &[&[u8]]) -> Result<u64> {
        let mut argv: Vec<&[u8]> = vec![b"RPUSH", key];
        argv.extend_from_slice(elems);
        self.run_int(db, &argv).map(|n| n as u64)
    }

    /// LRANGE.
    pub fn lrange(&self, db: u32, key: &[u8], start: i64, stop: i64) -> Result<Vec<Vec<u8>>> {
        let (a, b) = (start.to_string(), stop.to_string());
        match self.run(db, &[b"LRANGE", key, a.as_bytes(), b.as_bytes()])? {
            Reply::Array(items) => Ok(items
                .into_iter()
                .filter_map(|r| match r {
                    Reply::Bulk(v) => Some(v),
                    _ => None,
                })
                .collect()),
            r => Err(Error::Command(format!("unexpected reply {r:?}"))),
        }
    }

    /// SADD: how many members were new.
    pub fn sadd(&self, db: u32, key: &[u8], members: &[&[u8]]) -> Result<u64> {
        let mut argv: Vec<&[u8]> = vec![b"SADD", key];
        argv.extend_from_slice(members);
        self.run_int(db, &argv).map(|n| n as u64)
    }

    /// DBSIZE of `db`.
    pub fn dbsize(&self, db: u32) -> u64 {
        self.keyspace().dbsize(db) as u64
    }
}

/// Commands queued for [`Engine::transaction`].
#[derive(Debug, Default, Clone)]
pub struct Tx {
    pub(crate) cmds: Vec<Vec<Vec<u8>>>,
}

impl Tx {
    /// Queue one command.
    pub fn cmd(&mut self, argv: &[&[u8]]) -> &mut Tx {
        self.cmds.push(argv.iter().map(|a| a.to_vec()).collect());
        self
    }
    /// Queue SET.
    pub fn set(&mut self, key: &[u8], value: &[u8]) -> &mut Tx {
        self.cmd(&[b"SET", key, value])
    }
    /// Queue INCR.
    pub fn incr(&mut self, key: &[u8]) -> &mut Tx {
        self.cmd(&[b"INCR", key])
    }
    /// Queue DEL.
    pub fn del(&mut self, key: &[u8]) -> &mut Tx {
        self.cmd(&[b"DEL", key])
    }
    /// Number of queued commands.
    pub fn len(&self) -> usize {
        self.cmds.len()
    }
    /// True when nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.cmds.is_empty()
    }
}
