//! Atomic units of commands decided while they run: the keyspace side of Lua scripts.
//!
//! Problem: a transaction ([`Keyspace::execute_multi`]) knows all its commands before it
//! starts, so it can lock the union of their shards. A script decides its commands while it
//! runs (`redis.call`), yet it must be just as atomic: no other command interleaves, and its
//! propagated effects reach the sink, the snapshot and the replicas as **one unit** (wrapped in
//! MULTI/EXEC when two or more, as Redis 7.0's `propagatePendingCommands`). [`Keyspace::atomic`]
//! takes the lock set up front from what the script declares and hands the caller an
//! [`Atomic`] that runs one command at a time under it.
//!
//! The lock set ([`Scope`]):
//! - [`Scope::Keys`]: the shards of the declared keys (a script's `KEYS`). Commands may then
//!   touch only declared keys: a command naming another key, or a whole-keyspace command, is
//!   refused with an error reply before it runs (taking another shard lock mid-way could break
//!   the lock order and deadlock). This is the visible rule that lets scripts on different
//!   shards run in parallel.
//! - [`Scope::All`]: every shard in ascending order, for scripts that declare no key (or ask
//!   for cross-key access): any key and any command, at the cost of excluding every other
//!   command for the script's duration (what Redis does for every script).
//!
//! Like a transaction, the unit asks the snapshot observer for capture from its start, so a
//! converging snapshot gets all of the unit's deltas or none for its buckets.

use forkless_sync::MutexGuard;

use crate::command::{unknown_command, wrong_arity, CommandSpec, ALL_SHARDS, READONLY};
use crate::ctx::Ctx;
use crate::keyspace::{Keyspace, Session, Shard};
use crate::memory;
use crate::reply::Reply;

/// Which shards an atomic unit holds.
#[derive(Clone, Copy, Debug)]
pub enum Scope<'k> {
    /// Every shard: any key, any command.
    All,
    /// The shards of these keys; only these keys may be touched.
    Keys(&'k [&'k [u8]]),
}

/// One atomic unit in progress (see the module docs): run commands with [`Atomic::call`].
pub struct Atomic<'a> {
    ks: &'a Keyspace,
    ctx: Ctx<'a>,
    /// The declared keys when the scope is [`Scope::Keys`].
    declared: Option<Vec<Vec<u8>>>,
    /// Memory was over `maxmemory` (after eviction) when the unit started: commands that may
    /// grow memory are refused (Redis's `pre_command_oom_state` for scripts).
    oom: bool,
    /// A write command ran (whether or not it changed anything).
    wrote: bool,
    /// Propagate the effects of the next commands (`redis.set_repl`).
    propagate: bool,
    /// `(db, key)` of every key a write command named, and whether a whole-keyspace write ran
    /// (for WATCH and blocked clients).
    touched: Vec<(u32, Vec<u8>)>,
    touched_all: bool,
}

impl std::fmt::Debug for Atomic<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Atomic")
            .field("declared", &self.declared)
            .field("oom", &self.oom)
            .field("wrote", &self.wrote)
            .finish_non_exhaustive()
    }
}

impl Keyspace {
    /// Run `f` as one atomic unit in `session`'s database, holding the shards of `scope` (see
    /// the module docs). Commands run with [`Atomic::call`]; their propagated commands are
    /// delivered together when `f` returns, locks still held. A `SELECT` inside the unit
    /// changes the unit's database only, not the session's (Redis 7.0 scripts).
    ///
    /// When `maxmemory` is set, eviction runs before the locks are taken; if memory stays over
    /// the bound, commands that may grow memory are refused inside the unit.
    pub fn atomic<R>(
        &self,
        session: &Session,
        scope: Scope<'_>,
        f: impl FnOnce(&mut Atomic<'_>) -> R,
    ) -> R {
        let oom =
            self.memory_state().maxmemory() > 0 && !self.is_loading() && !self.evict_to_bound();
        let (all, declared) = match scope {
            Scope::All => (true, None),
            Scope::Keys(keys) => (
                false,
                Some(keys.iter().map(|k| k.to_vec()).collect::<Vec<_>>()),
            ),
        };
        let guards: Vec<MutexGuard<'_, Shard>> = match &declared {
            None => self.lock_all_shards(),
            Some(keys) => {
                let mut idx: Vec<usize> = keys
                    .iter()
                    .map(|k| self.shard_of(self.hash_key(k)))
                    .collect();
                if idx.is_empty() {
                    idx.push(0);
                }
                idx.sort_unstable();
                idx.dedup();
                idx.iter().map(|&i| self.lock_shard(i)).collect()
            }
        };
        let db = session.db.min(self.databases() - 1);
        let now = self.now_ms();
        let mut ctx = Ctx::new(self, guards, all, db, now, Vec::new());
        ctx.capture_from_start();
        let mut unit = Atomic {
            ks: self,
            ctx,
            declared,
            oom,
            wrote: false,
            propagate: true,
            touched: Vec::new(),
            touched_all: false,
        };
        let r = f(&mut unit);
        let Atomic { mut ctx, .. } = unit;
        let events = ctx.take_events();
        let (guards, prop, capture) = ctx.into_parts();
        self.deliver_unit(prop, capture);
        self.deliver_events(&events);
        drop(guards);
        r
    }
}

impl Atomic<'_> {
    /// The table entry of command `name` (any case).
    pub fn spec(&self, name: &[u8]) -> Option<&'static CommandSpec> {
        self.ks.command_spec(name)
    }

    /// True once a write command ran in this unit (a script that wrote can no longer be
    /// killed: its effects must stay whole).
    pub fn wrote(&self) -> bool {
        self.wrote
    }

    /// True when memory was over `maxmemory` when the unit started.
    pub fn oom(&self) -> bool {
        self.oom
    }

    /// Set whether commands that may grow memory are refused (a script with the `allow-oom`
    /// flag runs with this off; the caller restores the previous state after it).
    pub fn set_oom(&mut self, on: bool) {
        self.oom = on;
    }

    /// Whether the next commands' effects are propagated (Redis's `redis.set_repl`; the
    /// unit's commands always change the keyspace).
    pub fn set_propagate(&mut self, on: bool) {
        self.propagate = on;
    }

    /// The keys write commands of this unit named (`(db, key)`, repeats possible) and whether a
    /// whole-keyspace write (FLUSHDB, SWAPDB...) ran.
    pub fn touched(&self) -> (&[(u32, Vec<u8>)], bool) {
        (&self.touched, self.touched_all)
    }

    /// The unit's current database.
    pub fn db(&self) -> u32 {
        self.ctx.db()
    }

    /// Set the unit's current database (a transaction restores its own after a script that
    /// ran SELECT).
    pub fn set_db(&mut self, db: u32) {
        self.ctx.set_db(db.min(self.ks.databases() - 1));
    }

    /// Drop the effects collected so far: nothing of the unit is propagated (a script stopped
    /// by SHUTDOWN NOSAVE, which Redis leaves out of the log by exiting before propagating).
    pub fn discard_effects(&mut self) {
        self.ctx.truncate_prop(0);
    }

    /// Mark the next commands as called by a script (Redis's `CLIENT_SCRIPT`: SORT orders a
    /// set even with a constant BY).
    pub fn set_from_script(&mut self, on: bool) {
        self.ctx.set_from_script(on);
    }

    /// Run one command inside the unit. Unknown commands, wrong arity, keys outside the scope
    /// and (when the unit started over `maxmemory`) commands that may grow memory get an error
    /// reply and change nothing.
    pub fn call(&mut self, argv: &[&[u8]]) -> Reply {
        let Some(name) = argv.first() else {
            return Reply::err("ERR empty command");
        };
        let Some(spec) = self.ks.command_spec(name) else {
            return unknown_command(argv);
        };
        if !spec.arity_ok(argv.len()) {
            return wrong_arity(spec);
        }
        let mut all = spec.flags & ALL_SHARDS != 0;
        // SORT whose BY/GET patterns read no other key touches only its key and STORE
        // destination: a script that declared them may call it.
        let sort_dest = match (&self.declared, all) {
            (Some(_), true) => sort_local_dest(spec.name, argv),
            _ => None,
        };
        if sort_dest.is_some() {
            all = false;
        }
        let extra: &[&[u8]] = match &sort_dest {
            Some(Some(d)) => std::slice::from_ref(d),
            _ => &[],
        };
        // The key arguments: exactly, when the unit holds only the declared keys' shards (a
        // ZUNIONSTORE's numkeys is no key there); the legacy spec's over-approximation when it
        // holds every shard. Arguments that do not parse keep the over-approximation, so their
        // non-keys must be declared too (and the command then fails on its own syntax). A
        // SORT that keeps to its shards: its key, its STORE destination (as its handler parses
        // it) is `extra`.
        let key_idx: Vec<usize> = if sort_dest.is_some() {
            spec.key_indices(argv.len()).collect()
        } else if self.declared.is_some() {
            spec.exact_keys(argv)
        } else {
            spec.key_indices(argv.len()).collect()
        };
        if let Some(keys) = &self.declared {
            if all {
                return Reply::err(format!(
                    "ERR '{}' needs every shard, but this script declared its keys: call it with \
                     numkeys 0 (or the allow-cross-slot-keys flag) to run it",
                    spec.name
                ));
            }
            let named = key_idx.iter().map(|&i| argv[i]);
            for key in named.chain(extra.iter().copied()) {
                if !keys.iter().any(|k| k.as_slice() == key) {
                    return Reply::err(format!(
                        "ERR Script attempted to access key '{}' that is not declared in KEYS \
                         (declare every key, or call with numkeys 0 / the allow-cross-slot-keys \
                         flag to lock every shard)",
                        String::from_utf8_lossy(key)
                    ));
                }
            }
        }
        let write = spec.is_write();
        if write && self.oom && !self.wrote && memory::may_grow(spec.name) {
            return Reply::err(memory::OOM_ERROR);
        }
        let key_hashes: Vec<(usize, u64)> = if self.ctx_all() {
            Vec::new()
        } else {
            key_idx
                .iter()
                .map(|&i| (i, self.ks.hash_key(argv[i])))
                .collect()
        };
        self.ctx.next_command(argv, key_hashes);
        self.ctx.set_name(spec.name);
        self.ctx.set_count_hits(spec.flags & READONLY != 0);
        let db = self.ctx.db();
        if write && self.ks.observer().is_some() {
            for &i in &key_idx {
                self.ctx.notify_key(db, argv[i]);
            }
        }
        let prop_len = self.ctx.prop_len();
        let reply = (spec.handler)(&mut self.ctx, argv);
        if write {
            self.wrote = true;
            if all {
                self.touched_all = true;
            }
            for key in extra {
                self.touched.push((db, key.to_vec()));
            }
            for &i in &key_idx {
                self.touched.push((db, argv[i].to_vec()));
            }
            crate::keyspace::remove_emptied(&mut self.ctx, db, argv, key_idx.iter().copied());
        }
        self.ctx.settle_memory();
        if !self.propagate {
            self.ctx.truncate_prop(prop_len);
        }
        reply
    }

    fn ctx_all(&self) -> bool {
        self.declared.is_none()
    }
}

/// For SORT / SORT_RO (`name`) whose BY and GET patterns read no key (no `*`; a GET of `#` is
/// the element itself): `Some(STORE destination)`. `None` when a pattern may read other keys
/// (then SORT needs every shard). Options the handler refuses (it does so before reading any
/// key) give `Some(None)`, so the caller gets SORT's own error.
fn sort_local_dest<'a>(name: &str, argv: &[&'a [u8]]) -> Option<Option<&'a [u8]>> {
    if name != "sort" && name != "sort_ro" {
        return None;
    }
    match crate::SortOptions::parse(argv, name == "sort_ro") {
        Err(_) => Some(None),
        Ok(o) if o.reads_other_keys() => None,
        Ok(o) => Some(o.store),
    }
}
