//! A Redis-compatible server as a child process, and a blocking RESP2 client to talk to it.
//!
//! Problem: the oracle tests (through `forkless-testkit`), the `forkless demo` comparison run and
//! the benchmark harnesses (through `forkless-harness`) all start redis-server 7.0.15 (or a
//! `forkless server`) on a free loopback port, wait until it has loaded its data, talk RESP2 to
//! it, and kill it when done. This crate is that launcher and that client, written once.
//!
//! ```text
//! Launch::redis_server(dir).args([...]).log(path).start()
//!   port   = a port the OS just handed out on 127.0.0.1 (bind :0, read it, close)
//!   spawn  <program> <pre...> --port P --bind 127.0.0.1 --save "" --daemonize no
//!                             --dir DIR [--logfile LOG] <args...>      (args last: they win)
//!   wait   until `INFO persistence` answers a line `loading:0` (data loaded), or the child
//!          exits (its log is the error), or the time limit passes
//!   retry  up to 5 times when the port was taken between the probe and the server's bind
//!          (the log says so; without a log, any exit while starting is retried)
//! Process: killed and reaped on drop
//! ```
//!
//! Loopback only; the client speaks RESP2
//! (<https://redis.io/docs/latest/develop/reference/protocol-spec/>) with the reply type of
//! `forkless-resp` ([`Reply`]), one request at a time or pipelined ([`Conn::queue`]).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::io::{self, BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The RESP2 reply type: the protocol crate's.
pub use forkless_resp::Reply;

/// Read one RESP2 reply from a blocking reader.
///
/// Lengths are checked before use: an array's capacity is reserved for at most 1,024 elements up
/// front, a bulk string's buffer only after its length line parsed as a non-negative number.
pub fn read_reply<R: BufRead>(r: &mut R) -> io::Result<Reply> {
    let mut line = Vec::new();
    r.read_until(b'\n', &mut line)?;
    if line.len() < 3 || !line.ends_with(b"\r\n") {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("bad reply line {:?}", String::from_utf8_lossy(&line)),
        ));
    }
    let body = &line[1..line.len() - 2];
    let num = || -> io::Result<i64> {
        std::str::from_utf8(body)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| {
                bad(format!(
                    "bad length/integer {:?} in reply",
                    String::from_utf8_lossy(body)
                ))
            })
    };
    Ok(match line[0] {
        b'+' => Reply::Simple(body.to_vec()),
        b'-' => Reply::Error(body.to_vec()),
        b':' => Reply::Integer(num()?),
        b'$' => match usize::try_from(num()?) {
            Err(_) => Reply::Null,
            Ok(n) => {
                let mut buf = vec![0u8; n + 2];
                r.read_exact(&mut buf)?;
                buf.truncate(n);
                Reply::Bulk(buf)
            }
        },
        b'*' => match usize::try_from(num()?) {
            Err(_) => Reply::NullArray,
            Ok(n) => {
                let mut v = Vec::with_capacity(n.min(1024));
                for _ in 0..n {
                    v.push(read_reply(r)?);
                }
                Reply::Array(v)
            }
        },
        other => return Err(bad(format!("bad reply type byte {other:#x}"))),
    })
}

fn bad(what: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what)
}

/// A blocking RESP2 connection to `127.0.0.1:port`.
#[derive(Debug)]
pub struct Conn {
    r: BufReader<TcpStream>,
    w: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    /// Connect to `127.0.0.1:port` (`TCP_NODELAY` on).
    pub fn connect(port: u16) -> io::Result<Conn> {
        let s = TcpStream::connect(("127.0.0.1", port))?;
        s.set_nodelay(true)?;
        Ok(Conn {
            r: BufReader::with_capacity(1 << 16, s.try_clone()?),
            w: s,
            buf: Vec::with_capacity(1 << 16),
        })
    }

    /// Queue one command (sent by [`Conn::flush`]).
    pub fn queue(&mut self, argv: &[impl AsRef<[u8]>]) {
        forkless_resp::encode_command_iter(&mut self.buf, argv);
    }

    /// Send the queued commands.
    pub fn flush(&mut self) -> io::Result<()> {
        self.w.write_all(&self.buf)?;
        self.buf.clear();
        Ok(())
    }

    /// Send one command and read its reply.
    pub fn call(&mut self, argv: &[impl AsRef<[u8]>]) -> io::Result<Reply> {
        self.queue(argv);
        self.flush()?;
        self.read_reply()
    }

    /// Read one reply.
    pub fn read_reply(&mut self) -> io::Result<Reply> {
        read_reply(&mut self.r)
    }

    /// `INFO <section>` parsed into `(field, value)` pairs.
    pub fn info(&mut self, section: &str) -> io::Result<Vec<(String, String)>> {
        match self.call(&["INFO", section])? {
            Reply::Bulk(b) => Ok(String::from_utf8_lossy(&b)
                .lines()
                .filter_map(|l| l.split_once(':'))
                .map(|(k, v)| (k.to_string(), v.trim().to_string()))
                .collect()),
            r => Err(bad(format!("INFO {section}: unexpected reply {r:?}"))),
        }
    }

    /// One numeric INFO field.
    pub fn info_u64(&mut self, section: &str, field: &str) -> io::Result<u64> {
        let all = self.info(section)?;
        all.iter()
            .find(|(k, _)| k == field)
            .and_then(|(_, v)| v.parse().ok())
            .ok_or_else(|| bad(format!("INFO {section} has no numeric {field}")))
    }
}

/// A port that was free on 127.0.0.1 a moment ago (the OS's choice for port 0).
pub fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Why a server did not start.
#[derive(Debug)]
pub enum LaunchError {
    /// The program is not installed (not found on `PATH`).
    NotInstalled(String),
    /// It could not be spawned, exited while starting, or did not finish loading in time; the
    /// message carries its log when there is one.
    Failed(String),
}

impl fmt::Display for LaunchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LaunchError::NotInstalled(p) => write!(f, "{p} is not installed"),
            LaunchError::Failed(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for LaunchError {}

/// How to start a server: see the crate documentation for the command line.
#[derive(Clone, Debug)]
pub struct Launch {
    program: OsString,
    pre: Vec<OsString>,
    dir: PathBuf,
    log: Option<PathBuf>,
    args: Vec<OsString>,
    ready_within: Duration,
}

/// Start-up attempts when the probed port is taken before the server binds it.
const ATTEMPTS: usize = 5;

impl Launch {
    /// `redis-server` with its files in `dir`.
    pub fn redis_server(dir: &Path) -> Launch {
        Launch::program("redis-server", &[] as &[&str], dir)
    }

    /// `program pre...` (for example `forkless server`) with its files in `dir`.
    pub fn program(program: impl AsRef<OsStr>, pre: &[impl AsRef<OsStr>], dir: &Path) -> Launch {
        Launch {
            program: program.as_ref().to_owned(),
            pre: pre.iter().map(|a| a.as_ref().to_owned()).collect(),
            dir: dir.to_path_buf(),
            log: None,
            args: Vec::new(),
            ready_within: Duration::from_secs(300),
        }
    }

    /// More options, after the launcher's own (so they override them).
    pub fn args<I, S>(mut self, args: I) -> Launch
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    /// Log to `path` (`--logfile`); a failed start reports it. Without it the server logs to
    /// its standard output, which is discarded.
    pub fn log(mut self, path: impl Into<PathBuf>) -> Launch {
        self.log = Some(path.into());
        self
    }

    /// How long loading may take (default 300 s).
    pub fn ready_within(mut self, limit: Duration) -> Launch {
        self.ready_within = limit;
        self
    }

    /// Start the server and wait until it has loaded its data (`loading:0`).
    pub fn start(&self) -> Result<Process, LaunchError> {
        let mut last = String::new();
        for _ in 0..ATTEMPTS {
            let port = free_port().map_err(|e| LaunchError::Failed(format!("free port: {e}")))?;
            match self.attempt(port)? {
                Ok(p) => return Ok(p),
                // Without a log the cause is unknown: a taken port is the likely one.
                Err(log) if self.log.is_none() || log.contains("Address already in use") => {
                    last = log
                }
                Err(log) => return Err(LaunchError::Failed(log)),
            }
        }
        Err(LaunchError::Failed(last))
    }

    /// One start on `port`: `Ok(Err(log))` when the child exited while starting.
    fn attempt(&self, port: u16) -> Result<Result<Process, String>, LaunchError> {
        let name = self.program.to_string_lossy().into_owned();
        let mut cmd = Command::new(&self.program);
        cmd.args(&self.pre)
            .arg("--port")
            .arg(port.to_string())
            .args(["--bind", "127.0.0.1", "--save", "", "--daemonize", "no"])
            .arg("--dir")
            .arg(&self.dir);
        if let Some(log) = &self.log {
            cmd.arg("--logfile").arg(log);
        }
        cmd.args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(LaunchError::NotInstalled(name))
            }
            Err(e) => return Err(LaunchError::Failed(format!("starting {name}: {e}"))),
        };
        let mut p = Process { child, port };
        let log = || {
            self.log
                .as_ref()
                .map(|l| std::fs::read_to_string(l).unwrap_or_default())
                .unwrap_or_default()
        };
        let deadline = Instant::now() + self.ready_within;
        loop {
            if let Ok(Some(status)) = p.child.try_wait() {
                return Ok(Err(format!(
                    "{name} exited while starting ({status}):\n{}",
                    log()
                )));
            }
            if let Ok(mut c) = Conn::connect(port) {
                if let Ok(Reply::Bulk(info)) = c.call(&["INFO", "persistence"]) {
                    // Whole line: `async_loading:0` also contains "loading:0".
                    if String::from_utf8_lossy(&info)
                        .lines()
                        .any(|l| l.trim() == "loading:0")
                    {
                        return Ok(Ok(p));
                    }
                }
            }
            if Instant::now() > deadline {
                return Err(LaunchError::Failed(format!(
                    "{name} did not finish loading within {:?}:\n{}",
                    self.ready_within,
                    log()
                )));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// A started server, killed and reaped on drop.
#[derive(Debug)]
pub struct Process {
    child: Child,
    port: u16,
}

impl Process {
    /// Its port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kill it now (SIGKILL, as `kill -9`) and reap it.
    pub fn kill(&mut self) -> io::Result<()> {
        self.child.kill()?;
        self.child.wait().map(drop)
    }

    /// A new connection to it.
    pub fn connect(&self) -> io::Result<Conn> {
        Conn::connect(self.port)
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_every_reply_shape() {
        let wire = b"+OK\r\n-ERR x\r\n:-7\r\n$3\r\nabc\r\n$-1\r\n*-1\r\n*2\r\n:1\r\n$0\r\n\r\n";
        let mut r = &wire[..];
        let got: Vec<Reply> = (0..7).map(|_| read_reply(&mut r).unwrap()).collect();
        assert_eq!(
            got,
            vec![
                Reply::Simple(b"OK".to_vec()),
                Reply::Error(b"ERR x".to_vec()),
                Reply::Integer(-7),
                Reply::Bulk(b"abc".to_vec()),
                Reply::Null,
                Reply::NullArray,
                Reply::Array(vec![Reply::Integer(1), Reply::Bulk(Vec::new())]),
            ]
        );
        assert!(r.is_empty());
    }

    #[test]
    fn refuses_bad_replies() {
        for bad in [
            &b"?x\r\n"[..],
            b":12x\r\n",
            b"$abc\r\n",
            b"+OK\n",
            b"$5\r\nab",
        ] {
            assert!(read_reply(&mut &bad[..]).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_missing_program_is_not_installed() {
        let dir = std::env::temp_dir();
        let e = Launch::program("forkless-no-such-program", &[] as &[&str], &dir)
            .start()
            .unwrap_err();
        assert!(matches!(e, LaunchError::NotInstalled(_)), "{e}");
    }
}
