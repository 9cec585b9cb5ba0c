//! INFO: Redis 7.0's sections and field names, so exporters and dashboards read forkless.
//!
//! `redis_version:7.0.15` is the compatibility level clients gate features on; `forkless_version`
//! sits beside it. Sections: server, clients, memory, persistence, stats, replication, cpu,
//! keyspace (the default set, `all`, `everything`), field names as `genRedisInfoString` in
//! Redis 7.0.15's `server.c`. Fields forkless has no counterpart for report Redis's idle values.

use std::fmt::Write;

use forkless_sync::atomic::Ordering;

use crate::state::Shared;

/// The Redis version forkless is compatible with.
pub const REDIS_VERSION: &str = "7.0.15";

const SECTIONS: &[&str] = &[
    "server",
    "clients",
    "memory",
    "persistence",
    "stats",
    "replication",
    "cpu",
    "commandstats",
    "errorstats",
    "keyspace",
];

/// Sections only `all`/`everything` (or their own name) show.
const EXTRA: &[&str] = &["commandstats", "errorstats"];

fn human(bytes: u64) -> String {
    let b = bytes as f64;
    if b < 1024.0 {
        format!("{bytes}B")
    } else if b < 1024.0 * 1024.0 {
        format!("{:.2}K", b / 1024.0)
    } else if b < 1024.0 * 1024.0 * 1024.0 {
        format!("{:.2}M", b / (1024.0 * 1024.0))
    } else {
        format!("{:.2}G", b / (1024.0 * 1024.0 * 1024.0))
    }
}

/// Resident set size in bytes (from /proc; 0 where unavailable).
pub fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * 4096)
}

/// User and system CPU seconds of this process (from /proc; 100 ticks per second).
fn cpu_times() -> (f64, f64) {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return (0.0, 0.0);
    };
    // Fields after the command name, which ends with ')'.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0) / 100.0;
    (ticks(11), ticks(12))
}

/// Keys and keys with a TTL, per database (the engine walks one shard at a time).
pub fn keyspace_counts(shared: &Shared) -> Vec<(usize, usize)> {
    let ks = &shared.ks;
    let expires = shared.engine.expires_per_db();
    (0..ks.databases())
        .map(|db| {
            (
                ks.dbsize(db),
                expires.get(db as usize).copied().unwrap_or(0) as usize,
            )
        })
        .collect()
}

/// Render the requested sections (`[]`: the default ones).
pub fn render(shared: &Shared, wanted: &[String]) -> String {
    let every = wanted.iter().any(|w| w == "all" || w == "everything");
    let default = wanted.is_empty() || wanted.iter().any(|w| w == "default");
    let want = |s: &str| every || (default && !EXTRA.contains(&s)) || wanted.iter().any(|w| w == s);
    let mut out = String::new();
    let opts = shared.opts.lock().clone();
    let config = shared.engine.config();
    let stats = shared.engine.stats();
    let uptime = shared.started.elapsed().as_secs();
    for &section in SECTIONS {
        if !want(section) {
            continue;
        }
        if !out.is_empty() {
            out.push_str("\r\n");
        }
        let title = {
            let mut c = section.chars();
            match c.next() {
                Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
                None => String::new(),
            }
        };
        let title = if section == "cpu" {
            "CPU".to_string()
        } else {
            title
        };
        let _ = write!(out, "# {title}\r\n");
        let mut f = |k: &str, v: String| {
            let _ = write!(out, "{k}:{v}\r\n");
        };
        match section {
            "server" => {
                f("redis_version", REDIS_VERSION.into());
                f("redis_git_sha1", "00000000".into());
                f("redis_git_dirty", "0".into());
                f("redis_build_id", "0".into());
                f("redis_mode", "standalone".into());
                f(
                    "os",
                    format!("{} {}", std::env::consts::OS, std::env::consts::ARCH),
                );
                f("arch_bits", "64".into());
                f("monotonic_clock", "POSIX clock_gettime".into());
                f("multiplexing_api", "epoll".into());
                f("process_id", std::process::id().to_string());
                f("process_supervised", "no".into());
                f("run_id", shared.run_id.clone());
                f(
                    "tcp_port",
                    shared.tcp_port.load(Ordering::Relaxed).to_string(),
                );
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap_or_default();
                f("server_time_usec", now.as_micros().to_string());
                f("uptime_in_seconds", uptime.to_string());
                f("uptime_in_days", (uptime / 86_400).to_string());
                f("hz", config.get("hz").unwrap_or_default());
                f("configured_hz", config.get("hz").unwrap_or_default());
                f("lru_clock", ((now.as_secs()) & ((1 << 24) - 1)).to_string());
                f(
                    "executable",
                    std::env::current_exe()
                        .map(|p| p.display().to_string())
                        .unwrap_or_default(),
                );
                f("config_file", String::new());
                f("io_threads_active", "0".into());
                f("forkless_version", env!("CARGO_PKG_VERSION").into());
            }
            "clients" => {
                f("connected_clients", shared.num_clients().to_string());
                f("cluster_connections", "0".into());
                f("maxclients", opts.maxclients.to_string());
                f("client_recent_max_input_buffer", "0".into());
                f("client_recent_max_output_buffer", "0".into());
                f(
                    "blocked_clients",
                    shared.stats.blocked.load(Ordering::Relaxed).to_string(),
                );
                f("tracking_clients", "0".into());
                f("clients_in_timeout_table", "0".into());
            }
            "memory" => {
                let rss = stats.rss_bytes.unwrap_or_else(rss_bytes);
                let maxmem = config.int("maxmemory").max(0) as u64;
                f("used_memory", rss.to_string());
                f("used_memory_human", human(rss));
                f("used_memory_rss", rss.to_string());
                f("used_memory_rss_human", human(rss));
                f("used_memory_peak", rss.to_string());
                f("used_memory_peak_human", human(rss));
                let lua = shared.engine.scripting().memory_info();
                f("used_memory_lua", lua.vm_eval.to_string());
                f("used_memory_vm_eval", lua.vm_eval.to_string());
                f("used_memory_lua_human", human(lua.vm_eval));
                f("used_memory_scripts_eval", lua.scripts_eval.to_string());
                f("number_of_cached_scripts", lua.cached_scripts.to_string());
                f("number_of_functions", lua.function_count.to_string());
                f("number_of_libraries", lua.library_count.to_string());
                f("used_memory_vm_functions", lua.vm_functions.to_string());
                let vm_total = lua.vm_eval + lua.vm_functions;
                f("used_memory_vm_total", vm_total.to_string());
                f("used_memory_vm_total_human", human(vm_total));
                f("used_memory_functions", lua.functions.to_string());
                let scripts = lua.scripts_eval + lua.functions;
                f("used_memory_scripts", scripts.to_string());
                f("used_memory_scripts_human", human(scripts));
                f("maxmemory", maxmem.to_string());
                f("maxmemory_human", human(maxmem));
                f(
                    "maxmemory_policy",
                    config.get("maxmemory-policy").unwrap_or_default(),
                );
                f("mem_fragmentation_ratio", "1.00".into());
                f("mem_allocator", mem_allocator().into());
                f("lazyfree_pending_objects", "0".into());
            }
            "persistence" => {
                let ok = |b: bool| if b { "ok" } else { "err" }.to_string();
                let secs = |j: &Option<forkless::JobReport>| {
                    j.as_ref()
                        .map_or("-1".to_string(), |j| j.duration.as_secs().to_string())
                };
                let now_ms = shared.ks.now_ms();
                let running = |on: bool| {
                    if on {
                        stats
                            .job_started_unix_ms
                            .map_or("0".into(), |t| ((now_ms - t).max(0) / 1000).to_string())
                    } else {
                        "-1".into()
                    }
                };
                f("loading", "0".into());
                f("async_loading", "0".into());
                f("current_cow_peak", "0".into());
                f("current_fork_perc", "0.00".into());
                f("rdb_changes_since_last_save", stats.dirty.to_string());
                f(
                    "rdb_bgsave_in_progress",
                    u8::from(stats.snapshot_in_progress).to_string(),
                );
                f("rdb_last_save_time", stats.last_save_unix.to_string());
                f("rdb_last_bgsave_status", ok(stats.last_snapshot_ok));
                f("rdb_last_bgsave_time_sec", secs(&stats.last_snapshot));
                f(
                    "rdb_current_bgsave_time_sec",
                    running(stats.snapshot_in_progress),
                );
                f(
                    "aof_enabled",
                    u8::from(stats.mode == forkless::PersistenceMode::Aof).to_string(),
                );
                f(
                    "aof_rewrite_in_progress",
                    u8::from(stats.rewrite_in_progress).to_string(),
                );
                f("aof_rewrite_scheduled", "0".into());
                f("aof_last_rewrite_time_sec", secs(&stats.last_rewrite));
                f(
                    "aof_current_rewrite_time_sec",
                    running(stats.rewrite_in_progress),
                );
                f("aof_last_bgrewrite_status", ok(stats.last_rewrite_ok));
                f(
                    "aof_rewrites",
                    u8::from(stats.last_rewrite.is_some()).to_string(),
                );
                f("aof_last_write_status", ok(stats.misconf.is_none()));
                f("module_fork_in_progress", "0".into());
                f("module_fork_last_cow_size", "0".into());
                f(
                    "forkless_persistence",
                    format!("{:?}", stats.mode).to_lowercase(),
                );
                f(
                    "forkless_fsync_lag_bytes",
                    stats.fsync_lag_bytes.to_string(),
                );
            }
            "stats" => {
                let s = &shared.stats;
                let g =
                    |a: &forkless_sync::atomic::AtomicU64| a.load(Ordering::Relaxed).to_string();
                f("total_connections_received", g(&s.connections));
                f("total_commands_processed", g(&s.commands));
                f("instantaneous_ops_per_sec", "0".into());
                f("total_net_input_bytes", g(&s.net_input));
                f("total_net_output_bytes", g(&s.net_output));
                f("rejected_connections", g(&s.rejected));
                f("expired_keys", stats.expired_keys.to_string());
                f("evicted_keys", stats.memory.evicted_keys.to_string());
                f("keyspace_hits", stats.memory.keyspace_hits.to_string());
                f("keyspace_misses", stats.memory.keyspace_misses.to_string());
                f(
                    "pubsub_channels",
                    shared.pubsub.channels(None).len().to_string(),
                );
                f("pubsub_patterns", shared.pubsub.numpat().to_string());
                f(
                    "pubsubshard_channels",
                    shared.pubsub.shard_channels(None).len().to_string(),
                );
                f("latest_fork_usec", "0".into());
                f("total_forks", "0".into());
                f("sync_full", g(&shared.repl.sync_full));
                f("sync_partial_ok", g(&shared.repl.sync_partial_ok));
                f("sync_partial_err", g(&shared.repl.sync_partial_err));
                f("total_error_replies", g(&s.errors));
            }
            "replication" => {
                let ri = shared.engine.replication().info();
                let link = shared.repl.link_info();
                match &link {
                    None => f("role", "master".into()),
                    Some(l) => {
                        f("role", "slave".into());
                        f("master_host", l.host.clone());
                        f("master_port", l.port.to_string());
                        f(
                            "master_link_status",
                            if l.up { "up" } else { "down" }.into(),
                        );
                        f(
                            "master_last_io_seconds_ago",
                            if l.up {
                                l.last_io.elapsed().as_secs().to_string()
                            } else {
                                "-1".into()
                            },
                        );
                        f("master_sync_in_progress", u8::from(l.syncing).to_string());
                        f("slave_read_repl_offset", ri.offset.to_string());
                        f("slave_repl_offset", ri.offset.to_string());
                        if !l.up {
                            f(
                                "master_link_down_since_seconds",
                                l.down_since.elapsed().as_secs().to_string(),
                            );
                        }
                        f(
                            "slave_priority",
                            config
                                .get("replica-priority")
                                .unwrap_or_else(|| "100".into()),
                        );
                        f("slave_read_only", "1".into());
                        f("replica_announced", "1".into());
                    }
                }
                let replicas: Vec<_> = shared.repl.replicas.lock().values().cloned().collect();
                f("connected_slaves", replicas.len().to_string());
                for (i, r) in replicas.iter().enumerate() {
                    f(
                        &format!("slave{i}"),
                        format!(
                            "ip={},port={},state={},offset={},lag={}",
                            r.ip,
                            r.port,
                            r.state,
                            r.ack,
                            r.last_ack.elapsed().as_secs()
                        ),
                    );
                }
                f("master_failover_state", "no-failover".into());
                f("master_replid", ri.replid.clone());
                f("master_replid2", ri.replid2.clone());
                f("master_repl_offset", ri.offset.to_string());
                f("second_repl_offset", ri.second_offset.to_string());
                f("repl_backlog_active", u8::from(ri.active).to_string());
                f("repl_backlog_size", ri.backlog_size.to_string());
                f(
                    "repl_backlog_first_byte_offset",
                    ri.first_byte_offset.to_string(),
                );
                f("repl_backlog_histlen", ri.histlen.to_string());
                f(
                    "forkless_sync_snapshots",
                    shared.repl.snapshots.load(Ordering::Relaxed).to_string(),
                );
            }
            "cpu" => {
                let (user, sys) = cpu_times();
                f("used_cpu_sys", format!("{sys:.6}"));
                f("used_cpu_user", format!("{user:.6}"));
                f("used_cpu_sys_children", "0.000000".into());
                f("used_cpu_user_children", "0.000000".into());
            }
            "commandstats" => {
                for (name, r) in shared.cmdstats.rows() {
                    let calls = r.calls.load(Ordering::Relaxed);
                    let rejected = r.rejected.load(Ordering::Relaxed);
                    if calls == 0 && rejected == 0 {
                        continue;
                    }
                    let usec = r.usec.load(Ordering::Relaxed);
                    f(
                        &format!("cmdstat_{name}"),
                        format!(
                            "calls={calls},usec={usec},usec_per_call={:.2},rejected_calls={rejected},failed_calls={}",
                            if calls > 0 { usec as f64 / calls as f64 } else { 0.0 },
                            r.failed.load(Ordering::Relaxed)
                        ),
                    );
                }
            }
            "errorstats" => {
                for (code, n) in shared.errorstats.lock().iter() {
                    f(&format!("errorstat_{code}"), format!("count={n}"));
                }
            }
            "keyspace" => {
                for (db, (keys, expires)) in keyspace_counts(shared).into_iter().enumerate() {
                    if keys > 0 {
                        f(
                            &format!("db{db}"),
                            format!("keys={keys},expires={expires},avg_ttl=0"),
                        );
                    }
                }
            }
            _ => {}
        }
    }
    out
}

/// The allocator the binary links, as INFO's `mem_allocator` names it (set once by the binary's
/// `main` through [`set_mem_allocator`]; `libc` otherwise, e.g. in-process tests).
static MEM_ALLOCATOR: forkless_sync::OnceLock<&'static str> = forkless_sync::OnceLock::new();

/// Declare the allocator the process runs on (`jemalloc-5.3.0`, ...) for INFO `mem_allocator`:
/// clients and Redis's own tests read it to know what memory figures mean. Only the first call
/// counts.
pub fn set_mem_allocator(name: &'static str) {
    let _ = MEM_ALLOCATOR.set(name);
}

/// INFO's `mem_allocator`.
pub fn mem_allocator() -> &'static str {
    MEM_ALLOCATOR.get().copied().unwrap_or("libc")
}
