//! Element-wise math functions (`abs`, `ceil`, `round`, `clamp`, trig, …) and the scalar
//! functions `scalar`, `vector`, `time`, `pi`. All element-wise ones drop the metric name.

use super::{check_unique, scalar, vector};
use crate::promql::error::QueryError;
use crate::promql::value::{Sample, Val};

/// Go's `math.Max`: NaN wins, as in Prometheus.
pub(crate) fn go_max(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() { f64::NAN } else { a.max(b) }
}

/// Go's `math.Min`: NaN wins, as in Prometheus.
pub(crate) fn go_min(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() { f64::NAN } else { a.min(b) }
}

fn unary(name: &str) -> Option<fn(f64) -> f64> {
    Some(match name {
        "abs" => f64::abs,
        "ceil" => f64::ceil,
        "floor" => f64::floor,
        "exp" => f64::exp,
        "ln" => f64::ln,
        "log2" => f64::log2,
        "log10" => f64::log10,
        "sqrt" => f64::sqrt,
        "sgn" => |v: f64| {
            if v > 0.0 {
                1.0
            } else if v < 0.0 {
                -1.0
            } else {
                v
            }
        },
        "sin" => f64::sin,
        "cos" => f64::cos,
        "tan" => f64::tan,
        "asin" => f64::asin,
        "acos" => f64::acos,
        "atan" => f64::atan,
        "sinh" => f64::sinh,
        "cosh" => f64::cosh,
        "tanh" => f64::tanh,
        "asinh" => f64::asinh,
        "acosh" => f64::acosh,
        "atanh" => f64::atanh,
        "deg" => f64::to_degrees,
        "rad" => f64::to_radians,
        _ => return None,
    })
}

fn map(v: Vec<Sample>, t: i64, f: impl Fn(f64) -> f64) -> Result<Val, QueryError> {
    let out = v
        .into_iter()
        .map(|s| Sample {
            labels: s.labels,
            t,
            v: f(s.v),
            drop: true,
        })
        .collect();
    Ok(Val::Vector(check_unique(out)?))
}

/// Evaluates the function if it belongs here; `None` otherwise.
pub(super) fn eval(name: &str, args: &[Val], t: i64) -> Result<Option<Val>, QueryError> {
    if let Some(f) = unary(name) {
        return map(vector(args, 0)?, t, f).map(Some);
    }
    let v = match name {
        "round" => {
            let to = if args.len() > 1 { scalar(args, 1)? } else { 1.0 };
            let inv = 1.0 / to;
            map(vector(args, 0)?, t, |v| (v * inv + 0.5).floor() / inv)?
        }
        "clamp" => {
            let (lo, hi) = (scalar(args, 1)?, scalar(args, 2)?);
            if hi < lo {
                return Ok(Some(Val::Vector(Vec::new())));
            }
            map(vector(args, 0)?, t, |v| go_max(lo, go_min(hi, v)))?
        }
        "clamp_min" => {
            let lo = scalar(args, 1)?;
            map(vector(args, 0)?, t, |v| go_max(lo, v))?
        }
        "clamp_max" => {
            let hi = scalar(args, 1)?;
            map(vector(args, 0)?, t, |v| go_min(hi, v))?
        }
        "scalar" => {
            let v = vector(args, 0)?;
            Val::Scalar(if v.len() == 1 { v[0].v } else { f64::NAN })
        }
        "vector" => Val::Vector(vec![Sample {
            labels: Default::default(),
            t,
            v: scalar(args, 0)?,
            drop: false,
        }]),
        "time" => Val::Scalar(t as f64 / 1000.0),
        "pi" => Val::Scalar(std::f64::consts::PI),
        _ => return Ok(None),
    };
    Ok(Some(v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_min_max_propagate_nan() {
        assert!(go_max(1.0, f64::NAN).is_nan());
        assert!(go_min(f64::NAN, 1.0).is_nan());
        assert_eq!(go_max(1.0, 2.0), 2.0);
    }
}
