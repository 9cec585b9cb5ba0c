//! The option table against files, command lines, CONFIG GET/SET and REWRITE.

use forkless::config::{Kind, Value};
use forkless::{Config, ConfigError, OPTIONS};
use forkless_testkit::TempDir;

/// A valid non-default value for each kind of option, in redis.conf syntax, and what
/// `CONFIG GET` must print for it.
fn sample(name: &str, kind: Kind, default: &str) -> (String, String) {
    match kind {
        Kind::Bool => {
            let v = if default == "yes" { "no" } else { "yes" };
            (v.into(), v.into())
        }
        Kind::Int { min, max } => {
            let d: i64 = default.parse().unwrap();
            let v = if d < max { d + 1 } else { min };
            (v.to_string(), v.to_string())
        }
        Kind::Memory { min, max } => {
            let v = if max >= 3 << 20 && min <= 3 << 20 {
                3 << 20
            } else {
                min
            };
            if v == 3 << 20 {
                ("3MB".into(), v.to_string())
            } else {
                (v.to_string(), v.to_string())
            }
        }
        Kind::Enum(words) => {
            let v = words.iter().find(|w| **w != default).unwrap_or(&words[0]);
            (v.to_uppercase(), v.to_string())
        }
        Kind::Str => match name {
            "dir" => ("\"/tmp/some dir\"".into(), "/tmp/some dir".into()),
            // Event classes, printed as Redis prints them (its pubsub.tcl: "KA" reads "AK").
            "notify-keyspace-events" => ("KEA".into(), "AKE".into()),
            _ => (format!("\"v a\\tl-{name}\""), format!("v a\tl-{name}")),
        },
        Kind::Save => ("\"900 1 300 10\"".into(), "900 1 300 10".into()),
        Kind::Bind => ("127.0.0.2 -::1".into(), "127.0.0.2 -::1".into()),
        Kind::OutputBufferLimit => (
            "replica 512mb 128mb 30".into(),
            "normal 0 0 0 slave 536870912 134217728 30 pubsub 33554432 8388608 60".into(),
        ),
        Kind::ReplicaOf => ("10.0.0.1 6380".into(), "10.0.0.1 6380".into()),
    }
}

#[test]
fn every_option_in_one_file() {
    let tmp = TempDir::new("engine-config");
    let mut text = String::from("# a comment\n\n");
    let mut want = Vec::new();
    for s in OPTIONS {
        let (v, shown) = sample(s.name, s.kind, s.default);
        // Aliases are accepted in files; use them for every other option that has one.
        let name = match s.alias {
            Some(a) if want.len() % 2 == 0 => a,
            _ => s.name,
        };
        text.push_str(&format!("  {name} {v}\n"));
        want.push((s.name, shown));
    }
    let path = tmp.path().join("redis.conf");
    std::fs::write(&path, &text).unwrap();
    let c = Config::from_file(&path).unwrap_or_else(|e| panic!("{e}\n{text}"));
    for (name, shown) in &want {
        assert_eq!(
            c.get(name).as_deref(),
            Some(shown.as_str()),
            "option {name}"
        );
        assert!(c.is_explicit(name));
    }
    // CONFIG REWRITE then reading the file back gives the same configuration.
    let mut c2 = c.clone();
    c2.set("maxmemory", "1gb").unwrap();
    c2.set("save", "").unwrap();
    c2.rewrite_file(&path).unwrap();
    let back = Config::from_file(&path).unwrap();
    for s in OPTIONS {
        assert_eq!(
            back.get(s.name),
            c2.get(s.name),
            "after rewrite: {}",
            s.name
        );
    }
    let rewritten = std::fs::read_to_string(&path).unwrap();
    assert!(rewritten.starts_with("# a comment\n"), "{rewritten}");
    assert!(rewritten.contains("maxmemory 1gb"), "{rewritten}");
    // Defaults: every option prints its table default.
    let d = Config::default();
    assert_eq!(d.get("port").unwrap(), "6379");
    assert_eq!(d.get("appendfsync").unwrap(), "everysec");
    assert_eq!(d.get("save").unwrap(), "3600 1 300 100 60 10000");
    assert_eq!(d.get("proto-max-bulk-len").unwrap(), "536870912");
    assert_eq!(d.get("slaveof").unwrap(), "");
    assert!(matches!(d.value("save"), Some(Value::Save(r)) if r.len() == 3));
}

fn err_of(text: &str) -> String {
    let mut c = Config::default();
    c.load_str(text).unwrap_err().to_string()
}

#[test]
fn bad_input_names_option_value_and_line() {
    let e = err_of("port 6379\n\nno-such-option 1\n");
    assert!(
        e.contains("<string>:3") && e.contains("unknown option 'no-such-option'"),
        "{e}"
    );
    let e = err_of("maxmemory lots\n");
    assert!(
        e.contains("'maxmemory'") && e.contains("'lots'") && e.contains(":1"),
        "{e}"
    );
    let e = err_of("port 70000\n");
    assert!(e.contains("between 0 and 65535"), "{e}");
    let e = err_of("appendonly maybe\n");
    assert!(e.contains("'yes' or 'no'"), "{e}");
    let e = err_of("appendfsync sometimes\n");
    assert!(e.contains("always, everysec, no"), "{e}");
    let e = err_of("hz 10 20\n");
    assert!(e.contains("expected one value, got 2"), "{e}");
    let e = err_of("save 900\n");
    assert!(e.contains("pairs"), "{e}");
    let e = err_of("save 0 1\n");
    assert!(e.contains("seconds must be >= 1"), "{e}");
    let e = err_of("requirepass \"unterminated\n");
    assert!(e.contains("unbalanced quotes"), "{e}");
    let e = err_of("daemonize yes\n");
    assert!(e.contains("'daemonize'"), "{e}");
    let e = err_of("client-output-buffer-limit nobody 1 2 3\n");
    assert!(e.contains("invalid client class"), "{e}");
    let e = err_of("dbfilename ../../etc/passwd\n");
    assert!(e.contains("can't be a path"), "{e}");
    let e = err_of("appenddirname a/b\n");
    assert!(e.contains("'appenddirname'"), "{e}");
    let e = err_of("include /no/such/file.conf\n");
    assert!(e.contains("/no/such/file.conf"), "{e}");
    let mut c = Config::default();
    assert!(matches!(
        c.set("databases", "4"),
        Err(ConfigError::Immutable { .. })
    ));
    assert!(matches!(
        c.set("nope", "4"),
        Err(ConfigError::UnknownOption { .. })
    ));
    // All or nothing.
    assert!(c.set_many(&[("hz", "20"), ("maxmemory", "x")]).is_err());
    assert_eq!(c.get("hz").unwrap(), "10");
}

#[test]
fn command_line_like_redis_server() {
    let tmp = TempDir::new("engine-args");
    let path = tmp.path().join("base.conf");
    std::fs::write(&path, "port 7000\nsave 900 1\nsave 300 10\n").unwrap();
    let c = Config::from_args([
        path.to_str().unwrap(),
        "--port",
        "6380",
        "--save",
        "60 1000",
        "--maxmemory",
        "1gb",
        "--list-max-ziplist-size",
        "-3",
        "--replicaof",
        "127.0.0.1",
        "6379",
        "--requirepass",
        "s3cret",
    ])
    .unwrap();
    assert_eq!(c.get("port").unwrap(), "6380");
    // As redis-server: the arguments continue the file's text, so save lines add up.
    assert_eq!(c.get("save").unwrap(), "900 1 300 10 60 1000");
    assert_eq!(c.get("maxmemory").unwrap(), (1u64 << 30).to_string());
    assert_eq!(c.get("list-max-listpack-size").unwrap(), "-3");
    assert_eq!(c.replicaof(), Some(("127.0.0.1".into(), 6379)));
    assert_eq!(c.file(), Some(path.as_path()));
    assert_eq!(
        Config::from_args(["--save", ""])
            .unwrap()
            .get("save")
            .unwrap(),
        ""
    );
    let e = Config::from_args(["--port"]).unwrap_err().to_string();
    assert!(e.contains("command line") && e.contains("'port'"), "{e}");
    // CONFIG GET globs, aliases included.
    let got = c.matching("*max*-entries");
    let names: Vec<&str> = got.iter().map(|(n, _)| *n).collect();
    assert!(names.contains(&"hash-max-listpack-entries"));
    assert!(names.contains(&"hash-max-ziplist-entries"));
    assert!(names.contains(&"set-max-intset-entries"));
}
