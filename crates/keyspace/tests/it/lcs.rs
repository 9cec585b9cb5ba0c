//! LCS against redis-server 7.0.15: random strings over a small alphabet (so matches and ranges
//! are frequent), every option combination, replies compared (`support::run_differential`).

use crate::support;

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::Rng;

fn gen(rng: &mut StdRng) -> Vec<Vec<u8>> {
    let k = ["a", "b", "l", "none"].choose(rng).unwrap().to_string();
    let c: Vec<String> = match rng.gen_range(0..6) {
        0 | 1 => {
            let len = rng.gen_range(0..14);
            let s: String = (0..len)
                .map(|_| *b"ACGT".choose(rng).unwrap() as char)
                .collect();
            vec!["SET".into(), ["a", "b"].choose(rng).unwrap().to_string(), s]
        }
        2 => vec!["RPUSH".into(), "l".into(), "x".into()],
        _ => {
            let mut c = vec![
                "LCS".into(),
                k,
                ["a", "b", "none"].choose(rng).unwrap().to_string(),
            ];
            for opt in ["IDX", "LEN", "WITHMATCHLEN", "MINMATCHLEN", "BOGUS"] {
                if rng.gen_bool(if opt == "BOGUS" { 0.03 } else { 0.35 }) {
                    c.push(opt.into());
                    if opt == "MINMATCHLEN" {
                        c.push(
                            ["0", "1", "2", "3", "-1", "x"]
                                .choose(rng)
                                .unwrap()
                                .to_string(),
                        );
                    }
                }
            }
            c
        }
    };
    c.into_iter().map(String::into_bytes).collect()
}

#[test]
fn lcs_matches_redis() {
    for seed in [21, 22, 23] {
        support::run_differential(seed, 2000, gen, &[]);
    }
}
