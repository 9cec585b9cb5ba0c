//! The dataset and the write load, as command argument lists, so the same bytes go to the
//! forkless keyspace (`Keyspace::execute`) and to redis-server (RESP over loopback).
//!
//! Dataset: keys `key:<i>`; either all strings of `value_size` bytes (the shape of Redis's
//! `DEBUG POPULATE`), or mixed types by `i % 5`: string, list, set, sorted set, hash, each
//! collection holding 4 elements of `value_size / 4` bytes.
//!
//! Writes: uniformly random among `SET key:<r> <value>` (on a string key of the dataset),
//! `INCR ctr:<r % 65536>` and `HSET hw:<r % 65536> f<r % 16> <16 bytes>`. Random numbers come
//! from SplitMix64 (Steele, Lea, Flood 2014), seeded per writer.

/// SplitMix64: a tiny, fast, well-mixed generator (enough for picking keys).
#[derive(Clone, Debug)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator from `seed`.
    pub fn new(seed: u64) -> SplitMix64 {
        SplitMix64(seed)
    }
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// Shape of the dataset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dataset {
    /// Number of keys.
    pub keys: u64,
    /// Bytes per string value (collections: per 4 elements).
    pub value_size: usize,
    /// Mixed types (string, list, set, zset, hash) instead of strings only.
    pub mixed: bool,
}

fn filler(i: u64, len: usize) -> Vec<u8> {
    let mut v = format!("v{i}:").into_bytes();
    v.resize(len.max(v.len()), b'x');
    v
}

impl Dataset {
    /// The command that creates key number `i`.
    pub fn command(&self, i: u64) -> Vec<Vec<u8>> {
        let key = format!("key:{i}").into_bytes();
        let kind = if self.mixed { i % 5 } else { 0 };
        let el = (self.value_size / 4).max(1);
        let elems = |tag: &'static str| {
            (0..4u64).map(move |j| {
                filler(i * 4 + j, el)
                    .into_iter()
                    .chain(tag.bytes())
                    .collect::<Vec<u8>>()
            })
        };
        let mut argv: Vec<Vec<u8>> = Vec::with_capacity(10);
        match kind {
            0 => {
                argv.push(b"SET".to_vec());
                argv.push(key);
                argv.push(filler(i, self.value_size));
            }
            1 => {
                argv.push(b"RPUSH".to_vec());
                argv.push(key);
                argv.extend(elems("l"));
            }
            2 => {
                argv.push(b"SADD".to_vec());
                argv.push(key);
                argv.extend(elems("s"));
            }
            3 => {
                argv.push(b"ZADD".to_vec());
                argv.push(key);
                for (j, m) in elems("z").enumerate() {
                    argv.push(format!("{}.5", i as usize + j).into_bytes());
                    argv.push(m);
                }
            }
            _ => {
                argv.push(b"HSET".to_vec());
                argv.push(key);
                for (j, m) in elems("h").enumerate() {
                    argv.push(format!("f{j}").into_bytes());
                    argv.push(m);
                }
            }
        }
        argv
    }

    /// Number of the string key nearest below `r` (every key when not mixed).
    fn string_key(&self, r: u64) -> u64 {
        let k = r % self.keys.max(1);
        if self.mixed {
            k - k % 5
        } else {
            k
        }
    }
}

/// Produces the random writes of one writer thread.
#[derive(Debug)]
pub struct WriteGen {
    rng: SplitMix64,
    dataset: Dataset,
    value: Vec<u8>,
    key: Vec<u8>,
    aux: Vec<u8>,
    field: Vec<u8>,
}

/// One write produced by [`WriteGen::next_write`].
#[derive(Clone, Copy, Debug)]
pub struct Write<'a> {
    /// Which command.
    pub kind: WriteKind,
    args: [&'a [u8]; 4],
    n: usize,
}

impl<'a> Write<'a> {
    /// The command's arguments.
    pub fn argv(&self) -> &[&'a [u8]] {
        &self.args[..self.n]
    }
}

/// Which write [`WriteGen::next_write`] produced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteKind {
    /// `SET key:<r> <value>`.
    Set,
    /// `INCR ctr:<n>`.
    Incr,
    /// `HSET hw:<n> f<m> <16 bytes>`.
    Hset,
}

impl WriteGen {
    /// The generator of writer number `writer`.
    pub fn new(dataset: Dataset, writer: u64) -> WriteGen {
        WriteGen {
            rng: SplitMix64::new(0x5EED ^ writer.wrapping_mul(0x1000_0000_01B3)),
            dataset,
            value: filler(writer, dataset.value_size),
            key: Vec::with_capacity(32),
            aux: Vec::with_capacity(32),
            field: Vec::with_capacity(8),
        }
    }

    /// The next write (its arguments borrow this generator's buffers).
    pub fn next_write(&mut self) -> Write<'_> {
        use std::io::Write as _;
        let r = self.rng.next_u64();
        let kind = match r % 3 {
            0 => WriteKind::Set,
            1 => WriteKind::Incr,
            _ => WriteKind::Hset,
        };
        let r = r >> 8;
        self.key.clear();
        match kind {
            WriteKind::Set => {
                let _ = write!(self.key, "key:{}", self.dataset.string_key(r));
                let n = self.value.len().min(8);
                self.value[..n].copy_from_slice(&r.to_le_bytes()[..n]);
                for b in &mut self.value[..n] {
                    *b = b'a' + (*b % 26);
                }
                Write {
                    kind,
                    args: [b"SET", &self.key, &self.value, b""],
                    n: 3,
                }
            }
            WriteKind::Incr => {
                let _ = write!(self.key, "ctr:{}", r % 65536);
                Write {
                    kind,
                    args: [b"INCR", &self.key, b"", b""],
                    n: 2,
                }
            }
            WriteKind::Hset => {
                let _ = write!(self.key, "hw:{}", r % 65536);
                self.field.clear();
                let _ = write!(self.field, "f{}", (r >> 16) % 16);
                self.aux.clear();
                let _ = write!(self.aux, "{:016}", r % 10_000_000_000_000_000);
                Write {
                    kind,
                    args: [b"HSET", &self.key, &self.field, &self.aux],
                    n: 4,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use forkless_keyspace::{Config, Keyspace, Session};

    #[test]
    fn dataset_and_writes_execute_cleanly() {
        let ks = Keyspace::new(Config::seeded(3));
        let d = Dataset {
            keys: 50,
            value_size: 100,
            mixed: true,
        };
        let mut s = Session::default();
        for i in 0..d.keys {
            let argv = d.command(i);
            let refs: Vec<&[u8]> = argv.iter().map(|a| a.as_slice()).collect();
            assert!(!ks.execute(&mut s, &refs).is_error(), "{i}");
        }
        assert_eq!(ks.dbsize(0), 50);
        let mut g = WriteGen::new(d, 1);
        let mut kinds = [0; 3];
        for _ in 0..300 {
            let w = g.next_write();
            kinds[w.kind as usize] += 1;
            let r = ks.execute(&mut s, w.argv());
            assert!(!r.is_error(), "{r:?}");
        }
        assert!(kinds.iter().all(|&n| n > 50), "{kinds:?}");
        // SET only ever hits string keys of the dataset: the collections keep their types.
        let dump = ks.dump();
        let lists = dump
            .iter()
            .filter(|e| matches!(e.value, forkless_rdb::Value::List(_)))
            .count();
        assert_eq!(lists, 10);
    }
}
