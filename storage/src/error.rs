//! Errors of the storage node, and the one place that maps them to gRPC status codes.

use thiserror::Error;

pub use cairn_common::block::CodecError;

/// Everything that can go wrong in a storage node.
#[derive(Debug, Error)]
pub enum StorageError {
    /// A file or directory operation failed; `what` names the file and the operation.
    #[error("{what}: {source}")]
    Io {
        /// The operation and path, e.g. `open WAL segment /data/wal/00000001.wal`.
        what: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// RocksDB (index or partitions) failed.
    #[error("rocksdb: {0}")]
    RocksDb(#[from] rocksdb::Error),
    /// A stored block or index entry does not decode.
    #[error("corrupt data on disk: {0}")]
    Codec(#[from] CodecError),
    /// An index entry does not decode; the string names the entry.
    #[error("corrupt index entry: {0}")]
    CorruptIndex(String),
    /// The request is malformed; the string names the problem.
    #[error("invalid request: {0}")]
    InvalidArgument(String),
    /// A search matched more series than the request allows.
    #[error("the search matches more than max_series={limit} series; narrow the selector or raise the limit")]
    TooManySeries {
        /// The request's `max_series`.
        limit: u64,
    },
    /// The WAL writer has stopped (the node is shutting down or a write failed).
    #[error("the WAL writer has stopped: {0}")]
    WalClosed(String),
    /// A background task died.
    #[error("internal error: {0}")]
    Internal(String),
}

impl StorageError {
    /// Wraps an I/O error with the operation and path it came from.
    pub fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        StorageError::Io {
            what: what.into(),
            source,
        }
    }

    /// The gRPC status for this error. Client retries make sense for `UNAVAILABLE`
    /// (WAL closed during shutdown) and `INTERNAL`; never for `INVALID_ARGUMENT` or
    /// `RESOURCE_EXHAUSTED`.
    pub fn to_status(&self) -> tonic::Status {
        match self {
            StorageError::InvalidArgument(m) => tonic::Status::invalid_argument(m.clone()),
            StorageError::TooManySeries { .. } => tonic::Status::resource_exhausted(self.to_string()),
            StorageError::WalClosed(_) => tonic::Status::unavailable(self.to_string()),
            _ => tonic::Status::internal(self.to_string()),
        }
    }
}

impl From<StorageError> for tonic::Status {
    fn from(e: StorageError) -> Self {
        e.to_status()
    }
}
