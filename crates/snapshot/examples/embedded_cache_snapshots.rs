//! An embedded cache that persists itself with forkless snapshots: at start it restores from
//! the newest snapshot in its directory (`forkless_snapshot::load`: the RDB part, then the RESP
//! deltas after it replayed, the "RDB preamble + AOF" layout of converging snapshots), then
//! serves writes from a few threads while a converging snapshot is taken every 500 ms into
//! `snap-<n>.rdb`, keeping the newest three.
//!
//! ```text
//! cargo run --release -p forkless-snapshot --example embedded_cache_snapshots [DIR] [SECONDS]
//! ```
//! Run it twice with the same DIR: the second run starts from the first run's last snapshot.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use forkless_keyspace::{Config, Keyspace};
use forkless_snapshot::{install, start_snapshot, Mode, SnapshotOptions};
use forkless_sync::atomic::{AtomicBool, AtomicU64, Ordering};
use forkless_sync::{thread, Arc};

/// Snapshot files in `dir`, oldest first (by the number in `snap-<n>.rdb`).
fn snapshots(dir: &Path) -> Vec<(u64, PathBuf)> {
    let mut v: Vec<(u64, PathBuf)> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter_map(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    let n = name
                        .strip_prefix("snap-")?
                        .strip_suffix(".rdb")?
                        .parse()
                        .ok()?;
                    Some((n, e.path()))
                })
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Restore `ks` from a snapshot file: RDB entries, then the deltas ([`forkless_snapshot::load`]).
fn restore(ks: &Keyspace, path: &Path) -> Result<usize, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let stats =
        forkless_snapshot::load(&bytes, ks).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(stats.delta_commands as usize)
}

fn main() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let dir = PathBuf::from(args.next().unwrap_or_else(|| {
        std::env::temp_dir()
            .join("forkless-embedded-cache")
            .to_string_lossy()
            .into_owned()
    }));
    let seconds: f64 = args
        .next()
        .map(|s| {
            s.parse()
                .map_err(|_| format!("SECONDS {s:?} is not a number"))
        })
        .transpose()?
        .unwrap_or(3.0);
    let every = Duration::from_millis(500);
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;

    let mut ks = Keyspace::new(Config::default());
    let obs = install(&mut ks);
    let ks = Arc::new(ks);
    let existing = snapshots(&dir);
    let mut next = existing.last().map(|(n, _)| n + 1).unwrap_or(0);
    if let Some((_, newest)) = existing.last() {
        let t = Instant::now();
        let deltas = restore(&ks, newest)?;
        println!(
            "restored {} keys from {} ({deltas} delta commands) in {:.0} ms",
            ks.dbsize(0),
            newest.display(),
            t.elapsed().as_secs_f64() * 1000.0
        );
    } else {
        println!("no snapshot in {}: starting empty", dir.display());
    }

    // The application: writer threads updating the cache.
    let stop = Arc::new(AtomicBool::new(false));
    let writes = Arc::new(AtomicU64::new(0));
    let writers: Vec<_> = (0..2u64)
        .map(|w| {
            let (ks, stop, writes) = (ks.clone(), stop.clone(), writes.clone());
            thread::spawn(move || {
                let mut i = w;
                while !stop.load(Ordering::Relaxed) {
                    let key = format!("user:{}", i % 50_000);
                    let _ = ks.set(0, key.as_bytes(), format!("profile-{i}").as_bytes());
                    let _ = ks.incr(0, b"visits");
                    i += 2;
                    writes.fetch_add(2, Ordering::Relaxed);
                }
            })
        })
        .collect();

    let end = Instant::now() + Duration::from_secs_f64(seconds);
    while Instant::now() < end {
        thread::sleep(every);
        let path = dir.join(format!("snap-{next}.rdb"));
        let opts = SnapshotOptions {
            mode: Mode::Converging,
            ..Default::default()
        };
        let res = start_snapshot(ks.clone(), &obs, &path, opts)
            .and_then(|h| h.wait())
            .map_err(|e| format!("snapshot {}: {e}", path.display()))?;
        println!(
            "{}: {} keys + {} delta commands, {:.1} MB/s, {:.0} ms",
            path.display(),
            res.keys,
            res.delta_commands,
            res.mb_per_s,
            res.duration.as_secs_f64() * 1000.0
        );
        next += 1;
        let all = snapshots(&dir);
        for (_, old) in all.iter().take(all.len().saturating_sub(3)) {
            let _ = std::fs::remove_file(old);
        }
    }
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        let _ = w.join();
    }
    let visits = ks
        .get(0, b"visits")
        .map_err(|e| format!("GET visits: {e:?}"))?;
    println!(
        "{} writes; visits = {}",
        writes.load(Ordering::Relaxed),
        String::from_utf8_lossy(&visits.unwrap_or_default())
    );
    Ok(())
}
