//! HTTP plumbing every role shares: binding, `/metrics`, `/health`, request counting and
//! graceful shutdown.

use std::net::SocketAddr;
use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::get;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::telemetry::metrics_handle;

/// Binds a TCP listener; `addr` like `127.0.0.1:8480` or `:8480` (all interfaces).
/// Errors: the address does not parse or cannot be bound; the message names it.
pub async fn bind(addr: &str) -> std::io::Result<TcpListener> {
    let full = if addr.starts_with(':') {
        format!("0.0.0.0{addr}")
    } else {
        addr.to_string()
    };
    TcpListener::bind(&full)
        .await
        .map_err(|e| std::io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))
}

/// Routes every role serves: `/metrics` (Prometheus text format) and `/health`
/// (200 `OK` while the process serves).
pub fn base_routes() -> Router {
    Router::new()
        .route("/metrics", get(|| async { metrics_handle().render() }))
        .route("/health", get(|| async { "OK" }))
}

/// Counts each request in `cairn_http_requests_total{service,path,code}` and times it in
/// `cairn_http_request_duration_seconds{service,path}`; `path` is the route pattern, so
/// tenants do not explode the label set.
pub fn with_request_metrics(router: Router, service: &'static str) -> Router {
    router.layer(middleware::from_fn(move |req: Request, next: Next| async move {
        let path = req
            .extensions()
            .get::<MatchedPath>()
            .map(|p| p.as_str().to_string())
            .unwrap_or_else(|| "unmatched".to_string());
        let started = Instant::now();
        let resp: Response = next.run(req).await;
        let code = resp.status().as_u16().to_string();
        metrics::counter!("cairn_http_requests_total", "service" => service, "path" => path.clone(), "code" => code)
            .increment(1);
        metrics::histogram!("cairn_http_request_duration_seconds", "service" => service, "path" => path)
            .record(started.elapsed().as_secs_f64());
        resp
    }))
}

/// Serves `router` on `listener` until `shutdown` is cancelled, then stops accepting and
/// lets in-flight requests finish.
pub async fn serve(listener: TcpListener, router: Router, shutdown: CancellationToken) -> std::io::Result<()> {
    // TCP_NODELAY on every accepted connection: responses are written in several small
    // pieces, which Nagle's algorithm would hold back for the peer's delayed ACK.
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY");
        }
    });
    axum::serve(listener, router.into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
}
