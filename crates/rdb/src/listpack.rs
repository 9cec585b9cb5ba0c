//! Listpack: parse and deep-validate the compact list blob Redis 7 stores for small hashes, zsets,
//! sets and quicklist nodes, so a corrupt blob is refused before any of it is trusted.
//!
//! Format (Redis `src/listpack.c`, `lpValidateIntegrity` / `lpValidateNext`, 7.0.15), all header
//! fields **little-endian**:
//!
//! ```text
//! +-------------+-------------+---------+---------+-----+------+
//! | total bytes | num elements| entry 0 | entry 1 | ... | 0xFF |
//! |   u32 LE    | u16 LE      |         |         |     | EOF  |
//! +-------------+-------------+---------+---------+-----+------+
//! entry = <encoding + data> <backlen: 1..5 bytes, 7 bits each, read right to left>
//! ```
//!
//! Encodings (first byte): `0xxxxxxx` 7-bit uint; `10xxxxxx` string of up to 63 bytes;
//! `110xxxxx yyyyyyyy` 13-bit signed int; `1110xxxx yyyyyyyy` string of up to 4095 bytes;
//! `0xF0` + u32 LE length string; `0xF1`/`0xF2`/`0xF3`/`0xF4` 16/24/32/64-bit signed int (LE);
//! `0xF5..=0xFE` invalid; `0xFF` end. The backlen holds the size of encoding + data.
//!
//! Checks, as Redis's deep validation: header total == blob length, last byte 0xFF, every entry
//! inside the blob with a backlen matching its size, the walk ending exactly on the terminator, and
//! the element count equal to the header's (unless the header says 65535, "unknown").

use std::fmt;

/// Size of the listpack header (total bytes u32 + element count u16).
pub const HEADER_SIZE: usize = 6;
/// Terminator byte.
pub const EOF: u8 = 0xFF;
/// Header element count meaning "too many to count, walk the entries".
pub const NUMELE_UNKNOWN: u16 = u16::MAX;

/// Why a nested blob (listpack, ziplist, intset, zipmap) was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobError {
    /// Byte position inside the (decompressed) blob where the problem was found.
    pub pos: usize,
    /// What is wrong.
    pub what: String,
}

impl BlobError {
    /// A new error at `pos`.
    pub fn new(pos: usize, what: impl Into<String>) -> Self {
        BlobError {
            pos,
            what: what.into(),
        }
    }
}

impl fmt::Display for BlobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (at byte {} of the blob)", self.what, self.pos)
    }
}

impl std::error::Error for BlobError {}

/// One element of a listpack or ziplist: a byte string or an integer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Elem<'a> {
    /// A string, borrowed from the blob.
    Str(&'a [u8]),
    /// An integer-encoded element.
    Int(i64),
}

impl Elem<'_> {
    /// The element as bytes: strings as they are, integers as decimal text (as Redis returns
    /// them).
    pub fn to_bytes(&self) -> Vec<u8> {
        match self {
            Elem::Str(s) => s.to_vec(),
            Elem::Int(i) => i.to_string().into_bytes(),
        }
    }

    /// Whether two elements denote the same Redis string (an integer equals its decimal text).
    pub fn same_as(&self, other: &Elem<'_>) -> bool {
        match (self, other) {
            (Elem::Str(a), Elem::Str(b)) => a == b,
            (Elem::Int(a), Elem::Int(b)) => a == b,
            _ => self.to_bytes() == other.to_bytes(),
        }
    }
}

/// Number of bytes a backlen takes for an entry of `l` bytes (`lpEncodeBacklen`).
pub fn backlen_size(l: u64) -> usize {
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

/// Decode the backlen that ends at `blob[end - 1]`, reading right to left, never before `floor`.
fn decode_backlen(blob: &[u8], end: usize, floor: usize) -> Option<u64> {
    let mut val: u64 = 0;
    let mut shift = 0u32;
    let mut p = end.checked_sub(1)?;
    loop {
        if p < floor {
            return None;
        }
        let b = *blob.get(p)?;
        val |= u64::from(b & 127) << shift;
        if b & 128 == 0 {
            return Some(val);
        }
        shift += 7;
        if shift > 28 {
            return None;
        }
        p = p.checked_sub(1)?;
    }
}

fn byte_at(blob: &[u8], p: usize) -> Result<u8, BlobError> {
    blob.get(p)
        .copied()
        .ok_or_else(|| BlobError::new(p, "listpack entry header reaches past the end"))
}

/// Decode the entry starting at `p` (which is not the terminator): the element and the offset of
/// the next entry. Every byte it looks at is bounds-checked against `limit` (the terminator's
/// position).
fn decode_entry(blob: &[u8], p: usize, limit: usize) -> Result<(Elem<'_>, usize), BlobError> {
    let b0 = byte_at(blob, p)?;
    let need = |n: usize| -> Result<&[u8], BlobError> {
        // n bytes of encoding+data starting at p must lie before the terminator.
        match p.checked_add(n) {
            Some(end) if end <= limit => Ok(&blob[p..end]),
            _ => Err(BlobError::new(p, "listpack entry reaches past the end")),
        }
    };
    let (elem, size): (Elem<'_>, usize) = if b0 & 0x80 == 0 {
        (Elem::Int(i64::from(b0 & 0x7f)), 1)
    } else if b0 & 0xC0 == 0x80 {
        let len = usize::from(b0 & 0x3f);
        let e = need(1 + len)?;
        (Elem::Str(&e[1..]), 1 + len)
    } else if b0 & 0xE0 == 0xC0 {
        let e = need(2)?;
        let u = (u64::from(b0 & 0x1f) << 8) | u64::from(e[1]);
        (Elem::Int(to_signed(u, 13)), 2)
    } else if b0 == 0xF1 || b0 == 0xF2 || b0 == 0xF3 || b0 == 0xF4 {
        let n = match b0 {
            0xF1 => 2,
            0xF2 => 3,
            0xF3 => 4,
            _ => 8,
        };
        let e = need(1 + n)?;
        let mut u: u64 = 0;
        for (i, b) in e[1..].iter().enumerate() {
            u |= u64::from(*b) << (8 * i);
        }
        (Elem::Int(to_signed(u, (n * 8) as u32)), 1 + n)
    } else if b0 & 0xF0 == 0xE0 {
        let h = need(2)?;
        let len = (usize::from(b0 & 0x0f) << 8) | usize::from(h[1]);
        let e = need(2 + len)?;
        (Elem::Str(&e[2..]), 2 + len)
    } else if b0 == 0xF0 {
        let h = need(5)?;
        let len = u32::from_le_bytes([h[1], h[2], h[3], h[4]]) as usize;
        let total = len
            .checked_add(5)
            .ok_or_else(|| BlobError::new(p, "listpack string length overflows"))?;
        let e = need(total)?;
        (Elem::Str(&e[5..]), total)
    } else {
        return Err(BlobError::new(
            p,
            format!("invalid listpack entry encoding {b0:#04x}"),
        ));
    };
    let bl = backlen_size(size as u64);
    let next = p
        .checked_add(size + bl)
        .filter(|n| *n <= limit)
        .ok_or_else(|| BlobError::new(p, "listpack entry backlen reaches past the end"))?;
    match decode_backlen(blob, next, p + size) {
        Some(v) if v == size as u64 => Ok((elem, next)),
        _ => Err(BlobError::new(
            p + size,
            "listpack entry backlen does not match its size",
        )),
    }
}

/// Two's complement of the low `bits` bits of `u`.
fn to_signed(u: u64, bits: u32) -> i64 {
    if bits >= 64 {
        return u as i64;
    }
    let sign = 1u64 << (bits - 1);
    if u & sign != 0 {
        (u as i64) - (1i64 << bits)
    } else {
        u as i64
    }
}

/// Validate a whole listpack as Redis's deep check does and return its elements in order.
pub fn parse(blob: &[u8]) -> Result<Vec<Elem<'_>>, BlobError> {
    if blob.len() < HEADER_SIZE + 1 {
        return Err(BlobError::new(
            0,
            format!(
                "listpack of {} bytes is shorter than its header",
                blob.len()
            ),
        ));
    }
    let total = u32::from_le_bytes([blob[0], blob[1], blob[2], blob[3]]) as usize;
    if total != blob.len() {
        return Err(BlobError::new(
            0,
            format!(
                "listpack header says {total} bytes, blob has {}",
                blob.len()
            ),
        ));
    }
    let limit = blob.len() - 1;
    if blob[limit] != EOF {
        return Err(BlobError::new(limit, "listpack does not end with 0xFF"));
    }
    let numele = u16::from_le_bytes([blob[4], blob[5]]);
    // Every entry takes at least 2 bytes: never reserve more than the blob can hold.
    let mut out = Vec::with_capacity(usize::from(numele).min(blob.len() / 2));
    let mut p = HEADER_SIZE;
    while p < limit {
        let (e, next) = decode_entry(blob, p, limit)?;
        out.push(e);
        p = next;
    }
    if numele != NUMELE_UNKNOWN && usize::from(numele) != out.len() {
        return Err(BlobError::new(
            4,
            format!(
                "listpack header counts {numele} elements, found {}",
                out.len()
            ),
        ));
    }
    Ok(out)
}

/// Find a repeated element (for sets: every element; for maps: every even element), returning
/// its index. Small inputs use a quadratic scan, larger ones a hash set.
pub fn find_duplicate(elems: &[Elem<'_>], step: usize) -> Option<usize> {
    let step = step.max(1);
    let n = elems.len().div_ceil(step);
    if n <= 16 {
        for i in (0..elems.len()).step_by(step) {
            for j in (0..i).step_by(step) {
                if elems[i].same_as(&elems[j]) {
                    return Some(i);
                }
            }
        }
        return None;
    }
    let mut seen = std::collections::HashSet::with_capacity(n);
    for i in (0..elems.len()).step_by(step) {
        let key: std::borrow::Cow<'_, [u8]> = match elems[i] {
            Elem::Str(s) => std::borrow::Cow::Borrowed(s),
            Elem::Int(v) => std::borrow::Cow::Owned(v.to_string().into_bytes()),
        };
        if !seen.insert(key) {
            return Some(i);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Build a listpack from raw entries (encoding+data), adding backlens and header.
    fn lp(entries: &[Vec<u8>], count: u16) -> Vec<u8> {
        let mut body = Vec::new();
        for e in entries {
            body.extend_from_slice(e);
            let l = e.len() as u64;
            match backlen_size(l) {
                1 => body.push(l as u8),
                2 => {
                    body.push((l >> 7) as u8);
                    body.push(((l & 127) | 128) as u8);
                }
                _ => unreachable!("test entries are small"),
            }
        }
        let total = (HEADER_SIZE + body.len() + 1) as u32;
        let mut v = total.to_le_bytes().to_vec();
        v.extend_from_slice(&count.to_le_bytes());
        v.extend_from_slice(&body);
        v.push(EOF);
        v
    }

    fn s6(s: &[u8]) -> Vec<u8> {
        let mut v = vec![0x80 | s.len() as u8];
        v.extend_from_slice(s);
        v
    }

    #[test]
    fn all_encodings() {
        let long = vec![b'x'; 200];
        let mut s12 = vec![0xE0 | (200 >> 8) as u8, 200u8];
        s12.extend_from_slice(&long);
        let mut s32 = vec![0xF0, 3, 0, 0, 0];
        s32.extend_from_slice(b"abc");
        let blob = lp(
            &[
                vec![5],
                s6(b"hi"),
                vec![0xC0 | 0x1f, 0xff], // 13-bit -1
                vec![0xF1, 0x00, 0x80],  // i16 min
                vec![0xF2, 0xff, 0xff, 0x7f],
                vec![0xF3, 0, 0, 0, 0x80],
                vec![0xF4, 1, 0, 0, 0, 0, 0, 0, 0x80],
                s12,
                s32,
            ],
            9,
        );
        let e = parse(&blob).unwrap();
        assert_eq!(
            e,
            vec![
                Elem::Int(5),
                Elem::Str(b"hi"),
                Elem::Int(-1),
                Elem::Int(i64::from(i16::MIN)),
                Elem::Int(0x7fffff),
                Elem::Int(i64::from(i32::MIN)),
                Elem::Int(i64::MIN + 1),
                Elem::Str(&long),
                Elem::Str(b"abc"),
            ]
        );
        assert_eq!(Elem::Int(-12).to_bytes(), b"-12");
        // Unknown count is accepted.
        let blob = lp(&[vec![1], vec![2]], NUMELE_UNKNOWN);
        assert_eq!(parse(&blob).unwrap().len(), 2);
        // Empty listpack.
        assert_eq!(parse(&lp(&[], 0)).unwrap(), vec![]);
    }

    #[test]
    fn invalid_cases() {
        let good = lp(&[s6(b"ab"), vec![7]], 2);
        assert!(parse(&good).is_ok());
        // Too short.
        assert!(parse(&good[..5]).is_err());
        // Total bytes mismatch.
        let mut b = good.clone();
        b[0] += 1;
        assert!(parse(&b).unwrap_err().what.contains("header says"));
        // Missing terminator.
        let mut b = good.clone();
        let l = b.len();
        b[l - 1] = 0;
        assert!(parse(&b).is_err());
        // Wrong count.
        let mut b = good.clone();
        b[4] = 3;
        assert!(parse(&b).unwrap_err().what.contains("counts"));
        // Bad backlen.
        let mut b = good.clone();
        b[HEADER_SIZE + 3] = 9;
        assert!(parse(&b).unwrap_err().what.contains("backlen"));
        // Invalid encoding byte.
        let b = lp(&[vec![0xF5]], 1);
        assert!(parse(&b).unwrap_err().what.contains("encoding"));
        // String longer than the blob.
        let mut b = good.clone();
        b[HEADER_SIZE] = 0x80 | 60;
        assert!(parse(&b).is_err());
        // 32-bit string length overflowing.
        let b = lp(&[vec![0xF0, 0xff, 0xff, 0xff, 0xff]], 1);
        assert!(parse(&b).is_err());
        // Entry swallowing the terminator region.
        let b = lp(&[vec![0xF4, 1, 2]], 1);
        assert!(parse(&b).is_err());
    }

    #[test]
    fn duplicates() {
        let e = [
            Elem::Str(b"1"),
            Elem::Str(b"a"),
            Elem::Int(1),
            Elem::Str(b"b"),
        ];
        assert_eq!(find_duplicate(&e, 1), Some(2));
        assert_eq!(find_duplicate(&e, 2), Some(2));
        let e = [
            Elem::Str(b"a"),
            Elem::Str(b"x"),
            Elem::Str(b"b"),
            Elem::Str(b"x"),
        ];
        assert_eq!(find_duplicate(&e, 2), None);
        assert_eq!(find_duplicate(&e, 1), Some(3));
        let many: Vec<Vec<u8>> = (0..100).map(|i| format!("m{i}").into_bytes()).collect();
        let mut e: Vec<Elem<'_>> = many.iter().map(|m| Elem::Str(m)).collect();
        assert_eq!(find_duplicate(&e, 1), None);
        e.push(Elem::Str(b"m42"));
        assert_eq!(find_duplicate(&e, 1), Some(100));
        e.pop();
        e.push(Elem::Int(7));
        e.push(Elem::Str(b"7"));
        assert_eq!(find_duplicate(&e, 1), Some(101));
    }
}
