//! Fuzz target: the streaming RDB reader over arbitrary bytes must return items or an error,
//! never panic, hang or allocate beyond what the input justifies. Both checksum modes: with
//! verification off, inputs that reach the EOF opcode also exercise the trailer path.
#![no_main]

use forkless_rdb::{RdbReader, ReadOptions};
use libfuzzer_sys::fuzz_target;

fn drain(data: &[u8], verify_checksum: bool) {
    let Ok(mut r) = RdbReader::with_options(data, ReadOptions { verify_checksum }) else {
        return;
    };
    let mut last = r.offset();
    while let Ok(Some(_)) = r.next_item() {
        // Progress: every item consumes input (no infinite loop on a zero-length item).
        let now = r.offset();
        assert!(now > last, "item without progress at offset {last}");
        assert!(now <= data.len() as u64);
        last = now;
    }
}

fuzz_target!(|data: &[u8]| {
    drain(data, true);
    drain(data, false);
});
