//! `forkless aof to-json DIR --until-timestamp T` across rewrites (history generations kept
//! with `history_generations`), and `forkless aof check DIR` listing the generations.

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use forkless_aof::{rewrite, AofDir, AofDirOptions, FsyncPolicy, WriterOptions};
use forkless_keyspace::{Config, Keyspace, Session};
use forkless_rdb::Entry;
use forkless_testkit::TempDir;

const T0: i64 = 1_700_000_000;

fn forkless(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_forkless"))
        .args(args)
        .output()
        .expect("run forkless")
}

fn jsonl(entries: &[Entry]) -> String {
    let mut out = Vec::new();
    forkless_dump::write_jsonl(&mut out, entries).unwrap();
    String::from_utf8(out).unwrap()
}

/// Seconds T0..T0+8, rewrites at the end of seconds 1, 3, 5 and 7, 3 generations kept: the
/// canonical JSONL of the live keyspace at the end of each second.
fn build(dir: &Path) -> Vec<(i64, String)> {
    let clock = Arc::new(AtomicI64::new(T0));
    let c = clock.clone();
    let opts = AofDirOptions {
        writer: WriterOptions {
            fsync: FsyncPolicy::EverySec,
            timestamps: true,
            clock: Some(Arc::new(move || c.load(Ordering::SeqCst))),
            ..WriterOptions::default()
        },
        history_generations: 3,
        ..AofDirOptions::default()
    };
    let mut ks = Keyspace::new(Config::seeded(1));
    let aof = AofDir::create(dir, &[], opts).unwrap();
    ks.set_sink(aof.writer());
    let obs = forkless_snapshot::install(&mut ks);
    let ks = Arc::new(ks);
    let mut s = Session::default();
    let mut states = Vec::new();
    for sec in 0..9i64 {
        clock.store(T0 + sec, Ordering::SeqCst);
        for i in 0..80 {
            let k = format!("k{}", (i * 7 + sec) % 23);
            let v = format!("{sec}-{i}");
            let db = (i % 3).to_string();
            ks.execute(&mut s, &[b"SELECT", db.as_bytes()]);
            ks.execute(&mut s, &[b"SET", k.as_bytes(), v.as_bytes()]);
            ks.execute(&mut s, &[b"HINCRBY", b"h", k.as_bytes(), b"1"]);
            if i % 9 == 0 {
                ks.execute(&mut s, &[b"DEL", k.as_bytes()]);
            }
            aof.writer().ack_current_thread().unwrap();
        }
        if sec % 2 == 1 {
            rewrite(&aof, &ks, &obs).unwrap();
        }
        states.push((T0 + sec, jsonl(&ks.dump())));
    }
    aof.close().unwrap();
    states
}

#[test]
fn to_json_until_timestamp_reaches_back_across_rewrites_and_check_lists_history() {
    let tmp = TempDir::new("cli-aof-history");
    let dir = tmp.path().join("appendonlydir");
    let states = build(&dir);
    let d = dir.to_string_lossy().into_owned();
    // Four rewrites, three generations kept: gen-2 (cut at the end of second 1), gen-3, gen-4;
    // the live base 5 is cut at the end of second 7.
    let o = forkless(&["aof", "check", &d]);
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        o.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    for g in ["gen-2", "gen-3", "gen-4"] {
        assert!(
            out.lines()
                .any(|l| l.starts_with(&format!("  history/{g}: valid,"))),
            "{out}"
        );
    }
    assert!(!out.contains("gen-1"), "only 3 generations kept: {out}");
    assert!(out.contains(&format!("base cut at {}", T0 + 7)), "{out}");

    for (t, want) in &states {
        let ts = t.to_string();
        let o = forkless(&["aof", "to-json", &d, "--until-timestamp", &ts]);
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        if *t < T0 + 1 {
            assert!(!o.status.success());
            assert!(
                err.contains("older than the oldest retained point"),
                "T = {t}: {err}"
            );
            continue;
        }
        assert!(o.status.success(), "T = {t}: {err}");
        assert!(
            String::from_utf8_lossy(&o.stdout) == *want,
            "T = {t}: to-json differs from the live keyspace at the end of that second"
        );
        if *t < T0 + 7 {
            assert!(err.contains("recovering from history/gen-"), "{err}");
        }
    }

    // A generation with a file missing: recovery into the range it covered is refused (the
    // older generation ends where its base starts, which can no longer be checked), recovery
    // before it still works.
    let g3 = dir.join("history/gen-3");
    let incr3 = std::fs::read_dir(&g3)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with(".incr.aof"))
        .unwrap();
    let saved = std::fs::read(&incr3).unwrap();
    std::fs::remove_file(&incr3).unwrap();
    let o = forkless(&["aof", "check", &d]);
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(o.status.success(), "{out}");
    assert!(out.contains("history/gen-3: incomplete"), "{out}");
    let ts = (T0 + 4).to_string();
    let o = forkless(&["aof", "to-json", &d, "--until-timestamp", &ts]);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(!o.status.success());
    assert!(err.contains("incomplete"), "{err}");
    let ts = (T0 + 2).to_string();
    let o = forkless(&["aof", "to-json", &d, "--until-timestamp", &ts]);
    assert!(o.status.success());
    assert!(String::from_utf8_lossy(&o.stdout) == states[2].1);
    std::fs::write(&incr3, saved).unwrap();

    // An incomplete generation (here: assembled when a crash happened) is reported, not fatal.
    std::fs::rename(dir.join("history/gen-2"), dir.join("history/gen-2.tmp")).unwrap();
    let o = forkless(&["aof", "check", &d]);
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(o.status.success(), "{out}");
    assert!(out.contains("history/gen-2.tmp: incomplete"), "{out}");
    let ts = (T0 + 2).to_string();
    let o = forkless(&["aof", "to-json", &d, "--until-timestamp", &ts]);
    assert!(!o.status.success());
    let ts = (T0 + 4).to_string();
    let o = forkless(&["aof", "to-json", &d, "--until-timestamp", &ts]);
    assert!(o.status.success());
    assert!(String::from_utf8_lossy(&o.stdout) == states[4].1);
    // Without a timestamp: the live AOF, as before.
    let o = forkless(&["aof", "to-json", &d]);
    assert!(o.status.success());
    assert!(String::from_utf8_lossy(&o.stdout) == states[8].1);
}
