//! The inverted index, in RocksDB: series key ↔ series ID, and postings.
//!
//! - `series_ids`: canonical series key → series ID (u64 BE).
//! - `series_keys`: series ID (u64 BE) → canonical series key (tenant + labels).
//! - `postings`: `(scope, tenant, name, value)` → roaring bitmap of series IDs, updated
//!   with a union merge operator ([`keys`] has the layout). Scope [`keys::ALL_DAYS`] holds
//!   every series ever created; a day scope holds the series with samples on that UTC
//!   day, so a search over one hour does not walk a year of churned series.
//!
//! Index writes go through RocksDB's own WAL without fsync; [`Index::sync`] makes them
//! durable before the storage WAL segments that also describe them are deleted.

pub(crate) mod hash;
pub(crate) mod keys;
pub(crate) mod resolve;
pub(crate) mod search_cache;

use std::sync::Arc;

use bytes::Bytes;
use cairn_common::{Labels, Tenant};
use roaring::RoaringTreemap;
use rocksdb::{Direction, IteratorMode, WriteBatch};

use crate::db::{CF_POSTINGS, CF_SERIES_IDS, CF_SERIES_KEYS, Db};
use crate::error::StorageError;
use keys::{ALL_DAYS, name_prefix, postings_key, prefix_successor, split_name_value, tenant_prefix};
use search_cache::SearchCache;

/// Handle to the index column families and the caches of their search look-ups.
#[derive(Clone)]
pub(crate) struct Index {
    db: Arc<Db>,
    cache: Arc<SearchCache>,
}

/// Serializes a bitmap holding one series ID: a postings merge operand.
fn single(id: u64) -> Vec<u8> {
    let mut b = RoaringTreemap::new();
    b.insert(id);
    let mut out = Vec::with_capacity(b.serialized_size());
    // Writing into a Vec cannot fail.
    let _ = b.serialize_into(&mut out);
    out
}

impl Index {
    /// The index in `db`, with search caches of at most `cache_bytes` in all (see
    /// [`search_cache`]; 0 caches nothing).
    pub(crate) fn new(db: Arc<Db>, cache_bytes: u64) -> Self {
        Index {
            db,
            cache: Arc::new(SearchCache::new(cache_bytes)),
        }
    }

    /// The search caches.
    pub(crate) fn cache(&self) -> &SearchCache {
        &self.cache
    }

    fn cf(&self, name: &'static str) -> Result<Arc<rocksdb::BoundColumnFamily<'_>>, StorageError> {
        self.db
            .cf_handle(name)
            .ok_or_else(|| StorageError::Internal(format!("column family {name} missing")))
    }

    /// The series ID of a canonical key, if the series exists.
    pub(crate) fn series_id(&self, key: &[u8]) -> Result<Option<u64>, StorageError> {
        let cf = self.cf(CF_SERIES_IDS)?;
        match self.db.get_pinned_cf(&cf, key)? {
            None => Ok(None),
            Some(v) => {
                let b: [u8; 8] = v
                    .as_ref()
                    .try_into()
                    .map_err(|_| StorageError::CorruptIndex("series ID is not 8 bytes".into()))?;
                Ok(Some(u64::from_be_bytes(b)))
            }
        }
    }

    /// Records a new series: key ↔ ID and its all-time postings (each label, plus the
    /// tenant's all-series entry).
    pub(crate) fn create_series(
        &self,
        id: u64,
        key: &[u8],
        tenant: Tenant,
        labels: &Labels,
    ) -> Result<(), StorageError> {
        let mut batch = WriteBatch::default();
        batch.put_cf(&self.cf(CF_SERIES_IDS)?, key, id.to_be_bytes());
        batch.put_cf(&self.cf(CF_SERIES_KEYS)?, id.to_be_bytes(), key);
        self.add_postings(&mut batch, ALL_DAYS, id, tenant, labels)?;
        self.db.write(batch)?;
        self.cache.postings_changed();
        Ok(())
    }

    /// Adds the postings of series `id` to `batch` for `scope`.
    fn add_postings(
        &self,
        batch: &mut WriteBatch,
        scope: u32,
        id: u64,
        tenant: Tenant,
        labels: &Labels,
    ) -> Result<(), StorageError> {
        let cf = self.cf(CF_POSTINGS)?;
        let op = single(id);
        batch.merge_cf(&cf, postings_key(scope, tenant, "", ""), &op);
        for l in labels {
            batch.merge_cf(&cf, postings_key(scope, tenant, &l.name, &l.value), &op);
        }
        Ok(())
    }

    /// Records that each `(id, day)` series has samples on that day.
    pub(crate) fn add_days(&self, entries: &[(u64, u32, Tenant, &Labels)]) -> Result<(), StorageError> {
        if entries.is_empty() {
            return Ok(());
        }
        let mut batch = WriteBatch::default();
        for (id, day, tenant, labels) in entries {
            self.add_postings(&mut batch, *day, *id, *tenant, labels)?;
        }
        self.db.write(batch)?;
        self.cache.postings_changed();
        Ok(())
    }

    /// The tenant and labels of series `id`.
    pub(crate) fn series_labels(&self, id: u64) -> Result<Option<(Tenant, Labels)>, StorageError> {
        let cf = self.cf(CF_SERIES_KEYS)?;
        match self.db.get_pinned_cf(&cf, id.to_be_bytes())? {
            None => Ok(None),
            Some(v) => Labels::from_canonical_key(&v)
                .map(Some)
                .ok_or_else(|| StorageError::CorruptIndex(format!("series key of ID {id}"))),
        }
    }

    /// The canonical keys of series `ids` (ascending) as stored, in their order: from the
    /// key cache, and one batched look-up for the rest (then kept in the cache). `None`
    /// for an ID the index does not know.
    pub(crate) fn series_keys_many(&self, ids: &[u64]) -> Result<Vec<Option<Bytes>>, StorageError> {
        let mut out = self.cache.keys(ids);
        let missing: Vec<usize> = (0..ids.len()).filter(|&i| out[i].is_none()).collect();
        if missing.is_empty() {
            return Ok(out);
        }
        let cf = self.cf(CF_SERIES_KEYS)?;
        let keys: Vec<[u8; 8]> = missing.iter().map(|&i| ids[i].to_be_bytes()).collect();
        let sorted = keys.windows(2).all(|w| w[0] < w[1]);
        let mut found = Vec::with_capacity(missing.len());
        for (&i, r) in missing.iter().zip(self.db.batched_multi_get_cf(&cf, &keys, sorted)) {
            if let Some(v) = r? {
                let key = Bytes::copy_from_slice(&v);
                found.push((ids[i], key.clone()));
                out[i] = Some(key);
            }
        }
        self.cache.keep_keys(found);
        Ok(out)
    }

    /// The canonical keys of `ids` that the search cache holds, in their order (`None`
    /// where it does not), without reading the disk.
    pub(crate) fn cached_series_keys(&self, ids: &[u64]) -> Vec<Option<Bytes>> {
        self.cache.keys(ids)
    }

    /// The largest series ID in the index (0 when empty).
    pub(crate) fn max_series_id(&self) -> Result<u64, StorageError> {
        let cf = self.cf(CF_SERIES_KEYS)?;
        let mut it = self.db.iterator_cf(&cf, IteratorMode::End);
        match it.next() {
            None => Ok(0),
            Some(r) => {
                let (k, _) = r?;
                let b: [u8; 8] = k
                    .as_ref()
                    .try_into()
                    .map_err(|_| StorageError::CorruptIndex("series ID key is not 8 bytes".into()))?;
                Ok(u64::from_be_bytes(b))
            }
        }
    }

    /// The postings bitmap of `(scope, tenant, name, value)`; empty when absent.
    pub(crate) fn postings(
        &self,
        scope: u32,
        tenant: Tenant,
        name: &str,
        value: &str,
    ) -> Result<RoaringTreemap, StorageError> {
        let cf = self.cf(CF_POSTINGS)?;
        match self.db.get_pinned_cf(&cf, postings_key(scope, tenant, name, value))? {
            None => Ok(RoaringTreemap::new()),
            Some(v) => RoaringTreemap::deserialize_from(v.as_ref())
                .map_err(|e| StorageError::CorruptIndex(format!("postings of {name}={value:?}: {e}"))),
        }
    }

    /// Calls `f(value, bitmap)` for every value of label `name` in `(scope, tenant)`, in
    /// value order.
    pub(crate) fn for_each_value(
        &self,
        scope: u32,
        tenant: Tenant,
        name: &str,
        mut f: impl FnMut(&str, RoaringTreemap),
    ) -> Result<(), StorageError> {
        let cf = self.cf(CF_POSTINGS)?;
        let prefix = name_prefix(scope, tenant, name);
        let it = self
            .db
            .iterator_cf(&cf, IteratorMode::From(&prefix, Direction::Forward));
        for r in it {
            let (k, v) = r?;
            if !k.starts_with(&prefix) {
                break;
            }
            let value = std::str::from_utf8(&k[prefix.len()..])
                .map_err(|_| StorageError::CorruptIndex(format!("label value of {name} is not UTF-8")))?;
            let bm = RoaringTreemap::deserialize_from(v.as_ref())
                .map_err(|e| StorageError::CorruptIndex(format!("postings of {name}={value:?}: {e}")))?;
            f(value, bm);
        }
        Ok(())
    }

    /// The values of label `name` in `(scope, tenant)`, in value order: from the label
    /// values cache while no postings changed since it was kept, else read from the
    /// postings' keys (and then kept).
    pub(crate) fn label_values(
        &self,
        scope: u32,
        tenant: Tenant,
        name: &str,
    ) -> Result<Arc<Vec<String>>, StorageError> {
        self.cached_strings(scope, tenant, Some(name), || {
            self.read_label_values(scope, tenant, name)
        })
    }

    /// [`Index::label_values`] when the label values cache holds them (no disk read,
    /// so callable from an async thread); None otherwise (nothing is counted then).
    pub(crate) fn cached_label_values(&self, scope: u32, tenant: Tenant, name: &str) -> Option<Arc<Vec<String>>> {
        self.kept_strings(scope, tenant, Some(name))
    }

    /// The cached label names of `(scope, tenant)` while no postings changed since they
    /// were kept (counted as a hit); None otherwise.
    pub(crate) fn cached_label_names(&self, scope: u32, tenant: Tenant) -> Option<Arc<Vec<String>>> {
        self.kept_strings(scope, tenant, None)
    }

    /// The label names present in `(scope, tenant)`, sorted by their key order (length,
    /// then bytes): from the label names cache while no postings changed since it was
    /// kept, else read from the postings' keys (and then kept).
    pub(crate) fn label_names(&self, scope: u32, tenant: Tenant) -> Result<Arc<Vec<String>>, StorageError> {
        self.cached_strings(scope, tenant, None, || self.read_label_names(scope, tenant))
    }

    /// The cached list of label `name`'s values (`None`: of label names) in `(scope,
    /// tenant)`, or `read()` kept under the generation read before it.
    fn cached_strings(
        &self,
        scope: u32,
        tenant: Tenant,
        name: Option<&str>,
        read: impl FnOnce() -> Result<Vec<String>, StorageError>,
    ) -> Result<Arc<Vec<String>>, StorageError> {
        if let Some(strings) = self.kept_strings(scope, tenant, name) {
            return Ok(strings);
        }
        metrics::counter!("cairn_storage_index_cache_requests_total", "cache" => strings_cache(name), "outcome" => "miss")
            .increment(1);
        let generation = self.cache.generation();
        let strings = Arc::new(read()?);
        self.cache
            .keep_strings(scope, tenant, name, generation, Arc::clone(&strings));
        Ok(strings)
    }

    /// The cached list of label `name`'s values (`None`: of label names) in `(scope,
    /// tenant)` while no postings changed since it was kept, counted as a hit; None (not
    /// counted) otherwise.
    fn kept_strings(&self, scope: u32, tenant: Tenant, name: Option<&str>) -> Option<Arc<Vec<String>>> {
        let strings = self.cache.strings(scope, tenant, name)?;
        metrics::counter!("cairn_storage_index_cache_requests_total", "cache" => strings_cache(name), "outcome" => "hit")
            .increment(1);
        Some(strings)
    }

    /// [`Index::label_values`] read from the postings' keys.
    fn read_label_values(&self, scope: u32, tenant: Tenant, name: &str) -> Result<Vec<String>, StorageError> {
        let cf = self.cf(CF_POSTINGS)?;
        let prefix = name_prefix(scope, tenant, name);
        let mut values = Vec::new();
        for r in self
            .db
            .iterator_cf(&cf, IteratorMode::From(&prefix, Direction::Forward))
        {
            let (k, _) = r?;
            let Some(value) = k.strip_prefix(prefix.as_slice()) else {
                break;
            };
            let value = std::str::from_utf8(value)
                .map_err(|_| StorageError::CorruptIndex(format!("label value of {name} is not UTF-8")))?;
            values.push(value.to_string());
        }
        Ok(values)
    }

    /// [`Index::label_names`] read from the postings: skips over the values of each name
    /// with a seek.
    fn read_label_names(&self, scope: u32, tenant: Tenant) -> Result<Vec<String>, StorageError> {
        let cf = self.cf(CF_POSTINGS)?;
        let prefix = tenant_prefix(scope, tenant);
        let mut names = Vec::new();
        let mut from = prefix.clone();
        loop {
            let mut it = self.db.iterator_cf(&cf, IteratorMode::From(&from, Direction::Forward));
            let Some(r) = it.next() else { break };
            let (k, _) = r?;
            if !k.starts_with(&prefix) {
                break;
            }
            let (name, _) = split_name_value(&k[prefix.len()..])
                .ok_or_else(|| StorageError::CorruptIndex("postings key".into()))?;
            if !name.is_empty() {
                names.push(name.to_string());
            }
            match prefix_successor(&name_prefix(scope, tenant, name)) {
                Some(next) => from = next,
                None => break,
            }
        }
        Ok(names)
    }

    /// Deletes the postings of every day before `day` (retention).
    pub(crate) fn drop_days_before(&self, day: u32) -> Result<(), StorageError> {
        let cf = self.cf(CF_POSTINGS)?;
        self.db
            .delete_range_cf(&cf, 0u32.to_be_bytes(), day.min(ALL_DAYS - 1).to_be_bytes())?;
        self.cache.postings_changed();
        Ok(())
    }

    /// Makes every index write so far durable (fsyncs RocksDB's WAL).
    pub(crate) fn sync(&self) -> Result<(), StorageError> {
        self.db.flush_wal(true)?;
        Ok(())
    }
}

/// Memory and disk used by the index column families, bytes.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct ColumnFamilyUsage {
    /// SST files on disk.
    pub(crate) disk_bytes: u64,
    /// Memtables (written, not yet flushed to SST files).
    pub(crate) memtable_bytes: u64,
    /// Table readers' memory outside the block cache.
    pub(crate) table_reader_bytes: u64,
}

impl Index {
    /// What the index column families use now (RocksDB's own estimates).
    pub(crate) fn usage(&self) -> ColumnFamilyUsage {
        let mut u = ColumnFamilyUsage::default();
        for name in [CF_SERIES_IDS, CF_SERIES_KEYS, CF_POSTINGS] {
            let Ok(cf) = self.cf(name) else { continue };
            let prop = |p: &str| self.db.property_int_value_cf(&cf, p).ok().flatten().unwrap_or(0);
            u.disk_bytes += prop("rocksdb.total-sst-files-size");
            u.memtable_bytes += prop("rocksdb.cur-size-all-mem-tables");
            u.table_reader_bytes += prop("rocksdb.estimate-table-readers-mem");
        }
        u
    }
}

/// The `cache` label of the strings cache holding label `name`'s values (`None`: label
/// names).
fn strings_cache(name: Option<&str>) -> &'static str {
    if name.is_some() { "label_values" } else { "label_names" }
}
