//! LZF with the guards Redis's loader needs. Decompression is the reader's block-copy decoder
//! (`reader/unlzf.rs`, checked against the `lzf` crate's decoder in its tests); [`compress`] is
//! the `lzf` crate's (tests only: the writer uses the Redis-exact port in `writer/`).
//!
//! The `lzf` crate allocates the claimed uncompressed length up front, so a corrupt header could
//! ask for gigabytes. LZF's best case expands one literal-free back-reference token of 3 bytes into
//! at most 264 bytes (length 7 + 2 extra + 255, Lehmann's format: `len = (ctrl >> 5) + 2`, with
//! `len == 9` extended by one byte up to `255 + 9`), so a stream of `n` compressed bytes can never
//! expand past `n * 88` bytes (264 / 3 rounded up). A claimed length above that bound is refused
//! before any allocation.

/// Upper bound of the expansion factor of LZF (bytes out per compressed byte in).
pub const MAX_EXPANSION: usize = 88;

/// Why a decompression was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LzfError {
    /// The claimed length cannot come from that many compressed bytes.
    ImpossibleLength {
        /// Claimed uncompressed length.
        claimed: usize,
        /// Compressed length.
        compressed: usize,
    },
    /// The data is not valid LZF, or does not expand to exactly the claimed length.
    Invalid,
}

impl std::fmt::Display for LzfError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LzfError::ImpossibleLength {
                claimed,
                compressed,
            } => write!(
                f,
                "LZF claims {claimed} uncompressed bytes from {compressed} compressed bytes \
                 (at most {} possible)",
                compressed.saturating_mul(MAX_EXPANSION)
            ),
            LzfError::Invalid => write!(f, "invalid LZF data"),
        }
    }
}

/// Decompress `data`, which must expand to exactly `claimed_len` bytes.
pub fn decompress(data: &[u8], claimed_len: usize) -> Result<Vec<u8>, LzfError> {
    if claimed_len == 0 {
        return if data.is_empty() {
            Ok(Vec::new())
        } else {
            Err(LzfError::Invalid)
        };
    }
    if claimed_len > data.len().saturating_mul(MAX_EXPANSION) {
        return Err(LzfError::ImpossibleLength {
            claimed: claimed_len,
            compressed: data.len(),
        });
    }
    // The reader's block-copy decoder (`reader/unlzf.rs`), same guard; the `lzf` crate's
    // decoder stays as the reference its tests compare against.
    let mut out = Vec::new();
    match crate::reader::unlzf::decompress_into(data, claimed_len, &mut out) {
        Ok(()) => Ok(out),
        Err(_) => Err(LzfError::Invalid),
    }
}

/// Compress `data` if it shrinks: `None` when LZF would not save at least one byte
/// (the caller then stores the string raw, as Redis does).
pub fn compress(data: &[u8]) -> Option<Vec<u8>> {
    match lzf::compress(data) {
        Ok(c) if c.len() < data.len() => Some(c),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_bounds() {
        let data = b"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
            .repeat(50);
        let c = compress(&data).expect("compressible");
        assert_eq!(decompress(&c, data.len()).unwrap(), data);
        assert!(matches!(
            decompress(&c, usize::MAX / 2),
            Err(LzfError::ImpossibleLength { .. })
        ));
        assert_eq!(decompress(&c, data.len() - 1), Err(LzfError::Invalid));
        assert!(compress(b"abc").is_none());
        // The best case really stays under the bound.
        let zeros = vec![0u8; 1 << 20];
        let c = compress(&zeros).unwrap();
        assert!(
            zeros.len() <= c.len() * MAX_EXPANSION,
            "{} vs {}",
            zeros.len(),
            c.len()
        );
    }
}
