//! The evaluator: one expression at one evaluation time (ms) over the series fetched for
//! the query. A range query evaluates the expression at every step, as Prometheus does.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use cairn_common::Labels;
use promql_parser::parser::{AtModifier, Expr, Offset, SubqueryExpr, VectorSelector};

use super::error::{QueryError, exec};
use super::selector::{Store, select_instant, select_range, selector_key_of};
use super::value::{Sample, Series, Val};
use super::{aggregation, binary, functions};

/// A subquery's output series under construction: whether its name is dropped, and its
/// `(t_ms, v)` points.
type SubqueryPoints = (bool, Vec<(i64, f64)>);

/// State of one query's evaluation.
pub(crate) struct Evaluator<'a> {
    pub store: &'a Store,
    /// Query start and end (ms), for `@ start()` and `@ end()`.
    pub start: i64,
    pub end: i64,
    /// Range query step, ms (0 for an instant query).
    pub step: i64,
    /// Lookback delta, ms.
    pub lookback: i64,
    /// Step of subqueries that give none, ms.
    pub default_subquery_step: i64,
    /// Whether this is a range query (some warnings depend on it).
    pub is_range: bool,
    /// Maximum samples selected by one step (0: unlimited).
    pub max_samples: usize,
    pub samples_in_step: usize,
    pub warnings: Vec<String>,
    pub infos: Vec<String>,
    /// Metric names already named by a "might not be a counter" info: a range query
    /// meets them at every step, and the message is built once.
    pub not_counters_reported: HashSet<String>,
    /// Values of subquery inner expressions by node (its address in the query's syntax
    /// tree) and inner evaluation time (ms). Consecutive outer steps share most of the
    /// inner step grid, so each inner step is evaluated once per query, not once per outer
    /// step. An inner value depends only on its time, so reuse is exact.
    pub subquery_cache: HashMap<usize, BTreeMap<i64, Val>>,
    /// Group keys of each aggregation's input series, by node (its address in the
    /// query's syntax tree), kept for the whole query.
    pub group_keys: HashMap<usize, aggregation::GroupKeys>,
    /// Range functions precomputed across steps, by call node ([`super::rollup`]).
    pub rollups: super::rollup::Rollups,
}

/// Milliseconds of a duration.
pub(crate) fn dur_ms(d: &Duration) -> i64 {
    d.as_millis() as i64
}

/// Milliseconds since the epoch of a time (negative before it).
pub(crate) fn time_ms(t: &SystemTime) -> i64 {
    match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => d.as_millis() as i64,
        Err(e) => -(e.duration().as_millis() as i64),
    }
}

/// Signed offset in ms (positive looks back in time).
pub(crate) fn offset_ms(o: &Option<Offset>) -> i64 {
    match o {
        None => 0,
        Some(Offset::Pos(d)) => dur_ms(d),
        Some(Offset::Neg(d)) => -dur_ms(d),
    }
}

impl<'a> Evaluator<'a> {
    /// The time a selector or subquery reads at, given the evaluation time `t`.
    pub fn effective_time(&self, t: i64, at: &Option<AtModifier>, offset: &Option<Offset>) -> i64 {
        let base = match at {
            None => t,
            Some(AtModifier::Start) => self.start,
            Some(AtModifier::End) => self.end,
            Some(AtModifier::At(st)) => time_ms(st),
        };
        base - offset_ms(offset)
    }

    /// Adds the info that a counter function (`rate`, `increase`, `irate`) read `metric`,
    /// whose name has no counter suffix; once per metric name.
    pub fn info_not_counter(&mut self, metric: &str) {
        if self.not_counters_reported.contains(metric) {
            return;
        }
        self.not_counters_reported.insert(metric.to_string());
        self.info(format!(
            "PromQL info: metric might not be a counter, name does not end in _total/_sum/_count/_bucket: {metric:?}"
        ));
    }

    pub fn warn(&mut self, msg: String) {
        if !self.warnings.contains(&msg) {
            self.warnings.push(msg);
        }
    }

    pub fn info(&mut self, msg: String) {
        if !self.infos.contains(&msg) {
            self.infos.push(msg);
        }
    }

    pub(crate) fn count_samples(&mut self, n: usize) -> Result<(), QueryError> {
        self.samples_in_step += n;
        if self.max_samples > 0 && self.samples_in_step > self.max_samples {
            return Err(QueryError::TooManySamples(
                "query processing would load too many samples into memory in query execution".to_string(),
            ));
        }
        Ok(())
    }

    pub(crate) fn stored(&self, vs: &VectorSelector) -> Result<&'a [super::selector::StoredSeries], QueryError> {
        let key = selector_key_of(vs);
        Ok(self.store.by_selector.get(&key).map(|v| v.as_slice()).unwrap_or(&[]))
    }

    /// Evaluates `e` at time `t` (ms).
    pub fn eval(&mut self, e: &Expr, t: i64) -> Result<Val, QueryError> {
        match e {
            Expr::NumberLiteral(n) => Ok(Val::Scalar(n.val)),
            Expr::StringLiteral(s) => Ok(Val::Str(s.val.clone())),
            Expr::Paren(p) => self.eval(&p.expr, t),
            Expr::Unary(u) => match self.eval(&u.expr, t)? {
                Val::Scalar(v) => Ok(Val::Scalar(-v)),
                Val::Vector(v) => {
                    let out = v
                        .into_iter()
                        .map(|s| Sample {
                            labels: s.labels,
                            t,
                            v: -s.v,
                            drop: true,
                        })
                        .collect();
                    Ok(Val::Vector(check_unique(out)?))
                }
                other => Err(exec(format!("unary minus on {}", other.type_name()))),
            },
            Expr::VectorSelector(vs) => {
                let te = self.effective_time(t, &vs.at, &vs.offset);
                let out = select_instant(self.stored(vs)?, te, self.lookback);
                self.count_samples(out.len())?;
                Ok(Val::Vector(out))
            }
            Expr::MatrixSelector(ms) => {
                let te = self.effective_time(t, &ms.vs.at, &ms.vs.offset);
                let out = select_range(self.stored(&ms.vs)?, te, dur_ms(&ms.range));
                self.count_samples(out.iter().map(|s| s.points.len()).sum())?;
                Ok(Val::Matrix(out))
            }
            Expr::Subquery(sq) => self.eval_subquery(sq, t),
            Expr::Binary(b) => binary::eval_binary(self, b, t),
            Expr::Aggregate(a) => aggregation::eval_aggregate(self, a, t),
            Expr::Call(c) => functions::eval_call(self, c, t),
            Expr::Extension(_) => Err(QueryError::Parse("unsupported expression".to_string())),
        }
    }

    /// A subquery at `t`: the inner expression at every multiple of the step in
    /// `(t' - range, t']`, where `t'` is `t` after `@` and `offset`.
    fn eval_subquery(&mut self, sq: &SubqueryExpr, t: i64) -> Result<Val, QueryError> {
        let te = self.effective_time(t, &sq.at, &sq.offset);
        let step = sq
            .step
            .as_ref()
            .map(dur_ms)
            .unwrap_or(self.default_subquery_step)
            .max(1);
        let range = dur_ms(&sq.range);
        let lo = te - range;
        let mut ti = lo.div_euclid(step) * step;
        if ti <= lo {
            ti += step;
        }
        let mut by_labels: BTreeMap<Arc<Labels>, SubqueryPoints> = BTreeMap::new();
        let node = std::ptr::from_ref::<Expr>(&sq.expr) as usize;
        let mut cache = self.subquery_cache.remove(&node).unwrap_or_default();
        // Inner steps left of this window are not read again by later outer steps of a
        // range query (their windows only move right).
        cache = cache.split_off(&(lo + 1));
        while ti <= te {
            let val = match cache.get(&ti) {
                Some(v) => v.clone(),
                None => {
                    let v = self.eval(&sq.expr, ti)?;
                    cache.insert(ti, v.clone());
                    v
                }
            };
            match val {
                Val::Scalar(v) => by_labels.entry(Arc::default()).or_default().1.push((ti, v)),
                Val::Vector(vec) => {
                    for s in vec {
                        let e = by_labels.entry(s.labels).or_default();
                        e.0 |= s.drop;
                        e.1.push((ti, s.v));
                    }
                }
                other => {
                    return Err(exec(format!(
                        "subquery is only allowed on instant vector, got {}",
                        other.type_name()
                    )));
                }
            }
            ti += step;
        }
        self.subquery_cache.insert(node, cache);
        Ok(Val::Matrix(
            by_labels
                .into_iter()
                .map(|(labels, (drop, points))| Series {
                    labels,
                    points: points.into(),
                    drop,
                    not_counter: None,
                })
                .collect(),
        ))
    }
}

/// The labels without `__name__` (and without the metric's `__type__` and `__unit__`
/// labels, which describe the metric name and go with it, as in Prometheus 3).
pub(crate) fn drop_name(mut l: Labels) -> Labels {
    l.remove(cairn_common::METRIC_NAME);
    l.remove("__type__");
    l.remove("__unit__");
    l
}

/// Labels in Prometheus' `labels.String()` notation: `{__name__="up", job="a"}`.
pub(crate) fn labels_string(l: &Labels) -> String {
    let parts: Vec<String> = l.iter().map(|x| format!("{}={:?}", x.name, x.value)).collect();
    format!("{{{}}}", parts.join(", "))
}

/// Errors as Prometheus does when an operation made two output series equal.
pub(crate) fn check_unique(v: Vec<Sample>) -> Result<Vec<Sample>, QueryError> {
    if v.len() > 1 {
        let mut seen = std::collections::HashSet::with_capacity(v.len());
        for s in &v {
            if !seen.insert(&s.labels) {
                return Err(exec("vector cannot contain metrics with the same labelset".to_string()));
            }
        }
    }
    Ok(v)
}
