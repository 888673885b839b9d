//! Engine-level behaviour on small hand-checked data sets: the queries dashboards send
//! first, range-query shape, staleness and lookback, and fetch-once-per-selector.

use std::sync::atomic::{AtomicUsize, Ordering};

use cairn_common::{Labels, Matcher};
use futures::future::BoxFuture;

use super::*;

fn series(pairs: &[(&str, &str)], samples: &[(i64, f64)]) -> FetchedSeries {
    FetchedSeries {
        labels: Labels::from_pairs(pairs.iter().copied()),
        timestamps: samples.iter().map(|s| s.0).collect(),
        values: samples.iter().map(|s| s.1).collect(),
    }
}

/// A counter rising `per_sec` per second from 0 at t=0, scraped every 15s up to `until_s`.
fn counter(pairs: &[(&str, &str)], per_sec: f64, until_s: i64) -> FetchedSeries {
    let samples: Vec<(i64, f64)> = (0..=until_s / 15)
        .map(|i| (i * 15_000, per_sec * (i * 15) as f64))
        .collect();
    series(pairs, &samples)
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("runtime")
}

fn vector(out: QueryOutput) -> Vec<(String, f64)> {
    match out.value {
        Value::Vector(v) => {
            let mut v: Vec<(String, f64)> = v.into_iter().map(|s| (s.labels.to_string(), s.v)).collect();
            v.sort_by(|a, b| a.0.cmp(&b.0));
            v
        }
        other => panic!("expected a vector, got {other:?}"),
    }
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * b.abs().max(1.0)
}

#[test]
fn up_uses_lookback_and_keeps_the_name() {
    let q = MemoryQuerier::new(vec![series(
        &[("__name__", "up"), ("job", "a")],
        &[(0, 1.0), (15_000, 1.0), (30_000, 0.0)],
    )]);
    let e = Engine::default();
    let rt = rt();
    let v = vector(rt.block_on(e.instant(&q, "up", 40_000)).expect("query"));
    assert_eq!(v, vec![(r#"up{job="a"}"#.to_string(), 0.0)]);
    // Lookback is (t - 5m, t]: the last sample (30s) is still seen at 329.999s, not at 330s.
    assert_eq!(
        vector(rt.block_on(e.instant(&q, "up", 329_999)).expect("query")).len(),
        1
    );
    assert!(vector(rt.block_on(e.instant(&q, "up", 330_000)).expect("query")).is_empty());
}

#[test]
fn rate_sum_by_and_topk_give_prometheus_answers() {
    let q = MemoryQuerier::new(vec![
        counter(
            &[
                ("__name__", "prometheus_http_requests_total"),
                ("job", "a"),
                ("instance", "1"),
            ],
            1.0,
            120,
        ),
        counter(
            &[
                ("__name__", "prometheus_http_requests_total"),
                ("job", "a"),
                ("instance", "2"),
            ],
            2.0,
            120,
        ),
        counter(
            &[
                ("__name__", "prometheus_http_requests_total"),
                ("job", "b"),
                ("instance", "3"),
            ],
            0.5,
            120,
        ),
        series(
            &[("__name__", "prometheus_tsdb_head_series"), ("instance", "1")],
            &[(0, 10.0)],
        ),
        series(
            &[("__name__", "prometheus_tsdb_head_series"), ("instance", "2")],
            &[(0, 40.0)],
        ),
        series(
            &[("__name__", "prometheus_tsdb_head_series"), ("instance", "3")],
            &[(0, 30.0)],
        ),
        series(
            &[("__name__", "prometheus_tsdb_head_series"), ("instance", "4")],
            &[(0, 20.0)],
        ),
    ]);
    let e = Engine::default();
    let rt = rt();
    // Window (0, 60s] holds samples at 15..60s: increase 45 per 1/s over 45s, extrapolated
    // 15s back to the window start (equal to the time to reach zero): 60 per 60s = 1/s.
    let v = vector(
        rt.block_on(e.instant(&q, "rate(prometheus_http_requests_total[1m])", 60_000))
            .expect("rate"),
    );
    let want = [
        (r#"{instance="1", job="a"}"#, 1.0),
        (r#"{instance="2", job="a"}"#, 2.0),
        (r#"{instance="3", job="b"}"#, 0.5),
    ];
    assert_eq!(v.len(), 3);
    for ((l, x), (wl, wx)) in v.iter().zip(want) {
        assert_eq!(l, wl);
        assert!(close(*x, wx), "{l} {x}");
    }
    let v = vector(
        rt.block_on(e.instant(&q, "sum by (job) (rate(prometheus_http_requests_total[1m]))", 60_000))
            .expect("sum"),
    );
    assert_eq!(v.len(), 2);
    assert!(v[0].0 == r#"{job="a"}"# && close(v[0].1, 3.0));
    assert!(v[1].0 == r#"{job="b"}"# && close(v[1].1, 0.5));
    let out = rt
        .block_on(e.instant(&q, "topk(3, prometheus_tsdb_head_series)", 60_000))
        .expect("topk");
    let Value::Vector(top) = out.value else {
        panic!("vector")
    };
    let got: Vec<(String, f64)> = top.into_iter().map(|s| (s.labels.to_string(), s.v)).collect();
    assert_eq!(
        got,
        vec![
            (r#"prometheus_tsdb_head_series{instance="2"}"#.to_string(), 40.0),
            (r#"prometheus_tsdb_head_series{instance="3"}"#.to_string(), 30.0),
            (r#"prometheus_tsdb_head_series{instance="4"}"#.to_string(), 20.0),
        ]
    );
}

#[test]
fn histogram_quantile_over_summed_bucket_rates() {
    let name = "prometheus_http_request_duration_seconds_bucket";
    let mut s = Vec::new();
    for inst in ["1", "2"] {
        // Per instance: 0.5/s ≤ 0.1s, 0.9/s ≤ 0.5s, 1/s in all.
        for (le, r) in [("0.1", 0.5), ("0.5", 0.9), ("+Inf", 1.0)] {
            s.push(counter(&[("__name__", name), ("instance", inst), ("le", le)], r, 120));
        }
    }
    let q = MemoryQuerier::new(s);
    let rt = rt();
    let query = format!("histogram_quantile(0.7, sum by (le) (rate({name}[1m])))");
    let v = vector(
        rt.block_on(Engine::default().instant(&q, &query, 60_000))
            .expect("query"),
    );
    // Summed rates 1, 1.8, 2: rank 0.7 × 2 = 1.4 falls in (0.1, 0.5] at (1.4-1)/(1.8-1) = 0.5
    // of the way: 0.3.
    assert_eq!(v.len(), 1);
    assert_eq!(v[0].0, "{}");
    assert!(close(v[0].1, 0.3), "{}", v[0].1);
}

#[test]
fn range_query_is_a_sorted_matrix_and_scalars_become_one_series() {
    let stale = f64::from_bits(cairn_common::STALE_NAN_BITS);
    let q = MemoryQuerier::new(vec![
        series(
            &[("__name__", "m"), ("i", "b")],
            &[(0, 1.0), (60_000, 2.0), (90_000, stale)],
        ),
        series(&[("__name__", "m"), ("i", "a")], &[(0, 5.0)]),
    ]);
    let rt = rt();
    let out = rt
        .block_on(Engine::default().range(&q, "m", 0, 120_000, 30_000))
        .expect("range");
    let Value::Matrix(m) = out.value else { panic!("matrix") };
    assert_eq!(m.len(), 2);
    assert_eq!(m[0].labels.get("i"), Some("a"));
    assert_eq!(
        m[0].samples,
        vec![(0, 5.0), (30_000, 5.0), (60_000, 5.0), (90_000, 5.0), (120_000, 5.0)]
    );
    // The staleness marker at 90s ends series b at once instead of after the lookback.
    assert_eq!(m[1].samples, vec![(0, 1.0), (30_000, 1.0), (60_000, 2.0)]);
    let out = rt
        .block_on(Engine::default().range(&q, "1 + 1", 0, 60_000, 30_000))
        .expect("scalar");
    assert_eq!(
        out.value,
        Value::Matrix(vec![RangeSeries {
            labels: Labels::default(),
            samples: vec![(0, 2.0), (30_000, 2.0), (60_000, 2.0)],
        }])
    );
    let err = rt
        .block_on(Engine::default().range(&q, "m[1m]", 0, 60_000, 30_000))
        .expect_err("matrix");
    assert_eq!(err.error_type(), "bad_data");
}

struct CountingQuerier {
    inner: MemoryQuerier,
    calls: AtomicUsize,
}

impl Querier for CountingQuerier {
    fn select<'a>(
        &'a self,
        matchers: &'a [Matcher],
        start_ms: i64,
        end_ms: i64,
    ) -> BoxFuture<'a, Result<Fetched, QueryError>> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.inner.select(matchers, start_ms, end_ms)
    }
}

#[test]
fn each_selector_is_fetched_once_per_range_query() {
    let q = CountingQuerier {
        inner: MemoryQuerier::new(vec![counter(&[("__name__", "c_total")], 1.0, 600)]),
        calls: AtomicUsize::new(0),
    };
    let rt = rt();
    let out = rt
        .block_on(Engine::default().range(
            &q,
            "rate(c_total[1m]) + rate(c_total[1m] offset 1m)",
            120_000,
            600_000,
            15_000,
        ))
        .expect("range");
    assert_eq!(q.calls.load(Ordering::SeqCst), 1);
    let Value::Matrix(m) = out.value else { panic!("matrix") };
    assert_eq!(m[0].samples.len(), 33);
    assert!(m[0].samples.iter().all(|s| close(s.1, 2.0)), "{:?}", m[0].samples);
}

#[test]
fn errors_where_prometheus_errors() {
    let q = MemoryQuerier::new(vec![
        series(&[("__name__", "a"), ("x", "1"), ("y", "1")], &[(0, 1.0)]),
        series(&[("__name__", "a"), ("x", "1"), ("y", "2")], &[(0, 1.0)]),
        series(&[("__name__", "b"), ("x", "1")], &[(0, 1.0)]),
        series(&[("__name__", "c"), ("x", "1")], &[(0, 1.0)]),
    ]);
    let rt = rt();
    let e = Engine::default();
    let err = rt.block_on(e.instant(&q, "b + on(x) a", 0)).expect_err("many-to-many");
    assert!(err.to_string().contains("many-to-many matching not allowed"), "{err}");
    assert_eq!(err.http_status(), 422);
    let err = rt.block_on(e.instant(&q, "sum(", 0)).expect_err("parse");
    assert_eq!(err.error_type(), "bad_data");
    // Dropping the name makes two series equal.
    let err = rt
        .block_on(e.instant(&q, "abs({__name__=~\"b|c\"})", 0))
        .expect_err("duplicate");
    assert_eq!(err.to_string(), "vector cannot contain metrics with the same labelset");
    assert!(rt.block_on(e.instant(&q, "a * on(x) group_left b", 0)).is_ok());
}

/// Range queries of range functions are computed a few series at a time across the
/// steps: every step must equal the same expression as an instant query at that time,
/// over more series than one pass holds, with gaps, resets and staleness markers.
#[test]
fn range_functions_over_many_series_equal_instant_queries_at_every_step() {
    let stale = f64::from_bits(cairn_common::STALE_NAN_BITS);
    let data: Vec<FetchedSeries> = (0..75)
        .map(|i| {
            let samples: Vec<(i64, f64)> = (0..200i64)
                // Series start at different times and some skip samples.
                .filter(|k| *k >= i % 13 && (k + i) % 17 != 0)
                .map(|k| {
                    let v = match k {
                        _ if k == 120 + i % 9 => stale,
                        // A counter reset in a third of the series.
                        _ if i % 3 == 0 && k > 90 => (k - 90) as f64 * 2.0,
                        _ => (k * (i + 1)) as f64,
                    };
                    (k * 10_000 + i * 37, v)
                })
                .collect();
            let instance = i.to_string();
            series(&[("__name__", "c_total"), ("instance", &instance)], &samples)
        })
        .collect();
    let q = MemoryQuerier::new(data);
    let e = Engine::default();
    let rt = rt();
    for query in [
        "rate(c_total[1m])",
        "increase(c_total[45s] offset 30s)",
        "avg_over_time(c_total[2m])",
        "changes(c_total[5m])",
        "sum by (instance) (irate(c_total[1m]))",
    ] {
        let (start, end, step) = (0, 2_000_000, 15_000);
        let out = rt.block_on(e.range(&q, query, start, end, step)).expect("range query");
        let Value::Matrix(m) = out.value else { panic!("matrix") };
        assert!(m.len() > 32, "{query}: more series than one pass");
        let mut t = start;
        while t <= end {
            let mut want = vector(rt.block_on(e.instant(&q, query, t)).expect("instant query"));
            want.retain(|(_, v)| !v.is_nan());
            let mut got: Vec<(String, f64)> = m
                .iter()
                .filter_map(|s| s.samples.iter().find(|p| p.0 == t).map(|p| (s.labels.to_string(), p.1)))
                .filter(|(_, v)| !v.is_nan())
                .collect();
            got.sort_by(|a, b| a.0.cmp(&b.0));
            assert_eq!(got, want, "{query} at {t}");
            t += step;
        }
    }
}
