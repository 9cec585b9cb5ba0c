//! An embedded persistent cache on the engine handle: open (or recover), write with TTLs, a
//! transaction, a snapshot, stats, and a clean shutdown.
//!
//! `cargo run --release -p forkless --example embedded_cache [DIR]`

use std::time::Duration;

use forkless::{Config, Engine, Session};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args().nth(1).unwrap_or_else(|| {
        std::env::temp_dir()
            .join("forkless-embedded-cache")
            .display()
            .to_string()
    });
    let mut config = Config::default();
    config.load_str("appendonly yes\nappendfsync everysec\nsave \"60 1000\"\nhz 20\n")?;
    let cache = Engine::open(&dir, config)?;
    println!("opened {dir}: {:?}", cache.open_report());
    for i in 0..10_000u32 {
        cache.set_ex(
            0,
            format!("session:{i}").as_bytes(),
            b"payload",
            Duration::from_secs(2),
        )?;
    }
    let visits = cache.incr(0, b"visits")?;
    cache.transaction(&mut Session::default(), |tx| {
        tx.set(b"last-run", b"now").incr(b"runs");
    })?;
    let snap = cache.snapshot_now(None)?;
    println!(
        "visit {visits}; snapshot of {} keys in {:?}",
        snap.keys, snap.duration
    );
    std::thread::sleep(Duration::from_secs(3));
    let s = cache.stats();
    println!(
        "after 3 s: {} keys in db 0, {} expired by the upkeep, rss {:?}",
        s.keys[0], s.expired_keys, s.rss_bytes
    );
    let r = cache.shutdown()?;
    println!("shutdown in {:?}", r.duration);
    Ok(())
}
