//! Compensated (Kahan–Babuška–Neumaier) summation and the overflow-safe mean Prometheus
//! uses for `sum`, `avg`, `sum_over_time`, `avg_over_time` (`promql/functions.go`,
//! `kahanSumInc`).

/// Adds `inc` to `sum` with compensation `c`; returns the new `(sum, c)`.
pub(crate) fn kahan_inc(inc: f64, sum: f64, c: f64) -> (f64, f64) {
    let t = sum + inc;
    let c = if t.is_infinite() {
        0.0
    } else if sum.abs() >= inc.abs() {
        c + ((sum - t) + inc)
    } else {
        c + ((inc - t) + sum)
    };
    (t, c)
}

/// A compensated sum.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct KahanSum {
    sum: f64,
    c: f64,
}

impl KahanSum {
    pub fn add(&mut self, v: f64) {
        (self.sum, self.c) = kahan_inc(v, self.sum, self.c);
    }
    pub fn value(&self) -> f64 {
        self.sum + self.c
    }
}

/// Columns summed side by side by [`sums`].
const LANES: usize = 4;

/// The compensated sum of each column, each added in order exactly as [`KahanSum::add`]
/// does one by one, so the results are bit for bit the same. Four columns are summed side
/// by side: one sum waits for the addition before it, four independent ones keep the
/// processor's adders busy.
pub(crate) fn sums(cols: &[&[f64]]) -> Vec<KahanSum> {
    let mut out = Vec::with_capacity(cols.len());
    let mut groups = cols.chunks_exact(LANES);
    for g in groups.by_ref() {
        let common = g.iter().map(|c| c.len()).min().unwrap_or(0);
        let heads: [&[f64]; LANES] = std::array::from_fn(|l| &g[l][..common]);
        let mut acc = [KahanSum::default(); LANES];
        for i in 0..common {
            for (a, h) in acc.iter_mut().zip(&heads) {
                a.add(h[i]);
            }
        }
        for (a, c) in acc.iter_mut().zip(g) {
            c[common..].iter().for_each(|&v| a.add(v));
        }
        out.extend(acc);
    }
    for c in groups.remainder() {
        let mut a = KahanSum::default();
        c.iter().for_each(|&v| a.add(v));
        out.push(a);
    }
    out
}

/// The mean of `vals` as [`KahanMean`] computes it, given `sum`, their [`KahanSum`] (from
/// [`sums`]): while the running sum stays finite the mean is the compensated sum over the
/// count; a sum that ended infinite or NaN may have overflowed on the way, and then the
/// mean is computed again one value at a time.
pub(crate) fn mean_from_sum(sum: KahanSum, vals: &[f64]) -> f64 {
    // Once infinite, a running sum never becomes finite again (a finite addend keeps it
    // infinite, an opposite infinity makes it NaN), and an infinite or NaN value makes it
    // so too: a finite sum means every step of KahanMean took its summing branch.
    if sum.sum.is_finite() {
        return (sum.sum + sum.c) / vals.len() as f64;
    }
    let mut m = KahanMean::default();
    vals.iter().for_each(|&v| m.add(v));
    m.value()
}

/// A mean that sums with compensation while the sum stays finite, then switches to an
/// incremental mean so that large values do not overflow to ±Inf.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct KahanMean {
    count: f64,
    sum: f64,
    mean: f64,
    c: f64,
    incremental: bool,
}

impl KahanMean {
    pub fn add(&mut self, v: f64) {
        self.count += 1.0;
        if !self.incremental {
            let (ns, nc) = kahan_inc(v, self.sum, self.c);
            if self.count == 1.0 || !ns.is_infinite() {
                self.sum = ns;
                self.c = nc;
                return;
            }
            self.incremental = true;
            self.mean = self.sum / (self.count - 1.0);
            self.c /= self.count - 1.0;
        }
        if self.mean.is_infinite() {
            if v.is_infinite() && (self.mean > 0.0) == (v > 0.0) {
                return;
            }
            if !v.is_infinite() && !v.is_nan() {
                return;
            }
        }
        let current = self.mean + self.c;
        (self.mean, self.c) = kahan_inc(v / self.count - current / self.count, self.mean, self.c);
    }

    pub fn value(&self) -> f64 {
        if self.incremental {
            self.mean + self.c
        } else {
            (self.sum + self.c) / self.count
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn value() -> impl Strategy<Value = f64> {
        prop_oneof![
            8 => -1e6f64..1e6,
            2 => any::<f64>(),
            1 => Just(f64::MAX),
            1 => Just(f64::INFINITY),
            1 => Just(f64::NEG_INFINITY),
            1 => Just(f64::NAN),
        ]
    }

    /// The same bits, or both NaN: which NaN an addition of two NaNs gives depends on the
    /// operand order the compiler picks, and the API writes every NaN as `NaN`.
    fn same(a: f64, b: f64) -> bool {
        a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
    }

    proptest! {
        #[test]
        fn side_by_side_sums_and_means_are_bit_exact(cols in prop::collection::vec(prop::collection::vec(value(), 0..40), 0..11)) {
            let views: Vec<&[f64]> = cols.iter().map(Vec::as_slice).collect();
            let got = sums(&views);
            prop_assert_eq!(got.len(), cols.len());
            for (c, s) in cols.iter().zip(&got) {
                let mut want = KahanSum::default();
                c.iter().for_each(|&v| want.add(v));
                prop_assert!(same(s.value(), want.value()), "{} vs {}", s.value(), want.value());
                if !c.is_empty() {
                    let mut mean = KahanMean::default();
                    c.iter().for_each(|&v| mean.add(v));
                    prop_assert!(same(mean_from_sum(*s, c), mean.value()));
                }
            }
        }
    }

    #[test]
    fn compensated_sum_keeps_small_terms() {
        let mut s = KahanSum::default();
        for v in [1e100, 1.0, -1e100] {
            s.add(v);
        }
        assert_eq!(s.value(), 1.0);
    }

    #[test]
    fn mean_of_huge_values_does_not_overflow() {
        let mut m = KahanMean::default();
        for v in [f64::MAX, f64::MAX, f64::MAX] {
            m.add(v);
        }
        assert_eq!(m.value(), f64::MAX);
    }
}
