//! SUBSCRIBE/PSUBSCRIBE/PUBLISH/PUBSUB in RESP2 and RESP3.

use crate::common::{bulk, err_text, Reply, TestServer};
use forkless_testkit::ReplyExt;

fn arr(items: Vec<Reply>) -> Reply {
    Reply::Array(items)
}

#[test]
fn subscribe_publish_resp2() {
    let s = TestServer::start(&[]);
    let mut sub = s.client();
    let mut pubc = s.client();
    sub.send(&["SUBSCRIBE", "news", "sports"]);
    assert_eq!(
        sub.read(),
        arr(vec![bulk("subscribe"), bulk("news"), Reply::Integer(1)])
    );
    assert_eq!(
        sub.read(),
        arr(vec![bulk("subscribe"), bulk("sports"), Reply::Integer(2)])
    );
    sub.send(&["PSUBSCRIBE", "n*"]);
    assert_eq!(
        sub.read(),
        arr(vec![bulk("psubscribe"), bulk("n*"), Reply::Integer(3)])
    );
    assert_eq!(pubc.call(&["PUBLISH", "news", "hello"]), Reply::Integer(2));
    assert_eq!(
        sub.read(),
        arr(vec![bulk("message"), bulk("news"), bulk("hello")])
    );
    assert_eq!(
        sub.read(),
        arr(vec![
            bulk("pmessage"),
            bulk("n*"),
            bulk("news"),
            bulk("hello")
        ])
    );
    assert_eq!(
        pubc.call(&["PUBSUB", "NUMSUB", "news", "none"]),
        arr(vec![
            bulk("news"),
            Reply::Integer(1),
            bulk("none"),
            Reply::Integer(0)
        ])
    );
    assert_eq!(pubc.call(&["PUBSUB", "NUMPAT"]), Reply::Integer(1));
    assert_eq!(
        pubc.call(&["PUBSUB", "CHANNELS"]),
        arr(vec![bulk("news"), bulk("sports")])
    );
    assert_eq!(
        err_text(&sub.call(&["GET", "k"])),
        "ERR Can't execute 'get': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context"
    );
    assert_eq!(sub.call(&["PING"]), arr(vec![bulk("pong"), bulk("")]));
    sub.send(&["UNSUBSCRIBE"]);
    let a = sub.read();
    let b = sub.read();
    let mut got = vec![a.array()[1].clone(), b.array()[1].clone()];
    got.sort_by_key(|v| format!("{v:?}"));
    assert_eq!(got, vec![bulk("news"), bulk("sports")]);
    assert_eq!(b.array()[2], Reply::Integer(1));
    assert_eq!(pubc.call(&["PUBLISH", "news", "x"]), Reply::Integer(1));
}

#[test]
fn resp3_messages_are_pushes() {
    let s = TestServer::start(&[]);
    let mut sub = s.client();
    let mut pubc = s.client();
    sub.send(&["HELLO", "3"]);
    let first = sub.line();
    assert_eq!(first, "%7\r\n");
    // Read to the end of the HELLO map ("modules" => empty array).
    loop {
        if sub.line() == "*0\r\n" {
            break;
        }
    }
    sub.send(&["SUBSCRIBE", "ch"]);
    let mut got = String::new();
    for _ in 0..6 {
        got.push_str(&sub.line());
    }
    assert_eq!(got, ">3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n");
    // RESP3 subscribers may run any command.
    sub.send(&["ECHO", "x"]);
    assert_eq!(sub.line(), "$1\r\n");
    assert_eq!(sub.line(), "x\r\n");
    assert_eq!(pubc.call(&["PUBLISH", "ch", "m"]), Reply::Integer(1));
    let mut got = String::new();
    for _ in 0..7 {
        got.push_str(&sub.line());
    }
    assert_eq!(got, ">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$1\r\nm\r\n");
}

#[test]
fn a_subscriber_that_stops_reading_is_closed_at_the_output_buffer_limit() {
    let s = TestServer::start(&["--client-output-buffer-limit", "pubsub 1mb 0 0"]);
    let mut sub = s.client();
    let mut pubc = s.client();
    sub.send(&["SUBSCRIBE", "firehose"]);
    assert_eq!(sub.read().array()[2], Reply::Integer(1));
    // The subscriber reads nothing from here on: socket buffers fill, then the queue.
    let payload = "x".repeat(100 * 1024);
    let mut dropped = false;
    for _ in 0..1000 {
        if pubc.call(&["PUBLISH", "firehose", &payload]) == Reply::Integer(0) {
            dropped = true;
            break;
        }
    }
    assert!(dropped, "the subscriber was never dropped");
    assert!(sub.closed());
    assert_eq!(
        pubc.call(&["PUBSUB", "NUMSUB", "firehose"]).array()[1],
        Reply::Integer(0)
    );
}
