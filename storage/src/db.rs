//! Opening the node's RocksDB instance: the index column families and one column family
//! per time partition (`blocks_YYYYMMDD`).

use std::path::Path;
use std::sync::Arc;

use roaring::RoaringTreemap;
use rocksdb::{ColumnFamilyDescriptor, DBCompressionType, MergeOperands, Options};

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

/// Opens (creating if needed) the RocksDB instance at `path` with every column family
/// it already has. Returns the handle and the names of the partition column families.
pub(crate) fn open(path: &Path) -> Result<(Arc<Db>, Vec<String>), StorageError> {
    let mut opts = Options::default();
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

fn index_options() -> Options {
    let mut o = Options::default();
    o.set_compression_type(DBCompressionType::Lz4);
    o
}

fn postings_options() -> Options {
    let mut o = index_options();
    o.set_merge_operator_associative("cairn_postings_union", union_merge);
    o
}

/// Options of a partition column family: blocks are already compressed.
pub(crate) fn partition_options() -> Options {
    let mut o = Options::default();
    o.set_compression_type(DBCompressionType::None);
    o
}

/// Merge operator of the postings: the union of the existing bitmap and every operand.
/// An operand that does not decode is skipped (and logged) rather than failing reads.
fn union_merge(key: &[u8], existing: Option<&[u8]>, operands: &MergeOperands) -> Option<Vec<u8>> {
    let mut acc = match existing.map(RoaringTreemap::deserialize_from) {
        Some(Ok(b)) => b,
        Some(Err(e)) => {
            tracing::error!(key = ?key, error = %e, "corrupt postings bitmap; rebuilding from operands");
            RoaringTreemap::new()
        }
        None => RoaringTreemap::new(),
    };
    for op in operands {
        match RoaringTreemap::deserialize_from(op) {
            Ok(b) => acc |= b,
            Err(e) => tracing::error!(key = ?key, error = %e, "corrupt postings operand skipped"),
        }
    }
    let mut out = Vec::with_capacity(acc.serialized_size());
    acc.serialize_into(&mut out).ok()?;
    Some(out)
}
