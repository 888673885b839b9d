//! A timing probe, not an assertion: a one-hour range query with a 15 s step over 2,000
//! series sampled every second, the shape of a busy dashboard panel. Run it with
//! `cargo test --release -p cairn-select --test promql_testdata -- --ignored --nocapture perf` and
//! read the printed times (a release build should answer each query well under a second).
//! A second probe runs the side-by-side benchmark's query shapes (`docs/benchmarks.md`).

use std::time::Instant;

use cairn_common::Labels;
use cairn_select::promql::{Engine, FetchedSeries, MemoryQuerier, Value};

const SERIES: usize = 2_000;
const HOUR_MS: i64 = 3_600_000;
const STEP_MS: i64 = 15_000;

fn querier() -> MemoryQuerier {
    // Samples from 5 minutes before the range (lookback and range windows) to its end.
    let start = -300_000i64;
    let timestamps: Vec<i64> = (start..=HOUR_MS).step_by(1_000).collect();
    let series = (0..SERIES)
        .map(|i| FetchedSeries {
            labels: Labels::from_pairs([
                ("__name__", "http_requests_total".to_string()),
                ("instance", format!("host-{i}")),
                ("job", format!("job-{}", i % 10)),
            ]),
            values: timestamps
                .iter()
                .map(|t| (t / 1_000 * (i as i64 % 7 + 1)) as f64)
                .collect(),
            timestamps: timestamps.clone(),
        })
        .collect();
    MemoryQuerier::new(series)
}

#[test]
#[ignore = "timing probe; run in release with --ignored"]
fn perf_one_hour_range_over_two_thousand_series() {
    let q = querier();
    let engine = Engine::default();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("tokio runtime");
    for query in [
        "http_requests_total",
        "sum by (job) (rate(http_requests_total[1m]))",
        "max_over_time(sum by (job) (rate(http_requests_total[1m]))[5m:15s])",
    ] {
        let started = Instant::now();
        let out = rt
            .block_on(engine.range(&q, query, 0, HOUR_MS, STEP_MS))
            .expect("query succeeds");
        let elapsed = started.elapsed();
        let Value::Matrix(m) = out.value else {
            panic!("a range query returns a matrix");
        };
        // 241 steps: 0, 15 s, … 3,600 s.
        assert!(m.iter().all(|s| s.samples.len() == 241), "{query}");
        println!("perf: {query}: {} series in {elapsed:?}", m.len());
    }
}

/// The side-by-side benchmark's shape: 32 minutes of 1 s samples over ~17k series
/// (10,000 counters plus 690 histograms of 10 buckets each), queried over the loaded span
/// with a 15 s step.
const BENCH_COUNTERS: usize = 10_000;
const BENCH_HISTOGRAMS: usize = 690;
const BENCH_LE: [&str; 10] = [
    "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "+Inf",
];
const BENCH_SPAN_MS: i64 = 32 * 60_000;

fn bench_querier() -> MemoryQuerier {
    let timestamps: Vec<i64> = (0..=BENCH_SPAN_MS).step_by(1_000).collect();
    let counter = |per_s: i64| -> Vec<f64> { timestamps.iter().map(|t| (t / 1_000 * per_s) as f64).collect() };
    let mut series = Vec::with_capacity(BENCH_COUNTERS + BENCH_HISTOGRAMS * BENCH_LE.len());
    for i in 0..BENCH_COUNTERS {
        series.push(FetchedSeries {
            labels: Labels::from_pairs([
                ("__name__", "http_requests_total".to_string()),
                ("instance", format!("host-{i}")),
                ("job", format!("job-{}", i % 10)),
            ]),
            values: counter(i as i64 % 7 + 1),
            timestamps: timestamps.clone(),
        });
    }
    for i in 0..BENCH_HISTOGRAMS {
        for (b, le) in BENCH_LE.iter().enumerate() {
            series.push(FetchedSeries {
                labels: Labels::from_pairs([
                    ("__name__", "request_duration_seconds_bucket".to_string()),
                    ("instance", format!("host-{i}")),
                    ("le", le.to_string()),
                ]),
                values: counter(b as i64 + 1),
                timestamps: timestamps.clone(),
            });
        }
    }
    MemoryQuerier::new(series)
}

#[test]
#[ignore = "timing probe; run in release with --ignored"]
fn perf_benchmark_shapes_over_seventeen_thousand_series() {
    let q = bench_querier();
    let engine = Engine::default();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("tokio runtime");
    for query in [
        "sum by (job) (rate(http_requests_total[1m]))",
        "histogram_quantile(0.9, sum by (le) (rate(request_duration_seconds_bucket[5m])))",
        "sum by (job) (rate(http_requests_total{instance=~\"host-1.*\"}[1m]))",
        "avg_over_time(http_requests_total{instance=\"host-42\"}[1m])",
        "avg_over_time(http_requests_total{job=\"job-3\"}[1m])",
    ] {
        let started = Instant::now();
        let out = rt
            .block_on(engine.range(&q, query, 0, BENCH_SPAN_MS, STEP_MS))
            .expect("query succeeds");
        let elapsed = started.elapsed();
        let Value::Matrix(m) = out.value else {
            panic!("a range query returns a matrix");
        };
        assert!(!m.is_empty(), "{query}");
        let points: usize = m.iter().map(|s| s.samples.len()).sum();
        println!("perf: {query}: {} series, {points} points in {elapsed:?}", m.len());
    }
}
