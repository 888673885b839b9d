//! Whole-column checks over sample columns (timestamps in ms, values as `f64` or their
//! IEEE 754 bits) that a query makes on every series it reads: is a column sorted, does
//! it hold a staleness marker, does a counter ever decrease.
//!
//! Each check compares a chunk of [`CHUNK`] neighbours without stopping early inside it,
//! so that the compiler turns the chunk into vector compares; it stops at the first chunk
//! that decides the answer. A check that stops at the first element instead, as
//! `Iterator::any` does, reads one element per loop turn: on the columns of a query
//! (thousands of samples per series) that was several times slower.

/// Elements compared per chunk without an early exit.
const CHUNK: usize = 64;

/// Whether `pred` holds for every pair of neighbours `(a[i], a[i + 1])`.
#[inline]
fn all_pairs<T: Copy>(a: &[T], pred: impl Fn(T, T) -> bool) -> bool {
    if a.len() < 2 {
        return true;
    }
    let (left, right) = (&a[..a.len() - 1], &a[1..]);
    left.chunks(CHUNK)
        .zip(right.chunks(CHUNK))
        .all(|(l, r)| l.iter().zip(r).fold(true, |ok, (&x, &y)| ok & pred(x, y)))
}

/// Whether `ts` is strictly increasing (sorted with no repeated timestamp). True for
/// fewer than two elements.
pub fn strictly_increasing(ts: &[i64]) -> bool {
    all_pairs(ts, |a, b| a < b)
}

/// Whether `ts` never decreases (sorted; repeats allowed). True for fewer than two
/// elements.
pub fn non_decreasing(ts: &[i64]) -> bool {
    all_pairs(ts, |a, b| a <= b)
}

/// Whether `vs` holds a staleness marker ([`crate::STALE_NAN_BITS`], compared by bits).
pub fn any_stale(vs: &[f64]) -> bool {
    vs.chunks(CHUNK).any(|c| {
        c.iter()
            .fold(false, |hit, v| hit | (v.to_bits() == crate::STALE_NAN_BITS))
    })
}

/// The positions `i` with `vs[i] < vs[i - 1]` (a counter reset; a comparison with NaN is
/// false), ascending. Chunks without one are passed over with vector compares.
pub fn decreases(vs: &[f64]) -> Vec<usize> {
    let mut out = Vec::new();
    if vs.len() < 2 {
        return out;
    }
    let (prev, next) = (&vs[..vs.len() - 1], &vs[1..]);
    for (k, (p, n)) in prev.chunks(CHUNK).zip(next.chunks(CHUNK)).enumerate() {
        if p.iter().zip(n).fold(false, |hit, (&a, &b)| hit | (b < a)) {
            let base = k * CHUNK + 1;
            out.extend(
                p.iter()
                    .zip(n)
                    .enumerate()
                    .filter(|(_, (a, b))| b < a)
                    .map(|(i, _)| base + i),
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn sortedness_agrees_with_pairwise_comparison(mut ts in prop::collection::vec(-5i64..5, 0..300), sort in any::<bool>()) {
            if sort {
                ts.sort_unstable();
            }
            prop_assert_eq!(strictly_increasing(&ts), ts.windows(2).all(|w| w[0] < w[1]));
            prop_assert_eq!(non_decreasing(&ts), ts.windows(2).all(|w| w[0] <= w[1]));
        }

        #[test]
        fn decreases_agree_with_pairwise_comparison(vs in prop::collection::vec(prop_oneof![
            (0u8..4).prop_map(f64::from),
            Just(f64::NAN),
            Just(f64::INFINITY),
        ], 0..300)) {
            let want: Vec<usize> = (1..vs.len()).filter(|&i| vs[i] < vs[i - 1]).collect();
            prop_assert_eq!(decreases(&vs), want);
        }
    }

    #[test]
    fn a_marker_is_found_anywhere_and_other_nans_are_not_markers() {
        let stale = f64::from_bits(crate::STALE_NAN_BITS);
        for at in [0, 1, 63, 64, 65, 199] {
            let mut vs = vec![f64::NAN; 200];
            assert!(!any_stale(&vs));
            vs[at] = stale;
            assert!(any_stale(&vs), "marker at {at}");
        }
        assert!(!any_stale(&[]));
    }

    #[test]
    fn a_long_increasing_column_with_one_repeat_is_not_strictly_increasing() {
        let mut ts: Vec<i64> = (0..1_000).collect();
        assert!(strictly_increasing(&ts));
        ts[700] = ts[699];
        assert!(!strictly_increasing(&ts));
        assert!(non_decreasing(&ts));
        ts[900] = -1;
        assert!(!non_decreasing(&ts));
    }
}
