//! Routing: every series goes to the storage node its jump-consistent-hash bucket names
//! and to the next `replication_factor - 1` nodes, as one batched gRPC write per node per
//! request. A write succeeds only when every node that should hold a copy has answered
//! that the rows are durable.

use std::time::{Duration, Instant};

use cairn_common::{Tenant, ring};
use cairn_proto::storage::{Series, WriteRequest};
use futures::future::try_join_all;
use tonic::Code;

use crate::error::InsertError;
use crate::rows::SeriesRows;
use crate::storage_client::{EncodedWrite, StorageNodes};

/// First pause between retries to a failing node; doubled up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(50);
/// Longest pause between retries.
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// Series grouped into one batch per storage node: each series goes to its jump-hash
/// owner and the next `replication_factor - 1` nodes (cloned only for the extra copies).
#[derive(Debug)]
pub struct Batches {
    per_node: Vec<Vec<Series>>,
    replication_factor: usize,
    series: usize,
    samples: usize,
}

impl Batches {
    /// Empty batches for `nodes` storage nodes (at least one), with room for about `expected_series`
    /// series in total so that the batches rarely grow.
    pub fn new(nodes: usize, replication_factor: usize, expected_series: usize) -> Self {
        let replication_factor = replication_factor.clamp(1, nodes.max(1));
        let per_node_capacity = (expected_series * replication_factor).div_ceil(nodes.max(1)) + 16;
        Batches {
            per_node: (0..nodes.max(1))
                .map(|_| Vec::with_capacity(per_node_capacity))
                .collect(),
            replication_factor,
            series: 0,
            samples: 0,
        }
    }

    /// Adds `series`, whose series hash (see [`cairn_common::Labels::series_hash`]) is
    /// `hash`, to the batches of the nodes that own it.
    pub fn push(&mut self, hash: u64, series: Series) {
        self.series += 1;
        self.samples += series.values.len();
        let mut owners = ring::owners(hash, self.per_node.len(), self.replication_factor).peekable();
        while let Some(node) = owners.next() {
            if owners.peek().is_some() {
                self.per_node[node].push(series.clone());
            } else {
                self.per_node[node].push(series);
                break;
            }
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
    pub fn into_per_node(self) -> Vec<Vec<Series>> {
        self.per_node
    }
}

/// Splits `series` of `tenant` into [`Batches`] for `nodes` storage nodes.
pub fn route(tenant: Tenant, series: Vec<SeriesRows>, nodes: usize, replication_factor: usize) -> Batches {
    let mut batches = Batches::new(nodes, replication_factor, series.len());
    for s in series {
        let hash = s.labels.series_hash(tenant);
        batches.push(
            hash,
            Series {
                labels: s.labels.to_proto(),
                timestamps_ms: s.timestamps_ms,
                values: s.values,
            },
        );
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
    async fn send(&self, i: usize, tenant: Tenant, batch: Vec<Series>) -> Result<(), InsertError> {
        let node = self
            .nodes
            .get(i)
            .ok_or_else(|| InsertError::Config(format!("no storage node with index {i}")))?;
        let started = Instant::now();
        let deadline = started + self.write_timeout;
        // Serialized once; retries resend the same bytes.
        let request = EncodedWrite::new(&WriteRequest {
            tenant: Some(tenant.to_proto()),
            series: batch,
        });
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
