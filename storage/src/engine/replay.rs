//! WAL replay at start: every segment, in order, into the index and the head.

use std::collections::HashMap;
use std::time::Instant;

use cairn_common::{Labels, Tenant};

use crate::block::Sample;
use crate::engine::Engine;
use crate::error::StorageError;
use crate::wal::{self, Record};

impl Engine {
    /// Replays every WAL segment; returns the highest segment number seen (0 if none).
    /// A series record missing from the index is added to it; samples of a series ID
    /// that neither the index nor the WAL knows are dropped and counted in
    /// `cairn_storage_wal_replay_rows_dropped_total`.
    pub(super) fn replay(&self) -> Result<u64, StorageError> {
        let started = Instant::now();
        let segments = wal::list_segments(&self.wal_dir)?;
        let (mut records, mut samples, mut dropped) = (0u64, 0u64, 0u64);
        // Labels of series seen during replay, for the per-day postings.
        let mut labels_of: HashMap<u64, Option<(Tenant, Labels)>> = HashMap::new();
        for &n in &segments {
            let path = wal::segment_path(&self.wal_dir, n);
            let bytes = std::fs::read(&path)
                .map_err(|e| StorageError::io(format!("read WAL segment {}", path.display()), e))?;
            let (recs, damaged) = wal::decode_segment(&bytes);
            if damaged {
                tracing::warn!(segment = %path.display(), records = recs.len(), "WAL segment ends with a torn or corrupt record; replayed the records before it");
            }
            for rec in recs {
                records += 1;
                match rec {
                    Record::Series(id, key) => {
                        let Some((tenant, labels)) = Labels::from_canonical_key(&key) else {
                            tracing::warn!(id, "WAL series record with an undecodable key skipped");
                            continue;
                        };
                        if self.index.series_id(&key)?.is_none() {
                            self.index.create_series(id, &key, tenant, &labels)?;
                        }
                        self.remember(&key, id, true);
                        labels_of.insert(id, Some((tenant, labels)));
                    }
                    Record::Samples(per_series) => {
                        for (id, s) in per_series {
                            if let std::collections::hash_map::Entry::Vacant(e) = labels_of.entry(id) {
                                e.insert(self.index.series_labels(id)?);
                            }
                            let Some(Some((tenant, labels))) = labels_of.get(&id) else {
                                dropped += s.len() as u64;
                                continue;
                            };
                            let items: [(u64, Tenant, &Labels, &[Sample]); 1] = [(id, *tenant, labels, s.as_slice())];
                            self.index_days(&items)?;
                            self.head.append(id, &s);
                            samples += s.len() as u64;
                        }
                    }
                }
            }
        }
        if dropped > 0 {
            tracing::warn!(dropped, "WAL samples of unknown series dropped");
            metrics::counter!("cairn_storage_wal_replay_rows_dropped_total").increment(dropped);
        }
        tracing::info!(
            segments = segments.len(),
            records,
            samples,
            head_series = self.head.series_count(),
            took_ms = started.elapsed().as_millis() as u64,
            "replayed the WAL"
        );
        metrics::gauge!("cairn_storage_wal_replay_seconds").set(started.elapsed().as_secs_f64());
        Ok(segments.last().copied().unwrap_or(0))
    }
}
