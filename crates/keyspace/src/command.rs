//! The command table: names, arity, flags, key positions and handlers.
//!
//! Problem: the dispatcher must know, before running a command, whether it writes, which of its
//! arguments are keys (to lock their shards in order) and whether its argument count is valid.
//! This mirrors Redis's `redisCommandTable` (`server.c`/`commands.c` of 7.0): `arity` (> 0 exact,
//! < 0 minimum, counting the name), `first_key`/`last_key`/`step` (Redis's legacy key spec;
//! `last_key == -1` means the last argument, `-2` the one before). Over-approximating the key
//! positions is allowed (it only locks more shards); under-approximating is a bug the context
//! reports loudly. Which arguments are keys *exactly* (ACLs, COMMAND GETKEYS, a script's
//! declared keys) is Redis's key specs' answer, [`crate::keyspec`].
//!
//! Each `cmd::*` module exports `pub(crate) const COMMANDS: &[CommandSpec]`; [`CommandTable`]
//! collects them all.

use hashbrown::HashMap;

use crate::ctx::Ctx;
use crate::reply::Reply;

/// A command handler. `argv[0]` is the command name as the client spelled it.
pub type Handler = fn(&mut Ctx<'_>, &[&[u8]]) -> Reply;

/// The command may modify the keyspace (it gets the write path: snapshot hook, empty-aggregate
/// cleanup, propagation).
pub const WRITE: u32 = 1 << 0;
/// The command only reads (it may still expire keys lazily).
pub const READONLY: u32 = 1 << 1;
/// The command works on the whole keyspace: all shards are locked (in ascending order).
pub const ALL_SHARDS: u32 = 1 << 2;

/// One command's static description.
#[derive(Clone, Copy, Debug)]
pub struct CommandSpec {
    /// Lowercase name.
    pub name: &'static str,
    /// Redis arity: > 0 exact argument count (name included), < 0 minimum.
    pub arity: i32,
    /// [`WRITE`], [`READONLY`], [`ALL_SHARDS`].
    pub flags: u32,
    /// Index of the first key argument (0: no keys).
    pub first_key: i32,
    /// Index of the last key argument; negative counts from the end (-1 = last).
    pub last_key: i32,
    /// Distance between key arguments.
    pub step: i32,
    /// The handler.
    pub handler: Handler,
}

impl CommandSpec {
    /// A spec (a shorter way to write a table row).
    pub const fn new(
        name: &'static str,
        arity: i32,
        flags: u32,
        first_key: i32,
        last_key: i32,
        step: i32,
        handler: Handler,
    ) -> CommandSpec {
        CommandSpec {
            name,
            arity,
            flags,
            first_key,
            last_key,
            step,
            handler,
        }
    }

    /// True when `argc` (name included) satisfies the arity.
    pub fn arity_ok(&self, argc: usize) -> bool {
        let argc = argc as i64;
        let a = i64::from(self.arity);
        if a >= 0 {
            argc == a
        } else {
            argc >= -a
        }
    }

    /// True when the command has the [`WRITE`] flag.
    pub fn is_write(&self) -> bool {
        self.flags & WRITE != 0
    }

    /// The argument indices that are keys, exactly, for a script's declared-keys check: Redis's
    /// key specs ([`crate::keyspec::exact_keys`]). When they name no key (a command Redis does
    /// not have, or arguments that do not parse, such as a ZUNIONSTORE `numkeys` of 0) the legacy
    /// [`CommandSpec::key_indices`] over-approximation is what is left (the command then fails on
    /// its own syntax).
    pub fn exact_keys(&self, argv: &[&[u8]]) -> Vec<usize> {
        match crate::keyspec::exact_keys(argv) {
            Some(keys) => keys.into_iter().map(|k| k.pos).collect(),
            None => self.key_indices(argv.len()).collect(),
        }
    }

    /// The argument indices that hold keys, for a call with `argc` arguments: Redis's legacy
    /// first/last/step range (`COMMAND INFO`'s), which shards are locked by. It may
    /// over-approximate (a ZUNIONSTORE's `numkeys`, an XREAD's IDs): only the shards of more
    /// arguments are locked. The exact keys are [`crate::keyspec`]'s.
    pub fn key_indices(&self, argc: usize) -> impl Iterator<Item = usize> {
        let first = self.first_key.max(0) as usize;
        let last = if self.first_key <= 0 {
            0
        } else if self.last_key < 0 {
            (argc as i64 + i64::from(self.last_key)).max(0) as usize
        } else {
            self.last_key as usize
        };
        let step = self.step.max(1) as usize;
        let end = if self.first_key <= 0 {
            0
        } else {
            (last + 1).min(argc)
        };
        (first..end).step_by(step)
    }
}

/// All commands by lowercase name. Looked up several times per command on the request path
/// (server, engine, keyspace), so the map hashes with hashbrown's default (foldhash), not SipHash:
/// the names are ours, not an attacker's to choose.
pub struct CommandTable {
    by_name: HashMap<&'static [u8], &'static CommandSpec>,
}

impl CommandTable {
    /// Build the table from every command module.
    pub fn new() -> CommandTable {
        let mut by_name = HashMap::new();
        for module in crate::cmd::ALL {
            for spec in module.iter() {
                by_name.insert(spec.name.as_bytes(), spec);
            }
        }
        CommandTable { by_name }
    }

    /// Find a command by name, case-insensitively.
    pub fn lookup(&self, name: &[u8]) -> Option<&'static CommandSpec> {
        let mut buf = [0u8; 32];
        if name.len() > buf.len() {
            return None;
        }
        let lower = &mut buf[..name.len()];
        lower.copy_from_slice(name);
        lower.make_ascii_lowercase();
        self.by_name.get(&*lower).copied()
    }

    /// Every command, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = &'static CommandSpec> + '_ {
        self.by_name.values().copied()
    }

    /// Number of commands.
    pub fn len(&self) -> usize {
        self.by_name.len()
    }

    /// True when there are no commands.
    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }
}

impl Default for CommandTable {
    fn default() -> Self {
        CommandTable::new()
    }
}

/// The error Redis 7.0 gives for an unknown command.
pub fn unknown_command(argv: &[&[u8]]) -> Reply {
    let mut args = String::new();
    for a in argv.iter().skip(1) {
        if args.len() >= 128 {
            break;
        }
        let room = 128 - args.len();
        let s = String::from_utf8_lossy(a);
        let s: String = s.chars().take(room).collect();
        args.push_str(&format!("'{s}' "));
    }
    let name = String::from_utf8_lossy(argv.first().copied().unwrap_or(b""));
    let name: String = name.chars().take(128).collect();
    let msg = format!("ERR unknown command '{name}', with args beginning with: {args}");
    Reply::err(msg.replace(['\r', '\n'], " "))
}

/// The error Redis 7.0 gives for a wrong argument count.
pub fn wrong_arity(spec: &CommandSpec) -> Reply {
    Reply::err(format!(
        "ERR wrong number of arguments for '{}' command",
        spec.name
    ))
}
