//! ACL users (Redis 7.0.15 `acl.c`): who may run which command on which keys and channels.
//!
//! Problem: `requirepass` alone gives one password and all-or-nothing access; Redis 6+ clients
//! and operators use named users with command, key and channel rules (`ACL SETUSER`, `AUTH user
//! pass`), and expect Redis's exact replies (`-NOPERM ...`, `ACL GETUSER`/`LIST` in its rule
//! syntax, `ACL LOG` entries).
//!
//! ## Model (as Redis)
//! * A [`User`] has flags (on/off, nopass), SHA-256 password hashes and one or more
//!   [`Selector`]s: the root one (rules outside parentheses) and any `(...)` added ones. A
//!   command is allowed when one selector allows the command, every key it names (with the
//!   read/write access of its key spec: `%R~` / `%W~` / `~`) and every channel it publishes to
//!   or subscribes to.
//! * Commands and subcommands are numbered from Redis 7.0.15's command table,
//!   [`forkless_keyspace::keyspec`] (name, arity, flags, ACL categories and key specs, for every
//!   Redis command, served here or not, so category arithmetic and `ACL GETUSER` descriptions
//!   come out as Redis's). A command's keys and the access each needs are that module's
//!   `CmdTable::keys`, Redis's `getKeysFromCommandWithSpecs`, as Redis's ACL check uses it.
//! * The `default` user starts as `on nopass ~* &* +@all`; `requirepass` sets its password
//!   (startup and `CONFIG SET`, as `ACLUpdateDefaultUserPassword`).
//!
//! ## State, callers, lock order
//! Callers: `exec.rs` (the per-command check, AUTH, RESET), `acl_cmd.rs` (the ACL command, the
//! EXEC re-check, the scripts' guard), `lib.rs` (requirepass and aclfile at startup).
//! [`Acl`] lives in the server's shared state: `users` (a `RwLock` over the name → user map)
//! → each user's `rules` (`RwLock`) → `log` (`Mutex`). Locks are taken in that order, each is
//! released before the next command step, none is held across socket I/O or while a shard lock
//! is *taken* (a script's `redis.call` check takes `rules` and `log` while its shards are held:
//! both are leaves, never held when a shard lock is requested). Connections hold an
//! `Arc<UserCell>`: rule changes (`ACL SETUSER`) reach connected clients at once, as Redis
//! edits the user in place; `ACL DELUSER` kills its clients.
//!
//! ## Cost
//! The per-command check is one relaxed atomic load and a branch ([`UserCell::unrestricted`]):
//! a user whose root selector has `allcommands`, `allkeys` and `allchannels` (the default
//! user) never takes a lock. Restricted users pay a read lock, a bitmap test and, for commands
//! with keys, the key-spec walk and a glob match per key and pattern.

use std::collections::{BTreeMap, VecDeque};
use std::time::Instant;

use forkless_sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use forkless_sync::{Arc, Mutex, RwLock};

pub(crate) use forkless_keyspace::keyspec::table;
pub use forkless_keyspace::keyspec::CATEGORIES;

/// The ACL permissions a key needs (`%R~` / `%W~`): Redis's `CMD_KEY_ACCESS` needs read,
/// `INSERT` / `DELETE` / `UPDATE` write ([`forkless_keyspace::keyspec::KeyRef`]).
const PERM_READ: u8 = 1;
const PERM_WRITE: u8 = 2;
const PERM_ALL: u8 = PERM_READ | PERM_WRITE;

/// Entries this close in time (ms) with the same reason, context, object and user are merged.
const LOG_GROUPING_MS: u128 = 60_000;

/// The channels a command publishes to or subscribes to: (argument index, is a pattern).
fn channels(name: &str, argc: usize) -> Vec<(usize, bool)> {
    match name {
        "publish" | "spublish" => vec![(1, false)],
        "subscribe" | "ssubscribe" => (1..argc).map(|i| (i, false)).collect(),
        "psubscribe" => (1..argc).map(|i| (i, true)).collect(),
        _ => Vec::new(),
    }
}

/// One selector: allowed commands, key patterns and channel patterns.
#[derive(Clone, Debug)]
pub struct Selector {
    allcommands: bool,
    allkeys: bool,
    allchannels: bool,
    /// Command bits by id.
    bits: Vec<u64>,
    /// Set by `+@all`, cleared by `-@all`: the rules start from `+@all` when described.
    future: bool,
    /// Allowed first arguments of otherwise denied commands (`+select|0`).
    firstargs: BTreeMap<usize, Vec<String>>,
    patterns: Vec<(Vec<u8>, u8)>,
    channels: Vec<Vec<u8>>,
}

/// Why a rule was refused (Redis's errno values in `ACLSetUser`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RuleError {
    Unknown,
    Syntax,
    KeysAfterAll,
    ChannelsAfterAll,
    NoSuchPass,
    BadHash,
    SubFirstArg,
}

impl RuleError {
    fn text(self) -> &'static str {
        match self {
            RuleError::Unknown => "Unknown command or category name in ACL",
            RuleError::Syntax => "Syntax error",
            RuleError::KeysAfterAll => "Adding a pattern after the * pattern (or the 'allkeys' flag) is not valid and does not have any effect. Try 'resetkeys' to start with an empty list of patterns",
            RuleError::ChannelsAfterAll => "Adding a pattern after the * pattern (or the 'allchannels' flag) is not valid and does not have any effect. Try 'resetchannels' to start with an empty list of channels",
            RuleError::NoSuchPass => "The password you are trying to remove from the user does not exist",
            RuleError::BadHash => "The password hash must be exactly 64 characters and contain only lowercase hexadecimal characters",
            RuleError::SubFirstArg => "Allowing first-arg of a subcommand is not supported",
        }
    }
}

fn has_spaces(s: &[u8]) -> bool {
    s.iter().any(|&c| c.is_ascii_whitespace() || c == 0)
}

impl Selector {
    fn new(allchannels: bool) -> Selector {
        Selector {
            allcommands: false,
            allkeys: false,
            allchannels,
            bits: vec![0; table().defs.len() / 64 + 1],
            future: false,
            firstargs: BTreeMap::new(),
            patterns: Vec::new(),
            channels: Vec::new(),
        }
    }

    fn bit(&self, id: usize) -> bool {
        self.bits[id / 64] & (1 << (id % 64)) != 0
    }

    fn set_bit(&mut self, id: usize, on: bool) {
        if on {
            self.bits[id / 64] |= 1 << (id % 64);
        } else {
            self.bits[id / 64] &= !(1 << (id % 64));
            self.allcommands = false;
        }
    }

    /// `ACLChangeSelectorPerm`: a command and all its subcommands.
    fn change(&mut self, id: usize, on: bool) {
        self.set_bit(id, on);
        self.firstargs.remove(&id);
        for &s in &table().defs[id].subs {
            self.set_bit(s, on);
        }
    }

    fn change_category(&mut self, cat: usize, on: bool) {
        let t = table();
        for id in 0..t.defs.len() {
            if t.defs[id].cats & (1 << cat) != 0 {
                self.change(id, on);
            }
        }
    }

    fn all(&mut self, on: bool) {
        for w in &mut self.bits {
            *w = if on { u64::MAX } else { 0 };
        }
        self.allcommands = on;
        self.future = on;
        self.firstargs.clear();
    }

    /// `ACLSetSelector`.
    fn apply(&mut self, op: &[u8]) -> Result<(), RuleError> {
        let lower = String::from_utf8_lossy(op).to_ascii_lowercase();
        match lower.as_str() {
            "allkeys" | "~*" => {
                self.allkeys = true;
                self.patterns.clear();
                return Ok(());
            }
            "resetkeys" => {
                self.allkeys = false;
                self.patterns.clear();
                return Ok(());
            }
            "allchannels" | "&*" => {
                self.allchannels = true;
                self.channels.clear();
                return Ok(());
            }
            "resetchannels" => {
                self.allchannels = false;
                self.channels.clear();
                return Ok(());
            }
            "allcommands" | "+@all" => {
                self.all(true);
                return Ok(());
            }
            "nocommands" | "-@all" => {
                self.all(false);
                return Ok(());
            }
            _ => {}
        }
        let t = table();
        match op.first() {
            Some(b'~') | Some(b'%') => {
                if self.allkeys {
                    return Err(RuleError::KeysAfterAll);
                }
                let mut perm = 0;
                let mut off = 1;
                if op[0] == b'%' {
                    loop {
                        match op.get(off).map(u8::to_ascii_uppercase) {
                            Some(b'R') if perm & PERM_READ == 0 => perm |= PERM_READ,
                            Some(b'W') if perm & PERM_WRITE == 0 => perm |= PERM_WRITE,
                            Some(b'~') => {
                                off += 1;
                                break;
                            }
                            None => break,
                            _ => return Err(RuleError::Syntax),
                        }
                        off += 1;
                    }
                } else {
                    perm = PERM_ALL;
                }
                let pat = &op[off.min(op.len())..];
                if has_spaces(pat) {
                    return Err(RuleError::Syntax);
                }
                match self.patterns.iter_mut().find(|(p, _)| p == pat) {
                    Some((_, f)) => *f |= perm,
                    None => self.patterns.push((pat.to_vec(), perm)),
                }
                self.allkeys = false;
            }
            Some(b'&') => {
                if self.allchannels {
                    return Err(RuleError::ChannelsAfterAll);
                }
                let pat = &op[1..];
                if has_spaces(pat) {
                    return Err(RuleError::Syntax);
                }
                if !self.channels.iter().any(|p| p == pat) {
                    self.channels.push(pat.to_vec());
                }
                self.allchannels = false;
            }
            Some(b'+') if op.get(1) != Some(&b'@') => {
                let rest = &lower[1..];
                match rest.rsplit_once('|') {
                    None => {
                        let id = t.id(rest).ok_or(RuleError::Unknown)?;
                        self.change(id, true);
                    }
                    Some((cmd, sub)) => {
                        let id = t.id(cmd).ok_or(RuleError::Unknown)?;
                        if t.defs[id].parent.is_some() {
                            return Err(RuleError::SubFirstArg);
                        }
                        if sub.is_empty() {
                            return Err(RuleError::Syntax);
                        }
                        if !t.defs[id].subs.is_empty() {
                            let sid = t.id(rest).ok_or(RuleError::Unknown)?;
                            self.change(sid, true);
                        } else {
                            let list = self.firstargs.entry(id).or_default();
                            if !list.iter().any(|s| s.eq_ignore_ascii_case(sub)) {
                                list.push(sub.to_string());
                            }
                        }
                    }
                }
            }
            Some(b'-') if op.get(1) != Some(&b'@') => {
                let id = t.id(&lower[1..]).ok_or(RuleError::Unknown)?;
                self.change(id, false);
            }
            Some(b'+') | Some(b'-') => {
                let cat = CATEGORIES
                    .iter()
                    .position(|c| *c == &lower[2..])
                    .ok_or(RuleError::Unknown)?;
                self.change_category(cat, op[0] == b'+');
            }
            _ => return Err(RuleError::Syntax),
        }
        Ok(())
    }

    /// `ACLSelectorCheckCmd`: Ok, or the reason and the argument index.
    fn check(&self, id: usize, argv: &[&[u8]]) -> Result<(), (Denied, usize)> {
        let t = table();
        let def = &t.defs[id];
        if !self.allcommands && !def.no_auth && !self.bit(id) {
            let idx = if def.parent.is_some() { 2 } else { 1 };
            let ok = argv.len() >= 2
                && self.firstargs.get(&id).is_some_and(|l| {
                    argv.get(idx)
                        .is_some_and(|a| l.iter().any(|s| s.as_bytes().eq_ignore_ascii_case(a)))
                });
            if !ok {
                return Err((Denied::Command, 0));
            }
        }
        if !self.allkeys && t.has_keys(id) {
            for k in t.keys(id, argv) {
                let perm =
                    if k.reads() { PERM_READ } else { 0 } | if k.writes() { PERM_WRITE } else { 0 };
                if !self.key_ok(argv[k.pos], perm) {
                    return Err((Denied::Key, k.pos));
                }
            }
        }
        if !self.allchannels {
            let base = def.fullname;
            for (i, pattern) in channels(base, argv.len()) {
                if !self.channel_ok(argv[i], pattern) {
                    return Err((Denied::Channel, i));
                }
            }
        }
        Ok(())
    }

    fn key_ok(&self, key: &[u8], perm: u8) -> bool {
        self.allkeys
            || self
                .patterns
                .iter()
                .any(|(p, f)| f & perm == perm && forkless_keyspace::glob::matches(p, key, false))
    }

    fn channel_ok(&self, ch: &[u8], pattern: bool) -> bool {
        self.allchannels
            || self.channels.iter().any(|p| {
                if pattern {
                    p == ch
                } else {
                    forkless_keyspace::glob::matches(p, ch, false)
                }
            })
    }

    fn count_category(&self, cat: usize) -> (usize, usize) {
        let (mut on, mut off) = (0, 0);
        for (id, d) in table().defs.iter().enumerate() {
            if d.cats & (1 << cat) != 0 {
                if self.bit(id) {
                    on += 1;
                } else {
                    off += 1;
                }
            }
        }
        (on, off)
    }

    /// `ACLDescribeSelectorCommandRules`: the shortest category-first rule string Redis
    /// prints (the single-command tail in table order; Redis's follows its hash table's).
    fn describe_commands(&self) -> String {
        let mut rules = String::new();
        let additive = !self.future;
        let mut fake = Selector::new(false);
        if additive {
            rules.push_str("-@all ");
            fake.all(false);
        } else {
            rules.push_str("+@all ");
            fake.all(true);
        }
        let mut temp = self.clone();
        let mut applied = [false; 21];
        loop {
            let mut best = None;
            let (mut mindiff, mut maxsame) = (usize::MAX, 0);
            for (j, done) in applied.iter().enumerate() {
                if *done {
                    continue;
                }
                let (on, off) = temp.count_category(j);
                let (diff, same) = if additive { (off, on) } else { (on, off) };
                if same > diff && (diff < mindiff || (diff == mindiff && same > maxsame)) {
                    best = Some(j);
                    mindiff = diff;
                    maxsame = same;
                }
            }
            let Some(b) = best else { break };
            fake.change_category(b, additive);
            temp.change_category(b, !additive);
            rules.push_str(if additive { "+@" } else { "-@" });
            rules.push_str(CATEGORIES[b]);
            rules.push(' ');
            applied[b] = true;
        }
        let t = table();
        for (id, d) in t.defs.iter().enumerate() {
            let user = self.bit(id);
            if user != fake.bit(id) {
                rules.push(if user { '+' } else { '-' });
                rules.push_str(d.fullname);
                rules.push(' ');
                fake.change(id, user);
            }
            if !user {
                if let Some(list) = self.firstargs.get(&id) {
                    for s in list {
                        rules.push('+');
                        rules.push_str(d.fullname);
                        rules.push('|');
                        rules.push_str(s);
                        rules.push(' ');
                    }
                }
            }
        }
        rules.pop();
        rules
    }

    fn describe_keys(&self, sep: &str) -> String {
        if self.allkeys {
            return "~*".into();
        }
        self.patterns
            .iter()
            .map(|(p, f)| {
                let pre = match *f {
                    PERM_READ => "%R~",
                    PERM_WRITE => "%W~",
                    _ => "~",
                };
                format!("{pre}{}", String::from_utf8_lossy(p))
            })
            .collect::<Vec<_>>()
            .join(sep)
    }

    fn describe_channels(&self) -> String {
        if self.allchannels {
            return "&*".into();
        }
        self.channels
            .iter()
            .map(|p| format!("&{}", String::from_utf8_lossy(p)))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// `ACLDescribeSelector`: keys, channels, commands.
    fn describe(&self) -> String {
        let mut s = String::new();
        if self.allkeys {
            s.push_str("~* ");
        } else {
            for k in self.describe_keys(" ").split(' ').filter(|k| !k.is_empty()) {
                s.push_str(k);
                s.push(' ');
            }
        }
        if self.allchannels {
            s.push_str("&* ");
        } else {
            s.push_str("resetchannels ");
            for p in &self.channels {
                s.push('&');
                s.push_str(&String::from_utf8_lossy(p));
                s.push(' ');
            }
        }
        s.push_str(&self.describe_commands());
        s
    }
}

/// Why a command was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Denied {
    /// The command (`ACL_DENIED_CMD`).
    Command,
    /// A key (`ACL_DENIED_KEY`).
    Key,
    /// Authentication failed (`ACL_DENIED_AUTH`).
    Auth,
    /// A channel (`ACL_DENIED_CHANNEL`).
    Channel,
}

impl Denied {
    fn reason(self) -> &'static str {
        match self {
            Denied::Command => "command",
            Denied::Key => "key",
            Denied::Channel => "channel",
            Denied::Auth => "auth",
        }
    }

    /// Redis's `getAclErrorMessage` (the text after "The user executing the script ").
    pub fn script_text(self) -> &'static str {
        match self {
            Denied::Command => "can't run this command or subcommand",
            Denied::Key => {
                "can't access at least one of the keys mentioned in the command arguments"
            }
            Denied::Channel => "can't publish to the channel mentioned in the command",
            Denied::Auth => "lacking the permissions for the command",
        }
    }
}

/// A user's rules.
#[derive(Clone, Debug)]
pub struct User {
    enabled: bool,
    nopass: bool,
    /// `sanitize-payload` / `skip-sanitize-payload` (None: neither given).
    sanitize: Option<bool>,
    /// SHA-256 of each password, lowercase hex.
    passwords: Vec<String>,
    /// The root selector first.
    selectors: Vec<Selector>,
}

impl User {
    fn new(allchannels: bool) -> User {
        User {
            enabled: false,
            nopass: false,
            sanitize: None,
            passwords: Vec::new(),
            selectors: vec![Selector::new(allchannels)],
        }
    }

    /// `ACLSetUser`.
    fn apply(&mut self, op: &[u8], pubsub_default_all: bool) -> Result<(), RuleError> {
        if op.is_empty() {
            return Ok(());
        }
        let lower = String::from_utf8_lossy(op).to_ascii_lowercase();
        match lower.as_str() {
            "on" => self.enabled = true,
            "off" => self.enabled = false,
            "skip-sanitize-payload" => self.sanitize = Some(false),
            "sanitize-payload" => self.sanitize = Some(true),
            "nopass" => {
                self.nopass = true;
                self.passwords.clear();
            }
            "resetpass" => {
                self.nopass = false;
                self.passwords.clear();
            }
            "clearselectors" => self.selectors.truncate(1),
            "reset" => {
                self.nopass = false;
                self.passwords.clear();
                let root = &mut self.selectors[0];
                root.apply(b"resetkeys")?;
                root.apply(b"resetchannels")?;
                if pubsub_default_all {
                    root.apply(b"allchannels")?;
                }
                self.enabled = false;
                self.sanitize = Some(true);
                self.selectors.truncate(1);
                self.selectors[0].apply(b"-@all")?;
            }
            _ => match op[0] {
                b'>' | b'#' => {
                    let h = if op[0] == b'>' {
                        sha256_hex(&op[1..])
                    } else {
                        check_hash(&op[1..])?
                    };
                    if !self.passwords.contains(&h) {
                        self.passwords.push(h);
                    }
                    self.nopass = false;
                }
                b'<' | b'!' => {
                    let h = if op[0] == b'<' {
                        sha256_hex(&op[1..])
                    } else {
                        check_hash(&op[1..])?
                    };
                    let Some(i) = self.passwords.iter().position(|p| *p == h) else {
                        return Err(RuleError::NoSuchPass);
                    };
                    self.passwords.remove(i);
                }
                b'(' if op.last() == Some(&b')') => {
                    let mut s = Selector::new(pubsub_default_all);
                    let inner = String::from_utf8_lossy(&op[1..op.len() - 1]).into_owned();
                    for part in inner.split_ascii_whitespace() {
                        s.apply(part.as_bytes())?;
                    }
                    self.selectors.push(s);
                }
                _ => self.selectors[0].apply(op)?,
            },
        }
        Ok(())
    }

    fn unrestricted(&self) -> bool {
        let r = &self.selectors[0];
        r.allcommands && r.allkeys && r.allchannels
    }

    /// `ACLCheckAllUserCommandPerm`: the error of the selector that got furthest.
    pub(crate) fn check(&self, id: usize, argv: &[&[u8]]) -> Result<(), (Denied, usize)> {
        let mut worst = (Denied::Command, 0);
        for s in &self.selectors {
            match s.check(id, argv) {
                Ok(()) => return Ok(()),
                Err((d, i)) => {
                    if rank(d) > rank(worst.0) || (d == worst.0 && i > worst.1) {
                        worst = (d, i);
                    }
                }
            }
        }
        Err(worst)
    }

    fn flags(&self) -> Vec<&'static str> {
        let mut f = vec![if self.enabled { "on" } else { "off" }];
        if self.nopass {
            f.push("nopass");
        }
        match self.sanitize {
            Some(false) => f.push("skip-sanitize-payload"),
            Some(true) => f.push("sanitize-payload"),
            None => {}
        }
        f
    }

    /// `ACLDescribeUser`: the rules as `ACL LIST` prints them.
    fn describe(&self) -> String {
        let mut s = String::new();
        for f in self.flags() {
            s.push_str(f);
            s.push(' ');
        }
        for p in &self.passwords {
            s.push('#');
            s.push_str(p);
            s.push(' ');
        }
        for (i, sel) in self.selectors.iter().enumerate() {
            if i == 0 {
                s.push_str(&sel.describe());
            } else {
                s.push_str(&format!(" ({})", sel.describe()));
            }
        }
        s
    }
}

/// The new channel patterns when `new` may not allow every channel `old` allowed (not a
/// superset), `None` when nothing was revoked (`ACLKillPubsubClientsIfNeeded`'s shortcuts).
fn channels_revoked(old: &User, new: &User) -> Option<Vec<Vec<u8>>> {
    if new.selectors.iter().any(|s| s.allchannels) {
        return None;
    }
    let upcoming: Vec<Vec<u8>> = new
        .selectors
        .iter()
        .flat_map(|s| s.channels.iter().cloned())
        .collect();
    let kept = old
        .selectors
        .iter()
        .all(|s| !s.allchannels && s.channels.iter().all(|c| upcoming.contains(c)));
    (!kept).then_some(upcoming)
}

/// A subscription still allowed by `patterns` (a pattern subscription only literally).
pub(crate) fn subscription_allowed(patterns: &[Vec<u8>], ch: &[u8], pattern: bool) -> bool {
    patterns.iter().any(|p| {
        if pattern {
            p == ch
        } else {
            forkless_keyspace::glob::matches(p, ch, false)
        }
    })
}

/// Redis's ACL_DENIED_* values order: CMD 1, KEY 2, AUTH 3, CHANNEL 4.
fn rank(d: Denied) -> u8 {
    match d {
        Denied::Command => 1,
        Denied::Key => 2,
        Denied::Auth => 3,
        Denied::Channel => 4,
    }
}

fn check_hash(h: &[u8]) -> Result<String, RuleError> {
    if h.len() != 64 || !h.iter().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(RuleError::BadHash);
    }
    Ok(String::from_utf8_lossy(h).into_owned())
}

/// A user as connections hold it: rule edits are seen by every connection at once.
#[derive(Debug)]
pub struct UserCell {
    /// The user name.
    pub name: String,
    /// True while the root selector allows everything: the check is skipped.
    unrestricted: AtomicBool,
    pub(crate) rules: RwLock<User>,
}

impl UserCell {
    fn new(name: &str, u: User) -> Arc<UserCell> {
        Arc::new(UserCell {
            name: name.to_string(),
            unrestricted: AtomicBool::new(u.unrestricted()),
            rules: RwLock::new(u),
        })
    }

    /// True when the user may run anything (the hot path's one branch).
    #[inline]
    pub fn unrestricted(&self) -> bool {
        self.unrestricted.load(Ordering::Relaxed)
    }

    fn set(&self, u: User) {
        self.unrestricted.store(u.unrestricted(), Ordering::Relaxed);
        *self.rules.write() = u;
    }
}

/// An `ACL LOG` entry.
#[derive(Debug)]
struct LogEntry {
    count: u64,
    reason: Denied,
    context: &'static str,
    object: Vec<u8>,
    username: String,
    at: Instant,
    client_info: String,
}

/// Where a denied command came from (the entry's `context`).
#[derive(Clone, Copy, Debug)]
pub enum Context {
    /// A client's command.
    Toplevel,
    /// Queued in MULTI.
    Multi,
    /// `redis.call` from a script.
    Lua,
}

impl Context {
    fn name(self) -> &'static str {
        match self {
            Context::Toplevel => "toplevel",
            Context::Multi => "multi",
            Context::Lua => "lua",
        }
    }
}

/// A refused command: what to log and reply.
#[derive(Debug)]
pub struct Refusal {
    /// The reason.
    pub denied: Denied,
    /// The offending argument (key or channel) or 0.
    pub arg: usize,
    /// The command's full name (`config|get`).
    pub fullname: &'static str,
}

impl Refusal {
    /// The `-NOPERM` error of Redis's `processCommand`.
    pub fn error(&self) -> String {
        match self.denied {
            Denied::Command => format!(
                "NOPERM this user has no permissions to run the '{}' command",
                self.fullname
            ),
            Denied::Key => {
                "NOPERM this user has no permissions to access one of the keys used as arguments"
                    .into()
            }
            Denied::Channel => "NOPERM this user has no permissions to access one of the channels used as arguments".into(),
            Denied::Auth => "no permission".into(),
        }
    }
}

/// The server's users and ACL log (see the module docs).
#[derive(Debug)]
pub struct Acl {
    users: RwLock<BTreeMap<String, Arc<UserCell>>>,
    default: Arc<UserCell>,
    /// The default user needs no password (nopass and on): connections start authenticated.
    default_open: AtomicBool,
    log: Mutex<VecDeque<LogEntry>>,
    /// `acl-pubsub-default allchannels`.
    pubsub_default_all: AtomicBool,
    /// `acllog-max-len`.
    log_max_len: AtomicUsize,
}

impl Default for Acl {
    fn default() -> Self {
        Acl::new()
    }
}

impl Acl {
    /// The default user alone, `on nopass ~* &* +@all`.
    pub fn new() -> Acl {
        let mut u = User::new(false);
        for op in ["+@all", "~*", "&*", "on", "nopass"] {
            let _ = u.apply(op.as_bytes(), false);
        }
        let default = UserCell::new("default", u);
        let mut users = BTreeMap::new();
        users.insert("default".to_string(), default.clone());
        Acl {
            users: RwLock::new(users),
            default,
            default_open: AtomicBool::new(true),
            log: Mutex::new(VecDeque::new()),
            pubsub_default_all: AtomicBool::new(false),
            log_max_len: AtomicUsize::new(128),
        }
    }

    /// The default user.
    pub fn default_user(&self) -> Arc<UserCell> {
        self.default.clone()
    }

    /// True when a new connection must AUTH before running commands.
    pub fn auth_required(&self) -> bool {
        !self.default_open.load(Ordering::Relaxed)
    }

    fn refresh_default(&self) {
        let u = self.default.rules.read();
        self.default_open
            .store(u.nopass && u.enabled, Ordering::Relaxed);
    }

    /// `requirepass` changed: `ACLUpdateDefaultUserPassword`.
    pub fn set_default_password(&self, pass: &str) {
        let mut u = self.default.rules.read().clone();
        let _ = u.apply(b"resetpass", false);
        if pass.is_empty() {
            let _ = u.apply(b"nopass", false);
        } else {
            let _ = u.apply(format!(">{pass}").as_bytes(), false);
        }
        self.default.set(u);
        self.refresh_default();
    }

    /// `acllog-max-len` (the log is trimmed at the next entry, as Redis).
    pub fn set_log_max_len(&self, n: usize) {
        self.log_max_len.store(n, Ordering::Relaxed);
    }

    /// `acl-pubsub-default`.
    pub fn set_pubsub_default(&self, allchannels: bool) {
        self.pubsub_default_all
            .store(allchannels, Ordering::Relaxed);
    }

    /// A user by name.
    pub fn user(&self, name: &[u8]) -> Option<Arc<UserCell>> {
        let name = std::str::from_utf8(name).ok()?;
        self.users.read().get(name).cloned()
    }

    /// `ACLCheckUserCredentials`: the user when `pass` opens it.
    pub fn authenticate(&self, name: &[u8], pass: &[u8]) -> Option<Arc<UserCell>> {
        let cell = self.user(name)?;
        let ok = {
            let u = cell.rules.read();
            u.enabled
                && (u.nopass || {
                    let h = sha256_hex(pass);
                    u.passwords
                        .iter()
                        .any(|p| ct_eq(p.as_bytes(), h.as_bytes()))
                })
        };
        ok.then_some(cell)
    }

    /// True when the default user has `nopass`.
    pub fn default_nopass(&self) -> bool {
        self.default.rules.read().nopass
    }

    /// Check `argv` against `user`'s rules (callers skip this for an unrestricted user).
    pub fn check(&self, user: &UserCell, argv: &[&[u8]]) -> Result<(), Refusal> {
        let t = table();
        let Some(id) = t.resolve(argv) else {
            return Ok(());
        };
        let u = user.rules.read();
        u.check(id, argv).map_err(|(denied, arg)| Refusal {
            denied,
            arg,
            fullname: t.defs[id].fullname,
        })
    }

    /// True when `argv[0]` names a command Redis knows.
    pub fn known(&self, argv: &[&[u8]]) -> bool {
        table().resolve(argv).is_some()
    }

    /// Add an entry to the ACL log (`addACLLogEntry`).
    pub fn log(
        &self,
        denied: Denied,
        context: Context,
        object: &[u8],
        username: &str,
        client_info: String,
    ) {
        let now = Instant::now();
        let mut log = self.log.lock();
        let ctx = context.name();
        let pos = log.iter().take(10).position(|e| {
            e.reason == denied
                && e.context == ctx
                && now.duration_since(e.at).as_millis() <= LOG_GROUPING_MS
                && e.object == object
                && e.username == username
        });
        if let Some(p) = pos {
            if let Some(mut e) = log.remove(p) {
                e.count += 1;
                e.at = now;
                e.client_info = client_info;
                log.push_front(e);
            }
            return;
        }
        log.push_front(LogEntry {
            count: 1,
            reason: denied,
            context: ctx,
            object: object.to_vec(),
            username: username.to_string(),
            at: now,
            client_info,
        });
        log.truncate(self.log_max_len.load(Ordering::Relaxed));
    }

    /// Every user name, sorted.
    pub fn names(&self) -> Vec<String> {
        self.users.read().keys().cloned().collect()
    }

    /// `ACL SETUSER name rules...`: all or nothing (`ACLStringSetUser`). `Ok(Some(patterns))`
    /// when an existing user lost channel permissions: its subscribers must be checked against
    /// the new channel patterns (`ACLKillPubsubClientsIfNeeded`).
    pub fn setuser(&self, name: &[u8], rules: &[Vec<u8>]) -> Result<Option<Vec<Vec<u8>>>, String> {
        if has_spaces(name) {
            return Err("ERR Usernames can't contain spaces or null characters".into());
        }
        let name = String::from_utf8_lossy(name).into_owned();
        // Merge `(a b c)` split over arguments (ACLMergeSelectorArguments).
        let mut merged: Vec<Vec<u8>> = Vec::new();
        let mut open: Option<(usize, Vec<u8>)> = None;
        for (j, op) in rules.iter().enumerate() {
            if let Some((_, sel)) = &mut open {
                sel.push(b' ');
                sel.extend_from_slice(op);
                if op.last() == Some(&b')') {
                    merged.push(std::mem::take(sel));
                    open = None;
                }
                continue;
            }
            if op.first() == Some(&b'(') && op.last() != Some(&b')') {
                open = Some((j, op.clone()));
                continue;
            }
            merged.push(op.clone());
        }
        if let Some((j, _)) = open {
            return Err(format!(
                "ERR Unmatched parenthesis in acl selector starting at '{}'.",
                String::from_utf8_lossy(&rules[j])
            ));
        }
        let all = self.pubsub_default_all.load(Ordering::Relaxed);
        let mut users = self.users.write();
        let existing = users.get(&name).cloned();
        let mut u = match &existing {
            Some(c) => c.rules.read().clone(),
            None => User::new(all),
        };
        for op in &merged {
            if let Err(e) = u.apply(op, all) {
                return Err(format!(
                    "ERR Error in ACL SETUSER modifier '{}': {}",
                    String::from_utf8_lossy(op),
                    e.text()
                ));
            }
        }
        let mut revoked = None;
        match existing {
            Some(c) => {
                revoked = channels_revoked(&c.rules.read(), &u);
                c.set(u);
            }
            None => {
                users.insert(name.clone(), UserCell::new(&name, u));
            }
        }
        drop(users);
        if name == "default" {
            self.refresh_default();
        }
        Ok(revoked)
    }

    /// `ACL DELUSER`: the removed users (the caller kills their clients).
    pub fn deluser(&self, names: &[Vec<u8>]) -> Result<Vec<Arc<UserCell>>, String> {
        if names.iter().any(|n| n == b"default") {
            return Err("ERR The 'default' user cannot be removed".into());
        }
        let mut users = self.users.write();
        Ok(names
            .iter()
            .filter_map(|n| users.remove(&*String::from_utf8_lossy(n)))
            .collect())
    }

    /// `ACL GETUSER`: flags, passwords, then the root selector's fields and the others.
    pub fn getuser(&self, name: &[u8]) -> Option<GetUser> {
        let cell = self.user(name)?;
        let u = cell.rules.read();
        let sel = |s: &Selector| {
            vec![
                ("commands", s.describe_commands()),
                ("keys", s.describe_keys(" ")),
                ("channels", s.describe_channels()),
            ]
        };
        Some(GetUser {
            flags: u.flags(),
            passwords: u.passwords.clone(),
            root: sel(&u.selectors[0]),
            selectors: u.selectors[1..].iter().map(sel).collect(),
        })
    }

    /// `ACL LIST` lines.
    pub fn list(&self) -> Vec<String> {
        self.users
            .read()
            .iter()
            .map(|(n, c)| format!("user {n} {}", c.rules.read().describe()))
            .collect()
    }

    /// `ACL LOG [count]`: the newest `count` entries as (field, value) lists.
    pub fn log_entries(&self, count: usize) -> Vec<LogView> {
        let now = Instant::now();
        self.log
            .lock()
            .iter()
            .take(count)
            .map(|e| LogView {
                count: e.count,
                reason: e.reason.reason(),
                context: e.context,
                object: e.object.clone(),
                username: e.username.clone(),
                age_seconds: now.duration_since(e.at).as_millis() as f64 / 1000.0,
                client_info: e.client_info.clone(),
            })
            .collect()
    }

    /// `ACL LOG RESET`.
    pub fn log_reset(&self) {
        self.log.lock().clear();
    }
}

impl Acl {
    /// `ACL LOAD` / the `aclfile` at startup (`ACLLoadFromFile`): every line `user <name>
    /// rules...`, all or nothing. On success the users are replaced (the default user's cell
    /// is kept, so its connections stay) and the replaced users are returned: the caller
    /// kills their clients, as Redis frees them.
    /// `name` is the file as configured (Redis's messages name it so).
    pub fn load_file(
        &self,
        path: &std::path::Path,
        name: &str,
    ) -> Result<Vec<Arc<UserCell>>, String> {
        let fname = name;
        let text = std::fs::read(path)
            .map_err(|e| format!("Error loading ACLs, opening file '{fname}': {e}"))?;
        let text = String::from_utf8_lossy(&text);
        let all = self.pubsub_default_all.load(Ordering::Relaxed);
        let mut errors = String::new();
        let mut new: BTreeMap<String, User> = BTreeMap::new();
        for (i, line) in text.split('\n').enumerate() {
            let n = i + 1;
            let line = line.trim_matches([' ', '\t', '\r', '\n']);
            if line.is_empty() {
                continue;
            }
            let argv: Vec<&str> = line.split(' ').collect();
            if argv[0] != "user" || argv.len() < 2 {
                errors.push_str(&format!(
                    "{fname}:{n} should start with user keyword followed by the username. "
                ));
                continue;
            }
            let name = argv[1];
            if new.contains_key(name) {
                errors.push_str(&format!(
                    "WARNING: Duplicate user '{name}' found on line {n}. "
                ));
                continue;
            }
            let mut u = User::new(all);
            let mut syntax = false;
            for op in merge_selectors(&argv[2..]) {
                let op = op.trim_matches(['\t', '\r', '\n']);
                if let Err(e) = u.apply(op.as_bytes(), all) {
                    if e == RuleError::Unknown {
                        errors.push_str(&format!(
                            "{fname}:{n}: Error in applying operation '{op}': {}. ",
                            e.text()
                        ));
                    } else if !syntax {
                        errors.push_str(&format!("{fname}:{n}: {}. ", e.text()));
                        syntax = true;
                    }
                }
            }
            new.insert(name.to_string(), u);
        }
        if !errors.is_empty() {
            errors.push_str(
                "WARNING: ACL errors detected, no change to the previously active ACL rules was performed",
            );
            return Err(errors);
        }
        let default = new.remove("default").unwrap_or_else(|| {
            let mut u = User::new(false);
            for op in ["+@all", "~*", "&*", "on", "nopass"] {
                let _ = u.apply(op.as_bytes(), false);
            }
            u
        });
        self.default.set(default);
        let mut map: BTreeMap<String, Arc<UserCell>> = new
            .into_iter()
            .map(|(n, u)| (n.clone(), UserCell::new(&n, u)))
            .collect();
        map.insert("default".into(), self.default.clone());
        let old = std::mem::replace(&mut *self.users.write(), map);
        self.refresh_default();
        Ok(old
            .into_iter()
            .filter(|(n, _)| n != "default")
            .map(|(_, c)| c)
            .collect())
    }

    /// `ACL SAVE`: the `ACL LIST` lines, written durably (temp file, fsync, rename, fsync of
    /// the directory).
    pub fn save_file(&self, path: &std::path::Path) -> std::io::Result<()> {
        use std::io::Write;
        let mut text = String::new();
        for l in self.list() {
            text.push_str(&l);
            text.push('\n');
        }
        let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
        let r = (|| {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(text.as_bytes())?;
            f.sync_all()?;
            std::fs::rename(&tmp, path)?;
            let dir = path
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(std::path::Path::new("."));
            std::fs::File::open(dir)?.sync_all()
        })();
        if r.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        r
    }
}

/// `(a b c)` selectors split over several words joined back (`ACLMergeSelectorArguments`).
fn merge_selectors<'a>(args: &[&'a str]) -> Vec<std::borrow::Cow<'a, str>> {
    let mut out = Vec::new();
    let mut open: Option<String> = None;
    for a in args {
        if let Some(s) = &mut open {
            s.push(' ');
            s.push_str(a);
            if a.ends_with(')') {
                out.push(std::borrow::Cow::Owned(std::mem::take(s)));
                open = None;
            }
            continue;
        }
        if a.starts_with('(') && !a.ends_with(')') {
            open = Some(a.to_string());
            continue;
        }
        out.push(std::borrow::Cow::Borrowed(*a));
    }
    if let Some(s) = open {
        out.push(std::borrow::Cow::Owned(s));
    }
    out
}

/// The `aclfile` path (relative to `dir`), if one is configured.
pub fn file_path(c: &forkless::Config) -> Option<std::path::PathBuf> {
    let f = c.str("aclfile");
    if f.is_empty() {
        return None;
    }
    let p = std::path::Path::new(f);
    Some(if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::path::Path::new(c.str("dir")).join(p)
    })
}

/// `ACL GETUSER`'s reply, as data.
#[derive(Debug)]
pub struct GetUser {
    /// Flags (on/off, nopass, ...).
    pub flags: Vec<&'static str>,
    /// Password hashes.
    pub passwords: Vec<String>,
    /// commands, keys, channels of the root selector.
    pub root: Vec<(&'static str, String)>,
    /// The same of each added selector.
    pub selectors: Vec<Vec<(&'static str, String)>>,
}

/// One `ACL LOG` entry, as data.
#[derive(Debug)]
pub struct LogView {
    /// Events merged into the entry.
    pub count: u64,
    /// command, key, channel, auth.
    pub reason: &'static str,
    /// toplevel, multi, lua.
    pub context: &'static str,
    /// The command, key or channel.
    pub object: Vec<u8>,
    /// The user.
    pub username: String,
    /// Since the last event.
    pub age_seconds: f64,
    /// CLIENT INFO of the client.
    pub client_info: String,
}

/// `ACL CAT category`: the commands of a category, `None` when it does not exist.
pub fn category_commands(cat: &[u8]) -> Option<Vec<&'static str>> {
    let c = String::from_utf8_lossy(cat).to_ascii_lowercase();
    let i = CATEGORIES.iter().position(|x| *x == c)?;
    Some(
        table()
            .defs
            .iter()
            .filter(|d| d.cats & (1 << i) != 0)
            .map(|d| d.fullname)
            .collect(),
    )
}

/// The categories of a command (`@read`...), for COMMAND INFO.
pub fn command_categories(fullname: &str) -> Vec<String> {
    let Some(id) = table().id(fullname) else {
        return Vec::new();
    };
    let cats = table().defs[id].cats;
    CATEGORIES
        .iter()
        .enumerate()
        .filter(|(i, _)| cats & (1 << i) != 0)
        .map(|(_, c)| format!("@{c}"))
        .collect()
}

fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |d, (x, y)| d | (x ^ y)) == 0
}

/// SHA-256 (FIPS 180-4) of `data` as 64 lowercase hex digits: Redis stores password hashes so.
pub fn sha256_hex(data: &[u8]) -> String {
    const K: [u32; 64] = [
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
        0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
        0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
        0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
        0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
        0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
        0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
        0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
        0xc67178f2,
    ];
    let mut h: [u32; 8] = [
        0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab,
        0x5be0cd19,
    ];
    let mut msg = data.to_vec();
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&((data.len() as u64).wrapping_mul(8)).to_be_bytes());
    for block in msg.chunks_exact(64) {
        let mut w = [0u32; 64];
        for (i, c) in block.chunks_exact(4).enumerate() {
            w[i] = u32::from_be_bytes([c[0], c[1], c[2], c[3]]);
        }
        for i in 16..64 {
            let s0 = w[i - 15].rotate_right(7) ^ w[i - 15].rotate_right(18) ^ (w[i - 15] >> 3);
            let s1 = w[i - 2].rotate_right(17) ^ w[i - 2].rotate_right(19) ^ (w[i - 2] >> 10);
            w[i] = w[i - 16]
                .wrapping_add(s0)
                .wrapping_add(w[i - 7])
                .wrapping_add(s1);
        }
        let mut v = h;
        for i in 0..64 {
            let s1 = v[4].rotate_right(6) ^ v[4].rotate_right(11) ^ v[4].rotate_right(25);
            let ch = (v[4] & v[5]) ^ (!v[4] & v[6]);
            let t1 = v[7]
                .wrapping_add(s1)
                .wrapping_add(ch)
                .wrapping_add(K[i])
                .wrapping_add(w[i]);
            let s0 = v[0].rotate_right(2) ^ v[0].rotate_right(13) ^ v[0].rotate_right(22);
            let maj = (v[0] & v[1]) ^ (v[0] & v[2]) ^ (v[1] & v[2]);
            let t2 = s0.wrapping_add(maj);
            v = [
                t1.wrapping_add(t2),
                v[0],
                v[1],
                v[2],
                v[3].wrapping_add(t1),
                v[4],
                v[5],
                v[6],
            ];
        }
        for (a, b) in h.iter_mut().zip(v) {
            *a = a.wrapping_add(b);
        }
    }
    h.iter().map(|x| format!("{x:08x}")).collect()
}

/// `ACL GENPASS`: `bits` random bits as hex (rounded up to whole digits), from the OS.
pub fn genpass(bits: usize) -> std::io::Result<String> {
    use std::io::Read;
    let chars = bits.div_ceil(4);
    let mut buf = vec![0u8; chars.div_ceil(2)];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut buf)?;
    let mut s: String = buf.iter().map(|b| format!("{b:02x}")).collect();
    s.truncate(chars);
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_known_vectors() {
        // FIPS 180-4 examples.
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            sha256_hex(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            sha256_hex(b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"
        );
    }

    #[test]
    fn table_has_subcommands_and_categories() {
        let t = table();
        let get = t.id("get").expect("get");
        assert!(t.defs[get].cats & (1 << 1) != 0, "get is @read");
        let cfg = t.id("config").expect("config");
        assert!(t.defs[cfg].subs.len() >= 4);
        assert_eq!(t.resolve(&[b"CONFIG", b"Get", b"x"]), t.id("config|get"));
    }

    #[test]
    fn default_user_described_as_redis() {
        let acl = Acl::new();
        assert_eq!(acl.list(), vec!["user default on nopass ~* &* +@all"]);
        acl.setuser(b"u", &[]).unwrap();
        assert_eq!(acl.list()[1], "user u off resetchannels -@all");
    }
}
