//! Corpus replay as Prometheus sends it: all series' samples interleaved by timestamp,
//! with R replicas of every series (label `instance` = `<original>-r<k>`, values rotated
//! by k positions, same timestamps), optionally shifted so that the corpus ends now.

use super::SourceSummary;
use super::corpus::Corpus;
use super::encode::{SampleSource, push_label};

/// The corpus as a time-ordered sample stream. Within one timestamp, replica 0's samples
/// come first (corpus series order), then replica 1's, and so on, as if R hosts were
/// scraped at the same instant.
pub struct ReplaySource<'a> {
    corpus: &'a Corpus,
    replicas: usize,
    shift_ms: i64,
    /// Encoded labels of (series s, replica k) at `s * replicas + k`.
    labels: Vec<Vec<u8>>,
    /// (series index, sample index) of every corpus sample, ordered by (timestamp, series).
    order: Vec<(u32, u32)>,
    /// Start of each same-timestamp group in `order`, then `order.len()`.
    groups: Vec<usize>,
    summary: SourceSummary,
}

impl<'a> ReplaySource<'a> {
    /// Prepares the stream; `now_ms` (Unix milliseconds) asks for the time shift that
    /// makes the last corpus timestamp equal to it.
    pub fn new(corpus: &'a Corpus, replicas: usize, now_ms: Option<i64>) -> Self {
        let replicas = replicas.max(1);
        let mut order: Vec<(i64, u32, u32)> = Vec::new();
        for (s, series) in corpus.series.iter().enumerate() {
            for (i, ts) in series.timestamps.iter().enumerate() {
                order.push((*ts, s as u32, i as u32));
            }
        }
        order.sort_unstable();
        let (first, last) = match (order.first(), order.last()) {
            (Some(f), Some(l)) => (f.0, l.0),
            _ => (0, 0),
        };
        let shift_ms = now_ms.map_or(0, |now| now - last);
        let mut groups = Vec::new();
        for (i, w) in order.iter().enumerate() {
            if i == 0 || order[i - 1].0 != w.0 {
                groups.push(i);
            }
        }
        groups.push(order.len());
        let labels = corpus
            .series
            .iter()
            .flat_map(|series| (0..replicas).map(move |k| replica_labels(&series.labels, k)))
            .collect();
        let summary = SourceSummary {
            series: (corpus.series.len() * replicas) as u64,
            samples: (order.len() * replicas) as u64,
            first_ms: first + shift_ms,
            last_ms: last + shift_ms,
        };
        ReplaySource {
            corpus,
            replicas,
            shift_ms,
            labels,
            order: order.into_iter().map(|(_, s, i)| (s, i)).collect(),
            groups,
            summary,
        }
    }

    /// Series, samples and time span of the stream.
    pub fn summary(&self) -> SourceSummary {
        self.summary
    }
}

/// Encoded labels of replica `k`: `instance` becomes `<original>-r<k>` (added as
/// `r<k>` if the series has none), in label-name order.
fn replica_labels(labels: &[(String, String)], k: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let mut rewritten: Vec<(&str, String)> = labels
        .iter()
        .map(|(n, v)| {
            let v = if n == "instance" {
                format!("{v}-r{k}")
            } else {
                v.clone()
            };
            (n.as_str(), v)
        })
        .collect();
    if !labels.iter().any(|(n, _)| n == "instance") {
        rewritten.push(("instance", format!("r{k}")));
        rewritten.sort();
    }
    for (n, v) in rewritten {
        push_label(&mut out, n, &v);
    }
    out
}

impl SampleSource for ReplaySource<'_> {
    fn len(&self) -> usize {
        self.order.len() * self.replicas
    }

    fn sample(&self, p: usize, labels_out: &mut Vec<u8>) -> (i64, f64) {
        let r = self.replicas;
        let g = self.groups.partition_point(|&b| b * r <= p).saturating_sub(1);
        let start = self.groups[g];
        let size = (self.groups[g + 1] - start).max(1);
        let q = p - start * r;
        let (k, j) = (q / size, q % size);
        let (s, i) = self.order[start + j];
        let series = &self.corpus.series[s as usize];
        labels_out.extend_from_slice(&self.labels[s as usize * r + k]);
        let n = series.values.len();
        let value = series.values[(i as usize + k) % n];
        (series.timestamps[i as usize] + self.shift_ms, value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::corpus::CorpusSeries;
    use cairn_proto::prometheus::TimeSeries;
    use prost::Message;

    fn corpus() -> Corpus {
        let s = |inst: &str, ts: Vec<i64>, vals: Vec<f64>| CorpusSeries {
            labels: vec![("__name__".into(), "m".into()), ("instance".into(), inst.into())],
            timestamps: ts,
            values: vals,
        };
        Corpus {
            series: vec![
                s("a", vec![1000, 2000, 3000], vec![1.0, 2.0, 3.0]),
                s("b", vec![1500, 2500], vec![10.0, 20.0]),
            ],
        }
    }

    fn stream(src: &ReplaySource) -> Vec<(String, i64, f64)> {
        (0..src.len())
            .map(|p| {
                let mut l = Vec::new();
                let (t, v) = src.sample(p, &mut l);
                // The label bytes alone are a valid `TimeSeries` encoding.
                let series = TimeSeries::decode(l.as_slice()).expect("labels decode");
                let inst = series.labels.iter().find(|l| l.name == "instance").expect("instance");
                (inst.value.clone(), t, v)
            })
            .collect()
    }

    #[test]
    fn interleaves_by_time_and_rotates_replica_values() {
        let c = corpus();
        let src = ReplaySource::new(&c, 2, None);
        assert_eq!(src.summary().samples, 10);
        assert_eq!(src.summary().series, 4);
        let got = stream(&src);
        let want = [
            ("a-r0", 1000, 1.0),
            ("a-r1", 1000, 2.0),
            ("b-r0", 1500, 10.0),
            ("b-r1", 1500, 20.0),
            ("a-r0", 2000, 2.0),
            ("a-r1", 2000, 3.0),
            ("b-r0", 2500, 20.0),
            ("b-r1", 2500, 10.0),
            ("a-r0", 3000, 3.0),
            ("a-r1", 3000, 1.0),
        ];
        let want: Vec<(String, i64, f64)> = want.iter().map(|(i, t, v)| (i.to_string(), *t, *v)).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn time_shift_makes_the_corpus_end_now() {
        let c = corpus();
        let src = ReplaySource::new(&c, 1, Some(10_000));
        assert_eq!((src.summary().first_ms, src.summary().last_ms), (8000, 10_000));
        let last = stream(&src).last().cloned().expect("samples");
        assert_eq!(last.1, 10_000);
    }
}
