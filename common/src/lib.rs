//! What two or more of Cairn's services share.
//!
//! - [`labels`]: series labels and the canonical series key.
//! - [`tenant`]: VictoriaMetrics-style `accountID[:projectID]` tenants.
//! - [`matcher`]: label matchers (`=`, `!=`, `=~`, `!~`) as PromQL defines them.
//! - [`packed_keys`]: label sets packed for the insert → storage write.
//! - [`samples_le`]: samples in the fixed-width form of search answers.
//! - [`block`]: the block codec of stored samples, also the form of search answers.
//! - [`scan`]: whole-column checks (sortedness, staleness markers, counter resets).
//! - [`jump_hash`] and [`ring`]: which storage nodes own a series.
//! - [`rotating`]: a bounded two-generation map for caches of repeated look-ups.
//! - [`duration`]: Prometheus-style durations for flags (`31d`, `5m`).
//! - [`grpc`]: lazy gRPC clients for storage nodes.
//! - [`telemetry`], [`http`], [`listen_addr_file`], [`shutdown`]: service plumbing.

pub mod block;
pub mod duration;
pub mod error;
pub mod grpc;
pub mod http;
pub mod jump_hash;
pub mod labels;
pub mod listen_addr_file;
pub mod matcher;
pub mod packed_keys;
pub mod ring;
pub mod rotating;
pub mod samples_le;
pub mod scan;
pub mod shutdown;
pub mod telemetry;
pub mod tenant;

pub use error::{DurationError, MatcherError, TenantError};
pub use labels::{Label, Labels, METRIC_NAME};
pub use matcher::{MatchOp, Matcher};
pub use tenant::Tenant;

/// The staleness marker Prometheus writes when a series disappears: a NaN with this
/// exact bit pattern (`prometheus/model/value.StaleNaN`). Stored and moved bit-exactly.
pub const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;

/// Whether `v` is Prometheus' staleness marker (compares bits, not value).
pub fn is_stale_nan(v: f64) -> bool {
    v.to_bits() == STALE_NAN_BITS
}
