//! The write path: validation, series look-up or creation, per-day postings, then the
//! WAL commit.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use cairn_common::{Labels, METRIC_NAME, Tenant};
use cairn_proto::storage::Series;

use crate::block::Sample;
use crate::day::day_of;
use crate::engine::commit::{Command, Commit};
use crate::engine::{Engine, SeriesEntry, now_ms};
use crate::error::StorageError;

/// What a write did: samples stored, and a message per malformed series (the valid
/// series of the same request are stored).
#[derive(Debug, Default)]
pub struct WriteOutcome {
    /// Samples accepted (durable and visible).
    pub rows: u64,
    /// One message per rejected series, naming the problem.
    pub errors: Vec<String>,
}

/// A write queued for the WAL; [`PendingWrite::finish`] waits for it to be durable.
#[must_use = "a write is acknowledged only once finish() returns"]
pub struct PendingWrite {
    outcome: WriteOutcome,
    rows: u64,
    wait: Option<tokio::sync::oneshot::Receiver<Result<(), String>>>,
}

impl PendingWrite {
    /// Waits until the samples are in the WAL (fsynced unless `--wal-sync never`) and
    /// the head. Errors: the WAL write failed or the node is shutting down.
    pub async fn finish(self) -> Result<WriteOutcome, StorageError> {
        let mut outcome = self.outcome;
        if let Some(wait) = self.wait {
            wait.await
                .map_err(|_| StorageError::WalClosed("the commit thread has stopped".into()))?
                .map_err(StorageError::WalClosed)?;
            metrics::counter!("cairn_storage_rows_ingested_total").increment(self.rows);
            outcome.rows = self.rows;
        }
        Ok(outcome)
    }
}

impl Engine {
    /// The ID of the series `key`, creating it when new. Returns the ID and, when no
    /// WAL record of the series is known to be durable yet, its durability flag.
    fn resolve(
        &self,
        key: &[u8],
        tenant: Tenant,
        labels: &Labels,
    ) -> Result<(u64, Option<Arc<AtomicBool>>), StorageError> {
        let lookup = |shard: &HashMap<Vec<u8>, SeriesEntry>| {
            shard.get(key).map(|e| {
                let pending = (!e.durable.load(Ordering::Acquire)).then(|| e.durable.clone());
                (e.id, pending)
            })
        };
        if let Some(found) = lookup(&self.series_shard(key).lock()) {
            return Ok(found);
        }
        let _create = self.create_lock.lock();
        if let Some(found) = lookup(&self.series_shard(key).lock()) {
            return Ok(found);
        }
        if let Some(id) = self.index.series_id(key)? {
            self.remember(key.to_vec(), id, true);
            return Ok((id, None));
        }
        let id = self.next_id.fetch_add(1, Ordering::SeqCst);
        self.index.create_series(id, key, tenant, labels)?;
        metrics::counter!("cairn_storage_series_created_total").increment(1);
        let flag = self.remember(key.to_vec(), id, false);
        Ok((id, Some(flag)))
    }

    pub(super) fn remember(&self, key: Vec<u8>, id: u64, durable: bool) -> Arc<AtomicBool> {
        let flag = Arc::new(AtomicBool::new(durable));
        let mut shard = self.series_shard(&key).lock();
        shard.insert(
            key,
            SeriesEntry {
                id,
                durable: flag.clone(),
            },
        );
        flag
    }

    /// Writes the per-day postings of series whose samples fall on days not yet
    /// indexed.
    pub(super) fn index_days(&self, items: &[(u64, Tenant, &Labels, &[Sample])]) -> Result<(), StorageError> {
        let mut new = Vec::new();
        {
            let mut seen = self.days_indexed.lock();
            for (id, tenant, labels, samples) in items {
                let mut last_day = None;
                for (t, _) in samples.iter() {
                    let day = day_of(*t);
                    if last_day == Some(day) {
                        continue;
                    }
                    last_day = Some(day);
                    if seen.insert((*id, day)) {
                        new.push((*id, day, *tenant, *labels));
                    }
                }
            }
        }
        if let Err(e) = self.index.add_days(&new) {
            let mut seen = self.days_indexed.lock();
            for (id, day, _, _) in &new {
                seen.remove(&(*id, *day));
            }
            return Err(e);
        }
        Ok(())
    }

    /// Stores the series of one request for `tenant`. Malformed series (no labels, no
    /// `__name__`, an empty label name, timestamps and values of different lengths) are
    /// reported in [`WriteOutcome::errors`] and skipped; samples older than the retention
    /// are dropped and counted. Answers once the samples are in the WAL (fsynced unless
    /// `--wal-sync never`) and in the head. Errors: the index or WAL failed.
    pub async fn write(&self, tenant: Tenant, series: Vec<Series>) -> Result<WriteOutcome, StorageError> {
        self.start_write(tenant, series)?.finish().await
    }

    /// The synchronous first half of [`Engine::write`]: validates, looks up or creates
    /// the series (RocksDB reads and writes: call it off async threads) and queues the
    /// samples for the WAL. Await [`PendingWrite::finish`] for the acknowledgement.
    pub fn start_write(&self, tenant: Tenant, series: Vec<Series>) -> Result<PendingWrite, StorageError> {
        let mut outcome = WriteOutcome::default();
        let min_ts = now_ms().saturating_sub(self.retention_ms);
        let mut parsed: Vec<(Labels, Vec<Sample>)> = Vec::with_capacity(series.len());
        let mut too_old = 0u64;
        for (i, s) in series.into_iter().enumerate() {
            if s.timestamps_ms.len() != s.values.len() {
                outcome.errors.push(format!(
                    "series {i}: {} timestamps but {} values",
                    s.timestamps_ms.len(),
                    s.values.len()
                ));
                continue;
            }
            if let Some(l) = s.labels.iter().find(|l| l.name.is_empty()) {
                outcome
                    .errors
                    .push(format!("series {i}: a label with an empty name (value {:?})", l.value));
                continue;
            }
            let labels = Labels::from_proto(s.labels);
            if labels.is_empty() {
                outcome.errors.push(format!("series {i}: no labels"));
                continue;
            }
            if labels.get(METRIC_NAME).is_none() {
                outcome
                    .errors
                    .push(format!("series {i} {labels}: no {METRIC_NAME} label"));
                continue;
            }
            let samples: Vec<Sample> = s
                .timestamps_ms
                .into_iter()
                .zip(s.values)
                .filter(|(t, _)| {
                    let keep = *t >= min_ts;
                    too_old += u64::from(!keep);
                    keep
                })
                .map(|(t, v)| (t, v.to_bits()))
                .collect();
            if !samples.is_empty() {
                parsed.push((labels, samples));
            }
        }
        if too_old > 0 {
            metrics::counter!("cairn_storage_rows_ignored_total", "reason" => "too_old").increment(too_old);
        }
        if !outcome.errors.is_empty() {
            metrics::counter!("cairn_storage_series_rejected_total").increment(outcome.errors.len() as u64);
        }
        if parsed.is_empty() {
            return Ok(PendingWrite {
                outcome,
                rows: 0,
                wait: None,
            });
        }
        let mut commit_series = Vec::new();
        let mut durable = Vec::new();
        let mut ids = Vec::with_capacity(parsed.len());
        for (labels, _) in &parsed {
            let key = labels.canonical_key(tenant);
            let (id, pending) = self.resolve(&key, tenant, labels)?;
            if let Some(flag) = pending {
                commit_series.push((id, key));
                durable.push(flag);
            }
            ids.push(id);
        }
        let items: Vec<(u64, Tenant, &Labels, &[Sample])> = parsed
            .iter()
            .zip(&ids)
            .map(|((l, s), id)| (*id, tenant, l, s.as_slice()))
            .collect();
        self.index_days(&items)?;
        let rows: u64 = parsed.iter().map(|(_, s)| s.len() as u64).sum();
        let samples: Vec<(u64, Vec<Sample>)> = ids.into_iter().zip(parsed.into_iter().map(|(_, s)| s)).collect();
        let (done, wait) = tokio::sync::oneshot::channel();
        self.send(Command::Commit(Commit {
            series: commit_series,
            samples,
            durable,
            done,
        }))?;
        Ok(PendingWrite {
            outcome,
            rows,
            wait: Some(wait),
        })
    }
}
