//! Rough throughput of the command encoder and parsers (the criterion benches live in
//! `benches/`): `cargo run --release -p forkless-resp --example throughput [N]`.
//!
//! Encodes N `SET key:<i> <100-byte value>` commands into one buffer, then scans it with
//! `scan_commands` and with the resumable `CommandParser` fed in 4 KiB pieces.

use std::time::Instant;

use forkless_resp::{encode_command, scan_commands, CommandParser, Parsed};

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let value = vec![b'v'; 100];
    let mut key = Vec::with_capacity(32);
    let mut buf = Vec::new();
    let t = Instant::now();
    for i in 0..n {
        key.clear();
        key.extend_from_slice(b"key:");
        forkless_resp::write_u64(&mut key, i as u64);
        encode_command(&mut buf, &[b"SET", &key, &value]);
    }
    let enc = t.elapsed();
    let mb = buf.len() as f64 / 1e6;
    println!(
        "encode: {n} commands, {mb:.1} MB in {enc:?} ({:.2} M cmd/s, {:.0} MB/s)",
        n as f64 / enc.as_secs_f64() / 1e6,
        mb / enc.as_secs_f64()
    );

    let t = Instant::now();
    let scan = scan_commands(&buf);
    let sc = t.elapsed();
    assert_eq!(scan.items.len(), n);
    println!(
        "scan_commands: {:.2} M cmd/s, {:.0} MB/s",
        n as f64 / sc.as_secs_f64() / 1e6,
        mb / sc.as_secs_f64()
    );

    // Streaming: the buffer arrives 4 KiB at a time; complete commands are consumed at once.
    let t = Instant::now();
    let mut p = CommandParser::new();
    let (mut start, mut end, mut count) = (0, 0, 0usize);
    loop {
        match p.parse(&buf[start..end]).expect("valid input") {
            Parsed::Command { consumed, .. } | Parsed::Annotation { consumed, .. } => {
                count += 1;
                start += consumed;
            }
            Parsed::Incomplete if end == buf.len() => break,
            Parsed::Incomplete => end = (end + 4096).min(buf.len()),
        }
    }
    let st = t.elapsed();
    assert_eq!(count, n);
    println!(
        "CommandParser (4 KiB pieces): {:.2} M cmd/s, {:.0} MB/s",
        n as f64 / st.as_secs_f64() / 1e6,
        mb / st.as_secs_f64()
    );
}
