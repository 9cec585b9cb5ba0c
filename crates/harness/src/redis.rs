//! The comparison run against redis-server: the same dataset (pipelined loader) and the same
//! random writes from W client threads over loopback, an idle phase, then `BGSAVE` (fork +
//! copy-on-write child), reporting latency per phase, the fork time (`INFO stats
//! latest_fork_usec`), the BGSAVE duration and `rdb_last_cow_size` (INFO fields as documented
//! at <https://redis.io/docs/latest/commands/info/>).
//!
//! The server is a child process on 127.0.0.1 and a free port ([`forkless_redis_proc::Launch`]),
//! with persistence off (`--save "" --appendonly no`) so only our `BGSAVE` forks; it is killed on
//! drop. The client ([`Conn`]) speaks RESP2, one request at a time per connection except for the
//! loader, which pipelines.

use std::path::Path;
use std::time::{Duration, Instant};

use forkless_sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use forkless_sync::{thread, Arc};

use crate::hist::{Recorder, Summary, WindowPoint};
use crate::run::{Event, Phase};
use crate::workload::{Dataset, WriteGen};

/// The blocking RESP2 client and its reply type (the protocol crate's).
pub use forkless_redis_proc::{Conn, Process, Reply};
use forkless_redis_proc::{Launch, LaunchError};

/// Start `redis-server` with persistence off and its files in `dir`, ready within 10 s.
/// `Ok(None)` when it is not installed.
pub fn start(dir: &Path) -> Result<Option<Process>, String> {
    match Launch::redis_server(dir)
        .args(["--appendonly", "no", "--loglevel", "warning"])
        .ready_within(Duration::from_secs(10))
        .start()
    {
        Ok(p) => Ok(Some(p)),
        Err(LaunchError::NotInstalled(_)) => Ok(None),
        Err(e) => Err(format!("starting redis-server: {e}")),
    }
}

/// What the redis-server run measured.
#[derive(Clone, Debug)]
pub struct RedisReport {
    /// `redis_version` of the server.
    pub version: String,
    /// Keys after loading (`DBSIZE`).
    pub keys: u64,
    /// `used_memory_dataset` after loading, bytes.
    pub dataset_bytes: u64,
    /// `used_memory_rss` after loading, bytes.
    pub rss_bytes: u64,
    /// Load time (pipelined).
    pub load_seconds: f64,
    /// idle, bgsave.
    pub phases: Vec<Phase>,
    /// `latest_fork_usec`.
    pub fork_usec: u64,
    /// Wall time from `BGSAVE` to `rdb_bgsave_in_progress:0`, seconds.
    pub bgsave_seconds: f64,
    /// `rdb_last_cow_size`, bytes (memory the child's copy-on-write duplicated).
    pub cow_bytes: u64,
    /// `rdb_last_bgsave_status`.
    pub bgsave_status: String,
    /// Size of the dump written, bytes.
    pub rdb_bytes: u64,
    /// p99 per window (seconds since the writers started).
    pub timeline: Vec<WindowPoint>,
}

fn io(what: &str) -> impl Fn(std::io::Error) -> String + '_ {
    move |e| format!("redis {what}: {e}")
}

/// Load `dataset` into the server with pipelines of 1,000 commands.
pub fn load(port: u16, dataset: Dataset, on_event: &(dyn Fn(Event) + Sync)) -> Result<(), String> {
    let mut c = Conn::connect(port).map_err(io("connect"))?;
    let mut i = 0;
    while i < dataset.keys {
        let end = (i + 1000).min(dataset.keys);
        for k in i..end {
            c.queue(&dataset.command(k));
        }
        c.flush().map_err(io("load"))?;
        for k in i..end {
            if let Reply::Error(e) = c.read_reply().map_err(io("load"))? {
                return Err(format!(
                    "redis load of key:{k}: {}",
                    String::from_utf8_lossy(&e)
                ));
            }
        }
        i = end;
        if i % 16000 == 0 || i == dataset.keys {
            on_event(Event::Build {
                done: i,
                total: dataset.keys,
            });
        }
    }
    Ok(())
}

/// Run the comparison: start a server in `dir`, load, idle phase, BGSAVE phase. `Ok(None)`
/// when redis-server is not installed.
pub fn run(
    dir: &Path,
    dataset: Dataset,
    writers: usize,
    idle: Duration,
    window: Duration,
    on_event: &(dyn Fn(Event) + Sync),
) -> Result<Option<RedisReport>, String> {
    let Some(server) = start(dir)? else {
        return Ok(None);
    };
    let mut ctl = Conn::connect(server.port()).map_err(io("connect"))?;
    let version = ctl
        .info("server")
        .map_err(io("INFO"))?
        .into_iter()
        .find(|(k, _)| k == "redis_version")
        .map(|(_, v)| v)
        .unwrap_or_default();
    let t = Instant::now();
    load(server.port(), dataset, on_event)?;
    let load_seconds = t.elapsed().as_secs_f64();
    let keys = match ctl.call(&["DBSIZE"]).map_err(io("DBSIZE"))? {
        Reply::Integer(n) => n.max(0) as u64,
        r => return Err(format!("redis DBSIZE: unexpected {r:?}")),
    };
    let dataset_bytes = ctl
        .info_u64("memory", "used_memory_dataset")
        .map_err(io("INFO"))?;
    let rss_bytes = ctl
        .info_u64("memory", "used_memory_rss")
        .map_err(io("INFO"))?;

    let origin = Instant::now();
    let phase = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut threads = Vec::new();
    for w in 0..writers.max(1) {
        let mut c = Conn::connect(server.port()).map_err(io("connect"))?;
        let (phase, stop) = (phase.clone(), stop.clone());
        threads.push(thread::spawn(move || -> Result<Recorder, String> {
            let mut rec = Recorder::new(2, window);
            let mut gen = WriteGen::new(dataset, 1000 + w as u64);
            while !stop.load(Ordering::Relaxed) {
                let p = phase.load(Ordering::Relaxed);
                let w = gen.next_write();
                let t0 = Instant::now();
                let r = c.call(w.argv()).map_err(io("write"))?;
                let t1 = Instant::now();
                if let Reply::Error(e) = r {
                    return Err(format!("redis write: {}", String::from_utf8_lossy(&e)));
                }
                rec.record(
                    p,
                    t0.saturating_duration_since(origin).as_nanos() as u64,
                    (t1 - t0).as_nanos() as u64,
                );
            }
            Ok(rec)
        }));
    }
    on_event(Event::Phase("redis idle".into()));
    thread::sleep(idle);
    let idle_b = (0.0, origin.elapsed().as_secs_f64());
    phase.store(usize::MAX, Ordering::Relaxed);
    thread::sleep(Duration::from_millis(200));
    on_event(Event::Phase("redis BGSAVE".into()));
    let start = origin.elapsed().as_secs_f64();
    phase.store(1, Ordering::Relaxed);
    let t = Instant::now();
    let r = ctl.call(&["BGSAVE"]).map_err(io("BGSAVE"))?;
    if let Reply::Error(e) = r {
        return Err(format!("redis BGSAVE: {}", String::from_utf8_lossy(&e)));
    }
    loop {
        thread::sleep(Duration::from_millis(5));
        if ctl
            .info_u64("persistence", "rdb_bgsave_in_progress")
            .map_err(io("INFO"))?
            == 0
        {
            break;
        }
    }
    let bgsave_seconds = t.elapsed().as_secs_f64();
    let end = origin.elapsed().as_secs_f64();
    phase.store(usize::MAX, Ordering::Relaxed);
    stop.store(true, Ordering::Relaxed);
    let mut rec: Option<Recorder> = None;
    for t in threads {
        let r = t
            .join()
            .map_err(|_| "redis writer panicked".to_string())??;
        match &mut rec {
            None => rec = Some(r),
            Some(a) => a.merge(&r),
        }
    }
    let rec = rec.expect("at least one writer");
    let fork_usec = ctl
        .info_u64("stats", "latest_fork_usec")
        .map_err(io("INFO"))?;
    let pers = ctl.info("persistence").map_err(io("INFO"))?;
    let field = |f: &str| {
        pers.iter()
            .find(|(k, _)| k == f)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let cow_bytes = field("rdb_last_cow_size").parse().unwrap_or(0);
    let bgsave_status = field("rdb_last_bgsave_status");
    let rdb_bytes = std::fs::metadata(dir.join("dump.rdb"))
        .map(|m| m.len())
        .unwrap_or(0);
    let mk = |name: &str, i: usize, (s, e): (f64, f64)| Phase {
        name: name.into(),
        start_s: s,
        end_s: e,
        summary: Summary::from_histogram(&rec.phases[i], Duration::from_secs_f64((e - s).max(0.0))),
        // A server's inside is not visible from its client: no attribution.
        causes: None,
        tail: None,
        times: None,
    };
    let phases = vec![mk("idle", 0, idle_b), mk("bgsave", 1, (start, end))];
    Ok(Some(RedisReport {
        version,
        keys,
        dataset_bytes,
        rss_bytes,
        load_seconds,
        phases,
        fork_usec,
        bgsave_seconds,
        cow_bytes,
        bgsave_status,
        rdb_bytes,
        timeline: rec.timeline(),
    }))
}
