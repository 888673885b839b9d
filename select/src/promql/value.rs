//! Query results as the Prometheus HTTP API returns them (`resultType` scalar, string,
//! vector or matrix), and the values the evaluator passes between nodes.

use std::sync::{Arc, OnceLock};

use cairn_common::Labels;

/// The outcome of a query: its value plus the warnings and infos Prometheus would return
/// as annotations (each a human message, e.g. `PromQL info: metric might not be a counter…`).
#[derive(Debug, Clone, PartialEq)]
pub struct QueryOutput {
    /// The result.
    pub value: Value,
    /// Warnings (results may be wrong or partial).
    pub warnings: Vec<String>,
    /// Infos (hints that the query may not do what was meant).
    pub infos: Vec<String>,
}

/// A query result. Times are milliseconds since the epoch.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A scalar at evaluation time `t_ms`.
    Scalar {
        /// Evaluation time, ms.
        t_ms: i64,
        /// The value.
        v: f64,
    },
    /// A string at evaluation time `t_ms`.
    String {
        /// Evaluation time, ms.
        t_ms: i64,
        /// The value.
        v: String,
    },
    /// An instant vector (instant query result).
    Vector(Vec<InstantSample>),
    /// A range vector: a range query's result, sorted by labels, or an instant query of a
    /// range selector or subquery.
    Matrix(Vec<RangeSeries>),
}

/// One element of an instant vector.
#[derive(Debug, Clone, PartialEq)]
pub struct InstantSample {
    /// The series' labels (without `__name__` when an operation dropped it).
    pub labels: Labels,
    /// Evaluation time, ms.
    pub t_ms: i64,
    /// The value.
    pub v: f64,
}

/// One series of a range vector: samples ascending by time.
#[derive(Debug, Clone, PartialEq)]
pub struct RangeSeries {
    /// The series' labels.
    pub labels: Labels,
    /// `(t_ms, v)` pairs, ascending by `t_ms`.
    pub samples: Vec<(i64, f64)>,
}

/// One element of an instant vector inside the evaluator.
#[derive(Debug, Clone)]
pub(crate) struct Sample {
    /// Shared with the stored series (or the group) it comes from: steps pass the same
    /// labels along without copying them; the engine materialises them once per output
    /// series.
    pub labels: Arc<Labels>,
    /// The timestamp of the underlying raw sample (for `timestamp()`), ms.
    pub t: i64,
    pub v: f64,
    /// The metric name is to be dropped when the query ends (Prometheus' delayed name
    /// removal: label functions can still read or keep `__name__` until then).
    pub drop: bool,
}

/// One series of a range vector inside the evaluator.
#[derive(Debug, Clone)]
pub(crate) struct Series {
    /// As [`Sample::labels`].
    pub labels: Arc<Labels>,
    pub points: Points,
    /// As [`Sample::drop`].
    pub drop: bool,
    /// Whether the metric name is present and lacks a counter suffix (`_total`, `_sum`,
    /// `_count`, `_bucket`), when known in advance (selected series work it out once per
    /// query); `None`: read it from the labels.
    pub not_counter: Option<bool>,
}

/// The samples of one series as two parallel columns: timestamps (ms, ascending) and
/// values, plus an index of its counter resets built on first use.
#[derive(Debug, Default)]
pub(crate) struct Columns {
    ts: Vec<i64>,
    vs: Vec<f64>,
    /// Positions `i` with `vs[i] < vs[i - 1]`, ascending (usually none).
    resets: OnceLock<Vec<u32>>,
}

impl Columns {
    /// Columns of `ts` and `vs`, cut to the shorter of the two.
    pub fn new(mut ts: Vec<i64>, mut vs: Vec<f64>) -> Self {
        let n = ts.len().min(vs.len());
        ts.truncate(n);
        vs.truncate(n);
        Columns {
            ts,
            vs,
            resets: OnceLock::new(),
        }
    }

    /// The timestamps, ms, ascending.
    pub fn ts(&self) -> &[i64] {
        &self.ts
    }

    /// The values, one per timestamp.
    pub fn vs(&self) -> &[f64] {
        &self.vs
    }

    /// Positions of the counter resets (a value below the one before it), ascending.
    fn resets(&self) -> &[u32] {
        self.resets.get_or_init(|| {
            // Only read for columns of at most `u32::MAX` samples (see `counter_resets`).
            let n = self.vs.len().min(u32::MAX as usize);
            cairn_common::scan::decreases(&self.vs[..n])
                .into_iter()
                .map(|i| i as u32)
                .collect()
        })
    }
}

/// The `(t_ms, v)` samples of one series in a range, ascending by time: a window of the
/// columns shared with the stored series (selecting a range copies no samples), or the
/// points a subquery produced.
#[derive(Debug, Clone)]
pub(crate) struct Points {
    cols: Arc<Columns>,
    start: usize,
    end: usize,
}

impl Points {
    /// The window `[start, end)` of `cols` (an empty window when the bounds are out of
    /// order or past the end).
    pub fn window(cols: &Arc<Columns>, start: usize, end: usize) -> Self {
        let end = end.min(cols.ts.len());
        Points {
            cols: Arc::clone(cols),
            start: start.min(end),
            end,
        }
    }

    /// Positions in the window (`1..len`) of its counter resets, ascending, read from the
    /// column's index; `None` when the index cannot answer (columns too long for it).
    pub fn counter_resets(&self) -> Option<impl Iterator<Item = usize> + '_> {
        if self.cols.vs.len() > u32::MAX as usize {
            return None;
        }
        let resets = self.cols.resets();
        let lo = resets.partition_point(|&r| (r as usize) <= self.start);
        let hi = resets.partition_point(|&r| (r as usize) < self.end).max(lo);
        Some(resets[lo..hi].iter().map(move |&r| r as usize - self.start))
    }

    /// The timestamps, ms, ascending.
    pub fn ts(&self) -> &[i64] {
        &self.cols.ts[self.start..self.end]
    }

    /// The values, one per timestamp.
    pub fn vs(&self) -> &[f64] {
        &self.cols.vs[self.start..self.end]
    }

    /// The number of samples.
    pub fn len(&self) -> usize {
        self.end - self.start
    }

    /// The `i`-th sample `(t_ms, v)`. Panics past the end.
    pub fn get(&self, i: usize) -> (i64, f64) {
        (self.ts()[i], self.vs()[i])
    }

    /// The samples `(t_ms, v)` in time order.
    pub fn iter(&self) -> impl Iterator<Item = (i64, f64)> + '_ {
        self.ts().iter().copied().zip(self.vs().iter().copied())
    }

    /// The samples as `(t_ms, v)` pairs.
    pub fn to_vec(&self) -> Vec<(i64, f64)> {
        self.iter().collect()
    }
}

impl From<Vec<(i64, f64)>> for Points {
    fn from(v: Vec<(i64, f64)>) -> Self {
        let end = v.len();
        let (ts, vs): (Vec<i64>, Vec<f64>) = v.into_iter().unzip();
        Points {
            cols: Arc::new(Columns::new(ts, vs)),
            start: 0,
            end,
        }
    }
}

/// A value inside the evaluator at one evaluation step.
#[derive(Debug, Clone)]
pub(crate) enum Val {
    Scalar(f64),
    Str(String),
    Vector(Vec<Sample>),
    Matrix(Vec<Series>),
}

impl Val {
    /// The name Prometheus uses for the value's type in error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Val::Scalar(_) => "scalar",
            Val::Str(_) => "string",
            Val::Vector(_) => "vector",
            Val::Matrix(_) => "matrix",
        }
    }
}
