//! Zipmap: parse and deep-validate the Redis 2.x hash blob of RDB type 9 (`HASH_ZIPMAP`).
//!
//! Format (Redis `src/zipmap.c`, `zipmapValidateIntegrity`, 7.0.15):
//!
//! ```text
//! <zmlen: 1 byte, 254 = unknown> ( <len> field <len> <free: 1 byte> value <free bytes> )* 0xFF
//! len = 1 byte (< 254) | 0xFE or 0xFF followed by a u32 little-endian
//! ```
//!
//! Checks: at least 2 bytes, last byte 0xFF, every field and value (plus its free space) inside
//! the blob, at least one pair, and the pair count equal to `zmlen` unless that is 254.

pub use crate::listpack::BlobError;

/// Terminator byte.
pub const END: u8 = 0xFF;
/// `zmlen` value meaning "count unknown" (and first length byte announcing a 4-byte length).
pub const BIGLEN: u8 = 254;

/// Read a zipmap length at `p` (bounds-checked so that its bytes end at or before `last`).
/// Returns (length, bytes it took).
fn read_len(blob: &[u8], p: usize, last: usize) -> Result<(usize, usize), BlobError> {
    let b = *blob
        .get(p)
        .ok_or_else(|| BlobError::new(p, "zipmap length reaches past the end"))?;
    if b < BIGLEN {
        if p + 1 > last {
            return Err(BlobError::new(p, "zipmap length reaches past the end"));
        }
        return Ok((usize::from(b), 1));
    }
    if p + 5 > last {
        return Err(BlobError::new(p, "zipmap length reaches past the end"));
    }
    let l = u32::from_le_bytes([blob[p + 1], blob[p + 2], blob[p + 3], blob[p + 4]]);
    Ok((l as usize, 5))
}

/// A (field, value) pair borrowed from a zipmap.
pub type Pair<'a> = (&'a [u8], &'a [u8]);

/// Validate a zipmap and return its (field, value) pairs in order.
pub fn parse(blob: &[u8]) -> Result<Vec<Pair<'_>>, BlobError> {
    if blob.len() < 2 {
        return Err(BlobError::new(0, "zipmap shorter than 2 bytes"));
    }
    let last = blob.len() - 1;
    if blob[last] != END {
        return Err(BlobError::new(last, "zipmap does not end with 0xFF"));
    }
    let oob = |p: usize| BlobError::new(p, "zipmap entry reaches past the end");
    let mut out = Vec::with_capacity(usize::from(blob[0]).min(blob.len() / 3));
    let mut p = 1usize;
    while blob[p] != END {
        let start = p;
        let (flen, s) = read_len(blob, p, last)?;
        let f0 = p + s;
        let f1 = f0
            .checked_add(flen)
            .filter(|e| *e <= last)
            .ok_or_else(|| oob(start))?;
        let (vlen, s) = read_len(blob, f1, last)?;
        let free_at = f1 + s;
        // read_len guarantees free_at <= last.
        let free = usize::from(blob[free_at]);
        let v0 = free_at + 1;
        let v1 = v0
            .checked_add(vlen)
            .filter(|e| *e <= last)
            .ok_or_else(|| oob(start))?;
        let next = v1
            .checked_add(free)
            .filter(|e| *e <= last)
            .ok_or_else(|| oob(start))?;
        out.push((&blob[f0..f1], &blob[v0..v1]));
        p = next;
    }
    if out.is_empty() {
        return Err(BlobError::new(1, "zipmap is empty"));
    }
    if blob[0] != BIGLEN && usize::from(blob[0]) != out.len() {
        return Err(BlobError::new(
            0,
            format!(
                "zipmap header counts {} pairs, found {}",
                blob[0],
                out.len()
            ),
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zm(pairs: &[(&[u8], &[u8], u8)], count: u8) -> Vec<u8> {
        let mut v = vec![count];
        for (f, val, free) in pairs {
            v.push(f.len() as u8);
            v.extend_from_slice(f);
            v.push(val.len() as u8);
            v.push(*free);
            v.extend_from_slice(val);
            v.extend(std::iter::repeat_n(0u8, usize::from(*free)));
        }
        v.push(END);
        v
    }

    #[test]
    fn valid() {
        let b = zm(&[(b"a", b"1", 0), (b"bb", b"", 2)], 2);
        assert_eq!(
            parse(&b).unwrap(),
            vec![(&b"a"[..], &b"1"[..]), (&b"bb"[..], &b""[..])]
        );
        let b = zm(&[(b"a", b"1", 0)], BIGLEN);
        assert_eq!(parse(&b).unwrap().len(), 1);
        // 5-byte length form.
        let long = vec![b'z'; 300];
        let mut b = vec![1u8, 1, b'k', BIGLEN];
        b.extend_from_slice(&300u32.to_le_bytes());
        b.push(0);
        b.extend_from_slice(&long);
        b.push(END);
        assert_eq!(parse(&b).unwrap(), vec![(&b"k"[..], &long[..])]);
    }

    #[test]
    fn invalid() {
        assert!(parse(&[0]).is_err());
        assert!(parse(&[0, 0]).unwrap_err().what.contains("0xFF"));
        assert!(parse(&[0, END]).unwrap_err().what.contains("empty"));
        let good = zm(&[(b"a", b"1", 0)], 1);
        let mut b = good.clone();
        b[0] = 3;
        assert!(parse(&b).unwrap_err().what.contains("counts"));
        let mut b = good.clone();
        b[1] = 40; // field longer than the blob
        assert!(parse(&b).is_err());
        let mut b = good.clone();
        b[4] = 9; // free space past the end
        assert!(parse(&b).is_err());
        let mut b = good.clone();
        b[3] = BIGLEN; // 4-byte length cut by the end
        assert!(parse(&b).is_err());
    }
}
