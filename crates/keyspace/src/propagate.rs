//! Propagation: the effects of each write, as commands, for the AOF and replicas.
//!
//! Problem: the AOF must hold a command stream that, replayed, rebuilds the same keyspace. Redis
//! 7.0 does not log what clients sent but what happened (`alsoPropagate`, `propagatePendingCommands`
//! in `server.c`): relative expiries become absolute, no-op writes log nothing, lazily or actively
//! expired keys log `DEL`, and when one command propagates two or more commands they are wrapped
//! in `MULTI`/`EXEC`. See `testdata/fixtures/aof/commands-propagation.txt` and `FACTS.md`.
//!
//! The keyspace hands each command's group of propagated commands to a [`PropagationSink`] while
//! the command's shard locks are still held, so two writes to one key reach the sink in execution
//! order. A group of two or more commands already includes the `MULTI` and `EXEC` entries. The
//! sink inserts `SELECT` where the database changes (it knows the last database it wrote), as
//! Redis's `feedAppendOnlyFile` does; [`render_aof`] shows that layout.

use forkless_sync::Mutex;

/// One propagated command: the database it applies to and its arguments.
pub type Propagated = (u32, Vec<Vec<u8>>);

/// Receives the propagated commands of every write.
pub trait PropagationSink: Send + Sync {
    /// Called once per executed command that propagates anything, with the command's shard
    /// locks held (keep it short: append to a buffer, do no I/O that can block for long). `ops`
    /// holds one command, or `MULTI`, two or more commands, `EXEC`; each carries its database.
    fn propagate(&self, ops: &[Propagated]);
}

/// A sink that keeps everything in memory (tests, the CLI).
#[derive(Debug, Default)]
pub struct CollectingSink {
    ops: Mutex<Vec<Propagated>>,
}

impl CollectingSink {
    /// An empty sink.
    pub fn new() -> CollectingSink {
        CollectingSink::default()
    }
    /// Everything received so far, in order.
    pub fn ops(&self) -> Vec<Propagated> {
        self.ops.lock().clone()
    }
    /// Take everything received so far, leaving the sink empty.
    pub fn take(&self) -> Vec<Propagated> {
        std::mem::take(&mut *self.ops.lock())
    }
}

impl PropagationSink for CollectingSink {
    fn propagate(&self, ops: &[Propagated]) {
        self.ops.lock().extend_from_slice(ops);
    }
}

/// Append one command in RESP (array of bulk strings) to `out` (the one encoder,
/// [`forkless_resp::encode_command_iter`]).
pub fn encode_command(argv: &[impl AsRef<[u8]>], out: &mut Vec<u8>) {
    forkless_resp::encode_command_iter(out, argv);
}

/// Render a sequence of propagated commands as an AOF would hold them: `SELECT <db>` before the
/// first command and wherever the database changes (not for `MULTI`/`EXEC`, which take the
/// database of the command they wrap), then each command in RESP.
pub fn render_aof(ops: &[Propagated]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut last_db: Option<u32> = None;
    for (db, argv) in ops {
        let is_frame = argv.len() == 1
            && (argv[0].eq_ignore_ascii_case(b"multi") || argv[0].eq_ignore_ascii_case(b"exec"));
        if !is_frame && last_db != Some(*db) {
            encode_command(&[b"SELECT".to_vec(), db.to_string().into_bytes()], &mut out);
            last_db = Some(*db);
        }
        encode_command(argv, &mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(args: &[&str]) -> Vec<Vec<u8>> {
        args.iter().map(|a| a.as_bytes().to_vec()).collect()
    }

    #[test]
    fn selects_where_db_changes() {
        let ops = vec![
            (0, cmd(&["SET", "k", "v"])),
            (0, cmd(&["DEL", "k"])),
            (1, cmd(&["SET", "in1", "v"])),
        ];
        let aof = render_aof(&ops);
        assert_eq!(
            aof,
            b"*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n\
*2\r\n$3\r\nDEL\r\n$1\r\nk\r\n*2\r\n$6\r\nSELECT\r\n$1\r\n1\r\n\
*3\r\n$3\r\nSET\r\n$3\r\nin1\r\n$1\r\nv\r\n"
        );
    }

    #[test]
    fn multi_takes_the_wrapped_db() {
        let ops = vec![
            (0, cmd(&["SET", "a", "1"])),
            (3, cmd(&["MULTI"])),
            (3, cmd(&["DEL", "x"])),
            (3, cmd(&["SET", "x", "1"])),
            (3, cmd(&["EXEC"])),
        ];
        let s = String::from_utf8(render_aof(&ops)).unwrap();
        let multi = s.find("MULTI").unwrap();
        let select3 = s.find("$1\r\n3").unwrap();
        assert!(
            multi < select3,
            "SELECT goes inside MULTI before its first command: {s:?}"
        );
    }

    #[test]
    fn collecting_sink_keeps_order() {
        let s = CollectingSink::new();
        s.propagate(&[(0, cmd(&["SET", "a", "1"]))]);
        s.propagate(&[(2, cmd(&["DEL", "a"]))]);
        assert_eq!(s.ops().len(), 2);
        assert_eq!(s.take()[1].0, 2);
        assert!(s.ops().is_empty());
    }
}
