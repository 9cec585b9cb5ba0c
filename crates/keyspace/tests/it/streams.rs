//! Streams against redis-server 7.0.15: a differential run of every stream command with
//! explicit IDs (replies, final dumps, replay of our propagation; clocks differ, so commands
//! whose replies carry times are left to the Tcl units), and the RDB both ways: the listpack
//! nodes redis-server saves equal ours after the same commands (so the bytes are the same), and
//! the RDB we write loads into redis-server with the same content, `redis-check-rdb` agreeing.

use crate::support;

use forkless_keyspace::{Config, Keyspace, Session};
use forkless_rdb::model::{canonicalize, Entry};
use forkless_rdb::Value as MValue;
use forkless_testkit::{redis_check_rdb, redis_load_rdb, RedisServer, TempDir};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

fn pick(rng: &mut StdRng, from: &[&str]) -> String {
    from.choose(rng).copied().unwrap_or("").to_string()
}

const KEYS: &[&str] = &["s0", "s1", "s2"];
const GROUPS: &[&str] = &["g1", "g2", "nog"];
const CONSUMERS: &[&str] = &["alice", "bob", "carol"];
const FIELDS: &[&str] = &["f", "g", "temp", "1", "name"];
const VALUES: &[&str] = &["v", "", "12", "-3", "hello world", "x"];

fn id(rng: &mut StdRng) -> String {
    let ms = rng.gen_range(0..40);
    match rng.gen_range(0..12) {
        0 => format!("{ms}"),
        1 => "-".into(),
        2 => "+".into(),
        3 => format!("({ms}-{}", rng.gen_range(0..3)),
        4 => pick(
            rng,
            &[
                "0-0",
                "bad",
                "1-x",
                "18446744073709551615-18446744073709551615",
            ],
        ),
        _ => format!("{ms}-{}", rng.gen_range(0..4)),
    }
}

fn add_id(rng: &mut StdRng, ms: &mut u64) -> String {
    if rng.gen_bool(0.85) {
        *ms += rng.gen_range(0..3);
    }
    match rng.gen_range(0..10) {
        0 => format!("{ms}-*"),
        1 => format!("{ms}"),
        2 => pick(rng, &["0-0", "0-1", "3-1", "bad"]),
        _ => format!("{ms}-{}", rng.gen_range(0..3)),
    }
}

fn gen(rng: &mut StdRng, ms: &mut u64) -> Vec<Vec<u8>> {
    let k = pick(rng, KEYS);
    let g = pick(rng, GROUPS);
    let c = pick(rng, CONSUMERS);
    let n = |rng: &mut StdRng| pick(rng, &["0", "1", "2", "3", "5", "10", "-1", "x"]);
    let v: Vec<String> = match rng.gen_range(0..60) {
        0..=19 => {
            let mut v = vec!["XADD".into(), k];
            if rng.gen_bool(0.05) {
                v.push("NOMKSTREAM".into());
            }
            if rng.gen_bool(0.15) {
                if rng.gen_bool(0.6) {
                    v.push("MAXLEN".into());
                    if rng.gen_bool(0.5) {
                        v.push(pick(rng, &["~", "="]));
                    }
                    v.push(pick(rng, &["0", "3", "10", "150", "-1"]));
                } else {
                    v.push("MINID".into());
                    if rng.gen_bool(0.5) {
                        v.push(pick(rng, &["~", "="]));
                    }
                    v.push(format!("{}", *ms / 2));
                }
                if rng.gen_bool(0.2) {
                    v.push("LIMIT".into());
                    v.push(pick(rng, &["0", "1", "100"]));
                }
            }
            v.push(add_id(rng, ms));
            let nf = if rng.gen_bool(0.02) {
                0
            } else {
                rng.gen_range(1..4)
            };
            for f in FIELDS.iter().take(nf) {
                v.push(if rng.gen_bool(0.7) {
                    (*f).into()
                } else {
                    pick(rng, FIELDS)
                });
                v.push(pick(rng, VALUES));
            }
            if rng.gen_bool(0.02) {
                v.push("odd".into());
            }
            v
        }
        20..=23 => {
            let mut v = vec![pick(rng, &["XRANGE", "XREVRANGE"]), k, id(rng), id(rng)];
            if rng.gen_bool(0.3) {
                v.push("COUNT".into());
                v.push(n(rng));
            }
            v
        }
        24 => vec!["XLEN".into(), k],
        25..=27 => {
            let mut v = vec!["XDEL".into(), k];
            for _ in 0..rng.gen_range(1..4) {
                v.push(id(rng));
            }
            v
        }
        28 | 29 => {
            let mut v = vec!["XTRIM".into(), k];
            if rng.gen_bool(0.5) {
                v.push("MAXLEN".into());
                if rng.gen_bool(0.5) {
                    v.push(pick(rng, &["~", "="]));
                }
                v.push(pick(rng, &["0", "2", "5", "20", "-1"]));
            } else {
                v.push("MINID".into());
                if rng.gen_bool(0.5) {
                    v.push(pick(rng, &["~", "="]));
                }
                v.push(id(rng));
            }
            if rng.gen_bool(0.15) {
                v.push("LIMIT".into());
                v.push(pick(rng, &["0", "1", "100"]));
            }
            v
        }
        30..=32 => {
            let mut v = vec!["XGROUP".into(), "CREATE".into(), k, g];
            v.push(if rng.gen_bool(0.3) {
                "$".into()
            } else {
                id(rng)
            });
            if rng.gen_bool(0.4) {
                v.push("MKSTREAM".into());
            }
            if rng.gen_bool(0.2) {
                v.push("ENTRIESREAD".into());
                v.push(n(rng));
            }
            v
        }
        33 => {
            let mut v = vec!["XGROUP".into(), "SETID".into(), k, g];
            v.push(if rng.gen_bool(0.3) {
                "$".into()
            } else {
                id(rng)
            });
            if rng.gen_bool(0.3) {
                v.push("ENTRIESREAD".into());
                v.push(n(rng));
            }
            v
        }
        34 => match rng.gen_range(0..4) {
            0 => vec!["XGROUP".into(), "DESTROY".into(), k, g],
            1 => vec!["XGROUP".into(), "CREATECONSUMER".into(), k, g, c],
            2 => vec!["XGROUP".into(), "DELCONSUMER".into(), k, g, c],
            _ => vec!["XGROUP".into(), pick(rng, &["HELP", "NOPE", "DESTROY"])],
        },
        35..=41 => {
            let mut v = vec!["XREADGROUP".into(), "GROUP".into(), g, c];
            if rng.gen_bool(0.5) {
                v.push("COUNT".into());
                v.push(n(rng));
            }
            if rng.gen_bool(0.2) {
                v.push("NOACK".into());
            }
            v.push("STREAMS".into());
            v.push(k);
            v.push(if rng.gen_bool(0.7) {
                ">".into()
            } else {
                id(rng)
            });
            v
        }
        42 | 43 => {
            let mut v = vec!["XREAD".into()];
            if rng.gen_bool(0.5) {
                v.push("COUNT".into());
                v.push(n(rng));
            }
            v.push("STREAMS".into());
            let k2 = pick(rng, KEYS);
            v.push(k);
            v.push(k2);
            v.push(if rng.gen_bool(0.2) {
                "$".into()
            } else {
                id(rng)
            });
            v.push(id(rng));
            v
        }
        44..=46 => {
            let mut v = vec!["XACK".into(), k, g];
            for _ in 0..rng.gen_range(1..3) {
                v.push(id(rng));
            }
            v
        }
        47 => vec!["XPENDING".into(), k, g],
        48..=50 => {
            let mut v = vec!["XCLAIM".into(), k, g, c, "0".into()];
            for _ in 0..rng.gen_range(1..3) {
                v.push(id(rng));
            }
            for _ in 0..rng.gen_range(0..3) {
                match rng.gen_range(0..5) {
                    0 => v.push("JUSTID".into()),
                    1 => v.push("FORCE".into()),
                    2 => {
                        v.push("RETRYCOUNT".into());
                        v.push(n(rng));
                    }
                    3 => {
                        v.push("LASTID".into());
                        v.push(id(rng));
                    }
                    _ => v.push("BOGUS".into()),
                }
            }
            v
        }
        51 | 52 => {
            let mut v = vec!["XAUTOCLAIM".into(), k, g, c, "0".into(), id(rng)];
            if rng.gen_bool(0.5) {
                v.push("COUNT".into());
                v.push(n(rng));
            }
            if rng.gen_bool(0.3) {
                v.push("JUSTID".into());
            }
            v
        }
        53 => {
            let mut v = vec!["XSETID".into(), k, id(rng)];
            if rng.gen_bool(0.3) {
                v.push("ENTRIESADDED".into());
                v.push(pick(rng, &["0", "5", "100", "-1"]));
            }
            if rng.gen_bool(0.3) {
                v.push("MAXDELETEDID".into());
                v.push(id(rng));
            }
            v
        }
        54 => vec!["XINFO".into(), "STREAM".into(), k],
        55 => vec!["XINFO".into(), "GROUPS".into(), k],
        56 => vec!["XINFO".into(), pick(rng, &["HELP", "BAD", "STREAM"])],
        57 => vec!["SET".into(), k, "str".into()],
        58 => vec!["DEL".into(), k],
        _ => vec!["TYPE".into(), k],
    };
    v.into_iter().map(String::into_bytes).collect()
}

/// What Redis 7.0's own propagation carries of a stream: XREADGROUP and XCLAIM propagate as
/// `XCLAIM ... LASTID id`, which moves a group's last ID but not its entries-read counter, and a
/// consumer that XREADGROUP or XCLAIM created without giving it a pending entry is not
/// propagated at all. A replica or an AOF of redis-server 7.0.15 differs the same way.
fn propagated_view(v: &[Entry]) -> Vec<Entry> {
    let mut v = v.to_vec();
    for e in &mut v {
        if let MValue::Stream(s) = &mut e.value {
            for g in &mut s.groups {
                g.entries_read = 0;
                g.consumers.retain(|c| !c.pending.is_empty());
            }
        }
    }
    v
}

#[test]
fn streams_match_redis() {
    for seed in [41, 42, 43, 44] {
        let mut ms = 1u64;
        support::run_differential_with(seed, 3000, |rng| gen(rng, &mut ms), &[], propagated_view);
    }
}

/// The stream keys of a model keyspace, as they are (nodes not re-laid).
fn streams_of(entries: &[Entry]) -> Vec<(Vec<u8>, forkless_rdb::stream::Stream)> {
    entries
        .iter()
        .filter_map(|e| match &e.value {
            MValue::Stream(s) => Some((e.key.clone(), (**s).clone())),
            _ => None,
        })
        .collect::<std::collections::BTreeMap<_, _>>()
        .into_iter()
        .collect()
}

#[test]
fn rdb_nodes_equal_redis_and_redis_loads_ours() {
    let dir = TempDir::new("forkless-stream-rdb");
    let Some(redis) = RedisServer::start(dir.path(), &[]) else {
        return;
    };
    let ks = Keyspace::new(Config::seeded(5));
    let mut session = Session::default();
    let mut rng = StdRng::seed_from_u64(99);
    let mut run = |argv: Vec<String>| {
        let a: Vec<&[u8]> = argv.iter().map(|x| x.as_bytes()).collect();
        let theirs = redis.call(&a);
        let ours = support::to_resp(&ks.execute(&mut session, &a));
        assert_eq!(support::show(&ours), support::show(&theirs), "{argv:?}");
    };
    // Long streams (several nodes: the 100-entry and 4096-byte limits), deletions in the middle
    // and at node edges, exact and approximate trims, a group with pending entries.
    for k in 0..4 {
        let key = format!("big{k}");
        for i in 1..=450u64 {
            let nf = 1 + (i % 3) as usize;
            let mut v = vec![
                "XADD".to_string(),
                key.clone(),
                format!("{}-{}", i * 3, i % 4),
            ];
            for f in 0..nf {
                v.push(if k == 1 && i % 7 == 0 {
                    format!("x{f}")
                } else {
                    format!("f{f}")
                });
                v.push(if k == 2 {
                    "v".repeat((i % 90) as usize)
                } else {
                    format!("{}", i * 17)
                });
            }
            run(v);
        }
        for _ in 0..60 {
            run(vec![
                "XDEL".into(),
                key.clone(),
                format!("{}-{}", rng.gen_range(1..=450u64) * 3, rng.gen_range(0..4)),
            ]);
        }
    }
    run(vec![
        "XTRIM".into(),
        "big0".into(),
        "MAXLEN".into(),
        "333".into(),
    ]);
    run(vec![
        "XTRIM".into(),
        "big1".into(),
        "MAXLEN".into(),
        "~".into(),
        "120".into(),
    ]);
    run(vec![
        "XTRIM".into(),
        "big2".into(),
        "MINID".into(),
        "700".into(),
    ]);
    run(vec![
        "XTRIM".into(),
        "big3".into(),
        "MINID".into(),
        "~".into(),
        "700".into(),
    ]);
    run(vec![
        "XGROUP".into(),
        "CREATE".into(),
        "big0".into(),
        "g".into(),
        "0".into(),
    ]);
    run(vec![
        "XREADGROUP".into(),
        "GROUP".into(),
        "g".into(),
        "alice".into(),
        "COUNT".into(),
        "5".into(),
        "STREAMS".into(),
        "big0".into(),
        ">".into(),
    ]);
    run(vec![
        "XADD".into(),
        "empty".into(),
        "1-1".into(),
        "a".into(),
        "b".into(),
    ]);
    run(vec!["XDEL".into(), "empty".into(), "1-1".into()]);
    redis.call(&[b"SAVE"]);
    let theirs = forkless_rdb::read_all(std::io::BufReader::new(
        std::fs::File::open(dir.path().join("dump.rdb")).expect("redis dump.rdb"),
    ))
    .expect("our reader reads redis's RDB")
    .entries;
    // Our values as they are (the dump re-lays stream nodes: canonical form).
    let mut ours = ks.dump();
    let raw: Vec<Entry> = ours
        .iter()
        .map(|e| {
            let h = ks.hash_key(&e.key);
            let v = ks.with_shard(ks.shard_of(h), |sh| {
                sh.db(0)
                    .find(h, &e.key)
                    .map(|slot| forkless_keyspace::convert::to_model(&slot.value.get()))
            });
            Entry {
                value: v.expect("key"),
                ..e.clone()
            }
        })
        .collect();
    let (a, b) = (streams_of(&raw), streams_of(&theirs));
    assert_eq!((a.len(), b.len()), (5, 5));
    for ((ka, sa), (kb, sb)) in a.iter().zip(b.iter()) {
        assert_eq!(ka, kb);
        assert_eq!(
            sa.nodes.len(),
            sb.nodes.len(),
            "{}",
            String::from_utf8_lossy(ka)
        );
        for (na, nb) in sa.nodes.iter().zip(sb.nodes.iter()) {
            assert_eq!(na, nb, "node of {}", String::from_utf8_lossy(ka));
        }
        assert_eq!(
            (
                sa.length,
                sa.last_id,
                sa.first_id,
                sa.max_deleted_id,
                sa.entries_added
            ),
            (
                sb.length,
                sb.last_id,
                sb.first_id,
                sb.max_deleted_id,
                sb.entries_added
            )
        );
    }
    // Ours into redis-server: it loads, the checker agrees, the content is the same.
    let path = dir.path().join("ours.rdb");
    canonicalize(&mut ours);
    let f = std::fs::File::create(&path).expect("create");
    forkless_rdb::write_all(f, &ks.dump(), Default::default()).expect("write");
    if let Some(r) = redis_check_rdb(&path) {
        r.expect("redis-check-rdb accepts our RDB");
    }
    if let Some(loaded) = redis_load_rdb(&path) {
        let loaded = loaded.expect("redis-server loads our RDB");
        support::dumps_match(&loaded, &ours).expect("same keyspace");
    }
}

/// XINFO STREAM's `radix-tree-keys` and `radix-tree-nodes` (Redis's `rax->numele` and
/// `rax->numnodes`) after node-dropping deletions and trims, with keys that share long prefixes
/// and keys that branch at every byte: small nodes (`stream-node-max-entries` 1..5) make many
/// rax keys, and XINFO is compared with redis-server's after every command.
#[test]
fn xinfo_radix_counts_match_redis_after_deletions() {
    let dir = TempDir::new("forkless-stream-rax");
    let Some(redis) = RedisServer::start(dir.path(), &[]) else {
        return;
    };
    for seed in 0..6u64 {
        let mut rng = StdRng::seed_from_u64(seed);
        let per_node = [1, 2, 3, 5][seed as usize % 4];
        let ks = Keyspace::new(Config::seeded(seed));
        ks.set_stream_node_limits(4096, per_node);
        let mut session = Session::default();
        let max = per_node.to_string();
        redis.call(&[
            b"CONFIG",
            b"SET",
            b"stream-node-max-entries",
            max.as_bytes(),
        ]);
        redis.call(&[b"DEL", b"s"]);
        let mut ids: Vec<String> = Vec::new();
        let mut ms = 0u64;
        for step in 0..700 {
            let argv: Vec<String> = match rng.gen_range(0..20) {
                0..=10 => {
                    ms += *[1u64, 2, 7, 255, 256, 1000, 65536, 1 << 24, 1 << 40]
                        .choose(&mut rng)
                        .unwrap_or(&1);
                    let seq = *[0u64, 0, 1, 300, 1 << 33].choose(&mut rng).unwrap_or(&0);
                    ids.push(format!("{ms}-{seq}"));
                    vec![
                        "XADD".into(),
                        "s".into(),
                        format!("{ms}-{seq}"),
                        "f".into(),
                        "v".into(),
                    ]
                }
                11..=17 if !ids.is_empty() => {
                    let i = rng.gen_range(0..ids.len());
                    vec!["XDEL".into(), "s".into(), ids.swap_remove(i)]
                }
                18 => vec![
                    "XTRIM".into(),
                    "s".into(),
                    "MAXLEN".into(),
                    rng.gen_range(0..ids.len().max(1) + 5).to_string(),
                ],
                _ => vec![
                    "XTRIM".into(),
                    "s".into(),
                    "MINID".into(),
                    ms.saturating_sub(rng.gen_range(0..1u64 << 25)).to_string(),
                ],
            };
            for argv in [argv, vec!["XINFO".into(), "STREAM".into(), "s".into()]] {
                let a: Vec<&[u8]> = argv.iter().map(|x| x.as_bytes()).collect();
                let theirs = redis.call(&a);
                let ours = support::to_resp(&ks.execute(&mut session, &a));
                assert_eq!(
                    support::show(&ours),
                    support::show(&theirs),
                    "seed {seed} step {step}: {argv:?}"
                );
            }
        }
    }
    redis.call(&[b"CONFIG", b"SET", b"stream-node-max-entries", b"100"]);
}
