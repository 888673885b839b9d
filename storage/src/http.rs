//! The node's HTTP side: `/metrics`, `/health` (shared), `/internal/force_flush` and
//! `/internal/force_merge`, plus the periodic flush, retention and merge loop.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::Query;
use axum::http::StatusCode;
use axum::routing::get;
use tokio_util::sync::CancellationToken;

use crate::engine::{Engine, now_ms};

/// The routes: shared ones plus
/// - `GET|POST /internal/force_flush`: flushes the head of every series to blocks and
///   answers 200 with what it wrote (500 on failure); with `?merge=1` it does what
///   `force_merge` does;
/// - `GET|POST /internal/force_merge`: flushes, merges every series' unmerged blocks
///   and runs a RocksDB manual compaction ([`Engine::force_merge`]), so that disk usage
///   reflects the final form of the data; answers 200 with what it did.
pub(crate) fn routes(engine: Arc<Engine>) -> Router {
    let flush = {
        let engine = engine.clone();
        move |Query(q): Query<HashMap<String, String>>| {
            let merge = matches!(q.get("merge").map(String::as_str), Some("1" | "true"));
            force(engine.clone(), merge)
        }
    };
    let merge = move || force(engine.clone(), true);
    cairn_common::http::base_routes()
        .route("/internal/force_flush", get(flush.clone()).post(flush))
        .route("/internal/force_merge", get(merge.clone()).post(merge))
}

async fn force(engine: Arc<Engine>, merge: bool) -> (StatusCode, String) {
    let result = tokio::task::spawn_blocking(move || {
        if merge {
            engine.force_merge().map(|(f, m)| (f, Some(m)))
        } else {
            engine.flush().map(|f| (f, None))
        }
    })
    .await;
    match result {
        Ok(Ok((s, merged))) => {
            let mut msg = format!(
                "flushed {} samples of {} series into {} blocks\n",
                s.samples, s.series, s.blocks
            );
            if let Some(m) = merged {
                msg.push_str(&format!(
                    "merged {} blocks ({} bytes) of {} series into {} blocks ({} bytes)\n",
                    m.blocks_in, m.bytes_in, m.series, m.blocks_out, m.bytes_out
                ));
            }
            (StatusCode::OK, msg)
        }
        Ok(Err(e)) => (StatusCode::INTERNAL_SERVER_ERROR, format!("flush failed: {e}\n")),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("flush task failed: {e}\n")),
    }
}

/// Flushes the head, applies retention and merges the series that are due (see
/// [`crate::engine::merge`]) every `interval`, or sooner once the head holds more than
/// `head_max_samples` samples (checked every second), until `shutdown`.
pub(crate) async fn flush_loop(
    engine: Arc<Engine>,
    interval: Duration,
    head_max_samples: usize,
    shutdown: CancellationToken,
) {
    let interval = interval.max(Duration::from_millis(100));
    // How often the head's size is checked against `head_max_samples`.
    let check = Duration::from_secs(1).min(interval);
    let mut last_flush = tokio::time::Instant::now();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(check) => {}
        }
        engine.report_usage();
        let due = last_flush.elapsed() >= interval;
        let full = head_max_samples > 0 && engine.head_samples() > head_max_samples;
        if !due && !full {
            continue;
        }
        last_flush = tokio::time::Instant::now();
        let e = engine.clone();
        let result = tokio::task::spawn_blocking(move || {
            let stats = e.flush()?;
            e.apply_retention(now_ms())?;
            e.compact(now_ms())?;
            Ok::<_, crate::error::StorageError>(stats)
        })
        .await;
        match result {
            Ok(Ok(stats)) => tracing::debug!(?stats, full, "periodic flush"),
            Ok(Err(e)) => tracing::error!(error = %e, "periodic flush failed"),
            Err(e) => tracing::error!(error = %e, "periodic flush task failed"),
        }
    }
}
