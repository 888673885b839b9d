//! PromQL functions: dispatch by name to the families under `functions/`, and helpers the
//! aggregations share (`quantile`, float formatting).

mod histogram;
mod info;
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
    if name == "info" {
        return info::eval_info(ev, c, t);
    }
    if let Some(v) = super::rollup::cached(ev, c, t)? {
        return Ok(v);
    }
    let mut args = Vec::with_capacity(c.args.args.len());
    for a in &c.args.args {
        args.push(ev.eval(a, t)?);
    }
    apply(ev, c, args, t)
}

/// Applies the function of call `c` to its evaluated arguments `args` at `t` (ms).
pub(crate) fn apply(ev: &mut Evaluator<'_>, c: &Call, args: Vec<Val>, t: i64) -> Result<Val, QueryError> {
    let name = c.func.name;
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
        "histogram_quantiles" => {
            let label = string(&args, 1)?;
            let qs = (2..args.len())
                .map(|i| scalar(&args, i))
                .collect::<Result<Vec<_>, _>>()?;
            histogram::histogram_quantiles(ev, &qs, Some(&label), vector(&args, 0)?, t)
        }
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
                labels: absent_labels(arg_expr(0)).into(),
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
pub(crate) use info::info_matchers;

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

/// The position of a series in `[0, 1]` that `limit_ratio` compares with its ratio:
/// Prometheus' `HashRatioSampler`, `labels.Hash() / float64(MaxUint64)`, so that the same
/// series are picked as Prometheus picks. `labels.Hash` (default `stringlabels` build,
/// `model/labels/labels_stringlabels.go`) is xxHash64 (seed 0) of the label set's encoding:
/// labels sorted by name, each name and value preceded by its length in one byte (0–254) or,
/// from 255 bytes on, the byte 255 and the length in 3 bytes little-endian.
pub(crate) fn sample_offset(l: &Labels) -> f64 {
    let mut bytes = Vec::with_capacity(64);
    let mut put = |s: &str| {
        let n = s.len();
        if n < 255 {
            bytes.push(n as u8);
        } else {
            bytes.extend_from_slice(&[255, n as u8, (n >> 8) as u8, (n >> 16) as u8]);
        }
        bytes.extend_from_slice(s.as_bytes());
    };
    for x in l {
        put(&x.name);
        put(&x.value);
    }
    xxhash_rust::xxh64::xxh64(&bytes, 0) as f64 / u64::MAX as f64
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
    fn limit_ratio_offset_hashes_prometheus_label_encoding() {
        // Expected hashes from an independent xxHash64 implementation (checked against the
        // published vectors for "", "a" and "abc") over the length-prefixed encoding
        // 0x08 "__name__" 0x0d "http_requests" 0x05 "group" 0x06 "canary" ….
        let l = Labels::from_pairs([
            ("__name__", "http_requests"),
            ("job", "api-server"),
            ("instance", "0"),
            ("group", "canary"),
        ]);
        assert_eq!(
            sample_offset(&l),
            18_045_460_440_772_787_801u64 as f64 / u64::MAX as f64
        );
        // A value of 255 bytes or more takes the 4-byte length form.
        let long = Labels::from_pairs([("a", "x".repeat(300))]);
        assert_eq!(
            sample_offset(&long),
            8_301_386_041_670_035_979u64 as f64 / u64::MAX as f64
        );
        // The empty label set hashes the empty input: xxh64("") = 0xef46db3751d8e999.
        assert_eq!(
            sample_offset(&Labels::default()),
            0xef46_db37_51d8_e999u64 as f64 / u64::MAX as f64
        );
    }

    #[test]
    fn float_format_matches_go() {
        assert_eq!(format_float(1.0), "1");
        assert_eq!(format_float(0.5), "0.5");
        assert_eq!(format_float(f64::INFINITY), "+Inf");
    }
}
