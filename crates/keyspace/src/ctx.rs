//! The view one command has of the keyspace while it runs.
//!
//! Problem: handlers must read and write keys without knowing about shards, locks, lazy expiry,
//! snapshot hooks or propagation. The dispatcher (`keyspace.rs`) locks the shards of every key
//! the command declares (its [`CommandSpec`](crate::command::CommandSpec) key positions, or all
//! shards for whole-keyspace commands) and hands the handler a [`Ctx`]. Every access goes through
//! it:
//! - reads expire lazily, as Redis's `expireIfNeeded` (`db.c`): a key whose expiry is past is
//!   deleted on access and `DEL key` is propagated;
//! - every mutation first calls the [`WriteObserver`](crate::WriteObserver) for the touched
//!   `(db, key hash)` (once per command and key), so a snapshot can save the bucket's old content;
//! - values are copy-on-write ([`Obj::make_unique`](crate::value::Obj::make_unique) before a write);
//! - propagated commands are collected and delivered by the dispatcher after the handler returns,
//!   with the locks still held.

use forkless_sync::MutexGuard;
use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};

use crate::db::{Db, Slot};
use crate::encoding::Pins;
use crate::keyspace::{ExpiryView, Keyspace, Shard};
use crate::notify::{Flags, KeyEvent};
use crate::propagate::Propagated;
use crate::reply::Reply;
use crate::types::{Hash, List, Set, Stream, ZSet};
use crate::value::{Obj, SharedBytes, Value, ValueRef, View};

/// One command's access to the keyspace (the shards of its keys are locked).
pub struct Ctx<'a> {
    ks: &'a Keyspace,
    guards: Vec<MutexGuard<'a, Shard>>,
    all_shards: bool,
    db: u32,
    now: i64,
    /// The running command's name (for messages).
    name: &'static str,
    prop: Vec<Propagated>,
    /// `(guard, db, hash)` of every key the observer was told about.
    notified: Vec<(usize, u32, u64)>,
    /// The command's effects must be captured (the observer's protocol, step 2).
    capture: bool,
    rng: Option<StdRng>,
    /// `(address, length, hash)` of the declared key arguments of the running command, hashed
    /// once by the dispatcher. The address only identifies the argument (never dereferenced), so
    /// the context holds no borrow of the arguments and one context can run commands whose
    /// arguments live shorter than it (a script's `redis.call`s).
    key_hashes: Vec<(usize, usize, u64)>,
    /// Index in `prop` where the current command's propagation starts (transactions).
    cmd_prop_start: usize,
    /// Memory accounting: every key written, with its cost before the command's first change to
    /// it; [`Ctx::settle_memory`] charges the difference once the command is done.
    touched: Vec<Touched>,
    /// A read-only command: lookups count as keyspace hits / misses (INFO stats).
    count_hits: bool,
    /// How expired keys look to this command.
    view: ExpiryView,
    /// `(db, hash)` of the keys this command has touched (access metadata) or created: a
    /// command touches a key once, as Redis's single `lookupKey*` per key, however many times
    /// its handler looks the key up. Past [`MAX_ACCESSED`] keys no more are recorded.
    accessed: Vec<(u32, u64)>,
    /// The event classes recorded (`Keyspace::recorded_events` when the command started), and
    /// the events the command raised (`crate::notify`).
    notify: Flags,
    events: Vec<KeyEvent>,
    /// The command was called by a script (Redis's `CLIENT_SCRIPT`).
    from_script: bool,
}

/// Keys recorded in `Ctx::accessed` per command (commands over more keys look each up once).
const MAX_ACCESSED: usize = 64;

/// The per-command bookkeeping vectors of a finished context, kept by its thread for the next
/// one: every command used to allocate and free them (two or three allocations of a ~2 us
/// command). A vector that grew past [`SCRATCH_KEEP`] entries is freed instead, so a thread
/// keeps at most a few KiB.
#[derive(Default)]
struct Scratch {
    touched: Vec<Touched>,
    accessed: Vec<(u32, u64)>,
    notified: Vec<(usize, u32, u64)>,
}

/// Largest capacity [`Scratch`] keeps per vector.
const SCRATCH_KEEP: usize = 64;

thread_local! {
    static SCRATCH: std::cell::Cell<Option<Box<Scratch>>> = const { std::cell::Cell::new(None) };
}

/// A cleared vector back into the scratch slot when it is small enough.
fn keep<T>(slot: &mut Vec<T>, mut v: Vec<T>) {
    if v.capacity() <= SCRATCH_KEEP && v.capacity() > slot.capacity() {
        v.clear();
        *slot = v;
    }
}

/// A key a command changed: where it lives and its cost before the change.
struct Touched {
    g: usize,
    db: u32,
    h: u64,
    key: crate::db::Key,
    before: i64,
}

impl Drop for Ctx<'_> {
    /// Hands the bookkeeping vectors to the next context of this thread ([`Scratch`]).
    fn drop(&mut self) {
        let mut s = SCRATCH.with(|c| c.take()).unwrap_or_default();
        keep(&mut s.touched, std::mem::take(&mut self.touched));
        keep(&mut s.accessed, std::mem::take(&mut self.accessed));
        keep(&mut s.notified, std::mem::take(&mut self.notified));
        SCRATCH.with(|c| c.set(Some(s)));
    }
}

impl std::fmt::Debug for Ctx<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ctx")
            .field("db", &self.db)
            .field("now", &self.now)
            .finish_non_exhaustive()
    }
}

macro_rules! typed_getters {
    ($get:ident, $get_mut:ident, $variant:ident, $ty:ty) => {
        /// The value of `key` if it holds this type; `Err(wrong_type)` if it holds another.
        pub fn $get(&mut self, key: &[u8]) -> Result<Option<&$ty>, Reply> {
            match self.view_in(self.db, key) {
                None => Ok(None),
                Some(View::Arc(Value::$variant(v))) => Ok(Some(v)),
                Some(_) => Err(Reply::wrong_type()),
            }
        }
        /// Mutable (copy-on-write) access to the value of `key` if it holds this type;
        /// `Err(wrong_type)` if it holds another.
        pub fn $get_mut(&mut self, key: &[u8]) -> Result<Option<&mut $ty>, Reply> {
            match self.view_in(self.db, key) {
                None => return Ok(None),
                Some(View::Arc(Value::$variant(_))) => {}
                Some(_) => return Err(Reply::wrong_type()),
            }
            match self.obj_mut(key).and_then(Obj::value_mut) {
                Some(Value::$variant(v)) => Ok(Some(v)),
                _ => Ok(None),
            }
        }
    };
}

impl<'a> Ctx<'a> {
    pub(crate) fn new(
        ks: &'a Keyspace,
        guards: Vec<MutexGuard<'a, Shard>>,
        all_shards: bool,
        db: u32,
        now: i64,
        key_hashes: Vec<(usize, usize, u64)>,
    ) -> Ctx<'a> {
        let scratch = SCRATCH.with(|c| c.take()).unwrap_or_default();
        let Scratch {
            touched,
            accessed,
            notified,
        } = *scratch;
        Ctx {
            ks,
            guards,
            all_shards,
            db,
            now,
            name: "",
            prop: Vec::new(),
            notified,
            capture: false,
            rng: None,
            key_hashes,
            cmd_prop_start: 0,
            touched,
            count_hits: false,
            view: ks.expiry_view(),
            accessed,
            notify: ks.recorded_events(),
            events: Vec::new(),
            from_script: false,
        }
    }

    /// Raise keyspace event `event` of `class` on `key` in the current database (Redis's
    /// `notifyKeyspaceEvent`); nothing when the class is off (see `crate::notify`).
    pub fn event(&mut self, class: Flags, event: &'static str, key: &[u8]) {
        self.event_in(self.db, class, event, key);
    }

    /// [`Ctx::event`] in database `db`.
    pub fn event_in(&mut self, db: u32, class: Flags, event: &'static str, key: &[u8]) {
        if self.notify.any(class) {
            self.events.push(KeyEvent {
                db,
                class,
                event,
                key: key.to_vec(),
            });
        }
    }

    /// The events raised so far, taken (the dispatcher delivers them).
    pub(crate) fn take_events(&mut self) -> Vec<KeyEvent> {
        std::mem::take(&mut self.events)
    }

    /// Record that `(db, h)` was touched or created by this command; false when it already was.
    fn first_access(&mut self, db: u32, h: u64) -> bool {
        if self.accessed.contains(&(db, h)) {
            return false;
        }
        if self.accessed.len() < MAX_ACCESSED {
            self.accessed.push((db, h));
        }
        true
    }

    /// Switch to the next command of a transaction ([`Keyspace::execute_multi`]): the locks,
    /// the notified keys, the capture decision and the propagated commands carry over, so the
    /// whole transaction is one unit for the observer and the sink.
    pub(crate) fn next_command(&mut self, argv: &[&[u8]], key_hashes: Vec<(usize, u64)>) {
        self.key_hashes = identify(argv, key_hashes);
        self.cmd_prop_start = self.prop.len();
        self.accessed.clear();
    }

    /// Capture this unit's effects whatever `before_write` answers: every key it touches is
    /// then visited before its first change (step 2 of the observer protocol from the start).
    /// Transactions use it: with per-command decisions a later command could switch to capture
    /// after an earlier one already changed an unvisited key, and the captured group would then
    /// replay that change on top of a baseline that already holds it.
    pub(crate) fn capture_from_start(&mut self) {
        if let Some(obs) = self.ks.observer().cloned() {
            self.start_capture(&*obs);
        }
    }

    pub(crate) fn set_view(&mut self, view: ExpiryView) {
        self.view = view;
    }

    /// Name the running command (its table name) for messages.
    pub(crate) fn set_name(&mut self, name: &'static str) {
        self.name = name;
    }

    pub(crate) fn set_count_hits(&mut self, on: bool) {
        self.count_hits = on;
    }

    /// Mark the following commands as called by a script (see [`Ctx::called_by_script`]).
    pub(crate) fn set_from_script(&mut self, on: bool) {
        self.from_script = on;
    }

    /// True when the running command was called by a script (Redis's `CLIENT_SCRIPT`).
    pub(crate) fn called_by_script(&self) -> bool {
        self.from_script
    }

    pub(crate) fn into_parts(mut self) -> (Vec<MutexGuard<'a, Shard>>, Vec<Propagated>, bool) {
        (
            std::mem::take(&mut self.guards),
            std::mem::take(&mut self.prop),
            self.capture,
        )
    }

    /// The database the command runs in.
    pub fn db(&self) -> u32 {
        self.db
    }

    /// Switch the session's database (SELECT); the dispatcher copies it back to the session.
    pub(crate) fn set_db(&mut self, db: u32) {
        self.db = db;
    }

    /// Number of databases.
    pub fn databases(&self) -> u32 {
        self.ks.databases()
    }

    /// The command's clock reading (Unix ms), one per command.
    pub fn now_ms(&self) -> i64 {
        self.now
    }

    /// Redis's `checkAlreadyExpired` (`expire.c`): true when an absolute expiry `when_ms` given to
    /// EXPIRE-family commands, GETEX EXAT/PXAT or RESTORE is already past and the key must be
    /// deleted now. Never while loading: a replayed `PEXPIREAT` that lies in the past keeps the
    /// key with that expiry, later logged writes apply to it, and it expires afterwards (as
    /// redis-server 7.0 does while `server.loading`). Deleting it instead would let the next
    /// logged write (INCR, RPUSH, ...) recreate the key without its TTL. Never on a replica
    /// either (Redis: `!server.masterhost`): the primary's stream decides.
    pub fn already_expired(&self, when_ms: i64) -> bool {
        when_ms <= self.now && self.view == ExpiryView::Normal
    }

    /// The maxmemory policy in force.
    pub fn memory_policy(&self) -> crate::memory::EvictionPolicy {
        self.ks.memory_state().policy()
    }

    /// The memory bound and policy in force.
    pub fn memory_config(&self) -> crate::memory::MemoryConfig {
        self.ks.memory_state().get()
    }

    /// The access metadata word (LRU clock or LFU counter) of `key` in the current database if
    /// it is live, read without touching it (Redis's `LOOKUP_NOTOUCH`).
    pub fn access_meta(&mut self, key: &[u8]) -> Option<u32> {
        let db = self.db;
        let (g, h) = self.locate(key);
        let now = self.now;
        let frozen = self.view == ExpiryView::Frozen;
        let (slot, meta) = self.guards[g].db_mut(db).find_meta_mut(h, key)?;
        if slot.is_expired(now) && !frozen {
            return None;
        }
        Some(*meta)
    }

    /// Set the access metadata of `key` in the current database from RDB-style access fields
    /// (RESTORE's IDLETIME / FREQ), as a loaded key's (`objectSetLRUOrLFU`); nothing when the
    /// key is absent or no field applies to the policy.
    pub fn set_access(&mut self, key: &[u8], acc: forkless_rdb::KeyAccess) {
        if acc.idle_secs.is_none() && acc.freq.is_none() {
            return;
        }
        let db = self.db;
        let now = self.now;
        let (g, h) = self.locate(key);
        let word = self.ks.memory_state().loaded_meta(acc, now);
        if let Some((_, meta)) = self.guards[g].db_mut(db).find_meta_mut(h, key) {
            *meta = Pins::of_meta(*meta).add_to(word);
        }
    }

    /// A random generator (seeded per shard from `Config::seed`).
    pub fn rng(&mut self) -> &mut StdRng {
        self.ensure_rng()
    }

    /// The command's generator, created on first use from shard 0's (locked) generator, so a
    /// seeded keyspace replays the same choices.
    fn ensure_rng(&mut self) -> &mut StdRng {
        if self.rng.is_none() {
            let seed = self.guards[0].rng_mut().next_u64();
            self.rng = Some(StdRng::seed_from_u64(seed));
        }
        match &mut self.rng {
            Some(r) => r,
            None => unreachable!("initialized above"),
        }
    }

    fn locate(&self, key: &[u8]) -> (usize, u64) {
        // A declared key argument (same bytes at the same address) reuses the dispatcher's hash.
        let known = self
            .key_hashes
            .iter()
            .find(|&&(addr, len, _)| addr == key.as_ptr() as usize && len == key.len());
        let h = match known {
            Some(&(_, _, h)) => h,
            None => self.ks.hash_key(key),
        };
        let shard = self.ks.shard_of(h);
        let g = if self.all_shards {
            shard
        } else {
            match self.guards.iter().position(|g| g.index() == shard) {
                Some(i) => i,
                None => panic!(
                    "bug: command '{}' touched key {:?} outside its declared key positions",
                    self.name,
                    String::from_utf8_lossy(key)
                ),
            }
        };
        (g, h)
    }

    fn dict(&mut self, g: usize, db: u32) -> &mut Db {
        self.guards[g].db_mut(db)
    }

    /// Tell the write observer that `(db, h)` is about to change (once per command and key), and
    /// apply its protocol (see [`WriteObserver`](crate::WriteObserver)): once one key asks for
    /// capture, every other key of the command is force-visited before it changes.
    fn notify(&mut self, g: usize, db: u32, h: u64, key: &[u8]) {
        if !self
            .touched
            .iter()
            .any(|t| t.db == db && t.h == h && *t.key == *key)
        {
            let before = self.dict(g, db).cost_of(h, key);
            self.touched.push(Touched {
                g,
                db,
                h,
                key: key.into(),
                before,
            });
        }
        let Some(obs) = self.ks.observer().cloned() else {
            return;
        };
        if self.notified.iter().any(|&(_, d, hh)| d == db && hh == h) {
            return;
        }
        let visited = crate::trace::handoff(|| obs.before_write(&mut self.guards[g], db, h));
        if visited {
            self.start_capture(&*obs);
        } else if self.capture {
            crate::trace::handoff(|| obs.force_visit(&mut self.guards[g], db, h));
        }
        self.notified.push((g, db, h));
    }

    /// Switch the command to capture mode, force-visiting the keys notified so far.
    fn start_capture(&mut self, obs: &dyn crate::WriteObserver) {
        if self.capture {
            return;
        }
        self.capture = true;
        for i in 0..self.notified.len() {
            let (g, db, h) = self.notified[i];
            crate::trace::handoff(|| obs.force_visit(&mut self.guards[g], db, h));
        }
    }

    pub(crate) fn notify_key(&mut self, db: u32, key: &[u8]) {
        let (g, h) = self.locate(key);
        self.notify(g, db, h, key);
    }

    /// Locate `key` in `db` if it is live, expiring it lazily (delete + propagate DEL) if its time
    /// has passed.
    fn live(&mut self, db: u32, key: &[u8]) -> Option<(usize, u64)> {
        let (g, h) = self.locate(key);
        let now = self.now;
        let view = self.view;
        let first = !self.accessed.contains(&(db, h));
        let expired = {
            let mem = self.ks.memory_state();
            let (slot, meta) = self.guards[g].db_mut(db).find_meta_mut(h, key)?;
            let expired = slot.is_expired(now) && view != ExpiryView::Frozen;
            if !expired && first {
                // A command's first lookup of a live key touches it (LRU clock / LFU counter).
                mem.touch(meta, now);
            }
            expired
        };
        if !expired {
            self.first_access(db, h);
        }
        if expired && view == ExpiryView::Hidden {
            return None;
        }
        if expired {
            self.notify(g, db, h, key);
            self.dict(g, db).remove(h, key);
            self.prop.push((db, vec![b"DEL".to_vec(), key.to_vec()]));
            self.event_in(db, Flags::EXPIRED, "expired", key);
            return None;
        }
        Some((g, h))
    }

    /// The value of `key` in the current database (expiring it lazily).
    pub fn get(&mut self, key: &[u8]) -> Option<ValueRef<'_>> {
        self.get_in(self.db, key)
    }

    /// The value of `key` in database `db` (expiring it lazily).
    pub fn get_in(&mut self, db: u32, key: &[u8]) -> Option<ValueRef<'_>> {
        self.obj_in(db, key).map(Obj::get)
    }

    /// The type name of `key`'s value in database `db` (`string`, `list`, ...), read in place
    /// (TYPE, SCAN's TYPE filter): expiring it lazily and counting a hit or a miss as
    /// [`Ctx::get_in`] does, with no count change on the value.
    pub fn type_in(&mut self, db: u32, key: &[u8]) -> Option<&'static str> {
        self.view_in(db, key).map(|v| match v {
            View::Arc(v) => v.type_name(),
            View::Bytes(_) => "string",
        })
    }

    /// The value of `key` in database `db` in place (expiring it lazily; counting a hit or a
    /// miss as [`Ctx::get_in`] does): the typed getters' path, with no count changes.
    fn view_in(&mut self, db: u32, key: &[u8]) -> Option<View<'_, Value>> {
        self.obj_in(db, key).map(Obj::view)
    }

    fn obj_in(&mut self, db: u32, key: &[u8]) -> Option<&Obj> {
        let found = self.live(db, key);
        if self.count_hits {
            let mem = self.ks.memory_state();
            let c = if found.is_some() {
                &mem.hits
            } else {
                &mem.misses
            };
            c.fetch_add(1, forkless_sync::atomic::Ordering::Relaxed);
            if found.is_none() {
                self.event_in(db, Flags::KEY_MISS, "keymiss", key);
            }
        }
        let (g, h) = found?;
        self.dict(g, db).find(h, key).map(|s| &s.value)
    }

    /// The value of `key` in database `db` if live, without touching its access metadata,
    /// counting a hit or expiring it (the dispatcher's check for aggregates a write left
    /// empty: a write must touch a key once, as Redis's `lookupKeyWrite`, not twice).
    /// In place: it runs after every write command, so a string is not lent as a `Value`.
    pub(crate) fn peek_in(&mut self, db: u32, key: &[u8]) -> Option<View<'_, Value>> {
        let (g, h) = self.locate(key);
        let now = self.now;
        let frozen = self.view == ExpiryView::Frozen;
        let s = self.dict(g, db).find(h, key)?;
        if s.is_expired(now) && !frozen {
            return None;
        }
        Some(s.value.view())
    }

    /// The slot (value and expiry) of `key` in database `db`, if live.
    pub fn slot_in(&mut self, db: u32, key: &[u8]) -> Option<&Slot> {
        let (g, h) = self.live(db, key)?;
        self.dict(g, db).find(h, key)
    }

    /// The slot's value pointer of `key` for a write: notifies the observer, then copies the
    /// value if a snapshot still holds it (timed as copy-on-write, O(chunk) for big values).
    fn obj_mut(&mut self, key: &[u8]) -> Option<&mut Obj> {
        let db = self.db;
        let (g, h) = self.live(db, key)?;
        self.notify(g, db, h, key);
        self.dict(g, db).find_mut(h, key).map(|s| {
            let value = &mut s.value;
            if value.is_shared() {
                // Shared (a snapshot holds it): this write copies it (O(chunk) for big values).
                crate::trace::cow(|| value.make_unique());
            }
            value
        })
    }

    /// The string of `key` if it holds one; `Err(wrong_type)` if it holds another type.
    pub fn get_str(&mut self, key: &[u8]) -> Result<Option<&SharedBytes>, Reply> {
        match self.view_in(self.db, key) {
            None => Ok(None),
            Some(View::Bytes(s)) => Ok(Some(s)),
            Some(View::Arc(_)) => Err(Reply::wrong_type()),
        }
    }

    /// The string of `key`, writable in place (already copied if a snapshot held it), if it holds
    /// one; `Err(wrong_type)` if it holds another type.
    pub fn get_str_mut(&mut self, key: &[u8]) -> Result<Option<&mut SharedBytes>, Reply> {
        match self.view_in(self.db, key) {
            None => return Ok(None),
            Some(View::Bytes(_)) => {}
            Some(View::Arc(_)) => return Err(Reply::wrong_type()),
        }
        Ok(self.obj_mut(key).and_then(Obj::str_mut))
    }

    typed_getters!(get_list, get_list_mut, List, List);
    typed_getters!(get_set, get_set_mut, Set, Set);
    typed_getters!(get_zset, get_zset_mut, ZSet, ZSet);
    typed_getters!(get_hash, get_hash_mut, Hash, Hash);
    typed_getters!(get_stream, get_stream_mut, Stream, Box<Stream>);

    /// `hll-sparse-max-bytes`.
    pub fn hll_sparse_max_bytes(&self) -> usize {
        self.ks.hll_sparse_max_bytes()
    }

    /// `(stream-node-max-bytes, stream-node-max-entries)`.
    pub fn stream_node_limits(&self) -> (i64, i64) {
        self.ks.stream_node_limits()
    }

    /// True while replaying a file or applying this replica's primary's stream (Redis's
    /// `mustObeyClient`): commands apply what the source already decided.
    pub fn is_loading(&self) -> bool {
        self.view == ExpiryView::Frozen
    }

    /// Add or overwrite `key` with `v`, clearing any TTL.
    pub fn insert(&mut self, key: &[u8], v: Value) {
        self.insert_slot_in(self.db, key, Slot::new(v, None));
    }

    /// Add or overwrite `key` with `v`, keeping the TTL of the current value if any.
    pub fn insert_keep_ttl(&mut self, key: &[u8], v: Value) {
        let ttl = self.expire_at(key);
        self.insert_slot_in(self.db, key, Slot::new(v, ttl));
    }

    /// Add or overwrite `key` in database `db` with a whole slot (value and expiry).
    pub fn insert_slot_in(&mut self, db: u32, key: &[u8], slot: Slot) {
        let (g, h) = self.locate(key);
        self.notify(g, db, h, key);
        let now = self.now;
        let normal = self.view == ExpiryView::Normal;
        match self.dict(g, db).find_mut_with_meta(h, key) {
            Some((old, meta)) => {
                let was_expired = old.is_expired(now) && normal;
                let ttl_change = (old.has_expiry(), slot.has_expiry());
                *old = slot;
                // A new value starts in its compact encoding (`crate::encoding`).
                *meta = Pins::cleared(*meta);
                self.dict(g, db)
                    .note_expiry_change(ttl_change.0, ttl_change.1);
                if was_expired {
                    // Redis expires the old key on lookup, then adds a new one.
                    self.prop.push((db, vec![b"DEL".to_vec(), key.to_vec()]));
                    self.event_in(db, Flags::EXPIRED, "expired", key);
                    self.event_in(db, Flags::NEW, "new", key);
                }
            }
            None => {
                let meta = self.ks.memory_state().initial_meta(now);
                self.dict(g, db).insert_new_meta(h, key.into(), slot, meta);
                // A new key starts with the initial word, untouched by the rest of the command.
                self.first_access(db, h);
                self.event_in(db, Flags::NEW, "new", key);
            }
        }
    }

    /// The encoding history of `key` in database `db` (`crate::encoding`), read without touching
    /// the key; [`Pins::NONE`] when it is absent.
    pub fn pins_in(&mut self, db: u32, key: &[u8]) -> Pins {
        let (g, h) = self.locate(key);
        self.dict(g, db)
            .find_meta_mut(h, key)
            .map_or(Pins::NONE, |(_, m)| Pins::of_meta(*m))
    }

    /// Add `pins` to the encoding history of `key` in database `db` (nothing when absent): the
    /// command converted the value as Redis would (`crate::encoding`).
    pub fn pin_in(&mut self, db: u32, key: &[u8], pins: Pins) {
        if pins == Pins::NONE {
            return;
        }
        let (g, h) = self.locate(key);
        if let Some((_, m)) = self.dict(g, db).find_meta_mut(h, key) {
            *m = pins.add_to(*m);
        }
    }

    /// [`Ctx::pin_in`] in the current database.
    pub fn pin(&mut self, key: &[u8], pins: Pins) {
        self.pin_in(self.db, key, pins);
    }

    /// Pin `key` [`Pins::RAW`] ("converted", for good) when its collection of type `c`, `len`
    /// entries after a write that stored `written`, passed a threshold in force
    /// ([`crate::encoding::Collection::exceeds`]).
    pub fn pin_if_converted<'w>(
        &mut self,
        key: &[u8],
        c: crate::encoding::Collection,
        len: usize,
        written: impl IntoIterator<Item = &'w [u8]>,
    ) {
        if c.exceeds(&self.ks.encoding_limits(), len, written.into_iter()) {
            self.pin(key, Pins::RAW);
        }
    }

    /// Remove `key`; returns its value if it was live.
    pub fn remove(&mut self, key: &[u8]) -> Option<Value> {
        self.remove_in(self.db, key).map(|s| s.value.into_value())
    }

    /// Remove `key` from database `db`; returns its slot if it was live.
    pub fn remove_in(&mut self, db: u32, key: &[u8]) -> Option<Slot> {
        let (g, h) = self.live(db, key)?;
        self.notify(g, db, h, key);
        self.dict(g, db).remove(h, key)
    }

    /// True when `key` exists (and is not expired).
    pub fn exists(&mut self, key: &[u8]) -> bool {
        self.live(self.db, key).is_some()
    }

    /// The absolute expiry (Unix ms) of `key`, if it exists and has one.
    pub fn expire_at(&mut self, key: &[u8]) -> Option<i64> {
        let db = self.db;
        let (g, h) = self.live(db, key)?;
        self.dict(g, db).find(h, key).and_then(|s| s.expire_at())
    }

    /// Set or clear the expiry of `key` (no effect if the key does not exist).
    pub fn set_expire_at(&mut self, key: &[u8], at_ms: Option<i64>) {
        let db = self.db;
        if let Some((g, h)) = self.live(db, key) {
            self.notify(g, db, h, key);
            self.dict(g, db).set_expire_at(h, key, at_ms);
        }
    }

    /// Charge every written key's change in cost to its database and shard (memory accounting,
    /// see `crate::memory`). Called once by the dispatcher after the handler, locks still held.
    pub(crate) fn settle_memory(&mut self) {
        let mut touched = std::mem::take(&mut self.touched);
        for t in touched.drain(..) {
            let after = self.dict(t.g, t.db).cost_of(t.h, &t.key);
            let delta = after - t.before;
            if delta != 0 {
                self.dict(t.g, t.db).charge(delta);
                let shard = self.guards[t.g].index();
                self.ks.charge_shard(shard, delta);
            }
        }
        self.touched = touched;
    }

    /// Propagate a command: the client's `argv` as spelled, or a rewritten one (several calls:
    /// the group is wrapped in MULTI/EXEC).
    pub fn propagate(&mut self, argv: &[&[u8]]) {
        self.prop
            .push((self.db, argv.iter().map(|a| a.to_vec()).collect()));
    }

    /// Number of propagated commands collected so far.
    pub(crate) fn prop_len(&self) -> usize {
        self.prop.len()
    }

    /// Drop the propagated commands collected after the first `len` (effects a script asked
    /// not to replicate).
    pub(crate) fn truncate_prop(&mut self, len: usize) {
        self.prop.truncate(len);
    }

    /// True when this command has propagated anything so far (lazy-expiry DELs included).
    pub fn has_propagated(&self) -> bool {
        self.prop.len() > self.cmd_prop_start
    }

    // ---- whole-keyspace access (only for ALL_SHARDS commands) ----

    /// The locked shards (all of them for an ALL_SHARDS command).
    pub(crate) fn shards_mut(&mut self) -> &mut [MutexGuard<'a, Shard>] {
        &mut self.guards
    }

    /// The locked shards and a random generator (owned by the context, seeded from shard 0's).
    pub(crate) fn shards_and_rng(&mut self) -> (&[MutexGuard<'a, Shard>], &mut StdRng) {
        self.ensure_rng();
        match &mut self.rng {
            Some(r) => (&self.guards, r),
            None => unreachable!("initialized by ensure_rng"),
        }
    }

    /// Number of keys in `db` across the locked shards (expired keys not yet deleted included,
    /// as Redis's DBSIZE).
    pub(crate) fn db_len(&self, db: u32) -> usize {
        self.guards.iter().map(|g| g.db(db).len()).sum()
    }

    /// Empty database `db` in every locked shard (snapshot hook first).
    pub(crate) fn flush_db(&mut self, db: u32) {
        let obs = self.ks.observer().cloned();
        let mut capture = false;
        for g in self.guards.iter_mut() {
            let freed = g.db(db).used();
            self.ks.charge_shard(g.index(), -freed);
            if let Some(o) = &obs {
                // A running snapshot may take the table away (O(1)) and leave an empty one.
                capture |= o.before_flush(g, db);
            }
            g.db_mut(db).clear();
        }
        self.touched.retain(|t| t.db != db);
        if let (true, Some(o)) = (capture, &obs) {
            self.start_capture(&**o);
        }
    }

    /// Swap databases `a` and `b` in every locked shard (snapshot hook first).
    pub(crate) fn swap_db(&mut self, a: u32, b: u32) {
        let obs = self.ks.observer().cloned();
        let mut capture = false;
        for g in self.guards.iter_mut() {
            if let Some(o) = &obs {
                capture |= o.before_swap(g, a, b);
            }
            g.swap_dbs(a, b);
        }
        if let (true, Some(o)) = (capture, &obs) {
            self.start_capture(&**o);
        }
    }
}

/// `(address, length, hash)` of each declared key argument (see `Ctx::key_hashes`).
/// The declared keys' `(address, length, hash)` from their argument indices and hashes.
fn identify(argv: &[&[u8]], key_hashes: Vec<(usize, u64)>) -> Vec<(usize, usize, u64)> {
    key_hashes
        .into_iter()
        .map(|(i, h)| (argv[i].as_ptr() as usize, argv[i].len(), h))
        .collect()
}
