//! Scripting over the wire: the busy state (`-BUSY` for other
//! clients past `busy-reply-threshold`), SCRIPT KILL of a read-only script, UNKILLABLE after a
//! write, and WATCH seeing a script's writes.

use std::time::{Duration, Instant};

use crate::common::{bulk, err_text, simple, RespValue, TestServer};

#[test]
fn script_kill_stops_a_busy_read_only_script() {
    let server = TestServer::start(&["--busy-reply-threshold", "50"]);
    let mut a = server.client();
    let mut b = server.client();
    a.send(&["EVAL", "local i = 0 while true do i = i + 1 end", "0"]);
    // Once the script is past the threshold, other clients get -BUSY.
    let t0 = Instant::now();
    loop {
        let r = b.call(&["PING"]);
        if matches!(&r, RespValue::Error(e) if e.starts_with(
            b"BUSY Redis is busy running a script. You can only call SCRIPT KILL"
        )) {
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(10), "never busy: {r:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(b.call(&["FUNCTION", "KILL"]), RespValue::Error(
        "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.".into()
    ));
    assert_eq!(b.call(&["SCRIPT", "KILL"]), simple("OK"));
    let r = a.read();
    assert!(
        err_text(&r).starts_with("ERR Script killed by user with SCRIPT KILL..."),
        "{r:?}"
    );
    assert_eq!(b.call(&["PING"]), simple("PONG"));
    assert_eq!(
        err_text(&b.call(&["SCRIPT", "KILL"])),
        "NOTBUSY No scripts in execution right now."
    );
}

#[test]
fn a_script_that_wrote_is_unkillable() {
    let server = TestServer::start(&["--busy-reply-threshold", "20"]);
    let mut a = server.client();
    let mut b = server.client();
    a.send(&[
        "EVAL",
        "redis.call('set', 'w', '1') local i = 0 while i < 30000000 do i = i + 1 end return i",
        "0",
    ]);
    let t0 = Instant::now();
    loop {
        let r = b.call(&["SCRIPT", "KILL"]);
        let RespValue::Error(e) = &r else {
            panic!("SCRIPT KILL answered {r:?}");
        };
        let e = String::from_utf8_lossy(e).into_owned();
        if e.starts_with("UNKILLABLE") {
            break;
        }
        assert!(e.starts_with("NOTBUSY"), "{r:?}");
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "script never seen running"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(a.read(), RespValue::Integer(30_000_000));
    assert_eq!(b.call(&["GET", "w"]), bulk("1"));
}

#[test]
fn watch_sees_a_scripts_writes() {
    let server = TestServer::start(&[]);
    let mut c = server.client();
    let mut w = server.client();
    assert_eq!(w.call(&["WATCH", "k"]), simple("OK"));
    c.call(&["EVAL", "return redis.call('set', KEYS[1], 'x')", "1", "k"]);
    w.call(&["MULTI"]);
    w.call(&["SET", "k", "y"]);
    assert_eq!(w.call(&["EXEC"]), RespValue::Array(None));
    assert_eq!(c.call(&["GET", "k"]), bulk("x"));
}
