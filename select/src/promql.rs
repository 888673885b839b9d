//! PromQL evaluation with Prometheus 3 semantics.
//!
//! [`Engine`] parses a query with `promql-parser`, fetches each selector's series once
//! through a [`Querier`] for the whole query range, and evaluates the expression at the
//! query time (instant query) or at each step (range query). Rules follow Prometheus'
//! `promql/engine.go` and `promql/functions.go`: lookback delta with a left-open window,
//! staleness markers, left-open range windows `(t - range, t]`, `offset`, `@`, subqueries,
//! metric-name dropping, vector matching and its errors. Native histograms are not supported.

mod aggregation;
mod binary;
mod engine;
mod error;
mod eval;
mod functions;
mod kahan;
pub mod parsed;
mod querier;
mod rollup;
mod selector;
#[cfg(test)]
mod tests;
mod value;

pub use engine::{Engine, EngineOptions};
pub use error::QueryError;
pub use querier::{Fetched, FetchedSeries, MemoryQuerier, Querier};
pub use value::{InstantSample, QueryOutput, RangeSeries, Value};
