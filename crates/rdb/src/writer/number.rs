//! Number <-> text conversions exactly as Redis 7.0 does them, because they decide encodings.
//!
//! * [`parse_canonical_i64`] is Redis's `string2ll` (`util.c`), which listpack's
//!   `lpStringToInt64` repeats: a string is an integer only when it is the *canonical* decimal
//!   text of an `i64` (no sign but `-`, no leading zero, no spaces, no `-0`, 1 to 20 bytes).
//!   It decides RDB INT8/16/32 strings (`rdbTryIntegerEncoding`), listpack integer entries and
//!   intset membership.
//! * [`double_to_i64`] is `double2ll` (`util.c`): a double is stored as an integer when it lies in
//!   `[-2^62, 2^62]` and has no fractional part (so `-0.0` becomes `0`).
//! * [`d2string`] is `d2string` (`util.c`): `inf`/`-inf`, `0`/`-0`, integral values as integers,
//!   anything else with C's `%.17g`. Redis's `zzlInsertAt` (`t_zset.c`) stores listpack zset
//!   scores with it.

/// Redis's `string2ll`: the integer whose canonical decimal text is exactly `s`, if any.
pub fn parse_canonical_i64(s: &[u8]) -> Option<i64> {
    // LONG_STR_SIZE is 21: at most 20 bytes.
    if s.is_empty() || s.len() > 20 {
        return None;
    }
    if s == b"0" {
        return Some(0);
    }
    let (negative, digits) = match s[0] {
        b'-' => (true, &s[1..]),
        _ => (false, s),
    };
    let (&first, rest) = digits.split_first()?;
    if !(b'1'..=b'9').contains(&first) {
        return None;
    }
    let mut v = u64::from(first - b'0');
    for &c in rest {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
    }
    if negative {
        if v > 1u64 << 63 {
            return None;
        }
        Some((v as i64).wrapping_neg())
    } else {
        i64::try_from(v).ok()
    }
}

/// Redis's `double2ll`: `d` as an `i64` when it lies in `[-2^62, 2^62]` and is integral.
pub fn double_to_i64(d: f64) -> Option<i64> {
    // (double)(LLONG_MAX/2) rounds to 2^62.
    const LIMIT: f64 = 4_611_686_018_427_387_904.0;
    if !(-LIMIT..=LIMIT).contains(&d) {
        return None; // also NaN
    }
    let ll = d as i64;
    if ll as f64 == d {
        Some(ll)
    } else {
        None
    }
}

/// Redis's `d2string`: appends the text Redis stores for a zset score in a listpack
/// (and replies with): `nan`, `inf`, `-inf`, `0`, `-0`, an integer, or `%.17g`.
pub fn d2string(d: f64, out: &mut Vec<u8>) {
    if d.is_nan() {
        out.extend_from_slice(b"nan");
    } else if d.is_infinite() {
        out.extend_from_slice(if d < 0.0 { b"-inf" } else { b"inf" });
    } else if d == 0.0 {
        out.extend_from_slice(if d.is_sign_negative() { b"-0" } else { b"0" });
    } else if let Some(v) = double_to_i64(d) {
        out.extend_from_slice(v.to_string().as_bytes());
    } else {
        format_g17(d, out);
    }
}

/// C's `printf("%.17g", d)` for a finite, non-zero `d`.
///
/// `%.Pg` (P = 17) takes the exponent X of the `%.(P-1)e` form; when `-4 <= X < P` it prints
/// `%.(P-1-X)f`, else `%.(P-1)e`; then trailing zeros (and a trailing `.`) are removed. Both forms
/// carry the same 17 correctly rounded significant digits (round-half-even on exact ties, as glibc
/// and Rust's formatter both do), so we take them from Rust's `{:.16e}`.
fn format_g17(d: f64, out: &mut Vec<u8>) {
    const P: i32 = 17;
    let e_form = format!("{:.16e}", d);
    let Some((mantissa, exp)) = e_form.split_once('e') else {
        // Rust's `{:e}` always has an exponent; keep a readable fallback anyway.
        out.extend_from_slice(e_form.as_bytes());
        return;
    };
    let x: i32 = exp.parse().unwrap_or(0);
    let negative = mantissa.starts_with('-');
    let digits: Vec<u8> = mantissa.bytes().filter(u8::is_ascii_digit).collect();
    if negative {
        out.push(b'-');
    }
    if (-4..P).contains(&x) {
        if x >= 0 {
            let int_len = (x + 1) as usize;
            out.extend_from_slice(&digits[..int_len]);
            push_fraction(&digits[int_len..], out);
        } else {
            out.push(b'0');
            let mut frac = vec![b'0'; (-x - 1) as usize];
            frac.extend_from_slice(&digits);
            push_fraction(&frac, out);
        }
    } else {
        out.push(digits[0]);
        push_fraction(&digits[1..], out);
        out.push(b'e');
        out.push(if x < 0 { b'-' } else { b'+' });
        let abs = x.unsigned_abs();
        if abs < 10 {
            out.push(b'0');
        }
        out.extend_from_slice(abs.to_string().as_bytes());
    }
}

/// `.` + `frac` without trailing zeros, or nothing when that leaves no digits.
fn push_fraction(frac: &[u8], out: &mut Vec<u8>) {
    let end = frac.iter().rposition(|&c| c != b'0').map_or(0, |i| i + 1);
    if end > 0 {
        out.push(b'.');
        out.extend_from_slice(&frac[..end]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_integers() {
        for (s, v) in [
            ("0", Some(0)),
            ("127", Some(127)),
            ("-32768", Some(-32768)),
            ("9223372036854775807", Some(i64::MAX)),
            ("-9223372036854775808", Some(i64::MIN)),
            ("9223372036854775808", None),
            ("-9223372036854775809", None),
            ("007", None),
            ("-0", None),
            ("+1", None),
            (" 1", None),
            ("1 ", None),
            ("-", None),
            ("", None),
            ("12a", None),
            ("99999999999999999999", None),
            ("100000000000000000000", None),
        ] {
            assert_eq!(parse_canonical_i64(s.as_bytes()), v, "{s:?}");
        }
    }

    #[test]
    fn double2ll_edges() {
        assert_eq!(double_to_i64(-0.0), Some(0));
        assert_eq!(double_to_i64(3.0), Some(3));
        assert_eq!(double_to_i64(3.5), None);
        assert_eq!(double_to_i64(4_611_686_018_427_387_904.0), Some(1 << 62));
        assert_eq!(double_to_i64(4_611_686_018_427_389_952.0), None);
        assert_eq!(double_to_i64(f64::INFINITY), None);
        assert_eq!(double_to_i64(f64::NAN), None);
    }

    fn d2s(d: f64) -> String {
        let mut v = Vec::new();
        d2string(d, &mut v);
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn d2string_matches_printf() {
        // Expected values are glibc's printf("%.17g") output.
        assert_eq!(d2s(1.5), "1.5");
        assert_eq!(d2s(-2.25), "-2.25");
        assert_eq!(d2s(0.1), "0.10000000000000001");
        assert_eq!(d2s(5e-324), "4.9406564584124654e-324");
        assert_eq!(d2s(f64::MAX), "1.7976931348623157e+308");
        assert_eq!(d2s(1e20), "1e+20");
        assert_eq!(d2s(0.0001), "0.0001");
        assert_eq!(d2s(0.00001), "1.0000000000000001e-05");
        assert_eq!(d2s(123456.789), "123456.789");
        assert_eq!(d2s(2f64.powi(-25)), "2.9802322387695312e-08");
        assert_eq!(d2s(4_611_686_018_427_389_952.0), "4.61168601842739e+18");
        assert_eq!(d2s(1e16 + 0.0), "10000000000000000");
        assert_eq!(d2s(f64::INFINITY), "inf");
        assert_eq!(d2s(f64::NEG_INFINITY), "-inf");
        assert_eq!(d2s(-0.0), "-0");
        assert_eq!(d2s(0.0), "0");
    }
}
