//! `histogram_quantile` over classic histograms (`le` buckets), as Prometheus'
//! `BucketQuantile` in `promql/quantile.go`: buckets sorted by upper bound, equal bounds
//! merged, counts forced monotonic (tiny floating-point differences silently evened out),
//! linear interpolation inside the bucket.

use std::collections::HashMap;
use std::sync::Arc;

use cairn_common::Labels;

use super::check_unique;
use crate::promql::error::QueryError;
use crate::promql::eval::Evaluator;
use crate::promql::value::{Sample, Val};

/// Relative tolerance below which neighbouring bucket counts count as equal.
const SMALL_DELTA_TOLERANCE: f64 = 1e-12;

/// Prometheus' `almost.Equal`: equal within `epsilon` relative difference.
pub(crate) fn almost_equal(a: f64, b: f64, epsilon: f64) -> bool {
    let min_normal = f64::from_bits(0x0010_0000_0000_0000);
    if a == b {
        return true;
    }
    let abs_sum = a.abs() + b.abs();
    let diff = (a - b).abs();
    if a == 0.0 || b == 0.0 || abs_sum < min_normal {
        return diff < epsilon * min_normal;
    }
    diff / abs_sum.min(f64::MAX) < epsilon
}

/// The `q`-quantile of buckets `(upper_bound, cumulative_count)`; also whether the counts
/// had to be forced monotonic.
pub(crate) fn bucket_quantile(q: f64, mut buckets: Vec<(f64, f64)>) -> (f64, bool) {
    if q.is_nan() {
        return (f64::NAN, false);
    }
    if q < 0.0 {
        return (f64::NEG_INFINITY, false);
    }
    if q > 1.0 {
        return (f64::INFINITY, false);
    }
    buckets.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap_or(std::cmp::Ordering::Equal));
    match buckets.last() {
        Some(&(ub, _)) if ub == f64::INFINITY => {}
        _ => return (f64::NAN, false),
    }
    // Merge buckets with the same upper bound.
    let mut merged: Vec<(f64, f64)> = Vec::with_capacity(buckets.len());
    for (ub, c) in buckets {
        match merged.last_mut() {
            Some(last) if last.0 == ub => last.1 += c,
            _ => merged.push((ub, c)),
        }
    }
    let mut buckets = merged;
    let mut forced = false;
    let mut prev = buckets[0].1;
    for b in buckets.iter_mut().skip(1) {
        let curr = b.1;
        if curr == prev {
            continue;
        }
        if almost_equal(prev, curr, SMALL_DELTA_TOLERANCE) {
            b.1 = prev;
            continue;
        }
        if curr < prev {
            b.1 = prev;
            forced = true;
            continue;
        }
        prev = curr;
    }
    if buckets.len() < 2 {
        return (f64::NAN, forced);
    }
    let observations = buckets[buckets.len() - 1].1;
    if observations == 0.0 {
        return (f64::NAN, forced);
    }
    let mut rank = q * observations;
    let n = buckets.len() - 1;
    let b = buckets[..n].partition_point(|x| x.1 < rank);
    if b == n {
        return (buckets[n - 1].0, forced);
    }
    if b == 0 && buckets[0].0 <= 0.0 {
        return (buckets[0].0, forced);
    }
    let (mut start, end, mut count) = (0.0, buckets[b].0, buckets[b].1);
    if b > 0 {
        start = buckets[b - 1].0;
        count -= buckets[b - 1].1;
        rank -= buckets[b - 1].1;
    }
    (start + (end - start) * (rank / count), forced)
}

/// One output series of `histogram_quantile`: its labels, metric name and buckets
/// `(upper_bound, count)`.
type Group = (Labels, String, Vec<(f64, f64)>);

/// `histogram_quantile(q, v)` at `t` (ms): one output per label set without `le` and
/// `__name__`.
pub(super) fn histogram_quantile(ev: &mut Evaluator<'_>, q: f64, v: Vec<Sample>, t: i64) -> Result<Val, QueryError> {
    histogram_quantiles(ev, &[q], None, v, t)
}

/// `histogram_quantiles(v, "label", q1, q2, …)` at `t` (ms): for every bucket group and
/// every quantile `qi`, one output series with `label` set to `qi` (formatted as the
/// OpenMetrics float text, `0.0`, `0.25`, `NaN`). With `label` `None` this is
/// `histogram_quantile`. Errors when the added label makes two outputs equal.
pub(super) fn histogram_quantiles(
    ev: &mut Evaluator<'_>,
    qs: &[f64],
    label: Option<&str>,
    v: Vec<Sample>,
    t: i64,
) -> Result<Val, QueryError> {
    for &q in qs {
        if !(0.0..=1.0).contains(&q) {
            ev.warn(format!(
                "PromQL warning: quantile value should be between 0 and 1, got {}",
                super::format_float(q)
            ));
        }
    }
    let mut index: HashMap<Labels, usize> = HashMap::new();
    let mut groups: Vec<Group> = Vec::new();
    for s in v {
        let le = s.labels.get("le").and_then(|x| x.trim().parse::<f64>().ok());
        let Some(le) = le else {
            ev.warn(format!(
                "PromQL warning: bucket label \"le\" is missing or has a malformed value of {:?}",
                s.labels.get("le").unwrap_or("")
            ));
            continue;
        };
        let name = s.labels.metric_name().unwrap_or("").to_string();
        let mut key = Arc::unwrap_or_clone(s.labels);
        key.remove("le");
        match index.get(&key) {
            Some(&i) => groups[i].2.push((le, s.v)),
            None => {
                index.insert(key.clone(), groups.len());
                groups.push((key, name, vec![(le, s.v)]));
            }
        }
    }
    let mut out = Vec::with_capacity(groups.len() * qs.len());
    for (labels, name, buckets) in groups {
        for &q in qs {
            let (v, forced) = bucket_quantile(q, buckets.clone());
            if forced {
                ev.info(format!(
                    "PromQL info: input to histogram_quantile needed to be fixed for monotonicity (see https://prometheus.io/docs/prometheus/latest/querying/functions/#histogram_quantile) for metric name {name:?}"
                ));
            }
            let mut labels = labels.clone();
            if let Some(l) = label {
                labels.set(l, &open_metrics_float(q));
            }
            out.push(Sample {
                labels: Arc::new(labels),
                t,
                v,
                drop: true,
            });
        }
    }
    Ok(Val::Vector(check_unique(out)?))
}

/// A float as OpenMetrics text writes it (Prometheus `formatOpenMetricsFloat`): Go's
/// shortest `%g`-style form with `.0` added to integral values; `NaN`, `+Inf`, `-Inf`.
pub(crate) fn open_metrics_float(v: f64) -> String {
    if v.is_nan() || v.is_infinite() {
        return super::format_float(v);
    }
    let a = v.abs();
    let s = if a != 0.0 && !(1e-4..1e21).contains(&a) {
        // Go's %g switches to an exponent with at least two digits: 1e-05, 1.5e+21.
        let e = format!("{v:e}");
        match e.split_once('e') {
            Some((m, x)) => {
                let (sign, digits) = x.strip_prefix('-').map_or(("+", x), |d| ("-", d));
                format!("{m}e{sign}{digits:0>2}")
            }
            None => e,
        }
    } else {
        format!("{v}")
    };
    if s.contains(['.', 'e']) { s } else { format!("{s}.0") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interpolates_inside_the_bucket() {
        // 100 observations: 50 ≤ 0.1, 90 ≤ 0.5, all ≤ +Inf. q=0.7 → rank 70, in (0.1, 0.5]
        // at (70-50)/(90-50) = 0.5 of the way: 0.3.
        let b = vec![(0.5, 90.0), (0.1, 50.0), (f64::INFINITY, 100.0)];
        let (v, forced) = bucket_quantile(0.7, b);
        assert!((v - 0.3).abs() < 1e-12 && !forced, "{v}");
    }

    #[test]
    fn edge_cases() {
        // Rank in the +Inf bucket: the highest finite bound.
        let b = vec![(1.0, 10.0), (f64::INFINITY, 20.0)];
        assert_eq!(bucket_quantile(0.9, b.clone()).0, 1.0);
        // No +Inf bucket: NaN. No observations: NaN.
        assert!(bucket_quantile(0.5, vec![(1.0, 10.0)]).0.is_nan());
        assert!(bucket_quantile(0.5, vec![(1.0, 0.0), (f64::INFINITY, 0.0)]).0.is_nan());
        // Lowest bucket with a non-positive bound: that bound.
        assert_eq!(bucket_quantile(0.1, vec![(-1.0, 10.0), (f64::INFINITY, 20.0)]).0, -1.0);
        // Lowest bucket with a positive bound: interpolate from 0.
        assert_eq!(bucket_quantile(0.25, vec![(2.0, 10.0), (f64::INFINITY, 20.0)]).0, 1.0);
        assert_eq!(bucket_quantile(-1.0, b.clone()).0, f64::NEG_INFINITY);
        assert_eq!(bucket_quantile(2.0, b).0, f64::INFINITY);
    }

    #[test]
    fn quantile_labels_use_open_metrics_floats() {
        assert_eq!(open_metrics_float(0.0), "0.0");
        assert_eq!(open_metrics_float(1.0), "1.0");
        assert_eq!(open_metrics_float(0.25), "0.25");
        assert_eq!(open_metrics_float(-0.1), "-0.1");
        assert_eq!(open_metrics_float(f64::NAN), "NaN");
        assert_eq!(open_metrics_float(0.00001), "1e-05");
    }

    #[test]
    fn non_monotonic_counts_are_fixed() {
        // The 2.0 bucket (8) is below the 1.0 bucket (10): raised to 10 and reported.
        let b = vec![(1.0, 10.0), (2.0, 8.0), (4.0, 20.0), (f64::INFINITY, 20.0)];
        let (v, forced) = bucket_quantile(0.75, b);
        // rank 15 falls in (2, 4] with counts 10 → 20: 2 + 2 × 5/10 = 3.
        assert!(forced);
        assert!((v - 3.0).abs() < 1e-12, "{v}");
    }
}
