//! The server's command line and its network options, in redis-server's own syntax.
//!
//! Problem: a user swaps `redis-server` for `forkless server` and keeps their flags and their
//! redis.conf. redis-server reads `[CONFIG-FILE] [--<option> <value>...]...`: the file's lines
//! and then the arguments, each `--name` followed by the words up to the next `--name` (joined by
//! spaces: `--save 60 1000` is `save "60 1000"`), later settings overriding earlier ones
//! (`loadServerConfig` in Redis 7.0's `config.c`). Lines are split like `sdssplitargs`.
//!
//! Interim: the engine handle's option table (issue 15) will own every option; until it lands,
//! [`Options`] types the options the network layer reads (port, bind, limits, auth) and keeps the
//! others as text in [`Options::other`] (validated by name only) so `CONFIG GET` answers them.

use std::collections::BTreeMap;
use std::fmt;

use crate::parse::split_args;

/// A refused option or value: the one line the server prints before exiting with status 1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OptionError(pub String);

impl fmt::Display for OptionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for OptionError {}

/// The network options, typed, defaults as redis-server 7.0.
#[derive(Clone, Debug)]
pub struct Options {
    /// `port` (0: no TCP listener).
    pub port: u16,
    /// `bind`: the addresses to listen on.
    pub bind: Vec<String>,
    /// `requirepass` (empty: no password).
    pub requirepass: String,
    /// `maxclients`.
    pub maxclients: u64,
    /// `timeout`: seconds of idleness before a client is closed (0: never).
    pub timeout: u64,
    /// `proto-max-bulk-len`.
    pub proto_max_bulk_len: u64,
    /// `client-query-buffer-limit`.
    pub client_query_buffer_limit: u64,
    /// `protected-mode`.
    pub protected_mode: bool,
    /// `databases`.
    pub databases: u32,
    /// `enable-debug-command` (no | yes | local).
    pub enable_debug_command: String,
    /// Every other known option, as text (for `CONFIG GET` and, later, the engine).
    pub other: BTreeMap<&'static str, String>,
}

/// Options kept as text, with redis-server 7.0.15's defaults (see `options_defaults`).
use crate::options_defaults::REDIS_DEFAULTS as OTHER;

/// Options read only at start-up (`CONFIG SET` refuses them, as Redis's `IMMUTABLE_CONFIG`).
const IMMUTABLE: &[&str] = &[
    "daemonize",
    "databases",
    "supervised",
    "always-show-logo",
    "set-proc-title",
];

impl Default for Options {
    fn default() -> Self {
        Options {
            port: 6379,
            bind: vec!["127.0.0.1".into(), "-::1".into()],
            requirepass: String::new(),
            maxclients: 10000,
            timeout: 0,
            proto_max_bulk_len: 512 * 1024 * 1024,
            client_query_buffer_limit: 1024 * 1024 * 1024,
            protected_mode: true,
            databases: 16,
            enable_debug_command: "no".into(),
            other: OTHER.iter().map(|&(k, v)| (k, v.to_string())).collect(),
        }
    }
}

/// Redis's `memtoull`: a number with an optional unit (b, k, kb, m, mb, g, gb; any case).
pub fn parse_memory(s: &str) -> Option<u64> {
    let lower = s.to_ascii_lowercase();
    let digits_end = lower
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(lower.len());
    let (num, unit) = lower.split_at(digits_end);
    let mul: u64 = match unit {
        "" | "b" => 1,
        "k" => 1000,
        "kb" => 1024,
        "m" => 1000 * 1000,
        "mb" => 1024 * 1024,
        "g" => 1000 * 1000 * 1000,
        "gb" => 1024 * 1024 * 1024,
        _ => return None,
    };
    num.parse::<u64>().ok()?.checked_mul(mul)
}

fn parse_bool(s: &str) -> Option<bool> {
    match s.to_ascii_lowercase().as_str() {
        "yes" => Some(true),
        "no" => Some(false),
        _ => None,
    }
}

fn bad(name: &str, value: &str, why: &str) -> OptionError {
    OptionError(format!(
        "invalid value '{value}' for option '{name}': {why}"
    ))
}

impl Options {
    /// Apply one option (`name` any case). `startup` allows the immutable ones.
    pub fn set(&mut self, name: &str, value: &str, startup: bool) -> Result<(), OptionError> {
        let name = name.to_ascii_lowercase();
        let int = |lo: u64, hi: u64| -> Result<u64, OptionError> {
            let n: u64 = value
                .parse()
                .map_err(|_| bad(&name, value, "not an integer"))?;
            if n < lo || n > hi {
                return Err(bad(&name, value, &format!("must be between {lo} and {hi}")));
            }
            Ok(n)
        };
        let mem = |lo: u64| -> Result<u64, OptionError> {
            let n = parse_memory(value).ok_or_else(|| bad(&name, value, "not a memory size"))?;
            if n < lo {
                return Err(bad(&name, value, &format!("must be at least {lo}")));
            }
            Ok(n)
        };
        match name.as_str() {
            "port" => self.port = int(0, 65535)? as u16,
            "bind" => {
                let addrs: Vec<String> = value.split_whitespace().map(String::from).collect();
                if addrs.is_empty() {
                    return Err(bad(&name, value, "no address"));
                }
                self.bind = addrs;
            }
            "requirepass" => self.requirepass = value.to_string(),
            "maxclients" => self.maxclients = int(1, u64::from(u32::MAX))?,
            "timeout" => self.timeout = int(0, i32::MAX as u64)?,
            "proto-max-bulk-len" => self.proto_max_bulk_len = mem(1024 * 1024)?,
            "client-query-buffer-limit" => self.client_query_buffer_limit = mem(1024 * 1024)?,
            "protected-mode" => {
                self.protected_mode =
                    parse_bool(value).ok_or_else(|| bad(&name, value, "must be yes or no"))?
            }
            "databases" if startup => self.databases = int(1, i32::MAX as u64)? as u32,
            "enable-debug-command" if startup => match value.to_ascii_lowercase().as_str() {
                v @ ("yes" | "no" | "local") => self.enable_debug_command = v.to_string(),
                _ => return Err(bad(&name, value, "must be yes, no or local")),
            },
            "databases" | "enable-debug-command" => {
                return Err(OptionError(format!("can't set immutable config '{name}'")))
            }
            _ => {
                let Some(&(key, _)) = OTHER.iter().find(|(k, _)| *k == name) else {
                    return Err(OptionError(format!("unknown option '{name}'")));
                };
                if !startup && IMMUTABLE.contains(&key) {
                    return Err(OptionError(format!("can't set immutable config '{name}'")));
                }
                if matches!(
                    key,
                    "appendonly"
                        | "activerehashing"
                        | "rdbcompression"
                        | "rdbchecksum"
                        | "daemonize"
                ) || key.starts_with("lazyfree-")
                {
                    parse_bool(value).ok_or_else(|| bad(&name, value, "must be yes or no"))?;
                }
                if key == "daemonize" && parse_bool(value) == Some(true) {
                    return Err(bad(&name, value, "forkless server does not daemonize"));
                }
                if key == "appendfsync" && !matches!(value, "always" | "everysec" | "no") {
                    return Err(bad(&name, value, "must be always, everysec or no"));
                }
                self.other.insert(key, value.to_string());
            }
        }
        Ok(())
    }

    /// Every option name with its current value as `CONFIG GET` shows it.
    pub fn all(&self) -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> = vec![
            ("port".into(), self.port.to_string()),
            ("bind".into(), self.bind.join(" ")),
            ("requirepass".into(), self.requirepass.clone()),
            ("maxclients".into(), self.maxclients.to_string()),
            ("timeout".into(), self.timeout.to_string()),
            (
                "proto-max-bulk-len".into(),
                self.proto_max_bulk_len.to_string(),
            ),
            (
                "client-query-buffer-limit".into(),
                self.client_query_buffer_limit.to_string(),
            ),
            (
                "protected-mode".into(),
                if self.protected_mode { "yes" } else { "no" }.into(),
            ),
            ("databases".into(), self.databases.to_string()),
            (
                "enable-debug-command".into(),
                self.enable_debug_command.clone(),
            ),
        ];
        v.extend(self.other.iter().map(|(k, v)| (k.to_string(), v.clone())));
        v
    }

    /// The text value of an option kept as text.
    pub fn get_other(&self, name: &str) -> &str {
        self.other.get(name).map(String::as_str).unwrap_or("")
    }

    /// Parse redis-server's command line: an optional config file first, then `--name value...`.
    pub fn from_args(args: &[String]) -> Result<Options, OptionError> {
        let mut opts = Options::default();
        let mut rest = args;
        if let Some(first) = args.first() {
            if !first.starts_with("--") {
                let text = std::fs::read_to_string(first)
                    .map_err(|e| OptionError(format!("can't read config file '{first}': {e}")))?;
                opts.apply_file_text(&text, first)?;
                rest = &args[1..];
            }
        }
        let mut i = 0;
        while i < rest.len() {
            let Some(name) = rest[i].strip_prefix("--") else {
                return Err(OptionError(format!(
                    "unexpected argument '{}' (options are --name value)",
                    rest[i]
                )));
            };
            let mut words = Vec::new();
            i += 1;
            while i < rest.len() && !rest[i].starts_with("--") {
                words.push(rest[i].clone());
                i += 1;
            }
            if words.is_empty() && !matches!(name, "save" | "requirepass" | "logfile" | "bind") {
                return Err(OptionError(format!("option '--{name}' needs a value")));
            }
            opts.set(name, &words.join(" "), true)
                .map_err(|e| OptionError(format!("{e} (from --{name})")))?;
        }
        Ok(opts)
    }

    /// Apply a redis.conf text (`where` names it in errors).
    pub fn apply_file_text(&mut self, text: &str, r#where: &str) -> Result<(), OptionError> {
        // `save` lines accumulate in a file (several `save 900 1` lines make one rule set).
        let mut save_rules: Option<Vec<String>> = None;
        for (n, line) in text.lines().enumerate() {
            let t = line.trim();
            if t.is_empty() || t.starts_with('#') {
                continue;
            }
            let at = || format!("{}:{}", r#where, n + 1);
            let words = split_args(t.as_bytes())
                .ok_or_else(|| OptionError(format!("{}: unbalanced quotes in '{t}'", at())))?;
            let words: Vec<String> = words
                .into_iter()
                .map(|w| String::from_utf8_lossy(&w).into_owned())
                .collect();
            let Some((name, vals)) = words.split_first() else {
                continue;
            };
            if name.eq_ignore_ascii_case("include") {
                return Err(OptionError(format!("{}: include is not supported", at())));
            }
            if name.eq_ignore_ascii_case("save") {
                let rules = save_rules.get_or_insert_with(Vec::new);
                if vals.len() == 1 && vals[0].is_empty() {
                    rules.clear();
                } else {
                    rules.push(vals.join(" "));
                }
                continue;
            }
            self.set(name, &vals.join(" "), true)
                .map_err(|e| OptionError(format!("{}: {e}", at())))?;
        }
        if let Some(rules) = save_rules {
            self.set("save", &rules.join(" "), true)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn redis_server_command_line() {
        let o = Options::from_args(&args(&[
            "--port",
            "6380",
            "--save",
            "60",
            "1000",
            "--requirepass",
            "s3cret",
            "--maxmemory",
            "1gb",
        ]))
        .unwrap();
        assert_eq!(o.port, 6380);
        assert_eq!(o.get_other("save"), "60 1000");
        assert_eq!(o.requirepass, "s3cret");
        assert_eq!(o.get_other("maxmemory"), "1gb");
        let o = Options::from_args(&args(&["--save", ""])).unwrap();
        assert_eq!(o.get_other("save"), "");
    }

    #[test]
    fn bad_options_are_one_clear_line() {
        let e = Options::from_args(&args(&["--no-such", "1"])).unwrap_err();
        assert_eq!(e.0, "unknown option 'no-such' (from --no-such)");
        let e = Options::from_args(&args(&["--port", "99999"])).unwrap_err();
        assert_eq!(
            e.0,
            "invalid value '99999' for option 'port': must be between 0 and 65535 (from --port)"
        );
        assert!(!e.0.contains('\n'));
    }

    #[test]
    fn config_file_then_args() {
        let mut o = Options::default();
        o.apply_file_text(
            "# c\nport 7000\nsave 900 1\nsave 300 10\nbind 127.0.0.1\n",
            "f",
        )
        .unwrap();
        assert_eq!(o.port, 7000);
        assert_eq!(o.get_other("save"), "900 1 300 10");
        let e = o.apply_file_text("port abc\n", "f").unwrap_err();
        assert_eq!(
            e.0,
            "f:1: invalid value 'abc' for option 'port': not an integer"
        );
    }

    #[test]
    fn memory_units() {
        assert_eq!(parse_memory("1gb"), Some(1 << 30));
        assert_eq!(parse_memory("100k"), Some(100_000));
        assert_eq!(parse_memory("5MB"), Some(5 << 20));
        assert_eq!(parse_memory("x"), None);
    }
}
