//! The test files' series in a real storage engine: each `load` goes through
//! [`Engine::write`] (validation, index, WAL, head) and is then flushed to blocks, so that
//! every read goes through the postings, the block codec and the day partitions. Reads
//! are the storage node's search (matchers → postings → IDs → blocks + head) followed by
//! the select node's per-series merge.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use cairn_common::{Matcher, Tenant};
use cairn_proto::storage::Series;
use cairn_select::fanout::merge_series;
use cairn_select::promql::{Fetched, FetchedSeries, Querier, QueryError};
use cairn_storage::config::WalSync;
use cairn_storage::{Engine, EngineOptions};

use crate::runner::Store;

/// The tenant every test series is written to and read from (not the default `0:0`, so
/// that the tenant travels through the index).
const TENANT: Tenant = Tenant {
    account_id: 7,
    project_id: 3,
};

/// Retention long enough for the test files, which write from 1970-01-01 on.
const RETENTION: Duration = Duration::from_secs(200 * 365 * 86_400);

/// One storage engine in its own temporary data directory (removed on drop).
pub struct EngineStore {
    // Declared before `dir`: the engine closes its WAL and RocksDB before the directory goes.
    engine: Engine,
    dir: tempfile::TempDir,
}

impl EngineStore {
    /// Opens a fresh engine in a new temporary directory. Panics when it cannot (the
    /// harness cannot run without one).
    pub fn open() -> Self {
        let dir = tempfile::tempdir().expect("temporary data directory");
        let engine = Engine::open(&EngineOptions {
            data_dir: dir.path().to_path_buf(),
            retention: RETENTION,
            wal_sync: WalSync::Never,
            series_cache_bytes: cairn_storage::DEFAULT_SERIES_CACHE_BYTES,
            index_cache_bytes: cairn_storage::DEFAULT_INDEX_CACHE_BYTES,
        })
        .expect("open the storage engine");
        EngineStore { engine, dir }
    }

    /// Searches as a storage node does for one selector, then merges the pieces of each
    /// series as the select node does.
    fn search(&self, matchers: &[Matcher], start_ms: i64, end_ms: i64) -> Result<Fetched, QueryError> {
        let storage_error = |e: cairn_storage::StorageError| {
            QueryError::Storage(format!("storage engine at {}: {e}", self.dir.path().display()))
        };
        let ids = self
            .engine
            .select_ids(TENANT, matchers, start_ms, end_ms)
            .map_err(storage_error)?;
        let mut pieces = Vec::with_capacity(ids.len() as usize);
        for id in &ids {
            // The blocks as a storage node's search answer carries them, read as a
            // select node reads them.
            let Some((labels, blocks)) = self
                .engine
                .read_series_blocks(TENANT, id, start_ms, end_ms)
                .map_err(storage_error)?
            else {
                continue;
            };
            let (ts, vs) = cairn_common::block::read::samples_in_range(&blocks, start_ms, end_ms)
                .map_err(|e| QueryError::Storage(format!("search answer: {e}")))?;
            if ts.is_empty() {
                continue;
            }
            pieces.push((labels, ts, vs));
        }
        let series = merge_series(pieces);
        Ok(Fetched {
            series,
            warnings: Vec::new(),
        })
    }
}

impl Store for EngineStore {
    fn load(&mut self, rt: &tokio::runtime::Runtime, series: Vec<FetchedSeries>) -> Result<(), String> {
        let expected: u64 = series.iter().map(|s| s.timestamps.len() as u64).sum();
        let request: Vec<Series> = series
            .into_iter()
            .map(|s| Series {
                labels: s.labels.to_proto(),
                timestamps_ms: s.timestamps,
                values: s.values,
                ..Series::default()
            })
            .collect();
        let outcome = rt
            .block_on(self.engine.write(TENANT, request))
            .map_err(|e| format!("write: {e}"))?;
        if !outcome.errors.is_empty() || outcome.rows != expected {
            return Err(format!(
                "write stored {} of {expected} samples: {:?}",
                outcome.rows, outcome.errors
            ));
        }
        self.engine.flush().map_err(|e| format!("flush: {e}"))?;
        if self.engine.head_samples() != 0 {
            return Err(format!(
                "{} samples still in the head after a flush",
                self.engine.head_samples()
            ));
        }
        Ok(())
    }

    fn querier(&self) -> &dyn Querier {
        self
    }
}

impl Querier for EngineStore {
    fn select<'a>(
        &'a self,
        matchers: &'a [Matcher],
        start_ms: i64,
        end_ms: i64,
    ) -> Pin<Box<dyn Future<Output = Result<Fetched, QueryError>> + Send + 'a>> {
        Box::pin(async move { self.search(matchers, start_ms, end_ms) })
    }
}
