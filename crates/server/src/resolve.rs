//! A command's name, resolved once per call: which table serves it, its arity, its keyspace
//! entry and its INFO commandstats row.
//!
//! Every command used to be looked up by name several times on its way through the server: the
//! name lowercased into a new `String`, the server's own list and the blocking list scanned
//! linearly for its arity, the keyspace's table for its flags (write? read-only?), and a
//! SipHash map for its statistics row. [`Commands::lookup`] answers all of it with one hash
//! lookup of the name lowercased on the stack, and hands out the name as a `&'static str`, so
//! the request path allocates nothing for it.
//!
//! The three tables and their precedence are the ones `exec.rs` always had: the server's own
//! commands ([`crate::exec::SERVER_COMMANDS`]) first, then the blocking ones
//! ([`crate::blocking::COMMANDS`]), then the keyspace's data commands.

use forkless_keyspace::command::{CommandSpec, CommandTable};

use crate::state::CmdStats;

/// Who runs a command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Served {
    /// The server itself (connection, server and scripting commands).
    Server,
    /// The blocking pops and moves (`blocking.rs`).
    Blocking,
    /// The keyspace.
    Data,
}

/// One known command.
#[derive(Clone, Copy, Debug)]
pub struct Resolved {
    /// Lowercase name.
    pub name: &'static str,
    /// Redis's arity (negative: at least that many arguments).
    pub arity: i32,
    /// Who runs it.
    pub served: Served,
    /// The keyspace's entry for this name (data commands; also blocking commands, which have
    /// a non-blocking twin there, never used to run them).
    pub spec: Option<&'static CommandSpec>,
    /// Its row in [`CmdStats`].
    pub row: Option<usize>,
}

impl Resolved {
    /// True when the command writes (Redis's `write` flag): a blocking command when it pops
    /// (`b...`), any other when the keyspace's table says so.
    pub fn is_write(&self) -> bool {
        match self.served {
            Served::Blocking => self.name.starts_with('b'),
            Served::Server | Served::Data => self.spec.is_some_and(|s| s.is_write()),
        }
    }
}

/// Every command the server knows, by lowercase name.
pub struct Commands {
    by_name: hashbrown::HashMap<&'static [u8], Resolved>,
}

/// Longest command name (Redis's longest is 20 bytes; anything longer is unknown).
const MAX_NAME: usize = 32;

impl Commands {
    /// The table over the server's, the blocking and the keyspace's commands.
    pub fn new(
        server: &[(&'static str, i32)],
        blocking: &[(&'static str, i32)],
        table: &CommandTable,
        stats: &CmdStats,
    ) -> Commands {
        let mut by_name = hashbrown::HashMap::new();
        let mut add = |name: &'static str, arity: i32, served: Served| {
            by_name.entry(name.as_bytes()).or_insert(Resolved {
                name,
                arity,
                served,
                spec: table.lookup(name.as_bytes()),
                row: stats.index_of(name),
            });
        };
        for &(n, a) in server {
            add(n, a, Served::Server);
        }
        for &(n, a) in blocking {
            add(n, a, Served::Blocking);
        }
        for spec in table.iter() {
            add(spec.name, spec.arity, Served::Data);
        }
        Commands { by_name }
    }

    /// The command named `name`, in any case.
    pub fn lookup(&self, name: &[u8]) -> Option<&Resolved> {
        let mut buf = [0u8; MAX_NAME];
        let lower = buf.get_mut(..name.len())?;
        lower.copy_from_slice(name);
        lower.make_ascii_lowercase();
        self.by_name.get(&*lower)
    }
}
