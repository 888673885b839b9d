//! The gRPC `Storage` service (`cairn.storage.v1`): Write from insert nodes; Search,
//! Series, LabelNames and LabelValues from select nodes.
//!
//! Search streams messages of at most 65,536 samples and about 2 MiB. A series with more
//! samples in the range than one message holds comes as consecutive `Series` entries
//! with the same labels, in time order; readers merge entries by label set. When the
//! request sets `accept_blocks`, samples go out as the stored blocks instead
//! (`Series.blocks`), one entry per series, so the node does not decode them.

use std::sync::Arc;

use cairn_common::grpc::WRITE_EPOCH_HEADER;
use cairn_common::{Matcher, Tenant, samples_le};
use cairn_proto::storage::storage_server::Storage;
use cairn_proto::storage::{
    LabelNamesRequest, LabelNamesResponse, LabelValuesRequest, LabelValuesResponse, SearchRequest, SearchResponse,
    Selector, Series, SeriesRequest, SeriesResponse, WriteRequest, WriteResponse,
};
use roaring::RoaringTreemap;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use crate::engine::Engine;
use crate::engine::search::{READ_BATCH, labels_of_key};
use crate::error::StorageError;

/// Most samples in one streamed `SearchResponse` (16 bytes each on the wire, in
/// `Series.samples_le`).
const MAX_SAMPLES_PER_MESSAGE: usize = 65_536;
/// A `SearchResponse` is sent once its estimated size reaches this many bytes, so that
/// messages stay under gRPC's default 4 MiB receive limit.
const MAX_BYTES_PER_MESSAGE: usize = 2 << 20;
/// Most series in one streamed `SeriesResponse`.
const MAX_SERIES_PER_MESSAGE: usize = 1_000;
/// At most this many malformed-series messages are returned in one status.
const MAX_ERRORS_REPORTED: usize = 5;
/// A search asking for blocks is answered on the gRPC thread, without the hand-off to a
/// blocking thread and back, when its selection is cached and small: at most this many
/// series...
const INLINE_SEARCH_MAX_SERIES: u64 = 512;
/// ...and at most this many series-milliseconds (series times the search's span; 512
/// series over an hour): a dashboard panel's read, about 1.8 million samples at a 1 s
/// scrape interval, a few milliseconds of reading cached partition blocks.
const INLINE_SEARCH_MAX_SERIES_MS: u64 = 512 * 3_600_000;

/// The service, sharing the engine.
pub struct StorageService {
    engine: Arc<Engine>,
}

impl StorageService {
    /// Wraps an engine.
    pub fn new(engine: Arc<Engine>) -> Self {
        StorageService { engine }
    }
}

fn selector(s: &Selector) -> Result<Vec<Matcher>, Status> {
    s.matchers
        .iter()
        .map(|m| Matcher::from_proto(m).map_err(|e| Status::invalid_argument(e.to_string())))
        .collect()
}

fn selectors(s: &[Selector]) -> Result<Vec<Vec<Matcher>>, Status> {
    s.iter().map(selector).collect()
}

fn limit(l: u64) -> usize {
    usize::try_from(l).unwrap_or(usize::MAX)
}

/// Estimated bytes of `labels` in a message: names, values and a few bytes of framing each.
fn label_bytes(labels: &cairn_common::Labels) -> usize {
    labels.iter().map(|l| l.name.len() + l.value.len() + 8).sum()
}

/// A `Series` holding only the labels of a series whose canonical key's labels part is
/// `key`: the key as it is when the request accepts keys, else the decoded labels.
/// Errors: a key that does not decode (a corrupt index).
fn series_with_labels(key: bytes::Bytes, accept_keys: bool) -> Result<Series, StorageError> {
    if accept_keys {
        return Ok(Series {
            key,
            ..Series::default()
        });
    }
    let labels = labels_of_key(&key, || "a series key".into())?;
    Ok(Series {
        labels: labels.into_proto(),
        ..Series::default()
    })
}

/// Runs blocking index or partition work off the async threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StorageError> + Send + 'static,
) -> Result<T, Status> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Status::internal(format!("storage task failed: {e}")))?
        .map_err(Status::from)
}

/// The cached selection of a search asking for blocks; `None` when it is not cached or
/// the search asks for samples.
fn cached_selection(engine: &Engine, req: &SearchRequest, matchers: &[Matcher]) -> Option<Arc<RoaringTreemap>> {
    if !req.accept_blocks {
        return None;
    }
    let tenant = Tenant::from_proto(req.tenant.as_ref());
    engine.cached_select_ids(tenant, matchers, req.start_ms, req.end_ms)
}

/// Whether a search of `ids` over the request's range is small enough to answer on the
/// gRPC thread: at most [`INLINE_SEARCH_MAX_SERIES`] series and
/// [`INLINE_SEARCH_MAX_SERIES_MS`] series-milliseconds.
fn is_small(ids: &RoaringTreemap, req: &SearchRequest) -> bool {
    let span_ms = u64::try_from(req.end_ms.saturating_sub(req.start_ms))
        .unwrap_or(0)
        .max(1);
    ids.len() <= INLINE_SEARCH_MAX_SERIES && ids.len().saturating_mul(span_ms) <= INLINE_SEARCH_MAX_SERIES_MS
}

/// A receiver that yields `items` and then ends: the channel holds them all.
fn filled_channel<T>(items: Vec<T>) -> mpsc::Receiver<T> {
    let (tx, rx) = mpsc::channel(items.len().max(1));
    for item in items {
        // The channel has room for every item.
        let _ = tx.try_send(item);
    }
    rx
}

/// A search read on a blocking thread; `cached` is its selection when the index cache
/// already gave it.
fn search_blocking(
    engine: &Engine,
    req: SearchRequest,
    matchers: Vec<Matcher>,
    cached: Option<Arc<RoaringTreemap>>,
    tx: &mpsc::Sender<Result<SearchResponse, Status>>,
) -> Result<(), StorageError> {
    let tenant = Tenant::from_proto(req.tenant.as_ref());
    let ids = match cached {
        Some(ids) => ids,
        None => Arc::new(engine.select_ids(tenant, &matchers, req.start_ms, req.end_ms)?),
    };
    if req.accept_blocks {
        let ids: Vec<u64> = ids.iter().collect();
        return search_blocks(engine, tenant, &req, &ids, &mut |msg| tx.blocking_send(Ok(msg)).is_ok());
    }
    let mut msg = SearchResponse::default();
    let (mut in_msg, mut in_bytes) = (0usize, 0usize);
    let (mut series_count, mut sample_count) = (0u64, 0u64);
    for id in ids.iter() {
        let Some((labels, samples)) = engine.read_series(tenant, id, req.start_ms, req.end_ms)? else {
            continue;
        };
        series_count += 1;
        if req.max_series > 0 && series_count > req.max_series {
            return Err(StorageError::TooManySeries { limit: req.max_series });
        }
        sample_count += samples.len() as u64;
        let labels_size = label_bytes(&labels);
        let proto_labels = labels.into_proto();
        // A series longer than one message goes out in consecutive pieces with the same
        // labels, in time order.
        for piece in samples.chunks(MAX_SAMPLES_PER_MESSAGE) {
            in_msg += piece.len();
            in_bytes += samples_le::SAMPLE_BYTES * piece.len() + labels_size;
            let mut samples = Vec::new();
            samples_le::append(&mut samples, piece);
            msg.series.push(Series {
                labels: proto_labels.clone(),
                samples_le: samples.into(),
                ..Series::default()
            });
            if in_msg >= MAX_SAMPLES_PER_MESSAGE || in_bytes >= MAX_BYTES_PER_MESSAGE {
                if tx.blocking_send(Ok(std::mem::take(&mut msg))).is_err() {
                    return Ok(()); // The client went away.
                }
                in_msg = 0;
                in_bytes = 0;
            }
        }
    }
    if !msg.series.is_empty() {
        let _ = tx.blocking_send(Ok(msg));
    }
    metrics::counter!("cairn_storage_search_series_returned_total").increment(series_count);
    metrics::counter!("cairn_storage_search_samples_returned_total").increment(sample_count);
    Ok(())
}

/// The search answer with samples as stored blocks (`Series.blocks`) of series `ids`
/// (ascending): one `Series` entry per series holding all its blocks, so that their
/// precedence order is never split across entries; a message goes to `send` once it
/// reaches [`MAX_BYTES_PER_MESSAGE`], and the rest at the end. `send` returns false when
/// the client went away; the search then stops.
fn search_blocks(
    engine: &Engine,
    tenant: Tenant,
    req: &SearchRequest,
    ids: &[u64],
    send: &mut dyn FnMut(SearchResponse) -> bool,
) -> Result<(), StorageError> {
    let mut msg = SearchResponse::default();
    let mut in_bytes = 0usize;
    let (mut series_count, mut block_count) = (0u64, 0u64);
    for batch in ids.chunks(READ_BATCH) {
        for (_, (key, blocks)) in engine.read_series_blocks_keyed(tenant, batch, req.start_ms, req.end_ms)? {
            series_count += 1;
            if req.max_series > 0 && series_count > req.max_series {
                return Err(StorageError::TooManySeries { limit: req.max_series });
            }
            block_count += blocks.len() as u64;
            in_bytes += blocks.iter().map(Vec::len).sum::<usize>() + key.len();
            msg.series.push(Series {
                blocks: blocks.into_iter().map(Into::into).collect(),
                ..series_with_labels(key, req.accept_keys)?
            });
            if in_bytes >= MAX_BYTES_PER_MESSAGE {
                if !send(std::mem::take(&mut msg)) {
                    return Ok(()); // The client went away.
                }
                in_bytes = 0;
            }
        }
    }
    if !msg.series.is_empty() {
        send(msg);
    }
    metrics::counter!("cairn_storage_search_series_returned_total").increment(series_count);
    metrics::counter!("cairn_storage_search_blocks_returned_total").increment(block_count);
    Ok(())
}

#[tonic::async_trait]
impl Storage for StorageService {
    async fn write(&self, request: Request<WriteRequest>) -> Result<Response<WriteResponse>, Status> {
        let req = request.into_inner();
        let tenant = Tenant::from_proto(req.tenant.as_ref());
        let engine = self.engine.clone();
        // Series the cache holds, on days already indexed, are written from this thread;
        // only a write that reads or writes the index moves to a blocking thread.
        let prepared = engine.prepare_write(tenant, &req);
        drop(req);
        let pending = if prepared.is_cached() {
            engine.commit_prepared(prepared)?
        } else {
            blocking(move || engine.commit_prepared(prepared)).await?
        };
        let outcome = pending.finish().await?;
        if !outcome.errors.is_empty() {
            let n = outcome.errors.len();
            let mut msg = outcome
                .errors
                .into_iter()
                .take(MAX_ERRORS_REPORTED)
                .collect::<Vec<_>>()
                .join("; ");
            if n > MAX_ERRORS_REPORTED {
                msg.push_str(&format!("; and {} more", n - MAX_ERRORS_REPORTED));
            }
            return Err(Status::invalid_argument(format!(
                "{n} malformed series rejected ({} valid samples stored): {msg}",
                outcome.rows
            )));
        }
        Ok(Response::new(WriteResponse {
            rows_written: outcome.rows,
        }))
    }

    type SearchStream = ReceiverStream<Result<SearchResponse, Status>>;

    async fn search(&self, request: Request<SearchRequest>) -> Result<Response<Self::SearchStream>, Status> {
        metrics::counter!("cairn_storage_search_requests_total", "rpc" => "search").increment(1);
        let req = request.into_inner();
        let matchers = match &req.selector {
            Some(s) => selector(s)?,
            None => Vec::new(),
        };
        let engine = self.engine.clone();
        // Read before the search reads any data (see `write_epoch`).
        let epoch = engine.write_epoch();
        let rx = match cached_selection(&engine, &req, &matchers) {
            Some(ids) if is_small(&ids, &req) => {
                metrics::counter!("cairn_storage_search_inline_total").increment(1);
                let tenant = Tenant::from_proto(req.tenant.as_ref());
                let ids: Vec<u64> = ids.iter().collect();
                let mut messages = Vec::new();
                if let Err(e) = search_blocks(&engine, tenant, &req, &ids, &mut |msg| {
                    messages.push(Ok(msg));
                    true
                }) {
                    tracing::debug!(error = %e, "search failed");
                    messages.push(Err(e.to_status()));
                }
                filled_channel(messages)
            }
            cached => {
                let (tx, rx) = mpsc::channel(2);
                tokio::task::spawn_blocking(move || {
                    if let Err(e) = search_blocking(&engine, req, matchers, cached, &tx) {
                        tracing::debug!(error = %e, "search failed");
                        let _ = tx.blocking_send(Err(e.to_status()));
                    }
                });
                rx
            }
        };
        let mut response = Response::new(ReceiverStream::new(rx));
        response
            .metadata_mut()
            .insert(WRITE_EPOCH_HEADER, tonic::metadata::MetadataValue::from(epoch));
        Ok(response)
    }

    type SeriesStream = ReceiverStream<Result<SeriesResponse, Status>>;

    async fn series(&self, request: Request<SeriesRequest>) -> Result<Response<Self::SeriesStream>, Status> {
        metrics::counter!("cairn_storage_search_requests_total", "rpc" => "series").increment(1);
        let req = request.into_inner();
        let sels = selectors(&req.selectors)?;
        let engine = self.engine.clone();
        let tenant = Tenant::from_proto(req.tenant.as_ref());
        let accept_keys = req.accept_keys;
        let series = blocking(move || {
            engine
                .series_keys(tenant, &sels, req.start_ms, req.end_ms, limit(req.limit))?
                .into_iter()
                .map(|key| series_with_labels(key, accept_keys))
                .collect::<Result<Vec<Series>, StorageError>>()
        })
        .await?;
        let mut messages = Vec::with_capacity(series.len().div_ceil(MAX_SERIES_PER_MESSAGE));
        let mut series = series.into_iter().peekable();
        while series.peek().is_some() {
            messages.push(Ok(SeriesResponse {
                series: series.by_ref().take(MAX_SERIES_PER_MESSAGE).collect(),
            }));
        }
        Ok(Response::new(ReceiverStream::new(filled_channel(messages))))
    }

    async fn label_names(&self, request: Request<LabelNamesRequest>) -> Result<Response<LabelNamesResponse>, Status> {
        metrics::counter!("cairn_storage_search_requests_total", "rpc" => "label_names").increment(1);
        let req = request.into_inner();
        let sels = selectors(&req.selectors)?;
        let tenant = Tenant::from_proto(req.tenant.as_ref());
        let limit = limit(req.limit);
        // As label values: from the caches, answered here.
        if let Some(names) = self
            .engine
            .cached_label_names(tenant, &sels, req.start_ms, req.end_ms, limit)
        {
            return Ok(Response::new(LabelNamesResponse { names }));
        }
        let engine = self.engine.clone();
        let names = blocking(move || engine.label_names(tenant, &sels, req.start_ms, req.end_ms, limit)).await?;
        Ok(Response::new(LabelNamesResponse { names }))
    }

    async fn label_values(
        &self,
        request: Request<LabelValuesRequest>,
    ) -> Result<Response<LabelValuesResponse>, Status> {
        metrics::counter!("cairn_storage_search_requests_total", "rpc" => "label_values").increment(1);
        let req = request.into_inner();
        let sels = selectors(&req.selectors)?;
        let tenant = Tenant::from_proto(req.tenant.as_ref());
        // A dashboard's variable asks the same values again and again: from the cache they
        // are answered here, without the hand-off to a blocking thread and back.
        let limit = limit(req.limit);
        if let Some(values) = self
            .engine
            .cached_label_values(tenant, &req.name, &sels, req.start_ms, req.end_ms, limit)
        {
            return Ok(Response::new(LabelValuesResponse { values }));
        }
        let engine = self.engine.clone();
        let values =
            blocking(move || engine.label_values(tenant, &req.name, &sels, req.start_ms, req.end_ms, limit)).await?;
        Ok(Response::new(LabelValuesResponse { values }))
    }
}

#[cfg(test)]
mod tests;
