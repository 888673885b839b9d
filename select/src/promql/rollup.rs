//! Range functions of a range query computed series by series: for a call such as
//! `rate(m[1m])` whose argument is a plain matrix selector, the values at many steps are
//! computed together, a few series at a time across all those steps, then handed out
//! step by step as the evaluator asks for them.
//!
//! Step by step across all series, every window start and end is a cache miss in a
//! different series' samples; a few series across many steps read each series' samples
//! in order. The values are the same: a range function at `t` depends only on the
//! window `(t - range, t]` of each series and on `t`, and each series gives at most one
//! output sample, in series order.

use std::collections::HashMap;

use promql_parser::parser::{Call, Expr, MatrixSelector};

use super::error::QueryError;
use super::eval::{Evaluator, dur_ms};
use super::functions::apply;
use super::selector::select_range;
use super::value::{Sample, Val};

/// Functions of one range-vector argument whose output at `t` holds, for each input
/// series in order, at most one sample computed from that series' window alone.
const PER_SERIES: &[&str] = &[
    "rate",
    "increase",
    "delta",
    "irate",
    "idelta",
    "deriv",
    "changes",
    "resets",
    "avg_over_time",
    "min_over_time",
    "max_over_time",
    "sum_over_time",
    "count_over_time",
    "last_over_time",
    "stddev_over_time",
    "stdvar_over_time",
    "mad_over_time",
    "present_over_time",
];

/// Series computed together across the steps: their samples fit in a core's cache.
const SERIES_PER_PASS: usize = 32;

/// Most output cells (series × steps, 32 bytes each) held at once per call; more steps are computed in
/// later rounds.
const MAX_CELLS: usize = 1 << 18;

/// The precomputed values of one call for a run of steps.
#[derive(Debug, Default)]
pub(crate) struct Rollup {
    /// Index of the first step held.
    first: usize,
    /// Per step from `first`: the output vector and the number of samples the step
    /// selected, until handed out.
    steps: Vec<Option<(Vec<Sample>, usize)>>,
}

/// The matrix selector of `c` when the call can be precomputed: a per-series function of
/// one plain matrix selector without `@`.
fn eligible(c: &Call) -> Option<&MatrixSelector> {
    if !PER_SERIES.contains(&c.func.name) || c.args.args.len() != 1 {
        return None;
    }
    match c.args.args.first().map(|a| a.as_ref()) {
        Some(Expr::MatrixSelector(ms)) if ms.vs.at.is_none() => Some(ms),
        _ => None,
    }
}

/// The value of call `c` at `t` (ms) from the precomputed steps, computing the next run
/// of steps when `t` is a step of the range query not yet computed. `None` when the call
/// is not eligible, the query is not a range query, `t` is not one of its steps, or the
/// step was already handed out: the caller then evaluates the call as usual.
pub(crate) fn cached(ev: &mut Evaluator<'_>, c: &Call, t: i64) -> Result<Option<Val>, QueryError> {
    if !ev.is_range || ev.step <= 0 || t < ev.start || t > ev.end || (t - ev.start) % ev.step != 0 {
        return Ok(None);
    }
    let Some(ms) = eligible(c) else {
        return Ok(None);
    };
    let k = ((t - ev.start) / ev.step) as usize;
    let key = c as *const Call as usize;
    let held = ev
        .rollups
        .get(&key)
        .is_some_and(|r| k >= r.first && k < r.first + r.steps.len());
    if !held {
        let r = compute(ev, c, ms, k)?;
        ev.rollups.insert(key, r);
    }
    let Some(r) = ev.rollups.get_mut(&key) else {
        return Ok(None);
    };
    let Some((vector, selected)) = r.steps.get_mut(k - r.first).and_then(Option::take) else {
        return Ok(None);
    };
    ev.count_samples(selected)?;
    Ok(Some(Val::Vector(vector)))
}

/// Computes the steps from `first` on, as many as [`MAX_CELLS`] allows.
fn compute(ev: &mut Evaluator<'_>, c: &Call, ms: &MatrixSelector, first: usize) -> Result<Rollup, QueryError> {
    let series = ev.stored(&ms.vs)?;
    let total_steps = ((ev.end - ev.start) / ev.step) as usize + 1;
    let run = (MAX_CELLS / series.len().max(1)).clamp(1, total_steps - first);
    let times: Vec<i64> = (first..first + run).map(|k| ev.start + k as i64 * ev.step).collect();
    let range = dur_ms(&ms.range);
    // Each series gives at most one sample per step: room for all of them up front
    // (at most MAX_CELLS samples in all), so that no step's vector grows pass by pass.
    let mut steps: Vec<(Vec<Sample>, usize)> = (0..run).map(|_| (Vec::with_capacity(series.len()), 0)).collect();
    for pass in series.chunks(SERIES_PER_PASS) {
        for (i, &t) in times.iter().enumerate() {
            let te = ev.effective_time(t, &None, &ms.vs.offset);
            let m = select_range(pass, te, range);
            steps[i].1 += m.iter().map(|s| s.points.len()).sum::<usize>();
            match apply(ev, c, vec![Val::Matrix(m)], t)? {
                Val::Vector(v) => steps[i].0.extend(v),
                other => {
                    return Err(QueryError::Execution(format!(
                        "function {} gave {} instead of an instant vector",
                        c.func.name,
                        other.type_name()
                    )));
                }
            }
        }
    }
    Ok(Rollup {
        first,
        steps: steps.into_iter().map(Some).collect(),
    })
}

/// The per-call state of a query's evaluator, by call node address.
pub(crate) type Rollups = HashMap<usize, Rollup>;
