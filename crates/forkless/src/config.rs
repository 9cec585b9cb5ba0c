//! The configuration: one table of options shared by redis.conf files, command lines,
//! `CONFIG GET` / `CONFIG SET` and `CONFIG REWRITE`.
//!
//! Problem: the engine and the server must agree on every option's name, syntax, default and
//! bounds, and a user swapping `redis-server` for forkless keeps their redis.conf and flags. As
//! Redis 7.0's `config.c` (`standardConfig`), every option is one row of [`OPTIONS`]: name,
//! alias, [`Kind`] (which fixes the value syntax and bounds), default (written in redis.conf
//! syntax and parsed by the same code as user input, so defaults cannot drift from the parser),
//! and whether it may change at run time. Every entry point goes through the rows:
//!
//! * [`Config::from_file`] / [`Config::load_str`]: redis.conf syntax (Redis's `sdssplitargs`
//!   quoting: `"..."` with `\n \r \t \b \a \\ \" \xHH` escapes, `'...'`), `include`, comments;
//!   several `save` lines add up, `save ""` clears.
//! * [`Config::from_args`]: `redis-server`'s command line, `[CONFIG-FILE] [--<option> <value>...]...`
//!   (the words after `--option` up to the next `--` form its value; `--save "60 1000"`).
//! * [`Config::set`] / [`Config::get`] / [`Config::matching`]: `CONFIG SET` / `CONFIG GET` (glob).
//! * [`Config::rewrite_file`]: `CONFIG REWRITE` (updates the option lines of an existing file in
//!   place, appends changed options, keeps comments; written durably).
//!
//! Values print as `CONFIG GET` prints them (memory sizes in bytes, booleans `yes`/`no`).
//! Options the engine does not act on (yet) are parsed, validated and stored all the same, so the
//! server reads them from here. Errors name the option, the value and, for files, the line.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use forkless_keyspace::notify::Flags as NotifyFlags;

/// The value syntax and bounds of an option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `yes` / `no`.
    Bool,
    /// A decimal integer within `min..=max`.
    Int {
        /// Smallest accepted value.
        min: i64,
        /// Largest accepted value.
        max: i64,
    },
    /// A byte count with an optional unit (`b`, `k`=1000, `kb`=1024, `m`, `mb`, `g`, `gb`, any
    /// case) within `min..=max`; printed in bytes.
    Memory {
        /// Smallest accepted value.
        min: i64,
        /// Largest accepted value.
        max: i64,
    },
    /// One of a fixed set of words (any case on input, printed lowercase).
    Enum(&'static [&'static str]),
    /// Any string (possibly empty).
    Str,
    /// `save`: pairs `<seconds> <changes>`, or `""` for none.
    Save,
    /// `bind`: one or more addresses.
    Bind,
    /// `client-output-buffer-limit`: groups `<class> <hard> <soft> <soft-seconds>`.
    OutputBufferLimit,
    /// `replicaof`: `<host> <port>`, or `no one`.
    ReplicaOf,
}

/// One row of the option table.
#[derive(Debug, Clone, Copy)]
pub struct OptionSpec {
    /// The option's name (lowercase, as in redis.conf).
    pub name: &'static str,
    /// Its old name, accepted everywhere (e.g. `slaveof` for `replicaof`).
    pub alias: Option<&'static str>,
    /// Value syntax and bounds.
    pub kind: Kind,
    /// The default, in redis.conf syntax (Redis 7.0.15's unless noted in `doc`).
    pub default: &'static str,
    /// True when `CONFIG SET` may change it while running.
    pub mutable: bool,
    /// What it does; says when the engine only stores it.
    pub doc: &'static str,
}

const I32: i64 = i32::MAX as i64;
const I64: i64 = i64::MAX;
const MB: i64 = 1 << 20;

const fn o(
    name: &'static str,
    kind: Kind,
    default: &'static str,
    mutable: bool,
    doc: &'static str,
) -> OptionSpec {
    OptionSpec {
        name,
        alias: None,
        kind,
        default,
        mutable,
        doc,
    }
}

const fn a(
    name: &'static str,
    alias: &'static str,
    kind: Kind,
    default: &'static str,
    mutable: bool,
    doc: &'static str,
) -> OptionSpec {
    OptionSpec {
        name,
        alias: Some(alias),
        kind,
        default,
        mutable,
        doc,
    }
}

const fn int(min: i64, max: i64) -> Kind {
    Kind::Int { min, max }
}

const fn mem(min: i64, max: i64) -> Kind {
    Kind::Memory { min, max }
}

const B: Kind = Kind::Bool;
const S: Kind = Kind::Str;
const YES_NO_LOCAL: Kind = Kind::Enum(&["no", "yes", "local"]);

/// The option table. "Stored" in a row's doc means the engine validates and keeps the value for
/// the server (or a later issue) but does not act on it itself.
pub static OPTIONS: &[OptionSpec] = &[
    // --- persistence (acted on by the engine) ---
    o("dir", S, ".", false, "Working directory: dump file, AOF directory, segments. Fixed once the engine is open."),
    o("dbfilename", S, "dump.rdb", true, "Snapshot file name inside `dir` (save rules, SAVE/BGSAVE)."),
    o("save", Kind::Save, "3600 1 300 100 60 10000", true, "Snapshot after <seconds> if at least <changes> writes; \"\" disables."),
    o("stop-writes-on-bgsave-error", B, "yes", true, "Refuse writes (MISCONF) while the last background snapshot failed."),
    o("rdbcompression", B, "yes", true, "LZF-compress strings in snapshots."),
    o("rdbchecksum", B, "yes", false, "Write the CRC-64 at the end of snapshots."),
    o("rdb-del-sync-files", B, "no", true, "Stored."),
    o("rdb-save-incremental-fsync", B, "yes", true, "Stored."),
    o("appendonly", B, "no", true, "Log every write to a multi-part AOF in `dir/appenddirname`. Turned on at run time, the AOF starts from a point-in-time snapshot (a forkless rewrite)."),
    o("appendfilename", S, "appendonly.aof", false, "AOF file name prefix."),
    o("appenddirname", S, "appendonlydir", false, "AOF directory inside `dir`."),
    o("appendfsync", Kind::Enum(&["always", "everysec", "no"]), "everysec", true, "always: a write returns once durable; everysec: fsync every second; no: the OS decides."),
    o("no-appendfsync-on-rewrite", B, "no", true, "Stored (forkless rewrites never compete with a child process)."),
    o("auto-aof-rewrite-percentage", int(0, I32), "100", true, "Rewrite the AOF when it grew this many percent over its size after the last rewrite; 0 disables."),
    o("auto-aof-rewrite-min-size", mem(0, I64), "64mb", true, "No automatic rewrite below this AOF size."),
    o("aof-load-truncated", B, "yes", true, "Cut a torn last command at load (forkless always does, and reports it)."),
    o("aof-use-rdb-preamble", B, "yes", true, "AOF bases are RDB files (else RESP commands)."),
    o("aof-timestamp-enabled", B, "no", false, "Write #TS:<unix secs> annotations in the AOF (recovery to a time). Chosen at open."),
    o("aof-rewrite-incremental-fsync", B, "yes", true, "Stored."),
    o("databases", int(1, I32), "16", false, "Number of databases (SELECT 0..n-1)."),
    o("hz", int(0, I32), "10", true, "Upkeep ticks per second (active expire, rehash, save rules, rewrite rule); clamped to 1..500."),
    o("dynamic-hz", B, "yes", true, "Stored."),
    o("active-expire-effort", int(1, 10), "1", true, "Active expire effort: keys sampled and CPU share per cycle grow with it (Redis's formula)."),
    o("activerehashing", B, "yes", true, "Move dict buckets to the new table in the background (1 ms per tick)."),
    // --- forkless's own ---
    o("persistence", Kind::Enum(&["redis", "segments"]), "redis", false, "forkless: `redis` = AOF if appendonly, snapshots on save rules; `segments` = segmented log + snapshots in `dir/segments-dirname`."),
    o("snapshot-mode", Kind::Enum(&["pit", "converging"]), "pit", true, "forkless: snapshots to `dbfilename` are point-in-time (a pure RDB redis-server loads) or converging (RDB + RESP deltas, the state at their end)."),
    o("segments-dirname", S, "segments", false, "forkless: the segments directory inside `dir`."),
    o("segment-bytes", mem(4096, I64), "64mb", false, "forkless: roll to a new segment at this size."),
    o("segment-age", int(0, I32), "0", false, "forkless: roll a segment older than this many seconds (0: never)."),
    o("keep-snapshots", int(1, 1000), "2", false, "forkless: segments snapshots kept."),
    o("keep-segment-bytes", mem(0, I64), "1gb", false, "forkless: bytes of old segments kept beyond what the kept snapshots need."),
    o("aof-history-generations", int(0, 1000), "0", false, "forkless: AOF generations kept under appenddirname/history after rewrites (point-in-time recovery)."),
    o("aof-on-error", Kind::Enum(&["refuse", "continue"]), "refuse", false, "forkless: after a log write error refuse writes (MISCONF) or count and continue (cache mode)."),
    o("shards", int(0, 65536), "0", false, "forkless: keyspace shards (0: 4 per core)."),
    // --- memory ---
    o("maxmemory", mem(0, I64), "0", true, "Memory bound (0: none): writes evict by maxmemory-policy first, then get OOM."),
    o("maxmemory-policy", Kind::Enum(&["volatile-lru", "volatile-lfu", "volatile-random", "volatile-ttl", "allkeys-lru", "allkeys-lfu", "allkeys-random", "noeviction"]), "noeviction", true, "Eviction policy (Redis 7.0 names)."),
    o("maxmemory-samples", int(1, 64), "5", true, "Keys sampled per database per eviction round."),
    o("maxmemory-eviction-tenacity", int(0, 100), "10", true, "Stored."),
    o("maxmemory-clients", mem(0, I64), "0", true, "Stored."),
    o("replica-ignore-maxmemory", B, "yes", true, "Stored."),
    o("lfu-log-factor", int(0, I32), "10", true, "LFU counter logarithm factor."),
    o("lfu-decay-time", int(0, I32), "1", true, "LFU counter decay in minutes."),
    o("lazyfree-lazy-eviction", B, "no", true, "Stored."),
    o("lazyfree-lazy-expire", B, "no", true, "Stored."),
    o("lazyfree-lazy-server-del", B, "no", true, "Stored."),
    o("lazyfree-lazy-user-del", B, "no", true, "Stored."),
    o("lazyfree-lazy-user-flush", B, "no", true, "Stored."),
    o("replica-lazy-flush", B, "no", true, "Stored."),
    // --- encodings (snapshot encodings; accepted for CONFIG SET) ---
    a("hash-max-listpack-entries", "hash-max-ziplist-entries", int(0, I64), "512", true, "Snapshot encoding threshold."),
    a("hash-max-listpack-value", "hash-max-ziplist-value", int(0, I64), "64", true, "Snapshot encoding threshold."),
    a("list-max-listpack-size", "list-max-ziplist-size", int(i32::MIN as i64, I32), "-2", true, "Snapshot encoding threshold."),
    o("list-compress-depth", int(0, I32), "0", true, "Stored."),
    o("set-max-intset-entries", int(0, I64), "512", true, "Snapshot encoding threshold."),
    a("zset-max-listpack-entries", "zset-max-ziplist-entries", int(0, I64), "128", true, "Snapshot encoding threshold."),
    a("zset-max-listpack-value", "zset-max-ziplist-value", int(0, I64), "64", true, "Snapshot encoding threshold."),
    o("hll-sparse-max-bytes", mem(0, I64), "3000", true, "A sparse HyperLogLog growing past this many bytes becomes dense."),
    o("stream-node-max-bytes", mem(0, I64), "4096", true, "XADD starts a new stream node past this size (0: no limit)."),
    o("stream-node-max-entries", int(0, I64), "100", true, "XADD starts a new stream node at this many entries (0: no limit)."),
    // --- server (stored: read by `forkless server`) ---
    o("port", int(0, 65535), "6379", true, "TCP port (0: no TCP)."),
    o("bind", Kind::Bind, "127.0.0.1 -::1", true, "Addresses to listen on (redis.conf's shipped value: loopback only; `-` marks an optional address)."),
    o("protected-mode", B, "yes", true, "Refuse non-loopback clients when no password is set."),
    o("tcp-backlog", int(0, I32), "511", false, "listen() backlog."),
    o("unixsocket", S, "", false, "Unix socket path (empty: none)."),
    o("unixsocketperm", int(0, 0o777), "0", false, "Unix socket permissions."),
    o("requirepass", S, "", true, "Password of the default user (empty: none)."),
    o("aclfile", S, "", false, "ACL users file (relative to `dir`): loaded at startup, ACL LOAD / ACL SAVE."),
    o("acllog-max-len", int(0, I32), "128", true, "Entries kept in the ACL LOG."),
    o("acl-pubsub-default", Kind::Enum(&["resetchannels", "allchannels"]), "resetchannels", true, "Channel rule of new ACL users (and of `reset`)."),
    o("maxclients", int(1, I32), "10000", true, "Maximum simultaneous clients."),
    o("timeout", int(0, I32), "0", true, "Close idle clients after this many seconds (0: never)."),
    o("tcp-keepalive", int(0, I32), "300", true, "TCP keepalive period in seconds."),
    o("client-query-buffer-limit", mem(MB, I64), "1gb", true, "Largest query buffer of a client."),
    o("proto-max-bulk-len", mem(MB, I64), "512mb", true, "Largest bulk string in a request."),
    o("client-output-buffer-limit", Kind::OutputBufferLimit, "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60", true, "Output buffer limits per client class: <class> <hard> <soft> <soft-seconds>."),
    o("daemonize", Kind::Enum(&["no"]), "no", false, "forkless never daemonizes (use a service manager)."),
    o("supervised", Kind::Enum(&["no", "upstart", "systemd", "auto"]), "no", false, "Stored."),
    o("pidfile", S, "", false, "Stored."),
    o("loglevel", Kind::Enum(&["debug", "verbose", "notice", "warning"]), "notice", true, "Log verbosity."),
    o("logfile", S, "", false, "Log file (empty: standard output)."),
    o("syslog-enabled", B, "no", false, "Stored."),
    o("always-show-logo", B, "no", false, "Stored."),
    o("set-proc-title", B, "yes", false, "Stored."),
    o("enable-debug-command", YES_NO_LOCAL, "no", false, "Allow DEBUG (local: from loopback only)."),
    o("enable-protected-configs", YES_NO_LOCAL, "no", false, "Stored."),
    o("enable-module-command", YES_NO_LOCAL, "no", false, "Stored."),
    o("io-threads", int(1, 128), "1", false, "The server's request threads (each reads, runs and answers its connections' commands). Unset: the cores less one, at least 1, so one core stays for the snapshot worker and the log writer."),
    a("busy-reply-threshold", "lua-time-limit", int(0, I64), "5000", true, "Stored."),
    o("slowlog-log-slower-than", int(-1, I64), "10000", true, "Stored."),
    o("slowlog-max-len", int(0, I64), "128", true, "Stored."),
    o("latency-monitor-threshold", int(0, I64), "0", true, "Stored."),
    o("latency-tracking", B, "yes", true, "Stored."),
    o("rdb-key-save-delay", int(i32::MIN as i64, I32), "0", true, "Stored (Redis's test hook: microseconds slept per key saved)."),
    o("key-load-delay", int(i32::MIN as i64, I32), "0", true, "Stored (Redis's test hook: microseconds slept per key loaded)."),
    o("notify-keyspace-events", S, "", true, "Keyspace event classes published to __keyspace@<db>__ / __keyevent@<db>__ channels (Redis's letters: K E g $ l s h z x e t m d n A)."),
    o("tracking-table-max-keys", int(0, I64), "1000000", true, "Stored."),
    o("shutdown-timeout", int(0, I32), "10", true, "Seconds shutdown waits (engine: for a running snapshot or rewrite)."),
    o("shutdown-on-sigterm", S, "default", true, "Stored."),
    o("shutdown-on-sigint", S, "default", true, "Stored."),
    // --- replication (stored: read by the server) ---
    a("replicaof", "slaveof", Kind::ReplicaOf, "", false, "Primary to replicate: <host> <port>; empty: none."),
    o("masterauth", S, "", true, "Stored."),
    o("masteruser", S, "", true, "Stored."),
    a("replica-serve-stale-data", "slave-serve-stale-data", B, "yes", true, "Stored."),
    a("replica-read-only", "slave-read-only", B, "yes", true, "Stored."),
    o("repl-diskless-sync", B, "yes", true, "Stored."),
    o("repl-diskless-sync-delay", int(0, I32), "5", true, "Stored."),
    o("repl-diskless-sync-max-replicas", int(0, I32), "0", true, "Stored."),
    o("repl-diskless-load", Kind::Enum(&["disabled", "on-empty-db", "swapdb"]), "disabled", true, "Stored."),
    a("repl-ping-replica-period", "repl-ping-slave-period", int(1, I32), "10", true, "Stored."),
    o("repl-timeout", int(1, I32), "60", true, "Stored."),
    o("repl-disable-tcp-nodelay", B, "no", true, "Stored."),
    o("repl-backlog-size", mem(1, I64), "1mb", true, "Replication backlog size."),
    o("repl-backlog-ttl", int(0, I32), "3600", true, "Stored."),
    a("replica-priority", "slave-priority", int(0, I32), "100", true, "Stored."),
    a("min-replicas-to-write", "min-slaves-to-write", int(0, I32), "0", true, "Stored."),
    a("min-replicas-max-lag", "min-slaves-max-lag", int(0, I32), "10", true, "Stored."),
    o("replica-announce-ip", S, "", true, "Stored."),
    o("replica-announce-port", int(0, 65535), "0", true, "Stored."),
];

/// `save` rule: snapshot after `seconds` if at least `changes` writes happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SaveRule {
    /// Seconds since the last successful snapshot.
    pub seconds: u64,
    /// Writes since then.
    pub changes: u64,
}

/// One class of `client-output-buffer-limit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BufferLimit {
    /// Close the client at once above this many bytes (0: no limit).
    pub hard: u64,
    /// Close it when above this for `soft_seconds` (0: no limit).
    pub soft: u64,
    /// See `soft`.
    pub soft_seconds: u64,
}

/// A parsed value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// [`Kind::Bool`].
    Bool(bool),
    /// [`Kind::Int`] and [`Kind::Memory`].
    Int(i64),
    /// [`Kind::Enum`] (the lowercase word) and [`Kind::Str`].
    Str(String),
    /// [`Kind::Save`].
    Save(Vec<SaveRule>),
    /// [`Kind::Bind`].
    List(Vec<String>),
    /// [`Kind::OutputBufferLimit`]: normal, replica, pubsub.
    Limits([BufferLimit; 3]),
    /// [`Kind::ReplicaOf`].
    ReplicaOf(Option<(String, u16)>),
    /// `notify-keyspace-events` (a [`Kind::Str`] checked into event classes): kept as flags,
    /// printed as Redis prints them (`A` hides `n`, as in Redis, but the flag stays on).
    Events(u32),
}

const CLASSES: [&str; 3] = ["normal", "slave", "pubsub"];

/// Where a configuration error was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// Line `line` (1-based) of file `path`.
    File {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
    },
    /// The command line.
    Args,
    /// `CONFIG SET` / [`Config::set`].
    Set,
}

/// A configuration error: what is wrong and where.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// No option of this name.
    UnknownOption {
        /// The name as given.
        name: String,
        /// Where.
        origin: Origin,
    },
    /// The option exists but the value is not valid for it.
    BadValue {
        /// The option.
        name: String,
        /// The value as given.
        value: String,
        /// Why.
        why: String,
        /// Where.
        origin: Origin,
    },
    /// `CONFIG SET` of an option that cannot change while running.
    Immutable {
        /// The option.
        name: String,
    },
    /// A line or argument list that cannot be split (unbalanced quotes...).
    Syntax {
        /// Why.
        why: String,
        /// Where.
        origin: Origin,
    },
    /// Reading or writing a configuration file failed.
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        error: String,
    },
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::File { path, line } => write!(f, "{}:{line}", path.display()),
            Origin::Args => f.write_str("command line"),
            Origin::Set => f.write_str("CONFIG SET"),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::UnknownOption { name, origin } => {
                write!(f, "{origin}: unknown option '{name}'")
            }
            ConfigError::BadValue {
                name,
                value,
                why,
                origin,
            } => write!(
                f,
                "{origin}: option '{name}': invalid value '{value}': {why}"
            ),
            ConfigError::Immutable { name } => {
                write!(f, "option '{name}' cannot be changed at run time")
            }
            ConfigError::Syntax { why, origin } => write!(f, "{origin}: {why}"),
            ConfigError::Io { path, error } => write!(f, "{}: {error}", path.display()),
        }
    }
}

impl std::error::Error for ConfigError {}

/// The row of `name` (any case, alias accepted) and its index in [`OPTIONS`].
pub fn lookup(name: &str) -> Option<(usize, &'static OptionSpec)> {
    OPTIONS.iter().enumerate().find(|(_, s)| {
        s.name.eq_ignore_ascii_case(name) || s.alias.is_some_and(|a| a.eq_ignore_ascii_case(name))
    })
}

/// Split a line into arguments as Redis's `sdssplitargs` does.
pub fn split_args(line: &str) -> Result<Vec<String>, String> {
    let b = line.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    loop {
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        if i >= b.len() {
            return Ok(out);
        }
        let mut cur: Vec<u8> = Vec::new();
        let (mut dq, mut sq) = (false, false);
        loop {
            if dq {
                if i >= b.len() {
                    return Err("unbalanced quotes".into());
                }
                if b[i] == b'\\'
                    && i + 3 < b.len()
                    && b[i + 1] == b'x'
                    && b[i + 2].is_ascii_hexdigit()
                    && b[i + 3].is_ascii_hexdigit()
                {
                    let h = |c: u8| (c as char).to_digit(16).unwrap_or(0) as u8;
                    cur.push(h(b[i + 2]) * 16 + h(b[i + 3]));
                    i += 3;
                } else if b[i] == b'\\' && i + 1 < b.len() {
                    i += 1;
                    cur.push(match b[i] {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'b' => 8,
                        b'a' => 7,
                        c => c,
                    });
                } else if b[i] == b'"' {
                    if i + 1 < b.len() && !b[i + 1].is_ascii_whitespace() {
                        return Err("closing quote must be followed by a space or nothing".into());
                    }
                    i += 1;
                    break;
                } else {
                    cur.push(b[i]);
                }
            } else if sq {
                if i >= b.len() {
                    return Err("unbalanced quotes".into());
                }
                if b[i] == b'\\' && i + 1 < b.len() && b[i + 1] == b'\'' {
                    i += 1;
                    cur.push(b'\'');
                } else if b[i] == b'\'' {
                    if i + 1 < b.len() && !b[i + 1].is_ascii_whitespace() {
                        return Err("closing quote must be followed by a space or nothing".into());
                    }
                    i += 1;
                    break;
                } else {
                    cur.push(b[i]);
                }
            } else {
                if i >= b.len() {
                    break;
                }
                match b[i] {
                    b' ' | b'\n' | b'\r' | b'\t' | 0 => break,
                    b'"' => dq = true,
                    b'\'' => sq = true,
                    c => cur.push(c),
                }
            }
            i += 1;
        }
        out.push(String::from_utf8(cur).map_err(|_| "an argument is not valid UTF-8".to_string())?);
    }
}

/// Quote `s` for a config file line when needed (Redis's `sdscatrepr` style).
pub fn quote(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|c| c.is_ascii_graphic() && c != b'"' && c != b'\'' && c != b'\\')
    {
        return s.to_string();
    }
    let mut out = String::from("\"");
    for ch in s.chars() {
        match ch {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Parse a byte count with an optional unit (Redis's `memtoll`).
pub fn parse_memory(s: &str) -> Option<i64> {
    let lower = s.to_ascii_lowercase();
    let split = lower
        .find(|c: char| !(c.is_ascii_digit() || c == '-'))
        .unwrap_or(lower.len());
    let (num, unit) = lower.split_at(split);
    let mul: i64 = match unit {
        "" | "b" => 1,
        "k" => 1000,
        "kb" => 1024,
        "m" => 1000 * 1000,
        "mb" => 1024 * 1024,
        "g" => 1000 * 1000 * 1000,
        "gb" => 1024 * 1024 * 1024,
        _ => return None,
    };
    let n: i64 = parse_int(num)?;
    n.checked_mul(mul)
}

/// A strict decimal integer (Redis's `string2ll`: no `+`, no spaces, no leading zeros).
fn parse_int(s: &str) -> Option<i64> {
    let digits = s.strip_prefix('-').unwrap_or(s);
    if digits.is_empty()
        || !digits.bytes().all(|c| c.is_ascii_digit())
        || (digits.len() > 1 && digits.starts_with('0'))
    {
        return None;
    }
    s.parse().ok()
}

fn bool_word(s: &str) -> Option<bool> {
    if s.eq_ignore_ascii_case("yes") {
        Some(true)
    } else if s.eq_ignore_ascii_case("no") {
        Some(false)
    } else {
        None
    }
}

/// Print a byte count with the largest exact unit (`CONFIG REWRITE` style).
fn memory_repr(n: i64) -> String {
    const G: i64 = 1 << 30;
    if n != 0 && n % G == 0 {
        format!("{}gb", n / G)
    } else if n != 0 && n % MB == 0 {
        format!("{}mb", n / MB)
    } else if n != 0 && n % 1024 == 0 {
        format!("{}kb", n / 1024)
    } else {
        n.to_string()
    }
}

/// Parse `args` (the words after the option name) for `spec`. `prev` is the current value (for
/// options whose lines add up: `client-output-buffer-limit` classes, `save` lines of one file).
fn parse_value(spec: &OptionSpec, args: &[String], prev: Option<&Value>) -> Result<Value, String> {
    let multi = matches!(
        spec.kind,
        Kind::Save | Kind::Bind | Kind::OutputBufferLimit | Kind::ReplicaOf
    );
    // A multi-word option given as one non-empty quoted word is split (`--save "60 1000"`).
    let split;
    let args: &[String] = if multi && args.len() == 1 && !args[0].is_empty() {
        split = split_args(&args[0])?;
        &split
    } else {
        args
    };
    if !multi && args.len() != 1 {
        return Err(format!("expected one value, got {}", args.len()));
    }
    let one = || args[0].as_str();
    match spec.kind {
        Kind::Bool => bool_word(one())
            .map(Value::Bool)
            .ok_or_else(|| "argument must be 'yes' or 'no'".into()),
        Kind::Int { min, max } => {
            let n = parse_int(one()).ok_or("argument couldn't be parsed into an integer")?;
            if n < min || n > max {
                return Err(format!(
                    "argument must be between {min} and {max} inclusive"
                ));
            }
            Ok(Value::Int(n))
        }
        Kind::Memory { min, max } => {
            let n = parse_memory(one())
                .ok_or("argument must be a memory value (a number with an optional unit b, k, kb, m, mb, g, gb)")?;
            if n < min || n > max {
                return Err(format!(
                    "argument must be between {min} and {max} bytes inclusive"
                ));
            }
            Ok(Value::Int(n))
        }
        Kind::Enum(words) => {
            let v = one().to_ascii_lowercase();
            if words.contains(&v.as_str()) {
                Ok(Value::Str(v))
            } else {
                Err(format!("argument must be one of: {}", words.join(", ")))
            }
        }
        Kind::Str => Ok(Value::Str(one().to_string())),
        Kind::Save => {
            if args.is_empty() || (args.len() == 1 && args[0].is_empty()) {
                return Ok(Value::Save(Vec::new()));
            }
            if !args.len().is_multiple_of(2) {
                return Err("save takes pairs of <seconds> <changes>".into());
            }
            let mut rules = match prev {
                Some(Value::Save(r)) => r.clone(),
                _ => Vec::new(),
            };
            for p in args.chunks(2) {
                let seconds = parse_int(&p[0]).filter(|&n| n >= 1);
                let changes = parse_int(&p[1]).filter(|&n| n >= 0);
                match (seconds, changes) {
                    (Some(s), Some(c)) => rules.push(SaveRule {
                        seconds: s as u64,
                        changes: c as u64,
                    }),
                    _ => {
                        return Err(format!(
                            "invalid save rule '{} {}': seconds must be >= 1 and changes >= 0",
                            p[0], p[1]
                        ))
                    }
                }
            }
            Ok(Value::Save(rules))
        }
        Kind::Bind => {
            if args.is_empty() || args.iter().any(|s| s.is_empty()) {
                return Err("bind needs at least one address".into());
            }
            if args.len() > 16 {
                return Err("too many bind addresses (at most 16)".into());
            }
            Ok(Value::List(args.to_vec()))
        }
        Kind::OutputBufferLimit => {
            if args.is_empty() || !args.len().is_multiple_of(4) {
                return Err("expected groups of <class> <hard> <soft> <soft-seconds>".into());
            }
            let mut lim = match prev {
                Some(Value::Limits(l)) => *l,
                _ => {
                    [BufferLimit {
                        hard: 0,
                        soft: 0,
                        soft_seconds: 0,
                    }; 3]
                }
            };
            for g in args.chunks(4) {
                let class = match g[0].to_ascii_lowercase().as_str() {
                    "normal" => 0,
                    "slave" | "replica" => 1,
                    "pubsub" => 2,
                    _ => {
                        return Err(format!(
                            "invalid client class '{}' (normal, replica, pubsub)",
                            g[0]
                        ))
                    }
                };
                let hard = parse_memory(&g[1]).filter(|&n| n >= 0);
                let soft = parse_memory(&g[2]).filter(|&n| n >= 0);
                let secs = parse_int(&g[3]).filter(|&n| n >= 0);
                match (hard, soft, secs) {
                    (Some(h), Some(s), Some(t)) => {
                        lim[class] = BufferLimit {
                            hard: h as u64,
                            soft: s as u64,
                            soft_seconds: t as u64,
                        }
                    }
                    _ => {
                        return Err(format!(
                            "invalid limits '{} {} {}' for class {}",
                            g[1], g[2], g[3], g[0]
                        ))
                    }
                }
            }
            Ok(Value::Limits(lim))
        }
        Kind::ReplicaOf => {
            if args.is_empty() || (args.len() == 1 && args[0].is_empty()) {
                return Ok(Value::ReplicaOf(None));
            }
            if args.len() != 2 {
                return Err("expected <host> <port> or 'no one'".into());
            }
            if args[0].eq_ignore_ascii_case("no") && args[1].eq_ignore_ascii_case("one") {
                return Ok(Value::ReplicaOf(None));
            }
            let port = parse_int(&args[1])
                .filter(|p| (1..=65535).contains(p))
                .ok_or("port must be between 1 and 65535")?;
            Ok(Value::ReplicaOf(Some((args[0].clone(), port as u16))))
        }
    }
}

/// Checks beyond the kind's syntax, per option (Redis's `isValidDBfilename` and friends).
fn check_value(spec: &OptionSpec, v: Value) -> Result<Value, String> {
    let file_name = matches!(
        spec.name,
        "dbfilename" | "appendfilename" | "appenddirname" | "segments-dirname"
    );
    if let (true, Value::Str(s)) = (file_name, &v) {
        if s.is_empty() || s.contains('/') || s == "." || s == ".." {
            return Err(format!("{} can't be a path, just a name", spec.name));
        }
    }
    if let ("notify-keyspace-events", Value::Str(s)) = (spec.name, &v) {
        return Ok(Value::Events(NotifyFlags::parse(s)?.0));
    }
    Ok(v)
}

/// `CONFIG GET`'s text of a value.
fn render(v: &Value) -> String {
    match v {
        Value::Bool(b) => if *b { "yes" } else { "no" }.to_string(),
        Value::Int(n) => n.to_string(),
        Value::Str(s) => s.clone(),
        Value::Save(r) => r
            .iter()
            .map(|r| format!("{} {}", r.seconds, r.changes))
            .collect::<Vec<_>>()
            .join(" "),
        Value::List(l) => l.join(" "),
        Value::Limits(l) => l
            .iter()
            .zip(CLASSES)
            .map(|(l, c)| format!("{c} {} {} {}", l.hard, l.soft, l.soft_seconds))
            .collect::<Vec<_>>()
            .join(" "),
        Value::Events(f) => NotifyFlags(*f).to_string(),
        Value::ReplicaOf(r) => r
            .as_ref()
            .map(|(h, p)| format!("{h} {p}"))
            .unwrap_or_default(),
    }
}

/// redis.conf lines for `name` = `v` (several for `save` and output limits).
fn file_lines(spec: &OptionSpec, v: &Value) -> Vec<String> {
    let name = spec.name;
    match (spec.kind, v) {
        (Kind::Save, Value::Save(r)) if r.is_empty() => vec![format!("{name} \"\"")],
        (Kind::Save, Value::Save(r)) => r
            .iter()
            .map(|r| format!("{name} {} {}", r.seconds, r.changes))
            .collect(),
        (Kind::OutputBufferLimit, Value::Limits(l)) => l
            .iter()
            .zip(["normal", "replica", "pubsub"])
            .map(|(l, c)| {
                format!(
                    "{name} {c} {} {} {}",
                    memory_repr(l.hard as i64),
                    memory_repr(l.soft as i64),
                    l.soft_seconds
                )
            })
            .collect(),
        (Kind::Memory { .. }, Value::Int(n)) => vec![format!("{name} {}", memory_repr(*n))],
        (Kind::Bind, Value::List(l)) => {
            vec![format!(
                "{name} {}",
                l.iter().map(|s| quote(s)).collect::<Vec<_>>().join(" ")
            )]
        }
        (Kind::ReplicaOf, Value::ReplicaOf(None)) => Vec::new(),
        (Kind::ReplicaOf, Value::ReplicaOf(Some((h, p)))) => {
            vec![format!("{name} {} {p}", quote(h))]
        }
        (Kind::Str, Value::Str(s)) => vec![format!("{name} {}", quote(s))],
        _ => vec![format!("{name} {}", render(v))],
    }
}

/// A complete set of option values (every row of [`OPTIONS`], defaults unless set).
///
/// ```
/// use forkless::Config;
/// let mut c = Config::default();
/// c.load_str("appendonly yes\nsave \"900 1 300 10\"\nmaxmemory 100mb\n").unwrap();
/// assert!(c.appendonly());
/// assert_eq!(c.get("save").unwrap(), "900 1 300 10");
/// assert_eq!(c.get("maxmemory").unwrap(), "104857600");
/// let err = c.set("hz", "fast").unwrap_err().to_string();
/// assert!(err.contains("'hz'") && err.contains("fast"), "{err}");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    values: Vec<Value>,
    /// Options set explicitly (by file, args or `set`), by index.
    explicit: Vec<bool>,
    /// The file this configuration was read from, if any (`CONFIG REWRITE` target).
    file: Option<PathBuf>,
}

impl Default for Config {
    fn default() -> Self {
        let values = OPTIONS
            .iter()
            .map(|s| {
                parse_value(s, &[s.default.to_string()], None).unwrap_or_else(|e| {
                    panic!("default of option '{}' does not parse: {e}", s.name)
                })
            })
            .collect();
        Config {
            values,
            explicit: vec![false; OPTIONS.len()],
            file: None,
        }
    }
}

/// State of one parse pass (a file with its includes, or a command line).
#[derive(Default)]
struct Pass {
    save_seen: bool,
    depth: usize,
}

impl Config {
    /// Read a redis.conf-style file over the defaults.
    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let mut c = Config::default();
        c.load_file(path)?;
        c.file = Some(path.to_path_buf());
        Ok(c)
    }

    /// Parse `redis-server`'s command line (without the program name): an optional config file
    /// first, then `--<option> <value words>...`.
    ///
    /// ```
    /// use forkless::Config;
    /// let c = Config::from_args(["--port", "6380", "--save", "60 1000", "--appendonly", "yes"]).unwrap();
    /// assert_eq!(c.get("port").unwrap(), "6380");
    /// assert_eq!(c.get("save").unwrap(), "60 1000");
    /// assert!(Config::from_args(["--no-such-option", "1"]).unwrap_err().to_string().contains("no-such-option"));
    /// ```
    pub fn from_args<I, S>(args: I) -> Result<Config, ConfigError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let args: Vec<String> = args.into_iter().map(|s| s.as_ref().to_string()).collect();
        let mut c = Config::default();
        let mut i = 0;
        // One pass over the file and the arguments, as redis-server appends the arguments to
        // the file's text: `save` lines of both add up (the first replaces the default).
        let mut pass = Pass::default();
        if let Some(first) = args.first() {
            if !first.starts_with("--") {
                c.load_file_pass(Path::new(first), &mut pass)?;
                c.file = Some(PathBuf::from(first));
                i = 1;
            }
        }
        while i < args.len() {
            let Some(name) = args[i].strip_prefix("--") else {
                return Err(ConfigError::Syntax {
                    why: format!("expected --<option>, found '{}'", args[i]),
                    origin: Origin::Args,
                });
            };
            let mut j = i + 1;
            // Values run to the next `--option` (a negative number like `-2` is a value).
            while j < args.len() && !(args[j].starts_with("--") && args[j].len() > 2) {
                j += 1;
            }
            let vals = args[i + 1..j].to_vec();
            let vals = if vals.is_empty() {
                vec![String::new()]
            } else {
                vals
            };
            c.apply(name, &vals, Origin::Args, &mut pass)?;
            i = j;
        }
        Ok(c)
    }

    /// Apply redis.conf-syntax `text` (as if it were a file; `include` paths are relative to
    /// the current directory).
    pub fn load_str(&mut self, text: &str) -> Result<(), ConfigError> {
        let mut pass = Pass::default();
        self.load_text(text, Path::new("<string>"), &mut pass)
    }

    /// Apply a redis.conf-style file.
    pub fn load_file(&mut self, path: &Path) -> Result<(), ConfigError> {
        let mut pass = Pass::default();
        self.load_file_pass(path, &mut pass)
    }

    fn load_file_pass(&mut self, path: &Path, pass: &mut Pass) -> Result<(), ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Io {
            path: path.to_path_buf(),
            error: e.to_string(),
        })?;
        self.load_text(&text, path, pass)
    }

    fn load_text(&mut self, text: &str, path: &Path, pass: &mut Pass) -> Result<(), ConfigError> {
        for (n, raw) in text.lines().enumerate() {
            let origin = Origin::File {
                path: path.to_path_buf(),
                line: n + 1,
            };
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let words = split_args(line).map_err(|why| ConfigError::Syntax {
                why,
                origin: origin.clone(),
            })?;
            let Some((name, rest)) = words.split_first() else {
                continue;
            };
            if name.eq_ignore_ascii_case("include") {
                if rest.len() != 1 || pass.depth >= 16 {
                    return Err(ConfigError::Syntax {
                        why: "include takes one file (nesting at most 16 deep)".into(),
                        origin,
                    });
                }
                pass.depth += 1;
                let r = self.load_file_pass(Path::new(&rest[0]), pass);
                pass.depth -= 1;
                r?;
                continue;
            }
            let rest = if rest.is_empty() {
                vec![String::new()]
            } else {
                rest.to_vec()
            };
            self.apply(name, &rest, origin, pass)?;
        }
        Ok(())
    }

    fn apply(
        &mut self,
        name: &str,
        args: &[String],
        origin: Origin,
        pass: &mut Pass,
    ) -> Result<(), ConfigError> {
        let Some((idx, spec)) = lookup(name) else {
            return Err(ConfigError::UnknownOption {
                name: name.to_string(),
                origin,
            });
        };
        // Within one file or command line, `save` lines add up (the first one replaces the
        // default); output buffer limits always merge per class.
        let prev = match spec.kind {
            Kind::Save if pass.save_seen => Some(&self.values[idx]),
            Kind::OutputBufferLimit => Some(&self.values[idx]),
            _ => None,
        };
        let v = parse_value(spec, args, prev)
            .and_then(|v| check_value(spec, v))
            .map_err(|why| ConfigError::BadValue {
                name: spec.name.to_string(),
                value: args.join(" "),
                why,
                origin,
            })?;
        if spec.kind == Kind::Save {
            // `save ""` resets; later lines of the same pass add to it.
            pass.save_seen = true;
        }
        self.values[idx] = v;
        self.explicit[idx] = true;
        Ok(())
    }

    /// `CONFIG SET name value`: validate and store (refused for options that are not mutable
    /// at run time; see [`Config::set_any`] to build a configuration before opening).
    pub fn set(&mut self, name: &str, value: &str) -> Result<(), ConfigError> {
        if let Some((_, spec)) = lookup(name) {
            if !spec.mutable {
                return Err(ConfigError::Immutable {
                    name: spec.name.to_string(),
                });
            }
        }
        self.set_any(name, value)
    }

    /// Set any option, mutable or not (building a configuration in code).
    ///
    /// ```
    /// use forkless::Config;
    /// let mut c = Config::default();
    /// c.set_any("appendonly", "yes").unwrap();
    /// c.set_any("appendfsync", "always").unwrap();
    /// assert!(c.set("appenddirname", "elsewhere").is_err()); // chosen at open
    /// ```
    pub fn set_any(&mut self, name: &str, value: &str) -> Result<(), ConfigError> {
        let mut pass = Pass::default();
        self.apply(name, &[value.to_string()], Origin::Set, &mut pass)
    }

    /// This configuration with `name` set to `value` (builder style; panics on an invalid
    /// pair, meant for literals in code: use [`Config::set_any`] for input).
    pub fn with(mut self, name: &str, value: &str) -> Config {
        if let Err(e) = self.set_any(name, value) {
            panic!("Config::with: {e}");
        }
        self
    }

    /// `CONFIG GET name` for one option (alias accepted): its value as Redis prints it.
    pub fn get(&self, name: &str) -> Option<String> {
        lookup(name).map(|(i, _)| render(&self.values[i]))
    }

    /// The typed value of an option.
    pub fn value(&self, name: &str) -> Option<&Value> {
        lookup(name).map(|(i, _)| &self.values[i])
    }

    /// `CONFIG GET pattern`: `(name, value)` of every option whose name (or alias) matches the
    /// glob `pattern` (case-insensitive), in table order.
    pub fn matching(&self, pattern: &str) -> Vec<(&'static str, String)> {
        let p = pattern.as_bytes();
        let mut out = Vec::new();
        for (i, s) in OPTIONS.iter().enumerate() {
            if forkless_keyspace::glob::matches(p, s.name.as_bytes(), true) {
                out.push((s.name, render(&self.values[i])));
            }
            if let Some(a) = s.alias {
                if forkless_keyspace::glob::matches(p, a.as_bytes(), true) {
                    out.push((a, render(&self.values[i])));
                }
            }
        }
        out
    }

    /// True when `name` was set explicitly (file, command line or `set`).
    pub fn is_explicit(&self, name: &str) -> bool {
        lookup(name).is_some_and(|(i, _)| self.explicit[i])
    }

    /// The file this configuration was read from (the `CONFIG REWRITE` target).
    pub fn file(&self) -> Option<&Path> {
        self.file.as_deref()
    }

    /// The redis.conf text of every option that differs from its default.
    pub fn to_conf_string(&self) -> String {
        let d = Config::default();
        let mut out = String::new();
        for (i, s) in OPTIONS.iter().enumerate() {
            if self.values[i] != d.values[i] {
                for l in file_lines(s, &self.values[i]) {
                    out.push_str(&l);
                    out.push('\n');
                }
            }
        }
        out
    }

    /// `CONFIG REWRITE`: rewrite `path` so that reading it gives this configuration. Lines of
    /// known options are replaced in place by the current value (the first occurrence; later
    /// ones dropped), comments and unknown lines are kept, options that differ from their
    /// default and were not in the file are appended. Written durably (temp, fsync, rename).
    pub fn rewrite_file(&self, path: &Path) -> Result<(), ConfigError> {
        let io = |e: std::io::Error| ConfigError::Io {
            path: path.to_path_buf(),
            error: e.to_string(),
        };
        let old = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(io(e)),
        };
        let d = Config::default();
        let mut done = vec![false; OPTIONS.len()];
        let mut out: Vec<String> = Vec::new();
        for raw in old.lines() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') || line == REWRITE_MARK {
                if line != REWRITE_MARK {
                    out.push(raw.to_string());
                }
                continue;
            }
            let name = split_args(line)
                .ok()
                .and_then(|w| w.into_iter().next())
                .unwrap_or_default();
            match lookup(&name) {
                Some((i, s)) => {
                    if !done[i] {
                        done[i] = true;
                        out.extend(file_lines(s, &self.values[i]));
                    }
                }
                None => out.push(raw.to_string()),
            }
        }
        let mut appended = false;
        for (i, s) in OPTIONS.iter().enumerate() {
            if !done[i] && self.values[i] != d.values[i] {
                if !appended {
                    out.push(REWRITE_MARK.to_string());
                    appended = true;
                }
                out.extend(file_lines(s, &self.values[i]));
            }
        }
        let mut text = out.join("\n");
        text.push('\n');
        forkless_durable::write_file_durably(path, text.as_bytes()).map_err(io)
    }

    // ---- typed accessors used by the engine ----

    fn idx(name: &str) -> usize {
        match lookup(name) {
            Some((i, _)) => i,
            None => panic!("option '{name}' is not in the table"),
        }
    }

    /// Boolean option `name` (panics if it is not a boolean row: a bug, not input).
    pub fn bool(&self, name: &str) -> bool {
        match &self.values[Self::idx(name)] {
            Value::Bool(b) => *b,
            v => panic!("option '{name}' is not a boolean: {v:?}"),
        }
    }

    /// Integer or memory option `name`.
    pub fn int(&self, name: &str) -> i64 {
        match &self.values[Self::idx(name)] {
            Value::Int(n) => *n,
            v => panic!("option '{name}' is not an integer: {v:?}"),
        }
    }

    /// String or enum option `name`.
    pub fn str(&self, name: &str) -> &str {
        match &self.values[Self::idx(name)] {
            Value::Str(s) => s,
            v => panic!("option '{name}' is not a string: {v:?}"),
        }
    }

    /// `dir`.
    pub fn dir(&self) -> PathBuf {
        PathBuf::from(self.str("dir"))
    }

    /// `notify-keyspace-events`.
    pub fn notify_flags(&self) -> NotifyFlags {
        match &self.values[Self::idx("notify-keyspace-events")] {
            Value::Events(f) => NotifyFlags(*f),
            _ => NotifyFlags::default(),
        }
    }

    /// `appendonly`.
    pub fn appendonly(&self) -> bool {
        self.bool("appendonly")
    }

    /// `save` rules (empty: no automatic snapshots).
    pub fn save_rules(&self) -> Vec<SaveRule> {
        match &self.values[Self::idx("save")] {
            Value::Save(r) => r.clone(),
            _ => Vec::new(),
        }
    }

    /// `hz`, clamped to 1..=500 as Redis does.
    pub fn hz(&self) -> u32 {
        self.int("hz").clamp(1, 500) as u32
    }

    /// `replicaof`.
    pub fn replicaof(&self) -> Option<(String, u16)> {
        match &self.values[Self::idx("replicaof")] {
            Value::ReplicaOf(r) => r.clone(),
            _ => None,
        }
    }

    /// `bind` addresses.
    pub fn bind(&self) -> Vec<String> {
        match &self.values[Self::idx("bind")] {
            Value::List(l) => l.clone(),
            _ => Vec::new(),
        }
    }

    /// `client-output-buffer-limit` for normal, replica and pubsub clients.
    pub fn output_buffer_limits(&self) -> [BufferLimit; 3] {
        match &self.values[Self::idx("client-output-buffer-limit")] {
            Value::Limits(l) => *l,
            _ => {
                [BufferLimit {
                    hard: 0,
                    soft: 0,
                    soft_seconds: 0,
                }; 3]
            }
        }
    }

    /// The snapshot encoding thresholds.
    pub fn encoding_limits(&self) -> forkless_rdb::EncodingLimits {
        forkless_rdb::EncodingLimits {
            list_max_listpack_size: self.int("list-max-listpack-size"),
            set_max_intset_entries: self.int("set-max-intset-entries") as usize,
            zset_max_listpack_entries: self.int("zset-max-listpack-entries") as usize,
            zset_max_listpack_value: self.int("zset-max-listpack-value") as usize,
            hash_max_listpack_entries: self.int("hash-max-listpack-entries") as usize,
            hash_max_listpack_value: self.int("hash-max-listpack-value") as usize,
        }
    }

    /// Every option as `(name, value)` in table order (`CONFIG GET *` without aliases).
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, String)> + '_ {
        OPTIONS
            .iter()
            .zip(&self.values)
            .map(|(s, v)| (s.name, render(v)))
    }

    /// `CONFIG SET` of several pairs at once: all or nothing (the configuration is unchanged
    /// when one pair fails).
    pub fn set_many(&mut self, pairs: &[(&str, &str)]) -> Result<(), ConfigError> {
        let mut next = self.clone();
        for (n, v) in pairs {
            next.set(n, v)?;
        }
        *self = next;
        Ok(())
    }

    /// Values of `names` (for diagnostics).
    pub fn snapshot_of(&self, names: &[&str]) -> BTreeMap<String, String> {
        names
            .iter()
            .filter_map(|n| self.get(n).map(|v| (n.to_string(), v)))
            .collect()
    }
}

const REWRITE_MARK: &str = "# Generated by CONFIG REWRITE";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_default_parses_and_names_are_unique() {
        let c = Config::default();
        let mut names = std::collections::HashSet::new();
        for s in OPTIONS {
            assert!(names.insert(s.name), "duplicate {}", s.name);
            if let Some(a) = s.alias {
                assert!(names.insert(a), "duplicate alias {a}");
            }
            assert!(c.get(s.name).is_some());
        }
        assert_eq!(c.get("hash-max-listpack-entries").unwrap(), "512");
        assert_eq!(c.get("save").unwrap(), "3600 1 300 100 60 10000");
        assert_eq!(c.get("client-query-buffer-limit").unwrap(), "1073741824");
    }

    #[test]
    fn split_args_like_sdssplitargs() {
        assert_eq!(
            split_args(r#"save "900 1 300 10""#).unwrap(),
            ["save", "900 1 300 10"]
        );
        assert_eq!(
            split_args(r#"a "x\ty\x41" 'it\'s'"#).unwrap(),
            ["a", "x\tyA", "it's"]
        );
        assert_eq!(split_args(r#"save """#).unwrap(), ["save", ""]);
        assert!(split_args(r#"a "b"#).is_err());
        assert!(split_args(r#"a "b"c"#).is_err());
    }

    #[test]
    fn memory_units() {
        assert_eq!(parse_memory("1gb"), Some(1 << 30));
        assert_eq!(parse_memory("100MB"), Some(100 << 20));
        assert_eq!(parse_memory("1k"), Some(1000));
        assert_eq!(parse_memory("12"), Some(12));
        assert_eq!(parse_memory("1tb"), None);
        assert_eq!(memory_repr(64 << 20), "64mb");
    }

    #[test]
    fn save_lines_add_up_and_empty_clears() {
        let mut c = Config::default();
        c.load_str("save 900 1\nsave 300 10\n").unwrap();
        assert_eq!(c.get("save").unwrap(), "900 1 300 10");
        c.load_str("save \"\"\n").unwrap();
        assert_eq!(c.get("save").unwrap(), "");
        assert!(c.save_rules().is_empty());
    }
}
