//! One client connection: buffers, framing, limits, and the order of its replies.
//!
//! Problem: the connection owns the socket and nothing else does. Commands never see it (Redis's
//! `networking.c` versus `call()`): [`Conn::run`] reads into the query buffer, parses every
//! complete command ([`crate::parse`]), has each executed ([`crate::exec`]) and appends its reply
//! to one output buffer, then writes that buffer with one `write_all` (pipelining: one read can
//! carry many commands, their replies leave in one write, in order). Commands run on the tokio
//! worker thread that polls the connection, calling the thread-safe keyspace directly.
//!
//! Lifecycle: accepted → refused at once when over `maxclients` (`-ERR max number of clients
//! reached`) or, in protected mode without a password, when not from loopback (`-DENIED ...`) →
//! registered (CLIENT LIST) → loop { read, parse, execute, write; or wait for a pub/sub message,
//! a blocked command's result, CLIENT KILL, idle `timeout` } → unregistered, its subscriptions,
//! watches and blocked command withdrawn.
//!
//! Limits: the parser refuses bad lengths before reading what they declare; the unparsed bytes
//! plus the arguments of the command in progress may not exceed `client-query-buffer-limit`
//! (Redis closes such a client without a reply and logs it); a protocol error is answered with
//! Redis's text and the connection closed after the replies already due.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use forkless_keyspace::Session;
use forkless_sync::atomic::{AtomicBool, Ordering};
use forkless_sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};

use crate::blocking::Request;
use crate::frame::{Frame, Proto};
use crate::log::log;
use crate::parse::{ParseLimits, Parsed, RequestParser};
use crate::state::{ClientEntry, ClientMeta, Event, NetOptions, Shared};

/// Size of one read when no big argument is awaited (Redis's `PROTO_IOBUF_LEN`).
const READ_CHUNK: usize = 16 * 1024;
/// Largest single read reserved for a big argument in progress.
const BIG_READ: usize = 1024 * 1024;

/// CLIENT REPLY mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplyMode {
    /// Replies are sent.
    On,
    /// No reply is sent.
    Off,
    /// The next command's reply is dropped.
    Skip,
}

/// What executing one command asks of the connection.
pub enum Step {
    /// Send this reply.
    Reply(Frame),
    /// Send these replies (SUBSCRIBE to several channels).
    Many(Vec<Frame>),
    /// Send nothing (CLIENT REPLY OFF).
    Nothing,
    /// Block until one of the keys has data (or the timeout).
    Block(Request),
    /// Send this reply, then close (QUIT, protocol errors).
    Close(Frame),
    /// Send this reply once the write is durable (or the durability error instead).
    Durable(Frame, forkless::Durability),
    /// SYNC / PSYNC: this connection becomes a replica ([`crate::repl::serve_replica`]).
    Replicate(crate::repl::SyncRequest),
    /// WAIT: reply with the number of replicas that acknowledged `target` (or at the timeout).
    Wait {
        /// The stream offset to be acknowledged.
        target: u64,
        /// Replicas wanted.
        num: usize,
        /// Milliseconds, 0 = forever.
        timeout_ms: u64,
    },
}

/// The state of a connection between commands.
pub struct Conn {
    pub(crate) shared: Arc<Shared>,
    pub(crate) entry: Arc<ClientEntry>,
    pub(crate) session: Session,
    pub(crate) proto: Proto,
    pub(crate) authed: bool,
    /// The ACL user (the default user until AUTH / HELLO AUTH).
    pub(crate) user: forkless_sync::Arc<crate::acl::UserCell>,
    pub(crate) reply_mode: ReplyMode,
    /// MULTI: the queued commands, and whether one was refused while queueing.
    pub(crate) multi: Option<(Vec<Vec<Vec<u8>>>, bool)>,
    /// WATCHed keys, whether each existed when watched, and the dirty flag.
    pub(crate) watched: Vec<(u32, Vec<u8>, bool)>,
    pub(crate) watch_dirty: Arc<AtomicBool>,
    pub(crate) subs: std::collections::BTreeSet<Vec<u8>>,
    pub(crate) psubs: std::collections::BTreeSet<Vec<u8>>,
    /// Shard channels (SSUBSCRIBE).
    pub(crate) ssubs: std::collections::BTreeSet<Vec<u8>>,
    /// Inside EXEC: blocking commands do not block.
    pub(crate) in_exec: bool,
    /// Keys written by the commands of an EXEC run one by one: their blocked clients are
    /// served after the whole transaction, as Redis's `handleClientsBlockedOnKeys` after EXEC.
    pub(crate) exec_written: Vec<(u32, Vec<u8>)>,
    /// The blocking command waiting for its reply: its INFO commandstats call is counted when
    /// the reply comes (failed when it is an error), as Redis's `updateStatsOnUnblock`.
    pub(crate) blocked_cmd: Option<String>,
    pub(crate) out: Vec<u8>,
    /// Replies held back behind a durability ticket, in order (replies after a pending one
    /// wait too, so a pipeline's replies keep their order).
    pub(crate) held: Vec<(Frame, Option<forkless::Durability>)>,
    /// REPLCONF listening-port / ip-address / capa eof, for when this client turns replica.
    pub(crate) repl_port: u16,
    pub(crate) repl_ip: Option<String>,
    pub(crate) repl_capa_eof: bool,
    /// The next error reply was already counted in the error statistics (a script's error
    /// raised by a `redis.call`, counted when that command ran).
    pub(crate) error_counted: bool,
    /// This connection's copy of the server's options, as of generation `net_gen` (read
    /// through [`Conn::opts`]).
    net: NetOptions,
    net_gen: u64,
    /// When the current batch of commands started (a request's `last_active`).
    pub(crate) now: Instant,
}

impl Conn {
    /// The server's options now: this connection's copy, taken again only when a `CONFIG SET`
    /// moved [`Shared::opts_gen`] (one atomic load of a line that rarely changes, instead of a
    /// mutex every connection takes per command).
    pub(crate) fn opts(&mut self) -> &NetOptions {
        let g = self.shared.opts_gen.load(Ordering::Acquire);
        if g != self.net_gen {
            self.net = self.shared.opts.lock().clone();
            self.net_gen = g;
        }
        &self.net
    }

    /// Append a reply, honouring CLIENT REPLY.
    fn emit(&mut self, f: &Frame) {
        if let Frame::Error(e) = f {
            if std::mem::take(&mut self.error_counted) {
                // A script's error reply whose statistics its `redis.call` already counted.
            } else {
                self.shared.count_error(e);
            }
        }
        // Pushes (subscribe confirmations, messages) ignore CLIENT REPLY, as Redis's
        // CLIENT_PUSHING.
        if matches!(f, Frame::Push(_)) {
            if self.held.is_empty() {
                f.encode(self.proto, &mut self.out);
            } else {
                self.held.push((f.clone(), None));
            }
            return;
        }
        match self.reply_mode {
            ReplyMode::On if self.held.is_empty() => f.encode(self.proto, &mut self.out),
            ReplyMode::On => self.held.push((f.clone(), None)),
            ReplyMode::Off => {}
            ReplyMode::Skip => self.reply_mode = ReplyMode::On,
        }
    }

    /// Append a reply that may only leave once `d` resolved.
    fn emit_durable(&mut self, f: Frame, d: Option<forkless::Durability>) {
        match d {
            None => self.emit(&f),
            Some(d) => match self.reply_mode {
                ReplyMode::On => self.held.push((f, Some(d))),
                // Not sent, but still waited for before the next reply (order of durability).
                ReplyMode::Off => self.held.push((Frame::Seq(Vec::new()), Some(d))),
                ReplyMode::Skip => {
                    self.reply_mode = ReplyMode::On;
                    self.held.push((Frame::Seq(Vec::new()), Some(d)));
                }
            },
        }
    }

    /// Wait for the held replies' tickets (in order) and encode them.
    async fn resolve_held(&mut self) {
        for (f, d) in std::mem::take(&mut self.held) {
            let f = match d {
                None => f,
                Some(d) => match d.await {
                    Ok(()) => f,
                    Err(e) => Frame::err(e.to_string()),
                },
            };
            if f.is_error() {
                self.shared.stats.errors.fetch_add(1, Ordering::Relaxed);
            }
            f.encode(self.proto, &mut self.out);
        }
    }

    /// Encode an event for this client (pub/sub messages are pushes in RESP3).
    fn event_frame(&self, ev: Event) -> Option<Frame> {
        let size = match &ev {
            Event::Message {
                pattern,
                channel,
                message,
            } => Some(
                (channel.len() + message.len() + 32 + pattern.as_ref().map_or(0, Vec::len)) as u64,
            ),
            Event::ShardMessage { channel, message } => {
                Some((channel.len() + message.len() + 32) as u64)
            }
            _ => None,
        };
        if let Some(size) = size {
            let _ = self
                .entry
                .queued
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |q| {
                    Some(q.saturating_sub(size))
                });
        }
        match ev {
            Event::Message {
                pattern: None,
                channel,
                message,
            } => Some(Frame::Push(vec![
                Frame::bulk("message"),
                Frame::Bulk(channel),
                Frame::Bulk(message),
            ])),
            Event::Message {
                pattern: Some(p),
                channel,
                message,
            } => Some(Frame::Push(vec![
                Frame::bulk("pmessage"),
                Frame::Bulk(p),
                Frame::Bulk(channel),
                Frame::Bulk(message),
            ])),
            Event::ShardMessage { channel, message } => Some(Frame::Push(vec![
                Frame::bulk("smessage"),
                Frame::Bulk(channel),
                Frame::Bulk(message),
            ])),
            Event::Monitor(line) => Some(Frame::Simple(std::borrow::Cow::Owned(line))),
            Event::Invalidate { keys, redirected } => {
                let keys = match keys {
                    Some(k) => Frame::Array(k.into_iter().map(Frame::Bulk).collect()),
                    None => Frame::Null,
                };
                if self.proto == Proto::Resp3 {
                    Some(Frame::Push(vec![Frame::bulk("invalidate"), keys]))
                } else if redirected && self.subs.contains(INVALIDATE_CHANNEL) {
                    // RESP2: a pub/sub message on the tracking channel (Redis's
                    // `sendTrackingMessage`); otherwise RESP2 cannot carry it.
                    Some(Frame::Push(vec![
                        Frame::bulk("message"),
                        Frame::bulk(INVALIDATE_CHANNEL.to_vec()),
                        keys,
                    ]))
                } else {
                    None
                }
            }
            Event::RedirectBroken(id) => (self.proto == Proto::Resp3).then(|| {
                Frame::Push(vec![
                    Frame::bulk("tracking-redir-broken"),
                    Frame::Int(id as i64),
                ])
            }),
            _ => None,
        }
    }

    pub(crate) fn update_meta(&self, f: impl FnOnce(&mut ClientMeta)) {
        f(&mut self.entry.meta.lock());
    }
}

/// The pub/sub channel of RESP2 tracking redirection.
const INVALIDATE_CHANNEL: &[u8] = b"__redis__:invalidate";

/// The message Redis 7.0 sends to a non-loopback client in protected mode.
const DENIED: &str = "-DENIED Redis is running in protected mode because protected mode is enabled and no password is set for the default user. In this mode connections are only accepted from the loopback interface. If you want to connect from external computers to Redis you may adopt one of the following solutions: 1) Just disable protected mode sending the command 'CONFIG SET protected-mode no' from the loopback interface by connecting to Redis from the same host the server is running, however MAKE SURE Redis is not publicly accessible from internet if you do so. Use CONFIG REWRITE to make this change permanent. 2) Alternatively you can just disable the protected mode by editing the Redis configuration file, and setting the protected mode option to 'no', and then restarting the server. 3) If you started the server manually just for testing, restart it with the '--protected-mode no' option. 4) Set up an authentication password for the default user. NOTE: You only need to do one of the above things in order for the server to start accepting connections from the outside.\r\n";

/// Serve one accepted connection until it closes.
pub async fn serve(shared: Arc<Shared>, mut stream: TcpStream, peer: SocketAddr) {
    shared.stats.connections.fetch_add(1, Ordering::Relaxed);
    let _ = stream.set_nodelay(true);
    let local = stream
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    let (maxclients, protected, nopass) = {
        let o = shared.opts.lock();
        (o.maxclients, o.protected_mode, shared.acl.default_nopass())
    };
    if shared.num_clients() as u64 >= maxclients {
        shared.stats.rejected.fetch_add(1, Ordering::Relaxed);
        let _ = stream
            .write_all(b"-ERR max number of clients reached\r\n")
            .await;
        return;
    }
    if protected && nopass && !peer.ip().is_loopback() {
        shared.stats.rejected.fetch_add(1, Ordering::Relaxed);
        let _ = stream.write_all(DENIED.as_bytes()).await;
        return;
    }
    let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
    let (tx, rx) = unbounded_channel();
    let now = Instant::now();
    let entry = Arc::new(ClientEntry {
        id,
        addr: peer.to_string(),
        laddr: local,
        created: now,
        meta: Mutex::new(ClientMeta {
            name: String::new(),
            db: 0,
            last_cmd: "NULL".into(),
            last_active: now,
            resp: 2,
            sub: 0,
            psub: 0,
            ssub: 0,
            multi: -1,
            blocked: false,
            monitor: false,
            user: "default".into(),
        }),
        tx,
        queued: forkless_sync::atomic::AtomicU64::new(0),
        over_soft_since: Mutex::new(None),
        kill: tokio::sync::Notify::new(),
    });
    shared.add_client(entry.clone());
    let mut conn = Conn {
        // Redis's clientSetDefaultAuth: authenticated when the default user needs no password.
        authed: !shared.acl.auth_required(),
        user: shared.acl.default_user(),
        shared: shared.clone(),
        entry,
        session: Session { db: 0 },
        proto: Proto::Resp2,
        reply_mode: ReplyMode::On,
        multi: None,
        watched: Vec::new(),
        watch_dirty: Arc::new(AtomicBool::new(false)),
        subs: Default::default(),
        psubs: Default::default(),
        ssubs: Default::default(),
        in_exec: false,
        exec_written: Vec::new(),
        blocked_cmd: None,
        out: Vec::new(),
        held: Vec::new(),
        repl_port: 0,
        repl_ip: None,
        repl_capa_eof: false,
        error_counted: false,
        // The generation first: a change between the two reads is taken again at the next use.
        net_gen: shared.opts_gen.load(Ordering::Acquire),
        net: shared.opts.lock().clone(),
        now,
    };
    conn.run(stream, rx).await;
    conn.cleanup();
    shared.remove_client(id);
}

/// How the read loop ended up after processing the buffer.
enum Processed {
    /// Read more.
    More,
    /// Close after writing the output buffer.
    Close,
    /// A command blocked.
    Block(Request),
    /// The client turned replica.
    Replicate(crate::repl::SyncRequest),
    /// WAIT.
    Wait(u64, usize, u64),
}

impl Conn {
    async fn run(&mut self, mut stream: TcpStream, mut rx: UnboundedReceiver<Event>) {
        let mut inbuf: Vec<u8> = Vec::with_capacity(READ_CHUNK);
        let mut pos = 0usize;
        let mut parser = RequestParser::new();
        loop {
            // Execute every complete command in the buffer.
            let processed = self.process(&mut inbuf, &mut pos, &mut parser);
            if pos > 0 {
                inbuf.drain(..pos);
                pos = 0;
            }
            match processed {
                Processed::More => {}
                Processed::Close => {
                    let _ = self.flush(&mut stream).await;
                    return;
                }
                Processed::Replicate(req) => {
                    if self.flush(&mut stream).await.is_err() {
                        return;
                    }
                    crate::repl::serve_replica(
                        self.shared.clone(),
                        stream,
                        self.entry.id,
                        self.entry.addr.clone(),
                        req,
                        self.entry.clone(),
                    )
                    .await;
                    return;
                }
                Processed::Wait(target, num, timeout_ms) => {
                    if self.flush(&mut stream).await.is_err() {
                        return;
                    }
                    let n = tokio::select! {
                        n = crate::repl::wait_acks(&self.shared, target, num, timeout_ms) => n,
                        _ = self.entry.kill.notified() => return,
                    };
                    self.emit(&Frame::Int(n));
                    continue;
                }
                Processed::Block(req) => {
                    if self.flush(&mut stream).await.is_err() {
                        return;
                    }
                    match self
                        .wait_blocked(req, &mut stream, &mut rx, &mut inbuf)
                        .await
                    {
                        Some((f, d)) => {
                            if let Some(r) = self
                                .blocked_cmd
                                .take()
                                .and_then(|n| self.shared.cmdstats.row(&n))
                            {
                                r.calls.fetch_add(1, Ordering::Relaxed);
                                if f.is_error() {
                                    r.failed.fetch_add(1, Ordering::Relaxed);
                                }
                            }
                            self.emit_durable(f, d);
                            continue;
                        }
                        None => return,
                    }
                }
            }
            if self.flush(&mut stream).await.is_err() {
                return;
            }
            // The query buffer limit: unparsed bytes plus the arguments already taken out.
            let limit = self.opts().client_query_buffer_limit as usize;
            if inbuf.len() + parser.pending_bytes() > limit {
                log(&format!(
                    "Closing client that reached max query buffer length: id={} addr={} (qbuf={})",
                    self.entry.id,
                    self.entry.addr,
                    inbuf.len() + parser.pending_bytes()
                ));
                return;
            }
            let want = match parser.awaiting_bulk() {
                Some(n) => (n + 2)
                    .saturating_sub(inbuf.len())
                    .clamp(READ_CHUNK, BIG_READ),
                None => READ_CHUNK,
            };
            inbuf.reserve(want);
            let idle = self.idle_timeout();
            tokio::select! {
                r = stream.read_buf(&mut inbuf) => match r {
                    Ok(0) | Err(_) => return,
                    Ok(n) => {
                        self.shared.stats.net_input.fetch_add(n as u64, Ordering::Relaxed);
                    }
                },
                ev = rx.recv() => match ev {
                    Some(Event::Kill) | None => {
                        let _ = self.flush(&mut stream).await;
                        return;
                    }
                    Some(ev) => {
                        if let Some(f) = self.event_frame(ev) {
                            f.encode(self.proto, &mut self.out);
                        }
                        // Take whatever else is queued before writing.
                        while let Ok(ev) = rx.try_recv() {
                            if matches!(ev, Event::Kill) {
                                let _ = self.flush(&mut stream).await;
                                return;
                            }
                            if let Some(f) = self.event_frame(ev) {
                                f.encode(self.proto, &mut self.out);
                            }
                        }
                    }
                },
                _ = sleep_opt(idle) => {
                    return;
                }
            }
        }
    }

    /// `timeout`: idle clients are closed, except subscribers and blocked clients (Redis).
    fn idle_timeout(&mut self) -> Option<Duration> {
        let t = self.opts().timeout;
        if t == 0 || self.in_pubsub() {
            return None;
        }
        Some(Duration::from_secs(t))
    }

    async fn flush(&mut self, stream: &mut TcpStream) -> std::io::Result<()> {
        self.resolve_held().await;
        if self.out.is_empty() {
            return Ok(());
        }
        // A client that stops reading must not pin this task: a kill (output buffer limits,
        // CLIENT KILL, shutdown) ends the write.
        let r = tokio::select! {
            r = stream.write_all(&self.out) => r,
            _ = self.entry.kill.notified() => Err(std::io::Error::other("client killed")),
        };
        self.shared
            .stats
            .net_output
            .fetch_add(self.out.len() as u64, Ordering::Relaxed);
        self.out.clear();
        if self.out.capacity() > 1024 * 1024 {
            self.out.shrink_to(64 * 1024);
        }
        r
    }

    fn process(
        &mut self,
        inbuf: &mut [u8],
        pos: &mut usize,
        parser: &mut RequestParser,
    ) -> Processed {
        self.now = Instant::now();
        loop {
            let limits = ParseLimits {
                proto_max_bulk_len: self.opts().proto_max_bulk_len,
                auth_required: !self.authed && self.shared.acl.auth_required(),
            };
            match parser.next(inbuf, pos, limits) {
                Ok(Parsed::Incomplete) => return Processed::More,
                Ok(Parsed::Command(argv)) => {
                    if argv.is_empty() {
                        continue;
                    }
                    match self.execute(argv) {
                        Step::Reply(f) => self.emit(&f),
                        Step::Many(fs) => {
                            for f in &fs {
                                self.emit(f);
                            }
                        }
                        Step::Nothing => {}
                        Step::Close(f) => {
                            self.emit(&f);
                            return Processed::Close;
                        }
                        Step::Block(req) => return Processed::Block(req),
                        Step::Replicate(req) => return Processed::Replicate(req),
                        Step::Wait {
                            target,
                            num,
                            timeout_ms,
                        } => return Processed::Wait(target, num, timeout_ms),
                        Step::Durable(f, d) => self.emit_durable(f, Some(d)),
                    }
                    if self.shared.shutting_down.load(Ordering::SeqCst) {
                        return Processed::Close;
                    }
                }
                Err(e) => {
                    log(&format!(
                        "Protocol error ({}) from client: id={} addr={}",
                        e.0, self.entry.id, self.entry.addr
                    ));
                    self.reply_mode = ReplyMode::On;
                    self.emit(&Frame::err(format!("ERR {e}")));
                    return Processed::Close;
                }
            }
        }
    }

    /// Wait for a blocked command: its reply, or `None` when the connection must close.
    async fn wait_blocked(
        &mut self,
        req: Request,
        stream: &mut TcpStream,
        rx: &mut UnboundedReceiver<Event>,
        inbuf: &mut Vec<u8>,
    ) -> Option<crate::blocking::Served> {
        let db = self.session.db;
        let may_block = !self.in_exec;
        let shared = self.shared.clone();
        let timeout_reply = req.timeout_reply();
        let timeout = req.timeout_ms;
        let (id, mut waiter) = match self.shared.blocking.block(
            &self.shared.engine,
            db,
            req,
            self.proto,
            may_block,
            &|d, k| shared.watches.touch(d, k),
        ) {
            crate::blocking::Blocked::Now(f) => return Some(f),
            crate::blocking::Blocked::Wait(id, w) => (id, w),
        };
        self.shared.stats.blocked.fetch_add(1, Ordering::Relaxed);
        self.update_meta(|m| m.blocked = true);
        let deadline = (timeout > 0).then(|| Duration::from_millis(timeout));
        let result = loop {
            inbuf.reserve(READ_CHUNK);
            tokio::select! {
                r = &mut waiter => break Some(r.unwrap_or((timeout_reply.clone(), None))),
                _ = sleep_opt(deadline) => {
                    break Some(self.cancel_or_take(id, &mut waiter, timeout_reply.clone()));
                }
                ev = rx.recv() => match ev {
                    Some(Event::Unblock { error }) => {
                        let f = if error {
                            Frame::err("UNBLOCKED client unblocked via CLIENT UNBLOCK")
                        } else {
                            timeout_reply.clone()
                        };
                        break Some(self.cancel_or_take(id, &mut waiter, f));
                    }
                    Some(Event::Kill) | None => {
                        self.shared.blocking.cancel(id);
                        break None;
                    }
                    Some(ev) => {
                        if let Some(f) = self.event_frame(ev) {
                            f.encode(self.proto, &mut self.out);
                        }
                    }
                },
                r = stream.read_buf(inbuf) => match r {
                    Ok(0) | Err(_) => {
                        self.shared.blocking.cancel(id);
                        break None;
                    }
                    Ok(_) => {}
                },
            }
        };
        self.shared.stats.blocked.fetch_sub(1, Ordering::Relaxed);
        self.update_meta(|m| m.blocked = false);
        result
    }

    /// Withdraw a waiter; when it was served meanwhile, its reply wins over `instead`.
    fn cancel_or_take(
        &self,
        id: u64,
        waiter: &mut tokio::sync::oneshot::Receiver<crate::blocking::Served>,
        instead: Frame,
    ) -> crate::blocking::Served {
        if self.shared.blocking.cancel(id) {
            (instead, None)
        } else {
            waiter.try_recv().unwrap_or((instead, None))
        }
    }

    fn cleanup(&mut self) {
        let id = self.entry.id;
        self.shared.monitors.remove(id);
        self.disable_tracking();
        for c in std::mem::take(&mut self.subs) {
            self.shared.pubsub.unsubscribe(id, &c, false);
        }
        for c in std::mem::take(&mut self.psubs) {
            self.shared.pubsub.unsubscribe(id, &c, true);
        }
        for c in std::mem::take(&mut self.ssubs) {
            self.shared.pubsub.unsubscribe_shard(id, &c);
        }
        self.unwatch_all();
    }

    /// Subscribed to a channel, a pattern or a shard channel (Redis's `CLIENT_PUBSUB`).
    pub(crate) fn in_pubsub(&self) -> bool {
        !self.subs.is_empty() || !self.psubs.is_empty() || !self.ssubs.is_empty()
    }

    pub(crate) fn unwatch_all(&mut self) {
        let keys: Vec<(u32, Vec<u8>)> = self.watched.drain(..).map(|(db, k, _)| (db, k)).collect();
        self.shared.watches.unwatch(self.entry.id, &keys);
        self.watch_dirty.store(false, Ordering::SeqCst);
    }
}

async fn sleep_opt(d: Option<Duration>) {
    match d {
        Some(d) => tokio::time::sleep(d).await,
        None => std::future::pending().await,
    }
}
