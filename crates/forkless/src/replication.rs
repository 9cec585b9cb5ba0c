//! The replication stream: the engine's propagated commands as replicas receive them, with
//! Redis's offsets, backlog and replication ids.
//!
//! # What it is
//! Redis numbers every byte it sends to replicas: `master_repl_offset` is the count of bytes ever
//! fed to the stream (the propagated commands as RESP, the `SELECT`s between databases, the
//! periodic `PING`, `REPLCONF GETACK`). A replica's offset is the count of those bytes it has
//! applied; `PSYNC <replid> <offset>` resumes from any offset the backlog still holds. This module
//! is that stream for forkless: one byte buffer with the offset of its last byte, fed by the
//! engine's one propagation sink (`engine::Fanout`) under the writing command's shard locks, so
//! the order of the stream is the order in which commands changed the keyspace.
//!
//! ```text
//!   first_byte_offset                          offset (master_repl_offset)
//!        |<-------------- buf (VecDeque) -------------->|
//!        |   backlog window (repl-backlog-size)  |      |
//!             ^ cursor A (replica sending)   ^ cursor B |
//! ```
//! Bytes leave the front only when they are outside the backlog window **and** behind every
//! cursor (Redis 7.0's shared replication buffer: the backlog and the replicas' output buffers
//! are one list of blocks). A cursor that falls more than `limit` bytes behind (the replica class
//! of `client-output-buffer-limit`) is dropped, so a stuck replica cannot hold memory forever:
//! its next read answers [`Lagged`] and the server disconnects it, as Redis does.
//!
//! # States
//! * inactive (no replica ever attached, Redis's `repl_backlog == NULL`): the sink feeds nothing,
//!   the offset stays; one atomic load per write.
//! * active: every propagated command is fed. [`ReplLog::activate`] (first replica) takes a new
//!   replication id, as Redis's `createReplicationBacklog` path.
//! * following (this engine is a replica): the sink feeds nothing of its own; the primary's link
//!   feeds the primary's bytes verbatim ([`with_primary_bytes`]), so replicas of this replica see
//!   the primary's offsets and id, as Redis's proxying of its master stream.
//!
//! # Callers
//! `engine::Fanout::propagate` (every write, under shard locks) → [`ReplLog::feed_ops`];
//! `Engine::sync_snapshot`'s start-barrier hook → [`ReplLog::cut`]; the server's replica tasks
//! → [`Cursor::read`]; its cron → [`ReplLog::feed_command`] (PING, GETACK); its primary link →
//! [`with_primary_bytes`], [`ReplLog::follow`], [`ReplLog::promote`].
//!
//! # Lock order
//! `inner` is a leaf of DESIGN.md section 2 (taken under shard locks by the sink, never while
//! taking another lock, never across I/O: readers copy bytes out and write them after
//! releasing it). The listener is called after `inner` is released.

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};

use forkless_keyspace::Propagated;
use forkless_sync::atomic::{AtomicBool, Ordering};
use forkless_sync::{Arc, Mutex};

thread_local! {
    /// The primary's bytes for the command this thread is applying (see [`with_primary_bytes`]).
    static PRIMARY_BYTES: RefCell<Option<(Vec<u8>, Option<u32>)>> = const { RefCell::new(None) };
}

/// Run `f` (which applies one command or transaction of the primary's stream through the
/// engine) so that the stream bytes `raw` are fed to this engine's replication stream by the
/// sink, under the command's shard locks, instead of the re-encoded effects: replicas of this
/// replica then get the primary's stream byte for byte. `db_after` is the stream's database
/// after `raw` (a `SELECT` inside it). Returns `f`'s result and whether the sink took the bytes
/// (when the command propagated nothing, the caller feeds them with [`ReplLog::feed_raw`]).
pub fn with_primary_bytes<R>(
    raw: &[u8],
    db_after: Option<u32>,
    f: impl FnOnce() -> R,
) -> (R, bool) {
    PRIMARY_BYTES.with(|c| *c.borrow_mut() = Some((raw.to_vec(), db_after)));
    let r = f();
    let left = PRIMARY_BYTES.with(|c| c.borrow_mut().take());
    (r, left.is_none())
}

/// A reader that fell too far behind (its bytes were released): the replica must be dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lagged;

/// A 40-character hex replication id.
fn new_replid() -> String {
    use rand::RngCore;
    let mut b = [0u8; 20];
    rand::thread_rng().fill_bytes(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The fields of INFO replication that describe the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplInfo {
    /// `master_replid`.
    pub replid: String,
    /// `master_replid2` (all zeros when none).
    pub replid2: String,
    /// `master_repl_offset`.
    pub offset: u64,
    /// `second_repl_offset` (-1 when none).
    pub second_offset: i64,
    /// `repl_backlog_active`.
    pub active: bool,
    /// `repl_backlog_size`.
    pub backlog_size: u64,
    /// `repl_backlog_first_byte_offset`.
    pub first_byte_offset: u64,
    /// `repl_backlog_histlen`.
    pub histlen: u64,
}

struct CursorState {
    at: u64,
    dropped: bool,
}

struct Inner {
    replid: String,
    replid2: String,
    second_offset: i64,
    /// Bytes ever fed: the offset of the end of `buf`.
    offset: u64,
    buf: VecDeque<u8>,
    backlog_size: u64,
    /// Largest lag a cursor may have before it is dropped (0: none).
    limit: u64,
    /// The database the stream has selected (None: the next command emits `SELECT`).
    stream_db: Option<u32>,
    cursors: HashMap<u64, CursorState>,
    next_cursor: u64,
    /// Scratch buffer for encoding (kept to avoid an allocation per write).
    scratch: Vec<u8>,
}

impl Inner {
    fn first_byte(&self) -> u64 {
        self.offset - self.buf.len() as u64
    }

    fn append(&mut self, bytes: &[u8]) {
        self.buf.extend(bytes);
        self.offset += bytes.len() as u64;
        self.trim();
    }

    /// Release the bytes nobody needs: outside the backlog window and behind every cursor.
    /// Cursors lagging more than `limit` are dropped first.
    fn trim(&mut self) {
        let offset = self.offset;
        let limit = self.limit;
        let mut min = offset;
        for c in self.cursors.values_mut() {
            if c.dropped {
                continue;
            }
            if limit > 0 && offset - c.at > limit {
                c.dropped = true;
                continue;
            }
            min = min.min(c.at);
        }
        let window_start = offset.saturating_sub(self.backlog_size);
        let keep_from = min.min(window_start).max(self.first_byte());
        let drop = (keep_from - self.first_byte()) as usize;
        if drop > 0 {
            self.buf.drain(..drop);
        }
    }

    fn add_cursor(&mut self, at: u64) -> u64 {
        let id = self.next_cursor;
        self.next_cursor += 1;
        self.cursors.insert(id, CursorState { at, dropped: false });
        id
    }
}

/// The replication stream of one engine. See the module documentation.
pub struct ReplLog {
    active: AtomicBool,
    following: AtomicBool,
    inner: Mutex<Inner>,
    listener: Mutex<Option<Arc<dyn Fn() + Send + Sync>>>,
}

impl std::fmt::Debug for ReplLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplLog")
            .field("info", &self.info())
            .finish_non_exhaustive()
    }
}

impl ReplLog {
    /// An inactive stream with a fresh replication id.
    pub fn new(backlog_size: u64) -> ReplLog {
        ReplLog {
            active: AtomicBool::new(false),
            following: AtomicBool::new(false),
            inner: Mutex::new(Inner {
                replid: new_replid(),
                replid2: "0".repeat(40),
                second_offset: -1,
                offset: 0,
                buf: VecDeque::new(),
                backlog_size: backlog_size.max(1),
                limit: 0,
                stream_db: None,
                cursors: HashMap::new(),
                next_cursor: 1,
                scratch: Vec::new(),
            }),
            listener: Mutex::new(None),
        }
    }

    /// Called after bytes were fed (the server wakes its replica tasks).
    pub fn set_listener(&self, f: Arc<dyn Fn() + Send + Sync>) {
        *self.listener.lock() = Some(f);
    }

    fn notify(&self) {
        let l = self.listener.lock().clone();
        if let Some(l) = l {
            l();
        }
    }

    /// `repl-backlog-size` and the replica output limit (`client-output-buffer-limit replica`
    /// hard bytes; 0 = none).
    pub fn set_sizes(&self, backlog_size: u64, limit: u64) {
        let mut g = self.inner.lock();
        g.backlog_size = backlog_size.max(1);
        g.limit = limit;
        g.trim();
    }

    /// The stream exists (a replica attached once): writes are fed.
    pub fn is_active(&self) -> bool {
        self.active.load(Ordering::Acquire)
    }

    /// This engine follows a primary: only the primary's bytes are fed.
    pub fn is_following(&self) -> bool {
        self.following.load(Ordering::Acquire)
    }

    /// Create the backlog if there is none (the first replica attaching to a primary): a new
    /// replication id and no second id, as Redis's `createReplicationBacklog` path.
    pub fn activate(&self) {
        if self.is_active() {
            return;
        }
        let mut g = self.inner.lock();
        if !self.following.load(Ordering::Acquire) {
            g.replid = new_replid();
            g.replid2 = "0".repeat(40);
            g.second_offset = -1;
        }
        g.stream_db = None;
        self.active.store(true, Ordering::Release);
    }

    /// Feed one unit of propagated commands (the sink; under the command's shard locks).
    /// Emits `SELECT` when the unit's database differs from the stream's.
    pub fn feed_ops(&self, ops: &[Propagated]) {
        if let Some((raw, db_after)) = PRIMARY_BYTES.with(|c| c.borrow_mut().take()) {
            self.feed_raw(&raw, db_after);
            return;
        }
        if !self.is_active() || self.is_following() {
            return;
        }
        {
            let mut g = self.inner.lock();
            let mut out = std::mem::take(&mut g.scratch);
            out.clear();
            let mut db = g.stream_db;
            for (d, argv) in ops {
                if db != Some(*d) {
                    let n = d.to_string();
                    forkless_resp::encode_command(&mut out, &[b"SELECT", n.as_bytes()]);
                    db = Some(*d);
                }
                forkless_resp::encode_command_iter(&mut out, argv.iter().map(|a| &a[..]));
            }
            g.stream_db = db;
            g.append(&out);
            g.scratch = out;
        }
        self.notify();
    }

    /// Feed a command that belongs to no database (PING, REPLCONF GETACK).
    pub fn feed_command(&self, argv: &[&[u8]]) {
        if !self.is_active() || self.is_following() {
            return;
        }
        let mut out = Vec::new();
        forkless_resp::encode_command(&mut out, argv);
        self.inner.lock().append(&out);
        self.notify();
    }

    /// Feed bytes of the primary's stream verbatim (a replica; `db_after`: a `SELECT` in them).
    pub fn feed_raw(&self, raw: &[u8], db_after: Option<u32>) {
        {
            let mut g = self.inner.lock();
            if db_after.is_some() {
                g.stream_db = db_after;
            }
            g.append(raw);
        }
        self.notify();
    }

    /// `master_repl_offset`.
    pub fn offset(&self) -> u64 {
        self.inner.lock().offset
    }

    /// The replication id.
    pub fn replid(&self) -> String {
        self.inner.lock().replid.clone()
    }

    /// INFO replication's stream fields.
    pub fn info(&self) -> ReplInfo {
        let g = self.inner.lock();
        ReplInfo {
            replid: g.replid.clone(),
            replid2: g.replid2.clone(),
            offset: g.offset,
            second_offset: g.second_offset,
            active: self.is_active(),
            backlog_size: g.backlog_size,
            first_byte_offset: if self.is_active() {
                g.first_byte() + 1
            } else {
                0
            },
            histlen: g.buf.len() as u64,
        }
    }

    /// The cut of a full sync, taken inside a snapshot's start barrier (no write in flight):
    /// a cursor at the current offset, the replication id and the stream's database.
    pub fn cut(self: &Arc<Self>) -> (Cursor, String, Option<u32>) {
        let mut g = self.inner.lock();
        let at = g.offset;
        let id = g.add_cursor(at);
        let db = g.stream_db;
        // A primary makes the next command after a cut select its database (Redis resets
        // `slaveseldb` when a full sync starts): the replica's stream then starts with SELECT
        // whatever database it assumed. A replica relays its primary's bytes and cannot add
        // one: its replicas take the database from the RDB's `repl-stream-db`.
        if !self.is_following() {
            g.stream_db = None;
        }
        (
            Cursor {
                log: self.clone(),
                id,
            },
            g.replid.clone(),
            db,
        )
    }

    /// Redis's `masterTryPartialResynchronization`: a cursor at `offset` when `replid` is this
    /// stream's id (or its previous id, up to `second_repl_offset`) and the backlog still holds
    /// every byte from there; `None` means a full sync.
    pub fn psync(self: &Arc<Self>, replid: &str, offset: u64) -> Option<Cursor> {
        if !self.is_active() {
            return None;
        }
        let mut g = self.inner.lock();
        let same = replid == g.replid
            || (replid == g.replid2 && g.second_offset >= 0 && offset <= g.second_offset as u64);
        if !same || offset < g.first_byte() || offset > g.offset {
            return None;
        }
        let id = g.add_cursor(offset);
        Some(Cursor {
            log: self.clone(),
            id,
        })
    }

    /// This engine now follows a primary whose stream has id `replid` and stands at `offset`
    /// (after a full sync): the backlog restarts there, empty, and every cursor is dropped
    /// (replicas of this replica must sync again, as Redis disconnects them).
    pub fn follow(&self, replid: &str, offset: u64) {
        let mut g = self.inner.lock();
        g.replid = replid.to_string();
        g.replid2 = "0".repeat(40);
        g.second_offset = -1;
        g.offset = offset;
        g.buf.clear();
        g.stream_db = None;
        for c in g.cursors.values_mut() {
            c.dropped = true;
        }
        self.following.store(true, Ordering::Release);
        self.active.store(true, Ordering::Release);
        drop(g);
        self.notify();
    }

    /// The primary continued under a new id (`+CONTINUE <newid>` after its failover): keep
    /// the offsets, remember the old id as the second one (Redis's `shiftReplicationId`).
    pub fn primary_changed_id(&self, new_id: &str) {
        let mut g = self.inner.lock();
        if g.replid == new_id {
            return;
        }
        g.replid2 = std::mem::replace(&mut g.replid, new_id.to_string());
        g.second_offset = g.offset as i64 + 1;
    }

    /// The primary continued this engine's stream (`+CONTINUE`): follow it again, keeping the
    /// backlog and offsets.
    pub fn resume_following(&self) {
        self.following.store(true, Ordering::Release);
        self.active.store(true, Ordering::Release);
    }

    /// The replica's link is over: this engine keeps its data and offsets and keeps its
    /// replicas (they continue with `PSYNC` on the same id, as Redis's chained replicas).
    pub fn unfollow(&self) {
        self.following.store(false, Ordering::Release);
    }

    /// `REPLICAOF NO ONE`: this engine becomes a primary. Its stream continues under a new
    /// id; the old one is kept as the second id up to the current offset + 1, so replicas of
    /// the old primary can `PSYNC` to it and continue (Redis's `shiftReplicationId`).
    pub fn promote(&self) {
        let mut g = self.inner.lock();
        g.replid2 = std::mem::replace(&mut g.replid, new_replid());
        g.second_offset = g.offset as i64 + 1;
        g.stream_db = None;
        self.following.store(false, Ordering::Release);
    }
}

/// A read position in the stream held by one replica: the bytes from it on stay until read
/// (or until the cursor lags beyond the limit and is dropped). Dropping it releases them.
pub struct Cursor {
    log: Arc<ReplLog>,
    id: u64,
}

impl std::fmt::Debug for Cursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cursor").field("id", &self.id).finish()
    }
}

impl Cursor {
    /// Copy out up to `max` bytes from the position and advance past them (empty: nothing new).
    pub fn read(&self, max: usize) -> Result<Vec<u8>, Lagged> {
        let mut g = self.log.inner.lock();
        let first = g.first_byte();
        let end = g.offset;
        let Some(c) = g.cursors.get_mut(&self.id) else {
            return Err(Lagged);
        };
        if c.dropped || c.at < first {
            return Err(Lagged);
        }
        let from = (c.at - first) as usize;
        let n = ((end - c.at) as usize).min(max);
        c.at += n as u64;
        let (a, b) = g.buf.as_slices();
        let mut out = Vec::with_capacity(n);
        if from < a.len() {
            let take = n.min(a.len() - from);
            out.extend_from_slice(&a[from..from + take]);
            out.extend_from_slice(&b[..n - take]);
        } else {
            let s = from - a.len();
            out.extend_from_slice(&b[s..s + n]);
        }
        g.trim();
        Ok(out)
    }

    /// The offset of the next byte this cursor reads.
    pub fn position(&self) -> u64 {
        self.log
            .inner
            .lock()
            .cursors
            .get(&self.id)
            .map_or(0, |c| c.at)
    }

    /// Bytes fed after this cursor's position.
    pub fn lag(&self) -> u64 {
        let g = self.log.inner.lock();
        g.cursors
            .get(&self.id)
            .map_or(0, |c| g.offset.saturating_sub(c.at))
    }

    /// A second cursor at the same position (another replica sharing a full sync's cut);
    /// `None` when this one was dropped.
    pub fn try_clone(&self) -> Option<Cursor> {
        let mut g = self.log.inner.lock();
        let c = g.cursors.get(&self.id)?;
        if c.dropped {
            return None;
        }
        let at = c.at;
        let id = g.add_cursor(at);
        Some(Cursor {
            log: self.log.clone(),
            id,
        })
    }
}

impl Drop for Cursor {
    fn drop(&mut self) {
        let mut g = self.log.inner.lock();
        g.cursors.remove(&self.id);
        g.trim();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ops(db: u32, args: &[&str]) -> Vec<Propagated> {
        vec![(db, args.iter().map(|a| a.as_bytes().to_vec()).collect())]
    }

    #[test]
    fn inactive_feeds_nothing_active_counts_every_byte_with_selects() {
        let log = Arc::new(ReplLog::new(1024));
        log.feed_ops(&ops(0, &["SET", "a", "1"]));
        assert_eq!(log.offset(), 0);
        log.activate();
        let (cur, _, db) = log.cut();
        assert_eq!(db, None);
        log.feed_ops(&ops(0, &["SET", "a", "1"]));
        log.feed_ops(&ops(0, &["DEL", "a"]));
        log.feed_ops(&ops(3, &["DEL", "b"]));
        let want = b"*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n*3\r\n$3\r\nSET\r\n$1\r\na\r\n$1\r\n1\r\n\
*2\r\n$3\r\nDEL\r\n$1\r\na\r\n*2\r\n$6\r\nSELECT\r\n$1\r\n3\r\n*2\r\n$3\r\nDEL\r\n$1\r\nb\r\n";
        assert_eq!(log.offset(), want.len() as u64);
        assert_eq!(cur.read(7).unwrap(), want[..7].to_vec());
        assert_eq!(cur.read(1 << 20).unwrap(), want[7..].to_vec());
        assert!(cur.read(10).unwrap().is_empty());
    }

    #[test]
    fn the_backlog_keeps_its_window_and_what_cursors_still_need() {
        let log = Arc::new(ReplLog::new(10));
        log.activate();
        let (cur, id, _) = log.cut();
        for _ in 0..100 {
            log.feed_command(&[b"PING"]);
        }
        // 100 x 14 bytes held for the cursor.
        assert_eq!(log.info().histlen, 1400);
        assert!(log.psync(&id, 0).is_some(), "the cursor pins offset 0");
        let all = cur.read(usize::MAX).unwrap();
        assert_eq!(all.len(), 1400);
        // Read: only the window stays.
        assert_eq!(log.info().histlen, 10);
        assert!(log.psync(&id, 0).is_none());
        assert!(log.psync(&id, 1390).is_some());
        assert!(log.psync(&id, 1401).is_none(), "beyond the end");
        assert!(log.psync("x", 1390).is_none(), "another id");
    }

    #[test]
    fn a_cursor_beyond_the_limit_is_dropped() {
        let log = Arc::new(ReplLog::new(10));
        log.set_sizes(10, 100);
        log.activate();
        let (cur, _, _) = log.cut();
        for _ in 0..20 {
            log.feed_command(&[b"PING"]);
        }
        assert_eq!(cur.read(10), Err(Lagged));
        assert!(log.info().histlen <= 24);
    }

    #[test]
    fn promotion_keeps_the_old_id_as_the_second() {
        let log = Arc::new(ReplLog::new(1 << 20));
        log.follow("a".repeat(40).as_str(), 1000);
        log.feed_raw(b"*1\r\n$4\r\nPING\r\n", None);
        log.promote();
        let i = log.info();
        assert_ne!(i.replid, "a".repeat(40));
        assert_eq!(i.replid2, "a".repeat(40));
        assert_eq!(i.second_offset, 1015);
        assert_eq!(i.offset, 1014);
        // A replica of the old primary at 1000 continues.
        assert!(log.psync(&"a".repeat(40), 1000).is_some());
        assert!(log.psync(&"a".repeat(40), 1016).is_none());
    }

    #[test]
    fn the_primarys_bytes_replace_the_reencoded_effects() {
        let log = Arc::new(ReplLog::new(1 << 20));
        log.follow(&"b".repeat(40), 0);
        let raw = b"*3\r\n$3\r\nset\r\n$1\r\nk\r\n$1\r\nv\r\n";
        let ((), taken) =
            with_primary_bytes(raw, None, || log.feed_ops(&ops(0, &["SET", "k", "v"])));
        assert!(taken);
        // Own writes while following are not fed.
        log.feed_ops(&ops(0, &["SET", "x", "y"]));
        assert_eq!(log.offset(), raw.len() as u64);
        let ((), taken) = with_primary_bytes(raw, None, || ());
        assert!(!taken);
    }
}
