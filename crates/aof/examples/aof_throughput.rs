//! Throughput of the AOF writer on the real file system, per fsync policy: N threads each
//! execute `SET key <100 B>` through an engine keyspace whose propagation sink is the writer, and
//! wait for the acknowledgement (durability under `always`).
//!
//! `cargo run --release -p forkless-aof --example aof_throughput -- [threads] [writes-per-thread]`

use std::time::Instant;

use forkless_aof::{AofDir, AofDirOptions, FsyncPolicy, WriterOptions};
use forkless_keyspace::{Config, Keyspace, Session};
use forkless_sync::{thread, Arc};

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let threads = args.first().copied().unwrap_or(4);
    let per_thread = args.get(1).copied().unwrap_or(20_000);
    for policy in [FsyncPolicy::Always, FsyncPolicy::EverySec, FsyncPolicy::No] {
        let tmp = forkless_testkit::TempDir::new("aof-bench");
        let dir = tmp.path().join("appendonlydir");
        let mut ks = Keyspace::new(Config::seeded(1));
        let opts = AofDirOptions {
            writer: WriterOptions {
                fsync: policy,
                ..WriterOptions::default()
            },
            ..AofDirOptions::default()
        };
        let aof = AofDir::create(&dir, &[], opts).expect("create AOF dir");
        ks.set_sink(aof.writer());
        let ks = Arc::new(ks);
        let writes = if policy == FsyncPolicy::Always {
            per_thread / 10
        } else {
            per_thread
        };
        let t0 = Instant::now();
        let hs: Vec<_> = (0..threads)
            .map(|t| {
                let (ks, w) = (ks.clone(), aof.writer());
                thread::spawn(move || {
                    let mut s = Session::default();
                    let value = vec![b'x'; 100];
                    for i in 0..writes {
                        let key = format!("key:{t}:{i}");
                        ks.execute(&mut s, &[b"SET", key.as_bytes(), &value]);
                        w.ack_current_thread().expect("ack");
                    }
                })
            })
            .collect();
        for h in hs {
            h.join().expect("join");
        }
        let secs = t0.elapsed().as_secs_f64();
        let m = aof.writer().metrics();
        let total = threads * writes;
        println!(
            "{policy:?}: {threads} threads x {writes} SET: {:.0} writes/s, {:.1} MB/s, {} fsyncs ({:.1} writes per fsync), {} errors, {} delayed fsyncs",
            total as f64 / secs,
            m.bytes_written as f64 / secs / 1e6,
            m.fsyncs,
            total as f64 / m.fsyncs.max(1) as f64,
            m.errors,
            m.delayed_fsyncs
        );
        drop(ks);
        aof.close().expect("close");
    }
}
