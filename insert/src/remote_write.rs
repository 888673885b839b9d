//! Prometheus remote write 1.0: a `WriteRequest` protobuf, compressed with snappy's
//! *block* format (`Content-Encoding: snappy`, the spec's only encoding) or, as an
//! extension several senders use, zstd (`Content-Encoding: zstd`).
//! Spec: <https://prometheus.io/docs/specs/prw/remote_write_spec/>.

use cairn_proto::prometheus::WriteRequest;
use prost::Message;

use crate::error::InsertError;
use crate::rows::{Parsed, SeriesRows};
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

/// Decompresses a body, refusing to produce more than `max_bytes`. Errors: the body is not
/// valid in its encoding (400), or decompresses past the limit (413).
pub fn decompress(body: &[u8], encoding: Encoding, max_bytes: usize) -> Result<Vec<u8>, InsertError> {
    let too_large = |n: usize| {
        metrics::counter!("cairn_insert_rows_rejected_total", "reason" => "request_too_large").increment(1);
        InsertError::TooLarge(format!(
            "request decompresses to {n} bytes, over the limit of {max_bytes} bytes (--max-request-bytes)"
        ))
    };
    match encoding {
        Encoding::Identity => Ok(body.to_vec()),
        Encoding::Snappy => {
            let len = snap::raw::decompress_len(body)
                .map_err(|e| InsertError::BadRequest(format!("body is not snappy (block format): {e}")))?;
            if len > max_bytes {
                return Err(too_large(len));
            }
            snap::raw::Decoder::new()
                .decompress_vec(body)
                .map_err(|e| InsertError::BadRequest(format!("body is not snappy (block format): {e}")))
        }
        Encoding::Zstd => {
            use std::io::Read;
            let decoder = zstd::stream::read::Decoder::new(body)
                .map_err(|e| InsertError::BadRequest(format!("body is not zstd: {e}")))?;
            let mut out = Vec::new();
            let read = decoder
                .take(max_bytes as u64 + 1)
                .read_to_end(&mut out)
                .map_err(|e| InsertError::BadRequest(format!("body is not zstd: {e}")))?;
            if read > max_bytes {
                return Err(too_large(read));
            }
            Ok(out)
        }
    }
}

/// Decodes a decompressed `WriteRequest` into series. Series without samples are skipped;
/// series with invalid labels are rejected one by one (see [`validate::labels`]).
/// Errors: the bytes are not a `WriteRequest` protobuf (400, nothing stored).
pub fn parse(raw: &[u8], limits: &Limits) -> Result<Parsed, InsertError> {
    let req = WriteRequest::decode(raw)
        .map_err(|e| InsertError::BadRequest(format!("body is not a remote-write protobuf WriteRequest: {e}")))?;
    let mut parsed = Parsed {
        series: Vec::with_capacity(req.timeseries.len()),
        rejected: Vec::new(),
    };
    for ts in req.timeseries {
        if ts.samples.is_empty() {
            continue;
        }
        let pairs = ts.labels.iter().map(|l| (l.name.as_str(), l.value.as_str()));
        match validate::labels(pairs, limits) {
            Ok(labels) => parsed.series.push(SeriesRows {
                labels,
                timestamps_ms: ts.samples.iter().map(|s| s.timestamp).collect(),
                values: ts.samples.iter().map(|s| s.value).collect(),
            }),
            Err(msg) => parsed.rejected.push(msg),
        }
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_proto::prometheus::{Label, Sample, TimeSeries};

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

    #[test]
    fn decodes_snappy_and_zstd_bodies_bit_exactly() {
        let stale = f64::from_bits(cairn_common::STALE_NAN_BITS);
        let req = WriteRequest {
            timeseries: vec![series(
                &[("__name__", "up"), ("job", "a")],
                &[(1000, 1.0), (2000, stale)],
            )],
            metadata: vec![],
        };
        let raw = req.encode_to_vec();
        for (enc, body) in [
            (
                Encoding::Snappy,
                snap::raw::Encoder::new().compress_vec(&raw).expect("snappy"),
            ),
            (Encoding::Zstd, zstd::encode_all(raw.as_slice(), 3).expect("zstd")),
        ] {
            let plain = decompress(&body, enc, 1 << 20).expect("decompress");
            let parsed = parse(&plain, &Limits::default()).expect("parse");
            assert_eq!(parsed.series.len(), 1);
            assert_eq!(parsed.series[0].timestamps_ms, [1000, 2000]);
            assert_eq!(parsed.series[0].values[1].to_bits(), cairn_common::STALE_NAN_BITS);
        }
    }

    #[test]
    fn rejects_garbage_with_messages_naming_the_problem() {
        let err = decompress(b"definitely not snappy", Encoding::Snappy, 1 << 20).expect_err("not snappy");
        assert!(err.to_string().contains("not snappy"), "{err}");
        let not_proto = snap::raw::Encoder::new().compress_vec(b"\xff\xff\xff").expect("snappy");
        let plain = decompress(&not_proto, Encoding::Snappy, 1 << 20).expect("valid snappy");
        let err = parse(&plain, &Limits::default()).expect_err("not protobuf");
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
        let parsed = parse(&req.encode_to_vec(), &Limits::default()).expect("parse");
        assert_eq!(parsed.series.len(), 1);
        assert_eq!(parsed.series[0].labels.metric_name(), Some("good"));
        assert_eq!(parsed.rejected.len(), 1);
        assert!(parsed.rejected[0].contains("empty label name"));
    }
}
