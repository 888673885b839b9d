//! Cairn's storage node: owns the series hashed to it, stores their samples durably, and
//! answers searches. Never talks to another storage node.
//!
//! # On disk (`--data-dir`)
//!
//! - `wal/NNNNNNNNNNNNNNNNNNNN.wal`: the write-ahead log (`wal.rs`): series records (ID +
//!   canonical key) and sample records, checksummed, in numbered segments.
//! - `rocksdb/`: one RocksDB instance with
//!   - `series_ids` (canonical key → series ID), `series_keys` (ID → canonical key) and
//!     `postings` (scope, tenant, label name, value → roaring bitmap of IDs, union merge
//!     operator), where scope is a UTC day or "all days" (`index.rs`);
//!   - one column family per UTC day, `blocks_YYYYMMDD`, holding compressed blocks keyed
//!     by series ID, first timestamp and sequence number (`partitions.rs`, [`block`]):
//!     even for a flush, odd for a merge; for a timestamp in several blocks, the higher
//!     sequence number wins.
//!
//!   RocksDB compresses the index column families with zstd over 64 KiB SST blocks and
//!   the partitions with zstd (level 9) over 1 MiB SST blocks. Blocks go into partitions
//!   with their columns coded but not zstd-compressed ([`block::encode_unpacked`]): zstd
//!   over a megabyte of neighbouring series (often one scrape target's, created
//!   together) stores byte-identical timestamp columns about once and finds what alike
//!   value columns share, which beats compressing each column alone (`db.rs`).
//!
//! # Write path
//!
//! Insert nodes send a request's label sets packed as canonical keys (`WriteRequest`
//! fields 3–6), so that neither side builds a string per label; the node checks each key
//! and uses its bytes as they are.
//!
//! Validate → look up or create each series (index write, not synced) → per-day postings
//! for days not yet indexed → the commit thread appends one WAL record batch for all
//! concurrent writes, fsyncs once (`--wal-sync always`), appends to the in-memory head,
//! and only then is the write acknowledged. No per-sample RocksDB write. A series whose
//! WAL record is not yet durable is logged again with the next write that uses it. The
//! series of a request are looked up in the series cache on the gRPC thread; a request
//! whose series are all cached, with samples on the day each entry notes as indexed (the
//! steady state), is queued for the commit thread from there, and any other moves to a
//! blocking thread for its index reads and writes.
//!
//! Durability guarantee: an acknowledged write survives a process crash (and, with
//! `--wal-sync always`, a power loss): the WAL replays on start into the index and head.
//!
//! # Flush, partitions, retention
//!
//! Every `--flush-interval`, as soon as the head holds more than `--head-max-samples`
//! samples, on `/internal/force_flush` and at shutdown, the commit thread
//! starts a new WAL segment and copies the head; the copy is sorted, de-duplicated by
//! timestamp (last arrival wins), cut by UTC day and written as one block per series and
//! day (timestamps: constant interval, delta-of-delta or grid offsets; values: constant,
//! Gorilla XOR or decimal mantissas) in one synced batch; then the
//! copied samples leave the head and older WAL segments are deleted. Retention
//! drops whole day partitions (and their per-day postings) once the day ended before now
//! minus `--retention`; samples older than that are not accepted.
//!
//! # Search
//!
//! Matchers → bitmap algebra over the per-day postings of the days in the range (all-time
//! postings beyond 62 days) → for each ID, the blocks that overlap the range plus the
//! head's chunks, sent as they are stored (`Series.blocks`, in precedence order: later
//! flush over earlier, head over blocks), in messages of about 2 MiB; the select node
//! decodes them, cuts them to the range and keeps one sample per timestamp. A select that
//! does not ask for blocks gets the samples decoded and merged here instead
//! (`Series.samples_le`, at most 65,536 samples a message; a longer series comes in
//! consecutive pieces with the same labels).
//!
//! # Merges
//!
//! After each periodic flush, small blocks merge into large ones in every partition, the
//! current day's included ([`engine::merge`]): a series' flushed blocks in a day merge
//! once they hold 3,600 samples or the oldest starts an hour before now, into blocks of
//! up to 8,192 samples. A merged block of 3,600 samples or more is final unless a late
//! sample overlaps it. Merges run in bounded steps beside flushes and writes.
//! `/internal/force_merge` (or `force_flush?merge=1`) flushes, merges everything and runs
//! a RocksDB manual compaction, leaving the data in its final form.
//!
//! # Memory
//!
//! Bounded by flags and constants, reported in `/metrics` ([`Engine::report_usage`]):
//! the head (`--head-max-samples`; an open tail of up to 32 samples per series at 16
//! bytes a sample, older samples in sealed chunks of the block format at ~1–2 bytes a
//! sample; `cairn_storage_head_samples`, `cairn_storage_head_memory_bytes`); the series
//! key → ID map in front of the index (`--series-cache-max-bytes`, two generations per
//! shard: series unseen for two rotations are dropped and found in the index again;
//! `cairn_storage_index_memory_bytes{part="series_cache"}`; each entry also notes the
//! series' last indexed day, so most samples need no other look-up); the sets of
//! `(series, day)` pairs whose per-day postings are written for other days (late
//! samples, WAL replay) or being written (cleared past 4 million pairs); RocksDB's memtables (8 MiB per
//! partition, 2 MiB per index column family, 32 MiB per node) and one 16 MiB block cache
//! per process holding data, index and filter blocks (`cairn_storage_block_cache_bytes`);
//! the scan for unmerged blocks at start reads without filling it.
//!
//! Not yet done: removing series of expired days from the all-time index.

pub use cairn_common::block;
pub mod config;
pub mod day;
mod db;
pub mod engine;
pub mod error;
pub mod grpc;
mod head;
mod http;
mod index;
mod partitions;
mod shard_groups;
mod wal;

use std::sync::Arc;
use std::time::Instant;

use cairn_proto::storage::storage_server::StorageServer;
use tokio_util::sync::CancellationToken;

pub use config::StorageConfig;
pub use engine::{
    CompactStats, DEFAULT_INDEX_CACHE_BYTES, DEFAULT_SERIES_CACHE_BYTES, Engine, EngineOptions, FlushStats, IndexUsage,
    PendingWrite, PreparedWrite, WriteOutcome,
};
pub use error::StorageError;

/// Runs one storage node until `shutdown` is cancelled: opens the data dir (replaying the
/// WAL), serves gRPC on `cfg.grpc_listen` and HTTP on `cfg.http_listen`, writes
/// `cfg.listen_addr_file` (lines `http=ADDR` and `grpc=ADDR`) once ready to serve, then on
/// shutdown: stops accepting, finishes in-flight requests, flushes the head to blocks and
/// closes the WAL and RocksDB. Each step is logged with its duration.
/// Errors: the data dir cannot be opened, an address cannot be bound, the final flush fails.
pub async fn run(cfg: StorageConfig, shutdown: CancellationToken) -> Result<(), StorageError> {
    cairn_common::telemetry::metrics_handle();
    let started = Instant::now();
    let opts = EngineOptions {
        data_dir: cfg.data_dir.clone(),
        retention: cfg.retention,
        wal_sync: cfg.wal_sync,
        series_cache_bytes: cfg.series_cache_max_bytes,
        index_cache_bytes: cfg.index_cache_max_bytes,
    };
    let engine = Arc::new(
        tokio::task::spawn_blocking(move || Engine::open(&opts))
            .await
            .map_err(|e| StorageError::Internal(format!("open task failed: {e}")))??,
    );
    tracing::info!(
        data_dir = %cfg.data_dir.display(),
        head_samples = engine.head_samples(),
        took_ms = started.elapsed().as_millis() as u64,
        "storage engine open"
    );
    {
        let e = engine.clone();
        let now = engine::now_ms();
        tokio::task::spawn_blocking(move || e.apply_retention(now))
            .await
            .map_err(|e| StorageError::Internal(format!("retention task failed: {e}")))??;
    }

    let grpc_listener = cairn_common::http::bind(&cfg.grpc_listen)
        .await
        .map_err(|e| StorageError::io("bind gRPC", e))?;
    let http_listener = cairn_common::http::bind(&cfg.http_listen)
        .await
        .map_err(|e| StorageError::io("bind HTTP", e))?;
    let grpc_addr = grpc_listener
        .local_addr()
        .map_err(|e| StorageError::io("gRPC address", e))?;
    let http_addr = http_listener
        .local_addr()
        .map_err(|e| StorageError::io("HTTP address", e))?;

    let service = StorageServer::new(grpc::StorageService::new(engine.clone()))
        .max_decoding_message_size(cfg.grpc_max_recv_bytes)
        .max_encoding_message_size(usize::MAX);
    let grpc_shutdown = shutdown.clone();
    let grpc_task = tokio::spawn(async move {
        tonic::transport::Server::builder()
            .serve_with_incoming_shutdown(
                service,
                // TCP_NODELAY: without it, small HTTP/2 frames of a search answer wait
                // for the peer's delayed ACK (~40 ms per request).
                tonic::transport::server::TcpIncoming::from(grpc_listener).with_nodelay(Some(true)),
                grpc_shutdown.cancelled_owned(),
            )
            .await
    });
    let router = cairn_common::http::with_request_metrics(http::routes(engine.clone()), "storage");
    let http_task = tokio::spawn(cairn_common::http::serve(http_listener, router, shutdown.clone()));
    let flusher = tokio::spawn(http::flush_loop(
        engine.clone(),
        cfg.flush_interval,
        cfg.head_max_samples,
        shutdown.clone(),
    ));

    if let Some(path) = &cfg.listen_addr_file {
        cairn_common::listen_addr_file::write(path, &[("http", http_addr), ("grpc", grpc_addr)])
            .map_err(|e| StorageError::io(format!("write listen address file {}", path.display()), e))?;
    }
    tracing::info!(%grpc_addr, %http_addr, took_ms = started.elapsed().as_millis() as u64, "storage node ready");

    shutdown.cancelled().await;
    let step = Instant::now();
    match grpc_task.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::error!(error = %e, "gRPC server failed"),
        Err(e) => tracing::error!(error = %e, "gRPC server task failed"),
    }
    match http_task.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::error!(error = %e, "HTTP server failed"),
        Err(e) => tracing::error!(error = %e, "HTTP server task failed"),
    }
    let _ = flusher.await;
    tracing::info!(
        took_ms = step.elapsed().as_millis() as u64,
        "stopped serving; in-flight requests done"
    );

    let step = Instant::now();
    let e = engine.clone();
    let stats = tokio::task::spawn_blocking(move || e.flush())
        .await
        .map_err(|e| StorageError::Internal(format!("final flush task failed: {e}")))??;
    tracing::info!(
        series = stats.series,
        samples = stats.samples,
        blocks = stats.blocks,
        took_ms = step.elapsed().as_millis() as u64,
        "flushed the head"
    );
    let step = Instant::now();
    engine.close_wal();
    drop(engine);
    tracing::info!(
        took_ms = step.elapsed().as_millis() as u64,
        "closed the WAL and RocksDB"
    );
    Ok(())
}

// Dev-dependency used only by the benchmark targets.
#[cfg(test)]
use criterion as _;
