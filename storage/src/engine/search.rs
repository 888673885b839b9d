//! Reads: samples of matching series, and the index look-ups behind the `Series`,
//! `LabelNames` and `LabelValues` rpcs.

use std::collections::BTreeSet;
use std::sync::Arc;

use bytes::Bytes;
use cairn_common::labels::cmp_key_labels;
use cairn_common::{Labels, Matcher, Tenant};
use roaring::RoaringTreemap;

use crate::block::Sample;
use crate::engine::Engine;
use crate::error::StorageError;
use crate::head::sort_dedup;
use crate::index::resolve::scopes;

/// Series read together by the batched reads of searches.
pub const READ_BATCH: usize = 256;

/// Most series whose labels [`Engine::cached_label_values`] and
/// [`Engine::cached_label_names`] gather from the caches for a request with selectors;
/// more take the full look-up.
pub const CACHED_LABEL_VALUES_MAX_SERIES: u64 = 512;

/// The labels part of canonical key `key` (its bytes after the tenant's 8) when the key is
/// `tenant`'s.
fn labels_part_of(key: Bytes, tenant: Tenant) -> Option<Bytes> {
    if key.get(..8)? != tenant.to_be_bytes().as_slice() {
        return None;
    }
    Some(key.slice(8..))
}

/// The labels part of a series' canonical key and its blocks in precedence order, as
/// stored.
pub type KeyedBlocks = (Bytes, Vec<Vec<u8>>);

/// The labels of the labels part of a canonical key. Errors: bytes that are not such a
/// part (a corrupt index; `what` names the key in the message).
pub(crate) fn labels_of_key(key: &[u8], what: impl FnOnce() -> String) -> Result<Labels, StorageError> {
    Labels::from_key_labels(key).ok_or_else(|| StorageError::CorruptIndex(what()))
}

/// A series' labels and its blocks in precedence order, as stored.
pub type SeriesBlocks = (Labels, Vec<Vec<u8>>);

impl Engine {
    /// IDs of the series of `tenant` matching all `matchers` with postings on the days of
    /// `[start_ms, end_ms]`.
    pub fn select_ids(
        &self,
        tenant: Tenant,
        matchers: &[Matcher],
        start_ms: i64,
        end_ms: i64,
    ) -> Result<RoaringTreemap, StorageError> {
        self.index.select(tenant, matchers, &scopes(start_ms, end_ms))
    }

    /// [`Engine::select_ids`] answered from the index's selection cache alone, without
    /// reading the disk, or `None` when the selection is not cached.
    pub fn cached_select_ids(
        &self,
        tenant: Tenant,
        matchers: &[Matcher],
        start_ms: i64,
        end_ms: i64,
    ) -> Option<Arc<RoaringTreemap>> {
        self.index.cached_select(tenant, matchers, &scopes(start_ms, end_ms))
    }

    /// IDs matching any of `selectors` (each a list of ANDed matchers); no selector means
    /// every series of the tenant.
    fn select_any(
        &self,
        tenant: Tenant,
        selectors: &[Vec<Matcher>],
        start_ms: i64,
        end_ms: i64,
    ) -> Result<RoaringTreemap, StorageError> {
        if selectors.is_empty() {
            return self.select_ids(tenant, &[], start_ms, end_ms);
        }
        let mut ids = RoaringTreemap::new();
        for s in selectors {
            ids |= self.select_ids(tenant, s, start_ms, end_ms)?;
        }
        Ok(ids)
    }

    /// The labels of series `id` and its samples in `[start_ms, end_ms]` from blocks and
    /// head: sorted by timestamp, one per timestamp (the head wins over blocks, a later
    /// flush over an earlier one). `None` when the series has no sample in the range or
    /// does not belong to `tenant`.
    pub fn read_series(
        &self,
        tenant: Tenant,
        id: u64,
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Option<(Labels, Vec<Sample>)>, StorageError> {
        let mut blocks = self.partitions.read(id, start_ms, end_ms)?;
        let head = self.head.samples_in(id, start_ms, end_ms);
        if blocks.is_empty() && head.is_empty() {
            return Ok(None);
        }
        blocks.sort_by_key(|(seq, _)| *seq);
        let mut all: Vec<Sample> = Vec::with_capacity(head.len() + blocks.iter().map(|b| b.1.len()).sum::<usize>());
        for (_, s) in blocks {
            all.extend(s.into_iter().filter(|(t, _)| *t >= start_ms && *t <= end_ms));
        }
        all.extend(head);
        if all.is_empty() {
            return Ok(None);
        }
        let samples = sort_dedup(all);
        match self.index.series_labels(id)? {
            Some((t, labels)) if t == tenant => Ok(Some((labels, samples))),
            _ => Ok(None),
        }
    }

    /// The labels of series `id` and its samples that may fall in `[start_ms, end_ms]` as
    /// blocks in precedence order (stored blocks by flush sequence, then the head's in
    /// arrival order: where two samples share a timestamp, the later block's wins), as
    /// stored, without decoding them. Blocks may hold samples outside the range. `None`
    /// when no block overlaps the range or the series does not belong to `tenant`.
    pub fn read_series_blocks(
        &self,
        tenant: Tenant,
        id: u64,
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Option<SeriesBlocks>, StorageError> {
        Ok(self
            .read_series_blocks_many(tenant, &[id], start_ms, end_ms)?
            .pop()
            .map(|(_, series)| series))
    }

    /// [`Engine::read_series_blocks`] for many series (`ids` ascending) at once, with
    /// batched index and partition reads: `(id, labels, blocks)` of those that have blocks
    /// in the range and belong to `tenant`, in ID order.
    pub fn read_series_blocks_many(
        &self,
        tenant: Tenant,
        ids: &[u64],
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<(u64, SeriesBlocks)>, StorageError> {
        self.read_series_blocks_keyed(tenant, ids, start_ms, end_ms)?
            .into_iter()
            .map(|(id, (key, blocks))| {
                let labels = labels_of_key(&key, || format!("series key of ID {id}"))?;
                Ok((id, (labels, blocks)))
            })
            .collect()
    }

    /// [`Engine::read_series_blocks_many`] with each series' labels as the labels part of
    /// its canonical key (without the tenant's 8 bytes), as stored: what search answers
    /// send when the select accepts keys.
    pub fn read_series_blocks_keyed(
        &self,
        tenant: Tenant,
        ids: &[u64],
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<(u64, KeyedBlocks)>, StorageError> {
        let stored = self.partitions.read_raw_many(ids, start_ms, end_ms)?;
        let mut found: Vec<(u64, Vec<Vec<u8>>)> = Vec::with_capacity(ids.len());
        for (&id, mut stored) in ids.iter().zip(stored) {
            let head = self.head.blocks_in(id, start_ms, end_ms);
            if stored.is_empty() && head.is_empty() {
                continue;
            }
            // Stable: blocks of one flush keep their key (time) order.
            stored.sort_by_key(|(seq, _)| *seq);
            let mut blocks: Vec<Vec<u8>> = stored.into_iter().map(|(_, b)| b).collect();
            blocks.extend(head);
            found.push((id, blocks));
        }
        let found_ids: Vec<u64> = found.iter().map(|f| f.0).collect();
        let keys = self.index.series_keys_many(&found_ids)?;
        Ok(found
            .into_iter()
            .zip(keys)
            .filter_map(|((id, blocks), key)| {
                let labels = labels_part_of(key?, tenant)?;
                Some((id, (labels, blocks)))
            })
            .collect())
    }

    /// Label sets of the series matching any selector with postings in the days of the
    /// range, one per series: all of them in series ID order (`limit` 0), or the first
    /// `limit` in label-set order.
    pub fn series_labels(
        &self,
        tenant: Tenant,
        selectors: &[Vec<Matcher>],
        start_ms: i64,
        end_ms: i64,
        limit: usize,
    ) -> Result<Vec<Labels>, StorageError> {
        self.series_keys(tenant, selectors, start_ms, end_ms, limit)?
            .into_iter()
            .map(|key| labels_of_key(&key, || "a series key".into()))
            .collect()
    }

    /// [`Engine::series_labels`] as the labels parts of the series' canonical keys
    /// (without the tenant's 8 bytes), one per series.
    pub fn series_keys(
        &self,
        tenant: Tenant,
        selectors: &[Vec<Matcher>],
        start_ms: i64,
        end_ms: i64,
        limit: usize,
    ) -> Result<Vec<Bytes>, StorageError> {
        let ids: Vec<u64> = self
            .select_any(tenant, selectors, start_ms, end_ms)?
            .into_iter()
            .collect();
        let mut out = Vec::with_capacity(ids.len());
        for batch in ids.chunks(READ_BATCH) {
            out.extend(
                self.index
                    .series_keys_many(batch)?
                    .into_iter()
                    .filter_map(|key| labels_part_of(key?, tenant)),
            );
        }
        // Each series ID has its own key: the keys are unique. The select sorts the
        // union of the nodes' answers; here they are sorted only to cut them at `limit`.
        if limit > 0 && out.len() > limit {
            out.sort_unstable_by(|a, b| cmp_key_labels(a, b));
            out.truncate(limit);
        }
        Ok(out)
    }

    /// Label names of the matching series (every series of the tenant without
    /// selectors): sorted, unique, at most `limit` (0 = all).
    pub fn label_names(
        &self,
        tenant: Tenant,
        selectors: &[Vec<Matcher>],
        start_ms: i64,
        end_ms: i64,
        limit: usize,
    ) -> Result<Vec<String>, StorageError> {
        let mut names = BTreeSet::new();
        if selectors.is_empty() {
            for scope in scopes(start_ms, end_ms) {
                names.extend(self.index.label_names(scope, tenant)?.iter().cloned());
            }
        } else {
            add_names(&mut names, self.series_labels(tenant, selectors, start_ms, end_ms, 0)?);
        }
        Ok(cap(names.into_iter(), limit))
    }

    /// Values of label `name` in the matching series: sorted, unique, at most `limit`.
    pub fn label_values(
        &self,
        tenant: Tenant,
        name: &str,
        selectors: &[Vec<Matcher>],
        start_ms: i64,
        end_ms: i64,
        limit: usize,
    ) -> Result<Vec<String>, StorageError> {
        let mut values = BTreeSet::new();
        if name.is_empty() {
            return Ok(Vec::new());
        }
        if selectors.is_empty() {
            let scopes = scopes(start_ms, end_ms);
            if let [scope] = scopes[..] {
                // One day (or all time): the cached list is sorted and unique already.
                let cached = self.index.label_values(scope, tenant, name)?;
                return Ok(cap(cached.iter().cloned(), limit));
            }
            for scope in scopes {
                values.extend(self.index.label_values(scope, tenant, name)?.iter().cloned());
            }
        } else {
            add_values(
                &mut values,
                name,
                self.series_labels(tenant, selectors, start_ms, end_ms, 0)?,
            );
        }
        Ok(cap(values.into_iter(), limit))
    }

    /// [`Engine::label_values`] answered from the index's caches alone, without reading
    /// the disk, when it can be; None otherwise. Without selectors: a label name, a range
    /// within one day (or all time) and its values cached. With selectors: every
    /// selector's series IDs cached ([`Engine::cached_select_ids`]), at most
    /// [`CACHED_LABEL_VALUES_MAX_SERIES`] series in all, and all their keys cached.
    pub fn cached_label_values(
        &self,
        tenant: Tenant,
        name: &str,
        selectors: &[Vec<Matcher>],
        start_ms: i64,
        end_ms: i64,
        limit: usize,
    ) -> Option<Vec<String>> {
        if name.is_empty() {
            return None;
        }
        if !selectors.is_empty() {
            let mut values = BTreeSet::new();
            add_values(
                &mut values,
                name,
                self.cached_selected_labels(tenant, selectors, start_ms, end_ms)?,
            );
            return Some(cap(values.into_iter(), limit));
        }
        let [scope] = scopes(start_ms, end_ms)[..] else {
            return None;
        };
        let cached = self.index.cached_label_values(scope, tenant, name)?;
        Some(cap(cached.iter().cloned(), limit))
    }

    /// [`Engine::label_names`] answered from the index's caches alone, without reading
    /// the disk, when it can be; None otherwise. Without selectors: the label names of
    /// every day of the range (or of all time) cached. With selectors: as
    /// [`Engine::cached_label_values`].
    pub fn cached_label_names(
        &self,
        tenant: Tenant,
        selectors: &[Vec<Matcher>],
        start_ms: i64,
        end_ms: i64,
        limit: usize,
    ) -> Option<Vec<String>> {
        let mut names = BTreeSet::new();
        if selectors.is_empty() {
            for scope in scopes(start_ms, end_ms) {
                names.extend(self.index.cached_label_names(scope, tenant)?.iter().cloned());
            }
        } else {
            add_names(
                &mut names,
                self.cached_selected_labels(tenant, selectors, start_ms, end_ms)?,
            );
        }
        Some(cap(names.into_iter(), limit))
    }

    /// The label sets of the series matching any selector, from the caches alone: None
    /// unless every selector's series IDs are cached, they are at most
    /// [`CACHED_LABEL_VALUES_MAX_SERIES`] in all, and all their keys are cached.
    fn cached_selected_labels(
        &self,
        tenant: Tenant,
        selectors: &[Vec<Matcher>],
        start_ms: i64,
        end_ms: i64,
    ) -> Option<Vec<Labels>> {
        let mut ids = RoaringTreemap::new();
        for s in selectors {
            ids |= &*self.cached_select_ids(tenant, s, start_ms, end_ms)?;
            if ids.len() > CACHED_LABEL_VALUES_MAX_SERIES {
                return None;
            }
        }
        let ids: Vec<u64> = ids.iter().collect();
        let mut out = Vec::with_capacity(ids.len());
        for key in self.index.cached_series_keys(&ids) {
            // As in the full look-up, a key of another tenant is left out.
            let Some(key) = labels_part_of(key?, tenant) else {
                continue;
            };
            out.push(labels_of_key(&key, || "a series key".into()).ok()?);
        }
        Some(out)
    }
}

/// Adds the value of label `name` of each label set that has it to `values`.
fn add_values(values: &mut BTreeSet<String>, name: &str, sets: Vec<Labels>) {
    values.extend(sets.iter().filter_map(|labels| labels.get(name).map(str::to_string)));
}

/// Adds the label names of each label set to `names`.
fn add_names(names: &mut BTreeSet<String>, sets: Vec<Labels>) {
    names.extend(sets.iter().flat_map(|labels| labels.iter().map(|l| l.name.clone())));
}

fn cap<T>(it: impl Iterator<Item = T>, limit: usize) -> Vec<T> {
    if limit == 0 {
        it.collect()
    } else {
        it.take(limit).collect()
    }
}
