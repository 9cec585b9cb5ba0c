//! RSS against accounting (benches/README.md "Eviction", issue 16): for 1M keys of each type,
//! how far the keyspace's `used_memory` (what eviction compares with `maxmemory`) is from the
//! growth of the process's resident set.
//!
//! Each type runs in a child process of its own (`--type T`), so that memory the allocator kept
//! from an earlier type cannot hide a later type's growth. The child builds an empty keyspace
//! (default config), reads `VmRSS`, runs one command per key through `Keyspace::execute`, reads
//! `VmRSS` again and prints one JSON line: RSS growth, `used_memory`, and the dict tables
//! (`memory_report().tables`: bucket arrays plus the node arena, whose nodes `used_memory`
//! already charges per entry; shown for reference). The parent prints a Markdown table.
//!
//! Key shapes (`key:<i>`): string = `SET` of `--value-size` bytes; list / set / zset / hash =
//! 4 elements of `value-size / 4` bytes (RPUSH, SADD, ZADD with scores 1..4, HSET f1..f4), as
//! the mixed dataset of `workload.rs`.

use std::process::{Command, ExitCode};

use clap::Parser;
use forkless_harness::rss::{loadavg, rss_now};
use forkless_keyspace::{Config, Keyspace, Reply, Session};

/// RSS growth against used_memory per type.
#[derive(Debug, Parser)]
#[command(
    name = "rss_accounting",
    after_help = "Example:\n  cargo run --release -p forkless-benches --bin rss_accounting -- --keys 1000000"
)]
struct Args {
    /// Keys per type.
    #[arg(long, default_value_t = 1_000_000)]
    keys: u64,
    /// Bytes per string value (collections: per 4 elements).
    #[arg(long, default_value_t = 64)]
    value_size: usize,
    /// Child mode: measure this one type (string, list, set, zset, hash).
    #[arg(long)]
    r#type: Option<String>,
}

const TYPES: [&str; 5] = ["string", "list", "set", "zset", "hash"];

fn filler(i: u64, tag: u64, len: usize) -> Vec<u8> {
    let mut v = format!("v{i}:{tag}:").into_bytes();
    v.resize(len.max(v.len()), b'x');
    v
}

fn command(ty: &str, i: u64, size: usize) -> Vec<Vec<u8>> {
    let key = format!("key:{i}").into_bytes();
    let el = (size / 4).max(1);
    let mut argv: Vec<Vec<u8>> = Vec::with_capacity(10);
    let name: &[u8] = match ty {
        "string" => b"SET",
        "list" => b"RPUSH",
        "set" => b"SADD",
        "zset" => b"ZADD",
        _ => b"HSET",
    };
    argv.push(name.to_vec());
    argv.push(key);
    if ty == "string" {
        argv.push(filler(i, 0, size));
        return argv;
    }
    for j in 1..=4u64 {
        match ty {
            "zset" => argv.push(j.to_string().into_bytes()),
            "hash" => argv.push(format!("f{j}").into_bytes()),
            _ => {}
        }
        argv.push(filler(i, j, el));
    }
    argv
}

fn child(ty: &str, keys: u64, size: usize) -> Result<String, String> {
    let ks = Keyspace::new(Config::default());
    let mut s = Session::default();
    let rss0 = rss_now();
    for i in 0..keys {
        let argv = command(ty, i, size);
        let refs: Vec<&[u8]> = argv.iter().map(Vec::as_slice).collect();
        if let Reply::Error(e) = ks.execute(&mut s, &refs) {
            return Err(format!("{ty} key {i}: {e}"));
        }
    }
    let rss1 = rss_now();
    let used = ks.used_memory();
    let tables = ks.memory_report().tables;
    Ok(serde_json::json!({
        "type": ty,
        "keys": keys,
        "rss_growth": rss1.saturating_sub(rss0),
        "used_memory": used,
        "tables": tables,
    })
    .to_string())
}

fn main() -> ExitCode {
    let a = Args::parse();
    if let Some(ty) = &a.r#type {
        if !TYPES.contains(&ty.as_str()) {
            eprintln!("rss_accounting: --type must be one of {TYPES:?}");
            return ExitCode::from(2);
        }
        return match child(ty, a.keys, a.value_size) {
            Ok(line) => {
                println!("{line}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("rss_accounting: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("rss_accounting: locating this binary: {e}");
            return ExitCode::FAILURE;
        }
    };
    eprintln!("load average before: {}", loadavg());
    println!(
        "{} keys per type, {} B values (collections: 4 elements of {} B)\n",
        a.keys,
        a.value_size,
        (a.value_size / 4).max(1)
    );
    println!("| type | RSS growth (MiB) | used_memory (MiB) | used / RSS growth | error of used_memory | dict tables (MiB) |");
    println!("|---|---|---|---|---|---|");
    let mib = |b: f64| b / (1024.0 * 1024.0);
    for ty in TYPES {
        let out = Command::new(&exe)
            .args(["--type", ty, "--keys", &a.keys.to_string()])
            .args(["--value-size", &a.value_size.to_string()])
            .output();
        let out = match out {
            Ok(o) if o.status.success() => o,
            Ok(o) => {
                eprintln!(
                    "rss_accounting: {ty}: {}",
                    String::from_utf8_lossy(&o.stderr)
                );
                return ExitCode::FAILURE;
            }
            Err(e) => {
                eprintln!("rss_accounting: running {ty}: {e}");
                return ExitCode::FAILURE;
            }
        };
        let v: serde_json::Value = match serde_json::from_slice(&out.stdout) {
            Ok(v) => v,
            Err(e) => {
                eprintln!("rss_accounting: {ty}: bad child output: {e}");
                return ExitCode::FAILURE;
            }
        };
        let f = |k: &str| v[k].as_u64().unwrap_or(0) as f64;
        let (rss, used, tables) = (f("rss_growth"), f("used_memory"), f("tables"));
        println!(
            "| {ty} | {:.1} | {:.1} | {:.3} | {:+.1}% | {:.1} |",
            mib(rss),
            mib(used),
            used / rss.max(1.0),
            (used - rss) / rss.max(1.0) * 100.0,
            mib(tables),
        );
    }
    eprintln!("load average after: {}", loadavg());
    ExitCode::SUCCESS
}
