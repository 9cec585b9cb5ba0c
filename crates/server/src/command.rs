//! Introspection commands: COMMAND, CLIENT LIST/KILL/UNBLOCK, OBJECT, MEMORY, DEBUG.
//!
//! Field names and formats follow Redis 7.0.15 (`networking.c` `catClientInfoString`,
//! `server.c` `commandCommand`, `object.c`). OBJECT ENCODING is derived from the value's current
//! size and contents with redis.conf's thresholds (forkless keeps one representation per type;
//! Redis's encodings are sticky once converted, ours follow the contents).

use forkless_keyspace::value::Value;
use forkless_keyspace::{Reply, Session};

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
    let t = forkless_keyspace::keyspec::table();
    for c in &mut v {
        if t.id(&c.0).is_some_and(|id| t.movable_keys(id)) {
            c.2.push("movablekeys");
        }
    }
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
        Frame::Set(
            crate::acl::command_categories(&c.0)
                .into_iter()
                .map(|s| Frame::Simple(s.into()))
                .collect(),
        ),
        Frame::Set(Vec::new()),
        Frame::Array(Vec::new()),
        Frame::Array(Vec::new()),
    ])
}

/// COMMAND [COUNT | INFO name... | DOCS name... | LIST | GETKEYS cmd args...].
pub(crate) fn command(conn: &mut Conn, argv: &[Vec<u8>]) -> Frame {
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
        sub @ ("getkeys" | "getkeysandflags") if argv.len() < 4 => Frame::err(format!(
            "ERR wrong number of arguments for 'command|{sub}' command"
        )),
        "getkeys" => getkeys(conn, &all, &argv[2..], false),
        "getkeysandflags" => getkeys(conn, &all, &argv[2..], true),
        _ => bad_subcommand(
            "command",
            &argv[1],
            &[
                "count",
                "list",
                "info",
                "docs",
                "getkeys",
                "getkeysandflags",
            ],
        ),
    }
}

/// COMMAND GETKEYS / GETKEYSANDFLAGS `args` (Redis's `getKeysSubcommandImpl`) for a command this
/// server serves: Redis's key specs ([`forkless_keyspace::keyspec`]) with Redis's errors; a
/// served command Redis does not have answers from its legacy key range.
fn getkeys(conn: &Conn, all: &[CmdInfo], args: &[Vec<u8>], with_flags: bool) -> Frame {
    use forkless_keyspace::keyspec::{self, flags, KeyRef};
    let args: Vec<&[u8]> = args.iter().map(|a| a.as_slice()).collect();
    let served = all
        .iter()
        .any(|c| c.0.as_bytes().eq_ignore_ascii_case(args[0]));
    if !served {
        return Frame::err("ERR Invalid command specified");
    }
    let t = keyspec::table();
    let keys: Vec<KeyRef> = match t.lookup(&args) {
        Some(id) => {
            if !t.has_keys(id) {
                return Frame::err("ERR The command has no key arguments");
            }
            if !t.arity_ok(id, args.len()) {
                return Frame::err("ERR Invalid number of arguments specified for command");
            }
            let keys = t.keys(id, &args);
            if keys.is_empty() {
                return if t.defs[id].no_mandatory_keys {
                    Frame::Array(Vec::new())
                } else {
                    Frame::err("ERR Invalid arguments specified for command")
                };
            }
            keys
        }
        // A subcommand Redis's container does not have.
        None if t.resolve(&args).is_some() => {
            return Frame::err("ERR Invalid command specified");
        }
        None => {
            let Some(spec) = conn.shared.table.lookup(args[0]) else {
                return Frame::err("ERR The command has no key arguments");
            };
            if !spec.arity_ok(args.len()) {
                return Frame::err("ERR Invalid number of arguments specified for command");
            }
            let keys: Vec<KeyRef> = spec
                .key_indices(args.len())
                .map(|pos| KeyRef { pos, flags: 0 })
                .collect();
            if keys.is_empty() {
                return Frame::err("ERR The command has no key arguments");
            }
            keys
        }
    };
    Frame::Array(
        keys.into_iter()
            .map(|k| {
                let key = Frame::Bulk(args[k.pos].to_vec());
                if with_flags {
                    let names = flags::names(k.flags);
                    let names = names.into_iter().map(|n| Frame::Simple(n.into())).collect();
                    Frame::Array(vec![key, Frame::Set(names)])
                } else {
                    key
                }
            })
            .collect(),
    )
}

/// One CLIENT LIST line (without the newline).
pub(crate) fn client_line(shared: &Shared, e: &ClientEntry) -> String {
    let m = e.meta.lock().clone();
    let tracking = shared.tracking.info(e.id);
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
    if m.monitor {
        flags.push('O');
    }
    if let Some((o, _, broken)) = &tracking {
        flags.push('t');
        if o.bcast {
            flags.push('B');
        }
        if *broken {
            flags.push('R');
        }
    }
    if flags.is_empty() {
        flags.push('N');
    }
    format!(
        "id={} addr={} laddr={} fd={} name={} age={} idle={} flags={} db={} sub={} psub={} ssub={} multi={} qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 rbs=16384 rbp=0 obl=0 oll=0 omem=0 tot-mem=0 events=r cmd={} user={} redir={} resp={}",
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
        m.ssub,
        m.multi,
        m.last_cmd,
        m.user,
        tracking.as_ref().map_or(-1, |(o, _, _)| o.redirect as i64),
        m.resp
    )
}

/// CLIENT LIST [TYPE t] [ID id...].
pub(crate) fn client_list(conn: &mut Conn, args: &[Vec<u8>]) -> Frame {
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
pub(crate) fn client_kill(conn: &mut Conn, args: &[Vec<u8>]) -> Frame {
    let clients: Vec<_> = conn.shared.clients.lock().values().cloned().collect();
    if args.len() == 1 {
        let addr = String::from_utf8_lossy(&args[0]).into_owned();
        return match clients.iter().find(|c| c.addr == addr) {
            Some(c) => {
                c.kill();
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
    let mut user: Option<String> = None;
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
                if conn.shared.acl.user(v.as_bytes()).is_none() {
                    return Frame::err(format!("ERR No such user '{v}'"));
                }
                user = Some(v);
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
        if user.as_ref().is_some_and(|u| *u != c.meta.lock().user) {
            continue;
        }
        if let Some(t) = &ty {
            let m = c.meta.lock();
            let is_pubsub = m.sub + m.psub > 0;
            if !((t == "pubsub" && is_pubsub) || (t == "normal" && !is_pubsub)) {
                continue;
            }
        }
        c.kill();
        n += 1;
    }
    Frame::Int(n)
}

/// CLIENT UNBLOCK id [TIMEOUT|ERROR].
pub(crate) fn client_unblock(conn: &mut Conn, argv: &[Vec<u8>]) -> Frame {
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

fn approx_size(v: &Value) -> usize {
    match v {
        Value::String(s) => 16 + s.len(),
        Value::List(l) => 32 + l.iter().map(|e| e.len() + 11).sum::<usize>(),
        Value::Set(s) => 32 + s.iter().map(|e| e.len() + 24).sum::<usize>(),
        Value::ZSet(z) => 32 + z.iter().map(|(m, _)| m.len() + 40).sum::<usize>(),
        Value::Hash(h) => 32 + h.iter().map(|(f, v)| f.len() + v.len() + 24).sum::<usize>(),
        Value::Stream(s) => 64 + s.mem_usage(),
    }
}

/// True when `key` is live in `db`; EXISTS expires it lazily when its time has passed.
fn is_live(shared: &Shared, db: u32, key: &[u8]) -> bool {
    let mut s = Session { db };
    shared.ks.execute(&mut s, &[b"EXISTS", key]) == Reply::Integer(1)
}

/// Look at the live value of `key` in `db` with `f`.
fn with_value<R>(shared: &Shared, db: u32, key: &[u8], f: impl FnOnce(&Value) -> R) -> Option<R> {
    if !is_live(shared, db, key) {
        return None;
    }
    with_stored_value(shared, db, key, f)
}

/// OBJECT ENCODING of the live `key` in `db` under thresholds `lim`: from its value and its
/// encoding history (`forkless_keyspace::encoding`).
fn object_encoding(
    shared: &Shared,
    db: u32,
    key: &[u8],
    lim: &forkless_rdb::EncodingLimits,
) -> Option<&'static str> {
    if !is_live(shared, db, key) {
        return None;
    }
    shared.ks.with_encoding(db, key, |v, pins| {
        forkless_keyspace::encoding::object_encoding(v, pins, lim)
    })
}

/// The value stored under `key`, even when its expiry has passed (Redis's `dictFind`, as
/// DEBUG OBJECT reads it).
fn with_stored_value<R>(
    shared: &Shared,
    db: u32,
    key: &[u8],
    f: impl FnOnce(&Value) -> R,
) -> Option<R> {
    shared.ks.with_encoding(db, key, |v, _| f(v))
}

fn hash_parts(parts: &[&[u8]]) -> [u8; 20] {
    use std::hash::Hasher;
    let mut out = [0u8; 20];
    for (i, chunk) in out.chunks_mut(8).enumerate() {
        // SipHash with fixed keys: deterministic across runs and processes.
        let mut h = std::hash::DefaultHasher::new();
        h.write_u64(i as u64);
        for p in parts {
            h.write_usize(p.len());
            h.write(p);
        }
        let v = h.finish().to_le_bytes();
        chunk.copy_from_slice(&v[..chunk.len()]);
    }
    out
}

fn xor_into(acc: &mut [u8; 20], d: &[u8; 20]) {
    for (a, b) in acc.iter_mut().zip(d) {
        *a ^= b;
    }
}

fn hex(d: &[u8; 20]) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// A digest of one value: ordered for strings, lists and sorted sets, order-free for sets and
/// hashes (Redis's `xorDigest`/`mixDigest` structure; the hash function is not Redis's SHA1, so
/// the hex differs from Redis's while equality between values means the same).
fn value_digest(v: &Value) -> [u8; 20] {
    match v {
        Value::String(s) => hash_parts(&[b"s", s]),
        Value::List(l) => {
            let mut acc = hash_parts(&[b"l"]);
            for e in l.iter() {
                acc = hash_parts(&[&acc, e]);
            }
            acc
        }
        Value::Set(set) => {
            let mut acc = hash_parts(&[b"S"]);
            for e in set.iter() {
                xor_into(&mut acc, &hash_parts(&[e]));
            }
            acc
        }
        Value::ZSet(z) => {
            let mut acc = hash_parts(&[b"z"]);
            for (m, score) in z.iter() {
                let sc = forkless_keyspace::convert::format_double_g17(score);
                acc = hash_parts(&[&acc, m, sc.as_bytes()]);
            }
            acc
        }
        Value::Hash(h) => {
            let mut acc = hash_parts(&[b"h"]);
            for (f, val) in h.iter() {
                xor_into(&mut acc, &hash_parts(&[f, val]));
            }
            acc
        }
        Value::Stream(st) => {
            let last = st.last_id.to_text();
            let mut acc = hash_parts(&[b"x", &last]);
            for (id, pairs) in st.range(
                forkless_rdb::stream::StreamId::MIN,
                forkless_rdb::stream::StreamId::MAX,
                false,
                None,
            ) {
                acc = hash_parts(&[&acc, &id.to_text()]);
                for (f, val) in &pairs {
                    acc = hash_parts(&[&acc, f, val]);
                }
            }
            for (name, g) in &st.groups {
                acc = hash_parts(&[&acc, name, &g.last_id.to_text()]);
                for (id, n) in &g.pel {
                    acc = hash_parts(&[&acc, &id.to_text(), &n.consumer]);
                }
            }
            acc
        }
    }
}

/// DEBUG DIGEST: 40 zeros for an empty dataset, else the XOR of every key's digest.
fn digest_all(shared: &Shared) -> String {
    digest_of(&shared.ks)
}

/// DEBUG DIGEST of a keyspace: XOR of every live key's digest (order-independent).
fn digest_of(ks: &forkless_keyspace::Keyspace) -> String {
    let now = ks.now_ms();
    let mut acc = [0u8; 20];
    for s in 0..ks.num_shards() {
        ks.with_shard(s, |sh| {
            for db in 0..sh.databases() {
                for (k, slot) in sh.db(db).iter() {
                    if slot.is_expired(now) {
                        continue;
                    }
                    let exp = slot
                        .expire_at()
                        .map(|e| e.to_le_bytes())
                        .unwrap_or_default();
                    let d =
                        hash_parts(&[&db.to_le_bytes(), k, &value_digest(&slot.value.get()), &exp]);
                    xor_into(&mut acc, &d);
                }
            }
        });
    }
    hex(&acc)
}

/// DEBUG OBJECT: Redis 7.0's line (`debugCommand`, "object").
fn debug_object(conn: &Conn, db: u32, key: &[u8]) -> Frame {
    let lim = conn.shared.engine.config().encoding_limits();
    let line = conn.shared.ks.with_encoding(db, key, |v, pins| {
        let enc = forkless_keyspace::encoding::object_encoding(v, pins, &lim);
        let mut s = format!(
            "Value at:0x7f0000000000 refcount:1 encoding:{enc} serializedlength:{} lru:0 lru_seconds_idle:0",
            approx_size(v)
        );
        if let Value::List(l) = v {
            let bytes: usize = l.iter().map(|e| e.len() + 11).sum();
            let nodes = bytes.div_ceil(8192).max(1);
            s.push_str(&format!(
                " ql_nodes:{nodes} ql_avg_node:{:.2} ql_listpack_max:-2 ql_compressed:0 ql_uncompressed_size:{bytes}",
                l.len() as f64 / nodes as f64
            ));
        }
        s
    });
    match line {
        Some(l) => Frame::Simple(l.into()),
        None => Frame::err("ERR no such key"),
    }
}

/// DEBUG RELOAD: the whole keyspace through forkless's own RDB writer and reader (in memory),
/// checked to come back identical. Redis replaces its dataset with what it loaded; here the
/// loaded dataset is compared instead of swapped in, because emptying the keyspace would
/// propagate a FLUSHALL to the AOF (Redis's reload is invisible to its log).
fn debug_reload(conn: &Conn, argv: &[Vec<u8>]) -> Frame {
    let (mut merge, mut flush) = (false, true);
    for opt in &argv[2..] {
        match lower(opt).as_str() {
            "merge" => merge = true,
            "noflush" => flush = false,
            "nosave" => {}
            _ => {
                return Frame::err(
                    "ERR DEBUG RELOAD only supports the MERGE, NOFLUSH and NOSAVE options.",
                )
            }
        }
    }
    let libs = conn.shared.engine.scripting().library_codes();
    // NOFLUSH without MERGE: Redis loads the dump's libraries over the ones in memory, and a
    // library that already exists fails the load (they come before the keys).
    if !flush && !merge && !libs.is_empty() {
        return Frame::err("ERR Error trying to load the RDB dump");
    }
    let ks = &conn.shared.ks;
    let entries = ks.dump();
    let bytes = match forkless_rdb::write_all_with_functions(
        Vec::new(),
        &entries,
        &libs,
        forkless_rdb::WriteOptions::default(),
    ) {
        Ok(b) => b,
        Err(e) => return Frame::err(format!("ERR Error trying to save the DB: {e}")),
    };
    let loaded = match forkless_rdb::read_all(&bytes[..]) {
        Ok(l) => l,
        Err(e) => return Frame::err(format!("ERR Error trying to load the RDB dump: {e}")),
    };
    let mut back = loaded.entries;
    forkless_rdb::model::canonicalize(&mut back);
    if back != entries {
        return Frame::err("ERR Error trying to load the RDB dump: the reloaded dataset differs");
    }
    Frame::ok()
}

/// DEBUG LOADAOF: the AOF directory (flushed and fsynced first) loaded into a new keyspace must
/// hold the live dataset (compared by DEBUG DIGEST). Redis replaces its dataset with what it
/// loaded; as for DEBUG RELOAD the loaded copy is compared instead, so the log sees nothing.
fn debug_loadaof(conn: &Conn) -> Frame {
    let copy = match conn.shared.engine.load_aof_copy() {
        Ok(k) => k,
        Err(e) => return Frame::err(format!("ERR Error loading the AOF: {e}")),
    };
    if digest_of(&copy) != digest_of(&conn.shared.ks) {
        return Frame::err("ERR Error loading the AOF: the loaded dataset differs");
    }
    Frame::ok()
}

/// OBJECT, MEMORY and DEBUG.
pub(crate) fn introspect(conn: &mut Conn, name: &str, argv: &[Vec<u8>]) -> Frame {
    let sub = lower(&argv[1]);
    let db = conn.session.db;
    match (name, sub.as_str(), argv.len()) {
        ("object", "encoding", 3) => {
            let lim = conn.shared.engine.config().encoding_limits();
            object_encoding(&conn.shared, db, &argv[2], &lim).map_or(Frame::Null, Frame::bulk)
        }
        ("object", "refcount", 3) => {
            // Redis shares the integers 0..10000 (OBJ_SHARED_REFCOUNT = INT_MAX).
            with_value(&conn.shared, db, &argv[2], |v| match v {
                Value::String(s) => match forkless_keyspace::convert::parse_i64(s) {
                    Some(n) if (0..10000).contains(&n) && s.len() <= 5 => i64::from(i32::MAX),
                    _ => 1,
                },
                _ => 1,
            })
            .map_or(Frame::Null, Frame::Int)
        }
        // The access metadata lives in the keyspace (its OBJECT reads the key's LRU clock / LFU
        // counter without touching it).
        ("object", "idletime" | "freq" | "help", _) => {
            let refs: Vec<&[u8]> = argv.iter().map(Vec::as_slice).collect();
            Frame::from(
                conn.shared
                    .engine
                    .execute(&mut forkless_keyspace::Session { db }, &refs),
            )
        }
        ("memory", "usage", 3 | 5) => with_value(&conn.shared, db, &argv[2], approx_size)
            .map_or(Frame::Null, |n| Frame::Int(n as i64)),
        ("debug", _, _) => {
            let mode = conn.shared.opts.lock().enable_debug_command.clone();
            let local = conn.entry.addr.starts_with("127.") || conn.entry.addr.starts_with("[::1]");
            if mode == "no" || (mode == "local" && !local) {
                return Frame::err("ERR DEBUG command not allowed. If the enable-debug-command option is set to \"local\", you can run it from a local connection, otherwise you need to set this option in the configuration file, and then restart the server.");
            }
            let r3 = conn.proto == crate::frame::Proto::Resp3;
            if let Some(f) = crate::script_host::debug_common(&conn.shared, &sub, argv, r3) {
                return f;
            }
            match (sub.as_str(), argv.len()) {
                ("object", 3) => debug_object(conn, db, &argv[2]),
                ("reload", _) => debug_reload(conn, argv),
                ("loadaof", 2) => debug_loadaof(conn),
                ("digest", 2) => Frame::Simple(digest_all(&conn.shared).into()),
                ("digest-value", _) => Frame::Array(
                    argv[2..]
                        .iter()
                        .map(|k| {
                            let d = with_value(&conn.shared, db, k, value_digest)
                                .map_or([0u8; 20], |d| d);
                            Frame::Simple(hex(&d).into())
                        })
                        .collect(),
                ),
                _ => bad_subcommand(
                    "debug",
                    &argv[1],
                    &["sleep", "set-active-expire", "change-repl-id"],
                ),
            }
        }
        _ => bad_subcommand(
            name,
            &argv[1],
            &["encoding", "refcount", "idletime", "freq", "usage"],
        ),
    }
}
