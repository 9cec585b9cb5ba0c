//! One sandboxed Lua 5.1 state and the run of one script or function in it.
//!
//! Problem: scripts must see Redis 7.0's Lua environment (`script_lua.c`, `eval.c`,
//! `function_lua.c`): the `redis` API, read-only globals and libraries, `pcall` returning error
//! messages, errors reported as `<msg> script: <name>, on @user_script:<line>.`, a count hook
//! that notices a script running past `busy-reply-threshold` and stops a killed one. The
//! sandbox itself is Lua (`prelude.lua`); this module gives it its Rust pieces (`raw.*`) and
//! runs a compiled chunk under `Lua::scope`, so `redis.call` can borrow the keyspace's
//! [`Atomic`] unit for exactly the script's duration.
//!
//! Errors inside the state travel as Redis does: tables `{err=..., source=..., line=...}`
//! built by the message handler [`err_handler`], which finds the innermost frame of user code
//! (`@user_script` / `@user_function`).

use std::cell::{Cell, RefCell};
use std::ffi::c_int;

use forkless_keyspace::{Atomic, Reply};
use forkless_sync::atomic::{AtomicU64, Ordering};
use forkless_sync::Arc;
use mlua::{
    ffi, Function, HookTriggers, Lua, LuaOptions, MultiValue, StdLib, Table, Value, VmState,
};

use crate::conv::{lua_to_out, push_error_text, reply_to_lua};
use crate::out::Out;
use crate::run::RunState;

const PRELUDE: &str = include_str!("prelude.lua");

/// How often (VM instructions) the count hook looks at the clock and the kill flag (Redis uses
/// 100000).
const HOOK_EVERY: u32 = 100_000;

/// Which kind of state: EVAL scripts or FUNCTION libraries (Redis keeps one state each).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// EVAL / EVALSHA.
    Eval,
    /// FUNCTION LOAD / FCALL.
    Function,
}

/// What the caller allows a running script (from EVAL_RO, shebang flags, MISCONF...).
pub struct Limits<'a> {
    /// Writes are refused with this message (read-only script or command).
    pub no_writes: Option<&'static str>,
    /// Writes are refused with this message (persistence failing, read-only replica...).
    pub deny_write: &'a dyn Fn() -> Option<String>,
    /// The script is allowed to write when memory is over the bound.
    pub allow_oom: bool,
    /// The host's commands (DEBUG, TIME), if it serves any.
    pub host: Option<&'a dyn crate::HostCommands>,
}

/// A Lua state with the sandbox installed.
pub struct Vm {
    lua: Lua,
    env: Table,
    run: Function,
    handler: Function,
    hooks: Table,
    mode: Mode,
    set_loading: Function,
    /// Compiled chunks kept by the host (the EVAL script cache: SHA1 → function). One table,
    /// so the number of cached scripts is not bounded by mlua's reference stack (each
    /// `Function` handle held in Rust takes one of its ~8,000 slots).
    store: Table,
}

/// The `redis.log` sink: level (0..=3) and message.
pub type Logger = Arc<dyn Fn(u8, &str) + Send + Sync>;

impl Vm {
    /// A fresh state of `mode` (its `math.random` draws from `rand`, shared by every state so
    /// a SCRIPT FLUSH does not restart the sequence).
    pub fn new(mode: Mode, rand: Arc<AtomicU64>, logger: Logger) -> mlua::Result<Vm> {
        let lua = Lua::new_with(
            StdLib::TABLE | StdLib::STRING | StdLib::MATH,
            LuaOptions::default(),
        )?;
        let raw = lua.create_table()?;
        raw.raw_set(
            "errtext",
            lua.create_function(|_, s: mlua::String| Ok(push_error_text(&s.to_string_lossy())))?,
        )?;
        raw.raw_set(
            "sha1hex",
            lua.create_function(|_, v: Value| {
                let bytes = match &v {
                    Value::String(s) => s.as_bytes().to_vec(),
                    Value::Integer(n) => n.to_string().into_bytes(),
                    Value::Number(n) => crate::libs::lua_number_string(*n).into_bytes(),
                    _ => Vec::new(),
                };
                Ok(sha1_hex(&bytes))
            })?,
        )?;
        let log = logger.clone();
        raw.raw_set(
            "log",
            lua.create_function(move |_, (level, msg): (u8, mlua::String)| {
                log(level, &msg.to_string_lossy());
                Ok(())
            })?,
        )?;
        let r = rand.clone();
        raw.raw_set(
            "random",
            lua.create_function(move |_, args: MultiValue| math_random(&r, args))?,
        )?;
        raw.raw_set(
            "randomseed",
            lua.create_function(move |_, seed: f64| {
                rand.store(srand48(seed as i32), Ordering::Relaxed);
                Ok(())
            })?,
        )?;
        crate::libs::install(&lua)?;
        let hooks = lua.create_table()?;
        for (name, raise) in [("call", true), ("pcall", false)] {
            let h = hooks.clone();
            let inner =
                lua.create_function(move |lua, args: MultiValue| -> mlua::Result<Value> {
                    let call: Option<Function> = h.raw_get("call")?;
                    let Some(call) = call else {
                        let msg =
                            "ERR redis.call/pcall can only be called inside a script invocation";
                        if raise {
                            return Err(mlua::Error::external(ScriptError(msg.into(), false)));
                        }
                        return Ok(Value::Table(crate::conv::error_table(lua, msg)?));
                    };
                    let (v, failed): (Value, bool) = call.call(args)?;
                    if failed && raise {
                        let (msg, counted) = match &v {
                            Value::Table(t) => (
                                t.raw_get::<Option<String>>("err")?.unwrap_or_default(),
                                t.raw_get::<Option<bool>>(crate::conv::IGNORE_STATS)?
                                    .unwrap_or(false),
                            ),
                            _ => (String::new(), false),
                        };
                        return Err(mlua::Error::external(ScriptError(msg, counted)));
                    }
                    Ok(v)
                })?;
            raw.raw_set(name, many_args(&lua, inner)?)?;
        }
        // `redis.acl_check_cmd`: a Rust function (a C frame, as Redis's), so that
        // `return redis.acl_check_cmd(...)` keeps the script's frame for error positions.
        let h = hooks.clone();
        let acl_check = lua.create_function(move |_, args: MultiValue| -> mlua::Result<Value> {
            let fail = |m: &str| Err(mlua::Error::external(ScriptError(m.into(), false)));
            let check: Option<Function> = h.raw_get("acl_check")?;
            let Some(check) = check else {
                return fail(
                    "ERR redis.acl_check_cmd can only be called inside a script invocation",
                );
            };
            if args.is_empty() {
                return fail("ERR Please specify at least one argument for this redis lib call");
            }
            match check.call::<Value>(args)? {
                Value::Nil => fail("ERR Invalid command passed to redis.acl_check_cmd()"),
                v => Ok(v),
            }
        })?;
        raw.raw_set("acl_check_cmd", many_args(&lua, acl_check)?)?;
        raw.raw_set(
            "errmsg",
            lua.create_function(|_, v: Value| {
                Ok(match v {
                    Value::Error(e) => error_message(&e),
                    _ => String::new(),
                })
            })?,
        )?;
        let mode_name = match mode {
            Mode::Eval => "eval",
            Mode::Function => "function",
        };
        let (env, run, set_loading): (Table, Function, Function) = lua
            .load(PRELUDE)
            .set_name("=forkless")
            .call((raw, hooks.clone(), mode_name))?;
        let handler = lua.create_function(err_handler)?;
        let store = lua.create_table()?;
        Ok(Vm {
            lua,
            env,
            run,
            handler,
            hooks,
            mode,
            set_loading,
            store,
        })
    }

    /// Keep compiled chunk `f` under `key` (see the `store` field).
    pub fn store(&self, key: &str, f: Function) -> mlua::Result<()> {
        self.store.raw_set(key, f)
    }

    /// The chunk kept under `key`, if any (a handle for the time of a run).
    pub fn stored(&self, key: &str) -> Option<Function> {
        self.store.raw_get::<Option<Function>>(key).ok().flatten()
    }

    /// The Lua state.
    pub fn lua(&self) -> &Lua {
        &self.lua
    }

    /// Switch the environment to the library-loading API (FUNCTION LOAD) or back.
    pub fn set_loading(&self, on: bool) -> mlua::Result<()> {
        self.set_loading.call::<()>(on)
    }

    /// The hooks table of the sandbox (per-run functions are set in it).
    pub fn hooks(&self) -> &Table {
        &self.hooks
    }

    /// Compile `body` as a chunk named `chunk` (`@user_script`, `@user_function`) in the
    /// sandbox's environment. `Err` holds Lua's message.
    pub fn compile(&self, body: &[u8], chunk: &str) -> Result<Function, String> {
        self.lua
            .load(body)
            .set_name(chunk)
            .set_environment(self.env.clone())
            .into_function()
            .map_err(|e| match e {
                mlua::Error::SyntaxError { message, .. } => message,
                other => other.to_string(),
            })
    }

    /// Set KEYS and ARGV (EVAL: globals of the state).
    fn set_keys_args(&self, keys: &[&[u8]], args: &[&[u8]]) -> mlua::Result<()> {
        let g = self.lua.globals();
        g.raw_set("KEYS", self.array(keys)?)?;
        g.raw_set("ARGV", self.array(args)?)?;
        Ok(())
    }

    fn array(&self, items: &[&[u8]]) -> mlua::Result<Table> {
        let t = self.lua.create_table_with_capacity(items.len(), 0)?;
        for (i, a) in items.iter().enumerate() {
            t.raw_set(i + 1, self.lua.create_string(a)?)?;
        }
        Ok(t)
    }

    /// Run `f` (compiled by [`Vm::compile`], or a registered function) inside `unit`.
    /// `name` is what error messages call it (the SHA1 for EVAL, the function name for
    /// FCALL).
    #[allow(clippy::too_many_arguments)]
    pub fn run(
        &self,
        f: &Function,
        name: &str,
        unit: &mut Atomic<'_>,
        keys: &[&[u8]],
        args: &[&[u8]],
        limits: &Limits<'_>,
        state: &Arc<RunState>,
    ) -> Out {
        match self.run_inner(f, name, unit, keys, args, limits, state) {
            Ok(out) => out,
            Err(e) => Out::err(format!("ERR Error running script {name}, {e}")),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn run_inner(
        &self,
        f: &Function,
        name: &str,
        unit: &mut Atomic<'_>,
        keys: &[&[u8]],
        args: &[&[u8]],
        limits: &Limits<'_>,
        state: &Arc<RunState>,
    ) -> mlua::Result<Out> {
        let fmode = self.mode == Mode::Function;
        if fmode {
        } else {
            self.set_keys_args(keys, args)?;
        }
        let resp3 = Cell::new(false);
        let propagate = Cell::new(true);
        let unit = RefCell::new(unit);
        let st = state.clone();
        self.lua.set_hook(
            HookTriggers::new().every_nth_instruction(HOOK_EVERY),
            move |_, _| {
                if st.tick() {
                    Err(mlua::Error::RuntimeError(
                        "Script killed by user with SCRIPT KILL...".into(),
                    ))
                } else {
                    Ok(VmState::Continue)
                }
            },
        );
        let result = self.lua.scope(|scope| {
            let call = scope.create_function(|lua, argv: MultiValue| {
                script_call(lua, &unit, argv, limits, &resp3, &propagate, state)
            })?;
            let setresp = scope.create_function(|_, v: i64| {
                resp3.set(v == 3);
                Ok(())
            })?;
            let set_repl = scope.create_function(|_, v: i64| {
                propagate.set(v != 0);
                Ok(())
            })?;
            let acl_check = scope.create_function(|_, argv: MultiValue| {
                // nil: no such command (the prelude raises), else whether the caller may run it.
                let Some(args) = call_args(&argv)? else {
                    return Ok(None);
                };
                let Some(name) = args.first() else {
                    return Ok(None);
                };
                let lname = String::from_utf8_lossy(name).to_ascii_lowercase();
                let known = unit.borrow().spec(name).is_some()
                    || limits.host.is_some_and(|h| h.lookup(&lname).is_some());
                if !known {
                    return Ok(None);
                }
                let refs: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
                Ok(Some(
                    crate::current_guard().is_none_or(|g| g.check(&refs, false).is_ok()),
                ))
            })?;
            self.hooks.raw_set("call", call)?;
            self.hooks.raw_set("setresp", setresp)?;
            self.hooks.raw_set("set_repl", set_repl)?;
            self.hooks.raw_set("acl_check", acl_check)?;
            let killed = scope.create_function(|_, ()| Ok(state.killed()))?;
            self.hooks.raw_set("killed", killed)?;
            let (keys_t, args_t) = if fmode {
                (
                    Value::Table(self.array(keys)?),
                    Value::Table(self.array(args)?),
                )
            } else {
                (Value::Nil, Value::Nil)
            };
            let (ok, v): (bool, Value) =
                self.run
                    .call((f.clone(), self.handler.clone(), fmode, keys_t, args_t))?;
            let out = if ok {
                lua_to_out(&v, resp3.get())
            } else {
                error_out(&v, name)
            };
            for k in ["call", "setresp", "set_repl", "acl_check", "killed"] {
                self.hooks.raw_set(k, Value::Nil)?;
            }
            Ok(out)
        });
        self.lua.remove_hook();
        if !fmode {
            let g = self.lua.globals();
            g.raw_set("KEYS", Value::Nil)?;
            g.raw_set("ARGV", Value::Nil)?;
        }
        // Redis runs a GC step every 50 scripts; a small step after each keeps latency flat.
        let _ = self.lua.gc_step_kbytes(64);
        result
    }
}

/// The error reply of a failed script: `-<err> script: <name>, on <source>:<line>.`.
fn error_out(v: &Value, name: &str) -> Out {
    match v {
        Value::Table(t) => {
            if t.raw_get::<Option<bool>>(crate::conv::IGNORE_STATS)
                .ok()
                .flatten()
                .unwrap_or(false)
            {
                crate::set_final_error_counted(true);
            }
            let err = t.raw_get::<Option<mlua::String>>("err").ok().flatten();
            let msg = match err {
                Some(s) => s.to_string_lossy(),
                None => "ERR execution failure".to_string(),
            };
            let source = t.raw_get::<Option<mlua::String>>("source").ok().flatten();
            let line = t.raw_get::<Option<i64>>("line").ok().flatten();
            match (source, line) {
                (Some(s), Some(l)) => Out::err(format!(
                    "{msg} script: {name}, on {}:{l}.",
                    s.to_string_lossy()
                )),
                _ => Out::err(msg),
            }
        }
        Value::String(s) => Out::err(format!(
            "ERR Error running script {name}, {:.100}",
            s.to_string_lossy()
        )),
        _ => Out::err(format!(
            "ERR Error running script {name}, execution failure"
        )),
    }
}

/// First value of the arguments [`many_args`] packs: `(PACKED, table, n)`. Scripts cannot make
/// this light userdata (cjson.null is the null pointer).
pub(crate) const PACKED: *mut std::ffi::c_void = std::ptr::dangling_mut::<std::ffi::c_void>();

/// Calls with more arguments than this are packed into one table.
const PACK_ABOVE: c_int = 64;

/// `f` behind a C function that packs a long argument list into one table (`PACKED, table,
/// n`) before calling it. mlua turns a callback's arguments into values on its reference
/// stack (about 8,000 slots in all) and pushes them again to call on; Redis's `redis.call`
/// reads them in place, so `redis.call('lpush', 'l', unpack(t))` with 7,999 elements works
/// there. The wrapper is a C frame like Redis's, so a `return redis.call(...)` keeps the
/// script's frame.
fn many_args(lua: &Lua, f: Function) -> mlua::Result<Function> {
    unsafe extern "C-unwind" fn trampoline(state: *mut ffi::lua_State) -> c_int {
        // SAFETY: called by Lua as a C closure with one upvalue (the target function, set
        // in `many_args`); only Lua API calls on the caller's stack, within its limits: a C
        // function gets LUA_MINSTACK (20) free slots and this pushes at most 3 at once. A Lua
        // error (memory, or raised by the target) longjmps through this frame, which holds
        // nothing to drop.
        unsafe {
            let n = ffi::lua_gettop(state);
            if n > PACK_ABOVE {
                ffi::lua_createtable(state, n, 0);
                for i in 1..=n {
                    ffi::lua_pushvalue(state, i);
                    ffi::lua_rawseti(state, -2, ffi::lua_Integer::from(i));
                }
                ffi::lua_replace(state, 1);
                ffi::lua_settop(state, 1);
                ffi::lua_pushinteger(state, n as ffi::lua_Integer);
                ffi::lua_pushlightuserdata(state, PACKED);
                ffi::lua_insert(state, 1);
            }
            ffi::lua_pushvalue(state, ffi::lua_upvalueindex(1));
            ffi::lua_insert(state, 1);
            ffi::lua_call(state, ffi::lua_gettop(state) - 1, ffi::LUA_MULTRET);
            ffi::lua_gettop(state)
        }
    }
    // SAFETY: `exec_raw` pushes `f` and runs the closure in protected mode; it makes a C
    // closure of `trampoline` with `f` as its upvalue, which is left as the one result.
    unsafe {
        lua.exec_raw::<Function>(f, |state| {
            ffi::lua_pushcclosure(state, trampoline, 1);
        })
    }
}

/// `f` behind a C function that unpacks its result when `f` returns `PACKED, table, n` (the
/// table's items 1..=n become the results): a callback returning thousands of values
/// (`struct.unpack`) would otherwise hold each on mlua's reference stack. Lua's own limit on
/// a C function's stack (8,000 slots) is then the limit, as for the C library.
pub(crate) fn many_results(lua: &Lua, f: Function) -> mlua::Result<Function> {
    unsafe extern "C-unwind" fn trampoline(state: *mut ffi::lua_State) -> c_int {
        // SAFETY: called by Lua as a C closure with one upvalue (the target function, set in
        // `many_results`); only Lua API calls on the caller's stack: at most 2 pushes before
        // `lua_checkstack` reserves room for the unpacked results. A Lua error longjmps through
        // this frame, which holds nothing to drop.
        unsafe {
            ffi::lua_pushvalue(state, ffi::lua_upvalueindex(1));
            ffi::lua_insert(state, 1);
            ffi::lua_call(state, ffi::lua_gettop(state) - 1, ffi::LUA_MULTRET);
            let top = ffi::lua_gettop(state);
            if top == 3
                && ffi::lua_touserdata(state, 1) == PACKED
                && ffi::lua_type(state, 2) == ffi::LUA_TTABLE
            {
                let n = ffi::lua_tointeger(state, 3) as c_int;
                ffi::lua_settop(state, 2);
                ffi::lua_remove(state, 1);
                if n < 0 || ffi::lua_checkstack(state, n) == 0 {
                    return ffi::luaL_error(state, c"stack overflow (too many results)".as_ptr());
                }
                for i in 1..=n {
                    ffi::lua_rawgeti(state, 1, ffi::lua_Integer::from(i));
                }
                ffi::lua_remove(state, 1);
                return n;
            }
            top
        }
    }
    // SAFETY: as in `many_args`: a C closure of `trampoline` over `f`.
    unsafe {
        lua.exec_raw::<Function>(f, |state| {
            ffi::lua_pushcclosure(state, trampoline, 1);
        })
    }
}

/// The arguments of a `redis.call` as bytes, from the plain list or the table
/// [`many_args`] packed; `None` when one is not a string or a number.
fn call_args(argv: &MultiValue) -> mlua::Result<Option<Vec<Vec<u8>>>> {
    fn bytes(v: &Value) -> Option<Vec<u8>> {
        match v {
            Value::String(s) => Some(s.as_bytes().to_vec()),
            Value::Integer(n) => Some(n.to_string().into_bytes()),
            Value::Number(n) => Some(crate::libs::lua_number_string(*n).into_bytes()),
            _ => None,
        }
    }
    if let (Some(Value::LightUserData(m)), Some(Value::Table(t)), Some(Value::Integer(n))) =
        (argv.front(), argv.get(1), argv.get(2))
    {
        if m.0 == PACKED && argv.len() == 3 {
            let mut args = Vec::with_capacity(*n as usize);
            for i in 1..=*n {
                let v: Value = t.raw_get(i)?;
                match bytes(&v) {
                    Some(b) => args.push(b),
                    None => return Ok(None),
                }
            }
            return Ok(Some(args));
        }
    }
    let mut args = Vec::with_capacity(argv.len());
    for v in argv.iter() {
        match bytes(v) {
            Some(b) => args.push(b),
            None => return Ok(None),
        }
    }
    Ok(Some(args))
}

/// The message handler of every run (Redis's `__redis__err__handler`): turn the error value
/// into `{err=..., source=..., line=...}` with the innermost user-code frame.
fn err_handler(lua: &Lua, v: Value) -> mlua::Result<Table> {
    let t = match v {
        Value::Table(t) => t,
        other => {
            if let Value::Error(e) = &other {
                if let Some((msg, counted)) = script_error(e) {
                    let t = lua.create_table()?;
                    t.raw_set("err", msg)?;
                    if counted {
                        t.raw_set(crate::conv::IGNORE_STATS, true)?;
                    }
                    return with_position(lua, t);
                }
            }
            let msg = match &other {
                Value::String(s) => s.to_string_lossy(),
                Value::Error(e) => error_message(e),
                Value::Nil => "nil".to_string(),
                v => lua
                    .coerce_string(v.clone())
                    .ok()
                    .flatten()
                    .map(|s| s.to_string_lossy())
                    .unwrap_or_else(|| v.type_name().to_string()),
            };
            let t = lua.create_table()?;
            t.raw_set("err", format!("ERR {msg}"))?;
            t
        }
    };
    with_position(lua, t)
}

/// Add `source` and `line` of the innermost user-code frame to an error table.
fn with_position(lua: &Lua, t: Table) -> mlua::Result<Table> {
    for level in 1..64 {
        let Some(d) = lua.inspect_stack(level) else {
            break;
        };
        let src = d.source();
        let is_user = src
            .source
            .as_deref()
            .is_some_and(|s| s.starts_with("@user_"));
        if is_user {
            let source = src.source.as_deref().unwrap_or("").to_string();
            let line = d.curr_line();
            t.raw_set("source", source)?;
            t.raw_set("line", line)?;
            break;
        }
    }
    Ok(t)
}

/// An error raised by `redis.call` (the message of Redis's error table, code included), and
/// whether the host already counted it in its error statistics (the table's
/// `ignore_error_stats_update`, carried to the script's final error reply).
#[derive(Debug)]
struct ScriptError(String, bool);

impl std::fmt::Display for ScriptError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ScriptError {}

/// The message of an error raised from Rust: a [`ScriptError`]'s text as is (it carries its
/// code), any other error's text.
fn error_message(e: &mlua::Error) -> String {
    if let Some((s, _)) = script_error(e) {
        return s;
    }
    match e {
        mlua::Error::RuntimeError(s) => s.clone(),
        mlua::Error::CallbackError { cause, .. } => error_message(cause),
        mlua::Error::MemoryError(s) => s.clone(),
        other => other.to_string(),
    }
}

fn script_error(e: &mlua::Error) -> Option<(String, bool)> {
    match e {
        mlua::Error::ExternalError(x) => {
            x.downcast_ref::<ScriptError>().map(|s| (s.0.clone(), s.1))
        }
        mlua::Error::CallbackError { cause, .. } => script_error(cause),
        mlua::Error::WithContext { cause, .. } => script_error(cause),
        _ => None,
    }
}

/// `redis.call` / `redis.pcall`: run one command inside the unit. Returns the reply converted
/// to Lua and whether it is an error (redis.call raises it).
fn script_call(
    lua: &Lua,
    unit: &RefCell<&mut Atomic<'_>>,
    argv: MultiValue,
    limits: &Limits<'_>,
    resp3: &Cell<bool>,
    propagate: &Cell<bool>,
    state: &RunState,
) -> mlua::Result<(Value, bool)> {
    // Errors of the Lua API itself (no command yet): not counted anywhere, as Redis.
    let api_fail = |msg: &str| -> mlua::Result<(Value, bool)> {
        let t = lua.create_table()?;
        t.raw_set("err", push_error_text(msg))?;
        Ok((Value::Table(t), true))
    };
    if argv.is_empty() {
        return api_fail("Please specify at least one argument for this redis lib call");
    }
    let Some(args) = call_args(&argv)? else {
        return api_fail("Lua redis lib command arguments must be strings or integers");
    };
    let refs: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
    // The command's name once known, for the statistics of a refusal.
    let known: Cell<Option<&str>> = Cell::new(None);
    let host_name;
    // A refusal before the command runs (Redis's `scriptCall` `goto error`): counted as a
    // rejected call and an error reply, and marked so the script's reply is not counted again.
    let fail = |msg: &str| -> mlua::Result<(Value, bool)> {
        let text = push_error_text(msg);
        if let Some(h) = limits.host {
            h.after_call(known.get(), Some(&text), true);
        }
        let t = lua.create_table()?;
        t.raw_set("err", text)?;
        t.raw_set(crate::conv::IGNORE_STATS, true)?;
        Ok((Value::Table(t), true))
    };
    // The command ran: counted as a call (failed when it answered an error); its error table
    // is marked as counted.
    let ran = |name: &str, v: Value, error: Option<&str>| -> mlua::Result<(Value, bool)> {
        if let Some(h) = limits.host {
            h.after_call(Some(name), error, false);
        }
        if let (Some(_), Value::Table(t)) = (error, &v) {
            t.raw_set(crate::conv::IGNORE_STATS, true)?;
        }
        Ok((v, error.is_some()))
    };
    let mut unit = unit.borrow_mut();
    let Some(spec) = unit.spec(refs[0]) else {
        let name = String::from_utf8_lossy(refs[0]).to_ascii_lowercase();
        if let Some((host, cmd)) = limits.host.and_then(|h| h.lookup(&name).map(|c| (h, c))) {
            host_name = name;
            known.set(Some(host_name.as_str()));
            // Redis's scriptCall order: arity, then the deny-script flag.
            let argc = refs.len();
            let arity_ok = if cmd.arity >= 0 {
                argc == cmd.arity as usize
            } else {
                argc >= cmd.arity.unsigned_abs() as usize
            };
            if !arity_ok {
                return fail("Wrong number of args calling Redis command from script");
            }
            if cmd.noscript && !state.deny_disabled() {
                return fail("This Redis command is not allowed from script");
            }
            if let Some(g) = crate::current_guard() {
                if let Err(msg) = g.check(&refs, true) {
                    return fail(&msg);
                }
            }
            drop(unit);
            let out = host.call(&refs, resp3.get());
            let error = match &out {
                Out::Error(e) => Some(e.clone()),
                _ => None,
            };
            let v = if resp3.get() {
                crate::conv::out_to_lua(lua, out)?
            } else {
                reply_to_lua(lua, out.into_reply(), false, "")?
            };
            return ran(&host_name, v, error.as_deref());
        }
        if crate::SERVER_NOSCRIPT.contains(&name.as_str()) {
            return fail("This Redis command is not allowed from script");
        }
        return fail("Unknown Redis command called from script");
    };
    known.set(Some(spec.name));
    if !spec.arity_ok(refs.len()) {
        return fail("Wrong number of args calling Redis command from script");
    }
    if crate::NOSCRIPT.contains(&spec.name) {
        return fail("This Redis command is not allowed from script");
    }
    if let Some(g) = crate::current_guard() {
        if let Err(msg) = g.check(&refs, true) {
            return fail(&msg);
        }
    }
    if spec.is_write() {
        if let Some(msg) = limits.no_writes {
            return fail(msg);
        }
        if let Some(msg) = (limits.deny_write)().or_else(|| limits.host?.deny_write()) {
            return fail(&format!("-{msg}"));
        }
        if unit.oom()
            && !unit.wrote()
            && !limits.allow_oom
            && forkless_keyspace::memory::may_grow(spec.name)
        {
            return fail(&format!("-{}", forkless_keyspace::memory::OOM_ERROR));
        }
        if !state.mark_wrote() {
            return fail("Script killed by user with SCRIPT KILL...");
        }
    }
    unit.set_propagate(propagate.get());
    unit.set_from_script(true);
    let reply = unit.call(&refs);
    unit.set_from_script(false);
    drop(unit);
    let error = match &reply {
        Reply::Error(e) => Some(e.to_string()),
        _ => None,
    };
    let v = reply_to_lua(lua, reply, resp3.get(), spec.name)?;
    ran(spec.name, v, error.as_deref())
}

/// SHA1 of `data` as 40 lowercase hex digits.
pub fn sha1_hex(data: &[u8]) -> String {
    sha1_smol::Sha1::from(data).digest().to_string()
}

/// Redis's `redisSrand48`: the 48-bit state for `seed`.
fn srand48(seed: i32) -> u64 {
    (((seed as u32) as u64) << 16) | 0x330E
}

/// The initial state of Redis's generator (`rand.c`: x = {0x330E, 0xABCD, 0x1234}).
pub const RAND48_INIT: u64 = 0x1234_ABCD_330E;

/// Redis's `redisLrand48`: advance the 48-bit LCG, return its top 31 bits.
fn lrand48(state: &AtomicU64) -> i32 {
    let x = state.load(Ordering::Relaxed);
    let next = x.wrapping_mul(0x5_DEEC_E66D).wrapping_add(0xB) & ((1u64 << 48) - 1);
    state.store(next, Ordering::Relaxed);
    (next >> 17) as i32
}

/// `math.random` as Redis's `redis_math_random` (Lua 5.1's with `redisLrand48`).
fn math_random(state: &AtomicU64, args: MultiValue) -> mlua::Result<f64> {
    const MAX: i64 = i32::MAX as i64;
    let r = (lrand48(state) as i64 % MAX) as f64 / MAX as f64;
    let int_arg = |i: usize| -> mlua::Result<i64> {
        match args.get(i) {
            Some(Value::Integer(n)) => Ok(*n),
            Some(Value::Number(n)) => Ok(*n as i64),
            Some(Value::String(s)) => s
                .to_string_lossy()
                .trim()
                .parse::<f64>()
                .map(|n| n as i64)
                .map_err(|_| bad_arg(i + 1, "number expected, got string")),
            Some(v) => Err(bad_arg(
                i + 1,
                &format!("number expected, got {}", v.type_name()),
            )),
            None => Err(bad_arg(i + 1, "number expected, got no value")),
        }
    };
    match args.len() {
        0 => Ok(r),
        1 => {
            let u = int_arg(0)?;
            if u < 1 {
                return Err(bad_arg(1, "interval is empty"));
            }
            Ok((r * u as f64).floor() + 1.0)
        }
        2 => {
            let l = int_arg(0)?;
            let u = int_arg(1)?;
            if l > u {
                return Err(bad_arg(2, "interval is empty"));
            }
            Ok((r * (u - l + 1) as f64).floor() + l as f64)
        }
        _ => Err(mlua::Error::RuntimeError(
            "wrong number of arguments".into(),
        )),
    }
}

fn bad_arg(n: usize, msg: &str) -> mlua::Error {
    mlua::Error::RuntimeError(format!("bad argument #{n} to 'random' ({msg})"))
}
