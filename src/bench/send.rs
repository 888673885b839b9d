//! The timed phase: sending pre-encoded remote-write requests over N concurrent HTTP/1.1
//! connections, in stream order, retrying 5xx answers and network errors with bounded
//! exponential backoff (as Prometheus does), never 4xx.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::config::IngestConfig;
use super::encode::Request;
use super::error::BenchError;

/// Largest backoff between two tries of one request.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// How many failure messages are logged in full.
const LOGGED_FAILURES: u64 = 5;

/// What the timed phase did.
#[derive(Debug, Default, Clone, Copy)]
pub struct Outcome {
    /// Wall time from the first request to the last answer.
    pub elapsed: Duration,
    /// Requests sent (first tries).
    pub requests: u64,
    /// Samples in requests that were accepted (2xx).
    pub samples_ok: u64,
    /// Requests that failed for good.
    pub failures: u64,
    /// Extra tries after a 5xx answer or a network error.
    pub retries: u64,
}

#[derive(Default)]
struct Counters {
    samples_ok: AtomicU64,
    failures: AtomicU64,
    retries: AtomicU64,
}

/// Sends every request and waits for the answers. Errors: the HTTP client cannot be
/// built, or `shutdown` fired before the end.
pub async fn send_all(
    cfg: &IngestConfig,
    requests: Vec<Request>,
    shutdown: CancellationToken,
) -> Result<Outcome, BenchError> {
    let requests = Arc::new(requests);
    let next = Arc::new(AtomicUsize::new(0));
    let counters = Arc::new(Counters::default());
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..cfg.connections {
        // One client per connection: each keeps a single keep-alive HTTP/1.1 connection.
        let client = reqwest::Client::builder()
            .http1_only()
            .pool_max_idle_per_host(1)
            .timeout(cfg.request_timeout)
            .build()?;
        let (requests, next, counters, cfg, shutdown) = (
            requests.clone(),
            next.clone(),
            counters.clone(),
            cfg.clone(),
            shutdown.clone(),
        );
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(req) = requests.get(i) else { break };
                if shutdown.is_cancelled() {
                    break;
                }
                match send_one(&client, &cfg, req, &counters).await {
                    Ok(()) => {
                        counters.samples_ok.fetch_add(u64::from(req.samples), Ordering::Relaxed);
                    }
                    Err(msg) => {
                        let n = counters.failures.fetch_add(1, Ordering::Relaxed);
                        if n < LOGGED_FAILURES {
                            tracing::warn!(request = i, error = %msg, "request failed");
                        }
                    }
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let elapsed = started.elapsed();
    if shutdown.is_cancelled() {
        return Err(BenchError::Interrupted);
    }
    Ok(Outcome {
        elapsed,
        requests: requests.len() as u64,
        samples_ok: counters.samples_ok.load(Ordering::Relaxed),
        failures: counters.failures.load(Ordering::Relaxed),
        retries: counters.retries.load(Ordering::Relaxed),
    })
}

/// One request with its retries: `Ok` on 2xx, `Err(message)` on a 4xx or once the
/// retries are spent.
async fn send_one(
    client: &reqwest::Client,
    cfg: &IngestConfig,
    req: &Request,
    counters: &Counters,
) -> Result<(), String> {
    let mut backoff = cfg.retry_backoff;
    let mut tries = 0u32;
    loop {
        let result = client
            .post(&cfg.url)
            .header("Content-Type", "application/x-protobuf")
            .header("Content-Encoding", "snappy")
            .header("X-Prometheus-Remote-Write-Version", "0.1.0")
            .header("User-Agent", "cairn-bench")
            .body(req.body.clone())
            .send()
            .await;
        let retryable = match result {
            Ok(resp) if resp.status().is_success() => return Ok(()),
            Ok(resp) => {
                let status = resp.status();
                let text = resp.text().await.unwrap_or_default();
                let msg = format!("HTTP {status}: {}", text.trim());
                if !status.is_server_error() {
                    return Err(msg);
                }
                msg
            }
            Err(e) => format!("network error: {e}"),
        };
        if tries >= cfg.max_retries {
            return Err(format!("{retryable} (after {tries} retries)"));
        }
        tries += 1;
        counters.retries.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

#[cfg(test)]
mod tests;
