//! The result of an ingest run, as one human line and as JSON (`--report-file`).

use serde::Serialize;

use super::SourceSummary;
use super::config::IngestConfig;
use super::send::Outcome;

/// Figures of one run. Rates are over the timed phase only (encoding excluded).
#[derive(Debug, Serialize)]
pub struct Report {
    /// The remote-write URL.
    pub url: String,
    /// Distinct series in the stream.
    pub series: u64,
    /// Samples in the stream (NaN included).
    pub samples: u64,
    /// Samples in accepted requests.
    pub samples_ok: u64,
    /// Wall time of the timed phase, seconds.
    pub seconds: f64,
    /// `samples_ok / seconds`.
    pub samples_per_second: f64,
    /// Requests sent.
    pub requests: u64,
    /// Requests that failed for good.
    pub failures: u64,
    /// Retries after 5xx answers or network errors.
    pub retries: u64,
    /// Sum of the compressed request bodies, bytes.
    pub encoded_bytes: u64,
    /// Smallest timestamp sent, Unix milliseconds.
    pub first_ms: i64,
    /// Largest timestamp sent, Unix milliseconds.
    pub last_ms: i64,
    /// Connections used.
    pub connections: usize,
    /// Largest samples per request.
    pub batch_samples: usize,
}

impl Report {
    /// Puts the run's configuration, stream and outcome together.
    pub fn new(cfg: &IngestConfig, src: &SourceSummary, encoded_bytes: usize, out: &Outcome) -> Self {
        let seconds = out.elapsed.as_secs_f64();
        Report {
            url: cfg.url.clone(),
            series: src.series,
            samples: src.samples,
            samples_ok: out.samples_ok,
            seconds,
            samples_per_second: if seconds > 0.0 {
                out.samples_ok as f64 / seconds
            } else {
                0.0
            },
            requests: out.requests,
            failures: out.failures,
            retries: out.retries,
            encoded_bytes: encoded_bytes as u64,
            first_ms: src.first_ms,
            last_ms: src.last_ms,
            connections: cfg.connections,
            batch_samples: cfg.batch_samples,
        }
    }

    /// One line: samples/s, samples, seconds, requests, failures, retries.
    pub fn human(&self) -> String {
        format!(
            "{:.0} samples/s: {} of {} samples from {} series in {:.2} s; {} requests ({:.1} MB), {} failed, {} retries",
            self.samples_per_second,
            self.samples_ok,
            self.samples,
            self.series,
            self.seconds,
            self.requests,
            self.encoded_bytes as f64 / 1e6,
            self.failures,
            self.retries
        )
    }
}
