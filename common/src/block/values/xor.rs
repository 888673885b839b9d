//! Gorilla XOR coding of a value column: the IEEE 754 bit patterns
//! (Pelkonen et al., "Gorilla", VLDB 2015, §4.1.2). Works on raw bits, so NaN payloads,
//! the staleness marker, ±Inf and -0.0 round-trip exactly.
//!
//! First value: 64 raw bits. Then per value, with `x = bits ^ previous bits`:
//! - `0`: same bits as the previous value;
//! - `10` + meaningful bits: `x` fits in the previous window of leading/trailing zeros;
//! - `11` + 5 bits leading-zero count (capped at 31) + 6 bits meaningful length (64 is
//!   written as 0) + the meaningful bits: a new window.

use crate::block::CodecError;
use crate::block::bits::{BitReader, BitWriter};

/// Encodes the bit patterns `values` (from `f64::to_bits`).
pub(crate) fn encode(values: &[u64]) -> Vec<u8> {
    let mut w = BitWriter::with_capacity(values.len() + 8);
    let mut prev = 0u64;
    // The current window: leading zeros and meaningful length; none before the first
    // `11` record.
    let mut window: Option<(u8, u8)> = None;
    for (i, &v) in values.iter().enumerate() {
        if i == 0 {
            w.write_bits(v, 64);
            prev = v;
            continue;
        }
        let x = v ^ prev;
        prev = v;
        if x == 0 {
            w.write_bit(false);
            continue;
        }
        w.write_bit(true);
        let leading = (x.leading_zeros() as u8).min(31);
        let trailing = x.trailing_zeros() as u8;
        if let Some((wl, wlen)) = window {
            let wtrail = 64 - wl - wlen;
            if leading >= wl && trailing >= wtrail {
                w.write_bit(false);
                w.write_bits(x >> wtrail, wlen);
                continue;
            }
        }
        let len = 64 - leading - trailing;
        w.write_bit(true);
        w.write_bits(u64::from(leading), 5);
        w.write_bits(u64::from(len % 64), 6);
        w.write_bits(x >> trailing, len);
        window = Some((leading, len));
    }
    w.finish()
}

/// Decodes `count` bit patterns. Errors: the bits end early or a window is invalid.
#[cfg(test)]
pub(crate) fn decode(bytes: &[u8], count: usize) -> Result<Vec<u64>, CodecError> {
    let mut out = Vec::new();
    decode_into(bytes, count, &mut out)?;
    Ok(out)
}

/// [`decode`] appending to `out`.
pub(crate) fn decode_into(bytes: &[u8], count: usize, out: &mut Vec<u64>) -> Result<(), CodecError> {
    // The first value takes 64 bits and each further one at least 1.
    if count > 0 && count - 1 + 64 > bytes.len() * 8 {
        return Err(CodecError::Corrupt("values", "count exceeds the encoded bits"));
    }
    let mut r = BitReader::new(bytes);
    out.reserve(count);
    let mut prev = 0u64;
    let mut window: Option<(u8, u8)> = None;
    for i in 0..count {
        if i == 0 {
            prev = r.read_bits(64)?;
            out.push(prev);
            continue;
        }
        if r.read_bit()? {
            let (leading, len) = if r.read_bit()? {
                let leading = r.read_bits(5)? as u8;
                let len = match r.read_bits(6)? as u8 {
                    0 => 64,
                    n => n,
                };
                if u32::from(leading) + u32::from(len) > 64 {
                    return Err(CodecError::Corrupt("values", "window wider than 64 bits"));
                }
                window = Some((leading, len));
                (leading, len)
            } else {
                window.ok_or(CodecError::Corrupt("values", "window reused before it was set"))?
            };
            let trailing = 64 - leading - len;
            let bits = r.read_bits(len)?;
            prev ^= if trailing == 64 { 0 } else { bits << trailing };
        }
        out.push(prev);
    }
    // Only the zero padding of the last byte may remain.
    if r.remaining_bits() >= 8 {
        return Err(CodecError::Corrupt("values", "trailing bytes"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn bits(vs: &[f64]) -> Vec<u64> {
        vs.iter().map(|v| v.to_bits()).collect()
    }

    #[test]
    fn special_values_survive_bit_exactly() {
        let vs = bits(&[
            0.0,
            -0.0,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::from_bits(crate::STALE_NAN_BITS),
            f64::NAN,
            f64::from_bits(0x7ff8_dead_beef_0001),
            f64::MIN_POSITIVE,
            f64::MAX,
        ]);
        let enc = encode(&vs);
        assert_eq!(decode(&enc, vs.len()).expect("decodes"), vs);
    }

    #[test]
    fn constant_series_takes_one_bit_per_repeat() {
        let vs = vec![42.5f64.to_bits(); 801];
        // 64 bits for the first value and 800 single bits: 864 bits = 108 bytes.
        assert_eq!(encode(&vs).len(), 108);
    }

    #[test]
    fn empty_and_single() {
        assert!(encode(&[]).is_empty());
        assert_eq!(decode(&[], 0).expect("empty"), Vec::<u64>::new());
        let one = [(-0.0f64).to_bits()];
        assert_eq!(decode(&encode(&one), 1).expect("one"), one);
    }

    proptest! {
        #[test]
        fn round_trips_any_bits(vs in proptest::collection::vec(any::<u64>(), 0..300)) {
            let enc = encode(&vs);
            prop_assert_eq!(decode(&enc, vs.len()).expect("decodes"), vs);
        }

        #[test]
        fn round_trips_gauges(start in -1e6f64..1e6, steps in proptest::collection::vec(-10.0f64..10.0, 0..300)) {
            let mut v = start;
            let mut vs = vec![v.to_bits()];
            for s in steps { v += s; vs.push(v.to_bits()); }
            let enc = encode(&vs);
            prop_assert_eq!(decode(&enc, vs.len()).expect("decodes"), vs);
        }

        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64), count in 0usize..600) {
            let _ = decode(&bytes, count);
        }
    }
}
