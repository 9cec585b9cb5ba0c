//! Integration tests of the engine handle (one test binary, one module per area).

mod config_file;
mod crash;
mod expire;
mod memory;
mod misconf;
mod oracle;
mod rdb_access;
mod reopen;
mod replication;
mod rules;
mod scripting;
mod shutdown;
mod tx;

use std::path::Path;

use forkless::{Config, Engine};

/// A configuration from redis.conf text.
pub fn conf(text: &str) -> Config {
    let mut c = Config::default();
    c.load_str(text).unwrap_or_else(|e| panic!("{e}"));
    c
}

/// Open or panic with the error.
pub fn open(dir: &Path, c: &Config) -> Engine {
    Engine::open(dir, c.clone()).unwrap_or_else(|e| panic!("open {}: {e}", dir.display()))
}
