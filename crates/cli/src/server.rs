//! `forkless server [CONFIG-FILE] [--<option> <value>]...`: the Redis-compatible server, with
//! redis-server's own command line (see `forkless_server::options`).

use std::process::ExitCode;

use clap::Args;

use crate::CliError;

/// Arguments of `forkless server`: passed through unparsed, as redis-server reads them.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  forkless server --port 6380\n  forkless server /etc/redis/redis.conf --port 6381 --requirepass s3cret\n  forkless server --save \"60 1000\" --appendonly yes --appendfsync always --dir /var/lib/forkless"
)]
pub(crate) struct ServerArgs {
    /// An optional redis.conf file, then `--<option> <value>` pairs (redis.conf names).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, num_args = 0..)]
    pub args: Vec<String>,
}

/// Run the server until SHUTDOWN or a signal.
pub(crate) fn run(a: ServerArgs) -> Result<ExitCode, CliError> {
    // The global allocator of this binary (`main.rs`): tikv-jemalloc-sys 0.6 bundles jemalloc
    // 5.3.0, the version Debian's redis-server 7.0.15 links too; without the `jemalloc` feature
    // it is the C library's malloc, which redis-server names `libc`.
    forkless_server::info::set_mem_allocator(if cfg!(feature = "jemalloc") {
        "jemalloc-5.3.0"
    } else {
        "libc"
    });
    forkless_server::main_with_args(&a.args)
        .map(|()| ExitCode::SUCCESS)
        .map_err(|e| CliError::new("server", e))
}
