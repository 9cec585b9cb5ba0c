//! HyperLogLog in Redis 7.0's byte format: the value of a PFADD key is an ordinary string that
//! redis-server reads back (and we read its).
//!
//! Problem: PFADD/PFCOUNT/PFMERGE keep a 16,384-register HyperLogLog inside a *string*, so the
//! bytes are the contract: an RDB or a replica carries them verbatim, GETRANGE sees them, and
//! the Tcl suite checks the cached-cardinality byte. Every byte below follows Redis's
//! `hyperloglog.c` (layout, opcodes, hash, estimator); the code is written for Rust slices.
//!
//! ```text
//!  0    4    5      8                16
//!  +----+----+------+----------------+------------------------------------------+
//!  |HYLL|enc |0 0 0 | card (LE u64)  | registers                                |
//!  +----+----+------+----------------+------------------------------------------+
//!   enc 0 = dense: 16,384 registers x 6 bits = 12,288 bytes, register i at bit i*6, LSB first
//!   enc 1 = sparse: run-length opcodes, purely positional, covering exactly 16,384 registers
//!       00xxxxxx            ZERO  : xxxxxx+1 (1..64) registers at 0
//!       01xxxxxx yyyyyyyy   XZERO : (xxxxxx<<8|yyyyyyyy)+1 (1..16384) registers at 0
//!       1vvvvvxx            VAL   : xx+1 (1..4) registers at vvvvv+1 (1..32)
//!   card: the cached cardinality; bit 7 of its byte 7 (offset 15) set = stale.
//! ```
//!
//! A register holds the longest run of zeros (+1) seen in the 50 hash bits above the 14 that
//! pick the register (MurmurHash64A, seed 0xadc83b19). A sparse value becomes dense when a
//! register exceeds 32 or it would grow past `hll-sparse-max-bytes`.
//!
//! Hostile bytes: a value that passes [`is_hll`] (magic, encoding, dense length) may still hold
//! any opcodes; every walk is bounds-checked and reports [`Invalid`] (Redis's `INVALIDOBJ`)
//! instead of reading past the end.

use crate::value::SharedBytes;

/// Header bytes.
pub const HDR: usize = 16;
/// Registers (2^14).
pub const REGISTERS: usize = 1 << 14;
/// Bits per dense register.
const BITS: usize = 6;
/// Largest register value.
const REGISTER_MAX: u8 = (1 << BITS) - 1;
/// Size of a dense value.
pub const DENSE_SIZE: usize = HDR + (REGISTERS * BITS).div_ceil(8);
/// Hash bits left for the zero run (64 - 14).
const Q: usize = 64 - 14;
const DENSE: u8 = 0;
const SPARSE: u8 = 1;
const VAL_MAX_VALUE: u8 = 32;
const VAL_MAX_LEN: usize = 4;
const ZERO_MAX_LEN: usize = 64;
const XZERO_MAX_LEN: usize = 16384;
/// 0.5 / ln(2).
const ALPHA_INF: f64 = 0.721_347_520_444_481_7;

/// Redis's reply for a value that is an HLL by its header but corrupt inside.
pub const INVALID_ERR: &str = "INVALIDOBJ Corrupted HLL object detected";
/// Redis's reply for a string that is not an HLL.
pub const NOT_HLL_ERR: &str = "WRONGTYPE Key is not a valid HyperLogLog string value.";

/// A sparse value whose opcodes do not cover exactly the 16,384 registers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Invalid;

/// MurmurHash2, 64-bit version (Redis's `MurmurHash64A`, little-endian reads).
pub fn murmur64a(key: &[u8], seed: u64) -> u64 {
    const M: u64 = 0xc6a4_a793_5bd1_e995;
    const R: u32 = 47;
    let mut h = seed ^ (key.len() as u64).wrapping_mul(M);
    let mut chunks = key.chunks_exact(8);
    for c in &mut chunks {
        let mut k = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h ^= k;
        h = h.wrapping_mul(M);
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        for (i, &b) in rest.iter().enumerate() {
            h ^= u64::from(b) << (8 * i);
        }
        h = h.wrapping_mul(M);
    }
    h ^= h >> R;
    h = h.wrapping_mul(M);
    h ^= h >> R;
    h
}

/// The register `ele` maps to and its zero-run count (`hllPatLen`).
fn pat_len(ele: &[u8]) -> (usize, u8) {
    let hash = murmur64a(ele, 0xadc8_3b19);
    let index = (hash as usize) & (REGISTERS - 1);
    let rest = (hash >> 14) | (1u64 << Q);
    (index, rest.trailing_zeros() as u8 + 1)
}

/// A new, empty HLL: sparse, one XZERO covering every register, cache valid at 0.
pub fn new_sparse() -> SharedBytes {
    let mut s = Vec::with_capacity(HDR + 2);
    s.extend_from_slice(b"HYLL");
    s.push(SPARSE);
    s.extend_from_slice(&[0; 11]);
    let mut left = REGISTERS;
    while left > 0 {
        let n = left.min(XZERO_MAX_LEN);
        push_xzero(&mut s, n);
        left -= n;
    }
    s.into()
}

/// `isHLLObjectOrReply`'s checks of a string: magic, a known encoding, a dense value's exact
/// length.
pub fn is_hll(s: &[u8]) -> bool {
    s.len() >= HDR
        && &s[..4] == b"HYLL"
        && s[4] <= SPARSE
        && (s[4] != DENSE || s.len() == DENSE_SIZE)
}

/// True for a dense value (the caller checked [`is_hll`]).
pub fn is_dense(s: &[u8]) -> bool {
    s[4] == DENSE
}

/// The cached cardinality, if valid.
pub fn cached(s: &[u8]) -> Option<u64> {
    if s[15] & 0x80 != 0 {
        return None;
    }
    let mut b = [0u8; 8];
    b.copy_from_slice(&s[8..16]);
    Some(u64::from_le_bytes(b))
}

/// Store `card` as the cached cardinality.
pub fn set_cached(s: &mut [u8], card: u64) {
    s[8..16].copy_from_slice(&card.to_le_bytes());
}

/// Mark the cached cardinality stale.
pub fn invalidate(s: &mut [u8]) {
    s[15] |= 0x80;
}

fn dense_get(regs: &[u8], i: usize) -> u8 {
    let byte = i * BITS / 8;
    let fb = (i * BITS) & 7;
    let b0 = u16::from(regs[byte]);
    // The last register's second byte is past the array (Redis reads the sds NUL): zero.
    let b1 = u16::from(regs.get(byte + 1).copied().unwrap_or(0));
    (((b0 >> fb) | (b1 << (8 - fb))) as u8) & REGISTER_MAX
}

fn dense_set(regs: &mut [u8], i: usize, v: u8) {
    let byte = i * BITS / 8;
    let fb = (i * BITS) & 7;
    let v = u16::from(v);
    let lo = &mut regs[byte];
    *lo &= !((u16::from(REGISTER_MAX) << fb) as u8);
    *lo |= (v << fb) as u8;
    if let Some(hi) = regs.get_mut(byte + 1) {
        *hi &= !((u16::from(REGISTER_MAX) >> (8 - fb)) as u8);
        *hi |= (v >> (8 - fb)) as u8;
    }
}

/// Raise register `i` of a dense value to `count`; true when it changed.
fn dense_set_max(s: &mut [u8], i: usize, count: u8) -> bool {
    let regs = &mut s[HDR..];
    if count > dense_get(regs, i) {
        dense_set(regs, i, count);
        true
    } else {
        false
    }
}

// One sparse opcode at `p`: (registers covered, value, bytes).
fn opcode(s: &[u8], p: usize) -> Result<(usize, u8, usize), Invalid> {
    let b = s[p];
    if b & 0xc0 == 0 {
        Ok((usize::from(b & 0x3f) + 1, 0, 1))
    } else if b & 0x80 == 0 {
        let lo = *s.get(p + 1).ok_or(Invalid)?;
        Ok(((usize::from(b & 0x3f) << 8 | usize::from(lo)) + 1, 0, 2))
    } else {
        Ok((usize::from(b & 0x3) + 1, ((b >> 2) & 0x1f) + 1, 1))
    }
}

fn push_xzero(out: &mut Vec<u8>, len: usize) {
    let l = len - 1;
    out.push((l >> 8) as u8 | 0x40);
    out.push((l & 0xff) as u8);
}

fn push_zero_run(out: &mut Vec<u8>, len: usize) {
    if len > ZERO_MAX_LEN {
        push_xzero(out, len);
    } else {
        out.push((len - 1) as u8);
    }
}

fn val_op(value: u8, len: usize) -> u8 {
    ((value - 1) << 2 | (len as u8 - 1)) | 0x80
}

/// Walk a sparse value's registers: `f(first register, run length, value)` per opcode; fails
/// unless they cover exactly [`REGISTERS`].
fn walk_sparse(s: &[u8], mut f: impl FnMut(usize, usize, u8)) -> Result<(), Invalid> {
    let mut p = HDR;
    let mut idx = 0usize;
    while p < s.len() {
        let (run, val, len) = opcode(s, p)?;
        if idx + run > REGISTERS {
            return Err(Invalid);
        }
        f(idx, run, val);
        idx += run;
        p += len;
    }
    if idx == REGISTERS {
        Ok(())
    } else {
        Err(Invalid)
    }
}

/// Make a sparse value dense (`hllSparseToDense`); the magic and cached cardinality are kept.
pub fn to_dense(s: &mut SharedBytes) -> Result<(), Invalid> {
    if s[4] == DENSE {
        return Ok(());
    }
    let mut dense = vec![0u8; DENSE_SIZE];
    dense[..HDR].copy_from_slice(&s[..HDR]);
    dense[4] = DENSE;
    walk_sparse(s, |first, run, val| {
        if val > 0 {
            for i in first..first + run {
                dense_set(&mut dense[HDR..], i, val);
            }
        }
    })?;
    *s = dense.into();
    Ok(())
}

/// Raise register `index` of a sparse value to `count` (`hllSparseSet`): true when it changed.
/// Promotes the value to dense when `count` does not fit a VAL opcode or the value would grow
/// past `max_bytes`.
fn sparse_set(
    s: &mut SharedBytes,
    index: usize,
    count: u8,
    max_bytes: usize,
) -> Result<bool, Invalid> {
    if count > VAL_MAX_VALUE {
        return promote(s, index, count);
    }
    // Step 1: the opcode covering `index`.
    let mut p = HDR;
    let mut first = 0usize;
    let mut prev: Option<usize> = None;
    let mut found = None;
    while p < s.len() {
        let (span, val, len) = opcode(s, p)?;
        if index < first + span {
            found = Some((span, val, len));
            break;
        }
        prev = Some(p);
        p += len;
        first += span;
    }
    let Some((span, curval, oplen)) = found else {
        return Err(Invalid);
    };
    let is_val = s[p] & 0x80 != 0;
    let is_zero = s[p] & 0xc0 == 0;
    // Step 2: the trivial cases.
    let mut done = false;
    if is_val {
        if curval >= count {
            return Ok(false);
        }
        if span == 1 {
            s[p] = val_op(count, 1);
            done = true;
        }
    }
    if !done && is_zero && span == 1 {
        s[p] = val_op(count, 1);
        done = true;
    }
    if !done {
        // The general case: split the opcode into up to three.
        let last = first + span - 1;
        let mut seq: Vec<u8> = Vec::with_capacity(5);
        if is_val {
            if index != first {
                seq.push(val_op(curval, index - first));
            }
            seq.push(val_op(count, 1));
            if index != last {
                seq.push(val_op(curval, last - index));
            }
        } else {
            if index != first {
                push_zero_run(&mut seq, index - first);
            }
            seq.push(val_op(count, 1));
            if index != last {
                push_zero_run(&mut seq, last - index);
            }
        }
        // Step 3: put the sequence in place of the opcode.
        if seq.len() > oplen && s.len() + seq.len() - oplen > max_bytes {
            return promote(s, index, count);
        }
        s.splice(p..p + oplen, &seq);
    }
    // Step 4: merge adjacent VAL opcodes of equal value, scanning up to 5 opcodes from the
    // previous one.
    let mut p = prev.unwrap_or(HDR);
    let mut scan = 5;
    while p < s.len() && scan > 0 {
        scan -= 1;
        let b = s[p];
        if b & 0xc0 == 0x40 {
            p += 2;
            continue;
        } else if b & 0xc0 == 0 {
            p += 1;
            continue;
        }
        if p + 1 < s.len() && s[p + 1] & 0x80 != 0 {
            let (l1, v1, _) = opcode(s, p)?;
            let (l2, v2, _) = opcode(s, p + 1)?;
            if v1 == v2 && l1 + l2 <= VAL_MAX_LEN {
                s[p + 1] = val_op(v1, l1 + l2);
                s.splice(p..p + 1, &[]);
                continue;
            }
        }
        p += 1;
    }
    invalidate(s);
    Ok(true)
}

fn promote(s: &mut SharedBytes, index: usize, count: u8) -> Result<bool, Invalid> {
    to_dense(s)?;
    // Promotion happens only for a register that must change.
    Ok(dense_set_max(s, index, count))
}

/// Add `ele` (`hllAdd`): true when a register changed (the caller then marks the cache stale).
pub fn add(s: &mut SharedBytes, ele: &[u8], max_bytes: usize) -> Result<bool, Invalid> {
    let (index, count) = pat_len(ele);
    set_register(s, index, count, max_bytes)
}

/// Raise register `index` to `count` in either encoding (PFADD's update, PFMERGE's write into
/// its destination).
pub fn set_register(
    s: &mut SharedBytes,
    index: usize,
    count: u8,
    max_bytes: usize,
) -> Result<bool, Invalid> {
    if s[4] == DENSE {
        Ok(dense_set_max(s, index, count))
    } else {
        sparse_set(s, index, count, max_bytes)
    }
}

/// Merge `s` into `max` (`hllMerge`): `max[i] = max(max[i], register i)`.
pub fn merge_into(max: &mut [u8], s: &[u8]) -> Result<(), Invalid> {
    if s[4] == DENSE {
        for (i, m) in max.iter_mut().enumerate().take(REGISTERS) {
            let v = dense_get(&s[HDR..], i);
            if v > *m {
                *m = v;
            }
        }
        Ok(())
    } else {
        walk_sparse(s, |first, run, val| {
            for m in &mut max[first..first + run] {
                if val > *m {
                    *m = val;
                }
            }
        })
    }
}

/// The estimated cardinality of a value (`hllCount`).
pub fn count(s: &[u8]) -> Result<u64, Invalid> {
    let mut histo = [0u32; 64];
    if s[4] == DENSE {
        for i in 0..REGISTERS {
            histo[usize::from(dense_get(&s[HDR..], i))] += 1;
        }
    } else {
        walk_sparse(s, |_, run, val| histo[usize::from(val)] += run as u32)?;
    }
    Ok(estimate(&histo))
}

/// The estimated cardinality of raw registers (one byte each, as PFCOUNT of several keys
/// merges them).
pub fn count_raw(regs: &[u8]) -> u64 {
    let mut histo = [0u32; 64];
    for &r in regs {
        histo[usize::from(r & 63)] += 1;
    }
    estimate(&histo)
}

/// Ertl's estimator from the register histogram ("New cardinality estimation algorithms for
/// HyperLogLog sketches", arXiv:1702.01284), as Redis 7.0 computes it.
fn estimate(histo: &[u32; 64]) -> u64 {
    let m = REGISTERS as f64;
    let mut z = m * tau((m - f64::from(histo[Q + 1])) / m);
    for j in (1..=Q).rev() {
        z += f64::from(histo[j]);
        z *= 0.5;
    }
    z += m * sigma(f64::from(histo[0]) / m);
    (ALPHA_INF * m * m / z).round() as u64
}

fn sigma(mut x: f64) -> f64 {
    if x == 1.0 {
        return f64::INFINITY;
    }
    let mut y = 1.0;
    let mut z = x;
    loop {
        x *= x;
        let prev = z;
        z += x * y;
        y += y;
        if prev == z {
            return z;
        }
    }
}

fn tau(mut x: f64) -> f64 {
    if x == 0.0 || x == 1.0 {
        return 0.0;
    }
    let mut y = 1.0;
    let mut z = 1.0 - x;
    loop {
        x = x.sqrt();
        let prev = z;
        y *= 0.5;
        z -= (1.0 - x).powi(2) * y;
        if prev == z {
            return z / 3.0;
        }
    }
}

/// Every register of a dense value (PFDEBUG GETREG).
pub fn registers(s: &[u8]) -> Vec<u8> {
    (0..REGISTERS).map(|i| dense_get(&s[HDR..], i)).collect()
}

/// PFDEBUG DECODE of a sparse value: `z:N`, `Z:N`, `v:V,N` per opcode.
pub fn decode(s: &[u8]) -> Result<String, Invalid> {
    let mut out = Vec::new();
    let mut p = HDR;
    while p < s.len() {
        let (run, val, len) = opcode(s, p)?;
        out.push(if val > 0 {
            format!("v:{val},{run}")
        } else if len == 2 {
            format!("Z:{run}")
        } else {
            format!("z:{run}")
        });
        p += len;
    }
    Ok(out.join(" "))
}

/// PFSELFTEST: dense registers keep what is written without touching neighbours; estimates of
/// 1..10^7 distinct elements stay within 6 standard errors; sparse and dense values of the
/// same elements agree. `Err` holds Redis's `TESTFAILED ...` text.
pub fn self_test(seed: u64, max_bytes: usize) -> Result<(), String> {
    let mut rng = seed | 1;
    let mut next = move || {
        // xorshift64*
        rng ^= rng >> 12;
        rng ^= rng << 25;
        rng ^= rng >> 27;
        rng.wrapping_mul(0x2545_f491_4f6c_dd1d)
    };
    let mut dense = SharedBytes::from(vec![0u8; DENSE_SIZE]);
    dense[..4].copy_from_slice(b"HYLL");
    let mut bytes = vec![0u8; REGISTERS];
    for _ in 0..1000 {
        for (i, b) in bytes.iter_mut().enumerate() {
            let r = (next() as u8) & REGISTER_MAX;
            *b = r;
            dense_set(&mut dense[HDR..], i, r);
        }
        for (i, &b) in bytes.iter().enumerate() {
            let v = dense_get(&dense[HDR..], i);
            if v != b {
                return Err(format!("TESTFAILED Register {i} should be {b} but is {v}"));
            }
        }
    }
    dense[HDR..].fill(0);
    let mut sparse = new_sparse();
    let relerr = 1.04 / (REGISTERS as f64).sqrt();
    let mut checkpoint: u64 = 1;
    let salt = next();
    for j in 1..=10_000_000u64 {
        let ele = (j ^ salt).to_le_bytes();
        add(&mut dense, &ele, max_bytes).map_err(|_| "TESTFAILED corrupted HLL".to_string())?;
        add(&mut sparse, &ele, max_bytes).map_err(|_| "TESTFAILED corrupted HLL".to_string())?;
        if j != checkpoint {
            continue;
        }
        if (j as usize) < max_bytes / 2 && sparse[4] != SPARSE {
            return Err("TESTFAILED sparse encoding not used".into());
        }
        let d = count(&dense).map_err(|_| "TESTFAILED corrupted HLL".to_string())?;
        let sp = count(&sparse).map_err(|_| "TESTFAILED corrupted HLL".to_string())?;
        if d != sp {
            return Err("TESTFAILED dense/sparse disagree".into());
        }
        let abserr = (checkpoint as i64 - d as i64).unsigned_abs();
        let maxerr = if j == 10 {
            1
        } else {
            (relerr * 6.0 * checkpoint as f64).ceil() as u64
        };
        if abserr > maxerr {
            return Err(format!(
                "TESTFAILED Too big error. card:{checkpoint} abserr:{abserr}"
            ));
        }
        checkpoint *= 10;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dense_registers_do_not_touch_neighbours() {
        let mut regs = vec![0u8; DENSE_SIZE - HDR];
        for i in 0..REGISTERS {
            dense_set(&mut regs, i, (i % 64) as u8);
        }
        for i in 0..REGISTERS {
            assert_eq!(dense_get(&regs, i), (i % 64) as u8, "register {i}");
        }
    }

    #[test]
    fn sparse_and_dense_agree_and_corruption_is_detected() {
        let mut sp = new_sparse();
        let mut de = new_sparse();
        to_dense(&mut de).unwrap();
        for i in 0..2000u32 {
            let e = i.to_le_bytes();
            assert_eq!(
                add(&mut sp, &e, 3000).unwrap(),
                add(&mut de, &e, 3000).unwrap()
            );
            assert_eq!(count(&sp).unwrap(), count(&de).unwrap());
        }
        let mut bad = new_sparse();
        bad.extend_from_slice(b"hello");
        assert_eq!(count(&bad), Err(Invalid));
        // Any byte anywhere: never a panic.
        let mut base = new_sparse();
        for i in 0..300u32 {
            add(&mut base, &i.to_le_bytes(), 3000).unwrap();
        }
        for pos in HDR..base.len() {
            for b in [0x00u8, 0x3f, 0x40, 0x7f, 0x80, 0xff] {
                let mut v = base.clone();
                v[pos] = b;
                let _ = count(&v);
                let _ = add(&mut v.clone(), b"x", 3000);
                let mut m = vec![0u8; REGISTERS];
                let _ = merge_into(&mut m, &v);
                let _ = decode(&v);
                let _ = to_dense(&mut v.clone());
            }
        }
    }
}
