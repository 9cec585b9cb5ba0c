//! Background upkeep: the engine's `serverCron`.
//!
//! One thread ticks `hz` times a second (Redis's `serverCron` / `databasesCron`):
//!
//! * **Active expire**, Redis's adaptive slow cycle (`expire.c`, `activeExpireCycle`): a CPU
//!   budget of `25 + 2 * (effort - 1)` percent of the tick, batches of `16 * (20 + 5 * (effort -
//!   1))` keys, repeated while a batch finds more than `10 - (effort - 1)` percent expired keys.
//!   The keyspace has no separate expires dict, so a batch walks all keys (resuming where the
//!   previous one stopped); to find expired keys among many persistent ones, each tick also walks
//!   at least `keys / (10 * hz)` keys: a full pass at least every ~10 s, within the CPU budget.
//! * **Rehash**: with `activerehashing`, up to 1 ms of incremental rehash steps per tick, one
//!   shard lock at a time (a no-op while a snapshot freezes the dicts).
//! * **Save rules**: a background snapshot when `changes` writes happened in more than
//!   `seconds` since the last successful one (after a failure, retried every 5 s, as Redis's
//!   `CONFIG_BGSAVE_RETRY_DELAY`).
//! * **AOF rewrite rule**: a background rewrite when the AOF is over
//!   `auto-aof-rewrite-min-size` and grew `auto-aof-rewrite-percentage` percent over its size
//!   after the last rewrite (retried 10 s after a failure). In segments mode the same rule
//!   takes a converging snapshot (the last snapshot plus the log since it against the snapshot),
//!   after which retention drops the old segments.
//! * Scheduled jobs (`schedule_snapshot`, `schedule_rewrite`) once none runs; reaping finished
//!   background jobs.
//!
//! `everysec` fsync runs in the log writer's own thread; segments retention runs after each
//! segments snapshot. No lock is held across a tick except one shard lock at a time.

use std::time::{Duration, Instant};

use forkless_sync::atomic::Ordering;
use forkless_sync::{thread, Arc};

use crate::engine::{unix_ms, Core, JobKind};

/// The upkeep thread's body.
pub(crate) fn run(core: Arc<Core>) {
    let mut keys_total: u64 = 0;
    let mut keys_counted: Option<Instant> = None;
    while !core.stop_upkeep.load(Ordering::Acquire) {
        let t0 = Instant::now();
        let tun = core.tun.lock().clone();
        let tick = Duration::from_secs(1) / tun.hz.max(1);
        if keys_counted.is_none_or(|t| t.elapsed() >= Duration::from_secs(1)) {
            keys_total = (0..core.ks.databases())
                .map(|d| core.ks.dbsize(d) as u64)
                .sum();
            keys_counted = Some(Instant::now());
        }
        // No key has a TTL (each table counts its own): no walk at all, as Redis's cycle has
        // nothing to sample in an empty `expires` dict.
        if core.active_expire.load(Ordering::Acquire) && core.ks.expires_total() > 0 {
            active_expire(&core, tick, tun.effort, tun.hz, keys_total);
        }
        if tun.activerehashing {
            rehash(&core, Duration::from_millis(1));
        }
        reap(&core);
        if !core.stop_upkeep.load(Ordering::Acquire) {
            rules(&core, &tun);
        }
        core.ticks.fetch_add(1, Ordering::Relaxed);
        let spent = t0.elapsed();
        if spent < tick {
            thread::park_timeout(tick - spent);
        }
    }
}

fn active_expire(core: &Core, tick: Duration, effort: u32, hz: u32, keys_total: u64) {
    let e = u64::from(effort.clamp(1, 10) - 1);
    let limit = tick * (25 + 2 * e as u32) / 100;
    let batch = 16 * (20 + 5 * e) as usize;
    let stale_pct = 10 - e;
    let floor = (keys_total / (10 * u64::from(hz.max(1)))).max(batch as u64);
    let t0 = Instant::now();
    let mut walked: u64 = 0;
    loop {
        let deleted = core.ks.active_expire_cycle(batch) as u64;
        core.expired.fetch_add(deleted, Ordering::Relaxed);
        walked += batch as u64;
        if t0.elapsed() >= limit || walked >= keys_total.max(batch as u64) {
            break;
        }
        if walked >= floor && deleted * 100 <= batch as u64 * stale_pct {
            break;
        }
    }
}

fn rehash(core: &Core, budget: Duration) {
    let t0 = Instant::now();
    for s in 0..core.ks.num_shards() {
        core.ks.with_shard(s, |shard| {
            for db in 0..shard.databases() {
                let d = shard.db_mut(db).dict_mut();
                if d.is_rehashing() {
                    d.rehash_step(100);
                }
            }
        });
        if t0.elapsed() >= budget {
            break;
        }
    }
}

fn reap(core: &Core) {
    let mut slot = core.job.lock();
    if slot.as_ref().is_some_and(|j| j.thread.is_finished()) {
        if let Some(j) = slot.take() {
            let _ = j.thread.join();
        }
    }
}

fn rules(core: &Arc<Core>, tun: &crate::engine::Tunables) {
    if core.job.lock().is_some() || core.is_busy() {
        return;
    }
    if core.scheduled_rewrite.swap(false, Ordering::AcqRel) {
        if core.start_job(JobKind::Rewrite).is_err() {
            core.scheduled_rewrite.store(true, Ordering::Release);
        }
        return;
    }
    if core.scheduled_snapshot.swap(false, Ordering::AcqRel) {
        if core.start_job(JobKind::Snapshot).is_err() {
            core.scheduled_snapshot.store(true, Ordering::Release);
        }
        return;
    }
    let now = unix_ms() / 1000;
    let dirty = core.dirty.load(Ordering::Relaxed);
    let (last_save, ok, last_try, rewrite_fail) = {
        let st = core.state.lock();
        (
            st.last_save_unix,
            st.last_bgsave_ok,
            st.last_bgsave_try,
            st.last_rewrite_fail,
        )
    };
    let retry_ok = ok || last_try.is_none_or(|t| t.elapsed() >= Duration::from_secs(5));
    let due = tun
        .save_rules
        .iter()
        .any(|r| dirty >= r.changes && dirty > 0 && now - last_save > r.seconds as i64);
    if due && retry_ok {
        let _ = core.start_job(JobKind::Snapshot);
        return;
    }
    if core.has_log() && tun.auto_aof_pct > 0 {
        if let Some((cur, base)) = core.aof_sizes() {
            let base = base.max(1);
            let growth = (cur * 100 / base).saturating_sub(100);
            let retry = rewrite_fail.is_none_or(|t| t.elapsed() >= Duration::from_secs(10));
            if cur > tun.auto_aof_min && growth >= tun.auto_aof_pct && retry {
                let _ = core.start_job(JobKind::Rewrite);
            }
        }
    }
}
