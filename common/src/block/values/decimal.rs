//! Decimal-mantissa coding of a value column, as VictoriaMetrics stores values: every
//! value is an integer mantissa `m` over a power of ten shared by the block,
//! `value = m as f64 / 10^d` with `d` decimal places (0 ≤ d ≤ 22, where 10^d is exact in
//! f64 so the division is correctly rounded). A value whose mantissa does not give back
//! its exact bits (NaN, ±Inf, -0.0, too many digits) is stored raw in an exception list.
//! The mantissas are then coded as raw values, deltas (counters) or delta-of-deltas.
//!
//! Layout:
//!
//! | bytes | field |
//! |---|---|
//! | 1 | decimal places `d` |
//! | 1 | residual order: 0 = mantissas, 1 = deltas, 2 = delta-of-deltas |
//! | varint | exception count, then per exception: varint gap to the previous exception's position (the first: its position), 8 bytes raw IEEE 754 bits, LE |
//! | varints | the first `order` residuals, zigzag (the first mantissa, then the first delta) |
//! | rest | the other residuals: [`Packing::Varint`]: one zigzag varint each; [`Packing::Bits`]: zigzag varint base (the smallest), 1 byte width `w` ≤ 64, then each residual − base in `w` bits, most significant first; [`Packing::Runs`]: varint count of non-zero residuals, then for each the varint count of zeros before it and its zigzag varint (zeros at the end implied) |
//!
//! At an exception's position the mantissa sequence repeats the previous mantissa.

use crate::block::CodecError;
use crate::block::bits::{self, BitReader, BitWriter, ByteReader, put_uvarint, unzigzag, varint_len, zigzag};

/// Largest number of decimal places: 10^22 is the largest power of ten exact in f64.
const MAX_DECIMALS: u8 = 22;
const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20,
    1e21, 1e22,
];

/// How the residuals after the first `order` ones are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Packing {
    /// One zigzag varint each (byte-aligned: zstd squeezes it further).
    Varint,
    /// Frame of reference: fixed bit width above the smallest residual.
    Bits,
    /// Sparse runs: zero-run length and non-zero value, varints (see `bits::put_sparse`).
    Runs,
}

/// The value of mantissa `m` at `decimals` places: the one formula encoder and decoder use.
fn value_of(m: i64, decimals: u8) -> f64 {
    m as f64 / POW10[usize::from(decimals)]
}

/// The mantissa of `bits` at `decimals` places, if it gives back exactly `bits`.
fn mantissa_at(bits: u64, decimals: u8) -> Option<i64> {
    let scaled = (f64::from_bits(bits) * POW10[usize::from(decimals)]).round();
    // Also rejects ±Inf; i64 ends near 9.22e18.
    if scaled.is_nan() || scaled.abs() >= 9.2e18 {
        return None;
    }
    let m = scaled as i64;
    (value_of(m, decimals).to_bits() == bits).then_some(m)
}

/// The fewest decimal places at which `bits` round-trips, searching from `hint` (the
/// previous value's answer, usually the same).
fn min_decimals(bits: u64, hint: u8) -> Option<u8> {
    if !f64::from_bits(bits).is_finite() {
        return None;
    }
    if mantissa_at(bits, hint).is_some() {
        let mut d = hint;
        while d > 0 && mantissa_at(bits, d - 1).is_some() {
            d -= 1;
        }
        Some(d)
    } else {
        (hint + 1..=MAX_DECIMALS).find(|&d| mantissa_at(bits, d).is_some())
    }
}

/// A value column as mantissas.
pub(crate) struct Mantissas {
    decimals: u8,
    /// One per value; at an exception, the previous mantissa.
    m: Vec<i64>,
    /// Positions (ascending) and raw bits of the values that are not mantissas.
    exceptions: Vec<(usize, u64)>,
}

/// Converts `values` (IEEE 754 bits) to mantissas over the fewest decimal places that
/// all but about 1 in 64 values need (those become exceptions, as do NaN, ±Inf, -0.0).
/// `None` when more than a quarter of the values would be exceptions.
pub(crate) fn mantissas(values: &[u64]) -> Option<Mantissas> {
    let n = values.len();
    let max_exceptions = n / 4;
    let mut needs = Vec::with_capacity(n);
    let mut hist = [0usize; MAX_DECIMALS as usize + 1];
    let mut unrepresentable = 0usize;
    let mut hint = 0u8;
    for &b in values {
        match min_decimals(b, hint) {
            Some(d) => {
                hist[usize::from(d)] += 1;
                hint = d;
                needs.push(d);
            }
            None => {
                unrepresentable += 1;
                if unrepresentable > max_exceptions {
                    return None;
                }
                needs.push(u8::MAX);
            }
        }
    }
    // The fewest places that leave at most n/64 representable values as exceptions.
    let mut above = n - unrepresentable;
    let mut decimals = MAX_DECIMALS;
    for (d, count) in hist.iter().enumerate() {
        above -= count;
        if above <= n / 64 {
            decimals = d as u8;
            break;
        }
    }
    let mut m = Vec::with_capacity(n);
    let mut exceptions = Vec::new();
    let mut prev = None;
    for (i, (&b, &need)) in values.iter().zip(&needs).enumerate() {
        match (need <= decimals).then(|| mantissa_at(b, decimals)).flatten() {
            Some(x) => {
                m.push(x);
                prev = Some(x);
            }
            None => {
                exceptions.push((i, b));
                m.push(prev.unwrap_or(0));
            }
        }
    }
    if exceptions.len() > max_exceptions || (n > 0 && exceptions.len() == n) {
        return None;
    }
    // Leading exceptions take the first mantissa, so that they add no residual.
    let lead = exceptions.iter().enumerate().take_while(|(k, e)| e.0 == *k).count();
    if lead > 0 {
        let first = m[lead];
        m[..lead].fill(first);
    }
    Some(Mantissas {
        decimals,
        m,
        exceptions,
    })
}

/// Residuals of order `order` (0, 1, 2): element i < order is the i-th difference of
/// the first values (the first mantissa, the first delta), the rest the `order`-th
/// differences. Wrapping.
fn residuals(m: &[i64], order: u8) -> Vec<i64> {
    let mut r = m.to_vec();
    for k in 1..=usize::from(order) {
        for i in (k..r.len()).rev() {
            r[i] = r[i].wrapping_sub(r[i - 1]);
        }
    }
    r
}

/// Inverse of [`residuals`] followed by [`value_of`], in one pass over `r`: residuals in,
/// value bits out. Integration works on the residuals' two's-complement bits (wrapping
/// addition is the same on both).
fn integrate_to_values(r: &mut [u64], order: u8, decimals: u8) {
    // 10^0 = 1 divides exactly: without decimal places `value_of` is the conversion
    // alone, and the loop is made without the division.
    if decimals == 0 {
        integrate_with(r, order, |m| m as f64);
    } else {
        integrate_with(r, order, |m| value_of(m, decimals));
    }
}

#[inline(always)]
fn integrate_with(r: &mut [u64], order: u8, value: impl Fn(i64) -> f64) {
    match order {
        0 => {
            for x in r.iter_mut() {
                *x = value(*x as i64).to_bits();
            }
        }
        1 => {
            let mut m = 0u64;
            for x in r.iter_mut() {
                m = m.wrapping_add(*x);
                *x = value(m as i64).to_bits();
            }
        }
        _ => {
            // The first mantissa, then the first delta, then delta-of-deltas.
            let (mut m, mut d) = (0u64, 0u64);
            for (i, x) in r.iter_mut().enumerate() {
                match i {
                    0 => m = *x,
                    1 => {
                        d = *x;
                        m = m.wrapping_add(d);
                    }
                    _ => {
                        d = d.wrapping_add(*x);
                        m = m.wrapping_add(d);
                    }
                }
                *x = value(m as i64).to_bits();
            }
        }
    }
}

/// Appends the column of `mant` with the residual order that makes `packing` smallest.
pub(crate) fn encode(mant: &Mantissas, packing: Packing) -> Vec<u8> {
    let n = mant.m.len();
    let mut best: Option<(usize, u8, Vec<i64>)> = None;
    for order in 0..=2u8.min(n as u8) {
        let r = residuals(&mant.m, order);
        let body = &r[usize::from(order)..];
        let cost = match packing {
            Packing::Varint => body.iter().map(|&x| varint_len(zigzag(x))).sum(),
            Packing::Bits => body.len() * usize::from(width(body)) / 8,
            Packing::Runs => bits::sparse_len(body),
        };
        if best.as_ref().is_none_or(|b| cost < b.0) {
            best = Some((cost, order, r));
        }
    }
    let (cost, order, r) = best.unwrap_or((0, 0, Vec::new()));
    let mut out = Vec::with_capacity(cost + 16 + 9 * mant.exceptions.len());
    out.push(mant.decimals);
    out.push(order);
    put_uvarint(&mut out, mant.exceptions.len() as u64);
    let mut next = 0usize;
    for &(pos, bits) in &mant.exceptions {
        put_uvarint(&mut out, (pos - next) as u64);
        out.extend_from_slice(&bits.to_le_bytes());
        next = pos + 1;
    }
    let (head, body) = r.split_at(usize::from(order));
    for &x in head {
        put_uvarint(&mut out, zigzag(x));
    }
    match packing {
        Packing::Varint => body.iter().for_each(|&x| put_uvarint(&mut out, zigzag(x))),
        Packing::Bits => {
            let base = body.iter().copied().min().unwrap_or(0);
            let w = width(body);
            put_uvarint(&mut out, zigzag(base));
            out.push(w);
            let mut bw = BitWriter::with_capacity(body.len() * usize::from(w) / 8 + 1);
            for &x in body {
                bw.write_bits(x.wrapping_sub(base) as u64, w);
            }
            out.extend_from_slice(&bw.finish());
        }
        Packing::Runs => bits::put_sparse(&mut out, body),
    }
    out
}

/// Bits needed for every residual above the smallest.
fn width(body: &[i64]) -> u8 {
    let (Some(lo), Some(hi)) = (body.iter().min(), body.iter().max()) else {
        return 0;
    };
    (64 - (hi.wrapping_sub(*lo) as u64).leading_zeros()) as u8
}

/// Decodes `count` values (IEEE 754 bits). Errors: truncated or inconsistent column.
#[cfg(test)]
pub(crate) fn decode(bytes: &[u8], count: usize, packing: Packing) -> Result<Vec<u64>, CodecError> {
    let mut out = Vec::new();
    decode_into(bytes, count, packing, &mut out)?;
    Ok(out)
}

/// [`decode`] appending to `out` (empty): the mantissas' residuals are read into it,
/// integrated and turned into values in place.
pub(crate) fn decode_into(bytes: &[u8], count: usize, packing: Packing, out: &mut Vec<u64>) -> Result<(), CodecError> {
    const S: &str = "values";
    let mut r = ByteReader::new(bytes, S);
    let decimals = r.take(1)?[0];
    let order = r.take(1)?[0];
    if decimals > MAX_DECIMALS || order > 2 || usize::from(order) > count {
        return Err(CodecError::Corrupt(S, "bad decimal places or residual order"));
    }
    let n_exc = r.uvarint()?;
    if n_exc > count as u64 || n_exc.saturating_mul(9) > r.remaining() as u64 {
        return Err(CodecError::Corrupt(S, "exception count exceeds the column"));
    }
    let mut exceptions = Vec::with_capacity(n_exc as usize);
    let mut next = 0u64;
    for _ in 0..n_exc {
        let pos = next.saturating_add(r.uvarint()?);
        if pos >= count as u64 {
            return Err(CodecError::Corrupt(S, "exception position past the end"));
        }
        let raw = r.take(8)?;
        let mut b = [0u8; 8];
        b.copy_from_slice(raw);
        exceptions.push((pos as usize, u64::from_le_bytes(b)));
        next = pos + 1;
    }
    // Residuals are held as the bits of their i64 values until they become values.
    let res = out;
    res.reserve(count);
    for _ in 0..order {
        res.push(unzigzag(r.uvarint()?) as u64);
    }
    let body = count - usize::from(order);
    match packing {
        Packing::Varint => {
            if body > r.remaining() {
                return Err(CodecError::Corrupt(S, "count exceeds the encoded bytes"));
            }
            for _ in 0..body {
                res.push(unzigzag(r.uvarint()?) as u64);
            }
            if r.remaining() != 0 {
                return Err(CodecError::Corrupt(S, "trailing bytes"));
            }
        }
        Packing::Bits => {
            let base = unzigzag(r.uvarint()?);
            let w = r.take(1)?[0];
            if w > 64 {
                return Err(CodecError::Corrupt(S, "bit width over 64"));
            }
            let rest = r.rest();
            let bits = (body as u128) * u128::from(w);
            if bits > rest.len() as u128 * 8 || rest.len() as u128 * 8 - bits >= 8 {
                return Err(CodecError::Corrupt(S, "bit-packed length differs from the count"));
            }
            if w == 0 {
                // Every residual is the base (a steady counter, a constant gauge).
                res.resize(res.len() + body, base as u64);
            } else {
                let mut br = BitReader::new(rest);
                for _ in 0..body {
                    res.push(base.wrapping_add(br.read_bits(w)? as i64) as u64);
                }
            }
        }
        Packing::Runs => {
            bits::read_sparse(&mut r, body, res)?;
            if r.remaining() != 0 {
                return Err(CodecError::Corrupt(S, "trailing bytes"));
            }
        }
    }
    integrate_to_values(res, order, decimals);
    for (pos, bits) in exceptions {
        res[pos] = bits;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bits(vs: &[f64]) -> Vec<u64> {
        vs.iter().map(|v| v.to_bits()).collect()
    }

    #[test]
    fn finds_the_fewest_decimal_places() {
        let m = mantissas(&bits(&[0.5, 1.25, 3.0])).expect("decimal");
        assert_eq!((m.decimals, m.m.clone()), (2, vec![50, 125, 300]));
        let m = mantissas(&bits(&[1e15, -7.0])).expect("integers");
        assert_eq!((m.decimals, m.m), (0, vec![1_000_000_000_000_000, -7]));
        // 0.1 + 0.2 = 0.30000000000000004 needs 17 places; the others one.
        let mut vs = vec![0.1f64; 70];
        vs[3] = 0.1 + 0.2;
        let m = mantissas(&bits(&vs)).expect("one exception");
        assert_eq!(
            (m.decimals, m.exceptions.clone()),
            (1, vec![(3, (0.1f64 + 0.2).to_bits())])
        );
        assert_eq!(m.m[3], 1, "an exception repeats the previous mantissa");
    }

    #[test]
    fn special_values_are_exceptions() {
        let mut vs = vec![2.0f64; 16];
        vs[0] = f64::NAN;
        vs[5] = -0.0;
        vs[9] = f64::NEG_INFINITY;
        vs[15] = f64::from_bits(crate::STALE_NAN_BITS);
        let vs = bits(&vs);
        let m = mantissas(&vs).expect("four exceptions in sixteen");
        assert_eq!(m.exceptions.iter().map(|e| e.0).collect::<Vec<_>>(), vec![0, 5, 9, 15]);
        assert_eq!(m.m, vec![2; 16]);
        for p in [Packing::Varint, Packing::Bits, Packing::Runs] {
            assert_eq!(decode(&encode(&m, p), vs.len(), p).expect("decodes"), vs);
        }
        assert!(mantissas(&bits(&[f64::NAN, f64::NAN, 1.0])).is_none());
    }

    #[test]
    fn a_steady_counter_packs_into_a_few_bits() {
        // A counter growing by 1.00..=1.03 per sample: mantissas at two places, deltas
        // 100..=103, so order 1 packs each delta into 2 bits above the base 100:
        // 2 bytes (places, order) + 1 (no exceptions) + 2 (first mantissa 100, zigzag)
        // + 2 (base 100, zigzag) + 1 (width) + 999 × 2 bits (250 bytes).
        let mut v = 0i64;
        let vs: Vec<u64> = (0..1000)
            .map(|i| {
                v += 100 + (i * 7 % 4);
                (v as f64 / 100.0).to_bits()
            })
            .collect();
        let m = mantissas(&vs).expect("decimal");
        assert_eq!(m.decimals, 2);
        let enc = encode(&m, Packing::Bits);
        assert_eq!(enc[1], 1, "delta order");
        assert_eq!(enc.len(), 2 + 1 + 2 + 2 + 1 + 250);
        assert_eq!(decode(&enc, vs.len(), Packing::Bits).expect("decodes"), vs);
        // As varints, delta-of-deltas (−1..=3, one byte each) beat deltas (zigzag
        // 200..=206, two bytes each).
        let enc = encode(&m, Packing::Varint);
        assert_eq!(enc[1], 2, "delta-of-delta order");
        assert_eq!(decode(&enc, vs.len(), Packing::Varint).expect("decodes"), vs);
    }

    #[test]
    fn corrupt_columns_are_errors() {
        let vs = bits(&[1.5, 2.5, 2.5, 4.0]);
        let m = mantissas(&vs).expect("decimal");
        for p in [Packing::Varint, Packing::Bits, Packing::Runs] {
            let enc = encode(&m, p);
            assert!(decode(&enc[..enc.len() - 1], 4, p).is_err(), "{p:?}");
            let mut bad = enc.clone();
            bad[0] = 23;
            assert!(decode(&bad, 4, p).is_err(), "{p:?}");
        }
        // A count other than the one encoded: varints notice any; bit-packed residuals of
        // a few bits can hide one more in the padding, but not 36 more; sparse runs imply
        // trailing zeros, but notice a run that ends past the count. (The block header
        // checks the count against the time range.)
        let enc = |p| encode(&m, p);
        assert!(decode(&enc(Packing::Varint), 5, Packing::Varint).is_err());
        assert!(decode(&enc(Packing::Bits), 40, Packing::Bits).is_err());
        assert!(decode(&enc(Packing::Runs), 3, Packing::Runs).is_err());
    }
}
