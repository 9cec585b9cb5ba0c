//! Oracle, byte level: a live redis-server 7.0.15 builds a pseudo-random dataset through ordinary
//! commands (RPUSH with element sizes around the 8 KiB node limit, HSET/ZADD/SADD around every
//! encoding threshold, strings that LZF does and does not shrink), saves it, and our writer must
//! reproduce every key of that dump byte for byte (see `write_compare`).

use crate::write_compare;

use forkless_rdb::EncodingLimits;
use forkless_testkit::{RedisServer, TempDir};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn bytes(&mut self, n: usize, alphabet: u8) -> Vec<u8> {
        (0..n)
            .map(|_| b'a' + (self.below(u64::from(alphabet)) as u8))
            .collect()
    }
    /// A value: canonical or non-canonical integer, short/long text, compressible or not.
    fn value(&mut self, max_len: usize) -> Vec<u8> {
        let len = 1 + self.below(max_len as u64) as usize;
        match self.below(6) {
            0 => (self.next() as i64 >> self.below(64))
                .to_string()
                .into_bytes(),
            1 => format!("0{}", self.below(1000)).into_bytes(),
            2 => self.bytes(len, 2),
            _ => self.bytes(len, 26),
        }
    }
}

fn cmd(parts: &[&[u8]]) -> Vec<Vec<u8>> {
    parts.iter().map(|p| p.to_vec()).collect()
}

/// Fill a live server, SAVE, and compare our rewrite of the dump with it, key by key.
fn check(seed: u64, config: &[&str], compression: bool, limits: EncodingLimits) {
    let dir = TempDir::new("forkless-oracle-bytes");
    let mut args = vec!["--dbfilename", "dump.rdb"];
    args.extend_from_slice(config);
    let Some(server) = RedisServer::start(dir.path(), &args) else {
        return;
    };
    let mut r = Rng(seed);
    let mut cmds = Vec::new();
    for i in 0..40 {
        let key = format!("list:{i}").into_bytes();
        let n = 1 + r.below(400);
        let big = i % 4 == 0;
        for _ in 0..n {
            let len = if big && r.below(10) == 0 {
                3000 + r.below(9000) as usize
            } else {
                120
            };
            cmds.push(cmd(&[b"RPUSH", &key, &r.value(len)]));
        }
    }
    for i in 0..30 {
        let key = format!("hash:{i}").into_bytes();
        let n = [1, 127, 128, 129, 511, 512, 513][i % 7] as u64;
        let long = i % 5 == 0;
        for j in 0..n {
            let v = r.value(if long { 70 } else { 64 });
            cmds.push(cmd(&[b"HSET", &key, format!("f{j}").as_bytes(), &v]));
        }
    }
    for i in 0..30 {
        let key = format!("zset:{i}").into_bytes();
        let n = [1, 127, 128, 129, 300][i % 5] as u64;
        for j in 0..n {
            let score = match r.below(5) {
                0 => (r.below(2000) as i64 - 1000).to_string(),
                1 => format!("{}", (r.next() as f64) / 3.0e15),
                2 => format!("{:e}", (r.next() as f64) * 1e200),
                3 => ["inf", "-inf", "-0", "0.1", "5e-324"][r.below(5) as usize].to_string(),
                _ => format!("{}.25", r.below(50)),
            };
            let mut m = r.value(if i % 4 == 0 { 66 } else { 60 });
            m.extend_from_slice(format!(":{j}").as_bytes());
            cmds.push(cmd(&[b"ZADD", &key, score.as_bytes(), &m]));
        }
    }
    for i in 0..20 {
        let key = format!("set:{i}").into_bytes();
        let n = [1, 511, 512, 513, 50][i % 5] as u64;
        let strings = i % 3 == 0;
        for j in 0..n {
            let m = if strings {
                format!("m{j}")
            } else {
                ((j as i64 - 200) * (1 << (i % 40))).to_string()
            };
            cmds.push(cmd(&[b"SADD", &key, m.as_bytes()]));
        }
    }
    for i in 0..300 {
        let len = [1, 11, 20, 21, 25, 64, 200, 5000][i % 8];
        let v = r.value(len);
        cmds.push(cmd(&[b"SET", format!("str:{i}").as_bytes(), &v]));
    }
    cmds.push(cmd(&[b"PEXPIREAT", b"str:1", b"4102444800000"]));
    cmds.push(cmd(&[b"SELECT", b"5"]));
    cmds.push(cmd(&[b"SET", b"db5", b"x"]));
    cmds.push(cmd(&[b"SELECT", b"0"]));
    for chunk in cmds.chunks(1000) {
        for reply in server.pipeline(chunk) {
            assert!(
                !matches!(reply, forkless_testkit::Reply::Error(_)),
                "{reply:?}"
            );
        }
    }
    server.call(&[b"SAVE"]);
    let (n, same, diffs) =
        write_compare::compare_rewrite(&dir.path().join("dump.rdb"), compression, true, limits);
    assert!(n > 400, "only {n} keys");
    assert!(
        diffs.is_empty(),
        "{} of {n} keys differ ({same} identical):\n{}",
        diffs.len(),
        diffs.join("\n")
    );
}

#[test]
fn live_dataset_rewrites_byte_identical() {
    check(0x9E37_79B9_7F4A_7C15, &[], true, EncodingLimits::default());
}

#[test]
fn live_dataset_with_other_limits_rewrites_byte_identical() {
    let limits = EncodingLimits {
        list_max_listpack_size: 5,
        set_max_intset_entries: 100,
        zset_max_listpack_entries: 16,
        zset_max_listpack_value: 10,
        hash_max_listpack_entries: 128,
        hash_max_listpack_value: 20,
    };
    let config = [
        "--list-max-listpack-size",
        "5",
        "--set-max-intset-entries",
        "100",
        "--zset-max-listpack-entries",
        "16",
        "--zset-max-listpack-value",
        "10",
        "--hash-max-listpack-entries",
        "128",
        "--hash-max-listpack-value",
        "20",
        "--rdbcompression",
        "no",
    ];
    check(12345, &config, false, limits);
    for fill in [-1i64, -5] {
        let limits = EncodingLimits {
            list_max_listpack_size: fill,
            ..EncodingLimits::default()
        };
        check(
            777 * fill.unsigned_abs(),
            &["--list-max-listpack-size", &fill.to_string()],
            true,
            limits,
        );
    }
}
