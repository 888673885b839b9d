//! Where series come from: the [`Querier`] trait the engine reads through, and
//! [`MemoryQuerier`], an in-memory implementation for tests and embedding.

use cairn_common::{Labels, Matcher};
use futures::future::BoxFuture;

use super::error::QueryError;

/// One series as fetched from storage: labels (with `__name__`), samples sorted ascending
/// by timestamp (ms), timestamps unique. Values are bit-exact: a sample whose bits equal
/// [`cairn_common::STALE_NAN_BITS`] is a staleness marker; the engine ends the series there
/// for lookback and never returns it as a value.
#[derive(Debug, Clone, PartialEq)]
pub struct FetchedSeries {
    /// The series' labels, including `__name__`.
    pub labels: Labels,
    /// Sample timestamps, ms since the epoch, ascending and unique.
    pub timestamps: Vec<i64>,
    /// Sample values, one per timestamp.
    pub values: Vec<f64>,
}

/// The answer to one [`Querier::select`]: the series plus warnings (e.g. a storage node
/// that did not answer, making the result partial).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Fetched {
    /// Matching series.
    pub series: Vec<FetchedSeries>,
    /// Human-readable warnings, returned with the query result.
    pub warnings: Vec<String>,
}

/// A source of series. Returns every series matching ALL `matchers` that has samples within
/// `[start_ms, end_ms]` (inclusive), with those samples; it may return a few samples outside
/// the range, which the engine cuts. Errors: [`QueryError::Storage`] (or any variant the
/// implementation finds apt).
pub trait Querier: Send + Sync {
    /// Selects the series matching all `matchers` in `[start_ms, end_ms]`.
    fn select<'a>(
        &'a self,
        matchers: &'a [Matcher],
        start_ms: i64,
        end_ms: i64,
    ) -> BoxFuture<'a, Result<Fetched, QueryError>>;
}

/// An in-memory [`Querier`] over a fixed list of series.
#[derive(Debug, Clone, Default)]
pub struct MemoryQuerier {
    series: Vec<FetchedSeries>,
}

impl MemoryQuerier {
    /// Wraps `series` (each with ascending, unique timestamps).
    pub fn new(series: Vec<FetchedSeries>) -> Self {
        MemoryQuerier { series }
    }

    /// Adds one series.
    pub fn push(&mut self, series: FetchedSeries) {
        self.series.push(series);
    }

    /// The stored series.
    pub fn series(&self) -> &[FetchedSeries] {
        &self.series
    }
}

impl Querier for MemoryQuerier {
    fn select<'a>(
        &'a self,
        matchers: &'a [Matcher],
        start_ms: i64,
        end_ms: i64,
    ) -> BoxFuture<'a, Result<Fetched, QueryError>> {
        let mut out = Vec::new();
        for s in &self.series {
            if !matchers.iter().all(|m| m.matches_labels(&s.labels)) {
                continue;
            }
            let lo = s.timestamps.partition_point(|&t| t < start_ms);
            let hi = s.timestamps.partition_point(|&t| t <= end_ms);
            if lo >= hi {
                continue;
            }
            out.push(FetchedSeries {
                labels: s.labels.clone(),
                timestamps: s.timestamps[lo..hi].to_vec(),
                values: s.values[lo..hi].to_vec(),
            });
        }
        Box::pin(async move {
            Ok(Fetched {
                series: out,
                warnings: Vec::new(),
            })
        })
    }
}
