//! Differential test of the string and key commands against redis-server 7.0.15: thousands of
//! random commands over a small key space (so types collide and keys expire, move and rename
//! into each other), fixed seeds. See `support/mod.rs` for what is compared.

use crate::support;

use forkless_keyspace::{Config, Keyspace};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::Rng;

const KEYS: &[&str] = &["k0", "k1", "k2", "k3", "a", "b", ""];
const VALUES: &[&str] = &[
    "x",
    "hello",
    "",
    "0",
    "7",
    "-3",
    "10",
    "1.5",
    "abc",
    "99999999999",
    "0.2",
    "3e2",
    "1e20",
];
const FLOATS: &[&str] = &[
    "1.5", "-0.25", "3", "0", "2.5e1", "abc", "1e400", "inf", "-2", "0.1", "1e-3", "10.5",
];

fn now_s() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn pick<'a>(rng: &mut StdRng, from: &[&'a str]) -> &'a str {
    from.choose(rng).copied().unwrap_or("")
}

fn set_options(rng: &mut StdRng, out: &mut Vec<String>) {
    if rng.gen_bool(0.3) {
        out.push(pick(rng, &["NX", "XX", "nx"]).into());
    }
    match rng.gen_range(0..10) {
        0 => out.extend(["EX".into(), rng.gen_range(100..5000).to_string()]),
        1 => out.extend(["PX".into(), (rng.gen_range(100..5000) * 1000).to_string()]),
        2 => out.extend([
            "EXAT".into(),
            (now_s() + rng.gen_range(100..5000)).to_string(),
        ]),
        3 => out.extend(["PXAT".into(), ((now_s() + 1000) * 1000).to_string()]),
        4 => out.push("KEEPTTL".into()),
        5 => out.extend([
            "EX".into(),
            pick(rng, &["0", "-5", "abc", "9223372036854775807"]).into(),
        ]),
        _ => {}
    }
    if rng.gen_bool(0.2) {
        out.push("GET".into());
    }
    if rng.gen_bool(0.05) {
        out.push(pick(rng, &["NX", "KEEPTTL", "EX", "bogus"]).into());
    }
}

fn gen_command(rng: &mut StdRng, with_types: bool) -> Vec<Vec<u8>> {
    let k = pick(rng, KEYS).to_string();
    let k2 = pick(rng, KEYS).to_string();
    let v = pick(rng, VALUES).to_string();
    let n = rng.gen_range(-3i64..40).to_string();
    let mut c: Vec<String> = match rng.gen_range(0..50) {
        0..=3 => {
            let mut c = vec!["SET".into(), k, v];
            set_options(rng, &mut c);
            c
        }
        4 | 5 => vec!["GET".into(), k],
        6 => vec!["GETSET".into(), k, v],
        7 => vec!["GETDEL".into(), k],
        8 => {
            let mut c = vec!["GETEX".into(), k];
            match rng.gen_range(0..6) {
                0 => c.extend(["EX".into(), rng.gen_range(100..5000).to_string()]),
                1 => c.extend(["PXAT".into(), "1".into()]),
                2 => c.push("PERSIST".into()),
                3 => c.extend(["EXAT".into(), (now_s() + 3000).to_string()]),
                4 => c.extend(["PX".into(), pick(rng, &["0", "x", "100000"]).into()]),
                _ => {}
            }
            c
        }
        9 => vec!["SETNX".into(), k, v],
        10 => vec![
            "SETEX".into(),
            k,
            pick(rng, &["100", "0", "-1", "x", "3000"]).into(),
            v,
        ],
        11 => vec![
            "PSETEX".into(),
            k,
            pick(rng, &["100000", "0", "3000000"]).into(),
            v,
        ],
        12 => vec!["MSET".into(), k, v, k2, pick(rng, VALUES).into()],
        13 => vec!["MSETNX".into(), k, v, k2, pick(rng, VALUES).into()],
        14 => vec!["MGET".into(), k, k2, "nosuch".into()],
        15 => vec!["APPEND".into(), k, v],
        16 => vec!["STRLEN".into(), k],
        17 | 18 => vec![pick(rng, &["INCR", "DECR"]).into(), k],
        19 => vec![
            pick(rng, &["INCRBY", "DECRBY"]).into(),
            k,
            pick(
                rng,
                &[
                    "5",
                    "-2",
                    "x",
                    "9223372036854775807",
                    "-9223372036854775808",
                ],
            )
            .into(),
        ],
        20 => vec!["INCRBYFLOAT".into(), k, pick(rng, FLOATS).into()],
        21 => vec![
            "SETRANGE".into(),
            k,
            pick(rng, &["0", "3", "-1", "x", "10"]).into(),
            v,
        ],
        22 => vec![
            "GETRANGE".into(),
            k,
            n,
            rng.gen_range(-5i64..10).to_string(),
        ],
        23 | 24 => vec![pick(rng, &["DEL", "UNLINK"]).into(), k, k2],
        25 => vec!["EXISTS".into(), k.clone(), k2, k],
        26 => vec!["TYPE".into(), k],
        27..=29 => {
            let cmd = pick(rng, &["EXPIRE", "PEXPIRE", "EXPIREAT", "PEXPIREAT"]);
            let t: i64 = match (cmd, rng.gen_range(0..4)) {
                (_, 0) => -1,
                ("EXPIRE", _) => rng.gen_range(100..5000),
                ("PEXPIRE", _) => rng.gen_range(100..5000) * 1000,
                ("EXPIREAT", _) => now_s() + rng.gen_range(100..5000),
                _ => (now_s() + rng.gen_range(100..5000)) * 1000,
            };
            let mut c = vec![cmd.into(), k, t.to_string()];
            if rng.gen_bool(0.3) {
                c.push(pick(rng, &["NX", "XX", "GT", "LT", "bad"]).into());
            }
            if rng.gen_bool(0.05) {
                c.push(pick(rng, &["XX", "LT"]).into());
            }
            c
        }
        30 => vec!["PERSIST".into(), k],
        31 => vec![
            pick(rng, &["TTL", "PTTL", "EXPIRETIME", "PEXPIRETIME"]).into(),
            k,
        ],
        32 => vec![pick(rng, &["RENAME", "RENAMENX"]).into(), k, k2],
        33 => {
            let mut c = vec!["COPY".into(), k, k2];
            if rng.gen_bool(0.5) {
                c.extend(["DB".into(), pick(rng, &["0", "1", "16", "x"]).into()]);
            }
            if rng.gen_bool(0.5) {
                c.push("REPLACE".into());
            }
            c
        }
        34 => vec![
            "MOVE".into(),
            k,
            pick(rng, &["0", "1", "2", "99", "-1"]).into(),
        ],
        35 => vec![
            "SELECT".into(),
            pick(rng, &["0", "1", "1", "0", "16", "x"]).into(),
        ],
        36 => {
            if rng.gen_bool(0.2) {
                vec![
                    "SWAPDB".into(),
                    pick(rng, &["0", "1", "x"]).into(),
                    pick(rng, &["1", "2"]).into(),
                ]
            } else {
                vec!["DBSIZE".into()]
            }
        }
        37 => {
            if rng.gen_bool(0.1) {
                vec!["FLUSHDB".into()]
            } else {
                vec![
                    "KEYS".into(),
                    pick(rng, &["*", "k*", "?", "[ab]", "k[^0]", "*1*", "**"]).into(),
                ]
            }
        }
        38 => vec!["RANDOMKEY".into()],
        39 => {
            let mut c = vec!["SCAN".into(), "0".into(), "COUNT".into(), "1000".into()];
            if rng.gen_bool(0.5) {
                c.extend(["MATCH".into(), pick(rng, &["k*", "a", "*"]).into()]);
            }
            if rng.gen_bool(0.3) {
                c.extend(["TYPE".into(), pick(rng, &["string", "list", "none"]).into()]);
            }
            c
        }
        40 => match rng.gen_range(0..4) {
            0 => vec!["GET".into()],
            1 => vec!["SET".into(), k],
            2 => vec!["NOSUCHCMD".into(), k],
            _ => vec!["MSET".into(), k, v, k2],
        },
        _ if with_types => match rng.gen_range(0..4) {
            0 => vec!["LPUSH".into(), k, v],
            1 => vec!["SADD".into(), k, v],
            2 => vec!["HSET".into(), k, "f".into(), v],
            _ => vec!["ZADD".into(), k, "1".into(), v],
        },
        _ => vec!["SET".into(), k, v],
    };
    if c.is_empty() {
        c.push("PING".into());
    }
    c.into_iter().map(String::into_bytes).collect()
}

fn types_available() -> bool {
    let ks = Keyspace::new(Config::seeded(0));
    ["lpush", "sadd", "hset", "zadd"]
        .iter()
        .all(|c| ks.has_command(c))
}

#[test]
fn strings_and_keys_match_redis() {
    let with_types = types_available();
    for seed in [1u64, 2, 3] {
        support::run_differential(
            seed,
            3000,
            |rng| gen_command(rng, with_types),
            &["randomkey", "incrbyfloat"],
        );
    }
}
