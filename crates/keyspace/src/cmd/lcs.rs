//! LCS (Redis 7.0.15 `t_string.c` `lcsCommand`): the longest common subsequence of two strings,
//! its length (LEN) or the matching ranges (IDX [MINMATCHLEN n] [WITHMATCHLEN]), computed with
//! the dynamic-programming table Redis uses. The table's size is checked against
//! `proto-max-bulk-len` before it is allocated, and the allocation itself is fallible, with
//! Redis's two error texts.

use crate::command::{CommandSpec, READONLY};
use crate::convert::parse_i64;
use crate::ctx::Ctx;
use crate::reply::Reply;

/// The commands of this module.
#[rustfmt::skip]
pub(crate) const COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("lcs", -3, READONLY, 1, 2, 1, lcs),
];

/// `proto-max-bulk-len`'s default: the largest transient table.
const MAX_TABLE_BYTES: u64 = 512 * 1024 * 1024;

fn lcs(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> Reply {
    let mut strs: [Vec<u8>; 2] = [Vec::new(), Vec::new()];
    for (i, k) in argv[1..3].iter().enumerate() {
        match ctx.get(k).as_deref() {
            None => {}
            Some(crate::value::Value::String(s)) => strs[i] = s.to_vec(),
            Some(_) => return Reply::err("ERR The specified keys must contain string values"),
        }
    }
    let (mut getlen, mut getidx, mut withmatchlen) = (false, false, false);
    let mut minmatchlen: i64 = 0;
    let mut j = 3;
    while j < argv.len() {
        let opt = argv[j];
        let more = argv.len() - 1 - j;
        if opt.eq_ignore_ascii_case(b"idx") {
            getidx = true;
        } else if opt.eq_ignore_ascii_case(b"len") {
            getlen = true;
        } else if opt.eq_ignore_ascii_case(b"withmatchlen") {
            withmatchlen = true;
        } else if opt.eq_ignore_ascii_case(b"minmatchlen") && more > 0 {
            match parse_i64(argv[j + 1]) {
                None => return Reply::not_integer(),
                Some(n) => minmatchlen = n.max(0),
            }
            j += 1;
        } else {
            return Reply::syntax_error();
        }
        j += 1;
    }
    if getlen && getidx {
        return Reply::err("ERR If you want both the length and indexes, please just use IDX.");
    }
    let (a, b) = (&strs[0], &strs[1]);
    if a.len() as u64 >= u64::from(u32::MAX) - 1 || b.len() as u64 >= u64::from(u32::MAX) - 1 {
        return Reply::err("ERR String too long for LCS");
    }
    let (alen, blen) = (a.len(), b.len());
    let cells = (alen as u64 + 1) * (blen as u64 + 1);
    if cells * 4 > MAX_TABLE_BYTES {
        return Reply::err(
            "ERR Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len",
        );
    }
    let mut t: Vec<u32> = Vec::new();
    if t.try_reserve_exact(cells as usize).is_err() {
        return Reply::err("ERR Insufficient memory, failed allocating transient memory for LCS");
    }
    t.resize(cells as usize, 0);
    let w = blen + 1;
    for i in 1..=alen {
        for k in 1..=blen {
            t[k + i * w] = if a[i - 1] == b[k - 1] {
                t[(k - 1) + (i - 1) * w] + 1
            } else {
                t[k + (i - 1) * w].max(t[(k - 1) + i * w])
            };
        }
    }
    let total = t[blen + alen * w];
    let computelcs = getidx || !getlen;
    let mut result = vec![0u8; if computelcs { total as usize } else { 0 }];
    let mut idx = total as usize;
    let mut matches: Vec<Reply> = Vec::new();
    // Ranges are tracked backward from the ends; `alen` in `ar.0` means "no range yet".
    let (mut ar, mut br) = ((alen, 0usize), (0usize, 0usize));
    let (mut i, mut k) = (alen, blen);
    while computelcs && i > 0 && k > 0 {
        let mut emit = false;
        if a[i - 1] == b[k - 1] {
            result[idx - 1] = a[i - 1];
            if ar.0 == alen {
                ar = (i - 1, i - 1);
                br = (k - 1, k - 1);
            } else if ar.0 == i && br.0 == k {
                ar.0 -= 1;
                br.0 -= 1;
            } else {
                emit = true;
            }
            if ar.0 == 0 || br.0 == 0 {
                emit = true;
            }
            idx -= 1;
            i -= 1;
            k -= 1;
        } else {
            if t[k + (i - 1) * w] > t[(k - 1) + i * w] {
                i -= 1;
            } else {
                k -= 1;
            }
            if ar.0 != alen {
                emit = true;
            }
        }
        if emit {
            let match_len = (ar.1 as i64) - (ar.0 as i64) + 1;
            if getidx && (minmatchlen == 0 || match_len >= minmatchlen) {
                let mut m = vec![
                    Reply::Array(vec![
                        Reply::Integer(ar.0 as i64),
                        Reply::Integer(ar.1 as i64),
                    ]),
                    Reply::Array(vec![
                        Reply::Integer(br.0 as i64),
                        Reply::Integer(br.1 as i64),
                    ]),
                ];
                if withmatchlen {
                    m.push(Reply::Integer(match_len));
                }
                matches.push(Reply::Array(m));
            }
            ar.0 = alen;
        }
    }
    if getidx {
        Reply::Array(vec![
            Reply::bulk("matches"),
            Reply::Array(matches),
            Reply::bulk("len"),
            Reply::Integer(i64::from(total)),
        ])
    } else if getlen {
        Reply::Integer(i64::from(total))
    } else {
        Reply::Bulk(result)
    }
}
