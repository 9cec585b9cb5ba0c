//! Framing, pipelining, RESP3, limits and hostile input.

use std::time::Duration;

use crate::common::{bulk, err_text, simple, Client, Reply, TestServer};
use forkless_testkit::ReplyExt;

#[test]
fn pipelined_commands_answer_in_order() {
    let s = TestServer::start(&[]);
    let mut c = s.client();
    let mut batch = Vec::new();
    for i in 0..200 {
        batch.extend_from_slice(
            format!("*3\r\n$3\r\nSET\r\n$4\r\nk{i:03}\r\n$1\r\n{}\r\n", i % 10).as_bytes(),
        );
        batch.extend_from_slice(format!("*2\r\n$4\r\nINCR\r\n$4\r\nk{i:03}\r\n").as_bytes());
    }
    c.raw(&batch);
    for i in 0..200 {
        assert_eq!(c.read(), simple("OK"));
        assert_eq!(c.read(), Reply::Integer(i % 10 + 1));
    }
    assert_eq!(c.call(&["DBSIZE"]), Reply::Integer(200));
}

#[test]
fn inline_commands_and_split_packets() {
    let s = TestServer::start(&[]);
    let mut c = s.client();
    c.raw(b"PING\r\nset k \"a b\"\nGET k\r\n");
    assert_eq!(c.read(), simple("PONG"));
    assert_eq!(c.read(), simple("OK"));
    assert_eq!(c.read(), bulk("a b"));
    // One command dribbled a byte at a time.
    for b in b"*2\r\n$4\r\nECHO\r\n$5\r\nhello\r\n" {
        c.raw(&[*b]);
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(c.read(), bulk("hello"));
}

#[test]
fn protocol_errors_reply_and_close_while_others_continue() {
    let s = TestServer::start(&[]);
    let mut bystander = s.client();
    let cases: &[(&[u8], &str)] = &[
        (b"*abc\r\n", "ERR Protocol error: invalid multibulk length"),
        (
            b"*1\r\nfoo\r\n",
            "ERR Protocol error: expected '$', got 'f'",
        ),
        (b"*1\r\n$-5\r\n", "ERR Protocol error: invalid bulk length"),
        (
            b"*1\r\n$600000000\r\n",
            "ERR Protocol error: invalid bulk length",
        ),
        (
            b"*3000000000\r\n",
            "ERR Protocol error: invalid multibulk length",
        ),
        (
            b"set k \"unterminated\r\n",
            "ERR Protocol error: unbalanced quotes in request",
        ),
    ];
    for (input, want) in cases {
        let mut c = s.client();
        // A valid command first: its reply is still delivered before the error.
        c.raw(b"PING\r\n");
        c.raw(input);
        assert_eq!(c.read(), simple("PONG"));
        assert_eq!(
            err_text(&c.read()),
            *want,
            "input {:?}",
            String::from_utf8_lossy(input)
        );
        assert!(c.closed(), "connection left open after {want}");
        assert_eq!(bystander.call(&["PING"]), simple("PONG"));
    }
}

#[test]
fn oversized_lines_and_binary_garbage() {
    let s = TestServer::start(&[]);
    let mut c = s.client();
    c.raw(&vec![b'a'; 70_000]);
    assert_eq!(
        err_text(&c.read()),
        "ERR Protocol error: too big inline request"
    );
    assert!(c.closed());
    let mut c = s.client();
    let mut big = b"*".to_vec();
    big.extend(vec![b'9'; 70_000]);
    c.raw(&big);
    assert_eq!(
        err_text(&c.read()),
        "ERR Protocol error: too big mbulk count string"
    );
    assert!(c.closed());
    // Deterministic pseudo-random bytes starting with '*' (multibulk framing).
    let mut x: u64 = 0x9e3779b97f4a7c15;
    let mut garbage = b"*2\r\n".to_vec();
    for _ in 0..4096 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        garbage.push(x as u8);
    }
    let mut c = s.client();
    c.raw(&garbage);
    let r = c.read();
    assert!(err_text(&r).starts_with("ERR Protocol error: "), "{r:?}");
    assert!(c.closed());
    assert_eq!(s.client().call(&["PING"]), simple("PONG"));
}

#[test]
fn huge_declared_length_costs_nothing_until_sent() {
    let s = TestServer::start(&[]);
    let before = rss_of_self();
    let mut hogs: Vec<Client> = (0..20).map(|_| s.client()).collect();
    for h in &mut hogs {
        // 500 MiB declared, 3 bytes sent.
        h.raw(b"*2\r\n$3\r\nSET\r\n$524288000\r\nabc");
    }
    std::thread::sleep(Duration::from_millis(200));
    let mut c = s.client();
    assert_eq!(c.call(&["PING"]), simple("PONG"));
    let after = rss_of_self();
    // 20 x 500 MiB were declared; nothing close to that may have been allocated.
    assert!(
        after.saturating_sub(before) < 64 * 1024 * 1024,
        "RSS grew by {} bytes",
        after - before
    );
}

#[test]
fn query_buffer_limit_closes_the_client() {
    let s = TestServer::start(&["--client-query-buffer-limit", "1mb"]);
    let mut c = s.client();
    c.raw(b"*2\r\n$3\r\nGET\r\n$3000000\r\n");
    let chunk = vec![b'x'; 64 * 1024];
    let mut sent = 0;
    while sent < 2_000_000 {
        if std::io::Write::write_all(&mut c.w, &chunk).is_err() {
            break;
        }
        sent += chunk.len();
    }
    assert!(c.closed());
    assert_eq!(s.client().call(&["PING"]), simple("PONG"));
}

#[test]
fn big_argument_within_limits_round_trips() {
    let s = TestServer::start(&[]);
    let mut c = s.client();
    let v = "v".repeat(3 * 1024 * 1024);
    assert_eq!(c.call(&["SET", "big", &v]), simple("OK"));
    assert_eq!(c.call(&["STRLEN", "big"]), Reply::Integer(v.len() as i64));
}

#[test]
fn proto_max_bulk_len_applies_at_run_time() {
    let s = TestServer::start(&[]);
    let mut admin = s.client();
    assert_eq!(
        admin.call(&["CONFIG", "SET", "proto-max-bulk-len", "1mb"]),
        simple("OK")
    );
    let mut c = s.client();
    c.raw(b"*2\r\n$4\r\nECHO\r\n$2000000\r\n");
    assert_eq!(
        err_text(&c.read()),
        "ERR Protocol error: invalid bulk length"
    );
    assert!(c.closed());
}

fn read_resp3_raw(c: &mut Client, lines: usize) -> String {
    let mut s = String::new();
    for _ in 0..lines {
        s.push_str(&c.line());
    }
    s
}

#[test]
fn hello_3_switches_to_resp3_types() {
    let s = TestServer::start(&[]);
    let mut c = s.client();
    c.send(&["HELLO", "3"]);
    assert_eq!(c.line(), "%7\r\n");
    let mut rest = String::new();
    while !rest.ends_with("$7\r\nmodules\r\n*0\r\n") {
        rest.push_str(&c.line());
    }
    assert!(
        rest.starts_with(
            "$6\r\nserver\r\n$5\r\nredis\r\n$7\r\nversion\r\n$6\r\n7.0.15\r\n$5\r\nproto\r\n:3\r\n"
        ),
        "{rest}"
    );
    c.send(&["GET", "missing"]);
    assert_eq!(c.line(), "_\r\n");
    c.send(&["HSET", "h", "f", "v"]);
    assert_eq!(c.line(), ":1\r\n");
    c.send(&["HGETALL", "h"]);
    assert_eq!(read_resp3_raw(&mut c, 5), "%1\r\n$1\r\nf\r\n$1\r\nv\r\n");
    c.send(&["ZADD", "z", "1.5", "m"]);
    assert_eq!(c.line(), ":1\r\n");
    c.send(&["ZSCORE", "z", "m"]);
    assert_eq!(c.line(), ",1.5\r\n");
    c.send(&["SADD", "s", "a"]);
    assert_eq!(c.line(), ":1\r\n");
    c.send(&["SMEMBERS", "s"]);
    assert_eq!(read_resp3_raw(&mut c, 3), "~1\r\n$1\r\na\r\n");
    c.send(&["HELLO", "4"]);
    assert_eq!(c.line(), "-NOPROTO unsupported protocol version\r\n");
    c.send(&["HELLO", "2"]);
    assert_eq!(c.line(), "*14\r\n");
}

#[test]
fn quit_replies_then_closes() {
    let s = TestServer::start(&[]);
    let mut c = s.client();
    assert_eq!(c.call(&["QUIT"]), simple("OK"));
    assert!(c.closed());
}

#[test]
fn maxclients_refuses_the_extra_client() {
    let s = TestServer::start(&["--maxclients", "2"]);
    let mut a = s.client();
    let mut b = s.client();
    assert_eq!(a.call(&["PING"]), simple("PONG"));
    assert_eq!(b.call(&["PING"]), simple("PONG"));
    let mut c = s.client();
    assert_eq!(err_text(&c.read()), "ERR max number of clients reached");
    assert!(c.closed());
}

#[test]
fn idle_timeout_closes_clients() {
    let s = TestServer::start(&["--timeout", "1"]);
    let mut c = s.client();
    assert_eq!(c.call(&["PING"]), simple("PONG"));
    std::thread::sleep(Duration::from_millis(1500));
    assert!(c.closed());
}

#[test]
fn client_commands() {
    let s = TestServer::start(&[]);
    let mut c = s.client();
    let id = c.call(&["CLIENT", "ID"]).int();
    assert_eq!(c.call(&["CLIENT", "GETNAME"]), Reply::Null);
    assert_eq!(c.call(&["CLIENT", "SETNAME", "worker-1"]), simple("OK"));
    assert_eq!(
        err_text(&c.call(&["CLIENT", "SETNAME", "a b"])),
        "ERR Client names cannot contain spaces, newlines or special characters."
    );
    assert_eq!(c.call(&["CLIENT", "GETNAME"]), bulk("worker-1"));
    let list = String::from_utf8(c.call(&["CLIENT", "LIST"]).bytes()).unwrap();
    assert!(list.contains(&format!("id={id} ")), "{list}");
    assert!(list.contains("name=worker-1 "), "{list}");
    assert!(list.contains("cmd=client|list "), "{list}");
    // CLIENT REPLY OFF: nothing comes back until ON.
    c.send(&["CLIENT", "REPLY", "OFF"]);
    c.send(&["SET", "a", "1"]);
    assert_eq!(c.call(&["CLIENT", "REPLY", "ON"]), simple("OK"));
    c.send(&["CLIENT", "REPLY", "SKIP"]);
    c.send(&["GET", "a"]);
    assert_eq!(c.call(&["ECHO", "x"]), bulk("x"));
    let mut victim = s.client();
    let vid = victim.call(&["CLIENT", "ID"]).int();
    assert_eq!(
        c.call(&["CLIENT", "KILL", "ID", &vid.to_string()]),
        Reply::Integer(1)
    );
    assert!(victim.closed());
}

#[test]
fn info_has_redis_sections_and_fields() {
    let s = TestServer::start(&[]);
    let mut c = s.client();
    c.call(&["SET", "k", "v"]);
    c.call(&["SET", "t", "v", "EX", "100"]);
    let info = String::from_utf8(c.call(&["INFO"]).bytes()).unwrap();
    for field in [
        "# Server\r\n",
        "redis_version:7.0.15\r\n",
        "forkless_version:",
        "# Clients\r\n",
        "connected_clients:1\r\n",
        "# Memory\r\n",
        "used_memory:",
        "# Persistence\r\n",
        "rdb_bgsave_in_progress:0",
        "aof_last_write_status:ok",
        "# Stats\r\n",
        "total_commands_processed:",
        "# Replication\r\n",
        "role:master",
        "# CPU\r\n",
        "used_cpu_user:",
        "# Keyspace\r\n",
        "db0:keys=2,expires=1,avg_ttl=0\r\n",
    ] {
        assert!(info.contains(field), "INFO lacks {field:?}:\n{info}");
    }
    assert!(
        !info.contains("cmdstat_"),
        "commandstats is not a default section"
    );
    c.call(&["GET"]);
    let cs = String::from_utf8(c.call(&["INFO", "commandstats"]).bytes()).unwrap();
    assert!(cs.contains("cmdstat_set:calls=2,"), "{cs}");
    assert!(
        cs.contains("cmdstat_get:calls=0,") && cs.contains("rejected_calls=1"),
        "{cs}"
    );
    let es = String::from_utf8(c.call(&["INFO", "errorstats"]).bytes()).unwrap();
    assert!(es.contains("errorstat_ERR:count=1"), "{es}");
    let only = String::from_utf8(c.call(&["INFO", "keyspace"]).bytes()).unwrap();
    assert!(only.starts_with("# Keyspace\r\n") && !only.contains("# Server"));
}

#[test]
fn config_get_set() {
    let s = TestServer::start(&["--maxmemory", "100mb"]);
    let mut c = s.client();
    assert_eq!(
        c.call(&["CONFIG", "GET", "maxmemory"]),
        Reply::Array(vec![bulk("maxmemory"), bulk("104857600")])
    );
    assert_eq!(c.call(&["CONFIG", "SET", "timeout", "30"]), simple("OK"));
    assert_eq!(
        c.call(&["CONFIG", "GET", "timeout"]),
        Reply::Array(vec![bulk("timeout"), bulk("30")])
    );
    assert_eq!(
        err_text(&c.call(&["CONFIG", "SET", "no-such-option", "1"])),
        "ERR Unknown option or number of arguments for CONFIG SET - 'no-such-option'"
    );
    let all = c.call(&["CONFIG", "GET", "*"]).array();
    assert!(all.len() > 40 && all.len().is_multiple_of(2));
}

#[test]
fn shutdown_command_stops_the_server() {
    let s = TestServer::start(&[]);
    let port = s.port;
    let mut c = s.client();
    c.send(&["SHUTDOWN", "NOSAVE"]);
    assert!(c.closed());
    drop(s);
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
}

fn rss_of_self() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |p| p * 4096)
}
