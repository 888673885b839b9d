//! `cairn bench`: load generators for measuring Cairn (and any other remote-write
//! receiver) side by side. `cairn bench ingest` replays a recorded corpus, or generates
//! high-churn series, as Prometheus remote write to a URL and reports samples per second.

mod churn;
mod config;
mod corpus;
mod encode;
mod error;
mod replay;
mod report;
mod send;

use std::time::Instant;

use tokio_util::sync::CancellationToken;

pub use config::IngestConfig;
pub use error::BenchError;

/// The `cairn bench` subcommands.
#[derive(clap::Subcommand, Debug)]
pub enum BenchCommand {
    /// Replay a JSON-line corpus (or generate churn series) as Prometheus remote write.
    Ingest(IngestConfig),
}

/// Runs a bench subcommand until it is done or `shutdown` fires. Errors: see
/// [`BenchError`].
pub async fn run(cmd: BenchCommand, shutdown: CancellationToken) -> Result<(), BenchError> {
    match cmd {
        BenchCommand::Ingest(cfg) => ingest(cfg, shutdown).await,
    }
}

/// Builds every request body up front (not timed), then sends them over
/// `--connections` connections (timed) and prints the report.
async fn ingest(cfg: IngestConfig, shutdown: CancellationToken) -> Result<(), BenchError> {
    if cfg.batch_samples == 0 || cfg.connections == 0 || cfg.replicas == 0 {
        return Err(BenchError::Config(
            "--batch-samples, --connections and --replicas must be at least 1".into(),
        ));
    }
    let prep = Instant::now();
    let cfg2 = cfg.clone();
    let (source_summary, requests) = tokio::task::spawn_blocking(move || prepare(&cfg2))
        .await
        .map_err(|e| BenchError::Config(format!("preparation task failed: {e}")))??;
    let encoded_bytes: usize = requests.iter().map(|r| r.body.len()).sum();
    tracing::info!(
        series = source_summary.series,
        samples = source_summary.samples,
        requests = requests.len(),
        encoded_bytes,
        seconds = prep.elapsed().as_secs_f64(),
        "requests encoded"
    );
    let outcome = send::send_all(&cfg, requests, shutdown).await?;
    let report = report::Report::new(&cfg, &source_summary, encoded_bytes, &outcome);
    println!("{}", report.human());
    if let Some(path) = &cfg.report_file {
        let json = serde_json::to_string_pretty(&report).map_err(|e| BenchError::Config(e.to_string()))?;
        std::fs::write(path, json + "\n").map_err(|e| BenchError::Io {
            path: path.clone(),
            source: e,
        })?;
    }
    if outcome.failures > 0 {
        return Err(BenchError::Failures(outcome.failures));
    }
    Ok(())
}

/// What the replayed stream holds: series and samples counts and the time span (Unix
/// milliseconds, after any time shift).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SourceSummary {
    /// Distinct series sent (replicas counted separately).
    pub series: u64,
    /// Samples sent, NaN samples included.
    pub samples: u64,
    /// Smallest timestamp, Unix milliseconds.
    pub first_ms: i64,
    /// Largest timestamp, Unix milliseconds.
    pub last_ms: i64,
}

/// Loads or generates the samples and encodes every request body.
fn prepare(cfg: &IngestConfig) -> Result<(SourceSummary, Vec<encode::Request>), BenchError> {
    let threads = cfg
        .encode_threads
        .unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1));
    let now_ms = now_ms();
    if cfg.churn_series > 0 {
        let source = churn::ChurnSource::new(cfg, now_ms);
        let requests = encode::encode_all(&source, cfg.batch_samples, threads);
        return Ok((source.summary(), requests));
    }
    let corpus = corpus::Corpus::load(&cfg.corpus)?;
    let source = replay::ReplaySource::new(&corpus, cfg.replicas, cfg.time_shift_to_now.then_some(now_ms));
    let requests = encode::encode_all(&source, cfg.batch_samples, threads);
    Ok((source.summary(), requests))
}

/// The wall clock in Unix milliseconds (0 if the clock is before 1970).
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
