//! Runs parsed test commands against [`Engine`] over a [`Store`] and compares the results
//! as Prometheus' test engine does (`promql/promqltest/test.go`): same label sets, values
//! equal within a relative epsilon of 1e-6 (NaN equals NaN), order only when asked. Every
//! instant eval that passes is run again as a range query from t-1m to t+1m with a 1m step,
//! and the middle step must give the same answer (Prometheus' `runInstantQuery`).

#[path = "compare.rs"]
mod compare;

use std::collections::{BTreeMap, HashSet};

use cairn_common::Labels;
use cairn_select::promql::{Engine, FetchedSeries, InstantSample, Querier, QueryOutput, Value};

use crate::format::{Command, Eval, SeqValue, SeriesLine};
use compare::compare;

/// Outcome of one eval.
pub enum Outcome {
    Pass,
    Fail(String),
    Skip(String),
}

/// Where the float series of a test file live between `load` and `eval`: the runner writes
/// each `load` through [`Store::load`] and evaluates through [`Store::querier`]. A `clear`
/// replaces the store with a fresh one.
pub trait Store {
    /// Stores the float series of one `load` command: labels with samples at timestamps
    /// (ms) ascending and unique. A sample at a timestamp already stored by an earlier
    /// `load` replaces it. `Err` names what failed; the file's later evals then fail.
    fn load(&mut self, rt: &tokio::runtime::Runtime, series: Vec<FetchedSeries>) -> Result<(), String>;

    /// The querier the engine reads the stored series through.
    fn querier(&self) -> &dyn Querier;
}

/// The storage of one test file: the float series in a [`Store`], and what the runner
/// needs to know of the lines it does not load.
pub struct Db<S> {
    store: S,
    /// Why the last `load` failed, if it did.
    load_error: Option<String>,
    histogram_names: HashSet<String>,
    /// Label sets of the series that hold native histogram samples (not loaded).
    histogram_series: Vec<Labels>,
    /// Metrics given start timestamps (`@st` lines, not loaded).
    start_timestamp_names: HashSet<String>,
}

impl<S: Store> Db<S> {
    /// An empty database over `store`.
    pub fn new(store: S) -> Self {
        Db {
            store,
            load_error: None,
            histogram_names: HashSet::new(),
            histogram_series: Vec::new(),
            start_timestamp_names: HashSet::new(),
        }
    }

    /// Applies one `load`: series line `i` has its value number `n` at `n * step_ms`.
    pub fn apply_load(&mut self, rt: &tokio::runtime::Runtime, step_ms: i64, nhcb: bool, series: &[SeriesLine]) {
        let mut floats: BTreeMap<Labels, Vec<(i64, f64)>> = BTreeMap::new();
        for s in series {
            let name = s.labels.metric_name().unwrap_or("").to_string();
            if s.start_timestamps {
                self.start_timestamp_names.insert(name);
                continue;
            }
            if s.histogram {
                self.histogram_names.insert(name);
                self.histogram_series.push(s.labels.clone());
                continue;
            }
            if nhcb && let Some(base) = name.strip_suffix("_bucket") {
                self.histogram_names.insert(base.to_string());
            }
            let samples = floats.entry(s.labels.clone()).or_default();
            for (i, v) in s.values.iter().enumerate() {
                if let SeqValue::Value(v) = v {
                    let t = i as i64 * step_ms;
                    match samples.binary_search_by_key(&t, |x| x.0) {
                        Ok(p) => samples[p].1 = *v,
                        Err(p) => samples.insert(p, (t, *v)),
                    }
                }
            }
        }
        let batch: Vec<FetchedSeries> = floats
            .into_iter()
            .filter(|(_, s)| !s.is_empty())
            .map(|(labels, s)| FetchedSeries {
                labels,
                timestamps: s.iter().map(|x| x.0).collect(),
                values: s.iter().map(|x| x.1).collect(),
            })
            .collect();
        if batch.is_empty() {
            return;
        }
        if let Err(e) = self.store.load(rt, batch) {
            self.load_error = Some(e);
        }
    }

    /// Whether the query needs native histograms: it names a metric that holds them or uses
    /// a histogram-only function.
    fn uses_histograms(&self, q: &str) -> bool {
        q.split(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
            .any(|w| self.histogram_names.contains(w))
            || q.contains("histogram_count")
            || q.contains("histogram_sum")
            || q.contains("histogram_avg")
            || q.contains("histogram_fraction")
            || q.contains("histogram_stddev")
            || q.contains("histogram_stdvar")
            || q.contains("{{")
    }

    /// Whether a selector of the query matches a series holding native histograms (which
    /// the in-memory storage does not load): a failure of such a case may come from the
    /// missing samples, or from the warnings and infos they cause.
    fn selects_histograms(&self, q: &str) -> bool {
        struct Selectors<'a>(&'a [Labels], bool);
        impl promql_parser::util::ExprVisitor for Selectors<'_> {
            type Error = ();
            fn pre_visit(&mut self, e: &promql_parser::parser::Expr) -> Result<bool, ()> {
                use promql_parser::parser::Expr;
                let vs = match e {
                    Expr::VectorSelector(vs) => vs,
                    Expr::MatrixSelector(ms) => &ms.vs,
                    _ => return Ok(true),
                };
                let hit = self.0.iter().any(|l| {
                    vs.name.as_ref().is_none_or(|n| l.metric_name() == Some(n.as_str()))
                        && vs
                            .matchers
                            .matchers
                            .iter()
                            .all(|m| m.is_match(l.get(&m.name).unwrap_or("")))
                });
                self.1 |= hit;
                Ok(true)
            }
        }
        if self.histogram_series.is_empty() {
            return false;
        }
        let Ok(expr) = promql_parser::parser::parse(q) else {
            return false;
        };
        let mut v = Selectors(&self.histogram_series, false);
        let _ = promql_parser::util::walk_expr(&mut v, &expr);
        v.1
    }
}

/// Runs one file's commands over stores made by `new_store` (one at the start and one
/// per `clear`); returns the outcome of each eval with its line and query.
pub fn run_file<S: Store>(
    rt: &tokio::runtime::Runtime,
    cmds: &[Command],
    new_store: &mut dyn FnMut() -> S,
) -> Vec<(usize, String, Outcome)> {
    let mut db = Db::new(new_store());
    let engine = Engine::default();
    let mut out = Vec::new();
    for c in cmds {
        match c {
            Command::Clear => db = Db::new(new_store()),
            Command::Load { step_ms, nhcb, series } => db.apply_load(rt, *step_ms, *nhcb, series),
            Command::Eval(e) => {
                let outcome = run_eval(rt, &engine, &db, e);
                out.push((e.line, e.query.clone(), outcome));
            }
        }
    }
    out
}

fn check_eval<S: Store>(rt: &tokio::runtime::Runtime, engine: &Engine, db: &Db<S>, e: &Eval) -> Outcome {
    if let Some(why) = &db.load_error {
        return Outcome::Fail(format!("loading the series failed: {why}"));
    }
    if db.uses_histograms(&e.query) || e.results.iter().any(|r| r.histogram) {
        return Outcome::Skip("native histograms".into());
    }
    if e.query
        .split(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
        .any(|w| db.start_timestamp_names.contains(w))
    {
        return Outcome::Skip("start timestamps (experimental `@st` series)".into());
    }
    let parsed = promql_parser::parser::parse(&e.query);
    if let Err(msg) = &parsed
        && !e.expect.fail
    {
        return Outcome::Skip(format!("promql-parser cannot parse: {msg}"));
    }
    let q = db.store.querier();
    let res = match e.range {
        Some((s, en, st)) => rt.block_on(engine.range(q, &e.query, s, en, st)),
        None => rt.block_on(engine.instant(q, &e.query, e.at)),
    };
    let x = &e.expect;
    let out = match (res, x.fail) {
        (Err(err), true) => {
            let msg = err.to_string();
            if let Some(m) = &x.fail_msg
                && &msg != m
            {
                if parsed.is_err() {
                    return Outcome::Skip(format!("parse error message differs: {msg}"));
                }
                return Outcome::Fail(format!("error {msg:?}, expected {m:?}"));
            }
            if let Some(r) = &x.fail_regex
                && !regex::Regex::new(r).map(|re| re.is_match(&msg)).unwrap_or(false)
            {
                return Outcome::Fail(format!("error {msg:?} does not match {r:?}"));
            }
            return Outcome::Pass;
        }
        (Err(err), false) => return Outcome::Fail(format!("unexpected error: {err}")),
        (Ok(_), true) => return Outcome::Fail("expected an error".into()),
        (Ok(o), false) => o,
    };
    if let Some(w) = x.warn
        && w == out.warnings.is_empty()
    {
        return Outcome::Fail(format!("warnings {:?}, expected some: {w}", out.warnings));
    }
    if let Some(i) = x.info
        && i == out.infos.is_empty()
    {
        return Outcome::Fail(format!("infos {:?}, expected some: {i}", out.infos));
    }
    if let Err(m) = compare(e, &out) {
        return Outcome::Fail(m);
    }
    match check_as_range(rt, engine, q, e, &out) {
        Ok(()) => Outcome::Pass,
        Err(m) => Outcome::Fail(format!("range mode (t-1m to t+1m, step 1m): {m}")),
    }
}

/// Runs a passing instant eval again as a range query from t-1m to t+1m with a 1m step and
/// compares the samples at t with the expected result, as Prometheus' `runInstantQuery`
/// does. Not for evals that expect a failure, a string or a range vector, nor for queries
/// calling `start()`, `end()`, `range()` or `step()` (their value depends on the query
/// range). Ordered evals only need to run without error: range results are sorted by
/// labels. Warnings and infos are not checked in range mode.
fn check_as_range(
    rt: &tokio::runtime::Runtime,
    engine: &Engine,
    q: &dyn Querier,
    e: &Eval,
    instant: &QueryOutput,
) -> Result<(), String> {
    if e.range.is_some() || e.expect.fail || e.expect.range_vector.is_some() || e.expect.string.is_some() {
        return Ok(());
    }
    let context_fn = regex::Regex::new(r"(start|end|range|step)\(\)").map_err(|e| e.to_string())?;
    if context_fn.is_match(&e.query) {
        return Ok(());
    }
    const MINUTE_MS: i64 = 60_000;
    let out = rt
        .block_on(engine.range(q, &e.query, e.at - MINUTE_MS, e.at + MINUTE_MS, MINUTE_MS))
        .map_err(|err| format!("error: {err}"))?;
    if e.expect.ordered {
        return Ok(());
    }
    let Value::Matrix(m) = out.value else {
        return Err(format!("a range query returned {:?}, not a matrix", out.value));
    };
    if let Some(w) = m.windows(2).find(|w| w[0].labels > w[1].labels) {
        return Err(format!(
            "matrix not sorted by labels: {} before {}",
            w[0].labels, w[1].labels
        ));
    }
    let at_t: Vec<InstantSample> = m
        .iter()
        .filter_map(|s| {
            let &(t_ms, v) = s.samples.iter().find(|p| p.0 == e.at)?;
            Some(InstantSample {
                labels: s.labels.clone(),
                t_ms,
                v,
            })
        })
        .collect();
    let value = match instant.value {
        Value::Scalar { .. } => {
            let Some(first) = at_t.first() else {
                return Err("no sample at t for a scalar result".into());
            };
            Value::Scalar { t_ms: e.at, v: first.v }
        }
        _ => Value::Vector(at_t),
    };
    compare(
        e,
        &QueryOutput {
            value,
            warnings: Vec::new(),
            infos: Vec::new(),
        },
    )
}

/// Runs one eval; a failing case whose selectors match native histogram series counts as
/// skipped (its answer depends on samples the engine does not support).
fn run_eval<S: Store>(rt: &tokio::runtime::Runtime, engine: &Engine, db: &Db<S>, e: &Eval) -> Outcome {
    match check_eval(rt, engine, db, e) {
        Outcome::Fail(why) if db.selects_histograms(&e.query) => Outcome::Skip(format!(
            "native histograms (a selector matches histogram series): {why}"
        )),
        other => other,
    }
}
