//! Property tests: encode → parse round trips, split at every byte boundary.

use forkless_resp::{
    encode_command, encode_command_iter, parse_reply, scan_commands, CommandParser, Item, Parsed,
    ParsedReply, Reply, RespError,
};
use proptest::prelude::*;

fn arg() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..8),
        // CR/LF/'$'/'*' heavy bytes to confuse a sloppy parser.
        proptest::collection::vec(
            prop_oneof![Just(b'\r'), Just(b'\n'), Just(b'$'), Just(b'*'), Just(b'#')],
            0..6
        ),
        proptest::collection::vec(any::<u8>(), 0..300),
    ]
}

fn command() -> impl Strategy<Value = Vec<Vec<u8>>> {
    proptest::collection::vec(arg(), 1..6)
}

fn reply() -> impl Strategy<Value = Reply> {
    let leaf = prop_oneof![
        "[a-zA-Z0-9 ]{0,10}".prop_map(|s| Reply::Simple(s.into_bytes())),
        "[a-zA-Z0-9 ]{0,10}".prop_map(|s| Reply::Error(s.into_bytes())),
        any::<i64>().prop_map(Reply::Integer),
        proptest::collection::vec(any::<u8>(), 0..20).prop_map(Reply::Bulk),
        Just(Reply::Null),
        Just(Reply::NullArray),
    ];
    leaf.prop_recursive(4, 32, 5, |inner| {
        proptest::collection::vec(inner, 0..5).prop_map(Reply::Array)
    })
}

/// Feed `input` to a parser one growing prefix at a time (the same bytes plus one more each
/// call), collecting every command; checks that a proper prefix never yields an item.
fn parse_growing(input: &[u8]) -> Vec<Vec<Vec<u8>>> {
    let mut p = CommandParser::new();
    let mut out = Vec::new();
    let mut start = 0;
    let mut end = start;
    while start < input.len() {
        match p.parse(&input[start..end]).expect("valid input") {
            Parsed::Command { argv, consumed } => {
                assert_eq!(
                    start + consumed,
                    end,
                    "an item completes exactly at its last byte"
                );
                out.push(argv.to_owned_vec());
                start += consumed;
            }
            Parsed::Annotation { consumed, .. } => start += consumed,
            Parsed::Incomplete => {
                assert!(end < input.len(), "incomplete at end of valid input");
                end += 1;
            }
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn commands_round_trip_at_every_split(cmds in proptest::collection::vec(command(), 1..4), ts in any::<u32>()) {
        let mut buf = Vec::new();
        for (i, c) in cmds.iter().enumerate() {
            if i == 1 {
                buf.extend_from_slice(format!("#TS:{ts}\r\n").as_bytes());
            }
            let refs: Vec<&[u8]> = c.iter().map(Vec::as_slice).collect();
            encode_command(&mut buf, &refs);
        }
        // The iterator variant encodes the same bytes.
        let mut again = Vec::new();
        for (i, c) in cmds.iter().enumerate() {
            if i == 1 {
                again.extend_from_slice(format!("#TS:{ts}\r\n").as_bytes());
            }
            encode_command_iter(&mut again, c);
        }
        prop_assert_eq!(&buf, &again);

        prop_assert_eq!(&parse_growing(&buf), &cmds);

        let whole = scan_commands(&buf);
        prop_assert_eq!(whole.tail, None);
        prop_assert_eq!(whole.offset_after_last_complete, buf.len());
        let scanned: Vec<Vec<Vec<u8>>> = whole.items.iter().filter_map(|s| match &s.item {
            Item::Command(a) => Some(a.iter().map(|x| x.to_vec()).collect()),
            Item::Annotation(t) => { assert_eq!(forkless_resp::annotation_timestamp(t), Some(i64::from(ts))); None }
        }).collect();
        prop_assert_eq!(&scanned, &cmds);

        // Every truncation: the complete items are a prefix, the tail says Incomplete, and the
        // offset is the end of the last complete item.
        for cut in 0..buf.len() {
            let s = scan_commands(&buf[..cut]);
            prop_assert_eq!(s.tail.clone(), if s.offset_after_last_complete == cut { None } else {
                Some(RespError::Incomplete { offset: s.offset_after_last_complete })
            });
            prop_assert_eq!(&s.items[..], &whole.items[..s.items.len()]);
            prop_assert_eq!(s.offset_after_last_complete, s.items.last().map_or(0, |i| i.end));
        }
    }

    #[test]
    fn replies_round_trip_at_every_split(r in reply()) {
        let bytes = r.to_bytes();
        for cut in 0..bytes.len() {
            prop_assert_eq!(parse_reply(&bytes[..cut]).unwrap(), ParsedReply::Incomplete);
        }
        let mut extended = bytes.clone();
        extended.extend_from_slice(b"+next\r\n");
        prop_assert_eq!(parse_reply(&extended).unwrap(), ParsedReply::Complete { reply: r, consumed: bytes.len() });
    }

    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..200)) {
        let s = scan_commands(&data);
        prop_assert!(s.offset_after_last_complete <= data.len());
        if let Some(RespError::Protocol { offset, .. }) = s.tail {
            prop_assert!(offset <= data.len());
        }
        let _ = parse_reply(&data);
    }
}
