//! Encoding remote-write requests: protobuf `prometheus.WriteRequest` (remote write 1.0)
//! compressed with snappy's block format. As Prometheus' sender does, every sample is its
//! own `TimeSeries` entry carrying the series' full label set.
//!
//! The protobuf is written by hand from pre-encoded label bytes, so that building tens of
//! millions of entries costs no allocation per label; a test decodes it with `prost`.

use bytes::Bytes;

/// A stream of samples in the order they are to be sent.
pub trait SampleSource: Sync {
    /// Number of samples in the stream.
    fn len(&self) -> usize;
    /// Sample at position `p` (< [`SampleSource::len`]): appends the protobuf encoding of
    /// its series' labels (repeated `TimeSeries.labels`, field 1) to `labels_out` and
    /// returns its timestamp (Unix milliseconds) and value.
    fn sample(&self, p: usize, labels_out: &mut Vec<u8>) -> (i64, f64);
}

/// One encoded request body and the number of samples in it.
#[derive(Debug, Clone)]
pub struct Request {
    /// Snappy (block format) compressed `WriteRequest`.
    pub body: Bytes,
    /// Samples in the request.
    pub samples: u32,
}

/// Encodes the whole stream into requests of up to `batch_samples` consecutive samples,
/// on `threads` threads; requests come back in stream order.
pub fn encode_all(source: &dyn SampleSource, batch_samples: usize, threads: usize) -> Vec<Request> {
    let batch = batch_samples.max(1);
    let n_batches = source.len().div_ceil(batch);
    let threads = threads.clamp(1, n_batches.max(1));
    let mut parts: Vec<Vec<(usize, Request)>> = Vec::new();
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                scope.spawn(move || {
                    let mut out = Vec::new();
                    let mut scratch = Scratch::default();
                    let mut encoder = snap::raw::Encoder::new();
                    for b in (t..n_batches).step_by(threads) {
                        let start = b * batch;
                        let end = (start + batch).min(source.len());
                        let raw = scratch.write_request(source, start..end);
                        let body = encoder.compress_vec(raw).unwrap_or_default();
                        out.push((
                            b,
                            Request {
                                body: Bytes::from(body),
                                samples: u32::try_from(end - start).unwrap_or(u32::MAX),
                            },
                        ));
                    }
                    out
                })
            })
            .collect();
        for h in handles {
            if let Ok(p) = h.join() {
                parts.push(p);
            }
        }
    });
    let mut all: Vec<(usize, Request)> = parts.into_iter().flatten().collect();
    all.sort_by_key(|(b, _)| *b);
    all.into_iter().map(|(_, r)| r).collect()
}

/// Reused buffers of one encoding thread.
#[derive(Default)]
struct Scratch {
    request: Vec<u8>,
    series: Vec<u8>,
}

impl Scratch {
    /// The uncompressed `WriteRequest` of the samples at `range`.
    fn write_request(&mut self, source: &dyn SampleSource, range: std::ops::Range<usize>) -> &[u8] {
        self.request.clear();
        for p in range {
            self.series.clear();
            let (ts, value) = source.sample(p, &mut self.series);
            // TimeSeries.samples (field 2): Sample { value: double = 1; timestamp: int64 = 2 }.
            let mut sample = [0u8; 1 + 8 + 1 + 10];
            sample[0] = 0x09;
            sample[1..9].copy_from_slice(&value.to_bits().to_le_bytes());
            sample[9] = 0x10;
            let ts_len = put_varint(&mut sample[10..], ts as u64);
            let sample = &sample[..10 + ts_len];
            self.series.push(0x12);
            push_varint(&mut self.series, sample.len() as u64);
            self.series.extend_from_slice(sample);
            // WriteRequest.timeseries (field 1).
            self.request.push(0x0a);
            push_varint(&mut self.request, self.series.len() as u64);
            self.request.extend_from_slice(&self.series);
        }
        &self.request
    }
}

/// Appends the protobuf encoding of one `Label { name = 1; value = 2 }` as a
/// `TimeSeries.labels` entry (field 1).
pub fn push_label(out: &mut Vec<u8>, name: &str, value: &str) {
    let inner = 1 + varint_len(name.len() as u64) + name.len() + 1 + varint_len(value.len() as u64) + value.len();
    out.push(0x0a);
    push_varint(out, inner as u64);
    out.push(0x0a);
    push_varint(out, name.len() as u64);
    out.extend_from_slice(name.as_bytes());
    out.push(0x12);
    push_varint(out, value.len() as u64);
    out.extend_from_slice(value.as_bytes());
}

fn varint_len(mut v: u64) -> usize {
    let mut n = 1;
    while v >= 0x80 {
        v >>= 7;
        n += 1;
    }
    n
}

fn push_varint(out: &mut Vec<u8>, v: u64) {
    let mut buf = [0u8; 10];
    let n = put_varint(&mut buf, v);
    out.extend_from_slice(&buf[..n]);
}

/// Writes `v` as a protobuf varint into `buf` (at least 10 bytes) and returns its length.
fn put_varint(buf: &mut [u8], mut v: u64) -> usize {
    let mut i = 0;
    while v >= 0x80 {
        buf[i] = (v as u8 & 0x7f) | 0x80;
        v >>= 7;
        i += 1;
    }
    buf[i] = v as u8;
    i + 1
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_proto::prometheus::WriteRequest;
    use prost::Message;

    /// Labels, timestamp and value of one sample.
    type Point = (Vec<(&'static str, &'static str)>, i64, f64);

    struct Fixed(Vec<Point>);

    impl SampleSource for Fixed {
        fn len(&self) -> usize {
            self.0.len()
        }
        fn sample(&self, p: usize, out: &mut Vec<u8>) -> (i64, f64) {
            for (n, v) in &self.0[p].0 {
                push_label(out, n, v);
            }
            (self.0[p].1, self.0[p].2)
        }
    }

    fn decode(r: &Request) -> WriteRequest {
        let raw = snap::raw::Decoder::new().decompress_vec(&r.body).expect("snappy");
        WriteRequest::decode(raw.as_slice()).expect("protobuf")
    }

    #[test]
    fn requests_decode_with_prost_and_keep_order_labels_and_bits() {
        let stale = f64::from_bits(cairn_common::STALE_NAN_BITS);
        let long_value: &'static str = Box::leak("x".repeat(300).into_boxed_str());
        let samples = vec![
            (vec![("__name__", "up"), ("job", "a")], 1_795_262_409_060, 1.0),
            (vec![("__name__", "up"), ("job", "b")], 1_795_262_409_061, stale),
            (vec![("__name__", "m"), ("long", long_value)], -5, -0.0),
            (vec![("__name__", "m")], 0, f64::NEG_INFINITY),
            (vec![("__name__", "z")], i64::MAX, 0.0),
        ];
        let src = Fixed(samples.clone());
        let reqs = encode_all(&src, 2, 3);
        assert_eq!(reqs.iter().map(|r| r.samples).collect::<Vec<_>>(), [2, 2, 1]);
        let decoded: Vec<_> = reqs.iter().flat_map(|r| decode(r).timeseries).collect();
        assert_eq!(decoded.len(), samples.len());
        for (ts, (labels, t, v)) in decoded.iter().zip(&samples) {
            let got: Vec<(&str, &str)> = ts.labels.iter().map(|l| (l.name.as_str(), l.value.as_str())).collect();
            assert_eq!(&got, labels);
            assert_eq!(ts.samples.len(), 1);
            assert_eq!(ts.samples[0].timestamp, *t);
            assert_eq!(ts.samples[0].value.to_bits(), v.to_bits());
        }
    }

    #[test]
    fn empty_source_gives_no_request() {
        assert!(encode_all(&Fixed(vec![]), 10, 2).is_empty());
    }
}
