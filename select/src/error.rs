//! Errors of the select service and their Prometheus API shape:
//! `{"status":"error","errorType":…,"error":…}` with the HTTP code Prometheus uses for
//! that errorType (bad_data 400, execution 422, timeout and unavailable 503, internal 500).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use thiserror::Error;

use crate::promql::QueryError;

/// Everything that can go wrong in the select service.
#[derive(Debug, Error)]
pub enum SelectError {
    /// A flag is missing or wrong; the message names the flag.
    #[error("configuration: {0}")]
    Config(String),
    /// Binding or serving failed.
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    /// A request parameter is missing or malformed (errorType bad_data, 400).
    #[error("{0}")]
    BadData(String),
    /// A storage node failed and partial responses are denied, or every node failed
    /// (errorType unavailable, 503).
    #[error("{0}")]
    Unavailable(String),
    /// Query evaluation failed.
    #[error(transparent)]
    Query(#[from] QueryError),
}

impl From<cairn_common::TenantError> for SelectError {
    fn from(e: cairn_common::TenantError) -> Self {
        SelectError::BadData(e.to_string())
    }
}

impl SelectError {
    /// Prometheus' `errorType` and the HTTP status for it.
    pub fn error_type_and_status(&self) -> (&'static str, StatusCode) {
        match self {
            SelectError::BadData(_) => ("bad_data", StatusCode::BAD_REQUEST),
            SelectError::Unavailable(_) => ("unavailable", StatusCode::SERVICE_UNAVAILABLE),
            SelectError::Config(_) | SelectError::Io(_) => ("internal", StatusCode::INTERNAL_SERVER_ERROR),
            SelectError::Query(q) => (
                q.error_type(),
                StatusCode::from_u16(q.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            ),
        }
    }
}

impl IntoResponse for SelectError {
    fn into_response(self) -> Response {
        let (error_type, status) = self.error_type_and_status();
        metrics::counter!("cairn_select_errors_total", "type" => error_type).increment(1);
        let body = serde_json::json!({
            "status": "error",
            "errorType": error_type,
            "error": self.to_string(),
        });
        (
            status,
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            body.to_string(),
        )
            .into_response()
    }
}
