//! ACL users against redis-server 7.0.15: the same script of ACL commands and refused
//! attempts from several clients, every reply equal (ACL GETUSER / LIST rule strings, the
//! `-NOPERM` texts, ACL LOG fields other than the age and the client's counters).
//!
//! Redis prints the single-command tail of a rule string (`+get +mget ...` after the
//! categories) in the order of its command hash table, seeded at random per process: the tail
//! is compared as a set, everything before it in order. ACL CAT lists come in the same hash
//! order and are compared sorted.

use forkless_testkit::{RedisServer, Reply, ReplyExt, TempDir};

use crate::common::{bulk, err_text, simple, Client, TestServer};

/// A rule string with its single-command tail sorted.
fn norm_rules(s: &str) -> String {
    let toks: Vec<&str> = s.split(' ').collect();
    let single = |t: &&str| (t.starts_with('+') || t.starts_with('-')) && !t[1..].starts_with('@');
    let mut head: Vec<&str> = toks.iter().filter(|t| !single(t)).copied().collect();
    let mut tail: Vec<&str> = toks.iter().filter(|t| single(t)).copied().collect();
    tail.sort_unstable();
    head.extend(tail);
    head.join(" ")
}

/// The reply with rule strings normalized, ACL LOG's age dropped and its client-info reduced
/// to the fields that do not depend on buffers and ids (`cmd=`, `user=`, `db=`, `flags=`).
fn norm(v: Reply, sort: bool) -> Reply {
    match v {
        Reply::Bulk(b) => {
            let s = String::from_utf8_lossy(&b).into_owned();
            Reply::Bulk(norm_rules(&s).into_bytes())
        }
        Reply::Array(items) => {
            let mut out = Vec::new();
            let mut it = items.into_iter();
            while let Some(x) = it.next() {
                let key = match &x {
                    Reply::Bulk(b) => String::from_utf8_lossy(b).into_owned(),
                    _ => String::new(),
                };
                out.push(norm(x, false));
                match key.as_str() {
                    "age-seconds" => {
                        it.next();
                        out.push(Reply::Integer(0));
                    }
                    "client-info" => {
                        let info = it.next().map(|v| v.bytes()).unwrap_or_default();
                        let info = String::from_utf8_lossy(&info).into_owned();
                        let kept: Vec<&str> = info
                            .split(' ')
                            .filter(|f| {
                                ["cmd=", "user=", "db=", "flags="]
                                    .iter()
                                    .any(|p| f.starts_with(p))
                            })
                            .collect();
                        out.push(bulk(&kept.join(" ")));
                    }
                    _ => {}
                }
            }
            if sort {
                out.sort_by_key(|v| format!("{v:?}"));
            }
            Reply::Array(out)
        }
        other => other,
    }
}

/// A reply as text, for failure messages.
fn show(v: &Reply) -> String {
    match v {
        Reply::Simple(b) => format!("+{}", String::from_utf8_lossy(b)),
        Reply::Error(b) => format!("-{}", String::from_utf8_lossy(b)),
        Reply::Integer(i) => format!(":{i}"),
        Reply::Bulk(b) => format!("{:?}", String::from_utf8_lossy(b)),
        Reply::Null | Reply::NullArray => "(nil)".into(),
        Reply::Array(a) => {
            format!("[{}]", a.iter().map(show).collect::<Vec<_>>().join(", "))
        }
    }
}

#[test]
fn acl_script_equals_redis_server() {
    // (client, command, sort the reply)
    let steps: &[(usize, &[&str], bool)] = &[
        (0, &["ACL", "LIST"], false),
        (0, &["ACL", "WHOAMI"], false),
        (0, &["ACL", "USERS"], false),
        (0, &["ACL", "CAT"], false),
        (0, &["ACL", "CAT", "geo"], true),
        (0, &["ACL", "CAT", "nosuch"], false),
        (
            0,
            &[
                "ACL",
                "SETUSER",
                "alice",
                "on",
                ">p1",
                "+@read",
                "-@slow",
                "+get",
                "%R~r*",
                "%W~w*",
                "&ch*",
                "+config|get",
                "+select|0",
                "+set",
                "+publish",
                "+subscribe",
                "+multi",
                "+exec",
                "+eval",
            ],
            false,
        ),
        (0, &["ACL", "LIST"], false),
        (0, &["ACL", "GETUSER", "alice"], false),
        (0, &["ACL", "GETUSER", "nobody"], false),
        (1, &["AUTH", "alice", "wrong"], false),
        (1, &["AUTH", "nobody", "p1"], false),
        (1, &["AUTH", "alice", "p1"], false),
        (1, &["ACL", "WHOAMI"], false),
        (1, &["GET", "r1"], false),
        (1, &["GET", "w1"], false),
        (1, &["SET", "w1", "v"], false),
        (1, &["SET", "r1", "v"], false),
        (1, &["SET", "w1", "v", "GET"], false),
        (1, &["MGET", "r1", "r2", "x"], false),
        (1, &["CONFIG", "GET", "maxclients"], false),
        (1, &["CONFIG", "SET", "maxclients", "10"], false),
        (1, &["SELECT", "0"], false),
        (1, &["SELECT", "1"], false),
        (1, &["PUBLISH", "ch1", "m"], false),
        (1, &["PUBLISH", "zz", "m"], false),
        (1, &["SUBSCRIBE", "ch1", "zz"], false),
        (1, &["FLUSHALL"], false),
        (1, &["MULTI"], false),
        (1, &["SET", "r1", "x"], false),
        (1, &["GET", "r1"], false),
        (1, &["EXEC"], false),
        (1, &["EVAL", "return 1", "1", "r1"], false),
        (1, &["EVAL", "return redis.call('get','w1')", "0"], false),
        (
            1,
            &["EVAL", "return redis.call('lpush','w1','x')", "0"],
            false,
        ),
        (
            1,
            &["EVAL", "return redis.acl_check_cmd('set','w1','x')", "0"],
            false,
        ),
        (
            1,
            &["EVAL", "return redis.acl_check_cmd('set','r1','x')", "0"],
            false,
        ),
        (
            1,
            &["EVAL", "return redis.acl_check_cmd('nosuch')", "0"],
            false,
        ),
        (0, &["ACL", "LOG"], false),
        (0, &["ACL", "LOG", "2"], false),
        (0, &["ACL", "DRYRUN", "alice", "set", "r1", "v"], false),
        (0, &["ACL", "DRYRUN", "alice", "get", "r1"], false),
        (0, &["ACL", "DRYRUN", "alice", "publish", "x", "v"], false),
        (0, &["ACL", "DRYRUN", "alice", "flushall"], false),
        (0, &["ACL", "DRYRUN", "nobody", "get", "x"], false),
        (0, &["ACL", "DRYRUN", "alice", "nosuch"], false),
        (0, &["ACL", "DRYRUN", "alice", "get"], false),
        // Keys from Redis's key specs, else its getkeys procs, with their access flags
        // (`keyspec.rs`): a numkeys that does not parse falls back to the proc, which reads it
        // with atoi and gives keys no flags; a count of 0 names no key.
        (
            0,
            &[
                "ACL", "SETUSER", "kate", "on", "nopass", "+@all", "%R~r*", "%W~w*",
            ],
            false,
        ),
        (
            0,
            &[
                "ACL",
                "DRYRUN",
                "kate",
                "zunionstore",
                "w1",
                "2",
                "r1",
                "r2",
            ],
            false,
        ),
        (
            0,
            &[
                "ACL",
                "DRYRUN",
                "kate",
                "zunionstore",
                "r1",
                "2",
                "r1",
                "r2",
            ],
            false,
        ),
        (
            0,
            &[
                "ACL",
                "DRYRUN",
                "kate",
                "zunionstore",
                "w1",
                "2",
                "r1",
                "w2",
            ],
            false,
        ),
        (
            0,
            &["ACL", "DRYRUN", "kate", "zunionstore", "x", "0", "r1"],
            false,
        ),
        (
            0,
            &[
                "ACL",
                "DRYRUN",
                "kate",
                "zunionstore",
                "w1",
                "2abc",
                "r1",
                "r2",
            ],
            false,
        ),
        (
            0,
            &[
                "ACL",
                "DRYRUN",
                "kate",
                "zunionstore",
                "w1",
                "2abc",
                "r1",
                "x",
            ],
            false,
        ),
        (
            0,
            &["ACL", "DRYRUN", "kate", "sort", "r1", "store", "w1"],
            false,
        ),
        (
            0,
            &["ACL", "DRYRUN", "kate", "sort", "r1", "store", "r2"],
            false,
        ),
        (0, &["ACL", "DRYRUN", "kate", "sort", "w1"], false),
        (
            0,
            &["ACL", "DRYRUN", "kate", "xread", "streams", "r1", "w1", "0"],
            false,
        ),
        (
            0,
            &[
                "ACL", "DRYRUN", "kate", "xread", "streams", "r1", "w1", "0", "0",
            ],
            false,
        ),
        (
            0,
            &["ACL", "DRYRUN", "kate", "set", "w1", "v", "get"],
            false,
        ),
        (0, &["ACL", "DRYRUN", "kate", "set", "w1", "v"], false),
        (
            0,
            &["ACL", "DRYRUN", "kate", "bitfield", "r1", "get", "u8", "0"],
            false,
        ),
        (
            0,
            &[
                "ACL", "DRYRUN", "kate", "bitfield", "r1", "set", "u8", "0", "1",
            ],
            false,
        ),
        (
            0,
            &[
                "ACL",
                "DRYRUN",
                "kate",
                "georadius",
                "r1",
                "0",
                "0",
                "1",
                "km",
                "store",
                "w1",
            ],
            false,
        ),
        (
            0,
            &[
                "ACL",
                "DRYRUN",
                "kate",
                "georadius",
                "r1",
                "0",
                "0",
                "1",
                "km",
                "store",
                "r2",
            ],
            false,
        ),
        (
            0,
            &["ACL", "DRYRUN", "kate", "eval", "return 1", "1", "w1"],
            false,
        ),
        (
            0,
            &["ACL", "DRYRUN", "kate", "eval", "return 1", "0"],
            false,
        ),
        (
            0,
            &[
                "ACL", "DRYRUN", "kate", "lmove", "r1", "w1", "left", "right",
            ],
            false,
        ),
        (
            0,
            &["ACL", "DRYRUN", "kate", "lmpop", "2", "r1", "x", "left"],
            false,
        ),
        (
            0,
            &["ACL", "DRYRUN", "kate", "lmpop", "0", "x", "left"],
            false,
        ),
        // Rules changed between queueing and EXEC: the command is refused in place.
        (1, &["MULTI"], false),
        (1, &["GET", "r1"], false),
        (1, &["MGET", "r1"], false),
        (1, &["PUBLISH", "ch1", "m"], false),
        (
            0,
            &["ACL", "SETUSER", "alice", "-mget", "resetchannels"],
            false,
        ),
        (1, &["EXEC"], false),
        (0, &["ACL", "LOG", "2"], false),
        (0, &["ACL", "SETUSER", "alice", "+mget", "&ch*"], false),
        // Rules change under a connected client: seen at once.
        (0, &["ACL", "SETUSER", "alice", "resetkeys", "~*"], false),
        (1, &["GET", "w1"], false),
        (0, &["ACL", "SETUSER", "alice", "-get"], false),
        (1, &["GET", "w1"], false),
        // Errors, and all-or-nothing.
        (0, &["ACL", "SETUSER", "alice", "+get", "bogus"], false),
        (0, &["ACL", "SETUSER", "x", "+nosuch"], false),
        (0, &["ACL", "SETUSER", "x", "~*", "~foo"], false),
        (0, &["ACL", "SETUSER", "x", "&*", "&foo"], false),
        (0, &["ACL", "SETUSER", "x", "#abc"], false),
        (0, &["ACL", "SETUSER", "x", "<nopass"], false),
        (0, &["ACL", "SETUSER", "x", "(+get"], false),
        (0, &["ACL", "SETUSER", "x", "+get|"], false),
        (0, &["ACL", "SETUSER", "x", "+config|get|x"], false),
        (0, &["ACL", "SETUSER", "a b"], false),
        (0, &["ACL", "USERS"], false),
        // Categories, selectors, descriptions.
        (0, &["ACL", "SETUSER", "bob"], false),
        (
            0,
            &[
                "ACL",
                "SETUSER",
                "carol",
                "on",
                "nopass",
                "+@all",
                "-@dangerous",
                "allkeys",
            ],
            false,
        ),
        (
            0,
            &[
                "ACL", "SETUSER", "dave", "on", "nopass", "-@all", "+@hash", "+@list", "-lpush",
            ],
            false,
        ),
        (
            0,
            &[
                "ACL", "SETUSER", "eve", "on", "nopass", "+@all", "-@write", "+set", "(+get",
                "~foo)", "(%RW~bar", "+hget)",
            ],
            false,
        ),
        (0, &["ACL", "LIST"], false),
        (0, &["ACL", "GETUSER", "eve"], false),
        (2, &["AUTH", "eve", "x"], false),
        (2, &["GET", "foo"], false),
        (2, &["GET", "zz"], false),
        (2, &["HGET", "bar", "f"], false),
        (2, &["HGET", "foo", "f"], false),
        (2, &["SET", "any", "v"], false),
        (2, &["LPUSH", "any", "v"], false),
        (0, &["ACL", "SETUSER", "eve", "clearselectors"], false),
        (2, &["GET", "foo"], false),
        (0, &["ACL", "SETUSER", "eve", "reset"], false),
        (0, &["ACL", "GETUSER", "eve"], false),
        // The default user and requirepass.
        (0, &["CONFIG", "SET", "requirepass", "pw"], false),
        (0, &["ACL", "LIST"], false),
        (3, &["GET", "x"], false),
        (3, &["AUTH", "pw"], false),
        (3, &["GET", "x"], false),
        (3, &["RESET"], false),
        (3, &["GET", "x"], false),
        (0, &["CONFIG", "SET", "requirepass", ""], false),
        (3, &["GET", "x"], false),
        (3, &["AUTH", "x"], false),
        (0, &["ACL", "DELUSER", "default"], false),
        (0, &["ACL", "DELUSER", "bob", "nobody", "carol"], false),
        (0, &["ACL", "USERS"], false),
        (0, &["ACL", "LOG", "RESET"], false),
        (0, &["ACL", "LOG"], false),
        (0, &["ACL", "GENPASS", "0"], false),
        (0, &["ACL", "NOSUCH"], false),
        (0, &["ACL", "GETUSER"], false),
        (0, &["ACL", "LOAD"], false),
    ];
    let dir = TempDir::new("server-oracle-acl");
    let Some(redis) = RedisServer::start(dir.path(), &[]) else {
        return;
    };
    let ours = TestServer::start(&[]);
    let mut theirs: Vec<Client> = (0..4).map(|_| Client::connect(redis.port())).collect();
    let mut mine: Vec<Client> = (0..4).map(|_| ours.client()).collect();
    for (c, cmd, sort) in steps {
        let want = norm(theirs[*c].call(cmd), *sort);
        let got = norm(mine[*c].call(cmd), *sort);
        assert_eq!(
            got,
            want,
            "client {c} command {cmd:?}: {} vs {}",
            show(&got),
            show(&want)
        );
    }
    // GENPASS: hex of the asked size.
    let p = mine[0].call(&["ACL", "GENPASS", "5"]).bytes();
    assert_eq!(p.len(), 2);
    assert!(p.iter().all(u8::is_ascii_hexdigit));
    assert_eq!(mine[0].call(&["ACL", "GENPASS"]).bytes().len(), 64);
    // COMMAND INFO's categories.
    for name in ["get", "set", "blpop", "publish", "eval", "flushall"] {
        let want = theirs[0].call(&["COMMAND", "INFO", name]).array()[0].array()[6].clone();
        let got = mine[0].call(&["COMMAND", "INFO", name]).array()[0].array()[6].clone();
        assert_eq!(norm(got, true), norm(want, true), "COMMAND INFO {name}");
    }
}

#[test]
fn deluser_disconnects_its_clients() {
    let s = TestServer::start(&[]);
    let mut admin = s.client();
    assert_eq!(
        admin.call(&["ACL", "SETUSER", "u", "on", ">p", "+@all", "~*"]),
        simple("OK")
    );
    let mut c = s.client();
    assert_eq!(c.call(&["AUTH", "u", "p"]), simple("OK"));
    let list = String::from_utf8(admin.call(&["CLIENT", "LIST"]).bytes()).unwrap();
    assert!(list.contains(" user=u "), "{list}");
    assert_eq!(admin.call(&["ACL", "DELUSER", "u"]), Reply::Integer(1));
    assert!(c.closed(), "a deleted user's client is disconnected");
    // The default user's clients stay.
    assert_eq!(admin.call(&["PING"]), simple("PONG"));
}

#[test]
fn reset_returns_to_the_default_user() {
    let s = TestServer::start(&[]);
    let mut c = s.client();
    c.call(&["ACL", "SETUSER", "user1", "on", ">secret", "+@all"]);
    assert_eq!(c.call(&["AUTH", "user1", "secret"]), simple("OK"));
    assert_eq!(c.call(&["ACL", "WHOAMI"]), bulk("user1"));
    assert_eq!(c.call(&["RESET"]), simple("RESET"));
    assert_eq!(c.call(&["ACL", "WHOAMI"]), bulk("default"));
    let mut h = s.client();
    let r = h.call(&["HELLO", "2", "AUTH", "user1", "nope"]);
    assert_eq!(
        err_text(&r),
        "WRONGPASS invalid username-password pair or user is disabled."
    );
    h.call(&["HELLO", "2", "AUTH", "user1", "secret"]);
    assert_eq!(h.call(&["ACL", "WHOAMI"]), bulk("user1"));
}

#[test]
fn aclfile_load_and_save_equal_redis_server() {
    let file = "user alice on >pw ~a* &c* -@all +get +set\nuser default on nopass ~* &* +@all\n";
    let rdir = TempDir::new("server-acl-file-redis");
    std::fs::write(rdir.path().join("users.acl"), file).unwrap();
    let Some(redis) = RedisServer::start(rdir.path(), &["--aclfile", "users.acl"]) else {
        return;
    };
    let fdir = TempDir::new("server-acl-file");
    std::fs::write(fdir.path().join("users.acl"), file).unwrap();
    let ours = TestServer::start_in(fdir, &["--aclfile", "users.acl"]);
    let mut a = Client::connect(redis.port());
    let mut b = ours.client();
    let mut both = |cmd: &[&str]| {
        let want = norm(a.call(cmd), false);
        let got = norm(b.call(cmd), false);
        assert_eq!(got, want, "{cmd:?}");
    };
    both(&["ACL", "LIST"]);
    both(&["ACL", "SETUSER", "bob", "on", "nopass", "+@hash", "%R~h*"]);
    both(&["ACL", "SAVE"]);
    let saved = |p: &std::path::Path| {
        let t = std::fs::read_to_string(p.join("users.acl")).unwrap();
        t.lines().map(norm_rules).collect::<Vec<_>>()
    };
    assert_eq!(saved(ours.dir.path()), saved(rdir.path()));
    both(&["ACL", "DELUSER", "bob"]);
    both(&["ACL", "LOAD"]);
    both(&["ACL", "LIST"]);
    let bad = "user x on +nosuch\nnotuser y\nuser z on ~* ~a\n";
    std::fs::write(ours.dir.path().join("users.acl"), bad).unwrap();
    std::fs::write(rdir.path().join("users.acl"), bad).unwrap();
    both(&["ACL", "LOAD"]);
    both(&["ACL", "LIST"]);
}

/// Subscribers of a user that loses channel permissions are disconnected, those whose
/// subscriptions are still allowed stay: the same outcome as redis-server 7.0.15.
#[test]
fn revoked_channels_disconnect_subscribers_as_redis() {
    let dir = TempDir::new("server-acl-pubsub");
    let Some(redis) = RedisServer::start(dir.path(), &[]) else {
        return;
    };
    let ours = TestServer::start(&[]);
    let ms300 = std::time::Duration::from_millis(300);
    let outcome = |port: u16| {
        let mut admin = Client::connect(port);
        admin.call(&[
            "ACL",
            "SETUSER",
            "s",
            "on",
            "nopass",
            "+@all",
            "~*",
            "resetchannels",
            "&news.*",
            "&sport",
        ]);
        let mut plain = Client::connect(port);
        plain.call(&["AUTH", "s", "x"]);
        plain.call(&["SUBSCRIBE", "news.a"]);
        let mut pat = Client::connect(port);
        pat.call(&["AUTH", "s", "x"]);
        pat.call(&["PSUBSCRIBE", "news.*"]);
        let mut sport = Client::connect(port);
        sport.call(&["AUTH", "s", "x"]);
        sport.call(&["SUBSCRIBE", "sport"]);
        // `news.*` stays, `sport` goes: only the `sport` subscriber is out.
        admin.call(&["ACL", "SETUSER", "s", "resetchannels", "&news.*"]);
        let first = (
            plain.closed_within(ms300),
            pat.closed_within(ms300),
            sport.closed_within(ms300),
        );
        admin.call(&["ACL", "SETUSER", "s", "resetchannels", "&news.a"]);
        let mut plain2 = Client::connect(port);
        plain2.call(&["AUTH", "s", "x"]);
        plain2.call(&["SUBSCRIBE", "news.a"]);
        let mut pat2 = Client::connect(port);
        pat2.call(&["AUTH", "s", "x"]);
        pat2.call(&["PSUBSCRIBE", "news.a"]);
        admin.call(&["ACL", "SETUSER", "s", "&*"]);
        let second = (plain2.closed_within(ms300), pat2.closed_within(ms300));
        (first, second)
    };
    assert_eq!(outcome(ours.port), outcome(redis.port()));
}
