//! Log lines in redis-server's format: `pid:M dd Mon yyyy hh:mm:ss.mmm * message`.
//!
//! Written to stderr (unbuffered, one `write` per line so lines of concurrent tasks never mix);
//! `logfile` redirection is left to the caller's shell or service manager.

use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

use forkless_sync::atomic::{AtomicU8, Ordering};

/// 0 debug, 1 verbose, 2 notice, 3 warning, 4 nothing (redis.conf `loglevel`).
static LEVEL: AtomicU8 = AtomicU8::new(2);

/// Set the level from a `loglevel` value.
pub fn set_level(level: &str) {
    let l = match level {
        "debug" => 0,
        "verbose" => 1,
        "warning" => 3,
        "nothing" => 4,
        _ => 2,
    };
    LEVEL.store(l, Ordering::Relaxed);
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Civil date of a day count since 1970-01-01 (Howard Hinnant's `civil_from_days`).
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// The timestamp part of a log line (UTC).
pub fn timestamp() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let secs = now.as_secs() as i64;
    let (y, m, d) = civil(secs.div_euclid(86_400));
    let s = secs.rem_euclid(86_400);
    format!(
        "{:02} {} {} {:02}:{:02}:{:02}.{:03}",
        d,
        MONTHS[(m - 1) as usize],
        y,
        s / 3600,
        (s / 60) % 60,
        s % 60,
        now.subsec_millis()
    )
}

/// Log one line at notice level (`*`).
pub fn log(msg: &str) {
    if LEVEL.load(Ordering::Relaxed) > 2 {
        return;
    }
    let line = format!("{}:M {} * {}\n", std::process::id(), timestamp(), msg);
    let _ = std::io::stderr().write_all(line.as_bytes());
}

/// Log one line at warning level (`#`).
pub fn warn(msg: &str) {
    if LEVEL.load(Ordering::Relaxed) > 3 {
        return;
    }
    let line = format!("{}:M {} # {}\n", std::process::id(), timestamp(), msg);
    let _ = std::io::stderr().write_all(line.as_bytes());
}

#[cfg(test)]
mod tests {
    #[test]
    fn civil_dates() {
        assert_eq!(super::civil(0), (1970, 1, 1));
        assert_eq!(super::civil(19_723), (2024, 1, 1));
        assert_eq!(super::civil(11_016), (2000, 2, 29));
    }
}
