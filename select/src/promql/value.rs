//! Query results as the Prometheus HTTP API returns them (`resultType` scalar, string,
//! vector or matrix), and the values the evaluator passes between nodes.

use std::ops::Deref;
use std::sync::Arc;

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
}

/// The `(t_ms, v)` samples of one series in a range, ascending by time: a window of
/// samples shared with the stored series (selecting a range copies no samples), or the
/// points a subquery produced.
#[derive(Debug, Clone)]
pub(crate) struct Points {
    data: Arc<[(i64, f64)]>,
    start: usize,
    end: usize,
}

impl Points {
    /// The window `data[start..end]` (an empty window when the bounds are out of order or
    /// past the end).
    pub fn window(data: &Arc<[(i64, f64)]>, start: usize, end: usize) -> Self {
        let end = end.min(data.len());
        Points {
            data: Arc::clone(data),
            start: start.min(end),
            end,
        }
    }
}

impl From<Vec<(i64, f64)>> for Points {
    fn from(v: Vec<(i64, f64)>) -> Self {
        let end = v.len();
        Points {
            data: v.into(),
            start: 0,
            end,
        }
    }
}

impl Deref for Points {
    type Target = [(i64, f64)];

    fn deref(&self) -> &[(i64, f64)] {
        &self.data[self.start..self.end]
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
