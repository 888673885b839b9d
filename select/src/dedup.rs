//! `--dedup-interval`: one sample per series per time interval, as VictoriaMetrics'
//! `-dedup.minScrapeInterval` does.
//!
//! Time is cut into intervals of `d` ms aligned to multiples of `d` since the Unix epoch;
//! interval `k` is `(k*d - d, k*d]`, closed at its end, so a sample exactly at `k*d` belongs
//! to the interval that ends there. Of the samples of one series in one interval the one with
//! the largest timestamp is kept. When several samples share that timestamp, the one with the
//! largest value in IEEE 754 total order ([`f64::total_cmp`]) is kept: for ordinary numbers
//! that is the largest number, as VictoriaMetrics keeps; a positive NaN such as Prometheus'
//! staleness marker (`0x7ff0000000000002`) ranks above every number, so the choice does not
//! depend on the order the samples came in. Values are moved, never recomputed: a staleness
//! marker survives bit for bit, as an ordinary sample.
//!
//! The select applies it in [`crate::querier::ClusterQuerier`] after the per-timestamp merge
//! of the nodes' answers ([`crate::fanout::merge_series`]), so there it sees distinct
//! timestamps; the tie rule serves callers that pass unmerged samples.

/// Keeps one sample per `interval_ms` interval (rule in the module doc) of one series.
///
/// `timestamps` (ms since the epoch) must be sorted ascending (equal timestamps allowed);
/// `values[i]` is the value at `timestamps[i]`. Returns the kept samples, still sorted, in
/// the input vectors (no allocation). With `interval_ms <= 0` the input is returned
/// unchanged, whatever its order. Extra entries of the longer vector, if the lengths
/// differ, are dropped. Unsorted input does not panic but its result is unspecified.
pub fn dedup_interval(mut timestamps: Vec<i64>, mut values: Vec<f64>, interval_ms: i64) -> (Vec<i64>, Vec<f64>) {
    if interval_ms <= 0 || timestamps.len() < 2 {
        return (timestamps, values);
    }
    let n = timestamps.len().min(values.len());
    let mut kept = 0;
    let mut start = 0;
    while start < n {
        let interval = interval_index(timestamps[start], interval_ms);
        let mut end = start + 1;
        while end < n && interval_index(timestamps[end], interval_ms) == interval {
            end += 1;
        }
        let last_ts = timestamps[end - 1];
        let mut value = values[end - 1];
        let mut i = end - 1;
        while i > start && timestamps[i - 1] == last_ts {
            i -= 1;
            if values[i].total_cmp(&value).is_gt() {
                value = values[i];
            }
        }
        timestamps[kept] = last_ts;
        values[kept] = value;
        kept += 1;
        start = end;
    }
    timestamps.truncate(kept);
    values.truncate(kept);
    (timestamps, values)
}

/// The `k` of the interval `(k*d - d, k*d]` holding `ts_ms`: `ceil(ts_ms / d)`, exact for
/// negative timestamps too and free of overflow. `d > 0`.
fn interval_index(ts_ms: i64, d: i64) -> i64 {
    ts_ms.div_euclid(d) + i64::from(ts_ms.rem_euclid(d) != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    use cairn_common::STALE_NAN_BITS as STALE_NAN;

    fn run(ts: &[i64], vs: &[f64], d: i64) -> (Vec<i64>, Vec<f64>) {
        dedup_interval(ts.to_vec(), vs.to_vec(), d)
    }

    #[test]
    fn interval_index_closes_intervals_at_their_end() {
        // d = 10: (0, 10] is interval 1, (10, 20] is interval 2, (-10, 0] is interval 0.
        assert_eq!(interval_index(1, 10), 1);
        assert_eq!(interval_index(10, 10), 1);
        assert_eq!(interval_index(11, 10), 2);
        assert_eq!(interval_index(0, 10), 0);
        assert_eq!(interval_index(-9, 10), 0);
        assert_eq!(interval_index(-10, 10), -1);
        assert_eq!(interval_index(i64::MAX, 10), i64::MAX / 10 + 1);
        assert_eq!(interval_index(i64::MIN, 10), i64::MIN / 10);
    }

    #[test]
    fn keeps_the_last_sample_of_each_interval() {
        // d = 10 s. 1 s, 4 s, 9 s are in (0, 10 s]; 12 s, 15 s in (10 s, 20 s];
        // 31 s alone in (30 s, 40 s]; nothing in (20 s, 30 s].
        let (ts, vs) = run(
            &[1_000, 4_000, 9_000, 12_000, 15_000, 31_000],
            &[1.0, 4.0, 9.0, 12.0, 15.0, 31.0],
            10_000,
        );
        assert_eq!(ts, [9_000, 15_000, 31_000]);
        assert_eq!(vs, [9.0, 15.0, 31.0]);
    }

    #[test]
    fn a_sample_exactly_at_an_interval_end_closes_that_interval() {
        // d = 10: 10 ends (0, 10] and wins over 5; 20 ends (10, 20] and wins over 11;
        // 21 opens (20, 30].
        let (ts, vs) = run(&[5, 10, 11, 20, 21], &[5.0, 10.0, 11.0, 20.0, 21.0], 10);
        assert_eq!(ts, [10, 20, 21]);
        assert_eq!(vs, [10.0, 20.0, 21.0]);
        // 0 is the end of (-10, 0]; 1 starts (0, 10].
        let (ts, _) = run(&[-3, 0, 1], &[1.0, 2.0, 3.0], 10);
        assert_eq!(ts, [0, 1]);
    }

    #[test]
    fn samples_a_full_interval_apart_all_stay() {
        let (ts, vs) = run(&[10, 20, 30], &[1.0, 2.0, 3.0], 10);
        assert_eq!(ts, [10, 20, 30]);
        assert_eq!(vs, [1.0, 2.0, 3.0]);
        // Two scrapers 15 s apart with d = 15 s and timestamps off the grid:
        // 14 s and 16 s fall in different intervals, (0, 15 s] and (15 s, 30 s].
        let (ts, _) = run(&[14_000, 16_000, 29_000, 31_000], &[1.0; 4], 15_000);
        assert_eq!(ts, [14_000, 29_000, 31_000]);
    }

    #[test]
    fn equal_last_timestamps_keep_the_largest_value() {
        // Interval (0, 10]: last timestamp 7 appears three times; 9.5 is the largest.
        let (ts, vs) = run(&[3, 7, 7, 7, 12], &[100.0, 2.0, 9.5, -1.0, 12.0], 10);
        assert_eq!(ts, [7, 12]);
        assert_eq!(vs, [9.5, 12.0]);
        // Ties only at a non-last timestamp do not matter: 3 is not the last.
        let (ts, vs) = run(&[3, 3, 8], &[50.0, 60.0, 1.0], 10);
        assert_eq!(ts, [8]);
        assert_eq!(vs, [1.0]);
        // +0.0 ranks above -0.0.
        let (_, vs) = run(&[5, 5], &[0.0, -0.0], 10);
        assert_eq!(vs[0].to_bits(), 0.0f64.to_bits());
        let (_, vs) = run(&[5, 5], &[-0.0, 0.0], 10);
        assert_eq!(vs[0].to_bits(), 0.0f64.to_bits());
    }

    #[test]
    fn staleness_marker_survives_bit_exact() {
        let stale = f64::from_bits(STALE_NAN);
        // The marker is the last sample of (10, 20]: it is kept as is.
        let (ts, vs) = run(&[5, 12, 18], &[1.0, 2.0, stale], 10);
        assert_eq!(ts, [5, 18]);
        assert_eq!(vs[0], 1.0);
        assert_eq!(vs[1].to_bits(), STALE_NAN);
        // Tied with numbers at the last timestamp, in either order, the marker wins.
        let (_, vs) = run(&[4, 4], &[stale, 1e300], 10);
        assert_eq!(vs[0].to_bits(), STALE_NAN);
        let (_, vs) = run(&[4, 4], &[f64::INFINITY, stale], 10);
        assert_eq!(vs[0].to_bits(), STALE_NAN);
        // An earlier marker in the interval is superseded by a later number.
        let (ts, vs) = run(&[2, 9], &[stale, 3.0], 10);
        assert_eq!(ts, [9]);
        assert_eq!(vs, [3.0]);
    }

    #[test]
    fn empty_and_single_inputs_pass_through() {
        let (ts, vs) = run(&[], &[], 10);
        assert!(ts.is_empty() && vs.is_empty());
        let (ts, vs) = run(&[7], &[7.0], 10);
        assert_eq!((ts, vs), (vec![7], vec![7.0]));
    }

    #[test]
    fn zero_interval_leaves_input_alone() {
        let (ts, vs) = run(&[5, 3, 3, 9], &[5.0, 3.0, 30.0, 9.0], 0);
        assert_eq!(ts, [5, 3, 3, 9]);
        assert_eq!(vs, [5.0, 3.0, 30.0, 9.0]);
        let (ts, _) = run(&[1, 2], &[1.0, 2.0], -10);
        assert_eq!(ts, [1, 2]);
    }

    #[test]
    fn one_ms_interval_merges_only_equal_timestamps() {
        // d = 1 ms: every interval (k-1, k] holds one timestamp.
        let (ts, vs) = run(&[1, 1, 2, 3, 3], &[4.0, 1.0, 2.0, 0.5, 6.0], 1);
        assert_eq!(ts, [1, 2, 3]);
        assert_eq!(vs, [4.0, 2.0, 6.0]);
    }

    #[test]
    fn negative_timestamps_align_to_the_epoch() {
        // d = 10: -15 and -11 are in (-20, -10]; -10 is its end too; -5 in (-10, 0].
        let (ts, vs) = run(&[-15, -11, -10, -5], &[1.0, 2.0, 3.0, 4.0], 10);
        assert_eq!(ts, [-10, -5]);
        assert_eq!(vs, [3.0, 4.0]);
    }

    #[test]
    fn mismatched_lengths_do_not_panic() {
        let (ts, vs) = run(&[1, 2, 3], &[1.0, 2.0], 10);
        assert_eq!(ts, [2]);
        assert_eq!(vs, [2.0]);
    }
}
