//! The storage engine of one node: index, WAL + head, partitions. [`Engine::write`]
//! makes samples durable and visible; [`Engine::flush`] moves the head into blocks;
//! [`Engine::compact`] merges small blocks into large ones ([`merge`]); searches live in
//! [`search`].

mod commit;
mod flush;
pub mod merge;
mod replay;
pub(crate) mod search;
mod series_cache;
mod usage;
mod write;
mod write_epoch;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;

use crate::config::WalSync;
use crate::error::StorageError;
use crate::head::Head;
use crate::index::Index;
use crate::index::hash::IndexedDays;
use crate::partitions::Partitions;
use crate::partitions::merge::Unmerged;
use crate::wal::SegmentWriter;
use commit::Command;
use series_cache::SeriesCache;

pub use flush::FlushStats;
pub use merge::CompactStats;
pub use usage::IndexUsage;
pub use write::{PendingWrite, PreparedWrite, WriteOutcome};
use write_epoch::WriteEpoch;

/// How to open an engine.
#[derive(Clone, Debug)]
pub struct EngineOptions {
    /// The node's data directory (created if missing).
    pub data_dir: PathBuf,
    /// Samples older than now minus this are not stored; partitions of days wholly
    /// older are dropped.
    pub retention: Duration,
    /// Whether each WAL group commit is fsynced.
    pub wal_sync: WalSync,
    /// Budget of the in-memory series key fingerprint → ID map, bytes (estimated; see
    /// [`series_cache`]). Series past it are looked up in the index.
    pub series_cache_bytes: u64,
    /// Budget of the index's search caches (selections, label values, series keys),
    /// bytes; 0 turns them off. See [`crate::index::search_cache`].
    pub index_cache_bytes: u64,
}

/// Default of [`EngineOptions::series_cache_bytes`]: 64 MiB, about 1.2 million series
/// (56 bytes each, whatever the length of their keys).
pub const DEFAULT_SERIES_CACHE_BYTES: u64 = 64 << 20;

pub use crate::index::search_cache::DEFAULT_INDEX_CACHE_BYTES;

/// One storage node's engine.
pub struct Engine {
    index: Index,
    partitions: Partitions,
    head: Arc<Head>,
    wal_dir: PathBuf,
    retention_ms: i64,
    commit_tx: Mutex<Option<crossbeam_channel::Sender<Command>>>,
    commit_thread: Mutex<Option<JoinHandle<()>>>,
    series: SeriesCache,
    create_lock: Mutex<()>,
    next_id: AtomicU64,
    /// `(series ID, day)` pairs whose per-day postings are written or being written.
    days_indexed: Mutex<IndexedDays>,
    flush_lock: Mutex<()>,
    flush_seq: AtomicU64,
    /// Unmerged blocks per (day, series ID), see [`merge`].
    unmerged: Mutex<BTreeMap<(u32, u64), Unmerged>>,
    /// Keeps merge steps one at a time.
    merge_lock: Mutex<()>,
    /// Changes when data older than a few minutes changes (see [`write_epoch`]).
    write_epoch: WriteEpoch,
}

/// Now in ms since the Unix epoch.
pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn create_dir(p: &Path) -> Result<(), StorageError> {
    std::fs::create_dir_all(p).map_err(|e| StorageError::io(format!("create directory {}", p.display()), e))
}

impl Engine {
    /// Opens the data directory: RocksDB (index + partitions) in `rocksdb/`, the WAL in
    /// `wal/`, replays the WAL into the head and starts the commit thread.
    pub fn open(opts: &EngineOptions) -> Result<Engine, StorageError> {
        let wal_dir = opts.data_dir.join("wal");
        create_dir(&wal_dir)?;
        let started = std::time::Instant::now();
        let (db, partition_names) = crate::db::open(&opts.data_dir.join("rocksdb"))?;
        let partitions = Partitions::new(db.clone(), &partition_names);
        tracing::info!(
            partitions = partition_names.len(),
            took_ms = started.elapsed().as_millis() as u64,
            "opened index and partitions"
        );
        let flush_seq = partitions.last_flush_seq()?;
        let engine = Engine {
            index: Index::new(db, opts.index_cache_bytes),
            partitions,
            head: Arc::new(Head::default()),
            wal_dir,
            retention_ms: i64::try_from(opts.retention.as_millis()).unwrap_or(i64::MAX),
            commit_tx: Mutex::new(None),
            commit_thread: Mutex::new(None),
            series: SeriesCache::new(opts.series_cache_bytes),
            create_lock: Mutex::new(()),
            next_id: AtomicU64::new(0),
            days_indexed: Mutex::new(IndexedDays::default()),
            flush_lock: Mutex::new(()),
            flush_seq: AtomicU64::new(flush_seq),
            unmerged: Mutex::new(BTreeMap::new()),
            merge_lock: Mutex::new(()),
            write_epoch: WriteEpoch::new(),
        };
        engine.load_unmerged()?;
        let last_segment = engine.replay()?;
        engine
            .next_id
            .store(engine.index.max_series_id()? + 1, Ordering::SeqCst);
        let writer = SegmentWriter::create(&engine.wal_dir, last_segment + 1)?;
        let (tx, rx) = crossbeam_channel::unbounded();
        let handle = commit::spawn(writer, engine.head.clone(), opts.wal_sync == WalSync::Always, rx)?;
        *engine.commit_tx.lock() = Some(tx);
        *engine.commit_thread.lock() = Some(handle);
        metrics::gauge!("cairn_storage_active_series").set(engine.head.series_count() as f64);
        metrics::gauge!("cairn_storage_partitions").set(engine.partitions.days().len() as f64);
        metrics::gauge!("cairn_storage_partition_bytes").set(engine.partitions.bytes() as f64);
        Ok(engine)
    }

    /// The node's write epoch (see [`write_epoch`]): read it before reading data; a
    /// later read that gives the same value means no late sample arrived and no
    /// partition was dropped in between.
    pub fn write_epoch(&self) -> u64 {
        self.write_epoch.get()
    }

    fn send(&self, cmd: Command) -> Result<(), StorageError> {
        let tx = self.commit_tx.lock().clone();
        tx.ok_or_else(|| StorageError::WalClosed("the node is shutting down".into()))?
            .send(cmd)
            .map_err(|_| StorageError::WalClosed("the commit thread has stopped".into()))
    }

    /// Stops the commit thread after it has written everything queued. Further writes
    /// fail with [`StorageError::WalClosed`]. Called by `Drop` too.
    pub fn close_wal(&self) {
        drop(self.commit_tx.lock().take());
        if let Some(h) = self.commit_thread.lock().take()
            && h.join().is_err()
        {
            tracing::error!("the WAL commit thread panicked");
        }
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.close_wal();
    }
}

/// Helpers shared by the engine tests.
#[cfg(test)]
pub(crate) mod testing {
    use super::*;
    use cairn_common::Labels;
    use cairn_proto::storage::Series;

    /// Opens an engine on `dir` with a 100-year retention (tests use old timestamps).
    pub(crate) fn open(dir: &Path) -> Engine {
        Engine::open(&EngineOptions {
            data_dir: dir.to_path_buf(),
            retention: Duration::from_secs(100 * 365 * 86_400),
            wal_sync: WalSync::Always,
            series_cache_bytes: DEFAULT_SERIES_CACHE_BYTES,
            index_cache_bytes: DEFAULT_INDEX_CACHE_BYTES,
        })
        .expect("open engine")
    }

    /// A proto series `name{job=...}` with the given samples.
    pub(crate) fn series(name: &str, job: &str, samples: &[(i64, f64)]) -> Series {
        Series {
            labels: Labels::from_pairs([("__name__", name), ("job", job)]).to_proto(),
            timestamps_ms: samples.iter().map(|s| s.0).collect(),
            values: samples.iter().map(|s| s.1).collect(),
            samples_le: Default::default(),
            blocks: Vec::new(),
            key: Default::default(),
        }
    }

    /// Runs a future on a fresh current-thread runtime.
    pub(crate) fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(f)
    }
}

#[cfg(test)]
mod crash_tests;
#[cfg(test)]
mod disk_tests;
#[cfg(test)]
mod merge_tests;
#[cfg(test)]
mod tests;
