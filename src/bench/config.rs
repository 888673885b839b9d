//! Flags of `cairn bench ingest` (`cairn bench ingest --help`).

use std::path::PathBuf;
use std::time::Duration;

/// Configuration of one ingest run: what to send, where, and how.
#[derive(clap::Args, Debug, Clone)]
pub struct IngestConfig {
    /// Remote-write URL to send to (Cairn insert:
    /// `http://HOST:8480/insert/0/prometheus/api/v1/write`; VictoriaMetrics single node:
    /// `http://HOST:8428/api/v1/write`).
    #[arg(
        long,
        env = "CAIRN_BENCH_URL",
        default_value = "http://127.0.0.1:8480/insert/0/prometheus/api/v1/write"
    )]
    pub url: String,
    /// Corpus in VictoriaMetrics' JSON-line format, zstd-compressed (`.zst`) or plain.
    /// NaN and ±Inf may be the strings "NaN", "Inf", "-Inf".
    #[arg(
        long,
        env = "CAIRN_BENCH_CORPUS",
        default_value = "../shared/corpus/node-1s.jsonl.zst"
    )]
    pub corpus: PathBuf,
    /// Largest number of samples per remote-write request (Prometheus'
    /// `max_samples_per_send`).
    #[arg(long, env = "CAIRN_BENCH_BATCH_SAMPLES", default_value_t = 2000)]
    pub batch_samples: usize,
    /// Concurrent HTTP/1.1 connections, each sending one request at a time.
    #[arg(long, env = "CAIRN_BENCH_CONNECTIONS", default_value_t = 4)]
    pub connections: usize,
    /// Copies of every corpus series. Copy k has label `instance` set to
    /// `<original>-r<k>` and the series' values rotated by k positions (same timestamps).
    #[arg(long, env = "CAIRN_BENCH_REPLICAS", default_value_t = 1)]
    pub replicas: usize,
    /// Shift every timestamp by one offset (milliseconds) so that the corpus ends now, so
    /// that retention never rejects it.
    #[arg(long, env = "CAIRN_BENCH_TIME_SHIFT_TO_NOW", default_value_t = false)]
    pub time_shift_to_now: bool,
    /// Retries of one request after a 5xx answer or a network error, with backoff doubling
    /// from `--retry-backoff` up to 5 s. 4xx answers are never retried.
    #[arg(long, env = "CAIRN_BENCH_MAX_RETRIES", default_value_t = 10)]
    pub max_retries: u32,
    /// First retry backoff (duration, e.g. 100ms).
    #[arg(long, env = "CAIRN_BENCH_RETRY_BACKOFF", default_value = "100ms", value_parser = cairn_common::duration::parse_duration)]
    pub retry_backoff: Duration,
    /// Time limit of one HTTP request (duration).
    #[arg(long, env = "CAIRN_BENCH_REQUEST_TIMEOUT", default_value = "60s", value_parser = cairn_common::duration::parse_duration)]
    pub request_timeout: Duration,
    /// Churn mode when above 0: instead of the corpus, send this many brand-new series
    /// (unique label values), `--churn-samples-per-series` samples each, their start
    /// times spread evenly over `--churn-span` ending now.
    #[arg(long, env = "CAIRN_BENCH_CHURN_SERIES", default_value_t = 0)]
    pub churn_series: usize,
    /// Samples per churn series.
    #[arg(long, env = "CAIRN_BENCH_CHURN_SAMPLES_PER_SERIES", default_value_t = 5)]
    pub churn_samples_per_series: usize,
    /// Time between two samples of one churn series (duration).
    #[arg(long, env = "CAIRN_BENCH_CHURN_INTERVAL", default_value = "10s", value_parser = cairn_common::duration::parse_duration)]
    pub churn_interval: Duration,
    /// Time over which the churn series' first samples are spread; it ends now (duration).
    #[arg(long, env = "CAIRN_BENCH_CHURN_SPAN", default_value = "30m", value_parser = cairn_common::duration::parse_duration)]
    pub churn_span: Duration,
    /// Threads that encode the requests before the timed phase (default: one per core).
    #[arg(long, env = "CAIRN_BENCH_ENCODE_THREADS")]
    pub encode_threads: Option<usize>,
    /// Also write the report as JSON to this file (samples, seconds, samples per second,
    /// requests, failures, retries, first and last timestamp in Unix milliseconds).
    #[arg(long, env = "CAIRN_BENCH_REPORT_FILE")]
    pub report_file: Option<PathBuf>,
}
