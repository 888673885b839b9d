//! Time partitions: one RocksDB column family per UTC day, `blocks_YYYYMMDD`, holding
//! the compressed blocks of that day.
//!
//! Block key: series ID (u64 BE) | first timestamp (i64 with the sign bit flipped, BE,
//! so keys sort by time) | flush sequence number (u64 BE). The sequence number keeps two
//! flushes that start at the same timestamp apart and orders them: for a timestamp in
//! several blocks, the block of the later flush wins. Flushes use even sequence numbers,
//! merges of small blocks ([`merge`]) odd ones. Retention drops whole column families.

pub(crate) mod merge;

use std::collections::BTreeSet;
use std::sync::Arc;

use parking_lot::RwLock;
use rocksdb::{ReadOptions, WriteBatch, WriteOptions};

use crate::block::{self, Sample};
use crate::day::{day_of, format_day, parse_day};
use crate::db::{Db, PARTITION_PREFIX, partition_options};
use crate::error::StorageError;

/// Read options of an iterator over the blocks of series up to `id`: it stops at the
/// series' last key instead of reading on into the next SST block (up to 1 MiB to
/// decompress).
pub(crate) fn series_read_options(id: u64) -> ReadOptions {
    let mut o = ReadOptions::default();
    if let Some(next) = id.checked_add(1) {
        o.set_iterate_upper_bound(next.to_be_bytes());
    }
    o
}

/// Read options of a scan that reads a whole partition once with one iterator (the
/// look for unmerged blocks at start): the SST blocks it reads are not added to the
/// block cache, which they would fill with blocks no search asked for. Not for reads
/// that open one iterator per series: each would decompress its SST block again.
pub(crate) fn scan_read_options() -> ReadOptions {
    let mut o = ReadOptions::default();
    o.fill_cache(false);
    o
}

/// A stored block as read: its flush sequence number and its bytes.
pub(crate) type StoredBlock = (u64, Vec<u8>);

/// Key in the default column family holding the last flush sequence number.
const FLUSH_SEQ_KEY: &[u8] = b"flush_seq";

/// Key in the default column family marking a day whose partition a flush wrote to
/// since its last compaction.
fn dirty_key(day: u32) -> Vec<u8> {
    format!("dirty_{}", format_day(day)).into_bytes()
}

/// One block to write: day, series ID, first timestamp (ms), sample count, encoded block.
pub(crate) struct NewBlock {
    pub(crate) day: u32,
    pub(crate) id: u64,
    pub(crate) first_ts: i64,
    pub(crate) samples: usize,
    pub(crate) bytes: Vec<u8>,
}

/// The set of partitions and the handle to write and read them.
pub(crate) struct Partitions {
    db: Arc<Db>,
    days: RwLock<BTreeSet<u32>>,
}

fn cf_name(day: u32) -> String {
    format!("{PARTITION_PREFIX}{}", format_day(day))
}

fn block_key(id: u64, first_ts: i64, seq: u64) -> [u8; 24] {
    let mut k = [0u8; 24];
    k[..8].copy_from_slice(&id.to_be_bytes());
    k[8..16].copy_from_slice(&((first_ts as u64) ^ (1 << 63)).to_be_bytes());
    k[16..].copy_from_slice(&seq.to_be_bytes());
    k
}

impl Partitions {
    /// Wraps the partition column families found at open (`names`); names that do not
    /// parse as a day are logged and ignored.
    pub(crate) fn new(db: Arc<Db>, names: &[String]) -> Self {
        let mut days = BTreeSet::new();
        for n in names {
            match n.strip_prefix(PARTITION_PREFIX).and_then(parse_day) {
                Some(d) => {
                    days.insert(d);
                }
                None => {
                    tracing::warn!(column_family = %n, "ignoring a partition whose name is not a date")
                }
            }
        }
        Partitions {
            db,
            days: RwLock::new(days),
        }
    }

    /// The last flush sequence number stored (0 when none).
    pub(crate) fn last_flush_seq(&self) -> Result<u64, StorageError> {
        match self.db.get(FLUSH_SEQ_KEY)? {
            None => Ok(0),
            Some(v) => Ok(u64::from_be_bytes(v.as_slice().try_into().map_err(|_| {
                StorageError::CorruptIndex("flush sequence number is not 8 bytes".into())
            })?)),
        }
    }

    /// The days that have a partition, ascending.
    pub(crate) fn days(&self) -> Vec<u32> {
        self.days.read().iter().copied().collect()
    }

    fn ensure(&self, day: u32) -> Result<(), StorageError> {
        if self.days.read().contains(&day) {
            return Ok(());
        }
        let mut days = self.days.write();
        if !days.contains(&day) {
            self.db.create_cf(cf_name(day), &partition_options())?;
            days.insert(day);
        }
        Ok(())
    }

    /// Writes `blocks` and the flush sequence number `seq` in one synced batch.
    /// Returns the bytes written.
    pub(crate) fn write(&self, blocks: &[NewBlock], seq: u64) -> Result<u64, StorageError> {
        let mut batch = WriteBatch::default();
        let mut bytes = 0u64;
        for b in blocks {
            self.ensure(b.day)?;
            let name = cf_name(b.day);
            let cf = self
                .db
                .cf_handle(&name)
                .ok_or_else(|| StorageError::Internal(format!("partition {name} missing")))?;
            batch.put_cf(&cf, block_key(b.id, b.first_ts, seq), &b.bytes);
            batch.put(dirty_key(b.day), b"");
            bytes += b.bytes.len() as u64;
        }
        batch.put(FLUSH_SEQ_KEY, seq.to_be_bytes());
        let mut wo = WriteOptions::default();
        wo.set_sync(true);
        self.db.write_opt(batch, &wo)?;
        Ok(bytes)
    }

    /// The samples of series `id` in blocks that overlap `[start_ms, end_ms]`, as
    /// `(flush seq, samples)` per block in key order ([`Partitions::read_raw`], decoded).
    /// Samples are not cut to the range.
    pub(crate) fn read(&self, id: u64, start_ms: i64, end_ms: i64) -> Result<Vec<(u64, Vec<Sample>)>, StorageError> {
        self.read_raw(id, start_ms, end_ms)?
            .into_iter()
            .map(|(seq, bytes)| Ok((seq, block::decode(&bytes)?)))
            .collect()
    }

    /// The stored blocks of series `id` that overlap `[start_ms, end_ms]` (whole, as
    /// stored), with their sequence numbers, day by day and by first timestamp.
    pub(crate) fn read_raw(&self, id: u64, start_ms: i64, end_ms: i64) -> Result<Vec<StoredBlock>, StorageError> {
        Ok(self.read_raw_many(&[id], start_ms, end_ms)?.pop().unwrap_or_default())
    }

    /// [`Partitions::read_raw`] for many series at once (`ids` ascending): one iterator
    /// per day, moving forward from series to series, instead of one per series and day.
    pub(crate) fn read_raw_many(
        &self,
        ids: &[u64],
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<Vec<StoredBlock>>, StorageError> {
        let mut out: Vec<Vec<StoredBlock>> = vec![Vec::new(); ids.len()];
        let (a, b) = (day_of(start_ms), day_of(end_ms));
        let days: Vec<u32> = self.days.read().range(a..=b.max(a)).copied().collect();
        // Iterators stop at the last series' last key.
        let bound = ids.iter().max().copied().unwrap_or(0);
        for day in days {
            let name = cf_name(day);
            // Dropped by retention since the list was taken.
            let Some(cf) = self.db.cf_handle(&name) else {
                continue;
            };
            let mut it = self.db.raw_iterator_cf_opt(&cf, series_read_options(bound));
            for (i, id) in ids.iter().enumerate() {
                let prefix = id.to_be_bytes();
                it.seek(prefix);
                while let (Some(k), Some(v)) = (it.key(), it.value()) {
                    if !k.starts_with(&prefix) {
                        break;
                    }
                    let (first, last) = block::time_range(v)?;
                    if first > end_ms {
                        break;
                    }
                    if last >= start_ms {
                        let seq = k
                            .get(16..24)
                            .and_then(|s| s.try_into().ok())
                            .map(u64::from_be_bytes)
                            .ok_or_else(|| StorageError::CorruptIndex(format!("block key in {name}")))?;
                        out[i].push((seq, v.to_vec()));
                    }
                    it.next();
                }
                it.status()?;
            }
        }
        Ok(out)
    }

    /// Days marked dirty by a flush (written since their last complete merge), ascending.
    pub(crate) fn dirty_days(&self) -> Result<Vec<u32>, StorageError> {
        let mut out = Vec::new();
        for d in self.days() {
            if self.db.get(dirty_key(d))?.is_some() {
                out.push(d);
            }
        }
        Ok(out)
    }

    /// Clears the dirty mark of `day` (once no series there has unmerged blocks).
    pub(crate) fn clear_dirty(&self, day: u32) -> Result<(), StorageError> {
        Ok(self.db.delete(dirty_key(day))?)
    }

    /// Drops every partition of a day before `day`. Returns the dropped days.
    pub(crate) fn drop_before(&self, day: u32) -> Result<Vec<u32>, StorageError> {
        let expired: Vec<u32> = self.days.read().range(..day).copied().collect();
        for d in &expired {
            self.db.drop_cf(&cf_name(*d))?;
            self.db.delete(dirty_key(*d))?;
            self.days.write().remove(d);
        }
        Ok(expired)
    }

    /// Bytes of all partitions on disk (SST files) plus their memtables.
    pub(crate) fn bytes(&self) -> u64 {
        let mut total = 0;
        for day in self.days() {
            if let Some(cf) = self.db.cf_handle(&cf_name(day)) {
                for p in ["rocksdb.total-sst-files-size", "rocksdb.cur-size-all-mem-tables"] {
                    total += self.db.property_int_value_cf(&cf, p).ok().flatten().unwrap_or(0);
                }
            }
        }
        total
    }
}
