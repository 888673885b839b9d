//! Reading a series from several blocks at once, as a search answer carries it: blocks
//! in precedence order, samples cut to the searched range, one sample per timestamp.

use std::cell::RefCell;

use super::{CodecError, decode_columns_into, summary};

/// Most samples reserved ahead from block headers (256 MiB of columns).
const MAX_RESERVED: usize = 1 << 24;

/// Largest decoding buffers (samples) a thread keeps for its next call.
const KEPT_SCRATCH_SAMPLES: usize = 1 << 16;

thread_local! {
    /// One block's decoded columns, reused by the calls on this thread: a query reading a
    /// few samples of each of many whole blocks allocates only what it keeps.
    static SCRATCH: RefCell<(Vec<i64>, Vec<u64>)> = const { RefCell::new((Vec::new(), Vec::new())) };
}

/// Samples of a block of `count` samples from `first` to `last` (ms) expected in
/// `[start_ms, end_ms]`, assuming they are spread evenly; at least one when they overlap.
fn expected_in_range(count: usize, first: i64, last: i64, start_ms: i64, end_ms: i64) -> usize {
    if first >= start_ms && last <= end_ms {
        return count;
    }
    let span = i128::from(last) - i128::from(first) + 1;
    let within = i128::from(last.min(end_ms)) - i128::from(first.max(start_ms)) + 1;
    (within.clamp(0, span) * count as i128 / span.max(1)) as usize + 1
}

/// The samples of `blocks` with timestamps in `[start_ms, end_ms]`, sorted by timestamp
/// (ms) with one sample per timestamp: where several share one, the sample of the later
/// block wins, and within a block the later one. Blocks are in precedence order (older
/// first), as `Series.blocks` of a search answer. Values are returned as `f64`, their bits
/// unchanged. Errors: a block that does not decode.
pub fn samples_in_range<B: AsRef<[u8]>>(
    blocks: &[B],
    start_ms: i64,
    end_ms: i64,
) -> Result<(Vec<i64>, Vec<f64>), CodecError> {
    // Room for every sample of the overlapping blocks, reserved once: growing by
    // doubling would hold up to twice the memory for the rest of the query.
    let mut room = 0usize;
    let mut overlapping: Vec<&[u8]> = Vec::with_capacity(blocks.len());
    for b in blocks {
        let b = b.as_ref();
        let (count, first, last) = summary(b)?;
        if last >= start_ms && first <= end_ms {
            room = room.saturating_add(expected_in_range(count, first, last, start_ms, end_ms));
            overlapping.push(b);
        }
    }
    // Headers claim the counts: a reservation past MAX_RESERVED grows as it goes.
    let room = room.min(MAX_RESERVED);
    let mut ts: Vec<i64> = Vec::with_capacity(room);
    let mut vs: Vec<f64> = Vec::with_capacity(room);
    // Whether the timestamps gathered so far are strictly increasing (the usual case:
    // blocks that do not overlap, in time order), so that no sort is needed.
    let mut increasing = true;
    SCRATCH.with(|scratch| -> Result<(), CodecError> {
        let (bt, bv) = &mut *scratch.borrow_mut();
        let gathered = (|| {
            for b in overlapping {
                let layout = decode_columns_into(b, bt, bv)?;
                let lo = bt.partition_point(|&t| t < start_ms);
                let hi = bt.partition_point(|&t| t <= end_ms);
                if lo >= hi {
                    continue;
                }
                let (bt, bv) = (&bt[lo..hi], &bv[lo..hi]);
                if increasing && (ts.last().is_some_and(|&p| p >= bt[0]) || !layout.unique_timestamps) {
                    increasing = false;
                }
                ts.extend_from_slice(bt);
                vs.extend(bv.iter().map(|&v| f64::from_bits(v)));
            }
            Ok(())
        })();
        if bt.capacity() > KEPT_SCRATCH_SAMPLES {
            *bt = Vec::new();
            *bv = Vec::new();
        }
        gathered
    })?;
    if increasing {
        return Ok((ts, vs));
    }
    // Stable sort by timestamp keeps precedence order among equal timestamps; the last
    // of each run wins.
    let mut pairs: Vec<(i64, f64)> = ts.into_iter().zip(vs).collect();
    pairs.sort_by_key(|p| p.0);
    let mut out_t = Vec::with_capacity(pairs.len());
    let mut out_v = Vec::with_capacity(pairs.len());
    for (t, v) in pairs {
        if out_t.last() == Some(&t) {
            if let Some(last) = out_v.last_mut() {
                *last = v;
            }
        } else {
            out_t.push(t);
            out_v.push(v);
        }
    }
    Ok((out_t, out_v))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block::{Sample, encode, encode_unpacked};

    fn bits(ts: &[i64], vs: &[f64]) -> Vec<(i64, u64)> {
        ts.iter().zip(vs).map(|(&t, &v)| (t, v.to_bits())).collect()
    }

    #[test]
    fn calls_after_larger_blocks_of_other_codings_read_only_their_own_samples() {
        // One thread decodes blocks of every value coding and of very different sizes
        // one after the other, through the reused buffers: each answer is its block's
        // samples cut to the range, whatever the block before held.
        let noisy: Vec<Sample> = (0..8_192)
            .map(|i| (i * 1_000, (i as f64 * 1.37).sin().to_bits()))
            .collect();
        let decimal: Vec<Sample> = (0..300).map(|i| (i * 1_000, (i as f64 * 0.25).to_bits())).collect();
        let constant: Vec<Sample> = (0..50).map(|i| (i * 7, 42f64.to_bits())).collect();
        let stale = crate::STALE_NAN_BITS;
        let tiny: Vec<Sample> = vec![(5, stale), (6, (-0.0f64).to_bits())];
        for _ in 0..2 {
            for s in [&noisy, &decimal, &constant, &tiny, &noisy] {
                let (first, last) = (s[0].0, s[s.len() - 1].0);
                for (start, end) in [(first, last), (first + 1, last - 1), ((first + last) / 2, last)] {
                    let (ts, vs) = samples_in_range(&[encode(s)], start, end).expect("decodes");
                    let want: Vec<Sample> = s.iter().copied().filter(|&(t, _)| t >= start && t <= end).collect();
                    assert_eq!(bits(&ts, &vs), want);
                }
            }
        }
    }

    #[test]
    fn expected_samples_in_range_follow_the_overlap() {
        // A block of 1,000 samples over [0, 999_000]: whole, half and a sliver.
        assert_eq!(expected_in_range(1_000, 0, 999_000, -5, 2_000_000), 1_000);
        let half = expected_in_range(1_000, 0, 999_000, 500_000, 2_000_000);
        assert!((499..=502).contains(&half), "{half}");
        let sliver = expected_in_range(1_000, 0, 999_000, 999_000, 999_000);
        assert!((1..=2).contains(&sliver), "{sliver}");
        // Extreme timestamps do not overflow.
        assert_eq!(expected_in_range(2, i64::MIN, i64::MAX, i64::MIN, i64::MAX), 2);
        assert!(expected_in_range(2, i64::MIN, i64::MAX, 0, 0) >= 1);
    }

    #[test]
    fn blocks_in_time_order_are_cut_to_the_range() {
        let a: Vec<Sample> = (0..100).map(|i| (i * 1_000, (i as f64).to_bits())).collect();
        let b: Vec<Sample> = (100..200).map(|i| (i * 1_000, (i as f64).to_bits())).collect();
        let (ts, vs) = samples_in_range(&[encode(&a), encode_unpacked(&b)], 50_000, 149_000).expect("decodes");
        let want: Vec<Sample> = a[50..].iter().chain(&b[..50]).copied().collect();
        assert_eq!(bits(&ts, &vs), want);
        // A range that no block overlaps.
        let (ts, _) = samples_in_range(&[encode(&a)], 500_000, 600_000).expect("decodes");
        assert!(ts.is_empty());
    }

    #[test]
    fn the_later_block_wins_a_shared_timestamp_and_bits_are_kept() {
        let nan = f64::from_bits(0x7ff8_0000_0000_0bad);
        let old = encode(&[
            (1_000, 1f64.to_bits()),
            (2_000, 2f64.to_bits()),
            (3_000, 3f64.to_bits()),
        ]);
        // A later block rewrites 2s and adds 0s and 4s out of the older block's order.
        let new = encode_unpacked(&[
            (0, (-0.0f64).to_bits()),
            (2_000, nan.to_bits()),
            (4_000, 4f64.to_bits()),
        ]);
        let (ts, vs) = samples_in_range(&[old.clone(), new.clone()], i64::MIN, i64::MAX).expect("decodes");
        assert_eq!(
            bits(&ts, &vs),
            vec![
                (0, (-0.0f64).to_bits()),
                (1_000, 1f64.to_bits()),
                (2_000, nan.to_bits()),
                (3_000, 3f64.to_bits()),
                (4_000, 4f64.to_bits())
            ]
        );
        // In the other precedence order the older value stays.
        let (ts, vs) = samples_in_range(&[new, old], i64::MIN, i64::MAX).expect("decodes");
        assert_eq!(vs[ts.iter().position(|&t| t == 2_000).expect("2s kept")], 2.0);
    }

    #[test]
    fn a_corrupt_block_is_an_error() {
        let good = encode(&[(1, 1)]);
        assert!(samples_in_range(&[good.clone(), vec![1, 0, 5]], 0, 10).is_err());
        assert!(samples_in_range(&[good[..good.len() - 1].to_vec()], 0, 10).is_err());
    }
}
