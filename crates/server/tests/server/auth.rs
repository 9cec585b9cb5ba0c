//! requirepass, AUTH, HELLO AUTH and the unauthenticated limits.

use crate::common::{err_text, simple, TestServer};
use forkless_testkit::ReplyExt;

#[test]
fn requirepass_gates_commands() {
    let s = TestServer::start(&["--requirepass", "s3cret"]);
    let mut c = s.client();
    assert_eq!(
        err_text(&c.call(&["GET", "k"])),
        "NOAUTH Authentication required."
    );
    assert_eq!(
        err_text(&c.call(&["AUTH", "wrong"])),
        "WRONGPASS invalid username-password pair or user is disabled."
    );
    assert_eq!(c.call(&["AUTH", "s3cret"]), simple("OK"));
    assert_eq!(c.call(&["SET", "k", "v"]), simple("OK"));
    assert_eq!(c.call(&["RESET"]), simple("RESET"));
    assert_eq!(
        err_text(&c.call(&["GET", "k"])),
        "NOAUTH Authentication required."
    );
    assert_eq!(c.call(&["AUTH", "default", "s3cret"]), simple("OK"));
    let mut h = s.client();
    let r = h.call(&["HELLO", "2", "AUTH", "default", "s3cret"]);
    assert_eq!(r.array()[1], crate::common::bulk("redis"));
    assert_eq!(h.call(&["GET", "k"]), crate::common::bulk("v"));
}

#[test]
fn auth_without_password_configured() {
    let s = TestServer::start(&[]);
    let mut c = s.client();
    assert_eq!(
        err_text(&c.call(&["AUTH", "x"])),
        "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?"
    );
}

#[test]
fn unauthenticated_clients_get_small_limits() {
    let s = TestServer::start(&["--requirepass", "pw"]);
    let mut c = s.client();
    c.raw(b"*11\r\n");
    assert_eq!(
        err_text(&c.read()),
        "ERR Protocol error: unauthenticated multibulk length"
    );
    assert!(c.closed());
    let mut c = s.client();
    c.raw(b"*2\r\n$4\r\nAUTH\r\n$20000\r\n");
    assert_eq!(
        err_text(&c.read()),
        "ERR Protocol error: unauthenticated bulk length"
    );
    assert!(c.closed());
}
