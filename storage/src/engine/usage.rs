//! What the engine's index holds in memory and on disk, exported in `/metrics`.

use crate::db::block_cache;
use crate::engine::Engine;

/// Estimated bytes per `(series ID, day)` pair of the set of indexed days: 12 bytes of
/// key padded to 16 in the hash table's slot, plus control bytes at its usual load.
const INDEXED_DAY_BYTES: u64 = 24;

/// Most `(series ID, day)` pairs kept in the set of indexed days; past it the set is
/// cleared at the next flush (the per-day postings of a series are then merged again,
/// idempotently, at its next sample).
pub(crate) const MAX_INDEXED_DAYS: usize = 4_000_000;

/// The index's memory and disk use, bytes (estimates).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IndexUsage {
    /// Series in the in-memory key → ID map.
    pub cached_series: u64,
    /// Memory of that map (keys plus about 80 bytes per entry).
    pub series_cache_bytes: u64,
    /// Memory of the set of `(series ID, day)` pairs whose per-day postings are written.
    pub indexed_days_bytes: u64,
    /// The caches of search look-ups (selections, label values, series keys).
    pub search_cache_bytes: u64,
    /// RocksDB memtables of the index column families.
    pub memtable_bytes: u64,
    /// RocksDB table readers of the index column families (outside the block cache).
    pub table_reader_bytes: u64,
    /// The index column families' files on disk.
    pub disk_bytes: u64,
}

impl IndexUsage {
    /// Size of the index: its files plus the memtables not yet written to files.
    pub fn size_bytes(&self) -> u64 {
        self.disk_bytes + self.memtable_bytes
    }
}

impl IndexUsage {
    /// Memory of the index, all parts.
    pub fn memory_bytes(&self) -> u64 {
        self.series_cache_bytes
            + self.indexed_days_bytes
            + self.search_cache_bytes
            + self.memtable_bytes
            + self.table_reader_bytes
    }
}

impl Engine {
    /// Measures the index's memory and disk use and sets the gauges
    /// `cairn_storage_index_memory_bytes{part}`, `cairn_storage_index_bytes` (files plus
    /// unwritten memtables, [`IndexUsage::size_bytes`]),
    /// `cairn_storage_series_cache_entries`, `cairn_storage_index_cache_entries` (the search
    /// caches'), `cairn_storage_block_cache_bytes` (the
    /// process-wide RocksDB block cache), `cairn_storage_head_samples` and
    /// `cairn_storage_head_memory_bytes` (estimated bytes of the head).
    pub fn report_usage(&self) -> IndexUsage {
        let rocks = self.index.usage();
        let search = self.index.cache().usage();
        let u = IndexUsage {
            cached_series: self.series.len(),
            series_cache_bytes: self.series.bytes(),
            indexed_days_bytes: self.days_indexed.lock().len() as u64 * INDEXED_DAY_BYTES,
            search_cache_bytes: search.postings_bytes + search.keys_bytes,
            memtable_bytes: rocks.memtable_bytes,
            table_reader_bytes: rocks.table_reader_bytes,
            disk_bytes: rocks.disk_bytes,
        };
        let parts = [
            ("series_cache", u.series_cache_bytes),
            ("indexed_days", u.indexed_days_bytes),
            ("search_cache", u.search_cache_bytes),
            ("memtables", u.memtable_bytes),
            ("table_readers", u.table_reader_bytes),
        ];
        for (part, bytes) in parts {
            metrics::gauge!("cairn_storage_index_memory_bytes", "part" => part).set(bytes as f64);
        }
        metrics::gauge!("cairn_storage_index_bytes").set(u.size_bytes() as f64);
        metrics::gauge!("cairn_storage_series_cache_entries").set(u.cached_series as f64);
        metrics::gauge!("cairn_storage_index_cache_entries").set(search.entries as f64);
        metrics::gauge!("cairn_storage_block_cache_bytes").set(block_cache().get_usage() as f64);
        metrics::gauge!("cairn_storage_head_samples").set(self.head.sample_count() as f64);
        metrics::gauge!("cairn_storage_head_memory_bytes").set(self.head.memory_bytes() as f64);
        u
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::series_cache::ENTRY_BYTES;
    use crate::engine::testing::{block_on, open, series};
    use cairn_common::Tenant;

    #[test]
    fn the_series_cache_is_reported_per_series() {
        let dir = tempfile::tempdir().expect("tempdir");
        let e = open(dir.path());
        assert_eq!(e.report_usage().cached_series, 0);
        let now = crate::engine::now_ms();
        let batch: Vec<_> = (0..100)
            .map(|i| series("up", &format!("job-{i:03}"), &[(now, 1.0)]))
            .collect();
        block_on(e.write(Tenant::default(), batch)).expect("write");
        let u = e.report_usage();
        assert_eq!(u.cached_series, 100);
        // A fixed size per series, whatever its key.
        assert_eq!(u.series_cache_bytes, 100 * ENTRY_BYTES);
        // Their day is noted in their cache entries: the set of indexed days stays empty.
        assert_eq!(u.indexed_days_bytes, 0);
        // A late sample's day (yesterday) is remembered in the set.
        let late: Vec<_> = (0..10)
            .map(|i| series("up", &format!("job-{i:03}"), &[(now - 86_400_000, 1.0)]))
            .collect();
        block_on(e.write(Tenant::default(), late)).expect("write");
        let u = e.report_usage();
        assert_eq!(u.indexed_days_bytes, 10 * INDEXED_DAY_BYTES);
        assert!(u.memory_bytes() >= u.series_cache_bytes + u.indexed_days_bytes);
    }
}
