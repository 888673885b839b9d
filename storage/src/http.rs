//! The node's HTTP side: `/metrics`, `/health` (shared) and `/internal/force_flush`,
//! plus the periodic flush and retention loop.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use tokio_util::sync::CancellationToken;

use crate::engine::{Engine, now_ms};

/// The routes: shared ones plus `GET|POST /internal/force_flush`, which flushes the head
/// of every series to blocks and answers 200 with what it wrote (500 on failure).
pub(crate) fn routes(engine: Arc<Engine>) -> Router {
    let handler = move || {
        let engine = engine.clone();
        async move {
            match tokio::task::spawn_blocking(move || engine.flush()).await {
                Ok(Ok(s)) => (
                    StatusCode::OK,
                    format!(
                        "flushed {} samples of {} series into {} blocks\n",
                        s.samples, s.series, s.blocks
                    ),
                ),
                Ok(Err(e)) => (StatusCode::INTERNAL_SERVER_ERROR, format!("flush failed: {e}\n")),
                Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("flush task failed: {e}\n")),
            }
        }
    };
    cairn_common::http::base_routes().route("/internal/force_flush", get(handler.clone()).post(handler))
}

/// Flushes the head and applies retention every `interval` until `shutdown`.
pub(crate) async fn flush_loop(engine: Arc<Engine>, interval: Duration, shutdown: CancellationToken) {
    let interval = interval.max(Duration::from_millis(100));
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(interval) => {}
        }
        let e = engine.clone();
        let result = tokio::task::spawn_blocking(move || {
            let stats = e.flush()?;
            e.apply_retention(now_ms())?;
            e.compact(now_ms())?;
            Ok::<_, crate::error::StorageError>(stats)
        })
        .await;
        match result {
            Ok(Ok(stats)) => tracing::debug!(?stats, "periodic flush"),
            Ok(Err(e)) => tracing::error!(error = %e, "periodic flush failed"),
            Err(e) => tracing::error!(error = %e, "periodic flush task failed"),
        }
    }
}
