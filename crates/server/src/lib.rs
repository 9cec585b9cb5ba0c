//! forkless-server: a Redis-compatible TCP server on the forkless keyspace.
//!
//! Problem: Redis users reach a keyspace through client libraries, `redis-cli` and
//! `redis-benchmark`; this crate speaks their protocol (RESP2, RESP3 after `HELLO 3`) on TCP so
//! forkless can replace `redis-server` with the same command line.
//!
//! Threads: one tokio multi-thread runtime (one worker per core) runs the accept loops and one
//! task per connection; each task parses its client's commands and executes them itself on the
//! worker thread, calling the sharded, internally locked keyspace directly (no command queue, no
//! hop between threads: per-connection order is program order, and commands of different
//! connections run in parallel on different shards). One plain thread does the periodic upkeep
//! (active expiry at `hz`). See DESIGN.md, "Server".
//!
//! Layout: [`parse`] (request framing and limits), [`frame`] (RESP2/RESP3 encoding),
//! [`conn`] (one connection's loop), [`exec`] (command dispatch, connection and transaction
//! commands), `command` (introspection), [`blocking`] (blocking pops), [`pubsub`],
//! [`info`], [`options`] (redis-server's command line), [`log`].

pub mod blocking;
pub mod conn;
pub mod exec;
pub mod frame;
pub mod info;
pub mod log;
pub mod options;
mod options_defaults;
pub mod parse;
pub mod pubsub;
pub mod state;

mod command;

use std::fmt;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use forkless_keyspace::command::CommandTable;
use forkless_keyspace::{Config as KsConfig, Keyspace};
use forkless_sync::atomic::{AtomicBool, AtomicU64, Ordering};
use forkless_sync::{Arc, Mutex};

pub use options::{OptionError, Options};

use crate::log::{log, warn};
use crate::state::{Event, Shared, Stats, Watches};

/// Errors of starting or running the server.
#[derive(Debug)]
#[non_exhaustive]
pub enum ServerError {
    /// A bad option or value.
    Option(OptionError),
    /// Binding an address failed.
    Bind {
        /// The address.
        addr: String,
        /// The cause.
        source: std::io::Error,
    },
    /// Any other I/O failure (runtime creation, signals).
    Io(std::io::Error),
}

impl fmt::Display for ServerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServerError::Option(e) => write!(f, "{e}"),
            ServerError::Bind { addr, source } => {
                write!(
                    f,
                    "Could not create server TCP listening socket {addr}: {source}"
                )
            }
            ServerError::Io(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for ServerError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ServerError::Option(e) => Some(e),
            ServerError::Bind { source, .. } => Some(source),
            ServerError::Io(e) => Some(e),
        }
    }
}

impl From<OptionError> for ServerError {
    fn from(e: OptionError) -> Self {
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

fn run_id() -> String {
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

impl Server {
    /// Validate the options, create the keyspace and bind every `bind` address on `port`
    /// (an address prefixed with `-` is skipped when it cannot be bound, as Redis).
    pub fn bind(opts: Options) -> Result<Server, ServerError> {
        Server::bind_inner(opts, false)
    }

    /// Like [`Server::bind`], on a port the system picks (tests: no race for a free port).
    pub fn bind_ephemeral(opts: Options) -> Result<Server, ServerError> {
        Server::bind_inner(opts, true)
    }

    fn bind_inner(opts: Options, ephemeral: bool) -> Result<Server, ServerError> {
        log::set_level(opts.get_other("loglevel"));
        log("oO0OoO0OoO0Oo forkless is starting oO0OoO0OoO0Oo");
        log(&format!(
            "forkless version={}, redis compatibility={}, pid={}, just started",
            env!("CARGO_PKG_VERSION"),
            info::REDIS_VERSION,
            std::process::id()
        ));
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .thread_name("forkless-io")
            .build()
            .map_err(ServerError::Io)?;
        let mut listeners = Vec::new();
        if opts.port != 0 || ephemeral {
            for addr in &opts.bind {
                let (optional, host) = match addr.strip_prefix('-') {
                    Some(h) => (true, h),
                    None => (false, addr.as_str()),
                };
                let port = listeners
                    .first()
                    .and_then(|l: &std::net::TcpListener| l.local_addr().ok())
                    .map_or(opts.port, |a| a.port());
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
        let ks = Keyspace::new(KsConfig {
            databases: opts.databases,
            ..KsConfig::default()
        });
        let now_secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let shared = Arc::new(Shared {
            ks,
            table: CommandTable::new(),
            opts: Mutex::new(opts),
            clients: Mutex::new(Default::default()),
            next_id: AtomicU64::new(1),
            pubsub: Default::default(),
            blocking: Default::default(),
            watches: Watches::default(),
            stats: Stats::default(),
            started: Instant::now(),
            run_id: run_id(),
            tcp_port: AtomicU64::new(u64::from(port)),
            shutdown: tokio::sync::Notify::new(),
            shutting_down: AtomicBool::new(false),
            last_save: AtomicU64::new(now_secs),
            active_expire: AtomicBool::new(true),
        });
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
        let upkeep = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("forkless-upkeep".into())
                .spawn(move || upkeep_loop(&shared))
                .map_err(ServerError::Io)?
        };
        let result = runtime.block_on(async {
            let mut accepts = Vec::new();
            for l in listeners {
                let l = tokio::net::TcpListener::from_std(l).map_err(ServerError::Io)?;
                let shared = shared.clone();
                accepts.push(tokio::spawn(accept_loop(shared, l)));
            }
            log("Ready to accept connections tcp");
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    .map_err(ServerError::Io)?;
            tokio::select! {
                _ = shared.shutdown.notified() => {}
                _ = term.recv() => warn("Received SIGTERM scheduling shutdown..."),
                _ = tokio::signal::ctrl_c() => warn("Received SIGINT scheduling shutdown..."),
            }
            shared.shutting_down.store(true, Ordering::SeqCst);
            for a in &accepts {
                a.abort();
            }
            let clients: Vec<_> = shared.clients.lock().values().cloned().collect();
            for c in clients {
                let _ = c.tx.send(Event::Kill);
            }
            // Give connections a moment to flush their last replies.
            let deadline = Instant::now() + Duration::from_millis(500);
            while shared.num_clients() > 0 && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            Ok::<(), ServerError>(())
        });
        shared.shutting_down.store(true, Ordering::SeqCst);
        let _ = upkeep.join();
        runtime.shutdown_timeout(Duration::from_secs(1));
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

/// Active expiry at `hz`, as Redis's `activeExpireCycle` (slow cycle): up to 25 ms per tick,
/// going on while more than 10% of the keys sampled had expired.
fn upkeep_loop(shared: &Shared) {
    const SAMPLE: usize = 2000;
    while !shared.shutting_down.load(Ordering::SeqCst) {
        let hz: u64 = shared
            .opts
            .lock()
            .get_other("hz")
            .parse()
            .unwrap_or(10)
            .clamp(1, 500);
        std::thread::sleep(Duration::from_millis(1000 / hz));
        if !shared.active_expire.load(Ordering::SeqCst) {
            continue;
        }
        let start = Instant::now();
        loop {
            let deleted = shared.ks.active_expire_cycle(SAMPLE);
            if deleted * 10 < SAMPLE || start.elapsed() > Duration::from_millis(25) {
                break;
            }
        }
    }
}

/// Parse redis-server's command line, bind, serve until shutdown (the `forkless server` entry).
pub fn main_with_args(args: &[String]) -> Result<(), ServerError> {
    let opts = Options::from_args(args)?;
    let server = Server::bind(opts)?;
    server.run()
}

/// The local address a server bound, for tests: `127.0.0.1:<port>`.
pub fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}
