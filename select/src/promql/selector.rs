//! Selecting samples from fetched series: instant selection with the lookback delta and
//! staleness markers, and range selection over the left-open window `(t - range, t]`
//! (Prometheus 3 semantics, `promql/engine.go`).

use std::cell::Cell;
use std::collections::HashMap;
use std::sync::Arc;

use cairn_common::{Labels, MatchOp, Matcher};
use promql_parser::label::MatchOp as ParserOp;
use promql_parser::parser::VectorSelector;

use super::error::QueryError;
use super::value::{Columns, Points, Sample, Series};

/// The samples of one series held for the whole query (timestamps ascending, ms).
#[derive(Debug, Clone)]
pub(crate) struct StoredSeries {
    /// Shared by every sample selected from the series.
    pub labels: Arc<Labels>,
    /// Timestamps (ms, ascending) and values of the samples without staleness markers,
    /// as two parallel columns: range selections are windows of them. Usually the
    /// fetched columns themselves, moved here without a copy.
    pub cols: Arc<Columns>,
    /// Timestamps of the staleness markers, ascending, ms (usually none).
    pub stale: Vec<i64>,
    /// Whether the metric name is present and lacks a counter suffix (see
    /// [`not_counter_name`]), worked out once for the whole query.
    pub not_counter: bool,
    /// Where the last searches of `ts` ended (instant selection; range start and end):
    /// the next search of a range query's next step starts there, so stepping
    /// through a series reads memory in order instead of binary-searching it from scratch
    /// at every step.
    pub hints: [Cell<usize>; 3],
}

/// The number of leading indexes `i` in `lo..hi` with `le(i)` true (`le` true then false).
fn partition(mut lo: usize, mut hi: usize, le: impl Fn(usize) -> bool) -> usize {
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if le(mid) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    lo
}

/// Samples read one by one from a search hint before searching exponentially.
const LINEAR_PROBE: usize = 16;

/// The number of timestamps `<= t` among `len` ascending ones read by `at`, searching
/// forward from `hint` (an exponential search) when `t` is not before it, else over all of
/// them. Stores the answer in `hint`.
fn count_le_from(len: usize, at: impl Fn(usize) -> i64, t: i64, hint: &Cell<usize>) -> usize {
    let start = hint.get().min(len);
    let idx = if start == 0 || at(start - 1) <= t {
        // A range query's next step usually moves a few samples on: read them in order
        // first, then search exponentially.
        let near = (start + LINEAR_PROBE).min(len);
        let mut i = start;
        while i < near && at(i) <= t {
            i += 1;
        }
        if i < near || i == len {
            hint.set(i);
            return i;
        }
        // Every index below `lo` is <= t; `hi` is past the end or > t.
        let (mut lo, mut hi, mut step) = (i, i, 1usize);
        while hi < len && at(hi) <= t {
            lo = hi + 1;
            hi = hi.saturating_add(step);
            step = step.saturating_mul(2);
        }
        partition(lo, hi.min(len), |i| at(i) <= t)
    } else {
        partition(0, len, |i| at(i) <= t)
    };
    hint.set(idx);
    idx
}

impl StoredSeries {
    /// A series with its samples (timestamps ascending, ms).
    pub fn new(labels: Labels, ts: Vec<i64>, vs: Vec<f64>) -> Self {
        let mut stale = Vec::new();
        let (ts, vs) = if cairn_common::scan::any_stale(&vs) {
            let mut fresh_ts = Vec::with_capacity(ts.len());
            let mut fresh_vs = Vec::with_capacity(vs.len());
            for (&t, &v) in ts.iter().zip(&vs) {
                if cairn_common::is_stale_nan(v) {
                    stale.push(t);
                } else {
                    fresh_ts.push(t);
                    fresh_vs.push(v);
                }
            }
            (fresh_ts, fresh_vs)
        } else {
            // No markers (the usual case): the fetched columns are kept as they are.
            (ts, vs)
        };
        StoredSeries {
            not_counter: not_counter_name(&labels),
            labels: Arc::new(labels),
            cols: Arc::new(Columns::new(ts, vs)),
            stale,
            hints: [Cell::new(0), Cell::new(0), Cell::new(0)],
        }
    }

    /// The number of samples (without staleness markers) with timestamp `<= t`, searching
    /// forward from hint `h`.
    fn count_le(&self, t: i64, h: usize) -> usize {
        count_le_from(self.cols.ts().len(), |i| self.cols.ts()[i], t, &self.hints[h])
    }

    /// The timestamp of the latest staleness marker at or before `t`, ms.
    fn stale_at_or_before(&self, t: i64) -> Option<i64> {
        let n = self.stale.partition_point(|&x| x <= t);
        n.checked_sub(1).map(|i| self.stale[i])
    }
}

/// Every selector's series, fetched once per query, keyed by [`selector_key`].
#[derive(Debug, Default)]
pub(crate) struct Store {
    pub by_selector: HashMap<String, Vec<StoredSeries>>,
}

/// The key under which a selector's series are stored: its matchers, in a canonical form.
pub(crate) fn selector_key(matchers: &[Matcher]) -> String {
    key_of(matchers.iter().map(|m| (m.name.as_str(), m.op, m.value.as_str())))
}

/// [`selector_key`] of the matchers [`to_matchers`] makes of `vs`, without making them:
/// the evaluator looks a selector's series up at every step of a range query, and making
/// the matchers compiles their regexes.
pub(crate) fn selector_key_of(vs: &VectorSelector) -> String {
    key_of(matcher_parts(vs))
}

/// The `(name, op, value)` of each matcher of `vs`, the metric name first as a
/// `__name__` matcher unless the braces hold one.
fn matcher_parts(vs: &VectorSelector) -> impl Iterator<Item = (&str, MatchOp, &str)> {
    let has_name = vs.matchers.matchers.iter().any(|m| m.name == cairn_common::METRIC_NAME);
    let name = match (&vs.name, has_name) {
        (Some(name), false) => Some((cairn_common::METRIC_NAME, MatchOp::Equal, name.as_str())),
        _ => None,
    };
    name.into_iter().chain(
        vs.matchers
            .matchers
            .iter()
            .map(|m| (m.name.as_str(), match_op(&m.op), m.value.as_str())),
    )
}

/// The canonical form of `(name, op, value)` matchers: sorted, comma-joined.
fn key_of<'m>(matchers: impl Iterator<Item = (&'m str, MatchOp, &'m str)>) -> String {
    let mut parts: Vec<String> = matchers
        .map(|(name, op, value)| format!("{name}{op:?}{value:?}"))
        .collect();
    parts.sort();
    parts.join(",")
}

/// The `cairn_common` operator of a parsed matcher.
fn match_op(op: &ParserOp) -> MatchOp {
    match op {
        ParserOp::Equal => MatchOp::Equal,
        ParserOp::NotEqual => MatchOp::NotEqual,
        ParserOp::Re(_) => MatchOp::Regex,
        ParserOp::NotRe(_) => MatchOp::NotRegex,
    }
}

/// The selector's matchers as `cairn_common` matchers (the metric name becomes a
/// `__name__` matcher). Errors: a bad regex; `or` inside braces, which Prometheus lacks.
pub(crate) fn to_matchers(vs: &VectorSelector) -> Result<Vec<Matcher>, QueryError> {
    if !vs.matchers.or_matchers.is_empty() {
        return Err(QueryError::Parse("'or' in label matchers is not supported".to_string()));
    }
    matcher_parts(vs)
        .map(|(name, op, value)| Matcher::new(op, name, value).map_err(|e| QueryError::Parse(e.to_string())))
        .collect()
}

/// The instant vector at `t` (ms): per series, the latest sample in `(t - lookback, t]`,
/// unless that sample is a staleness marker.
pub(crate) fn select_instant(series: &[StoredSeries], t: i64, lookback: i64) -> Vec<Sample> {
    let mut out = Vec::new();
    for s in series {
        let idx = s.count_le(t, 0);
        if idx == 0 {
            continue;
        }
        let (ts, v) = (s.cols.ts()[idx - 1], s.cols.vs()[idx - 1]);
        // A staleness marker after the latest sample ends the series there.
        if ts <= t - lookback || s.stale_at_or_before(t).is_some_and(|m| m > ts) {
            continue;
        }
        out.push(Sample {
            labels: Arc::clone(&s.labels),
            t: ts,
            v,
            drop: false,
        });
    }
    out
}

/// The range vector at `t` (ms): per series, the samples in `(t - range, t]` without
/// staleness markers; series with no sample there are left out.
pub(crate) fn select_range(series: &[StoredSeries], t: i64, range: i64) -> Vec<Series> {
    let mut out = Vec::with_capacity(series.len());
    for s in series {
        let lo = s.count_le(t - range, 1);
        let hi = s.count_le(t, 2);
        if lo < hi {
            out.push(Series {
                labels: Arc::clone(&s.labels),
                points: Points::window(&s.cols, lo, hi),
                drop: false,
                not_counter: Some(s.not_counter),
            });
        }
    }
    out
}

/// Whether `labels` have a metric name that lacks a counter suffix (`_total`, `_sum`,
/// `_count`, `_bucket`): `rate`, `increase` and `irate` over it give Prometheus' info
/// "metric might not be a counter".
pub(crate) fn not_counter_name(labels: &Labels) -> bool {
    labels.metric_name().is_some_and(|metric| {
        !["_total", "_sum", "_count", "_bucket"]
            .iter()
            .any(|suf| metric.ends_with(suf))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(ts: &[i64], vs: &[f64]) -> Vec<StoredSeries> {
        vec![StoredSeries::new(
            Labels::from_pairs([("__name__", "m")]),
            ts.to_vec(),
            vs.to_vec(),
        )]
    }

    #[test]
    fn the_evaluator_finds_series_under_the_key_they_were_fetched_under() {
        for q in [
            "up",
            r#"up{job="a", instance!="b"}"#,
            r#"{__name__=~"process_.*|go_gc_.*", job=~"node|prom"}"#,
            r#"{__name__="http_requests_total", code!~"5.."}"#,
            r#"{job="a"}"#,
        ] {
            let Ok(promql_parser::parser::Expr::VectorSelector(vs)) = promql_parser::parser::parse(q) else {
                panic!("{q} is a vector selector");
            };
            let fetched = selector_key(&to_matchers(&vs).expect("valid matchers"));
            assert_eq!(selector_key_of(&vs), fetched, "{q}");
        }
        let key = |q: &str| match promql_parser::parser::parse(q) {
            Ok(promql_parser::parser::Expr::VectorSelector(vs)) => selector_key_of(&vs),
            other => panic!("{q}: {other:?}"),
        };
        assert_ne!(key(r#"up{job="a"}"#), key(r#"up{job=~"a"}"#));
        assert_eq!(key(r#"up{job="a", env="b"}"#), key(r#"up{env="b", job="a"}"#));
    }

    #[test]
    fn lookback_window_is_left_open() {
        let s = series(&[0, 10_000], &[1.0, 2.0]);
        assert_eq!(select_instant(&s, 309_999, 300_000)[0].v, 2.0);
        // At exactly t - lookback the sample is out (Prometheus 3).
        assert!(select_instant(&s, 310_000, 300_000).is_empty());
        assert!(select_instant(&s, -1, 300_000).is_empty());
    }

    #[test]
    fn searches_from_the_hint_agree_with_binary_search() {
        let ts: Vec<i64> = (0..1_000).map(|i| i * 7).collect();
        let s = StoredSeries::new(Labels::default(), ts.clone(), vec![0.0; ts.len()]);
        // Forward steps, backward jumps and out-of-range times, in one sequence.
        for t in [-5, 0, 6, 7, 700, 701, 3_000, 2_000, 6_993, 7_000, 100, 99_999, 3] {
            assert_eq!(s.count_le(t, 0), ts.partition_point(|&x| x <= t), "t = {t}");
        }
    }

    #[test]
    fn range_windows_skip_markers_whichever_way_the_time_moves() {
        let stale = f64::from_bits(cairn_common::STALE_NAN_BITS);
        let ts: Vec<i64> = (0..200).map(|i| i * 1_000).collect();
        let vs: Vec<f64> = (0..200).map(|i| if i % 7 == 3 { stale } else { i as f64 }).collect();
        let s = vec![StoredSeries::new(Labels::default(), ts.clone(), vs.clone())];
        // Forward steps, a backward jump and windows past either end, in one sequence.
        for t in [5_000, 20_000, 35_000, 150_000, 10_000, 199_000, 400_000, -1_000] {
            let want: Vec<(i64, f64)> = ts
                .iter()
                .zip(&vs)
                .filter(|&(&x, &v)| x > t - 30_000 && x <= t && !cairn_common::is_stale_nan(v))
                .map(|(&x, &v)| (x, v))
                .collect();
            let got: Vec<(i64, f64)> = select_range(&s, t, 30_000)
                .first()
                .map(|r| r.points.to_vec())
                .unwrap_or_default();
            assert_eq!(got, want, "t = {t}");
        }
    }

    #[test]
    fn staleness_marker_ends_the_series() {
        let stale = f64::from_bits(cairn_common::STALE_NAN_BITS);
        let s = series(&[0, 10_000, 20_000, 30_000], &[0.0, 1.0, stale, 2.0]);
        assert_eq!(select_instant(&s, 10_000, 300_000)[0].v, 1.0);
        assert!(select_instant(&s, 25_000, 300_000).is_empty());
        assert_eq!(select_instant(&s, 30_000, 300_000)[0].v, 2.0);
        // Range selection drops the marker but keeps the rest.
        let r = select_range(&s, 30_000, 60_000);
        assert_eq!(r[0].points.to_vec(), vec![(0, 0.0), (10_000, 1.0), (30_000, 2.0)]);
        // (t - range, t]: the sample at 0 is out for t = 10s, range = 10s.
        assert_eq!(select_range(&s, 10_000, 10_000)[0].points.to_vec(), vec![(10_000, 1.0)]);
    }
}
