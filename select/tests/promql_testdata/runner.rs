//! Runs parsed test commands against [`Engine`] over an in-memory querier and compares the
//! results as Prometheus' test engine does (`promqltest/test.go`): same label sets, values
//! equal within a relative epsilon of 1e-6 (NaN equals NaN), order only when asked.

use std::collections::{BTreeMap, HashSet};

use cairn_common::Labels;
use cairn_select::promql::{Engine, FetchedSeries, MemoryQuerier, QueryOutput, Value};

use super::format::{Command, Eval, SeqValue, SeriesLine};

/// Outcome of one eval.
pub enum Outcome {
    Pass,
    Fail(String),
    Skip(String),
}

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

const EPS: f64 = 1e-6;

/// The storage of one test file.
#[derive(Default)]
pub struct Db {
    series: BTreeMap<Labels, Vec<(i64, f64)>>,
    histogram_names: HashSet<String>,
    /// Label sets of the series that hold native histogram samples (not loaded).
    histogram_series: Vec<Labels>,
    /// Metrics given start timestamps (`@st` lines, not loaded).
    start_timestamp_names: HashSet<String>,
}

impl Db {
    pub fn apply_load(&mut self, step_ms: i64, nhcb: bool, series: &[SeriesLine]) {
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
            let samples = self.series.entry(s.labels.clone()).or_default();
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
    }

    fn querier(&self) -> MemoryQuerier {
        MemoryQuerier::new(
            self.series
                .iter()
                .map(|(l, s)| FetchedSeries {
                    labels: l.clone(),
                    timestamps: s.iter().map(|x| x.0).collect(),
                    values: s.iter().map(|x| x.1).collect(),
                })
                .collect(),
        )
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

/// Runs one file's commands; returns the outcome of each eval with its line.
pub fn run_file(rt: &tokio::runtime::Runtime, cmds: &[Command]) -> Vec<(usize, String, Outcome)> {
    let mut db = Db::default();
    let engine = Engine::default();
    let mut out = Vec::new();
    for c in cmds {
        match c {
            Command::Clear => db = Db::default(),
            Command::Load { step_ms, nhcb, series } => db.apply_load(*step_ms, *nhcb, series),
            Command::Eval(e) => {
                let outcome = run_eval(rt, &engine, &db, e);
                out.push((e.line, e.query.clone(), outcome));
            }
        }
    }
    out
}

fn check_eval(rt: &tokio::runtime::Runtime, engine: &Engine, db: &Db, e: &Eval) -> Outcome {
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
    let q = db.querier();
    let res = match e.range {
        Some((s, en, st)) => rt.block_on(engine.range(&q, &e.query, s, en, st)),
        None => rt.block_on(engine.instant(&q, &e.query, e.at)),
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
    match compare(e, &out) {
        Ok(()) => Outcome::Pass,
        Err(m) => Outcome::Fail(m),
    }
}

/// Runs one eval; a failing case whose selectors match native histogram series counts as
/// skipped (its answer depends on samples the engine does not support).
fn run_eval(rt: &tokio::runtime::Runtime, engine: &Engine, db: &Db, e: &Eval) -> Outcome {
    match check_eval(rt, engine, db, e) {
        Outcome::Fail(why) if db.selects_histograms(&e.query) => Outcome::Skip(format!(
            "native histograms (a selector matches histogram series): {why}"
        )),
        other => other,
    }
}

fn fmt_series(l: &Labels, v: &[(i64, f64)]) -> String {
    format!("{l} {v:?}")
}

fn compare(e: &Eval, out: &QueryOutput) -> Result<(), String> {
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
        Value::String { v, .. } => match &x_string(e) {
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

fn x_string(e: &Eval) -> Option<String> {
    e.expect.string.clone()
}
