//! Sharded pub/sub without cluster mode (SSUBSCRIBE, SUNSUBSCRIBE, SPUBLISH, PUBSUB
//! SHARDCHANNELS / SHARDNUMSUB) against redis-server 7.0.15: replies and pushes in RESP2 and
//! RESP3 (raw bytes), the separate namespace, ACL channel checks, and that SPUBLISH stays out
//! of the AOF.

use forkless_testkit::{RedisServer, ReplyExt, TempDir};

use crate::common::{Client, TestServer};

/// The raw bytes of one RESP2/RESP3 value.
fn read_raw(c: &mut Client) -> String {
    let line = c.line();
    let body = line.trim_end_matches("\r\n");
    let mut out = line.clone();
    let n = |s: &str| s[1..].parse::<i64>().unwrap_or(0);
    match body.as_bytes().first() {
        Some(b'$' | b'=' | b'!') if n(body) >= 0 => {
            // The payload line (may be empty).
            out.push_str(&c.line());
        }
        Some(b'*' | b'>' | b'~') => {
            for _ in 0..n(body).max(0) {
                out.push_str(&read_raw(c));
            }
        }
        Some(b'%' | b'|') => {
            for _ in 0..2 * n(body).max(0) {
                out.push_str(&read_raw(c));
            }
        }
        _ => {}
    }
    out
}

/// Both servers, three clients each (subscriber, publisher, RESP3 subscriber), the same steps:
/// (client, command, number of values it answers).
#[test]
fn sharded_pubsub_equals_redis_server() {
    let dir = TempDir::new("spubsub-oracle");
    let opts = ["--appendonly", "yes", "--appendfsync", "always"];
    let Some(redis) = RedisServer::start(dir.path(), &opts) else {
        return;
    };
    let ours = TestServer::start(&opts);
    let steps: &[(usize, &[&str], usize)] = &[
        (2, &["HELLO", "3"], 1),
        (0, &["SSUBSCRIBE", "c1", "c2"], 2),
        (0, &["SUBSCRIBE", "n1"], 1),
        (0, &["SSUBSCRIBE", "c1"], 1),
        (2, &["SSUBSCRIBE", "c2", "c3"], 2),
        (1, &["SPUBLISH", "c1", "hello"], 1),
        (0, &[], 1),
        (1, &["SPUBLISH", "c2", "world"], 1),
        (0, &[], 1),
        (2, &[], 1),
        (1, &["PUBLISH", "c1", "plain"], 1),
        (1, &["SPUBLISH", "n1", "nobody"], 1),
        (1, &["PUBLISH", "n1", "plain"], 1),
        (0, &[], 1),
        (1, &["PUBSUB", "SHARDCHANNELS"], 1),
        (1, &["PUBSUB", "SHARDCHANNELS", "c[12]"], 1),
        (1, &["PUBSUB", "SHARDCHANNELS", "zz*"], 1),
        (1, &["PUBSUB", "SHARDNUMSUB", "c1", "c2", "c3", "zz"], 1),
        (1, &["PUBSUB", "SHARDNUMSUB"], 1),
        (1, &["PUBSUB", "CHANNELS"], 1),
        (1, &["PUBSUB", "NUMSUB", "c1", "n1"], 1),
        (0, &["GET", "x"], 1),
        (0, &["PING"], 1),
        (2, &["GET", "x"], 1),
        (2, &["PUBSUB", "NUMSUB", "n1", "c1"], 1),
        (2, &["PUBSUB", "SHARDNUMSUB", "n1", "c1"], 1),
        (0, &["SUNSUBSCRIBE", "c1", "zz"], 2),
        (1, &["SPUBLISH", "c1", "gone"], 1),
        (0, &["SUNSUBSCRIBE"], 1),
        (0, &["SUNSUBSCRIBE"], 1),
        (0, &["UNSUBSCRIBE"], 1),
        (0, &["GET", "x"], 1),
        (2, &["SUNSUBSCRIBE", "c3", "c2"], 2),
        (2, &["SUNSUBSCRIBE", "c9"], 1),
        (1, &["MULTI"], 1),
        (1, &["SSUBSCRIBE", "m"], 1),
        (1, &["SPUBLISH", "m", "x"], 1),
        (1, &["EXEC"], 1),
        (1, &["PUBSUB", "SHARDCHANNELS"], 1),
        (
            1,
            &[
                "EVAL",
                "return redis.call('spublish', 'c2', 'from-script')",
                "0",
            ],
            1,
        ),
        (
            1,
            &[
                "ACL",
                "SETUSER",
                "limited",
                "on",
                "nopass",
                "+@all",
                "~*",
                "resetchannels",
                "&c*",
            ],
            1,
        ),
        (1, &["AUTH", "limited", "x"], 1),
        (1, &["SPUBLISH", "c7", "ok"], 1),
        (1, &["SPUBLISH", "d7", "no"], 1),
        (1, &["SSUBSCRIBE", "d7"], 1),
        (1, &["SSUBSCRIBE", "c7"], 1),
        (1, &["SUNSUBSCRIBE"], 1),
        (1, &["AUTH", "default", "x"], 1),
        (1, &["SET", "end", "1"], 1),
    ];
    let run = |port: u16| -> Vec<String> {
        let mut c = [
            Client::connect(port),
            Client::connect(port),
            Client::connect(port),
        ];
        let mut out = Vec::new();
        for (who, cmd, n) in steps {
            if !cmd.is_empty() {
                c[*who].send(cmd);
            }
            for _ in 0..*n {
                let v = read_raw(&mut c[*who]);
                // HELLO's map carries the server's name, version and client id.
                out.push(if cmd.first() == Some(&"HELLO") {
                    String::new()
                } else if cmd.len() >= 2 && cmd[1].ends_with("CHANNELS") {
                    // Channel lists come in hash order: compare them as sets.
                    let mut lines: Vec<&str> = v.split_inclusive("\r\n").collect();
                    let head = lines.remove(0);
                    let mut items: Vec<String> = lines.chunks(2).map(|c| c.concat()).collect();
                    items.sort();
                    format!("{head}{}", items.concat())
                } else {
                    v
                });
            }
        }
        out
    };
    let want = run(redis.port());
    let got = run(ours.port);
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert_eq!(g, w, "value {i}");
    }
    assert_eq!(got.len(), want.len());
    // SPUBLISH reaches replicas only: the AOFs hold the same commands (ACL SETUSER is not
    // logged either), and no SPUBLISH.
    let want = String::from_utf8_lossy(&crate::scripting::incr_aof(redis.dir())).into_owned();
    let got = String::from_utf8_lossy(&crate::scripting::incr_aof(ours.dir.path())).into_owned();
    assert!(!want.to_ascii_lowercase().contains("spublish"), "{want}");
    assert_eq!(got, want);
}

/// Wait until `port`'s replication link is up.
fn wait_link_up(port: u16) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while std::time::Instant::now() < deadline {
        let info = Client::connect(port).call(&["INFO", "replication"]).bytes();
        if String::from_utf8_lossy(&info).contains("master_link_status:up") {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    panic!("replica on port {port} never linked");
}

/// SPUBLISH on a forkless primary reaches the shard subscribers of a stock redis-server
/// replica and of a forkless replica (Redis propagates it to replicas without cluster mode).
#[test]
fn spublish_reaches_subscribers_on_replicas() {
    let primary = TestServer::start(&[]);
    let p = primary.port.to_string();
    let dir = TempDir::new("spublish-replica");
    let Some(stock) = RedisServer::start(dir.path(), &["--replicaof", "127.0.0.1", &p]) else {
        return;
    };
    let ours = TestServer::start(&["--replicaof", "127.0.0.1", &p]);
    let mut subs = Vec::new();
    for port in [stock.port(), ours.port] {
        wait_link_up(port);
        let mut s = Client::connect(port);
        s.send(&["SSUBSCRIBE", "news"]);
        assert_eq!(
            read_raw(&mut s),
            "*3\r\n$10\r\nssubscribe\r\n$4\r\nnews\r\n:1\r\n"
        );
        subs.push(s);
    }
    let mut c = primary.client();
    c.call(&["SPUBLISH", "news", "hello"]);
    for s in &mut subs {
        assert_eq!(
            read_raw(s),
            "*3\r\n$8\r\nsmessage\r\n$4\r\nnews\r\n$5\r\nhello\r\n"
        );
    }
}
