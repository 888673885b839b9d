//! The high-churn case: N brand-new series (unique `pod` label values, a new set on
//! every run), a few samples each, their start times spread evenly over a span ending
//! now, sent in time order. It measures what an index and its caches cost per series.

use super::SourceSummary;
use super::config::IngestConfig;
use super::encode::{SampleSource, push_label};

/// Number of distinct metric names the churn series use.
const METRIC_NAMES: usize = 8;

/// Generated churn series as a time-ordered sample stream.
pub struct ChurnSource {
    /// (timestamp in Unix milliseconds, series index), sorted.
    order: Vec<(i64, u32)>,
    /// Distinguishes this run's series from any earlier run's.
    run_id: String,
    summary: SourceSummary,
}

impl ChurnSource {
    /// Series i's first sample is at `now - span - (samples-1)·interval + i·span/N`; its
    /// samples are `interval` apart, so the run's last sample is `span/N` before `now_ms`.
    pub fn new(cfg: &IngestConfig, now_ms: i64) -> Self {
        let n = cfg.churn_series.max(1);
        let k = cfg.churn_samples_per_series.max(1);
        let interval = i64::try_from(cfg.churn_interval.as_millis()).unwrap_or(i64::MAX / 4);
        let span = i64::try_from(cfg.churn_span.as_millis()).unwrap_or(i64::MAX / 4);
        let base = now_ms - span - (k as i64 - 1) * interval;
        let mut order = Vec::with_capacity(n * k);
        for i in 0..n {
            let start = base + (i as i128 * span as i128 / n as i128) as i64;
            for j in 0..k {
                order.push((start + j as i64 * interval, i as u32));
            }
        }
        order.sort_unstable();
        let summary = SourceSummary {
            series: n as u64,
            samples: order.len() as u64,
            first_ms: order.first().map_or(0, |o| o.0),
            last_ms: order.last().map_or(0, |o| o.0),
        };
        ChurnSource {
            order,
            run_id: format!("{now_ms:x}"),
            summary,
        }
    }

    /// Series, samples and time span of the stream.
    pub fn summary(&self) -> SourceSummary {
        self.summary
    }
}

impl SampleSource for ChurnSource {
    fn len(&self) -> usize {
        self.order.len()
    }

    fn sample(&self, p: usize, out: &mut Vec<u8>) -> (i64, f64) {
        let (ts, i) = self.order[p];
        let i = i as usize;
        push_label(out, "__name__", &format!("bench_churn_metric_{}", i % METRIC_NAMES));
        push_label(out, "container", &format!("c{}", i % 7));
        push_label(out, "instance", &format!("host-{}", i % 200));
        push_label(out, "job", "churn");
        push_label(out, "pod", &format!("pod-{}-{i}", self.run_id));
        (ts, (ts / 1000 % 1000) as f64 + (i % 100) as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Args {
        #[command(flatten)]
        cfg: IngestConfig,
    }

    #[test]
    fn every_series_gets_its_samples_in_time_order_ending_now() {
        let cfg = Args::try_parse_from([
            "x",
            "--churn-series",
            "100",
            "--churn-samples-per-series",
            "3",
            "--churn-interval",
            "10s",
            "--churn-span",
            "100s",
        ])
        .expect("flags")
        .cfg;
        let src = ChurnSource::new(&cfg, 1_000_000);
        assert_eq!(src.summary().series, 100);
        assert_eq!(src.len(), 300);
        assert_eq!(src.summary().last_ms, 1_000_000 - 1000);
        assert_eq!(src.summary().first_ms, 1_000_000 - 100_000 - 20_000);
        assert!(src.order.windows(2).all(|w| w[0].0 <= w[1].0));
        let mut label_sets = std::collections::HashSet::new();
        for p in 0..src.len() {
            let mut l = Vec::new();
            src.sample(p, &mut l);
            label_sets.insert(l);
        }
        assert_eq!(label_sets.len(), 100, "one label set per series");
    }
}
