//! `query` and `query_range`: PromQL evaluation over the cluster.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::response::Response;
use cairn_common::Tenant;

use super::params::{Params, now_ms, parse_duration_ms, parse_time};
use super::{AppState, json, json_response};
use crate::error::SelectError;
use crate::promql::{Engine, QueryError, QueryOutput};
use crate::querier::ClusterQuerier;
use crate::result_cache::{self, Key, ResultCache};

/// Prometheus refuses range queries of more points than this (`api.go`).
const MAX_POINTS_PER_SERIES: i64 = 11_000;

/// The query timeout: the request's `timeout` if given, capped by the flag.
fn timeout(st: &AppState, params: &Params) -> Result<Duration, SelectError> {
    match params.get("timeout") {
        None => Ok(st.max_query_duration),
        Some(t) => Ok(Duration::from_millis(parse_duration_ms("timeout", t)? as u64).min(st.max_query_duration)),
    }
}

fn query_text(params: &Params) -> Result<&str, SelectError> {
    params
        .get("query")
        .ok_or_else(|| SelectError::BadData("invalid parameter \"query\": query is missing".into()))
}

/// Runs an evaluation under the timeout and renders the answer.
async fn answer(
    querier: ClusterQuerier,
    limit: Duration,
    kind: &'static str,
    run: impl AsyncFnOnce(&ClusterQuerier) -> Result<QueryOutput, QueryError>,
) -> Result<Response, SelectError> {
    let started = Instant::now();
    let outcome = match tokio::time::timeout(limit, run(&querier)).await {
        Ok(r) => r,
        Err(_) => Err(QueryError::Timeout(format!(
            "query timed out in expression evaluation after {limit:?}"
        ))),
    };
    let outcome_label = match &outcome {
        Ok(_) => "success",
        Err(e) => e.error_type(),
    };
    metrics::counter!("cairn_select_queries_total", "kind" => kind, "outcome" => outcome_label).increment(1);
    metrics::histogram!("cairn_select_query_duration_seconds", "kind" => kind).record(started.elapsed().as_secs_f64());
    let out = outcome?;
    let mut data = String::new();
    json::write_query_data(&mut data, &out.value);
    Ok(json_response(json::success(
        &data,
        querier.is_partial(),
        &out.warnings,
        &out.infos,
    )))
}

/// `GET|POST /select/{tenant}/prometheus/api/v1/query`: `query`, `time` (default now),
/// `timeout`.
pub async fn instant(
    State(st): State<AppState>,
    Path(tenant): Path<String>,
    params: Params,
) -> Result<Response, SelectError> {
    let tenant: Tenant = tenant.parse()?;
    let query = query_text(&params)?.to_string();
    let time = match params.get("time") {
        Some(t) => parse_time("time", t)?,
        None => now_ms(),
    };
    let limit = timeout(&st, &params)?;
    let querier = ClusterQuerier::new(Arc::clone(&st.fanout), tenant, st.deny_partial(&params), st.max_series)
        .with_dedup_interval(st.dedup_interval_ms);
    let engine = Arc::clone(&st.engine);
    answer(querier, limit, "instant", async move |q| {
        engine.instant(q, &query, time).await
    })
    .await
}

/// `GET|POST /select/{tenant}/prometheus/api/v1/query_range`: `query`, `start`, `end`,
/// `step`, `timeout`, `nocache=1` (evaluate every step; the result cache is neither read
/// nor filled). Errors as Prometheus: end before start, step not positive, or more
/// than 11,000 points per series.
pub async fn range(
    State(st): State<AppState>,
    Path(tenant): Path<String>,
    params: Params,
) -> Result<Response, SelectError> {
    let tenant: Tenant = tenant.parse()?;
    let query = query_text(&params)?.to_string();
    let need = |name: &str| {
        params
            .get(name)
            .ok_or_else(|| SelectError::BadData(format!("invalid parameter {name:?}: missing")))
    };
    let start = parse_time("start", need("start")?)?;
    let end = parse_time("end", need("end")?)?;
    if end < start {
        return Err(SelectError::BadData(
            "invalid parameter \"end\": end timestamp must not be before start time".into(),
        ));
    }
    let step = parse_duration_ms("step", need("step")?)?;
    if (end - start) / step >= MAX_POINTS_PER_SERIES {
        return Err(SelectError::BadData(
            "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)".into(),
        ));
    }
    let limit = timeout(&st, &params)?;
    let querier = ClusterQuerier::new(Arc::clone(&st.fanout), tenant, st.deny_partial(&params), st.max_series)
        .with_dedup_interval(st.dedup_interval_ms);
    let engine = Arc::clone(&st.engine);
    let cache = (st.result_cache.is_enabled() && !params.flag("nocache") && result_cache::cacheable(&query))
        .then(|| (Arc::clone(&st.result_cache), Key::new(tenant, &query, start, step)));
    answer(querier, limit, "range", async move |q| match cache {
        None => engine.range(q, &query, start, end, step).await,
        Some((cache, key)) => {
            let range = Range { start, end, step };
            cached_range(&engine, &cache, key, q, &query, range).await
        }
    })
    .await
}

/// The steps of a range query: first and last step and the distance between steps, ms.
struct Range {
    start: i64,
    end: i64,
    step: i64,
}

/// A range query through the result cache (see [`result_cache`]): the steps the cache
/// holds followed by the later steps evaluated now, when the storage nodes report the
/// write epochs the kept steps were computed with; otherwise every step evaluated. The
/// old-enough steps of the answer are kept for the next request.
async fn cached_range(
    engine: &Engine,
    cache: &ResultCache,
    key: Key,
    q: &ClusterQuerier,
    query: &str,
    r: Range,
) -> Result<QueryOutput, QueryError> {
    let outcome = match cache.lookup(&key, r.start, r.end) {
        Some(cached) => {
            let tail = engine.range(q, query, cached.end_ms + r.step, r.end, r.step).await?;
            if q.write_epochs().as_ref() == Some(&cached.epochs) {
                metrics::counter!("cairn_select_result_cache_requests_total", "outcome" => "hit").increment(1);
                let epochs = cached.epochs.clone();
                let out = result_cache::join(cached, tail);
                cache.store(key, r.start, &out, epochs, now_ms());
                return Ok(out);
            }
            cache.forget(&key);
            q.reset();
            "stale"
        }
        None => "miss",
    };
    metrics::counter!("cairn_select_result_cache_requests_total", "outcome" => outcome).increment(1);
    let out = engine.range(q, query, r.start, r.end, r.step).await?;
    if let Some(epochs) = q.write_epochs() {
        cache.store(key, r.start, &out, epochs, now_ms());
    }
    Ok(out)
}
