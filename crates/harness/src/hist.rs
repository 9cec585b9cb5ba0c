//! Latency recording: one HDR histogram per phase and per time window, per writer thread,
//! merged at the end (no shared state on the hot path).
//!
//! HdrHistogram (Gil Tene, <http://hdrhistogram.org>, the `hdrhistogram` crate) keeps every
//! value with a bounded relative error (3 significant digits here), so p99.9 and max are real
//! values, not interpolations from averages.

use std::time::Duration;

use hdrhistogram::Histogram;

/// Highest latency a phase histogram tracks exactly, in nanoseconds (60 s); larger values are
/// clamped to it.
pub const PHASE_MAX_NS: u64 = 60_000_000_000;
/// Highest latency a window histogram tracks, in microseconds (10 s).
pub const WINDOW_MAX_US: u64 = 10_000_000;
/// A stall: an operation that took at least this long.
pub const STALL_NS: u64 = 1_000_000;

/// A new phase histogram (nanoseconds, 3 significant digits).
pub fn phase_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, PHASE_MAX_NS, 3).expect("static histogram bounds are valid")
}

/// A new window histogram (microseconds, 2 significant digits: small, for time series).
pub fn window_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, WINDOW_MAX_US, 2).expect("static histogram bounds are valid")
}

/// The figures of one phase.
#[derive(Clone, Debug, PartialEq)]
pub struct Summary {
    /// Operations recorded.
    pub ops: u64,
    /// Wall time of the phase, seconds.
    pub seconds: f64,
    /// Operations per second.
    pub ops_per_s: f64,
    /// Median latency, microseconds.
    pub p50_us: f64,
    /// 99th percentile, microseconds.
    pub p99_us: f64,
    /// 99.9th percentile, microseconds.
    pub p999_us: f64,
    /// Largest latency, microseconds.
    pub max_us: f64,
    /// Operations that took >= 1 ms.
    pub stalls: u64,
}

impl Summary {
    /// Summarize a nanosecond histogram recorded over `wall`.
    pub fn from_histogram(h: &Histogram<u64>, wall: Duration) -> Summary {
        let seconds = wall.as_secs_f64();
        let ops = h.len();
        let us = |ns: u64| ns as f64 / 1000.0;
        let (p50, p99, p999, max) = if ops == 0 {
            (0, 0, 0, 0)
        } else {
            (
                h.value_at_quantile(0.5),
                h.value_at_quantile(0.99),
                h.value_at_quantile(0.999),
                h.max(),
            )
        };
        let stalls = if ops == 0 || h.max() < STALL_NS {
            0
        } else {
            h.count_between(STALL_NS, PHASE_MAX_NS)
        };
        Summary {
            ops,
            seconds,
            ops_per_s: if seconds > 0.0 {
                ops as f64 / seconds
            } else {
                0.0
            },
            p50_us: us(p50),
            p99_us: us(p99),
            p999_us: us(p999),
            max_us: us(max),
            stalls,
        }
    }

    /// This phase's throughput over `base`'s (1.0 = unchanged).
    pub fn throughput_ratio(&self, base: &Summary) -> f64 {
        ratio(self.ops_per_s, base.ops_per_s)
    }

    /// This phase's p99.9 over `base`'s (1.0 = unchanged).
    pub fn p999_ratio(&self, base: &Summary) -> f64 {
        ratio(self.p999_us, base.p999_us)
    }

    /// A JSON object with every field.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "ops": self.ops,
            "seconds": self.seconds,
            "ops_per_s": self.ops_per_s,
            "p50_us": self.p50_us,
            "p99_us": self.p99_us,
            "p999_us": self.p999_us,
            "max_us": self.max_us,
            "stalls_ge_1ms": self.stalls,
        })
    }
}

/// `a / b`, 0 when `b` is 0.
pub fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 {
        a / b
    } else {
        0.0
    }
}

/// One point of a latency time series.
#[derive(Clone, Debug, PartialEq)]
pub struct WindowPoint {
    /// Start of the window, seconds since the writers started.
    pub t_s: f64,
    /// Operations completed in the window (all writers).
    pub ops: u64,
    /// 99th percentile latency in the window, microseconds.
    pub p99_us: f64,
    /// 99.9th percentile latency in the window, microseconds.
    pub p999_us: f64,
}

/// What one writer thread records: a histogram per phase and per window.
#[derive(Debug)]
pub struct Recorder {
    /// Per phase index.
    pub phases: Vec<Histogram<u64>>,
    /// Per window index (window = elapsed / window length).
    pub windows: Vec<Histogram<u64>>,
    /// Per phase index: the writes >= 1 ms by cause (only when attributed, `crate::stall`).
    pub causes: Vec<crate::stall::Causes>,
    /// Per phase index: the writes at or above the run's tail threshold by cause (only when
    /// attributed with a threshold: what the slowest writes, p99.9 and up, waited for).
    pub tail: Vec<crate::stall::Causes>,
    /// Per phase index: the attributed time of every write, summed (only when attributed).
    pub times: Vec<forkless_keyspace::trace::WriteTimes>,
    window_ns: u64,
}

impl Recorder {
    /// A recorder with `phases` phase slots and windows of `window`.
    pub fn new(phases: usize, window: Duration) -> Recorder {
        Recorder {
            phases: (0..phases).map(|_| phase_histogram()).collect(),
            windows: Vec::new(),
            causes: vec![crate::stall::Causes::default(); phases],
            tail: vec![crate::stall::Causes::default(); phases],
            times: vec![forkless_keyspace::trace::WriteTimes::default(); phases],
            window_ns: (window.as_nanos() as u64).max(1),
        }
    }

    /// Record one operation of `ns` nanoseconds that started `at_ns` after the start, in `phase`
    /// (ignored when out of range: a phase not measured).
    pub fn record(&mut self, phase: usize, at_ns: u64, ns: u64) {
        if let Some(h) = self.phases.get_mut(phase) {
            h.saturating_record(ns.max(1));
        }
        let w = (at_ns / self.window_ns) as usize;
        while self.windows.len() <= w {
            self.windows.push(window_histogram());
        }
        self.windows[w].saturating_record((ns / 1000).max(1));
    }

    /// Count one write >= 1 ms of cause `c` in `phase` (ignored out of range).
    pub fn record_stall(&mut self, phase: usize, c: crate::stall::Cause) {
        if let Some(k) = self.causes.get_mut(phase) {
            k.add(c);
        }
    }

    /// Count one write at or above the tail threshold of cause `c` in `phase` (ignored out of
    /// range).
    pub fn record_tail(&mut self, phase: usize, c: crate::stall::Cause) {
        if let Some(k) = self.tail.get_mut(phase) {
            k.add(c);
        }
    }

    /// Add one write's attributed times to `phase`'s sums (ignored out of range).
    pub fn record_times(&mut self, phase: usize, t: &forkless_keyspace::trace::WriteTimes) {
        if let Some(k) = self.times.get_mut(phase) {
            k.add(t);
        }
    }

    /// Merge another thread's recorder into this one.
    pub fn merge(&mut self, other: &Recorder) {
        for (a, b) in self.causes.iter_mut().zip(&other.causes) {
            a.merge(b);
        }
        for (a, b) in self.tail.iter_mut().zip(&other.tail) {
            a.merge(b);
        }
        for (a, b) in self.times.iter_mut().zip(&other.times) {
            a.add(b);
        }
        for (a, b) in self.phases.iter_mut().zip(&other.phases) {
            a.add(b).expect("same bounds");
        }
        while self.windows.len() < other.windows.len() {
            self.windows.push(window_histogram());
        }
        for (a, b) in self.windows.iter_mut().zip(&other.windows) {
            a.add(b).expect("same bounds");
        }
    }

    /// The time series of the windows.
    pub fn timeline(&self) -> Vec<WindowPoint> {
        let w = self.window_ns as f64 / 1e9;
        self.windows
            .iter()
            .enumerate()
            .map(|(i, h)| {
                let q = |q: f64| {
                    if h.is_empty() {
                        0.0
                    } else {
                        h.value_at_quantile(q) as f64
                    }
                };
                WindowPoint {
                    t_s: i as f64 * w,
                    ops: h.len(),
                    p99_us: q(0.99),
                    p999_us: q(0.999),
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_of_known_values() {
        let mut h = phase_histogram();
        for ns in 1..=1000u64 {
            h.record(ns * 1000).unwrap(); // 1 us .. 1000 us
        }
        h.record(5_000_000).unwrap(); // one 5 ms stall
        h.record(1_000_000).unwrap(); // exactly 1 ms: a stall too
        let s = Summary::from_histogram(&h, Duration::from_secs(2));
        assert_eq!(s.ops, 1002);
        assert!((s.ops_per_s - 501.0).abs() < 1e-9);
        assert!((s.p50_us - 501.0).abs() <= 1.0, "{}", s.p50_us);
        assert!((s.p99_us - 992.0).abs() <= 2.0, "{}", s.p99_us);
        assert!((s.max_us - 5000.0).abs() <= 5.0, "{}", s.max_us);
        assert_eq!(s.stalls, 3); // the loop's 1000 us, the 1 ms and the 5 ms
        let empty = Summary::from_histogram(&phase_histogram(), Duration::ZERO);
        assert_eq!((empty.ops, empty.ops_per_s, empty.stalls), (0, 0.0, 0));
        assert_eq!(s.throughput_ratio(&empty), 0.0);
        assert!((s.p999_ratio(&s) - 1.0).abs() < 1e-12);
    }

    #[test]
    fn recorder_merges_phases_and_windows() {
        let w = Duration::from_millis(100);
        let mut a = Recorder::new(2, w);
        let mut b = Recorder::new(2, w);
        a.record(0, 10_000_000, 2_000); // window 0
        b.record(1, 250_000_000, 3_000_000); // window 2, a stall
        b.record(7, 50_000_000, 1_000); // phase out of range: window only
        a.merge(&b);
        assert_eq!(a.phases[0].len(), 1);
        assert_eq!(a.phases[1].len(), 1);
        let t = a.timeline();
        assert_eq!(t.len(), 3);
        assert_eq!(t.iter().map(|p| p.ops).collect::<Vec<_>>(), vec![2, 0, 1]);
        assert!((t[2].t_s - 0.2).abs() < 1e-9);
        assert!((t[2].p99_us - 3000.0).abs() <= 30.0, "{}", t[2].p99_us);
        let s = Summary::from_histogram(&a.phases[1], Duration::from_secs(1));
        assert_eq!(s.stalls, 1);
        let j = s.to_json();
        for k in [
            "ops",
            "ops_per_s",
            "p50_us",
            "p99_us",
            "p999_us",
            "max_us",
            "stalls_ge_1ms",
        ] {
            assert!(j.get(k).is_some(), "{k} missing");
        }
    }
}
