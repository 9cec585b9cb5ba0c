//! Fuzz target: `forkless_rdb::lzf::decompress` with an arbitrary claimed length (the first 4
//! bytes, little-endian) never panics nor allocates beyond 88x the compressed size, and whatever
//! it accepts has exactly the claimed length and survives a compress/decompress round trip.
#![no_main]

use forkless_rdb::lzf::{compress, decompress, MAX_EXPANSION};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 4 {
        return;
    }
    let claimed = u32::from_le_bytes([data[0], data[1], data[2], data[3]]) as usize;
    let body = &data[4..];
    if let Ok(out) = decompress(body, claimed) {
        assert_eq!(out.len(), claimed);
        assert!(out.len() <= body.len() * MAX_EXPANSION);
        if let Some(c) = compress(&out) {
            assert!(c.len() < out.len());
            assert_eq!(
                decompress(&c, out.len()).expect("our own compressed data"),
                out
            );
        }
    }
    // The body itself as plain data.
    if let Some(c) = compress(body) {
        assert_eq!(
            decompress(&c, body.len()).expect("our own compressed data"),
            body
        );
    }
});
