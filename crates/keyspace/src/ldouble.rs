//! Redis's `long double` arithmetic for HINCRBYFLOAT (and INCRBYFLOAT), emulated exactly.
//!
//! Problem: Redis 7.0 computes HINCRBYFLOAT/INCRBYFLOAT in C `long double`, which on x86-64 is
//! the x87 80-bit format (64-bit mantissa, 15-bit exponent), parses with `strtold`
//! (`string2ld` in `util.c`) and prints with `%.17Lf` minus trailing zeros
//! (`ld2string(LD_STR_HUMAN)`). Doing the same in `f64` gives different text for everyday inputs
//! (`0.1` prints as `0.10000000000000001`, `0.1 + 0.2` differs in the 17th decimal,
//! `9223372036854775807 - 2` loses the last digits, `1e400` overflows). Rust has no 80-bit float,
//! so this module implements the three operations with exact big-integer arithmetic:
//! - parsing: the decimal (or C99 hexadecimal) text is an exact rational `D·10^E` (`H·2^E`),
//!   rounded once to a 64-bit mantissa, round-half-even, with x87's exponent range (overflow past
//!   2^16384, gradual underflow down to 2^-16445) and `string2ld`'s refusals (leading space,
//!   trailing bytes, NaN, overflow to infinity, underflow to zero);
//! - addition: the exact sum of the two binary values rounded once (IEEE 754 round to nearest
//!   even, as the x87 FPU does in its default extended-precision mode);
//! - printing: the exact decimal expansion rounded to 17 fractional digits (glibc `printf` is
//!   exact and rounds ties to even), then trailing zeros removed and `-0` printed as `0`.
//!
//! The rounding core is generic in the mantissa width; with 53 bits it is IEEE `f64`, which the
//! tests use to check the big-integer machinery against Rust's own (correctly rounded) parser.

use std::cmp::Ordering;

/// A little-endian base-2^32 natural number, just big enough for decimal conversion.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Big(Vec<u32>);

impl Big {
    fn from_u128(mut v: u128) -> Big {
        let mut limbs = Vec::new();
        while v != 0 {
            limbs.push(v as u32);
            v >>= 32;
        }
        Big(limbs)
    }

    fn is_zero(&self) -> bool {
        self.0.is_empty()
    }

    fn trim(&mut self) {
        while self.0.last() == Some(&0) {
            self.0.pop();
        }
    }

    fn bit_len(&self) -> u64 {
        match self.0.last() {
            None => 0,
            Some(&top) => (self.0.len() as u64 - 1) * 32 + u64::from(32 - top.leading_zeros()),
        }
    }

    fn bit(&self, i: u64) -> bool {
        let limb = (i / 32) as usize;
        limb < self.0.len() && (self.0[limb] >> (i % 32)) & 1 == 1
    }

    /// True when any bit below position `n` is set.
    fn any_below(&self, n: u64) -> bool {
        let full = (n / 32) as usize;
        if self.0.iter().take(full).any(|&l| l != 0) {
            return true;
        }
        let rem = n % 32;
        rem != 0 && full < self.0.len() && self.0[full] & ((1u32 << rem) - 1) != 0
    }

    fn mul_add_small(&mut self, m: u32, a: u32) {
        let mut carry = u64::from(a);
        for l in self.0.iter_mut() {
            let v = u64::from(*l) * u64::from(m) + carry;
            *l = v as u32;
            carry = v >> 32;
        }
        if carry != 0 {
            self.0.push(carry as u32);
        }
        self.trim();
    }

    fn pow10(n: u64) -> Big {
        let mut b = Big(vec![1]);
        let mut left = n;
        while left >= 9 {
            b.mul_add_small(1_000_000_000, 0);
            left -= 9;
        }
        b.mul_add_small(10u32.pow(left as u32), 0);
        b
    }

    fn mul(&self, o: &Big) -> Big {
        let mut out = vec![0u32; self.0.len() + o.0.len()];
        for (i, &a) in self.0.iter().enumerate() {
            let mut carry = 0u64;
            for (j, &b) in o.0.iter().enumerate() {
                let v = u64::from(a) * u64::from(b) + u64::from(out[i + j]) + carry;
                out[i + j] = v as u32;
                carry = v >> 32;
            }
            let mut k = i + o.0.len();
            while carry != 0 {
                let v = u64::from(out[k]) + carry;
                out[k] = v as u32;
                carry = v >> 32;
                k += 1;
            }
        }
        let mut b = Big(out);
        b.trim();
        b
    }

    fn shl(&self, n: u64) -> Big {
        if self.is_zero() {
            return Big(Vec::new());
        }
        let (limbs, bits) = ((n / 32) as usize, (n % 32) as u32);
        let mut out = vec![0u32; limbs];
        let mut carry = 0u32;
        for &l in &self.0 {
            out.push(if bits == 0 { l } else { (l << bits) | carry });
            carry = if bits == 0 { 0 } else { l >> (32 - bits) };
        }
        out.push(carry);
        let mut b = Big(out);
        b.trim();
        b
    }

    fn shr(&self, n: u64) -> Big {
        let (limbs, bits) = ((n / 32) as usize, (n % 32) as u32);
        if limbs >= self.0.len() {
            return Big(Vec::new());
        }
        let src = &self.0[limbs..];
        let mut out = Vec::with_capacity(src.len());
        for i in 0..src.len() {
            let hi = src.get(i + 1).copied().unwrap_or(0);
            out.push(if bits == 0 {
                src[i]
            } else {
                (src[i] >> bits) | (hi << (32 - bits))
            });
        }
        let mut b = Big(out);
        b.trim();
        b
    }

    fn cmp(&self, o: &Big) -> Ordering {
        self.0
            .len()
            .cmp(&o.0.len())
            .then_with(|| self.0.iter().rev().cmp(o.0.iter().rev()))
    }

    /// `self -= o`, requires `self >= o`.
    fn sub_assign(&mut self, o: &Big) {
        let mut borrow = 0i64;
        for i in 0..self.0.len() {
            let v = i64::from(self.0[i]) - i64::from(o.0.get(i).copied().unwrap_or(0)) - borrow;
            borrow = i64::from(v < 0);
            self.0[i] = v.rem_euclid(1 << 32) as u32;
        }
        self.trim();
    }

    fn add(&self, o: &Big) -> Big {
        let n = self.0.len().max(o.0.len());
        let mut out = Vec::with_capacity(n + 1);
        let mut carry = 0u64;
        for i in 0..n {
            let v = u64::from(self.0.get(i).copied().unwrap_or(0))
                + u64::from(o.0.get(i).copied().unwrap_or(0))
                + carry;
            out.push(v as u32);
            carry = v >> 32;
        }
        out.push(carry as u32);
        let mut b = Big(out);
        b.trim();
        b
    }

    /// Low 128 bits.
    fn low_u128(&self) -> u128 {
        self.0
            .iter()
            .take(4)
            .rev()
            .fold(0u128, |acc, &l| (acc << 32) | u128::from(l))
    }

    /// `(self / d, self % d != 0)` for a quotient of at most 127 bits.
    fn div_small_quotient(&self, d: &Big) -> (u128, bool) {
        let qbits = (self.bit_len() + 1).saturating_sub(d.bit_len());
        let mut rem = self.shr(qbits);
        let mut q = 0u128;
        for i in (0..qbits).rev() {
            rem = rem.shl(1);
            if self.bit(i) {
                if rem.0.is_empty() {
                    rem.0.push(1);
                } else {
                    rem.0[0] |= 1;
                }
            }
            q <<= 1;
            if rem.cmp(d) != Ordering::Less {
                rem.sub_assign(d);
                q |= 1;
            }
        }
        (q, !rem.is_zero())
    }

    /// Decimal digits.
    fn to_decimal(&self) -> String {
        let mut limbs = self.0.clone();
        let mut chunks = Vec::new();
        while !limbs.is_empty() {
            let mut rem = 0u64;
            for l in limbs.iter_mut().rev() {
                let v = (rem << 32) | u64::from(*l);
                *l = (v / 1_000_000_000) as u32;
                rem = v % 1_000_000_000;
            }
            while limbs.last() == Some(&0) {
                limbs.pop();
            }
            chunks.push(rem as u32);
        }
        let mut s = chunks
            .pop()
            .map_or_else(|| "0".to_string(), |c| c.to_string());
        for c in chunks.iter().rev() {
            s.push_str(&format!("{c:09}"));
        }
        s
    }
}

/// A binary floating-point format: mantissa width and exponent range.
#[derive(Clone, Copy)]
struct Format {
    /// Mantissa bits (64 for x87 extended, 53 for IEEE double).
    prec: u64,
    /// Exponent of the lowest mantissa bit of the smallest subnormal.
    min_exp: i64,
    /// Values must be below 2^limit.
    limit: i64,
}

const X87: Format = Format {
    prec: 64,
    min_exp: -16445,
    limit: 16384,
};
const DOUBLE: Format = Format {
    prec: 53,
    min_exp: -1074,
    limit: 1024,
};

/// A rounded value: `mant · 2^exp`, or an overflow.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Rounded {
    Finite { mant: u64, exp: i64 },
    Overflow,
}

/// Rounds `(n + s) · 2^e2`, where `s` is a positive amount below one unit when `sticky`, to the
/// format (round half to even).
fn round(n: &Big, e2: i64, sticky: bool, f: Format) -> Rounded {
    let len = n.bit_len() as i64;
    if len == 0 {
        return Rounded::Finite { mant: 0, exp: 0 };
    }
    let mut shift = (len - f.prec as i64).max(f.min_exp - e2);
    let mut mant = if shift <= 0 {
        n.low_u128() << (-shift) as u32
    } else {
        let s = shift as u64;
        let q = n.shr(s).low_u128();
        let half = n.bit(s - 1);
        let rest = sticky || n.any_below(s - 1);
        let up = half && (rest || q & 1 == 1);
        q + u128::from(up)
    };
    if mant >> f.prec != 0 {
        mant >>= 1;
        shift += 1;
    }
    let exp = e2 + shift;
    if mant == 0 {
        return Rounded::Finite { mant: 0, exp: 0 };
    }
    let top = exp + (128 - i64::from(mant.leading_zeros())) - 1;
    if top >= f.limit {
        return Rounded::Overflow;
    }
    Rounded::Finite {
        mant: mant as u64,
        exp,
    }
}

/// What `strtod`-style syntax found.
enum Syntax {
    Inf,
    /// `digits · base^exp` where base is 10 (decimal) or 2 (hexadecimal).
    Number {
        digits: Big,
        exp: i64,
        decimal: bool,
        nonzero: bool,
    },
}

fn parse_exp(s: &[u8]) -> Option<i64> {
    let (neg, d) = match s.first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if d.is_empty() || !d.iter().all(u8::is_ascii_digit) {
        return None;
    }
    // Saturate: anything past a million is over- or underflow anyway.
    let v = d.iter().fold(0i64, |acc, &c| {
        (acc * 10 + i64::from(c - b'0')).min(1 << 40)
    });
    Some(if neg { -v } else { v })
}

/// Parses the whole of `s` (after the sign) as `strtod` would, or None when `strtod` would stop
/// early, find nothing, or find a NaN.
///
/// Only the first `max_sig` significant digits are accumulated (keeping the work linear in the
/// input): a nonzero tail is replaced by a single `1` digit just below the kept ones, which
/// leaves the rounding unchanged as long as `max_sig` exceeds the digits of any rounding
/// boundary of the target format (767 for `f64`).
fn parse_syntax(s: &[u8], max_sig: usize) -> Option<Syntax> {
    let lower = s.to_ascii_lowercase();
    if lower == b"inf" || lower == b"infinity" {
        return Some(Syntax::Inf);
    }
    let hex = lower.len() > 2 && lower.starts_with(b"0x");
    let body = if hex { &lower[2..] } else { &lower[..] };
    let is_digit = |c: u8| {
        if hex {
            c.is_ascii_hexdigit()
        } else {
            c.is_ascii_digit()
        }
    };
    let (radix, per_digit) = if hex { (16u32, 4i64) } else { (10, 1) };
    let mut digits = Big(Vec::new());
    let (mut nd, mut frac, mut seen_point, mut nonzero) = (0usize, 0i64, false, false);
    let (mut sig, mut dropped_int, mut tail_nonzero) = (0usize, 0i64, false);
    let mut i = 0;
    while i < body.len() {
        let c = body[i];
        if c == b'.' && !seen_point {
            seen_point = true;
        } else if is_digit(c) {
            let v = (c as char).to_digit(radix)?;
            nonzero |= v != 0;
            nd += 1;
            if sig > 0 || v != 0 {
                sig += 1;
            }
            if sig <= max_sig {
                digits.mul_add_small(radix, v);
                if seen_point {
                    frac += per_digit;
                }
            } else {
                tail_nonzero |= v != 0;
                if !seen_point {
                    dropped_int += per_digit;
                }
            }
        } else {
            break;
        }
        i += 1;
    }
    if nd == 0 {
        return None;
    }
    let marker = if hex { b'p' } else { b'e' };
    let exp = if i < body.len() {
        if body[i] != marker {
            return None;
        }
        parse_exp(&body[i + 1..])?
    } else {
        0
    };
    if tail_nonzero {
        digits.mul_add_small(radix, 1);
        frac += per_digit;
    }
    Some(Syntax::Number {
        digits,
        exp: exp.saturating_add(dropped_int) - frac,
        decimal: !hex,
        nonzero,
    })
}

/// Rounds `digits · 10^exp` (or `· 2^exp`) to the format.
fn to_binary(digits: &Big, exp: i64, decimal: bool, f: Format) -> Rounded {
    if digits.is_zero() {
        return Rounded::Finite { mant: 0, exp: 0 };
    }
    if !decimal {
        return round(digits, exp, false, f);
    }
    // Cheap range checks before big arithmetic: 10^x with x past these is out of any format.
    let magnitude = exp + digits.to_decimal().len() as i64;
    if magnitude > 5000 {
        return Rounded::Overflow;
    }
    if magnitude < -5000 {
        return Rounded::Finite { mant: 0, exp: 0 };
    }
    if exp >= 0 {
        return round(&digits.mul(&Big::pow10(exp as u64)), 0, false, f);
    }
    let p = Big::pow10(exp.unsigned_abs());
    let j = digits.bit_len() as i64 - p.bit_len() as i64 - (f.prec as i64 + 3);
    let (num, den) = if j < 0 {
        (digits.shl(j.unsigned_abs()), p)
    } else {
        (digits.clone(), p.shl(j as u64))
    };
    let (q, sticky) = num.div_small_quotient(&den);
    round(&Big::from_u128(q), j, sticky, f)
}

/// An x87 80-bit extended-precision value (Redis's `long double` on x86-64).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LongDouble {
    neg: bool,
    inf: bool,
    /// `value = mant · 2^exp` (mant 0: zero).
    mant: u64,
    exp: i64,
}

/// Longest text `string2ld` accepts (`MAX_LONG_DOUBLE_CHARS` minus the terminator).
const MAX_CHARS: usize = 5 * 1024 - 1;

impl LongDouble {
    /// Zero.
    pub const ZERO: LongDouble = LongDouble {
        neg: false,
        inf: false,
        mant: 0,
        exp: 0,
    };

    /// Parses as Redis's `string2ld`: `strtold` over the whole text, refusing the empty string,
    /// a leading space, trailing bytes, NaN, overflow to infinity and underflow to zero. The
    /// literal infinities (`inf`, `-Infinity`, ...) are accepted.
    pub fn parse(s: &[u8]) -> Option<LongDouble> {
        if s.is_empty() || s.len() > MAX_CHARS || s[0].is_ascii_whitespace() || s[0] == b'\x0b' {
            return None;
        }
        let (neg, rest) = match s[0] {
            b'-' => (true, &s[1..]),
            b'+' => (false, &s[1..]),
            _ => (false, s),
        };
        match parse_syntax(rest, usize::MAX)? {
            Syntax::Inf => Some(LongDouble {
                neg,
                inf: true,
                mant: 0,
                exp: 0,
            }),
            Syntax::Number {
                digits,
                exp,
                decimal,
                nonzero,
            } => match to_binary(&digits, exp, decimal, X87) {
                Rounded::Overflow => None,
                Rounded::Finite { mant: 0, .. } if nonzero => None,
                Rounded::Finite { mant, exp } => Some(LongDouble {
                    neg,
                    inf: false,
                    mant,
                    exp,
                }),
            },
        }
    }

    /// The value of an `i64` (exact: 64 mantissa bits).
    pub fn from_i64(v: i64) -> LongDouble {
        LongDouble {
            neg: v < 0,
            inf: false,
            mant: v.unsigned_abs(),
            exp: 0,
        }
    }

    /// False for an infinity.
    pub fn is_finite(&self) -> bool {
        !self.inf
    }

    /// `self + o` rounded to extended precision (round half to even). An infinite operand or an
    /// overflow gives an infinity (Redis refuses both before storing anything; NaN from
    /// `inf + -inf` is reported as an infinity too, which Redis refuses the same way).
    fn sum(self, o: LongDouble) -> LongDouble {
        if self.inf || o.inf {
            return LongDouble {
                neg: if self.inf { self.neg } else { o.neg },
                inf: true,
                mant: 0,
                exp: 0,
            };
        }
        if o.mant == 0 {
            return if self.mant == 0 {
                LongDouble {
                    neg: self.neg && o.neg,
                    ..LongDouble::ZERO
                }
            } else {
                self
            };
        }
        if self.mant == 0 {
            return o;
        }
        // Align on the lower exponent; an operand more than 130 bits below the other only
        // matters as a sticky bit, so it is replaced by a single bit that far down.
        let (mut a, mut b) = (self, o);
        let gap = (a.exp - b.exp).abs();
        if gap > 130 {
            if a.exp < b.exp {
                a = LongDouble {
                    mant: 1,
                    exp: b.exp - 130,
                    ..a
                };
            } else {
                b = LongDouble {
                    mant: 1,
                    exp: a.exp - 130,
                    ..b
                };
            }
        }
        let e = a.exp.min(b.exp);
        let na = Big::from_u128(u128::from(a.mant)).shl((a.exp - e) as u64);
        let nb = Big::from_u128(u128::from(b.mant)).shl((b.exp - e) as u64);
        let (neg, n) = if a.neg == b.neg {
            (a.neg, na.add(&nb))
        } else {
            match na.cmp(&nb) {
                Ordering::Less => {
                    let mut d = nb;
                    d.sub_assign(&na);
                    (b.neg, d)
                }
                _ => {
                    let mut d = na;
                    d.sub_assign(&nb);
                    (a.neg, d)
                }
            }
        };
        match round(&n, e, false, X87) {
            Rounded::Overflow => LongDouble {
                neg,
                inf: true,
                mant: 0,
                exp: 0,
            },
            // An exact zero sum is +0 in round-to-nearest.
            Rounded::Finite { mant: 0, .. } => LongDouble::ZERO,
            Rounded::Finite { mant, exp } => LongDouble {
                neg,
                inf: false,
                mant,
                exp,
            },
        }
    }

    /// The text of `ld2string(LD_STR_HUMAN)`: `%.17Lf` with trailing zeros (and a bare `.`)
    /// removed, `-0` as `0`, infinities as `inf`/`-inf`.
    pub fn to_human_string(&self) -> String {
        let sign = if self.neg { "-" } else { "" };
        if self.inf {
            return format!("{sign}inf");
        }
        let mut s = if self.exp >= 0 {
            Big::from_u128(u128::from(self.mant))
                .shl(self.exp as u64)
                .to_decimal()
        } else {
            let k = self.exp.unsigned_abs();
            let n = u128::from(self.mant) * 100_000_000_000_000_000u128;
            let t = if k >= 128 {
                0
            } else {
                let t = n >> k;
                let rem = n & ((1u128 << k) - 1);
                let half = 1u128 << (k - 1);
                t + u128::from(rem > half || (rem == half && t & 1 == 1))
            };
            let digits = format!("{t:018}");
            let (int, frac) = digits.split_at(digits.len() - 17);
            let frac = frac.trim_end_matches('0');
            if frac.is_empty() {
                int.to_string()
            } else {
                format!("{int}.{frac}")
            }
        };
        if s != "0" {
            s.insert_str(0, sign);
        }
        s
    }
}

/// Builds the `f64` of `±mant · 2^exp` as rounded by [`round`] with [`DOUBLE`] (exact).
fn double_from(neg: bool, r: Rounded) -> f64 {
    let magnitude = match r {
        Rounded::Overflow => f64::INFINITY,
        Rounded::Finite { mant: 0, .. } => 0.0,
        Rounded::Finite { mant, exp } => {
            let lz = mant.leading_zeros() as i64;
            // Normalize to 53 bits when the exponent allows (subnormals keep fewer).
            let shift = (lz - 11).min(exp - DOUBLE.min_exp).max(0);
            let (m, e) = (mant << shift, exp - shift);
            if m >> 52 == 0 {
                f64::from_bits(m)
            } else {
                let biased = (e + 52 + 1075 - 52) as u64;
                f64::from_bits((biased << 52) | (m & ((1u64 << 52) - 1)))
            }
        }
    };
    if neg {
        -magnitude
    } else {
        magnitude
    }
}

/// `strtod` over all of `s` (after any leading spaces the caller allows): the value, and
/// whether it over- or underflowed (`ERANGE` to infinity or zero). None when `strtod` would
/// stop early, find nothing, or find a NaN.
fn strtod_full(s: &[u8]) -> Option<(f64, bool)> {
    let (neg, rest) = match s.first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    match parse_syntax(rest, MAX_SIGNIFICANT_F64)? {
        Syntax::Inf => Some((
            if neg {
                f64::NEG_INFINITY
            } else {
                f64::INFINITY
            },
            false,
        )),
        Syntax::Number {
            digits,
            exp,
            decimal,
            nonzero,
        } => {
            let r = to_binary(&digits, exp, decimal, DOUBLE);
            let v = double_from(neg, r);
            let range_error = v.is_infinite() || (v == 0.0 && nonzero);
            Some((v, range_error))
        }
    }
}

/// Significant digits kept when parsing an `f64` (see [`parse_syntax`]).
const MAX_SIGNIFICANT_F64: usize = 800;

/// C `isspace` in the "C" locale.
fn is_c_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r')
}

/// Parses a score as Redis's `string2d` (ZADD, ZINCRBY): `strtod` over the whole text
/// (decimal or C99 hexadecimal), refusing the empty string, a leading space, trailing bytes, NaN,
/// overflow to infinity and underflow to zero; literal infinities are accepted.
pub fn parse_score(s: &[u8]) -> Option<f64> {
    if s.is_empty() || is_c_space(s[0]) {
        return None;
    }
    match strtod_full(s)? {
        (_, true) => None,
        (v, false) => Some(v),
    }
}

/// Parses a range bound as `zslParseRange` does with `strtod`: leading spaces skipped, the
/// empty text is 0, overflow gives an infinity, trailing bytes and NaN are refused.
pub fn parse_range_score(s: &[u8]) -> Option<f64> {
    if s.is_empty() {
        return Some(0.0);
    }
    let start = s.iter().position(|&c| !is_c_space(c))?;
    strtod_full(&s[start..]).map(|(v, _)| v)
}

impl std::ops::Add for LongDouble {
    type Output = LongDouble;

    /// Extended-precision addition (see [`LongDouble::sum`]).
    fn add(self, o: LongDouble) -> LongDouble {
        self.sum(o)
    }
}

/// Parses a SORT weight as `sortCommandGeneric` does with `strtod`: the empty text is 0, leading
/// spaces are skipped, and trailing bytes, NaN, overflow and underflow (`ERANGE`) are refused.
pub fn parse_sort_score(s: &[u8]) -> Option<f64> {
    if s.is_empty() {
        return Some(0.0);
    }
    let start = s.iter().position(|&c| !is_c_space(c))?;
    match strtod_full(&s[start..])? {
        (_, true) => None,
        (v, false) => Some(v),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn human(a: &str) -> String {
        LongDouble::parse(a.as_bytes()).unwrap().to_human_string()
    }

    fn sum(a: &str, b: &str) -> String {
        let (a, b) = (
            LongDouble::parse(a.as_bytes()).unwrap(),
            LongDouble::parse(b.as_bytes()).unwrap(),
        );
        (a + b).to_human_string()
    }

    #[test]
    fn matches_redis_7_0_hincrbyfloat() {
        // Each observed on redis-server 7.0.15 (HINCRBYFLOAT h f <b> on a field holding <a>).
        assert_eq!(sum("0", "1234.1"), "1234.09999999999999998");
        assert_eq!(sum("0.1", "0.2"), "0.3");
        assert_eq!(sum("0", "0.1"), "0.1");
        assert_eq!(sum("9223372036854775807", "-2"), "9223372036854775805");
        assert_eq!(sum("0x10", "1"), "17");
        assert_eq!(sum("1.5", "0.25"), "1.75");
        assert_eq!(sum("1", "-1"), "0");
        assert!(human("1e400").starts_with("10000000000000000000281880683947586514586453433629052038625910693539685534008629862039363994848324160522094053927317616200295822777259255734023828976593340661017797447434546173917862448116674971723778943824391593338047470675026246684401359237513603830343735485505244955964979021825038280091068414947402456898653040951017512658092615827588920183472511643316591362664138176309734806343732497430221946880"));
        assert_eq!(
            sum("1e4900", "1")[..50],
            *"10000000000000000000270831223069034983322405250407"
        );
        assert_eq!(human("-0.0000000000000000001"), "0");
        assert_eq!(human("-1.5"), "-1.5");
        assert_eq!(human("100"), "100");
    }

    #[test]
    fn refuses_what_string2ld_refuses() {
        for bad in [
            "", " 1", "1 ", "abc", "nan", "-nan", "1e", "1e+", "0x", ".", "1e5000", "1e-5000",
            "--1", "1.2.3",
        ] {
            assert!(LongDouble::parse(bad.as_bytes()).is_none(), "{bad:?}");
        }
        assert!(!LongDouble::parse(b"-inf").unwrap().is_finite());
        assert!(!LongDouble::parse(b"Infinity").unwrap().is_finite());
        assert!(LongDouble::parse(b"0e99999999999").is_some());
        assert!(
            LongDouble::parse(b"1e-4940").is_some(),
            "subnormal, not zero"
        );
        assert!(LongDouble::parse(&vec![b'1'; 6000]).is_none(), "too long");
        let big = LongDouble::parse(b"1e4932").unwrap();
        assert!(!(big + big).is_finite(), "overflow");
        assert_eq!(
            (LongDouble::from_i64(-5) + LongDouble::ZERO).to_human_string(),
            "-5"
        );
    }

    #[test]
    fn long_inputs_stay_linear_and_round_right() {
        // A million digits: quadratic accumulation would take minutes.
        let mut long = "1.".to_string();
        long.push_str(&"0".repeat(1_000_000));
        long.push('1');
        assert_eq!(parse_score(long.as_bytes()), Some(1.0));
        let long9 = format!("0.{}", "9".repeat(1_000_000));
        assert_eq!(parse_score(long9.as_bytes()), Some(1.0));
        let int = format!("{}e-1000000", "7".repeat(1_000_000));
        let want: f64 = "7.777777777777777777777e-1".parse().unwrap();
        assert_eq!(parse_score(int.as_bytes()), Some(want));
        // The halfway point between 1 and the next double, then a tail far beyond 800 digits:
        // the tail decides (round up when nonzero, to even when zero).
        let half = "1.00000000000000011102230246251565404236316680908203125";
        let up = format!("{half}{}1", "0".repeat(2000));
        assert_eq!(parse_score(up.as_bytes()), Some(1.0000000000000002));
        let tie = format!("{half}{}", "0".repeat(2000));
        assert_eq!(parse_score(tie.as_bytes()), Some(1.0));
    }

    #[test]
    fn scores_as_strtod() {
        assert_eq!(parse_score(b"0x10"), Some(16.0));
        assert_eq!(parse_score(b"-0x1.8p1"), Some(-3.0));
        assert_eq!(parse_score(b"5e-324"), Some(5e-324));
        // The largest subnormal and the smallest normal double.
        assert_eq!(
            parse_score(b"2.2250738585072009e-308"),
            Some(f64::from_bits((1 << 52) - 1))
        );
        assert_eq!(
            parse_score(b"2.2250738585072014e-308"),
            Some(f64::MIN_POSITIVE)
        );
        assert_eq!(parse_score(b"1.7976931348623157e308"), Some(f64::MAX));
        assert_eq!(parse_score(b"+inf"), Some(f64::INFINITY));
        assert_eq!(parse_score(b"-Infinity"), Some(f64::NEG_INFINITY));
        assert!(parse_score(b"-0").unwrap().is_sign_negative());
        for bad in ["", " 1", "1e400", "1e-400", "nan", "1x", "0x", "1e", "inf1"] {
            assert_eq!(parse_score(bad.as_bytes()), None, "{bad:?}");
        }
        assert_eq!(parse_range_score(b""), Some(0.0));
        assert_eq!(parse_range_score(b"  2"), Some(2.0));
        assert_eq!(parse_range_score(b"1e400"), Some(f64::INFINITY));
        assert_eq!(parse_range_score(b"0x1p-2"), Some(0.25));
        assert_eq!(parse_range_score(b" "), None);
        assert_eq!(parse_range_score(b"nan"), None);
        assert_eq!(parse_range_score(b"1 "), None);
        // Subnormals round exactly.
        for v in [
            5e-324,
            1.5e-320,
            f64::from_bits(12345),
            f64::from_bits((1 << 52) - 7),
        ] {
            assert_eq!(parse_score(format!("{v:e}").as_bytes()), Some(v));
        }
    }

    fn to_f64(r: Rounded) -> f64 {
        match r {
            Rounded::Overflow => f64::INFINITY,
            Rounded::Finite { mant, exp } => {
                // Exact: mant has at most 53 bits and exp is in range.
                let mut v = mant as f64;
                let mut e = exp;
                while e > 0 {
                    let s = e.min(1000);
                    v *= 2f64.powi(s as i32);
                    e -= s;
                }
                while e < 0 {
                    let s = (-e).min(1000);
                    v /= 2f64.powi(s as i32);
                    e += s;
                }
                v
            }
        }
    }

    #[test]
    fn rounding_core_agrees_with_rusts_f64_parser() {
        let mut seed = 0x1234_5678_9abc_def0u64;
        let mut next = |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        for _ in 0..3000 {
            let nd = 1 + next(25) as usize;
            let mut text: String = (0..nd).map(|_| char::from(b'0' + next(10) as u8)).collect();
            if next(2) == 0 {
                let at = next(nd as u64) as usize;
                text.insert(at, '.');
            }
            let e = next(700) as i64 - 350;
            text.push_str(&format!("e{e}"));
            let Some(Syntax::Number {
                digits,
                exp,
                decimal,
                ..
            }) = parse_syntax(text.as_bytes(), usize::MAX)
            else {
                panic!("{text}");
            };
            // Keep clear of the subnormal range, where dividing step by step would round twice.
            let want: f64 = text.parse().unwrap();
            if want != 0.0 && want.abs() < 1e-290 {
                continue;
            }
            let got = to_f64(to_binary(&digits, exp, decimal, DOUBLE));
            assert_eq!(got.to_bits(), want.to_bits(), "{text}");
            let expect = (want.is_finite() && (want != 0.0 || !digits.0.iter().any(|&l| l != 0)))
                .then_some(want.to_bits());
            assert_eq!(
                parse_score(text.as_bytes()).map(f64::to_bits),
                expect,
                "{text}"
            );
        }
    }
}
