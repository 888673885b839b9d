#![allow(unused_crate_dependencies)]
//! Block codec benchmark on real scrape data: `cargo bench -p cairn-storage --bench codec`.
//!
//! Reads `../shared/corpus/node-1s.jsonl.zst` next to the workspace (or the file named by
//! `CAIRN_CODEC_CORPUS`): VictoriaMetrics' JSON-line export, one series per line. It
//! prints, for blocks of 120, 720, 3600 and 8192 samples and for whole series, the bytes
//! per sample split into header, timestamp and value columns, and how often each value
//! coding wins; with `CAIRN_CODEC_LEVELS=1`, the same per zstd level. Then criterion
//! measures encode and decode time over a subset of the series (throughput in samples:
//! ns/sample is 10^9 / samples per second). Without the corpus the benchmark says it
//! skipped, and fails when `CI` is set.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use cairn_storage::block::{self, Sample, ValueCoding};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

/// Block sizes reported; 0 stands for whole series.
const BLOCK_SIZES: [usize; 5] = [120, 720, 3600, 8192, 0];

fn corpus_path() -> PathBuf {
    std::env::var_os("CAIRN_CODEC_CORPUS").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus/node-1s.jsonl.zst"),
        PathBuf::from,
    )
}

/// The numbers inside the JSON array that follows `"key":[` in `line`, as text.
fn array<'a>(line: &'a str, key: &str) -> Option<impl Iterator<Item = &'a str>> {
    let start = line.find(&format!("\"{key}\":["))? + key.len() + 4;
    let len = line[start..].find(']')?;
    Some(line[start..start + len].split(',').filter(|s| !s.is_empty()))
}

/// One JSON value: a number (parsed exactly, shortest round-trip text) or "NaN"/"Inf"/"-Inf".
fn value(text: &str) -> Option<f64> {
    match text.trim_matches('"') {
        "NaN" => Some(f64::NAN),
        "Inf" | "+Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        t => t.parse().ok(),
    }
}

/// Every series of the corpus as samples, or `None` when the file is missing.
fn load() -> Option<Vec<Vec<Sample>>> {
    let path = corpus_path();
    let compressed = std::fs::read(&path).ok()?;
    let text = zstd::decode_all(compressed.as_slice()).expect("corpus is zstd");
    let text = String::from_utf8(text).expect("corpus is UTF-8");
    let series = text
        .lines()
        .map(|line| {
            let ts = array(line, "timestamps")
                .expect("timestamps")
                .map(|t| t.parse::<i64>().expect("timestamp"));
            let vs = array(line, "values")
                .expect("values")
                .map(|v| value(v).expect("value").to_bits());
            ts.zip(vs).collect::<Vec<Sample>>()
        })
        .collect();
    Some(series)
}

/// Bytes and coding counts over all blocks of one size.
#[derive(Default)]
struct Tally {
    samples: usize,
    blocks: usize,
    header: usize,
    ts: usize,
    values: usize,
    codings: BTreeMap<ValueCoding, (usize, usize)>,
    value_zstd: usize,
}

fn tally(series: &[Vec<Sample>], block_size: usize, level: i32) -> Tally {
    let mut t = Tally::default();
    for s in series {
        let size = if block_size == 0 { s.len().max(1) } else { block_size };
        for chunk in s.chunks(size) {
            let enc = block::encode_with_level(chunk, level);
            let (back, l) = block::decode_with_layout(&enc).expect("decodes");
            assert_eq!(back.len(), chunk.len());
            t.samples += chunk.len();
            t.blocks += 1;
            t.header += l.header_bytes;
            t.ts += l.ts_bytes;
            t.values += l.value_bytes;
            let c = t.codings.entry(l.value_coding).or_default();
            c.0 += 1;
            c.1 += chunk.len();
            t.value_zstd += usize::from(l.value_zstd);
        }
    }
    t
}

fn report(series: &[Vec<Sample>]) {
    let total: usize = series.iter().map(Vec::len).sum();
    println!(
        "corpus: {} series, {total} samples ({})",
        series.len(),
        corpus_path().display()
    );
    println!(
        "{:>7} {:>7} {:>9} {:>8} {:>8} {:>8}  value codings: blocks (samples); value column zstd",
        "block", "blocks", "B/sample", "header", "ts", "values"
    );
    for size in BLOCK_SIZES {
        let started = Instant::now();
        let t = tally(series, size, block::ZSTD_LEVEL);
        let per = |b: usize| b as f64 / t.samples as f64;
        let codings: Vec<String> = t.codings.iter().map(|(c, (b, s))| format!("{c:?} {b} ({s})")).collect();
        println!(
            "{:>7} {:>7} {:>9.4} {:>8.4} {:>8.4} {:>8.4}  {}; zstd {} ({:.1} s)",
            if size == 0 {
                "series".to_string()
            } else {
                size.to_string()
            },
            t.blocks,
            per(t.header + t.ts + t.values),
            per(t.header),
            per(t.ts),
            per(t.values),
            codings.join(", "),
            t.value_zstd,
            started.elapsed().as_secs_f64(),
        );
    }
    if std::env::var_os("CAIRN_CODEC_LEVELS").is_some() {
        for level in [1, 2, 3, 6, 9, 19] {
            let sizes: Vec<String> = BLOCK_SIZES
                .iter()
                .map(|&size| {
                    let t = tally(series, size, level);
                    format!("{:.4}", (t.header + t.ts + t.values) as f64 / t.samples as f64)
                })
                .collect();
            println!(
                "zstd level {level:>2}: B/sample per block size {BLOCK_SIZES:?} = {}",
                sizes.join(" ")
            );
        }
    }
}

fn bench(c: &mut Criterion) {
    let Some(series) = load() else {
        let msg = format!("codec benchmark skipped: corpus {} not found", corpus_path().display());
        assert!(std::env::var_os("CI").is_none(), "{msg}");
        println!("{msg}");
        return;
    };
    report(&series);
    // Every 8th series keeps an iteration short while covering every kind of metric.
    let subset: Vec<&Vec<Sample>> = series.iter().step_by(8).collect();
    let mut g = c.benchmark_group("codec");
    g.sample_size(10);
    for size in [720usize, 8192] {
        let blocks: Vec<&[Sample]> = subset.iter().flat_map(|s| s.chunks(size)).collect();
        let samples: usize = blocks.iter().map(|b| b.len()).sum();
        let encoded: Vec<Vec<u8>> = blocks.iter().map(|b| block::encode(b)).collect();
        g.throughput(Throughput::Elements(samples as u64));
        g.bench_with_input(BenchmarkId::new("encode", size), &blocks, |b, blocks| {
            b.iter(|| blocks.iter().map(|s| block::encode(s).len()).sum::<usize>())
        });
        g.bench_with_input(BenchmarkId::new("decode", size), &encoded, |b, encoded| {
            b.iter(|| {
                encoded
                    .iter()
                    .map(|e| block::decode(e).expect("decodes").len())
                    .sum::<usize>()
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
