#![allow(unused_crate_dependencies)]
//! Insert hot-path benchmark: `cargo bench -p cairn-insert --bench remote_write`.
//!
//! Builds remote-write requests the way `cairn bench ingest` sends them: every entry one
//! sample of one series with its full label set, 2,000 entries per request, snappy block
//! format. The series come from `../shared/corpus/node-1s.jsonl.zst` (or the file named by
//! `CAIRN_INSERT_CORPUS`), replicated with a rewritten `instance` label until a request
//! is full. Criterion then measures, per request, decompression, protobuf decoding,
//! validation and routing to 2 storage nodes (R = 1) including the protobuf encoding of
//! the per-node storage batches (HTTP and gRPC transport are not included); throughput is in samples, so ns/sample is
//! 10^9 / (samples per second). Without the corpus the benchmark says it skipped.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;

use cairn_common::Tenant;
use cairn_insert::remote_write::{self, Encoding, LabelCache};
use cairn_insert::router;
use cairn_insert::storage_client::EncodedWrite;
use cairn_insert::validate::Limits;
use cairn_proto::prometheus::{Label, Sample, TimeSeries, WriteRequest};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use prost::Message;

/// Entries (samples) per request, as `cairn bench ingest` sends by default.
const BATCH: usize = 2000;

fn corpus_path() -> PathBuf {
    std::env::var_os("CAIRN_INSERT_CORPUS").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus/node-1s.jsonl.zst"),
        PathBuf::from,
    )
}

#[derive(serde::Deserialize)]
struct Line {
    metric: std::collections::BTreeMap<String, String>,
    values: Vec<serde_json::Value>,
    timestamps: Vec<i64>,
}

/// A series' labels, first timestamp (ms) and first value.
type CorpusSeries = (Vec<(String, String)>, i64, f64);

/// Labels and first sample of every series of the corpus.
fn corpus_series() -> Option<Vec<CorpusSeries>> {
    let file = std::fs::File::open(corpus_path()).ok()?;
    let reader = BufReader::new(zstd::stream::read::Decoder::new(file).ok()?);
    let mut out = Vec::new();
    for line in reader.lines() {
        let line: Line = serde_json::from_str(&line.ok()?).ok()?;
        let value = match line.values.first()? {
            serde_json::Value::Number(n) => n.as_f64()?,
            _ => f64::NAN,
        };
        out.push((line.metric.into_iter().collect(), *line.timestamps.first()?, value));
    }
    Some(out)
}

/// One snappy-compressed request of `BATCH` entries, series in corpus order, replicas
/// with `instance` rewritten as `host-N:port`.
fn request(series: &[CorpusSeries]) -> Vec<u8> {
    let timeseries = (0..BATCH)
        .map(|i| {
            let (labels, ts, value) = &series[i % series.len()];
            let replica = i / series.len();
            TimeSeries {
                labels: labels
                    .iter()
                    .map(|(n, v)| Label {
                        name: n.clone(),
                        value: if n == "instance" && replica > 0 {
                            format!("host-{replica}:{v}")
                        } else {
                            v.clone()
                        },
                    })
                    .collect(),
                samples: vec![Sample {
                    value: *value,
                    timestamp: *ts,
                }],
            }
        })
        .collect();
    let raw = WriteRequest {
        timeseries,
        metadata: vec![],
    }
    .encode_to_vec();
    snap::raw::Encoder::new().compress_vec(&raw).expect("snappy")
}

fn bench(c: &mut Criterion) {
    let Some(series) = corpus_series() else {
        eprintln!(
            "corpus {} not found: remote_write benchmark skipped",
            corpus_path().display()
        );
        return;
    };
    let body = request(&series);
    let limits = Limits::default();
    let tenant = Tenant::default();
    let mut group = c.benchmark_group("remote_write");
    group.throughput(Throughput::Elements(BATCH as u64));
    // The label cache off (every label set decoded), then at its default size, warm
    // after the first request as for a sender's steady series.
    for (name, cache) in [
        ("decode_validate_route_encode", LabelCache::new(0)),
        ("label_cache_route_encode", LabelCache::new(16 << 20)),
    ] {
        group.bench_function(name, |b| {
            b.iter(|| {
                let (per_node, samples) = remote_write::with_body_buffer(|buf| {
                    let raw =
                        remote_write::decompress_into(&body, Encoding::Snappy, 64 << 20, buf).expect("decompress");
                    let batches = router::Batches::new(2, 1, raw.len() / 64);
                    let routed = remote_write::parse(raw, &limits, tenant, batches, &cache).expect("parse");
                    let samples = routed.batches.samples();
                    (routed.batches.into_per_node(), samples)
                });
                let bytes: usize = per_node
                    .into_iter()
                    .map(|batch| {
                        // What Router::send does before its first attempt.
                        EncodedWrite::new(&batch.into_request(tenant)).len()
                    })
                    .sum();
                assert_eq!(samples, BATCH);
                bytes
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
