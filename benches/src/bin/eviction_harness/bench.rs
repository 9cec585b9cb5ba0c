//! Eviction benchmark (benches/README.md "Eviction"): how well `allkeys-lru` and `allkeys-lfu`
//! keep a Zipfian working set within `maxmemory`, against redis-server 7.0.15 on the same trace
//! and bound; memory held against the bound over time; writer latency with eviction on and off.
//!
//! Problem: a cache's eviction policy is judged by its hit rate on a skewed trace, and a bound is
//! only useful if it holds under load and eviction does not stall writers.
//!
//! * **Trace.** `ops` key ranks drawn from a Zipfian distribution over `keys` keys (θ = 0.99,
//!   YCSB's `ZipfianGenerator` after Gray et al., "Quickly generating billion-record synthetic
//!   databases", SIGMOD 1994), fixed seed; key `key:<rank>`.
//! * **Cache-aside.** The trace is replayed in batches of [`BATCH`]: `GET` every key of the batch,
//!   then `SET key <value>` for each distinct key that missed (a client filling its cache). Hit
//!   rate = hits / GETs. The same trace and the same batching go to both systems; ours runs
//!   in-process (`Keyspace::execute`, the engine's command path without persistence), redis-server
//!   over loopback with each batch pipelined.
//! * **Bound.** The dataset is every distinct key the trace touches (a Zipfian trace of a few
//!   million operations touches well under all `keys` ranks, and a bound above what is touched
//!   would never evict). Each system's dataset is measured first (those keys set, its own
//!   `used_memory` minus the empty baseline), then `maxmemory` = baseline + `fraction` x dataset
//!   (Redis counts its baseline in `used_memory`; ours counts the keyspace only), so both hold
//!   the same fraction of the keys.
//! * **Memory over time.** `used_memory` / `maxmemory` sampled every `sample_every` trace ops.
//! * **Writer latency.** In-process, one writer: `SET` of uniformly random keys out of
//!   `2 x keys` (half of them new) on a keyspace filled to the bound, `allkeys-lru` with the
//!   bound (each new key evicts) against no bound; every SET timed into an HDR histogram.

use std::path::Path;
use std::time::Instant;

use forkless_keyspace::{Config, EvictionPolicy, Keyspace, MemoryConfig, Reply, Session};

use forkless_harness::hist::{phase_histogram, Summary};
use forkless_harness::redis::{Conn, Reply as RReply};
use forkless_harness::workload::SplitMix64;

/// Keys per cache-aside batch.
pub(crate) const BATCH: usize = 100;

/// YCSB's Zipfian generator over ranks `0..n` (rank 0 the hottest).
#[derive(Clone, Debug)]
pub(crate) struct Zipf {
    n: u64,
    theta: f64,
    zetan: f64,
    alpha: f64,
    eta: f64,
}

impl Zipf {
    /// A generator over `n` ranks with exponent `theta` (< 1).
    pub(crate) fn new(n: u64, theta: f64) -> Zipf {
        let zeta = |m: u64| (1..=m).map(|i| 1.0 / (i as f64).powf(theta)).sum::<f64>();
        let zetan = zeta(n);
        let zeta2 = zeta(2.min(n));
        Zipf {
            n,
            theta,
            zetan,
            alpha: 1.0 / (1.0 - theta),
            eta: (1.0 - (2.0 / n as f64).powf(1.0 - theta)) / (1.0 - zeta2 / zetan),
        }
    }
    /// The next rank, `u` uniform in [0, 1).
    pub(crate) fn rank(&self, u: f64) -> u64 {
        let uz = u * self.zetan;
        if uz < 1.0 {
            return 0;
        }
        if uz < 1.0 + 0.5f64.powf(self.theta) {
            return 1;
        }
        let r = (self.n as f64 * (self.eta * u - self.eta + 1.0).powf(self.alpha)) as u64;
        r.min(self.n - 1)
    }
}

/// The trace: `ops` ranks out of `keys`, seeded.
pub(crate) fn trace(keys: u64, ops: u64, seed: u64) -> Vec<u32> {
    let z = Zipf::new(keys, 0.99);
    let mut rng = SplitMix64::new(seed);
    (0..ops)
        .map(|_| z.rank((rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64) as u32)
        .collect()
}

fn key(rank: u32) -> Vec<u8> {
    format!("key:{rank}").into_bytes()
}

fn value(rank: u32, size: usize) -> Vec<u8> {
    let mut v = format!("v{rank}:").into_bytes();
    v.resize(size.max(v.len()), b'x');
    v
}

/// One cache under test: GET/SET batches and its memory figures.
trait Cache {
    /// GET each key; true per hit.
    fn gets(&mut self, keys: &[Vec<u8>]) -> Result<Vec<bool>, String>;
    /// SET each (key, value).
    fn sets(&mut self, kvs: &[(Vec<u8>, Vec<u8>)]) -> Result<(), String>;
    /// `used_memory` as its eviction sees it.
    fn used(&mut self) -> Result<u64, String>;
    /// Keys held.
    fn keys(&mut self) -> Result<u64, String>;
    /// Set the bound and the policy; drop every key when `flush`.
    fn configure(
        &mut self,
        maxmemory: u64,
        policy: EvictionPolicy,
        flush: bool,
    ) -> Result<(), String>;
}

struct Ours {
    ks: Keyspace,
    s: Session,
}

impl Cache for Ours {
    fn gets(&mut self, keys: &[Vec<u8>]) -> Result<Vec<bool>, String> {
        Ok(keys
            .iter()
            .map(|k| !matches!(self.ks.execute(&mut self.s, &[b"GET", k]), Reply::Nil))
            .collect())
    }
    fn sets(&mut self, kvs: &[(Vec<u8>, Vec<u8>)]) -> Result<(), String> {
        for (k, v) in kvs {
            if let Reply::Error(e) = self.ks.execute(&mut self.s, &[b"SET", k, v]) {
                return Err(format!("SET: {e}"));
            }
        }
        Ok(())
    }
    fn used(&mut self) -> Result<u64, String> {
        Ok(self.ks.used_memory())
    }
    fn keys(&mut self) -> Result<u64, String> {
        Ok(self.ks.dbsize(0) as u64)
    }
    fn configure(
        &mut self,
        maxmemory: u64,
        policy: EvictionPolicy,
        flush: bool,
    ) -> Result<(), String> {
        if flush {
            self.ks.execute(&mut self.s, &[b"FLUSHALL"]);
        }
        self.ks.set_memory_config(MemoryConfig {
            maxmemory,
            policy,
            ..MemoryConfig::default()
        });
        Ok(())
    }
}

struct Theirs {
    c: Conn,
}

fn io(e: std::io::Error) -> String {
    format!("redis-server: {e}")
}

impl Cache for Theirs {
    fn gets(&mut self, keys: &[Vec<u8>]) -> Result<Vec<bool>, String> {
        for k in keys {
            self.c.queue(&[b"GET".as_slice(), k]);
        }
        self.c.flush().map_err(io)?;
        keys.iter()
            .map(|_| match self.c.read_reply().map_err(io)? {
                RReply::Bulk(_) => Ok(true),
                RReply::Null => Ok(false),
                r => Err(format!("GET: {r:?}")),
            })
            .collect()
    }
    fn sets(&mut self, kvs: &[(Vec<u8>, Vec<u8>)]) -> Result<(), String> {
        for (k, v) in kvs {
            self.c.queue(&[b"SET".as_slice(), k, v]);
        }
        self.c.flush().map_err(io)?;
        for _ in kvs {
            if let RReply::Error(e) = self.c.read_reply().map_err(io)? {
                return Err(format!("SET: {}", String::from_utf8_lossy(&e)));
            }
        }
        Ok(())
    }
    fn used(&mut self) -> Result<u64, String> {
        self.c.info_u64("memory", "used_memory").map_err(io)
    }
    fn keys(&mut self) -> Result<u64, String> {
        match self.c.call(&["DBSIZE"]).map_err(io)? {
            RReply::Integer(n) => Ok(n as u64),
            r => Err(format!("DBSIZE: {r:?}")),
        }
    }
    fn configure(
        &mut self,
        maxmemory: u64,
        policy: EvictionPolicy,
        flush: bool,
    ) -> Result<(), String> {
        if flush {
            self.c.call(&["FLUSHALL", "SYNC"]).map_err(io)?;
        }
        for (k, v) in [
            ("maxmemory-policy", policy.as_str().to_string()),
            ("maxmemory", maxmemory.to_string()),
        ] {
            if let RReply::Error(e) = self.c.call(&["CONFIG", "SET", k, &v]).map_err(io)? {
                return Err(format!("CONFIG SET {k}: {}", String::from_utf8_lossy(&e)));
            }
        }
        Ok(())
    }
}

/// Options of [`run`].
#[derive(Clone, Debug)]
pub(crate) struct EvictionConfig {
    /// Keys of the dataset (the trace's universe).
    pub keys: u64,
    /// Trace length.
    pub ops: u64,
    /// Bytes per value.
    pub value_size: usize,
    /// `maxmemory` as a fraction of the full dataset.
    pub fraction: f64,
    /// Trace ops between memory samples.
    pub sample_every: u64,
    /// SETs per writer-latency phase.
    pub writer_ops: u64,
    /// Include redis-server.
    pub redis: bool,
    /// Trace seed.
    pub seed: u64,
}

/// One system under one policy.
#[derive(Clone, Debug)]
pub(crate) struct HitRun {
    /// `forkless` or `redis-server`.
    pub system: &'static str,
    /// The policy.
    pub policy: EvictionPolicy,
    /// Its full dataset, bytes (its own accounting, baseline excluded).
    pub dataset: u64,
    /// The bound given.
    pub maxmemory: u64,
    /// GETs, hits over the whole trace.
    pub gets: u64,
    /// Hits over the whole trace.
    pub hits: u64,
    /// GETs and hits over the second half (warm).
    pub warm: (u64, u64),
    /// Keys held at the end.
    pub keys_end: u64,
    /// Highest `used_memory` sampled (and at the end).
    pub peak_used: u64,
    /// (trace ops done, used_memory) samples.
    pub samples: Vec<(u64, u64)>,
    /// Wall time of the replay.
    pub seconds: f64,
}

impl HitRun {
    /// Hit rate over the whole trace.
    pub(crate) fn rate(&self) -> f64 {
        self.hits as f64 / self.gets.max(1) as f64
    }
    /// Hit rate over the second half.
    pub(crate) fn warm_rate(&self) -> f64 {
        self.warm.1 as f64 / self.warm.0.max(1) as f64
    }
}

/// Writer latency with or without eviction.
#[derive(Clone, Debug)]
pub(crate) struct WriterRun {
    /// Whether the bound was set.
    pub eviction: bool,
    /// The latency figures.
    pub summary: Summary,
    /// Keys evicted during the phase.
    pub evicted: u64,
}

/// Everything [`run`] measured.
#[derive(Clone, Debug)]
pub(crate) struct EvictionReport {
    /// Hit-rate runs (ours and redis-server's, per policy).
    pub hits: Vec<HitRun>,
    /// Writer latency, eviction off then on.
    pub writers: Vec<WriterRun>,
    /// Distinct keys the trace touches.
    pub distinct: u64,
}

/// Fill `c` with the keys `ranks`, measure its dataset.
fn dataset_of(
    c: &mut dyn Cache,
    cfg: &EvictionConfig,
    ranks: impl Iterator<Item = u32>,
) -> Result<u64, String> {
    c.configure(0, EvictionPolicy::NoEviction, true)?;
    let base = c.used()?;
    let mut batch = Vec::with_capacity(1000);
    for r in ranks {
        batch.push((key(r), value(r, cfg.value_size)));
        if batch.len() == 1000 {
            c.sets(&batch)?;
            batch.clear();
        }
    }
    c.sets(&batch)?;
    let full = c.used()?;
    Ok(full.saturating_sub(base))
}

fn replay(
    c: &mut dyn Cache,
    system: &'static str,
    policy: EvictionPolicy,
    tr: &[u32],
    distinct: &[u32],
    cfg: &EvictionConfig,
) -> Result<HitRun, String> {
    let dataset = dataset_of(c, cfg, distinct.iter().copied())?;
    c.configure(0, policy, true)?;
    let base = c.used()?;
    let maxmemory = base + (dataset as f64 * cfg.fraction) as u64;
    c.configure(maxmemory, policy, false)?;
    let t = Instant::now();
    let mut run = HitRun {
        system,
        policy,
        dataset,
        maxmemory,
        gets: 0,
        hits: 0,
        warm: (0, 0),
        keys_end: 0,
        peak_used: 0,
        samples: vec![(0, base)],
        seconds: 0.0,
    };
    let half = tr.len() / 2;
    let mut next_sample = cfg.sample_every;
    let mut done = 0usize;
    for chunk in tr.chunks(BATCH) {
        let keys: Vec<Vec<u8>> = chunk.iter().map(|&r| key(r)).collect();
        let hit = c.gets(&keys)?;
        let mut fills: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        for (i, &h) in hit.iter().enumerate() {
            run.gets += 1;
            if done + i >= half {
                run.warm.0 += 1;
            }
            if h {
                run.hits += 1;
                if done + i >= half {
                    run.warm.1 += 1;
                }
            } else if !fills.iter().any(|(k, _)| *k == keys[i]) {
                fills.push((keys[i].clone(), value(chunk[i], cfg.value_size)));
            }
        }
        c.sets(&fills)?;
        done += chunk.len();
        if done as u64 >= next_sample {
            let u = c.used()?;
            run.peak_used = run.peak_used.max(u);
            run.samples.push((done as u64, u));
            next_sample += cfg.sample_every;
        }
    }
    run.seconds = t.elapsed().as_secs_f64();
    let u = c.used()?;
    run.peak_used = run.peak_used.max(u);
    run.samples.push((done as u64, u));
    run.keys_end = c.keys()?;
    Ok(run)
}

fn writer_phase(cfg: &EvictionConfig, eviction: bool) -> Result<WriterRun, String> {
    let mut ours = Ours {
        ks: Keyspace::new(Config::seeded(3)),
        s: Session::default(),
    };
    let dataset = dataset_of(&mut ours, cfg, 0..cfg.keys as u32)?;
    let bound = if eviction {
        (dataset as f64 * cfg.fraction) as u64
    } else {
        0
    };
    ours.configure(bound, EvictionPolicy::AllkeysLru, false)?;
    // Evict down to the bound before timing.
    ours.ks.evict_to_bound();
    let evicted0 = ours.ks.memory_stats().evicted_keys;
    let mut rng = SplitMix64::new(cfg.seed ^ 0x5eed);
    let mut h = phase_histogram();
    let v = value(0, cfg.value_size);
    let t = Instant::now();
    for _ in 0..cfg.writer_ops {
        let k = key((rng.next_u64() % (2 * cfg.keys)) as u32);
        let t0 = Instant::now();
        let r = ours.ks.execute(&mut ours.s, &[b"SET", &k, &v]);
        h.saturating_record(t0.elapsed().as_nanos() as u64);
        if let Reply::Error(e) = r {
            return Err(format!("SET: {e}"));
        }
    }
    Ok(WriterRun {
        eviction,
        summary: Summary::from_histogram(&h, t.elapsed()),
        evicted: ours.ks.memory_stats().evicted_keys - evicted0,
    })
}

/// Run everything; `on_line` gets progress lines.
pub(crate) fn run(
    cfg: &EvictionConfig,
    scratch: &Path,
    on_line: &dyn Fn(&str),
) -> Result<EvictionReport, String> {
    let tr = trace(cfg.keys, cfg.ops, cfg.seed);
    let distinct: Vec<u32> = {
        let mut seen = vec![false; cfg.keys as usize];
        tr.iter()
            .copied()
            .filter(|&r| !std::mem::replace(&mut seen[r as usize], true))
            .collect()
    };
    on_line(&format!(
        "trace: {} ops over {} keys, {} distinct keys touched (the dataset)",
        cfg.ops,
        cfg.keys,
        distinct.len()
    ));
    let mut hits = Vec::new();
    let server = if cfg.redis {
        forkless_harness::redis::start(scratch)?
    } else {
        None
    };
    for policy in [EvictionPolicy::AllkeysLru, EvictionPolicy::AllkeysLfu] {
        let mut ours = Ours {
            ks: Keyspace::new(Config::seeded(cfg.seed)),
            s: Session::default(),
        };
        let r = replay(&mut ours, "forkless", policy, &tr, &distinct, cfg)?;
        on_line(&format!(
            "forkless {policy}: hit rate {:.4} (warm {:.4}), {:.1} s",
            r.rate(),
            r.warm_rate(),
            r.seconds
        ));
        hits.push(r);
        drop(ours);
        if let Some(s) = &server {
            let mut theirs = Theirs {
                c: Conn::connect(s.port()).map_err(io)?,
            };
            let r = replay(&mut theirs, "redis-server", policy, &tr, &distinct, cfg)?;
            on_line(&format!(
                "redis-server {policy}: hit rate {:.4} (warm {:.4}), {:.1} s",
                r.rate(),
                r.warm_rate(),
                r.seconds
            ));
            hits.push(r);
        }
    }
    drop(server);
    let mut writers = Vec::new();
    for eviction in [false, true] {
        let w = writer_phase(cfg, eviction)?;
        on_line(&format!(
            "writer, eviction {}: p99.9 {:.1} us, {} evicted",
            if eviction { "on" } else { "off" },
            w.summary.p999_us,
            w.evicted
        ));
        writers.push(w);
    }
    Ok(EvictionReport {
        hits,
        writers,
        distinct: distinct.len() as u64,
    })
}

/// The Markdown tables of a report.
pub(crate) fn markdown(cfg: &EvictionConfig, rep: &EvictionReport) -> String {
    let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
    let distinct = rep.distinct;
    let mut out = format!(
        "Trace: {} ops, Zipfian (θ 0.99) over {} keys ({} distinct touched: the dataset) of {} B \
         values, cache-aside batches of {}; maxmemory = {:.0}% of each system's own dataset.\n\n",
        cfg.ops,
        cfg.keys,
        distinct,
        cfg.value_size,
        BATCH,
        cfg.fraction * 100.0
    );
    out.push_str("| system | policy | dataset (MiB) | maxmemory (MiB) | peak used / maxmemory | keys held at end | hit rate (all) | hit rate (2nd half) | replay s |\n|---|---|---|---|---|---|---|---|---|\n");
    for r in &rep.hits {
        out.push_str(&format!(
            "| {} | {} | {:.1} | {:.1} | {:.3} | {} | {:.2}% | {:.2}% | {:.1} |\n",
            r.system,
            r.policy,
            mib(r.dataset),
            mib(r.maxmemory),
            r.peak_used as f64 / r.maxmemory.max(1) as f64,
            r.keys_end,
            r.rate() * 100.0,
            r.warm_rate() * 100.0,
            r.seconds
        ));
    }
    out.push_str("\nWriter (one thread, in-process `SET` of random keys out of 2 x keys, allkeys-lru):\n\n| eviction | SET/s | p50 us | p99 us | p99.9 us | max us | SETs >= 1 ms | of them per second | keys evicted |\n|---|---|---|---|---|---|---|---|---|\n");
    for w in &rep.writers {
        let s = &w.summary;
        out.push_str(&format!(
            "| {} | {:.0} | {:.2} | {:.2} | {:.2} | {:.0} | {} | {:.1} | {} |\n",
            if w.eviction {
                "on (bound at the fraction)"
            } else {
                "off (no bound)"
            },
            s.ops_per_s,
            s.p50_us,
            s.p99_us,
            s.p999_us,
            s.max_us,
            s.stalls,
            s.stalls as f64 / s.seconds.max(1e-9),
            w.evicted
        ));
    }
    out
}

/// Draw used_memory / maxmemory over the trace for every hit-rate run into an SVG at `path`.
pub(crate) fn draw_chart(rep: &EvictionReport, path: &Path) -> Result<(), String> {
    use plotters::prelude::*;
    let err = |e: &dyn std::fmt::Debug| format!("drawing {}: {e:?}", path.display());
    let root = SVGBackend::new(path, (1000, 480)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let colors = [
        RGBColor(40, 110, 200),
        RGBColor(220, 90, 40),
        RGBColor(60, 160, 80),
        RGBColor(150, 90, 200),
    ];
    let x_max = rep
        .hits
        .iter()
        .flat_map(|r| r.samples.last().map(|s| s.0 as f64 / 1e6))
        .fold(0.1, f64::max);
    let mut c = ChartBuilder::on(&root)
        .caption(
            "used_memory / maxmemory during the Zipfian cache-aside trace",
            ("sans-serif", 18),
        )
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..x_max, 0f64..1.2f64)
        .map_err(|e| err(&e))?;
    c.configure_mesh()
        .x_desc("million trace operations")
        .y_desc("used / maxmemory")
        .draw()
        .map_err(|e| err(&e))?;
    c.draw_series(LineSeries::new(
        [(0.0, 1.0), (x_max, 1.0)],
        BLACK.stroke_width(1),
    ))
    .map_err(|e| err(&e))?
    .label("maxmemory")
    .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 15, y)], BLACK.stroke_width(1)));
    for (i, r) in rep.hits.iter().enumerate() {
        let col = colors[i % colors.len()];
        let mm = r.maxmemory.max(1) as f64;
        c.draw_series(LineSeries::new(
            r.samples
                .iter()
                .map(|&(o, u)| (o as f64 / 1e6, u as f64 / mm)),
            col.stroke_width(2),
        ))
        .map_err(|e| err(&e))?
        .label(format!("{} {}", r.system, r.policy))
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 15, y)], col.stroke_width(2)));
    }
    c.configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::LowerRight)
        .draw()
        .map_err(|e| err(&e))?;
    root.present().map_err(|e| err(&e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zipf_is_skewed_and_in_range() {
        let tr = trace(10_000, 200_000, 1);
        assert!(tr.iter().all(|&r| r < 10_000));
        let top = tr.iter().filter(|&&r| r < 100).count() as f64 / tr.len() as f64;
        // θ 0.99 over 10k: the top 1% of ranks draw roughly half the accesses.
        assert!((0.4..0.65).contains(&top), "top 1% share {top}");
        let zero = tr.iter().filter(|&&r| r == 0).count() as f64 / tr.len() as f64;
        assert!((0.07..0.13).contains(&zero), "rank 0 share {zero}");
    }
}
