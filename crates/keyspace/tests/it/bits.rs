//! SETBIT, GETBIT, BITCOUNT, BITPOS, BITOP, BITFIELD, BITFIELD_RO (and SUBSTR, TOUCH) against
//! redis-server 7.0.15:
//! random commands over a few keys (strings of random bits, other types colliding), replies,
//! final dumps and the replay of the propagated stream compared (`support::run_differential`).

use crate::support;

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::Rng;

const KEYS: &[&str] = &["a", "b", "c", "l"];

fn int(rng: &mut StdRng) -> String {
    match rng.gen_range(0..10) {
        0 => ["x", "", "-0", "99999999999999999999"]
            .choose(rng)
            .unwrap()
            .to_string(),
        1 => rng.gen_range(-40i64..0).to_string(),
        2 => ["9223372036854775807", "-9223372036854775808", "4294967296"]
            .choose(rng)
            .unwrap()
            .to_string(),
        _ => rng.gen_range(0i64..200).to_string(),
    }
}

fn range(rng: &mut StdRng, c: &mut Vec<String>) {
    if rng.gen_bool(0.7) {
        c.push(rng.gen_range(-30i64..30).to_string());
        c.push(rng.gen_range(-30i64..30).to_string());
        if rng.gen_bool(0.5) {
            c.push(
                ["BIT", "BYTE", "bit", "nope"]
                    .choose(rng)
                    .unwrap()
                    .to_string(),
            );
        }
    }
}

fn gen(rng: &mut StdRng) -> Vec<Vec<u8>> {
    let k = KEYS.choose(rng).unwrap().to_string();
    let mut c: Vec<String> = match rng.gen_range(0..14) {
        0..=2 => vec![
            "SETBIT".into(),
            k,
            if rng.gen_bool(0.9) {
                rng.gen_range(0..120).to_string()
            } else {
                int(rng)
            },
            ["0", "1", "1", "2", "x"].choose(rng).unwrap().to_string(),
        ],
        3 => vec!["GETBIT".into(), k, int(rng)],
        4 | 5 => {
            let mut c = vec!["BITCOUNT".into(), k];
            range(rng, &mut c);
            c
        }
        6 | 7 => {
            let mut c = vec![
                "BITPOS".into(),
                k,
                ["0", "1", "1", "0", "2"].choose(rng).unwrap().to_string(),
            ];
            match rng.gen_range(0..4) {
                0 => {}
                1 => c.push(rng.gen_range(-30i64..30).to_string()),
                _ => range(rng, &mut c),
            }
            c
        }
        8 => {
            let op = ["AND", "OR", "XOR", "NOT", "and", "bad"]
                .choose(rng)
                .unwrap()
                .to_string();
            let mut c = vec!["BITOP".into(), op, KEYS.choose(rng).unwrap().to_string()];
            for _ in 0..rng.gen_range(1..4) {
                c.push(KEYS.choose(rng).unwrap().to_string());
            }
            c
        }
        9..=11 => {
            let ro = rng.gen_bool(0.2);
            let mut c = vec![if ro { "BITFIELD_RO" } else { "BITFIELD" }.to_string(), k];
            for _ in 0..rng.gen_range(1..4) {
                let ty = [
                    "u8", "i8", "u1", "i1", "u63", "i64", "i16", "u4", "i5", "u64", "x8",
                ]
                .choose(rng)
                .unwrap()
                .to_string();
                let off = if rng.gen_bool(0.3) {
                    format!("#{}", rng.gen_range(0..8))
                } else {
                    rng.gen_range(0..90).to_string()
                };
                match rng.gen_range(0..5) {
                    0 | 1 => c.extend(["GET".into(), ty, off]),
                    2 => c.extend(["SET".into(), ty, off, int(rng)]),
                    3 => c.extend(["INCRBY".into(), ty, off, int(rng)]),
                    _ => c.extend([
                        "OVERFLOW".into(),
                        ["WRAP", "SAT", "FAIL", "sat", "bad"]
                            .choose(rng)
                            .unwrap()
                            .to_string(),
                    ]),
                }
            }
            c
        }
        12 => vec![
            "SET".into(),
            k,
            ["hello", "", "\u{ff}\u{0}", "12345"]
                .choose(rng)
                .unwrap()
                .to_string(),
        ],
        // Neighbours on strings: SUBSTR (GETRANGE's old name) and TOUCH.
        13 => match rng.gen_range(0..3) {
            0 => vec!["RPUSH".into(), "l".into(), "x".into()],
            1 => vec![
                "SUBSTR".into(),
                k,
                rng.gen_range(-5i64..5).to_string(),
                rng.gen_range(-5i64..5).to_string(),
            ],
            _ => vec![
                "TOUCH".into(),
                k,
                KEYS.choose(rng).unwrap().to_string(),
                "nokey".into(),
            ],
        },
        _ => unreachable!(),
    };
    if rng.gen_bool(0.01) {
        c.pop();
    }
    c.into_iter().map(String::into_bytes).collect()
}

#[test]
fn bit_commands_match_redis() {
    for seed in [11, 12, 13, 14] {
        support::run_differential(seed, 3000, gen, &[]);
    }
}
