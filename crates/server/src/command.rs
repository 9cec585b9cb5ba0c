//! Introspection commands: COMMAND, CLIENT LIST/KILL/UNBLOCK, OBJECT, MEMORY, DEBUG.
//!
//! Field names and formats follow Redis 7.0.15 (`networking.c` `catClientInfoString`,
//! `server.c` `commandCommand`, `object.c`). OBJECT ENCODING is derived from the value's current
//! size and contents with redis.conf's thresholds (forkless keeps one representation per type;
//! Redis's encodings are sticky once converted, ours follow the contents).

use std::time::Duration;

use forkless_keyspace::value::Value;
use forkless_keyspace::{Reply, Session};
use forkless_sync::atomic::Ordering;

use crate::blocking;
use crate::conn::Conn;
use crate::exec::{bad_subcommand, SERVER_COMMANDS};
use crate::frame::Frame;
use crate::state::{ClientEntry, Event, Shared};

fn lower(a: &[u8]) -> String {
    String::from_utf8_lossy(a).to_ascii_lowercase()
}

/// A command as COMMAND shows it: name, arity, flags, (first key, last key, step).
type CmdInfo = (String, i32, Vec<&'static str>, (i32, i32, i32));

/// Every command name with its arity and flags.
fn all_commands(shared: &Shared) -> Vec<CmdInfo> {
    let mut v: Vec<CmdInfo> = Vec::new();
    for (n, a) in SERVER_COMMANDS {
        v.push((n.to_string(), *a, vec!["fast"], (0, 0, 0)));
    }
    for (n, a) in blocking::COMMANDS {
        let keys = match *n {
            "blmpop" | "bzmpop" => (0, 0, 0),
            "brpoplpush" | "blmove" => (1, 2, 1),
            _ => (1, -2, 1),
        };
        v.push((n.to_string(), *a, vec!["write", "blocking"], keys));
    }
    for spec in shared.table.iter() {
        let mut flags = Vec::new();
        if spec.is_write() {
            flags.push("write");
        } else {
            flags.push("readonly");
        }
        v.push((
            spec.name.to_string(),
            spec.arity,
            flags,
            (spec.first_key, spec.last_key, spec.step),
        ));
    }
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v.dedup_by(|a, b| a.0 == b.0);
    v
}

fn info_entry(c: &CmdInfo) -> Frame {
    Frame::Array(vec![
        Frame::bulk(c.0.clone()),
        Frame::Int(c.1.into()),
        Frame::Set(c.2.iter().map(|f| Frame::Simple((*f).into())).collect()),
        Frame::Int(c.3 .0.into()),
        Frame::Int(c.3 .1.into()),
        Frame::Int(c.3 .2.into()),
        Frame::Set(Vec::new()),
        Frame::Set(Vec::new()),
        Frame::Array(Vec::new()),
        Frame::Array(Vec::new()),
    ])
}

/// COMMAND [COUNT | INFO name... | DOCS name... | LIST | GETKEYS cmd args...].
pub fn command(conn: &mut Conn, argv: &[Vec<u8>]) -> Frame {
    let all = all_commands(&conn.shared);
    if argv.len() == 1 {
        return Frame::Array(all.iter().map(info_entry).collect());
    }
    let find = |n: &[u8]| all.iter().find(|c| c.0.as_bytes().eq_ignore_ascii_case(n));
    match lower(&argv[1]).as_str() {
        "count" => Frame::Int(all.len() as i64),
        "list" => Frame::Array(all.iter().map(|c| Frame::bulk(c.0.clone())).collect()),
        "info" => {
            if argv.len() == 2 {
                return Frame::Array(all.iter().map(info_entry).collect());
            }
            Frame::Array(
                argv[2..]
                    .iter()
                    .map(|n| find(n).map_or(Frame::NullArray, info_entry))
                    .collect(),
            )
        }
        "docs" => {
            let names: Vec<&CmdInfo> = if argv.len() == 2 {
                all.iter().collect()
            } else {
                argv[2..].iter().filter_map(|n| find(n)).collect()
            };
            Frame::Map(
                names
                    .into_iter()
                    .map(|c| {
                        (
                            Frame::bulk(c.0.clone()),
                            Frame::Map(vec![
                                (
                                    Frame::bulk("summary"),
                                    Frame::bulk(format!("The {} command", c.0.to_uppercase())),
                                ),
                                (Frame::bulk("since"), Frame::bulk("1.0.0")),
                                (Frame::bulk("group"), Frame::bulk("generic")),
                            ]),
                        )
                    })
                    .collect(),
            )
        }
        "getkeys" if argv.len() >= 3 => {
            let Some(spec) = conn.shared.table.lookup(&argv[2]) else {
                return Frame::err("ERR Invalid command specified");
            };
            let args = &argv[2..];
            if !spec.arity_ok(args.len()) {
                return Frame::err("ERR Invalid number of arguments specified for command");
            }
            let keys: Vec<Frame> = spec
                .key_indices(args.len())
                .map(|i| Frame::Bulk(args[i].clone()))
                .collect();
            if keys.is_empty() {
                return Frame::err("ERR The command has no key arguments");
            }
            Frame::Array(keys)
        }
        _ => bad_subcommand(
            "command",
            &argv[1],
            &["count", "list", "info", "docs", "getkeys"],
        ),
    }
}

/// One CLIENT LIST line (without the newline).
pub fn client_line(_shared: &Shared, e: &ClientEntry) -> String {
    let m = e.meta.lock().clone();
    let mut flags = String::new();
    if m.blocked {
        flags.push('b');
    }
    if m.sub + m.psub > 0 {
        flags.push('P');
    }
    if m.multi >= 0 {
        flags.push('x');
    }
    if flags.is_empty() {
        flags.push('N');
    }
    format!(
        "id={} addr={} laddr={} fd={} name={} age={} idle={} flags={} db={} sub={} psub={} ssub=0 multi={} qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 rbs=16384 rbp=0 obl=0 oll=0 omem=0 tot-mem=0 events=r cmd={} user=default redir=-1 resp={}",
        e.id,
        e.addr,
        e.laddr,
        e.id + 7,
        m.name,
        e.created.elapsed().as_secs(),
        m.last_active.elapsed().as_secs(),
        flags,
        m.db,
        m.sub - m.psub.min(m.sub),
        m.psub,
        m.multi,
        m.last_cmd,
        m.resp
    )
}

/// CLIENT LIST [TYPE t] [ID id...].
pub fn client_list(conn: &mut Conn, args: &[Vec<u8>]) -> Frame {
    let mut ids: Option<Vec<u64>> = None;
    let mut ty: Option<String> = None;
    let mut i = 0;
    while i < args.len() {
        let a = lower(&args[i]);
        if a == "type" && i + 1 < args.len() {
            let t = lower(&args[i + 1]);
            if !matches!(
                t.as_str(),
                "normal" | "master" | "replica" | "slave" | "pubsub"
            ) {
                return Frame::err(format!("ERR Unknown client type '{t}'"));
            }
            ty = Some(t);
            i += 2;
        } else if a == "id" && i + 1 < args.len() {
            let mut v = Vec::new();
            for x in &args[i + 1..] {
                match std::str::from_utf8(x)
                    .ok()
                    .and_then(|s| s.parse::<u64>().ok())
                {
                    Some(n) if n > 0 => v.push(n),
                    _ => return Frame::err("ERR Invalid client ID"),
                }
            }
            ids = Some(v);
            i = args.len();
        } else {
            return Frame::syntax();
        }
    }
    let clients: Vec<_> = conn.shared.clients.lock().values().cloned().collect();
    let mut out = String::new();
    for c in clients {
        if ids.as_ref().is_some_and(|v| !v.contains(&c.id)) {
            continue;
        }
        if let Some(t) = &ty {
            let m = c.meta.lock();
            let is_pubsub = m.sub + m.psub > 0;
            let ok = match t.as_str() {
                "normal" => !is_pubsub,
                "pubsub" => is_pubsub,
                _ => false,
            };
            if !ok {
                continue;
            }
        }
        out.push_str(&client_line(&conn.shared, &c));
        out.push('\n');
    }
    Frame::Verbatim(out.into_bytes())
}

/// CLIENT KILL addr | CLIENT KILL [ID id] [ADDR a] [LADDR a] [TYPE t] [USER u] [SKIPME yes/no].
pub fn client_kill(conn: &mut Conn, args: &[Vec<u8>]) -> Frame {
    let clients: Vec<_> = conn.shared.clients.lock().values().cloned().collect();
    if args.len() == 1 {
        let addr = String::from_utf8_lossy(&args[0]).into_owned();
        return match clients.iter().find(|c| c.addr == addr) {
            Some(c) => {
                let _ = c.tx.send(Event::Kill);
                Frame::ok()
            }
            None => Frame::err("ERR No such client"),
        };
    }
    if args.is_empty() || !args.len().is_multiple_of(2) {
        return Frame::syntax();
    }
    let mut id = None;
    let mut addr = None;
    let mut laddr = None;
    let mut ty = None;
    let mut skipme = true;
    for pair in args.chunks(2) {
        let v = String::from_utf8_lossy(&pair[1]).into_owned();
        match lower(&pair[0]).as_str() {
            "id" => match v.parse::<u64>() {
                Ok(n) if n > 0 => id = Some(n),
                _ => return Frame::err("ERR client-id should be greater than 0"),
            },
            "addr" => addr = Some(v),
            "laddr" => laddr = Some(v),
            "type" => {
                let t = v.to_ascii_lowercase();
                if !matches!(
                    t.as_str(),
                    "normal" | "master" | "replica" | "slave" | "pubsub"
                ) {
                    return Frame::err(format!("ERR Unknown client type '{v}'"));
                }
                ty = Some(t);
            }
            "user" => {
                if v != "default" {
                    return Frame::err(format!("ERR No such user '{v}'"));
                }
            }
            "skipme" => match v.to_ascii_lowercase().as_str() {
                "yes" => skipme = true,
                "no" => skipme = false,
                _ => return Frame::syntax(),
            },
            _ => return Frame::syntax(),
        }
    }
    let mut n = 0;
    for c in clients {
        if skipme && c.id == conn.entry.id {
            continue;
        }
        if id.is_some_and(|i| i != c.id)
            || addr.as_ref().is_some_and(|a| *a != c.addr)
            || laddr.as_ref().is_some_and(|a| *a != c.laddr)
        {
            continue;
        }
        if let Some(t) = &ty {
            let m = c.meta.lock();
            let is_pubsub = m.sub + m.psub > 0;
            if !((t == "pubsub" && is_pubsub) || (t == "normal" && !is_pubsub)) {
                continue;
            }
        }
        let _ = c.tx.send(Event::Kill);
        n += 1;
    }
    Frame::Int(n)
}

/// CLIENT UNBLOCK id [TIMEOUT|ERROR].
pub fn client_unblock(conn: &mut Conn, argv: &[Vec<u8>]) -> Frame {
    let Some(id) = std::str::from_utf8(&argv[2])
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
    else {
        return Frame::err("ERR value is not an integer or out of range");
    };
    let error = match argv.get(3).map(|a| lower(a)) {
        None => false,
        Some(m) if m == "timeout" => false,
        Some(m) if m == "error" => true,
        Some(_) => return Frame::err("ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR"),
    };
    let target = conn.shared.clients.lock().get(&id).cloned();
    match target {
        Some(c) if c.meta.lock().blocked => {
            let _ = c.tx.send(Event::Unblock { error });
            Frame::Int(1)
        }
        _ => Frame::Int(0),
    }
}

/// The encoding OBJECT ENCODING reports for a value (redis.conf's default thresholds).
fn encoding(v: &Value) -> &'static str {
    match v {
        Value::String(s) => {
            if s.len() <= 20 && forkless_keyspace::convert::parse_i64(s).is_some() {
                "int"
            } else if s.len() <= 44 {
                "embstr"
            } else {
                "raw"
            }
        }
        // Redis 7.0 lists are always quicklists (listpack lists came with 7.2).
        Value::List(_) => "quicklist",
        Value::Set(s) => {
            if s.len() <= 512
                && s.iter()
                    .all(|m| forkless_keyspace::convert::parse_i64(m).is_some())
            {
                "intset"
            } else {
                "hashtable"
            }
        }
        Value::ZSet(z) => {
            if z.len() <= 128 && z.iter().all(|(m, _)| m.len() <= 64) {
                "listpack"
            } else {
                "skiplist"
            }
        }
        Value::Hash(h) => {
            if h.len() <= 128 && h.iter().all(|(f, v)| f.len() <= 64 && v.len() <= 64) {
                "listpack"
            } else {
                "hashtable"
            }
        }
    }
}

fn approx_size(v: &Value) -> usize {
    match v {
        Value::String(s) => 16 + s.len(),
        Value::List(l) => 32 + l.iter().map(|e| e.len() + 11).sum::<usize>(),
        Value::Set(s) => 32 + s.iter().map(|e| e.len() + 24).sum::<usize>(),
        Value::ZSet(z) => 32 + z.iter().map(|(m, _)| m.len() + 40).sum::<usize>(),
        Value::Hash(h) => 32 + h.iter().map(|(f, v)| f.len() + v.len() + 24).sum::<usize>(),
    }
}

/// Look at the live value of `key` in `db` with `f`.
fn with_value<R>(shared: &Shared, db: u32, key: &[u8], f: impl FnOnce(&Value) -> R) -> Option<R> {
    // EXISTS first: it expires the key lazily when its time has passed.
    let mut s = Session { db };
    if shared.ks.execute(&mut s, &[b"EXISTS", key]) != Reply::Integer(1) {
        return None;
    }
    let h = shared.ks.hash_key(key);
    let shard = shared.ks.shard_of(h);
    shared.ks.with_shard(shard, |sh| {
        sh.db(db).find(h, key).map(|slot| f(&slot.value))
    })
}

/// OBJECT, MEMORY and DEBUG.
pub fn introspect(conn: &mut Conn, name: &str, argv: &[Vec<u8>]) -> Frame {
    let sub = lower(&argv[1]);
    let db = conn.session.db;
    match (name, sub.as_str(), argv.len()) {
        ("object", "encoding", 3) => {
            with_value(&conn.shared, db, &argv[2], encoding).map_or(Frame::Null, Frame::bulk)
        }
        ("object", "refcount", 3) => {
            with_value(&conn.shared, db, &argv[2], |_| ()).map_or(Frame::Null, |_| Frame::Int(1))
        }
        ("object", "idletime", 3) => {
            with_value(&conn.shared, db, &argv[2], |_| ()).map_or(Frame::Null, |_| Frame::Int(0))
        }
        ("object", "freq", 3) => Frame::err(
            "ERR An LFU maxmemory policy is not selected, access frequency not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.",
        ),
        ("memory", "usage", 3 | 5) => with_value(&conn.shared, db, &argv[2], approx_size)
            .map_or(Frame::Null, |n| Frame::Int(n as i64)),
        ("debug", _, _) => {
            let mode = conn.shared.opts.lock().enable_debug_command.clone();
            let local = conn.entry.addr.starts_with("127.") || conn.entry.addr.starts_with("[::1]");
            if mode == "no" || (mode == "local" && !local) {
                return Frame::err("ERR DEBUG command not allowed. If the enable-debug-command option is set to \"local\", you can run it from a local connection, otherwise you need to set this option in the configuration file, and then restart the server.");
            }
            match (sub.as_str(), argv.len()) {
                ("sleep", 3) => {
                    let secs: f64 = String::from_utf8_lossy(&argv[2]).parse().unwrap_or(0.0);
                    std::thread::sleep(Duration::from_secs_f64(secs.clamp(0.0, 3600.0)));
                    Frame::ok()
                }
                ("set-active-expire", 3) => {
                    conn.shared
                        .active_expire
                        .store(argv[2] != b"0", Ordering::SeqCst);
                    Frame::ok()
                }
                ("change-repl-id", 2) | ("quicklist-packed-threshold", 3) | ("stringmatch-len", _) => {
                    Frame::ok()
                }
                _ => bad_subcommand("debug", &argv[1], &["sleep", "set-active-expire", "change-repl-id"]),
            }
        }
        _ => bad_subcommand(
            name,
            &argv[1],
            &["encoding", "refcount", "idletime", "freq", "usage"],
        ),
    }
}
