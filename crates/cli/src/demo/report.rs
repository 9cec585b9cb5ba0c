//! `report.json` of `forkless demo`: every figure of the table plus the time series behind the
//! chart, as one JSON object (serde_json). Shape:
//!
//! ```text
//! { "dataset": {keys, value_size, mixed, dataset_bytes, build_seconds}, "writers",
//!   "phases": [{name, start_s, end_s, ops, ops_per_s, p50_us, p99_us, p999_us, max_us, stalls_ge_1ms, ...}],
//!   "snapshots": [{mode, keys, rdb_bytes, total_bytes, duration_s, mb_per_s, peak_extra_bytes,
//!                  peak_extra_over_dataset, rss_extra_bytes, rss_peak_bytes, delta_commands,
//!                  forced_visits, throughput_ratio, p999_ratio, verified: {ok, message}}],
//!   "timeline": [{t_s, ops, p99_us, p999_us}], "rss": [{t_s, bytes}], "rss_hwm_bytes",
//!   "timings": [{step, seconds}] (wall time per step: build, phases, verification steps),
//!   "redis": null | {version, keys, dataset_bytes, fork_usec, bgsave_seconds, cow_bytes,
//!                    rdb_bytes, phases, throughput_ratio, p999_ratio, peak_extra_over_dataset, timeline},
//!   "redis_note": null | "..." }
//! ```

use forkless_harness::hist::{ratio, WindowPoint};
use forkless_harness::run::{mode_name, Phase};
use serde_json::{json, Value};

use super::DemoOutcome;

fn phase(p: &Phase) -> Value {
    let mut v = p.summary.to_json();
    v["name"] = json!(p.name);
    v["start_s"] = json!(p.start_s);
    v["end_s"] = json!(p.end_s);
    v
}

fn timeline(t: &[WindowPoint]) -> Value {
    t.iter()
        .map(|w| json!({"t_s": w.t_s, "ops": w.ops, "p99_us": w.p99_us, "p999_us": w.p999_us}))
        .collect()
}

/// The whole report.
pub(super) fn to_json(o: &DemoOutcome) -> Value {
    let ours = &o.ours;
    let idle = &ours.phases[0].summary;
    let snapshots: Vec<Value> = ours
        .snapshots
        .iter()
        .zip(&ours.phases[1..])
        .map(|(s, p)| {
            let r = &s.result;
            json!({
                "mode": mode_name(r.mode),
                "keys": r.keys,
                "rdb_bytes": r.rdb_bytes,
                "total_bytes": r.total_bytes,
                "duration_s": r.duration.as_secs_f64(),
                "mb_per_s": r.mb_per_s,
                "peak_extra_bytes": r.peak_extra_bytes,
                "peak_extra_over_dataset": ratio(r.peak_extra_bytes as f64, ours.dataset_bytes as f64),
                "rss_extra_bytes": s.rss_extra_bytes,
                "rss_peak_bytes": s.rss_peak_bytes,
                "delta_commands": r.delta_commands,
                "delta_bytes": r.delta_bytes,
                "forced_visits": r.forced_visits,
                "walked_buckets": r.walked_buckets,
                "throughput_ratio": p.summary.throughput_ratio(idle),
                "p999_ratio": p.summary.p999_ratio(idle),
                "verified": match &s.verified {
                    Some(Ok(m)) => json!({"ok": true, "message": m}),
                    Some(Err(e)) => json!({"ok": false, "message": e}),
                    None => Value::Null,
                },
            })
        })
        .collect();
    let redis = o.redis.as_ref().map(|r| {
        let (i, b) = (&r.phases[0].summary, &r.phases[1].summary);
        json!({
            "version": r.version,
            "keys": r.keys,
            "dataset_bytes": r.dataset_bytes,
            "rss_bytes": r.rss_bytes,
            "load_seconds": r.load_seconds,
            "fork_usec": r.fork_usec,
            "bgsave_seconds": r.bgsave_seconds,
            "bgsave_status": r.bgsave_status,
            "cow_bytes": r.cow_bytes,
            "rdb_bytes": r.rdb_bytes,
            "phases": r.phases.iter().map(phase).collect::<Vec<_>>(),
            "throughput_ratio": b.throughput_ratio(i),
            "p999_ratio": b.p999_ratio(i),
            "peak_extra_over_dataset": ratio(r.cow_bytes as f64, r.dataset_bytes as f64),
            "timeline": timeline(&r.timeline),
        })
    });
    json!({
        "dataset": {
            "keys": ours.keys,
            "value_size": o.dataset.value_size,
            "mixed": o.dataset.mixed,
            "dataset_bytes": ours.dataset_bytes,
            "build_seconds": ours.build_seconds,
        },
        "writers": o.writers,
        "phases": ours.phases.iter().map(phase).collect::<Vec<_>>(),
        "snapshots": snapshots,
        "timeline": timeline(&ours.timeline),
        "rss": ours.rss.iter().map(|(t, b)| json!({"t_s": t, "bytes": b})).collect::<Vec<_>>(),
        "rss_hwm_bytes": ours.rss_hwm_bytes,
        "timings": ours.timings.iter().map(|(step, s)| json!({"step": step, "seconds": s})).collect::<Vec<_>>(),
        "redis": redis.unwrap_or(Value::Null),
        "redis_note": o.redis_note,
    })
}
