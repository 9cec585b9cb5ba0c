//! Loading an AOF into the engine: [`KeyspaceTarget`] applies RDB-base keys with
//! [`Keyspace::load_with_access`] (their `IDLE` / `FREQ` set the access clocks) and commands with [`Keyspace::execute`] in a [`Session`] (so `SELECT`
//! switches the database, as Redis's AOF client does). While it exists the keyspace is in
//! loading mode ([`Keyspace::set_loading`]): no key counts as expired during the replay, as in
//! Redis 7.0 (`keyIsExpired` is false while `server.loading`).

use forkless_keyspace::{Keyspace, Reply, Session};
use forkless_rdb::{Entry, KeyAccess};

use crate::error::TargetError;
use crate::load::LoadTarget;

/// A [`LoadTarget`] that applies everything to a [`Keyspace`].
pub struct KeyspaceTarget<'a> {
    ks: &'a Keyspace,
    session: Session,
}

impl<'a> KeyspaceTarget<'a> {
    /// Apply to `ks`, starting in database 0.
    pub fn new(ks: &'a Keyspace) -> Self {
        ks.set_loading(true);
        KeyspaceTarget {
            ks,
            session: Session::default(),
        }
    }
}

impl Drop for KeyspaceTarget<'_> {
    /// Loading is over: keys expire again.
    fn drop(&mut self) {
        self.ks.set_loading(false);
    }
}

impl LoadTarget for KeyspaceTarget<'_> {
    fn function(&mut self, code: &[u8]) -> Result<(), TargetError> {
        match self.ks.libraries() {
            Some(l) => l.load(code).map_err(TargetError::from),
            None => Ok(()),
        }
    }

    fn entries(&mut self, entries: Vec<Entry>) -> Result<(), TargetError> {
        self.ks.load(entries).map_err(TargetError::from)
    }

    fn entries_with_access(
        &mut self,
        entries: Vec<Entry>,
        access: Vec<KeyAccess>,
    ) -> Result<(), TargetError> {
        self.ks
            .load_with_access(entries, access)
            .map_err(TargetError::from)
    }

    fn command(&mut self, argv: &[Vec<u8>]) -> Result<bool, TargetError> {
        let refs: Vec<&[u8]> = argv.iter().map(Vec::as_slice).collect();
        if refs
            .first()
            .is_some_and(|n| n.eq_ignore_ascii_case(b"function"))
        {
            // Function libraries live beside the keyspace; without them the command is
            // skipped like any command that fails.
            return Ok(match self.ks.libraries() {
                Some(l) => l.command(&refs).is_ok(),
                None => false,
            });
        }
        match self.ks.execute(&mut self.session, &refs) {
            Reply::Error(e) if e.starts_with("ERR unknown command") => Err(e.into_owned().into()),
            Reply::Error(_) => Ok(false),
            _ => Ok(true),
        }
    }
}
