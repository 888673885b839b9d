//! `info(v [, {data-label selector}])`: enriches each series of `v` with the data labels of
//! the info series (default `target_info`) that share its identifying labels `instance` and
//! `job`, as Prometheus 3's `info` function (`promql/info.go`, `info.test`).
//!
//! Rules: the info series are read as of the time the first selector of `v` reads (after
//! its `@`/`offset` and those of enclosing subqueries), with the lookback delta. Per info
//! metric name and identifying labels the newest sample wins; two with the same timestamp
//! are an error. Data labels already on the base series are kept from the base; two info
//! metrics giving one label different values are an error. A base series without a
//! matching info series is dropped when a data-label matcher does not match the empty
//! string. Base series that are themselves info series (their name matches the selector's
//! `__name__` matchers) pass through unchanged.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use cairn_common::{Labels, METRIC_NAME, MatchOp, Matcher};
use promql_parser::parser::{Call, Expr};

use crate::promql::error::{QueryError, exec};
use crate::promql::eval::{Evaluator, labels_string};
use crate::promql::selector::{select_instant, selector_key, to_matchers};
use crate::promql::value::{Sample, Val};

/// The metric read when the selector names none.
const TARGET_INFO: &str = "target_info";

/// Labels that tie an info series to the series it describes (fixed in Prometheus).
const IDENTIFYING: [&str; 2] = ["instance", "job"];

/// The matchers of the info series selection: the selector's matchers, with
/// `__name__="target_info"` added when it has no `__name__` matcher, and
/// `__name__=~".+_info"` added when all its `__name__` matchers are negative (so that they
/// do not select every other metric). Errors: bad regexes.
pub(crate) fn info_matchers(selector: Option<&Expr>) -> Result<Vec<Matcher>, QueryError> {
    let mut out = match selector {
        Some(Expr::VectorSelector(vs)) => to_matchers(vs)?,
        Some(_) => return Err(exec("expected a label selector as the second argument of info()")),
        None => Vec::new(),
    };
    let names: Vec<&Matcher> = out.iter().filter(|m| m.name == METRIC_NAME).collect();
    let added = if names.is_empty() {
        Some(Matcher::new(MatchOp::Equal, METRIC_NAME, TARGET_INFO))
    } else if names
        .iter()
        .all(|m| matches!(m.op, MatchOp::NotEqual | MatchOp::NotRegex))
    {
        Some(Matcher::new(MatchOp::Regex, METRIC_NAME, ".+_info"))
    } else {
        None
    };
    if let Some(m) = added {
        out.insert(0, m.map_err(|e| QueryError::Parse(e.to_string()))?);
    }
    Ok(out)
}

/// The time the first selector of `e` reads at when `e` is evaluated at `t` (ms), following
/// `@` and `offset` through subqueries; `None` when `e` has no selector.
fn reference_time(ev: &Evaluator<'_>, e: &Expr, t: i64) -> Option<i64> {
    match e {
        Expr::VectorSelector(vs) => Some(ev.effective_time(t, &vs.at, &vs.offset)),
        Expr::MatrixSelector(ms) => Some(ev.effective_time(t, &ms.vs.at, &ms.vs.offset)),
        Expr::Subquery(sq) => reference_time(ev, &sq.expr, ev.effective_time(t, &sq.at, &sq.offset)),
        Expr::Paren(p) => reference_time(ev, &p.expr, t),
        Expr::Unary(u) => reference_time(ev, &u.expr, t),
        Expr::Binary(b) => reference_time(ev, &b.lhs, t).or_else(|| reference_time(ev, &b.rhs, t)),
        Expr::Aggregate(a) => {
            reference_time(ev, &a.expr, t).or_else(|| a.param.as_ref().and_then(|p| reference_time(ev, p, t)))
        }
        Expr::Call(c) => c.args.args.iter().find_map(|a| reference_time(ev, a, t)),
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => None,
    }
}

/// The key that pairs a series with info series: the info metric name and the series'
/// identifying labels that are present.
fn signature(name: &str, l: &Labels) -> Labels {
    let mut out = Labels::from_pairs(IDENTIFYING.iter().filter_map(|n| l.get(n).map(|v| (*n, v))));
    out.set(METRIC_NAME, name);
    out
}

/// Evaluates `info(...)` at `t` (ms).
pub(crate) fn eval_info(ev: &mut Evaluator<'_>, c: &Call, t: i64) -> Result<Val, QueryError> {
    let Some(arg) = c.args.args.first() else {
        return Err(exec("info() needs an instant vector argument"));
    };
    let base = match ev.eval(arg, t)? {
        Val::Vector(v) => v,
        other => {
            return Err(exec(format!(
                "expected instant vector in info(), got {}",
                other.type_name()
            )));
        }
    };
    let selector = c.args.args.get(1).map(|b| b.as_ref());
    let matchers = info_matchers(selector)?;
    let (name_ms, data_ms): (Vec<&Matcher>, Vec<&Matcher>) = matchers.iter().partition(|m| m.name == METRIC_NAME);
    // Base series that are info series themselves are not enriched: those matching the
    // selector's `__name__` matchers, or `target_info` when there is no selector. A selector
    // without `__name__` matchers marks none.
    let marks_info = match selector {
        None => true,
        Some(Expr::VectorSelector(vs)) => {
            vs.name.is_some() || vs.matchers.matchers.iter().any(|m| m.name == METRIC_NAME)
        }
        Some(_) => false,
    };
    let is_info = |s: &Sample| {
        let name = s.labels.metric_name().unwrap_or("");
        marks_info && name_ms.iter().all(|m| m.matches(name))
    };
    // Identifying label values of the series to enrich restrict the info series.
    let mut id_values: HashMap<&str, HashSet<&str>> = HashMap::new();
    for s in base.iter().filter(|s| !is_info(s)) {
        for n in IDENTIFYING {
            if let Some(v) = s.labels.get(n) {
                id_values.entry(n).or_default().insert(v);
            }
        }
    }
    let mut newest: HashMap<Labels, (i64, Labels)> = HashMap::new();
    if !id_values.is_empty() {
        let t_ref = reference_time(ev, arg, t).unwrap_or(t);
        let key = selector_key(&matchers);
        let stored = ev.store.by_selector.get(&key).map(|v| v.as_slice()).unwrap_or(&[]);
        for s in select_instant(stored, t_ref, ev.lookback) {
            let ok = id_values
                .iter()
                .all(|(n, vals)| s.labels.get(n).is_some_and(|v| vals.contains(v)));
            if !ok {
                continue;
            }
            let sig = signature(s.labels.metric_name().unwrap_or(""), &s.labels);
            match newest.get(&sig) {
                Some((ts, _)) if *ts > s.t => {}
                Some((ts, prev)) if *ts == s.t => {
                    return Err(exec(format!(
                        "found duplicate series for info metric: existing {} @ {}, new {} @ {}",
                        labels_string(prev),
                        ts,
                        labels_string(&s.labels),
                        s.t
                    )));
                }
                _ => {
                    newest.insert(sig, (s.t, Labels::clone(&s.labels)));
                }
            }
        }
    }
    let info_names: HashSet<String> = newest
        .keys()
        .filter_map(|k| k.metric_name().map(str::to_string))
        .collect();
    let mut out = Vec::with_capacity(base.len());
    for s in base {
        if is_info(&s) {
            out.push(s);
            continue;
        }
        let mut added = Labels::default();
        let mut seen = false;
        for name in &info_names {
            let Some((_, info)) = newest.get(&signature(name, &s.labels)) else {
                continue;
            };
            seen = true;
            for l in info.iter().filter(|l| l.name != METRIC_NAME) {
                if !data_ms.is_empty() && !data_ms.iter().any(|m| m.name == l.name) {
                    continue;
                }
                if let Some(v) = added.get(&l.name)
                    && v != l.value
                {
                    return Err(exec(format!("conflicting label: {}", l.name)));
                }
                if s.labels.get(&l.name).is_none() {
                    added.set(&l.name, &l.value);
                }
            }
        }
        if !seen && data_ms.iter().any(|m| !m.matches("")) {
            continue;
        }
        let mut labels = s.labels;
        if !added.is_empty() {
            let l_mut = Arc::make_mut(&mut labels);
            for l in added.iter() {
                l_mut.set(&l.name, &l.value);
            }
        }
        out.push(Sample { labels, ..s });
    }
    Ok(Val::Vector(out))
}
