//! The sender against a scripted loopback HTTP server: 5xx answers are retried until they
//! succeed or the retries run out, 4xx answers are not retried.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use clap::Parser;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

use super::send_all;
use crate::bench::config::IngestConfig;
use crate::bench::encode::Request;

#[derive(Parser)]
struct Args {
    #[command(flatten)]
    cfg: IngestConfig,
}

/// Serves HTTP/1.1 on loopback; the n-th request (from 0) gets `status(n)`. Returns the
/// URL and the request counter.
async fn server(status: fn(usize) -> u16) -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let count = Arc::new(AtomicUsize::new(0));
    let c = count.clone();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let c = c.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    // One request: headers, then Content-Length bytes of body.
                    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                        match sock.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                        continue;
                    };
                    let head = String::from_utf8_lossy(&buf[..end]).to_lowercase();
                    let len: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse().ok())
                        .unwrap_or(0);
                    while buf.len() < end + 4 + len {
                        match sock.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    buf.drain(..end + 4 + len);
                    let code = status(c.fetch_add(1, Ordering::SeqCst));
                    let answer = format!("HTTP/1.1 {code} X\r\ncontent-length: 2\r\n\r\nno");
                    if sock.write_all(answer.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (format!("http://{addr}/api/v1/write"), count)
}

fn cfg(url: &str, retries: &str) -> IngestConfig {
    Args::try_parse_from([
        "x",
        "--url",
        url,
        "--connections",
        "1",
        "--max-retries",
        retries,
        "--retry-backoff",
        "1ms",
    ])
    .expect("flags")
    .cfg
}

fn one_request() -> Vec<Request> {
    vec![Request {
        body: Bytes::from_static(b"body"),
        samples: 7,
    }]
}

#[tokio::test]
async fn retries_5xx_until_accepted() {
    let (url, count) = server(|n| if n < 2 { 503 } else { 204 }).await;
    let out = send_all(&cfg(&url, "5"), one_request(), CancellationToken::new())
        .await
        .expect("send");
    assert_eq!((out.retries, out.failures, out.samples_ok), (2, 0, 7));
    assert_eq!(count.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn gives_up_after_the_retry_limit() {
    let (url, count) = server(|_| 500).await;
    let out = send_all(&cfg(&url, "3"), one_request(), CancellationToken::new())
        .await
        .expect("send");
    assert_eq!((out.retries, out.failures, out.samples_ok), (3, 1, 0));
    assert_eq!(count.load(Ordering::SeqCst), 4);
}

#[tokio::test]
async fn never_retries_4xx() {
    let (url, count) = server(|_| 400).await;
    let out = send_all(&cfg(&url, "5"), one_request(), CancellationToken::new())
        .await
        .expect("send");
    assert_eq!((out.retries, out.failures, out.samples_ok), (0, 1, 0));
    assert_eq!(count.load(Ordering::SeqCst), 1);
}
