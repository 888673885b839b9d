//! Errors of PromQL evaluation, with the `errorType` and HTTP status the Prometheus HTTP API
//! gives for each (`web/api/v1/api.go`, `returnAPIError`).

/// Why a query failed. Each variant carries the human message Prometheus would give.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum QueryError {
    /// The query text does not parse (or uses an unsupported construct): `bad_data`, 400.
    #[error("{0}")]
    Parse(String),
    /// A request parameter is invalid (bad time, step, ...): `bad_data`, 400.
    #[error("{0}")]
    BadData(String),
    /// Evaluation failed (many-to-many matching, duplicate series, ...): `execution`, 422.
    #[error("{0}")]
    Execution(String),
    /// The query ran past its timeout: `timeout`, 503.
    #[error("{0}")]
    Timeout(String),
    /// The query loaded more samples than allowed: `execution`, 422 (as Prometheus).
    #[error("{0}")]
    TooManySamples(String),
    /// Fetching series failed: `internal`, 500 (Prometheus' `ErrStorage`).
    #[error("{0}")]
    Storage(String),
    /// The query was canceled by the client: `canceled`, 499.
    #[error("{0}")]
    Canceled(String),
    /// Storage nodes did not answer and a partial answer is not allowed: `unavailable`,
    /// 503, so that clients retry.
    #[error("{0}")]
    Unavailable(String),
}

impl QueryError {
    /// Prometheus' `errorType` string: `bad_data`, `execution`, `timeout`, `canceled` or
    /// `internal`.
    pub fn error_type(&self) -> &'static str {
        match self {
            QueryError::Parse(_) | QueryError::BadData(_) => "bad_data",
            QueryError::Execution(_) | QueryError::TooManySamples(_) => "execution",
            QueryError::Timeout(_) => "timeout",
            QueryError::Storage(_) => "internal",
            QueryError::Canceled(_) => "canceled",
            QueryError::Unavailable(_) => "unavailable",
        }
    }

    /// The HTTP status Prometheus' API answers with: 400 bad data, 422 execution,
    /// 503 timeout, 499 canceled (client closed request), 500 internal.
    pub fn http_status(&self) -> u16 {
        match self {
            QueryError::Parse(_) | QueryError::BadData(_) => 400,
            QueryError::Execution(_) | QueryError::TooManySamples(_) => 422,
            QueryError::Timeout(_) => 503,
            QueryError::Storage(_) => 500,
            QueryError::Canceled(_) => 499,
            QueryError::Unavailable(_) => 503,
        }
    }
}

/// Shorthand for an execution error.
pub(crate) fn exec(msg: impl Into<String>) -> QueryError {
    QueryError::Execution(msg.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_types_and_statuses_follow_prometheus_api() {
        assert_eq!(QueryError::Parse("x".into()).http_status(), 400);
        assert_eq!(QueryError::Execution("x".into()).error_type(), "execution");
        assert_eq!(QueryError::Timeout("x".into()).http_status(), 503);
        assert_eq!(QueryError::TooManySamples("x".into()).http_status(), 422);
        assert_eq!(QueryError::Canceled("x".into()).http_status(), 499);
    }
}
