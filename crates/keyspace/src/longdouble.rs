//! x87 80-bit `long double` arithmetic for INCRBYFLOAT (and HINCRBYFLOAT).
//!
//! Problem: Redis 7.0 parses INCRBYFLOAT operands with `strtold`, adds them as `long double`
//! (on x86-64: a 64-bit mantissa, 15-bit exponent) and prints the sum with `%.17Lf` minus
//! trailing zeros (`ld2string(LD_STR_HUMAN)`, `util.c`). With 64 mantissa bits `0.1 + 0.2`
//! prints `0.3`; an `f64` computation prints `0.30000000000000004`. This module reproduces the
//! three steps exactly in software:
//! - parsing: the decimal text is converted with big-integer arithmetic to the nearest value
//!   with a 64-bit mantissa (round half to even), as glibc's `strtold` does;
//! - addition: IEEE-754 round-to-nearest-even addition of two 64-bit mantissas with guard and
//!   sticky bits;
//! - printing: the exact binary value rounded half-to-even to 17 decimals, as glibc's `printf`.
//!
//! Limits (documented differences): subnormal `long double` values (below 2^-16382, about
//! 3.4e-4932) are treated as underflow and refused where glibc would return a subnormal;
//! hexadecimal float input (`0x1p3`) is refused.

/// Smallest binary exponent of a normal value's leading bit (2^-16382).
const MIN_EXP: i64 = -16382;
/// Largest binary exponent of a finite value's leading bit (below 2^16384).
const MAX_EXP: i64 = 16383;

/// A finite `long double`: `(-1)^neg * mant * 2^exp`, `mant` normalized (top bit set) or 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LongDouble {
    neg: bool,
    mant: u64,
    exp: i64,
}

/// What `strtold` makes of a text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Parsed {
    /// A finite value.
    Finite(LongDouble),
    /// `inf`/`infinity` with its sign.
    Infinite(bool),
}

/// Little-endian base-2^32 big unsigned integer, just what parsing and printing need.
#[derive(Clone, Debug)]
struct Big(Vec<u32>);

impl Big {
    fn from_u64(v: u64) -> Big {
        let mut b = Big(vec![v as u32, (v >> 32) as u32]);
        b.trim();
        b
    }
    fn trim(&mut self) {
        while self.0.last() == Some(&0) {
            self.0.pop();
        }
    }
    fn is_zero(&self) -> bool {
        self.0.is_empty()
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
    }
    /// Divide in place, returning the remainder.
    fn div_small(&mut self, d: u32) -> u32 {
        let mut rem = 0u64;
        for l in self.0.iter_mut().rev() {
            let v = (rem << 32) | u64::from(*l);
            *l = (v / u64::from(d)) as u32;
            rem = v % u64::from(d);
        }
        self.trim();
        rem as u32
    }
    fn shl(&mut self, bits: usize) {
        let (limbs, b) = (bits / 32, bits % 32);
        if b != 0 {
            let mut carry = 0u32;
            for l in self.0.iter_mut() {
                let v = (*l << b) | carry;
                carry = *l >> (32 - b);
                *l = v;
            }
            if carry != 0 {
                self.0.push(carry);
            }
        }
        if limbs > 0 && !self.is_zero() {
            let mut v = vec![0u32; limbs];
            v.extend_from_slice(&self.0);
            self.0 = v;
        }
    }
    fn bit_len(&self) -> usize {
        match self.0.last() {
            None => 0,
            Some(&top) => self.0.len() * 32 - top.leading_zeros() as usize,
        }
    }
    fn bit(&self, i: usize) -> bool {
        self.0.get(i / 32).is_some_and(|l| (l >> (i % 32)) & 1 == 1)
    }
    fn any_below(&self, i: usize) -> bool {
        let (full, rest) = (i / 32, i % 32);
        self.0.iter().take(full).any(|&l| l != 0)
            || (rest > 0
                && self
                    .0
                    .get(full)
                    .is_some_and(|l| l & ((1u32 << rest) - 1) != 0))
    }
    /// Bits `[from, from + 64)` as a u64.
    fn bits64(&self, from: usize) -> u64 {
        (0..64)
            .filter(|&i| self.bit(from + i))
            .fold(0u64, |acc, i| acc | (1u64 << i))
    }
    fn to_decimal(&self) -> String {
        if self.is_zero() {
            return "0".into();
        }
        let mut n = self.clone();
        let mut chunks = Vec::new();
        while !n.is_zero() {
            chunks.push(n.div_small(1_000_000_000));
        }
        let mut s = chunks.pop().map_or_else(String::new, |c| c.to_string());
        for c in chunks.iter().rev() {
            s.push_str(&format!("{c:09}"));
        }
        s
    }
}

impl LongDouble {
    /// Zero.
    pub const ZERO: LongDouble = LongDouble {
        neg: false,
        mant: 0,
        exp: 0,
    };

    /// Round the value `n * 2^exp2` (plus a sticky fraction of the lowest bit) to 64 bits.
    /// None on overflow or underflow to below the normal range.
    fn round_big(neg: bool, n: &Big, exp2: i64, sticky: bool) -> Option<LongDouble> {
        let len = n.bit_len();
        if len == 0 {
            return if sticky {
                None
            } else {
                Some(LongDouble {
                    neg,
                    ..LongDouble::ZERO
                })
            };
        }
        let (mant, mut exp) = if len <= 64 {
            (n.bits64(0) << (64 - len), exp2 - (64 - len) as i64)
        } else {
            let shift = len - 64;
            let mut m = n.bits64(shift);
            let round = n.bit(shift - 1);
            let rest = sticky || n.any_below(shift - 1);
            let mut e = exp2 + shift as i64;
            if round && (rest || m & 1 == 1) {
                m = m.wrapping_add(1);
                if m == 0 {
                    m = 1 << 63;
                    e += 1;
                }
            }
            (m, e)
        };
        let top = exp + 63;
        if !(MIN_EXP..=MAX_EXP).contains(&top) {
            return None;
        }
        if mant == 0 {
            exp = 0;
        }
        Some(LongDouble { neg, mant, exp })
    }

    /// Parse as `strtold` (decimal and `inf`/`infinity` forms), refusing what Redis's
    /// `string2ld` refuses: empty or >= 5120 bytes, a leading space, trailing bytes, NaN,
    /// overflow, underflow to zero.
    pub fn parse(s: &[u8]) -> Option<Parsed> {
        if s.is_empty() || s.len() >= 5 * 1024 || s[0].is_ascii_whitespace() {
            return None;
        }
        let (neg, body) = match s[0] {
            b'-' => (true, &s[1..]),
            b'+' => (false, &s[1..]),
            _ => (false, s),
        };
        if body.eq_ignore_ascii_case(b"inf") || body.eq_ignore_ascii_case(b"infinity") {
            return Some(Parsed::Infinite(neg));
        }
        let mut digits = Big(Vec::new());
        let mut dexp: i64 = 0;
        let mut seen_digit = false;
        let mut nonzero = false;
        let mut i = 0;
        let mut frac = false;
        while i < body.len() {
            let c = body[i];
            if c.is_ascii_digit() {
                seen_digit = true;
                nonzero |= c != b'0';
                digits.mul_add_small(10, u32::from(c - b'0'));
                if frac {
                    dexp -= 1;
                }
            } else if c == b'.' && !frac {
                frac = true;
            } else {
                break;
            }
            i += 1;
        }
        if !seen_digit {
            return None;
        }
        if i < body.len() && (body[i] == b'e' || body[i] == b'E') {
            let mut j = i + 1;
            let eneg = match body.get(j) {
                Some(b'-') => {
                    j += 1;
                    true
                }
                Some(b'+') => {
                    j += 1;
                    false
                }
                _ => false,
            };
            let start = j;
            let mut e: i64 = 0;
            while j < body.len() && body[j].is_ascii_digit() {
                e = (e * 10 + i64::from(body[j] - b'0')).min(1_000_000);
                j += 1;
            }
            if j > start {
                dexp += if eneg { -e } else { e };
                i = j;
            }
        }
        if i != body.len() {
            return None;
        }
        if !nonzero {
            return Some(Parsed::Finite(LongDouble {
                neg,
                ..LongDouble::ZERO
            }));
        }
        let ndigits = digits.to_decimal().len() as i64;
        if dexp + ndigits > 4933 {
            return None; // overflow (ERANGE, HUGE_VALL)
        }
        if dexp + ndigits < -4933 {
            return None; // underflow to zero (ERANGE)
        }
        if dexp >= 0 {
            for _ in 0..dexp {
                digits.mul_add_small(10, 0);
            }
            return LongDouble::round_big(neg, &digits, 0, false).map(Parsed::Finite);
        }
        // value = digits / 10^n = digits / (5^n * 2^n)
        let n = (-dexp) as usize;
        let pow5_bits = (n as f64 * std::f64::consts::LOG2_10 - n as f64).ceil() as usize + 2;
        let k = (66 + pow5_bits).saturating_sub(digits.bit_len());
        digits.shl(k);
        let mut sticky = false;
        let mut left = n;
        while left > 0 {
            let step = left.min(13);
            sticky |= digits.div_small(5u32.pow(step as u32)) != 0;
            left -= step;
        }
        LongDouble::round_big(neg, &digits, -(k as i64) - n as i64, sticky).map(Parsed::Finite)
    }

    /// `self + other`, rounded to nearest even; None on overflow to infinity.
    pub fn checked_add(self, other: LongDouble) -> Option<LongDouble> {
        if other.mant == 0 {
            return Some(if self.mant == 0 {
                LongDouble {
                    neg: self.neg && other.neg,
                    ..self
                }
            } else {
                self
            });
        }
        if self.mant == 0 {
            return Some(other);
        }
        let (x, y) = if self.exp >= other.exp {
            (self, other)
        } else {
            (other, self)
        };
        let d = (x.exp - y.exp) as u64;
        let xs = u128::from(x.mant) << 62;
        let full = u128::from(y.mant) << 62;
        let (ys, mut sticky) = if d >= 126 {
            (0u128, true)
        } else {
            (full >> d, d > 0 && full & ((1u128 << d) - 1) != 0)
        };
        let (neg, s) = if x.neg == y.neg {
            (x.neg, xs + ys)
        } else if xs >= ys {
            (x.neg, xs - ys - u128::from(sticky))
        } else {
            (y.neg, ys - xs)
        };
        if s == 0 && !sticky {
            return Some(LongDouble::ZERO);
        }
        let mut big = Big(vec![
            s as u32,
            (s >> 32) as u32,
            (s >> 64) as u32,
            (s >> 96) as u32,
        ]);
        big.trim();
        if big.bit_len() <= 64 && sticky {
            // Cancellation cannot leave fewer than 64 bits while bits were shifted out.
            sticky = false;
        }
        LongDouble::round_big(neg, &big, x.exp - 62, sticky)
    }

    /// `%.17Lf` with trailing zeros and a bare `.` removed, `-0` as `0` (`LD_STR_HUMAN`).
    pub fn to_human(self) -> String {
        let (int_part, frac17) = if self.exp >= 0 {
            let mut b = Big::from_u64(self.mant);
            b.shl(self.exp as usize);
            (b, 0u128)
        } else {
            let e = (-self.exp) as u32;
            let int = if e >= 64 { 0 } else { self.mant >> e };
            let f = if e >= 64 {
                u128::from(self.mant)
            } else {
                u128::from(self.mant & ((1u64 << e) - 1))
            };
            let p = f * 100_000_000_000_000_000u128;
            let r = if e > 127 {
                0
            } else {
                let q = p >> e;
                let rem = p & ((1u128 << e) - 1);
                let half = 1u128 << (e - 1);
                if rem > half || (rem == half && q & 1 == 1) {
                    q + 1
                } else {
                    q
                }
            };
            if r >= 100_000_000_000_000_000 {
                (Big::from_u64(int + 1), r - 100_000_000_000_000_000)
            } else {
                (Big::from_u64(int), r)
            }
        };
        let mut s = String::new();
        if self.neg {
            s.push('-');
        }
        s.push_str(&int_part.to_decimal());
        let frac = format!("{frac17:017}");
        let frac = frac.trim_end_matches('0');
        if !frac.is_empty() {
            s.push('.');
            s.push_str(frac);
        }
        if s == "-0" {
            s = "0".into();
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ld(s: &str) -> LongDouble {
        match LongDouble::parse(s.as_bytes()) {
            Some(Parsed::Finite(v)) => v,
            other => panic!("{s}: {other:?}"),
        }
    }

    fn sum(a: &str, b: &str) -> String {
        ld(a).checked_add(ld(b)).expect("finite").to_human()
    }

    #[test]
    fn matches_redis_7_0_incrbyfloat() {
        // Each expectation observed with redis-server 7.0.15: SET k a; INCRBYFLOAT k b.
        assert_eq!(sum("0.1", "0.2"), "0.3");
        assert_eq!(sum("10.5", "0.1"), "10.6");
        assert_eq!(sum("1.599999999999", "3"), "4.599999999999");
        assert_eq!(sum("1.5", "0.25"), "1.75");
        assert_eq!(sum("5", "-5"), "0");
        assert_eq!(sum("3.0e3", "1.0e-3"), "3000.00099999999999989");
        assert_eq!(sum("1e20", "1"), "100000000000000000000");
        assert_eq!(sum("-0", "0"), "0");
        assert_eq!(sum("0.1", "-0.3"), "-0.2");
        assert_eq!(
            sum("1e308", "1e308"),
            "19999999999999999999337175931169129132112019969483113441559409598984346973767612374\
             420025384377707864089349445010802644630426949918792116719484162886039283753591820003\
             920638155732621920901421333587830679157787782912108712612253672980323726043417317850\
             6889763247582601711514636284849020905456510092687857156096"
        );
    }

    #[test]
    fn parse_refusals() {
        // "0x10" is accepted by strtold (hex float) but refused here (module docs).
        for bad in [
            "", " 1", "1 ", "abc", "1e", "nan", "1e5000", "1e-5000", "--1", "0x10", ".",
        ] {
            let r = LongDouble::parse(bad.as_bytes());
            assert!(r.is_none(), "{bad:?} -> {r:?}");
        }
        assert_eq!(LongDouble::parse(b"+inf"), Some(Parsed::Infinite(false)));
        assert_eq!(
            LongDouble::parse(b"-Infinity"),
            Some(Parsed::Infinite(true))
        );
        assert_eq!(ld(".5").to_human(), "0.5");
        assert_eq!(ld("5.").to_human(), "5");
        assert_eq!(ld("+2.5E1").to_human(), "25");
    }
}
