//! What all connections share: the keyspace, the options, the client list, WATCH, statistics.
//!
//! Locks here are leaves except where stated: `opts`, `clients`, each client's `meta` and the
//! watch registry are never held while another lock is taken, never across an `.await` and
//! never across socket I/O. The blocking registry ([`crate::blocking`]) is the one lock held
//! while commands execute (it serializes serving blocked clients); it is taken before any shard
//! lock and never inside one.

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use forkless::{Config, Engine};
use forkless_keyspace::command::CommandTable;
use forkless_keyspace::Keyspace;
use forkless_sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use forkless_sync::{Arc, Mutex};
use tokio::sync::mpsc::UnboundedSender;

use crate::blocking::Blocking;
use crate::pubsub::PubSub;

/// The options the network layer reads on every request, copied out of the engine's
/// [`Config`] at start and after each `CONFIG SET` (the config itself sits behind a lock and is
/// cloned whole by `Engine::config`).
#[derive(Clone, Debug)]
pub struct NetOptions {
    /// `proto-max-bulk-len`.
    pub proto_max_bulk_len: u64,
    /// `client-query-buffer-limit`.
    pub client_query_buffer_limit: u64,
    /// `maxclients`.
    pub maxclients: u64,
    /// `timeout` (seconds, 0: never).
    pub timeout: u64,
    /// `protected-mode`.
    pub protected_mode: bool,
    /// `requirepass` (empty: none).
    pub requirepass: String,
    /// `enable-debug-command`: no, yes, local.
    pub enable_debug_command: String,
    /// `client-output-buffer-limit` of the pubsub class.
    pub pubsub_limit: forkless::config::BufferLimit,
    /// `min-replicas-to-write` (0: off) and `min-replicas-max-lag` (seconds).
    pub min_replicas: (u64, u64),
    /// `replica-serve-stale-data`.
    pub serve_stale: bool,
    /// `acllog-max-len`.
    pub acllog_max_len: usize,
    /// `acl-pubsub-default allchannels`.
    pub acl_pubsub_all: bool,
}

impl NetOptions {
    /// Read them from the engine's configuration.
    pub fn from_config(c: &Config) -> NetOptions {
        NetOptions {
            proto_max_bulk_len: c.int("proto-max-bulk-len").max(0) as u64,
            client_query_buffer_limit: c.int("client-query-buffer-limit").max(0) as u64,
            maxclients: c.int("maxclients").max(1) as u64,
            timeout: c.int("timeout").max(0) as u64,
            protected_mode: c.bool("protected-mode"),
            requirepass: c.str("requirepass").to_string(),
            enable_debug_command: c.get("enable-debug-command").unwrap_or_default(),
            pubsub_limit: c.output_buffer_limits()[2],
            min_replicas: (
                c.int("min-replicas-to-write").max(0) as u64,
                c.int("min-replicas-max-lag").max(0) as u64,
            ),
            serve_stale: c.bool("replica-serve-stale-data"),
            acllog_max_len: c.int("acllog-max-len").max(0) as usize,
            acl_pubsub_all: c.str("acl-pubsub-default") == "allchannels",
        }
    }
}

/// Something sent to a connection task from elsewhere.
#[derive(Debug)]
pub enum Event {
    /// A pub/sub message (`pattern` for PSUBSCRIBE matches).
    Message {
        /// The matching pattern, for `pmessage`.
        pattern: Option<Vec<u8>>,
        /// The channel.
        channel: Vec<u8>,
        /// The payload.
        message: Vec<u8>,
    },
    /// A sharded pub/sub message (SPUBLISH), sent as `smessage`.
    ShardMessage {
        /// The shard channel.
        channel: Vec<u8>,
        /// The payload.
        message: Vec<u8>,
    },
    /// CLIENT KILL or SHUTDOWN: close the connection.
    Kill,
    /// CLIENT UNBLOCK: end a blocking command now (`error`: with `-UNBLOCKED`).
    Unblock {
        /// Reply with an error rather than the timeout reply.
        error: bool,
    },
    /// A MONITOR line (`crate::monitor`), written as a status reply.
    Monitor(String),
    /// A CLIENT TRACKING invalidation (`None`: every key), for this client or redirected to it
    /// (`crate::tracking`).
    Invalidate {
        /// The keys (`None` after a flush).
        keys: Option<Vec<Vec<u8>>>,
        /// Sent on behalf of another client's REDIRECT.
        redirected: bool,
    },
    /// This client's REDIRECT target is gone (`tracking-redir-broken`, RESP3 only).
    RedirectBroken(u64),
}

/// What CLIENT LIST shows of a client, updated by its connection.
#[derive(Debug, Clone)]
pub struct ClientMeta {
    /// CLIENT SETNAME.
    pub name: String,
    /// The selected database.
    pub db: u32,
    /// The last command's name (lowercase, `client|list` style for subcommands).
    pub last_cmd: std::borrow::Cow<'static, str>,
    /// When the last command arrived.
    pub last_active: Instant,
    /// 2 or 3.
    pub resp: u8,
    /// Channel and pattern subscriptions.
    pub sub: usize,
    /// Pattern subscriptions.
    pub psub: usize,
    /// Shard channel subscriptions.
    pub ssub: usize,
    /// Commands queued in MULTI, -1 outside MULTI.
    pub multi: i64,
    /// Blocked in a blocking command.
    pub blocked: bool,
    /// In MONITOR mode.
    pub monitor: bool,
    /// The ACL user (`user=` of CLIENT LIST).
    pub user: String,
}

/// One connected client, as the server sees it.
#[derive(Debug)]
pub struct ClientEntry {
    /// CLIENT ID.
    pub id: u64,
    /// Peer address.
    pub addr: String,
    /// Local address.
    pub laddr: String,
    /// Connection time.
    pub created: Instant,
    /// What CLIENT LIST shows.
    pub meta: Mutex<ClientMeta>,
    /// The connection's event queue.
    pub tx: UnboundedSender<Event>,
    /// Bytes of pub/sub messages queued and not yet written (client-output-buffer-limit).
    pub queued: AtomicU64,
    /// Since when `queued` is over the soft limit.
    pub over_soft_since: Mutex<Option<Instant>>,
    /// Wakes a connection stuck writing to a client that does not read, to close it.
    pub kill: tokio::sync::Notify,
}

impl ClientEntry {
    /// Close this client (CLIENT KILL, output buffer limits, shutdown).
    pub fn kill(&self) {
        let _ = self.tx.send(Event::Kill);
        self.kill.notify_one();
    }
}

/// Counters for INFO stats.
#[derive(Debug, Default)]
pub struct Stats {
    /// `total_connections_received`.
    pub connections: AtomicU64,
    /// `total_commands_processed`.
    pub commands: AtomicU64,
    /// `rejected_connections`.
    pub rejected: AtomicU64,
    /// `total_net_input_bytes`.
    pub net_input: AtomicU64,
    /// `total_net_output_bytes`.
    pub net_output: AtomicU64,
    /// `total_error_replies`.
    pub errors: AtomicU64,
    /// Blocked clients (`blocked_clients`).
    pub blocked: AtomicUsize,
}

/// One command's counters (INFO commandstats).
#[derive(Debug, Default)]
pub struct CmdRow {
    /// Calls that ran.
    pub calls: AtomicU64,
    /// Microseconds spent in them.
    pub usec: AtomicU64,
    /// Calls refused before running (arity, NOAUTH, ...).
    pub rejected: AtomicU64,
    /// Calls that ran and answered an error.
    pub failed: AtomicU64,
}

/// Per-command counters: a fixed row per known command, found by name without a lock.
#[derive(Debug, Default)]
pub struct CmdStats {
    index: hashbrown::HashMap<String, usize>,
    rows: Vec<(String, CmdRow)>,
}

impl CmdStats {
    /// A row for each name.
    pub fn new(names: impl IntoIterator<Item = String>) -> CmdStats {
        let mut c = CmdStats::default();
        for n in names {
            if !c.index.contains_key(&n) {
                c.index.insert(n.clone(), c.rows.len());
                c.rows.push((n, CmdRow::default()));
            }
        }
        c
    }
    /// The row of `name` (lowercase).
    pub fn row(&self, name: &str) -> Option<&CmdRow> {
        self.index.get(name).map(|&i| &self.rows[i].1)
    }
    /// Where the row of `name` (lowercase) is, for [`CmdStats::row_at`].
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.index.get(name).copied()
    }
    /// The row at `i` (from [`CmdStats::index_of`]).
    pub fn row_at(&self, i: usize) -> &CmdRow {
        &self.rows[i].1
    }
    /// Every row, by name.
    pub fn rows(&self) -> impl Iterator<Item = (&str, &CmdRow)> {
        self.rows.iter().map(|(n, r)| (n.as_str(), r))
    }
}

/// The watchers of one key: client id → its "dirty" flag, and whether the key was already past
/// its expiry when watched (Redis's `watchedKey.expired`).
type Watchers = BTreeMap<u64, (Arc<AtomicBool>, bool)>;

/// Whether a key is in a database: not at all, live, or stale (past its expiry, not deleted yet).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Presence {
    /// Not in the database.
    Missing,
    /// There and not expired.
    Live,
    /// There, past its expiry.
    Stale,
}

/// What a whole-database change did, for [`Shared::after_db_change`].
pub enum DbChange {
    /// Any key of this database (`None`: of every database) may have changed, with nothing
    /// finer known (a script or replicated command that held every shard, a full sync's load):
    /// every watcher of those databases is dirty.
    Whole(Option<u32>),
    /// FLUSHDB, FLUSHALL or SWAPDB (`swap`), with the watched keys' presence recorded before it
    /// ran ([`Watches::before_db_change`]), so that only real changes dirty a watcher.
    Emptied {
        /// The watched keys, before and after.
        keys: Vec<EmptiedKey>,
        /// SWAPDB: no tracking flush.
        swap: bool,
    },
}

/// A watched key of a database a FLUSHDB / FLUSHALL / SWAPDB empties, with its presence before
/// the change in that database and, for SWAPDB, in the database that replaces it.
pub struct EmptiedKey {
    db: u32,
    key: Vec<u8>,
    in_emptied: Presence,
    in_replacement: Presence,
}

/// WATCH: the clients watching each `(db, key)`, each with its "dirty" flag.
#[derive(Default)]
pub struct Watches {
    count: AtomicUsize,
    map: Mutex<HashMap<(u32, Vec<u8>), Watchers>>,
}

impl Watches {
    /// Client `id` watches `key` in `db` (`expired`: the key is stale now).
    pub fn watch(&self, id: u64, db: u32, key: &[u8], dirty: &Arc<AtomicBool>, expired: bool) {
        let mut m = self.map.lock();
        let e = m.entry((db, key.to_vec())).or_default();
        if e.insert(id, (dirty.clone(), expired)).is_none() {
            self.count.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// Forget every watch of client `id` on `keys`.
    pub fn unwatch(&self, id: u64, keys: &[(u32, Vec<u8>)]) {
        if keys.is_empty() {
            return;
        }
        let mut m = self.map.lock();
        for k in keys {
            if let Some(e) = m.get_mut(k) {
                if e.remove(&id).is_some() {
                    self.count.fetch_sub(1, Ordering::SeqCst);
                }
                if e.is_empty() {
                    m.remove(k);
                }
            }
        }
    }

    /// A write touched `key` in `db` (Redis's `touchWatchedKey`).
    pub fn touch(&self, db: u32, key: &[u8]) {
        if self.count.load(Ordering::SeqCst) == 0 {
            return;
        }
        if let Some(e) = self.map.lock().get(&(db, key.to_vec())) {
            for (d, _) in e.values() {
                d.store(true, Ordering::SeqCst);
            }
        }
    }

    /// Before a whole-database change: the watched keys of each `(emptied, replacement)` pair
    /// with their presence in both (`presence` reads the keyspace without expiring anything).
    pub fn before_db_change(
        &self,
        pairs: &[(u32, Option<u32>)],
        presence: &dyn Fn(u32, &[u8]) -> Presence,
    ) -> Vec<EmptiedKey> {
        if self.count.load(Ordering::SeqCst) == 0 {
            return Vec::new();
        }
        let keys: Vec<(u32, Vec<u8>)> = self.map.lock().keys().cloned().collect();
        let mut out = Vec::new();
        for (emptied, repl) in pairs {
            for (db, key) in keys.iter().filter(|(d, _)| d == emptied) {
                out.push(EmptiedKey {
                    db: *db,
                    in_emptied: presence(*db, key),
                    in_replacement: repl.map_or(Presence::Missing, |r| presence(r, key)),
                    key: key.clone(),
                });
            }
        }
        out
    }

    /// After a whole-database change, Redis's `touchAllWatchedKeysInDb`: a watched key that was
    /// in the emptied database or is in its replacement makes its watchers dirty, except that a
    /// stale key deleted, a stale key replaced by a stale one, or a missing key replaced by a
    /// stale one is no logical change.
    pub fn touch_emptied(&self, keys: Vec<EmptiedKey>) {
        let mut m = self.map.lock();
        for k in keys {
            if k.in_emptied == Presence::Missing && k.in_replacement == Presence::Missing {
                continue;
            }
            let Some(ws) = m.get_mut(&(k.db, k.key)) else {
                continue;
            };
            for (dirty, expired) in ws.values_mut() {
                if *expired {
                    match k.in_replacement {
                        Presence::Missing => {
                            *expired = false;
                            continue;
                        }
                        Presence::Stale => continue,
                        Presence::Live => {}
                    }
                } else if k.in_emptied == Presence::Missing && k.in_replacement == Presence::Stale {
                    *expired = true;
                    continue;
                }
                dirty.store(true, Ordering::SeqCst);
            }
        }
    }

    /// A whole database changed (FLUSHDB, FLUSHALL, SWAPDB): `None` means every database.
    pub fn touch_db(&self, db: Option<u32>) {
        if self.count.load(Ordering::SeqCst) == 0 {
            return;
        }
        for ((d, _), e) in self.map.lock().iter() {
            if db.is_none_or(|x| x == *d) {
                for (f, _) in e.values() {
                    f.store(true, Ordering::SeqCst);
                }
            }
        }
    }
}

/// The state every connection shares.
pub struct Shared {
    /// The engine: persistence, upkeep, the option table, durability.
    pub engine: Engine,
    /// The engine's keyspace (thread-safe, sharded), for reads outside the write path.
    pub ks: Arc<Keyspace>,
    /// The command table (key positions and flags of data commands).
    pub table: CommandTable,
    /// Every command the server knows, resolved once per call (`resolve.rs`).
    pub commands: crate::resolve::Commands,
    /// The options read per request (a copy of the engine's). A connection reads them through
    /// its own copy (`Conn::opts`), taken again when [`Shared::opts_gen`] moves, so the request
    /// path takes no lock shared by every connection.
    pub opts: Mutex<NetOptions>,
    /// Bumped by every [`Shared::refresh_options`], after the new options are in place.
    pub opts_gen: AtomicU64,
    /// Connected clients by id.
    pub clients: Mutex<BTreeMap<u64, Arc<ClientEntry>>>,
    /// The next client id.
    pub next_id: AtomicU64,
    /// Pub/sub subscriptions.
    pub pubsub: PubSub,
    /// Blocked clients.
    pub blocking: Blocking,
    /// MONITOR clients.
    pub monitors: crate::monitor::Monitors,
    /// CLIENT TRACKING.
    pub tracking: crate::tracking::Tracking,
    /// WATCHed keys.
    pub watches: Watches,
    /// INFO counters.
    pub stats: Stats,
    /// INFO commandstats.
    pub cmdstats: CmdStats,
    /// INFO errorstats: error code → count.
    pub errorstats: Mutex<BTreeMap<String, u64>>,
    /// Process start.
    pub started: Instant,
    /// The 40-hex run id of this process.
    pub run_id: String,
    /// The TCP port actually bound.
    pub tcp_port: AtomicU64,
    /// Set by SHUTDOWN or a signal; the accept loop watches it.
    pub shutdown: tokio::sync::Notify,
    /// True once shutdown began.
    pub shutting_down: AtomicBool,
    /// SHUTDOWN's SAVE/NOSAVE (`None`: as the save rules say).
    pub shutdown_save: Mutex<Option<bool>>,
    /// Replication: attached replicas, the full-sync job, the link to a primary.
    pub repl: crate::repl::Replication,
    /// ACL users and log.
    pub acl: crate::acl::Acl,
}

impl Shared {
    /// Register a new client.
    pub fn add_client(&self, e: Arc<ClientEntry>) {
        self.clients.lock().insert(e.id, e);
    }

    /// Remove a client.
    pub fn remove_client(&self, id: u64) {
        self.clients.lock().remove(&id);
    }

    /// Re-read the network options after a `CONFIG SET`.
    pub fn refresh_options(&self) {
        let c = self.engine.config();
        let net = NetOptions::from_config(&c);
        let pass = net.requirepass.clone();
        self.acl.set_log_max_len(net.acllog_max_len);
        self.acl.set_pubsub_default(net.acl_pubsub_all);
        let old = std::mem::replace(&mut *self.opts.lock(), net);
        self.opts_gen.fetch_add(1, Ordering::Release);
        if old.requirepass != pass {
            self.acl.set_default_password(&pass);
        }
        crate::log::set_level(&c.get("loglevel").unwrap_or_default());
    }

    /// Number of connected clients.
    pub fn num_clients(&self) -> usize {
        self.clients.lock().len()
    }

    /// After a data write: wake WATCHers and blocked clients of the written keys.
    pub fn after_write(&self, db: u32, keys: &[&[u8]]) {
        self.after_write_by(db, keys, None);
    }

    /// [`Shared::after_write`] for a write of client `by` (CLIENT TRACKING's NOLOOP).
    pub fn after_write_by(&self, db: u32, keys: &[&[u8]], by: Option<u64>) {
        for k in keys {
            self.watches.touch(db, k);
            self.tracking.invalidate(k, by);
        }
        self.blocking
            .serve(&self.engine, db, keys, &|d, k| self.watches.touch(d, k));
    }

    /// Whether `key` is in `db` now, without expiring it (WATCH and the database changes).
    pub fn presence(&self, db: u32, key: &[u8]) -> Presence {
        let ks = &self.ks;
        if db >= ks.databases() {
            return Presence::Missing;
        }
        let h = ks.hash_key(key);
        let now = ks.now_ms();
        ks.with_shard(ks.shard_of(h), |sh| match sh.db(db).find(h, key) {
            None => Presence::Missing,
            Some(s) if s.is_expired(now) => Presence::Stale,
            Some(_) => Presence::Live,
        })
    }

    /// Count an error reply in INFO's `total_error_replies` and errorstats (by its code, the
    /// first word of `text`), as Redis's `afterErrorReply`.
    pub fn count_error(&self, text: &str) {
        self.stats.errors.fetch_add(1, Ordering::Relaxed);
        let code = text.split(' ').next().unwrap_or("ERR").to_string();
        *self.errorstats.lock().entry(code).or_insert(0) += 1;
    }

    /// After a whole-database change: watchers made dirty as `change` says, tracking tables
    /// flushed unless it was a swap (Redis's `trackingInvalidateKeysOnFlush` runs for FLUSHDB
    /// and FLUSHALL only), and blocked clients served from what the databases hold now. The one
    /// place these three rules live, for every caller (FLUSH*/SWAPDB, a script or a replicated
    /// command that held every shard, a replica's load of its primary's payload).
    pub fn after_db_change(&self, change: DbChange) {
        let flushed = match change {
            DbChange::Whole(db) => {
                self.watches.touch_db(db);
                true
            }
            DbChange::Emptied { keys, swap } => {
                self.watches.touch_emptied(keys);
                !swap
            }
        };
        if flushed {
            self.tracking.invalidate_all();
        }
        self.blocking
            .serve_all(&self.engine, &|d, k| self.watches.touch(d, k));
    }
}
