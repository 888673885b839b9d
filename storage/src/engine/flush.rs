//! Flush (head → blocks in day partitions, then delete the WAL segments covered) and
//! retention (drop whole expired partitions).

use std::time::Instant;

use crate::block;
use crate::day::day_of;
use crate::engine::Engine;
use crate::engine::commit::Command;
use crate::error::StorageError;
use crate::head::sort_dedup;
use crate::partitions::NewBlock;
use crate::partitions::merge::{MAX_BLOCK_SAMPLES, next_flush_seq};
use crate::wal;

/// What a flush did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct FlushStats {
    /// Series written.
    pub series: u64,
    /// Samples written (after removing duplicate timestamps).
    pub samples: u64,
    /// Blocks written.
    pub blocks: u64,
    /// Encoded bytes written.
    pub bytes: u64,
    /// WAL segments deleted.
    pub wal_segments_deleted: u64,
}

impl Engine {
    /// Writes every sample now in the head to blocks (one or more per series and UTC
    /// day), makes the index durable, then deletes the WAL segments whose samples are all
    /// in blocks. Concurrent flushes run one after the other. Writes continue meanwhile.
    /// Errors: RocksDB or file errors; the head and WAL are then left as they were.
    pub fn flush(&self) -> Result<FlushStats, StorageError> {
        let _one_at_a_time = self.flush_lock.lock();
        let started = Instant::now();
        let (tx, rx) = crossbeam_channel::bounded(1);
        self.send(Command::Rotate(tx))?;
        let (first_kept, marks) = rx
            .recv()
            .map_err(|_| StorageError::WalClosed("the commit thread has stopped".into()))??;
        let seq = next_flush_seq(self.flush_seq.load(std::sync::atomic::Ordering::SeqCst));
        let mut stats = FlushStats::default();
        let mut blocks = Vec::new();
        let mut flushed = Vec::with_capacity(marks.iter().map(Vec::len).sum());
        // One head shard copied at a time: the flush holds no copy of the whole head.
        let copies = marks
            .iter()
            .enumerate()
            .flat_map(|(shard, m)| self.head.copy_marked(shard, m));
        for (id, samples) in copies {
            flushed.push((id, samples.len()));
            let samples = sort_dedup(samples);
            stats.series += 1;
            stats.samples += samples.len() as u64;
            let mut rest = samples.as_slice();
            while let Some(&(first_ts, _)) = rest.first() {
                let day = day_of(first_ts);
                let same_day = rest.iter().take_while(|s| day_of(s.0) == day).count();
                let n = same_day.min(MAX_BLOCK_SAMPLES);
                blocks.push(NewBlock {
                    day,
                    id,
                    first_ts,
                    samples: n,
                    bytes: block::encode_unpacked(&rest[..n]),
                });
                rest = &rest[n..];
            }
        }
        stats.blocks = blocks.len() as u64;
        // Series records in the WAL segments about to go are in the index: make it durable.
        self.index.sync()?;
        stats.bytes = self.partitions.write(&blocks, seq)?;
        self.flush_seq.store(seq, std::sync::atomic::Ordering::SeqCst);
        self.note_flushed(&blocks);
        self.head.remove_flushed(&flushed);
        // Keep the memory of indexed days small: older days are re-merged (idempotently)
        // if late samples arrive for them.
        let recent = day_of(crate::engine::now_ms()).saturating_sub(1);
        {
            let mut days = self.days_indexed.lock();
            days.written.retain(|&(_, d)| d >= recent);
            if days.written.len() > super::usage::MAX_INDEXED_DAYS {
                days.written.clear();
            }
        }
        self.report_usage();
        stats.wal_segments_deleted = wal::delete_segments_before(&self.wal_dir, first_kept)? as u64;
        metrics::counter!("cairn_storage_flushes_total").increment(1);
        metrics::counter!("cairn_storage_blocks_written_total").increment(stats.blocks);
        metrics::counter!("cairn_storage_block_bytes_written_total").increment(stats.bytes);
        metrics::histogram!("cairn_storage_flush_duration_seconds").record(started.elapsed().as_secs_f64());
        metrics::gauge!("cairn_storage_active_series").set(self.head.series_count() as f64);
        metrics::gauge!("cairn_storage_partitions").set(self.partitions.days().len() as f64);
        metrics::gauge!("cairn_storage_partition_bytes").set(self.partitions.bytes() as f64);
        tracing::debug!(
            ?stats,
            took_ms = started.elapsed().as_millis() as u64,
            "flushed the head"
        );
        Ok(stats)
    }

    /// Drops the partitions and per-day postings of every UTC day that ended before
    /// `now_ms` minus the retention. Returns the dropped days.
    pub fn apply_retention(&self, now_ms: i64) -> Result<Vec<u32>, StorageError> {
        let first_kept = day_of(now_ms.saturating_sub(self.retention_ms));
        let dropped = self.partitions.drop_before(first_kept)?;
        self.index.drop_days_before(first_kept)?;
        self.days_indexed.lock().written.retain(|&(_, d)| d >= first_kept);
        self.unmerged.lock().retain(|(d, _), _| *d >= first_kept);
        if !dropped.is_empty() {
            self.write_epoch.bump();
            metrics::counter!("cairn_storage_partitions_dropped_total").increment(dropped.len() as u64);
            metrics::gauge!("cairn_storage_partitions").set(self.partitions.days().len() as f64);
            tracing::info!(days = ?dropped.iter().map(|d| crate::day::format_day(*d)).collect::<Vec<_>>(), "dropped partitions past retention");
        }
        Ok(dropped)
    }

    /// Samples in the head now (for logs and tests).
    pub fn head_samples(&self) -> usize {
        self.head.sample_count()
    }
}
