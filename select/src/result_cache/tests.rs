//! The result cache: which queries it takes, what it keeps and hands back, and that the
//! kept steps followed by the later steps evaluated alone equal the whole range
//! evaluated at once, for the engine's kinds of expression.

use cairn_common::{Labels, STALE_NAN_BITS};

use super::*;
use crate::promql::{Engine, FetchedSeries, MemoryQuerier};

const MIN: i64 = 60_000;

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("runtime")
}

fn series(pairs: &[(&str, &str)], samples: Vec<(i64, f64)>) -> FetchedSeries {
    FetchedSeries {
        labels: Labels::from_pairs(pairs.iter().copied()),
        timestamps: samples.iter().map(|s| s.0).collect(),
        values: samples.iter().map(|s| s.1).collect(),
    }
}

/// Counters with a reset and a staleness marker, a gauge that stops, and histogram
/// buckets: an hour of samples every 10 s (a few irregular).
fn data() -> MemoryQuerier {
    let mut out = Vec::new();
    for (inst, rate) in [("a", 1.0), ("b", 2.5)] {
        let samples = (0..360)
            .map(|i| {
                let t = i * 10_000 + if i % 7 == 0 { 3_000 } else { 0 };
                let v = if i < 200 {
                    rate * i as f64
                } else {
                    rate * (i - 200) as f64
                };
                (t, if i == 250 { f64::from_bits(STALE_NAN_BITS) } else { v })
            })
            .collect();
        out.push(series(
            &[("__name__", "req_total"), ("instance", inst), ("job", "j")],
            samples,
        ));
    }
    let gauge = (0..240).map(|i| (i * 10_000, (i % 13) as f64)).collect();
    out.push(series(&[("__name__", "load"), ("instance", "a"), ("job", "j")], gauge));
    for (le, share) in [("0.1", 0.5), ("1", 0.9), ("+Inf", 1.0)] {
        let samples = (0..360).map(|i| (i * 10_000, share * 10.0 * i as f64)).collect();
        out.push(series(&[("__name__", "lat_bucket"), ("job", "j"), ("le", le)], samples));
    }
    MemoryQuerier::new(out)
}

fn matrix(out: &QueryOutput) -> &[RangeSeries] {
    match &out.value {
        Value::Matrix(m) => m,
        other => panic!("a range query gives a matrix, not {other:?}"),
    }
}

/// Bit-exact equality of two results (NaN included).
fn same(a: &QueryOutput, b: &QueryOutput) -> bool {
    let (ma, mb) = (matrix(a), matrix(b));
    ma.len() == mb.len()
        && ma.iter().zip(mb).all(|(x, y)| {
            x.labels == y.labels
                && x.samples.len() == y.samples.len()
                && x.samples
                    .iter()
                    .zip(&y.samples)
                    .all(|(p, q)| p.0 == q.0 && p.1.to_bits() == q.1.to_bits())
        })
        && a.warnings == b.warnings
        && a.infos == b.infos
}

#[test]
fn kept_steps_and_later_steps_make_the_whole_range() {
    let q = data();
    let e = Engine::default();
    let rt = rt();
    let (start, end, step) = (10 * MIN, 60 * MIN, 30_000);
    for query in [
        "req_total",
        "rate(req_total[1m])",
        "sum by (job) (rate(req_total[2m]))",
        "histogram_quantile(0.9, sum by (le) (rate(lat_bucket[5m])))",
        "topk(1, rate(req_total[5m]))",
        "avg_over_time(load[5m])",
        "count by (job) (load)",
        "max_over_time(rate(req_total[1m])[5m:30s])",
        "rate(req_total[1m] offset 3m)",
        "absent(load)",
        "time() - timestamp(load)",
        "1 + 2",
        "label_replace(load, \"x\", \"$1\", \"instance\", \"(.*)\")",
        "resets(req_total[10m]) > 0",
    ] {
        assert!(cacheable(query), "{query}");
        let whole = rt.block_on(e.range(&q, query, start, end, step)).expect(query);
        for split in [start, start + 7 * step, 41 * MIN, end - step] {
            let head = rt.block_on(e.range(&q, query, start, split, step)).expect(query);
            let tail = rt.block_on(e.range(&q, query, split + step, end, step)).expect(query);
            let cached = Cached {
                end_ms: split,
                series: matrix(&head).to_vec(),
                warnings: head.warnings.clone(),
                infos: head.infos.clone(),
                epochs: Vec::new(),
            };
            let joined = join(cached, tail);
            assert!(
                same(&joined, &whole),
                "{query} split at {split}: {joined:?}\n!=\n{whole:?}"
            );
        }
    }
}

#[test]
fn queries_reading_past_their_step_are_not_cached() {
    for query in [
        "up @ 100",
        "rate(up[1m] @ end())",
        "up offset -1m",
        "max_over_time(up[5m:1m] offset -30s)",
        "max_over_time(up[5m:1m] @ start())",
        "sum(rate(up[1m])) / sum(up @ 50)",
        "up{",
    ] {
        assert!(!cacheable(query), "{query}");
    }
    assert!(cacheable("up offset 1m"));
}

fn out(series: Vec<(&str, Vec<(i64, f64)>)>) -> QueryOutput {
    QueryOutput {
        value: Value::Matrix(
            series
                .into_iter()
                .map(|(name, samples)| RangeSeries {
                    labels: Labels::from_pairs([("__name__", name)]),
                    samples,
                })
                .collect(),
        ),
        warnings: vec!["w".into()],
        infos: Vec::new(),
    }
}

fn steps(from: i64, to: i64) -> Vec<(i64, f64)> {
    (from..=to).map(|k| (k * MIN, k as f64)).collect()
}

#[test]
fn only_steps_older_than_the_offset_are_kept_and_the_last_step_is_always_evaluated() {
    let cache = ResultCache::new(1 << 20, 5 * MIN);
    let key = Key::new(Tenant::default(), "m", 0, MIN);
    // Steps 0..=20 min; now is 17 min: steps up to 12 min are old enough.
    cache.store(key.clone(), 0, &out(vec![("m", steps(0, 20))]), vec![7, 9], 17 * MIN);
    let c = cache.lookup(&key, 2 * MIN, 30 * MIN).expect("held");
    assert_eq!(c.end_ms, 12 * MIN);
    assert_eq!(c.series[0].samples, steps(2, 12));
    assert_eq!(c.epochs, vec![7, 9]);
    assert_eq!(c.warnings, vec!["w".to_string()]);
    // A request ending within the kept steps gets all but its last step.
    let c = cache.lookup(&key, 0, 10 * MIN).expect("held");
    assert_eq!(c.end_ms, 9 * MIN);
    // Nothing kept for a request starting before the kept steps, after them, or whose
    // only step is its last.
    assert!(cache.lookup(&key, -MIN, 30 * MIN).is_none());
    assert!(cache.lookup(&key, 13 * MIN, 30 * MIN).is_none());
    assert!(cache.lookup(&key, 5 * MIN, 5 * MIN).is_none());
    // Another step phase is another key.
    assert!(
        cache
            .lookup(&Key::new(Tenant::default(), "m", 30_000, MIN), 30_000, 30 * MIN)
            .is_none()
    );
    // A result with no step old enough is not kept.
    let fresh = Key::new(Tenant::default(), "fresh", 0, MIN);
    cache.store(
        fresh.clone(),
        15 * MIN,
        &out(vec![("m", steps(15, 20))]),
        vec![1],
        17 * MIN,
    );
    assert!(cache.lookup(&fresh, 15 * MIN, 20 * MIN).is_none());
    cache.forget(&key);
    assert!(cache.lookup(&key, 2 * MIN, 30 * MIN).is_none());
}

#[test]
fn join_merges_series_by_labels_and_drops_repeated_messages() {
    let cached = Cached {
        end_ms: 2 * MIN,
        series: matrix(&out(vec![("a", steps(0, 2)), ("c", steps(1, 2))])).to_vec(),
        warnings: vec!["w".into()],
        infos: vec!["i".into()],
        epochs: Vec::new(),
    };
    let mut tail = out(vec![("b", steps(3, 4)), ("c", steps(3, 4))]);
    tail.warnings.push("w2".into());
    let joined = join(cached, tail);
    let m = matrix(&joined);
    let names: Vec<_> = m
        .iter()
        .map(|s| s.labels.metric_name().unwrap_or("").to_string())
        .collect();
    assert_eq!(names, ["a", "b", "c"]);
    assert_eq!(m[2].samples, [steps(1, 2), steps(3, 4)].concat());
    assert_eq!(joined.warnings, ["w", "w2"]);
    assert_eq!(joined.infos, ["i"]);
}

#[test]
fn the_cache_stays_within_its_bytes_dropping_the_least_recently_used() {
    // 40 steps of one short series: about 1 KiB an entry.
    let one = out(vec![("m", steps(0, 40))]);
    let cache = ResultCache::new(12 << 10, 0);
    let key = |q: &str| Key::new(Tenant::default(), q, 0, MIN);
    for q in ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l"] {
        cache.store(key(q), 0, &one, Vec::new(), 100 * MIN);
        // "a" stays in use.
        assert!(cache.lookup(&key("a"), 0, 100 * MIN).is_some(), "after {q}");
    }
    let inner = cache.inner.lock().expect("lock");
    assert!(inner.bytes <= 12 << 10, "{} bytes", inner.bytes);
    assert!(inner.entries.len() < 12);
    drop(inner);
    assert!(
        cache.lookup(&key("b"), 0, 100 * MIN).is_none(),
        "the oldest unused entry went first"
    );
    // A result larger than an eighth of the cache is not kept.
    let big = out(vec![("m", steps(0, 400))]);
    cache.store(key("big"), 0, &big, Vec::new(), 1000 * MIN);
    assert!(cache.lookup(&key("big"), 0, 1000 * MIN).is_none());
    // Off: nothing kept.
    let off = ResultCache::new(0, 0);
    off.store(key("a"), 0, &one, Vec::new(), 100 * MIN);
    assert!(!off.is_enabled());
    assert!(off.lookup(&key("a"), 0, 100 * MIN).is_none());
}
