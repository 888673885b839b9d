//! Merging the small blocks that periodic flushes leave in a partition: for every series
//! with more than one block in a closed day, the blocks are decoded, merged (a later
//! flush wins for a timestamp), re-encoded into as few blocks as possible and written
//! under a new sequence number, with the old keys deleted in the same atomic batch.
//!
//! A flush marks the days it writes as dirty (`dirty_YYYYMMDD` in the default column
//! family, in its own batch); compaction clears the mark. The caller keeps flushes and
//! compactions from overlapping, so a compaction never outranks samples it did not see.

use rocksdb::{IteratorMode, WriteBatch};

use crate::block::{self, Sample};
use crate::error::StorageError;
use crate::head::sort_dedup;
use crate::partitions::{FLUSH_SEQ_KEY, Partitions, block_key, cf_name, dirty_key};

/// Most samples in one block written by a compaction.
pub(crate) const MAX_BLOCK_SAMPLES: usize = 8192;
/// Series merged per write batch (bounds memory).
const SERIES_PER_BATCH: usize = 256;

/// The blocks of one series: key, sequence number, samples.
type Group = Vec<(Box<[u8]>, u64, Vec<Sample>)>;

/// What a compaction did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CompactStats {
    /// Series whose blocks were merged.
    pub series: u64,
    /// Blocks before.
    pub blocks_in: u64,
    /// Blocks after.
    pub blocks_out: u64,
}

impl Partitions {
    /// Days marked dirty by a flush, ascending.
    pub(crate) fn dirty_days(&self) -> Vec<u32> {
        self.days()
            .into_iter()
            .filter(|d| matches!(self.db.get(dirty_key(*d)), Ok(Some(_))))
            .collect()
    }

    /// Merges the blocks of each series of the partition of `day` under sequence number
    /// `seq` (greater than every earlier one), then clears the day's dirty mark.
    pub(crate) fn compact(&self, day: u32, seq: u64) -> Result<CompactStats, StorageError> {
        let name = cf_name(day);
        let Some(cf) = self.db.cf_handle(&name) else {
            return Ok(CompactStats::default());
        };
        let mut stats = CompactStats::default();
        let mut batch = WriteBatch::default();
        let mut in_batch = 0usize;
        let mut group: Group = Vec::new();
        let mut group_id: Option<[u8; 8]> = None;
        let flush_group = |group: &mut Group, id: Option<[u8; 8]>, batch: &mut WriteBatch, stats: &mut CompactStats| {
            let Some(id) = id else { return 0 };
            if group.len() < 2 {
                group.clear();
                return 0;
            }
            group.sort_by_key(|g| g.1);
            stats.series += 1;
            stats.blocks_in += group.len() as u64;
            let mut all = Vec::new();
            for (key, _, s) in group.drain(..) {
                batch.delete_cf(&cf, key);
                all.extend(s);
            }
            let merged = sort_dedup(all);
            for chunk in merged.chunks(MAX_BLOCK_SAMPLES) {
                batch.put_cf(
                    &cf,
                    block_key(u64::from_be_bytes(id), chunk[0].0, seq),
                    block::encode(chunk),
                );
                stats.blocks_out += 1;
            }
            1
        };
        for r in self.db.iterator_cf(&cf, IteratorMode::Start) {
            let (k, v) = r?;
            let (Some(id), Some(s)) = (
                k.get(..8).and_then(|b| <[u8; 8]>::try_from(b).ok()),
                k.get(16..24).and_then(|b| <[u8; 8]>::try_from(b).ok()),
            ) else {
                return Err(StorageError::CorruptIndex(format!("block key in {name}")));
            };
            if group_id != Some(id) {
                in_batch += flush_group(&mut group, group_id, &mut batch, &mut stats);
                group_id = Some(id);
                if in_batch >= SERIES_PER_BATCH {
                    self.db.write(std::mem::take(&mut batch))?;
                    in_batch = 0;
                }
            }
            group.push((k, u64::from_be_bytes(s), block::decode(&v)?));
        }
        flush_group(&mut group, group_id, &mut batch, &mut stats);
        batch.put(FLUSH_SEQ_KEY, seq.to_be_bytes());
        batch.delete(dirty_key(day));
        self.db.write(batch)?;
        Ok(stats)
    }
}

#[cfg(test)]
mod tests {
    use crate::block::Sample;
    use crate::partitions::{NewBlock, Partitions};

    #[test]
    fn compaction_merges_blocks_and_keeps_the_latest_sample_per_timestamp() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (db, names) = crate::db::open(dir.path()).expect("db");
        let p = Partitions::new(db, &names);
        let day = 19_000u32;
        let t0 = i64::from(day) * crate::day::DAY_MS;
        let blk = |id: u64, s: &[Sample]| NewBlock {
            day,
            id,
            first_ts: s[0].0,
            bytes: crate::block::encode(s),
        };
        p.write(&[blk(1, &[(t0, 1), (t0 + 10, 2)]), blk(2, &[(t0, 9)])], 1)
            .expect("w1");
        p.write(&[blk(1, &[(t0 + 10, 3), (t0 + 20, 4)])], 2).expect("w2");
        assert_eq!(p.dirty_days(), vec![day]);
        let stats = p.compact(day, 3).expect("compact");
        assert_eq!((stats.series, stats.blocks_in, stats.blocks_out), (1, 2, 1));
        assert!(p.dirty_days().is_empty());
        let blocks = p.read(1, t0, t0 + 100).expect("read");
        assert_eq!(blocks, vec![(3, vec![(t0, 1), (t0 + 10, 3), (t0 + 20, 4)])]);
        assert_eq!(p.read(2, t0, t0 + 100).expect("read 2"), vec![(1, vec![(t0, 9)])]);
    }
}
