//! CRC-64/Jones as Redis uses it (catalogued as CRC-64/REDIS), computed by the `crc-fast` crate's
//! SIMD implementation. Check value: CRC of `"123456789"` is `0xe9c6d914c4b8d9ca`. (`crc64fast`
//! computes CRC-64/XZ, a different polynomial whose files Redis rejects.)

use crc_fast::{CrcAlgorithm, Digest};

/// A running CRC-64/REDIS.
#[derive(Clone)]
pub struct Crc64 {
    digest: Digest,
}

impl Default for Crc64 {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Crc64 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Crc64({:#018x})", self.value())
    }
}

impl Crc64 {
    /// A fresh CRC (of the empty string: 0).
    pub fn new() -> Self {
        Crc64 {
            digest: Digest::new(CrcAlgorithm::Crc64Redis),
        }
    }
    /// Feed bytes.
    pub fn update(&mut self, data: &[u8]) {
        self.digest.update(data);
    }
    /// The CRC of everything fed so far.
    pub fn value(&self) -> u64 {
        self.digest.finalize()
    }
}

/// CRC-64/REDIS of a buffer.
pub fn crc64(data: &[u8]) -> u64 {
    crc_fast::checksum(CrcAlgorithm::Crc64Redis, data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_value() {
        assert_eq!(crc64(b"123456789"), 0xe9c6_d914_c4b8_d9ca);
        let mut c = Crc64::new();
        c.update(b"1234");
        c.update(b"56789");
        assert_eq!(c.value(), 0xe9c6_d914_c4b8_d9ca);
        assert_eq!(Crc64::new().value(), 0);
    }
}
