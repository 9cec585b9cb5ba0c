//! Fuzz target: the RESP command scanner, the resumable command parser and the reply parser on
//! arbitrary bytes. Invariants: no panic; scanned items are contiguous and end at
//! `offset_after_last_complete`; feeding the same bytes in growing pieces gives the same
//! commands; every parsed command and reply re-encodes to bytes that parse to the same value.
#![no_main]

use forkless_resp::{
    encode_command, parse_reply, scan_commands, CommandParser, Item, Parsed, ParsedReply, Reply,
    RespError,
};
use libfuzzer_sys::fuzz_target;

fn has_line_break(r: &Reply) -> bool {
    match r {
        Reply::Simple(s) | Reply::Error(s) => s.contains(&b'\r') || s.contains(&b'\n'),
        Reply::Array(items) => items.iter().any(has_line_break),
        _ => false,
    }
}

fuzz_target!(|data: &[u8]| {
    // Whole-buffer scan.
    let scan = scan_commands(data);
    let mut pos = 0;
    let mut commands = Vec::new();
    for s in &scan.items {
        assert_eq!(s.start, pos);
        assert!(s.end > s.start);
        pos = s.end;
        if let Item::Command(argv) = &s.item {
            assert!(!argv.is_empty());
            commands.push(argv.iter().map(|a| a.to_vec()).collect::<Vec<_>>());
        }
    }
    assert_eq!(pos, scan.offset_after_last_complete);
    match &scan.tail {
        None => assert_eq!(pos, data.len()),
        Some(RespError::Incomplete { offset }) => assert_eq!(*offset, pos),
        Some(RespError::Protocol { offset, .. }) => {
            assert!(*offset >= pos && *offset <= data.len())
        }
        Some(_) => {}
    }

    // Growing pieces (step from the first byte) give the same commands up to the first error.
    let step = usize::from(data.first().copied().unwrap_or(1) % 7) + 1;
    let mut p = CommandParser::new();
    let (mut start, mut end) = (0, 0);
    let mut incremental = Vec::new();
    loop {
        match p.parse(&data[start..end]) {
            Ok(Parsed::Command { argv, consumed }) => {
                incremental.push(argv.to_owned_vec());
                start += consumed;
                end = end.max(start);
            }
            Ok(Parsed::Annotation { consumed, .. }) => {
                start += consumed;
                end = end.max(start);
            }
            Ok(Parsed::Incomplete) => {
                if end == data.len() {
                    break;
                }
                end = (end + step).min(data.len());
            }
            Err(_) => break,
        }
    }
    assert_eq!(incremental, commands);

    // Re-encoding parsed commands round-trips.
    let mut buf = Vec::new();
    for c in &commands {
        let refs: Vec<&[u8]> = c.iter().map(Vec::as_slice).collect();
        encode_command(&mut buf, &refs);
    }
    let again = scan_commands(&buf);
    assert_eq!(again.tail, None);
    assert_eq!(again.items.len(), commands.len());

    // Replies.
    if let Ok(ParsedReply::Complete { reply, consumed }) = parse_reply(data) {
        assert!(consumed <= data.len());
        let bytes = reply.to_bytes();
        match parse_reply(&bytes) {
            Ok(ParsedReply::Complete {
                reply: r2,
                consumed: c2,
            }) => {
                assert_eq!(c2, bytes.len());
                if !has_line_break(&reply) {
                    assert_eq!(r2, reply);
                }
            }
            other => panic!("re-encoded reply does not parse: {other:?}"),
        }
    }
});
