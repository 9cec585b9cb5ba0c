//! Builds listpacks byte for byte as Redis 7.0's `lpAppend` / `lpAppendInteger` would
//! (`listpack.c`: `lpInsert`, `lpEncodeGetType`, `lpEncodeIntegerGetType`, `lpEncodeString`,
//! `lpEncodeBacklen`), so redis-server adopts the blobs we write as they are.
//!
//! ```text
//! +-------------+-------------+---------+---------+-----+------+
//! | total bytes | num entries | entry 1 | entry 2 | ... | 0xFF |
//! |  u32 LE     |  u16 LE     |         |         |     |      |
//! +-------------+-------------+---------+---------+-----+------+
//! num entries saturates at 65535 ("unknown": count by walking).
//!
//! entry = encoding+data, then backlen (size of encoding+data, 1..5 bytes, big-endian 7-bit
//!         groups, the high bit set on every byte but the first)
//! 0xxxxxxx                     7-bit unsigned integer 0..127
//! 10llllll <data>              string, length < 64
//! 110xxxxx xxxxxxxx            13-bit signed integer (two's complement, high bits first)
//! 1110llll llllllll <data>     string, length < 4096
//! 11110000 <u32 LE len> <data> string, longer
//! 11110001 <i16 LE>  11110010 <i24 LE>  11110011 <i32 LE>  11110100 <i64 LE>
//! ```
//! A string element is stored as an integer whenever it is the canonical decimal text of an i64
//! ([`parse_canonical_i64`], Redis's `lpStringToInt64`), with the smallest encoding that fits.

use super::number::parse_canonical_i64;
use crate::error::{RdbError, Result};

const HDR_SIZE: usize = 6;
const EOF: u8 = 0xFF;
const NUMELE_UNKNOWN: u32 = 65535;

/// An append-only listpack under construction; reusable with [`ListpackBuilder::clear`].
#[derive(Debug, Clone)]
pub struct ListpackBuilder {
    buf: Vec<u8>,
    count: u32,
}

impl Default for ListpackBuilder {
    fn default() -> Self {
        Self::new()
    }
}

/// The encoding-and-data part of one entry (without backlen), in a small stack buffer for
/// integers or borrowed for strings.
enum Encoded<'a> {
    Int([u8; 9], usize),
    Str(&'a [u8]),
}

impl Encoded<'_> {
    fn len(&self) -> usize {
        match self {
            Encoded::Int(_, n) => *n,
            Encoded::Str(s) => string_header_len(s.len()) + s.len(),
        }
    }
}

fn string_header_len(len: usize) -> usize {
    if len < 64 {
        1
    } else if len < 4096 {
        2
    } else {
        5
    }
}

/// `lpEncodeIntegerGetType`.
fn encode_int(v: i64) -> ([u8; 9], usize) {
    let mut b = [0u8; 9];
    let n = if (0..=127).contains(&v) {
        b[0] = v as u8;
        1
    } else if (-4096..=4095).contains(&v) {
        let u = (v as u64) & 0x1FFF;
        b[0] = 0xC0 | (u >> 8) as u8;
        b[1] = u as u8;
        2
    } else if (-32768..=32767).contains(&v) {
        b[0] = 0xF1;
        b[1..3].copy_from_slice(&(v as i16).to_le_bytes());
        3
    } else if (-8_388_608..=8_388_607).contains(&v) {
        b[0] = 0xF2;
        b[1..4].copy_from_slice(&(v as i32).to_le_bytes()[..3]);
        4
    } else if (-2_147_483_648..=2_147_483_647).contains(&v) {
        b[0] = 0xF3;
        b[1..5].copy_from_slice(&(v as i32).to_le_bytes());
        5
    } else {
        b[0] = 0xF4;
        b[1..9].copy_from_slice(&v.to_le_bytes());
        9
    };
    (b, n)
}

fn encode(ele: &[u8]) -> Encoded<'_> {
    match parse_canonical_i64(ele) {
        Some(v) => {
            let (b, n) = encode_int(v);
            Encoded::Int(b, n)
        }
        None => Encoded::Str(ele),
    }
}

/// Size of the backlen that follows an entry of `l` bytes (`lpEncodeBacklen`, including its
/// off-by-one bounds `< 16383`, `< 2097151`, `< 268435455`).
fn backlen_size(l: usize) -> usize {
    if l <= 127 {
        1
    } else if l < 16383 {
        2
    } else if l < 2_097_151 {
        3
    } else if l < 268_435_455 {
        4
    } else {
        5
    }
}

fn push_backlen(out: &mut Vec<u8>, l: usize) {
    let l = l as u64;
    match backlen_size(l as usize) {
        1 => out.push(l as u8),
        2 => out.extend_from_slice(&[(l >> 7) as u8, (l & 127) as u8 | 128]),
        3 => out.extend_from_slice(&[
            (l >> 14) as u8,
            ((l >> 7) & 127) as u8 | 128,
            (l & 127) as u8 | 128,
        ]),
        4 => out.extend_from_slice(&[
            (l >> 21) as u8,
            ((l >> 14) & 127) as u8 | 128,
            ((l >> 7) & 127) as u8 | 128,
            (l & 127) as u8 | 128,
        ]),
        _ => out.extend_from_slice(&[
            (l >> 28) as u8,
            ((l >> 21) & 127) as u8 | 128,
            ((l >> 14) & 127) as u8 | 128,
            ((l >> 7) & 127) as u8 | 128,
            (l & 127) as u8 | 128,
        ]),
    }
}

impl ListpackBuilder {
    /// An empty listpack (`lpNew`).
    pub fn new() -> Self {
        let mut buf = Vec::with_capacity(64);
        buf.resize(HDR_SIZE, 0);
        ListpackBuilder { buf, count: 0 }
    }

    /// Forget all entries, keeping the allocation.
    pub fn clear(&mut self) {
        self.buf.clear();
        self.buf.resize(HDR_SIZE, 0);
        self.count = 0;
    }

    /// Bytes one element adds to a listpack (encoding, data and backlen), as `lpAppend` computes.
    pub fn entry_size(ele: &[u8]) -> usize {
        let n = encode(ele).len();
        n + backlen_size(n)
    }

    /// Bytes one integer element adds (`lpAppendInteger`).
    pub fn int_entry_size(v: i64) -> usize {
        let n = encode_int(v).1;
        n + backlen_size(n)
    }

    /// `lpAppend`: a string element (stored as an integer when it is a canonical integer).
    pub fn push(&mut self, ele: &[u8]) {
        match encode(ele) {
            Encoded::Int(b, n) => self.push_encoded(&b[..n], n),
            Encoded::Str(s) => {
                let len = s.len();
                if len < 64 {
                    self.buf.push(0x80 | len as u8);
                } else if len < 4096 {
                    self.buf.push(0xE0 | (len >> 8) as u8);
                    self.buf.push(len as u8);
                } else {
                    self.buf.push(0xF0);
                    self.buf.extend_from_slice(&(len as u32).to_le_bytes());
                }
                self.buf.extend_from_slice(s);
                push_backlen(&mut self.buf, string_header_len(len) + len);
                self.count += 1;
            }
        }
    }

    /// `lpAppendInteger`.
    pub fn push_int(&mut self, v: i64) {
        let (b, n) = encode_int(v);
        self.push_encoded(&b[..n], n);
    }

    fn push_encoded(&mut self, bytes: &[u8], n: usize) {
        self.buf.extend_from_slice(bytes);
        push_backlen(&mut self.buf, n);
        self.count += 1;
    }

    /// Number of elements appended.
    pub fn len(&self) -> u32 {
        self.count
    }

    /// True when nothing was appended.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Size in bytes the finished listpack has (header, entries, terminator): Redis's `lpBytes`.
    pub fn total_bytes(&self) -> usize {
        self.buf.len() + 1
    }

    /// Terminate the listpack and return its bytes. Fails when it would exceed the 4 GiB a
    /// listpack can address. The builder must be [`clear`](Self::clear)ed before reuse.
    pub fn finish(&mut self) -> Result<&[u8]> {
        let total = self.total_bytes();
        let total32 = u32::try_from(total).map_err(|_| {
            RdbError::InvalidInput(format!("listpack of {total} bytes exceeds 4 GiB"))
        })?;
        self.buf.push(EOF);
        self.buf[0..4].copy_from_slice(&total32.to_le_bytes());
        let count = self.count.min(NUMELE_UNKNOWN) as u16;
        self.buf[4..6].copy_from_slice(&count.to_le_bytes());
        Ok(&self.buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lp(items: &[&[u8]]) -> Vec<u8> {
        let mut b = ListpackBuilder::new();
        for i in items {
            b.push(i);
        }
        b.finish().unwrap().to_vec()
    }

    #[test]
    fn empty_and_small() {
        assert_eq!(lp(&[]), vec![7, 0, 0, 0, 0, 0, 0xFF]);
        // "a" -> 0x81 'a' backlen 2 ; "1" -> 0x01 backlen 1
        assert_eq!(
            lp(&[b"a", b"1"]),
            vec![12, 0, 0, 0, 2, 0, 0x81, b'a', 2, 0x01, 1, 0xFF]
        );
    }

    #[test]
    fn integer_encodings() {
        let cases: &[(i64, &[u8])] = &[
            (127, &[0x7F]),
            (128, &[0xC0, 0x80]),
            (-1, &[0xDF, 0xFF]),
            (-4096, &[0xD0, 0x00]),
            (4095, &[0xCF, 0xFF]),
            (4096, &[0xF1, 0x00, 0x10]),
            (-32768, &[0xF1, 0x00, 0x80]),
            (32768, &[0xF2, 0x00, 0x80, 0x00]),
            (-8_388_608, &[0xF2, 0x00, 0x00, 0x80]),
            (8_388_608, &[0xF3, 0x00, 0x00, 0x80, 0x00]),
            (i64::from(i32::MIN), &[0xF3, 0x00, 0x00, 0x00, 0x80]),
            (i64::MIN, &[0xF4, 0, 0, 0, 0, 0, 0, 0, 0x80]),
        ];
        for (v, enc) in cases {
            let mut b = ListpackBuilder::new();
            b.push(v.to_string().as_bytes());
            let bytes = b.finish().unwrap();
            assert_eq!(&bytes[6..6 + enc.len()], *enc, "{v}");
            assert_eq!(bytes[6 + enc.len()] as usize, enc.len(), "backlen of {v}");
            let mut c = ListpackBuilder::new();
            c.push_int(*v);
            assert_eq!(c.finish().unwrap(), bytes);
        }
    }

    #[test]
    fn string_headers_and_backlens() {
        let s64 = vec![b'x'; 64];
        let bytes = lp(&[&s64]);
        assert_eq!(&bytes[6..8], &[0xE0, 64]);
        // backlen of 66 bytes: one byte
        assert_eq!(bytes[6 + 66], 66);
        let s200 = vec![b'y'; 200];
        let bytes = lp(&[&s200]);
        // 202 bytes of entry -> backlen [1, 0x80|74]
        assert_eq!(&bytes[6 + 202..6 + 204], &[1, 128 | (202 & 127) as u8]);
        let s5000 = vec![b'z'; 5000];
        let bytes = lp(&[&s5000]);
        assert_eq!(&bytes[6..11], &[0xF0, 0x88, 0x13, 0, 0]);
        assert_eq!(bytes.len(), 6 + 5005 + 2 + 1);
        assert_eq!(ListpackBuilder::entry_size(&s5000), 5007);
        assert_eq!(ListpackBuilder::entry_size(b"007"), 5);
        assert_eq!(ListpackBuilder::entry_size(b"-0"), 4);
        assert_eq!(backlen_size(16382), 2);
        assert_eq!(backlen_size(16383), 3);
    }

    #[test]
    fn count_saturates() {
        let mut b = ListpackBuilder::new();
        for _ in 0..70000 {
            b.push(b"1");
        }
        let bytes = b.finish().unwrap();
        assert_eq!(&bytes[4..6], &[0xFF, 0xFF]);
        assert_eq!(bytes.len(), 6 + 140000 + 1);
    }
}
