//! Functions over the samples of each series in a range: `*_over_time`, `changes`,
//! `resets`, `double_exponential_smoothing`, `absent_over_time`, `present_over_time`.
//! All but `last_over_time` and `first_over_time` drop the metric name (Prometheus 3).

use promql_parser::parser::Expr;

use super::{absent_labels, matrix, quantile, scalar};
use crate::promql::error::{QueryError, exec};
use crate::promql::eval::Evaluator;
use crate::promql::kahan::{self, kahan_inc};
use crate::promql::value::{Sample, Val};

fn stdvar(vals: impl Iterator<Item = f64>) -> f64 {
    let (mut count, mut mean, mut c_mean, mut aux, mut c_aux) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for v in vals {
        count += 1.0;
        let delta = v - (mean + c_mean);
        (mean, c_mean) = kahan_inc(delta / count, mean, c_mean);
        (aux, c_aux) = kahan_inc(delta * (v - (mean + c_mean)), aux, c_aux);
    }
    (aux + c_aux) / count
}

fn smoothing(vals: &[f64], sf: f64, tf: f64) -> Option<f64> {
    if vals.len() < 2 {
        return None;
    }
    let (mut s0, mut s1) = (0.0, vals[0]);
    let mut b = vals[1] - vals[0];
    for (i, &v) in vals.iter().enumerate().skip(1) {
        let x = sf * v;
        if i > 1 {
            b = tf * (s1 - s0) + (1.0 - tf) * b;
        }
        let y = (1.0 - sf) * (s1 + b);
        s0 = s1;
        s1 = x + y;
    }
    Some(s1)
}

/// Evaluates the function if it belongs here; `None` otherwise.
pub(super) fn eval(
    ev: &mut Evaluator<'_>,
    name: &str,
    args: &[Val],
    arg: Option<&Expr>,
    t: i64,
) -> Result<Option<Val>, QueryError> {
    let known = matches!(
        name,
        "avg_over_time"
            | "min_over_time"
            | "max_over_time"
            | "sum_over_time"
            | "count_over_time"
            | "last_over_time"
            | "first_over_time"
            | "stddev_over_time"
            | "stdvar_over_time"
            | "mad_over_time"
            | "present_over_time"
            | "absent_over_time"
            | "changes"
            | "resets"
            | "quantile_over_time"
            | "double_exponential_smoothing"
            | "holt_winters"
            | "ts_of_min_over_time"
            | "ts_of_max_over_time"
            | "ts_of_last_over_time"
            | "ts_of_first_over_time"
    );
    if !known {
        return Ok(None);
    }
    // Functions whose range argument is not the first one.
    let (m, q) = match name {
        "quantile_over_time" => (matrix(args, 1)?, scalar(args, 0)?),
        _ => (matrix(args, 0)?, f64::NAN),
    };
    if name == "absent_over_time" {
        if m.is_empty() {
            let labels = match arg {
                Some(Expr::MatrixSelector(_)) => absent_labels(arg),
                _ => Default::default(),
            };
            return Ok(Some(Val::Vector(vec![Sample {
                labels: labels.into(),
                t,
                v: 1.0,
                drop: false,
            }])));
        }
        return Ok(Some(Val::Vector(Vec::new())));
    }
    let (sf, tf) = if matches!(name, "double_exponential_smoothing" | "holt_winters") {
        let (sf, tf) = (scalar(args, 1)?, scalar(args, 2)?);
        if sf <= 0.0 || sf >= 1.0 {
            return Err(exec(format!(
                "invalid smoothing factor. Expected: 0 < sf < 1, got: {sf}"
            )));
        }
        if tf <= 0.0 || tf >= 1.0 {
            return Err(exec(format!("invalid trend factor. Expected: 0 < tf < 1, got: {tf}")));
        }
        (sf, tf)
    } else {
        (0.0, 0.0)
    };
    if name == "quantile_over_time" && !(0.0..=1.0).contains(&q) {
        ev.warn(format!(
            "PromQL warning: quantile value should be between 0 and 1, got {}",
            super::format_float(q)
        ));
    }
    // The compensated sums of all series' windows, computed side by side.
    let sums = if matches!(name, "avg_over_time" | "sum_over_time") {
        let cols: Vec<&[f64]> = m.iter().map(|s| s.points.vs()).collect();
        kahan::sums(&cols)
    } else {
        Vec::new()
    };
    let mut out = Vec::with_capacity(m.len());
    for (i, s) in m.iter().enumerate() {
        // The values, read in place from the window of stored samples.
        let pts = &s.points;
        let values: &[f64] = pts.vs();
        let vals = || values.iter().copied();
        let first = values.first().copied().unwrap_or(f64::NAN);
        let v = match name {
            "avg_over_time" => Some(kahan::mean_from_sum(sums[i], values)),
            "sum_over_time" => Some(sums[i].value()),
            "min_over_time" => Some(
                vals()
                    .skip(1)
                    .fold(first, |m, v| if v < m || m.is_nan() { v } else { m }),
            ),
            "max_over_time" => Some(
                vals()
                    .skip(1)
                    .fold(first, |m, v| if v > m || m.is_nan() { v } else { m }),
            ),
            "count_over_time" => Some(pts.len() as f64),
            "last_over_time" => values.last().copied(),
            "first_over_time" => values.first().copied(),
            "present_over_time" => Some(1.0),
            "stdvar_over_time" => Some(stdvar(vals())),
            "stddev_over_time" => Some(stdvar(vals()).sqrt()),
            "mad_over_time" if vals().any(|v| v.is_nan()) => Some(f64::NAN),
            "mad_over_time" => {
                let med = quantile(0.5, vals().collect());
                Some(quantile(0.5, vals().map(|v| (v - med).abs()).collect()))
            }
            "quantile_over_time" => Some(quantile(q, vals().collect())),
            "changes" => Some(
                values
                    .windows(2)
                    .filter(|w| w[0] != w[1] && !(w[0].is_nan() && w[1].is_nan()))
                    .count() as f64,
            ),
            "resets" => Some(values.windows(2).filter(|w| w[1] < w[0]).count() as f64),
            "double_exponential_smoothing" | "holt_winters" => smoothing(&vals().collect::<Vec<_>>(), sf, tf),
            "ts_of_last_over_time" => pts.ts().last().map(|&t| t as f64 / 1000.0),
            "ts_of_first_over_time" => pts.ts().first().map(|&t| t as f64 / 1000.0),
            "ts_of_min_over_time" | "ts_of_max_over_time" => {
                let max = name == "ts_of_max_over_time";
                let mut best = pts.get(0);
                for p in pts.iter().skip(1) {
                    let better = if max { p.1 >= best.1 } else { p.1 <= best.1 };
                    if better || best.1.is_nan() {
                        best = p;
                    }
                }
                Some(best.0 as f64 / 1000.0)
            }
            _ => None,
        };
        let Some(v) = v else { continue };
        let drop = s.drop || !matches!(name, "last_over_time" | "first_over_time");
        out.push(Sample {
            labels: s.labels.clone(),
            t,
            v,
            drop,
        });
    }
    // The series of a range vector have distinct labels (a selector's series are checked
    // when fetched; a subquery groups by labels), so the output needs no check.
    Ok(Some(Val::Vector(out)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smoothing_of_a_line_follows_it() {
        // A straight line is its own smoothing for any factors.
        let v = smoothing(&[0.0, 1.0, 2.0, 3.0], 0.5, 0.5).expect("enough points");
        assert!((v - 3.0).abs() < 1e-12, "{v}");
        assert_eq!(smoothing(&[1.0], 0.5, 0.5), None);
    }

    #[test]
    fn population_variance() {
        assert!((stdvar([2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0].into_iter()) - 4.0).abs() < 1e-12);
    }
}
