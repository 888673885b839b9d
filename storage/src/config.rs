//! The storage node's flags (`cairn storage --help`).

use std::path::PathBuf;
use std::time::Duration;

/// How the WAL makes a batch durable before a write is acknowledged.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum WalSync {
    /// fsync every group-commit batch before acknowledging (survives power loss).
    Always,
    /// Write to the OS without fsync (survives a process crash, not a power loss).
    Never,
}

/// Configuration of one storage node.
#[derive(clap::Args, Clone, Debug)]
pub struct StorageConfig {
    /// Directory of the node's data (index, WAL, partitions). Created if missing.
    #[arg(long, env = "CAIRN_DATA_DIR", default_value = "cairn-storage-data")]
    pub data_dir: PathBuf,
    /// gRPC address that insert and select nodes connect to.
    #[arg(long, env = "CAIRN_GRPC_LISTEN", default_value = ":8400")]
    pub grpc_listen: String,
    /// HTTP address for /metrics, /health, /internal/force_flush.
    #[arg(long, env = "CAIRN_HTTP_LISTEN", default_value = ":8482")]
    pub http_listen: String,
    /// How long samples are kept (Prometheus duration: 31d, 12w, 1y); whole partitions
    /// (UTC days) are dropped once their last millisecond is older. Samples older than
    /// this are not stored (`cairn_storage_rows_ignored_total{reason="too_old"}`).
    #[arg(long, env = "CAIRN_RETENTION", default_value = "31d", value_parser = cairn_common::duration::parse_duration)]
    pub retention: Duration,
    /// File to write `http=ADDR` and `grpc=ADDR` to once the node serves (for port 0).
    #[arg(long, env = "CAIRN_LISTEN_ADDR_FILE")]
    pub listen_addr_file: Option<PathBuf>,
    /// WAL durability: `always` fsyncs each group-commit batch before acknowledging a
    /// write; `never` leaves it to the OS. Timed in `cairn_storage_wal_fsync_seconds`.
    #[arg(long, env = "CAIRN_WAL_SYNC", value_enum, default_value = "always")]
    pub wal_sync: WalSync,
    /// How often the head is flushed to blocks and covered WAL segments are deleted
    /// (Prometheus duration). Counted in `cairn_storage_flushes_total`.
    #[arg(long, env = "CAIRN_FLUSH_INTERVAL", default_value = "5m", value_parser = cairn_common::duration::parse_duration)]
    pub flush_interval: Duration,
    /// Flush earlier when the head holds more samples than this (0 = only on the timer):
    /// bounds the memory of uncompressed samples (16 bytes each) under fast ingestion or
    /// a backfill. Counted in `cairn_storage_flushes_total`.
    #[arg(long, env = "CAIRN_HEAD_MAX_SAMPLES", default_value_t = 2_000_000)]
    pub head_max_samples: usize,
    /// Largest gRPC request a node accepts, in bytes (insert batches). Larger ones fail
    /// with RESOURCE_EXHAUSTED.
    #[arg(long, env = "CAIRN_GRPC_MAX_RECV_BYTES", default_value_t = 64 << 20)]
    pub grpc_max_recv_bytes: usize,
    /// Memory budget of the series key → ID map in front of the index, bytes (about
    /// 56 bytes per series, keyed by a fingerprint of the key; 64 MiB holds ~1.2 million
    /// series). Series not written for a while are dropped from it and looked up in the
    /// index again.
    /// Reported in `cairn_storage_index_memory_bytes{part="series_cache"}`.
    #[arg(long, env = "CAIRN_SERIES_CACHE_MAX_BYTES", default_value_t = crate::engine::DEFAULT_SERIES_CACHE_BYTES)]
    pub series_cache_max_bytes: u64,
    /// Memory budget of the caches of index look-ups that searches repeat, bytes (0 turns
    /// them off): matchers → series IDs, and label names and values (a quarter each;
    /// dropped when a series is created, a series' first sample of a day is indexed, or
    /// retention drops days), and series ID → key (half). Reported in
    /// `cairn_storage_index_memory_bytes{part="search_cache"}`.
    #[arg(long, env = "CAIRN_INDEX_CACHE_MAX_BYTES", default_value_t = crate::engine::DEFAULT_INDEX_CACHE_BYTES)]
    pub index_cache_max_bytes: u64,
}

impl StorageConfig {
    /// A configuration for tests and embedding: `data_dir`, loopback port 0 for both
    /// listeners, 31 days of retention, fsync always, 5-minute flushes.
    pub fn for_dir(data_dir: impl Into<PathBuf>) -> Self {
        StorageConfig {
            data_dir: data_dir.into(),
            grpc_listen: "127.0.0.1:0".to_string(),
            http_listen: "127.0.0.1:0".to_string(),
            retention: Duration::from_secs(31 * 86_400),
            listen_addr_file: None,
            wal_sync: WalSync::Always,
            flush_interval: Duration::from_secs(300),
            head_max_samples: 2_000_000,
            series_cache_max_bytes: crate::engine::DEFAULT_SERIES_CACHE_BYTES,
            index_cache_max_bytes: crate::engine::DEFAULT_INDEX_CACHE_BYTES,
            grpc_max_recv_bytes: 64 << 20,
        }
    }
}
