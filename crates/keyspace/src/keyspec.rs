//! Redis 7.0.15's command table and its key specs: which arguments of a command are keys, and
//! how the command uses each one. The one place that answers "which arguments are keys, exactly".
//!
//! Problem: three callers must name a command's keys exactly, as Redis does: the ACL key check
//! (with the read/write permission each key needs), COMMAND GETKEYS (its keys, or its errors) and
//! a script's declared-keys check (forkless locks only the shards of a script's declared keys, so
//! a `numkeys` or a `STREAMS` keyword must not be taken for a key). Redis answers all three with
//! one function, `getKeysFromCommandWithSpecs` (`db.c`), over the key specs of its command table
//! (`src/commands/*.json`); so does this module, over the same table.
//!
//! ## The table
//! `redis_commands.txt`, generated from Redis 7.0.15's `src/commands/*.json` by
//! `ci/gen-redis-commands.py`, one command or `container|subcommand` a line: name, arity, flags,
//! ACL categories (explicit plus those the flags imply), key specs, and the name of the command's
//! getkeys proc (Redis's `get_keys_function`) or `-`. It holds every Redis command, served here or
//! not (ACL category arithmetic and `ACL GETUSER` need all of them). [`table`] parses it once.
//!
//! ## Which function answers which question
//! * [`CmdTable::keys`]: the exact keys of a call with the flags of each (`RO`/`RW`/`OW`/`RM`,
//!   `ACCESS`/`UPDATE`/`INSERT`/`DELETE`): Redis's `getKeysFromCommandWithSpecs` with
//!   `GET_KEYSPEC_DEFAULT`. Callers: the ACL check (`forkless-server` `acl.rs`, permission per key
//!   from [`KeyRef::reads`]/[`KeyRef::writes`]), COMMAND GETKEYS / GETKEYSANDFLAGS
//!   (`forkless-server` `command.rs`), and through [`exact_keys`] the script declared-keys check
//!   ([`crate::CommandSpec::exact_keys`], used by `atomic.rs`).
//! * [`CmdTable::movable_keys`]: Redis's `CMD_MOVABLE_KEYS`, COMMAND INFO's `movablekeys` flag
//!   (`command.rs`).
//! * [`CmdTable::has_keys`]: Redis's `doesCommandHaveKeys` (ACLs skip the key walk without it;
//!   COMMAND GETKEYS answers "The command has no key arguments").
//! * [`CmdTable::lookup`] (Redis's `lookupCommand`: an unknown subcommand is no command) and
//!   [`CmdTable::resolve`] (the ACL's view: an unknown subcommand is its container).
//! * Not here: [`crate::CommandSpec::key_indices`], the legacy first/last/step range the keyspace
//!   locks shards by. It may over-approximate (locking more shards is safe) and Redis keeps it too
//!   (`COMMAND INFO`'s first/last/step): a different question.
//!
//! ## Key specs, then getkeys procs (as Redis)
//! A command's key specs are evaluated in order (begin search: an index, or a keyword searched
//! forwards or backwards; find keys: a range, or a count argument followed by the keys). When a
//! spec cannot be evaluated (a count that does not parse or is negative, a range outside the
//! arguments, an unknown or `INCOMPLETE` spec) the whole answer falls back to the command's getkeys
//! proc ([`GetKeysProc`]), which also serves the commands whose specs have `VARIABLE_FLAGS` (SET,
//! BITFIELD). The procs are Redis's own argument parsers and carry its argument-validity checks
//! that specs cannot express: a count below 1 or beyond the arguments gives no keys (ZUNIONSTORE,
//! LMPOP, EVAL with `numkeys` 0, ...), XREAD's STREAMS needs a non-zero even count after it; their
//! count is read with C's `atoi` (so `2abc` counts as 2). No keys from a command that has keys is
//! COMMAND GETKEYS's "Invalid arguments specified for command" (an empty list for
//! `no_mandatory_keys` commands: EVAL*, FCALL*).
//!
//! ## Cost
//! A lookup lowercases the name on the stack and hashes it once (a container's subcommand is
//! formatted as `name|sub`); the evaluation walks a command's few specs. Callers pay it only off
//! the hot path: restricted ACL users, COMMAND GETKEYS, and `redis.call` in a script that
//! declared its keys.

use std::collections::HashMap;
use std::sync::OnceLock;

/// Redis's ACL categories, in `ACLCommandCategories` order (the order of `ACL CAT` and of the
/// category search in ACL rule descriptions). [`CmdDef::cats`] has bit `i` for `CATEGORIES[i]`.
pub const CATEGORIES: &[&str] = &[
    "keyspace",
    "read",
    "write",
    "set",
    "sortedset",
    "list",
    "hash",
    "string",
    "bitmap",
    "hyperloglog",
    "geo",
    "stream",
    "pubsub",
    "admin",
    "fast",
    "slow",
    "blocking",
    "dangerous",
    "connection",
    "transaction",
    "scripting",
];

/// Key-spec flags, Redis's `CMD_KEY_*` (`server.h`), same bits.
pub mod flags {
    /// Read-only: reads the value, does not modify it.
    pub const RO: u16 = 1 << 0;
    /// Read-write: modifies the value or may delete it.
    pub const RW: u16 = 1 << 1;
    /// Overwrite: replaces the value.
    pub const OW: u16 = 1 << 2;
    /// Removes the key.
    pub const RM: u16 = 1 << 3;
    /// Returns, copies or uses the user data.
    pub const ACCESS: u16 = 1 << 4;
    /// Updates data in the value.
    pub const UPDATE: u16 = 1 << 5;
    /// Adds data to the value.
    pub const INSERT: u16 = 1 << 6;
    /// Deletes content from the value.
    pub const DELETE: u16 = 1 << 7;
    /// Not a key (a shard channel): skipped by key searches.
    pub const NOT_KEY: u16 = 1 << 8;
    /// The spec may miss keys: its command falls back to the getkeys proc.
    pub const INCOMPLETE: u16 = 1 << 9;
    /// The flags depend on the arguments: the getkeys proc answers.
    pub const VARIABLE_FLAGS: u16 = 1 << 10;

    /// Each flag with its name as COMMAND GETKEYSANDFLAGS and COMMAND INFO spell it
    /// (`addReplyFlagsForKeyArgs`), in Redis's order.
    pub const NAMES: &[(u16, &str)] = &[
        (RO, "RO"),
        (RW, "RW"),
        (OW, "OW"),
        (RM, "RM"),
        (ACCESS, "access"),
        (UPDATE, "update"),
        (INSERT, "insert"),
        (DELETE, "delete"),
        (NOT_KEY, "not_key"),
        (INCOMPLETE, "incomplete"),
        (VARIABLE_FLAGS, "variable_flags"),
    ];

    /// The names of the flags set in `bits`, in Redis's order.
    pub fn names(bits: u16) -> Vec<&'static str> {
        NAMES
            .iter()
            .filter(|(f, _)| bits & f != 0)
            .map(|(_, n)| *n)
            .collect()
    }

    /// The flag for a word of the table file (`access`, `ow`, ...).
    pub(super) fn parse(word: &str) -> Option<u16> {
        NAMES
            .iter()
            .find(|(_, n)| n.eq_ignore_ascii_case(word))
            .map(|(f, _)| *f)
    }
}

/// One key of a call: its argument index (`argv[0]` is the command name) and its key-spec flags
/// ([`flags`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyRef {
    /// Argument index.
    pub pos: usize,
    /// [`flags`] bits; 0 from the procs that Redis gives no flags (`genericGetKeys`,
    /// `xreadGetKeys`, `georadiusGetKeys`).
    pub flags: u16,
}

impl KeyRef {
    /// The key's data is read (`ACCESS`): ACLs want a `%R~` (or `~`) pattern for it.
    pub fn reads(&self) -> bool {
        self.flags & flags::ACCESS != 0
    }

    /// The key's data is written (`INSERT`, `DELETE` or `UPDATE`): ACLs want `%W~` (or `~`).
    pub fn writes(&self) -> bool {
        self.flags & (flags::INSERT | flags::DELETE | flags::UPDATE) != 0
    }
}

/// Where a key spec's search starts.
#[derive(Clone, Copy, Debug)]
enum BeginSearch {
    /// At this argument.
    Index(i64),
    /// After the first match of the keyword, searched from `startfrom` (negative: backwards
    /// from the end).
    Keyword(&'static str, i64),
    /// Not expressible (SORT's BY/GET/STORE): the proc answers.
    Unknown,
}

/// How a key spec finds its keys from the start.
#[derive(Clone, Copy, Debug)]
enum FindKeys {
    /// `lastkey` relative to the start (negative: from the end; with `limit`, a `1/limit` share
    /// of the remaining arguments), every `step`.
    Range { last: i64, step: i64, limit: i64 },
    /// The count at start+`idx`, the keys from start+`first`, every `step`.
    KeyNum { idx: i64, first: i64, step: i64 },
    /// Not expressible: the proc answers.
    Unknown,
}

#[derive(Clone, Copy, Debug)]
struct KeySpec {
    flags: u16,
    bs: BeginSearch,
    fk: FindKeys,
}

/// Redis's getkeys procs (`db.c`), for the commands whose key specs cannot always answer: the
/// specs failed (a count that does not parse, a range past the arguments), are `INCOMPLETE`
/// (SORT, SORT_RO, MIGRATE) or have `VARIABLE_FLAGS` (SET, BITFIELD).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GetKeysProc {
    /// `genericGetKeys(store, count, first, 1)`: an `atoi` count at `count` (below 1, or more
    /// keys than arguments: no keys, the command will answer a syntax error), the keys from
    /// `first`, then the destination at `store` when non-zero. `zunionInterDiffStoreGetKeys`
    /// (1, 2, 3); `zunionInterDiffGetKeys`, `sintercardGetKeys`, `lmpopGetKeys`, `zmpopGetKeys`
    /// (0, 1, 2); `evalGetKeys`, `functionGetKeys`, `blmpopGetKeys` (0, 2, 3).
    Generic {
        /// The destination's index, 0 for none.
        store: usize,
        /// The count's index.
        count: usize,
        /// The first key's index.
        first: usize,
    },
    /// `sortGetKeys`: the key, and the argument after the last STORE (skipping LIMIT's two and
    /// BY's and GET's one argument).
    Sort,
    /// `sortROGetKeys`: the key.
    SortRo,
    /// `migrateGetKeys`: argument 3, or the arguments after KEYS when argument 3 is empty.
    Migrate,
    /// `georadiusGetKeys`: the key and the argument after the last STORE or STOREDIST.
    Georadius,
    /// `xreadGetKeys`: past BLOCK/COUNT/GROUP/NOACK, STREAMS and the first half of the rest (an
    /// even, non-zero count; otherwise no keys).
    Xread,
    /// `setGetKeys`: the key, read and written when a GET option is present.
    Set,
    /// `bitfieldGetKeys`: the key, read-only when every operation is GET (or OVERFLOW).
    Bitfield,
}

impl GetKeysProc {
    fn parse(name: &str) -> Option<GetKeysProc> {
        let generic = |store, count, first| GetKeysProc::Generic {
            store,
            count,
            first,
        };
        Some(match name {
            "zunionInterDiffStoreGetKeys" => generic(1, 2, 3),
            "zunionInterDiffGetKeys" | "sintercardGetKeys" | "lmpopGetKeys" | "zmpopGetKeys" => {
                generic(0, 1, 2)
            }
            "evalGetKeys" | "functionGetKeys" | "blmpopGetKeys" => generic(0, 2, 3),
            "sortGetKeys" => GetKeysProc::Sort,
            "sortROGetKeys" => GetKeysProc::SortRo,
            "migrateGetKeys" => GetKeysProc::Migrate,
            "georadiusGetKeys" => GetKeysProc::Georadius,
            "xreadGetKeys" => GetKeysProc::Xread,
            "setGetKeys" => GetKeysProc::Set,
            "bitfieldGetKeys" => GetKeysProc::Bitfield,
            _ => return None,
        })
    }
}

/// One command or subcommand of Redis's table.
#[derive(Debug)]
pub struct CmdDef {
    /// `get`, `config|get`.
    pub fullname: &'static str,
    /// Redis arity: > 0 exact argument count (name included), < 0 minimum.
    pub arity: i32,
    /// Category bits (index into [`CATEGORIES`]).
    pub cats: u32,
    /// `no_auth` (AUTH, HELLO): allowed whatever the ACL rules say.
    pub no_auth: bool,
    /// `no_mandatory_keys` (EVAL*, FCALL*): may run without keys.
    pub no_mandatory_keys: bool,
    /// The container's id, for a subcommand.
    pub parent: Option<usize>,
    /// Subcommand ids, for a container.
    pub subs: Vec<usize>,
    specs: Vec<KeySpec>,
    getkeys: Option<GetKeysProc>,
}

/// Redis's command table (see the module header).
#[derive(Debug)]
pub struct CmdTable {
    /// By id (ids are positions; top-level commands sorted by name, each followed by its
    /// subcommands).
    pub defs: Vec<CmdDef>,
    by_name: HashMap<&'static str, usize>,
}

const TABLE_TEXT: &str = include_str!("redis_commands.txt");

/// The table (parsed once).
pub fn table() -> &'static CmdTable {
    static T: OnceLock<CmdTable> = OnceLock::new();
    T.get_or_init(|| parse_table(TABLE_TEXT))
}

/// The exact keys of `argv` when Redis's table knows its command and finds keys in this call;
/// `None` otherwise (a command Redis does not have, one without keys, or arguments that name none
/// because they do not parse). The script declared-keys check's question.
pub fn exact_keys(argv: &[&[u8]]) -> Option<Vec<KeyRef>> {
    let t = table();
    let id = t.resolve(argv)?;
    let keys = t.keys(id, argv);
    (!keys.is_empty()).then_some(keys)
}

fn parse_table(text: &'static str) -> CmdTable {
    let mut defs: Vec<CmdDef> = Vec::new();
    let mut by_name = HashMap::new();
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let f: Vec<&'static str> = line.split(' ').collect();
        let field = |i: usize| f.get(i).copied().unwrap_or("-");
        let (name, arity, cmd_flags, cats, specs) =
            (field(0), field(1), field(2), field(3), field(4));
        let mut cbits = 0u32;
        for c in cats.split(',') {
            if let Some(i) = CATEGORIES.iter().position(|x| *x == c) {
                cbits |= 1 << i;
            }
        }
        let specs = if specs == "-" {
            Vec::new()
        } else {
            specs.split(';').map(parse_spec).collect()
        };
        let id = defs.len();
        let parent = name
            .split_once('|')
            .and_then(|(p, _)| by_name.get(p).copied());
        let has_flag = |w: &str| cmd_flags.split(',').any(|x| x == w);
        defs.push(CmdDef {
            fullname: name,
            arity: arity.parse().unwrap_or(0),
            cats: cbits,
            no_auth: has_flag("no_auth"),
            no_mandatory_keys: has_flag("no_mandatory_keys"),
            parent,
            subs: Vec::new(),
            specs,
            getkeys: GetKeysProc::parse(field(5)),
        });
        if let Some(p) = parent {
            defs[p].subs.push(id);
        }
        by_name.insert(name, id);
    }
    CmdTable { defs, by_name }
}

/// `flags:begin-search:find-keys` (the table file's header has the grammar). What does not parse
/// is `Unknown`, which falls back to the proc as Redis does for an unknown spec.
fn parse_spec(s: &'static str) -> KeySpec {
    let mut p = s.splitn(3, ':');
    let (fl, bs, fk) = (
        p.next().unwrap_or(""),
        p.next().unwrap_or("u"),
        p.next().unwrap_or("u"),
    );
    let flags = fl.split(',').filter_map(flags::parse).fold(0, |a, b| a | b);
    let nums = |t: &str| -> Option<[i64; 3]> {
        let v: Vec<i64> = t
            .split(',')
            .map(|n| n.parse().ok())
            .collect::<Option<_>>()?;
        v.try_into().ok()
    };
    let bs = match bs.split_at_checked(1) {
        Some(("i", pos)) => pos.parse().map_or(BeginSearch::Unknown, BeginSearch::Index),
        Some(("k", rest)) => match rest.split_once(',').map(|(k, f)| (k, f.parse())) {
            Some((kw, Ok(from))) => BeginSearch::Keyword(kw, from),
            _ => BeginSearch::Unknown,
        },
        _ => BeginSearch::Unknown,
    };
    let fk = match fk.split_at_checked(1) {
        Some(("r", n)) => nums(n).map_or(FindKeys::Unknown, |[last, step, limit]| {
            FindKeys::Range { last, step, limit }
        }),
        Some(("n", n)) => nums(n).map_or(FindKeys::Unknown, |[idx, first, step]| {
            FindKeys::KeyNum { idx, first, step }
        }),
        _ => FindKeys::Unknown,
    };
    KeySpec { flags, bs, fk }
}

impl CmdTable {
    /// A command or `cmd|sub` by lowercase name.
    pub fn id(&self, name: &str) -> Option<usize> {
        self.by_name.get(name).copied()
    }

    /// `argv[0]` (and `argv[1]` for a container) lowercased: the command's id, and the
    /// subcommand's when there is one.
    fn find(&self, argv: &[&[u8]]) -> Option<(usize, Option<usize>)> {
        let mut buf = [0u8; 64];
        let name = argv.first()?;
        let lower = buf.get_mut(..name.len())?;
        lower.copy_from_slice(name);
        lower.make_ascii_lowercase();
        let id = self.id(std::str::from_utf8(lower).ok()?)?;
        if self.defs[id].subs.is_empty() || argv.len() < 2 {
            return Some((id, None));
        }
        let sub = String::from_utf8_lossy(argv[1]).to_ascii_lowercase();
        let full = format!("{}|{sub}", self.defs[id].fullname);
        Some((id, self.id(&full)))
    }

    /// The command `argv` runs, as the ACL check sees it: the subcommand of a container, or the
    /// container itself when the subcommand is unknown or missing.
    pub fn resolve(&self, argv: &[&[u8]]) -> Option<usize> {
        let (id, sub) = self.find(argv)?;
        Some(sub.unwrap_or(id))
    }

    /// Redis's `lookupCommand`: as [`CmdTable::resolve`], but an unknown subcommand of a
    /// container is no command.
    pub fn lookup(&self, argv: &[&[u8]]) -> Option<usize> {
        match self.find(argv)? {
            (_, Some(sub)) => Some(sub),
            (id, None) if argv.len() < 2 || self.defs[id].subs.is_empty() => Some(id),
            _ => None,
        }
    }

    /// Redis's `doesCommandHaveKeys`: a getkeys proc, or a key spec that is not `NOT_KEY`.
    pub fn has_keys(&self, id: usize) -> bool {
        let def = &self.defs[id];
        def.getkeys.is_some() || def.specs.iter().any(|s| s.flags & flags::NOT_KEY == 0)
    }

    /// Redis's `CMD_MOVABLE_KEYS` (COMMAND INFO's `movablekeys`: the legacy first/last/step
    /// range cannot name every key), as `populateCommandLegacyRangeSpec` sets it: a spec that is
    /// not an index with a range, a range with a step other than 1 or not following the previous
    /// one, or an `INCOMPLETE` spec.
    pub fn movable_keys(&self, id: usize) -> bool {
        let specs = &self.defs[id].specs;
        let mut movable = false;
        let mut ranges = 0;
        // Redis compares the absolute last key as an unsigned int (a negative one is "huge").
        let mut last_key: u32 = 0;
        for s in specs {
            let (BeginSearch::Index(pos), FindKeys::Range { last, step, .. }) = (s.bs, s.fk) else {
                movable = true;
                continue;
            };
            if specs.len() == 1 {
                return s.flags & flags::INCOMPLETE != 0;
            }
            if step != 1 || (last_key != 0 && i64::from(last_key) != pos - 1) {
                movable = true;
                continue;
            }
            movable |= s.flags & flags::INCOMPLETE != 0;
            ranges += 1;
            let abs = if last >= 0 { last + pos } else { last };
            last_key = last_key.max(abs as i32 as u32);
        }
        movable || (!specs.is_empty() && ranges == 0)
    }

    /// True when `argc` arguments (name included) satisfy command `id`'s arity.
    pub fn arity_ok(&self, id: usize, argc: usize) -> bool {
        let a = i64::from(self.defs[id].arity);
        let argc = argc as i64;
        !((a > 0 && a != argc) || argc < -a)
    }

    /// The keys of `argv` for command `id` (from [`CmdTable::resolve`] or [`CmdTable::lookup`]),
    /// with their flags: Redis's `getKeysFromCommandWithSpecs(.., GET_KEYSPEC_DEFAULT, ..)`. The
    /// key specs when they all evaluate (and none has `VARIABLE_FLAGS`), else the getkeys proc,
    /// else none.
    pub fn keys(&self, id: usize, argv: &[&[u8]]) -> Vec<KeyRef> {
        let def = &self.defs[id];
        let has_spec = def.specs.iter().any(|s| s.flags & flags::NOT_KEY == 0);
        let varflags = def
            .specs
            .iter()
            .any(|s| s.flags & flags::VARIABLE_FLAGS != 0);
        if has_spec && !varflags {
            if let Some(keys) = keys_from_specs(&def.specs, argv) {
                return keys;
            }
        }
        match def.getkeys {
            Some(proc_) => keys_from_proc(proc_, argv),
            None => Vec::new(),
        }
    }
}

/// Redis's `getKeysUsingKeySpecs` without `GET_KEYSPEC_RETURN_PARTIAL`: `None` when a spec cannot
/// be evaluated (the caller falls back to the proc).
fn keys_from_specs(specs: &[KeySpec], argv: &[&[u8]]) -> Option<Vec<KeyRef>> {
    let argc = argv.len() as i64;
    let mut out = Vec::new();
    for spec in specs {
        if spec.flags & flags::NOT_KEY != 0 {
            continue;
        }
        let first = match spec.bs {
            BeginSearch::Index(pos) => pos,
            BeginSearch::Keyword(kw, from) => {
                // Forwards from `from` up to the one before last, or backwards from argc+from
                // down to argument 2: Redis's loop stops before `end`.
                let (start, end) = if from > 0 {
                    (from, argc - 1)
                } else {
                    (argc + from, 1)
                };
                let mut i = start;
                let mut found = None;
                while i != end {
                    if i >= argc || i < 1 {
                        break;
                    }
                    if argv[i as usize].eq_ignore_ascii_case(kw.as_bytes()) {
                        found = Some(i + 1);
                        break;
                    }
                    i += if start <= end { 1 } else { -1 };
                }
                match found {
                    Some(f) => f,
                    None => continue,
                }
            }
            BeginSearch::Unknown => return None,
        };
        let (first, last, step) = match spec.fk {
            FindKeys::Range { last, step, limit } => {
                let l = if last >= 0 {
                    first + last
                } else if limit == 0 {
                    argc + last
                } else {
                    first + ((argc - first) / limit + last)
                };
                (first, l, step)
            }
            FindKeys::KeyNum {
                idx,
                first: fk,
                step,
            } => {
                if idx >= argc {
                    return None;
                }
                let at = usize::try_from(first + idx).ok()?;
                let n = crate::convert::parse_i64(argv.get(at)?)?;
                if n < 0 {
                    return None;
                }
                // Redis adds the count as a C int.
                let s = first + fk;
                (s, s + i64::from(n as i32) - 1, step)
            }
            FindKeys::Unknown => return None,
        };
        if last >= argc || last < first || first >= argc || first < 0 || step < 1 {
            return None;
        }
        let mut i = first;
        while i <= last {
            out.push(KeyRef {
                pos: i as usize,
                flags: spec.flags,
            });
            i += step;
        }
        if spec.flags & flags::INCOMPLETE != 0 {
            return None;
        }
    }
    Some(out)
}

/// C's `atoi` as glibc has it: leading blanks, a sign, digits up to the first non-digit, the
/// `long` clamped on overflow then cut to an `int`.
fn atoi(s: &[u8]) -> i32 {
    let s = match s.iter().position(|c| !matches!(c, b' ' | b'\t'..=b'\r')) {
        Some(i) => &s[i..],
        None => return 0,
    };
    let (neg, digits) = match s.first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let mut v: i64 = 0;
    for &c in digits.iter().take_while(|c| c.is_ascii_digit()) {
        let d = i64::from(c - b'0');
        v = match v.checked_mul(10).and_then(|v| v.checked_add(d)) {
            Some(v) => v,
            // strtol clamps to LONG_MAX / LONG_MIN.
            None => {
                return if neg {
                    i64::MIN as i32
                } else {
                    i64::MAX as i32
                }
            }
        };
    }
    (if neg { -v } else { v }) as i32
}

fn keys_from_proc(proc_: GetKeysProc, argv: &[&[u8]]) -> Vec<KeyRef> {
    let argc = argv.len();
    let key = |pos: usize, flags: u16| KeyRef { pos, flags };
    let is = |i: usize, w: &str| argv[i].eq_ignore_ascii_case(w.as_bytes());
    if argc < 2 {
        // Every proc's command has a key at argument 1 at least; arity checks come first in
        // Redis, so no caller should get here.
        return Vec::new();
    }
    match proc_ {
        GetKeysProc::Generic {
            store,
            count,
            first,
        } => {
            let Some(n) = argv.get(count).map(|a| atoi(a)) else {
                return Vec::new();
            };
            let room = argc.saturating_sub(first);
            let Ok(n) = usize::try_from(n) else {
                return Vec::new();
            };
            if n < 1 || n > room {
                return Vec::new();
            }
            let mut out: Vec<KeyRef> = (first..first + n).map(|i| key(i, 0)).collect();
            if store != 0 {
                out.push(key(store, 0));
            }
            out
        }
        GetKeysProc::SortRo => vec![key(1, flags::RO | flags::ACCESS)],
        GetKeysProc::Sort => {
            let mut out = vec![key(1, flags::RO | flags::ACCESS)];
            let mut store = None;
            let mut i = 2;
            while i < argc {
                if is(i, "limit") {
                    i += 2;
                } else if is(i, "get") || is(i, "by") {
                    i += 1;
                } else if is(i, "store") && i + 1 < argc {
                    // The last STORE wins; its argument is looked at as an option next.
                    store = Some(i + 1);
                }
                i += 1;
            }
            if let Some(s) = store {
                out.push(key(s, flags::OW | flags::UPDATE));
            }
            out
        }
        GetKeysProc::Migrate => {
            let (mut first, mut num) = (3, 1);
            if argc > 6 {
                let mut i = 6;
                while i < argc {
                    if is(i, "keys") {
                        if argv[3].is_empty() {
                            first = i + 1;
                            num = argc - first;
                        } else {
                            num = 0;
                        }
                        break;
                    }
                    if is(i, "auth") {
                        i += 1;
                    } else if is(i, "auth2") {
                        i += 2;
                    }
                    i += 1;
                }
            }
            let f = flags::RW | flags::ACCESS | flags::DELETE;
            (first..first + num)
                .filter(|&i| i < argc)
                .map(|i| key(i, f))
                .collect()
        }
        GetKeysProc::Georadius => {
            let mut stored = None;
            let mut i = 5;
            while i < argc {
                if (is(i, "store") || is(i, "storedist")) && i + 1 < argc {
                    stored = Some(i + 1);
                    i += 1;
                }
                i += 1;
            }
            std::iter::once(1)
                .chain(stored)
                .filter(|&i| i < argc)
                .map(|i| key(i, 0))
                .collect()
        }
        GetKeysProc::Xread => {
            let mut streams = None;
            let mut i = 1;
            while i < argc {
                if is(i, "block") || is(i, "count") {
                    i += 1;
                } else if is(i, "group") {
                    i += 2;
                } else if is(i, "noack") {
                    // No argument to skip.
                } else if is(i, "streams") {
                    streams = Some(i);
                    break;
                } else {
                    break;
                }
                i += 1;
            }
            let Some(s) = streams else {
                return Vec::new();
            };
            let num = argc - s - 1;
            if num == 0 || !num.is_multiple_of(2) {
                return Vec::new();
            }
            (s + 1..s + 1 + num / 2).map(|i| key(i, 0)).collect()
        }
        GetKeysProc::Set => {
            let get = (3..argc).any(|i| is(i, "get"));
            let f = if get {
                flags::RW | flags::ACCESS | flags::UPDATE
            } else {
                flags::OW | flags::UPDATE
            };
            vec![key(1, f)]
        }
        GetKeysProc::Bitfield => {
            let mut readonly = true;
            let mut i = 2;
            while i < argc {
                let rem = argc - i - 1;
                if is(i, "get") && rem >= 2 {
                    i += 2;
                } else if (is(i, "set") || is(i, "incrby")) && rem >= 3 {
                    readonly = false;
                    break;
                } else if is(i, "overflow") && rem >= 1 {
                    i += 1;
                } else {
                    readonly = false;
                    break;
                }
                i += 1;
            }
            let f = if readonly {
                flags::RO | flags::ACCESS
            } else {
                flags::RW | flags::ACCESS | flags::UPDATE
            };
            vec![key(1, f)]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(argv: &[&str]) -> Vec<(String, Vec<&'static str>)> {
        let argv: Vec<&[u8]> = argv.iter().map(|a| a.as_bytes()).collect();
        let t = table();
        let id = t.lookup(&argv).expect("a Redis command");
        t.keys(id, &argv)
            .into_iter()
            .map(|k| {
                let key = String::from_utf8_lossy(argv[k.pos]).into_owned();
                (key, flags::names(k.flags))
            })
            .collect()
    }

    fn names(argv: &[&str]) -> Vec<String> {
        keys(argv).into_iter().map(|(k, _)| k).collect()
    }

    #[test]
    fn table_parses_completely() {
        let t = table();
        assert!(t.defs.len() > 300, "{}", t.defs.len());
        let rows: Vec<&str> = TABLE_TEXT
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .collect();
        assert_eq!(rows.len(), t.defs.len());
        for (row, def) in rows.iter().zip(&t.defs) {
            let f: Vec<&str> = row.split(' ').collect();
            assert_eq!(f.len(), 6, "{row}");
            assert_eq!(def.getkeys.is_some(), f[5] != "-", "{row}");
            for (text, spec) in f[4].split(';').filter(|s| *s != "-").zip(&def.specs) {
                let p: Vec<&str> = text.split(':').collect();
                let bs_unknown = matches!(spec.bs, BeginSearch::Unknown);
                let fk_unknown = matches!(spec.fk, FindKeys::Unknown);
                assert_eq!(bs_unknown, p[1] == "u", "{row}");
                assert_eq!(fk_unknown, p[2] == "u", "{row}");
                assert_eq!(
                    flags::names(spec.flags).len(),
                    p[0].split(',').count(),
                    "{row}"
                );
            }
        }
        assert_eq!(t.resolve(&[b"CONFIG", b"Get", b"x"]), t.id("config|get"));
        assert_eq!(t.resolve(&[b"config", b"nosuch"]), t.id("config"));
        assert_eq!(t.lookup(&[b"config", b"nosuch"]), None);
        assert_eq!(t.lookup(&[b"config"]), t.id("config"));
    }

    /// Expected answers from redis-server 7.0.15 (`COMMAND GETKEYS` / `GETKEYSANDFLAGS`).
    #[test]
    fn keys_as_redis_answers() {
        assert_eq!(names(&["zunionstore", "d", "2", "a", "b"]), ["d", "a", "b"]);
        // The specs fail on a count that is no integer; the proc reads it with atoi.
        assert_eq!(
            names(&["zunionstore", "d", "2abc", "a", "b"]),
            ["a", "b", "d"]
        );
        assert_eq!(
            names(&["zunionstore", "d", " 2", "a", "b"]),
            ["a", "b", "d"]
        );
        // Redis adds the count as a C int: 2^32 + 1 counts as 1.
        assert_eq!(
            names(&["zunionstore", "d", "4294967297", "a", "b"]),
            ["d", "a"]
        );
        assert!(names(&["zunionstore", "d", "0", "a"]).is_empty());
        assert!(names(&["zinter", "2", "a"]).is_empty());
        assert!(names(&["pfmerge", "d"]).is_empty());
        assert!(names(&["eval", "return 1", "0"]).is_empty());
        assert!(names(&["eval", "return 1", "-1"]).is_empty());
        assert_eq!(names(&["eval", "return 1", "2x", "k1", "k2"]), ["k1", "k2"]);
        assert_eq!(names(&["xread", "streams", "s1", "s2", "0"]), ["s1"]);
        assert!(names(&["xread", "count", "1", "streams", "s1"]).is_empty());
        assert_eq!(
            names(&["xreadgroup", "group", "g", "c", "streams", "s1", "s2", "0"]),
            ["s1"]
        );
        assert_eq!(names(&["sort", "abc", "store", "x", "store"]), ["abc", "x"]);
        assert_eq!(
            names(&["sort", "abc", "store", "limit", "0", "1"]),
            ["abc", "limit"]
        );
        assert_eq!(
            names(&["georadius", "k", "0", "0", "1", "km", "store"]),
            ["k"]
        );
        assert_eq!(
            names(&["migrate", "h", "p", "", "0", "0", "keys", "a", "b"]),
            ["a", "b"]
        );
        assert_eq!(names(&["object", "encoding", "k"]), ["k"]);
        assert_eq!(names(&["blpop", "a", "b", "0"]), ["a", "b"]);
        assert_eq!(
            keys(&["set", "k", "v", "get"]),
            [("k".into(), vec!["RW", "access", "update"])]
        );
        assert_eq!(
            keys(&["set", "k", "v"]),
            [("k".into(), vec!["OW", "update"])]
        );
        assert_eq!(
            keys(&["bitfield", "k", "get", "u8", "0"]),
            [("k".into(), vec!["RO", "access"])]
        );
        assert_eq!(
            keys(&["zunionstore", "d", "2abc", "a", "b"]),
            [
                ("a".into(), vec![]),
                ("b".into(), vec![]),
                ("d".into(), vec![])
            ]
        );
        assert_eq!(
            keys(&["lmove", "k1", "k2", "left", "right"]),
            [
                ("k1".into(), vec!["RW", "access", "delete"]),
                ("k2".into(), vec!["RW", "insert"])
            ]
        );
        let t = table();
        assert!(!t.has_keys(t.id("publish").unwrap()));
        assert!(!t.has_keys(t.id("config|get").unwrap()));
        assert!(t.has_keys(t.id("sort").unwrap()));
        // Without arity checks first (no caller does that), still no key past the arguments.
        for id in 0..t.defs.len() {
            let name = t.defs[id].fullname.split('|').next().unwrap_or_default();
            for n in 1..4 {
                let argv: Vec<&[u8]> = std::iter::once(name.as_bytes())
                    .chain(std::iter::repeat_n(&b"1"[..], n - 1))
                    .collect();
                assert!(t.keys(id, &argv).iter().all(|k| k.pos < n), "{name} {n}");
            }
        }
    }

    /// COMMAND INFO's `movablekeys` as redis-server 7.0.15 shows it (its Tcl unit
    /// introspection-2 names these; on 2026-12-07 the whole table's 25 movable commands and
    /// subcommands equalled redis-server's COMMAND INFO).
    #[test]
    fn movable_keys_as_redis() {
        let t = table();
        for name in [
            "zunionstore",
            "xread",
            "eval",
            "sort",
            "sort_ro",
            "migrate",
            "georadius",
        ] {
            assert!(t.movable_keys(t.id(name).unwrap()), "{name}");
        }
        for name in [
            "set",
            "get",
            "mset",
            "bitfield",
            "lmove",
            "lpop",
            "blpop",
            "ping",
            "memory",
            "memory|usage",
            "rename",
            "georadius_ro",
            "sinterstore",
            "smove",
            "spublish",
        ] {
            assert!(!t.movable_keys(t.id(name).unwrap()), "{name}");
        }
    }

    #[test]
    fn atoi_as_glibc() {
        for (s, v) in [
            ("12", 12),
            ("  -3x", -3),
            ("+7", 7),
            ("x", 0),
            ("", 0),
            ("4294967297", 1),
            ("99999999999999999999", -1),
            ("-99999999999999999999", 0),
        ] {
            assert_eq!(atoi(s.as_bytes()), v, "{s:?}");
        }
    }

    /// Redis's key specs and the keyspace's legacy first/last/step ranges are two independent
    /// tables: for every command the keyspace serves, the exact keys of a call are among the
    /// legacy range's (the range locks them), and equal to it for a command whose keys do not
    /// move with its arguments.
    #[test]
    fn exact_keys_within_legacy_range() {
        let t = table();
        let movable = |id: usize| {
            let d = &t.defs[id];
            d.getkeys.is_some()
                || d.specs.iter().any(|s| {
                    !matches!(
                        (s.bs, s.fk),
                        (BeginSearch::Index(_), FindKeys::Range { limit: 0, .. })
                    )
                })
        };
        for spec in crate::command::CommandTable::new().iter() {
            let a = spec.arity.unsigned_abs() as usize;
            for n in a.max(1)..a.max(1) + 5 {
                if !spec.arity_ok(n) {
                    continue;
                }
                let owned: Vec<String> = (0..n)
                    .map(|i| {
                        if i == 0 {
                            spec.name.to_string()
                        } else {
                            format!("a{i}")
                        }
                    })
                    .collect();
                let argv: Vec<&[u8]> = owned.iter().map(|v| v.as_bytes()).collect();
                let id = t
                    .resolve(&argv)
                    .unwrap_or_else(|| panic!("{} unknown", spec.name));
                let exact: Vec<usize> = t.keys(id, &argv).iter().map(|k| k.pos).collect();
                let legacy: Vec<usize> = spec.key_indices(n).collect();
                assert!(exact.iter().all(|i| legacy.contains(i)), "{owned:?}");
                if !movable(id) && !exact.is_empty() {
                    assert_eq!(exact, legacy, "{owned:?}");
                }
            }
        }
    }
}
