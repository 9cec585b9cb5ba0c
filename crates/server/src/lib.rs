//! forkless-server: a Redis-compatible TCP server on the forkless keyspace.
//!
//! Problem: Redis users reach a keyspace through client libraries, `redis-cli` and
//! `redis-benchmark`; this crate speaks their protocol (RESP2, RESP3 after `HELLO 3`) on TCP so
//! forkless can replace `redis-server` with the same command line.
//!
//! Threads: one tokio multi-thread runtime (one worker per core) runs the accept loops and one
//! task per connection; each task parses its client's commands and executes them itself on the
//! worker thread, through the engine handle (`forkless::Engine::execute_deferred`) onto the
//! sharded, internally locked keyspace (no command queue, no hop between threads:
//! per-connection order is program order, and commands of different connections run in
//! parallel on different shards). The engine owns persistence and upkeep threads; a reply whose
//! write must be durable (`appendfsync always`) waits for its ticket asynchronously. See
//! DESIGN.md, "Server".
//!
//! Layout: [`parse`] (request framing and limits), [`frame`] (RESP2/RESP3 encoding),
//! [`conn`] (one connection's loop), [`exec`] (command dispatch, connection and transaction
//! commands), `command` (introspection), [`blocking`] (blocking pops), [`pubsub`],
//! [`info`], [`log`]. Options: the engine's one table (`forkless::Config`, redis.conf syntax),
//! read by [`main_with_args`] from redis-server's command line.
#![forbid(unsafe_code)]

pub mod acl;
mod acl_cmd;
pub mod blocking;
pub mod conn;
pub mod exec;
pub mod frame;
pub mod info;
pub mod log;
pub mod monitor;
pub mod parse;
pub mod pubsub;
pub mod repl;
pub mod resolve;
pub mod state;
pub mod tracking;

mod command;
pub mod script_host;

use std::fmt;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use forkless::{Config, ConfigError, Engine, LoadSource, ShutdownOptions};
use forkless_keyspace::command::CommandTable;
use forkless_sync::atomic::{AtomicBool, AtomicU64, Ordering};
use forkless_sync::{Arc, Mutex};

use crate::log::{log, warn};
use crate::state::{NetOptions, Shared, Stats, Watches};

/// Errors of starting or running the server.
#[derive(Debug)]
#[non_exhaustive]
pub enum ServerError {
    /// A bad option or value.
    Option(ConfigError),
    /// The engine refused to open (the data directory could not be loaded...).
    Engine(forkless::Error),
    /// Binding an address failed.
    Bind {
        /// The address.
        addr: String,
        /// The cause.
        source: std::io::Error,
    },
    /// Any other I/O failure (runtime creation, signals).
    Io(std::io::Error),
    /// The `aclfile` could not be loaded.
    Acl(String),
}

impl fmt::Display for ServerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServerError::Option(e) => write!(f, "{e}"),
            ServerError::Engine(e) => write!(f, "{e}"),
            ServerError::Bind { addr, source } => {
                write!(
                    f,
                    "Could not create server TCP listening socket {addr}: {source}"
                )
            }
            ServerError::Io(e) => write!(f, "{e}"),
            ServerError::Acl(e) => write!(f, "Aborting Redis startup because of ACL errors: {e}"),
        }
    }
}

impl std::error::Error for ServerError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ServerError::Option(e) => Some(e),
            ServerError::Engine(e) => Some(e),
            ServerError::Bind { source, .. } => Some(source),
            ServerError::Io(e) => Some(e),
            ServerError::Acl(_) => None,
        }
    }
}

impl From<ConfigError> for ServerError {
    fn from(e: ConfigError) -> Self {
        ServerError::Option(e)
    }
}

/// A server with its listening sockets bound, not yet serving.
pub struct Server {
    shared: Arc<Shared>,
    listeners: Vec<std::net::TcpListener>,
    runtime: tokio::runtime::Runtime,
}

/// A handle that stops a running server (tests, embedding).
#[derive(Clone)]
pub struct ServerHandle {
    shared: Arc<Shared>,
}

impl ServerHandle {
    /// Ask the server to shut down (as SHUTDOWN does); `run` returns soon after.
    pub fn shutdown(&self) {
        self.shared.shutting_down.store(true, Ordering::SeqCst);
        self.shared.shutdown.notify_one();
    }
}

/// 40 random hex characters (the process's run id; also the EOF mark of a replication payload).
pub(crate) fn run_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut s = String::new();
    while s.len() < 40 {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_nanos(),
        );
        s.push_str(&format!("{:016x}", h.finish()));
    }
    s.truncate(40);
    s
}

/// The runtime's worker threads (DESIGN.md 9.1): `io-threads` when given, else the cores less
/// one (at least 1). A request thread that shares its core with the snapshot worker, the log
/// writer or another request thread contending for the same shard loses more than it adds: on
/// 2 cores, 1 thread served pipelined LPUSH/HSET/GET 1.1-1.9x faster than 2 (benches/README.md).
pub fn request_threads(config: &Config) -> usize {
    if config.is_explicit("io-threads") {
        return config.int("io-threads").clamp(1, 128) as usize;
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    cores.saturating_sub(1).max(1)
}

impl Server {
    /// Validate the options, create the keyspace and bind every `bind` address on `port`
    /// (an address prefixed with `-` is skipped when it cannot be bound, as Redis).
    pub fn bind(config: Config) -> Result<Server, ServerError> {
        Server::bind_inner(config, false)
    }

    /// Like [`Server::bind`], on a port the system picks (tests: no race for a free port).
    pub fn bind_ephemeral(config: Config) -> Result<Server, ServerError> {
        Server::bind_inner(config, true)
    }

    fn bind_inner(config: Config, ephemeral: bool) -> Result<Server, ServerError> {
        log::set_level(&config.get("loglevel").unwrap_or_default());
        let port_opt = config.int("port").clamp(0, 65535) as u16;
        let bind = config.bind();
        log("oO0OoO0OoO0Oo forkless is starting oO0OoO0OoO0Oo");
        log(&format!(
            "forkless version={}, redis compatibility={}, pid={}, just started",
            env!("CARGO_PKG_VERSION"),
            info::REDIS_VERSION,
            std::process::id()
        ));
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .worker_threads(request_threads(&config))
            .thread_name("forkless-io")
            .build()
            .map_err(ServerError::Io)?;
        let mut listeners = Vec::new();
        if port_opt != 0 || ephemeral {
            for addr in &bind {
                let (optional, host) = match addr.strip_prefix('-') {
                    Some(h) => (true, h),
                    None => (false, addr.as_str()),
                };
                let port = listeners
                    .first()
                    .and_then(|l: &std::net::TcpListener| l.local_addr().ok())
                    .map_or(if ephemeral { 0 } else { port_opt }, |a| a.port());
                let sa = if host.contains(':') {
                    format!("[{host}]:{port}")
                } else {
                    format!("{host}:{port}")
                };
                match std::net::TcpListener::bind(&sa) {
                    Ok(l) => {
                        l.set_nonblocking(true).map_err(ServerError::Io)?;
                        listeners.push(l);
                    }
                    Err(e) if optional => {
                        warn(&format!("Could not bind optional address {sa}: {e}"));
                    }
                    Err(e) => {
                        return Err(ServerError::Bind {
                            addr: sa,
                            source: e,
                        })
                    }
                }
            }
        }
        let port = listeners
            .first()
            .and_then(|l| l.local_addr().ok())
            .map_or(0, |a| a.port());
        let net = NetOptions::from_config(&config);
        let engine = Engine::open_config(config).map_err(ServerError::Engine)?;
        let report = engine.open_report().clone();
        match &report.source {
            LoadSource::Empty => {}
            LoadSource::Snapshot(p) | LoadSource::SnapshotIntoNewAof(p) => log(&format!(
                "DB loaded from disk ({}): {:.3} seconds, {} keys",
                p.display(),
                report.duration.as_secs_f64(),
                report.keys
            )),
            LoadSource::Aof(files) => log(&format!(
                "DB loaded from append only file ({}): {:.3} seconds, {} commands, {} keys",
                files.join(", "),
                report.duration.as_secs_f64(),
                report.commands_replayed,
                report.keys
            )),
            LoadSource::Segments(from) => log(&format!(
                "DB loaded from segments ({from}): {:.3} seconds, {} keys",
                report.duration.as_secs_f64(),
                report.keys
            )),
        }
        if let Some((file, cut)) = &report.torn_tail {
            warn(&format!("!!! Warning: short read while loading the AOF file {file}: {cut} bytes of a torn tail cut"));
        }
        let ks = engine.keyspace().clone();
        let table = CommandTable::new();
        let cmdstats = state::CmdStats::new(
            exec::SERVER_COMMANDS
                .iter()
                .chain(blocking::COMMANDS)
                .map(|(n, _)| n.to_string())
                .chain(table.iter().map(|s| s.name.to_string())),
        );
        let commands =
            resolve::Commands::new(exec::SERVER_COMMANDS, blocking::COMMANDS, &table, &cmdstats);
        let shared = Arc::new(Shared {
            engine,
            ks,
            table,
            commands,
            opts: Mutex::new(net),
            opts_gen: AtomicU64::new(0),
            clients: Mutex::new(Default::default()),
            next_id: AtomicU64::new(1),
            pubsub: Default::default(),
            blocking: Default::default(),
            monitors: Default::default(),
            tracking: Default::default(),
            watches: Watches::default(),
            stats: Stats::default(),
            cmdstats,
            errorstats: Mutex::new(Default::default()),
            started: Instant::now(),
            run_id: run_id(),
            tcp_port: AtomicU64::new(u64::from(port)),
            shutdown: tokio::sync::Notify::new(),
            shutting_down: AtomicBool::new(false),
            shutdown_save: Mutex::new(None),
            repl: Default::default(),
            acl: Default::default(),
        });
        {
            let o = shared.opts.lock().clone();
            shared.acl.set_default_password(&o.requirepass);
            shared.acl.set_log_max_len(o.acllog_max_len);
            shared.acl.set_pubsub_default(o.acl_pubsub_all);
            let config = shared.engine.config();
            if let Some(path) = acl::file_path(&config) {
                shared
                    .acl
                    .load_file(&path, config.str("aclfile"))
                    .map_err(ServerError::Acl)?;
            }
        }
        shared
            .ks
            .set_event_sink(Some(Arc::new(pubsub::KeyspaceEvents(Arc::downgrade(
                &shared,
            )))));
        let host = script_host::ScriptHost::new(Arc::downgrade(&shared));
        shared.engine.scripting().set_host_commands(Arc::new(host));
        log("Server initialized");
        Ok(Server {
            shared,
            listeners,
            runtime,
        })
    }

    /// The TCP port bound (the first listener's).
    pub fn port(&self) -> u16 {
        self.shared.tcp_port.load(Ordering::Relaxed) as u16
    }

    /// A handle to stop the server.
    pub fn handle(&self) -> ServerHandle {
        ServerHandle {
            shared: self.shared.clone(),
        }
    }

    /// Serve until SHUTDOWN, SIGTERM or SIGINT; then close every client and return.
    pub fn run(self) -> Result<(), ServerError> {
        let Server {
            shared,
            listeners,
            runtime,
        } = self;
        let result = runtime.block_on(async {
            let mut accepts = Vec::new();
            for l in listeners {
                let l = tokio::net::TcpListener::from_std(l).map_err(ServerError::Io)?;
                let shared = shared.clone();
                accepts.push(tokio::spawn(accept_loop(shared, l)));
            }
            log("Ready to accept connections tcp");
            repl::start(&shared);
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    .map_err(ServerError::Io)?;
            tokio::select! {
                _ = shared.shutdown.notified() => {}
                _ = term.recv() => warn("Received SIGTERM scheduling shutdown..."),
                _ = tokio::signal::ctrl_c() => warn("Received SIGINT scheduling shutdown..."),
            }
            shared.shutting_down.store(true, Ordering::SeqCst);
            shared.repl.shutdown();
            for a in &accepts {
                a.abort();
            }
            let clients: Vec<_> = shared.clients.lock().values().cloned().collect();
            for c in clients {
                c.kill();
            }
            // Give connections a moment to flush their last replies.
            let deadline = Instant::now() + Duration::from_millis(500);
            while shared.num_clients() > 0 && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            Ok::<(), ServerError>(())
        });
        shared.shutting_down.store(true, Ordering::SeqCst);
        runtime.shutdown_timeout(Duration::from_secs(1));
        let save = *shared.shutdown_save.lock();
        let will_save = save.unwrap_or_else(|| !shared.engine.config().save_rules().is_empty());
        if will_save {
            log("Saving the final RDB snapshot before exiting.");
        }
        match shared.engine.shutdown_with(ShutdownOptions {
            save,
            ..ShutdownOptions::default()
        }) {
            Ok(r) => {
                match &r.final_snapshot {
                    Some(Ok(_)) => log("DB saved on disk"),
                    Some(Err(e)) => warn(&format!("Error trying to save the DB: {e}")),
                    None => {}
                }
                for e in &r.errors {
                    warn(&format!("Error closing the log: {e}"));
                }
            }
            Err(e) => warn(&format!("Error shutting down the engine: {e}")),
        }
        log("forkless is now ready to exit, bye bye...");
        result
    }
}

async fn accept_loop(shared: Arc<Shared>, l: tokio::net::TcpListener) {
    loop {
        match l.accept().await {
            Ok((stream, peer)) => {
                let shared = shared.clone();
                tokio::spawn(conn::serve(shared, stream, peer));
            }
            Err(e) => {
                // EMFILE and friends: wait a little instead of spinning.
                warn(&format!("Accepting client connection: {e}"));
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

/// Parse redis-server's command line, bind, serve until shutdown (the `forkless server` entry).
pub fn main_with_args(args: &[String]) -> Result<(), ServerError> {
    let config = Config::from_args(args)?;
    let server = Server::bind(config)?;
    server.run()
}

/// The local address a server bound, for tests: `127.0.0.1:<port>`.
pub fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}
