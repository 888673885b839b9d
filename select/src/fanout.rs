//! Fan-out: every search goes to every storage node at once; the answers are merged.
//!
//! A node that fails with a transient error (unreachable, timed out, internal) makes the
//! answer partial: the others' data is returned with a warning and `isPartial: true`,
//! unless partial responses are denied (flag or request), or every node failed; then the
//! request fails with errorType `unavailable`. A node that refuses the request itself (a
//! limit hit, a bad regex) fails the request whatever the policy.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::future::Future;

use cairn_common::Labels;
use cairn_proto::storage::storage_client::StorageClient;
use futures::future::join_all;
use tonic::transport::Channel;
use tonic::{Code, Status};

use crate::error::SelectError;
use crate::promql::{FetchedSeries, QueryError};

/// One storage node: its configured address and a lazily connected client.
#[derive(Clone, Debug)]
pub struct StorageNode {
    /// `host:port` as given by `--storage-node`.
    pub addr: String,
    /// gRPC client (cheap to clone).
    pub client: StorageClient<Channel>,
}

/// The storage nodes a select node queries.
#[derive(Clone, Debug)]
pub struct Fanout {
    nodes: Vec<StorageNode>,
}

/// What the nodes answered: the successful answers and a warning per failed node.
#[derive(Debug)]
pub struct Gathered<T> {
    /// One entry per node that answered.
    pub answers: Vec<T>,
    /// The position in `--storage-node` of the node of each answer.
    pub nodes: Vec<usize>,
    /// One message per node that did not; non-empty means the result is partial.
    pub warnings: Vec<String>,
}

impl Fanout {
    /// How many storage nodes there are.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether there is no storage node (never, once built from a checked flag).
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Clients for `addrs`. Errors: an address that is not a URI.
    pub fn new(addrs: &[String]) -> Result<Self, SelectError> {
        let nodes = addrs
            .iter()
            .map(|addr| {
                let client = cairn_common::grpc::storage_client(addr)
                    .map_err(|e| SelectError::Config(format!("--storage-node: {e}")))?;
                Ok(StorageNode {
                    addr: addr.clone(),
                    client,
                })
            })
            .collect::<Result<Vec<_>, SelectError>>()?;
        Ok(Fanout { nodes })
    }

    /// Calls `call` on every node concurrently and sorts the outcomes by the policy in the
    /// module doc. Errors: [`QueryError::BadData`] / [`QueryError::Execution`] when a node
    /// refused the request, [`QueryError::Unavailable`] when nodes failed and partial answers
    /// are denied or no node answered.
    pub async fn gather<T, F, Fut>(&self, deny_partial: bool, call: F) -> Result<Gathered<T>, QueryError>
    where
        F: Fn(StorageClient<Channel>) -> Fut,
        Fut: Future<Output = Result<T, Status>>,
    {
        let outcomes = join_all(self.nodes.iter().map(|n| call(n.client.clone()))).await;
        let mut answers = Vec::with_capacity(outcomes.len());
        let mut nodes = Vec::with_capacity(outcomes.len());
        let mut warnings = Vec::new();
        for (i, (node, outcome)) in self.nodes.iter().zip(outcomes).enumerate() {
            match outcome {
                Ok(t) => {
                    answers.push(t);
                    nodes.push(i);
                }
                Err(status) => match status.code() {
                    Code::InvalidArgument => return Err(QueryError::BadData(status.message().to_string())),
                    Code::ResourceExhausted => {
                        return Err(QueryError::Execution(format!(
                            "storage node {}: {} (limit set by --search-max-series)",
                            node.addr,
                            status.message()
                        )));
                    }
                    _ => {
                        metrics::counter!("cairn_select_storage_errors_total", "node" => node.addr.clone())
                            .increment(1);
                        tracing::warn!(node = %node.addr, error = %status, "storage node did not answer");
                        warnings.push(format!(
                            "storage node {} did not answer: {}",
                            node.addr,
                            status.message()
                        ));
                    }
                },
            }
        }
        if !warnings.is_empty() && (deny_partial || answers.is_empty()) {
            return Err(QueryError::Unavailable(format!(
                "partial response denied or no storage node answered: {}",
                warnings.join("; ")
            )));
        }
        Ok(Gathered {
            answers,
            nodes,
            warnings,
        })
    }
}

/// Merges the samples of one series that came from several nodes (replicas, or a series
/// written to different nodes over time): both inputs sorted by timestamp; the result is
/// sorted with one sample per timestamp (the first input's sample wins a tie).
pub fn merge_samples(a: (Vec<i64>, Vec<f64>), b: (Vec<i64>, Vec<f64>)) -> (Vec<i64>, Vec<f64>) {
    let (at, av) = a;
    let (bt, bv) = b;
    if bt.is_empty() {
        return (at, av);
    }
    if at.is_empty() {
        return (bt, bv);
    }
    let mut ts = Vec::with_capacity(at.len() + bt.len());
    let mut vs = Vec::with_capacity(at.len() + bt.len());
    let (mut i, mut j) = (0, 0);
    while i < at.len() || j < bt.len() {
        let take_a = j >= bt.len() || (i < at.len() && at[i] <= bt[j]);
        if take_a {
            if j < bt.len() && at[i] == bt[j] {
                j += 1;
            }
            ts.push(at[i]);
            vs.push(av[i]);
            i += 1;
        } else {
            ts.push(bt[j]);
            vs.push(bv[j]);
            j += 1;
        }
    }
    (ts, vs)
}

/// Merges series pieces that came from several nodes (or several messages of one node)
/// into one [`FetchedSeries`] per label set: pieces with equal labels are merged with
/// [`merge_samples`] (earlier pieces win ties). Each piece must be sorted by timestamp
/// with one sample per timestamp ([`sort_dedup`] makes it so; decoded blocks are).
/// The output order is unspecified.
pub fn merge_series(pieces: impl IntoIterator<Item = (Labels, Vec<i64>, Vec<f64>)>) -> Vec<FetchedSeries> {
    let pieces = pieces.into_iter();
    let mut merged: HashMap<Labels, (Vec<i64>, Vec<f64>)> = HashMap::with_capacity(pieces.size_hint().0);
    for (labels, ts, vs) in pieces {
        // One hash of the labels per piece: most label sets come once.
        match merged.entry(labels) {
            Entry::Vacant(v) => {
                v.insert((ts, vs));
            }
            Entry::Occupied(mut o) => {
                let prev = std::mem::take(o.get_mut());
                *o.get_mut() = merge_samples(prev, (ts, vs));
            }
        }
    }
    merged
        .into_iter()
        .map(|(labels, (timestamps, values))| FetchedSeries {
            labels,
            timestamps,
            values,
        })
        .collect()
}

/// Sorts samples by timestamp and keeps one per timestamp, if they are not already so.
pub fn sort_dedup(ts: Vec<i64>, vs: Vec<f64>) -> (Vec<i64>, Vec<f64>) {
    if cairn_common::scan::strictly_increasing(&ts) {
        return (ts, vs);
    }
    let mut pairs: Vec<(i64, f64)> = ts.into_iter().zip(vs).collect();
    pairs.sort_by_key(|p| p.0);
    pairs.dedup_by_key(|p| p.0);
    pairs.into_iter().unzip()
}

/// Sorted, unique union of label sets from several nodes, each as the labels part of its
/// canonical key (see [`cairn_common::Labels::canonical_key`]): ordered as the label sets
/// are ([`cairn_common::labels::cmp_key_labels`]), without decoding them.
pub fn union_keys(parts: Vec<Vec<bytes::Bytes>>) -> Vec<bytes::Bytes> {
    let mut all: Vec<bytes::Bytes> = parts.into_iter().flatten().collect();
    all.sort_unstable_by(|a, b| cairn_common::labels::cmp_key_labels(a, b));
    all.dedup();
    all
}

/// Sorted, unique union of strings (label names or values) from several nodes.
pub fn union_strings(parts: Vec<Vec<String>>) -> Vec<String> {
    let mut all: Vec<String> = parts.into_iter().flatten().collect();
    all.sort();
    all.dedup();
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn union_of_keys_is_sorted_as_label_sets_and_unique() {
        let t = cairn_common::Tenant::default();
        let sets = [
            Labels::from_pairs([("__name__", "up"), ("job", "b")]),
            Labels::from_pairs([("__name__", "up"), ("job", "a"), ("zone", "x")]),
            Labels::from_pairs([("__name__", "up"), ("job", "a")]),
            Labels::from_pairs([("__name__", "u"), ("job", "zz")]),
            Labels::from_pairs([("__name__", "up"), ("jo", "b")]),
        ];
        let key = |l: &Labels| bytes::Bytes::from(l.canonical_key(t)[8..].to_vec());
        // Two nodes, one series on both (a replica), each answer in its own order.
        let parts = vec![
            vec![key(&sets[0]), key(&sets[2]), key(&sets[4])],
            vec![key(&sets[1]), key(&sets[0]), key(&sets[3])],
        ];
        let mut want: Vec<Labels> = sets.to_vec();
        want.sort();
        let got: Vec<Labels> = union_keys(parts)
            .iter()
            .map(|k| Labels::from_key_labels(k).expect("key"))
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn merge_keeps_one_sample_per_timestamp_in_order() {
        let a = (vec![1, 3, 5], vec![1.0, 3.0, 5.0]);
        let b = (vec![2, 3, 6], vec![2.0, 30.0, 6.0]);
        let (ts, vs) = merge_samples(a, b);
        assert_eq!(ts, [1, 2, 3, 5, 6]);
        assert_eq!(vs, [1.0, 2.0, 3.0, 5.0, 6.0]);
        let (ts, _) = merge_samples((vec![], vec![]), (vec![4], vec![4.0]));
        assert_eq!(ts, [4]);
    }

    #[test]
    fn sort_dedup_orders_unsorted_input() {
        let (ts, vs) = sort_dedup(vec![3, 1, 3, 2], vec![3.0, 1.0, 3.5, 2.0]);
        assert_eq!(ts, [1, 2, 3]);
        assert_eq!(vs.len(), 3);
    }
}
