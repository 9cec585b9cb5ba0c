//! Blocking pops: timeouts, wake-ups, arrival order, CLIENT UNBLOCK.

use std::time::{Duration, Instant};

use crate::common::{bulk, err_text, wait_blocked, Reply, TestServer};
use forkless_testkit::ReplyExt;

fn arr(items: Vec<Reply>) -> Reply {
    Reply::Array(items)
}

#[test]
fn blpop_times_out_with_null_array() {
    let s = TestServer::start(&[]);
    let mut c = s.client();
    let t = Instant::now();
    assert_eq!(c.call(&["BLPOP", "nothing", "0.2"]), Reply::NullArray);
    assert!(t.elapsed() >= Duration::from_millis(190));
    assert_eq!(
        c.call(&["BRPOPLPUSH", "nothing", "dst", "0.1"]),
        Reply::Null
    );
    assert_eq!(
        err_text(&c.call(&["BLPOP", "k", "-1"])),
        "ERR timeout is negative"
    );
    assert_eq!(
        err_text(&c.call(&["BLPOP", "k", "abc"])),
        "ERR timeout is not a float or out of range"
    );
}

#[test]
fn blpop_is_served_by_a_later_push_in_arrival_order() {
    let s = TestServer::start(&[]);
    let mut first = s.client();
    let mut second = s.client();
    let mut pusher = s.client();
    first.send(&["BLPOP", "q", "other", "5"]);
    wait_blocked(s.port, 1);
    second.send(&["BLPOP", "q", "5"]);
    wait_blocked(s.port, 2);
    assert_eq!(pusher.call(&["RPUSH", "q", "a", "b"]), Reply::Integer(2));
    assert_eq!(first.read(), arr(vec![bulk("q"), bulk("a")]));
    assert_eq!(second.read(), arr(vec![bulk("q"), bulk("b")]));
    // Both popped: the pusher sees an empty list (LPOP was propagated, the key is gone).
    assert_eq!(pusher.call(&["EXISTS", "q"]), Reply::Integer(0));
}

#[test]
fn immediate_and_chained_moves() {
    let s = TestServer::start(&[]);
    let mut c = s.client();
    let mut waiter = s.client();
    c.call(&["RPUSH", "src", "x"]);
    assert_eq!(
        c.call(&["BLMOVE", "src", "dst", "LEFT", "RIGHT", "1"]),
        bulk("x")
    );
    // A waiter on `dst2` is served by a BLMOVE whose destination is `dst2`.
    waiter.send(&["BRPOP", "dst2", "5"]);
    wait_blocked(s.port, 1);
    let mut mover = s.client();
    mover.send(&["BLMOVE", "src2", "dst2", "LEFT", "LEFT", "5"]);
    wait_blocked(s.port, 2);
    c.call(&["LPUSH", "src2", "y"]);
    assert_eq!(mover.read(), bulk("y"));
    assert_eq!(waiter.read(), arr(vec![bulk("dst2"), bulk("y")]));
}

#[test]
fn bzpopmin_and_blmpop() {
    let s = TestServer::start(&[]);
    let mut c = s.client();
    let mut w = s.client();
    w.send(&["BZPOPMIN", "z", "5"]);
    wait_blocked(s.port, 1);
    c.call(&["ZADD", "z", "2", "b", "1", "a"]);
    assert_eq!(w.read(), arr(vec![bulk("z"), bulk("a"), bulk("1")]));
    c.call(&["RPUSH", "l", "1", "2", "3"]);
    assert_eq!(
        c.call(&["BLMPOP", "1", "2", "none", "l", "RIGHT", "COUNT", "2"]),
        arr(vec![bulk("l"), arr(vec![bulk("3"), bulk("2")])])
    );
}

#[test]
fn client_unblock_and_wrongtype() {
    let s = TestServer::start(&[]);
    let mut c = s.client();
    let mut w = s.client();
    let id = w.call(&["CLIENT", "ID"]).int();
    w.send(&["BLPOP", "never", "0"]);
    wait_blocked(s.port, 1);
    assert_eq!(
        c.call(&["CLIENT", "UNBLOCK", &id.to_string(), "ERROR"]),
        Reply::Integer(1)
    );
    assert_eq!(
        err_text(&w.read()),
        "UNBLOCKED client unblocked via CLIENT UNBLOCK"
    );
    c.call(&["SET", "str", "x"]);
    assert!(err_text(&c.call(&["BLPOP", "str", "0"])).starts_with("WRONGTYPE"));
}

#[test]
fn blocking_inside_multi_does_not_block() {
    let s = TestServer::start(&[]);
    let mut c = s.client();
    c.call(&["MULTI"]);
    c.call(&["BLPOP", "empty", "0"]);
    assert_eq!(c.call(&["EXEC"]), arr(vec![Reply::NullArray]));
}

#[test]
fn a_served_move_touches_watched_keys() {
    let s = TestServer::start(&[]);
    let mut watcher = s.client();
    let mut blocked = s.client();
    let mut pusher = s.client();
    assert_eq!(watcher.call(&["WATCH", "dst"]), crate::common::simple("OK"));
    blocked.send(&["BRPOPLPUSH", "src", "dst", "5"]);
    wait_blocked(s.port, 1);
    pusher.call(&["LPUSH", "src", "v"]);
    assert_eq!(blocked.read(), bulk("v"));
    watcher.call(&["MULTI"]);
    watcher.call(&["PING"]);
    assert_eq!(watcher.call(&["EXEC"]), Reply::NullArray);
}

fn entry(id: &str, fv: &[&str]) -> Reply {
    arr(vec![bulk(id), arr(fv.iter().map(|s| bulk(s)).collect())])
}

#[test]
fn xread_block_waits_for_new_entries_after_dollar() {
    let s = TestServer::start(&[]);
    let mut c = s.client();
    let mut reader = s.client();
    let t = Instant::now();
    assert_eq!(
        c.call(&["XREAD", "BLOCK", "100", "STREAMS", "s", "$"]),
        Reply::NullArray
    );
    assert!(t.elapsed() >= Duration::from_millis(90));
    c.call(&["XADD", "s", "1-1", "old", "x"]);
    // `$` means "after what the stream holds now": the old entry is not returned.
    reader.send(&["XREAD", "BLOCK", "5000", "STREAMS", "s", "$"]);
    wait_blocked(s.port, 1);
    assert_eq!(c.call(&["XADD", "s", "2-1", "f", "v"]), bulk("2-1"));
    assert_eq!(
        reader.read(),
        arr(vec![arr(vec![
            bulk("s"),
            arr(vec![entry("2-1", &["f", "v"])])
        ])])
    );
    assert_eq!(
        err_text(&c.call(&["XREAD", "BLOCK", "-1", "STREAMS", "s", "$"])),
        "ERR timeout is negative"
    );
}

#[test]
fn xreadgroup_block_is_served_and_unblocked_by_del() {
    let s = TestServer::start(&[]);
    let mut c = s.client();
    let mut reader = s.client();
    c.call(&["XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"]);
    reader.send(&[
        "XREADGROUP",
        "GROUP",
        "g",
        "alice",
        "BLOCK",
        "5000",
        "STREAMS",
        "s",
        ">",
    ]);
    wait_blocked(s.port, 1);
    c.call(&["XADD", "s", "1-1", "f", "v"]);
    assert_eq!(
        reader.read(),
        arr(vec![arr(vec![
            bulk("s"),
            arr(vec![entry("1-1", &["f", "v"])])
        ])])
    );
    // The delivered entry is pending for alice.
    assert_eq!(
        c.call(&["XPENDING", "s", "g"]),
        arr(vec![
            Reply::Integer(1),
            bulk("1-1"),
            bulk("1-1"),
            arr(vec![arr(vec![bulk("alice"), bulk("1")])]),
        ])
    );
    reader.send(&[
        "XREADGROUP",
        "GROUP",
        "g",
        "alice",
        "BLOCK",
        "5000",
        "STREAMS",
        "s",
        ">",
    ]);
    wait_blocked(s.port, 1);
    c.call(&["DEL", "s"]);
    assert_eq!(
        err_text(&reader.read()),
        "UNBLOCKED the stream key no longer exists"
    );
}
