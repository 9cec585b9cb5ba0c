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
