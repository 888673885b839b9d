//! The Prometheus HTTP API under `/select/{tenant}/prometheus/api/v1/` (VictoriaMetrics
//! cluster URL scheme), GET and POST alike: [`query`] (`query`, `query_range`),
//! [`metadata`] (`series`, `labels`, `label/{name}/values`), [`format`] (`format_query`)
//! and [`stubs`] (`status/buildinfo` and the endpoints Grafana calls that Cairn has no
//! data for).

pub mod format;
pub mod json;
pub mod match_param;
pub mod metadata;
pub mod params;
pub mod query;
pub mod stubs;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::fanout::Fanout;
use crate::promql::Engine;
use crate::result_cache::ResultCache;
use params::Params;

/// What every handler needs.
#[derive(Clone)]
pub struct AppState {
    /// The storage nodes.
    pub fanout: Arc<Fanout>,
    /// The PromQL engine.
    pub engine: Arc<Engine>,
    /// `--search-max-query-duration`.
    pub max_query_duration: Duration,
    /// `--search-max-series` (0 = none).
    pub max_series: u64,
    /// `--deny-partial-response`.
    pub deny_partial_response: bool,
    /// `--dedup-interval` in ms (0 = off).
    pub dedup_interval_ms: i64,
    /// Range query results (`--search-cache-max-bytes`).
    pub result_cache: Arc<ResultCache>,
}

impl AppState {
    /// Whether this request denies partial answers (flag or `deny_partial_response=1`).
    pub fn deny_partial(&self, params: &Params) -> bool {
        self.deny_partial_response || params.flag("deny_partial_response")
    }
}

/// All routes of the select service, with `/metrics` and `/health`.
pub fn routes(state: AppState) -> Router {
    let prefix = "/select/{tenant}/prometheus/api/v1";
    let r = |path: &str| format!("{prefix}{path}");
    let api = Router::new()
        .route(&r("/query"), get(query::instant).post(query::instant))
        .route(&r("/query_range"), get(query::range).post(query::range))
        .route(&r("/series"), get(metadata::series).post(metadata::series))
        .route(&r("/labels"), get(metadata::labels).post(metadata::labels))
        .route(&r("/label/{name}/values"), get(metadata::label_values))
        .route(
            &r("/format_query"),
            get(format::format_query).post(format::format_query),
        )
        .route(&r("/status/buildinfo"), get(stubs::buildinfo))
        .route(&r("/query_exemplars"), get(stubs::empty_list).post(stubs::empty_list))
        .route(&r("/metadata"), get(stubs::empty_object))
        .route(&r("/rules"), get(stubs::rules))
        .route(&r("/alerts"), get(stubs::alerts))
        .with_state(state);
    cairn_common::http::with_request_metrics(api.merge(cairn_common::http::base_routes()), "select")
}

/// A 200 answer with a JSON body.
pub fn json_response(body: String) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}
