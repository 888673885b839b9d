//! Result comparison as Prometheus' test engine does it (`promql/promqltest/test.go`,
//! `compareResult`): same label sets, float values equal within a relative epsilon of 1e-6
//! (`util/almost.Equal`, NaN equal to NaN), order only when the eval asks for it.

use cairn_common::Labels;
use cairn_select::promql::{QueryOutput, Value};

use crate::format::{Eval, SeqValue};

/// Relative error allowed between an expected and a computed value.
pub const EPS: f64 = 1e-6;

/// Prometheus' `almost.Equal` with NaN equal to NaN.
pub fn almost_equal(a: f64, b: f64, eps: f64) -> bool {
    if a.is_nan() && b.is_nan() {
        return true;
    }
    if a == b {
        return true;
    }
    let min_normal = f64::from_bits(0x0010_0000_0000_0000);
    let abs_sum = a.abs() + b.abs();
    let diff = (a - b).abs();
    if a == 0.0 || b == 0.0 || abs_sum < min_normal {
        return diff < eps * min_normal;
    }
    diff / abs_sum.min(f64::MAX) < eps
}

fn fmt_series(l: &Labels, v: &[(i64, f64)]) -> String {
    format!("{l} {v:?}")
}

/// Compares a query's value with what eval `e` expects; `Err` names the first difference.
pub fn compare(e: &Eval, out: &QueryOutput) -> Result<(), String> {
    match &out.value {
        Value::Scalar { v, .. } => {
            let Some(exp) = e.scalar else {
                return Err(format!("got scalar {v}, expected {} series", e.results.len()));
            };
            if !almost_equal(*v, exp, EPS) {
                return Err(format!("scalar {v}, expected {exp}"));
            }
            Ok(())
        }
        Value::String { v, .. } => match &e.expect.string {
            Some(s) if s == v => Ok(()),
            other => Err(format!("string {v:?}, expected {other:?}")),
        },
        Value::Vector(vec) => {
            if e.scalar.is_some() {
                return Err("got a vector, expected a scalar".into());
            }
            if vec.len() != e.results.len() {
                return Err(format!(
                    "got {} samples, expected {}: {:?}",
                    vec.len(),
                    e.results.len(),
                    vec.iter().map(|s| format!("{} {}", s.labels, s.v)).collect::<Vec<_>>()
                ));
            }
            for (i, s) in vec.iter().enumerate() {
                let pos = e.results.iter().position(|r| r.labels == s.labels);
                let Some(pos) = pos else {
                    return Err(format!("unexpected series {} {}", s.labels, s.v));
                };
                if e.expect.ordered && pos != i {
                    return Err(format!("series {} at position {i}, expected {pos}", s.labels));
                }
                let exp = match e.results[pos].values.first() {
                    Some(SeqValue::Value(v)) => *v,
                    _ => return Err("expected value missing".into()),
                };
                if !almost_equal(s.v, exp, EPS) {
                    return Err(format!("{} = {}, expected {exp}", s.labels, s.v));
                }
            }
            Ok(())
        }
        Value::Matrix(m) => {
            let (start, step) = match (e.range, e.expect.range_vector) {
                (Some((s, _, st)), _) => (s, st),
                (None, Some((s, _, st))) => (s, st),
                (None, None) => return Err("got a matrix for an instant query without 'expect range vector'".into()),
            };
            if m.len() != e.results.len() {
                return Err(format!(
                    "got {} series, expected {}: {:?}",
                    m.len(),
                    e.results.len(),
                    m.iter().map(|s| fmt_series(&s.labels, &s.samples)).collect::<Vec<_>>()
                ));
            }
            for s in m {
                let Some(exp) = e.results.iter().find(|r| r.labels == s.labels) else {
                    return Err(format!("unexpected series {}", fmt_series(&s.labels, &s.samples)));
                };
                let want: Vec<(i64, f64)> = exp
                    .values
                    .iter()
                    .enumerate()
                    .filter_map(|(i, v)| match v {
                        SeqValue::Value(v) => Some((start + i as i64 * step, *v)),
                        SeqValue::Omitted => None,
                    })
                    .collect();
                let ok = want.len() == s.samples.len()
                    && want
                        .iter()
                        .zip(&s.samples)
                        .all(|(a, b)| a.0 == b.0 && almost_equal(a.1, b.1, EPS));
                if !ok {
                    return Err(format!("{}: got {:?}, expected {:?}", s.labels, s.samples, want));
                }
            }
            Ok(())
        }
    }
}
