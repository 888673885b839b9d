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
