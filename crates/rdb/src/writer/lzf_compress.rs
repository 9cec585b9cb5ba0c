//! LZF compression with the exact choices of the `lzf_compress` Redis 7.0 ships (`lzf_c.c`,
//! liblzf 3.6 with Redis's `lzfP.h`: `HLOG 16`, `VERY_FAST 1`, `ULTRA_FAST 0`, hash slots as
//! 32-bit offsets), so the bytes we write equal what redis-server writes for the same string.
//!
//! Why not the `lzf` crate (used by [`crate::lzf`] for decompression): it ports another liblzf
//! revision (it refuses a match closer than 4 bytes to the end, its match-length loop differs for
//! 17-18 byte tails) and it always uses an output buffer as large as the input, while Redis asks
//! for `len - 4` bytes (`rdbSaveLzfStringObject`) and gives up on the conservative bound tests
//! that buffer implies. Both choices change which strings Redis stores compressed, and how.
//!
//! Format (Lehmann's): `000LLLLL` + L+1 literal bytes; `LLLooooo oooooooo` back-reference of
//! L+2 bytes at distance o+1; `111ooooo LLLLLLLL oooooooo` back-reference of L+9 bytes.
//!
//! One known difference: Redis does not clear its 64 Ki-slot hash table between calls
//! (`INIT_HTAB 0`), so a stale slot left by an earlier string can, rarely, offer a (valid)
//! match a fresh table would not. We behave as a freshly zeroed table does; a generation stamp
//! per slot gives that without clearing 512 KiB per call.

const HLOG: u32 = 16;
const HSIZE: usize = 1 << HLOG;
const MAX_LIT: usize = 1 << 5;
const MAX_OFF: usize = 1 << 13;
const MAX_REF: usize = (1 << 8) + (1 << 3);

/// A reusable LZF compressor (holds the 64 Ki-slot hash table).
pub struct LzfCompressor {
    /// `generation << 32 | offset`; a slot from another generation counts as empty.
    table: Vec<u64>,
    generation: u32,
}

impl Default for LzfCompressor {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for LzfCompressor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LzfCompressor(generation {})", self.generation)
    }
}

#[inline]
fn idx(h: u32) -> usize {
    ((h >> (3 * 8 - HLOG)).wrapping_sub(h.wrapping_mul(5)) as usize) & (HSIZE - 1)
}

impl LzfCompressor {
    /// A compressor with an empty table.
    pub fn new() -> Self {
        LzfCompressor {
            table: vec![0; HSIZE],
            generation: 0,
        }
    }

    /// What Redis's `rdbSaveLzfStringObject` does with `input`: LZF-compress it into at most
    /// `input.len() - 4` bytes. Returns the compressed bytes (in `out`, replacing its content)
    /// or `None` when Redis would store the string uncompressed. Strings of 4 bytes or less, or
    /// of 4 GiB or more, are never compressed.
    pub fn compress_for_rdb<'o>(&mut self, input: &[u8], out: &'o mut Vec<u8>) -> Option<&'o [u8]> {
        if input.len() <= 4 || input.len() >= u32::MAX as usize {
            return None;
        }
        let n = self.compress(input, input.len() - 4, out)?;
        Some(&out[..n])
    }

    /// liblzf's `lzf_compress(input, in_len, out, out_len)`: the compressed length, or `None`
    /// when the output does not fit in `out_len` bytes (by liblzf's own bound tests).
    /// `input` must be shorter than 4 GiB.
    pub fn compress(&mut self, input: &[u8], out_len: usize, out: &mut Vec<u8>) -> Option<usize> {
        let n = input.len();
        if n == 0 || out_len == 0 || n >= u32::MAX as usize {
            return None;
        }
        self.generation = self.generation.wrapping_add(1);
        if self.generation == 0 {
            self.table.iter_mut().for_each(|s| *s = 0);
            self.generation = 1;
        }
        let gen = u64::from(self.generation) << 32;
        out.clear();
        // One spare byte: the "start run" placeholder may sit at out_len before being undone.
        out.resize(out_len + 1, 0);

        let table = &mut self.table;
        let mut ip = 0usize;
        let mut op = 1usize; // start run
        let mut lit = 0usize;
        let byte = |i: usize| u32::from(input.get(i).copied().unwrap_or(0));
        let mut hval: u32 = (byte(0) << 8) | byte(1);

        while ip + 2 < n {
            hval = (hval << 8) | u32::from(input[ip + 2]);
            let slot = idx(hval);
            let entry = table[slot];
            table[slot] = gen | ip as u64;
            let r = if entry & !0xFFFF_FFFF == gen {
                (entry & 0xFFFF_FFFF) as usize
            } else {
                0
            };

            // `ref > in_data` (offset 0 doubles as "empty") and within the window.
            if r > 0
                && r < ip
                && ip - r - 1 < MAX_OFF
                && input[r + 2] == input[ip + 2]
                && input[r] == input[ip]
                && input[r + 1] == input[ip + 1]
            {
                let off = ip - r - 1;
                let mut len = 2usize;
                let maxlen = (n - ip - len).min(MAX_REF);

                let undo = usize::from(lit == 0);
                if op + 3 + 1 >= out_len && op - undo + 3 + 1 >= out_len {
                    return None;
                }
                out[op - lit - 1] = (lit as u8).wrapping_sub(1); // stop run
                op -= undo; // undo run if length is zero

                // Redis unrolls 16 comparisons when maxlen > 16 without re-checking maxlen,
                // which lets a match run up to 19 bytes even when maxlen is 17 or 18.
                let mut extend = true;
                if maxlen > 16 {
                    for _ in 0..16 {
                        len += 1;
                        if input[r + len] != input[ip + len] {
                            extend = false;
                            break;
                        }
                    }
                }
                if extend {
                    loop {
                        len += 1;
                        if !(len < maxlen && input[r + len] == input[ip + len]) {
                            break;
                        }
                    }
                }

                len -= 2; // len is now #octets - 1
                ip += 1;

                if len < 7 {
                    out[op] = (off >> 8) as u8 + ((len as u8) << 5);
                    op += 1;
                } else {
                    out[op] = (off >> 8) as u8 + (7 << 5);
                    out[op + 1] = (len - 7) as u8;
                    op += 2;
                }
                out[op] = off as u8;
                op += 1;

                lit = 0;
                op += 1; // start run

                ip += len + 1;
                if ip + 2 >= n {
                    break;
                }

                // VERY_FAST: hash the last two positions of the match.
                ip -= 2;
                hval = (u32::from(input[ip]) << 8) | u32::from(input[ip + 1]);
                hval = (hval << 8) | u32::from(input[ip + 2]);
                table[idx(hval)] = gen | ip as u64;
                ip += 1;
                hval = (hval << 8) | u32::from(input[ip + 2]);
                table[idx(hval)] = gen | ip as u64;
                ip += 1;
            } else {
                // one more literal byte we must copy
                if op >= out_len {
                    return None;
                }
                lit += 1;
                out[op] = input[ip];
                op += 1;
                ip += 1;
                if lit == MAX_LIT {
                    out[op - lit - 1] = (lit - 1) as u8; // stop run
                    lit = 0;
                    op += 1; // start run
                }
            }
        }

        if op + 3 > out_len {
            return None; // at most 3 bytes can be missing here
        }
        while ip < n {
            lit += 1;
            out[op] = input[ip];
            op += 1;
            ip += 1;
            if lit == MAX_LIT {
                out[op - lit - 1] = (lit - 1) as u8;
                lit = 0;
                op += 1;
            }
        }
        out[op - lit - 1] = (lit as u8).wrapping_sub(1); // end run
        op -= usize::from(lit == 0);
        out.truncate(op);
        Some(op)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn round_trip(data: &[u8]) {
        let mut c = LzfCompressor::new();
        let mut out = Vec::new();
        if let Some(n) = c.compress(data, data.len() + 64, &mut out) {
            assert_eq!(crate::lzf::decompress(&out[..n], data.len()).unwrap(), data);
        }
    }

    #[test]
    fn known_outputs() {
        let mut c = LzfCompressor::new();
        let mut out = Vec::new();
        // 21 x 'a': two literals (offset 0 counts as an empty slot), then a back-reference of
        // 19 bytes at distance 1: the unrolled loop overshoots maxlen (17) as Redis's does.
        let got = c
            .compress_for_rdb(&[b'a'; 21], &mut out)
            .map(<[u8]>::to_vec);
        assert_eq!(got, Some(vec![0x01, b'a', b'a', 0xE0, 10, 0x00]));
        assert_eq!(
            crate::lzf::decompress(got.as_deref().unwrap(), 21).unwrap(),
            vec![b'a'; 21]
        );
        // Random bytes do not shrink by 4.
        let noise: Vec<u8> = (0u32..100)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        assert!(c.compress_for_rdb(&noise, &mut out).is_none());
        assert!(c.compress_for_rdb(b"abcd", &mut out).is_none());
    }

    #[test]
    fn generations_do_not_leak() {
        let mut c = LzfCompressor::new();
        let mut a = Vec::new();
        let mut b = Vec::new();
        let text = b"hello hello hello world world world, hello world".repeat(3);
        let first = c.compress_for_rdb(&text, &mut a).map(<[u8]>::to_vec);
        let _ = c.compress_for_rdb(&b"zzzzzzzzzzzz hello world qqqqqqqqqqqq".repeat(5), &mut b);
        let again = c.compress_for_rdb(&text, &mut a).map(<[u8]>::to_vec);
        assert_eq!(first, again);
        assert!(first.is_some());
    }

    proptest! {
        #[test]
        fn compress_round_trips(data in proptest::collection::vec(prop_oneof![Just(b'a'), Just(b'b'), any::<u8>()], 0..3000)) {
            round_trip(&data);
            let mut c = LzfCompressor::new();
            let mut out = Vec::new();
            for cap in [1usize, 3, 7, data.len() / 2, data.len().saturating_sub(4)] {
                if let Some(n) = c.compress(&data, cap, &mut out) {
                    prop_assert!(n <= cap);
                    prop_assert_eq!(crate::lzf::decompress(&out[..n], data.len()).unwrap(), data.clone());
                }
            }
        }
    }
}
