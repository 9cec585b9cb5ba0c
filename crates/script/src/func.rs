//! Redis 7.0 functions: libraries of named Lua functions (`FUNCTION ...`, `FCALL`).
//!
//! A library is its code, whose first line is the metadata `#!lua name=<lib>`; loading it runs
//! the code once in the functions' Lua state with `redis.register_function` available, and
//! keeps the registered functions (name, callback, flags, description). Libraries persist as
//! their code: RDB_OPCODE_FUNCTION2 records, `FUNCTION LOAD` commands in the AOF, and the
//! `FUNCTION DUMP` payload:
//!
//! ```text
//! ( 0xF5 <RDB string: library code> )*  <u16 LE RDB version = 10>  <u64 LE CRC-64/REDIS of all before>
//! ```
//!
//! (the DUMP/RESTORE layout of `functions.c`, `rdbSaveFunctions` + `createDumpPayload`).

use std::cell::RefCell;
use std::collections::BTreeMap;

use forkless_keyspace::glob::matches as glob_match;
use mlua::{Function, Table, Value};

use crate::out::Out;
use crate::vm::Vm;
use crate::{flags, help, Scripting};

const BAD_NAME: &str = "Library names can only contain letters, numbers, or underscores(_) and must be at least one character long";

/// The RDB version written after a DUMP payload.
const DUMP_RDB_VERSION: u16 = 10;

struct Func {
    f: Function,
    flags: u32,
    desc: Option<String>,
}

struct Library {
    code: Vec<u8>,
    functions: BTreeMap<String, Func>,
}

/// The loaded libraries and the state their functions live in.
pub struct Functions {
    vm: Vm,
    libs: BTreeMap<String, Library>,
    /// How long a library's code may run while loading (Redis's 500 ms for clients; none while
    /// loading persisted libraries).
    pub(crate) load_timeout: Option<std::time::Duration>,
}

impl Functions {
    pub(crate) fn new(vm: Vm) -> Functions {
        Functions {
            vm,
            libs: BTreeMap::new(),
            load_timeout: Some(std::time::Duration::from_millis(500)),
        }
    }

    pub(crate) fn vm(&self) -> &Vm {
        &self.vm
    }

    /// The function `name`: its callback and flags.
    pub(crate) fn get(&self, name: &str) -> Option<(Function, u32)> {
        // Function names are case-insensitive (Redis's functions dict).
        self.libs
            .values()
            .flat_map(|l| l.functions.iter())
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, f)| (f.f.clone(), f.flags))
    }

    /// Number of libraries and of functions.
    pub fn counts(&self) -> (usize, usize) {
        (
            self.libs.len(),
            self.libs.values().map(|l| l.functions.len()).sum(),
        )
    }

    /// Bytes of the libraries' code (INFO's `used_memory_functions`, approximate).
    pub fn code_bytes(&self) -> usize {
        self.libs.values().map(|l| l.code.len()).sum()
    }

    /// Every library's code, by library name.
    pub fn codes(&self) -> Vec<Vec<u8>> {
        self.libs.values().map(|l| l.code.clone()).collect()
    }

    /// Remove every library.
    pub fn flush(&mut self) {
        self.libs.clear();
    }

    /// Redis's `functionsCreateWithLibraryCtx`: parse the metadata, run the code, register its
    /// functions. Returns the library name.
    pub fn load(&mut self, code: &[u8], replace: bool) -> Result<String, String> {
        let (name, body_start) = metadata(code)?;
        if !valid_name(&name) {
            return Err(BAD_NAME.into());
        }
        if self.libs.contains_key(&name) && !replace {
            return Err(format!("Library '{name}' already exists"));
        }
        let functions = self.run_library(&code[body_start..])?;
        if functions.is_empty() {
            return Err("No functions registered".into());
        }
        for fname in functions.keys() {
            let clash = self.libs.iter().any(|(lib, l)| {
                *lib != name && l.functions.keys().any(|n| n.eq_ignore_ascii_case(fname))
            });
            if clash {
                return Err(format!("Function {fname} already exists"));
            }
        }
        self.libs.insert(
            name.clone(),
            Library {
                code: code.to_vec(),
                functions,
            },
        );
        Ok(name)
    }

    fn run_library(&self, body: &[u8]) -> Result<BTreeMap<String, Func>, String> {
        let chunk = self
            .vm
            .compile(body, "@user_function")
            .map_err(|e| format!("Error compiling function: {e}"))?;
        let lua = self.vm.lua();
        let registered: RefCell<BTreeMap<String, Func>> = RefCell::new(BTreeMap::new());
        let r: mlua::Result<Result<(), String>> = lua.scope(|scope| {
            let reg = scope.create_function(|_, args: mlua::MultiValue| {
                Ok(match register_args(args) {
                    Ok((name, f, fl, desc)) => {
                        let mut m = registered.borrow_mut();
                        if !valid_name(&name) {
                            (false, BAD_NAME.to_string())
                        } else if m.keys().any(|n| n.eq_ignore_ascii_case(&name)) {
                            (false, "Function already exists in the library".to_string())
                        } else {
                            m.insert(name, Func { f, flags: fl, desc });
                            (true, String::new())
                        }
                    }
                    Err(e) => (false, e),
                })
            })?;
            self.vm.hooks().raw_set("register", reg)?;
            let handler = lua.create_function(|lua, v: Value| {
                Ok(match v {
                    Value::Table(t) => t,
                    other => {
                        let t = lua.create_table()?;
                        let msg = match other {
                            Value::String(s) => s.to_string_lossy(),
                            Value::Error(e) => e.to_string(),
                            v => v.type_name().to_string(),
                        };
                        t.raw_set("err", format!("ERR {msg}"))?;
                        t
                    }
                })
            })?;
            let xpcall: Function = lua.globals().raw_get("xpcall")?;
            self.vm.set_loading(true)?;
            if let Some(limit) = self.load_timeout {
                let start = std::time::Instant::now();
                lua.set_hook(
                    mlua::HookTriggers::new().every_nth_instruction(100_000),
                    move |_, _| {
                        if start.elapsed() > limit {
                            Err(mlua::Error::RuntimeError("FUNCTION LOAD timeout".into()))
                        } else {
                            Ok(mlua::VmState::Continue)
                        }
                    },
                );
            }
            let r = xpcall.call::<(bool, Value)>((chunk.clone(), handler));
            lua.remove_hook();
            self.vm.set_loading(false)?;
            self.vm.hooks().raw_set("register", Value::Nil)?;
            let (ok, err) = r?;
            if ok {
                return Ok(Ok(()));
            }
            let msg = match err {
                Value::Table(t) => t
                    .raw_get::<Option<String>>("err")
                    .ok()
                    .flatten()
                    .unwrap_or_else(|| "ERR unknown error".into()),
                _ => "ERR unknown error".into(),
            };
            Ok(Err(format!("Error registering functions: {msg}")))
        });
        match r {
            Ok(Ok(())) => Ok(registered.into_inner()),
            Ok(Err(e)) => Err(e),
            Err(e) => Err(format!("Error registering functions: {e}")),
        }
    }
}

/// `#!<engine> name=<lib>` → (name, where the code after the metadata line starts: its
/// newline is kept so line numbers stay the user's).
fn metadata(code: &[u8]) -> Result<(String, usize), String> {
    if !code.starts_with(b"#!") {
        return Err("Missing library metadata".into());
    }
    let Some(end) = code.iter().position(|&b| b == b'\n') else {
        return Err("Invalid library metadata".into());
    };
    // Redis splits the line with sdssplitargs: `name="foo"` names the library foo.
    let Some(split) = forkless_resp::sds::split_args(&code[..end]) else {
        return Err("Invalid library metadata".into());
    };
    let owned: Vec<String> = split
        .iter()
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .collect();
    let parts: Vec<&str> = owned.iter().map(String::as_str).collect();
    let Some(first) = parts.first() else {
        return Err("Invalid library metadata".into());
    };
    let engine = &first[2..];
    let mut name = None;
    for p in &parts[1..] {
        if p.len() >= 5 && p[..5].eq_ignore_ascii_case("name=") {
            if name.is_some() {
                return Err(
                    "Invalid metadata value, name argument was given multiple times".into(),
                );
            }
            name = Some(p[5..].to_string());
            continue;
        }
        return Err(format!("Invalid metadata value given: {p}"));
    }
    let Some(name) = name else {
        return Err("Library name was not given".into());
    };
    if !valid_name(&name) {
        return Err(BAD_NAME.into());
    }
    if !engine.eq_ignore_ascii_case("lua") {
        return Err(format!("Engine '{engine}' not found"));
    }
    Ok((name, end))
}

fn valid_name(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

type Registered = (String, Function, u32, Option<String>);

/// `redis.register_function(name, callback)` or `redis.register_function{function_name=...,
/// callback=..., flags={...}, description=...}` (Redis's messages).
fn register_args(args: mlua::MultiValue) -> Result<Registered, String> {
    match args.len() {
        1 => {
            let Some(Value::Table(t)) = args.front() else {
                return Err("calling redis.register_function with a single argument is only applicable to Lua table (representing named arguments).".into());
            };
            named_args(t)
        }
        2 => {
            let name = match &args[0] {
                Value::String(s) => s.to_string_lossy(),
                _ => {
                    return Err("first argument to redis.register_function must be a string".into())
                }
            };
            let f = match &args[1] {
                Value::Function(f) => f.clone(),
                _ => {
                    return Err(
                        "second argument to redis.register_function must be a function".into(),
                    )
                }
            };
            Ok((name, f, 0, None))
        }
        _ => Err("wrong number of arguments to redis.register_function".into()),
    }
}

fn named_args(t: &Table) -> Result<Registered, String> {
    let mut name = None;
    let mut f = None;
    let mut fl = 0u32;
    let mut desc = None;
    for pair in t.clone().pairs::<Value, Value>() {
        let (k, v) = pair.map_err(|e| e.to_string())?;
        let Value::String(k) = k else {
            return Err(
                "named argument key given to redis.register_function is not a string".into(),
            );
        };
        match k.to_string_lossy().as_str() {
            "function_name" => {
                match v {
                    Value::String(s) => name = Some(s.to_string_lossy()),
                    _ => return Err(
                        "function_name argument given to redis.register_function must be a string"
                            .into(),
                    ),
                }
            }
            "description" => {
                match v {
                    Value::String(s) => desc = Some(s.to_string_lossy()),
                    _ => return Err(
                        "description argument given to redis.register_function must be a string"
                            .into(),
                    ),
                }
            }
            "callback" => match v {
                Value::Function(func) => f = Some(func),
                _ => {
                    return Err(
                        "callback argument given to redis.register_function must be a function"
                            .into(),
                    )
                }
            },
            "flags" => {
                let bad = "flags argument to redis.register_function must be a table representing function flags";
                let Value::Table(ft) = v else {
                    return Err(bad.into());
                };
                let mut j = 1;
                loop {
                    let item: Value = ft.raw_get(j).map_err(|e| e.to_string())?;
                    match item {
                        Value::Nil => break,
                        Value::String(s) => {
                            let s = s.to_string_lossy();
                            match flags::NAMES
                                .iter()
                                .find(|(n, _)| n.eq_ignore_ascii_case(&s))
                            {
                                Some((_, v)) => fl |= v,
                                None => return Err("unknown flag given".into()),
                            }
                        }
                        _ => return Err("unknown flag given".into()),
                    }
                    j += 1;
                }
            }
            _ => return Err("unknown argument given to redis.register_function".into()),
        }
    }
    let Some(name) = name else {
        return Err("redis.register_function must get a function name argument".into());
    };
    let Some(f) = f else {
        return Err("redis.register_function must get a callback argument".into());
    };
    Ok((name, f, fl, desc))
}

/// `FUNCTION <sub> ...` (KILL is answered by the caller without the VM lock).
pub(crate) fn command(
    s: &Scripting,
    propagate: &dyn Fn(&[&[u8]]),
    argv: &[&[u8]],
    sub: &str,
) -> Out {
    let n = argv.len();
    match sub {
        "load" if n >= 3 => {
            let mut replace = false;
            let mut i = 2;
            while i < n - 1 {
                if argv[i].eq_ignore_ascii_case(b"replace") {
                    replace = true;
                    i += 1;
                    continue;
                }
                return Out::err(format!(
                    "ERR Unknown option given: {}",
                    String::from_utf8_lossy(argv[i])
                ));
            }
            if i >= n {
                return Out::err("ERR Function code is missing");
            }
            match s.functions_mut(|f| f.load(argv[i], replace)) {
                Ok(name) => {
                    propagate(argv);
                    Out::Bulk(name.into_bytes())
                }
                Err(e) => Out::err(format!("ERR {e}")),
            }
        }
        "delete" if n == 3 => {
            let name = String::from_utf8_lossy(argv[2]).into_owned();
            if s.functions_mut(|f| f.libs.remove(&name)).is_none() {
                return Out::err("ERR Library not found");
            }
            propagate(argv);
            Out::ok()
        }
        "flush" if n <= 3 => {
            if let Some(mode) = argv.get(2) {
                if !mode.eq_ignore_ascii_case(b"sync") && !mode.eq_ignore_ascii_case(b"async") {
                    return Out::err("ERR FUNCTION FLUSH only supports SYNC|ASYNC option");
                }
            }
            s.functions_mut(|f| f.flush());
            propagate(argv);
            Out::ok()
        }
        "list" => list(s, argv),
        "dump" if n == 2 => Out::Bulk(dump(&s.library_codes())),
        "restore" if n == 3 || n == 4 => {
            let policy = match argv.get(3) {
                None => "append".to_string(),
                Some(p) => String::from_utf8_lossy(p).to_ascii_lowercase(),
            };
            if !matches!(policy.as_str(), "append" | "replace" | "flush") {
                return Out::err("ERR Wrong restore policy given, value should be either FLUSH, APPEND or REPLACE.");
            }
            let codes = match undump(argv[2]) {
                Ok(c) => c,
                Err(e) => return Out::err(format!("ERR {e}")),
            };
            let r = s.functions_mut(|f| restore(f, &codes, &policy));
            match r {
                Ok(()) => {
                    propagate(argv);
                    Out::ok()
                }
                Err(e) => Out::err(format!("ERR {e}")),
            }
        }
        "help" if n == 2 => help(&[
            "FUNCTION <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "LOAD [REPLACE] <FUNCTION CODE>",
            "DELETE <LIBRARY NAME>",
            "LIST [LIBRARYNAME PATTERN] [WITHCODE]",
            "FLUSH [ASYNC|SYNC]",
            "DUMP",
            "RESTORE <PAYLOAD> [FLUSH|APPEND|REPLACE]",
            "STATS",
            "KILL",
            "HELP",
        ]),
        "load" | "delete" | "flush" | "stats" | "dump" | "restore" | "help" | "kill" => {
            Out::err(format!(
            "ERR unknown subcommand or wrong number of arguments for '{sub}'. Try FUNCTION HELP."
        ))
        }
        _ => Out::err(format!(
            "ERR unknown subcommand '{}'. Try FUNCTION HELP.",
            String::from_utf8_lossy(argv.get(1).copied().unwrap_or(b""))
        )),
    }
}

fn list(s: &Scripting, argv: &[&[u8]]) -> Out {
    let mut with_code = false;
    let mut pattern: Option<&[u8]> = None;
    let mut i = 2;
    while i < argv.len() {
        let a = argv[i];
        if !with_code && a.eq_ignore_ascii_case(b"withcode") {
            with_code = true;
        } else if pattern.is_none() && a.eq_ignore_ascii_case(b"libraryname") {
            if i >= argv.len() - 1 {
                return Out::err("ERR library name argument was not given");
            }
            i += 1;
            pattern = Some(argv[i]);
        } else {
            return Out::err(format!(
                "ERR Unknown argument {}",
                String::from_utf8_lossy(a)
            ));
        }
        i += 1;
    }
    s.functions_mut(|f| {
        let mut out = Vec::new();
        for (name, lib) in &f.libs {
            if let Some(p) = pattern {
                if !glob_match(p, name.as_bytes(), true) {
                    continue;
                }
            }
            let funcs = lib
                .functions
                .iter()
                .map(|(fname, func)| {
                    let fl = flags::NAMES
                        .iter()
                        .filter(|(_, v)| func.flags & v != 0)
                        .map(|(n, _)| Out::Status((*n).to_string()))
                        .collect();
                    Out::Map(vec![
                        (
                            Out::Bulk(b"name".to_vec()),
                            Out::Bulk(fname.clone().into_bytes()),
                        ),
                        (
                            Out::Bulk(b"description".to_vec()),
                            match &func.desc {
                                Some(d) => Out::Bulk(d.clone().into_bytes()),
                                None => Out::Null,
                            },
                        ),
                        (Out::Bulk(b"flags".to_vec()), Out::Set(fl)),
                    ])
                })
                .collect();
            let mut m = vec![
                (
                    Out::Bulk(b"library_name".to_vec()),
                    Out::Bulk(name.clone().into_bytes()),
                ),
                (Out::Bulk(b"engine".to_vec()), Out::Bulk(b"LUA".to_vec())),
                (Out::Bulk(b"functions".to_vec()), Out::Array(funcs)),
            ];
            if with_code {
                m.push((
                    Out::Bulk(b"library_code".to_vec()),
                    Out::Bulk(lib.code.clone()),
                ));
            }
            out.push(Out::Map(m));
        }
        Out::Array(out)
    })
}

fn restore(f: &mut Functions, codes: &[Vec<u8>], policy: &str) -> Result<(), String> {
    let saved = std::mem::take(&mut f.libs);
    if policy != "flush" {
        f.libs = saved
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    Library {
                        code: v.code.clone(),
                        functions: v
                            .functions
                            .iter()
                            .map(|(n, x)| {
                                (
                                    n.clone(),
                                    Func {
                                        f: x.f.clone(),
                                        flags: x.flags,
                                        desc: x.desc.clone(),
                                    },
                                )
                            })
                            .collect(),
                    },
                )
            })
            .collect();
    }
    for code in codes {
        if let Err(e) = f.load(code, policy == "replace") {
            f.libs = saved;
            // RESTORE names the colliding library without quotes (functionsLibCtxFunctionsMerge).
            return Err(e
                .replace("Library '", "Library ")
                .replace("' already", " already"));
        }
    }
    Ok(())
}

/// The FUNCTION DUMP payload of `codes` (see the module docs).
pub fn dump(codes: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for c in codes {
        out.push(forkless_rdb::constants::OPCODE_FUNCTION2);
        put_len(&mut out, c.len() as u64);
        out.extend_from_slice(c);
    }
    out.extend_from_slice(&DUMP_RDB_VERSION.to_le_bytes());
    let crc = forkless_rdb::crc::crc64(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// RDB length encoding (6-bit, 14-bit big-endian, 32-bit big-endian, 64-bit big-endian).
fn put_len(out: &mut Vec<u8>, n: u64) {
    if n < 1 << 6 {
        out.push(n as u8);
    } else if n < 1 << 14 {
        out.push(0x40 | (n >> 8) as u8);
        out.push(n as u8);
    } else if n <= u32::MAX as u64 {
        out.push(0x80);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    } else {
        out.push(0x81);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

/// Parse a FUNCTION DUMP payload (ours or Redis's, whose strings may be LZF-compressed): check
/// the version and CRC, then read the records with the RDB reader.
pub fn undump(payload: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    const BAD: &str = "payload version or checksum are wrong";
    if payload.len() < 10 {
        return Err(BAD.into());
    }
    let (body, footer) = payload.split_at(payload.len() - 10);
    let version = u16::from_le_bytes([footer[0], footer[1]]);
    if version > 10 {
        return Err(BAD.into());
    }
    let crc = u64::from_le_bytes(footer[2..10].try_into().map_err(|_| BAD.to_string())?);
    let mut covered = body.to_vec();
    covered.extend_from_slice(&footer[..2]);
    if crc != 0 && crc != forkless_rdb::crc::crc64(&covered) {
        return Err(BAD.into());
    }
    // Wrap the records in a minimal RDB file (no checksum) and read them back.
    let mut file = b"REDIS0010".to_vec();
    file.extend_from_slice(body);
    file.push(forkless_rdb::constants::OPCODE_EOF);
    file.extend_from_slice(&[0u8; 8]);
    let mut r = forkless_rdb::RdbReader::new(&file[..]).map_err(|e| e.to_string())?;
    let mut codes = Vec::new();
    loop {
        match r.next_item().map_err(|e| format!("{BAD}: {e}"))? {
            Some(forkless_rdb::Item::Function { code }) => codes.push(code),
            Some(forkless_rdb::Item::End { .. }) | None => break,
            _ => return Err("given type is not a function".into()),
        }
    }
    Ok(codes)
}
