//! The writer's output: a buffered sink with a running CRC-64 and byte count, and the RDB
//! primitive encodings written through it (`rdbSaveLen`, `rdbSaveRawString` with its integer
//! and LZF forms; see the parent module's "File layout").
//!
//! Problem: every byte of the file must pass through the checksum exactly once, in order,
//! whether it was buffered or (for a large blob) written straight through; and the LZF output
//! buffer, reused across values, must not keep the memory of one huge value.

use std::io::Write;

use super::lzf_compress::LzfCompressor;
use super::number::parse_canonical_i64;
use crate::constants::{ENC_INT16, ENC_INT32, ENC_INT8, ENC_LZF, LEN_32BIT, LEN_64BIT, LEN_ENCVAL};
use crate::crc::Crc64;
use crate::error::Result;

/// Internal buffer size; larger writes go straight through.
pub(super) const BUF_CAP: usize = 64 * 1024;

/// Buffered output with a running CRC and byte count.
pub(super) struct Sink<W: Write> {
    pub(super) w: W,
    pub(super) buf: Vec<u8>,
    pub(super) crc: Crc64,
    pub(super) checksum: bool,
    pub(super) written: u64,
}

impl<W: Write> Sink<W> {
    pub(super) fn flush_buf(&mut self) -> Result<()> {
        if !self.buf.is_empty() {
            if self.checksum {
                self.crc.update(&self.buf);
            }
            self.w.write_all(&self.buf)?;
            self.buf.clear();
        }
        Ok(())
    }

    pub(super) fn put(&mut self, b: &[u8]) -> Result<()> {
        self.written += b.len() as u64;
        if b.len() >= BUF_CAP {
            self.flush_buf()?;
            if self.checksum {
                self.crc.update(b);
            }
            self.w.write_all(b)?;
            return Ok(());
        }
        self.buf.extend_from_slice(b);
        if self.buf.len() >= BUF_CAP {
            self.flush_buf()?;
        }
        Ok(())
    }

    pub(super) fn put_u8(&mut self, b: u8) -> Result<()> {
        self.put(&[b])
    }

    /// `rdbSaveLen`.
    pub(super) fn put_len(&mut self, len: u64) -> Result<()> {
        if len < 1 << 6 {
            self.put_u8(len as u8)
        } else if len < 1 << 14 {
            self.put(&[((len >> 8) as u8) | 0x40, len as u8])
        } else if len <= u64::from(u32::MAX) {
            let mut b = [LEN_32BIT, 0, 0, 0, 0];
            b[1..].copy_from_slice(&(len as u32).to_be_bytes());
            self.put(&b)
        } else {
            let mut b = [LEN_64BIT, 0, 0, 0, 0, 0, 0, 0, 0];
            b[1..].copy_from_slice(&len.to_be_bytes());
            self.put(&b)
        }
    }

    /// `rdbSaveRawString`: integer, LZF or verbatim.
    pub(super) fn put_string(&mut self, lzf: &mut Lzf, compression: bool, s: &[u8]) -> Result<()> {
        if s.len() <= 11 {
            if let Some(v) = parse_canonical_i64(s) {
                const ENC: u8 = LEN_ENCVAL << 6;
                if let Ok(v) = i8::try_from(v) {
                    return self.put(&[ENC | ENC_INT8, v as u8]);
                } else if let Ok(v) = i16::try_from(v) {
                    let b = v.to_le_bytes();
                    return self.put(&[ENC | ENC_INT16, b[0], b[1]]);
                } else if let Ok(v) = i32::try_from(v) {
                    let b = v.to_le_bytes();
                    return self.put(&[ENC | ENC_INT32, b[0], b[1], b[2], b[3]]);
                }
            }
        }
        if compression && s.len() > 20 {
            if let Some(c) = lzf.compressor.compress_for_rdb(s, &mut lzf.out) {
                let clen = c.len() as u64;
                self.put_u8((LEN_ENCVAL << 6) | ENC_LZF)?;
                self.put_len(clen)?;
                self.put_len(s.len() as u64)?;
                self.put(c)?;
                lzf.trim();
                return Ok(());
            }
            lzf.trim();
        }
        self.put_len(s.len() as u64)?;
        self.put(s)
    }
}

/// LZF state kept across values.
pub(super) struct Lzf {
    pub(super) compressor: LzfCompressor,
    pub(super) out: Vec<u8>,
}

impl Lzf {
    /// Do not keep a huge output buffer after one huge value.
    pub(super) fn trim(&mut self) {
        if self.out.capacity() > 4 * BUF_CAP {
            self.out = Vec::new();
        }
    }
}
