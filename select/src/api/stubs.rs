//! Endpoints Grafana and other Prometheus clients call that need no data from storage.

use axum::response::Response;

use super::json_response;

/// The Prometheus version Cairn reports. Grafana reads it to decide which API features to
/// use; from 2.24.0 on it sends `match[]` to the label endpoints.
pub const PROMETHEUS_COMPAT_VERSION: &str = "2.24.0";

/// `status/buildinfo`: a Prometheus-like build description.
pub async fn buildinfo() -> Response {
    let body = serde_json::json!({
        "status": "success",
        "data": {
            "version": PROMETHEUS_COMPAT_VERSION,
            "revision": concat!("cairn-", env!("CARGO_PKG_VERSION")),
            "branch": "",
            "buildUser": "",
            "buildDate": "",
            "goVersion": "",
        }
    });
    json_response(body.to_string())
}

/// `query_exemplars`: Cairn stores no exemplars.
pub async fn empty_list() -> Response {
    json_response(r#"{"status":"success","data":[]}"#.to_string())
}

/// `metadata`: Cairn keeps no metric metadata yet.
pub async fn empty_object() -> Response {
    json_response(r#"{"status":"success","data":{}}"#.to_string())
}

/// `rules`: Cairn evaluates no rules (run vmalert or Prometheus for that).
pub async fn rules() -> Response {
    json_response(r#"{"status":"success","data":{"groups":[]}}"#.to_string())
}

/// `alerts`: Cairn evaluates no rules.
pub async fn alerts() -> Response {
    json_response(r#"{"status":"success","data":{"alerts":[]}}"#.to_string())
}
