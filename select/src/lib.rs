//! Cairn's select service: the Prometheus HTTP API over the cluster.
//!
//! - [`api`]: routes, parameters and the Prometheus JSON shapes.
//! - [`promql`]: the PromQL engine (parsing with `promql-parser`, evaluation here).
//! - [`fanout`] and [`querier`]: every search goes to every storage node at once; the
//!   answers are merged per series (one sample per timestamp) and a node that does not
//!   answer makes the result partial.
//! - [`dedup`]: `--dedup-interval`, one sample per series per interval after the merge.
//! - [`result_cache`]: steps of range query results kept for repeated queries.

pub mod api;
pub mod config;
pub mod dedup;
pub mod error;
pub mod fanout;
pub mod promql;
pub mod querier;
pub mod result_cache;

pub use config::SelectConfig;
pub use error::SelectError;

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::result_cache::ResultCache;

/// Runs a select node until `shutdown` is cancelled: binds `cfg.http_listen`, writes
/// `cfg.listen_addr_file` (line `http=ADDR`) once serving, and on shutdown stops accepting
/// and lets in-flight queries finish. Errors: no storage node, a bad storage address, or
/// the listen address cannot be bound.
pub async fn run(cfg: SelectConfig, shutdown: CancellationToken) -> Result<(), SelectError> {
    let nodes = cfg.storage_nodes()?;
    let fanout = Arc::new(fanout::Fanout::new(&nodes)?);
    let engine = Arc::new(promql::Engine::new(promql::EngineOptions {
        lookback_delta_ms: cfg.lookback_delta.as_millis() as i64,
        max_samples: cfg.search_max_samples_per_query,
        timeout: cfg.search_max_query_duration,
    }));
    let state = api::AppState {
        fanout,
        engine,
        max_query_duration: cfg.search_max_query_duration,
        max_series: cfg.search_max_series,
        deny_partial_response: cfg.deny_partial_response,
        dedup_interval_ms: i64::try_from(cfg.dedup_interval.as_millis()).unwrap_or(i64::MAX),
        result_cache: Arc::new(ResultCache::new(
            cfg.search_cache_max_bytes,
            cfg.result_cache_offset_ms(),
        )),
    };
    let listener = cairn_common::http::bind(&cfg.http_listen).await?;
    let addr = listener.local_addr()?;
    if let Some(path) = &cfg.listen_addr_file {
        cairn_common::listen_addr_file::write(path, &[("http", addr)])?;
    }
    tracing::info!(%addr, storage_nodes = ?nodes, "select serving");
    cairn_common::http::serve(listener, api::routes(state), shutdown).await?;
    tracing::info!("select stopped");
    Ok(())
}
