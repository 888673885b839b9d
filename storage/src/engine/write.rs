//! The write path: validation, series look-up or creation, per-day postings, then the
//! WAL commit.
//!
//! A request's series are keyed without building [`Labels`]: packed series (what insert
//! nodes send, `WriteRequest` fields 3–6) carry their canonical keys, which are checked
//! and used as they are; listed series whose labels form a storable label set (sorted by
//! name, names unique, no empty name or value, with a `__name__`) have their key written
//! straight into a buffer. Other label lists take the general path (sorting, dropping
//! empty values, detailed errors). Keys are looked up by their bytes. The samples of the
//! request go into one vector, in series order, and travel to the commit thread as such.

mod series_key;

use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use cairn_common::{Labels, METRIC_NAME, Tenant};
use cairn_proto::storage::{Series, WriteRequest};

use crate::block::Sample;
use crate::day::day_of;
use crate::engine::commit::{Command, Commit, SampleRuns};
use crate::engine::series_cache::{Fingerprint, Found};
use crate::engine::write_epoch::{WriteEpoch, is_late};
use crate::engine::{Engine, now_ms};
use crate::error::StorageError;
use crate::index::hash::IndexedDays;

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
    /// Set when the write is late: the epoch to bump once its samples are in the head.
    late: Option<WriteEpoch>,
}

impl PendingWrite {
    /// Waits until the samples are in the WAL (fsynced unless `--wal-sync never`) and
    /// the head. Errors: the WAL write failed or the node is shutting down.
    pub async fn finish(self) -> Result<WriteOutcome, StorageError> {
        let mut outcome = self.outcome;
        if let Some(wait) = self.wait {
            let done = wait.await;
            // Bumped whatever the outcome: a failed commit may have reached the head.
            if let Some(epoch) = &self.late {
                epoch.bump();
            }
            done.map_err(|_| StorageError::WalClosed("the commit thread has stopped".into()))?
                .map_err(StorageError::WalClosed)?;
            metrics::counter!("cairn_storage_rows_ingested_total").increment(self.rows);
            outcome.rows = self.rows;
        }
        Ok(outcome)
    }
}

/// The series of one accepted item of a request, as the series cache (or the index) gave
/// it.
struct ItemSeries {
    id: u64,
    /// Its key's fingerprint in the series cache.
    fp: Fingerprint,
    /// The last day its cache entry notes as indexed.
    indexed_day: Option<u32>,
}

/// A write staged and looked up in the series cache by [`Engine::prepare_write`], to be
/// finished by [`Engine::commit_prepared`].
pub struct PreparedWrite {
    tenant: Tenant,
    st: Staged,
    fps: Vec<Fingerprint>,
    /// What the series cache holds for each item of `st`.
    cached: Vec<Option<Found>>,
    /// Whether every series is cached with all its samples on the day its entry notes.
    cached_days: bool,
}

impl PreparedWrite {
    /// Whether [`Engine::commit_prepared`] will not touch the index (no disk read or
    /// write): every series is in the series cache and every sample falls on the day its
    /// cache entry notes as indexed. The usual case for a steady set of series.
    pub fn is_cached(&self) -> bool {
        self.cached_days
    }
}

/// Whether all of `samples` fall on `day` (days since the Unix epoch, UTC), as noted in
/// a series-cache entry; false without a noted day.
fn on_noted_day(samples: &[Sample], day: Option<u32>) -> bool {
    day.is_some_and(|d| samples.iter().all(|&(t, _)| day_of(t) == d))
}

/// One accepted series of a request: its canonical key's range in the request's key
/// buffer and its samples' range in the request's sample vector.
struct Item {
    key: Range<usize>,
    samples: Range<usize>,
    /// The series' number in the request, for messages.
    series: usize,
    /// Whether the key is known to be storable; a packed key is checked only when it is
    /// not in the series cache (a cached key was checked when it entered).
    checked: bool,
}

/// A request's accepted series, keyed, with their samples (those within the retention).
#[derive(Default)]
struct Staged {
    /// The canonical keys of the accepted series, one after the other.
    keys: Vec<u8>,
    items: Vec<Item>,
    samples: Vec<Sample>,
    errors: Vec<String>,
    too_old: u64,
    /// Timestamp of the oldest sample of `samples`, ms (`None` while there is none).
    oldest_ms: Option<i64>,
}

impl Staged {
    /// Adds a series whose canonical key is the concatenation of `key` (tenant prefix
    /// first) when some of its samples are not older than `min_ts`.
    fn push(
        &mut self,
        series: usize,
        checked: bool,
        key: &[&[u8]],
        min_ts: i64,
        samples: impl Iterator<Item = (i64, f64)>,
    ) {
        let first = self.samples.len();
        let mut oldest = i64::MAX;
        for (t, v) in samples {
            if t >= min_ts {
                self.samples.push((t, v.to_bits()));
                oldest = oldest.min(t);
            } else {
                self.too_old += 1;
            }
        }
        if self.samples.len() == first {
            return;
        }
        self.oldest_ms = Some(self.oldest_ms.map_or(oldest, |o| o.min(oldest)));
        let at = self.keys.len();
        for part in key {
            self.keys.extend_from_slice(part);
        }
        self.items.push(Item {
            key: at..self.keys.len(),
            samples: first..self.samples.len(),
            series,
            checked,
        });
    }

    /// Removes the items at the (ascending) positions `rejected`, and their samples.
    fn remove(&mut self, rejected: &[usize]) {
        let mut samples = Vec::with_capacity(self.samples.len());
        let mut items = Vec::with_capacity(self.items.len() - rejected.len());
        let mut skip = rejected.iter().peekable();
        for (n, item) in self.items.drain(..).enumerate() {
            if skip.next_if_eq(&&n).is_some() {
                continue;
            }
            let first = samples.len();
            samples.extend_from_slice(&self.samples[item.samples]);
            items.push(Item {
                samples: first..samples.len(),
                ..item
            });
        }
        self.items = items;
        self.samples = samples;
    }

    /// Stages the series of `req` (the `series` list, then the packed series) for
    /// `tenant`; malformed series become messages in `errors`.
    fn request(tenant: Tenant, req: &WriteRequest, min_ts: i64) -> Staged {
        let packed = req.sample_counts.len();
        let mut st = Staged {
            keys: Vec::with_capacity(req.series_keys.len() + 8 * packed + 128 * req.series.len()),
            items: Vec::with_capacity(req.series.len() + packed),
            samples: Vec::with_capacity(req.timestamps_ms.len() + req.series.len()),
            ..Staged::default()
        };
        let mut key: Vec<u8> = Vec::with_capacity(256);
        for (i, s) in req.series.iter().enumerate() {
            if s.timestamps_ms.len() != s.values.len() {
                st.errors.push(format!(
                    "series {i}: {} timestamps but {} values",
                    s.timestamps_ms.len(),
                    s.values.len()
                ));
                continue;
            }
            match series_key(tenant, i, s, &mut key) {
                Ok(()) => st.push(
                    i,
                    true,
                    &[&key],
                    min_ts,
                    s.timestamps_ms.iter().copied().zip(s.values.iter().copied()),
                ),
                Err(msg) => st.errors.push(msg),
            }
        }
        if packed > 0 {
            st.packed(tenant, req, min_ts);
        }
        st
    }

    /// Stages the packed series of `req` (fields 3–6), numbered after `req.series`.
    fn packed(&mut self, tenant: Tenant, req: &WriteRequest, min_ts: i64) {
        let tenant = tenant.to_be_bytes();
        let total: u64 = req.sample_counts.iter().map(|&n| u64::from(n)).sum();
        if total != req.timestamps_ms.len() as u64 || total != req.values.len() as u64 {
            self.errors.push(format!(
                "packed series: sample_counts add up to {total} but there are {} timestamps and {} values",
                req.timestamps_ms.len(),
                req.values.len()
            ));
            return;
        }
        let mut keys = cairn_common::packed_keys::iter(&req.series_keys);
        let mut at = 0usize;
        for (j, &n) in req.sample_counts.iter().enumerate() {
            let i = req.series.len() + j;
            let range = at..at + n as usize;
            at = range.end;
            let labels = match keys.next() {
                Some(Ok(k)) => k,
                Some(Err(e)) => {
                    self.errors.push(format!("series {i}: {e}"));
                    return;
                }
                None => {
                    self.errors.push(format!(
                        "packed series: {} sample counts but {j} series keys",
                        req.sample_counts.len()
                    ));
                    return;
                }
            };
            let samples = req.timestamps_ms[range.clone()].iter().copied();
            let samples = samples.zip(req.values[range].iter().copied());
            self.push(i, false, &[&tenant, labels], min_ts, samples);
        }
        if keys.next().is_some() {
            self.errors.push(format!(
                "packed series: more series keys than the {} sample counts",
                req.sample_counts.len()
            ));
        }
    }
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
    /// The series `key`, which the series cache did not hold a moment ago: from the
    /// index, or a new series. Returns its ID and, when no WAL record of the series is
    /// known to be durable yet, its durability flag.
    fn resolve(&self, key: &[u8], tenant: Tenant) -> Result<Found, StorageError> {
        let _create = self.create_lock.lock();
        if let Some(found) = self.series.get(key) {
            return Ok(found);
        }
        let unnoted = |id, pending| Found {
            id,
            pending,
            indexed_day: None,
        };
        if let Some(id) = self.index.series_id(key)? {
            self.remember(key, id, true);
            return Ok(unnoted(id, None));
        }
        let labels = labels_of_key(key)?;
        let id = self.next_id.fetch_add(1, Ordering::SeqCst);
        self.index.create_series(id, key, tenant, &labels)?;
        metrics::counter!("cairn_storage_series_created_total").increment(1);
        let flag = self.remember(key, id, false);
        Ok(unnoted(id, Some(flag)))
    }

    pub(super) fn remember(&self, key: &[u8], id: u64, durable: bool) -> Arc<AtomicBool> {
        self.series.insert(key, id, durable)
    }

    /// Writes the per-day postings of series whose samples fall on days not yet
    /// indexed (WAL replay: every day is remembered in the written set).
    pub(super) fn index_days(&self, items: &[(u64, Tenant, &Labels, &[Sample])]) -> Result<(), StorageError> {
        let mut new = Vec::new();
        {
            let mut days = self.days_indexed.lock();
            for (id, tenant, labels, samples) in items {
                for day in days_of(samples) {
                    if claim_day(&mut days, *id, day) == Claim::Mine {
                        new.push((*id, day, *tenant, *labels));
                    }
                }
            }
        }
        self.add_days(&new)?;
        let pairs = || new.iter().map(|(id, day, _, _)| (*id, *day));
        self.settle_days(pairs(), pairs());
        Ok(())
    }

    /// [`Engine::index_days`] for the series of one request: `found[i]` is what the
    /// series cache (or the index) gave for `st.items[i]`. A series whose samples all
    /// fall on the day its cache entry notes is skipped without another look-up; the
    /// labels of the (rare) series with a new day are decoded from their keys. A day this
    /// write indexes, or finds indexed by an earlier write, is noted in the series' cache
    /// entry when it is that series' latest; other days go to the written set.
    fn index_request_days(&self, tenant: Tenant, st: &Staged, found: &[ItemSeries]) -> Result<(), StorageError> {
        let mut new: Vec<(u64, u32, usize)> = Vec::new();
        let mut done: Vec<(usize, u32)> = Vec::new();
        {
            let mut days = None;
            for (i, (item, f)) in st.items.iter().zip(found).enumerate() {
                let samples = &st.samples[item.samples.clone()];
                if on_noted_day(samples, f.indexed_day) {
                    continue;
                }
                let days = days.get_or_insert_with(|| self.days_indexed.lock());
                for day in days_of(samples) {
                    match claim_day(days, f.id, day) {
                        Claim::Mine => new.push((f.id, day, i)),
                        Claim::Done => done.push((i, day)),
                        Claim::InFlight => {}
                    }
                }
            }
        }
        for &(i, day) in &done {
            self.series.note_indexed_day(found[i].fp, day);
        }
        if new.is_empty() {
            return Ok(());
        }
        let labels = new
            .iter()
            .map(|&(_, _, i)| labels_of_key(&st.keys[st.items[i].key.clone()]))
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
        self.add_days(&entries)?;
        // Noted before the in-flight mark goes, so no other write claims the day
        // meanwhile; a day the cache does not take is remembered in the written set.
        let older: Vec<(u64, u32)> = new
            .iter()
            .filter(|&&(_, day, i)| !self.series.note_indexed_day(found[i].fp, day))
            .map(|&(id, day, _)| (id, day))
            .collect();
        self.settle_days(older, new.iter().map(|&(id, day, _)| (id, day)));
        Ok(())
    }

    /// Writes per-day postings claimed with [`claim_day`]; unmarks them when the write
    /// fails, so a later sample retries. On success the caller records them as written
    /// and then drops their in-flight marks.
    fn add_days(&self, new: &[(u64, u32, Tenant, &Labels)]) -> Result<(), StorageError> {
        if new.is_empty() {
            return Ok(());
        }
        if let Err(e) = self.index.add_days(new) {
            self.forget_days(new.iter().map(|(id, day, _, _)| (*id, *day)));
            return Err(e);
        }
        Ok(())
    }

    /// After their postings are written: records `written` in the written set, then
    /// drops the in-flight marks of `claimed`.
    fn settle_days(&self, written: impl IntoIterator<Item = (u64, u32)>, claimed: impl Iterator<Item = (u64, u32)>) {
        let mut days = self.days_indexed.lock();
        days.written.extend(written);
        for p in claimed {
            days.in_flight.remove(&p);
        }
    }

    fn forget_days(&self, pairs: impl Iterator<Item = (u64, u32)>) {
        let mut days = self.days_indexed.lock();
        for p in pairs {
            days.in_flight.remove(&p);
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

    /// [`Engine::start_write_request`] for a list of series.
    pub fn start_write(&self, tenant: Tenant, series: Vec<Series>) -> Result<PendingWrite, StorageError> {
        self.start_write_request(
            tenant,
            &WriteRequest {
                series,
                ..WriteRequest::default()
            },
        )
    }

    /// The synchronous first half of a write of `req` (its `series` and its packed
    /// series; `req.tenant` is ignored for `tenant`): validates, looks up or creates the
    /// series (RocksDB reads and writes: call it off async threads) and queues the samples
    /// for the WAL. Await [`PendingWrite::finish`] for the acknowledgement.
    pub fn start_write_request(&self, tenant: Tenant, req: &WriteRequest) -> Result<PendingWrite, StorageError> {
        self.commit_prepared(self.prepare_write(tenant, req))
    }

    /// The part of [`Engine::start_write_request`] that reads no disk: stages the series
    /// of `req` and looks them up in the series cache. Cheap enough for an async thread.
    pub fn prepare_write(&self, tenant: Tenant, req: &WriteRequest) -> PreparedWrite {
        let min_ts = now_ms().saturating_sub(self.retention_ms);
        let st = Staged::request(tenant, req, min_ts);
        let fps: Vec<Fingerprint> = st
            .items
            .iter()
            .map(|item| self.series.fingerprint(&st.keys[item.key.clone()]))
            .collect();
        let cached = self.series.get_many(&fps);
        let cached_days = st.items.iter().zip(&cached).all(|(item, c)| {
            on_noted_day(
                &st.samples[item.samples.clone()],
                c.as_ref().and_then(|c| c.indexed_day),
            )
        });
        PreparedWrite {
            tenant,
            st,
            fps,
            cached,
            cached_days,
        }
    }

    /// The rest of [`Engine::start_write_request`] for a write from
    /// [`Engine::prepare_write`]: creates the series the cache did not hold and writes
    /// per-day postings (RocksDB reads and writes unless [`PreparedWrite::is_cached`]),
    /// then queues the samples for the WAL.
    pub fn commit_prepared(&self, prepared: PreparedWrite) -> Result<PendingWrite, StorageError> {
        let PreparedWrite {
            tenant,
            mut st,
            fps,
            cached,
            cached_days,
        } = prepared;
        let mut found: Vec<ItemSeries> = Vec::with_capacity(st.items.len());
        let mut commit_series = Vec::new();
        let mut durable = Vec::new();
        let mut rejected = Vec::new();
        for (n, ((item, fp), cached)) in st.items.iter().zip(fps).zip(cached).enumerate() {
            let key = &st.keys[item.key.clone()];
            let cached = match cached {
                Some(cached) => cached,
                None => {
                    if !item.checked
                        && let Err(e) = cairn_common::packed_keys::check_storable(&key[8..])
                    {
                        st.errors.push(format!("series {}: {e}", item.series));
                        rejected.push(n);
                        continue;
                    }
                    self.resolve(key, tenant)?
                }
            };
            if let Some(flag) = cached.pending {
                commit_series.push((cached.id, key.to_vec()));
                durable.push(flag);
            }
            found.push(ItemSeries {
                id: cached.id,
                fp,
                indexed_day: cached.indexed_day,
            });
        }
        if !rejected.is_empty() {
            st.remove(&rejected);
        }
        if st.too_old > 0 {
            metrics::counter!("cairn_storage_rows_ignored_total", "reason" => "too_old").increment(st.too_old);
        }
        if !st.errors.is_empty() {
            metrics::counter!("cairn_storage_series_rejected_total").increment(st.errors.len() as u64);
        }
        if st.items.is_empty() {
            return Ok(PendingWrite {
                outcome: WriteOutcome {
                    rows: 0,
                    errors: st.errors,
                },
                rows: 0,
                wait: None,
                late: None,
            });
        }
        if !cached_days {
            self.index_request_days(tenant, &st, &found)?;
        }
        let rows = st.samples.len() as u64;
        let late = is_late(st.oldest_ms, now_ms()).then(|| self.write_epoch.clone());
        let runs = found
            .iter()
            .zip(&st.items)
            .map(|(f, item)| (f.id, item.samples.len()))
            .collect();
        let (done, wait) = tokio::sync::oneshot::channel();
        self.send(Command::Commit(Commit {
            series: commit_series,
            samples: SampleRuns {
                runs,
                samples: st.samples,
            },
            durable,
            done,
        }))?;
        Ok(PendingWrite {
            outcome: WriteOutcome {
                rows: 0,
                errors: st.errors,
            },
            rows,
            wait: Some(wait),
            late,
        })
    }
}

/// The days of `samples` (in any order), each once per run of samples on one day.
fn days_of(samples: &[Sample]) -> impl Iterator<Item = u32> + '_ {
    let mut last = None;
    samples.iter().filter_map(move |&(t, _)| {
        let day = day_of(t);
        (last.replace(day) != Some(day)).then_some(day)
    })
}

/// Whose job the per-day postings of one `(series, day)` pair are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Claim {
    /// Nobody wrote them yet: this write does (it is now marked in flight).
    Mine,
    /// An earlier write wrote them.
    Done,
    /// Another write is writing them, and may still fail.
    InFlight,
}

/// Claims the postings of `(id, day)` in `days` (see [`Claim`]); a claim that is
/// [`Claim::Mine`] marks the pair in flight.
fn claim_day(days: &mut IndexedDays, id: u64, day: u32) -> Claim {
    if days.written.contains(&(id, day)) {
        Claim::Done
    } else if days.in_flight.insert((id, day)) {
        Claim::Mine
    } else {
        Claim::InFlight
    }
}

#[cfg(test)]
mod tests;
