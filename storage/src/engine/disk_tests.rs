//! Bytes on disk per sample, end to end, on the real corpus: every sample of
//! `../shared/corpus/node-1s.jsonl.zst` (next to the workspace, or the file named by
//! `CAIRN_CODEC_CORPUS`) goes through [`Engine::write`] in time order, in batches of
//! 2,000 samples, with a flush every 300 s of data time; then the data directory's size
//! (apparent size of every file, as `du -sb`) is printed after the last flush and after
//! [`Engine::force_merge`], and every series is read back and compared bit by bit.
//!
//! Run: `cargo test --release -p cairn-storage disk_bytes -- --nocapture` (about 5 s).
//! Without the corpus the test says it skipped, and fails when `CI` is set.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use cairn_common::{Labels, Tenant};
use cairn_proto::storage::Series;

use super::*;
use crate::block::Sample;

fn corpus_path() -> PathBuf {
    std::env::var_os("CAIRN_CODEC_CORPUS").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus/node-1s.jsonl.zst"),
        PathBuf::from,
    )
}

/// One corpus value: a JSON number, or "NaN" / "Inf" / "-Inf" as strings.
fn value(v: &serde_json::Value) -> f64 {
    match v {
        serde_json::Value::Number(n) => n.as_f64().expect("number"),
        serde_json::Value::String(s) => match s.as_str() {
            "NaN" => f64::NAN,
            "Inf" | "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            other => panic!("unexpected value {other}"),
        },
        other => panic!("unexpected value {other}"),
    }
}

/// Every series of the corpus: labels and samples.
fn load(path: &Path) -> Vec<(Labels, Vec<Sample>)> {
    let compressed = std::fs::read(path).expect("read corpus");
    let text = String::from_utf8(zstd::decode_all(compressed.as_slice()).expect("zstd")).expect("UTF-8");
    text.lines()
        .map(|line| {
            let j: serde_json::Value = serde_json::from_str(line).expect("JSON line");
            let metric = j["metric"].as_object().expect("metric");
            let labels = Labels::from_pairs(metric.iter().map(|(k, v)| (k.as_str(), v.as_str().expect("label"))));
            let ts = j["timestamps"].as_array().expect("timestamps");
            let vs = j["values"].as_array().expect("values");
            let samples = ts
                .iter()
                .zip(vs)
                .map(|(t, v)| (t.as_i64().expect("timestamp"), value(v).to_bits()))
                .collect();
            (labels, samples)
        })
        .collect()
}

/// Every file under `dir` with its apparent size, bytes.
fn files(dir: &Path, out: &mut Vec<(PathBuf, u64)>) {
    for entry in std::fs::read_dir(dir).expect("read_dir") {
        let entry = entry.expect("entry");
        let meta = entry.metadata().expect("metadata");
        if meta.is_dir() {
            files(&entry.path(), out);
        } else {
            out.push((entry.path(), meta.len()));
        }
    }
}

/// Apparent size of every file under `dir`, bytes.
fn dir_bytes(dir: &Path) -> u64 {
    let mut total = 0;
    for entry in std::fs::read_dir(dir).expect("read_dir") {
        let entry = entry.expect("entry");
        let meta = entry.metadata().expect("metadata");
        total += if meta.is_dir() {
            dir_bytes(&entry.path())
        } else {
            meta.len()
        };
    }
    total
}

#[test]
fn disk_bytes_per_sample_on_the_corpus() {
    let path = corpus_path();
    if !path.exists() {
        let msg = format!("disk bytes test skipped: corpus {} not found", path.display());
        assert!(std::env::var_os("CI").is_none(), "{msg}");
        println!("{msg}");
        return;
    }
    let corpus = load(&path);
    let total: usize = corpus.iter().map(|s| s.1.len()).sum();
    // (timestamp, series index, value bits) in time order, ties in corpus order.
    let mut order: Vec<(i64, u32, u64)> = Vec::with_capacity(total);
    for (i, (_, s)) in corpus.iter().enumerate() {
        order.extend(s.iter().map(|&(t, v)| (t, i as u32, v)));
    }
    order.sort_by_key(|x| x.0);

    let dir = tempfile::tempdir().expect("tempdir");
    let e = Engine::open(&EngineOptions {
        data_dir: dir.path().to_path_buf(),
        retention: Duration::from_secs(100 * 365 * 86_400),
        wal_sync: WalSync::Never,
        series_cache_bytes: DEFAULT_SERIES_CACHE_BYTES,
        index_cache_bytes: crate::engine::DEFAULT_INDEX_CACHE_BYTES,
    })
    .expect("open");
    let tenant = Tenant::default();
    let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
    let started = Instant::now();
    let mut next_flush = order[0].0 + 300_000;
    let mut flushes = 0;
    for batch in order.chunks(2000) {
        if batch[0].0 >= next_flush {
            e.flush().expect("flush");
            flushes += 1;
            next_flush += 300_000;
        }
        let mut per: HashMap<u32, Series> = HashMap::new();
        for &(t, i, v) in batch {
            let s = per.entry(i).or_insert_with(|| Series {
                labels: corpus[i as usize].0.to_proto(),
                timestamps_ms: Vec::new(),
                values: Vec::new(),
                samples_le: Default::default(),
                blocks: Vec::new(),
                key: Default::default(),
            });
            s.timestamps_ms.push(t);
            s.values.push(f64::from_bits(v));
        }
        let out = rt
            .block_on(e.write(tenant, per.into_values().collect()))
            .expect("write");
        assert!(out.errors.is_empty(), "{:?}", out.errors);
    }
    e.flush().expect("last flush");
    let write_s = started.elapsed().as_secs_f64();
    let flushed = dir_bytes(dir.path());
    let started = Instant::now();
    let (_, merged) = e.force_merge().expect("force merge");
    let merge_s = started.elapsed().as_secs_f64();
    let final_bytes = dir_bytes(dir.path());
    let per = |b: u64| b as f64 / total as f64;
    println!(
        "corpus: {} series, {total} samples; {} flushes; writes {write_s:.1} s, force merge {merge_s:.1} s",
        corpus.len(),
        flushes + 1
    );
    println!(
        "data dir after the flushes: {flushed} bytes = {:.4} bytes/sample",
        per(flushed)
    );
    println!(
        "data dir after force_merge: {final_bytes} bytes = {:.4} bytes/sample \
         (blocks {} -> {}, block bytes {} -> {} = {:.4} bytes/sample)",
        per(final_bytes),
        merged.blocks_in,
        merged.blocks_out,
        merged.bytes_in,
        merged.bytes_out,
        per(merged.bytes_out)
    );
    let mut listing = Vec::new();
    files(dir.path(), &mut listing);
    listing.sort_by_key(|f| std::cmp::Reverse(f.1));
    for (p, n) in listing.iter().take(12) {
        println!("  {n:>9}  {}", p.strip_prefix(dir.path()).unwrap_or(p).display());
    }
    assert!(final_bytes < flushed, "merging made the data dir larger");

    // Every sample reads back bit-exactly.
    let (first, last) = (order[0].0, order[order.len() - 1].0);
    for (labels, want) in &corpus {
        let m: Vec<cairn_common::Matcher> = labels
            .iter()
            .map(|l| cairn_common::Matcher::new(cairn_common::MatchOp::Equal, &l.name, &l.value).expect("matcher"))
            .collect();
        let ids = e.select_ids(tenant, &m, first, last).expect("select");
        assert_eq!(ids.len(), 1, "{labels}");
        let id = ids.iter().next().expect("id");
        let (_, got) = e.read_series(tenant, id, first, last).expect("read").expect("series");
        assert!(&got == want, "{labels} does not read back bit-exactly");
    }
}
