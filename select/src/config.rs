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
