//! MONITOR: every command the server executes, as one line to each monitoring client.
//!
//! Problem: a monitoring client must see the commands in the order they ran, formatted as Redis
//! 7.0's `replicationFeedMonitors` (`+<sec>.<usec> [<db> <addr>] "arg" ...`), without costing the
//! other clients anything while nobody monitors.
//!
//! How: the registry counts its clients in an atomic; a connection checks it after each command
//! (one load) and only then formats the line and queues it to every monitor's event queue (the
//! monitor's connection writes it as a status reply). What is shown follows Redis's `call()`:
//! - after the command ran, with the database selected then;
//! - not the administrative commands (`CMD_ADMIN`: CONFIG, DEBUG, SAVE, CLIENT KILL/LIST...);
//! - EVAL/EVALSHA/FCALL before they run (Redis feeds them itself so that a script's commands
//!   come after it; forkless does not show a script's own `redis.call`s, Redis shows them as
//!   `[<db> lua]`);
//! - a transaction as MULTI, then its commands when EXEC runs them, then EXEC;
//! - a blocking command when it is called, whether it then blocks or not;
//! - AUTH's and HELLO AUTH's credentials as `(redacted)`.
//!
//! Lock order: the registry lock is a leaf (held only to copy the monitor list or change it).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use forkless_sync::atomic::{AtomicUsize, Ordering};
use forkless_sync::{Arc, Mutex};

use crate::state::{ClientEntry, Event};

/// The monitoring clients.
#[derive(Default)]
pub struct Monitors {
    clients: Mutex<BTreeMap<u64, Arc<ClientEntry>>>,
    count: AtomicUsize,
}

impl Monitors {
    /// Start feeding `client`.
    pub fn add(&self, client: &Arc<ClientEntry>) {
        let mut c = self.clients.lock();
        c.insert(client.id, client.clone());
        self.count.store(c.len(), Ordering::Release);
    }

    /// Stop feeding client `id` (RESET, disconnect). True when it was monitoring.
    pub fn remove(&self, id: u64) -> bool {
        let mut c = self.clients.lock();
        let was = c.remove(&id).is_some();
        self.count.store(c.len(), Ordering::Release);
        was
    }

    /// True when somebody monitors (one atomic load).
    pub fn active(&self) -> bool {
        self.count.load(Ordering::Acquire) > 0
    }

    /// Queue the line of `argv`, run in database `db` by the client at `addr`, to every monitor.
    pub fn feed(&self, db: u32, addr: &str, argv: &[Vec<u8>]) {
        if !self.active() {
            return;
        }
        let line = render(db, addr, argv);
        let clients: Vec<Arc<ClientEntry>> = self.clients.lock().values().cloned().collect();
        for c in clients {
            let _ = c.tx.send(Event::Monitor(line.clone()));
        }
    }
}

/// True when Redis 7.0.15 shows command `name` to monitors from `call()` (not `CMD_ADMIN`, not
/// `CMD_SKIP_MONITOR`; container commands by subcommand).
pub fn shown(name: &str, argv: &[Vec<u8>]) -> bool {
    let sub = || {
        argv.get(1)
            .map(|s| String::from_utf8_lossy(s).to_ascii_lowercase())
            .unwrap_or_default()
    };
    match name {
        "bgrewriteaof" | "bgsave" | "debug" | "failover" | "monitor" | "psync" | "replconf"
        | "replicaof" | "slaveof" | "save" | "shutdown" | "sync" | "config" | "module"
        | "latency" => false,
        "eval" | "evalsha" | "eval_ro" | "evalsha_ro" | "fcall" | "fcall_ro" => false,
        "client" => !matches!(
            sub().as_str(),
            "kill" | "list" | "no-evict" | "pause" | "unblock" | "unpause"
        ),
        "slowlog" => !matches!(sub().as_str(), "get" | "len" | "reset"),
        "acl" => !matches!(
            sub().as_str(),
            "deluser"
                | "dryrun"
                | "getuser"
                | "list"
                | "load"
                | "log"
                | "save"
                | "setuser"
                | "users"
        ),
        _ => true,
    }
}

/// True for the script runners, which Redis feeds before they run.
pub fn shown_before(name: &str) -> bool {
    matches!(
        name,
        "eval" | "evalsha" | "eval_ro" | "evalsha_ro" | "fcall" | "fcall_ro"
    )
}

/// The monitor line (without the leading `+` and the CRLF, which the status reply adds).
fn render(db: u32, addr: &str, argv: &[Vec<u8>]) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let mut s = format!("{}.{:06} [{db} {addr}]", now.as_secs(), now.subsec_micros());
    let name = argv
        .first()
        .map(|a| String::from_utf8_lossy(a).to_ascii_lowercase())
        .unwrap_or_default();
    for (j, a) in argv.iter().enumerate() {
        s.push(' ');
        if redacted(&name, argv, j) {
            s.push_str("\"(redacted)\"");
        } else {
            repr(&mut s, a);
        }
    }
    s
}

/// Redis's `redactClientCommandArgument` calls: AUTH's arguments, HELLO's AUTH pair.
fn redacted(name: &str, argv: &[Vec<u8>], j: usize) -> bool {
    match name {
        "auth" => j >= 1,
        "hello" if j >= 2 => argv[1..j]
            .iter()
            .rposition(|a| a.eq_ignore_ascii_case(b"auth"))
            .is_some_and(|p| j - (p + 1) <= 2 && j > p + 1),
        _ => false,
    }
}

/// `sdscatrepr`: the argument quoted, with `\\ \" \n \r \t \a \b` escaped and other
/// non-printable bytes as `\xHH`.
fn repr(s: &mut String, a: &[u8]) {
    s.push('"');
    for &b in a {
        match b {
            b'\\' => s.push_str("\\\\"),
            b'"' => s.push_str("\\\""),
            b'\n' => s.push_str("\\n"),
            b'\r' => s.push_str("\\r"),
            b'\t' => s.push_str("\\t"),
            7 => s.push_str("\\a"),
            8 => s.push_str("\\b"),
            b if b.is_ascii_graphic() || b == b' ' => s.push(b as char),
            b => {
                let _ = write!(s, "\\x{b:02x}");
            }
        }
    }
    s.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_quote_and_redact_as_redis() {
        let argv: Vec<Vec<u8>> = vec![b"SET".to_vec(), b"k \"q\"".to_vec(), vec![0, b'\n', 200]];
        let line = render(3, "127.0.0.1:5000", &argv);
        let (_, rest) = line.split_once(' ').unwrap();
        assert_eq!(rest, r#"[3 127.0.0.1:5000] "SET" "k \"q\"" "\x00\n\xc8""#);
        let auth: Vec<Vec<u8>> = vec![b"AUTH".to_vec(), b"u".to_vec(), b"p".to_vec()];
        assert!(render(0, "a", &auth).ends_with(r#""AUTH" "(redacted)" "(redacted)""#));
        let hello: Vec<Vec<u8>> = ["HELLO", "3", "AUTH", "u", "p", "SETNAME", "n"]
            .iter()
            .map(|s| s.as_bytes().to_vec())
            .collect();
        assert!(render(0, "a", &hello)
            .ends_with(r#""HELLO" "3" "AUTH" "(redacted)" "(redacted)" "SETNAME" "n""#));
        assert!(!shown("config", &[b"config".to_vec(), b"get".to_vec()]));
        assert!(!shown("client", &[b"client".to_vec(), b"list".to_vec()]));
        assert!(shown("client", &[b"client".to_vec(), b"setname".to_vec()]));
        assert!(shown("get", &[b"get".to_vec()]));
    }
}
