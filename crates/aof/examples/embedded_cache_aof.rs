//! An embedded cache made durable by an append-only file: at start it loads its Redis 7
//! multi-part AOF directory (`AofDir::open`: manifest, base, incr files; a torn tail is cut)
//! or creates one, then writer threads update the cache with every write propagated to the AOF
//! writer (fsync `everysec`), and the AOF is compacted once a second by a forkless rewrite
//! (`forkless_aof::rewrite`: a converging snapshot becomes the new base while writes go on).
//!
//! ```text
//! cargo run --release -p forkless-aof --example embedded_cache_aof [DIR] [SECONDS]
//! ```
//! Run it twice with the same DIR: the second run starts with the first run's keys.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use forkless_aof::{rewrite, AofDir, AofDirOptions, FsyncPolicy, WriterOptions};
use forkless_keyspace::{Config, Keyspace};
use forkless_sync::atomic::{AtomicBool, AtomicU64, Ordering};
use forkless_sync::{thread, Arc};

fn main() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let dir = args.next().map(PathBuf::from).unwrap_or_else(|| {
        std::env::temp_dir()
            .join("forkless-embedded-cache-aof")
            .join("appendonlydir")
    });
    let seconds: f64 = args
        .next()
        .map(|s| {
            s.parse()
                .map_err(|_| format!("SECONDS {s:?} is not a number"))
        })
        .transpose()?
        .unwrap_or(3.0);
    let opts = AofDirOptions {
        writer: WriterOptions {
            fsync: FsyncPolicy::EverySec,
            ..WriterOptions::default()
        },
        ..AofDirOptions::default()
    };

    let mut ks = Keyspace::new(Config::default());
    let obs = forkless_snapshot::install(&mut ks);
    let t = Instant::now();
    let aof = if dir.join(format!("{}.manifest", opts.filename)).exists() {
        let (aof, report) =
            AofDir::open(&dir, &ks, opts).map_err(|e| format!("{}: {e}", dir.display()))?;
        println!(
            "loaded {} keys from {} ({} files, {} base keys, {} commands) in {:.0} ms",
            ks.dbsize(0),
            dir.display(),
            report.files.len(),
            report.rdb_keys,
            report.commands,
            t.elapsed().as_secs_f64() * 1000.0
        );
        aof
    } else {
        println!("no AOF in {}: starting empty", dir.display());
        AofDir::create(&dir, &[], opts).map_err(|e| format!("{}: {e}", dir.display()))?
    };
    ks.set_sink(aof.writer());
    let ks = Arc::new(ks);

    let stop = Arc::new(AtomicBool::new(false));
    let writes = Arc::new(AtomicU64::new(0));
    let writers: Vec<_> = (0..2u64)
        .map(|w| {
            let (ks, stop, writes) = (ks.clone(), stop.clone(), writes.clone());
            thread::spawn(move || {
                let mut i = w;
                while !stop.load(Ordering::Relaxed) {
                    let key = format!("session:{}", i % 20_000);
                    let _ = ks.set(0, key.as_bytes(), format!("token-{i}").as_bytes());
                    let _ = ks.incr(0, b"requests");
                    i += 2;
                    writes.fetch_add(2, Ordering::Relaxed);
                }
            })
        })
        .collect();

    let end = Instant::now() + Duration::from_secs_f64(seconds);
    while Instant::now() < end {
        thread::sleep(Duration::from_secs(1).min(end.saturating_duration_since(Instant::now())));
        let res = rewrite(&aof, &ks, &obs).map_err(|e| format!("AOF rewrite: {e}"))?;
        println!(
            "rewrite: new base of {} keys + {} delta commands in {:.0} ms; manifest: {:?}",
            res.keys,
            res.delta_commands,
            res.duration.as_secs_f64() * 1000.0,
            aof.manifest()
        );
    }
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        let _ = w.join();
    }
    let requests = ks
        .get(0, b"requests")
        .map_err(|e| format!("GET requests: {e:?}"))?;
    aof.close().map_err(|e| format!("closing the AOF: {e}"))?;
    println!(
        "{} writes; requests = {}; AOF closed in {}",
        writes.load(Ordering::Relaxed),
        String::from_utf8_lossy(&requests.unwrap_or_default()),
        dir.display()
    );
    Ok(())
}
