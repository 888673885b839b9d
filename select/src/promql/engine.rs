//! The query engine: parses a query, fetches each selector's series once for the whole
//! query range, evaluates the expression at the query time or at every step, and shapes
//! the result as Prometheus' `query` and `query_range` do.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cairn_common::Labels;
use promql_parser::parser::Expr;
use promql_parser::parser::value::ValueType;

use super::error::QueryError;
use super::eval::{Evaluator, drop_name, dur_ms, offset_ms, time_ms};
use super::querier::Querier;
use super::selector::{Store, StoredSeries, selector_key, to_matchers};
use super::value::{InstantSample, QueryOutput, RangeSeries, Val, Value};

/// Engine limits and defaults.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// How far back an instant selector looks for a sample, ms (Prometheus default 5m).
    pub lookback_delta_ms: i64,
    /// Most samples one evaluation step may select; 0 means unlimited. Past it the query
    /// fails with [`QueryError::TooManySamples`].
    pub max_samples: usize,
    /// Wall-clock limit of one query; past it [`QueryError::Timeout`].
    pub timeout: Duration,
}

impl Default for EngineOptions {
    /// 5m lookback, no sample limit, 2 minutes timeout (Prometheus' defaults).
    fn default() -> Self {
        EngineOptions {
            lookback_delta_ms: 300_000,
            max_samples: 0,
            timeout: Duration::from_secs(120),
        }
    }
}

/// Step of a subquery written without one (`[5m:]`): Prometheus uses the global evaluation
/// interval, 1 minute by default.
const DEFAULT_SUBQUERY_STEP_MS: i64 = 60_000;

/// Evaluates PromQL queries with Prometheus 3 semantics over a [`Querier`].
#[derive(Debug, Clone, Default)]
pub struct Engine {
    opts: EngineOptions,
}

impl Engine {
    /// An engine with the given options.
    pub fn new(opts: EngineOptions) -> Self {
        Engine { opts }
    }

    /// Instant query at `time_ms` (ms since the epoch). Errors: [`QueryError::Parse`] for bad
    /// syntax, [`QueryError::Execution`] where Prometheus fails evaluation, storage errors
    /// from the querier, timeouts and sample limits.
    pub async fn instant(&self, q: &dyn Querier, query: &str, time_ms: i64) -> Result<QueryOutput, QueryError> {
        let expr = parse(query)?;
        let started = Instant::now();
        let (store, mut warnings) = self.fetch(q, &expr, time_ms, time_ms).await?;
        let mut ev = self.evaluator(&store, time_ms, time_ms, 0);
        let val = ev.eval(&expr, time_ms)?;
        self.check_timeout(started)?;
        let value = match val {
            Val::Scalar(v) => Value::Scalar { t_ms: time_ms, v },
            Val::Str(v) => Value::String { t_ms: time_ms, v },
            Val::Vector(v) => {
                let out: Vec<InstantSample> = v
                    .into_iter()
                    .map(|s| InstantSample {
                        labels: output_labels(s.labels, s.drop),
                        t_ms: time_ms,
                        v: s.v,
                    })
                    .collect();
                ensure_unique(out.iter().map(|s| &s.labels))?;
                Value::Vector(out)
            }
            Val::Matrix(m) => {
                let out: Vec<RangeSeries> = m
                    .into_iter()
                    .map(|s| RangeSeries {
                        labels: output_labels(s.labels, s.drop),
                        samples: s.points.to_vec(),
                    })
                    .collect();
                ensure_unique(out.iter().map(|s| &s.labels))?;
                Value::Matrix(out)
            }
        };
        warnings.append(&mut ev.warnings);
        Ok(QueryOutput {
            value,
            warnings,
            infos: ev.infos,
        })
    }

    /// Range query: the expression at `start_ms`, `start_ms + step_ms`, … `<= end_ms` (ms).
    /// The result is a matrix sorted by labels; a scalar expression gives one series with no
    /// labels. Errors: as [`Engine::instant`], plus [`QueryError::BadData`] for `step_ms <= 0`
    /// or `end_ms < start_ms`, and [`QueryError::Execution`] for a range-vector expression.
    pub async fn range(
        &self,
        q: &dyn Querier,
        query: &str,
        start_ms: i64,
        end_ms: i64,
        step_ms: i64,
    ) -> Result<QueryOutput, QueryError> {
        if step_ms <= 0 {
            return Err(QueryError::BadData(
                "zero or negative query resolution step widths are not accepted. Try a positive integer".into(),
            ));
        }
        if end_ms < start_ms {
            return Err(QueryError::BadData(
                "end timestamp must not be before start time".into(),
            ));
        }
        let expr = parse(query)?;
        match expr.value_type() {
            ValueType::Scalar | ValueType::Vector => {}
            other => {
                return Err(QueryError::BadData(format!(
                    "invalid expression type \"{}\" for range query, must be Scalar or instant Vector",
                    type_display(other)
                )));
            }
        }
        let started = Instant::now();
        let (store, mut warnings) = self.fetch(q, &expr, start_ms, end_ms).await?;
        let mut ev = self.evaluator(&store, start_ms, end_ms, step_ms);
        // Output series by their labels as they leave the query, and, per step sample
        // labels (by address: the evaluator shares one `Arc` per series across steps) and
        // name dropping, the output series they go to. Each `Arc` is kept alive in the map,
        // so an address is never reused while the map holds it.
        let mut out: Vec<(Labels, Vec<(i64, f64)>)> = Vec::new();
        let mut by_labels: HashMap<Labels, usize> = HashMap::new();
        let mut by_ptr: HashMap<(*const Labels, bool), (Arc<Labels>, usize)> = HashMap::new();
        let mut total = 0usize;
        let mut t = start_ms;
        while t <= end_ms {
            ev.samples_in_step = 0;
            match ev.eval(&expr, t)? {
                Val::Scalar(v) => {
                    let i = output_index(&mut out, &mut by_labels, Labels::default());
                    out[i].1.push((t, v));
                }
                Val::Vector(vec) => {
                    total += vec.len();
                    // Names are dropped per step; series equal after it merge across
                    // steps, but must not collide within one step.
                    for s in vec {
                        let key = (Arc::as_ptr(&s.labels), s.drop);
                        let i = match by_ptr.get(&key) {
                            Some((_, i)) => *i,
                            None => {
                                let labels = output_labels(Arc::clone(&s.labels), s.drop);
                                let i = output_index(&mut out, &mut by_labels, labels);
                                by_ptr.insert(key, (s.labels, i));
                                i
                            }
                        };
                        let points = &mut out[i].1;
                        if points.last().is_some_and(|p| p.0 == t) {
                            return Err(QueryError::Execution(
                                "vector cannot contain metrics with the same labelset".into(),
                            ));
                        }
                        points.push((t, s.v));
                    }
                }
                other => {
                    return Err(QueryError::Execution(format!(
                        "invalid expression type {} for range query",
                        other.type_name()
                    )));
                }
            }
            if self.opts.max_samples > 0 && total > self.opts.max_samples {
                return Err(QueryError::TooManySamples(
                    "query processing would load too many samples into memory in query execution".into(),
                ));
            }
            // Labels made at one step only (not shared across steps) would otherwise pile
            // up; the output index is still found by value through `by_labels`.
            if by_ptr.len() > 4 * by_labels.len() + 1024 {
                by_ptr.clear();
            }
            self.check_timeout(started)?;
            t += step_ms;
        }
        warnings.append(&mut ev.warnings);
        let mut series: Vec<RangeSeries> = out
            .into_iter()
            .map(|(labels, samples)| RangeSeries { labels, samples })
            .collect();
        series.sort_unstable_by(|a, b| a.labels.cmp(&b.labels));
        Ok(QueryOutput {
            value: Value::Matrix(series),
            warnings,
            infos: ev.infos,
        })
    }

    fn evaluator<'a>(&self, store: &'a Store, start: i64, end: i64, step: i64) -> Evaluator<'a> {
        Evaluator {
            store,
            start,
            end,
            step,
            is_range: step > 0,
            lookback: self.opts.lookback_delta_ms,
            default_subquery_step: DEFAULT_SUBQUERY_STEP_MS,
            max_samples: self.opts.max_samples,
            samples_in_step: 0,
            warnings: Vec::new(),
            infos: Vec::new(),
            not_counters_reported: HashSet::new(),
            subquery_cache: HashMap::new(),
            group_keys: HashMap::new(),
            rollups: HashMap::new(),
        }
    }

    fn check_timeout(&self, started: Instant) -> Result<(), QueryError> {
        if started.elapsed() > self.opts.timeout {
            return Err(QueryError::Timeout("query timed out in query execution".into()));
        }
        Ok(())
    }

    /// Fetches every selector's series once, over the union of the ranges it is read at.
    async fn fetch(
        &self,
        q: &dyn Querier,
        expr: &Expr,
        start: i64,
        end: i64,
    ) -> Result<(Store, Vec<String>), QueryError> {
        let mut ranges: HashMap<String, (Vec<cairn_common::Matcher>, i64, i64)> = HashMap::new();
        collect_ranges(expr, start, end, start, end, self.opts.lookback_delta_ms, &mut ranges)?;
        let mut store = Store::default();
        let mut warnings = Vec::new();
        let deadline = self.opts.timeout;
        for (key, (matchers, lo, hi)) in ranges {
            let fetched = tokio::time::timeout(deadline, q.select(&matchers, lo, hi))
                .await
                .map_err(|_| QueryError::Timeout("query timed out in series fetch".into()))??;
            warnings.extend(fetched.warnings);
            let mut series: Vec<StoredSeries> = fetched
                .series
                .into_iter()
                .map(|s| StoredSeries::new(s.labels, s.timestamps, s.values))
                .collect();
            // Prometheus' series sets come sorted by labels; `limitk` and ties rely on it.
            series.sort_by(|a, b| a.labels.cmp(&b.labels));
            // Functions over ranges rely on a selector's series having distinct labels.
            if series.windows(2).any(|w| w[0].labels == w[1].labels) {
                return Err(QueryError::Execution(
                    "vector cannot contain metrics with the same labelset".into(),
                ));
            }
            store.by_selector.insert(key, series);
        }
        Ok((store, warnings))
    }
}

/// Errors when two output series have the same labels (after dropping metric names).
fn ensure_unique<'a>(labels: impl Iterator<Item = &'a Labels>) -> Result<(), QueryError> {
    let mut seen = std::collections::HashSet::new();
    for l in labels {
        if !seen.insert(l) {
            return Err(QueryError::Execution(
                "vector cannot contain metrics with the same labelset".into(),
            ));
        }
    }
    Ok(())
}

/// A result series' labels: shared labels taken out of their `Arc` (copied only when still
/// shared), without the metric name when an operation dropped it.
fn output_labels(labels: Arc<Labels>, drop: bool) -> Labels {
    let labels = Arc::unwrap_or_clone(labels);
    if drop { drop_name(labels) } else { labels }
}

/// The index in `out` of the output series with `labels`, adding an empty one if new.
fn output_index(
    out: &mut Vec<(Labels, Vec<(i64, f64)>)>,
    by_labels: &mut HashMap<Labels, usize>,
    labels: Labels,
) -> usize {
    if let Some(&i) = by_labels.get(&labels) {
        return i;
    }
    by_labels.insert(labels.clone(), out.len());
    out.push((labels, Vec::new()));
    out.len() - 1
}

fn type_display(t: ValueType) -> &'static str {
    match t {
        ValueType::Vector => "instant vector",
        ValueType::Scalar => "scalar",
        ValueType::Matrix => "range vector",
        ValueType::String => "string",
    }
}

/// Parses a query. Errors: [`QueryError::Parse`] with the parser's message.
pub(crate) fn parse(query: &str) -> Result<Expr, QueryError> {
    super::parsed::parse(query).map_err(QueryError::Parse)
}

type Ranges = HashMap<String, (Vec<cairn_common::Matcher>, i64, i64)>;

/// Walks the expression and records, per selector, the time range `[lo, hi]` (ms) it reads
/// when the enclosing expression is evaluated over `[start, end]`.
fn collect_ranges(
    e: &Expr,
    start: i64,
    end: i64,
    qs: i64,
    qe: i64,
    lookback: i64,
    out: &mut Ranges,
) -> Result<(), QueryError> {
    use promql_parser::parser::AtModifier;
    let at_time = |at: &Option<AtModifier>| match at {
        None => None,
        Some(AtModifier::Start) => Some(qs),
        Some(AtModifier::End) => Some(qe),
        Some(AtModifier::At(t)) => Some(time_ms(t)),
    };
    let mut record = |vs: &promql_parser::parser::VectorSelector, range: i64| -> Result<(), QueryError> {
        let (s, e) = match at_time(&vs.at) {
            Some(t) => (t, t),
            None => (start, end),
        };
        let off = offset_ms(&vs.offset);
        let (lo, hi) = (s - off - range, e - off);
        let matchers = to_matchers(vs)?;
        let key = selector_key(&matchers);
        let entry = out.entry(key).or_insert((matchers, lo, hi));
        entry.1 = entry.1.min(lo);
        entry.2 = entry.2.max(hi);
        Ok(())
    };
    match e {
        Expr::VectorSelector(vs) => record(vs, lookback),
        Expr::MatrixSelector(ms) => record(&ms.vs, dur_ms(&ms.range)),
        Expr::Subquery(sq) => {
            let (s, e2) = match at_time(&sq.at) {
                Some(t) => (t, t),
                None => (start, end),
            };
            let off = offset_ms(&sq.offset);
            collect_ranges(&sq.expr, s - off - dur_ms(&sq.range), e2 - off, qs, qe, lookback, out)
        }
        Expr::Paren(p) => collect_ranges(&p.expr, start, end, qs, qe, lookback, out),
        Expr::Unary(u) => collect_ranges(&u.expr, start, end, qs, qe, lookback, out),
        Expr::Binary(b) => {
            collect_ranges(&b.lhs, start, end, qs, qe, lookback, out)?;
            collect_ranges(&b.rhs, start, end, qs, qe, lookback, out)
        }
        Expr::Aggregate(a) => {
            if let Some(p) = &a.param {
                collect_ranges(p, start, end, qs, qe, lookback, out)?;
            }
            collect_ranges(&a.expr, start, end, qs, qe, lookback, out)
        }
        Expr::Call(c) if c.func.name == "info" => {
            // The info series are read at the times the first argument's selectors read.
            let mut inner = Ranges::new();
            if let Some(a) = c.args.args.first() {
                collect_ranges(a, start, end, qs, qe, lookback, &mut inner)?;
            }
            let lo = inner.values().map(|r| r.1).min();
            let hi = inner.values().map(|r| r.2).max();
            for (k, (m, l, h)) in inner {
                let entry = out.entry(k).or_insert((m, l, h));
                entry.1 = entry.1.min(l);
                entry.2 = entry.2.max(h);
            }
            if let (Some(lo), Some(hi)) = (lo, hi) {
                let matchers = super::functions::info_matchers(c.args.args.get(1).map(|b| b.as_ref()))?;
                let key = selector_key(&matchers);
                let entry = out.entry(key).or_insert((matchers, lo - lookback, hi));
                entry.1 = entry.1.min(lo - lookback);
                entry.2 = entry.2.max(hi);
            }
            Ok(())
        }
        Expr::Call(c) => {
            for a in &c.args.args {
                collect_ranges(a, start, end, qs, qe, lookback, out)?;
            }
            Ok(())
        }
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => Ok(()),
    }
}
