//! Binary operators: arithmetic, comparison (with and without `bool`) and the set
//! operators `and`/`or`/`unless`, with `on`/`ignoring` and `group_left`/`group_right`
//! vector matching (Prometheus `VectorBinop`, `VectorscalarBinop`, `resultMetric`).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use cairn_common::{Labels, METRIC_NAME};
use promql_parser::parser::{BinaryExpr, LabelModifier, VectorMatchCardinality};

use super::error::{QueryError, exec};
use super::eval::{Evaluator, check_unique, drop_name, labels_string};
use super::value::{Sample, Val};

/// Whether the operator is arithmetic (it drops the metric name).
fn is_arith(op: &str) -> bool {
    matches!(op, "+" | "-" | "*" | "/" | "^" | "%" | "atan2")
}

fn is_comparison(op: &str) -> bool {
    matches!(op, "==" | "!=" | ">" | "<" | ">=" | "<=")
}

/// Applies `op` to two floats: `(value, keep)`. Comparisons keep `l` when true.
pub(crate) fn apply(op: &str, l: f64, r: f64) -> Result<(f64, bool), QueryError> {
    Ok(match op {
        "+" => (l + r, true),
        "-" => (l - r, true),
        "*" => (l * r, true),
        "/" => (l / r, true),
        "^" => (l.powf(r), true),
        "%" => (l % r, true),
        "atan2" => (l.atan2(r), true),
        "==" => (l, l == r),
        "!=" => (l, l != r),
        ">" => (l, l > r),
        "<" => (l, l < r),
        ">=" => (l, l >= r),
        "<=" => (l, l <= r),
        other => return Err(exec(format!("operator \"{other}\" not allowed here"))),
    })
}

/// Evaluates a binary expression at `t` (ms).
pub(crate) fn eval_binary(ev: &mut Evaluator<'_>, b: &BinaryExpr, t: i64) -> Result<Val, QueryError> {
    let op = b.op.to_string();
    let return_bool = b.modifier.as_ref().is_some_and(|m| m.return_bool);
    let lhs = ev.eval(&b.lhs, t)?;
    let rhs = ev.eval(&b.rhs, t)?;
    match (lhs, rhs) {
        (Val::Scalar(l), Val::Scalar(r)) => {
            let (v, keep) = apply(&op, l, r)?;
            if is_comparison(&op) {
                // Scalar comparisons need `bool`; the parser enforces it.
                return Ok(Val::Scalar(if keep { 1.0 } else { 0.0 }));
            }
            Ok(Val::Scalar(v))
        }
        (Val::Vector(v), Val::Scalar(s)) => vector_scalar(&op, v, s, false, return_bool, t),
        (Val::Scalar(s), Val::Vector(v)) => vector_scalar(&op, v, s, true, return_bool, t),
        (Val::Vector(l), Val::Vector(r)) => {
            let card = b
                .modifier
                .as_ref()
                .map(|m| m.card.clone())
                .unwrap_or(VectorMatchCardinality::OneToOne);
            let matching = b.modifier.as_ref().and_then(|m| m.matching.clone());
            match op.as_str() {
                "and" | "or" | "unless" => Ok(Val::Vector(set_op(&op, l, r, &matching))),
                _ => {
                    let fill = b
                        .modifier
                        .as_ref()
                        .map(|m| (m.fill_values.lhs, m.fill_values.rhs))
                        .unwrap_or((None, None));
                    vector_vector(&op, l, r, &card, &matching, return_bool, fill, t).map(Val::Vector)
                }
            }
        }
        (l, r) => Err(exec(format!(
            "binary operator \"{op}\" not allowed between {} and {}",
            l.type_name(),
            r.type_name()
        ))),
    }
}

fn vector_scalar(op: &str, v: Vec<Sample>, s: f64, swap: bool, return_bool: bool, t: i64) -> Result<Val, QueryError> {
    let mut out = Vec::with_capacity(v.len());
    for smp in v {
        let (l, r) = if swap { (s, smp.v) } else { (smp.v, s) };
        let (mut val, mut keep) = apply(op, l, r)?;
        if is_comparison(op) && swap {
            val = r;
        }
        if return_bool {
            val = if keep { 1.0 } else { 0.0 };
            keep = true;
        }
        if keep {
            let drop = smp.drop || is_arith(op) || return_bool;
            out.push(Sample {
                labels: smp.labels,
                t,
                v: val,
                drop,
            });
        }
    }
    Ok(Val::Vector(check_unique(out)?))
}

/// The matching signature of a series: its values of the `on` labels, or of all labels but
/// the `ignoring` ones and `__name__`.
fn signature(l: &Labels, matching: &Option<LabelModifier>) -> Labels {
    match matching {
        Some(LabelModifier::Include(on)) => Labels::from_pairs(
            l.iter()
                .filter(|x| on.labels.iter().any(|n| n == &x.name))
                .map(|x| (x.name.clone(), x.value.clone())),
        ),
        Some(LabelModifier::Exclude(ign)) => Labels::from_pairs(
            l.iter()
                .filter(|x| x.name != METRIC_NAME && !ign.labels.iter().any(|n| n == &x.name))
                .map(|x| (x.name.clone(), x.value.clone())),
        ),
        None => drop_name(l.clone()),
    }
}

fn set_op(op: &str, l: Vec<Sample>, r: Vec<Sample>, matching: &Option<LabelModifier>) -> Vec<Sample> {
    match op {
        "and" => {
            let rs: HashSet<Labels> = r.iter().map(|s| signature(&s.labels, matching)).collect();
            l.into_iter()
                .filter(|s| rs.contains(&signature(&s.labels, matching)))
                .collect()
        }
        "unless" => {
            let rs: HashSet<Labels> = r.iter().map(|s| signature(&s.labels, matching)).collect();
            l.into_iter()
                .filter(|s| !rs.contains(&signature(&s.labels, matching)))
                .collect()
        }
        _ => {
            let ls: HashSet<Labels> = l.iter().map(|s| signature(&s.labels, matching)).collect();
            let mut out = l;
            out.extend(r.into_iter().filter(|s| !ls.contains(&signature(&s.labels, matching))));
            out
        }
    }
}

/// The output labels of a matched pair (Prometheus `resultMetric`): the "many" side's
/// labels, reduced to the `on` labels or without the `ignoring` ones for one-to-one
/// matching, plus the `group_x` labels taken from the "one" side.
fn result_metric(
    ls: &Labels,
    rs: Option<&Labels>,
    matching: &Option<LabelModifier>,
    one_to_one: bool,
    include: &[String],
) -> Labels {
    let mut metric = ls.clone();
    if one_to_one {
        match matching {
            Some(LabelModifier::Include(on)) => {
                metric = Labels::from_pairs(
                    metric
                        .iter()
                        .filter(|x| on.labels.iter().any(|n| n == &x.name))
                        .map(|x| (x.name.clone(), x.value.clone())),
                );
            }
            Some(LabelModifier::Exclude(ign)) => {
                for n in &ign.labels {
                    metric.remove(n);
                }
            }
            None => {}
        }
    }
    for n in include {
        metric.set(n, rs.and_then(|r| r.get(n)).unwrap_or(""));
    }
    metric
}

/// Vector-to-vector arithmetic or comparison. `fill` holds the `fill_left`/`fill_right`
/// values that stand in for a missing partner on that side.
#[allow(clippy::too_many_arguments)]
fn vector_vector(
    op: &str,
    lhs: Vec<Sample>,
    rhs: Vec<Sample>,
    card: &VectorMatchCardinality,
    matching: &Option<LabelModifier>,
    return_bool: bool,
    fill: (Option<f64>, Option<f64>),
    t: i64,
) -> Result<Vec<Sample>, QueryError> {
    let one_to_many = matches!(card, VectorMatchCardinality::OneToMany(_));
    // The "one" side goes right. As in Prometheus, the fill values are not swapped with the
    // sides: `fill_left` stands in for a missing "many" side series, `fill_right` for a
    // missing "one" side series (fill-modifier.test, group_right cases).
    let (lhs, rhs) = if one_to_many { (rhs, lhs) } else { (lhs, rhs) };
    let (fill_lhs, fill_rhs) = fill;
    let mut right: HashMap<Labels, &Sample> = HashMap::with_capacity(rhs.len());
    for rs in &rhs {
        let sig = signature(&rs.labels, matching);
        if let Some(dup) = right.get(&sig) {
            let side = if one_to_many { "left" } else { "right" };
            let (a, b) = if dup.labels <= rs.labels {
                (&dup.labels, &rs.labels)
            } else {
                (&rs.labels, &dup.labels)
            };
            return Err(exec(format!(
                "found duplicate series for the match group {} on the {side} hand-side of the operation: [{}, {}];many-to-many matching not allowed: matching labels must be unique on one side",
                labels_string(&sig),
                labels_string(a),
                labels_string(b)
            )));
        }
        right.insert(sig, rs);
    }
    let include: &[String] = match card {
        VectorMatchCardinality::ManyToOne(l) | VectorMatchCardinality::OneToMany(l) => &l.labels,
        _ => &[],
    };
    let one_to_one = matches!(card, VectorMatchCardinality::OneToOne);
    let mut matched: HashMap<Labels, HashSet<Labels>> = HashMap::new();
    let mut out = Vec::new();
    let emit = |metric: Labels, lv: f64, rv: f64, ldrop: bool, out: &mut Vec<Sample>| -> Result<(), QueryError> {
        let (fl, fr) = if one_to_many { (rv, lv) } else { (lv, rv) };
        let (mut v, keep) = apply(op, fl, fr)?;
        if return_bool {
            v = if keep { 1.0 } else { 0.0 };
        } else if !keep {
            return Ok(());
        }
        let drop = is_arith(op) || return_bool || ldrop;
        out.push(Sample {
            labels: Arc::new(metric),
            t,
            v,
            drop,
        });
        Ok(())
    };
    for ls in &lhs {
        let sig = signature(&ls.labels, matching);
        let Some(rs) = right.get(&sig) else {
            if let Some(f) = fill_rhs {
                let metric = result_metric(&ls.labels, None, matching, one_to_one, include);
                emit(metric, ls.v, f, ls.drop, &mut out)?;
            }
            continue;
        };
        let metric = result_metric(&ls.labels, Some(&rs.labels), matching, one_to_one, include);
        let entry = matched.entry(sig);
        if one_to_one {
            if let std::collections::hash_map::Entry::Occupied(_) = entry {
                return Err(exec(
                    "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)",
                ));
            }
            entry.or_default();
        } else if !entry.or_default().insert(metric.clone()) {
            return Err(exec(
                "multiple matches for labels: grouping labels must ensure unique matches",
            ));
        }
        emit(metric, ls.v, rs.v, ls.drop, &mut out)?;
    }
    if let Some(f) = fill_lhs {
        // A missing left series is filled as one series carrying the match group's labels.
        let left_sigs: HashSet<Labels> = lhs.iter().map(|ls| signature(&ls.labels, matching)).collect();
        for rs in &rhs {
            let sig = signature(&rs.labels, matching);
            if left_sigs.contains(&sig) {
                continue;
            }
            let metric = result_metric(&sig, Some(&rs.labels), matching, one_to_one, include);
            emit(metric, f, rs.v, false, &mut out)?;
        }
    }
    check_unique(out)
}
