//! Merging the small blocks of one series in one partition into large ones.
//!
//! Each flush writes one block per series and day (about 300 samples at 1 s scrapes and
//! 5-minute flushes). A block of at least [`FINAL_SAMPLES`] samples is *final*: it is
//! rewritten only when a later block overlaps its time range (a late sample). Every other
//! block is *pending*. Merging a series takes all its pending blocks plus every final
//! block that overlaps another block, decodes them, merges them by timestamp (the block
//! with the higher sequence number wins a timestamp), cuts the result into blocks of at
//! most [`MAX_BLOCK_SAMPLES`] samples of about equal size (never across a final block
//! left in place), and writes them in one atomic batch that also deletes the inputs.
//!
//! Sequence numbers: flushes use even numbers, merges odd ones. A merge writes its output
//! under the largest input sequence number made odd: above every input, below every
//! later flush. So a merge needs no lock against flushes: a block a flush writes while a
//! merge runs is not among its inputs and outranks its output. Blocks with an even
//! sequence number are the *unmerged* ones whose samples and age decide when a merge is
//! due (`engine/merge.rs`).

use rocksdb::{BottommostLevelCompaction, CompactOptions, Direction, IteratorMode, WriteBatch};

use crate::block::{self, Sample};
use crate::engine::CompactStats;
use crate::error::StorageError;
use crate::head::sort_dedup;
use crate::partitions::{Partitions, block_key, cf_name};

/// Most samples in one block written by a merge.
pub(crate) const MAX_BLOCK_SAMPLES: usize = 8192;
/// Blocks with at least this many samples are final (see the module doc).
pub(crate) const FINAL_SAMPLES: usize = 3600;

/// The first flush sequence number after `last`: the next even number.
pub(crate) fn next_flush_seq(last: u64) -> u64 {
    (last | 1) + 1
}

/// Whether `seq` was written by a flush (even) rather than a merge (odd).
fn is_flush_seq(seq: u64) -> bool {
    seq & 1 == 0
}

/// The unmerged (flush-written) blocks of one series in one partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Unmerged {
    /// Samples in those blocks.
    pub(crate) samples: u64,
    /// The smallest first timestamp among them, ms.
    pub(crate) oldest_ms: i64,
}

impl Unmerged {
    /// Adds `other` (blocks flushed later, or put back after a failed merge).
    pub(crate) fn add(&mut self, other: Unmerged) {
        self.samples += other.samples;
        self.oldest_ms = self.oldest_ms.min(other.oldest_ms);
    }
}

/// One stored block of a series: its key, sequence number, header facts and bytes.
struct Stored {
    key: Box<[u8]>,
    seq: u64,
    count: usize,
    first: i64,
    last: i64,
    bytes: Box<[u8]>,
}

fn key_parts(k: &[u8], name: &str) -> Result<(u64, u64), StorageError> {
    let part = |r: std::ops::Range<usize>| k.get(r).and_then(|b| <[u8; 8]>::try_from(b).ok());
    match (part(0..8), part(16..24)) {
        (Some(id), Some(seq)) if k.len() == 24 => Ok((u64::from_be_bytes(id), u64::from_be_bytes(seq))),
        _ => Err(StorageError::CorruptIndex(format!("block key in {name}"))),
    }
}

/// Which blocks a merge takes: every pending block, and every final block that overlaps
/// another block. `None` when fewer than two blocks qualify (nothing to merge).
fn plan(blocks: &[Stored]) -> Option<Vec<bool>> {
    let overlaps = |i: usize| {
        let b = &blocks[i];
        blocks
            .iter()
            .enumerate()
            .any(|(j, o)| j != i && o.first <= b.last && b.first <= o.last)
    };
    let take: Vec<bool> = (0..blocks.len())
        .map(|i| blocks[i].count < FINAL_SAMPLES || overlaps(i))
        .collect();
    (take.iter().filter(|t| **t).count() >= 2).then_some(take)
}

/// Cuts sorted `samples` into blocks of at most [`MAX_BLOCK_SAMPLES`], of about equal
/// size, never putting samples on both sides of a timestamp in `barriers` (sorted first
/// timestamps of the final blocks left in place) into one block.
fn chunks<'a>(samples: &'a [Sample], barriers: &[i64]) -> Vec<&'a [Sample]> {
    let mut out = Vec::new();
    let mut rest = samples;
    let mut cuts = barriers.iter();
    while !rest.is_empty() {
        let n = match cuts.next() {
            Some(&b) => rest.partition_point(|s| s.0 < b),
            None => rest.len(),
        };
        let (segment, tail) = rest.split_at(n);
        if !segment.is_empty() {
            let parts = segment.len().div_ceil(MAX_BLOCK_SAMPLES);
            out.extend(segment.chunks(segment.len().div_ceil(parts)));
        }
        rest = tail;
    }
    out
}

impl Partitions {
    /// The blocks of series `id` in the partition `name`, in key order.
    fn series_blocks(&self, name: &str, id: u64) -> Result<Vec<Stored>, StorageError> {
        let Some(cf) = self.db.cf_handle(name) else {
            return Ok(Vec::new());
        };
        let prefix = id.to_be_bytes();
        let mut out = Vec::new();
        for r in self.db.iterator_cf_opt(
            &cf,
            super::series_read_options(id),
            IteratorMode::From(&prefix, Direction::Forward),
        ) {
            let (key, bytes) = r?;
            if !key.starts_with(&prefix) {
                break;
            }
            let (_, seq) = key_parts(&key, name)?;
            let (count, first, last) = block::summary(&bytes)?;
            out.push(Stored {
                key,
                seq,
                count,
                first,
                last,
                bytes,
            });
        }
        Ok(out)
    }

    /// The series of the partition of `day` that have unmerged (flush-written) blocks,
    /// reading keys and block headers only (used at start for days a flush wrote since their last merge).
    pub(crate) fn unmerged(&self, day: u32) -> Result<Vec<(u64, Unmerged)>, StorageError> {
        let name = cf_name(day);
        let Some(cf) = self.db.cf_handle(&name) else {
            return Ok(Vec::new());
        };
        let mut out: Vec<(u64, Unmerged)> = Vec::new();
        for r in self
            .db
            .iterator_cf_opt(&cf, super::scan_read_options(), IteratorMode::Start)
        {
            let (key, bytes) = r?;
            let (id, seq) = key_parts(&key, &name)?;
            let (count, first, _) = block::summary(&bytes)?;
            if !is_flush_seq(seq) {
                continue;
            }
            let u = Unmerged {
                samples: count as u64,
                oldest_ms: first,
            };
            match out.last_mut() {
                Some((last_id, acc)) if *last_id == id => acc.add(u),
                _ => out.push((id, u)),
            }
        }
        Ok(out)
    }

    /// Merges the blocks of each `(day, series ID)` of `series` (see the module doc) and
    /// writes the result in one batch (not synced: a lost batch leaves the inputs in
    /// place). A series with fewer than two blocks that qualify is left as it is.
    /// Errors: RocksDB errors, undecodable blocks or keys; nothing is written then.
    pub(crate) fn merge(&self, series: &[(u32, u64)]) -> Result<CompactStats, StorageError> {
        let mut batch = WriteBatch::default();
        let mut stats = CompactStats::default();
        for &(day, id) in series {
            self.merge_series(day, id, &mut batch, &mut stats)?;
        }
        if !batch.is_empty() {
            self.db.write(batch)?;
        }
        Ok(stats)
    }

    /// Adds the merge of series `id` in the partition of `day` to `batch` and `stats`.
    fn merge_series(
        &self,
        day: u32,
        id: u64,
        batch: &mut WriteBatch,
        stats: &mut CompactStats,
    ) -> Result<(), StorageError> {
        let name = cf_name(day);
        let blocks = self.series_blocks(&name, id)?;
        let Some(take) = plan(&blocks) else {
            return Ok(());
        };
        let Some(cf) = self.db.cf_handle(&name) else {
            return Ok(());
        };
        let mut inputs: Vec<&Stored> = blocks.iter().zip(&take).filter(|(_, t)| **t).map(|(b, _)| b).collect();
        let mut barriers: Vec<i64> = blocks
            .iter()
            .zip(&take)
            .filter(|(_, t)| !**t)
            .map(|(b, _)| b.first)
            .collect();
        barriers.sort_unstable();
        // Stable: blocks of one sequence number do not overlap, so their order is moot.
        inputs.sort_by_key(|b| b.seq);
        let out_seq = inputs.iter().map(|b| b.seq).max().unwrap_or(0) | 1;
        let mut all = Vec::with_capacity(inputs.iter().map(|b| b.count).sum());
        for b in &inputs {
            all.extend(block::decode(&b.bytes)?);
            batch.delete_cf(&cf, &b.key);
            stats.bytes_in += b.bytes.len() as u64;
        }
        stats.series += 1;
        stats.blocks_in += inputs.len() as u64;
        let merged = sort_dedup(all);
        stats.samples += merged.len() as u64;
        // Puts after the deletes: an output may reuse an input's key.
        for chunk in chunks(&merged, &barriers) {
            let bytes = block::encode_unpacked(chunk);
            stats.bytes_out += bytes.len() as u64;
            stats.blocks_out += 1;
            batch.put_cf(&cf, block_key(id, chunk[0].0, out_seq), bytes);
        }
        Ok(())
    }

    /// Runs a RocksDB manual compaction of the partitions of `days` and of every other
    /// column family that is not a partition (index, postings, default), so that deleted
    /// and overwritten blocks leave the disk.
    pub(crate) fn compact_storage(&self, days: &[u32]) {
        let none = None::<&[u8]>;
        // Forced: a file moved to the last level without a rewrite keeps its tombstones.
        let mut opts = CompactOptions::default();
        opts.set_bottommost_level_compaction(BottommostLevelCompaction::Force);
        let index = [
            crate::db::CF_SERIES_IDS,
            crate::db::CF_SERIES_KEYS,
            crate::db::CF_POSTINGS,
        ];
        let names = days.iter().map(|d| cf_name(*d)).chain(index.map(String::from));
        for name in names {
            if let Some(cf) = self.db.cf_handle(&name) {
                self.db.compact_range_cf_opt(&cf, none, none, &opts);
            }
        }
        self.db.compact_range_opt(none, none, &opts);
    }
}

#[cfg(test)]
mod tests;
