//! Cairn's wire formats, generated from `proto/*.proto` at build time.
//!
//! - [`storage`]: the gRPC API between insert/select and storage nodes.
//! - [`prometheus`]: Prometheus remote write 1.0 (`prompb`), as received by insert.

/// The insert→storage and select→storage gRPC API (`cairn.storage.v1`).
#[allow(clippy::all, missing_docs)]
pub mod storage {
    tonic::include_proto!("cairn.storage.v1");
}

/// Prometheus remote write 1.0 messages (`prometheus` package of `prompb`).
#[allow(clippy::all, missing_docs)]
pub mod prometheus {
    tonic::include_proto!("prometheus");
}

// `prost` and `tonic-prost` are used by the generated code only.
use prost as _;
use tonic_prost as _;
