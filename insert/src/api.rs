//! HTTP routes of the insert service, VictoriaMetrics-cluster compatible:
//! `/insert/{tenant}/prometheus/api/v1/write` (remote write; also `…/push`),
//! `/insert/{tenant}/prometheus/api/v1/import` (JSON lines) and
//! `/insert/{tenant}/prometheus/api/v1/import/prometheus` (text exposition), plus
//! `/api/v1/write` and `/api/v1/push` for tenant `0:0`.
//!
//! Answers: 204 when everything was stored; 400 naming each rejected series when some were
//! invalid (the valid ones are stored); 400 for a body that cannot be decoded and 413 for
//! one over `--max-request-bytes` (nothing stored); 503 when a storage node did not
//! acknowledge in time (the client retries).

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::routing::post;
use cairn_common::Tenant;

use crate::error::InsertError;
use crate::router::Router as SeriesRouter;
use crate::rows::Parsed;
use crate::validate::Limits;
use crate::{import_json, import_text, remote_write};

/// What every handler needs.
#[derive(Clone)]
pub struct AppState {
    /// Sends series to storage nodes.
    pub router: Arc<SeriesRouter>,
    /// Label limits.
    pub limits: Limits,
    /// `--max-request-bytes`.
    pub max_request_bytes: usize,
    /// Remote-write label sets already decoded (`--label-cache-max-bytes`).
    pub label_cache: Arc<remote_write::LabelCache>,
}

/// All routes of the insert service, with `/metrics` and `/health`.
pub fn routes(state: AppState) -> Router {
    let limit = state.max_request_bytes;
    let api = Router::new()
        .route("/insert/{tenant}/prometheus/api/v1/write", post(remote_write_handler))
        .route("/insert/{tenant}/prometheus/api/v1/push", post(remote_write_handler))
        .route("/insert/{tenant}/prometheus/api/v1/import", post(import_json_handler))
        .route(
            "/insert/{tenant}/prometheus/api/v1/import/prometheus",
            post(import_text_handler),
        )
        .route("/api/v1/write", post(remote_write_default_tenant))
        .route("/api/v1/push", post(remote_write_default_tenant))
        .layer(DefaultBodyLimit::max(limit))
        .with_state(state);
    cairn_common::http::with_request_metrics(api.merge(cairn_common::http::base_routes()), "insert")
}

fn body_bytes(body: Result<Bytes, BytesRejection>, limit: usize) -> Result<Bytes, InsertError> {
    body.map_err(|rej| {
        if rej.status() == StatusCode::PAYLOAD_TOO_LARGE {
            metrics::counter!("cairn_insert_rows_rejected_total", "reason" => "request_too_large").increment(1);
            InsertError::TooLarge(format!(
                "request body over the limit of {limit} bytes (--max-request-bytes)"
            ))
        } else {
            InsertError::BadRequest(format!("cannot read the request body: {}", rej.body_text()))
        }
    })
}

async fn remote_write_handler(
    State(st): State<AppState>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<StatusCode, InsertError> {
    let tenant: Tenant = tenant.parse()?;
    remote_write_for(st, tenant, headers, body).await
}

async fn remote_write_default_tenant(
    State(st): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<StatusCode, InsertError> {
    remote_write_for(st, Tenant::default(), headers, body).await
}

async fn remote_write_for(
    st: AppState,
    tenant: Tenant,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<StatusCode, InsertError> {
    let body = body_bytes(body, st.max_request_bytes)?;
    let encoding =
        remote_write::Encoding::from_header(headers.get(header::CONTENT_ENCODING).and_then(|v| v.to_str().ok()))?;
    let routed = remote_write::with_body_buffer(|buf| {
        let raw = remote_write::decompress_into(&body, encoding, st.max_request_bytes, buf)?;
        // Remote-write senders put one or a few samples in each entry; 64 bytes per entry
        // is a low estimate of its encoded size, so the batches rarely grow.
        let batches = st.router.batches(raw.len() / 64);
        remote_write::parse(raw, &st.limits, tenant, batches, &st.label_cache)
    })?;
    drop(body);
    let remote_write::Routed { batches, rejected } = routed;
    let stored_series = batches.series();
    if batches.series() > 0 {
        let samples = st.router.write_batches(tenant, batches).await?;
        metrics::counter!("cairn_insert_rows_total", "protocol" => "remote_write").increment(samples as u64);
    }
    answer(stored_series, rejected)
}

async fn import_json_handler(
    State(st): State<AppState>,
    Path(tenant): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<StatusCode, InsertError> {
    let tenant: Tenant = tenant.parse()?;
    let body = body_bytes(body, st.max_request_bytes)?;
    let parsed = import_json::parse(&body, &st.limits);
    store(&st, tenant, parsed, "import_json").await
}

async fn import_text_handler(
    State(st): State<AppState>,
    Path(tenant): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<StatusCode, InsertError> {
    let tenant: Tenant = tenant.parse()?;
    let body = body_bytes(body, st.max_request_bytes)?;
    let text =
        std::str::from_utf8(&body).map_err(|e| InsertError::BadRequest(format!("body is not UTF-8 text: {e}")))?;
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    let parsed = import_text::parse(text, now_ms, &st.limits);
    store(&st, tenant, parsed, "import_prometheus").await
}

/// Stores the valid series, then reports the rejected ones, if any, as a 400.
async fn store(
    st: &AppState,
    tenant: Tenant,
    parsed: Parsed,
    protocol: &'static str,
) -> Result<StatusCode, InsertError> {
    let Parsed { series, rejected } = parsed;
    let stored_series = series.len();
    if !series.is_empty() {
        let samples = st.router.write(tenant, series).await?;
        metrics::counter!("cairn_insert_rows_total", "protocol" => protocol).increment(samples as u64);
    }
    answer(stored_series, rejected)
}

/// 204, or 400 naming the rejected series when there are any.
fn answer(stored_series: usize, rejected: Vec<String>) -> Result<StatusCode, InsertError> {
    if rejected.is_empty() {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(InsertError::PartiallyRejected {
            stored: stored_series,
            rejected,
        })
    }
}
