//! The reader's byte source: exact reads from the caller's `io::Read` with a running offset and a
//! running CRC-64, plus the RDB primitives (length encoding, string encodings, doubles).
//!
//! Why exact reads and no read-ahead buffer of our own: `RdbReader::into_inner` must hand back the
//! underlying reader positioned right after the 8-byte checksum (an RDB-preamble AOF continues
//! with RESP there), so this layer never asks the inner reader for a byte it does not need. Callers
//! pass a `BufReader`, whose small reads are memory copies (static dispatch, no syscall). The CRC
//! is fed in chunks: small reads are staged in a buffer and hashed together, large ones hashed
//! directly.
//!
//! Formats (Redis `src/rdb.c`, 7.0.15: `rdbLoadLenByRef`, `rdbGenericLoadStringObject`,
//! `rdbLoadDoubleValue`, `rdbLoadBinaryDoubleValue`): see [`crate::constants`].

use std::io::{ErrorKind, Read};

use crate::constants::*;
use crate::crc::Crc64;
use crate::error::{RdbError, Result};
use crate::model::Bytes;

/// Reads up to this many bytes in one go; also the largest allocation made before bytes arrive.
const CHUNK: usize = 64 * 1024;
/// Staged CRC bytes are hashed once this many are pending.
const CRC_STAGE: usize = 16 * 1024;
/// Reads at least this long are hashed directly instead of staged.
const CRC_DIRECT: usize = 512;

/// A decoded RDB length or special string encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Len {
    /// A plain length.
    Len(u64),
    /// A special encoding (`ENC_INT8` .. `ENC_LZF`, or an unknown value).
    Enc(u8),
}

/// Exact-read source with offset and CRC tracking.
pub(crate) struct Source<R> {
    inner: R,
    offset: u64,
    crc: Option<Crc64>,
    staged: Vec<u8>,
    /// Reused buffer for compressed bytes.
    scratch: Vec<u8>,
}

impl<R: Read> Source<R> {
    pub(crate) fn new(inner: R) -> Self {
        Source {
            inner,
            offset: 0,
            crc: None,
            staged: Vec::new(),
            scratch: Vec::new(),
        }
    }

    /// Start computing the CRC (from the very first byte: call before reading anything).
    pub(crate) fn enable_crc(&mut self) {
        self.crc = Some(Crc64::new());
        self.staged = Vec::with_capacity(CRC_STAGE + CRC_DIRECT);
    }

    /// Stop feeding the CRC (before reading the checksum itself) and return its value.
    pub(crate) fn finish_crc(&mut self) -> Option<u64> {
        let mut crc = self.crc.take()?;
        crc.update(&self.staged);
        self.staged = Vec::new();
        Some(crc.value())
    }

    pub(crate) fn offset(&self) -> u64 {
        self.offset
    }

    pub(crate) fn into_inner(self) -> R {
        self.inner
    }

    #[inline]
    fn feed(&mut self, data: &[u8]) {
        if let Some(crc) = &mut self.crc {
            if data.len() >= CRC_DIRECT {
                if !self.staged.is_empty() {
                    crc.update(&self.staged);
                    self.staged.clear();
                }
                crc.update(data);
            } else {
                self.staged.extend_from_slice(data);
                if self.staged.len() >= CRC_STAGE {
                    crc.update(&self.staged);
                    self.staged.clear();
                }
            }
        }
    }

    /// Fill `buf` exactly, or fail with `UnexpectedEof` naming `what` and the offset where the
    /// missing bytes start.
    pub(crate) fn read_exact(&mut self, buf: &mut [u8], what: &str) -> Result<()> {
        let mut filled = 0;
        while filled < buf.len() {
            match self.inner.read(&mut buf[filled..]) {
                Ok(0) => {
                    let off = self.offset + filled as u64;
                    self.offset = off;
                    return Err(RdbError::UnexpectedEof {
                        offset: off,
                        expected: what.to_string(),
                    });
                }
                Ok(n) => filled += n,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(RdbError::Io(e)),
            }
        }
        self.offset += buf.len() as u64;
        self.feed(buf);
        Ok(())
    }

    #[inline]
    pub(crate) fn read_u8(&mut self, what: &str) -> Result<u8> {
        let mut b = [0u8; 1];
        self.read_exact(&mut b, what)?;
        Ok(b[0])
    }

    pub(crate) fn read_array<const N: usize>(&mut self, what: &str) -> Result<[u8; N]> {
        let mut b = [0u8; N];
        self.read_exact(&mut b, what)?;
        Ok(b)
    }

    /// Read `n` bytes into a new vector that grows as bytes really arrive (a corrupt length of
    /// 2^40 fails at the end of the input, having allocated no more than about twice the input).
    pub(crate) fn read_vec(&mut self, n: u64, what: &str) -> Result<Vec<u8>> {
        let mut v = Vec::new();
        self.read_into(n, &mut v, what)?;
        Ok(v)
    }

    /// [`Source::read_vec`] into a reused vector (cleared first).
    pub(crate) fn read_into(&mut self, n: u64, v: &mut Vec<u8>, what: &str) -> Result<()> {
        v.clear();
        if n <= CHUNK as u64 {
            v.resize(n as usize, 0);
            return self.read_exact(v, what);
        }
        // `take(n).read_to_end` grows the vector as bytes arrive (doubling, so at most about
        // twice what was really read) and reads in large steps.
        v.reserve(CHUNK);
        let got = (&mut self.inner)
            .take(n)
            .read_to_end(v)
            .map_err(RdbError::Io)?;
        self.offset += got as u64;
        self.feed(v);
        if (got as u64) < n {
            return Err(RdbError::UnexpectedEof {
                offset: self.offset,
                expected: what.to_string(),
            });
        }
        Ok(())
    }

    /// Read and discard `n` bytes (still fed to the CRC).
    pub(crate) fn skip(&mut self, n: u64, what: &str) -> Result<()> {
        let mut buf = [0u8; 4096];
        let mut remaining = n;
        while remaining > 0 {
            let step = remaining.min(buf.len() as u64) as usize;
            self.read_exact(&mut buf[..step], what)?;
            remaining -= step as u64;
        }
        Ok(())
    }

    /// An rdb length or special encoding (`rdbLoadLenByRef`): 6-bit, 14-bit, 32/64-bit big-endian.
    pub(crate) fn read_len_or_enc(&mut self, what: &str) -> Result<Len> {
        let at = self.offset;
        let b0 = self.read_u8(what)?;
        match b0 >> 6 {
            LEN_6BIT => Ok(Len::Len(u64::from(b0 & 0x3f))),
            LEN_14BIT => {
                let b1 = self.read_u8(what)?;
                Ok(Len::Len((u64::from(b0 & 0x3f) << 8) | u64::from(b1)))
            }
            LEN_ENCVAL => Ok(Len::Enc(b0 & 0x3f)),
            _ => match b0 {
                LEN_32BIT => Ok(Len::Len(u64::from(u32::from_be_bytes(
                    self.read_array(what)?,
                )))),
                LEN_64BIT => Ok(Len::Len(u64::from_be_bytes(self.read_array(what)?))),
                _ => Err(RdbError::Corrupt {
                    offset: at,
                    key: None,
                    what: format!("unknown length encoding {b0:#04x} reading {what}"),
                }),
            },
        }
    }

    /// A plain rdb length (a special encoding here is corrupt).
    pub(crate) fn read_len(&mut self, what: &str) -> Result<u64> {
        let at = self.offset;
        match self.read_len_or_enc(what)? {
            Len::Len(l) => Ok(l),
            Len::Enc(e) => Err(RdbError::Corrupt {
                offset: at,
                key: None,
                what: format!("expected a length for {what}, found string encoding {e}"),
            }),
        }
    }

    /// An rdb string (`rdbGenericLoadStringObject`): raw, INT8/16/32 (as decimal text) or LZF.
    pub(crate) fn read_string(&mut self, what: &str) -> Result<Bytes> {
        let at = self.offset;
        match self.read_len_or_enc(what)? {
            Len::Len(n) => self.read_vec(n, what),
            Len::Enc(ENC_INT8) => Ok(i64::from(self.read_u8(what)? as i8)
                .to_string()
                .into_bytes()),
            Len::Enc(ENC_INT16) => Ok(i64::from(i16::from_le_bytes(self.read_array(what)?))
                .to_string()
                .into_bytes()),
            Len::Enc(ENC_INT32) => Ok(i64::from(i32::from_le_bytes(self.read_array(what)?))
                .to_string()
                .into_bytes()),
            Len::Enc(ENC_LZF) => {
                let clen = self.read_len(what)?;
                let ulen = self.read_len(what)?;
                let data_at = self.offset;
                // Refuse impossible lengths before reading (or allocating) anything.
                let max = clen.saturating_mul(crate::lzf::MAX_EXPANSION as u64);
                if ulen > max || (ulen == 0) != (clen == 0) || usize::try_from(ulen).is_err() {
                    return Err(RdbError::Corrupt {
                        offset: at,
                        key: None,
                        what: format!(
                            "LZF string claims {ulen} bytes from {clen} compressed bytes ({what})"
                        ),
                    });
                }
                let mut data = std::mem::take(&mut self.scratch);
                let r = self.read_into(clen, &mut data, what);
                let mut out = Vec::new();
                let r = r.and_then(|()| {
                    super::unlzf::decompress_into(&data, ulen as usize, &mut out).map_err(|e| {
                        RdbError::Corrupt {
                            offset: data_at,
                            key: None,
                            what: format!("invalid LZF data ({e:?}, {what})"),
                        }
                    })
                });
                // Keep a modest scratch buffer for the next compressed string.
                if data.capacity() <= 1 << 20 {
                    self.scratch = data;
                }
                r.map(|()| out)
            }
            Len::Enc(e) => Err(RdbError::Corrupt {
                offset: at,
                key: None,
                what: format!("unknown string encoding {e} reading {what}"),
            }),
        }
    }

    /// Skip an rdb string without keeping it (LZF data is skipped compressed).
    pub(crate) fn skip_string(&mut self, what: &str) -> Result<()> {
        let at = self.offset;
        match self.read_len_or_enc(what)? {
            Len::Len(n) => self.skip(n, what),
            Len::Enc(ENC_INT8) => self.skip(1, what),
            Len::Enc(ENC_INT16) => self.skip(2, what),
            Len::Enc(ENC_INT32) => self.skip(4, what),
            Len::Enc(ENC_LZF) => {
                let clen = self.read_len(what)?;
                let _ulen = self.read_len(what)?;
                self.skip(clen, what)
            }
            Len::Enc(e) => Err(RdbError::Corrupt {
                offset: at,
                key: None,
                what: format!("unknown string encoding {e} reading {what}"),
            }),
        }
    }

    /// An ASCII double (`rdbLoadDoubleValue`): 1-byte length, 253 NaN, 254 +inf, 255 -inf.
    pub(crate) fn read_ascii_double(&mut self, what: &str) -> Result<f64> {
        let at = self.offset;
        let len = self.read_u8(what)?;
        match len {
            253 => Ok(f64::NAN),
            254 => Ok(f64::INFINITY),
            255 => Ok(f64::NEG_INFINITY),
            n => {
                let mut buf = [0u8; 252];
                let s = &mut buf[..usize::from(n)];
                self.read_exact(s, what)?;
                parse_double(s).ok_or_else(|| RdbError::Corrupt {
                    offset: at,
                    key: None,
                    what: format!("invalid double {:?} ({what})", String::from_utf8_lossy(s)),
                })
            }
        }
    }

    /// A binary little-endian IEEE 754 double (`rdbLoadBinaryDoubleValue`).
    pub(crate) fn read_binary_double(&mut self, what: &str) -> Result<f64> {
        Ok(f64::from_le_bytes(self.read_array(what)?))
    }
}

/// Parse a double as Redis's `strtod`-based readers accept it ("inf", "-inf", "1.5e3", ...).
pub(crate) fn parse_double(s: &[u8]) -> Option<f64> {
    let t = std::str::from_utf8(s).ok()?.trim();
    if t.is_empty() {
        return None;
    }
    t.parse::<f64>().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn src(b: &[u8]) -> Source<&[u8]> {
        Source::new(b)
    }

    #[test]
    fn lengths() {
        assert_eq!(src(&[0x05]).read_len("x").unwrap(), 5);
        assert_eq!(src(&[0x41, 0x02]).read_len("x").unwrap(), 0x102);
        assert_eq!(src(&[0x80, 0, 1, 0, 0]).read_len("x").unwrap(), 0x10000);
        assert_eq!(
            src(&[0x81, 0, 0, 0, 1, 0, 0, 0, 0]).read_len("x").unwrap(),
            1 << 32
        );
        assert!(matches!(
            src(&[0x82]).read_len("x"),
            Err(RdbError::Corrupt { .. })
        ));
        assert!(matches!(
            src(&[0xC0]).read_len("x"),
            Err(RdbError::Corrupt { .. })
        ));
        assert!(matches!(
            src(&[0x80, 0]).read_len("x"),
            Err(RdbError::UnexpectedEof { offset: 2, .. })
        ));
    }

    #[test]
    fn strings() {
        assert_eq!(src(&[0xC0, 0xff]).read_string("s").unwrap(), b"-1");
        assert_eq!(
            src(&[0xC1, 0x00, 0x80]).read_string("s").unwrap(),
            b"-32768"
        );
        assert_eq!(
            src(&[0xC2, 0xff, 0xff, 0xff, 0x7f])
                .read_string("s")
                .unwrap(),
            b"2147483647"
        );
        assert_eq!(
            src(&[0x03, b'a', b'b', b'c']).read_string("s").unwrap(),
            b"abc"
        );
        assert!(matches!(
            src(&[0xC4]).read_string("s"),
            Err(RdbError::Corrupt { .. })
        ));
        let data = vec![b'q'; 1000];
        let c = crate::lzf::compress(&data).unwrap();
        let mut b = vec![0xC3, 0x80];
        b.extend_from_slice(&(c.len() as u32).to_be_bytes());
        b.extend_from_slice(&[0x80, 0, 0, 0x03, 0xE8]);
        b.extend_from_slice(&c);
        assert_eq!(src(&b).read_string("s").unwrap(), data);
        // Claimed uncompressed length beyond what the compressed bytes can give: refused at once.
        let b = [0xC3, 0x01, 0x81, 0, 0, 1, 0, 0, 0, 0, 0];
        assert!(matches!(
            src(&b).read_string("s"),
            Err(RdbError::Corrupt { .. })
        ));
        // Huge raw string with little input: EOF, not an allocation of the claimed size.
        let b = [0x81, 0, 0, 1, 0, 0, 0, 0, 0, b'a', b'b'];
        assert!(matches!(
            src(&b).read_string("s"),
            Err(RdbError::UnexpectedEof { .. })
        ));
        let mut s = src(&[0x02, b'h', b'i', 0xC0, 5, 0x01, b'z']);
        s.skip_string("s").unwrap();
        s.skip_string("s").unwrap();
        assert_eq!(s.read_string("s").unwrap(), b"z");
        assert_eq!(s.offset(), 7);
    }

    #[test]
    fn doubles_and_crc() {
        assert_eq!(src(&[254]).read_ascii_double("d").unwrap(), f64::INFINITY);
        assert_eq!(
            src(&[255]).read_ascii_double("d").unwrap(),
            f64::NEG_INFINITY
        );
        assert!(src(&[253]).read_ascii_double("d").unwrap().is_nan());
        assert_eq!(src(b"\x041.25").read_ascii_double("d").unwrap(), 1.25);
        assert!(src(b"\x02zz").read_ascii_double("d").is_err());
        assert_eq!(
            src(&1.5f64.to_le_bytes()).read_binary_double("d").unwrap(),
            1.5
        );
        let data: Vec<u8> = (0..20000u32).map(|i| (i * 7) as u8).collect();
        let mut s = src(&data);
        s.enable_crc();
        let mut small = [0u8; 3];
        s.read_exact(&mut small, "x").unwrap();
        s.read_vec(1000, "x").unwrap();
        s.skip(18997, "x").unwrap();
        assert_eq!(s.finish_crc(), Some(crate::crc::crc64(&data)));
    }
}
