//! Multithread smoke test: 4 threads run MSET/MGET/RENAME/INCR/COPY/DEL on keys spread over
//! all shards (multi-key commands lock several shards in ascending order). Checks: no deadlock
//! (every thread finishes within a deadline), multi-shard commands are atomic (an MGET never sees
//! half of an MSET), no INCR is lost, renames never lose or duplicate a value, and the propagated
//! stream replays to the same keyspace.

use crate::support;

use forkless_keyspace::{Config, Reply, Session};
use forkless_sync::thread;
use forkless_sync::Arc;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::time::{Duration, Instant};

const THREADS: usize = 4;
const OPS: usize = 4000;
const MKEYS: usize = 10;
const COUNTERS: usize = 8;

fn b(s: &str) -> Vec<u8> {
    s.as_bytes().to_vec()
}

fn exec(ks: &forkless_keyspace::Keyspace, s: &mut Session, argv: &[Vec<u8>]) -> Reply {
    let a: Vec<&[u8]> = argv.iter().map(|x| x.as_slice()).collect();
    ks.execute(s, &a)
}

#[test]
fn four_threads_no_deadlock_consistent_state() {
    let config = Config {
        shards: 16,
        ..Config::seeded(11)
    };
    let (ks, sink) = support::keyspace_with_sink(config.clone());
    let ks = Arc::new(ks);
    let mut s = Session::default();
    exec(&ks, &mut s, &[b("SET"), b("r:a"), b("payload")]);
    let mut handles = Vec::new();
    for t in 0..THREADS {
        let ks = ks.clone();
        handles.push(thread::spawn(move || {
            let mut rng = StdRng::seed_from_u64(t as u64);
            let mut s = Session::default();
            let mut incrs = 0u64;
            for i in 0..OPS {
                match rng.gen_range(0..5) {
                    0 => {
                        let v = format!("t{t}-{i}");
                        let mut argv = vec![b("MSET")];
                        for k in 0..MKEYS {
                            argv.push(format!("m{k}").into_bytes());
                            argv.push(b(&v));
                        }
                        assert_eq!(exec(&ks, &mut s, &argv), Reply::ok());
                    }
                    1 => {
                        let mut argv = vec![b("MGET")];
                        argv.extend((0..MKEYS).map(|k| format!("m{k}").into_bytes()));
                        let Reply::Array(vals) = exec(&ks, &mut s, &argv) else {
                            panic!("MGET reply")
                        };
                        assert!(vals.windows(2).all(|w| w[0] == w[1]), "torn MSET: {vals:?}");
                    }
                    2 => {
                        let k = format!("c{}", rng.gen_range(0..COUNTERS));
                        assert!(matches!(
                            exec(&ks, &mut s, &[b("INCR"), b(&k)]),
                            Reply::Integer(_)
                        ));
                        incrs += 1;
                    }
                    3 => {
                        // Move the payload back and forth; whichever name holds it now.
                        let (from, to) = if rng.gen_bool(0.5) {
                            ("r:a", "r:b")
                        } else {
                            ("r:b", "r:a")
                        };
                        let r = exec(&ks, &mut s, &[b("RENAMENX"), b(from), b(to)]);
                        assert!(
                            r == Reply::Integer(1)
                                || r == Reply::Integer(0)
                                || r == Reply::no_such_key(),
                            "{r:?}"
                        );
                    }
                    _ => {
                        let k = format!("x{}", rng.gen_range(0..20));
                        let k2 = format!("y{}", rng.gen_range(0..20));
                        let cmd = match rng.gen_range(0..3) {
                            0 => vec![b("COPY"), b(&k), b(&k2), b("REPLACE")],
                            1 => vec![b("SET"), b(&k), b(&k2)],
                            _ => vec![b("DEL"), b(&k), b(&k2)],
                        };
                        assert!(!exec(&ks, &mut s, &cmd).is_error());
                    }
                }
            }
            incrs
        }));
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while !handles.iter().all(|h| h.is_finished()) {
        assert!(
            Instant::now() < deadline,
            "threads did not finish: deadlock?"
        );
        thread::sleep(Duration::from_millis(10));
    }
    let total: u64 = handles
        .into_iter()
        .map(|h| h.join().expect("thread panicked"))
        .sum();
    let mut sum = 0u64;
    for c in 0..COUNTERS {
        if let Reply::Bulk(v) = exec(&ks, &mut s, &[b("GET"), format!("c{c}").into_bytes()]) {
            sum += std::str::from_utf8(&v).unwrap().parse::<u64>().unwrap();
        }
    }
    assert_eq!(sum, total, "lost INCRs");
    let a = exec(&ks, &mut s, &[b("GET"), b("r:a")]);
    let bb = exec(&ks, &mut s, &[b("GET"), b("r:b")]);
    let payload = Reply::Bulk(b("payload"));
    assert!(
        (a == payload) ^ (bb == payload),
        "rename lost or duplicated: {a:?} {bb:?}"
    );
    // Writes to one key reach the sink in execution order, so the stream replays exactly.
    let replayed = support::replay(&sink.ops(), config);
    assert_eq!(replayed.dump(), ks.dump());
}
