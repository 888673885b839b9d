//! Timestamp column of a block: delta-of-delta, each a zigzag LEB128 varint.
//!
//! Layout: first timestamp, then the first delta, then for every further sample the
//! difference between its delta and the previous delta (Gorilla, Pelkonen et al. 2015,
//! §4.1.1, with byte-aligned varints instead of bit buckets). Arithmetic wraps, so any
//! sequence of i64 (irregular, decreasing, duplicate) round-trips exactly.

use crate::block::bits::{ByteReader, put_uvarint, unzigzag, zigzag};
use crate::error::CodecError;

/// Appends the encoding of `ts` to `out`.
pub(crate) fn encode(ts: &[i64], out: &mut Vec<u8>) {
    let mut prev = 0i64;
    let mut prev_delta = 0i64;
    for (i, &t) in ts.iter().enumerate() {
        match i {
            0 => put_uvarint(out, zigzag(t)),
            1 => {
                prev_delta = t.wrapping_sub(prev);
                put_uvarint(out, zigzag(prev_delta));
            }
            _ => {
                let delta = t.wrapping_sub(prev);
                put_uvarint(out, zigzag(delta.wrapping_sub(prev_delta)));
                prev_delta = delta;
            }
        }
        prev = t;
    }
}

/// Decodes `count` timestamps from `bytes`. Errors: the bytes end early or hold more
/// than `count` timestamps.
pub(crate) fn decode(bytes: &[u8], count: usize) -> Result<Vec<i64>, CodecError> {
    // Each timestamp takes at least one byte: a larger count is corrupt, and checking it
    // first keeps a corrupted count from allocating.
    if count > bytes.len() {
        return Err(CodecError::Corrupt("timestamps", "count exceeds the encoded bytes"));
    }
    let mut r = ByteReader::new(bytes, "timestamps");
    let mut out = Vec::with_capacity(count);
    let mut prev = 0i64;
    let mut delta = 0i64;
    for i in 0..count {
        let v = unzigzag(r.uvarint()?);
        let t = match i {
            0 => v,
            1 => {
                delta = v;
                prev.wrapping_add(delta)
            }
            _ => {
                delta = delta.wrapping_add(v);
                prev.wrapping_add(delta)
            }
        };
        out.push(t);
        prev = t;
    }
    if r.remaining() != 0 {
        return Err(CodecError::Corrupt("timestamps", "trailing bytes"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn regular_scrapes_take_one_byte_per_sample() {
        let ts: Vec<i64> = (0..100).map(|i| 1_700_000_000_000 + i * 15_000).collect();
        let mut out = Vec::new();
        encode(&ts, &mut out);
        // First timestamp (6 bytes as zigzag varint of ~1.7e12), first delta (3 bytes),
        // then 98 zero delta-of-deltas of one byte each.
        assert_eq!(out.len(), 6 + 3 + 98);
        assert_eq!(decode(&out, ts.len()).expect("decodes"), ts);
    }

    #[test]
    fn truncated_input_is_an_error() {
        let mut out = Vec::new();
        encode(&[1, 1000, 2_000_000], &mut out);
        assert!(decode(&out[..out.len() - 1], 3).is_err());
        assert!(decode(&out, 4).is_err());
        assert!(decode(&out, 2).is_err());
    }

    proptest! {
        #[test]
        fn round_trips_any_sequence(ts in proptest::collection::vec(any::<i64>(), 0..300)) {
            let mut out = Vec::new();
            encode(&ts, &mut out);
            prop_assert_eq!(decode(&out, ts.len()).expect("decodes"), ts);
        }

        #[test]
        fn round_trips_irregular_and_duplicate(base in -1_000_000_000_000i64..4_000_000_000_000,
                                               steps in proptest::collection::vec(-5_000i64..60_000, 0..300)) {
            let mut ts = vec![base];
            for s in steps { let last = *ts.last().expect("non-empty"); ts.push(last + s); }
            let mut out = Vec::new();
            encode(&ts, &mut out);
            prop_assert_eq!(decode(&out, ts.len()).expect("decodes"), ts);
        }

        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64), count in 0usize..100) {
            let _ = decode(&bytes, count);
        }
    }
}
