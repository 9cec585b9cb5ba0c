//! Conversions: numbers to and from the text Redis 7.0 accepts and prints, and values to and from
//! the owned RDB model (`forkless_rdb::model`).
//!
//! Problem: replies and stored values must be byte-identical to Redis 7.0, whose number parsing
//! and printing come from `util.c`: `string2ll` (strict decimal `i64`), `string2d`/`string2ld`
//! (`strtod`/`strtold` refusing spaces, trailing bytes, NaN and overflow), `%.17g` for double
//! replies (`addReplyDouble`) and `ld2string(LD_STR_HUMAN)` (`%.17Lf` minus trailing zeros) for
//! INCRBYFLOAT. This module is the `f64` and integer side; where Redis computes in C `long double`
//! (INCRBYFLOAT, HINCRBYFLOAT: x87 80-bit parsing, addition and printing) the sibling module
//! `ldouble` emulates it exactly (sorted-set scores are C `double` in Redis too: `f64` here).

use forkless_rdb::model;

use crate::types::{Hash, List, Set, Stream, ZSet};
use crate::value::Value;

/// Parse a strict decimal `i64` as Redis's `string2ll`: an optional `-`, no leading zeros, no
/// `+`, no spaces, in range.
pub fn parse_i64(s: &[u8]) -> Option<i64> {
    if s.is_empty() || s.len() > 20 {
        return None;
    }
    if s == b"0" {
        return Some(0);
    }
    let (neg, digits) = match s[0] {
        b'-' => (true, &s[1..]),
        _ => (false, s),
    };
    match digits.first() {
        Some(b'1'..=b'9') => {}
        _ => return None,
    }
    let mut v: u64 = 0;
    for &c in digits {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
    }
    if neg {
        if v > (i64::MAX as u64) + 1 {
            None
        } else {
            Some((v as i64).wrapping_neg())
        }
    } else {
        i64::try_from(v).ok()
    }
}

/// Parse a double as Redis's `string2d` (`strtod`): no leading space, no trailing bytes, no NaN,
/// no overflow to infinity and no underflow to zero (unless the text spells an infinity or a
/// zero).
pub fn parse_f64(s: &[u8]) -> Option<f64> {
    if s.is_empty() || s.len() >= 5 * 1024 || s[0].is_ascii_whitespace() {
        return None;
    }
    let text = std::str::from_utf8(s).ok()?;
    let v: f64 = text.parse().ok()?;
    if v.is_nan() {
        return None;
    }
    let lower = text.to_ascii_lowercase();
    if v.is_infinite() && !lower.contains("inf") {
        return None; // ERANGE overflow
    }
    if v == 0.0 {
        // ERANGE underflow: a zero result from a mantissa with a non-zero digit.
        let mantissa = lower.split('e').next().unwrap_or("");
        if mantissa.bytes().any(|c| (b'1'..=b'9').contains(&c)) {
            return None;
        }
    }
    Some(v)
}

/// Format a double as `printf("%.17g")` does (glibc), `inf`/`-inf` for infinities: the reply
/// format of Redis 7.0 for scores.
pub fn format_double_g17(d: f64) -> String {
    if d.is_infinite() {
        return if d > 0.0 { "inf".into() } else { "-inf".into() };
    }
    if d.is_nan() {
        return "nan".into();
    }
    const P: i32 = 17;
    let sci = format!("{:.*e}", (P - 1) as usize, d);
    let (mant, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let x: i32 = exp.parse().unwrap_or(0);
    if (-4..P).contains(&x) {
        let fixed = format!("{:.*}", (P - 1 - x) as usize, d);
        strip_fraction_zeros(fixed)
    } else {
        let m = strip_fraction_zeros(mant.to_string());
        let sign = if x < 0 { '-' } else { '+' };
        format!("{m}e{sign}{:02}", x.abs())
    }
}

/// Format as Redis's `ld2string(LD_STR_HUMAN)`: `%.17Lf`, trailing zeros (and a bare `.`)
/// removed, `-0` printed as `0`.
pub fn format_double_human(d: f64) -> String {
    if d.is_infinite() {
        return if d > 0.0 { "inf".into() } else { "-inf".into() };
    }
    let s = strip_fraction_zeros(format!("{:.17}", d));
    if s == "-0" {
        "0".into()
    } else {
        s
    }
}

fn strip_fraction_zeros(mut s: String) -> String {
    if s.contains('.') {
        while s.ends_with('0') {
            s.pop();
        }
        if s.ends_with('.') {
            s.pop();
        }
    }
    s
}

/// Convert a keyspace value to the RDB model.
pub fn to_model(v: &Value) -> model::Value {
    match v {
        Value::String(s) => model::Value::String(s.to_vec()),
        Value::List(l) => model::Value::List(l.iter().map(|e| e.to_vec()).collect()),
        Value::Set(s) => model::Value::Set(s.iter().map(|e| e.to_vec()).collect()),
        Value::ZSet(z) => model::Value::ZSet(z.iter().map(|(m, s)| (m.to_vec(), s)).collect()),
        Value::Hash(h) => {
            model::Value::Hash(h.iter().map(|(f, v)| (f.to_vec(), v.to_vec())).collect())
        }
        Value::Stream(s) => model::Value::Stream(Box::new(s.to_model())),
    }
}

/// Convert an RDB model value to a keyspace value (duplicate members/fields: the last wins).
pub fn from_model(v: model::Value) -> Value {
    match v {
        model::Value::String(s) => Value::String(s.into()),
        model::Value::List(l) => Value::List(l.into_iter().collect::<List>()),
        model::Value::Set(m) => {
            let mut s = Set::default();
            for e in m {
                s.insert(e);
            }
            Value::Set(s)
        }
        model::Value::ZSet(p) => {
            let mut z = ZSet::default();
            for (m, sc) in p {
                z.insert(m, sc);
            }
            Value::ZSet(z)
        }
        model::Value::Hash(p) => {
            let mut h = Hash::default();
            for (f, v) in p {
                h.insert(f, v);
            }
            Value::Hash(h)
        }
        model::Value::Stream(s) => Value::Stream(Box::new(Stream::from_model(*s))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string2ll_rules() {
        assert_eq!(parse_i64(b"0"), Some(0));
        assert_eq!(parse_i64(b"-12"), Some(-12));
        assert_eq!(parse_i64(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_i64(b"-9223372036854775808"), Some(i64::MIN));
        for bad in [
            &b"9223372036854775808"[..],
            b"-0",
            b"01",
            b"+1",
            b" 1",
            b"1 ",
            b"",
            b"-",
            b"1a",
        ] {
            assert_eq!(parse_i64(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn string2d_rules() {
        assert_eq!(parse_f64(b"1.5"), Some(1.5));
        assert_eq!(parse_f64(b"-inf"), Some(f64::NEG_INFINITY));
        assert_eq!(parse_f64(b"+inf"), Some(f64::INFINITY));
        assert_eq!(parse_f64(b"0"), Some(0.0));
        assert_eq!(parse_f64(b"0e10"), Some(0.0));
        for bad in [&b"nan"[..], b"1e400", b"1e-400", b" 1", b"1 ", b"", b"abc"] {
            assert_eq!(parse_f64(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn human_format() {
        assert_eq!(format_double_human(1.75), "1.75");
        assert_eq!(format_double_human(3.0), "3");
        assert_eq!(format_double_human(-0.0), "0");
        assert_eq!(format_double_human(1e20), "100000000000000000000");
    }
}
