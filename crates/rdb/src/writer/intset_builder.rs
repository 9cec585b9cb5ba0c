//! Builds an intset blob as Redis 7.0's `intsetAdd` leaves it in memory (`intset.c`, `intset.h`),
//! which `rdbSaveObject` stores verbatim as the string of an RDB `SET_INTSET` value.
//!
//! ```text
//! +-------------+-------------+---------------------------------------+
//! | encoding    | length      | values, ascending, no duplicates      |
//! | u32 LE 2/4/8| u32 LE      | each `encoding` bytes, signed LE      |
//! +-------------+-------------+---------------------------------------+
//! ```
//! The encoding is the smallest of int16/int32/int64 that holds every value
//! (`_intsetValueEncoding`; an intset only ever upgrades).

use crate::error::{RdbError, Result};

/// Width in bytes Redis uses for one value (`_intsetValueEncoding`).
fn width_of(v: i64) -> usize {
    if i32::try_from(v).is_err() {
        8
    } else if i16::try_from(v).is_err() {
        4
    } else {
        2
    }
}

/// Sort `values` and append the intset holding them to `out`. Duplicates are refused (a set
/// cannot hold a member twice; Redis refuses such an intset when loading).
pub fn build_intset(values: &mut [i64], out: &mut Vec<u8>) -> Result<()> {
    values.sort_unstable();
    if let Some(w) = values.windows(2).find(|w| w[0] == w[1]) {
        return Err(RdbError::InvalidInput(format!(
            "set member {} given twice",
            w[0]
        )));
    }
    let len = u32::try_from(values.len())
        .map_err(|_| RdbError::InvalidInput(format!("intset of {} members", values.len())))?;
    let width = values.iter().map(|&v| width_of(v)).max().unwrap_or(2);
    out.reserve(8 + width * values.len());
    out.extend_from_slice(&(width as u32).to_le_bytes());
    out.extend_from_slice(&len.to_le_bytes());
    for &v in values.iter() {
        match width {
            2 => out.extend_from_slice(&(v as i16).to_le_bytes()),
            4 => out.extend_from_slice(&(v as i32).to_le_bytes()),
            _ => out.extend_from_slice(&v.to_le_bytes()),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn widths_and_order() {
        let mut out = Vec::new();
        build_intset(&mut [3, -1, 2], &mut out).unwrap();
        assert_eq!(out, [2, 0, 0, 0, 3, 0, 0, 0, 0xFF, 0xFF, 2, 0, 3, 0]);
        out.clear();
        build_intset(&mut [32768, 1], &mut out).unwrap();
        assert_eq!(out, [4, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 0, 0x80, 0, 0]);
        out.clear();
        build_intset(&mut [i64::MIN, 0], &mut out).unwrap();
        assert_eq!(&out[..4], &[8, 0, 0, 0]);
        assert_eq!(out.len(), 8 + 16);
        out.clear();
        build_intset(&mut [-32768, 32767], &mut out).unwrap();
        assert_eq!(&out[..4], &[2, 0, 0, 0]);
        assert!(build_intset(&mut [5, 5], &mut Vec::new()).is_err());
    }
}
