//! Damaged input never panics: random mutations of a real AOF directory and of manifests give
//! either a load (possibly truncated) or an error naming what and where.

use std::path::Path;

use forkless_aof::{
    check_dir, load_dir, AofError, CheckOptions, KeyspaceTarget, LoadOptions, Manifest,
};
use forkless_keyspace::{Config, Keyspace};
use forkless_testkit::{fixture, TempDir};
use rand::{Rng, SeedableRng};

fn mutate(rng: &mut impl Rng, b: &mut Vec<u8>) {
    match rng.gen_range(0..4) {
        0 if !b.is_empty() => {
            let i = rng.gen_range(0..b.len());
            b[i] = rng.gen();
        }
        1 => {
            let n = rng.gen_range(0..=b.len());
            b.truncate(n);
        }
        2 => {
            let i = rng.gen_range(0..=b.len());
            let junk: Vec<u8> = (0..rng.gen_range(1..8))
                .map(|_| {
                    *b"*$#\r\n0123456789-x"
                        .get(rng.gen_range(0..17))
                        .unwrap_or(&0)
                })
                .collect();
            b.splice(i..i, junk);
        }
        _ if !b.is_empty() => {
            let i = rng.gen_range(0..b.len());
            b[i] = b"*$#\r\n09-"[rng.gen_range(0..8)];
        }
        _ => {}
    }
}

#[test]
fn mutated_aof_files_load_or_fail_cleanly() {
    let src = fixture("aof/multipart");
    let names = ["appendonly.aof.2.base.rdb", "appendonly.aof.2.incr.aof"];
    let originals: Vec<Vec<u8>> = names
        .iter()
        .map(|n| std::fs::read(src.join(n)).unwrap())
        .collect();
    let manifest = std::fs::read(src.join("appendonly.aof.manifest")).unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(2024);
    let tmp = TempDir::new("aof-fuzz");
    let dir = tmp.path();
    std::fs::write(dir.join("appendonly.aof.manifest"), &manifest).unwrap();
    let (mut ok, mut err) = (0, 0);
    for _ in 0..300 {
        let which = rng.gen_range(0..2);
        for (i, n) in names.iter().enumerate() {
            let mut b = originals[i].clone();
            if i == which {
                for _ in 0..rng.gen_range(1..4) {
                    mutate(&mut rng, &mut b);
                }
            }
            std::fs::write(dir.join(n), &b).unwrap();
        }
        let ks = Keyspace::new(Config::seeded(1));
        match load_dir(dir, &LoadOptions::default(), &mut KeyspaceTarget::new(&ks)) {
            Ok(_) => ok += 1,
            Err(e) => {
                err += 1;
                let text = e.to_string();
                assert!(
                    text.contains("appendonly.aof.2."),
                    "error does not name the file: {text}"
                );
            }
        }
        let _ = check_dir(dir, &CheckOptions::default());
    }
    assert!(ok > 0 && err > 0, "ok {ok}, err {err}");
}

#[test]
fn random_manifests_parse_or_fail_with_a_line_number() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let base = b"file appendonly.aof.1.base.rdb seq 1 type b\nfile \"a b\" seq 2 type h\nfile appendonly.aof.1.incr.aof seq 1 type i\n".to_vec();
    for _ in 0..2000 {
        let mut b = base.clone();
        for _ in 0..rng.gen_range(1..4) {
            mutate(&mut rng, &mut b);
        }
        match Manifest::parse(&b) {
            Ok(m) => {
                // What parses survives a write and a re-parse unchanged.
                assert_eq!(Manifest::parse(&m.to_bytes()).unwrap_or_default(), m);
            }
            Err(AofError::Manifest { .. }) => {}
            Err(e) => panic!("unexpected error kind: {e}"),
        }
    }
}

#[test]
fn missing_manifest_is_a_clear_error() {
    let tmp = TempDir::new("aof-none");
    let ks = Keyspace::new(Config::seeded(1));
    let e = load_dir(
        Path::new(tmp.path()),
        &LoadOptions::default(),
        &mut KeyspaceTarget::new(&ks),
    )
    .unwrap_err();
    assert!(e.to_string().contains("appendonly.aof.manifest"), "{e}");
}
