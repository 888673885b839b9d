//! Timestamp column of a block. The block header already holds the first timestamp, the
//! span (last − first) and the sample count, so:
//!
//! - [`TsCoding::ConstantInterval`]: every step equals span / (count − 1). The column is
//!   empty: a regular scrape costs nothing beyond the header.
//! - [`TsCoding::DeltaOfDelta`]: the first step, then for every further sample the
//!   difference between its step and the previous step, each a zigzag LEB128 varint
//!   (Gorilla, Pelkonen et al. 2015, §4.1.1, with byte-aligned varints instead of bit
//!   buckets so that zstd can squeeze runs of equal bytes).
//! - [`TsCoding::Grid`]: a nominal step (varint; the most common step), then each
//!   sample's offset from `first + i × step` as sparse runs (see `bits::put_sparse`):
//!   a scrape that is a few ms late costs one offset instead of three delta-of-deltas.
//!
//! Arithmetic wraps, so any sequence of i64 (irregular, duplicate, decreasing)
//! round-trips exactly. The block keeps whichever column is smallest after zstd.

use crate::block::CodecError;
use crate::block::bits::{self, ByteReader, put_uvarint, unzigzag, zigzag};

/// How the timestamp column is coded; the value is stored in the block's flags byte.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub enum TsCoding {
    /// Equal steps (or fewer than three samples): no column bytes.
    #[default]
    ConstantInterval = 0,
    /// Zigzag varint delta-of-delta.
    DeltaOfDelta = 1,
    /// Sparse offsets from a grid of equal steps.
    Grid = 2,
}

impl TsCoding {
    /// The coding stored as `bits` (0..=2). Errors: any other value.
    pub(crate) fn from_bits(bits: u8) -> Result<Self, CodecError> {
        match bits {
            0 => Ok(TsCoding::ConstantInterval),
            1 => Ok(TsCoding::DeltaOfDelta),
            2 => Ok(TsCoding::Grid),
            _ => Err(CodecError::Corrupt("header", "unknown timestamp coding")),
        }
    }
}

/// The step of a constant-interval column: `span / (count − 1)` (0 for fewer than two
/// samples), with `span` the wrapping difference last − first as u64.
fn interval(span: u64, count: usize) -> u64 {
    if count < 2 { 0 } else { span / (count as u64 - 1) }
}

/// The candidate columns for `ts` (whose first element and span the header holds): an
/// empty constant-interval column when it applies, else delta-of-delta and grid columns.
pub(crate) fn candidates(ts: &[i64]) -> Vec<(TsCoding, Vec<u8>)> {
    let (Some(&first), Some(&last)) = (ts.first(), ts.last()) else {
        return vec![(TsCoding::ConstantInterval, Vec::new())];
    };
    let step = interval(last.wrapping_sub(first) as u64, ts.len());
    if ts.windows(2).all(|w| w[1].wrapping_sub(w[0]) as u64 == step) {
        return vec![(TsCoding::ConstantInterval, Vec::new())];
    }
    let mut dod = Vec::with_capacity(ts.len());
    let mut prev = first;
    let mut prev_delta = 0i64;
    for &t in &ts[1..] {
        let delta = t.wrapping_sub(prev);
        put_uvarint(&mut dod, zigzag(delta.wrapping_sub(prev_delta)));
        prev_delta = delta;
        prev = t;
    }
    // The most common step, if one step is most of them (Boyer–Moore majority vote).
    let (mut step, mut votes) = (0i64, 0usize);
    for w in ts.windows(2) {
        let d = w[1].wrapping_sub(w[0]);
        if votes == 0 {
            step = d;
        }
        votes = if d == step { votes + 1 } else { votes - 1 };
    }
    let offsets: Vec<i64> = (1i64..)
        .zip(&ts[1..])
        .map(|(i, &t)| t.wrapping_sub(first.wrapping_add(i.wrapping_mul(step))))
        .collect();
    let mut grid = Vec::with_capacity(bits::sparse_len(&offsets) + 10);
    put_uvarint(&mut grid, zigzag(step));
    bits::put_sparse(&mut grid, &offsets);
    vec![(TsCoding::DeltaOfDelta, dod), (TsCoding::Grid, grid)]
}

/// Decodes `count` timestamps starting at `first` with wrapping span `span`, from the
/// column `bytes`. Errors: the bytes end early, hold more than `count − 1` steps, or a
/// constant-interval column is not empty or its span is not a multiple of the count.
#[cfg(test)]
pub(crate) fn decode(
    coding: TsCoding,
    bytes: &[u8],
    first: i64,
    span: u64,
    count: usize,
) -> Result<Vec<i64>, CodecError> {
    let mut out = Vec::new();
    decode_into(coding, bytes, first, span, count, &mut out)?;
    Ok(out)
}

/// [`decode`] into `out`, which is cleared first (its capacity is reused).
pub(crate) fn decode_into(
    coding: TsCoding,
    bytes: &[u8],
    first: i64,
    span: u64,
    count: usize,
    out: &mut Vec<i64>,
) -> Result<(), CodecError> {
    out.clear();
    if count == 0 {
        return Ok(());
    }
    out.reserve(count);
    out.push(first);
    match coding {
        TsCoding::ConstantInterval => {
            let step = interval(span, count);
            if !bytes.is_empty() || step.wrapping_mul(count as u64 - 1) != span {
                return Err(CodecError::Corrupt(
                    "timestamps",
                    "constant interval does not match the span",
                ));
            }
            let mut t = first;
            for _ in 1..count {
                t = t.wrapping_add(step as i64);
                out.push(t);
            }
        }
        TsCoding::DeltaOfDelta => {
            // Each step takes at least one byte: a larger count is corrupt, and checking it
            // first keeps a corrupted count from allocating.
            if count - 1 > bytes.len() {
                return Err(CodecError::Corrupt("timestamps", "count exceeds the encoded bytes"));
            }
            let mut r = ByteReader::new(bytes, "timestamps");
            let mut t = first;
            let mut delta = 0i64;
            for _ in 1..count {
                delta = delta.wrapping_add(unzigzag(r.uvarint()?));
                t = t.wrapping_add(delta);
                out.push(t);
            }
            if r.remaining() != 0 {
                return Err(CodecError::Corrupt("timestamps", "trailing bytes"));
            }
        }
        TsCoding::Grid => {
            let mut r = ByteReader::new(bytes, "timestamps");
            let step = unzigzag(r.uvarint()?);
            // The offsets from the grid go after the first timestamp, then become
            // timestamps in place.
            bits::read_sparse(&mut r, count - 1, out)?;
            if r.remaining() != 0 {
                return Err(CodecError::Corrupt("timestamps", "trailing bytes"));
            }
            for (i, t) in (1i64..).zip(&mut out[1..]) {
                *t = first.wrapping_add(i.wrapping_mul(step)).wrapping_add(*t);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The smallest candidate (before zstd), its length, and every candidate decoded.
    fn round_trip(ts: &[i64]) -> (TsCoding, usize, Vec<i64>) {
        let first = ts.first().copied().unwrap_or(0);
        let span = ts.last().copied().unwrap_or(0).wrapping_sub(first) as u64;
        let mut best: Option<(TsCoding, usize)> = None;
        for (coding, out) in candidates(ts) {
            let back = decode(coding, &out, first, span, ts.len()).expect("decodes");
            assert_eq!(back, ts, "{coding:?}");
            if best.is_none_or(|b| out.len() < b.1) {
                best = Some((coding, out.len()));
            }
        }
        let (coding, len) = best.expect("a candidate");
        (coding, len, ts.to_vec())
    }

    #[test]
    fn regular_scrapes_cost_no_column_bytes() {
        let ts: Vec<i64> = (0..3600).map(|i| 1_795_262_409_060 + i * 1000).collect();
        assert_eq!(round_trip(&ts), (TsCoding::ConstantInterval, 0, ts.clone()));
        // Duplicates only: a step of zero.
        let dup = vec![-7i64; 5];
        assert_eq!(round_trip(&dup), (TsCoding::ConstantInterval, 0, dup.clone()));
    }

    #[test]
    fn one_late_scrape_costs_two_bytes_on_the_grid() {
        let mut ts: Vec<i64> = (0..100).map(|i| 1_700_000_000_000 + i * 15_000).collect();
        ts[50] += 3;
        // Grid: the step 15000 (zigzag 30000: three bytes), then the run count 1 and the
        // run: 49 zeros and the offset +3 (zigzag 6), one byte each.
        assert_eq!(round_trip(&ts), (TsCoding::Grid, 3 + 1 + 2, ts.clone()));
        // Delta-of-delta: the first step (three bytes), then 98 one-byte varints
        // (+3, −6, +3 around the late scrape, zeros elsewhere).
        let dod = candidates(&ts).into_iter().find(|c| c.0 == TsCoding::DeltaOfDelta);
        assert_eq!(dod.map(|c| c.1.len()), Some(3 + 98));
    }

    #[test]
    fn corrupt_columns_are_errors() {
        let c = candidates(&[1, 1000, 2_000_000]);
        let out = &c.iter().find(|c| c.0 == TsCoding::DeltaOfDelta).expect("dod").1;
        let span = 2_000_000 - 1;
        assert!(decode(TsCoding::DeltaOfDelta, &out[..out.len() - 1], 1, span, 3).is_err());
        assert!(decode(TsCoding::DeltaOfDelta, out, 1, span, 4).is_err());
        assert!(decode(TsCoding::DeltaOfDelta, out, 1, span, 2).is_err());
        // A grid offset past the count.
        assert!(decode(TsCoding::Grid, &[2, 1, 5, 2], 0, 0, 3).is_err());
        // A span that 3 samples cannot split into equal steps, and stray column bytes.
        assert!(decode(TsCoding::ConstantInterval, &[], 0, 1001, 3).is_err());
        assert!(decode(TsCoding::ConstantInterval, &[0], 0, 1000, 3).is_err());
        assert!(TsCoding::from_bits(3).is_err());
    }

    proptest! {
        #[test]
        fn round_trips_any_sequence(ts in proptest::collection::vec(any::<i64>(), 0..300)) {
            prop_assert_eq!(round_trip(&ts).2, ts);
        }

        #[test]
        fn round_trips_irregular_and_duplicate(base in -1_000_000_000_000i64..4_000_000_000_000,
                                               steps in proptest::collection::vec(-5_000i64..60_000, 0..300)) {
            let mut ts = vec![base];
            for s in steps { let last = *ts.last().expect("non-empty"); ts.push(last + s); }
            prop_assert_eq!(round_trip(&ts).2, ts);
        }

        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64), count in 0usize..100,
                                first in any::<i64>(), span in any::<u64>(), coding in 0u8..3) {
            let coding = TsCoding::from_bits(coding).expect("valid");
            let _ = decode(coding, &bytes, first, span, count);
        }
    }
}
