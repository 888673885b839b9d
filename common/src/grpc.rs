//! gRPC client plumbing shared by insert and select: lazy channels to storage nodes.

use std::time::Duration;

use cairn_proto::storage::storage_client::StorageClient;
use tonic::transport::{Channel, Endpoint};

/// Largest gRPC message Cairn sends or accepts, in bytes: search answers are streamed in
/// much smaller pieces, but one write batch may carry a whole remote-write request.
pub const MAX_MESSAGE_BYTES: usize = 256 * 1024 * 1024;

/// The storage-node list of a `--storage-node` flag: entries trimmed, empty ones dropped,
/// order kept (it is the hash ring). Errors: no address left, with a message naming the
/// flag.
pub fn storage_node_list(entries: &[String]) -> Result<Vec<String>, String> {
    let nodes: Vec<String> = entries
        .iter()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    if nodes.is_empty() {
        return Err("--storage-node: at least one storage node address is needed".into());
    }
    Ok(nodes)
}

/// A lazily connected channel to the storage node at `addr` (`host:port`, or a full
/// `http://` URL): the connection is made on first use and re-made after failures, so a
/// node that is down at start-up is picked up when it comes back. Errors: `addr` is not a
/// valid URI.
pub fn storage_channel(addr: &str) -> Result<Channel, String> {
    let uri = if addr.contains("://") {
        addr.to_string()
    } else {
        format!("http://{addr}")
    };
    let endpoint = Endpoint::from_shared(uri)
        .map_err(|e| format!("invalid storage node address {addr:?}: {e}"))?
        .connect_timeout(Duration::from_secs(2))
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(30))
        .keep_alive_while_idle(true);
    Ok(endpoint.connect_lazy())
}

/// A storage gRPC client over [`storage_channel`], with Cairn's message size limits.
/// Errors: `addr` is not a valid URI.
pub fn storage_client(addr: &str) -> Result<StorageClient<Channel>, String> {
    Ok(StorageClient::new(storage_channel(addr)?)
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES))
}

/// Response header of a storage node's `Search` answer: the node's write epoch as a
/// decimal number, read before the search read any data. It changes whenever data older
/// than a few minutes changed on the node (a late sample, a dropped partition, a
/// restart); select nodes compare it to decide whether a cached query result is exact.
pub const WRITE_EPOCH_HEADER: &str = "cairn-write-epoch";

/// A sample at least this much (ms) older than a storage node's clock makes its write
/// late, and changes the node's write epoch: 2 minutes. Select nodes cache query results
/// only for times older than their `--search-cache-timestamp-offset`, which must be
/// larger; the difference is the clock skew between nodes the cache tolerates.
pub const LATE_WRITE_MS: i64 = 2 * 60_000;
