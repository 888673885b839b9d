//! The range query result cache: a dashboard that refreshes asks the same range query
//! again with the window moved forward, and every step but the last few gives the same
//! values as before. The cache keeps those steps, so a repeated query evaluates only the
//! steps it does not hold (as VictoriaMetrics' rollup result cache does).
//!
//! What is kept: for a query text, tenant, step and step phase (`start mod step`), the
//! result's steps no later than `now - --search-cache-timestamp-offset`, with the warnings
//! and infos of the evaluation and the storage nodes' write epochs read before it.
//!
//! Why the kept steps are exact: a step's value at `t` depends only on samples at or
//! before `t` when the query has no `@` modifier and no negative offset ([`cacheable`]),
//! so the kept steps change only if a sample at or before them arrives later, or a
//! partition is dropped. A storage node's write epoch changes on both (a sample older
//! than `cairn_common::grpc::LATE_WRITE_MS`, 2 minutes, counts), and every lookup evaluates at
//! least the last step of the request, whose searches report the epochs again: the kept
//! steps are used only when every node reports the epoch it reported when they were
//! computed, and only from answers of all nodes.

use std::collections::HashMap;
use std::sync::Mutex;

use cairn_common::Tenant;
use promql_parser::parser::{Expr, Offset};
use promql_parser::util::{ExprVisitor, walk_expr};

use crate::promql::{QueryOutput, RangeSeries, Value};

/// Bytes counted per series on top of its labels and samples.
const SERIES_OVERHEAD_BYTES: usize = 64;

/// Bytes counted per entry on top of its series.
const ENTRY_OVERHEAD_BYTES: usize = 256;

/// What identifies a cached result: steps of equal keys fall on the same grid.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Key {
    tenant: Tenant,
    query: String,
    step_ms: i64,
    /// `start mod step`, ms.
    phase_ms: i64,
}

impl Key {
    /// The key of a range query of `query` for `tenant` with steps `step_ms` apart from
    /// `start_ms` (`step_ms` > 0).
    pub fn new(tenant: Tenant, query: &str, start_ms: i64, step_ms: i64) -> Self {
        Key {
            tenant,
            query: query.to_string(),
            step_ms,
            phase_ms: start_ms.rem_euclid(step_ms.max(1)),
        }
    }
}

/// Steps of a result held for a key.
#[derive(Debug)]
struct Entry {
    /// First and last step held, ms.
    start_ms: i64,
    end_ms: i64,
    /// Sorted by labels, samples ascending within `[start_ms, end_ms]`.
    series: Vec<RangeSeries>,
    warnings: Vec<String>,
    infos: Vec<String>,
    /// The storage nodes' write epochs when the steps were computed.
    epochs: Vec<u64>,
    bytes: usize,
    /// Last use, in the cache's use counter.
    used: u64,
}

/// The steps of a request the cache holds.
#[derive(Debug, Clone, PartialEq)]
pub struct Cached {
    /// The last step held, ms; later steps are to be evaluated.
    pub end_ms: i64,
    /// The steps from the request's start to `end_ms`, sorted by labels.
    pub series: Vec<RangeSeries>,
    /// Warnings and infos of the evaluation that computed them.
    pub warnings: Vec<String>,
    pub infos: Vec<String>,
    /// The write epochs the evaluation of the later steps must find for these to hold.
    pub epochs: Vec<u64>,
}

#[derive(Debug, Default)]
struct Inner {
    entries: HashMap<Key, Entry>,
    bytes: usize,
    uses: u64,
}

/// A bounded cache of range query results (see the module doc).
#[derive(Debug)]
pub struct ResultCache {
    max_bytes: usize,
    offset_ms: i64,
    inner: Mutex<Inner>,
}

impl ResultCache {
    /// A cache of at most `max_bytes` (estimated; 0 turns it off) holding steps at least
    /// `offset_ms` older than the time they are stored.
    pub fn new(max_bytes: usize, offset_ms: i64) -> Self {
        ResultCache {
            max_bytes,
            offset_ms,
            inner: Mutex::new(Inner::default()),
        }
    }

    /// Whether the cache keeps anything.
    pub fn is_enabled(&self) -> bool {
        self.max_bytes > 0
    }

    /// The steps of a request `[start_ms, end_ms]` under `key` that the cache holds, up
    /// to the step before `end_ms` at most (the last step is always evaluated, so that
    /// its searches report the write epochs). `None` when it holds none of them.
    pub fn lookup(&self, key: &Key, start_ms: i64, end_ms: i64) -> Option<Cached> {
        let mut inner = self.inner.lock().ok()?;
        inner.uses += 1;
        let uses = inner.uses;
        let entry = inner.entries.get_mut(key)?;
        let last = entry.end_ms.min(end_ms - key.step_ms);
        if start_ms < entry.start_ms || last < start_ms {
            return None;
        }
        entry.used = uses;
        Some(Cached {
            end_ms: last,
            series: steps_within(&entry.series, start_ms, last),
            warnings: entry.warnings.clone(),
            infos: entry.infos.clone(),
            epochs: entry.epochs.clone(),
        })
    }

    /// Keeps the steps of `out` (the result of the range query of `key` from `start_ms`)
    /// that are at least the offset older than `now_ms`, read with write epochs
    /// `epochs`, replacing what the key held. Nothing is kept when no step is old enough,
    /// the result is not a matrix, or it would take more than an eighth of the cache.
    pub fn store(&self, key: Key, start_ms: i64, out: &QueryOutput, epochs: Vec<u64>, now_ms: i64) {
        if !self.is_enabled() {
            return;
        }
        let Value::Matrix(all) = &out.value else {
            return;
        };
        let bound = now_ms.saturating_sub(self.offset_ms);
        let step = key.step_ms.max(1);
        if bound < start_ms {
            return;
        }
        let end_ms = start_ms + (bound - start_ms) / step * step;
        if let Ok(mut inner) = self.inner.lock() {
            // A hit on the same window with no newly old step: the key holds it already.
            inner.uses += 1;
            let uses = inner.uses;
            if let Some(held) = inner.entries.get_mut(&key)
                && held.start_ms == start_ms
                && held.end_ms == end_ms
                && held.epochs == epochs
            {
                held.used = uses;
                return;
            }
        }
        let series = steps_within(all, start_ms, end_ms);
        let bytes = ENTRY_OVERHEAD_BYTES + series.iter().map(series_bytes).sum::<usize>();
        if bytes > self.max_bytes / 8 {
            metrics::counter!("cairn_select_result_cache_skipped_total").increment(1);
            return;
        }
        let Ok(mut inner) = self.inner.lock() else {
            return;
        };
        inner.uses += 1;
        let entry = Entry {
            start_ms,
            end_ms,
            series,
            warnings: out.warnings.clone(),
            infos: out.infos.clone(),
            epochs,
            bytes,
            used: inner.uses,
        };
        if let Some(old) = inner.entries.insert(key, entry) {
            inner.bytes -= old.bytes;
        }
        inner.bytes += bytes;
        while inner.bytes > self.max_bytes {
            let Some(oldest) = inner.entries.iter().min_by_key(|(_, e)| e.used).map(|(k, _)| k.clone()) else {
                break;
            };
            if let Some(old) = inner.entries.remove(&oldest) {
                inner.bytes -= old.bytes;
            }
        }
        metrics::gauge!("cairn_select_result_cache_bytes").set(inner.bytes as f64);
        metrics::gauge!("cairn_select_result_cache_entries").set(inner.entries.len() as f64);
    }

    /// Drops what `key` holds (its steps no longer match the storage nodes' data).
    pub fn forget(&self, key: &Key) {
        if let Ok(mut inner) = self.inner.lock()
            && let Some(old) = inner.entries.remove(key)
        {
            inner.bytes -= old.bytes;
        }
    }
}

/// The samples of `series` at `from_ms..=to_ms`, leaving out series with none there.
fn steps_within(series: &[RangeSeries], from_ms: i64, to_ms: i64) -> Vec<RangeSeries> {
    series
        .iter()
        .filter_map(|s| {
            let lo = s.samples.partition_point(|&(t, _)| t < from_ms);
            let hi = s.samples.partition_point(|&(t, _)| t <= to_ms);
            (lo < hi).then(|| RangeSeries {
                labels: s.labels.clone(),
                samples: s.samples[lo..hi].to_vec(),
            })
        })
        .collect()
}

/// Estimated bytes of one cached series.
fn series_bytes(s: &RangeSeries) -> usize {
    let labels: usize = s.labels.iter().map(|l| l.name.len() + l.value.len() + 48).sum();
    SERIES_OVERHEAD_BYTES + labels + 16 * s.samples.len()
}

/// The cached steps followed by the later steps `tail` evaluated, as one result: series
/// merged by labels (both sorted by labels), warnings and infos of both without repeats.
pub fn join(cached: Cached, tail: QueryOutput) -> QueryOutput {
    let tail_series = match tail.value {
        Value::Matrix(m) => m,
        other => {
            return QueryOutput { value: other, ..tail };
        }
    };
    let mut out = Vec::with_capacity(cached.series.len().max(tail_series.len()));
    let mut a = cached.series.into_iter().peekable();
    let mut b = tail_series.into_iter().peekable();
    loop {
        let order = match (a.peek(), b.peek()) {
            (Some(x), Some(y)) => x.labels.cmp(&y.labels),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => break,
        };
        match order {
            std::cmp::Ordering::Less => out.extend(a.next()),
            std::cmp::Ordering::Greater => out.extend(b.next()),
            std::cmp::Ordering::Equal => {
                if let (Some(mut x), Some(y)) = (a.next(), b.next()) {
                    x.samples.extend(y.samples);
                    out.push(x);
                }
            }
        }
    }
    QueryOutput {
        value: Value::Matrix(out),
        warnings: union(cached.warnings, tail.warnings),
        infos: union(cached.infos, tail.infos),
    }
}

fn union(mut a: Vec<String>, b: Vec<String>) -> Vec<String> {
    for s in b {
        if !a.contains(&s) {
            a.push(s);
        }
    }
    a
}

/// Whether a query's steps depend only on samples at or before them: it parses, and has
/// no `@` modifier and no negative offset anywhere.
pub fn cacheable(query: &str) -> bool {
    struct Check;
    impl ExprVisitor for Check {
        type Error = ();
        fn pre_visit(&mut self, e: &Expr) -> Result<bool, ()> {
            let (at, offset) = match e {
                Expr::VectorSelector(vs) => (vs.at.is_some(), &vs.offset),
                Expr::MatrixSelector(ms) => (ms.vs.at.is_some(), &ms.vs.offset),
                Expr::Subquery(sq) => (sq.at.is_some(), &sq.offset),
                _ => (false, &None),
            };
            Ok(!at && !matches!(offset, Some(Offset::Neg(_))))
        }
    }
    crate::promql::parsed::parse(query).is_ok_and(|e| walk_expr(&mut Check, &e).unwrap_or(false))
}

#[cfg(test)]
mod tests;
