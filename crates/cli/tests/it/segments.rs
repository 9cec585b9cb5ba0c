//! `forkless run --segments-dir`, `forkless segments check|to-json|export`: run twice on the
//! same directory (recover, then continue), the recovered keyspace equals the live one, and the
//! export loads into redis-server 7.0.15 with the same keyspace (mandatory oracle in CI).

use std::path::Path;
use std::process::Command;

use forkless_testkit::TempDir;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn forkless(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_forkless"))
        .args(args)
        .output()
        .expect("run forkless")
}

fn ok(args: &[&str]) -> std::process::Output {
    let o = forkless(args);
    assert!(
        o.status.success(),
        "forkless {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

/// A file of random commands over every type (with SELECT and long expiries).
fn commands(path: &Path, seed: u64, n: usize) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut out = Vec::new();
    for i in 0..n {
        let k = format!("k{}", rng.gen_range(0..400));
        let v = i.to_string();
        let c: Vec<&str> = match rng.gen_range(0..10) {
            0 => vec!["SET", &k, &v],
            1 => vec!["INCR", "ctr"],
            2 => vec!["RPUSH", &k, &v],
            3 => vec!["SADD", &k, &v],
            4 => vec!["HSET", &k, "f", &v],
            5 => vec!["ZADD", &k, &v, "m"],
            6 => vec!["EXPIRE", &k, "100000"],
            7 => vec!["SELECT", if i % 2 == 0 { "1" } else { "0" }],
            8 => vec!["DEL", &k],
            _ => vec!["APPEND", "log", "x"],
        };
        let argv: Vec<&[u8]> = c.iter().map(|a| a.as_bytes()).collect();
        forkless_resp::encode_command(&mut out, &argv);
    }
    std::fs::write(path, out).unwrap();
}

#[test]
fn run_twice_recovers_and_continues_then_check_to_json_and_export() {
    let tmp = TempDir::new("cli-seg");
    let p = |n: &str| tmp.path().join(n).to_string_lossy().into_owned();
    commands(&tmp.path().join("a.resp"), 1, 12_000);
    commands(&tmp.path().join("b.resp"), 2, 12_000);
    let seg = p("seg");
    ok(&[
        "run",
        "--commands",
        &p("a.resp"),
        "--segments-dir",
        &seg,
        "--segment-bytes",
        "20000",
        "--snapshot-every",
        "2500",
        "--mode",
        "pit",
        "--appendfsync",
        "no",
        "--dump",
        &p("live1.jsonl"),
    ]);
    let o = ok(&[
        "run",
        "--commands",
        &p("b.resp"),
        "--segments-dir",
        &seg,
        "--segment-bytes",
        "20000",
        "--snapshot-every",
        "3000",
        "--mode",
        "converging",
        "--dump",
        &p("live2.jsonl"),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("recovered from snapshot."), "{err}");
    // The second run started from the first one's state: its live dump is not the same.
    let live1 = std::fs::read(p("live1.jsonl")).unwrap();
    let live2 = std::fs::read(p("live2.jsonl")).unwrap();
    assert_ne!(live1, live2);

    let o = ok(&["segments", "to-json", &seg]);
    assert_eq!(
        o.stdout, live2,
        "recovered keyspace = live keyspace at the end"
    );

    let o = ok(&["segments", "check", &seg]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("no problems"), "{text}");
    assert!(text.contains("recovery would use: snapshot."), "{text}");
    assert!(text.contains("converging, cut at segment"), "{text}");

    let out = p("aof");
    ok(&["segments", "export", &seg, "--out", &out]);
    // Our own AOF loader agrees...
    let o = ok(&["aof", "to-json", &out]);
    assert_eq!(o.stdout, live2);
    // ...and so does redis-server 7.0.15.
    if let Some(r) = forkless_testkit::redis_load_aof_dir(Path::new(&out)) {
        let redis = r.expect("redis-server loads the exported directory");
        let ours = forkless_dump::read_jsonl(&live2[..]).unwrap();
        assert_eq!(redis, ours, "redis-server's keyspace = ours");
    }
    // Exporting again into the same directory is refused, naming it.
    let o = forkless(&["segments", "export", &seg, "--out", &out]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("already holds an AOF manifest"));
}

#[test]
fn check_reports_a_corrupt_snapshot_and_exits_1() {
    let tmp = TempDir::new("cli-seg-bad");
    let p = |n: &str| tmp.path().join(n).to_string_lossy().into_owned();
    commands(&tmp.path().join("a.resp"), 3, 6_000);
    let seg = p("seg");
    ok(&[
        "run",
        "--commands",
        &p("a.resp"),
        "--segments-dir",
        &seg,
        "--snapshot-every",
        "2000",
        "--dump",
        &p("live.jsonl"),
    ]);
    let m = forkless_segments::SegManifest::load(Path::new(&seg)).unwrap();
    // Snapshots due while one runs are coalesced, so 2 or 3 were taken; all are kept.
    assert!((2..=3).contains(&m.snapshots.len()), "{m:?}");
    let newest = tmp
        .path()
        .join("seg")
        .join(m.snapshots.last().unwrap().name());
    let mut bytes = std::fs::read(&newest).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    std::fs::write(&newest, bytes).unwrap();
    let o = forkless(&["segments", "check", &seg]);
    assert_eq!(o.status.code(), Some(1));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("REFUSED") && text.contains("CRC-64"),
        "{text}"
    );
    // Recovery falls back to the previous snapshot and still gives the live keyspace.
    let o = ok(&["segments", "to-json", &seg]);
    assert_eq!(o.stdout, std::fs::read(p("live.jsonl")).unwrap());
    assert!(String::from_utf8_lossy(&o.stderr).contains("refused"));
    // A missing directory is one clear line and exit 1.
    let o = forkless(&["segments", "check", &p("nope")]);
    assert_eq!(o.status.code(), Some(1));
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(
        e.starts_with("forkless: segments check") && e.contains("segments.manifest"),
        "{e}"
    );
}
