//! Blocking list and sorted-set pops: BLPOP BRPOP BRPOPLPUSH BLMOVE BLMPOP BZPOPMIN BZPOPMAX
//! BZMPOP, and XREAD/XREADGROUP with BLOCK ([`Pop::Stream`]: the read is retried as an ordinary
//! command once a write touched one of its streams), served in arrival order.
//!
//! Problem: a client waits on keys until another client's write makes one of them non-empty, or
//! until its timeout. Redis serves blocked clients from the writer's context, first blocked
//! first served (`handleClientsBlockedOnKeys` in `blocked.c`), so two waiters on one key are
//! served in the order they blocked. Here the writer's connection calls [`Blocking::serve`] after
//! its command ran; the registry executes the waiter's pop (`LPOP`, `LMOVE`, `ZPOPMIN`...)
//! through the keyspace on the waiter's behalf, in queue order, and hands the reply to the
//! waiter's task over a oneshot channel. The pop is an ordinary command, so it takes the shard
//! locks, the snapshot hooks and the propagation (an `LPOP`, as Redis 7.0 propagates a served
//! BLPOP).
//!
//! # No lost wake-up
//! A blocker, under the registry lock: (1) increments `waiting`, (2) tries its pops, (3) registers
//! when nothing was there (or decrements `waiting` when served). A writer: (a) executes its
//! write, (b) reads `waiting`, (c) when non-zero, serves under the registry lock. If (b) reads 0,
//! then (1) comes after (b) in the SeqCst order, hence (2) after (a): the blocker's own attempt
//! sees the write. Otherwise the writer's serve, under the lock, either runs before the blocker's
//! critical section (the attempt sees the write) or after it (the waiter is registered).
//!
//! # Lock order
//! The registry lock, then shard locks (inside `Keyspace::execute`). Never the reverse: writers
//! call `serve` after `execute` returned.

use std::collections::{HashMap, VecDeque};

use forkless::{Durability, Engine};
use forkless_keyspace::{Keyspace, Reply, Session};
use forkless_sync::atomic::{AtomicUsize, Ordering};
use forkless_sync::Mutex;
use tokio::sync::oneshot;

use crate::frame::{Frame, Proto};

/// The kind of pop a blocked client performs, parsed from its command.
#[derive(Clone, Debug)]
pub enum Pop {
    /// BLPOP/BRPOP (`left`), BLMPOP (`count` set).
    List {
        /// From the head.
        left: bool,
        /// BLMPOP's COUNT.
        count: Option<i64>,
    },
    /// BLMOVE/BRPOPLPUSH.
    Move {
        /// Destination key.
        dst: Vec<u8>,
        /// LEFT|RIGHT of the source.
        from: Vec<u8>,
        /// LEFT|RIGHT of the destination.
        to: Vec<u8>,
    },
    /// XREAD/XREADGROUP with BLOCK: the command to retry (BLOCK removed, `$` resolved to the
    /// stream's last ID when the client blocked, COUNT 1000 when none was given as Redis does).
    /// It answers a null array while there is nothing new.
    Stream {
        /// The command.
        argv: Vec<Vec<u8>>,
    },
    /// BZPOPMIN/BZPOPMAX (`min`), BZMPOP (`count` set).
    Zset {
        /// ZPOPMIN rather than ZPOPMAX.
        min: bool,
        /// BZMPOP's COUNT.
        count: Option<i64>,
    },
}

/// A blocking request: which keys, which pop, how long.
#[derive(Clone, Debug)]
pub struct Request {
    /// The keys in the client's order.
    pub keys: Vec<Vec<u8>>,
    /// What to do when one has data.
    pub pop: Pop,
    /// Timeout in ms (0: forever).
    pub timeout_ms: u64,
}

impl Request {
    /// The reply when the timeout passes: a null (BLMOVE, BRPOPLPUSH) or a null array.
    pub fn timeout_reply(&self) -> Frame {
        match self.pop {
            Pop::Move { .. } => Frame::Null,
            _ => Frame::NullArray,
        }
    }
}

/// Runs the pops: the engine (durability tickets, MISCONF) or a bare keyspace (unit tests).
pub trait Executor {
    /// Execute one command; the ticket to await before replying, if any.
    fn exec(&self, session: &mut Session, argv: &[&[u8]]) -> (Reply, Option<Durability>);
}

impl Executor for Keyspace {
    fn exec(&self, session: &mut Session, argv: &[&[u8]]) -> (Reply, Option<Durability>) {
        (self.execute(session, argv), None)
    }
}

impl Executor for Engine {
    fn exec(&self, session: &mut Session, argv: &[&[u8]]) -> (Reply, Option<Durability>) {
        let (r, d) = self.execute_deferred(session, argv);
        (r, (!d.is_ready()).then_some(d))
    }
}

/// Called with each `(db, key)` a served pop changed (WATCH must see them).
pub type Touch<'a> = &'a dyn Fn(u32, &[u8]);

/// A served pop: the reply and the durability ticket of the pop's log entry.
pub type Served = (Frame, Option<Durability>);

/// Outcome of one attempt.
enum Attempt {
    /// Served (or refused with an error): the reply, and a key that received data (BLMOVE's
    /// destination) whose own waiters are now servable.
    Done(Served, Option<Vec<u8>>),
    /// Nothing to pop.
    Empty,
}

/// Try `req` once in database `db`, keys in order.
fn attempt(ks: &dyn Executor, db: u32, req: &Request, proto: Proto) -> Attempt {
    let mut session = Session { db };
    if let Pop::Stream { argv } = &req.pop {
        // Served for one ready key (`serve_locked`): read that stream only, as Redis 7.0's
        // `serveClientsBlockedOnStreamKey` answers with the one key that woke the client, even
        // when others of its streams got data in the same transaction.
        let one;
        let argv = match req.keys.as_slice() {
            [key] => match stream_only(argv, key) {
                Some(a) => {
                    one = a;
                    &one
                }
                None => argv,
            },
            _ => argv,
        };
        let refs: Vec<&[u8]> = argv.iter().map(Vec::as_slice).collect();
        let (reply, ticket) = ks.exec(&mut session, &refs);
        let group = argv[0].eq_ignore_ascii_case(b"xreadgroup");
        return match reply {
            Reply::NilArray => Attempt::Empty,
            // The stream is gone or is no stream any more (`blocked.c`): a group reader is
            // unblocked with an error, a plain reader waits on.
            Reply::Error(_) if !group => Attempt::Empty,
            Reply::Error(_) => {
                let gone = req.keys.iter().any(|k| {
                    let (t, _) = ks.exec(&mut session, &[b"TYPE", k]);
                    t != Reply::Status("stream".into())
                });
                let msg = if gone {
                    "UNBLOCKED the stream key no longer exists"
                } else {
                    "NOGROUP the consumer group this client was blocked on no longer exists"
                };
                Attempt::Done((Frame::err(msg), ticket), None)
            }
            r => {
                let name = String::from_utf8_lossy(&argv[0]).to_ascii_lowercase();
                let f = if proto == Proto::Resp3 {
                    crate::frame::resp3_shape(&name, argv, r)
                } else {
                    Frame::from(r)
                };
                Attempt::Done((f, ticket), None)
            }
        };
    }
    for key in &req.keys {
        match &req.pop {
            // BLMPOP / BZMPOP run as LMPOP / ZMPOP of one key: they propagate the pop with the
            // number of elements actually popped (`RPOP key 2`, not the COUNT asked), as Redis.
            Pop::List {
                left,
                count: Some(c),
            }
            | Pop::Zset {
                min: left,
                count: Some(c),
            } => {
                let list = matches!(req.pop, Pop::List { .. });
                let argv: Vec<Vec<u8>> = vec![
                    if list {
                        b"LMPOP".to_vec()
                    } else {
                        b"ZMPOP".to_vec()
                    },
                    b"1".to_vec(),
                    key.clone(),
                    match (list, *left) {
                        (true, true) => b"LEFT".to_vec(),
                        (true, false) => b"RIGHT".to_vec(),
                        (false, true) => b"MIN".to_vec(),
                        (false, false) => b"MAX".to_vec(),
                    },
                    b"COUNT".to_vec(),
                    c.to_string().into_bytes(),
                ];
                let refs: Vec<&[u8]> = argv.iter().map(Vec::as_slice).collect();
                let (reply, ticket) = ks.exec(&mut session, &refs);
                match reply {
                    Reply::Nil | Reply::NilArray => continue,
                    Reply::Error(e) => return Attempt::Done((Frame::Error(e), ticket), None),
                    r if proto == Proto::Resp3 => {
                        let name = if list { "lmpop" } else { "zmpop" };
                        let f = crate::frame::resp3_shape(name, &argv, r);
                        return Attempt::Done((f, ticket), None);
                    }
                    r => return Attempt::Done((Frame::from(r), ticket), None),
                }
            }
            Pop::List { left, count: None } => {
                let name: &[u8] = if *left { b"LPOP" } else { b"RPOP" };
                let argv: Vec<&[u8]> = vec![name, key];
                let (reply, ticket) = ks.exec(&mut session, &argv);
                match reply {
                    Reply::Nil | Reply::NilArray => continue,
                    Reply::Error(e) => return Attempt::Done((Frame::Error(e), ticket), None),
                    r => {
                        let f = Frame::Array(vec![Frame::bulk(key.clone()), Frame::from(r)]);
                        return Attempt::Done((f, ticket), None);
                    }
                }
            }
            Pop::Move { dst, from, to } => {
                let argv: Vec<&[u8]> = vec![b"LMOVE", key, dst, from, to];
                let (reply, ticket) = ks.exec(&mut session, &argv);
                match reply {
                    Reply::Nil => continue,
                    Reply::Error(e) => return Attempt::Done((Frame::Error(e), ticket), None),
                    r => return Attempt::Done((Frame::from(r), ticket), Some(dst.clone())),
                }
            }
            Pop::Stream { .. } => return Attempt::Empty,
            Pop::Zset { min, count: None } => {
                let name: &[u8] = if *min { b"ZPOPMIN" } else { b"ZPOPMAX" };
                let argv: Vec<&[u8]> = vec![name, key];
                let (reply, ticket) = ks.exec(&mut session, &argv);
                match reply {
                    Reply::Error(e) => return Attempt::Done((Frame::Error(e), ticket), None),
                    Reply::Array(items) if items.is_empty() => continue,
                    Reply::Array(items) => {
                        let mut it = items.into_iter().map(Frame::from);
                        let mut pairs = Vec::new();
                        while let (Some(m), Some(s)) = (it.next(), it.next()) {
                            let s = match s {
                                Frame::Bulk(b) if proto == Proto::Resp3 => {
                                    forkless_keyspace::convert::parse_f64(&b)
                                        .map(Frame::Double)
                                        .unwrap_or(Frame::Bulk(b))
                                }
                                s => s,
                            };
                            pairs.push((m, s));
                        }
                        let k = Frame::bulk(key.clone());
                        let (m, s) = pairs
                            .into_iter()
                            .next()
                            .unwrap_or((Frame::Null, Frame::Null));
                        return Attempt::Done((Frame::Array(vec![k, m, s]), ticket), None);
                    }
                    _ => continue,
                }
            }
        }
    }
    Attempt::Empty
}

/// The XREAD/XREADGROUP `argv` (without BLOCK) narrowed to its stream `key` (the first time it
/// is named, as Redis keeps the first ID of a key given twice); None when it reads only that
/// stream already or `key` is not among its streams.
fn stream_only(argv: &[Vec<u8>], key: &[u8]) -> Option<Vec<Vec<u8>>> {
    let mut i = 1;
    let st = loop {
        let a = argv.get(i)?;
        if a.eq_ignore_ascii_case(b"streams") {
            break i + 1;
        } else if a.eq_ignore_ascii_case(b"count") {
            i += 2;
        } else if a.eq_ignore_ascii_case(b"group") {
            i += 3;
        } else {
            i += 1;
        }
    };
    let n = argv.len().checked_sub(st)? / 2;
    if n <= 1 {
        return None;
    }
    let k = argv[st..st + n].iter().position(|x| x == key)?;
    let mut out = argv[..st].to_vec();
    out.push(argv[st + k].clone());
    out.push(argv[st + n + k].clone());
    Some(out)
}

struct Waiter {
    db: u32,
    req: Request,
    proto: Proto,
    tx: oneshot::Sender<Served>,
}

#[derive(Default)]
struct Registry {
    next: u64,
    waiters: HashMap<u64, Waiter>,
    by_key: HashMap<(u32, Vec<u8>), VecDeque<u64>>,
}

impl Registry {
    fn remove(&mut self, id: u64) -> Option<Waiter> {
        let w = self.waiters.remove(&id)?;
        for k in &w.req.keys {
            let key = (w.db, k.clone());
            if let Some(q) = self.by_key.get_mut(&key) {
                q.retain(|&x| x != id);
                if q.is_empty() {
                    self.by_key.remove(&key);
                }
            }
        }
        Some(w)
    }
}

/// What [`Blocking::block`] decided.
pub enum Blocked {
    /// Served at once (or refused): reply now (after the ticket).
    Now(Served),
    /// Registered: wait on the receiver; `id` cancels.
    Wait(u64, oneshot::Receiver<Served>),
}

/// The registry of blocked clients.
#[derive(Default)]
pub struct Blocking {
    waiting: AtomicUsize,
    reg: Mutex<Registry>,
}

impl Blocking {
    /// Try `req` in `db`; when nothing is there and `may_block`, register it.
    pub fn block(
        &self,
        ks: &dyn Executor,
        db: u32,
        req: Request,
        proto: Proto,
        may_block: bool,
        touch: Touch<'_>,
    ) -> Blocked {
        let mut reg = self.reg.lock();
        self.waiting.fetch_add(1, Ordering::SeqCst);
        let done = attempt(ks, db, &req, proto);
        match done {
            Attempt::Done(f, dst) => {
                self.waiting.fetch_sub(1, Ordering::SeqCst);
                if !f.0.is_error() {
                    for k in &req.keys {
                        touch(db, k);
                    }
                }
                if let Some(dst) = dst {
                    touch(db, &dst);
                    self.serve_locked(&mut reg, ks, vec![(db, dst)], touch);
                }
                Blocked::Now(f)
            }
            Attempt::Empty if !may_block => {
                self.waiting.fetch_sub(1, Ordering::SeqCst);
                Blocked::Now((req.timeout_reply(), None))
            }
            Attempt::Empty => {
                let id = reg.next;
                reg.next += 1;
                for k in &req.keys {
                    reg.by_key.entry((db, k.clone())).or_default().push_back(id);
                }
                let (tx, rx) = oneshot::channel();
                reg.waiters.insert(id, Waiter { db, req, proto, tx });
                Blocked::Wait(id, rx)
            }
        }
    }

    /// Withdraw waiter `id` (timeout, CLIENT UNBLOCK, disconnect). False when it was already
    /// served: its reply is then in its receiver.
    pub fn cancel(&self, id: u64) -> bool {
        let mut reg = self.reg.lock();
        let gone = reg.remove(id).is_some();
        if gone {
            self.waiting.fetch_sub(1, Ordering::SeqCst);
        }
        gone
    }

    /// Keys of `db` were written: serve their waiters in arrival order.
    pub fn serve(&self, ks: &dyn Executor, db: u32, keys: &[&[u8]], touch: Touch<'_>) {
        if self.waiting.load(Ordering::SeqCst) == 0 {
            return;
        }
        let mut reg = self.reg.lock();
        let ready = keys.iter().map(|k| (db, k.to_vec())).collect();
        self.serve_locked(&mut reg, ks, ready, touch);
    }

    /// Every key may have changed (FLUSHALL, SWAPDB...): try every waiter.
    pub fn serve_all(&self, ks: &dyn Executor, touch: Touch<'_>) {
        if self.waiting.load(Ordering::SeqCst) == 0 {
            return;
        }
        let mut reg = self.reg.lock();
        let ready = reg.by_key.keys().cloned().collect();
        self.serve_locked(&mut reg, ks, ready, touch);
    }

    fn serve_locked(
        &self,
        reg: &mut Registry,
        ks: &dyn Executor,
        mut ready: Vec<(u32, Vec<u8>)>,
        touch: Touch<'_>,
    ) {
        let mut i = 0;
        while i < ready.len() {
            let key = ready[i].clone();
            i += 1;
            let Some(queue) = reg.by_key.get(&key) else {
                continue;
            };
            let ids: Vec<u64> = queue.iter().copied().collect();
            for id in ids {
                let Some(w) = reg.waiters.get(&id) else {
                    continue;
                };
                // Serve this key only (the waiter's other keys stay as they are).
                let one = Request {
                    keys: vec![key.1.clone()],
                    ..w.req.clone()
                };
                match attempt(ks, w.db, &one, w.proto) {
                    Attempt::Empty => break,
                    Attempt::Done((Frame::Error(e), t), _) if e.starts_with("WRONGTYPE") => {
                        // The source holds another type now: keep waiting, as Redis 7.0. A
                        // BLMOVE/BRPOPLPUSH whose source is a list failed on its destination:
                        // that error is its reply (Redis unblocks it with WRONGTYPE).
                        let src_is_list = matches!(w.req.pop, Pop::Move { .. })
                            && ks.exec(&mut Session { db: w.db }, &[b"TYPE", &key.1]).0
                                == Reply::Status("list".into());
                        if !src_is_list {
                            break;
                        }
                        if let Some(w) = reg.remove(id) {
                            self.waiting.fetch_sub(1, Ordering::SeqCst);
                            let _ = w.tx.send((Frame::Error(e), t));
                        }
                    }
                    Attempt::Done(f, dst) => {
                        if !f.0.is_error() {
                            touch(key.0, &key.1);
                            if let Some(d) = &dst {
                                touch(key.0, d);
                            }
                        }
                        if let Some(w) = reg.remove(id) {
                            self.waiting.fetch_sub(1, Ordering::SeqCst);
                            let _ = w.tx.send(f);
                        }
                        if let Some(dst) = dst {
                            ready.push((key.0, dst));
                        }
                    }
                }
            }
        }
    }
}

/// `getTimeoutFromObjectOrReply` (seconds, a float): the timeout in ms or Redis's error.
pub fn parse_timeout(arg: &[u8]) -> Result<u64, Frame> {
    let s = std::str::from_utf8(arg).unwrap_or("");
    let v: f64 = match s.parse::<f64>() {
        Ok(v) if !v.is_nan() && !s.starts_with(char::is_whitespace) => v,
        _ => return Err(Frame::err("ERR timeout is not a float or out of range")),
    };
    if v < 0.0 {
        return Err(Frame::err("ERR timeout is negative"));
    }
    let ms = v * 1000.0;
    if ms > i64::MAX as f64 / 2.0 {
        return Err(Frame::err("ERR timeout is out of range"));
    }
    Ok(ms.ceil() as u64)
}

/// Parse a blocking command (`name` lowercase). `Err` is the reply to send.
pub fn parse_request(name: &str, argv: &[Vec<u8>]) -> Result<Request, Frame> {
    let n = argv.len();
    let lr = |a: &[u8]| -> Result<Vec<u8>, Frame> {
        if a.eq_ignore_ascii_case(b"left") || a.eq_ignore_ascii_case(b"right") {
            Ok(a.to_ascii_uppercase())
        } else {
            Err(Frame::err("ERR syntax error"))
        }
    };
    match name {
        "blpop" | "brpop" | "bzpopmin" | "bzpopmax" => {
            let timeout_ms = parse_timeout(&argv[n - 1])?;
            let keys = argv[1..n - 1].to_vec();
            let pop = match name {
                "blpop" => Pop::List {
                    left: true,
                    count: None,
                },
                "brpop" => Pop::List {
                    left: false,
                    count: None,
                },
                "bzpopmin" => Pop::Zset {
                    min: true,
                    count: None,
                },
                _ => Pop::Zset {
                    min: false,
                    count: None,
                },
            };
            Ok(Request {
                keys,
                pop,
                timeout_ms,
            })
        }
        "brpoplpush" => Ok(Request {
            timeout_ms: parse_timeout(&argv[3])?,
            keys: vec![argv[1].clone()],
            pop: Pop::Move {
                dst: argv[2].clone(),
                from: b"RIGHT".to_vec(),
                to: b"LEFT".to_vec(),
            },
        }),
        "blmove" => {
            let from = lr(&argv[3])?;
            let to = lr(&argv[4])?;
            Ok(Request {
                timeout_ms: parse_timeout(&argv[5])?,
                keys: vec![argv[1].clone()],
                pop: Pop::Move {
                    dst: argv[2].clone(),
                    from,
                    to,
                },
            })
        }
        "blmpop" | "bzmpop" => {
            let timeout_ms = parse_timeout(&argv[1])?;
            let numkeys = std::str::from_utf8(&argv[2])
                .ok()
                .and_then(|s| s.parse::<i64>().ok())
                .filter(|&k| k > 0)
                .ok_or_else(|| Frame::err("ERR numkeys should be greater than 0"))?;
            if numkeys as usize > n.saturating_sub(4) {
                return Err(Frame::err("ERR syntax error"));
            }
            let keys = argv[3..3 + numkeys as usize].to_vec();
            let mut i = 3 + numkeys as usize;
            let dir = &argv[i];
            i += 1;
            let first = if name == "blmpop" {
                if dir.eq_ignore_ascii_case(b"left") {
                    true
                } else if dir.eq_ignore_ascii_case(b"right") {
                    false
                } else {
                    return Err(Frame::err("ERR syntax error"));
                }
            } else if dir.eq_ignore_ascii_case(b"min") {
                true
            } else if dir.eq_ignore_ascii_case(b"max") {
                false
            } else {
                return Err(Frame::err("ERR syntax error"));
            };
            let mut count = 1;
            let mut seen = false;
            while i < n {
                if argv[i].eq_ignore_ascii_case(b"count") && i + 1 < n && !seen {
                    count = std::str::from_utf8(&argv[i + 1])
                        .ok()
                        .and_then(|s| s.parse::<i64>().ok())
                        .filter(|&c| c > 0)
                        .ok_or_else(|| Frame::err("ERR count should be greater than 0"))?;
                    seen = true;
                    i += 2;
                } else {
                    return Err(Frame::err("ERR syntax error"));
                }
            }
            let pop = if name == "blmpop" {
                Pop::List {
                    left: first,
                    count: Some(count),
                }
            } else {
                Pop::Zset {
                    min: first,
                    count: Some(count),
                }
            };
            Ok(Request {
                keys,
                pop,
                timeout_ms,
            })
        }
        _ => Err(Frame::err("ERR unknown blocking command")),
    }
}

/// Blocking commands: name, arity (Redis's).
pub const COMMANDS: &[(&str, i32)] = &[
    ("blpop", -3),
    ("brpop", -3),
    ("brpoplpush", 4),
    ("blmove", 6),
    ("blmpop", -5),
    ("bzpopmin", -3),
    ("bzpopmax", -3),
    ("bzmpop", -5),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_like_redis() {
        assert_eq!(parse_timeout(b"0").unwrap(), 0);
        assert_eq!(parse_timeout(b"0.1").unwrap(), 100);
        assert_eq!(parse_timeout(b"1").unwrap(), 1000);
        assert_eq!(
            parse_timeout(b"-1").unwrap_err(),
            Frame::err("ERR timeout is negative")
        );
        assert_eq!(
            parse_timeout(b"abc").unwrap_err(),
            Frame::err("ERR timeout is not a float or out of range")
        );
    }

    #[test]
    fn waiters_are_served_in_arrival_order() {
        let ks = Keyspace::new(forkless_keyspace::Config::seeded(1));
        let b = Blocking::default();
        let req = |k: &str| Request {
            keys: vec![k.as_bytes().to_vec()],
            pop: Pop::List {
                left: true,
                count: None,
            },
            timeout_ms: 0,
        };
        let Blocked::Wait(_, mut rx1) = b.block(&ks, 0, req("l"), Proto::Resp2, true, &|_, _| {})
        else {
            panic!("first should block")
        };
        let Blocked::Wait(id2, mut rx2) = b.block(&ks, 0, req("l"), Proto::Resp2, true, &|_, _| {})
        else {
            panic!("second should block")
        };
        ks.execute(&mut Session { db: 0 }, &[b"RPUSH", b"l", b"a"]);
        b.serve(&ks, 0, &[b"l"], &|_, _| {});
        assert_eq!(
            rx1.try_recv().unwrap().0,
            Frame::Array(vec![Frame::bulk("l"), Frame::bulk("a")])
        );
        assert!(rx2.try_recv().is_err());
        assert!(b.cancel(id2));
        assert_eq!(b.waiting.load(Ordering::SeqCst), 0);
    }
}
