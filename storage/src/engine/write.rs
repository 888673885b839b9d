//! The write path: validation, series look-up or creation, per-day postings, then the
//! WAL commit.
//!
//! A request's series are keyed without building [`Labels`] when their labels arrive as
//! a storable label set (sorted by name, names unique, no empty name or value, with a
//! `__name__`), which is what insert nodes send: the canonical key is written straight
//! into one buffer per request and looked up by its bytes. Other label lists take the
//! general path (sorting, dropping empty values, detailed errors). The samples of the
//! request go into one vector, in series order, and travel to the commit thread as such.

mod series_key;

use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use cairn_common::{Labels, METRIC_NAME, Tenant};
use cairn_proto::storage::Series;

use crate::block::Sample;
use crate::day::day_of;
use crate::engine::commit::{Command, Commit, SampleRuns};
use crate::engine::{Engine, SeriesEntry, now_ms};
use crate::error::StorageError;
use crate::index::hash::KeyMap;

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

/// One accepted series of a request: its index in the request and its samples' range
/// in the request's sample vector.
struct Item {
    series: usize,
    samples: Range<usize>,
}

/// Writes into `out` (cleared first) the canonical key of `s` for `tenant`. Errors: the
/// message that rejects the series' labels (series number `i`).
fn series_key(tenant: Tenant, i: usize, s: &Series, out: &mut Vec<u8>) -> Result<(), String> {
    out.clear();
    if !series_key::append_if_storable(tenant, &s.labels, out) {
        out.clear();
        let labels = general_labels(i, s.labels.clone())?;
        out.extend_from_slice(&labels.canonical_key(tenant));
    }
    Ok(())
}

/// The label set of series `i` through the general path, or the message that rejects it.
fn general_labels(i: usize, labels: Vec<cairn_proto::storage::Label>) -> Result<Labels, String> {
    if let Some(l) = labels.iter().find(|l| l.name.is_empty()) {
        return Err(format!("series {i}: a label with an empty name (value {:?})", l.value));
    }
    let labels = Labels::from_proto(labels);
    if labels.is_empty() {
        return Err(format!("series {i}: no labels"));
    }
    if labels.get(METRIC_NAME).is_none() {
        return Err(format!("series {i} {labels}: no {METRIC_NAME} label"));
    }
    Ok(labels)
}

/// Decodes a key this node built (for a new series or a new day of a series).
fn labels_of_key(key: &[u8]) -> Result<Labels, StorageError> {
    Labels::from_canonical_key(key)
        .map(|(_, l)| l)
        .ok_or_else(|| StorageError::Internal("a series key built by the write path does not decode".into()))
}

impl Engine {
    /// The ID of the series `key`, creating it when new. Returns the ID and, when no
    /// WAL record of the series is known to be durable yet, its durability flag.
    fn resolve(&self, key: &[u8], tenant: Tenant) -> Result<(u64, Option<Arc<AtomicBool>>), StorageError> {
        let lookup = |shard: &KeyMap<SeriesEntry>| {
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
        let labels = labels_of_key(key)?;
        let id = self.next_id.fetch_add(1, Ordering::SeqCst);
        self.index.create_series(id, key, tenant, &labels)?;
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
                for day in new_days(&mut seen, *id, samples) {
                    new.push((*id, day, *tenant, *labels));
                }
            }
        }
        self.add_days(&new)
    }

    /// [`Engine::index_days`] for the series of one request: `ids[i]` is the ID of
    /// `items[i]`; the labels of the (rare) series with a new day are rebuilt from the request.
    fn index_request_days(
        &self,
        tenant: Tenant,
        series: &[Series],
        ids: &[u64],
        items: &[Item],
        samples: &[Sample],
    ) -> Result<(), StorageError> {
        let mut new: Vec<(u64, u32, usize)> = Vec::new();
        {
            let mut seen = self.days_indexed.lock();
            for (item, &id) in items.iter().zip(ids) {
                for day in new_days(&mut seen, id, &samples[item.samples.clone()]) {
                    new.push((id, day, item.series));
                }
            }
        }
        if new.is_empty() {
            return Ok(());
        }
        let mut key = Vec::new();
        let labels = new
            .iter()
            .map(|&(_, _, i)| {
                series_key(tenant, i, &series[i], &mut key).map_err(StorageError::Internal)?;
                labels_of_key(&key)
            })
            .collect::<Result<Vec<Labels>, _>>();
        let labels = match labels {
            Ok(l) => l,
            Err(e) => {
                self.forget_days(new.iter().map(|&(id, day, _)| (id, day)));
                return Err(e);
            }
        };
        let entries: Vec<(u64, u32, Tenant, &Labels)> = new
            .iter()
            .zip(&labels)
            .map(|(&(id, day, _), l)| (id, day, tenant, l))
            .collect();
        self.add_days(&entries)
    }

    /// Writes per-day postings already marked as indexed; unmarks them when the write
    /// fails, so a later sample retries.
    fn add_days(&self, new: &[(u64, u32, Tenant, &Labels)]) -> Result<(), StorageError> {
        if let Err(e) = self.index.add_days(new) {
            self.forget_days(new.iter().map(|(id, day, _, _)| (*id, *day)));
            return Err(e);
        }
        Ok(())
    }

    fn forget_days(&self, pairs: impl Iterator<Item = (u64, u32)>) {
        let mut seen = self.days_indexed.lock();
        for p in pairs {
            seen.remove(&p);
        }
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
        let mut key: Vec<u8> = Vec::with_capacity(256);
        let mut samples: Vec<Sample> = Vec::with_capacity(series.len());
        let mut items: Vec<Item> = Vec::with_capacity(series.len());
        let mut ids: Vec<u64> = Vec::with_capacity(series.len());
        let mut commit_series = Vec::new();
        let mut durable = Vec::new();
        let mut too_old = 0u64;
        for (i, s) in series.iter().enumerate() {
            if s.timestamps_ms.len() != s.values.len() {
                outcome.errors.push(format!(
                    "series {i}: {} timestamps but {} values",
                    s.timestamps_ms.len(),
                    s.values.len()
                ));
                continue;
            }
            if let Err(msg) = series_key(tenant, i, s, &mut key) {
                outcome.errors.push(msg);
                continue;
            }
            let first = samples.len();
            for (&t, &v) in s.timestamps_ms.iter().zip(&s.values) {
                if t >= min_ts {
                    samples.push((t, v.to_bits()));
                } else {
                    too_old += 1;
                }
            }
            if samples.len() == first {
                continue;
            }
            let (id, pending) = self.resolve(&key, tenant)?;
            if let Some(flag) = pending {
                commit_series.push((id, key.clone()));
                durable.push(flag);
            }
            ids.push(id);
            items.push(Item {
                series: i,
                samples: first..samples.len(),
            });
        }
        if too_old > 0 {
            metrics::counter!("cairn_storage_rows_ignored_total", "reason" => "too_old").increment(too_old);
        }
        if !outcome.errors.is_empty() {
            metrics::counter!("cairn_storage_series_rejected_total").increment(outcome.errors.len() as u64);
        }
        if items.is_empty() {
            return Ok(PendingWrite {
                outcome,
                rows: 0,
                wait: None,
            });
        }
        self.index_request_days(tenant, &series, &ids, &items, &samples)?;
        drop(series);
        let rows = samples.len() as u64;
        let runs = ids
            .iter()
            .zip(&items)
            .map(|(&id, item)| (id, item.samples.len()))
            .collect();
        let (done, wait) = tokio::sync::oneshot::channel();
        self.send(Command::Commit(Commit {
            series: commit_series,
            samples: SampleRuns { runs, samples },
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

/// The days of `samples` (in any order) whose `(id, day)` pair is not yet in `seen`;
/// adds them to `seen`.
fn new_days<S: std::hash::BuildHasher>(
    seen: &mut std::collections::HashSet<(u64, u32), S>,
    id: u64,
    samples: &[Sample],
) -> Vec<u32> {
    let mut out = Vec::new();
    let mut last_day = None;
    for (t, _) in samples {
        let day = day_of(*t);
        if last_day == Some(day) {
            continue;
        }
        last_day = Some(day);
        if seen.insert((id, day)) {
            out.push(day);
        }
    }
    out
}

#[cfg(test)]
mod tests;
