//! Lua scripting as Redis 7.0: EVAL scripts and FUNCTION libraries.
//!
//! Problem: most Redis users run Lua (locks, rate limiters, job queues), and the RDB carries
//! function libraries. [`Scripting`] owns two sandboxed Lua 5.1 states (one for EVAL, one for
//! functions, as Redis keeps them apart), the script cache (SHA1 → compiled chunk) and the
//! function libraries, and executes `EVAL`, `EVALSHA`, `EVAL_RO`, `EVALSHA_RO`, `FCALL`,
//! `FCALL_RO`, `SCRIPT ...` and `FUNCTION ...` against a [`Keyspace`]. Semantics and messages
//! follow Redis 7.0.15's `eval.c`, `script.c`, `script_lua.c`, `function_lua.c`, `functions.c`.
//!
//! Atomicity: a script runs inside one [`Keyspace::atomic`] unit. A script that declares keys
//! (numkeys > 0) holds only their shards and may touch only them (another key, or a
//! whole-keyspace command, is an error reply from `redis.call`); a script with numkeys 0, or
//! with the `allow-cross-slot-keys` flag, holds every shard. Its effects (the write commands it
//! ran) are propagated as one unit, wrapped in MULTI/EXEC when two or more.
//!
//! Lock order: the VM lock (`Scripting::inner`) is taken before any shard lock and never while
//! holding one. SCRIPT KILL / FUNCTION KILL and the `-BUSY` check do not take it
//! ([`run::RunState`]).

pub mod conv;
pub mod func;
pub mod libs;
pub mod msgpack;
pub mod out;
pub mod run;
pub mod structlib;
pub mod vm;

use std::collections::HashMap;

use forkless_keyspace::{Atomic, Keyspace, Scope, Session};
use forkless_sync::atomic::AtomicU64;
use forkless_sync::{Arc, Mutex};
use mlua::Function;

pub use out::Out;
pub use run::{RunState, BUSY_EVAL, BUSY_FUNCTION};
use vm::{Limits, Logger, Mode, Vm};

/// Commands a script may not call (Redis's `CMD_NOSCRIPT` among the keyspace's commands).
pub(crate) const NOSCRIPT: &[&str] = &["multi", "exec", "discard", "watch", "unwatch"];

/// Commands served outside the keyspace that Redis refuses inside scripts (blocking commands,
/// pub/sub subscriptions, transactions, scripting itself...). Other server-level commands get
/// "Unknown Redis command called from script" here.
pub(crate) const SERVER_NOSCRIPT: &[&str] = &[
    "blpop",
    "brpop",
    "brpoplpush",
    "blmove",
    "blmpop",
    "bzpopmin",
    "bzpopmax",
    "bzmpop",
    "subscribe",
    "psubscribe",
    "unsubscribe",
    "punsubscribe",
    "ssubscribe",
    "sunsubscribe",
    "multi",
    "exec",
    "discard",
    "watch",
    "unwatch",
    "eval",
    "evalsha",
    "eval_ro",
    "evalsha_ro",
    "fcall",
    "fcall_ro",
    "script",
    "function",
    "client",
    "auth",
    "hello",
    "reset",
    "quit",
    "save",
    "bgsave",
    "bgrewriteaof",
    "shutdown",
    "debug",
    "monitor",
    "sync",
    "psync",
    "replicaof",
    "slaveof",
    "xread",
    "xreadgroup",
    "cluster",
];

/// Script flags (`#!lua flags=...`, `redis.register_function{flags=...}`), Redis's values.
pub mod flags {
    /// `no-writes`.
    pub const NO_WRITES: u32 = 1 << 0;
    /// `allow-oom`.
    pub const ALLOW_OOM: u32 = 1 << 1;
    /// `allow-stale`.
    pub const ALLOW_STALE: u32 = 1 << 2;
    /// `no-cluster`.
    pub const NO_CLUSTER: u32 = 1 << 3;
    /// `allow-cross-slot-keys`.
    pub const ALLOW_CROSS_SLOT: u32 = 1 << 4;
    /// An EVAL script without a shebang (flags ignored, Redis's `EVAL_COMPAT_MODE`).
    pub const EVAL_COMPAT: u32 = 1 << 31;
    /// Names in Redis's order.
    pub const NAMES: [(&str, u32); 5] = [
        ("no-writes", NO_WRITES),
        ("allow-oom", ALLOW_OOM),
        ("allow-stale", ALLOW_STALE),
        ("no-cluster", NO_CLUSTER),
        ("allow-cross-slot-keys", ALLOW_CROSS_SLOT),
    ];
}

/// The keys a script's write commands named (`(db, key)`), and whether it ran a
/// whole-keyspace write: the server wakes WATCHers and blocked clients of them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Touched {
    /// `(db, key)`, repeats possible.
    pub keys: Vec<(u32, Vec<u8>)>,
    /// A whole-keyspace write (FLUSHDB, FLUSHALL, SWAPDB...) ran.
    pub all: bool,
}

/// A command the host serves outside the keyspace (see [`HostCommands`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HostCommand {
    /// Redis's arity (negative: at least that many arguments, the name included).
    pub arity: i32,
    /// Redis's `CMD_NOSCRIPT`: refused in scripts unless `DEBUG set-disable-deny-scripts 1`.
    pub noscript: bool,
}

/// Commands of the host (the server) that scripts may call through `redis.call` although the
/// keyspace does not serve them: `DEBUG`, `TIME`. Redis runs any command from a script; here a
/// script reaches the keyspace's commands and these. They run while the script holds its
/// shards, so an implementation must not take the keyspace's locks (nor write: a script's
/// effects are the keyspace commands it ran).
pub trait HostCommands: Send + Sync {
    /// `name` (lowercase) if the host serves it to scripts.
    fn lookup(&self, name: &str) -> Option<HostCommand>;
    /// Run `argv` (arity checked) for a script whose protocol is RESP3 when `resp3`
    /// (`redis.setresp`). The reply may use RESP3 types; the script sees them converted for its
    /// protocol, as a reply Redis's fake client would get.
    fn call(&self, argv: &[&[u8]], resp3: bool) -> Out;
    /// Why the host refuses writes now, beyond the engine's own checks (the server's
    /// `min-replicas-to-write`: `NOREPLICAS ...`), if it does: checked where Redis checks it,
    /// before a script that may write and before each write command of a script without flags.
    fn deny_write(&self) -> Option<String> {
        None
    }
    /// A command a script called ran, or was refused before running (`rejected`): Redis counts
    /// it in INFO commandstats and errorstats as if a client had sent it (`scriptCall`'s
    /// `incrCommandStatsOnError`, `call`'s stats). `name`: the command when it exists;
    /// `error`: its error reply ("CODE message"), if any.
    fn after_call(&self, _name: Option<&str>, _error: Option<&str>, _rejected: bool) {}
}

thread_local! {
    /// Set when the script that just ran on this thread returned (or raised) an error reply
    /// that a `redis.call` produced: its error statistics were counted when the command ran
    /// (Redis's `ignore_error_stats_update`), so the host must not count the script's reply
    /// again. Cleared when a script starts; read once by [`take_final_error_counted`].
    static FINAL_ERROR_COUNTED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// True (once) when the error reply of the script that just ran on this thread was already
/// counted in the error statistics (see [`HostCommands::after_call`]).
pub fn take_final_error_counted() -> bool {
    FINAL_ERROR_COUNTED.with(|c| c.replace(false))
}

pub(crate) fn set_final_error_counted(on: bool) {
    FINAL_ERROR_COUNTED.with(|c| c.set(on));
}

/// The permission check of the client running a script (the server's ACL user), applied to
/// every `redis.call` and answered by `redis.acl_check_cmd` (Redis's `scriptVerifyACL`).
pub trait CallGuard: Send + Sync {
    /// `Err(message)` when the caller may not run `argv` (the message follows Redis's "The
    /// user executing the script ..."); `log`: record the refusal (the ACL log).
    fn check(&self, argv: &[&[u8]], log: bool) -> Result<(), String>;
}

thread_local! {
    static GUARD: std::cell::RefCell<Option<Arc<dyn CallGuard>>> =
        const { std::cell::RefCell::new(None) };
}

/// Run `f` (a scripting command on this thread) with `guard` checking its scripts' calls;
/// `None`: the caller may run anything (no check at all).
pub fn with_guard<R>(guard: Option<Arc<dyn CallGuard>>, f: impl FnOnce() -> R) -> R {
    struct Restore(Option<Arc<dyn CallGuard>>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let prev = self.0.take();
            GUARD.with(|g| *g.borrow_mut() = prev);
        }
    }
    let prev = GUARD.with(|g| std::mem::replace(&mut *g.borrow_mut(), guard));
    let _restore = Restore(prev);
    f()
}

/// The guard of the script running on this thread, if any.
pub(crate) fn current_guard() -> Option<Arc<dyn CallGuard>> {
    GUARD.with(|g| g.borrow().clone())
}

/// What the host (the engine) tells a scripting command.
pub struct Host<'a> {
    /// Why writes are refused now (MISCONF, read-only replica), if they are.
    pub deny_write: &'a dyn Fn() -> Option<String>,
}

/// A cached EVAL script (its compiled chunk is in the EVAL VM's store, under the SHA1).
struct Script {
    flags: u32,
}

struct Inner {
    eval: Vm,
    scripts: HashMap<String, Script>,
    functions: func::Functions,
    /// The host's commands scripts may call ([`Scripting::set_host_commands`]).
    host: Option<Arc<dyn HostCommands>>,
    /// Bytes of the cached scripts' bodies and SHA1s (kept as scripts come and go).
    scripts_bytes: u64,
}

/// What INFO's memory section shows of scripting (Redis 7.0's `used_memory_vm_eval`,
/// `number_of_cached_scripts`...), as of the last scripting command.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ScriptMemory {
    /// Bytes of the EVAL Lua state (`used_memory_vm_eval`, `used_memory_lua`).
    pub vm_eval: u64,
    /// Bytes of the functions' Lua state (`used_memory_vm_functions`).
    pub vm_functions: u64,
    /// Bytes of the cached scripts' bodies and SHA1s (`used_memory_scripts_eval`).
    pub scripts_eval: u64,
    /// Bytes of the libraries' code (`used_memory_functions`).
    pub functions: u64,
    /// Scripts in the cache (`number_of_cached_scripts`).
    pub cached_scripts: u64,
    /// Functions loaded (`number_of_functions`).
    pub function_count: u64,
    /// Libraries loaded (`number_of_libraries`).
    pub library_count: u64,
}

/// Scripting for one keyspace (see the crate docs).
pub struct Scripting {
    inner: Mutex<Inner>,
    /// [`ScriptMemory`] as published after the last command (a leaf lock: INFO never waits
    /// for a running script).
    memory: Mutex<ScriptMemory>,
    state: Arc<RunState>,
    rand: Arc<AtomicU64>,
    logger: Logger,
}

impl std::fmt::Debug for Scripting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scripting").finish_non_exhaustive()
    }
}

/// The scripting commands [`Scripting::execute`] answers (lowercase).
pub const COMMANDS: &[&str] = &[
    "eval",
    "evalsha",
    "eval_ro",
    "evalsha_ro",
    "fcall",
    "fcall_ro",
    "script",
    "function",
];

/// True when `name` (any case) runs a script or a function (`EVAL*`, `FCALL*`): the
/// scripting commands [`Scripting::execute_multi`] runs inside a transaction.
pub fn is_runner(name: &str) -> bool {
    COMMANDS[..6].iter().any(|c| c.eq_ignore_ascii_case(name))
}

/// One reply of [`Scripting::execute_multi`].
#[derive(Debug)]
pub enum MultiReply {
    /// A keyspace command's reply.
    Data(forkless_keyspace::Reply),
    /// A script's or function's reply (RESP3 types kept).
    Script(Out),
}

/// True when `name` (any case) is a scripting command.
pub fn is_script_command(name: &[u8]) -> bool {
    COMMANDS
        .iter()
        .any(|c| c.as_bytes().eq_ignore_ascii_case(name))
}

impl Scripting {
    /// New scripting state; `redis.log` messages go to `logger` (level 0..=3, message).
    pub fn new(logger: Logger) -> Result<Scripting, String> {
        let rand = Arc::new(AtomicU64::new(vm::RAND48_INIT));
        let eval = Vm::new(Mode::Eval, rand.clone(), logger.clone()).map_err(|e| e.to_string())?;
        let fvm =
            Vm::new(Mode::Function, rand.clone(), logger.clone()).map_err(|e| e.to_string())?;
        Ok(Scripting {
            inner: Mutex::new(Inner {
                eval,
                scripts: HashMap::new(),
                functions: func::Functions::new(fvm),
                host: None,
                scripts_bytes: 0,
            }),
            memory: Mutex::new(ScriptMemory::default()),
            state: Arc::new(RunState::new(5000)),
            rand,
            logger,
        })
    }

    /// Let scripts call `host`'s commands ([`HostCommands`]; the server's DEBUG and TIME).
    pub fn set_host_commands(&self, host: Arc<dyn HostCommands>) {
        self.inner.lock().host = Some(host);
    }

    /// The running script's state (busy, kill).
    pub fn run_state(&self) -> &Arc<RunState> {
        &self.state
    }

    /// `-BUSY ...` when a script has been running past `busy-reply-threshold`.
    pub fn busy_error(&self) -> Option<&'static str> {
        self.state.busy_error()
    }

    /// Set `busy-reply-threshold` (ms; 0 = never busy).
    pub fn set_busy_threshold_ms(&self, ms: u64) {
        self.state.set_threshold_ms(ms);
    }

    /// Bytes held by both Lua states (scripts, libraries, their data): O(1), Lua's allocator
    /// count.
    pub fn memory_bytes(&self) -> u64 {
        let inner = self.inner.lock();
        (inner.eval.lua().used_memory() + inner.functions.vm().lua().used_memory()) as u64
    }

    /// Publish [`Scripting::memory_bytes`] to `ks`'s `used_memory` (see
    /// `Keyspace::set_extra_memory`). Skipped while another thread runs a script (SCRIPT KILL
    /// and FUNCTION STATS never wait for the VM); the next command publishes.
    pub fn publish_memory(&self, ks: &Keyspace) {
        if let Some(inner) = self.inner.try_lock() {
            let (libs, funcs) = inner.functions.counts();
            let m = ScriptMemory {
                vm_eval: inner.eval.lua().used_memory() as u64,
                vm_functions: inner.functions.vm().lua().used_memory() as u64,
                scripts_eval: inner.scripts_bytes,
                functions: inner.functions.code_bytes() as u64,
                cached_scripts: inner.scripts.len() as u64,
                function_count: funcs as u64,
                library_count: libs as u64,
            };
            drop(inner);
            *self.memory.lock() = m;
            ks.set_extra_memory(m.vm_eval + m.vm_functions);
        }
    }

    /// Scripting's part of INFO's memory section, as of the last scripting command.
    pub fn memory_info(&self) -> ScriptMemory {
        *self.memory.lock()
    }

    /// Execute a scripting command (see [`COMMANDS`]).
    pub fn execute(
        &self,
        ks: &Keyspace,
        session: &Session,
        argv: &[&[u8]],
        host: &Host<'_>,
    ) -> Out {
        self.execute_touching(ks, session, argv, host).0
    }

    /// [`Scripting::execute`], also returning the keys the script's writes named.
    pub fn execute_touching(
        &self,
        ks: &Keyspace,
        session: &Session,
        argv: &[&[u8]],
        host: &Host<'_>,
    ) -> (Out, Touched) {
        let r = self.execute_inner(ks, session, argv, host);
        self.publish_memory(ks);
        r
    }

    fn execute_inner(
        &self,
        ks: &Keyspace,
        session: &Session,
        argv: &[&[u8]],
        host: &Host<'_>,
    ) -> (Out, Touched) {
        let name =
            String::from_utf8_lossy(argv.first().copied().unwrap_or(b"")).to_ascii_lowercase();
        let sub = argv
            .get(1)
            .map(|s| String::from_utf8_lossy(s).to_ascii_lowercase())
            .unwrap_or_default();
        // Kill never waits for the VM (the running script holds it).
        match (name.as_str(), sub.as_str()) {
            ("script", "kill") if argv.len() == 2 => {
                return (self.state.kill(false), Touched::default())
            }
            ("function", "kill") if argv.len() == 2 => {
                return (self.state.kill(true), Touched::default())
            }
            ("function", "stats") if argv.len() == 2 => {
                return (self.state.stats(), Touched::default())
            }
            // FUNCTION LOAD / RESTORE may grow memory (Redis's `denyoom`): evict first, refuse
            // when still over the bound.
            ("function", "load" | "restore")
                if ks.memory_stats().maxmemory > 0 && !ks.is_loading() && !ks.evict_to_bound() =>
            {
                return (
                    Out::err(forkless_keyspace::memory::OOM_ERROR),
                    Touched::default(),
                );
            }
            _ => {}
        }
        match name.as_str() {
            "eval" | "evalsha" | "eval_ro" | "evalsha_ro" => {
                if argv.len() < 3 {
                    return (arity(&name), Touched::default());
                }
                self.eval(
                    &mut self.inner.lock(),
                    ks,
                    session,
                    argv,
                    name.ends_with("_ro"),
                    name.starts_with("evalsha"),
                    host,
                    None,
                )
            }
            "fcall" | "fcall_ro" => {
                if argv.len() < 3 {
                    return (arity(&name), Touched::default());
                }
                self.fcall(
                    &self.inner.lock(),
                    ks,
                    session,
                    argv,
                    name == "fcall_ro",
                    host,
                    None,
                )
            }
            "script" => (self.script_command(argv, &sub), Touched::default()),
            "function" => (
                func::command(self, &|a| ks.propagate_command(a), argv, &sub),
                Touched::default(),
            ),
            _ => (
                Out::err(format!("ERR unknown command '{name}'")),
                Touched::default(),
            ),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn eval(
        &self,
        inner: &mut Inner,
        ks: &Keyspace,
        session: &Session,
        argv: &[&[u8]],
        ro: bool,
        by_sha: bool,
        host: &Host<'_>,
        unit: Option<&mut Atomic<'_>>,
    ) -> (Out, Touched) {
        let (keys, args) = match split_keys(argv[2], &argv[3..]) {
            Ok(x) => x,
            Err(e) => return (e, Touched::default()),
        };
        let sha = if by_sha {
            let sha = String::from_utf8_lossy(argv[1]).to_ascii_lowercase();
            if sha.len() != 40 || !inner.scripts.contains_key(&sha) {
                return (
                    Out::err("NOSCRIPT No matching script. Please use EVAL."),
                    Touched::default(),
                );
            }
            sha
        } else {
            match inner.load_script(argv[1]) {
                Ok(sha) => sha,
                Err(e) => return (e, Touched::default()),
            }
        };
        let inner = &*inner;
        let Some(script) = inner.scripts.get(&sha) else {
            return (
                Out::err("NOSCRIPT No matching script. Please use EVAL."),
                Touched::default(),
            );
        };
        let name = sha.clone();
        let Some(func) = inner.eval.stored(&sha) else {
            return (
                Out::err("NOSCRIPT No matching script. Please use EVAL."),
                Touched::default(),
            );
        };
        self.run(
            ks,
            session,
            &inner.eval,
            &func,
            &name,
            script.flags,
            keys,
            args,
            ro,
            false,
            host,
            inner.host.as_deref(),
            argv,
            unit,
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn fcall(
        &self,
        inner: &Inner,
        ks: &Keyspace,
        session: &Session,
        argv: &[&[u8]],
        ro: bool,
        host: &Host<'_>,
        unit: Option<&mut Atomic<'_>>,
    ) -> (Out, Touched) {
        if forkless_keyspace::convert::parse_i64(argv[2]).is_none() {
            return (
                Out::err("ERR Bad number of keys provided"),
                Touched::default(),
            );
        }
        let (keys, args) = match split_keys(argv[2], &argv[3..]) {
            Ok(x) => x,
            Err(e) => return (e, Touched::default()),
        };
        let fname = String::from_utf8_lossy(argv[1]).into_owned();
        let Some((f, fl)) = inner.functions.get(&fname) else {
            return (Out::err("ERR Function not found"), Touched::default());
        };
        self.run(
            ks,
            session,
            inner.functions.vm(),
            &f,
            &fname,
            fl,
            keys,
            args,
            ro,
            true,
            host,
            inner.host.as_deref(),
            argv,
            unit,
        )
    }

    /// Run a compiled script or function in an atomic unit (flags, read-only rules, busy
    /// state).
    #[allow(clippy::too_many_arguments)]
    fn run(
        &self,
        ks: &Keyspace,
        session: &Session,
        vm: &Vm,
        f: &Function,
        name: &str,
        fl: u32,
        keys: &[&[u8]],
        args: &[&[u8]],
        ro: bool,
        function: bool,
        host: &Host<'_>,
        host_cmds: Option<&dyn HostCommands>,
        run_argv: &[&[u8]],
        outer: Option<&mut Atomic<'_>>,
    ) -> (Out, Touched) {
        let compat = fl & flags::EVAL_COMPAT != 0;
        let declared_ro = !compat && fl & flags::NO_WRITES != 0;
        if ro && !compat && !declared_ro {
            return (
                Out::err("ERR Can not execute a script with write flag using *_ro command."),
                Touched::default(),
            );
        }
        if !compat && !declared_ro {
            if let Some(msg) = (host.deny_write)().or_else(|| host_cmds?.deny_write()) {
                return (Out::err(msg), Touched::default());
            }
        }
        let no_writes = if ro || declared_ro {
            Some("Write commands are not allowed from read-only scripts.")
        } else {
            None
        };
        let scope = if keys.is_empty() || (!compat && fl & flags::ALLOW_CROSS_SLOT != 0) {
            Scope::All
        } else {
            Scope::Keys(keys)
        };
        let limits = Limits {
            no_writes,
            deny_write: host.deny_write,
            allow_oom: !compat && fl & flags::ALLOW_OOM != 0,
            host: host_cmds,
        };
        let body = |unit: &mut Atomic<'_>| {
            if unit.oom() && !compat && !declared_ro && !limits.allow_oom {
                return (
                    Out::err(forkless_keyspace::memory::OOM_ERROR),
                    Touched::default(),
                );
            }
            self.state.set_current(name, run_argv);
            self.state.start(function);
            let oom = unit.oom();
            if limits.allow_oom {
                unit.set_oom(false);
            }
            let out = vm.run(f, name, unit, keys, args, &limits, &self.state);
            unit.set_oom(oom);
            if self.state.aborted() {
                // SHUTDOWN NOSAVE stopped it: no partial script reaches the log.
                unit.discard_effects();
            }
            self.state.finish();
            let (k, all) = unit.touched();
            (
                out,
                Touched {
                    keys: k.to_vec(),
                    all,
                },
            )
        };
        match outer {
            // Inside a transaction's unit (every shard held): the script starts in the
            // transaction's current database, and its SELECT and `redis.set_repl` end with it.
            Some(unit) => {
                let db = unit.db();
                let r = body(unit);
                unit.set_db(db);
                unit.set_propagate(true);
                r
            }
            None => ks.atomic(session, scope, body),
        }
    }

    /// A transaction (MULTI ... EXEC) whose queue holds scripts (`EVAL*`, `FCALL*`) among
    /// keyspace commands: everything runs in one atomic unit holding every shard, in order,
    /// and the effects of all of it (the scripts' write commands and the other commands)
    /// reach the log as one MULTI/EXEC unit, as Redis 7.0 propagates a transaction. The
    /// queue was checked when it was built (known commands, arity). Returns each command's
    /// reply and the keys the writes named; `session`'s database follows the queue's SELECTs.
    pub fn execute_multi(
        &self,
        ks: &Keyspace,
        session: &mut Session,
        cmds: &[&[&[u8]]],
        host: &Host<'_>,
    ) -> (Vec<MultiReply>, Touched) {
        // The VM lock comes before any shard lock (crate docs).
        let mut inner = self.inner.lock();
        let start = Session { db: session.db };
        let (replies, db, touched) = ks.atomic(&start, Scope::All, |unit| {
            let mut replies = Vec::with_capacity(cmds.len());
            for argv in cmds {
                let name = String::from_utf8_lossy(argv.first().copied().unwrap_or(b""))
                    .to_ascii_lowercase();
                let r = match name.as_str() {
                    _ if argv.len() < 3 && is_runner(&name) => MultiReply::Script(arity(&name)),
                    "eval" | "evalsha" | "eval_ro" | "evalsha_ro" => {
                        let s = Session { db: unit.db() };
                        MultiReply::Script(
                            self.eval(
                                &mut inner,
                                ks,
                                &s,
                                argv,
                                name.ends_with("_ro"),
                                name.starts_with("evalsha"),
                                host,
                                Some(&mut *unit),
                            )
                            .0,
                        )
                    }
                    "fcall" | "fcall_ro" => {
                        let s = Session { db: unit.db() };
                        MultiReply::Script(
                            self.fcall(
                                &inner,
                                ks,
                                &s,
                                argv,
                                name == "fcall_ro",
                                host,
                                Some(&mut *unit),
                            )
                            .0,
                        )
                    }
                    _ => MultiReply::Data(unit.call(argv)),
                };
                replies.push(r);
            }
            let (k, all) = unit.touched();
            (
                replies,
                unit.db(),
                Touched {
                    keys: k.to_vec(),
                    all,
                },
            )
        });
        session.db = db;
        drop(inner);
        self.publish_memory(ks);
        (replies, touched)
    }

    fn script_command(&self, argv: &[&[u8]], sub: &str) -> Out {
        match sub {
            "load" if argv.len() == 3 => match self.inner.lock().load_script(argv[2]) {
                Ok(sha) => Out::Bulk(sha.into_bytes()),
                Err(e) => e,
            },
            "exists" if argv.len() >= 3 => {
                let inner = self.inner.lock();
                Out::Array(
                    argv[2..]
                        .iter()
                        .map(|s| {
                            let sha = String::from_utf8_lossy(s).to_ascii_lowercase();
                            Out::Int(inner.scripts.contains_key(&sha) as i64)
                        })
                        .collect(),
                )
            }
            "flush" if argv.len() <= 3 => {
                if let Some(mode) = argv.get(2) {
                    if !mode.eq_ignore_ascii_case(b"sync") && !mode.eq_ignore_ascii_case(b"async") {
                        return Out::err("ERR SCRIPT FLUSH only support SYNC|ASYNC option");
                    }
                }
                let mut inner = self.inner.lock();
                match Vm::new(Mode::Eval, self.rand.clone(), self.logger.clone()) {
                    Ok(vm) => {
                        inner.eval = vm;
                        inner.scripts.clear();
                        inner.scripts_bytes = 0;
                        Out::ok()
                    }
                    Err(e) => Out::err(format!("ERR cannot reset the Lua state: {e}")),
                }
            }
            "kill" => self.state.kill(false),
            "help" if argv.len() == 2 => help(&[
                "SCRIPT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                "DEBUG (YES|SYNC|NO)",
                "    Set the debug mode for subsequent scripts executed.",
                "EXISTS <sha1> [<sha1> ...]",
                "    Return information about the existence of the scripts in the script cache.",
                "FLUSH [ASYNC|SYNC]",
                "    Flush the Lua scripts cache. Very dangerous on replicas.",
                "    When called without the optional mode argument, the behavior is determined by the",
                "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
                "    * ASYNC: Asynchronously flush the scripts cache.",
                "    * SYNC: Synchronously flush the scripts cache.",
                "KILL",
                "    Kill the currently executing Lua script.",
                "LOAD <script>",
                "    Load a script into the scripts cache without executing it.",
                "HELP",
                "    Prints this help.",
            ]),
            "load" | "exists" | "flush" | "help" => Out::err(format!(
                "ERR unknown subcommand or wrong number of arguments for '{sub}'. Try SCRIPT HELP."
            )),
            "debug" => Out::err("ERR SCRIPT DEBUG is not supported by forkless"),
            _ => Out::err(format!(
                "ERR unknown subcommand '{}'. Try SCRIPT HELP.",
                String::from_utf8_lossy(argv.get(1).copied().unwrap_or(b""))
            )),
        }
    }

    /// The libraries' codes, in name order (what RDB_OPCODE_FUNCTION2 records carry).
    pub fn library_codes(&self) -> Vec<Vec<u8>> {
        self.inner.lock().functions.codes()
    }

    /// Load a library from its code (an RDB's or AOF's): `replace` an existing one of the same
    /// name. `Err` holds Redis's message.
    pub fn load_library(&self, code: &[u8], replace: bool) -> Result<String, String> {
        self.functions_mut(|f| f.load(code, replace))
    }

    /// Remove every library (FUNCTION FLUSH; FLUSHALL does not touch functions in Redis 7.0).
    pub fn flush_functions(&self) {
        self.functions_mut(|f| f.flush());
    }

    pub(crate) fn functions_mut<R>(&self, f: impl FnOnce(&mut func::Functions) -> R) -> R {
        let mut inner = self.inner.lock();
        let r = f(&mut inner.functions);
        let (libs, funcs) = inner.functions.counts();
        self.state.set_counts(libs, funcs);
        r
    }
}

impl forkless_keyspace::Libraries for Scripting {
    fn codes(&self) -> Vec<Vec<u8>> {
        self.library_codes()
    }

    fn load(&self, code: &[u8]) -> Result<(), String> {
        self.functions_mut(|f| {
            f.load_timeout = None;
            let r = f.load(code, true);
            f.load_timeout = Some(std::time::Duration::from_millis(500));
            r.map(|_| ())
        })
    }

    fn command(&self, argv: &[&[u8]]) -> Result<(), String> {
        let sub = argv
            .get(1)
            .map(|s| String::from_utf8_lossy(s).to_ascii_lowercase())
            .unwrap_or_default();
        self.functions_mut(|f| f.load_timeout = None);
        let r = func::command(self, &|_| {}, argv, &sub);
        self.functions_mut(|f| f.load_timeout = Some(std::time::Duration::from_millis(500)));
        match r {
            Out::Error(e) => Err(e),
            _ => Ok(()),
        }
    }
}

impl Inner {
    /// Compile and cache `body` (no-op when cached); returns its SHA1.
    fn load_script(&mut self, body: &[u8]) -> Result<String, Out> {
        let sha = vm::sha1_hex(body);
        if self.scripts.contains_key(&sha) {
            return Ok(sha);
        }
        let (fl, shebang_len) = parse_shebang(body).map_err(|e| Out::err(format!("ERR {e}")))?;
        let func = self
            .eval
            .compile(&body[shebang_len..], "@user_script")
            .map_err(|e| Out::err(format!("ERR Error compiling script (new function): {e}")))?;
        self.eval
            .store(&sha, func)
            .map_err(|e| Out::err(format!("ERR Error compiling script (new function): {e}")))?;
        self.scripts_bytes += (body.len() + sha.len()) as u64;
        self.scripts.insert(sha.clone(), Script { flags: fl });
        Ok(sha)
    }
}

/// Redis's `evalExtractShebangFlags`: flags and the length of the shebang line (its newline
/// is kept so line numbers stay the user's).
pub fn parse_shebang(body: &[u8]) -> Result<(u32, usize), String> {
    if !body.starts_with(b"#!") {
        return Ok((flags::EVAL_COMPAT, 0));
    }
    let Some(end) = body.iter().position(|&b| b == b'\n') else {
        return Err("Invalid script shebang".into());
    };
    let line = String::from_utf8_lossy(&body[..end]);
    let parts: Vec<&str> = line.split_ascii_whitespace().collect();
    let Some(first) = parts.first() else {
        return Err("Invalid engine in script shebang".into());
    };
    if *first != "#!lua" {
        return Err(format!("Unexpected engine in script shebang: {first}"));
    }
    let mut fl = 0;
    for p in &parts[1..] {
        let Some(list) = p.strip_prefix("flags=") else {
            return Err(format!("Unknown lua shebang option: {p}"));
        };
        // sdssplitlen: an empty list has no flags (but "a,,b" holds an empty one).
        for f in list.split(',').filter(|_| !list.is_empty()) {
            match flags::NAMES.iter().find(|(n, _)| *n == f) {
                Some((_, v)) => fl |= v,
                None => return Err(format!("Unexpected flag in script shebang: {f}")),
            }
        }
    }
    Ok((fl, end))
}

/// Split `numkeys key... arg...` (Redis's errors for a bad count).
type Args<'a> = &'a [&'a [u8]];

fn split_keys<'a>(numkeys: &[u8], rest: Args<'a>) -> Result<(Args<'a>, Args<'a>), Out> {
    let Some(n) = forkless_keyspace::convert::parse_i64(numkeys) else {
        return Err(Out::err("ERR value is not an integer or out of range"));
    };
    if n < 0 {
        return Err(Out::err("ERR Number of keys can't be negative"));
    }
    if n as u64 > rest.len() as u64 {
        return Err(Out::err(
            "ERR Number of keys can't be greater than number of args",
        ));
    }
    Ok(rest.split_at(n as usize))
}

fn arity(name: &str) -> Out {
    Out::err(format!(
        "ERR wrong number of arguments for '{name}' command"
    ))
}

pub(crate) fn help(lines: &[&str]) -> Out {
    Out::Array(
        lines
            .iter()
            .map(|l| Out::Status((*l).to_string()))
            .collect(),
    )
}
