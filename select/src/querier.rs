//! The engine's view of the cluster: a [`Querier`] for one tenant and one request, over
//! the [`Fanout`]. It remembers whether any answer was partial.
//!
//! Every series a query reads passes through [`ClusterQuerier::select`]: the pieces the
//! storage nodes sent are merged per series ([`merge_series`], one sample per timestamp),
//! then thinned to one sample per `--dedup-interval` ([`dedup_interval`]) when it is set.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use cairn_common::grpc::WRITE_EPOCH_HEADER;
use cairn_common::{Labels, Matcher, Tenant, block, samples_le};
use cairn_proto::storage::{SearchRequest, SearchResponse, Selector, Series};
use futures::future::BoxFuture;

use crate::dedup::dedup_interval;
use crate::fanout::{Fanout, merge_series, sort_dedup};
use crate::promql::{Fetched, Querier, QueryError};

/// A querier bound to a tenant and to one API request's partial-response policy.
pub struct ClusterQuerier {
    fanout: Arc<Fanout>,
    tenant: Tenant,
    deny_partial: bool,
    max_series: u64,
    dedup_interval_ms: i64,
    partial: AtomicBool,
    epochs: Mutex<Epochs>,
}

/// The write epochs the storage nodes sent with this request's searches (see
/// `cairn_common::grpc::WRITE_EPOCH_HEADER`), by position in `--storage-node`.
#[derive(Debug, Default)]
struct Epochs {
    /// 0 where no search reached the node yet.
    by_node: Vec<u64>,
    /// A node sent two different epochs, or none: the data changed during the request,
    /// or the node does not tell.
    unsure: bool,
}

impl ClusterQuerier {
    /// A querier for `tenant`; `max_series` (0 = none) caps the series of one selector
    /// per storage node.
    pub fn new(fanout: Arc<Fanout>, tenant: Tenant, deny_partial: bool, max_series: u64) -> Self {
        ClusterQuerier {
            tenant,
            deny_partial,
            max_series,
            dedup_interval_ms: 0,
            partial: AtomicBool::new(false),
            epochs: Mutex::new(Epochs {
                by_node: vec![0; fanout.len()],
                unsure: false,
            }),
            fanout,
        }
    }

    /// Keeps one sample per series per `interval_ms` interval of the merged answers
    /// (`--dedup-interval`; 0, the default, keeps every distinct timestamp).
    pub fn with_dedup_interval(mut self, interval_ms: i64) -> Self {
        self.dedup_interval_ms = interval_ms;
        self
    }

    /// Whether any search of this request was answered by only some storage nodes.
    pub fn is_partial(&self) -> bool {
        self.partial.load(Ordering::Relaxed)
    }

    /// The write epoch of each storage node (by position in `--storage-node`; 0 for a
    /// node no search reached) as its searches for this request reported it, read
    /// before they read data. `None` when a node reported two different epochs or none,
    /// or an answer was partial: what was read may then be a mix of before and after a
    /// change. Two requests with equal epochs read the same data older than
    /// `cairn_common::grpc::LATE_WRITE_MS`.
    pub fn write_epochs(&self) -> Option<Vec<u64>> {
        let epochs = self.epochs.lock().ok()?;
        (!epochs.unsure && !self.is_partial()).then(|| epochs.by_node.clone())
    }

    /// Forgets the partial flag and the epochs of earlier searches, for a new
    /// evaluation with this querier.
    pub fn reset(&self) {
        self.partial.store(false, Ordering::Relaxed);
        if let Ok(mut epochs) = self.epochs.lock() {
            epochs.by_node.iter_mut().for_each(|e| *e = 0);
            epochs.unsure = false;
        }
    }

    /// Notes the epoch node `node` sent with a search answer (`None`: no header).
    fn note_epoch(&self, node: usize, epoch: Option<u64>) {
        let Ok(mut epochs) = self.epochs.lock() else {
            return;
        };
        match (epoch, epochs.by_node.get(node).copied()) {
            (Some(e), Some(0)) => epochs.by_node[node] = e,
            (Some(e), Some(seen)) if seen == e => {}
            _ => epochs.unsure = true,
        }
    }
}

impl Querier for ClusterQuerier {
    fn select<'a>(
        &'a self,
        matchers: &'a [Matcher],
        start_ms: i64,
        end_ms: i64,
    ) -> BoxFuture<'a, Result<Fetched, QueryError>> {
        Box::pin(async move {
            let request = SearchRequest {
                tenant: Some(self.tenant.to_proto()),
                selector: Some(Selector {
                    matchers: matchers.iter().map(Matcher::to_proto).collect(),
                }),
                start_ms,
                end_ms,
                max_series: self.max_series,
                accept_blocks: true,
                accept_keys: true,
            };
            metrics::counter!("cairn_select_searches_total").increment(1);
            let gathered = self
                .fanout
                .gather(self.deny_partial, |mut client| {
                    let request = request.clone();
                    async move {
                        let response = client.search(request).await?;
                        let epoch = response
                            .metadata()
                            .get(WRITE_EPOCH_HEADER)
                            .and_then(|v| v.to_str().ok())
                            .and_then(|v| v.parse::<u64>().ok());
                        let mut stream = response.into_inner();
                        // Each large message is decoded on a blocking thread while the
                        // next one arrives: the nodes' answers decode on all cores at
                        // once. A small one is decoded here, in less time than the
                        // hand-off to a blocking thread and back takes.
                        let mut series = Vec::new();
                        let mut decoding = Vec::new();
                        while let Some(msg) = stream.message().await? {
                            if encoded_bytes(&msg) <= INLINE_DECODE_MAX_BYTES {
                                series.extend(decode_message(msg, start_ms, end_ms)?);
                            } else {
                                decoding.push(tokio::task::spawn_blocking(move || {
                                    decode_message(msg, start_ms, end_ms)
                                }));
                            }
                        }
                        for d in decoding {
                            let pieces = d
                                .await
                                .map_err(|e| tonic::Status::internal(format!("decoding a search answer: {e}")))??;
                            series.extend(pieces);
                        }
                        Ok((epoch, series))
                    }
                })
                .await?;
            if !gathered.warnings.is_empty() {
                self.partial.store(true, Ordering::Relaxed);
            }
            for (&node, (epoch, _)) in gathered.nodes.iter().zip(&gathered.answers) {
                self.note_epoch(node, *epoch);
            }
            let mut series = merge_series(gathered.answers.into_iter().flat_map(|(_, series)| series));
            // A block can overlap the range without a sample in it.
            series.retain(|s| !s.timestamps.is_empty());
            if self.dedup_interval_ms > 0 {
                let mut removed = 0;
                for s in &mut series {
                    let before = s.timestamps.len();
                    let (ts, vs) = dedup_interval(
                        std::mem::take(&mut s.timestamps),
                        std::mem::take(&mut s.values),
                        self.dedup_interval_ms,
                    );
                    removed += before - ts.len();
                    (s.timestamps, s.values) = (ts, vs);
                }
                metrics::counter!("cairn_select_dedup_samples_removed_total").increment(removed as u64);
            }
            Ok(Fetched {
                series,
                warnings: gathered.warnings,
            })
        })
    }
}

/// A search answer message of at most this many bytes of samples is decoded on the
/// async thread that received it (about 4 ns per sample, ~1 byte per sample in a block).
const INLINE_DECODE_MAX_BYTES: usize = 8 << 10;

/// The bytes of samples in a search answer message: its blocks, or its samples.
fn encoded_bytes(msg: &SearchResponse) -> usize {
    msg.series
        .iter()
        .map(|s| {
            s.blocks.iter().map(|b| b.len()).sum::<usize>()
                + s.samples_le.len()
                + s.timestamps_ms.len() * 8
                + s.values.len() * 8
        })
        .sum()
}

/// A piece of a series: its labels, timestamps (ms, ascending) and values.
type Piece = (Labels, Vec<i64>, Vec<f64>);

/// The series pieces of one search answer message ([`fetched_piece`] of each).
fn decode_message(msg: SearchResponse, start_ms: i64, end_ms: i64) -> Result<Vec<Piece>, tonic::Status> {
    msg.series
        .into_iter()
        .map(|s| fetched_piece(s, start_ms, end_ms))
        .collect()
}

/// A piece of a series as a storage node sent it: labels (from `key` or `labels`), timestamps (ms, ascending, one
/// sample per timestamp) and values, from `blocks` (decoded and cut to
/// `[start_ms, end_ms]`) or `samples_le` when set. Errors: a malformed block or
/// `samples_le` (internal status).
fn fetched_piece(s: Series, start_ms: i64, end_ms: i64) -> Result<Piece, tonic::Status> {
    let (ts, vs) = if !s.blocks.is_empty() {
        // Sorted with one sample per timestamp already.
        block::read::samples_in_range(&s.blocks, start_ms, end_ms)
            .map_err(|e| tonic::Status::internal(format!("search answer: {e}")))?
    } else if s.samples_le.is_empty() {
        sort_dedup(s.timestamps_ms, s.values)
    } else {
        let (ts, vs) = samples_le::decode(&s.samples_le).map_err(tonic::Status::internal)?;
        sort_dedup(ts, vs)
    };
    Ok((series_labels(s.key, s.labels)?, ts, vs))
}

/// The labels of an answer's series: from `key` (the labels part of its canonical key)
/// when the node sent it, else from `labels`. Errors: a key that does not decode
/// (internal status).
pub(crate) fn series_labels(
    key: bytes::Bytes,
    labels: Vec<cairn_proto::storage::Label>,
) -> Result<Labels, tonic::Status> {
    if key.is_empty() {
        return Ok(Labels::from_proto(labels));
    }
    Labels::from_key_labels(&key).ok_or_else(|| tonic::Status::internal("search answer: a malformed series key"))
}

#[cfg(test)]
mod tests;
