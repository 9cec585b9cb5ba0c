//! Test scaffolding: an in-process server on a free loopback port, and a raw RESP client.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::thread::JoinHandle;
use std::time::Duration;

use forkless::Config;
use forkless_server::{Server, ServerHandle};
pub(crate) use forkless_testkit::Reply;
use forkless_testkit::{encode_command, read_reply, ReplyExt};
use forkless_testkit::{RedisServer, TempDir};

/// A running server, shut down and joined on drop.
pub(crate) struct TestServer {
    pub port: u16,
    /// The data directory (removed when the server is dropped).
    #[allow(dead_code)]
    pub dir: TempDir,
    handle: ServerHandle,
    thread: Option<JoinHandle<()>>,
}

impl TestServer {
    /// A server with `extra` redis-server style options (`["--requirepass", "x"]`).
    pub(crate) fn start(extra: &[&str]) -> TestServer {
        TestServer::start_in(TempDir::new("server"), extra)
    }

    /// A server on data directory `dir` (`--save ""` unless `extra` sets it).
    pub(crate) fn start_in(dir: TempDir, extra: &[&str]) -> TestServer {
        let mut args: Vec<String> = [
            "--port",
            "0",
            "--bind",
            "127.0.0.1",
            "--loglevel",
            "warning",
            "--save",
            "",
        ]
        .into_iter()
        .map(String::from)
        .collect();
        args.push("--dir".into());
        args.push(dir.path().display().to_string());
        args.extend(extra.iter().map(|s| s.to_string()));
        let config = Config::from_args(&args).expect("options");
        let server = Server::bind_ephemeral(config).expect("bind");
        let port = server.port();
        let handle = server.handle();
        let thread = std::thread::spawn(move || server.run().expect("server run"));
        TestServer {
            port,
            dir,
            handle,
            thread: Some(thread),
        }
    }

    /// A new client connection.
    pub(crate) fn client(&self) -> Client {
        Client::connect(self.port)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.handle.shutdown();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A blocking RESP client on a raw socket.
pub(crate) struct Client {
    pub w: TcpStream,
    pub r: BufReader<TcpStream>,
}

impl Client {
    pub(crate) fn connect(port: u16) -> Client {
        let s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        s.set_nodelay(true).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let r = BufReader::new(s.try_clone().unwrap());
        Client { w: s, r }
    }

    /// Send a command, read one RESP2 reply.
    pub(crate) fn call(&mut self, argv: &[&str]) -> Reply {
        let a: Vec<&[u8]> = argv.iter().map(|s| s.as_bytes()).collect();
        self.w.write_all(&encode_command(&a)).unwrap();
        read_reply(&mut self.r).expect("reply")
    }

    /// Send a command without reading.
    pub(crate) fn send(&mut self, argv: &[&str]) {
        let a: Vec<&[u8]> = argv.iter().map(|s| s.as_bytes()).collect();
        self.w.write_all(&encode_command(&a)).unwrap();
    }

    /// Read one RESP2 reply.
    pub(crate) fn read(&mut self) -> Reply {
        read_reply(&mut self.r).expect("reply")
    }

    /// Send raw bytes.
    pub(crate) fn raw(&mut self, bytes: &[u8]) {
        self.w.write_all(bytes).unwrap();
    }

    /// Read one line (with its CRLF).
    pub(crate) fn line(&mut self) -> String {
        let mut s = String::new();
        self.r.read_line(&mut s).unwrap();
        s
    }

    /// True when the server closed the connection (reads EOF within the timeout).
    pub(crate) fn closed(&mut self) -> bool {
        self.closed_within(Duration::from_secs(5))
    }

    /// True when the server closes the connection within `t`.
    pub(crate) fn closed_within(&mut self, t: Duration) -> bool {
        self.w.set_read_timeout(Some(t)).unwrap();
        let mut buf = [0u8; 1];
        loop {
            match self.r.read(&mut buf) {
                Ok(0) => return true,
                Ok(_) => continue,
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
                Err(_) => return false,
            }
        }
    }
}

/// redis-server 7.0.15 and a forkless server side by side, the oracle tests' setup: both are
/// stopped, then redis-server's directory removed, when this is dropped.
pub(crate) struct OraclePair {
    _redis: RedisServer,
    _ours: TestServer,
    _dir: TempDir,
}

/// Start an [`OraclePair`] (redis-server in a temporary directory named after `name`) and
/// connect one client to each: `(servers, redis-server's client, forkless's client)`. `None`
/// when there is no redis-server and the oracle tests are optional (testkit prints the notice).
pub(crate) fn oracle_pair(name: &str) -> Option<(OraclePair, Client, Client)> {
    let dir = TempDir::new(name);
    let redis = RedisServer::start(dir.path(), &[])?;
    let ours = TestServer::start(&[]);
    let (theirs, mine) = (Client::connect(redis.port()), ours.client());
    let servers = OraclePair {
        _redis: redis,
        _ours: ours,
        _dir: dir,
    };
    Some((servers, theirs, mine))
}

/// Send `argv` to redis-server on `theirs` and to forkless on `ours`, assert our reply is
/// redis-server's (the failure names the command) and return it.
pub(crate) fn assert_same_reply(theirs: &mut Client, ours: &mut Client, argv: &[&str]) -> Reply {
    let want = theirs.call(argv);
    let got = ours.call(argv);
    assert_eq!(got, want, "command {argv:?}");
    got
}

pub(crate) fn bulk(s: &str) -> Reply {
    Reply::Bulk(s.as_bytes().to_vec())
}

pub(crate) fn simple(s: &str) -> Reply {
    Reply::Simple(s.as_bytes().to_vec())
}

pub(crate) fn err_text(v: &Reply) -> String {
    match v {
        Reply::Error(e) => String::from_utf8_lossy(e).into_owned(),
        other => panic!("expected an error, got {other:?}"),
    }
}

/// Wait until the server reports `n` blocked clients (INFO clients), as Redis's
/// `wait_for_blocked_clients_count`.
pub(crate) fn wait_blocked(port: u16, n: usize) {
    let mut c = Client::connect(port);
    let want = format!("blocked_clients:{n}\r\n");
    for _ in 0..1000 {
        let info = String::from_utf8(c.call(&["INFO", "clients"]).bytes()).unwrap();
        if info.contains(&want) {
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    panic!("never saw {n} blocked clients");
}
