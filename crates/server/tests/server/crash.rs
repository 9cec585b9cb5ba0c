//! kill -9 of the real server process under `appendfsync always`: every write whose reply
//! reached a client is there after the restart, and the `appendonlydir` loads in redis-server
//! 7.0.15 to the same keyspace.

use std::io::BufReader;
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use forkless_rdb::model::Value;
use forkless_testkit::{encode_command, read_reply, Launch, Process, Reply, ReplyExt, TempDir};

use crate::common::Client;

/// Start `forkless-server` on `dir` with `appendonly yes`, `appendfsync always`.
fn start(dir: &std::path::Path) -> (Process, u16) {
    start_with(dir, &["--appendonly", "yes", "--appendfsync", "always"])
}

/// Start `forkless-server` on `dir` with `args` on a free port; wait until it has loaded.
fn start_with(dir: &std::path::Path, args: &[&str]) -> (Process, u16) {
    let server = Launch::program(env!("CARGO_BIN_EXE_forkless-server"), &[] as &[&str], dir)
        .args(args)
        .start()
        .unwrap_or_else(|e| panic!("forkless-server did not start: {e}"));
    let port = server.port();
    (server, port)
}

#[test]
fn kill_9_under_appendfsync_always_keeps_every_acknowledged_write() {
    let dir = TempDir::new("server-crash");
    let (mut server, port) = start(dir.path());
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..4).map(|t| counter_writer(port, t, &stop)).collect();
    let t0 = Instant::now();
    std::thread::sleep(Duration::from_millis(800));
    // SIGKILL while the writers run.
    server.kill().unwrap();
    stop.store(true, Ordering::Relaxed);
    let acked: Vec<(i64, i64, i64)> = writers.into_iter().map(|w| w.join().unwrap()).collect();
    assert!(
        acked.iter().all(|a| a.0 > 0),
        "no write acknowledged in {:?}: {acked:?}",
        t0.elapsed()
    );
    let (restarted, port) = start(dir.path());
    let state = check_counters(port, &acked);
    drop(restarted);
    check_in_redis(dir.path(), &state);
}

/// A client that alternates `INCR c<t>` and `RPUSH l<t> <i>` until `stop` or an error, and
/// returns (last INCR reply, last RPUSH reply, INCRs sent).
fn counter_writer(
    port: u16,
    t: usize,
    stop: &Arc<AtomicBool>,
) -> std::thread::JoinHandle<(i64, i64, i64)> {
    let stop = stop.clone();
    std::thread::spawn(move || {
        let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut w = s.try_clone().unwrap();
        let mut r = BufReader::new(s);
        let (mut incr_acked, mut push_acked) = (0i64, 0i64);
        let ck = format!("c{t}");
        let lk = format!("l{t}");
        let mut i = 0i64;
        while !stop.load(Ordering::Relaxed) {
            i += 1;
            let is = i.to_string();
            let cmds = [
                encode_command(&[b"INCR", ck.as_bytes()]),
                encode_command(&[b"RPUSH", lk.as_bytes(), is.as_bytes()]),
            ];
            let mut ok = true;
            for (n, c) in cmds.iter().enumerate() {
                if std::io::Write::write_all(&mut w, c).is_err() {
                    ok = false;
                    break;
                }
                match read_reply(&mut r) {
                    Ok(Reply::Integer(v)) if n == 0 => incr_acked = v,
                    Ok(Reply::Integer(v)) => push_acked = v,
                    _ => {
                        ok = false;
                        break;
                    }
                }
            }
            if !ok {
                break;
            }
        }
        (incr_acked, push_acked, i)
    })
}

/// The restarted server on `port` holds every acknowledged write of [`counter_writer`]s and no
/// write twice (each list is `1..n`); returns (counter, list length) per writer. Shuts the
/// server down.
fn check_counters(port: u16, acked: &[(i64, i64, i64)]) -> Vec<(i64, usize)> {
    let mut c = Client::connect(port);
    let mut state = Vec::new();
    for (t, (incr_acked, push_acked, sent)) in acked.iter().enumerate() {
        let v: i64 = String::from_utf8(c.call(&["GET", &format!("c{t}")]).bytes())
            .unwrap()
            .parse()
            .unwrap();
        assert!(
            v >= *incr_acked && v <= *sent,
            "counter c{t}: {v} recovered, {incr_acked} acknowledged, {sent} sent"
        );
        let list = c.call(&["LRANGE", &format!("l{t}"), "0", "-1"]).array();
        assert!(
            list.len() as i64 >= *push_acked,
            "list l{t}: {} < {push_acked}",
            list.len()
        );
        for (i, e) in list.iter().enumerate() {
            assert_eq!(
                e.bytes(),
                (i + 1).to_string().into_bytes(),
                "list l{t} is a prefix"
            );
        }
        state.push((v, list.len()));
    }
    c.send(&["SHUTDOWN", "NOSAVE"]);
    state
}

/// The `appendonlydir` under `dir` loads in redis-server 7.0.15 to the counters and lists of
/// `state` (skipped without redis-server, unless the oracle is required).
fn check_in_redis(dir: &std::path::Path, state: &[(i64, usize)]) {
    let Some(loaded) = forkless_testkit::redis_load_aof_dir(&dir.join("appendonlydir")) else {
        return;
    };
    let entries = loaded.expect("redis-server loads the appendonlydir");
    for (t, (v, len)) in state.iter().enumerate() {
        let ce = entries
            .iter()
            .find(|e| e.key == format!("c{t}").into_bytes())
            .expect("counter in redis");
        assert_eq!(ce.value, Value::String(v.to_string().into_bytes()));
        let le = entries
            .iter()
            .find(|e| e.key == format!("l{t}").into_bytes())
            .expect("list in redis");
        match &le.value {
            Value::List(items) => assert_eq!(items.len(), *len),
            other => panic!("l{t} is {other:?}"),
        }
    }
}

/// `CONFIG SET appendonly yes` on a running server under a write load, then kill -9: the AOF
/// started from a point-in-time snapshot (the keys written before) plus everything logged after
/// its start barrier, so after a restart with `--appendonly yes` every preloaded key and every
/// acknowledged write is there exactly once (a write in both the base and the incr file would
/// show as a duplicate list element), and redis-server 7.0.15 loads the directory to the same.
#[test]
fn appendonly_turned_on_at_run_time_under_load_survives_kill_9() {
    let dir = TempDir::new("server-aof-on");
    let (mut server, port) = start_with(dir.path(), &["--appendfsync", "always"]);
    let mut c = Client::connect(port);
    const PRE: usize = 20_000;
    for b in 0..PRE / 1000 {
        let mut argv = vec!["MSET".to_string()];
        for i in b * 1000..(b + 1) * 1000 {
            argv.push(format!("pre{i}"));
            argv.push(format!("v{i}"));
        }
        let refs: Vec<&str> = argv.iter().map(String::as_str).collect();
        assert_eq!(c.call(&refs), crate::common::simple("OK"));
    }
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..3).map(|t| counter_writer(port, t, &stop)).collect();
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(
        c.call(&["CONFIG", "SET", "appendonly", "yes"]),
        crate::common::simple("OK")
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let info = String::from_utf8(c.call(&["INFO", "persistence"]).bytes()).unwrap();
        assert!(info.contains("aof_enabled:1"), "{info}");
        if info.contains("aof_rewrite_in_progress:0") {
            break;
        }
        assert!(Instant::now() < deadline, "the AOF did not start: {info}");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(300));
    server.kill().unwrap();
    stop.store(true, Ordering::Relaxed);
    let acked: Vec<(i64, i64, i64)> = writers.into_iter().map(|w| w.join().unwrap()).collect();
    let (restarted, port) = start(dir.path());
    let mut c = Client::connect(port);
    assert_eq!(
        c.call(&["DBSIZE"]),
        Reply::Integer((PRE + 2 * acked.len()) as i64)
    );
    for i in (0..PRE).step_by(997) {
        assert_eq!(
            c.call(&["GET", &format!("pre{i}")]).bytes(),
            format!("v{i}").into_bytes()
        );
    }
    let state = check_counters(port, &acked);
    drop(restarted);
    check_in_redis(dir.path(), &state);
}

/// A script-heavy workload (a Lua rate limiter whose effects are three writes, and a Lua lock
/// release), SIGKILLed under `appendfsync always`: every acknowledged script is there after the
/// restart, and no script is there in part (its effects are one MULTI/EXEC unit in the log).
#[test]
fn kill_9_of_a_script_workload_keeps_whole_acknowledged_scripts() {
    const LIMITER: &[u8] = b"local n = redis.call('incr', KEYS[1]) \
        redis.call('rpush', KEYS[2], n) \
        redis.call('pexpire', KEYS[1], 600000) \
        return n";
    const RELEASE: &[u8] = b"if redis.call('get', KEYS[1]) == ARGV[1] then \
        return redis.call('del', KEYS[1]) else return 0 end";
    let dir = TempDir::new("server-crash-scripts");
    let (mut server, port) = start(dir.path());
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..3)
        .map(|t| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                let mut w = s.try_clone().unwrap();
                let mut r = BufReader::new(s);
                let ck = format!("rate{t}");
                let lk = format!("log{t}");
                let lock = format!("lock{t}");
                let (mut acked, mut sent) = (0i64, 0i64);
                let mut i = 0u64;
                'outer: while !stop.load(Ordering::Relaxed) {
                    i += 1;
                    let token = i.to_string();
                    let cmds = [
                        encode_command(&[
                            b"SET",
                            lock.as_bytes(),
                            token.as_bytes(),
                            b"NX",
                            b"PX",
                            b"60000",
                        ]),
                        encode_command(&[b"EVAL", LIMITER, b"2", ck.as_bytes(), lk.as_bytes()]),
                        encode_command(&[
                            b"EVAL",
                            RELEASE,
                            b"1",
                            lock.as_bytes(),
                            token.as_bytes(),
                        ]),
                    ];
                    for (n, c) in cmds.iter().enumerate() {
                        if n == 1 {
                            sent += 1;
                        }
                        if std::io::Write::write_all(&mut w, c).is_err() {
                            break 'outer;
                        }
                        match read_reply(&mut r) {
                            Ok(Reply::Integer(v)) if n == 1 => acked = v,
                            Ok(Reply::Integer(1)) if n == 2 => {}
                            Ok(Reply::Simple(_)) if n == 0 => {}
                            Ok(other) => panic!("step {n}: {other:?}"),
                            Err(_) => break 'outer,
                        }
                    }
                }
                (acked, sent)
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(800));
    server.kill().unwrap();
    stop.store(true, Ordering::Relaxed);
    let acked: Vec<(i64, i64)> = writers.into_iter().map(|w| w.join().unwrap()).collect();
    assert!(
        acked.iter().all(|a| a.0 > 0),
        "no script acknowledged: {acked:?}"
    );

    let (restarted, port) = start(dir.path());
    let mut c = Client::connect(port);
    let mut state = Vec::new();
    for (t, (acked, sent)) in acked.iter().enumerate() {
        let n: i64 = String::from_utf8(c.call(&["GET", &format!("rate{t}")]).bytes())
            .unwrap()
            .parse()
            .unwrap();
        assert!(
            n >= *acked && n <= *sent,
            "rate{t}: {n} recovered, {acked} acknowledged, {sent} sent"
        );
        let log = c.call(&["LRANGE", &format!("log{t}"), "0", "-1"]).array();
        // The INCR and the RPUSH of one script are both there or both not.
        assert_eq!(
            log.len() as i64,
            n,
            "log{t} has one entry per counted script"
        );
        for (i, e) in log.iter().enumerate() {
            assert_eq!(e.bytes(), (i + 1).to_string().into_bytes());
        }
        let ttl = c.call(&["PTTL", &format!("rate{t}")]);
        assert!(
            matches!(ttl, Reply::Integer(ms) if ms > 0),
            "rate{t} lost its expiry: {ttl:?}"
        );
        state.push(n);
    }
    c.send(&["SHUTDOWN", "NOSAVE"]);
    drop(restarted);

    let Some(loaded) = forkless_testkit::redis_load_aof_dir(&dir.path().join("appendonlydir"))
    else {
        return;
    };
    let entries = loaded.expect("redis-server loads the appendonlydir");
    for (t, n) in state.iter().enumerate() {
        let e = entries
            .iter()
            .find(|e| e.key == format!("rate{t}").into_bytes())
            .expect("counter in redis");
        assert_eq!(e.value, Value::String(n.to_string().into_bytes()));
        let l = entries
            .iter()
            .find(|e| e.key == format!("log{t}").into_bytes())
            .expect("log in redis");
        match &l.value {
            Value::List(items) => assert_eq!(items.len() as i64, *n),
            other => panic!("log{t} is {other:?}"),
        }
    }
}
