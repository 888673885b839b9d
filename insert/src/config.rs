//! Flags of `cairn insert`. Each has an environment variable `CAIRN_…`.

use std::path::PathBuf;
use std::time::Duration;

use crate::error::InsertError;
use crate::validate::Limits;

/// Configuration of an insert node.
#[derive(clap::Args, Clone, Debug)]
pub struct InsertConfig {
    /// Storage nodes' gRPC addresses (host:port), repeated or comma-separated. The order
    /// defines the hash buckets: keep it stable, append new nodes at the end.
    #[arg(
        long = "storage-node",
        env = "CAIRN_STORAGE_NODES",
        value_delimiter = ',',
        required = true
    )]
    pub storage_node: Vec<String>,
    /// HTTP address for writes, /metrics and /health.
    #[arg(long, env = "CAIRN_HTTP_LISTEN", default_value = ":8480")]
    pub http_listen: String,
    /// Copies of each series, on consecutive nodes of the list (1 = no replication).
    #[arg(long, env = "CAIRN_REPLICATION_FACTOR", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub replication_factor: u32,
    /// Largest accepted request body, in bytes, compressed or not (checked again after
    /// decompression). Larger requests get 413; counted in
    /// cairn_insert_rows_rejected_total{reason="request_too_large"}.
    #[arg(long, env = "CAIRN_MAX_REQUEST_BYTES", default_value_t = 32 * 1024 * 1024)]
    pub max_request_bytes: usize,
    /// How long a write may wait for a storage node that is down or slow before the insert
    /// answers 503 so the client retries (Prometheus duration, e.g. 10s).
    #[arg(long, env = "CAIRN_STORAGE_WRITE_TIMEOUT", default_value = "10s", value_parser = cairn_common::duration::parse_duration)]
    pub storage_write_timeout: Duration,
    /// Series with more labels are rejected
    /// (cairn_insert_rows_rejected_total{reason="too_many_labels"}).
    #[arg(long, env = "CAIRN_MAX_LABELS_PER_SERIES", default_value_t = 60)]
    pub max_labels_per_series: usize,
    /// Longest label name, in bytes (cairn_insert_rows_rejected_total{reason="label_name_too_long"}).
    #[arg(long, env = "CAIRN_MAX_LABEL_NAME_BYTES", default_value_t = 256)]
    pub max_label_name_bytes: usize,
    /// Longest label value, in bytes (cairn_insert_rows_rejected_total{reason="label_value_too_long"}).
    #[arg(long, env = "CAIRN_MAX_LABEL_VALUE_BYTES", default_value_t = 4096)]
    pub max_label_value_bytes: usize,
    /// Memory for the cache of remote-write label sets as received → canonical series
    /// key, in bytes (0 turns it off). A sender repeats each series' labels in every
    /// request; a label set found here is not decoded, checked or sorted again. Reported in
    /// cairn_insert_label_cache_bytes and cairn_insert_label_cache_requests_total{outcome}.
    #[arg(long, env = "CAIRN_LABEL_CACHE_MAX_BYTES", default_value_t = 16 * 1024 * 1024)]
    pub label_cache_max_bytes: usize,
    /// Write the bound address here (`http=ADDR`) once serving; for tests and scripts.
    #[arg(long, env = "CAIRN_LISTEN_ADDR_FILE")]
    pub listen_addr_file: Option<PathBuf>,
}

impl InsertConfig {
    /// The storage-node list, trimmed, empty entries dropped. Errors: the list is empty.
    pub fn storage_nodes(&self) -> Result<Vec<String>, InsertError> {
        cairn_common::grpc::storage_node_list(&self.storage_node).map_err(InsertError::Config)
    }

    /// The validation limits these flags set.
    pub fn limits(&self) -> Limits {
        Limits {
            max_labels_per_series: self.max_labels_per_series,
            max_label_name_bytes: self.max_label_name_bytes,
            max_label_value_bytes: self.max_label_value_bytes,
        }
    }
}
