//! The ordered list of storage nodes an insert writes to, with one lazy gRPC client each.

pub mod encoded_write;

use crate::error::InsertError;
pub use encoded_write::{EncodedWrite, WriteClient};

/// One storage node: its address as configured and its client.
#[derive(Clone, Debug)]
pub struct StorageNode {
    /// `host:port` as given by `--storage-node`.
    pub addr: String,
    /// `Write` client over a lazily connected channel (cheap to clone).
    pub client: WriteClient,
}

/// The storage nodes in `--storage-node` order; index `i` is jump-hash bucket `i`.
#[derive(Clone, Debug)]
pub struct StorageNodes(Vec<StorageNode>);

impl StorageNodes {
    /// Clients for `addrs` (`host:port` or a full `http://` URL), connected on first use
    /// and re-connected after failures ([`cairn_common::grpc::storage_channel`]).
    /// Errors: an address that is not a URI.
    pub fn connect_lazy(addrs: &[String]) -> Result<Self, InsertError> {
        addrs
            .iter()
            .map(|addr| {
                let channel = cairn_common::grpc::storage_channel(addr)
                    .map_err(|e| InsertError::Config(format!("--storage-node: {e}")))?;
                let client = WriteClient::new(channel, cairn_common::grpc::MAX_MESSAGE_BYTES);
                Ok(StorageNode {
                    addr: addr.clone(),
                    client,
                })
            })
            .collect::<Result<Vec<_>, _>>()
            .map(StorageNodes)
    }

    /// Number of nodes (hash buckets).
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Node `i` of the list. Panics never: callers index with `i < len()` from the ring.
    pub fn get(&self, i: usize) -> Option<&StorageNode> {
        self.0.get(i)
    }
}
