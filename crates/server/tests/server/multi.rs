//! MULTI/EXEC/DISCARD/WATCH.

use crate::common::{bulk, err_text, simple, Reply, TestServer};
use forkless_testkit::ReplyExt;

#[test]
fn exec_runs_the_queue() {
    let s = TestServer::start(&[]);
    let mut c = s.client();
    assert_eq!(c.call(&["MULTI"]), simple("OK"));
    assert_eq!(c.call(&["SET", "a", "1"]), simple("QUEUED"));
    assert_eq!(c.call(&["INCR", "a"]), simple("QUEUED"));
    assert_eq!(c.call(&["LPUSH", "a", "x"]), simple("QUEUED"));
    let r = c.call(&["EXEC"]).array();
    assert_eq!(r[0], simple("OK"));
    assert_eq!(r[1], Reply::Integer(2));
    assert!(err_text(&r[2]).starts_with("WRONGTYPE"));
    assert_eq!(err_text(&c.call(&["EXEC"])), "ERR EXEC without MULTI");
    assert_eq!(err_text(&c.call(&["DISCARD"])), "ERR DISCARD without MULTI");
}

#[test]
fn queueing_errors_abort() {
    let s = TestServer::start(&[]);
    let mut c = s.client();
    c.call(&["MULTI"]);
    assert_eq!(c.call(&["SET", "a", "1"]), simple("QUEUED"));
    assert!(err_text(&c.call(&["NOSUCHCOMMAND"])).starts_with("ERR unknown command"));
    assert_eq!(
        err_text(&c.call(&["GET"])),
        "ERR wrong number of arguments for 'get' command"
    );
    assert_eq!(
        err_text(&c.call(&["EXEC"])),
        "EXECABORT Transaction discarded because of previous errors."
    );
    assert_eq!(c.call(&["GET", "a"]), Reply::Null);
}

#[test]
fn watch_aborts_when_another_client_writes() {
    let s = TestServer::start(&[]);
    let mut c = s.client();
    let mut other = s.client();
    c.call(&["SET", "w", "1"]);
    assert_eq!(c.call(&["WATCH", "w"]), simple("OK"));
    other.call(&["SET", "w", "2"]);
    c.call(&["MULTI"]);
    c.call(&["SET", "w", "3"]);
    assert_eq!(c.call(&["EXEC"]), Reply::NullArray);
    assert_eq!(c.call(&["GET", "w"]), bulk("2"));
    // Not touched: EXEC runs; and after EXEC the key is no longer watched.
    c.call(&["WATCH", "w"]);
    c.call(&["MULTI"]);
    c.call(&["SET", "w", "4"]);
    assert_eq!(c.call(&["EXEC"]).array(), vec![simple("OK")]);
    other.call(&["SET", "w", "5"]);
    c.call(&["MULTI"]);
    c.call(&["GET", "w"]);
    assert_eq!(c.call(&["EXEC"]).array(), vec![bulk("5")]);
    // FLUSHALL touches watched keys.
    c.call(&["WATCH", "w"]);
    other.call(&["FLUSHALL"]);
    c.call(&["MULTI"]);
    c.call(&["PING"]);
    assert_eq!(c.call(&["EXEC"]), Reply::NullArray);
    // DISCARD unwatches.
    c.call(&["WATCH", "w"]);
    c.call(&["MULTI"]);
    assert_eq!(c.call(&["DISCARD"]), simple("OK"));
    other.call(&["SET", "w", "6"]);
    c.call(&["MULTI"]);
    c.call(&["PING"]);
    assert_eq!(c.call(&["EXEC"]).array(), vec![simple("PONG")]);
}

/// SORT locks every shard but writes only its STORE destination: a plain SORT leaves a watched
/// key alone, SORT ... STORE of the watched key aborts the EXEC (as in redis-server 7.0.15).
#[test]
fn sort_touches_only_its_store_destination() {
    let s = TestServer::start(&[]);
    let mut c = s.client();
    let mut other = s.client();
    c.call(&["RPUSH", "l", "3", "1", "2"]);
    c.call(&["SET", "w", "1"]);
    c.call(&["WATCH", "w"]);
    other.call(&["SORT", "l"]);
    other.call(&["SORT", "l", "STORE", "elsewhere"]);
    c.call(&["MULTI"]);
    c.call(&["SET", "w", "2"]);
    assert_eq!(c.call(&["EXEC"]).array(), vec![simple("OK")]);
    c.call(&["WATCH", "w"]);
    other.call(&["SORT", "l", "LIMIT", "0", "2", "STORE", "w"]);
    c.call(&["MULTI"]);
    c.call(&["SET", "w", "3"]);
    assert_eq!(c.call(&["EXEC"]), Reply::NullArray);
}

/// A transaction mixing data commands with server commands that leave the keyspace alone
/// (DEBUG SLEEP, PING, TIME, PUBLISH) is still one unit, as in Redis: another client never sees
/// its first write without its last, and the log holds its writes as one MULTI/EXEC block.
#[test]
fn a_transaction_with_server_commands_is_one_unit() {
    let s = TestServer::start(&[
        "--enable-debug-command",
        "yes",
        "--appendonly",
        "yes",
        "--appendfsync",
        "always",
    ]);
    let mut c = s.client();
    let mut other = s.client();
    c.call(&["MULTI"]);
    for cmd in [
        &["SET", "a", "1"][..],
        &["DEBUG", "SLEEP", "0.4"],
        &["PING"],
        &["TIME"],
        &["PUBLISH", "ch", "m"],
        &["SET", "b", "1"],
    ] {
        assert_eq!(c.call(cmd), simple("QUEUED"));
    }
    c.send(&["EXEC"]);
    // While the transaction sleeps between its two writes, another client reads both keys:
    // it waits for the whole unit (or runs before it), never in its middle.
    std::thread::sleep(std::time::Duration::from_millis(150));
    let seen = other.call(&["MGET", "a", "b"]).array();
    assert!(
        seen == vec![bulk("1"), bulk("1")] || seen == vec![Reply::Null; 2],
        "saw the middle of a transaction: {seen:?}"
    );
    let r = c.read().array();
    assert_eq!(r[0], simple("OK"));
    assert_eq!(r[1], simple("OK"));
    assert_eq!(r[2], simple("PONG"));
    assert_eq!(r[3].clone().array().len(), 2);
    assert_eq!(r[4], Reply::Integer(0));
    assert_eq!(r[5], simple("OK"));
    // The log: MULTI, both SETs, EXEC, with nothing between.
    let dir = s.dir.path().join("appendonlydir");
    let mut text = String::new();
    for e in std::fs::read_dir(&dir).expect("appendonlydir") {
        let p = e.expect("entry").path();
        if p.to_string_lossy().ends_with(".incr.aof") {
            text.push_str(&String::from_utf8_lossy(&std::fs::read(&p).expect("read")));
        }
    }
    let words: Vec<&str> = text
        .split("\r\n")
        .filter(|l| !l.is_empty() && !l.starts_with(['*', '$']))
        .collect();
    let at = words
        .iter()
        .position(|w| w.eq_ignore_ascii_case("multi"))
        .expect("a MULTI in the log");
    let unit: Vec<String> = words[at..]
        .iter()
        .take(8)
        .map(|w| w.to_ascii_uppercase())
        .collect();
    assert_eq!(
        unit,
        ["MULTI", "SET", "A", "1", "SET", "B", "1", "EXEC"],
        "log: {words:?}"
    );
}
