//! `forkless run`: replies, final dump, and a snapshot taken while the commands run.

use std::path::Path;
use std::process::Command;

use forkless_rdb::model::{Entry, Value};
use forkless_testkit::TempDir;

fn resp(cmds: &[&[&str]]) -> Vec<u8> {
    let mut out = Vec::new();
    for c in cmds {
        let argv: Vec<&[u8]> = c.iter().map(|a| a.as_bytes()).collect();
        forkless_resp::encode_command(&mut out, &argv);
    }
    out
}

fn forkless(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_forkless"))
        .args(args)
        .output()
        .expect("run forkless")
}

fn read_rdb_entries(path: &Path) -> Vec<Entry> {
    let bytes = std::fs::read(path).unwrap();
    let mut rd = forkless_rdb::RdbReader::new(&bytes[..]).unwrap();
    let mut v = Vec::new();
    while let Some(it) = rd.next_item().unwrap() {
        if let forkless_rdb::Item::Entry(e) = it {
            v.push(e);
        }
    }
    forkless_rdb::model::canonicalize(&mut v);
    v
}

fn s(db: u32, k: &str, v: &str) -> Entry {
    Entry {
        db,
        key: k.into(),
        value: Value::String(v.into()),
        expire_at_ms: None,
    }
}

#[test]
fn replies_and_dump() {
    let dir = TempDir::new("run");
    let cmds = dir.path().join("cmds.resp");
    std::fs::write(
        &cmds,
        resp(&[
            &["SET", "a", "1"],
            &["INCR", "a"],
            &["SELECT", "2"],
            &["GET", "a"],
            &["RPUSH", "l", "x", "y"],
            &["LPOP", "nope"],
            &["NOSUCH"],
        ]),
    )
    .unwrap();
    let dump = dir.path().join("final.jsonl");
    let out = forkless(&[
        "run",
        "--commands",
        cmds.to_str().unwrap(),
        "--dump",
        dump.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "+OK\r\n:2\r\n+OK\r\n$-1\r\n:2\r\n$-1\r\n-ERR unknown command 'NOSUCH', with args beginning with: \r\n"
    );
    let entries =
        forkless_dump::read_jsonl(std::io::BufReader::new(std::fs::File::open(&dump).unwrap()))
            .unwrap();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0], s(0, "a", "2"));
    assert_eq!(entries[1].db, 2);
}

#[test]
fn snapshot_while_running() {
    let dir = TempDir::new("run-snap");
    let cmds = dir.path().join("cmds.resp");
    let mut script: Vec<Vec<String>> = Vec::new();
    for i in 0..2000 {
        script.push(vec!["SET".into(), format!("k{i}"), i.to_string()]);
    }
    for i in 0..2000 {
        script.push(vec!["INCR".into(), format!("k{i}")]);
    }
    let refs: Vec<Vec<&str>> = script
        .iter()
        .map(|c| c.iter().map(|a| a.as_str()).collect())
        .collect();
    let refs2: Vec<&[&str]> = refs.iter().map(|c| c.as_slice()).collect();
    std::fs::write(&cmds, resp(&refs2)).unwrap();

    // Point in time after the 2000 SETs: the INCRs that follow are not in it.
    let rdb = dir.path().join("pit.rdb");
    let out = forkless(&[
        "run",
        "--commands",
        cmds.to_str().unwrap(),
        "--snapshot-at",
        "2000",
        "--mode",
        "pit",
        "--out",
        rdb.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got = read_rdb_entries(&rdb);
    assert_eq!(got.len(), 2000);
    for e in &got {
        let i: usize = std::str::from_utf8(&e.key[1..]).unwrap().parse().unwrap();
        assert_eq!(e.value, Value::String(i.to_string().into_bytes()), "{e:?}");
    }
    if let Some(r) = forkless_testkit::redis_load_rdb(&rdb) {
        assert_eq!(r.expect("redis loads the point-in-time snapshot"), got);
    }

    // Converging: the file replays to the final state (every INCR applied once).
    let conv = dir.path().join("conv.aof");
    let dump = dir.path().join("final.jsonl");
    let out = forkless(&[
        "run",
        "--commands",
        cmds.to_str().unwrap(),
        "--snapshot-at",
        "2000",
        "--out",
        conv.to_str().unwrap(),
        "--dump",
        dump.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("snapshot (Converging)"));
    assert!(std::fs::read(&conv).unwrap().starts_with(b"REDIS0010"));
}

#[test]
fn aof_dir_persists_runs_and_reloads() {
    let dir = TempDir::new("run-aof");
    let aof = dir.path().join("appendonlydir");
    let cmds1 = dir.path().join("one.resp");
    let cmds2 = dir.path().join("two.resp");
    std::fs::write(
        &cmds1,
        resp(&[&["SET", "a", "1"], &["SELECT", "3"], &["RPUSH", "l", "x"]]),
    )
    .unwrap();
    std::fs::write(&cmds2, resp(&[&["INCR", "a"], &["HSET", "h", "f", "v"]])).unwrap();
    for (cmds, policy) in [(&cmds1, "always"), (&cmds2, "everysec")] {
        let dump = dir.path().join("d.jsonl");
        let out = forkless(&[
            "run",
            "--commands",
            cmds.to_str().unwrap(),
            "--aof-dir",
            aof.to_str().unwrap(),
            "--appendfsync",
            policy,
            "--dump",
            dump.to_str().unwrap(),
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // The second run started from the first one's state.
    let out = forkless(&["aof", "to-json", aof.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got = forkless_dump::read_jsonl(&out.stdout[..]).unwrap();
    let want = forkless_dump::read_jsonl(std::io::BufReader::new(
        std::fs::File::open(dir.path().join("d.jsonl")).unwrap(),
    ))
    .unwrap();
    assert_eq!(got, want);
    assert_eq!(got.len(), 3);
    assert!(got.contains(&s(0, "a", "2")));
    if let Some(r) = forkless_testkit::redis_load_aof_dir(&aof) {
        assert_eq!(r.expect("redis-server loads the run's AOF"), want);
    }
}
