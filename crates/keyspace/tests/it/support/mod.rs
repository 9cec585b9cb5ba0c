//! Differential harness: the same random commands to redis-server 7.0.15 and to a fresh
//! [`Keyspace`], every reply compared, then the final canonical dumps, then our propagated
//! command stream replayed into another fresh keyspace and compared with ours.
//!
//! Timing: both sides use their own wall clock, so relative expiries differ by the few ms
//! between the two executions. Replies of `ttl`/`expiretime` may differ by 1, those of
//! `pttl`/`pexpiretime` by [`EXPIRY_SLACK_MS`], and dumped expiries by [`EXPIRY_SLACK_MS`].
//! Generators should use expiries far from "now" (seconds or more) or far in the past.
//!
//! Nondeterministic commands (SPOP, SRANDMEMBER, RANDOMKEY, ...) are compared by shape only
//! (same reply kind and array length, errors equal), then the values of their key arguments are
//! copied from redis-server into our keyspace through ordinary commands (so the propagated stream
//! stays a faithful record) to keep both sides in step.
#![allow(dead_code)]

use forkless_keyspace::{CollectingSink, Config, Keyspace, Reply, Session};
use forkless_rdb::model::{Entry, Value};
use forkless_testkit::{RedisServer, Reply as RespReply, TempDir};
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::sync::Arc;

/// Allowed difference between expiries set relative to each side's clock.
pub(crate) const EXPIRY_SLACK_MS: i64 = 3_000;

/// Our reply as a RESP2 client would see it.
pub(crate) fn to_resp(r: &Reply) -> RespReply {
    match r {
        Reply::Status(s) => RespReply::Simple(s.as_bytes().to_vec()),
        Reply::Error(s) => RespReply::Error(s.as_bytes().to_vec()),
        Reply::Integer(n) => RespReply::Integer(*n),
        Reply::Bulk(b) => RespReply::Bulk(b.clone()),
        Reply::Nil => RespReply::Null,
        Reply::NilArray => RespReply::NullArray,
        Reply::Array(a) => RespReply::Array(a.iter().map(to_resp).collect()),
    }
}

fn lossy(argv: &[Vec<u8>]) -> String {
    argv.iter()
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// A reply printed readably (strings lossily as UTF-8).
pub(crate) fn show(v: &RespReply) -> String {
    match v {
        RespReply::Simple(b) => format!("+{}", String::from_utf8_lossy(b)),
        RespReply::Error(b) => format!("-{}", String::from_utf8_lossy(b)),
        RespReply::Integer(n) => format!(":{n}"),
        RespReply::Null => "(nil)".into(),
        RespReply::Bulk(b) => format!("{:?}", String::from_utf8_lossy(b)),
        RespReply::NullArray => "(nil array)".into(),
        RespReply::Array(a) => {
            format!("[{}]", a.iter().map(show).collect::<Vec<_>>().join(", "))
        }
    }
}

fn same_shape(a: &RespReply, b: &RespReply) -> bool {
    match (a, b) {
        (RespReply::Error(x), RespReply::Error(y)) => x == y,
        (RespReply::Array(x), RespReply::Array(y)) => x.len() == y.len(),
        (RespReply::Integer(_), RespReply::Integer(_)) => true,
        (RespReply::Bulk(_), RespReply::Bulk(_)) => true,
        _ => a == b,
    }
}

/// Replies equal, with the documented slack for TTL-like commands and unordered KEYS.
fn replies_match(name: &str, ours: &RespReply, theirs: &RespReply) -> bool {
    match (name, ours, theirs) {
        ("ttl" | "expiretime", RespReply::Integer(a), RespReply::Integer(b)) => {
            a == b || (*a >= 0 && *b >= 0 && (a - b).abs() <= EXPIRY_SLACK_MS / 1000 + 1)
        }
        ("pttl" | "pexpiretime", RespReply::Integer(a), RespReply::Integer(b)) => {
            a == b || (*a >= 0 && *b >= 0 && (a - b).abs() <= EXPIRY_SLACK_MS)
        }
        ("keys", RespReply::Array(a), RespReply::Array(b)) => same_set(a, b),
        ("scan", RespReply::Array(a), RespReply::Array(b))
            if a.len() == 2 && b.len() == 2 && a[0] == b[0] =>
        {
            match (&a[1], &b[1]) {
                (RespReply::Array(x), RespReply::Array(y)) => same_set(x, y),
                _ => false,
            }
        }
        _ => ours == theirs,
    }
}

fn same_set(a: &[RespReply], b: &[RespReply]) -> bool {
    let key = |v: &RespReply| format!("{v:?}");
    let mut a: Vec<String> = a.iter().map(key).collect();
    let mut b: Vec<String> = b.iter().map(key).collect();
    a.sort();
    b.sort();
    a == b
}

/// Stream times (consumers' seen times, pending entries' delivery times) set to 0: they come from
/// each server's clock.
fn without_stream_times(v: &[Entry]) -> Vec<Entry> {
    let mut v = v.to_vec();
    for e in &mut v {
        if let Value::Stream(s) = &mut e.value {
            for g in &mut s.groups {
                for c in &mut g.consumers {
                    c.seen_time = 0;
                }
                for p in &mut g.pending {
                    p.delivery_time = 0;
                }
            }
        }
    }
    v
}

/// Dumps equal, expiries within [`EXPIRY_SLACK_MS`], stream times ignored.
pub(crate) fn dumps_match(a: &[Entry], b: &[Entry]) -> Result<(), String> {
    let (a, b) = (&without_stream_times(a)[..], &without_stream_times(b)[..]);
    if a.len() != b.len() {
        return Err(format!("{} keys vs {} keys", a.len(), b.len()));
    }
    for (x, y) in a.iter().zip(b) {
        let exp_ok = match (x.expire_at_ms, y.expire_at_ms) {
            (None, None) => true,
            (Some(p), Some(q)) => (p - q).abs() <= EXPIRY_SLACK_MS,
            _ => false,
        };
        if x.db != y.db || x.key != y.key || x.value != y.value || !exp_ok {
            return Err(format!("first difference:\n  ours:  {x:?}\n  redis: {y:?}"));
        }
    }
    Ok(())
}

/// Commands that write the value back into our keyspace (used to resync after a
/// nondeterministic command).
fn restore_commands(e: &Entry) -> Vec<Vec<Vec<u8>>> {
    let k = e.key.clone();
    let mut cmds = Vec::new();
    let b = |s: &str| s.as_bytes().to_vec();
    match &e.value {
        Value::String(s) => cmds.push(vec![b("SET"), k.clone(), s.clone()]),
        Value::List(items) => {
            let mut c = vec![b("RPUSH"), k.clone()];
            c.extend(items.iter().cloned());
            cmds.push(c);
        }
        Value::Set(m) => {
            let mut c = vec![b("SADD"), k.clone()];
            c.extend(m.iter().cloned());
            cmds.push(c);
        }
        Value::ZSet(p) => {
            let mut c = vec![b("ZADD"), k.clone()];
            for (m, s) in p {
                c.push(if s.is_infinite() {
                    b(if *s > 0.0 { "+inf" } else { "-inf" })
                } else {
                    format!("{s:?}").into_bytes()
                });
                c.push(m.clone());
            }
            cmds.push(c);
        }
        Value::Hash(p) => {
            let mut c = vec![b("HSET"), k.clone()];
            for (f, v) in p {
                c.push(f.clone());
                c.push(v.clone());
            }
            cmds.push(c);
        }
        Value::Stream(s) => {
            cmds.push(vec![b("DEL"), k.clone()]);
            for (id, f, v) in s.live_entries() {
                let mut c = vec![b("XADD"), k.clone(), id.to_text()];
                for (f, v) in f.iter().zip(v.iter()) {
                    c.push(f.clone());
                    c.push(v.clone());
                }
                cmds.push(c);
            }
            if s.length == 0 {
                cmds.push(vec![
                    b("XADD"),
                    k.clone(),
                    b("MAXLEN"),
                    b("0"),
                    b("0-1"),
                    b("x"),
                    b("y"),
                ]);
            }
            cmds.push(vec![
                b("XSETID"),
                k.clone(),
                s.last_id.to_text(),
                b("ENTRIESADDED"),
                s.entries_added.to_string().into_bytes(),
                b("MAXDELETEDID"),
                s.max_deleted_id.to_text(),
            ]);
            for g in &s.groups {
                cmds.push(vec![
                    b("XGROUP"),
                    b("CREATE"),
                    k.clone(),
                    g.name.clone(),
                    g.last_id.to_text(),
                    b("ENTRIESREAD"),
                    g.entries_read.to_string().into_bytes(),
                ]);
            }
        }
    }
    if let Some(at) = e.expire_at_ms {
        cmds.push(vec![b("PEXPIREAT"), k, at.to_string().into_bytes()]);
    }
    cmds
}

/// Replay propagated commands into a fresh keyspace in loading mode (no key expires while
/// replaying, as when Redis loads an AOF; MULTI/EXEC dropped: the commands in between are applied
/// in order, which is what EXEC does).
pub(crate) fn replay(ops: &[(u32, Vec<Vec<u8>>)], config: Config) -> Keyspace {
    let ks = Keyspace::new(config);
    ks.set_loading(true);
    let mut s = Session::default();
    for (db, argv) in ops {
        if argv.len() == 1
            && (argv[0].eq_ignore_ascii_case(b"multi") || argv[0].eq_ignore_ascii_case(b"exec"))
        {
            continue;
        }
        s.db = *db;
        let a: Vec<&[u8]> = argv.iter().map(|x| x.as_slice()).collect();
        let r = ks.execute(&mut s, &a);
        assert!(!r.is_error(), "replaying {:?} failed: {r:?}", lossy(argv));
    }
    ks.set_loading(false);
    ks
}

/// Create the one-element list `key` = `[elem]` in `db` (through LPUSH when the list commands
/// exist, else by loading it), returning what LPUSH replies (`:1`).
pub(crate) fn make_list(ks: &Keyspace, db: u32, key: &[u8], elem: &[u8]) -> String {
    if ks.has_command("lpush") {
        let mut s = Session { db };
        return show(&to_resp(&ks.execute(&mut s, &[b"LPUSH", key, elem])));
    }
    ks.load(vec![Entry {
        db,
        key: key.to_vec(),
        value: Value::List(vec![elem.to_vec()]),
        expire_at_ms: None,
    }])
    .expect("load");
    ":1".into()
}

/// A keyspace with a collecting sink, for tests.
pub(crate) fn keyspace_with_sink(config: Config) -> (Keyspace, Arc<CollectingSink>) {
    let sink = Arc::new(CollectingSink::new());
    let mut ks = Keyspace::new(config);
    ks.set_sink(sink.clone());
    (ks, sink)
}

/// Send each generated command to redis-server and to a fresh keyspace, compare every reply,
/// the final dumps, and the replay of our propagated stream. Panics with the seed, step, command
/// and both replies on the first difference. Prints SKIPPED and returns when redis-server is
/// absent (unless FORKLESS_REQUIRE_REDIS=1).
pub(crate) fn run_differential(
    seed: u64,
    n_commands: usize,
    gen: impl FnMut(&mut StdRng) -> Vec<Vec<u8>>,
    nondeterministic: &[&str],
) {
    run_differential_with(seed, n_commands, gen, nondeterministic, |e| e.to_vec());
}

/// [`run_differential`] with the replay check made on `replay_view` of both sides (for state
/// Redis itself does not propagate).
#[allow(dead_code)]
pub(crate) fn run_differential_with(
    seed: u64,
    n_commands: usize,
    mut gen: impl FnMut(&mut StdRng) -> Vec<Vec<u8>>,
    nondeterministic: &[&str],
    replay_view: fn(&[Entry]) -> Vec<Entry>,
) {
    let dir = TempDir::new("forkless-diff");
    let Some(redis) = RedisServer::start(dir.path(), &[]) else {
        return;
    };
    let config = Config {
        shards: 4,
        ..Config::seeded(seed)
    };
    let (ks, sink) = keyspace_with_sink(config.clone());
    let mut session = Session::default();
    let mut rng = StdRng::seed_from_u64(seed);
    for step in 0..n_commands {
        let argv = gen(&mut rng);
        let a: Vec<&[u8]> = argv.iter().map(|x| x.as_slice()).collect();
        let theirs = redis.call(&a);
        let ours = to_resp(&ks.execute(&mut session, &a));
        let name = String::from_utf8_lossy(&argv[0]).to_ascii_lowercase();
        if nondeterministic.contains(&name.as_str()) {
            assert!(
                same_shape(&ours, &theirs),
                "seed {seed} step {step}: `{}`\n  ours:  {}\n  redis: {}",
                lossy(&argv),
                show(&ours),
                show(&theirs)
            );
            resync(&redis, &ks, &mut session, &argv);
        } else {
            assert!(
                replies_match(&name, &ours, &theirs),
                "seed {seed} step {step}: `{}`\n  ours:  {}\n  redis: {}",
                lossy(&argv),
                show(&ours),
                show(&theirs)
            );
        }
    }
    let theirs = redis.dump();
    let ours = ks.dump();
    if let Err(e) = dumps_match(&ours, &theirs) {
        panic!("seed {seed}: final dumps differ after {n_commands} commands: {e}");
    }
    let replayed = replay(&sink.ops(), config);
    if let Err(e) = dumps_match(&replay_view(&replayed.dump()), &replay_view(&ours)) {
        panic!("seed {seed}: replay of the propagated stream differs: {e}");
    }
}

/// Copy the values of the command's arguments (those that are keys in redis-server's current
/// database) from redis-server into our keyspace.
fn resync(redis: &RedisServer, ks: &Keyspace, session: &mut Session, argv: &[Vec<u8>]) {
    let db = session.db;
    let theirs = redis.dump();
    redis.call(&[b"SELECT", db.to_string().as_bytes()]);
    for arg in argv.iter().skip(1) {
        let del: Vec<&[u8]> = vec![b"DEL", arg];
        ks.execute(session, &del);
        if let Some(e) = theirs.iter().find(|e| e.db == db && &e.key == arg) {
            for c in restore_commands(e) {
                let a: Vec<&[u8]> = c.iter().map(|x| x.as_slice()).collect();
                let r = ks.execute(session, &a);
                assert!(!r.is_error(), "resync {:?}: {r:?}", lossy(&c));
            }
        }
    }
}
