//! Opening the node's RocksDB instance: the index column families and one column family
//! per time partition (`blocks_YYYYMMDD`).

use std::path::Path;
use std::sync::{Arc, OnceLock};

use roaring::RoaringTreemap;
use rocksdb::{
    BlockBasedOptions, Cache, ColumnFamilyDescriptor, DBCompressionType, LruCacheOptions, MergeOperands, Options,
};

use crate::error::StorageError;

/// The RocksDB handle; multi-threaded so partitions can be created and dropped through
/// a shared reference.
pub(crate) type Db = rocksdb::DBWithThreadMode<rocksdb::MultiThreaded>;

/// Canonical series key → series ID (u64 big-endian).
pub(crate) const CF_SERIES_IDS: &str = "series_ids";
/// Series ID (u64 big-endian) → canonical series key (tenant + labels).
pub(crate) const CF_SERIES_KEYS: &str = "series_keys";
/// Postings: scope + tenant + label name + value → roaring bitmap of series IDs.
pub(crate) const CF_POSTINGS: &str = "postings";
/// Prefix of the partition column families.
pub(crate) const PARTITION_PREFIX: &str = "blocks_";

/// Block cache shared by every column family of every RocksDB instance of the process
/// (index blocks, filters and data), bytes.
pub(crate) const BLOCK_CACHE_BYTES: usize = 16 << 20;
/// The block cache has 2^this shards: one, of the whole capacity.
const BLOCK_CACHE_SHARD_BITS: i32 = 0;
/// Memtable budget of one RocksDB instance across its column families, bytes: past it
/// the largest memtable is flushed.
const DB_WRITE_BUFFER_BYTES: usize = 32 << 20;
/// Memtable size of one column family before it is flushed, bytes.
const CF_WRITE_BUFFER_BYTES: usize = 8 << 20;
/// Memtable size of an index column family, bytes: new series fill them in bursts (at
/// start, under churn) and then rarely, so a smaller memtable is written out sooner
/// instead of holding the burst's keys and postings in memory.
const INDEX_WRITE_BUFFER_BYTES: usize = 2 << 20;

/// The process-wide block cache ([`BLOCK_CACHE_BYTES`]).
pub(crate) fn block_cache() -> &'static Cache {
    static CACHE: OnceLock<Cache> = OnceLock::new();
    CACHE.get_or_init(|| {
        // One shard: a partition's SST blocks are 1 MiB and more once decompressed, and
        // an entry is only kept within its shard's share of the capacity. RocksDB's
        // default of 64 shards of 256 KiB keeps none of them; with 4 shards of 4 MiB, the
        // few large blocks of a node's data hash unevenly, and a shard holding three of
        // them evicts a fourth at every read while others sit half empty: each query
        // then decompressed a megabyte again. Reads are few and short, so one lock is
        // not contended.
        let mut opts = LruCacheOptions::default();
        opts.set_capacity(BLOCK_CACHE_BYTES);
        opts.set_num_shard_bits(BLOCK_CACHE_SHARD_BITS);
        Cache::new_lru_cache_opts(&opts)
    })
}

/// Column family options with the memory bounds every family shares: the shared block
/// cache holds index and filter blocks too (so table readers do not grow with the data),
/// and memtables are [`CF_WRITE_BUFFER_BYTES`]. SST data blocks of `block_bytes`.
///
/// RocksDB's implicit readahead is off (`max_auto_readahead_size=0`, which the Rust
/// binding sets only through an options string): after two neighbouring data blocks, an
/// iterator asks the kernel to read ahead in the SST file (a `readahead` system call per
/// block) even when the blocks are in the block cache; searches walk the series of one
/// partition in ID order, so they paid it on nearly every series.
fn bounded_options(block_bytes: usize) -> Options {
    let mut table = BlockBasedOptions::default();
    table.set_block_cache(block_cache());
    table.set_cache_index_and_filter_blocks(true);
    table.set_pin_l0_filter_and_index_blocks_in_cache(true);
    table.set_block_size(block_bytes);
    let mut o = Options::default();
    o.set_block_based_table_factory(&table);
    o.set_write_buffer_size(CF_WRITE_BUFFER_BYTES);
    match o.get_options_from_string(NO_AUTO_READAHEAD) {
        Ok(without_readahead) => without_readahead,
        Err(e) => {
            tracing::warn!(error = %e, "RocksDB refused {NO_AUTO_READAHEAD}; its readahead stays on");
            o
        }
    }
}

/// The options string that turns RocksDB's implicit readahead off, see [`bounded_options`].
const NO_AUTO_READAHEAD: &str = "block_based_table_factory={max_auto_readahead_size=0}";

/// Opens (creating if needed) the RocksDB instance at `path` with every column family
/// it already has. Returns the handle and the names of the partition column families.
pub(crate) fn open(path: &Path) -> Result<(Arc<Db>, Vec<String>), StorageError> {
    let mut opts = bounded_options(4 << 10);
    opts.set_db_write_buffer_size(DB_WRITE_BUFFER_BYTES);
    // RocksDB's own log (`LOG`) keeps warnings and errors only; Cairn logs what it does.
    opts.set_log_level(rocksdb::LogLevel::Warn);
    opts.set_keep_log_file_num(2);
    opts.create_if_missing(true);
    opts.create_missing_column_families(true);
    opts.set_max_background_jobs(2);
    let existing = if path.join("CURRENT").exists() {
        Db::list_cf(&opts, path)?
    } else {
        Vec::new()
    };
    let partitions: Vec<String> = existing
        .iter()
        .filter(|n| n.starts_with(PARTITION_PREFIX))
        .cloned()
        .collect();
    let mut cfs = vec![
        ColumnFamilyDescriptor::new(CF_SERIES_IDS, index_options()),
        ColumnFamilyDescriptor::new(CF_SERIES_KEYS, index_options()),
        ColumnFamilyDescriptor::new(CF_POSTINGS, postings_options()),
    ];
    for name in &partitions {
        cfs.push(ColumnFamilyDescriptor::new(name, partition_options()));
    }
    // Column families this version does not know are opened too (RocksDB requires it).
    for name in &existing {
        let known = name == "default"
            || name == CF_SERIES_IDS
            || name == CF_SERIES_KEYS
            || name == CF_POSTINGS
            || name.starts_with(PARTITION_PREFIX);
        if !known {
            cfs.push(ColumnFamilyDescriptor::new(name, Options::default()));
        }
    }
    let db = Db::open_cf_descriptors(&opts, path, cfs)?;
    Ok((Arc::new(db), partitions))
}

/// SST data block size of the index column families, bytes: keys of one metric share
/// most of their labels, so zstd over 64 KiB removes most of the repetition while a
/// point look-up still decompresses little.
const INDEX_BLOCK_BYTES: usize = 64 << 10;
/// SST data block size of the partitions, bytes. Blocks of series with adjacent IDs (often
/// series of one scrape target, created together) sit side by side, stored with their
/// columns coded but not compressed ([`crate::block::encode_unpacked`]): zstd over a
/// megabyte of them stores byte-identical timestamp columns about once and finds what
/// alike value columns share. A read of one series decompresses one such block (about
/// a millisecond) unless the block cache holds it.
const PARTITION_BLOCK_BYTES: usize = 1 << 20;
/// zstd level of the SST blocks, index and partitions. On the corpus replay
/// (docs/benchmarks.md) level 19 kept about 5% fewer bytes in all than 9, at zstd's far
/// slower compression in every RocksDB compaction.
const ZSTD_LEVEL: i32 = 9;

fn index_options() -> Options {
    let mut o = bounded_options(INDEX_BLOCK_BYTES);
    o.set_write_buffer_size(INDEX_WRITE_BUFFER_BYTES);
    o.set_compression_type(DBCompressionType::Zstd);
    o.set_compression_options(-14, ZSTD_LEVEL, 0, 0);
    o
}

fn postings_options() -> Options {
    let mut o = index_options();
    o.set_merge_operator_associative("cairn_postings_union", union_merge);
    o
}

/// Options of a partition column family: zstd over [`PARTITION_BLOCK_BYTES`] SST blocks
/// of unpacked sample blocks.
pub(crate) fn partition_options() -> Options {
    let mut o = bounded_options(PARTITION_BLOCK_BYTES);
    o.set_compression_type(DBCompressionType::Zstd);
    o.set_compression_options(-14, ZSTD_LEVEL, 0, 0);
    o
}

/// Merge operator of the postings: the union of the existing bitmap and every operand.
/// An operand that does not decode is skipped (and logged) rather than failing reads.
fn union_merge(key: &[u8], existing: Option<&[u8]>, operands: &MergeOperands) -> Option<Vec<u8>> {
    let acc = union_of(key, existing, operands.into_iter());
    let mut out = Vec::with_capacity(acc.serialized_size());
    acc.serialize_into(&mut out).ok()?;
    Some(out)
}

/// The union of serialized bitmaps `existing` and `operands`. Most operands hold one new
/// series ID each, and a key may have thousands of them until a compaction: their IDs
/// are gathered, sorted and added in one pass, since adding them one bitmap at a time
/// moves the whole array container each time (quadratic in the operand count).
fn union_of<'a>(key: &[u8], existing: Option<&[u8]>, operands: impl Iterator<Item = &'a [u8]>) -> RoaringTreemap {
    let mut acc = match existing.map(RoaringTreemap::deserialize_from) {
        Some(Ok(b)) => b,
        Some(Err(e)) => {
            tracing::error!(key = ?key, error = %e, "corrupt postings bitmap; rebuilding from operands");
            RoaringTreemap::new()
        }
        None => RoaringTreemap::new(),
    };
    let mut ids: Vec<u64> = Vec::new();
    for op in operands {
        match RoaringTreemap::deserialize_from(op) {
            Ok(b) if b.len() <= 64 => ids.extend(b.iter()),
            Ok(b) => acc |= b,
            Err(e) => tracing::error!(key = ?key, error = %e, "corrupt postings operand skipped"),
        }
    }
    if !ids.is_empty() {
        ids.sort_unstable();
        ids.dedup();
        // Sorted and unique: `from_sorted_iter` cannot fail.
        if let Ok(b) = RoaringTreemap::from_sorted_iter(ids) {
            acc |= b;
        }
    }
    acc
}

#[cfg(test)]
mod tests {
    use super::*;

    fn serialized(ids: &[u64]) -> Vec<u8> {
        let b: RoaringTreemap = ids.iter().copied().collect();
        let mut out = Vec::new();
        b.serialize_into(&mut out).expect("serialize into a Vec");
        out
    }

    #[test]
    fn every_column_family_has_implicit_readahead_off() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (db, _) = open(dir.path()).expect("open");
        db.create_cf("p_test", &partition_options()).expect("create partition");
        drop(db);
        // RocksDB writes the options in force to OPTIONS-<n>; the newest holds them all.
        let newest = std::fs::read_dir(dir.path())
            .expect("list")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("OPTIONS-"))
            })
            .max_by_key(|p| p.metadata().and_then(|m| m.modified()).ok())
            .expect("an OPTIONS file");
        let text = std::fs::read_to_string(newest).expect("read");
        // Per `[TableOptions/BlockBasedTable "<family>"]` section, its setting.
        let mut family = "";
        let mut values = Vec::new();
        for line in text.lines().map(str::trim) {
            if let Some(header) = line.strip_prefix("[TableOptions/BlockBasedTable ") {
                family = header.trim_end_matches(']');
            } else if let Some(v) = line.strip_prefix("max_auto_readahead_size=") {
                values.push((family, v));
            }
        }
        // The index families and the partition; RocksDB's own "default" family (a few
        // bookkeeping keys) keeps its defaults.
        let ours: Vec<_> = values.iter().filter(|(f, _)| *f != "\"default\"").collect();
        assert_eq!(ours.len(), 4, "{values:?}");
        assert!(ours.iter().all(|(_, v)| *v == "0"), "{values:?}");
    }

    #[test]
    fn union_of_many_single_operands_and_a_large_one_is_every_id_once() {
        let existing = serialized(&[1, 5, 1 << 40]);
        // Thousands of one-ID operands out of order, with repeats, across 32-bit halves;
        // one operand larger than the gathering threshold; one that does not decode.
        let mut ops: Vec<Vec<u8>> = (0..5_000u64)
            .rev()
            .map(|i| serialized(&[i * 3 + (i % 2) * (1 << 33)]))
            .collect();
        ops.push(serialized(&[5, 5]));
        let big: Vec<u64> = (100_000..100_200).collect();
        ops.push(serialized(&big));
        ops.push(b"not a bitmap".to_vec());
        let got = union_of(b"k", Some(&existing), ops.iter().map(Vec::as_slice));
        let mut want: Vec<u64> = (0..5_000u64).map(|i| i * 3 + (i % 2) * (1 << 33)).collect();
        want.extend([1, 5, 1 << 40]);
        want.extend(&big);
        want.sort_unstable();
        want.dedup();
        assert_eq!(got.iter().collect::<Vec<_>>(), want);
    }
}
