//! Glob-style pattern matching for KEYS and SCAN MATCH.
//!
//! Problem: KEYS/SCAN must select exactly the keys Redis 7.0 selects, quirks included. This is
//! the algorithm of Redis's `stringmatchlen` (`util.c`, 7.0.15): `*`, `?`, `[...]` classes with
//! `^` negation, `a-z` ranges (reversed ranges swapped, bytes compared as signed C `char`s) and
//! `\` escapes, an unterminated class ending at the pattern's end, and the "skip longer matches"
//! cut that keeps `*` from going exponential. Difference: recursion is capped at
//! [`MAX_DEPTH`] nested stars (Redis 7.0 has no cap and can overflow its stack); deeper patterns
//! do not match.

/// Maximum number of nested `*` expansions before the match gives up (returns false).
pub const MAX_DEPTH: usize = 10_000;

/// True when `s` matches the glob `pattern` (case-sensitive unless `nocase`).
pub fn matches(pattern: &[u8], s: &[u8], nocase: bool) -> bool {
    let mut skip_longer = false;
    match_impl(pattern, s, nocase, &mut skip_longer, 0)
}

fn lower(c: i32) -> i32 {
    if (i32::from(b'A')..=i32::from(b'Z')).contains(&c) {
        c + 32
    } else {
        c
    }
}

/// A pattern byte as C's signed `char`, or 0 past the end (C's terminating NUL).
fn at(p: &[u8], i: usize) -> i32 {
    p.get(i).map_or(0, |&b| i32::from(b as i8))
}

fn match_impl(p: &[u8], s: &[u8], nocase: bool, skip_longer: &mut bool, depth: usize) -> bool {
    if depth > MAX_DEPTH {
        return false;
    }
    let (mut pi, mut si) = (0usize, 0usize);
    while pi < p.len() && si < s.len() {
        let sc = i32::from(s[si] as i8);
        match p[pi] {
            b'*' => {
                while pi + 1 < p.len() && p[pi + 1] == b'*' {
                    pi += 1;
                }
                if pi + 1 == p.len() {
                    return true;
                }
                while si < s.len() {
                    if match_impl(&p[pi + 1..], &s[si..], nocase, skip_longer, depth + 1) {
                        return true;
                    }
                    if *skip_longer {
                        return false;
                    }
                    si += 1;
                }
                *skip_longer = true;
                return false;
            }
            b'?' => si += 1,
            b'[' => {
                pi += 1;
                let not = at(p, pi) == i32::from(b'^');
                if not {
                    pi += 1;
                }
                let mut matched = false;
                loop {
                    let remaining = p.len().saturating_sub(pi);
                    if at(p, pi) == i32::from(b'\\') && remaining >= 2 {
                        pi += 1;
                        if at(p, pi) == sc {
                            matched = true;
                        }
                    } else if at(p, pi) == i32::from(b']') {
                        break;
                    } else if remaining == 0 {
                        pi -= 1;
                        break;
                    } else if remaining >= 3 && at(p, pi + 1) == i32::from(b'-') {
                        let (mut start, mut end, mut c) = (at(p, pi), at(p, pi + 2), sc);
                        if start > end {
                            std::mem::swap(&mut start, &mut end);
                        }
                        if nocase {
                            start = lower(start);
                            end = lower(end);
                            c = lower(c);
                        }
                        pi += 2;
                        if c >= start && c <= end {
                            matched = true;
                        }
                    } else if (!nocase && at(p, pi) == sc)
                        || (nocase && lower(at(p, pi)) == lower(sc))
                    {
                        matched = true;
                    }
                    pi += 1;
                }
                if not {
                    matched = !matched;
                }
                if !matched {
                    return false;
                }
                si += 1;
            }
            other => {
                let mut pc = i32::from(other as i8);
                if other == b'\\' && p.len() - pi >= 2 {
                    pi += 1;
                    pc = at(p, pi);
                }
                let eq = if nocase {
                    lower(pc) == lower(sc)
                } else {
                    pc == sc
                };
                if !eq {
                    return false;
                }
                si += 1;
            }
        }
        pi += 1;
        if si == s.len() {
            while pi < p.len() && p[pi] == b'*' {
                pi += 1;
            }
            break;
        }
    }
    pi >= p.len() && si == s.len()
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn redis_glob_cases() {
        let yes =
            |p: &str, s: &str| assert!(matches(p.as_bytes(), s.as_bytes(), false), "{p} ~ {s}");
        let no =
            |p: &str, s: &str| assert!(!matches(p.as_bytes(), s.as_bytes(), false), "{p} !~ {s}");
        // The matcher itself never matches an empty string (KEYS and SCAN special-case "*").
        no("*", "");
        yes("*", "abc");
        yes("a*", "a");
        yes("a*c", "abbbc");
        no("a*c", "abbb");
        no("*b", "");
        yes("h?llo", "hello");
        no("h?llo", "hllo");
        yes("h[ae]llo", "hallo");
        no("h[ae]llo", "hillo");
        yes("h[^e]llo", "hallo");
        no("h[^e]llo", "hello");
        yes("h[a-b]llo", "hbllo");
        yes("h[b-a]llo", "hallo");
        yes("h\\*llo", "h*llo");
        no("h\\*llo", "hello");
        yes("[abc", "a");
        no("[abc", "d");
        yes("a\\", "a\\");
        yes("[\\]]", "]");
        yes("**a", "a");
        no("", "a");
        yes("", "");
        no("a", "");
    }

    #[test]
    fn nocase_and_deep_patterns() {
        assert!(matches(b"HE*", b"hello", true));
        assert!(!matches(b"HE*", b"hello", false));
        let deep: Vec<u8> = b"*a".iter().copied().cycle().take(2 * 20_000).collect();
        let s = vec![b'b'; 100];
        assert!(!matches(&deep, &s, false));
    }
}
