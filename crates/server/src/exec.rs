//! Executing one command for a connection: the checks of Redis's `processCommand`, then the
//! connection and server commands here, the data commands in the keyspace.
//!
//! Order of checks, as Redis 7.0.15 `server.c`: unknown command / wrong arity (flagging an open
//! MULTI as failed) → authentication (`-NOAUTH`) → the RESP2 subscribed context → MULTI queueing
//! → the command. Data commands run through `Keyspace::execute` (shard locks, snapshot hooks,
//! propagation); after a successful write the written keys wake WATCHers and blocked clients.

use std::borrow::Cow;

use forkless_keyspace::command::{unknown_command, ALL_SHARDS};
use forkless_sync::atomic::Ordering;

use crate::blocking;
use crate::conn::{Conn, ReplyMode, Step};
use crate::frame::{resp3_shape, Frame, Proto};
use crate::info;
use crate::log::log;
use crate::state::DbChange;

/// Commands served by the server itself: name, Redis arity.
pub const SERVER_COMMANDS: &[(&str, i32)] = &[
    ("ping", -1),
    ("quit", -1),
    ("reset", 1),
    ("monitor", 1),
    ("hello", -1),
    ("auth", -2),
    ("time", 1),
    ("client", -2),
    ("config", -2),
    ("info", -1),
    ("command", -1),
    ("shutdown", -1),
    ("multi", 1),
    ("exec", 1),
    ("discard", 1),
    ("watch", -2),
    ("unwatch", 1),
    ("subscribe", -2),
    ("psubscribe", -2),
    ("unsubscribe", -1),
    ("punsubscribe", -1),
    ("publish", 3),
    ("spublish", 3),
    ("ssubscribe", -2),
    ("sunsubscribe", -1),
    ("pubsub", -2),
    ("function", -2),
    ("script", -2),
    ("eval", -3),
    ("evalsha", -3),
    ("eval_ro", -3),
    ("evalsha_ro", -3),
    ("fcall", -3),
    ("fcall_ro", -3),
    ("debug", -2),
    ("object", -2),
    ("memory", -2),
    ("lastsave", 1),
    ("save", 1),
    ("bgsave", -1),
    ("bgrewriteaof", 1),
    ("replconf", -1),
    ("sync", 1),
    ("psync", -3),
    ("wait", 3),
    ("replicaof", 3),
    ("slaveof", 3),
    ("role", 1),
    ("acl", -2),
];

fn arity_ok(arity: i32, argc: usize) -> bool {
    if arity >= 0 {
        argc == arity as usize
    } else {
        argc >= (-arity) as usize
    }
}

fn lower(a: &[u8]) -> String {
    String::from_utf8_lossy(a).to_ascii_lowercase()
}

/// The error for a subcommand: wrong arity when `known`, unknown otherwise (Redis 7.0 texts).
pub fn bad_subcommand(cmd: &str, sub: &[u8], known: &[&str]) -> Frame {
    let s = String::from_utf8_lossy(sub);
    let l = s.to_ascii_lowercase();
    if known.contains(&l.as_str()) {
        Frame::err(format!(
            "ERR wrong number of arguments for '{cmd}|{l}' command"
        ))
    } else {
        Frame::err(format!(
            "ERR unknown subcommand '{s}'. Try {} HELP.",
            cmd.to_ascii_uppercase()
        ))
    }
}

fn wrong_args(name: &str) -> Frame {
    Frame::err(format!(
        "ERR wrong number of arguments for '{name}' command"
    ))
}

fn int_of(a: &[u8]) -> Option<i64> {
    forkless_keyspace::convert::parse_i64(a)
}

impl Conn {
    /// Execute one command.
    pub fn execute(&mut self, argv: Vec<Vec<u8>>) -> Step {
        let exec_in_multi = self.multi.is_some() && argv[0].eq_ignore_ascii_case(b"exec");
        let step = self.execute_checked(argv);
        // An EXEC refused by the command checks (BUSY, NOAUTH, MISCONF...) still ends the
        // transaction, as Redis's `rejectCommand` → `execCommandAbort`.
        if exec_in_multi && self.multi.is_some() {
            if let Step::Reply(Frame::Error(e)) = &step {
                let e = e.trim_start_matches('-').to_string();
                self.multi = None;
                self.unwatch_all();
                self.update_meta(|m| m.multi = -1);
                return Step::Reply(Frame::err(format!(
                    "EXECABORT Transaction discarded because of: {e}"
                )));
            }
        }
        step
    }

    fn execute_checked(&mut self, argv: Vec<Vec<u8>>) -> Step {
        // Copied out (a few words), so no borrow of `self.shared` and no reference count change.
        let cmd = self.shared.commands.lookup(&argv[0]).copied();
        let name: &'static str = cmd.map_or("", |c| c.name);
        self.shared.stats.commands.fetch_add(1, Ordering::Relaxed);
        {
            let mut m = self.entry.meta.lock();
            m.last_active = self.now;
            m.last_cmd = match cmd {
                None => Cow::Owned(lower(&argv[0])),
                Some(_)
                    if matches!(name, "client" | "config" | "command" | "pubsub")
                        && argv.len() > 1 =>
                {
                    Cow::Owned(format!("{name}|{}", lower(&argv[1])))
                }
                Some(_) => Cow::Borrowed(name),
            };
        }
        let Some(cmd) = cmd else {
            self.flag_multi_error();
            let refs: Vec<&[u8]> = argv.iter().map(Vec::as_slice).collect();
            return Step::Reply(unknown_command(&refs).into());
        };
        let rejected = |s: &Self| {
            if let Some(i) = cmd.row {
                s.shared
                    .cmdstats
                    .row_at(i)
                    .rejected
                    .fetch_add(1, Ordering::Relaxed);
            }
        };
        if !arity_ok(cmd.arity, argv.len()) {
            rejected(self);
            self.flag_multi_error();
            return Step::Reply(wrong_args(name));
        }
        if !self.authed
            && self.shared.acl.auth_required()
            && !matches!(name, "auth" | "hello" | "quit" | "reset")
        {
            rejected(self);
            self.flag_multi_error();
            return Step::Reply(Frame::err("NOAUTH Authentication required."));
        }
        // ACLs: one relaxed load for an unrestricted user (the default one).
        if !self.user.unrestricted() {
            if let Some(e) = self.acl_refusal(&argv) {
                rejected(self);
                self.flag_multi_error();
                return Step::Reply(Frame::err(e));
            }
        }
        // A read-only replica refuses writes (Redis's processCommand, also while queueing).
        if self.shared.repl.is_replica() && cmd.is_write() {
            rejected(self);
            self.flag_multi_error();
            return Step::Reply(Frame::err(
                "READONLY You can't write against a read only replica.",
            ));
        }
        if name != "exec" {
            if let Some(e) = self.state_refusal(std::iter::once(name)) {
                rejected(self);
                self.flag_multi_error();
                return Step::Reply(Frame::err(e));
            }
        }
        if self.proto == Proto::Resp2
            && self.in_pubsub()
            && !matches!(
                name,
                "subscribe"
                    | "psubscribe"
                    | "ssubscribe"
                    | "unsubscribe"
                    | "punsubscribe"
                    | "sunsubscribe"
                    | "ping"
                    | "quit"
                    | "reset"
            )
        {
            return Step::Reply(Frame::err(format!(
                "ERR Can't execute '{name}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context"
            )));
        }
        if let Some(busy) = self.shared.engine.scripting().busy_error() {
            if !allowed_while_busy(name, &argv) {
                rejected(self);
                self.flag_multi_error();
                return Step::Reply(Frame::err(busy));
            }
        }
        if self.multi.is_some()
            && !matches!(
                name,
                "exec" | "discard" | "multi" | "watch" | "quit" | "reset"
            )
        {
            // Commands flagged `no-multi` in Redis 7.0.15.
            if matches!(name, "save" | "shutdown" | "sync" | "psync" | "monitor") {
                rejected(self);
                self.flag_multi_error();
                return Step::Reply(Frame::err("ERR Command not allowed inside a transaction"));
            }
            // A command refused for memory is refused while queueing, and EXEC then aborts
            // (Redis's processCommand runs the maxmemory check before queueing).
            if self.would_oom(name) {
                rejected(self);
                self.flag_multi_error();
                return Step::Reply(Frame::err(forkless_keyspace::memory::OOM_ERROR));
            }
            if let Some((q, _)) = &mut self.multi {
                q.push(argv);
                let n = q.len() as i64;
                self.update_meta(|m| m.multi = n);
            }
            return Step::Reply(Frame::Simple(Cow::Borrowed("QUEUED")));
        }
        let t0 = std::time::Instant::now();
        let monitored = self.shared.monitors.active().then(|| argv.clone());
        // CLIENT TRACKING: the keys of a read-only data command are remembered once it ran.
        let tracked = self.shared.tracking.active().then(|| {
            let keys: Option<Vec<Vec<u8>>> = cmd
                .spec
                .filter(|s| s.flags & forkless_keyspace::READONLY != 0)
                .map(|s| s.key_indices(argv.len()).map(|i| argv[i].clone()).collect());
            keys
        });
        if let (Some(a), true) = (&monitored, crate::monitor::shown_before(name)) {
            self.shared
                .monitors
                .feed(self.session.db, &self.entry.addr, a);
        }
        let step = self.run_command(name, argv);
        if matches!(step, Step::Block(_)) {
            // Counted when its reply comes (conn.rs), once, as Redis; shown to monitors now
            // (Redis's `call()` feeds them whether or not the command then blocks).
            if let Some(a) = &monitored {
                self.shared
                    .monitors
                    .feed(self.session.db, &self.entry.addr, a);
            }
            self.blocked_cmd = Some(name.to_string());
            return step;
        }
        if let Some(keys) = tracked {
            let refs: Option<Vec<&[u8]>> =
                keys.as_ref().map(|k| k.iter().map(Vec::as_slice).collect());
            self.shared
                .tracking
                .after_command(self.entry.id, name, refs.as_deref());
        }
        if let Some(a) = monitored.filter(|a| crate::monitor::shown(name, a)) {
            self.shared
                .monitors
                .feed(self.session.db, &self.entry.addr, &a);
        }
        if let Some(r) = cmd.row.map(|i| self.shared.cmdstats.row_at(i)) {
            r.calls.fetch_add(1, Ordering::Relaxed);
            r.usec
                .fetch_add(t0.elapsed().as_micros() as u64, Ordering::Relaxed);
            let failed = match &step {
                Step::Reply(f) | Step::Durable(f, _) | Step::Close(f) => f.is_error(),
                _ => false,
            };
            if failed {
                r.failed.fetch_add(1, Ordering::Relaxed);
            }
        }
        step
    }

    /// Redis's processCommand checks of the server's state, for a command or (EXEC) for every
    /// queued one: `min-replicas-to-write` good replicas (lag within `min-replicas-max-lag`) for
    /// a write, and a replica whose link is down with `replica-serve-stale-data no` serves only
    /// the commands flagged `stale`.
    fn state_refusal<'n>(
        &mut self,
        mut names: impl Iterator<Item = &'n str>,
    ) -> Option<&'static str> {
        let (min, max_lag, serve_stale) = {
            let o = self.opts();
            (o.min_replicas.0, o.min_replicas.1, o.serve_stale)
        };
        let stale_link = !serve_stale && self.shared.repl.link_info().is_some_and(|l| !l.up);
        if min == 0 && !stale_link {
            return None;
        }
        names.find_map(|n| {
            if stale_link && !STALE_OK.contains(&n) {
                return Some(
                    "MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.",
                );
            }
            if min > 0 && !self.shared.repl.is_replica() && self.is_write_command(n) {
                let good = self
                    .shared
                    .repl
                    .replicas
                    .lock()
                    .values()
                    .filter(|r| r.state == "online" && r.last_ack.elapsed().as_secs() <= max_lag)
                    .count() as u64;
                if good < min {
                    return Some("NOREPLICAS Not enough good replicas to write.");
                }
            }
            None
        })
    }

    /// True when `name` may grow memory and nothing more can be evicted under `maxmemory`.
    fn would_oom(&self, name: &str) -> bool {
        let ks = &self.shared.ks;
        ks.memory_config().maxmemory > 0
            && !ks.is_replica()
            && self
                .shared
                .table
                .lookup(name.as_bytes())
                .is_some_and(|s| s.is_write() && forkless_keyspace::memory::may_grow(s.name))
            && !ks.evict_to_bound()
    }

    fn is_write_command(&self, name: &str) -> bool {
        self.shared
            .commands
            .lookup(name.as_bytes())
            .is_some_and(|c| c.is_write())
    }

    fn replconf(&mut self, argv: &[Vec<u8>]) -> Frame {
        if argv.len().is_multiple_of(2) {
            return Frame::syntax();
        }
        for pair in argv[1..].chunks(2) {
            let opt = lower(&pair[0]);
            match opt.as_str() {
                "listening-port" => match int_of(&pair[1]) {
                    Some(p) if (0..=65535).contains(&p) => self.repl_port = p as u16,
                    _ => return Frame::err("ERR value is not an integer or out of range"),
                },
                "ip-address" => self.repl_ip = Some(String::from_utf8_lossy(&pair[1]).into_owned()),
                "capa" => {
                    if pair[1].eq_ignore_ascii_case(b"eof") {
                        self.repl_capa_eof = true;
                    }
                }
                // ACK and GETACK only mean something on a replica link; elsewhere ignored.
                "ack" | "getack" | "rdb-only" | "rdb-filter-only" => {}
                _ => {
                    return Frame::err(format!(
                        "ERR Unrecognized REPLCONF option: {}",
                        String::from_utf8_lossy(&pair[0])
                    ))
                }
            }
        }
        Frame::ok()
    }

    fn flag_multi_error(&mut self) {
        if let Some((_, failed)) = &mut self.multi {
            *failed = true;
        }
    }

    /// Run a command that passed the checks (also from EXEC).
    fn run_command(&mut self, name: &str, argv: Vec<Vec<u8>>) -> Step {
        let f = match name {
            "ping" => self.ping(&argv),
            "quit" => return Step::Close(Frame::ok()),
            "reset" => self.reset(),
            "monitor" => {
                self.shared.monitors.add(&self.entry);
                self.update_meta(|m| m.monitor = true);
                Frame::ok()
            }
            "hello" => self.hello(&argv),
            "auth" => self.auth(&argv),
            "acl" => return crate::acl_cmd::command(self, &argv),
            "time" => {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap_or_default();
                Frame::Array(vec![
                    Frame::bulk(now.as_secs().to_string()),
                    Frame::bulk(now.subsec_micros().to_string()),
                ])
            }
            "client" => return self.client(&argv),
            "config" => self.config(&argv),
            "info" => {
                let sections: Vec<String> = argv[1..].iter().map(|a| lower(a)).collect();
                Frame::Verbatim(info::render(&self.shared, &sections).into_bytes())
            }
            "command" => crate::command::command(self, &argv),
            "shutdown" => return self.shutdown(&argv),
            "multi" => {
                if self.multi.is_some() {
                    Frame::err("ERR MULTI calls can not be nested")
                } else {
                    self.multi = Some((Vec::new(), false));
                    self.update_meta(|m| m.multi = 0);
                    Frame::ok()
                }
            }
            "exec" => return self.exec(),
            "discard" => match self.multi.take() {
                None => Frame::err("ERR DISCARD without MULTI"),
                Some(_) => {
                    self.unwatch_all();
                    self.update_meta(|m| m.multi = -1);
                    Frame::ok()
                }
            },
            "watch" => self.watch(&argv),
            "unwatch" => {
                self.unwatch_all();
                Frame::ok()
            }
            "subscribe" | "psubscribe" => return self.subscribe(&argv, name == "psubscribe"),
            "unsubscribe" | "punsubscribe" => {
                return self.unsubscribe(&argv, name == "punsubscribe")
            }
            "publish" => {
                let limit = self.shared.opts.lock().pubsub_limit;
                let n = self.shared.pubsub.publish(&argv[1], &argv[2], &limit);
                // Replicas deliver it to their own subscribers (Redis propagates PUBLISH to
                // the replication stream only, never to the AOF).
                self.shared
                    .engine
                    .replication()
                    .feed_ops(&[(self.session.db, argv.clone())]);
                Frame::Int(n)
            }
            "ssubscribe" => return self.ssubscribe(&argv),
            "sunsubscribe" => return self.sunsubscribe(&argv),
            "spublish" => {
                let limit = self.shared.opts.lock().pubsub_limit;
                let n = self.shared.pubsub.publish_shard(&argv[1], &argv[2], &limit);
                // Without cluster mode Redis propagates SPUBLISH to replicas (not the AOF),
                // as PUBLISH.
                self.shared
                    .engine
                    .replication()
                    .feed_ops(&[(self.session.db, argv.clone())]);
                Frame::Int(n)
            }
            "pubsub" => self.pubsub(&argv),
            "function" | "script" | "eval" | "evalsha" | "eval_ro" | "evalsha_ro" | "fcall"
            | "fcall_ro" => return self.script(&argv),
            "debug" | "object" | "memory" => crate::command::introspect(self, name, &argv),
            "lastsave" => Frame::Int(self.shared.engine.stats().last_save_unix),
            "save" => {
                let engine = self.shared.engine.clone();
                let r = tokio::task::block_in_place(|| engine.snapshot_now(None));
                match r {
                    Ok(_) => Frame::ok(),
                    Err(forkless::Error::InProgress(_)) => {
                        Frame::err("ERR Background save already in progress")
                    }
                    Err(e) => Frame::err(format!("ERR {e}")),
                }
            }
            "bgsave" => {
                let schedule = argv
                    .get(1)
                    .is_some_and(|a| a.eq_ignore_ascii_case(b"schedule"));
                if argv.len() > 2 || (argv.len() == 2 && !schedule) {
                    Frame::syntax()
                } else {
                    match self.shared.engine.start_snapshot() {
                        Ok(()) => Frame::Simple(Cow::Borrowed("Background saving started")),
                        Err(forkless::Error::InProgress(_)) if schedule => {
                            Frame::Simple(Cow::Borrowed("Background saving scheduled"))
                        }
                        Err(forkless::Error::InProgress(_)) => {
                            Frame::err("ERR Background save already in progress")
                        }
                        Err(e) => Frame::err(format!("ERR {e}")),
                    }
                }
            }
            "replconf" => self.replconf(&argv),
            "sync" | "psync" => {
                if self.multi.is_some() || self.in_exec {
                    Frame::err("ERR Replica can't interact with the keyspace")
                } else if self.shared.repl.link_info().is_some_and(|l| !l.up) {
                    Frame::err("NOMASTERLINK Can't SYNC while not connected with my master")
                } else {
                    let psync = (name == "psync").then(|| {
                        (
                            String::from_utf8_lossy(&argv[1]).into_owned(),
                            int_of(&argv[2]).unwrap_or(-1),
                        )
                    });
                    return Step::Replicate(crate::repl::SyncRequest {
                        psync,
                        port: self.repl_port,
                        ip: self.repl_ip.clone(),
                        capa_eof: self.repl_capa_eof,
                    });
                }
            }
            "wait" => {
                let (Some(num), Some(timeout)) = (int_of(&argv[1]), int_of(&argv[2])) else {
                    return Step::Reply(Frame::err("ERR value is not an integer or out of range"));
                };
                if timeout < 0 {
                    Frame::err("ERR timeout is negative")
                } else if self.shared.repl.is_replica() {
                    Frame::err("ERR WAIT cannot be used with replica instances. Please also note that since Redis 4.0 if a replica is configured to be writable (which is not the default) writes to replicas are just local and are not propagated.")
                } else {
                    let target = self.shared.engine.replication().offset();
                    let num = num.max(0) as usize;
                    if self.in_exec {
                        Frame::Int(self.shared.repl.acked(target) as i64)
                    } else {
                        return Step::Wait {
                            target,
                            num,
                            timeout_ms: timeout as u64,
                        };
                    }
                }
            }
            "replicaof" | "slaveof" => crate::repl::replicaof_command(&self.shared, &argv),
            "role" => crate::repl::role(&self.shared),
            "bgrewriteaof" => match self.shared.engine.start_rewrite() {
                Ok(()) => Frame::Simple(Cow::Borrowed(
                    "Background append only file rewriting started",
                )),
                Err(forkless::Error::InProgress(_)) => {
                    Frame::err("ERR Background append only file rewriting already in progress")
                }
                // The engine's text is the whole reply already ("ERR no log to rewrite ...").
                Err(forkless::Error::Unsupported(m)) => Frame::err(m),
                Err(e) => Frame::err(format!("ERR {e}")),
            },
            "xread" | "xreadgroup" => return self.xread(name, &argv),
            _ if blocking::COMMANDS.iter().any(|(n, _)| *n == name) => {
                return match blocking::parse_request(name, &argv) {
                    Ok(req) => Step::Block(req),
                    Err(f) => Step::Reply(f),
                };
            }
            _ => return self.data(name, &argv),
        };
        Step::Reply(f)
    }

    /// XREAD / XREADGROUP: run once; with BLOCK and nothing to read, block until a write to one
    /// of the streams makes the read answer (`$` is resolved to each stream's last ID first, so
    /// an entry added between the two steps is read, not missed).
    fn xread(&mut self, name: &str, argv: &[Vec<u8>]) -> Step {
        // Find BLOCK and STREAMS as the keyspace's parser does; anything odd: let it answer.
        let (mut block, mut count, mut streams) = (None, false, None);
        let mut i = 1;
        while i < argv.len() {
            let a = &argv[i];
            let more = argv.len() - i - 1;
            if a.eq_ignore_ascii_case(b"block") && more > 0 {
                block = Some(i);
                i += 2;
            } else if a.eq_ignore_ascii_case(b"count") && more > 0 {
                count = true;
                i += 2;
            } else if a.eq_ignore_ascii_case(b"streams") && more > 0 {
                streams = Some(i + 1);
                break;
            } else if a.eq_ignore_ascii_case(b"group") && more >= 2 {
                i += 3;
            } else {
                i += 1;
            }
        }
        let (Some(b), Some(st)) = (block, streams) else {
            return self.data(name, argv);
        };
        let timeout = match int_of(&argv[b + 1]) {
            Some(t) if t >= 0 => t as u64,
            _ => return self.data(name, argv),
        };
        let n = (argv.len() - st) / 2;
        if !(argv.len() - st).is_multiple_of(2) || n == 0 {
            return self.data(name, argv);
        }
        let mut resolved = argv.to_vec();
        for k in 0..n {
            if resolved[st + n + k] != b"$" {
                continue;
            }
            let mut s = forkless_keyspace::Session {
                db: self.session.db,
            };
            let info = self
                .shared
                .ks
                .execute(&mut s, &[b"XINFO", b"STREAM", &argv[st + k]]);
            let last = match info {
                forkless_keyspace::Reply::Array(items) => items
                    .chunks(2)
                    .find(|p| p[0] == forkless_keyspace::Reply::bulk("last-generated-id"))
                    .and_then(|p| match &p[1] {
                        forkless_keyspace::Reply::Bulk(b) => Some(b.clone()),
                        _ => None,
                    }),
                forkless_keyspace::Reply::Error(e) if e.starts_with("ERR no such key") => {
                    Some(b"0-0".to_vec())
                }
                _ => None,
            };
            if let Some(l) = last {
                resolved[st + n + k] = l;
            }
        }
        let step = self.data(name, &resolved);
        if !matches!(step, Step::Reply(Frame::NullArray)) {
            return step;
        }
        let mut retry: Vec<Vec<u8>> = vec![resolved[0].clone()];
        if !count {
            retry.push(b"COUNT".to_vec());
            retry.push(b"1000".to_vec());
        }
        for (j, a) in resolved.iter().enumerate().skip(1) {
            if j != b && j != b + 1 {
                retry.push(a.clone());
            }
        }
        Step::Block(blocking::Request {
            keys: resolved[st..st + n].to_vec(),
            pop: blocking::Pop::Stream { argv: retry },
            timeout_ms: timeout,
        })
    }

    /// A scripting command (EVAL..., FCALL..., SCRIPT, FUNCTION), through the engine. The script
    /// may run long: it runs where blocking is allowed (`block_in_place`), so this worker's
    /// other connections move on, and SCRIPT KILL from them gets through.
    fn script(&mut self, argv: &[Vec<u8>]) -> Step {
        let refs: Vec<&[u8]> = argv.iter().map(Vec::as_slice).collect();
        let engine = self.shared.engine.clone();
        let guard = self.script_guard();
        let session = &mut self.session;
        let (out, d, touched, counted) = tokio::task::block_in_place(|| {
            let (out, d, touched) = forkless_script::with_guard(guard, || {
                engine.execute_script_deferred(session, &refs)
            });
            // Read on the thread that ran the script (the flag is thread-local).
            (out, d, touched, forkless_script::take_final_error_counted())
        });
        self.error_counted = counted && out.is_error();
        if touched.all {
            self.shared.after_db_change(DbChange::Whole(None));
        } else if !touched.keys.is_empty() {
            for (db, key) in &touched.keys {
                self.after_write(*db, &[key.as_slice()]);
            }
        }
        let f = Frame::from(out);
        if d.is_ready() {
            Step::Reply(f)
        } else {
            Step::Durable(f, d)
        }
    }

    /// A keyspace command, through the engine (MISCONF, durability ticket).
    fn data(&mut self, name: &str, argv: &[Vec<u8>]) -> Step {
        let refs: Vec<&[u8]> = argv.iter().map(Vec::as_slice).collect();
        let db = self.session.db;
        let emptied = self.before_db_change(name, argv);
        let spec = self
            .shared
            .commands
            .lookup(name.as_bytes())
            .and_then(|c| c.spec);
        let (reply, d) = self
            .shared
            .engine
            .execute_deferred_spec(&mut self.session, spec, &refs);
        if self.session.db != db {
            let d = self.session.db;
            self.update_meta(|m| m.db = d);
        }
        match emptied {
            Some(keys) if !reply.is_error() => {
                self.shared.after_db_change(DbChange::Emptied {
                    keys,
                    swap: name == "swapdb",
                });
            }
            _ => self.after_data(name, spec, &refs, db, &reply),
        }
        let f = if self.proto == Proto::Resp3 {
            resp3_shape(name, argv, reply)
        } else {
            reply.into()
        };
        if d.is_ready() {
            Step::Reply(f)
        } else {
            Step::Durable(f, d)
        }
    }

    /// FLUSHDB, FLUSHALL, SWAPDB: the watched keys of the databases they empty, with their
    /// presence before the change (`Watches::touch_emptied` decides afterwards).
    fn before_db_change(
        &self,
        name: &str,
        argv: &[Vec<u8>],
    ) -> Option<Vec<crate::state::EmptiedKey>> {
        let n = self.shared.ks.databases();
        let pairs: Vec<(u32, Option<u32>)> = match name {
            "flushall" => (0..n).map(|d| (d, None)).collect(),
            "flushdb" => vec![(self.session.db, None)],
            "swapdb" => {
                let a = std::str::from_utf8(argv.get(1)?)
                    .ok()?
                    .parse::<u32>()
                    .ok()?;
                let b = std::str::from_utf8(argv.get(2)?)
                    .ok()?
                    .parse::<u32>()
                    .ok()?;
                if a >= n || b >= n {
                    return None;
                }
                vec![(a, Some(b)), (b, Some(a))]
            }
            _ => return None,
        };
        let shared = &self.shared;
        Some(
            shared
                .watches
                .before_db_change(&pairs, &|d, k| shared.presence(d, k)),
        )
    }

    /// After a data command: wake WATCHers and blocked clients of what it wrote.
    fn after_data(
        &mut self,
        name: &str,
        spec: Option<&'static forkless_keyspace::CommandSpec>,
        refs: &[&[u8]],
        db: u32,
        reply: &forkless_keyspace::Reply,
    ) {
        if let Some(spec) = spec {
            if spec.is_write() && !reply.is_error() {
                if name == "sort" {
                    // SORT locks every shard (BY/GET patterns name any key) but writes only its
                    // STORE destination, if any: only that key is touched.
                    let dst = forkless_keyspace::SortOptions::parse(refs, false)
                        .ok()
                        .and_then(|o| o.store);
                    if let Some(dst) = dst {
                        self.after_write(db, &[dst]);
                    }
                } else if spec.flags & ALL_SHARDS != 0 {
                    let which = if name == "flushdb" { Some(db) } else { None };
                    self.shared.after_db_change(DbChange::Whole(which));
                } else {
                    let keys: Vec<&[u8]> = spec.key_indices(refs.len()).map(|i| refs[i]).collect();
                    self.after_write(db, &keys);
                }
            }
        }
    }

    fn ping(&mut self, argv: &[Vec<u8>]) -> Frame {
        if argv.len() > 2 {
            return wrong_args("ping");
        }
        if self.proto == Proto::Resp2 && self.in_pubsub() {
            let msg = argv.get(1).cloned().unwrap_or_default();
            return Frame::Array(vec![Frame::bulk("pong"), Frame::Bulk(msg)]);
        }
        match argv.get(1) {
            Some(m) => Frame::Bulk(m.clone()),
            None => Frame::Simple(Cow::Borrowed("PONG")),
        }
    }

    fn reset(&mut self) -> Frame {
        self.multi = None;
        self.shared.monitors.remove(self.entry.id);
        self.disable_tracking();
        self.unwatch_all();
        let id = self.entry.id;
        for c in std::mem::take(&mut self.subs) {
            self.shared.pubsub.unsubscribe(id, &c, false);
        }
        for c in std::mem::take(&mut self.psubs) {
            self.shared.pubsub.unsubscribe(id, &c, true);
        }
        for c in std::mem::take(&mut self.ssubs) {
            self.shared.pubsub.unsubscribe_shard(id, &c);
        }
        self.update_meta(|m| {
            m.sub = 0;
            m.psub = 0;
            m.ssub = 0;
        });
        self.session.db = 0;
        self.proto = Proto::Resp2;
        self.reply_mode = ReplyMode::On;
        self.authed = !self.shared.acl.auth_required();
        self.set_user(self.shared.acl.default_user());
        self.update_meta(|m| {
            m.db = 0;
            m.name.clear();
            m.resp = 2;
            m.sub = 0;
            m.psub = 0;
            m.multi = -1;
            m.monitor = false;
        });
        Frame::Simple(Cow::Borrowed("RESET"))
    }

    /// Authenticate as `user` (default: the default user) with `pass`
    /// (`ACLAuthenticateUser`); a failure is logged and answered `-WRONGPASS`.
    fn check_pass(&mut self, cmd: &[u8], user: Option<&[u8]>, pass: &[u8]) -> Result<(), Frame> {
        let name = user.unwrap_or(b"default");
        match self.shared.acl.authenticate(name, pass) {
            Some(u) => {
                self.authed = true;
                self.set_user(u);
                Ok(())
            }
            None => {
                let ctx = if self.multi.is_some() {
                    crate::acl::Context::Multi
                } else {
                    crate::acl::Context::Toplevel
                };
                let info = self.client_info();
                self.shared.acl.log(
                    crate::acl::Denied::Auth,
                    ctx,
                    cmd,
                    &String::from_utf8_lossy(name),
                    info,
                );
                Err(Frame::err(
                    "WRONGPASS invalid username-password pair or user is disabled.",
                ))
            }
        }
    }

    fn auth(&mut self, argv: &[Vec<u8>]) -> Frame {
        if argv.len() > 3 {
            return Frame::syntax();
        }
        if argv.len() == 2 && self.shared.acl.default_nopass() {
            return Frame::err("ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?");
        }
        let (user, pass) = if argv.len() == 3 {
            (Some(argv[1].as_slice()), &argv[2])
        } else {
            (None, &argv[1])
        };
        match self.check_pass(&argv[0], user, pass) {
            Ok(()) => Frame::ok(),
            Err(f) => f,
        }
    }

    fn hello(&mut self, argv: &[Vec<u8>]) -> Frame {
        let mut proto = self.proto;
        let mut i = 1;
        if argv.len() >= 2 {
            match int_of(&argv[1]) {
                Some(2) => proto = Proto::Resp2,
                Some(3) => proto = Proto::Resp3,
                Some(_) => {
                    return Frame::err("NOPROTO unsupported protocol version");
                }
                None => {
                    return Frame::err("ERR Protocol version is not an integer or out of range")
                }
            }
            i = 2;
        }
        let mut setname = None;
        while i < argv.len() {
            let more = argv.len() - i - 1;
            if argv[i].eq_ignore_ascii_case(b"auth") && more >= 2 {
                let (cmd, user, pass) = (argv[0].clone(), argv[i + 1].clone(), argv[i + 2].clone());
                if let Err(f) = self.check_pass(&cmd, Some(&user), &pass) {
                    return f;
                }
                i += 3;
            } else if argv[i].eq_ignore_ascii_case(b"setname") && more >= 1 {
                setname = Some(argv[i + 1].clone());
                i += 2;
            } else {
                return Frame::err(format!(
                    "ERR Syntax error in HELLO option '{}'",
                    String::from_utf8_lossy(&argv[i])
                ));
            }
        }
        if !self.authed && self.shared.acl.auth_required() {
            return Frame::err(
                "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time",
            );
        }
        if let Some(n) = setname {
            if let Err(f) = valid_name(&n) {
                return f;
            }
            let n = String::from_utf8_lossy(&n).into_owned();
            self.update_meta(|m| m.name = n);
        }
        self.proto = proto;
        let resp = if proto == Proto::Resp3 { 3 } else { 2 };
        self.update_meta(|m| m.resp = resp);
        Frame::Map(vec![
            (Frame::bulk("server"), Frame::bulk("redis")),
            (Frame::bulk("version"), Frame::bulk(info::REDIS_VERSION)),
            (Frame::bulk("proto"), Frame::Int(resp.into())),
            (Frame::bulk("id"), Frame::Int(self.entry.id as i64)),
            (Frame::bulk("mode"), Frame::bulk("standalone")),
            (Frame::bulk("role"), Frame::bulk("master")),
            (Frame::bulk("modules"), Frame::Array(Vec::new())),
        ])
    }

    fn client(&mut self, argv: &[Vec<u8>]) -> Step {
        let sub = lower(&argv[1]);
        let f = match (sub.as_str(), argv.len()) {
            ("id", 2) => Frame::Int(self.entry.id as i64),
            ("getname", 2) => {
                let n = self.entry.meta.lock().name.clone();
                if n.is_empty() {
                    Frame::Null
                } else {
                    Frame::bulk(n)
                }
            }
            ("setname", 3) => match valid_name(&argv[2]) {
                Ok(()) => {
                    let n = String::from_utf8_lossy(&argv[2]).into_owned();
                    self.update_meta(|m| m.name = n);
                    Frame::ok()
                }
                Err(f) => f,
            },
            ("list", _) => crate::command::client_list(self, &argv[2..]),
            ("info", 2) => {
                let line = crate::command::client_line(&self.shared, &self.entry);
                Frame::Verbatim(format!("{line}\n").into_bytes())
            }
            ("kill", _) => crate::command::client_kill(self, &argv[2..]),
            ("unblock", 3 | 4) => crate::command::client_unblock(self, argv),
            ("reply", 3) => {
                let m = lower(&argv[2]);
                match m.as_str() {
                    "on" => {
                        self.reply_mode = ReplyMode::On;
                        Frame::ok()
                    }
                    "off" => {
                        self.reply_mode = ReplyMode::Off;
                        return Step::Nothing;
                    }
                    "skip" => {
                        // The SKIP itself is not answered; the next reply is dropped.
                        if self.reply_mode == ReplyMode::On {
                            self.reply_mode = ReplyMode::Skip;
                        }
                        return Step::Nothing;
                    }
                    _ => Frame::syntax(),
                }
            }
            ("no-evict" | "no-touch", 3) => Frame::ok(),
            ("tracking", n) if n >= 3 => match crate::tracking::parse(&argv[2..]) {
                Err(e) => Frame::err(e),
                Ok(None) => {
                    self.disable_tracking();
                    Frame::ok()
                }
                Ok(Some(opts)) => {
                    let shared = self.shared.clone();
                    let lookup = |id: u64| shared.clients.lock().get(&id).cloned();
                    match self.shared.tracking.enable(&self.entry, opts, lookup) {
                        Ok(()) => {
                            self.tracking_changed();
                            Frame::ok()
                        }
                        Err(e) => Frame::err(e),
                    }
                }
            },
            ("caching", 3) => {
                let yes = match lower(&argv[2]).as_str() {
                    "yes" => true,
                    "no" => false,
                    _ => return Step::Reply(Frame::syntax()),
                };
                match self.shared.tracking.set_caching(self.entry.id, yes) {
                    Ok(()) => Frame::ok(),
                    Err(e) => Frame::err(e),
                }
            }
            ("getredir", 2) => Frame::Int(match self.shared.tracking.info(self.entry.id) {
                None => -1,
                Some((o, _, _)) => o.redirect as i64,
            }),
            ("trackinginfo", 2) => {
                let info = self.shared.tracking.info(self.entry.id);
                let mut flags = Vec::new();
                let (redirect, prefixes) = match &info {
                    None => {
                        flags.push(Frame::bulk("off"));
                        (-1, Vec::new())
                    }
                    Some((o, caching, broken)) => {
                        flags.push(Frame::bulk("on"));
                        for (on, name) in [
                            (o.bcast, "bcast"),
                            (o.optin, "optin"),
                            (o.optout, "optout"),
                            (*caching == Some(true), "caching-yes"),
                            (*caching == Some(false), "caching-no"),
                            (o.noloop, "noloop"),
                            (*broken, "broken_redirect"),
                        ] {
                            if on {
                                flags.push(Frame::bulk(name));
                            }
                        }
                        let p = o.prefixes.iter().map(|p| Frame::Bulk(p.clone())).collect();
                        (o.redirect as i64, p)
                    }
                };
                Frame::Map(vec![
                    (Frame::bulk("flags"), Frame::Array(flags)),
                    (Frame::bulk("redirect"), Frame::Int(redirect)),
                    (Frame::bulk("prefixes"), Frame::Array(prefixes)),
                ])
            }
            _ => bad_subcommand(
                "client",
                &argv[1],
                &[
                    "id",
                    "getname",
                    "setname",
                    "list",
                    "info",
                    "kill",
                    "unblock",
                    "reply",
                    "no-evict",
                    "no-touch",
                    "tracking",
                    "caching",
                    "getredir",
                    "trackinginfo",
                ],
            ),
        };
        Step::Reply(f)
    }

    fn config(&mut self, argv: &[Vec<u8>]) -> Frame {
        let sub = lower(&argv[1]);
        match sub.as_str() {
            "get" if argv.len() >= 3 => {
                let mut out: Vec<(Frame, Frame)> = Vec::new();
                for p in &argv[2..] {
                    for (k, v) in self.shared.engine.config_get(&lower(p)) {
                        if !out.iter().any(|(f, _)| *f == Frame::bulk(k)) {
                            out.push((Frame::bulk(k), Frame::bulk(v)));
                        }
                    }
                }
                Frame::Map(out)
            }
            "set" if argv.len() >= 4 && argv.len().is_multiple_of(2) => {
                let pairs: Vec<(String, String)> = argv[2..]
                    .chunks(2)
                    .map(|p| (lower(&p[0]), String::from_utf8_lossy(&p[1]).into_owned()))
                    .collect();
                let refs: Vec<(&str, &str)> = pairs
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect();
                match self.shared.engine.config_set(&refs) {
                    Ok(()) => {
                        self.shared.refresh_options();
                        Frame::ok()
                    }
                    Err(forkless::Error::Config(forkless::ConfigError::UnknownOption {
                        name, ..
                    })) => Frame::err(format!(
                        "ERR Unknown option or number of arguments for CONFIG SET - '{name}'"
                    )),
                    Err(forkless::Error::Config(forkless::ConfigError::BadValue {
                        name, why, ..
                    })) => Frame::err(format!(
                        "ERR CONFIG SET failed (possibly related to argument '{name}') - {why}"
                    )),
                    Err(forkless::Error::Config(forkless::ConfigError::Immutable { name })) => {
                        Frame::err(format!(
                            "ERR CONFIG SET failed (possibly related to argument '{name}') - can't set immutable config"
                        ))
                    }
                    Err(e) => Frame::err(format!("ERR CONFIG SET failed - {e}")),
                }
            }
            "resetstat" if argv.len() == 2 => {
                let s = &self.shared.stats;
                for c in [
                    &s.commands,
                    &s.rejected,
                    &s.net_input,
                    &s.net_output,
                    &s.errors,
                    &s.connections,
                ] {
                    c.store(0, Ordering::Relaxed);
                }
                // Redis's resetCommandTableStats and resetErrorTableStats.
                for (_, r) in self.shared.cmdstats.rows() {
                    for c in [&r.calls, &r.usec, &r.rejected, &r.failed] {
                        c.store(0, Ordering::Relaxed);
                    }
                }
                self.shared.errorstats.lock().clear();
                Frame::ok()
            }
            "rewrite" if argv.len() == 2 => match self.shared.engine.config_rewrite() {
                Ok(()) => Frame::ok(),
                Err(forkless::Error::Unsupported(m)) => Frame::err(m),
                Err(e) => Frame::err(format!("ERR Rewriting config file: {e}")),
            },
            _ => bad_subcommand("config", &argv[1], &["get", "set", "resetstat", "rewrite"]),
        }
    }

    fn shutdown(&mut self, argv: &[Vec<u8>]) -> Step {
        let mut save = None;
        for a in &argv[1..] {
            let a = lower(a);
            match a.as_str() {
                "nosave" => save = Some(false),
                "save" => save = Some(true),
                "now" | "force" => {}
                "abort" => return Step::Reply(Frame::err("ERR No shutdown in progress.")),
                _ => return Step::Reply(Frame::syntax()),
            }
        }
        // A script past busy-reply-threshold (Redis's `isInsideYieldingLongCommand`): only
        // SHUTDOWN NOSAVE, which stops it wherever it is (its effects are dropped).
        if let Some(busy) = self.shared.engine.scripting().busy_error() {
            if save != Some(false) {
                return Step::Reply(Frame::err(busy));
            }
            self.shared.engine.scripting().run_state().abort();
        }
        *self.shared.shutdown_save.lock() = save;
        log("User requested shutdown...");
        self.shared.shutting_down.store(true, Ordering::SeqCst);
        self.shared.shutdown.notify_one();
        // Redis closes the connection without a reply when the shutdown succeeds.
        Step::Nothing
    }

    /// CLIENT TRACKING OFF (also RESET and disconnect).
    pub(crate) fn disable_tracking(&mut self) {
        self.shared.tracking.disable(self.entry.id);
        self.tracking_changed();
    }

    /// The keyspace records expiry and eviction events for tracking while a client tracks.
    fn tracking_changed(&self) {
        let classes = if self.shared.tracking.active() {
            forkless_keyspace::notify::Flags(
                forkless_keyspace::notify::Flags::EXPIRED.0
                    | forkless_keyspace::notify::Flags::EVICTED.0,
            )
        } else {
            forkless_keyspace::notify::Flags::default()
        };
        self.shared.ks.set_internal_events(classes);
    }

    /// After a data write of this connection: WATCHers at once; blocked clients at once, or,
    /// inside an EXEC run command by command, once the transaction is over.
    fn after_write(&mut self, db: u32, keys: &[&[u8]]) {
        let by = Some(self.entry.id);
        if !self.in_exec {
            self.shared.after_write_by(db, keys, by);
            return;
        }
        for k in keys {
            self.shared.watches.touch(db, k);
            self.shared.tracking.invalidate(k, by);
            self.exec_written.push((db, k.to_vec()));
        }
    }

    /// EXEC; monitors see the queued commands once they ran (then EXEC itself, from `execute`).
    fn exec(&mut self) -> Step {
        let queued = self
            .shared
            .monitors
            .active()
            .then(|| self.multi.as_ref().map(|(q, _)| q.clone()))
            .flatten();
        let mut db = self.session.db;
        let step = self.exec_queue();
        let ran = matches!(
            &step,
            Step::Reply(Frame::Array(_)) | Step::Durable(Frame::Array(_), _)
        );
        if let (Some(queue), true) = (queued, ran) {
            for argv in &queue {
                let name = lower(&argv[0]);
                // Shown with the database selected after it ran (a SELECT shows its target).
                if name == "select" {
                    if let Some(n) = argv.get(1).and_then(|a| int_of(a)) {
                        db = n as u32;
                    }
                }
                if crate::monitor::shown(&name, argv) {
                    self.shared.monitors.feed(db, &self.entry.addr, argv);
                }
            }
        }
        step
    }

    fn exec_queue(&mut self) -> Step {
        let Some((queue, failed)) = self.multi.take() else {
            return Step::Reply(Frame::err("ERR EXEC without MULTI"));
        };
        self.update_meta(|m| m.multi = -1);
        if failed {
            self.unwatch_all();
            return Step::Reply(Frame::err(
                "EXECABORT Transaction discarded because of previous errors.",
            ));
        }
        // The server's state may have changed since the commands were queued.
        let names: Vec<String> = queue.iter().map(|a| lower(&a[0])).collect();
        let oom = names
            .iter()
            .any(|n| self.would_oom(n))
            .then_some(forkless_keyspace::memory::OOM_ERROR);
        if let Some(e) = oom.or_else(|| self.state_refusal(names.iter().map(String::as_str))) {
            self.unwatch_all();
            return Step::Reply(Frame::err(format!(
                "EXECABORT Transaction discarded because of: {e}"
            )));
        }
        let mut aborted = self.watch_dirty.load(Ordering::SeqCst);
        if !aborted {
            // A watched key that existed and has expired (or vanished) since aborts too.
            for (db, key, existed) in &self.watched {
                if *existed {
                    let mut s = forkless_keyspace::Session { db: *db };
                    let r = self.shared.ks.execute(&mut s, &[b"EXISTS", key]);
                    if r == forkless_keyspace::Reply::Integer(0) {
                        aborted = true;
                    }
                }
            }
        }
        self.unwatch_all();
        if aborted {
            return Step::Reply(Frame::NullArray);
        }
        // ACLs are checked again: rules may have changed since the commands were queued
        // (Redis's execCommand). A refused command gets its error in place; the rest run.
        if !self.user.unrestricted() {
            let refused = self.exec_acl_refusals(&queue);
            if !refused.is_empty() {
                let run: Vec<Vec<Vec<u8>>> = queue
                    .into_iter()
                    .enumerate()
                    .filter(|(i, _)| !refused.iter().any(|(j, _)| j == i))
                    .map(|(_, c)| c)
                    .collect();
                let step = if run.is_empty() {
                    Step::Reply(Frame::Array(Vec::new()))
                } else {
                    self.exec_run(run)
                };
                return crate::acl_cmd::splice_refusals(step, refused);
            }
        }
        self.exec_run(queue)
    }

    /// Run a transaction's commands (past the EXEC checks).
    fn exec_run(&mut self, queue: Vec<Vec<Vec<u8>>>) -> Step {
        // What kind of queue: one lookup per command, then two questions over it.
        let (scripts_and_data, one_unit) = {
            let names: Vec<String> = queue.iter().map(|a| lower(&a[0])).collect();
            let is_data = |n: &str| {
                self.shared
                    .commands
                    .lookup(n.as_bytes())
                    .is_some_and(|c| c.served == crate::resolve::Served::Data)
            };
            let data_or = |other: &dyn Fn(usize) -> bool| {
                names
                    .iter()
                    .enumerate()
                    .all(|(i, n)| is_data(n) || other(i))
            };
            (
                // Data commands and scripts (EVAL*, FCALL*): one unit holding every shard, the
                // whole queue's effects one MULTI/EXEC in the log (Redis 7.0).
                names.iter().any(|n| forkless_script::is_runner(n))
                    && data_or(&|i| forkless_script::is_runner(&names[i])),
                // Data commands, possibly with server commands that leave the keyspace alone
                // (PING, TIME, PUBLISH, DEBUG SLEEP...): one engine transaction (one lock set,
                // one unit in the log), the server commands run inside it (`unit_safe`).
                data_or(&|i| unit_safe(&names[i], &queue[i])),
            )
        };
        if scripts_and_data {
            return self.exec_with_scripts(&queue);
        }
        if one_unit {
            let db = self.session.db;
            let mut served: Vec<Option<Frame>> = vec![None; queue.len()];
            let mut session = self.session;
            let engine = self.shared.engine.clone();
            let (r, d) = with_queue_refs(&queue, |refs| {
                let is = |argv: &[&[u8]]| unit_safe(&lower(argv[0]), argv);
                let mut run = |i: usize| {
                    let argv = queue[i].clone();
                    let name = lower(&argv[0]);
                    served[i] = Some(match self.run_command(&name, argv) {
                        Step::Reply(f) | Step::Durable(f, _) => f,
                        _ => Frame::ok(),
                    });
                };
                let mut foreign = forkless_keyspace::Foreign {
                    is: &is,
                    run: &mut run,
                };
                engine.execute_multi_foreign_deferred(&mut session, refs, &mut foreign)
            });
            self.session = session;
            let f = match r {
                Ok(replies) => {
                    // SELECT inside the transaction moves later commands: follow it.
                    let mut cur = db;
                    let mut frames = Vec::with_capacity(replies.len());
                    for ((argv, reply), own) in queue.iter().zip(replies).zip(served) {
                        if let Some(f) = own {
                            frames.push(f);
                            continue;
                        }
                        let name = lower(&argv[0]);
                        let refs: Vec<&[u8]> = argv.iter().map(Vec::as_slice).collect();
                        let spec = self.shared.table.lookup(name.as_bytes());
                        self.after_data(&name, spec, &refs, cur, &reply);
                        if name == "select" && !reply.is_error() {
                            if let Some(n) = int_of(&argv[1]) {
                                cur = n as u32;
                            }
                        }
                        frames.push(if self.proto == Proto::Resp3 {
                            resp3_shape(&name, argv, reply)
                        } else {
                            reply.into()
                        });
                    }
                    let nd = self.session.db;
                    self.update_meta(|m| m.db = nd);
                    Frame::Array(frames)
                }
                Err(e) => Frame::from(e),
            };
            return if d.is_ready() {
                Step::Reply(f)
            } else {
                Step::Durable(f, d)
            };
        }
        self.in_exec = true;
        let mut replies = Vec::with_capacity(queue.len());
        let mut last_ticket = None;
        for argv in queue {
            let name = lower(&argv[0]);
            let r = match self.run_command(&name, argv) {
                Step::Reply(f) => f,
                Step::Durable(f, d) => {
                    last_ticket = Some(d);
                    f
                }
                Step::Many(mut fs) => fs.pop().unwrap_or(Frame::Null),
                Step::Nothing | Step::Close(_) => Frame::ok(),
                // Refused inside EXEC before they get here (SYNC) or answered at once (WAIT).
                Step::Replicate(_) => Frame::err("ERR Replica can't interact with the keyspace"),
                Step::Wait { target, .. } => Frame::Int(self.shared.repl.acked(target) as i64),
                Step::Block(req) => {
                    let db = self.session.db;
                    let shared = self.shared.clone();
                    match self.shared.blocking.block(
                        &self.shared.engine,
                        db,
                        req,
                        self.proto,
                        false,
                        &|d, k| shared.watches.touch(d, k),
                    ) {
                        blocking::Blocked::Now((f, d)) => {
                            if d.is_some() {
                                last_ticket = d;
                            }
                            f
                        }
                        blocking::Blocked::Wait(id, _) => {
                            self.shared.blocking.cancel(id);
                            Frame::NullArray
                        }
                    }
                }
            };
            replies.push(r);
        }
        self.in_exec = false;
        // WATCH and tracking were told as each command ran; blocked clients are served now.
        for (db, key) in std::mem::take(&mut self.exec_written) {
            let shared = self.shared.clone();
            self.shared
                .blocking
                .serve(&self.shared.engine, db, &[key.as_slice()], &|d, k| {
                    shared.watches.touch(d, k)
                });
        }
        // Tickets resolve in log order: the last one covers the earlier ones.
        match last_ticket {
            Some(d) => Step::Durable(Frame::Array(replies), d),
            None => Step::Reply(Frame::Array(replies)),
        }
    }

    /// EXEC of a queue of data commands and scripts (see `forkless::Engine::execute_multi_script_deferred`).
    fn exec_with_scripts(&mut self, queue: &[Vec<Vec<u8>>]) -> Step {
        let db = self.session.db;
        let engine = self.shared.engine.clone();
        let guard = self.script_guard();
        let session = &mut self.session;
        let (r, d, touched) = with_queue_refs(queue, |refs| {
            tokio::task::block_in_place(|| {
                forkless_script::with_guard(guard, || {
                    engine.execute_multi_script_deferred(session, refs)
                })
            })
        });
        let f = match r {
            Ok(replies) => {
                let mut cur = db;
                let mut frames = Vec::with_capacity(replies.len());
                for (argv, reply) in queue.iter().zip(replies) {
                    let name = lower(&argv[0]);
                    frames.push(match reply {
                        forkless_script::MultiReply::Script(out) => Frame::from(out),
                        forkless_script::MultiReply::Data(reply) => {
                            let refs: Vec<&[u8]> = argv.iter().map(Vec::as_slice).collect();
                            let spec = self.shared.table.lookup(name.as_bytes());
                            self.after_data(&name, spec, &refs, cur, &reply);
                            if name == "select" && !reply.is_error() {
                                if let Some(n) = int_of(&argv[1]) {
                                    cur = n as u32;
                                }
                            }
                            if self.proto == Proto::Resp3 {
                                resp3_shape(&name, argv, reply)
                            } else {
                                reply.into()
                            }
                        }
                    });
                }
                if touched.all {
                    self.shared.after_db_change(DbChange::Whole(None));
                } else {
                    for (db, key) in &touched.keys {
                        self.after_write(*db, &[key.as_slice()]);
                    }
                }
                let nd = self.session.db;
                self.update_meta(|m| m.db = nd);
                Frame::Array(frames)
            }
            Err(e) => Frame::from(e),
        };
        if d.is_ready() {
            Step::Reply(f)
        } else {
            Step::Durable(f, d)
        }
    }

    fn watch(&mut self, argv: &[Vec<u8>]) -> Frame {
        if self.multi.is_some() {
            return Frame::err("ERR WATCH inside MULTI is not allowed");
        }
        let db = self.session.db;
        for key in &argv[1..] {
            if self.watched.iter().any(|(d, k, _)| *d == db && k == key) {
                continue;
            }
            // Read without expiring (Redis's WATCH only notes `keyIsExpired`).
            let presence = self.shared.presence(db, key);
            self.shared.watches.watch(
                self.entry.id,
                db,
                key,
                &self.watch_dirty,
                presence == crate::state::Presence::Stale,
            );
            self.watched
                .push((db, key.clone(), presence == crate::state::Presence::Live));
        }
        Frame::ok()
    }

    fn sub_count(&self) -> i64 {
        (self.subs.len() + self.psubs.len()) as i64
    }

    fn subscribe(&mut self, argv: &[Vec<u8>], pattern: bool) -> Step {
        let kind = if pattern { "psubscribe" } else { "subscribe" };
        let mut out = Vec::new();
        for ch in &argv[1..] {
            let set = if pattern {
                &mut self.psubs
            } else {
                &mut self.subs
            };
            if set.insert(ch.clone()) {
                self.shared.pubsub.subscribe(&self.entry, ch, pattern);
            }
            out.push(Frame::Push(vec![
                Frame::bulk(kind),
                Frame::Bulk(ch.clone()),
                Frame::Int(self.sub_count()),
            ]));
        }
        let (s, p) = (self.subs.len(), self.psubs.len());
        self.update_meta(|m| {
            m.sub = s;
            m.psub = p;
        });
        Step::Many(out)
    }

    fn unsubscribe(&mut self, argv: &[Vec<u8>], pattern: bool) -> Step {
        let kind = if pattern {
            "punsubscribe"
        } else {
            "unsubscribe"
        };
        let names: Vec<Vec<u8>> = if argv.len() > 1 {
            argv[1..].to_vec()
        } else if pattern {
            self.psubs.iter().cloned().collect()
        } else {
            self.subs.iter().cloned().collect()
        };
        let mut out = Vec::new();
        if names.is_empty() {
            out.push(Frame::Push(vec![
                Frame::bulk(kind),
                Frame::Null,
                Frame::Int(self.sub_count()),
            ]));
        }
        for ch in names {
            let set = if pattern {
                &mut self.psubs
            } else {
                &mut self.subs
            };
            if set.remove(&ch) {
                self.shared.pubsub.unsubscribe(self.entry.id, &ch, pattern);
            }
            out.push(Frame::Push(vec![
                Frame::bulk(kind),
                Frame::Bulk(ch),
                Frame::Int(self.sub_count()),
            ]));
        }
        let (s, p) = (self.subs.len(), self.psubs.len());
        self.update_meta(|m| {
            m.sub = s;
            m.psub = p;
        });
        Step::Many(out)
    }

    /// SSUBSCRIBE: `ssubscribe` replies counting only the shard channels (Redis's
    /// `pubSubShardType`).
    fn ssubscribe(&mut self, argv: &[Vec<u8>]) -> Step {
        if self.in_exec {
            return Step::Reply(Frame::err(
                "ERR SSUBSCRIBE isn't allowed for a DENY BLOCKING client",
            ));
        }
        let mut out = Vec::new();
        for ch in &argv[1..] {
            if self.ssubs.insert(ch.clone()) {
                self.shared.pubsub.subscribe_shard(&self.entry, ch);
            }
            out.push(Frame::Push(vec![
                Frame::bulk("ssubscribe"),
                Frame::Bulk(ch.clone()),
                Frame::Int(self.ssubs.len() as i64),
            ]));
        }
        let n = self.ssubs.len();
        self.update_meta(|m| m.ssub = n);
        Step::Many(out)
    }

    /// SUNSUBSCRIBE [channel ...]: every shard channel when none is named.
    fn sunsubscribe(&mut self, argv: &[Vec<u8>]) -> Step {
        let names: Vec<Vec<u8>> = if argv.len() > 1 {
            argv[1..].to_vec()
        } else {
            self.ssubs.iter().cloned().collect()
        };
        let mut out = Vec::new();
        if names.is_empty() {
            out.push(Frame::Push(vec![
                Frame::bulk("sunsubscribe"),
                Frame::Null,
                Frame::Int(0),
            ]));
        }
        for ch in names {
            if self.ssubs.remove(&ch) {
                self.shared.pubsub.unsubscribe_shard(self.entry.id, &ch);
            }
            out.push(Frame::Push(vec![
                Frame::bulk("sunsubscribe"),
                Frame::Bulk(ch),
                Frame::Int(self.ssubs.len() as i64),
            ]));
        }
        let n = self.ssubs.len();
        self.update_meta(|m| m.ssub = n);
        Step::Many(out)
    }

    fn pubsub(&mut self, argv: &[Vec<u8>]) -> Frame {
        let sub = lower(&argv[1]);
        match (sub.as_str(), argv.len()) {
            ("channels", 2 | 3) => Frame::Array(
                self.shared
                    .pubsub
                    .channels(argv.get(2).map(Vec::as_slice))
                    .into_iter()
                    .map(Frame::Bulk)
                    .collect(),
            ),
            ("numsub", _) => {
                let mut v = Vec::new();
                for ch in &argv[2..] {
                    v.push(Frame::Bulk(ch.clone()));
                    v.push(Frame::Int(self.shared.pubsub.numsub(ch)));
                }
                // An array in RESP3 too (Redis 7.0's addReplyArrayLen).
                Frame::Array(v)
            }
            ("numpat", 2) => Frame::Int(self.shared.pubsub.numpat()),
            ("shardchannels", 2 | 3) => Frame::Array(
                self.shared
                    .pubsub
                    .shard_channels(argv.get(2).map(Vec::as_slice))
                    .into_iter()
                    .map(Frame::Bulk)
                    .collect(),
            ),
            ("shardnumsub", _) => Frame::Array(
                argv[2..]
                    .iter()
                    .flat_map(|c| {
                        [
                            Frame::Bulk(c.clone()),
                            Frame::Int(self.shared.pubsub.shard_numsub(c)),
                        ]
                    })
                    .collect(),
            ),
            _ => bad_subcommand(
                "pubsub",
                &argv[1],
                &[
                    "channels",
                    "numsub",
                    "numpat",
                    "shardchannels",
                    "shardnumsub",
                ],
            ),
        }
    }
}

/// CLIENT SETNAME's rule: no spaces, newlines or characters outside `!`..`~`.
fn valid_name(n: &[u8]) -> Result<(), Frame> {
    if n.iter().any(|&c| !(b'!'..=b'~').contains(&c)) {
        return Err(Frame::err(
            "ERR Client names cannot contain spaces, newlines or special characters.",
        ));
    }
    Ok(())
}

impl Frame {
    /// `ERR syntax error`.
    pub fn syntax() -> Frame {
        Frame::err("ERR syntax error")
    }
}

/// Commands a client may run while a script is busy (Redis's `CMD_ALLOW_BUSY`).
/// A server command a transaction runs inside its unit, every shard locked
/// (`Keyspace::execute_multi_foreign`): it must leave the keyspace alone. PING, TIME, PUBLISH
/// (the pub/sub registry is a leaf lock) and the DEBUG subcommands a script may call
/// (`script_host::DEBUG_COMMON`).
fn unit_safe(name: &str, argv: &[impl AsRef<[u8]>]) -> bool {
    match name {
        "ping" | "time" | "publish" => true,
        "debug" => argv.get(1).is_some_and(|s| {
            crate::script_host::DEBUG_COMMON.contains(&lower(s.as_ref()).as_str())
        }),
        _ => false,
    }
}

fn allowed_while_busy(name: &str, argv: &[Vec<u8>]) -> bool {
    let sub = |w: &[u8]| argv.get(1).is_some_and(|a| a.eq_ignore_ascii_case(w));
    match name {
        // Redis 7.0.15's CMD_ALLOW_BUSY (EXEC is not: it aborts the transaction with BUSY).
        "auth" | "hello" | "quit" | "reset" | "multi" | "discard" | "watch" | "unwatch"
        | "shutdown" | "replconf" => true,
        "script" => sub(b"kill"),
        "function" => sub(b"kill") || sub(b"stats"),
        _ => false,
    }
}

/// Redis 7.0.15's commands flagged `stale`: served by a replica whose link is down even with
/// `replica-serve-stale-data no`.
const STALE_OK: &[&str] = &[
    "auth",
    "client",
    "command",
    "config",
    "debug",
    "discard",
    "echo",
    "eval",
    "eval_ro",
    "evalsha",
    "evalsha_ro",
    "exec",
    "failover",
    "fcall",
    "fcall_ro",
    "hello",
    "info",
    "lastsave",
    "latency",
    "monitor",
    "multi",
    "psubscribe",
    "publish",
    "pubsub",
    "punsubscribe",
    "spublish",
    "ssubscribe",
    "sunsubscribe",
    "quit",
    "readonly",
    "readwrite",
    "replconf",
    "replicaof",
    "reset",
    "role",
    "select",
    "shutdown",
    "slaveof",
    "slowlog",
    "subscribe",
    "time",
    "unsubscribe",
    "unwatch",
    "watch",
    "acl",
    "sync",
    "psync",
];

/// Runs `f` on a MULTI queue seen as the engine takes it (`&[&[&[u8]]]`: commands of argument
/// slices).
fn with_queue_refs<R>(queue: &[Vec<Vec<u8>>], f: impl FnOnce(&[&[&[u8]]]) -> R) -> R {
    let cmds: Vec<Vec<&[u8]>> = queue
        .iter()
        .map(|c| c.iter().map(Vec::as_slice).collect())
        .collect();
    let refs: Vec<&[&[u8]]> = cmds.iter().map(Vec::as_slice).collect();
    f(&refs)
}
