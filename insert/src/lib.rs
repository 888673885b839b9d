//! Cairn's insert service: takes writes over HTTP, validates them, and routes every series
//! to the storage nodes that own it.
//!
//! - Protocols, one module each: [`remote_write`] (Prometheus remote write 1.0),
//!   [`import_json`] (VictoriaMetrics JSON lines), [`import_text`] (Prometheus text
//!   exposition).
//! - [`validate`]: label and size limits; a bad series is rejected alone, the valid series
//!   of the same request are still stored.
//! - [`router`]: series → storage nodes by jump consistent hash with replication factor R,
//!   one batched gRPC write per node per request; answers only when every replica has
//!   acknowledged that the rows are durable.
//! - [`api`]: the HTTP routes and the error → status mapping ([`error`]).

pub mod api;
pub mod config;
pub mod error;
pub mod import_json;
pub mod import_text;
pub mod remote_write;
pub mod router;
pub mod rows;
pub mod storage_client;
pub mod validate;

#[cfg(test)]
use criterion as _;

pub use config::InsertConfig;
pub use error::InsertError;

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

/// Runs an insert node until `shutdown` is cancelled: binds `cfg.http_listen`, writes
/// `cfg.listen_addr_file` (line `http=ADDR`) once serving, and on shutdown stops accepting
/// and lets in-flight writes finish. Errors: no storage node given, a storage address that
/// is not `host:port`, or the listen address cannot be bound.
pub async fn run(cfg: InsertConfig, shutdown: CancellationToken) -> Result<(), InsertError> {
    let nodes = cfg.storage_nodes()?;
    let router = Arc::new(router::Router::new(
        storage_client::StorageNodes::connect_lazy(&nodes)?,
        cfg.replication_factor,
        cfg.storage_write_timeout,
    ));
    let label_cache = Arc::new(remote_write::LabelCache::new(cfg.label_cache_max_bytes));
    tokio::spawn(report_label_cache(label_cache.clone(), shutdown.clone()));
    let state = api::AppState {
        router,
        limits: cfg.limits(),
        max_request_bytes: cfg.max_request_bytes,
        label_cache,
    };
    let listener = cairn_common::http::bind(&cfg.http_listen).await?;
    let addr = listener.local_addr()?;
    if let Some(path) = &cfg.listen_addr_file {
        cairn_common::listen_addr_file::write(path, &[("http", addr)])?;
    }
    tracing::info!(%addr, storage_nodes = ?nodes, replication_factor = cfg.replication_factor, "insert serving");
    cairn_common::http::serve(listener, api::routes(state), shutdown).await?;
    tracing::info!("insert stopped");
    Ok(())
}

/// Sets `cairn_insert_label_cache_bytes` and `cairn_insert_label_cache_entries` every
/// second until `shutdown`.
async fn report_label_cache(cache: Arc<remote_write::LabelCache>, shutdown: CancellationToken) {
    let mut every = tokio::time::interval(std::time::Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = every.tick() => {
                let (bytes, entries) = cache.usage();
                metrics::gauge!("cairn_insert_label_cache_bytes").set(bytes as f64);
                metrics::gauge!("cairn_insert_label_cache_entries").set(entries as f64);
            }
        }
    }
}
