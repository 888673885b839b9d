//! PromQL functions: dispatch by name to the families under `functions/`, and helpers the
//! aggregations share (`quantile`, float formatting).

mod histogram;
mod labels;
mod math;
mod over_time;
mod rate;
mod time;

use cairn_common::Labels;
use promql_parser::parser::{Call, Expr};

use super::error::{QueryError, exec};
use super::eval::{Evaluator, check_unique};
use super::value::{Sample, Series, Val};

/// Evaluates a function call at `t` (ms).
pub(crate) fn eval_call(ev: &mut Evaluator<'_>, c: &Call, t: i64) -> Result<Val, QueryError> {
    let name = c.func.name;
    let mut args = Vec::with_capacity(c.args.args.len());
    for a in &c.args.args {
        args.push(ev.eval(a, t)?);
    }
    let arg_expr = |i: usize| c.args.args.get(i).map(|b| b.as_ref());
    if let Some(v) = math::eval(name, &args, t)? {
        return Ok(v);
    }
    if let Some(v) = time::eval(name, &args, t)? {
        return Ok(v);
    }
    if let Some(v) = over_time::eval(ev, name, &args, arg_expr(0), t)? {
        return Ok(v);
    }
    if let Some(v) = rate::eval(ev, name, &args, arg_expr(0), t)? {
        return Ok(v);
    }
    if let Some(v) = labels::eval(ev, name, args.clone(), t)? {
        return Ok(v);
    }
    match name {
        "step" => Ok(Val::Scalar(ev.step as f64 / 1000.0)),
        "range" => Ok(Val::Scalar((ev.end - ev.start) as f64 / 1000.0)),
        "start" => Ok(Val::Scalar(ev.start as f64 / 1000.0)),
        "end" => Ok(Val::Scalar(ev.end as f64 / 1000.0)),
        "min_of" => Ok(Val::Scalar(math::go_min(scalar(&args, 0)?, scalar(&args, 1)?))),
        "max_of" => Ok(Val::Scalar(math::go_max(scalar(&args, 0)?, scalar(&args, 1)?))),
        "histogram_quantile" => histogram::histogram_quantile(ev, scalar(&args, 0)?, vector(&args, 1)?, t),
        "timestamp" => {
            let raw = matches!(unparen(arg_expr(0)), Some(Expr::VectorSelector(_)));
            let out = vector(&args, 0)?
                .into_iter()
                .map(|s| Sample {
                    v: if raw { s.t as f64 / 1000.0 } else { t as f64 / 1000.0 },
                    labels: s.labels,
                    t,
                    drop: true,
                })
                .collect();
            Ok(Val::Vector(check_unique(out)?))
        }
        "absent" => {
            if !vector(&args, 0)?.is_empty() {
                return Ok(Val::Vector(Vec::new()));
            }
            Ok(Val::Vector(vec![Sample {
                labels: absent_labels(arg_expr(0)),
                t,
                v: 1.0,
                drop: false,
            }]))
        }
        _ => Err(exec(format!("function \"{name}\" is not supported"))),
    }
}

fn unparen(e: Option<&Expr>) -> Option<&Expr> {
    match e {
        Some(Expr::Paren(p)) => unparen(Some(&p.expr)),
        other => other,
    }
}

/// Labels of `absent(...)`/`absent_over_time(...)`: the selector's equality matchers that
/// appear once, without `__name__` (Prometheus `createLabelsForAbsentFunction`).
pub(super) fn absent_labels(e: Option<&Expr>) -> Labels {
    let vs = match unparen(e) {
        Some(Expr::VectorSelector(vs)) => vs,
        Some(Expr::MatrixSelector(ms)) => &ms.vs,
        _ => return Labels::default(),
    };
    let mut out = Labels::default();
    let mut seen: Vec<&str> = Vec::new();
    for m in &vs.matchers.matchers {
        if m.name == cairn_common::METRIC_NAME {
            continue;
        }
        if matches!(m.op, promql_parser::label::MatchOp::Equal) && !seen.contains(&m.name.as_str()) {
            out.set(&m.name, &m.value);
            seen.push(&m.name);
        } else if seen.contains(&m.name.as_str()) {
            out.remove(&m.name);
        }
    }
    out
}

pub(super) fn scalar(args: &[Val], i: usize) -> Result<f64, QueryError> {
    match args.get(i) {
        Some(Val::Scalar(v)) => Ok(*v),
        _ => Err(exec(format!("expected scalar as argument {}", i + 1))),
    }
}

pub(super) fn string(args: &[Val], i: usize) -> Result<String, QueryError> {
    match args.get(i) {
        Some(Val::Str(v)) => Ok(v.clone()),
        _ => Err(exec(format!("expected string as argument {}", i + 1))),
    }
}

pub(super) fn vector(args: &[Val], i: usize) -> Result<Vec<Sample>, QueryError> {
    match args.get(i) {
        Some(Val::Vector(v)) => Ok(v.clone()),
        _ => Err(exec(format!("expected instant vector as argument {}", i + 1))),
    }
}

pub(super) fn matrix(args: &[Val], i: usize) -> Result<&[Series], QueryError> {
    match args.get(i) {
        Some(Val::Matrix(v)) => Ok(v),
        _ => Err(exec(format!("expected range vector as argument {}", i + 1))),
    }
}

/// The `q`-quantile of `vals` with linear interpolation between closest ranks, as
/// Prometheus' `quantile` (NaN for no values or NaN `q`, ±Inf outside `[0, 1]`).
pub(crate) fn quantile(q: f64, mut vals: Vec<f64>) -> f64 {
    if vals.is_empty() || q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    vals.sort_by(|a, b| match (a.is_nan(), b.is_nan()) {
        (true, true) => std::cmp::Ordering::Equal,
        (true, false) => std::cmp::Ordering::Less,
        (false, true) => std::cmp::Ordering::Greater,
        _ => a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal),
    });
    let n = vals.len() as f64;
    let rank = q * (n - 1.0);
    let lower = rank.floor().max(0.0);
    let upper = (lower + 1.0).min(n - 1.0);
    let weight = rank - rank.floor();
    vals[lower as usize] * (1.0 - weight) + vals[upper as usize] * weight
}

/// Formats a float as Go's `strconv.FormatFloat(f, 'f', -1, 64)` does for label values
/// (`count_values`), with `+Inf`, `-Inf` and `NaN` spelled as Prometheus does.
pub(crate) fn format_float(v: f64) -> String {
    if v.is_nan() {
        "NaN".to_string()
    } else if v == f64::INFINITY {
        "+Inf".to_string()
    } else if v == f64::NEG_INFINITY {
        "-Inf".to_string()
    } else {
        format!("{v}")
    }
}

/// A stable position of a series in `[0, 1)`, from a hash of its labels, used by
/// `limit_ratio` to pick the same series at every step.
pub(crate) fn sample_offset(l: &Labels) -> f64 {
    let mut bytes = Vec::new();
    for x in l {
        bytes.extend_from_slice(x.name.as_bytes());
        bytes.push(0xff);
        bytes.extend_from_slice(x.value.as_bytes());
        bytes.push(0xff);
    }
    fnv1a(&bytes) as f64 / u64::MAX as f64
}

fn fnv1a(b: &[u8]) -> u64 {
    // FNV-1a: deterministic and dependency-free.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &x in b {
        h ^= u64::from(x);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantile_interpolates_between_ranks() {
        // Ranks 0..3 over [1,2,3,4]; q=0.5 → rank 1.5 → 2.5.
        assert_eq!(quantile(0.5, vec![4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(quantile(0.0, vec![4.0, 1.0]), 1.0);
        assert_eq!(quantile(1.5, vec![4.0]), f64::INFINITY);
        assert!(quantile(0.5, vec![]).is_nan());
    }

    #[test]
    fn float_format_matches_go() {
        assert_eq!(format_float(1.0), "1");
        assert_eq!(format_float(0.5), "0.5");
        assert_eq!(format_float(f64::INFINITY), "+Inf");
    }
}
