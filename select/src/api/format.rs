//! `format_query`: the query pretty-printed as Prometheus' `format_query` does, with
//! `promql-parser`'s formatter.

use axum::response::Response;

use super::params::Params;
use super::{json, json_response};
use crate::error::SelectError;

/// `GET|POST …/api/v1/format_query?query=…` → `{"status":"success","data":"<formatted>"}`.
/// Errors: a missing or unparsable query (bad_data, 400).
pub async fn format_query(params: Params) -> Result<Response, SelectError> {
    let query = params
        .get("query")
        .ok_or_else(|| SelectError::BadData("invalid parameter \"query\": query is missing".into()))?;
    let expr = promql_parser::parser::parse(query)
        .map_err(|e| SelectError::BadData(format!("invalid parameter \"query\": {e}")))?;
    let data = serde_json::Value::from(expr.prettify()).to_string();
    Ok(json_response(json::success(&data, false, &[], &[])))
}
