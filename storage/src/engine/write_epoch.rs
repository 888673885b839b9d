//! The node's write epoch: a number that changes whenever data a query may already have
//! read changes, so that a select node can tell whether a cached query result is still
//! exact.
//!
//! Query results for times older than a few minutes stay the same unless a sample older
//! than that arrives (a Prometheus catching up after an outage, a backfill), or a
//! partition is dropped. The node counts such events: the epoch starts at the node's
//! start time in nanoseconds since the epoch (so a restarted node never repeats an
//! earlier value), and goes up by one after each write holding a sample older than
//! [`LATE_WRITE_MS`] is in the head, and after each retention drop. A search reads it
//! before it reads any data, and sends it in the `cairn_common::grpc::WRITE_EPOCH_HEADER`
//! response header.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use cairn_common::grpc::LATE_WRITE_MS;

/// The epoch counter, shared by the engine and the writes it hands out.
#[derive(Clone, Debug)]
pub(crate) struct WriteEpoch(Arc<AtomicU64>);

impl WriteEpoch {
    /// Starts at the current time in nanoseconds since the Unix epoch.
    pub(crate) fn new() -> Self {
        let start = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1);
        WriteEpoch(Arc::new(AtomicU64::new(start)))
    }

    /// The current value. Read it before reading data: a change made visible before the
    /// read is counted in the value, one made after shows as a later value.
    pub(crate) fn get(&self) -> u64 {
        self.0.load(Ordering::Acquire)
    }

    /// Counts a change; call it after the changed data is visible to searches.
    pub(crate) fn bump(&self) {
        self.0.fetch_add(1, Ordering::AcqRel);
    }
}

/// Whether a write whose oldest sample is at `oldest_ms` (`None`: no sample) is late at
/// `now_ms`: that sample is at least [`LATE_WRITE_MS`] older than `now_ms`.
pub(crate) fn is_late(oldest_ms: Option<i64>, now_ms: i64) -> bool {
    oldest_ms.is_some_and(|t| t <= now_ms.saturating_sub(LATE_WRITE_MS))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_is_late_when_a_sample_is_older_than_the_bound() {
        let now = 10 * 60_000;
        assert!(!is_late(Some(now - LATE_WRITE_MS + 1), now));
        assert!(is_late(Some(now - LATE_WRITE_MS), now));
        assert!(!is_late(None, now));
    }

    #[test]
    fn the_epoch_goes_up_and_a_new_one_starts_past_the_old() {
        let a = WriteEpoch::new();
        let first = a.get();
        a.bump();
        assert_eq!(a.get(), first + 1);
        std::thread::sleep(std::time::Duration::from_millis(1));
        let b = WriteEpoch::new();
        assert!(b.get() > first + 1, "a restarted node's epoch starts past the old one");
    }
}
