//! Errors of the insert service and the one place that maps them to HTTP status codes.
//!
//! The mapping follows what Prometheus' remote-write sender does with a status: it retries
//! 5xx (and network errors) and drops the batch on any other 4xx. So data the client must
//! keep gets 503; input that will never be accepted gets 400 or 413.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use thiserror::Error;

/// Everything that can go wrong in the insert service.
#[derive(Debug, Error)]
pub enum InsertError {
    /// A flag is missing or wrong; the message names the flag.
    #[error("configuration: {0}")]
    Config(String),
    /// Binding or serving failed.
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    /// The URL's tenant is not `accountID[:projectID]`.
    #[error(transparent)]
    Tenant(#[from] cairn_common::TenantError),
    /// The body cannot be decoded at all (compression, protobuf); nothing was stored.
    #[error("{0}")]
    BadRequest(String),
    /// The body is over `--max-request-bytes`; nothing was stored.
    #[error("{0}")]
    TooLarge(String),
    /// Some series were invalid and were rejected; the valid ones were stored.
    #[error("{stored} series stored, {} rejected: {}", .rejected.len(), summarize(.rejected))]
    PartiallyRejected {
        /// Series stored from the same request.
        stored: usize,
        /// One message per rejected series or line.
        rejected: Vec<String>,
    },
    /// A storage node did not acknowledge within `--storage-write-timeout`; the client
    /// should retry the whole request.
    #[error("storage unavailable, retry later: {0}")]
    StorageUnavailable(String),
}

fn summarize(rejected: &[String]) -> String {
    const SHOWN: usize = 5;
    let mut s = rejected.iter().take(SHOWN).cloned().collect::<Vec<_>>().join("; ");
    if rejected.len() > SHOWN {
        s.push_str(&format!("; and {} more", rejected.len() - SHOWN));
    }
    s
}

impl InsertError {
    /// The HTTP status this error is answered with.
    pub fn status(&self) -> StatusCode {
        match self {
            InsertError::Tenant(_) | InsertError::BadRequest(_) | InsertError::PartiallyRejected { .. } => {
                StatusCode::BAD_REQUEST
            }
            InsertError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            InsertError::StorageUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            InsertError::Config(_) | InsertError::Io(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for InsertError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::warn!(error = %self, "write failed");
        } else {
            tracing::debug!(error = %self, "write rejected");
        }
        (status, format!("{self}\n")).into_response()
    }
}
