//! Routing: every series goes to the storage node its jump-consistent-hash bucket names
//! and to the next `replication_factor - 1` nodes, as one batched gRPC write per node per
//! request. A write succeeds only when every node that should hold a copy has answered
//! that the rows are durable.

use std::time::{Duration, Instant};

use cairn_common::{Labels, Tenant, ring};
use cairn_proto::storage::WriteRequest;
use futures::future::try_join_all;
use tonic::Code;

use crate::error::InsertError;
use crate::rows::SeriesRows;
use crate::storage_client::{EncodedWrite, StorageNodes};

/// First pause between retries to a failing node; doubled up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(50);
/// Longest pause between retries.
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// The series bound for one storage node, packed as the storage `WriteRequest` carries
/// them (fields 3–6, see [`cairn_common::packed_keys`]): one byte string of label sets and
/// three flat vectors, so that no string per label is built.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NodeBatch {
    /// Packed canonical keys without the tenant prefix.
    pub series_keys: Vec<u8>,
    /// Samples per series, in the order of `series_keys`.
    pub sample_counts: Vec<u32>,
    /// Timestamps (ms since the Unix epoch) of all series, one series after the other.
    pub timestamps_ms: Vec<i64>,
    /// Values, bit-exact, aligned with `timestamps_ms`.
    pub values: Vec<f64>,
}

impl NodeBatch {
    /// Empty batch with room for about `series` series and `samples` samples.
    fn with_capacity(series: usize, samples: usize) -> Self {
        NodeBatch {
            series_keys: Vec::with_capacity(series * 128),
            sample_counts: Vec::with_capacity(series),
            timestamps_ms: Vec::with_capacity(samples),
            values: Vec::with_capacity(samples),
        }
    }

    fn push(&mut self, key_labels: &[u8], samples: &[(i64, f64)]) {
        cairn_common::packed_keys::append(&mut self.series_keys, key_labels);
        self.sample_counts.push(samples.len() as u32);
        self.timestamps_ms.extend(samples.iter().map(|s| s.0));
        self.values.extend(samples.iter().map(|s| s.1));
    }

    /// Whether the batch holds no series.
    pub fn is_empty(&self) -> bool {
        self.sample_counts.is_empty()
    }

    /// The storage `WriteRequest` of this batch for `tenant`.
    pub fn into_request(self, tenant: Tenant) -> WriteRequest {
        WriteRequest {
            tenant: Some(tenant.to_proto()),
            series: Vec::new(),
            series_keys: self.series_keys.into(),
            sample_counts: self.sample_counts,
            timestamps_ms: self.timestamps_ms,
            values: self.values,
        }
    }

    /// The batch's series decoded, in order (for inspection and tests). Label sets that
    /// do not decode are skipped.
    pub fn series(&self, tenant: Tenant) -> Vec<SeriesRows> {
        let mut out = Vec::with_capacity(self.sample_counts.len());
        let mut at = 0usize;
        for (key, &n) in cairn_common::packed_keys::iter(&self.series_keys).zip(&self.sample_counts) {
            let range = at..at + n as usize;
            at = range.end;
            let Ok(key) = key else { break };
            let mut full = tenant.to_be_bytes().to_vec();
            full.extend_from_slice(key);
            if let (Some((_, labels)), Some(ts), Some(vs)) = (
                Labels::from_canonical_key(&full),
                self.timestamps_ms.get(range.clone()),
                self.values.get(range),
            ) {
                out.push(SeriesRows {
                    labels,
                    timestamps_ms: ts.to_vec(),
                    values: vs.to_vec(),
                });
            }
        }
        out
    }
}

/// Series grouped into one [`NodeBatch`] per storage node: each series goes to its
/// jump-hash owner and the next `replication_factor - 1` nodes.
#[derive(Debug)]
pub struct Batches {
    per_node: Vec<NodeBatch>,
    replication_factor: usize,
    series: usize,
    samples: usize,
}

impl Batches {
    /// Empty batches for `nodes` storage nodes (at least one), with room for about
    /// `expected_series` series (and as many samples) in total so that the batches rarely grow.
    pub fn new(nodes: usize, replication_factor: usize, expected_series: usize) -> Self {
        let replication_factor = replication_factor.clamp(1, nodes.max(1));
        let per_node_capacity = (expected_series * replication_factor).div_ceil(nodes.max(1)) + 16;
        Batches {
            per_node: (0..nodes.max(1))
                .map(|_| NodeBatch::with_capacity(per_node_capacity, per_node_capacity))
                .collect(),
            replication_factor,
            series: 0,
            samples: 0,
        }
    }

    /// Adds a series to the batches of the nodes that own it: `hash` is its series hash
    /// (see [`cairn_common::Labels::series_hash`]), `key_labels` its canonical key without
    /// the 8-byte tenant prefix (a storable label set: sorted, unique names, none empty,
    /// `__name__` included), `samples` its (timestamp ms, value) pairs.
    pub fn push(&mut self, hash: u64, key_labels: &[u8], samples: &[(i64, f64)]) {
        self.series += 1;
        self.samples += samples.len();
        for node in ring::owners(hash, self.per_node.len(), self.replication_factor) {
            self.per_node[node].push(key_labels, samples);
        }
    }

    /// Series added (each counted once, not once per replica).
    pub fn series(&self) -> usize {
        self.series
    }

    /// Samples added (each counted once, not once per replica).
    pub fn samples(&self) -> usize {
        self.samples
    }

    /// The batches, indexed by node.
    pub fn into_per_node(self) -> Vec<NodeBatch> {
        self.per_node
    }
}

/// Splits `series` of `tenant` into [`Batches`] for `nodes` storage nodes.
pub fn route(tenant: Tenant, series: Vec<SeriesRows>, nodes: usize, replication_factor: usize) -> Batches {
    let mut batches = Batches::new(nodes, replication_factor, series.len());
    let mut samples = Vec::new();
    for s in series {
        let key = s.labels.canonical_key(tenant);
        samples.clear();
        samples.extend(s.timestamps_ms.iter().copied().zip(s.values.iter().copied()));
        batches.push(cairn_common::labels::series_hash_of_key(&key), &key[8..], &samples);
    }
    batches
}

/// Sends batches to storage nodes.
pub struct Router {
    nodes: StorageNodes,
    replication_factor: usize,
    write_timeout: Duration,
}

impl Router {
    /// A router over `nodes` (in hash-bucket order) that keeps `replication_factor` copies
    /// and waits at most `write_timeout` for a node before giving up.
    pub fn new(nodes: StorageNodes, replication_factor: u32, write_timeout: Duration) -> Self {
        Router {
            nodes,
            replication_factor: replication_factor.max(1) as usize,
            write_timeout,
        }
    }

    /// Writes `series` of `tenant` to their owners and waits for every acknowledgement.
    /// Returns the number of samples stored (each counted once, not once per replica).
    /// Errors: a node that stays unreachable or failing past the write timeout
    /// ([`InsertError::StorageUnavailable`], answered 503 so the client retries), or a
    /// node that refuses the rows as invalid ([`InsertError::BadRequest`]).
    pub async fn write(&self, tenant: Tenant, series: Vec<SeriesRows>) -> Result<usize, InsertError> {
        self.write_batches(tenant, route(tenant, series, self.nodes.len(), self.replication_factor))
            .await
    }

    /// Empty [`Batches`] for this router's nodes and replication factor.
    pub fn batches(&self, expected_series: usize) -> Batches {
        Batches::new(self.nodes.len(), self.replication_factor, expected_series)
    }

    /// Sends already routed `batches` (made by [`Router::batches`]) of `tenant`, like
    /// [`Router::write`]. Returns the number of samples stored.
    pub async fn write_batches(&self, tenant: Tenant, batches: Batches) -> Result<usize, InsertError> {
        let samples = batches.samples();
        let sends = batches
            .into_per_node()
            .into_iter()
            .enumerate()
            .filter(|(_, batch)| !batch.is_empty())
            .map(|(node, batch)| self.send(node, tenant, batch));
        try_join_all(sends).await?;
        Ok(samples)
    }

    /// Sends one batch to node `i`, retrying transient failures with exponential backoff
    /// until the write timeout.
    async fn send(&self, i: usize, tenant: Tenant, batch: NodeBatch) -> Result<(), InsertError> {
        let node = self
            .nodes
            .get(i)
            .ok_or_else(|| InsertError::Config(format!("no storage node with index {i}")))?;
        let started = Instant::now();
        let deadline = started + self.write_timeout;
        // Serialized once; retries resend the same bytes.
        let request = EncodedWrite::new(&batch.into_request(tenant));
        let mut backoff = FIRST_BACKOFF;
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            let mut req = tonic::Request::new(request.clone());
            req.set_timeout(remaining.max(Duration::from_millis(1)));
            let mut client = node.client.clone();
            let err = match client.write(req).await {
                Ok(_) => {
                    metrics::histogram!("cairn_insert_storage_write_duration_seconds")
                        .record(started.elapsed().as_secs_f64());
                    return Ok(());
                }
                Err(status) => status,
            };
            metrics::counter!("cairn_insert_storage_write_errors_total", "node" => node.addr.clone()).increment(1);
            if err.code() == Code::InvalidArgument {
                return Err(InsertError::BadRequest(format!(
                    "storage node {} refused the rows: {}",
                    node.addr,
                    err.message()
                )));
            }
            if Instant::now() + backoff >= deadline {
                return Err(InsertError::StorageUnavailable(format!(
                    "storage node {} did not acknowledge within {:?}: {}",
                    node.addr,
                    self.write_timeout,
                    err.message()
                )));
            }
            tracing::debug!(node = %node.addr, error = %err, "write to storage node failed, retrying");
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(instance: &str, samples: &[(i64, f64)]) -> SeriesRows {
        SeriesRows {
            labels: Labels::from_pairs([("__name__", "up"), ("instance", instance)]),
            timestamps_ms: samples.iter().map(|s| s.0).collect(),
            values: samples.iter().map(|s| s.1).collect(),
        }
    }

    #[test]
    fn every_series_reaches_its_owners_packed_and_bit_exact() {
        let tenant = Tenant {
            account_id: 2,
            project_id: 3,
        };
        let stale = f64::from_bits(cairn_common::STALE_NAN_BITS);
        let input: Vec<SeriesRows> = (0..50)
            .map(|i| rows(&format!("host-{i}"), &[(i, i as f64), (i + 1, stale)]))
            .collect();
        let batches = route(tenant, input.clone(), 3, 2);
        assert_eq!((batches.series(), batches.samples()), (50, 100));
        let per_node = batches.into_per_node();
        for s in &input {
            let owners: Vec<usize> = ring::owners(s.labels.series_hash(tenant), 3, 2).collect();
            assert_eq!(owners.len(), 2);
            for (node, batch) in per_node.iter().enumerate() {
                let copies: Vec<SeriesRows> = batch
                    .series(tenant)
                    .into_iter()
                    .filter(|b| b.labels == s.labels)
                    .collect();
                assert_eq!(copies.len(), usize::from(owners.contains(&node)), "node {node}");
                for c in copies {
                    assert_eq!(c.timestamps_ms, s.timestamps_ms);
                    let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                    assert_eq!(bits(&c.values), bits(&s.values));
                }
            }
        }
        // The request carries the packed form only, with counts that add up.
        let batch = per_node.into_iter().find(|b| !b.is_empty()).expect("a non-empty batch");
        let req = batch.into_request(tenant);
        assert!(req.series.is_empty());
        assert_eq!(req.tenant, Some(tenant.to_proto()));
        let total: u32 = req.sample_counts.iter().sum();
        assert_eq!(total as usize, req.timestamps_ms.len());
        assert_eq!(req.timestamps_ms.len(), req.values.len());
        assert_eq!(
            cairn_common::packed_keys::iter(&req.series_keys).count(),
            req.sample_counts.len()
        );
    }
}
