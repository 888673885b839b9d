//! `series`, `labels` and `label/{name}/values`: index look-ups fanned out to every
//! storage node and merged (sorted, unique).
//!
//! Time range: `start`/`end` as Prometheus takes them; when absent, the last day up to
//! now (as VictoriaMetrics does, so that a bare call does not walk the whole retention).

use axum::extract::{Path, State};
use axum::response::Response;
use cairn_common::Tenant;
use cairn_proto::storage::{LabelNamesRequest, LabelValuesRequest, Selector, SeriesRequest};

use super::params::{Params, now_ms, parse_time};
use super::{AppState, json, json_response, match_param};
use crate::error::SelectError;
use crate::fanout::{Gathered, union_keys, union_strings};

/// Default span of the metadata endpoints when `start` is absent: one day, in ms.
const DEFAULT_SPAN_MS: i64 = 86_400_000;

struct Common {
    tenant: Tenant,
    selectors: Vec<Selector>,
    start_ms: i64,
    end_ms: i64,
    limit: u64,
    deny_partial: bool,
}

fn common(st: &AppState, tenant: &str, params: &Params, need_match: bool) -> Result<Common, SelectError> {
    let tenant: Tenant = tenant.parse()?;
    let mut selectors = Vec::new();
    for text in params.all("match[]") {
        for set in match_param::parse(text)? {
            selectors.push(Selector {
                matchers: set.iter().map(|m| m.to_proto()).collect(),
            });
        }
    }
    if need_match && selectors.is_empty() {
        return Err(SelectError::BadData("no match[] parameter provided".into()));
    }
    let end_ms = match params.get("end") {
        Some(t) => parse_time("end", t)?,
        None => now_ms(),
    };
    let start_ms = match params.get("start") {
        Some(t) => parse_time("start", t)?,
        None => end_ms - DEFAULT_SPAN_MS,
    };
    if end_ms < start_ms {
        return Err(SelectError::BadData(
            "invalid parameter \"end\": end timestamp must not be before start time".into(),
        ));
    }
    let limit = match params.get("limit") {
        None => 0,
        Some(l) => l.parse::<u64>().map_err(|_| {
            SelectError::BadData(format!(
                "invalid parameter \"limit\": {l:?} is not a non-negative integer"
            ))
        })?,
    };
    Ok(Common {
        tenant,
        selectors,
        start_ms,
        end_ms,
        limit,
        deny_partial: st.deny_partial(params),
    })
}

/// What to ask each storage node for: one more than the request's `limit`, so that the
/// select can tell that the answer was cut and say so in a warning (as Prometheus does).
fn node_limit(limit: u64) -> u64 {
    if limit == 0 { 0 } else { limit.saturating_add(1) }
}

fn truncate<T>(mut items: Vec<T>, limit: u64, warnings: &mut Vec<String>) -> Vec<T> {
    if limit > 0 && items.len() as u64 > limit {
        items.truncate(limit as usize);
        warnings.push("results truncated due to limit".to_string());
    }
    items
}

fn respond_strings(g: Gathered<Vec<String>>, limit: u64) -> Response {
    let mut warnings = g.warnings;
    let partial = !warnings.is_empty();
    let items = truncate(union_strings(g.answers), limit, &mut warnings);
    let mut data = String::with_capacity(items.iter().map(|s| s.len() + 3).sum::<usize>() + 2);
    data.push('[');
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            data.push(',');
        }
        json::write_str(&mut data, item);
    }
    data.push(']');
    json_response(json::success(&data, partial, &warnings, &[]))
}

/// `GET|POST …/api/v1/series`: label sets of the series matching any `match[]`.
pub async fn series(
    State(st): State<AppState>,
    Path(tenant): Path<String>,
    params: Params,
) -> Result<Response, SelectError> {
    let c = common(&st, &tenant, &params, true)?;
    let request = SeriesRequest {
        tenant: Some(c.tenant.to_proto()),
        selectors: c.selectors,
        start_ms: c.start_ms,
        end_ms: c.end_ms,
        limit: node_limit(c.limit),
        accept_keys: true,
    };
    let g = st
        .fanout
        .gather(c.deny_partial, |mut client| {
            let request = request.clone();
            async move {
                let mut stream = client.series(request).await?.into_inner();
                let mut out = Vec::new();
                while let Some(msg) = stream.message().await? {
                    for s in msg.series {
                        out.push(series_key(s.key, s.labels)?);
                    }
                }
                Ok(out)
            }
        })
        .await?;
    let mut warnings = g.warnings;
    let partial = !warnings.is_empty();
    let all = truncate(union_keys(g.answers), c.limit, &mut warnings);
    let mut data = String::with_capacity(all.iter().map(|k| k.len() + 8).sum::<usize>() + 2);
    data.push('[');
    for (i, key) in all.iter().enumerate() {
        if i > 0 {
            data.push(',');
        }
        // Each key was checked by `series_key`.
        json::write_key_labels(&mut data, key);
    }
    data.push(']');
    Ok(json_response(json::success(&data, partial, &warnings, &[])))
}

/// The labels part of the canonical key of a series of a `Series` answer: `key` as sent
/// (checked), or built from `labels` when a node sent labels. Errors: a malformed key.
fn series_key(key: bytes::Bytes, labels: Vec<cairn_proto::storage::Label>) -> Result<bytes::Bytes, tonic::Status> {
    if key.is_empty() {
        let mut full = cairn_common::Labels::from_proto(labels).canonical_key(Tenant::default());
        full.drain(..8);
        return Ok(full.into());
    }
    match cairn_common::labels::for_each_key_label(&key, |_, _| {}) {
        Some(()) => Ok(key),
        None => Err(tonic::Status::internal("series answer: a malformed series key")),
    }
}

/// `GET|POST …/api/v1/labels`: label names, of the series matching `match[]` if given.
pub async fn labels(
    State(st): State<AppState>,
    Path(tenant): Path<String>,
    params: Params,
) -> Result<Response, SelectError> {
    let c = common(&st, &tenant, &params, false)?;
    let request = LabelNamesRequest {
        tenant: Some(c.tenant.to_proto()),
        selectors: c.selectors,
        start_ms: c.start_ms,
        end_ms: c.end_ms,
        limit: node_limit(c.limit),
    };
    let g = st
        .fanout
        .gather(c.deny_partial, |mut client| {
            let request = request.clone();
            async move { Ok(client.label_names(request).await?.into_inner().names) }
        })
        .await?;
    Ok(respond_strings(g, c.limit))
}

/// `GET …/api/v1/label/{name}/values`: values of one label, of the series matching
/// `match[]` if given.
pub async fn label_values(
    State(st): State<AppState>,
    Path((tenant, name)): Path<(String, String)>,
    params: Params,
) -> Result<Response, SelectError> {
    let c = common(&st, &tenant, &params, false)?;
    let request = LabelValuesRequest {
        tenant: Some(c.tenant.to_proto()),
        name,
        selectors: c.selectors,
        start_ms: c.start_ms,
        end_ms: c.end_ms,
        limit: node_limit(c.limit),
    };
    let g = st
        .fanout
        .gather(c.deny_partial, |mut client| {
            let request = request.clone();
            async move { Ok(client.label_values(request).await?.into_inner().values) }
        })
        .await?;
    Ok(respond_strings(g, c.limit))
}
