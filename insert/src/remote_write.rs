//! Prometheus remote write 1.0: a `WriteRequest` protobuf, compressed with snappy's
//! *block* format (`Content-Encoding: snappy`, the spec's only encoding) or, as an
//! extension several senders use, zstd (`Content-Encoding: zstd`).
//! Spec: <https://prometheus.io/docs/specs/prw/remote_write_spec/>.

pub mod label_cache;
pub mod wire;

use cairn_common::{Tenant, labels};

pub use label_cache::LabelCache;

use crate::error::InsertError;
use crate::router::Batches;
use crate::validate::{self, Limits};

/// Body compression, from the `Content-Encoding` header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    /// snappy block format; also assumed when the header is absent.
    Snappy,
    /// zstd frame.
    Zstd,
    /// No compression (`identity`).
    Identity,
}

impl Encoding {
    /// The encoding named by a `Content-Encoding` header value. Errors: any other value.
    pub fn from_header(value: Option<&str>) -> Result<Self, InsertError> {
        match value.map(|v| v.trim().to_ascii_lowercase()).as_deref() {
            None | Some("") | Some("snappy") => Ok(Encoding::Snappy),
            Some("zstd") => Ok(Encoding::Zstd),
            Some("identity") => Ok(Encoding::Identity),
            Some(other) => Err(InsertError::BadRequest(format!(
                "unsupported Content-Encoding {other:?}: remote write takes snappy (block format) or zstd"
            ))),
        }
    }
}

/// Largest decompression buffer kept for the next request on a thread, bytes.
const KEPT_BUFFER_BYTES: usize = 16 << 20;

thread_local! {
    /// The decompression buffer reused by requests handled on this thread.
    static BODY_BUFFER: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Runs `f` with this thread's reusable decompression buffer (empty on first use), so
/// that a busy insert does not allocate and zero a fresh buffer per request. Buffers over
/// 16 MiB are not kept.
pub fn with_body_buffer<T>(f: impl FnOnce(&mut Vec<u8>) -> T) -> T {
    let mut buf = BODY_BUFFER.with(|b| std::mem::take(&mut *b.borrow_mut()));
    let out = f(&mut buf);
    if buf.capacity() <= KEPT_BUFFER_BYTES {
        BODY_BUFFER.with(|b| *b.borrow_mut() = buf);
    }
    out
}

/// Decompresses a body, refusing to produce more than `max_bytes`. Errors: the body is not
/// valid in its encoding (400), or decompresses past the limit (413).
pub fn decompress(body: &[u8], encoding: Encoding, max_bytes: usize) -> Result<Vec<u8>, InsertError> {
    let mut buf = Vec::new();
    Ok(decompress_into(body, encoding, max_bytes, &mut buf)?.to_vec())
}

/// [`decompress`] into `buf`, which is reused: it only ever grows, and its contents past
/// the returned slice are left over from earlier requests. An `identity` body is returned
/// as is. Errors: as [`decompress`].
pub fn decompress_into<'a>(
    body: &'a [u8],
    encoding: Encoding,
    max_bytes: usize,
    buf: &'a mut Vec<u8>,
) -> Result<&'a [u8], InsertError> {
    let too_large = |n: usize| {
        metrics::counter!("cairn_insert_rows_rejected_total", "reason" => "request_too_large").increment(1);
        InsertError::TooLarge(format!(
            "request decompresses to {n} bytes, over the limit of {max_bytes} bytes (--max-request-bytes)"
        ))
    };
    match encoding {
        Encoding::Identity => Ok(body),
        Encoding::Snappy => {
            let not_snappy =
                |e: snap::Error| InsertError::BadRequest(format!("body is not snappy (block format): {e}"));
            let len = snap::raw::decompress_len(body).map_err(not_snappy)?;
            if len > max_bytes {
                return Err(too_large(len));
            }
            if buf.len() < len {
                buf.resize(len, 0);
            }
            let n = snap::raw::Decoder::new()
                .decompress(body, &mut buf[..len])
                .map_err(not_snappy)?;
            Ok(&buf[..n])
        }
        Encoding::Zstd => {
            use std::io::Read;
            let decoder = zstd::stream::read::Decoder::new(body)
                .map_err(|e| InsertError::BadRequest(format!("body is not zstd: {e}")))?;
            buf.clear();
            let read = decoder
                .take(max_bytes as u64 + 1)
                .read_to_end(buf)
                .map_err(|e| InsertError::BadRequest(format!("body is not zstd: {e}")))?;
            if read > max_bytes {
                return Err(too_large(read));
            }
            Ok(&buf[..])
        }
    }
}

/// A decoded, validated and routed remote-write request.
#[derive(Debug)]
pub struct Routed {
    /// The valid series, batched per storage node.
    pub batches: Batches,
    /// One message per rejected series, naming the problem.
    pub rejected: Vec<String>,
}

/// Decodes a decompressed `WriteRequest` of `tenant` and adds its series to `batches`
/// (from [`crate::router::Router::batches`]). Series without samples are skipped; series
/// with invalid labels are rejected one by one (same rules and messages as
/// [`validate::labels`], counted in `cairn_insert_rows_rejected_total{reason}` only when
/// the whole body decodes). Labels are read borrowed from `raw` and packed straight into
/// the node batches: no string is allocated per label. A series whose label fields are in
/// `cache` takes its key and hash from there without decoding its labels; a valid series
/// that was not is added to it. Errors: the bytes are not a `WriteRequest` protobuf or
/// hold a label that is not UTF-8 (400, nothing stored).
pub fn parse(
    raw: &[u8],
    limits: &Limits,
    tenant: Tenant,
    mut batches: Batches,
    cache: &LabelCache,
) -> Result<Routed, InsertError> {
    let mut received: Vec<(&str, &str)> = Vec::with_capacity(32);
    let mut sorted: Vec<(&str, &str)> = Vec::with_capacity(32);
    let mut samples: Vec<(i64, f64)> = Vec::with_capacity(8);
    let mut key: Vec<u8> = Vec::with_capacity(512);
    let mut rejected = Vec::new();
    let (mut hits, mut misses) = (0u64, 0u64);
    for ts in wire::time_series(raw) {
        let ts = ts?;
        samples.clear();
        let fields = wire::label_fields_and_samples(ts, &mut samples)?;
        if samples.is_empty() {
            continue;
        }
        if let Some(fields) = fields
            && cache.with(tenant, fields, |hash, key_labels| {
                batches.push(hash, key_labels, &samples)
            })
        {
            hits += 1;
            continue;
        }
        misses += 1;
        wire::read_series(ts, &mut received, &mut samples)?;
        if let Err(r) = validate::sorted_pairs(&received, &mut sorted, limits) {
            rejected.push(r);
            continue;
        }
        let hash = labels::series_hash_of_sorted(tenant, sorted.iter().copied(), &mut key);
        if let Some(fields) = fields {
            cache.insert(tenant, fields, hash, &key[8..]);
        }
        batches.push(hash, &key[8..], &samples);
    }
    metrics::counter!("cairn_insert_label_cache_requests_total", "outcome" => "hit").increment(hits);
    metrics::counter!("cairn_insert_label_cache_requests_total", "outcome" => "miss").increment(misses);
    Ok(Routed {
        batches,
        rejected: rejected.into_iter().map(validate::Rejection::count).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::router::NodeBatch;
    use crate::rows::SeriesRows;
    use cairn_proto::prometheus::{Label, Sample, TimeSeries, WriteRequest};
    use prost::Message;

    fn series(labels: &[(&str, &str)], samples: &[(i64, f64)]) -> TimeSeries {
        TimeSeries {
            labels: labels
                .iter()
                .map(|(n, v)| Label {
                    name: n.to_string(),
                    value: v.to_string(),
                })
                .collect(),
            samples: samples
                .iter()
                .map(|&(timestamp, value)| Sample { value, timestamp })
                .collect(),
        }
    }

    /// Parses `raw` for two storage nodes, R = 1, tenant 0:0.
    fn parse2(raw: &[u8]) -> Result<(Vec<SeriesRows>, Vec<String>), InsertError> {
        let routed = parse(
            raw,
            &Limits::default(),
            Tenant::default(),
            Batches::new(2, 1, 4),
            &LabelCache::new(1 << 20),
        )?;
        let series = routed
            .batches
            .into_per_node()
            .iter()
            .flat_map(|b| b.series(Tenant::default()))
            .collect();
        Ok((series, routed.rejected))
    }

    #[test]
    fn decodes_snappy_and_zstd_bodies_bit_exactly() {
        let stale = f64::from_bits(cairn_common::STALE_NAN_BITS);
        let req = WriteRequest {
            timeseries: vec![series(
                &[("job", "a"), ("__name__", "up")],
                &[(1000, 1.0), (2000, stale)],
            )],
            metadata: vec![],
        };
        let raw = req.encode_to_vec();
        let mut reused = vec![7u8; 3];
        for (enc, body) in [
            (
                Encoding::Snappy,
                snap::raw::Encoder::new().compress_vec(&raw).expect("snappy"),
            ),
            (Encoding::Zstd, zstd::encode_all(raw.as_slice(), 3).expect("zstd")),
            (Encoding::Identity, raw.clone()),
        ] {
            let plain = decompress(&body, enc, 1 << 20).expect("decompress");
            assert_eq!(plain, raw);
            let plain = decompress_into(&body, enc, 1 << 20, &mut reused).expect("decompress");
            assert_eq!(plain, raw.as_slice());
            let (series, rejected) = parse2(plain).expect("parse");
            assert!(rejected.is_empty());
            assert_eq!(series.len(), 1);
            let names: Vec<_> = series[0]
                .labels
                .iter()
                .map(|l| (l.name.as_str(), l.value.as_str()))
                .collect();
            assert_eq!(names, [("__name__", "up"), ("job", "a")]);
            assert_eq!(series[0].timestamps_ms, [1000, 2000]);
            assert_eq!(series[0].values[1].to_bits(), cairn_common::STALE_NAN_BITS);
        }
    }

    #[test]
    fn rejects_garbage_with_messages_naming_the_problem() {
        let err = decompress(b"definitely not snappy", Encoding::Snappy, 1 << 20).expect_err("not snappy");
        assert!(err.to_string().contains("not snappy"), "{err}");
        let not_proto = snap::raw::Encoder::new().compress_vec(b"\xff\xff\xff").expect("snappy");
        let plain = decompress(&not_proto, Encoding::Snappy, 1 << 20).expect("valid snappy");
        let err = parse2(&plain).expect_err("not protobuf");
        assert!(err.to_string().contains("not a remote-write protobuf"), "{err}");
        let big = snap::raw::Encoder::new()
            .compress_vec(&vec![0u8; 4096])
            .expect("snappy");
        let err = decompress(&big, Encoding::Snappy, 1000).expect_err("too large");
        assert!(matches!(err, InsertError::TooLarge(_)), "{err}");
        assert!(Encoding::from_header(Some("gzip")).is_err());
    }

    #[test]
    fn keeps_valid_series_next_to_invalid_ones() {
        let req = WriteRequest {
            timeseries: vec![
                series(&[("__name__", "good")], &[(1, 1.0)]),
                series(&[("__name__", "bad"), ("", "x")], &[(1, 1.0)]),
                series(&[("__name__", "no_samples")], &[]),
            ],
            metadata: vec![],
        };
        let (series, rejected) = parse2(&req.encode_to_vec()).expect("parse");
        assert_eq!(series.len(), 1);
        assert_eq!(series[0].labels.metric_name(), Some("good"));
        assert_eq!(rejected.len(), 1);
        assert!(rejected[0].contains("empty label name"));
    }

    #[test]
    fn routes_like_the_labels_path() {
        // Same series through the JSON/text path (Labels + route) and the remote-write
        // path must land on the same nodes with the same labels.
        let tenant = Tenant {
            account_id: 5,
            project_id: 1,
        };
        let mut req = WriteRequest {
            timeseries: vec![],
            metadata: vec![],
        };
        let mut rows = Vec::new();
        for i in 0..64 {
            let instance = format!("host-{i}:9100");
            let pairs = [("instance", instance.as_str()), ("__name__", "up"), ("job", "node")];
            req.timeseries.push(series(&pairs, &[(i, 1.0)]));
            rows.push(crate::rows::SeriesRows {
                labels: validate::labels(pairs, &Limits::default()).expect("valid"),
                timestamps_ms: vec![i],
                values: vec![1.0],
            });
        }
        let raw = req.encode_to_vec();
        for replication_factor in [1, 2, 3] {
            let want = crate::router::route(tenant, rows.clone(), 3, replication_factor).into_per_node();
            // Without the label cache, then twice with one: filling it, then from it.
            let cache = LabelCache::new(1 << 20);
            for cache in [&LabelCache::new(0), &cache, &cache] {
                let batches = Batches::new(3, replication_factor, 64);
                let routed = parse(&raw, &Limits::default(), tenant, batches, cache).expect("parse");
                assert_eq!(routed.batches.samples(), 64);
                assert_eq!(routed.batches.into_per_node(), want);
            }
            assert_eq!(cache.usage().1, 64);
        }
    }

    /// The per-node batches of `raw` for tenant `tenant`, 2 nodes, R = 1, and the
    /// rejection messages.
    fn parse_with(raw: &[u8], tenant: Tenant, cache: &LabelCache) -> (Vec<NodeBatch>, Vec<String>) {
        let routed = parse(raw, &Limits::default(), tenant, Batches::new(2, 1, 4), cache).expect("parse");
        (routed.batches.into_per_node(), routed.rejected)
    }

    #[test]
    fn label_cache_answers_as_the_full_decoding_does() {
        use prost::encoding::{WireType, encode_key, encode_varint};
        // Entries as a sender may write them: labels first (cacheable), an empty value
        // (dropped), a rejected label set, and an entry with a label after its sample.
        let mut req = WriteRequest {
            timeseries: vec![
                series(&[("job", "a"), ("__name__", "up"), ("x", "")], &[(1, 1.0)]),
                series(&[("__name__", "up"), ("job", "a"), ("job", "b")], &[(1, 2.0)]),
                series(&[("__name__", "down"), ("job", "a")], &[(2, 3.0), (3, 4.0)]),
            ],
            metadata: vec![],
        }
        .encode_to_vec();
        let mut late = Vec::new();
        let sample = Sample {
            value: 5.0,
            timestamp: 9,
        }
        .encode_to_vec();
        encode_key(2, WireType::LengthDelimited, &mut late);
        encode_varint(sample.len() as u64, &mut late);
        late.extend_from_slice(&sample);
        for (name, value) in [("__name__", "late"), ("job", "a")] {
            let label = Label {
                name: name.into(),
                value: value.into(),
            }
            .encode_to_vec();
            encode_key(1, WireType::LengthDelimited, &mut late);
            encode_varint(label.len() as u64, &mut late);
            late.extend_from_slice(&label);
        }
        encode_key(1, WireType::LengthDelimited, &mut req);
        encode_varint(late.len() as u64, &mut req);
        req.extend_from_slice(&late);

        let t0 = Tenant::default();
        let t1 = Tenant {
            account_id: 1,
            project_id: 2,
        };
        for tenant in [t0, t1] {
            let want = parse_with(&req, tenant, &LabelCache::new(0));
            assert_eq!(want.1.len(), 1, "{:?}", want.1);
            let got: Vec<Vec<_>> = want.0.iter().map(|b| b.series(tenant)).collect();
            let names: Vec<_> = got.iter().flatten().map(|s| s.labels.to_string()).collect();
            assert_eq!(names.len(), 3, "{names:?}");
            assert!(names.contains(&r#"up{job="a"}"#.to_string()), "{names:?}");
            assert!(names.contains(&r#"late{job="a"}"#.to_string()), "{names:?}");
            let cache = LabelCache::new(1 << 20);
            assert_eq!(parse_with(&req, tenant, &cache), want);
            // Two label sets kept: the rejected one and the one after its sample are not.
            assert_eq!(cache.usage().1, 2);
            assert_eq!(parse_with(&req, tenant, &cache), want);
        }
        // One cache for both tenants: each gets its own keys and routes.
        let cache = LabelCache::new(1 << 20);
        for tenant in [t0, t1, t0, t1] {
            assert_eq!(
                parse_with(&req, tenant, &cache),
                parse_with(&req, tenant, &LabelCache::new(0))
            );
        }
    }
}
