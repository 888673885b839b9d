//! The storage `Write` call with a request encoded once: a write batch is serialized to
//! protobuf bytes before the first attempt, and every retry sends the same bytes (a
//! reference-counted handle) instead of a deep copy of the message. The bytes on the wire
//! are exactly those the generated client would send for the same `WriteRequest`.

use bytes::{BufMut, Bytes};
use cairn_proto::storage::{WriteRequest, WriteResponse};
use prost::Message;
use tonic::codec::{Codec, EncodeBuf, Encoder};
use tonic::codegen::http::uri::PathAndQuery;
use tonic::transport::Channel;
use tonic::{GrpcMethod, Request, Response, Status};

/// gRPC path of the storage service's `Write` method (`proto/proto/cairn_storage.proto`).
const WRITE_PATH: &str = "/cairn.storage.v1.Storage/Write";

/// A storage `WriteRequest` serialized as protobuf.
#[derive(Clone, Debug)]
pub struct EncodedWrite(Bytes);

impl EncodedWrite {
    /// Serializes `request` once.
    pub fn new(request: &WriteRequest) -> Self {
        EncodedWrite(Bytes::from(request.encode_to_vec()))
    }

    /// Size of the serialized request, bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the serialized request is empty (a request with no field set).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Writes pre-serialized bytes as the message; decodes the answer with prost.
#[derive(Clone, Copy, Debug, Default)]
struct EncodedWriteCodec;

#[derive(Clone, Copy, Debug, Default)]
struct BytesEncoder;

impl Encoder for BytesEncoder {
    type Item = EncodedWrite;
    type Error = Status;

    fn encode(&mut self, item: EncodedWrite, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.reserve(item.0.len());
        dst.put_slice(&item.0);
        Ok(())
    }
}

impl Codec for EncodedWriteCodec {
    type Encode = EncodedWrite;
    type Decode = WriteResponse;
    type Encoder = BytesEncoder;
    type Decoder = tonic_prost::ProstDecoder<WriteResponse>;

    fn encoder(&mut self) -> BytesEncoder {
        BytesEncoder
    }

    fn decoder(&mut self) -> Self::Decoder {
        tonic_prost::ProstDecoder::default()
    }
}

/// A client for the storage `Write` call that takes [`EncodedWrite`] requests; cheap to
/// clone (shares the channel).
#[derive(Clone, Debug)]
pub struct WriteClient {
    inner: tonic::client::Grpc<Channel>,
}

impl WriteClient {
    /// A client over `channel`, refusing answers over `max_message_bytes`.
    pub fn new(channel: Channel, max_message_bytes: usize) -> Self {
        WriteClient {
            inner: tonic::client::Grpc::new(channel)
                .max_decoding_message_size(max_message_bytes)
                .max_encoding_message_size(max_message_bytes),
        }
    }

    /// Sends one write and waits for the node's acknowledgement. Errors: the gRPC status
    /// of a failed call (unavailable, deadline exceeded, invalid argument, …).
    pub async fn write(&mut self, request: Request<EncodedWrite>) -> Result<Response<WriteResponse>, Status> {
        self.inner
            .ready()
            .await
            .map_err(|e| Status::unknown(format!("storage node not ready: {e}")))?;
        let mut request = request;
        request
            .extensions_mut()
            .insert(GrpcMethod::new("cairn.storage.v1.Storage", "Write"));
        self.inner
            .unary(request, PathAndQuery::from_static(WRITE_PATH), EncodedWriteCodec)
            .await
    }
}
