//! Resident memory of this process, from `/proc/self/status` (`VmRSS`: now, `VmHWM`: peak since
//! start; see proc(5)), and a sampler thread that records it over time.

use std::time::{Duration, Instant};

use forkless_sync::atomic::{AtomicBool, Ordering};
use forkless_sync::{thread, Arc, Mutex};

/// The load averages (1, 5, 15 min) from `/proc/loadavg`, as printed by `uptime`; `?` when
/// absent (not Linux).
pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

/// Read one `kB` field (`VmRSS`, `VmHWM`) of a `/proc/<pid>/status` file, in bytes. None when
/// the file or the field is absent (not Linux).
pub fn status_field(path: &str, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(path).ok()?;
    parse_status_field(&text, field)
}

/// Parse one `kB` field of proc(5) status text, in bytes.
pub fn parse_status_field(text: &str, field: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let rest = l.strip_prefix(field)?.strip_prefix(':')?;
        let kb: u64 = rest.trim().strip_suffix("kB")?.trim().parse().ok()?;
        Some(kb * 1024)
    })
}

/// Current resident set of this process, bytes (0 when unknown).
pub fn rss_now() -> u64 {
    status_field("/proc/self/status", "VmRSS").unwrap_or(0)
}

/// Peak resident set of this process since it started, bytes (0 when unknown).
pub fn rss_peak() -> u64 {
    status_field("/proc/self/status", "VmHWM").unwrap_or(0)
}

/// Samples RSS every `period` on a thread until stopped.
#[derive(Debug)]
pub struct RssSampler {
    samples: Arc<Mutex<Vec<(f64, u64)>>>,
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

impl RssSampler {
    /// Start sampling; times are seconds since `origin`.
    pub fn start(origin: Instant, period: Duration) -> RssSampler {
        let samples = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (s, st) = (samples.clone(), stop.clone());
        let thread = thread::spawn(move || {
            while !st.load(Ordering::Relaxed) {
                let v = rss_now();
                s.lock().push((origin.elapsed().as_secs_f64(), v));
                thread::sleep(period);
            }
        });
        RssSampler {
            samples,
            stop,
            thread: Some(thread),
        }
    }

    /// Largest sample taken between `from_s` and `to_s` (seconds since the origin).
    pub fn peak_between(&self, from_s: f64, to_s: f64) -> u64 {
        self.samples
            .lock()
            .iter()
            .filter(|(t, _)| *t >= from_s && *t <= to_s)
            .map(|(_, v)| *v)
            .max()
            .unwrap_or(0)
    }

    /// Stop and return every sample.
    pub fn finish(mut self) -> Vec<(f64, u64)> {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        std::mem::take(&mut *self.samples.lock())
    }
}

impl Drop for RssSampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_status() {
        let text = "Name:\tx\nVmHWM:\t  2048 kB\nVmRSS:\t  1024 kB\n";
        assert_eq!(parse_status_field(text, "VmRSS"), Some(1024 * 1024));
        assert_eq!(parse_status_field(text, "VmHWM"), Some(2048 * 1024));
        assert_eq!(parse_status_field(text, "VmSwap"), None);
        assert_eq!(parse_status_field("VmRSS: lots kB\n", "VmRSS"), None);
    }
}
