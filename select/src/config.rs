//! Flags of `cairn select`. Each has an environment variable `CAIRN_…`.

use std::path::PathBuf;
use std::time::Duration;

use crate::error::SelectError;

/// Configuration of a select node.
#[derive(clap::Args, Clone, Debug)]
pub struct SelectConfig {
    /// Storage nodes' gRPC addresses (host:port), repeated or comma-separated. Every query
    /// is sent to all of them.
    #[arg(
        long = "storage-node",
        env = "CAIRN_STORAGE_NODES",
        value_delimiter = ',',
        required = true
    )]
    pub storage_node: Vec<String>,
    /// HTTP address for the Prometheus API, /metrics and /health.
    #[arg(long, env = "CAIRN_HTTP_LISTEN", default_value = ":8481")]
    pub http_listen: String,
    /// Lookback delta: how far back an instant selector looks for a sample (Prometheus
    /// `--query.lookback-delta`).
    #[arg(long, env = "CAIRN_LOOKBACK_DELTA", default_value = "5m", value_parser = cairn_common::duration::parse_duration)]
    pub lookback_delta: Duration,
    /// Longest a query may run; requests may ask for less with `timeout=`. Past it the
    /// query fails with errorType "timeout" (cairn_select_queries_total{outcome="timeout"}).
    #[arg(long, env = "CAIRN_SEARCH_MAX_QUERY_DURATION", default_value = "30s", value_parser = cairn_common::duration::parse_duration)]
    pub search_max_query_duration: Duration,
    /// Most series one selector may fetch from one storage node (0 = no limit); past it
    /// the query fails with a clear error instead of exhausting memory.
    #[arg(long, env = "CAIRN_SEARCH_MAX_SERIES", default_value_t = 1_000_000)]
    pub search_max_series: u64,
    /// Most samples a query may hold in memory at once (0 = no limit).
    #[arg(long, env = "CAIRN_SEARCH_MAX_SAMPLES_PER_QUERY", default_value_t = 50_000_000)]
    pub search_max_samples_per_query: usize,
    /// Fail a query when a storage node does not answer, instead of answering from the
    /// others with `isPartial: true` (requests may also pass `deny_partial_response=1`).
    #[arg(long, env = "CAIRN_DENY_PARTIAL_RESPONSE", default_value_t = false)]
    pub deny_partial_response: bool,
    /// Keep one sample per series in each interval of this length (Prometheus duration,
    /// 0 = off), as VictoriaMetrics' `-dedup.minScrapeInterval`: intervals are aligned to
    /// multiples of it since the epoch and closed at their end, and the sample with the
    /// latest timestamp in each is kept. Samples with identical timestamps are merged into
    /// one either way.
    #[arg(long, env = "CAIRN_DEDUP_INTERVAL", default_value = "0", value_parser = cairn_common::duration::parse_duration)]
    pub dedup_interval: Duration,
    /// Most bytes (estimated) of range query results kept to answer repeated range
    /// queries (dashboards that refresh) by evaluating only the steps not kept, as
    /// VictoriaMetrics' rollup result cache; 0 turns the cache off. Requests may skip it
    /// with `nocache=1`. See docs/architecture.md for why kept steps stay exact.
    #[arg(long, env = "CAIRN_SEARCH_CACHE_MAX_BYTES", default_value_t = 64 << 20)]
    pub search_cache_max_bytes: usize,
    /// Only steps at least this much older than now are kept in the result cache. Must
    /// be at least 2m: storage nodes report samples older than 2 minutes as late, and
    /// the difference is the clock skew between nodes that the cache tolerates.
    #[arg(long, env = "CAIRN_SEARCH_CACHE_TIMESTAMP_OFFSET", default_value = "5m", value_parser = parse_cache_offset)]
    pub search_cache_timestamp_offset: Duration,
    /// Write the bound address here (`http=ADDR`) once serving; for tests and scripts.
    #[arg(long, env = "CAIRN_LISTEN_ADDR_FILE")]
    pub listen_addr_file: Option<PathBuf>,
}

/// `--search-cache-timestamp-offset`: a Prometheus duration of at least
/// [`cairn_common::grpc::LATE_WRITE_MS`].
fn parse_cache_offset(s: &str) -> Result<Duration, String> {
    let d = cairn_common::duration::parse_duration(s).map_err(|e| e.to_string())?;
    if d.as_millis() < cairn_common::grpc::LATE_WRITE_MS as u128 {
        return Err(format!(
            "{s} is shorter than 2m: storage nodes report only samples older than 2 minutes as late"
        ));
    }
    Ok(d)
}

impl SelectConfig {
    /// How old a step must be for the result cache to keep it, ms:
    /// `--search-cache-timestamp-offset`, plus `--dedup-interval` when set, because a
    /// sample decides which sample of its interval is kept and so can change the steps
    /// up to one interval before it.
    pub fn result_cache_offset_ms(&self) -> i64 {
        i64::try_from((self.search_cache_timestamp_offset + self.dedup_interval).as_millis()).unwrap_or(i64::MAX)
    }

    /// The storage-node list, trimmed. Errors: the list is empty.
    pub fn storage_nodes(&self) -> Result<Vec<String>, SelectError> {
        cairn_common::grpc::storage_node_list(&self.storage_node).map_err(SelectError::Config)
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Args {
        #[command(flatten)]
        cfg: SelectConfig,
    }

    #[test]
    fn dedup_interval_is_off_by_default_and_takes_a_prometheus_duration() {
        let args = Args::try_parse_from(["select", "--storage-node", "a:1"]).expect("parse");
        assert_eq!(args.cfg.dedup_interval, Duration::ZERO);
        let args =
            Args::try_parse_from(["select", "--storage-node", "a:1", "--dedup-interval", "1m30s"]).expect("parse");
        assert_eq!(args.cfg.dedup_interval, Duration::from_secs(90));
        assert!(Args::try_parse_from(["select", "--storage-node", "a:1", "--dedup-interval", "15"]).is_err());
    }

    #[test]
    fn the_cache_offset_is_five_minutes_by_default_and_never_under_two() {
        let args = Args::try_parse_from(["select", "--storage-node", "a:1"]).expect("parse");
        assert_eq!(args.cfg.search_cache_timestamp_offset, Duration::from_secs(300));
        assert_eq!(args.cfg.search_cache_max_bytes, 64 << 20);
        let args = Args::try_parse_from([
            "select",
            "--storage-node",
            "a:1",
            "--search-cache-timestamp-offset",
            "2m",
        ])
        .expect("parse");
        assert_eq!(args.cfg.search_cache_timestamp_offset, Duration::from_secs(120));
        let err = Args::try_parse_from([
            "select",
            "--storage-node",
            "a:1",
            "--search-cache-timestamp-offset",
            "1m",
        ])
        .err()
        .expect("1m is refused");
        assert!(err.to_string().contains("--search-cache-timestamp-offset"), "{err}");
        assert!(err.to_string().contains("shorter than 2m"), "{err}");
    }

    #[test]
    fn the_cache_keeps_steps_a_dedup_interval_further_back() {
        let args = Args::try_parse_from(["select", "--storage-node", "a:1"]).expect("parse");
        assert_eq!(args.cfg.result_cache_offset_ms(), 300_000);
        let args = Args::try_parse_from(["select", "--storage-node", "a:1", "--dedup-interval", "1m"]).expect("parse");
        assert_eq!(args.cfg.result_cache_offset_ms(), 360_000);
    }
}
