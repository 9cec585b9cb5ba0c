//! Intset: parse and deep-validate the sorted-integer blob of RDB type 11 (`SET_INTSET`).
//!
//! Format (Redis `src/intset.c`, `intsetValidateIntegrity`, 7.0.15), all **little-endian**:
//!
//! ```text
//! +----------+--------+-----------------------------------+
//! | encoding | length | length x integer of `encoding` B   |
//! |  u32 LE  | u32 LE | (2, 4 or 8 bytes, signed)         |
//! +----------+--------+-----------------------------------+
//! ```
//!
//! Checks: encoding in {2, 4, 8}, `8 + length * encoding == blob length`, not empty, and the
//! integers strictly increasing (sorted and unique).

pub use crate::listpack::BlobError;

/// Size of the intset header.
pub const HEADER_SIZE: usize = 8;

/// Validate an intset and return its integers (ascending).
pub fn parse(blob: &[u8]) -> Result<Vec<i64>, BlobError> {
    if blob.len() < HEADER_SIZE {
        return Err(BlobError::new(
            0,
            format!("intset of {} bytes is shorter than its header", blob.len()),
        ));
    }
    let enc = u32::from_le_bytes([blob[0], blob[1], blob[2], blob[3]]);
    if !matches!(enc, 2 | 4 | 8) {
        return Err(BlobError::new(
            0,
            format!("intset encoding {enc} is not 2, 4 or 8"),
        ));
    }
    let width = enc as usize;
    let count = u32::from_le_bytes([blob[4], blob[5], blob[6], blob[7]]);
    let expect = (count as u64) * (width as u64) + HEADER_SIZE as u64;
    if expect != blob.len() as u64 {
        return Err(BlobError::new(
            4,
            format!(
                "intset of {count} x {width}-byte integers needs {expect} bytes, blob has {}",
                blob.len()
            ),
        ));
    }
    if count == 0 {
        return Err(BlobError::new(4, "intset is empty"));
    }
    let mut out: Vec<i64> = Vec::with_capacity(count as usize);
    for (i, c) in blob[HEADER_SIZE..].chunks_exact(width).enumerate() {
        let v = match width {
            2 => i64::from(i16::from_le_bytes([c[0], c[1]])),
            4 => i64::from(i32::from_le_bytes([c[0], c[1], c[2], c[3]])),
            _ => i64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]),
        };
        if let Some(&prev) = out.last() {
            if v <= prev {
                return Err(BlobError::new(
                    HEADER_SIZE + i * width,
                    format!("intset not sorted or has a duplicate: {v} after {prev}"),
                ));
            }
        }
        out.push(v);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is(enc: u32, vals: &[i64]) -> Vec<u8> {
        let mut v = enc.to_le_bytes().to_vec();
        v.extend_from_slice(&(vals.len() as u32).to_le_bytes());
        for x in vals {
            v.extend_from_slice(&x.to_le_bytes()[..enc as usize]);
        }
        v
    }

    #[test]
    fn valid() {
        assert_eq!(parse(&is(2, &[-3, 0, 7])).unwrap(), vec![-3, 0, 7]);
        assert_eq!(
            parse(&is(4, &[i64::from(i32::MIN), 1])).unwrap(),
            vec![i64::from(i32::MIN), 1]
        );
        assert_eq!(
            parse(&is(8, &[i64::MIN, i64::MAX])).unwrap(),
            vec![i64::MIN, i64::MAX]
        );
    }

    #[test]
    fn invalid() {
        assert!(parse(&[2, 0, 0]).is_err());
        assert!(parse(&is(3, &[1])).unwrap_err().what.contains("encoding"));
        let mut b = is(2, &[1, 2]);
        b.push(0);
        assert!(parse(&b).unwrap_err().what.contains("needs"));
        let mut b = is(2, &[1, 2]);
        b[4] = 0xff;
        b[7] = 0xff; // huge count must not overflow or allocate
        assert!(parse(&b).is_err());
        assert!(parse(&is(2, &[])).unwrap_err().what.contains("empty"));
        assert!(parse(&is(2, &[2, 1])).unwrap_err().what.contains("sorted"));
        assert!(parse(&is(8, &[5, 5]))
            .unwrap_err()
            .what
            .contains("duplicate"));
    }
}
