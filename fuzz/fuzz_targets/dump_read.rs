//! Fuzz target: `forkless_dump::read_jsonl` on arbitrary bytes returns entries or an error
//! naming a line, never panics; whatever it accepts writes back (`write_jsonl`) to a dump that
//! reads to the same entries, byte-identical when written again.
#![no_main]

use forkless_dump::{read_jsonl, write_jsonl, DumpError};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match read_jsonl(data) {
        Ok(entries) => {
            let mut out = Vec::new();
            write_jsonl(&mut out, &entries).expect("accepted entries are writable");
            let back = read_jsonl(&out[..]).expect("our own output reads back");
            assert_eq!(back, entries);
            let mut again = Vec::new();
            write_jsonl(&mut again, &back).expect("writable");
            assert_eq!(again, out);
        }
        Err(
            DumpError::Json { line, .. }
            | DumpError::Field { line, .. }
            | DumpError::DuplicateKey { line, .. },
        ) => {
            assert!(line >= 1 && line <= data.iter().filter(|&&b| b == b'\n').count() + 1);
        }
        Err(_) => {}
    }
});
