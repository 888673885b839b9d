//! When to merge small blocks into large ones (how: `partitions/merge.rs`).
//!
//! Each flush records, per partition and series, the samples and the oldest first
//! timestamp of the blocks it wrote (the *unmerged* blocks). A series is due for a merge
//! in a partition once its unmerged blocks hold [`DUE_SAMPLES`] samples, or once the
//! oldest of them starts more than [`DUE_AGE_MS`] before now (data time, so a past day
//! and late samples merge at the next run). This holds for the current day too, so large
//! blocks appear about an hour after the samples arrive instead of after midnight.
//!
//! Merges run in steps of at most [`STEP_SERIES`] series and about [`STEP_SAMPLES`]
//! unmerged samples, one atomic RocksDB batch each, and never take the flush lock for
//! the merge itself (sequence numbers keep a concurrent flush ranked above a merge). The
//! record of unmerged blocks is in memory; at start it is rebuilt from the partitions a
//! flush marked dirty.
//!
//! Metrics: `cairn_storage_blocks_merged_total` (input blocks),
//! `cairn_storage_merge_blocks_written_total`, `cairn_storage_merge_samples_total`,
//! `cairn_storage_merge_bytes_read_total` and `cairn_storage_merge_bytes_written_total`
//! (encoded bytes before and after), `cairn_storage_merge_step_seconds`,
//! `cairn_storage_merge_pending_series` (series with unmerged blocks).

use std::collections::BTreeSet;
use std::time::Instant;

use crate::engine::{Engine, FlushStats, now_ms};
use crate::error::StorageError;
use crate::partitions::NewBlock;
use crate::partitions::merge::{FINAL_SAMPLES, Unmerged};

/// A series' unmerged blocks in a partition are merged once they hold this many samples.
pub const DUE_SAMPLES: u64 = FINAL_SAMPLES as u64;
/// ... or once the oldest starts this long before now, ms (1 hour).
pub const DUE_AGE_MS: i64 = 3_600_000;
/// Most series merged in one step.
pub const STEP_SERIES: usize = 256;
/// A step takes no further series once its unmerged samples reach this.
pub const STEP_SAMPLES: u64 = 1 << 20;

/// What merges did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CompactStats {
    /// Series (per partition) whose blocks were merged.
    pub series: u64,
    /// Blocks read and deleted.
    pub blocks_in: u64,
    /// Blocks written.
    pub blocks_out: u64,
    /// Samples written (after removing duplicate timestamps).
    pub samples: u64,
    /// Encoded bytes of the blocks read.
    pub bytes_in: u64,
    /// Encoded bytes of the blocks written.
    pub bytes_out: u64,
}

impl CompactStats {
    fn add(&mut self, o: CompactStats) {
        self.series += o.series;
        self.blocks_in += o.blocks_in;
        self.blocks_out += o.blocks_out;
        self.samples += o.samples;
        self.bytes_in += o.bytes_in;
        self.bytes_out += o.bytes_out;
    }
}

impl Engine {
    /// Records the blocks a flush wrote as unmerged. Called with the flush lock held.
    pub(super) fn note_flushed(&self, blocks: &[NewBlock]) {
        let mut map = self.unmerged.lock();
        for b in blocks {
            let u = Unmerged {
                samples: b.samples as u64,
                oldest_ms: b.first_ts,
            };
            map.entry((b.day, b.id)).and_modify(|e| e.add(u)).or_insert(u);
        }
        metrics::gauge!("cairn_storage_merge_pending_series").set(map.len() as f64);
    }

    /// Rebuilds the record of unmerged blocks from the partitions marked dirty (at open).
    pub(super) fn load_unmerged(&self) -> Result<(), StorageError> {
        let mut map = self.unmerged.lock();
        for day in self.partitions.dirty_days()? {
            for (id, u) in self.partitions.unmerged(day)? {
                map.insert((day, id), u);
            }
        }
        metrics::gauge!("cairn_storage_merge_pending_series").set(map.len() as f64);
        Ok(())
    }

    /// Removes and returns the next step's series: due ones, or with `force` any.
    fn take_due(&self, now_ms: i64, force: bool) -> Vec<((u32, u64), Unmerged)> {
        let mut map = self.unmerged.lock();
        let old = now_ms.saturating_sub(DUE_AGE_MS);
        let mut keys = Vec::new();
        let mut samples = 0u64;
        for (k, u) in map.iter() {
            if keys.len() >= STEP_SERIES || samples >= STEP_SAMPLES {
                break;
            }
            if force || u.samples >= DUE_SAMPLES || u.oldest_ms < old {
                keys.push(*k);
                samples += u.samples;
            }
        }
        keys.into_iter()
            .filter_map(|k| map.remove(&k).map(|u| (k, u)))
            .collect()
    }

    /// One bounded merge step (see the module doc): the stats and the days touched, or
    /// `None` when no series is due. Errors: RocksDB or decoding errors; the series of
    /// the step stay recorded as unmerged.
    fn merge_step(&self, now_ms: i64, force: bool) -> Result<Option<(CompactStats, BTreeSet<u32>)>, StorageError> {
        let _one_at_a_time = self.merge_lock.lock();
        let taken = self.take_due(now_ms, force);
        if taken.is_empty() {
            return Ok(None);
        }
        let started = Instant::now();
        let series: Vec<(u32, u64)> = taken.iter().map(|(k, _)| *k).collect();
        let stats = match self.partitions.merge(&series) {
            Ok(s) => s,
            Err(e) => {
                let mut map = self.unmerged.lock();
                for (k, u) in taken {
                    map.entry(k).and_modify(|e| e.add(u)).or_insert(u);
                }
                return Err(e);
            }
        };
        let days: BTreeSet<u32> = series.iter().map(|(d, _)| *d).collect();
        self.clear_dirty_days(&days)?;
        metrics::counter!("cairn_storage_blocks_merged_total").increment(stats.blocks_in);
        metrics::counter!("cairn_storage_merge_blocks_written_total").increment(stats.blocks_out);
        metrics::counter!("cairn_storage_merge_samples_total").increment(stats.samples);
        metrics::counter!("cairn_storage_merge_bytes_read_total").increment(stats.bytes_in);
        metrics::counter!("cairn_storage_merge_bytes_written_total").increment(stats.bytes_out);
        metrics::histogram!("cairn_storage_merge_step_seconds").record(started.elapsed().as_secs_f64());
        metrics::gauge!("cairn_storage_merge_pending_series").set(self.unmerged.lock().len() as f64);
        Ok(Some((stats, days)))
    }

    /// Clears the dirty mark of each of `days` that no longer has unmerged series, unless
    /// a flush is running (it may be marking them; the next step clears them).
    fn clear_dirty_days(&self, days: &BTreeSet<u32>) -> Result<(), StorageError> {
        let Some(_no_flush) = self.flush_lock.try_lock() else {
            return Ok(());
        };
        let map = self.unmerged.lock();
        for &day in days {
            if map.range((day, 0)..=(day, u64::MAX)).next().is_none() {
                self.partitions.clear_dirty(day)?;
            }
        }
        Ok(())
    }

    /// Merges every series that is due at `now_ms` (ms), step by step, in every
    /// partition (the current day's too). Runs after each periodic flush; flushes and
    /// writes continue meanwhile. Errors: RocksDB or decoding errors.
    pub fn compact(&self, now_ms: i64) -> Result<CompactStats, StorageError> {
        let started = Instant::now();
        let mut total = CompactStats::default();
        while let Some((s, _)) = self.merge_step(now_ms, false)? {
            total.add(s);
        }
        if total.series > 0 {
            metrics::gauge!("cairn_storage_partition_bytes").set(self.partitions.bytes() as f64);
            tracing::info!(
                ?total,
                took_ms = started.elapsed().as_millis() as u64,
                "merged small blocks"
            );
        }
        Ok(total)
    }

    /// Leaves the data in its final, compact form: flushes the head, merges every
    /// series with unmerged blocks whether due or not, then runs a RocksDB manual
    /// compaction of the partitions touched and of the index, so that the disk holds no
    /// deleted blocks. For benchmarks and tests (`POST /internal/force_merge`); costly on
    /// a large node. Errors: as [`Engine::flush`] and [`Engine::compact`].
    pub fn force_merge(&self) -> Result<(FlushStats, CompactStats), StorageError> {
        let started = Instant::now();
        let flushed = self.flush()?;
        let now = now_ms();
        let mut total = CompactStats::default();
        let mut touched = BTreeSet::new();
        touched.extend(self.partitions.dirty_days()?);
        while let Some((s, days)) = self.merge_step(now, true)? {
            total.add(s);
            touched.extend(days);
        }
        let touched: Vec<u32> = touched.into_iter().collect();
        self.partitions.compact_storage(&touched);
        metrics::gauge!("cairn_storage_partition_bytes").set(self.partitions.bytes() as f64);
        tracing::info!(
            ?flushed,
            merged = ?total,
            took_ms = started.elapsed().as_millis() as u64,
            "forced a merge"
        );
        Ok((flushed, total))
    }
}
