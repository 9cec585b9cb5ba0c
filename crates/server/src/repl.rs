//! Replication over the wire: forkless as a primary of stock Redis replicas, and as a replica of
//! a Redis (or forkless) primary. The stream itself (offsets, backlog, ids) is the engine's
//! [`forkless::ReplLog`]; this module moves it over sockets.
//!
//! # Primary
//! A client that sends `SYNC` or `PSYNC` becomes a replica: its connection task leaves the
//! command loop ([`crate::conn`]) and runs [`serve_replica`]:
//! ```text
//!   PSYNC id off ──(backlog holds off, same id)──> +CONTINUE <id>, stream from off
//!        │
//!        └─ otherwise ─> join or start the full-sync job ──> "\n" every second while waiting
//!                        job: Engine::sync_snapshot (point-in-time, forkless) to a temp file,
//!                             cut at the start barrier: offset O, a cursor at O
//!                        ──> +FULLRESYNC <id> <O> ──> $<len> | $EOF:<mark> + RDB (+ mark)
//!                        ──> the stream from O (cursor), REPLCONF ACK read back
//! ```
//! Offsets: the RDB is the keyspace at the start barrier, where the stream stood at O (every
//! write before the barrier is in the RDB and below O, every write after it above O, because the
//! sink feeds the stream under the writer's shard locks and the barrier holds them all). The
//! replica sets its offset to O from `+FULLRESYNC`, loads the RDB and applies the bytes from O
//! on: its offset equals the primary's once it caught up. One job serves every replica that
//! asks while it runs (each clones the job's cursor at O). Replicas that ask after it finished
//! start the next one.
//!
//! # Replica
//! `REPLICAOF host port` (or `--replicaof`) starts [`link`]: the handshake of Redis 7.0
//! (`PING`, `AUTH`, `REPLCONF listening-port`, `REPLCONF capa eof capa psync2`, `PSYNC`), a
//! full sync (payload to a temp file, `Engine::load_primary_payload`) or `+CONTINUE`, then the
//! stream: every command is applied with `Engine::execute_as_primary` (no expiry, no eviction)
//! and its bytes are fed verbatim to this engine's stream, so replicas of this replica see the
//! primary's ids and offsets. `REPLCONF ACK <offset>` goes back every second and on `GETACK`.
//! Clients get `-READONLY` for writes; keys whose time passed read as missing until the
//! primary's `DEL` arrives. `REPLICAOF NO ONE` promotes (new id, the old one kept as the second).
//!
//! # Locks
//! `replicas`, `job`, `link` are leaves, never held across an `.await` or I/O.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use forkless::{Cursor, Lagged};
use forkless_keyspace::Session;
use forkless_sync::atomic::{AtomicBool, AtomicU64, Ordering};
use forkless_sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::{watch, Notify};

use crate::frame::Frame;
use crate::log::{log, warn};
use crate::parse::{ParseLimits, Parsed, RequestParser};
use crate::state::{ClientEntry, Shared};

/// What a `SYNC` / `PSYNC` asks for.
#[derive(Debug, Clone)]
pub struct SyncRequest {
    /// `PSYNC <replid> <offset>`; `None` for `SYNC`.
    pub psync: Option<(String, i64)>,
    /// The replica's `REPLCONF listening-port`.
    pub port: u16,
    /// The replica's `REPLCONF ip-address` (else its peer address).
    pub ip: Option<String>,
    /// `REPLCONF capa eof`: the payload may be sent as `$EOF:<mark>`.
    pub capa_eof: bool,
}

/// One attached replica, as INFO replication shows it.
#[derive(Debug, Clone)]
pub struct ReplicaRow {
    /// Its address.
    pub ip: String,
    /// Its listening port.
    pub port: u16,
    /// `wait_bgsave`, `send_bulk`, `online`.
    pub state: &'static str,
    /// The last acknowledged offset.
    pub ack: u64,
    /// When the last ACK arrived.
    pub last_ack: Instant,
}

/// The replica side's link state, for INFO.
#[derive(Debug, Clone)]
pub struct LinkInfo {
    /// The primary.
    pub host: String,
    /// Its port.
    pub port: u16,
    /// The link is up (streaming).
    pub up: bool,
    /// A full sync is in progress.
    pub syncing: bool,
    /// Last time bytes arrived from the primary.
    pub last_io: Instant,
    /// When the link went down.
    pub down_since: Instant,
}

struct LinkHandle {
    info: LinkInfo,
    stop: Arc<Notify>,
    stopped: Arc<AtomicBool>,
}

#[derive(Clone, Debug)]
enum JobState {
    Waiting,
    Cut { replid: String, offset: u64 },
    Done { len: u64 },
    Failed(String),
}

/// One full-sync snapshot, shared by every replica that asked while it ran.
struct SyncJob {
    state: watch::Sender<JobState>,
    cursor: Mutex<Option<Cursor>>,
    replid: Mutex<String>,
    path: PathBuf,
}

impl Drop for SyncJob {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Replication state of the server.
pub struct Replication {
    /// Woken when the stream grows.
    pub data: Arc<Notify>,
    /// Woken when a replica acknowledges.
    pub acks: Notify,
    /// Attached replicas by client id.
    pub replicas: Mutex<BTreeMap<u64, ReplicaRow>>,
    job: Mutex<Option<Arc<SyncJob>>>,
    link: Mutex<Option<LinkHandle>>,
    next: AtomicU64,
    /// Set at shutdown: a replication snapshot stops walking.
    cancel: Arc<AtomicBool>,
    /// INFO stats `sync_full`: full syncs served (each replica counts; they may share one
    /// snapshot: see `snapshots`).
    pub sync_full: AtomicU64,
    /// INFO stats `sync_partial_ok`: `+CONTINUE` answered.
    pub sync_partial_ok: AtomicU64,
    /// INFO stats `sync_partial_err`: PSYNC requests that had to fall back to a full sync.
    pub sync_partial_err: AtomicU64,
    /// Replication snapshots taken (INFO persistence `forkless_repl_snapshots`).
    pub snapshots: AtomicU64,
}

impl Default for Replication {
    fn default() -> Self {
        Replication {
            data: Arc::new(Notify::new()),
            acks: Notify::new(),
            replicas: Mutex::new(BTreeMap::new()),
            job: Mutex::new(None),
            link: Mutex::new(None),
            next: AtomicU64::new(1),
            cancel: Arc::new(AtomicBool::new(false)),
            sync_full: AtomicU64::new(0),
            sync_partial_ok: AtomicU64::new(0),
            sync_partial_err: AtomicU64::new(0),
            snapshots: AtomicU64::new(0),
        }
    }
}

impl Replication {
    /// This server follows a primary.
    pub fn is_replica(&self) -> bool {
        self.link.lock().is_some()
    }

    /// The replica side's link, for INFO.
    pub fn link_info(&self) -> Option<LinkInfo> {
        self.link.lock().as_ref().map(|l| l.info.clone())
    }

    fn update_link(&self, f: impl FnOnce(&mut LinkInfo)) {
        if let Some(l) = self.link.lock().as_mut() {
            f(&mut l.info);
        }
    }

    /// Shutdown: stop a running replication snapshot and the link to a primary.
    pub fn shutdown(&self) {
        self.cancel.store(true, Ordering::SeqCst);
        if let Some(l) = self.link.lock().take() {
            l.stopped.store(true, Ordering::SeqCst);
            l.stop.notify_waiters();
            l.stop.notify_one();
        }
    }

    /// Replicas that acknowledged at least `offset`.
    pub fn acked(&self, offset: u64) -> usize {
        self.replicas
            .lock()
            .values()
            .filter(|r| r.state == "online" && r.ack >= offset)
            .count()
    }
}

/// Install the stream's listener (wakes replica tasks) and start the cron: the periodic `PING`
/// of `repl-ping-replica-period`, and the link when `replicaof` is set.
pub fn start(shared: &Arc<Shared>) {
    let data = shared.repl.data.clone();
    shared
        .engine
        .replication()
        .set_listener(std::sync::Arc::new(move || data.notify_waiters()));
    let s = shared.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        let mut secs = 0u64;
        loop {
            tick.tick().await;
            secs += 1;
            if s.shutting_down.load(Ordering::SeqCst) {
                return;
            }
            let period = s.engine.config().int("repl-ping-replica-period").max(1) as u64;
            if secs.is_multiple_of(period) && !s.repl.replicas.lock().is_empty() {
                s.engine.replication().feed_command(&[b"PING"]);
            }
        }
    });
    if let Some((host, port)) = shared.engine.config().replicaof() {
        set_primary(shared, host, port);
    }
}

/// `REPLICAOF host port`: follow that primary (replacing any link).
pub fn set_primary(shared: &Arc<Shared>, host: String, port: u16) {
    stop_link(shared);
    shared.engine.keyspace().set_replica(true);
    let stop = Arc::new(Notify::new());
    let stopped = Arc::new(AtomicBool::new(false));
    *shared.repl.link.lock() = Some(LinkHandle {
        info: LinkInfo {
            host: host.clone(),
            port,
            up: false,
            syncing: false,
            last_io: Instant::now(),
            down_since: Instant::now(),
        },
        stop: stop.clone(),
        stopped: stopped.clone(),
    });
    log(&format!("Connecting to MASTER {host}:{port}"));
    let s = shared.clone();
    tokio::spawn(async move {
        loop {
            let r = tokio::select! {
                r = link(&s, &host, port) => r,
                _ = stop.notified() => Ok(()),
            };
            if stopped.load(Ordering::SeqCst) || s.shutting_down.load(Ordering::SeqCst) {
                return;
            }
            s.engine.replication().unfollow();
            s.repl.update_link(|l| {
                if l.up {
                    l.down_since = Instant::now();
                }
                l.up = false;
                l.syncing = false;
            });
            if let Err(e) = r {
                warn(&format!("Connection with MASTER {host}:{port} lost: {e}"));
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = stop.notified() => return,
            }
        }
    });
}

fn stop_link(shared: &Arc<Shared>) {
    if let Some(l) = shared.repl.link.lock().take() {
        l.stopped.store(true, Ordering::SeqCst);
        l.stop.notify_waiters();
        l.stop.notify_one();
    }
}

/// `REPLICAOF NO ONE`: stop following; this server becomes a primary.
pub fn promote(shared: &Arc<Shared>) {
    let was = shared.repl.link.lock().is_some();
    stop_link(shared);
    if was {
        shared.engine.set_replica(false);
        log("MASTER MODE enabled (user request from 'id=? addr=?')");
    }
}

/// `REPLICAOF` / `SLAVEOF`.
pub fn replicaof_command(shared: &Arc<Shared>, argv: &[Vec<u8>]) -> Frame {
    if argv.len() != 3 {
        return Frame::err(format!(
            "ERR wrong number of arguments for '{}' command",
            String::from_utf8_lossy(&argv[0]).to_ascii_lowercase()
        ));
    }
    if argv[1].eq_ignore_ascii_case(b"no") && argv[2].eq_ignore_ascii_case(b"one") {
        promote(shared);
        return Frame::ok();
    }
    let host = String::from_utf8_lossy(&argv[1]).into_owned();
    let port = match std::str::from_utf8(&argv[2])
        .ok()
        .and_then(|p| p.parse::<i64>().ok())
    {
        Some(p) if (0..=65535).contains(&p) => p as u16,
        _ => return Frame::err("ERR Invalid master port"),
    };
    if let Some(l) = shared.repl.link_info() {
        if l.host == host && l.port == port {
            return Frame::Simple("OK Already connected to specified master".into());
        }
    }
    set_primary(shared, host, port);
    Frame::ok()
}

/// `ROLE` (Redis 7.0 `roleCommand`): `master <offset> [[ip port ack]...]`, or `slave <host>
/// <port> <state> <offset>`.
pub fn role(shared: &Arc<Shared>) -> Frame {
    let offset = shared.engine.replication().offset() as i64;
    match shared.repl.link_info() {
        None => {
            let replicas = shared
                .repl
                .replicas
                .lock()
                .values()
                .filter(|r| r.state == "online")
                .map(|r| {
                    Frame::Array(vec![
                        Frame::bulk(r.ip.clone()),
                        Frame::bulk(r.port.to_string()),
                        Frame::bulk(r.ack.to_string()),
                    ])
                })
                .collect();
            Frame::Array(vec![
                Frame::bulk("master"),
                Frame::Int(offset),
                Frame::Array(replicas),
            ])
        }
        Some(l) => {
            let state = if l.up {
                "connected"
            } else if l.syncing {
                "sync"
            } else {
                "connect"
            };
            Frame::Array(vec![
                Frame::bulk("slave"),
                Frame::bulk(l.host),
                Frame::Int(i64::from(l.port)),
                Frame::bulk(state),
                Frame::Int(if l.up { offset } else { -1 }),
            ])
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Primary side
// ---------------------------------------------------------------------------------------------

/// Serve one replica on `stream` until it disconnects, lags beyond its limit or times out.
/// `client_id` names its INFO row; `peer` its address.
pub async fn serve_replica(
    shared: Arc<Shared>,
    stream: TcpStream,
    client_id: u64,
    peer: String,
    req: SyncRequest,
    kill: Arc<ClientEntry>,
) {
    let (mut rd, mut wr) = stream.into_split();
    let ip = req.ip.clone().unwrap_or_else(|| {
        peer.rsplit_once(':')
            .map_or(peer.clone(), |(h, _)| h.to_string())
    });
    let row = |state| ReplicaRow {
        ip: ip.clone(),
        port: req.port,
        state,
        ack: 0,
        last_ack: Instant::now(),
    };
    let repl = shared.engine.replication().clone();
    // Partial resync: the id matches and the backlog holds the offset.
    let mut cursor = None;
    if let Some((id, off)) = &req.psync {
        if *off >= 1 {
            if let Some(c) = repl.psync(id, (*off - 1) as u64) {
                let line = format!("+CONTINUE {}\r\n", repl.replid());
                if wr.write_all(line.as_bytes()).await.is_err() {
                    return;
                }
                log(&format!(
                    "Partial resynchronization request from {ip}:{} accepted. Sending {} bytes of backlog starting from offset {off}.",
                    req.port,
                    c.lag()
                ));
                cursor = Some(c);
                shared.repl.sync_partial_ok.fetch_add(1, Ordering::Relaxed);
            }
        }
        if cursor.is_none() && id != "?" {
            shared.repl.sync_partial_err.fetch_add(1, Ordering::Relaxed);
        }
    }
    let _row_guard = RowGuard {
        shared: shared.clone(),
        id: client_id,
    };
    // After a payload in the `$EOF:` form the stream starts only once the replica acknowledged
    // (Redis's `repl_start_cmd_stream_on_ack`): it finds the end of the payload by the mark
    // being the last bytes it read, so nothing may follow the mark until it has loaded.
    let first_ack = req.capa_eof && req.psync.is_some() && cursor.is_none();
    let cursor = match cursor {
        Some(c) => {
            shared.repl.replicas.lock().insert(client_id, row("online"));
            c
        }
        None => {
            shared
                .repl
                .replicas
                .lock()
                .insert(client_id, row("wait_bgsave"));
            shared.repl.sync_full.fetch_add(1, Ordering::Relaxed);
            match full_sync(&shared, &mut wr, &req, client_id, &ip, &kill).await {
                Some(c) => c,
                None => return,
            }
        }
    };
    stream_to_replica(
        &shared, &mut rd, &mut wr, cursor, client_id, &kill, first_ack,
    )
    .await;
}

/// Removes the INFO row when the replica task ends.
struct RowGuard {
    shared: Arc<Shared>,
    id: u64,
}

impl Drop for RowGuard {
    fn drop(&mut self) {
        self.shared.repl.replicas.lock().remove(&self.id);
        self.shared.repl.acks.notify_waiters();
    }
}

fn set_state(shared: &Shared, id: u64, state: &'static str) {
    if let Some(r) = shared.repl.replicas.lock().get_mut(&id) {
        r.state = state;
        r.last_ack = Instant::now();
    }
}

/// Join the running full-sync job or start one; send `+FULLRESYNC` and the payload. Returns
/// the cursor at the cut.
async fn full_sync(
    shared: &Arc<Shared>,
    wr: &mut OwnedWriteHalf,
    req: &SyncRequest,
    id: u64,
    ip: &str,
    kill: &ClientEntry,
) -> Option<Cursor> {
    log(&format!(
        "Replica {ip}:{} asks for synchronization; full resync (forkless point-in-time snapshot)",
        req.port
    ));
    let job = {
        let mut g = shared.repl.job.lock();
        let joinable = g
            .as_ref()
            .is_some_and(|j| matches!(*j.state.borrow(), JobState::Waiting | JobState::Cut { .. }));
        if joinable {
            g.clone()?
        } else {
            let n = shared.repl.next.fetch_add(1, Ordering::Relaxed);
            let dir = shared.engine.dir().to_path_buf();
            let path = dir.join(format!("temp-sync-{}-{n}.rdb", std::process::id()));
            let (tx, _) = watch::channel(JobState::Waiting);
            let job = Arc::new(SyncJob {
                state: tx,
                cursor: Mutex::new(None),
                replid: Mutex::new(String::new()),
                path: path.clone(),
            });
            *g = Some(job.clone());
            shared.repl.snapshots.fetch_add(1, Ordering::Relaxed);
            let engine = shared.engine.clone();
            let s2 = shared.clone();
            let j = job.clone();
            let cancel = shared.repl.cancel.clone();
            std::thread::Builder::new()
                .name("forkless-sync".into())
                .spawn(move || {
                    let j2 = j.clone();
                    let r = engine.sync_snapshot(
                        &path,
                        Box::new(move |cursor, replid, offset| {
                            *j2.cursor.lock() = Some(cursor);
                            *j2.replid.lock() = replid.to_string();
                            j2.state.send_replace(JobState::Cut {
                                replid: replid.to_string(),
                                offset,
                            });
                        }),
                        &cancel,
                    );
                    match r {
                        Ok(fs) => {
                            log(&format!(
                                "Forkless snapshot for replication done: {} keys, {} bytes, {:.3} s",
                                fs.result.keys,
                                fs.len,
                                fs.result.duration.as_secs_f64()
                            ));
                            j.state.send_replace(JobState::Done { len: fs.len });
                        }
                        Err(e) => {
                            warn(&format!("Snapshot for replication failed: {e}"));
                            j.state.send_replace(JobState::Failed(e.to_string()));
                        }
                    }
                    // Replicas that ask from now on start the next job; this one (and its
                    // cursor at the cut) lives until its last replica has cloned the cursor
                    // and sent the file.
                    let mut g = s2.repl.job.lock();
                    if g.as_ref().is_some_and(|x| Arc::ptr_eq(x, &j)) {
                        *g = None;
                    }
                })
                .ok()?;
            job
        }
    };
    let mut rx = job.state.subscribe();
    let mut cursor: Option<Cursor> = None;
    loop {
        let st = rx.borrow_and_update().clone();
        if cursor.is_none() && matches!(st, JobState::Cut { .. } | JobState::Done { .. }) {
            // The cut is known: take a cursor at it and answer +FULLRESYNC.
            let c = job.cursor.lock().as_ref().and_then(Cursor::try_clone)?;
            let (replid, offset) = match &st {
                JobState::Cut { replid, offset } => (replid.clone(), *offset),
                _ => (job.replid.lock().clone(), c.position()),
            };
            // Plain SYNC (the pre-PSYNC protocol) gets no +FULLRESYNC line, as in Redis.
            if req.psync.is_some() {
                let line = format!("+FULLRESYNC {replid} {offset}\r\n");
                if wr.write_all(line.as_bytes()).await.is_err() {
                    return None;
                }
            }
            cursor = Some(c);
        }
        match st {
            JobState::Failed(e) => {
                warn(&format!(
                    "Full sync of replica {ip}:{} aborted: {e}",
                    req.port
                ));
                return None;
            }
            JobState::Done { len } => {
                set_state(shared, id, "send_bulk");
                let c = cursor.take()?;
                if send_payload(wr, &job.path, len, req.capa_eof && req.psync.is_some())
                    .await
                    .is_err()
                {
                    return None;
                }
                log(&format!(
                    "Synchronization with replica {ip}:{} succeeded",
                    req.port
                ));
                set_state(shared, id, "online");
                return Some(c);
            }
            JobState::Waiting | JobState::Cut { .. } => {}
        }
        tokio::select! {
            r = rx.changed() => {
                if r.is_err() {
                    return None;
                }
            }
            _ = tokio::time::sleep(Duration::from_secs(1)) => {
                // A newline keeps the replica's link alive while the snapshot runs (Redis
                // sends these to replicas waiting for their RDB).
                if wr.write_all(b"\n").await.is_err() {
                    return None;
                }
            }
            _ = kill.kill.notified() => return None,
        }
    }
}

/// `$<len>\r\n` + the file, or `$EOF:<mark>\r\n` + the file + the mark (diskless form).
async fn send_payload(
    wr: &mut OwnedWriteHalf,
    path: &std::path::Path,
    len: u64,
    eof_form: bool,
) -> std::io::Result<()> {
    let mut f = tokio::fs::File::open(path).await?;
    let mark = if eof_form {
        // 40 random hex characters, as a run id.
        let m: String = crate::run_id();
        wr.write_all(format!("$EOF:{m}\r\n").as_bytes()).await?;
        Some(m)
    } else {
        wr.write_all(format!("${len}\r\n").as_bytes()).await?;
        None
    };
    let mut buf = vec![0u8; 256 * 1024];
    let mut sent = 0u64;
    while sent < len {
        let n = f.read(&mut buf).await?;
        if n == 0 {
            return Err(std::io::Error::other("sync file shorter than announced"));
        }
        wr.write_all(&buf[..n]).await?;
        sent += n as u64;
    }
    if let Some(m) = mark {
        wr.write_all(m.as_bytes()).await?;
    }
    Ok(())
}

/// The online phase: send the stream from `cursor`, read `REPLCONF ACK`s, time out a silent
/// replica (`repl-timeout`).
async fn stream_to_replica(
    shared: &Arc<Shared>,
    rd: &mut OwnedReadHalf,
    wr: &mut OwnedWriteHalf,
    cursor: Cursor,
    id: u64,
    kill: &ClientEntry,
    mut wait_first_ack: bool,
) {
    let mut inbuf: Vec<u8> = Vec::with_capacity(4096);
    let mut parser = RequestParser::new();
    let data = shared.repl.data.clone();
    loop {
        let notified = data.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let next = if wait_first_ack {
            Ok(Vec::new())
        } else {
            cursor.read(256 * 1024)
        };
        match next {
            Err(Lagged) => {
                warn("Client scheduled to be closed ASAP for overcoming of output buffer limits (replica).");
                return;
            }
            Ok(b) if !b.is_empty() => {
                let r = tokio::select! {
                    r = wr.write_all(&b) => r,
                    _ = kill.kill.notified() => return,
                };
                if r.is_err() {
                    return;
                }
                shared
                    .stats
                    .net_output
                    .fetch_add(b.len() as u64, Ordering::Relaxed);
                continue;
            }
            Ok(_) => {}
        }
        inbuf.reserve(4096);
        tokio::select! {
            _ = &mut notified => {}
            r = rd.read_buf(&mut inbuf) => {
                match r {
                    Ok(0) | Err(_) => {
                        log("Connection with replica lost.");
                        return;
                    }
                    Ok(_) => {}
                }
                let mut pos = 0;
                let limits = ParseLimits { proto_max_bulk_len: 1 << 20, auth_required: false };
                while let Ok(Parsed::Command(argv)) = parser.next(&inbuf, &mut pos, limits) {
                    if argv.len() >= 3
                        && argv[0].eq_ignore_ascii_case(b"replconf")
                        && argv[1].eq_ignore_ascii_case(b"ack")
                    {
                        if let Some(off) = std::str::from_utf8(&argv[2]).ok().and_then(|s| s.parse::<u64>().ok()) {
                            if let Some(r) = shared.repl.replicas.lock().get_mut(&id) {
                                r.ack = r.ack.max(off);
                                r.last_ack = Instant::now();
                            }
                            wait_first_ack = false;
                            shared.repl.acks.notify_waiters();
                        }
                    }
                }
                inbuf.drain(..pos);
                if inbuf.len() > 1 << 20 {
                    return;
                }
            }
            _ = tokio::time::sleep(Duration::from_secs(1)) => {
                let timeout = shared.engine.config().int("repl-timeout").max(1) as u64;
                let last = shared.repl.replicas.lock().get(&id).map(|r| r.last_ack);
                if last.is_some_and(|t| t.elapsed() > Duration::from_secs(timeout)) {
                    warn("Disconnecting timedout replica (streaming sync)");
                    return;
                }
            }
            _ = kill.kill.notified() => return,
        }
    }
}

/// `WAIT numreplicas timeout`: feed `REPLCONF GETACK *` and wait until `num` replicas
/// acknowledged `target` (this client's writes: the stream's offset when WAIT ran), or the
/// timeout (ms, 0 = forever). Returns how many did.
pub async fn wait_acks(shared: &Arc<Shared>, target: u64, num: usize, timeout_ms: u64) -> i64 {
    let n = shared.repl.acked(target);
    if n >= num {
        return n as i64;
    }
    shared
        .engine
        .replication()
        .feed_command(&[b"REPLCONF", b"GETACK", b"*"]);
    let deadline = (timeout_ms > 0).then(|| Instant::now() + Duration::from_millis(timeout_ms));
    loop {
        let notified = shared.repl.acks.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let n = shared.repl.acked(target);
        if n >= num {
            return n as i64;
        }
        match deadline {
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return n as i64;
                }
                tokio::select! {
                    _ = &mut notified => {}
                    _ = tokio::time::sleep(left) => return shared.repl.acked(target) as i64,
                }
            }
            None => notified.await,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Replica side
// ---------------------------------------------------------------------------------------------

async fn read_line(s: &mut TcpStream, buf: &mut Vec<u8>) -> Result<Vec<u8>, String> {
    loop {
        if let Some(i) = buf.iter().position(|&b| b == b'\n') {
            let mut line: Vec<u8> = buf.drain(..=i).collect();
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            return Ok(line);
        }
        if buf.len() > 64 * 1024 {
            return Err("line too long from MASTER".into());
        }
        let n = tokio::time::timeout(Duration::from_secs(60), s.read_buf(buf))
            .await
            .map_err(|_| "timeout reading from MASTER".to_string())?
            .map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("connection closed by MASTER".into());
        }
    }
}

async fn command(s: &mut TcpStream, buf: &mut Vec<u8>, argv: &[&[u8]]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    forkless_resp::encode_command(&mut out, argv);
    s.write_all(&out).await.map_err(|e| e.to_string())?;
    loop {
        let l = read_line(s, buf).await?;
        if !l.is_empty() {
            return Ok(l);
        }
    }
}

/// One connection to the primary: handshake, sync, stream. Returns when the link breaks.
async fn link(shared: &Arc<Shared>, host: &str, port: u16) -> Result<(), String> {
    let mut s = tokio::time::timeout(Duration::from_secs(10), TcpStream::connect((host, port)))
        .await
        .map_err(|_| "timeout connecting".to_string())?
        .map_err(|e| format!("Error condition on socket for SYNC: {e}"))?;
    let _ = s.set_nodelay(true);
    log("MASTER <-> REPLICA sync started");
    let mut buf = Vec::new();
    let pong = command(&mut s, &mut buf, &[b"PING"]).await?;
    if pong.first() == Some(&b'-')
        && !pong.starts_with(b"-NOAUTH")
        && !pong.starts_with(b"-NOPERM")
        && !pong.starts_with(b"-ERR operation not permitted")
    {
        return Err(format!(
            "Error reply to PING from master: '{}'",
            String::from_utf8_lossy(&pong)
        ));
    }
    log("Master replied to PING, replication can continue...");
    let cfg = shared.engine.config();
    let auth = cfg.get("masterauth").unwrap_or_default();
    if !auth.is_empty() {
        let user = cfg.get("masteruser").unwrap_or_default();
        let r = if user.is_empty() {
            command(&mut s, &mut buf, &[b"AUTH", auth.as_bytes()]).await?
        } else {
            command(
                &mut s,
                &mut buf,
                &[b"AUTH", user.as_bytes(), auth.as_bytes()],
            )
            .await?
        };
        if r.first() == Some(&b'-') {
            return Err(format!(
                "Unable to AUTH to MASTER: {}",
                String::from_utf8_lossy(&r)
            ));
        }
    }
    let my_port = shared.tcp_port.load(Ordering::Relaxed).to_string();
    let r = command(
        &mut s,
        &mut buf,
        &[b"REPLCONF", b"listening-port", my_port.as_bytes()],
    )
    .await?;
    if r.first() == Some(&b'-') {
        warn(&format!(
            "(Non critical) Master does not understand REPLCONF listening-port: {}",
            String::from_utf8_lossy(&r)
        ));
    }
    let _ = command(
        &mut s,
        &mut buf,
        &[b"REPLCONF", b"capa", b"eof", b"capa", b"psync2"],
    )
    .await?;
    let repl = shared.engine.replication().clone();
    let info = repl.info();
    let (id, off) = if info.active && info.offset > 0 {
        (info.replid.clone(), (info.offset + 1).to_string())
    } else {
        ("?".to_string(), "-1".to_string())
    };
    let mut out = Vec::new();
    forkless_resp::encode_command(&mut out, &[b"PSYNC", id.as_bytes(), off.as_bytes()]);
    s.write_all(&out).await.map_err(|e| e.to_string())?;
    let reply = loop {
        let l = read_line(&mut s, &mut buf).await?;
        if !l.is_empty() {
            break l;
        }
    };
    let reply = String::from_utf8_lossy(&reply).into_owned();
    let mut db = 0u32;
    if let Some(rest) = reply.strip_prefix("+FULLRESYNC ") {
        let mut it = rest.split(' ');
        let replid = it.next().unwrap_or_default().to_string();
        let offset: u64 = it
            .next()
            .and_then(|o| o.parse().ok())
            .ok_or_else(|| format!("bad FULLRESYNC reply '{reply}'"))?;
        log(&format!("Full resync from master: {replid}:{offset}"));
        shared.repl.update_link(|l| l.syncing = true);
        let path = receive_payload(shared, &mut s, &mut buf).await?;
        let engine = shared.engine.clone();
        let p = path.clone();
        let loaded =
            tokio::task::spawn_blocking(move || engine.load_primary_payload(&p, &replid, offset))
                .await
                .map_err(|e| e.to_string())?;
        let _ = std::fs::remove_file(&path);
        let (keys, stream_db) = loaded.map_err(|e| format!("loading the MASTER payload: {e}"))?;
        log(&format!(
            "MASTER <-> REPLICA sync: Finished with success ({keys} keys)"
        ));
        shared.after_db_change(crate::state::DbChange::Whole(None));
        db = stream_db;
    } else if let Some(rest) = reply.strip_prefix("+CONTINUE") {
        let new_id = rest.trim();
        if !new_id.is_empty() {
            repl.primary_changed_id(new_id);
        }
        repl.resume_following();
        shared.engine.keyspace().set_replica(true);
        log("Successful partial resynchronization with master. MASTER <-> REPLICA sync: Master accepted a Partial Resynchronization.");
    } else {
        return Err(format!("Unexpected reply to PSYNC from master: {reply}"));
    }
    shared.repl.update_link(|l| {
        l.up = true;
        l.syncing = false;
        l.last_io = Instant::now();
    });
    apply_stream(shared, s, buf, db).await
}

/// Receive the RDB payload (`$<len>` or `$EOF:<mark>`) into a temp file in `dir`.
async fn receive_payload(
    shared: &Arc<Shared>,
    s: &mut TcpStream,
    buf: &mut Vec<u8>,
) -> Result<PathBuf, String> {
    let header = loop {
        let l = read_line(s, buf).await?;
        if !l.is_empty() {
            break l;
        }
        shared.repl.update_link(|l| l.last_io = Instant::now());
    };
    if header.first() == Some(&b'-') {
        return Err(format!(
            "MASTER aborted replication with an error: {}",
            String::from_utf8_lossy(&header)
        ));
    }
    if header.first() != Some(&b'$') {
        return Err(format!(
            "Bad protocol from MASTER, the first byte is not '$' (we received '{}')",
            String::from_utf8_lossy(&header)
        ));
    }
    let n = shared.repl.next.fetch_add(1, Ordering::Relaxed);
    let path = shared
        .engine
        .dir()
        .join(format!("temp-sync-recv-{}-{n}.rdb", std::process::id()));
    let mut f = tokio::fs::File::create(&path)
        .await
        .map_err(|e| format!("creating {}: {e}", path.display()))?;
    let rest = &header[1..];
    let res: Result<(), String> = async {
        if let Some(mark) = rest.strip_prefix(b"EOF:") {
            if mark.len() != 40 {
                return Err("bad EOF mark from MASTER".into());
            }
            // Everything up to the mark; hold back the last 40 bytes until more arrive.
            loop {
                if buf.len() >= 40 && buf.ends_with(mark) {
                    let body = buf.len() - 40;
                    f.write_all(&buf[..body]).await.map_err(|e| e.to_string())?;
                    buf.clear();
                    break;
                }
                if buf.len() > 64 * 1024 {
                    let keep = buf.len() - 40;
                    f.write_all(&buf[..keep]).await.map_err(|e| e.to_string())?;
                    buf.drain(..keep);
                }
                let n = tokio::time::timeout(Duration::from_secs(60), s.read_buf(buf))
                    .await
                    .map_err(|_| "timeout receiving the payload".to_string())?
                    .map_err(|e| e.to_string())?;
                if n == 0 {
                    return Err("connection lost during the payload".into());
                }
            }
        } else {
            let len: u64 = std::str::from_utf8(rest)
                .ok()
                .and_then(|x| x.parse().ok())
                .ok_or("bad payload length from MASTER")?;
            let mut left = len;
            loop {
                let take = (buf.len() as u64).min(left) as usize;
                f.write_all(&buf[..take]).await.map_err(|e| e.to_string())?;
                buf.drain(..take);
                left -= take as u64;
                if left == 0 {
                    break;
                }
                let n = tokio::time::timeout(Duration::from_secs(60), s.read_buf(buf))
                    .await
                    .map_err(|_| "timeout receiving the payload".to_string())?
                    .map_err(|e| e.to_string())?;
                if n == 0 {
                    return Err("connection lost during the payload".into());
                }
            }
        }
        f.flush().await.map_err(|e| e.to_string())?;
        Ok(())
    }
    .await;
    if let Err(e) = res {
        let _ = std::fs::remove_file(&path);
        return Err(e);
    }
    Ok(path)
}

/// A MULTI block of the primary's stream: the queued commands and the block's bytes so far.
type Queued = (Vec<Vec<Vec<u8>>>, Vec<u8>);

fn db_arg(a: &[u8]) -> Option<u32> {
    std::str::from_utf8(a).ok()?.parse().ok()
}

/// Apply the primary's stream: every command through `Engine::execute_as_primary`, its bytes
/// fed verbatim to this engine's stream; `REPLCONF ACK` every second and on `GETACK`.
async fn apply_stream(
    shared: &Arc<Shared>,
    s: TcpStream,
    mut buf: Vec<u8>,
    db: u32,
) -> Result<(), String> {
    let (mut rd, mut wr) = s.into_split();
    let repl = shared.engine.replication().clone();
    let mut session = Session { db };
    let mut parser = RequestParser::new();
    let mut start = 0usize;
    let mut pos = 0usize;
    // MULTI ... EXEC from the primary: the queued commands and their bytes.
    let mut multi: Option<Queued> = None;
    let limits = ParseLimits {
        proto_max_bulk_len: u64::MAX,
        auth_required: false,
    };
    let mut ack_tick = tokio::time::interval(Duration::from_secs(1));
    let mut last_io = Instant::now();
    loop {
        loop {
            let parsed = parser
                .next(&buf, &mut pos, limits)
                .map_err(|e| format!("protocol error from MASTER: {}", e.0))?;
            let argv = match parsed {
                Parsed::Incomplete => break,
                Parsed::Command(a) => a,
            };
            let raw_end = pos;
            let raw = &buf[start..raw_end];
            start = raw_end;
            if argv.is_empty() {
                repl.feed_raw(raw, None);
                continue;
            }
            let name = String::from_utf8_lossy(&argv[0]).to_ascii_lowercase();
            if let Some((q, bytes)) = &mut multi {
                bytes.extend_from_slice(raw);
                if name == "exec" {
                    let (q, bytes) = multi.take().unwrap_or_default();
                    let cmds: Vec<Vec<&[u8]>> = q
                        .iter()
                        .map(|c| c.iter().map(Vec::as_slice).collect())
                        .collect();
                    let refs: Vec<&[&[u8]]> = cmds.iter().map(Vec::as_slice).collect();
                    let before = session.db;
                    let (_, taken) =
                        forkless::replication::with_primary_bytes(&bytes, None, || {
                            shared.engine.execute_multi_as_primary(&mut session, &refs)
                        });
                    if !taken {
                        let db_after = (session.db != before).then_some(session.db);
                        repl.feed_raw(&bytes, db_after);
                    }
                    wake(shared, &q, before);
                } else if name == "discard" {
                    let (_, bytes) = multi.take().unwrap_or_default();
                    repl.feed_raw(&bytes, None);
                } else {
                    q.push(argv);
                }
                continue;
            }
            match name.as_str() {
                "multi" => multi = Some((Vec::new(), raw.to_vec())),
                "ping" => repl.feed_raw(raw, None),
                "publish" | "spublish" if argv.len() == 3 => {
                    let limit = shared.opts.lock().pubsub_limit;
                    if name == "spublish" {
                        shared.pubsub.publish_shard(&argv[1], &argv[2], &limit);
                    } else {
                        shared.pubsub.publish(&argv[1], &argv[2], &limit);
                    }
                    repl.feed_raw(raw, None);
                }
                "select" => {
                    if let Some(d) = argv.get(1).and_then(|a| db_arg(a)) {
                        session.db = d;
                    }
                    repl.feed_raw(raw, Some(session.db));
                }
                "replconf" => {
                    let getack = argv
                        .get(1)
                        .is_some_and(|a| a.eq_ignore_ascii_case(b"getack"));
                    if getack {
                        let off = repl.offset().to_string();
                        let mut out = Vec::new();
                        forkless_resp::encode_command(
                            &mut out,
                            &[b"REPLCONF", b"ACK", off.as_bytes()],
                        );
                        wr.write_all(&out).await.map_err(|e| e.to_string())?;
                    }
                    repl.feed_raw(raw, None);
                }
                _ => {
                    let refs: Vec<&[u8]> = argv.iter().map(Vec::as_slice).collect();
                    let before = session.db;
                    let (reply, taken) =
                        forkless::replication::with_primary_bytes(raw, None, || {
                            shared.engine.execute_as_primary(&mut session, &refs)
                        });
                    if !taken {
                        repl.feed_raw(raw, None);
                    }
                    if let forkless::Reply::Error(e) = reply {
                        warn(&format!("Error applying the MASTER's '{name}': {e}"));
                    }
                    wake(shared, std::slice::from_ref(&argv), before);
                }
            }
        }
        // Keep only the command in progress.
        if start > 0 {
            buf.drain(..start);
            pos -= start;
            start = 0;
        }
        buf.reserve(16 * 1024);
        tokio::select! {
            r = rd.read_buf(&mut buf) => {
                match r {
                    Ok(0) => return Err("connection closed by MASTER".into()),
                    Err(e) => return Err(e.to_string()),
                    Ok(n) => {
                        shared.stats.net_input.fetch_add(n as u64, Ordering::Relaxed);
                        last_io = Instant::now();
                        shared.repl.update_link(|l| l.last_io = last_io);
                    }
                }
            }
            _ = ack_tick.tick() => {
                let off = repl.offset().to_string();
                let mut out = Vec::new();
                forkless_resp::encode_command(&mut out, &[b"REPLCONF", b"ACK", off.as_bytes()]);
                wr.write_all(&out).await.map_err(|e| e.to_string())?;
                let timeout = shared.engine.config().int("repl-timeout").max(1) as u64;
                if last_io.elapsed() > Duration::from_secs(timeout) {
                    return Err("MASTER timeout: no data nor PING received...".into());
                }
            }
        }
    }
}

/// After applying the primary's commands: wake WATCHers and blocked clients of their keys.
fn wake(shared: &Arc<Shared>, cmds: &[Vec<Vec<u8>>], db: u32) {
    for argv in cmds {
        let Some(spec) = shared.table.lookup(&argv[0]) else {
            continue;
        };
        if !spec.is_write() {
            continue;
        }
        if spec.flags & forkless_keyspace::command::ALL_SHARDS != 0 {
            shared.after_db_change(crate::state::DbChange::Whole(None));
            continue;
        }
        let keys: Vec<&[u8]> = spec
            .key_indices(argv.len())
            .map(|i| argv[i].as_slice())
            .collect();
        shared.after_write(db, &keys);
    }
}
