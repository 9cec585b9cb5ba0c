//! redis-cli against the server (the interactive tool Redis users reach for first).

use std::process::Command;

use crate::common::TestServer;

fn redis_cli(port: u16, args: &[&str]) -> Option<String> {
    let out = Command::new("redis-cli")
        .arg("-p")
        .arg(port.to_string())
        .args(args)
        .output();
    match out {
        Ok(o) => Some(String::from_utf8_lossy(&o.stdout).into_owned()),
        Err(_) if !forkless_testkit::redis_required() => None,
        Err(e) => panic!("redis-cli not available but FORKLESS_REQUIRE_REDIS=1: {e}"),
    }
}

#[test]
fn redis_cli_commands_and_scan() {
    let s = TestServer::start(&[]);
    let Some(out) = redis_cli(s.port, &["PING"]) else {
        return;
    };
    assert_eq!(out, "PONG\n");
    assert_eq!(
        redis_cli(s.port, &["SET", "user:1", "ann"]).unwrap(),
        "OK\n"
    );
    assert_eq!(redis_cli(s.port, &["RPUSH", "l", "a", "b"]).unwrap(), "2\n");
    assert_eq!(redis_cli(s.port, &["GET", "user:1"]).unwrap(), "ann\n");
    assert_eq!(
        redis_cli(s.port, &["--scan", "--pattern", "user:*"]).unwrap(),
        "user:1\n"
    );
    let big = redis_cli(s.port, &["--bigkeys"]).unwrap();
    assert!(big.contains("Biggest string found"), "{big}");
    assert!(big.contains("Biggest   list found"), "{big}");
    // Several commands through one connection on stdin (pipe mode off, plain lines).
    let out = Command::new("redis-cli")
        .arg("-p")
        .arg(s.port.to_string())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut ch| {
            use std::io::Write;
            ch.stdin
                .take()
                .unwrap()
                .write_all(b"INCR n\nINCR n\nLRANGE l 0 -1\n")?;
            ch.wait_with_output()
        })
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "1\n2\na\nb\n");
}
