//! A timing probe, not an assertion: a one-hour range query with a 15 s step over 2,000
//! series sampled every second, the shape of a busy dashboard panel. Run it with
//! `cargo test --release -p cairn-select --test promql_testdata -- --ignored --nocapture perf` and
//! read the printed times (a release build should answer each query well under a second).

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
