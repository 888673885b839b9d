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
    /// Write the bound address here (`http=ADDR`) once serving; for tests and scripts.
    #[arg(long, env = "CAIRN_LISTEN_ADDR_FILE")]
    pub listen_addr_file: Option<PathBuf>,
}

impl SelectConfig {
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
}
