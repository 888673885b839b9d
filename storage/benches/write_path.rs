#![allow(unused_crate_dependencies)]
//! Write-path benchmark of one storage node: `cargo bench -p cairn-storage --bench write_path`.
//!
//! Opens an [`Engine`] in a temporary directory with `--wal-sync never` (so fsync is not
//! measured) and writes requests of 1,000 series × 1 sample, the shape a Prometheus
//! remote write produces: every series of the corpus
//! (`../shared/corpus/node-1s.jsonl.zst`, or the file named by `CAIRN_CODEC_CORPUS`)
//! at one scrape, then every series at the next scrape, cut into requests of 1,000.
//! Every series is written once before measuring, so the numbers are those of the steady
//! state (known series). Each measured request goes through `start_write` and `finish`
//! (WAL group commit and head append included); criterion's throughput is in samples,
//! so ns/sample is 10^9 / samples per second. Without the corpus the benchmark says it
//! skipped, and fails when `CI` is set.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use cairn_common::{Labels, Tenant};
use cairn_proto::storage::Series;
use cairn_storage::config::WalSync;
use cairn_storage::{Engine, EngineOptions};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

/// Series per request.
const BATCH: usize = 1_000;
/// Scrapes of the corpus turned into requests (each request is reused in turn).
const SCRAPES: usize = 60;

fn corpus_path() -> PathBuf {
    std::env::var_os("CAIRN_CODEC_CORPUS").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus/node-1s.jsonl.zst"),
        PathBuf::from,
    )
}

/// One JSON value: a number or "NaN"/"Inf"/"-Inf".
fn value(v: &serde_json::Value) -> f64 {
    match v {
        serde_json::Value::String(s) => match s.as_str() {
            "NaN" => f64::NAN,
            "Inf" | "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            other => panic!("unexpected value {other:?}"),
        },
        other => other.as_f64().expect("number"),
    }
}

/// One corpus series: its labels and first `SCRAPES` samples (timestamp ms, value).
type CorpusSeries = (Labels, Vec<(i64, f64)>);

/// Every series of the corpus with at least `SCRAPES` samples; `None` when the file is
/// missing.
fn load() -> Option<Vec<CorpusSeries>> {
    let compressed = std::fs::read(corpus_path()).ok()?;
    let text = zstd::decode_all(compressed.as_slice()).expect("corpus is zstd");
    let text = String::from_utf8(text).expect("corpus is UTF-8");
    let mut out = Vec::new();
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line).expect("JSON line");
        let metric = v["metric"].as_object().expect("metric");
        let labels = Labels::from_pairs(
            metric
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string())),
        );
        let ts = v["timestamps"].as_array().expect("timestamps");
        let vs = v["values"].as_array().expect("values");
        let samples: Vec<(i64, f64)> = ts
            .iter()
            .zip(vs)
            .take(SCRAPES)
            .map(|(t, x)| (t.as_i64().expect("timestamp"), value(x)))
            .collect();
        if samples.len() == SCRAPES {
            out.push((labels, samples));
        }
    }
    Some(out)
}

/// The corpus as requests: scrape by scrape, every series, cut into `BATCH` series.
fn requests(corpus: &[CorpusSeries]) -> Vec<Vec<Series>> {
    let protos: Vec<_> = corpus.iter().map(|(l, _)| l.to_proto()).collect();
    let mut flat = Vec::with_capacity(corpus.len() * SCRAPES);
    for scrape in 0..SCRAPES {
        for ((_, samples), labels) in corpus.iter().zip(&protos) {
            let (t, v) = samples[scrape];
            flat.push(Series {
                labels: labels.clone(),
                timestamps_ms: vec![t],
                values: vec![v],
                samples_le: Default::default(),
                blocks: Vec::new(),
                key: Default::default(),
            });
        }
    }
    let mut out = Vec::new();
    while !flat.is_empty() {
        let rest = flat.split_off(flat.len().min(BATCH));
        out.push(std::mem::replace(&mut flat, rest));
    }
    out.retain(|r| r.len() == BATCH);
    out
}

/// User + system CPU time of this process so far, in clock ticks (`/proc/self/stat`
/// fields 14 and 15).
fn cpu_ticks() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name (field 2) may hold spaces; fields after it start past the ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split(' ').collect();
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

/// Clock ticks per second of `/proc/self/stat` (USER_HZ, 100 on Linux).
fn ticks_per_second() -> f64 {
    100.0
}

fn bench(c: &mut Criterion) {
    let Some(corpus) = load() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "corpus {} missing",
            corpus_path().display()
        );
        eprintln!("write_path: corpus {} missing; skipped", corpus_path().display());
        return;
    };
    let reqs = requests(&corpus);
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = Engine::open(&EngineOptions {
        data_dir: dir.path().to_path_buf(),
        retention: Duration::from_secs(100 * 365 * 86_400),
        wal_sync: WalSync::Never,
        series_cache_bytes: cairn_storage::DEFAULT_SERIES_CACHE_BYTES,
        index_cache_bytes: cairn_storage::DEFAULT_INDEX_CACHE_BYTES,
    })
    .expect("open engine");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let tenant = Tenant::default();
    let write = |req: Vec<Series>| {
        let pending = engine.start_write(tenant, req).expect("start_write");
        let outcome = rt.block_on(pending.finish()).expect("finish");
        assert!(outcome.errors.is_empty(), "{:?}", outcome.errors);
    };
    // Steady state: every series is known before measuring.
    for r in reqs.iter().take(corpus.len().div_ceil(BATCH) + 1) {
        write(r.clone());
    }
    // CPU time (all threads, user + system) per sample over a fixed run: steadier than
    // wall time on a shared machine. Linux only; skipped where /proc is missing.
    let cpu_run = 2_000usize;
    let batches: Vec<Vec<Series>> = (0..cpu_run).map(|i| reqs[i % reqs.len()].clone()).collect();
    if let Some(before) = cpu_ticks() {
        let started = Instant::now();
        for r in batches {
            write(r);
        }
        let wall = started.elapsed();
        if let Some(after) = cpu_ticks() {
            let ns = (after - before) as f64 * 1e9 / ticks_per_second();
            let n = (cpu_run * BATCH) as f64;
            eprintln!(
                "write_path: {cpu_run} requests of {BATCH} samples: {:.0} ns/sample CPU (all threads), {:.0} ns/sample wall",
                ns / n,
                wall.as_nanos() as f64 / n
            );
        }
    }
    let mut g = c.benchmark_group("write_path");
    g.throughput(Throughput::Elements(BATCH as u64));
    g.bench_function("known_series_1000x1", |b| {
        let mut next = 0usize;
        b.iter_custom(|iters| {
            let batch: Vec<Vec<Series>> = (0..iters)
                .map(|i| reqs[(next + i as usize) % reqs.len()].clone())
                .collect();
            next = (next + iters as usize) % reqs.len();
            let started = Instant::now();
            for r in batch {
                write(r);
            }
            started.elapsed()
        });
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30).measurement_time(Duration::from_secs(8));
    targets = bench
}
criterion_main!(benches);
