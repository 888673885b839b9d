//! Counter and gauge rate functions: `rate`, `increase`, `delta` (with Prometheus'
//! extrapolation, `extrapolatedRate` in `promql/functions.go`), `irate`, `idelta`,
//! `deriv`, `predict_linear` (least squares, `linearRegression`).

use promql_parser::parser::Expr;

use super::{matrix, scalar};
use crate::promql::error::QueryError;
use crate::promql::eval::{Evaluator, dur_ms};
use crate::promql::kahan::kahan_inc;
use crate::promql::selector::not_counter_name;
use crate::promql::value::{Sample, Series, Val};

/// The evaluation window `(start, end]` (ms) of a range argument at time `t`.
pub(super) fn window(ev: &Evaluator<'_>, arg: Option<&Expr>, t: i64) -> (i64, i64) {
    match arg {
        Some(Expr::MatrixSelector(ms)) => {
            let end = ev.effective_time(t, &ms.vs.at, &ms.vs.offset);
            (end - dur_ms(&ms.range), end)
        }
        Some(Expr::Subquery(sq)) => {
            let end = ev.effective_time(t, &sq.at, &sq.offset);
            (end - dur_ms(&sq.range), end)
        }
        Some(Expr::Paren(p)) => window(ev, Some(&p.expr), t),
        _ => (t, t),
    }
}

/// Prometheus' extrapolated rate over samples in `(range_start, range_end]` (ms), given as
/// timestamps `ts` (ms) and values `vs` of equal length. `None` with fewer than two samples.
pub(crate) fn extrapolated_rate(
    ts: &[i64],
    vs: &[f64],
    resets: Option<impl Iterator<Item = usize>>,
    range_start: i64,
    range_end: i64,
    is_counter: bool,
    is_rate: bool,
) -> Option<f64> {
    let n = ts.len().min(vs.len());
    if n < 2 {
        return None;
    }
    let (first_t, first_v) = (ts[0], vs[0]);
    let (last_t, last_v) = (ts[n - 1], vs[n - 1]);
    let mut result = last_v - first_v;
    if is_counter {
        match resets {
            // The same additions in the same order as the scan below, without reading
            // the window's values.
            Some(at) => {
                for i in at.take_while(|&i| i < n) {
                    result += vs[i - 1];
                }
            }
            None => {
                let mut prev = first_v;
                for &v in &vs[1..n] {
                    if v < prev {
                        result += prev;
                    }
                    prev = v;
                }
            }
        }
    }
    let mut to_start = (first_t - range_start) as f64 / 1000.0;
    let mut to_end = (range_end - last_t) as f64 / 1000.0;
    let sampled = (last_t - first_t) as f64 / 1000.0;
    let avg = sampled / (n - 1) as f64;
    let threshold = avg * 1.1;
    if to_start >= threshold {
        to_start = avg / 2.0;
    }
    if is_counter && result > 0.0 && first_v >= 0.0 {
        let to_zero = sampled * (first_v / result);
        if to_zero < to_start {
            to_start = to_zero;
        }
    }
    if to_end >= threshold {
        to_end = avg / 2.0;
    }
    let mut factor = (sampled + to_start + to_end) / sampled;
    if is_rate {
        factor /= (range_end - range_start) as f64 / 1000.0;
    }
    Some(result * factor)
}

/// No reset index: [`extrapolated_rate`] scans the values for counter resets.
pub(crate) const NO_INDEX: Option<std::iter::Empty<usize>> = None;

/// Least-squares slope and intercept of the points `(ts[i], vs[i])` (at least one), x in
/// seconds relative to `intercept_t` (ms).
pub(crate) fn linear_regression(ts: &[i64], vs: &[f64], intercept_t: i64) -> (f64, f64) {
    let (mut n, mut sx, mut cx, mut sy, mut cy) = (0.0, 0.0, 0.0, 0.0, 0.0);
    let (mut sxy, mut cxy, mut sx2, mut cx2) = (0.0, 0.0, 0.0, 0.0);
    let init_y = vs[0];
    let mut const_y = true;
    for (i, (&ts, &v)) in ts.iter().zip(vs).enumerate() {
        if const_y && i > 0 && v != init_y {
            const_y = false;
        }
        n += 1.0;
        let x = (ts - intercept_t) as f64 / 1e3;
        (sx, cx) = kahan_inc(x, sx, cx);
        (sy, cy) = kahan_inc(v, sy, cy);
        (sxy, cxy) = kahan_inc(x * v, sxy, cxy);
        (sx2, cx2) = kahan_inc(x * x, sx2, cx2);
    }
    if const_y {
        if init_y.is_infinite() {
            return (f64::NAN, f64::NAN);
        }
        return (0.0, init_y);
    }
    let (sx, sy, sxy, sx2) = (sx + cx, sy + cy, sxy + cxy, sx2 + cx2);
    let cov = sxy - sx * sy / n;
    let var = sx2 - sx * sx / n;
    let slope = cov / var;
    (slope, sy / n - slope * sx / n)
}

fn instant_delta(ts: &[i64], vs: &[f64], is_rate: bool) -> Option<f64> {
    let n = ts.len().min(vs.len());
    if n < 2 {
        return None;
    }
    let (t1, v1) = (ts[n - 1], vs[n - 1]);
    let (t0, v0) = (ts[n - 2], vs[n - 2]);
    let result = if is_rate && v1 < v0 { v1 } else { v1 - v0 };
    if !is_rate {
        return Some(result);
    }
    let interval = (t1 - t0) as f64 / 1000.0;
    if interval == 0.0 {
        return None;
    }
    Some(result / interval)
}

/// Evaluates the function if it belongs here; `None` otherwise.
pub(super) fn eval(
    ev: &mut Evaluator<'_>,
    name: &str,
    args: &[Val],
    arg: Option<&Expr>,
    t: i64,
) -> Result<Option<Val>, QueryError> {
    if !matches!(
        name,
        "rate" | "increase" | "delta" | "irate" | "idelta" | "deriv" | "predict_linear"
    ) {
        return Ok(None);
    }
    let (start, end) = window(ev, arg, t);
    let m: &[Series] = matrix(args, 0)?;
    let check_counter = matches!(name, "rate" | "increase" | "irate");
    let mut out = Vec::with_capacity(m.len());
    for s in m {
        let (ts, vs) = (s.points.ts(), s.points.vs());
        let v = match name {
            "rate" => extrapolated_rate(ts, vs, s.points.counter_resets(), start, end, true, true),
            "increase" => extrapolated_rate(ts, vs, s.points.counter_resets(), start, end, true, false),
            "delta" => extrapolated_rate(ts, vs, NO_INDEX, start, end, false, false),
            "irate" => instant_delta(ts, vs, true),
            "idelta" => instant_delta(ts, vs, false),
            "deriv" if ts.len() >= 2 => Some(linear_regression(ts, vs, ts[0]).0),
            "predict_linear" if ts.len() >= 2 => {
                let d = scalar(args, 1)?;
                let (slope, icpt) = linear_regression(ts, vs, t);
                Some(slope * d + icpt)
            }
            _ => None,
        };
        if check_counter
            && s.not_counter.unwrap_or_else(|| not_counter_name(&s.labels))
            && let Some(metric) = s.labels.metric_name()
        {
            ev.info_not_counter(metric);
        }
        if let Some(v) = v {
            out.push(Sample {
                labels: s.labels.clone(),
                t,
                drop: true,
                v,
            });
        }
    }
    // The series of a range vector have distinct labels (a selector's series are checked
    // when fetched; a subquery groups by labels), so the output needs no check.
    Ok(Some(Val::Vector(out)))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::promql::value::{Columns, Points};

    #[test]
    fn rate_extrapolates_to_window_edges() {
        // Samples every 10s from 10s to 50s, +10 each, window (0, 60s]:
        // increase 40 over 40s; the gaps to the edges (10s each) are below 1.1 × 10s,
        // so extrapolation covers them fully: 40 × 60/40 = 60; rate = 60/60 = 1.
        let ts: Vec<i64> = (1..=5).map(|i| i * 10_000).collect();
        let vs: Vec<f64> = (1..=5).map(|i| i as f64 * 10.0).collect();
        assert_eq!(
            extrapolated_rate(&ts, &vs, NO_INDEX, 0, 60_000, true, false),
            Some(60.0)
        );
        assert_eq!(extrapolated_rate(&ts, &vs, NO_INDEX, 0, 60_000, true, true), Some(1.0));
    }

    #[test]
    fn counter_extrapolation_stops_at_zero() {
        // First value 5 at 50s, 15 at 60s: going back 10s per 10 would hit zero after 5s,
        // sooner than the 50s gap's cap (avg/2 = 5s) — both give 5s: 10 × 15/10 = 15.
        let ts = [50_000, 60_000];
        assert_eq!(
            extrapolated_rate(&ts, &[5.0, 15.0], NO_INDEX, 0, 60_000, true, false),
            Some(15.0)
        );
        // A first value of 1 rising 14 per 10s: zero is 10/14 s before it, so the
        // increase is 14 × (10 + 10/14)/10 = 15.
        let v = extrapolated_rate(&ts, &[1.0, 15.0], NO_INDEX, 0, 60_000, true, false).expect("two samples");
        assert!((v - 15.0).abs() < 1e-9, "{v}");
    }

    #[test]
    fn counter_resets_are_compensated() {
        // 10 → 20 → 5 (reset) → 15: increase = 10 + 5 + 10 (from zero after reset) = 25 over
        // 30s, window exactly covering the samples.
        let ts = [0, 10_000, 20_000, 30_000];
        let vs = [10.0, 20.0, 5.0, 15.0];
        assert_eq!(
            extrapolated_rate(&ts, &vs, NO_INDEX, 0, 30_000, true, false),
            Some(25.0)
        );
        assert_eq!(
            extrapolated_rate(&ts[..1], &vs[..1], NO_INDEX, 0, 30_000, true, false),
            None
        );
    }

    #[test]
    fn reset_index_gives_the_scan_result_in_every_window() {
        // 20 → 30 → 5 (reset) → 15 → 2 (reset) → 8 at 0s..50s. Window [1, 5) holds the
        // samples 30, 5, 15, 2: resets at 5 (after 30) and 2 (after 15), so the increase is
        // 2 - 30 + 30 + 15 = 17 over 30s, the window exactly covering its samples.
        let ts: Vec<i64> = (0..6).map(|i| i * 10_000).collect();
        let vs = vec![20.0, 30.0, 5.0, 15.0, 2.0, 8.0];
        let cols = Arc::new(Columns::new(ts.clone(), vs.clone()));
        let p = Points::window(&cols, 1, 5);
        assert_eq!(p.counter_resets().map(|r| r.collect::<Vec<_>>()), Some(vec![1, 3]));
        let v = extrapolated_rate(p.ts(), p.vs(), p.counter_resets(), 10_000, 40_000, true, false);
        assert_eq!(v, Some(17.0));
        // Every window, read through the index or by scanning, gives the same value.
        for lo in 0..6 {
            for hi in lo..=6 {
                let p = Points::window(&cols, lo, hi);
                let (a, b) = (ts[lo] - 5_000, ts[hi.max(1) - 1] + 5_000);
                let indexed = extrapolated_rate(p.ts(), p.vs(), p.counter_resets(), a, b, true, true);
                let scanned = extrapolated_rate(&ts[lo..hi], &vs[lo..hi], NO_INDEX, a, b, true, true);
                assert_eq!(indexed, scanned, "window [{lo}, {hi})");
            }
        }
    }

    #[test]
    fn regression_slope_of_a_line() {
        let (ts, vs) = ([0, 10_000, 20_000], [1.0, 3.0, 5.0]);
        let (slope, icpt) = linear_regression(&ts, &vs, 0);
        assert!((slope - 0.2).abs() < 1e-12 && (icpt - 1.0).abs() < 1e-12);
        assert_eq!(instant_delta(&ts, &vs, true), Some(0.2));
    }
}
