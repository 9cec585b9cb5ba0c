//! Ziplist: parse and deep-validate the legacy compact list blob (RDB types 10, 12, 13 and the
//! nodes of type 14), so files written by Redis 2.6 to 6.2 load and corrupt ones are refused.
//!
//! Format (Redis `src/ziplist.c`, `ziplistValidateIntegrity` / `zipEntrySafe`, 7.0.15), header
//! fields **little-endian**:
//!
//! ```text
//! +---------+--------+--------+---------+---------+-----+------+
//! | zlbytes | zltail | zllen  | entry 0 | entry 1 | ... | 0xFF |
//! | u32 LE  | u32 LE | u16 LE |         |         |     | end  |
//! +---------+--------+--------+---------+---------+-----+------+
//! entry = <prevlen> <encoding> <data>
//! prevlen  = 1 byte (< 254) | 0xFE + u32 LE: size of the previous entry
//! encoding = 00pppppp                 string, 6-bit length
//!          | 01pppppp qqqqqqqq        string, 14-bit big-endian length
//!          | 10______ + u32 BE        string, 32-bit length
//!          | 0xC0 i16 | 0xD0 i32 | 0xE0 i64 | 0xF0 i24 | 0xFE i8   (little-endian)
//!          | 0xF1..=0xFD              immediate 0..=12 (low nibble - 1)
//! ```
//!
//! Checks: header bytes == blob length, tail offset inside, terminator, every entry inside the
//! blob with a valid encoding and a prevlen equal to the previous entry's size, the walk ending on
//! the terminator, the tail offset pointing at the last entry, and the count equal to the
//! header's (unless 65535, "unknown").

pub use crate::listpack::{BlobError, Elem};

/// Size of the ziplist header.
pub const HEADER_SIZE: usize = 10;
/// Terminator byte.
pub const END: u8 = 0xFF;

fn le32(b: &[u8], p: usize) -> Option<u32> {
    let s = b.get(p..p.checked_add(4)?)?;
    Some(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

/// Decode one entry at `p` (not the terminator). Returns (prevlen, element, entry size).
fn decode_entry(blob: &[u8], p: usize, last: usize) -> Result<(u64, Elem<'_>, usize), BlobError> {
    let oob = |what: &str| BlobError::new(p, format!("ziplist entry {what} reaches past the end"));
    // prevlen
    let first = *blob.get(p).ok_or_else(|| oob("prevlen"))?;
    let (prevlen, plsize) = if first < 254 {
        (u64::from(first), 1usize)
    } else {
        if p + 5 > last {
            return Err(oob("prevlen"));
        }
        (
            u64::from(le32(blob, p + 1).ok_or_else(|| oob("prevlen"))?),
            5,
        )
    };
    let q = p + plsize;
    if q > last {
        return Err(oob("encoding"));
    }
    let enc = blob[q];
    let need = |n: usize| -> Result<(), BlobError> {
        match q.checked_add(n) {
            Some(end) if end <= last => Ok(()),
            _ => Err(oob("header")),
        }
    };
    // (header size after prevlen, data length)
    let (lensize, len, int_kind): (usize, usize, u8) = match enc >> 6 {
        0 => (1, usize::from(enc & 0x3f), 0),
        1 => {
            need(2)?;
            (
                2,
                (usize::from(enc & 0x3f) << 8) | usize::from(blob[q + 1]),
                0,
            )
        }
        2 => {
            need(5)?;
            let l = u32::from_be_bytes([blob[q + 1], blob[q + 2], blob[q + 3], blob[q + 4]]);
            (5, l as usize, 0)
        }
        _ => match enc {
            0xC0 => (1, 2, enc),
            0xD0 => (1, 4, enc),
            0xE0 => (1, 8, enc),
            0xF0 => (1, 3, enc),
            0xFE => (1, 1, enc),
            0xF1..=0xFD => (1, 0, enc),
            _ => {
                return Err(BlobError::new(
                    q,
                    format!("invalid ziplist entry encoding {enc:#04x}"),
                ))
            }
        },
    };
    let data = q + lensize;
    let end = data
        .checked_add(len)
        .filter(|e| *e <= last)
        .ok_or_else(|| oob("data"))?;
    let d = &blob[data..end];
    let elem = match int_kind {
        0 => Elem::Str(d),
        0xC0 => Elem::Int(i64::from(i16::from_le_bytes([d[0], d[1]]))),
        0xD0 => Elem::Int(i64::from(i32::from_le_bytes([d[0], d[1], d[2], d[3]]))),
        0xE0 => Elem::Int(i64::from_le_bytes([
            d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7],
        ])),
        0xF0 => Elem::Int(i64::from(i32::from_le_bytes([0, d[0], d[1], d[2]]) >> 8)),
        0xFE => Elem::Int(i64::from(d[0] as i8)),
        imm => Elem::Int(i64::from(imm & 0x0f) - 1),
    };
    Ok((prevlen, elem, end - p))
}

/// Validate a whole ziplist as Redis's deep check does and return its elements in order.
pub fn parse(blob: &[u8]) -> Result<Vec<Elem<'_>>, BlobError> {
    if blob.len() < HEADER_SIZE + 1 {
        return Err(BlobError::new(
            0,
            format!("ziplist of {} bytes is shorter than its header", blob.len()),
        ));
    }
    let bytes = le32(blob, 0).unwrap_or(0) as usize;
    if bytes != blob.len() {
        return Err(BlobError::new(
            0,
            format!("ziplist header says {bytes} bytes, blob has {}", blob.len()),
        ));
    }
    let last = blob.len() - 1;
    if blob[last] != END {
        return Err(BlobError::new(last, "ziplist does not end with 0xFF"));
    }
    let tail = le32(blob, 4).unwrap_or(u32::MAX) as usize;
    if tail > last {
        return Err(BlobError::new(
            4,
            format!("ziplist tail offset {tail} is outside the blob"),
        ));
    }
    let count = u16::from_le_bytes([blob[8], blob[9]]);
    // Every entry takes at least 2 bytes.
    let mut out = Vec::with_capacity(usize::from(count).min(blob.len() / 2));
    let mut p = HEADER_SIZE;
    let mut prev_size = 0u64;
    let mut prev_pos = None;
    while blob[p] != END {
        let (prevlen, elem, size) = decode_entry(blob, p, last)?;
        if prevlen != prev_size {
            return Err(BlobError::new(
                p,
                format!("ziplist prevlen {prevlen} != previous entry size {prev_size}"),
            ));
        }
        out.push(elem);
        prev_size = size as u64;
        prev_pos = Some(p);
        p += size;
        if p > last {
            return Err(BlobError::new(p, "ziplist entry reaches past the end"));
        }
    }
    if p != last {
        return Err(BlobError::new(p, "ziplist ends before its last byte"));
    }
    if let Some(pp) = prev_pos {
        if pp != tail {
            return Err(BlobError::new(
                4,
                format!("ziplist tail offset {tail} is not the last entry ({pp})"),
            ));
        }
    }
    if count != u16::MAX && usize::from(count) != out.len() {
        return Err(BlobError::new(
            8,
            format!("ziplist header counts {count} entries, found {}", out.len()),
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Build a ziplist from raw (encoding+data) entries, adding prevlens and header.
    fn zl(entries: &[Vec<u8>], count: Option<u16>) -> Vec<u8> {
        let mut body = Vec::new();
        let mut prev = 0usize;
        let mut tail = HEADER_SIZE;
        for e in entries {
            tail = HEADER_SIZE + body.len();
            let start = body.len();
            if prev < 254 {
                body.push(prev as u8);
            } else {
                body.push(0xFE);
                body.extend_from_slice(&(prev as u32).to_le_bytes());
            }
            body.extend_from_slice(e);
            prev = body.len() - start;
        }
        let total = HEADER_SIZE + body.len() + 1;
        let mut v = (total as u32).to_le_bytes().to_vec();
        v.extend_from_slice(&(tail as u32).to_le_bytes());
        v.extend_from_slice(&count.unwrap_or(entries.len() as u16).to_le_bytes());
        v.extend_from_slice(&body);
        v.push(END);
        v
    }

    #[test]
    fn all_encodings() {
        let big = vec![b'y'; 300];
        let mut s14 = vec![0x40 | (300 >> 8) as u8, (300 & 0xff) as u8];
        s14.extend_from_slice(&big);
        let mut s32 = vec![0x80, 0, 0, 0, 2];
        s32.extend_from_slice(b"ok");
        let blob = zl(
            &[
                vec![3, b'a', b'b', b'c'],
                vec![0xC0, 0xff, 0x7f],
                vec![0xD0, 0, 0, 0, 0x80],
                vec![0xE0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
                vec![0xF0, 0, 0, 0x80],
                vec![0xFE, 0x80],
                vec![0xF1],
                vec![0xFD],
                s14, // after a 300-byte entry the next prevlen takes 5 bytes
                s32,
            ],
            None,
        );
        let e = parse(&blob).unwrap();
        assert_eq!(
            e,
            vec![
                Elem::Str(b"abc"),
                Elem::Int(32767),
                Elem::Int(i64::from(i32::MIN)),
                Elem::Int(-1),
                Elem::Int(-(1 << 23)),
                Elem::Int(-128),
                Elem::Int(0),
                Elem::Int(12),
                Elem::Str(&big),
                Elem::Str(b"ok"),
            ]
        );
        assert_eq!(parse(&zl(&[], None)).unwrap(), vec![]);
        assert_eq!(
            parse(&zl(&[vec![0xF2]], Some(u16::MAX))).unwrap(),
            vec![Elem::Int(1)]
        );
    }

    #[test]
    fn invalid_cases() {
        let good = zl(&[vec![1, b'a'], vec![0xF5]], None);
        assert!(parse(&good).is_ok());
        assert!(parse(&good[..8]).is_err());
        let mut b = good.clone();
        b[0] ^= 1;
        assert!(parse(&b).unwrap_err().what.contains("header says"));
        let mut b = good.clone();
        let l = b.len();
        b[l - 1] = 0;
        assert!(parse(&b).is_err());
        // Tail outside / not on last entry.
        let mut b = good.clone();
        b[4] = 200;
        assert!(parse(&b).unwrap_err().what.contains("outside"));
        let mut b = good.clone();
        b[4] = HEADER_SIZE as u8;
        assert!(parse(&b).unwrap_err().what.contains("not the last"));
        // Count mismatch.
        let mut b = good.clone();
        b[8] = 5;
        assert!(parse(&b).unwrap_err().what.contains("counts"));
        // Wrong prevlen.
        let mut b = good.clone();
        b[HEADER_SIZE + 3] = 7;
        assert!(parse(&b).unwrap_err().what.contains("prevlen"));
        // First prevlen must be 0.
        let mut b = good.clone();
        b[HEADER_SIZE] = 1;
        assert!(parse(&b).is_err());
        // Invalid encoding.
        let b = zl(&[vec![0xC1]], None);
        assert!(parse(&b).unwrap_err().what.contains("encoding"));
        // Data past the end.
        let b = zl(&[vec![0x3f, b'a']], None);
        assert!(parse(&b).is_err());
        let b = zl(&[vec![0x80, 0xff, 0xff, 0xff, 0xff]], None);
        assert!(parse(&b).is_err());
    }
}
