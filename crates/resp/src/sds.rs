//! Redis's word splitting and quoting: `sdssplitargs` (parse) and `sdscatrepr` (write), used for
//! AOF manifest lines and file names and for a Lua function library's `#!lua name=...` line.
//!
//! A line is split into words exactly as Redis 7.0's `sdssplitargs` (`src/sds.c`) does:
//! blanks separate words; `"double quotes"` understand `\xHH`, `\n`, `\r`, `\t`, `\b`, `\a` and
//! `\<any>`; `'single quotes'` understand only `\'`; a closing quote must be followed by a blank or
//! the end of the line. A file name is written quoted (`sdscatrepr`) exactly when `sdsneedsrepr`
//! says so: it holds a byte that is not printable ASCII, a blank, `\` or `"`.

/// C's `isspace` in the "C" locale.
fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// C's `isprint` in the "C" locale (bytes >= 0x80 are not printable: Redis's `char` is signed).
fn is_print(c: u8) -> bool {
    (0x20..0x7f).contains(&c)
}

fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Split `line` into words like `sdssplitargs`. `None` on unbalanced quotes or a closing quote
/// followed by something other than a blank (where Redis returns NULL).
pub fn split_args(line: &[u8]) -> Option<Vec<Vec<u8>>> {
    // Redis works on a NUL-terminated C string: nothing after a NUL byte is seen.
    let line = match line.iter().position(|&b| b == 0) {
        Some(n) => &line[..n],
        None => line,
    };
    let at = |i: usize| -> u8 { line.get(i).copied().unwrap_or(0) };
    let mut words = Vec::new();
    let mut p = 0usize;
    loop {
        while p < line.len() && is_space(line[p]) {
            p += 1;
        }
        if p >= line.len() {
            return Some(words);
        }
        let (mut inq, mut insq, mut done) = (false, false, false);
        let mut cur = Vec::new();
        while !done {
            let c = at(p);
            if inq {
                if c == b'\\' && at(p + 1) == b'x' {
                    if let (Some(h), Some(l)) = (hex_val(at(p + 2)), hex_val(at(p + 3))) {
                        cur.push(h * 16 + l);
                        p += 3;
                    } else {
                        // `\x` without two hex digits: the generic escape keeps the `x`.
                        p += 1;
                        cur.push(b'x');
                    }
                } else if c == b'\\' && at(p + 1) != 0 {
                    p += 1;
                    cur.push(match at(p) {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'b' => 0x08,
                        b'a' => 0x07,
                        other => other,
                    });
                } else if c == b'"' {
                    if at(p + 1) != 0 && !is_space(at(p + 1)) {
                        return None;
                    }
                    done = true;
                } else if c == 0 {
                    return None;
                } else {
                    cur.push(c);
                }
            } else if insq {
                if c == b'\\' && at(p + 1) == b'\'' {
                    p += 1;
                    cur.push(b'\'');
                } else if c == b'\'' {
                    if at(p + 1) != 0 && !is_space(at(p + 1)) {
                        return None;
                    }
                    done = true;
                } else if c == 0 {
                    return None;
                } else {
                    cur.push(c);
                }
            } else {
                match c {
                    b' ' | b'\n' | b'\r' | b'\t' | 0 => done = true,
                    b'"' => inq = true,
                    b'\'' => insq = true,
                    other => cur.push(other),
                }
            }
            if at(p) != 0 {
                p += 1;
            }
        }
        words.push(cur);
    }
}

/// Whether `sdsneedsrepr` would quote `s`.
pub fn needs_repr(s: &[u8]) -> bool {
    s.iter()
        .any(|&c| c == b'\\' || c == b'"' || !is_print(c) || is_space(c))
}

/// `s` quoted like `sdscatrepr`: `"..."` with `\\`, `\"`, `\n`, `\r`, `\t`, `\a`, `\b` and `\xHH`.
pub fn repr(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len() + 2);
    out.push(b'"');
    for &c in s {
        match c {
            b'\\' | b'"' => {
                out.push(b'\\');
                out.push(c);
            }
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x07 => out.extend_from_slice(b"\\a"),
            0x08 => out.extend_from_slice(b"\\b"),
            c if is_print(c) => out.push(c),
            c => out.extend_from_slice(format!("\\x{c:02x}").as_bytes()),
        }
    }
    out.push(b'"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Option<Vec<String>> {
        split_args(s.as_bytes()).map(|v| {
            v.into_iter()
                .map(|w| String::from_utf8(w).unwrap())
                .collect()
        })
    }

    #[test]
    fn plain_words_and_blanks() {
        assert_eq!(
            words("  file a  seq 1\ttype b\r\n").unwrap(),
            ["file", "a", "seq", "1", "type", "b"]
        );
        assert_eq!(words("").unwrap(), Vec::<String>::new());
    }

    #[test]
    fn quotes_and_escapes() {
        assert_eq!(
            words(r#"file "a b\x41\n" x"#).unwrap(),
            ["file", "a bA\n", "x"]
        );
        assert_eq!(words(r"'it\'s' z").unwrap(), ["it's", "z"]);
        assert_eq!(words(r#"a"b c" d"#).unwrap(), ["ab c", "d"]);
        assert!(words(r#""unterminated"#).is_none());
        assert!(words(r#""closed"x"#).is_none());
        assert!(words("'a'b").is_none());
    }

    #[test]
    fn repr_round_trips_through_split() {
        let names: [&[u8]; 4] = [
            b"plain.aof",
            b"with space.aof",
            b"q\"uo\\te\r\n\t\x07\x08",
            b"\x00\xff\x80bin",
        ];
        for n in names {
            let quoted = repr(n);
            let back = split_args(&quoted).unwrap();
            // A NUL byte cannot survive a C string: Redis itself never writes one (sdsnew).
            if !n.contains(&0) {
                assert_eq!(
                    back,
                    vec![n.to_vec()],
                    "{:?}",
                    String::from_utf8_lossy(&quoted)
                );
            }
        }
        assert!(!needs_repr(b"appendonly.aof.1.incr.aof"));
        assert!(needs_repr(b"a b"));
        assert!(needs_repr(b"\xc3\xa9"));
    }
}
